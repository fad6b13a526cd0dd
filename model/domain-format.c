/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting a domain_def the way `virsh dumpxml` lays it out: libvirt's element
 * and attribute order, single quotes, two-space indent; only what the user wrote. */
#include <inttypes.h>
#include <stdio.h>

#include "model/domain.h"

static void attr_tristate(struct buf *b, const char *name, enum domain_tristate v, const char *yes,
                          const char *no) {
        if (v != DOMAIN_TRI_UNSET)
                xml_attr(b, name, v == DOMAIN_TRI_YES ? yes : no);
}

static void attr_uint(struct buf *b, const char *name, unsigned v) {
        xml_attr_u64(b, name, v);
}

/* <name unit='KiB'>v</name> with libvirt's attribute order (slots first). */
static void kib_elem(struct buf *b, const char *name, uint64_t kib, const unsigned *slots) {
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, kib);
        xml_open(b, name);
        if (slots)
                attr_uint(b, "slots", *slots);
        xml_attr(b, "unit", "KiB");
        xml_text_end(b, name, num);
}

static void format_vcpu(struct buf *b, const struct domain_def *def) {
        if (!def->has_vcpu)
                return;
        char num[16];
        snprintf(num, sizeof(num), "%u", def->vcpu);
        xml_open(b, "vcpu");
        xml_attr(b, "placement", domain_placement_to_string(def->vcpu_placement));
        xml_attr(b, "cpuset", def->vcpu_cpuset);
        if (def->vcpu_current)
                attr_uint(b, "current", def->vcpu_current);
        xml_text_end(b, "vcpu", num);
}

static void u64_elem(struct buf *b, const char *name, bool has, uint64_t v) {
        if (has)
                xml_text_elemf(b, name, "%" PRIu64, v);
}

static void i64_elem(struct buf *b, const char *name, bool has, int64_t v) {
        if (has)
                xml_text_elemf(b, name, "%" PRId64, v);
}

/* <blkiotune> and <memtune>, where libvirt puts them: after <currentMemory>. */
static void format_mem_tune(struct buf *b, const struct domain_tune *t) {
        if (t->has_blkiotune) {
                xml_open(b, "blkiotune");
                xml_open_end(b);
                u64_elem(b, "weight", t->has_blkio_weight, t->blkio_weight);
                for (size_t i = 0; i < t->n_blkio_devs; i++) {
                        const struct domain_blkio_dev *d = &t->blkio_devs[i];
                        xml_open(b, "device");
                        xml_open_end(b);
                        xml_text_elem(b, "path", d->path);
                        u64_elem(b, "weight", d->has_weight, d->weight);
                        u64_elem(b, "read_iops_sec", d->has_read_iops, d->read_iops_sec);
                        u64_elem(b, "write_iops_sec", d->has_write_iops, d->write_iops_sec);
                        u64_elem(b, "read_bytes_sec", d->has_read_bytes, d->read_bytes_sec);
                        u64_elem(b, "write_bytes_sec", d->has_write_bytes, d->write_bytes_sec);
                        xml_close(b, "device");
                }
                xml_close(b, "blkiotune");
        }
        if (t->has_memtune) {
                xml_open(b, "memtune");
                xml_open_end(b);
                if (t->has_hard_limit)
                        kib_elem(b, "hard_limit", t->hard_limit_kib, NULL);
                if (t->has_soft_limit)
                        kib_elem(b, "soft_limit", t->soft_limit_kib, NULL);
                if (t->has_min_guarantee)
                        kib_elem(b, "min_guarantee", t->min_guarantee_kib, NULL);
                if (t->has_swap_hard_limit)
                        kib_elem(b, "swap_hard_limit", t->swap_hard_limit_kib, NULL);
                xml_close(b, "memtune");
        }
}

