/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small xenstore server for the tests (no Xen needed): the xenstore wire protocol on a
 * unix socket, one tree of nodes, watches, domain introduce/release. See docs/xen.md.
 * Usage: xenstored SOCKET [PIDFILE]. Listening before the PID file is written. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/parse.h"

/* Not a production server: a few hundred clients and a queue bound per client. */
#define MAX_CLIENTS 256
#define MAX_OUT     (1u << 20)
#define DOM0_PATH   "/local/domain/0"
#define MAX_DOMID   0x7FEF

struct node {
        char *path;
        char *value;
        size_t len;
};

struct watch {
        int client;
        char *path; /* absolute, or @introduceDomain / @releaseDomain */
        char *token;
        bool relative; /* registered relative to /local/domain/0: events say so too */
};

struct client {
        int fd;
        struct xsd_sockmsg hdr;
        size_t got; /* bytes of header + body read so far */
        char body[XENSTORE_PAYLOAD_MAX + 1];
        struct buf out;
        size_t out_off;
        bool dead; /* dropped at the end of the loop pass: nothing else is sent to it */
};

static struct node *nodes;
static size_t n_nodes;
static struct watch *watches;
static size_t n_watches;
static struct client *clients[MAX_CLIENTS];
static bool introduced[MAX_DOMID + 1];
static uint64_t generation = 1;
static uint32_t next_tx = 1;

/* ---- the tree -------------------------------------------------------------------------- */

static struct node *node_find(const char *path) {
        for (size_t i = 0; i < n_nodes; i++)
                if (streq(nodes[i].path, path))
                        return &nodes[i];
        return NULL;
}

static bool is_child_of(const char *path, const char *parent) {
        size_t n = strlen(parent);
        if (streq(parent, "/"))
                return path[0] == '/' && path[1] != '\0';
        return strncmp(path, parent, n) == 0 && path[n] == '/';
}

static bool is_direct_child(const char *path, const char *parent) {
        if (!is_child_of(path, parent))
                return false;
        const char *rest = path + (streq(parent, "/") ? 1 : strlen(parent) + 1);
        return strchr(rest, '/') == NULL;
}

static void node_add(const char *path, const char *value, size_t len) {
        nodes = realloc(nodes, (n_nodes + 1) * sizeof(*nodes));
        if (!nodes)
                abort();
        char *v = malloc(len + 1);
        char *p = strdup(path);
        if (!v || !p)
                abort();
        memcpy(v, value, len);
        v[len] = '\0';
        nodes[n_nodes++] = (struct node){.path = p, .value = v, .len = len};
}

/* Creates path and every missing ancestor with an empty value (as xenstored does). */
static void node_ensure(const char *path) {
        if (node_find(path))
                return;
        _cleanup_free_ char *parent = strdup(path);
        if (!parent)
                abort();
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
                *slash = '\0';
                node_ensure(parent);
        }
        node_add(path, "", 0);
}

/* Path syntax as xenstored accepts it: absolute or relative, [A-Za-z0-9-/_@] only, no
 * empty components, no trailing slash; @ only for the special watch names. */
static bool path_valid(const char *p) {
        size_t n = strlen(p);
        if (n == 0 || n > XENSTORE_ABS_PATH_MAX)
                return false;
        if (streq(p, "/"))
                return true;
        if (p[n - 1] == '/' || strstr(p, "//"))
                return false;
        for (const char *c = p; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || strchr("-/_@", *c)))
                        return false;
        return true;
}

/* Absolute path of a request's path; NULL when invalid. Caller frees. */
static char *canonical(const char *p, bool *relative) {
        if (!path_valid(p) || p[0] == '@')
                return NULL;
        if (relative)
                *relative = p[0] != '/';
        if (p[0] == '/')
                return strdup(p);
        char *r = NULL;
        return asprintf(&r, DOM0_PATH "/%s", p) < 0 ? NULL : r;
}

/* ---- output ------------------------------------------------------------------------------ */

