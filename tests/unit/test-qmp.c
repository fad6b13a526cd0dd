/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QMP client: against a scripted server on a unix socket (split greeting, stale
 * replies, events, silence) and against a real QEMU (TCG, -S, 32 MiB), which every
 * test kills by PID in its teardown. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json_object.h>

#include "drivers/cmd.h"
#include "drivers/domain/qmp.h"
#include "tests/helpers/testlib.h"
#include "util/macro.h"
#include "util/strv.h"
#include "util/time.h"

#define QEMU_BIN "/usr/bin/qemu-system-x86_64"

static char *tmpdir;
static pid_t qemu_pid;

static int group_setup(void **state) {
        (void)state;
        tmpdir = test_mkdtemp("dv-qmp");
        return 0;
}

static int group_teardown(void **state) {
        (void)state;
        test_rm_rf(tmpdir);
        free(tmpdir);
        return 0;
}

/* Kills the QEMU a test started, whatever happened in the test. It is our child, so
 * its PID cannot be reused before we reap it here. */
static int kill_qemu(void **state) {
        (void)state;
        if (qemu_pid > 0) {
                kill(qemu_pid, SIGKILL);
                while (waitpid(qemu_pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                qemu_pid = 0;
        }
        return 0;
}

/* ---- a scripted server ----------------------------------------------------------------- */

struct script {
        int listen_fd;
        const char *const *out; /* what to send after each received line (index 0: on accept) */
        size_t n_out;
};

static void send_str(int fd, const char *s) {
        size_t n = strlen(s);
        while (n > 0) {
                ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t)k;
        }
}

static void *server(void *arg) {
        struct script *sc = arg;
        int fd = accept4(sc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return NULL;
        send_str(fd, sc->out[0]);
        char buf[4096];
        size_t step = 1;
        while (step < sc->n_out) {
                ssize_t k = recv(fd, buf, sizeof(buf), 0);
                if (k <= 0)
                        break;
                for (ssize_t i = 0; i < k && step < sc->n_out; i++)
                        if (buf[i] == '\n')
                                send_str(fd, sc->out[step++]);
        }
        /* Stay silent until the client goes away. */
        while (recv(fd, buf, sizeof(buf), 0) > 0)
                ;
        close(fd);
        return NULL;
}

static int listen_on(const char *path) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        assert_true(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        unlink(path);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 4), 0);
        return fd;
}

static void test_scripted(void **state) {
        (void)state;
        _cleanup_free_ char *path = NULL;
        assert_true(asprintf(&path, "%s/fake.qmp", tmpdir) > 0);
        static const char *const out[] = {
                /* greeting, then the capabilities reply preceded by an event */
                "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n",
                "{\"event\": \"EARLY\", \"data\": {}}\r\n{\"return\": {}, \"id\": 1}\r\n",
                /* a stale reply, an event, then ours */
                "{\"return\": {\"status\": \"old\"}, \"id\": 99}\r\n"
                "{\"event\": \"STOP\", \"data\": {}}\r\n"
                "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 2}\r\n",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"it went wrong\"}, \"id\": "
                "3}\r\n",
                "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not "
                "been found\"}, \"id\": 4}\r\n",
        };
        struct script sc = {.listen_fd = listen_on(path), .out = out, .n_out = ELEMENTSOF(out)};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, server, &sc), 0);

        struct dv_error err = DV_ERROR_INIT;
        struct qmp *q = NULL;
        assert_int_equal(qmp_connect(path, 2 * USEC_PER_SEC, &q, &err), 0);
        uint64_t sent = qmp_commands_sent();
        struct json_object *ret = NULL;
        assert_int_equal(qmp_execute(q, "query-status", NULL, USEC_PER_SEC, &ret, &err), 0);
        assert_int_equal(qmp_commands_sent(), sent + 1);
        struct json_object *s = NULL;
        assert_true(json_object_object_get_ex(ret, "status", &s));
        assert_string_equal(json_object_get_string(s), "running");
        json_object_put(ret);

        struct json_object *e = qmp_next_event(q);
        assert_non_null(e);
        assert_true(json_object_object_get_ex(e, "event", &s));
        assert_string_equal(json_object_get_string(s), "EARLY");
        json_object_put(e);
        e = qmp_next_event(q);
        assert_non_null(e);
        assert_true(json_object_object_get_ex(e, "event", &s));
        assert_string_equal(json_object_get_string(s), "STOP");
        json_object_put(e);
        assert_null(qmp_next_event(q));

        assert_int_equal(qmp_execute(q, "stop", NULL, USEC_PER_SEC, NULL, &err), -EIO);
        assert_non_null(strstr(dv_error_message(&err), "it went wrong"));
        dv_error_clear(&err);
        assert_int_equal(qmp_execute(q, "nope", NULL, USEC_PER_SEC, NULL, &err), -EOPNOTSUPP);
        dv_error_clear(&err);

        /* No answer: bounded. */
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(qmp_execute(q, "query-status", NULL, 100 * USEC_PER_MSEC, NULL, &err),
                         -ETIMEDOUT);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        assert_true(took >= 100 * USEC_PER_MSEC && took < USEC_PER_SEC);
        dv_error_clear(&err);

        qmp_close(q);
        pthread_join(t, NULL);
        close(sc.listen_fd);
}

