/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dnsmasq for networks: the configuration against the golden files in tests/data/network
 * (DECLVIRT_UPDATE_GOLDEN=1 rewrites them; each is also checked by `dnsmasq --test`), the
 * lease file parser on recorded lease files, and, as root inside a network namespace of
 * the test's own, a real dnsmasq on a bridge: start, status, changed conf, restart, stop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/domain/proc.h"
#include "drivers/network/dnsmasq.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DIR    "tests/data/network"
#define BRIDGE "dvtest0"

static struct dv_object *load(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.xml", DIR, name);
        return test_load_object(path, DV_KIND_NETWORK);
}

static struct dv_object *parse_inline(const char *xml) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse(xml, strlen(xml), "inline.xml", &o, &err) < 0) {
                dv_error_print(stderr, &err);
                fail_msg("inline network refused");
        }
        dv_error_clear(&err);
        return o;
}

/* ---- pure ------------------------------------------------------------------------------ */

static void test_needed(void **state) {
        (void)state;
        static const struct {
                const char *name;
                bool needed;
        } cases[] = {
                {"nat", true},  {"nat-addr", true}, {"route", true},        {"isolated", true},
                {"open", true}, {"dns", true},      {"dns-disabled", true}, {"bridge", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct dv_object *o = load(cases[i].name);
                if (dnsmasq_needed(o->def.network) != cases[i].needed)
                        fail_msg("%s: dnsmasq_needed should be %d", cases[i].name, cases[i].needed);
                dv_object_free(o);
        }
        /* DNS off, no DHCP, IPv4 only: nothing for dnsmasq to do. */
        struct dv_object *o = parse_inline("<network><name>quiet</name><dns enable='no'/>"
                                           "<ip address='192.0.2.1' prefix='24'/></network>");
        assert_false(dnsmasq_needed(o->def.network));
        dv_object_free(o);
        /* No address at all. */
        o = parse_inline("<network><name>bare</name></network>");
        assert_false(dnsmasq_needed(o->def.network));
        dv_object_free(o);
}

static void test_golden(void **state) {
        (void)state;
        static const char *const names[] = {"nat",  "nat-addr", "route",       "isolated",
                                            "open", "dns",      "dns-disabled"};
        bool have = test_have_program("dnsmasq") || access("/usr/sbin/dnsmasq", X_OK) == 0;
        if (!have)
                print_message("dnsmasq is not installed: golden files not syntax-checked\n");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                struct dv_object *o = load(names[i]);
                const struct network_def *def = o->def.network;
                char path[256], leases[256], pid[256];
                snprintf(path, sizeof(path), "%s/dnsmasq-%s.conf", DIR, names[i]);
                snprintf(leases, sizeof(leases), "/var/lib/declvirt/state/networks/%s.leases",
                         def->name);
                snprintf(pid, sizeof(pid), "/run/declvirt/dnsmasq/%s.pid", def->name);
                _cleanup_free_ char *text = NULL;
                assert_int_equal(dnsmasq_conf(def, def->bridge.name, leases, pid, "dnsmasq",
                                              "nogroup", &text),
                                 0);
                test_check_golden_text(path, text);
                assert_non_null(strstr(text, "no-hosts\n"));
                assert_non_null(strstr(text, "except-interface=lo\n"));
                if (have) {
                        char arg[300];
                        snprintf(arg, sizeof(arg), "--conf-file=%s", path);
                        struct dv_error err = DV_ERROR_INIT;
                        if (cmd_run((char *const[]){"dnsmasq", "--test", arg, NULL}, NULL, NULL,
                                    &err) < 0)
                                fail_msg("%s: %s", path, dv_error_message(&err));
                        dv_error_clear(&err);
                }
                dv_object_free(o);
        }
}

