/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Command implementations reached from main.c. Each returns the process exit code. */
#pragma once

#include "agent/config.h"

#define DECLVIRT_VERSION "0.1.0"

int cli_agent(const char *config_path, int argc, char **argv);
int cli_plan(const struct dv_config *cfg, int argc, char **argv);
int cli_validate(const struct dv_config *cfg, int argc, char **argv);
int cli_native(const struct dv_config *cfg, int argc, char **argv);

/* Hands agent.conf's qemu, container and xen settings (and run_dir, state_dir) to the
 * domain drivers. */
void agent_set_domain_drivers(const struct dv_config *cfg);
