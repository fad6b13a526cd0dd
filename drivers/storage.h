/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage drivers: one const vtable per pool type; a NULL slot means "not
 * supported by this type". Drivers know nothing of files, inotify or plans: they
 * observe the host and carry out one action at a time. Actions may run in worker
 * threads (one action per object at a time), so drivers keep no unlocked global
 * state. Expensive facts are cached keyed by what invalidates them. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model/pool.h"
#include "model/volume.h"
#include "util/error.h"

enum pool_state {
        POOL_STATE_ABSENT,   /* nothing there yet: needs build */
        POOL_STATE_INACTIVE, /* built but not started (not mounted, VG inactive...) */
        POOL_STATE_ACTIVE,
        POOL_STATE_BROKEN, /* something is in the way (reason says what) */
};

struct pool_status {
        enum pool_state state;
        char *reason; /* for BROKEN (and INACTIVE when it explains) */
        bool has_sizes;
        uint64_t capacity, allocation, available;
        bool has_perms;
        unsigned mode;
        uint32_t owner, group;
        /* disk pools: the free extents of the source device, end exclusive (libvirt's
         * <freeExtent>), for the observed pool XML */
        struct pool_extent *free_extents;
        size_t n_free_extents;
};

struct vol_status {
        char *name;
        char *path;
        char *type;   /* "file", "block", "dir" */
        char *format; /* detected: raw, qcow2, iso, ... */
        uint64_t capacity, allocation;
        char *backing_path, *backing_format;
};

/* Refusals: an action that will not proceed because doing so could destroy data
 * returns one of these, and the object is reported `blocked` (not retried until its
 * file changes or the periodic resync): -EEXIST (build found a signature, a volume
 * group with other devices, a file in the way), -ENOTEMPTY (delete of a pool that still
 * holds data), -EBUSY (in use or mounted elsewhere). Anything else is a failure that is
 * retried with backoff. */
#define STORAGE_IS_REFUSAL(r) ((r) == -EEXIST || (r) == -ENOTEMPTY || (r) == -EBUSY)

struct storage_driver {
        enum pool_type type;
        /* Looks at the pool on the host. Cheap: called every pass. */
        int (*pool_observe)(const struct pool_def *def, struct pool_status *ret,
                            struct dv_error *err);
        /* Creates what the pool needs (mkdir, mkfs, vgcreate, mklabel). Honours
         * build='if-empty': never formats a device that carries a signature
         * (returns -EEXIST with the reason). */
        int (*pool_build)(const struct pool_def *def, enum dv_build build, struct dv_error *err);
        int (*pool_start)(const struct pool_def *def, struct dv_error *err);
        int (*pool_stop)(const struct pool_def *def, struct dv_error *err);
        /* Removes what build created, only when empty (-ENOTEMPTY otherwise). */
        int (*pool_delete)(const struct pool_def *def, struct dv_error *err);
        /* Applies <permissions> of the target live. */
        int (*pool_set_perms)(const struct pool_def *def, struct dv_error *err);
        /* Lists the volumes of an active pool; *ret is an array of n entries. */
        int (*vol_list)(const struct pool_def *def, struct vol_status **ret, size_t *n,
                        struct dv_error *err);
        /* Creates a volume; on failure nothing half-created is left behind. */
        int (*vol_create)(const struct pool_def *def, const struct volume_def *vol,
                          struct dv_error *err);
        int (*vol_resize)(const struct pool_def *def, const struct volume_def *vol,
                          uint64_t capacity, struct dv_error *err);
        int (*vol_delete)(const struct pool_def *def, const char *name, struct dv_error *err);
        /* The path a volume of this name has (or will have); caller frees. */
        char *(*vol_path)(const struct pool_def *def, const char *name);
};

const struct storage_driver *storage_driver_get(enum pool_type type);

void pool_status_done(struct pool_status *s);
void vol_status_done(struct vol_status *v);
void vol_status_array_free(struct vol_status *v, size_t n);
