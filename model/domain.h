/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain definitions: libvirt's <domain> format for QEMU/KVM, containers and Xen.
 * Fields the user did not write stay absent (NULL, 0 = UNSET, has_* false) so that
 * the planner compares only what was written; effective values come from accessors. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "model/enum.h"
#include "model/object.h"

enum domain_type {
        DOMAIN_TYPE_KVM,
        DOMAIN_TYPE_QEMU,
        DOMAIN_TYPE_LXC,
        DOMAIN_TYPE_XEN,
        _DOMAIN_TYPE_MAX,
};
DV_ENUM_DECL(domain_type);

/* The enums below keep 0 for "not written". */
enum domain_os_type {
        DOMAIN_OS_UNSET,
        DOMAIN_OS_HVM,
        DOMAIN_OS_XEN,   /* Xen PV */
        DOMAIN_OS_LINUX, /* old name of Xen PV, kept as written */
        DOMAIN_OS_XENPVH,
        DOMAIN_OS_EXE, /* containers */
        _DOMAIN_OS_TYPE_MAX,
};
DV_ENUM_DECL(domain_os_type);

enum domain_firmware {
        DOMAIN_FIRMWARE_UNSET,
        DOMAIN_FIRMWARE_BIOS,
        DOMAIN_FIRMWARE_EFI,
        _DOMAIN_FIRMWARE_MAX
};
DV_ENUM_DECL(domain_firmware);

enum domain_loader_type {
        DOMAIN_LOADER_UNSET,
        DOMAIN_LOADER_ROM,
        DOMAIN_LOADER_PFLASH,
        _DOMAIN_LOADER_TYPE_MAX
};
DV_ENUM_DECL(domain_loader_type);

enum domain_boot_dev {
        DOMAIN_BOOT_UNSET,
        DOMAIN_BOOT_HD,
        DOMAIN_BOOT_CDROM,
        DOMAIN_BOOT_FD,
        DOMAIN_BOOT_NETWORK,
        _DOMAIN_BOOT_DEV_MAX,
};
DV_ENUM_DECL(domain_boot_dev);
#define DOMAIN_MAX_BOOT_DEVS 4

enum domain_lifecycle {
        DOMAIN_LIFECYCLE_UNSET,
        DOMAIN_LIFECYCLE_DESTROY,
        DOMAIN_LIFECYCLE_RESTART,
        DOMAIN_LIFECYCLE_PRESERVE,
        DOMAIN_LIFECYCLE_RENAME_RESTART,
        DOMAIN_LIFECYCLE_COREDUMP_DESTROY, /* on_crash only */
        DOMAIN_LIFECYCLE_COREDUMP_RESTART, /* on_crash only */
        _DOMAIN_LIFECYCLE_MAX,
};
DV_ENUM_DECL(domain_lifecycle);

enum domain_placement {
        DOMAIN_PLACEMENT_UNSET,
        DOMAIN_PLACEMENT_STATIC,
        DOMAIN_PLACEMENT_AUTO,
        _DOMAIN_PLACEMENT_MAX
};
DV_ENUM_DECL(domain_placement);

/* <features> children declvirt keeps, in libvirt's output order. */
enum domain_feature {
        DOMAIN_FEATURE_ACPI,
        DOMAIN_FEATURE_APIC,
        DOMAIN_FEATURE_PAE,
        DOMAIN_FEATURE_HAP,
        DOMAIN_FEATURE_VIRIDIAN,
        DOMAIN_FEATURE_PRIVNET,
        DOMAIN_FEATURE_PVSPINLOCK,
        DOMAIN_FEATURE_PMU,
        DOMAIN_FEATURE_VMPORT,
        DOMAIN_FEATURE_SMM,
        DOMAIN_FEATURE_VMCOREINFO,
        DOMAIN_FEATURE_HTM,
        DOMAIN_FEATURE_NESTED_HV,
        DOMAIN_FEATURE_CCF_ASSIST,
        _DOMAIN_FEATURE_MAX,
};
DV_ENUM_DECL(domain_feature);

