/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU command line of a <domain type='kvm'|'qemu'>: a pure function of the parsed
 * definition and what the driver resolved (paths, taps, MACs). Golden files: tests/data/qemu. */
#pragma once

#include <stdbool.h>

#include "drivers/domain/qemu-firmware.h"
#include "model/domain.h"
#include "util/error.h"

/* One layer of a disk image as QEMU gets it: a descriptor the agent opened. */
struct qemu_disk_layer {
        char *path;         /* where it was opened (for -add-fd's opaque and messages) */
        const char *format; /* "raw" or "qcow2": what QEMU is told, never probed */
        int fd;             /* its number in QEMU's process (3, 4, ...): -add-fd fd=N,set=N */
};

/* A disk's image: layers[0] the image itself, then its backing files in order. */
struct qemu_disk_chain {
        struct qemu_disk_layer *layers;
        size_t n_layers; /* 0: nothing opened (no source, or the path is given instead) */
};

/* Descriptors the agent opened for a QEMU that runs as its domain's own user and may open
 * nothing of the host's by path: each is its number in QEMU's process, -1 none. */
struct qemu_fds {
        int qmp, events;     /* listening sockets the agent bound at qmp_socket and its events
                              * socket: -chardev socket,id=dv-qmp,fd=N,server=on,wait=off and
                              * -mon chardev=dv-qmp,mode=control (the same for dv-events) */
        int console_log;     /* serial_log opened for appending: -add-fd fd=N,set=N and the
                              * pty serial/console's -chardev file has path=/dev/fdset/N */
        const int *serials;  /* NULL, or one per def->serials[i]: type 'file', its path opened */
        const int *consoles; /* the same per def->consoles[i] */
        const int *taps;     /* NULL, or one per def->interfaces[i]: the tap opened with
                              * TUNSETIFF: -netdev tap,fd=N instead of ifname= */
        int loader, nvram;   /* pflash units (a pflash <loader>, <nvram>): their files, as
                              * -add-fd and a file node named /dev/fdset/N */
        const int *channels; /* NULL, or one per def->channels[i]: the listening socket the
                              * agent bound at its path (-chardev socket,fd=N,server=on) */
        int vsock;           /* /dev/vhost-vsock, the guest CID set on it: vhostfd=N; -1 none */
};

/* What the argv needs besides the definition: resolved by the engine/driver. */
struct qemu_argv_ctx {
        const char *binary;      /* def->emulator when written, else agent.conf qemu.binary */
        const char *accel;       /* "kvm" or "tcg" (decided by the caller) */
        const char *qmp_socket;  /* RUN_DIR/qemu/NAME.qmp */
        const char *pidfile;     /* RUN_DIR/qemu/NAME.pid */
        const char *serial_log;  /* STATE_DIR/domains/NAME.console.log (serial/console to file) */
        const char *vnc_socket;  /* RUN_DIR/qemu/NAME.vnc when <graphics type='vnc'> has no listen
                                    address */
        char *const *disk_paths; /* one per def->disks[i]: the file or device path
                                  * (a type='volume' disk resolved through its pool) */
        const struct qemu_disk_chain
                *disk_chains;       /* NULL, or one per def->disks[i]: the
                                     * image and its backing layers as descriptors; then
                                     * QEMU gets /dev/fdset/N and never a disk's path */
        char *const *tap_names;     /* one per def->interfaces[i]: the tap device the
                                     * driver created (type network and bridge) */
        char *const *macs;          /* one per def->interfaces[i]: the MAC (written, or
                                     * generated once by the engine and kept) */
        const char *uuid;           /* the UUID the engine generated and keeps when the file
                                     * has none; NULL: def->uuid (no -uuid when neither) */
        bool paused;                /* adds -S: the vCPUs wait for QMP `cont` */
        const struct qemu_fds *fds; /* NULL: QEMU opens every path itself (and writes
                                     * -pidfile); set: no -pidfile, the QMP monitors, console
                                     * log, files, taps and pflash units as descriptors */
        char *const *channel_paths; /* NULL, or one per def->channels[i]: its socket when
                                     * <source path> is not written (qemu_channel_path()) */
        unsigned vsock_cid;         /* the guest CID the driver chose for <cid auto='yes'>;
                                     * 0: the written address */
        const struct qemu_firmware *firmware; /* NULL, or the firmware qemu_firmware_select()
                                               * chose (required when qemu_firmware_wanted()):
                                               * its code and NVRAM are the pflash units,
                                               * instead of <loader> and <nvram> */
};

/* Pure: the whole QEMU command line, NULL-terminated, in *ret (caller strv_free()s).
 *
 * Fixed parts, in this order: BINARY, -name guest=NAME, -uuid (ctx->uuid, else def->uuid, when
 * either is set), -machine TYPE,accel=ACCEL[,...] (TYPE 'pc' when
 * not written, as libvirt), -cpu, -m, -smp, -nodefaults, -no-user-config, -pidfile PIDFILE,
 * -qmp unix:QMP_SOCKET,server=on,wait=off (commas in paths doubled), a second
 * -qmp unix:EVENTS_SOCKET,server=on,wait=off (qemu_events_socket(): a monitor the driver
 * keeps open to read events, since QEMU serves one client per monitor), then -S when paused.
 * No -daemonize (the driver spawns QEMU detached) and no -no-shutdown: QEMU exits when
 * the guest powers off, or panics (a pvpanic device is always added; -action
 * panic=shutdown).
 *
 * libvirt's semantics are kept where they matter to a guest: ACPI is off unless
 * <features><acpi/> is written (so system_powerdown needs it), the NIC model defaults to
 * rtl8139, the bus of a disk follows its target name (vd virtio, sd scsi, hd ide).
 * Serial and console devices of type pty go to ctx->serial_log (nobody could hold a pty
 * across agent restarts). A VNC password is never put on the command line (it would be
 * readable in /proc/PID/cmdline): the argv has password=on and the driver sets it over
 * QMP (set_password) before the guest runs.
 *
 * With ctx->fds there is no -pidfile (the driver knows its child's PID; QEMU spins on a
 * -pidfile in an fdset), the two QMP monitors are -chardev socket,fd=N,server=on,wait=off
 * with -mon ...,mode=control, and the files QEMU writes or the pflash units are -add-fd
 * and /dev/fdset/N (QEMU opens /dev/fdset/N through the set, never by a path).
 *
 * Disks (ctx->disk_chains set): every layer is -add-fd fd=N,set=N,opaque=PATH and a
 * -blockdev whose file node's filename is /dev/fdset/N; backing layers come first, each an
 * explicit node ("dv-diskI-bJ") that the layer above names as "backing", the last qcow2
 * layer has "backing":null, so QEMU opens no backing file by the name in a header.
 * A disk without layers in disk_chains (or without disk_chains) has its path as the
 * filename: for callers that open nothing.
 *
 * Every element the model accepts for these domain types is either mapped or refused
 * here (-EOPNOTSUPP, one problem per element, each naming the element and its line);
 * docs/domain-xml.md lists which. -EINVAL for a context that lacks what the definition
 * needs (no binary, no path for a disk, no tap or MAC for an interface). */
/* The events-only QMP monitor that goes with qmp_socket: its ".qmp" suffix replaced by
 * ".events" (else ".events" appended). Caller frees; NULL when out of memory. */
char *qemu_events_socket(const char *qmp_socket);

int qemu_argv(const struct domain_def *def, const struct qemu_argv_ctx *ctx, char ***ret,
              struct dv_error *err);
