/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The xl configuration file (xl.cfg(5)) of a Xen domain: every element the model accepts
 * for a xen domain is mapped to an xl.cfg key here, or refused with an error naming it.
 * docs/xen-cfg.md is the mapping table; tests/data/xen holds the golden files. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/domain/xen-cfg.h"
#include "util/buf.h"
#include "util/mac.h"
#include "util/parse.h"

struct builder {
        const struct domain_def *def;
        const struct xen_cfg_ctx *ctx;
        struct dv_error *err;
        struct buf out;
        int r;             /* first failure */
        bool hvm, pvh, pv; /* exactly one is set */
        bool placeholders; /* declvirt native / checks: unresolved values become placeholders */
};

static void fail_errno(struct builder *b, int r) {
        KEEP(b->r, r);
}

static void refuse(struct builder *b, int line, const char *fmt, ...) _printf_(3, 4);
static void refuse(struct builder *b, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fail_errno(b, dv_error_addv(b->err, -EOPNOTSUPP, line, fmt, ap));
        va_end(ap);
}

static void invalid(struct builder *b, int line, const char *fmt, ...) _printf_(3, 4);
static void invalid(struct builder *b, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fail_errno(b, dv_error_addv(b->err, -EINVAL, line, fmt, ap));
        va_end(ap);
}

/* ---- values and quoting ---------------------------------------------------------------- */

/* xl.cfg strings are quoted with " or ', and libxlu reads a backslash as an escape; the
 * specs inside disk/vif/vfb strings are comma-separated key=value lists. A value that
 * would change that syntax is refused, never emitted: what it breaks is named. */
static const char *bad_char(const char *s, bool in_spec) {
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"')
                        return "a double quote";
                if (c == '\'')
                        return "a single quote";
                if (c == '\\')
                        return "a backslash";
                if (c == '\n' || c == '\r')
                        return "a newline";
                if (c < 0x20 || c == 0x7f)
                        return "a control character";
                if (in_spec && c == ',')
                        return "a comma";
        }
        return NULL;
}

/* True when s can be written; else an -EINVAL problem naming what and its line. */
static bool value_ok(struct builder *b, int line, const char *what, const char *s, bool in_spec) {
        const char *why = bad_char(s, in_spec);
        if (!why)
                return true;
        invalid(b, line, "%s contains %s, which xl.cfg cannot hold%s", what, why,
                in_spec ? " in a device spec" : "");
        return false;
}

static void put_str(struct builder *b, int line, const char *key, const char *what,
                    const char *value) {
        if (!value_ok(b, line, what, value, false))
                return;
        buf_printf(&b->out, "%s = \"%s\"\n", key, value);
}

static void put_u64(struct builder *b, const char *key, uint64_t v) {
        buf_printf(&b->out, "%s = %" PRIu64 "\n", key, v);
}

static void put_bool(struct builder *b, const char *key, bool v) {
        buf_printf(&b->out, "%s = %d\n", key, v ? 1 : 0);
}

/* One list: `key = [ 'item', 'item' ]` on one line. */
struct list {
        struct buf items;
        size_t n;
};

static void list_add(struct list *l, const char *item, char quote) {
        buf_puts(&l->items, l->n ? ", " : "");
        buf_putc(&l->items, quote);
        buf_puts(&l->items, item);
        buf_putc(&l->items, quote);
        l->n++;
}

/* Takes the spec buffer's content as one '...' item. */
static void list_add_spec(struct builder *b, struct list *l, struct buf *spec) {
        if (spec->oom)
                fail_errno(b, -ENOMEM);
        list_add(l, buf_str(spec), '\'');
        buf_reset(spec);
}

static void list_put(struct builder *b, const char *key, struct list *l) {
        if (l->items.oom)
                fail_errno(b, -ENOMEM);
        if (l->n)
                buf_printf(&b->out, "%s = [ %s ]\n", key, buf_str(&l->items));
        buf_free(&l->items);
}

/* key=value inside a device spec, comma-separated. */
static void spec_put(struct buf *spec, const char *key, const char *value) {
        if (spec->len)
                buf_putc(spec, ',');
        buf_puts(spec, key);
        buf_putc(spec, '=');
        buf_puts(spec, value);
}

static void spec_flag(struct buf *spec, const char *flag) {
        if (spec->len)
                buf_putc(spec, ',');
        buf_puts(spec, flag);
}

static uint64_t kib_to_mib(uint64_t kib) {
        return kib / 1024 + (kib % 1024 ? 1 : 0);
}

static bool feature_written(const struct domain_def *def, enum domain_feature f) {
        return def->has_features && def->features[f] != DOMAIN_FEATURE_ABSENT;
}

/* ---- general: name, memory, vcpus ---------------------------------------------------- */

