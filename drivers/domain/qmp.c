/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QMP client of drivers/domain/qmp.h: newline-delimited JSON over a unix stream
 * socket, every wait bounded by a deadline, events queued while a reply is awaited. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json_object.h>
#include <json_tokener.h>

#include "drivers/domain/qmp.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"
#include "util/time.h"

/* QEMU's replies we ask for are small; a bigger line means something is wrong. */
#define QMP_MAX_LINE  (4u << 20)
#define QMP_READ_SIZE 16384

struct qmp {
        int fd;
        char *path;
        char *buf; /* received bytes not yet parsed */
        size_t len, cap;
        uint64_t next_id;
        struct json_object *events[QMP_MAX_EVENTS];
        size_t n_events;
};

static atomic_uint_fast64_t commands_sent;

uint64_t qmp_commands_sent(void) {
        return atomic_load(&commands_sent);
}

void qmp_close(struct qmp *q) {
        if (!q)
                return;
        if (q->fd >= 0)
                close(q->fd);
        for (size_t i = 0; i < q->n_events; i++)
                json_object_put(q->events[i]);
        free(q->buf);
        free(q->path);
        free(q);
}

struct json_object *qmp_next_event(struct qmp *q) {
        if (!q || q->n_events == 0)
                return NULL;
        struct json_object *e = q->events[0];
        memmove(q->events, q->events + 1, (q->n_events - 1) * sizeof(q->events[0]));
        q->n_events--;
        return e;
}

static void queue_event(struct qmp *q, struct json_object *e) {
        if (q->n_events == QMP_MAX_EVENTS)
                json_object_put(qmp_next_event(q));
        q->events[q->n_events++] = e;
}

static int ms_left(uint64_t deadline) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= deadline)
                return 0;
        return (int)MIN((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (uint64_t)INT_MAX);
}

/* Waits for fd to be ready for events; -ETIMEDOUT at the deadline. */
static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = {.fd = fd, .events = events};
                int ms = ms_left(deadline);
                int k = poll(&p, 1, ms);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ETIMEDOUT;
                return 0;
        }
}

/* The next complete message (one line of JSON) as an object; -ETIMEDOUT, -ECONNRESET
 * when QEMU closed the connection, -EBADMSG for something that is not a JSON object. */
