/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The logical (LVM) pool driver without a volume group: its argv against the golden
 * files in tests/data/logical (DECLVIRT_UPDATE_GOLDEN=1 rewrites them), the parsers of
 * recorded vgs/lvs JSON reports, name rules, and the refusals made before LVM runs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/storage.h"
#include "drivers/storage/logical.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DATA "tests/data/logical"
#define MiB  (1024ULL * 1024)

static struct pool_def *mk_pool(const char *name, const char *vg, const char *const *devs) {
        struct pool_def *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->type = POOL_LOGICAL;
        p->name = strdup(name);
        p->source.name = vg ? strdup(vg) : NULL;
        size_t n = 0;
        while (devs && devs[n])
                n++;
        p->source.devices = calloc(n ? n : 1, sizeof(*p->source.devices));
        for (size_t i = 0; i < n; i++)
                p->source.devices[i].path = strdup(devs[i]);
        p->source.n_devices = n;
        return p;
}

static void free_pool(struct pool_def *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->source.n_devices; i++)
                free(p->source.devices[i].path);
        free(p->source.devices);
        free(p->source.name);
        free(p->name);
        free(p);
}

static struct volume_def *mk_vol(const char *name, const char *format, uint64_t capacity) {
        struct volume_def *v = calloc(1, sizeof(*v));
        assert_non_null(v);
        v->name = strdup(name);
        v->target.format = format ? strdup(format) : NULL;
        v->has_capacity = true;
        v->capacity = capacity;
        return v;
}

static void free_vol(struct volume_def *v) {
        if (!v)
                return;
        free(v->name);
        free(v->target.format);
        free(v);
}

/* ---- golden argv ---------------------------------------------------------------------- */

static void check_golden(const char *name, char **argv) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.argv", DATA, name);
        assert_non_null(argv);
        test_check_golden_argv(path, argv);
}

#define GOLDEN(name, call)                               \
        do {                                             \
                _cleanup_strv_free_ char **argv_ = NULL; \
                char ***ret_ = &argv_;                   \
                assert_int_equal((call), 0);             \
                check_golden(name, argv_);               \
        } while (0)

static void test_golden_argv(void **state) {
        (void)state;
        static const char *const devs[] = {"/dev/loop4", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4",
                                           NULL};
        struct pool_def *p = mk_pool("pool1", "vg_data", devs);
        struct volume_def *v = mk_vol("lv.one+2", NULL, 16 * MiB);
        GOLDEN("vgs", drv_lvm_vgs_argv(p, ret_));
        GOLDEN("lvs", drv_lvm_lvs_argv(p, ret_));
        GOLDEN("pvcreate", drv_lvm_pvcreate_argv("/dev/loop4", ret_));
        GOLDEN("pvremove", drv_lvm_pvremove_argv("/dev/loop4", ret_));
        GOLDEN("vgcreate", drv_lvm_vgcreate_argv(p, ret_));
        GOLDEN("vgremove", drv_lvm_vgremove_argv(p, ret_));
        GOLDEN("vgchange-activate", drv_lvm_vgchange_argv(p, true, ret_));
        GOLDEN("vgchange-deactivate", drv_lvm_vgchange_argv(p, false, ret_));
        GOLDEN("vgchange-addtag", drv_lvm_vgtag_argv(p, true, ret_));
        GOLDEN("vgchange-deltag", drv_lvm_vgtag_argv(p, false, ret_));
        GOLDEN("lvcreate", drv_lvm_lvcreate_argv(p, v, ret_));
        GOLDEN("lvextend", drv_lvm_lvextend_argv(p, "lv.one+2", 32 * MiB, ret_));
        GOLDEN("lvremove", drv_lvm_lvremove_argv(p, "lv.one+2", ret_));
        free_vol(v);
        free_pool(p);

        /* Without <source><name>, the pool name is the VG name. */
        p = mk_pool("poolvg", NULL, NULL);
        GOLDEN("vgs-pool-name", drv_lvm_vgs_argv(p, ret_));
        free_pool(p);
}

