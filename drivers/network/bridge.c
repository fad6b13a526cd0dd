/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bridges, links and addresses through rtnetlink with libmnl: one socket per call,
 * extended acks so that the kernel's own reason reaches the error. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "drivers/network/bridge.h"
#include "util/log.h"
#include "util/macro.h"

/* Large enough for any datagram of a dump: the kernel sizes dump messages after the
 * reader's buffer, up to 32 KiB. */
#define NL_BUF_SIZE 32768

struct nl_ctx {
        mnl_cb_t cb; /* the caller's callback for data messages, may be NULL */
        void *data;
        int error;     /* negative errno from the kernel, 0 */
        char msg[256]; /* the kernel's extended-ack message, "" */
};

static int ext_ack_attr_cb(const struct nlattr *attr, void *data) {
        struct nl_ctx *ctx = data;
        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
            mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
                snprintf(ctx->msg, sizeof(ctx->msg), "%s", mnl_attr_get_str(attr));
        return MNL_CB_OK;
}

static int error_cb(const struct nlmsghdr *nlh, void *data) {
        struct nl_ctx *ctx = data;
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

        if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
                ctx->error = -EBADMSG;
                errno = EBADMSG;
                return MNL_CB_ERROR;
        }
        if (e->error == 0)
                return MNL_CB_STOP; /* the ack */
        if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
                size_t off = sizeof(*e);
                if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
                    e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
                        off += MNL_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
                if (mnl_nlmsg_size(off) <= nlh->nlmsg_len)
                        mnl_attr_parse(nlh, (unsigned)off, ext_ack_attr_cb, ctx);
        }
        ctx->error = e->error < 0 ? e->error : -e->error;
        errno = -ctx->error;
        return MNL_CB_ERROR;
}

static int done_cb(const struct nlmsghdr *nlh, void *data) {
        struct nl_ctx *ctx = data;
        /* A dump that failed half way says so in NLMSG_DONE's payload. */
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
                int e;
                memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
                if (e < 0) {
                        ctx->error = e;
                        errno = -e;
                        return MNL_CB_ERROR;
                }
        }
        return MNL_CB_STOP;
}

static int noop_cb(const struct nlmsghdr *nlh, void *data) {
        (void)nlh;
        (void)data;
        return MNL_CB_OK;
}

static int data_cb(const struct nlmsghdr *nlh, void *data) {
        struct nl_ctx *ctx = data;
        return ctx->cb ? ctx->cb(nlh, ctx->data) : MNL_CB_OK;
}

static void mnl_socket_closep(struct mnl_socket **s) {
        if (*s)
                mnl_socket_close(*s);
}

/* Sends one request and reads the answer up to its ack (or the end of a dump).
 * Returns 0 or a negative errno; *kmsg gets the kernel's explanation, if any. */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data, char *kmsg, size_t kmsg_size) {
        _cleanup_(mnl_socket_closep) struct mnl_socket *nl = NULL;
        _cleanup_free_ char *buf = NULL;
        struct nl_ctx ctx = {.cb = cb, .data = data};
        mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
                [NLMSG_NOOP] = noop_cb,
                [NLMSG_ERROR] = error_cb,
                [NLMSG_DONE] = done_cb,
                [NLMSG_OVERRUN] = noop_cb,
        };
        int one = 1, r;

        kmsg[0] = '\0';
        nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl)
                return negative_errno();
        if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
                return negative_errno();
        /* Both are optimisations or niceties; an old kernel without them still works. */
        (void)mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
        (void)mnl_socket_setsockopt(nl, NETLINK_GET_STRICT_CHK, &one, sizeof(one));

        unsigned portid = mnl_socket_get_portid(nl);
        unsigned seq = (unsigned)time(NULL);
        nlh->nlmsg_seq = seq;
        /* NLM_F_DUMP shares its bits with NLM_F_EXCL and NLM_F_REPLACE: only a GET is a dump. */
        bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP &&
                    (nlh->nlmsg_type == RTM_GETADDR || nlh->nlmsg_type == RTM_GETLINK);
        if (!dump)
                nlh->nlmsg_flags |= NLM_F_ACK;
        if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();

        buf = malloc(NL_BUF_SIZE);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl, buf, NL_BUF_SIZE);
                if (n < 0)
                        return negative_errno();
                r = mnl_cb_run2(buf, (size_t)n, seq, portid, data_cb, &ctx, ctl, ELEMENTSOF(ctl));
                if (r == MNL_CB_ERROR) {
                        r = ctx.error < 0 ? ctx.error : negative_errno();
                        snprintf(kmsg, kmsg_size, "%s", ctx.msg);
                        return r;
                }
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

