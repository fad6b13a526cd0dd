/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Apply: record ownership (last-applied) before acting, hand actions to the
 * executor, and take their results back. Workers see only reference-counted
 * definitions, never the engine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/domain.h"
#include "model/network.h"
#include "model/pool.h"
#include "model/volume.h"
#include "reconcile/engine-internal.h"
#include "state/state.h"
#include "util/log.h"
#include "util/strv.h"

#define BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define BACKOFF_MAX_USEC (300 * USEC_PER_SEC)

struct job_data {
        char *id;
        enum obj_action action;
        struct dv_object *pool;   /* the pool definition in force */
        struct dv_object *volume; /* volume actions */
        uint64_t arg;
        bool want_up;
        enum dv_build build;
        /* networks */
        struct dv_object *net, *net_prev; /* references keep the definitions alive */
        struct network_def net_eff;       /* net's with the generated UUID and MAC */
        char *net_uuid, *net_mac;
        bool net_prev_created, net_adopt, net_delete_bridge;
        /* domains */
        struct dv_object *dom;
        char **dom_disks, **dom_macs, **dom_bridges; /* one per disk / interface ("" none) */
        char *dom_uuid; /* written or generated: the one in observed XML */
        uint32_t dom_uid;
        bool dom_uid_missing; /* a QEMU domain with no id while qemu.uid_range is set */
        uint32_t dom_id_base; /* a container's range of container.id_range */
        bool dom_ids_missing; /* a container that needs a range and has none */
        bool dom_privileged;  /* policy privileged='yes' */
        uint64_t dom_timeout_usec;
};

static void job_data_free(void *p) {
        struct job_data *d = p;
        if (!d)
                return;
        free(d->id);
        dv_object_free(d->pool);
        dv_object_free(d->volume);
        dv_object_free(d->net);
        dv_object_free(d->net_prev);
        free(d->net_uuid);
        free(d->net_mac);
        dv_object_free(d->dom);
        strv_free(d->dom_disks);
        strv_free(d->dom_macs);
        strv_free(d->dom_bridges);
        free(d->dom_uuid);
        free(d);
}

static int unsupported(struct exec_job *j, const struct pool_def *pd, const char *what) {
        return dv_error_add(&j->err, -EOPNOTSUPP, 0, "pool type '%s' cannot %s",
                            pool_type_to_string(pd->type), what);
}

static int run_network_job(struct exec_job *j) {
        struct job_data *d = j->data;
        switch (d->action) {
        case ACT_NET_APPLY:
                return network_apply(d->net_prev ? d->net_prev->def.network : NULL,
                                     d->net_prev_created, &d->net_eff, d->net_adopt, &j->err);
        case ACT_NET_STOP:
                return network_stop(&d->net_eff, d->net_delete_bridge, &j->err);
        default:
                return dv_error_add(&j->err, -EINVAL, 0, "action %s cannot run on a network",
                                    obj_action_to_string(d->action));
        }
}

static int run_domain_job(struct exec_job *j) {
        struct job_data *d = j->data;
        switch (d->action) {
        case ACT_DOM_START: {
                const struct domain_driver *drv = domain_driver_get(d->dom->def.domain->type);
                struct dom_start a = {
                        .uuid = d->dom_uuid,
                        .disk_paths = d->dom_disks,
                        .macs = d->dom_macs,
                        .bridges = d->dom_bridges,
                        .uid = d->dom_uid,
                        .id_base = d->dom_id_base,
                        .privileged = d->dom_privileged,
                };
                if (!drv)
                        return dv_error_add(&j->err, -EOPNOTSUPP, 0,
                                            "domain type '%s' has no driver in this build",
                                            domain_type_to_string(d->dom->def.domain->type));
                /* Never as root instead: nothing starts half-confined. */
                if (d->dom_uid_missing)
                        return dv_error_add(&j->err, -EUSERS, 0,
                                            "no id of agent.conf qemu.uid_range is free for "
                                            "domain %s: QEMU not started",
                                            d->dom->name);
                if (d->dom_ids_missing)
                        return dv_error_add(
                                &j->err, -EUSERS, 0,
                                "no range of 65536 ids of agent.conf container.id_range "
                                "is free for container %s: not started",
                                d->dom->name);
                return drv->start(d->dom->def.domain, &a, &j->err);
        }
        case ACT_DOM_STOP: {
                const struct domain_driver *drv = domain_driver_get(d->dom->def.domain->type);
                if (!drv)
                        return 0; /* nothing of it can be running */
                return drv->stop(d->dom->def.domain, d->dom_timeout_usec, &j->err);
        }
        default:
                return dv_error_add(&j->err, -EINVAL, 0, "action %s cannot run on a domain",
                                    obj_action_to_string(d->action));
        }
}

