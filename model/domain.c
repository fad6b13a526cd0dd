/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing <domain> into struct domain_def: what declvirt understands is kept, what
 * libvirt adds for its own bookkeeping is ignored with a warning, the rest is refused. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "model/domain.h"
#include "model/xml.h"
#include "util/mac.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/uuid.h"

DV_ENUM_IMPL(domain_type, _DOMAIN_TYPE_MAX, "kvm", "qemu", "lxc", "xen");
DV_ENUM_IMPL(domain_os_type, _DOMAIN_OS_TYPE_MAX, NULL, "hvm", "xen", "linux", "xenpvh", "exe");
DV_ENUM_IMPL(domain_firmware, _DOMAIN_FIRMWARE_MAX, NULL, "bios", "efi");
DV_ENUM_IMPL(domain_loader_type, _DOMAIN_LOADER_TYPE_MAX, NULL, "rom", "pflash");
DV_ENUM_IMPL(domain_boot_dev, _DOMAIN_BOOT_DEV_MAX, NULL, "hd", "cdrom", "fd", "network");
DV_ENUM_IMPL(domain_lifecycle, _DOMAIN_LIFECYCLE_MAX, NULL, "destroy", "restart", "preserve",
             "rename-restart", "coredump-destroy", "coredump-restart");
DV_ENUM_IMPL(domain_placement, _DOMAIN_PLACEMENT_MAX, NULL, "static", "auto");
DV_ENUM_IMPL(domain_feature, _DOMAIN_FEATURE_MAX, "acpi", "apic", "pae", "hap", "viridian",
             "privnet", "pvspinlock", "pmu", "vmport", "smm", "vmcoreinfo", "htm", "nested-hv",
             "ccf-assist");
DV_ENUM_IMPL(domain_cpu_mode, _DOMAIN_CPU_MODE_MAX, NULL, "custom", "host-model",
             "host-passthrough", "maximum");
DV_ENUM_IMPL(domain_cpu_match, _DOMAIN_CPU_MATCH_MAX, NULL, "minimum", "exact", "strict");
DV_ENUM_IMPL(domain_cpu_check, _DOMAIN_CPU_CHECK_MAX, NULL, "none", "partial", "full");
DV_ENUM_IMPL(domain_cpu_fallback, _DOMAIN_CPU_FALLBACK_MAX, NULL, "allow", "forbid");
DV_ENUM_IMPL(domain_cpu_policy, _DOMAIN_CPU_POLICY_MAX, NULL, "force", "require", "optional",
             "disable", "forbid");
DV_ENUM_IMPL(domain_clock_offset, _DOMAIN_CLOCK_OFFSET_MAX, NULL, "utc", "localtime", "timezone",
             "variable", "absolute");
DV_ENUM_IMPL(domain_clock_basis, _DOMAIN_CLOCK_BASIS_MAX, NULL, "utc", "localtime");
DV_ENUM_IMPL(domain_timer_name, _DOMAIN_TIMER_NAME_MAX, NULL, "platform", "rtc", "tsc", "hpet",
             "pit", "armvtimer", "kvmclock", "hypervclock");
DV_ENUM_IMPL(domain_tickpolicy, _DOMAIN_TICKPOLICY_MAX, NULL, "delay", "catchup", "merge",
             "discard");
DV_ENUM_IMPL(domain_timer_track, _DOMAIN_TIMER_TRACK_MAX, NULL, "boot", "guest", "wall",
             "realtime");
DV_ENUM_IMPL(domain_disk_type, _DOMAIN_DISK_TYPE_MAX, NULL, "file", "block", "volume");
DV_ENUM_IMPL(domain_disk_device, _DOMAIN_DISK_DEVICE_MAX, NULL, "disk", "cdrom", "floppy");
DV_ENUM_IMPL(domain_disk_bus, _DOMAIN_DISK_BUS_MAX, NULL, "virtio", "sata", "ide", "scsi", "xen",
             "usb", "fdc");
DV_ENUM_IMPL(domain_disk_format, _DOMAIN_DISK_FORMAT_MAX, NULL, "raw", "qcow2");
DV_ENUM_IMPL(domain_disk_cache, _DOMAIN_DISK_CACHE_MAX, NULL, "default", "none", "writethrough",
             "writeback", "directsync", "unsafe");
DV_ENUM_IMPL(domain_disk_io, _DOMAIN_DISK_IO_MAX, NULL, "default", "native", "threads", "io_uring");
DV_ENUM_IMPL(domain_disk_discard, _DOMAIN_DISK_DISCARD_MAX, NULL, "unmap", "ignore");
DV_ENUM_IMPL(domain_fs_type, _DOMAIN_FS_TYPE_MAX, NULL, "mount", "block", "file", "template");
DV_ENUM_IMPL(domain_fs_access, _DOMAIN_FS_ACCESS_MAX, NULL, "passthrough", "mapped", "squash");
DV_ENUM_IMPL(domain_fs_driver, _DOMAIN_FS_DRIVER_MAX, NULL, "path", "handle", "loop", "nbd",
             "ploop", "virtiofs");
DV_ENUM_IMPL(domain_net_type, _DOMAIN_NET_TYPE_MAX, NULL, "network", "bridge", "ethernet");
DV_ENUM_IMPL(domain_chr_type, _DOMAIN_CHR_TYPE_MAX, NULL, "pty", "file", "null", "stdio");
DV_ENUM_IMPL(domain_graphics_type, _DOMAIN_GRAPHICS_TYPE_MAX, "vnc");
DV_ENUM_IMPL(domain_listen_type, _DOMAIN_LISTEN_TYPE_MAX, NULL, "address", "socket", "none");
DV_ENUM_IMPL(domain_video_model, _DOMAIN_VIDEO_MODEL_MAX, NULL, "vga", "cirrus", "vmvga", "xen",
             "qxl", "virtio", "bochs", "ramfb", "none");
DV_ENUM_IMPL(domain_input_type, _DOMAIN_INPUT_TYPE_MAX, NULL, "mouse", "tablet", "keyboard");
DV_ENUM_IMPL(domain_input_bus, _DOMAIN_INPUT_BUS_MAX, NULL, "ps2", "usb", "virtio", "xen");
DV_ENUM_IMPL(domain_ioapic, _DOMAIN_IOAPIC_MAX, NULL, "kvm", "qemu");
DV_ENUM_IMPL(domain_controller_type, _DOMAIN_CONTROLLER_TYPE_MAX, NULL, "ide", "fdc", "scsi",
             "sata", "virtio-serial", "usb", "pci", "ccid", "xenbus", "isa");

/* A limit on every list a file controls, so that a hostile file cannot make
 * validation (which compares devices pairwise) expensive. */
#define DOMAIN_MAX_ITEMS 1024

/* ---- freeing ------------------------------------------------------------------------ */

static void os_done(struct domain_os *os) {
        free(os->arch);
        free(os->machine);
        free(os->loader.path);
        free(os->nvram.path);
        free(os->nvram.template_path);
        free(os->kernel);
        free(os->initrd);
        free(os->cmdline);
        free(os->init);
        strv_free(os->initargs);
        for (size_t i = 0; i < os->n_initenv; i++) {
                free(os->initenv[i].name);
                free(os->initenv[i].value);
        }
        free(os->initenv);
        free(os->initdir);
        free(os->inituser);
        free(os->initgroup);
}

static void cpu_done(struct domain_cpu *cpu) {
        free(cpu->model);
        free(cpu->vendor);
        for (size_t i = 0; i < cpu->n_features; i++)
                free(cpu->features[i].name);
        free(cpu->features);
}

static void clock_done(struct domain_clock *c) {
        free(c->timezone);
        free(c->adjustment);
        free(c->timers);
}

static void disk_done(struct domain_disk *d) {
        free(d->driver.name);
        free(d->source.file);
        free(d->source.dev);
        free(d->source.pool);
        free(d->source.volume);
        free(d->target_dev);
        free(d->serial);
}

static void fs_done(struct domain_fs *fs) {
        free(fs->driver.format);
        free(fs->source);
        free(fs->target_dir);
}

static void net_done(struct domain_net *n) {
        free(n->mac);
        free(n->source_network);
        free(n->source_bridge);
        free(n->model);
        free(n->target_dev);
}

static void chr_done(struct domain_chr *c) {
        free(c->source_path);
        free(c->target_type);
}

static void graphics_done(struct domain_graphics *g) {
        free(g->listen);
        free(g->socket);
        free(g->keymap);
        free(g->passwd);
}

static void controller_done(struct domain_controller *c);
static void channel_done(struct domain_channel *c);
static void sound_done(struct domain_sound *s);
static void audio_done(struct domain_audio *a);
static void hub_done(struct domain_hub *h);
static void watchdog_done(struct domain_watchdog *w);
static void rng_done(struct domain_rng *g);
static void panic_done(struct domain_panic *p);

void domain_def_free(struct domain_def *def) {
        if (!def)
                return;
        free(def->name);
        free(def->uuid);
        free(def->title);
        free(def->description);
        free(def->vcpu_cpuset);
        free(def->bootloader);
        free(def->bootloader_args);
        os_done(&def->os);
        free(def->uid_map);
        free(def->gid_map);
        cpu_done(&def->cpu);
        clock_done(&def->clock);
        domain_tune_done(&def->tune);
        free(def->emulator);
        for (size_t i = 0; i < def->n_disks; i++)
                disk_done(&def->disks[i]);
        free(def->disks);
        for (size_t i = 0; i < def->n_filesystems; i++)
                fs_done(&def->filesystems[i]);
        free(def->filesystems);
        for (size_t i = 0; i < def->n_interfaces; i++)
                net_done(&def->interfaces[i]);
        free(def->interfaces);
        for (size_t i = 0; i < def->n_serials; i++)
                chr_done(&def->serials[i]);
        free(def->serials);
        for (size_t i = 0; i < def->n_consoles; i++)
                chr_done(&def->consoles[i]);
        free(def->consoles);
        free(def->inputs);
        for (size_t i = 0; i < def->n_graphics; i++)
                graphics_done(&def->graphics[i]);
        free(def->graphics);
        free(def->videos);
        for (size_t i = 0; i < def->n_controllers; i++)
                controller_done(&def->controllers[i]);
        free(def->controllers);
        for (size_t i = 0; i < def->n_channels; i++)
                channel_done(&def->channels[i]);
        free(def->channels);
        for (size_t i = 0; i < def->n_sounds; i++)
                sound_done(&def->sounds[i]);
        free(def->sounds);
        for (size_t i = 0; i < def->n_audios; i++)
                audio_done(&def->audios[i]);
        free(def->audios);
        for (size_t i = 0; i < def->n_hubs; i++)
                hub_done(&def->hubs[i]);
        free(def->hubs);
        for (size_t i = 0; i < def->n_watchdogs; i++)
                watchdog_done(&def->watchdogs[i]);
        free(def->watchdogs);
        for (size_t i = 0; i < def->n_rngs; i++)
                rng_done(&def->rngs[i]);
        free(def->rngs);
        for (size_t i = 0; i < def->n_panics; i++)
                panic_done(&def->panics[i]);
        free(def->panics);
        free(def->memballoon.model);
        free(def->vsock.model);
        free(def->iommu.model);
        free(def);
}

/* ---- accessors ---------------------------------------------------------------------- */

const char *domain_def_name(const struct domain_def *def) {
        return def ? def->name : NULL;
}
const char *domain_def_uuid(const struct domain_def *def) {
        return def ? def->uuid : NULL;
}
unsigned domain_def_vcpus(const struct domain_def *def) {
        return def->has_vcpu ? def->vcpu : 1;
}
unsigned domain_def_vcpus_current(const struct domain_def *def) {
        return def->vcpu_current ? def->vcpu_current : domain_def_vcpus(def);
}
uint64_t domain_def_current_memory_kib(const struct domain_def *def) {
        return def->has_current_memory ? def->current_memory_kib : def->memory_kib;
}
enum domain_lifecycle domain_def_on_poweroff(const struct domain_def *def) {
        return def->on_poweroff ? def->on_poweroff : DOMAIN_LIFECYCLE_DESTROY;
}
enum domain_lifecycle domain_def_on_reboot(const struct domain_def *def) {
        return def->on_reboot ? def->on_reboot : DOMAIN_LIFECYCLE_RESTART;
}
enum domain_lifecycle domain_def_on_crash(const struct domain_def *def) {
        return def->on_crash ? def->on_crash : DOMAIN_LIFECYCLE_DESTROY;
}
bool domain_def_has_feature(const struct domain_def *def, enum domain_feature f) {
        if ((int)f < 0 || f >= _DOMAIN_FEATURE_MAX)
                return false;
        return def->features[f] == DOMAIN_FEATURE_PRESENT || def->features[f] == DOMAIN_FEATURE_ON;
}
bool domain_def_is_xen_pv(const struct domain_def *def) {
        return def->os.type == DOMAIN_OS_XEN || def->os.type == DOMAIN_OS_LINUX ||
               def->os.type == DOMAIN_OS_XENPVH;
}
enum domain_disk_type domain_disk_type(const struct domain_disk *d) {
        return d->type ? d->type : DOMAIN_DISK_FILE;
}
enum domain_disk_device domain_disk_device(const struct domain_disk *d) {
        return d->device ? d->device : DOMAIN_DISK_DISK;
}
enum domain_fs_type domain_fs_type(const struct domain_fs *fs) {
        return fs->type ? fs->type : DOMAIN_FS_MOUNT;
}
enum domain_chr_type domain_chr_type(const struct domain_chr *c) {
        return c->type ? c->type : DOMAIN_CHR_PTY;
}

