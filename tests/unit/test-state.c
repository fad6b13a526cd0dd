/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state store and lock on the real filesystem: atomic batched writes, skipped
 * unchanged files, removal, path checks, modes, the lock, and ENOSPC/EROFS recovery
 * on a small tmpfs (root only). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "state/state.h"
#include "tests/helpers/testlib.h"
#include "util/error.h"
#include "util/strv.h"

/* snprintf into an array that fails the test rather than truncate. */
#define FMT(buf, ...)                                                              \
        do {                                                                       \
                if (snprintf((buf), sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf)) \
                        fail_msg("string too long for %s", #buf);                  \
        } while (0)

struct fx {
        char *dir; /* the mkdtemp directory */
        char root[PATH_MAX];
        char mnt[PATH_MAX];
        bool mounted;
        struct state_store *s;
};

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof(*f));
        if (!f)
                return -1;
        f->dir = test_mkdtemp("declvirt-state");
        FMT(f->root, "%s/state", f->dir);
        *state = f;
        return 0;
}

/* Runs even when the test failed, so a tmpfs never stays mounted. */
static int teardown(void **state) {
        struct fx *f = *state;
        state_store_free(f->s);
        if (f->mounted) {
                char cmd[PATH_MAX + 64];
                FMT(cmd, "umount '%s' 2>/dev/null || umount -l '%s'", f->mnt, f->mnt);
                if (system(cmd) != 0)
                        print_message("could not unmount %s\n", f->mnt);
        }
        test_rm_rf(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static const char *path_in(const char *root, const char *rel) {
        static char buf[4][PATH_MAX];
        static unsigned i;
        char *p = buf[i++ % 4];
        if (snprintf(p, PATH_MAX, "%s/%s", root, rel) >= PATH_MAX)
                fail_msg("path too long");
        return p;
}

static void open_store(struct fx *f, const char *root) {
        struct dv_error err = DV_ERROR_INIT;
        state_store_free(f->s);
        f->s = NULL;
        int r = state_store_open(root, &f->s, &err);
        if (r < 0)
                fail_msg("state_store_open(%s): %s", root, strerror(-r));
        dv_error_clear(&err);
}

static int commit_ok(struct state_store *s) {
        struct dv_error err = DV_ERROR_INIT;
        int r = state_store_commit(s, &err);
        if (r < 0)
                fail_msg("commit failed: %s", dv_error_message(&err));
        assert_false(dv_error_failed(&err));
        return r;
}

static void put_ok(struct state_store *s, const char *rel, const char *data, int expected) {
        int r = state_store_put(s, rel, data, strlen(data), 0);
        if (r != expected)
                fail_msg("put %s returned %d, expected %d", rel, r, expected);
}

static void assert_content(const char *path, const char *expected) {
        size_t len;
        char *data = test_read_file(path, &len);
        assert_int_equal(len, strlen(expected));
        assert_memory_equal(data, expected, len);
        free(data);
}

static void assert_absent(const char *path) {
        struct stat st;
        if (lstat(path, &st) == 0)
                fail_msg("%s exists", path);
        assert_int_equal(errno, ENOENT);
}

static mode_t mode_of(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                fail_msg("cannot stat %s", path);
        return st.st_mode & 07777;
}

static unsigned temps_found;
static int count_temp(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        const char *name = p + ftw->base;
        size_t n = strlen(name);
        if (name[0] == '.' && n >= 4 && strcmp(name + n - 4, ".tmp") == 0) {
                print_message("temp file left: %s\n", p);
                temps_found++;
        }
        return 0;
}

static unsigned count_temps(const char *dir) {
        temps_found = 0;
        nftw(dir, count_temp, 16, FTW_PHYS);
        return temps_found;
}

static void write_plain(const char *path, const char *data) {
        FILE *fp = fopen(path, "we");
        if (!fp)
                fail_msg("cannot create %s", path);
        fputs(data, fp);
        fclose(fp);
}

/* ---- basic writes --------------------------------------------------------------------- */

static void test_put_commit_writes(void **state) {
        struct fx *f = *state;
        open_store(f, f->root);
        assert_string_equal(state_store_root(f->s), f->root);
        put_ok(f->s, "pools/p1.xml", "<pool type='dir'/>\n", 1);
        put_ok(f->s, "status.xml", "<status/>\n", 1);
        assert_int_equal(state_store_put(f->s, "empty", "", 0, 0), 1);
        assert_int_equal(commit_ok(f->s), 3);
        assert_content(path_in(f->root, "pools/p1.xml"), "<pool type='dir'/>\n");
        assert_content(path_in(f->root, "status.xml"), "<status/>\n");
        assert_content(path_in(f->root, "empty"), "");
        assert_int_equal(mode_of(path_in(f->root, "pools/p1.xml")), 0644);
        assert_int_equal(mode_of(path_in(f->root, "pools")), 0755);
        assert_int_equal(mode_of(f->root), 0755);

        char *data = NULL;
        size_t len = 0;
        assert_int_equal(state_store_read(f->s, "pools/p1.xml", &data, &len), 0);
        assert_int_equal(len, strlen("<pool type='dir'/>\n"));
        assert_string_equal(data, "<pool type='dir'/>\n");
        free(data);
        assert_int_equal(state_store_read(f->s, "pools/nope.xml", &data, &len), -ENOENT);
        /* An empty queue commits nothing. */
        assert_int_equal(commit_ok(f->s), 0);
        assert_int_equal(count_temps(f->dir), 0);
}

static void test_unchanged_not_rewritten(void **state) {
        struct fx *f = *state;
        const char *p = path_in(f->root, "networks/n1.xml");
        open_store(f, f->root);
        put_ok(f->s, "networks/n1.xml", "<network/>\n", 1);
        assert_int_equal(commit_ok(f->s), 1);
        struct stat st1, st2;
        assert_int_equal(stat(p, &st1), 0);

        put_ok(f->s, "networks/n1.xml", "<network/>\n", 0);
        assert_int_equal(commit_ok(f->s), 0);
        assert_int_equal(stat(p, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);
        assert_int_equal(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
        assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);

        /* A new store (an agent restart) reads the file on first sight. */
        open_store(f, f->root);
        put_ok(f->s, "networks/n1.xml", "<network/>\n", 0);
        assert_int_equal(commit_ok(f->s), 0);
        assert_int_equal(stat(p, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);

        /* A put that restores what is on disk cancels the earlier put of the batch. */
        put_ok(f->s, "networks/n1.xml", "<network>other</network>\n", 1);
        put_ok(f->s, "networks/n1.xml", "<network/>\n", 0);
        assert_int_equal(commit_ok(f->s), 0);
        assert_int_equal(stat(p, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);

        /* Same content, another mode: rewritten. */
        assert_int_equal(state_store_put(f->s, "networks/n1.xml", "<network/>\n", 11, 0640), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_int_equal(mode_of(p), 0640);
        assert_int_equal(state_store_put(f->s, "networks/n1.xml", "<network/>\n", 11, 0640), 0);

        /* Edited behind the store's back (same size, another mtime): looked at again. */
        write_plain(p, "<NETWORK/>\n");
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
        assert_int_equal(state_store_put(f->s, "networks/n1.xml", "<network/>\n", 11, 0640), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(p, "<network/>\n");

        /* Deleted behind the store's back: written again. */
        assert_int_equal(unlink(p), 0);
        assert_int_equal(state_store_put(f->s, "networks/n1.xml", "<network/>\n", 11, 0640), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(p, "<network/>\n");
}

static void test_changed_rewritten(void **state) {
        struct fx *f = *state;
        const char *p = path_in(f->root, "domains/web1.xml");
        open_store(f, f->root);
        put_ok(f->s, "domains/web1.xml", "<domain>one</domain>\n", 1);
        assert_int_equal(commit_ok(f->s), 1);
        struct stat st1, st2;
        assert_int_equal(stat(p, &st1), 0);
        put_ok(f->s, "domains/web1.xml", "<domain>two, longer</domain>\n", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(p, "<domain>two, longer</domain>\n");
        assert_int_equal(stat(p, &st2), 0);
        /* Replaced by rename, never rewritten in place. */
        assert_int_not_equal(st1.st_ino, st2.st_ino);
        /* Same size, other bytes. */
        put_ok(f->s, "domains/web1.xml", "<domain>TWO, LONGER</domain>\n", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(p, "<domain>TWO, LONGER</domain>\n");
        assert_int_equal(count_temps(f->dir), 0);
}

static void test_stale_temps_removed_at_open(void **state) {
        struct fx *f = *state;
        open_store(f, f->root);
        put_ok(f->s, "pools/p1.xml", "x", 1);
        put_ok(f->s, "volumes/p1/v1.xml", "x", 1);
        assert_int_equal(commit_ok(f->s), 2);
        state_store_free(f->s);
        f->s = NULL;

        char live[128], mine[128];
        /* PIDs above pid_max (at most 4194304) belong to nobody. */
        write_plain(path_in(f->root, "pools/.p1.xml.999999999.1.tmp"), "partial");
        write_plain(path_in(f->root, "volumes/p1/.v1.xml.999999999.2.tmp"), "partial");
        write_plain(path_in(f->root, ".junk.tmp"), "partial");
        FMT(mine, "pools/.p2.xml.%d.7.tmp", (int)getpid());
        write_plain(path_in(f->root, mine), "partial");
        /* A writer that is alive (our parent) is in the middle of its commit. */
        FMT(live, "pools/.p3.xml.%d.1.tmp", (int)getppid());
        write_plain(path_in(f->root, live), "partial");
        write_plain(path_in(f->root, ".keep"), "not a temp");
        write_plain(path_in(f->root, "pools/x.tmp"), "not a temp");

        open_store(f, f->root);
        assert_absent(path_in(f->root, "pools/.p1.xml.999999999.1.tmp"));
        assert_absent(path_in(f->root, "volumes/p1/.v1.xml.999999999.2.tmp"));
        assert_absent(path_in(f->root, ".junk.tmp"));
        assert_absent(path_in(f->root, mine));
        assert_content(path_in(f->root, live), "partial");
        assert_content(path_in(f->root, ".keep"), "not a temp");
        assert_content(path_in(f->root, "pools/x.tmp"), "not a temp");
        assert_content(path_in(f->root, "pools/p1.xml"), "x");
}

static void test_batch_of_1000(void **state) {
        struct fx *f = *state;
        open_store(f, f->root);
        char rel[128], data[128];
        for (int i = 0; i < 1000; i++) {
                if (i < 600)
                        FMT(rel, "domains/d%04d.xml", i);
                else
                        FMT(rel, "volumes/pool%d/v%04d.xml", i % 8, i);
                FMT(data, "<object n='%d'/>\n", i);
                put_ok(f->s, rel, data, 1);
        }
        assert_int_equal(commit_ok(f->s), 1000);
        for (int i = 0; i < 1000; i++) {
                if (i < 600)
                        FMT(rel, "domains/d%04d.xml", i);
                else
                        FMT(rel, "volumes/pool%d/v%04d.xml", i % 8, i);
                FMT(data, "<object n='%d'/>\n", i);
                assert_content(path_in(f->root, rel), data);
        }
        char **names = NULL;
        assert_int_equal(state_store_list(f->s, "domains", &names), 600);
        assert_string_equal(names[0], "d0000.xml");
        assert_string_equal(names[599], "d0599.xml");
        strv_free(names);
        assert_int_equal(count_temps(f->dir), 0);

        /* Again: nothing to do. Then ten changed. */
        for (int i = 0; i < 1000; i++) {
                if (i < 600)
                        FMT(rel, "domains/d%04d.xml", i);
                else
                        FMT(rel, "volumes/pool%d/v%04d.xml", i % 8, i);
                FMT(data, "<object n='%d'%s/>\n", i, i % 100 == 0 ? " changed='yes'" : "");
                put_ok(f->s, rel, data, i % 100 == 0 ? 1 : 0);
        }
        assert_int_equal(commit_ok(f->s), 10);
        assert_content(path_in(f->root, "domains/d0100.xml"), "<object n='100' changed='yes'/>\n");
        assert_int_equal(count_temps(f->dir), 0);
}

/* ---- removal ---------------------------------------------------------------------------- */

static void test_remove(void **state) {
        struct fx *f = *state;
        open_store(f, f->root);
        put_ok(f->s, "volumes/p1/a.xml", "a", 1);
        put_ok(f->s, "volumes/p1/b.xml", "b", 1);
        put_ok(f->s, "pools/p1.xml", "p", 1);
        assert_int_equal(commit_ok(f->s), 3);

        assert_int_equal(state_store_remove(f->s, "volumes/p1/a.xml"), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_absent(path_in(f->root, "volumes/p1/a.xml"));
        assert_content(path_in(f->root, "volumes/p1/b.xml"), "b");

        /* The last volume of a pool takes the pool's directory with it, not volumes/. */
        assert_int_equal(state_store_remove(f->s, "volumes/p1/b.xml"), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_absent(path_in(f->root, "volumes/p1"));
        assert_int_equal(mode_of(path_in(f->root, "volumes")), 0755);

        assert_int_equal(state_store_remove(f->s, "pools/p1.xml"), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_absent(path_in(f->root, "pools/p1.xml"));
        assert_int_equal(mode_of(path_in(f->root, "pools")), 0755);

        /* Absent: no error, nothing to do. */
        assert_int_equal(state_store_remove(f->s, "pools/p1.xml"), 0);
        assert_int_equal(state_store_remove(f->s, "nodir/x.xml"), 0);
        assert_int_equal(commit_ok(f->s), 0);

        /* put then remove in one batch: nothing happens. */
        put_ok(f->s, "pools/x.xml", "x", 1);
        assert_int_equal(state_store_remove(f->s, "pools/x.xml"), 0);
        assert_int_equal(commit_ok(f->s), 0);
        assert_absent(path_in(f->root, "pools/x.xml"));

        /* remove then put: the put wins. */
        put_ok(f->s, "pools/y.xml", "old", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_int_equal(state_store_remove(f->s, "pools/y.xml"), 1);
        put_ok(f->s, "pools/y.xml", "new", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(path_in(f->root, "pools/y.xml"), "new");

        /* put then remove of an existing file: removed. */
        put_ok(f->s, "pools/y.xml", "newer", 1);
        assert_int_equal(state_store_remove(f->s, "pools/y.xml"), 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_absent(path_in(f->root, "pools/y.xml"));

        /* Removed behind the store's back after being queued: still no error. */
        put_ok(f->s, "pools/z.xml", "z", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_int_equal(state_store_remove(f->s, "pools/z.xml"), 1);
        assert_int_equal(unlink(path_in(f->root, "pools/z.xml")), 0);
        assert_int_equal(commit_ok(f->s), 0);
        assert_int_equal(count_temps(f->dir), 0);
}

/* ---- paths -------------------------------------------------------------------------------- */

static void test_path_traversal_refused(void **state) {
        struct fx *f = *state;
        open_store(f, f->root);
        static const char *const bad[] = {
                "../x.xml",
                "/etc/passwd",
                "pools/../../x.xml",
                "pools/..",
                "..",
                ".",
                "",
                "a//b.xml",
                "./a.xml",
                "pools/./a.xml",
                "pools/",
                ".lock",
                "pools/.a.xml.1.2.tmp",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *data = NULL;
                if (state_store_put(f->s, bad[i], "x", 1, 0) != -EINVAL)
                        fail_msg("put accepted '%s'", bad[i]);
                if (state_store_remove(f->s, bad[i]) != -EINVAL)
                        fail_msg("remove accepted '%s'", bad[i]);
                if (state_store_read(f->s, bad[i], &data, NULL) != -EINVAL)
                        fail_msg("read accepted '%s'", bad[i]);
        }
        static const char *const bad_dirs[] = {"..",   "../x",   "/etc", "pools/../..",
                                               "a//b", "pools/", "."};
        for (size_t i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++) {
                char **names = NULL;
                if (state_store_list(f->s, bad_dirs[i], &names) != -EINVAL)
                        fail_msg("list accepted '%s'", bad_dirs[i]);
                strv_free(names);
        }
        assert_int_equal(state_store_put(f->s, NULL, "x", 1, 0), -EINVAL);
        char longname[300];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(state_store_put(f->s, longname, "x", 1, 0), -EINVAL);
        assert_int_equal(commit_ok(f->s), 0);

        /* A symlinked directory inside the root is not followed. */
        char outside[PATH_MAX];
        FMT(outside, "%s/outside", f->dir);
        assert_int_equal(mkdir(outside, 0755), 0);
        assert_int_equal(symlink(outside, path_in(f->root, "evil")), 0);
        put_ok(f->s, "pools/fine.xml", "fine", 1);
        put_ok(f->s, "evil/x.xml", "x", 1);
        struct dv_error err = DV_ERROR_INIT;
        int r = state_store_commit(f->s, &err);
        assert_true(r < 0);
        assert_non_null(strstr(dv_error_message(&err), "evil"));
        dv_error_clear(&err);
        assert_absent(path_in(outside, "x.xml"));
        /* The directory the failed batch created is gone again. */
        assert_absent(path_in(f->root, "pools"));
        assert_int_equal(count_temps(f->dir), 0);

        /* A symlink as the final name is replaced, its target left alone. */
        write_plain(path_in(outside, "target"), "secret");
        assert_int_equal(mkdir(path_in(f->root, "pools"), 0755), 0);
        assert_int_equal(symlink(path_in(outside, "target"), path_in(f->root, "pools/link.xml")),
                         0);
        char *data = NULL;
        assert_int_equal(state_store_read(f->s, "pools/link.xml", &data, NULL), -ELOOP);
        put_ok(f->s, "pools/link.xml", "mine", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(path_in(outside, "target"), "secret");
        struct stat st;
        assert_int_equal(lstat(path_in(f->root, "pools/link.xml"), &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_content(path_in(f->root, "pools/link.xml"), "mine");
}

/* ---- modes ---------------------------------------------------------------------------------- */

static void test_modes(void **state) {
        struct fx *f = *state;
        /* The modes do not depend on the umask. */
        mode_t old = umask(0077);
        open_store(f, f->root);
        put_ok(f->s, "applied/domain-web1.json", "{}", 1);
        assert_int_equal(state_store_put(f->s, "applied/pool-p1.json", "{}", 2, 0644), 1);
        put_ok(f->s, "pools/p1.xml", "p", 1);
        assert_int_equal(state_store_put(f->s, "metrics.prom", "m", 1, 0640), 1);
        int r = state_store_commit(f->s, NULL);
        umask(old);
        assert_int_equal(r, 4);
        assert_int_equal(mode_of(path_in(f->root, "applied")), 0700);
        assert_int_equal(mode_of(path_in(f->root, "applied/domain-web1.json")), 0600);
        assert_int_equal(mode_of(path_in(f->root, "applied/pool-p1.json")), 0600);
        assert_int_equal(mode_of(path_in(f->root, "pools")), 0755);
        assert_int_equal(mode_of(path_in(f->root, "pools/p1.xml")), 0644);
        assert_int_equal(mode_of(path_in(f->root, "metrics.prom")), 0640);

        char **names = NULL;
        write_plain(path_in(f->root, "applied/.hidden"), "x");
        assert_int_equal(state_store_list(f->s, "applied", &names), 2);
        assert_string_equal(names[0], "domain-web1.json");
        assert_string_equal(names[1], "pool-p1.json");
        assert_null(names[2]);
        strv_free(names);
        assert_int_equal(state_store_list(f->s, "nothing", &names), -ENOENT);
        assert_int_equal(state_store_list(f->s, NULL, &names), 1);
        assert_string_equal(names[0], "metrics.prom");
        strv_free(names);
}

/* ---- failures ------------------------------------------------------------------------------- */

/* A failure in the middle of a batch leaves no temp file and no half-applied batch. */
static void test_failure_leaves_nothing(void **state) {
        struct fx *f = *state;
        open_store(f, f->root);
        put_ok(f->s, "pools/good.xml", "old", 1);
        assert_int_equal(commit_ok(f->s), 1);
        write_plain(path_in(f->root, "blocker"), "a file where a directory should be");

        put_ok(f->s, "pools/good.xml", "new", 1);
        put_ok(f->s, "volumes/new/v.xml", "v", 1);
        put_ok(f->s, "blocker/x.xml", "x", 1);
        struct dv_error err = DV_ERROR_INIT;
        int r = state_store_commit(f->s, &err);
        assert_int_equal(r, -ENOTDIR);
        char expected[PATH_MAX + 64];
        FMT(expected, "cannot open directory %s/blocker: Not a directory", f->root);
        assert_string_equal(dv_error_message(&err), expected);
        dv_error_clear(&err);
        assert_content(path_in(f->root, "pools/good.xml"), "old");
        assert_absent(path_in(f->root, "volumes"));
        assert_int_equal(count_temps(f->dir), 0);

        /* The queue was dropped. */
        assert_int_equal(commit_ok(f->s), 0);
        assert_content(path_in(f->root, "pools/good.xml"), "old");
        put_ok(f->s, "pools/good.xml", "new", 1);
        assert_int_equal(commit_ok(f->s), 1);
        assert_content(path_in(f->root, "pools/good.xml"), "new");
}

/* Mounts a tmpfs of that size at DIR/mnt and moves the state root onto it; false
 * (with the reason printed) when that is not possible here. */
static bool mount_tmpfs(struct fx *f, const char *size) {
        if (geteuid() != 0) {
                print_message("skipping: mounting a tmpfs needs root\n");
                return false;
        }
        FMT(f->mnt, "%s/mnt", f->dir);
        if (mkdir(f->mnt, 0755) < 0)
                fail_msg("cannot create %s", f->mnt);
        char cmd[PATH_MAX + 64];
        FMT(cmd, "mount -t tmpfs -o size=%s tmpfs '%s'", size, f->mnt);
        if (system(cmd) != 0) {
                print_message("skipping: '%s' failed (no mount permission here?)\n", cmd);
                return false;
        }
        f->mounted = true;
        FMT(f->root, "%s/state", f->mnt);
        return true;
}

/* Fills the filesystem, then gives back `pages` pages. */
static void fill(const char *path, unsigned pages) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                fail_msg("cannot create %s", path);
        static char chunk[4096];
        memset(chunk, 'F', sizeof(chunk));
        off_t size = 0;
        for (;;) {
                ssize_t k = write(fd, chunk, sizeof(chunk));
                if (k < 0) {
                        if (errno != ENOSPC)
                                fail_msg("filling %s: %s", path, strerror(errno));
                        break;
                }
                size += k;
        }
        if (ftruncate(fd, size > (off_t)pages * 4096 ? size - (off_t)pages * 4096 : 0) < 0)
                fail_msg("ftruncate");
        close(fd);
}

static void test_enospc(void **state) {
        struct fx *f = *state;
        if (!mount_tmpfs(f, "64k"))
                skip();
        open_store(f, f->root);
        put_ok(f->s, "pools/a.xml", "old-a", 1);
        put_ok(f->s, "applied/b.json", "old-b", 1);
        assert_int_equal(commit_ok(f->s), 2);

        char filler[PATH_MAX];
        FMT(filler, "%s/filler", f->mnt);
        /* Room for two small files: the first two temp files fit, the third does not. */
        fill(filler, 2);
        static char big[16384];
        memset(big, 'B', sizeof(big) - 1);
        put_ok(f->s, "pools/a.xml", "new-a", 1);
        put_ok(f->s, "applied/b.json", "new-b", 1);
        put_ok(f->s, "volumes/p1/big.xml", big, 1);
        struct dv_error err = DV_ERROR_INIT;
        int r = state_store_commit(f->s, &err);
        assert_int_equal(r, -ENOSPC);
        char expected[PATH_MAX + 64];
        FMT(expected, "cannot write %s/volumes/p1/big.xml: No space left on device", f->root);
        assert_string_equal(dv_error_message(&err), expected);
        dv_error_clear(&err);
        assert_content(path_in(f->root, "pools/a.xml"), "old-a");
        assert_content(path_in(f->root, "applied/b.json"), "old-b");
        assert_absent(path_in(f->root, "volumes"));
        assert_int_equal(count_temps(f->mnt), 0);
        assert_int_equal(commit_ok(f->s), 0);

        /* Entirely full: even the first temp file fails. */
        fill(filler, 0);
        put_ok(f->s, "pools/a.xml", "new-a", 1);
        r = state_store_commit(f->s, NULL);
        assert_int_equal(r, -ENOSPC);
        assert_content(path_in(f->root, "pools/a.xml"), "old-a");
        assert_int_equal(count_temps(f->mnt), 0);

        /* Space back: the same puts succeed. */
        assert_int_equal(unlink(filler), 0);
        put_ok(f->s, "pools/a.xml", "new-a", 1);
        put_ok(f->s, "applied/b.json", "new-b", 1);
        put_ok(f->s, "volumes/p1/big.xml", big, 1);
        assert_int_equal(commit_ok(f->s), 3);
        assert_content(path_in(f->root, "pools/a.xml"), "new-a");
        assert_content(path_in(f->root, "applied/b.json"), "new-b");
        assert_content(path_in(f->root, "volumes/p1/big.xml"), big);
        assert_int_equal(mode_of(path_in(f->root, "applied/b.json")), 0600);
        assert_int_equal(count_temps(f->mnt), 0);
}

static void test_erofs(void **state) {
        struct fx *f = *state;
        if (!mount_tmpfs(f, "1m"))
                skip();
        open_store(f, f->root);
        put_ok(f->s, "pools/a.xml", "old-a", 1);
        put_ok(f->s, "status.xml", "old-status", 1);
        assert_int_equal(commit_ok(f->s), 2);

        char cmd[PATH_MAX + 64];
        FMT(cmd, "mount -o remount,ro '%s'", f->mnt);
        assert_int_equal(system(cmd), 0);
        put_ok(f->s, "pools/a.xml", "new-a", 1);
        put_ok(f->s, "status.xml", "new-status", 1);
        put_ok(f->s, "networks/n1.xml", "n1", 1);
        struct dv_error err = DV_ERROR_INIT;
        int r = state_store_commit(f->s, &err);
        assert_int_equal(r, -EROFS);
        char expected[PATH_MAX + 64];
        FMT(expected, "cannot write %s/pools/a.xml: Read-only file system", f->root);
        assert_string_equal(dv_error_message(&err), expected);
        dv_error_clear(&err);
        assert_content(path_in(f->root, "pools/a.xml"), "old-a");
        assert_content(path_in(f->root, "status.xml"), "old-status");
        assert_absent(path_in(f->root, "networks"));
        assert_int_equal(count_temps(f->mnt), 0);
        /* Reading still works, and the store still knows what is there. */
        char *data = NULL;
        assert_int_equal(state_store_read(f->s, "pools/a.xml", &data, NULL), 0);
        assert_string_equal(data, "old-a");
        free(data);
        put_ok(f->s, "pools/a.xml", "old-a", 0);

        FMT(cmd, "mount -o remount,rw '%s'", f->mnt);
        assert_int_equal(system(cmd), 0);
        put_ok(f->s, "pools/a.xml", "new-a", 1);
        put_ok(f->s, "status.xml", "new-status", 1);
        put_ok(f->s, "networks/n1.xml", "n1", 1);
        assert_int_equal(commit_ok(f->s), 3);
        assert_content(path_in(f->root, "pools/a.xml"), "new-a");
        assert_content(path_in(f->root, "status.xml"), "new-status");
        assert_content(path_in(f->root, "networks/n1.xml"), "n1");
        assert_int_equal(count_temps(f->mnt), 0);
}

/* ---- the lock ------------------------------------------------------------------------------- */

static void test_lock(void **state) {
        struct fx *f = *state;
        struct dv_error err = DV_ERROR_INIT;
        int fd = -1;
        assert_int_equal(state_lock(f->root, &fd, &err), 0);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        char pidline[32];
        FMT(pidline, "%d\n", (int)getpid());
        assert_content(path_in(f->root, ".lock"), pidline);
        /* Only root can open it, so only root can flock it (test_lock_exposed). */
        assert_int_equal(mode_of(path_in(f->root, ".lock")), 0600);

        char expected[PATH_MAX + 96];
        FMT(expected, "another declvirt agent (PID %d) is using %s", (int)getpid(), f->root);

        /* A second holder in another process is refused and told who holds it. */
        fflush(NULL);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                struct dv_error cerr = DV_ERROR_INIT;
                int cfd = -1;
                int r = state_lock(f->root, &cfd, &cerr);
                int code = 0;
                if (r != -EBUSY)
                        code = 1;
                else if (!dv_error_message(&cerr) ||
                         strcmp(dv_error_message(&cerr), expected) != 0) {
                        fprintf(stderr, "child got: %s\n", strna(dv_error_message(&cerr)));
                        code = 2;
                }
                _exit(code);
        }
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* The same process opening it again is a second holder too. */
        int fd2 = -1;
        assert_int_equal(state_lock(f->root, &fd2, &err), -EBUSY);
        assert_string_equal(dv_error_message(&err), expected);
        dv_error_clear(&err);

        /* Released by closing: the next agent gets it and writes its own PID. */
        close(fd);
        fflush(NULL);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                struct dv_error cerr = DV_ERROR_INIT;
                int cfd = -1;
                _exit(state_lock(f->root, &cfd, &cerr) == 0 ? 0 : 1);
        }
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(state_lock(f->root, &fd, &err), 0);
        assert_content(path_in(f->root, ".lock"), pidline);
        close(fd);
}

/* A lock file others can open (0644, from an older version): a user who opened it can
 * flock it and keep the agent from starting. An agent that gets the lock puts a 0600
 * file in its place; one held by somebody whose PID is not in it is reported. */
static void test_lock_exposed(void **state) {
        struct fx *f = *state;
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(chmod(f->dir, 0755), 0);
        const char *lock = path_in(f->root, ".lock");
        write_plain(lock, "999999999\n"); /* above pid_max: a dead agent's */
        assert_int_equal(chmod(lock, 0644), 0);

        /* nobody opens it while it is readable, and keeps the descriptor. */
        fflush(NULL);
        int pipefd[2], back[2];
        assert_int_equal(pipe(pipefd), 0);
        assert_int_equal(pipe(back), 0);
        pid_t attacker = fork();
        assert_true(attacker >= 0);
        if (attacker == 0) {
                close(pipefd[1]);
                close(back[0]);
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(10);
                int afd = open(lock, O_RDONLY | O_CLOEXEC);
                if (afd < 0 || flock(afd, LOCK_SH | LOCK_NB) < 0 || write(back[1], "h", 1) != 1)
                        _exit(11);
                char c;
                /* Holds the lock until told, then keeps only the descriptor. */
                if (read(pipefd[0], &c, 1) != 1)
                        _exit(12);
                if (flock(afd, LOCK_UN) < 0 || write(back[1], "u", 1) != 1)
                        _exit(16);
                if (read(pipefd[0], &c, 1) != 1)
                        _exit(13);
                /* The old file is no longer the lock: flocking it stops nobody. */
                if (flock(afd, LOCK_EX | LOCK_NB) < 0 || write(back[1], "L", 1) != 1)
                        _exit(14);
                if (read(pipefd[0], &c, 1) != 0)
                        _exit(15);
                _exit(0);
        }
        close(pipefd[0]);
        close(back[1]);
        char c;
        assert_int_equal(read(back[0], &c, 1), 1); /* it holds the lock */

        struct dv_error err = DV_ERROR_INIT;
        int fd = -1;
        assert_int_equal(state_lock(f->root, &fd, &err), -EBUSY);
        char expected[3 * PATH_MAX];
        FMT(expected,
            "%s is locked by a process that is not a declvirt agent (the file is mode 0644, owner 0, so others can open it): remove %s and start again",
            lock, lock);
        assert_string_equal(dv_error_message(&err), expected);
        dv_error_clear(&err);

        /* The attacker lets go but keeps its descriptor: the agent replaces the file. */
        assert_int_equal(write(pipefd[1], "u", 1), 1);
        struct stat old;
        assert_int_equal(stat(lock, &old), 0);
        assert_int_equal(read(back[0], &c, 1), 1);
        assert_int_equal(state_lock(f->root, &fd, &err), 0);
        assert_true(fd >= 0);
        struct stat now;
        assert_int_equal(stat(lock, &now), 0);
        assert_true(now.st_ino != old.st_ino);
        assert_int_equal(now.st_mode & 07777, 0600);
        char pidline[32];
        FMT(pidline, "%d\n", (int)getpid());
        assert_content(lock, pidline);
        assert_int_equal(count_temps(f->root), 0);

        /* The attacker's flock on the old file does not keep the next agent out. */
        assert_int_equal(write(pipefd[1], "x", 1), 1);
        assert_int_equal(read(back[0], &c, 1), 1);
        close(fd);
        fd = -1;
        assert_int_equal(state_lock(f->root, &fd, &err), 0);
        assert_int_equal(stat(lock, &old), 0);
        assert_true(now.st_ino == old.st_ino); /* a 0600 file is kept */
        close(fd);
        close(pipefd[1]);
        close(back[0]);
        int status = 0;
        assert_int_equal(waitpid(attacker, &status, 0), attacker);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* nobody cannot open the new one at all. */
        fflush(NULL);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(10);
                _exit(open(lock, O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES ? 0 : 1);
        }
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* A FIFO where the lock should be does not hang the agent. */
static void test_lock_fifo(void **state) {
        struct fx *f = *state;
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(mkfifo(path_in(f->root, ".lock"), 0666), 0);
        struct dv_error err = DV_ERROR_INIT;
        int fd = -1;
        assert_int_equal(state_lock(f->root, &fd, &err), -EBADFD);
        char expected[PATH_MAX + 64];
        FMT(expected, "%s/.lock is not a regular file: remove it", f->root);
        assert_string_equal(dv_error_message(&err), expected);
        dv_error_clear(&err);
        pid_t pid = 0;
        assert_int_equal(state_lock_probe(f->root, &pid), -EBADFD);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_put_commit_writes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unchanged_not_rewritten, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_rewritten, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_temps_removed_at_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch_of_1000, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_path_traversal_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failure_leaves_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
                cmocka_unit_test_setup_teardown(test_erofs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_exposed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_fifo, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
