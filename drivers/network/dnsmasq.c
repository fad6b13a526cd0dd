/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One dnsmasq per network: the configuration builder (pure), start/stop/status by
 * pidfile and /proc, and the lease file parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/domain/proc.h"
#include "drivers/network/dnsmasq.h"
#include "model/object.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/mac.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

#define DNSMASQ_BINARY     "dnsmasq"
#define DNSMASQ_USER       "dnsmasq"
#define DNSMASQ_LEASE_TIME "1h"
#define START_WAIT_USEC    (5 * USEC_PER_SEC)
#define STOP_WAIT_MSEC     5000
#define KILL_WAIT_MSEC     2000
#define LEASES_MAX_SIZE    (16u << 20)

static bool has_dns(const struct network_def *def) {
        return def->dns.enable != 0;
}

bool dnsmasq_needed(const struct network_def *def) {
        if (def->forward.mode == NETWORK_FORWARD_BRIDGE)
                return false;
        if (network_def_dhcp_ip(def, AF_INET) || network_def_dhcp_ip(def, AF_INET6))
                return true;
        for (size_t i = 0; i < def->n_ips; i++) {
                int f = def->ips[i].address.family;
                if (f == AF_INET6 || (f == AF_INET && has_dns(def)))
                        return true;
        }
        return false;
}

/* ---- the configuration ---------------------------------------------------------------- */

/* Host and domain names, validated by the model already; checked again because they
 * become lines of a configuration file: nothing that could end or split a value. */
static bool name_ok(const char *s) {
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
                        return false;
        return true;
}

static bool path_ok(const char *s) {
        return s && s[0] == '/' && !strpbrk(s, "\n\r");
}

static void addr_masked(const struct network_addr *a, unsigned prefix, struct network_addr *ret) {
        *ret = (struct network_addr){.family = a->family};
        for (unsigned i = 0; i < prefix && i < 128; i++)
                ret->a[i / 8] |= (uint8_t)(a->a[i / 8] & (0x80u >> (i % 8)));
}

static void prefix_netmask(unsigned prefix, char buf[static NETWORK_ADDR_STRLEN]) {
        struct network_addr m = {.family = AF_INET};
        for (unsigned i = 0; i < prefix && i < 32; i++)
                m.a[i / 8] |= (uint8_t)(0x80u >> (i % 8));
        network_addr_format(&m, buf);
}

/* Number of addresses from a to b inclusive, saturated. */
static uint64_t range_size(const struct network_addr *a, const struct network_addr *b) {
        size_t len = a->family == AF_INET ? 4 : 16;
        uint64_t hi_a = 0, hi_b = 0;
        /* Only the low 64 bits count; a larger difference saturates below. */
        for (size_t i = 0; i < len; i++) {
                if (len - i > 8 && a->a[i] != b->a[i])
                        return UINT32_MAX;
                if (len - i <= 8) {
                        hi_a = (hi_a << 8) | a->a[i];
                        hi_b = (hi_b << 8) | b->a[i];
                }
        }
        return hi_b >= hi_a ? hi_b - hi_a + 1 : 0;
}

static int dhcp_section(struct buf *b, const struct network_def *def, const struct network_ip *ip,
                        uint64_t *lease_max) {
        char s[NETWORK_ADDR_STRLEN], e[NETWORK_ADDR_STRLEN], m[NETWORK_ADDR_STRLEN];
        int prefix = network_ip_prefix(ip);
        bool v4 = ip->address.family == AF_INET;
        if (prefix < 0)
                return -EINVAL;
        if (v4)
                prefix_netmask((unsigned)prefix, m);
        else
                snprintf(m, sizeof(m), "%d", prefix);

        for (size_t i = 0; i < ip->n_ranges; i++) {
                const struct network_dhcp_range *r = &ip->ranges[i];
                buf_printf(b, "dhcp-range=%s,%s,%s,%s\n", network_addr_format(&r->start, s),
                           network_addr_format(&r->end, e), m, DNSMASQ_LEASE_TIME);
                *lease_max += range_size(&r->start, &r->end);
        }
        if (ip->n_ranges == 0) {
                /* Static hosts only: dnsmasq still needs the subnet to answer in. */
                struct network_addr net;
                addr_masked(&ip->address, (unsigned)prefix, &net);
                buf_printf(b, "dhcp-range=%s,static,%s,%s\n", network_addr_format(&net, s), m,
                           DNSMASQ_LEASE_TIME);
        }
        for (size_t i = 0; i < ip->n_hosts; i++) {
                const struct network_dhcp_host *h = &ip->hosts[i];
                if (h->name && !name_ok(h->name))
                        return -EINVAL;
                if (h->mac && strspn(h->mac, "0123456789abcdefABCDEF:") != strlen(h->mac))
                        return -EINVAL;
                buf_puts(b, "dhcp-host=");
                if (h->mac)
                        buf_printf(b, "%s,", h->mac);
                if (v4)
                        buf_puts(b, network_addr_format(&h->ip, s));
                else
                        buf_printf(b, "[%s]", network_addr_format(&h->ip, s));
                if (h->name)
                        buf_printf(b, ",%s", h->name);
                buf_putc(b, '\n');
                *lease_max += 1;
        }
        /* An isolated network has no way out: no default route for its guests. */
        if (v4 && def->forward.mode == NETWORK_FORWARD_NONE)
                buf_puts(b, "dhcp-option=3\n");
        return 0;
}