static void build_general(struct builder *b) {
        const struct domain_def *def = b->def;
        const struct xen_cfg_ctx *ctx = b->ctx;
        put_str(b, def->name_line, "name", "<name>", def->name);
        const char *uuid = ctx && ctx->uuid ? ctx->uuid : def->uuid;
        if (uuid)
                put_str(b, def->line, "uuid", "the UUID", uuid);
        put_str(b, def->os.type_line, "type", "type", b->hvm ? "hvm" : b->pvh ? "pvh" : "pv");

        /* xl counts memory in MiB; libvirt rounds KiB up the same way. <memory> is the
         * maximum, <currentMemory> what the guest starts with (ballooned down). */
        uint64_t max = kib_to_mib(def->memory_kib);
        uint64_t cur = kib_to_mib(domain_def_current_memory_kib(def));
        put_u64(b, "memory", cur);
        if (max != cur)
                put_u64(b, "maxmem", max);
        if (def->has_max_memory)
                refuse(b, def->max_memory_line,
                       "<maxMemory> (memory hotplug) is not supported by the Xen driver");

        unsigned n = domain_def_vcpus(def), n_cur = domain_def_vcpus_current(def);
        put_u64(b, "vcpus", n_cur);
        if (n != n_cur)
                put_u64(b, "maxvcpus", n);
        /* placement='auto' without a cpuset is what xl does anyway (its NUMA placement). */
        if (def->vcpu_cpuset)
                put_str(b, def->vcpu_line, "cpus", "<vcpu cpuset=>", def->vcpu_cpuset);

        const struct domain_cpu *cpu = &def->cpu;
        if (cpu->present && (cpu->mode != DOMAIN_CPU_MODE_HOST_PASSTHROUGH || cpu->model ||
                             cpu->vendor || cpu->has_topology || cpu->n_features))
                refuse(b, cpu->line,
                       "<cpu> is not supported by the Xen driver (Xen guests see the host CPU: "
                       "only <cpu mode='host-passthrough'/> without model, vendor, topology or "
                       "features)");
}

/* ---- boot: kernel, bootloader, firmware, boot order ------------------------------------ */

static char boot_letter(enum domain_boot_dev d) {
        switch (d) {
        case DOMAIN_BOOT_HD:
                return 'c';
        case DOMAIN_BOOT_CDROM:
                return 'd';
        case DOMAIN_BOOT_NETWORK:
                return 'n';
        case DOMAIN_BOOT_FD:
                return 'a';
        default:
                return 0;
        }
}

static void build_boot(struct builder *b) {
        const struct domain_def *def = b->def;
        const struct domain_os *os = &def->os;

        if (b->hvm) {
                if (os->arch && !streq(os->arch, "x86_64") && !streq(os->arch, "i686"))
                        refuse(b, os->type_line,
                               "arch '%s' is not supported by the Xen driver (x86_64, i686)",
                               os->arch);
                if (os->machine && !streq(os->machine, "xenfv"))
                        refuse(b, os->type_line,
                               "machine '%s' does not fit a Xen HVM domain (xenfv)", os->machine);
        }
        if (os->kernel && def->has_bootloader)
                refuse(b, def->bootloader_line ? def->bootloader_line : os->line,
                       "<kernel> next to <bootloader> is not supported by the Xen driver (xl "
                       "would look for the kernel inside the guest's disk): write one of them");
        if (os->kernel)
                put_str(b, os->line, "kernel", "<kernel>", os->kernel);
        if (os->initrd)
                put_str(b, os->line, "ramdisk", "<initrd>", os->initrd);
        /* cmdline= is the whole command line (root= and extra= are ignored next to it);
         * with a bootloader xl hands it to the bootloader as the kernel's arguments. */
        if (os->cmdline) {
                if (!os->kernel && !def->has_bootloader)
                        refuse(b, os->line, "<cmdline> needs a <kernel> or a <bootloader>");
                else
                        put_str(b, os->line, "cmdline", "<cmdline>", os->cmdline);
        }
        if (def->has_bootloader) {
                /* <bootloader/>: the toolstack's default, pygrub as libvirt chooses it. */
                const char *bl = def->bootloader && def->bootloader[0] ? def->bootloader : "pygrub";
                put_str(b, def->bootloader_line, "bootloader", "<bootloader>", bl);
        }
        if (def->bootloader_args &&
            value_ok(b, def->bootloader_line, "<bootloader_args>", def->bootloader_args, false)) {
                /* xl wants a list of arguments; libvirt's text is split at blanks. */
                struct list l = {BUF_INIT, 0};
                _cleanup_free_ char *copy = strdup(def->bootloader_args);
                if (!copy)
                        fail_errno(b, -ENOMEM);
                char *save = NULL;
                for (char *t = copy ? strtok_r(copy, " \t", &save) : NULL; t;
                     t = strtok_r(NULL, " \t", &save))
                        list_add(&l, t, '"');
                list_put(b, "bootloader_args", &l);
        }

        if (b->hvm) {
                bool ovmf = os->firmware == DOMAIN_FIRMWARE_EFI ||
                            (os->has_loader && os->loader.type == DOMAIN_LOADER_PFLASH);
                if (ovmf)
                        put_str(b, os->line, "bios", "bios", "ovmf");
                /* A pflash loader is the OVMF image; any other loader path is what libvirt's
                 * Xen driver means by it: hvmloader, xl's "firmware". */
                if (os->has_loader && os->loader.path) {
                        if (os->loader.type == DOMAIN_LOADER_PFLASH)
                                put_str(b, os->line, "bios_path_override", "<loader>",
                                        os->loader.path);
                        else
                                put_str(b, os->line, "firmware", "<loader>", os->loader.path);
                }
                if (os->has_loader && os->loader.secure == DOMAIN_TRI_YES)
                        refuse(b, os->line,
                               "<loader secure='yes'> (Secure Boot) is not supported by the Xen "
                               "driver");
                if (os->has_nvram)
                        refuse(b, os->line,
                               "<nvram> is not supported by the Xen driver (xl keeps no UEFI "
                               "variable store)");
                if (os->n_boot) {
                        char order[DOMAIN_MAX_BOOT_DEVS + 1] = {0};
                        size_t k = 0;
                        for (size_t i = 0; i < os->n_boot; i++) {
                                char c = boot_letter(os->boot[i]);
                                if (c && !strchr(order, c))
                                        order[k++] = c;
                        }
                        put_str(b, os->boot_line, "boot", "<boot>", order);
                }
        }
}

