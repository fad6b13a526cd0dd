/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The iscsi-direct pool driver: the target's LUNs reached in user space through
 * libiscsi (no kernel initiator, no start/stop, no volume create/delete). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/storage.h"

extern const struct storage_driver storage_driver_iscsi_direct;

/* A probe (connect, login, REPORT LUNS, per LUN TEST UNIT READY, INQUIRY, READ
 * CAPACITY(16), logout) never takes longer than this, whatever the network does. */
#define DRV_ISCSI_DIRECT_PROBE_TIMEOUT_USEC (10ULL * 1000000)
/* observe runs on the event loop: it answers from a cache that a background thread
 * refreshes, at most this often per target. */
#define DRV_ISCSI_DIRECT_REFRESH_USEC (5ULL * 1000000)
/* How long the very first observe of a target waits for the first probe. */
#define DRV_ISCSI_DIRECT_FIRST_WAIT_USEC (1ULL * 1000000)
/* TEST UNIT READY retries while the LUN reports a unit attention. */
#define DRV_ISCSI_DIRECT_TUR_RETRIES 5
#define DRV_ISCSI_DIRECT_VOL_PREFIX  "unit:0:0:"

struct drv_iscsi_direct_lun {
        unsigned lun;
        int device_type; /* SCSI peripheral device type (0: direct access block device) */
        uint32_t block_size;
        uint64_t capacity; /* bytes */
        char vendor[9], product[17];
};

struct drv_iscsi_direct_result {
        struct drv_iscsi_direct_lun *luns; /* direct-access LUNs only, sorted by number */
        size_t n_luns;
};
void drv_iscsi_direct_result_done(struct drv_iscsi_direct_result *r);

/* The probe itself, synchronous, bounded by timeout_usec (0: the default). The secret
 * (for <auth>) is read here. Thread-safe. Errors carry the reason ("cannot connect to
 * iSCSI portal H:P: ...", "login to iSCSI target T at H:P failed: ...", "no answer
 * from iSCSI portal H:P within Ns"). */
int drv_iscsi_direct_probe(const struct pool_def *def, uint64_t timeout_usec,
                           struct drv_iscsi_direct_result *ret, struct dv_error *err);

/* "unit:0:0:LUN" and libvirt's volume path "ip-HOST:PORT-iscsi-IQN-lun-LUN". */
char *drv_iscsi_direct_vol_name(unsigned lun);
char *drv_iscsi_direct_lun_path(const struct pool_def *def, unsigned lun);
/* The LUN of a volume name, -EINVAL when it is not "unit:0:0:N". */
int drv_iscsi_direct_parse_vol_name(const char *name, unsigned *ret);
/* The libiscsi portal ("HOST:PORT", brackets for IPv6) and the cache key of a pool. */
char *drv_iscsi_direct_cache_key(const struct pool_def *def);

/* For tests: waits for running background probes and empties the cache; counts probes. */
void drv_iscsi_direct_cache_reset(void);
unsigned drv_iscsi_direct_probe_count(void);
