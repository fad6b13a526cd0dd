/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The disk images of a QEMU domain, opened by the agent: QEMU gets descriptors (-add-fd),
 * never a path it would resolve itself, so nobody can swap a volume for a symlink between
 * the agent's checks and QEMU's open, nor make QEMU open a backing file by the name an
 * image's header gives. See docs/qemu.md. */
#pragma once

#include <stddef.h>

#include "drivers/domain/qemu-argv.h"
#include "model/domain.h"
#include "util/error.h"

/* How deep a qcow2 backing chain may be (the image itself not counted). */
#define QEMU_DISK_CHAIN_MAX 16

struct qemu_disks {
        struct qemu_disk_chain *chains; /* one per def->disks[i]; n_layers 0 without source */
        struct qemu_disk_layer *layers; /* every layer, layers[k].fd == 3 + k */
        int *fds;                       /* the agent's descriptor of layers[k] */
        size_t n;
};

/* Opens every disk of def: the image of disk i (disk_paths[i] when set and not "", else
 * its <source file> or <source dev>) read-write, or read-only for <readonly/> and
 * cdroms; a type='file' disk (and a volume outside /dev) must be a regular file reached
 * through no symlink at all (openat2 RESOLVE_NO_SYMLINKS), a type='block' disk (and a
 * volume under /dev, where LVM's names are symlinks) a block device. A qcow2 image's
 * backing files are read from its header and each opened read-only the same way
 * (a relative name against the image's directory, as QEMU does), at most
 * QEMU_DISK_CHAIN_MAX deep, none twice (st_dev, st_ino); their format is the header's
 * (raw or qcow2, probed between the two when the header names none). When locations
 * (agent.conf storage_locations) is not empty, every backing file must lie inside it.
 * Errors name the disk's target and the path: -ELOOP (a symlink), -EBADF (not a regular
 * file / block device), -EPERM (outside storage_locations), -EOPNOTSUPP (a backing
 * store QEMU would read as a protocol or json: name, an unsupported format, an image
 * the header reader refuses), -EMLINK (a chain too deep or a loop), or the open's errno.
 * On failure nothing stays open. */
int qemu_disks_open(const struct domain_def *def, char *const *disk_paths, char *const *locations,
                    struct qemu_disks *ret, struct dv_error *err) _warn_unused_result_;
void qemu_disks_done(struct qemu_disks *d);
