/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container plan: a pure function of a <domain type='lxc'> and the host paths,
 * listing namespaces, mounts, cgroup limits, interfaces and the init's argv and env.
 * The runtime (lxc.c) executes it; `declvirt native` prints it; unit tests compare the
 * printed form with golden files. See docs/containers.md. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "drivers/domain/cgroup.h"
#include "model/domain.h"
#include "util/error.h"

/* Below this, the kernel accepts the limit and then kills init with the OOM killer as it
 * starts: refused up front instead. */
#define LXC_MIN_MEMORY_KIB 4096
/* The kernel refuses uid_map/gid_map files with more lines. */
#define LXC_MAX_IDMAP 340
/* The ids of a container's user namespace from agent.conf container.id_range. */
#define LXC_RANGE_IDS 65536u

enum lxc_op_kind {
        LXC_OP_MOUNT,      /* mkdir -p target, mount(source, target, fstype, flags, data) */
        LXC_OP_BIND_FILE,  /* create an empty file at target, bind source onto it */
        LXC_OP_SYMLINK,    /* symlink(source, target) */
        LXC_OP_REMOUNT_RO, /* remount the bind mount at target read-only */
        LXC_OP_PROTECT,    /* bind target (a directory or file) over itself, read-only */
};

struct lxc_op {
        enum lxc_op_kind kind;
        char *source;
        char *target; /* inside the container: "/", "/data", "/dev/null" */
        char *fstype; /* NULL for binds; "auto" until the runtime probes a device */
        unsigned long flags;
        char *data;    /* mount options passed to the filesystem, NULL when none */
        int fs_index;  /* the <filesystem> it comes from, -1 for the container's own */
        int line;      /* that <filesystem>'s line, 0 */
        bool optional; /* a failure is not fatal (the next op is the fallback) */
        bool host;     /* LXC_OP_MOUNT made by the agent as the host's root (open_tree,
                        * fsmount) and attached in a mount namespace of the starting thread,
                        * before the child copies it into its own: in a user namespace, what
                        * the container's root may not mount itself (block devices, overlayfs
                        * on a shared template, idmapped mounts) and what must stay read-only
                        * (the copy locks the flags: the container cannot remount them) */
        bool idmap;    /* ... idmapped with the container's user namespace (for an overlay:
                        * its lower layer), so the host's ids 0-65535 show as the container's */
};

struct lxc_iface {
        char host[IFNAMSIZ];  /* the host end (iface_name) */
        char peer[IFNAMSIZ];  /* the container end's name while it is still on the host */
        char guest[IFNAMSIZ]; /* its name inside: eth0, eth1, ... */
        char *bridge;         /* NULL: not attached (type='ethernet') */
        char *mac;            /* the container end's MAC */
        int line;
};

/* Host paths and facts the plan depends on; the runtime fills them from agent.conf and
 * the host, the tests with fixed values. */
struct lxc_plan_ctx {
        const char *run_dir;       /* RUN_DIR/lxc */
        const char *state_dir;     /* STATE_DIR/domains */
        const char *template_dir;  /* container.template_dir */
        const char *container_dir; /* container.data_dir */
        const char *cgroup_root;   /* /sys/fs/cgroup */
        enum cgroup_mode cgroup_mode;
        bool cgroup_unified;     /* v1 with a v2 tree at ROOT/unified */
        bool cgroup_devices;     /* v1 with the devices controller at ROOT/devices */
        const char *cgroup_base; /* "declvirt" */
        char *const *macs;       /* per interface; NULL entries: the written MAC */
        char *const *bridges;    /* per interface; NULL or "": <source bridge> */
        uint32_t id_base;        /* without <idmap>: the first of the container's 65536 host
                                  * ids (agent.conf container.id_range); 0 not allocated yet */
        bool privileged;         /* policy privileged='yes': no user namespace */
};

struct lxc_plan {
        char *name;
        int ns_flags; /* CLONE_NEW* */
        struct domain_idmap *uid_map, *gid_map;
        size_t n_uid_map, n_gid_map;
        /* A user namespace of 65536 ids from container.id_range (no <idmap>, not
         * privileged): its maps are empty until the engine allocated the range (id_base);
         * the runtime refuses to start it without. */
        bool id_range;
        char *root;         /* RUN_DIR/lxc/NAME/root: where the root is assembled */
        struct lxc_op *ops; /* in order; "/" first */
        size_t n_ops;
        /* The container's cgroup (drivers/domain/cgroup.h). Its v1 devices cgroup
         * (cg.devices_dir) is joined by init itself, after its mounts, since the allow-list
         * would refuse the block devices it mounts. */
        struct cgroup_set cg;
        /* Capabilities (bits of CAP_*) init loses from its bounding, effective, permitted
         * and inheritable sets: those of a container without a user namespace. */
        uint64_t cap_drop;
        struct lxc_iface *ifaces;
        size_t n_ifaces;
        char **argv, **env;
        char *cwd;
        char *user, *group; /* as written; NULL: root */
        char *console_log;
        char **mkdirs;    /* host directories created (0700) before the start: overlay
                           * upper and work directories */
        uid_t mkdirs_uid; /* their owner (the container's root under <idmap>) */
        gid_t mkdirs_gid;
};

void lxc_plan_free(struct lxc_plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lxc_plan *, lxc_plan_free)

/* What the container driver cannot honour: -EOPNOTSUPP with one problem per element,
 * each naming it and its line ("<disk> (line 12) is not supported by the container
 * driver"). Pure; `declvirt validate` may call it for lxc domains. */
int lxc_check_def(const struct domain_def *def, struct dv_error *err);

/* Builds the plan (lxc_check_def first). Pure: touches nothing on the host. */
int lxc_plan_build(const struct domain_def *def, const struct lxc_plan_ctx *ctx,
                   struct lxc_plan **ret, struct dv_error *err);

/* The stable text form `declvirt native` prints. */
void lxc_plan_print(const struct lxc_plan *p, FILE *f);

/* "dvc" + 8 hex digits of a hash of the domain name and index (or the interface's
 * <target dev> when written): the host end of interface index. */
int lxc_veth_name(const struct domain_def *def, size_t index, char buf[static IFNAMSIZ]);

/* The sources that must exist before anything is created: the root directory, template,
 * block device, image file, with the <filesystem> line; the init executable inside a
 * directory root (mount or template). -ENOENT (a source may appear later: retried with
 * backoff) or -EACCES with the reason in err. Reads the host, creates nothing. */
int lxc_plan_check_sources(const struct domain_def *def, const struct lxc_plan *p,
                           struct dv_error *err);
