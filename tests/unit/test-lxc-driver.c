/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container driver with real containers (root only): a busybox-static root built in
 * a temporary directory; start, PID 1 in its own pid namespace, marker file through a bind
 * mount, a read-only mount, the memory limit in the cgroup, graceful and forced stop, exit
 * status, stale pidfile, a process not ours, adoption by a fresh driver state, a refused
 * limit and a missing init leaving nothing behind. Every container is killed by PID in
 * the teardown, even on failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/domain/lxc.h"
#include "model/domain.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"
#include "util/time.h"

static char *tmpdir, *run_dir, *state_dir, *rootfs, *data_dir, *ro_dir, *cg_base;
static pid_t started[16];
static size_t n_started;

static void remember(pid_t pid) {
        if (pid > 0 && n_started < ELEMENTSOF(started))
                started[n_started++] = pid;
}

static void kill_started(void) {
        for (size_t i = 0; i < n_started; i++) {
                int fd = pidfd_open(started[i], 0);
                if (fd < 0)
                        continue;
                pidfd_send_signal(fd, SIGKILL, NULL, 0);
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                (void)poll(&pf, 1, 2000);
                close(fd);
                (void)waitpid(started[i], NULL, WNOHANG);
        }
        n_started = 0;
}

static void put(const char *dir, const char *name, const char *data, mode_t mode) {
        _cleanup_free_ char *p = path_join(dir, name);
        _cleanup_free_ char *d = path_dirname(p);
        assert_int_equal(mkdir_p(d, 0755), 0);
        assert_int_equal(write_file_atomic(p, data, strlen(data), mode), 0);
}

static bool have_root_and_ns(const char **why) {
        if (geteuid() != 0) {
                *why = "not root";
                return false;
        }
        if (access("/bin/busybox", X_OK) < 0) {
                *why = "/bin/busybox (busybox-static) is missing";
                return false;
        }
        pid_t pid = fork();
        if (pid == 0)
                _exit(unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) < 0);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                *why = "namespaces are not available";
                return false;
        }
        return true;
}

static const char *skip_reason;

static int group_setup(void **state) {
        (void)state;
        if (!have_root_and_ns(&skip_reason))
                return 0;
        tmpdir = test_mkdtemp("dv-lxc");
        assert_true(asprintf(&run_dir, "%s/run", tmpdir) > 0);
        assert_true(asprintf(&state_dir, "%s/state", tmpdir) > 0);
        assert_true(asprintf(&rootfs, "%s/rootfs", tmpdir) > 0);
        assert_true(asprintf(&data_dir, "%s/data", tmpdir) > 0);
        assert_true(asprintf(&ro_dir, "%s/ro", tmpdir) > 0);
        assert_true(asprintf(&cg_base, "declvirt-test-%d", (int)getpid()) > 0);
        _cleanup_free_ char *templates = path_join(tmpdir, "templates");
        _cleanup_free_ char *containers = path_join(tmpdir, "containers");
        struct dom_driver_config c = {.run_dir = run_dir,
                                      .state_dir = state_dir,
                                      .template_dir = templates,
                                      .container_dir = containers};
        lxc_driver_set_config(&c);
        lxc_driver_set_cgroup(NULL, cg_base);

        /* The root: busybox-static and its applets, and the test's inits. */
        _cleanup_free_ char *bin = path_join(rootfs, "bin");
        assert_int_equal(mkdir_p(bin, 0755), 0);
        size_t len = 0;
        _cleanup_free_ char *bb = NULL;
        assert_int_equal(read_full_file("/bin/busybox", 16 << 20, &bb, &len), 0);
        _cleanup_free_ char *bbp = path_join(bin, "busybox");
        assert_int_equal(write_file_atomic(bbp, bb, len, 0755), 0);
        const char *applets[] = {"sh",    "sleep", "cat", "echo",   "touch", "hostname", "ls",
                                 "mkdir", "rm",    "ip",  "udhcpc", "true",  "false"};
        for (size_t i = 0; i < ELEMENTSOF(applets); i++) {
                _cleanup_free_ char *l = path_join(bin, applets[i]);
                assert_int_equal(symlink("busybox", l), 0);
        }
        put(rootfs, "sbin/init",
            "#!/bin/sh\n"
            "trap 'echo stopping > /data/stopped; exit 0' TERM\n"
            "echo $$ > /data/pid\n"
            "hostname > /data/hostname\n"
            "if touch /ro/x 2>/dev/null; then echo writable > /data/ro; else echo readonly > /data/ro; fi\n"
            "echo \"$container $FOO\" > /data/env\n"
            "echo started > /data/marker\n"
            "while true; do sleep 0.05; done\n",
            0755);
        put(rootfs, "sbin/stubborn",
            "#!/bin/sh\necho started > /data/marker\nwhile true; do sleep 1; done\n", 0755);
        put(rootfs, "sbin/exit3", "#!/bin/sh\necho started > /data/marker\nexit 3\n", 0755);
        put(rootfs, "sbin/exit0", "#!/bin/sh\nexit 0\n", 0755);
        put(rootfs, "etc/passwd", "root:x:0:0:root:/:/bin/sh\n", 0644);
        for (const char *d = "proc\0sys\0dev\0tmp\0data\0ro\0"; *d; d += strlen(d) + 1) {
                _cleanup_free_ char *p = path_join(rootfs, d);
                assert_int_equal(mkdir_p(p, 0755), 0);
        }
        assert_int_equal(mkdir_p(data_dir, 0755), 0);
        assert_int_equal(mkdir_p(ro_dir, 0755), 0);
        return 0;
}

