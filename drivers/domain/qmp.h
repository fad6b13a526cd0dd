/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small QMP client for the QEMU driver: one connection per conversation over the
 * domain's unix socket (QEMU serves one client at a time), json-c for the messages. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct json_object;
struct qmp;

/* Connects, reads the greeting and negotiates capabilities (qmp_capabilities), all
 * within timeout_usec. -ENOENT/-ECONNREFUSED when nobody listens, -ETIMEDOUT when
 * QEMU does not answer in time (another client holds the monitor, or QEMU hangs). */
int qmp_connect(const char *socket_path, uint64_t timeout_usec, struct qmp **ret,
                struct dv_error *err);
/* Runs one command; *ret (may be NULL) gets the "return" object (caller
 * json_object_put). args may be NULL. A QMP error reply gives -EIO (-EOPNOTSUPP for
 * CommandNotFound) with QEMU's "desc" in err. Events that arrive meanwhile are kept
 * (see qmp_next_event). */
int qmp_execute(struct qmp *q, const char *command, struct json_object *args, uint64_t timeout_usec,
                struct json_object **ret, struct dv_error *err);
/* The oldest event received so far ({"event": ..., "data": ..., "timestamp": ...}),
 * removed from the queue; NULL when none. Caller json_object_put. At most
 * QMP_MAX_EVENTS are kept: older ones are dropped first. */
#define QMP_MAX_EVENTS 64
struct json_object *qmp_next_event(struct qmp *q);
/* The connection's socket (for poll/epoll; still owned by q). */
int qmp_fd(const struct qmp *q);
/* Reads what has arrived, without waiting, and queues the events in it (see
 * qmp_next_event); replies to nothing are dropped. 0, or -ECONNRESET when QEMU closed
 * the connection (queued events stay readable), -EBADMSG, -EMSGSIZE. */
int qmp_read_events(struct qmp *q);
void qmp_close(struct qmp *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct qmp *, qmp_close)

/* Number of commands sent over any connection by this process (qmp_capabilities
 * included): lets tests and metrics check that observing stays cheap. */
uint64_t qmp_commands_sent(void);