static void test_argv_refusals(void **state) {
        (void)state;
        char **argv = NULL;
        struct pool_def *bad = mk_pool("p", "-vg", NULL);
        assert_int_equal(drv_lvm_vgs_argv(bad, &argv), -EINVAL);
        assert_int_equal(drv_lvm_vgchange_argv(bad, true, &argv), -EINVAL);
        free_pool(bad);
        bad = mk_pool("p", "vg with space", NULL);
        assert_int_equal(drv_lvm_lvs_argv(bad, &argv), -EINVAL);
        free_pool(bad);

        struct pool_def *nodev = mk_pool("p", "vg", NULL);
        assert_int_equal(drv_lvm_vgcreate_argv(nodev, &argv), -EINVAL);
        struct volume_def *v = mk_vol("snapshot0", NULL, 4 * MiB);
        assert_int_equal(drv_lvm_lvcreate_argv(nodev, v, &argv), -EINVAL);
        free(v->name);
        v->name = strdup("x_tmeta");
        assert_int_equal(drv_lvm_lvcreate_argv(nodev, v, &argv), -EINVAL);
        free(v->name);
        v->name = strdup("ok");
        v->capacity = 0;
        assert_int_equal(drv_lvm_lvcreate_argv(nodev, v, &argv), -EINVAL);
        assert_int_equal(drv_lvm_lvextend_argv(nodev, "a/b", 4 * MiB, &argv), -EINVAL);
        assert_int_equal(drv_lvm_lvremove_argv(nodev, "..", &argv), -EINVAL);
        free_vol(v);
        free_pool(nodev);

        static const char *const rel[] = {"loop4", NULL};
        struct pool_def *r = mk_pool("p", "vg", rel);
        assert_int_equal(drv_lvm_vgcreate_argv(r, &argv), -EINVAL);
        assert_int_equal(drv_lvm_pvcreate_argv("loop4", &argv), -EINVAL);
        assert_int_equal(drv_lvm_pvremove_argv(NULL, &argv), -EINVAL);
        free_pool(r);
        assert_null(argv);
}

static void test_names(void **state) {
        (void)state;
        assert_null(lvm_name_problem("vg0"));
        assert_null(lvm_name_problem("a.b_c+d-e"));
        assert_non_null(lvm_name_problem(NULL));
        assert_non_null(lvm_name_problem(""));
        assert_non_null(lvm_name_problem("-x"));
        assert_non_null(lvm_name_problem("."));
        assert_non_null(lvm_name_problem(".."));
        assert_non_null(lvm_name_problem("a/b"));
        assert_non_null(lvm_name_problem("a:b"));
        char longname[130];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_non_null(lvm_name_problem(longname));

        const struct storage_driver *drv = storage_driver_get(POOL_LOGICAL);
        assert_non_null(drv);
        struct pool_def *p = mk_pool("p", "vg1", NULL);
        _cleanup_free_ char *path = drv->vol_path(p, "lv1");
        assert_string_equal(path, "/dev/vg1/lv1");
        assert_null(drv->vol_path(p, "pvmove0"));
        assert_null(drv->vol_path(p, "a:b"));
        free_pool(p);
}

/* ---- parsers -------------------------------------------------------------------------- */

static char *data(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", DATA, name);
        return test_read_file(path, NULL);
}

static void test_parse_vgs(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        struct lvm_vg_info vg = {0};
        _cleanup_free_ char *two = data("vgs-two-pvs.json");
        assert_int_equal(drv_lvm_parse_vgs(two, "vgx", &vg, &err), 0);
        assert_true(vg.found);
        assert_int_equal(vg.size, 125829120);
        assert_int_equal(vg.free, 113246208);
        assert_int_equal(vg.extent_size, 4194304);
        assert_int_equal(vg.seqno, 7);
        assert_int_equal(strv_length(vg.pvs), 2);
        assert_string_equal(vg.pvs[0], "/dev/loop4");
        assert_string_equal(vg.pvs[1], "/dev/loop5");
        assert_int_equal(strv_length(vg.tags), 0);
        lvm_vg_info_done(&vg);

        /* Another VG's rows are not ours. */
        assert_int_equal(drv_lvm_parse_vgs(two, "vgy", &vg, &err), 0);
        assert_false(vg.found);
        lvm_vg_info_done(&vg);

        _cleanup_free_ char *none = data("vgs-none.json");
        assert_int_equal(drv_lvm_parse_vgs(none, "vgx", &vg, &err), 0);
        assert_false(vg.found);
        lvm_vg_info_done(&vg);

        _cleanup_free_ char *tagged = data("vgs-tagged.json");
        assert_int_equal(drv_lvm_parse_vgs(tagged, "vgx", &vg, &err), 0);
        assert_true(vg.found);
        assert_int_equal(strv_length(vg.tags), 2);
        assert_true(strv_contains(vg.tags, LVM_STOPPED_TAG));
        assert_true(strv_contains(vg.pvs, "[unknown]"));
        lvm_vg_info_done(&vg);
        assert_false(dv_error_failed(&err));

        _cleanup_free_ char *badnum = data("vgs-bad-number.json");
        assert_int_equal(drv_lvm_parse_vgs(badnum, "vgx", &vg, &err), -EBADMSG);
        assert_non_null(strstr(dv_error_message(&err), "vg_size"));
        dv_error_clear(&err);

        _cleanup_free_ char *trunc = data("vgs-truncated.json");
        assert_int_equal(drv_lvm_parse_vgs(trunc, "vgx", &vg, &err), -EBADMSG);
        dv_error_clear(&err);
        assert_int_equal(drv_lvm_parse_vgs("", "vgx", &vg, &err), -EBADMSG);
        dv_error_clear(&err);
        assert_int_equal(drv_lvm_parse_vgs(NULL, "vgx", &vg, &err), -EBADMSG);
        dv_error_clear(&err);
        assert_int_equal(drv_lvm_parse_vgs("{\"report\": {}}", "vgx", &vg, &err), -EBADMSG);
        dv_error_clear(&err);
        assert_int_equal(drv_lvm_parse_vgs("{\"report\": [{\"vg\": 3}]}", "vgx", &vg, &err),
                         -EBADMSG);
        dv_error_clear(&err);
}