static int run_job_kind(struct exec_job *j);

/* Runs in a worker thread. The debug log shows when each action runs, from its worker:
 * the only place where how many run at once can be seen (a volume's file no longer has a
 * name while it is made). */
static int run_job(struct exec_job *j) {
        struct job_data *d = j->data;
        const char *act = obj_action_to_string(d->action);
        log_debug("%s: %s running in a worker", d->id, act);
        int r = run_job_kind(j);
        log_debug("%s: %s finished in its worker: %s", d->id, act, r < 0 ? strerror(-r) : "ok");
        return r;
}

static int run_job_kind(struct exec_job *j) {
        struct job_data *d = j->data;
        if (d->net)
                return run_network_job(j);
        if (d->dom)
                return run_domain_job(j);
        const struct pool_def *pd = d->pool->def.pool;
        const struct volume_def *vd = d->volume ? d->volume->def.volume : NULL;
        const struct storage_driver *drv = storage_driver_get(pd->type);
        if (!drv)
                return unsupported(j, pd, "be managed on this host");
        int r;
        switch (d->action) {
        case ACT_POOL_BUILD:
                if (!drv->pool_build)
                        return unsupported(j, pd, "be built");
                r = drv->pool_build(pd, d->build, &j->err);
                if (r >= 0 && d->want_up && drv->pool_start)
                        r = drv->pool_start(pd, &j->err);
                return r;
        case ACT_POOL_START:
                return drv->pool_start ? drv->pool_start(pd, &j->err) : 0;
        case ACT_POOL_STOP:
                return drv->pool_stop ? drv->pool_stop(pd, &j->err) : 0;
        case ACT_POOL_DELETE:
                return drv->pool_delete ? drv->pool_delete(pd, &j->err)
                                        : unsupported(j, pd, "be deleted");
        case ACT_POOL_PERMS:
                return drv->pool_set_perms ? drv->pool_set_perms(pd, &j->err)
                                           : unsupported(j, pd, "change permissions");
        case ACT_VOL_CREATE:
                return drv->vol_create ? drv->vol_create(pd, vd, &j->err)
                                       : unsupported(j, pd, "create volumes");
        case ACT_VOL_RESIZE:
                return drv->vol_resize ? drv->vol_resize(pd, vd, d->arg, &j->err)
                                       : unsupported(j, pd, "resize volumes");
        case ACT_VOL_DELETE:
                return drv->vol_delete ? drv->vol_delete(pd, vd->name, &j->err)
                                       : unsupported(j, pd, "delete volumes");
        default:
                return dv_error_add(&j->err, -EINVAL, 0, "action %s cannot run in a worker",
                                    obj_action_to_string(d->action));
        }
}

/* o does not act because its last-applied record cannot be written: without it, what
 * the action makes could later be taken for the user's (kept where on-remove='delete'
 * should remove it) or the other way round. o shows failed, with the reason, and is
 * retried with the failure backoff. */