/* "REASON" or "REASON (kernel: MSG)". */
static int nl_fail(struct dv_error *err, int r, const char *kmsg, const char *prefix,
                   const char *what) {
        char reason[512];
        if (kmsg && *kmsg)
                snprintf(reason, sizeof(reason), "%s (%s)", strerror(-r), kmsg);
        else
                snprintf(reason, sizeof(reason), "%s", strerror(-r));
        return dv_error_add(err, r, 0, "%s %s: %s", prefix, what, reason);
}

static int check_ifname(const char *name, struct dv_error *err) {
        if (!name || !*name || strlen(name) >= IFNAMSIZ || strchr(name, '/'))
                return dv_error_add(err, -EINVAL, 0, "'%s' is not a valid interface name",
                                    strempty(name));
        return 0;
}

/* ---- links ---------------------------------------------------------------------------- */

struct link_reply {
        struct nl_link *link;
        bool found;
        bool is_bridge_data; /* IFLA_INFO_DATA of a bridge was seen */
        int stp;
        uint32_t delay_cs;
};

static int br_data_cb(const struct nlattr *attr, void *data) {
        struct link_reply *lr = data;
        switch (mnl_attr_get_type(attr)) {
        case IFLA_BR_STP_STATE:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
                        lr->stp = mnl_attr_get_u32(attr) != 0;
                break;
        case IFLA_BR_FORWARD_DELAY:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
                        lr->delay_cs = mnl_attr_get_u32(attr);
                break;
        }
        return MNL_CB_OK;
}

static int linkinfo_cb(const struct nlattr *attr, void *data) {
        struct link_reply *lr = data;
        switch (mnl_attr_get_type(attr)) {
        case IFLA_INFO_KIND:
                if (mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0)
                        snprintf(lr->link->kind, sizeof(lr->link->kind), "%.*s",
                                 (int)strnlen(mnl_attr_get_str(attr),
                                              mnl_attr_get_payload_len(attr)),
                                 mnl_attr_get_str(attr));
                break;
        case IFLA_INFO_DATA:
                /* The kernel puts IFLA_INFO_KIND first, so the kind is known here. */
                if (streq(lr->link->kind, "bridge") &&
                    mnl_attr_validate(attr, MNL_TYPE_NESTED) >= 0) {
                        lr->is_bridge_data = true;
                        mnl_attr_parse_nested(attr, br_data_cb, lr);
                }
                break;
        }
        return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *attr, void *data) {
        struct link_reply *lr = data;
        struct nl_link *l = lr->link;
        switch (mnl_attr_get_type(attr)) {
        case IFLA_IFNAME:
                if (mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0)
                        snprintf(l->name, sizeof(l->name), "%.*s",
                                 (int)strnlen(mnl_attr_get_str(attr),
                                              mnl_attr_get_payload_len(attr)),
                                 mnl_attr_get_str(attr));
                break;
        case IFLA_ADDRESS:
                if (mnl_attr_get_payload_len(attr) == sizeof(l->mac)) {
                        memcpy(l->mac, mnl_attr_get_payload(attr), sizeof(l->mac));
                        l->has_mac = true;
                }
                break;
        case IFLA_MTU:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
                        l->mtu = mnl_attr_get_u32(attr);
                break;
        case IFLA_MASTER:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
                        l->master = (int)mnl_attr_get_u32(attr);
                break;
        case IFLA_LINKINFO:
                if (mnl_attr_validate(attr, MNL_TYPE_NESTED) >= 0)
                        mnl_attr_parse_nested(attr, linkinfo_cb, lr);
                break;
        }
        return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data) {
        struct link_reply *lr = data;
        const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
        if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifm))
                return MNL_CB_OK;
        memset(lr->link, 0, sizeof(*lr->link));
        lr->link->ifindex = ifm->ifi_index;
        lr->link->up = ifm->ifi_flags & IFF_UP;
        lr->found = true;
        lr->stp = -1;
        mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, lr);
        return MNL_CB_OK;
}

