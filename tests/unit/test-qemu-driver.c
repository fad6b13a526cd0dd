/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU driver's process life cycle with real QEMU (TCG, 32 MiB, no disks): start in
 * its own session, observe with the cached QMP status, the powerdown-timeout-quit path,
 * stale pidfiles, unmanaged QEMUs, kill -9, an unknown machine type, adoption from
 * another process, and taps on a bridge in a network namespace of the test's own.
 * Every process a test starts is killed by PID in the teardown, even on failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/domain/qemu-jail.h"
#include "drivers/domain/qemu.h"
#include "drivers/domain/qmp.h"
#include "drivers/network/bridge.h"
#include "model/domain.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"
#include "util/time.h"

#define QEMU_BIN "/usr/bin/qemu-system-x86_64"

static char *tmpdir, *run_dir, *state_dir;

/* ---- clean-up by PID ---------------------------------------------------------------------- */

/* Kills every process whose command line mentions our temporary directory (every QEMU
 * the tests start has its pidfile or socket there), or that a test registered. Each is
 * pinned by a pidfd before the check, so no reused PID is ever signalled. */
static pid_t extra_pids[16];
static size_t n_extra;

static void register_pid(pid_t pid) {
        if (n_extra < ELEMENTSOF(extra_pids))
                extra_pids[n_extra++] = pid;
}

static bool cmdline_mentions(pid_t pid, const char *needle) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(p, 1 << 20, &s, &len) < 0)
                return false;
        for (size_t i = 0; i < len; i += strlen(s + i) + 1)
                if (strstr(s + i, needle))
                        return true;
        return false;
}

static void kill_pinned(pid_t pid, bool check) {
        int fd = pidfd_open(pid, 0);
        if (fd < 0)
                return;
        if (!check || cmdline_mentions(pid, tmpdir))
                pidfd_send_signal(fd, SIGKILL, NULL, 0);
        close(fd);
        (void)waitpid(pid, NULL, 0); /* ECHILD for those that are not ours */
}

static int kill_all(void **state) {
        (void)state;
        for (size_t i = 0; i < n_extra; i++)
                kill_pinned(extra_pids[i], false);
        n_extra = 0;
        DIR *d = opendir("/proc");
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                char *end = NULL;
                long v = strtol(de->d_name, &end, 10);
                if (!end || *end || v <= 1 || v == getpid())
                        continue;
                if (cmdline_mentions((pid_t)v, tmpdir))
                        kill_pinned((pid_t)v, true);
        }
        closedir(d);
        return 0;
}

static int group_setup(void **state) {
        (void)state;
        tmpdir = test_mkdtemp("dv-qemu");
        assert_true(asprintf(&run_dir, "%s/run", tmpdir) > 0);
        assert_true(asprintf(&state_dir, "%s/state", tmpdir) > 0);
        qemu_driver_set_config(QEMU_BIN, "tcg", run_dir, state_dir);
        return 0;
}

static int group_teardown(void **state) {
        kill_all(state);
        test_rm_rf(tmpdir);
        free(tmpdir);
        free(run_dir);
        free(state_dir);
        return 0;
}

static void need_qemu(void) {
        if (access(QEMU_BIN, X_OK) < 0) {
                print_message("skipped: %s not installed\n", QEMU_BIN);
                skip();
        }
}

/* ---- definitions ---------------------------------------------------------------------- */

static struct domain_def *mk_dom(const char *tag) {
        struct domain_def *d = calloc(1, sizeof(*d));
        assert_non_null(d);
        d->type = DOMAIN_TYPE_QEMU;
        assert_true(asprintf(&d->name, "q2-%d-%s", (int)getpid(), tag) > 0);
        d->has_memory = true;
        d->memory_kib = 32 * 1024;
        d->has_os = true;
        d->os.type = DOMAIN_OS_HVM;
        return d;
}

static char *dom_path(const struct domain_def *d, const char *sub, const char *suffix) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s/%s%s", strcmp(sub, "qemu") == 0 ? run_dir : state_dir, sub,
                             d->name, suffix) > 0);
        return p;
}

static pid_t pidfile_pid(const struct domain_def *d) {
        _cleanup_free_ char *p = dom_path(d, "qemu", ".pid");
        uint64_t v = 0;
        return read_u64_file(p, 2, INT32_MAX, &v) < 0 ? 0 : (pid_t)v;
}

static bool exists(const char *p) {
        return access(p, F_OK) == 0;
}

/* Alive and not a zombie. */
static bool alive(pid_t pid) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(p, 4096, &s, &len) < 0)
                return false;
        const char *rp = strrchr(s, ')');
        return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void start_ok(const struct domain_def *d) {
        struct dv_error err = DV_ERROR_INIT;
        int r = qemu_start(d, NULL, NULL, NULL, &err);
        if (r < 0)
                fail_msg("qemu_start: %s", dv_error_message(&err));
        dv_error_clear(&err);
}

