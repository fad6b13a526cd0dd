/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The domain model: fixtures round-trip through parse and format to golden files that
 * libvirt's schema accepts; ignored elements warn, refused ones fail with their line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/domain.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/strv.h"

#define DIR "tests/data/model/domain"

/* ---- helpers ------------------------------------------------------------------------ */

static bool file_exists(const char *path) {
        FILE *f = fopen(path, "re");
        if (f)
                fclose(f);
        return f != NULL;
}

static struct dv_object *parse_str(const char *xml, struct dv_error *err) {
        struct dv_object *o = NULL;
        int r = dv_object_parse(xml, strlen(xml), "inline.xml", &o, err);
        if (r < 0)
                assert_null(o);
        return o;
}

/* "LINE: MESSAGE" of the first problem, or "(accepted)". */
static char *first_problem(const char *xml) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = parse_str(xml, &err);
        char *s = NULL;
        if (o)
                s = strdup("(accepted)");
        else
                assert_true(asprintf(&s, "%d: %s", dv_error_line(&err), dv_error_message(&err)) >
                            0);
        dv_object_free(o);
        dv_error_clear(&err);
        return s;
}

static char *warnings_text(const struct dv_error *err) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; i < err->n_warnings; i++)
                buf_printf(&b, "%d: %s\n", err->warnings[i].line, err->warnings[i].msg);
        char *s = buf_steal(&b);
        assert_non_null(s);
        return s;
}

static void assert_same_text(const char *what, const char *expected, const char *actual) {
        if (streq(expected, actual))
                return;
        print_message("%s differs.\n--- expected\n%s--- actual\n%s---\n", what, expected, actual);
        fail();
}

static const struct domain_def *parse_fixture(const char *name, struct dv_object **o) {
        char path[256];
        struct dv_error err = DV_ERROR_INIT;
        snprintf(path, sizeof(path), DIR "/%s.xml", name);
        int r = dv_object_parse_file(path, o, &err);
        if (r < 0) {
                dv_error_print(stderr, &err);
                fail_msg("%s refused", path);
        }
        dv_error_clear(&err);
        assert_int_equal((*o)->kind, DV_KIND_DOMAIN);
        return (*o)->def.domain;
}

/* A kvm domain around the given <devices> content (the device starts on line 6). */
#define DOMAIN_HEAD                                     \
        "<domain type='kvm'>\n<name>t</name>\n<memory " \
        "unit='MiB'>64</memory>\n<os><type>hvm</type></os>\n"
#define WITH_DEVICES(s) DOMAIN_HEAD "<devices>\n" s "\n</devices>\n</domain>\n"
/* The same for a Xen guest: the devices only the QEMU driver maps stay ignored there. */
#define XEN_WITH_DEVICES(s)                                                                 \
        "<domain type='xen'>\n<name>t</name>\n<memory "                                     \
        "unit='MiB'>64</memory>\n<os><type>hvm</type></os>\n<devices>\n" s "\n</devices>\n" \
        "</domain>\n"

/* ---- fixtures ----------------------------------------------------------------------- */

/* One fixture: parse -> format = NAME.golden.xml; the golden parses again, without
 * warnings, to the same text; the definition without its policy parses too. */
static void test_golden(void **state) {
        const char *path = *state;
        _cleanup_free_ char *golden_path = test_golden_path(path);
        _cleanup_free_ char *warn_path = test_sibling(path, ".warnings");
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse_file(path, &o, &err) < 0) {
                dv_error_print(stderr, &err);
                fail_msg("%s refused", path);
        }
        /* Warnings: exactly those of NAME.warnings, or none when there is no such file. */
        _cleanup_free_ char *warnings = warnings_text(&err);
        if (warnings[0] || file_exists(warn_path))
                test_check_golden_text(warn_path, warnings);
        dv_error_clear(&err);

        _cleanup_free_ char *out = dv_object_format(o);
        assert_non_null(out);
        test_check_golden_text(golden_path, out);

        struct dv_object *o2 = NULL;
        assert_int_equal(dv_object_parse(out, strlen(out), "formatted.xml", &o2, &err), 0);
        assert_int_equal(err.n_warnings, 0);
        _cleanup_free_ char *out2 = dv_object_format(o2);
        assert_same_text("second format", out, out2);
        assert_string_equal(o->name, o2->name);

        /* Without the policy: no <metadata>, and still a valid domain. */
        _cleanup_free_ char *def_only = dv_object_format_def(o);
        assert_null(strstr(def_only, "<metadata>"));
        struct dv_object *o3 = NULL;
        assert_int_equal(dv_object_parse(def_only, strlen(def_only), "def.xml", &o3, &err), 0);
        _cleanup_free_ char *def_only2 = dv_object_format_def(o3);
        assert_same_text("definition without policy", def_only, def_only2);

        dv_object_free(o);
        dv_object_free(o2);
        dv_object_free(o3);
        dv_error_clear(&err);
}

/* One fixture: what declvirt writes for it, with and without the policy, is valid for
 * libvirt's own schema. */
static void test_schema_valid(void **state) {
        const char *path = *state;
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        _cleanup_free_ char *with_policy = dv_object_format(o);
        _cleanup_free_ char *def_only = dv_object_format_def(o);
        dv_object_free(o);
        test_check_schema(path, def_only, "domain");
        test_check_schema(path, with_policy, "domain");
}

/* ---- what the fixtures hold --------------------------------------------------------- */