int dnsmasq_conf(const struct network_def *def, const char *bridge, const char *leasefile,
                 const char *pidfile, const char *user, const char *group, char **ret) {
        char s[NETWORK_ADDR_STRLEN];
        if (!def || !bridge || network_ifname_problem(bridge) || !path_ok(leasefile) ||
            !path_ok(pidfile) || !name_ok(def->name) || (user && !name_ok(user)) ||
            (group && !name_ok(group)))
                return -EINVAL;
        if (def->domain.name && !name_ok(def->domain.name))
                return -EINVAL;

        _cleanup_buf_ struct buf b = BUF_INIT;
        buf_printf(&b, "# declvirt: dnsmasq for network %s (generated; edits are overwritten)\n",
                   def->name);
        buf_puts(&b, "strict-order\n");
        /* Never the host's own /etc/hosts; isolated guests get no upstream either. */
        buf_puts(&b, "no-hosts\n");
        if (def->forward.mode == NETWORK_FORWARD_NONE)
                buf_puts(&b, "no-resolv\n");
        buf_printf(&b, "pid-file=%s\n", pidfile);
        if (user)
                buf_printf(&b, "user=%s\n", user);
        if (group)
                buf_printf(&b, "group=%s\n", group);
        buf_puts(&b, "except-interface=lo\n");
        buf_puts(&b, "bind-dynamic\n");
        buf_printf(&b, "interface=%s\n", bridge);

        if (!has_dns(def))
                buf_puts(&b, "port=0\n");
        if (def->domain.name) {
                if (def->domain.local_only == 1)
                        buf_printf(&b, "local=/%s/\n", def->domain.name);
                buf_printf(&b, "domain=%s\n", def->domain.name);
                buf_puts(&b, "expand-hosts\n");
        }
        if (has_dns(def) && def->dns.forward_plain_names == 0) {
                buf_puts(&b, "domain-needed\n");
                buf_puts(&b, "local=//\n");
        }
        for (size_t i = 0; has_dns(def) && i < def->dns.n_hosts; i++) {
                const struct network_dns_host *h = &def->dns.hosts[i];
                buf_puts(&b, "host-record=");
                for (char **n = h->hostnames; n && *n; n++) {
                        if (!name_ok(*n))
                                return -EINVAL;
                        buf_printf(&b, "%s,", *n);
                }
                buf_printf(&b, "%s\n", network_addr_format(&h->ip, s));
        }

        uint64_t lease_max = 0;
        bool dhcp = false, v6 = false;
        static const int families[] = {AF_INET, AF_INET6};
        for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                const struct network_ip *ip = network_def_dhcp_ip(def, families[i]);
                if (!ip)
                        continue;
                int r = dhcp_section(&b, def, ip, &lease_max);
                if (r < 0)
                        return r;
                dhcp = true;
        }
        /* IPv6 addresses without DHCP: router advertisements for SLAAC only. */
        for (size_t i = 0; i < def->n_ips; i++) {
                const struct network_ip *ip = &def->ips[i];
                if (ip->address.family != AF_INET6)
                        continue;
                v6 = true;
                if (ip == network_def_dhcp_ip(def, AF_INET6))
                        continue;
                int prefix = network_ip_prefix(ip);
                if (prefix < 0)
                        return -EINVAL;
                struct network_addr net;
                addr_masked(&ip->address, (unsigned)prefix, &net);
                buf_printf(&b, "dhcp-range=%s,ra-only,%d\n", network_addr_format(&net, s), prefix);
        }
        if (v6)
                buf_puts(&b, "enable-ra\n");
        if (dhcp) {
                buf_puts(&b, "dhcp-no-override\n");
                buf_puts(&b, "dhcp-authoritative\n");
                buf_printf(&b, "dhcp-lease-max=%llu\n",
                           (unsigned long long)MIN(MAX(lease_max, 1), (uint64_t)INT32_MAX));
        }
        buf_printf(&b, "dhcp-leasefile=%s\n", leasefile);

        *ret = buf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