static void observe_ok(const struct domain_def *d, struct dom_status *s) {
        struct dv_error err = DV_ERROR_INIT;
        int r = qemu_observe(d, s, &err);
        if (r < 0)
                fail_msg("qemu_observe: %s", dv_error_message(&err));
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_accel_and_taps_names(void **state) {
        (void)state;
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("accel");
        assert_string_equal(qemu_accel_for(d), "tcg");
        d->type = DOMAIN_TYPE_KVM;
        qemu_driver_set_config(QEMU_BIN, "kvm", run_dir, state_dir);
        assert_string_equal(qemu_accel_for(d), "kvm");
        qemu_driver_set_config(QEMU_BIN, "auto", run_dir, state_dir);
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        assert_string_equal(qemu_accel_for(d), fd >= 0 ? "kvm" : "tcg");
        if (fd >= 0)
                close(fd);
        qemu_driver_set_config(QEMU_BIN, "tcg", run_dir, state_dir);
        assert_string_equal(qemu_accel_for(d), "tcg");

        char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];
        assert_int_equal(qemu_tap_name("web1", 0, a), 0);
        assert_int_equal(qemu_tap_name("web1", 0, b), 0);
        assert_int_equal(qemu_tap_name("web1", 1, c), 0);
        assert_string_equal(a, b);
        assert_string_not_equal(a, c);
        assert_int_equal(strlen(a), 11);
        assert_memory_equal(a, "dvt", 3);
        assert_int_equal(qemu_tap_name("../x", 0, a), -EINVAL);
}

static void test_start_observe_stop(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("life");
        _cleanup_free_ char *pidfile = dom_path(d, "qemu", ".pid");
        _cleanup_free_ char *sock = dom_path(d, "qemu", ".qmp");
        _cleanup_free_ char *log = dom_path(d, "domains", ".qemu.log");

        start_ok(d);
        pid_t pid = pidfile_pid(d);
        assert_true(pid > 0);
        assert_true(exists(sock));
        assert_true(exists(log));
        /* Its own session: it survives the agent and its terminal. */
        assert_int_equal(getsid(pid), pid);
        assert_int_not_equal(getsid(pid), getsid(0));

        struct dom_status s = {0};
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_RUNNING);
        assert_int_equal(s.pid, pid);
        assert_non_null(s.qmp_status);
        assert_string_equal(s.qmp_status, "running");
        assert_false(s.exited);
        /* qemu_start runs it as the agent's user, root: as a QEMU from before an upgrade. */
        assert_true(s.unconfined);
        dom_status_done(&s);

        /* Within a second the status comes from the cache: no QMP round trip. */
        uint64_t sent = qmp_commands_sent();
        for (int i = 0; i < 5; i++) {
                observe_ok(d, &s);
                assert_int_equal(s.state, DOM_RUNNING);
                dom_status_done(&s);
        }
        assert_int_equal(qmp_commands_sent(), sent);
        usleep(1100 * 1000);
        observe_ok(d, &s);
        assert_string_equal(s.qmp_status, "running");
        dom_status_done(&s);
        assert_true(qmp_commands_sent() > sent);

        /* Starting again is a no-op. */
        start_ok(d);
        assert_int_equal(pidfile_pid(d), pid);

        /* No ACPI, no firmware boot: the guest ignores system_powerdown, so the stop
         * goes the timeout -> quit path. */
        struct dv_error err = DV_ERROR_INIT;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(qemu_stop(d, USEC_PER_SEC, &err), 0);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        print_message("# stop took %.3f s\n", (double)took / 1e6);
        assert_true(took >= USEC_PER_SEC);
        assert_true(took < 4 * USEC_PER_SEC);
        assert_false(alive(pid));
        assert_int_equal(kill(pid, 0), -1); /* reaped: no zombie left */
        assert_false(exists(pidfile));
        assert_false(exists(sock));

        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_false(s.exited); /* we stopped it: not an exit the restart policy sees */
        dom_status_done(&s);
        /* Stopping what is not running. */
        assert_int_equal(qemu_stop(d, USEC_PER_SEC, &err), 0);
}

/* The value of "Key:" in /proc/PID/status, fields joined by one space. */
static char *proc_status_field(pid_t pid, const char *key) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        assert_int_equal(read_full_file(path, 65536, &text, &len), 0);
        size_t kl = strlen(key);
        for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, kl) != 0 || l[kl] != ':')
                        continue;
                struct buf b = BUF_INIT;
                const char *v = l + kl + 1;
                while (*v == '\t' || *v == ' ')
                        v++;
                for (; *v && *v != '\n'; v++)
                        buf_putc(&b, *v == '\t' ? ' ' : *v);
                buf_puts(&b, "");
                return buf_steal(&b);
        }
        return strdup("");
}

