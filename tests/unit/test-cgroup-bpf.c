/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device allow-lists on cgroup v2 (drivers/domain/cgroup-bpf.c): the rule parser, the
 * generated program (its instructions, and what it decides for every kind of access), the
 * verifier's log on a refusal, and, as root, the real thing: a process moved into a fresh
 * cgroup v2 with the program attached can open and mknod only what the rules allow. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/magic.h>

#include <cmocka.h>

#include "drivers/domain/cgroup-bpf.h"
#include "tests/helpers/testlib.h"
#include "util/macro.h"

#define ANY CGROUP_DEV_ANY

/* ---- the rule parser --------------------------------------------------------------- */

static void test_parse_good(void **state) {
        (void)state;
        static const struct {
                const char *text;
                struct cgroup_dev_rule rule;
                const char *formatted; /* what v1's devices.allow is given */
        } cases[] = {
                {"c 1:3 rwm", {'c', 1, 3, CGROUP_DEV_RWM}, "c 1:3 rwm"},
                {"c 1:7 r", {'c', 1, 7, CGROUP_DEV_READ}, "c 1:7 r"},
                {"b 8:* w", {'b', 8, ANY, CGROUP_DEV_WRITE}, "b 8:* w"},
                {"c *:* m", {'c', ANY, ANY, CGROUP_DEV_MKNOD}, "c *:* m"},
                {"c 136:* rw", {'c', 136, ANY, CGROUP_DEV_READ | CGROUP_DEV_WRITE}, "c 136:* rw"},
                {"c 1:3 mwr", {'c', 1, 3, CGROUP_DEV_RWM}, "c 1:3 rwm"},
                {"b 0:0 wm", {'b', 0, 0, CGROUP_DEV_WRITE | CGROUP_DEV_MKNOD}, "b 0:0 wm"},
                {"c 4095:1048575 r", {'c', 4095, 1048575, CGROUP_DEV_READ}, "c 4095:1048575 r"},
                {"c 007:08 r", {'c', 7, 8, CGROUP_DEV_READ}, "c 7:8 r"},
                {"a", {'a', ANY, ANY, CGROUP_DEV_RWM}, "a *:* rwm"},
                {"a *:* rwm", {'a', ANY, ANY, CGROUP_DEV_RWM}, "a *:* rwm"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                struct cgroup_dev_rule rule = {0};
                int r = cgroup_dev_rule_parse(cases[i].text, &rule, &err);
                if (r < 0)
                        print_message("'%s': %s\n", cases[i].text, strna(dv_error_message(&err)));
                assert_int_equal(r, 0);
                assert_false(dv_error_failed(&err));
                assert_int_equal(rule.type, cases[i].rule.type);
                assert_int_equal(rule.major, cases[i].rule.major);
                assert_int_equal(rule.minor, cases[i].rule.minor);
                assert_int_equal(rule.access, cases[i].rule.access);
                char buf[CGROUP_DEV_RULE_STRLEN];
                assert_string_equal(cgroup_dev_rule_format(&rule, buf), cases[i].formatted);
                /* What is formatted parses back to the same rule. */
                struct cgroup_dev_rule again = {0};
                assert_int_equal(cgroup_dev_rule_parse(buf, &again, NULL), 0);
                assert_memory_equal(&again, &rule, sizeof(rule));
        }
}

static void test_parse_bad(void **state) {
        (void)state;
        static const struct {
                const char *text;
                int code;
                const char *message; /* the whole message */
        } cases[] = {
                {"", -EINVAL, "empty device rule"},
                {"x 1:3 rwm", -EINVAL,
                 "device rule 'x 1:3 rwm': the type must be c (character), b (block) or a (all)"},
                {"c1:3 rwm", -EINVAL,
                 "device rule 'c1:3 rwm': expected one space after the type, as in 'c 1:3 rwm'"},
                {"c  1:3 rwm", -EINVAL,
                 "device rule 'c  1:3 rwm': the major number must be '*' or 0..4095, followed "
                 "by ':'"},
                {"c 1 rwm", -EINVAL,
                 "device rule 'c 1 rwm': the major number must be '*' or 0..4095, followed by "
                 "':'"},
                {"c 1", -EINVAL, "device rule 'c 1': expected MAJOR:MINOR after the type"},
                {"c -1:3 r", -EINVAL,
                 "device rule 'c -1:3 r': the major number must be '*' or 0..4095, followed by "
                 "':'"},
                {"c +1:3 r", -EINVAL,
                 "device rule 'c +1:3 r': the major number must be '*' or 0..4095, followed by "
                 "':'"},
                {"c **:3 r", -EINVAL,
                 "device rule 'c **:3 r': the major number must be '*' or 0..4095, followed by "
                 "':'"},
                {"c 4096:0 r", -ERANGE,
                 "device rule 'c 4096:0 r': the major number must be '*' or 0..4095, followed "
                 "by ':'"},
                {"c 1:1048576 r", -ERANGE,
                 "device rule 'c 1:1048576 r': the minor number must be '*' or 0..1048575"},
                {"c 1:99999999999999999999 r", -EINVAL,
                 "device rule 'c 1:99999999999999999999 r': the minor number must be '*' or "
                 "0..1048575"},
                {"c 1: r", -EINVAL,
                 "device rule 'c 1: r': the minor number must be '*' or 0..1048575"},
                {"c 1:3", -EINVAL,
                 "device rule 'c 1:3': no access after MAJOR:MINOR (one space, then some of r, "
                 "w, m)"},
                {"c 1:3 ", -EINVAL,
                 "device rule 'c 1:3 ': no access after MAJOR:MINOR (one space, then some of r, "
                 "w, m)"},
                {"c 1:3  r", -EINVAL, "device rule 'c 1:3  r': access ' ' is not r, w or m"},
                {"c 1:3 r ", -EINVAL, "device rule 'c 1:3 r ': access ' ' is not r, w or m"},
                {"c 1:3 rwx", -EINVAL, "device rule 'c 1:3 rwx': access 'x' is not r, w or m"},
                {"c 1:3 rr", -EINVAL, "device rule 'c 1:3 rr': access 'r' is given twice"},
                {"c 1:3 rwmr", -EINVAL, "device rule 'c 1:3 rwmr': access 'r' is given twice"},
                {"a 1:3 r", -EINVAL,
                 "device rule 'a 1:3 r': type a is every device with every access; write 'a' "
                 "alone or name a type, c or b"},
                {"a *:* r", -EINVAL,
                 "device rule 'a *:* r': type a is every device with every access; write 'a' "
                 "alone or name a type, c or b"},
                {"c 1:3 r\n", -EINVAL,
                 "device rule contains a byte that is not printable ASCII (0x0a)"},
                {"c 1:\x01 r", -EINVAL,
                 "device rule contains a byte that is not printable ASCII (0x01)"},
                {"c 1:3 r\xc3\xa9", -EINVAL,
                 "device rule contains a byte that is not printable ASCII (0xc3)"},
                {"c 1:3 rwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwmrwm", -EINVAL,
                 "device rule longer than 64 bytes; a rule reads like 'c 1:3 rwm'"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                struct cgroup_dev_rule rule = {'z', 77, 77, 77};
                int r = cgroup_dev_rule_parse(cases[i].text, &rule, &err);
                if (r != cases[i].code || !dv_error_message(&err) ||
                    !streq(dv_error_message(&err), cases[i].message))
                        print_message("'%s'\n  expected: %d %s\n  actual:   %d %s\n", cases[i].text,
                                      cases[i].code, cases[i].message, r,
                                      strna(dv_error_message(&err)));
                assert_int_equal(r, cases[i].code);
                assert_string_equal(dv_error_message(&err), cases[i].message);
                /* Nothing is handed out on failure. */
                assert_int_equal(rule.type, 'z');
                assert_int_equal(rule.major, 77);
        }
        assert_int_equal(cgroup_dev_rule_parse(NULL, &(struct cgroup_dev_rule){0}, NULL), -EINVAL);
}

/* ---- the program ------------------------------------------------------------------- */

static struct cgroup_dev_rule rule_of(const char *text) {
        struct cgroup_dev_rule rule = {0};
        assert_int_equal(cgroup_dev_rule_parse(text, &rule, NULL), 0);
        return rule;
}

/* The instructions, spelled with the kernel's opcodes rather than the module's macros. */
#define I(c, d, s, o, i) \
        { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) }
static const struct bpf_insn prologue[] = {
        I(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0), /* r2 = ctx->access_type */
        I(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xFFFF),
        I(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0), /* r3 = ctx->access_type */
        I(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16),
        I(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0), /* r4 = ctx->major */
        I(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0), /* r5 = ctx->minor */
};
#define ALLOW I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1), I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define DENY  I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0), I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static void check_program(const char *const *texts, size_t n_texts, const struct bpf_insn *body,
                          size_t n_body) {
        struct cgroup_dev_rule rules[8];
        assert_true(n_texts <= ELEMENTSOF(rules));
        for (size_t i = 0; i < n_texts; i++)
                rules[i] = rule_of(texts[i]);
        _cleanup_free_ struct bpf_insn *insns = NULL;
        size_t n = 0;
        assert_int_equal(cgroup_bpf_devices_program(rules, n_texts, &insns, &n), 0);
        assert_int_equal(n, ELEMENTSOF(prologue) + n_body);
        assert_memory_equal(insns, prologue, sizeof(prologue));
        for (size_t i = 0; i < n_body; i++) {
                const struct bpf_insn *a = &insns[ELEMENTSOF(prologue) + i], *e = &body[i];
                if (memcmp(a, e, sizeof(*a)) != 0)
                        fail_msg("instruction %zu: code %#x dst %u src %u off %d imm %d, expected "
                                 "code %#x dst %u src %u off %d imm %d",
                                 ELEMENTSOF(prologue) + i, a->code, a->dst_reg, a->src_reg, a->off,
                                 a->imm, e->code, e->dst_reg, e->src_reg, e->off, e->imm);
        }
}