static void test_conf_refusals(void **state) {
        (void)state;
        struct dv_object *o = load("nat");
        const struct network_def *def = o->def.network;
        char *text = NULL;
        assert_int_equal(dnsmasq_conf(def, "dv-nat1", "/x/l\nport=53", "/x/p", NULL, NULL, &text),
                         -EINVAL);
        assert_int_equal(dnsmasq_conf(def, "dv-nat1", "/x/l", "relative.pid", NULL, NULL, &text),
                         -EINVAL);
        assert_int_equal(dnsmasq_conf(def, "bad bridge", "/x/l", "/x/p", NULL, NULL, &text),
                         -EINVAL);
        /* A user or group name that would end the line or carry an option. */
        assert_int_equal(
                dnsmasq_conf(def, "dv-nat1", "/x/l", "/x/p", "dnsmasq\nport=53", NULL, &text),
                -EINVAL);
        assert_int_equal(dnsmasq_conf(def, "dv-nat1", "/x/l", "/x/p", "dnsmasq", "a b", &text),
                         -EINVAL);
        assert_int_equal(dnsmasq_conf(def, "dv-nat1", "/x/l", "/x/p", "", NULL, &text), -EINVAL);
        assert_null(text);
        dv_object_free(o);
}

/* The user and group lines, and only they, follow the arguments: NULL writes no line and
 * leaves dnsmasq its compiled-in user. */
static void test_conf_user(void **state) {
        (void)state;
        struct dv_object *o = load("nat");
        const struct network_def *def = o->def.network;
        _cleanup_free_ char *both = NULL, *user = NULL, *none = NULL, *golden = NULL;
        size_t len = 0;
        assert_int_equal(read_full_file(DIR "/dnsmasq-nat.conf", 1u << 20, &golden, &len), 0);
        assert_int_equal(
                dnsmasq_conf(def, def->bridge.name, "/var/lib/declvirt/state/networks/nat1.leases",
                             "/run/declvirt/dnsmasq/nat1.pid", "dnsmasq", "nogroup", &both),
                0);
        assert_string_equal(both, golden);
        assert_int_equal(dnsmasq_conf(def, def->bridge.name,
                                      "/var/lib/declvirt/state/networks/nat1.leases",
                                      "/run/declvirt/dnsmasq/nat1.pid", "dnsmasq", NULL, &user),
                         0);
        assert_int_equal(dnsmasq_conf(def, def->bridge.name,
                                      "/var/lib/declvirt/state/networks/nat1.leases",
                                      "/run/declvirt/dnsmasq/nat1.pid", NULL, NULL, &none),
                         0);
        char *g = strstr(both, "group=nogroup\n");
        assert_non_null(g);
        assert_int_equal(strlen(user), strlen(both) - strlen("group=nogroup\n"));
        assert_memory_equal(user, both, (size_t)(g - both));
        assert_string_equal(user + (g - both), g + strlen("group=nogroup\n"));
        char *u = strstr(user, "user=dnsmasq\n");
        assert_non_null(u);
        assert_int_equal(strlen(none), strlen(user) - strlen("user=dnsmasq\n"));
        assert_memory_equal(none, user, (size_t)(u - user));
        assert_string_equal(none + (u - user), u + strlen("user=dnsmasq\n"));
        assert_null(strstr(none, "user="));
        assert_null(strstr(none, "group="));
        dv_object_free(o);
}

static void test_argv_paths(void **state) {
        (void)state;
        _cleanup_strv_free_ char **argv = dnsmasq_argv("/run/declvirt/dnsmasq/n.conf");
        assert_non_null(argv);
        assert_int_equal(strv_length(argv), 2);
        assert_string_equal(argv[0], "dnsmasq");
        assert_string_equal(argv[1], "--conf-file=/run/declvirt/dnsmasq/n.conf");

        _cleanup_free_ char *c = NULL, *p = NULL, *l = NULL;
        assert_int_equal(dnsmasq_paths("n1", "/run/dv", "/var/lib/dv", &c, &p, &l), 0);
        assert_string_equal(c, "/run/dv/dnsmasq/n1.conf");
        assert_string_equal(p, "/run/dv/dnsmasq/n1.pid");
        assert_string_equal(l, "/var/lib/dv/networks/n1.leases");
        assert_int_equal(dnsmasq_paths("../x", "/run/dv", "/var/lib/dv", &c, NULL, NULL), -EINVAL);
        assert_int_equal(dnsmasq_paths("a/b", "/run/dv", NULL, NULL, &p, NULL), -EINVAL);
}

/* ---- leases ---------------------------------------------------------------------------- */

static void parse_file(const char *name, struct dnsmasq_lease **l, size_t *n,
                       struct dv_error *err) {
        char path[256];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", DIR, name);
        _cleanup_free_ char *text = test_read_file(path, &len);
        assert_int_equal(dnsmasq_leases_parse(text, l, n, err), 0);
}

