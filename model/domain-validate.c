/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Validation of a parsed <domain>: what no single element shows (required parts,
 * memory relations, unique targets and boot orders, what each domain type needs). */
#include <errno.h>
#include <string.h>

#include "model/domain.h"

static int validate_memory(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        if (!def->has_memory)
                return dv_error_add(err, -EINVAL, def->line, "a domain needs a <memory>");
        if (def->memory_kib == 0)
                KEEP(r, dv_error_add(err, -EINVAL, def->memory_line,
                                     "<memory> must be greater than 0"));
        if (def->has_current_memory && def->current_memory_kib == 0)
                KEEP(r, dv_error_add(err, -EINVAL, def->current_memory_line,
                                     "<currentMemory> must be greater than 0"));
        if (def->has_current_memory && def->current_memory_kib > def->memory_kib)
                KEEP(r,
                     dv_error_add(err, -EINVAL, def->current_memory_line,
                                  "<currentMemory> (%llu KiB) is larger than <memory> (%llu KiB)",
                                  (unsigned long long)def->current_memory_kib,
                                  (unsigned long long)def->memory_kib));
        if (def->has_max_memory && def->max_memory_kib < def->memory_kib)
                KEEP(r, dv_error_add(err, -EINVAL, def->max_memory_line,
                                     "<maxMemory> (%llu KiB) is smaller than <memory> (%llu KiB)",
                                     (unsigned long long)def->max_memory_kib,
                                     (unsigned long long)def->memory_kib));
        return r;
}

static int validate_vcpu(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        unsigned n = domain_def_vcpus(def);
        if (def->has_vcpu && (def->vcpu < 1 || def->vcpu > 4096))
                KEEP(r, dv_error_add(err, -EINVAL, def->vcpu_line,
                                     "<vcpu> %u is out of range 1..4096", def->vcpu));
        if (def->vcpu_current > n)
                KEEP(r, dv_error_add(err, -EINVAL, def->vcpu_line,
                                     "<vcpu current='%u'> is more than the %u vcpus",
                                     def->vcpu_current, n));
        const struct domain_cpu *cpu = &def->cpu;
        if (cpu->has_topology) {
                uint64_t total = (uint64_t)cpu->sockets * (cpu->dies ? cpu->dies : 1) * cpu->cores *
                                 cpu->threads;
                if (total != n)
                        KEEP(r,
                             dv_error_add(err, -EINVAL, cpu->topology_line,
                                          "<topology> gives %llu CPUs but the domain has %u vcpus",
                                          (unsigned long long)total, n));
        }
        if (cpu->mode == DOMAIN_CPU_MODE_CUSTOM && !cpu->model)
                KEEP(r,
                     dv_error_add(err, -EINVAL, cpu->line, "<cpu mode='custom'> needs a <model>"));
        if (cpu->model && cpu->mode && cpu->mode != DOMAIN_CPU_MODE_CUSTOM &&
            cpu->mode != DOMAIN_CPU_MODE_HOST_MODEL)
                KEEP(r, dv_error_add(err, -EINVAL, cpu->line, "<cpu mode='%s'> takes no <model>",
                                     domain_cpu_mode_to_string(cpu->mode)));
        return r;
}

static const char *os_name(const struct domain_os *os) {
        return domain_os_type_to_string(os->type);
}

