/* `declvirt native FILE`: what a domain would run (QEMU argv, xl.cfg, container
 * plan). The domain drivers provide the conversion; until one exists for a
 * domain type, the command says so. */
#include <getopt.h>
#include <stdio.h>

#include "agent/cli.h"
#include "model/object.h"

int cmd_native(const struct dv_config *cfg, int argc, char **argv) {
        (void)cfg;
        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr, "Usage: declvirt native FILE\n");
                return argc == 2 ? 0 : 2;
        }
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse_file(argv[1], &o, &err) < 0) {
                dv_error_print(stderr, &err);
                dv_error_clear(&err);
                return 1;
        }
        dv_error_clear(&err);
        int r = 1;
        if (o->kind != DV_KIND_DOMAIN)
                fprintf(stderr, "%s: declvirt native takes a <domain> file, not a <%s>\n", argv[1],
                        dv_kind_to_string(o->kind));
        else
                fprintf(stderr, "%s: no domain driver in this build can run domain/%s yet\n", argv[1], o->name);
        dv_object_free(o);
        return r;
}
