/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network definitions: libvirt's <network> format, the forward modes declvirt supports.
 * Fields the user did not write stay absent (NULL / has_* false / -1) so that the
 * planner compares only what was written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/enum.h"
#include "model/object.h"

enum network_forward_mode {
        NETWORK_FORWARD_NONE, /* no <forward>: an isolated network */
        NETWORK_FORWARD_NAT,  /* also <forward/> without mode, as in libvirt */
        NETWORK_FORWARD_ROUTE,
        NETWORK_FORWARD_OPEN,
        NETWORK_FORWARD_BRIDGE, /* an existing host bridge, or macvtap on <interface>s */
        _NETWORK_FORWARD_MAX,
};
DV_ENUM_DECL(network_forward_mode); /* "none", "nat", "route", "open", "bridge" */

enum network_family {
        NETWORK_FAMILY_UNSET, /* family= not written */
        NETWORK_FAMILY_IPV4,
        NETWORK_FAMILY_IPV6,
        _NETWORK_FAMILY_MAX,
};
DV_ENUM_DECL(network_family); /* NULL, "ipv4", "ipv6" */

/* An IP address in binary form (network byte order; IPv4 in a[0..3]). */
struct network_addr {
        int family; /* AF_INET, AF_INET6, or 0 when absent */
        uint8_t a[16];
};
#define NETWORK_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

struct network_dhcp_range {
        struct network_addr start, end;
        int line;
};

struct network_dhcp_host {
        char *mac;  /* lowercase xx:xx:xx:xx:xx:xx, NULL when not written */
        char *name; /* NULL when not written */
        struct network_addr ip;
        int line;
};

struct network_ip {
        enum network_family family; /* as written; the address's own family is address.family */
        struct network_addr address;
        bool has_netmask, has_prefix;
        struct network_addr netmask;
        uint64_t prefix; /* as written; see network_ip_prefix() for the effective one */
        struct network_dhcp_range *ranges;
        size_t n_ranges;
        struct network_dhcp_host *hosts;
        size_t n_hosts;
        int line;
        int dhcp_line; /* of <dhcp>, 0 when absent */
};

struct network_dns_host {
        struct network_addr ip;
        char **hostnames; /* strv, at least one */
        int line;
};

struct network_def {
        char *name;
        char *uuid; /* lowercase 8-4-4-4-12, NULL when not written */
        bool ipv6;  /* <network ipv6='yes'>: guest-to-guest IPv6 without a host address */
        struct {
                enum network_forward_mode mode;
                char *dev;         /* <forward dev=>, NULL when not written */
                char **interfaces; /* <interface dev=> children, strv or NULL */
                int *interface_lines;
                bool has_nat_address, has_nat_port;
                struct network_addr nat_start, nat_end; /* IPv4 masquerade range */
                uint16_t nat_port_start, nat_port_end;
                int line, nat_line, nat_address_line, nat_port_line;
        } forward;
        struct {
                char *name; /* NULL when not written (the driver picks one) */
                int stp;    /* -1 not written, 0 off, 1 on */
                bool has_delay;
                uint64_t delay; /* seconds */
                int line;
        } bridge;
        char *mac; /* bridge MAC, lowercase; NULL when not written */
        int mac_line;
        bool has_mtu;
        uint64_t mtu;
        int mtu_line;
        struct {
                char *name;     /* NULL when <domain> is absent */
                int local_only; /* -1 not written, 0 no, 1 yes */
                int line;
        } domain;
        struct {
                bool present;
                int enable;              /* -1 not written, 0 no, 1 yes */
                int forward_plain_names; /* -1 not written, 0 no, 1 yes */
                struct network_dns_host *hosts;
                size_t n_hosts;
                int line;
        } dns;
        struct network_ip *ips;
        size_t n_ips;
        int line; /* of <network> */
};

/* root is the <network> xmlNode. Validates as part of parsing: a returned definition
 * is valid. Warnings (things accepted but ignored) go to err->warnings. */
int network_def_parse(const void *root, struct network_def **ret, struct dv_error *err);
/* Checks the cross-field rules (subnets, forward modes, interface names, ...); every
 * problem is reported with the line of its element. */
int network_def_validate(const struct network_def *def, struct dv_error *err);
/* virsh net-dumpxml layout; the policy (may be NULL) goes inside <metadata>. */
void network_def_format(struct buf *b, const struct network_def *def,
                        const struct dv_policy *policy);
void network_def_free(struct network_def *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct network_def *, network_def_free)
const char *network_def_name(const struct network_def *def);
const char *network_def_uuid(const struct network_def *def);

/* The <ip> element of the given family (AF_INET, AF_INET6) that has DHCP ranges or
 * hosts, or NULL. Validation guarantees at most one per family. */
const struct network_ip *network_def_dhcp_ip(const struct network_def *def, int family);
/* The effective prefix length: prefix=, else the netmask's, else libvirt's default
 * (the IPv4 address class, 64 for IPv6). -EINVAL when none can be derived. */
int network_ip_prefix(const struct network_ip *ip);
/* Textual form (inet_ntop); "" for an absent address. */
const char *network_addr_format(const struct network_addr *a, char buf[static NETWORK_ADDR_STRLEN]);
/* Parses an IPv4 or IPv6 address (inet_pton, no host names). -EINVAL when it is neither. */
int network_addr_parse(const char *s, struct network_addr *ret);
/* True when a lies in the subnet net/prefix (same family). */
bool network_addr_in_subnet(const struct network_addr *a, const struct network_addr *net,
                            unsigned prefix);
/* Interface name rules (IFNAMSIZ-1 bytes of [A-Za-z0-9_.-]). NULL when valid, else the
 * reason. Used for bridge names and forward devices; check again before netlink. */
const char *network_ifname_problem(const char *name);
