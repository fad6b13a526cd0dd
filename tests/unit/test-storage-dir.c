/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dir pool driver on the real file system (a mkdtemp directory): build,
 * observe, delete, raw and qcow2 volumes, listing with format detection and the
 * fileinfo cache, resize, the space check; and its qemu-img argv against the
 * golden files in tests/data/dir (DECLVIRT_UPDATE_GOLDEN=1 rewrites them). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>
#include <json_object.h>
#include <json_tokener.h>

#include "drivers/cmd.h"
#include "drivers/storage.h"
#include "drivers/storage/dir.h"
#include "drivers/storage/fileinfo.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define GOLDEN "tests/data/dir"
#define MiB    (1024ULL * 1024)

/* ---- building definitions by hand (the model's parser is written elsewhere) ------------- */

static struct pool_def *mk_pool(const char *name, const char *path) {
        struct pool_def *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->type = POOL_DIR;
        p->name = strdup(name);
        p->target.path = strdup(path);
        return p;
}

static void free_pool(struct pool_def *p) {
        if (!p)
                return;
        free(p->name);
        free(p->target.path);
        free(p->target.perms.label);
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

static void set_alloc(struct volume_def *v, uint64_t a) {
        v->has_allocation = true;
        v->allocation = a;
}

static void set_backing(struct volume_def *v, const char *path, const char *format) {
        v->has_backing = true;
        v->backing.path = strdup(path);
        v->backing.format = format ? strdup(format) : NULL;
}

static void free_vol(struct volume_def *v) {
        if (!v)
                return;
        free(v->name);
        free(v->type);
        free(v->key);
        free(v->target.path);
        free(v->target.format);
        free(v->target.perms.label);
        free(v->backing.path);
        free(v->backing.format);
        free(v);
}

struct fixture {
        char *dir;
        char *target;
        struct pool_def *pool;
        const struct storage_driver *drv;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        f->dir = test_mkdtemp("declvirt-dir");
        f->target = path_join(f->dir, "pool");
        f->pool = mk_pool("p1", f->target);
        f->drv = storage_driver_get(POOL_DIR);
        umask(022);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        test_rm_rf(f->dir);
        free_pool(f->pool);
        free(f->target);
        free(f->dir);
        free(f);
        fileinfo_cache_clear();
        return 0;
}

static void build_pool(struct fixture *f) {
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), 0);
        assert_false(dv_error_failed(&err));
}

static char *vpath(struct fixture *f, const char *name) {
        char *p = path_join(f->target, name);
        assert_non_null(p);
        return p;
}

static bool have_qemu_img(void) {
        return access("/usr/bin/qemu-img", X_OK) == 0 || access("/usr/sbin/qemu-img", X_OK) == 0 ||
               access("/bin/qemu-img", X_OK) == 0;
}

#define SKIP_WITHOUT_QEMU_IMG()                                                                   \
        do {                                                                                      \
                if (!have_qemu_img()) {                                                           \
                        print_message("qemu-img is not installed (Debian package qemu-utils)\n"); \
                        skip();                                                                   \
                }                                                                                 \
        } while (0)

/* qemu-img info of a file, as the test's own check of what the driver made. */
static struct json_object *qemu_img_info(const char *path) {
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        int r = cmd_run(
                (char *const[]){"qemu-img", "info", "-U", "--output=json", (char *)path, NULL},
                NULL, &res, &err);
        if (r < 0)
                fail_msg("qemu-img info %s: %s", path, dv_error_message(&err));
        struct json_object *o = json_tokener_parse(res.out);
        assert_non_null(o);
        cmd_result_done(&res);
        return o;
}

static int64_t json_int(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_int64(v);
}

static const char *json_str(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return json_object_get_string(v);
}

static void assert_absent(const char *path) {
        struct stat st;
        if (lstat(path, &st) == 0)
                fail_msg("%s exists", path);
}

/* ---- golden argv ---------------------------------------------------------------------- */

static void check_golden(const char *name, char **argv) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.argv", GOLDEN, name);
        test_check_golden_argv(path, argv);
}

static void test_golden_argv(void **state) {
        (void)state;
        struct pool_def *pool = mk_pool("images", "/var/lib/declvirt/images");
        struct {
                const char *golden;
                struct volume_def *vol;
                const char *detected;
        } cases[] = {
                {"create-qcow2", mk_vol("disk1.qcow2", "qcow2", 10ULL << 30), NULL},
                {"create-qcow2-prealloc", mk_vol("disk2.qcow2", "qcow2", 20ULL << 30), NULL},
                {"create-qcow2-alloc-zero", mk_vol("disk3.qcow2", "qcow2", 1ULL << 30), NULL},
                {"create-qcow2-backing", mk_vol("web1.qcow2", "qcow2", 10ULL << 30), NULL},
                {"create-qcow2-backing-detected", mk_vol("web2:root", "qcow2", 5000000000ULL),
                 "iso"},
        };
        set_alloc(cases[1].vol, 1);
        set_alloc(cases[2].vol, 0);
        set_backing(cases[3].vol, "/var/lib/declvirt/images/debian 12.qcow2", "qcow2");
        set_backing(cases[4].vol, "/var/lib/declvirt/images/base.iso", NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char **argv = NULL;
                assert_int_equal(dir_qemu_img_create_argv(cases[i].vol, "/proc/4242/fd/7",
                                                          cases[i].detected, &argv),
                                 0);
                check_golden(cases[i].golden, argv);
                strv_free(argv);
                free_vol(cases[i].vol);
        }

        char **argv = NULL;
        assert_int_equal(dir_qemu_img_resize_argv("/var/lib/declvirt/images/disk1.qcow2", "qcow2",
                                                  21474836480ULL, &argv),
                         0);
        check_golden("resize-qcow2", argv);
        strv_free(argv);
        argv = NULL;
        assert_int_equal(
                fileinfo_qemu_img_info_argv("/var/lib/declvirt/images/disk1.qcow2", "qcow2", &argv),
                0);
        check_golden("info-qcow2", argv);
        strv_free(argv);
        argv = NULL;
        assert_int_equal(fileinfo_qemu_img_info_argv("/srv/pool/cd.iso", "iso", &argv), 0);
        check_golden("info-iso", argv);
        strv_free(argv);
        argv = NULL;

        /* Refusals. */
        struct volume_def *v = mk_vol("r.img", "raw", 1024);
        assert_int_equal(dir_qemu_img_create_argv(v, "/proc/4242/fd/7", NULL, &argv), -EOPNOTSUPP);
        free_vol(v);
        v = mk_vol("rel.qcow2", "qcow2", 1024);
        set_backing(v, "base.qcow2", "qcow2");
        assert_int_equal(dir_qemu_img_create_argv(v, "/proc/4242/fd/7", NULL, &argv), -EINVAL);
        free_vol(v);
        v = mk_vol("nofmt.qcow2", "qcow2", 1024);
        set_backing(v, "/b.qcow2", NULL);
        assert_int_equal(dir_qemu_img_create_argv(v, "/proc/4242/fd/7", NULL, &argv), -EINVAL);
        free_vol(v);
        v = mk_vol("relfile.qcow2", "qcow2", 1024);
        assert_int_equal(dir_qemu_img_create_argv(v, "relfile.qcow2", NULL, &argv), -EINVAL);
        free_vol(v);
        assert_null(argv);
        assert_int_equal(fileinfo_qemu_img_info_argv("relative.qcow2", "qcow2", &argv), -EINVAL);
        assert_int_equal(dir_qemu_img_resize_argv("nbd:host:1", "qcow2", 1, &argv), -EINVAL);
        free_pool(pool);
}

