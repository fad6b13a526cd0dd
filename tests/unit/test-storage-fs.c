/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fs and netfs pool drivers without mounting anything of the host's: the blkid
 * signature probe on image files, the mountinfo parser and its cache (in a mount namespace
 * of the test's own), the mount/mkfs/umount argv against the golden files in tests/data/fs
 * and tests/data/netfs (DECLVIRT_UPDATE_GOLDEN=1 rewrites them), observe from a recorded
 * mount table, and the drivers' error paths. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/storage/blkid.h"
#include "drivers/storage/fs.h"
#include "drivers/storage/mount.h"
#include "model/pool.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define MiB (1024ULL * 1024)

/* ---- helpers ------------------------------------------------------------------------------ */

static char *tmpdir;

static int setup_tmp(void **state) {
        (void)state;
        tmpdir = test_mkdtemp("test-storage-fs");
        return tmpdir ? 0 : -1;
}

static int teardown_tmp(void **state) {
        (void)state;
        if (tmpdir)
                test_rm_rf(tmpdir);
        free(tmpdir);
        tmpdir = NULL;
        return 0;
}

/* A sparse image file of size bytes in the temporary directory; caller frees. */
static char *mk_image(const char *name, uint64_t size) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        close(fd);
        return p;
}

static void write_at(const char *path, off_t off, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
        close(fd);
}

static void run_ok(char *const argv[]) {
        struct dv_error err = DV_ERROR_INIT;
        int r = cmd_run(argv, NULL, NULL, &err);
        if (r < 0)
                fprintf(stderr, "# %s\n", strna(dv_error_message(&err)));
        assert_int_equal(r, 0);
        dv_error_clear(&err);
}

/* A swap signature written by hand (no tool needed): "SWAPSPACE2" at the end of the
 * first 4 KiB page, version 1 and a last page at offset 1024. */
static void write_swap_header(const char *path) {
        const uint32_t hdr[2] = {1, 255};
        write_at(path, 1024, hdr, sizeof(hdr));
        write_at(path, 4096 - 10, "SWAPSPACE2", 10);
}

/* ---- the signature probe ------------------------------------------------------------------ */

static void test_probe_empty(void **state) {
        (void)state;
        _cleanup_free_ char *img = mk_image("empty.img", 16 * MiB);
        struct dv_error err = DV_ERROR_INIT;
        char *type = (char *)"sentinel";
        assert_int_equal(storage_probe_signature(img, &type, &err), 0);
        assert_null(type);
        assert_false(dv_error_failed(&err));
}

static void test_probe_swap(void **state) {
        (void)state;
        _cleanup_free_ char *img = mk_image("swap.img", 16 * MiB);
        write_swap_header(img);
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *type = NULL;
        bool is_fs = true;
        assert_int_equal(storage_probe_signature_full(img, &type, &is_fs, &err), 1);
        assert_string_equal(type, "swap");
        assert_false(is_fs);
}

static void test_probe_ext4(void **state) {
        (void)state;
        if (!test_have_program("mkfs.ext4")) {
                print_message("# mkfs.ext4 missing (Debian package e2fsprogs)\n");
                skip();
        }
        _cleanup_free_ char *img = mk_image("ext4.img", 16 * MiB);
        run_ok((char *[]){(char *)"mkfs.ext4", (char *)"-q", (char *)"-F", img, NULL});
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *type = NULL;
        bool is_fs = false;
        assert_int_equal(storage_probe_signature_full(img, &type, &is_fs, &err), 1);
        assert_string_equal(type, "ext4");
        assert_true(is_fs);
        /* A NULL ret_type is allowed: the caller only wants to know. */
        assert_int_equal(storage_probe_signature(img, NULL, &err), 1);
}

/* An MBR boot signature with an empty partition table, hand-made. */
static void test_probe_dos_label(void **state) {
        (void)state;
        _cleanup_free_ char *img = mk_image("dos.img", 16 * MiB);
        const unsigned char magic[2] = {0x55, 0xaa};
        write_at(img, 510, magic, 2);
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *type = NULL;
        bool is_fs = true;
        assert_int_equal(storage_probe_signature_full(img, &type, &is_fs, &err), 1);
        assert_string_equal(type, "dos");
        assert_false(is_fs);
}