/* qemu_start_as: QEMU runs as the uid given, with nothing of root, and still serves QMP on
 * the socket the agent bound, writes its console log and is stopped as before. */
static void test_own_user(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("ownuser");
        _cleanup_free_ char *pidfile = dom_path(d, "qemu", ".pid");
        struct dv_error err = DV_ERROR_INIT;
        if (qemu_start_as(d, NULL, 3999950, NULL, NULL, NULL, &err) < 0)
                fail_msg("qemu_start_as: %s", dv_error_message(&err));
        pid_t pid = pidfile_pid(d);
        assert_true(pid > 0);
        const char *want[][2] = {{"Uid", "3999950 3999950 3999950 3999950"},
                                 {"Gid", "3999950 3999950 3999950 3999950"},
                                 {"Groups", ""},
                                 {"CapEff", "0000000000000000"},
                                 {"CapPrm", "0000000000000000"},
                                 {"CapBnd", "0000000000000000"},
                                 {"NoNewPrivs", "1"}};
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                _cleanup_free_ char *v = proc_status_field(pid, want[i][0]);
                if (!streq(v, want[i][1]))
                        fail_msg("%s of QEMU is '%s', not '%s'", want[i][0], v, want[i][1]);
        }
        struct dom_status s = {0};
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_RUNNING);
        assert_string_equal(s.qmp_status, "running");
        assert_false(s.unconfined);
        dom_status_done(&s);
        assert_int_equal(qemu_stop(d, USEC_PER_SEC, &err), 0);
        assert_false(alive(pid));
        assert_false(exists(pidfile));
}

/* qemu_jail_build: the jail holds the four device nodes (and /dev/kvm only for KVM), the
 * binary, the directories of its libraries (the loader's list, which has libc), the
 * loader's cache and no other file of /etc, the module and firmware directories, the
 * kernel and initrd the domain names, and the writable directories read-write. */
static void test_jail_contents(void **state) {
        (void)state;
        need_qemu();
        _cleanup_strv_free_ char **libs = NULL;
        struct dv_error err = DV_ERROR_INIT;
        if (qemu_jail_libraries(QEMU_BIN, &libs, &err) < 0)
                fail_msg("qemu_jail_libraries: %s", dv_error_message(&err));
        assert_non_null(libs);
        assert_true(libs[0][0] == '/' && strstr(libs[0], "ld-linux")); /* the loader first */
        bool libc = false;
        for (size_t k = 0; libs[k]; k++)
                libc |= strstr(libs[k], "/libc.so.") != NULL;
        assert_true(libc);

        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("jail");
        d->os.kernel = strdup("/bin/sh"); /* any file: only bound, never run */
        assert_non_null(d->os.kernel);
        char *const writable[] = {(char *)run_dir, NULL};
        struct qemu_jail_opts o = {
                .binary = QEMU_BIN, .mountpoint = "/nonexistent", .writable = writable};
        _cleanup_(cmd_jail_done) struct cmd_jail j = {0};
        if (qemu_jail_build(d, &o, &j, &err) < 0)
                fail_msg("qemu_jail_build: %s", dv_error_message(&err));
        assert_string_equal(j.mountpoint, "/nonexistent");
        bool binary = false, kernel = false, rw = false, firmware = false;
        size_t devices = 0;
        for (size_t k = 0; k < j.n; k++) {
                const struct cmd_jail_entry *e = &j.entries[k];
                if (e->kind == CMD_JAIL_MKDIR)
                        continue;
                assert_true(e->src[0] == '/' && streq(e->src + 1, e->dst));
                if (strncmp(e->dst, "etc/", 4) == 0)
                        assert_string_equal(e->dst, "etc/ld.so.cache");
                assert_true(strncmp(e->dst, "proc", 4) != 0 && strncmp(e->dst, "sys", 3) != 0);
                assert_string_not_equal(e->dst, "dev/kvm");
                devices += e->device;
                binary |= streq(e->src, QEMU_BIN);
                kernel |= streq(e->src, "/bin/sh");
                firmware |= streq(e->src, "/usr/share/qemu");
                if (streq(e->src, run_dir))
                        rw = e->writable && e->kind == CMD_JAIL_DIR;
                else if (!e->device)
                        assert_false(e->writable);
        }
        assert_int_equal(devices, 4);
        assert_true(binary && kernel && rw);
        if (access("/usr/share/qemu", F_OK) == 0)
                assert_true(firmware);
        /* A file the domain names that is not there: an error naming it. */
        free(d->os.kernel);
        d->os.kernel = strdup("/nonexistent/vmlinuz");
        cmd_jail_done(&j);
        assert_true(qemu_jail_build(d, &o, &j, &err) < 0);
        assert_non_null(strstr(dv_error_message(&err), "/nonexistent/vmlinuz"));
        dv_error_clear(&err);
}

