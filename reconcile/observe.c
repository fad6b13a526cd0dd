/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Observe: ask the drivers what is on the host, for the objects that are dirty
 * (everything on a full pass). Volumes are observed through their pool's listing;
 * a file in a managed pool that no desired file declares becomes an unmanaged
 * volume object, reported and never touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/domain.h"
#include "model/network.h"
#include "model/pool.h"
#include "reconcile/engine-internal.h"
#include "util/log.h"
#include "util/time.h"

/* Volume objects of one pool, gathered once per pass (pools x objects would not scale). */
struct vol_list {
        struct obj **v;
        size_t n;
};

static void vol_list_free(void *p) {
        struct vol_list *l = p;
        if (l)
                free(l->v);
        free(l);
}

static bool pool_status_same(const struct pool_status *a, const struct pool_status *b) {
        return a->state == b->state && streq_ptr(a->reason, b->reason) &&
               a->has_sizes == b->has_sizes && a->capacity == b->capacity &&
               a->allocation == b->allocation && a->available == b->available &&
               a->has_perms == b->has_perms && a->mode == b->mode && a->owner == b->owner &&
               a->group == b->group && a->n_free_extents == b->n_free_extents &&
               (a->n_free_extents == 0 ||
                memcmp(a->free_extents, b->free_extents,
                       a->n_free_extents * sizeof(*a->free_extents)) == 0);
}

static uint64_t absdiff(uint64_t a, uint64_t b) {
        return a > b ? a - b : b - a;
}

/* A pool's file system moves with every write on it (the agent's own state files
 * included): what is reported changes only when the capacity does, or allocation or
 * free space by 1% of the capacity, so a pass over an idle host writes nothing. */
static void settle_sizes(const struct pool_status *old, struct pool_status *st) {
        if (!old->has_sizes || !st->has_sizes || old->capacity != st->capacity)
                return;
        uint64_t step = st->capacity / 100;
        if (absdiff(old->allocation, st->allocation) < step &&
            absdiff(old->available, st->available) < step) {
                st->allocation = old->allocation;
                st->available = old->available;
        }
}

static void observe_pool(struct engine *e, struct obj *p, struct vol_list *known) {
        const struct dv_object *def = obj_live_def(p);
        if (!def)
                return;
        const struct pool_def *pd = def->def.pool;
        const struct storage_driver *drv = storage_driver_get(pd->type);
        struct pool_status st = {0};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        if (!drv || !drv->pool_observe) {
                st.state = POOL_STATE_BROKEN;
                if (asprintf(&st.reason, "pool type '%s' has no driver on this host",
                             pool_type_to_string(pd->type)) < 0)
                        st.reason = NULL;
        } else if (drv->pool_observe(pd, &st, &err) < 0) {
                st.state = POOL_STATE_BROKEN;
                free(st.reason);
                st.reason = dv_error_summary(&err);
        }
        dv_error_clear(&err);
        if (p->observed)
                settle_sizes(&p->pool_st, &st);
        if (!p->observed || !pool_status_same(&p->pool_st, &st))
                p->dirty = true;
        pool_status_done(&p->pool_st);
        p->pool_st = st;
        p->observed = true;

        /* Volumes: listed only from a pool that is there and active. */
        struct vol_status *vols = NULL;
        size_t n = 0;
        if (st.state != POOL_STATE_ACTIVE || !drv->vol_list)
                return; /* keep what we knew of the volumes: nothing to conclude */
        if (drv->vol_list(pd, &vols, &n, &err) < 0) {
                log_debug("listing volumes of pool %s failed: %s", p->name,
                          strna(dv_error_message(&err)));
                return;
        }
        for (size_t i = 0; known && i < known->n; i++)
                if (!known->v[i]->busy)
                        known->v[i]->claims = -1; /* scratch: not seen in the listing */
        for (size_t k = 0; k < n; k++) {
                struct obj *o = engine_get_or_add(e, DV_KIND_VOLUME, p->name, vols[k].name);
                if (!o || o->busy) /* a running action reports back itself */
                        continue;
                o->claims = 0;
                bool changed = !o->exists || o->vol_st.capacity != vols[k].capacity ||
                               o->vol_st.allocation != vols[k].allocation ||
                               !streq_ptr(o->vol_st.format, vols[k].format) ||
                               !streq_ptr(o->vol_st.backing_path, vols[k].backing_path);
                vol_status_done(&o->vol_st);
                o->vol_st = vols[k];
                memset(&vols[k], 0, sizeof(vols[k]));
                o->exists = true;
                o->observed = true;
                if (changed)
                        o->dirty = true;
        }
        vol_status_array_free(vols, n);
        for (size_t i = 0; known && i < known->n; i++) {
                struct obj *o = known->v[i];
                if (o->claims != -1)
                        continue;
                o->claims = 0;
                if (!o->managed && !o->desired && !o->applied) {
                        engine_remove_object(e, o); /* an unmanaged file that went away */
                        continue;
                }
                if (o->exists || !o->observed)
                        o->dirty = true;
                o->exists = false;
                o->observed = true;
                vol_status_done(&o->vol_st);
        }
}

static bool net_status_same(const struct net_status *a, const struct net_status *b) {
        if (a->state != b->state || !streq_ptr(a->reason, b->reason) ||
            !streq_ptr(a->drift, b->drift) || a->ifindex != b->ifindex ||
            !streq_ptr(a->bridge, b->bridge) || strcmp(a->mac, b->mac) != 0 ||
            a->dnsmasq_pid != b->dnsmasq_pid || a->n_leases != b->n_leases)
                return false;
        for (size_t i = 0; i < a->n_leases; i++)
                if (strcmp(a->leases[i].ip, b->leases[i].ip) != 0 ||
                    strcmp(a->leases[i].mac, b->leases[i].mac) != 0 ||
                    a->leases[i].expiry != b->leases[i].expiry)
                        return false;
        return true;
}