static void test_temp_path(void **state) {
        (void)state;
        struct pool_def *pool = mk_pool("images", "/srv/images");
        _cleanup_free_ char *t = dir_vol_temp_path(pool, "disk.qcow2");
        assert_string_equal(t, "/srv/images/.disk.qcow2.creating");
        char longname[256];
        memset(longname, 'x', 240); /* the longest volume name */
        longname[240] = '\0';
        _cleanup_free_ char *l = dir_vol_temp_path(pool, longname);
        assert_non_null(l);
        assert_true(strlen(strrchr(l, '/') + 1) <= 255);
        assert_null(dir_vol_temp_path(pool, "../etc"));
        free_pool(pool);
}

static void test_registry(void **state) {
        (void)state;
        assert_ptr_equal(storage_driver_get(POOL_DIR), &storage_driver_dir);
        assert_int_equal(storage_driver_dir.type, POOL_DIR);
        assert_null(storage_driver_get(_POOL_TYPE_MAX));
        assert_null(storage_driver_get((enum pool_type) - 1));
        pool_status_done(NULL);
        vol_status_done(NULL);
        vol_status_array_free(NULL, 0);
}

/* ---- format detection and qemu-img info parsing (pure) ---------------------------------- */

static void test_detect_format(void **state) {
        (void)state;
        unsigned char *h = calloc(1, FILEINFO_HEADER_SIZE);
        assert_string_equal(fileinfo_detect_format(h, FILEINFO_HEADER_SIZE), "raw");
        assert_string_equal(fileinfo_detect_format(h, 0), "raw");
        memcpy(h, "QFI\xfb\0\0\0\3", 8);
        assert_string_equal(fileinfo_detect_format(h, 8), "qcow2");
        memcpy(h, "QFI\xfb\0\0\0\2", 8);
        assert_string_equal(fileinfo_detect_format(h, 512), "qcow2");
        memcpy(h, "QFI\xfb\0\0\0\1", 8);
        assert_string_equal(fileinfo_detect_format(h, 512), "qcow");
        assert_string_equal(fileinfo_detect_format(h, 4), "raw"); /* magic without a version */
        memcpy(h, "KDMV\1\0\0\0", 8);
        assert_string_equal(fileinfo_detect_format(h, 512), "vmdk");
        memcpy(h, "conectix", 8);
        assert_string_equal(fileinfo_detect_format(h, 512), "vpc");
        memcpy(h, "QED\0", 4);
        assert_string_equal(fileinfo_detect_format(h, 512), "qed");
        memcpy(h, "LUKS\xba\xbe", 6);
        assert_string_equal(fileinfo_detect_format(h, 512), "luks");
        memset(h, 0, 512);
        memcpy(h + 64, "\x7f\x10\xda\xbe", 4);
        assert_string_equal(fileinfo_detect_format(h, 512), "vdi");
        memset(h, 0, 512);
        memcpy(h + 32769, "CD001", 5);
        assert_string_equal(fileinfo_detect_format(h, FILEINFO_HEADER_SIZE), "iso");
        assert_string_equal(fileinfo_detect_format(h, 32770), "raw"); /* file too short */
        free(h);
        assert_true(fileinfo_format_uses_qemu_img("qcow2"));
        assert_true(fileinfo_format_uses_qemu_img("vmdk"));
        assert_false(fileinfo_format_uses_qemu_img("raw"));
        assert_false(fileinfo_format_uses_qemu_img("iso"));
        assert_string_equal(fileinfo_qemu_format("iso"), "raw");
}

