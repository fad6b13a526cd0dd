/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dir storage pool driver (drivers/storage/README.md): a directory of file
 * volumes. The volume functions work on any pool whose target is a directory, so
 * the fs and netfs drivers put them in their own vtables. */
#pragma once

#include <stdint.h>

#include "drivers/storage.h"

extern const struct storage_driver storage_driver_dir;

/* Default modes: libvirt's. */
#define DIR_POOL_DEFAULT_MODE 0711
#define DIR_VOL_DEFAULT_MODE  0600
/* Image creation with preallocation can take a while on a big volume. */
#define DIR_QEMU_IMG_TIMEOUT_USEC (30ULL * 60 * 1000000)

/* Opens path without following a symlink in any component (openat2 with
 * RESOLVE_NO_SYMLINKS; O_NOFOLLOW on kernels without it); O_CLOEXEC is added.
 * Returns the descriptor or a negative errno: -ELOOP for a symlink on the way. */
int dir_open_nofollow(const char *path, int flags);
/* Why dir_open_nofollow failed, to follow a path in a message ("is not a directory"). */
const char *dir_open_problem(int r);
/* "a symbolic link", "a FIFO", "a block device"... for messages. */
const char *dir_file_kind(mode_t mode);

/* The pool directory's permissions as written (<permissions>): chown, then chmod. */
int dir_pool_set_perms(const struct pool_def *def, struct dv_error *err);

/* File volumes in def->target.path. */
char *dir_vol_path(const struct pool_def *def, const char *name);
int dir_vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                 struct dv_error *err);
int dir_vol_create(const struct pool_def *def, const struct volume_def *vol, struct dv_error *err);
int dir_vol_resize(const struct pool_def *def, const struct volume_def *vol, uint64_t capacity,
                   struct dv_error *err);
int dir_vol_delete(const struct pool_def *def, const char *name, struct dv_error *err);

/* "TARGET/.NAME.creating": where a qcow2 volume is made before it is renamed into
 * place, so that a crash never leaves a half-made image under the volume's name
 * (names beginning with '.' are not listed). Caller frees; NULL for a bad name. */
char *dir_vol_temp_path(const struct pool_def *def, const char *name);

/* Pure argv builders, compared with tests/data/dir/ golden files.
 * qemu-img create -f qcow2 [-b BACKING -F BACKFMT] -o compat=1.1[,preallocation=metadata]
 *   FILE SIZE
 * FILE is absolute: the agent passes /proc/PID/fd/N of the temporary file it created.
 * backing_format is used when the volume does not name its backing store's format
 * (the caller detects it); -EINVAL without one, or for a relative backing path. */
int dir_qemu_img_create_argv(const struct volume_def *vol, const char *file,
                             const char *backing_format, char ***ret);
/* qemu-img resize -f FORMAT PATH SIZE */
int dir_qemu_img_resize_argv(const char *path, const char *format, uint64_t capacity, char ***ret);
