/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network driver for real, as root, inside a network namespace of a forked child
 * (the host's own network is never touched): the netlink layer (bridge, MAC, MTU, STP,
 * delay, link state, IPv4 and IPv6 addresses), then the glue the engine calls
 * (network_apply/observe/stop with the firewall and dnsmasq), plus the pure bridge naming. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/network.h"
#include "drivers/network/bridge.h"
#include "drivers/network/dnsmasq.h"
#include "model/network.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"

/* ---- running a check in a namespace of its own ------------------------------------------- */

#define EXIT_SKIP 77

/* cmocka's assertions longjmp into the runner, which must not happen in a forked child:
 * the child reports with its exit status instead and runs its clean-up first. */
static void (*child_cleanup)(void);

_printf_(3, 4) static _Noreturn void child_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "# %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (child_cleanup)
                child_cleanup();
        _exit(1);
}

#define CHECK(cond)                                                                \
        do {                                                                       \
                if (!(cond))                                                       \
                        child_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
        } while (0)

/* A call that fills a dv_error: on failure, show the error. */
#define CHECK_OK(call, errp)                                                                       \
        do {                                                                                       \
                int r_ = (call);                                                                   \
                if (r_ < 0)                                                                        \
                        child_fail(__FILE__, __LINE__, "%s failed: %s (%s)", #call, strerror(-r_), \
                                   strna(dv_error_message(errp)));                                 \
        } while (0)

static void run_in_netns(void (*fn)(void)) {
        if (geteuid() != 0) {
                print_message("# needs root for a network namespace of its own\n");
                skip();
        }
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0) {
                        fprintf(stderr, "# unshare(CLONE_NEWNET) failed: %s\n", strerror(errno));
                        _exit(EXIT_SKIP);
                }
                fn();
                /* exit, not _exit: under ASan the leak check runs at exit. */
                exit(0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SKIP)
                skip();
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail_msg("the child in its network namespace failed (status 0x%x)", st);
}

static struct nl_addr addr(const char *s, unsigned prefix) {
        struct nl_addr a = {.family = strchr(s, ':') ? AF_INET6 : AF_INET, .prefix = prefix};
        if (inet_pton(a.family, s, a.a) != 1)
                abort();
        return a;
}

static bool has_addr(const struct nl_addr *v, size_t n, const struct nl_addr *a) {
        for (size_t i = 0; i < n; i++)
                if (v[i].family == a->family && v[i].prefix == a->prefix &&
                    memcmp(v[i].a, a->a, a->family == AF_INET ? 4 : 16) == 0)
                        return true;
        return false;
}

static bool ipv6_enabled(void) {
        return access("/proc/sys/net/ipv6", F_OK) == 0;
}

/* ---- netlink ------------------------------------------------------------------------------- */