static void test_kvm_full_fields(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        const struct domain_def *d = parse_fixture("kvm-full", &o);
        assert_int_equal(d->type, DOMAIN_TYPE_KVM);
        assert_string_equal(domain_def_name(d), "web1");
        assert_string_equal(domain_def_uuid(d), "6f9a1c2e-8b3d-4e5f-9a0b-1c2d3e4f5a6b");
        assert_true(o->policy.present);
        assert_int_equal(d->memory_kib, 4ULL << 20);
        assert_int_equal(d->current_memory_kib, 3ULL << 20);
        assert_int_equal(d->max_memory_kib, 16ULL << 20);
        assert_int_equal(d->max_memory_slots, 16);
        assert_int_equal(domain_def_vcpus(d), 4);
        assert_int_equal(domain_def_vcpus_current(d), 2);
        assert_int_equal(d->vcpu_placement, DOMAIN_PLACEMENT_STATIC);
        assert_int_equal(d->os.type, DOMAIN_OS_HVM);
        assert_int_equal(d->os.firmware, DOMAIN_FIRMWARE_EFI);
        assert_string_equal(d->os.machine, "pc-q35-7.2");
        assert_int_equal(d->os.loader.readonly, DOMAIN_TRI_YES);
        assert_int_equal(d->os.loader.secure, DOMAIN_TRI_NO);
        assert_int_equal(d->os.loader.stateless, DOMAIN_TRI_UNSET);
        assert_true(domain_def_has_feature(d, DOMAIN_FEATURE_ACPI));
        assert_true(domain_def_has_feature(d, DOMAIN_FEATURE_SMM));
        assert_false(domain_def_has_feature(d, DOMAIN_FEATURE_VMPORT)); /* state='off' */
        assert_int_equal(d->features[DOMAIN_FEATURE_VMPORT], DOMAIN_FEATURE_OFF);
        assert_false(domain_def_has_feature(d, DOMAIN_FEATURE_PAE));
        assert_int_equal(d->cpu.mode, DOMAIN_CPU_MODE_CUSTOM);
        assert_string_equal(d->cpu.model, "Skylake-Client");
        assert_int_equal(d->cpu.n_features, 2);
        assert_int_equal(d->cpu.features[1].policy, DOMAIN_CPU_POLICY_DISABLE);
        assert_int_equal(d->clock.n_timers, 3);
        assert_int_equal(d->clock.timers[2].present, DOMAIN_TRI_NO);
        assert_int_equal(domain_def_on_crash(d), DOMAIN_LIFECYCLE_COREDUMP_RESTART);

        assert_int_equal(d->n_disks, 7);
        assert_int_equal(d->disks[0].driver.format, DOMAIN_DISK_FORMAT_QCOW2);
        assert_int_equal(d->disks[0].driver.cache, DOMAIN_DISK_CACHE_NONE);
        assert_int_equal(d->disks[0].boot_order, 1);
        assert_string_equal(d->disks[0].serial, "WEB1-ROOT");
        assert_int_equal(domain_disk_type(&d->disks[1]), DOMAIN_DISK_VOLUME);
        assert_string_equal(d->disks[1].source.pool, "data");
        assert_string_equal(d->disks[1].source.volume, "web1-data");
        assert_true(d->disks[1].shareable);
        assert_string_equal(d->disks[2].source.dev, "/dev/vg0/web1-logs");
        assert_int_equal(d->disks[2].target_bus, DOMAIN_DISK_BUS_SCSI);
        assert_int_equal(domain_disk_device(&d->disks[3]), DOMAIN_DISK_CDROM);
        assert_true(d->disks[3].readonly);
        assert_false(d->disks[4].has_source); /* an empty cdrom drive */
        assert_int_equal(d->disks[5].target_bus, DOMAIN_DISK_BUS_FDC);

        assert_int_equal(d->n_filesystems, 1);
        assert_int_equal(domain_fs_type(&d->filesystems[0]), DOMAIN_FS_MOUNT);
        assert_int_equal(d->filesystems[0].driver.type, DOMAIN_FS_DRIVER_PATH);

        assert_int_equal(d->n_interfaces, 3);
        assert_string_equal(d->interfaces[0].mac, "52:54:00:ab:cd:01"); /* written upper case */
        assert_string_equal(d->interfaces[0].source_network, "default");
        assert_int_equal(d->interfaces[0].boot_order, 3);
        assert_string_equal(d->interfaces[1].source_bridge, "br0");
        assert_string_equal(d->interfaces[1].target_dev, "web1-br0");
        assert_int_equal(d->interfaces[2].type, DOMAIN_NET_ETHERNET);
        assert_null(d->interfaces[2].mac);

        assert_int_equal(d->n_serials, 3);
        assert_int_equal(domain_chr_type(&d->serials[0]), DOMAIN_CHR_PTY);
        assert_string_equal(d->serials[1].source_path, "/var/log/declvirt/web1-serial1.log");
        assert_int_equal(d->serials[1].append, DOMAIN_TRI_YES);
        assert_false(d->serials[2].has_target_port);
        assert_int_equal(d->n_consoles, 2);
        assert_string_equal(d->consoles[1].target_type, "virtio");
        assert_int_equal(d->n_inputs, 3);
        assert_int_equal(d->inputs[2].bus, DOMAIN_INPUT_BUS_UNSET);
        assert_int_equal(d->n_graphics, 1);
        assert_int_equal(d->graphics[0].port, 5901);
        assert_int_equal(d->graphics[0].listen_type, DOMAIN_LISTEN_ADDRESS);
        assert_string_equal(d->graphics[0].listen, "127.0.0.1");
        assert_int_equal(d->n_videos, 1);
        assert_int_equal(d->videos[0].model, DOMAIN_VIDEO_VIRTIO);
        dv_object_free(o);
}