static void block_on_record(struct obj *o, bool intent, const char *msg, uint64_t now) {
        if (intent)
                o->applied->created = false; /* what it says is not on disk, and not true */
        free(o->last_error);
        o->last_error = msg ? strdup(msg) : NULL;
        o->failures++;
        o->retry_at = now + MIN(BACKOFF_MIN_USEC << MIN(o->failures - 1, 20u), BACKOFF_MAX_USEC);
        o->phase = PHASE_FAILED;
        o->failed = o->action; /* waits for retry_at, as a failed action does */
        o->dirty = true;
}

struct pending {
        struct obj *o;
        bool intent; /* marked created by this pass */
};

static bool runs_qemu(const struct dv_object *def) {
        return def && def->kind == DV_KIND_DOMAIN &&
               (def->def.domain->type == DOMAIN_TYPE_KVM ||
                def->def.domain->type == DOMAIN_TYPE_QEMU);
}

/* The lowest id of qemu.uid_range that no other record holds, 0 when all are taken (or
 * there is no range). Records outside the range keep theirs: an id is never taken from a
 * domain while it lives. */
static uint32_t allocate_uid(const struct engine *e, const struct obj *self) {
        uint32_t first = e->cfg.qemu_uid_first, last = e->cfg.qemu_uid_last;
        if (first == 0 || last < first)
                return 0;
        size_t n = 0;
        _cleanup_free_ struct obj **all = engine_sorted_objects(e, &n);
        if (!all)
                return 0;
        uint64_t size = (uint64_t)last - first + 1;
        if (size > n + 1) /* a free id lies within the first n + 1 */
                size = n + 1;
        _cleanup_free_ bool *used = calloc(size, sizeof(bool));
        if (!used)
                return 0;
        for (size_t i = 0; i < n; i++) {
                const struct applied *a = all[i]->applied;
                if (all[i] != self && a && a->uid >= first && a->uid - first < size)
                        used[a->uid - first] = true;
        }
        for (uint64_t k = 0; k < size; k++)
                if (!used[k])
                        return first + (uint32_t)k;
        return 0;
}

/* A container that gets a user namespace of its own from container.id_range: neither
 * its own <idmap> nor privileged='yes'. */
static bool needs_id_range(const struct dv_object *def) {
        return def && def->kind == DV_KIND_DOMAIN && def->def.domain->type == DOMAIN_TYPE_LXC &&
               def->def.domain->n_uid_map == 0 && !dv_policy_privileged(&def->policy);
}

/* The lowest 65536-aligned slot of container.id_range that no other record holds, 0 when
 * all are taken. As with uids, a record keeps its range while the domain lives. */
static uint32_t allocate_id_range(const struct engine *e, const struct obj *self) {
        uint32_t first = e->cfg.container_id_first, last = e->cfg.container_id_last;
        if (first == 0 || last < first || (uint64_t)last - first + 1 < 65536)
                return 0;
        size_t n = 0;
        _cleanup_free_ struct obj **all = engine_sorted_objects(e, &n);
        if (!all)
                return 0;
        uint64_t slots = ((uint64_t)last - first + 1) / 65536;
        for (uint64_t k = 0; k < slots; k++) {
                uint64_t base = first + k * 65536;
                bool used = false;
                for (size_t i = 0; i < n && !used; i++) {
                        const struct applied *a = all[i]->applied;
                        used = all[i] != self && a && a->id_base && a->id_base < base + 65536 &&
                               base < (uint64_t)a->id_base + 65536;
                }
                if (!used)
                        return (uint32_t)base;
        }
        return 0;
}