static void bridge_child(void) {
        struct dv_error err = DV_ERROR_INIT;
        struct nl_link l;
        const char *br = "dvtest0";

        CHECK(nl_link_get(br, &l, &err) == -ENODEV);
        CHECK(!dv_error_failed(&err));
        CHECK(nl_link_get("lo", &l, &err) == 0);
        CHECK(l.ifindex == 1 && streq(l.name, "lo") && streq(l.kind, ""));
        CHECK(nl_link_get("a-name-that-is-far-too-long", &l, &err) == -EINVAL);
        dv_error_clear(&err);

        CHECK_OK(nl_bridge_create(br, &err), &err);
        CHECK(nl_bridge_create(br, &err) == -EEXIST);
        CHECK(strstr(dv_error_message(&err), "taken"));
        dv_error_clear(&err);
        /* A name taken by something else is reported as not a bridge. */
        CHECK(nl_bridge_get("lo", NULL, NULL, &err) == -EMEDIUMTYPE);
        dv_error_clear(&err);

        CHECK_OK(nl_link_get(br, &l, &err), &err);
        CHECK(l.ifindex > 1 && streq(l.name, br) && streq(l.kind, "bridge"));
        CHECK(!l.up && l.has_mac && l.master == 0);
        int ifindex = l.ifindex;

        const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        CHECK_OK(nl_link_set(br, mac, 9000, 1, &err), &err);
        CHECK_OK(nl_link_get(br, &l, &err), &err);
        CHECK(memcmp(l.mac, mac, 6) == 0 && l.mtu == 9000 && l.up && l.ifindex == ifindex);
        CHECK_OK(nl_link_set(br, NULL, 0, 0, &err), &err);
        CHECK_OK(nl_link_get(br, &l, &err), &err);
        CHECK(!l.up && l.mtu == 9000 && memcmp(l.mac, mac, 6) == 0);
        CHECK(nl_link_set("dvnothere", NULL, 1500, -1, &err) == -ENODEV);
        dv_error_clear(&err);

        /* STP and forward delay, in both orders the kernel is picky about. */
        int stp = -1;
        uint32_t delay = 0;
        CHECK_OK(nl_bridge_set(br, 0, 0, &err), &err);
        CHECK_OK(nl_bridge_get(br, &stp, &delay, &err), &err);
        CHECK(stp == 0 && delay == 0);
        CHECK_OK(nl_bridge_set(br, 1, 500, &err), &err);
        CHECK_OK(nl_bridge_get(br, &stp, &delay, &err), &err);
        CHECK(stp == 1 && delay == 500);
        CHECK(nl_bridge_set(br, -1, 100, &err) == -ERANGE); /* 1 s with STP on */
        CHECK(strstr(dv_error_message(&err), "between 2 and 30 s"));
        dv_error_clear(&err);
        CHECK_OK(nl_bridge_set(br, 0, 0, &err), &err);
        CHECK_OK(nl_bridge_get(br, &stp, &delay, &err), &err);
        CHECK(stp == 0 && delay == 0);
        /* Switching STP on clamps a short delay to 2 s. */
        CHECK_OK(nl_bridge_set(br, 1, -1, &err), &err);
        CHECK_OK(nl_bridge_get(br, &stp, &delay, &err), &err);
        CHECK(stp == 1 && delay == 200);
        CHECK_OK(nl_bridge_set(br, 0, -1, &err), &err);

        /* Addresses. */
        struct nl_addr *v = NULL;
        size_t n = 99;
        CHECK_OK(nl_addr_list(ifindex, &v, &n, &err), &err);
        CHECK(n == 0 && !v);
        struct nl_addr a4 = addr("192.0.2.1", 24), b4 = addr("198.51.100.1", 25);
        CHECK_OK(nl_addr_add(ifindex, &a4, &err), &err);
        CHECK_OK(nl_addr_add(ifindex, &a4, &err), &err); /* again: no error */
        CHECK_OK(nl_addr_add(ifindex, &b4, &err), &err);
        bool v6 = ipv6_enabled();
        struct nl_addr a6 = addr("2001:db8::1", 64);
        if (v6)
                CHECK_OK(nl_addr_add(ifindex, &a6, &err), &err);
        CHECK_OK(nl_link_set(br, NULL, 0, 1, &err), &err);
        CHECK_OK(nl_addr_list(ifindex, &v, &n, &err), &err);
        CHECK(n == (v6 ? 3u : 2u));
        CHECK(has_addr(v, n, &a4) && has_addr(v, n, &b4));
        if (v6)
                CHECK(has_addr(v, n, &a6)); /* and not the fe80:: link-local one */
        char s[NL_ADDR_STRLEN];
        CHECK(streq(nl_addr_format(&a4, s, sizeof(s)), "192.0.2.1/24"));
        CHECK(streq(nl_addr_format(&a6, s, sizeof(s)), "2001:db8::1/64"));
        free(v);
        v = NULL;

        CHECK_OK(nl_addr_del(ifindex, &b4, &err), &err);
        CHECK_OK(nl_addr_del(ifindex, &b4, &err), &err); /* absent: fine */
        if (v6)
                CHECK_OK(nl_addr_del(ifindex, &a6, &err), &err);
        CHECK_OK(nl_addr_list(ifindex, &v, &n, &err), &err);
        CHECK(n == 1 && has_addr(v, n, &a4));
        free(v);
        v = NULL;

        struct nl_addr bad = addr("192.0.2.1", 33);
        CHECK(nl_addr_add(ifindex, &bad, &err) == -EINVAL);
        dv_error_clear(&err);

        /* Addresses of another interface are not listed. */
        CHECK_OK(nl_addr_list(1, &v, &n, &err), &err);
        CHECK(!has_addr(v, n, &a4));
        free(v);

        CHECK_OK(nl_link_delete(br, &err), &err);
        CHECK(nl_link_get(br, &l, &err) == -ENODEV);
        CHECK_OK(nl_link_delete(br, &err), &err); /* absent: fine */
        dv_error_clear(&err);
}