/* <cputune> after <vcpu>, children in libvirt's order. */
static void format_cputune(struct buf *b, const struct domain_tune *t) {
        if (!t->has_cputune)
                return;
        xml_open(b, "cputune");
        xml_open_end(b);
        u64_elem(b, "shares", t->has_shares, t->shares);
        u64_elem(b, "period", t->has_period, t->period);
        i64_elem(b, "quota", t->has_quota, t->quota);
        u64_elem(b, "global_period", t->has_global_period, t->global_period);
        i64_elem(b, "global_quota", t->has_global_quota, t->global_quota);
        u64_elem(b, "emulator_period", t->has_emulator_period, t->emulator_period);
        i64_elem(b, "emulator_quota", t->has_emulator_quota, t->emulator_quota);
        for (size_t i = 0; i < t->n_vcpupins; i++) {
                xml_open(b, "vcpupin");
                attr_uint(b, "vcpu", t->vcpupins[i].vcpu);
                xml_attr(b, "cpuset", t->vcpupins[i].cpuset);
                xml_empty_end(b);
        }
        if (t->emulatorpin) {
                xml_open(b, "emulatorpin");
                xml_attr(b, "cpuset", t->emulatorpin);
                xml_empty_end(b);
        }
        xml_close(b, "cputune");
}

static void format_os(struct buf *b, const struct domain_def *def) {
        const struct domain_os *os = &def->os;
        if (!def->has_os)
                return;
        xml_open(b, "os");
        xml_attr(b, "firmware", domain_firmware_to_string(os->firmware));
        xml_open_end(b);
        xml_open(b, "type");
        xml_attr(b, "arch", os->arch);
        xml_attr(b, "machine", os->machine);
        xml_text_end(b, "type", domain_os_type_to_string(os->type));
        xml_text_elem(b, "init", os->init);
        for (size_t i = 0; os->initargs && os->initargs[i]; i++)
                xml_text_elem(b, "initarg", os->initargs[i]);
        for (size_t i = 0; i < os->n_initenv; i++) {
                xml_open(b, "initenv");
                xml_attr(b, "name", os->initenv[i].name);
                xml_text_end(b, "initenv", os->initenv[i].value);
        }
        xml_text_elem(b, "initdir", os->initdir);
        xml_text_elem(b, "inituser", os->inituser);
        xml_text_elem(b, "initgroup", os->initgroup);
        if (os->has_fw_features) {
                xml_open(b, "firmware");
                xml_open_end(b);
                const struct {
                        const char *name;
                        enum domain_tristate v;
                } f[] = {{"enrolled-keys", os->fw_enrolled_keys},
                         {"secure-boot", os->fw_secure_boot}};
                for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                        if (f[i].v == DOMAIN_TRI_UNSET)
                                continue;
                        xml_open(b, "feature");
                        attr_tristate(b, "enabled", f[i].v, "yes", "no");
                        xml_attr(b, "name", f[i].name);
                        xml_empty_end(b);
                }
                xml_close(b, "firmware");
        }
        if (os->has_loader) {
                xml_open(b, "loader");
                attr_tristate(b, "readonly", os->loader.readonly, "yes", "no");
                attr_tristate(b, "secure", os->loader.secure, "yes", "no");
                xml_attr(b, "type", domain_loader_type_to_string(os->loader.type));
                attr_tristate(b, "stateless", os->loader.stateless, "yes", "no");
                if (os->loader.path)
                        xml_text_end(b, "loader", os->loader.path);
                else
                        xml_empty_end(b);
        }
        if (os->has_nvram) {
                xml_open(b, "nvram");
                xml_attr(b, "template", os->nvram.template_path);
                if (os->nvram.path)
                        xml_text_end(b, "nvram", os->nvram.path);
                else
                        xml_empty_end(b);
        }
        xml_text_elem(b, "kernel", os->kernel);
        xml_text_elem(b, "initrd", os->initrd);
        xml_text_elem(b, "cmdline", os->cmdline);
        for (size_t i = 0; i < os->n_boot; i++) {
                xml_open(b, "boot");
                xml_attr(b, "dev", domain_boot_dev_to_string(os->boot[i]));
                xml_empty_end(b);
        }
        xml_close(b, "os");
}

static void format_idmap_list(struct buf *b, const char *name, const struct domain_idmap *m,
                              size_t n) {
        for (size_t i = 0; i < n; i++) {
                xml_open(b, name);
                attr_uint(b, "start", m[i].start);
                attr_uint(b, "target", m[i].target);
                attr_uint(b, "count", m[i].count);
                xml_empty_end(b);
        }
}