static int group_teardown(void **state) {
        (void)state;
        kill_started();
        if (tmpdir) {
                /* Our test cgroups, if a failure left any. */
                const char *h[] = {"memory", "cpu", "unified"};
                for (size_t i = 0; i < ELEMENTSOF(h); i++) {
                        char p[512];
                        snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s", h[i], cg_base);
                        DIR *d = opendir(p);
                        struct dirent *de;
                        while (d && (de = readdir(d)))
                                if (de->d_name[0] != '.') {
                                        char q[1024];
                                        snprintf(q, sizeof(q), "%s/%s", p, de->d_name);
                                        (void)rmdir(q);
                                }
                        if (d)
                                closedir(d);
                        (void)rmdir(p);
                }
                test_rm_rf(tmpdir);
        }
        free(tmpdir);
        free(run_dir);
        free(state_dir);
        free(rootfs);
        free(data_dir);
        free(ro_dir);
        free(cg_base);
        return 0;
}

static int test_teardown(void **state) {
        (void)state;
        kill_started();
        if (data_dir) {
                test_rm_rf(data_dir);
                if (mkdir_p(data_dir, 0755) < 0)
                        return -1; /* the next test would run without its data directory */
        }
        lxc_driver_forget();
        return 0;
}

#define NEED()                                                  \
        do {                                                    \
                if (skip_reason) {                              \
                        printf("# skipped: %s\n", skip_reason); \
                        skip();                                 \
                }                                               \
        } while (0)

static struct dv_object *container(const char *name, const char *init, const char *memory,
                                   const char *extra_os) {
        _cleanup_free_ char *xml = NULL;
        assert_true(
                asprintf(
                        &xml,
                        "<domain type='lxc'>\n<name>%s</name>\n<memory unit='KiB'>%s</memory>\n"
                        "<vcpu>1</vcpu>\n"
                        "<os><type>exe</type>\n<init>%s</init>%s</os>\n<devices>\n"
                        "<filesystem type='mount'><source dir='%s'/><target dir='/'/></filesystem>\n"
                        "<filesystem type='mount'><source dir='%s'/><target dir='/data'/></filesystem>\n"
                        "<filesystem type='mount'><source dir='%s'/><target dir='/ro'/><readonly/></filesystem>\n"
                        "</devices>\n</domain>\n",
                        name, memory, init, extra_os, rootfs, data_dir, ro_dir) > 0);
        return test_parse_string_ok(xml, name);
}