static void test_bridge(void **state) {
        (void)state;
        run_in_netns(bridge_child);
}

/* ---- veth pairs and network namespaces ----------------------------------------------------- */

/* The MAC of name through SIOCGIFHWADDR (not netlink: a second opinion). */
static bool hwaddr_is(const char *name, const uint8_t mac[6]) {
        struct ifreq ifr = {0};
        if (strlen(name) >= sizeof(ifr.ifr_name))
                return false;
        memcpy(ifr.ifr_name, name, strlen(name) + 1);
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return false;
        int r = ioctl(s, SIOCGIFHWADDR, &ifr);
        close(s);
        return r == 0 && memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) == 0;
}

static const uint8_t veth_mac[6] = {0xfe, 0x54, 0x00, 0xab, 0xcd, 0x01};
static const uint8_t peer_mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x01};

/* In a network namespace of its own: says so on ready, waits for go, then checks that
 * the moved peer is there as eth7 (with its MAC, down) and not under its old name. */
static _Noreturn void netns_holder(int ready, int go) {
        if (unshare(CLONE_NEWNET) < 0 || write(ready, "r", 1) != 1)
                _exit(2);
        char c;
        if (read(go, &c, 1) != 1)
                _exit(3);
        struct nl_link l;
        if (if_nametoindex("eth7") == 0 || if_nametoindex("dvpeer0") != 0)
                _exit(4);
        if (!hwaddr_is("eth7", peer_mac))
                _exit(5);
        if (nl_link_get("eth7", &l, NULL) < 0 || !streq(l.kind, "veth") || l.up)
                _exit(6);
        /* The second peer's rename was refused after its move (the kernel's order): it is
         * here under its old name. */
        if (if_nametoindex("dvpeer2") == 0 || if_nametoindex("eth8") != 0)
                _exit(7);
        if (if_nametoindex("eth9") == 0)
                _exit(8);
        _exit(0);
}