static void test_parse_qemu_img_info(void **state) {
        (void)state;
        const char *j = "{\"backing-filename-format\": \"qcow2\", \"virtual-size\": 2097152, "
                        "\"filename\": \"/x\","
                        " \"format\": \"qcow2\", \"actual-size\": 200704, \"backing-filename\": "
                        "\"/b.qcow2\","
                        " \"format-specific\": {\"type\": \"qcow2\"}}";
        struct fileinfo fi = {0};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(fileinfo_parse_qemu_img_info(j, strlen(j), &fi, &err), 0);
        assert_string_equal(fi.format, "qcow2");
        assert_int_equal(fi.capacity, 2097152);
        assert_int_equal(fi.allocation, 200704);
        assert_string_equal(fi.backing_path, "/b.qcow2");
        assert_string_equal(fi.backing_format, "qcow2");
        fileinfo_done(&fi);

        /* Sizes beyond 2^32 and optional fields missing. */
        j = "{\"virtual-size\": 10995116277760, \"format\": \"vmdk\"}";
        assert_int_equal(fileinfo_parse_qemu_img_info(j, strlen(j), &fi, &err), 0);
        assert_int_equal(fi.capacity, 10995116277760ULL);
        assert_null(fi.backing_path);
        fileinfo_done(&fi);

        const char *bad[] = {"",
                             "not json",
                             "[1,2]",
                             "{\"format\": \"qcow2\"}",
                             "{\"virtual-size\": -1}",
                             "{\"virtual-size\": \"big\"}",
                             "{\"virtual-size\": 1",
                             "{\"virtual-size\": 1}}"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (fileinfo_parse_qemu_img_info(bad[i], strlen(bad[i]), &fi, &err) >= 0)
                        fail_msg("accepted: %s", bad[i]);
                assert_true(dv_error_failed(&err));
                dv_error_clear(&err);
        }
}

/* ---- the pool ---------------------------------------------------------------------------- */

static void test_pool_build_observe(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status st = {0};
        _cleanup_free_ char *deep = NULL;
        assert_true(asprintf(&deep, "%s/a/b/pool", f->dir) > 0);
        free(f->pool->target.path);
        f->pool->target.path = strdup(deep);

        assert_int_equal(f->drv->pool_observe(f->pool, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_ABSENT);
        pool_status_done(&st);

        /* build='no' does not create. */
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_NO, &err), -ENOENT);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "target %s does not exist and build='no'", deep) > 0);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        assert_absent(deep);

        /* Written permissions; the umask does not get in the way. */
        umask(077);
        f->pool->target.perms.has_mode = true;
        f->pool->target.perms.mode = 0750;
        bool root = geteuid() == 0;
        if (root) {
                f->pool->target.perms.has_owner = f->pool->target.perms.has_group = true;
                f->pool->target.perms.owner = 1234;
                f->pool->target.perms.group = 2345;
        }
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), 0);
        umask(022);
        struct stat sb;
        assert_int_equal(stat(deep, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0750);
        if (root) {
                assert_int_equal(sb.st_uid, 1234);
                assert_int_equal(sb.st_gid, 2345);
        }
        _cleanup_free_ char *parent = NULL;
        assert_true(asprintf(&parent, "%s/a/b", f->dir) > 0);
        assert_int_equal(stat(parent, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));

        assert_int_equal(f->drv->pool_observe(f->pool, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_ACTIVE);
        assert_true(st.has_sizes);
        assert_true(st.capacity > 0);
        assert_true(st.available <= st.capacity);
        assert_true(st.allocation <= st.capacity);
        assert_true(st.has_perms);
        assert_int_equal(st.mode, 0750);
        if (root)
                assert_int_equal(st.owner, 1234);
        pool_status_done(&st);

        /* Built already: building again only applies permissions. */
        f->pool->target.perms.mode = 0700;
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_NO, &err), 0);
        assert_int_equal(stat(deep, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0700);

        /* Live permission changes. */
        f->pool->target.perms.mode = 0755;
        assert_int_equal(f->drv->pool_set_perms(f->pool, &err), 0);
        assert_int_equal(stat(deep, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0755);
        assert_int_equal(f->drv->pool_start(f->pool, &err), 0);
        assert_int_equal(f->drv->pool_stop(f->pool, &err), 0);
        assert_false(dv_error_failed(&err));

        /* Without <permissions>: 0711, whatever the umask. */
        struct pool_def *p2 = mk_pool("p2", f->target);
        umask(077);
        assert_int_equal(f->drv->pool_build(p2, DV_BUILD_IF_EMPTY, &err), 0);
        umask(022);
        assert_int_equal(stat(f->target, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0711);
        /* Nothing written: set_perms leaves it alone. */
        assert_int_equal(chmod(f->target, 0705), 0);
        assert_int_equal(f->drv->pool_set_perms(p2, &err), 0);
        assert_int_equal(stat(f->target, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0705);
        free_pool(p2);

        /* A relative target is refused. */
        p2 = mk_pool("p3", "relative/dir");
        assert_int_equal(f->drv->pool_build(p2, DV_BUILD_IF_EMPTY, &err), -EINVAL);
        dv_error_clear(&err);
        free_pool(p2);
}

static void test_pool_target_is_file(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(write_file_atomic(f->target, "x", 1, 0644), 0);
        struct pool_status st = {0};
        assert_int_equal(f->drv->pool_observe(f->pool, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "target path %s is not a directory", f->target) > 0);
        assert_string_equal(st.reason, want);
        pool_status_done(&st);
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), -ENOTDIR);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        /* Untouched. */
        struct stat sb;
        assert_int_equal(stat(f->target, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
}

static void test_pool_delete(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        _cleanup_free_ char *file = vpath(f, "data.img");
        assert_int_equal(write_file_atomic(file, "data", 4, 0600), 0);
        assert_int_equal(f->drv->pool_delete(f->pool, &err), -ENOTEMPTY);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "pool directory %s is not empty", f->target) > 0);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        assert_int_equal(access(file, F_OK), 0);

        assert_int_equal(unlink(file), 0);
        assert_int_equal(f->drv->pool_delete(f->pool, &err), 0);
        assert_absent(f->target);
        /* Gone already: nothing to do. */
        assert_int_equal(f->drv->pool_delete(f->pool, &err), 0);
        assert_false(dv_error_failed(&err));
        struct pool_status st = {0};
        assert_int_equal(f->drv->pool_observe(f->pool, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_ABSENT);
        pool_status_done(&st);
}

/* ---- volumes ---------------------------------------------------------------------------- */

static void test_vol_path(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *p = f->drv->vol_path(f->pool, "disk.img");
        _cleanup_free_ char *want = vpath(f, "disk.img");
        assert_string_equal(p, want);
        assert_null(f->drv->vol_path(f->pool, "a/b"));
        assert_null(f->drv->vol_path(f->pool, ".."));
        assert_null(f->drv->vol_path(f->pool, ""));
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(f->drv->vol_delete(f->pool, "../x", &err), -EINVAL);
        dv_error_clear(&err);
}

static void test_raw_volumes(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        struct stat sb;

        /* Sparse: allocation 0. */
        struct volume_def *sparse = mk_vol("sparse.img", NULL, 64 * MiB);
        set_alloc(sparse, 0);
        assert_int_equal(f->drv->vol_create(f->pool, sparse, &err), 0);
        _cleanup_free_ char *sp = vpath(f, "sparse.img");
        assert_int_equal(stat(sp, &sb), 0);
        assert_int_equal(sb.st_size, 64 * MiB);
        assert_true((uint64_t)sb.st_blocks * 512 < MiB);
        assert_int_equal(sb.st_mode & 07777, 0600);

        /* No allocation written: fully allocated (libvirt's rule). */
        struct volume_def *full = mk_vol("full.img", "raw", 32 * MiB);
        full->target.perms.has_mode = true;
        full->target.perms.mode = 0640;
        assert_int_equal(f->drv->vol_create(f->pool, full, &err), 0);
        _cleanup_free_ char *fp = vpath(f, "full.img");
        assert_int_equal(stat(fp, &sb), 0);
        assert_int_equal(sb.st_size, 32 * MiB);
        assert_true((uint64_t)sb.st_blocks * 512 >= 32 * MiB);
        assert_int_equal(sb.st_mode & 07777, 0640);

        /* Partly allocated. */
        struct volume_def *part = mk_vol("part.img", "raw", 32 * MiB);
        set_alloc(part, 8 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, part, &err), 0);
        _cleanup_free_ char *pp = vpath(f, "part.img");
        assert_int_equal(stat(pp, &sb), 0);
        assert_true((uint64_t)sb.st_blocks * 512 >= 8 * MiB);
        assert_true((uint64_t)sb.st_blocks * 512 < 16 * MiB);
        assert_false(dv_error_failed(&err));

        /* Listed with stat's sizes. */
        struct vol_status *v = NULL;
        size_t n = 0;
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[0].name, "full.img");
        assert_string_equal(v[0].format, "raw");
        assert_string_equal(v[0].type, "file");
        assert_string_equal(v[0].path, fp);
        assert_int_equal(v[0].capacity, 32 * MiB);
        assert_true(v[0].allocation >= 32 * MiB);
        assert_string_equal(v[2].name, "sparse.img");
        assert_int_equal(v[2].capacity, 64 * MiB);
        assert_true(v[2].allocation < MiB);
        assert_null(v[2].backing_path);
        vol_status_array_free(v, n);

        /* Already there: EEXIST, and the file is left alone. */
        struct volume_def *again = mk_vol("full.img", "raw", 1 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, again, &err), -EEXIST);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "volume file %s already exists", fp) > 0);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        assert_int_equal(stat(fp, &sb), 0);
        assert_int_equal(sb.st_size, 32 * MiB);

        /* Formats other than raw and qcow2 are not made. */
        struct volume_def *vmdk = mk_vol("d.vmdk", "vmdk", MiB);
        assert_int_equal(f->drv->vol_create(f->pool, vmdk, &err), -EOPNOTSUPP);
        assert_string_equal(dv_error_message(&err), "format 'vmdk' cannot be created");
        dv_error_clear(&err);
        _cleanup_free_ char *vp = vpath(f, "d.vmdk");
        assert_absent(vp);

        /* Delete. */
        assert_int_equal(f->drv->vol_delete(f->pool, "part.img", &err), 0);
        assert_absent(pp);
        assert_int_equal(f->drv->vol_delete(f->pool, "part.img", &err), 0);
        assert_false(dv_error_failed(&err));

        free_vol(sparse);
        free_vol(full);
        free_vol(part);
        free_vol(again);
        free_vol(vmdk);
}