/* A <kernel> QEMU's uid cannot read (a 0700 directory of root's above it) is refused
 * before anything starts, naming the file, the directory that keeps it out and the uid;
 * readable, the check passes (QEMU then fails on the fake kernel, which is its own
 * business). */
static void test_unreadable_kernel(void **state) {
        (void)state;
        need_qemu();
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-kernel");
        _cleanup_free_ char *sub = path_join(dir, "private");
        _cleanup_free_ char *kernel = path_join(sub, "vmlinuz");
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(chmod(dir, 0755), 0);
        assert_int_equal(write_file_atomic(kernel, "x", 1, 0644), 0);
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("kernel");
        d->os.kernel = strdup(kernel);
        assert_non_null(d->os.kernel);
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(qemu_start_as(d, NULL, 3999951, NULL, NULL, NULL, &err), -EBUSY);
        const char *m = dv_error_message(&err);
        assert_non_null(strstr(m, kernel));
        assert_non_null(strstr(m, "uid 3999951"));
        assert_non_null(strstr(m, sub));
        assert_non_null(strstr(m, "mode 0700"));
        assert_int_equal(pidfile_pid(d), 0);
        dv_error_clear(&err);
        struct dv_error e2 = DV_ERROR_INIT;
        assert_int_equal(qemu_jail_check_readable(d, 3999951, 3999951, &e2), -EBUSY);
        dv_error_clear(&e2);
        assert_int_equal(chmod(sub, 0711), 0);
        assert_int_equal(qemu_jail_check_readable(d, 3999951, 3999951, &e2), 0);
        assert_int_equal(chmod(kernel, 0640), 0); /* owner root, group root: others out */
        assert_int_equal(qemu_jail_check_readable(d, 3999951, 3999951, &e2), -EBUSY);
        dv_error_clear(&e2);
        assert_int_equal(chown(kernel, 3999951, 0), 0);
        assert_int_equal(chmod(kernel, 0400), 0); /* its own */
        assert_int_equal(qemu_jail_check_readable(d, 3999951, 3999951, &e2), 0);
        test_rm_rf(dir);
}

/* A socket file that nobody listens on. */
static void make_dead_socket(const char *path) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        assert_true(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
}

static void write_pid(const char *path, pid_t pid) {
        char s[32];
        int n = snprintf(s, sizeof(s), "%d\n", (int)pid);
        assert_int_equal(mkdir_p(run_dir, 0755), 0);
        _cleanup_free_ char *dir = path_dirname(path);
        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(write_file_atomic(path, s, (size_t)n, 0644), 0);
}

static void test_stale_pidfile(void **state) {
        (void)state;
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("stale");
        _cleanup_free_ char *pidfile = dom_path(d, "qemu", ".pid");
        _cleanup_free_ char *sock = dom_path(d, "qemu", ".qmp");
        struct dv_error err = DV_ERROR_INIT;

        /* The PID of a process that is gone. */
        char *t[] = {"/bin/true", NULL};
        pid_t dead = 0;
        assert_true(cmd_spawn_detached(t, NULL, NULL, &dead, &err) > 0);
        assert_int_equal(waitpid(dead, NULL, 0), dead);
        write_pid(pidfile, dead);
        make_dead_socket(sock);

        struct dom_status s = {0};
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_true(s.exited);
        assert_non_null(s.exit_reason);
        assert_non_null(s.reason);
        assert_non_null(strstr(s.reason, "stale pidfile"));
        assert_false(exists(pidfile));
        assert_false(exists(sock));
        dom_status_done(&s);
        observe_ok(d, &s); /* reported once */
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_false(s.exited);
        dom_status_done(&s);

        /* The PID of an unrelated live process: cleaned, never signalled. */
        char *sl[] = {"/bin/sleep", "60", NULL};
        pid_t other = 0;
        assert_true(cmd_spawn_detached(sl, NULL, NULL, &other, &err) > 0);
        register_pid(other);
        write_pid(pidfile, other);
        make_dead_socket(sock);
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_true(s.exited);
        assert_non_null(strstr(s.exit_reason, "another process"));
        assert_false(exists(pidfile));
        assert_false(exists(sock));
        dom_status_done(&s);
        assert_true(alive(other));

        /* Nor by stop. */
        write_pid(pidfile, other);
        assert_int_equal(qemu_stop(d, USEC_PER_SEC, &err), 0);
        assert_true(alive(other));
        assert_false(exists(pidfile));

        /* Nor by start, which runs our QEMU instead. */
        if (access(QEMU_BIN, X_OK) == 0) {
                write_pid(pidfile, other);
                start_ok(d);
                assert_true(alive(other));
                pid_t pid = pidfile_pid(d);
                assert_true(pid > 0 && pid != other);
                assert_int_equal(qemu_stop(d, 0, &err), 0);
                assert_false(alive(pid));
        }
        assert_true(alive(other));
}

