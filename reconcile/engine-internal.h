/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared between the engine's files (engine.c, resolve.c, plan.c, actions.c,
 * report.c); not for use outside reconcile/. */
#pragma once

#include <stdarg.h>

#include "reconcile/desired.h"
#include "reconcile/engine.h"
#include "reconcile/exec.h"
#include "util/hashmap.h"

struct state_store;

struct invalid_file {
        char *path;
        int line;
        char *error;
};
void invalid_files_free(struct engine *e);

struct engine {
        struct engine_config cfg;
        struct desired_set *desired;
        struct hashmap *objects; /* id -> struct obj */
        struct state_store *state;
        struct executor *exec;
        char *boot_id;
        uint64_t btime_sec;
        bool full;          /* next pass rescans and observes everything */
        bool files_changed; /* the last scan found new, changed or removed files */
        char **dirty_dirs;
        char **events;                      /* log lines for the agent */
        struct invalid_file *invalid_files; /* files that define nothing */
        size_t n_invalid_files;
        uint64_t passes;
        uint64_t last_pass_usec, last_pass_duration_usec;
        uint64_t actions_total, actions_failed_total, errors_total;
        uint64_t duration_buckets[12];
        double duration_sum;
        uint64_t duration_count;
        char *last_table;
        char metrics_hash[33];
        char status_hash[33]; /* content of status.xml without per-pass fields */
        bool record_failing;
        /* A commit failed: what it carried (last-applied records, removals) is not on
         * disk. Every record is queued again and committed before any action starts. */
        bool store_failed;
        char **pending_removals; /* relpaths removed since the last good commit */
        bool status_stale;       /* an object left the table: status.xml must be rewritten */
};

/* objects.c: the object table, last-applied records, removals and commits. */
struct obj *engine_lookup(const struct engine *e, const char *id);
struct obj *engine_get_or_add(struct engine *e, enum dv_kind kind, const char *pool,
                              const char *name);
/* Drops o, with its observed XML; status.xml is rewritten on the next record. */
void engine_remove_object(struct engine *e, struct obj *o);
/* Every object, by kind then id (NULL-terminated array; caller frees the array). */
struct obj **engine_sorted_objects(const struct engine *e, size_t *n);
/* Queues the removal of a state file, queued again after a failed commit. */
void engine_queue_removal(struct engine *e, const char *relpath);
/* Commits the state store; after a failed commit first queues again every
 * last-applied record and removal that the failure dropped. */
int engine_commit(struct engine *e, struct dv_error *err) _warn_unused_result_;
/* Queues o's last-applied record; a failure marks the store failed, so that every record
 * is queued again and committed before any action starts. */
int applied_put(struct engine *e, const struct applied *a) _warn_unused_result_;
/* Frees an object that is no longer in the table (the table's free function). */
void obj_free(void *p);

char *obj_observed_relpath(const struct obj *o);
void engine_event(struct engine *e, const char *fmt, ...) _printf_(2, 3);

/* resolve.c: files -> objects (duplicates, last-known-good, removals). */
void engine_resolve(struct engine *e, uint64_t now);
/* observe.c: drivers -> observed state, for dirty objects (all when full). */
void engine_observe(struct engine *e, bool full);
/* actions.c: planned steps -> applied records and executor jobs. */
int engine_apply(struct engine *e, uint64_t now);
void engine_handle_done(struct engine *e, struct exec_job *job);
/* report.c: status.xml, observed XML, metrics. */
int engine_report(struct engine *e);

/* Helpers used by several files. */
const struct dv_object *obj_def(const struct obj *o); /* desired, else applied */
/* The definition that describes what is on the host now: the applied one while a
 * change of an immutable field (a pool's type, source or target) is blocked. */
const struct dv_object *obj_live_def(const struct obj *o);
bool obj_pool_effectively_active(const struct engine *e, const struct obj *pool);
bool obj_want_up(const struct engine *e, const struct obj *o);
/* A network definition with what the agent generated filled in (UUID, bridge MAC): a
 * shallow copy of *def, valid while def and a live. */
/* A running domain that uses pool or network o, or NULL. */
const struct obj *obj_held_by_domain(const struct engine *e, const struct obj *o);
struct network_def network_effective(const struct network_def *def, const struct applied *a);
