/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Resolve: which file defines which object now. Duplicates and invalid files
 * never replace the definition in force (last-known-good); a vanished file only
 * starts the removal clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/domain.h"
#include "model/network.h"
#include "model/pool.h"
#include "reconcile/engine-internal.h"
#include "util/strv.h"

static const char *object_uuid(const struct dv_object *o) {
        switch (o->kind) {
        case DV_KIND_POOL:
                return o->def.pool->uuid;
        case DV_KIND_NETWORK:
                return network_def_uuid(o->def.network);
        case DV_KIND_DOMAIN:
                return domain_def_uuid(o->def.domain);
        default:
                return NULL;
        }
}

static void set_str(char **dst, const char *src) {
        if (streq_ptr(*dst, src))
                return;
        free(*dst);
        *dst = src ? strdup(src) : NULL;
}

void invalid_files_free(struct engine *e) {
        for (size_t i = 0; i < e->n_invalid_files; i++) {
                free(e->invalid_files[i].path);
                free(e->invalid_files[i].error);
        }
        free(e->invalid_files);
        e->invalid_files = NULL;
        e->n_invalid_files = 0;
}

void engine_resolve(struct engine *e, uint64_t now) {
        void *v;
        int oom = 0;
        invalid_files_free(e);

        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct obj *o = v;
                o->claims = 0;
                strv_free(o->dup_files);
                o->dup_files = NULL;
        }

        /* Claims: every file that validly defines an object, or that defined one
         * before it turned invalid. */
        struct hashmap *uuids = hashmap_new();
        for (size_t i = 0;;) {
                struct desired_file *f = desired_set_next(e->desired, &i);
                if (!f)
                        break;
                struct obj *o = NULL;
                if (f->obj)
                        o = engine_get_or_add(e, f->obj->kind, f->obj->pool, f->obj->name);
                else if (f->last_id)
                        o = engine_lookup(e, f->last_id);
                else {
                        /* Invalid since the agent started: it still holds on to the object
                         * it was last applied from, so that object is not removed. */
                        for (size_t j = 0; hashmap_iter(e->objects, &j, NULL, &v);) {
                                struct obj *c = v;
                                if (c->applied && streq_ptr(c->applied->file, f->path)) {
                                        o = c;
                                        f->last_id = strdup(c->id);
                                        break;
                                }
                        }
                }
                if (!o) {
                        struct invalid_file *l =
                                realloc(e->invalid_files, (e->n_invalid_files + 1) * sizeof(*l));
                        if (l) {
                                e->invalid_files = l;
                                l[e->n_invalid_files++] = (struct invalid_file){
                                        .path = strdup(f->path),
                                        .line = dv_error_line(&f->err),
                                        .error = strdup(strempty(dv_error_message(&f->err))),
                                };
                        }
                        continue;
                }
                o->claims++;
                KEEP(oom, strv_push(&o->dup_files, f->path));
                if (o->claims > 1)
                        continue;
                /* First claim: remember it (a second one makes this a duplicate below). */
                if (f->obj) {
                        if (!o->desired || o->desired != f->obj || !streq_ptr(o->file, f->path)) {
                                if (f->generation == desired_set_generation(e->desired)) {
                                        /* Read in this scan: written again, even identically. */
                                        o->failures = 0;
                                        o->dom_exits = 0;
                                        o->retry_at = 0;
                                }
                                o->dirty = true;
                        }
                        free(o->file_error);
                        o->file_error = NULL;
                } else {
                        _cleanup_free_ char *msg = dv_error_summary(&f->err);
                        if (!streq_ptr(o->file_error, msg))
                                o->dirty = true;
                        set_str(&o->file_error, msg);
                }
                o->file_mtime = f->mtime;
                set_str(&o->file, f->path);
                if (f->obj) {
                        const char *u = object_uuid(f->obj);
                        if (u) {
                                struct obj *other = hashmap_get(uuids, u);
                                if (other && other != o) {
                                        /* Same UUID in two objects: both are duplicates. */
                                        KEEP(oom, strv_push(&o->dup_files, other->file));
                                        KEEP(oom, strv_push(&other->dup_files, f->path));
                                        o->claims++;
                                        other->claims++;
                                } else
                                        KEEP(oom, hashmap_put(uuids, u, o, NULL));
                        }
                }
        }
        hashmap_free(uuids, NULL);
        if (oom < 0) {
                /* A duplicate may have gone unseen: resolve everything again next pass. */
                engine_event(e, "cannot resolve desired files: %s", strerror(-oom));
                e->errors_total++;
                e->full = true;
        }

        /* Second walk: adopt single valid claims; duplicates keep what is in force. */
        for (size_t i = 0;;) {
                struct desired_file *f = desired_set_next(e->desired, &i);
                if (!f)
                        break;
                if (!f->obj)
                        continue;
                struct obj *o = engine_lookup(e, f->last_id);
                if (!o || o->claims != 1 || !streq_ptr(o->file, f->path))
                        continue;
                if (o->desired != f->obj) {
                        dv_object_free(o->desired);
                        o->desired = dv_object_ref(f->obj);
                        o->dirty = true;
                }
                memcpy(o->desired_hash, f->obj->hash, sizeof(o->desired_hash));
                o->managed = true;
        }

        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct obj *o = v;
                if (o->claims > 1) {
                        /* Ours to report (blocked), even before any file won. */
                        o->managed = true;
                        o->absent_since = 0;
                        o->dirty = true;
                        if (o->applied && strv_contains(o->dup_files, o->applied->file))
                                set_str(&o->file, o->applied->file); /* the one in force */
                        continue;
                }
                strv_free(o->dup_files);
                o->dup_files = NULL;
                if (o->claims == 1) {
                        o->absent_since = 0;
                        continue;
                }
                /* No file: the removal clock runs (objects the agent never applied
                 * and that exist only as observations are handled by observe). */
                if (o->file) {
                        free(o->file);
                        o->file = NULL;
                        free(o->file_error);
                        o->file_error = NULL;
                        o->desired_hash[0] = '\0';
                        o->dirty = true;
                }
                if (o->desired) {
                        dv_object_free(o->desired);
                        o->desired = NULL;
                }
                if (o->managed && o->absent_since == 0) {
                        o->absent_since = now;
                        o->dirty = true;
                }
                if (!o->applied && o->managed) {
                        /* Never applied (invalid from the start, or blocked): nothing to undo. */
                        o->managed = false;
                }
        }
}