static void test_probe_gpt_label(void **state) {
        (void)state;
        if (!test_have_program("parted")) {
                print_message("# parted missing\n");
                skip();
        }
        _cleanup_free_ char *img = mk_image("gpt.img", 16 * MiB);
        run_ok((char *[]){(char *)"parted", (char *)"-s", img, (char *)"mklabel", (char *)"gpt",
                          NULL});
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *type = NULL;
        assert_int_equal(storage_probe_signature(img, &type, &err), 1);
        assert_string_equal(type, "gpt");
}

/* Two signatures at once must be reported, and never as a single plain type. */
static void test_probe_several(void **state) {
        (void)state;
        if (!test_have_program("mkfs.ext4")) {
                print_message("# mkfs.ext4 missing (Debian package e2fsprogs)\n");
                skip();
        }
        _cleanup_free_ char *img = mk_image("both.img", 16 * MiB);
        run_ok((char *[]){(char *)"mkfs.ext4", (char *)"-q", (char *)"-F", img, NULL});
        const unsigned char magic[2] = {0x55, 0xaa};
        write_at(img, 510, magic, 2);
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *type = NULL;
        bool is_fs = true;
        assert_int_equal(storage_probe_signature_full(img, &type, &is_fs, &err), 1);
        assert_non_null(type);
        assert_non_null(strstr(type, "ext4"));
        assert_non_null(strchr(type, ','));
        assert_false(is_fs);
}

static void test_probe_missing(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        char *type = NULL;
        assert_int_equal(storage_probe_signature("/dev/does-not-exist-declvirt", &type, &err),
                         -ENOENT);
        assert_null(type);
        assert_string_equal(dv_error_message(&err),
                            "source device /dev/does-not-exist-declvirt does not exist");
        dv_error_clear(&err);

        assert_int_equal(storage_probe_signature(tmpdir, &type, &err), -EISDIR);
        assert_non_null(strstr(dv_error_message(&err), "is a directory"));
        dv_error_clear(&err);

        assert_int_equal(storage_probe_signature("/dev/null", &type, &err), -ENOTBLK);
        dv_error_clear(&err);

        assert_int_equal(storage_probe_signature("", &type, &err), -EINVAL);
        dv_error_clear(&err);
}

/* ---- the mount table ---------------------------------------------------------------------- */

static struct mount_table *sample_table(void) {
        struct mount_table *t = NULL;
        assert_int_equal(mount_table_read("tests/data/fs/mountinfo-sample", &t), 0);
        return t;
}

static void test_unescape(void **state) {
        (void)state;
        const char in[] = "a\\040b\\011c\\012d\\134e\\x\\08\\";
        _cleanup_free_ char *out = mount_unescape(in, strlen(in));
        assert_string_equal(out, "a b\tc\nd\\e\\x\\08\\");
        _cleanup_free_ char *cut = mount_unescape("x\\04", 4); /* too short: kept */
        assert_string_equal(cut, "x\\04");
}

