/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The planner: a pure function of an object, its context (its pool, the boot),
 * its last-applied record and what was observed, giving the phase the object is
 * in, why, and the one action that moves it forward. It changes nothing;
 * `declvirt plan` prints exactly what it decides. */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/domain.h"
#include "model/network.h"
#include "model/pool.h"
#include "model/volume.h"
#include "reconcile/engine-internal.h"
#include "util/parse.h"
#include "util/strv.h"

const struct dv_object *obj_def(const struct obj *o) {
        const struct dv_object *d = o->desired ? o->desired : o->applied ? o->applied->obj : NULL;
        /* An object is keyed by kind: its definitions are always of that kind. */
        assert(!d || d->kind == o->kind);
        return d;
}

static const char *pool_immutable_change(const struct pool_def *a, const struct pool_def *b,
                                         char buf[static 512]);

/* The applied definition became real (the agent built or started the pool): a change
 * to its type, source or target cannot be made in place. */
static bool pool_realized(const struct obj *o) {
        return o->applied && o->applied->obj && (o->applied->created || o->applied->active);
}

const struct dv_object *obj_live_def(const struct obj *o) {
        char buf[512];
        if (o->kind == DV_KIND_POOL && o->desired && pool_realized(o) &&
            pool_immutable_change(o->applied->obj->def.pool, o->desired->def.pool, buf))
                return o->applied->obj;
        return obj_def(o);
}

/* docs/design.md#policy-semantics: autostart='no' keeps an object down after a boot until its file
 * is written again; what the agent brought up during this boot stays up. */
bool obj_want_up(const struct engine *e, const struct obj *o) {
        const struct dv_object *d = obj_def(o);
        if (!d || dv_policy_state(&d->policy) != DV_WANT_UP)
                return false;
        if (dv_policy_autostart(&d->policy))
                return true;
        if (o->file && (uint64_t)o->file_mtime.tv_sec >= e->btime_sec)
                return true;
        return o->applied && o->applied->active && streq_ptr(o->applied->boot_id, e->boot_id);
}

struct network_def network_effective(const struct network_def *def, const struct applied *a) {
        struct network_def n = *def;
        if (!n.uuid && a)
                n.uuid = a->uuid;
        if (!n.mac && a)
                n.mac = a->mac;
        return n;
}

/* A stateless pool is "started" by bookkeeping: the flag counts only in the boot
 * that set it, so after a reboot it is started again like everything else. */
static bool stateless_started(const struct engine *e, const struct obj *pool) {
        return pool->applied && pool->applied->active &&
               streq_ptr(pool->applied->boot_id, e->boot_id);
}

bool obj_pool_effectively_active(const struct engine *e, const struct obj *pool) {
        const struct dv_object *d = obj_def(pool);
        if (!d || !pool->observed || pool->pool_st.state != POOL_STATE_ACTIVE)
                return false;
        if (pool_type_info(d->def.pool->type)->stateless)
                return stateless_started(e, pool);
        return true;
}

static void step_set(struct plan_step *s, enum obj_phase phase, enum obj_action action,
                     const char *fmt, ...) _printf_(4, 5);
static void step_set(struct plan_step *s, enum obj_phase phase, enum obj_action action,
                     const char *fmt, ...) {
        s->phase = phase;
        s->action = action;
        free(s->message);
        s->message = NULL;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(&s->message, fmt, ap) < 0)
                        s->message = NULL;
                va_end(ap);
        }
}

static bool perms_match(const struct dv_perms *want, const struct pool_status *st) {
        if (!st->has_perms)
                return true;
        if (want->has_mode && (want->mode & 07777) != (st->mode & 07777))
                return false;
        if (want->has_owner && want->owner != st->owner)
                return false;
        if (want->has_group && want->group != st->group)
                return false;
        return true;
}

/* Type, source and target path of a pool cannot change in place. */
static const char *pool_immutable_change(const struct pool_def *a, const struct pool_def *b,
                                         char buf[static 512]) {
        if (a->type != b->type) {
                snprintf(buf, 256, "the pool type is immutable (applied '%s', file says '%s')",
                         pool_type_to_string(a->type), pool_type_to_string(b->type));
                return buf;
        }
        if (!streq_ptr(a->target.path, b->target.path)) {
                snprintf(buf, 256, "the target path is immutable (applied %s, file says %s)",
                         strna(a->target.path), strna(b->target.path));
                return buf;
        }
        bool same = a->source.n_devices == b->source.n_devices &&
                    streq_ptr(a->source.dir, b->source.dir) &&
                    streq_ptr(a->source.host_name, b->source.host_name) &&
                    streq_ptr(a->source.name, b->source.name) &&
                    streq_ptr(a->source.format, b->source.format) &&
                    a->source.port == b->source.port;
        for (size_t i = 0; same && i < a->source.n_devices; i++)
                same = streq_ptr(a->source.devices[i].path, b->source.devices[i].path);
        if (!same) {
                snprintf(buf, 256, "the pool source is immutable");
                return buf;
        }
        return NULL;
}