/* A link request (RTM_GETLINK, RTM_NEWLINK, RTM_DELLINK) for the link of index ifindex
 * (0: found by name) with IFLA_IFNAME name (NULL: none). */
static struct nlmsghdr *link_header(char *buf, uint16_t type, unsigned flags, int ifindex,
                                    const char *name) {
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | flags;
        struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
        ifm->ifi_family = AF_UNSPEC;
        ifm->ifi_index = ifindex;
        if (name)
                mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        return nlh;
}

static int link_query(const char *name, struct link_reply *lr, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        int r = check_ifname(name, err);
        if (r < 0)
                return r;

        struct nlmsghdr *nlh = link_header(buf, RTM_GETLINK, 0, 0, name);
        r = nl_talk(nlh, link_cb, lr, kmsg, sizeof(kmsg));
        if (r == -ENODEV || (r == 0 && !lr->found))
                return -ENODEV; /* an expected answer, not a failure worth a message */
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot look up interface", name);
        return 0;
}

int nl_link_get(const char *name, struct nl_link *ret, struct dv_error *err) {
        struct nl_link l = {0};
        struct link_reply lr = {.link = &l, .stp = -1};
        int r = link_query(name, &lr, err);
        if (r < 0)
                return r;
        *ret = l;
        return 0;
}

int nl_bridge_get(const char *name, int *ret_stp, uint32_t *ret_delay_cs, struct dv_error *err) {
        struct nl_link l = {0};
        struct link_reply lr = {.link = &l, .stp = -1};
        int r = link_query(name, &lr, err);
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "interface %s does not exist", name);
        if (r < 0)
                return r;
        if (!streq(l.kind, "bridge") || !lr.is_bridge_data)
                return dv_error_add(err, -EMEDIUMTYPE, 0, "interface %s is not a bridge", name);
        if (ret_stp)
                *ret_stp = lr.stp < 0 ? 0 : lr.stp;
        if (ret_delay_cs)
                *ret_delay_cs = lr.delay_cs;
        return 0;
}

static struct nlmsghdr *newlink_header(char *buf, const char *name, unsigned flags) {
        return link_header(buf, RTM_NEWLINK, flags, 0, name);
}

int nl_bridge_create(const char *name, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        int r = check_ifname(name, err);
        if (r < 0)
                return r;
        struct nlmsghdr *nlh = newlink_header(buf, name, NLM_F_CREATE | NLM_F_EXCL);
        struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
        mnl_attr_nest_end(nlh, info);
        log_debug("netlink: create bridge %s", name);
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -EEXIST)
                return dv_error_add(err, r, 0, "cannot create bridge %s: the name is taken", name);
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot create bridge", name);
        return 0;
}

int nl_link_delete(const char *name, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        int r = check_ifname(name, err);
        if (r < 0)
                return r;
        struct nlmsghdr *nlh = link_header(buf, RTM_DELLINK, 0, 0, name);
        log_debug("netlink: delete link %s", name);
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot delete interface", name);
        return 0;
}

int nl_link_set(const char *name, const uint8_t *mac, uint32_t mtu, int up, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        int r = check_ifname(name, err);
        if (r < 0)
                return r;
        if (!mac && mtu == 0 && up < 0)
                return 0;
        struct nlmsghdr *nlh = newlink_header(buf, name, 0);
        struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
        if (up >= 0) {
                ifm->ifi_change = IFF_UP;
                ifm->ifi_flags = up ? IFF_UP : 0;
        }
        if (mac)
                mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
        if (mtu > 0)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        log_debug("netlink: set link %s%s%s%s", name, mac ? " address" : "", mtu ? " mtu" : "",
                  up < 0 ? ""
                  : up   ? " up"
                         : " down");
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "interface %s does not exist", name);
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot change interface", name);
        return 0;
}

int nl_link_set_master(const char *name, const char *bridge, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        int r = check_ifname(name, err);
        if (r < 0)
                return r;
        struct nl_link br;
        r = nl_link_get(bridge, &br, err);
        if (r < 0)
                return r;
        struct nlmsghdr *nlh = newlink_header(buf, name, 0);
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)br.ifindex);
        log_debug("netlink: attach %s to %s", name, bridge);
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "interface %s does not exist", name);
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot attach interface to its bridge", name);
        return 0;
}