char **dnsmasq_argv(const char *conf_path) {
        char **argv = NULL;
        if (strv_push(&argv, DNSMASQ_BINARY) < 0 ||
            strv_pushf(&argv, "--conf-file=%s", conf_path) < 0) {
                strv_free(argv);
                return NULL;
        }
        return argv;
}

int dnsmasq_paths(const char *name, const char *run_dir, const char *state_dir, char **ret_conf,
                  char **ret_pid, char **ret_leases) {
        if (!name || dv_name_problem(DV_KIND_NETWORK, name))
                return -EINVAL;
        _cleanup_free_ char *conf = NULL, *pid = NULL, *leases = NULL;
        if (ret_conf && (!run_dir || asprintf(&conf, "%s/dnsmasq/%s.conf", run_dir, name) < 0))
                return -ENOMEM;
        if (ret_pid && (!run_dir || asprintf(&pid, "%s/dnsmasq/%s.pid", run_dir, name) < 0))
                return -ENOMEM;
        if (ret_leases &&
            (!state_dir || asprintf(&leases, "%s/networks/%s.leases", state_dir, name) < 0))
                return -ENOMEM;
        if (ret_conf)
                *ret_conf = TAKE_PTR(conf);
        if (ret_pid)
                *ret_pid = TAKE_PTR(pid);
        if (ret_leases)
                *ret_leases = TAKE_PTR(leases);
        return 0;
}

/* ---- the process ---------------------------------------------------------------------- */

/* dnsmasq writes its pidfile as root and then hands it to the user it drops to (its own
 * user "dnsmasq", or nobody on Debian without one): that user could write any PID into
 * it. So the file is never trusted alone: once dnsmasq is up, the agent checks the
 * process (the dnsmasq binary, exactly our command line, started after we ran it, running
 * as the user it was told) and records its identity (PID, start time, uid/gid, binary:
 * drivers/domain/proc.h) in RUN_DIR/dnsmasq/NAME.ident, and writes the pidfile again as
 * root. Status and stop believe only a process with that identity. */

/* The account dnsmasq runs as. Without a user= line dnsmasq drops to its compiled-in user,
 * nobody on Debian, whose every process may signal it; Debian's dnsmasq-base creates a
 * system user "dnsmasq" (primary group nogroup) for dnsmasq alone. Looked up at each
 * start and status, never a uid compiled in here. */
struct run_as {
        bool found; /* the dnsmasq user exists: user= and group= lines */
        char user[64];
        char group[64]; /* its primary group's name; "" when it has none: no group= */
        uid_t uid;
        gid_t gid;
};

static void run_as_lookup(struct run_as *ret) {
        static atomic_bool told;
        char buf[16384];
        struct passwd pw, *p = NULL;
        struct group gr, *g = NULL;

        *ret = (struct run_as){0};
        int r = getpwnam_r(DNSMASQ_USER, &pw, buf, sizeof(buf), &p);
        if (!p) {
                if (!atomic_exchange(&told, true))
                        log_warning("there is no user %s (%s): dnsmasq runs as its compiled-in "
                                    "user (nobody on Debian), which every process of that user "
                                    "may signal; Debian's dnsmasq-base package creates the user",
                                    DNSMASQ_USER, r ? strerror(r) : "not in the user database");
                return;
        }
        ret->found = true;
        ret->uid = pw.pw_uid;
        ret->gid = pw.pw_gid;
        snprintf(ret->user, sizeof(ret->user), "%s", DNSMASQ_USER);
        if (getgrgid_r(pw.pw_gid, &gr, buf, sizeof(buf), &g) == 0 && g &&
            strlen(g->gr_name) < sizeof(ret->group))
                snprintf(ret->group, sizeof(ret->group), "%s", g->gr_name);
}

