/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QEMU's jail: what the root of its own mount namespace holds (drivers/cmd.h, struct
 * cmd_jail). QEMU runs as its domain's uid and gets its disks, taps, sockets, logs and
 * pflash units as descriptors; by path it only needs its binary, the directories of the
 * shared libraries the dynamic loader resolves for it and for its modules (TCG is one on
 * Debian), its
 * firmware and option ROMs, a few device nodes, the kernel and initrd of a direct boot and
 * the directory of its VNC socket. Nothing else of the host is in the jail: not /etc, not
 * /proc, not the other guests' images, not the host's block devices. See docs/qemu.md and
 * docs/security.md. */
#pragma once

#include <stdbool.h>

#include "drivers/cmd.h"
#include "model/domain.h"
#include "util/error.h"

/* The device nodes bound into every jail (and allowed by the domain's device cgroup):
 * QEMU opens /dev/null for its stdio-less parts and the random sources for its own
 * entropy and virtio-rng. /dev/kvm is added when the domain uses KVM. */
#define QEMU_JAIL_DEVICES "/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"

struct qemu_jail_opts {
        const char *binary;     /* the QEMU binary as the runner will exec it (absolute) */
        const char *mountpoint; /* where the child mounts the jail's tmpfs (root's, empty) */
        bool kvm;               /* bind /dev/kvm */
        char *const *writable;  /* NULL-terminated directories bound read-write (the VNC
                                   socket's); may be NULL */
};

/* Fills *ret (cmd_jail_done() frees it) for def: the device nodes, the binary, its
 * libraries' directories and /etc/ld.so.cache, every QEMU module directory with the
 * directories of the modules' libraries, the firmware directories that exist (and the targets of
 * their symlinks), the files the domain names for QEMU to open itself (<kernel>, <initrd>, a
 * <loader> that is not a pflash unit) and opts->writable. The libraries come from the binary's own
 * dynamic loader (`LOADER --list`, through the command runner), cached per file
 * (device, inode, modification time) for the agent's life. Errors name what is missing:
 * "cannot put FILE in QEMU's jail: REASON". */
int qemu_jail_build(const struct domain_def *def, const struct qemu_jail_opts *opts,
                    struct cmd_jail *ret, struct dv_error *err) _warn_unused_result_;

/* The files QEMU opens itself by path (<kernel>, <initrd>, a <loader> that is not pflash)
 * must be readable by its uid (no supplementary groups), every directory above them
 * searchable: judged from the modes as the kernel would (a file or directory with an ACL
 * is left to QEMU). A refusal is -EBUSY ("<kernel> PATH of domain NAME cannot be read by
 * its QEMU (uid U): DIR (mode 0700, owner 0:0) keeps it out; ..."), so that the
 * domain is blocked until its file or the host changes, not retried as a failure; a file
 * that is missing gives its errno. */
int qemu_jail_check_readable(const struct domain_def *def, uint32_t uid, uint32_t gid,
                             struct dv_error *err) _warn_unused_result_;

/* The libraries of ELF file path as its dynamic loader resolves them (absolute paths,
 * the loader itself included), cached as above; *ret is the caller's. Exposed for tests. */
int qemu_jail_libraries(const char *path, char ***ret, struct dv_error *err) _warn_unused_result_;

/* Forgets the cached library lists (tests; an agent reload needs not). */
void qemu_jail_cache_clear(void);
