/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network definitions: parse, validate and format libvirt's <network> XML for the
 * forward modes declvirt supports (none, nat, route, open, bridge). */
#include <arpa/inet.h>
#include <errno.h>
#include <libxml/tree.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "model/network.h"
#include "model/xml.h"
#include "util/mac.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/uuid.h"

DV_ENUM_IMPL(network_forward_mode, _NETWORK_FORWARD_MAX, "none", "nat", "route", "open", "bridge");
DV_ENUM_IMPL(network_family, _NETWORK_FAMILY_MAX, NULL, "ipv4", "ipv6");

#define IFNAME_MAX       15 /* IFNAMSIZ - 1 */
#define HOSTNAME_MAX     253
#define MTU_MIN          68 /* RFC 791's minimum, the kernel's ETH_MIN_MTU */
#define MTU_MAX          65535
#define BRIDGE_DELAY_MAX 30 /* seconds: the kernel's BR_MAX_FORWARD_DELAY */

/* Problems are collected (so that `declvirt validate` shows all of them); c->r keeps
 * the first one with KEEP, as every checker does, because err may be NULL. Helpers
 * return a negative errno only for allocation failure, which ends parsing at once. */
struct ctx {
        struct dv_error *err;
        int r;
};

_printf_(3, 4) static void problem(struct ctx *c, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        KEEP(c->r, dv_error_addv(c->err, -EINVAL, line, fmt, ap));
        va_end(ap);
}

static void record(struct ctx *c, int r) {
        KEEP(c->r, r);
}

static const char *node_name(const xmlNode *n) {
        return (const char *)n->name;
}

/* ---- values: addresses, MACs, names --------------------------------------------------- */

static size_t addr_len(int family) {
        return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}
static unsigned addr_bits(int family) {
        return (unsigned)addr_len(family) * 8;
}

int network_addr_parse(const char *s, struct network_addr *ret) {
        struct network_addr a = {0};
        if (!s)
                return -EINVAL;
        if (inet_pton(AF_INET, s, a.a) == 1)
                a.family = AF_INET;
        else if (inet_pton(AF_INET6, s, a.a) == 1)
                a.family = AF_INET6;
        else
                return -EINVAL;
        *ret = a;
        return 0;
}

const char *network_addr_format(const struct network_addr *a,
                                char buf[static NETWORK_ADDR_STRLEN]) {
        buf[0] = '\0';
        if (a && a->family && !inet_ntop(a->family, a->a, buf, NETWORK_ADDR_STRLEN))
                buf[0] = '\0';
        return buf;
}

static bool addr_bit(const struct network_addr *a, unsigned i) {
        return a->a[i / 8] & (0x80u >> (i % 8));
}

bool network_addr_in_subnet(const struct network_addr *a, const struct network_addr *net,
                            unsigned prefix) {
        if (!a || !net || !a->family || a->family != net->family || prefix > addr_bits(a->family))
                return false;
        for (unsigned i = 0; i < prefix; i++)
                if (addr_bit(a, i) != addr_bit(net, i))
                        return false;
        return true;
}

static int addr_cmp(const struct network_addr *a, const struct network_addr *b) {
        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        return memcmp(a->a, b->a, addr_len(a->family));
}

static bool addr_equal(const struct network_addr *a, const struct network_addr *b) {
        return a->family && addr_cmp(a, b) == 0;
}

/* The host bits (after prefix) all equal to `one`. */
static bool addr_host_bits_all(const struct network_addr *a, unsigned prefix, bool one) {
        for (unsigned i = prefix; i < addr_bits(a->family); i++)
                if (addr_bit(a, i) != one)
                        return false;
        return true;
}

static struct network_addr addr_masked(const struct network_addr *a, unsigned prefix) {
        struct network_addr m = {.family = a->family};
        for (unsigned i = 0; i < prefix && i < addr_bits(a->family); i++)
                if (addr_bit(a, i))
                        m.a[i / 8] |= (uint8_t)(0x80u >> (i % 8));
        return m;
}

/* Prefix length of a contiguous IPv4 netmask, -EINVAL when it is not contiguous. */
static int netmask_prefix(const struct network_addr *m) {
        if (m->family != AF_INET)
                return -EINVAL;
        unsigned p = 0;
        while (p < 32 && addr_bit(m, p))
                p++;
        return addr_host_bits_all(m, p, false) ? (int)p : -EINVAL;
}

int network_ip_prefix(const struct network_ip *ip) {
        unsigned bits = addr_bits(ip->address.family);
        if (bits == 0)
                return -EINVAL;
        if (ip->has_prefix)
                return ip->prefix <= bits ? (int)ip->prefix : -EINVAL;
        if (ip->has_netmask)
                return ip->address.family == AF_INET ? netmask_prefix(&ip->netmask) : -EINVAL;
        if (ip->address.family == AF_INET6)
                return 64;
        /* libvirt's default for an IPv4 address without netmask: its class. */
        uint8_t first = ip->address.a[0];
        return first < 128 ? 8 : first < 192 ? 16 : first < 224 ? 24 : -EINVAL;
}

/* Unspecified, loopback, multicast and (IPv4) reserved addresses cannot be a bridge's. */
static bool addr_is_host_usable(const struct network_addr *a) {
        if (a->family == AF_INET)
                return a->a[0] != 0 && a->a[0] != 127 && a->a[0] < 224;
        static const uint8_t zero[16] = {0}, loop[16] = {[15] = 1};
        return memcmp(a->a, zero, 16) != 0 && memcmp(a->a, loop, 16) != 0 && a->a[0] != 0xff;
}

const char *network_ifname_problem(const char *name) {
        if (!name || !*name)
                return "is empty";
        size_t len = strlen(name);
        if (len > IFNAME_MAX)
                return "is longer than 15 bytes (IFNAMSIZ-1)";
        if (streq(name, ".") || streq(name, ".."))
                return "may not be '.' or '..'";
        if (name[0] == '-')
                return "may not begin with '-'";
        for (const char *p = name; *p; p++) {
                unsigned char ch = (unsigned char)*p;
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
                        return "may contain only A-Z a-z 0-9 _ . -";
        }
        return NULL;
}

/* DNS names as dnsmasq takes them on its command line and in its host files. */
static const char *hostname_problem(const char *name) {
        if (!name || !*name)
                return "is empty";
        size_t len = strlen(name), label = 0;
        if (len > HOSTNAME_MAX)
                return "is longer than 253 bytes";
        if (name[0] == '-' || name[0] == '.')
                return "may not begin with '-' or '.'";
        for (const char *p = name; *p; p++) {
                unsigned char ch = (unsigned char)*p;
                if (ch == '.') {
                        if (label == 0)
                                return "has an empty label";
                        label = 0;
                        continue;
                }
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-'))
                        return "may contain only A-Z a-z 0-9 . -";
                if (++label > 63)
                        return "has a label longer than 63 bytes";
        }
        if (label == 0)
                return "has an empty label";
        return NULL;
}

