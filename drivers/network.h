/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network driver as the engine sees it: observe a <network> on the host, converge the
 * host to it, stop it. Bridges by netlink (drivers/network/bridge.h), rules in the agent's
 * nftables table (firewall.h), DHCP and DNS by one dnsmasq per network (dnsmasq.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "drivers/network/dnsmasq.h"
#include "model/network.h"
#include "util/error.h"

enum net_state { NET_ABSENT, NET_ACTIVE, NET_BROKEN };

struct net_status {
        enum net_state state;
        char *reason; /* BROKEN: why (a forward dev missing, a name taken by a non-bridge...) */
        char *drift;  /* ACTIVE but not as the definition says: what differs, e.g.
                       * "address 192.0.2.1/24 missing", "dnsmasq not running",
                       * "dnsmasq configuration out of date", "mtu 1500, want 9000",
                       * "firewall rules missing"; NULL when all matches. Several
                       * differences are joined by "; ". */
        int ifindex;
        char *bridge;      /* the bridge name in use */
        char mac[18];      /* the bridge's MAC as it is */
        pid_t dnsmasq_pid; /* 0 */
        struct dnsmasq_lease *leases;
        size_t n_leases;
};

/* Set once at agent start (and on reload): where dnsmasq's files and the ip_forward
 * record go. Until called, /run/declvirt and /var/lib/declvirt/state. */
void network_driver_set_dirs(const char *run_dir, const char *state_dir);

/* The bridge name a network uses: <bridge name=>, else "dv-" + name when that fits in 15
 * bytes (and is a valid interface name), else "dv-" + 12 hex of the name's hash. Caller
 * frees; NULL only when out of memory. */
char *network_bridge_name(const struct network_def *def);

/* Cheap (called every pass for dirty networks): netlink queries, pidfile, cached leases
 * (keyed by the lease file's stat), the firewall check cached. forward mode bridge: ACTIVE
 * when the host bridge exists (never created), BROKEN otherwise. Returns 0 with *ret
 * filled (call net_status_done), or a negative errno when the host cannot be asked. */
int network_observe(const struct network_def *def, struct net_status *ret, struct dv_error *err);

/* Converges the host to def, doing only what differs: creates the bridge when absent
 * (-EEXIST refusal when the name is taken by something that is not a bridge, or by a
 * bridge that 'adopt' does not allow: the engine passes adopt=false unless its record
 * says the agent created it), sets MAC, MTU, STP/delay, addresses (removes global
 * addresses not in def), link up; the firewall table rebuilt from every network this
 * process has applied; ip_forward on for nat/route; dnsmasq started, or restarted only
 * when its configuration changed or it died. old: the definition applied before (NULL
 * the first time): a changed bridge name deletes the old bridge (only when old_created)
 * before creating the new one; a network that turns to forward mode bridge is stopped
 * first (network_stop(old, old_created)). A bridge created by this call is deleted again when a
 * later step fails, so that a failed apply never leaves a bridge the record does not
 * know. -ENODEV when the forward dev (or, in bridge mode, the host bridge) is missing. */
int network_apply(const struct network_def *old, bool old_created, const struct network_def *def,
                  bool adopt, struct dv_error *err);

/* Stops dnsmasq, removes the network's rules (table rebuilt without it), restores
 * ip_forward when no network needs it, deletes the bridge when delete_bridge. Forward
 * mode bridge: nothing. */
int network_stop(const struct network_def *def, bool delete_bridge, struct dv_error *err);

void net_status_done(struct net_status *s);
