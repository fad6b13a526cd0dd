/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The iscsi and iscsi-direct pool drivers: iscsiadm argv against the golden files in
 * tests/data/iscsi (DECLVIRT_UPDATE_GOLDEN=1 rewrites them), the parsers of iscsiadm's
 * output, CHAP secret files, sessions and LUNs from a fake sysfs tree, the open-iscsi
 * error path, and libiscsi probes: a closed port, a silent listener (bounded time), and
 * a real tgtd when it is installed and we are root (LUNs, capacities, CHAP). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/storage.h"
#include "drivers/storage/iscsi-direct.h"
#include "drivers/storage/iscsi.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"
#include "util/time.h"

#define GOLDEN    "tests/data/iscsi"
#define TARGET    "iqn.2024-01.com.example:storage"
#define INITIATOR "iqn.2024-01.dev.declvirt:unit-test"
#define MiB       (1024ULL * 1024)

/* ---- definitions by hand ----------------------------------------------------------------- */

static struct pool_def *mk_pool(enum pool_type type, const char *host, int port, const char *iqn) {
        struct pool_def *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->type = type;
        p->name = strdup("p1");
        p->source.host_name = strdup(host);
        if (port > 0) {
                p->source.has_port = true;
                p->source.port = (uint16_t)port;
        }
        p->source.devices = calloc(1, sizeof(*p->source.devices));
        p->source.devices[0].path = strdup(iqn);
        p->source.n_devices = 1;
        if (type == POOL_ISCSI_DIRECT)
                p->source.initiator_iqn = strdup(INITIATOR);
        return p;
}

static void set_auth(struct pool_def *p, const char *user, const char *usage) {
        p->source.has_auth = true;
        p->source.auth.type = strdup("chap");
        p->source.auth.username = strdup(user);
        p->source.auth.secret_usage = strdup(usage);
}

static void free_pool(struct pool_def *p) {
        if (!p)
                return;
        free(p->name);
        free(p->source.host_name);
        free(p->source.devices[0].path);
        free(p->source.devices);
        free(p->source.initiator_iqn);
        free(p->source.auth.type);
        free(p->source.auth.username);
        free(p->source.auth.secret_usage);
        free(p->target.path);
        free(p);
}

static void write_text(const char *dir, const char *rel, const char *text) {
        _cleanup_free_ char *path = path_join(dir, rel);
        _cleanup_free_ char *parent = path_dirname(path);
        assert_int_equal(mkdir_p(parent, 0755), 0);
        assert_int_equal(write_file_atomic(path, text, strlen(text), 0644), 0);
}

/* ---- golden argv ----------------------------------------------------------------------- */

static void check_golden(const char *name, char **argv) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.argv", GOLDEN, name);
        test_check_golden_argv(path, argv);
}

static void test_golden_argv(void **state) {
        (void)state;
        struct pool_def *p = mk_pool(POOL_ISCSI, "192.0.2.10", 0, TARGET);
        char **argv = NULL;
        assert_int_equal(drv_iscsi_discovery_argv(p, &argv), 0);
        check_golden("discovery", argv);
        strv_free(argv);
        assert_int_equal(drv_iscsi_node_new_argv(p, &argv), 0);
        check_golden("node-new", argv);
        strv_free(argv);
        assert_int_equal(drv_iscsi_login_argv(p, &argv), 0);
        check_golden("login", argv);
        strv_free(argv);
        assert_int_equal(drv_iscsi_logout_argv(p, &argv), 0);
        check_golden("logout", argv);
        strv_free(argv);
        assert_int_equal(drv_iscsi_session_argv(&argv), 0);
        check_golden("session", argv);
        strv_free(argv);
        assert_int_equal(drv_iscsi_rescan_argv(7, &argv), 0);
        check_golden("rescan", argv);
        strv_free(argv);

        /* CHAP: one --op update per setting, in order. */
        set_auth(p, "alice", "iscsi-secret");
        char **set = NULL;
        assert_int_equal(drv_iscsi_chap_settings(p, "s3cret-pass", &set), 0);
        assert_int_equal(strv_length(set), 6);
        _cleanup_strv_free_ char **all = NULL;
        for (size_t i = 0; set[i]; i += 2) {
                assert_int_equal(drv_iscsi_node_update_argv(p, set[i], set[i + 1], &argv), 0);
                for (size_t k = 0; argv[k]; k++)
                        assert_int_equal(strv_push(&all, argv[k]), 0);
                strv_free(argv);
        }
        strv_free(set);
        check_golden("chap-update", all);
        free_pool(p);

        /* IPv6 literals are bracketed; a written port is used. */
        p = mk_pool(POOL_ISCSI, "2001:db8::1", 3261, TARGET);
        assert_int_equal(drv_iscsi_login_argv(p, &argv), 0);
        check_golden("login-ipv6-port", argv);
        strv_free(argv);
        _cleanup_free_ char *hp = drv_iscsi_host_port(p);
        assert_string_equal(hp, "[2001:db8::1]:3261");
        free_pool(p);

        /* Incomplete definitions: no argv. */
        p = mk_pool(POOL_ISCSI, "192.0.2.10", 0, TARGET);
        free(p->source.devices[0].path);
        p->source.devices[0].path = NULL;
        assert_int_equal(drv_iscsi_login_argv(p, &argv), -EINVAL);
        assert_int_equal(drv_iscsi_discovery_argv(p, &argv), -EINVAL);
        assert_int_equal(drv_iscsi_chap_settings(p, "x", &argv), -EINVAL);
        free_pool(p);
}

