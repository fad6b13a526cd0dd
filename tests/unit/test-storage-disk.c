/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The disk pool driver: parted's machine-readable output (recorded in tests/data/disk),
 * partition names and placement, argv golden files (DECLVIRT_UPDATE_GOLDEN=1 rewrites
 * them), and the driver itself with real parted on image files in a mkdtemp directory
 * (the loop device tests are in tests/integration/storage-disk.sh). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/storage.h"
#include "drivers/storage/disk.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/macro.h"
#include "util/strv.h"

#define DATA "tests/data/disk"
#define MiB  (1024ULL * 1024)

/* ---- definitions by hand ---------------------------------------------------------------- */

static struct pool_def *mk_pool(const char *name, const char *dev, const char *format) {
        struct pool_def *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->type = POOL_DISK;
        p->name = strdup(name);
        p->source.devices = calloc(1, sizeof(*p->source.devices));
        assert_non_null(p->source.devices);
        p->source.devices[0].path = strdup(dev);
        p->source.n_devices = 1;
        p->source.format = format ? strdup(format) : NULL;
        return p;
}

static void free_pool(struct pool_def *p) {
        if (!p)
                return;
        free(p->name);
        for (size_t i = 0; i < p->source.n_devices; i++) {
                free(p->source.devices[i].path);
                free(p->source.devices[i].free_extents);
        }
        free(p->source.devices);
        free(p->source.format);
        free(p);
}

static struct volume_def *mk_vol(const char *name, uint64_t capacity, const char *format) {
        struct volume_def *v = calloc(1, sizeof(*v));
        assert_non_null(v);
        v->name = strdup(name);
        v->has_capacity = true;
        v->capacity = capacity;
        v->target.format = format ? strdup(format) : NULL;
        return v;
}

static void free_vol(struct volume_def *v) {
        if (!v)
                return;
        free(v->name);
        free(v->target.format);
        free(v);
}

static void parse_file(const char *name, struct disk_table *t) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", DATA, name);
        _cleanup_free_ char *out = test_read_file(path, NULL);
        struct dv_error err = DV_ERROR_INIT;
        int r = drv_disk_parse_parted(out, t, &err);
        if (r < 0)
                fail_msg("%s: %s", path, strna(dv_error_message(&err)));
        dv_error_clear(&err);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void test_parse_gpt(void **state) {
        (void)state;
        struct disk_table t = {0};
        parse_file("print-gpt-free.txt", &t);
        assert_string_equal(t.label, "gpt");
        assert_int_equal(t.size, 64 * MiB);
        assert_int_equal(t.logical_sector, 512);
        assert_int_equal(t.n_parts, 3);
        assert_int_equal(t.parts[0].number, 1);
        assert_int_equal(t.parts[0].start, 1048576);
        assert_int_equal(t.parts[0].end, 2097151);
        assert_int_equal(t.parts[0].size, MiB);
        assert_string_equal(t.parts[0].name, "primary");
        assert_string_equal(t.parts[0].flags, "");
        assert_null(drv_disk_partition_format(&t.parts[0]));
        assert_string_equal(drv_disk_partition_format(&t.parts[1]), "linux-swap");
        /* ':' and '\' are escaped by parted inside fields. */
        assert_int_equal(t.parts[2].number, 3);
        assert_string_equal(t.parts[2].name, "data:1\\x");
        assert_string_equal(drv_disk_partition_format(&t.parts[2]), "linux-lvm");
        assert_int_equal(t.n_free, 3);
        assert_int_equal(t.free[0].start, 17408);
        assert_int_equal(t.free[0].end, 1048575);
        assert_int_equal(t.free[1].start, 3145728);
        assert_int_equal(t.free[2].end, 67091967);
        disk_table_done(&t);
}

