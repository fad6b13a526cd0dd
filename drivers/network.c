/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network driver the engine calls: compares a <network> with the bridge, the
 * firewall table and dnsmasq on the host, and converges them, doing only what differs. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "drivers/network.h"
#include "drivers/network/bridge.h"
#include "drivers/network/dnsmasq.h"
#include "drivers/network/firewall.h"
#include "model/xml.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"

#define DEFAULT_RUN_DIR   "/run/declvirt"
#define DEFAULT_STATE_DIR "/var/lib/declvirt/state"

/* The kernel's limits on the forward delay while STP is on (br_private.h), centiseconds. */
#define BR_DELAY_MIN_CS 200
#define BR_DELAY_MAX_CS 3000

/* ---- process-wide state, each part under its own lock ------------------------------------- */

static pthread_mutex_t dirs_lock = PTHREAD_MUTEX_INITIALIZER;
static char *dirs_run, *dirs_state;

/* The firewall registry: every network whose rules belong in the table, by name. The lock
 * is held across building and loading the table, so that two actions never load their
 * tables out of order. */
struct reg_entry {
        struct network_def *def; /* a deep copy: the caller's definition is short-lived */
        char *bridge;
};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hashmap *registry;
static char *fw_loaded; /* the text last loaded successfully, NULL */

/* Parsed leases per network, valid while the lease file's stat stays the same. */
struct lease_cache {
        struct stat st;
        struct dnsmasq_lease *leases;
        size_t n;
};
static pthread_mutex_t lease_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hashmap *lease_caches;

void network_driver_set_dirs(const char *run_dir, const char *state_dir) {
        char *r = run_dir ? strdup(run_dir) : NULL, *s = state_dir ? strdup(state_dir) : NULL;
        pthread_mutex_lock(&dirs_lock);
        free(dirs_run);
        free(dirs_state);
        dirs_run = r;
        dirs_state = s;
        pthread_mutex_unlock(&dirs_lock);
}

/* Copies, so that a reload changing them under a running action does no harm. */
static int get_dirs(char **ret_run, char **ret_state, struct dv_error *err) {
        pthread_mutex_lock(&dirs_lock);
        char *r = strdup(dirs_run ? dirs_run : DEFAULT_RUN_DIR);
        char *s = strdup(dirs_state ? dirs_state : DEFAULT_STATE_DIR);
        pthread_mutex_unlock(&dirs_lock);
        if (!r || !s) {
                free(r);
                free(s);
                return dv_error_oom(err);
        }
        *ret_run = r;
        *ret_state = s;
        return 0;
}

/* ---- small facts about a definition ------------------------------------------------------- */

char *network_bridge_name(const struct network_def *def) {
        char *s = NULL;
        if (def->bridge.name)
                return strdup(def->bridge.name);
        if (asprintf(&s, "dv-%s", def->name) < 0)
                return NULL;
        if (!network_ifname_problem(s))
                return s;
        free(s);
        /* Too long, or a character ('+') an interface name cannot carry. */
        char hex[HASH_HEX_LEN + 1];
        hash_hex(def->name, strlen(def->name), hex);
        if (asprintf(&s, "dv-%.12s", hex) < 0)
                return NULL;
        return s;
}

static bool is_bridge_mode(const struct network_def *def) {
        return def->forward.mode == NETWORK_FORWARD_BRIDGE;
}

static bool has_family(const struct network_def *def, int family) {
        for (size_t i = 0; i < def->n_ips; i++)
                if (def->ips[i].address.family == family)
                        return true;
        return false;
}

/* libvirt switches forwarding on for the modes that route through the host. */
static bool needs_forwarding(const struct network_def *def, int family) {
        return (def->forward.mode == NETWORK_FORWARD_NAT ||
                def->forward.mode == NETWORK_FORWARD_ROUTE) &&
               has_family(def, family);
}

static int parse_mac(const char *s, uint8_t mac[static 6]) {
        unsigned v[6];
        char end;
        if (!s || strlen(s) != 17 ||
            sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &end) != 6)
                return -EINVAL;
        for (size_t i = 0; i < 6; i++)
                mac[i] = (uint8_t)v[i];
        return 0;
}