static void observe_network(struct obj *o) {
        const struct dv_object *d = obj_def(o);
        if (!d)
                return;
        struct network_def eff = network_effective(d->def.network, o->applied);
        struct net_status st = {0};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        if (network_observe(&eff, &st, &err) < 0) {
                net_status_done(&st);
                st = (struct net_status){.state = NET_BROKEN, .reason = dv_error_summary(&err)};
        }
        if (!o->observed || !net_status_same(&o->net_st, &st))
                o->dirty = true;
        net_status_done(&o->net_st);
        o->net_st = st;
        o->observed = true;
}

static bool dom_running(enum dom_state s) {
        return s == DOM_RUNNING || s == DOM_PAUSED;
}

static void observe_domain(struct obj *o) {
        const struct dv_object *d = obj_def(o);
        if (!d)
                return;
        const struct domain_driver *drv = domain_driver_get(d->def.domain->type);
        struct dom_status st = {0};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int r;
        if (!drv)
                r = dv_error_add(&err, -EOPNOTSUPP, 0,
                                 "domain type '%s' has no driver in this build",
                                 domain_type_to_string(d->def.domain->type));
        else if (!drv->available || (r = drv->available(&err)) >= 0)
                r = drv->observe(d->def.domain, &st, &err);
        if (r < 0) {
                /* No driver, the driver cannot work here (no Xen), or it cannot look: the
                 * domain is blocked with the reason; nothing else is affected. */
                dom_status_done(&st);
                st = (struct dom_status){.state = DOM_BROKEN, .reason = dv_error_summary(&err)};
                if (!st.reason)
                        st.reason = strdup(strerror(-r));
        }
        /* Gone without the agent asking (crash, kill, guest shutdown): the restart policy
         * decides, with backoff 1 s doubling to 5 min counted over such exits. */
        /* st.exited also covers an exit while the agent was not running (a stale pidfile
         * found at the first look): restart='never' holds after an agent restart too. */
        if (st.state == DOM_SHUTOFF && o->applied && o->applied->active &&
            (st.exited || (o->observed && dom_running(o->dom_st.state)))) {
                o->dom_exits++;
                free(o->last_error);
                if (asprintf(&o->last_error, "exited: %s",
                             st.exit_reason ? st.exit_reason : "unknown reason") < 0)
                        o->last_error = NULL;
                o->error_blocks = false;
                o->failed = ACT_DOM_START; /* what the restart policy will plan */
                o->failures = o->dom_exits;
                o->retry_at = now_usec(CLOCK_MONOTONIC) +
                              MIN(USEC_PER_SEC << MIN(o->dom_exits - 1, 20u), 300 * USEC_PER_SEC);
        }
        if (!o->observed || o->dom_st.state != st.state || o->dom_st.pid != st.pid ||
            o->dom_st.id != st.id || !streq_ptr(o->dom_st.reason, st.reason) ||
            !streq_ptr(o->dom_st.qmp_status, st.qmp_status) ||
            o->dom_st.unconfined != st.unconfined ||
            o->dom_st.no_device_control != st.no_device_control)
                o->dirty = true;
        dom_status_done(&o->dom_st);
        o->dom_st = st;
        o->observed = true;
}

void engine_observe(struct engine *e, bool full) {
        struct hashmap *pools = hashmap_new(); /* pool name -> struct vol_list */
        void *v;
        if (!pools)
                return;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct obj *o = v;
                const char *pool = o->kind == DV_KIND_POOL     ? o->name
                                   : o->kind == DV_KIND_VOLUME ? o->pool
                                                               : NULL;
                if (!pool)
                        continue;
                struct vol_list *l = hashmap_get(pools, pool);
                if (!l) {
                        l = calloc(1, sizeof(*l));
                        if (!l || hashmap_put(pools, pool, l, NULL) < 0) {
                                free(l);
                                continue;
                        }
                }
                if (o->kind == DV_KIND_VOLUME) {
                        struct obj **n = realloc(l->v, (l->n + 1) * sizeof(*n));
                        if (n) {
                                l->v = n;
                                l->v[l->n++] = o;
                        }
                }
        }
        const char *name;
        for (size_t i = 0; hashmap_iter(pools, &i, &name, &v);) {
                struct vol_list *l = v;
                _cleanup_free_ char *id = dv_object_id_make(DV_KIND_POOL, NULL, name);
                struct obj *p = id ? engine_lookup(e, id) : NULL;
                if (!p || !obj_def(p) || p->busy)
                        continue;
                bool dirty = full || p->dirty || !p->observed;
                for (size_t k = 0; !dirty && k < l->n; k++)
                        dirty = l->v[k]->dirty;
                if (dirty)
                        observe_pool(e, p, l);
        }
        hashmap_free(pools, vol_list_free);

        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct obj *o = v;
                if (o->kind == DV_KIND_NETWORK && !o->busy && (full || o->dirty || !o->observed))
                        observe_network(o);
                /* Every pass: a domain's process can go at any moment, and the driver
                 * answers from what it caches (pidfile, /proc, QMP at most once a second). */
                if (o->kind == DV_KIND_DOMAIN && !o->busy)
                        observe_domain(o);
        }
}