static void test_parse_msdos(void **state) {
        (void)state;
        struct disk_table t = {0};
        parse_file("print-msdos-free.txt", &t);
        assert_string_equal(t.label, "msdos");
        assert_string_equal(drv_disk_label_from_parted(t.label), "dos");
        assert_int_equal(t.n_parts, 3);
        assert_string_equal(t.parts[1].flags, "lba");
        assert_null(drv_disk_partition_format(&t.parts[1]));
        assert_string_equal(drv_disk_partition_format(&t.parts[2]), "linux-raid");
        assert_int_equal(t.n_free, 2);
        assert_int_equal(t.free[1].end, 64 * MiB - 1);
        disk_table_done(&t);
}

static void test_parse_unlabelled(void **state) {
        (void)state;
        struct disk_table t = {0};
        parse_file("print-unknown.txt", &t);
        assert_string_equal(t.label, "unknown");
        assert_null(drv_disk_label_from_parted(t.label));
        assert_int_equal(t.n_parts, 0);
        disk_table_done(&t);
        /* A filesystem on the whole device: parted's "loop" label is no partition table. */
        parse_file("print-loop-ext4.txt", &t);
        assert_string_equal(t.label, "loop");
        assert_null(drv_disk_label_from_parted(t.label));
        assert_int_equal(t.n_parts, 1);
        assert_string_equal(t.parts[0].fs, "ext4");
        disk_table_done(&t);
}