/* Makes o->applied describe o->desired, keeping generated values. */
static int update_applied(struct engine *e, struct obj *o, bool *changed) {
        /* A record from before uids were allocated gets one at the next pass. */
        bool needs_uid = o->applied && ((!o->applied->uid && runs_qemu(o->desired)) ||
                                        (!o->applied->id_base && needs_id_range(o->desired)));
        if (!o->desired || o->dup_files ||
            (o->applied && streq_ptr(o->applied->hash, o->desired->hash) &&
             streq_ptr(o->applied->file, o->file) && !needs_uid))
                return 0;
        struct applied *a = NULL;
        int r = applied_new_from(o->desired, o->file, &a);
        if (r < 0)
                return r;
        if (o->applied) {
                if (o->kind == DV_KIND_NETWORK && o->applied->obj && !o->net_prev) {
                        /* Kept until an apply succeeds: a renamed bridge is removed by name. */
                        o->net_prev = dv_object_ref(o->applied->obj);
                        o->net_prev_created = o->applied->created;
                }
                a->mac = TAKE_PTR(o->applied->mac);
                a->macs = TAKE_PTR(o->applied->macs);
                a->uuid = TAKE_PTR(o->applied->uuid);
                a->created = o->applied->created;
                a->active = o->applied->active;
                a->boot_id = TAKE_PTR(o->applied->boot_id);
                a->uid = o->applied->uid;
                a->id_base = o->applied->id_base;
                applied_free(o->applied);
        }
        if (!a->uuid && o->kind == DV_KIND_POOL && o->desired->def.pool->uuid)
                a->uuid = strdup(o->desired->def.pool->uuid);
        if (!a->uuid && o->kind != DV_KIND_VOLUME)
                a->uuid = uuid_generate_string();
        if (o->kind == DV_KIND_DOMAIN) {
                /* One MAC per interface: the written one, else the one generated before
                 * for that position, else a new one. */
                const struct domain_def *dd = o->desired->def.domain;
                char **old = a->macs;
                a->macs = NULL;
                for (size_t k = 0; k < dd->n_interfaces; k++) {
                        const char *m = dd->interfaces[k].mac;
                        _cleanup_free_ char *gen = NULL;
                        if (!m && old && k < strv_length(old))
                                m = old[k];
                        if (!m)
                                m = gen = mac_generate_string();
                        if (!m || strv_push(&a->macs, m) < 0) {
                                strv_free(old);
                                applied_free(a);
                                return -ENOMEM;
                        }
                }
                strv_free(old);
        }
        if (runs_qemu(o->desired) && !a->uid) {
                a->uid = allocate_uid(e, o);
                if (!a->uid && e->cfg.qemu_uid_first)
                        engine_event(e, "%s: every id of qemu.uid_range %u-%u is taken", o->id,
                                     e->cfg.qemu_uid_first, e->cfg.qemu_uid_last);
        }
        if (needs_id_range(o->desired) && !a->id_base) {
                a->id_base = allocate_id_range(e, o);
                if (!a->id_base && e->cfg.container_id_first)
                        engine_event(e, "%s: every range of container.id_range %u-%u is taken",
                                     o->id, e->cfg.container_id_first, e->cfg.container_id_last);
        }
        if (o->kind == DV_KIND_NETWORK) {
                const struct network_def *nd = o->desired->def.network;
                if (nd->mac) {
                        free(a->mac);
                        a->mac = strdup(nd->mac);
                } else if (!a->mac)
                        a->mac = mac_generate_string();
        }
        o->applied = a;
        *changed = true;
        return applied_put(e, a);
}

static int forget(struct engine *e, struct obj *o) {
        _cleanup_free_ char *rel = applied_relpath(o->kind, o->pool, o->name);
        if (!rel)
                return -ENOMEM;
        engine_queue_removal(e, rel);
        engine_event(e, "%s: no longer managed (%s)", o->id, strna(o->message));
        applied_free(o->applied);
        o->applied = NULL;
        o->managed = false;
        o->absent_since = 0;
        if (o->kind == DV_KIND_VOLUME && o->exists) {
                o->dirty = true; /* stays listed, as an unmanaged volume */
                e->status_stale = true;
                return 0;
        }
        engine_remove_object(e, o);
        return 1;
}

