/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device allow-lists on cgroup v2 (drivers/domain/cgroup-bpf.h): v1-style rules, the
 * BPF_PROG_TYPE_CGROUP_DEVICE program they become, and bpf(2) to load, attach, query and
 * detach it. The program has the shape of systemd's src/core/bpf-devices.c and runc's
 * libcontainer/cgroups/devices. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

#include "drivers/domain/cgroup-bpf.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

/* ---- rules ------------------------------------------------------------------------- */

/* Longer text cannot be a rule ("c 4095:1048575 rwm" is 18 bytes); the limit only keeps
 * the messages, which quote the rule, short. */
#define RULE_TEXT_MAX 64

/* One '*' or decimal number of at most max, ending at the first of end; *p moves past
 * it. */
static int parse_number(const char **p, char end, uint32_t max, uint32_t *ret) {
        const char *s = *p, *e = strchr(s, end);
        if (!e)
                e = s + strlen(s);
        size_t len = (size_t)(e - s);
        if (len == 1 && s[0] == '*') {
                *ret = CGROUP_DEV_ANY;
                *p = e;
                return 0;
        }
        char num[16];
        if (len == 0 || len >= sizeof(num))
                return -EINVAL;
        memcpy(num, s, len);
        num[len] = '\0';
        uint64_t v;
        int r = parse_u64_range(num, 0, max, &v);
        if (r < 0)
                return r;
        *ret = (uint32_t)v;
        *p = e;
        return 0;
}

int cgroup_dev_rule_parse(const char *text, struct cgroup_dev_rule *ret, struct dv_error *err) {
        if (!text || !*text)
                return dv_error_add(err, -EINVAL, 0, "empty device rule");
        size_t len = strnlen(text, RULE_TEXT_MAX + 1);
        if (len > RULE_TEXT_MAX)
                return dv_error_add(err, -EINVAL, 0,
                                    "device rule longer than %d bytes; a rule reads like "
                                    "'c 1:3 rwm'",
                                    RULE_TEXT_MAX);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
                        return dv_error_add(err, -EINVAL, 0,
                                            "device rule contains a byte that is not printable "
                                            "ASCII (0x%02x)",
                                            (unsigned char)text[i]);

        struct cgroup_dev_rule rule = {.type = text[0]};
        if (streq(text, "a")) {
                *ret = (struct cgroup_dev_rule){'a', CGROUP_DEV_ANY, CGROUP_DEV_ANY,
                                                CGROUP_DEV_RWM};
                return 0;
        }
        if (rule.type != 'a' && rule.type != 'b' && rule.type != 'c')
                return dv_error_add(err, -EINVAL, 0,
                                    "device rule '%s': the type must be c (character), "
                                    "b (block) or a (all)",
                                    text);
        if (text[1] != ' ')
                return dv_error_add(err, -EINVAL, 0,
                                    "device rule '%s': expected one space after the type, "
                                    "as in 'c 1:3 rwm'",
                                    text);
        const char *p = text + 2;
        int r = parse_number(&p, ':', CGROUP_DEV_MAJOR_MAX, &rule.major);
        if (r < 0)
                return dv_error_add(err, r, 0,
                                    "device rule '%s': the major number must be '*' or 0..%u, "
                                    "followed by ':'",
                                    text, CGROUP_DEV_MAJOR_MAX);
        if (*p != ':')
                return dv_error_add(err, -EINVAL, 0,
                                    "device rule '%s': expected MAJOR:MINOR after the type", text);
        p++;
        r = parse_number(&p, ' ', CGROUP_DEV_MINOR_MAX, &rule.minor);
        if (r < 0)
                return dv_error_add(err, r, 0,
                                    "device rule '%s': the minor number must be '*' or 0..%u", text,
                                    CGROUP_DEV_MINOR_MAX);
        if (*p != ' ' || p[1] == '\0')
                return dv_error_add(err, -EINVAL, 0,
                                    "device rule '%s': no access after MAJOR:MINOR (one space, "
                                    "then some of r, w, m)",
                                    text);
        for (p++; *p; p++) {
                unsigned bit = *p == 'r'   ? CGROUP_DEV_READ
                               : *p == 'w' ? CGROUP_DEV_WRITE
                               : *p == 'm' ? CGROUP_DEV_MKNOD
                                           : 0;
                if (!bit)
                        return dv_error_add(err, -EINVAL, 0,
                                            "device rule '%s': access '%c' is not r, w or m", text,
                                            *p);
                if (rule.access & bit)
                        return dv_error_add(err, -EINVAL, 0,
                                            "device rule '%s': access '%c' is given twice", text,
                                            *p);
                rule.access |= bit;
        }
        /* v1 reads "a" as every device whatever follows; accept only the spelling that
         * means that everywhere, so one list means the same on both backends. */
        if (rule.type == 'a' && (rule.major != CGROUP_DEV_ANY || rule.minor != CGROUP_DEV_ANY ||
                                 rule.access != CGROUP_DEV_RWM))
                return dv_error_add(err, -EINVAL, 0,
                                    "device rule '%s': type a is every device with every access; "
                                    "write 'a' alone or name a type, c or b",
                                    text);
        *ret = rule;
        return 0;
}