/* ---- parsing helpers ---------------------------------------------------------------- */

#define LINE(n) dv_xml_line(n)
#define NAME(n) ((const char *)(n)->name)
/* Element name for messages, with its prefix when it has one. */
#define ENAME(n)   DV_XML_QNAME(n)
#define ATTRS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* Keeps the first failure while parsing goes on, so that one run reports every problem. */
/* Attributes are allowed, ignored with a warning (libvirt's own bookkeeping), or refused. */
static int check_attrs(const xmlNode *n, const char *const *allowed, const char *const *ignored,
                       struct dv_error *err) {
        int r = 0;
        for (xmlAttr *a = n->properties; a; a = a->next) {
                if (a->ns) {
                        dv_error_warn(err, LINE(n), "attribute '%s:%s' on <%s> is ignored",
                                      strempty((const char *)a->ns->prefix), (const char *)a->name,
                                      ENAME(n));
                        continue;
                }
                if (dv_str_in(allowed, (const char *)a->name))
                        continue;
                if (dv_str_in(ignored, (const char *)a->name)) {
                        dv_error_warn(err, LINE(n), "attribute '%s' on <%s> is ignored",
                                      (const char *)a->name, NAME(n));
                        continue;
                }
                r = dv_error_add(err, -EINVAL, LINE(n), "unknown attribute '%s' on <%s>",
                                 (const char *)a->name, NAME(n));
        }
        return r;
}

static int unsupported_in(const xmlNode *c, const xmlNode *parent, struct dv_error *err) {
        return dv_error_add(err, -EINVAL, LINE(c), "element <%s> in <%s> is not supported",
                            ENAME(c), NAME(parent));
}

/* Elements that carry no children. */
static int check_leaf(const xmlNode *n, struct dv_error *err) {
        int r = 0;
        dv_xml_foreach_child(c, n) KEEP(r, unsupported_in(c, n, err));
        return r;
}

/* Elements libvirt writes for its own use (addresses, aliases, ...): skipped with a warning. */
static bool ignore_if_listed(const xmlNode *c, const char *const *list, struct dv_error *err) {
        if (!dv_xml_name_in(c, list))
                return false;
        dv_error_warn(err, LINE(c), "element <%s> is ignored", NAME(c));
        return true;
}

#define DEVICE_IGNORED ATTRS("alias", "address")

/* Elements that may appear once: a second one is an error rather than a silent override. */
static int check_once(const xmlNode *parent, const char *const *names, struct dv_error *err) {
        int r = 0;
        for (size_t i = 0; names[i]; i++) {
                const xmlNode *first = NULL;
                dv_xml_foreach_child(c, parent) {
                        if (!dv_xml_is(c, names[i]))
                                continue;
                        if (!first) {
                                first = c;
                                continue;
                        }
                        KEEP(r, dv_error_add(err, -EINVAL, LINE(c),
                                             "element <%s> appears more than once in <%s> (first "
                                             "on line %d)",
                                             names[i], NAME(parent), LINE(first)));
                        break;
                }
        }
        return r;
}

/* Stores a new value; a duplicate element (already reported) must not leak the first. */
static void replace_str(char **dst, char *src) {
        free(*dst);
        *dst = src;
}

/* Text of an element that takes neither attributes nor children. Whitespace around
 * the text is trimmed unless raw (command lines, arguments, descriptions). */
static int leaf_text(const xmlNode *n, bool raw, char **ret, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        KEEP(r, check_leaf(n, err));
        if (r < 0)
                return r;
        return raw ? dv_xml_text_raw(n, ret) : dv_xml_text(n, ret);
}

/* An element that must be empty: <readonly/>, <shareable/>. */
static int empty_elem(const xmlNode *n, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        KEEP(r, check_leaf(n, err));
        return r;
}

static int value_error(struct dv_error *err, const xmlNode *n, const char *attr, const char *v,
                       const char *why) {
        if (attr)
                return dv_error_add(err, -EINVAL, LINE(n), "<%s %s='%s'>: %s", NAME(n), attr, v,
                                    why);
        return dv_error_add(err, -EINVAL, LINE(n), "<%s> '%s': %s", NAME(n), v, why);
}

static bool has_control_chars(const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

/* Paths end up in argv, in xl.cfg and in storage_locations checks: absolute, no
 * control characters, no '..' component that could step out of an allowed place. */
static int check_path(const xmlNode *n, const char *attr, const char *v, struct dv_error *err) {
        if (v[0] != '/')
                return value_error(err, n, attr, v, "not an absolute path");
        if (has_control_chars(v))
                return value_error(err, n, attr, v, "the path contains a control character");
        for (const char *p = v; (p = strstr(p, "..")); p += 2)
                if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
                        return value_error(err, n, attr, v, "the path may not contain '..'");
        return 0;
}

static bool matches_charset(const char *s, const char *extra) {
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
                        return false;
        return true;
}

/* "'a', 'b' or 'c'" from an enum table (NULL entries are the UNSET values). */
static void enum_list(const char *(*to_string)(int), char *buf, size_t size) {
        const char *names[64];
        size_t k = 0, used = 0;
        for (int i = 0; i < 64; i++) {
                const char *s = to_string(i);
                if (s)
                        names[k++] = s;
        }
        buf[0] = '\0';
        for (size_t i = 0; i < k; i++) {
                int w = snprintf(buf + used, size - used, "%s'%s'",
                                 i == 0       ? ""
                                 : i + 1 == k ? " or "
                                              : ", ",
                                 names[i]);
                if (w < 0 || (size_t)w >= size - used)
                        break;
                used += (size_t)w;
        }
}

/* Reads an enumerated attribute. what != NULL: an unknown value is "WHAT 'v' is not
 * supported" (types), else the message lists the accepted values. Returns 1 when set. */
static int prop_enum_impl(const xmlNode *n, const char *attr, const char *what,
                          int (*from_string)(const char *), const char *(*to_string)(int), int *ret,
                          struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, attr, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        int x = from_string(v);
        if (x < 0) {
                if (what)
                        return dv_error_add(err, -EINVAL, LINE(n), "%s '%s' is not supported", what,
                                            v);
                char list[512];
                enum_list(to_string, list, sizeof(list));
                return dv_error_add(err, -EINVAL, LINE(n), "<%s %s='%s'>: expected %s", NAME(n),
                                    attr, v, list);
        }
        *ret = x;
        return 1;
}
#define prop_enum(n, attr, what, ename, field, err)                               \
        ({                                                                        \
                int _v = 0;                                                       \
                int _r = prop_enum_impl((n), (attr), (what), ename##_from_string, \
                                        ename##_to_string, &_v, (err));           \
                if (_r > 0)                                                       \
                        (field) = _v;                                             \
                _r;                                                               \
        })

static int prop_tristate(const xmlNode *n, const char *attr, enum domain_tristate *ret,
                         struct dv_error *err) {
        int v = -1;
        int r = dv_xml_prop_yes_no(n, attr, &v, err);
        if (r > 0)
                *ret = v ? DOMAIN_TRI_YES : DOMAIN_TRI_NO;
        return r;
}

/* An attribute with a path value (checked); returns 1 when present. */
static int prop_path(const xmlNode *n, const char *attr, char **ret, struct dv_error *err) {
        int r = dv_xml_prop(n, attr, ret);
        if (r <= 0)
                return r;
        r = check_path(n, attr, *ret, err);
        return r < 0 ? r : 1;
}

static int prop_uint(const xmlNode *n, const char *attr, uint64_t min, uint64_t max, unsigned *ret,
                     struct dv_error *err) {
        uint64_t v;
        int r = dv_xml_prop_u64(n, attr, min, max, &v, err);
        if (r > 0)
                *ret = (unsigned)v;
        return r;
}

/* Grows an array by one zeroed element; the cap keeps hostile files cheap. */
static void *grow(void *arrayp, size_t *n, size_t size, const xmlNode *c, struct dv_error *err,
                  int *r) {
        void **a = arrayp;
        if (*n >= DOMAIN_MAX_ITEMS) {
                *r = dv_error_add(err, -E2BIG, LINE(c), "more than %d <%s> elements",
                                  DOMAIN_MAX_ITEMS, NAME(c));
                return NULL;
        }
        void *p = realloc(*a, (*n + 1) * size);
        if (!p) {
                *r = -ENOMEM;
                return NULL;
        }
        *a = p;
        void *item = (char *)p + *n * size;
        memset(item, 0, size);
        (*n)++;
        return item;
}

static int parse_boot_order(const xmlNode *n, unsigned *order, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("order"), NULL, err);
        KEEP(r, check_leaf(n, err));
        uint64_t v;
        KEEP(r, dv_xml_prop_u64_required(n, "order", 1, INT_MAX, &v, err));
        if (r >= 0)
                *order = (unsigned)v;
        return r;
}

/* ---- identity ----------------------------------------------------------------------- */

static int parse_uuid(const xmlNode *n, char **ret, struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        int r = leaf_text(n, false, &v, err);
        if (r < 0)
                return r;
        char out[UUID_STRING_LEN + 1];
        if (uuid_canonical(v, out) < 0)
                return dv_error_add(err, -EINVAL, LINE(n), "<uuid> '%s' is not a UUID", v);
        char *s = strdup(out);
        if (!s)
                return -ENOMEM;
        replace_str(ret, s);
        return 0;
}

static int parse_title(const xmlNode *n, char **ret, struct dv_error *err) {
        int r = leaf_text(n, false, ret, err);
        if (r < 0)
                return r;
        if (strpbrk(*ret, "\r\n"))
                return dv_error_add(err, -EINVAL, LINE(n), "<title> must be a single line");
        return 0;
}

static int parse_metadata(const xmlNode *n, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is_policy(c))
                        continue; /* model/policy.c reads it */
                dv_error_warn(err, LINE(c), "element <%s> in <metadata> is ignored", ENAME(c));
        }
        return r;
}

/* ---- memory and vcpus --------------------------------------------------------------- */

static int parse_memory(const xmlNode *n, const char *const *attrs, uint64_t *kib,
                        struct dv_error *err) {
        int r = check_attrs(n, attrs, NULL, err);
        KEEP(r, check_leaf(n, err));
        uint64_t bytes = 0;
        KEEP(r, dv_xml_scaled(n, "KiB", &bytes, err));
        if (r < 0)
                return r;
        /* Far above any host, and low enough that the KiB value written back (rounded
         * up) reads again without overflowing. */
        if (bytes > (UINT64_C(1) << 63))
                return dv_error_add(err, -ERANGE, LINE(n), "<%s>: more than 8 EiB", NAME(n));
        /* libvirt keeps memory in KiB and rounds up. */
        *kib = bytes / 1024 + (bytes % 1024 != 0);
        return 0;
}

static bool cpuset_valid(const char *s) {
        /* "0-3,^2,8": ranges and exclusions separated by commas. */
        const char *p = s;
        if (!*p)
                return false;
        for (;;) {
                if (*p == '^')
                        p++;
                if (!isdigit((unsigned char)*p))
                        return false;
                while (isdigit((unsigned char)*p))
                        p++;
                if (*p == '-') {
                        p++;
                        if (!isdigit((unsigned char)*p))
                                return false;
                        while (isdigit((unsigned char)*p))
                                p++;
                }
                if (*p == '\0')
                        return true;
                if (*p != ',')
                        return false;
                p++;
        }
}

static int parse_vcpu(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("placement", "cpuset", "current"), NULL, err);
        KEEP(r, check_leaf(n, err));
        KEEP(r, prop_enum(n, "placement", NULL, domain_placement, def->vcpu_placement, err));
        KEEP(r, prop_uint(n, "current", 1, 4096, &def->vcpu_current, err));
        if (dv_xml_prop(n, "cpuset", &def->vcpu_cpuset) < 0)
                return -ENOMEM;
        if (def->vcpu_cpuset && !cpuset_valid(def->vcpu_cpuset))
                KEEP(r, value_error(err, n, "cpuset", def->vcpu_cpuset,
                                    "expected a CPU list such as '0-3,^2'"));
        _cleanup_free_ char *text = NULL;
        if (dv_xml_text(n, &text) < 0)
                return -ENOMEM;
        uint64_t v;
        int q = parse_u64_range(text, 1, 4096, &v);
        if (q == -ERANGE)
                KEEP(r, value_error(err, n, NULL, text, "out of range 1..4096"));
        else if (q < 0)
                KEEP(r, value_error(err, n, NULL, text, "not a number"));
        else {
                def->has_vcpu = true;
                def->vcpu = (unsigned)v;
        }
        return r;
}