/* ---- parsers ------------------------------------------------------------------------------ */

static void test_parse_sessions(void **state) {
        (void)state;
        _cleanup_free_ char *out = test_read_file(GOLDEN "/session.txt", NULL);
        struct drv_iscsi_session *s = NULL;
        size_t n = 0;
        assert_int_equal(drv_iscsi_parse_sessions(out, &s, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(s[0].sid, 1);
        assert_string_equal(s[0].address, "192.0.2.10");
        assert_int_equal(s[0].port, 3260);
        assert_int_equal(s[0].tpgt, 1);
        assert_string_equal(s[0].target, "iqn.2003-01.org.linux-iscsi.target:sn.1234");
        assert_int_equal(s[1].sid, 2);
        assert_string_equal(s[1].address, "2001:db8::1");
        assert_int_equal(s[1].port, 3261);
        assert_string_equal(s[1].target, TARGET);
        assert_int_equal(s[2].sid, 17);
        assert_int_equal(s[2].tpgt, 2);
        drv_iscsi_sessions_free(s, n);

        _cleanup_free_ char *none = test_read_file(GOLDEN "/session-none.txt", NULL);
        assert_int_equal(drv_iscsi_parse_sessions(none, &s, &n), 0);
        assert_int_equal(n, 0);
        drv_iscsi_sessions_free(s, n);
        assert_int_equal(drv_iscsi_parse_sessions("", &s, &n), 0);
        assert_int_equal(n, 0);
        drv_iscsi_sessions_free(s, n);

        /* Broken lines are skipped, never half-read. */
        const char *bad = "tcp: [x] 1.2.3.4:3260,1 iqn.a:b\n"
                          "tcp: [3] 1.2.3.4:99999,1 iqn.a:b\n"
                          "tcp: [4] 1.2.3.4,1 iqn.a:b\n"
                          "tcp: [5] [::1:3260,1 iqn.a:b\n"
                          "tcp: [6] 1.2.3.4:3260,1 \n"
                          "tcp: [8] 1.2.3.4:3260,1 iqn.a:b";
        assert_int_equal(drv_iscsi_parse_sessions(bad, &s, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(s[0].sid, 8);
        drv_iscsi_sessions_free(s, n);
}

static void test_parse_discovery(void **state) {
        (void)state;
        _cleanup_free_ char *out = test_read_file(GOLDEN "/discovery.txt", NULL);
        struct drv_iscsi_session *s = NULL;
        size_t n = 0;
        assert_int_equal(drv_iscsi_parse_discovery(out, &s, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(s[0].sid, 0);
        assert_string_equal(s[1].address, "2001:db8::1");
        assert_string_equal(s[2].target, TARGET);
        drv_iscsi_sessions_free(s, n);
}

/* ---- secrets ------------------------------------------------------------------------------- */

static void write_secret(const char *dir, const char *name, const char *text, mode_t mode) {
        _cleanup_free_ char *path = path_join(dir, name);
        (void)unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void expect_secret_error(const char *name, int code, const char *needle) {
        struct dv_error err = DV_ERROR_INIT;
        char *pw = NULL;
        assert_int_equal(drv_iscsi_read_secret(name, &pw, &err), code);
        assert_null(pw);
        const char *m = dv_error_message(&err);
        assert_non_null(m);
        if (!strstr(m, needle))
                fail_msg("'%s' does not contain '%s'", m, needle);
        dv_error_clear(&err);
}

static void test_secrets(void **state) {
        (void)state;
        _cleanup_free_ char *dir = test_mkdtemp("iscsi-secrets");
        drv_iscsi_set_secrets_dir(dir);
        drv_iscsi_set_secret_owner(geteuid());
        struct dv_error err = DV_ERROR_INIT;
        char *pw = NULL;

        write_secret(dir, "good", "s3cret\n", 0600);
        assert_int_equal(drv_iscsi_read_secret("good", &pw, &err), 0);
        assert_string_equal(pw, "s3cret");
        free(pw);
        pw = NULL;
        write_secret(dir, "ro", "abc", 0400);
        assert_int_equal(drv_iscsi_read_secret("ro", &pw, &err), 0);
        assert_string_equal(pw, "abc");
        free(pw);
        pw = NULL;

        write_secret(dir, "grp", "s3cret\n", 0640);
        expect_secret_error("grp", -EPERM, "can be accessed by group or others (mode 0640)");
        write_secret(dir, "oth", "s3cret\n", 0604);
        expect_secret_error("oth", -EPERM, "refusing it");
        expect_secret_error("missing", -ENOENT, "does not exist");
        expect_secret_error("sub/good", -EINVAL, "contains '/'");
        expect_secret_error(".hidden", -EINVAL, "begins with '.'");
        expect_secret_error("", -EINVAL, "is empty");
        write_secret(dir, "empty", "\n", 0600);
        expect_secret_error("empty", -EINVAL, "one line");
        write_secret(dir, "two", "a\nb\n", 0600);
        expect_secret_error("two", -EINVAL, "one line");
        char big[400];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        write_secret(dir, "big", big, 0600);
        expect_secret_error("big", -EINVAL, "more than 255 bytes");
        _cleanup_free_ char *sub = path_join(dir, "adir");
        assert_int_equal(mkdir(sub, 0700), 0);
        expect_secret_error("adir", -EPERM, "not a regular file");
        _cleanup_free_ char *link = path_join(dir, "link");
        _cleanup_free_ char *good = path_join(dir, "good");
        assert_int_equal(symlink(good, link), 0);
        expect_secret_error("link", -ELOOP, "cannot open");

        /* Owned by someone else: refused (the owner must be root in real life). */
        drv_iscsi_set_secret_owner(geteuid() + 1);
        expect_secret_error("good", -EPERM, "is owned by uid");
        drv_iscsi_set_secret_owner(geteuid());
        if (geteuid() == 0) {
                _cleanup_free_ char *gp = path_join(dir, "good");
                assert_int_equal(chown(gp, 65534, 0), 0);
                drv_iscsi_set_secret_owner(0);
                expect_secret_error("good", -EPERM, "is owned by uid 65534, not 0");
        }

        /* The name comes from usage, else uuid. */
        struct pool_def *p = mk_pool(POOL_ISCSI, "192.0.2.10", 0, TARGET);
        assert_null(drv_iscsi_secret_name(p));
        p->source.has_auth = true;
        p->source.auth.secret_uuid = strdup("0123");
        assert_string_equal(drv_iscsi_secret_name(p), "0123");
        p->source.auth.secret_usage = strdup("usage-name");
        assert_string_equal(drv_iscsi_secret_name(p), "usage-name");
        free(p->source.auth.secret_uuid);
        free_pool(p);

        drv_iscsi_set_secrets_dir(NULL);
        drv_iscsi_set_secret_owner(0);
        test_rm_rf(dir);
}

/* ---- sysfs ---------------------------------------------------------------------------------- */

static char *fake_sysfs(void) {
        char *root = test_mkdtemp("iscsi-sysfs");
        /* session 3: ours, logged in, LUN 0 a controller (no block), LUNs 1 and 2 disks */
        write_text(root, "class/iscsi_session/session3/targetname", TARGET "\n");
        write_text(root, "class/iscsi_session/session3/state", "LOGGED_IN\n");
        write_text(root, "class/iscsi_connection/connection3:0/persistent_address", "192.0.2.10\n");
        write_text(root, "class/iscsi_connection/connection3:0/persistent_port", "3260\n");
        write_text(root, "class/iscsi_session/session3/device/target4:0:0/4:0:0:0/type", "12\n");
        write_text(root, "class/iscsi_session/session3/device/target4:0:0/4:0:0:1/block/sdb/size",
                   "16384\n");
        write_text(root, "class/iscsi_session/session3/device/target4:0:0/4:0:0:2/block/sdc/size",
                   "2048\n");
        /* session 4: another target at the same portal */
        write_text(root, "class/iscsi_session/session4/targetname", "iqn.2024-01.com.example:x\n");
        write_text(root, "class/iscsi_session/session4/state", "LOGGED_IN\n");
        write_text(root, "class/iscsi_connection/connection4:0/persistent_address", "192.0.2.10\n");
        write_text(root, "class/iscsi_connection/connection4:0/persistent_port", "3260\n");
        /* session 5: our target on another port, failed */
        write_text(root, "class/iscsi_session/session5/targetname", TARGET "\n");
        write_text(root, "class/iscsi_session/session5/state", "FAILED\n");
        write_text(root, "class/iscsi_connection/connection5:0/persistent_address", "192.0.2.10\n");
        write_text(root, "class/iscsi_connection/connection5:0/persistent_port", "3270\n");
        return root;
}

static void test_sysfs(void **state) {
        (void)state;
        _cleanup_free_ char *root = fake_sysfs();
        drv_iscsi_set_sysfs_root(root);
        const struct storage_driver *drv = storage_driver_get(POOL_ISCSI);
        assert_non_null(drv);
        assert_ptr_equal(drv, &storage_driver_iscsi);
        struct dv_error err = DV_ERROR_INIT;

        struct pool_def *p = mk_pool(POOL_ISCSI, "192.0.2.10", 0, TARGET);
        struct drv_iscsi_sysfs_session ses = {0};
        assert_int_equal(drv_iscsi_sysfs_find_session(p, &ses), 1);
        assert_int_equal(ses.sid, 3);
        assert_string_equal(ses.state, "LOGGED_IN");
        free(ses.state);

        struct pool_status st = {0};
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_ACTIVE);
        assert_true(st.has_sizes);
        assert_int_equal(st.capacity, (16384 + 2048) * 512ULL);
        pool_status_done(&st);

        struct vol_status *v = NULL;
        size_t n = 0;
        assert_int_equal(drv->vol_list(p, &v, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0].name, "unit:0:0:1");
        assert_string_equal(v[0].path, "/dev/sdb"); /* no by-path link here */
        assert_string_equal(v[0].type, "block");
        assert_int_equal(v[0].capacity, 8 * MiB);
        assert_string_equal(v[1].name, "unit:0:0:2");
        assert_int_equal(v[1].capacity, 1 * MiB);
        vol_status_array_free(v, n);

        _cleanup_free_ char *vp = drv->vol_path(p, "unit:0:0:2");
        assert_string_equal(vp, "/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-" TARGET "-lun-2");
        assert_null(drv->vol_path(p, "unit:0:0"));
        assert_null(drv->vol_path(p, "unit:0:0:2x"));
        free_pool(p);

        /* The same target on a port with a failed session: broken, with the reason. */
        p = mk_pool(POOL_ISCSI, "192.0.2.10", 3270, TARGET);
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "is FAILED"));
        pool_status_done(&st);
        free_pool(p);

        /* Another address, or no session at all: inactive (start logs in), no volumes. */
        p = mk_pool(POOL_ISCSI, "192.0.2.99", 0, TARGET);
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_INACTIVE);
        pool_status_done(&st);
        assert_int_equal(drv->vol_list(p, &v, &n, &err), 0);
        assert_int_equal(n, 0);
        vol_status_array_free(v, n);
        free_pool(p);

        /* A host name matches the session's address (no resolving on the event loop). */
        p = mk_pool(POOL_ISCSI, "storage.example.com", 0, TARGET);
        assert_int_equal(drv_iscsi_sysfs_find_session(p, &ses), 1);
        free(ses.state);
        free_pool(p);

        /* A kernel without the iSCSI transport: no sessions. */
        _cleanup_free_ char *empty = test_mkdtemp("iscsi-nosysfs");
        drv_iscsi_set_sysfs_root(empty);
        p = mk_pool(POOL_ISCSI, "192.0.2.10", 0, TARGET);
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_INACTIVE);
        pool_status_done(&st);
        free_pool(p);

        drv_iscsi_set_sysfs_root(NULL);
        test_rm_rf(root);
        test_rm_rf(empty);
}

/* The open-iscsi error path on this machine: no iscsid and no iscsi_tcp. start fails
 * with iscsiadm's own conclusion, in bounded time; stop with no session is fine. */
static void test_start_error_path(void **state) {
        (void)state;
        if (!test_have_program("iscsiadm")) {
                print_message("# iscsiadm is not installed (Debian: open-iscsi)\n");
                skip();
        }
        _cleanup_free_ char *root = test_mkdtemp("iscsi-nosysfs");
        drv_iscsi_set_sysfs_root(root);
        const struct storage_driver *drv = &storage_driver_iscsi;
        struct pool_def *p = mk_pool(POOL_ISCSI, "127.0.0.1", 9, TARGET);
        struct dv_error err = DV_ERROR_INIT;
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int r = drv->pool_start(p, &err);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        if (r == 0) {
                /* Only where a real initiator and a target on port 9 exist. */
                print_message("# iscsiadm logged in to 127.0.0.1:9?\n");
                (void)drv->pool_stop(p, &err);
                free_pool(p);
                skip();
        }
        assert_true(r < 0);
        assert_false(STORAGE_IS_REFUSAL(r));
        assert_true(took < DRV_ISCSI_CMD_TIMEOUT_USEC + 5 * USEC_PER_SEC);
        const char *m = dv_error_message(&err);
        print_message("# start failed in %" PRIu64 " ms: %s\n", took / 1000, m);
        assert_non_null(strstr(m, "iscsiadm --mode discovery"));
        assert_non_null(err.argv);
        assert_non_null(strstr(err.argv, "sendtargets"));
        dv_error_clear(&err);

        /* CHAP with a missing secret: said before anything runs. */
        _cleanup_free_ char *sdir = test_mkdtemp("iscsi-secrets");
        drv_iscsi_set_secrets_dir(sdir);
        set_auth(p, "alice", "nope");
        assert_int_equal(drv->pool_start(p, &err), -ENOENT);
        assert_non_null(strstr(dv_error_message(&err), "CHAP secret file"));
        dv_error_clear(&err);
        drv_iscsi_set_secrets_dir(NULL);
        free_pool(p);
        test_rm_rf(sdir);
        test_rm_rf(root);
        drv_iscsi_set_sysfs_root(NULL);
}

/* ---- iscsi-direct --------------------------------------------------------------------------- */

static void test_direct_names(void **state) {
        (void)state;
        struct pool_def *p = mk_pool(POOL_ISCSI_DIRECT, "127.0.0.1", 3261, TARGET);
        _cleanup_free_ char *n = drv_iscsi_direct_vol_name(5);
        assert_string_equal(n, "unit:0:0:5");
        unsigned lun = 0;
        assert_int_equal(drv_iscsi_direct_parse_vol_name("unit:0:0:12", &lun), 0);
        assert_int_equal(lun, 12);
        assert_int_equal(drv_iscsi_direct_parse_vol_name("unit:0:1:12", &lun), -EINVAL);
        assert_int_equal(drv_iscsi_direct_parse_vol_name("unit:0:0:", &lun), -EINVAL);
        assert_int_equal(drv_iscsi_direct_parse_vol_name("unit:0:0:-1", &lun), -EINVAL);
        assert_int_equal(drv_iscsi_direct_parse_vol_name("unit:0:0:99999", &lun), -EINVAL);
        assert_int_equal(drv_iscsi_direct_parse_vol_name(NULL, &lun), -EINVAL);
        _cleanup_free_ char *path = drv_iscsi_direct_lun_path(p, 1);
        assert_string_equal(path, "ip-127.0.0.1:3261-iscsi-" TARGET "-lun-1");
        const struct storage_driver *drv = storage_driver_get(POOL_ISCSI_DIRECT);
        assert_ptr_equal(drv, &storage_driver_iscsi_direct);
        _cleanup_free_ char *vp = drv->vol_path(p, "unit:0:0:1");
        assert_string_equal(vp, path);
        /* No start/stop/build/delete, no volume changes. */
        assert_null(drv->pool_build);
        assert_null(drv->pool_start);
        assert_null(drv->pool_stop);
        assert_null(drv->pool_delete);
        assert_null(drv->vol_create);
        assert_null(drv->vol_delete);
        assert_null(drv->vol_resize);

        /* The cache key changes with everything that changes the answer. */
        _cleanup_free_ char *k1 = drv_iscsi_direct_cache_key(p);
        set_auth(p, "alice", "s");
        _cleanup_free_ char *k2 = drv_iscsi_direct_cache_key(p);
        assert_string_not_equal(k1, k2);
        free_pool(p);
}

static int closed_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
        close(fd); /* nobody listens there now */
        return ntohs(a.sin_port);
}

static void test_direct_closed_port(void **state) {
        (void)state;
        int port = closed_port();
        struct pool_def *p = mk_pool(POOL_ISCSI_DIRECT, "127.0.0.1", port, TARGET);
        struct dv_error err = DV_ERROR_INIT;
        struct drv_iscsi_direct_result res = {0};
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int r = drv_iscsi_direct_probe(p, 0, &res, &err);
        assert_int_equal(r, -ECONNREFUSED);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 2 * USEC_PER_SEC);
        char want[128];
        snprintf(want, sizeof(want),
                 "cannot connect to iSCSI portal 127.0.0.1:%d: Connection refused", port);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);

        /* Through the driver: broken with that reason; no volumes. */
        const struct storage_driver *drv = &storage_driver_iscsi_direct;
        struct pool_status st = {0};
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_string_equal(st.reason, want);
        pool_status_done(&st);
        struct vol_status *v = NULL;
        size_t n = 0;
        assert_true(drv->vol_list(p, &v, &n, &err) < 0);
        dv_error_clear(&err);
        /* A second observe right away answers from the cache: no new probe. */
        unsigned probes = drv_iscsi_direct_probe_count();
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        pool_status_done(&st);
        assert_int_equal(drv_iscsi_direct_probe_count(), probes);
        drv_iscsi_direct_cache_reset();
        free_pool(p);
}