/* ---- parsing -------------------------------------------------------------------------- */

/* Elements of libvirt's network format that declvirt does not implement: refused
 * with that reason rather than as unknown. */
static const char *const unsupported[][2] = {
        {"network", "portgroup"}, {"network", "vlan"},
        {"network", "bandwidth"}, {"network", "virtualport"},
        {"network", "route"},     {"network", "port"},
        {"network", "title"},     {"network", "description"},
        {"forward", "pf"},        {"forward", "driver"},
        {"forward", "address"},   {"ip", "tftp"},
        {"dhcp", "bootp"},        {"range", "lease"},
        {"host", "lease"},        {"dns", "forwarder"},
        {"dns", "srv"},
};

/* The same for attributes (element, attribute). */
static const char *const unsupported_attrs[][2] = {
        {"network", "trustGuestRxFilters"},
        {"bridge", "zone"},
        {"bridge", "macTableManager"},
        {"forward", "managed"},
        {"nat", "ipv6"},
        {"ip", "localPtr"},
        {"host", "id"},
};

#define DNSMASQ_NS "http://libvirt.org/schemas/network/dnsmasq/1.0"

static void unknown_element(struct ctx *c, const xmlNode *n, const xmlNode *parent) {
        if (!n->ns)
                for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
                        if (streq(unsupported[i][0], node_name(parent)) &&
                            streq(unsupported[i][1], node_name(n))) {
                                problem(c, dv_xml_line(n),
                                        "<%s> in <%s> is not supported by declvirt", node_name(n),
                                        node_name(parent));
                                return;
                        }
        if (n->ns && n->ns->href && xmlStrEqual(n->ns->href, BAD_CAST DNSMASQ_NS))
                problem(c, dv_xml_line(n),
                        "dnsmasq options (<%s%s%s>) are not supported by declvirt",
                        n->ns->prefix ? (const char *)n->ns->prefix : "", n->ns->prefix ? ":" : "",
                        node_name(n));
        else
                record(c, dv_xml_unknown(n, parent, c->err));
}

static void no_children(struct ctx *c, const xmlNode *n) {
        dv_xml_foreach_child(ch, n) unknown_element(c, ch, n);
}

/* dv_xml_check_attrs, except that libvirt's attributes declvirt does not implement are
 * named as such. */
static void check_attrs(struct ctx *c, const xmlNode *n, const char *const *allowed) {
        for (const xmlAttr *a = n->properties; a; a = a->next) {
                const char *an = (const char *)a->name;
                bool ok = false;
                if (a->ns) /* xmlns: and other namespaces are not libvirt's */
                        continue;
                if (dv_str_in(allowed, an))
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(unsupported_attrs) && !ok; i++)
                        ok = streq(unsupported_attrs[i][0], node_name(n)) &&
                             streq(unsupported_attrs[i][1], an);
                if (ok)
                        problem(c, dv_xml_line(n),
                                "attribute '%s' on <%s> is not supported by declvirt", an,
                                node_name(n));
                else
                        problem(c, dv_xml_line(n), "unknown attribute '%s' on <%s>", an,
                                node_name(n));
        }
}

/* A second occurrence of an element that may appear once. */
static bool duplicate(struct ctx *c, const xmlNode *n, const xmlNode **first) {
        if (*first) {
                problem(c, dv_xml_line(n), "more than one <%s> (the first is on line %d)",
                        node_name(n), dv_xml_line(*first));
                return true;
        }
        *first = n;
        return false;
}

/* Attribute helpers: 0 absent (or refused, recorded in c), 1 present, -ENOMEM. */
static int prop(struct ctx *c, const xmlNode *n, const char *name, bool required, char **ret) {
        int r = dv_xml_prop(n, name, ret);
        if (r < 0)
                return r;
        if (r == 0 && required)
                record(c, dv_xml_missing_attr(n, name, c->err));
        return r;
}

static int prop_addr(struct ctx *c, const xmlNode *n, const char *name, bool required,
                     struct network_addr *ret) {
        _cleanup_free_ char *v = NULL;
        int r = prop(c, n, name, required, &v);
        if (r <= 0)
                return r;
        if (network_addr_parse(v, ret) < 0) {
                problem(c, dv_xml_line(n), "<%s %s='%s'>: not an IPv4 or IPv6 address",
                        node_name(n), name, v);
                return 0;
        }
        return 1;
}

static int prop_mac(struct ctx *c, const xmlNode *n, const char *name, bool required, char **ret) {
        _cleanup_free_ char *v = NULL;
        char canon[MAC_STRING_LEN + 1];
        int r = prop(c, n, name, required, &v);
        if (r <= 0)
                return r;
        if (mac_canonical(v, canon) < 0) {
                problem(c, dv_xml_line(n),
                        "<%s %s='%s'>: not a MAC address (six hexadecimal bytes separated by ':')",
                        node_name(n), name, v);
                return 0;
        }
        free(*ret);
        *ret = strdup(canon);
        return *ret ? 1 : -ENOMEM;
}

/* yes/no into a tristate (-1 stays when absent). */
static int prop_tristate(struct ctx *c, const xmlNode *n, const char *name, int *ret) {
        int r = dv_xml_prop_yes_no(n, name, ret, c->err);
        if (r == -ENOMEM)
                return r;
        record(c, r);
        return 0;
}

static int prop_u64(struct ctx *c, const xmlNode *n, const char *name, uint64_t min, uint64_t max,
                    bool required, uint64_t *ret) {
        int r = dv_xml_prop_u64(n, name, min, max, ret, c->err);
        if (r == -ENOMEM)
                return r;
        if (r == 0 && required)
                record(c, dv_xml_missing_attr(n, name, c->err));
        record(c, r);
        return r > 0;
}

static void *array_append(void *arrayp, size_t *n, size_t size) {
        void **p = arrayp;
        if (*n >= SIZE_MAX / size - 1)
                return NULL;
        uint8_t *a = realloc(*p, (*n + 1) * size);
        if (!a)
                return NULL;
        *p = a;
        memset(a + *n * size, 0, size);
        return a + (*n)++ * size;
}

static int parse_name(struct ctx *c, const xmlNode *n, struct network_def *def) {
        check_attrs(c, n, NULL);
        no_children(c, n);
        return dv_xml_text(n, &def->name);
}