static void test_parse_bad(void **state) {
        (void)state;
        static const struct {
                const char *out, *msg;
        } cases[] = {
                {"", "parted printed no device line"},
                {"CHS;\n/dev/x:1B:file:512:512:gpt::;\n", "expected 'BYT;'"},
                {"BYT;\n/dev/x:1B:file:512:512:gpt::\n", "does not end with ';'"},
                {"BYT;\n/dev/x:12:file:512:512:gpt::;\n", "is not a device line"},
                {"BYT;\n/dev/x:1B:file:7:512:gpt::;\n", "is not a device line"},
                {"BYT;\n/dev/x:1B:file:512:512:gpt::;\n1:5B:4B:0B:free;\n",
                 "is not a partition or free extent line"},
                {"BYT;\n/dev/x:1B:file:512:512:gpt::;\n1:1B:4B:4B:used;\n", "unknown entry"},
                {"BYT;\n/dev/x:1B:file:512:512:gpt::;\n0:1B:4B:4B:::;\n",
                 "is not a partition or free extent line"},
                {"BYT;\n/dev/x:1B:file:512:512:gpt::;\n1:-1B:4B:4B:::;\n",
                 "is not a partition or free extent line"},
                {"BYT;\n/dev/x:1B:file:512:512:gpt::;\n1:1B:4B:4B::;\n",
                 "is not a partition or free extent line"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct disk_table t = {0};
                struct dv_error err = DV_ERROR_INIT;
                int r = drv_disk_parse_parted(cases[i].out, &t, &err);
                if (r != -EINVAL)
                        fail_msg("case %zu: %d", i, r);
                if (!strstr(strempty(dv_error_message(&err)), cases[i].msg))
                        fail_msg("case %zu: '%s' lacks '%s'", i, dv_error_message(&err),
                                 cases[i].msg);
                assert_null(t.label);
                dv_error_clear(&err);
        }
}

static void test_labels(void **state) {
        (void)state;
        assert_string_equal(drv_disk_label_to_parted("dos"), "msdos");
        assert_string_equal(drv_disk_label_to_parted("gpt"), "gpt");
        assert_null(drv_disk_label_to_parted("lvm2"));
        assert_null(drv_disk_label_to_parted(NULL));
        assert_string_equal(drv_disk_label_from_parted("msdos"), "dos");
        assert_null(drv_disk_label_from_parted("unknown"));
        struct pool_def *p = mk_pool("p", "/dev/vdb", NULL);
        assert_string_equal(drv_disk_pool_format(p), "gpt");
        free_pool(p);
        assert_ptr_equal(storage_driver_get(POOL_DISK), &storage_driver_disk);
}

/* ---- names and placement ------------------------------------------------------------------ */

static void test_partition_names(void **state) {
        (void)state;
        static const struct {
                const char *dev;
                unsigned n;
                const char *path;
        } paths[] = {
                {"/dev/loop0", 1, "/dev/loop0p1"},
                {"/dev/sdb", 2, "/dev/sdb2"},
                {"/dev/nvme0n1", 12, "/dev/nvme0n1p12"},
                {"/dev/mmcblk0", 3, "/dev/mmcblk0p3"},
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_free_ char *p = drv_disk_partition_path(paths[i].dev, paths[i].n);
                assert_string_equal(p, paths[i].path);
        }
        assert_null(drv_disk_partition_path("/dev/sdb", 0));

        unsigned n = 0;
        assert_int_equal(drv_disk_partition_number("/dev/loop0", "loop0p1", &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(drv_disk_partition_number("/dev/sdb", "sdb12", &n), 0);
        assert_int_equal(n, 12);
        static const char *const bad[] = {"loop0p01",
                                          "loop01",
                                          "loop0p",
                                          "loop0p0",
                                          "loop1p1",
                                          "loop0p1x",
                                          "loop0p-1",
                                          "sdbp2",
                                          "loop0",
                                          "xloop0p1",
                                          "loop0p99999999999999999999"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *dev = bad[i][0] == 's' ? "/dev/sdb" : "/dev/loop0";
                if (drv_disk_partition_number(dev, bad[i], &n) != -EINVAL)
                        fail_msg("'%s' taken as a partition of %s", bad[i], dev);
        }
        /* The driver's path of a volume of a pool on a device that does not resolve. */
        struct pool_def *p = mk_pool("p", "/dev/declvirt-test-none9", NULL);
        _cleanup_free_ char *vp = storage_driver_disk.vol_path(p, "declvirt-test-none9p3");
        assert_string_equal(vp, "/dev/declvirt-test-none9p3");
        assert_null(storage_driver_disk.vol_path(p, "sda1"));
        assert_null(storage_driver_disk.vol_path(p, "../x"));
        free_pool(p);
}

static void test_plan_partition(void **state) {
        (void)state;
        struct disk_table t = {0};
        struct dv_error err = DV_ERROR_INIT;
        unsigned n = 0;
        uint64_t s = 0, e = 0;
        parse_file("print-gpt-free.txt", &t);
        /* The hole between partitions 2 and 3 holds exactly 1 MiB; the first free extent
         * (before 1 MiB) holds nothing once aligned. Numbers 1-3 are used. */
        assert_int_equal(drv_disk_plan_partition(&t, "v", MiB, &n, &s, &e, &err), 0);
        assert_int_equal(n, 4);
        assert_int_equal(s, 3 * MiB);
        assert_int_equal(e, 4 * MiB - 1);
        assert_int_equal(drv_disk_plan_partition(&t, "v", 2 * MiB, &n, &s, &e, &err), 0);
        assert_int_equal(s, 5 * MiB);
        assert_int_equal(e, 7 * MiB - 1);
        assert_int_equal(drv_disk_plan_partition(&t, "big", 100 * MiB, &n, &s, &e, &err), -ENOSPC);
        assert_string_equal(dv_error_message(&err),
                            "volume big needs 104857600 bytes but the largest free extent has "
                            "only 61849088 (from a 1 MiB boundary)");
        dv_error_clear(&err);
        assert_int_equal(drv_disk_plan_partition(&t, "odd", 1000, &n, &s, &e, &err), -EINVAL);
        assert_non_null(strstr(dv_error_message(&err), "not a whole number of 512-byte sectors"));
        dv_error_clear(&err);
        assert_int_equal(drv_disk_plan_partition(&t, "zero", 0, &n, &s, &e, &err), -EINVAL);
        dv_error_clear(&err);
        /* A gap in the numbers is reused first, as parted does. */
        t.parts[1].number = 7;
        assert_int_equal(drv_disk_plan_partition(&t, "v", MiB, &n, &s, &e, &err), 0);
        assert_int_equal(n, 2);
        disk_table_done(&t);

        /* msdos: four primary slots. */
        parse_file("print-msdos-free.txt", &t);
        assert_int_equal(drv_disk_plan_partition(&t, "v", MiB, &n, &s, &e, &err), 0);
        assert_int_equal(n, 4);
        assert_int_equal(s, 4 * MiB);
        t.parts[0].number = 4;
        t.parts[1].number = 1; /* 1, 4, 3 used: 2 is free */
        assert_int_equal(drv_disk_plan_partition(&t, "v", MiB, &n, &s, &e, &err), 0);
        assert_int_equal(n, 2);
        t.parts[1].number = 2;
        struct disk_partition *np = realloc(t.parts, 4 * sizeof(*np));
        assert_non_null(np);
        t.parts = np;
        t.parts[3] = (struct disk_partition){
                .number = 1, .fs = strdup(""), .name = strdup(""), .flags = strdup("")};
        t.n_parts = 4;
        assert_int_equal(drv_disk_plan_partition(&t, "v5", MiB, &n, &s, &e, &err), -ENOSPC);
        assert_non_null(strstr(dv_error_message(&err), "has no free slot"));
        dv_error_clear(&err);
        disk_table_done(&t);
}

/* ---- golden argv ---------------------------------------------------------------------- */

static void check_golden(const char *name, char **argv) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.argv", DATA, name);
        test_check_golden_argv(path, argv);
}

static void test_golden_argv(void **state) {
        (void)state;
        char **argv = NULL;
#define GOLDEN_CASE(name, call)            \
        do {                               \
                assert_int_equal(call, 0); \
                check_golden(name, argv);  \
                strv_free(argv);           \
                argv = NULL;               \
        } while (0)
        GOLDEN_CASE("print", drv_disk_print_argv("/dev/vdb", false, &argv));
        GOLDEN_CASE("print-free", drv_disk_print_argv("/dev/loop0", true, &argv));
        struct pool_def *gpt = mk_pool("disk1", "/dev/vdb", NULL);
        struct pool_def *dos = mk_pool("disk2", "/dev/disk/by-id/virtio-data", "dos");
        struct pool_def *lvm = mk_pool("disk3", "/dev/vdc", "lvm2");
        GOLDEN_CASE("mklabel-gpt", drv_disk_mklabel_argv(gpt, &argv));
        GOLDEN_CASE("mklabel-dos", drv_disk_mklabel_argv(dos, &argv));
        assert_int_equal(drv_disk_mklabel_argv(lvm, &argv), -EOPNOTSUPP);
        GOLDEN_CASE("mkpart", drv_disk_mkpart_argv("/dev/loop0", 1, MiB, 9 * MiB - 1, NULL, &argv));
        GOLDEN_CASE("mkpart-linux",
                    drv_disk_mkpart_argv("/dev/loop0", 2, 9 * MiB, 10 * MiB - 1, "linux", &argv));
        GOLDEN_CASE("mkpart-swap", drv_disk_mkpart_argv("/dev/sdb", 3, 10 * MiB, 20 * MiB - 1,
                                                        "linux-swap", &argv));
        GOLDEN_CASE("mkpart-fat32",
                    drv_disk_mkpart_argv("/dev/sdb", 1, MiB, 2 * MiB - 1, "fat32", &argv));
        GOLDEN_CASE("mkpart-lvm",
                    drv_disk_mkpart_argv("/dev/sdb", 4, 20 * MiB, 1ULL << 40, "linux-lvm", &argv));
        GOLDEN_CASE("mkpart-raid",
                    drv_disk_mkpart_argv("/dev/sdb", 5, MiB, 2 * MiB - 1, "linux-raid", &argv));
        GOLDEN_CASE("rm", drv_disk_rm_argv("/dev/loop0", 3, &argv));
        GOLDEN_CASE("wipefs-gpt", drv_disk_wipefs_argv("/dev/loop0", "gpt", false, &argv));
        GOLDEN_CASE("wipefs-dos", drv_disk_wipefs_argv("/dev/sdb", "msdos", false, &argv));
        GOLDEN_CASE("wipefs-image", drv_disk_wipefs_argv("/srv/img/disk.img", "gpt", true, &argv));
        GOLDEN_CASE("partx", drv_disk_partx_argv("/dev/loop0", &argv));
#undef GOLDEN_CASE
        /* Refusals: nothing that could be read as an option or another format. */
        assert_int_equal(drv_disk_print_argv("-h", false, &argv), -EINVAL);
        assert_int_equal(drv_disk_print_argv("loop0", false, &argv), -EINVAL);
        assert_int_equal(drv_disk_mkpart_argv("/dev/sdb", 1, MiB, 2 * MiB, "qcow2", &argv),
                         -EOPNOTSUPP);
        assert_int_equal(drv_disk_mkpart_argv("/dev/sdb", 1, MiB, 2 * MiB, "extended", &argv),
                         -EOPNOTSUPP);
        assert_int_equal(drv_disk_mkpart_argv("/dev/sdb", 1, 2 * MiB, MiB, NULL, &argv), -EINVAL);
        assert_int_equal(drv_disk_mkpart_argv("/dev/sdb", 0, MiB, 2 * MiB, NULL, &argv), -EINVAL);
        assert_int_equal(drv_disk_rm_argv("/dev/sdb", 0, &argv), -EINVAL);
        assert_int_equal(drv_disk_wipefs_argv("/dev/sdb", "mac", false, &argv), -EOPNOTSUPP);
        assert_null(argv);
        free_pool(gpt);
        free_pool(dos);
        free_pool(lvm);
}

/* ---- the driver on image files ------------------------------------------------------------ */

struct fixture {
        char *dir;
        char *img; /* DIR/vdisk: partitions are "vdisk1", "vdisk2", ... */
        struct pool_def *pool;
        const struct storage_driver *drv;
};

static int make_image(const char *path, uint64_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        int r = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
        close(fd);
        return r;
}

static int setup(void **state) {
        if (!test_have_program("parted")) {
                print_message("# parted is not installed\n");
                *state = NULL;
                return 0;
        }
        struct fixture *f = calloc(1, sizeof(*f));
        f->dir = test_mkdtemp("declvirt-disk");
        f->img = path_join(f->dir, "vdisk");
        assert_int_equal(make_image(f->img, 64 * MiB), 0);
        f->pool = mk_pool("d1", f->img, NULL);
        f->drv = storage_driver_get(POOL_DISK);
        drv_disk_cache_clear();
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        if (!f)
                return 0;
        test_rm_rf(f->dir);
        free_pool(f->pool);
        free(f->img);
        free(f->dir);
        free(f);
        drv_disk_cache_clear();
        return 0;
}

#define NEED_FIXTURE(f)         \
        do {                    \
                if (!(f))       \
                        skip(); \
        } while (0)

static void observe(struct fixture *f, struct pool_status *st) {
        struct dv_error err = DV_ERROR_INIT;
        *st = (struct pool_status){0};
        int r = f->drv->pool_observe(f->pool, st, &err);
        if (r < 0)
                fail_msg("observe: %s", strna(dv_error_message(&err)));
        dv_error_clear(&err);
}

static void expect(int got, int want, struct dv_error *err, const char *msg) {
        if (got != want)
                fail_msg("got %d, want %d: %s", got, want, strna(dv_error_message(err)));
        if (msg && !strstr(strempty(dv_error_message(err)), msg))
                fail_msg("'%s' lacks '%s'", strna(dv_error_message(err)), msg);
        dv_error_clear(err);
}

static void file_hash(const char *path, char out[static HASH_HEX_LEN + 1]) {
        size_t len = 0;
        _cleanup_free_ char *data = test_read_file(path, &len);
        hash_hex(data, len, out);
}

static void list(struct fixture *f, struct vol_status **v, size_t *n) {
        struct dv_error err = DV_ERROR_INIT;
        expect(f->drv->vol_list(f->pool, v, n, &err), 0, &err, NULL);
}

static void test_build_and_volumes(void **state) {
        struct fixture *f = *state;
        NEED_FIXTURE(f);
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status st;

        observe(f, &st);
        assert_int_equal(st.state, POOL_STATE_ABSENT);
        pool_status_done(&st);
        expect(f->drv->pool_build(f->pool, DV_BUILD_NO, &err), -ENOENT, &err,
               "has no partition table and build='no'");
        expect(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), 0, &err, NULL);
        observe(f, &st);
        assert_int_equal(st.state, POOL_STATE_ACTIVE);
        assert_true(st.has_sizes);
        assert_int_equal(st.capacity, 64 * MiB);
        assert_int_equal(st.allocation, 0);
        assert_true(st.available > 63 * MiB && st.available < 64 * MiB);
        pool_status_done(&st);
        /* Built already: building again (a restart, a retried pass) changes nothing. */
        char before[HASH_HEX_LEN + 1], after[HASH_HEX_LEN + 1];
        file_hash(f->img, before);
        expect(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), 0, &err, NULL);
        expect(f->drv->pool_build(f->pool, DV_BUILD_NO, &err), 0, &err, NULL);
        file_hash(f->img, after);
        assert_string_equal(before, after);

        /* Observing an unchanged device reads the cache, not parted. */
        unsigned runs = drv_disk_parted_runs();
        observe(f, &st);
        pool_status_done(&st);
        struct vol_status *v = NULL;
        size_t n = 99;
        list(f, &v, &n);
        assert_int_equal(n, 0);
        vol_status_array_free(v, n);
        assert_int_equal(drv_disk_parted_runs(), runs);

        struct volume_def *v1 = mk_vol("vdisk1", 8 * MiB, NULL);
        struct volume_def *v2 = mk_vol("vdisk2", 4 * MiB, "linux-lvm");
        struct volume_def *v3 = mk_vol("vdisk3", MiB, NULL);
        struct volume_def *huge = mk_vol("vdisk2", 64 * MiB, NULL);
        struct volume_def *qcow = mk_vol("vdisk2", MiB, "qcow2");
        struct volume_def *odd = mk_vol("vdisk2", MiB + 100, NULL);
        struct volume_def *other = mk_vol("sda1", MiB, NULL);
        expect(f->drv->vol_create(f->pool, v1, &err), 0, &err, NULL);
        expect(f->drv->vol_create(f->pool, v1, &err), -EEXIST, &err, "exists");

        /* Refusals come before anything is done: the image is unchanged. */
        file_hash(f->img, before);
        expect(f->drv->vol_create(f->pool, v3, &err), -EINVAL, &err,
               "parted numbers the next partition");
        expect(f->drv->vol_create(f->pool, huge, &err), -ENOSPC, &err,
               "volume vdisk2 needs 67108864 bytes but the largest free extent has only");
        expect(f->drv->vol_create(f->pool, qcow, &err), -EOPNOTSUPP, &err,
               "format 'qcow2' cannot be created in a disk pool");
        expect(f->drv->vol_create(f->pool, odd, &err), -EINVAL, &err, "512-byte sectors");
        expect(f->drv->vol_create(f->pool, other, &err), -EINVAL, &err,
               "is not a partition name of");
        file_hash(f->img, after);
        assert_string_equal(before, after);

        expect(f->drv->vol_create(f->pool, v2, &err), 0, &err, NULL);
        list(f, &v, &n);
        assert_int_equal(n, 2);
        assert_string_equal(v[0].name, "vdisk1");
        _cleanup_free_ char *p1 = path_join(f->dir, "vdisk1");
        assert_string_equal(v[0].path, p1);
        assert_string_equal(v[0].type, "block");
        assert_null(v[0].format);
        assert_int_equal(v[0].capacity, 8 * MiB);
        assert_int_equal(v[0].allocation, 8 * MiB);
        assert_string_equal(v[1].name, "vdisk2");
        assert_string_equal(v[1].format, "linux-lvm");
        assert_int_equal(v[1].capacity, 4 * MiB);
        vol_status_array_free(v, n);
        _cleanup_free_ char *vp = f->drv->vol_path(f->pool, "vdisk2");
        _cleanup_free_ char *p2 = path_join(f->dir, "vdisk2");
        assert_string_equal(vp, p2);

        observe(f, &st);
        assert_int_equal(st.state, POOL_STATE_ACTIVE);
        assert_int_equal(st.allocation, 12 * MiB);
        pool_status_done(&st);
        struct pool_extent *ext = NULL;
        size_t next = 0;
        expect(drv_disk_free_extents(f->img, &ext, &next, &err), 0, &err, NULL);
        /* libvirt's convention: end is the first byte after the extent. */
        assert_int_equal(next, 2);
        assert_int_equal(ext[0].start, 17408);
        assert_int_equal(ext[0].end, MiB);
        assert_int_equal(ext[1].start, 13 * MiB);
        assert_int_equal(ext[1].end, 64 * MiB - 33 * 512);
        free(ext);

        /* The pool is deleted only when it holds no partitions. */
        expect(f->drv->pool_delete(f->pool, &err), -ENOTEMPTY, &err, "still has 2 partitions");
        expect(f->drv->vol_delete(f->pool, "vdisk1", &err), 0, &err, NULL);
        expect(f->drv->vol_delete(f->pool, "vdisk1", &err), 0, &err, NULL); /* already gone */
        expect(f->drv->vol_delete(f->pool, "sda1", &err), -EINVAL, &err, NULL);
        list(f, &v, &n);
        assert_int_equal(n, 1);
        assert_string_equal(v[0].name, "vdisk2");
        vol_status_array_free(v, n);
        /* The freed number is used again first. */
        expect(f->drv->vol_create(f->pool, v1, &err), 0, &err, NULL);
        expect(f->drv->vol_delete(f->pool, "vdisk1", &err), 0, &err, NULL);
        expect(f->drv->vol_delete(f->pool, "vdisk2", &err), 0, &err, NULL);
        if (test_have_program("wipefs")) {
                expect(f->drv->pool_delete(f->pool, &err), 0, &err, NULL);
                observe(f, &st);
                assert_int_equal(st.state, POOL_STATE_ABSENT);
                pool_status_done(&st);
        }
        free_vol(v1);
        free_vol(v2);
        free_vol(v3);
        free_vol(huge);
        free_vol(qcow);
        free_vol(odd);
        free_vol(other);
}