/* The devices libvirt adds to QEMU guests, as the QEMU driver reads them. */
static void test_qemu_devices_fields(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        const struct domain_def *d = parse_fixture("qemu-devices", &o);
        assert_int_equal(d->n_controllers, 8);
        assert_int_equal(d->controllers[0].type, DOMAIN_CONTROLLER_USB);
        assert_string_equal(d->controllers[0].model, "qemu-xhci");
        assert_true(d->controllers[0].has_ports);
        assert_int_equal(d->controllers[0].ports, 15);
        assert_int_equal(d->controllers[3].type, DOMAIN_CONTROLLER_PCI);
        assert_int_equal(d->controllers[3].index, 1);
        assert_string_equal(d->controllers[3].model_name, "pcie-root-port");
        assert_int_equal(d->controllers[3].chassis, 1);
        assert_int_equal(d->controllers[3].port, 0x10);
        assert_false(d->controllers[5].has_chassis); /* index 3, nothing written */
        assert_int_equal(d->n_channels, 2);
        assert_string_equal(d->channels[0].type, "unix");
        assert_null(d->channels[0].source_path);
        assert_string_equal(d->channels[0].target_name, "org.qemu.guest_agent.0");
        assert_string_equal(d->channels[1].source_path, "/srv/q35dev/app.sock");
        assert_int_equal(d->n_sounds, 1);
        assert_string_equal(d->sounds[0].codecs[0], "micro");
        assert_null(d->sounds[0].codecs[1]);
        assert_int_equal(d->sounds[0].audio_id, 1);
        assert_int_equal(d->n_audios, 1);
        assert_string_equal(d->audios[0].type, "none");
        assert_true(d->has_memballoon);
        assert_true(d->memballoon.has_stats_period);
        assert_int_equal(d->memballoon.stats_period, 5);
        assert_int_equal(d->n_rngs, 1);
        assert_string_equal(d->rngs[0].backend_model, "random");
        assert_string_equal(d->rngs[0].backend_path, "/dev/urandom");
        assert_int_equal(d->rngs[0].rate_bytes, 1024);
        assert_int_equal(d->rngs[0].rate_period, 2000);
        assert_string_equal(d->watchdogs[0].action, "reset");
        assert_string_equal(d->panics[0].model, "isa");
        assert_string_equal(d->hubs[0].type, "usb");
        assert_true(d->has_iommu);
        assert_int_equal(d->iommu.caching_mode, DOMAIN_TRI_YES);
        assert_int_equal(d->iommu.iotlb, DOMAIN_TRI_NO);
        assert_int_equal(d->iommu.intremap, DOMAIN_TRI_YES);
        assert_int_equal(d->iommu.eim, DOMAIN_TRI_UNSET);
        assert_int_equal(d->ioapic, DOMAIN_IOAPIC_QEMU);
        assert_true(d->has_vsock);
        assert_int_equal(d->vsock.cid_auto, DOMAIN_TRI_YES);
        assert_false(d->vsock.has_cid);
        dv_object_free(o);

        /* Problems in them are refused with their line. */
        static const struct {
                const char *xml, *expected;
        } cases[] = {
                {WITH_DEVICES("<controller index='0'/>"),
                 "6: <controller> needs the attribute 'type'"},
                {WITH_DEVICES("<controller type='floppy'/>"),
                 "6: controller type 'floppy' is not supported"},
                {WITH_DEVICES("<controller type='pci' index='1' model='pcie-root-port'>\n<target "
                              "chassis='0x1g'/></controller>"),
                 "7: <target chassis='0x1g'>: expected a number up to 255"},
                {WITH_DEVICES("<sound model='ich9'><audio id='2'/></sound>\n<audio id='1' "
                              "type='none'/>"),
                 "6: <sound> names <audio id='2'>, which is not defined"},
                {WITH_DEVICES("<audio id='1' type='none'/>\n<audio id='1' type='none'/>"),
                 "7: audio id 1 is used twice (first on line 6)"},
                {WITH_DEVICES("<channel type='unix'><target type='virtio' name='a.0'/></channel>\n"
                              "<channel type='unix'><target type='virtio' name='a.0'/></channel>"),
                 "7: channel name 'a.0' is used twice (first on line 6)"},
                {WITH_DEVICES("<channel type='unix'><target type='virtio' name='../x'/></channel>"),
                 "6: <target name='../x'>: expected up to 64 letters, digits, '-', '_' or '.'"},
                {WITH_DEVICES("<channel type='unix'><target type='virtio' name='.x'/></channel>"),
                 "6: <target name='.x'>: a channel name may not start with '.'"},
                {WITH_DEVICES("<channel type='unix'><source mode='bind' path='rel.sock'/><target "
                              "type='virtio' name='x'/></channel>"),
                 "6: <source path='rel.sock'>: not an absolute path"},
                {WITH_DEVICES("<channel type='unix'><source mode='bind'/></channel>"),
                 "6: a <channel> needs a <target type=...>"},
                {WITH_DEVICES("<rng model='virtio'/>"), "6: an <rng> needs a <backend>"},
                {WITH_DEVICES("<memballoon model='virtio'/>\n<memballoon model='none'/>"),
                 "7: element <memballoon> appears more than once in <devices> (first on line 6)"},
                {WITH_DEVICES("<vsock model='virtio'><cid address='2'/></vsock>"),
                 "6: <cid address='2'>: out of range 3..4294967294"},
                {WITH_DEVICES("<watchdog action='reset'/>"),
                 "6: <watchdog> needs the attribute 'model'"},
                {DOMAIN_HEAD "<features>\n<ioapic driver='xen'/></features>\n</domain>",
                 "6: <ioapic driver='xen'>: expected 'kvm' or 'qemu'"},
                {DOMAIN_HEAD "<features>\n<ioapic/></features>\n</domain>",
                 "6: <ioapic> needs the attribute 'driver'"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = first_problem(cases[i].xml);
                if (!streq(got, cases[i].expected))
                        fail_msg("case %zu: got '%s', expected '%s'", i, got, cases[i].expected);
        }

        /* The socket libvirt made for a running domain is its own: not kept. */
        struct dv_error err = DV_ERROR_INIT;
        o = parse_str(WITH_DEVICES("<channel type='unix'><source mode='bind' "
                                   "path='/var/lib/libvirt/qemu/channel/target/domain-3-t/"
                                   "org.qemu.guest_agent.0'/><target type='virtio' "
                                   "name='org.qemu.guest_agent.0'/></channel>"),
                      &err);
        assert_non_null(o);
        assert_null(o->def.domain->channels[0].source_path);
        assert_int_equal(err.n_warnings, 1);
        dv_object_free(o);
        dv_error_clear(&err);
}

static void test_lxc_fields(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        const struct domain_def *d = parse_fixture("lxc-container", &o);
        assert_int_equal(d->type, DOMAIN_TYPE_LXC);
        assert_int_equal(d->os.type, DOMAIN_OS_EXE);
        assert_string_equal(d->os.init, "/sbin/init");
        assert_int_equal(strv_length(d->os.initargs), 2);
        assert_string_equal(d->os.initargs[1], "--unit= multi-user.target"); /* inner spaces kept */
        assert_int_equal(d->os.n_initenv, 2);
        assert_string_equal(d->os.initenv[1].name, "LANG");
        assert_string_equal(d->os.initenv[1].value, "C.UTF-8");
        assert_int_equal(d->n_uid_map, 1);
        assert_int_equal(d->uid_map[0].target, 100000);
        assert_int_equal(d->gid_map[0].count, 65536);
        assert_int_equal(d->n_filesystems, 4);
        const enum domain_fs_type types[] = {DOMAIN_FS_MOUNT, DOMAIN_FS_BLOCK, DOMAIN_FS_FILE,
                                             DOMAIN_FS_TEMPLATE};
        const char *sources[] = {"/var/lib/declvirt/containers/ct1/rootfs", "/dev/vg0/ct1-data",
                                 "/var/lib/declvirt/images/ct1-cache.img", "debian-12"};
        for (size_t i = 0; i < 4; i++) {
                assert_int_equal(domain_fs_type(&d->filesystems[i]), types[i]);
                assert_string_equal(d->filesystems[i].source, sources[i]);
        }
        assert_string_equal(d->filesystems[0].target_dir, "/");
        assert_true(d->filesystems[3].readonly);
        assert_string_equal(d->filesystems[2].driver.format, "raw");
        assert_int_equal(o->policy.state, DV_WANT_DOWN);
        dv_object_free(o);
}

static void test_xen_fields(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        const struct domain_def *d = parse_fixture("xen-pv-kernel", &o);
        assert_true(domain_def_is_xen_pv(d));
        assert_string_equal(d->os.kernel, "/var/lib/declvirt/boot/vmlinuz-xen");
        assert_string_equal(d->os.cmdline, "root=/dev/xvda1 ro console=hvc0");
        assert_int_equal(d->disks[0].target_bus, DOMAIN_DISK_BUS_XEN);
        assert_string_equal(d->interfaces[0].model, "netfront");
        dv_object_free(o);

        d = parse_fixture("xen-pv-bootloader", &o);
        assert_int_equal(d->os.type, DOMAIN_OS_LINUX);
        assert_true(d->has_bootloader);
        assert_string_equal(d->bootloader, "/usr/lib/xen-4.17/bin/pygrub");
        assert_string_equal(d->bootloader_args, "--entry=0");
        assert_null(d->os.kernel);
        assert_string_equal(d->disks[0].driver.name, "phy");
        dv_object_free(o);

        d = parse_fixture("xen-hvm", &o);
        assert_false(domain_def_is_xen_pv(d));
        assert_int_equal(d->os.n_boot, 2);
        assert_int_equal(d->os.boot[0], DOMAIN_BOOT_CDROM);
        assert_int_equal(d->os.loader.type, DOMAIN_LOADER_ROM);
        assert_int_equal(d->features[DOMAIN_FEATURE_APIC], DOMAIN_FEATURE_ON);
        assert_int_equal(d->graphics[0].port, -1);
        assert_int_equal(d->graphics[0].autoport, DOMAIN_TRI_YES);
        assert_int_equal(d->graphics[0].listen_type, DOMAIN_LISTEN_ADDRESS);
        assert_null(d->graphics[0].listen);
        dv_object_free(o);
}

/* Nothing the user did not write is filled in: the planner compares what was written. */
static void test_unwritten_stays_absent(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        const struct domain_def *d = parse_fixture("minimal", &o);
        assert_null(d->uuid);
        assert_null(d->title);
        assert_false(d->has_current_memory);
        assert_false(d->has_max_memory);
        assert_false(d->has_vcpu);
        assert_int_equal(d->vcpu_placement, DOMAIN_PLACEMENT_UNSET);
        assert_null(d->os.arch);
        assert_null(d->os.machine);
        assert_int_equal(d->os.n_boot, 0);
        assert_false(d->has_features);
        assert_false(d->cpu.present);
        assert_false(d->clock.present);
        assert_int_equal(d->on_poweroff, DOMAIN_LIFECYCLE_UNSET);
        assert_int_equal(d->on_reboot, DOMAIN_LIFECYCLE_UNSET);
        assert_int_equal(d->on_crash, DOMAIN_LIFECYCLE_UNSET);
        assert_null(d->emulator);
        assert_int_equal(d->n_disks + d->n_interfaces + d->n_graphics + d->n_videos + d->n_inputs,
                         0);
        /* ... and the accessors give libvirt's defaults. */
        assert_int_equal(domain_def_vcpus(d), 1);
        assert_int_equal(domain_def_current_memory_kib(d), 131072);
        assert_int_equal(domain_def_on_poweroff(d), DOMAIN_LIFECYCLE_DESTROY);
        assert_int_equal(domain_def_on_reboot(d), DOMAIN_LIFECYCLE_RESTART);
        assert_int_equal(domain_def_on_crash(d), DOMAIN_LIFECYCLE_DESTROY);
        dv_object_free(o);

        /* Devices with nothing but their required parts keep the rest absent. */
        struct dv_error err = DV_ERROR_INIT;
        o = parse_str(
                WITH_DEVICES("<disk><source file='/i.img'/><target dev='vda'/></disk>\n"
                             "<interface type='network'><source network='n1'/></interface>\n"
                             "<serial/>\n<graphics type='vnc'/>\n<video/>\n<input type='mouse'/>"),
                &err);
        assert_non_null(o);
        d = o->def.domain;
        assert_int_equal(d->disks[0].type, DOMAIN_DISK_TYPE_UNSET);
        assert_int_equal(d->disks[0].device, DOMAIN_DISK_DEVICE_UNSET);
        assert_int_equal(d->disks[0].target_bus, DOMAIN_DISK_BUS_UNSET);
        assert_int_equal(d->disks[0].driver.format, DOMAIN_DISK_FORMAT_UNSET);
        assert_int_equal(domain_disk_type(&d->disks[0]), DOMAIN_DISK_FILE);
        assert_null(d->interfaces[0].mac);
        assert_null(d->interfaces[0].model);
        assert_int_equal(d->serials[0].type, DOMAIN_CHR_TYPE_UNSET);
        assert_int_equal(domain_chr_type(&d->serials[0]), DOMAIN_CHR_PTY);
        assert_false(d->graphics[0].has_port);
        assert_int_equal(d->graphics[0].autoport, DOMAIN_TRI_UNSET);
        assert_int_equal(d->graphics[0].listen_type, DOMAIN_LISTEN_UNSET);
        assert_int_equal(d->videos[0].model, DOMAIN_VIDEO_UNSET);
        _cleanup_free_ char *out = dv_object_format(o);
        assert_non_null(strstr(out, "    <disk>\n      <source file='/i.img'/>\n      <target "
                                    "dev='vda'/>\n    </disk>\n"));
        assert_non_null(strstr(out, "    <serial/>\n    <input type='mouse'/>\n    <graphics "
                                    "type='vnc'/>\n    <video/>\n"));
        assert_null(strstr(out, "currentMemory"));
        assert_null(strstr(out, "on_poweroff"));
        dv_object_free(o);
        dv_error_clear(&err);
}

/* ---- ignored and refused elements --------------------------------------------------- */

/* Each element or attribute on the accepted-and-ignored lists parses, warns with its
 * line, and is not written back. */
static void test_ignored_elements_warn(void **state) {
        (void)state;
        static const struct {
                const char *xml;
                const char *warning; /* "LINE: MESSAGE" */
        } cases[] = {
                {DOMAIN_HEAD "<seclabel type='dynamic' model='dac'/>\n</domain>",
                 "5: element <seclabel> is ignored"},
                {DOMAIN_HEAD "<resource><partition>/machine</partition></resource>\n</domain>",
                 "5: element <resource> is ignored"},
                {DOMAIN_HEAD "<pm><suspend-to-mem enabled='no'/></pm>\n</domain>",
                 "5: element <pm> is ignored"},
                {DOMAIN_HEAD "<on_lockfailure>poweroff</on_lockfailure>\n</domain>",
                 "5: element <on_lockfailure> is ignored"},
                {DOMAIN_HEAD "<iothreads>2</iothreads>\n</domain>",
                 "5: element <iothreads> is ignored"},
                {DOMAIN_HEAD "<numatune><memory nodeset='0'/></numatune>\n</domain>",
                 "5: element <numatune> is ignored"},
                {DOMAIN_HEAD "<memoryBacking><hugepages/></memoryBacking>\n</domain>",
                 "5: element <memoryBacking> is ignored"},
                {DOMAIN_HEAD "<genid/>\n</domain>", "5: element <genid> is ignored"},
                {XEN_WITH_DEVICES("<controller type='usb' index='0' model='qemu-xhci'/>"),
                 "6: element <controller> is ignored"},
                {XEN_WITH_DEVICES("<memballoon model='virtio'/>"),
                 "6: element <memballoon> is ignored"},
                {XEN_WITH_DEVICES("<rng model='virtio'><backend "
                                  "model='random'>/dev/urandom</backend></rng>"),
                 "6: element <rng> is ignored"},
                {XEN_WITH_DEVICES("<channel type='unix'><target type='virtio' "
                                  "name='org.qemu.guest_agent.0'/></channel>"),
                 "6: element <channel> is ignored"},
                {XEN_WITH_DEVICES("<sound model='ich9'/>"), "6: element <sound> is ignored"},
                {XEN_WITH_DEVICES("<audio id='1' type='none'/>"), "6: element <audio> is ignored"},
                {XEN_WITH_DEVICES("<watchdog model='i6300esb' action='reset'/>"),
                 "6: element <watchdog> is ignored"},
                {XEN_WITH_DEVICES("<panic model='isa'/>"), "6: element <panic> is ignored"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img'/>\n<target dev='vda'/>\n"
                              "<address type='pci' domain='0x0000' bus='0x04' slot='0x00' "
                              "function='0x0'/></disk>"),
                 "8: element <address> is ignored"},
                {WITH_DEVICES("<input type='tablet' bus='usb'>\n<alias name='input0'/></input>"),
                 "7: element <alias> is ignored"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img' index='2'/><target "
                              "dev='vda'/></disk>"),
                 "6: attribute 'index' on <source> is ignored"},
                {WITH_DEVICES("<interface type='network'><source network='default' "
                              "portid='8f2d4b9e-3c1a-4d5e-9f60-7a8b9c0d1e2f'/></interface>"),
                 "6: attribute 'portid' on <source> is ignored"},
                {WITH_DEVICES("<interface type='network'><source network='default'/>\n<target "
                              "dev='vnet7'/></interface>"),
                 "7: <target dev='vnet7'> is a generated name and is ignored"},
                {WITH_DEVICES("<graphics type='vnc' port='5903' autoport='yes'/>"),
                 "6: attribute 'port' on <graphics> is ignored with autoport='yes'"},
                {WITH_DEVICES("<video><model type='qxl' ram='65536' vram='65536' vgamem='16384' "
                              "heads='1' primary='yes'/></video>"),
                 "6: attribute 'ram' on <model> is ignored"},
                {DOMAIN_HEAD "<features><acpi/>\n<hyperv mode='custom'><relaxed "
                             "state='on'/></hyperv></features>\n</domain>",
                 "6: element <hyperv> is ignored"},
                {DOMAIN_HEAD "<metadata>\n<app:info "
                             "xmlns:app='https://example.com/app'/></metadata>\n</domain>",
                 "6: element <app:info> in <metadata> is ignored"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct dv_error err = DV_ERROR_INIT;
                struct dv_object *o = parse_str(cases[i].xml, &err);
                if (!o) {
                        dv_error_print(stderr, &err);
                        fail_msg("case %zu refused", i);
                }
                assert_true(err.n_warnings >= 1);
                char first[512];
                snprintf(first, sizeof(first), "%d: %s", err.warnings[0].line, err.warnings[0].msg);
                if (!streq(first, cases[i].warning))
                        fail_msg("case %zu: warning '%s', expected '%s'", i, first,
                                 cases[i].warning);
                /* Ignored means not written back. */
                _cleanup_free_ char *out = dv_object_format(o);
                const char *tags[] = {
                        "<seclabel", "<resource", "<pm",    "<controller", "<memballoon", "<rng",
                        "<channel",  "<address",  "<alias", "<hyperv",     "index=",      "portid=",
                        "vnet7",     "ram=",      "5903",   "app:info",    "<watchdog",   "<audio"};
                for (size_t k = 0; k < ELEMENTSOF(tags); k++)
                        assert_null(strstr(out, tags[k]));
                dv_object_free(o);
                dv_error_clear(&err);
        }
}

