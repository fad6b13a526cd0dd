/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The storage driver registry (one vtable per pool type) and the status helpers
 * of drivers/storage.h. */
#include <stdlib.h>

#include "drivers/storage.h"
#include "drivers/storage/dir.h"
#include "drivers/storage/disk.h"
#include "drivers/storage/fs.h"
#include "drivers/storage/iscsi-direct.h"
#include "drivers/storage/iscsi.h"
#include "drivers/storage/logical.h"
#include "util/macro.h"

/* A pool type gets its driver by adding its vtable here; types without one stay
 * NULL and the engine reports "pool type 'X' has no driver on this host". */
static const struct storage_driver *const drivers[_POOL_TYPE_MAX] = {
        [POOL_DIR] = &storage_driver_dir,
        [POOL_DISK] = &storage_driver_disk,
        [POOL_FS] = &storage_driver_fs,
        [POOL_NETFS] = &storage_driver_netfs,
        [POOL_LOGICAL] = &storage_driver_logical,
        [POOL_ISCSI] = &storage_driver_iscsi,
        [POOL_ISCSI_DIRECT] = &storage_driver_iscsi_direct,
};

const struct storage_driver *storage_driver_get(enum pool_type type) {
        if ((int)type < 0 || (size_t)type >= ELEMENTSOF(drivers))
                return NULL;
        return drivers[type];
}

void pool_status_done(struct pool_status *s) {
        if (!s)
                return;
        free(s->reason);
        free(s->free_extents);
        *s = (struct pool_status){0};
}

void vol_status_done(struct vol_status *v) {
        if (!v)
                return;
        free(v->name);
        free(v->path);
        free(v->type);
        free(v->format);
        free(v->backing_path);
        free(v->backing_format);
        *v = (struct vol_status){0};
}

void vol_status_array_free(struct vol_status *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                vol_status_done(&v[i]);
        free(v);
}