/* dnsmasq_conf() with the user and group of as. */
static int conf_text(const struct network_def *def, const char *bridge, const char *leasefile,
                     const char *pidfile, const struct run_as *as, char **ret) {
        return dnsmasq_conf(def, bridge, leasefile, pidfile, as->found ? as->user : NULL,
                            as->found && as->group[0] ? as->group : NULL, ret);
}

static char *ident_path(const char *pidfile) {
        size_t n = strlen(pidfile);
        if (n < 4 || strcmp(pidfile + n - 4, ".pid") != 0)
                return NULL;
        return strdupf("%.*s.ident", (int)(n - 4), pidfile);
}

/* True when pid's command line is exactly the one dnsmasq_start runs. */
static bool argv_is_ours(pid_t pid, const char *conf_path) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *cmdline = NULL;
        size_t len = 0;
        if (read_full_file(p, 64 * 1024, &cmdline, &len) < 0)
                return false;
        _cleanup_strv_free_ char **want = dnsmasq_argv(conf_path);
        size_t i = 0;
        for (char **w = want; w && *w; w++) {
                size_t n = strlen(*w) + 1;
                if (i + n > len || memcmp(cmdline + i, *w, n) != 0)
                        return false;
                i += n;
        }
        return want && i == len;
}

/* 0 when pid is our dnsmasq: our command line and the identity of the record (with no
 * record, a dnsmasq started by an agent that kept none: the dnsmasq binary). -EPERM with
 * *ret_why (caller frees) when it is not, -ESRCH when it is gone. */
static int check_ours(pid_t pid, const char *conf_path, const char *identfile, char **ret_why) {
        *ret_why = NULL;
        if (!argv_is_ours(pid, conf_path)) {
                if (!dom_proc_alive(pid))
                        return -ESRCH;
                *ret_why = strdup("has another command line");
                return *ret_why ? -EPERM : -ENOMEM;
        }
        struct dom_proc_ident want;
        int r = dom_proc_ident_load(identfile, &want);
        if (r < 0) {
                *ret_why = strdupf("its record %s is not one declvirt wrote (%s)", identfile,
                                   strerror(-r));
                return *ret_why ? -EPERM : -ENOMEM;
        }
        if (want.pid == 0) {
                struct dom_proc_ident have;
                if (dom_proc_ident_read(pid, &have) < 0)
                        return -ESRCH;
                want = have;
                r = dom_proc_binary_id(DNSMASQ_BINARY, &want.exe_dev, &want.exe_ino);
                if (r < 0) {
                        *ret_why = strdupf("the binary %s cannot be compared with it (%s)",
                                           DNSMASQ_BINARY, strerror(-r));
                        return *ret_why ? -EPERM : -ENOMEM;
                }
        }
        return dom_proc_ident_check(pid, &want, ret_why);
}

/* The PID of our running dnsmasq (the record's, else the pidfile's), or 0. */
static pid_t running_pid(const char *pidfile, const char *identfile, const char *conf_path) {
        struct dom_proc_ident rec;
        pid_t pid = 0;
        if (dom_proc_ident_load(identfile, &rec) == 0 && rec.pid > 0)
                pid = rec.pid;
        else if (dom_proc_read_pidfile(pidfile, &pid) < 0)
                return 0;
        if (pid <= 0)
                return 0;
        _cleanup_free_ char *why = NULL;
        int r = check_ours(pid, conf_path, identfile, &why);
        if (r == -EPERM)
                log_debug("dnsmasq: process %d of %s is not ours: it %s", (int)pid, pidfile,
                          strna(why));
        return r == 0 ? pid : 0;
}

/* CLOCK_BOOTTIME in the clock ticks of /proc/PID/stat's start time. */
static uint64_t boot_ticks(void) {
        long hz = sysconf(_SC_CLK_TCK);
        return now_usec(CLOCK_BOOTTIME) / (USEC_PER_SEC / (uint64_t)(hz > 0 ? hz : 100));
}