/* ---- os ----------------------------------------------------------------------------- */

static const char *const arch_names[] = {
        "aarch64",  "alpha",    "armv6l",     "armv7l",       "cris",   "i686",     "ia64",
        "lm32",     "m68k",     "microblaze", "microblazeel", "mips",   "mipsel",   "mips64",
        "mips64el", "openrisc", "parisc",     "parisc64",     "ppc",    "ppc64",    "ppc64le",
        "ppcemb",   "riscv32",  "riscv64",    "s390",         "s390x",  "sh4",      "sh4eb",
        "sparc",    "sparc64",  "unicore32",  "x86_64",       "xtensa", "xtensaeb", NULL,
};

static int parse_os_type(const xmlNode *n, struct domain_os *os, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("arch", "machine"), NULL, err);
        KEEP(r, check_leaf(n, err));
        os->type_line = LINE(n);
        if (dv_xml_prop(n, "arch", &os->arch) < 0 || dv_xml_prop(n, "machine", &os->machine) < 0)
                return -ENOMEM;
        if (os->arch && !dv_str_in(arch_names, os->arch))
                KEEP(r, value_error(err, n, "arch", os->arch, "unknown architecture"));
        if (os->machine && !matches_charset(os->machine, "_.-"))
                KEEP(r, value_error(err, n, "machine", os->machine, "not a machine type name"));
        _cleanup_free_ char *v = NULL;
        if (dv_xml_text(n, &v) < 0)
                return -ENOMEM;
        int t = domain_os_type_from_string(v);
        if (t <= 0)
                KEEP(r, dv_error_add(err, -EINVAL, LINE(n), "os type '%s' is not supported", v));
        else
                os->type = t;
        return r;
}

static int parse_loader(const xmlNode *n, struct domain_os *os, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("readonly", "secure", "type", "stateless"), NULL, err);
        KEEP(r, check_leaf(n, err));
        os->has_loader = true;
        os->loader.readonly = os->loader.secure = os->loader.stateless = DOMAIN_TRI_UNSET;
        KEEP(r, prop_tristate(n, "readonly", &os->loader.readonly, err));
        KEEP(r, prop_tristate(n, "secure", &os->loader.secure, err));
        KEEP(r, prop_tristate(n, "stateless", &os->loader.stateless, err));
        KEEP(r, prop_enum(n, "type", NULL, domain_loader_type, os->loader.type, err));
        _cleanup_free_ char *v = NULL;
        if (dv_xml_text(n, &v) < 0)
                return -ENOMEM;
        if (*v) {
                KEEP(r, check_path(n, NULL, v, err));
                replace_str(&os->loader.path, TAKE_PTR(v));
        }
        return r;
}

static int parse_nvram(const xmlNode *n, struct domain_os *os, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("template"), NULL, err);
        KEEP(r, check_leaf(n, err));
        os->has_nvram = true;
        KEEP(r, prop_path(n, "template", &os->nvram.template_path, err));
        _cleanup_free_ char *v = NULL;
        if (dv_xml_text(n, &v) < 0)
                return -ENOMEM;
        if (*v) {
                KEEP(r, check_path(n, NULL, v, err));
                replace_str(&os->nvram.path, TAKE_PTR(v));
        }
        return r;
}

static int parse_path_elem(const xmlNode *n, char **ret, struct dv_error *err) {
        int r = leaf_text(n, false, ret, err);
        if (r < 0)
                return r;
        return check_path(n, NULL, *ret, err);
}

static int parse_boot_dev(const xmlNode *n, struct domain_os *os, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("dev"), NULL, err);
        KEEP(r, check_leaf(n, err));
        int dev = 0;
        int q = prop_enum(n, "dev", NULL, domain_boot_dev, dev, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "dev", err);
        KEEP(r, q);
        if (r < 0)
                return r;
        for (size_t i = 0; i < os->n_boot; i++)
                if (os->boot[i] == (enum domain_boot_dev)dev)
                        return dv_error_add(err, -EINVAL, LINE(n), "boot dev '%s' is listed twice",
                                            domain_boot_dev_to_string(dev));
        if (os->n_boot >= DOMAIN_MAX_BOOT_DEVS)
                return dv_error_add(err, -EINVAL, LINE(n), "more than %d <boot dev> elements",
                                    DOMAIN_MAX_BOOT_DEVS);
        if (os->n_boot == 0)
                os->boot_line = LINE(n);
        os->boot[os->n_boot++] = dev;
        return 0;
}

static int parse_initenv(const xmlNode *n, struct domain_os *os, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("name"), NULL, err);
        KEEP(r, check_leaf(n, err));
        _cleanup_free_ char *name = NULL, *value = NULL;
        KEEP(r, dv_xml_prop_required(n, "name", &name, err));
        if (r < 0)
                return r;
        if (!(isalpha((unsigned char)name[0]) || name[0] == '_') || !matches_charset(name, "_"))
                return value_error(err, n, "name", name,
                                   "not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
        for (size_t i = 0; i < os->n_initenv; i++)
                if (streq(os->initenv[i].name, name))
                        return value_error(err, n, "name", name, "set twice");
        if (dv_xml_text_raw(n, &value) < 0)
                return -ENOMEM;
        struct domain_initenv *e = grow(&os->initenv, &os->n_initenv, sizeof(*e), n, err, &r);
        if (!e)
                return r;
        e->name = TAKE_PTR(name);
        e->value = TAKE_PTR(value);
        return 0;
}

/* <os><firmware><feature enabled='yes|no' name='...'/>: the firmware features libvirt's
 * automatic selection knows; another name is refused, naming it. */
static int parse_os_firmware(const xmlNode *n, struct domain_os *os, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        os->has_fw_features = true;
        os->fw_secure_boot = os->fw_enrolled_keys = DOMAIN_TRI_UNSET;
        dv_xml_foreach_child(c, n) {
                if (!dv_xml_is(c, "feature")) {
                        KEEP(r, unsupported_in(c, n, err));
                        continue;
                }
                KEEP(r, check_attrs(c, ATTRS("enabled", "name"), NULL, err));
                _cleanup_free_ char *name = NULL;
                enum domain_tristate v = DOMAIN_TRI_UNSET;
                int q = prop_tristate(c, "enabled", &v, err);
                if (q >= 0)
                        q = dv_xml_prop(c, "name", &name);
                if (q >= 0 && (!name || v == DOMAIN_TRI_UNSET))
                        q = dv_error_add(err, -EINVAL, LINE(c),
                                         "<firmware><feature> needs enabled='yes|no' and a name");
                if (q < 0) {
                        KEEP(r, q);
                        continue;
                }
                if (streq_ptr(name, "secure-boot"))
                        os->fw_secure_boot = v;
                else if (streq_ptr(name, "enrolled-keys"))
                        os->fw_enrolled_keys = v;
                else
                        KEEP(r, value_error(err, c, "name", name,
                                            "a firmware feature declvirt does not know (it "
                                            "knows secure-boot and enrolled-keys)"));
        }
        return r;
}

static int parse_os(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        struct domain_os *os = &def->os;
        int r = check_attrs(n, ATTRS("firmware"), NULL, err);
        def->has_os = true;
        os->line = LINE(n);
        KEEP(r, prop_enum(n, "firmware", NULL, domain_firmware, os->firmware, err));
        KEEP(r, check_once(n,
                           ATTRS("type", "loader", "nvram", "kernel", "initrd", "cmdline", "init",
                                 "initdir", "inituser", "initgroup", "firmware"),
                           err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "type"))
                        KEEP(r, parse_os_type(c, os, err));
                else if (dv_xml_is(c, "loader"))
                        KEEP(r, parse_loader(c, os, err));
                else if (dv_xml_is(c, "nvram"))
                        KEEP(r, parse_nvram(c, os, err));
                else if (dv_xml_is(c, "kernel"))
                        KEEP(r, parse_path_elem(c, &os->kernel, err));
                else if (dv_xml_is(c, "initrd"))
                        KEEP(r, parse_path_elem(c, &os->initrd, err));
                else if (dv_xml_is(c, "cmdline"))
                        KEEP(r, leaf_text(c, true, &os->cmdline, err));
                else if (dv_xml_is(c, "boot"))
                        KEEP(r, parse_boot_dev(c, os, err));
                else if (dv_xml_is(c, "init")) {
                        os->init_line = LINE(c);
                        KEEP(r, parse_path_elem(c, &os->init, err));
                } else if (dv_xml_is(c, "initarg")) {
                        _cleanup_free_ char *v = NULL;
                        int q = leaf_text(c, true, &v, err);
                        if (q >= 0 && strv_length(os->initargs) >= DOMAIN_MAX_ITEMS)
                                q = dv_error_add(err, -E2BIG, LINE(c),
                                                 "more than %d <initarg> elements",
                                                 DOMAIN_MAX_ITEMS);
                        if (q >= 0)
                                q = strv_consume(&os->initargs, TAKE_PTR(v));
                        KEEP(r, q);
                } else if (dv_xml_is(c, "initenv"))
                        KEEP(r, parse_initenv(c, os, err));
                else if (dv_xml_is(c, "initdir"))
                        KEEP(r, parse_path_elem(c, &os->initdir, err));
                else if (dv_xml_is(c, "inituser") || dv_xml_is(c, "initgroup")) {
                        char **dst = dv_xml_is(c, "inituser") ? &os->inituser : &os->initgroup;
                        int q = leaf_text(c, false, dst, err);
                        if (q >= 0 && !matches_charset(*dst, "_+-"))
                                q = value_error(err, c, NULL, *dst, "not a user or group name");
                        KEEP(r, q);
                } else if (dv_xml_is(c, "firmware"))
                        KEEP(r, parse_os_firmware(c, os, err));
                else if (ignore_if_listed(c, ATTRS("bootmenu", "smbios", "bios"), err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        if ((os->inituser != NULL) != (os->initgroup != NULL))
                KEEP(r,
                     dv_error_add(err, -EINVAL, LINE(n), "<inituser> and <initgroup> go together"));
        return r;
}

/* ---- idmap -------------------------------------------------------------------------- */

static int parse_idmap_entry(const xmlNode *n, struct domain_idmap **map, size_t *n_map,
                             struct dv_error *err) {
        int r = check_attrs(n, ATTRS("start", "target", "count"), NULL, err);
        KEEP(r, check_leaf(n, err));
        uint64_t v[3] = {0};
        const char *names[3] = {"start", "target", "count"};
        for (int i = 0; i < 3; i++) {
                int q = dv_xml_prop_u64(n, names[i], i == 2 ? 1 : 0, UINT32_MAX, &v[i], err);
                if (q == 0)
                        q = dv_xml_missing_attr(n, names[i], err);
                KEEP(r, q);
        }
        if (r < 0)
                return r;
        if (v[0] + v[2] > (uint64_t)UINT32_MAX + 1 || v[1] + v[2] > (uint64_t)UINT32_MAX + 1)
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "<%s>: the range goes beyond id 4294967295", NAME(n));
        struct domain_idmap *m = grow(map, n_map, sizeof(*m), n, err, &r);
        if (!m)
                return r;
        *m = (struct domain_idmap){.start = (uint32_t)v[0],
                                   .target = (uint32_t)v[1],
                                   .count = (uint32_t)v[2],
                                   .line = LINE(n)};
        return 0;
}

static int parse_idmap(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        def->idmap_line = LINE(n);
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "uid"))
                        KEEP(r, parse_idmap_entry(c, &def->uid_map, &def->n_uid_map, err));
                else if (dv_xml_is(c, "gid"))
                        KEEP(r, parse_idmap_entry(c, &def->gid_map, &def->n_gid_map, err));
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

/* ---- features ----------------------------------------------------------------------- */

static const struct {
        const char *attr; /* the one attribute it takes, or NULL */
        bool required;
} feature_attr[_DOMAIN_FEATURE_MAX] = {
        [DOMAIN_FEATURE_APIC] = {"eoi", false},
        [DOMAIN_FEATURE_HAP] = {"state", false},
        [DOMAIN_FEATURE_PVSPINLOCK] = {"state", false},
        [DOMAIN_FEATURE_PMU] = {"state", false},
        [DOMAIN_FEATURE_VMPORT] = {"state", false},
        [DOMAIN_FEATURE_SMM] = {"state", false},
        [DOMAIN_FEATURE_VMCOREINFO] = {"state", false},
        [DOMAIN_FEATURE_HTM] = {"state", true},
        [DOMAIN_FEATURE_NESTED_HV] = {"state", true},
        [DOMAIN_FEATURE_CCF_ASSIST] = {"state", true},
};

/* Features with structure of their own (hypervisor enlightenments, interrupt
 * controllers): libvirt and QEMU choose them; declvirt does not carry them. */
#define FEATURES_IGNORED                                                                      \
        ATTRS("hyperv", "kvm", "xen", "capabilities", "gic", "ioapic", "hpt", "msrs", "cfpc", \
              "sbbc", "ibs", "tcg", "async-teardown")

