/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The networks' nftables table (`inet declvirt`): the pure ruleset generator, the
 * libnftables transaction, the cached presence check, and the IP forwarding switch. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>

#include "drivers/network/firewall.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

/* libnftables keeps some state per process (symbol tables, the netlink cache); every
 * use of it and the presence cache below are serialised by this lock. */
static pthread_mutex_t fw_lock = PTHREAD_MUTEX_INITIALIZER;
/* Read-modify-record of the forwarding sysctls. */
static pthread_mutex_t fwd_lock = PTHREAD_MUTEX_INITIALIZER;

bool fw_network_needs_rules(const struct network_def *def) {
        switch (def->forward.mode) {
        case NETWORK_FORWARD_NONE:
        case NETWORK_FORWARD_NAT:
        case NETWORK_FORWARD_ROUTE:
                return true;
        default:
                return false;
        }
}

/* ---- the ruleset ---------------------------------------------------------------------- */

struct subnet {
        int family;
        char text[NETWORK_ADDR_STRLEN + 5]; /* "192.0.2.0/24" */
};

static int ip_subnet(const struct network_ip *ip, struct subnet *ret) {
        int prefix = network_ip_prefix(ip);
        if (prefix < 0)
                return -EINVAL;
        struct network_addr m = {.family = ip->address.family};
        unsigned bits = m.family == AF_INET ? 32 : 128;
        if ((unsigned)prefix > bits)
                return -EINVAL;
        for (unsigned i = 0; i < (unsigned)prefix; i++)
                m.a[i / 8] |= (uint8_t)(ip->address.a[i / 8] & (0x80u >> (i % 8)));
        char a[NETWORK_ADDR_STRLEN];
        network_addr_format(&m, a);
        if (!a[0])
                return -EINVAL;
        ret->family = m.family;
        snprintf(ret->text, sizeof(ret->text), "%s/%d", a, prefix);
        return 0;
}

struct chains {
        struct buf out, in, cross, nat;
};

static void nat_rules(struct buf *b, const struct network_def *def, const char *net,
                      const char *dev_match) {
        char action[2 * NETWORK_ADDR_STRLEN + 32];
        if (def->forward.has_nat_address) {
                char s[NETWORK_ADDR_STRLEN], e[NETWORK_ADDR_STRLEN];
                network_addr_format(&def->forward.nat_start, s);
                network_addr_format(&def->forward.nat_end, e);
                if (def->forward.nat_end.family && !streq(s, e))
                        snprintf(action, sizeof(action), "snat ip to %s-%s", s, e);
                else
                        snprintf(action, sizeof(action), "snat ip to %s", s);
        } else
                snprintf(action, sizeof(action), "masquerade");
        unsigned p0 = def->forward.has_nat_port ? def->forward.nat_port_start : 1024;
        unsigned p1 = def->forward.has_nat_port ? def->forward.nat_port_end : 65535;
        char ports[32];
        if (p0 == p1)
                snprintf(ports, sizeof(ports), "%u", p0);
        else
                snprintf(ports, sizeof(ports), "%u-%u", p0, p1);

        /* Multicast and broadcast leave the host unchanged, as libvirt does. */
        buf_printf(b, "\t\tip saddr %s ip daddr 224.0.0.0/24 counter return\n", net);
        buf_printf(b, "\t\tip saddr %s ip daddr 255.255.255.255 counter return\n", net);
        static const char *const protos[] = {"tcp", "udp"};
        for (size_t i = 0; i < ELEMENTSOF(protos); i++)
                buf_printf(b, "\t\tmeta l4proto %s ip saddr %s ip daddr != %s%s counter %s%s%s\n",
                           protos[i], net, net, dev_match, action,
                           def->forward.has_nat_address ? ":" : " to :", ports);
        buf_printf(b, "\t\tip saddr %s ip daddr != %s%s counter %s\n", net, net, dev_match, action);
}