/* A feature's value: not written, written without a state (<acpi/>), or with
 * state='on'/'off' (apic: eoi='on'/'off'). */
/* <features><ioapic driver=>: where the guest's I/O APIC is emulated (kvm and qemu). */
enum domain_ioapic {
        DOMAIN_IOAPIC_UNSET,
        DOMAIN_IOAPIC_KVM,
        DOMAIN_IOAPIC_QEMU,
        _DOMAIN_IOAPIC_MAX
};
DV_ENUM_DECL(domain_ioapic);

enum domain_feature_state {
        DOMAIN_FEATURE_ABSENT,
        DOMAIN_FEATURE_PRESENT,
        DOMAIN_FEATURE_ON,
        DOMAIN_FEATURE_OFF,
};

enum domain_cpu_mode {
        DOMAIN_CPU_MODE_UNSET,
        DOMAIN_CPU_MODE_CUSTOM,
        DOMAIN_CPU_MODE_HOST_MODEL,
        DOMAIN_CPU_MODE_HOST_PASSTHROUGH,
        DOMAIN_CPU_MODE_MAXIMUM,
        _DOMAIN_CPU_MODE_MAX,
};
DV_ENUM_DECL(domain_cpu_mode);
enum domain_cpu_match {
        DOMAIN_CPU_MATCH_UNSET,
        DOMAIN_CPU_MATCH_MINIMUM,
        DOMAIN_CPU_MATCH_EXACT,
        DOMAIN_CPU_MATCH_STRICT,
        _DOMAIN_CPU_MATCH_MAX
};
DV_ENUM_DECL(domain_cpu_match);
enum domain_cpu_check {
        DOMAIN_CPU_CHECK_UNSET,
        DOMAIN_CPU_CHECK_NONE,
        DOMAIN_CPU_CHECK_PARTIAL,
        DOMAIN_CPU_CHECK_FULL,
        _DOMAIN_CPU_CHECK_MAX
};
DV_ENUM_DECL(domain_cpu_check);
enum domain_cpu_fallback {
        DOMAIN_CPU_FALLBACK_UNSET,
        DOMAIN_CPU_FALLBACK_ALLOW,
        DOMAIN_CPU_FALLBACK_FORBID,
        _DOMAIN_CPU_FALLBACK_MAX
};
DV_ENUM_DECL(domain_cpu_fallback);
enum domain_cpu_policy {
        DOMAIN_CPU_POLICY_UNSET,
        DOMAIN_CPU_POLICY_FORCE,
        DOMAIN_CPU_POLICY_REQUIRE,
        DOMAIN_CPU_POLICY_OPTIONAL,
        DOMAIN_CPU_POLICY_DISABLE,
        DOMAIN_CPU_POLICY_FORBID,
        _DOMAIN_CPU_POLICY_MAX,
};
DV_ENUM_DECL(domain_cpu_policy);

enum domain_clock_offset {
        DOMAIN_CLOCK_UNSET,
        DOMAIN_CLOCK_UTC,
        DOMAIN_CLOCK_LOCALTIME,
        DOMAIN_CLOCK_TIMEZONE,
        DOMAIN_CLOCK_VARIABLE,
        DOMAIN_CLOCK_ABSOLUTE,
        _DOMAIN_CLOCK_OFFSET_MAX,
};
DV_ENUM_DECL(domain_clock_offset);
enum domain_clock_basis {
        DOMAIN_CLOCK_BASIS_UNSET,
        DOMAIN_CLOCK_BASIS_UTC,
        DOMAIN_CLOCK_BASIS_LOCALTIME,
        _DOMAIN_CLOCK_BASIS_MAX
};
DV_ENUM_DECL(domain_clock_basis);
enum domain_timer_name {
        DOMAIN_TIMER_UNSET,
        DOMAIN_TIMER_PLATFORM,
        DOMAIN_TIMER_RTC,
        DOMAIN_TIMER_TSC,
        DOMAIN_TIMER_HPET,
        DOMAIN_TIMER_PIT,
        DOMAIN_TIMER_ARMVTIMER,
        DOMAIN_TIMER_KVMCLOCK,
        DOMAIN_TIMER_HYPERVCLOCK,
        _DOMAIN_TIMER_NAME_MAX,
};
DV_ENUM_DECL(domain_timer_name);
enum domain_tickpolicy {
        DOMAIN_TICKPOLICY_UNSET,
        DOMAIN_TICKPOLICY_DELAY,
        DOMAIN_TICKPOLICY_CATCHUP,
        DOMAIN_TICKPOLICY_MERGE,
        DOMAIN_TICKPOLICY_DISCARD,
        _DOMAIN_TICKPOLICY_MAX,
};
DV_ENUM_DECL(domain_tickpolicy);
enum domain_timer_track {
        DOMAIN_TIMER_TRACK_UNSET,
        DOMAIN_TIMER_TRACK_BOOT,
        DOMAIN_TIMER_TRACK_GUEST,
        DOMAIN_TIMER_TRACK_WALL,
        DOMAIN_TIMER_TRACK_REALTIME,
        _DOMAIN_TIMER_TRACK_MAX,
};
DV_ENUM_DECL(domain_timer_track);