static void test_parse_lvs(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        struct lvm_lv_info *lv = NULL;
        size_t n = 0;
        _cleanup_free_ char *seg = data("lvs-segments.json");
        assert_int_equal(drv_lvm_parse_lvs(seg, &lv, &n, &err), 0);
        /* One entry per LV although "big" has a row per segment. */
        assert_int_equal(n, 4);
        assert_string_equal(lv[0].name, "big");
        assert_int_equal(lv[0].size, 104857600);
        assert_int_equal(lv[0].attr[4], 'a');
        assert_null(lv[0].origin);
        assert_string_equal(lv[2].name, "root-snap");
        assert_string_equal(lv[2].origin, "root");
        assert_string_equal(lv[3].attr, "-wi------k");
        lvm_lv_info_array_free(lv, n);

        _cleanup_free_ char *dis = data("lvs-activation-disabled.json");
        assert_int_equal(drv_lvm_parse_lvs(dis, &lv, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(lv[0].attr[4], 'X');
        lvm_lv_info_array_free(lv, n);
        assert_false(dv_error_failed(&err));

        _cleanup_free_ char *noname = data("lvs-no-name.json");
        assert_int_equal(drv_lvm_parse_lvs(noname, &lv, &n, &err), -EBADMSG);
        assert_non_null(strstr(dv_error_message(&err), "lv_name"));
        dv_error_clear(&err);
}

/* ---- refusals with real LVM tools (no volume group: a filter that accepts nothing) ------ */

struct fixture {
        char *dir;
        char *old_lvm;
        bool have_lvm;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        f->dir = test_mkdtemp("declvirt-logical");
        const char *old = getenv("LVM_SYSTEM_DIR");
        f->old_lvm = old ? strdup(old) : NULL;
        /* Nothing on this host is visible to LVM: these tests never see a real VG. */
        const char *conf =
                "devices {\n    global_filter = [ \"r|.*|\" ]\n    filter = [ \"r|.*|\" ]\n"
                "    use_devicesfile = 0\n    obtain_device_list_from_udev = 0\n}\n"
                "global {\n    activation = 0\n}\n";
        _cleanup_free_ char *path = path_join(f->dir, "lvm.conf");
        assert_int_equal(write_file_atomic(path, conf, strlen(conf), 0644), 0);
        setenv("LVM_SYSTEM_DIR", f->dir, 1);
        f->have_lvm = geteuid() == 0 && test_have_program("vgs");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        if (f->old_lvm)
                setenv("LVM_SYSTEM_DIR", f->old_lvm, 1);
        else
                unsetenv("LVM_SYSTEM_DIR");
        test_rm_rf(f->dir);
        free(f->old_lvm);
        free(f->dir);
        free(f);
        lvm_cache_clear();
        return 0;
}

#define NEED_LVM(f)                                                                            \
        do {                                                                                   \
                if (!(f)->have_lvm) {                                                          \
                        print_message("needs root and the LVM tools (Debian package lvm2)\n"); \
                        skip();                                                                \
                }                                                                              \
        } while (0)

static char *mk_file(struct fixture *f, const char *name, uint64_t size) {
        char *p = path_join(f->dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        close(fd);
        return p;
}

static void test_observe_absent_and_refusals(void **state) {
        struct fixture *f = *state;
        NEED_LVM(f);
        const struct storage_driver *drv = storage_driver_get(POOL_LOGICAL);
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status st = {0};

        /* No VG and no devices: nothing to build from. */
        struct pool_def *p = mk_pool("p", "dvunit_none", NULL);
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "lists no source device"));
        pool_status_done(&st);
        assert_int_equal(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -ENOENT);
        dv_error_clear(&err);
        free_pool(p);

        /* Empty devices: absent, to be built. */
        _cleanup_free_ char *empty = mk_file(f, "empty.img", 8 * MiB);
        const char *devs[] = {empty, NULL};
        p = mk_pool("p", "dvunit_empty", devs);
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_ABSENT);
        pool_status_done(&st);
        /* build='no' never creates. */
        assert_int_equal(drv->pool_build(p, DV_BUILD_NO, &err), -ENOENT);
        assert_non_null(strstr(dv_error_message(&err), "build='no'"));
        dv_error_clear(&err);
        /* A regular file is not a block device: refused before pvcreate. */
        assert_int_equal(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -EINVAL);
        assert_non_null(strstr(dv_error_message(&err), "not a block device"));
        dv_error_clear(&err);
        free_pool(p);

        /* A missing device. */
        _cleanup_free_ char *missing = path_join(f->dir, "missing.img");
        const char *mdevs[] = {empty, missing, NULL};
        p = mk_pool("p", "dvunit_missing", mdevs);
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "missing.img"));
        pool_status_done(&st);
        assert_true(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err) < 0);
        dv_error_clear(&err);
        free_pool(p);

        /* The same device twice. */
        const char *twice[] = {empty, empty, NULL};
        p = mk_pool("p", "dvunit_twice", twice);
        assert_int_equal(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -EINVAL);
        assert_non_null(strstr(dv_error_message(&err), "same device twice"));
        dv_error_clear(&err);
        free_pool(p);

        /* No VG to start, stop or delete. */
        p = mk_pool("p", "dvunit_none", NULL);
        assert_int_equal(drv->pool_start(p, &err), -ENOENT);
        dv_error_clear(&err);
        assert_int_equal(drv->pool_stop(p, &err), 0);
        assert_int_equal(drv->pool_delete(p, &err), 0);
        struct volume_def *v = mk_vol("lv1", NULL, 4 * MiB);
        assert_int_equal(drv->vol_create(p, v, &err), -ENOENT);
        assert_non_null(strstr(dv_error_message(&err), "dvunit_none does not exist"));
        dv_error_clear(&err);
        free_vol(v);
        free_pool(p);
}