static void test_foreign_qemu(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("foreign");
        _cleanup_free_ char *name = NULL, *qmp = NULL, *sock = NULL;
        assert_true(asprintf(&name, "guest=%s", d->name) > 0);
        assert_true(asprintf(&sock, "%s/hand.qmp", tmpdir) > 0);
        assert_true(asprintf(&qmp, "unix:%s,server=on,wait=off", sock) > 0);
        char *argv[] = {QEMU_BIN,      "-name",    name,   "-machine", "pc,accel=tcg", "-m", "32",
                        "-nodefaults", "-display", "none", "-S",       "-qmp",         qmp,  NULL};
        struct dv_error err = DV_ERROR_INIT;
        pid_t pid = 0;
        assert_true(cmd_spawn_detached(argv, NULL, NULL, &pid, &err) > 0);
        register_pid(pid);

        /* The process table is looked at at most once a second. */
        struct dom_status s = {0};
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
        for (;;) {
                observe_ok(d, &s);
                if (s.state == DOM_BROKEN || now_usec(CLOCK_MONOTONIC) > deadline)
                        break;
                dom_status_done(&s);
                usleep(50 * 1000);
        }
        assert_int_equal(s.state, DOM_BROKEN);
        char want[128];
        snprintf(want, sizeof(want),
                 "a QEMU process (PID %d) not started by declvirt runs domain %s", (int)pid,
                 d->name);
        assert_string_equal(s.reason, want);
        dom_status_done(&s);

        assert_int_equal(qemu_start(d, NULL, NULL, NULL, &err), -EEXIST);
        assert_non_null(strstr(dv_error_message(&err), "not started by declvirt"));
        dv_error_clear(&err);
        assert_true(alive(pid));
        assert_int_equal(qemu_stop(d, USEC_PER_SEC, &err), 0);
        assert_true(alive(pid));
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_BROKEN);
        dom_status_done(&s);
        assert_true(alive(pid));
        assert_true(exists(sock));
}

static void test_kill9(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("kill");
        _cleanup_free_ char *pidfile = dom_path(d, "qemu", ".pid");
        _cleanup_free_ char *sock = dom_path(d, "qemu", ".qmp");
        start_ok(d);
        pid_t pid = pidfile_pid(d);
        struct dom_status s = {0};
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_RUNNING);
        dom_status_done(&s);

        assert_int_equal(kill(pid, SIGKILL), 0);
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
        for (;;) {
                observe_ok(d, &s);
                if (s.state != DOM_RUNNING || now_usec(CLOCK_MONOTONIC) > deadline)
                        break;
                dom_status_done(&s);
                usleep(10 * 1000);
        }
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_true(s.exited);
        assert_false(s.exit_clean);
        assert_string_equal(s.exit_reason, "killed by signal 9");
        dom_status_done(&s);
        assert_int_equal(kill(pid, 0), -1); /* reaped */
        assert_false(exists(pidfile));
        assert_false(exists(sock));
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_false(s.exited);
        dom_status_done(&s);
}

/* A QEMU that exits with status 0 (here a QMP quit from outside; a guest power-off is
 * the same to the driver) is a clean exit, and says so on every observe while the
 * domain stays down: the engine decides restart='on-failure' on a later pass. */
static void test_clean_exit(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("clean");
        _cleanup_free_ char *sock = dom_path(d, "qemu", ".qmp");
        struct dv_error err = DV_ERROR_INIT;
        start_ok(d);
        pid_t pid = pidfile_pid(d);
        assert_true(pid > 0);

        struct qmp *q = NULL;
        if (qmp_connect(sock, 5 * USEC_PER_SEC, &q, &err) < 0)
                fail_msg("qmp_connect: %s", dv_error_message(&err));
        (void)qmp_execute(q, "quit", NULL, 5 * USEC_PER_SEC, NULL, &err); /* may see EOF */
        qmp_close(q);
        dv_error_clear(&err);

        struct dom_status s = {0};
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
        for (;;) {
                observe_ok(d, &s);
                if (s.state != DOM_RUNNING || now_usec(CLOCK_MONOTONIC) > deadline)
                        break;
                dom_status_done(&s);
                usleep(10 * 1000);
        }
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_true(s.exited);
        assert_true(s.exit_clean);
        assert_string_equal(s.exit_reason, "guest shut down");
        dom_status_done(&s);

        observe_ok(d, &s); /* exited is reported once; exit_clean stays */
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_false(s.exited);
        assert_true(s.exit_clean);
        dom_status_done(&s);

        start_ok(d); /* a start ends it */
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_RUNNING);
        assert_false(s.exit_clean);
        dom_status_done(&s);
        assert_int_equal(qemu_stop(d, 0, &err), 0);
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_false(s.exited);
        assert_false(s.exit_clean);
        dom_status_done(&s);
}