static void format_mac(const uint8_t mac[static 6], char out[static 18]) {
        snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                 mac[5]);
}

/* The addresses the definition puts on the bridge. */
static int wanted_addrs(const struct network_def *def, struct nl_addr **ret, size_t *n,
                        struct dv_error *err) {
        struct nl_addr *v = calloc(def->n_ips ? def->n_ips : 1, sizeof(*v));
        size_t k = 0;
        if (!v)
                return dv_error_oom(err);
        for (size_t i = 0; i < def->n_ips; i++) {
                const struct network_ip *ip = &def->ips[i];
                if (ip->address.family != AF_INET && ip->address.family != AF_INET6)
                        continue;
                int prefix = network_ip_prefix(ip);
                if (prefix < 0) {
                        free(v);
                        return dv_error_add(err, -EINVAL, ip->line,
                                            "network %s: no prefix length for an <ip> address",
                                            def->name);
                }
                v[k].family = ip->address.family;
                memcpy(v[k].a, ip->address.a, sizeof(v[k].a));
                v[k].prefix = (unsigned)prefix;
                k++;
        }
        *ret = v;
        *n = k;
        return 0;
}

static bool addr_eq(const struct nl_addr *a, const struct nl_addr *b) {
        return a->family == b->family && a->prefix == b->prefix &&
               memcmp(a->a, b->a, a->family == AF_INET ? 4 : 16) == 0;
}

static bool addr_in(const struct nl_addr *v, size_t n, const struct nl_addr *a) {
        for (size_t i = 0; i < n; i++)
                if (addr_eq(&v[i], a))
                        return true;
        return false;
}

/* The forward delay the kernel will keep: with STP on it clamps into 2..30 s. */
static int64_t effective_delay_cs(int64_t want_cs, bool stp_on) {
        if (want_cs < 0 || !stp_on)
                return want_cs;
        return want_cs < BR_DELAY_MIN_CS   ? BR_DELAY_MIN_CS
               : want_cs > BR_DELAY_MAX_CS ? BR_DELAY_MAX_CS
                                           : want_cs;
}

/* A deep copy through the model's own format and parse, so that no field is forgotten
 * when the model grows. */
static int copy_def(const struct network_def *def, struct network_def **ret, struct dv_error *err) {
        _cleanup_buf_ struct buf b = BUF_INIT;
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        network_def_format(&b, def, NULL);
        if (b.oom)
                return dv_error_oom(err);
        /* Its own error object: the parser's warnings were reported when the file was read. */
        _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
        int r = dv_xml_parse(buf_str(&b), b.len, &doc, &e);
        if (r >= 0)
                r = network_def_parse(xmlDocGetRootElement(doc), ret, &e);
        if (r < 0)
                dv_error_add(err, r, 0, "network %s: cannot copy the definition: %s", def->name,
                             strna(dv_error_message(&e)));
        return r;
}

static void reg_entry_free(void *p) {
        struct reg_entry *e = p;
        if (!e)
                return;
        network_def_free(e->def);
        free(e->bridge);
        free(e);
}

/* Call with reg_lock held. */
static int registry_put_locked(const struct network_def *def, const char *bridge,
                               struct dv_error *err) {
        if (!registry) {
                registry = hashmap_new();
                if (!registry)
                        return dv_error_oom(err);
        }
        struct reg_entry *e = calloc(1, sizeof(*e));
        if (!e)
                return dv_error_oom(err);
        e->bridge = strdup(bridge);
        if (!e->bridge) {
                reg_entry_free(e);
                return dv_error_oom(err);
        }
        int r = copy_def(def, &e->def, err);
        if (r < 0) {
                reg_entry_free(e);
                return r;
        }
        void *old = NULL;
        r = hashmap_put(registry, def->name, e, &old);
        if (r < 0) {
                reg_entry_free(e);
                return dv_error_oom(err);
        }
        reg_entry_free(old);
        return 0;
}

static void registry_remove_locked(const char *name) {
        if (registry)
                reg_entry_free(hashmap_remove(registry, name));
}

/* Rebuilds the table from the registry and loads it, unless the same text is loaded
 * already and the table still holds check_bridge (NULL: skip that check). Call with
 * reg_lock held. */
