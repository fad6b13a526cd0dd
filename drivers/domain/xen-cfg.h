/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The xl configuration file (xl.cfg(5)) of a <domain type='xen'>: a pure function of the
 * parsed definition and what the engine resolved. Golden files: tests/data/xen. */
#pragma once

#include <stdio.h>

#include "model/domain.h"
#include "util/error.h"

struct xen_cfg_ctx {
        const char *uuid;               /* written in the file, or generated and kept by the
                                         * engine; NULL: def->uuid, no uuid line when neither
                                         * (declvirt native) */
        char *const *disk_paths;        /* one per <disk>: its path (a volume resolved through
                                         * its pool); NULL array or entry: use the <source> as
                                         * written */
        char *const *macs;              /* one per <interface>: the MAC to use; NULL array or
                                         * entry: the interface's own mac (or none) */
        char *const *bridges;           /* one per <interface>: the bridge of its network; NULL
                                         * or "": the interface's <source bridge=> */
        const char *vnc_listen_default; /* NULL: 127.0.0.1 */
};

/* The xl.cfg(5) text for def; caller frees *ret. -EOPNOTSUPP with the element and its
 * line for what the Xen driver does not support (e.g. "<video model='qxl'> (line 31) is
 * not supported by the Xen driver"), -EINVAL for what cannot be expressed (a value with a
 * quote or a newline, a volume disk without a resolved path, a network interface without
 * a bridge). Every problem is added to err, not only the first. ctx may be NULL. */
int xen_cfg_build(const struct domain_def *def, const struct xen_cfg_ctx *ctx, char **ret,
                  struct dv_error *err);

/* Only the checks of xen_cfg_build (no output): what `declvirt validate` may also call.
 * Checks what does not depend on the context (placeholders stand in for paths, MACs and
 * bridges). */
int xen_cfg_check(const struct domain_def *def, struct dv_error *err);

/* For `declvirt native`: the cfg text with placeholders where the engine resolves values
 * at start ("<path of volume POOL/VOL>", "<bridge of network NET>") unless ctx provides
 * them, written to f. ctx may be NULL. */
int xen_cfg_native(const struct domain_def *def, const struct xen_cfg_ctx *ctx, FILE *f,
                   struct dv_error *err);