static void format_features(struct buf *b, const struct domain_def *def) {
        if (!def->has_features)
                return;
        bool any = def->ioapic != DOMAIN_IOAPIC_UNSET;
        for (int f = 0; f < _DOMAIN_FEATURE_MAX; f++)
                any = any || def->features[f] != DOMAIN_FEATURE_ABSENT;
        xml_open(b, "features");
        if (!any) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        for (int f = 0; f < _DOMAIN_FEATURE_MAX; f++) {
                enum domain_feature_state s = def->features[f];
                /* libvirt's order: <ioapic> after <smm>, before <vmcoreinfo>. */
                if (f == DOMAIN_FEATURE_VMCOREINFO && def->ioapic) {
                        xml_open(b, "ioapic");
                        xml_attr(b, "driver", domain_ioapic_to_string(def->ioapic));
                        xml_empty_end(b);
                }
                if (s == DOMAIN_FEATURE_ABSENT)
                        continue;
                xml_open(b, domain_feature_to_string(f));
                if (s == DOMAIN_FEATURE_ON || s == DOMAIN_FEATURE_OFF)
                        xml_attr(b, f == DOMAIN_FEATURE_APIC ? "eoi" : "state",
                                 s == DOMAIN_FEATURE_ON ? "on" : "off");
                xml_empty_end(b);
        }
        xml_close(b, "features");
}

static void format_cpu(struct buf *b, const struct domain_cpu *cpu) {
        if (!cpu->present)
                return;
        xml_open(b, "cpu");
        xml_attr(b, "mode", domain_cpu_mode_to_string(cpu->mode));
        xml_attr(b, "match", domain_cpu_match_to_string(cpu->match));
        xml_attr(b, "check", domain_cpu_check_to_string(cpu->check));
        attr_tristate(b, "migratable", cpu->migratable, "on", "off");
        if (!cpu->model && !cpu->vendor && !cpu->has_topology && cpu->n_features == 0) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        if (cpu->model) {
                xml_open(b, "model");
                xml_attr(b, "fallback", domain_cpu_fallback_to_string(cpu->fallback));
                xml_text_end(b, "model", cpu->model);
        }
        xml_text_elem(b, "vendor", cpu->vendor);
        if (cpu->has_topology) {
                xml_open(b, "topology");
                attr_uint(b, "sockets", cpu->sockets);
                if (cpu->dies)
                        attr_uint(b, "dies", cpu->dies);
                attr_uint(b, "cores", cpu->cores);
                attr_uint(b, "threads", cpu->threads);
                xml_empty_end(b);
        }
        for (size_t i = 0; i < cpu->n_features; i++) {
                xml_open(b, "feature");
                xml_attr(b, "policy", domain_cpu_policy_to_string(cpu->features[i].policy));
                xml_attr(b, "name", cpu->features[i].name);
                xml_empty_end(b);
        }
        xml_close(b, "cpu");
}

static void format_clock(struct buf *b, const struct domain_clock *c) {
        if (!c->present)
                return;
        xml_open(b, "clock");
        xml_attr(b, "offset", domain_clock_offset_to_string(c->offset));
        xml_attr(b, "timezone", c->timezone);
        xml_attr(b, "adjustment", c->adjustment);
        xml_attr(b, "basis", domain_clock_basis_to_string(c->basis));
        if (c->has_start)
                xml_attr_u64(b, "start", c->start);
        if (c->n_timers == 0) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        for (size_t i = 0; i < c->n_timers; i++) {
                const struct domain_timer *t = &c->timers[i];
                xml_open(b, "timer");
                xml_attr(b, "name", domain_timer_name_to_string(t->name));
                attr_tristate(b, "present", t->present, "yes", "no");
                xml_attr(b, "tickpolicy", domain_tickpolicy_to_string(t->tickpolicy));
                xml_attr(b, "track", domain_timer_track_to_string(t->track));
                xml_empty_end(b);
        }
        xml_close(b, "clock");
}

static void format_boot_order(struct buf *b, unsigned order) {
        if (!order)
                return;
        xml_open(b, "boot");
        attr_uint(b, "order", order);
        xml_empty_end(b);
}