static int parse_uuid(struct ctx *c, const xmlNode *n, struct network_def *def) {
        _cleanup_free_ char *text = NULL;
        char canon[UUID_STRING_LEN + 1];
        check_attrs(c, n, NULL);
        no_children(c, n);
        if (dv_xml_text(n, &text) < 0)
                return -ENOMEM;
        if (uuid_canonical(text, canon) < 0) {
                problem(c, dv_xml_line(n), "<uuid> '%s' is not a UUID", text);
                return 0;
        }
        def->uuid = strdup(canon);
        return def->uuid ? 0 : -ENOMEM;
}

static int parse_nat(struct ctx *c, const xmlNode *n, struct network_def *def) {
        const xmlNode *seen_address = NULL, *seen_port = NULL;
        def->forward.nat_line = dv_xml_line(n);
        check_attrs(c, n, NULL);
        dv_xml_foreach_child(ch, n) {
                if (dv_xml_is(ch, "address")) {
                        if (duplicate(c, ch, &seen_address))
                                continue;
                        def->forward.nat_address_line = dv_xml_line(ch);
                        check_attrs(c, ch, (const char *const[]){"start", "end", NULL});
                        no_children(c, ch);
                        int a = prop_addr(c, ch, "start", true, &def->forward.nat_start);
                        int b = prop_addr(c, ch, "end", true, &def->forward.nat_end);
                        if (a < 0 || b < 0)
                                return -ENOMEM;
                        def->forward.has_nat_address = a > 0 && b > 0;
                } else if (dv_xml_is(ch, "port")) {
                        uint64_t start = 0, end = 0;
                        if (duplicate(c, ch, &seen_port))
                                continue;
                        def->forward.nat_port_line = dv_xml_line(ch);
                        check_attrs(c, ch, (const char *const[]){"start", "end", NULL});
                        no_children(c, ch);
                        int a = prop_u64(c, ch, "start", 1, 65535, true, &start);
                        if (a < 0)
                                return a;
                        int b = prop_u64(c, ch, "end", 1, 65535, true, &end);
                        if (b < 0)
                                return b;
                        def->forward.has_nat_port = a > 0 && b > 0;
                        def->forward.nat_port_start = (uint16_t)start;
                        def->forward.nat_port_end = (uint16_t)end;
                } else
                        unknown_element(c, ch, n);
        }
        return 0;
}

static int parse_forward(struct ctx *c, const xmlNode *n, struct network_def *def) {
        _cleanup_free_ char *mode = NULL;
        const xmlNode *seen_nat = NULL;
        bool mode_ok = true;
        int r;

        def->forward.line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"mode", "dev", NULL});
        if (dv_xml_prop(n, "mode", &mode) < 0 || dv_xml_prop(n, "dev", &def->forward.dev) < 0)
                return -ENOMEM;
        if (!mode)
                def->forward.mode = NETWORK_FORWARD_NAT; /* libvirt's default */
        else if (streq(mode, "passthrough") || streq(mode, "private") || streq(mode, "vepa") ||
                 streq(mode, "hostdev")) {
                problem(c, dv_xml_line(n), "forward mode '%s' is not supported", mode);
                mode_ok = false;
        } else {
                int m = network_forward_mode_from_string(mode);
                if (m <= NETWORK_FORWARD_NONE) {
                        problem(c, dv_xml_line(n),
                                "<forward mode='%s'>: unknown mode; expected 'nat', 'route', "
                                "'open' or 'bridge'",
                                mode);
                        mode_ok = false;
                } else
                        def->forward.mode = m;
        }

        dv_xml_foreach_child(ch, n) {
                if (dv_xml_is(ch, "interface")) {
                        _cleanup_free_ char *dev = NULL;
                        /* connections= is run-time state in virsh net-dumpxml of an active network
                         */
                        check_attrs(c, ch, (const char *const[]){"dev", "connections", NULL});
                        no_children(c, ch);
                        r = prop(c, ch, "dev", true, &dev);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                        size_t k = strv_length(def->forward.interfaces);
                        int *lines = realloc(def->forward.interface_lines, (k + 1) * sizeof(int));
                        if (!lines)
                                return -ENOMEM;
                        def->forward.interface_lines = lines;
                        lines[k] = dv_xml_line(ch);
                        if (strv_consume(&def->forward.interfaces, TAKE_PTR(dev)) < 0)
                                return -ENOMEM;
                } else if (dv_xml_is(ch, "nat")) {
                        if (duplicate(c, ch, &seen_nat))
                                continue;
                        if (mode_ok && def->forward.mode != NETWORK_FORWARD_NAT) {
                                problem(c, dv_xml_line(ch),
                                        "<nat> is only valid with forward mode='nat'");
                                continue;
                        }
                        r = parse_nat(c, ch, def);
                        if (r < 0)
                                return r;
                } else
                        unknown_element(c, ch, n);
        }
        return 0;
}

static int parse_bridge(struct ctx *c, const xmlNode *n, struct network_def *def) {
        _cleanup_free_ char *stp = NULL;
        def->bridge.line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"name", "stp", "delay", NULL});
        no_children(c, n);
        if (dv_xml_prop(n, "name", &def->bridge.name) < 0 || dv_xml_prop(n, "stp", &stp) < 0)
                return -ENOMEM;
        if (stp) {
                /* libvirt's virOnOff: yes/no are not accepted here */
                if (streq(stp, "on"))
                        def->bridge.stp = 1;
                else if (streq(stp, "off"))
                        def->bridge.stp = 0;
                else
                        problem(c, dv_xml_line(n), "<bridge stp='%s'>: expected 'on' or 'off'",
                                stp);
        }
        int r = prop_u64(c, n, "delay", 0, UINT64_MAX, false, &def->bridge.delay);
        if (r < 0)
                return r;
        def->bridge.has_delay = r > 0;
        return 0;
}

static int parse_mac(struct ctx *c, const xmlNode *n, struct network_def *def) {
        def->mac_line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"address", NULL});
        no_children(c, n);
        int r = prop_mac(c, n, "address", true, &def->mac);
        return r < 0 ? r : 0;
}

static int parse_mtu(struct ctx *c, const xmlNode *n, struct network_def *def) {
        def->mtu_line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"size", NULL});
        no_children(c, n);
        int r = prop_u64(c, n, "size", 0, UINT64_MAX, true, &def->mtu);
        if (r < 0)
                return r;
        def->has_mtu = r > 0;
        return 0;
}

static int parse_domain(struct ctx *c, const xmlNode *n, struct network_def *def) {
        def->domain.line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"name", "localOnly", NULL});
        no_children(c, n);
        int r = prop(c, n, "name", true, &def->domain.name);
        if (r < 0)
                return r;
        return prop_tristate(c, n, "localOnly", &def->domain.local_only);
}