/* For people: "930ms", not "929099us". */
static uint64_t round_up_ms(uint64_t usec) {
        return (usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC * USEC_PER_MSEC;
}

static const char *pending_removal(const struct engine *e, const struct obj *o, uint64_t now,
                                   char buf[static 256]) {
        if (!o->absent_since || o->file)
                return NULL;
        uint64_t left = o->absent_since + e->cfg.removal_delay_usec > now
                                ? o->absent_since + e->cfg.removal_delay_usec - now
                                : 0;
        char d[32];
        snprintf(buf, 256, "file removed; on-remove applies in %s",
                 format_duration(d, round_up_ms(left)));
        return left > 0 ? buf : NULL;
}

/* The file is gone but removal_delay has not passed: the step says so and nothing
 * happens yet. Returns true when that is the case. */
static bool removal_waits(const struct engine *e, const struct obj *o, uint64_t now,
                          struct plan_step *s) {
        char buf[256];
        const char *wait = pending_removal(e, o, now, buf);
        if (!wait)
                return false;
        step_set(s, o->phase, ACT_NONE, "%s", wait);
        return true;
}

static void plan_pool_removal(const struct engine *e, const struct obj *o, struct plan_step *s) {
        const struct dv_object *d = obj_def(o);
        enum dv_on_remove how = dv_policy_on_remove(&d->policy, DV_KIND_POOL);
        if (how == DV_ON_REMOVE_KEEP) {
                step_set(s, PHASE_REMOVING, ACT_FORGET,
                         "file removed; on-remove='keep': left as it is");
                return;
        }
        /* Deleting: the volumes the agent still manages in this pool go first (their
         * own on-remove decides what happens to them). */
        unsigned n = 0;
        void *v;
        for (size_t i = 0; how == DV_ON_REMOVE_DELETE && hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *c = v;
                if (c->kind == DV_KIND_VOLUME && streq_ptr(c->pool, o->name) && c->managed)
                        n++;
        }
        if (n > 0) {
                step_set(s, PHASE_REMOVING, ACT_NONE,
                         "file removed; waiting for %u managed volume%s of the pool", n,
                         n == 1 ? "" : "s");
                return;
        }
        bool active = obj_pool_effectively_active(e, o) ||
                      (o->observed && o->pool_st.state == POOL_STATE_ACTIVE &&
                       !pool_type_info(d->def.pool->type)->stateless);
        if (how == DV_ON_REMOVE_DELETE && o->applied && o->applied->created && o->observed &&
            o->pool_st.state != POOL_STATE_ABSENT) {
                if (active && !pool_type_info(d->def.pool->type)->stateless)
                        step_set(s, PHASE_REMOVING, ACT_POOL_STOP,
                                 "file removed; stopping before delete");
                else
                        step_set(s, PHASE_REMOVING, ACT_POOL_DELETE,
                                 "file removed; on-remove='delete'");
                return;
        }
        if (active)
                step_set(s, PHASE_REMOVING, ACT_POOL_STOP, "file removed; on-remove='%s'",
                         dv_on_remove_to_string(how));
        else if (how == DV_ON_REMOVE_DELETE && o->applied && !o->applied->created)
                step_set(s, PHASE_REMOVING, ACT_FORGET,
                         "file removed; not deleted: the agent did not create this pool");
        else
                step_set(s, PHASE_REMOVING, ACT_FORGET, "file removed; stopped");
}

/* What a build makes, for messages: the target directory, else the volume group or
 * the device. */
static const char *pool_what(const struct pool_def *pd) {
        if (pool_type_info(pd->type)->target == POOL_TARGET_VG)
                return pool_def_vg_name(pd);
        if (pd->target.path)
                return pd->target.path;
        if (pd->source.n_devices > 0)
                return pd->source.devices[0].path;
        return pd->name;
}

static void plan_pool(const struct engine *e, const struct obj *o, uint64_t now,
                      struct plan_step *s) {
        const struct dv_object *d = obj_def(o);
        const struct pool_def *pd = d->def.pool;
        char buf[512];

        if (!o->file && o->absent_since) {
                if (removal_waits(e, o, now, s))
                        return;
                if (!o->observed) {
                        /* Never forget (and so never lose "created") what was not looked at. */
                        step_set(s, PHASE_REMOVING, ACT_NONE, "file removed; not observed yet");
                        return;
                }
                plan_pool_removal(e, o, s);
                return;
        }
        if (o->desired && pool_realized(o)) {
                const char *why = pool_immutable_change(o->applied->obj->def.pool, pd, buf);
                if (why) {
                        step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", why);
                        return;
                }
        }
        if (!o->observed) {
                step_set(s, PHASE_PENDING, ACT_NONE, "not observed yet");
                return;
        }
        const struct pool_status *st = &o->pool_st;
        bool want_up = obj_want_up(e, o);
        bool stateless = pool_type_info(pd->type)->stateless;
        switch (st->state) {
        case POOL_STATE_BROKEN:
                step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", strna(st->reason));
                return;
        case POOL_STATE_ABSENT:
                step_set(s, PHASE_CREATING, ACT_POOL_BUILD, "building %s", pool_what(pd));
                return;
        case POOL_STATE_INACTIVE:
                if (want_up)
                        step_set(s, PHASE_CREATING, ACT_POOL_START, "starting");
                else
                        step_set(s, PHASE_STOPPED, ACT_NONE,
                                 dv_policy_state(&d->policy) == DV_WANT_UP
                                         ? "autostart='no': left down after boot"
                                         : NULL);
                return;
        case POOL_STATE_ACTIVE:
                break;
        }
        bool active = stateless ? stateless_started(e, o) : true;
        if (!want_up) {
                if (active)
                        step_set(s, PHASE_STOPPING, ACT_POOL_STOP, "stopping: state='inactive'");
                else
                        step_set(s, PHASE_STOPPED, ACT_NONE,
                                 dv_policy_state(&d->policy) == DV_WANT_UP
                                         ? "autostart='no': left down after boot"
                                         : NULL);
                return;
        }
        if (!active) {
                step_set(s, PHASE_CREATING, ACT_POOL_START, "starting");
                return;
        }
        if (o->desired && !perms_match(&pd->target.perms, st)) {
                step_set(s, PHASE_CREATING, ACT_POOL_PERMS, "applying permissions to %s",
                         strna(pd->target.path));
                return;
        }
        step_set(s, PHASE_READY, ACT_NONE, NULL);
}

static void plan_volume_removal(const struct engine *e, const struct obj *o, const struct obj *pool,
                                struct plan_step *s) {
        const struct dv_object *d = obj_def(o);
        enum dv_on_remove how = dv_policy_on_remove(&d->policy, DV_KIND_VOLUME);
        if (how != DV_ON_REMOVE_DELETE) {
                step_set(s, PHASE_REMOVING, ACT_FORGET,
                         "file removed; on-remove='keep': the volume is kept");
                return;
        }
        if (!o->applied || !o->applied->created) {
                step_set(s, PHASE_REMOVING, ACT_FORGET,
                         "file removed; not deleted: the agent did not create it");
                return;
        }
        if (o->observed && !o->exists) {
                step_set(s, PHASE_REMOVING, ACT_FORGET, "file removed; the volume is already gone");
                return;
        }
        if (!pool || !obj_pool_effectively_active(e, pool)) {
                step_set(s, PHASE_REMOVING, ACT_NONE,
                         "file removed; waiting for pool/%s to be active to delete",
                         strna(o->pool));
                return;
        }
        step_set(s, PHASE_REMOVING, ACT_VOL_DELETE, "file removed; on-remove='delete'");
}

static void plan_volume(const struct engine *e, const struct obj *o, uint64_t now,
                        struct plan_step *s) {
        _cleanup_free_ char *pid = dv_object_id_make(DV_KIND_POOL, NULL, o->pool);
        const struct obj *pool = pid ? engine_lookup(e, pid) : NULL;
        const struct dv_object *d = obj_def(o);

        if (!d) {
                /* Unmanaged: a file the agent found in a managed pool; or a volume whose
                 * files went before it was ever applied, with nothing on the host. */
                if (o->exists)
                        step_set(s, PHASE_READY, ACT_NONE, NULL);
                else
                        step_set(s, PHASE_REMOVING, ACT_FORGET, "no longer defined");
                return;
        }
        if (!o->file && o->absent_since) {
                if (removal_waits(e, o, now, s))
                        return;
                plan_volume_removal(e, o, pool, s);
                return;
        }
        if (!pool || !obj_def(pool) || !pool->managed) {
                step_set(s, PHASE_WAITING, ACT_NONE, "waiting for pool/%s: no such pool",
                         strna(o->pool));
                return;
        }
        if (pool->busy || pool->phase != PHASE_READY || !obj_pool_effectively_active(e, pool)) {
                step_set(s, PHASE_WAITING, ACT_NONE, "waiting for pool/%s (%s)", o->pool,
                         obj_phase_to_string(pool->phase));
                return;
        }
        const struct volume_def *vd = d->def.volume;
        if (!o->observed) {
                step_set(s, PHASE_PENDING, ACT_NONE, "not observed yet");
                return;
        }
        if (!o->exists) {
                step_set(s, PHASE_CREATING, ACT_VOL_CREATE,
                         "creating %s volume of %" PRIu64 " bytes", volume_def_format_type(vd),
                         vd->capacity);
                return;
        }
        const struct vol_status *st = &o->vol_st;
        if (vd->target.format && st->format && !streq(vd->target.format, st->format)) {
                step_set(s, PHASE_BLOCKED, ACT_NONE, "changing the format from %s to %s is refused",
                         st->format, vd->target.format);
                return;
        }
        if (vd->has_backing && vd->backing.path && !streq_ptr(vd->backing.path, st->backing_path)) {
                step_set(s, PHASE_BLOCKED, ACT_NONE,
                         "changing the backing store to %s is refused (it is %s)", vd->backing.path,
                         strna(st->backing_path));
                return;
        }
        if (vd->has_capacity && vd->capacity < st->capacity) {
                step_set(s, PHASE_BLOCKED, ACT_NONE,
                         "shrinking from %" PRIu64 " to %" PRIu64
                         " bytes is refused: it would lose data",
                         st->capacity, vd->capacity);
                return;
        }
        if (vd->has_capacity && vd->capacity > st->capacity) {
                step_set(s, PHASE_CREATING, ACT_VOL_RESIZE,
                         "growing from %" PRIu64 " to %" PRIu64 " bytes", st->capacity,
                         vd->capacity);
                s->arg = vd->capacity;
                return;
        }
        step_set(s, PHASE_READY, ACT_NONE, NULL);
}

/* ---- networks ------------------------------------------------------------------------ */

/* Another network (with a file) whose subnet overlaps one of o's: both are refused. */
static const struct obj *network_overlap(const struct engine *e, const struct obj *o,
                                         char buf[static 512]) {
        const struct network_def *nd = o->desired ? o->desired->def.network : NULL;
        void *v;
        if (!nd || nd->forward.mode == NETWORK_FORWARD_BRIDGE)
                return NULL;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *x = v;
                if (x == o || x->kind != DV_KIND_NETWORK || !x->desired || !x->file)
                        continue;
                const struct network_def *xd = x->desired->def.network;
                if (xd->forward.mode == NETWORK_FORWARD_BRIDGE)
                        continue;
                for (size_t a = 0; a < nd->n_ips; a++)
                        for (size_t b = 0; b < xd->n_ips; b++) {
                                const struct network_ip *ia = &nd->ips[a], *ib = &xd->ips[b];
                                int pa = network_ip_prefix(ia), pb = network_ip_prefix(ib);
                                if (pa < 0 || pb < 0 || ia->address.family != ib->address.family)
                                        continue;
                                if (!network_addr_in_subnet(&ia->address, &ib->address,
                                                            (unsigned)MIN(pa, pb)))
                                        continue;
                                char sa[NETWORK_ADDR_STRLEN], sb[NETWORK_ADDR_STRLEN];
                                snprintf(buf, 256, "subnet %s/%d overlaps %s/%d of network/%s (%s)",
                                         network_addr_format(&ia->address, sa), pa,
                                         network_addr_format(&ib->address, sb), pb, x->name,
                                         strna(x->file));
                                return x;
                        }
        }
        return NULL;
}

