/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The signature probe every storage driver asks before it formats, labels or
 * pvcreates a device (build='if-empty'): libblkid superblocks and partition tables. */
#pragma once

#include <stdbool.h>

#include "util/error.h"

/* Looks for any signature on dev (a block device, or a regular file in tests):
 * a filesystem, swap, RAID/LVM/crypto member or a partition table.
 * Returns 1 when one is found, with *ret_type set (when ret_type is not NULL) to
 * blkid's name for it: the superblock TYPE ("ext4", "xfs", "LVM2_member", "swap",
 * "crypto_LUKS", ...) or the partition table PTTYPE ("gpt", "dos", ...); several
 * signatures give them all joined by ',' (for example "ext4,dos"), which never equals
 * a single requested type, so callers comparing with one type refuse. Returns 0 when
 * the device is empty (*ret_type = NULL). Negative errno with the reason in err when
 * it cannot be read: -ENOENT "source device X does not exist", -EACCES, -EIO...
 * Thread-safe: one probe per call, nothing shared. */
int storage_probe_signature(const char *dev, char **ret_type, struct dv_error *err);

/* Like storage_probe_signature, and also tells whether what was found is a filesystem
 * that mount can use (blkid's USAGE "filesystem"): *ret_is_fs is true only when there
 * is exactly one signature and it is a filesystem. */
int storage_probe_signature_full(const char *dev, char **ret_type, bool *ret_is_fs,
                                 struct dv_error *err);