static int network_rules(struct chains *c, const struct fw_network *fn) {
        const struct network_def *def = fn->def;
        const char *br = fn->bridge;
        const char *dev = def->forward.dev;
        bool nat = def->forward.mode == NETWORK_FORWARD_NAT;
        bool routed = nat || def->forward.mode == NETWORK_FORWARD_ROUTE;
        char out_dev[40] = "", in_dev[40] = "";

        if (dev && routed) {
                snprintf(out_dev, sizeof(out_dev), " oifname \"%s\"", dev);
                snprintf(in_dev, sizeof(in_dev), " iifname \"%s\"", dev);
        }

        for (size_t i = 0; routed && i < def->n_ips; i++) {
                const struct network_ip *ip = &def->ips[i];
                struct subnet s;
                if (ip->address.family != AF_INET && ip->address.family != AF_INET6)
                        continue;
                if (ip_subnet(ip, &s) < 0)
                        return -EINVAL;
                const char *l3 = s.family == AF_INET ? "ip" : "ip6";
                bool masq = nat && s.family == AF_INET;
                buf_printf(&c->out, "\t\tiifname \"%s\" %s saddr %s%s counter accept\n", br, l3,
                           s.text, out_dev);
                buf_printf(&c->in, "\t\toifname \"%s\" %s daddr %s%s%s counter accept\n", br, l3,
                           s.text, in_dev, masq ? " ct state established,related" : "");
                if (masq)
                        nat_rules(&c->nat, def, s.text, out_dev);
        }
        buf_printf(&c->out, "\t\tiifname \"%s\" counter reject\n", br);
        buf_printf(&c->in, "\t\toifname \"%s\" counter reject\n", br);
        buf_printf(&c->cross, "\t\tiifname \"%s\" oifname \"%s\" counter accept\n", br, br);
        return 0;
}

static int cmp_fw_network(const void *a, const void *b) {
        const struct fw_network *x = *(const struct fw_network *const *)a;
        const struct fw_network *y = *(const struct fw_network *const *)b;
        int r = strcmp(x->bridge, y->bridge);
        return r ? r : strcmp(strempty(x->def->name), strempty(y->def->name));
}

static void chains_free(struct chains *c) {
        buf_free(&c->out);
        buf_free(&c->in);
        buf_free(&c->cross);
        buf_free(&c->nat);
}

int fw_ruleset(const struct fw_network *nets, size_t n, char **ret) {
        _cleanup_free_ const struct fw_network **sorted = NULL;
        size_t k = 0;

        if (n > 0) {
                sorted = calloc(n, sizeof(*sorted));
                if (!sorted)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                if (!nets[i].def || !nets[i].bridge)
                        return -EINVAL;
                if (!fw_network_needs_rules(nets[i].def))
                        continue;
                /* Names go into the rules quoted: only interface-name characters. */
                if (network_ifname_problem(nets[i].bridge))
                        return -EINVAL;
                if (nets[i].def->forward.dev && network_ifname_problem(nets[i].def->forward.dev))
                        return -EINVAL;
                sorted[k++] = &nets[i];
        }
        if (k > 1)
                qsort(sorted, k, sizeof(*sorted), cmp_fw_network);

        _cleanup_buf_ struct buf b = BUF_INIT;
        buf_puts(&b, "# declvirt: the firewall of its virtual networks (generated, replaced as a "
                     "whole)\n");
        /* "add" first makes the "delete" valid when the table does not exist yet. */
        buf_puts(&b, "add table inet " FW_TABLE "\n");
        buf_puts(&b, "delete table inet " FW_TABLE "\n");
        if (k == 0)
                goto done;

        struct chains c = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
        for (size_t i = 0; i < k; i++) {
                int r = network_rules(&c, sorted[i]);
                if (r < 0) {
                        chains_free(&c);
                        return r;
                }
        }
        buf_puts(&b, "table inet " FW_TABLE " {\n");
        /* Cross first, then into, then out of the bridges, as libvirt orders them. */
        buf_puts(&b, "\tchain forward {\n"
                     "\t\ttype filter hook forward priority filter; policy accept;\n"
                     "\t\tcounter jump guest_cross\n"
                     "\t\tcounter jump guest_input\n"
                     "\t\tcounter jump guest_output\n"
                     "\t}\n\n");
        buf_puts(&b, "\tchain guest_output {\n");
        buf_puts(&b, buf_str(&c.out));
        buf_puts(&b, "\t}\n\n\tchain guest_input {\n");
        buf_puts(&b, buf_str(&c.in));
        buf_puts(&b, "\t}\n\n\tchain guest_cross {\n");
        buf_puts(&b, buf_str(&c.cross));
        buf_puts(&b, "\t}\n\n\tchain guest_nat {\n"
                     "\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        buf_puts(&b, buf_str(&c.nat));
        buf_puts(&b, "\t}\n}\n");
        bool oom = c.out.oom || c.in.oom || c.cross.oom || c.nat.oom;
        chains_free(&c);
        if (oom)
                return -ENOMEM;
done:
        *ret = buf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

/* ---- libnftables ---------------------------------------------------------------------- */

static void nft_ctx_freep(struct nft_ctx **c) {
        if (*c)
                nft_ctx_free(*c);
}

static struct nft_ctx *fw_ctx_new(void) {
        struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!ctx)
                return NULL;
        if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
                nft_ctx_free(ctx);
                return NULL;
        }
        return ctx;
}