/* ---- features, clock, lifecycle, emulator ---------------------------------------------- */

static void build_features(struct builder *b) {
        const struct domain_def *def = b->def;
        static const struct {
                enum domain_feature f;
                const char *key;
                bool pvh; /* also for PVH guests */
        } map[] = {
                {DOMAIN_FEATURE_ACPI, "acpi", true},          {DOMAIN_FEATURE_APIC, "apic", false},
                {DOMAIN_FEATURE_PAE, "pae", false},           {DOMAIN_FEATURE_HAP, "hap", true},
                {DOMAIN_FEATURE_VIRIDIAN, "viridian", false},
        };
        for (int f = 0; f < _DOMAIN_FEATURE_MAX; f++) {
                if (!feature_written(def, f))
                        continue;
                const char *key = NULL;
                bool pvh_ok = false;
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (map[i].f == (enum domain_feature)f) {
                                key = map[i].key;
                                pvh_ok = map[i].pvh;
                        }
                const char *name = domain_feature_to_string(f);
                if (!key)
                        refuse(b, def->line, "feature <%s> is not supported by the Xen driver",
                               name);
                else if (b->pv || (b->pvh && !pvh_ok))
                        refuse(b, def->line,
                               "feature <%s> does not fit a Xen %s domain (it is an HVM%s "
                               "feature)",
                               name, b->pv ? "PV" : "PVH", pvh_ok ? " and PVH" : "");
                else
                        put_bool(b, key, domain_def_has_feature(def, f));
        }
}

static void build_clock(struct builder *b) {
        const struct domain_clock *c = &b->def->clock;
        if (!c->present)
                return;
        switch (c->offset) {
        case DOMAIN_CLOCK_UNSET:
        case DOMAIN_CLOCK_UTC:
                break;
        case DOMAIN_CLOCK_LOCALTIME:
                put_bool(b, "localtime", true);
                break;
        case DOMAIN_CLOCK_VARIABLE: {
                if (c->basis == DOMAIN_CLOCK_BASIS_LOCALTIME)
                        put_bool(b, "localtime", true);
                /* rtc_timeoffset is in seconds from the basis, as libvirt's adjustment. */
                int64_t secs = 0;
                if (c->adjustment && streq(c->adjustment, "reset"))
                        refuse(b, c->line,
                               "<clock adjustment='reset'> is not supported by the Xen driver");
                else if (c->adjustment) {
                        const char *a = c->adjustment[0] == '+' ? c->adjustment + 1 : c->adjustment;
                        char *end = NULL;
                        errno = 0;
                        long long v = strtoll(a, &end, 10);
                        if (errno || end == a || *end)
                                invalid(b, c->line,
                                        "<clock adjustment='%s'> is not a number of "
                                        "seconds",
                                        c->adjustment);
                        else
                                secs = v;
                }
                /* xl's lexer has no signed numbers; its number reader takes a quoted
                 * "-N" (libxlu converts every atom with strtol). */
                if (secs > 0)
                        buf_printf(&b->out, "rtc_timeoffset = %" PRId64 "\n", secs);
                else if (secs < 0)
                        buf_printf(&b->out, "rtc_timeoffset = \"%" PRId64 "\"\n", secs);
                break;
        }
        default:
                refuse(b, c->line, "<clock offset='%s'> is not supported by the Xen driver",
                       domain_clock_offset_to_string(c->offset));
        }
        for (size_t i = 0; i < c->n_timers; i++) {
                const struct domain_timer *t = &c->timers[i];
                if (t->name == DOMAIN_TIMER_HPET && b->hvm && !t->tickpolicy && !t->track) {
                        if (t->present != DOMAIN_TRI_UNSET)
                                put_bool(b, "hpet", t->present == DOMAIN_TRI_YES);
                        continue;
                }
                refuse(b, t->line,
                       "<timer name='%s'> is not supported by the Xen driver (only "
                       "<timer name='hpet' present=> on HVM)",
                       domain_timer_name_to_string(t->name));
        }
}

static void build_lifecycle(struct builder *b) {
        const struct domain_def *def = b->def;
        /* Always written: the file says what happens, whatever xl's defaults become. */
        put_str(b, def->on_poweroff_line, "on_poweroff", "<on_poweroff>",
                domain_lifecycle_to_string(domain_def_on_poweroff(def)));
        put_str(b, def->on_reboot_line, "on_reboot", "<on_reboot>",
                domain_lifecycle_to_string(domain_def_on_reboot(def)));
        put_str(b, def->on_crash_line, "on_crash", "<on_crash>",
                domain_lifecycle_to_string(domain_def_on_crash(def)));
        if (def->emulator)
                put_str(b, def->line, "device_model_override", "<emulator>", def->emulator);
}

