/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command runner: exit codes, output capture and limits, stdin, timeouts and
 * kills, exec failures, the reduced environment, no descriptor leaks, quoting,
 * concurrent use, detached children. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void test_exit_codes(void **state) {
        (void)state;
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cmd_run(ARGV("true"), NULL, &res, &err), 0);
        assert_int_equal(res.exit_status, 0);
        assert_int_equal(res.term_signal, 0);
        assert_false(res.timed_out);
        assert_string_equal(res.out, "");
        assert_false(dv_error_failed(&err));
        cmd_result_done(&res);

        assert_int_equal(cmd_run(ARGV("false"), NULL, &res, &err), -EIO);
        assert_int_equal(res.exit_status, 1);
        assert_string_equal(dv_error_message(&err), "false failed (exit status 1)");
        assert_string_equal(err.argv, "false");
        cmd_result_done(&res);
        dv_error_clear(&err);

        /* The last lines of stderr make the message; the argv and tail go along. */
        assert_int_equal(
                cmd_run(ARGV("sh", "-c",
                             "echo noise >&2; echo '  first line' >&2; echo >&2; "
                             "printf 'second\\tline\\n' >&2; echo 'last: it broke  ' >&2; exit 3"),
                        NULL, &res, &err),
                -EIO);
        assert_int_equal(res.exit_status, 3);
        assert_string_equal(dv_error_message(&err),
                            "sh failed (exit status 3): first line; second?line; last: it broke");
        assert_non_null(err.argv);
        assert_non_null(strstr(err.argv, "sh -c 'echo noise"));
        assert_non_null(err.stderr_tail);
        assert_non_null(strstr(err.stderr_tail, "noise\n"));
        cmd_result_done(&res);
        dv_error_clear(&err);

        /* allow_nonzero: the status is a result, not an error. */
        struct cmd_opts o = {.allow_nonzero = true};
        assert_int_equal(cmd_run(ARGV("sh", "-c", "echo out; exit 7"), &o, &res, &err), 0);
        assert_int_equal(res.exit_status, 7);
        assert_string_equal(res.out, "out\n");
        assert_false(dv_error_failed(&err));
        cmd_result_done(&res);

        /* Killed by a signal: an error even with allow_nonzero. */
        assert_int_equal(cmd_run(ARGV("sh", "-c", "kill -KILL $$"), &o, &res, &err), -EIO);
        assert_int_equal(res.exit_status, -1);
        assert_int_equal(res.term_signal, 9);
        assert_string_equal(dv_error_message(&err), "sh was killed by signal 9");
        cmd_result_done(&res);
        dv_error_clear(&err);

        /* res and err may be NULL. */
        assert_int_equal(cmd_run(ARGV("false"), NULL, NULL, NULL), -EIO);
        assert_int_equal(cmd_run(ARGV("true"), NULL, NULL, NULL), 0);
        assert_int_equal(cmd_run(ARGV(""), NULL, NULL, &err), -EINVAL);
        dv_error_clear(&err);
}

static void test_stdout_capture(void **state) {
        (void)state;
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cmd_run(ARGV("echo", "hello", "world"), NULL, &res, &err), 0);
        assert_string_equal(res.out, "hello world\n");
        assert_int_equal(res.out_len, 12);
        cmd_result_done(&res);

        /* More than max_output: the rest is read and dropped, so the writer is not
         * stopped by a full pipe (or SIGPIPE) and exits 0. */
        struct cmd_opts o = {.max_output = 1000};
        assert_int_equal(cmd_run(ARGV("head", "-c", "3000000", "/dev/zero"), &o, &res, &err), 0);
        assert_int_equal(res.out_len, 1000);
        assert_int_equal(res.exit_status, 0);
        for (size_t i = 0; i < 1000; i++)
                assert_int_equal(res.out[i], 0);
        assert_int_equal(res.out[1000], '\0');
        cmd_result_done(&res);

        /* The default limit keeps a few MiB whole. */
        assert_int_equal(cmd_run(ARGV("head", "-c", "3000000", "/dev/zero"), NULL, &res, &err), 0);
        assert_int_equal(res.out_len, 3000000);
        cmd_result_done(&res);
        assert_false(dv_error_failed(&err));
}

static void test_stderr_tail(void **state) {
        (void)state;
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cmd_run(ARGV("sh", "-c",
                                      "i=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; "
                                      "i=$((i+1)); done; "
                                      "echo done"),
                                 NULL, &res, &err),
                         0);
        assert_string_equal(res.out, "done\n");
        assert_int_equal(strlen(res.err_tail), CMD_STDERR_TAIL);
        size_t l = strlen(res.err_tail);
        assert_string_equal(res.err_tail + l - strlen("line 1998\nline 1999\n"),
                            "line 1998\nline 1999\n");
        assert_null(strstr(res.err_tail, "line 100\n"));
        cmd_result_done(&res);
}