static void format_disk(struct buf *b, const struct domain_disk *d) {
        xml_open(b, "disk");
        xml_attr(b, "type", domain_disk_type_to_string(d->type));
        xml_attr(b, "device", domain_disk_device_to_string(d->device));
        xml_open_end(b);
        if (d->driver.name || d->driver.format || d->driver.cache || d->driver.io ||
            d->driver.discard) {
                xml_open(b, "driver");
                xml_attr(b, "name", d->driver.name);
                xml_attr(b, "type", domain_disk_format_to_string(d->driver.format));
                xml_attr(b, "cache", domain_disk_cache_to_string(d->driver.cache));
                xml_attr(b, "io", domain_disk_io_to_string(d->driver.io));
                xml_attr(b, "discard", domain_disk_discard_to_string(d->driver.discard));
                xml_empty_end(b);
        }
        if (d->has_source) {
                xml_open(b, "source");
                xml_attr(b, "file", d->source.file);
                xml_attr(b, "dev", d->source.dev);
                xml_attr(b, "pool", d->source.pool);
                xml_attr(b, "volume", d->source.volume);
                xml_empty_end(b);
        }
        if (d->target_dev || d->target_bus) {
                xml_open(b, "target");
                xml_attr(b, "dev", d->target_dev);
                xml_attr(b, "bus", domain_disk_bus_to_string(d->target_bus));
                xml_empty_end(b);
        }
        if (d->readonly) {
                xml_open(b, "readonly");
                xml_empty_end(b);
        }
        if (d->shareable) {
                xml_open(b, "shareable");
                xml_empty_end(b);
        }
        xml_text_elem(b, "serial", d->serial);
        format_boot_order(b, d->boot_order);
        xml_close(b, "disk");
}

static void format_fs(struct buf *b, const struct domain_fs *fs) {
        static const char *const source_attr[] = {
                [DOMAIN_FS_MOUNT] = "dir",
                [DOMAIN_FS_BLOCK] = "dev",
                [DOMAIN_FS_FILE] = "file",
                [DOMAIN_FS_TEMPLATE] = "name",
        };
        xml_open(b, "filesystem");
        xml_attr(b, "type", domain_fs_type_to_string(fs->type));
        xml_attr(b, "accessmode", domain_fs_access_to_string(fs->accessmode));
        xml_open_end(b);
        if (fs->driver.type || fs->driver.format || fs->driver.wrpolicy_immediate) {
                xml_open(b, "driver");
                xml_attr(b, "type", domain_fs_driver_to_string(fs->driver.type));
                xml_attr(b, "format", fs->driver.format);
                if (fs->driver.wrpolicy_immediate)
                        xml_attr(b, "wrpolicy", "immediate");
                xml_empty_end(b);
        }
        if (fs->source) {
                xml_open(b, "source");
                xml_attr(b, source_attr[domain_fs_type(fs)], fs->source);
                xml_empty_end(b);
        }
        if (fs->target_dir) {
                xml_open(b, "target");
                xml_attr(b, "dir", fs->target_dir);
                xml_empty_end(b);
        }
        if (fs->readonly) {
                xml_open(b, "readonly");
                xml_empty_end(b);
        }
        xml_close(b, "filesystem");
}

static void format_net(struct buf *b, const struct domain_net *n) {
        xml_open(b, "interface");
        xml_attr(b, "type", domain_net_type_to_string(n->type));
        xml_open_end(b);
        if (n->mac) {
                xml_open(b, "mac");
                xml_attr(b, "address", n->mac);
                xml_empty_end(b);
        }
        if (n->source_network || n->source_bridge) {
                xml_open(b, "source");
                xml_attr(b, "network", n->source_network);
                xml_attr(b, "bridge", n->source_bridge);
                xml_empty_end(b);
        }
        if (n->target_dev) {
                xml_open(b, "target");
                xml_attr(b, "dev", n->target_dev);
                xml_empty_end(b);
        }
        if (n->model) {
                xml_open(b, "model");
                xml_attr(b, "type", n->model);
                xml_empty_end(b);
        }
        format_boot_order(b, n->boot_order);
        xml_close(b, "interface");
}