/* The daemon dnsmasq_start just ran, once it wrote its pidfile: its own command line, the
 * dnsmasq binary, started after `since` (ticks since boot), and done dropping root (it
 * writes the pidfile first; its uid and gid are part of the record): to the dnsmasq user
 * and its group when there is one, else to any uid but root's. Recorded, and the pidfile
 * written again as root (the one dnsmasq wrote belongs to its user). -EAGAIN while it is
 * not there yet. */
static int record_started(const char *pidfile, const char *identfile, const char *conf_path,
                          uint64_t since, const struct run_as *as, pid_t *ret_pid) {
        *ret_pid = 0;
        pid_t pid = 0;
        if (dom_proc_read_pidfile(pidfile, &pid) < 0 || pid <= 0)
                return -EAGAIN;
        _cleanup_close_ int fd = pidfd_open(pid, 0); /* pins it while it is looked at */
        struct dom_proc_ident have;
        uint64_t dev = 0, ino = 0;
        if (fd < 0 || dom_proc_ident_read(pid, &have) < 0 || !argv_is_ours(pid, conf_path))
                return -EAGAIN;
        int r = dom_proc_binary_id(DNSMASQ_BINARY, &dev, &ino);
        if (r < 0)
                return r;
        /* A tick of rounding between the two clocks. */
        if (have.exe_dev != dev || have.exe_ino != ino || have.start + 1 < since ||
            have.euid == 0 || have.ruid != have.euid)
                return -EAGAIN;
        if (as->found && (have.euid != as->uid ||
                          (as->group[0] && (have.rgid != as->gid || have.egid != as->gid))))
                return -EAGAIN;
        r = dom_proc_ident_write(identfile, &have);
        if (r >= 0)
                r = dom_proc_write_pidfile(pidfile, pid);
        if (r >= 0)
                *ret_pid = pid;
        return r;
}

int dnsmasq_stop(const char *name, const char *run_dir, struct dv_error *err) {
        _cleanup_free_ char *conf = NULL, *pidfile = NULL, *identfile = NULL;
        if (dnsmasq_paths(name, run_dir, NULL, &conf, &pidfile, NULL) < 0 ||
            !(identfile = ident_path(pidfile)))
                return dv_error_add(err, -EINVAL, 0, "invalid network name or run directory");

        struct dom_proc_ident rec;
        pid_t pid = 0;
        if (dom_proc_ident_load(identfile, &rec) == 0 && rec.pid > 0)
                pid = rec.pid;
        else if (dom_proc_read_pidfile(pidfile, &pid) < 0)
                pid = 0;
        /* A pidfd pins the process: checked after opening it, a signal reaches only the
         * dnsmasq we looked at, never a process that reused its PID. */
        _cleanup_close_ int fd = pid > 0 ? pidfd_open(pid, 0) : -1;
        _cleanup_free_ char *why = NULL;
        int r = fd >= 0 ? check_ours(pid, conf, identfile, &why) : -ESRCH;
        if (r == -EPERM)
                log_warning("dnsmasq %s: process %d of %s is not ours (it %s): not signalled", name,
                            (int)pid, pidfile, strna(why));
        if (r == 0) {
                log_debug("dnsmasq %s: stopping PID %d", name, (int)pid);
                r = dom_proc_signal(fd, pid, SIGTERM);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot signal dnsmasq (PID %d): %s",
                                            (int)pid, strerror(-r));
                /* Only the pidfd says the process is gone: /proc/PID/exe disappears
                 * earlier, while dnsmasq still holds its sockets, and a restart would then
                 * fail with "Address already in use". */
                if (!dom_proc_wait_exit(fd, pid, STOP_WAIT_MSEC * USEC_PER_MSEC)) {
                        r = dom_proc_signal(fd, pid, SIGKILL);
                        if (r < 0 || !dom_proc_wait_exit(fd, pid, KILL_WAIT_MSEC * USEC_PER_MSEC))
                                return dv_error_add(err, r < 0 ? r : -ETIMEDOUT, 0,
                                                    "dnsmasq (PID %d) does not stop", (int)pid);
                }
        }
        /* dnsmasq leaves its pidfile behind. */
        if (unlink(pidfile) < 0 && errno != ENOENT)
                return dv_error_add(err, negative_errno(), 0, "cannot remove %s", pidfile);
        if (unlink(identfile) < 0 && errno != ENOENT)
                return dv_error_add(err, negative_errno(), 0, "cannot remove %s", identfile);
        if (unlink(conf) < 0 && errno != ENOENT)
                return dv_error_add(err, negative_errno(), 0, "cannot remove %s", conf);
        return 0;
}

