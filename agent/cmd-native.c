/* `declvirt native FILE`: what a domain would run. For kvm/qemu domains the QEMU argv,
 * one element per line, with what only exists at start time filled by placeholders. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/cli.h"
#include "drivers/domain/qemu-argv.h"
#include "drivers/domain/qemu.h"
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

static int native_print(const char *file, const struct domain_def *def,
                        const struct qemu_argv_ctx *ctx) {
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_strv_free_ char **argv = NULL;
        if (qemu_argv(def, ctx, &argv, &err) < 0) {
                dv_error_set_file(&err, file);
                dv_error_print(stderr, &err);
                dv_error_clear(&err);
                return 1;
        }
        dv_error_clear(&err);
        for (size_t i = 0; argv[i]; i++)
                printf("%s\n", argv[i]);
        return fflush(stdout) == 0 ? 0 : 1;
}

static int native_qemu(const struct dv_config *cfg, const char *file,
                       const struct domain_def *def) {
        const char *name = def->name;
        char qmp[4096], pid[4096], log[4096], vnc[4096];
        snprintf(qmp, sizeof(qmp), "%s/qemu/%s.qmp", cfg->run_dir, name);
        snprintf(pid, sizeof(pid), "%s/qemu/%s.pid", cfg->run_dir, name);
        snprintf(vnc, sizeof(vnc), "%s/qemu/%s.vnc", cfg->run_dir, name);
        snprintf(log, sizeof(log), "%s/domains/%s.console.log", cfg->state_dir, name);

        char **disks = calloc(def->n_disks + 1, sizeof(char *));
        char **taps = calloc(def->n_interfaces + 1, sizeof(char *));
        char **macs = calloc(def->n_interfaces + 1, sizeof(char *));
        struct desired_set *set = NULL;
        int r = disks && taps && macs ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                if (domain_disk_type(d) != DOMAIN_DISK_VOLUME || !d->has_source)
                        continue;
                if (!set && desired_set_new(cfg->desired_dir, false, NULL, &set) >= 0)
                        (void)desired_set_scan(set, NULL);
                bool placeholder = false;
                disks[i] = native_volume_path(set, d->source.pool, d->source.volume, &placeholder);
                if (!disks[i])
                        r = -ENOMEM;
                else if (placeholder)
                        fprintf(stderr,
                                "%s: disk %s: pool '%s' has no desired file in %s; its volume is "
                                "shown as %s\n",
                                file, d->target_dev, d->source.pool, cfg->desired_dir, disks[i]);
        }
        desired_set_free(set);
        /* Nothing below exists before the domain starts: the tap is created at start
         * and an unwritten MAC is generated once then and kept. */
        for (size_t i = 0; r == 0 && i < def->n_interfaces; i++) {
                char buf[32];
                snprintf(buf, sizeof(buf), "TAP%zu", i);
                taps[i] = strdup(buf);
                snprintf(buf, sizeof(buf), "52:54:00:00:00:%02zx", i & 0xff);
                macs[i] = strdup(def->interfaces[i].mac ? def->interfaces[i].mac : buf);
                if (!taps[i] || !macs[i])
                        r = -ENOMEM;
                else if (!def->interfaces[i].mac)
                        fprintf(stderr,
                                "%s: interface %zu: no MAC written; the agent generates one at "
                                "first start (shown as %s)\n",
                                file, i, macs[i]);
        }
        if (!def->uuid)
                fprintf(stderr,
                        "%s: no UUID written; the agent generates one at first start (-uuid "
                        "is left out here)\n",
                        file);
        if (def->n_interfaces > 0)
                fprintf(stderr, "%s: TAPn stands for the tap device the agent creates at start\n",
                        file);

        int ret = 1;
        if (r < 0)
                fprintf(stderr, "%s: %s\n", file, strerror(-r));
        else {
                struct qemu_argv_ctx ctx = {
                        .binary = def->emulator ? def->emulator : cfg->qemu.binary,
                        .accel = qemu_accel_for(def),
                        .qmp_socket = qmp,
                        .pidfile = pid,
                        .serial_log = log,
                        .vnc_socket = vnc,
                        .disk_paths = disks,
                        .tap_names = taps,
                        .macs = macs,
                };
                ret = native_print(file, def, &ctx);
        }
        free_n(disks, def->n_disks);
        free_n(taps, def->n_interfaces);
        free_n(macs, def->n_interfaces);
        return ret;
}

int cmd_native(const struct dv_config *cfg, int argc, char **argv) {
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
        else if (o->def.domain->type == DOMAIN_TYPE_KVM || o->def.domain->type == DOMAIN_TYPE_QEMU) {
                qemu_driver_set_config(cfg->qemu.binary, dv_qemu_accel_name(cfg->qemu.accel), cfg->run_dir,
                                       cfg->state_dir);
                r = native_qemu(cfg, argv[1], o->def.domain);
        } else
                fprintf(stderr,
                        "%s: domain/%s is of type '%s': the %s driver runs it, and this build "
                        "cannot show its native form yet\n",
                        argv[1], o->name, domain_type_to_string(o->def.domain->type),
                        o->def.domain->type == DOMAIN_TYPE_LXC ? "container" : "Xen");
        dv_object_free(o);
        return r;
}