/* ---- disks ------------------------------------------------------------------------------ */

/* xl's virtual device names (xl-disk-configuration(5)): xvdX, hdX, sdX, with an optional
 * partition number. Returns the prefix length, 0 when it is none of them. */
static size_t vdev_prefix(const char *dev) {
        size_t p = strncmp(dev, "xvd", 3) == 0                                ? 3
                   : strncmp(dev, "hd", 2) == 0 || strncmp(dev, "sd", 2) == 0 ? 2
                                                                              : 0;
        if (!p)
                return 0;
        const char *s = dev + p;
        if (*s < 'a' || *s > 'z')
                return 0;
        while (*s >= 'a' && *s <= 'z')
                s++;
        while (*s >= '0' && *s <= '9')
                s++;
        return *s ? 0 : p;
}

static const char *disk_backend(struct builder *b, const struct domain_disk *d) {
        const char *n = d->driver.name;
        if (!n || streq(n, "file"))
                return NULL; /* xl picks: a block device or loop for raw, qdisk otherwise */
        if (streq(n, "phy"))
                return "phy";
        if (streq(n, "qdisk") || streq(n, "qemu"))
                return "qdisk";
        if (streq(n, "tap") || streq(n, "tap2"))
                return "tap";
        refuse(b, d->line,
               "<driver name='%s'> is not supported by the Xen driver (phy, qdisk, tap, file)", n);
        return NULL;
}

static void build_disk(struct builder *b, size_t i, struct list *l) {
        const struct domain_disk *d = &b->def->disks[i];
        const struct xen_cfg_ctx *ctx = b->ctx;
        enum domain_disk_device dev = domain_disk_device(d);
        int r0 = b->r;
        _cleanup_(buf_freep) struct buf spec = BUF_INIT;

        if (dev == DOMAIN_DISK_FLOPPY) {
                refuse(b, d->line, "disk device 'floppy' is not supported by the Xen driver");
                return;
        }
        size_t p = vdev_prefix(d->target_dev);
        if (!p) {
                refuse(b, d->target_line,
                       "disk target dev '%s' is not a Xen virtual device name (xvdX, hdX, sdX)",
                       d->target_dev);
                return;
        }
        static const struct {
                enum domain_disk_bus bus;
                const char *prefix;
        } buses[] = {
                {DOMAIN_DISK_BUS_XEN, "xvd"},
                {DOMAIN_DISK_BUS_IDE, "hd"},
                {DOMAIN_DISK_BUS_SCSI, "sd"},
        };
        if (d->target_bus) {
                const char *want = NULL;
                for (size_t k = 0; k < ELEMENTSOF(buses); k++)
                        if (buses[k].bus == d->target_bus)
                                want = buses[k].prefix;
                if (!want)
                        refuse(b, d->target_line,
                               "disk bus '%s' is not supported by the Xen driver (xen, ide, scsi)",
                               domain_disk_bus_to_string(d->target_bus));
                else if (strncmp(d->target_dev, want, strlen(want)) != 0 || strlen(want) != p)
                        invalid(b, d->target_line, "disk '%s': bus '%s' needs a target dev %sX",
                                d->target_dev, domain_disk_bus_to_string(d->target_bus), want);
        }
        /* HVM: hdX are the emulated IDE disks (two channels of two), a cdrom must be one. */
        if (b->hvm && p == 2 && d->target_dev[0] == 'h' &&
            (strlen(d->target_dev) != 3 || d->target_dev[2] > 'd'))
                refuse(b, d->target_line,
                       "disk '%s': an emulated IDE disk of a Xen HVM domain is hda..hdd",
                       d->target_dev);
        if (b->hvm && dev == DOMAIN_DISK_CDROM && d->target_dev[0] != 'h')
                refuse(b, d->target_line,
                       "disk '%s': a cdrom of a Xen HVM domain is an emulated IDE device "
                       "(hda..hdd)",
                       d->target_dev);
        if (d->serial)
                refuse(b, d->line, "<serial> of a disk is not supported by the Xen driver");
        if (d->boot_order)
                refuse(b, d->boot_line,
                       "<boot order> is not supported by the Xen driver (xl orders boot by "
                       "device class: write <os><boot dev=...>)");
        if (d->driver.cache && d->driver.cache != DOMAIN_DISK_CACHE_DEFAULT)
                refuse(b, d->line, "<driver cache='%s'> is not supported by the Xen driver",
                       domain_disk_cache_to_string(d->driver.cache));
        if (d->driver.io && d->driver.io != DOMAIN_DISK_IO_DEFAULT)
                refuse(b, d->line, "<driver io='%s'> is not supported by the Xen driver",
                       domain_disk_io_to_string(d->driver.io));
        bool ro = d->readonly || dev == DOMAIN_DISK_CDROM;
        if (d->shareable && !ro)
                refuse(b, d->line,
                       "a writable <shareable/> disk is not supported by the Xen driver (xl has "
                       "no shared write access)");
        const char *backend = disk_backend(b, d);
        /* qcow2 needs QEMU's block layer: the qdisk backend, which xl picks when not told. */
        if (d->driver.format == DOMAIN_DISK_FORMAT_QCOW2 && backend && !streq(backend, "qdisk"))
                refuse(b, d->line,
                       "disk '%s': format qcow2 needs <driver name='qdisk'> (backend '%s' reads "
                       "raw images only)",
                       d->target_dev, backend);

        /* The path: what the engine resolved, else the source as written. */
        const char *path = ctx && ctx->disk_paths ? ctx->disk_paths[i] : NULL;
        _cleanup_free_ char *placeholder = NULL;
        if (!path && d->has_source) {
                switch (domain_disk_type(d)) {
                case DOMAIN_DISK_FILE:
                        path = d->source.file;
                        break;
                case DOMAIN_DISK_BLOCK:
                        path = d->source.dev;
                        break;
                case DOMAIN_DISK_VOLUME:
                        if (b->placeholders) {
                                if (asprintf(&placeholder, "<path of volume %s/%s>", d->source.pool,
                                             d->source.volume) < 0)
                                        fail_errno(b, -ENOMEM);
                                path = placeholder;
                        } else
                                invalid(b, d->line,
                                        "disk '%s': no path for its volume '%s' in pool '%s'",
                                        d->target_dev, d->source.volume, d->source.pool);
                        break;
                default:
                        break;
                }
        }
        if (path && !placeholder) {
                if (path[0] != '/')
                        invalid(b, d->source_line, "disk '%s': source path '%s' is not absolute",
                                d->target_dev, path);
                else {
                        char what[96];
                        snprintf(what, sizeof(what), "the path of disk '%s'", d->target_dev);
                        (void)value_ok(b, d->source_line, what, path, false);
                }
        }
        if (b->r != r0 && b->r < 0)
                return;

        /* target= goes last: it takes the rest of the spec, commas included. */
        if (path && d->driver.format)
                spec_put(&spec, "format", domain_disk_format_to_string(d->driver.format));
        spec_put(&spec, "vdev", d->target_dev);
        spec_put(&spec, "access", ro ? "ro" : "rw");
        if (dev == DOMAIN_DISK_CDROM)
                spec_put(&spec, "devtype", "cdrom");
        if (backend)
                spec_put(&spec, "backendtype", backend);
        if (d->driver.discard == DOMAIN_DISK_DISCARD_UNMAP)
                spec_flag(&spec, "discard");
        else if (d->driver.discard == DOMAIN_DISK_DISCARD_IGNORE)
                spec_flag(&spec, "no-discard");
        /* An empty target is a cdrom without a medium. */
        spec_put(&spec, "target", path ? path : "");
        list_add_spec(b, l, &spec);
}