static void test_msdos(void **state) {
        struct fixture *f = *state;
        NEED_FIXTURE(f);
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status st;
        free(f->pool->source.format);
        f->pool->source.format = strdup("dos");
        expect(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), 0, &err, NULL);
        observe(f, &st);
        assert_int_equal(st.state, POOL_STATE_ACTIVE);
        pool_status_done(&st);
        char name[32];
        for (int i = 1; i <= 4; i++) {
                snprintf(name, sizeof(name), "vdisk%d", i);
                struct volume_def *v = mk_vol(name, MiB, i == 2 ? "linux-swap" : NULL);
                expect(f->drv->vol_create(f->pool, v, &err), 0, &err, NULL);
                free_vol(v);
        }
        struct volume_def *v5 = mk_vol("vdisk5", MiB, NULL);
        expect(f->drv->vol_create(f->pool, v5, &err), -ENOSPC, &err, "has no free slot");
        free_vol(v5);
        struct vol_status *v = NULL;
        size_t n = 0;
        list(f, &v, &n);
        assert_int_equal(n, 4);
        assert_string_equal(v[1].format, "linux-swap");
        vol_status_array_free(v, n);

        /* The same device seen by a gpt pool: another table is in the way. */
        struct pool_def *g = mk_pool("g", f->img, "gpt");
        st = (struct pool_status){0};
        expect(f->drv->pool_observe(g, &st, &err), 0, &err, NULL);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "has a dos partition table, not gpt"));
        pool_status_done(&st);
        expect(f->drv->pool_build(g, DV_BUILD_IF_EMPTY, &err), -EEXIST, &err,
               "holds a dos signature; not formatting (build='if-empty')");
        expect(f->drv->pool_delete(g, &err), -EEXIST, &err, "not removing it");
        free_pool(g);
}