/* The bridge is the agent's: it created it (the record says so before it acts). */
static bool network_ours(const struct obj *o) {
        return o->applied && o->applied->created;
}

static void plan_network_removal(const struct obj *o, struct plan_step *s) {
        const struct dv_object *d = obj_def(o);
        enum dv_on_remove how = dv_policy_on_remove(&d->policy, DV_KIND_NETWORK);
        if (how == DV_ON_REMOVE_KEEP) {
                step_set(s, PHASE_REMOVING, ACT_FORGET,
                         "file removed; on-remove='keep': left as it is");
                return;
        }
        if (!o->observed) {
                step_set(s, PHASE_REMOVING, ACT_NONE, "file removed; not observed yet");
                return;
        }
        bool bridge_mode = d->def.network->forward.mode == NETWORK_FORWARD_BRIDGE;
        if (!bridge_mode && network_ours(o) && o->net_st.state == NET_ACTIVE) {
                step_set(s, PHASE_REMOVING, ACT_NET_STOP, "file removed; stopping");
                return;
        }
        step_set(s, PHASE_REMOVING, ACT_FORGET, "file removed; stopped");
}

static void plan_network(const struct engine *e, const struct obj *o, uint64_t now,
                         struct plan_step *s) {
        const struct dv_object *d = obj_def(o);
        const struct network_def *nd = d->def.network;
        char buf[512];

        if (!o->file && o->absent_since) {
                if (removal_waits(e, o, now, s))
                        return;
                plan_network_removal(o, s);
                return;
        }
        if (network_overlap(e, o, buf)) {
                step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", buf);
                return;
        }
        if (!o->observed) {
                step_set(s, PHASE_PENDING, ACT_NONE, "not observed yet");
                return;
        }
        const struct net_status *st = &o->net_st;
        _cleanup_free_ char *bridge = network_bridge_name(nd);
        if (st->state == NET_BROKEN) {
                step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", strna(st->reason));
                return;
        }
        if (nd->forward.mode == NETWORK_FORWARD_BRIDGE) {
                /* A host bridge: observed, never created, changed or deleted. */
                if (st->state == NET_ACTIVE)
                        step_set(s, PHASE_READY, ACT_NONE, NULL);
                else
                        step_set(s, PHASE_BLOCKED, ACT_NONE, "host bridge %s does not exist",
                                 strna(bridge));
                return;
        }
        bool want_up = obj_want_up(e, o);
        if (st->state == NET_ABSENT) {
                if (want_up)
                        step_set(s, PHASE_CREATING, ACT_NET_APPLY, "creating bridge %s",
                                 strna(bridge));
                else
                        step_set(s, PHASE_STOPPED, ACT_NONE,
                                 dv_policy_state(&d->policy) == DV_WANT_UP
                                         ? "autostart='no': left down after boot"
                                         : NULL);
                return;
        }
        if (!network_ours(o)) {
                step_set(s, PHASE_BLOCKED, ACT_NONE,
                         "interface %s exists and was not created by declvirt; not touching it",
                         strna(bridge));
                return;
        }
        if (!want_up) {
                step_set(s, PHASE_STOPPING, ACT_NET_STOP, "stopping: state='inactive'");
                return;
        }
        if (st->drift) {
                step_set(s, PHASE_CREATING, ACT_NET_APPLY, "updating: %s", st->drift);
                return;
        }
        if (o->desired && (!o->applied || !streq_ptr(o->applied->hash, o->desired->hash))) {
                step_set(s, PHASE_CREATING, ACT_NET_APPLY, "applying the changed definition");
                return;
        }
        step_set(s, PHASE_READY, ACT_NONE, NULL);
}