static void test_leases(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        struct dnsmasq_lease *l = NULL;
        size_t n = 0;

        /* Recorded from dnsmasq 2.90 serving two busybox udhcpc clients. */
        parse_file("leases-v4", &l, &n, &err);
        assert_int_equal(n, 2);
        assert_int_equal(l[0].expiry, 1795297714);
        assert_string_equal(l[0].mac, "06:64:da:45:51:94");
        assert_string_equal(l[0].ip, "192.0.2.138");
        assert_null(l[0].hostname);
        assert_string_equal(l[1].mac, "52:54:00:11:22:33");
        assert_string_equal(l[1].ip, "192.0.2.11");
        assert_string_equal(l[1].hostname, "alpha");
        assert_int_equal(err.n_warnings, 0);
        dnsmasq_leases_free(l, n);

        /* dnsmasq's layout with DHCPv6: the server DUID line, then IAID instead of a MAC. */
        parse_file("leases-v6", &l, &n, &err);
        assert_int_equal(n, 3);
        assert_string_equal(l[1].ip, "2001:db8:2::1234");
        assert_string_equal(l[1].mac, "");
        assert_string_equal(l[1].hostname, "db");
        assert_string_equal(l[2].ip, "2001:db8:2::1235");
        assert_null(l[2].hostname);
        assert_int_equal(err.n_warnings, 0);
        dnsmasq_leases_free(l, n);

        /* Garbage is skipped with a warning naming the line; a 0 expiry is an infinite lease. */
        parse_file("leases-bad", &l, &n, &err);
        assert_int_equal(n, 2);
        assert_int_equal(l[0].expiry, 0);
        assert_string_equal(l[0].mac, "52:54:00:aa:bb:cc");
        assert_string_equal(l[0].hostname, "static-host");
        assert_string_equal(l[1].ip, "192.0.2.51");
        assert_string_equal(l[1].hostname, "beta");
        assert_int_equal(err.n_warnings, 2);
        assert_int_equal(err.warnings[0].line, 2);
        assert_int_equal(err.warnings[1].line, 3);
        assert_false(dv_error_failed(&err));
        dnsmasq_leases_free(l, n);
        dv_error_clear(&err);

        assert_int_equal(dnsmasq_leases_parse("", &l, &n, &err), 0);
        assert_int_equal(n, 0);
        assert_null(l);

        /* From the state directory: absent is no leases. */
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-leases");
        assert_int_equal(dnsmasq_leases("n1", dir, &l, &n, &err), 0);
        assert_int_equal(n, 0);
        _cleanup_free_ char *sub = path_join(dir, "networks");
        assert_int_equal(mkdir_p(sub, 0755), 0);
        _cleanup_free_ char *lf = path_join(sub, "n1.leases");
        size_t len = 0;
        _cleanup_free_ char *text = test_read_file(DIR "/leases-v4", &len);
        assert_int_equal(write_file_atomic(lf, text, len, 0644), 0);
        assert_int_equal(dnsmasq_leases("n1", dir, &l, &n, &err), 0);
        assert_int_equal(n, 2);
        dnsmasq_leases_free(l, n);
        test_rm_rf(dir);
}

/* ---- a real dnsmasq in a network namespace --------------------------------------------- */

#define CHECK(cond, ...)                                                                         \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                            \
                        fputc('\n', stderr);                                                     \
                        return -1;                                                               \
                }                                                                                \
        } while (0)

struct live {
        char *dir, *run, *state;
        char *conf, *pidfile, *leases;
};

static int run(char *const argv[]) {
        struct dv_error err = DV_ERROR_INIT;
        int r = cmd_run(argv, NULL, NULL, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", strempty(dv_error_message(&err)));
        dv_error_clear(&err);
        return r;
}

static bool proc_alive(pid_t pid) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(p, 4096, &s, &len) < 0)
                return false;
        const char *rp = strrchr(s, ')');
        return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* Whether pid holds path open (among its first 1024 descriptors: dnsmasq has a few). */
static bool proc_has_open(pid_t pid, const char *path) {
        for (int fd = 0; fd < 1024; fd++) {
                char p[64], link[PATH_MAX];
                snprintf(p, sizeof(p), "/proc/%d/fd/%d", (int)pid, fd);
                ssize_t n = readlink(p, link, sizeof(link) - 1);
                if (n <= 0)
                        continue;
                link[n] = '\0';
                if (streq(link, path))
                        return true;
        }
        return false;
}