static void test_signature_refused(void **state) {
        struct fixture *f = *state;
        NEED_LVM(f);
        if (!test_have_program("mkfs.ext4")) {
                print_message("mkfs.ext4 is not installed (Debian package e2fsprogs)\n");
                skip();
        }
        _cleanup_free_ char *img = mk_file(f, "ext4.img", 8 * MiB);
        char *const mkfs[] = {"mkfs.ext4", "-q", "-F", img, NULL};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cmd_run(mkfs, NULL, NULL, &err), 0);

        const struct storage_driver *drv = storage_driver_get(POOL_LOGICAL);
        const char *devs[] = {img, NULL};
        struct pool_def *p = mk_pool("p", "dvunit_ext4", devs);
        struct pool_status st = {0};
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "%s holds a ext4 signature; not formatting (build='if-empty')",
                             img) > 0);
        assert_string_equal(st.reason, want);
        pool_status_done(&st);
        assert_int_equal(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -EEXIST);
        assert_true(STORAGE_IS_REFUSAL(err.code));
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        free_pool(p);
}

static void test_volume_refusals(void **state) {
        (void)state;
        const struct storage_driver *drv = storage_driver_get(POOL_LOGICAL);
        struct dv_error err = DV_ERROR_INIT;
        struct pool_def *p = mk_pool("p", "vg", NULL);
        /* Refused before any command runs. */
        struct volume_def *v = mk_vol("img", "qcow2", 4 * MiB);
        assert_int_equal(drv->vol_create(p, v, &err), -EOPNOTSUPP);
        assert_non_null(strstr(dv_error_message(&err), "qcow2"));
        dv_error_clear(&err);
        free_vol(v);
        v = mk_vol("with:colon", NULL, 4 * MiB);
        assert_int_equal(drv->vol_create(p, v, &err), -EINVAL);
        dv_error_clear(&err);
        free_vol(v);
        v = mk_vol("nocap", NULL, 0);
        v->has_capacity = false;
        assert_int_equal(drv->vol_create(p, v, &err), -EINVAL);
        dv_error_clear(&err);
        free_vol(v);
        assert_int_equal(drv->vol_delete(p, "../x", &err), -EINVAL);
        dv_error_clear(&err);
        free_pool(p);

        struct pool_status st = {0};
        p = mk_pool("p", "bad name", NULL);
        assert_int_equal(drv->pool_observe(p, &st, &err), -EINVAL);
        assert_non_null(strstr(dv_error_message(&err), "volume group name"));
        dv_error_clear(&err);
        free_pool(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_argv),
                cmocka_unit_test(test_argv_refusals),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_parse_vgs),
                cmocka_unit_test(test_parse_lvs),
                cmocka_unit_test_setup_teardown(test_observe_absent_and_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signature_refused, setup, teardown),
                cmocka_unit_test(test_volume_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