/* ---- domains -------------------------------------------------------------------------- */

static bool dom_is_running(const struct obj *o) {
        return o->observed && (o->dom_st.state == DOM_RUNNING || o->dom_st.state == DOM_PAUSED);
}

static const struct obj *lookup_kind(const struct engine *e, enum dv_kind kind, const char *pool,
                                     const char *name) {
        _cleanup_free_ char *id = dv_object_id_make(kind, pool, name);
        return id ? engine_lookup(e, id) : NULL;
}

/* A running domain that uses pool or network o (not stopped under it:
 * docs/design.md#dependencies). */
const struct obj *obj_held_by_domain(const struct engine *e, const struct obj *o) {
        void *v;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *x = v;
                const struct dv_object *xd = x->kind == DV_KIND_DOMAIN ? obj_def(x) : NULL;
                if (!xd || !dom_is_running(x))
                        continue;
                const struct domain_def *dd = xd->def.domain;
                if (o->kind == DV_KIND_NETWORK)
                        for (size_t k = 0; k < dd->n_interfaces; k++)
                                if (streq_ptr(dd->interfaces[k].source_network, o->name))
                                        return x;
                if (o->kind == DV_KIND_POOL)
                        for (size_t k = 0; k < dd->n_disks; k++)
                                if (streq_ptr(dd->disks[k].source.pool, o->name))
                                        return x;
        }
        return NULL;
}

