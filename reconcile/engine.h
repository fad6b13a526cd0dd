/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reconcile engine (docs/design.md#the-pass): desired files -> objects ->
 * observe -> plan (pure) -> execute (asynchronous) -> report. The engine is
 * driven from outside: the agent's event loop calls engine_pass() when something
 * is dirty and engine_reap() when the executor's fd is readable. It knows
 * nothing of inotify, signals or sd_notify. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "drivers/domain.h"
#include "drivers/network.h"
#include "drivers/storage.h"
#include "model/enum.h"
#include "model/object.h"
#include "reconcile/applied.h"
#include "util/buf.h"
#include "util/time.h"

enum obj_phase {
        PHASE_PENDING,
        PHASE_WAITING,
        PHASE_CREATING,
        PHASE_READY,
        PHASE_STOPPING,
        PHASE_STOPPED,
        PHASE_FAILED,
        PHASE_BLOCKED,
        PHASE_REMOVING,
        _PHASE_MAX,
};
DV_ENUM_DECL(obj_phase);

enum obj_action {
        ACT_NONE,
        ACT_POOL_BUILD, /* build, then start when the pool is wanted up */
        ACT_POOL_START,
        ACT_POOL_STOP,
        ACT_POOL_DELETE,
        ACT_POOL_PERMS,
        ACT_VOL_CREATE,
        ACT_VOL_RESIZE,
        ACT_VOL_DELETE,
        ACT_FORGET,    /* drop the last-applied record: no longer managed */
        ACT_NET_APPLY, /* converge a network: bridge, addresses, firewall, dnsmasq */
        ACT_NET_STOP,  /* dnsmasq, rules, then the bridge when the agent created it */
        ACT_DOM_START,
        ACT_DOM_STOP, /* graceful, then forced after shutdown-timeout */
        _ACT_MAX,
};
DV_ENUM_DECL(obj_action);

struct obj {
        enum dv_kind kind;
        char *id, *name, *pool;
        bool managed; /* applied from a desired file (or about to be) */
        /* desired */
        struct dv_object *desired;           /* in force: the file's, or the last-known-good */
        char *file;                          /* file defining it now; NULL when none */
        char desired_hash[HASH_HEX_LEN + 1]; /* of the file content last loaded */
        struct timespec file_mtime;
        char *file_error;      /* the file is invalid now: "file:line: message" */
        char **dup_files;      /* defined by several files: all of them */
        uint64_t absent_since; /* CLOCK_MONOTONIC usec when its file vanished; 0 */
        /* applied */
        struct applied *applied;
        /* observed */
        bool observed;
        struct pool_status pool_st; /* pools */
        bool exists;                /* volumes: present on the host */
        struct vol_status vol_st;   /* volumes, when exists */
        struct net_status net_st;   /* networks */
        struct dv_object *net_prev; /* networks: the definition applied before the last
                                     * change, until an apply succeeds (a renamed bridge) */
        bool net_prev_created;
        struct dom_status dom_st; /* domains */
        unsigned dom_exits;       /* exits the agent did not ask for since the file changed */
        /* plan and status */
        enum obj_phase phase;
        uint64_t since_usec; /* CLOCK_REALTIME of the last phase change */
        char *message;
        enum obj_action action;
        uint64_t action_arg;
        /* executor */
        bool busy;
        enum obj_action running;
        unsigned failures;
        uint64_t retry_at; /* CLOCK_MONOTONIC usec */
        char *last_error;
        bool error_blocks;      /* last_error is a refusal (data in the way): blocked */
        enum obj_action failed; /* the action last_error is about: only it waits for retry_at */
        bool dirty;
        int claims; /* scratch for resolve */
};

struct engine_config {
        const char *desired_dir;
        const char *state_dir;
        char *const *storage_locations;
        bool check_trust; /* running as root with strict_permissions */
        unsigned max_parallel;
        uint64_t removal_delay_usec;
        bool dry_run;             /* plan and report, never act */
        const char *metrics_file; /* extra copy of metrics.prom, or NULL */
        const char *version;
        /* agent.conf qemu.uid_range: each QEMU domain's uid (= gid) is allocated from it
         * when first applied and kept in its record; 0-0: none allocated. */
        uint32_t qemu_uid_first, qemu_uid_last;
        /* agent.conf container.id_range: each container without <idmap> nor
         * privileged='yes' gets 65536 ids of it for its user namespace, the base kept in its
         * last-applied record (reconcile/actions.c); 0: none configured */
        uint32_t container_id_first, container_id_last;
};

struct engine;

/* Opens state_dir (which the caller has locked), loads the last-applied store. */
int engine_new(const struct engine_config *cfg, struct engine **ret, struct dv_error *err);
/* agent.conf reloaded: takes storage_locations, removal_delay_usec and metrics_file
 * from cfg (borrowed, like engine_new's) and marks everything for a full pass. The
 * other fields keep the values the engine was opened with. */
int engine_reconfigure(struct engine *e, const struct engine_config *cfg);
/* Waits for running actions, then frees. */
void engine_free(struct engine *e);

/* Marks directories of desired_dir dirty (NULL: everything, as a resync). */
void engine_mark_dirs(struct engine *e, char *const *dirs);
void engine_mark_all(struct engine *e);
/* One pass. Returns the number of actions started. */
int engine_pass(struct engine *e);
/* Collects finished actions; returns how many. Marks their objects dirty. */
int engine_reap(struct engine *e);
int engine_exec_fd(const struct engine *e);
/* Events from running objects (QEMU's QMP events: a domain paused, resumed, shut down,
 * panicked or exited): an fd that becomes readable when there is news, -errno.
 * engine_event_dispatch reads it without waiting and returns how many objects have
 * news (a pass observes them; domains are observed at every pass), or -errno. */
int engine_event_fd(const struct engine *e);
int engine_event_dispatch(struct engine *e);
/* Actions queued or running; engine_running_now: only those running now. */
unsigned engine_running(const struct engine *e);
unsigned engine_running_now(const struct engine *e);
/* Every managed object is in its desired phase and nothing runs. */
bool engine_converged(const struct engine *e);
/* Something failed (failed or blocked objects, invalid files). */
bool engine_has_failures(const struct engine *e);
/* The earliest CLOCK_MONOTONIC time at which a pass is needed for timers that the
 * engine keeps (retry backoff, removal delay); 0 when none. */
uint64_t engine_next_wakeup(const struct engine *e);
/* The earliest CLOCK_MONOTONIC time, later than now, at which the removal_delay of an
 * object whose file was removed runs out; 0 when no removal waits. */
uint64_t engine_next_removal(const struct engine *e, uint64_t now);
/* A one-line summary ("12 objects: 11 ready, 1 failed") for logs and sd_notify. */
char *engine_summary(const struct engine *e);
/* Writes the plan of the last pass as text, one line per object. */
void engine_format_plan(const struct engine *e, struct buf *b);
/* Writes a readable table of objects and phases. */
void engine_format_table(const struct engine *e, struct buf *b);
/* Log lines for what changed in the last pass/reap ("pool/p1: ready"), drained. */
char **engine_take_events(struct engine *e);

/* The pure planner for one object (exposed for tests): decides phase, message and
 * action from the object and its context; changes nothing. */
struct plan_step {
        enum obj_phase phase;
        char *message;
        enum obj_action action;
        uint64_t arg;
};
void plan_object(const struct engine *e, const struct obj *o, uint64_t now, struct plan_step *step);