static void test_no_server(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        struct qmp *q = NULL;
        _cleanup_free_ char *path = NULL;
        assert_true(asprintf(&path, "%s/none.qmp", tmpdir) > 0);
        assert_int_equal(qmp_connect(path, USEC_PER_SEC, &q, &err), -ENOENT);
        assert_null(q);
        dv_error_clear(&err);

        /* Listening, never greeting (another client holds QEMU's monitor): bounded. */
        int fd = listen_on(path);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(qmp_connect(path, 150 * USEC_PER_MSEC, &q, &err), -ETIMEDOUT);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < USEC_PER_SEC);
        dv_error_clear(&err);
        close(fd);
        unlink(path);

        char longpath[200];
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = '\0';
        assert_int_equal(qmp_connect(longpath, USEC_PER_SEC, &q, &err), -ENAMETOOLONG);
        dv_error_clear(&err);
}

/* ---- real QEMU ------------------------------------------------------------------------- */

static void test_real_qemu(void **state) {
        (void)state;
        if (access(QEMU_BIN, X_OK) < 0) {
                print_message("skipped: %s not installed\n", QEMU_BIN);
                skip();
        }
        _cleanup_free_ char *sock = NULL, *qmparg = NULL, *log = NULL;
        assert_true(asprintf(&sock, "%s/real.qmp", tmpdir) > 0);
        assert_true(asprintf(&qmparg, "unix:%s,server=on,wait=off", sock) > 0);
        assert_true(asprintf(&log, "%s/real.log", tmpdir) > 0);
        char *argv[] = {QEMU_BIN,   "-name",        "guest=dv-qmp-test",
                        "-machine", "pc,accel=tcg", "-m",
                        "32",       "-nodefaults",  "-no-user-config",
                        "-display", "none",         "-S",
                        "-qmp",     qmparg,         NULL};
        struct dv_error err = DV_ERROR_INIT;
        assert_true(cmd_spawn_detached(argv, log, NULL, &qemu_pid, &err) > 0);

        struct qmp *q = NULL;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;
        int r;
        do {
                dv_error_clear(&err);
                r = qmp_connect(sock, USEC_PER_SEC, &q, &err);
                if (r < 0)
                        usleep(10000);
        } while (r < 0 && now_usec(CLOCK_MONOTONIC) < deadline);
        if (r < 0)
                fail_msg("QMP did not come up: %s", dv_error_message(&err));

        struct json_object *ret = NULL, *s = NULL;
        assert_int_equal(qmp_execute(q, "query-status", NULL, USEC_PER_SEC, &ret, &err), 0);
        assert_true(json_object_object_get_ex(ret, "status", &s));
        assert_string_equal(json_object_get_string(s), "prelaunch");
        json_object_put(ret);

        /* QEMU's own error text for a command that fails. */
        struct json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string("no-such-device"));
        assert_int_equal(qmp_execute(q, "device_del", args, USEC_PER_SEC, NULL, &err), -EIO);
        json_object_put(args);
        assert_non_null(strstr(dv_error_message(&err), "no-such-device"));
        dv_error_clear(&err);
        assert_int_equal(qmp_execute(q, "no-such-command", NULL, USEC_PER_SEC, NULL, &err),
                         -EOPNOTSUPP);
        dv_error_clear(&err);

        /* cont: a RESUME event, then the status says running. */
        assert_int_equal(qmp_execute(q, "cont", NULL, USEC_PER_SEC, NULL, &err), 0);
        assert_int_equal(qmp_execute(q, "query-status", NULL, USEC_PER_SEC, &ret, &err), 0);
        assert_true(json_object_object_get_ex(ret, "status", &s));
        assert_string_equal(json_object_get_string(s), "running");
        json_object_put(ret);
        bool resumed = false;
        for (struct json_object *e; (e = qmp_next_event(q));) {
                if (json_object_object_get_ex(e, "event", &s) &&
                    streq(json_object_get_string(s), "RESUME"))
                        resumed = true;
                json_object_put(e);
        }
        assert_true(resumed);

        /* quit: QEMU closes the connection and exits. */
        r = qmp_execute(q, "quit", NULL, USEC_PER_SEC, NULL, &err);
        assert_true(r == 0 || r == -ECONNRESET);
        dv_error_clear(&err);
        qmp_close(q);
        int status = 0;
        assert_int_equal(waitpid(qemu_pid, &status, 0), qemu_pid);
        qemu_pid = 0;
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scripted),
                cmocka_unit_test(test_no_server),
                cmocka_unit_test_teardown(test_real_qemu, kill_qemu),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