/* What a stopped domain still waits for: "volume/P/V" or "network/N" not ready. */
static bool domain_waits(const struct engine *e, const struct domain_def *dd, struct plan_step *s) {
        for (size_t k = 0; k < dd->n_disks; k++) {
                const struct domain_disk *dk = &dd->disks[k];
                if (!dk->source.pool || !dk->source.volume)
                        continue;
                const struct obj *v =
                        lookup_kind(e, DV_KIND_VOLUME, dk->source.pool, dk->source.volume);
                if (!v || v->phase != PHASE_READY) {
                        step_set(s, PHASE_WAITING, ACT_NONE, "waiting for volume/%s/%s (%s)",
                                 dk->source.pool, dk->source.volume,
                                 v ? obj_phase_to_string(v->phase) : "no such volume");
                        return true;
                }
        }
        for (size_t k = 0; k < dd->n_interfaces; k++) {
                const char *net = dd->interfaces[k].source_network;
                if (!net)
                        continue;
                const struct obj *n = lookup_kind(e, DV_KIND_NETWORK, NULL, net);
                if (!n || n->phase != PHASE_READY) {
                        step_set(s, PHASE_WAITING, ACT_NONE, "waiting for network/%s (%s)", net,
                                 n ? obj_phase_to_string(n->phase) : "no such network");
                        return true;
                }
        }
        return false;
}