static void test_stdin(void **state) {
        (void)state;
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        struct cmd_opts o = {.stdin_data = "abc\ndef\n", .stdin_len = 8};
        assert_int_equal(cmd_run(ARGV("cat"), &o, &res, &err), 0);
        assert_string_equal(res.out, "abc\ndef\n");
        cmd_result_done(&res);

        /* Larger than a pipe: written as the child reads. */
        size_t n = 3u << 20;
        char *big = malloc(n);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
                big[i] = (char)('a' + i % 26);
        o = (struct cmd_opts){.stdin_data = big, .stdin_len = n};
        assert_int_equal(cmd_run(ARGV("cat"), &o, &res, &err), 0);
        assert_int_equal(res.out_len, n);
        assert_memory_equal(res.out, big, n);
        cmd_result_done(&res);

        /* A child that never reads: the write fails with EPIPE, no SIGPIPE reaches us
         * (cmocka leaves SIGPIPE at its default, which would end this test). */
        assert_int_equal(cmd_run(ARGV("true"), &o, &res, &err), 0);
        cmd_result_done(&res);
        free(big);

        /* Empty data: EOF at once. */
        o = (struct cmd_opts){.stdin_data = "", .stdin_len = 0};
        assert_int_equal(cmd_run(ARGV("wc", "-c"), &o, &res, &err), 0);
        assert_string_equal(res.out, "0\n");
        cmd_result_done(&res);

        /* No data: /dev/null. */
        assert_int_equal(cmd_run(ARGV("cat"), NULL, &res, &err), 0);
        assert_string_equal(res.out, "");
        cmd_result_done(&res);
        assert_false(dv_error_failed(&err));
}

static void test_timeout(void **state) {
        (void)state;
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        struct cmd_opts o = {.timeout_usec = 200 * USEC_PER_MSEC,
                             .kill_grace_usec = 300 * USEC_PER_MSEC};
        uint64_t t0 = mono_usec();
        assert_int_equal(cmd_run(ARGV("sleep", "30"), &o, &res, &err), -ETIMEDOUT);
        uint64_t took = mono_usec() - t0;
        assert_true(took < 5 * USEC_PER_SEC);
        assert_true(took >= 200 * USEC_PER_MSEC);
        assert_true(res.timed_out);
        assert_int_equal(res.term_signal, 15);
        assert_string_equal(dv_error_message(&err), "sleep timed out after 200ms");
        assert_string_equal(err.argv, "sleep 30");
        cmd_result_done(&res);
        dv_error_clear(&err);

        /* SIGTERM ignored (and inherited as ignored by sleep): SIGKILL to the group
         * after the grace period. */
        t0 = mono_usec();
        assert_int_equal(cmd_run(ARGV("sh", "-c", "trap '' TERM; sleep 30; echo not reached"), &o,
                                 &res, &err),
                         -ETIMEDOUT);
        took = mono_usec() - t0;
        assert_true(took < 5 * USEC_PER_SEC);
        assert_true(took >= 500 * USEC_PER_MSEC);
        assert_true(res.timed_out);
        assert_int_equal(res.term_signal, 9);
        assert_string_equal(res.out, "");
        cmd_result_done(&res);
        dv_error_clear(&err);

        /* Whole seconds print as such. */
        o = (struct cmd_opts){.timeout_usec = 1 * USEC_PER_SEC};
        assert_int_equal(cmd_run(ARGV("sleep", "30"), &o, &res, &err), -ETIMEDOUT);
        assert_string_equal(dv_error_message(&err), "sleep timed out after 1s");
        cmd_result_done(&res);
        dv_error_clear(&err);
}

/* A descendant that keeps the output pipes open does not hold the caller. */
static void test_no_wait_for_descendants(void **state) {
        (void)state;
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        uint64_t t0 = mono_usec();
        assert_int_equal(cmd_run(ARGV("sh", "-c", "sleep 3 & echo started"), NULL, &res, &err), 0);
        assert_true(mono_usec() - t0 < 2 * USEC_PER_SEC);
        assert_string_equal(res.out, "started\n");
        cmd_result_done(&res);
}