static void test_refuses_filesystem(void **state) {
        struct fixture *f = *state;
        NEED_FIXTURE(f);
        if (!test_have_program("mkfs.ext4"))
                skip();
        char *argv[] = {"mkfs.ext4", "-q", "-F", f->img, NULL};
        struct dv_error err = DV_ERROR_INIT;
        expect(cmd_run(argv, NULL, NULL, &err), 0, &err, NULL);
        char before[HASH_HEX_LEN + 1], after[HASH_HEX_LEN + 1];
        file_hash(f->img, before);
        struct pool_status st;
        char msg[512];
        snprintf(msg, sizeof(msg), "%s holds a ext4 signature; not formatting (build='if-empty')",
                 f->img);
        /* Seen by observe already: the pool is blocked without a build being tried. */
        observe(f, &st);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_string_equal(st.reason, msg);
        pool_status_done(&st);
        expect(f->drv->pool_build(f->pool, DV_BUILD_IF_EMPTY, &err), -EEXIST, &err, msg);
        expect(f->drv->pool_build(f->pool, DV_BUILD_NO, &err), -EEXIST, &err, msg);
        struct volume_def *v = mk_vol("vdisk1", MiB, NULL);
        expect(f->drv->vol_create(f->pool, v, &err), -EINVAL, &err, "has no gpt partition table");
        free_vol(v);
        expect(f->drv->pool_delete(f->pool, &err), 0, &err, NULL); /* no table: nothing to do */
        file_hash(f->img, after);
        assert_string_equal(before, after);
}