/* The directory of the pidfile and the record: root's, and only root may write in it
 * (dnsmasq's user would otherwise replace the files the agent trusts). */
static int check_run_sub(const char *dir, struct dv_error *err) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot open %s: %m", dir);
        if (st.st_uid != geteuid() || (st.st_mode & 0022))
                return dv_error_add(err, -EPERM, 0,
                                    "%s belongs to uid %u with mode %04o: only root may write "
                                    "in the directory of dnsmasq's pidfile",
                                    dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return 0;
}

int dnsmasq_start(const struct network_def *def, const char *bridge, const char *run_dir,
                  const char *state_dir, struct dv_error *err) {
        _cleanup_free_ char *conf = NULL, *pidfile = NULL, *leases = NULL, *text = NULL;
        _cleanup_free_ char *run_sub = NULL, *state_sub = NULL;
        int r;

        if (!def || dnsmasq_paths(def->name, run_dir, state_dir, &conf, &pidfile, &leases) < 0)
                return dv_error_add(err, -EINVAL, 0, "invalid network name or directories");
        struct run_as as;
        run_as_lookup(&as);
        r = conf_text(def, bridge, leases, pidfile, &as, &text);
        if (r < 0)
                return dv_error_add(err, r, 0,
                                    "cannot write a dnsmasq configuration for network %s",
                                    def->name);
        run_sub = path_dirname(conf);
        state_sub = path_dirname(leases);
        if (!run_sub || !state_sub)
                return -ENOMEM;
        if ((r = mkdir_p(run_sub, 0755)) < 0 || (r = mkdir_p(state_sub, 0755)) < 0)
                return dv_error_add(err, r, 0, "cannot create %s or %s: %s", run_sub, state_sub,
                                    strerror(-r));
        if ((r = check_run_sub(run_sub, err)) < 0)
                return r;
        _cleanup_free_ char *identfile = ident_path(pidfile);
        if (!identfile)
                return -ENOMEM;

        /* Two instances would fight over the port and the lease file. */
        r = dnsmasq_stop(def->name, run_dir, err);
        if (r < 0)
                return r;
        r = write_file_atomic(conf, text, strlen(text), 0644);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot write %s: %s", conf, strerror(-r));

        _cleanup_strv_free_ char **argv = dnsmasq_argv(conf);
        if (!argv)
                return -ENOMEM;
        struct cmd_opts opts = {.timeout_usec = 30 * USEC_PER_SEC};
        uint64_t since = boot_ticks();
        r = cmd_run(argv, &opts, NULL, err);
        if (r < 0)
                return r;

        /* The parent exits when the daemon is ready; the pidfile may trail it a little. */
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + START_WAIT_USEC;
        for (;;) {
                pid_t pid = 0;
                r = record_started(pidfile, identfile, conf, since, &as, &pid);
                if (r < 0 && r != -EAGAIN)
                        return dv_error_add(err, r, 0, "cannot record dnsmasq in %s: %s", identfile,
                                            strerror(-r));
                if (pid > 0) {
                        log_debug("dnsmasq %s: running as PID %d", def->name, (int)pid);
                        return 0;
                }
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return dv_error_add(err, -ETIMEDOUT, 0,
                                            "dnsmasq for network %s did not come up in time: "
                                            "%s names no dnsmasq of ours that dropped root%s%s",
                                            def->name, pidfile, as.found ? " to user " : "",
                                            as.found ? as.user : "");
                usleep(10000);
        }
}

