/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* declvirt: command-line dispatch. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cli.h"
#include "agent/commands.h"
#include "agent/config.h"
#include "util/log.h"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: declvirt [--config FILE] COMMAND [OPTIONS] [ARGS]\n"
                "\n"
                "Make this host match the libvirt-format XML files in desired_dir.\n"
                "\n"
                "Commands:\n"
                "  agent [--once] [--dry-run]          run the reconciling agent in the foreground\n"
                "  plan                                print what the agent would do now\n"
                "  status [KIND/NAME] [--check] [--json]  show the observed state\n"
                "  wait [--timeout SECONDS] [FILE | KIND/NAME ...]\n"
                "                                      wait until objects are in their desired phase\n"
                "  validate FILE...                    check desired files offline\n"
                "  native FILE                         print what a domain would run\n"
                "  version                             print the version\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE   agent.conf to use (default %s)\n"
                "  -h, --help          this help; `declvirt COMMAND --help` for a command\n",
                DV_CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {},
        };
        const char *config_path = NULL;
        int c;
        log_open();
        while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("declvirt %s\n", DECLVIRT_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[optind];
        int cargc = argc - optind;
        char **cargv = argv + optind;
        optind = 0; /* reset getopt for the command's own options */

        if (streq(cmd, "version")) {
                printf("declvirt %s\n", DECLVIRT_VERSION);
                return 0;
        }
        if (streq(cmd, "help")) {
                usage(stdout);
                return 0;
        }
        if (streq(cmd, "agent"))
                return cli_agent(config_path, cargc, cargv);

        struct dv_config *cfg = NULL;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        if (dv_config_load(config_path, &cfg, &err) < 0) {
                dv_error_print(stderr, &err);
                return 2;
        }
        log_set_max_level(cfg->log_level);
        int r;
        if (streq(cmd, "validate"))
                r = cli_validate(cfg, cargc, cargv);
        else if (streq(cmd, "plan"))
                r = cli_plan(cfg, cargc, cargv);
        else if (streq(cmd, "status"))
                r = cli_status(cfg, cargc, cargv);
        else if (streq(cmd, "wait"))
                r = cli_wait(cfg, cargc, cargv);
        else if (streq(cmd, "native"))
                r = cli_native(cfg, cargc, cargv);
        else {
                fprintf(stderr, "declvirt: unknown command '%s' (see declvirt --help)\n", cmd);
                r = 2;
        }
        dv_config_free(cfg);
        return r;
}
