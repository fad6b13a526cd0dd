/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The networks' firewall: one nftables table owned by the agent (`inet declvirt`),
 * generated as a whole and replaced in one transaction through libnftables; IP forwarding. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "model/network.h"
#include "util/error.h"

#define FW_TABLE "declvirt"

/* One network as the firewall sees it. */
struct fw_network {
        const struct network_def *def;
        const char *bridge; /* the bridge's interface name */
};

/* Whether the network gets rules at all: none (isolated), nat and route do; open and
 * bridge do not. */
bool fw_network_needs_rules(const struct network_def *def);

/* The whole `table inet declvirt` for these networks, as nft input text that first
 * adds and deletes the table, then defines it, so that one transaction replaces it
 * atomically. Pure: golden files tests/data/network/fw-*.nft. n == 0 (or no network
 * that needs rules) gives the text that only deletes the table. Networks are sorted by
 * bridge name, so the text does not depend on the caller's order. masquerade for nat
 * (snat to <nat><address start end> when given; tcp and udp source ports mapped to
 * <port start end>, else 1024-65535 as libvirt does), forward accept for nat/route in
 * both directions (only established/related back into a nat subnet; IPv6 is routed,
 * never NATed), everything else to or from the bridge rejected; isolated networks
 * reject all forwarding to/from the bridge except bridge<->bridge; open: no rules;
 * bridge mode: nothing. Interfaces are matched by name (iifname/oifname), so the rules
 * hold before the bridge exists and survive its re-creation.
 * -EINVAL when a bridge or forward dev is not a valid interface name, or an address has
 * no usable prefix. */
int fw_ruleset(const struct fw_network *nets, size_t n, char **ret);

/* Runs text through libnftables in one transaction; the error names the line nft
 * complains about (of text) and quotes it. -EPERM without CAP_NET_ADMIN, -EIO when nft
 * or the kernel refuses. */
int fw_apply(const char *text, struct dv_error *err);

/* True when table inet declvirt exists and holds rules for this bridge (for observe).
 * Cached per process: the listing of the table is kept together with the nftables
 * ruleset generation id (one NFT_MSG_GETGEN netlink round trip) and the network
 * namespace, and listed again only when the generation changed, i.e. after any
 * ruleset change by anyone. */
int fw_table_has_network(const char *bridge, bool *ret, struct dv_error *err);

/* net.ipv4.ip_forward (AF_INET) / net.ipv6.conf.all.forwarding (AF_INET6) on; the
 * previous value is written once to RECORD_DIR/ip_forward.prev (or
 * ipv6_forwarding.prev), before the change, and restored by fw_ip_forward_restore
 * when no network needs forwarding any more (which then removes the record).
 * Restoring with no record does nothing. Note that turning IPv6 forwarding on makes
 * the kernel ignore router advertisements on interfaces with accept_ra=1.
 * -EAFNOSUPPORT for another family or when IPv6 is disabled. */
int fw_ip_forward_on(int family, const char *record_dir, struct dv_error *err);
int fw_ip_forward_restore(int family, const char *record_dir, struct dv_error *err);