/* Refused elements name themselves and their line. */
static void test_refused_elements(void **state) {
        (void)state;
        const char *devices[] = {"hostdev", "redirdev", "smartcard", "parallel", "tpm",   "shmem",
                                 "vsock",   "iommu",    "memory",    "crypto",   "lease", "hub"};
        for (size_t i = 0; i < ELEMENTSOF(devices); i++) {
                char xml[512], expected[128];
                /* vsock, iommu and hub are the QEMU driver's: refused for the others. */
                bool qemu_only = i == 6 || i == 7 || i == 11;
                snprintf(xml, sizeof(xml),
                         qemu_only ? XEN_WITH_DEVICES("<%s/>") : WITH_DEVICES("<%s/>"), devices[i]);
                snprintf(expected, sizeof(expected), "6: element <%s> is not supported",
                         devices[i]);
                _cleanup_free_ char *got = first_problem(xml);
                assert_string_equal(got, expected);
        }
        static const struct {
                const char *xml, *expected;
        } cases[] = {
                {DOMAIN_HEAD "<keywrap><cipher name='aes' state='on'/></keywrap>\n</domain>",
                 "5: element <keywrap> is not supported"},
                {DOMAIN_HEAD "<lxc:namespace "
                             "xmlns:lxc='http://libvirt.org/schemas/domain/lxc/1.0'/>\n</domain>",
                 "5: element <lxc:namespace> is not supported"},
                {DOMAIN_HEAD "<frobnicate/>\n</domain>",
                 "5: unknown element <frobnicate> in <domain>"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img'/><target "
                              "dev='vda'/>\n<iotune><total_bytes_sec>1</total_bytes_sec></iotune></"
                              "disk>"),
                 "7: element <iotune> in <disk> is not supported"},
                {WITH_DEVICES("<interface type='network'><source "
                              "network='default'/>\n<bandwidth/></interface>"),
                 "7: element <bandwidth> in <interface> is not supported"},
                {WITH_DEVICES("<disk type='network'><source protocol='rbd' "
                              "name='pool/img'/><target dev='vda'/></disk>"),
                 "6: disk type 'network' is not supported"},
                {WITH_DEVICES("<disk type='block' device='lun'><source dev='/dev/sdb'/><target "
                              "dev='sda'/></disk>"),
                 "6: disk device 'lun' is not supported"},
                {WITH_DEVICES(
                         "<interface type='direct'><source dev='eth0' mode='vepa'/></interface>"),
                 "6: interface type 'direct' is not supported"},
                {WITH_DEVICES("<serial type='tcp'><source mode='bind' host='0.0.0.0' "
                              "service='2445'/></serial>"),
                 "6: serial type 'tcp' is not supported"},
                {WITH_DEVICES("<filesystem type='ram'><source usage='1024'/><target "
                              "dir='/tmp'/></filesystem>"),
                 "6: filesystem type 'ram' is not supported"},
                {WITH_DEVICES("<input type='evdev'><source dev='/dev/input/event1'/></input>"),
                 "6: input type 'evdev' is not supported"},
                {WITH_DEVICES("<video><model type='vbox'/></video>"),
                 "6: video model 'vbox' is not supported"},
                {WITH_DEVICES("<graphics type='sdl'/>"), "6: graphics type 'sdl' is not supported"},
                {WITH_DEVICES("<graphics type='vnc'><listen type='network' "
                              "network='default'/></graphics>"),
                 "6: listen type 'network' is not supported"},
                {DOMAIN_HEAD "<cpu mode='host-model'><numa><cell cpus='0' memory='64' "
                             "unit='MiB'/></numa></cpu>\n</domain>",
                 "5: element <numa> in <cpu> is not supported"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = first_problem(cases[i].xml);
                if (!streq(got, cases[i].expected))
                        fail_msg("case %zu: got '%s', expected '%s'", i, got, cases[i].expected);
        }
}