static void test_bad_devices(void **state) {
        struct fixture *f = *state;
        NEED_FIXTURE(f);
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status st = {0};
        _cleanup_free_ char *missing = path_join(f->dir, "nothere");
        struct pool_def *p = mk_pool("m", missing, NULL);
        expect(f->drv->pool_observe(p, &st, &err), 0, &err, NULL);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "does not exist"));
        pool_status_done(&st);
        expect(f->drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -ENOENT, &err, "source device");
        expect(f->drv->pool_delete(p, &err), 0, &err, NULL);
        free_pool(p);

        p = mk_pool("d", f->dir, NULL);
        expect(f->drv->pool_observe(p, &st, &err), 0, &err, NULL);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "is a directory"));
        pool_status_done(&st);
        expect(f->drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -ENOTBLK, &err, "is a directory");
        free_pool(p);

        p = mk_pool("c", "/dev/null", NULL);
        expect(f->drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -ENOTBLK, &err,
               "is not a block device");
        free_pool(p);

        p = mk_pool("r", "relative", NULL);
        expect(f->drv->pool_observe(p, &st, &err), -EINVAL, &err, "absolute source device");
        free_pool(p);

        p = mk_pool("l", f->img, "lvm2");
        expect(f->drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -EOPNOTSUPP, &err,
               "cannot be made with parted");
        free_pool(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_gpt),
                cmocka_unit_test(test_parse_msdos),
                cmocka_unit_test(test_parse_unlabelled),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_labels),
                cmocka_unit_test(test_partition_names),
                cmocka_unit_test(test_plan_partition),
                cmocka_unit_test(test_golden_argv),
                cmocka_unit_test_setup_teardown(test_build_and_volumes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_msdos, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_filesystem, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_devices, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
