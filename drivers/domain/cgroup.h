/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cgroup of a domain, for containers (lxc-plan.c, lxc.c) and QEMU (qemu.c) alike:
 * one directory BASE/NAME ("declvirt/NAME") in each hierarchy used, cgroup v1 (hybrid)
 * or v2, with the limits of <memory>/<vcpu> (containers), <memtune>, <cputune> and
 * <blkiotune>, and a v1 device allow-list. Building the set is pure (the container plan
 * prints it, tests compare it with golden files); create, apply, join, check and remove
 * act on the host, with the root as a parameter so tests can use a fake tree.
 * docs/qemu.md and docs/containers.md ("Cgroups") describe the layout. */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "model/domain.h"
#include "util/error.h"

#define CGROUP_DEFAULT_ROOT "/sys/fs/cgroup"
#define CGROUP_DEFAULT_BASE "declvirt"
/* The kernel's default CFS period, used when a quota comes without a period. */
#define CGROUP_CPU_PERIOD_USEC 100000

enum cgroup_mode {
        CGROUP_V1, /* v1 controllers (hybrid: a v2 tree at ROOT/unified for membership) */
        CGROUP_V2, /* unified at ROOT */
};

/* Where the hierarchies are and what the host has. */
struct cgroup_layout {
        const char *root; /* /sys/fs/cgroup */
        const char *base; /* "declvirt" */
        enum cgroup_mode mode;
        bool unified; /* v1 with a v2 tree at ROOT/unified */
        bool devices; /* v1 with the devices controller at ROOT/devices */
};

/* What the driver asks of the set beyond the domain's own tuning elements. */
struct cgroup_want {
        /* The devices allowed ("c 1:3 rw"), NULL-terminated; NULL: no devices cgroup. */
        const char *const *devices;
        bool vcpu_cap;   /* <vcpu> N caps CPU time at N CPUs, <memory> is the memory limit
                          * (containers, which have no vCPU threads) */
        bool vcpu_pins;  /* <vcpupin> is applied per thread by the caller (QEMU) */
        bool accounting; /* also in cpuacct and pids (v1): usage the host can read */
        /* Also enforce `devices` with a cgroup v2 device program (drivers/domain/cgroup-bpf.c)
         * on the domain's v2 cgroup (cgroup v2, or the unified tree of a hybrid host), from
         * the moment the limits are applied: for processes that open no other node on the
         * way to their exec (QEMU; a container whose filesystems the agent mounts). */
        bool bpf_devices;
};

enum cgroup_limit_kind {
        CGROUP_LIMIT_VALUE,  /* write value */
        CGROUP_LIMIT_PARENT, /* copy the parent directory's file (a new v1 cpuset is empty) */
        CGROUP_LIMIT_DEVICE, /* "MAJ:MIN value": the device node dev_path, stat()ed when
                              * applied (v1 blkio.throttle.*; v2 io.max: "MAJ:MIN " + value) */
};

struct cgroup_limit {
        enum cgroup_limit_kind kind;
        char *file;     /* absolute path of the cgroup control file */
        char *alt_file; /* tried when file does not exist (blkio.bfq.weight), NULL */
        char *value;
        char *dev_path;   /* CGROUP_LIMIT_DEVICE */
        const char *what; /* "memory", "vcpus", "cpu shares", ... */
        /* Why the host may lack the file, for the message when it does ("the host has no
         * swap accounting ..."); NULL: a missing file is an ordinary error. */
        const char *missing;
        int line;
};

struct cgroup_set {
        char **dirs; /* created, joined and removed, in this order */
        /* How /proc/PID/cgroup names it: the hierarchy's controller ("memory"; "" for v2)
         * and the path ("/declvirt/NAME"), as in "4:memory:/declvirt/NAME". */
        char *check_ctrl;
        char *check_path;
        struct cgroup_limit *limits;
        size_t n_limits;
        /* The v1 devices cgroup (also in dirs). NULL when the host has no device control
         * (v2 without a BPF program: not done) or none was asked for. */
        char *devices_dir;
        bool devices_wanted; /* asked for, whether or not the host can */
        /* The v2 cgroup (also in dirs) that gets a device program allowing device_rules,
         * when want->bpf_devices and the host has cgroup v2; NULL otherwise. Without
         * devices_dir it is the only device control, when the kernel can load the program
         * (cgroup_bpf_supported()). */
        char *bpf_dir;
        char **device_rules;
        /* The v2 cgroup among dirs (v2's, or a hybrid host's unified tree), NULL: none. */
        char *v2_dir;
        /* The cpuset the domain may run on (emulatorpin and vcpupins), "" when not pinned:
         * the caller pins QEMU's threads within it. */
        char *cpuset;
};