/* QMP stop and cont on the command monitor reach the events fd at once, and the next
 * observe reports them without waiting for the status cache to expire. */
static bool events_wait(int fd, int ms) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        return poll(&pf, 1, ms) > 0 && qemu_events_dispatch() > 0;
}

static void qmp_command(const char *sock, const char *cmd) {
        struct dv_error err = DV_ERROR_INIT;
        struct qmp *q = NULL;
        if (qmp_connect(sock, 5 * USEC_PER_SEC, &q, &err) < 0 ||
            qmp_execute(q, cmd, NULL, 5 * USEC_PER_SEC, NULL, &err) < 0)
                fail_msg("QMP %s: %s", cmd, dv_error_message(&err));
        qmp_close(q);
        dv_error_clear(&err);
}

static void test_events(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("events");
        _cleanup_free_ char *sock = dom_path(d, "qemu", ".qmp");
        _cleanup_free_ char *events = dom_path(d, "qemu", ".events");
        int fd = qemu_events_fd();
        assert_true(fd >= 0);
        start_ok(d);
        assert_true(exists(events));

        struct dom_status s = {0};
        observe_ok(d, &s); /* connects the events monitor */
        assert_int_equal(s.state, DOM_RUNNING);
        dom_status_done(&s);
        while (events_wait(fd, 0)) /* nothing left from the start */
                ;

        qmp_command(sock, "stop");
        assert_true(events_wait(fd, 2000));
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_PAUSED);
        assert_string_equal(s.qmp_status, "paused");
        dom_status_done(&s);

        qmp_command(sock, "cont");
        assert_true(events_wait(fd, 2000));
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_RUNNING);
        assert_string_equal(s.qmp_status, "running");
        dom_status_done(&s);

        /* QEMU quits: the closed monitor is news too. */
        qmp_command(sock, "quit");
        assert_true(events_wait(fd, 5000));
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
        for (;;) {
                observe_ok(d, &s);
                if (s.state == DOM_SHUTOFF || now_usec(CLOCK_MONOTONIC) > deadline)
                        break;
                dom_status_done(&s);
                usleep(10 * 1000);
        }
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_true(s.exited);
        dom_status_done(&s);
        assert_false(exists(events));
}

static bool any_qemu_named(const char *name) {
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "guest=%s", name) > 0);
        DIR *dir = opendir("/proc");
        assert_non_null(dir);
        bool found = false;
        struct dirent *de;
        while ((de = readdir(dir))) {
                char *end = NULL;
                long v = strtol(de->d_name, &end, 10);
                if (end && !*end && v > 1 && alive((pid_t)v) && cmdline_mentions((pid_t)v, want))
                        found = true;
        }
        closedir(dir);
        return found;
}

static void test_unknown_machine(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("machine");
        d->os.machine = strdup("no-such-machine");
        _cleanup_free_ char *pidfile = dom_path(d, "qemu", ".pid");
        _cleanup_free_ char *sock = dom_path(d, "qemu", ".qmp");
        struct dv_error err = DV_ERROR_INIT;
        assert_true(qemu_start(d, NULL, NULL, NULL, &err) < 0);
        print_message("# %s\n", dv_error_message(&err));
        assert_non_null(strstr(dv_error_message(&err), "unsupported machine type"));
        assert_non_null(err.argv);
        dv_error_clear(&err);
        assert_false(exists(pidfile));
        assert_false(exists(sock));
        assert_false(any_qemu_named(d->name));
        struct dom_status s = {0};
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        assert_false(s.exited);
        dom_status_done(&s);
}

/* More memory than the host has: refused before anything is spawned or created, with
 * both sizes in the message, and the domain stays shut off. */
