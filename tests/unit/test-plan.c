/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pure planner plan_object() (reconcile/plan.c): phase, action and message for
 * pools and volumes built by hand, against docs/design.md (policy semantics, the pass). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/object.h"
#include "model/pool.h"
#include "reconcile/applied.h"
#include "reconcile/engine-internal.h"
#include "reconcile/engine.h"
#include "util/hashmap.h"
#include "util/strv.h"

#define BOOT_NOW  "11111111-2222-3333-4444-555555555555"
#define BOOT_OLD  "99999999-8888-7777-6666-555555555555"
#define BTIME     ((uint64_t)1700000000)          /* CLOCK_REALTIME seconds of this boot */
#define OLD_MTIME ((time_t)(BTIME - 86400))       /* written during an earlier boot */
#define NEW_MTIME ((time_t)(BTIME + 60))          /* written after this boot */
#define NOW       ((uint64_t)5000 * USEC_PER_SEC) /* CLOCK_MONOTONIC usec */
#define DELAY     ((uint64_t)2 * USEC_PER_SEC)    /* removal_delay */
#define GIB       ((uint64_t)1 << 30)

#define POLICY(attrs) "<dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' " attrs "/>"

#define DIR_POOL(path, policy)                                                              \
        "<pool type='dir'><name>images</name><target><path>" path "</path></target>" policy \
        "</pool>"
#define FS_POOL(dev, policy)                                         \
        "<pool type='fs'><name>fs1</name><source><device path='" dev \
        "'/><format type='ext4'/></source>"                          \
        "<target><path>/srv/fs1</path></target>" policy "</pool>"
#define PERMS_POOL                                                                          \
        "<pool type='dir'><name>images</name><target><path>/srv/images</path><permissions>" \
        "<mode>0750</mode><owner>0</owner><group>64055</group></permissions></target></pool>"
#define VOLUME(name, policy, extra) \
        "<volume><name>" name "</name><capacity unit='G'>1</capacity>" extra policy "</volume>"
#define VOL_IN_IMAGES POLICY("pool='images'")

/* ---- building objects ---- */

static struct dv_object *parse(const char *xml) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse(xml, strlen(xml), "test.xml", &o, &err) < 0) {
                dv_error_print(stderr, &err);
                dv_error_clear(&err);
                fail_msg("refused: %s", xml);
        }
        dv_error_clear(&err);
        return o;
}

/* An object defined by `file` (written during an earlier boot), managed. */
static struct obj *add_defined(struct engine *e, const char *xml, const char *file) {
        struct dv_object *d = parse(xml);
        struct obj *o = engine_get_or_add(e, d->kind, d->pool, d->name);
        assert_non_null(o);
        dv_object_free(o->desired);
        o->desired = d;
        free(o->file);
        o->file = strdup(file);
        assert_non_null(o->file);
        o->file_mtime.tv_sec = OLD_MTIME;
        memcpy(o->desired_hash, d->hash, sizeof(o->desired_hash));
        o->managed = true;
        return o;
}

/* The last-applied record: of `xml` when given, else of the desired definition. */
static void set_applied(struct obj *o, const char *xml, bool created, bool active,
                        const char *boot_id) {
        struct dv_object *src = xml ? parse(xml) : dv_object_ref(o->desired);
        struct applied *a = NULL;
        assert_int_equal(applied_new_from(src, o->file, &a), 0);
        dv_object_free(src);
        a->created = created;
        a->active = active;
        a->boot_id = boot_id ? strdup(boot_id) : NULL;
        applied_free(o->applied);
        o->applied = a;
        o->managed = true;
}

static void observe_pool_state(struct obj *o, enum pool_state state) {
        o->observed = true;
        o->pool_st.state = state;
}

static void observe_vol(struct obj *o, uint64_t capacity, const char *format, const char *backing) {
        vol_status_done(&o->vol_st);
        o->observed = true;
        o->exists = true;
        o->vol_st.name = strdup(o->name);
        o->vol_st.capacity = capacity;
        o->vol_st.format = format ? strdup(format) : NULL;
        o->vol_st.backing_path = backing ? strdup(backing) : NULL;
}

/* What resolve does when the file is gone: the definition left is the applied one. */
static void remove_file(struct obj *o, uint64_t absent_since) {
        free(o->file);
        o->file = NULL;
        dv_object_free(o->desired);
        o->desired = NULL;
        o->desired_hash[0] = '\0';
        o->absent_since = absent_since;
}

/* ---- planning ---- */

static struct plan_step plan_at(const struct engine *e, const struct obj *o, uint64_t now) {
        enum obj_phase phase = o->phase;
        enum obj_action action = o->action;
        const char *message = o->message;
        struct plan_step s;
        memset(&s, 0x5a, sizeof(s)); /* the planner must set every field */
        plan_object(e, o, now, &s);
        /* Pure: the object is left as it was. */
        assert_int_equal(o->phase, phase);
        assert_int_equal(o->action, action);
        assert_ptr_equal(o->message, message);
        return s;
}

static struct plan_step plan(const struct engine *e, const struct obj *o) {
        return plan_at(e, o, NOW);
}

/* Checks phase, action and message (NULL: no message), then frees the message. */
static void expect_step(struct plan_step *s, enum obj_phase phase, enum obj_action action,
                        const char *message) {
        assert_string_equal(obj_phase_to_string(s->phase), obj_phase_to_string(phase));
        assert_string_equal(obj_action_to_string(s->action), obj_action_to_string(action));
        assert_int_equal(s->action, action); /* "delete" names two actions */
        if (message)
                assert_string_equal(s->message ? s->message : "(null)", message);
        else if (s->message)
                fail_msg("unexpected message '%s'", s->message);
        free(s->message);
        s->message = NULL;
}

/* Plans o and stores the phase, as the engine does, for objects that depend on it. */
static void settle(struct engine *e, struct obj *o, enum obj_phase want) {
        struct plan_step s = plan(e, o);
        assert_string_equal(obj_phase_to_string(s.phase), obj_phase_to_string(want));
        free(s.message);
        o->phase = s.phase;
}

/* A dir pool "images" that the agent built and started during this boot: ready. */
static struct obj *ready_pool(struct engine *e, const char *xml) {
        struct obj *p = add_defined(e, xml, "/etc/declvirt/desired.d/images.xml");
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        settle(e, p, PHASE_READY);
        return p;
}

static struct obj *add_volume(struct engine *e, const char *xml) {
        return add_defined(e, xml, "/etc/declvirt/desired.d/volume.xml");
}

static int setup(void **state) {
        struct engine *e = calloc(1, sizeof(*e));
        assert_non_null(e);
        e->objects = hashmap_new();
        e->boot_id = strdup(BOOT_NOW);
        assert_non_null(e->objects);
        assert_non_null(e->boot_id);
        e->btime_sec = BTIME;
        e->cfg.removal_delay_usec = DELAY;
        e->cfg.dry_run = true;
        *state = e;
        return 0;
}

static int teardown(void **state) {
        engine_free(*state); /* no store, executor or desired set: only the objects */
        return 0;
}

/* ---- pools ---- */

static void test_pool_new_absent_builds(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        observe_pool_state(p, POOL_STATE_ABSENT);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_BUILD, "building /srv/images");
        assert_int_equal(s.arg, 0);

        /* Built even when it is to stay inactive: build and start are separate. */
        p = add_defined(e, FS_POOL("/dev/vdb1", POLICY("state='inactive'")), "fs1.xml");
        observe_pool_state(p, POOL_STATE_ABSENT);
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_BUILD, "building /srv/fs1");
}