/* The MAC interface k runs with: the written one, else the one generated for that
 * position when the domain was applied (actions.c keeps it), else none yet. */
static const char *domain_mac(const struct obj *o, const struct domain_def *dd, size_t k) {
        assert(k < dd->n_interfaces);
        if (dd->interfaces[k].mac)
                return dd->interfaces[k].mac;
        char *const *gen = o->applied ? o->applied->macs : NULL;
        if (gen && k < strv_length(gen) && *gen[k])
                return gen[k];
        return NULL;
}

/* Another domain (with a file) with a MAC equal to one of o's, written in either file or
 * generated for the other: two guests with one MAC on a network break each other's
 * traffic, so both are refused, each naming the other. */
static const struct obj *domain_mac_conflict(const struct engine *e, const struct obj *o,
                                             char buf[static 512]) {
        const struct domain_def *dd = o->desired ? o->desired->def.domain : NULL;
        void *v;
        if (!dd || dd->n_interfaces == 0)
                return NULL;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *x = v;
                if (x == o || x->kind != DV_KIND_DOMAIN || !x->desired || !x->file)
                        continue;
                const struct domain_def *xd = x->desired->def.domain;
                for (size_t a = 0; a < dd->n_interfaces; a++) {
                        const char *ma = domain_mac(o, dd, a);
                        for (size_t b = 0; ma && b < xd->n_interfaces; b++) {
                                const char *mb = domain_mac(x, xd, b);
                                if (!mb || strcasecmp(ma, mb) != 0)
                                        continue;
                                snprintf(buf, 512,
                                         "MAC %s (interface %zu) is also used by interface "
                                         "%zu of domain/%s (%s)",
                                         ma, a + 1, b + 1, x->name, strna(x->file));
                                return x;
                        }
                }
        }
        return NULL;
}

/* Whether the i-th storage source of domain dd (its disks, then its filesystems) is used
 * read-write, written as "KIND PATH" into buf for messages: disks of type file, block and
 * volume, and container filesystems of type block and file. Read-only and shareable ones,
 * cdroms and other filesystem types are not. */
static bool rw_source(const struct domain_def *dd, size_t i, char buf[static 256]) {
        if (i < dd->n_disks) {
                const struct domain_disk *k = &dd->disks[i];
                if (k->readonly || k->shareable || !k->has_source ||
                    domain_disk_device(k) != DOMAIN_DISK_DISK)
                        return false;
                switch (domain_disk_type(k)) {
                case DOMAIN_DISK_FILE:
                        return k->source.file && snprintf(buf, 256, "file %s", k->source.file) > 0;
                case DOMAIN_DISK_BLOCK:
                        return k->source.dev &&
                               snprintf(buf, 256, "block device %s", k->source.dev) > 0;
                case DOMAIN_DISK_VOLUME:
                        return k->source.pool && k->source.volume &&
                               snprintf(buf, 256, "volume/%s/%s", k->source.pool,
                                        k->source.volume) > 0;
                default:
                        return false;
                }
        }
        i -= dd->n_disks;
        if (i < dd->n_filesystems) {
                const struct domain_fs *f = &dd->filesystems[i];
                if (f->readonly || !f->source)
                        return false;
                if (domain_fs_type(f) == DOMAIN_FS_BLOCK)
                        return snprintf(buf, 256, "block device %s", f->source) > 0;
                if (domain_fs_type(f) == DOMAIN_FS_FILE)
                        return snprintf(buf, 256, "file %s", f->source) > 0;
        }
        return false;
}

/* Another domain (with a file) that wants to run, or runs, and uses one of the storage
 * sources o would use read-write, also read-write: two writers corrupt a filesystem or a
 * disk image. The domain that runs keeps it; the one that would start is blocked (both,
 * when neither runs), naming the other. Paths are compared as written. */
