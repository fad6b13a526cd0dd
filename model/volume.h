/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage volume definitions: libvirt's <volume> format. The pool a volume
 * belongs to is named by the policy element (pool='NAME'). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "model/object.h"
#include "model/perms.h"

struct volume_def {
        char *name;
        char *type; /* <volume type=...>: file, block, ...; observed */
        char *key;  /* observed */
        bool has_capacity, has_allocation, has_physical;
        uint64_t capacity, allocation, physical;
        struct {
                char *path;   /* observed, or written by the user for information */
                char *format; /* raw, qcow2, ... ; NULL when not written */
                struct dv_perms perms;
        } target;
        bool has_backing;
        struct {
                char *path;
                char *format;
        } backing;
        int line;
};

int volume_def_parse(const void *root, struct volume_def **ret, struct dv_error *err);
int volume_def_validate(const struct volume_def *def, struct dv_error *err);
/* virsh vol-dumpxml layout; policy (may be NULL) is written as a child. */
void volume_def_format(struct buf *b, const struct volume_def *def, const struct dv_policy *policy);
void volume_def_free(struct volume_def *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct volume_def *, volume_def_free)
/* Effective format: the written one, or "raw". */
const char *volume_def_format_type(const struct volume_def *def);