static void veth_child(void) {
        struct dv_error err = DV_ERROR_INIT;
        struct nl_link l;

        CHECK_OK(nl_veth_create("dvveth0", veth_mac, "dvpeer0", peer_mac, &err), &err);
        CHECK(if_nametoindex("dvveth0") > 0 && if_nametoindex("dvpeer0") > 0);
        CHECK(hwaddr_is("dvveth0", veth_mac) && hwaddr_is("dvpeer0", peer_mac));
        CHECK_OK(nl_link_get("dvveth0", &l, &err), &err);
        CHECK(streq(l.kind, "veth") && l.has_mac && memcmp(l.mac, veth_mac, 6) == 0 && !l.up);
        CHECK_OK(nl_link_get("dvpeer0", &l, &err), &err);
        CHECK(streq(l.kind, "veth") && memcmp(l.mac, peer_mac, 6) == 0);

        /* Either name taken: -EEXIST naming it, and nothing half-made left behind. */
        CHECK(nl_veth_create("dvveth0", NULL, "dvpeer9", NULL, &err) == -EEXIST);
        CHECK(strstr(dv_error_message(&err), "the name dvveth0 is taken"));
        dv_error_clear(&err);
        CHECK(nl_veth_create("dvveth9", NULL, "dvpeer0", NULL, &err) == -EEXIST);
        CHECK(strstr(dv_error_message(&err), "the name dvpeer0 is taken"));
        dv_error_clear(&err);
        CHECK(nl_veth_create("dvveth9", NULL, "lo", NULL, &err) == -EEXIST);
        dv_error_clear(&err);
        CHECK(if_nametoindex("dvveth9") == 0 && if_nametoindex("dvpeer9") == 0);
        CHECK(nl_veth_create("dvveth9", NULL, "dvveth9", NULL, &err) == -EINVAL);
        dv_error_clear(&err);
        CHECK(nl_veth_create("dvveth9", NULL, "a-name-that-is-far-too-long", NULL, &err) ==
              -EINVAL);
        dv_error_clear(&err);

        /* No MACs: the kernel picks them. */
        CHECK_OK(nl_veth_create("dvveth1", NULL, "dvpeer1", NULL, &err), &err);
        CHECK_OK(nl_link_get("dvpeer1", &l, &err), &err);
        CHECK(streq(l.kind, "veth") && l.has_mac);
        CHECK_OK(nl_link_delete("dvveth1", &err), &err); /* takes its peer along */
        CHECK(if_nametoindex("dvveth1") == 0 && if_nametoindex("dvpeer1") == 0);

        /* The peer into another process's namespace, renamed on the way. */
        int ready[2], go[2];
        CHECK(pipe2(ready, O_CLOEXEC) == 0 && pipe2(go, O_CLOEXEC) == 0);
        fflush(NULL);
        pid_t holder = fork();
        CHECK(holder >= 0);
        if (holder == 0) {
                close(ready[0]);
                close(go[1]);
                netns_holder(ready[1], go[0]);
        }
        close(ready[1]);
        close(go[0]);
        char c;
        CHECK(read(ready[0], &c, 1) == 1);
        CHECK_OK(nl_link_set_netns("dvpeer0", holder, "eth7", &err), &err);
        CHECK(if_nametoindex("dvpeer0") == 0 && if_nametoindex("eth7") == 0);
        CHECK(nl_link_get("dvpeer0", &l, &err) == -ENODEV);
        CHECK(if_nametoindex("dvveth0") > 0); /* the host end stays */

        /* eth7 is taken there now: -EEXIST; the kernel renames after the move, so the link
         * went there under its old name, and the message says so. */
        CHECK_OK(nl_veth_create("dvveth2", NULL, "dvpeer2", NULL, &err), &err);
        CHECK(nl_link_set_netns("dvpeer2", holder, "eth7", &err) == -EEXIST);
        CHECK(strstr(dv_error_message(&err), "cannot be renamed there: the name eth7 is taken"));
        dv_error_clear(&err);
        CHECK(if_nametoindex("dvpeer2") == 0);
        /* A link whose own name is taken there arrives under the new name at once. */
        CHECK_OK(nl_veth_create("dvveth3", NULL, "eth7", NULL, &err), &err);
        CHECK_OK(nl_link_set_netns("eth7", holder, "eth9", &err), &err);
        CHECK(if_nametoindex("eth7") == 0 && if_nametoindex("eth9") == 0);
        CHECK_OK(nl_veth_create("dvveth4", NULL, "dvpeer4", NULL, &err), &err);
        CHECK(nl_link_set_netns("dvnothere", holder, "eth8", &err) == -ENODEV);
        CHECK(strstr(dv_error_message(&err), "does not exist"));
        dv_error_clear(&err);

        CHECK(write(go[1], "g", 1) == 1);
        int st = 0;
        CHECK(waitpid(holder, &st, 0) == holder);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                child_fail(__FILE__, __LINE__, "the namespace holder says %d (status 0x%x)",
                           WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
        close(ready[0]);
        close(go[1]);
        CHECK(nl_link_set_netns("dvpeer4", holder, "eth8", &err) == -ESRCH);
        dv_error_clear(&err);

        /* Its namespace gone, the peer went with it, and with the peer our end (the kernel
         * cleans up namespaces asynchronously: give it a moment). */
        for (int i = 0; i < 500 && (if_nametoindex("dvveth0") > 0 ||
                                    if_nametoindex("dvveth2") > 0 || if_nametoindex("dvveth3") > 0);
             i++)
                usleep(10000);
        CHECK(if_nametoindex("dvveth0") == 0 && if_nametoindex("dvveth2") == 0 &&
              if_nametoindex("dvveth3") == 0);
        CHECK(if_nametoindex("dvpeer4") > 0);
        CHECK_OK(nl_link_delete("dvveth4", &err), &err);
        dv_error_clear(&err);
}

static void test_veth(void **state) {
        (void)state;
        run_in_netns(veth_child);
}

/* ---- bridge names (pure) -------------------------------------------------------------------- */

static void test_bridge_name(void **state) {
        (void)state;
        struct network_def d = {.name = (char *)"lan"};
        _cleanup_free_ char *a = network_bridge_name(&d);
        assert_string_equal(a, "dv-lan");
        d.name = (char *)"twelve-chars"; /* "dv-" + 12 = 15 bytes: still fits */
        _cleanup_free_ char *b = network_bridge_name(&d);
        assert_string_equal(b, "dv-twelve-chars");
        d.name = (char *)"thirteen-char"; /* 16 bytes: hashed */
        _cleanup_free_ char *c = network_bridge_name(&d);
        assert_int_equal(strlen(c), 15);
        assert_true(strncmp(c, "dv-", 3) == 0);
        assert_null(network_ifname_problem(c));
        d.name = (char *)"a+b"; /* '+' is no interface name character: hashed */
        _cleanup_free_ char *e = network_bridge_name(&d);
        assert_int_equal(strlen(e), 15);
        assert_null(network_ifname_problem(e));
        d.name = (char *)"thirteen-char";
        _cleanup_free_ char *c2 = network_bridge_name(&d);
        assert_string_equal(c, c2); /* stable */
        d.bridge.name = (char *)"virbr7";
        _cleanup_free_ char *f = network_bridge_name(&d);
        assert_string_equal(f, "virbr7");
}

/* ---- the glue: apply, observe, stop ------------------------------------------------------- */

static char *glue_dir;

static struct dv_object *net_parse(const char *xml) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse(xml, strlen(xml), "inline.xml", &o, &err) < 0) {
                dv_error_print(stderr, &err);
                child_fail(__FILE__, __LINE__, "the test's network XML was refused");
        }
        dv_error_clear(&err);
        return o;
}