static void test_program_instructions(void **state) {
        (void)state;
        /* No rule: deny everything. */
        static const struct bpf_insn none[] = {DENY};
        check_program(NULL, 0, none, ELEMENTSOF(none));

        /* Type, major, minor; every access. */
        static const struct bpf_insn null[] = {
                I(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 4, BPF_DEVCG_DEV_CHAR),
                I(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 3, 1),
                I(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 2, 3),
                ALLOW,
                DENY,
        };
        check_program((const char *[]){"c 1:3 rwm"}, 1, null, ELEMENTSOF(null));

        /* Access: (asked & allowed) == asked; wildcards add no test. */
        static const struct bpf_insn blk[] = {
                I(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 6, BPF_DEVCG_DEV_BLOCK),
                I(BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0),
                I(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_MKNOD),
                I(BPF_JMP | BPF_JNE | BPF_X, 1, 3, 3, 0),
                I(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 2, 7),
                ALLOW,
                I(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 2, BPF_DEVCG_DEV_CHAR),
                ALLOW,
                DENY,
        };
        check_program((const char *[]){"b 7:* rm", "c *:* rwm"}, 2, blk, ELEMENTSOF(blk));

        /* "a" allows everything, and nothing may follow it (the verifier refuses code
         * that no path reaches). */
        static const struct bpf_insn all[] = {
                I(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 3, BPF_DEVCG_DEV_CHAR),
                I(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 2, 5),
                ALLOW,
                ALLOW,
        };
        check_program((const char *[]){"c *:5 rwm", "a", "c 1:3 r"}, 3, all, ELEMENTSOF(all));

        /* Refused: too many rules, or a rule the parser would never give. */
        _cleanup_free_ struct cgroup_dev_rule *many =
                calloc(CGROUP_BPF_MAX_RULES + 1, sizeof(*many));
        assert_non_null(many);
        for (size_t i = 0; i <= CGROUP_BPF_MAX_RULES; i++)
                many[i] = rule_of("c 1:3 r");
        struct bpf_insn *insns = NULL;
        size_t n = 0;
        assert_int_equal(cgroup_bpf_devices_program(many, CGROUP_BPF_MAX_RULES + 1, &insns, &n),
                         -E2BIG);
        assert_null(insns);
        const struct cgroup_dev_rule bad[] = {
                {'x', 1, 3, CGROUP_DEV_READ},
                {'c', 1, 3, 0},
                {'c', 1, 3, 8},
                {'c', 4096, 3, CGROUP_DEV_READ},
                {'c', 1, 1 << 20, CGROUP_DEV_READ},
                {'a', 1, ANY, CGROUP_DEV_RWM},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(cgroup_bpf_devices_program(&bad[i], 1, &insns, &n), -EINVAL);
        assert_null(insns);
}

/* Runs the program on one access, the way the kernel would: the few instructions the
 * generator uses, each with its eBPF meaning. Fails on anything else. */
static int run_program(const struct bpf_insn *p, size_t n, uint32_t type, uint32_t access,
                       uint32_t major, uint32_t minor) {
        struct bpf_cgroup_dev_ctx ctx = {
                .access_type = type | access << 16, .major = major, .minor = minor};
        uint64_t r[11] = {0};
        bool is_ctx[11] = {[1] = true};
        for (size_t pc = 0; pc < n; pc++) {
                const struct bpf_insn *x = &p[pc];
                assert_true(x->dst_reg <= 10 && x->src_reg <= 10);
                switch (x->code) {
                case BPF_LDX | BPF_MEM | BPF_W:
                        assert_true(is_ctx[x->src_reg]);
                        assert_true(x->off >= 0 && x->off <= 8 && x->off % 4 == 0);
                        memcpy(&r[x->dst_reg], (char *)&ctx + x->off, 4);
                        r[x->dst_reg] &= UINT32_MAX;
                        break;
                case BPF_ALU | BPF_AND | BPF_K:
                        r[x->dst_reg] = (uint32_t)r[x->dst_reg] & (uint32_t)x->imm;
                        break;
                case BPF_ALU | BPF_RSH | BPF_K:
                        r[x->dst_reg] = (uint32_t)r[x->dst_reg] >> x->imm;
                        break;
                case BPF_ALU | BPF_MOV | BPF_X:
                        r[x->dst_reg] = (uint32_t)r[x->src_reg];
                        break;
                case BPF_ALU64 | BPF_MOV | BPF_K:
                        r[x->dst_reg] = (uint64_t)(int64_t)x->imm;
                        break;
                case BPF_JMP | BPF_JNE | BPF_K:
                        if (r[x->dst_reg] != (uint64_t)(int64_t)x->imm)
                                pc += (size_t)x->off;
                        break;
                case BPF_JMP | BPF_JNE | BPF_X:
                        if (r[x->dst_reg] != r[x->src_reg])
                                pc += (size_t)x->off;
                        break;
                case BPF_JMP | BPF_EXIT:
                        return (int)r[0];
                default:
                        fail_msg("instruction %zu: unexpected code %#x", pc, x->code);
                }
                is_ctx[x->dst_reg] = false;
                assert_true(x->off >= 0); /* forward only: the run ends */
        }
        fail_msg("the program runs off its end");
        return -1;
}

/* What the rules mean, written from v1's description rather than from the program. */
static bool reference_allows(const struct cgroup_dev_rule *rules, size_t n, char type,
                             unsigned access, uint32_t major, uint32_t minor) {
        for (size_t i = 0; i < n; i++) {
                const struct cgroup_dev_rule *x = &rules[i];
                if ((x->type == 'a' || x->type == type) && (x->major == ANY || x->major == major) &&
                    (x->minor == ANY || x->minor == minor) && (access & ~x->access) == 0)
                        return true;
        }
        return false;
}

static void check_decisions(const char *const *texts, size_t n_texts, size_t *allowed,
                            size_t *denied) {
        struct cgroup_dev_rule rules[8];
        for (size_t i = 0; i < n_texts; i++)
                rules[i] = rule_of(texts[i]);
        _cleanup_free_ struct bpf_insn *insns = NULL;
        size_t n = 0;
        assert_int_equal(cgroup_bpf_devices_program(rules, n_texts, &insns, &n), 0);
        static const uint32_t majors[] = {0, 1, 5, 7, 136, 4095};
        static const uint32_t minors[] = {0, 1, 3, 5, 7, 9, 1048575};
        *allowed = *denied = 0;
        for (int t = 0; t < 2; t++)
                for (size_t a = 0; a < ELEMENTSOF(majors); a++)
                        for (size_t b = 0; b < ELEMENTSOF(minors); b++)
                                for (unsigned acc = 1; acc <= CGROUP_DEV_RWM; acc++) {
                                        uint32_t kacc =
                                                (acc & CGROUP_DEV_READ ? BPF_DEVCG_ACC_READ : 0) |
                                                (acc & CGROUP_DEV_WRITE ? BPF_DEVCG_ACC_WRITE : 0) |
                                                (acc & CGROUP_DEV_MKNOD ? BPF_DEVCG_ACC_MKNOD : 0);
                                        bool want = reference_allows(rules, n_texts, t ? 'b' : 'c',
                                                                     acc, majors[a], minors[b]);
                                        int got = run_program(insns, n,
                                                              t ? BPF_DEVCG_DEV_BLOCK
                                                                : BPF_DEVCG_DEV_CHAR,
                                                              kacc, majors[a], minors[b]);
                                        if (got != want)
                                                fail_msg("%c %u:%u access %u: program says %d, "
                                                         "rules say %d",
                                                         t ? 'b' : 'c', majors[a], minors[b], acc,
                                                         got, want);
                                        (want ? (*allowed)++ : (*denied)++);
                                }
}

static void test_program_decisions(void **state) {
        (void)state;
        size_t allowed, denied;
        static const char *const mixed[] = {"c 1:3 rwm", "c 1:7 r",    "b 7:* rw",
                                            "c *:5 m",   "c 136:* rw", "b 0:1 wm"};
        check_decisions(mixed, ELEMENTSOF(mixed), &allowed, &denied);
        assert_true(allowed > 0 && denied > 0);
        check_decisions(NULL, 0, &allowed, &denied);
        assert_int_equal(allowed, 0);
        static const char *const all[] = {"c 1:3 r", "a"};
        check_decisions(all, ELEMENTSOF(all), &allowed, &denied);
        assert_int_equal(denied, 0);
        static const char *const chars[] = {"c *:* rwm"};
        check_decisions(chars, 1, &allowed, &denied);
        assert_int_equal(allowed, denied); /* every char device, no block device */
}

/* ---- the kernel -------------------------------------------------------------------- */

static bool bpf_usable(void) {
        int r = cgroup_bpf_supported();
        if (r < 0)
                print_message("skip: cannot load cgroup device programs here: %s\n", strerror(-r));
        return r == 0;
}

/* The verifier's refusal reaches the error with its reason. */
static void test_verifier_log(void **state) {
        (void)state;
        if (!bpf_usable()) {
                skip();
                return;
        }
        /* Returns without setting r0. */
        static const struct bpf_insn bad[] = {I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int fd = -1;
        int r = cgroup_bpf_load(bad, ELEMENTSOF(bad), &fd, &err);
        assert_int_equal(r, -EACCES);
        assert_int_equal(fd, -1);
        print_message("%s\n", dv_error_message(&err));
        assert_string_equal(dv_error_message(&err),
                            "the kernel refused the cgroup device program: Permission denied "
                            "(verifier: R0 !read_ok)");
        assert_non_null(err.stderr_tail);
        assert_non_null(strstr(err.stderr_tail, "R0 !read_ok"));
}

/* Every program the generator makes passes the verifier, the largest too. */
static void test_load(void **state) {
        (void)state;
        if (!bpf_usable()) {
                skip();
                return;
        }
        _cleanup_free_ struct cgroup_dev_rule *many = calloc(CGROUP_BPF_MAX_RULES, sizeof(*many));
        assert_non_null(many);
        static const char *const kinds[] = {"c 1:3 r", "b 7:* rw", "c *:5 m", "b *:* rwm"};
        for (size_t i = 0; i < CGROUP_BPF_MAX_RULES; i++)
                many[i] = rule_of(kinds[i % ELEMENTSOF(kinds)]);
        const size_t counts[] = {0, 1, 2, 9, 100, CGROUP_BPF_MAX_RULES};
        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                _cleanup_free_ struct bpf_insn *insns = NULL;
                size_t n = 0;
                assert_int_equal(cgroup_bpf_devices_program(many, counts[i], &insns, &n), 0);
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                int fd = -1;
                int r = cgroup_bpf_load(insns, n, &fd, &err);
                if (r < 0)
                        print_message("%zu rules: %s\n", counts[i], dv_error_message(&err));
                assert_int_equal(r, 0);
                assert_true(fd >= 0);
                /* The kernel's descriptors are close-on-exec: nothing the agent starts
                 * inherits a program. */
                assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                close(fd);
        }
}

/* A fresh cgroup v2 directory per test, removed at teardown. */
struct cg {
        char *path;
        char *sub; /* a child cgroup, for the nesting test */
        char *tmp; /* a directory for mknod */
        int fd;
        char *name; /* as /proc/PID/cgroup shows it: "/declvirt-test-..." */
};

static const char *cgroup2_root(void) {
        static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                struct statfs sf;
                if (statfs(roots[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC)
                        return roots[i];
        }
        return NULL;
}

static int cg_setup(void **state) {
        struct cg *cg = calloc(1, sizeof(*cg));
        assert_non_null(cg);
        cg->fd = -1;
        *state = cg;
        const char *root = cgroup2_root();
        if (geteuid() != 0 || !root)
                return 0; /* the test skips, saying why */
        assert_true(asprintf(&cg->path, "%s/declvirt-test-XXXXXX", root) > 0);
        if (!mkdtemp(cg->path))
                fail_msg("cannot create a cgroup under %s: %s", root, strerror(errno));
        cg->name = strdup(cg->path + strlen(root));
        cg->fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        assert_true(cg->fd >= 0);
        struct statfs sf;
        cg->tmp = statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC
                          ? strdup("/dev/shm/declvirt-cgbpf.XXXXXX")
                          : strdup("/tmp/declvirt-cgbpf.XXXXXX");
        assert_non_null(mkdtemp(cg->tmp));
        return 0;
}

static int cg_teardown(void **state) {
        struct cg *cg = *state;
        if (cg->fd >= 0)
                close(cg->fd);
        /* The children were reaped, so the cgroups are empty and go, with the programs. */
        if (cg->sub && rmdir(cg->sub) < 0)
                print_message("cannot remove %s: %s\n", cg->sub, strerror(errno));
        if (cg->path && rmdir(cg->path) < 0)
                print_message("cannot remove %s: %s\n", cg->path, strerror(errno));
        test_rm_rf(cg->tmp);
        free(cg->path);
        free(cg->sub);
        free(cg->tmp);
        free(cg->name);
        free(cg);
        return 0;
}

static bool cg_usable(const struct cg *cg) {
        if (geteuid() != 0) {
                print_message("skip: needs root\n");
                return false;
        }
        if (!cg->path) {
                print_message("skip: no cgroup2 hierarchy at /sys/fs/cgroup or "
                              "/sys/fs/cgroup/unified\n");
                return false;
        }
        return bpf_usable();
}

/* What a process in the cgroup tries, and the errno it must get (0: it works). */
enum op_kind { OP_OPEN, OP_MKNOD };
struct op {
        enum op_kind kind;
        const char *path; /* OP_MKNOD: a name in cg->tmp */
        int flags;
        mode_t mode;
        dev_t dev;
        int expect;
};

static const char *op_describe(const struct op *op, char *buf, size_t size) {
        if (op->kind == OP_OPEN)
                snprintf(buf, size, "open(%s, %s)", op->path,
                         (op->flags & O_ACCMODE) == O_RDONLY   ? "O_RDONLY"
                         : (op->flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                                                               : "O_RDWR");
        else
                snprintf(buf, size, "mknod(%s, %s %u:%u)", op->path, S_ISBLK(op->mode) ? "b" : "c",
                         major(op->dev), minor(op->dev));
        return buf;
}

static int op_run(const struct op *op, const char *tmp) {
        if (op->kind == OP_OPEN) {
                int fd = open(op->path, op->flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0)
                        return errno;
                close(fd);
                return 0;
        }
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", tmp, op->path);
        if (mknod(path, op->mode | 0600, op->dev) < 0)
                return errno;
        unlink(path);
        return 0;
}

static int read_full(int fd, void *buf, size_t size) {
        size_t got = 0;
        while (got < size) {
                ssize_t k = read(fd, (char *)buf + got, size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                got += (size_t)k;
        }
        return 0;
}

/* Forks a child, moves it into the cgroup at dir (its pid into cgroup.procs), checks
 * /proc/PID/cgroup says so, then lets it run ops and compares what each gave. The child
 * is root with every capability: only the cgroup's program stands in its way. */
static void run_in_cgroup(const char *dir, const char *name, const char *tmp, const struct op *ops,
                          size_t n) {
        int go[2], res[2];
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(res, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(go[1]);
                close(res[0]);
                char c;
                if (read(go[0], &c, 1) != 1)
                        _exit(2); /* the parent could not move us */
                int results[32];
                for (size_t i = 0; i < n && i < ELEMENTSOF(results); i++)
                        results[i] = op_run(&ops[i], tmp);
                _exit(write(res[1], results, n * sizeof(int)) == (ssize_t)(n * sizeof(int)) ? 0
                                                                                            : 3);
        }
        close(go[0]);
        close(res[1]);
        assert_true(n <= 32);

        char procs[512], pidstr[32], path[64], want[512];
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        int len = snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        bool moved = fd >= 0 && write(fd, pidstr, (size_t)len) == len;
        int saved = errno;
        if (fd >= 0)
                close(fd);
        /* The child's unified cgroup (the "0::" line) is now ours. */
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        snprintf(want, sizeof(want), "0::%s\n", name);
        _cleanup_free_ char *cgroups = moved ? test_read_file(path, NULL) : NULL;
        bool inside = cgroups && strstr(cgroups, want);
        if (moved && inside)
                assert_int_equal(write(go[1], "x", 1), 1);
        close(go[1]);
        int results[32];
        int got = read_full(res[0], results, n * sizeof(int));
        close(res[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!moved)
                fail_msg("cannot move %d into %s: %s", (int)pid, procs, strerror(saved));
        if (!inside)
                fail_msg("%s does not show %s:\n%s", path, name, cgroups);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(got, 0);
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
                char what[256];
                op_describe(&ops[i], what, sizeof(what));
                print_message("%s %s in %s: %s\n", results[i] == ops[i].expect ? "  " : "!!", what,
                              name, results[i] ? strerror(results[i]) : "works");
                ok = ok && results[i] == ops[i].expect;
        }
        assert_true(ok);
}

/* The same operations work outside the cgroup: what fails inside fails because of the
 * program. */
static void run_outside(const char *tmp, const struct op *ops, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char what[256];
                int r = op_run(&ops[i], tmp);
                if (r != 0)
                        fail_msg("%s fails outside the cgroup: %s",
                                 op_describe(&ops[i], what, sizeof(what)), strerror(r));
        }
}

static char *first_block_device(void) {
        static const char *const candidates[] = {"/dev/loop0", "/dev/loop1", "/dev/loop7"};
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                struct stat st;
                if (stat(candidates[i], &st) == 0 && S_ISBLK(st.st_mode))
                        return strdup(candidates[i]);
        }
        DIR *d = opendir("/dev");
        if (!d)
                return NULL;
        char *found = NULL;
        struct dirent *e;
        while (!found && (e = readdir(d))) {
                char p[300];
                struct stat st;
                snprintf(p, sizeof(p), "/dev/%s", e->d_name);
                if (lstat(p, &st) == 0 && S_ISBLK(st.st_mode))
                        found = strdup(p);
        }
        closedir(d);
        return found;
}

static struct cgroup_dev_rule *rules_of(const char *const *texts, size_t n) {
        struct cgroup_dev_rule *rules = calloc(n, sizeof(*rules));
        assert_non_null(rules);
        for (size_t i = 0; i < n; i++)
                rules[i] = rule_of(texts[i]);
        return rules;
}

static void set_rules(const struct cg *cg, int fd, const char *name, const char *const *texts,
                      size_t n) {
        _cleanup_free_ struct cgroup_dev_rule *rules = rules_of(texts, n);
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int r = cgroup_bpf_devices_set(fd, name, rules, n, &err);
        if (r < 0)
                print_message("%s: %s\n", cg->path, dv_error_message(&err));
        assert_int_equal(r, 0);
        assert_int_equal(cgroup_bpf_devices_check(fd, name, rules, n, &err), 1);
}

static size_t n_attached(int fd, const char *name) {
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n = 0;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cgroup_bpf_devices_query(fd, name, &ids, &n, &err), 0);
        return n;
}

static void test_in_cgroup(void **state) {
        struct cg *cg = *state;
        if (!cg_usable(cg)) {
                skip();
                return;
        }
        _cleanup_free_ char *blk = first_block_device();
        struct stat blk_st = {0};
        if (!blk || stat(blk, &blk_st) < 0)
                fail_msg("no block device node under /dev");
        static const char *const list[] = {"c 1:3 rwm", "c 1:9 rwm", "c 1:7 r"};
        set_rules(cg, cg->fd, cg->path, list, ELEMENTSOF(list));
        assert_int_equal(n_attached(cg->fd, cg->path), 1);

        const struct op ops[] = {
                {OP_OPEN, "/dev/null", O_RDWR, 0, 0, 0},
                {OP_OPEN, "/dev/urandom", O_RDONLY, 0, 0, 0},
                {OP_OPEN, "/dev/full", O_RDONLY, 0, 0, 0},     /* c 1:7 r */
                {OP_OPEN, "/dev/full", O_WRONLY, 0, 0, EPERM}, /* not w */
                {OP_OPEN, "/dev/full", O_RDWR, 0, 0, EPERM},   /* r alone is not rw */
                {OP_OPEN, "/dev/zero", O_RDONLY, 0, 0, EPERM}, /* c 1:5: no rule */
                {OP_OPEN, "/dev/loop-control", O_RDWR, 0, 0, EPERM},
                {OP_OPEN, blk, O_RDONLY, 0, 0, EPERM}, /* a block device */
                {OP_MKNOD, "null", 0, S_IFCHR, makedev(1, 3), 0},
                {OP_MKNOD, "zero", 0, S_IFCHR, makedev(1, 5), EPERM},
                {OP_MKNOD, "full", 0, S_IFCHR, makedev(1, 7), EPERM}, /* r but not m */
                {OP_MKNOD, "disk", 0, S_IFBLK, blk_st.st_rdev, EPERM},
        };
        run_outside(cg->tmp, ops, ELEMENTSOF(ops));
        run_in_cgroup(cg->path, cg->name, cg->tmp, ops, ELEMENTSOF(ops));

        /* A new list replaces the old: one program again, and /dev/full is gone. */
        static const char *const narrower[] = {"c 1:3 rwm"};
        _cleanup_free_ struct cgroup_dev_rule *old = rules_of(list, ELEMENTSOF(list));
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        set_rules(cg, cg->fd, cg->path, narrower, 1);
        assert_int_equal(n_attached(cg->fd, cg->path), 1);
        assert_int_equal(cgroup_bpf_devices_check(cg->fd, cg->path, old, ELEMENTSOF(list), &err),
                         0);
        const struct op after[] = {
                {OP_OPEN, "/dev/null", O_RDWR, 0, 0, 0},
                {OP_OPEN, "/dev/full", O_RDONLY, 0, 0, EPERM},
                {OP_OPEN, "/dev/urandom", O_RDONLY, 0, 0, EPERM},
        };
        run_in_cgroup(cg->path, cg->name, cg->tmp, after, ELEMENTSOF(after));

        /* Cleared: nothing attached, everything opens again. */
        assert_int_equal(cgroup_bpf_devices_clear(cg->fd, cg->path, &err), 1);
        assert_int_equal(n_attached(cg->fd, cg->path), 0);
        assert_int_equal(cgroup_bpf_devices_check(cg->fd, cg->path, old, ELEMENTSOF(list), &err),
                         0);
        const struct op cleared[] = {
                {OP_OPEN, "/dev/full", O_WRONLY, 0, 0, 0},
                {OP_OPEN, blk, O_RDONLY, 0, 0, 0},
        };
        run_in_cgroup(cg->path, cg->name, cg->tmp, cleared, ELEMENTSOF(cleared));
        assert_false(dv_error_failed(&err));
}

/* A list on a child cgroup cannot widen its parent's: both programs run (ALLOW_MULTI). */
static void test_parent_narrows(void **state) {
        struct cg *cg = *state;
        if (!cg_usable(cg)) {
                skip();
                return;
        }
        assert_true(asprintf(&cg->sub, "%s/guest", cg->path) > 0);
        assert_int_equal(mkdir(cg->sub, 0755), 0);
        _cleanup_close_ int sub = open(cg->sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        assert_true(sub >= 0);
        _cleanup_free_ char *subname = NULL;
        assert_true(asprintf(&subname, "%s/guest", cg->name) > 0);

        static const char *const parent[] = {"c 1:3 rwm", "c 1:5 r"};
        static const char *const child[] = {"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm"};
        set_rules(cg, cg->fd, cg->path, parent, ELEMENTSOF(parent));
        set_rules(cg, sub, cg->sub, child, ELEMENTSOF(child));
        /* Each holds its own; the child's query does not list the parent's program. */
        assert_int_equal(n_attached(cg->fd, cg->path), 1);
        assert_int_equal(n_attached(sub, cg->sub), 1);
        const struct op ops[] = {
                {OP_OPEN, "/dev/null", O_RDWR, 0, 0, 0},
                {OP_OPEN, "/dev/zero", O_RDONLY, 0, 0, 0},
                {OP_OPEN, "/dev/zero", O_WRONLY, 0, 0, EPERM}, /* the parent: r only */
                {OP_OPEN, "/dev/full", O_RDONLY, 0, 0, EPERM}, /* the parent: none */
        };
        run_in_cgroup(cg->sub, subname, cg->tmp, ops, ELEMENTSOF(ops));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_program_instructions),
                cmocka_unit_test(test_program_decisions),
                cmocka_unit_test(test_verifier_log),
                cmocka_unit_test(test_load),
                cmocka_unit_test_setup_teardown(test_in_cgroup, cg_setup, cg_teardown),
                cmocka_unit_test_setup_teardown(test_parent_narrows, cg_setup, cg_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