static int read_message(struct qmp *q, uint64_t deadline, struct json_object **ret) {
        for (;;) {
                char *nl = q->len > 0 ? memchr(q->buf, '\n', q->len) : NULL;
                if (nl) {
                        size_t n = (size_t)(nl - q->buf);
                        *nl = '\0';
                        enum json_tokener_error jerr = json_tokener_success;
                        struct json_object *o = NULL;
                        bool blank = strspn(q->buf, " \t\r") == n;
                        if (!blank)
                                o = json_tokener_parse_verbose(q->buf, &jerr);
                        memmove(q->buf, nl + 1, q->len - n - 1);
                        q->len -= n + 1;
                        if (blank)
                                continue;
                        if (!o || !json_object_is_type(o, json_type_object)) {
                                json_object_put(o);
                                return -EBADMSG;
                        }
                        *ret = o;
                        return 0;
                }
                if (q->len >= QMP_MAX_LINE)
                        return -EMSGSIZE;
                if (q->cap - q->len < QMP_READ_SIZE) {
                        size_t cap = q->cap ? q->cap * 2 : QMP_READ_SIZE * 2;
                        char *b = realloc(q->buf, cap);
                        if (!b)
                                return -ENOMEM;
                        q->buf = b;
                        q->cap = cap;
                }
                ssize_t k = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        int r = wait_fd(q->fd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ECONNRESET;
                q->len += (size_t)k;
        }
}

static int send_all(struct qmp *q, const char *s, size_t n, uint64_t deadline) {
        while (n > 0) {
                ssize_t k = send(q->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        int r = wait_fd(q->fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (k < 0)
                        return -errno;
                s += k;
                n -= (size_t)k;
        }
        return 0;
}

static const char *io_problem(int r) {
        switch (r) {
        case -ETIMEDOUT:
                return "no answer in time";
        case -ECONNRESET:
                return "QEMU closed the connection";
        case -EBADMSG:
                return "a message that is not a JSON object";
        case -EMSGSIZE:
                return "a message that is too long";
        default:
                return strerror(-r);
        }
}

static int run_command(struct qmp *q, const char *command, struct json_object *args,
                       uint64_t deadline, struct json_object **ret, struct dv_error *err) {
        uint64_t id = ++q->next_id;
        struct json_object *msg = json_object_new_object();
        if (!msg)
                return -ENOMEM;
        json_object_object_add(msg, "execute", json_object_new_string(command));
        if (args)
                json_object_object_add(msg, "arguments", json_object_get(args));
        json_object_object_add(msg, "id", json_object_new_uint64(id));
        const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
        /* One write with the newline: QEMU runs a command as soon as its closing brace
         * arrives, and after `quit` it may have closed the socket before a second write
         * (EPIPE, seen on a loaded machine). */
        _cleanup_free_ char *line = text ? strdupf("%s\n", text) : NULL;
        int r = line ? 0 : -ENOMEM;
        if (r == 0) {
                /* A password (set_password) never goes to a log, at any level. */
                if (args && json_object_object_get_ex(args, "password", NULL))
                        log_debug("qmp %s: -> %s (arguments not shown: they hold a password)",
                                  q->path, command);
                else
                        log_debug("qmp %s: -> %s", q->path, text);
                atomic_fetch_add(&commands_sent, 1);
                r = send_all(q, line, strlen(line), deadline);
        }
        json_object_put(msg);
        if (r < 0)
                return dv_error_add(err, r, 0, "QMP %s on %s: cannot send: %s", command, q->path,
                                    io_problem(r));

        for (;;) {
                struct json_object *reply = NULL;
                r = read_message(q, deadline, &reply);
                if (r < 0)
                        return dv_error_add(err, r, 0, "QMP %s on %s: %s", command, q->path,
                                            io_problem(r));
                struct json_object *v = NULL;
                if (json_object_object_get_ex(reply, "event", NULL)) {
                        queue_event(q, reply);
                        continue;
                }
                /* A reply to an earlier command that timed out is not ours. */
                if (!json_object_object_get_ex(reply, "id", &v) ||
                    (uint64_t)json_object_get_uint64(v) != id) {
                        json_object_put(reply);
                        continue;
                }
                if (json_object_object_get_ex(reply, "return", &v)) {
                        if (ret)
                                *ret = json_object_get(v);
                        json_object_put(reply);
                        return 0;
                }
                const char *cls = NULL, *desc = NULL;
                struct json_object *e = NULL, *c = NULL, *d = NULL;
                if (json_object_object_get_ex(reply, "error", &e)) {
                        if (json_object_object_get_ex(e, "class", &c))
                                cls = json_object_get_string(c);
                        if (json_object_object_get_ex(e, "desc", &d))
                                desc = json_object_get_string(d);
                }
                r = streq_ptr(cls, "CommandNotFound") ? -EOPNOTSUPP : -EIO;
                r = dv_error_add(err, r, 0, "QMP %s failed: %s", command,
                                 desc ? desc : "an error without description");
                json_object_put(reply);
                return r;
        }
}

int qmp_execute(struct qmp *q, const char *command, struct json_object *args, uint64_t timeout_usec,
                struct json_object **ret, struct dv_error *err) {
        if (!q || q->fd < 0 || !command)
                return dv_error_add(err, -EINVAL, 0, "QMP: no connection");
        if (ret)
                *ret = NULL;
        return run_command(q, command, args, now_usec(CLOCK_MONOTONIC) + timeout_usec, ret, err);
}

int qmp_fd(const struct qmp *q) {
        return q ? q->fd : -EBADF;
}

int qmp_read_events(struct qmp *q) {
        if (!q || q->fd < 0)
                return -EBADF;
        for (;;) {
                struct json_object *m = NULL;
                /* A deadline in the past: parse what is buffered, read what is there. */
                int r = read_message(q, 0, &m);
                if (r == -ETIMEDOUT)
                        return 0;
                if (r < 0)
                        return r;
                if (json_object_object_get_ex(m, "event", NULL))
                        queue_event(q, m);
                else
                        json_object_put(m);
        }
}

int qmp_connect(const char *socket_path, uint64_t timeout_usec, struct qmp **ret,
                struct dv_error *err) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (!socket_path || strlen(socket_path) >= sizeof(sa.sun_path))
                return dv_error_add(err, -ENAMETOOLONG, 0, "QMP socket path %s is too long",
                                    strna(socket_path));
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);

        _cleanup_(qmp_closep) struct qmp *q = calloc(1, sizeof(*q));
        if (!q || !(q->path = strdup(socket_path))) {
                if (q)
                        q->fd = -1;
                return -ENOMEM;
        }
        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (q->fd < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot create a socket: %m");
        int r = 0;
        if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                if (r == -EAGAIN || r == -EINPROGRESS) {
                        /* The listen backlog is full: wait for QEMU to accept. */
                        r = wait_fd(q->fd, POLLOUT, deadline);
                        int soerr = 0;
                        socklen_t sl = sizeof(soerr);
                        if (r == 0 && getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
                                r = -soerr;
                }
        }
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot connect to QMP socket %s: %s", socket_path,
                                    io_problem(r));

        struct json_object *greeting = NULL;
        r = read_message(q, deadline, &greeting);
        if (r < 0)
                return dv_error_add(err, r, 0, "QMP %s: no greeting: %s", socket_path,
                                    io_problem(r));
        bool ok = json_object_object_get_ex(greeting, "QMP", NULL);
        json_object_put(greeting);
        if (!ok)
                return dv_error_add(err, -EPROTO, 0, "QMP %s: the greeting is not QMP's",
                                    socket_path);
        r = run_command(q, "qmp_capabilities", NULL, deadline, NULL, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(q);
        return 0;
}