/* ---- errors ------------------------------------------------------------------------- */

static void test_errors(void **state) {
        (void)state;
        static const struct {
                const char *xml, *expected;
        } cases[] = {
                /* domain level */
                {"<domain>\n<name>x</name>\n<memory>1</memory>\n<os><type>hvm</type></os>\n</"
                 "domain>",
                 "1: <domain> needs the attribute 'type'"},
                {"<domain "
                 "type='kvm'>\n<name>a/b</name>\n<memory>1</memory>\n<os><type>hvm</type></os>\n</"
                 "domain>",
                 "2: domain name 'a/b': name may not contain '/'"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<name>y</name>\n<memory>1</memory>\n<os><type>hvm</"
                 "type></os>\n</domain>",
                 "3: element <name> appears more than once in <domain> (first on line 2)"},
                {"<domain type='kvm'>\n<name>x</name>\n<os><type>hvm</type></os>\n</domain>",
                 "1: a domain needs a <memory>"},
                {"<domain type='kvm'>\n<name>x</name>\n<memory>1</memory>\n</domain>",
                 "1: a domain needs an <os> with a <type>"},
                {"<domain type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os><boot "
                 "dev='hd'/></os>\n</domain>",
                 "4: <os> needs a <type>"},
                {DOMAIN_HEAD "<title>two\nlines</title>\n</domain>",
                 "5: <title> must be a single line"},
                {DOMAIN_HEAD "<maxMemory unit='MiB'>128</maxMemory>\n</domain>",
                 "5: <maxMemory> needs the attribute 'slots'"},
                {DOMAIN_HEAD "<maxMemory slots='4' unit='MiB'>32</maxMemory>\n</domain>",
                 "5: <maxMemory> (32768 KiB) is smaller than <memory> (65536 KiB)"},
                {DOMAIN_HEAD "<currentMemory>0</currentMemory>\n</domain>",
                 "5: <currentMemory> must be greater than 0"},
                {"<domain type='kvm'>\n<name>x</name>\n<memory "
                 "unit='b'>18446744073709551615</memory>\n"
                 "<os><type>hvm</type></os>\n</domain>",
                 "3: <memory>: more than 8 EiB"},
                {DOMAIN_HEAD "<vcpu>4097</vcpu>\n</domain>",
                 "5: <vcpu> '4097': out of range 1..4096"},
                {DOMAIN_HEAD "<vcpu>two</vcpu>\n</domain>", "5: <vcpu> 'two': not a number"},
                {DOMAIN_HEAD "<vcpu current='3'>2</vcpu>\n</domain>",
                 "5: <vcpu current='3'> is more than the 2 vcpus"},
                {DOMAIN_HEAD "<vcpu cpuset='1-'>2</vcpu>\n</domain>",
                 "5: <vcpu cpuset='1-'>: expected a CPU list such as '0-3,^2'"},
                {DOMAIN_HEAD "<on_reboot>explode</on_reboot>\n</domain>",
                 "5: <on_reboot> 'explode': expected 'destroy', 'restart', 'preserve', "
                 "'rename-restart', "
                 "'coredump-destroy' or 'coredump-restart'"},
                {DOMAIN_HEAD "<bootloader>/usr/bin/pygrub</bootloader>\n</domain>",
                 "5: <bootloader> only fits Xen PV domains (os type 'xen', 'linux' or 'xenpvh')"},
                {DOMAIN_HEAD "<idmap><uid start='0' target='1000' count='10'/><gid start='0' "
                             "target='1000' count='10'/></idmap>\n</domain>",
                 "5: <idmap> only fits lxc domains"},
                /* os */
                {"<domain type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type "
                 "arch='z80'>hvm</type>\n</os>\n</domain>",
                 "5: <type arch='z80'>: unknown architecture"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>xen</type>\n</"
                 "os>\n</domain>",
                 "5: os type 'xen' does not fit a kvm domain (use 'hvm')"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</"
                 "type>\n<kernel>vmlinuz</kernel>\n</os>\n</domain>",
                 "6: <kernel> 'vmlinuz': not an absolute path"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</"
                 "type>\n<initrd>/i</initrd>\n</os>\n</domain>",
                 "4: <initrd> needs a <kernel>"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</type>\n<init>/"
                 "sbin/init</init>\n</os>\n</domain>",
                 "6: <init> only fits os type 'exe' (containers)"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</type>\n<boot "
                 "dev='hd'/>\n<boot dev='hd'/>\n</os>\n</domain>",
                 "7: boot dev 'hd' is listed twice"},
                {"<domain "
                 "type='kvm'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</type>\n<boot "
                 "dev='usb'/>\n</os>\n</domain>",
                 "6: <boot dev='usb'>: expected 'hd', 'cdrom', 'fd' or 'network'"},
                {"<domain "
                 "type='lxc'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</type>\n</"
                 "os>\n</domain>",
                 "5: os type 'hvm' does not fit an lxc domain (use 'exe')"},
                {"<domain "
                 "type='lxc'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>exe</type>\n<init>/"
                 "sbin/init</init>\n"
                 "<initenv name='1BAD'>x</initenv>\n</os>\n</domain>",
                 "7: <initenv name='1BAD'>: not a variable name ([A-Za-z_][A-Za-z0-9_]*)"},
                {"<domain "
                 "type='xen'>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>xen</"
                 "type>\n<kernel>/k</kernel>\n<boot dev='hd'/>\n</os>\n</domain>",
                 "4: <boot> does not fit a Xen PV domain (os type 'xen')"},
                /* features, cpu, clock */
                {DOMAIN_HEAD "<features><acpi/>\n<acpi/></features>\n</domain>",
                 "6: element <acpi> appears more than once in <features> (first on line 5)"},
                {DOMAIN_HEAD "<features><htm/></features>\n</domain>",
                 "5: <htm> needs the attribute 'state'"},
                {DOMAIN_HEAD "<features><acpi state='on'/></features>\n</domain>",
                 "5: unknown attribute 'state' on <acpi>"},
                {DOMAIN_HEAD "<cpu mode='custom'/>\n</domain>",
                 "5: <cpu mode='custom'> needs a <model>"},
                {DOMAIN_HEAD "<cpu mode='turbo'/>\n</domain>",
                 "5: <cpu mode='turbo'>: expected 'custom', 'host-model', 'host-passthrough' or "
                 "'maximum'"},
                {DOMAIN_HEAD "<vcpu>4</vcpu>\n<cpu><topology sockets='1' cores='2' "
                             "threads='1'/></cpu>\n</domain>",
                 "6: <topology> gives 2 CPUs but the domain has 4 vcpus"},
                {DOMAIN_HEAD "<clock/>\n</domain>", "5: <clock> needs the attribute 'offset'"},
                {DOMAIN_HEAD "<clock offset='utc' basis='utc'/>\n</domain>",
                 "5: <clock offset='utc'> takes no 'basis'"},
                {DOMAIN_HEAD
                 "<clock offset='utc'><timer name='hpet' track='guest'/></clock>\n</domain>",
                 "5: timer 'hpet' takes no 'track' (only platform and rtc)"},
                /* devices */
                {WITH_DEVICES("<disk type='file'><target dev='vda'/></disk>"),
                 "6: disk 'vda' needs a <source>"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img'/></disk>"),
                 "6: a <disk> needs a <target dev='...'>"},
                {WITH_DEVICES(
                         "<disk type='file'><source dev='/dev/sdb'/><target dev='vda'/></disk>"),
                 "6: <source dev=...> does not fit disk type 'file'"},
                {WITH_DEVICES(
                         "<disk type='file'><source file='/a.img'/><target dev='nvme0'/></disk>"),
                 "6: <target dev='nvme0'>: expected a disk name such as vda, sda, hdc, xvda or "
                 "fda"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img'/><target dev='vda' "
                              "bus='sd'/></disk>"),
                 "6: <target bus='sd'>: expected 'virtio', 'sata', 'ide', 'scsi', 'xen', 'usb' or "
                 "'fdc'"},
                {WITH_DEVICES("<disk type='file'><driver name='qemu' type='vmdk'/><source "
                              "file='/a.img'/><target dev='vda'/></disk>"),
                 "6: <driver type='vmdk'>: expected 'raw' or 'qcow2'"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img'/><target dev='vda' "
                              "bus='fdc'/></disk>"),
                 "6: bus 'fdc' goes with device 'floppy', and only there"},
                {WITH_DEVICES("<disk type='volume'><source pool='p' volume='v' file='/x'/><target "
                              "dev='vda'/></disk>"),
                 "6: <source file=...> does not fit disk type 'volume'"},
                {WITH_DEVICES("<disk type='volume'><source pool='bad/pool' volume='v'/><target "
                              "dev='vda'/></disk>"),
                 "6: <source pool='bad/pool'>: name may not contain '/'"},
                {WITH_DEVICES("<disk type='file'><source file='/a.img'/><target dev='vda'/><boot "
                              "order='0'/></disk>"),
                 "6: <boot order='0'>: out of range 1..2147483647"},
                {"<domain "
                 "type='kvm'>\n<name>t</name>\n<memory>1</memory>\n<os><type>hvm</type><boot "
                 "dev='hd'/></os>\n"
                 "<devices>\n<disk type='file'><source file='/a.img'/><target dev='vda'/>\n<boot "
                 "order='1'/></disk>\n"
                 "</devices>\n</domain>",
                 "7: <boot order> on a device cannot be combined with <os><boot dev> (line 4)"},
                {WITH_DEVICES("<interface type='bridge'><mac address='0B:00:00:00:00:01'/>"
                              "<source bridge='br0'/></interface>"),
                 "6: <mac address='0b:00:00:00:00:01'>: a multicast address cannot be an "
                 "interface's address"},
                {WITH_DEVICES("<interface type='bridge'><mac address='52:54:00:00:00:001'/>"
                              "<source bridge='br0'/></interface>"),
                 "6: <mac address='52:54:00:00:00:001'>: not a MAC address (six hexadecimal "
                 "bytes separated by ':')"},
                {WITH_DEVICES("<interface type='network'/>"),
                 "6: a network interface needs <source network='...'>"},
                {WITH_DEVICES("<interface type='bridge'><source network='default'/></interface>"),
                 "6: <source network=...> does not fit interface type 'bridge'"},
                {WITH_DEVICES("<interface type='ethernet'><source bridge='br0'/></interface>"),
                 "6: <source> does not fit interface type 'ethernet'"},
                {WITH_DEVICES("<interface type='bridge'><source bridge='br0'/><target "
                              "dev='tap0'/></interface>\n"
                              "<interface type='bridge'><source bridge='br0'/><target "
                              "dev='tap0'/></interface>"),
                 "7: interface target dev 'tap0' is used twice (first on line 6)"},
                {WITH_DEVICES("<interface type='bridge'><mac address='52:54:00:00:00:01'/><source "
                              "bridge='br0'/></interface>\n"
                              "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source "
                              "bridge='br0'/></interface>"),
                 "7: MAC address 52:54:00:00:00:01 is used twice (first on line 6)"},
                {WITH_DEVICES("<interface type='bridge'><source "
                              "bridge='a-bridge-name-too-long'/></interface>"),
                 "6: <source bridge='a-bridge-name-too-long'>: not an interface name"},
                {WITH_DEVICES("<filesystem type='mount'><source dir='/srv'/><target "
                              "dir='srv'/></filesystem>\n"
                              "<filesystem type='mount'><source dir='/srv2'/><target "
                              "dir='srv'/></filesystem>"),
                 "7: filesystem target dir 'srv' is used twice (first on line 6)"},
                {WITH_DEVICES("<filesystem type='block'><source dev='/dev/sdb'/><target "
                              "dir='data'/></filesystem>"),
                 "6: filesystem type 'block' only fits lxc domains"},
                {WITH_DEVICES("<filesystem type='mount'><source dev='/dev/sdb'/><target "
                              "dir='data'/></filesystem>"),
                 "6: <source dev=...> does not fit filesystem type 'mount' (it takes dir=)"},
                {WITH_DEVICES("<filesystem type='mount'><target dir='data'/></filesystem>"),
                 "6: a <filesystem> needs a <source>"},
                {WITH_DEVICES("<serial type='file'><target port='0'/></serial>"),
                 "6: a file <serial> needs <source path='...'>"},
                {WITH_DEVICES("<serial type='null'><source path='/x'/></serial>"),
                 "6: <source> does not fit type 'null'"},
                {WITH_DEVICES("<serial type='pty'><target type='virtio'/></serial>"),
                 "6: <target type='virtio'>: not a serial target type (isa-serial, usb-serial, "
                 "pci-serial, ...)"},
                {WITH_DEVICES("<graphics type='vnc' port='22'/>"),
                 "6: <graphics port='22'>: expected -1 (automatic) or 5900..65535"},
                {WITH_DEVICES("<graphics type='vnc' socket='/run/v.sock' port='5900'/>"),
                 "6: 'port', 'autoport', 'websocket' and 'listen' need a network listen, not "
                 "listen type 'socket'"},
                {WITH_DEVICES("<graphics type='vnc' listen='127.0.0.1'><listen type='address' "
                              "address='0.0.0.0'/></graphics>"),
                 "6: <listen address='0.0.0.0'> differs from <graphics listen='127.0.0.1'>"},
                {WITH_DEVICES("<graphics type='vnc'/>\n<graphics type='vnc'/>"),
                 "7: only one <graphics> is supported (the first is on line 6)"},
                {WITH_DEVICES("<input bus='usb'/>"), "6: <input> needs the attribute 'type'"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = first_problem(cases[i].xml);
                if (!streq(got, cases[i].expected))
                        fail_msg("case %zu: got '%s', expected '%s'", i, got, cases[i].expected);
        }
}

