/* Observe: ask the drivers what is on the host, for the objects that are dirty
 * (everything on a full pass). Volumes are observed through their pool's listing;
 * a file in a managed pool that no desired file declares becomes an unmanaged
 * volume object, reported and never touched. */
#include <stdlib.h>
#include <string.h>

#include "model/pool.h"
#include "reconcile/engine-internal.h"
#include "util/log.h"
#include "util/strv.h"

static void observe_pool(struct engine *e, struct rec_object *p) {
        const struct dv_object *def = rec_def(p);
        if (!def)
                return;
        const struct pool_def *pd = def->def.pool;
        const struct storage_driver *drv = storage_driver_get(pd->type);
        struct pool_status st = { 0 };
        struct dv_error err = DV_ERROR_INIT;
        if (!drv || !drv->pool_observe) {
                st.state = POOL_STATE_BROKEN;
                if (asprintf(&st.reason, "pool type '%s' has no driver on this host", pool_type_to_string(pd->type)) < 0)
                        st.reason = NULL;
        } else if (drv->pool_observe(pd, &st, &err) < 0) {
                st.state = POOL_STATE_BROKEN;
                free(st.reason);
                st.reason = dv_error_summary(&err);
        }
        dv_error_clear(&err);
        pool_status_done(&p->pool_st);
        p->pool_st = st;
        p->observed = true;

        /* Volumes: listed only from a pool that is there and active. */
        struct vol_status *vols = NULL;
        size_t n = 0;
        bool listed = false;
        if (st.state == POOL_STATE_ACTIVE && drv->vol_list) {
                if (drv->vol_list(pd, &vols, &n, &err) >= 0)
                        listed = true;
                else
                        log_debug("listing volumes of pool %s failed: %s", p->name, strna(dv_error_message(&err)));
                dv_error_clear(&err);
        }
        if (!listed)
                return; /* keep what we knew of the volumes: nothing to conclude */

        void *v;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct rec_object *o = v;
                if (o->kind == DV_KIND_VOLUME && streq_ptr(o->pool, p->name) && !o->busy)
                        o->claims = -1; /* scratch: not seen in the listing */
        }
        for (size_t k = 0; k < n; k++) {
                struct rec_object *o = engine_get_or_add(e, DV_KIND_VOLUME, p->name, vols[k].name);
                if (!o)
                        continue;
                if (o->busy) /* its action reports back itself */
                        continue;
                o->claims = 0;
                bool changed = !o->exists || o->vol_st.capacity != vols[k].capacity ||
                               o->vol_st.allocation != vols[k].allocation ||
                               !streq_ptr(o->vol_st.format, vols[k].format);
                vol_status_done(&o->vol_st);
                o->vol_st = vols[k];
                memset(&vols[k], 0, sizeof(vols[k]));
                o->exists = true;
                o->observed = true;
                if (changed)
                        o->dirty = true;
        }
        vol_status_array_free(vols, n);
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct rec_object *o = v;
                if (o->kind != DV_KIND_VOLUME || !streq_ptr(o->pool, p->name) || o->claims != -1)
                        continue;
                o->claims = 0;
                if (!o->managed && !o->desired && !o->applied) {
                        engine_remove_object(e, o); /* an unmanaged file that went away */
                        continue;
                }
                if (o->exists)
                        o->dirty = true;
                o->exists = false;
                o->observed = true;
                vol_status_done(&o->vol_st);
        }
}

void engine_observe(struct engine *e, bool full) {
        _cleanup_strv_free_ char **pools = NULL;
        void *v;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                struct rec_object *o = v;
                if (!full && !o->dirty)
                        continue;
                const char *pool = o->kind == DV_KIND_POOL ? o->name : o->kind == DV_KIND_VOLUME ? o->pool : NULL;
                if (pool && !strv_contains(pools, pool))
                        strv_push(&pools, pool);
        }
        for (size_t i = 0; pools && pools[i]; i++) {
                _cleanup_free_ char *id = dv_object_id_make(DV_KIND_POOL, NULL, pools[i]);
                struct rec_object *p = id ? engine_lookup(e, id) : NULL;
                if (p && rec_def(p) && !p->busy) {
                        p->dirty = true;
                        observe_pool(e, p);
                }
        }
}
