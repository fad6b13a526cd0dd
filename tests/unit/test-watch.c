/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The desired_dir watcher on real directories: debounce, subdirectories created, moved
 * in and out, depth limit, root removed and re-created, dot-files, queue overflow. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/watch.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define MSEC USEC_PER_MSEC

struct recorder {
        unsigned calls;
        unsigned full_calls;
        char **last; /* dirs of the last call */
        char **seen; /* every dir reported since the last reset */
        uint64_t last_usec;
        bool bad_list; /* a list was unsorted, had duplicates or relative paths */
};

struct fx {
        sd_event *e;
        char *base; /* mkdtemp; the root and "outside" live here */
        char *root;
        struct dv_watch *w;
        struct recorder rec;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void recorder_reset(struct recorder *r) {
        strv_free(r->last);
        strv_free(r->seen);
        *r = (struct recorder){0};
}

static void on_watch(struct dv_watch *w, bool full, char *const *dirs, void *userdata) {
        struct fx *f = userdata;
        assert_ptr_equal(w, f->w);
        f->rec.calls++;
        if (full)
                f->rec.full_calls++;
        f->rec.last_usec = now_usec();
        strv_free(f->rec.last);
        f->rec.last = strv_copy(dirs);
        assert_non_null(f->rec.last);
        for (size_t i = 0; dirs[i]; i++) {
                if (dirs[i][0] != '/' || (i > 0 && strcmp(dirs[i - 1], dirs[i]) >= 0))
                        f->rec.bad_list = true;
                if (!strv_contains(f->rec.seen, dirs[i]))
                        assert_int_equal(strv_push(&f->rec.seen, dirs[i]), 0);
        }
}

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->base = test_mkdtemp("dv-watch");
        f->root = path_join(f->base, "root");
        assert_non_null(f->root);
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(sd_event_new(&f->e), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        dv_watch_free(f->w);
        sd_event_unref(f->e);
        test_rm_rf(f->base);
        recorder_reset(&f->rec);
        free(f->root);
        free(f->base);
        free(f);
        return 0;
}

static void start(struct fx *f, uint64_t debounce, uint64_t max_delay) {
        assert_int_equal(dv_watch_new(f->e, f->root, debounce, max_delay, on_watch, f, &f->w), 0);
}

/* Runs the loop until `want` callbacks happened or `max` passed (never longer). */
static bool run_until(struct fx *f, unsigned want, uint64_t max) {
        uint64_t end = now_usec() + max;
        for (;;) {
                if (f->rec.calls >= want)
                        return true;
                uint64_t n = now_usec();
                if (n >= end)
                        return false;
                assert_true(sd_event_run(f->e, end - n) >= 0);
        }
}

/* Runs the loop for exactly `d`, whatever happens. */
static void run_for(struct fx *f, uint64_t d) {
        uint64_t end = now_usec() + d;
        for (uint64_t n; (n = now_usec()) < end;)
                assert_true(sd_event_run(f->e, end - n) >= 0);
}

static char *p(struct fx *f, const char *rel) {
        char *s = path_join(f->base, rel);
        assert_non_null(s);
        return s;
}

static void write_file(const char *path, const char *data) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                fail_msg("open %s: %s", path, strerror(errno));
        assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
        assert_int_equal(close(fd), 0);
}

static void write_rel(struct fx *f, const char *rel, const char *data) {
        _cleanup_free_ char *path = p(f, rel);
        write_file(path, data);
}

static void mkdir_rel(struct fx *f, const char *rel) {
        _cleanup_free_ char *path = p(f, rel);
        assert_int_equal(mkdir(path, 0755), 0);
}

static void rename_rel(struct fx *f, const char *from, const char *to) {
        _cleanup_free_ char *a = p(f, from), *b = p(f, to);
        assert_int_equal(rename(a, b), 0);
}

/* The last call reported exactly these directories (relative to base), not full. */
static void expect_last(struct fx *f, ...) {
        _cleanup_strv_free_ char **want = NULL;
        va_list ap;
        va_start(ap, f);
        for (const char *rel; (rel = va_arg(ap, const char *));)
                assert_int_equal(strv_consume(&want, p(f, rel)), 0);
        va_end(ap);
        _cleanup_free_ char *got_s = strv_join(f->rec.last, " ", false);
        _cleanup_free_ char *want_s = strv_join(want, " ", false);
        if (strv_length(want) != strv_length(f->rec.last))
                fail_msg("reported [%s], expected [%s]", got_s, want_s);
        for (size_t i = 0; want[i]; i++)
                if (!strv_contains(f->rec.last, want[i]))
                        fail_msg("reported [%s], expected [%s]", got_s, want_s);
        assert_false(f->rec.bad_list);
}