/* One run reports every problem, so that `declvirt validate` shows them all at once. */
static void test_all_problems_reported(void **state) {
        (void)state;
        const char *xml = "<domain type='kvm'>\n"
                          "<name>x</name>\n"
                          "<memory unit='MiB'>64</memory>\n"
                          "<os><type>hvm</type></os>\n"
                          "<devices>\n"
                          "<hostdev/>\n"
                          "<interface type='network' foo='1'><source network='n'/></interface>\n"
                          "<tpm/>\n"
                          "</devices>\n"
                          "</domain>\n";
        struct dv_error err = DV_ERROR_INIT;
        assert_null(parse_str(xml, &err));
        assert_int_equal(err.n_problems, 3);
        assert_int_equal(err.problems[0].line, 6);
        assert_int_equal(err.problems[1].line, 7);
        assert_string_equal(err.problems[1].msg, "unknown attribute 'foo' on <interface>");
        assert_int_equal(err.problems[2].line, 8);
        dv_error_clear(&err);
}

/* Text and attributes with XML's special characters survive a round trip. */
static void test_escaping_round_trip(void **state) {
        (void)state;
        const char *xml =
                "<domain type='lxc'>\n<name>esc</name>\n"
                "<description>a &lt;b&gt; &amp; 'c' \"d\"\nsecond line</description>\n"
                "<memory>1024</memory>\n"
                "<os><type>exe</type><init>/bin/sh</init>"
                "<initarg>-c</initarg><initarg> echo '&lt;hi&gt;' &amp;&amp; exit 0 </initarg>"
                "<initenv name='PS1'>$ &quot;x&quot; </initenv></os>\n"
                "<devices><filesystem><source dir=\"/srv/it's\"/><target "
                "dir='/'/></filesystem></devices>\n"
                "</domain>\n";
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = parse_str(xml, &err);
        assert_non_null(o);
        const struct domain_def *d = o->def.domain;
        assert_string_equal(d->description, "a <b> & 'c' \"d\"\nsecond line");
        assert_string_equal(d->os.initargs[1], " echo '<hi>' && exit 0 ");
        assert_string_equal(d->os.initenv[0].value, "$ \"x\" ");
        assert_string_equal(d->filesystems[0].source, "/srv/it's");
        _cleanup_free_ char *out = dv_object_format(o);
        struct dv_object *o2 = parse_str(out, &err);
        assert_non_null(o2);
        assert_string_equal(o2->def.domain->description, d->description);
        assert_string_equal(o2->def.domain->os.initargs[1], d->os.initargs[1]);
        assert_string_equal(o2->def.domain->filesystems[0].source, "/srv/it's");
        _cleanup_free_ char *out2 = dv_object_format(o2);
        assert_string_equal(out, out2);
        dv_object_free(o);
        dv_object_free(o2);
        dv_error_clear(&err);
}