static void send_msg(int idx, uint32_t type, uint32_t req_id, uint32_t tx_id, const char *data,
                     size_t len) {
        struct client *c = clients[idx];
        if (!c || c->dead)
                return;
        if (c->out.len - c->out_off + sizeof(struct xsd_sockmsg) + len > MAX_OUT) {
                /* A client that does not read its events: dropped rather than grown. */
                c->dead = true;
                return;
        }
        struct xsd_sockmsg h = {
                .type = type, .req_id = req_id, .tx_id = tx_id, .len = (uint32_t)len};
        buf_putn(&c->out, (const char *)&h, sizeof(h));
        buf_putn(&c->out, data, len);
}

static void send_error(int idx, const struct xsd_sockmsg *req, int e) {
        const char *s = "EINVAL";
        for (size_t i = 0; i < ELEMENTSOF(xsd_errors); i++)
                if (xsd_errors[i].errnum == e)
                        s = xsd_errors[i].errstring;
        send_msg(idx, XS_ERROR, req->req_id, req->tx_id, s, strlen(s) + 1);
}

static void send_reply(int idx, const struct xsd_sockmsg *req, const char *data, size_t len) {
        send_msg(idx, req->type, req->req_id, req->tx_id, data, len);
}

static void send_ok(int idx, const struct xsd_sockmsg *req) {
        send_reply(idx, req, "OK", 3);
}

static void fire_one(const struct watch *w, const char *path) {
        const char *p = path;
        if (w->relative && strncmp(path, DOM0_PATH "/", strlen(DOM0_PATH) + 1) == 0)
                p = path + strlen(DOM0_PATH) + 1;
        struct buf b = BUF_INIT;
        buf_putn(&b, p, strlen(p) + 1);
        buf_putn(&b, w->token, strlen(w->token) + 1);
        if (!b.oom)
                send_msg(w->client, XS_WATCH_EVENT, 0, 0, b.s, b.len);
        buf_free(&b);
}

/* A change of path: watches on it or an ancestor get path; with recursive (a removal),
 * watches below it get their own path. */
static void fire(const char *path, bool recursive) {
        generation++;
        for (size_t i = 0; i < n_watches; i++) {
                const struct watch *w = &watches[i];
                if (streq(w->path, path) || is_child_of(path, w->path))
                        fire_one(w, path);
                else if (recursive && is_child_of(w->path, path))
                        fire_one(w, w->path);
        }
}

static void fire_special(const char *name) {
        for (size_t i = 0; i < n_watches; i++)
                if (streq(watches[i].path, name))
                        fire_one(&watches[i], name);
}

static void watches_drop(int idx) {
        for (size_t i = 0; i < n_watches;) {
                if (watches[i].client == idx) {
                        free(watches[i].path);
                        free(watches[i].token);
                        watches[i] = watches[--n_watches];
                } else
                        i++;
        }
}

/* ---- requests ------------------------------------------------------------------------------ */

/* The request's NUL-separated strings; false when fewer than want. */
static bool split(char *body, size_t len, const char **parts, size_t want) {
        size_t k = 0, start = 0;
        for (size_t i = 0; i < len && k < want; i++)
                if (body[i] == '\0') {
                        parts[k++] = body + start;
                        start = i + 1;
                }
        return k == want;
}

static int parse_domid(const char *s, unsigned *ret) {
        uint64_t v;
        int r = parse_u64_range(s, 0, MAX_DOMID, &v);
        if (r < 0)
                return r;
        *ret = (unsigned)v;
        return 0;
}

static void do_directory(int idx, const struct xsd_sockmsg *h, const char *path, bool part,
                         const char *offstr) {
        struct buf b = BUF_INIT;
        uint64_t off = 0;
        if (part && parse_u64(offstr, &off) < 0) {
                send_error(idx, h, EINVAL);
                return;
        }
        if (part)
                buf_printf(&b, "%llu%c", (unsigned long long)generation, '\0');
        size_t head = b.len, pos = 0;
        bool complete = true;
        for (size_t i = 0; i < n_nodes; i++) {
                if (!is_direct_child(nodes[i].path, path))
                        continue;
                const char *name = strrchr(nodes[i].path, '/') + 1;
                size_t l = strlen(name) + 1;
                if (pos >= off) {
                        if (b.len - head + l + 1 > XENSTORE_PAYLOAD_MAX - head) {
                                complete = false;
                                break;
                        }
                        buf_putn(&b, name, l);
                }
                pos += l;
        }
        if (!part && !complete) {
                buf_free(&b);
                send_error(idx, h, E2BIG);
                return;
        }
        if (part && complete)
                buf_putc(&b, '\0');
        if (b.oom)
                send_error(idx, h, ENOMEM);
        else
                send_reply(idx, h, b.s ? b.s : "", b.len);
        buf_free(&b);
}

