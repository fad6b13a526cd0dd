/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fs and netfs pool drivers (docs/storage-fs.md): a block
 * device or a network share mounted on the target directory; the volumes are files. */
#pragma once

#include <stdint.h>
#include <sys/stat.h>

#include "drivers/storage.h"
#include "drivers/storage/mount.h"

extern const struct storage_driver storage_driver_fs;
extern const struct storage_driver storage_driver_netfs;

/* Options of every pool mount: the files of a pool are disk images, never devices,
 * set-id programs or executables. */
#define FS_MOUNT_OPTIONS "nodev,nosuid,noexec"
/* A network mount to an unreachable server may hang for minutes: bounded here. */
#define FS_NETFS_TIMEOUT_USEC (30ULL * 1000000)
/* mkfs of a large device (xfs, ext4 with lazy init) is quick, but not instant. */
#define FS_MKFS_TIMEOUT_USEC (10ULL * 60 * 1000000)

/* The kernel's filesystem type for a pool format ("hfs+" -> "hfsplus"); NULL for
 * "auto" or no format (let mount probe). */
const char *fs_format_fstype(const char *format);
/* Whether a blkid TYPE satisfies the pool's format (with auto: any filesystem). */
bool fs_format_matches(const char *format, const char *blkid_type, bool is_fs);

/* The mount source of a netfs pool: "host:/dir" (nfs, glusterfs, auto; an IPv6
 * address in brackets), "//host/share" (cifs). NULL with err set when the host or
 * dir cannot be used safely in an argv. Caller frees. */
char *fs_netfs_source(const struct pool_def *def, struct dv_error *err);

/* Pure argv builders, compared with tests/data/fs and tests/data/netfs golden files.
 * fs:    mount -o nodev,nosuid,noexec [-t FSTYPE] DEVICE TARGET
 * netfs: mount -o nodev,nosuid,noexec[,port=N][,guest|,direct-io-mode=1] [-t TYPE]
 *        SOURCE TARGET (-t omitted for format auto) */
int fs_mount_argv(const struct pool_def *def, char ***ret, struct dv_error *err);
/* mkfs -t FSTYPE [-F | -f] DEVICE (ext4 when the format is auto; -F for ext2/3/4, -f
 * for xfs). -EOPNOTSUPP for formats nothing can make (iso9660, vmfs, gfs). */
int fs_mkfs_argv(const struct pool_def *def, char ***ret, struct dv_error *err);
/* umount TARGET */
int fs_umount_argv(const struct pool_def *def, char ***ret, struct dv_error *err);

/* What the mount table says of the pool, the pure part of observe: *ret is ACTIVE when
 * the mount visible at the target is the pool's source, BROKEN (reason naming both) when
 * the target is mounted from something else or (fs) the source is mounted elsewhere;
 * returns 1 then. Returns 0 (nothing decided, *ret untouched) when neither is mounted.
 * dev_st is the stat of the fs source device (NULL when it cannot be stat'ed): a block
 * device matches a mount by its device number as well as by name. */
int fs_classify_mounts(const struct pool_def *def, const struct mount_table *t,
                       const struct stat *dev_st, struct pool_status *ret);