static void test_memory_too_large(void **state) {
        (void)state;
        _cleanup_free_ char *meminfo = NULL;
        size_t len = 0;
        assert_int_equal(read_full_file("/proc/meminfo", 1 << 16, &meminfo, &len), 0);
        unsigned long long total = 0;
        assert_int_equal(sscanf(meminfo, "MemTotal: %llu kB", &total), 1);
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("mem");
        d->memory_kib = total + 1024 * 1024;
        d->memory_line = 7;
        _cleanup_free_ char *pidfile = dom_path(d, "qemu", ".pid");
        _cleanup_free_ char *qemu_log = dom_path(d, "domains", ".qemu.log");
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(qemu_start(d, NULL, NULL, NULL, &err), -EBUSY);
        const char *m = dv_error_message(&err);
        print_message("# %s\n", m);
        char want[64], have[64];
        snprintf(want, sizeof(want), "(%llu KiB)", (unsigned long long)d->memory_kib);
        snprintf(have, sizeof(have), "(MemTotal %llu KiB in /proc/meminfo)", total);
        assert_non_null(strstr(m, "<memory> of domain q2-"));
        assert_non_null(strstr(m, want));
        assert_non_null(strstr(m, have));
        assert_non_null(strstr(m, "QEMU not started"));
        assert_int_equal(err.problems[0].line, 7);
        dv_error_clear(&err);
        assert_false(exists(pidfile));
        assert_false(exists(qemu_log));
        assert_false(any_qemu_named(d->name));
        struct dom_status s = {0};
        observe_ok(d, &s);
        assert_int_equal(s.state, DOM_SHUTOFF);
        dom_status_done(&s);

        /* Exactly what the host has is not refused (QEMU maps guest memory lazily; a host
         * that does not overcommit may still make QEMU fail, but not with this refusal). */
        need_qemu();
        d->memory_kib = total;
        struct dv_error err2 = DV_ERROR_INIT;
        int r = qemu_start(d, NULL, NULL, NULL, &err2);
        if (r < 0)
                assert_null(strstr(dv_error_message(&err2), "more than this host has"));
        dv_error_clear(&err2);
        assert_int_equal(qemu_stop(d, USEC_PER_SEC, &err2), 0);
        dv_error_clear(&err2);
}

/* Another process starts the domain and exits (an agent restart): this one finds the
 * QEMU, reports it running without restarting it, stops it, and sees a kill of an
 * adopted QEMU as an exit. */
static void test_adoption(void **state) {
        (void)state;
        need_qemu();
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("adopt");
        for (int round = 0; round < 2; round++) {
                pid_t agent = fork();
                assert_true(agent >= 0);
                if (agent == 0) {
                        struct dv_error err = DV_ERROR_INIT;
                        _exit(qemu_start(d, NULL, NULL, NULL, &err) < 0 ? 1 : 0);
                }
                int status = 0;
                assert_int_equal(waitpid(agent, &status, 0), agent);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                pid_t pid = pidfile_pid(d);
                assert_true(pid > 0 && alive(pid));
                register_pid(pid);

                struct dom_status s = {0};
                observe_ok(d, &s);
                assert_int_equal(s.state, DOM_RUNNING);
                assert_int_equal(s.pid, pid);
                assert_string_equal(s.qmp_status, "running");
                dom_status_done(&s);
                start_ok(d);
                assert_int_equal(pidfile_pid(d), pid);

                if (round == 0) {
                        struct dv_error err = DV_ERROR_INIT;
                        assert_int_equal(qemu_stop(d, 200 * USEC_PER_MSEC, &err), 0);
                        assert_false(alive(pid));
                        continue;
                }
                /* Not our child: the exit status is unknown, the exit is still seen. */
                int fd = pidfd_open(pid, 0);
                assert_true(fd >= 0);
                assert_int_equal(pidfd_send_signal(fd, SIGKILL, NULL, 0), 0);
                close(fd);
                uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
                for (;;) {
                        observe_ok(d, &s);
                        if (s.state != DOM_RUNNING || now_usec(CLOCK_MONOTONIC) > deadline)
                                break;
                        dom_status_done(&s);
                        usleep(10 * 1000);
                }
                assert_int_equal(s.state, DOM_SHUTOFF);
                assert_true(s.exited);
                assert_false(s.exit_clean);
                assert_non_null(s.exit_reason);
                dom_status_done(&s);
        }
}

/* ---- taps in a network namespace ---------------------------------------------------- */

