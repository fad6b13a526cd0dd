/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <permissions> of pool and volume targets, shared by both. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/error.h"

struct dv_perms {
        bool has_mode, has_owner, has_group;
        unsigned mode;
        uint32_t owner, group;
        char *label;
};

/* Parses the <permissions> element n (mode, owner, group, label children). */
int dv_perms_parse(const void *n, struct dv_perms *ret, struct dv_error *err);
/* Writes <permissions> when anything is set. */
void dv_perms_format(struct buf *b, const struct dv_perms *p);
void dv_perms_done(struct dv_perms *p);
bool dv_perms_equal(const struct dv_perms *a, const struct dv_perms *b);