/* A listener that never answers (the kernel accepts, nobody reads): the probe gives up
 * at its deadline, and observe never waits longer than its first-wait bound. */
static void test_direct_silent_target(void **state) {
        (void)state;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 8), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
        struct pool_def *p = mk_pool(POOL_ISCSI_DIRECT, "127.0.0.1", ntohs(a.sin_port), TARGET);
        struct dv_error err = DV_ERROR_INIT;
        struct drv_iscsi_direct_result res = {0};
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int r = drv_iscsi_direct_probe(p, 1 * USEC_PER_SEC, &res, &err);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - t0;
        assert_int_equal(r, -ETIMEDOUT);
        assert_true(took >= 900 * USEC_PER_MSEC && took < 3 * USEC_PER_SEC);
        assert_non_null(strstr(dv_error_message(&err), "no answer in time"));
        assert_non_null(strstr(dv_error_message(&err), "login to iSCSI target " TARGET));
        dv_error_clear(&err);

        struct pool_status st = {0};
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(storage_driver_iscsi_direct.pool_observe(p, &st, &err), 0);
        took = now_usec(CLOCK_MONOTONIC) - t0;
        assert_true(took < DRV_ISCSI_DIRECT_FIRST_WAIT_USEC + 500 * USEC_PER_MSEC);
        assert_int_equal(st.state, POOL_STATE_BROKEN);
        assert_non_null(strstr(st.reason, "waiting for the first answer"));
        pool_status_done(&st);
        /* The next observe does not wait again. */
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(storage_driver_iscsi_direct.pool_observe(p, &st, &err), 0);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 100 * USEC_PER_MSEC);
        pool_status_done(&st);
        drv_iscsi_direct_cache_reset(); /* waits for the background probe to time out */
        close(fd);
        free_pool(p);
}

