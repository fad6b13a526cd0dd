/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Report: status.xml, the observed pool and volume XML, metrics.prom. Written
 * through the state store, which skips files whose content did not change, so a
 * pass that changes nothing writes nothing; liveness is shown by moving the mtime
 * of status.xml (metadata only). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/domain.h"
#include "model/network.h"
#include "model/pool.h"
#include "model/volume.h"
#include "reconcile/engine-internal.h"
#include "state/state.h"
#include "state/status.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/strv.h"

char *obj_observed_relpath(const struct obj *o) {
        char *s = NULL;
        int n = -1;
        if (o->kind == DV_KIND_POOL)
                n = asprintf(&s, "pools/%s.xml", o->name);
        else if (o->kind == DV_KIND_VOLUME)
                n = asprintf(&s, "volumes/%s/%s.xml", o->pool, o->name);
        else if (o->kind == DV_KIND_NETWORK)
                n = asprintf(&s, "networks/%s.xml", o->name);
        else if (o->kind == DV_KIND_DOMAIN)
                n = asprintf(&s, "domains/%s.xml", o->name);
        return n < 0 ? NULL : s;
}

/* What `virsh pool-dumpxml` would print: the definition in force with the live
 * UUID, sizes and permissions. */
static char *format_observed_pool(const struct obj *o) {
        const struct dv_object *d = obj_live_def(o);
        if (!d || !o->observed || o->pool_st.state == POOL_STATE_ABSENT)
                return NULL;
        struct pool_def p = *d->def.pool; /* shallow: only formatted, never freed */
        if (o->applied && o->applied->uuid)
                p.uuid = o->applied->uuid;
        p.has_capacity = p.has_allocation = p.has_available = o->pool_st.has_sizes;
        p.capacity = o->pool_st.capacity;
        p.allocation = o->pool_st.allocation;
        p.available = o->pool_st.available;
        if (o->pool_st.has_perms) {
                p.target.perms = (struct dv_perms){
                        .has_mode = true,
                        .has_owner = true,
                        .has_group = true,
                        .mode = o->pool_st.mode & 07777,
                        .owner = o->pool_st.owner,
                        .group = o->pool_st.group,
                };
        }
        /* libvirt always writes a target path; types whose file may leave it out get
         * the one libvirt shows for them. */
        _cleanup_free_ char *target = NULL;
        if (!p.target.path) {
                if (pool_def_target_path(&p, &target) < 0)
                        return NULL;
                p.target.path = target;
        }
        /* A disk pool lists the free extents of its device, as pool-dumpxml does. */
        _cleanup_free_ struct pool_device *devs = NULL;
        if (o->pool_st.free_extents && p.source.n_devices > 0) {
                devs = calloc(p.source.n_devices, sizeof(*devs));
                if (devs) {
                        memcpy(devs, p.source.devices, p.source.n_devices * sizeof(*devs));
                        devs[0].free_extents = o->pool_st.free_extents;
                        devs[0].n_free_extents = o->pool_st.n_free_extents;
                        p.source.devices = devs;
                }
        }
        struct buf b = BUF_INIT;
        pool_def_format(&b, &p, NULL);
        return buf_steal(&b);
}

/* What `virsh net-dumpxml` would print: the definition in force with the generated
 * UUID and MAC and the bridge in use; nothing while the network is not up. */
static char *format_observed_network(const struct obj *o) {
        const struct dv_object *d = obj_def(o);
        if (!d || !o->observed || o->net_st.state != NET_ACTIVE)
                return NULL;
        struct network_def n = network_effective(d->def.network, o->applied);
        if (o->net_st.bridge)
                n.bridge.name = o->net_st.bridge;
        if (o->net_st.mac[0])
                n.mac = (char *)o->net_st.mac;
        struct buf b = BUF_INIT;
        network_def_format(&b, &n, NULL);
        return buf_steal(&b);
}

/* What `virsh dumpxml` would print for a running domain: the definition it runs with,
 * its id, the generated UUID and MACs, and never the VNC password (it stays in
 * applied/, 0700). The id is the driver's (QEMU's PID, the container init's host PID, the
 * Xen domid): unique while it runs and the same after an agent restart adopts it, where a
 * counter of the agent's would change. */
