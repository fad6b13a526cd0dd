/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cgroups of containers: one per container (BASE/NAME) in each hierarchy the plan names,
 * cgroup v1 (hybrid) or v2, with the root as a parameter so tests can use a fake tree. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "drivers/domain/lxc-plan.h"
#include "util/error.h"

/* V2 when ROOT/cgroup.controllers exists; else V1, *ret_unified telling whether a v2 tree
 * is mounted at ROOT/unified (hybrid). -ENOENT when ROOT holds neither. */
int lxc_cgroup_detect(const char *root, enum lxc_cgroup_mode *ret_mode, bool *ret_unified);
/* Creates the plan's cgroup directories (and their parents, 0755). */
int lxc_cgroup_create(const struct lxc_plan *p, struct dv_error *err);
/* Writes the plan's limits in order; the kernel's refusal is in err with the value and
 * the file ("cannot set memory limit 4096 in FILE: Device or resource busy"). */
int lxc_cgroup_apply(const struct lxc_plan *p, struct dv_error *err);
/* Moves pid into every cgroup of the plan but the devices one (see devices_dir). */
int lxc_cgroup_join(const struct lxc_plan *p, pid_t pid, struct dv_error *err);
/* Removes the (empty) cgroups, waiting up to wait_msec for exiting tasks to leave.
 * Missing ones are fine; 0 or the first error. */
int lxc_cgroup_remove(const struct lxc_plan *p, int wait_msec);
/* True when /proc/PID/cgroup puts pid in the plan's cgroup. */
bool lxc_cgroup_contains(const struct lxc_plan *p, pid_t pid);
/* The processes in the plan's first cgroup (*ret NULL and *n 0 when none or no cgroup):
 * to find a container whose pidfile was lost. */
int lxc_cgroup_pids(const struct lxc_plan *p, pid_t **ret, size_t *n);