static void build_disks(struct builder *b) {
        struct list l = {BUF_INIT, 0};
        for (size_t i = 0; i < b->def->n_disks; i++)
                build_disk(b, i, &l);
        list_put(b, "disk", &l);
        for (size_t i = 0; i < b->def->n_filesystems; i++)
                refuse(b, b->def->filesystems[i].line,
                       "<filesystem> is not supported by the Xen driver");
}

/* ---- interfaces -------------------------------------------------------------------------- */

static bool ifname_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= 16)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
                        return false;
        return true;
}

static void build_interface(struct builder *b, size_t i, struct list *l) {
        const struct domain_net *n = &b->def->interfaces[i];
        const struct xen_cfg_ctx *ctx = b->ctx;
        int r0 = b->r;
        _cleanup_(buf_freep) struct buf spec = BUF_INIT;
        _cleanup_free_ char *placeholder = NULL;

        const char *bridge = ctx && ctx->bridges && ctx->bridges[i] && ctx->bridges[i][0]
                                     ? ctx->bridges[i]
                                     : NULL;
        switch (n->type) {
        case DOMAIN_NET_NETWORK:
                if (!bridge) {
                        if (b->placeholders) {
                                if (asprintf(&placeholder, "<bridge of network %s>",
                                             n->source_network) < 0)
                                        fail_errno(b, -ENOMEM);
                                bridge = placeholder;
                        } else
                                invalid(b, n->line, "interface %zu: no bridge for its network '%s'",
                                        i, n->source_network);
                }
                break;
        case DOMAIN_NET_BRIDGE:
                if (!bridge)
                        bridge = n->source_bridge;
                break;
        default:
                refuse(b, n->line,
                       "interface type '%s' is not supported by the Xen driver (network or "
                       "bridge)",
                       domain_net_type_to_string(n->type));
                return;
        }
        if (bridge && !placeholder) {
                char what[64];
                snprintf(what, sizeof(what), "the bridge of interface %zu", i);
                (void)value_ok(b, n->line, what, bridge, true);
        }

        const char *mac = ctx && ctx->macs && ctx->macs[i] ? ctx->macs[i] : n->mac;
        if (mac && !mac_is_full_form(mac))
                invalid(b, n->line, "interface %zu: invalid MAC address '%s'", i, mac);

        /* HVM guests get an emulated NIC (and its PV twin); 'netfront' asks for the PV one
         * alone. PV and PVH guests only have netfront. */
        const char *model = NULL, *vif_type = NULL;
        if (n->model) {
                if (streq(n->model, "netfront"))
                        vif_type = b->hvm ? "vif" : NULL;
                else if (b->hvm && (streq(n->model, "e1000") || streq(n->model, "rtl8139")))
                        model = n->model;
                else
                        refuse(b, n->line,
                               "interface model '%s' is not supported by the Xen driver for %s "
                               "domains (%s)",
                               n->model,
                               b->hvm   ? "HVM"
                               : b->pvh ? "PVH"
                                        : "PV",
                               b->hvm ? "e1000, rtl8139, netfront" : "netfront");
        }
        if (n->target_dev && !ifname_ok(n->target_dev))
                invalid(b, n->target_line,
                        "interface target dev '%s' is not a valid interface name (at most 15 "
                        "letters, digits, '-', '_', '.')",
                        n->target_dev);
        if (n->boot_order)
                refuse(b, n->boot_line,
                       "<boot order> is not supported by the Xen driver (xl orders boot by "
                       "device class: write <os><boot dev='network'>)");
        if (b->r != r0 && b->r < 0)
                return;

        if (mac)
                spec_put(&spec, "mac", mac);
        if (bridge)
                spec_put(&spec, "bridge", bridge);
        if (model)
                spec_put(&spec, "model", model);
        if (vif_type)
                spec_put(&spec, "type", vif_type);
        if (n->target_dev)
                spec_put(&spec, "vifname", n->target_dev);
        list_add_spec(b, l, &spec);
}