static void format_chr(struct buf *b, const char *name, const struct domain_chr *c) {
        xml_open(b, name);
        xml_attr(b, "type", domain_chr_type_to_string(c->type));
        if (!c->source_path && !c->target_type && !c->has_target_port) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        if (c->source_path) {
                xml_open(b, "source");
                xml_attr(b, "path", c->source_path);
                attr_tristate(b, "append", c->append, "on", "off");
                xml_empty_end(b);
        }
        if (c->target_type || c->has_target_port) {
                xml_open(b, "target");
                xml_attr(b, "type", c->target_type);
                if (c->has_target_port)
                        attr_uint(b, "port", c->target_port);
                xml_empty_end(b);
        }
        xml_close(b, name);
}

static void format_graphics(struct buf *b, const struct domain_graphics *g) {
        xml_open(b, "graphics");
        xml_attr(b, "type", domain_graphics_type_to_string(g->type));
        if (g->listen_type == DOMAIN_LISTEN_SOCKET)
                xml_attr(b, "socket", g->socket);
        if (g->has_port)
                xml_attrf(b, "port", "%d", g->port);
        attr_tristate(b, "autoport", g->autoport, "yes", "no");
        if (g->has_websocket)
                xml_attrf(b, "websocket", "%d", g->websocket);
        xml_attr(b, "listen", g->listen);
        xml_attr(b, "keymap", g->keymap);
        xml_attr(b, "passwd", g->passwd);
        if (g->listen_type == DOMAIN_LISTEN_UNSET) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        xml_open(b, "listen");
        xml_attr(b, "type", domain_listen_type_to_string(g->listen_type));
        if (g->listen_type == DOMAIN_LISTEN_ADDRESS)
                xml_attr(b, "address", g->listen);
        if (g->listen_type == DOMAIN_LISTEN_SOCKET)
                xml_attr(b, "socket", g->socket);
        xml_empty_end(b);
        xml_close(b, "graphics");
}

/* ---- devices libvirt adds to QEMU guests ---- */

static void format_controller(struct buf *b, const struct domain_controller *c) {
        xml_open(b, "controller");
        xml_attr(b, "type", domain_controller_type_to_string(c->type));
        if (c->has_index)
                attr_uint(b, "index", c->index);
        xml_attr(b, "model", c->model);
        if (c->has_ports)
                attr_uint(b, "ports", c->ports);
        if (c->has_vectors)
                attr_uint(b, "vectors", c->vectors);
        if (!c->has_master && !c->model_name && !c->has_chassis && !c->has_port) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        if (c->has_master) {
                xml_open(b, "master");
                attr_uint(b, "startport", c->master_startport);
                xml_empty_end(b);
        }
        if (c->model_name) {
                xml_open(b, "model");
                xml_attr(b, "name", c->model_name);
                xml_empty_end(b);
        }
        if (c->has_chassis || c->has_port) {
                xml_open(b, "target");
                if (c->has_chassis)
                        attr_uint(b, "chassis", c->chassis);
                if (c->has_port)
                        xml_attrf(b, "port", "0x%x", c->port);
                xml_empty_end(b);
        }
        xml_close(b, "controller");
}

static void format_channel(struct buf *b, const struct domain_channel *c) {
        xml_open(b, "channel");
        xml_attr(b, "type", c->type);
        xml_open_end(b);
        if (c->source_mode || c->source_path) {
                xml_open(b, "source");
                xml_attr(b, "mode", c->source_mode);
                xml_attr(b, "path", c->source_path);
                xml_empty_end(b);
        }
        xml_open(b, "target");
        xml_attr(b, "type", c->target_type);
        xml_attr(b, "name", c->target_name);
        xml_empty_end(b);
        xml_close(b, "channel");
}

static void format_sound(struct buf *b, const struct domain_sound *s) {
        xml_open(b, "sound");
        xml_attr(b, "model", s->model);
        if (!s->codecs && !s->audio_id) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        for (size_t i = 0; s->codecs && s->codecs[i]; i++) {
                xml_open(b, "codec");
                xml_attr(b, "type", s->codecs[i]);
                xml_empty_end(b);
        }
        if (s->audio_id) {
                xml_open(b, "audio");
                attr_uint(b, "id", s->audio_id);
                xml_empty_end(b);
        }
        xml_close(b, "sound");
}

/* An element with one or two attributes and nothing inside. */
static void format_simple(struct buf *b, const char *name, const char *a1, const char *v1,
                          const char *a2, const char *v2) {
        xml_open(b, name);
        xml_attr(b, a1, v1);
        if (a2)
                xml_attr(b, a2, v2);
        xml_empty_end(b);
}