/* The test's own clean-up: whatever the pidfile names, if it runs our conf, dies. */
static void kill_leftover(const struct live *t) {
        _cleanup_free_ char *s = NULL, *cmd = NULL;
        size_t len = 0;
        if (read_full_file(t->pidfile, 64, &s, &len) < 0)
                return;
        char *end = NULL;
        long pid = strtol(s, &end, 10);
        if (pid <= 1 || end == s)
                return;
        char p[64];
        snprintf(p, sizeof(p), "/proc/%ld/cmdline", pid);
        if (read_full_file(p, 65536, &cmd, &len) < 0)
                return;
        for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
                if (strstr(cmd + i, t->conf)) {
                        fprintf(stderr, "killing leftover dnsmasq %ld\n", pid);
                        kill((pid_t)pid, SIGKILL);
                        return;
                }
}

/* The bridge dnsmasq serves, in the test's network namespace. */
static int bridge_up(void) {
        CHECK(run((char *const[]){"ip", "link", "set", "lo", "up", NULL}) == 0, "lo up");
        CHECK(run((char *const[]){"ip", "link", "add", BRIDGE, "type", "bridge", NULL}) == 0,
              "bridge");
        CHECK(run((char *const[]){"ip", "addr", "add", "198.51.100.129/25", "dev", BRIDGE, NULL}) ==
                      0,
              "address");
        CHECK(run((char *const[]){"ip", "link", "set", BRIDGE, "up", NULL}) == 0, "up");
        return 0;
}

static int live_body(struct live *t) {
        struct dv_error err = DV_ERROR_INIT;
        if (bridge_up() < 0)
                return -1;

        struct dv_object *o = load("isolated");
        struct network_def *def = o->def.network;

        pid_t pid = 0;
        bool current = true;
        CHECK(dnsmasq_status(def, BRIDGE, t->run, t->state, &pid, &current, &err) == 0, "status");
        CHECK(pid == 0 && !current, "status before start: pid %d current %d", (int)pid, current);

        CHECK(dnsmasq_start(def, BRIDGE, t->run, t->state, &err) == 0, "start: %s",
              strempty(dv_error_message(&err)));
        CHECK(access(t->pidfile, F_OK) == 0, "no pidfile %s", t->pidfile);
        CHECK(access(t->leases, F_OK) == 0, "no lease file %s", t->leases);
        CHECK(dnsmasq_status(def, BRIDGE, t->run, t->state, &pid, &current, &err) == 0, "status");
        CHECK(pid > 0 && current, "status after start: pid %d current %d", (int)pid, current);
        CHECK(proc_alive(pid), "PID %d not alive", (int)pid);
        /* It runs as a user of its own where the host has one (Debian's dnsmasq-base
         * creates "dnsmasq"), else as its compiled-in one; root never. */
        struct passwd *pw = getpwnam("dnsmasq");
        struct dom_proc_ident id;
        CHECK(dom_proc_ident_read(pid, &id) == 0, "no identity for PID %d", (int)pid);
        CHECK(pw ? id.ruid == pw->pw_uid && id.euid == pw->pw_uid : id.euid != 0,
              "dnsmasq runs as uid %u", (unsigned)id.euid);
        /* It opened the lease file as root before dropping root and keeps it open: the
         * file and its directory stay root's and it can still write its leases. */
        struct stat st;
        CHECK(stat(t->leases, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0022) == 0,
              "lease file owner %u mode %o", (unsigned)st.st_uid, (unsigned)st.st_mode);
        CHECK(proc_has_open(pid, t->leases), "dnsmasq does not hold %s open", t->leases);
        /* A daemon: not our child (reparented), so nobody here has to reap it. */
        CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD, "dnsmasq is our child");

        /* A changed definition: the conf on disk is no longer what it should be. */
        def->ips[0].ranges[0].end.a[3] = 240;
        pid_t pid2 = 0;
        CHECK(dnsmasq_status(def, BRIDGE, t->run, t->state, &pid2, &current, &err) == 0, "status");
        CHECK(pid2 == pid && !current, "changed: pid %d current %d", (int)pid2, current);
        /* The same definition with another bridge is another conf too. */
        def->ips[0].ranges[0].end.a[3] = 250;
        CHECK(dnsmasq_status(def, "dvother0", t->run, t->state, NULL, &current, &err) == 0, "st");
        CHECK(!current, "bridge change not seen");

        /* Restart with the changed definition: a new process, the old one gone. */
        def->ips[0].ranges[0].end.a[3] = 240;
        CHECK(dnsmasq_start(def, BRIDGE, t->run, t->state, &err) == 0, "restart: %s",
              strempty(dv_error_message(&err)));
        CHECK(dnsmasq_status(def, BRIDGE, t->run, t->state, &pid2, &current, &err) == 0, "status");
        CHECK(pid2 > 0 && pid2 != pid && current, "after restart: pid %d (was %d) current %d",
              (int)pid2, (int)pid, current);
        CHECK(!proc_alive(pid), "old dnsmasq %d still alive", (int)pid);

        CHECK(dnsmasq_stop(def->name, t->run, &err) == 0, "stop: %s",
              strempty(dv_error_message(&err)));
        CHECK(!proc_alive(pid2), "dnsmasq %d still alive after stop", (int)pid2);
        CHECK(access(t->pidfile, F_OK) < 0, "pidfile left behind");
        CHECK(access(t->conf, F_OK) < 0, "conf left behind");
        CHECK(access(t->leases, F_OK) == 0, "the lease file must survive a stop");
        CHECK(dnsmasq_status(def, BRIDGE, t->run, t->state, &pid, NULL, &err) == 0, "status");
        CHECK(pid == 0, "status after stop: pid %d", (int)pid);
        CHECK(dnsmasq_stop(def->name, t->run, &err) == 0, "second stop");

        /* A pidfile naming some other process: never signalled, only the file goes. */
        char self[32];
        snprintf(self, sizeof(self), "%d\n", (int)getpid());
        CHECK(write_file_atomic(t->pidfile, self, strlen(self), 0644) == 0, "pidfile");
        CHECK(dnsmasq_status(def, BRIDGE, t->run, t->state, &pid, NULL, &err) == 0, "status");
        CHECK(pid == 0, "a foreign PID counted as dnsmasq");
        CHECK(dnsmasq_stop(def->name, t->run, &err) == 0, "stop with a foreign pid");
        CHECK(access(t->pidfile, F_OK) < 0, "pidfile left behind");

        dv_error_clear(&err);
        dv_object_free(o);
        return 0;
}