static void build_interfaces(struct builder *b) {
        struct list l = {BUF_INIT, 0};
        for (size_t i = 0; i < b->def->n_interfaces; i++)
                build_interface(b, i, &l);
        list_put(b, "vif", &l);
}

/* ---- graphics, video, input -------------------------------------------------------------- */

static void build_graphics(struct builder *b) {
        const struct domain_def *def = b->def;
        if (def->n_graphics == 0)
                return;
        const struct domain_graphics *g = &def->graphics[0];
        int r0 = b->r;
        if (b->pvh) {
                refuse(b, g->line,
                       "<graphics> is not supported by the Xen driver for PVH domains (they "
                       "have no framebuffer)");
                return;
        }
        if (g->listen_type == DOMAIN_LISTEN_SOCKET || g->socket)
                refuse(b, g->line,
                       "<graphics> listening on a socket is not supported by the Xen driver "
                       "(xl's VNC server listens on an address)");
        if (g->listen_type == DOMAIN_LISTEN_NONE)
                refuse(b, g->line,
                       "<listen type='none'> is not supported by the Xen driver (xl's VNC "
                       "server listens on an address)");
        if (g->has_websocket)
                refuse(b, g->line, "<graphics websocket=> is not supported by the Xen driver");
        bool autoport = g->autoport == DOMAIN_TRI_YES || !g->has_port || g->port == -1;
        if (!autoport && g->port < 5900)
                invalid(b, g->line,
                        "<graphics port='%d'>: xl sets VNC displays, ports from 5900 on", g->port);
        const char *listen = g->listen                              ? g->listen
                             : b->ctx && b->ctx->vnc_listen_default ? b->ctx->vnc_listen_default
                                                                    : "127.0.0.1";
        /* PV framebuffer settings are one vfb spec: commas would split them. */
        (void)value_ok(b, g->line, "<graphics> listen address", listen, b->pv);
        if (g->passwd)
                (void)value_ok(b, g->line, "<graphics passwd=>", g->passwd, b->pv);
        if (g->keymap)
                (void)value_ok(b, g->line, "<graphics keymap=>", g->keymap, b->pv);
        if (b->r != r0 && b->r < 0)
                return;

        char display[16];
        snprintf(display, sizeof(display), "%d", autoport ? 0 : g->port - 5900);
        if (b->hvm) {
                put_bool(b, "vnc", true);
                put_str(b, g->line, "vnclisten", "<graphics> listen address", listen);
                if (autoport)
                        put_bool(b, "vncunused", true);
                else
                        buf_printf(&b->out, "vncdisplay = %s\n", display);
                if (g->passwd)
                        put_str(b, g->line, "vncpasswd", "<graphics passwd=>", g->passwd);
                if (g->keymap)
                        put_str(b, g->line, "keymap", "<graphics keymap=>", g->keymap);
                put_bool(b, "sdl", false);
                return;
        }
        _cleanup_(buf_freep) struct buf spec = BUF_INIT;
        struct list l = {BUF_INIT, 0};
        spec_put(&spec, "vnc", "1");
        spec_put(&spec, "vnclisten", listen);
        if (autoport)
                spec_put(&spec, "vncunused", "1");
        else
                spec_put(&spec, "vncdisplay", display);
        if (g->passwd)
                spec_put(&spec, "vncpasswd", g->passwd);
        if (g->keymap)
                spec_put(&spec, "keymap", g->keymap);
        spec_put(&spec, "sdl", "0");
        list_add_spec(b, &l, &spec);
        list_put(b, "vfb", &l);
}

