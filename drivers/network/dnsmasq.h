/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DHCP and DNS for a network: one dnsmasq per network, its generated configuration,
 * its lifecycle by pidfile (it outlives the agent), and its lease file. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "model/network.h"
#include "util/error.h"

struct dnsmasq_lease {
        uint64_t expiry; /* seconds since the epoch; 0: never */
        char mac[18];    /* "" for IPv6 leases (dnsmasq records the IAID) and non-Ethernet */
        char ip[46];
        char *hostname; /* NULL when the client sent none */
};

/* Whether a network needs dnsmasq: DHCP ranges or hosts, DNS not disabled on a network
 * with an IPv4/IPv6 address, or an IPv6 address (router advertisements). Never for
 * bridge mode. */
bool dnsmasq_needed(const struct network_def *def);

/* The configuration file text (pure; golden files tests/data/network/dnsmasq-*.conf).
 * Read with `dnsmasq --conf-file=THIS` only: no /etc/dnsmasq.conf, no-hosts (the host's
 * /etc/hosts is not served), no-resolv on isolated networks (elsewhere upstream queries
 * go to the host's resolv.conf servers, as libvirt does). bind-dynamic + interface=BRIDGE
 * + except-interface=lo (libvirt's choice: it follows addresses added to the bridge
 * later, and tentative IPv6 addresses), dhcp-range with a 1 h lease time, dhcp-host,
 * domain/local, host-record for DNS hosts, enable-ra for IPv6, dhcp-leasefile=LEASEFILE,
 * pid-file=PIDFILE, user=USER and group=GROUP (the account dnsmasq drops root to; NULL:
 * no line, dnsmasq's compiled-in default). -EINVAL when a value cannot be written safely
 * (a newline in a path, a comma in a name...). */
int dnsmasq_conf(const struct network_def *def, const char *bridge, const char *leasefile,
                 const char *pidfile, const char *user, const char *group, char **ret);

/* The command line: dnsmasq --conf-file=CONF (dnsmasq daemonizes; see dnsmasq_start). */
char **dnsmasq_argv(const char *conf_path);

/* Paths: RUN_DIR/dnsmasq/NAME.conf, RUN_DIR/dnsmasq/NAME.pid,
 * STATE_DIR/networks/NAME.leases. Any of the ret pointers may be NULL. -EINVAL for a name
 * that is not a valid network name. */
int dnsmasq_paths(const char *name, const char *run_dir, const char *state_dir, char **ret_conf,
                  char **ret_pid, char **ret_leases);

/* Stops a dnsmasq already running for this network, writes the conf (atomically) and
 * runs dnsmasq through cmd_run; RUN_DIR/dnsmasq must be root's, writable by no one else.
 * dnsmasq daemonizes: the process cmd_run waits for exits once the daemon has set up (or
 * with the daemon's startup error on stderr), so the daemon is not the agent's child,
 * needs no reaping, and survives an agent restart. Then waits (bounded, 5 s) for the
 * pidfile, checks the process behind it, records it (NAME.ident) and writes the pidfile
 * again as root: dnsmasq gives its own to the user it drops to. dnsmasq starts as root
 * (to bind port 67 and open the lease file, which it keeps open) and drops after that to
 * the user "dnsmasq" and its primary group when that account exists (Debian's
 * dnsmasq-base creates it; looked up at each start), else to its compiled-in user (nobody
 * on Debian; logged once). The recorded process must run as that user. Restart = stop +
 * start. */
int dnsmasq_start(const struct network_def *def, const char *bridge, const char *run_dir,
                  const char *state_dir, struct dv_error *err);
/* SIGTERM, then SIGKILL after 5 s, through a pidfd, to the dnsmasq of the record (else of
 * the pidfile) when it is ours (see dnsmasq_status); anything else is never signalled.
 * Removes the pidfile, the record and the conf. Not running: 0. */
int dnsmasq_stop(const char *name, const char *run_dir, struct dv_error *err);
/* Running: the process of RUN_DIR/dnsmasq/NAME.ident (written by dnsmasq_start once it
 * checked the daemon) alive, with exactly our command line and the recorded identity
 * (start time, uid/gid, binary: drivers/domain/proc.h); with no record, the pidfile's
 * process with our command line and the dnsmasq binary. *ret_pid 0 otherwise.
 * *ret_conf_current: the conf on disk equals what dnsmasq_conf() gives now. Either ret
 * may be NULL. */
int dnsmasq_status(const struct network_def *def, const char *bridge, const char *run_dir,
                   const char *state_dir, pid_t *ret_pid, bool *ret_conf_current,
                   struct dv_error *err);
/* The current leases of STATE_DIR/networks/NAME.leases (none when it does not exist). */
int dnsmasq_leases(const char *name, const char *state_dir, struct dnsmasq_lease **ret, size_t *n,
                   struct dv_error *err);
/* Parses the text of a dnsmasq lease file; lines it cannot read are skipped with a
 * warning in err. */
int dnsmasq_leases_parse(const char *text, struct dnsmasq_lease **ret, size_t *n,
                         struct dv_error *err);
void dnsmasq_leases_free(struct dnsmasq_lease *l, size_t n);