static bool rule_valid(const struct cgroup_dev_rule *rule) {
        if (rule->type == 'a')
                return rule->major == CGROUP_DEV_ANY && rule->minor == CGROUP_DEV_ANY &&
                       rule->access == CGROUP_DEV_RWM;
        return (rule->type == 'c' || rule->type == 'b') &&
               (rule->major == CGROUP_DEV_ANY || rule->major <= CGROUP_DEV_MAJOR_MAX) &&
               (rule->minor == CGROUP_DEV_ANY || rule->minor <= CGROUP_DEV_MINOR_MAX) &&
               rule->access != 0 && (rule->access & ~(unsigned)CGROUP_DEV_RWM) == 0;
}

const char *cgroup_dev_rule_format(const struct cgroup_dev_rule *rule,
                                   char buf[static CGROUP_DEV_RULE_STRLEN]) {
        char major[12] = "*", minor[12] = "*";
        if (rule->major != CGROUP_DEV_ANY)
                snprintf(major, sizeof(major), "%u", rule->major);
        if (rule->minor != CGROUP_DEV_ANY)
                snprintf(minor, sizeof(minor), "%u", rule->minor);
        snprintf(buf, CGROUP_DEV_RULE_STRLEN, "%c %s:%s %s%s%s", rule->type, major, minor,
                 rule->access & CGROUP_DEV_READ ? "r" : "",
                 rule->access & CGROUP_DEV_WRITE ? "w" : "",
                 rule->access & CGROUP_DEV_MKNOD ? "m" : "");
        return buf;
}

/* ---- the program ------------------------------------------------------------------- */

/* linux/bpf.h has the opcodes but not the kernel's instruction-building macros
 * (include/linux/filter.h), and no Debian library exports them: these are the few the
 * program needs, after the kernel's. */
#define INSN(c, d, s, o, i) \
        ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_MEM_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm)  INSN(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src)      INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm)      INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off)   INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JNE_REG(dst, src, off)   INSN(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0)
#define EXIT_INSN()              INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Instructions of one rule, at most: type, access (3), major, minor, allow (2). */
#define RULE_INSNS_MAX 8

/* The kernel's access bits for ours. */
static int32_t access_bits(unsigned access) {
        return (access & CGROUP_DEV_READ ? BPF_DEVCG_ACC_READ : 0) |
               (access & CGROUP_DEV_WRITE ? BPF_DEVCG_ACC_WRITE : 0) |
               (access & CGROUP_DEV_MKNOD ? BPF_DEVCG_ACC_MKNOD : 0);
}

/* One rule's block: each test that fails jumps past the block to the next rule; passing
 * them all returns 1 (allow). Registers as the prologue leaves them. Returns the count. */
static size_t rule_block(const struct cgroup_dev_rule *rule, struct bpf_insn out[RULE_INSNS_MAX]) {
        size_t n = 0;
        if (rule->type != 'a')
                out[n++] = JNE_IMM(BPF_REG_2,
                                   rule->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0);
        if (rule->access != CGROUP_DEV_RWM) {
                /* Every access asked for must be allowed: (asked & allowed) == asked. */
                out[n++] = MOV32_REG(BPF_REG_1, BPF_REG_3);
                out[n++] = ALU32_IMM(BPF_AND, BPF_REG_1, access_bits(rule->access));
                out[n++] = JNE_REG(BPF_REG_1, BPF_REG_3, 0);
        }
        if (rule->major != CGROUP_DEV_ANY)
                out[n++] = JNE_IMM(BPF_REG_4, (int32_t)rule->major, 0);
        if (rule->minor != CGROUP_DEV_ANY)
                out[n++] = JNE_IMM(BPF_REG_5, (int32_t)rule->minor, 0);
        out[n++] = MOV64_IMM(BPF_REG_0, 1);
        out[n++] = EXIT_INSN();
        /* Every jump so far goes to the instruction after the block. */
        for (size_t i = 0; i < n; i++)
                if (BPF_CLASS(out[i].code) == BPF_JMP && BPF_OP(out[i].code) == BPF_JNE)
                        out[i].off = (int16_t)(n - i - 1);
        return n;
}