static const struct obj *domain_rw_conflict(const struct engine *e, const struct obj *o,
                                            char out[static 512]) {
        const struct domain_def *dd = o->desired ? o->desired->def.domain : NULL;
        void *v;
        if (!dd || dd->n_disks + dd->n_filesystems == 0)
                return NULL;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *x = v;
                if (x == o || x->kind != DV_KIND_DOMAIN || !x->desired || !x->file)
                        continue;
                if (!dom_is_running(x) && !obj_want_up(e, x))
                        continue;
                const struct domain_def *xd = x->desired->def.domain;
                char a[256], b[256];
                for (size_t k = 0; k < dd->n_disks + dd->n_filesystems; k++) {
                        if (!rw_source(dd, k, a))
                                continue;
                        for (size_t m = 0; m < xd->n_disks + xd->n_filesystems; m++)
                                if (rw_source(xd, m, b) && streq(a, b)) {
                                        /* Cut short for a very long path: a message only. */
                                        int n = snprintf(
                                                out, 512,
                                                "%s is also used read-write by domain/%s (%s)", a,
                                                x->name, strna(x->file));
                                        (void)n;
                                        return x;
                                }
                }
        }
        return NULL;
}

static void plan_domain(const struct engine *e, const struct obj *o, uint64_t now,
                        struct plan_step *s) {
        const struct dv_object *d = obj_def(o);
        const struct domain_def *dd = d->def.domain;

        if (!o->file && o->absent_since) {
                if (removal_waits(e, o, now, s))
                        return;
                if (dv_policy_on_remove(&d->policy, DV_KIND_DOMAIN) == DV_ON_REMOVE_KEEP)
                        step_set(s, PHASE_REMOVING, ACT_FORGET,
                                 "file removed; on-remove='keep': left running");
                else if (!o->observed)
                        step_set(s, PHASE_REMOVING, ACT_NONE, "file removed; not observed yet");
                else if (dom_is_running(o))
                        step_set(s, PHASE_REMOVING, ACT_DOM_STOP, "file removed; shutting down");
                else
                        step_set(s, PHASE_REMOVING, ACT_FORGET, "file removed; stopped");
                return;
        }
        char buf[512];
        if (domain_mac_conflict(e, o, buf)) {
                step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", buf);
                return;
        }
        if (!o->observed) {
                step_set(s, PHASE_PENDING, ACT_NONE, "not observed yet");
                return;
        }
        const struct dom_status *st = &o->dom_st;
        if (st->state == DOM_BROKEN) {
                step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", strna(st->reason));
                return;
        }
        bool want_up = obj_want_up(e, o);
        if (dom_is_running(o)) {
                if (!want_up) {
                        step_set(s, PHASE_STOPPING, ACT_DOM_STOP, "shutting down: state='stopped'");
                        return;
                }
                bool changed =
                        o->desired && o->applied && !streq_ptr(o->applied->hash, o->desired->hash);
                if (changed && dv_policy_on_change(&d->policy) == DV_ON_CHANGE_RESTART) {
                        step_set(s, PHASE_STOPPING, ACT_DOM_STOP,
                                 "restarting for the changed definition (on-change='restart')");
                        return;
                }
                if (changed) {
                        step_set(
                                s, PHASE_READY, ACT_NONE,
                                "restart required: the file changed; the new definition is used at the next start");
                        return;
                }
                if (st->unconfined && dd->type == DOMAIN_TYPE_LXC) {
                        /* privileged='yes' asks for exactly that: nothing to say. */
                        step_set(s, PHASE_READY, ACT_NONE,
                                 dv_policy_privileged(&d->policy)
                                         ? NULL
                                         : "running unconfined: its init runs in the host's user "
                                           "namespace (started before containers had their "
                                           "own); confined at its next start");
                } else if (st->unconfined)
                        step_set(s, PHASE_READY, ACT_NONE,
                                 "%srunning unconfined: its QEMU %s (started by an earlier "
                                 "agent); confined at its next start",
                                 st->state == DOM_PAUSED ? "paused; " : "",
                                 st->unconfined_how ? st->unconfined_how : "runs as root");
                else if (st->no_device_control)
                        step_set(s, PHASE_READY, ACT_NONE,
                                 "%sdevice control is not available on this host (cgroup v2 "
                                 "without the devices controller): no device allow-list",
                                 st->state == DOM_PAUSED ? "paused; " : "");
                else
                        step_set(s, PHASE_READY, ACT_NONE,
                                 st->state == DOM_PAUSED ? "paused" : NULL);
                return;
        }
        if (!want_up) {
                step_set(s, PHASE_STOPPED, ACT_NONE,
                         dv_policy_state(&d->policy) == DV_WANT_UP
                                 ? "autostart='no': left down after boot"
                                 : NULL);
                return;
        }
        /* It ran and went without the agent asking: the restart policy decides. */
        if (o->dom_exits > 0) {
                enum dv_restart pol = dv_policy_restart(&d->policy);
                bool clean = st->exit_clean;
                if (pol == DV_RESTART_NEVER || (pol == DV_RESTART_ON_FAILURE && clean)) {
                        step_set(s, PHASE_STOPPED, ACT_NONE, "%s; restart='%s'",
                                 strna(o->last_error), dv_restart_to_string(pol));
                        return;
                }
        }
        if (domain_rw_conflict(e, o, buf)) {
                step_set(s, PHASE_BLOCKED, ACT_NONE, "%s", buf);
                return;
        }
        if (domain_waits(e, dd, s))
                return;
        step_set(s, PHASE_CREATING, ACT_DOM_START, "starting");
}

