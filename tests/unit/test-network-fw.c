/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The networks' nftables table: fw_ruleset against the golden files in tests/data/network
 * (DECLVIRT_UPDATE_GOLDEN=1 rewrites them), then, as root inside a network namespace of
 * the test's own (forked child + unshare(CLONE_NEWNET)), the kernel accepting each golden
 * ruleset, atomic replacement, deletion, the cached presence check and ip_forward. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/network/firewall.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DIR "tests/data/network"

/* ---- fixtures -------------------------------------------------------------------------- */

static struct dv_object *load(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.xml", DIR, name);
        return test_load_object(path, DV_KIND_NETWORK);
}

/* The ruleset for the named fixtures (NULL-terminated). */
static char *ruleset_of(const char *const *names) {
        struct dv_object *objs[16] = {0};
        struct fw_network nets[16];
        size_t n = 0;
        for (; names[n]; n++) {
                assert_true(n < ELEMENTSOF(objs));
                objs[n] = load(names[n]);
                nets[n] = (struct fw_network){objs[n]->def.network,
                                              objs[n]->def.network->bridge.name};
        }
        char *text = NULL;
        assert_int_equal(fw_ruleset(n ? nets : NULL, n, &text), 0);
        assert_non_null(text);
        for (size_t i = 0; i < n; i++)
                dv_object_free(objs[i]);
        return text;
}

static const struct {
        const char *golden;
        const char *names[10];
} cases[] = {
        {"fw-nat.nft", {"nat", NULL}},
        {"fw-route.nft", {"route", NULL}},
        {"fw-isolated.nft", {"isolated", NULL}},
        {"fw-open.nft", {"open", NULL}},
        {"fw-mixed.nft", {"route", "nat", "nat-addr", "isolated", "open", "bridge", "dns", NULL}},
        {"fw-empty.nft", {NULL}},
};

static void check_golden(const char *name, const char *actual) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", DIR, name);
        test_check_golden_text(path, actual);
}

static void test_golden(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = ruleset_of(cases[i].names);
                check_golden(cases[i].golden, text);
        }
}

/* The text does not depend on the order the caller lists the networks in. */
static void test_order(void **state) {
        (void)state;
        static const char *const a[] = {"nat", "route", "isolated", NULL};
        static const char *const b[] = {"isolated", "route", "nat", NULL};
        _cleanup_free_ char *ta = ruleset_of(a);
        _cleanup_free_ char *tb = ruleset_of(b);
        assert_string_equal(ta, tb);
}

static void test_refusals(void **state) {
        (void)state;
        struct dv_object *o = load("nat");
        char *text = NULL;
        struct fw_network bad[] = {
                {o->def.network, "bad\"name"},
                {o->def.network, "a-name-that-is-too-long"},
                {o->def.network, ""},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(fw_ruleset(&bad[i], 1, &text), -EINVAL);
                assert_null(text);
        }
        /* open and bridge networks are not checked: they produce nothing. */
        struct dv_object *open = load("open");
        struct fw_network ok = {open->def.network, "whatever\"x"};
        assert_int_equal(fw_ruleset(&ok, 1, &text), 0);
        assert_null(strstr(text, "whatever"));
        free(text);
        assert_false(fw_network_needs_rules(open->def.network));
        assert_true(fw_network_needs_rules(o->def.network));
        dv_object_free(open);
        dv_object_free(o);
}

/* ---- in a network namespace of our own ------------------------------------------------ */

#define CHECK(cond, ...)                                                                         \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                            \
                        fputc('\n', stderr);                                                     \
                        return -1;                                                               \
                }                                                                                \
        } while (0)

/* Runs fn in a forked child that unshares its network namespace: nothing it does reaches
 * the host's network, and the namespace dies with the child. */
static int in_netns_status(int (*fn)(void *), void *arg) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0) {
                        fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
                        _exit(77);
                }
                int r = fn(arg);
                fflush(stdout);
                fflush(stderr);
                _exit(r == 0 ? 0 : 1);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                assert_int_equal(errno, EINTR);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
                return 77;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void skip_unless_root(const char *what) {
        if (geteuid() != 0) {
                print_message("%s: skipped, needs root for a network namespace\n", what);
                skip();
        }
}

static void in_netns_check(const char *what, int status) {
        if (status == 77) {
                print_message("%s: skipped, cannot create a network namespace\n", what);
                skip();
        }
        if (status != 0)
                fail_msg("%s failed inside its network namespace (see above)", what);
}

static void in_netns(const char *what, int (*fn)(void *), void *arg) {
        skip_unless_root(what);
        in_netns_check(what, in_netns_status(fn, arg));
}

