/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device allow-lists for cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program generated from
 * rules written as cgroup v1's devices.allow lines ("c 1:3 rwm"), loaded and attached to a
 * guest's cgroup. One rule list serves both backends: v1 writes cgroup_dev_rule_format()
 * into devices.allow, v2 attaches cgroup_bpf_devices_set(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct bpf_insn; /* linux/bpf.h */

/* '*' in a rule: any major or any minor. */
#define CGROUP_DEV_ANY UINT32_MAX
/* The kernel's limits (12-bit majors, 20-bit minors, include/linux/kdev_t.h). */
#define CGROUP_DEV_MAJOR_MAX 4095u
#define CGROUP_DEV_MINOR_MAX 1048575u

/* Access bits, as the letters of a rule. */
enum {
        CGROUP_DEV_READ = 1 << 0,  /* r: open for reading */
        CGROUP_DEV_WRITE = 1 << 1, /* w: open for writing */
        CGROUP_DEV_MKNOD = 1 << 2, /* m: mknod */
        CGROUP_DEV_RWM = CGROUP_DEV_READ | CGROUP_DEV_WRITE | CGROUP_DEV_MKNOD,
};

/* One allow rule: a v1 devices.allow line. type 'a' is every device with every access
 * (major, minor CGROUP_DEV_ANY and access CGROUP_DEV_RWM), as on v1. */
struct cgroup_dev_rule {
        char type;       /* 'a', 'c' or 'b' */
        uint32_t major;  /* or CGROUP_DEV_ANY */
        uint32_t minor;  /* or CGROUP_DEV_ANY */
        unsigned access; /* CGROUP_DEV_* bits, never 0 */
};

/* Longest formatted rule ("c 4095:1048575 rwm") with its NUL, rounded up. */
#define CGROUP_DEV_RULE_STRLEN 32

/* Parses "TYPE MAJOR:MINOR ACCESS" (TYPE c or b; MAJOR and MINOR decimal or '*'; ACCESS one
 * to three distinct letters of r, w, m, in any order; single spaces), or "a" or
 * "a *:* rwm". Anything else is -EINVAL (-ERANGE for a number beyond the kernel's limits)
 * with a message quoting the rule and saying what is wrong. */
int cgroup_dev_rule_parse(const char *text, struct cgroup_dev_rule *ret, struct dv_error *err);
/* The rule as v1's devices.allow takes it ("c 136:* rw", "a *:* rwm"); returns buf. */
const char *cgroup_dev_rule_format(const struct cgroup_dev_rule *rule,
                                   char buf[static CGROUP_DEV_RULE_STRLEN]);

/* Most rules one program holds; each takes at most 8 instructions. */
#define CGROUP_BPF_MAX_RULES 1024

/* The program for rules (deny by default: a device access is allowed when one rule
 * matches its type, major, minor and all the access it asks for). Pure. -E2BIG beyond
 * CGROUP_BPF_MAX_RULES; -EINVAL for a rule cgroup_dev_rule_parse() would not give. */
int cgroup_bpf_devices_program(const struct cgroup_dev_rule *rules, size_t n_rules,
                               struct bpf_insn **ret, size_t *ret_n) _warn_unused_result_;

/* Loads a device program (BPF_PROG_LOAD); a new descriptor in *ret_fd. A refusal by the
 * verifier is in err with the verifier's log (its last line in the message, the tail as
 * the command's output); -EPERM without CAP_SYS_ADMIN or CAP_BPF. */
int cgroup_bpf_load(const struct bpf_insn *insns, size_t n, int *ret_fd,
                    struct dv_error *err) _warn_unused_result_;

/* 0 when this kernel lets us load and attach device programs; else -EPERM (no
 * CAP_SYS_ADMIN/CAP_BPF), -ENOSYS (no bpf(2)) or -EINVAL (no CGROUP_DEVICE programs). */
int cgroup_bpf_supported(void);

/* The ids of the device programs attached to the cgroup itself (not inherited from its
 * parents), in the order they run; *ret NULL when none. name is for messages. */
int cgroup_bpf_devices_query(int cgroup_fd, const char *name, uint32_t **ret, size_t *ret_n,
                             struct dv_error *err) _warn_unused_result_;

/* Makes rules the device allow-list of the cgroup (a directory descriptor of a cgroup v2
 * hierarchy; name for messages): loads the program, attaches it with BPF_F_ALLOW_MULTI,
 * then detaches every other device program attached to that cgroup itself. The new
 * program is in place before the old ones go, so the cgroup is never without a filter,
 * and for that moment both apply (an access needs both to allow it). ALLOW_MULTI means
 * programs attached above (a systemd slice's) still run too: a guest's list can only
 * narrow what its parents allow, never widen it. The cgroup is the guest's own: every
 * device program attached directly to it is taken to be ours. */
int cgroup_bpf_devices_set(int cgroup_fd, const char *name, const struct cgroup_dev_rule *rules,
                           size_t n_rules, struct dv_error *err) _warn_unused_result_;

/* 1 when exactly one device program is attached to the cgroup itself and it is the
 * program for rules (compared instruction by instruction with what the kernel holds);
 * 0 when it differs or none is attached (so the caller sets it again); negative on error. */
int cgroup_bpf_devices_check(int cgroup_fd, const char *name, const struct cgroup_dev_rule *rules,
                             size_t n_rules, struct dv_error *err) _warn_unused_result_;

/* Detaches every device program attached to the cgroup itself; the count detached. */
int cgroup_bpf_devices_clear(int cgroup_fd, const char *name,
                             struct dv_error *err) _warn_unused_result_;