/* Which os types each domain type runs, and what goes with each os type. */
static int validate_os(const struct domain_def *def, struct dv_error *err) {
        const struct domain_os *os = &def->os;
        const char *dt = domain_type_to_string(def->type);
        int r = 0;
        if (!def->has_os)
                return dv_error_add(err, -EINVAL, def->line,
                                    "a domain needs an <os> with a <type>");
        if (!os->type)
                return dv_error_add(err, -EINVAL, os->line, "<os> needs a <type>");

        bool pv = domain_def_is_xen_pv(def), exe = os->type == DOMAIN_OS_EXE;
        switch (def->type) {
        case DOMAIN_TYPE_KVM:
        case DOMAIN_TYPE_QEMU:
                if (os->type != DOMAIN_OS_HVM)
                        return dv_error_add(err, -EINVAL, os->type_line,
                                            "os type '%s' does not fit a %s domain (use 'hvm')",
                                            os_name(os), dt);
                break;
        case DOMAIN_TYPE_LXC:
                if (!exe)
                        return dv_error_add(err, -EINVAL, os->type_line,
                                            "os type '%s' does not fit an lxc domain (use 'exe')",
                                            os_name(os));
                break;
        case DOMAIN_TYPE_XEN:
                if (exe)
                        return dv_error_add(err, -EINVAL, os->type_line,
                                            "os type 'exe' does not fit a xen domain (use 'hvm', "
                                            "'xen' or 'xenpvh')");
                break;
        default:
                return dv_error_add(err, -EINVAL, def->line, "domain type %d is not supported",
                                    (int)def->type);
        }

        if (exe) {
                /* A container runs a program; firmware and kernels do not apply. */
                const char *wrong = os->kernel       ? "kernel"
                                    : os->initrd     ? "initrd"
                                    : os->cmdline    ? "cmdline"
                                    : os->has_loader ? "loader"
                                    : os->has_nvram  ? "nvram"
                                    : os->n_boot     ? "boot"
                                    : os->firmware   ? "os firmware"
                                    : os->machine    ? "type machine"
                                                     : NULL;
                if (wrong)
                        KEEP(r, dv_error_add(err, -EINVAL, os->line,
                                             "<%s> does not fit os type 'exe'", wrong));
                if (!os->init && def->type == DOMAIN_TYPE_LXC)
                        KEEP(r, dv_error_add(err, -EINVAL, os->line,
                                             "an lxc domain needs <init> in <os>"));
        } else {
                const char *wrong = os->init        ? "init"
                                    : os->initargs  ? "initarg"
                                    : os->n_initenv ? "initenv"
                                    : os->initdir   ? "initdir"
                                    : os->inituser  ? "inituser"
                                                    : NULL;
                if (wrong)
                        KEEP(r, dv_error_add(err, -EINVAL, os->init ? os->init_line : os->line,
                                             "<%s> only fits os type 'exe' (containers)", wrong));
        }
        if (os->initrd && !os->kernel)
                KEEP(r, dv_error_add(err, -EINVAL, os->line, "<initrd> needs a <kernel>"));

        if (pv) {
                /* Xen PV guests boot a kernel, directly or through a bootloader such as pygrub. */
                const char *wrong = os->n_boot       ? "boot"
                                    : os->has_loader ? "loader"
                                    : os->has_nvram  ? "nvram"
                                    : os->firmware   ? "os firmware"
                                                     : NULL;
                if (wrong)
                        KEEP(r, dv_error_add(err, -EINVAL, os->line,
                                             "<%s> does not fit a Xen PV domain (os type '%s')",
                                             wrong, os_name(os)));
                if (!os->kernel && !def->has_bootloader)
                        KEEP(r,
                             dv_error_add(
                                     err, -EINVAL, os->line,
                                     "a Xen PV domain needs a <kernel> in <os> or a <bootloader>"));
                if (os->arch && !streq(os->arch, "i686") && !streq(os->arch, "x86_64") &&
                    !streq(os->arch, "ia64"))
                        KEEP(r, dv_error_add(err, -EINVAL, os->type_line,
                                             "arch '%s' does not fit a Xen PV domain", os->arch));
                if (os->machine && !streq(os->machine, "xenpv") && !streq(os->machine, "xenfv") &&
                    !streq(os->machine, "xenpvh"))
                        KEEP(r, dv_error_add(err, -EINVAL, os->type_line,
                                             "machine '%s' does not fit a Xen PV domain (xenpv, "
                                             "xenfv or xenpvh)",
                                             os->machine));
        } else if (def->has_bootloader || def->bootloader_args)
                KEEP(r, dv_error_add(err, -EINVAL,
                                     def->bootloader_line ? def->bootloader_line : def->line,
                                     "<bootloader> only fits Xen PV domains (os type 'xen', "
                                     "'linux' or 'xenpvh')"));
        if (def->bootloader_args && !def->has_bootloader)
                KEEP(r, dv_error_add(err, -EINVAL, def->line,
                                     "<bootloader_args> needs a <bootloader>"));
        return r;
}

/* Boot orders are one sequence over disks and interfaces, and libvirt refuses them
 * next to <os><boot dev>. */
static int check_boot_order(unsigned order, int line, const struct domain_def *def, size_t disk_end,
                            size_t net_end, struct dv_error *err) {
        for (size_t i = 0; i < disk_end; i++)
                if (def->disks[i].boot_order == order)
                        return dv_error_add(err, -EINVAL, line,
                                            "boot order %u is used twice (first on line %d)", order,
                                            def->disks[i].boot_line);
        for (size_t i = 0; i < net_end; i++)
                if (def->interfaces[i].boot_order == order)
                        return dv_error_add(err, -EINVAL, line,
                                            "boot order %u is used twice (first on line %d)", order,
                                            def->interfaces[i].boot_line);
        if (def->os.n_boot)
                return dv_error_add(
                        err, -EINVAL, line,
                        "<boot order> on a device cannot be combined with <os><boot dev> (line %d)",
                        def->os.boot_line);
        return 0;
}