int dnsmasq_status(const struct network_def *def, const char *bridge, const char *run_dir,
                   const char *state_dir, pid_t *ret_pid, bool *ret_conf_current,
                   struct dv_error *err) {
        _cleanup_free_ char *conf = NULL, *pidfile = NULL, *leases = NULL, *identfile = NULL;
        if (!def || dnsmasq_paths(def->name, run_dir, state_dir, &conf, &pidfile, &leases) < 0 ||
            !(identfile = ident_path(pidfile)))
                return dv_error_add(err, -EINVAL, 0, "invalid network name or directories");
        if (ret_pid)
                *ret_pid = running_pid(pidfile, identfile, conf);
        if (ret_conf_current) {
                _cleanup_free_ char *want = NULL, *have = NULL;
                size_t len = 0;
                struct run_as as;
                run_as_lookup(&as);
                int r = conf_text(def, bridge, leases, pidfile, &as, &want);
                if (r < 0)
                        return dv_error_add(err, r, 0,
                                            "cannot write a dnsmasq configuration for network %s",
                                            def->name);
                r = read_full_file(conf, 1u << 20, &have, &len);
                if (r < 0 && r != -ENOENT)
                        return dv_error_add(err, r, 0, "cannot read %s: %s", conf, strerror(-r));
                *ret_conf_current = r >= 0 && len == strlen(want) && memcmp(have, want, len) == 0;
        }
        return 0;
}

/* ---- leases --------------------------------------------------------------------------- */

void dnsmasq_leases_free(struct dnsmasq_lease *l, size_t n) {
        for (size_t i = 0; l && i < n; i++)
                free(l[i].hostname);
        free(l);
}

/* One lease line: EXPIRY MAC|IAID IP HOSTNAME [CLIENT-ID]. */
static int parse_lease_line(char *line, struct dnsmasq_lease *ret) {
        char *f[5] = {0};
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t", &save); t && n < ELEMENTSOF(f);
             t = strtok_r(NULL, " \t", &save))
                f[n++] = t;
        if (n < 4)
                return -EINVAL;
        struct dnsmasq_lease l = {0};
        if (parse_u64(f[0], &l.expiry) < 0)
                return -EINVAL;
        struct network_addr a;
        if (network_addr_parse(f[2], &a) < 0 || strlen(f[2]) >= sizeof(l.ip))
                return -EINVAL;
        network_addr_format(&a, l.ip);
        if (a.family == AF_INET && mac_is_full_form(f[1])) {
                for (int i = 0; i < 17; i++)
                        l.mac[i] = (char)(f[1][i] >= 'A' && f[1][i] <= 'F' ? f[1][i] - 'A' + 'a'
                                                                           : f[1][i]);
                l.mac[17] = '\0';
        }
        if (!streq(f[3], "*")) {
                l.hostname = strdup(f[3]);
                if (!l.hostname)
                        return -ENOMEM;
        }
        *ret = l;
        return 0;
}

int dnsmasq_leases_parse(const char *text, struct dnsmasq_lease **ret, size_t *n,
                         struct dv_error *err) {
        struct dnsmasq_lease *l = NULL;
        size_t k = 0, cap = 0;
        int lineno = 0;
        const char *p = text ? text : "";

        while (*p) {
                size_t len = strcspn(p, "\n");
                lineno++;
                _cleanup_free_ char *line = strndup(p, len);
                p += len + (p[len] == '\n');
                if (!line) {
                        dnsmasq_leases_free(l, k);
                        return -ENOMEM;
                }
                /* The server's DUID for DHCPv6, and blank lines. */
                if (strncmp(line, "duid ", 5) == 0 || line[strspn(line, " \t")] == '\0')
                        continue;
                if (k == cap) {
                        size_t nc = cap ? cap * 2 : 8;
                        struct dnsmasq_lease *nl = realloc(l, nc * sizeof(*l));
                        if (!nl) {
                                dnsmasq_leases_free(l, k);
                                return -ENOMEM;
                        }
                        l = nl;
                        cap = nc;
                }
                int r = parse_lease_line(line, &l[k]);
                if (r == -ENOMEM) {
                        dnsmasq_leases_free(l, k);
                        return r;
                }
                if (r < 0) {
                        dv_error_warn(err, lineno, "unreadable lease line skipped");
                        continue;
                }
                k++;
        }
        if (k == 0) {
                free(l);
                l = NULL;
        }
        *ret = l;
        *n = k;
        return 0;
}

int dnsmasq_leases(const char *name, const char *state_dir, struct dnsmasq_lease **ret, size_t *n,
                   struct dv_error *err) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        if (dnsmasq_paths(name, NULL, state_dir, NULL, NULL, &path) < 0)
                return dv_error_add(err, -EINVAL, 0, "invalid network name or state directory");
        int r = read_full_file(path, LEASES_MAX_SIZE, &text, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                *n = 0;
                return 0;
        }
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read %s: %s", path, strerror(-r));
        return dnsmasq_leases_parse(text, ret, n, err);
}
