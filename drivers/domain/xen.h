/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen domain driver: <domain type='xen'> run through the xl toolstack (xl create,
 * shutdown -w, destroy) and observed through libxenstore (/local/domain, watches on
 * @introduceDomain and @releaseDomain). See docs/xen.md. */
#pragma once

#include <net/if.h>
#include <stddef.h>

#include "drivers/domain.h"

/* agent.conf: xen.enabled (c->xen_enabled: -1 auto, 0 no, 1 yes), xen.xl (default
 * /usr/sbin/xl), run_dir (files RUN_DIR/xen/NAME.cfg and NAME.domid). Also drops a
 * cached xenstore connection so that the next call connects again. */
void xen_driver_set_config(const struct dom_driver_config *c);

/* xl's default name of the backend device of interface index of domain domid:
 * "vifDOMID.INDEX". -EINVAL when it does not fit. */
int xen_vif_name(int domid, size_t index, char buf[static IFNAMSIZ]);