#define CHECK(c)                                                                         \
        do {                                                                             \
                if (!(c)) {                                                              \
                        fprintf(stderr, "# child: %s:%d: %s\n", __FILE__, __LINE__, #c); \
                        goto out;                                                        \
                }                                                                        \
        } while (0)

static int taps_child(struct domain_def *d) {
        struct dv_error err = DV_ERROR_INIT;
        int rc = 1;
        char tap0[IFNAMSIZ], tap1[IFNAMSIZ];
        struct nl_link br = {0}, l = {0};
        pid_t pid = 0;
        CHECK(unshare(CLONE_NEWNET) == 0);
        CHECK(nl_bridge_create("dvq2br0", &err) == 0);
        CHECK(nl_bridge_create("dvq2br1", &err) == 0);
        CHECK(nl_link_set("dvq2br0", NULL, 0, 1, &err) == 0);
        CHECK(nl_link_get("dvq2br0", &br, &err) == 0);
        CHECK(qemu_tap_name(d->name, 0, tap0) == 0);
        CHECK(qemu_tap_name(d->name, 1, tap1) == 0);

        char *macs[] = {"52:54:00:00:00:01", "52:54:00:00:00:02", NULL};
        char *bridges[] = {NULL, "dvq2br1", NULL}; /* 0: its <source bridge=> */
        int r = qemu_start(d, NULL, macs, bridges, &err);
        if (r < 0)
                fprintf(stderr, "# child: qemu_start: %s\n", dv_error_message(&err));
        CHECK(r == 0);
        pid = pidfile_pid(d);
        CHECK(pid > 0);
        CHECK(nl_link_get(tap0, &l, &err) == 0);
        CHECK(l.master == br.ifindex);
        CHECK(l.up);
        CHECK(nl_link_get("dvq2br1", &br, &err) == 0);
        CHECK(nl_link_get(tap1, &l, &err) == 0);
        CHECK(l.master == br.ifindex);
        struct dom_status s = {0};
        CHECK(qemu_observe(d, &s, &err) == 0);
        CHECK(s.state == DOM_RUNNING);
        dom_status_done(&s);
        CHECK(qemu_stop(d, 200 * USEC_PER_MSEC, &err) == 0);
        CHECK(nl_link_get(tap0, &l, &err) == -ENODEV);
        CHECK(nl_link_get(tap1, &l, &err) == -ENODEV);
        dv_error_clear(&err);

        /* A missing bridge: no QEMU, no tap left. */
        char *nobr[] = {"dvq2-missing", "dvq2br1", NULL};
        CHECK(qemu_start(d, NULL, macs, nobr, &err) == -ENODEV);
        CHECK(strstr(dv_error_message(&err), "dvq2-missing") != NULL);
        CHECK(pidfile_pid(d) == 0);
        CHECK(nl_link_get(tap0, &l, &err) == -ENODEV);
        CHECK(nl_link_get(tap1, &l, &err) == -ENODEV);
        rc = 0;
out:
        if (rc != 0 && dv_error_message(&err))
                fprintf(stderr, "# child: last error: %s\n", dv_error_message(&err));
        pid = pidfile_pid(d);
        if (pid > 0)
                kill(pid, SIGKILL);
        return rc;
}

static void test_taps(void **state) {
        (void)state;
        need_qemu();
        if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) < 0) {
                print_message("skipped: needs root and /dev/net/tun\n");
                skip();
        }
        _cleanup_(domain_def_freep) struct domain_def *d = mk_dom("taps");
        d->interfaces = calloc(2, sizeof(*d->interfaces));
        assert_non_null(d->interfaces);
        d->n_interfaces = 2;
        d->interfaces[0].type = DOMAIN_NET_BRIDGE;
        d->interfaces[0].source_bridge = strdup("dvq2br0");
        d->interfaces[0].model = strdup("virtio");
        d->interfaces[1].type = DOMAIN_NET_NETWORK;
        d->interfaces[1].source_network = strdup("default");
        d->interfaces[1].model = strdup("e1000");

        fflush(NULL);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0)
                _exit(taps_child(d));
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        /* Whatever happened in the child, its QEMU (and with it the namespace) goes. */
        pid_t pid = pidfile_pid(d);
        if (pid > 0)
                kill_pinned(pid, true);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_accel_and_taps_names, kill_all),
                cmocka_unit_test_teardown(test_start_observe_stop, kill_all),
                cmocka_unit_test_teardown(test_own_user, kill_all),
                cmocka_unit_test(test_jail_contents),
                cmocka_unit_test_teardown(test_unreadable_kernel, kill_all),
                cmocka_unit_test_teardown(test_stale_pidfile, kill_all),
                cmocka_unit_test_teardown(test_foreign_qemu, kill_all),
                cmocka_unit_test_teardown(test_kill9, kill_all),
                cmocka_unit_test_teardown(test_clean_exit, kill_all),
                cmocka_unit_test_teardown(test_events, kill_all),
                cmocka_unit_test_teardown(test_unknown_machine, kill_all),
                cmocka_unit_test_teardown(test_memory_too_large, kill_all),
                cmocka_unit_test_teardown(test_adoption, kill_all),
                cmocka_unit_test_teardown(test_taps, kill_all),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
