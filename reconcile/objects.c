/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine's object table, and what keeps it and state_dir in step: objects by id,
 * their last-applied records queued in the state store, the removal queue, and the
 * commit that writes them. The pass phases (resolve.c, observe.c, plan.c, actions.c,
 * report.c) reach objects and state_dir only through these functions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcile/engine-internal.h"
#include "state/state.h"
#include "util/log.h"
#include "util/strv.h"

struct obj *engine_lookup(const struct engine *e, const char *id) {
        return hashmap_get(e->objects, id);
}

void obj_free(void *p) {
        struct obj *o = p;
        if (!o)
                return;
        free(o->id);
        free(o->name);
        free(o->pool);
        dv_object_free(o->desired);
        free(o->file);
        free(o->file_error);
        strv_free(o->dup_files);
        applied_free(o->applied);
        pool_status_done(&o->pool_st);
        vol_status_done(&o->vol_st);
        net_status_done(&o->net_st);
        dv_object_free(o->net_prev);
        dom_status_done(&o->dom_st);
        free(o->message);
        free(o->last_error);
        free(o);
}

struct obj *engine_get_or_add(struct engine *e, enum dv_kind kind, const char *pool,
                              const char *name) {
        _cleanup_free_ char *id = dv_object_id_make(kind, pool, name);
        if (!id)
                return NULL;
        struct obj *o = hashmap_get(e->objects, id);
        if (o)
                return o;
        o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->kind = kind;
        o->id = TAKE_PTR(id);
        o->name = strdup(name);
        o->pool = pool ? strdup(pool) : NULL;
        o->phase = PHASE_PENDING;
        o->since_usec = now_usec(CLOCK_REALTIME);
        o->dirty = true;
        if (!o->name || (pool && !o->pool) || hashmap_put(e->objects, o->id, o, NULL) < 0) {
                obj_free(o);
                return NULL;
        }
        return o;
}

void engine_remove_object(struct engine *e, struct obj *o) {
        _cleanup_free_ char *rel = obj_observed_relpath(o);
        if (rel && !e->cfg.dry_run)
                engine_queue_removal(e, rel);
        e->status_stale = true;
        obj_free(hashmap_remove(e->objects, o->id));
}

void engine_queue_removal(struct engine *e, const char *relpath) {
        int r = state_store_remove(e->state, relpath);
        if (r > 0 && !strv_contains(e->pending_removals, relpath))
                r = strv_push(&e->pending_removals, relpath);
        if (r < 0) {
                /* Not even queued: a later pass finds the file still there and removes it. */
                engine_event(e, "cannot queue the removal of %s: %s", relpath, strerror(-r));
                e->errors_total++;
        }
}

int engine_commit(struct engine *e, struct dv_error *err) {
        int q = 0;
        if (e->store_failed) {
                /* Removals first: a record put again for an object that came back wins. */
                for (char **rel = e->pending_removals; rel && *rel; rel++) {
                        int k = state_store_remove(e->state, *rel);
                        if (k < 0 && q >= 0)
                                q = dv_error_add(err, k, 0, "cannot queue the removal of %s: %s",
                                                 *rel, strerror(-k));
                }
                void *v;
                for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                        const struct obj *o = v;
                        int k = o->applied ? applied_put(e, o->applied) : 0;
                        if (k < 0 && q >= 0)
                                q = dv_error_add(err, k, 0,
                                                 "cannot queue the last-applied record of %s: %s",
                                                 o->id, strerror(-k));
                }
        }
        /* What could be queued is written even so; the commit fails as a whole. */
        int r = state_store_commit(e->state, err);
        KEEP(r, q);
        e->store_failed = r < 0;
        if (r >= 0) {
                strv_free(e->pending_removals);
                e->pending_removals = NULL;
        }
        return r;
}

int applied_put(struct engine *e, const struct applied *a) {
        _cleanup_free_ char *rel = applied_relpath(a->kind, a->pool, a->name);
        _cleanup_free_ char *json = applied_to_json(a);
        int r = rel && json ? state_store_put(e->state, rel, json, strlen(json), 0600) : -ENOMEM;
        if (r < 0)
                /* What is on disk is not what the agent knows: like after a failed
                 * commit, every record is queued again before any action starts. */
                e->store_failed = true;
        return r;
}

static int cmp_obj_id(const void *a, const void *b) {
        const struct obj *x = *(struct obj *const *)a, *y = *(struct obj *const *)b;
        if (x->kind != y->kind)
                return (int)x->kind - (int)y->kind;
        return strcmp(x->id, y->id);
}

struct obj **engine_sorted_objects(const struct engine *e, size_t *n) {
        size_t k = 0, cap = hashmap_size(e->objects);
        struct obj **l = calloc(cap + 1, sizeof(*l));
        void *v;
        if (!l)
                return NULL;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v) && k < cap;)
                l[k++] = v;
        qsort(l, k, sizeof(*l), cmp_obj_id);
        *n = k;
        return l;
}