/* The file or device a disk uses: a volume's through its pool's driver. Caller frees;
 * NULL when it cannot be known yet. */
static char *domain_disk_path(const struct engine *e, const struct domain_disk *dk) {
        if (dk->source.file)
                return strdup(dk->source.file);
        if (dk->source.dev)
                return strdup(dk->source.dev);
        if (!dk->source.pool || !dk->source.volume)
                return NULL;
        _cleanup_free_ char *pid = dv_object_id_make(DV_KIND_POOL, NULL, dk->source.pool);
        struct obj *p = pid ? engine_lookup(e, pid) : NULL;
        const struct dv_object *pd = p ? obj_live_def(p) : NULL;
        const struct storage_driver *drv = pd ? storage_driver_get(pd->def.pool->type) : NULL;
        return drv && drv->vol_path ? drv->vol_path(pd->def.pool, dk->source.volume) : NULL;
}

static struct exec_job *make_job(struct engine *e, struct obj *o) {
        struct exec_job *j = calloc(1, sizeof(*j));
        struct job_data *d = calloc(1, sizeof(*d));
        if (!j || !d) {
                free(j);
                free(d);
                return NULL;
        }
        d->id = strdup(o->id);
        d->action = o->action;
        d->arg = o->action_arg;
        if (o->kind == DV_KIND_NETWORK) {
                d->net = dv_object_ref((struct dv_object *)obj_def(o));
                d->net_prev = o->net_prev ? dv_object_ref(o->net_prev) : NULL;
                d->net_prev_created = o->net_prev_created;
                if (o->applied) {
                        d->net_uuid = o->applied->uuid ? strdup(o->applied->uuid) : NULL;
                        d->net_mac = o->applied->mac ? strdup(o->applied->mac) : NULL;
                }
                struct applied gen = {.uuid = d->net_uuid, .mac = d->net_mac};
                d->net_eff = network_effective(d->net->def.network, &gen);
                /* Only what the agent created is changed or deleted. */
                d->net_adopt = o->applied && o->applied->created;
                d->net_delete_bridge = o->applied && o->applied->created;
                j->run = run_job;
                j->data = d;
                j->free_data = job_data_free;
                if (!d->id) {
                        exec_job_free(j);
                        return NULL;
                }
                return j;
        }
        if (o->kind == DV_KIND_DOMAIN) {
                const struct dv_object *def = obj_def(o);
                const struct domain_def *dd = def->def.domain;
                d->dom = dv_object_ref((struct dv_object *)def);
                d->dom_timeout_usec = dv_policy_shutdown_timeout(&def->policy) * USEC_PER_SEC;
                const char *uuid = dd->uuid ? dd->uuid : o->applied ? o->applied->uuid : NULL;
                d->dom_uuid = uuid ? strdup(uuid) : NULL;
                d->dom_uid = o->applied ? o->applied->uid : 0;
                d->dom_uid_missing = !d->dom_uid && runs_qemu(def) && e->cfg.qemu_uid_first;
                d->dom_id_base = o->applied ? o->applied->id_base : 0;
                d->dom_ids_missing = !d->dom_id_base && needs_id_range(def);
                d->dom_privileged = dv_policy_privileged(&def->policy);
                bool ok = !uuid || d->dom_uuid;
                for (size_t k = 0; ok && k < dd->n_disks; k++) {
                        _cleanup_free_ char *path = domain_disk_path(e, &dd->disks[k]);
                        ok = strv_push(&d->dom_disks, strempty(path)) >= 0;
                }
                for (size_t k = 0; ok && k < dd->n_interfaces; k++) {
                        const struct domain_net *n = &dd->interfaces[k];
                        const char *mac =
                                o->applied && o->applied->macs && k < strv_length(o->applied->macs)
                                        ? o->applied->macs[k]
                                        : n->mac;
                        _cleanup_free_ char *bridge = NULL;
                        if (n->source_network) {
                                _cleanup_free_ char *nid =
                                        dv_object_id_make(DV_KIND_NETWORK, NULL, n->source_network);
                                struct obj *no = nid ? engine_lookup(e, nid) : NULL;
                                const struct dv_object *nd = no ? obj_def(no) : NULL;
                                bridge = nd ? network_bridge_name(nd->def.network) : NULL;
                        } else if (n->source_bridge)
                                bridge = strdup(n->source_bridge);
                        ok = strv_push(&d->dom_macs, strempty(mac)) >= 0 &&
                             strv_push(&d->dom_bridges, strempty(bridge)) >= 0;
                }
                j->run = run_job;
                j->data = d;
                j->free_data = job_data_free;
                if (!d->id || !ok) {
                        exec_job_free(j);
                        return NULL;
                }
                return j;
        }
        if (o->kind == DV_KIND_POOL) {
                d->pool = dv_object_ref((struct dv_object *)obj_def(o));
                d->want_up = obj_want_up(e, o);
                d->build = dv_policy_build(&obj_def(o)->policy);
        } else {
                _cleanup_free_ char *pid = dv_object_id_make(DV_KIND_POOL, NULL, o->pool);
                struct obj *p = pid ? engine_lookup(e, pid) : NULL;
                d->pool = p ? dv_object_ref((struct dv_object *)obj_live_def(p)) : NULL;
                d->volume = dv_object_ref((struct dv_object *)obj_def(o));
        }
        j->run = run_job;
        j->data = d;
        j->free_data = job_data_free;
        if (!d->id || !d->pool) {
                exec_job_free(j);
                return NULL;
        }
        return j;
}