/* Line `line` (1-based) of text, without its newline, into out. */
static void text_line(const char *text, long line, char *out, size_t size) {
        out[0] = '\0';
        for (long i = 1; text && i < line; i++) {
                text = strchr(text, '\n');
                if (!text)
                        return;
                text++;
        }
        if (!text)
                return;
        size_t len = strcspn(text, "\n");
        while (len > 0 && (*text == '\t' || *text == ' ')) {
                text++;
                len--;
        }
        snprintf(out, size, "%.*s", (int)MIN(len, size - 1), text);
}

/* nft reports "FILE:LINE:COLS: Error: MESSAGE" followed by the line and carets. */
static int nft_error(struct dv_error *err, const char *text, const char *ebuf) {
        const char *e = strempty(ebuf);
        const char *msg = strstr(e, "Error: ");
        int r = strstr(e, "Operation not permitted") ? -EPERM : -EIO;
        long line = 0;
        char where[256] = "";

        if (msg) {
                /* The location precedes "Error:" on the same line. */
                const char *start = msg;
                while (start > e && start[-1] != '\n')
                        start--;
                const char *colon = memchr(start, ':', (size_t)(msg - start));
                if (colon) {
                        char *end = NULL;
                        errno = 0;
                        long l = strtol(colon + 1, &end, 10);
                        if (errno == 0 && end != colon + 1 && *end == ':' && l > 0)
                                line = l;
                }
                msg += strlen("Error: ");
        } else
                msg = e;
        size_t mlen = strcspn(msg, "\n");
        if (line > 0) {
                char l[160];
                text_line(text, line, l, sizeof(l));
                snprintf(where, sizeof(where), " at line %ld of the ruleset: %s", line, l);
        }
        return dv_error_add(err, r, 0, "nftables refused the firewall table%s: %.*s", where,
                            (int)mlen, mlen ? msg : "unknown error");
}

int fw_apply(const char *text, struct dv_error *err) {
        if (!text)
                return -EINVAL;
        /* nft reports the line of an error only for files (from a buffer it quotes line 1
         * whatever the line): hand it the text as an anonymous file. */
        _cleanup_close_ int fd = memfd_create("declvirt.nft", MFD_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                return dv_error_add(err, r, 0, "memfd_create: %s", strerror(-r));
        }
        size_t len = strlen(text);
        for (size_t off = 0; off < len;) {
                ssize_t k = write(fd, text + off, len - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return dv_error_add(err, -EIO, 0, "cannot write the ruleset to a memfd");
                off += (size_t)k;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        pthread_mutex_lock(&fw_lock);
        _cleanup_(nft_ctx_freep) struct nft_ctx *ctx = fw_ctx_new();
        int r = 0;
        if (!ctx)
                r = dv_error_add(err, -ENOMEM, 0, "cannot set up libnftables");
        else if (nft_run_cmd_from_filename(ctx, path) != 0)
                r = nft_error(err, text, nft_ctx_get_error_buffer(ctx));
        else
                log_debug("firewall: table inet %s replaced", FW_TABLE);
        pthread_mutex_unlock(&fw_lock);
        return r;
}

/* ---- presence, cached by ruleset generation ------------------------------------------- */

static int gen_attr_cb(const struct nlattr *attr, void *data) {
        if (mnl_attr_get_type(attr) == NFTA_GEN_ID && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
                *(uint32_t *)data = ntohl(mnl_attr_get_u32(attr));
        return MNL_CB_OK;
}

static int gen_cb(const struct nlmsghdr *nlh, void *data) {
        struct {
                uint32_t id;
                bool found;
        } *g = data;
        uint32_t id = 0;
        if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), gen_attr_cb, &id) < 0)
                return MNL_CB_ERROR;
        g->id = id;
        g->found = true;
        return MNL_CB_OK;
}