static void do_rm(const char *path) {
        for (size_t i = 0; i < n_nodes;) {
                if (streq(nodes[i].path, path) || is_child_of(nodes[i].path, path)) {
                        free(nodes[i].path);
                        free(nodes[i].value);
                        nodes[i] = nodes[--n_nodes];
                } else
                        i++;
        }
        fire(path, true);
}

static void handle(int idx) {
        struct client *c = clients[idx];
        struct xsd_sockmsg h = c->hdr;
        char *body = c->body;
        size_t len = h.len;
        body[len] = '\0';
        const char *a[3] = {0};
        _cleanup_free_ char *path = NULL;
        bool relative = false;

        switch (h.type) {
        case XS_READ:
        case XS_DIRECTORY:
        case XS_GET_PERMS:
        case XS_MKDIR:
        case XS_RM:
        case XS_SET_PERMS:
        case XS_DIRECTORY_PART: {
                if (!split(body, len, a, 1) || !(path = canonical(a[0], NULL))) {
                        send_error(idx, &h, EINVAL);
                        return;
                }
                struct node *n = node_find(path);
                if (h.type == XS_MKDIR) {
                        if (!n) {
                                node_ensure(path);
                                fire(path, false);
                        }
                        send_ok(idx, &h);
                        return;
                }
                if (h.type == XS_RM) {
                        if (!n) {
                                /* As xenstored: removing what is not there is fine when
                                 * its parent exists. */
                                _cleanup_free_ char *parent = path_dirname(path);
                                if (parent && node_find(parent))
                                        send_ok(idx, &h);
                                else
                                        send_error(idx, &h, ENOENT);
                                return;
                        }
                        if (streq(path, "/")) {
                                send_error(idx, &h, EINVAL);
                                return;
                        }
                        do_rm(path);
                        send_ok(idx, &h);
                        return;
                }
                if (!n) {
                        send_error(idx, &h, ENOENT);
                        return;
                }
                if (h.type == XS_READ)
                        send_reply(idx, &h, n->value, n->len);
                else if (h.type == XS_GET_PERMS)
                        send_reply(idx, &h, "n0", 3); /* everyone may read, dom0 owns */
                else if (h.type == XS_SET_PERMS)
                        send_ok(idx, &h);
                else if (h.type == XS_DIRECTORY)
                        do_directory(idx, &h, path, false, NULL);
                else if (!split(body, len, a, 2))
                        send_error(idx, &h, EINVAL);
                else
                        do_directory(idx, &h, path, true, a[1]);
                return;
        }
        case XS_WRITE: {
                size_t pl = strnlen(body, len);
                if (pl == len || !(path = canonical(body, NULL))) {
                        send_error(idx, &h, EINVAL);
                        return;
                }
                const char *value = body + pl + 1;
                size_t vlen = len - pl - 1;
                struct node *n = node_find(path);
                if (!n) {
                        node_ensure(path);
                        n = node_find(path);
                }
                char *v = malloc(vlen + 1);
                if (!v)
                        abort();
                memcpy(v, value, vlen);
                v[vlen] = '\0';
                free(n->value);
                n->value = v;
                n->len = vlen;
                fire(path, false);
                send_ok(idx, &h);
                return;
        }
        case XS_WATCH:
        case XS_UNWATCH: {
                if (!split(body, len, a, 2) || !path_valid(a[0])) {
                        send_error(idx, &h, EINVAL);
                        return;
                }
                if (a[0][0] == '@') {
                        if (!streq(a[0], "@introduceDomain") && !streq(a[0], "@releaseDomain")) {
                                send_error(idx, &h, EINVAL);
                                return;
                        }
                        path = strdup(a[0]);
                } else
                        path = canonical(a[0], &relative);
                if (!path)
                        abort();
                if (h.type == XS_UNWATCH) {
                        for (size_t i = 0; i < n_watches; i++) {
                                struct watch *w = &watches[i];
                                if (w->client == idx && streq(w->path, path) &&
                                    streq(w->token, a[1])) {
                                        free(w->path);
                                        free(w->token);
                                        watches[i] = watches[--n_watches];
                                        send_ok(idx, &h);
                                        return;
                                }
                        }
                        send_error(idx, &h, ENOENT);
                        return;
                }
                for (size_t i = 0; i < n_watches; i++)
                        if (watches[i].client == idx && streq(watches[i].path, path) &&
                            streq(watches[i].token, a[1])) {
                                send_error(idx, &h, EEXIST);
                                return;
                        }
                watches = realloc(watches, (n_watches + 1) * sizeof(*watches));
                char *token = strdup(a[1]);
                if (!watches || !token)
                        abort();
                watches[n_watches++] = (struct watch){.client = idx,
                                                      .path = TAKE_PTR(path),
                                                      .token = token,
                                                      .relative = relative};
                send_ok(idx, &h);
                /* As xenstored: the reply, then one event at once. */
                const struct watch *w = &watches[n_watches - 1];
                fire_one(w, w->path);
                return;
        }
        case XS_RESET_WATCHES:
                watches_drop(idx);
                send_ok(idx, &h);
                return;
        case XS_TRANSACTION_START: {
                /* Transactions are applied directly: the tests never conflict. */
                char id[16];
                int n = snprintf(id, sizeof(id), "%u", next_tx++);
                send_reply(idx, &h, id, (size_t)n + 1);
                return;
        }
        case XS_TRANSACTION_END:
                send_ok(idx, &h);
                return;
        case XS_GET_DOMAIN_PATH: {
                unsigned d;
                if (!split(body, len, a, 1) || parse_domid(a[0], &d) < 0) {
                        send_error(idx, &h, EINVAL);
                        return;
                }
                char p[64];
                int n = snprintf(p, sizeof(p), "/local/domain/%u", d);
                send_reply(idx, &h, p, (size_t)n + 1);
                return;
        }
        case XS_INTRODUCE:
        case XS_RELEASE:
        case XS_IS_DOMAIN_INTRODUCED:
        case XS_RESUME:
        case XS_SET_TARGET: {
                unsigned d;
                if (!split(body, len, a, 1) || parse_domid(a[0], &d) < 0) {
                        send_error(idx, &h, EINVAL);
                        return;
                }
                if (h.type == XS_INTRODUCE) {
                        if (d == 0) {
                                send_error(idx, &h, EINVAL);
                                return;
                        }
                        introduced[d] = true;
                        send_ok(idx, &h);
                        fire_special("@introduceDomain");
                } else if (h.type == XS_RELEASE) {
                        if (!introduced[d]) {
                                send_error(idx, &h, ENOENT);
                                return;
                        }
                        introduced[d] = false;
                        send_ok(idx, &h);
                        fire_special("@releaseDomain");
                } else if (h.type == XS_IS_DOMAIN_INTRODUCED)
                        send_reply(idx, &h, introduced[d] || d == 0 ? "T" : "F", 2);
                else
                        send_ok(idx, &h);
                return;
        }
        case XS_CONTROL:
        default:
                send_error(idx, &h, h.type == XS_CONTROL ? EACCES : EINVAL);
                return;
        }
}

