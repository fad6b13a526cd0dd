/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cgroup of a QEMU domain (drivers/domain/cgroup.h for the set): made and limited
 * before QEMU starts, joined by QEMU itself before it execs (struct cmd_creds), its
 * threads pinned once QMP names the vCPUs, removed after QEMU exits. docs/qemu.md,
 * "Cgroup". */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <json_object.h>

#include "drivers/domain/cgroup.h"
#include "model/domain.h"
#include "util/error.h"

struct qemu_cgroup {
        struct cgroup_set set;
        int *fds; /* each v1 directory's tasks (cgroup.procs), for the child (cmd_creds) */
        size_t n_fds;
        int v2_fd; /* the v2 cgroup's directory, for clone3 (cmd_creds); 0: none */
};

/* Root (/sys/fs/cgroup) and base ("declvirt") of the domains' cgroups; NULL: default.
 * Tests point it at a fake tree or a base of their own. */
void qemu_cgroup_set_config(const char *root, const char *base);

/* The set of def (devices null, zero, random, urandom, and /dev/kvm when kvm): built,
 * created, limited, its membership files opened. A refusal (-EOPNOTSUPP) or the kernel's
 * (the file and the value) in err; nothing is left behind then. */
int qemu_cgroup_prepare(const struct domain_def *def, bool kvm, struct qemu_cgroup *ret,
                        struct dv_error *err);
/* The set def's QEMU would get, as `declvirt native` shows it ("cgroup DIR", "limit WHAT
 * FILE = VALUE", cgroup_set_print), or why it would not start. Touches nothing. */
void qemu_cgroup_print(const struct domain_def *def, bool kvm, FILE *f);
/* Closes the descriptors (after the spawn) and frees the set. */
void qemu_cgroup_done(struct qemu_cgroup *cg);

/* Pins QEMU pid's threads: each vCPU of <vcpupin> (its thread from query-cpus-fast's
 * answer, cpus) to its cpuset, every other thread to <emulatorpin>'s. */
int qemu_cgroup_pin(const struct domain_def *def, pid_t pid, struct json_object *cpus,
                    struct dv_error *err);
/* True when the domain asks for pinning (the caller then asks QMP for the vCPUs). */
bool qemu_cgroup_wants_pin(const struct domain_def *def);

/* Removes domain name's cgroups (those of a QEMU that is gone), waiting up to wait_msec
 * for exiting tasks; missing ones are fine. */
void qemu_cgroup_remove(const char *name, int wait_msec);
/* True when pid is in domain name's cgroup (its memory hierarchy's, or v2's). */
bool qemu_cgroup_contains(const char *name, pid_t pid);
/* False on hosts without cgroup device control (no v1 devices controller, and a kernel
 * that cannot load a cgroup device program): QEMU then runs without a device allow-list. */
bool qemu_cgroup_device_control(void);
