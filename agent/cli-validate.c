/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `declvirt validate FILE...`: offline checks with file:line errors, usable as
 * Ansible's `validate: declvirt validate %s`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cli.h"
#include "model/object.h"
#include "reconcile/desired.h"

static void validate_usage(FILE *f) {
        fprintf(f,
                "Usage: declvirt validate [--quiet] FILE...\n"
                "\n"
                "Checks each desired file as the agent would: XML, the model, the policy, names,\n"
                "storage_locations, and (when run as root with strict_permissions) ownership and\n"
                "mode. Prints FILE:LINE: message for each problem; exits 0 when all are valid.\n");
}

int cli_validate(const struct dv_config *cfg, int argc, char **argv) {
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {"quiet", no_argument, NULL, 'q'},
                {},
        };
        bool quiet = false;
        int c;
        while ((c = getopt_long(argc, argv, "hq", opts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        validate_usage(stdout);
                        return 0;
                case 'q':
                        quiet = true;
                        break;
                default:
                        validate_usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                validate_usage(stderr);
                return 2;
        }
        bool check_trust = geteuid() == 0 && cfg->strict_permissions;
        int bad = 0;
        for (int i = optind; i < argc; i++) {
                const char *path = argv[i];
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                struct dv_object *o = NULL;
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                dv_error_set_file(&err, path);
                if (desired_read_file(path, check_trust, &data, &len, NULL, &err) >= 0 &&
                    dv_object_parse(data, len, path, &o, &err) >= 0 &&
                    desired_check_locations(o, cfg->storage_locations, &err) >= 0)
                        desired_check_driver(o, &err);
                dv_error_print(stderr, &err);
                if (dv_error_failed(&err))
                        bad++;
                else if (!quiet) {
                        char *id = dv_object_id(o);
                        printf("%s: valid %s\n", path, id ? id : "object");
                        free(id);
                }
                dv_object_free(o);
        }
        return bad ? 1 : 0;
}
