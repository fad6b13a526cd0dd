/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The few rtnetlink requests the network driver needs (links, bridges, addresses),
 * over libmnl. Every call opens its own socket: thread-safe, nothing shared. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

struct nl_link {
        int ifindex;
        char name[16];
        char kind[32]; /* "bridge", "veth", "" when none */
        uint8_t mac[6];
        bool has_mac;
        uint32_t mtu;
        bool up;    /* IFF_UP */
        int master; /* ifindex of the bridge it is enslaved to, 0 */
};

struct nl_addr {
        int family; /* AF_INET or AF_INET6 */
        uint8_t a[16];
        unsigned prefix;
};

/* -ENODEV when no such link. */
int nl_link_get(const char *name, struct nl_link *ret, struct dv_error *err);
/* -EEXIST when the name is taken. */
int nl_bridge_create(const char *name, struct dv_error *err);
/* A veth pair: name with mac, its peer with peer_mac (a MAC of NULL: the kernel picks a
 * random one). Both ends stay down in this namespace. -EEXIST when either name is taken
 * (the message says which). */
int nl_veth_create(const char *name, const uint8_t *mac, const char *peer, const uint8_t *peer_mac,
                   struct dv_error *err);
/* Moves link name into the network namespace of process pid, renamed to new_name there
 * (NULL: keeps its name), in one request. -ENODEV when there is no such link here, -ESRCH
 * when pid is gone, -EEXIST when new_name is taken there: the kernel renames after the
 * move, so the link may then be there under its old name (the message says which). A
 * moved link is down. */
int nl_link_set_netns(const char *name, pid_t pid, const char *new_name, struct dv_error *err);
/* Absent: 0. */
int nl_link_delete(const char *name, struct dv_error *err);
/* mac NULL, mtu 0, up -1: leave unchanged. */
int nl_link_set(const char *name, const uint8_t *mac, uint32_t mtu, int up, struct dv_error *err);
/* stp -1 / delay_cs -1: unchanged. IFLA_BR_STP_STATE, IFLA_BR_FORWARD_DELAY in centiseconds.
 * With STP on the kernel accepts delays of 2 to 30 s only (and clamps the delay into that
 * range when STP is switched on); STP off is sent before a new delay. */
/* Enslaves link name to bridge (IFLA_MASTER). */
int nl_link_set_master(const char *name, const char *bridge, struct dv_error *err);
int nl_bridge_set(const char *name, int stp, int64_t delay_cs, struct dv_error *err);
/* -EMEDIUMTYPE when the link is not a bridge, -ENODEV when absent. */
int nl_bridge_get(const char *name, int *ret_stp, uint32_t *ret_delay_cs, struct dv_error *err);
/* Permanent global-scope addresses only; *ret is an array of *n (NULL when none). */
int nl_addr_list(int ifindex, struct nl_addr **ret, size_t *n, struct dv_error *err);
/* Adding an address that is there already is not an error (it is replaced). IPv6
 * addresses are added without duplicate address detection (IFA_F_NODAD): a bridge
 * without ports has no carrier, and a tentative address is one dnsmasq cannot bind. */
int nl_addr_add(int ifindex, const struct nl_addr *a, struct dv_error *err);
/* Absent: 0. */
int nl_addr_del(int ifindex, const struct nl_addr *a, struct dv_error *err);

/* "192.0.2.1/24", "2001:db8::1/64". buf of at least NL_ADDR_STRLEN. */
#define NL_ADDR_STRLEN 52
const char *nl_addr_format(const struct nl_addr *a, char *buf, size_t size);