static void test_mountinfo_parse(void **state) {
        (void)state;
        _cleanup_mount_table_ struct mount_table *t = sample_table();
        /* Three malformed lines are skipped. */
        assert_int_equal(t->n, 8);
        const struct mount_entry *e = mount_table_find_target(t, "/srv/pools/with space");
        assert_non_null(e);
        assert_int_equal(e->id, 40);
        assert_int_equal(e->parent_id, 25);
        assert_int_equal(e->major, 7);
        assert_int_equal(e->minor, 0);
        assert_string_equal(e->fstype, "ext4");
        assert_string_equal(e->source, "/dev/loop0");
        assert_string_equal(e->root, "/");
        /* Optional fields (shared:, master:) do not shift what follows "-". */
        e = mount_table_find_target(t, "/srv/pools/nfs");
        assert_non_null(e);
        assert_string_equal(e->fstype, "nfs4");
        assert_string_equal(e->source, "nas.example.org:/export/images");
        e = mount_table_find_target(t, "/srv/pools/cifs");
        assert_string_equal(e->source, "//fileserver/share\\x");
        e = mount_table_find_target(t, "/srv/bind");
        assert_string_equal(e->root, "/sub");
        assert_null(mount_table_find_target(t, "/srv/pools"));
        assert_null(mount_table_find_target(t, "/bad"));
        assert_null(mount_table_find_target(t, "/srv/no-separator"));

        /* Empty text, and a last line without its newline. */
        struct mount_table *u = NULL;
        assert_int_equal(mount_table_parse("", 0, &u), 0);
        assert_int_equal(u->n, 0);
        mount_table_unref(u);
        const char one[] = "1 0 8:1 / / rw - ext4 /dev/sda1 rw";
        assert_int_equal(mount_table_parse(one, strlen(one), &u), 0);
        assert_int_equal(u->n, 1);
        assert_string_equal(u->entries[0].source, "/dev/sda1");
        mount_table_unref(u);
}

static void test_mountinfo_stacked(void **state) {
        (void)state;
        _cleanup_mount_table_ struct mount_table *t = sample_table();
        /* tmpfs (42) is covered by the ext4 (43) mounted on top of it. */
        const struct mount_entry *e = mount_table_find_target(t, "/srv/pools/stacked");
        assert_non_null(e);
        assert_int_equal(e->id, 43);
        assert_string_equal(e->source, "/dev/loop1");
}

/* The real table of a mount namespace of our own: read once, then reread only after a
 * mount. Private propagation keeps the rest of the host from touching it. */
static void test_mountinfo_cache(void **state) {
        (void)state;
        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0) {
                print_message("# needs root for a mount namespace of its own\n");
                skip();
        }
        assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        struct mount_table *t = NULL;
        assert_int_equal(mount_table_current(&t), 0);
        unsigned long reads = mount_table_reads();
        assert_null(mount_table_find_target(t, tmpdir));
        mount_table_unref(t);

        assert_int_equal(mount_table_current(&t), 0);
        assert_int_equal(mount_table_reads(), reads);
        mount_table_unref(t);

        assert_int_equal(mount("declvirt-test", tmpdir, "tmpfs", 0, "size=1m"), 0);
        assert_int_equal(mount_table_current(&t), 0);
        assert_int_equal(mount_table_reads(), reads + 1);
        const struct mount_entry *e = mount_table_find_target(t, tmpdir);
        assert_non_null(e);
        assert_string_equal(e->source, "declvirt-test");
        assert_string_equal(e->fstype, "tmpfs");
        mount_table_unref(t);
        assert_int_equal(umount(tmpdir), 0);
        assert_int_equal(mount_table_current(&t), 0);
        assert_null(mount_table_find_target(t, tmpdir));
        mount_table_unref(t);
}

/* ---- definitions by hand ------------------------------------------------------------------ */

static struct pool_def *mk_fs(const char *dev, const char *target, const char *format) {
        struct pool_def *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->type = POOL_FS;
        p->name = strdup("fspool");
        p->target.path = strdup(target);
        p->source.devices = calloc(1, sizeof(*p->source.devices));
        p->source.devices[0].path = strdup(dev);
        p->source.n_devices = 1;
        p->source.format = format ? strdup(format) : NULL;
        return p;
}

static struct pool_def *mk_netfs(const char *host, const char *dir, const char *format,
                                 const char *target) {
        struct pool_def *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->type = POOL_NETFS;
        p->name = strdup("netpool");
        p->target.path = strdup(target);
        p->source.host_name = strdup(host);
        p->source.dir = strdup(dir);
        p->source.format = format ? strdup(format) : NULL;
        return p;
}

/* ---- golden argv -------------------------------------------------------------------------- */

static void check_golden(const char *dir, const char *name, char **argv) {
        char path[256];
        snprintf(path, sizeof(path), "tests/data/%s/%s.argv", dir, name);
        test_check_golden_argv(path, argv);
}