/* domain_def_validate works on a definition built or changed in code too. */
static void test_validate_struct(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        struct domain_def *d = (struct domain_def *)parse_fixture("lxc-container", &o);
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(domain_def_validate(d, &err), 0);

        d->current_memory_kib = d->memory_kib + 1;
        assert_true(domain_def_validate(d, &err) < 0);
        assert_non_null(strstr(dv_error_message(&err), "is larger than <memory>"));
        dv_error_clear(&err);
        d->current_memory_kib = d->memory_kib;

        char *saved = d->filesystems[0].target_dir;
        d->filesystems[0].target_dir = (char *)"/srv";
        assert_true(domain_def_validate(d, &err) < 0);
        assert_string_equal(dv_error_message(&err),
                            "an lxc domain needs a <filesystem> with <target dir='/'>");
        dv_error_clear(&err);
        d->filesystems[0].target_dir = saved;

        assert_int_equal(domain_def_validate(d, &err), 0);
        dv_object_free(o);
}

/* A running domain's id (set for the observed XML, never parsed) comes right after the
 * type, as in `virsh dumpxml`; 0 leaves it out, and the parser ignores it when read back. */
static void test_format_id(void **state) {
        (void)state;
        struct dv_object *o = NULL;
        struct domain_def *d = (struct domain_def *)parse_fixture("minimal", &o);
        assert_int_equal(d->id, 0);
        _cleanup_free_ char *none = dv_object_format_def(o);
        assert_null(strstr(none, " id="));
        d->id = 4242;
        _cleanup_free_ char *out = dv_object_format_def(o);
        assert_non_null(strstr(out, "<domain type='kvm' id='4242'>"));
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o2 = parse_str(out, &err);
        assert_non_null(o2);
        assert_int_equal(o2->def.domain->id, 0);
        dv_object_free(o2);
        dv_error_clear(&err);
        dv_object_free(o);
}