/* <ioapic driver='kvm'|'qemu'/>: the QEMU driver's (a split irqchip for an IOMMU's
 * interrupt remapping); the other drivers ignore it as before. */
static int parse_ioapic(const xmlNode *c, struct domain_def *def, struct dv_error *err) {
        if (def->ioapic_line)
                return dv_error_add(err, -EINVAL, LINE(c),
                                    "element <ioapic> appears more than once in <features> (first "
                                    "on line %d)",
                                    def->ioapic_line);
        def->ioapic_line = LINE(c);
        int r = check_attrs(c, ATTRS("driver"), NULL, err);
        KEEP(r, check_leaf(c, err));
        int q = prop_enum(c, "driver", NULL, domain_ioapic, def->ioapic, err);
        if (q == 0)
                q = dv_xml_missing_attr(c, "driver", err);
        KEEP(r, q);
        return r;
}

static int parse_features(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        int first_line[_DOMAIN_FEATURE_MAX] = {0};
        def->has_features = true;
        bool qemu = def->type == DOMAIN_TYPE_KVM || def->type == DOMAIN_TYPE_QEMU;
        dv_xml_foreach_child(c, n) {
                if (qemu && !c->ns && dv_xml_is(c, "ioapic")) {
                        KEEP(r, parse_ioapic(c, def, err));
                        continue;
                }
                int f = c->ns ? -EINVAL : domain_feature_from_string(NAME(c));
                if (f < 0) {
                        if (!ignore_if_listed(c, FEATURES_IGNORED, err))
                                KEEP(r, unsupported_in(c, n, err));
                        continue;
                }
                if (first_line[f]) {
                        KEEP(r, dv_error_add(err, -EINVAL, LINE(c),
                                             "element <%s> appears more than once in <features> "
                                             "(first on line %d)",
                                             NAME(c), first_line[f]));
                        continue;
                }
                first_line[f] = LINE(c);
                const char *attr = feature_attr[f].attr;
                int q = check_attrs(c, attr ? ATTRS(attr) : NULL, NULL, err);
                KEEP(q, check_leaf(c, err));
                def->features[f] = DOMAIN_FEATURE_PRESENT;
                if (attr && q >= 0) {
                        int v = -1;
                        int p = dv_xml_prop_yes_no(c, attr, &v, err);
                        if (p == 0 && feature_attr[f].required)
                                p = dv_xml_missing_attr(c, attr, err);
                        if (p > 0)
                                def->features[f] = v ? DOMAIN_FEATURE_ON : DOMAIN_FEATURE_OFF;
                        KEEP(q, p);
                }
                KEEP(r, q);
        }
        return r;
}

/* ---- cpu ---------------------------------------------------------------------------- */

static int parse_cpu_model(const xmlNode *n, struct domain_cpu *cpu, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("fallback"), NULL, err);
        KEEP(r, check_leaf(n, err));
        KEEP(r, prop_enum(n, "fallback", NULL, domain_cpu_fallback, cpu->fallback, err));
        if (dv_xml_text(n, &cpu->model) < 0)
                return -ENOMEM;
        /* <model fallback='allow'/>, empty, as older virsh dumpxml prints it under
         * host-model: no model named (validation wants one for mode='custom'). */
        if (cpu->model && !*cpu->model) {
                free(cpu->model);
                cpu->model = NULL;
                return r;
        }
        if (!matches_charset(cpu->model, "_.-"))
                KEEP(r, value_error(err, n, NULL, cpu->model, "not a CPU model name"));
        return r;
}

static int parse_topology(const xmlNode *n, struct domain_cpu *cpu, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("sockets", "dies", "cores", "threads"), NULL, err);
        KEEP(r, check_leaf(n, err));
        const char *names[] = {"sockets", "cores", "threads"};
        unsigned *fields[] = {&cpu->sockets, &cpu->cores, &cpu->threads};
        for (int i = 0; i < 3; i++) {
                int q = prop_uint(n, names[i], 1, 4096, fields[i], err);
                if (q == 0)
                        q = dv_xml_missing_attr(n, names[i], err);
                KEEP(r, q);
        }
        KEEP(r, prop_uint(n, "dies", 1, 4096, &cpu->dies, err));
        cpu->has_topology = true;
        cpu->topology_line = LINE(n);
        return r;
}

static int parse_cpu_feature(const xmlNode *n, struct domain_cpu *cpu, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("policy", "name"), NULL, err);
        KEEP(r, check_leaf(n, err));
        _cleanup_free_ char *name = NULL;
        int policy = 0;
        KEEP(r, prop_enum(n, "policy", NULL, domain_cpu_policy, policy, err));
        KEEP(r, dv_xml_prop_required(n, "name", &name, err));
        if (r < 0)
                return r;
        if (!matches_charset(name, "_.-"))
                return value_error(err, n, "name", name, "not a CPU feature name");
        for (size_t i = 0; i < cpu->n_features; i++)
                if (streq(cpu->features[i].name, name))
                        return value_error(err, n, "name", name, "the feature is listed twice");
        struct domain_cpu_feature *f =
                grow(&cpu->features, &cpu->n_features, sizeof(*f), n, err, &r);
        if (!f)
                return r;
        *f = (struct domain_cpu_feature){.policy = policy, .name = TAKE_PTR(name), .line = LINE(n)};
        return 0;
}

static int parse_cpu(const xmlNode *n, struct domain_cpu *cpu, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("mode", "match", "check", "migratable"), NULL, err);
        cpu->present = true;
        cpu->line = LINE(n);
        cpu->migratable = DOMAIN_TRI_UNSET;
        KEEP(r, prop_enum(n, "mode", NULL, domain_cpu_mode, cpu->mode, err));
        KEEP(r, prop_enum(n, "match", NULL, domain_cpu_match, cpu->match, err));
        KEEP(r, prop_enum(n, "check", NULL, domain_cpu_check, cpu->check, err));
        KEEP(r, prop_tristate(n, "migratable", &cpu->migratable, err));
        KEEP(r, check_once(n, ATTRS("model", "vendor", "topology"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "model"))
                        KEEP(r, parse_cpu_model(c, cpu, err));
                else if (dv_xml_is(c, "vendor")) {
                        int q = leaf_text(c, false, &cpu->vendor, err);
                        if (q >= 0 && !matches_charset(cpu->vendor, "_.-"))
                                q = value_error(err, c, NULL, cpu->vendor, "not a CPU vendor name");
                        KEEP(r, q);
                } else if (dv_xml_is(c, "topology"))
                        KEEP(r, parse_topology(c, cpu, err));
                else if (dv_xml_is(c, "feature"))
                        KEEP(r, parse_cpu_feature(c, cpu, err));
                else if (ignore_if_listed(c, ATTRS("cache"), err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

/* ---- clock -------------------------------------------------------------------------- */

static int parse_timer(const xmlNode *n, struct domain_clock *clk, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("name", "present", "tickpolicy", "track"), NULL, err);
        KEEP(r, check_leaf(n, err));
        struct domain_timer t = {.present = DOMAIN_TRI_UNSET, .line = LINE(n)};
        int q = prop_enum(n, "name", NULL, domain_timer_name, t.name, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "name", err);
        KEEP(r, q);
        KEEP(r, prop_tristate(n, "present", &t.present, err));
        KEEP(r, prop_enum(n, "tickpolicy", NULL, domain_tickpolicy, t.tickpolicy, err));
        KEEP(r, prop_enum(n, "track", NULL, domain_timer_track, t.track, err));
        if (r < 0)
                return r;
        const char *name = domain_timer_name_to_string(t.name);
        if (t.track && t.name != DOMAIN_TIMER_PLATFORM && t.name != DOMAIN_TIMER_RTC)
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "timer '%s' takes no 'track' (only platform and rtc)", name);
        if (t.tickpolicy && (t.name == DOMAIN_TIMER_KVMCLOCK || t.name == DOMAIN_TIMER_HYPERVCLOCK))
                return dv_error_add(err, -EINVAL, LINE(n), "timer '%s' takes no 'tickpolicy'",
                                    name);
        for (size_t i = 0; i < clk->n_timers; i++)
                if (clk->timers[i].name == t.name)
                        return dv_error_add(err, -EINVAL, LINE(n),
                                            "timer '%s' is listed twice (first on line %d)", name,
                                            clk->timers[i].line);
        struct domain_timer *p = grow(&clk->timers, &clk->n_timers, sizeof(*p), n, err, &r);
        if (!p)
                return r;
        *p = t;
        return 0;
}

static bool time_delta_valid(const char *s) {
        if (*s == '+' || *s == '-')
                s++;
        uint64_t v;
        return parse_u64(s, &v) == 0;
}

static int parse_clock(const xmlNode *n, struct domain_clock *clk, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("offset", "timezone", "adjustment", "basis", "start"), NULL,
                            err);
        clk->present = true;
        clk->line = LINE(n);
        int q = prop_enum(n, "offset", NULL, domain_clock_offset, clk->offset, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "offset", err);
        KEEP(r, q);
        KEEP(r, prop_enum(n, "basis", NULL, domain_clock_basis, clk->basis, err));
        if (dv_xml_prop(n, "timezone", &clk->timezone) < 0 ||
            dv_xml_prop(n, "adjustment", &clk->adjustment) < 0)
                return -ENOMEM;
        q = dv_xml_prop_u64(n, "start", 0, UINT64_MAX, &clk->start, err);
        clk->has_start = q > 0;
        KEEP(r, q);
        if (r < 0)
                return r;
        enum domain_clock_offset o = clk->offset;
        const char *os = domain_clock_offset_to_string(o);
        if (clk->timezone && o != DOMAIN_CLOCK_TIMEZONE)
                KEEP(r, dv_error_add(err, -EINVAL, LINE(n),
                                     "<clock offset='%s'> takes no 'timezone'", os));
        if (clk->timezone && !matches_charset(clk->timezone, "_+-/"))
                KEEP(r, value_error(err, n, "timezone", clk->timezone, "not a time zone name"));
        if (clk->adjustment && o != DOMAIN_CLOCK_UTC && o != DOMAIN_CLOCK_LOCALTIME &&
            o != DOMAIN_CLOCK_VARIABLE)
                KEEP(r, dv_error_add(err, -EINVAL, LINE(n),
                                     "<clock offset='%s'> takes no 'adjustment'", os));
        else if (clk->adjustment && !time_delta_valid(clk->adjustment) &&
                 !(streq(clk->adjustment, "reset") && o != DOMAIN_CLOCK_VARIABLE))
                KEEP(r, value_error(err, n, "adjustment", clk->adjustment,
                                    "expected seconds (or 'reset')"));
        if (clk->basis && o != DOMAIN_CLOCK_VARIABLE)
                KEEP(r, dv_error_add(err, -EINVAL, LINE(n), "<clock offset='%s'> takes no 'basis'",
                                     os));
        if (clk->has_start != (o == DOMAIN_CLOCK_ABSOLUTE))
                KEEP(r,
                     dv_error_add(err, -EINVAL, LINE(n),
                                  "'start' goes with <clock offset='absolute'>, and only there"));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "timer"))
                        KEEP(r, parse_timer(c, clk, err));
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

static int parse_lifecycle(const xmlNode *n, enum domain_lifecycle *ret, int *line,
                           struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        int r = leaf_text(n, false, &v, err);
        if (r < 0)
                return r;
        *line = LINE(n);
        int x = domain_lifecycle_from_string(v);
        if (x <= 0) {
                char list[256];
                enum_list(domain_lifecycle_to_string, list, sizeof(list));
                return dv_error_add(err, -EINVAL, LINE(n), "<%s> '%s': expected %s", NAME(n), v,
                                    list);
        }
        if ((x == DOMAIN_LIFECYCLE_COREDUMP_DESTROY || x == DOMAIN_LIFECYCLE_COREDUMP_RESTART) &&
            !dv_xml_is(n, "on_crash"))
                return dv_error_add(err, -EINVAL, LINE(n), "<%s> '%s': only valid in <on_crash>",
                                    NAME(n), v);
        *ret = x;
        return 0;
}

/* ---- disks -------------------------------------------------------------------------- */

static int parse_disk_driver(const xmlNode *n, struct domain_disk *d, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("name", "type", "cache", "io", "discard"), NULL, err);
        KEEP(r, check_leaf(n, err));
        if (dv_xml_prop(n, "name", &d->driver.name) < 0)
                return -ENOMEM;
        if (d->driver.name && !matches_charset(d->driver.name, "_-"))
                KEEP(r, value_error(err, n, "name", d->driver.name, "not a driver name"));
        KEEP(r, prop_enum(n, "type", NULL, domain_disk_format, d->driver.format, err));
        KEEP(r, prop_enum(n, "cache", NULL, domain_disk_cache, d->driver.cache, err));
        KEEP(r, prop_enum(n, "io", NULL, domain_disk_io, d->driver.io, err));
        KEEP(r, prop_enum(n, "discard", NULL, domain_disk_discard, d->driver.discard, err));
        return r;
}