static int fw_sync_locked(const char *check_bridge, bool force, struct dv_error *err) {
        size_t n = registry ? hashmap_size(registry) : 0, k = 0;
        _cleanup_free_ struct fw_network *nets = calloc(n ? n : 1, sizeof(*nets));
        _cleanup_free_ char *text = NULL;
        void *v;
        int r;

        if (!nets)
                return dv_error_oom(err);
        for (size_t i = 0; registry && hashmap_iter(registry, &i, NULL, &v);) {
                struct reg_entry *e = v;
                nets[k++] = (struct fw_network){.def = e->def, .bridge = e->bridge};
        }
        r = fw_ruleset(nets, k, &text);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot generate the firewall rules: %s",
                                    strerror(-r));
        if (!force && fw_loaded && streq(fw_loaded, text)) {
                bool has = true;
                if (check_bridge) {
                        r = fw_table_has_network(check_bridge, &has, err);
                        if (r < 0)
                                return r;
                }
                if (has)
                        return 0;
        }
        r = fw_apply(text, err);
        if (r < 0)
                return r;
        free(fw_loaded);
        fw_loaded = TAKE_PTR(text);
        return 0;
}

/* IP forwarding back to what it was for each family no registered network needs. Call
 * with reg_lock held. */
static int forwarding_restore_locked(const char *run_dir, struct dv_error *err) {
        static const int families[] = {AF_INET, AF_INET6};
        int ret = 0;
        for (size_t f = 0; f < ELEMENTSOF(families); f++) {
                bool needed = false;
                void *v;
                for (size_t i = 0; registry && hashmap_iter(registry, &i, NULL, &v);)
                        needed = needed ||
                                 needs_forwarding(((struct reg_entry *)v)->def, families[f]);
                if (needed)
                        continue;
                KEEP(ret, fw_ip_forward_restore(families[f], run_dir, err));
        }
        return ret;
}

static int read_sysctl_bool(const char *path, bool *ret) {
        _cleanup_free_ char *s = NULL;
        size_t len;
        int r = read_full_file(path, 64, &s, &len);
        if (r < 0)
                return r;
        *ret = len > 0 && s[0] != '0';
        return 0;
}

/* ---- leases --------------------------------------------------------------------------------- */

static void lease_cache_free(void *p) {
        struct lease_cache *c = p;
        if (!c)
                return;
        dnsmasq_leases_free(c->leases, c->n);
        free(c);
}

