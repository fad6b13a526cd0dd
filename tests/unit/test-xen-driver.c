/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen driver against a private xenstore (build/tools/xenstored) and the xl stand-in
 * (build/tools/fake-xl): availability, observation (present, absent, foreign), watch
 * events, start and stop through xl, the shutdown timeout, xl failing. The tools are built
 * by the integration runner (make build-all); without them every test skips. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
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
#include <xenstore.h>

#include "drivers/cmd.h"
#include "drivers/domain.h"
#include "drivers/domain/xen.h"
#include "model/domain.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/time.h"

#define XENSTORED "build/tools/xenstored"
#define FAKE_XL   "build/tools/fake-xl"

extern char **environ;

static char *tmpdir, *run_dir, *sock, *pidfile, *xl_log;
static char xl_path[PATH_MAX];
static pid_t server_pid;
static const char *skip_reason;
static struct xs_handle *ctl; /* the test's own connection */

static const struct domain_driver *drv = &xen_domain_driver;

/* ---- the private xenstore ----------------------------------------------------------------- */

static void configure(int enabled) {
        struct dom_driver_config c = {.run_dir = run_dir, .xen_enabled = enabled, .xl = xl_path};
        xen_driver_set_config(&c);
}

static int setup_all(void **state) {
        (void)state;
        if (access(XENSTORED, X_OK) < 0 || access(FAKE_XL, X_OK) < 0) {
                skip_reason = "build/tools/xenstored or build/tools/fake-xl missing (make "
                              "build-all builds them)";
                return 0;
        }
        if (!realpath(FAKE_XL, xl_path))
                return -1;
        tmpdir = test_mkdtemp("dv-xen");
        run_dir = path_join(tmpdir, "run");
        sock = path_join(tmpdir, "xenstored.sock");
        pidfile = path_join(tmpdir, "xenstored.pid");
        xl_log = path_join(tmpdir, "xl.log");
        char *argv[] = {XENSTORED, sock, pidfile, NULL};
        if (posix_spawn(&server_pid, XENSTORED, NULL, NULL, argv, environ) != 0)
                return -1;
        for (int i = 0; i < 500 && access(pidfile, F_OK) < 0; i++)
                usleep(10000);
        if (access(pidfile, F_OK) < 0)
                return -1;
        setenv("XENSTORED_PATH", sock, 1);
        ctl = xs_open(0);
        if (!ctl)
                return -1;
        xs_write(ctl, XBT_NULL, "/tool/fake-xl/log", xl_log, (unsigned)strlen(xl_log));
        configure(-1);
        return 0;
}

static int teardown_all(void **state) {
        (void)state;
        if (ctl)
                xs_close(ctl);
        configure(0); /* drops the driver's connection */
        if (server_pid > 0) {
                kill(server_pid, SIGTERM);
                (void)waitpid(server_pid, NULL, 0);
        }
        if (tmpdir)
                test_rm_rf(tmpdir);
        return 0;
}

#define NEED_TOOLS()                                         \
        do {                                                 \
                if (skip_reason) {                           \
                        printf("# skip: %s\n", skip_reason); \
                        skip();                              \
                }                                            \
        } while (0)

static void put(const char *path, const char *value) {
        assert_true(xs_write(ctl, XBT_NULL, path, value, (unsigned)strlen(value)));
}

static void knob(const char *name, const char *value) {
        char p[128];
        snprintf(p, sizeof(p), "/tool/fake-xl/%s", name);
        if (value)
                put(p, value);
        else
                (void)xs_rm(ctl, XBT_NULL, p);
}

/* A domain as libxl leaves it in xenstore, introduced (so @introduceDomain fires). */
static void add_domain(int domid, const char *name, const char *uuid) {
        char p[128], v[128];
        snprintf(p, sizeof(p), "/vm/%s/uuid", uuid);
        put(p, uuid);
        snprintf(p, sizeof(p), "/local/domain/%d/vm", domid);
        snprintf(v, sizeof(v), "/vm/%s", uuid);
        put(p, v);
        snprintf(p, sizeof(p), "/local/domain/%d/name", domid);
        put(p, name);
        assert_true(xs_introduce_domain(ctl, (unsigned)domid, 0, 0));
}