static void test_pool_not_observed(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_PENDING, ACT_NONE, "not observed yet");
}

static void test_pool_broken_is_blocked(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        observe_pool_state(p, POOL_STATE_BROKEN);
        p->pool_st.reason = strdup("/srv/images is a regular file");
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE, "/srv/images is a regular file");
}

static void test_pool_dir_flag_false_starts(void **state) {
        struct engine *e = *state;
        /* A directory that exists is observed active; "started" is the agent's own flag. */
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        observe_pool_state(p, POOL_STATE_ACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");
        assert_false(obj_pool_effectively_active(e, p));

        set_applied(p, NULL, true, false, BOOT_NOW);
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");
}

static void test_pool_ready(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        assert_true(obj_pool_effectively_active(e, p));

        /* A pool that is not stateless is ready when it is active, whoever started it. */
        struct obj *f = add_defined(e, FS_POOL("/dev/vdb1", ""), "fs1.xml");
        observe_pool_state(f, POOL_STATE_ACTIVE);
        s = plan(e, f);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        assert_true(obj_pool_effectively_active(e, f));

        /* An invalid file leaves it on its last valid definition, and says so. */
        p->file_error = strdup("images.xml:3: <path> is not absolute");
        s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE,
                    "running on the last valid definition; its file is invalid");
}

static void test_pool_fs_inactive_starts(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, FS_POOL("/dev/vdb1", ""), "fs1.xml");
        set_applied(p, NULL, true, false, NULL);
        observe_pool_state(p, POOL_STATE_INACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");
}

static void test_pool_state_inactive(void **state) {
        struct engine *e = *state;
        struct obj *p =
                add_defined(e, DIR_POOL("/srv/images", POLICY("state='inactive'")), "images.xml");
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_STOPPING, ACT_POOL_STOP, "stopping: state='inactive'");

        /* Stopped: nothing to do, and no HeldDown message (it is down on purpose). */
        p->applied->active = false;
        s = plan(e, p);
        expect_step(&s, PHASE_STOPPED, ACT_NONE, NULL);

        struct obj *f = add_defined(e, FS_POOL("/dev/vdb1", POLICY("state='inactive'")), "fs1.xml");
        set_applied(f, NULL, true, true, BOOT_NOW);
        observe_pool_state(f, POOL_STATE_ACTIVE);
        s = plan(e, f);
        expect_step(&s, PHASE_STOPPING, ACT_POOL_STOP, "stopping: state='inactive'");
        observe_pool_state(f, POOL_STATE_INACTIVE);
        s = plan(e, f);
        expect_step(&s, PHASE_STOPPED, ACT_NONE, NULL);
}

#define HELD_DOWN "autostart='no': left down after boot"

static void test_autostart_no_after_boot(void **state) {
        struct engine *e = *state;
        /* Brought up by the agent during an earlier boot, file not written since: down. */
        struct obj *p = add_defined(e, FS_POOL("/dev/vdb1", POLICY("autostart='no'")), "fs1.xml");
        set_applied(p, NULL, true, true, BOOT_OLD);
        observe_pool_state(p, POOL_STATE_INACTIVE);
        assert_false(obj_want_up(e, p));
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_STOPPED, ACT_NONE, HELD_DOWN);

        /* No record of any boot: down too. */
        p->applied->active = false;
        free(p->applied->boot_id);
        p->applied->boot_id = NULL;
        s = plan(e, p);
        expect_step(&s, PHASE_STOPPED, ACT_NONE, HELD_DOWN);

        /* A dir pool the agent had not marked started: down, nothing to do. */
        struct obj *d =
                add_defined(e, DIR_POOL("/srv/images", POLICY("autostart='no'")), "images.xml");
        set_applied(d, NULL, true, false, BOOT_OLD);
        observe_pool_state(d, POOL_STATE_ACTIVE);
        s = plan(e, d);
        expect_step(&s, PHASE_STOPPED, ACT_NONE, HELD_DOWN);
        assert_false(obj_pool_effectively_active(e, d));
}

static void test_autostart_no_same_boot(void **state) {
        struct engine *e = *state;
        /* Brought up during this boot (then stopped by someone else): up again. */
        struct obj *p = add_defined(e, FS_POOL("/dev/vdb1", POLICY("autostart='no'")), "fs1.xml");
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_INACTIVE);
        assert_true(obj_want_up(e, p));
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");

        struct obj *d =
                add_defined(e, DIR_POOL("/srv/images", POLICY("autostart='no'")), "images.xml");
        set_applied(d, NULL, true, true, BOOT_NOW);
        observe_pool_state(d, POOL_STATE_ACTIVE);
        s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

static void test_autostart_no_file_written_after_boot(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, FS_POOL("/dev/vdb1", POLICY("autostart='no'")), "fs1.xml");
        set_applied(p, NULL, true, false, BOOT_OLD);
        p->file_mtime.tv_sec = NEW_MTIME;
        observe_pool_state(p, POOL_STATE_INACTIVE);
        assert_true(obj_want_up(e, p));
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");

        /* Written in the very second of the boot counts as after it. */
        p->file_mtime.tv_sec = (time_t)BTIME;
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");

        /* A new file (no record yet) written after boot. */
        struct obj *d =
                add_defined(e, DIR_POOL("/srv/images", POLICY("autostart='no'")), "images.xml");
        d->file_mtime.tv_sec = NEW_MTIME;
        observe_pool_state(d, POOL_STATE_ACTIVE);
        s = plan(e, d);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");
}

static void test_autostart_yes_after_boot(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, FS_POOL("/dev/vdb1", ""), "fs1.xml");
        set_applied(p, NULL, true, true, BOOT_OLD);
        observe_pool_state(p, POOL_STATE_INACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_START, "starting");
}

static void test_autostart_no_dir_pool_flag_from_earlier_boot(void **state) {
        struct engine *e = *state;
        /* The usual state of a dir pool right after a reboot: the agent started it during the
         * previous boot (its flag says active, with that boot's id) and the directory is
         * there, so it is observed active. autostart='no': it is left down, with nothing to do. */
        struct obj *d =
                add_defined(e, DIR_POOL("/srv/images", POLICY("autostart='no'")), "images.xml");
        set_applied(d, NULL, true, true, BOOT_OLD);
        observe_pool_state(d, POOL_STATE_ACTIVE);
        assert_false(obj_want_up(e, d));
        struct plan_step s = plan(e, d);
        expect_step(&s, PHASE_STOPPED, ACT_NONE, HELD_DOWN);
        assert_false(obj_pool_effectively_active(e, d));
}

static void test_pool_immutable_change(void **state) {
        struct engine *e = *state;
        /* Built by the agent: the target path cannot move. */
        struct obj *p = add_defined(e, DIR_POOL("/srv/new", ""), "images.xml");
        set_applied(p, DIR_POOL("/srv/old", ""), true, false, NULL);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "the target path is immutable (applied /srv/old, file says /srv/new)");
        assert_ptr_equal(obj_live_def(p), p->applied->obj);

        /* Started (not built) by the agent: the same. */
        set_applied(p, DIR_POOL("/srv/old", ""), false, true, BOOT_NOW);
        s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "the target path is immutable (applied /srv/old, file says /srv/new)");

        /* Blocked before anything else is looked at. */
        p->observed = false;
        s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "the target path is immutable (applied /srv/old, file says /srv/new)");
}

static void test_pool_immutable_never_realised(void **state) {
        struct engine *e = *state;
        /* Applied but never built nor started (the build failed, say): the new path is taken. */
        struct obj *p = add_defined(e, DIR_POOL("/srv/new", ""), "images.xml");
        set_applied(p, DIR_POOL("/srv/old", ""), false, false, NULL);
        observe_pool_state(p, POOL_STATE_ABSENT);
        assert_ptr_equal(obj_live_def(p), p->desired);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_BUILD, "building /srv/new");
}