static void test_exec_failure(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        struct cmd_result res = {0};
        assert_int_equal(cmd_run(ARGV("declvirt-no-such-program", "x"), NULL, &res, &err), -ENOENT);
        assert_string_equal(dv_error_message(&err),
                            "cannot run declvirt-no-such-program: No such file or directory");
        assert_string_equal(err.argv, "declvirt-no-such-program x");
        dv_error_clear(&err);

        assert_int_equal(cmd_run(ARGV("/nonexistent/bin/tool"), NULL, &res, &err), -ENOENT);
        assert_string_equal(dv_error_message(&err),
                            "cannot run /nonexistent/bin/tool: No such file or directory");
        dv_error_clear(&err);

        /* A file that is not executable: the exec error comes back from the child. */
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *path = path_join(dir, "not-executable");
        assert_int_equal(write_file_atomic(path, "#!/bin/sh\n", 10, 0644), 0);
        assert_int_equal(cmd_run(ARGV(path), NULL, &res, &err), -EACCES);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "cannot run %s: Permission denied", path) > 0);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);

        /* A file that is executable but no program. */
        _cleanup_free_ char *junk = path_join(dir, "junk");
        assert_int_equal(write_file_atomic(junk,
                                           "\x7f"
                                           "ELFjunk",
                                           7, 0755),
                         0);
        assert_int_equal(cmd_run(ARGV(junk), NULL, &res, &err), -ENOEXEC);
        dv_error_clear(&err);

        assert_int_equal(
                cmd_spawn_detached(ARGV("declvirt-no-such-program"), NULL, NULL, NULL, &err),
                -ENOENT);
        assert_string_equal(dv_error_message(&err),
                            "cannot run declvirt-no-such-program: No such file or directory");
        dv_error_clear(&err);
        test_rm_rf(dir);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **split_lines(const char *s) {
        char **l = NULL;
        const char *p = s;
        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);
                assert_int_equal(strv_consume(&l, strndup(p, n)), 0);
                p += n + (nl ? 1 : 0);
        }
        return l;
}

