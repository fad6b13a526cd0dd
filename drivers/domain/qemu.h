/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU/KVM domain driver: observes, starts and stops <domain type='kvm'|'qemu'>
 * as QEMU processes that run in their own session, outlive the agent and are found
 * again by pidfile, /proc/PID/cmdline and the QMP socket. See docs/qemu.md. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "drivers/domain.h"
#include "model/domain.h"
#include "util/error.h"

/* agent.conf: qemu.binary, qemu.accel (kvm|tcg|auto), run_dir, state_dir. NULL keeps
 * the default (/usr/bin/qemu-system-x86_64, auto, /run/declvirt,
 * /var/lib/declvirt/state). Files: RUN_DIR/qemu/NAME.{pid,qmp,vnc},
 * STATE_DIR/domains/NAME.{qemu,console}.log. */
void qemu_driver_set_config(const char *binary, const char *accel, const char *run_dir,
                            const char *state_dir);

/* agent.conf storage_locations (NULL or empty: anywhere): where the backing files of a
 * qcow2 disk may be (qemu_disks_open). -ENOMEM. */
int qemu_driver_set_storage_locations(char *const *locations) _warn_unused_result_;

/* "kvm" when accel is kvm, or auto and /dev/kvm opens read-write; else "tcg".
 * type='qemu' domains always get tcg. */
const char *qemu_accel_for(const struct domain_def *def);

/* Cheap: pidfile, /proc/PID/stat and cmdline (must name our QMP socket and -name
 * guest=NAME), the QMP status cached and refreshed at most once per second per domain
 * (a busy or silent monitor keeps the cached value). A stale pidfile or socket is
 * removed, never trusted, and its PID never signalled. Finds domains started before an
 * agent restart (adoption: nothing is restarted). A QEMU process with -name guest=NAME
 * that is not ours gives BROKEN "a QEMU process (PID N) not started by declvirt runs
 * domain NAME" (the process table is scanned at most once per second for all domains).
 * While a start or stop of the domain runs, observe only reads. */
int qemu_observe(const struct domain_def *def, struct dom_status *ret, struct dv_error *err);

/* Creates the taps (persistent tun/tap owned by root, attached to bridges[i] with
 * netlink and up, named by qemu_tap_name), builds the argv with qemu_argv(), spawns
 * QEMU detached in its own session (stdout and stderr appended to
 * STATE_DIR/domains/NAME.qemu.log), waits (bounded, 10 s) for the QMP socket and checks
 * query-status. bridges[i]: the bridge of interface i (NULL, a NULL or "" entry: the
 * interface's <source bridge=>). Already running (ours): 0. -EEXIST when a QEMU we did
 * not start holds the name; -EBUSY, before anything is created or spawned, when <memory>
 * is more than the host's MemTotal (both sizes in err). On failure nothing is left
 * running (QEMU killed by PID, taps, pidfile and socket removed) and QEMU's last stderr
 * line is in err. */
int qemu_start(const struct domain_def *def, char *const *disk_paths, char *const *macs,
               char *const *bridges, struct dv_error *err);
/* The same as uid (= gid) from agent.conf qemu.uid_range (0: as the agent, root): QEMU
 * then runs with no supplementary group, no capability and no_new_privs, and opens no
 * host path the agent could open for it (docs/qemu.md, Its own user). */
int qemu_start_as(const struct domain_def *def, const char *uuid, uint32_t uid,
                  char *const *disk_paths, char *const *macs, char *const *bridges,
                  struct dv_error *err);
/* The same with the UUID the engine generated and keeps (NULL: def->uuid, or none). */
int qemu_start_uuid(const struct domain_def *def, const char *uuid, char *const *disk_paths,
                    char *const *macs, char *const *bridges, struct dv_error *err);

/* Graceful: QMP system_powerdown, wait up to timeout_usec for the process to exit, then
 * QMP quit (2 s), then SIGKILL through a pidfd. Removes the taps, pidfile and sockets.
 * Not running: 0 (stale files removed). A QEMU we did not start is never touched. */
int qemu_stop(const struct domain_def *def, uint64_t timeout_usec, struct dv_error *err);

/* QMP events, so that a change is seen at once, not at the next periodic observe. QEMU
 * has a second monitor, RUN_DIR/qemu/NAME.events, that the driver keeps connected for
 * every running domain it observes (opened by qemu_observe, closed at stop or exit).
 * qemu_events_fd: one epoll fd, readable when any of them has something to read
 * (created at the first call: until then no events monitor is opened); -errno.
 * qemu_events_dispatch: reads without waiting; STOP, RESUME, SHUTDOWN, GUEST_PANICKED
 * and a closed monitor (QEMU exits) make the next qemu_observe of that domain ask
 * query-status at once. Returns how many domains had such news (observe them now), or
 * -errno. Both are thread-safe; call them from the thread that observes. */
int qemu_events_fd(void);
int qemu_events_dispatch(void);

/* The tap of interface index of domain: "dvt" + 8 hex digits of a hash of the domain
 * name and the index (stable, fits IFNAMSIZ). -EINVAL for an invalid name. */
int qemu_tap_name(const char *domain, size_t index, char buf[static IFNAMSIZ]);