static void test_pool_immutable_type_and_source(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, FS_POOL("/dev/vdc1", ""), "fs1.xml");
        set_applied(p, FS_POOL("/dev/vdb1", ""), true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE, "the pool source is immutable");

        set_applied(
                p, "<pool type='dir'><name>fs1</name><target><path>/srv/fs1</path></target></pool>",
                true, true, BOOT_NOW);
        s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "the pool type is immutable (applied 'dir', file says 'fs')");

        /* Only the policy changed: not an immutable change. */
        set_applied(p, FS_POOL("/dev/vdc1", POLICY("on-remove='keep'")), true, true, BOOT_NOW);
        s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

static void test_pool_permissions(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, PERMS_POOL, "images.xml");
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);

        /* The driver reported no permissions: nothing to compare. */
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);

        p->pool_st.has_perms = true;
        p->pool_st.mode = 040750; /* the type bits do not count */
        p->pool_st.owner = 0;
        p->pool_st.group = 64055;
        s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);

        p->pool_st.mode = 040755;
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_PERMS, "applying permissions to /srv/images");

        p->pool_st.mode = 040750;
        p->pool_st.group = 0;
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_PERMS, "applying permissions to /srv/images");

        p->pool_st.group = 64055;
        p->pool_st.owner = 107;
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_PERMS, "applying permissions to /srv/images");

        /* Unwritten fields are left alone. */
        struct obj *d = add_defined(e, FS_POOL("/dev/vdb1", ""), "fs1.xml");
        observe_pool_state(d, POOL_STATE_ACTIVE);
        d->pool_st.has_perms = true;
        d->pool_st.mode = 040700;
        d->pool_st.owner = 1000;
        s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

/* ---- volumes ---- */

static void test_volume_waits_for_missing_pool(void **state) {
        struct engine *e = *state;
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/images: no such pool");

        /* A pool the agent does not manage (only observed) is no pool for it either. */
        struct obj *p = engine_get_or_add(e, DV_KIND_POOL, NULL, "images");
        assert_non_null(p);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/images: no such pool");
}

static void test_volume_waits_for_pool_not_ready(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        observe_pool_state(p, POOL_STATE_ABSENT);
        settle(e, p, PHASE_CREATING);
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        v->observed = true;
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/images (creating)");

        /* Blocked pool. */
        set_applied(p, DIR_POOL("/srv/old", ""), true, true, BOOT_NOW);
        settle(e, p, PHASE_BLOCKED);
        s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/images (blocked)");

        /* Ready, but an action runs on it. */
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        settle(e, p, PHASE_READY);
        p->busy = true;
        p->running = ACT_POOL_PERMS;
        s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/images (ready)");
        p->busy = false;

        /* Its phase says ready but it is not active (any more): still waiting. */
        p->applied->active = false;
        s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/images (ready)");

        p->applied->active = true;
        s = plan(e, v);
        expect_step(&s, PHASE_CREATING, ACT_VOL_CREATE, "creating raw volume of 1073741824 bytes");
}

static void test_volume_create(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        v->observed = true; /* listed: not there */
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_CREATING, ACT_VOL_CREATE, "creating raw volume of 1073741824 bytes");

        struct obj *q = add_volume(e, VOLUME("web1.qcow2", VOL_IN_IMAGES,
                                             "<target><format type='qcow2'/></target>"
                                             "<backingStore><path>/srv/base.qcow2</"
                                             "path><format type='qcow2'/></backingStore>"));
        q->observed = true;
        s = plan(e, q);
        expect_step(&s, PHASE_CREATING, ACT_VOL_CREATE,
                    "creating qcow2 volume of 1073741824 bytes");
}

static void test_volume_not_observed(void **state) {
        struct engine *e = *state;
        /* A volume the pool's listing has not reported on (the listing failed, or the
         * volume's last action just finished) may well exist: it is not created blindly,
         * just as a pool that is not observed yet is only pending. */
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_PENDING, ACT_NONE, "not observed yet");
}

static void test_volume_ready(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        observe_vol(v, GIB, "raw", NULL);
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);

        /* No format written: whatever the file's header says is accepted. */
        observe_vol(v, GIB, "qcow2", NULL);
        s = plan(e, v);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

static void test_volume_grow(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        observe_vol(v, GIB / 2, "raw", NULL);
        struct plan_step s = plan(e, v);
        assert_int_equal(s.arg, GIB);
        expect_step(&s, PHASE_CREATING, ACT_VOL_RESIZE,
                    "growing from 536870912 to 1073741824 bytes");
}

static void test_volume_shrink_refused(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        observe_vol(v, 2 * GIB, "raw", NULL);
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "shrinking from 2147483648 to 1073741824 bytes is refused: it would lose data");
}

static void test_volume_format_change_refused(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(
                e, VOLUME("disk0.img", VOL_IN_IMAGES, "<target><format type='qcow2'/></target>"));
        observe_vol(v, GIB, "raw", NULL);
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "changing the format from raw to qcow2 is refused");

        /* Format not detected: nothing to compare. */
        observe_vol(v, GIB, NULL, NULL);
        s = plan(e, v);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

static void test_volume_backing_change_refused(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("web1.qcow2", VOL_IN_IMAGES,
                                             "<target><format type='qcow2'/></target>"
                                             "<backingStore><path>/srv/base.qcow2</"
                                             "path><format type='qcow2'/></backingStore>"));
        observe_vol(v, GIB, "qcow2", "/srv/other.qcow2");
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "changing the backing store to /srv/base.qcow2 is refused (it is "
                    "/srv/other.qcow2)");

        observe_vol(v, GIB, "qcow2", NULL);
        s = plan(e, v);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "changing the backing store to /srv/base.qcow2 is refused (it is n/a)");

        observe_vol(v, GIB, "qcow2", "/srv/base.qcow2");
        s = plan(e, v);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

static void test_volume_unmanaged(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        /* A file found in the pool that no desired file declares. */
        struct obj *v = engine_get_or_add(e, DV_KIND_VOLUME, "images", "found.iso");
        assert_non_null(v);
        observe_vol(v, 3 * GIB, "iso", NULL);
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        assert_false(v->managed);
}

static void test_volume_never_applied_file_removed(void **state) {
        struct engine *e = *state;
        /* A volume file for a pool that never came; the file is removed before anything was
         * applied. resolve() leaves it with no definition, no record, not managed, and
         * nothing exists on the host: there is nothing left to show or to undo. */
        struct obj *v = add_volume(e, VOLUME("disk0.img", POLICY("pool='nope'"), ""));
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for pool/nope: no such pool");
        remove_file(v, NOW - 10 * USEC_PER_SEC);
        v->managed = false;
        s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET, "no longer defined");
}

/* ---- removal ---- */

static void test_removal_pending_during_delay(void **state) {
        struct engine *e = *state;
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", POLICY("on-remove='delete'")));
        remove_file(p, NOW - 500 * USEC_PER_MSEC);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, "file removed; on-remove applies in 1.5s");

        s = plan_at(e, p, NOW + USEC_PER_SEC);
        expect_step(&s, PHASE_READY, ACT_NONE, "file removed; on-remove applies in 500ms");

        /* The delay is over: on-remove applies (read from the last-applied copy). */
        s = plan_at(e, p, NOW + 1500 * USEC_PER_MSEC);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_DELETE, "file removed; on-remove='delete'");

        struct obj *v =
                add_volume(e, VOLUME("disk0.img", POLICY("pool='images' on-remove='delete'"), ""));
        set_applied(v, NULL, true, false, NULL);
        observe_vol(v, GIB, "raw", NULL);
        v->phase = PHASE_READY;
        remove_file(v, NOW - USEC_PER_SEC);
        s = plan(e, v);
        expect_step(&s, PHASE_READY, ACT_NONE, "file removed; on-remove applies in 1s");
        s = plan_at(e, v, NOW + USEC_PER_SEC);
        expect_step(&s, PHASE_REMOVING, ACT_VOL_DELETE, "file removed; on-remove='delete'");
}