static void remove_domain(int domid, const char *uuid) {
        char p[128];
        snprintf(p, sizeof(p), "/local/domain/%d", domid);
        assert_true(xs_rm(ctl, XBT_NULL, p));
        snprintf(p, sizeof(p), "/vm/%s", uuid);
        assert_true(xs_rm(ctl, XBT_NULL, p));
        assert_true(xs_release_domain(ctl, (unsigned)domid));
}

static struct dv_object *domain(const char *name, const char *uuid) {
        char xml[2048];
        char uuid_elem[96] = "";
        if (uuid)
                snprintf(uuid_elem, sizeof(uuid_elem), "<uuid>%s</uuid>", uuid);
        snprintf(xml, sizeof(xml),
                 "<domain type='xen'><name>%s</name>%s<memory unit='MiB'>64</memory>"
                 "<os><type>xen</type><kernel>/boot/vmlinuz</kernel></os>"
                 "<devices><interface type='bridge'><source bridge='xenbr0'/>"
                 "<mac address='00:16:3e:00:00:01'/></interface></devices></domain>",
                 name, uuid_elem);
        return test_parse_string_ok(xml, name);
}

static char *read_log(void) {
        char *s = NULL;
        if (read_full_file(xl_log, 1 << 20, &s, NULL) < 0)
                return strdup("");
        return s;
}

static void observe(const struct domain_def *def, struct dom_status *st) {
        struct dv_error err = DV_ERROR_INIT;
        int r = drv->observe(def, st, &err);
        if (r < 0)
                printf("# observe: %s\n", dv_error_message(&err));
        assert_int_equal(r, 0);
        dv_error_clear(&err);
}

/* Waits (bounded) for the events fd and dispatches; returns the dispatch's count. */
static int wait_events(void) {
        int fd = drv->events_fd();
        assert_true(fd >= 0);
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
        int n = 0;
        while (n == 0 && now_usec(CLOCK_MONOTONIC) < deadline) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 100) > 0)
                        n = drv->events_dispatch();
        }
        return n;
}