/* ---- connections ------------------------------------------------------------------------- */

static void client_drop(int idx) {
        struct client *c = clients[idx];
        if (!c)
                return;
        watches_drop(idx);
        close(c->fd);
        buf_free(&c->out);
        free(c);
        clients[idx] = NULL;
}

static void client_read(int idx) {
        struct client *c = clients[idx];
        for (;;) {
                size_t want;
                char *dst;
                if (c->got < sizeof(c->hdr)) {
                        want = sizeof(c->hdr) - c->got;
                        dst = (char *)&c->hdr + c->got;
                } else {
                        want = sizeof(c->hdr) + c->hdr.len - c->got;
                        dst = c->body + (c->got - sizeof(c->hdr));
                }
                if (want > 0) {
                        ssize_t n = read(c->fd, dst, want);
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                return;
                        if (n <= 0) {
                                c->dead = true;
                                return;
                        }
                        c->got += (size_t)n;
                }
                if (c->got == sizeof(c->hdr) && c->hdr.len > XENSTORE_PAYLOAD_MAX) {
                        /* As xenstored: a message too long ends the connection. */
                        c->dead = true;
                        return;
                }
                if (c->got >= sizeof(c->hdr) && c->got == sizeof(c->hdr) + c->hdr.len) {
                        c->got = 0;
                        handle(idx);
                        if (c->dead)
                                return;
                }
        }
}