static void test_removal_volume_keep(void **state) {
        struct engine *e = *state;
        ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        set_applied(v, NULL, true, false, NULL);
        observe_vol(v, GIB, "raw", NULL);
        remove_file(v, NOW - DELAY);
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET,
                    "file removed; on-remove='keep': the volume is kept");
}

static void test_removal_volume_delete(void **state) {
        struct engine *e = *state;
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", ""));
        struct obj *v =
                add_volume(e, VOLUME("disk0.img", POLICY("pool='images' on-remove='delete'"), ""));
        set_applied(v, NULL, true, false, NULL);
        observe_vol(v, GIB, "raw", NULL);
        remove_file(v, NOW - DELAY);
        struct plan_step s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_VOL_DELETE, "file removed; on-remove='delete'");

        /* The pool is not active: waits. */
        p->applied->active = false;
        s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_NONE,
                    "file removed; waiting for pool/images to be active to delete");
        p->applied->active = true;

        /* Already gone. */
        v->exists = false;
        s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET, "file removed; the volume is already gone");
        v->exists = true;

        /* Not created by the agent: never deleted. */
        v->applied->created = false;
        s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET,
                    "file removed; not deleted: the agent did not create it");
}

static void test_removal_pool_keep(void **state) {
        struct engine *e = *state;
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", POLICY("on-remove='keep'")));
        remove_file(p, NOW - DELAY);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET,
                    "file removed; on-remove='keep': left as it is");
}

static void test_removal_pool_waits_for_volumes(void **state) {
        struct engine *e = *state;
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", POLICY("on-remove='delete'")));
        struct obj *v1 = add_volume(e, VOLUME("a.img", VOL_IN_IMAGES, ""));
        struct obj *v2 = add_volume(e, VOLUME("b.img", VOL_IN_IMAGES, ""));
        struct obj *u = engine_get_or_add(e, DV_KIND_VOLUME, "images", "found.iso");
        assert_non_null(u);
        observe_vol(u, GIB, "iso", NULL); /* unmanaged: does not hold the pool */
        /* A volume of another pool with the same name prefix does not count either. */
        struct obj *other = add_volume(e, VOLUME("c.img", POLICY("pool='images2'"), ""));
        (void)other;
        remove_file(p, NOW - DELAY);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_NONE,
                    "file removed; waiting for 2 managed volumes of the pool");

        v1->managed = false; /* forgotten */
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_NONE,
                    "file removed; waiting for 1 managed volume of the pool");

        v2->managed = false;
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_DELETE, "file removed; on-remove='delete'");

        /* on-remove='stop' does not wait for volumes. */
        v1->managed = v2->managed = true;
        set_applied(p, DIR_POOL("/srv/images", ""), true, true, BOOT_NOW);
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_STOP, "file removed; on-remove='stop'");
}

static void test_removal_pool_delete(void **state) {
        struct engine *e = *state;
        /* A dir pool the agent created: deleted (there is nothing to stop). */
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", POLICY("on-remove='delete'")));
        remove_file(p, NOW - DELAY);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_DELETE, "file removed; on-remove='delete'");

        /* A filesystem pool: stopped (unmounted) first, then deleted. */
        struct obj *f =
                add_defined(e, FS_POOL("/dev/vdb1", POLICY("on-remove='delete'")), "fs1.xml");
        set_applied(f, NULL, true, true, BOOT_NOW);
        observe_pool_state(f, POOL_STATE_ACTIVE);
        remove_file(f, NOW - DELAY);
        s = plan(e, f);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_STOP, "file removed; stopping before delete");
        f->applied->active = false;
        s = plan(e, f); /* still mounted: whoever started it, it is stopped first */
        expect_step(&s, PHASE_REMOVING, ACT_POOL_STOP, "file removed; stopping before delete");
        observe_pool_state(f, POOL_STATE_INACTIVE);
        s = plan(e, f);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_DELETE, "file removed; on-remove='delete'");
}

static void test_removal_pool_delete_not_created(void **state) {
        struct engine *e = *state;
        struct obj *p =
                add_defined(e, FS_POOL("/dev/vdb1", POLICY("on-remove='delete'")), "fs1.xml");
        set_applied(p, NULL, false, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        remove_file(p, NOW - DELAY);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_STOP, "file removed; on-remove='delete'");
        observe_pool_state(p, POOL_STATE_INACTIVE);
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET,
                    "file removed; not deleted: the agent did not create this pool");
}

static void test_removal_pool_stop(void **state) {
        struct engine *e = *state;
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", ""));
        remove_file(p, NOW - DELAY);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_POOL_STOP, "file removed; on-remove='stop'");
        p->applied->active = false;
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET, "file removed; stopped");
}

static void test_removal_pool_delete_not_observed(void **state) {
        struct engine *e = *state;
        /* A pool the agent created, to be deleted, whose state is not known at this moment:
         * its ownership record must not be dropped before the planner has looked. */
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", POLICY("on-remove='delete'")));
        remove_file(p, NOW - DELAY);
        p->observed = false;
        struct plan_step s = plan(e, p);
        assert_int_equal(s.action, ACT_NONE);
        free(s.message);
}

/* ---- duplicates, failures, busy, undefined ---- */

static void test_duplicate_never_applied(void **state) {
        struct engine *e = *state;
        struct obj *p = engine_get_or_add(e, DV_KIND_POOL, NULL, "images");
        assert_non_null(p);
        p->managed = true;
        assert_int_equal(strv_push(&p->dup_files, "/etc/declvirt/desired.d/a.xml"), 0);
        assert_int_equal(strv_push(&p->dup_files, "/etc/declvirt/desired.d/b.xml"), 0);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "defined by several files: /etc/declvirt/desired.d/a.xml, "
                    "/etc/declvirt/desired.d/b.xml");

        /* Even when one of them was adopted for a moment (a volume waiting for its pool). */
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        assert_int_equal(strv_push(&v->dup_files, "v1.xml"), 0);
        assert_int_equal(strv_push(&v->dup_files, "v2.xml"), 0);
        s = plan(e, v);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE, "defined by several files: v1.xml, v2.xml");
}

static void test_duplicate_with_applied_keeps_last_known_good(void **state) {
        struct engine *e = *state;
        struct obj *p = ready_pool(e, DIR_POOL("/srv/images", ""));
        assert_int_equal(strv_push(&p->dup_files, "/etc/declvirt/desired.d/images.xml"), 0);
        assert_int_equal(strv_push(&p->dup_files, "/etc/declvirt/desired.d/copy.xml"), 0);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);

        /* It keeps being reconciled on the definition in force. */
        observe_pool_state(p, POOL_STATE_ABSENT);
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_BUILD, "building /srv/images");

        /* After a restart there is no desired definition yet: the applied one is used. */
        dv_object_free(p->desired);
        p->desired = NULL;
        s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_POOL_BUILD, "building /srv/images");
}