static int validate_disks(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                enum domain_disk_device dev = domain_disk_device(d);
                if (!d->target_dev) {
                        KEEP(r, dv_error_add(err, -EINVAL, d->line,
                                             "a <disk> needs a <target dev='...'>"));
                        continue;
                }
                for (size_t j = 0; j < i; j++)
                        if (def->disks[j].target_dev &&
                            streq(def->disks[j].target_dev, d->target_dev))
                                KEEP(r, dv_error_add(err, -EINVAL, d->target_line,
                                                     "disk target dev '%s' is used twice (first on "
                                                     "line %d)",
                                                     d->target_dev, def->disks[j].target_line));
                if (domain_disk_type(d) == DOMAIN_DISK_VOLUME && d->has_source &&
                    (!d->source.pool || !d->source.volume))
                        KEEP(r,
                             dv_error_add(
                                     err, -EINVAL, d->source_line,
                                     "<source> of a volume disk needs both 'pool' and 'volume'"));
                /* A cdrom or floppy may be empty (no medium); a disk may not. */
                if (!d->has_source && dev == DOMAIN_DISK_DISK)
                        KEEP(r, dv_error_add(err, -EINVAL, d->line, "disk '%s' needs a <source>",
                                             d->target_dev));
                if ((d->target_bus == DOMAIN_DISK_BUS_FDC) != (dev == DOMAIN_DISK_FLOPPY) &&
                    d->target_bus)
                        KEEP(r,
                             dv_error_add(err, -EINVAL, d->target_line,
                                          "bus 'fdc' goes with device 'floppy', and only there"));
                if (d->boot_order)
                        KEEP(r, check_boot_order(d->boot_order, d->boot_line, def, i, 0, err));
        }
        return r;
}

static int validate_interfaces(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        for (size_t i = 0; i < def->n_interfaces; i++) {
                const struct domain_net *n = &def->interfaces[i];
                if (n->type == DOMAIN_NET_NETWORK && !n->source_network)
                        KEEP(r, dv_error_add(err, -EINVAL, n->line,
                                             "a network interface needs <source network='...'>"));
                if (n->type == DOMAIN_NET_BRIDGE && !n->source_bridge)
                        KEEP(r, dv_error_add(err, -EINVAL, n->line,
                                             "a bridge interface needs <source bridge='...'>"));
                for (size_t j = 0; j < i; j++) {
                        const struct domain_net *o = &def->interfaces[j];
                        if (n->target_dev && o->target_dev && streq(n->target_dev, o->target_dev))
                                KEEP(r, dv_error_add(err, -EINVAL, n->target_line,
                                                     "interface target dev '%s' is used twice "
                                                     "(first on line %d)",
                                                     n->target_dev, o->target_line));
                        if (n->mac && o->mac && streq(n->mac, o->mac))
                                KEEP(r,
                                     dv_error_add(err, -EINVAL, n->line,
                                                  "MAC address %s is used twice (first on line %d)",
                                                  n->mac, o->line));
                }
                if (n->boot_order)
                        KEEP(r, check_boot_order(n->boot_order, n->boot_line, def, def->n_disks, i,
                                                 err));
        }
        return r;
}

static int validate_filesystems(const struct domain_def *def, struct dv_error *err) {
        bool lxc = def->type == DOMAIN_TYPE_LXC;
        size_t roots = 0;
        int r = 0;
        for (size_t i = 0; i < def->n_filesystems; i++) {
                const struct domain_fs *fs = &def->filesystems[i];
                enum domain_fs_type t = domain_fs_type(fs);
                if (!fs->source)
                        KEEP(r, dv_error_add(err, -EINVAL, fs->line,
                                             "a <filesystem> needs a <source>"));
                if (!fs->target_dir) {
                        KEEP(r, dv_error_add(err, -EINVAL, fs->line,
                                             "a <filesystem> needs a <target dir='...'>"));
                        continue;
                }
                /* Only containers mount block devices, image files and templates themselves. */
                if (t != DOMAIN_FS_MOUNT && !lxc)
                        KEEP(r, dv_error_add(err, -EINVAL, fs->line,
                                             "filesystem type '%s' only fits lxc domains",
                                             domain_fs_type_to_string(t)));
                /* In a container the target is a path; in a VM it is a mount tag. */
                if (lxc && fs->target_dir[0] != '/')
                        KEEP(r, dv_error_add(err, -EINVAL, fs->target_line,
                                             "<target dir='%s'>: a container's target must be an "
                                             "absolute path",
                                             fs->target_dir));
                for (size_t j = 0; j < i; j++)
                        if (def->filesystems[j].target_dir &&
                            streq(def->filesystems[j].target_dir, fs->target_dir))
                                KEEP(r,
                                     dv_error_add(err, -EINVAL, fs->target_line,
                                                  "filesystem target dir '%s' is used twice (first "
                                                  "on line %d)",
                                                  fs->target_dir, def->filesystems[j].target_line));
                if (streq(fs->target_dir, "/"))
                        roots++;
        }
        if (lxc && roots == 0)
                KEEP(r, dv_error_add(err, -EINVAL, def->line,
                                     "an lxc domain needs a <filesystem> with <target dir='/'>"));
        if ((def->n_uid_map || def->n_gid_map) && !lxc)
                KEEP(r,
                     dv_error_add(err, -EINVAL, def->idmap_line, "<idmap> only fits lxc domains"));
        if (lxc && (def->n_uid_map != 0) != (def->n_gid_map != 0))
                KEEP(r, dv_error_add(err, -EINVAL, def->idmap_line,
                                     "<idmap> needs both <uid> and <gid> entries"));
        return r;
}