static void test_space_check(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        struct statvfs sv;
        assert_int_equal(statvfs(f->target, &sv), 0);
        uint64_t avail = (uint64_t)sv.f_frsize * sv.f_bavail;
        struct volume_def *big = mk_vol("big.img", "raw", avail + (1ULL << 30));
        assert_int_equal(f->drv->vol_create(f->pool, big, &err), -ENOSPC);
        char prefix[128];
        snprintf(prefix, sizeof(prefix),
                 "volume big.img needs %" PRIu64 " bytes but pool p1 has only ",
                 avail + ((uint64_t)1 << 30));
        const char *msg = dv_error_message(&err);
        assert_non_null(msg);
        assert_true(strncmp(msg, prefix, strlen(prefix)) == 0);
        assert_non_null(strstr(msg, " available"));
        dv_error_clear(&err);
        /* Nothing left behind, not even a temporary file. */
        _cleanup_free_ char *bp = vpath(f, "big.img");
        assert_absent(bp);
        assert_int_equal(rmdir(f->target), 0);
        assert_int_equal(mkdir(f->target, 0711), 0);

        /* The same size, sparse, needs no space up front. */
        set_alloc(big, 0);
        assert_int_equal(f->drv->vol_create(f->pool, big, &err), 0);
        struct stat sb;
        assert_int_equal(stat(bp, &sb), 0);
        assert_int_equal((uint64_t)sb.st_size, avail + (1ULL << 30));
        free_vol(big);
}