static void set_phase(struct engine *e, struct obj *o, struct plan_step *s, uint64_t now_rt) {
        bool msg_changed = !streq_ptr(o->message, s->message);
        if (o->phase != s->phase) {
                o->since_usec = now_rt;
                o->dirty = true;
                if (s->message)
                        engine_event(e, "%s: %s: %s", o->id, obj_phase_to_string(s->phase),
                                     s->message);
                else
                        engine_event(e, "%s: %s", o->id, obj_phase_to_string(s->phase));
        } else if (msg_changed)
                o->dirty = true;
        o->phase = s->phase;
        free(o->message);
        o->message = TAKE_PTR(s->message);
        o->action = s->action;
        o->action_arg = s->arg;
}

int engine_apply(struct engine *e, uint64_t now) {
        uint64_t now_rt = now_usec(CLOCK_REALTIME);
        void *v;
        size_t n_act = 0;
        struct pending *act = NULL;
        bool store_changed = e->store_failed; /* records a failed commit dropped go first */
        int r;

        /* Kinds in dependency order, so a volume is planned on its pool's fresh phase. */
        for (int kind = 0; kind < _DV_KIND_MAX; kind++)
                for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                        struct obj *o = v;
                        if ((int)o->kind != kind)
                                continue;
                        struct plan_step s;
                        plan_object(e, o, now, &s);
                        set_phase(e, o, &s, now_rt);
                        if (e->cfg.dry_run || o->busy)
                                continue;
                        bool settled = o->phase == PHASE_READY || o->phase == PHASE_STOPPED;
                        bool record = (o->action != ACT_NONE && o->action != ACT_FORGET) ||
                                      (settled && o->managed);
                        /* A domain's record is what it runs: it changes when it starts, or while it
                         * is down, never under a running guest (on-change='restart-required'). */
                        if (o->kind == DV_KIND_DOMAIN)
                                record = o->action == ACT_DOM_START ||
                                         (o->phase == PHASE_STOPPED && o->managed);
                        r = record ? update_applied(e, o, &store_changed) : 0;
                        bool intent = false;
                        if (r >= 0 && o->action != ACT_NONE) {
                                bool creates_bridge = o->action == ACT_NET_APPLY && o->observed &&
                                                      o->net_st.state == NET_ABSENT;
                                /* Intent first: if the agent dies mid-action, what it created is
                                 * known as its own. */
                                if ((o->action == ACT_POOL_BUILD || o->action == ACT_VOL_CREATE ||
                                     creates_bridge) &&
                                    o->applied && !o->applied->created) {
                                        o->applied->created = true;
                                        intent = store_changed = true;
                                        r = applied_put(e, o->applied);
                                }
                        }
                        if (r < 0) {
                                _cleanup_free_ char *m = NULL;
                                if (asprintf(&m, "cannot write last-applied record: %s",
                                             strerror(-r)) < 0)
                                        m = NULL;
                                e->errors_total++;
                                store_changed = true;
                                if (o->action == ACT_NONE) {
                                        engine_event(e, "%s: %s", o->id, strna(m));
                                        continue;
                                }
                                engine_event(e, "%s: %s; %s not started", o->id, strna(m),
                                             obj_action_to_string(o->action));
                                block_on_record(o, intent, m, now);
                                continue;
                        }
                        if (o->action == ACT_NONE)
                                continue;
                        struct pending *n = realloc(act, (n_act + 1) * sizeof(*act));
                        if (!n) {
                                block_on_record(o, intent, "out of memory", now);
                                continue;
                        }
                        act = n;
                        act[n_act++] = (struct pending){o, intent};
                }

        if (store_changed) {
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                r = engine_commit(e, &err);
                if (r < 0) {
                        /* Without a record of ownership, acting would risk forgetting what we
                         * made: nothing starts until the state directory is writable again. */
                        _cleanup_free_ char *m = dv_error_summary(&err), *why = NULL;
                        engine_event(e, "cannot write last-applied records: %s; no action started",
                                     strna(m));
                        e->errors_total++;
                        if (asprintf(&why, "cannot write last-applied records: %s", strna(m)) < 0)
                                why = NULL;
                        for (size_t k = 0; k < n_act; k++)
                                block_on_record(act[k].o, act[k].intent, why, now);
                        free(act);
                        return 0;
                }
        }

        int started = 0;
        bool forgot = false;
        for (size_t k = 0; k < n_act; k++) {
                struct obj *o = act[k].o;
                if (o->action == ACT_FORGET) {
                        if (forget(e, o) < 0)
                                e->errors_total++;
                        forgot = true;
                        continue;
                }
                struct exec_job *j = make_job(e, o);
                if (!j) {
                        engine_event(e, "%s: cannot start %s: its pool definition is not known",
                                     o->id, obj_action_to_string(o->action));
                        continue;
                }
                o->busy = true;
                o->running = o->action;
                e->actions_total++;
                exec_submit(e->exec, j);
                started++;
        }
        free(act);
        if (forgot) {
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                if (engine_commit(e, &err) < 0)
                        e->errors_total++;
        }
        return started;
}