static void client_write(int idx) {
        struct client *c = clients[idx];
        while (c->out_off < c->out.len) {
                ssize_t n = write(c->fd, c->out.s + c->out_off, c->out.len - c->out_off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        c->dead = true;
                        return;
                }
                c->out_off += (size_t)n;
        }
        buf_reset(&c->out);
        c->out_off = 0;
}

static void client_accept(int lfd) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        for (int i = 0; i < MAX_CLIENTS; i++)
                if (!clients[i]) {
                        clients[i] = calloc(1, sizeof(struct client));
                        if (!clients[i])
                                abort();
                        clients[i]->fd = fd;
                        return;
                }
        close(fd);
}

static int listen_on(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "xenstored: socket path too long: %s\n", path);
                return -1;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -1;
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
                fprintf(stderr, "xenstored: cannot listen on %s: %s\n", path, strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

int main(int argc, char **argv) {
        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: %s SOCKET [PIDFILE]\n", argv[0]);
                return 2;
        }
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        int lfd = listen_on(argv[1]);
        if (sfd < 0 || lfd < 0)
                return 1;
        /* What xenstored holds at boot: the root, /local/domain/0 and /vm, /tool. */
        node_add("/", "", 0);
        node_ensure(DOM0_PATH);
        node_add(DOM0_PATH "/name", "Domain-0", strlen("Domain-0"));
        node_ensure("/vm");
        node_ensure("/tool");
        if (argc == 3) {
                char pid[32];
                int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
                if (write_file_atomic(argv[2], pid, (size_t)n, 0644) < 0) {
                        fprintf(stderr, "xenstored: cannot write %s\n", argv[2]);
                        return 1;
                }
        }
        for (;;) {
                struct pollfd p[MAX_CLIENTS + 2];
                int map[MAX_CLIENTS + 2];
                nfds_t n = 0;
                p[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
                map[n++] = -1;
                p[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
                map[n++] = -2;
                for (int i = 0; i < MAX_CLIENTS; i++)
                        if (clients[i]) {
                                short ev = POLLIN;
                                if (clients[i]->out.len > clients[i]->out_off)
                                        ev |= POLLOUT;
                                p[n] = (struct pollfd){.fd = clients[i]->fd, .events = ev};
                                map[n++] = i;
                        }
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                for (nfds_t i = 0; i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        if (map[i] == -1) {
                                (void)unlink(argv[1]);
                                if (argc == 3)
                                        (void)unlink(argv[2]);
                                return 0;
                        }
                        if (map[i] == -2) {
                                client_accept(lfd);
                                continue;
                        }
                        int idx = map[i];
                        if (clients[idx] && !clients[idx]->dead &&
                            (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                client_read(idx);
                }
                /* Replies and events queued by any request go out now. */
                for (int i = 0; i < MAX_CLIENTS; i++) {
                        if (clients[i] && !clients[i]->dead &&
                            clients[i]->out.len > clients[i]->out_off)
                                client_write(i);
                        if (clients[i] && clients[i]->dead)
                                client_drop(i);
                }
        }
}