static void test_failed_action_backoff(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        observe_pool_state(p, POOL_STATE_ABSENT);
        p->last_error = strdup("mkdir /srv/images: Permission denied");
        p->failed = ACT_POOL_BUILD;
        p->failures = 3;
        p->retry_at = NOW + 4 * USEC_PER_SEC;
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_FAILED, ACT_NONE,
                    "mkdir /srv/images: Permission denied (retry in 4s)");

        /* Time to retry. */
        s = plan_at(e, p, NOW + 4 * USEC_PER_SEC);
        expect_step(&s, PHASE_CREATING, ACT_POOL_BUILD, "building /srv/images");

        /* A refusal: blocked, with the reason and no countdown. */
        free(p->last_error);
        p->last_error = strdup("/srv/images exists and is not empty");
        p->error_blocks = true;
        s = plan(e, p);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE, "/srv/images exists and is not empty");

        /* Nothing left to do: the old error does not make it failed. */
        p->error_blocks = false;
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);

        /* Volumes the same. */
        settle(e, p, PHASE_READY);
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        observe_vol(v, GIB / 2, "raw", NULL);
        v->last_error = strdup("qemu-img resize: exit 1");
        v->failed = ACT_VOL_RESIZE;
        v->retry_at = NOW + 1500 * USEC_PER_MSEC;
        s = plan(e, v);
        expect_step(&s, PHASE_FAILED, ACT_NONE, "qemu-img resize: exit 1 (retry in 1.5s)");

        /* Only the action that failed waits: a removal planned since goes ahead. */
        set_applied(v, NULL, true, false, NULL);
        remove_file(v, NOW - DELAY);
        s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET,
                    "file removed; on-remove='keep': the volume is kept");
}

static void test_busy_in_progress(void **state) {
        struct engine *e = *state;
        struct obj *p = add_defined(e, DIR_POOL("/srv/images", ""), "images.xml");
        observe_pool_state(p, POOL_STATE_ABSENT);
        p->busy = true;
        p->running = ACT_POOL_BUILD;
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_CREATING, ACT_NONE, "build in progress");

        p->running = ACT_POOL_STOP;
        s = plan(e, p);
        expect_step(&s, PHASE_STOPPING, ACT_NONE, "stop in progress");

        p->running = ACT_POOL_DELETE;
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_NONE, "delete in progress");

        /* Busy wins over everything, duplicates too. */
        struct obj *v = add_volume(e, VOLUME("disk0.img", VOL_IN_IMAGES, ""));
        v->busy = true;
        v->running = ACT_VOL_RESIZE;
        assert_int_equal(strv_push(&v->dup_files, "v1.xml"), 0);
        assert_int_equal(strv_push(&v->dup_files, "v2.xml"), 0);
        s = plan(e, v);
        expect_step(&s, PHASE_CREATING, ACT_NONE, "resize in progress");
        v->running = ACT_VOL_DELETE;
        s = plan(e, v);
        expect_step(&s, PHASE_REMOVING, ACT_NONE, "delete in progress");
}

static void test_undefined_non_volume_forgotten(void **state) {
        struct engine *e = *state;
        struct obj *n = engine_get_or_add(e, DV_KIND_NETWORK, NULL, "net0");
        assert_non_null(n);
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET, "no longer defined");

        struct obj *p = engine_get_or_add(e, DV_KIND_POOL, NULL, "images");
        assert_non_null(p);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        s = plan(e, p);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET, "no longer defined");
}

/* ---- domains ---- */

#define NET_XML_FOR_DOMAIN \
        "<network><name>nat</name><forward mode='nat'/><bridge name='dvnat'/><ip address='192.0.2.1' prefix='24'/></network>"

#define DOM(name, policy, devices)                         \
        "<domain type='qemu'><name>" name "</name>" policy \
        "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"     \
        "<os><type arch='x86_64'>hvm</type></os><devices>" devices "</devices></domain>"

static void observe_dom(struct obj *o, enum dom_state state, const char *exit_reason) {
        dom_status_done(&o->dom_st);
        o->observed = true;
        o->dom_st.state = state;
        o->dom_st.pid = state == DOM_RUNNING ? 4242 : 0;
        o->dom_st.exit_reason = exit_reason ? strdup(exit_reason) : NULL;
        o->dom_st.exit_clean = exit_reason && strcmp(exit_reason, "guest shut down") == 0;
}

static void test_domain_start_waits_for_volume_and_network(void **state) {
        struct engine *e = *state;
        struct obj *d = add_defined(
                e,
                DOM("vm", "",
                    "<disk type='volume' device='disk'><source pool='images' volume='vm.qcow2'/><target dev='vda' bus='virtio'/></disk>"
                    "<interface type='network'><source network='nat'/></interface>"),
                "vm.xml");
        observe_dom(d, DOM_SHUTOFF, NULL);
        struct plan_step s = plan(e, d);
        expect_step(&s, PHASE_WAITING, ACT_NONE,
                    "waiting for volume/images/vm.qcow2 (no such volume)");
        struct obj *v = add_defined(e, VOLUME("vm.qcow2", VOL_IN_IMAGES, ""), "v.xml");
        v->phase = PHASE_READY;
        s = plan(e, d);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for network/nat (no such network)");
        struct obj *n = add_defined(e, NET_XML_FOR_DOMAIN, "n.xml");
        n->phase = PHASE_CREATING;
        s = plan(e, d);
        expect_step(&s, PHASE_WAITING, ACT_NONE, "waiting for network/nat (creating)");
        n->phase = PHASE_READY;
        s = plan(e, d);
        expect_step(&s, PHASE_CREATING, ACT_DOM_START, "starting");
}

/* a's record as JSON holds good and reads back (returned); with good replaced by each of
 * bad it is refused. */
static struct applied *record_round_trip(const struct applied *a, const char *good,
                                         const char *const *bad, size_t n_bad) {
        _cleanup_free_ char *json = applied_to_json(a);
        assert_non_null(json);
        const char *at = strstr(json, good);
        assert_non_null(at);
        struct applied *back = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(applied_from_json(json, strlen(json), &back, &err), 0);
        for (size_t i = 0; i < n_bad; i++) {
                char fixed[8192];
                snprintf(fixed, sizeof(fixed), "%.*s%s%s", (int)(at - json), json, bad[i],
                         at + strlen(good));
                struct applied *b = NULL;
                assert_true(applied_from_json(fixed, strlen(fixed), &b, &err) < 0);
                assert_null(b);
                dv_error_clear(&err);
        }
        return back;
}

/* A QEMU that runs as root (started before QEMU ran as its own user) stays ready, and the
 * status says so; the last-applied record keeps the uid allocated for the domain. */
static void test_domain_unconfined_and_uid_record(void **state) {
        struct engine *e = *state;
        struct obj *d = add_defined(e, DOM("vm", "", ""), "vm.xml");
        set_applied(d, NULL, false, true, BOOT_NOW);
        observe_dom(d, DOM_RUNNING, NULL);
        d->dom_st.unconfined = true;
        struct plan_step s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE,
                    "running unconfined: its QEMU runs as root (started by an earlier agent); "
                    "confined at its next start");
        /* One started by the agent before QEMU had a jail: the driver says what it lacks. */
        d->dom_st.unconfined_how = strdup("has no jail of its own");
        assert_non_null(d->dom_st.unconfined_how);
        s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE,
                    "running unconfined: its QEMU has no jail of its own (started by an "
                    "earlier agent); confined at its next start");
        free(d->dom_st.unconfined_how);
        d->dom_st.unconfined_how = NULL;
        /* On a host without cgroup device control (v2 only) the status says so. */
        d->dom_st.unconfined = false;
        d->dom_st.no_device_control = true;
        s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE,
                    "device control is not available on this host (cgroup v2 without the "
                    "devices controller): no device allow-list");

        d->applied->uid = 3000007;
        /* A record naming root, (uid_t)-1 or a string is refused, not run as root. */
        static const char *const bad[] = {"\"uid\":0", "\"uid\":4294967295", "\"uid\":\"3000007\"",
                                          "\"uid\":-1"};
        struct applied *back =
                record_round_trip(d->applied, "\"uid\":3000007", bad, ELEMENTSOF(bad));
        assert_int_equal(back->uid, 3000007);
        applied_free(back);
}