static void mnl_socket_closep(struct mnl_socket **s) {
        if (*s)
                mnl_socket_close(*s);
}

/* The nftables ruleset generation: it changes with every committed transaction. */
static int nft_generation(uint32_t *ret) {
        _cleanup_(mnl_socket_closep) struct mnl_socket *nl =
                mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
        if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
                return negative_errno();
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        uint32_t seq = (uint32_t)time(NULL);
        nlh->nlmsg_seq = seq;
        struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
        nfg->nfgen_family = AF_UNSPEC;
        nfg->version = NFNETLINK_V0;
        nfg->res_id = 0;
        if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        struct {
                uint32_t id;
                bool found;
        } g = {0, false};
        unsigned portid = mnl_socket_get_portid(nl);
        ssize_t len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
        if (len < 0)
                return negative_errno();
        if (mnl_cb_run(buf, (size_t)len, seq, portid, gen_cb, &g) < 0)
                return negative_errno();
        if (!g.found)
                return -EIO;
        *ret = g.id;
        return 0;
}

static struct {
        bool valid;
        dev_t ns_dev;
        ino_t ns_ino;
        uint32_t gen;
        char *listing; /* "" when the table does not exist */
} cache;

static int list_table(char **ret, struct dv_error *err) {
        _cleanup_(nft_ctx_freep) struct nft_ctx *ctx = fw_ctx_new();
        if (!ctx)
                return dv_error_add(err, -ENOMEM, 0, "cannot set up libnftables");
        if (nft_run_cmd_from_buffer(ctx, "list table inet " FW_TABLE) != 0) {
                const char *e = strempty(nft_ctx_get_error_buffer(ctx));
                if (strstr(e, "No such file or directory")) {
                        *ret = strdup("");
                        return *ret ? 0 : -ENOMEM;
                }
                return nft_error(err, NULL, e);
        }
        *ret = strdup(strempty(nft_ctx_get_output_buffer(ctx)));
        return *ret ? 0 : -ENOMEM;
}

int fw_table_has_network(const char *bridge, bool *ret, struct dv_error *err) {
        if (!bridge || network_ifname_problem(bridge))
                return -EINVAL;
        struct stat st;
        int r;
        /* The cache is per network namespace (a thread may have entered another one). */
        if (stat("/proc/thread-self/ns/net", &st) < 0 && stat("/proc/self/ns/net", &st) < 0) {
                r = negative_errno();
                return dv_error_add(err, r, 0, "cannot stat the network namespace: %s",
                                    strerror(-r));
        }
        uint32_t gen = 0;
        bool have_gen = nft_generation(&gen) >= 0;

        pthread_mutex_lock(&fw_lock);
        r = 0;
        if (!have_gen || !cache.valid || cache.gen != gen || cache.ns_dev != st.st_dev ||
            cache.ns_ino != st.st_ino) {
                char *listing = NULL;
                r = list_table(&listing, err);
                if (r >= 0) {
                        free(cache.listing);
                        cache.listing = listing;
                        cache.valid = have_gen;
                        cache.gen = gen;
                        cache.ns_dev = st.st_dev;
                        cache.ns_ino = st.st_ino;
                }
        }
        if (r >= 0) {
                char in[40], out[40];
                snprintf(in, sizeof(in), "iifname \"%s\"", bridge);
                snprintf(out, sizeof(out), "oifname \"%s\"", bridge);
                *ret = strstr(cache.listing, in) || strstr(cache.listing, out);
        }
        pthread_mutex_unlock(&fw_lock);
        return r;
}

/* ---- IP forwarding -------------------------------------------------------------------- */

static int forward_paths(int family, const char **sysctl, const char **record) {
        switch (family) {
        case AF_INET:
                *sysctl = "/proc/sys/net/ipv4/ip_forward";
                *record = "ip_forward.prev";
                return 0;
        case AF_INET6:
                *sysctl = "/proc/sys/net/ipv6/conf/all/forwarding";
                *record = "ipv6_forwarding.prev";
                return 0;
        default:
                return -EAFNOSUPPORT;
        }
}