static void format_memballoon(struct buf *b, const struct domain_memballoon *m) {
        xml_open(b, "memballoon");
        xml_attr(b, "model", m->model);
        attr_tristate(b, "autodeflate", m->autodeflate, "on", "off");
        attr_tristate(b, "freePageReporting", m->free_page_reporting, "on", "off");
        if (!m->has_stats_period) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        xml_open(b, "stats");
        attr_uint(b, "period", m->stats_period);
        xml_empty_end(b);
        xml_close(b, "memballoon");
}

static void format_rng(struct buf *b, const struct domain_rng *g) {
        xml_open(b, "rng");
        xml_attr(b, "model", g->model);
        xml_open_end(b);
        if (g->has_rate) {
                xml_open(b, "rate");
                attr_uint(b, "bytes", g->rate_bytes);
                if (g->rate_period)
                        attr_uint(b, "period", g->rate_period);
                xml_empty_end(b);
        }
        xml_open(b, "backend");
        xml_attr(b, "model", g->backend_model);
        if (g->backend_path)
                xml_text_end(b, "backend", g->backend_path);
        else
                xml_empty_end(b);
        xml_close(b, "rng");
}

static void format_iommu(struct buf *b, const struct domain_iommu *m) {
        xml_open(b, "iommu");
        xml_attr(b, "model", m->model);
        bool drv = m->intremap != DOMAIN_TRI_UNSET || m->caching_mode != DOMAIN_TRI_UNSET ||
                   m->eim != DOMAIN_TRI_UNSET || m->iotlb != DOMAIN_TRI_UNSET || m->aw_bits;
        if (!drv) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        xml_open(b, "driver");
        attr_tristate(b, "intremap", m->intremap, "on", "off");
        attr_tristate(b, "caching_mode", m->caching_mode, "on", "off");
        attr_tristate(b, "eim", m->eim, "on", "off");
        attr_tristate(b, "iotlb", m->iotlb, "on", "off");
        if (m->aw_bits)
                attr_uint(b, "aw_bits", m->aw_bits);
        xml_empty_end(b);
        xml_close(b, "iommu");
}

static void format_vsock(struct buf *b, const struct domain_vsock *v) {
        xml_open(b, "vsock");
        xml_attr(b, "model", v->model);
        if (v->cid_auto == DOMAIN_TRI_UNSET && !v->has_cid) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        xml_open(b, "cid");
        attr_tristate(b, "auto", v->cid_auto, "yes", "no");
        if (v->has_cid)
                attr_uint(b, "address", v->cid);
        xml_empty_end(b);
        xml_close(b, "vsock");
}