enum domain_disk_type {
        DOMAIN_DISK_TYPE_UNSET,
        DOMAIN_DISK_FILE,
        DOMAIN_DISK_BLOCK,
        DOMAIN_DISK_VOLUME,
        _DOMAIN_DISK_TYPE_MAX
};
DV_ENUM_DECL(domain_disk_type);
enum domain_disk_device {
        DOMAIN_DISK_DEVICE_UNSET,
        DOMAIN_DISK_DISK,
        DOMAIN_DISK_CDROM,
        DOMAIN_DISK_FLOPPY,
        _DOMAIN_DISK_DEVICE_MAX
};
DV_ENUM_DECL(domain_disk_device);
enum domain_disk_bus {
        DOMAIN_DISK_BUS_UNSET,
        DOMAIN_DISK_BUS_VIRTIO,
        DOMAIN_DISK_BUS_SATA,
        DOMAIN_DISK_BUS_IDE,
        DOMAIN_DISK_BUS_SCSI,
        DOMAIN_DISK_BUS_XEN,
        DOMAIN_DISK_BUS_USB,
        DOMAIN_DISK_BUS_FDC,
        _DOMAIN_DISK_BUS_MAX,
};
DV_ENUM_DECL(domain_disk_bus);
enum domain_disk_format {
        DOMAIN_DISK_FORMAT_UNSET,
        DOMAIN_DISK_FORMAT_RAW,
        DOMAIN_DISK_FORMAT_QCOW2,
        _DOMAIN_DISK_FORMAT_MAX
};
DV_ENUM_DECL(domain_disk_format);
enum domain_disk_cache {
        DOMAIN_DISK_CACHE_UNSET,
        DOMAIN_DISK_CACHE_DEFAULT,
        DOMAIN_DISK_CACHE_NONE,
        DOMAIN_DISK_CACHE_WRITETHROUGH,
        DOMAIN_DISK_CACHE_WRITEBACK,
        DOMAIN_DISK_CACHE_DIRECTSYNC,
        DOMAIN_DISK_CACHE_UNSAFE,
        _DOMAIN_DISK_CACHE_MAX,
};
DV_ENUM_DECL(domain_disk_cache);
enum domain_disk_io {
        DOMAIN_DISK_IO_UNSET,
        DOMAIN_DISK_IO_DEFAULT,
        DOMAIN_DISK_IO_NATIVE,
        DOMAIN_DISK_IO_THREADS,
        DOMAIN_DISK_IO_IO_URING,
        _DOMAIN_DISK_IO_MAX
};
DV_ENUM_DECL(domain_disk_io);
enum domain_disk_discard {
        DOMAIN_DISK_DISCARD_UNSET,
        DOMAIN_DISK_DISCARD_UNMAP,
        DOMAIN_DISK_DISCARD_IGNORE,
        _DOMAIN_DISK_DISCARD_MAX
};
DV_ENUM_DECL(domain_disk_discard);

