/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* status.xml and metrics.prom (docs/status.md): formatting from a plain
 * snapshot that the engine fills, and parsing status.xml back for the `status`
 * and `wait` commands. state/ decides nothing: phases and reasons are strings. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"

struct status_condition {
        char *type;    /* e.g. "Ready", "RestartRequired", "FileInvalid", "Duplicate", "Waiting" */
        bool status;   /* true/false */
        char *reason;  /* CamelCase word */
        char *message; /* person-readable */
};

struct status_object {
        char *kind; /* pool, volume, network, domain */
        char *name;
        char *pool; /* volumes only */
        char *file; /* desired file now defining it; NULL when removed or unmanaged */
        bool managed;
        char *phase; /* pending waiting creating ready stopping stopped failed blocked removing */
        uint64_t since_usec; /* CLOCK_REALTIME of the last phase change */
        char *desired_hash;  /* hash of the file content the agent last loaded */
        char *applied_hash;  /* hash of the content last applied */
        char *message;       /* why it is in this phase (may be NULL) */
        struct status_condition *conditions;
        size_t n_conditions;
        /* For metrics: bytes (pools and volumes); has_sizes false when unknown. */
        bool has_sizes;
        uint64_t capacity, allocation, available;
};

struct status_file_error {
        char *path;
        int line;
        char *error;
};

struct status_snapshot {
        char *version;
        char *boot_id;
        uint64_t last_pass_usec; /* CLOCK_REALTIME when the last pass ended */
        uint64_t last_pass_duration_usec;
        uint64_t passes;
        bool converged;                /* every managed object is in its desired phase */
        struct status_object *objects; /* sorted by kind then id */
        size_t n_objects;
        struct status_file_error *files;
        size_t n_files;
        /* Counters for metrics (monotonic over the agent's life). */
        uint64_t actions_total, actions_failed_total, errors_total;
        /* Reconcile pass duration histogram: counts per bucket of the
         * status_duration_bounds upper bounds (seconds; each pass counted in one
         * bucket only, the metrics accumulate them), plus sum and count. */
        uint64_t duration_buckets[12];
        double duration_sum_seconds;
        uint64_t duration_count;
};

extern const double
        status_duration_bounds[12]; /* .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 2.5 +Inf */

/* The desired phase check used by `wait` and `status --check`: returns 1 when
 * the object is where its policy wants it (ready, or stopped when that is what
 * was asked: want_down), 0 when not yet, -1 when it failed or is blocked.
 * A true "Duplicate" condition counts as blocked (the agent applies neither file),
 * and a stopped object with a true "HeldDown" condition (left down on purpose,
 * e.g. autostart='no' after boot) counts as settled although want_down is false. */
int status_object_settled(const struct status_object *o, bool want_down);

void status_format_xml(struct buf *b, const struct status_snapshot *s);
void status_format_metrics(struct buf *b, const struct status_snapshot *s);
/* Parses status.xml text (libxml2 without network, DTDs or entities). Unknown
 * elements and attributes are skipped so that an older `status` reads a newer
 * agent's file; <counts> is derived, so it is not read back. */
int status_parse_xml(const char *data, size_t len, struct status_snapshot **ret,
                     struct dv_error *err);
/* Reads and parses a status.xml file (at most STATUS_MAX_SIZE bytes). Because the
 * agent only touches the file after a pass that changed nothing, last_pass_usec
 * is set to max(last-pass, the file's mtime): the agent's liveness. */
#define STATUS_MAX_SIZE (256u << 20)
int status_read_file(const char *path, struct status_snapshot **ret, struct dv_error *err);
/* Looks an object up by kind, pool (volumes) and name. */
const struct status_object *status_find(const struct status_snapshot *s, const char *kind,
                                        const char *pool, const char *name);
void status_snapshot_free(struct status_snapshot *s);
/* Frees what a snapshot holds but not the snapshot itself (for one on the stack). */
void status_snapshot_free_contents(struct status_snapshot *s);
void status_object_done(struct status_object *o);

/* ---- helpers shared by the formatters and the `status` and `wait` commands ---- */

/* The phases in the order metrics list them. */
#define STATUS_N_PHASES 9
extern const char *const status_phases[STATUS_N_PHASES];

struct status_counts {
        size_t objects; /* managed objects (unmanaged ones are listed, not counted) */
        size_t ready, failed, blocked;
        size_t invalid_files; /* <file> entries plus objects with a true FileInvalid condition */
};
/* The counts that status.xml's <counts> element, metrics and `status --check` show. */
void status_count(const struct status_snapshot *s, struct status_counts *ret);

/* The condition of that type, or NULL; and whether it is there with status true. */
const struct status_condition *status_condition_find(const struct status_object *o,
                                                     const char *type);
bool status_condition_true(const struct status_object *o, const char *type);

/* RFC 3339 in UTC to the second ("2024-05-01T12:00:00Z"). buf needs 32 bytes. */
const char *status_format_time(char buf[static 32], uint64_t usec);
/* Accepts RFC 3339 with any offset and optional fractions of a second. */
int status_parse_time(const char *s, uint64_t *ret_usec);

/* The heartbeat rule: status.xml changes only when something but the per-pass
 * facts (last-pass, last-pass-duration-ms, passes) changes. This hashes the
 * content without them, so the writer can keep the previous per-pass values (and
 * so the previous bytes) when the hash did not change, and only touch the file. */
void status_content_hash(const struct status_snapshot *s, char out[static HASH_HEX_LEN + 1]);

/* Splits an object id: "pool/NAME", "network/NAME", "domain/NAME" or
 * "volume/POOL/NAME" (pool is NULL for the others). -EINVAL when it is not one. */
int status_parse_object_id(const char *id, char **ret_kind, char **ret_pool, char **ret_name);
/* The id as above; caller frees. */
char *status_object_id(const struct status_object *o);