int cgroup_bpf_devices_program(const struct cgroup_dev_rule *rules, size_t n_rules,
                               struct bpf_insn **ret, size_t *ret_n) {
        if (n_rules > CGROUP_BPF_MAX_RULES)
                return -E2BIG;
        for (size_t i = 0; i < n_rules; i++)
                if (!rule_valid(&rules[i]))
                        return -EINVAL;
        const struct bpf_insn prologue[] = {
                /* access_type: the device type in the low 16 bits, the access asked
                 * for in the high 16 bits. */
                LDX_MEM_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type)),
                ALU32_IMM(BPF_AND, BPF_REG_2, 0xFFFF), /* type in r2 */
                LDX_MEM_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type)),
                ALU32_IMM(BPF_RSH, BPF_REG_3, 16), /* access in r3 */
                LDX_MEM_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major)),
                LDX_MEM_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor)),
        };
        const struct bpf_insn deny[] = {MOV64_IMM(BPF_REG_0, 0), EXIT_INSN()};
        size_t cap = ELEMENTSOF(prologue) + n_rules * RULE_INSNS_MAX + ELEMENTSOF(deny);
        _cleanup_free_ struct bpf_insn *insns = calloc(cap, sizeof(*insns));
        if (!insns)
                return -ENOMEM;
        size_t n = 0;
        memcpy(insns, prologue, sizeof(prologue));
        n += ELEMENTSOF(prologue);
        bool all = false;
        for (size_t i = 0; i < n_rules && !all; i++) {
                n += rule_block(&rules[i], insns + n);
                /* The verifier refuses code no path reaches: nothing follows "a". */
                all = rules[i].type == 'a';
        }
        if (!all) {
                memcpy(insns + n, deny, sizeof(deny));
                n += ELEMENTSOF(deny);
        }
        *ret = TAKE_PTR(insns);
        *ret_n = n;
        return 0;
}

/* ---- bpf(2) ------------------------------------------------------------------------ */

static int sys_bpf(int cmd, union bpf_attr *attr) {
        long r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
        return r < 0 ? negative_errno() : (int)r;
}

static uint64_t ptr_to_u64(const void *p) {
        return (uint64_t)(uintptr_t)p;
}

/* The verifier's log is long; a person needs its last line that is not a statistic.
 * Kernels before 6.4 keep the start of a log that does not fit, later ones the end: the
 * buffer holds the whole log of our largest program (about 200 KiB for 1024 rules
 * refused at their end). */
#define VERIFIER_LOG_SIZE (1024 * 1024)
#define VERIFIER_TAIL     2048

static void last_log_line(const char *log, char *buf, size_t size) {
        buf[0] = '\0';
        const char *end = log + strlen(log);
        while (end > log) {
                while (end > log && (end[-1] == '\n' || end[-1] == ' '))
                        end--;
                const char *start = end;
                while (start > log && start[-1] != '\n')
                        start--;
                size_t len = (size_t)(end - start);
                if (len > 0 && strncmp(start, "processed ", 10) != 0 &&
                    strncmp(start, "verification time", 17) != 0) {
                        snprintf(buf, size, "%.*s", (int)MIN(len, size - 1), start);
                        return;
                }
                end = start;
        }
}

static int prog_load(const struct bpf_insn *insns, size_t n, char *log, size_t log_size) {
        union bpf_attr attr = {
                .prog_type = BPF_PROG_TYPE_CGROUP_DEVICE,
                .insns = ptr_to_u64(insns),
                .insn_cnt = (uint32_t)n,
                .license = ptr_to_u64("GPL"),
                .log_buf = ptr_to_u64(log),
                .log_size = log ? (uint32_t)log_size : 0,
                .log_level = log ? 1 : 0,
        };
        /* Named so that bpftool prog shows whose it is. */
        snprintf(attr.prog_name, sizeof(attr.prog_name), "declvirt_devs");
        return sys_bpf(BPF_PROG_LOAD, &attr);
}