enum domain_fs_type {
        DOMAIN_FS_TYPE_UNSET,
        DOMAIN_FS_MOUNT,
        DOMAIN_FS_BLOCK,
        DOMAIN_FS_FILE,
        DOMAIN_FS_TEMPLATE,
        _DOMAIN_FS_TYPE_MAX
};
DV_ENUM_DECL(domain_fs_type);
enum domain_fs_access {
        DOMAIN_FS_ACCESS_UNSET,
        DOMAIN_FS_ACCESS_PASSTHROUGH,
        DOMAIN_FS_ACCESS_MAPPED,
        DOMAIN_FS_ACCESS_SQUASH,
        _DOMAIN_FS_ACCESS_MAX
};
DV_ENUM_DECL(domain_fs_access);
enum domain_fs_driver {
        DOMAIN_FS_DRIVER_UNSET,
        DOMAIN_FS_DRIVER_PATH,
        DOMAIN_FS_DRIVER_HANDLE,
        DOMAIN_FS_DRIVER_LOOP,
        DOMAIN_FS_DRIVER_NBD,
        DOMAIN_FS_DRIVER_PLOOP,
        DOMAIN_FS_DRIVER_VIRTIOFS,
        _DOMAIN_FS_DRIVER_MAX,
};
DV_ENUM_DECL(domain_fs_driver);

enum domain_net_type {
        DOMAIN_NET_TYPE_UNSET,
        DOMAIN_NET_NETWORK,
        DOMAIN_NET_BRIDGE,
        DOMAIN_NET_ETHERNET,
        _DOMAIN_NET_TYPE_MAX
};
DV_ENUM_DECL(domain_net_type);

enum domain_chr_type {
        DOMAIN_CHR_TYPE_UNSET,
        DOMAIN_CHR_PTY,
        DOMAIN_CHR_FILE,
        DOMAIN_CHR_NULL,
        DOMAIN_CHR_STDIO,
        _DOMAIN_CHR_TYPE_MAX
};
DV_ENUM_DECL(domain_chr_type);

enum domain_graphics_type { DOMAIN_GRAPHICS_VNC, _DOMAIN_GRAPHICS_TYPE_MAX };
DV_ENUM_DECL(domain_graphics_type);
enum domain_listen_type {
        DOMAIN_LISTEN_UNSET,
        DOMAIN_LISTEN_ADDRESS,
        DOMAIN_LISTEN_SOCKET,
        DOMAIN_LISTEN_NONE,
        _DOMAIN_LISTEN_TYPE_MAX
};
DV_ENUM_DECL(domain_listen_type);

enum domain_video_model {
        DOMAIN_VIDEO_UNSET,
        DOMAIN_VIDEO_VGA,
        DOMAIN_VIDEO_CIRRUS,
        DOMAIN_VIDEO_VMVGA,
        DOMAIN_VIDEO_XEN,
        DOMAIN_VIDEO_QXL,
        DOMAIN_VIDEO_VIRTIO,
        DOMAIN_VIDEO_BOCHS,
        DOMAIN_VIDEO_RAMFB,
        DOMAIN_VIDEO_NONE,
        _DOMAIN_VIDEO_MODEL_MAX,
};
DV_ENUM_DECL(domain_video_model);

enum domain_input_type {
        DOMAIN_INPUT_TYPE_UNSET,
        DOMAIN_INPUT_MOUSE,
        DOMAIN_INPUT_TABLET,
        DOMAIN_INPUT_KEYBOARD,
        _DOMAIN_INPUT_TYPE_MAX
};
DV_ENUM_DECL(domain_input_type);
enum domain_input_bus {
        DOMAIN_INPUT_BUS_UNSET,
        DOMAIN_INPUT_BUS_PS2,
        DOMAIN_INPUT_BUS_USB,
        DOMAIN_INPUT_BUS_VIRTIO,
        DOMAIN_INPUT_BUS_XEN,
        _DOMAIN_INPUT_BUS_MAX
};
DV_ENUM_DECL(domain_input_bus);

