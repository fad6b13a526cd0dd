/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `declvirt native FILE`: what a domain would run (the QEMU argv, the container plan, the
 * xl.cfg), printed by its driver, with what only exists at start time filled in from
 * desired_dir or by placeholders. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli.h"
#include "drivers/domain.h"
#include "drivers/network.h"
#include "drivers/storage.h"
#include "model/domain.h"
#include "model/object.h"
#include "model/pool.h"
#include "reconcile/desired.h"
#include "util/strv.h"

/* The path of a volume disk: through the pool's desired file in desired_dir when there
 * is one, else the placeholder "/{pool POOL}/VOLUME". */
static char *native_volume_path(struct desired_set *set, const char *pool, const char *volume,
                                bool *placeholder) {
        struct desired_file *f;
        for (size_t i = 0; set && (f = desired_set_next(set, &i));) {
                if (!f->obj || f->obj->kind != DV_KIND_POOL || !streq(f->obj->name, pool))
                        continue;
                const struct storage_driver *drv = storage_driver_get(f->obj->def.pool->type);
                char *p = drv && drv->vol_path ? drv->vol_path(f->obj->def.pool, volume) : NULL;
                if (p) {
                        *placeholder = false;
                        return p;
                }
        }
        *placeholder = true;
        size_t l = strlen(pool) + strlen(volume) + 16;
        char *s = malloc(l);
        if (s)
                snprintf(s, l, "/{pool %s}/%s", pool, volume);
        return s;
}

/* The arrays have holes (a disk that is not a volume has no entry): strv_free would
 * stop at the first. */
static void free_n(char **a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                free(a[i]);
        free(a);
}

/* The bridge of an interface's network: through the network's desired file when there is
 * one, else the placeholder "{network NAME}". */
static char *native_bridge(struct desired_set *set, const struct domain_net *n, bool *placeholder) {
        *placeholder = false;
        if (!n->source_network)
                return strdup(n->source_bridge ? n->source_bridge : "");
        struct desired_file *f;
        for (size_t i = 0; set && (f = desired_set_next(set, &i));)
                if (f->obj && f->obj->kind == DV_KIND_NETWORK &&
                    streq(f->obj->name, n->source_network))
                        return network_bridge_name(f->obj->def.network);
        *placeholder = true;
        return strdupf("{network %s}", n->source_network);
}

/* Fills what the engine resolves at start (volume paths, bridges, generated MACs) from
 * desired_dir or with placeholders, saying so on stderr, and lets the driver print. */
static int native_domain(const struct dv_config *cfg, const char *file,
                         const struct domain_def *def, bool privileged,
                         const struct domain_driver *drv) {
        char **disks = calloc(def->n_disks + 1, sizeof(char *));
        char **bridges = calloc(def->n_interfaces + 1, sizeof(char *));
        char **macs = calloc(def->n_interfaces + 1, sizeof(char *));
        struct desired_set *set = NULL;
        int r = disks && bridges && macs ? 0 : -ENOMEM;
        if (r == 0 && (def->n_disks > 0 || def->n_interfaces > 0) &&
            desired_set_new(cfg->desired_dir, false, NULL, &set) >= 0)
                (void)desired_set_scan(set, NULL);
        for (size_t i = 0; r == 0 && i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                if (domain_disk_type(d) != DOMAIN_DISK_VOLUME || !d->has_source)
                        continue;
                bool placeholder = false;
                disks[i] = native_volume_path(set, d->source.pool, d->source.volume, &placeholder);
                if (!disks[i])
                        r = -ENOMEM;
                else if (placeholder)
                        fprintf(stderr,
                                "%s: disk %s: pool '%s' has no desired file in %s; its volume is "
                                "shown as %s\n",
                                file, strna(d->target_dev), d->source.pool, cfg->desired_dir,
                                disks[i]);
        }
        /* An unwritten MAC is generated once at the first start and kept. */
        for (size_t i = 0; r == 0 && i < def->n_interfaces; i++) {
                const struct domain_net *n = &def->interfaces[i];
                bool placeholder = false;
                bridges[i] = native_bridge(set, n, &placeholder);
                macs[i] = n->mac ? strdup(n->mac) : strdupf("52:54:00:00:00:%02zx", i & 0xff);
                if (!bridges[i] || !macs[i])
                        r = -ENOMEM;
                else {
                        if (placeholder)
                                fprintf(stderr,
                                        "%s: interface %zu: network '%s' has no desired file in %s; "
                                        "its bridge is shown as %s\n",
                                        file, i, n->source_network, cfg->desired_dir, bridges[i]);
                        if (!n->mac)
                                fprintf(stderr,
                                        "%s: interface %zu: no MAC written; the agent generates one at "
                                        "first start (shown as %s)\n",
                                        file, i, macs[i]);
                }
        }
        desired_set_free(set);
        if (!def->uuid)
                fprintf(stderr,
                        "%s: no UUID written; the agent generates one at first start and keeps it "
                        "(left out here)\n",
                        file);

        int ret = 1;
        if (r < 0)
                fprintf(stderr, "%s: %s\n", file, strerror(-r));
        else {
                struct dom_start a = {
                        .uuid = def->uuid,
                        .disk_paths = disks,
                        .macs = macs,
                        .bridges = bridges,
                        .privileged = privileged,
                };
                _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                if (drv->native(def, &a, stdout, &err) < 0) {
                        dv_error_set_file(&err, file);
                        dv_error_print(stderr, &err);
                } else
                        ret = fflush(stdout) == 0 ? 0 : 1;
        }
        free_n(disks, def->n_disks);
        free_n(bridges, def->n_interfaces);
        free_n(macs, def->n_interfaces);
        return ret;
}

int cli_native(const struct dv_config *cfg, int argc, char **argv) {
        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr, "Usage: declvirt native FILE\n");
                return argc == 2 ? 0 : 2;
        }
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse_file(argv[1], &o, &err) < 0) {
                dv_error_print(stderr, &err);
                return 1;
        }
        int r = 1;
        if (o->kind != DV_KIND_DOMAIN)
                fprintf(stderr, "%s: declvirt native takes a <domain> file, not a <%s>\n", argv[1],
                        dv_kind_to_string(o->kind));
        else {
                const struct domain_driver *drv = domain_driver_get(o->def.domain->type);
                agent_set_domain_drivers(cfg);
                if (drv && drv->native)
                        r = native_domain(cfg, argv[1], o->def.domain,
                                          dv_policy_privileged(&o->policy), drv);
                else
                        fprintf(stderr,
                                "%s: domain/%s is of type '%s', which has no driver in this build\n",
                                argv[1], o->name, domain_type_to_string(o->def.domain->type));
        }
        dv_object_free(o);
        return r;
}