static void test_resize_raw(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        struct volume_def *sparse = mk_vol("s.img", "raw", 16 * MiB);
        set_alloc(sparse, 0);
        struct volume_def *full = mk_vol("f.img", "raw", 16 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, sparse, &err), 0);
        assert_int_equal(f->drv->vol_create(f->pool, full, &err), 0);

        assert_int_equal(f->drv->vol_resize(f->pool, sparse, 48 * MiB, &err), 0);
        assert_int_equal(f->drv->vol_resize(f->pool, full, 48 * MiB, &err), 0);
        assert_false(dv_error_failed(&err));
        struct stat sb;
        _cleanup_free_ char *sp = vpath(f, "s.img");
        _cleanup_free_ char *fp = vpath(f, "f.img");
        assert_int_equal(stat(sp, &sb), 0);
        assert_int_equal(sb.st_size, 48 * MiB);
        assert_true((uint64_t)sb.st_blocks * 512 < MiB); /* still sparse */
        assert_int_equal(stat(fp, &sb), 0);
        assert_int_equal(sb.st_size, 48 * MiB);
        assert_true((uint64_t)sb.st_blocks * 512 >= 48 * MiB); /* still fully allocated */

        /* Same size: nothing to do. */
        assert_int_equal(f->drv->vol_resize(f->pool, full, 48 * MiB, &err), 0);
        /* Smaller: refused, untouched. */
        assert_int_equal(f->drv->vol_resize(f->pool, full, 8 * MiB, &err), -EINVAL);
        assert_string_equal(
                dv_error_message(&err),
                "shrinking volume f.img from 50331648 to 8388608 bytes would lose data");
        dv_error_clear(&err);
        assert_int_equal(stat(fp, &sb), 0);
        assert_int_equal(sb.st_size, 48 * MiB);

        /* A volume that is not there. */
        struct volume_def *none = mk_vol("none.img", "raw", MiB);
        assert_int_equal(f->drv->vol_resize(f->pool, none, 2 * MiB, &err), -ENOENT);
        dv_error_clear(&err);
        free_vol(none);
        free_vol(sparse);
        free_vol(full);
}

static void test_qcow2(void **state) {
        struct fixture *f = *state;
        SKIP_WITHOUT_QEMU_IMG();
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);

        struct volume_def *base = mk_vol("base.qcow2", "qcow2", 64 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, base, &err), 0);
        _cleanup_free_ char *bp = vpath(f, "base.qcow2");
        struct stat sb;
        assert_int_equal(stat(bp, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);
        _cleanup_free_ char *tmp = dir_vol_temp_path(f->pool, "base.qcow2");
        assert_absent(tmp);
        struct json_object *info = qemu_img_info(bp);
        assert_string_equal(json_str(info, "format"), "qcow2");
        assert_int_equal(json_int(info, "virtual-size"), 64 * MiB);
        json_object_put(info);

        /* An overlay; the backing format is detected when not written. */
        struct volume_def *ov = mk_vol("web1.qcow2", "qcow2", 128 * MiB);
        set_backing(ov, bp, NULL);
        ov->target.perms.has_mode = true;
        ov->target.perms.mode = 0644;
        assert_int_equal(f->drv->vol_create(f->pool, ov, &err), 0);
        _cleanup_free_ char *op = vpath(f, "web1.qcow2");
        info = qemu_img_info(op);
        assert_int_equal(json_int(info, "virtual-size"), 128 * MiB);
        assert_string_equal(json_str(info, "backing-filename"), bp);
        assert_string_equal(json_str(info, "backing-filename-format"), "qcow2");
        json_object_put(info);
        assert_int_equal(stat(op, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0644);

        /* preallocation=metadata when an allocation is written. */
        struct volume_def *pre = mk_vol("pre.qcow2", "qcow2", 256 * MiB);
        set_alloc(pre, 256 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, pre, &err), 0);
        _cleanup_free_ char *pp = vpath(f, "pre.qcow2");
        struct stat sp, sbase;
        assert_int_equal(stat(pp, &sp), 0);
        assert_int_equal(stat(bp, &sbase), 0);
        assert_true(sp.st_blocks > sbase.st_blocks);
        assert_false(dv_error_failed(&err));

        /* Listing: format, virtual size and backing store from qemu-img info. */
        struct vol_status *v = NULL;
        size_t n = 0;
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[2].name, "web1.qcow2");
        assert_string_equal(v[2].format, "qcow2");
        assert_int_equal(v[2].capacity, 128 * MiB);
        assert_true(v[2].allocation > 0);
        assert_true(v[2].allocation < MiB);
        assert_string_equal(v[2].backing_path, bp);
        assert_string_equal(v[2].backing_format, "qcow2");
        vol_status_array_free(v, n);

        /* Resize: grow, then a refused shrink. */
        assert_int_equal(f->drv->vol_resize(f->pool, ov, 192 * MiB, &err), 0);
        info = qemu_img_info(op);
        assert_int_equal(json_int(info, "virtual-size"), 192 * MiB);
        json_object_put(info);
        assert_int_equal(f->drv->vol_resize(f->pool, ov, 64 * MiB, &err), -EINVAL);
        assert_string_equal(
                dv_error_message(&err),
                "shrinking volume web1.qcow2 from 201326592 to 67108864 bytes would lose data");
        dv_error_clear(&err);

        /* EEXIST before qemu-img runs. */
        uint64_t runs = fileinfo_qemu_img_runs();
        assert_int_equal(f->drv->vol_create(f->pool, ov, &err), -EEXIST);
        assert_int_equal(fileinfo_qemu_img_runs(), runs);
        dv_error_clear(&err);

        /* qemu-img fails (no backing file): the error carries its stderr, and
         * neither the volume nor the temporary file is left. */
        struct volume_def *broken = mk_vol("broken.qcow2", "qcow2", MiB);
        set_backing(broken, "/nonexistent/declvirt-base.qcow2", "qcow2");
        assert_int_equal(f->drv->vol_create(f->pool, broken, &err), -EIO);
        assert_non_null(strstr(dv_error_message(&err), "qemu-img failed (exit status 1): "));
        assert_non_null(strstr(dv_error_message(&err), "declvirt-base.qcow2"));
        assert_non_null(err.argv);
        assert_non_null(
                strstr(err.argv, "qemu-img create -f qcow2 -b /nonexistent/declvirt-base.qcow2"));
        dv_error_clear(&err);
        _cleanup_free_ char *brp = vpath(f, "broken.qcow2");
        _cleanup_free_ char *brt = dir_vol_temp_path(f->pool, "broken.qcow2");
        assert_absent(brp);
        assert_absent(brt);

        /* A backing file that is not there and has no written format. */
        free(broken->backing.format);
        broken->backing.format = NULL;
        assert_int_equal(f->drv->vol_create(f->pool, broken, &err), -ENOENT);
        assert_string_equal(
                dv_error_message(&err),
                "backing store /nonexistent/declvirt-base.qcow2: No such file or directory");
        dv_error_clear(&err);

        /* A stale temporary file from a crash does not stop the next attempt. */
        struct volume_def *again = mk_vol("again.qcow2", "qcow2", MiB);
        _cleanup_free_ char *at = dir_vol_temp_path(f->pool, "again.qcow2");
        assert_int_equal(write_file_atomic(at, "half", 4, 0600), 0);
        assert_int_equal(f->drv->vol_create(f->pool, again, &err), 0);
        assert_absent(at);

        assert_int_equal(f->drv->vol_delete(f->pool, "web1.qcow2", &err), 0);
        assert_absent(op);
        assert_false(dv_error_failed(&err));

        free_vol(base);
        free_vol(ov);
        free_vol(pre);
        free_vol(broken);
        free_vol(again);
}