/* Tri-state for yes/no and on/off attributes. */
enum domain_tristate { DOMAIN_TRI_UNSET = -1, DOMAIN_TRI_NO = 0, DOMAIN_TRI_YES = 1 };

struct domain_initenv {
        char *name;
        char *value;
};

struct domain_os {
        enum domain_os_type type;
        char *arch; /* NULL when not written */
        char *machine;
        enum domain_firmware firmware;
        bool has_loader;
        struct {
                char *path; /* may be NULL: <loader readonly='yes'/> */
                enum domain_tristate readonly, secure, stateless;
                enum domain_loader_type type;
        } loader;
        bool has_nvram;
        struct {
                char *path;
                char *template_path;
        } nvram;
        /* <firmware><feature enabled='yes|no' name='secure-boot|enrolled-keys'/>: what the
         * automatically chosen firmware must (or must not) offer; with has_fw_features,
         * UNSET for a feature not written; without, neither is written. */
        bool has_fw_features;
        enum domain_tristate fw_secure_boot, fw_enrolled_keys;
        char *kernel;
        char *initrd;
        char *cmdline;
        enum domain_boot_dev boot[DOMAIN_MAX_BOOT_DEVS];
        size_t n_boot;
        /* Containers (os type exe). */
        char *init;
        char **initargs; /* NULL-terminated; NULL when none */
        struct domain_initenv *initenv;
        size_t n_initenv;
        char *initdir;
        char *inituser;
        char *initgroup;
        int line, type_line, boot_line, init_line;
};

struct domain_idmap {
        uint32_t start, target, count;
        int line;
};

struct domain_cpu_feature {
        enum domain_cpu_policy policy;
        char *name;
        int line;
};

struct domain_cpu {
        bool present;
        enum domain_cpu_mode mode;
        enum domain_cpu_match match;
        enum domain_cpu_check check;
        enum domain_tristate migratable;
        char *model;
        enum domain_cpu_fallback fallback;
        char *vendor;
        bool has_topology;
        unsigned sockets, dies, cores, threads; /* dies: 0 when not written */
        struct domain_cpu_feature *features;
        size_t n_features;
        int line, topology_line;
};

struct domain_timer {
        enum domain_timer_name name;
        enum domain_tristate present;
        enum domain_tickpolicy tickpolicy;
        enum domain_timer_track track;
        int line;
};

struct domain_clock {
        bool present;
        enum domain_clock_offset offset;
        char *timezone;
        char *adjustment; /* seconds with optional sign, or "reset" */
        enum domain_clock_basis basis;
        bool has_start;
        uint64_t start;
        struct domain_timer *timers;
        size_t n_timers;
        int line;
};

struct domain_disk {
        enum domain_disk_type type;     /* unset: libvirt's default, file */
        enum domain_disk_device device; /* unset: disk */
        struct {
                char *name; /* qemu; Xen: phy, tap, tap2, file, qdisk */
                enum domain_disk_format format;
                enum domain_disk_cache cache;
                enum domain_disk_io io;
                enum domain_disk_discard discard;
        } driver;
        bool has_source;
        struct {
                char *file;   /* type file */
                char *dev;    /* type block */
                char *pool;   /* type volume */
                char *volume; /* type volume */
        } source;
        char *target_dev;
        enum domain_disk_bus target_bus;
        bool readonly;
        bool shareable;
        char *serial;
        unsigned boot_order; /* 0: not written */
        int line, source_line, target_line, boot_line;
};

struct domain_fs {
        enum domain_fs_type type; /* unset: mount */
        enum domain_fs_access accessmode;
        struct {
                enum domain_fs_driver type;
                char *format; /* raw, qcow2, ... (loop/nbd) */
                bool wrpolicy_immediate;
        } driver;
        char *source; /* dir= (mount), dev= (block), file= (file), name= (template) */
        char *target_dir;
        bool readonly;
        int line, source_line, target_line;
};

struct domain_net {
        enum domain_net_type type;
        char *mac; /* lower case; NULL when not written */
        char *source_network;
        char *source_bridge;
        char *model;
        char *target_dev;
        unsigned boot_order;
        int line, target_line, boot_line;
};