#define CTU(name, policy)                                                                    \
        "<domain type='lxc'><name>" name "</name>" policy "<memory unit='MiB'>64</memory>"   \
        "<os><type>exe</type><init>/sbin/init</init></os><devices><filesystem type='mount'>" \
        "<source dir='/srv/ct'/><target dir='/'/></filesystem></devices></domain>"

/* A container whose init runs in the host's user namespace (started before containers
 * had their own) stays ready and the status says so, unless privileged='yes' asked for
 * it; the record keeps the container's range. */
static void test_container_unconfined_and_id_record(void **state) {
        struct engine *e = *state;
        struct obj *d = add_defined(e, CTU("ct", ""), "ct.xml");
        set_applied(d, NULL, false, true, BOOT_NOW);
        observe_dom(d, DOM_RUNNING, NULL);
        d->dom_st.unconfined = true;
        struct plan_step s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE,
                    "running unconfined: its init runs in the host's user namespace (started "
                    "before containers had their own); confined at its next start");
        struct obj *p = add_defined(
                e,
                CTU("priv", "<metadata><dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' "
                            "privileged='yes'/></metadata>"),
                "priv.xml");
        set_applied(p, NULL, false, true, BOOT_NOW);
        observe_dom(p, DOM_RUNNING, NULL);
        p->dom_st.unconfined = true;
        s = plan(e, p);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);

        d->applied->id_base = 1879113728;
        /* A record naming 0 (the host's root) or a range past the last id is refused. */
        static const char *const bad[] = {"\"id_base\":0", "\"id_base\":4294901760",
                                          "\"id_base\":\"1\""};
        struct applied *back =
                record_round_trip(d->applied, "\"id_base\":1879113728", bad, ELEMENTSOF(bad));
        assert_int_equal(back->id_base, 1879113728);
        applied_free(back);
}

static void test_domain_running_stop_change(void **state) {
        struct engine *e = *state;
        struct obj *d = add_defined(e, DOM("vm", "", ""), "vm.xml");
        set_applied(d, NULL, false, true, BOOT_NOW);
        observe_dom(d, DOM_RUNNING, NULL);
        struct plan_step s = plan(e, d);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        /* The file changed under a running guest: restart-required by default. */
        set_applied(d, DOM("vm", "", "<serial type='pty'/>"), false, true, BOOT_NOW);
        s = plan(e, d);
        expect_step(
                &s, PHASE_READY, ACT_NONE,
                "restart required: the file changed; the new definition is used at the next start");
        struct obj *r = add_defined(e, DOM("vr", POLICY("on-change='restart'"), ""), "vr.xml");
        set_applied(r, DOM("vr", POLICY("on-change='restart'"), "<serial type='pty'/>"), false,
                    true, BOOT_NOW);
        observe_dom(r, DOM_RUNNING, NULL);
        s = plan(e, r);
        expect_step(&s, PHASE_STOPPING, ACT_DOM_STOP,
                    "restarting for the changed definition (on-change='restart')");
        struct obj *st = add_defined(e, DOM("vs", POLICY("state='stopped'"), ""), "vs.xml");
        observe_dom(st, DOM_RUNNING, NULL);
        s = plan(e, st);
        expect_step(&s, PHASE_STOPPING, ACT_DOM_STOP, "shutting down: state='stopped'");
}

static void test_domain_restart_policies(void **state) {
        struct engine *e = *state;
        const char *pols[] = {POLICY("restart='always'"), POLICY("restart='on-failure'"),
                              POLICY("restart='never'")};
        const char *names[] = {"va", "vf", "vn"};
        for (size_t i = 0; i < 3; i++)
                for (int clean = 0; clean < 2; clean++) {
                        char xml[1024];
                        snprintf(
                                xml, sizeof(xml),
                                "<domain type='qemu'><name>%s%d</name>%s<memory unit='MiB'>64</memory>"
                                "<os><type>hvm</type></os></domain>",
                                names[i], clean, pols[i]);
                        struct obj *d = add_defined(e, xml, "x.xml");
                        set_applied(d, NULL, false, true, BOOT_NOW);
                        observe_dom(d, DOM_SHUTOFF,
                                    clean ? "guest shut down" : "killed by signal 9");
                        d->dom_exits = 1;
                        d->last_error = strdup(clean ? "exited: guest shut down"
                                                     : "exited: killed by signal 9");
                        d->failed = ACT_DOM_START;
                        struct plan_step s = plan_at(e, d, NOW);
                        bool starts = i == 0 || (i == 1 && !clean);
                        assert_int_equal(s.action, starts ? ACT_DOM_START : ACT_NONE);
                        assert_int_equal(s.phase, starts ? PHASE_CREATING : PHASE_STOPPED);
                        free(s.message);
                        /* With backoff: not before retry_at. */
                        d->retry_at = NOW + USEC_PER_SEC;
                        s = plan_at(e, d, NOW);
                        assert_int_equal(s.action, ACT_NONE);
                        assert_int_equal(s.phase, starts ? PHASE_FAILED : PHASE_STOPPED);
                        free(s.message);
                }
}

static void test_domain_holds_pool_and_network(void **state) {
        struct engine *e = *state;
        struct obj *p =
                add_defined(e, DIR_POOL("/srv/images", POLICY("state='inactive'")), "p.xml");
        set_applied(p, NULL, true, true, BOOT_NOW);
        observe_pool_state(p, POOL_STATE_ACTIVE);
        struct obj *d = add_defined(
                e,
                DOM("vm", "",
                    "<disk type='volume' device='disk'><source pool='images' volume='a'/><target dev='vda' bus='virtio'/></disk>"),
                "vm.xml");
        observe_dom(d, DOM_RUNNING, NULL);
        struct plan_step s = plan(e, p);
        expect_step(&s, PHASE_STOPPING, ACT_NONE, "not stopped: in use by running domain/vm");
        observe_dom(d, DOM_SHUTOFF, NULL);
        s = plan(e, p);
        expect_step(&s, PHASE_STOPPING, ACT_POOL_STOP, "stopping: state='inactive'");
}

static void test_domain_removal(void **state) {
        struct engine *e = *state;
        struct obj *d = add_defined(e, DOM("vm", "", ""), "vm.xml");
        set_applied(d, NULL, false, true, BOOT_NOW);
        observe_dom(d, DOM_RUNNING, NULL);
        remove_file(d, NOW - DELAY);
        struct plan_step s = plan(e, d);
        expect_step(&s, PHASE_REMOVING, ACT_DOM_STOP, "file removed; shutting down");
        observe_dom(d, DOM_SHUTOFF, NULL);
        s = plan(e, d);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET, "file removed; stopped");
}

#define IFACE_MAC(mac) \
        "<interface type='network'><mac address='" mac "'/><source network='nat'/></interface>"
#define IFACE_NOMAC "<interface type='network'><source network='nat'/></interface>"

/* One MAC written in two files: both are blocked, each naming the other, whatever
 * they were doing; neither is started. */