int cgroup_bpf_load(const struct bpf_insn *insns, size_t n, int *ret_fd, struct dv_error *err) {
        int fd = prog_load(insns, n, NULL, 0);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        int r = fd;
        if (r == -EPERM || r == -ENOSYS)
                return dv_error_add(err, r, 0, "cannot load a cgroup device program: %s%s",
                                    strerror(-r),
                                    r == -EPERM ? " (needs CAP_SYS_ADMIN or CAP_BPF)" : "");
        /* Refused: load it again with the verifier's log, which says why. */
        _cleanup_free_ char *log = calloc(1, VERIFIER_LOG_SIZE);
        if (!log)
                return dv_error_oom(err);
        fd = prog_load(insns, n, log, VERIFIER_LOG_SIZE);
        if (fd >= 0) { /* the second attempt worked after all */
                *ret_fd = fd;
                return 0;
        }
        char line[256];
        last_log_line(log, line, sizeof(line));
        size_t len = strlen(log);
        r = dv_error_add(err, r, 0, "the kernel refused the cgroup device program: %s%s%s%s",
                         strerror(-r), *line ? " (verifier: " : "", line, *line ? ")" : "");
        (void)dv_error_set_command(err, "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE)",
                                   log + (len > VERIFIER_TAIL ? len - VERIFIER_TAIL : 0));
        return r;
}

int cgroup_bpf_supported(void) {
        const struct cgroup_dev_rule all = {'a', CGROUP_DEV_ANY, CGROUP_DEV_ANY, CGROUP_DEV_RWM};
        _cleanup_free_ struct bpf_insn *insns = NULL;
        size_t n;
        int r = cgroup_bpf_devices_program(&all, 1, &insns, &n);
        if (r < 0)
                return r;
        int fd = prog_load(insns, n, NULL, 0);
        if (fd < 0)
                return fd;
        close(fd);
        return 0;
}

/* BPF_CGROUP_MAX_PROGS in the kernel: no cgroup holds more per attach type. */
#define MAX_ATTACHED 64

int cgroup_bpf_devices_query(int cgroup_fd, const char *name, uint32_t **ret, size_t *ret_n,
                             struct dv_error *err) {
        _cleanup_free_ uint32_t *ids = calloc(MAX_ATTACHED, sizeof(*ids));
        if (!ids)
                return dv_error_oom(err);
        union bpf_attr attr = {
                .query.target_fd = (uint32_t)cgroup_fd,
                .query.attach_type = BPF_CGROUP_DEVICE,
                .query.prog_ids = ptr_to_u64(ids),
                .query.prog_cnt = MAX_ATTACHED,
        };
        int r = sys_bpf(BPF_PROG_QUERY, &attr);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot list the device programs of cgroup %s: %s",
                                    name, strerror(-r));
        *ret_n = MIN((size_t)attr.query.prog_cnt, (size_t)MAX_ATTACHED);
        *ret = *ret_n > 0 ? TAKE_PTR(ids) : NULL;
        return 0;
}

static int prog_id_of(int prog_fd, uint32_t *ret) {
        struct bpf_prog_info info = {0};
        union bpf_attr attr = {
                .info.bpf_fd = (uint32_t)prog_fd,
                .info.info_len = sizeof(info),
                .info.info = ptr_to_u64(&info),
        };
        int r = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
        if (r < 0)
                return r;
        *ret = info.id;
        return 0;
}

static int prog_fd_of(uint32_t id) {
        union bpf_attr attr = {.prog_id = id};
        return sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
}

/* Detaches the attached programs in ids but keep; the count detached. A program gone in
 * the meantime (detached by someone else) counts as done. */
static int detach_others(int cgroup_fd, const char *name, const uint32_t *ids, size_t n,
                         uint32_t keep, struct dv_error *err) {
        int count = 0;
        for (size_t i = 0; i < n; i++) {
                if (ids[i] == keep)
                        continue;
                _cleanup_close_ int fd = prog_fd_of(ids[i]);
                if (fd == -ENOENT)
                        continue;
                if (fd < 0)
                        return dv_error_add(err, fd, 0,
                                            "cannot open device program %u of cgroup %s: %s",
                                            ids[i], name, strerror(-fd));
                union bpf_attr attr = {
                        .target_fd = (uint32_t)cgroup_fd,
                        .attach_bpf_fd = (uint32_t)fd,
                        .attach_type = BPF_CGROUP_DEVICE,
                };
                int r = sys_bpf(BPF_PROG_DETACH, &attr);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return dv_error_add(err, r, 0,
                                            "cannot detach device program %u from cgroup %s: %s",
                                            ids[i], name, strerror(-r));
                count++;
        }
        return count;
}