static char *format_observed_domain(const struct obj *o) {
        const struct dv_object *d = o->applied && o->applied->obj ? o->applied->obj : obj_def(o);
        if (!d || !o->observed || (o->dom_st.state != DOM_RUNNING && o->dom_st.state != DOM_PAUSED))
                return NULL;
        struct domain_def dd = *d->def.domain; /* shallow: only formatted, never freed */
        const struct domain_driver *drv = domain_driver_get(dd.type);
        dd.id = o->dom_st.id > 0 ? o->dom_st.id : 0;
        if (!dd.uuid && o->applied)
                dd.uuid = o->applied->uuid;
        _cleanup_free_ struct domain_net *nets = NULL;
        _cleanup_free_ char *taps = NULL;
        if (dd.n_interfaces > 0) {
                nets = calloc(dd.n_interfaces, sizeof(*nets));
                if (!nets)
                        return NULL;
                memcpy(nets, dd.interfaces, dd.n_interfaces * sizeof(*nets));
                taps = calloc(dd.n_interfaces, IFNAMSIZ);
                for (size_t k = 0; k < dd.n_interfaces; k++) {
                        if (!nets[k].mac && o->applied && k < strv_length(o->applied->macs))
                                nets[k].mac = o->applied->macs[k];
                        /* The host-side device the driver made for it (tap, veth, vif), as
                         * dumpxml shows <target dev=>. */
                        if (taps && drv && drv->iface_name &&
                            drv->iface_name(d->def.domain, k, taps + k * IFNAMSIZ) >= 0)
                                nets[k].target_dev = taps + k * IFNAMSIZ;
                }
                dd.interfaces = nets;
        }
        _cleanup_free_ struct domain_graphics *gfx = NULL;
        if (dd.n_graphics > 0) {
                gfx = calloc(dd.n_graphics, sizeof(*gfx));
                if (!gfx)
                        return NULL;
                memcpy(gfx, dd.graphics, dd.n_graphics * sizeof(*gfx));
                for (size_t k = 0; k < dd.n_graphics; k++)
                        gfx[k].passwd = NULL;
                dd.graphics = gfx;
        }
        struct buf b = BUF_INIT;
        domain_def_format(&b, &dd, NULL);
        return buf_steal(&b);
}

static char *format_observed_volume(const struct obj *o) {
        if (!o->exists)
                return NULL;
        const struct vol_status *st = &o->vol_st;
        struct volume_def v = {
                .name = o->name,
                .type = st->type,
                .key = st->path,
                .has_capacity = true,
                .capacity = st->capacity,
                .has_allocation = true,
                .allocation = st->allocation,
        };
        v.target.path = st->path;
        v.target.format = st->format;
        if (st->backing_path) {
                v.has_backing = true;
                v.backing.path = st->backing_path;
                v.backing.format = st->backing_format;
        }
        struct buf b = BUF_INIT;
        volume_def_format(&b, &v, NULL);
        return buf_steal(&b);
}

static void add_condition(struct status_object *so, const char *type, bool status,
                          const char *reason, const char *message) {
        struct status_condition *c = realloc(so->conditions, (so->n_conditions + 1) * sizeof(*c));
        if (!c)
                return;
        so->conditions = c;
        c[so->n_conditions++] = (struct status_condition){
                .type = strdup(type),
                .status = status,
                .reason = reason ? strdup(reason) : NULL,
                .message = message ? strdup(message) : NULL,
        };
}

static bool settled(const struct obj *o) {
        if (!o->managed)
                return true;
        return (o->phase == PHASE_READY || o->phase == PHASE_STOPPED) && !o->busy &&
               !o->absent_since;
}

bool engine_converged(const struct engine *e) {
        void *v;
        if (exec_pending(e->exec) > 0)
                return false;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);)
                if (!settled(v))
                        return false;
        return true;
}

bool engine_has_failures(const struct engine *e) {
        void *v;
        if (e->n_invalid_files || dv_error_failed(desired_set_problems(e->desired)))
                return true;
        for (size_t i = 0; hashmap_iter(e->objects, &i, NULL, &v);) {
                const struct obj *o = v;
                if (o->phase == PHASE_FAILED || o->phase == PHASE_BLOCKED || o->file_error ||
                    o->dup_files)
                        return true;
        }
        return false;
}

