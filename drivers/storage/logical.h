/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The logical (LVM) storage pool driver (docs/storage-logical.md): a volume
 * group, adopted by name or built from empty devices, whose logical volumes are the volumes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "drivers/storage.h"

extern const struct storage_driver storage_driver_logical;

/* The VG tag that records "stopped by the agent": a VG whose LVs cannot be activated
 * (no device-mapper, activation disabled) or that has no LVs would otherwise look the
 * same started and stopped. It lives in the VG metadata, so it survives restarts. */
#define LVM_STOPPED_TAG "declvirt_inactive"

/* What `vgs` says about one volume group. */
struct lvm_vg_info {
        bool found;
        uint64_t size, free, extent_size, seqno;
        char **pvs; /* pv_name of each physical volume ("[unknown]" when missing) */
        char **tags;
};

/* What `lvs` says about one logical volume (one entry per LV, segments merged). */
struct lvm_lv_info {
        char *name;
        uint64_t size;
        char attr[11]; /* lv_attr; attr[4] is the state: 'a' active, '-' not, 'X' unknown */
        char *origin;
};

void lvm_vg_info_done(struct lvm_vg_info *vg);
void lvm_lv_info_array_free(struct lvm_lv_info *lv, size_t n);

/* NULL when name can be an LVM VG or LV name (and so an argv element and a /dev path),
 * else the reason. */
const char *lvm_name_problem(const char *name);

/* Pure argv builders, compared with tests/data/logical/ golden files. -EINVAL for a
 * name LVM would not accept, -ENOMEM. */
int drv_lvm_vgs_argv(const struct pool_def *def, char ***ret);
int drv_lvm_lvs_argv(const struct pool_def *def, char ***ret);
int drv_lvm_pvcreate_argv(const char *dev, char ***ret);
int drv_lvm_pvremove_argv(const char *dev, char ***ret);
int drv_lvm_vgcreate_argv(const struct pool_def *def, char ***ret);
int drv_lvm_vgremove_argv(const struct pool_def *def, char ***ret);
/* vgchange -aly VG / vgchange -aln VG */
int drv_lvm_vgchange_argv(const struct pool_def *def, bool activate, char ***ret);
/* vgchange --addtag|--deltag LVM_STOPPED_TAG VG */
int drv_lvm_vgtag_argv(const struct pool_def *def, bool add, char ***ret);
int drv_lvm_lvcreate_argv(const struct pool_def *def, const struct volume_def *vol, char ***ret);
int drv_lvm_lvextend_argv(const struct pool_def *def, const char *name, uint64_t capacity,
                          char ***ret);
int drv_lvm_lvremove_argv(const struct pool_def *def, const char *name, char ***ret);

/* Parsers of `--reportformat json` output. parse_vgs keeps the rows of volume group vg
 * (one row per PV); ret->found is false when there is none. */
int drv_lvm_parse_vgs(const char *json, const char *vg, struct lvm_vg_info *ret,
                      struct dv_error *err);
int drv_lvm_parse_lvs(const char *json, struct lvm_lv_info **ret, size_t *n, struct dv_error *err);

/* Forgets every cached lvs listing (tests). */
void lvm_cache_clear(void);
/* How many times lvs has run (tests check that an unchanged VG is not listed again). */
unsigned lvm_lvs_runs(void);