static const char *mac_text(const uint8_t *mac, char buf[static 18]) {
        if (!mac)
                return "random";
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                 mac[5]);
        return buf;
}

int nl_veth_create(const char *name, const uint8_t *mac, const char *peer, const uint8_t *peer_mac,
                   struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256], m1[18], m2[18];
        int r = check_ifname(name, err);
        if (r >= 0)
                r = check_ifname(peer, err);
        if (r < 0)
                return r;
        if (streq(name, peer))
                return dv_error_add(err, -EINVAL, 0, "veth %s: both ends have the same name", name);
        struct nlmsghdr *nlh = newlink_header(buf, name, NLM_F_CREATE | NLM_F_EXCL);
        if (mac)
                mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
        struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
        struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        /* The peer is described by a link message of its own: an ifinfomsg, then its
         * attributes, all inside VETH_INFO_PEER. */
        struct nlattr *pa = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
        struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
        pifm->ifi_family = AF_UNSPEC;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
        if (peer_mac)
                mnl_attr_put(nlh, IFLA_ADDRESS, 6, peer_mac);
        mnl_attr_nest_end(nlh, pa);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, info);
        log_debug("netlink: create veth %s address %s peer %s address %s", name, mac_text(mac, m1),
                  peer, mac_text(peer_mac, m2));
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -EEXIST) {
                /* The kernel does not say which end's name is taken: ask. */
                struct nl_link l;
                const char *taken = nl_link_get(name, &l, NULL) == 0   ? name
                                    : nl_link_get(peer, &l, NULL) == 0 ? peer
                                                                       : NULL;
                if (taken)
                        return dv_error_add(err, r, 0,
                                            "cannot create veth %s (peer %s): the name %s is taken",
                                            name, peer, taken);
                return dv_error_add(err, r, 0, "cannot create veth %s (peer %s): a name is taken",
                                    name, peer);
        }
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot create veth", name);
        return 0;
}

int nl_link_set_netns(const char *name, pid_t pid, const char *new_name, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        int r = check_ifname(name, err);
        if (r >= 0 && new_name)
                r = check_ifname(new_name, err);
        if (r < 0)
                return r;
        if (pid <= 0)
                return dv_error_add(err, -EINVAL, 0, "invalid PID %d", (int)pid);
        struct nl_link l;
        r = nl_link_get(name, &l, err);
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "interface %s does not exist", name);
        if (r < 0)
                return r;
        /* Found by index, so that IFLA_IFNAME can carry the name it gets there. One
         * request, but the kernel moves and then renames: when the old name is taken there
         * the new one is used for the move itself; else the link arrives under its old name
         * and is renamed after, which can fail (-EEXIST) once it has moved. */
        struct nlmsghdr *nlh = link_header(buf, RTM_NEWLINK, 0, l.ifindex, new_name);
        mnl_attr_put_u32(nlh, IFLA_NET_NS_PID, (uint32_t)pid);
        const char *to = new_name ? new_name : name;
        log_debug("netlink: move link %s into the network namespace of PID %d as %s", name,
                  (int)pid, to);
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -EEXIST) {
                struct nl_link here;
                if (nl_link_get(name, &here, NULL) == 0 && here.ifindex == l.ifindex)
                        return dv_error_add(err, r, 0,
                                            "cannot move interface %s into the network namespace "
                                            "of PID %d: the name %s is taken there",
                                            name, (int)pid, to);
                return dv_error_add(err, r, 0,
                                    "interface %s moved into the network namespace of PID %d but "
                                    "cannot be renamed there: the name %s is taken there",
                                    name, (int)pid, to);
        }
        if (r == -ESRCH)
                return dv_error_add(err, r, 0,
                                    "cannot move interface %s into the network namespace of PID "
                                    "%d: no such process",
                                    name, (int)pid);
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "interface %s does not exist", name);
        if (r < 0) {
                char what[128];
                snprintf(what, sizeof(what), "%s into the network namespace of PID %d", name,
                         (int)pid);
                return nl_fail(err, r, kmsg, "cannot move interface", what);
        }
        return 0;
}