/* Issue 17: nothing in a pool is reached through a symlink (the integration test
 * tests/integration/storage-symlinks.sh runs the same attacks as nobody). */
static void test_symlinks_refused(void **state) {
        struct fixture *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *victim = path_join(f->dir, "victim");
        assert_int_equal(write_file_atomic(victim, "secret", 6, 0600), 0);
        _cleanup_free_ char *vdir = path_join(f->dir, "victimdir");
        assert_int_equal(mkdir(vdir, 0700), 0);

        /* The target itself a symlink: broken on observe, refused by build and perms. */
        assert_int_equal(symlink(vdir, f->target), 0);
        struct pool_status ps = {0};
        assert_int_equal(f->drv->pool_observe(f->pool, &ps, &err), 0);
        assert_int_equal(ps.state, POOL_STATE_BROKEN);
        _cleanup_free_ char *want = NULL;
        assert_true(
                asprintf(
                        &want,
                        "target path %s is or goes through a symbolic link, which is never followed",
                        f->target) > 0);
        assert_string_equal(ps.reason, want);
        pool_status_done(&ps);
        f->pool->target.perms.has_mode = true;
        f->pool->target.perms.mode = 0777;
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), -EEXIST);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        assert_int_equal(dir_pool_set_perms(f->pool, &err), -EEXIST);
        dv_error_clear(&err);
        assert_int_equal(f->drv->pool_delete(f->pool, &err), -EEXIST);
        dv_error_clear(&err);
        struct stat st;
        assert_int_equal(stat(vdir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(lstat(f->target, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        /* A symlink higher up: nothing is made through it either. */
        _cleanup_free_ char *deep = path_join(f->target, "sub/pool");
        free(f->pool->target.path);
        f->pool->target.path = strdup(deep);
        assert_int_equal(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), -EEXIST);
        dv_error_clear(&err);
        _cleanup_free_ char *made = path_join(vdir, "sub");
        assert_absent(made);
        free(f->pool->target.path);
        f->pool->target.path = strdup(f->target);
        f->pool->target.perms.has_mode = false;
        assert_int_equal(unlink(f->target), 0);
        build_pool(f);

        /* A symlink, a FIFO under a volume's name: not listed, not created over,
         * not resized, not deleted. */
        _cleanup_free_ char *lp = vpath(f, "evil.img");
        assert_int_equal(symlink(victim, lp), 0);
        _cleanup_free_ char *fp = vpath(f, "fifo.img");
        assert_int_equal(mkfifo(fp, 0600), 0);
        struct vol_status *v = NULL;
        size_t n = 9;
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(n, 0);
        vol_status_array_free(v, n);
        struct volume_def *evil = mk_vol("evil.img", "raw", MiB);
        assert_int_equal(f->drv->vol_create(f->pool, evil, &err), -EEXIST);
        free(want);
        assert_true(asprintf(&want, "%s is a symbolic link, not a volume file; not using it", lp) >
                    0);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        assert_int_equal(f->drv->vol_resize(f->pool, evil, 2 * MiB, &err), -EEXIST);
        dv_error_clear(&err);
        assert_int_equal(f->drv->vol_delete(f->pool, "evil.img", &err), -EEXIST);
        dv_error_clear(&err);
        struct volume_def *fifo = mk_vol("fifo.img", "raw", MiB);
        assert_int_equal(f->drv->vol_create(f->pool, fifo, &err), -EEXIST);
        assert_non_null(strstr(dv_error_message(&err), "is a FIFO, not a volume file"));
        dv_error_clear(&err);
        assert_int_equal(f->drv->vol_resize(f->pool, fifo, 2 * MiB, &err), -EEXIST);
        dv_error_clear(&err);
        assert_int_equal(lstat(lp, &st), 0);
        assert_true(S_ISLNK(st.st_mode));

        /* A symlink at the temporary name of old: qemu-img never writes through it. */
        if (have_qemu_img()) {
                struct volume_def *q = mk_vol("q.qcow2", "qcow2", MiB);
                _cleanup_free_ char *tmp = dir_vol_temp_path(f->pool, "q.qcow2");
                assert_int_equal(symlink(victim, tmp), 0);
                assert_int_equal(f->drv->vol_create(f->pool, q, &err), 0);
                _cleanup_free_ char *qp = vpath(f, "q.qcow2");
                assert_int_equal(lstat(qp, &st), 0);
                assert_true(S_ISREG(st.st_mode));
                free_vol(q);
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        assert_int_equal(read_full_file(victim, 1024, &text, &len), 0);
        assert_int_equal(len, 6);
        assert_memory_equal(text, "secret", 6);
        assert_int_equal(stat(victim, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        free_vol(evil);
        free_vol(fifo);
}

static void write_iso_like(const char *path) {
        size_t len = 40960;
        char *data = calloc(1, len);
        memcpy(data + 32768, "\001CD001\001", 7);
        assert_int_equal(write_file_atomic(path, data, len, 0644), 0);
        free(data);
}

static void test_list_formats_and_cache(void **state) {
        struct fixture *f = *state;
        SKIP_WITHOUT_QEMU_IMG();
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        struct volume_def *q = mk_vol("disk.qcow2", "qcow2", 10 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, q, &err), 0);
        _cleanup_free_ char *iso = vpath(f, "cd.iso");
        write_iso_like(iso);
        _cleanup_free_ char *raw = vpath(f, "plain.img");
        assert_int_equal(write_file_atomic(raw, "0123456789", 10, 0600), 0);
        /* A vmdk header that qemu-img cannot read: listed with stat's sizes. */
        _cleanup_free_ char *vmdk = vpath(f, "broken.vmdk");
        assert_int_equal(write_file_atomic(vmdk, "KDMV\1\0\0\0garbage", 15, 0600), 0);
        /* Not volumes: hidden files, directories, bad names, symlinks (dangling or not:
         * a symlink may be another user's pointing at a file of root's), FIFOs. */
        _cleanup_free_ char *hidden = vpath(f, ".hidden.img");
        assert_int_equal(write_file_atomic(hidden, "x", 1, 0600), 0);
        _cleanup_free_ char *sub = vpath(f, "subdir");
        assert_int_equal(mkdir(sub, 0755), 0);
        _cleanup_free_ char *inner = path_join(sub, "inner.img");
        assert_int_equal(write_file_atomic(inner, "x", 1, 0600), 0);
        _cleanup_free_ char *badname = vpath(f, "bad name.img");
        assert_int_equal(write_file_atomic(badname, "x", 1, 0600), 0);
        _cleanup_free_ char *dangling = vpath(f, "dangling.img");
        assert_int_equal(symlink("/nonexistent/declvirt", dangling), 0);
        _cleanup_free_ char *link = vpath(f, "link.iso");
        assert_int_equal(symlink(iso, link), 0);
        _cleanup_free_ char *fifo = vpath(f, "fifo.img");
        assert_int_equal(mkfifo(fifo, 0600), 0);

        fileinfo_cache_clear();
        uint64_t runs = fileinfo_qemu_img_runs();
        struct vol_status *v = NULL;
        size_t n = 0;
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(n, 4);
        const char *names[] = {"broken.vmdk", "cd.iso", "disk.qcow2", "plain.img"};
        const char *formats[] = {"vmdk", "iso", "qcow2", "raw"};
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(v[i].name, names[i]);
                assert_string_equal(v[i].format, formats[i]);
        }
        assert_int_equal(v[0].capacity, 15);
        assert_int_equal(v[1].capacity, 40960);
        assert_int_equal(v[2].capacity, 10 * MiB);
        assert_int_equal(v[3].capacity, 10);
        vol_status_array_free(v, n);
        /* qemu-img ran for the vmdk only: the qcow2 is read from its header. */
        assert_int_equal(fileinfo_qemu_img_runs(), runs + 1);

        /* Unchanged files: a second listing runs no qemu-img at all. */
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(n, 4);
        assert_int_equal(v[2].capacity, 10 * MiB);
        assert_string_equal(v[0].format, "vmdk");
        vol_status_array_free(v, n);
        assert_int_equal(fileinfo_qemu_img_runs(), runs + 1);

        /* A changed file is looked at again: a resize through qemu-img behind our back. */
        _cleanup_free_ char *qp = vpath(f, "disk.qcow2");
        assert_int_equal(cmd_run((char *const[]){"qemu-img", "resize", "-q", "-f", "qcow2", qp,
                                                 "20971520", NULL},
                                 NULL, NULL, &err),
                         0);
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(v[2].capacity, 20 * MiB);
        vol_status_array_free(v, n);
        assert_int_equal(fileinfo_qemu_img_runs(), runs + 1);

        /* A raw file's sizes are always current. */
        assert_int_equal(truncate(raw, 4096), 0);
        assert_int_equal(f->drv->vol_list(f->pool, &v, &n, &err), 0);
        assert_int_equal(v[3].capacity, 4096);
        vol_status_array_free(v, n);
        assert_false(dv_error_failed(&err));
        free_vol(q);
}

/* The qcow2 header reader agrees with qemu-img info on what qemu-img itself makes: v3
 * and v2 (compat=0.10), with and without a backing store and its format, a long backing
 * name; encrypted or otherwise unusual images are left to qemu-img. */
static void test_qcow2_header(void **state) {
        struct fixture *f = *state;
        SKIP_WITHOUT_QEMU_IMG();
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        _cleanup_free_ char *base = vpath(f, "base.raw");
        assert_int_equal(write_file_atomic(base, "x", 1, 0600), 0);
        char longname[200];
        memset(longname, 'b', sizeof(longname));
        memcpy(longname + sizeof(longname) - 5, ".raw", 5);
        _cleanup_free_ char *longbase = vpath(f, longname);
        assert_int_equal(write_file_atomic(longbase, "x", 1, 0600), 0);
        struct {
                const char *name;
                const char *opts; /* -o */
                const char *backing, *backing_fmt;
        } cases[] = {
                {"v3.qcow2", "compat=1.1", NULL, NULL},
                {"v2.qcow2", "compat=0.10", NULL, NULL},
                {"v3b.qcow2", "compat=1.1", base, "raw"},
                {"v2b.qcow2", "compat=0.10", base, "raw"},
                {"long.qcow2", "compat=1.1", longbase, "raw"},
                {"l2.qcow2", "compat=1.1,extended_l2=on,cluster_size=65536", NULL, NULL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = vpath(f, cases[i].name);
                _cleanup_strv_free_ char **argv = NULL;
                assert_int_equal(strv_push(&argv, "qemu-img"), 0);
                assert_int_equal(strv_push(&argv, "create"), 0);
                assert_int_equal(strv_push(&argv, "-q"), 0);
                assert_int_equal(strv_push(&argv, "-f"), 0);
                assert_int_equal(strv_push(&argv, "qcow2"), 0);
                assert_int_equal(strv_push(&argv, "-o"), 0);
                assert_int_equal(strv_push(&argv, cases[i].opts), 0);
                if (cases[i].backing) {
                        assert_int_equal(strv_push(&argv, "-b"), 0);
                        assert_int_equal(strv_push(&argv, cases[i].backing), 0);
                        assert_int_equal(strv_push(&argv, "-F"), 0);
                        assert_int_equal(strv_push(&argv, cases[i].backing_fmt), 0);
                }
                assert_int_equal(strv_push(&argv, path), 0);
                assert_int_equal(strv_push(&argv, "3145728"), 0);
                if (cmd_run(argv, NULL, NULL, &err) < 0) {
                        /* An option this qemu-img lacks (extended_l2 before 5.2). */
                        print_message("# %s: %s\n", cases[i].name, dv_error_message(&err));
                        dv_error_clear(&err);
                        continue;
                }
                _cleanup_strv_free_ char **info = NULL;
                assert_int_equal(fileinfo_qemu_img_info_argv(path, "qcow2", &info), 0);
                struct cmd_result res = {0};
                assert_int_equal(cmd_run(info, NULL, &res, &err), 0);
                struct fileinfo want = {0}, got = {0};
                assert_int_equal(fileinfo_parse_qemu_img_info(res.out, res.out_len, &want, &err),
                                 0);
                cmd_result_done(&res);

                int fd = open(path, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                unsigned char *h = calloc(1, FILEINFO_HEADER_SIZE);
                assert_non_null(h);
                ssize_t len = pread(fd, h, FILEINFO_HEADER_SIZE, 0);
                assert_true(len > 0);
                assert_int_equal(fileinfo_parse_qcow2(h, (size_t)len, fd, &got), 0);
                assert_int_equal(got.capacity, want.capacity);
                if (want.backing_path)
                        assert_string_equal(got.backing_path, want.backing_path);
                else
                        assert_null(got.backing_path);
                if (want.backing_format)
                        assert_string_equal(got.backing_format, want.backing_format);
                else
                        assert_null(got.backing_format);
                fileinfo_done(&got);
                /* A header the reader must leave to qemu-img: encrypted, corrupt, v1. */
                unsigned char *bad = malloc((size_t)len);
                assert_non_null(bad);
                memcpy(bad, h, (size_t)len);
                bad[35] = 1; /* crypt_method AES */
                assert_int_equal(fileinfo_parse_qcow2(bad, (size_t)len, fd, &got), -EOPNOTSUPP);
                memcpy(bad, h, (size_t)len);
                bad[7] = 1; /* version 1 */
                assert_int_equal(fileinfo_parse_qcow2(bad, (size_t)len, fd, &got), -EOPNOTSUPP);
                if (h[7] == 3) {
                        memcpy(bad, h, (size_t)len);
                        bad[79] |= 2; /* incompatible feature "corrupt" */
                        assert_int_equal(fileinfo_parse_qcow2(bad, (size_t)len, fd, &got),
                                         -EOPNOTSUPP);
                }
                assert_int_equal(fileinfo_parse_qcow2(h, 40, fd, &got), -EBADMSG);
                free(bad);
                free(h);
                close(fd);
                fileinfo_done(&want);
        }
        assert_false(dv_error_failed(&err));
}

struct list_thread {
        const struct storage_driver *drv;
        const struct pool_def *pool;
        int failures;
};

static void *list_worker(void *p) {
        struct list_thread *t = p;
        for (int i = 0; i < 20; i++) {
                struct vol_status *v = NULL;
                size_t n = 0;
                struct dv_error err = DV_ERROR_INIT;
                if (t->drv->vol_list(t->pool, &v, &n, &err) < 0 || n != 2 ||
                    !streq(v[0].format, "qcow2") || v[0].capacity != 4 * MiB)
                        t->failures++;
                vol_status_array_free(v, n);
                dv_error_clear(&err);
                if (i % 5 == 0)
                        fileinfo_cache_clear();
        }
        return NULL;
}

static void test_concurrent_listing(void **state) {
        struct fixture *f = *state;
        SKIP_WITHOUT_QEMU_IMG();
        struct dv_error err = DV_ERROR_INIT;
        build_pool(f);
        struct volume_def *a = mk_vol("a.qcow2", "qcow2", 4 * MiB);
        struct volume_def *b = mk_vol("b.img", "raw", 4 * MiB);
        assert_int_equal(f->drv->vol_create(f->pool, a, &err), 0);
        assert_int_equal(f->drv->vol_create(f->pool, b, &err), 0);
        pthread_t th[4];
        struct list_thread t[4];
        for (int i = 0; i < 4; i++) {
                t[i] = (struct list_thread){.drv = f->drv, .pool = f->pool};
                assert_int_equal(pthread_create(&th[i], NULL, list_worker, &t[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(th[i], NULL), 0);
                assert_int_equal(t[i].failures, 0);
        }
        free_vol(a);
        free_vol(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_argv),
                cmocka_unit_test(test_temp_path),
                cmocka_unit_test(test_registry),
                cmocka_unit_test(test_detect_format),
                cmocka_unit_test(test_parse_qemu_img_info),
                cmocka_unit_test_setup_teardown(test_pool_build_observe, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pool_target_is_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pool_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vol_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_raw_volumes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_space_check, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resize_raw, setup, teardown),
                cmocka_unit_test_setup_teardown(test_qcow2, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_formats_and_cache, setup, teardown),
                cmocka_unit_test_setup_teardown(test_qcow2_header, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_listing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinks_refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