static void test_golden_fs(void **state) {
        (void)state;
        static const struct {
                const char *format, *mount, *mkfs;
        } cases[] = {
                {NULL, "mount-auto", "mkfs-auto"},         {"auto", "mount-auto", "mkfs-auto"},
                {"ext4", "mount-ext4", "mkfs-ext4"},       {"ext3", NULL, "mkfs-ext3"},
                {"xfs", "mount-xfs", "mkfs-xfs"},          {"vfat", "mount-vfat", "mkfs-vfat"},
                {"hfs+", "mount-hfsplus", "mkfs-hfsplus"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(pool_def_freep) struct pool_def *p =
                        mk_fs("/dev/disk/by-id/virtio-data", "/srv/pools/a b", cases[i].format);
                struct dv_error err = DV_ERROR_INIT;
                _cleanup_strv_free_ char **argv = NULL, **mkfs = NULL;
                assert_int_equal(fs_mount_argv(p, &argv, &err), 0);
                if (cases[i].mount)
                        check_golden("fs", cases[i].mount, argv);
                assert_int_equal(fs_mkfs_argv(p, &mkfs, &err), 0);
                check_golden("fs", cases[i].mkfs, mkfs);
        }
        _cleanup_(pool_def_freep) struct pool_def *p = mk_fs("/dev/vdb", "/srv/pools/x", "ext4");
        _cleanup_strv_free_ char **argv = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(fs_umount_argv(p, &argv, &err), 0);
        check_golden("fs", "umount", argv);

        /* Nothing can make these; nothing is run. */
        const char *const nomake[] = {"iso9660", "vmfs", "gfs"};
        for (size_t i = 0; i < ELEMENTSOF(nomake); i++) {
                _cleanup_(pool_def_freep) struct pool_def *q =
                        mk_fs("/dev/vdb", "/srv/x", nomake[i]);
                _cleanup_strv_free_ char **m = NULL;
                assert_int_equal(fs_mkfs_argv(q, &m, &err), -EOPNOTSUPP);
                assert_null(m);
                assert_non_null(strstr(dv_error_message(&err), nomake[i]));
                dv_error_clear(&err);
        }
        /* A relative device would be an option to mount. */
        _cleanup_(pool_def_freep) struct pool_def *bad = mk_fs("-oremount", "/srv/x", NULL);
        _cleanup_strv_free_ char **b = NULL;
        assert_int_equal(fs_mount_argv(bad, &b, &err), -EINVAL);
        assert_string_equal(dv_error_message(&err),
                            "pool fspool: source device '-oremount' is not an absolute path");
        dv_error_clear(&err);
}

static void test_golden_netfs(void **state) {
        (void)state;
        static const struct {
                const char *host, *dir, *format;
                int port;
                const char *golden;
        } cases[] = {
                {"nas.example.org", "/export/images", NULL, 0, "mount-auto"},
                {"nas.example.org", "/export/images", "nfs", 0, "mount-nfs"},
                {"nas.example.org", "/export/images", "nfs", 2049, "mount-nfs-port"},
                {"2001:db8::1", "/export", "nfs", 0, "mount-nfs-ipv6"},
                {"fileserver", "/share", "cifs", 0, "mount-cifs"},
                {"fileserver", "share", "cifs", 445, "mount-cifs-port"},
                {"gluster1", "/gv0", "glusterfs", 0, "mount-glusterfs"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(pool_def_freep) struct pool_def *p =
                        mk_netfs(cases[i].host, cases[i].dir, cases[i].format, "/srv/pools/net");
                if (cases[i].port) {
                        p->source.has_port = true;
                        p->source.port = (uint16_t)cases[i].port;
                }
                struct dv_error err = DV_ERROR_INIT;
                _cleanup_strv_free_ char **argv = NULL;
                assert_int_equal(fs_mount_argv(p, &argv, &err), 0);
                check_golden("netfs", cases[i].golden, argv);
        }
        static const struct {
                const char *host, *dir, *format, *msg;
        } bad[] = {
                {"-oremount", "/x", "nfs", "pool netpool: host name '-oremount' cannot be used"},
                {"a b", "/x", "nfs", "pool netpool: host name 'a b' cannot be used"},
                {"h/x", "/x", "nfs", "pool netpool: host name 'h/x' cannot be used"},
                {"h", "x", "nfs", "pool netpool: source dir 'x' is not an absolute path"},
                {"h", "/a,b", "cifs", "pool netpool: source dir '/a,b' cannot be used"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(pool_def_freep) struct pool_def *p =
                        mk_netfs(bad[i].host, bad[i].dir, bad[i].format, "/srv/pools/net");
                struct dv_error err = DV_ERROR_INIT;
                _cleanup_strv_free_ char **argv = NULL;
                assert_int_equal(fs_mount_argv(p, &argv, &err), -EINVAL);
                assert_string_equal(dv_error_message(&err), bad[i].msg);
                dv_error_clear(&err);
        }
}

static void test_format_matches(void **state) {
        (void)state;
        assert_true(fs_format_matches(NULL, "ext4", true));
        assert_true(fs_format_matches("auto", "xfs", true));
        assert_false(fs_format_matches("auto", "swap", false));
        assert_false(fs_format_matches("auto", "ext4,dos", false));
        assert_true(fs_format_matches("ext4", "ext4", true));
        assert_false(fs_format_matches("ext4", "ext3", true));
        assert_false(fs_format_matches("vfat", "ext4", true));
        assert_true(fs_format_matches("hfs+", "hfsplus", true));
        assert_true(fs_format_matches("vmfs", "VMFS", true));
        assert_false(fs_format_matches("ext4", NULL, false));
        assert_null(fs_format_fstype("auto"));
        assert_null(fs_format_fstype(NULL));
        assert_string_equal(fs_format_fstype("hfs+"), "hfsplus");
}

/* ---- observe from the mount table --------------------------------------------------------- */

static void test_classify_fs(void **state) {
        (void)state;
        _cleanup_mount_table_ struct mount_table *t = sample_table();
        struct stat dev = {.st_mode = S_IFBLK | 0660, .st_rdev = makedev(7, 0)};
        struct pool_status s = {0};

        /* Mounted by name. */
        _cleanup_(pool_def_freep) struct pool_def *p =
                mk_fs("/dev/loop0", "/srv/pools/with space", "ext4");
        assert_int_equal(fs_classify_mounts(p, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_ACTIVE);
        pool_status_done(&s);

        /* Mounted by device number, under another name for the same device. */
        _cleanup_(pool_def_freep) struct pool_def *q =
                mk_fs("/dev/disk/by-id/loop-x", "/srv/pools/with space", "ext4");
        assert_int_equal(fs_classify_mounts(q, t, &dev, &s), 1);
        assert_int_equal(s.state, POOL_STATE_ACTIVE);
        pool_status_done(&s);

        /* The target holds another filesystem. */
        _cleanup_(pool_def_freep) struct pool_def *r =
                mk_fs("/dev/vdb", "/srv/pools/with space", "ext4");
        assert_int_equal(fs_classify_mounts(r, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_BROKEN);
        assert_string_equal(
                s.reason,
                "target /srv/pools/with space is mounted from /dev/loop0, not from /dev/vdb");
        pool_status_done(&s);

        /* The device is mounted somewhere else. */
        _cleanup_(pool_def_freep) struct pool_def *u = mk_fs("/dev/loop2", "/srv/pools/mine", NULL);
        assert_int_equal(fs_classify_mounts(u, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_BROKEN);
        assert_string_equal(
                s.reason,
                "source device /dev/loop2 is already mounted on /srv/bind, not on /srv/pools/mine");
        pool_status_done(&s);

        /* Stacked: the visible mount is the one that counts. */
        _cleanup_(pool_def_freep) struct pool_def *v =
                mk_fs("/dev/loop1", "/srv/pools/stacked", NULL);
        assert_int_equal(fs_classify_mounts(v, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_ACTIVE);
        pool_status_done(&s);

        /* Neither mounted: the caller looks at the device. */
        _cleanup_(pool_def_freep) struct pool_def *w = mk_fs("/dev/vdc", "/srv/pools/free", NULL);
        s.state = POOL_STATE_INACTIVE;
        assert_int_equal(fs_classify_mounts(w, t, NULL, &s), 0);
        assert_int_equal(s.state, POOL_STATE_INACTIVE);
        assert_null(s.reason);
}

static void test_classify_netfs(void **state) {
        (void)state;
        _cleanup_mount_table_ struct mount_table *t = sample_table();
        struct pool_status s = {0};

        _cleanup_(pool_def_freep) struct pool_def *p =
                mk_netfs("nas.example.org", "/export/images/", "nfs", "/srv/pools/nfs");
        assert_int_equal(fs_classify_mounts(p, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_ACTIVE);
        pool_status_done(&s);

        _cleanup_(pool_def_freep) struct pool_def *q =
                mk_netfs("nas.example.org", "/export/other", "nfs", "/srv/pools/nfs");
        assert_int_equal(fs_classify_mounts(q, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_BROKEN);
        assert_string_equal(s.reason, "target /srv/pools/nfs is mounted from "
                                      "nas.example.org:/export/images, not from "
                                      "nas.example.org:/export/other");
        pool_status_done(&s);

        /* The same export mounted elsewhere too is no conflict for a network share. */
        _cleanup_(pool_def_freep) struct pool_def *r =
                mk_netfs("nas.example.org", "/export/images", NULL, "/srv/pools/second");
        assert_int_equal(fs_classify_mounts(r, t, NULL, &s), 0);

        _cleanup_(pool_def_freep) struct pool_def *c =
                mk_netfs("fileserver", "/share\\x", "cifs", "/srv/pools/cifs");
        assert_int_equal(fs_classify_mounts(c, t, NULL, &s), 1);
        assert_int_equal(s.state, POOL_STATE_ACTIVE);
        pool_status_done(&s);
}

/* ---- the drivers' error paths, with nothing to mount -------------------------------------- */

static void test_fs_errors(void **state) {
        (void)state;
        const struct storage_driver *drv = storage_driver_get(POOL_FS);
        assert_non_null(drv);
        assert_ptr_equal(drv, &storage_driver_fs);
        _cleanup_free_ char *target = path_join(tmpdir, "target");
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status s = {0};

        /* A device that does not exist. */
        _cleanup_(pool_def_freep) struct pool_def *p =
                mk_fs("/dev/does-not-exist-declvirt", target, NULL);
        assert_int_equal(drv->pool_observe(p, &s, &err), 0);
        assert_int_equal(s.state, POOL_STATE_BROKEN);
        assert_string_equal(s.reason, "source device /dev/does-not-exist-declvirt does not exist");
        pool_status_done(&s);
        assert_int_equal(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), -ENOENT);
        assert_string_equal(dv_error_message(&err),
                            "source device /dev/does-not-exist-declvirt does not exist");
        dv_error_clear(&err);
        assert_int_equal(access(target, F_OK), -1); /* nothing made */

        /* Not a block device. */
        _cleanup_free_ char *img = mk_image("file.img", MiB);
        _cleanup_(pool_def_freep) struct pool_def *q = mk_fs(img, target, NULL);
        assert_int_equal(drv->pool_observe(q, &s, &err), 0);
        assert_int_equal(s.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(s.reason, "is not a block device"));
        pool_status_done(&s);
        assert_int_equal(drv->pool_build(q, DV_BUILD_IF_EMPTY, &err), -EINVAL);
        dv_error_clear(&err);
        assert_int_equal(drv->pool_start(q, &err), -ENOENT); /* no target yet */
        dv_error_clear(&err);

        /* A target that is a file: a refusal, nothing probed or made. */
        _cleanup_free_ char *file = mk_image("a-file", 0);
        _cleanup_(pool_def_freep) struct pool_def *r = mk_fs("/dev/null", file, NULL);
        assert_int_equal(drv->pool_build(r, DV_BUILD_IF_EMPTY, &err), -EEXIST);
        assert_non_null(strstr(dv_error_message(&err), "exists and is not a directory"));
        dv_error_clear(&err);

        /* Stop and delete of a pool that is not mounted: stop is a no-op, delete removes
         * the empty mount point only. */
        assert_int_equal(mkdir(target, 0755), 0);
        assert_int_equal(drv->pool_stop(p, &err), 0);
        _cleanup_free_ char *inside = path_join(target, "keep");
        _cleanup_free_ char *keep = mk_image("target/keep", 0);
        assert_int_equal(drv->pool_delete(p, &err), -ENOTEMPTY);
        dv_error_clear(&err);
        assert_int_equal(unlink(inside), 0);
        assert_int_equal(drv->pool_delete(p, &err), 0);
        assert_int_equal(access(target, F_OK), -1);

        /* Volumes only on the mounted filesystem, never in the bare directory. */
        struct vol_status *v = NULL;
        size_t n = 0;
        assert_int_equal(drv->vol_list(p, &v, &n, &err), -ENODEV);
        assert_non_null(strstr(dv_error_message(&err), "is not mounted on"));
        dv_error_clear(&err);
}

static void test_netfs_errors(void **state) {
        (void)state;
        const struct storage_driver *drv = storage_driver_get(POOL_NETFS);
        assert_ptr_equal(drv, &storage_driver_netfs);
        _cleanup_free_ char *target = path_join(tmpdir, "sub/net");
        struct dv_error err = DV_ERROR_INIT;
        struct pool_status s = {0};
        _cleanup_(pool_def_freep) struct pool_def *p =
                mk_netfs("192.0.2.1", "/export", "nfs", target);

        assert_int_equal(drv->pool_observe(p, &s, &err), 0);
        assert_int_equal(s.state, POOL_STATE_ABSENT);
        pool_status_done(&s);
        assert_int_equal(drv->pool_build(p, DV_BUILD_NO, &err), -ENOENT);
        dv_error_clear(&err);
        assert_int_equal(drv->pool_build(p, DV_BUILD_IF_EMPTY, &err), 0);
        struct stat st;
        assert_int_equal(stat(target, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(drv->pool_observe(p, &s, &err), 0);
        assert_int_equal(s.state, POOL_STATE_INACTIVE);
        pool_status_done(&s);
        assert_int_equal(drv->pool_stop(p, &err), 0);
        assert_int_equal(drv->pool_delete(p, &err), 0);

        _cleanup_free_ char *file = mk_image("netfile", 0);
        _cleanup_(pool_def_freep) struct pool_def *q = mk_netfs("h", "/x", NULL, file);
        assert_int_equal(drv->pool_observe(q, &s, &err), 0);
        assert_int_equal(s.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(s.reason, "is not a directory"));
        pool_status_done(&s);
        assert_int_equal(drv->pool_build(q, DV_BUILD_IF_EMPTY, &err), -EEXIST);
        dv_error_clear(&err);

        _cleanup_(pool_def_freep) struct pool_def *bad = mk_netfs("-x", "/x", NULL, "/srv/x");
        assert_int_equal(drv->pool_observe(bad, &s, &err), -EINVAL);
        dv_error_clear(&err);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_probe_empty, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_probe_swap, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_probe_ext4, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_probe_dos_label, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_probe_gpt_label, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_probe_several, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_probe_missing, setup_tmp, teardown_tmp),
                cmocka_unit_test(test_unescape),
                cmocka_unit_test(test_mountinfo_parse),
                cmocka_unit_test(test_mountinfo_stacked),
                cmocka_unit_test(test_golden_fs),
                cmocka_unit_test(test_golden_netfs),
                cmocka_unit_test(test_format_matches),
                cmocka_unit_test(test_classify_fs),
                cmocka_unit_test(test_classify_netfs),
                cmocka_unit_test_setup_teardown(test_fs_errors, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_netfs_errors, setup_tmp, teardown_tmp),
                /* Last: it moves the whole test process into a mount namespace. */
                cmocka_unit_test_setup_teardown(test_mountinfo_cache, setup_tmp, teardown_tmp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