static void test_domain_duplicate_mac_written(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, NET_XML_FOR_DOMAIN, "n.xml");
        n->phase = PHASE_READY;
        struct obj *a = add_defined(e, DOM("a", "", IFACE_MAC("52:54:00:00:00:01")), "/d/a.xml");
        struct obj *b = add_defined(
                e, DOM("b", "", IFACE_MAC("52:54:00:00:00:02") IFACE_MAC("52:54:00:00:00:01")),
                "/d/b.xml");
        observe_dom(a, DOM_SHUTOFF, NULL);
        observe_dom(b, DOM_SHUTOFF, NULL);
        struct plan_step s = plan(e, a);
        expect_step(
                &s, PHASE_BLOCKED, ACT_NONE,
                "MAC 52:54:00:00:00:01 (interface 1) is also used by interface 2 of domain/b (/d/b.xml)");
        s = plan(e, b);
        expect_step(
                &s, PHASE_BLOCKED, ACT_NONE,
                "MAC 52:54:00:00:00:01 (interface 2) is also used by interface 1 of domain/a (/d/a.xml)");
        /* Running: blocked too (not stopped for it, nor restarted). */
        set_applied(a, NULL, false, true, BOOT_NOW);
        observe_dom(a, DOM_RUNNING, NULL);
        s = plan(e, a);
        assert_int_equal(s.phase, PHASE_BLOCKED);
        assert_int_equal(s.action, ACT_NONE);
        free(s.message);
        /* Once one of them changes its MAC, both go on. */
        dv_object_free(b->desired);
        b->desired =
                parse(DOM("b", "", IFACE_MAC("52:54:00:00:00:02") IFACE_MAC("52:54:00:00:00:03")));
        s = plan(e, a);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        s = plan(e, b);
        expect_step(&s, PHASE_CREATING, ACT_DOM_START, "starting");
        /* A domain whose file is gone no longer holds its MAC. */
        dv_object_free(b->desired);
        b->desired = parse(DOM("b", "", IFACE_MAC("52:54:00:00:00:01")));
        remove_file(b, NOW - DELAY);
        s = plan(e, a);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
}

/* A MAC written in one file equal to the one generated for another domain: both are
 * blocked; the comparison ignores case. Generated MACs never conflict with themselves. */
static void test_domain_duplicate_mac_generated(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, NET_XML_FOR_DOMAIN, "n.xml");
        n->phase = PHASE_READY;
        struct obj *g = add_defined(e, DOM("g", "", IFACE_NOMAC IFACE_NOMAC), "/d/g.xml");
        set_applied(g, NULL, false, true, BOOT_NOW);
        strv_free(g->applied->macs);
        g->applied->macs = NULL;
        assert_int_equal(strv_push(&g->applied->macs, "52:54:00:aa:bb:01"), 0);
        assert_int_equal(strv_push(&g->applied->macs, "52:54:00:aa:bb:02"), 0);
        observe_dom(g, DOM_RUNNING, NULL);
        struct plan_step s = plan(e, g);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        struct obj *w = add_defined(e, DOM("w", "", IFACE_MAC("52:54:00:AA:BB:02")), "/d/w.xml");
        observe_dom(w, DOM_SHUTOFF, NULL);
        s = plan(e, w);
        expect_step(
                &s, PHASE_BLOCKED, ACT_NONE,
                "MAC 52:54:00:aa:bb:02 (interface 1) is also used by interface 2 of domain/g (/d/g.xml)");
        s = plan(e, g);
        expect_step(
                &s, PHASE_BLOCKED, ACT_NONE,
                "MAC 52:54:00:aa:bb:02 (interface 2) is also used by interface 1 of domain/w (/d/w.xml)");
        /* Not yet applied, a domain has no generated MAC to collide with. */
        struct obj *f = add_defined(e, DOM("f", "", IFACE_NOMAC), "/d/f.xml");
        observe_dom(f, DOM_SHUTOFF, NULL);
        s = plan(e, f);
        expect_step(&s, PHASE_CREATING, ACT_DOM_START, "starting");
}

#define CT(name, fs)                                                       \
        "<domain type='lxc'><name>" name "</name><memory>1048576</memory>" \
        "<os><type>exe</type><init>/sbin/init</init></os><devices>" fs "</devices></domain>"
#define CT_ROOT \
        "<filesystem type='mount'><source dir='/var/lib/ct0'/><target dir='/'/></filesystem>"

/* Every domain type is planned alike; what a driver cannot do here (no Xen) comes back
 * from its observe as BROKEN with the reason, and only that domain is blocked. */
static void test_domain_driver_unavailable(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, CT("ct0", CT_ROOT), "ct0.xml");
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_PENDING, ACT_NONE, "not observed yet");
        observe_dom(n, DOM_SHUTOFF, NULL);
        s = plan(e, n);
        expect_step(&s, PHASE_CREATING, ACT_DOM_START, "starting");
        dom_status_done(&n->dom_st);
        n->dom_st.state = DOM_BROKEN;
        n->dom_st.reason = strdup("Xen is not available on this host");
        s = plan(e, n);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE, "Xen is not available on this host");
}

#define CT_BLOCK(dev, ro) \
        "<filesystem type='block'><source dev='" dev "'/><target dir='/data'/>" ro "</filesystem>"

/* One block device or image read-write in two domains: the one that runs keeps it, the
 * other is blocked; neither starts while both only want to. Read-only users do not count. */
static void test_domain_rw_device_conflict(void **state) {
        struct engine *e = *state;
        struct obj *a = add_defined(e, CT("a", CT_ROOT CT_BLOCK("/dev/loop7", "")), "/d/a.xml");
        struct obj *b = add_defined(e, CT("b", CT_ROOT CT_BLOCK("/dev/loop7", "")), "/d/b.xml");
        observe_dom(a, DOM_SHUTOFF, NULL);
        observe_dom(b, DOM_SHUTOFF, NULL);
        struct plan_step s = plan(e, a);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "block device /dev/loop7 is also used read-write by domain/b (/d/b.xml)");
        s = plan(e, b);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "block device /dev/loop7 is also used read-write by domain/a (/d/a.xml)");
        /* a runs: it keeps the device and b stays blocked. */
        set_applied(a, NULL, false, true, BOOT_NOW);
        observe_dom(a, DOM_RUNNING, NULL);
        s = plan(e, a);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        s = plan(e, b);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "block device /dev/loop7 is also used read-write by domain/a (/d/a.xml)");
        /* Read-only in b: no conflict. */
        dv_object_free(b->desired);
        b->desired = parse(CT("b", CT_ROOT CT_BLOCK("/dev/loop7", "<readonly/>")));
        s = plan(e, b);
        expect_step(&s, PHASE_CREATING, ACT_DOM_START, "starting");
        /* A disk image of a QEMU domain written by two domains alike; a stopped one that
         * does not want to run holds nothing. */
        struct obj *q = add_defined(
                e,
                DOM("q", "",
                    "<disk type='file' device='disk'><source file='/srv/x.img'/><target dev='vda' bus='virtio'/></disk>"),
                "/d/q.xml");
        struct obj *r = add_defined(
                e,
                DOM("r", POLICY("state='stopped'"),
                    "<disk type='file' device='disk'><source file='/srv/x.img'/><target dev='vda' bus='virtio'/></disk>"),
                "/d/r.xml");
        observe_dom(q, DOM_SHUTOFF, NULL);
        observe_dom(r, DOM_SHUTOFF, NULL);
        s = plan(e, q);
        expect_step(&s, PHASE_CREATING, ACT_DOM_START, "starting");
        dv_object_free(r->desired);
        r->desired = parse(DOM(
                "r", "",
                "<disk type='file' device='disk'><source file='/srv/x.img'/><target dev='vda' bus='virtio'/></disk>"));
        s = plan(e, q);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "file /srv/x.img is also used read-write by domain/r (/d/r.xml)");
}