static void expect_seen(struct fx *f, const char *rel) {
        _cleanup_free_ char *path = p(f, rel);
        if (!strv_contains(f->rec.seen, path)) {
                _cleanup_free_ char *s = strv_join(f->rec.seen, " ", false);
                fail_msg("%s not reported (reported: [%s])", path, s);
        }
}

/* ---- debounce ------------------------------------------------------------------------- */

static void test_one_file(void **state) {
        struct fx *f = *state;
        start(f, 30 * MSEC, USEC_PER_SEC);
        assert_int_equal(dv_watch_count(f->w), 1);
        run_for(f, 50 * MSEC);
        assert_int_equal(f->rec.calls, 0); /* nothing reported for what was there at start */

        write_rel(f, "root/a.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_int_equal(f->rec.full_calls, 0);
        expect_last(f, "root", NULL);
        run_for(f, 150 * MSEC);
        assert_int_equal(f->rec.calls, 1);
}

static void test_burst_coalesced(void **state) {
        struct fx *f = *state;
        start(f, 100 * MSEC, 5 * USEC_PER_SEC);
        uint64_t prev = now_usec(), max_gap = 0;
        for (int i = 0; i < 100; i++) {
                char name[64];
                snprintf(name, sizeof(name), "root/f%03d.xml", i);
                write_rel(f, name, "<pool/>");
                /* Let the watcher see each event as it comes. */
                assert_true(sd_event_run(f->e, 0) >= 0);
                uint64_t n = now_usec();
                max_gap = MAX(max_gap, n - prev);
                prev = n;
        }
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        run_for(f, 300 * MSEC);
        expect_last(f, "root", NULL);
        /* One callback, unless the machine stalled for a whole quiet period. */
        if (max_gap < 100 * MSEC)
                assert_int_equal(f->rec.calls, 1);
        else
                print_message("# a gap of %llu ms in the burst, longer than the quiet period\n",
                              (unsigned long long)(max_gap / MSEC));
}

static void test_lone_rename(void **state) {
        struct fx *f = *state;
        write_rel(f, "staged.xml", "<pool/>");
        /* A lone rename is acted on at once (docs/watcher.md), not after the quiet
         * period, and certainly not after max_delay. */
        start(f, 50 * MSEC, 5 * USEC_PER_SEC);
        uint64_t t0 = now_usec();
        rename_rel(f, "staged.xml", "root/x.xml");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        uint64_t latency = f->rec.last_usec - t0;
        print_message("# lone rename reported after %llu us\n", (unsigned long long)latency);
        assert_true(latency < 50 * MSEC); /* at once: no quiet period to wait for */
        expect_last(f, "root", NULL);

        /* A rename within the directory (an editor's dance) too. */
        t0 = now_usec();
        rename_rel(f, "root/x.xml", "root/y.xml");
        assert_true(run_until(f, 2, 3 * USEC_PER_SEC));
        assert_true(f->rec.last_usec - t0 < 250 * MSEC);
}

static void test_tmpfile_linked(void **state) {
        struct fx *f = *state;
        start(f, 50 * MSEC, 5 * USEC_PER_SEC);
        /* O_TMPFILE, written, then linked into place: the IN_CREATE of a regular file
         * is taken as "still being written", and the close (through the unlinked
         * dentry) is what says it is done. It must not wait for max_delay. */
        int fd = open(f->root, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) {
                print_message("# O_TMPFILE not supported here: %s\n", strerror(errno));
                skip();
        }
        assert_int_equal(write(fd, "<pool/>", 7), 7);
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        _cleanup_free_ char *target = p(f, "root/linked.xml");
        uint64_t t0 = now_usec();
        assert_int_equal(linkat(AT_FDCWD, proc, AT_FDCWD, target, AT_SYMLINK_FOLLOW), 0);
        assert_int_equal(close(fd), 0);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_true(f->rec.last_usec - t0 < 500 * MSEC);
        expect_last(f, "root", NULL);
}

static void test_slow_writer(void **state) {
        struct fx *f = *state;
        start(f, 100 * MSEC, 5 * USEC_PER_SEC);
        _cleanup_free_ char *path = p(f, "root/slow.xml");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        /* Five writes 40 ms apart: 200 ms in all, twice the quiet period, and nothing
         * may be reported while the file is still open for writing. */
        static const char *const chunks[] = {"<pool type='dir'>", "<name>p</name>", "<target>",
                                             "<path>/x</path></target>", "</pool>\n"};
        for (size_t i = 0; i < ELEMENTSOF(chunks); i++) {
                assert_int_equal(write(fd, chunks[i], strlen(chunks[i])),
                                 (ssize_t)strlen(chunks[i]));
                run_for(f, 40 * MSEC);
                assert_int_equal(f->rec.calls, 0);
        }
        uint64_t closed = now_usec();
        assert_int_equal(close(fd), 0);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_true(f->rec.last_usec >= closed);
        expect_last(f, "root", NULL);
        run_for(f, 300 * MSEC);
        assert_int_equal(f->rec.calls, 1);
}

static void test_trickle_bounded(void **state) {
        struct fx *f = *state;
        /* Events every 50 ms never leave 100 ms of quiet: max_delay (300 ms) bounds it. */
        start(f, 100 * MSEC, 300 * MSEC);
        uint64_t t0 = now_usec(), first = 0;
        while (now_usec() - t0 < 900 * MSEC) {
                write_rel(f, "root/t.xml", "<pool/>");
                run_for(f, 50 * MSEC);
                if (f->rec.calls > 0 && !first)
                        first = f->rec.last_usec;
        }
        print_message("# %u callbacks during a 0.9 s trickle\n", f->rec.calls);
        assert_true(f->rec.calls >= 2);
        assert_true(first > 0 && first - t0 < 700 * MSEC);
}

/* ---- subdirectories ------------------------------------------------------------------- */

static void test_subdirs_created(void **state) {
        struct fx *f = *state;
        start(f, 20 * MSEC, USEC_PER_SEC);

        static const struct {
                const char *dir, *parent;
        } levels[] = {
                {"root/a", "root"},
                {"root/a/b", "root/a"},
                {"root/a/b/c", "root/a/b"},
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
                recorder_reset(&f->rec);
                mkdir_rel(f, levels[i].dir);
                assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
                expect_last(f, levels[i].parent, levels[i].dir, NULL);
                assert_int_equal(dv_watch_count(f->w), i + 2);

                recorder_reset(&f->rec);
                char file[128];
                snprintf(file, sizeof(file), "%s/f.xml", levels[i].dir);
                write_rel(f, file, "<pool/>");
                assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
                expect_last(f, levels[i].dir, NULL);
        }

        /* Depth 4: an event in its parent, but no watch of its own. */
        recorder_reset(&f->rec);
        mkdir_rel(f, "root/a/b/c/d");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/a/b/c", NULL);
        assert_int_equal(dv_watch_count(f->w), 4);
        recorder_reset(&f->rec);
        write_rel(f, "root/a/b/c/d/f.xml", "<pool/>");
        run_for(f, 150 * MSEC);
        assert_int_equal(f->rec.calls, 0);

        /* mkdir -p in one go: the levels created before their watch existed are
         * reported, since what happened in them was not seen. */
        recorder_reset(&f->rec);
        mkdir_rel(f, "root/x");
        mkdir_rel(f, "root/x/y");
        mkdir_rel(f, "root/x/y/z");
        write_rel(f, "root/x/y/z/f.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        run_for(f, 60 * MSEC);
        expect_seen(f, "root");
        expect_seen(f, "root/x");
        expect_seen(f, "root/x/y");
        expect_seen(f, "root/x/y/z");
        assert_int_equal(dv_watch_count(f->w), 7);
}

static void test_depth_limit_at_start(void **state) {
        struct fx *f = *state;
        mkdir_rel(f, "root/a");
        mkdir_rel(f, "root/a/b");
        mkdir_rel(f, "root/a/b/c");
        mkdir_rel(f, "root/a/b/c/d");
        mkdir_rel(f, "root/.hidden"); /* never read by the loader: not watched */
        _cleanup_free_ char *target = p(f, "root/a"), *link = p(f, "root/link");
        assert_int_equal(symlink(target, link), 0); /* symlinked directories are not followed */
        start(f, 20 * MSEC, USEC_PER_SEC);
        assert_int_equal(dv_watch_count(f->w), 4);

        write_rel(f, "root/a/b/c/d/f.xml", "<pool/>");
        write_rel(f, "root/.hidden/f.xml", "<pool/>");
        run_for(f, 150 * MSEC);
        assert_int_equal(f->rec.calls, 0);

        write_rel(f, "root/a/b/c/f.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/a/b/c", NULL);
}

static void test_subdir_moved_in(void **state) {
        struct fx *f = *state;
        start(f, 20 * MSEC, USEC_PER_SEC);
        /* Built outside, then moved in with its files already there. */
        mkdir_rel(f, "m");
        mkdir_rel(f, "m/s");
        mkdir_rel(f, "m/s/t");
        mkdir_rel(f, "m/s/t/u"); /* depth 4 once moved in */
        write_rel(f, "m/f.xml", "<pool/>");
        write_rel(f, "m/s/g.xml", "<pool/>");
        write_rel(f, "m/s/t/h.xml", "<pool/>");
        rename_rel(f, "m", "root/m");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", "root/m", "root/m/s", "root/m/s/t", NULL);
        assert_int_equal(dv_watch_count(f->w), 4);

        recorder_reset(&f->rec);
        write_rel(f, "root/m/s/t/i.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/m/s/t", NULL);
}

static void test_subdir_moved_out(void **state) {
        struct fx *f = *state;
        mkdir_rel(f, "root/sub");
        mkdir_rel(f, "root/sub/inner");
        start(f, 20 * MSEC, USEC_PER_SEC);
        assert_int_equal(dv_watch_count(f->w), 3);

        rename_rel(f, "root/sub", "gone");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", NULL);
        assert_int_equal(dv_watch_count(f->w), 1);

        recorder_reset(&f->rec);
        write_rel(f, "gone/f.xml", "<pool/>");
        write_rel(f, "gone/inner/f.xml", "<pool/>");
        run_for(f, 150 * MSEC);
        assert_int_equal(f->rec.calls, 0);
        assert_int_equal(dv_watch_count(f->w), 1);
}

static void test_subdir_renamed_and_removed(void **state) {
        struct fx *f = *state;
        mkdir_rel(f, "root/p");
        mkdir_rel(f, "root/p/q");
        mkdir_rel(f, "root/other");
        start(f, 20 * MSEC, USEC_PER_SEC);
        assert_int_equal(dv_watch_count(f->w), 4);

        /* Renamed within the tree, one level deeper: watched under its new paths. */
        rename_rel(f, "root/p", "root/other/p2");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_seen(f, "root");
        expect_seen(f, "root/other");
        expect_seen(f, "root/other/p2");
        expect_seen(f, "root/other/p2/q");
        assert_int_equal(dv_watch_count(f->w), 4);
        recorder_reset(&f->rec);
        write_rel(f, "root/other/p2/q/f.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/other/p2/q", NULL);

        /* Removed: its watches go. */
        recorder_reset(&f->rec);
        _cleanup_free_ char *other = p(f, "root/other");
        test_rm_rf(other);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        run_for(f, 60 * MSEC);
        expect_seen(f, "root");
        assert_int_equal(dv_watch_count(f->w), 1);
}

static void test_chmod_subdir(void **state) {
        struct fx *f = *state;
        mkdir_rel(f, "root/sub");
        start(f, 20 * MSEC, USEC_PER_SEC);
        _cleanup_free_ char *sub = p(f, "root/sub");
        /* The trust check depends on a directory's mode: it is looked at again. */
        assert_int_equal(chmod(sub, 0775), 0);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", "root/sub", NULL);
}

/* ---- the root ------------------------------------------------------------------------- */

static void test_root_removed_and_recreated(void **state) {
        struct fx *f = *state;
        mkdir_rel(f, "root/sub");
        start(f, 20 * MSEC, USEC_PER_SEC);
        dv_watch_set_poll_interval(f->w, 100 * MSEC);
        assert_int_equal(dv_watch_count(f->w), 2);

        test_rm_rf(f->root);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        run_for(f, 60 * MSEC);
        expect_seen(f, "root");
        assert_int_equal(dv_watch_count(f->w), 0);

        /* Re-created: found by the next look, with what it holds. */
        recorder_reset(&f->rec);
        mkdir_rel(f, "root");
        mkdir_rel(f, "root/new");
        write_rel(f, "root/new/f.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", "root/new", NULL);
        assert_int_equal(dv_watch_count(f->w), 2);

        recorder_reset(&f->rec);
        write_rel(f, "root/new/g.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/new", NULL);
}

static void test_root_missing_at_start(void **state) {
        struct fx *f = *state;
        assert_int_equal(rmdir(f->root), 0);
        start(f, 20 * MSEC, USEC_PER_SEC); /* the default poll interval: 1 s */
        assert_int_equal(dv_watch_count(f->w), 0);
        run_for(f, 50 * MSEC);
        assert_int_equal(f->rec.calls, 0);

        mkdir_rel(f, "root");
        write_rel(f, "root/f.xml", "<pool/>");
        uint64_t t0 = now_usec();
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_true(f->rec.last_usec - t0 < 1500 * MSEC);
        expect_last(f, "root", NULL);
        assert_int_equal(dv_watch_count(f->w), 1);
}

static void test_root_swapped(void **state) {
        struct fx *f = *state;
        start(f, 20 * MSEC, USEC_PER_SEC);
        /* A whole new tree renamed into place, the old one renamed away. */
        mkdir_rel(f, "next");
        mkdir_rel(f, "next/sub");
        rename_rel(f, "root", "old");
        rename_rel(f, "next", "root");
        uint64_t t0 = now_usec();
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        run_for(f, 60 * MSEC);
        expect_seen(f, "root");
        expect_seen(f, "root/sub");
        assert_true(f->rec.last_usec - t0 < 500 * MSEC); /* no need to wait for the poll */
        assert_int_equal(dv_watch_count(f->w), 2);

        recorder_reset(&f->rec);
        write_rel(f, "old/f.xml", "<pool/>");
        run_for(f, 150 * MSEC);
        assert_int_equal(f->rec.calls, 0);
        write_rel(f, "root/sub/f.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/sub", NULL);
}

static void test_root_symlink_retargeted(void **state) {
        struct fx *f = *state;
        /* desired_dir -> a release directory, switched by renaming a new symlink over
         * it in the (unwatched) parent. */
        assert_int_equal(rmdir(f->root), 0);
        mkdir_rel(f, "r1");
        mkdir_rel(f, "r2");
        mkdir_rel(f, "r2/sub");
        assert_int_equal(symlink("r1", f->root), 0);
        start(f, 20 * MSEC, USEC_PER_SEC);
        dv_watch_set_poll_interval(f->w, 100 * MSEC);
        assert_int_equal(dv_watch_count(f->w), 1);
        write_rel(f, "root/a.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", NULL);

        recorder_reset(&f->rec);
        _cleanup_free_ char *tmp = p(f, "root.new");
        assert_int_equal(symlink("r2", tmp), 0);
        rename_rel(f, "root.new", "root");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", "root/sub", NULL);
        assert_int_equal(dv_watch_count(f->w), 2);

        recorder_reset(&f->rec);
        write_rel(f, "r1/b.xml", "<pool/>");
        run_for(f, 150 * MSEC);
        assert_int_equal(f->rec.calls, 0);
        write_rel(f, "r2/sub/c.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root/sub", NULL);

        /* The target removed: the root is gone, then back when the link resolves. */
        recorder_reset(&f->rec);
        _cleanup_free_ char *r2 = p(f, "r2");
        test_rm_rf(r2);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        run_for(f, 60 * MSEC);
        expect_seen(f, "root");
        assert_int_equal(dv_watch_count(f->w), 0);
        recorder_reset(&f->rec);
        mkdir_rel(f, "r2");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", NULL);
        assert_int_equal(dv_watch_count(f->w), 1);
}

/* ---- names the loader ignores --------------------------------------------------------- */

static void test_dot_files(void **state) {
        struct fx *f = *state;
        start(f, 20 * MSEC, 5 * USEC_PER_SEC);

        write_rel(f, "root/.ansible_tmpXYZ", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", NULL);

        /* A ConfigMap's `..data` swap: a symlink made and renamed over the old one. */
        recorder_reset(&f->rec);
        _cleanup_free_ char *tmp = p(f, "root/..data_tmp");
        assert_int_equal(symlink("..2024_01_01", tmp), 0);
        rename_rel(f, "root/..data_tmp", "root/..data");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", NULL);

        /* A hidden directory: an event in root, no watch of its own. */
        recorder_reset(&f->rec);
        mkdir_rel(f, "root/.stage");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        expect_last(f, "root", NULL);
        assert_int_equal(dv_watch_count(f->w), 1);

        /* A lone symlink is complete when made: acted on after the quiet period. */
        recorder_reset(&f->rec);
        _cleanup_free_ char *ln = p(f, "root/l.xml");
        uint64_t t0 = now_usec();
        assert_int_equal(symlink("/nonexistent.xml", ln), 0);
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_true(f->rec.last_usec - t0 < 500 * MSEC);
}

/* ---- overflow ------------------------------------------------------------------------- */

#define MAX_QUEUED "/proc/sys/fs/inotify/max_queued_events"

static int write_sysctl(const char *path, const char *value) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t l = write(fd, value, strlen(value));
        int r = l < 0 ? -errno : 0;
        close(fd);
        return r;
}

static void test_overflow(void **state) {
        struct fx *f = *state;
        if (geteuid() != 0) {
                print_message("# needs root to lower %s\n", MAX_QUEUED);
                skip();
        }
        mkdir_rel(f, "root/sub");
        size_t len;
        char *saved = test_read_file(MAX_QUEUED, &len);
        int r = write_sysctl(MAX_QUEUED, "16");
        if (r < 0) {
                free(saved);
                print_message("# cannot write %s: %s\n", MAX_QUEUED, strerror(-r));
                skip();
        }
        /* The limit is taken when the inotify instance is made: restore it at once. */
        int rn = dv_watch_new(f->e, f->root, 20 * MSEC, USEC_PER_SEC, on_watch, f, &f->w);
        r = write_sysctl(MAX_QUEUED, saved);
        free(saved);
        assert_int_equal(rn, 0);
        assert_int_equal(r, 0);
        assert_int_equal(dv_watch_count(f->w), 2);

        for (int i = 0; i < 40; i++) {
                char name[64];
                snprintf(name, sizeof(name), "root/f%02d.xml", i);
                write_rel(f, name, "<pool/>");
        }
        /* Its IN_CREATE is lost in the overflow: it is watched all the same. */
        mkdir_rel(f, "root/late");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_int_equal(f->rec.full_calls, 1);
        expect_seen(f, "root");

        /* Watches are back in place, the lost directory's too. */
        assert_int_equal(dv_watch_count(f->w), 3);
        recorder_reset(&f->rec);
        write_rel(f, "root/sub/f.xml", "<pool/>");
        write_rel(f, "root/late/f.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_int_equal(f->rec.full_calls, 0);
        expect_last(f, "root/late", "root/sub", NULL);
}

/* ---- API ------------------------------------------------------------------------------ */

static void free_in_callback(struct dv_watch *w, bool full, char *const *dirs, void *userdata) {
        (void)full;
        (void)dirs;
        struct fx *f = userdata;
        f->rec.calls++;
        dv_watch_free(w);
        f->w = NULL;
}

static void test_free_in_callback(void **state) {
        struct fx *f = *state;
        assert_int_equal(
                dv_watch_new(f->e, f->root, 10 * MSEC, USEC_PER_SEC, free_in_callback, f, &f->w),
                0);
        write_rel(f, "root/a.xml", "<pool/>");
        assert_true(run_until(f, 1, 3 * USEC_PER_SEC));
        assert_null(f->w);
        run_for(f, 30 * MSEC);
}

static void test_bad_arguments(void **state) {
        struct fx *f = *state;
        struct dv_watch *w = NULL;
        assert_int_equal(dv_watch_new(NULL, f->root, 0, 0, on_watch, f, &w), -EINVAL);
        assert_int_equal(dv_watch_new(f->e, "", 0, 0, on_watch, f, &w), -EINVAL);
        assert_int_equal(dv_watch_new(f->e, f->root, 0, 0, NULL, f, &w), -EINVAL);
        assert_null(w);
        dv_watch_free(NULL);
        assert_int_equal(dv_watch_count(NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_one_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_burst_coalesced, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lone_rename, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tmpfile_linked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_slow_writer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trickle_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subdirs_created, setup, teardown),
                cmocka_unit_test_setup_teardown(test_depth_limit_at_start, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subdir_moved_in, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subdir_moved_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_subdir_renamed_and_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chmod_subdir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_removed_and_recreated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_missing_at_start, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_swapped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_symlink_retargeted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dot_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        };
        return cmocka_run_group_tests_name("watch", tests, NULL, NULL);
}