static void fill_snapshot(const struct engine *e, struct status_snapshot *s, struct obj **objs,
                          size_t n) {
        s->version = strdup(e->cfg.version ? e->cfg.version : "unknown");
        s->boot_id = strdup(e->boot_id);
        s->last_pass_usec = e->last_pass_usec;
        s->last_pass_duration_usec = e->last_pass_duration_usec;
        s->passes = e->passes;
        s->converged = engine_converged(e);
        s->actions_total = e->actions_total;
        s->actions_failed_total = e->actions_failed_total;
        s->errors_total = e->errors_total;
        memcpy(s->duration_buckets, e->duration_buckets, sizeof(s->duration_buckets));
        s->duration_sum_seconds = e->duration_sum;
        s->duration_count = e->duration_count;
        s->objects = calloc(n + 1, sizeof(*s->objects));
        for (size_t i = 0; s->objects && i < n; i++) {
                const struct obj *o = objs[i];
                struct status_object *so = &s->objects[s->n_objects++];
                so->kind = strdup(dv_kind_to_string(o->kind));
                so->name = strdup(o->name);
                so->pool = o->pool ? strdup(o->pool) : NULL;
                so->file = o->file ? strdup(o->file) : NULL;
                so->managed = o->managed;
                so->phase = strdup(obj_phase_to_string(o->phase));
                so->since_usec = o->since_usec;
                so->desired_hash = o->desired_hash[0] ? strdup(o->desired_hash) : NULL;
                so->applied_hash = o->applied && o->applied->hash ? strdup(o->applied->hash) : NULL;
                so->message = o->message ? strdup(o->message) : NULL;
                add_condition(so, "Ready", o->phase == PHASE_READY, NULL, NULL);
                if (o->file_error)
                        add_condition(so, "FileInvalid", true, "InvalidFile", o->file_error);
                if (o->dup_files) {
                        _cleanup_free_ char *l = strv_join(o->dup_files, ", ", false);
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "defined by several files: %s", strempty(l)) >= 0)
                                add_condition(so, "Duplicate", true, "DuplicateDefinition", m);
                }
                if (o->last_error)
                        add_condition(so, "ActionFailed", true, "ActionFailed", o->last_error);
                if (o->kind == DV_KIND_DOMAIN && o->dom_exits >= 3) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "exited %u times without being asked to; last: %s",
                                     o->dom_exits, strna(o->last_error)) >= 0)
                                add_condition(so, "CrashLoop", true, "CrashLoopBackOff", m);
                }
                if (o->kind == DV_KIND_DOMAIN && o->desired && o->applied && o->observed &&
                    (o->dom_st.state == DOM_RUNNING || o->dom_st.state == DOM_PAUSED) &&
                    !streq_ptr(o->applied->hash, o->desired->hash))
                        add_condition(
                                so, "RestartRequired", true, "DefinitionChanged",
                                "the file changed while the domain runs; the new definition is used at its next start");
                const struct dv_object *d = obj_def(o);
                if (o->phase == PHASE_STOPPED && d && dv_policy_state(&d->policy) == DV_WANT_UP)
                        add_condition(
                                so, "HeldDown", true, "AutostartNo",
                                "autostart='no': left down after the host booted until its file is written again");
                if (o->kind == DV_KIND_POOL && o->observed && o->pool_st.has_sizes) {
                        so->has_sizes = true;
                        so->capacity = o->pool_st.capacity;
                        so->allocation = o->pool_st.allocation;
                        so->available = o->pool_st.available;
                } else if (o->kind == DV_KIND_VOLUME && o->exists) {
                        so->has_sizes = true;
                        so->capacity = o->vol_st.capacity;
                        so->allocation = o->vol_st.allocation;
                }
        }
        size_t nf = e->n_invalid_files;
        const struct dv_error *dp = desired_set_problems(e->desired);
        s->files = calloc(nf + dp->n_problems + 1, sizeof(*s->files));
        for (size_t i = 0; s->files && i < nf; i++) {
                struct status_file_error *f = &s->files[s->n_files++];
                f->path = strdup(e->invalid_files[i].path);
                f->line = e->invalid_files[i].line;
                f->error = strdup(e->invalid_files[i].error);
        }
        for (size_t i = 0; s->files && i < dp->n_problems; i++) {
                struct status_file_error *f = &s->files[s->n_files++];
                f->path = strdup(e->cfg.desired_dir);
                f->error = strdup(dp->problems[i].msg);
        }
}