static char *data_file(const char *name) {
        _cleanup_free_ char *p = path_join(data_dir, name);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(p, 4096, &s, &len) < 0)
                return NULL;
        while (len > 0 && s[len - 1] == '\n')
                s[--len] = '\0';
        return TAKE_PTR(s);
}

static char *wait_data_file(const char *name) {
        for (int i = 0; i < 500; i++) {
                char *s = data_file(name);
                if (s)
                        return s;
                (void)poll(NULL, 0, 10);
        }
        return NULL;
}

/* The containers run in a user namespace of their own, as under the agent: a range from
 * the top of agent.conf's default container.id_range, which the integration tests (the
 * agent allocates from its bottom) do not reach. */
static const struct dom_start start_args = {.id_base = 2147221504u};

static void observe(const struct domain_def *def, struct dom_status *st) {
        struct dv_error err = DV_ERROR_INIT;
        dom_status_done(st);
        int r = lxc_observe(def, st, &err);
        if (r < 0)
                fail_msg("observe: %s", strna(dv_error_message(&err)));
        dv_error_clear(&err);
}

static void start_ok(const struct domain_def *def) {
        struct dv_error err = DV_ERROR_INIT;
        int r = lxc_start(def, &start_args, &err);
        if (r < 0)
                fail_msg("start: %s", strna(dv_error_message(&err)));
        dv_error_clear(&err);
}

static char *cgroup_file(const char *hier, const char *name, const char *file) {
        char p[512];
        snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s/%s/%s", hier, cg_base, name, file);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(p, 4096, &s, &len) < 0)
                return NULL;
        while (len > 0 && s[len - 1] == '\n')
                s[--len] = '\0';
        return TAKE_PTR(s);
}

static bool cgroup_exists(const char *name) {
        char p[512];
        snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s/%s", cg_base, name);
        return access(p, F_OK) == 0;
}

/* The last NSpid field of pid: its PID inside its own namespace. */
static char *nspid(pid_t pid) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        assert_int_equal(read_full_file(p, 65536, &s, &len), 0);
        char *l = strstr(s, "\nNSpid:");
        assert_non_null(l);
        char *end = strchr(l + 1, '\n');
        if (end)
                *end = '\0';
        return strdup(l + 8);
}

static void test_lifecycle(void **state) {
        (void)state;
        NEED();
        struct dv_object *o = container("dvt-life", "/sbin/init", "65536",
                                        "<initenv name='FOO'>bar baz</initenv>");
        const struct domain_def *def = o->def.domain;
        struct dom_status st = {0};
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        start_ok(def);
        observe(def, &st);
        assert_int_equal(st.state, DOM_RUNNING);
        remember(st.pid);
        assert_true(st.pid > 1);
        assert_int_equal(st.id, st.pid);
        pid_t pid = st.pid;
        /* Started again while running: nothing happens. */
        start_ok(def);
        observe(def, &st);
        assert_int_equal(st.pid, pid);

        _cleanup_free_ char *marker = wait_data_file("marker");
        assert_non_null(marker);
        assert_string_equal(marker, "started");
        _cleanup_free_ char *inner = data_file("pid");
        assert_string_equal(inner, "1");
        _cleanup_free_ char *ns = nspid(pid);
        char want[64];
        snprintf(want, sizeof(want), "%d\t1", (int)pid);
        assert_string_equal(ns, want);
        _cleanup_free_ char *host = data_file("hostname");
        assert_string_equal(host, "dvt-life");
        _cleanup_free_ char *ro = data_file("ro");
        assert_string_equal(ro, "readonly");
        _cleanup_free_ char *env = data_file("env");
        assert_string_equal(env, "declvirt bar baz");
        _cleanup_free_ char *limit = cgroup_file("memory", "dvt-life", "memory.limit_in_bytes");
        assert_non_null(limit);
        assert_string_equal(limit, "67108864");
        _cleanup_free_ char *quota = cgroup_file("cpu", "dvt-life", "cpu.cfs_quota_us");
        assert_string_equal(quota, "100000");
        char pidfile[512];
        snprintf(pidfile, sizeof(pidfile), "%s/lxc/dvt-life.pid", run_dir);
        assert_int_equal(access(pidfile, F_OK), 0);

        /* Events: the pidfd becomes readable only when init exits. */
        int efd = lxc_events_fd();
        assert_true(efd >= 0);
        observe(def, &st);
        assert_int_equal(lxc_events_dispatch(), 0);

        /* Graceful: the init's trap runs. */
        struct dv_error err = DV_ERROR_INIT;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(lxc_stop(def, 10 * USEC_PER_SEC, &err), 0);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 5 * USEC_PER_SEC);
        _cleanup_free_ char *stopped = data_file("stopped");
        assert_non_null(stopped);
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_false(st.exited);
        assert_int_equal(access(pidfile, F_OK), -1);
        assert_false(cgroup_exists("dvt-life"));
        /* Not running: 0. */
        assert_int_equal(lxc_stop(def, USEC_PER_SEC, &err), 0);
        dom_status_done(&st);
        dv_object_free(o);
}