/* ---- a real target -------------------------------------------------------------------------- */

struct tgt {
        pid_t pid;
        int port;
        char ctl[16];
        char *dir;
};

static int tgtadm(struct tgt *t, ...) {
        va_list ap;
        va_start(ap, t);
        _cleanup_strv_free_ char **argv = NULL;
        assert_int_equal(strv_push(&argv, "tgtadm"), 0);
        assert_int_equal(strv_push(&argv, "-C"), 0);
        assert_int_equal(strv_push(&argv, t->ctl), 0);
        assert_int_equal(strv_push(&argv, "--lld"), 0);
        assert_int_equal(strv_push(&argv, "iscsi"), 0);
        for (const char *s; (s = va_arg(ap, const char *));)
                assert_int_equal(strv_push(&argv, s), 0);
        va_end(ap);
        struct dv_error err = DV_ERROR_INIT;
        struct cmd_opts o = {.timeout_usec = 10 * USEC_PER_SEC};
        int r = cmd_run(argv, &o, NULL, &err);
        if (r < 0)
                print_message("# %s\n", strna(dv_error_message(&err)));
        dv_error_clear(&err);
        return r;
}

static bool tgt_start(struct tgt *t) {
        if (geteuid() != 0 || !test_have_program("tgtd") || !test_have_program("tgtadm"))
                return false;
        t->port = closed_port();
        srand((unsigned)getpid() ^ (unsigned)time(NULL));
        snprintf(t->ctl, sizeof(t->ctl), "%d", 10000 + rand() % 22000);
        char portal[64];
        snprintf(portal, sizeof(portal), "portal=127.0.0.1:%d", t->port);
        t->dir = test_mkdtemp("iscsi-tgt");
        _cleanup_free_ char *log = path_join(t->dir, "tgtd.log");
        char *argv[] = {"tgtd", "-f", "-C", t->ctl, "--iscsi", portal, NULL};
        struct dv_error err = DV_ERROR_INIT;
        if (cmd_spawn_detached(argv, log, NULL, &t->pid, &err) < 0) {
                dv_error_clear(&err);
                return false;
        }
        bool up = false;
        for (int i = 0; i < 100 && !up; i++) {
                up = tgtadm(t, "--op", "show", "--mode", "target", NULL) == 0;
                if (!up)
                        usleep(50000);
        }
        if (!up)
                return false;
        _cleanup_free_ char *l1 = path_join(t->dir, "lun1.img");
        _cleanup_free_ char *l2 = path_join(t->dir, "lun2.img");
        int fd = open(l1, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_int_equal(ftruncate(fd, 8 * MiB), 0);
        close(fd);
        fd = open(l2, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_int_equal(ftruncate(fd, 4 * MiB), 0);
        close(fd);
        return tgtadm(t, "--op", "new", "--mode", "target", "--tid", "1", "-T", TARGET, NULL) ==
                       0 &&
               tgtadm(t, "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b",
                      l1, NULL) == 0 &&
               tgtadm(t, "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "2", "-b",
                      l2, NULL) == 0 &&
               tgtadm(t, "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL", NULL) == 0;
}

static void tgt_stop(struct tgt *t) {
        if (t->pid > 0) {
                kill(t->pid, SIGTERM);
                for (int i = 0; i < 100; i++) {
                        if (waitpid(t->pid, NULL, WNOHANG) == t->pid) {
                                t->pid = 0;
                                break;
                        }
                        usleep(50000);
                }
                if (t->pid > 0) {
                        kill(t->pid, SIGKILL);
                        waitpid(t->pid, NULL, 0);
                }
        }
        char path[64];
        snprintf(path, sizeof(path), "/var/run/tgtd/socket.%s", t->ctl);
        (void)unlink(path);
        snprintf(path, sizeof(path), "/var/run/tgtd/socket.%s.lock", t->ctl);
        (void)unlink(path);
        if (t->dir)
                test_rm_rf(t->dir);
        free(t->dir);
}

static void expect_luns(const struct drv_iscsi_direct_result *res) {
        assert_int_equal(res->n_luns, 2);
        assert_int_equal(res->luns[0].lun, 1);
        assert_int_equal(res->luns[0].capacity, 8 * MiB);
        assert_int_equal(res->luns[0].block_size, 512);
        assert_int_equal(res->luns[1].lun, 2);
        assert_int_equal(res->luns[1].capacity, 4 * MiB);
}

static void test_direct_tgtd(void **state) {
        (void)state;
        struct tgt t = {0};
        if (!tgt_start(&t)) {
                tgt_stop(&t);
                print_message("# needs root and a working tgtd/tgtadm (Debian: tgt)\n");
                skip();
        }
        struct pool_def *p = mk_pool(POOL_ISCSI_DIRECT, "127.0.0.1", t.port, TARGET);
        struct dv_error err = DV_ERROR_INIT;
        struct drv_iscsi_direct_result res = {0};
        int r = drv_iscsi_direct_probe(p, 0, &res, &err);
        if (r < 0)
                fail_msg("probe: %s", dv_error_message(&err));
        expect_luns(&res);
        print_message("# LUN 1: %s %s\n", res.luns[0].vendor, res.luns[0].product);
        drv_iscsi_direct_result_done(&res);

        /* Through the driver: the first observe waits for the first answer. */
        const struct storage_driver *drv = &storage_driver_iscsi_direct;
        struct pool_status st = {0};
        assert_int_equal(drv->pool_observe(p, &st, &err), 0);
        assert_int_equal(st.state, POOL_STATE_ACTIVE);
        assert_int_equal(st.capacity, 12 * MiB);
        pool_status_done(&st);
        struct vol_status *v = NULL;
        size_t n = 0;
        assert_int_equal(drv->vol_list(p, &v, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0].name, "unit:0:0:1");
        assert_int_equal(v[0].capacity, 8 * MiB);
        assert_string_equal(v[1].name, "unit:0:0:2");
        assert_int_equal(v[1].capacity, 4 * MiB);
        vol_status_array_free(v, n);
        drv_iscsi_direct_cache_reset();

        /* CHAP: the target now wants it. */
        assert_int_equal(tgtadm(&t, "--op", "new", "--mode", "account", "--user", "alice",
                                "--password", "s3cret-pass", NULL),
                         0);
        assert_int_equal(tgtadm(&t, "--op", "bind", "--mode", "account", "--tid", "1", "--user",
                                "alice", NULL),
                         0);
        r = drv_iscsi_direct_probe(p, 0, &res, &err);
        assert_true(r < 0);
        print_message("# without CHAP: %s\n", dv_error_message(&err));
        assert_non_null(strstr(dv_error_message(&err), "login to iSCSI target " TARGET));
        dv_error_clear(&err);

        _cleanup_free_ char *sdir = test_mkdtemp("iscsi-secrets");
        drv_iscsi_set_secrets_dir(sdir);
        write_secret(sdir, "tgt-chap", "s3cret-pass\n", 0600);
        set_auth(p, "alice", "tgt-chap");
        r = drv_iscsi_direct_probe(p, 0, &res, &err);
        if (r < 0)
                fail_msg("probe with CHAP: %s", dv_error_message(&err));
        expect_luns(&res);
        drv_iscsi_direct_result_done(&res);

        write_secret(sdir, "tgt-chap", "wrong-pass\n", 0600);
        r = drv_iscsi_direct_probe(p, 0, &res, &err);
        assert_true(r < 0);
        assert_non_null(strstr(dv_error_message(&err), "login to iSCSI target"));
        dv_error_clear(&err);
        write_secret(sdir, "tgt-chap", "s3cret-pass\n", 0644);
        assert_int_equal(drv_iscsi_direct_probe(p, 0, &res, &err), -EPERM);
        dv_error_clear(&err);

        drv_iscsi_set_secrets_dir(NULL);
        test_rm_rf(sdir);
        free_pool(p);
        tgt_stop(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_argv),
                cmocka_unit_test(test_parse_sessions),
                cmocka_unit_test(test_parse_discovery),
                cmocka_unit_test(test_secrets),
                cmocka_unit_test(test_sysfs),
                cmocka_unit_test(test_start_error_path),
                cmocka_unit_test(test_direct_names),
                cmocka_unit_test(test_direct_closed_port),
                cmocka_unit_test(test_direct_silent_target),
                cmocka_unit_test(test_direct_tgtd),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