static int bridge_set_one(const char *name, int stp, int64_t delay_cs, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        struct nlmsghdr *nlh = newlink_header(buf, name, 0);
        struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
        struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        /* The kernel applies the delay before the STP state, whatever the order here. */
        if (delay_cs >= 0)
                mnl_attr_put_u32(nlh, IFLA_BR_FORWARD_DELAY, (uint32_t)delay_cs);
        if (stp >= 0)
                mnl_attr_put_u32(nlh, IFLA_BR_STP_STATE, stp ? 1 : 0);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, info);
        log_debug("netlink: set bridge %s stp %d delay %lld cs", name, stp, (long long)delay_cs);
        int r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "bridge %s does not exist", name);
        if (r == -ERANGE && delay_cs >= 0)
                return dv_error_add(err, r, 0,
                                    "cannot set the forward delay of bridge %s to %lld.%02lld s: "
                                    "with STP on it must be between 2 and 30 s",
                                    name, (long long)delay_cs / 100, (long long)delay_cs % 100);
        if (r < 0)
                return nl_fail(err, r, kmsg, "cannot change bridge", name);
        return 0;
}

int nl_bridge_set(const char *name, int stp, int64_t delay_cs, struct dv_error *err) {
        int r = check_ifname(name, err);
        if (r < 0)
                return r;
        if (delay_cs > (int64_t)UINT32_MAX)
                return dv_error_add(err, -ERANGE, 0, "forward delay of bridge %s is too large",
                                    name);
        if (stp < 0 && delay_cs < 0)
                return 0;
        /* Switching STP off first lets a short delay through (the kernel refuses delays
         * under 2 s while STP is on). */
        if (stp == 0 && delay_cs >= 0) {
                r = bridge_set_one(name, 0, -1, err);
                if (r < 0)
                        return r;
                return bridge_set_one(name, -1, delay_cs, err);
        }
        return bridge_set_one(name, stp, delay_cs, err);
}

/* ---- addresses ------------------------------------------------------------------------ */

const char *nl_addr_format(const struct nl_addr *a, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];
        if (!inet_ntop(a->family, a->a, ip, sizeof(ip)))
                snprintf(ip, sizeof(ip), "?");
        snprintf(buf, size, "%s/%u", ip, a->prefix);
        return buf;
}

static size_t addr_len(int family) {
        return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static int check_addr(int ifindex, const struct nl_addr *a, struct dv_error *err) {
        size_t len = addr_len(a->family);
        if (ifindex <= 0)
                return dv_error_add(err, -EINVAL, 0, "invalid interface index %d", ifindex);
        if (len == 0 || a->prefix > len * 8)
                return dv_error_add(err, -EINVAL, 0, "invalid address (family %d, prefix %u)",
                                    a->family, a->prefix);
        return 0;
}

struct addr_reply {
        int ifindex;
        struct nl_addr *v;
        size_t n, cap;
        bool oom;
};

struct addr_attrs {
        const struct nlattr *local, *address;
        uint32_t flags;
        bool has_flags;
};

static int addr_attr_cb(const struct nlattr *attr, void *data) {
        struct addr_attrs *aa = data;
        switch (mnl_attr_get_type(attr)) {
        case IFA_LOCAL:
                aa->local = attr;
                break;
        case IFA_ADDRESS:
                aa->address = attr;
                break;
        case IFA_FLAGS:
                if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0) {
                        aa->flags = mnl_attr_get_u32(attr);
                        aa->has_flags = true;
                }
                break;
        }
        return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data) {
        struct addr_reply *ar = data;
        const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
        struct addr_attrs aa = {0};

        if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
                return MNL_CB_OK;
        /* The kernel filters by index only with strict checking; filter again. */
        if ((int)ifa->ifa_index != ar->ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE)
                return MNL_CB_OK;
        size_t len = addr_len(ifa->ifa_family);
        if (len == 0)
                return MNL_CB_OK;
        mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &aa);
        uint32_t flags = aa.has_flags ? aa.flags : ifa->ifa_flags;
        if (!(flags & IFA_F_PERMANENT))
                return MNL_CB_OK; /* SLAAC, DHCP: not ours to manage */
        /* IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
         * point-to-point links); IPv6 sends only IFA_ADDRESS. */
        const struct nlattr *attr = aa.local ? aa.local : aa.address;
        if (!attr || mnl_attr_get_payload_len(attr) != len)
                return MNL_CB_OK;
        if (ar->n == ar->cap) {
                size_t cap = ar->cap ? ar->cap * 2 : 4;
                struct nl_addr *v = reallocarray(ar->v, cap, sizeof(*v));
                if (!v) {
                        ar->oom = true;
                        return MNL_CB_OK;
                }
                ar->v = v;
                ar->cap = cap;
        }
        struct nl_addr *a = &ar->v[ar->n++];
        memset(a, 0, sizeof(*a));
        a->family = ifa->ifa_family;
        a->prefix = ifa->ifa_prefixlen;
        memcpy(a->a, mnl_attr_get_payload(attr), len);
        return MNL_CB_OK;
}