/* <serial> and <console>. */
struct domain_chr {
        enum domain_chr_type type; /* unset: pty */
        char *source_path;         /* file: the log file */
        enum domain_tristate append;
        char *target_type; /* isa-serial, ...; console: serial, virtio, xen, lxc, ... */
        bool has_target_port;
        unsigned target_port;
        int line;
};

struct domain_graphics {
        enum domain_graphics_type type;
        bool has_port;
        int port; /* -1: automatic */
        enum domain_tristate autoport;
        bool has_websocket;
        int websocket;
        enum domain_listen_type listen_type;
        char *listen; /* address */
        char *socket;
        char *keymap;
        char *passwd;
        int line;
};

struct domain_video {
        enum domain_video_model model;
        int line;
};

struct domain_input {
        enum domain_input_type type;
        enum domain_input_bus bus;
        int line;
};

/* Devices libvirt adds to a QEMU guest (controllers, balloon, channels, ...). Models and
 * types are kept as written: the QEMU driver maps the ones it knows and refuses the rest. */
enum domain_controller_type {
        DOMAIN_CONTROLLER_TYPE_UNSET,
        DOMAIN_CONTROLLER_IDE,
        DOMAIN_CONTROLLER_FDC,
        DOMAIN_CONTROLLER_SCSI,
        DOMAIN_CONTROLLER_SATA,
        DOMAIN_CONTROLLER_VIRTIO_SERIAL,
        DOMAIN_CONTROLLER_USB,
        DOMAIN_CONTROLLER_PCI,
        DOMAIN_CONTROLLER_CCID,
        DOMAIN_CONTROLLER_XENBUS,
        DOMAIN_CONTROLLER_ISA,
        _DOMAIN_CONTROLLER_TYPE_MAX,
};
DV_ENUM_DECL(domain_controller_type);

struct domain_controller {
        enum domain_controller_type type;
        bool has_index;
        unsigned index;
        char *model;      /* NULL: the driver's default */
        char *model_name; /* pci: <model name='...'/> */
        bool has_ports, has_vectors, has_master, has_chassis, has_port;
        unsigned ports, vectors;   /* usb ports, virtio-serial ports and vectors */
        unsigned master_startport; /* usb companion: <master startport='N'/> */
        unsigned chassis, port;    /* pci: <target chassis='N' port='0xNN'/> */
        int line;
};

struct domain_memballoon {
        char *model; /* virtio, none, ... */
        enum domain_tristate autodeflate, free_page_reporting;
        bool has_stats_period;
        unsigned stats_period; /* seconds */
        int line;
};

struct domain_rng {
        char *model;         /* virtio */
        char *backend_model; /* random, builtin, egd */
        char *backend_path;  /* random: /dev/urandom or /dev/random; NULL: not written */
        bool has_rate;
        unsigned rate_bytes, rate_period; /* period in ms, 0: not written */
        int line;
};

struct domain_watchdog {
        char *model;  /* i6300esb, itco, ib700, diag288 */
        char *action; /* NULL: reset */
        int line;
};

struct domain_panic {
        char *model; /* NULL: the machine's default */
        int line;
};

struct domain_hub {
        char *type; /* usb */
        int line;
};

struct domain_sound {
        char *model;       /* ich9, ich6, ac97, usb, ... */
        char **codecs;     /* NULL-terminated <codec type=...>; NULL: none written */
        unsigned audio_id; /* <audio id='N'/>; 0: not written */
        int line;
};

struct domain_audio {
        unsigned id;
        char *type; /* none, spice, ... */
        int line;
};

struct domain_vsock {
        char *model; /* virtio; NULL: virtio */
        enum domain_tristate cid_auto;
        bool has_cid;
        unsigned cid;
        int line;
};

struct domain_iommu {
        char *model; /* intel, smmuv3, virtio, amd */
        enum domain_tristate intremap, caching_mode, eim, iotlb;
        unsigned aw_bits; /* 0: not written */
        int line;
};