static const char *dirs(const char *sub) {
        static char run[512], st[512];
        char *b = streq(sub, "run") ? run : st;
        snprintf(b, 512, "%s/%s", glue_dir, sub);
        return b;
}

/* dnsmasq daemonizes into this namespace and would keep it alive: stop it by its pidfile. */
static void glue_cleanup(void) {
        struct dv_error e = DV_ERROR_INIT;
        (void)dnsmasq_stop("dvnat", dirs("run"), &e);
        (void)dnsmasq_stop("dviso", dirs("run"), &e);
        dv_error_clear(&e);
}

static bool nft_table(char **ret_out) {
        char *argv[] = {(char *)"/usr/sbin/nft", (char *)"list",     (char *)"table",
                        (char *)"inet",          (char *)"declvirt", NULL};
        struct cmd_opts opts = {.allow_nonzero = true};
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        CHECK_OK(cmd_run(argv, &opts, &res, &err), &err);
        bool ok = res.exit_status == 0;
        if (ret_out)
                *ret_out = TAKE_PTR(res.out);
        cmd_result_done(&res);
        return ok;
}

static bool pid_alive(pid_t pid) {
        char path[64], *s = NULL;
        size_t len;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_full_file(path, 4096, &s, &len) < 0)
                return false;
        const char *p = strrchr(s, ')');
        bool alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
        free(s);
        return alive;
}