/* cgroup_bpf_devices_program() with its refusal in err. */
static int program_for(const char *name, const struct cgroup_dev_rule *rules, size_t n_rules,
                       struct bpf_insn **ret, size_t *ret_n, struct dv_error *err) {
        int r = cgroup_bpf_devices_program(rules, n_rules, ret, ret_n);
        if (r == -ENOMEM)
                return dv_error_oom(err);
        if (r == -E2BIG)
                return dv_error_add(err, r, 0, "cgroup %s: more than %d device rules", name,
                                    CGROUP_BPF_MAX_RULES);
        if (r < 0)
                return dv_error_add(err, r, 0, "cgroup %s: invalid device rule", name);
        return 0;
}

int cgroup_bpf_devices_set(int cgroup_fd, const char *name, const struct cgroup_dev_rule *rules,
                           size_t n_rules, struct dv_error *err) {
        _cleanup_free_ struct bpf_insn *insns = NULL;
        size_t n;
        int r = program_for(name, rules, n_rules, &insns, &n, err);
        if (r < 0)
                return r;
        _cleanup_close_ int prog = -1;
        r = cgroup_bpf_load(insns, n, &prog, err);
        if (r < 0)
                return r;
        uint32_t id;
        r = prog_id_of(prog, &id);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read the id of a device program: %s",
                                    strerror(-r));
        union bpf_attr attr = {
                .target_fd = (uint32_t)cgroup_fd,
                .attach_bpf_fd = (uint32_t)prog,
                .attach_type = BPF_CGROUP_DEVICE,
                .attach_flags = BPF_F_ALLOW_MULTI,
        };
        r = sys_bpf(BPF_PROG_ATTACH, &attr);
        if (r < 0)
                return dv_error_add(err, r, 0,
                                    "cannot attach the device program to cgroup %s: %s%s", name,
                                    strerror(-r),
                                    r == -EPERM ? " (a program attached without "
                                                  "BPF_F_ALLOW_MULTI here or above forbids it)"
                                                : "");
        /* The cgroup holds our program now (the descriptor can go); the old ones leave. */
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n_ids = 0;
        r = cgroup_bpf_devices_query(cgroup_fd, name, &ids, &n_ids, err);
        if (r < 0)
                return r;
        r = detach_others(cgroup_fd, name, ids, n_ids, id, err);
        if (r < 0)
                return r;
        log_debug("cgroup %s: device program %u attached (%zu rules), %d old detached", name, id,
                  n_rules, r);
        return 0;
}

int cgroup_bpf_devices_check(int cgroup_fd, const char *name, const struct cgroup_dev_rule *rules,
                             size_t n_rules, struct dv_error *err) {
        _cleanup_free_ struct bpf_insn *want = NULL;
        size_t n_want;
        int r = program_for(name, rules, n_rules, &want, &n_want, err);
        if (r < 0)
                return r;
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n_ids = 0;
        r = cgroup_bpf_devices_query(cgroup_fd, name, &ids, &n_ids, err);
        if (r < 0)
                return r;
        if (n_ids != 1)
                return 0;
        _cleanup_close_ int fd = prog_fd_of(ids[0]);
        if (fd == -ENOENT) /* detached since the query */
                return 0;
        if (fd < 0)
                return dv_error_add(err, fd, 0, "cannot open device program %u of cgroup %s: %s",
                                    ids[0], name, strerror(-fd));
        /* One more slot than wanted, so that a longer program shows as longer. */
        _cleanup_free_ struct bpf_insn *have = calloc(n_want + 1, sizeof(*have));
        if (!have)
                return dv_error_oom(err);
        struct bpf_prog_info info = {
                .xlated_prog_len = (uint32_t)((n_want + 1) * sizeof(*have)),
                .xlated_prog_insns = ptr_to_u64(have),
        };
        union bpf_attr attr = {
                .info.bpf_fd = (uint32_t)fd,
                .info.info_len = sizeof(info),
                .info.info = ptr_to_u64(&info),
        };
        r = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read device program %u of cgroup %s: %s",
                                    ids[0], name, strerror(-r));
        /* The kernel hands back the program as it runs it; a device program's context is
         * read as it is, so that is the program loaded. */
        return info.type == BPF_PROG_TYPE_CGROUP_DEVICE &&
               info.xlated_prog_len == n_want * sizeof(*want) &&
               memcmp(have, want, n_want * sizeof(*want)) == 0;
}

int cgroup_bpf_devices_clear(int cgroup_fd, const char *name, struct dv_error *err) {
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n_ids = 0;
        int r = cgroup_bpf_devices_query(cgroup_fd, name, &ids, &n_ids, err);
        if (r < 0)
                return r;
        return detach_others(cgroup_fd, name, ids, n_ids, 0, err);
}