void plan_object(const struct engine *e, const struct obj *o, uint64_t now, struct plan_step *s) {
        *s = (struct plan_step){.phase = o->phase};
        /* Set by engine_get_or_add() from the object's id: a volume always has its pool. */
        assert((o->kind == DV_KIND_VOLUME) == (o->pool != NULL));
        if (o->busy) {
                enum obj_action a = o->running;
                assert(a > ACT_NONE && a < _ACT_MAX); /* only a submitted job makes it busy */
                enum obj_phase ph = (a == ACT_POOL_STOP || a == ACT_NET_STOP || a == ACT_DOM_STOP)
                                            ? PHASE_STOPPING
                                    : (a == ACT_POOL_DELETE || a == ACT_VOL_DELETE)
                                            ? PHASE_REMOVING
                                            : PHASE_CREATING;
                step_set(s, ph, ACT_NONE, "%s in progress", obj_action_to_string(a));
                return;
        }
        if (o->dup_files && !o->applied) {
                /* Never applied: neither file wins; nothing is done until one is left. */
                _cleanup_free_ char *l = strv_join(o->dup_files, ", ", false);
                step_set(s, PHASE_BLOCKED, ACT_NONE, "defined by several files: %s", strempty(l));
                return;
        }
        if (o->kind != DV_KIND_VOLUME && !obj_def(o)) {
                /* Its files are gone before it was ever applied: nothing to undo. */
                step_set(s, PHASE_REMOVING, ACT_FORGET, "no longer defined");
                return;
        }
        if (!o->managed && o->kind != DV_KIND_VOLUME) {
                step_set(s, PHASE_READY, ACT_NONE, NULL);
                return;
        }
        switch (o->kind) {
        case DV_KIND_POOL:
                plan_pool(e, o, now, s);
                break;
        case DV_KIND_VOLUME:
                plan_volume(e, o, now, s);
                break;
        case DV_KIND_NETWORK:
                plan_network(e, o, now, s);
                break;
        case DV_KIND_DOMAIN:
                plan_domain(e, o, now, s);
                break;
        default:
                step_set(s, PHASE_BLOCKED, ACT_NONE,
                         "%s objects are not supported by this agent yet",
                         dv_kind_to_string(o->kind));
                return;
        }
        /* docs/design.md#dependencies: a pool or network is not stopped under a running domain. */
        if (s->action == ACT_POOL_STOP || s->action == ACT_POOL_DELETE ||
            s->action == ACT_NET_STOP) {
                const struct obj *holder = obj_held_by_domain(e, o);
                if (holder) {
                        free(s->message);
                        if (asprintf(&s->message, "not stopped: in use by running domain/%s",
                                     holder->name) < 0)
                                s->message = NULL;
                        s->action = ACT_NONE;
                }
        }
        /* A failed action is retried with backoff; until then the object shows the error. */
        /* Only the action that failed waits: a removal or a stop planned since goes ahead. */
        if (s->action != ACT_NONE && s->action == o->failed && o->last_error && o->retry_at > now) {
                char d[32];
                char *m = NULL;
                int n = o->error_blocks
                                ? asprintf(&m, "%s", o->last_error)
                                : asprintf(&m, "%s (retry in %s)", o->last_error,
                                           format_duration(d, round_up_ms(o->retry_at - now)));
                free(s->message);
                s->message = n < 0 ? NULL : m;
                s->phase = o->error_blocks ? PHASE_BLOCKED : PHASE_FAILED;
                s->action = ACT_NONE;
        }
        /* Invalid or duplicate files do not stop the object: they are shown with it. */
        if (o->file_error && s->phase == PHASE_READY && !s->message)
                s->message = strdup("running on the last valid definition; its file is invalid");
}