/* <channel>: a named port of the virtio-serial controller. */
struct domain_channel {
        char *type;        /* unix, pty, spicevmc, ... */
        char *source_mode; /* bind, connect; NULL: not written */
        char *source_path; /* NULL: the driver's own socket */
        char *target_type; /* virtio, guestfwd, xen */
        char *target_name; /* org.qemu.guest_agent.0, ... */
        int line;
};

/* <memtune>, <cputune>, <blkiotune> (model/domain-tune.c): resource limits the drivers
 * apply through the domain's cgroup (drivers/domain/cgroup.c). Sizes in KiB as libvirt
 * keeps them. */
#define DOMAIN_MAX_CPUS 1024
struct domain_cpuset {
        uint64_t w[DOMAIN_MAX_CPUS / 64];
};
struct domain_vcpupin {
        unsigned vcpu;
        char *cpuset; /* as written: "0-3,^2" */
        int line;
};
struct domain_blkio_dev {
        char *path; /* a block device node */
        bool has_weight, has_read_bytes, has_write_bytes, has_read_iops, has_write_iops;
        unsigned weight;
        uint64_t read_bytes_sec, write_bytes_sec, read_iops_sec, write_iops_sec;
        int line;
};
struct domain_tune {
        /* <memtune> */
        bool has_memtune;
        bool has_hard_limit, has_soft_limit, has_swap_hard_limit, has_min_guarantee;
        uint64_t hard_limit_kib, soft_limit_kib, swap_hard_limit_kib, min_guarantee_kib;
        int memtune_line, hard_limit_line, soft_limit_line, swap_hard_limit_line;
        int min_guarantee_line;
        /* <cputune>; quotas are signed (-1: no limit, as libvirt writes it) */
        bool has_cputune;
        bool has_shares, has_period, has_quota, has_global_period, has_global_quota;
        bool has_emulator_period, has_emulator_quota;
        uint64_t shares, period, global_period, emulator_period;
        int64_t quota, global_quota, emulator_quota;
        int cputune_line, shares_line, period_line, quota_line, global_line, emulator_line;
        struct domain_vcpupin *vcpupins;
        size_t n_vcpupins;
        char *emulatorpin; /* cpuset as written, NULL when absent */
        int emulatorpin_line;
        /* <blkiotune> */
        bool has_blkiotune, has_blkio_weight;
        unsigned blkio_weight;
        int blkiotune_line, blkio_weight_line;
        struct domain_blkio_dev *blkio_devs;
        size_t n_blkio_devs;
};

struct domain_def {
        enum domain_type type;
        int id; /* formatting only: libvirt's id='N' of a running domain, 0 none; never parsed */
        char *name;
        char *uuid; /* canonical lower-case form; NULL when not written */
        char *title;
        char *description;
        bool has_max_memory;
        uint64_t max_memory_kib;
        unsigned max_memory_slots;
        bool has_memory;
        uint64_t memory_kib;
        bool has_current_memory;
        uint64_t current_memory_kib;
        bool has_vcpu;
        unsigned vcpu;
        unsigned vcpu_current; /* 0: not written */
        enum domain_placement vcpu_placement;
        char *vcpu_cpuset;
        bool has_bootloader;
        char *bootloader; /* may be "" (<bootloader/>: the toolstack's default) */
        char *bootloader_args;
        bool has_os;
        struct domain_os os;
        struct domain_idmap *uid_map, *gid_map;
        size_t n_uid_map, n_gid_map;
        bool has_features; /* <features/> was written, possibly empty */
        enum domain_feature_state features[_DOMAIN_FEATURE_MAX];
        enum domain_ioapic ioapic;
        int ioapic_line;
        struct domain_cpu cpu;
        struct domain_clock clock;
        enum domain_lifecycle on_poweroff, on_reboot, on_crash;
        char *emulator;
        struct domain_disk *disks;
        size_t n_disks;
        struct domain_fs *filesystems;
        size_t n_filesystems;
        struct domain_net *interfaces;
        size_t n_interfaces;
        struct domain_chr *serials;
        size_t n_serials;
        struct domain_chr *consoles;
        size_t n_consoles;
        struct domain_input *inputs;
        size_t n_inputs;
        struct domain_graphics *graphics;
        size_t n_graphics;
        struct domain_video *videos;
        size_t n_videos;
        struct domain_controller *controllers;
        size_t n_controllers;
        struct domain_channel *channels;
        size_t n_channels;
        struct domain_sound *sounds;
        size_t n_sounds;
        struct domain_audio *audios;
        size_t n_audios;
        struct domain_hub *hubs;
        size_t n_hubs;
        struct domain_watchdog *watchdogs;
        size_t n_watchdogs;
        struct domain_rng *rngs;
        size_t n_rngs;
        struct domain_panic *panics;
        size_t n_panics;
        bool has_memballoon, has_vsock, has_iommu;
        struct domain_memballoon memballoon;
        struct domain_vsock vsock;
        struct domain_iommu iommu;
        struct domain_tune tune;
        int line, name_line, memory_line, current_memory_line, max_memory_line, vcpu_line;
        int bootloader_line, idmap_line;
        int on_poweroff_line, on_reboot_line, on_crash_line;
};