/* ---- networks ---- */

#define NET(name, bridge, addr, extra)                                                            \
        "<network><name>" name "</name>" extra "<forward mode='nat'/><bridge name='" bridge "'/>" \
        "<ip address='" addr "' prefix='24'/></network>"

static void observe_net(struct obj *o, enum net_state state, const char *drift) {
        net_status_done(&o->net_st);
        o->observed = true;
        o->net_st.state = state;
        o->net_st.drift = drift ? strdup(drift) : NULL;
}

static void test_network_absent_applies(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, NET("n1", "dvn1", "192.0.2.1", ""), "n1.xml");
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_PENDING, ACT_NONE, "not observed yet");
        observe_net(n, NET_ABSENT, NULL);
        s = plan(e, n);
        expect_step(&s, PHASE_CREATING, ACT_NET_APPLY, "creating bridge dvn1");
}

static void test_network_not_ours_blocked(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, NET("n1", "br0", "192.0.2.1", ""), "n1.xml");
        observe_net(n, NET_ACTIVE, NULL);
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "interface br0 exists and was not created by declvirt; not touching it");
        /* An applied record that does not say "created" (a refused apply) is not ours either. */
        set_applied(n, NULL, false, true, BOOT_NOW);
        s = plan(e, n);
        assert_int_equal(s.phase, PHASE_BLOCKED);
        free(s.message);
}

static void test_network_ours_ready_drift_inactive(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, NET("n1", "dvn1", "192.0.2.1", ""), "n1.xml");
        set_applied(n, NULL, true, true, BOOT_NOW);
        observe_net(n, NET_ACTIVE, NULL);
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL);
        observe_net(n, NET_ACTIVE, "dnsmasq not running");
        s = plan(e, n);
        expect_step(&s, PHASE_CREATING, ACT_NET_APPLY, "updating: dnsmasq not running");
        /* A changed file is applied even when nothing observed differs yet. */
        observe_net(n, NET_ACTIVE, NULL);
        set_applied(n, NET("n1", "dvn1", "192.0.2.1", "<mtu size='9000'/>"), true, true, BOOT_NOW);
        s = plan(e, n);
        expect_step(&s, PHASE_CREATING, ACT_NET_APPLY, "applying the changed definition");
        struct obj *m = add_defined(
                e, NET("n2", "dvn2", "198.51.100.1", POLICY("state='inactive'")), "n2.xml");
        set_applied(m, NULL, true, true, BOOT_NOW);
        observe_net(m, NET_ACTIVE, NULL);
        s = plan(e, m);
        expect_step(&s, PHASE_STOPPING, ACT_NET_STOP, "stopping: state='inactive'");
}

static void test_network_overlap(void **state) {
        struct engine *e = *state;
        struct obj *a = add_defined(e, NET("a", "dva", "192.0.2.1", ""), "/d/a.xml");
        struct obj *b =
                add_defined(e,
                            "<network><name>b</name><forward mode='nat'/><bridge name='dvb'/>"
                            "<ip address='192.0.2.129' prefix='25'/></network>",
                            "/d/b.xml");
        observe_net(a, NET_ABSENT, NULL);
        observe_net(b, NET_ABSENT, NULL);
        struct plan_step s = plan(e, a);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "subnet 192.0.2.1/24 overlaps 192.0.2.129/25 of network/b (/d/b.xml)");
        s = plan(e, b);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE,
                    "subnet 192.0.2.129/25 overlaps 192.0.2.1/24 of network/a (/d/a.xml)");
}

static void test_network_removal(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(e, NET("n1", "dvn1", "192.0.2.1", ""), "n1.xml");
        set_applied(n, NULL, true, true, BOOT_NOW);
        observe_net(n, NET_ACTIVE, NULL);
        remove_file(n, NOW - DELAY);
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_REMOVING, ACT_NET_STOP, "file removed; stopping");
        struct obj *k = add_defined(e, NET("k", "dvk", "198.51.100.1", POLICY("on-remove='keep'")),
                                    "k.xml");
        set_applied(k, NULL, true, true, BOOT_NOW);
        observe_net(k, NET_ACTIVE, NULL);
        remove_file(k, NOW - DELAY);
        s = plan(e, k);
        expect_step(&s, PHASE_REMOVING, ACT_FORGET,
                    "file removed; on-remove='keep': left as it is");
}

static void test_network_host_bridge(void **state) {
        struct engine *e = *state;
        struct obj *n = add_defined(
                e,
                "<network><name>host</name><forward mode='bridge'/><bridge name='br0'/></network>",
                "h.xml");
        observe_net(n, NET_ACTIVE, NULL);
        struct plan_step s = plan(e, n);
        expect_step(&s, PHASE_READY, ACT_NONE, NULL); /* observed, never created */
        observe_net(n, NET_ABSENT, NULL);
        s = plan(e, n);
        expect_step(&s, PHASE_BLOCKED, ACT_NONE, "host bridge br0 does not exist");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_pool_new_absent_builds),
                T(test_pool_not_observed),
                T(test_pool_broken_is_blocked),
                T(test_pool_dir_flag_false_starts),
                T(test_pool_ready),
                T(test_pool_fs_inactive_starts),
                T(test_pool_state_inactive),
                T(test_autostart_no_after_boot),
                T(test_autostart_no_same_boot),
                T(test_autostart_no_file_written_after_boot),
                T(test_autostart_yes_after_boot),
                T(test_autostart_no_dir_pool_flag_from_earlier_boot),
                T(test_pool_immutable_change),
                T(test_pool_immutable_never_realised),
                T(test_pool_immutable_type_and_source),
                T(test_pool_permissions),
                T(test_volume_waits_for_missing_pool),
                T(test_volume_waits_for_pool_not_ready),
                T(test_volume_create),
                T(test_volume_not_observed),
                T(test_volume_ready),
                T(test_volume_grow),
                T(test_volume_shrink_refused),
                T(test_volume_format_change_refused),
                T(test_volume_backing_change_refused),
                T(test_volume_unmanaged),
                T(test_volume_never_applied_file_removed),
                T(test_removal_pending_during_delay),
                T(test_removal_volume_keep),
                T(test_removal_volume_delete),
                T(test_removal_pool_keep),
                T(test_removal_pool_waits_for_volumes),
                T(test_removal_pool_delete),
                T(test_removal_pool_delete_not_created),
                T(test_removal_pool_stop),
                T(test_removal_pool_delete_not_observed),
                T(test_duplicate_never_applied),
                T(test_duplicate_with_applied_keeps_last_known_good),
                T(test_failed_action_backoff),
                T(test_busy_in_progress),
                T(test_undefined_non_volume_forgotten),
                T(test_domain_driver_unavailable),
                T(test_domain_rw_device_conflict),
                T(test_domain_start_waits_for_volume_and_network),
                T(test_domain_running_stop_change),
                T(test_domain_unconfined_and_uid_record),
                T(test_container_unconfined_and_id_record),
                T(test_domain_restart_policies),
                T(test_domain_holds_pool_and_network),
                T(test_domain_removal),
                T(test_domain_duplicate_mac_written),
                T(test_domain_duplicate_mac_generated),
                T(test_network_absent_applies),
                T(test_network_not_ours_blocked),
                T(test_network_ours_ready_drift_inactive),
                T(test_network_overlap),
                T(test_network_removal),
                T(test_network_host_bridge),
        };
        return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