static int parse_dns_host(struct ctx *c, const xmlNode *n, struct network_def *def) {
        struct network_dns_host *h = array_append(&def->dns.hosts, &def->dns.n_hosts, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"ip", NULL});
        int r = prop_addr(c, n, "ip", true, &h->ip);
        if (r < 0)
                return r;
        dv_xml_foreach_child(ch, n) {
                if (!dv_xml_is(ch, "hostname")) {
                        unknown_element(c, ch, n);
                        continue;
                }
                _cleanup_free_ char *name = NULL;
                check_attrs(c, ch, NULL);
                no_children(c, ch);
                if (dv_xml_text(ch, &name) < 0 || strv_consume(&h->hostnames, TAKE_PTR(name)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_dns(struct ctx *c, const xmlNode *n, struct network_def *def) {
        int r;
        def->dns.present = true;
        def->dns.line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"enable", "forwardPlainNames", NULL});
        r = prop_tristate(c, n, "enable", &def->dns.enable);
        if (r < 0)
                return r;
        r = prop_tristate(c, n, "forwardPlainNames", &def->dns.forward_plain_names);
        if (r < 0)
                return r;
        dv_xml_foreach_child(ch, n) {
                if (dv_xml_is(ch, "host")) {
                        r = parse_dns_host(c, ch, def);
                        if (r < 0)
                                return r;
                } else if (dv_xml_is(ch, "txt"))
                        /* Accepted and ignored with a warning: a missing TXT record is visible
                         * to whoever queries it and sends no traffic elsewhere, so refusing the
                         * whole network for it would cost more than it saves. <forwarder> and
                         * <srv> change where guests' traffic goes, so they are refused. */
                        dv_error_warn(
                                c->err, dv_xml_line(ch),
                                "<txt> in <dns> is ignored: declvirt serves no DNS TXT records");
                else
                        unknown_element(c, ch, n);
        }
        return 0;
}

static int parse_dhcp_range(struct ctx *c, const xmlNode *n, struct network_ip *ip) {
        struct network_dhcp_range *rg = array_append(&ip->ranges, &ip->n_ranges, sizeof(*rg));
        if (!rg)
                return -ENOMEM;
        rg->line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"start", "end", NULL});
        no_children(c, n);
        if (prop_addr(c, n, "start", true, &rg->start) < 0 ||
            prop_addr(c, n, "end", true, &rg->end) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_dhcp_host(struct ctx *c, const xmlNode *n, struct network_ip *ip) {
        struct network_dhcp_host *h = array_append(&ip->hosts, &ip->n_hosts, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"mac", "name", "ip", NULL});
        no_children(c, n);
        if (prop_mac(c, n, "mac", false, &h->mac) < 0 || prop(c, n, "name", false, &h->name) < 0 ||
            prop_addr(c, n, "ip", true, &h->ip) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_dhcp(struct ctx *c, const xmlNode *n, struct network_ip *ip) {
        int r;
        ip->dhcp_line = dv_xml_line(n);
        check_attrs(c, n, NULL);
        dv_xml_foreach_child(ch, n) {
                if (dv_xml_is(ch, "range"))
                        r = parse_dhcp_range(c, ch, ip);
                else if (dv_xml_is(ch, "host"))
                        r = parse_dhcp_host(c, ch, ip);
                else {
                        unknown_element(c, ch, n);
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_ip(struct ctx *c, const xmlNode *n, struct network_def *def) {
        _cleanup_free_ char *family = NULL, *netmask = NULL, *prefix = NULL;
        const xmlNode *seen_dhcp = NULL;
        struct network_ip *ip = array_append(&def->ips, &def->n_ips, sizeof(*ip));
        int r;
        if (!ip)
                return -ENOMEM;
        ip->line = dv_xml_line(n);
        check_attrs(c, n, (const char *const[]){"address", "netmask", "prefix", "family", NULL});
        if (prop_addr(c, n, "address", true, &ip->address) < 0 ||
            dv_xml_prop(n, "family", &family) < 0 || dv_xml_prop(n, "netmask", &netmask) < 0 ||
            dv_xml_prop(n, "prefix", &prefix) < 0)
                return -ENOMEM;
        if (family) {
                int f = network_family_from_string(family);
                if (f <= NETWORK_FAMILY_UNSET)
                        problem(c, ip->line, "<ip family='%s'>: expected 'ipv4' or 'ipv6'", family);
                else
                        ip->family = f;
        }
        if (netmask) {
                if (inet_pton(AF_INET, netmask, ip->netmask.a) != 1)
                        problem(c, ip->line, "<ip netmask='%s'>: not an IPv4 netmask", netmask);
                else {
                        ip->netmask.family = AF_INET;
                        ip->has_netmask = true;
                }
        }
        if (prefix) {
                if (parse_u64(prefix, &ip->prefix) < 0)
                        problem(c, ip->line, "<ip prefix='%s'>: not a prefix length", prefix);
                else
                        ip->has_prefix = true;
        }
        dv_xml_foreach_child(ch, n) {
                if (dv_xml_is(ch, "dhcp")) {
                        if (duplicate(c, ch, &seen_dhcp))
                                continue;
                        r = parse_dhcp(c, ch, ip);
                        if (r < 0)
                                return r;
                } else
                        unknown_element(c, ch, n);
        }
        return 0;
}

static struct network_def *network_def_new(void) {
        struct network_def *def = calloc(1, sizeof(*def));
        if (!def)
                return NULL;
        def->bridge.stp = -1;
        def->domain.local_only = -1;
        def->dns.enable = -1;
        def->dns.forward_plain_names = -1;
        return def;
}

int network_def_parse(const void *root_node, struct network_def **ret, struct dv_error *err) {
        const xmlNode *root = root_node;
        _cleanup_(network_def_freep) struct network_def *def = NULL;
        struct ctx c = {.err = err};
        const xmlNode *seen_name = NULL, *seen_uuid = NULL, *seen_metadata = NULL,
                      *seen_forward = NULL, *seen_bridge = NULL, *seen_mac = NULL, *seen_mtu = NULL,
                      *seen_domain = NULL, *seen_dns = NULL;
        int r = 0;

        def = network_def_new();
        if (!def)
                return -ENOMEM;
        def->line = dv_xml_line(root);
        /* connections= is run-time state that virsh net-dumpxml prints for an active network:
         * accepted so that its output can be used as it is, and ignored. */
        check_attrs(&c, root, (const char *const[]){"connections", "ipv6", NULL});
        int ipv6 = -1;
        if (prop_tristate(&c, root, "ipv6", &ipv6) < 0)
                return -ENOMEM;
        def->ipv6 = ipv6 == 1;

        dv_xml_foreach_child(n, root) {
                if (dv_xml_is_policy(n))
                        continue; /* model/policy.c reads it */
                if (dv_xml_is(n, "name")) {
                        if (!duplicate(&c, n, &seen_name))
                                r = parse_name(&c, n, def);
                } else if (dv_xml_is(n, "uuid")) {
                        if (!duplicate(&c, n, &seen_uuid))
                                r = parse_uuid(&c, n, def);
                } else if (dv_xml_is(n, "metadata")) {
                        /* Other applications' metadata is opaque, as in libvirt; the policy in
                         * it is read by model/policy.c. */
                        duplicate(&c, n, &seen_metadata);
                        check_attrs(&c, n, NULL);
                } else if (dv_xml_is(n, "forward")) {
                        if (!duplicate(&c, n, &seen_forward))
                                r = parse_forward(&c, n, def);
                } else if (dv_xml_is(n, "bridge")) {
                        if (!duplicate(&c, n, &seen_bridge))
                                r = parse_bridge(&c, n, def);
                } else if (dv_xml_is(n, "mac")) {
                        if (!duplicate(&c, n, &seen_mac))
                                r = parse_mac(&c, n, def);
                } else if (dv_xml_is(n, "mtu")) {
                        if (!duplicate(&c, n, &seen_mtu))
                                r = parse_mtu(&c, n, def);
                } else if (dv_xml_is(n, "domain")) {
                        if (!duplicate(&c, n, &seen_domain))
                                r = parse_domain(&c, n, def);
                } else if (dv_xml_is(n, "dns")) {
                        if (!duplicate(&c, n, &seen_dns))
                                r = parse_dns(&c, n, def);
                } else if (dv_xml_is(n, "ip"))
                        r = parse_ip(&c, n, def);
                else
                        unknown_element(&c, n, root);
                if (r < 0)
                        return r;
        }
        if (!seen_name)
                problem(&c, def->line, "<network> needs a <name>");
        if (c.r < 0)
                return c.r;
        r = network_def_validate(def, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(def);
        return 0;
}

/* ---- validation ----------------------------------------------------------------------- */

static void check_ifname(struct ctx *c, int line, const char *what, const char *name) {
        const char *why = network_ifname_problem(name);
        if (why)
                problem(c, line, "%s='%s'>: the name %s", what, strempty(name), why);
}

static void check_mac(struct ctx *c, int line, const char *what, const char *mac) {
        uint8_t m[MAC_BYTES];
        static const uint8_t zero[MAC_BYTES] = {0};
        if (mac_parse(mac, m) < 0)
                problem(c, line,
                        "%s='%s'>: not a MAC address (six hexadecimal bytes separated by ':')",
                        what, mac);
        else if (mac_is_multicast(m))
                problem(c, line, "%s='%s'>: a multicast MAC address cannot be a device's address",
                        what, mac);
        else if (memcmp(m, zero, 6) == 0)
                problem(c, line, "%s='%s'>: the all-zero MAC address is not usable", what, mac);
}

static void check_forward(struct ctx *c, const struct network_def *def) {
        const typeof(def->forward) *f = &def->forward;
        const char *mode = network_forward_mode_to_string(f->mode);
        size_t n_if = strv_length(f->interfaces);
        char a[NETWORK_ADDR_STRLEN], b[NETWORK_ADDR_STRLEN];

        if (f->mode == NETWORK_FORWARD_NONE) {
                if (f->dev || n_if || f->has_nat_address || f->has_nat_port)
                        problem(c, f->line, "forward devices and <nat> need a forward mode");
                return;
        }
        if (f->dev)
                check_ifname(c, f->line, "<forward dev", f->dev);
        for (size_t i = 0; i < n_if; i++) {
                int line = f->interface_lines ? f->interface_lines[i] : f->line;
                check_ifname(c, line, "<interface dev", f->interfaces[i]);
                for (size_t j = 0; j < i; j++)
                        if (streq(f->interfaces[i], f->interfaces[j])) {
                                problem(c, line,
                                        "<interface dev='%s'> is listed twice (also on line %d)",
                                        f->interfaces[i],
                                        f->interface_lines ? f->interface_lines[j] : f->line);
                                break;
                        }
        }
        if (f->mode == NETWORK_FORWARD_OPEN && (f->dev || n_if))
                problem(c, f->line,
                        "forward mode='open' takes no dev= and no <interface>: "
                        "declvirt adds no forwarding rules for it");
        if ((f->mode == NETWORK_FORWARD_NAT || f->mode == NETWORK_FORWARD_ROUTE) && n_if > 1)
                problem(c, f->interface_lines ? f->interface_lines[1] : f->line,
                        "forward mode='%s' takes at most one <interface>", mode);
        if (f->dev && n_if > 0 && !streq(f->dev, f->interfaces[0]))
                /* the rule libvirt applies, which keeps its net-dumpxml output (dev= plus the
                 * same device as the first <interface>) consistent */
                problem(c, f->interface_lines ? f->interface_lines[0] : f->line,
                        "<forward dev='%s'> must match the first <interface dev='%s'>", f->dev,
                        f->interfaces[0]);
        if ((f->has_nat_address || f->has_nat_port) && f->mode != NETWORK_FORWARD_NAT)
                problem(c, f->nat_line ? f->nat_line : f->line,
                        "<nat> is only valid with forward mode='nat'");
        if (f->has_nat_address) {
                network_addr_format(&f->nat_start, a);
                network_addr_format(&f->nat_end, b);
                if (f->nat_start.family != AF_INET || f->nat_end.family != AF_INET)
                        problem(c, f->nat_address_line,
                                "<address start='%s' end='%s'> in <nat>: "
                                "the masquerade range takes IPv4 addresses",
                                a, b);
                else if (addr_cmp(&f->nat_start, &f->nat_end) > 0)
                        problem(c, f->nat_address_line,
                                "<address start='%s' end='%s'> in <nat>: start is after end", a, b);
        }
        if (f->has_nat_port) {
                if (f->nat_port_start == 0 || f->nat_port_end == 0)
                        problem(c, f->nat_port_line, "<port> in <nat>: ports are 1..65535");
                else if (f->nat_port_start > f->nat_port_end)
                        problem(c, f->nat_port_line,
                                "<port start='%u' end='%u'> in <nat>: start is after end",
                                (unsigned)f->nat_port_start, (unsigned)f->nat_port_end);
        }
}

static void check_bridge(struct ctx *c, const struct network_def *def) {
        if (def->bridge.name)
                check_ifname(c, def->bridge.line, "<bridge name", def->bridge.name);
        if (def->bridge.has_delay && def->bridge.delay > BRIDGE_DELAY_MAX)
                problem(c, def->bridge.line, "<bridge delay='%llu'>: out of range 0..%d (seconds)",
                        (unsigned long long)def->bridge.delay, BRIDGE_DELAY_MAX);
        if (def->has_mtu && (def->mtu < MTU_MIN || def->mtu > MTU_MAX))
                problem(c, def->mtu_line, "<mtu size='%llu'>: out of range %d..%d",
                        (unsigned long long)def->mtu, MTU_MIN, MTU_MAX);
        if (def->mac)
                check_mac(c, def->mac_line, "<mac address", def->mac);
}

/* A forward mode='bridge' network uses a bridge (or devices) that declvirt does not
 * own: nothing of what declvirt would configure on its own bridge applies. */
static void check_bridge_mode(struct ctx *c, const struct network_def *def) {
        bool has_devs = def->forward.dev || def->forward.interfaces;
        int line = def->forward.line;
        if (def->bridge.name && has_devs)
                problem(c, line,
                        "forward mode='bridge' takes <bridge name='...'> (an existing host bridge) "
                        "or forward devices (macvtap), not both");
        else if (!def->bridge.name && !has_devs)
                problem(c, line,
                        "forward mode='bridge' needs <bridge name='...'> naming an existing host "
                        "bridge, "
                        "or <interface dev='...'>");
        if (def->bridge.stp >= 0 || def->bridge.has_delay)
                problem(c, def->bridge.line,
                        "<bridge> stp and delay apply to bridges declvirt creates, "
                        "not with forward mode='bridge'");
        if (def->mac)
                problem(c, def->mac_line,
                        "<mac> is not allowed with forward mode='bridge': "
                        "declvirt does not own that bridge");
        if (def->has_mtu)
                /* libvirt refuses it as well */
                problem(c, def->mtu_line,
                        "<mtu> is not allowed with forward mode='bridge': "
                        "declvirt does not own that bridge");
        if (def->domain.name)
                problem(c, def->domain.line,
                        "<domain> is not allowed with forward mode='bridge': "
                        "declvirt runs no DNS for it");
        if (def->dns.present)
                problem(c, def->dns.line,
                        "<dns> is not allowed with forward mode='bridge': "
                        "declvirt runs no DNS for it");
        for (size_t i = 0; i < def->n_ips; i++)
                problem(c, def->ips[i].line,
                        "<ip> is not allowed with forward mode='bridge': "
                        "declvirt does not address that network");
}

static void check_dns(struct ctx *c, const struct network_def *def) {
        const char *why;
        char a[NETWORK_ADDR_STRLEN];
        if (def->domain.name && (why = hostname_problem(def->domain.name)))
                problem(c, def->domain.line, "<domain name='%s'>: the name %s", def->domain.name,
                        why);
        for (size_t i = 0; i < def->dns.n_hosts; i++) {
                const struct network_dns_host *h = &def->dns.hosts[i];
                network_addr_format(&h->ip, a);
                if (!h->ip.family)
                        problem(c, h->line, "<host> in <dns> needs the attribute 'ip'");
                if (!h->hostnames)
                        problem(c, h->line, "<host ip='%s'> in <dns> needs at least one <hostname>",
                                a);
                for (char **name = h->hostnames; name && *name; name++)
                        if ((why = hostname_problem(*name)))
                                problem(c, h->line, "<hostname>%s</hostname>: the name %s", *name,
                                        why);
        }
}

static void check_dhcp(struct ctx *c, const struct network_ip *ip, unsigned prefix,
                       const char *subnet) {
        char a[NETWORK_ADDR_STRLEN], b[NETWORK_ADDR_STRLEN];
        struct network_addr net = addr_masked(&ip->address, prefix);
        unsigned bits = addr_bits(ip->address.family);
        /* The network and (IPv4) broadcast addresses are nobody's; /31 and /32 (/127,
         * /128) have no such addresses (RFC 3021). */
        bool edges = prefix + 1 < bits;
        bool v4 = ip->address.family == AF_INET;

        for (size_t i = 0; i < ip->n_ranges; i++) {
                const struct network_dhcp_range *rg = &ip->ranges[i];
                bool ok = true;
                network_addr_format(&rg->start, a);
                network_addr_format(&rg->end, b);
                const struct {
                        const char *attr, *text;
                        const struct network_addr *addr;
                } ends[] = {{"start", a, &rg->start}, {"end", b, &rg->end}};
                for (size_t k = 0; k < ELEMENTSOF(ends); k++) {
                        const struct network_addr *x = ends[k].addr;
                        if (!x->family) {
                                problem(c, rg->line, "<range> needs the attribute '%s'",
                                        ends[k].attr);
                                ok = false;
                        } else if (!network_addr_in_subnet(x, &net, prefix)) {
                                problem(c, rg->line, "<range %s='%s'>: outside the subnet %s",
                                        ends[k].attr, ends[k].text, subnet);
                                ok = false;
                        } else if (edges && addr_host_bits_all(x, prefix, false)) {
                                problem(c, rg->line,
                                        "<range %s='%s'>: this is the network address of %s",
                                        ends[k].attr, ends[k].text, subnet);
                                ok = false;
                        } else if (edges && v4 && addr_host_bits_all(x, prefix, true)) {
                                problem(c, rg->line,
                                        "<range %s='%s'>: this is the broadcast address of %s",
                                        ends[k].attr, ends[k].text, subnet);
                                ok = false;
                        }
                }
                if (ok && addr_cmp(&rg->start, &rg->end) > 0)
                        problem(c, rg->line, "<range start='%s' end='%s'>: start is after end", a,
                                b);
        }

        for (size_t i = 0; i < ip->n_hosts; i++) {
                const struct network_dhcp_host *h = &ip->hosts[i];
                const char *why;
                network_addr_format(&h->ip, a);
                if (!h->ip.family)
                        problem(c, h->line, "<host> in <dhcp> needs the attribute 'ip'");
                else if (!network_addr_in_subnet(&h->ip, &net, prefix))
                        problem(c, h->line, "<host ip='%s'>: outside the subnet %s", a, subnet);
                else if (addr_equal(&h->ip, &ip->address))
                        problem(c, h->line, "<host ip='%s'>: this is the network's own address", a);
                else if (edges && (addr_host_bits_all(&h->ip, prefix, false) ||
                                   (v4 && addr_host_bits_all(&h->ip, prefix, true))))
                        problem(c, h->line,
                                "<host ip='%s'>: this is the network or broadcast address of %s", a,
                                subnet);
                if (v4 && !h->mac && !h->name)
                        problem(c, h->line, "<host ip='%s'>: needs mac= or name=", a);
                if (!v4 && h->mac)
                        problem(c, h->line,
                                "<host mac='%s'>: an IPv6 host is named by name=, not by a MAC "
                                "address",
                                h->mac);
                else if (!v4 && !h->name)
                        problem(c, h->line, "<host ip='%s'>: an IPv6 host needs name=", a);
                if (h->mac)
                        check_mac(c, h->line, "<host mac", h->mac);
                if (h->name && (why = hostname_problem(h->name)))
                        problem(c, h->line, "<host name='%s'>: the name %s", h->name, why);
                for (size_t j = 0; j < i; j++) {
                        const struct network_dhcp_host *o = &ip->hosts[j];
                        if (addr_equal(&h->ip, &o->ip))
                                problem(c, h->line,
                                        "<host ip='%s'>: the same address as the <host> on line %d",
                                        a, o->line);
                        if (h->mac && o->mac && streq(h->mac, o->mac))
                                problem(c, h->line,
                                        "<host mac='%s'>: the same MAC address as the <host> on "
                                        "line %d",
                                        h->mac, o->line);
                }
        }
}

static void check_ip(struct ctx *c, const struct network_ip *ip) {
        char a[NETWORK_ADDR_STRLEN], m[NETWORK_ADDR_STRLEN], subnet[NETWORK_ADDR_STRLEN + 16];
        int r0 = c->r;
        c->r = 0;

        if (!ip->address.family) {
                problem(c, ip->line, "<ip> needs the attribute 'address'");
                goto done;
        }
        network_addr_format(&ip->address, a);
        bool v6 = ip->address.family == AF_INET6;
        unsigned bits = addr_bits(ip->address.family);
        if (ip->family == NETWORK_FAMILY_IPV4 && v6)
                problem(c, ip->line, "<ip family='ipv4'>: '%s' is an IPv6 address", a);
        else if (ip->family == NETWORK_FAMILY_IPV6 && !v6)
                problem(c, ip->line, "<ip family='ipv6'>: '%s' is an IPv4 address", a);
        else if (v6 && ip->family != NETWORK_FAMILY_IPV6)
                /* libvirt refuses this too; keeping to it keeps files portable */
                problem(c, ip->line, "<ip address='%s'>: an IPv6 address needs family='ipv6'", a);
        if (ip->has_netmask && ip->has_prefix)
                problem(c, ip->line, "<ip> takes netmask= or prefix=, not both");
        else if (ip->has_netmask) {
                network_addr_format(&ip->netmask, m);
                if (v6)
                        problem(c, ip->line,
                                "<ip netmask='%s'>: a netmask is for IPv4; use prefix= with IPv6",
                                m);
                else if (netmask_prefix(&ip->netmask) < 0)
                        problem(c, ip->line, "<ip netmask='%s'>: not a contiguous netmask", m);
                else if (netmask_prefix(&ip->netmask) == 0)
                        problem(c, ip->line,
                                "<ip netmask='%s'>: the netmask selects no network bits", m);
        } else if (ip->has_prefix && (ip->prefix < 1 || ip->prefix > bits))
                problem(c, ip->line, "<ip prefix='%llu'>: out of range 1..%u for an IPv%d address",
                        (unsigned long long)ip->prefix, bits, v6 ? 6 : 4);
        if (c->r < 0)
                goto done;

        int prefix = network_ip_prefix(ip);
        if (prefix < 0) {
                problem(c, ip->line,
                        "<ip address='%s'>: no netmask= or prefix=, and the address has no class "
                        "to take one from",
                        a);
                goto done;
        }
        if (!addr_is_host_usable(&ip->address)) {
                problem(c, ip->line,
                        "<ip address='%s'>: not a usable host address "
                        "(unspecified, loopback, multicast or reserved)",
                        a);
                goto done;
        }
        struct network_addr net = addr_masked(&ip->address, (unsigned)prefix);
        network_addr_format(&net, m);
        snprintf(subnet, sizeof(subnet), "%s/%d", m, prefix);
        if ((unsigned)prefix + 1 < bits) {
                if (addr_host_bits_all(&ip->address, (unsigned)prefix, false))
                        problem(c, ip->line,
                                "<ip address='%s'>: this is the network address of %s, "
                                "not a host address inside it",
                                a, subnet);
                else if (!v6 && addr_host_bits_all(&ip->address, (unsigned)prefix, true))
                        problem(c, ip->line,
                                "<ip address='%s'>: this is the broadcast address of %s, "
                                "not a host address inside it",
                                a, subnet);
        }
        check_dhcp(c, ip, (unsigned)prefix, subnet);
done:
        if (r0 < 0)
                c->r = r0;
}

/* dnsmasq serves DHCP on one subnet per family and network (libvirt refuses more at
 * start; declvirt refuses them when the file is read). */
static void check_dhcp_count(struct ctx *c, const struct network_def *def) {
        const struct network_ip *first[2] = {NULL, NULL};
        for (size_t i = 0; i < def->n_ips; i++) {
                const struct network_ip *ip = &def->ips[i];
                if (!ip->n_ranges && !ip->n_hosts)
                        continue;
                int k = ip->address.family == AF_INET6;
                if (first[k])
                        problem(c, ip->line,
                                "a second IPv%d <ip> with DHCP (the first is on line %d): "
                                "DHCP is served on one IPv%d subnet per network",
                                k ? 6 : 4, first[k]->line, k ? 6 : 4);
                else
                        first[k] = ip;
        }
}

int network_def_validate(const struct network_def *def, struct dv_error *err) {
        struct ctx c = {.err = err};
        const char *why;
        char canon[37];

        if (!def)
                return -EINVAL;
        if ((why = dv_name_problem(DV_KIND_NETWORK, def->name)))
                problem(&c, def->line, "network name '%s': %s", strempty(def->name), why);
        if (def->uuid && (uuid_canonical(def->uuid, canon) < 0 || !streq(canon, def->uuid)))
                problem(&c, def->line, "<uuid> '%s' is not a UUID", def->uuid);
        if (def->forward.mode < 0 || def->forward.mode >= _NETWORK_FORWARD_MAX) {
                problem(&c, def->forward.line, "forward mode %d is not supported",
                        (int)def->forward.mode);
                return c.r;
        }
        check_forward(&c, def);
        check_bridge(&c, def);
        check_dns(&c, def);
        for (size_t i = 0; i < def->n_ips; i++)
                check_ip(&c, &def->ips[i]);
        if (def->forward.mode == NETWORK_FORWARD_BRIDGE)
                check_bridge_mode(&c, def);
        else
                check_dhcp_count(&c, def);
        if (def->forward.mode == NETWORK_FORWARD_NAT) {
                bool v4 = false;
                for (size_t i = 0; i < def->n_ips; i++)
                        v4 = v4 || def->ips[i].address.family == AF_INET;
                if (!v4)
                        problem(&c, def->forward.line,
                                "forward mode='nat' needs an IPv4 <ip> address to masquerade");
        }
        return c.r;
}

/* ---- formatting ----------------------------------------------------------------------- */

static void format_addr_attr(struct buf *b, const char *name, const struct network_addr *a) {
        char s[NETWORK_ADDR_STRLEN];
        if (a->family)
                xml_attr(b, name, network_addr_format(a, s));
}

static const char *yes_no(int v) {
        return v < 0 ? NULL : v ? "yes" : "no";
}

static void format_forward(struct buf *b, const struct network_def *def) {
        const typeof(def->forward) *f = &def->forward;
        if (f->mode == NETWORK_FORWARD_NONE)
                return;
        xml_open(b, "forward");
        xml_attr(b, "dev", f->dev);
        xml_attr(b, "mode", network_forward_mode_to_string(f->mode));
        bool nat = f->mode == NETWORK_FORWARD_NAT && (f->has_nat_address || f->has_nat_port);
        if (!nat && !f->interfaces) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        if (nat) {
                xml_open(b, "nat");
                xml_open_end(b);
                if (f->has_nat_address) {
                        xml_open(b, "address");
                        format_addr_attr(b, "start", &f->nat_start);
                        format_addr_attr(b, "end", &f->nat_end);
                        xml_empty_end(b);
                }
                if (f->has_nat_port) {
                        xml_open(b, "port");
                        xml_attr_u64(b, "start", f->nat_port_start);
                        xml_attr_u64(b, "end", f->nat_port_end);
                        xml_empty_end(b);
                }
                xml_close(b, "nat");
        }
        for (char **dev = f->interfaces; dev && *dev; dev++) {
                xml_open(b, "interface");
                xml_attr(b, "dev", *dev);
                xml_empty_end(b);
        }
        xml_close(b, "forward");
}

static void format_dns(struct buf *b, const struct network_def *def) {
        /* as libvirt: an empty <dns/> says nothing and is not written */
        if (def->dns.enable < 0 && def->dns.forward_plain_names < 0 && def->dns.n_hosts == 0)
                return;
        xml_open(b, "dns");
        xml_attr(b, "enable", yes_no(def->dns.enable));
        xml_attr(b, "forwardPlainNames", yes_no(def->dns.forward_plain_names));
        if (def->dns.n_hosts == 0) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        for (size_t i = 0; i < def->dns.n_hosts; i++) {
                const struct network_dns_host *h = &def->dns.hosts[i];
                xml_open(b, "host");
                format_addr_attr(b, "ip", &h->ip);
                xml_open_end(b);
                for (char **name = h->hostnames; name && *name; name++)
                        xml_text_elem(b, "hostname", *name);
                xml_close(b, "host");
        }
        xml_close(b, "dns");
}

static void format_ip(struct buf *b, const struct network_ip *ip) {
        xml_open(b, "ip");
        xml_attr(b, "family", network_family_to_string(ip->family));
        format_addr_attr(b, "address", &ip->address);
        if (ip->has_netmask)
                format_addr_attr(b, "netmask", &ip->netmask);
        if (ip->has_prefix)
                xml_attr_u64(b, "prefix", ip->prefix);
        /* virsh net-dumpxml writes <ip ...> and </ip> even with nothing inside */
        xml_open_end(b);
        if (ip->n_ranges || ip->n_hosts) {
                xml_open(b, "dhcp");
                xml_open_end(b);
                for (size_t i = 0; i < ip->n_ranges; i++) {
                        xml_open(b, "range");
                        format_addr_attr(b, "start", &ip->ranges[i].start);
                        format_addr_attr(b, "end", &ip->ranges[i].end);
                        xml_empty_end(b);
                }
                for (size_t i = 0; i < ip->n_hosts; i++) {
                        xml_open(b, "host");
                        xml_attr(b, "mac", ip->hosts[i].mac);
                        xml_attr(b, "name", ip->hosts[i].name);
                        format_addr_attr(b, "ip", &ip->hosts[i].ip);
                        xml_empty_end(b);
                }
                xml_close(b, "dhcp");
        }
        xml_close(b, "ip");
}

void network_def_format(struct buf *b, const struct network_def *def,
                        const struct dv_policy *policy) {
        if (!def)
                return;
        xml_open(b, "network");
        if (def->ipv6)
                xml_attr(b, "ipv6", "yes");
        xml_open_end(b);
        xml_text_elem(b, "name", def->name);
        xml_text_elem(b, "uuid", def->uuid);
        if (policy && policy->present) {
                xml_open(b, "metadata");
                xml_open_end(b);
                dv_policy_format(b, policy, DV_KIND_NETWORK);
                xml_close(b, "metadata");
        }
        format_forward(b, def);
        if (def->bridge.name || def->bridge.stp >= 0 || def->bridge.has_delay) {
                xml_open(b, "bridge");
                xml_attr(b, "name", def->bridge.name);
                if (def->bridge.stp >= 0)
                        xml_attr(b, "stp", def->bridge.stp ? "on" : "off");
                if (def->bridge.has_delay)
                        xml_attr_u64(b, "delay", def->bridge.delay);
                xml_empty_end(b);
        }
        /* libvirt writes <mtu> before <mac> */
        if (def->has_mtu) {
                xml_open(b, "mtu");
                xml_attr_u64(b, "size", def->mtu);
                xml_empty_end(b);
        }
        if (def->mac) {
                xml_open(b, "mac");
                xml_attr(b, "address", def->mac);
                xml_empty_end(b);
        }
        if (def->domain.name) {
                xml_open(b, "domain");
                xml_attr(b, "name", def->domain.name);
                xml_attr(b, "localOnly", yes_no(def->domain.local_only));
                xml_empty_end(b);
        }
        format_dns(b, def);
        for (size_t i = 0; i < def->n_ips; i++)
                format_ip(b, &def->ips[i]);
        xml_close(b, "network");
}

/* ---- accessors and clean-up ----------------------------------------------------------- */

const char *network_def_name(const struct network_def *def) {
        return def ? def->name : NULL;
}
const char *network_def_uuid(const struct network_def *def) {
        return def ? def->uuid : NULL;
}

const struct network_ip *network_def_dhcp_ip(const struct network_def *def, int family) {
        for (size_t i = 0; def && i < def->n_ips; i++)
                if (def->ips[i].address.family == family &&
                    (def->ips[i].n_ranges || def->ips[i].n_hosts))
                        return &def->ips[i];
        return NULL;
}

void network_def_free(struct network_def *def) {
        if (!def)
                return;
        free(def->name);
        free(def->uuid);
        free(def->forward.dev);
        strv_free(def->forward.interfaces);
        free(def->forward.interface_lines);
        free(def->bridge.name);
        free(def->mac);
        free(def->domain.name);
        for (size_t i = 0; i < def->dns.n_hosts; i++)
                strv_free(def->dns.hosts[i].hostnames);
        free(def->dns.hosts);
        for (size_t i = 0; i < def->n_ips; i++) {
                for (size_t j = 0; j < def->ips[i].n_hosts; j++) {
                        free(def->ips[i].hosts[j].mac);
                        free(def->ips[i].hosts[j].name);
                }
                free(def->ips[i].hosts);
                free(def->ips[i].ranges);
        }
        free(def->ips);
        free(def);
}