/* `nft list table inet declvirt` through the command runner; NULL when there is none. */
static char *nft_list(void) {
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        char *out = NULL;
        int r = cmd_run((char *const[]){"/usr/sbin/nft", "list", "table", "inet", FW_TABLE, NULL},
                        &(struct cmd_opts){.allow_nonzero = true}, &res, &err);
        if (r >= 0 && res.exit_status == 0)
                out = strdup(res.out);
        cmd_result_done(&res);
        dv_error_clear(&err);
        return out;
}

static size_t count(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static int has(const char *bridge) {
        struct dv_error err = DV_ERROR_INIT;
        bool b = false;
        int r = fw_table_has_network(bridge, &b, &err);
        if (r < 0) {
                dv_error_print(stderr, &err);
                dv_error_clear(&err);
                return r;
        }
        return b;
}

static int apply(const char *text) {
        struct dv_error err = DV_ERROR_INIT;
        int r = fw_apply(text, &err);
        if (r < 0)
                dv_error_print(stderr, &err);
        dv_error_clear(&err);
        return r;
}

static int kernel_rulesets(void *arg) {
        (void)arg;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char path[256];
                size_t len = 0;
                snprintf(path, sizeof(path), "%s/%s", DIR, cases[i].golden);
                _cleanup_free_ char *text = test_read_file(path, &len);
                bool empty = !strstr(text, "chain");

                CHECK(apply(text) == 0, "%s was refused", path);
                _cleanup_free_ char *first = nft_list();
                if (empty) {
                        CHECK(!first, "%s left a table", path);
                        continue;
                }
                CHECK(first, "%s: no table after apply", path);
                /* Again: replaced as a whole, nothing doubled. */
                CHECK(apply(text) == 0, "%s was refused the second time", path);
                _cleanup_free_ char *second = nft_list();
                CHECK(second && streq(first, second), "%s: second apply changed the table:\n%s\n%s",
                      path, first, strempty(second));
                CHECK(count(first, "jump guest_cross") == 1, "%s: %s", path, first);
        }
        return 0;
}

static int kernel_nat(void *arg) {
        (void)arg;
        static const char *const names[] = {"nat", NULL};
        _cleanup_free_ char *text = ruleset_of(names);
        CHECK(apply(text) == 0, "nat refused");
        CHECK(apply(text) == 0, "nat refused the second time");
        _cleanup_free_ char *l = nft_list();
        CHECK(l, "no table");
        CHECK(count(l, "masquerade") == 3, "want 3 masquerade rules:\n%s", l);
        CHECK(count(l, "masquerade to :2048-60999") == 2, "port range not honoured:\n%s", l);
        CHECK(count(l, "iifname \"dv-nat1\" oifname \"dv-nat1\"") == 1, "%s", l);
        CHECK(strstr(l, "ct state established,related"), "%s", l);

        /* The presence check, and its cache following the ruleset generation. */
        CHECK(has("dv-nat1") == 1, "dv-nat1 not found");
        CHECK(has("dv-nat") == 0, "a prefix of the name matched");
        CHECK(has("dv-route") == 0, "dv-route found");
        static const char *const route[] = {"route", NULL};
        _cleanup_free_ char *rt = ruleset_of(route);
        CHECK(apply(rt) == 0, "route refused");
        CHECK(has("dv-nat1") == 0, "dv-nat1 still found after replacement (stale cache)");
        CHECK(has("dv-route") == 1, "dv-route not found");

        /* n == 0 deletes the table. */
        _cleanup_free_ char *none = NULL;
        CHECK(fw_ruleset(NULL, 0, &none) == 0, "fw_ruleset(0)");
        CHECK(apply(none) == 0, "delete refused");
        _cleanup_free_ char *gone = nft_list();
        CHECK(!gone, "table still there:\n%s", gone);
        CHECK(has("dv-route") == 0, "dv-route found without a table");
        CHECK(apply(none) == 0, "delete of an absent table refused");

        /* The snat variant with an address range and a forward dev loads too. */
        static const char *const addr[] = {"nat-addr", NULL};
        _cleanup_free_ char *at = ruleset_of(addr);
        CHECK(apply(at) == 0, "nat-addr refused");
        _cleanup_free_ char *al = nft_list();
        CHECK(al && strstr(al, "snat ip to 198.51.100.200-198.51.100.210:1024-65535"), "%s",
              strempty(al));
        CHECK(al && strstr(al, "oifname \"eth0\""), "%s", strempty(al));
        return 0;
}

static int kernel_error(void *arg) {
        (void)arg;
        struct dv_error err = DV_ERROR_INIT;
        const char *bad = "add table inet " FW_TABLE "\n"
                          "table inet " FW_TABLE " {\n"
                          "\tchain c {\n"
                          "\t\tiifname \"x\" frobnicate\n"
                          "\t}\n"
                          "}\n";
        int r = fw_apply(bad, &err);
        CHECK(r < 0, "bad ruleset accepted");
        const char *m = strempty(dv_error_message(&err));
        CHECK(strstr(m, "line 4") && strstr(m, "frobnicate"), "message: %s", m);
        dv_error_clear(&err);
        _cleanup_free_ char *l = nft_list();
        CHECK(!l, "a refused transaction left a table:\n%s", l);
        return 0;
}