static int parse_disk_source(const xmlNode *n, struct domain_disk *d, struct dv_error *err) {
        /* index: the position in the backing chain that a running domain shows. */
        int r = check_attrs(n, ATTRS("file", "dev", "pool", "volume"), ATTRS("index"), err);
        dv_xml_foreach_child(c, n) {
                if (!ignore_if_listed(c, ATTRS("seclabel"), err))
                        KEEP(r, unsupported_in(c, n, err));
        }
        d->source_line = LINE(n);
        KEEP(r, prop_path(n, "file", &d->source.file, err));
        KEEP(r, prop_path(n, "dev", &d->source.dev, err));
        if (dv_xml_prop(n, "pool", &d->source.pool) < 0 ||
            dv_xml_prop(n, "volume", &d->source.volume) < 0)
                return -ENOMEM;
        if (r < 0)
                return r;
        const char *why;
        if (d->source.pool && (why = dv_name_problem(DV_KIND_POOL, d->source.pool)))
                KEEP(r, value_error(err, n, "pool", d->source.pool, why));
        if (d->source.volume && (why = dv_name_problem(DV_KIND_VOLUME, d->source.volume)))
                KEEP(r, value_error(err, n, "volume", d->source.volume, why));
        /* Each disk type reads one kind of source; another one would be silently unused. */
        enum domain_disk_type t = domain_disk_type(d);
        const char *wrong = NULL;
        if (t != DOMAIN_DISK_FILE && d->source.file)
                wrong = "file";
        else if (t != DOMAIN_DISK_BLOCK && d->source.dev)
                wrong = "dev";
        else if (t != DOMAIN_DISK_VOLUME && (d->source.pool || d->source.volume))
                wrong = d->source.pool ? "pool" : "volume";
        if (wrong)
                KEEP(r, dv_error_add(err, -EINVAL, LINE(n),
                                     "<source %s=...> does not fit disk type '%s'", wrong,
                                     domain_disk_type_to_string(t)));
        d->has_source = d->source.file || d->source.dev || d->source.pool || d->source.volume;
        return r;
}

static bool disk_target_valid(const char *s) {
        static const char *const prefixes[] = {"xvd", "ubd", "fd", "hd", "sd", "vd", NULL};
        for (size_t i = 0; prefixes[i]; i++) {
                size_t l = strlen(prefixes[i]);
                if (strncmp(s, prefixes[i], l) == 0)
                        return s[l] && matches_charset(s + l, "_") && strlen(s) <= 32;
        }
        return false;
}

static int parse_disk_target(const xmlNode *n, struct domain_disk *d, struct dv_error *err) {
        /* tray: whether a running domain's cdrom tray is open. */
        int r = check_attrs(n, ATTRS("dev", "bus"), ATTRS("tray"), err);
        KEEP(r, check_leaf(n, err));
        d->target_line = LINE(n);
        KEEP(r, prop_enum(n, "bus", NULL, domain_disk_bus, d->target_bus, err));
        int q = dv_xml_prop_required(n, "dev", &d->target_dev, err);
        if (q >= 0 && !disk_target_valid(d->target_dev))
                q = value_error(err, n, "dev", d->target_dev,
                                "expected a disk name such as vda, sda, hdc, xvda or fda");
        KEEP(r, q);
        return r;
}