static void test_force_stop(void **state) {
        (void)state;
        NEED();
        struct dv_object *o = container("dvt-stubborn", "/sbin/stubborn", "65536", "");
        const struct domain_def *def = o->def.domain;
        struct dom_status st = {0};
        start_ok(def);
        observe(def, &st);
        remember(st.pid);
        assert_int_equal(st.state, DOM_RUNNING);
        _cleanup_free_ char *marker = wait_data_file("marker");
        assert_non_null(marker);
        struct dv_error err = DV_ERROR_INIT;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(lxc_stop(def, 300 * USEC_PER_MSEC, &err), 0);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        assert_true(took >= 300 * USEC_PER_MSEC);
        assert_true(took < 8 * USEC_PER_SEC);
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_false(cgroup_exists("dvt-stubborn"));
        dom_status_done(&st);
        dv_object_free(o);
}

static void wait_shutoff(const struct domain_def *def, struct dom_status *st) {
        for (int i = 0; i < 500; i++) {
                observe(def, st);
                if (st->state == DOM_SHUTOFF)
                        return;
                (void)poll(NULL, 0, 10);
        }
        fail_msg("%s still runs", def->name);
}

/* An init that exits at once, however quickly: the start succeeds (its exec did), the exit
 * is an event and the next observe reports it once, with the status. Timing never turns it
 * into a failed start. */
static void exit_at_once(const char *name, const char *init, bool clean, const char *reason) {
        struct dv_object *o = container(name, init, "65536", "");
        const struct domain_def *def = o->def.domain;
        struct dom_status st = {0};
        int efd = lxc_events_fd();
        start_ok(def);
        struct pollfd pf = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, 5000), 1);
        assert_true(lxc_events_dispatch() >= 1);
        wait_shutoff(def, &st);
        assert_true(st.exited);
        assert_int_equal(st.exit_clean, clean);
        assert_string_equal(st.exit_reason, reason);
        assert_false(cgroup_exists(name));
        /* Reported once; the clean flag stays until the next start or stop. */
        observe(def, &st);
        assert_false(st.exited);
        assert_int_equal(st.exit_clean, clean);
        dom_status_done(&st);
        dv_object_free(o);
}

static void test_exit_status(void **state) {
        (void)state;
        NEED();
        exit_at_once("dvt-exit", "/sbin/exit3", false, "init exited with status 3");
        exit_at_once("dvt-exit0", "/sbin/exit0", true, "init exited with status 0");
}