static void format_devices(struct buf *b, const struct domain_def *def) {
        bool any = def->emulator || def->n_disks || def->n_filesystems || def->n_interfaces ||
                   def->n_serials || def->n_consoles || def->n_inputs || def->n_graphics ||
                   def->n_videos || def->n_controllers || def->n_channels || def->n_sounds ||
                   def->n_audios || def->n_hubs || def->n_watchdogs || def->n_rngs ||
                   def->n_panics || def->has_memballoon || def->has_vsock || def->has_iommu;
        if (!any)
                return;
        xml_open(b, "devices");
        xml_open_end(b);
        xml_text_elem(b, "emulator", def->emulator);
        for (size_t i = 0; i < def->n_disks; i++)
                format_disk(b, &def->disks[i]);
        for (size_t i = 0; i < def->n_controllers; i++)
                format_controller(b, &def->controllers[i]);
        for (size_t i = 0; i < def->n_filesystems; i++)
                format_fs(b, &def->filesystems[i]);
        for (size_t i = 0; i < def->n_interfaces; i++)
                format_net(b, &def->interfaces[i]);
        for (size_t i = 0; i < def->n_serials; i++)
                format_chr(b, "serial", &def->serials[i]);
        for (size_t i = 0; i < def->n_consoles; i++)
                format_chr(b, "console", &def->consoles[i]);
        for (size_t i = 0; i < def->n_channels; i++)
                format_channel(b, &def->channels[i]);
        for (size_t i = 0; i < def->n_inputs; i++) {
                xml_open(b, "input");
                xml_attr(b, "type", domain_input_type_to_string(def->inputs[i].type));
                xml_attr(b, "bus", domain_input_bus_to_string(def->inputs[i].bus));
                xml_empty_end(b);
        }
        for (size_t i = 0; i < def->n_graphics; i++)
                format_graphics(b, &def->graphics[i]);
        for (size_t i = 0; i < def->n_sounds; i++)
                format_sound(b, &def->sounds[i]);
        for (size_t i = 0; i < def->n_audios; i++) {
                xml_open(b, "audio");
                attr_uint(b, "id", def->audios[i].id);
                xml_attr(b, "type", def->audios[i].type);
                xml_empty_end(b);
        }
        for (size_t i = 0; i < def->n_videos; i++) {
                const struct domain_video *v = &def->videos[i];
                xml_open(b, "video");
                if (!v->model) {
                        xml_empty_end(b);
                        continue;
                }
                xml_open_end(b);
                xml_open(b, "model");
                xml_attr(b, "type", domain_video_model_to_string(v->model));
                xml_empty_end(b);
                xml_close(b, "video");
        }
        for (size_t i = 0; i < def->n_hubs; i++)
                format_simple(b, "hub", "type", def->hubs[i].type, NULL, NULL);
        for (size_t i = 0; i < def->n_watchdogs; i++)
                format_simple(b, "watchdog", "model", def->watchdogs[i].model, "action",
                              def->watchdogs[i].action);
        if (def->has_memballoon)
                format_memballoon(b, &def->memballoon);
        for (size_t i = 0; i < def->n_rngs; i++)
                format_rng(b, &def->rngs[i]);
        for (size_t i = 0; i < def->n_panics; i++)
                format_simple(b, "panic", "model", def->panics[i].model, NULL, NULL);
        if (def->has_iommu)
                format_iommu(b, &def->iommu);
        if (def->has_vsock)
                format_vsock(b, &def->vsock);
        xml_close(b, "devices");
}

void domain_def_format(struct buf *b, const struct domain_def *def,
                       const struct dv_policy *policy) {
        xml_open(b, "domain");
        xml_attr(b, "type", domain_type_to_string(def->type));
        if (def->id > 0)
                xml_attrf(b, "id", "%d", def->id);
        xml_open_end(b);
        xml_text_elem(b, "name", def->name);
        xml_text_elem(b, "uuid", def->uuid);
        xml_text_elem(b, "title", def->title);
        xml_text_elem(b, "description", def->description);
        if (policy && policy->present) {
                xml_open(b, "metadata");
                xml_open_end(b);
                dv_policy_format(b, policy, DV_KIND_DOMAIN);
                xml_close(b, "metadata");
        }
        if (def->has_max_memory)
                kib_elem(b, "maxMemory", def->max_memory_kib, &def->max_memory_slots);
        if (def->has_memory)
                kib_elem(b, "memory", def->memory_kib, NULL);
        if (def->has_current_memory)
                kib_elem(b, "currentMemory", def->current_memory_kib, NULL);
        format_mem_tune(b, &def->tune);
        format_vcpu(b, def);
        format_cputune(b, &def->tune);
        if (def->has_bootloader)
                xml_text_elem(b, "bootloader", def->bootloader ? def->bootloader : "");
        xml_text_elem(b, "bootloader_args", def->bootloader_args);
        format_os(b, def);
        if (def->n_uid_map || def->n_gid_map) {
                xml_open(b, "idmap");
                xml_open_end(b);
                format_idmap_list(b, "uid", def->uid_map, def->n_uid_map);
                format_idmap_list(b, "gid", def->gid_map, def->n_gid_map);
                xml_close(b, "idmap");
        }
        format_features(b, def);
        format_cpu(b, &def->cpu);
        format_clock(b, &def->clock);
        xml_text_elem(b, "on_poweroff", domain_lifecycle_to_string(def->on_poweroff));
        xml_text_elem(b, "on_reboot", domain_lifecycle_to_string(def->on_reboot));
        xml_text_elem(b, "on_crash", domain_lifecycle_to_string(def->on_crash));
        format_devices(b, def);
        xml_close(b, "domain");
}