static void test_environment(void **state) {
        (void)state;
        setenv("LVM_SYSTEM_DIR", "/tmp/declvirt-lvm", 1);
        unsetenv("XENSTORED_PATH");
        setenv("DECLVIRT_TEST_SECRET", "must-not-pass", 1);
        setenv("LANG", "de_DE.UTF-8", 1);
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        struct cmd_opts o = {.extra_env = ARGV("FOO=bar baz", "LC_ALL=C")};
        assert_int_equal(cmd_run(ARGV("env"), &o, &res, &err), 0);
        _cleanup_strv_free_ char **lines = split_lines(res.out);
        qsort(lines, strv_length(lines), sizeof(char *), cmp_str);
        _cleanup_free_ char *joined = strv_join(lines, "|", false);
        assert_string_equal(joined, "FOO=bar baz|LC_ALL=C|LVM_SYSTEM_DIR=/tmp/declvirt-lvm|"
                                    "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
        cmd_result_done(&res);

        setenv("XENSTORED_PATH", "/run/test-xenstored.sock", 1);
        assert_int_equal(cmd_run(ARGV("env"), NULL, &res, &err), 0);
        assert_non_null(strstr(res.out, "XENSTORED_PATH=/run/test-xenstored.sock\n"));
        cmd_result_done(&res);
        unsetenv("XENSTORED_PATH");
        unsetenv("LVM_SYSTEM_DIR");
        unsetenv("DECLVIRT_TEST_SECRET");

        /* PATH from extra_env is the child's and is used for the lookup. */
        o = (struct cmd_opts){.extra_env = ARGV("PATH=/nonexistent")};
        assert_int_equal(cmd_run(ARGV("env"), &o, &res, &err), -ENOENT);
        dv_error_clear(&err);
        o = (struct cmd_opts){.extra_env = ARGV("PATH=/nonexistent:/usr/bin")};
        assert_int_equal(cmd_run(ARGV("env"), &o, &res, &err), 0);
        assert_non_null(strstr(res.out, "PATH=/nonexistent:/usr/bin\n"));
        cmd_result_done(&res);

        o = (struct cmd_opts){.extra_env = ARGV("NOEQUALS")};
        assert_int_equal(cmd_run(ARGV("env"), &o, &res, &err), -EINVAL);
        dv_error_clear(&err);
}

/* A line of `ls -l /proc/self/fd`: the descriptor number, and the " -> TARGET" part in
 * *arrow; -1 for lines that name no descriptor. */
static long ls_fd_line(const char *line, const char **arrow) {
        *arrow = strstr(line, " -> ");
        if (!*arrow)
                return -1;
        const char *num = *arrow;
        while (num > line && num[-1] != ' ')
                num--;
        char *end = NULL;
        long fd = strtol(num, &end, 10);
        assert_true(end && *end == ' ');
        return fd;
}

static void test_no_fd_leak(void **state) {
        (void)state;
        /* Deliberately without O_CLOEXEC, as a careless library might. */
        int leak = open("/dev/null", O_RDONLY);
        assert_true(leak > 2);
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cmd_run(ARGV("ls", "-l", "/proc/self/fd"), NULL, &res, &err), 0);
        _cleanup_strv_free_ char **lines = split_lines(res.out);
        size_t n = 0;
        for (size_t i = 0; lines && lines[i]; i++) {
                const char *arrow = NULL;
                long fd = ls_fd_line(lines[i], &arrow);
                if (fd < 0)
                        continue;
                n++;
                if (fd == 0)
                        assert_non_null(strstr(arrow, "/dev/null"));
                else if (fd == 1 || fd == 2)
                        assert_non_null(strstr(arrow, "pipe:"));
                else if (!strstr(arrow, "/fd")) /* ls's own directory handle */
                        fail_msg("descriptor leaked into the child: %s", lines[i]);
        }
        assert_int_equal(n, 4);
        cmd_result_done(&res);

        /* Detached children get nothing either. */
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *log = path_join(dir, "ls.log");
        pid_t pid = 0;
        assert_true(cmd_spawn_detached(ARGV("ls", "-l", "/proc/self/fd"), log, NULL, &pid, &err) >
                    0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        size_t len = 0;
        _cleanup_free_ char *out = test_read_file(log, &len);
        _cleanup_strv_free_ char **l2 = split_lines(out);
        n = 0;
        for (size_t i = 0; l2 && l2[i]; i++)
                if (strstr(l2[i], " -> "))
                        n++;
        assert_int_equal(n, 4);
        close(leak);
        test_rm_rf(dir);
}

/* cmd_spawn_detached_fds: the passed descriptors are 3, 4, ... in the child, in the order
 * given, and nothing else above stderr arrives. The sources sit on the numbers they are
 * passed to, crossed (the one at 4 becomes 3 and the reverse), so a naive dup2 order would
 * hand the child the same file twice. */
static void test_pass_fds(void **state) {
        (void)state;
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *a = path_join(dir, "a"), *b = path_join(dir, "b");
        _cleanup_free_ char *log = path_join(dir, "ls.log");
        for (int i = 0; i < 2; i++) {
                int fd = open(i ? b : a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                close(fd);
        }
        int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: must not arrive */
        assert_true(leak > 2);
        /* Whatever holds 3 and 4 now is kept aside and put back afterwards. */
        int save3 = fcntl(3, F_DUPFD_CLOEXEC, 100), save4 = fcntl(4, F_DUPFD_CLOEXEC, 100);
        int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDWR | O_CLOEXEC);
        assert_true(fa >= 0 && fb >= 0);
        assert_int_equal(dup2(fa, 4), 4);
        assert_int_equal(dup2(fb, 3), 3);
        int pass[] = {4, 3};
        struct dv_error err = DV_ERROR_INIT;
        pid_t pid = 0;
        assert_true(cmd_spawn_detached_fds(ARGV("ls", "-l", "/proc/self/fd"), log, NULL, pass, 2,
                                           &pid, &err) > 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* The caller's descriptors stay open and where they were. */
        assert_true(fcntl(4, F_GETFD) >= 0);
        assert_true(fcntl(3, F_GETFD) >= 0);
        close(3);
        close(4);
        if (save3 >= 0) {
                assert_int_equal(dup2(save3, 3), 3);
                close(save3);
        }
        if (save4 >= 0) {
                assert_int_equal(dup2(save4, 4), 4);
                close(save4);
        }
        close(fa);
        close(fb);
        close(leak);

        size_t len = 0;
        _cleanup_free_ char *out = test_read_file(log, &len);
        _cleanup_strv_free_ char **lines = split_lines(out);
        size_t n = 0;
        bool saw3 = false, saw4 = false;
        for (size_t i = 0; lines && lines[i]; i++) {
                const char *arrow = NULL;
                long fd = ls_fd_line(lines[i], &arrow);
                if (fd < 0)
                        continue;
                n++;
                if (fd == 3) {
                        assert_string_equal(arrow + 4, a);
                        saw3 = true;
                } else if (fd == 4) {
                        assert_string_equal(arrow + 4, b);
                        saw4 = true;
                } else if (fd > 2 && !strstr(arrow, "/fd")) /* ls's own directory handle */
                        fail_msg("descriptor leaked into the child: %s", lines[i]);
        }
        assert_true(saw3 && saw4);
        assert_int_equal(n, 6); /* 0, 1, 2, the two passed, ls's directory */

        /* More than the limit is refused before anything runs. */
        int many[CMD_PASS_FDS_MAX + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = 0;
        assert_int_equal(cmd_spawn_detached_fds(ARGV("true"), NULL, NULL, many, ELEMENTSOF(many),
                                                NULL, &err),
                         -E2BIG);
        dv_error_clear(&err);
        test_rm_rf(dir);
}

/* The value of "Key:" in a /proc/PID/status text, tabs and spaces collapsed; "" if absent. */
static void status_field(const char *status, const char *key, char *buf, size_t size) {
        buf[0] = '\0';
        size_t kl = strlen(key);
        for (const char *l = status; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, kl) != 0 || l[kl] != ':')
                        continue;
                const char *v = l + kl + 1;
                size_t n = 0;
                for (; *v && *v != '\n' && n + 1 < size; v++)
                        if (*v != '\t' && !(*v == ' ' && (n == 0 || buf[n - 1] == ' ')))
                                buf[n++] = *v;
                        else if (n > 0 && buf[n - 1] != ' ')
                                buf[n++] = ' ';
                while (n > 0 && buf[n - 1] == ' ')
                        n--;
                buf[n] = '\0';
                return;
        }
}

/* cmd_spawn_detached_as: the child runs as the given uid and gid with nothing of root left
 * (no groups, no capability in any set, no_new_privs), and still gets the descriptor it is
 * passed: a file it could not open itself. */
static void test_spawn_as(void **state) {
        (void)state;
        if (geteuid() != 0) {
                skip();
                return;
        }
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *secret = path_join(dir, "secret");
        _cleanup_free_ char *log = path_join(dir, "as.log");
        int fd = open(secret, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "PASSED-FD\n", 10), 10);
        close(fd);
        fd = open(secret, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        _cleanup_free_ char *script = NULL;
        assert_true(asprintf(&script, "cat /proc/self/status; cat <&3; cat %s || echo DENIED",
                             secret) > 0);
        struct cmd_creds creds = {.uid = 3999901, .gid = 3999902};
        struct dv_error err = DV_ERROR_INIT;
        pid_t pid = 0;
        assert_true(cmd_spawn_detached_as(ARGV("sh", "-c", script), log, NULL, &fd, 1, &creds, &pid,
                                          &err) > 0);
        close(fd);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        size_t len = 0;
        _cleanup_free_ char *out = test_read_file(log, &len);
        char v[256];
        status_field(out, "Uid", v, sizeof(v));
        assert_string_equal(v, "3999901 3999901 3999901 3999901");
        status_field(out, "Gid", v, sizeof(v));
        assert_string_equal(v, "3999902 3999902 3999902 3999902");
        status_field(out, "Groups", v, sizeof(v));
        assert_string_equal(v, "");
        const char *zero_caps[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
        for (size_t i = 0; i < ELEMENTSOF(zero_caps); i++) {
                status_field(out, zero_caps[i], v, sizeof(v));
                assert_string_equal(v, "0000000000000000");
        }
        status_field(out, "NoNewPrivs", v, sizeof(v));
        assert_string_equal(v, "1");
        assert_non_null(strstr(out, "\nPASSED-FD\n"));
        assert_non_null(strstr(out, "\nDENIED\n")); /* the same file by path: refused */

        /* A program that is not there: an error, no child left behind. */
        assert_true(cmd_spawn_detached_as(ARGV("/nonexistent/declvirt-no-such-program"), NULL, NULL,
                                          NULL, 0, &creds, NULL, &err) < 0);
        assert_int_equal(err.n_problems, 1);
        assert_non_null(strstr(err.problems[0].msg, "declvirt-no-such-program"));
        dv_error_clear(&err);
        /* One that root may run but the uid may not: execve fails in the child, which
         * reports it through its pipe. */
        _cleanup_free_ char *prog = path_join(dir, "root-only");
        fd = open(prog, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
        close(fd);
        assert_int_equal(cmd_spawn_detached_as(ARGV(prog), NULL, NULL, NULL, 0, &creds, NULL, &err),
                         -EACCES);
        dv_error_clear(&err);
        test_rm_rf(dir);
}

/* cmd_jail_bind: the directories above a path once each, outermost first; a path twice or
 * below a directory bound whole is skipped; relative and dot paths are refused. */
static void test_jail_bind(void **state) {
        (void)state;
        _cleanup_(cmd_jail_done) struct cmd_jail j = {0};
        assert_int_equal(cmd_jail_bind(&j, "/dev/null", false), 0);
        assert_int_equal(cmd_jail_bind(&j, "/usr/bin", false), 0);
        assert_int_equal(cmd_jail_bind(&j, "/usr/bin/env", false), 0); /* below /usr/bin */
        assert_int_equal(cmd_jail_bind(&j, "/dev/null", true), 0);     /* again */
        assert_int_equal(cmd_jail_bind(&j, "/dev/zero", false), 0);
        static const struct {
                enum cmd_jail_kind kind;
                const char *src, *dst;
                bool device;
        } want[] = {
                {CMD_JAIL_MKDIR, NULL, "dev", false},
                {CMD_JAIL_FILE, "/dev/null", "dev/null", true},
                {CMD_JAIL_MKDIR, NULL, "usr", false},
                {CMD_JAIL_DIR, "/usr/bin", "usr/bin", false},
                {CMD_JAIL_FILE, "/dev/zero", "dev/zero", true},
        };
        assert_int_equal(j.n, ELEMENTSOF(want));
        for (size_t k = 0; k < j.n; k++) {
                assert_int_equal(j.entries[k].kind, want[k].kind);
                assert_string_equal(j.entries[k].dst, want[k].dst);
                if (want[k].src)
                        assert_string_equal(j.entries[k].src, want[k].src);
                else
                        assert_null(j.entries[k].src);
                assert_int_equal(j.entries[k].device, want[k].device);
                assert_false(j.entries[k].writable);
        }
        const char *bad[] = {"dev/null", "/usr/../etc/shadow", "/usr/./bin", "//etc", "/usr/..",
                             "/"};
        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                assert_int_equal(cmd_jail_bind(&j, bad[k], false), bad[k][1] ? -EINVAL : 0);
        assert_int_equal(cmd_jail_bind(&j, "/nonexistent/declvirt", false), -ENOENT);
        assert_int_equal(j.n, ELEMENTSOF(want));
}

/* A child in a jail sees only what was bound (busybox, static, lists the jail's root and
 * tries the host's files), writes only where it was bound writable, and a bind that
 * cannot be made is an error naming the path, with no child left. */
static void test_spawn_jail(void **state) {
        (void)state;
        _cleanup_free_ char *busybox = NULL;
        if (geteuid() != 0 || cmd_find_program("busybox", &busybox) < 0 ||
            access("/proc/self/ns/mnt", F_OK) < 0) {
                skip();
                return;
        }
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *mnt = path_join(dir, "jail");
        _cleanup_free_ char *rw = path_join(dir, "rw");
        _cleanup_free_ char *log = path_join(dir, "jail.log");
        assert_int_equal(mkdir(mnt, 0700), 0);
        assert_int_equal(mkdir(rw, 0700), 0);
        assert_int_equal(chown(rw, 3999903, 3999903), 0);
        _cleanup_(cmd_jail_done) struct cmd_jail j = {.mountpoint = strdup(mnt)};
        assert_non_null(j.mountpoint);
        assert_int_equal(cmd_jail_bind(&j, busybox, false), 0);
        assert_int_equal(cmd_jail_bind(&j, "/dev/null", false), 0);
        assert_int_equal(cmd_jail_bind(&j, rw, true), 0);
        _cleanup_free_ char *script = NULL;
        assert_true(asprintf(&script,
                             "ls -A /; test -e /etc/shadow || echo NO-SHADOW; "
                             "echo x > %s/made && echo WROTE-RW; "
                             "touch /made 2>/dev/null || echo RO-ROOT; "
                             "touch %s 2>/dev/null || echo RO-BUSYBOX",
                             rw, busybox) > 0);
        struct cmd_creds creds = {.uid = 3999903, .gid = 3999903, .jail = &j};
        struct dv_error err = DV_ERROR_INIT;
        pid_t pid = 0;
        assert_true(cmd_spawn_detached_as(ARGV(busybox, "sh", "-c", script), log, NULL, NULL, 0,
                                          &creds, &pid, &err) > 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        size_t len = 0;
        _cleanup_free_ char *out = test_read_file(log, &len);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* The root: the top directories of the three binds, nothing else. */
        char top[64];
        snprintf(top, sizeof(top), "%.*s\n", (int)strcspn(dir + 1, "/"), dir + 1);
        _cleanup_free_ char *bb_top = strndup(busybox + 1, strcspn(busybox + 1, "/"));
        assert_non_null(bb_top);
        assert_non_null(strstr(out, "dev\n"));
        assert_non_null(strstr(out, top));
        assert_non_null(strstr(out, bb_top));
        assert_null(strstr(out, "etc\n"));
        assert_null(strstr(out, "proc\n"));
        assert_non_null(strstr(out, "NO-SHADOW\n"));
        assert_non_null(strstr(out, "WROTE-RW\n"));
        assert_non_null(strstr(out, "RO-ROOT\n"));
        assert_non_null(strstr(out, "RO-BUSYBOX\n"));
        _cleanup_free_ char *made = path_join(rw, "made");
        assert_int_equal(access(made, F_OK), 0); /* the host sees the write */
        /* The host's view is untouched: nothing mounted on the mount point here. */
        struct stat a, b;
        assert_int_equal(stat(mnt, &a), 0);
        assert_int_equal(stat(dir, &b), 0);
        assert_int_equal(a.st_dev, b.st_dev);

        /* A bind that fails in the child (its source gone since the jail was built). */
        _cleanup_free_ char *gone = path_join(dir, "gone");
        assert_int_equal(mkdir(gone, 0755), 0);
        assert_int_equal(cmd_jail_bind(&j, gone, false), 0);
        assert_int_equal(rmdir(gone), 0);
        assert_true(cmd_spawn_detached_as(ARGV(busybox, "true"), NULL, NULL, NULL, 0, &creds, NULL,
                                          &err) < 0);
        assert_int_equal(err.n_problems, 1);
        assert_non_null(strstr(err.problems[0].msg, "cannot bind"));
        assert_non_null(strstr(err.problems[0].msg, gone));
        dv_error_clear(&err);
        test_rm_rf(dir);
}

/* A child started in a cgroup v2 directory (clone3 CLONE_INTO_CGROUP) and joining a v1
 * hierarchy through its tasks file: /proc/self/cgroup shows both from its first
 * instruction. */
static void test_spawn_cgroups(void **state) {
        (void)state;
        const char *v2root = "/sys/fs/cgroup/unified";
        if (geteuid() != 0 || access("/sys/fs/cgroup/unified/cgroup.procs", F_OK) < 0 ||
            access("/sys/fs/cgroup/memory/tasks", F_OK) < 0) {
                skip();
                return;
        }
        char name[64];
        snprintf(name, sizeof(name), "declvirt-test-cmd-%d", (int)getpid());
        _cleanup_free_ char *v2 = path_join(v2root, name);
        _cleanup_free_ char *v1 = strdupf("/sys/fs/cgroup/memory/%s", name);
        assert_int_equal(mkdir(v2, 0755), 0);
        assert_int_equal(mkdir(v1, 0755), 0);
        _cleanup_free_ char *tasks = path_join(v1, "tasks");
        int v1fd = open(tasks, O_WRONLY | O_CLOEXEC);
        int v2fd = open(v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(v1fd > 2 && v2fd > 2);
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *log = path_join(dir, "cg.log");
        struct cmd_creds creds = {.uid = 3999904,
                                  .gid = 3999904,
                                  .cgroup_fds = &v1fd,
                                  .n_cgroup_fds = 1,
                                  .cgroup_v2_fd = v2fd};
        struct dv_error err = DV_ERROR_INIT;
        pid_t pid = 0;
        assert_true(cmd_spawn_detached_as(ARGV("cat", "/proc/self/cgroup"), log, NULL, NULL, 0,
                                          &creds, &pid, &err) > 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        size_t len = 0;
        _cleanup_free_ char *out = test_read_file(log, &len);
        char want[128];
        snprintf(want, sizeof(want), "0::/%s\n", name);
        assert_non_null(strstr(out, want));
        snprintf(want, sizeof(want), ":memory:/%s\n", name);
        assert_non_null(strstr(out, want));
        close(v1fd);
        close(v2fd);
        assert_int_equal(rmdir(v2), 0);
        assert_int_equal(rmdir(v1), 0);
        test_rm_rf(dir);
}

static void test_argv_string(void **state) {
        (void)state;
        _cleanup_free_ char *s = cmd_argv_string(
                ARGV("qemu-img", "create", "-f", "qcow2", "-o", "compat=1.1,preallocation=metadata",
                     "/var/lib/a b.img", "it's", "", "$HOME", "a;b", "x*", "10G"));
        assert_string_equal(s, "qemu-img create -f qcow2 -o compat=1.1,preallocation=metadata "
                               "'/var/lib/a b.img' 'it'\\''s' '' '$HOME' 'a;b' 'x*' 10G");
        _cleanup_free_ char *c = cmd_argv_string(ARGV("printf", "a\nb\t'c'\\\x01"));
        assert_string_equal(c, "printf $'a\\nb\\t\\'c\\'\\\\\\x01'");
        _cleanup_free_ char *e = cmd_argv_string(ARGV("x"));
        assert_string_equal(e, "x");
}

struct thread_arg {
        int id;
        int failures;
};

static void *worker(void *p) {
        struct thread_arg *a = p;
        for (int i = 0; i < 25; i++) {
                char want[64], in[64];
                snprintf(want, sizeof(want), "thread %d run %d\n", a->id, i);
                snprintf(in, sizeof(in), "stdin %d %d", a->id, i);
                struct cmd_result res = {0};
                struct dv_error err = DV_ERROR_INIT;
                struct cmd_opts o = {.stdin_data = in, .stdin_len = strlen(in)};
                if (cmd_run(ARGV("sh", "-c", "printf '%s\\n' \"$1\"; cat >&2; exit $2", "sh", want,
                                 "0"),
                            &o, &res, &err) < 0)
                        a->failures++;
                else {
                        size_t wl = strlen(want);
                        /* want already ends in a newline; printf adds another. */
                        if (res.out_len != wl + 1 || strncmp(res.out, want, wl) != 0 ||
                            strcmp(res.err_tail, in) != 0)
                                a->failures++;
                }
                cmd_result_done(&res);
                dv_error_clear(&err);
                if (cmd_run(ARGV("false"), NULL, NULL, &err) != -EIO ||
                    !streq_ptr(dv_error_message(&err), "false failed (exit status 1)"))
                        a->failures++;
                dv_error_clear(&err);
        }
        return NULL;
}

static void test_concurrent(void **state) {
        (void)state;
        pthread_t t[4];
        struct thread_arg a[4];
        for (int i = 0; i < 4; i++) {
                a[i] = (struct thread_arg){.id = i};
                assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(a[i].failures, 0);
        }
}

static void test_detached(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-cmd");
        _cleanup_free_ char *log = path_join(dir, "out.log");
        assert_int_equal(write_file_atomic(log, "before\n", 7, 0600), 0);

        pid_t pid = 0;
        int r = cmd_spawn_detached(ARGV("sh", "-c", "echo hello; echo oops >&2; cat; env"), log,
                                   ARGV("A=b"), &pid, &err);
        assert_true(r > 0);
        assert_int_equal(r, pid);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        size_t len = 0;
        _cleanup_free_ char *out = test_read_file(log, &len);
        assert_true(strncmp(out, "before\nhello\noops\n", 18) == 0);
        assert_non_null(strstr(out, "A=b\n"));
        assert_non_null(strstr(out, "LC_ALL=C\n"));

        /* Its own session, and it keeps running after we return. */
        r = cmd_spawn_detached(ARGV("sleep", "30"), NULL, NULL, &pid, &err);
        assert_true(r > 0);
        char statpath[64];
        snprintf(statpath, sizeof(statpath), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *st = test_read_file(statpath, &len);
        const char *p = strrchr(st, ')');
        assert_non_null(p);
        char s;
        int ppid, pgrp, sid;
        assert_int_equal(sscanf(p + 2, "%c %d %d %d", &s, &ppid, &pgrp, &sid), 4);
        assert_int_equal(sid, pid);
        assert_int_equal(pgrp, pid);
        assert_int_equal(ppid, getpid());
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        test_rm_rf(dir);
}

/* The debug log path formats the argv; check that it does not disturb results. */
static void test_debug_logging(void **state) {
        (void)state;
        int old = log_get_max_level();
        log_set_max_level(LOG_DEBUG);
        struct cmd_result res = {0};
        assert_int_equal(cmd_run(ARGV("echo", "with debug"), NULL, &res, NULL), 0);
        assert_string_equal(res.out, "with debug\n");
        cmd_result_done(&res);
        log_set_max_level(old);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exit_codes),   cmocka_unit_test(test_stdout_capture),
                cmocka_unit_test(test_stderr_tail),  cmocka_unit_test(test_stdin),
                cmocka_unit_test(test_timeout),      cmocka_unit_test(test_no_wait_for_descendants),
                cmocka_unit_test(test_exec_failure), cmocka_unit_test(test_environment),
                cmocka_unit_test(test_no_fd_leak),   cmocka_unit_test(test_pass_fds),
                cmocka_unit_test(test_spawn_as),     cmocka_unit_test(test_jail_bind),
                cmocka_unit_test(test_spawn_jail),   cmocka_unit_test(test_spawn_cgroups),
                cmocka_unit_test(test_argv_string),  cmocka_unit_test(test_concurrent),
                cmocka_unit_test(test_detached),     cmocka_unit_test(test_debug_logging),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
