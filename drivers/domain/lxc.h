/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Linux container domain driver: <domain type='lxc'> with <os><type>exe</type> run
 * as an init in its own namespaces and cgroup, outliving the agent, found again by
 * pidfile plus a check of the process's namespaces and cgroup. See docs/containers.md. */
#pragma once

#include <net/if.h>
#include <stdint.h>
#include <stdio.h>

#include "drivers/domain.h"
#include "model/domain.h"
#include "util/error.h"

/* agent.conf: run_dir, state_dir, container.template_dir, container.data_dir (NULL keeps
 * /run/declvirt, /var/lib/declvirt/state, /var/lib/declvirt/templates,
 * /var/lib/declvirt/containers). Files: RUN_DIR/lxc/NAME.{pid,start}, RUN_DIR/lxc/NAME/root
 * (the root's mount point, empty on the host), STATE_DIR/domains/NAME.console.log,
 * DATA_DIR/NAME/{upper,work} (a template root's own layer, never deleted). */
void lxc_driver_set_config(const struct dom_driver_config *c);
/* Where cgroups are made: root (default /sys/fs/cgroup) and the directory under each
 * hierarchy (default "declvirt"): ROOT/memory/BASE/NAME... For tests. */
void lxc_driver_set_cgroup(const char *root, const char *base);

/* Forgets what this process remembers of containers (as a restarted agent would): for
 * tests of adoption. */
void lxc_driver_forget(void);

/* The driver's entry points (the table lxc_domain_driver holds them). */
int lxc_available(struct dv_error *err);
int lxc_observe(const struct domain_def *def, struct dom_status *ret, struct dv_error *err);
int lxc_start(const struct domain_def *def, const struct dom_start *args, struct dv_error *err);
int lxc_stop(const struct domain_def *def, uint64_t timeout_usec, struct dv_error *err);
int lxc_iface_name(const struct domain_def *def, size_t index, char buf[static IFNAMSIZ]);
int lxc_events_fd(void);
int lxc_events_dispatch(void);
int lxc_native(const struct domain_def *def, const struct dom_start *args, FILE *f,
               struct dv_error *err);