static void test_stale_and_foreign(void **state) {
        (void)state;
        NEED();
        struct dv_object *o = container("dvt-stale", "/sbin/init", "65536", "");
        const struct domain_def *def = o->def.domain;
        char dir[512], pidfile[600];
        snprintf(dir, sizeof(dir), "%s/lxc", run_dir);
        snprintf(pidfile, sizeof(pidfile), "%s/dvt-stale.pid", dir);
        assert_int_equal(mkdir_p(dir, 0755), 0);

        /* A process that is not ours (same pid namespace, not in our cgroup). */
        pid_t other = fork();
        if (other == 0) {
                execl("/bin/busybox", "sleep", "30", (char *)NULL);
                _exit(1);
        }
        assert_true(other > 0);
        remember(other);
        char s[32];
        snprintf(s, sizeof(s), "%d\n", (int)other);
        assert_int_equal(write_file_atomic(pidfile, s, strlen(s), 0644), 0);
        struct dom_status st = {0};
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_non_null(st.reason);
        assert_non_null(strstr(st.reason, "stale pidfile"));
        assert_true(st.exited);
        assert_non_null(strstr(st.exit_reason, "belongs to another process"));
        assert_int_equal(access(pidfile, F_OK), -1);
        /* Never signalled. */
        assert_int_equal(kill(other, 0), 0);
        int wst = 0;
        assert_int_equal(waitpid(other, &wst, WNOHANG), 0);
        /* Stop with the pidfile pointing at it again: still untouched. */
        assert_int_equal(write_file_atomic(pidfile, s, strlen(s), 0644), 0);
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(lxc_stop(def, USEC_PER_SEC, &err), 0);
        assert_int_equal(waitpid(other, &wst, WNOHANG), 0);
        kill(other, SIGKILL);
        waitpid(other, NULL, 0);

        /* Garbage. */
        assert_int_equal(write_file_atomic(pidfile, "x\n", 2, 0644), 0);
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        assert_string_equal(st.reason, "unreadable pidfile removed");
        assert_int_equal(access(pidfile, F_OK), -1);
        dom_status_done(&st);
        dv_object_free(o);
}

/* Started by another process (as by an agent that restarted since): found again with the
 * same PID, stopped through its pidfile. */
static void test_adoption(void **state) {
        (void)state;
        NEED();
        struct dv_object *o = container("dvt-adopt", "/sbin/init", "65536", "");
        const struct domain_def *def = o->def.domain;
        pid_t helper = fork();
        if (helper == 0) {
                struct dv_error err = DV_ERROR_INIT;
                _exit(lxc_start(def, &start_args, &err) < 0 ? 1 : 0);
        }
        int wst = 0;
        assert_int_equal(waitpid(helper, &wst, 0), helper);
        assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
        _cleanup_free_ char *marker = wait_data_file("marker");
        assert_non_null(marker);
        lxc_driver_forget();
        struct dom_status st = {0};
        observe(def, &st);
        assert_int_equal(st.state, DOM_RUNNING);
        remember(st.pid);
        char pidfile[512];
        snprintf(pidfile, sizeof(pidfile), "%s/lxc/dvt-adopt.pid", run_dir);
        uint64_t v = 0;
        assert_int_equal(read_u64_file(pidfile, 1, INT32_MAX, &v), 0);
        assert_int_equal((pid_t)v, st.pid);
        pid_t pid = st.pid;
        lxc_driver_forget();
        observe(def, &st);
        assert_int_equal(st.pid, pid);
        /* Lost pidfile: found again in its cgroup. */
        assert_int_equal(unlink(pidfile), 0);
        lxc_driver_forget();
        observe(def, &st);
        assert_int_equal(st.state, DOM_RUNNING);
        assert_int_equal(st.pid, pid);
        assert_int_equal(access(pidfile, F_OK), 0);
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(lxc_stop(def, 5 * USEC_PER_SEC, &err), 0);
        _cleanup_free_ char *stopped = data_file("stopped");
        assert_non_null(stopped);
        observe(def, &st);
        assert_int_equal(st.state, DOM_SHUTOFF);
        dom_status_done(&st);
        dv_object_free(o);
}