static int copy_leases(const struct dnsmasq_lease *src, size_t n, struct dnsmasq_lease **ret) {
        *ret = NULL;
        if (n == 0)
                return 0;
        struct dnsmasq_lease *l = calloc(n, sizeof(*l));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = src[i];
                l[i].hostname = NULL;
                if (src[i].hostname && !(l[i].hostname = strdup(src[i].hostname))) {
                        dnsmasq_leases_free(l, i);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

static bool same_stat(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The leases from the cache, reading the file again only when its stat changed. */
static int observe_leases(const char *name, const char *state_dir, struct net_status *st,
                          struct dv_error *err) {
        _cleanup_free_ char *path = NULL;
        struct stat s;
        int r;

        if (asprintf(&path, "%s/networks/%s.leases", state_dir, name) < 0)
                return dv_error_oom(err);
        pthread_mutex_lock(&lease_lock);
        if (stat(path, &s) < 0) {
                if (lease_caches)
                        lease_cache_free(hashmap_remove(lease_caches, name));
                pthread_mutex_unlock(&lease_lock);
                return 0; /* no lease file yet: no leases */
        }
        struct lease_cache *c = lease_caches ? hashmap_get(lease_caches, name) : NULL;
        if (!c || !same_stat(&c->st, &s)) {
                struct lease_cache *n = calloc(1, sizeof(*n));
                if (!n) {
                        pthread_mutex_unlock(&lease_lock);
                        return dv_error_oom(err);
                }
                n->st = s;
                r = dnsmasq_leases(name, state_dir, &n->leases, &n->n, err);
                if (r < 0) {
                        free(n);
                        pthread_mutex_unlock(&lease_lock);
                        return r;
                }
                if (!lease_caches)
                        lease_caches = hashmap_new();
                void *old = NULL;
                if (!lease_caches || hashmap_put(lease_caches, name, n, &old) < 0) {
                        lease_cache_free(n);
                        pthread_mutex_unlock(&lease_lock);
                        return dv_error_oom(err);
                }
                lease_cache_free(old);
                c = n;
        }
        r = copy_leases(c->leases, c->n, &st->leases);
        if (r >= 0)
                st->n_leases = c->n;
        pthread_mutex_unlock(&lease_lock);
        return r < 0 ? dv_error_oom(err) : 0;
}

static void forget_leases(const char *name) {
        pthread_mutex_lock(&lease_lock);
        if (lease_caches)
                lease_cache_free(hashmap_remove(lease_caches, name));
        pthread_mutex_unlock(&lease_lock);
}

/* ---- observe -------------------------------------------------------------------------------- */

void net_status_done(struct net_status *s) {
        if (!s)
                return;
        free(s->reason);
        free(s->drift);
        free(s->bridge);
        dnsmasq_leases_free(s->leases, s->n_leases);
        *s = (struct net_status){0};
}

_printf_(2, 3) static void drift_add(struct buf *b, const char *fmt, ...) {
        va_list ap;
        if (b->len > 0)
                buf_puts(b, "; ");
        va_start(ap, fmt);
        buf_vprintf(b, fmt, ap);
        va_end(ap);
}

_printf_(2, 3) static int set_broken(struct net_status *st, const char *fmt, ...) {
        va_list ap;
        st->state = NET_BROKEN;
        va_start(ap, fmt);
        int r = vasprintf(&st->reason, fmt, ap);
        va_end(ap);
        if (r < 0) {
                st->reason = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Forward mode bridge: someone else's bridge, or macvtap devices; looked at, never touched. */
static int observe_bridge_mode(const struct network_def *def, struct net_status *st,
                               struct dv_error *err) {
        struct nl_link l;
        int r;
        if (!def->bridge.name) {
                for (char **d = def->forward.interfaces; d && *d; d++) {
                        r = nl_link_get(*d, &l, err);
                        if (r == -ENODEV)
                                return set_broken(st, "forward interface %s does not exist", *d);
                        if (r < 0)
                                return r;
                }
                if (def->forward.dev) {
                        r = nl_link_get(def->forward.dev, &l, err);
                        if (r == -ENODEV)
                                return set_broken(st, "forward device %s does not exist",
                                                  def->forward.dev);
                        if (r < 0)
                                return r;
                }
                st->state = NET_ACTIVE;
                return 0;
        }
        r = nl_link_get(def->bridge.name, &l, err);
        if (r == -ENODEV)
                return set_broken(st,
                                  "host bridge %s does not exist (declvirt never creates it "
                                  "in forward mode 'bridge')",
                                  def->bridge.name);
        if (r < 0)
                return r;
        if (!streq(l.kind, "bridge"))
                return set_broken(st, "%s is not a bridge (%s)", def->bridge.name,
                                  *l.kind ? l.kind : "a plain interface");
        st->state = NET_ACTIVE;
        st->ifindex = l.ifindex;
        st->bridge = strdup(def->bridge.name);
        if (!st->bridge)
                return -ENOMEM;
        if (l.has_mac)
                format_mac(l.mac, st->mac);
        return 0;
}

static int observe_drift(const struct network_def *def, const struct nl_link *l, const char *bridge,
                         struct net_status *st, struct buf *drift, struct dv_error *err) {
        _cleanup_free_ struct nl_addr *want = NULL, *have = NULL;
        size_t n_want = 0, n_have = 0;
        char s[NL_ADDR_STRLEN];
        int r;

        uint8_t mac[6];
        if (def->mac && parse_mac(def->mac, mac) >= 0 &&
            (!l->has_mac || memcmp(mac, l->mac, 6) != 0))
                drift_add(drift, "mac %s, want %s", st->mac, def->mac);
        if (def->has_mtu && l->mtu != def->mtu)
                drift_add(drift, "mtu %u, want %llu", l->mtu, (unsigned long long)def->mtu);
        if (def->bridge.stp >= 0 || def->bridge.has_delay) {
                int stp = 0;
                uint32_t delay = 0;
                r = nl_bridge_get(bridge, &stp, &delay, err);
                if (r < 0)
                        return r;
                if (def->bridge.stp >= 0 && stp != def->bridge.stp)
                        drift_add(drift, "stp %s, want %s", stp ? "on" : "off",
                                  def->bridge.stp ? "on" : "off");
                if (def->bridge.has_delay) {
                        int64_t w = effective_delay_cs((int64_t)def->bridge.delay * 100, stp);
                        if ((int64_t)delay != w)
                                drift_add(drift, "forward delay %u.%02u s, want %lld.%02lld s",
                                          delay / 100, delay % 100, (long long)w / 100,
                                          (long long)w % 100);
                }
        }

        r = wanted_addrs(def, &want, &n_want, err);
        if (r < 0)
                return r;
        r = nl_addr_list(l->ifindex, &have, &n_have, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_want; i++)
                if (!addr_in(have, n_have, &want[i]))
                        drift_add(drift, "address %s missing",
                                  nl_addr_format(&want[i], s, sizeof(s)));
        for (size_t i = 0; i < n_have; i++)
                if (!addr_in(want, n_want, &have[i]))
                        drift_add(drift, "address %s not in the definition",
                                  nl_addr_format(&have[i], s, sizeof(s)));
        if (!l->up)
                drift_add(drift, "link down");

        if (fw_network_needs_rules(def)) {
                bool has = false;
                r = fw_table_has_network(bridge, &has, err);
                if (r < 0)
                        return r;
                if (!has)
                        drift_add(drift, "firewall rules missing");
                else {
                        /* After an agent restart the registry is empty: the rules in the
                         * table tell which networks were ours, and they must survive the
                         * next rebuild. A bridge that is not ours never has rules. */
                        pthread_mutex_lock(&reg_lock);
                        if (!registry || !hashmap_get(registry, def->name))
                                r = registry_put_locked(def, bridge, err);
                        pthread_mutex_unlock(&reg_lock);
                        if (r < 0)
                                return r;
                }
        }
        bool on;
        if (needs_forwarding(def, AF_INET) &&
            read_sysctl_bool("/proc/sys/net/ipv4/ip_forward", &on) >= 0 && !on)
                drift_add(drift, "IPv4 forwarding off");
        if (needs_forwarding(def, AF_INET6) &&
            read_sysctl_bool("/proc/sys/net/ipv6/conf/all/forwarding", &on) >= 0 && !on)
                drift_add(drift, "IPv6 forwarding off");
        return 0;
}

static int observe_dnsmasq(const struct network_def *def, const char *bridge, const char *run_dir,
                           const char *state_dir, struct net_status *st, struct buf *drift,
                           struct dv_error *err) {
        pid_t pid = 0;
        bool current = false;
        bool needed = dnsmasq_needed(def);
        int r = dnsmasq_status(def, bridge, run_dir, state_dir, &pid, &current, err);
        if (r < 0)
                return r;
        st->dnsmasq_pid = pid > 0 ? pid : 0;
        if (needed && pid <= 0)
                drift_add(drift, "dnsmasq not running");
        else if (needed && !current)
                drift_add(drift, "dnsmasq configuration out of date");
        else if (!needed && pid > 0)
                drift_add(drift, "dnsmasq running but not needed");
        if (!needed)
                return 0;
        return observe_leases(def->name, state_dir, st, err);
}

int network_observe(const struct network_def *def, struct net_status *ret, struct dv_error *err) {
        struct net_status st = {0};
        _cleanup_free_ char *run_dir = NULL, *state_dir = NULL, *bridge = NULL;
        _cleanup_buf_ struct buf drift = BUF_INIT;
        struct nl_link l;
        int r;

        *ret = (struct net_status){0};
        if (is_bridge_mode(def)) {
                r = observe_bridge_mode(def, &st, err);
                goto finish;
        }
        bridge = network_bridge_name(def);
        if (!bridge)
                return dv_error_oom(err);
        r = get_dirs(&run_dir, &state_dir, err);
        if (r < 0)
                return r;

        if (def->forward.dev) {
                r = nl_link_get(def->forward.dev, &l, err);
                if (r == -ENODEV) {
                        r = set_broken(&st, "forward device %s does not exist", def->forward.dev);
                        goto finish;
                }
                if (r < 0)
                        goto finish;
        }
        r = nl_link_get(bridge, &l, err);
        if (r == -ENODEV) {
                st.state = NET_ABSENT;
                r = 0;
                goto finish;
        }
        if (r < 0)
                goto finish;
        if (!streq(l.kind, "bridge")) {
                r = set_broken(&st,
                               "the name %s is taken by an interface that is not a bridge (%s)",
                               bridge, *l.kind ? l.kind : "a plain interface");
                goto finish;
        }
        st.state = NET_ACTIVE;
        st.ifindex = l.ifindex;
        st.bridge = TAKE_PTR(bridge);
        if (l.has_mac)
                format_mac(l.mac, st.mac);
        r = observe_drift(def, &l, st.bridge, &st, &drift, err);
        if (r < 0)
                goto finish;
        r = observe_dnsmasq(def, st.bridge, run_dir, state_dir, &st, &drift, err);
        if (r < 0)
                goto finish;
        if (drift.oom) {
                r = -ENOMEM;
                goto finish;
        }
        if (drift.len > 0)
                st.drift = buf_steal(&drift);

finish:
        if (r < 0) {
                if (r == -ENOMEM && !dv_error_failed(err))
                        dv_error_oom(err);
                net_status_done(&st);
                return r;
        }
        *ret = st;
        return 0;
}

/* ---- apply ---------------------------------------------------------------------------------- */

static int check_forward_dev(const struct network_def *def, struct dv_error *err) {
        struct nl_link l;
        if (!def->forward.dev)
                return 0;
        int r = nl_link_get(def->forward.dev, &l, err);
        if (r == -ENODEV)
                return dv_error_add(err, r, def->forward.line,
                                    "network %s: forward device %s does not exist", def->name,
                                    def->forward.dev);
        return r;
}

/* The bridge and its addresses, as def says. *created tells the caller what to undo. */
static int apply_bridge(const struct network_def *def, const char *bridge, bool adopt,
                        bool *created, struct dv_error *err) {
        _cleanup_free_ struct nl_addr *want = NULL, *have = NULL;
        size_t n_want = 0, n_have = 0;
        struct nl_link l;
        int r;

        r = nl_link_get(bridge, &l, err);
        if (r == -ENODEV) {
                r = nl_bridge_create(bridge, err);
                if (r < 0)
                        return r;
                *created = true;
                r = nl_link_get(bridge, &l, err);
                if (r == -ENODEV)
                        return dv_error_add(err, -EIO, 0, "bridge %s vanished after its creation",
                                            bridge);
        }
        if (r < 0)
                return r;
        if (!streq(l.kind, "bridge"))
                return dv_error_add(err, -EEXIST, 0,
                                    "network %s: the name %s is taken by an interface that is not "
                                    "a bridge (%s); it is left alone",
                                    def->name, bridge, *l.kind ? l.kind : "a plain interface");
        if (!*created && !adopt)
                return dv_error_add(
                        err, -EEXIST, 0,
                        "network %s: bridge %s already exists and was not created by "
                        "declvirt; it is left alone (name another bridge in <bridge name=...>)",
                        def->name, bridge);

        uint8_t mac[6];
        const uint8_t *set_mac = NULL;
        if (def->mac) {
                if (parse_mac(def->mac, mac) < 0)
                        return dv_error_add(err, -EINVAL, def->mac_line,
                                            "network %s: bad MAC address %s", def->name, def->mac);
                if (!l.has_mac || memcmp(mac, l.mac, 6) != 0)
                        set_mac = mac;
        }
        uint32_t mtu = def->has_mtu && l.mtu != def->mtu ? (uint32_t)def->mtu : 0;
        r = nl_link_set(bridge, set_mac, mtu, -1, err);
        if (r < 0)
                return r;

        /* STP and delay: what the user wrote; on a new bridge libvirt's defaults (STP on,
         * no delay) for what the user did not. */
        int want_stp = def->bridge.stp >= 0 ? def->bridge.stp : *created ? 1 : -1;
        int64_t want_delay = def->bridge.has_delay ? (int64_t)def->bridge.delay * 100
                             : *created            ? 0
                                                   : -1;
        if (want_stp >= 0 || want_delay >= 0) {
                int stp = 0;
                uint32_t delay = 0;
                r = nl_bridge_get(bridge, &stp, &delay, err);
                if (r < 0)
                        return r;
                bool stp_after = want_stp >= 0 ? want_stp : stp;
                want_delay = effective_delay_cs(want_delay, stp_after);
                int set_stp = want_stp >= 0 && want_stp != stp ? want_stp : -1;
                int64_t set_delay =
                        want_delay >= 0 && want_delay != (int64_t)delay ? want_delay : -1;
                r = nl_bridge_set(bridge, set_stp, set_delay, err);
                if (r < 0)
                        return r;
        }

        r = wanted_addrs(def, &want, &n_want, err);
        if (r < 0)
                return r;
        r = nl_addr_list(l.ifindex, &have, &n_have, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_have; i++)
                if (!addr_in(want, n_want, &have[i])) {
                        r = nl_addr_del(l.ifindex, &have[i], err);
                        if (r < 0)
                                return r;
                }
        for (size_t i = 0; i < n_want; i++)
                if (!addr_in(have, n_have, &want[i])) {
                        r = nl_addr_add(l.ifindex, &want[i], err);
                        if (r < 0)
                                return r;
                }
        if (!l.up)
                return nl_link_set(bridge, NULL, 0, 1, err);
        return 0;
}

/* Stops the network's dnsmasq and waits until it has exited completely: a new dnsmasq
 * binds the same addresses, and the old one closes its sockets only at the very end of
 * its exit, after its /proc entry has lost exe and cmdline. A pidfd says when. */
static int dnsmasq_stop_wait(const struct network_def *def, const char *bridge, const char *run_dir,
                             const char *state_dir, struct dv_error *err) {
        pid_t pid = 0;
        int r = dnsmasq_status(def, bridge, run_dir, state_dir, &pid, NULL, err);
        if (r < 0)
                return r;
        _cleanup_close_ int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
        r = dnsmasq_stop(def->name, run_dir, err);
        if (r < 0)
                return r;
        if (pidfd >= 0) {
                struct pollfd p = {.fd = pidfd, .events = POLLIN};
                (void)poll(&p, 1, 5000);
        }
        return 0;
}

static int apply_dnsmasq(const struct network_def *def, const char *bridge, const char *run_dir,
                         const char *state_dir, struct dv_error *err) {
        pid_t pid = 0;
        bool current = false;
        int r;

        if (!dnsmasq_needed(def))
                return dnsmasq_stop(def->name, run_dir, err);
        r = dnsmasq_status(def, bridge, run_dir, state_dir, &pid, &current, err);
        if (r < 0)
                return r;
        if (pid > 0 && current)
                return 0;
        if (pid > 0) {
                log_debug("network %s: dnsmasq configuration changed, restarting it", def->name);
                r = dnsmasq_stop_wait(def, bridge, run_dir, state_dir, err);
                if (r < 0)
                        return r;
        }
        return dnsmasq_start(def, bridge, run_dir, state_dir, err);
}

/* Firewall and forwarding for def (registered under its name). */
static int apply_firewall(const struct network_def *def, const char *bridge, const char *run_dir,
                          struct dv_error *err) {
        int r;
        pthread_mutex_lock(&reg_lock);
        r = registry_put_locked(def, bridge, err);
        if (r >= 0)
                r = fw_sync_locked(fw_network_needs_rules(def) ? bridge : NULL, false, err);
        pthread_mutex_unlock(&reg_lock);
        if (r < 0)
                return r;
        if (needs_forwarding(def, AF_INET)) {
                r = fw_ip_forward_on(AF_INET, run_dir, err);
                if (r < 0)
                        return r;
        }
        if (needs_forwarding(def, AF_INET6)) {
                r = fw_ip_forward_on(AF_INET6, run_dir, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What a failed apply created is taken away again; errors here are secondary. */
static void apply_undo(const struct network_def *def, const char *bridge, const char *run_dir) {
        _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
        (void)dnsmasq_stop(def->name, run_dir, &e);
        pthread_mutex_lock(&reg_lock);
        if (registry && hashmap_get(registry, def->name)) {
                registry_remove_locked(def->name);
                (void)fw_sync_locked(NULL, true, &e);
                (void)forwarding_restore_locked(run_dir, &e);
        }
        pthread_mutex_unlock(&reg_lock);
        (void)nl_link_delete(bridge, &e);
}

int network_apply(const struct network_def *old, bool old_created, const struct network_def *def,
                  bool adopt, struct dv_error *err) {
        _cleanup_free_ char *bridge = NULL, *old_bridge = NULL, *run_dir = NULL, *state_dir = NULL;
        bool created = false;
        int r;

        if (is_bridge_mode(def)) {
                /* A network that becomes a host bridge's: what was ours goes first. */
                if (old && !is_bridge_mode(old)) {
                        r = network_stop(old, old_created, err);
                        if (r < 0)
                                return r;
                }
                /* Nothing to converge: report what is missing, change nothing. */
                struct net_status st = {0};
                r = observe_bridge_mode(def, &st, err);
                if (r >= 0 && st.state == NET_BROKEN)
                        r = dv_error_add(err, -ENODEV, def->forward.line, "network %s: %s",
                                         def->name, st.reason);
                net_status_done(&st);
                return r < 0 ? r : 0;
        }
        bridge = network_bridge_name(def);
        if (!bridge)
                return dv_error_oom(err);
        const char *why = network_ifname_problem(bridge);
        if (why)
                return dv_error_add(err, -EINVAL, def->bridge.line,
                                    "network %s: bridge name '%s' %s", def->name, bridge, why);
        r = get_dirs(&run_dir, &state_dir, err);
        if (r < 0)
                return r;
        r = check_forward_dev(def, err);
        if (r < 0)
                return r;

        /* A renamed bridge: the old one goes first (only when it is ours), and dnsmasq
         * with it, since it was bound to the old interface. */
        if (old && !is_bridge_mode(old)) {
                old_bridge = network_bridge_name(old);
                if (!old_bridge)
                        return dv_error_oom(err);
                if (!streq(old_bridge, bridge)) {
                        r = dnsmasq_stop_wait(old, old_bridge, run_dir, state_dir, err);
                        if (r < 0)
                                return r;
                        if (old_created) {
                                r = nl_link_delete(old_bridge, err);
                                if (r < 0)
                                        return r;
                        }
                }
        }

        r = apply_bridge(def, bridge, adopt, &created, err);
        if (r >= 0)
                r = apply_firewall(def, bridge, run_dir, err);
        if (r >= 0)
                r = apply_dnsmasq(def, bridge, run_dir, state_dir, err);
        if (r < 0 && created)
                apply_undo(def, bridge, run_dir);
        return r;
}

/* ---- stop ----------------------------------------------------------------------------------- */

int network_stop(const struct network_def *def, bool delete_bridge, struct dv_error *err) {
        _cleanup_free_ char *bridge = NULL, *run_dir = NULL, *state_dir = NULL;
        int r;

        if (is_bridge_mode(def))
                return 0; /* never ours */
        bridge = network_bridge_name(def);
        if (!bridge)
                return dv_error_oom(err);
        r = get_dirs(&run_dir, &state_dir, err);
        if (r < 0)
                return r;

        r = dnsmasq_stop_wait(def, bridge, run_dir, state_dir, err);
        if (r < 0)
                return r;
        forget_leases(def->name);

        /* The table is loaded again even when this network was not registered: after a
         * restart its rules may be there all the same. */
        pthread_mutex_lock(&reg_lock);
        registry_remove_locked(def->name);
        r = fw_sync_locked(NULL, true, err);
        if (r >= 0)
                r = forwarding_restore_locked(run_dir, err);
        pthread_mutex_unlock(&reg_lock);
        if (r < 0)
                return r;

        if (delete_bridge)
                return nl_link_delete(bridge, err);
        return 0;
}