static int parse_disk(const xmlNode *n, struct domain_disk *d, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type", "device"), NULL, err);
        d->line = LINE(n);
        KEEP(r, prop_enum(n, "type", "disk type", domain_disk_type, d->type, err));
        KEEP(r, prop_enum(n, "device", "disk device", domain_disk_device, d->device, err));
        KEEP(r, check_once(n,
                           ATTRS("driver", "source", "target", "readonly", "shareable", "serial",
                                 "boot"),
                           err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "driver"))
                        KEEP(r, parse_disk_driver(c, d, err));
                else if (dv_xml_is(c, "source"))
                        KEEP(r, parse_disk_source(c, d, err));
                else if (dv_xml_is(c, "target"))
                        KEEP(r, parse_disk_target(c, d, err));
                else if (dv_xml_is(c, "readonly")) {
                        KEEP(r, empty_elem(c, err));
                        d->readonly = true;
                } else if (dv_xml_is(c, "shareable")) {
                        KEEP(r, empty_elem(c, err));
                        d->shareable = true;
                } else if (dv_xml_is(c, "serial")) {
                        int q = leaf_text(c, false, &d->serial, err);
                        if (q >= 0 &&
                            (!matches_charset(d->serial, "_ .+-") || strlen(d->serial) > 36))
                                q = value_error(err, c, NULL, d->serial,
                                                "not a disk serial (up to 36 of A-Z a-z 0-9 _ . + "
                                                "- and space)");
                        KEEP(r, q);
                } else if (dv_xml_is(c, "boot")) {
                        d->boot_line = LINE(c);
                        KEEP(r, parse_boot_order(c, &d->boot_order, err));
                } else if (ignore_if_listed(c, ATTRS("alias", "address", "backingStore"), err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

/* ---- filesystems -------------------------------------------------------------------- */

static int parse_fs_driver(const xmlNode *n, struct domain_fs *fs, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type", "format", "wrpolicy"), NULL, err);
        KEEP(r, check_leaf(n, err));
        KEEP(r, prop_enum(n, "type", NULL, domain_fs_driver, fs->driver.type, err));
        if (dv_xml_prop(n, "format", &fs->driver.format) < 0)
                return -ENOMEM;
        if (fs->driver.format && !matches_charset(fs->driver.format, "_-"))
                KEEP(r, value_error(err, n, "format", fs->driver.format, "not a format name"));
        _cleanup_free_ char *wr = NULL;
        if (dv_xml_prop(n, "wrpolicy", &wr) < 0)
                return -ENOMEM;
        if (wr && !streq(wr, "immediate"))
                KEEP(r, value_error(err, n, "wrpolicy", wr, "expected 'immediate'"));
        fs->driver.wrpolicy_immediate = wr != NULL;
        return r;
}

static int parse_fs_source(const xmlNode *n, struct domain_fs *fs, struct dv_error *err) {
        static const char *const attr_of[] = {
                [DOMAIN_FS_MOUNT] = "dir",
                [DOMAIN_FS_BLOCK] = "dev",
                [DOMAIN_FS_FILE] = "file",
                [DOMAIN_FS_TEMPLATE] = "name",
        };
        int r = check_attrs(n, ATTRS("dir", "dev", "file", "name"), NULL, err);
        KEEP(r, check_leaf(n, err));
        fs->source_line = LINE(n);
        const char *want = attr_of[domain_fs_type(fs)];
        for (xmlAttr *a = n->properties; a; a = a->next)
                if (!a->ns &&
                    dv_str_in(ATTRS("dir", "dev", "file", "name"), (const char *)a->name) &&
                    !xmlStrEqual(a->name, BAD_CAST want))
                        KEEP(r, dv_error_add(err, -EINVAL, LINE(n),
                                             "<source %s=...> does not fit filesystem type '%s' "
                                             "(it takes %s=)",
                                             (const char *)a->name,
                                             domain_fs_type_to_string(domain_fs_type(fs)), want));
        int q = dv_xml_prop_required(n, want, &fs->source, err);
        if (q >= 0 && domain_fs_type(fs) == DOMAIN_FS_TEMPLATE) {
                if (!matches_charset(fs->source, "_+-"))
                        q = value_error(err, n, want, fs->source, "not a template name");
        } else if (q >= 0)
                q = check_path(n, want, fs->source, err);
        KEEP(r, q);
        return r;
}

static int parse_fs_target(const xmlNode *n, struct domain_fs *fs, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("dir"), NULL, err);
        KEEP(r, check_leaf(n, err));
        fs->target_line = LINE(n);
        int q = dv_xml_prop_required(n, "dir", &fs->target_dir, err);
        if (q >= 0 && (!*fs->target_dir || has_control_chars(fs->target_dir)))
                q = value_error(err, n, "dir", fs->target_dir,
                                "empty, or contains a control character");
        KEEP(r, q);
        return r;
}

static int parse_fs(const xmlNode *n, struct domain_fs *fs, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type", "accessmode"), NULL, err);
        fs->line = LINE(n);
        /* The type decides which source attribute is read: it must be known first. */
        int q = prop_enum(n, "type", "filesystem type", domain_fs_type, fs->type, err);
        if (q < 0)
                return q;
        KEEP(r, prop_enum(n, "accessmode", NULL, domain_fs_access, fs->accessmode, err));
        KEEP(r, check_once(n, ATTRS("driver", "source", "target", "readonly"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "driver"))
                        KEEP(r, parse_fs_driver(c, fs, err));
                else if (dv_xml_is(c, "source"))
                        KEEP(r, parse_fs_source(c, fs, err));
                else if (dv_xml_is(c, "target"))
                        KEEP(r, parse_fs_target(c, fs, err));
                else if (dv_xml_is(c, "readonly")) {
                        KEEP(r, empty_elem(c, err));
                        fs->readonly = true;
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

/* ---- interfaces --------------------------------------------------------------------- */

static int parse_mac(const xmlNode *n, struct domain_net *net, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("address"), NULL, err);
        KEEP(r, check_leaf(n, err));
        _cleanup_free_ char *v = NULL;
        KEEP(r, dv_xml_prop_required(n, "address", &v, err));
        if (r < 0)
                return r;
        uint8_t m[MAC_BYTES];
        if (mac_parse(v, m) < 0)
                return value_error(err, n, "address", v,
                                   "not a MAC address (six hexadecimal bytes separated by ':')");
        char out[MAC_STRING_LEN + 1];
        mac_format(m, out);
        if (mac_is_multicast(m))
                return value_error(err, n, "address", out,
                                   "a multicast address cannot be an interface's address");
        char *canon = strdup(out);
        if (!canon)
                return -ENOMEM;
        replace_str(&net->mac, canon);
        return 0;
}

static bool ifname_valid(const char *s) {
        return strlen(s) <= 15 && matches_charset(s, "_.-");
}

static int parse_net_source(const xmlNode *n, struct domain_net *net, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("network", "bridge"), ATTRS("portid"), err);
        KEEP(r, check_leaf(n, err));
        if (dv_xml_prop(n, "network", &net->source_network) < 0 ||
            dv_xml_prop(n, "bridge", &net->source_bridge) < 0)
                return -ENOMEM;
        if (r < 0)
                return r;
        switch (net->type) {
        case DOMAIN_NET_NETWORK:
                if (net->source_bridge) {
                        /* A running domain shows the network's bridge: the network decides it. */
                        dv_error_warn(
                                err, LINE(n),
                                "attribute 'bridge' on <source> of a network interface is ignored");
                        free(net->source_bridge);
                        net->source_bridge = NULL;
                }
                if (!net->source_network)
                        return dv_error_add(err, -EINVAL, LINE(n),
                                            "<source> of a network interface needs 'network'");
                const char *why = dv_name_problem(DV_KIND_NETWORK, net->source_network);
                if (why)
                        return value_error(err, n, "network", net->source_network, why);
                break;
        case DOMAIN_NET_BRIDGE:
                if (net->source_network)
                        return dv_error_add(
                                err, -EINVAL, LINE(n),
                                "<source network=...> does not fit interface type 'bridge'");
                if (!net->source_bridge)
                        return dv_error_add(err, -EINVAL, LINE(n),
                                            "<source> of a bridge interface needs 'bridge'");
                if (!ifname_valid(net->source_bridge))
                        return value_error(err, n, "bridge", net->source_bridge,
                                           "not an interface name");
                break;
        default:
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "<source> does not fit interface type '%s'",
                                    strempty(domain_net_type_to_string(net->type)));
        }
        return 0;
}

static int parse_net_target(const xmlNode *n, struct domain_net *net, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("dev"), NULL, err);
        KEEP(r, check_leaf(n, err));
        _cleanup_free_ char *dev = NULL;
        KEEP(r, dv_xml_prop_required(n, "dev", &dev, err));
        if (r < 0)
                return r;
        if (!ifname_valid(dev))
                return value_error(err, n, "dev", dev,
                                   "not an interface name (up to 15 of A-Z a-z 0-9 _ . -)");
        /* libvirt names taps vnetN/macvtapN itself and drops such names from definitions. */
        if (strncmp(dev, "vnet", 4) == 0 || strncmp(dev, "macvtap", 7) == 0 ||
            strncmp(dev, "macvlan", 7) == 0) {
                dv_error_warn(err, LINE(n), "<target dev='%s'> is a generated name and is ignored",
                              dev);
                return 0;
        }
        replace_str(&net->target_dev, TAKE_PTR(dev));
        net->target_line = LINE(n);
        return 0;
}

static int parse_net(const xmlNode *n, struct domain_net *net, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type"), NULL, err);
        net->line = LINE(n);
        int q = prop_enum(n, "type", "interface type", domain_net_type, net->type, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "type", err);
        if (q < 0)
                return q; /* the source cannot be read without it */
        KEEP(r, check_once(n, ATTRS("mac", "source", "model", "target", "boot"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "mac"))
                        KEEP(r, parse_mac(c, net, err));
                else if (dv_xml_is(c, "source"))
                        KEEP(r, parse_net_source(c, net, err));
                else if (dv_xml_is(c, "model")) {
                        int p = check_attrs(c, ATTRS("type"), NULL, err);
                        KEEP(p, check_leaf(c, err));
                        KEEP(p, dv_xml_prop_required(c, "type", &net->model, err));
                        if (p >= 0 && !matches_charset(net->model, "_-"))
                                p = value_error(err, c, "type", net->model, "not a NIC model name");
                        KEEP(r, p);
                } else if (dv_xml_is(c, "target"))
                        KEEP(r, parse_net_target(c, net, err));
                else if (dv_xml_is(c, "boot")) {
                        net->boot_line = LINE(c);
                        KEEP(r, parse_boot_order(c, &net->boot_order, err));
                } else if (ignore_if_listed(c, ATTRS("alias", "address", "driver"), err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

/* ---- serial and console ------------------------------------------------------------- */

static const char *const serial_target_types[] = {
        "isa-serial",    "usb-serial",  "pci-serial", "spapr-vio-serial",
        "system-serial", "sclp-serial", "isa-debug",  NULL};
static const char *const console_target_types[] = {"serial", "virtio", "xen",    "lxc",
                                                   "openvz", "sclp",   "sclplm", NULL};

static int parse_chr_source(const xmlNode *n, struct domain_chr *chr, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("path", "append"), NULL, err);
        KEEP(r, check_leaf(n, err));
        enum domain_chr_type t = domain_chr_type(chr);
        if (t == DOMAIN_CHR_NULL || t == DOMAIN_CHR_STDIO)
                return dv_error_add(err, -EINVAL, LINE(n), "<source> does not fit type '%s'",
                                    domain_chr_type_to_string(t));
        if (t == DOMAIN_CHR_PTY) {
                /* The pty is allocated when the domain starts; a running domain shows it. */
                if (xmlHasProp(n, BAD_CAST "path"))
                        dv_error_warn(err, LINE(n),
                                      "attribute 'path' on <source> of a pty is ignored");
                if (xmlHasProp(n, BAD_CAST "append"))
                        KEEP(r,
                             dv_error_add(err, -EINVAL, LINE(n), "'append' only fits type 'file'"));
                return r;
        }
        chr->append = DOMAIN_TRI_UNSET;
        KEEP(r, prop_tristate(n, "append", &chr->append, err));
        KEEP(r, prop_path(n, "path", &chr->source_path, err));
        return r;
}

static int parse_chr_target(const xmlNode *n, bool console, struct domain_chr *chr,
                            struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type", "port"), NULL, err);
        dv_xml_foreach_child(c, n) {
                if (!ignore_if_listed(c, ATTRS("model"), err))
                        KEEP(r, unsupported_in(c, n, err));
        }
        uint64_t port;
        int q = dv_xml_prop_u64(n, "port", 0, 65535, &port, err);
        if (q > 0) {
                chr->has_target_port = true;
                chr->target_port = (unsigned)port;
        }
        KEEP(r, q);
        if (dv_xml_prop(n, "type", &chr->target_type) < 0)
                return -ENOMEM;
        if (chr->target_type &&
            !dv_str_in(console ? console_target_types : serial_target_types, chr->target_type))
                KEEP(r,
                     value_error(
                             err, n, "type", chr->target_type,
                             console ? "not a console target type (serial, virtio, xen, lxc, ...)"
                                     : "not a serial target type (isa-serial, usb-serial, "
                                       "pci-serial, ...)"));
        return r;
}

static int parse_chr(const xmlNode *n, struct domain_chr *chr, struct dv_error *err) {
        bool console = dv_xml_is(n, "console");
        /* tty: the pty a running console is connected to. */
        int r = check_attrs(n, ATTRS("type"), console ? ATTRS("tty") : NULL, err);
        chr->line = LINE(n);
        chr->append = DOMAIN_TRI_UNSET;
        int q = prop_enum(n, "type", console ? "console type" : "serial type", domain_chr_type,
                          chr->type, err);
        if (q < 0)
                return q;
        KEEP(r, check_once(n, ATTRS("source", "target"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "source"))
                        KEEP(r, parse_chr_source(c, chr, err));
                else if (dv_xml_is(c, "target"))
                        KEEP(r, parse_chr_target(c, console, chr, err));
                else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        if (r >= 0 && domain_chr_type(chr) == DOMAIN_CHR_FILE && !chr->source_path)
                r = dv_error_add(err, -EINVAL, LINE(n), "a file <%s> needs <source path='...'>",
                                 NAME(n));
        return r;
}

/* ---- graphics ----------------------------------------------------------------------- */

/* -1 (automatic) or a number in min..65535. Returns 1 when present. */
static int prop_port(const xmlNode *n, const char *attr, uint64_t min, int *ret,
                     struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, attr, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        uint64_t p;
        if (streq(v, "-1"))
                *ret = -1;
        else if (parse_u64_range(v, min, 65535, &p) == 0)
                *ret = (int)p;
        else {
                char why[64];
                snprintf(why, sizeof(why), "expected -1 (automatic) or %llu..65535",
                         (unsigned long long)min);
                return value_error(err, n, attr, v, why);
        }
        return 1;
}

static bool listen_address_valid(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1 ||
               (strlen(s) <= 253 && matches_charset(s, ".-"));
}

static int parse_listen(const xmlNode *n, struct domain_graphics *g, char **address, char **socket,
                        struct dv_error *err) {
        /* The type first: the attributes that fit depend on it. */
        _cleanup_free_ char *type = NULL;
        int r = dv_xml_prop_required(n, "type", &type, err);
        if (r < 0)
                return r;
        int t = domain_listen_type_from_string(type);
        if (t <= 0)
                return dv_error_add(err, -EOPNOTSUPP, LINE(n), "listen type '%s' is not supported",
                                    type);
        /* fromConfig and autoGenerated: libvirt's notes on where a listen came from. */
        r = check_attrs(n, ATTRS("type", "address", "socket"), ATTRS("fromConfig", "autoGenerated"),
                        err);
        KEEP(r, check_leaf(n, err));
        if (dv_xml_prop(n, "address", address) < 0 || dv_xml_prop(n, "socket", socket) < 0)
                return -ENOMEM;
        if (r < 0)
                return r;
        if ((*address && t != DOMAIN_LISTEN_ADDRESS) || (*socket && t != DOMAIN_LISTEN_SOCKET))
                return dv_error_add(err, -EINVAL, LINE(n), "<listen type='%s'> takes no '%s'", type,
                                    *address ? "address" : "socket");
        if (*address && !listen_address_valid(*address))
                return value_error(err, n, "address", *address, "not an address or host name");
        if (*socket)
                KEEP(r, check_path(n, "socket", *socket, err));
        g->listen_type = t;
        return r;
}

static int parse_graphics(const xmlNode *n, struct domain_graphics *g, struct dv_error *err) {
        int r = check_attrs(n,
                            ATTRS("type", "port", "autoport", "websocket", "listen", "socket",
                                  "keymap", "passwd"),
                            NULL, err);
        g->line = LINE(n);
        g->autoport = DOMAIN_TRI_UNSET;
        int type = -1;
        int q = prop_enum(n, "type", "graphics type", domain_graphics_type, type, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "type", err);
        if (q < 0)
                return q;
        g->type = type;
        q = prop_port(n, "port", 5900, &g->port, err);
        g->has_port = q > 0;
        KEEP(r, q);
        q = prop_port(n, "websocket", 1, &g->websocket, err);
        g->has_websocket = q > 0;
        KEEP(r, q);
        KEEP(r, prop_tristate(n, "autoport", &g->autoport, err));
        if (g->autoport == DOMAIN_TRI_YES && g->has_port && g->port != -1) {
                /* A running domain shows the port autoport picked; the definition has none. */
                dv_error_warn(err, LINE(n),
                              "attribute 'port' on <graphics> is ignored with autoport='yes'");
                g->has_port = false;
        }
        if (dv_xml_prop(n, "listen", &g->listen) < 0 || dv_xml_prop(n, "socket", &g->socket) < 0 ||
            dv_xml_prop(n, "keymap", &g->keymap) < 0 || dv_xml_prop(n, "passwd", &g->passwd) < 0)
                return -ENOMEM;
        if (g->listen && !listen_address_valid(g->listen))
                KEEP(r, value_error(err, n, "listen", g->listen, "not an address or host name"));
        if (g->socket)
                KEEP(r, check_path(n, "socket", g->socket, err));
        if (g->keymap && !matches_charset(g->keymap, "_-"))
                KEEP(r, value_error(err, n, "keymap", g->keymap, "not a keymap name"));
        if (g->passwd && has_control_chars(g->passwd))
                KEEP(r, dv_error_add(err, -EINVAL, LINE(n),
                                     "<graphics passwd>: contains a control character"));

        const xmlNode *listen = NULL;
        _cleanup_free_ char *address = NULL, *socket = NULL;
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "listen")) {
                        if (listen) {
                                KEEP(r, dv_error_add(
                                                err, -EINVAL, LINE(c),
                                                "vnc takes one <listen> (the first is on line %d)",
                                                LINE(listen)));
                                continue;
                        }
                        listen = c;
                        KEEP(r, parse_listen(c, g, &address, &socket, err));
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        if (r < 0)
                return r;

        /* One listen, given by the attributes, the <listen> child, or both in agreement
         * (virsh dumpxml writes both). */
        if (!listen)
                g->listen_type = g->socket   ? DOMAIN_LISTEN_SOCKET
                                 : g->listen ? DOMAIN_LISTEN_ADDRESS
                                             : DOMAIN_LISTEN_UNSET;
        if (g->socket && g->listen)
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "<graphics> takes 'socket' or 'listen', not both");
        if (g->listen_type != DOMAIN_LISTEN_ADDRESS && g->listen_type != DOMAIN_LISTEN_UNSET &&
            (g->has_port || g->autoport != DOMAIN_TRI_UNSET || g->has_websocket || g->listen))
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "'port', 'autoport', 'websocket' and 'listen' need a network "
                                    "listen, not listen type '%s'",
                                    domain_listen_type_to_string(g->listen_type));
        if (g->listen_type == DOMAIN_LISTEN_ADDRESS && g->socket)
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "<graphics socket=...> does not fit listen type 'address'");
        if (listen && g->listen_type == DOMAIN_LISTEN_ADDRESS && g->listen && address &&
            !streq(g->listen, address))
                return dv_error_add(err, -EINVAL, LINE(listen),
                                    "<listen address='%s'> differs from <graphics listen='%s'>",
                                    address, g->listen);
        if (listen && g->listen_type == DOMAIN_LISTEN_SOCKET && g->socket && socket &&
            !streq(g->socket, socket))
                return dv_error_add(err, -EINVAL, LINE(listen),
                                    "<listen socket='%s'> differs from <graphics socket='%s'>",
                                    socket, g->socket);
        if (!g->listen && address)
                g->listen = TAKE_PTR(address);
        if (!g->socket && socket)
                g->socket = TAKE_PTR(socket);
        return 0;
}

/* ---- video and input ---------------------------------------------------------------- */

static int parse_video(const xmlNode *n, struct domain_video *v, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        v->line = LINE(n);
        KEEP(r, check_once(n, ATTRS("model"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "model")) {
                        /* Sizes and heads: libvirt fills them in from the model's defaults. */
                        int q = check_attrs(
                                c, ATTRS("type"),
                                ATTRS("vram", "ram", "vgamem", "vram64", "heads", "primary"), err);
                        KEEP(q, check_leaf(c, err));
                        int p = prop_enum(c, "type", "video model", domain_video_model, v->model,
                                          err);
                        if (p == 0)
                                p = dv_xml_missing_attr(c, "type", err);
                        KEEP(q, p);
                        KEEP(r, q);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

static int parse_input(const xmlNode *n, struct domain_input *in, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type", "bus"), NULL, err);
        in->line = LINE(n);
        int q = prop_enum(n, "type", "input type", domain_input_type, in->type, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "type", err);
        KEEP(r, q);
        KEEP(r, prop_enum(n, "bus", NULL, domain_input_bus, in->bus, err));
        dv_xml_foreach_child(c, n) {
                if (!ignore_if_listed(c, DEVICE_IGNORED, err))
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

/* ---- devices libvirt adds to QEMU guests ------------------------------------------- */

static void controller_done(struct domain_controller *c) {
        free(c->model);
        free(c->model_name);
}

static void channel_done(struct domain_channel *c) {
        free(c->type);
        free(c->source_mode);
        free(c->source_path);
        free(c->target_type);
        free(c->target_name);
}

static void sound_done(struct domain_sound *s) {
        free(s->model);
        strv_free(s->codecs);
}

static void audio_done(struct domain_audio *a) {
        free(a->type);
}

static void hub_done(struct domain_hub *h) {
        free(h->type);
}

static void watchdog_done(struct domain_watchdog *w) {
        free(w->model);
        free(w->action);
}

static void rng_done(struct domain_rng *g) {
        free(g->model);
        free(g->backend_model);
        free(g->backend_path);
}

static void panic_done(struct domain_panic *p) {
        free(p->model);
}

/* A model, type or name kept as written: it reaches QEMU's command line only through
 * the driver's own tables, but messages and observed XML show it. */
static int prop_word(const xmlNode *n, const char *attr, bool required, char **ret,
                     struct dv_error *err) {
        int r = required ? dv_xml_prop_required(n, attr, ret, err) : dv_xml_prop(n, attr, ret);
        if (r < 0 || !*ret)
                return r;
        if (!matches_charset(*ret, "-_.") || strlen(*ret) > 64)
                return value_error(err, n, attr, *ret,
                                   "expected up to 64 letters, digits, '-', '_' or '.'");
        return 0;
}

/* A number libvirt writes in decimal or as 0xNN (PCI ports, chassis). */
static int prop_num(const xmlNode *n, const char *attr, uint64_t max, unsigned *ret, bool *has,
                    struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, attr, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        uint64_t x = 0;
        bool ok;
        if (strncmp(v, "0x", 2) == 0 && v[2] && strlen(v) <= 10) {
                ok = true;
                for (const char *p = v + 2; *p; p++) {
                        if (!isxdigit((unsigned char)*p)) {
                                ok = false;
                                break;
                        }
                        x = x * 16 + (uint64_t)(isdigit((unsigned char)*p)
                                                        ? *p - '0'
                                                        : tolower((unsigned char)*p) - 'a' + 10);
                }
        } else
                ok = parse_u64(v, &x) == 0;
        if (!ok || x > max) {
                char why[64];
                snprintf(why, sizeof(why), "expected a number up to %llu", (unsigned long long)max);
                return value_error(err, n, attr, v, why);
        }
        *ret = (unsigned)x;
        *has = true;
        return 1;
}

static int parse_controller(const xmlNode *n, struct domain_controller *c, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type", "index", "model", "ports", "vectors"), NULL, err);
        c->line = LINE(n);
        int q = prop_enum(n, "type", "controller type", domain_controller_type, c->type, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "type", err);
        KEEP(r, q);
        KEEP(r, prop_num(n, "index", UINT32_MAX, &c->index, &c->has_index, err));
        KEEP(r, prop_word(n, "model", false, &c->model, err));
        KEEP(r, prop_num(n, "ports", 65535, &c->ports, &c->has_ports, err));
        KEEP(r, prop_num(n, "vectors", 65535, &c->vectors, &c->has_vectors, err));
        KEEP(r, check_once(n, ATTRS("master", "model", "target", "driver"), err));
        dv_xml_foreach_child(c2, n) {
                if (dv_xml_is(c2, "master")) {
                        int p = check_attrs(c2, ATTRS("startport"), NULL, err);
                        KEEP(p, check_leaf(c2, err));
                        int s = prop_num(c2, "startport", 65535, &c->master_startport,
                                         &c->has_master, err);
                        if (s == 0)
                                s = dv_xml_missing_attr(c2, "startport", err);
                        KEEP(p, s);
                        KEEP(r, p);
                } else if (dv_xml_is(c2, "model")) {
                        int p = check_attrs(c2, ATTRS("name"), NULL, err);
                        KEEP(p, check_leaf(c2, err));
                        KEEP(p, prop_word(c2, "name", true, &c->model_name, err));
                        KEEP(r, p);
                } else if (dv_xml_is(c2, "target")) {
                        /* busNr, index, node, hotplug, memReserve: other PCI layouts. */
                        int p = check_attrs(c2, ATTRS("chassis", "port"), NULL, err);
                        KEEP(p, check_leaf(c2, err));
                        KEEP(p, prop_num(c2, "chassis", 255, &c->chassis, &c->has_chassis, err));
                        KEEP(p, prop_num(c2, "port", 255, &c->port, &c->has_port, err));
                        KEEP(r, p);
                } else if (ignore_if_listed(c2, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c2, n, err));
        }
        return r;
}

static int parse_memballoon(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        struct domain_memballoon *m = &def->memballoon;
        int r = check_attrs(n, ATTRS("model", "autodeflate", "freePageReporting"), NULL, err);
        m->line = LINE(n);
        m->autodeflate = m->free_page_reporting = DOMAIN_TRI_UNSET;
        KEEP(r, prop_word(n, "model", true, &m->model, err));
        KEEP(r, prop_tristate(n, "autodeflate", &m->autodeflate, err));
        KEEP(r, prop_tristate(n, "freePageReporting", &m->free_page_reporting, err));
        KEEP(r, check_once(n, ATTRS("stats"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "stats")) {
                        int p = check_attrs(c, ATTRS("period"), NULL, err);
                        KEEP(p, check_leaf(c, err));
                        int s = prop_num(c, "period", INT32_MAX, &m->stats_period,
                                         &m->has_stats_period, err);
                        if (s == 0)
                                s = dv_xml_missing_attr(c, "period", err);
                        KEEP(p, s);
                        KEEP(r, p);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        def->has_memballoon = true;
        return r;
}

static int parse_rng(const xmlNode *n, struct domain_rng *g, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("model"), NULL, err);
        g->line = LINE(n);
        KEEP(r, prop_word(n, "model", true, &g->model, err));
        KEEP(r, check_once(n, ATTRS("backend", "rate"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "backend")) {
                        int p = check_attrs(c, ATTRS("model"), ATTRS("type"), err);
                        KEEP(p, prop_word(c, "model", true, &g->backend_model, err));
                        /* egd's <source>/<protocol> children: refused by the drivers. */
                        dv_xml_foreach_child(cc, c) KEEP(p, unsupported_in(cc, c, err));
                        if (p >= 0 && streq_ptr(g->backend_model, "random")) {
                                _cleanup_free_ char *path = NULL;
                                if (dv_xml_text(c, &path) < 0)
                                        return -ENOMEM;
                                if (path && *path) {
                                        p = check_path(c, NULL, path, err);
                                        if (p >= 0)
                                                g->backend_path = TAKE_PTR(path);
                                }
                        }
                        KEEP(r, p);
                } else if (dv_xml_is(c, "rate")) {
                        int p = check_attrs(c, ATTRS("bytes", "period"), NULL, err);
                        bool has = false;
                        KEEP(p, check_leaf(c, err));
                        int s = prop_num(c, "bytes", INT32_MAX, &g->rate_bytes, &g->has_rate, err);
                        if (s == 0)
                                s = dv_xml_missing_attr(c, "bytes", err);
                        KEEP(p, s);
                        KEEP(p, prop_num(c, "period", INT32_MAX, &g->rate_period, &has, err));
                        KEEP(r, p);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        if (r >= 0 && !g->backend_model)
                r = dv_error_add(err, -EINVAL, LINE(n), "an <rng> needs a <backend>");
        return r;
}

/* Leaf-like devices: their attributes, then libvirt's alias and address only. */
static int device_children(const xmlNode *n, struct dv_error *err) {
        int r = 0;
        dv_xml_foreach_child(c, n) {
                if (!ignore_if_listed(c, DEVICE_IGNORED, err))
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

static int parse_watchdog(const xmlNode *n, struct domain_watchdog *w, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("model", "action"), NULL, err);
        w->line = LINE(n);
        KEEP(r, prop_word(n, "model", true, &w->model, err));
        KEEP(r, prop_word(n, "action", false, &w->action, err));
        KEEP(r, device_children(n, err));
        return r;
}

static int parse_panic(const xmlNode *n, struct domain_panic *p, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("model"), NULL, err);
        p->line = LINE(n);
        KEEP(r, prop_word(n, "model", false, &p->model, err));
        KEEP(r, device_children(n, err));
        return r;
}

static int parse_hub(const xmlNode *n, struct domain_hub *h, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type"), NULL, err);
        h->line = LINE(n);
        KEEP(r, prop_word(n, "type", true, &h->type, err));
        KEEP(r, device_children(n, err));
        return r;
}

static int parse_sound(const xmlNode *n, struct domain_sound *s, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("model"), NULL, err);
        s->line = LINE(n);
        KEEP(r, prop_word(n, "model", true, &s->model, err));
        KEEP(r, check_once(n, ATTRS("audio"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "codec")) {
                        int p = check_attrs(c, ATTRS("type"), NULL, err);
                        KEEP(p, check_leaf(c, err));
                        _cleanup_free_ char *t = NULL;
                        KEEP(p, prop_word(c, "type", true, &t, err));
                        if (p >= 0 && strv_length(s->codecs) >= 16)
                                p = dv_error_add(err, -E2BIG, LINE(c), "more than 16 <codec>");
                        if (p >= 0 && strv_consume(&s->codecs, TAKE_PTR(t)) < 0)
                                return -ENOMEM;
                        KEEP(r, p);
                } else if (dv_xml_is(c, "audio")) {
                        int p = check_attrs(c, ATTRS("id"), NULL, err);
                        bool has = false;
                        KEEP(p, check_leaf(c, err));
                        int q = prop_num(c, "id", INT32_MAX, &s->audio_id, &has, err);
                        if (q == 0)
                                q = dv_xml_missing_attr(c, "id", err);
                        else if (q > 0 && s->audio_id == 0)
                                q = value_error(err, c, "id", "0", "audio ids start at 1");
                        KEEP(p, q);
                        KEEP(r, p);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        return r;
}

static int parse_audio(const xmlNode *n, struct domain_audio *a, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("id", "type"), NULL, err);
        a->line = LINE(n);
        bool has = false;
        int q = prop_num(n, "id", INT32_MAX, &a->id, &has, err);
        if (q == 0)
                q = dv_xml_missing_attr(n, "id", err);
        else if (q > 0 && a->id == 0)
                q = value_error(err, n, "id", "0", "audio ids start at 1");
        KEEP(r, q);
        KEEP(r, prop_word(n, "type", true, &a->type, err));
        /* <input>/<output> tune a real backend's streams. */
        dv_xml_foreach_child(c, n) KEEP(r, unsupported_in(c, n, err));
        return r;
}

static int parse_vsock(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        struct domain_vsock *v = &def->vsock;
        int r = check_attrs(n, ATTRS("model"), NULL, err);
        v->line = LINE(n);
        v->cid_auto = DOMAIN_TRI_UNSET;
        KEEP(r, prop_word(n, "model", false, &v->model, err));
        KEEP(r, check_once(n, ATTRS("cid"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "cid")) {
                        int p = check_attrs(c, ATTRS("auto", "address"), NULL, err);
                        KEEP(p, check_leaf(c, err));
                        KEEP(p, prop_tristate(c, "auto", &v->cid_auto, err));
                        /* 0-2 are the hypervisor's, the reserved and the host's. */
                        uint64_t cid;
                        int q = dv_xml_prop_u64(c, "address", 3, UINT32_MAX - 1, &cid, err);
                        if (q > 0) {
                                v->has_cid = true;
                                v->cid = (unsigned)cid;
                        }
                        KEEP(p, q);
                        KEEP(r, p);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        def->has_vsock = true;
        return r;
}

static int parse_iommu(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        struct domain_iommu *m = &def->iommu;
        int r = check_attrs(n, ATTRS("model"), NULL, err);
        m->line = LINE(n);
        m->intremap = m->caching_mode = m->eim = m->iotlb = DOMAIN_TRI_UNSET;
        KEEP(r, prop_word(n, "model", true, &m->model, err));
        KEEP(r, check_once(n, ATTRS("driver"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "driver")) {
                        int p = check_attrs(
                                c, ATTRS("intremap", "caching_mode", "eim", "iotlb", "aw_bits"),
                                NULL, err);
                        KEEP(p, check_leaf(c, err));
                        KEEP(p, prop_tristate(c, "intremap", &m->intremap, err));
                        KEEP(p, prop_tristate(c, "caching_mode", &m->caching_mode, err));
                        KEEP(p, prop_tristate(c, "eim", &m->eim, err));
                        KEEP(p, prop_tristate(c, "iotlb", &m->iotlb, err));
                        KEEP(p, prop_uint(c, "aw_bits", 1, 64, &m->aw_bits, err));
                        KEEP(r, p);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        def->has_iommu = true;
        return r;
}

static int parse_channel(const xmlNode *n, struct domain_channel *ch, struct dv_error *err) {
        int r = check_attrs(n, ATTRS("type"), NULL, err);
        ch->line = LINE(n);
        KEEP(r, prop_word(n, "type", true, &ch->type, err));
        KEEP(r, check_once(n, ATTRS("source", "target"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "source")) {
                        int p = check_attrs(c, ATTRS("mode", "path"), NULL, err);
                        dv_xml_foreach_child(cc, c) {
                                if (!ignore_if_listed(cc, ATTRS("seclabel"), err))
                                        KEEP(p, unsupported_in(cc, c, err));
                        }
                        KEEP(p, prop_word(c, "mode", false, &ch->source_mode, err));
                        if (prop_path(c, "path", &ch->source_path, err) < 0)
                                p = -EINVAL;
                        /* A running domain's dumpxml shows the socket libvirt made for it. */
                        if (p >= 0 && ch->source_path &&
                            (strncmp(ch->source_path, "/run/libvirt/", 13) == 0 ||
                             strncmp(ch->source_path, "/var/lib/libvirt/qemu/channel/", 30) == 0)) {
                                dv_error_warn(err, LINE(c),
                                              "<source path='%s'> is a socket libvirt made and "
                                              "is ignored",
                                              ch->source_path);
                                free(ch->source_path);
                                ch->source_path = NULL;
                        }
                        KEEP(r, p);
                } else if (dv_xml_is(c, "target")) {
                        /* state: whether a running guest has the port open. */
                        int p = check_attrs(c, ATTRS("type", "name"), ATTRS("state"), err);
                        KEEP(p, check_leaf(c, err));
                        KEEP(p, prop_word(c, "type", true, &ch->target_type, err));
                        KEEP(p, prop_word(c, "name", false, &ch->target_name, err));
                        if (p >= 0 && ch->target_name && ch->target_name[0] == '.')
                                p = value_error(err, c, "name", ch->target_name,
                                                "a channel name may not start with '.'");
                        KEEP(r, p);
                } else if (ignore_if_listed(c, DEVICE_IGNORED, err))
                        continue;
                else
                        KEEP(r, unsupported_in(c, n, err));
        }
        if (r >= 0 && !ch->target_type)
                r = dv_error_add(err, -EINVAL, LINE(n), "a <channel> needs a <target type=...>");
        return r;
}

/* ---- devices ------------------------------------------------------------------------ */

/* Devices libvirt adds on its own (controllers, balloon, channels, ...): declvirt's
 * drivers choose their own and the operator is told these are not used. */
#define DEVICES_IGNORED \
        ATTRS("controller", "memballoon", "rng", "channel", "sound", "audio", "watchdog", "panic")
/* The QEMU driver maps these (or refuses them, naming what it lacks); the container and Xen
 * drivers choose their own and the operator is told these are not used. */
#define DEVICES_QEMU ATTRS("hub", "iommu", "vsock")
#define DEVICES_REFUSED                                                                    \
        ATTRS("hostdev", "redirdev", "redirfilter", "smartcard", "parallel", "tpm", "hub", \
              "shmem", "memory", "iommu", "vsock", "crypto", "lease", "nvram")

/* Parses one device into a new element of an array; the element is dropped when
 * parsing fails, so that the arrays only ever hold parsed devices. */
#define PARSE_DEVICE(array, n_array, c, fn, done, err, r)                              \
        do {                                                                           \
                int _g = 0;                                                            \
                __typeof__(array) _d =                                                 \
                        grow(&(array), &(n_array), sizeof(*(array)), (c), (err), &_g); \
                if (!_d) {                                                             \
                        KEEP(r, _g);                                                   \
                        break;                                                         \
                }                                                                      \
                int _p = fn((c), _d, (err));                                           \
                if (_p < 0) {                                                          \
                        done(_d);                                                      \
                        (n_array)--;                                                   \
                        KEEP(r, _p);                                                   \
                }                                                                      \
        } while (0)

static void nothing_done(void *p) {
        (void)p;
}

/* One of the devices only a QEMU guest takes (DEVICES_IGNORED and DEVICES_QEMU). */
static int parse_qemu_device(const xmlNode *c, struct domain_def *def, struct dv_error *err) {
        int r = 0;
        if (dv_xml_is(c, "controller"))
                PARSE_DEVICE(def->controllers, def->n_controllers, c, parse_controller,
                             controller_done, err, r);
        else if (dv_xml_is(c, "channel"))
                PARSE_DEVICE(def->channels, def->n_channels, c, parse_channel, channel_done, err,
                             r);
        else if (dv_xml_is(c, "sound"))
                PARSE_DEVICE(def->sounds, def->n_sounds, c, parse_sound, sound_done, err, r);
        else if (dv_xml_is(c, "audio"))
                PARSE_DEVICE(def->audios, def->n_audios, c, parse_audio, audio_done, err, r);
        else if (dv_xml_is(c, "hub"))
                PARSE_DEVICE(def->hubs, def->n_hubs, c, parse_hub, hub_done, err, r);
        else if (dv_xml_is(c, "watchdog"))
                PARSE_DEVICE(def->watchdogs, def->n_watchdogs, c, parse_watchdog, watchdog_done,
                             err, r);
        else if (dv_xml_is(c, "rng"))
                PARSE_DEVICE(def->rngs, def->n_rngs, c, parse_rng, rng_done, err, r);
        else if (dv_xml_is(c, "panic"))
                PARSE_DEVICE(def->panics, def->n_panics, c, parse_panic, panic_done, err, r);
        else if (dv_xml_is(c, "memballoon"))
                r = parse_memballoon(c, def, err);
        else if (dv_xml_is(c, "vsock"))
                r = parse_vsock(c, def, err);
        else if (dv_xml_is(c, "iommu"))
                r = parse_iommu(c, def, err);
        return r;
}

static int parse_devices(const xmlNode *n, struct domain_def *def, struct dv_error *err) {
        int r = check_attrs(n, NULL, NULL, err);
        bool qemu = def->type == DOMAIN_TYPE_KVM || def->type == DOMAIN_TYPE_QEMU;
        if (qemu)
                KEEP(r, check_once(n, ATTRS("memballoon", "vsock", "iommu"), err));
        KEEP(r, check_once(n, ATTRS("emulator"), err));
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "emulator"))
                        KEEP(r, parse_path_elem(c, &def->emulator, err));
                else if (dv_xml_is(c, "disk"))
                        PARSE_DEVICE(def->disks, def->n_disks, c, parse_disk, disk_done, err, r);
                else if (dv_xml_is(c, "filesystem"))
                        PARSE_DEVICE(def->filesystems, def->n_filesystems, c, parse_fs, fs_done,
                                     err, r);
                else if (dv_xml_is(c, "interface"))
                        PARSE_DEVICE(def->interfaces, def->n_interfaces, c, parse_net, net_done,
                                     err, r);
                else if (dv_xml_is(c, "serial"))
                        PARSE_DEVICE(def->serials, def->n_serials, c, parse_chr, chr_done, err, r);
                else if (dv_xml_is(c, "console"))
                        PARSE_DEVICE(def->consoles, def->n_consoles, c, parse_chr, chr_done, err,
                                     r);
                else if (dv_xml_is(c, "input"))
                        PARSE_DEVICE(def->inputs, def->n_inputs, c, parse_input, nothing_done, err,
                                     r);
                else if (dv_xml_is(c, "graphics"))
                        PARSE_DEVICE(def->graphics, def->n_graphics, c, parse_graphics,
                                     graphics_done, err, r);
                else if (dv_xml_is(c, "video"))
                        PARSE_DEVICE(def->videos, def->n_videos, c, parse_video, nothing_done, err,
                                     r);
                else if (qemu && dv_xml_name_in(c, DEVICES_IGNORED))
                        KEEP(r, parse_qemu_device(c, def, err));
                else if (qemu && dv_xml_name_in(c, DEVICES_QEMU))
                        KEEP(r, parse_qemu_device(c, def, err));
                else if (ignore_if_listed(c, DEVICES_IGNORED, err))
                        continue;
                else if (dv_xml_name_in(c, DEVICES_REFUSED))
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, LINE(c),
                                             "element <%s> is not supported", NAME(c)));
                else
                        KEEP(r, dv_error_add(err, -EINVAL, LINE(c),
                                             "unknown element <%s> in <devices>", ENAME(c)));
        }
        return r;
}

/* ---- the domain --------------------------------------------------------------------- */

/* Tuning and bookkeeping that libvirt writes or that only libvirt's own drivers act on. */
#define DOMAIN_IGNORED                                                                            \
        ATTRS("genid", "vcpus", "iothreads", "iothreadids", "defaultiothread", "numatune",        \
              "memoryBacking", "resource", "sysinfo", "pm", "perf", "on_lockfailure", "seclabel", \
              "throttlegroups")
#define DOMAIN_REFUSED ATTRS("keywrap", "launchSecurity")

static int parse_child(const xmlNode *c, struct domain_def *def, struct dv_error *err) {
        if (dv_xml_is(c, "name")) {
                def->name_line = LINE(c);
                return leaf_text(c, false, &def->name, err);
        }
        if (dv_xml_is(c, "uuid"))
                return parse_uuid(c, &def->uuid, err);
        if (dv_xml_is(c, "title"))
                return parse_title(c, &def->title, err);
        if (dv_xml_is(c, "description"))
                return leaf_text(c, true, &def->description, err);
        if (dv_xml_is(c, "metadata"))
                return parse_metadata(c, err);
        if (dv_xml_is(c, "maxMemory")) {
                def->max_memory_line = LINE(c);
                int r = parse_memory(c, ATTRS("unit", "slots"), &def->max_memory_kib, err);
                int q = prop_uint(c, "slots", 0, UINT32_MAX, &def->max_memory_slots, err);
                if (q == 0)
                        q = dv_xml_missing_attr(c, "slots", err);
                KEEP(r, q);
                def->has_max_memory = r >= 0;
                return r;
        }
        if (dv_xml_is(c, "memory")) {
                def->memory_line = LINE(c);
                int r = parse_memory(c, ATTRS("unit"), &def->memory_kib, err);
                def->has_memory = r >= 0;
                return r;
        }
        if (dv_xml_is(c, "currentMemory")) {
                def->current_memory_line = LINE(c);
                int r = parse_memory(c, ATTRS("unit"), &def->current_memory_kib, err);
                def->has_current_memory = r >= 0;
                return r;
        }
        if (dv_xml_is(c, "vcpu")) {
                def->vcpu_line = LINE(c);
                return parse_vcpu(c, def, err);
        }
        if (dv_xml_is(c, "bootloader")) {
                def->has_bootloader = true;
                def->bootloader_line = LINE(c);
                int r = leaf_text(c, false, &def->bootloader, err);
                if (r >= 0 && *def->bootloader)
                        r = check_path(c, NULL, def->bootloader, err);
                return r;
        }
        if (dv_xml_is(c, "bootloader_args"))
                return leaf_text(c, true, &def->bootloader_args, err);
        if (dv_xml_is(c, "os"))
                return parse_os(c, def, err);
        if (dv_xml_is(c, "idmap"))
                return parse_idmap(c, def, err);
        if (dv_xml_is(c, "features"))
                return parse_features(c, def, err);
        if (dv_xml_is(c, "cpu"))
                return parse_cpu(c, &def->cpu, err);
        if (dv_xml_is(c, "clock"))
                return parse_clock(c, &def->clock, err);
        if (dv_xml_is(c, "on_poweroff"))
                return parse_lifecycle(c, &def->on_poweroff, &def->on_poweroff_line, err);
        if (dv_xml_is(c, "on_reboot"))
                return parse_lifecycle(c, &def->on_reboot, &def->on_reboot_line, err);
        if (dv_xml_is(c, "on_crash"))
                return parse_lifecycle(c, &def->on_crash, &def->on_crash_line, err);
        if (dv_xml_is(c, "devices"))
                return parse_devices(c, def, err);
        if (dv_xml_is(c, "memtune") || dv_xml_is(c, "cputune") || dv_xml_is(c, "blkiotune"))
                return domain_tune_parse(c, def, err); /* model/domain-tune.c */
        if (dv_xml_is_policy(c))
                return 0; /* model/policy.c reads it */
        if (ignore_if_listed(c, DOMAIN_IGNORED, err))
                return 0;
        if (c->ns || dv_str_in(DOMAIN_REFUSED, NAME(c)))
                /* qemu:commandline and friends bypass everything declvirt checks. */
                return dv_error_add(err, -EOPNOTSUPP, LINE(c), "element <%s> is not supported",
                                    ENAME(c));
        return dv_error_add(err, -EINVAL, LINE(c), "unknown element <%s> in <domain>", NAME(c));
}

int domain_def_parse(const void *root_node, struct domain_def **ret, struct dv_error *err) {
        const xmlNode *root = root_node;
        _cleanup_(domain_def_freep) struct domain_def *def = calloc(1, sizeof(*def));
        if (!def)
                return -ENOMEM;
        def->line = LINE(root);
        def->os.line = def->line;

        /* id: the number of a running domain. */
        int r = check_attrs(root, ATTRS("type"), ATTRS("id"), err);
        _cleanup_free_ char *type = NULL;
        int q = dv_xml_prop_required(root, "type", &type, err);
        if (q >= 0) {
                int t = domain_type_from_string(type);
                if (t < 0)
                        q = dv_error_add(err, -EOPNOTSUPP, LINE(root),
                                         "domain type '%s' is not supported", type);
                else
                        def->type = t;
        }
        KEEP(r, q);
        KEEP(r, check_once(root,
                           ATTRS("name", "uuid", "title", "description", "metadata", "maxMemory",
                                 "memory", "currentMemory", "vcpu", "bootloader", "bootloader_args",
                                 "os", "idmap", "features", "cpu", "clock", "on_poweroff",
                                 "on_reboot", "on_crash", "devices"),
                           err));
        dv_xml_foreach_child(c, root) KEEP(r, parse_child(c, def, err));
        if (r < 0)
                return r;
        r = domain_def_validate(def, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(def);
        return 0;
}