/* After an action: a record that cannot be queued now is queued again, with all the
 * others, by the commit before the next action (applied_put). */
static void save_applied(struct engine *e, struct obj *o) {
        int r = applied_put(e, o->applied);
        if (r < 0) {
                engine_event(e, "%s: cannot write last-applied record: %s", o->id, strerror(-r));
                e->errors_total++;
        }
}

/* Brought up by the agent during this boot (the autostart rule reads both). */
static void mark_up(const struct engine *e, struct applied *a) {
        a->active = true;
        free(a->boot_id);
        a->boot_id = strdup(e->boot_id);
}

void engine_handle_done(struct engine *e, struct exec_job *j) {
        struct job_data *d = j->data;
        struct obj *o = engine_lookup(e, d->id);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (!o)
                return;
        o->busy = false;
        o->dirty = true;
        if (j->result < 0) {
                _cleanup_free_ char *m = dv_error_summary(&j->err);
                if (!m)
                        m = strdup(strerror(-j->result));
                o->failures++;
                o->error_blocks = o->kind == DV_KIND_DOMAIN ? DOM_IS_REFUSAL(j->result)
                                                            : STORAGE_IS_REFUSAL(j->result);
                o->failed = d->action;
                /* A refusal waits for the file to change (which resets the backoff) or
                 * for the longest backoff; a failure is retried from 1 s doubling. */
                o->retry_at =
                        now + (o->error_blocks ? BACKOFF_MAX_USEC
                                               : MIN(BACKOFF_MIN_USEC << MIN(o->failures - 1, 20u),
                                                     BACKOFF_MAX_USEC));
                free(o->last_error);
                o->last_error = TAKE_PTR(m);
                e->actions_failed_total++;
                engine_event(e, "%s: %s failed: %s", o->id, obj_action_to_string(d->action),
                             strna(o->last_error));
                if (o->error_blocks && o->applied && o->applied->created &&
                    (d->action == ACT_POOL_BUILD || d->action == ACT_VOL_CREATE ||
                     d->action == ACT_NET_APPLY)) {
                        /* A refusal is made before anything is created (the drivers'
                         * contract): what is there is not ours, and on-remove='delete'
                         * must never destroy it. */
                        o->applied->created = false;
                        save_applied(e, o);
                }
                /* The volume's pool may have changed under us: look again next pass. */
                return;
        }
        engine_event(e, "%s: %s done", o->id, obj_action_to_string(d->action));
        free(o->last_error);
        o->last_error = NULL;
        o->error_blocks = false;
        o->failures = 0;
        o->retry_at = 0;
        o->observed = false; /* observe again before planning on it */
        if (o->applied) {
                bool needs_record = false;
                switch (d->action) {
                case ACT_POOL_BUILD:
                        if (d->want_up)
                                mark_up(e, o->applied);
                        needs_record = true;
                        break;
                case ACT_POOL_START:
                        mark_up(e, o->applied);
                        needs_record = true;
                        break;
                case ACT_POOL_STOP:
                        o->applied->active = false;
                        needs_record = true;
                        break;
                case ACT_DOM_START:
                        mark_up(e, o->applied);
                        needs_record = true;
                        break;
                case ACT_DOM_STOP:
                        o->applied->active =
                                false; /* asked for: not an exit for the restart policy */
                        if (!o->file && o->absent_since) {
                                free(o->message);
                                o->message = strdup("stopped");
                                forget(e, o);
                                return;
                        }
                        needs_record = true;
                        break;
                case ACT_NET_APPLY:
                        mark_up(e, o->applied);
                        dv_object_free(o->net_prev); /* the old bridge is gone now */
                        o->net_prev = NULL;
                        needs_record = true;
                        break;
                case ACT_NET_STOP:
                        o->applied->active = false;
                        if (!o->file && o->absent_since) {
                                free(o->message);
                                o->message = strdup("stopped");
                                forget(e, o);
                                return;
                        }
                        needs_record = true;
                        break;
                case ACT_POOL_DELETE:
                case ACT_VOL_DELETE:
                        free(o->message);
                        o->message = strdup("deleted");
                        o->exists = false;
                        forget(e, o);
                        return;
                default:
                        break;
                }
                if (needs_record)
                        save_applied(e, o);
        }
        if (o->kind == DV_KIND_POOL) {
                /* Its volumes may proceed now. */
                void *v;
                for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                        struct obj *c = v;
                        if (c->kind == DV_KIND_VOLUME && streq_ptr(c->pool, o->name))
                                c->dirty = true;
                }
        }
}

int engine_reap(struct engine *e) {
        int n = 0;
        for (struct exec_job *j = exec_reap(e->exec), *next; j; j = next) {
                next = j->next;
                engine_handle_done(e, j);
                exec_job_free(j);
                n++;
        }
        return n;
}