static void touch(const struct engine *e, const char *rel) {
        _cleanup_free_ char *p = path_join(e->cfg.state_dir, rel);
        if (p)
                (void)utimensat(AT_FDCWD, p, NULL, 0);
}

int engine_report(struct engine *e) {
        size_t n = 0;
        _cleanup_free_ struct obj **objs = engine_sorted_objects(e, &n);
        int q = 0;
        if (!objs)
                return -ENOMEM;

        /* Observed XML for what changed (everything on a full pass: cheap when the
         * store sees identical content). */
        for (size_t i = 0; i < n; i++) {
                struct obj *o = objs[i];
                if (!o->dirty)
                        continue;
                _cleanup_free_ char *rel = obj_observed_relpath(o);
                if (!rel)
                        continue;
                _cleanup_free_ char *xml = o->kind == DV_KIND_POOL      ? format_observed_pool(o)
                                           : o->kind == DV_KIND_NETWORK ? format_observed_network(o)
                                           : o->kind == DV_KIND_DOMAIN  ? format_observed_domain(o)
                                                                        : format_observed_volume(o);
                if (xml)
                        KEEP(q, state_store_put(e->state, rel, xml, strlen(xml), 0644));
                else
                        engine_queue_removal(e, rel);
        }

        bool any_dirty = e->files_changed || !e->status_hash[0] || e->status_stale ||
                         e->store_failed || e->pending_removals;
        for (size_t i = 0; i < n && !any_dirty; i++)
                any_dirty = objs[i]->dirty;
        if (!any_dirty) {
                /* Nothing an object or file shows has changed: no write, just the heartbeat. */
                touch(e, "status.xml");
                touch(e, "metrics.prom");
                return 0;
        }

        struct status_snapshot s = {0};
        fill_snapshot(e, &s, objs, n);
        /* Per-pass facts (pass count, time, durations) alone do not make a write: the
         * files are rewritten when anything else changed, and touched otherwise. */
        char content_hash[HASH_HEX_LEN + 1];
        status_content_hash(&s, content_hash);
        bool unchanged = streq(content_hash, e->status_hash);
        struct buf b = BUF_INIT;
        _cleanup_buf_ struct buf status = BUF_INIT;
        if (!unchanged)
                status_format_xml(&status, &s);
        if (status.s)
                KEEP(q, state_store_put(e->state, "status.xml", status.s, status.len, 0644));
        if (!unchanged)
                status_format_metrics(&b, &s);
        if (b.s) {
                KEEP(q, state_store_put(e->state, "metrics.prom", b.s, b.len, 0644));
                if (e->cfg.metrics_file) {
                        char h[HASH_HEX_LEN + 1];
                        hash_hex(b.s, b.len, h);
                        if (!streq(h, e->metrics_hash)) {
                                int r = write_file_atomic(e->cfg.metrics_file, b.s, b.len, 0644);
                                if (r < 0)
                                        engine_event(e, "cannot write metrics_file %s: %s",
                                                     e->cfg.metrics_file, strerror(-r));
                                else
                                        memcpy(e->metrics_hash, h, sizeof(h));
                        }
                }
        }
        buf_free(&b);
        status_snapshot_free_contents(&s);

        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int r = engine_commit(e, &err);
        if (r >= 0 && q < 0)
                /* Not queued, not written: everything stays dirty and is tried again. */
                r = dv_error_add(&err, q, 0, "cannot queue state files: %s", strerror(-q));
        if (r < 0) {
                _cleanup_free_ char *m = dv_error_summary(&err);
                if (!e->record_failing)
                        engine_event(e, "cannot write state: %s", strna(m));
                e->record_failing = true;
                e->errors_total++;
                dv_error_clear(&err);
                /* The last-applied records cannot be written: status.xml alone may still
                 * be, and shows why nothing acts. When it cannot either, the failure is
                 * the one just reported. */
                if (q >= 0 && status.s &&
                    state_store_put(e->state, "status.xml", status.s, status.len, 0644) >= 0 &&
                    state_store_commit(e->state, &err) < 0)
                        dv_error_clear(&err);
                return r;
        }
        if (e->record_failing)
                engine_event(e, "state is written again");
        e->record_failing = false;
        e->status_stale = false;
        memcpy(e->status_hash, content_hash, sizeof(content_hash));
        touch(e, "status.xml");
        touch(e, "metrics.prom");
        for (size_t i = 0; i < n; i++)
                objs[i]->dirty = false;
        return 0;
}