static bool read_flag(const char *path) {
        char *s = NULL;
        size_t len;
        bool on = read_full_file(path, 64, &s, &len) >= 0 && s[0] == '1';
        free(s);
        return on;
}

#define NAT_XML(range_end, bridge)                                                    \
        "<network><name>dvnat</name><forward mode='nat'/><bridge name='" bridge "'/>" \
        "<mac address='52:54:00:0a:0b:0c'/>"                                          \
        "<ip address='192.0.2.1' prefix='24'><dhcp>"                                  \
        "<range start='192.0.2.100' end='" range_end "'/></dhcp></ip>"                \
        "<ip family='ipv6' address='2001:db8:ca2::1' prefix='64'/></network>"

static void observe(const struct network_def *def, struct net_status *st) {
        struct dv_error err = DV_ERROR_INIT;
        net_status_done(st);
        CHECK_OK(network_observe(def, st, &err), &err);
        dv_error_clear(&err);
}

static void glue_child(void) {
        struct dv_error err = DV_ERROR_INIT;
        struct net_status st = {0};
        struct nl_link l;
        _cleanup_free_ char *out = NULL;

        child_cleanup = glue_cleanup;
        network_driver_set_dirs(dirs("run"), dirs("state"));
        if (!ipv6_enabled()) {
                fprintf(stderr, "# IPv6 is disabled\n");
                _exit(EXIT_SKIP);
        }

        struct dv_object *o1 = net_parse(NAT_XML("192.0.2.199", "dvbr-nat"));
        const struct network_def *def = o1->def.network;

        observe(def, &st);
        CHECK(st.state == NET_ABSENT);

        /* First apply: everything is created. */
        CHECK_OK(network_apply(NULL, false, def, false, &err), &err);
        CHECK_OK(nl_link_get("dvbr-nat", &l, &err), &err);
        CHECK(streq(l.kind, "bridge") && l.up);
        int ifindex = l.ifindex;
        struct nl_addr *v = NULL;
        size_t n = 0;
        CHECK_OK(nl_addr_list(ifindex, &v, &n, &err), &err);
        CHECK(n == 2);
        struct nl_addr a4 = addr("192.0.2.1", 24), a6 = addr("2001:db8:ca2::1", 64);
        CHECK(has_addr(v, n, &a4) && has_addr(v, n, &a6));
        free(v);
        CHECK(nft_table(&out));
        CHECK(strstr(out, "masquerade") && strstr(out, "dvbr-nat"));
        free(TAKE_PTR(out));
        CHECK(read_flag("/proc/sys/net/ipv4/ip_forward"));
        CHECK(read_flag("/proc/sys/net/ipv6/conf/all/forwarding"));

        observe(def, &st);
        if (st.drift)
                fprintf(stderr, "# drift: %s\n", st.drift);
        CHECK(st.state == NET_ACTIVE && !st.drift && !st.reason);
        CHECK(st.ifindex == ifindex && streq(st.bridge, "dvbr-nat"));
        CHECK(streq(st.mac, "52:54:00:0a:0b:0c"));
        pid_t pid = st.dnsmasq_pid;
        CHECK(pid > 0 && pid_alive(pid));

        /* Again: nothing changes. */
        CHECK_OK(network_apply(def, true, def, true, &err), &err);
        observe(def, &st);
        CHECK(st.state == NET_ACTIVE && !st.drift);
        CHECK(st.ifindex == ifindex && st.dnsmasq_pid == pid);

        /* A DHCP change restarts dnsmasq only. */
        struct dv_object *o2 = net_parse(NAT_XML("192.0.2.150", "dvbr-nat"));
        const struct network_def *def2 = o2->def.network;
        observe(def2, &st);
        CHECK(st.state == NET_ACTIVE && st.drift &&
              streq(st.drift, "dnsmasq configuration out of date"));
        CHECK_OK(network_apply(def, true, def2, true, &err), &err);
        observe(def2, &st);
        CHECK(st.state == NET_ACTIVE && !st.drift);
        CHECK(st.ifindex == ifindex && st.dnsmasq_pid > 0 && st.dnsmasq_pid != pid);
        CHECK(!pid_alive(pid));
        pid = st.dnsmasq_pid;

        /* Drift on the bridge is seen and put right; a foreign address goes. */
        struct nl_addr extra = addr("198.51.100.7", 24);
        CHECK_OK(nl_addr_add(ifindex, &extra, &err), &err);
        CHECK_OK(nl_link_set("dvbr-nat", NULL, 1400, -1, &err), &err);
        CHECK_OK(nl_addr_del(ifindex, &a4, &err), &err);
        observe(def2, &st);
        CHECK(st.state == NET_ACTIVE && st.drift);
        fprintf(stderr, "# drift: %s\n", st.drift);
        CHECK(strstr(st.drift, "address 192.0.2.1/24 missing"));
        CHECK(strstr(st.drift, "address 198.51.100.7/24 not in the definition"));
        CHECK_OK(network_apply(def2, true, def2, true, &err), &err);
        observe(def2, &st);
        CHECK(st.state == NET_ACTIVE && !st.drift && st.ifindex == ifindex);

        /* The rules deleted behind the agent's back are reported and restored. */
        char *del[] = {(char *)"/usr/sbin/nft", (char *)"delete",   (char *)"table",
                       (char *)"inet",          (char *)"declvirt", NULL};
        CHECK_OK(cmd_run(del, NULL, NULL, &err), &err);
        observe(def2, &st);
        CHECK(st.drift && strstr(st.drift, "firewall rules missing"));
        CHECK_OK(network_apply(def2, true, def2, true, &err), &err);
        observe(def2, &st);
        CHECK(st.state == NET_ACTIVE && !st.drift);
        CHECK(st.dnsmasq_pid == pid);

        /* Refusals: a name taken by a non-bridge, a bridge that is not ours, a missing
         * forward device. Nothing of theirs is touched. */
        struct dv_object *lo = net_parse("<network><name>dvlo</name><bridge name='lo'/>"
                                         "<ip address='203.0.113.1' prefix='24'/></network>");
        observe(lo->def.network, &st);
        CHECK(st.state == NET_BROKEN && strstr(st.reason, "not a bridge"));
        CHECK(network_apply(NULL, false, lo->def.network, false, &err) == -EEXIST);
        dv_error_clear(&err);
        struct dv_object *other = net_parse("<network><name>dvother</name><bridge name='dvbr-nat'/>"
                                            "<ip address='203.0.113.1' prefix='24'/></network>");
        CHECK(network_apply(NULL, false, other->def.network, false, &err) == -EEXIST);
        CHECK(strstr(dv_error_message(&err), "not created by declvirt"));
        dv_error_clear(&err);
        CHECK_OK(nl_addr_list(ifindex, &v, &n, &err), &err);
        CHECK(n == 2 &&
              !has_addr(v, n,
                        &(struct nl_addr){.family = AF_INET, .prefix = 24, .a = {203, 0, 113, 1}}));
        free(v);
        struct dv_object *nodev = net_parse("<network><name>dvnodev</name>"
                                            "<forward mode='nat' dev='dvnothere0'/>"
                                            "<ip address='203.0.113.1' prefix='24'/></network>");
        observe(nodev->def.network, &st);
        CHECK(st.state == NET_BROKEN && strstr(st.reason, "dvnothere0 does not exist"));
        CHECK(network_apply(NULL, false, nodev->def.network, false, &err) == -ENODEV);
        dv_error_clear(&err);
        CHECK(nl_link_get("dv-dvnodev", &l, &err) == -ENODEV);
        struct dv_object *hostbr = net_parse("<network><name>dvhost</name><forward mode='bridge'/>"
                                             "<bridge name='dvnobr'/></network>");
        observe(hostbr->def.network, &st);
        CHECK(st.state == NET_BROKEN && strstr(st.reason, "dvnobr does not exist"));
        CHECK(network_apply(NULL, false, hostbr->def.network, false, &err) == -ENODEV);
        dv_error_clear(&err);
        CHECK(nl_link_get("dvnobr", &l, &err) == -ENODEV);

        /* An isolated network beside it: both networks' rules are in the one table. */
        struct dv_object *iso = net_parse("<network><name>dviso</name><bridge stp='off' delay='1'/>"
                                          "<ip address='198.51.100.1' prefix='25'/></network>");
        CHECK_OK(network_apply(NULL, false, iso->def.network, false, &err), &err);
        observe(iso->def.network, &st);
        CHECK(st.state == NET_ACTIVE && !st.drift && streq(st.bridge, "dv-dviso"));
        int stp = -1;
        uint32_t delay = 0;
        CHECK_OK(nl_bridge_get("dv-dviso", &stp, &delay, &err), &err);
        CHECK(stp == 0 && delay == 100);
        CHECK(nft_table(&out));
        CHECK(strstr(out, "dv-dviso") && strstr(out, "dvbr-nat"));
        free(TAKE_PTR(out));
        CHECK_OK(network_stop(iso->def.network, true, &err), &err);
        CHECK(nl_link_get("dv-dviso", &l, &err) == -ENODEV);
        CHECK(nft_table(&out));
        CHECK(!strstr(out, "dv-dviso") && strstr(out, "masquerade"));
        free(TAKE_PTR(out));

        /* A bridge rename re-creates the bridge (the old one was ours). */
        struct dv_object *o3 = net_parse(NAT_XML("192.0.2.150", "dvbr-nat2"));
        const struct network_def *def3 = o3->def.network;
        CHECK_OK(network_apply(def2, true, def3, false, &err), &err);
        CHECK(nl_link_get("dvbr-nat", &l, &err) == -ENODEV);
        observe(def3, &st);
        CHECK(st.state == NET_ACTIVE && !st.drift && streq(st.bridge, "dvbr-nat2"));
        CHECK(st.dnsmasq_pid > 0 && st.dnsmasq_pid != pid);
        pid = st.dnsmasq_pid;
        CHECK(nft_table(&out));
        CHECK(strstr(out, "dvbr-nat2") && !strstr(out, "\"dvbr-nat\""));
        free(TAKE_PTR(out));

        /* Stop: dnsmasq, the rules, the bridge; forwarding as it was. */
        CHECK_OK(network_stop(def3, true, &err), &err);
        CHECK(!pid_alive(pid));
        CHECK(nl_link_get("dvbr-nat2", &l, &err) == -ENODEV);
        CHECK(!nft_table(NULL));
        CHECK(!read_flag("/proc/sys/net/ipv4/ip_forward"));
        CHECK(!read_flag("/proc/sys/net/ipv6/conf/all/forwarding"));
        observe(def3, &st);
        CHECK(st.state == NET_ABSENT);
        CHECK_OK(network_stop(def3, true, &err), &err); /* again: nothing to do */

        net_status_done(&st);
        dv_error_clear(&err);
        for (struct dv_object *x[] = {o1, o2, o3, lo, other, nodev, hostbr, iso}, **p = x;
             p < x + ELEMENTSOF(x); p++)
                dv_object_free(*p);
        glue_cleanup();
}

static void test_glue(void **state) {
        (void)state;
        if (!test_have_program("dnsmasq") || access("/usr/sbin/nft", X_OK) < 0) {
                print_message("# dnsmasq or nft is not installed\n");
                skip();
        }
        run_in_netns(glue_child);
}

static int glue_setup(void **state) {
        (void)state;
        glue_dir = test_mkdtemp("dv-net-glue");
        return 0;
}

static int glue_teardown(void **state) {
        (void)state;
        test_rm_rf(glue_dir);
        free(glue_dir);
        glue_dir = NULL;
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bridge_name),
                cmocka_unit_test(test_bridge),
                cmocka_unit_test(test_veth),
                cmocka_unit_test_setup_teardown(test_glue, glue_setup, glue_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
