/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine: life cycle, configuration and the pass (scan, resolve, observe, plan,
 * execute, report); the object table is in objects.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/pool.h"
#include "model/volume.h"
#include "reconcile/desired.h"
#include "reconcile/engine-internal.h"
#include "state/state.h"
#include "state/status.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strv.h"

DV_ENUM_IMPL(obj_phase, _PHASE_MAX, "pending", "waiting", "creating", "ready", "stopping",
             "stopped", "failed", "blocked", "removing");
DV_ENUM_IMPL(obj_action, _ACT_MAX, "none", "build", "start", "stop", "delete", "set-permissions",
             "create", "resize", "delete", "forget", "apply", "stop", "start", "shutdown");

static void read_boot_facts(struct engine *e) {
        char *data = NULL;
        if (read_full_file("/proc/sys/kernel/random/boot_id", 128, &data, NULL) >= 0) {
                data[strcspn(data, "\n")] = '\0';
                e->boot_id = data;
        } else
                e->boot_id = strdup("unknown");
        data = NULL;
        if (read_full_file("/proc/stat", 1 << 20, &data, NULL) >= 0) {
                char *p = strstr(data, "\nbtime ");
                if (p)
                        e->btime_sec = strtoull(p + 7, NULL, 10);
        }
        free(data);
}

int engine_reconfigure(struct engine *e, const struct engine_config *cfg) {
        int r = desired_set_set_locations(e->desired, cfg->storage_locations);
        if (r < 0)
                return r;
        e->cfg.storage_locations = cfg->storage_locations;
        e->cfg.removal_delay_usec = cfg->removal_delay_usec;
        if (!streq_ptr(e->cfg.metrics_file, cfg->metrics_file))
                e->metrics_hash[0] = '\0';
        e->cfg.metrics_file = cfg->metrics_file;
        engine_mark_all(e);
        return 0;
}

void engine_event(struct engine *e, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0 || strv_consume(&e->events, s) < 0)
                (void)log_oom(); /* the event is lost; the log says why */
}

char **engine_take_events(struct engine *e) {
        return TAKE_PTR(e->events);
}

static int load_applied(struct engine *e, struct dv_error *err) {
        _cleanup_strv_free_ char **files = NULL;
        int r = state_store_list(e->state, "applied", &files);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot list %s/applied: %s", e->cfg.state_dir,
                                    strerror(-r));
        for (size_t i = 0; files && files[i]; i++) {
                if (!strstr(files[i], ".json"))
                        continue;
                _cleanup_free_ char *rel = path_join("applied", files[i]), *data = NULL;
                size_t len = 0;
                _cleanup_dv_error_ struct dv_error perr = DV_ERROR_INIT;
                struct applied *a = NULL;
                if (!rel || state_store_read(e->state, rel, &data, &len) < 0 ||
                    applied_from_json(data, len, &a, &perr) < 0) {
                        /* A damaged record is reported and kept on disk for a person to look at;
                         * its object is then treated as unmanaged (never touched). */
                        engine_event(e, "ignoring damaged last-applied record %s/%s: %s",
                                     e->cfg.state_dir, strempty(rel),
                                     strna(dv_error_message(&perr)));
                        continue;
                }
                struct obj *o = engine_get_or_add(e, a->kind, a->pool, a->name);
                if (!o) {
                        applied_free(a);
                        return -ENOMEM;
                }
                applied_free(o->applied);
                o->applied = a;
                o->managed = true;
        }
        return 0;
}