/* Every list a file controls has a limit. */
static void test_device_limit(void **state) {
        (void)state;
        struct buf b = BUF_INIT;
        buf_puts(&b, DOMAIN_HEAD "<devices>\n");
        for (int i = 0; i <= 1024; i++)
                buf_puts(&b, "<input type='mouse'/>\n");
        buf_puts(&b, "</devices>\n</domain>\n");
        _cleanup_free_ char *xml = buf_steal(&b);
        _cleanup_free_ char *got = first_problem(xml);
        assert_string_equal(got, "1030: more than 1024 <input> elements");
}

/* libvirt's short MAC form and its liberal UUID spelling are accepted and written in the
 * canonical form, as the network model does. */
static void test_mac_uuid_canonical(void **state) {
        (void)state;
        static const char xml[] = "<domain type='kvm'>\n<name>t</name>\n"
                                  "<uuid> 6695EB01F6a4-8304-79aa97f2502e193a </uuid>\n"
                                  "<memory>1</memory>\n<os><type>hvm</type></os>\n<devices>\n"
                                  "<interface type='bridge'><mac address='52:54:0:A:b:c'/>"
                                  "<source bridge='br0'/></interface>\n"
                                  "</devices>\n</domain>\n";
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = parse_str(xml, &err);
        assert_non_null(o);
        const struct domain_def *d = o->def.domain;
        assert_string_equal(d->uuid, "6695eb01-f6a4-8304-79aa-97f2502e193a");
        assert_int_equal(d->n_interfaces, 1);
        assert_string_equal(d->interfaces[0].mac, "52:54:00:0a:0b:0c");
        dv_object_free(o);
        dv_error_clear(&err);
}

/* Memory is kept in KiB like libvirt does, rounded up; the largest value round-trips. */
static void test_memory_units(void **state) {
        (void)state;
        static const struct {
                const char *memory;
                uint64_t kib;
        } cases[] = {
                {"<memory>1024</memory>", 1024},
                {"<memory unit='KiB'>1024</memory>", 1024},
                {"<memory unit='b'>1</memory>", 1},
                {"<memory unit='bytes'>2048</memory>", 2},
                {"<memory unit='KB'>1000</memory>", 977},
                {"<memory unit='GB'>1</memory>", 976563},
                {"<memory unit='M'>512</memory>", 524288},
                {"<memory unit='G'>2</memory>", 2097152},
                {"<memory unit='TiB'>1</memory>", 1ULL << 30},
                {"<memory unit='b'>9223372036854775808</memory>", 1ULL << 53},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char xml[512];
                snprintf(xml, sizeof(xml),
                         "<domain type='qemu'><name>m</name>%s<os><type>hvm</type></os></domain>",
                         cases[i].memory);
                struct dv_error err = DV_ERROR_INIT;
                struct dv_object *o = parse_str(xml, &err);
                assert_non_null(o);
                assert_int_equal(o->def.domain->memory_kib, cases[i].kib);
                _cleanup_free_ char *out = dv_object_format(o);
                struct dv_object *o2 = parse_str(out, &err);
                assert_non_null(o2);
                assert_int_equal(o2->def.domain->memory_kib, cases[i].kib);
                dv_object_free(o);
                dv_object_free(o2);
                dv_error_clear(&err);
        }
}

static void test_enum_tables(void **state) {
        (void)state;
        assert_int_equal(domain_type_from_string("lxc"), DOMAIN_TYPE_LXC);
        assert_int_equal(domain_type_from_string("vmware"), -EINVAL);
        assert_string_equal(domain_lifecycle_to_string(DOMAIN_LIFECYCLE_RENAME_RESTART),
                            "rename-restart");
        assert_null(domain_lifecycle_to_string(DOMAIN_LIFECYCLE_UNSET));
        assert_string_equal(domain_feature_to_string(DOMAIN_FEATURE_NESTED_HV), "nested-hv");
        assert_int_equal(domain_disk_bus_from_string("fdc"), DOMAIN_DISK_BUS_FDC);
        assert_int_equal(domain_os_type_from_string(NULL), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kvm_full_fields),
                cmocka_unit_test(test_qemu_devices_fields),
                cmocka_unit_test(test_lxc_fields),
                cmocka_unit_test(test_xen_fields),
                cmocka_unit_test(test_unwritten_stays_absent),
                cmocka_unit_test(test_ignored_elements_warn),
                cmocka_unit_test(test_refused_elements),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_all_problems_reported),
                cmocka_unit_test(test_escaping_round_trip),
                cmocka_unit_test(test_validate_struct),
                cmocka_unit_test(test_format_id),
                cmocka_unit_test(test_device_limit),
                cmocka_unit_test(test_mac_uuid_canonical),
                cmocka_unit_test(test_memory_units),
                cmocka_unit_test(test_enum_tables),
        };
        _cleanup_strv_free_ char **fixtures = test_list_fixtures(DIR);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", fixtures, test_golden, 7);
        test_list_add_files(&l, "schema", fixtures, test_schema_valid, 7);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-model-domain");
}
