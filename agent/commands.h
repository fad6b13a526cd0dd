/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The commands that read the agent's state: `status` (status.xml as a table, as
 * JSON, or as a monitoring-plugins check) and `wait` (block until converged). */
#pragma once

#include "agent/config.h"

/* argv[0] is the command name; options are parsed with getopt_long (the caller
 * resets optind). Both return the process exit code. */
int cli_status(const struct dv_config *cfg, int argc, char **argv);
int cli_wait(const struct dv_config *cfg, int argc, char **argv);