/* The value of a boolean-ish sysctl or record: a small decimal number. */
static int read_value(const char *path, uint64_t *ret) {
        return read_u64_file(path, 0, 2, ret);
}

static int write_sysctl(const char *path, uint64_t v) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        char s[24];
        int len = snprintf(s, sizeof(s), "%llu\n", (unsigned long long)v);
        if (write(fd, s, (size_t)len) != len)
                return negative_errno();
        return 0;
}

int fw_ip_forward_on(int family, const char *record_dir, struct dv_error *err) {
        const char *sysctl, *record;
        if (forward_paths(family, &sysctl, &record) < 0 || !record_dir)
                return dv_error_add(err, -EAFNOSUPPORT, 0, "no forwarding switch for family %d",
                                    family);
        _cleanup_free_ char *rpath = path_join(record_dir, record);
        if (!rpath)
                return -ENOMEM;

        pthread_mutex_lock(&fwd_lock);
        uint64_t cur = 0;
        int r = read_value(sysctl, &cur);
        if (r < 0) {
                if (r == -ENOENT)
                        r = dv_error_add(err, -EAFNOSUPPORT, 0, "%s is missing (%s disabled?)",
                                         sysctl, family == AF_INET6 ? "IPv6" : "IPv4");
                else
                        r = dv_error_add(err, r, 0, "cannot read %s: %s", sysctl, strerror(-r));
                goto out;
        }
        /* The first value seen is the host's own: never overwrite the record. */
        if (access(rpath, F_OK) < 0) {
                char s[24];
                int len = snprintf(s, sizeof(s), "%llu\n", (unsigned long long)cur);
                r = mkdir_p(record_dir, 0755);
                if (r >= 0)
                        r = write_file_atomic(rpath, s, (size_t)len, 0644);
                if (r < 0) {
                        r = dv_error_add(err, r, 0, "cannot record the previous value in %s: %s",
                                         rpath, strerror(-r));
                        goto out;
                }
        }
        /* Writing the IPv6 "all" switch resets every interface's own: only when needed. */
        if (cur != 1) {
                r = write_sysctl(sysctl, 1);
                if (r < 0) {
                        r = dv_error_add(err, r, 0, "cannot write %s: %s", sysctl, strerror(-r));
                        goto out;
                }
                log_debug("firewall: %s was %llu, now 1", sysctl, (unsigned long long)cur);
        }
        r = 0;
out:
        pthread_mutex_unlock(&fwd_lock);
        return r;
}

int fw_ip_forward_restore(int family, const char *record_dir, struct dv_error *err) {
        const char *sysctl, *record;
        if (forward_paths(family, &sysctl, &record) < 0 || !record_dir)
                return dv_error_add(err, -EAFNOSUPPORT, 0, "no forwarding switch for family %d",
                                    family);
        _cleanup_free_ char *rpath = path_join(record_dir, record);
        if (!rpath)
                return -ENOMEM;

        pthread_mutex_lock(&fwd_lock);
        uint64_t prev = 0, cur = 0;
        int r = read_value(rpath, &prev);
        if (r == -ENOENT) {
                r = 0;
                goto out;
        }
        if (r < 0) {
                r = dv_error_add(err, r, 0, "cannot read %s: %s", rpath, strerror(-r));
                goto out;
        }
        r = read_value(sysctl, &cur);
        if (r >= 0 && cur != prev)
                r = write_sysctl(sysctl, prev);
        if (r < 0) {
                r = dv_error_add(err, r, 0, "cannot restore %s to %llu: %s", sysctl,
                                 (unsigned long long)prev, strerror(-r));
                goto out;
        }
        if (unlink(rpath) < 0 && errno != ENOENT) {
                r = negative_errno();
                r = dv_error_add(err, r, 0, "cannot remove %s: %s", rpath, strerror(-r));
                goto out;
        }
        log_debug("firewall: %s restored to %llu", sysctl, (unsigned long long)prev);
        r = 0;
out:
        pthread_mutex_unlock(&fwd_lock);
        return r;
}
