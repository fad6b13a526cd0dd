/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain drivers: one per <domain type> (QEMU/KVM, Linux containers, Xen). The engine
 * observes, starts and stops domains only through this table. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "model/domain.h"
#include "util/error.h"

enum dom_state { DOM_SHUTOFF, DOM_RUNNING, DOM_PAUSED, DOM_BROKEN };

struct dom_status {
        enum dom_state state;
        char *reason;         /* BROKEN: why (a process we did not start holds the name, ...);
                               * SHUTOFF: what was cleaned up, if anything ("stale pidfile
                               * (PID N, process gone) removed") */
        pid_t pid;            /* while running: the process the driver watches (QEMU, the
                               * container's init as the host sees it); 0 for Xen */
        int id;               /* while running: libvirt's id='N' in observed XML (QEMU's PID,
                               * the container init's host PID, the Xen domid); 0 otherwise */
        char *qmp_status;     /* the driver's own run state word (QMP query-status "status",
                               * Xen's "running"/"paused"...), NULL when not known yet; a change
                               * rewrites status */
        bool exited;          /* it ran and is gone since the last observe (crash or guest
                               * shutdown); never set after a stop asked by the agent */
        char *exit_reason;    /* what we know of why: "guest shut down", "killed by signal 9" */
        bool unconfined;      /* while running: QEMU runs as root, started before QEMU ran as
                               * its domain's own user, or without its jail or cgroup; a
                               * container's init is in the host's user namespace, started
                               * before containers had their own (an upgrade): confined at its
                               * next start */
        char *unconfined_how; /* QEMU: what it lacks ("runs as root", "has no jail of its
                               * own", "is in no cgroup of its own"); NULL otherwise */
        bool exit_clean;      /* exited cleanly (guest powered off, init exited 0): stays set
                               * on later observes while the domain is down, until the next
                               * start or stop: the restart policy may be decided passes later */
        /* while running: the host has no cgroup device control (cgroup v2 without a BPF
         * program): QEMU has no device allow-list */
        bool no_device_control;
};

void dom_status_done(struct dom_status *s);

/* Errors of start that are refusals rather than failures: something not ours holds the
 * name or the device (-EEXIST, -EBUSY), or the definition asks for what the driver
 * cannot do (-EOPNOTSUPP, naming the element and its line). */
#define DOM_IS_REFUSAL(r) ((r) == -EEXIST || (r) == -EBUSY || (r) == -EOPNOTSUPP)

/* What the engine resolved for a start: one entry per <disk> and per <interface>. */
struct dom_start {
        const char *uuid;        /* written in the file, or generated once by the engine and
                                  * kept in the last-applied record: always set */
        char *const *disk_paths; /* the path of each <disk> (a volume resolved through its
                                  * pool); "" (or NULL) for a disk without a source; the
                                  * array itself is NULL when there are no disks */
        char *const *macs;       /* the MAC of each <interface>: written or generated, stable */
        char *const *bridges;    /* the bridge of each <interface>'s network; NULL or "": the
                                  * interface's own <source bridge=> (arrays are NULL when
                                  * there are no interfaces) */
        uint32_t uid;     /* QEMU domains: the uid (= gid) QEMU runs as, allocated by the engine
                           * from agent.conf qemu.uid_range and kept in the last-applied record;
                           * 0: none (QEMU then runs as the agent's user, root) */
        uint32_t id_base; /* containers without <idmap>: the first of the 65536 host ids their
                           * user namespace maps, allocated by the engine from agent.conf
                           * container.id_range and kept in the last-applied record; 0: none
                           * (the driver then refuses to start them) */
        bool privileged;  /* the policy asks privileged='yes': a container without a user
                           * namespace (docs/containers.md) */
};

/* agent.conf values the domain drivers use. NULL / 0 keep the defaults. */
struct dom_driver_config {
        const char *run_dir;       /* /run/declvirt */
        const char *state_dir;     /* /var/lib/declvirt/state */
        const char *qemu_binary;   /* /usr/bin/qemu-system-x86_64 */
        const char *qemu_accel;    /* auto */
        const char *template_dir;  /* /var/lib/declvirt/templates: container.template_dir */
        const char *container_dir; /* /var/lib/declvirt/containers: container.data_dir, the
                                    * containers' own writable layers (overlayfs upper and
                                    * work directories of type='template' roots) */
        int xen_enabled;           /* -1 auto (default), 0 no, 1 yes */
        const char *xl;            /* /usr/sbin/xl */
        /* storage_locations: where the backing files of QEMU disks may be */
        char *const *storage_locations;
};
void domain_drivers_set_config(const struct dom_driver_config *c);

struct domain_driver {
        const char *name; /* "QEMU", "container", "Xen": for messages */
        /* 0 when the driver can run domains on this host; else -errno and why in err
         * ("Xen is not available on this host"): the domain is blocked with that reason.
         * Cheap (cached); may be NULL (always available). */
        int (*available)(struct dv_error *err);
        /* Cheap, called for every domain every pass: answers from caches refreshed by
         * events or at most once a second. */
        int (*observe)(const struct domain_def *def, struct dom_status *ret, struct dv_error *err);
        /* Runs in a worker thread. Already running: 0. On failure nothing is left behind.
         * A refusal (DOM_IS_REFUSAL: the definition cannot run as written, or something
         * not ours is in the way) blocks the domain until its file changes; any other
         * error is retried with backoff. */
        int (*start)(const struct domain_def *def, const struct dom_start *args,
                     struct dv_error *err);
        /* Graceful first, then forced after timeout_usec. Not running: 0. */
        int (*stop)(const struct domain_def *def, uint64_t timeout_usec, struct dv_error *err);
        /* The host-side device of interface index (tap, veth, vif), shown as <target dev=>
         * in observed XML; -ENOENT when it has none. May be NULL. */
        int (*iface_name)(const struct domain_def *def, size_t index, char buf[static IFNAMSIZ]);
        /* An fd readable when some domain changed (QMP event, container exit, xenstore
         * watch), and a non-blocking dispatch returning how many domains have news
         * (observe them now). May be NULL. */
        int (*events_fd)(void);
        int (*events_dispatch)(void);
        /* declvirt native: prints what would run (argv, xl.cfg, container plan) to f.
         * args holds placeholders where the engine would resolve values at start. */
        int (*native)(const struct domain_def *def, const struct dom_start *args, FILE *f,
                      struct dv_error *err);
        /* Offline: refuses what the driver cannot run as written (an element it does not
         * support, naming it and its line). The agent treats such a file as invalid (the
         * last-known-good stays in force) and `declvirt validate` reports it. May be NULL. */
        int (*check)(const struct domain_def *def, struct dv_error *err);
};

/* NULL for a type with no driver in this build. */
const struct domain_driver *domain_driver_get(enum domain_type type);

extern const struct domain_driver qemu_domain_driver;
extern const struct domain_driver lxc_domain_driver;
extern const struct domain_driver xen_domain_driver;

/* One epoll fd over every driver's events fd (created at the first call), and a dispatch
 * over every driver: as events_fd/events_dispatch above. */
int domain_events_fd(void);
int domain_events_dispatch(void);