int nl_addr_list(int ifindex, struct nl_addr **ret, size_t *n, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256];
        struct addr_reply ar = {.ifindex = ifindex};

        if (ifindex <= 0)
                return dv_error_add(err, -EINVAL, 0, "invalid interface index %d", ifindex);
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETADDR;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
        ifa->ifa_family = AF_UNSPEC;
        ifa->ifa_index = (unsigned)ifindex;
        int r = nl_talk(nlh, addr_cb, &ar, kmsg, sizeof(kmsg));
        if (r >= 0 && ar.oom)
                r = -ENOMEM;
        if (r < 0) {
                free(ar.v);
                char what[32];
                snprintf(what, sizeof(what), "%d", ifindex);
                return nl_fail(err, r, kmsg, "cannot list the addresses of interface", what);
        }
        if (ar.n == 0) {
                free(ar.v);
                ar.v = NULL;
        }
        *ret = ar.v;
        *n = ar.n;
        return 0;
}

static struct nlmsghdr *addr_msg(char *buf, uint16_t type, unsigned flags, int ifindex,
                                 const struct nl_addr *a) {
        size_t len = addr_len(a->family);
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | flags;
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
        ifa->ifa_family = (uint8_t)a->family;
        ifa->ifa_prefixlen = (uint8_t)a->prefix;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = (unsigned)ifindex;
        if (a->family == AF_INET)
                mnl_attr_put(nlh, IFA_LOCAL, len, a->a);
        mnl_attr_put(nlh, IFA_ADDRESS, len, a->a);
        return nlh;
}

int nl_addr_add(int ifindex, const struct nl_addr *a, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256], s[NL_ADDR_STRLEN];
        int r = check_addr(ifindex, a, err);
        if (r < 0)
                return r;
        struct nlmsghdr *nlh = addr_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, a);
        if (a->family == AF_INET && a->prefix < 31) {
                /* The broadcast address, as ip(8) with "brd +" and libvirt set it. */
                uint32_t v;
                memcpy(&v, a->a, 4);
                uint32_t host = a->prefix == 0 ? 0xffffffffu : (0xffffffffu >> a->prefix);
                v = htonl(ntohl(v) | host);
                mnl_attr_put(nlh, IFA_BROADCAST, 4, &v);
        }
        if (a->family == AF_INET6)
                mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
        nl_addr_format(a, s, sizeof(s));
        log_debug("netlink: add address %s to interface %d", s, ifindex);
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r < 0) {
                char what[NL_ADDR_STRLEN + 48];
                snprintf(what, sizeof(what), "%s to interface %d", s, ifindex);
                return nl_fail(err, r, kmsg, "cannot add address", what);
        }
        return 0;
}

int nl_addr_del(int ifindex, const struct nl_addr *a, struct dv_error *err) {
        char buf[MNL_SOCKET_BUFFER_SIZE], kmsg[256], s[NL_ADDR_STRLEN];
        int r = check_addr(ifindex, a, err);
        if (r < 0)
                return r;
        struct nlmsghdr *nlh = addr_msg(buf, RTM_DELADDR, 0, ifindex, a);
        nl_addr_format(a, s, sizeof(s));
        log_debug("netlink: delete address %s from interface %d", s, ifindex);
        r = nl_talk(nlh, NULL, NULL, kmsg, sizeof(kmsg));
        if (r == -EADDRNOTAVAIL || r == -ENODEV)
                return 0;
        if (r < 0) {
                char what[NL_ADDR_STRLEN + 48];
                snprintf(what, sizeof(what), "%s from interface %d", s, ifindex);
                return nl_fail(err, r, kmsg, "cannot delete address", what);
        }
        return 0;
}