/* root is the <domain> xmlNode. Validates as part of parsing; ignored elements are
 * reported through dv_error_warn. */
int domain_def_parse(const void *root, struct domain_def **ret, struct dv_error *err);
int domain_def_validate(const struct domain_def *def, struct dv_error *err);
/* virsh dumpxml layout; the policy (may be NULL) goes inside <metadata>. */
void domain_def_format(struct buf *b, const struct domain_def *def, const struct dv_policy *policy);
void domain_def_free(struct domain_def *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct domain_def *, domain_def_free)
const char *domain_def_name(const struct domain_def *def);
const char *domain_def_uuid(const struct domain_def *def);

/* model/domain-tune.c: the children of <domain> it reads, their validation against the
 * rest of the definition (vcpu indexes), and the memory they hold. */
int domain_tune_parse(const void *node, struct domain_def *def, struct dv_error *err);
int domain_tune_validate(const struct domain_def *def, struct dv_error *err);
void domain_tune_done(struct domain_tune *t);
/* "0-3,^2,8" into a set; -EINVAL when malformed or a CPU is >= DOMAIN_MAX_CPUS, -ERANGE
 * when the set is empty. */
int domain_cpuset_parse(const char *s, struct domain_cpuset *ret);
static inline bool domain_cpuset_has(const struct domain_cpuset *c, unsigned cpu) {
        return cpu < DOMAIN_MAX_CPUS && (c->w[cpu / 64] >> (cpu % 64)) & 1;
}
/* The set in the kernel's list form ("0-2,5"), into buf. */
void domain_cpuset_format(const struct domain_cpuset *c, char *buf, size_t size);

/* Effective values: what was written, else libvirt's default. */
unsigned domain_def_vcpus(const struct domain_def *def);                    /* 1 */
unsigned domain_def_vcpus_current(const struct domain_def *def);            /* all vcpus */
uint64_t domain_def_current_memory_kib(const struct domain_def *def);       /* memory */
enum domain_lifecycle domain_def_on_poweroff(const struct domain_def *def); /* destroy */
enum domain_lifecycle domain_def_on_reboot(const struct domain_def *def);   /* restart */
enum domain_lifecycle domain_def_on_crash(const struct domain_def *def);    /* destroy */
/* True when the feature was written and not turned off. */
bool domain_def_has_feature(const struct domain_def *def, enum domain_feature f);
/* True when the os type is Xen PV (xen, linux, xenpvh). */
bool domain_def_is_xen_pv(const struct domain_def *def);
enum domain_disk_type domain_disk_type(const struct domain_disk *d);     /* file */
enum domain_disk_device domain_disk_device(const struct domain_disk *d); /* disk */
enum domain_fs_type domain_fs_type(const struct domain_fs *fs);          /* mount */
enum domain_chr_type domain_chr_type(const struct domain_chr *c);        /* pty */