static void drain_events(void) {
        int fd = drv->events_fd();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (poll(&p, 1, 50) > 0)
                (void)drv->events_dispatch();
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_available(void **state) {
        (void)state;
        NEED_TOOLS();
        struct dv_error err = DV_ERROR_INIT;
        configure(0);
        assert_int_equal(drv->available(&err), -ENODEV);
        assert_string_equal(dv_error_message(&err), "Xen is disabled in agent.conf (xen.enabled)");
        dv_error_clear(&err);

        _cleanup_free_ char *missing = path_join(tmpdir, "no-such.sock");
        setenv("XENSTORED_PATH", missing, 1);
        configure(-1);
        assert_int_equal(drv->available(&err), -ENODEV);
        assert_string_equal(dv_error_message(&err), "Xen is not available on this host");
        dv_error_clear(&err);
        configure(1);
        assert_int_equal(drv->available(&err), -ENODEV);
        assert_non_null(strstr(dv_error_message(&err), "Xen is not available on this host. "));
        assert_non_null(strstr(dv_error_message(&err), missing));
        dv_error_clear(&err);

        setenv("XENSTORED_PATH", sock, 1);
        configure(-1);
        assert_int_equal(drv->available(&err), 0);
        configure(1);
        assert_int_equal(drv->available(&err), 0);
        dv_error_clear(&err);
}

static void test_observe_foreign(void **state) {
        (void)state;
        NEED_TOOLS();
        configure(-1);
        const char *u = "aaaaaaaa-1111-2222-3333-444444444444";
        _cleanup_(dv_object_freep) struct dv_object *none = domain("xtest-absent", NULL);
        _cleanup_(dv_object_freep) struct dv_object *other = domain("xtest-foreign", NULL);
        _cleanup_(dv_object_freep) struct dv_object *same = domain("xtest-foreign", u);
        struct dom_status st = {0};
        observe(none->def.domain, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_false(st.exited);
        dom_status_done(&st);

        add_domain(40, "xtest-foreign", u);
        assert_true(wait_events() > 0);
        observe(other->def.domain, &st);
        assert_int_equal(st.state, DOM_BROKEN);
        assert_string_equal(st.reason,
                            "a Xen domain (domid 40) not started by declvirt runs xtest-foreign");
        dom_status_done(&st);

        /* Never started nor stopped by us: a stop leaves the foreign one alone. */
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(drv->stop(other->def.domain, USEC_PER_SEC, &err), 0);
        struct dom_start a = {.uuid = "bbbbbbbb-1111-2222-3333-444444444444"};
        assert_int_equal(drv->start(other->def.domain, &a, &err), -EEXIST);
        assert_non_null(strstr(dv_error_message(&err), "not started by declvirt"));
        dv_error_clear(&err);
        char *name = xs_read(ctl, XBT_NULL, "/local/domain/40/name", NULL);
        assert_non_null(name);
        free(name);

        /* The same UUID written in the file: ours (an adopted domain). */
        observe(same->def.domain, &st);
        assert_int_equal(st.state, DOM_RUNNING);
        assert_int_equal(st.id, 40);
        dom_status_done(&st);

        remove_domain(40, u);
        assert_true(wait_events() > 0);
        observe(same->def.domain, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_true(st.exited); /* it was RUNNING as ours: gone without a stop */
        assert_false(st.exit_clean);
        dom_status_done(&st);
        observe(same->def.domain, &st);
        assert_false(st.exited); /* reported once */
        dom_status_done(&st);
}

static void test_start_stop(void **state) {
        (void)state;
        NEED_TOOLS();
        configure(-1);
        knob("ignore-shutdown", NULL);
        knob("fail-create", NULL);
        (void)unlink(xl_log);
        const char *u = "cccccccc-1111-2222-3333-444444444444";
        _cleanup_(dv_object_freep) struct dv_object *o = domain("xtest-ss", NULL);
        const struct domain_def *def = o->def.domain;
        char *macs[] = {"00:16:3e:00:00:01", NULL};
        struct dom_start a = {.uuid = u, .macs = macs};
        struct dv_error err = DV_ERROR_INIT;
        int r = drv->start(def, &a, &err);
        if (r < 0)
                printf("# start: %s\n", dv_error_message(&err));
        assert_int_equal(r, 0);

        _cleanup_free_ char *cfg = path_join(run_dir, "xen/xtest-ss.cfg");
        _cleanup_free_ char *rec = path_join(run_dir, "xen/xtest-ss.domid");
        struct stat s;
        assert_int_equal(stat(cfg, &s), 0);
        assert_int_equal(s.st_mode & 0777, 0600);
        _cleanup_free_ char *text = test_read_file(cfg, NULL);
        assert_non_null(strstr(text, u));
        assert_int_equal(access(rec, F_OK), 0);

        struct dom_status st = {0};
        observe(def, &st);
        assert_int_equal(st.state, DOM_RUNNING);
        assert_true(st.id > 0);
        int domid = st.id;
        dom_status_done(&st);
        char ifname[IFNAMSIZ], want[IFNAMSIZ];
        assert_int_equal(drv->iface_name(def, 0, ifname), 0);
        snprintf(want, sizeof(want), "vif%d.0", domid);
        assert_string_equal(ifname, want);

        /* Already running: nothing run again. */
        assert_int_equal(drv->start(def, &a, &err), 0);
        _cleanup_free_ char *log1 = read_log();
        _cleanup_free_ char *want_log = NULL;
        assert_true(asprintf(&want_log, "create %s\n", cfg) > 0);
        assert_string_equal(log1, want_log);

        assert_int_equal(drv->stop(def, 10 * USEC_PER_SEC, &err), 0);
        _cleanup_free_ char *log2 = read_log();
        _cleanup_free_ char *want_log2 = NULL;
        assert_true(asprintf(&want_log2, "create %s\nshutdown -w xtest-ss\n", cfg) > 0);
        assert_string_equal(log2, want_log2);
        assert_int_equal(access(cfg, F_OK), -1);
        assert_int_equal(access(rec, F_OK), -1);
        drain_events();
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_false(st.exited); /* a stop of ours is not an exit */
        dom_status_done(&st);
        assert_int_equal(drv->stop(def, USEC_PER_SEC, &err), 0); /* not running: 0 */
        dv_error_clear(&err);
}

static void test_shutdown_timeout(void **state) {
        (void)state;
        NEED_TOOLS();
        configure(-1);
        knob("fail-create", NULL);
        knob("ignore-shutdown", "1");
        (void)unlink(xl_log);
        _cleanup_(dv_object_freep) struct dv_object *o = domain("xtest-to", NULL);
        struct dom_start a = {.uuid = "dddddddd-1111-2222-3333-444444444444"};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(drv->start(o->def.domain, &a, &err), 0);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int r = drv->stop(o->def.domain, USEC_PER_SEC, &err);
        if (r < 0)
                printf("# stop: %s\n", dv_error_message(&err));
        assert_int_equal(r, 0);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 >= USEC_PER_SEC);
        _cleanup_free_ char *log = read_log();
        assert_non_null(strstr(log, "shutdown -w xtest-to\ndestroy xtest-to\n"));
        struct dom_status st = {0};
        observe(o->def.domain, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        dom_status_done(&st);
        knob("ignore-shutdown", NULL);
        dv_error_clear(&err);
}

static void test_xl_fails(void **state) {
        (void)state;
        NEED_TOOLS();
        configure(-1);
        knob("fail-create", "libxl: error: libxl_create.c:1234: the hypervisor says no");
        _cleanup_(dv_object_freep) struct dv_object *o = domain("xtest-fail", NULL);
        struct dom_start a = {.uuid = "eeeeeeee-1111-2222-3333-444444444444"};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(drv->start(o->def.domain, &a, &err), -EIO);
        assert_non_null(strstr(dv_error_message(&err), "the hypervisor says no"));
        dv_error_clear(&err);
        _cleanup_free_ char *cfg = path_join(run_dir, "xen/xtest-fail.cfg");
        assert_int_equal(access(cfg, F_OK), -1);
        knob("fail-create", NULL);
}

static void test_crash(void **state) {
        (void)state;
        NEED_TOOLS();
        configure(-1);
        knob("fail-create", NULL);
        _cleanup_(dv_object_freep) struct dv_object *o = domain("xtest-crash", NULL);
        struct dom_start a = {.uuid = "ffffffff-1111-2222-3333-444444444444"};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(drv->start(o->def.domain, &a, &err), 0);
        struct dom_status st = {0};
        observe(o->def.domain, &st);
        assert_int_equal(st.state, DOM_RUNNING);
        dom_status_done(&st);
        drain_events();

        char *argv[] = {xl_path, "crash", "xtest-crash", NULL};
        assert_int_equal(cmd_run(argv, NULL, NULL, &err), 0);
        assert_true(wait_events() > 0);
        observe(o->def.domain, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_true(st.exited);
        assert_false(st.exit_clean);
        assert_non_null(strstr(st.exit_reason, "is gone"));
        dom_status_done(&st);
        _cleanup_free_ char *rec = path_join(run_dir, "xen/xtest-crash.domid");
        assert_int_equal(access(rec, F_OK), -1);
        dv_error_clear(&err);
}

/* xenstored goes away and comes back: the driver reconnects by itself. */
static void test_reconnect(void **state) {
        (void)state;
        NEED_TOOLS();
        configure(-1);
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(drv->available(&err), 0);
        xs_close(ctl);
        ctl = NULL;
        kill(server_pid, SIGTERM);
        assert_int_equal(waitpid(server_pid, NULL, 0), server_pid);
        server_pid = 0;
        _cleanup_(dv_object_freep) struct dv_object *o = domain("xtest-rc", NULL);
        struct dom_status st = {0};
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
        int r = 0;
        while (r == 0 && now_usec(CLOCK_MONOTONIC) < deadline) {
                r = drv->observe(o->def.domain, &st, &err);
                dom_status_done(&st);
                usleep(100000);
        }
        assert_int_equal(r, -ENODEV);
        dv_error_clear(&err);

        char *argv[] = {XENSTORED, sock, pidfile, NULL};
        assert_int_equal(posix_spawn(&server_pid, XENSTORED, NULL, NULL, argv, environ), 0);
        for (int i = 0; i < 500 && access(pidfile, F_OK) < 0; i++)
                usleep(10000);
        ctl = xs_open(0);
        assert_non_null(ctl);
        deadline = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;
        while ((r = drv->available(&err)) < 0 && now_usec(CLOCK_MONOTONIC) < deadline) {
                dv_error_clear(&err);
                usleep(100000);
        }
        assert_int_equal(r, 0);
        observe(o->def.domain, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        dom_status_done(&st);
        xs_write(ctl, XBT_NULL, "/tool/fake-xl/log", xl_log, (unsigned)strlen(xl_log));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_available),  cmocka_unit_test(test_observe_foreign),
                cmocka_unit_test(test_start_stop), cmocka_unit_test(test_shutdown_timeout),
                cmocka_unit_test(test_xl_fails),   cmocka_unit_test(test_crash),
                cmocka_unit_test(test_reconnect),
        };
        return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