static int write_str(const char *path, const char *s) {
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        int r = fputs(s, f) < 0 ? -EIO : 0;
        return fclose(f) == 0 ? r : -errno;
}

static char *read_trim(const char *path) {
        char *s = NULL;
        size_t len = 0;
        if (read_full_file(path, 64, &s, &len) < 0)
                return NULL;
        while (len > 0 && s[len - 1] == '\n')
                s[--len] = '\0';
        return s;
}

static int forward_one(int family, const char *sysctl, const char *record_dir,
                       const char *record_name) {
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *rec = path_join(record_dir, record_name);

        CHECK(write_str(sysctl, "0\n") == 0, "cannot reset %s", sysctl);
        CHECK(fw_ip_forward_on(family, record_dir, &err) == 0, "on: %s",
              strempty(dv_error_message(&err)));
        _cleanup_free_ char *v = read_trim(sysctl);
        CHECK(v && streq(v, "1"), "%s is %s after on", sysctl, strna(v));
        _cleanup_free_ char *p = read_trim(rec);
        CHECK(p && streq(p, "0"), "record %s holds %s", rec, strna(p));

        /* Once: a second call (now 1) keeps the first value seen. */
        CHECK(fw_ip_forward_on(family, record_dir, &err) == 0, "on again");
        _cleanup_free_ char *p2 = read_trim(rec);
        CHECK(p2 && streq(p2, "0"), "record overwritten with %s", strna(p2));

        CHECK(fw_ip_forward_restore(family, record_dir, &err) == 0, "restore: %s",
              strempty(dv_error_message(&err)));
        _cleanup_free_ char *v2 = read_trim(sysctl);
        CHECK(v2 && streq(v2, "0"), "%s is %s after restore", sysctl, strna(v2));
        CHECK(access(rec, F_OK) < 0, "record still there");
        /* Without a record: nothing to do. */
        CHECK(write_str(sysctl, "1\n") == 0, "cannot set %s", sysctl);
        CHECK(fw_ip_forward_restore(family, record_dir, &err) == 0, "restore without record");
        _cleanup_free_ char *v3 = read_trim(sysctl);
        CHECK(v3 && streq(v3, "1"), "restore without a record changed %s", sysctl);
        CHECK(write_str(sysctl, "0\n") == 0, "cannot reset %s", sysctl);
        dv_error_clear(&err);
        return 0;
}

static int kernel_forward(void *arg) {
        const char *dir = arg;
        CHECK(forward_one(AF_INET, "/proc/sys/net/ipv4/ip_forward", dir, "ip_forward.prev") == 0,
              "ipv4");
        if (access("/proc/sys/net/ipv6/conf/all/forwarding", F_OK) == 0)
                CHECK(forward_one(AF_INET6, "/proc/sys/net/ipv6/conf/all/forwarding", dir,
                                  "ipv6_forwarding.prev") == 0,
                      "ipv6");
        struct dv_error err = DV_ERROR_INIT;
        CHECK(fw_ip_forward_on(AF_UNIX, dir, &err) == -EAFNOSUPPORT, "AF_UNIX accepted");
        dv_error_clear(&err);
        return 0;
}

static void skip_without_nft(void) {
        if (access("/usr/sbin/nft", X_OK) < 0) {
                print_message(
                        "skipped: /usr/sbin/nft is not installed (Debian package nftables)\n");
                skip();
        }
}

static void test_kernel_rulesets(void **state) {
        (void)state;
        skip_without_nft();
        in_netns("kernel rulesets", kernel_rulesets, NULL);
}

static void test_kernel_nat(void **state) {
        (void)state;
        skip_without_nft();
        in_netns("nat table", kernel_nat, NULL);
}

static void test_kernel_error(void **state) {
        (void)state;
        skip_without_nft();
        in_netns("refused ruleset", kernel_error, NULL);
}

static void test_ip_forward(void **state) {
        (void)state;
        skip_unless_root("ip_forward");
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-fw");
        int status = in_netns_status(kernel_forward, dir);
        test_rm_rf(dir);
        in_netns_check("ip_forward", status);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden),     cmocka_unit_test(test_order),
                cmocka_unit_test(test_refusals),   cmocka_unit_test(test_kernel_rulesets),
                cmocka_unit_test(test_kernel_nat), cmocka_unit_test(test_kernel_error),
                cmocka_unit_test(test_ip_forward),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