void cgroup_set_done(struct cgroup_set *s);

/* V2 when ROOT/cgroup.controllers exists; else V1, *ret_unified telling whether a v2 tree
 * is mounted at ROOT/unified (hybrid). -ENOENT when ROOT holds neither. */
int cgroup_detect(const char *root, enum cgroup_mode *ret_mode, bool *ret_unified);
/* cgroup_detect plus the devices controller, cached per root (the host does not change
 * under a running agent); ret->root and ret->base point at the arguments. */
int cgroup_layout_get(const char *root, const char *base, struct cgroup_layout *ret);

/* The set for domain def (its name, <memtune>, <cputune>, <blkiotune>, and <memory>/<vcpu>
 * when want->vcpu_cap). Pure. What cannot be applied is refused in err, naming the
 * element and line (min_guarantee on cgroup v1, emulator_period/quota, vcpupin without
 * want->vcpu_pins, blkiotune on hosts without the blkio controller). */
int cgroup_set_build(const struct cgroup_layout *l, const struct domain_def *def,
                     const struct cgroup_want *want, struct cgroup_set *ret, struct dv_error *err);
/* Only the directories and the check (no limits): enough to find, list or remove the
 * cgroups of a domain whose definition is not at hand. */
int cgroup_set_dirs(const struct cgroup_layout *l, const char *name, bool devices, bool accounting,
                    struct cgroup_set *ret);

/* The set as `declvirt native` prints it: "cgroup DIR", "limit WHAT FILE = VALUE". */
void cgroup_set_print(const struct cgroup_set *s, FILE *f);

/* Creates the set's directories (and their parents, 0755). */
int cgroup_create(const struct cgroup_set *s, struct dv_error *err);
/* Writes the set's limits in order; the kernel's refusal is in err with the value and
 * the file ("cannot set memory limit 4096 in FILE: Device or resource busy"). Then
 * attaches the device program to bpf_dir; a kernel that cannot load one is logged and
 * skipped (cgroup_set_device_control() then says so), a program it refuses is an error. */
int cgroup_apply(const struct cgroup_set *s, struct dv_error *err);
/* Moves pid into every cgroup of the set but the devices one when skip_devices (a
 * container's init joins that one itself, after its mounts). */
int cgroup_join(const struct cgroup_set *s, pid_t pid, bool skip_devices, struct dv_error *err);
/* Opens every directory's membership file for writing (O_CLOEXEC) into *ret_fds (caller
 * closes each and frees the array): a child writing "0" to them joins the set itself
 * before it runs anything (drivers/cmd.h, struct cmd_creds). A v1 hierarchy's "tasks"
 * where it has one (the single-threaded child moves only itself: the kernel then takes
 * no global lock), else cgroup.procs. With ret_v2_fd, the v2 cgroup is not among them:
 * *ret_v2_fd is its directory (0 when the set has none), for clone3's
 * CLONE_INTO_CGROUP (struct cmd_creds, cgroup_v2_fd). */
int cgroup_open_members(const struct cgroup_set *s, int **ret_fds, size_t *ret_n, int *ret_v2_fd,
                        struct dv_error *err);
/* Whether the set really controls devices on this host: a v1 devices cgroup, or a device
 * program the kernel can load. */
bool cgroup_set_device_control(const struct cgroup_set *s);

/* Removes the (empty) cgroups, waiting up to wait_msec for exiting tasks to leave.
 * Missing ones are fine; 0 or the first error. */
int cgroup_remove(const struct cgroup_set *s, int wait_msec);
/* True when /proc/PID/cgroup puts pid in the set's cgroup. */
bool cgroup_contains(const struct cgroup_set *s, pid_t pid);
/* The processes in the set's first cgroup (*ret NULL and *n 0 when none or no cgroup). */
int cgroup_pids(const struct cgroup_set *s, pid_t **ret, size_t *n);