/* A host without the dnsmasq user (a mount namespace where /etc/passwd lacks it): no
 * user= or group= line, dnsmasq runs as its compiled-in user, and the agent says so once
 * in its log however often it starts or checks dnsmasq. */
static int no_user_body(struct live *t) {
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *passwd = NULL, *copy = path_join(t->dir, "passwd");
        _cleanup_free_ char *logfile = path_join(t->dir, "log"), *log = NULL, *conf = NULL;
        size_t len = 0;
        CHECK(copy && logfile, "out of memory");
        CHECK(read_full_file("/etc/passwd", 1u << 20, &passwd, &len) == 0, "/etc/passwd");
        _cleanup_fclose_ FILE *f = fopen(copy, "we");
        CHECK(f, "%s: %m", copy);
        for (char *line = passwd, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                next = next ? next + 1 : NULL;
                if (strncmp(line, "dnsmasq:", 8) != 0)
                        fwrite(line, 1, next ? (size_t)(next - line) : strlen(line), f);
        }
        CHECK(fflush(f) == 0, "%s: %m", copy);
        CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "private mounts: %m");
        CHECK(mount(copy, "/etc/passwd", NULL, MS_BIND, NULL) == 0, "bind /etc/passwd: %m");
        CHECK(!getpwnam("dnsmasq"), "the dnsmasq user is still there");
        struct passwd *nobody = getpwnam("nobody");
        CHECK(nobody, "no user nobody");
        if (bridge_up() < 0)
                return -1;

        /* The agent's log goes to stderr: into a file for the count. */
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        _cleanup_close_ int logfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(saved >= 0 && logfd >= 0 && dup2(logfd, STDERR_FILENO) >= 0, "log: %m");

        struct dv_object *o = load("isolated");
        struct network_def *def = o->def.network;
        pid_t pid = 0, pid2 = 0;
        bool current = false;
        int r1 = dnsmasq_start(def, BRIDGE, t->run, t->state, &err);
        int r2 = dnsmasq_status(def, BRIDGE, t->run, t->state, &pid, &current, &err);
        int r3 = dnsmasq_start(def, BRIDGE, t->run, t->state, &err);
        int r4 = dnsmasq_status(def, BRIDGE, t->run, t->state, &pid2, NULL, &err);
        struct dom_proc_ident id = {0};
        int r5 = dom_proc_ident_read(pid2, &id);
        int r6 = read_full_file(t->conf, 1u << 20, &conf, &len);
        int r7 = dnsmasq_stop(def->name, t->run, &err);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);

        CHECK(r1 == 0 && r2 == 0 && r3 == 0 && r4 == 0 && r7 == 0,
              "start/status/restart/status/stop: %d %d %d %d %d: %s", r1, r2, r3, r4, r7,
              strempty(dv_error_message(&err)));
        CHECK(pid > 0 && current && pid2 > 0 && pid2 != pid, "pid %d current %d, then pid %d",
              (int)pid, current, (int)pid2);
        CHECK(r5 == 0 && id.euid == nobody->pw_uid && id.ruid == nobody->pw_uid,
              "dnsmasq runs as uid %u, not nobody's", (unsigned)id.euid);
        CHECK(r6 == 0 && !strstr(conf, "user=") && !strstr(conf, "group="),
              "a user or group line without the account:\n%s", strempty(conf));
        CHECK(read_full_file(logfile, 1u << 20, &log, &len) == 0, "read the log");
        fputs(log, stderr);
        const char *said = strstr(log, "there is no user dnsmasq");
        CHECK(said && !strstr(said + 1, "there is no user dnsmasq"),
              "the missing user is not logged exactly once:\n%s", log);
        dv_error_clear(&err);
        dv_object_free(o);
        return 0;
}