static void build_video(struct builder *b) {
        const struct domain_def *def = b->def;
        if (def->n_videos > 1)
                refuse(b, def->videos[1].line,
                       "more than one <video> is not supported by the Xen driver");
        if (def->n_videos == 0)
                return;
        const struct domain_video *v = &def->videos[0];
        const char *vga = NULL;
        if (b->hvm) {
                switch (v->model) {
                case DOMAIN_VIDEO_VGA:
                        vga = "stdvga";
                        break;
                case DOMAIN_VIDEO_CIRRUS:
                        vga = "cirrus";
                        break;
                case DOMAIN_VIDEO_QXL:
                        vga = "qxl";
                        break;
                case DOMAIN_VIDEO_NONE:
                        vga = "none";
                        break;
                default:
                        break;
                }
                if (vga) {
                        put_str(b, v->line, "vga", "<video>", vga);
                        return;
                }
        } else if (v->model == DOMAIN_VIDEO_NONE ||
                   (b->pv && v->model == DOMAIN_VIDEO_XEN && def->n_graphics)) {
                return; /* the PV framebuffer comes with <graphics> */
        }
        refuse(b, v->line,
               "video model '%s' is not supported by the Xen driver for %s domains (%s)",
               domain_video_model_to_string(v->model),
               b->hvm   ? "HVM"
               : b->pvh ? "PVH"
                        : "PV",
               b->hvm  ? "vga, cirrus, qxl, none"
               : b->pv ? "xen with a <graphics>, none"
                       : "none");
}

static void build_inputs(struct builder *b) {
        const struct domain_def *def = b->def;
        struct list l = {BUF_INIT, 0};
        for (size_t i = 0; i < def->n_inputs; i++) {
                const struct domain_input *in = &def->inputs[i];
                const char *type = domain_input_type_to_string(in->type);
                enum domain_input_bus bus = in->bus;
                if (b->hvm) {
                        /* libvirt's defaults: a tablet is USB, a mouse or keyboard PS/2. */
                        if (!bus)
                                bus = in->type == DOMAIN_INPUT_TABLET ? DOMAIN_INPUT_BUS_USB
                                                                      : DOMAIN_INPUT_BUS_PS2;
                        if (bus == DOMAIN_INPUT_BUS_PS2 && in->type != DOMAIN_INPUT_TABLET)
                                continue; /* the emulated PC's own PS/2 devices */
                        if (bus == DOMAIN_INPUT_BUS_USB &&
                            (in->type == DOMAIN_INPUT_TABLET || in->type == DOMAIN_INPUT_MOUSE)) {
                                list_add(&l, type, '"');
                                continue;
                        }
                } else if (b->pv && (!bus || bus == DOMAIN_INPUT_BUS_XEN) &&
                           in->type != DOMAIN_INPUT_TABLET) {
                        /* The PV keyboard and mouse come with the framebuffer (libvirt writes
                         * them for every PV domain with one); without a <graphics> there is
                         * nothing for them to drive, and nothing is written. */
                        continue;
                }
                refuse(b, in->line,
                       "input %s on bus '%s' is not supported by the Xen driver for %s domains "
                       "(%s)",
                       type, domain_input_bus_to_string(bus ? bus : DOMAIN_INPUT_BUS_XEN),
                       b->hvm   ? "HVM"
                       : b->pvh ? "PVH"
                                : "PV",
                       b->hvm  ? "usb tablet or mouse, ps2 mouse or keyboard"
                       : b->pv ? "xen mouse or keyboard"
                               : "none");
        }
        if (l.n)
                put_bool(b, "usb", true);
        list_put(b, "usbdevice", &l);
}

/* ---- serial and console ------------------------------------------------------------------ */

static void build_chr(struct builder *b) {
        const struct domain_def *def = b->def;
        struct list l = {BUF_INIT, 0};
        for (size_t k = 0; k < 2; k++) {
                const struct domain_chr *list = k == 0 ? def->serials : def->consoles;
                size_t n = k == 0 ? def->n_serials : def->n_consoles;
                const char *el = k == 0 ? "serial" : "console";
                for (size_t i = 0; i < n; i++) {
                        const struct domain_chr *c = &list[i];
                        enum domain_chr_type t = domain_chr_type(c);
                        const char *tt = c->target_type;
                        if (!b->hvm) {
                                /* A PV or PVH guest has one console, xenconsoled's pty. */
                                if (t == DOMAIN_CHR_PTY &&
                                    (!tt || streq(tt, "xen") || streq(tt, "serial")))
                                        continue;
                                refuse(b, c->line,
                                       "<%s type='%s'>%s%s%s is not supported by the Xen driver "
                                       "for %s domains (their console is xenconsoled's pty)",
                                       el, domain_chr_type_to_string(t),
                                       tt ? " with target type '" : "", tt ? tt : "", tt ? "'" : "",
                                       b->pvh ? "PVH" : "PV");
                                continue;
                        }
                        if (k == 1) {
                                /* HVM: the xen console is the PV one, always there; a serial
                                 * console is the first serial port (libvirt's rule). */
                                if (tt && streq(tt, "xen") && t == DOMAIN_CHR_PTY)
                                        continue;
                                if ((!tt || streq(tt, "serial")) && def->n_serials)
                                        continue;
                                if (tt && !streq(tt, "serial") && !streq(tt, "xen")) {
                                        refuse(b, c->line,
                                               "console target type '%s' is not supported by "
                                               "the Xen driver (serial, xen)",
                                               tt);
                                        continue;
                                }
                        } else if (tt && !streq(tt, "isa-serial")) {
                                refuse(b, c->line,
                                       "serial target type '%s' is not supported by the Xen "
                                       "driver (isa-serial)",
                                       tt);
                                continue;
                        }
                        if (t == DOMAIN_CHR_PTY)
                                list_add(&l, "pty", '"');
                        else if (t == DOMAIN_CHR_NULL)
                                list_add(&l, "null", '"');
                        else if (t == DOMAIN_CHR_FILE &&
                                 value_ok(b, c->line, "<source path=> of a file <serial>",
                                          c->source_path, false)) {
                                _cleanup_free_ char *s = NULL;
                                if (asprintf(&s, "file:%s", c->source_path) < 0)
                                        fail_errno(b, -ENOMEM);
                                else
                                        list_add(&l, s, '"');
                        } else if (t != DOMAIN_CHR_FILE)
                                refuse(b, c->line,
                                       "<%s type='%s'> is not supported by the Xen driver (pty, "
                                       "file, null)",
                                       el, domain_chr_type_to_string(t));
                }
        }
        list_put(b, "serial", &l);
}