int engine_new(const struct engine_config *cfg, struct engine **ret, struct dv_error *err) {
        struct engine *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->cfg = *cfg;
        e->objects = hashmap_new();
        e->full = true;
        read_boot_facts(e);
        int r = e->objects ? 0 : -ENOMEM;
        if (r >= 0)
                r = desired_set_new(cfg->desired_dir, cfg->check_trust, cfg->storage_locations,
                                    &e->desired);
        if (r >= 0)
                r = state_store_open(cfg->state_dir, &e->state, err);
        if (r >= 0)
                r = exec_new(cfg->max_parallel, &e->exec);
        if (r >= 0)
                r = load_applied(e, err);
        if (r < 0) {
                engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

void engine_free(struct engine *e) {
        if (!e)
                return;
        exec_free(e->exec); /* waits for running actions */
        hashmap_free(e->objects, obj_free);
        desired_set_free(e->desired);
        state_store_free(e->state);
        strv_free(e->dirty_dirs);
        strv_free(e->events);
        strv_free(e->pending_removals);
        invalid_files_free(e);
        free(e->boot_id);
        free(e->last_table);
        free(e);
}

void engine_mark_dirs(struct engine *e, char *const *dirs) {
        if (!dirs) {
                e->full = true;
                return;
        }
        for (size_t i = 0; dirs[i]; i++)
                if (!strv_contains(e->dirty_dirs, dirs[i]) &&
                    strv_push(&e->dirty_dirs, dirs[i]) < 0)
                        e->full = true; /* a full rescan covers it */
}

void engine_mark_all(struct engine *e) {
        e->full = true;
}
int engine_exec_fd(const struct engine *e) {
        return exec_fd(e->exec);
}
int engine_event_fd(const struct engine *e) {
        (void)e;
        return domain_events_fd();
}
int engine_event_dispatch(struct engine *e) {
        (void)e;
        return domain_events_dispatch();
}
unsigned engine_running(const struct engine *e) {
        return exec_pending(e->exec);
}
unsigned engine_running_now(const struct engine *e) {
        return exec_running(e->exec);
}

int engine_pass(struct engine *e) {
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        bool full = e->full;

        int changed = 0;
        if (full)
                changed = desired_set_scan(e->desired, NULL);
        else if (e->dirty_dirs)
                changed = desired_set_scan(e->desired, e->dirty_dirs);
        e->files_changed = changed != 0;
        strv_free(e->dirty_dirs);
        e->dirty_dirs = NULL;

        engine_resolve(e, start);
        if (full) {
                /* A refusal waits for its file to change or for the periodic resync
                 * (storage.h): what was in the way may be gone. */
                void *v;
                for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                        struct obj *o = v;
                        if (o->error_blocks && o->retry_at > start)
                                o->retry_at = start;
                }
        }
        engine_observe(e, full);
        int started = engine_apply(e, start);

        uint64_t end = now_usec(CLOCK_MONOTONIC);
        e->passes++;
        e->last_pass_usec = now_usec(CLOCK_REALTIME);
        e->last_pass_duration_usec = end - start;
        double secs = (double)(end - start) / 1e6;
        for (size_t i = 0; i < ELEMENTSOF(e->duration_buckets); i++)
                if (secs <= status_duration_bounds[i]) {
                        e->duration_buckets[i]++;
                        break;
                }
        e->duration_sum += secs;
        e->duration_count++;
        if (!e->cfg.dry_run) /* a dry run (and `plan`) writes nothing */
                engine_report(e);
        e->full = false;
        return started;
}

uint64_t engine_next_wakeup(const struct engine *e) {
        uint64_t next = 0;
        void *v;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *o = v;
                uint64_t t = 0;
                if (o->last_error && o->retry_at)
                        t = o->retry_at;
                if (o->absent_since && o->managed) {
                        uint64_t r = o->absent_since + e->cfg.removal_delay_usec;
                        t = t ? MIN(t, r) : r;
                }
                if (t && (!next || t < next))
                        next = t;
        }
        return next;
}

uint64_t engine_next_removal(const struct engine *e, uint64_t now) {
        uint64_t next = 0;
        void *v;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *o = v;
                if (!o->absent_since || !o->managed)
                        continue;
                uint64_t t = o->absent_since + e->cfg.removal_delay_usec;
                if (t > now && (!next || t < next))
                        next = t;
        }
        return next;
}

void engine_format_plan(const struct engine *e, struct buf *b) {
        size_t n = 0;
        _cleanup_free_ struct obj **l = engine_sorted_objects(e, &n);
        size_t w = 6;
        for (size_t i = 0; l && i < n; i++)
                w = MAX(w, strlen(l[i]->id));
        for (size_t i = 0; l && i < n; i++) {
                const struct obj *o = l[i];
                const char *what = o->action != ACT_NONE ? obj_action_to_string(o->action)
                                   : o->busy             ? "running"
                                                         : "-";
                buf_printf(b, "%-*s  %-15s  %-9s  %s%s\n", (int)w, o->id, what,
                           obj_phase_to_string(o->phase), o->managed ? "" : "(unmanaged) ",
                           strempty(o->message));
        }
        for (size_t i = 0; i < e->n_invalid_files; i++)
                buf_printf(b, "invalid file %s:%d: %s\n", e->invalid_files[i].path,
                           e->invalid_files[i].line, e->invalid_files[i].error);
        const struct dv_error *dp = desired_set_problems(e->desired);
        for (size_t i = 0; i < dp->n_problems; i++)
                buf_printf(b, "problem: %s\n", dp->problems[i].msg);
}

void engine_format_table(const struct engine *e, struct buf *b) {
        size_t n = 0;
        _cleanup_free_ struct obj **l = engine_sorted_objects(e, &n);
        size_t w = 4;
        for (size_t i = 0; l && i < n; i++)
                w = MAX(w, strlen(l[i]->id));
        buf_printf(b, "%-*s  %-9s  %s\n", (int)w, "OBJECT", "PHASE", "MESSAGE");
        for (size_t i = 0; l && i < n; i++)
                buf_printf(b, "%-*s  %-9s  %s%s\n", (int)w, l[i]->id,
                           obj_phase_to_string(l[i]->phase), l[i]->managed ? "" : "(unmanaged) ",
                           strempty(l[i]->message));
}

char *engine_summary(const struct engine *e) {
        unsigned counts[_PHASE_MAX] = {0}, total = 0;
        void *v;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *o = v;
                if (!o->managed)
                        continue;
                counts[o->phase]++;
                total++;
        }
        struct buf b = BUF_INIT;
        buf_printf(&b, "%u object%s", total, total == 1 ? "" : "s");
        const char *sep = ": ";
        for (int p = 0; p < _PHASE_MAX; p++)
                if (counts[p]) {
                        buf_printf(&b, "%s%u %s", sep, counts[p], obj_phase_to_string(p));
                        sep = ", ";
                }
        size_t nf = e->n_invalid_files;
        if (nf)
                buf_printf(&b, "; %zu invalid file%s", nf, nf == 1 ? "" : "s");
        return buf_steal(&b);
}