/* Runs body as root in a child with network (and mount) namespaces of its own; dnsmasq is
 * killed afterwards whatever happened. */
static void run_live(int (*body)(struct live *), int flags) {
        if (geteuid() != 0) {
                print_message("skipped: needs root for a network namespace\n");
                skip();
        }
        if (!test_have_program("dnsmasq") || !test_have_program("ip")) {
                print_message("skipped: dnsmasq or ip is not installed (dnsmasq-base, iproute2)\n");
                skip();
        }
        struct live t = {0};
        t.dir = test_mkdtemp("declvirt-dnsmasq");
        /* dnsmasq drops to an unprivileged user: the directories it writes are root's and
         * it needs nothing from them afterwards, but the path must be traversable. */
        assert_int_equal(chmod(t.dir, 0755), 0);
        t.run = path_join(t.dir, "run");
        t.state = path_join(t.dir, "state");
        assert_int_equal(dnsmasq_paths("iso", t.run, t.state, &t.conf, &t.pidfile, &t.leases), 0);

        fflush(stdout);
        fflush(stderr);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                if (unshare(flags) < 0) {
                        fprintf(stderr, "unshare: %s\n", strerror(errno));
                        _exit(77);
                }
                int r = body(&t);
                kill_leftover(&t);
                fflush(stdout);
                fflush(stderr);
                _exit(r == 0 ? 0 : 1);
        }
        int status = 0;
        while (waitpid(child, &status, 0) < 0)
                assert_int_equal(errno, EINTR);
        /* Even when the child died half-way: no dnsmasq left behind. */
        kill_leftover(&t);
        test_rm_rf(t.dir);
        free(t.dir);
        free(t.run);
        free(t.state);
        free(t.conf);
        free(t.pidfile);
        free(t.leases);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                print_message("skipped: cannot create the namespaces\n");
                skip();
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the dnsmasq lifecycle failed in its namespaces (see above)");
}

static void test_live(void **state) {
        (void)state;
        run_live(live_body, CLONE_NEWNET);
}

static void test_live_no_user(void **state) {
        (void)state;
        run_live(no_user_body, CLONE_NEWNET | CLONE_NEWNS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_needed),        cmocka_unit_test(test_golden),
                cmocka_unit_test(test_conf_refusals), cmocka_unit_test(test_conf_user),
                cmocka_unit_test(test_argv_paths),    cmocka_unit_test(test_leases),
                cmocka_unit_test(test_live),          cmocka_unit_test(test_live_no_user),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