/* <memtune>, <cputune> and <blkiotune> are applied through a cgroup, which xl does not
 * give a guest: refused rather than dropped. */
static void build_tune(struct builder *b) {
        const struct domain_tune *t = &b->def->tune;
        const struct {
                bool has;
                int line;
                const char *name;
        } e[] = {{t->has_memtune, t->memtune_line, "memtune"},
                 {t->has_cputune, t->cputune_line, "cputune"},
                 {t->has_blkiotune, t->blkiotune_line, "blkiotune"}};
        for (size_t i = 0; i < ELEMENTSOF(e); i++)
                if (e[i].has)
                        refuse(b, e[i].line,
                               "<%s> is not applied by the Xen driver (xl gives a guest no "
                               "cgroup)",
                               e[i].name);
}

/* ---- the whole file ------------------------------------------------------------------------ */

static int build(const struct domain_def *def, const struct xen_cfg_ctx *ctx, bool placeholders,
                 char **ret, struct dv_error *err) {
        if (def->type != DOMAIN_TYPE_XEN)
                return dv_error_add(err, -EOPNOTSUPP, def->line,
                                    "domain type '%s' is not run by the Xen driver",
                                    domain_type_to_string(def->type));
        if (!def->name || !def->has_os)
                return dv_error_add(err, -EINVAL, def->line,
                                    "a domain needs a <name> and an <os> (not validated?)");
        struct builder b = {.def = def, .ctx = ctx, .err = err, .placeholders = placeholders};
        switch (def->os.type) {
        case DOMAIN_OS_HVM:
                b.hvm = true;
                break;
        case DOMAIN_OS_XEN:
        case DOMAIN_OS_LINUX:
                b.pv = true;
                /* The model refuses it too; repeated so the converter never writes a file
                 * xl would reject for want of a kernel. */
                if (!def->os.kernel && !def->has_bootloader)
                        return dv_error_add(err, -EINVAL, def->os.line,
                                            "a Xen PV domain needs a <kernel> in <os> or a "
                                            "<bootloader>");
                break;
        case DOMAIN_OS_XENPVH:
                b.pvh = true;
                break;
        default:
                return dv_error_add(err, -EOPNOTSUPP, def->os.type_line,
                                    "os type '%s' is not supported by the Xen driver (hvm, xen, "
                                    "linux, xenpvh)",
                                    domain_os_type_to_string(def->os.type));
        }

        buf_puts(&b.out, "# xl.cfg(5) written by declvirt from the domain's definition: "
                         "edits are overwritten\n");
        build_general(&b);
        build_boot(&b);
        build_features(&b);
        build_clock(&b);
        build_lifecycle(&b);
        build_disks(&b);
        build_interfaces(&b);
        build_graphics(&b);
        build_video(&b);
        build_inputs(&b);
        build_chr(&b);
        build_tune(&b);

        if (b.r >= 0 && b.out.oom)
                b.r = -ENOMEM;
        if (b.r < 0) {
                buf_free(&b.out);
                return b.r;
        }
        *ret = buf_steal(&b.out);
        return *ret ? 0 : -ENOMEM;
}

int xen_cfg_build(const struct domain_def *def, const struct xen_cfg_ctx *ctx, char **ret,
                  struct dv_error *err) {
        return build(def, ctx, false, ret, err);
}

int xen_cfg_check(const struct domain_def *def, struct dv_error *err) {
        _cleanup_free_ char *s = NULL;
        return build(def, NULL, true, &s, err);
}

int xen_cfg_native(const struct domain_def *def, const struct xen_cfg_ctx *ctx, FILE *f,
                   struct dv_error *err) {
        _cleanup_free_ char *s = NULL;
        int r = build(def, ctx, true, &s, err);
        if (r < 0)
                return r;
        if (fputs(s, f) < 0)
                return -EIO;
        return 0;
}