static int validate_chr(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        const struct domain_chr *lists[] = {def->serials, def->consoles};
        size_t counts[] = {def->n_serials, def->n_consoles};
        for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < counts[k]; i++) {
                        const struct domain_chr *c = &lists[k][i];
                        if (domain_chr_type(c) == DOMAIN_CHR_FILE && !c->source_path)
                                KEEP(r, dv_error_add(err, -EINVAL, c->line,
                                                     "a file <%s> needs <source path='...'>",
                                                     k == 0 ? "serial" : "console"));
                }
        return r;
}

static int validate_graphics(const struct domain_def *def, struct dv_error *err) {
        if (def->n_graphics > 1)
                return dv_error_add(err, -EINVAL, def->graphics[1].line,
                                    "only one <graphics> is supported (the first is on line %d)",
                                    def->graphics[0].line);
        return 0;
}

/* References between the devices libvirt adds: a sound's <audio id> names an <audio>, a
 * channel name or path is used once. */
static int validate_qemu_devices(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        for (size_t i = 0; i < def->n_audios; i++)
                for (size_t j = 0; j < i; j++)
                        if (def->audios[j].id == def->audios[i].id)
                                KEEP(r, dv_error_add(err, -EINVAL, def->audios[i].line,
                                                     "audio id %u is used twice (first on line "
                                                     "%d)",
                                                     def->audios[i].id, def->audios[j].line));
        for (size_t i = 0; i < def->n_sounds; i++) {
                const struct domain_sound *s = &def->sounds[i];
                bool found = !s->audio_id;
                for (size_t j = 0; j < def->n_audios && !found; j++)
                        found = def->audios[j].id == s->audio_id;
                if (!found)
                        KEEP(r, dv_error_add(err, -EINVAL, s->line,
                                             "<sound> names <audio id='%u'>, which is not "
                                             "defined",
                                             s->audio_id));
        }
        for (size_t i = 0; i < def->n_channels; i++) {
                const struct domain_channel *c = &def->channels[i];
                for (size_t j = 0; j < i; j++) {
                        const struct domain_channel *o = &def->channels[j];
                        if (c->target_name && streq_ptr(c->target_name, o->target_name))
                                KEEP(r, dv_error_add(err, -EINVAL, c->line,
                                                     "channel name '%s' is used twice (first on "
                                                     "line %d)",
                                                     c->target_name, o->line));
                        if (c->source_path && streq_ptr(c->source_path, o->source_path))
                                KEEP(r, dv_error_add(err, -EINVAL, c->line,
                                                     "channel path '%s' is used twice (first on "
                                                     "line %d)",
                                                     c->source_path, o->line));
                }
        }
        return r;
}

int domain_def_validate(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        if (!def->name)
                KEEP(r, dv_error_add(err, -EINVAL, def->line, "a domain needs a <name>"));
        else {
                const char *why = dv_name_problem(DV_KIND_DOMAIN, def->name);
                if (why)
                        KEEP(r,
                             dv_error_add(err, -EINVAL, def->name_line ? def->name_line : def->line,
                                          "domain name '%s': %s", def->name, why));
        }
        KEEP(r, validate_memory(def, err));
        KEEP(r, validate_vcpu(def, err));
        KEEP(r, validate_os(def, err));
        KEEP(r, validate_disks(def, err));
        KEEP(r, validate_interfaces(def, err));
        KEEP(r, validate_filesystems(def, err));
        KEEP(r, validate_chr(def, err));
        KEEP(r, validate_graphics(def, err));
        KEEP(r, validate_qemu_devices(def, err));
        KEEP(r, domain_tune_validate(def, err));
        return r;
}