static void assert_nothing_left(const char *name) {
        char p[512];
        snprintf(p, sizeof(p), "%s/lxc/%s.pid", run_dir, name);
        assert_int_equal(access(p, F_OK), -1);
        snprintf(p, sizeof(p), "%s/lxc/%s", run_dir, name);
        assert_int_equal(access(p, F_OK), -1);
        assert_false(cgroup_exists(name));
}

static void test_refusals(void **state) {
        (void)state;
        NEED();
        /* Missing init: before anything is created. */
        struct dv_object *o = container("dvt-noinit", "/sbin/nope", "65536", "");
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(lxc_start(o->def.domain, &start_args, &err), -ENOENT);
        assert_non_null(strstr(dv_error_message(&err),
                               "init /sbin/nope not found in the container's root filesystem "
                               "(filesystem at line 8)"));
        dv_error_clear(&err);
        assert_nothing_left("dvt-noinit");
        dv_object_free(o);

        /* Below the floor: refused (a refusal blocks until the file changes). */
        o = container("dvt-tiny", "/sbin/init", "1024", "");
        assert_int_equal(lxc_start(o->def.domain, &start_args, &err), -EBUSY);
        assert_non_null(strstr(dv_error_message(&err), "below the 4096 KiB"));
        dv_error_clear(&err);
        assert_nothing_left("dvt-tiny");
        dv_object_free(o);

        /* The init is a directory: found by the exec, reported, nothing left running. */
        o = container("dvt-dirinit", "/data", "65536", "");
        assert_true(lxc_start(o->def.domain, &start_args, &err) < 0);
        dv_error_clear(&err);
        assert_nothing_left("dvt-dirinit");
        dv_object_free(o);
}

/* A limit the kernel refuses (here: a fake v1 tree whose limit file cannot be written)
 * fails the start with the value and the kernel's words; nothing is left. */
static void test_limit_refused(void **state) {
        (void)state;
        NEED();
        _cleanup_free_ char *fake = path_join(tmpdir, "fakecg");
        char p[1024];
        snprintf(p, sizeof(p), "%s/memory/%s/dvt-limit/memory.limit_in_bytes", fake, cg_base);
        assert_int_equal(mkdir_p(p, 0755), 0); /* a directory: EISDIR */
        snprintf(p, sizeof(p), "%s/cpu/%s/dvt-limit", fake, cg_base);
        assert_int_equal(mkdir_p(p, 0755), 0);
        put(p, "cpu.cfs_period_us", "", 0644);
        put(p, "cpu.cfs_quota_us", "", 0644);
        lxc_driver_set_cgroup(fake, cg_base);
        struct dv_object *o = container("dvt-limit", "/sbin/init", "65536", "");
        struct dv_error err = DV_ERROR_INIT;
        int r = lxc_start(o->def.domain, &start_args, &err);
        lxc_driver_set_cgroup(NULL, cg_base);
        assert_int_equal(r, -EISDIR);
        assert_non_null(strstr(dv_error_message(&err), "cannot set memory limit 67108864 in"));
        assert_non_null(strstr(dv_error_message(&err), "Is a directory"));
        assert_int_equal(dv_error_line(&err), 3);
        dv_error_clear(&err);
        snprintf(p, sizeof(p), "%s/lxc/dvt-limit.pid", run_dir);
        assert_int_equal(access(p, F_OK), -1);
        _cleanup_free_ char *marker = data_file("marker");
        assert_null(marker);
        dv_object_free(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_lifecycle, test_teardown),
                cmocka_unit_test_teardown(test_force_stop, test_teardown),
                cmocka_unit_test_teardown(test_exit_status, test_teardown),
                cmocka_unit_test_teardown(test_stale_and_foreign, test_teardown),
                cmocka_unit_test_teardown(test_adoption, test_teardown),
                cmocka_unit_test_teardown(test_refusals, test_teardown),
                cmocka_unit_test_teardown(test_limit_refused, test_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
