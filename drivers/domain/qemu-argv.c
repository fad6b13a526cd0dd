/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU command line of a domain: every element the model understands for kvm/qemu
 * domains is mapped to QEMU options here, or refused with an error naming it. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "drivers/domain/qemu-argv.h"
#include "util/buf.h"
#include "util/mac.h"
#include "util/parse.h"
#include "util/strv.h"

/* Node names and device ids are ours ("dv-" + kind + index), so they never depend on
 * what a file writes and always fit QEMU's 31-character node-name limit. */

struct builder {
        const struct domain_def *def;
        const struct qemu_argv_ctx *ctx;
        char **argv;
        int r;           /* first failure */
        unsigned n_fail; /* failures so far: lets one element stop at its own */
        struct dv_error *err;
        bool q35, microvm, kvm;
        bool have_ahci, have_scsi, have_usb, have_vserial;
        bool have_fdc;
        bool usb_none, panic_isa;
        /* The ids of the controllers devices go on: libvirt's aliases when the file
         * writes them, else the "dv-" ones added on demand. */
        char usb_id[32], usb_bus[40], scsi_id[32], sata_id[32], vserial_id[32];
};

static void fail_errno(struct builder *b, int r) {
        b->n_fail++;
        KEEP(b->r, r);
}

static void add(struct builder *b, const char *s) {
        if (!s) {
                fail_errno(b, -ENOMEM);
                return;
        }
        if (strv_push(&b->argv, s) < 0)
                fail_errno(b, -ENOMEM);
}

static void add2(struct builder *b, const char *opt, const char *val) {
        add(b, opt);
        add(b, val);
}

/* Takes the buffer's content as one argv element. */
static void add_buf(struct builder *b, struct buf *bf) {
        char *s = buf_steal(bf);
        if (!s || strv_consume(&b->argv, s) < 0)
                fail_errno(b, -ENOMEM);
}

/* -device and -blockdev take JSON: no escaping rules of QEMU's key=value syntax to get
 * wrong, whatever a path or serial holds. Takes ownership of o. */
static void add_json(struct builder *b, const char *opt, struct json_object *o) {
        if (!o) {
                fail_errno(b, -ENOMEM);
                return;
        }
        add(b, opt);
        add(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
}

static void refuse(struct builder *b, int line, const char *fmt, ...) _printf_(3, 4);
static void refuse(struct builder *b, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fail_errno(b, dv_error_addv(b->err, -EOPNOTSUPP, line, fmt, ap));
        va_end(ap);
}

static void bad_ctx(struct builder *b, int line, const char *fmt, ...) _printf_(3, 4);
static void bad_ctx(struct builder *b, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fail_errno(b, dv_error_addv(b->err, -EINVAL, line, fmt, ap));
        va_end(ap);
}

/* A value inside QEMU's key=value option syntax: a comma is written twice. */
static void put_opt_value(struct buf *bf, const char *s) {
        for (; *s; s++) {
                if (*s == ',')
                        buf_putc(bf, ',');
                buf_putc(bf, *s);
        }
}

static void put_opt(struct buf *bf, const char *key, const char *value) {
        if (bf->len > 0)
                buf_putc(bf, ',');
        buf_puts(bf, key);
        buf_putc(bf, '=');
        put_opt_value(bf, value);
}

static void jstr(struct json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}
static void jint(struct json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
}
static void jbool(struct json_object *o, const char *k, bool v) {
        json_object_object_add(o, k, json_object_new_boolean(v));
}

static struct json_object *jdevice(const char *driver, const char *id) {
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        jstr(o, "driver", driver);
        if (id)
                jstr(o, "id", id);
        return o;
}

static bool feature_on(const struct domain_def *def, enum domain_feature f) {
        return def->features[f] == DOMAIN_FEATURE_PRESENT || def->features[f] == DOMAIN_FEATURE_ON;
}

static const char *onoff(bool v) {
        return v ? "on" : "off";
}

/* ---- controllers ----------------------------------------------------------------------- */

/* Device ids are libvirt's aliases for what the file writes (usb, scsi0, virtio-serial0,
 * pci.1, balloon0, ...), so that QMP shows the names virsh would; what the driver adds
 * on its own keeps a "dv-" id. */

/* The USB bus devices go on: the first written controller's, else a qemu-xhci added
 * here. NULL (refused) when the file turned USB off with model 'none'. */
static const char *usb_bus(struct builder *b, int line, const char *what) {
        if (b->usb_none) {
                refuse(b, line,
                       "%s needs a USB bus, and <controller type='usb' model='none'> "
                       "leaves none",
                       what);
                return NULL;
        }
        if (!b->have_usb) {
                add_json(b, "-device", jdevice("qemu-xhci", "dv-usb"));
                snprintf(b->usb_id, sizeof(b->usb_id), "dv-usb");
                b->have_usb = true;
        }
        snprintf(b->usb_bus, sizeof(b->usb_bus), "%s.0", b->usb_id);
        return b->usb_bus;
}

/* The virtio-serial controller consoles and channels go on, added when none is written. */
static const char *vserial_id(struct builder *b) {
        if (!b->have_vserial) {
                add_json(b, "-device", jdevice("virtio-serial-pci", "dv-virtio-serial0"));
                snprintf(b->vserial_id, sizeof(b->vserial_id), "dv-virtio-serial0");
                b->have_vserial = true;
        }
        return b->vserial_id;
}

/* libvirt's model names and QEMU's devices for them. */
static const struct {
        const char *model, *driver;
        bool xhci;      /* takes p2=/p3= from ports= */
        bool companion; /* a UHCI companion of an EHCI controller: <master startport> */
} usb_models[] = {
        {"qemu-xhci", "qemu-xhci", true, false},
        {"nec-xhci", "nec-usb-xhci", true, false},
        {"piix3-uhci", "piix3-usb-uhci", false, false},
        {"piix4-uhci", "piix4-usb-uhci", false, false},
        {"ehci", "usb-ehci", false, false},
        {"ich9-ehci1", "ich9-usb-ehci1", false, false},
        {"ich9-uhci1", "ich9-usb-uhci1", false, true},
        {"ich9-uhci2", "ich9-usb-uhci2", false, true},
        {"ich9-uhci3", "ich9-usb-uhci3", false, true},
};

static void build_usb_controller(struct builder *b, const struct domain_controller *c) {
        /* libvirt's default for x86 guests where QEMU has it. */
        const char *model = c->model ? c->model : "qemu-xhci";
        if (streq(model, "none")) {
                if (b->have_usb)
                        refuse(b, c->line,
                               "<controller type='usb' model='none'> beside another "
                               "USB controller");
                b->usb_none = true;
                return;
        }
        size_t k;
        for (k = 0; k < ELEMENTSOF(usb_models); k++)
                if (streq(model, usb_models[k].model))
                        break;
        if (k == ELEMENTSOF(usb_models)) {
                refuse(b, c->line,
                       "USB controller model '%s' is not supported by the QEMU driver (qemu-xhci, "
                       "nec-xhci, piix3-uhci, piix4-uhci, ehci, ich9-ehci1 with ich9-uhci1..3, "
                       "none)",
                       model);
                return;
        }
        char id[24];
        if (c->index == 0)
                snprintf(id, sizeof(id), "usb");
        else
                snprintf(id, sizeof(id), "usb%u", c->index);
        if (usb_models[k].companion != c->has_master) {
                refuse(b, c->line,
                       usb_models[k].companion
                               ? "USB controller model '%s' is a companion: it needs <master "
                                 "startport=>"
                               : "<master> does not fit USB controller model '%s'",
                       model);
                return;
        }
        if (b->usb_none) {
                refuse(b, c->line, "a USB controller beside <controller type='usb' model='none'>");
                return;
        }
        struct json_object *o = jdevice(usb_models[k].driver, c->has_master ? NULL : id);
        if (o && c->has_master) {
                char master[32];
                snprintf(master, sizeof(master), "%s.0", id);
                jstr(o, "masterbus", master);
                jint(o, "firstport", c->master_startport);
        }
        if (o && c->has_ports) {
                if (usb_models[k].xhci) {
                        jint(o, "p2", c->ports);
                        jint(o, "p3", c->ports);
                } else
                        refuse(b, c->line,
                               "<controller ports=> fits only the xhci models with the QEMU "
                               "driver");
        }
        add_json(b, "-device", o);
        if (!b->have_usb && !c->has_master) {
                snprintf(b->usb_id, sizeof(b->usb_id), "%s", id);
                b->have_usb = true;
        }
}

static void build_pci_controller(struct builder *b, const struct domain_controller *c) {
        const char *model = strempty(c->model);
        if (streq(model, "pcie-root") || streq(model, "pci-root")) {
                /* The machine's own root bus: nothing to add. */
                bool pcie = streq(model, "pcie-root");
                if (pcie != b->q35)
                        refuse(b, c->line, "a %s controller does not fit machine '%s' (%s)", model,
                               b->def->os.machine ? b->def->os.machine : "pc",
                               pcie ? "q35 has pcie-root" : "pc has pci-root");
                else if (c->index != 0)
                        refuse(b, c->line, "the %s controller has index 0", model);
                return;
        }
        if (!streq(model, "pcie-root-port")) {
                refuse(b, c->line,
                       "PCI controller model '%s' is not supported by the QEMU driver "
                       "(pcie-root, pci-root, pcie-root-port: devices are put on the root bus, "
                       "<address> is not kept)",
                       c->model ? c->model : "(none)");
                return;
        }
        if (!b->q35) {
                refuse(b, c->line, "a pcie-root-port needs machine q35");
                return;
        }
        const char *driver = c->model_name ? c->model_name : "pcie-root-port";
        if (!streq(driver, "pcie-root-port") && !streq(driver, "ioh3420")) {
                refuse(b, c->line,
                       "<model name='%s'> is not supported by the QEMU driver (pcie-root-port, "
                       "ioh3420)",
                       driver);
                return;
        }
        if (c->index == 0 || c->index > 255) {
                refuse(b, c->line, "a pcie-root-port needs an index 1..255");
                return;
        }
        char id[24];
        snprintf(id, sizeof(id), "pci.%u", c->index);
        struct json_object *o = jdevice(driver, id);
        if (o) {
                /* chassis keeps the slots of root ports apart; libvirt writes both. */
                jint(o, "port", c->has_port ? c->port : c->index);
                jint(o, "chassis", c->has_chassis ? c->chassis : c->index);
                jstr(o, "bus", "pcie.0");
        }
        add_json(b, "-device", o);
}

static void build_controller(struct builder *b, const struct domain_controller *c) {
        char id[32];
        switch (c->type) {
        case DOMAIN_CONTROLLER_USB:
                build_usb_controller(b, c);
                return;
        case DOMAIN_CONTROLLER_PCI:
                build_pci_controller(b, c);
                return;
        case DOMAIN_CONTROLLER_IDE:
        case DOMAIN_CONTROLLER_FDC:
                /* pc's built-in IDE and floppy controllers; q35 gets an isa-fdc with a floppy. */
                if (c->index != 0)
                        refuse(b, c->line,
                               "only one %s controller (index 0) is supported by the "
                               "QEMU driver",
                               domain_controller_type_to_string(c->type));
                else if (c->type == DOMAIN_CONTROLLER_IDE && (b->q35 || b->microvm))
                        refuse(b, c->line, "machine %s has no IDE controller: use bus 'sata'",
                               b->q35 ? "q35" : "microvm");
                return;
        case DOMAIN_CONTROLLER_SATA:
                if (c->index != 0 || b->microvm) {
                        refuse(b, c->line,
                               "the QEMU driver supports one SATA controller "
                               "(index 0), on machines pc and q35");
                        return;
                }
                if (b->q35)
                        return; /* q35's own AHCI, "ide" */
                snprintf(id, sizeof(id), "sata%u", c->index);
                add_json(b, "-device", jdevice("ich9-ahci", id));
                snprintf(b->sata_id, sizeof(b->sata_id), "%s", id);
                b->have_ahci = true;
                return;
        case DOMAIN_CONTROLLER_SCSI: {
                /* libvirt's default for x86 guests is lsilogic. */
                const char *model = c->model ? c->model : "lsilogic";
                const char *driver = streq(model, "virtio-scsi") ? "virtio-scsi-pci"
                                     : streq(model, "lsilogic")  ? "lsi53c895a"
                                                                 : NULL;
                if (!driver) {
                        refuse(b, c->line,
                               "SCSI controller model '%s' is not supported by the QEMU driver "
                               "(virtio-scsi, lsilogic)",
                               model);
                        return;
                }
                if (c->index != 0) {
                        refuse(b, c->line,
                               "the QEMU driver supports one SCSI controller (index "
                               "0): disks are not placed by <address>");
                        return;
                }
                snprintf(id, sizeof(id), "scsi%u", c->index);
                add_json(b, "-device", jdevice(driver, id));
                snprintf(b->scsi_id, sizeof(b->scsi_id), "%s", id);
                b->have_scsi = true;
                return;
        }
        case DOMAIN_CONTROLLER_VIRTIO_SERIAL: {
                if (c->index != 0) {
                        refuse(b, c->line,
                               "the QEMU driver supports one virtio-serial "
                               "controller (index 0)");
                        return;
                }
                snprintf(id, sizeof(id), "virtio-serial%u", c->index);
                struct json_object *o = jdevice("virtio-serial-pci", id);
                if (o && c->has_ports)
                        jint(o, "max_ports", c->ports);
                if (o && c->has_vectors)
                        jint(o, "vectors", c->vectors);
                add_json(b, "-device", o);
                snprintf(b->vserial_id, sizeof(b->vserial_id), "%s", id);
                b->have_vserial = true;
                return;
        }
        default:
                refuse(b, c->line, "controller type '%s' is not supported by the QEMU driver",
                       domain_controller_type_to_string(c->type));
                return;
        }
}

static void build_controllers(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_controllers; i++) {
                const struct domain_controller *c = &def->controllers[i];
                if (c->type != DOMAIN_CONTROLLER_PCI && c->model_name)
                        refuse(b, c->line, "<model name=> fits only PCI controllers");
                if (c->type != DOMAIN_CONTROLLER_PCI && (c->has_chassis || c->has_port))
                        refuse(b, c->line, "<target chassis= port=> fits only PCI controllers");
                if ((c->type != DOMAIN_CONTROLLER_USB &&
                     c->type != DOMAIN_CONTROLLER_VIRTIO_SERIAL && c->has_ports) ||
                    (c->type != DOMAIN_CONTROLLER_VIRTIO_SERIAL && c->has_vectors))
                        refuse(b, c->line, "ports= and vectors= do not fit a %s controller",
                               domain_controller_type_to_string(c->type));
        }
        /* The EHCI before its companions, whatever the order in the file. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < def->n_controllers; i++) {
                        const struct domain_controller *c = &def->controllers[i];
                        if (c->has_master == (pass == 1))
                                build_controller(b, c);
                }
}

/* ---- machine, CPU, memory ------------------------------------------------------------ */

static void build_machine(struct builder *b) {
        const struct domain_def *def = b->def;
        _cleanup_(buf_freep) struct buf m = BUF_INIT;
        put_opt_value(&m, def->os.machine ? def->os.machine : "pc");
        put_opt(&m, "accel", b->ctx->accel);
        /* libvirt: a guest without <acpi/> has no ACPI. */
        if (!domain_def_has_feature(def, DOMAIN_FEATURE_ACPI))
                put_opt(&m, "acpi", "off");
        const struct qemu_firmware *fw = b->ctx->firmware;
        if (def->features[DOMAIN_FEATURE_SMM] != DOMAIN_FEATURE_ABSENT) {
                if (fw && fw->requires_smm && !feature_on(def, DOMAIN_FEATURE_SMM))
                        refuse(b, def->os.line,
                               "the firmware %s needs SMM, which <features><smm state='off'/> "
                               "turns off",
                               fw->code);
                put_opt(&m, "smm", onoff(feature_on(def, DOMAIN_FEATURE_SMM)));
        } else if (fw && fw->requires_smm) {
                put_opt(&m, "smm", "on"); /* as libvirt: secure boot's firmware needs it */
        }
        if (def->features[DOMAIN_FEATURE_VMPORT] != DOMAIN_FEATURE_ABSENT)
                put_opt(&m, "vmport", onoff(feature_on(def, DOMAIN_FEATURE_VMPORT)));
        /* Where KVM's guest keeps its I/O APIC (libvirt's mapping); TCG emulates it in
         * QEMU whatever is written. */
        if (def->ioapic && b->kvm)
                put_opt(&m, "kernel_irqchip", def->ioapic == DOMAIN_IOAPIC_QEMU ? "split" : "on");
        for (size_t i = 0; i < def->clock.n_timers; i++) {
                const struct domain_timer *t = &def->clock.timers[i];
                if (t->name == DOMAIN_TIMER_HPET && t->present != DOMAIN_TRI_UNSET)
                        put_opt(&m, "hpet", onoff(t->present == DOMAIN_TRI_YES));
        }
        if (fw) {
                put_opt(&m, "pflash0", "dv-pflash0");
                put_opt(&m, "pflash1", "dv-pflash1");
        } else if (def->os.has_loader && def->os.loader.type == DOMAIN_LOADER_PFLASH) {
                put_opt(&m, "pflash0", "dv-pflash0");
                if (def->os.has_nvram && def->os.nvram.path)
                        put_opt(&m, "pflash1", "dv-pflash1");
        }
        add(b, "-machine");
        add_buf(b, &m);
}

static void build_cpu(struct builder *b) {
        const struct domain_def *def = b->def;
        const struct domain_cpu *cpu = &def->cpu;
        const char *model;
        bool host_like = false;
        switch (cpu->mode) {
        case DOMAIN_CPU_MODE_HOST_PASSTHROUGH:
        case DOMAIN_CPU_MODE_HOST_MODEL:
                /* No migration in declvirt, so host-model buys nothing over passthrough.
                 * TCG has no "host": "max" is everything it emulates. */
                model = b->kvm ? "host" : "max";
                host_like = true;
                break;
        case DOMAIN_CPU_MODE_MAXIMUM:
                model = "max";
                host_like = true;
                break;
        default:
                model = cpu->model ? cpu->model : "qemu64";
                break;
        }
        _cleanup_(buf_freep) struct buf c = BUF_INIT;
        put_opt_value(&c, model);
        if (cpu->present && cpu->migratable != DOMAIN_TRI_UNSET) {
                if (host_like)
                        put_opt(&c, "migratable", onoff(cpu->migratable == DOMAIN_TRI_YES));
                else
                        refuse(b, cpu->line,
                               "<cpu migratable=> only fits modes host-passthrough and maximum");
        }
        if (cpu->vendor) {
                if (host_like)
                        refuse(b, cpu->line, "<cpu><vendor> does not fit mode '%s'",
                               domain_cpu_mode_to_string(cpu->mode));
                else if (streq(cpu->vendor, "Intel"))
                        put_opt(&c, "vendor", "GenuineIntel");
                else if (streq(cpu->vendor, "AMD"))
                        put_opt(&c, "vendor", "AuthenticAMD");
                else
                        refuse(b, cpu->line,
                               "<cpu><vendor>%s</vendor> is not supported by the QEMU driver "
                               "(Intel or AMD)",
                               cpu->vendor);
        }
        /* check='full': QEMU itself refuses to start when a feature is missing. */
        if (cpu->check == DOMAIN_CPU_CHECK_FULL)
                put_opt(&c, "enforce", "on");
        for (size_t i = 0; i < cpu->n_features; i++) {
                const struct domain_cpu_feature *f = &cpu->features[i];
                bool on = f->policy != DOMAIN_CPU_POLICY_DISABLE &&
                          f->policy != DOMAIN_CPU_POLICY_FORBID;
                put_opt(&c, f->name, onoff(on));
        }
        if (def->features[DOMAIN_FEATURE_APIC] == DOMAIN_FEATURE_ON ||
            def->features[DOMAIN_FEATURE_APIC] == DOMAIN_FEATURE_OFF)
                put_opt(&c, "kvm-pv-eoi",
                        onoff(def->features[DOMAIN_FEATURE_APIC] == DOMAIN_FEATURE_ON));
        if (def->features[DOMAIN_FEATURE_PVSPINLOCK] != DOMAIN_FEATURE_ABSENT)
                put_opt(&c, "kvm-pv-unhalt", onoff(feature_on(def, DOMAIN_FEATURE_PVSPINLOCK)));
        if (def->features[DOMAIN_FEATURE_PMU] != DOMAIN_FEATURE_ABSENT)
                put_opt(&c, "pmu", onoff(feature_on(def, DOMAIN_FEATURE_PMU)));
        for (size_t i = 0; i < def->clock.n_timers; i++) {
                const struct domain_timer *t = &def->clock.timers[i];
                if (t->name == DOMAIN_TIMER_KVMCLOCK && t->present != DOMAIN_TRI_UNSET)
                        put_opt(&c, "kvmclock", onoff(t->present == DOMAIN_TRI_YES));
        }
        add(b, "-cpu");
        add_buf(b, &c);
}

static void build_memory_smp(struct builder *b) {
        const struct domain_def *def = b->def;
        if (def->has_current_memory && def->current_memory_kib != def->memory_kib)
                refuse(b, def->current_memory_line,
                       "<currentMemory> smaller than <memory> needs a balloon device, which the "
                       "QEMU driver does not offer");
        _cleanup_(buf_freep) struct buf m = BUF_INIT;
        buf_printf(&m, "size=%" PRIu64 "k", def->memory_kib);
        if (def->has_max_memory)
                buf_printf(&m, ",slots=%u,maxmem=%" PRIu64 "k", def->max_memory_slots,
                           def->max_memory_kib);
        add(b, "-m");
        add_buf(b, &m);

        if (def->vcpu_placement == DOMAIN_PLACEMENT_AUTO)
                refuse(b, def->vcpu_line,
                       "<vcpu placement='auto'> (numad) is not supported by the QEMU driver");
        if (def->vcpu_cpuset)
                refuse(b, def->vcpu_line, "<vcpu cpuset=> is not supported by the QEMU driver");
        unsigned n = domain_def_vcpus(def), cur = domain_def_vcpus_current(def);
        _cleanup_(buf_freep) struct buf s = BUF_INIT;
        buf_printf(&s, "%u", cur);
        if (cur != n)
                buf_printf(&s, ",maxcpus=%u", n);
        if (def->cpu.has_topology) {
                buf_printf(&s, ",sockets=%u", def->cpu.sockets);
                if (def->cpu.dies)
                        buf_printf(&s, ",dies=%u", def->cpu.dies);
                buf_printf(&s, ",cores=%u,threads=%u", def->cpu.cores, def->cpu.threads);
        }
        add(b, "-smp");
        add_buf(b, &s);
}

/* ---- firmware, kernel, boot, clock, life cycle ------------------------------------------ */

static struct json_object *jblockdev_raw_file(const char *node, const char *path, bool ro) {
        struct json_object *file = json_object_new_object(), *o = json_object_new_object();
        if (!file || !o) {
                json_object_put(file);
                json_object_put(o);
                return NULL;
        }
        jstr(file, "driver", "file");
        jstr(file, "filename", path);
        jbool(file, "read-only", ro);
        jstr(o, "node-name", node);
        jstr(o, "driver", "raw");
        jbool(o, "read-only", ro);
        json_object_object_add(o, "file", file);
        return o;
}

/* "-add-fd fd=N,set=N,opaque=PATH": the descriptor the agent opened for path, which
 * QEMU then reaches as /dev/fdset/N. */
static void add_fd(struct builder *b, int fd, const char *path) {
        _cleanup_(buf_freep) struct buf a = BUF_INIT;
        buf_printf(&a, "fd=%d,set=%d", fd, fd);
        put_opt(&a, "opaque", path);
        add(b, "-add-fd");
        add_buf(b, &a);
}

/* A pflash unit: its file by path, or by the descriptor fd (>= 0) the agent opened. */
static void add_pflash(struct builder *b, const char *node, const char *path, int fd, bool ro) {
        char fdset[32];
        if (fd >= 0) {
                add_fd(b, fd, path);
                snprintf(fdset, sizeof(fdset), "/dev/fdset/%d", fd);
        }
        add_json(b, "-blockdev", jblockdev_raw_file(node, fd >= 0 ? fdset : path, ro));
}

static void build_firmware(struct builder *b) {
        const struct domain_os *os = &b->def->os;
        const struct qemu_firmware *fw = b->ctx->firmware;
        if (fw) {
                /* Chosen by the driver (qemu-firmware.c): the code read-only, the domain's
                 * own varstore read-write; secure boot's firmware keeps its varstore from
                 * the guest outside SMM. */
                add_pflash(b, "dv-pflash0", fw->code, b->ctx->fds ? b->ctx->fds->loader : -1, true);
                add_pflash(b, "dv-pflash1", fw->nvram, b->ctx->fds ? b->ctx->fds->nvram : -1,
                           false);
                if (fw->requires_smm)
                        add2(b, "-global", "driver=cfi.pflash01,property=secure,value=on");
                return;
        }
        if (qemu_firmware_wanted(b->def))
                bad_ctx(b, os->line, "the firmware was not chosen (qemu_firmware_select)");
        if (os->has_loader) {
                if (os->loader.secure == DOMAIN_TRI_YES && os->loader.type != DOMAIN_LOADER_PFLASH)
                        refuse(b, os->line, "<loader secure='yes'> needs type='pflash'");
                if (!os->loader.path)
                        refuse(b, os->line,
                               "a <loader> without a path needs firmware auto-selection, which "
                               "the QEMU driver does not do");
                else if (os->loader.stateless == DOMAIN_TRI_YES)
                        refuse(b, os->line,
                               "<loader stateless='yes'> is not supported by the QEMU driver");
                else if (os->loader.type == DOMAIN_LOADER_PFLASH)
                        add_pflash(b, "dv-pflash0", os->loader.path,
                                   b->ctx->fds ? b->ctx->fds->loader : -1,
                                   os->loader.readonly == DOMAIN_TRI_YES);
                else
                        add2(b, "-bios", os->loader.path);
        }
        if (os->has_nvram) {
                if (!os->nvram.path)
                        refuse(b, os->line,
                               "an <nvram> without a path is not supported by the "
                               "QEMU driver");
                else if (!os->has_loader || os->loader.type != DOMAIN_LOADER_PFLASH)
                        refuse(b, os->line, "<nvram> needs a <loader type='pflash'>");
                else
                        add_pflash(b, "dv-pflash1", os->nvram.path,
                                   b->ctx->fds ? b->ctx->fds->nvram : -1, false);
        }
}

static void build_boot(struct builder *b) {
        const struct domain_os *os = &b->def->os;
        if (os->kernel)
                add2(b, "-kernel", os->kernel);
        if (os->initrd)
                add2(b, "-initrd", os->initrd);
        if (os->cmdline) {
                if (os->kernel)
                        add2(b, "-append", os->cmdline);
                else
                        refuse(b, os->line, "<cmdline> needs a <kernel>");
        }
        if (os->n_boot) {
                char order[DOMAIN_MAX_BOOT_DEVS + 1] = "";
                for (size_t i = 0; i < os->n_boot && i < DOMAIN_MAX_BOOT_DEVS; i++)
                        order[i] = os->boot[i] == DOMAIN_BOOT_CDROM     ? 'd'
                                   : os->boot[i] == DOMAIN_BOOT_FD      ? 'a'
                                   : os->boot[i] == DOMAIN_BOOT_NETWORK ? 'n'
                                                                        : 'c';
                _cleanup_(buf_freep) struct buf o = BUF_INIT;
                buf_printf(&o, "order=%s", order);
                add(b, "-boot");
                add_buf(b, &o);
        }
}

static void build_clock(struct builder *b) {
        const struct domain_clock *c = &b->def->clock;
        if (!c->present)
                return;
        _cleanup_(buf_freep) struct buf rtc = BUF_INIT;
        switch (c->offset) {
        case DOMAIN_CLOCK_UNSET:
        case DOMAIN_CLOCK_UTC:
                put_opt(&rtc, "base", "utc");
                break;
        case DOMAIN_CLOCK_LOCALTIME:
                put_opt(&rtc, "base", "localtime");
                break;
        default:
                refuse(b, c->line, "<clock offset='%s'> is not supported by the QEMU driver",
                       domain_clock_offset_to_string(c->offset));
                break;
        }
        if (c->adjustment || c->basis || c->has_start)
                refuse(b, c->line,
                       "<clock> adjustment, basis and start are not supported by the QEMU "
                       "driver");
        const char *pit_policy = NULL;
        for (size_t i = 0; i < c->n_timers; i++) {
                const struct domain_timer *t = &c->timers[i];
                const char *name = domain_timer_name_to_string(t->name);
                switch (t->name) {
                case DOMAIN_TIMER_RTC:
                        if (t->present == DOMAIN_TRI_NO)
                                refuse(b, t->line,
                                       "<timer name='rtc' present='no'> is not "
                                       "supported by the QEMU driver");
                        if (t->tickpolicy == DOMAIN_TICKPOLICY_CATCHUP)
                                put_opt(&rtc, "driftfix", "slew");
                        else if (t->tickpolicy && t->tickpolicy != DOMAIN_TICKPOLICY_DELAY)
                                refuse(b, t->line,
                                       "<timer name='rtc' tickpolicy='%s'> is not supported by "
                                       "the QEMU driver (catchup or delay)",
                                       domain_tickpolicy_to_string(t->tickpolicy));
                        if (t->track == DOMAIN_TIMER_TRACK_GUEST)
                                put_opt(&rtc, "clock", "vm");
                        else if (t->track == DOMAIN_TIMER_TRACK_WALL)
                                put_opt(&rtc, "clock", "host");
                        else if (t->track == DOMAIN_TIMER_TRACK_REALTIME)
                                put_opt(&rtc, "clock", "rt");
                        break;
                case DOMAIN_TIMER_PIT:
                        if (t->present == DOMAIN_TRI_NO || t->track)
                                refuse(b, t->line,
                                       "<timer name='pit'> takes only tickpolicy with the QEMU "
                                       "driver");
                        if (t->tickpolicy == DOMAIN_TICKPOLICY_DELAY ||
                            t->tickpolicy == DOMAIN_TICKPOLICY_DISCARD) {
                                pit_policy = domain_tickpolicy_to_string(t->tickpolicy);
                        } else if (t->tickpolicy)
                                refuse(b, t->line,
                                       "<timer name='pit' tickpolicy='%s'> is not supported by "
                                       "the QEMU driver (delay or discard)",
                                       domain_tickpolicy_to_string(t->tickpolicy));
                        break;
                case DOMAIN_TIMER_HPET:
                case DOMAIN_TIMER_KVMCLOCK:
                        /* present= is mapped in -machine / -cpu. */
                        if (t->tickpolicy || t->track)
                                refuse(b, t->line,
                                       "<timer name='%s'> takes only present= with the QEMU "
                                       "driver",
                                       name);
                        break;
                default:
                        refuse(b, t->line, "<timer name='%s'> is not supported by the QEMU driver",
                               name);
                        break;
                }
        }
        add(b, "-rtc");
        add_buf(b, &rtc);
        /* The policy belongs to KVM's in-kernel PIT; TCG's PIT has no such property. */
        if (pit_policy && b->kvm) {
                _cleanup_(buf_freep) struct buf g = BUF_INIT;
                buf_printf(&g, "kvm-pit.lost_tick_policy=%s", pit_policy);
                add(b, "-global");
                add_buf(b, &g);
        }
}

static void build_lifecycle(struct builder *b) {
        const struct domain_def *def = b->def;
        _cleanup_(buf_freep) struct buf a = BUF_INIT;
        switch (def->on_poweroff) {
        case DOMAIN_LIFECYCLE_UNSET:
        case DOMAIN_LIFECYCLE_DESTROY:
                break;
        case DOMAIN_LIFECYCLE_PRESERVE:
                put_opt(&a, "shutdown", "pause");
                break;
        default:
                refuse(b, def->on_poweroff_line,
                       "<on_poweroff>%s</on_poweroff> is not supported by the QEMU driver (the "
                       "policy's restart= decides what follows a guest shutdown)",
                       domain_lifecycle_to_string(def->on_poweroff));
        }
        switch (def->on_reboot) {
        case DOMAIN_LIFECYCLE_UNSET:
        case DOMAIN_LIFECYCLE_RESTART:
                break;
        case DOMAIN_LIFECYCLE_DESTROY:
                put_opt(&a, "reboot", "shutdown");
                break;
        default:
                refuse(b, def->on_reboot_line,
                       "<on_reboot>%s</on_reboot> is not supported by the QEMU driver",
                       domain_lifecycle_to_string(def->on_reboot));
        }
        switch (def->on_crash) {
        case DOMAIN_LIFECYCLE_UNSET:
        case DOMAIN_LIFECYCLE_DESTROY:
                put_opt(&a, "panic", "shutdown");
                break;
        case DOMAIN_LIFECYCLE_PRESERVE:
                put_opt(&a, "panic", "pause");
                break;
        default:
                refuse(b, def->on_crash_line,
                       "<on_crash>%s</on_crash> is not supported by the QEMU driver (the "
                       "policy's restart= decides what follows a crash)",
                       domain_lifecycle_to_string(def->on_crash));
        }
        if (a.len > 0) {
                add(b, "-action");
                add_buf(b, &a);
        }
}

static void build_features(struct builder *b) {
        static const enum domain_feature refused[] = {
                DOMAIN_FEATURE_HAP, DOMAIN_FEATURE_VIRIDIAN,  DOMAIN_FEATURE_PRIVNET,
                DOMAIN_FEATURE_HTM, DOMAIN_FEATURE_NESTED_HV, DOMAIN_FEATURE_CCF_ASSIST,
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (b->def->features[refused[i]] != DOMAIN_FEATURE_ABSENT)
                        refuse(b, b->def->line, "feature <%s> is not supported by the QEMU driver",
                               domain_feature_to_string(refused[i]));
}

/* ---- disks ------------------------------------------------------------------------------- */

/* The index in a target name: vda 0, vdz 25, vdaa 26 (libvirt's virDiskNameToIndex). */
static int disk_index(const char *target) {
        static const char *const prefixes[] = {"xvd", "ubd", "fd", "hd", "sd", "vd"};
        const char *p = NULL;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(target, prefixes[i], strlen(prefixes[i])) == 0) {
                        p = target + strlen(prefixes[i]);
                        break;
                }
        if (!p || !*p)
                return -EINVAL;
        int idx = 0;
        for (; *p; p++) {
                if (*p < 'a' || *p > 'z' || idx > 100000)
                        return -EINVAL;
                idx = idx * 26 + (*p - 'a' + 1);
        }
        return idx - 1;
}

static enum domain_disk_bus disk_bus(const struct domain_disk *d) {
        if (d->target_bus)
                return d->target_bus;
        const char *t = d->target_dev;
        if (strncmp(t, "vd", 2) == 0)
                return DOMAIN_DISK_BUS_VIRTIO;
        if (strncmp(t, "sd", 2) == 0)
                return DOMAIN_DISK_BUS_SCSI;
        if (strncmp(t, "hd", 2) == 0)
                return DOMAIN_DISK_BUS_IDE;
        if (strncmp(t, "fd", 2) == 0)
                return DOMAIN_DISK_BUS_FDC;
        return DOMAIN_DISK_BUS_XEN;
}

/* Which of the cache modes sets what (libvirt's qemuDomainDiskCachemodeFlags). */
static void disk_cache(enum domain_disk_cache c, bool *direct, bool *no_flush, int *write_cache) {
        *direct = c == DOMAIN_DISK_CACHE_NONE || c == DOMAIN_DISK_CACHE_DIRECTSYNC;
        *no_flush = c == DOMAIN_DISK_CACHE_UNSAFE;
        *write_cache = c == DOMAIN_DISK_CACHE_UNSET || c == DOMAIN_DISK_CACHE_DEFAULT ? -1
                       : c == DOMAIN_DISK_CACHE_WRITETHROUGH || c == DOMAIN_DISK_CACHE_DIRECTSYNC
                               ? 0
                               : 1;
}

/* backing: NULL for no "backing" key (raw), "" for "backing":null (the last qcow2 layer:
 * QEMU must not open what its header names), else the node name of the layer below. */
static struct json_object *jblockdev_disk(const struct domain_disk *d, const char *node,
                                          const char *path, const char *format, bool ro,
                                          const char *backing) {
        struct json_object *file = json_object_new_object(), *o = json_object_new_object();
        if (!file || !o) {
                json_object_put(file);
                json_object_put(o);
                return NULL;
        }
        bool cdrom = domain_disk_device(d) == DOMAIN_DISK_CDROM;
        bool block = domain_disk_type(d) == DOMAIN_DISK_BLOCK;
        bool direct, no_flush;
        int wc;
        disk_cache(d->driver.cache, &direct, &no_flush, &wc);
        const char *discard =
                d->driver.discard ? domain_disk_discard_to_string(d->driver.discard) : NULL;
        struct json_object *nodes[] = {file, o};
        jstr(file, "driver", block ? (cdrom ? "host_cdrom" : "host_device") : "file");
        jstr(file, "filename", path);
        if (d->driver.io && d->driver.io != DOMAIN_DISK_IO_DEFAULT)
                jstr(file, "aio", domain_disk_io_to_string(d->driver.io));
        jstr(o, "node-name", node);
        jstr(o, "driver", format);
        if (backing && *backing)
                jstr(o, "backing", backing);
        else if (backing)
                json_object_object_add(o, "backing", NULL);
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                jbool(nodes[i], "read-only", ro);
                if (discard)
                        jstr(nodes[i], "discard", discard);
                if (wc >= 0) {
                        struct json_object *c = json_object_new_object();
                        if (c) {
                                jbool(c, "direct", direct);
                                jbool(c, "no-flush", no_flush);
                        }
                        json_object_object_add(nodes[i], "cache", c);
                }
        }
        json_object_object_add(o, "file", file);
        return o;
}

/* The layers the agent opened, deepest backing file first so that each node exists
 * before the one above names it as its backing. */
static void build_disk_chain(struct builder *b, const struct domain_disk *d, size_t i,
                             const struct qemu_disk_chain *chain, bool ro) {
        for (size_t k = 0; k < chain->n_layers; k++) {
                const struct qemu_disk_layer *l = &chain->layers[k];
                add_fd(b, l->fd, l->path);
        }
        for (size_t k = chain->n_layers; k-- > 0;) {
                const struct qemu_disk_layer *l = &chain->layers[k];
                char node[64], below[64], fdset[32];
                if (k == 0)
                        snprintf(node, sizeof(node), "dv-disk%zu", i);
                else
                        snprintf(node, sizeof(node), "dv-disk%zu-b%zu", i, k);
                snprintf(below, sizeof(below), "dv-disk%zu-b%zu", i, k + 1);
                snprintf(fdset, sizeof(fdset), "/dev/fdset/%d", l->fd);
                bool qcow2 = streq(l->format, "qcow2");
                const char *backing = !qcow2 ? NULL : k + 1 < chain->n_layers ? below : "";
                add_json(b, "-blockdev",
                         jblockdev_disk(d, node, fdset, l->format, k == 0 ? ro : true, backing));
        }
}

static void build_disk(struct builder *b, size_t i) {
        const struct domain_disk *d = &b->def->disks[i];
        const struct qemu_argv_ctx *ctx = b->ctx;
        enum domain_disk_device dev = domain_disk_device(d);
        enum domain_disk_bus bus = disk_bus(d);
        bool cdrom = dev == DOMAIN_DISK_CDROM;
        unsigned f0 = b->n_fail;

        if (d->driver.name && !streq(d->driver.name, "qemu"))
                refuse(b, d->line, "<driver name='%s'> does not fit a QEMU domain (use 'qemu')",
                       d->driver.name);
        if (d->driver.io == DOMAIN_DISK_IO_NATIVE && d->driver.cache != DOMAIN_DISK_CACHE_NONE &&
            d->driver.cache != DOMAIN_DISK_CACHE_DIRECTSYNC)
                refuse(b, d->line,
                       "<driver io='native'> needs cache='none' or cache='directsync' (QEMU "
                       "needs O_DIRECT for native AIO)");
        if (d->shareable && d->driver.format == DOMAIN_DISK_FORMAT_QCOW2)
                refuse(b, d->line, "a <shareable/> disk must be raw: qcow2 is not safe to share");
        int idx = disk_index(d->target_dev);
        const char *why = NULL;
        if (dev == DOMAIN_DISK_FLOPPY && bus != DOMAIN_DISK_BUS_FDC) {
                refuse(b, d->target_line, "disk '%s': a floppy goes on bus 'fdc' (fda, fdb)",
                       d->target_dev);
                return;
        }
        switch (bus) {
        case DOMAIN_DISK_BUS_VIRTIO:
                if (cdrom)
                        why = "a cdrom cannot be on bus 'virtio'";
                break;
        case DOMAIN_DISK_BUS_IDE:
                if (d->readonly && !cdrom)
                        why = "QEMU has no read-only IDE or SATA hard disk (use virtio or scsi)";
                else if (b->q35)
                        why = "machine q35 has no IDE bus: use bus 'sata'";
                else if (b->microvm)
                        why = "machine microvm has no IDE bus";
                else if (idx < 0 || idx > 3)
                        why = "an IDE disk needs a target dev hda..hdd";
                break;
        case DOMAIN_DISK_BUS_SATA:
                if (d->readonly && !cdrom)
                        why = "QEMU has no read-only IDE or SATA hard disk (use virtio or scsi)";
                else if (b->microvm)
                        why = "machine microvm has no SATA bus";
                else if (idx < 0 || idx > 5)
                        why = "a SATA disk needs a target dev sda..sdf (one controller of six "
                              "ports)";
                break;
        case DOMAIN_DISK_BUS_SCSI:
                if (idx < 0 || idx > 255)
                        why = "a SCSI disk needs a target dev sda..sdiv";
                break;
        case DOMAIN_DISK_BUS_FDC:
                if (dev != DOMAIN_DISK_FLOPPY)
                        why = "bus 'fdc' takes only floppies";
                else if (b->microvm)
                        why = "machine microvm has no floppy controller";
                else if (idx < 0 || idx > 1)
                        why = "a floppy needs a target dev fda or fdb";
                break;
        default:
                refuse(b, d->target_line, "disk bus '%s' is not supported by the QEMU driver",
                       domain_disk_bus_to_string(bus));
                return;
        }
        if (why)
                refuse(b, d->target_line, "disk '%s': %s", d->target_dev, why);

        const char *path = ctx->disk_paths ? ctx->disk_paths[i] : NULL;
        /* An empty cdrom or floppy (no <source>): a drive without a medium, which can take
         * one later; the engine gives it an empty path. */
        if (!d->has_source)
                path = NULL;
        if (!path && d->has_source && domain_disk_type(d) == DOMAIN_DISK_FILE)
                path = d->source.file;
        if (!path && d->has_source && domain_disk_type(d) == DOMAIN_DISK_BLOCK)
                path = d->source.dev;
        if (!path && d->has_source)
                bad_ctx(b, d->line, "disk '%s': no path for its volume '%s' in pool '%s'",
                        d->target_dev, strempty(d->source.volume), strempty(d->source.pool));
        if (path && path[0] != '/')
                bad_ctx(b, d->line, "disk '%s': path '%s' is not absolute", d->target_dev, path);
        if (b->n_fail != f0)
                return;

        char node[32], id[40];
        snprintf(node, sizeof(node), "dv-disk%zu", i);
        snprintf(id, sizeof(id), "%s", d->target_dev);
        const struct qemu_disk_chain *chain = ctx->disk_chains ? &ctx->disk_chains[i] : NULL;
        if (chain && chain->n_layers > 0)
                build_disk_chain(b, d, i, chain, d->readonly || cdrom);
        else if (path)
                add_json(b, "-blockdev",
                         jblockdev_disk(d, node, path,
                                        d->driver.format == DOMAIN_DISK_FORMAT_QCOW2 ? "qcow2"
                                                                                     : "raw",
                                        d->readonly || cdrom, NULL));

        const char *driver;
        struct json_object *o;
        switch (bus) {
        case DOMAIN_DISK_BUS_VIRTIO:
                o = jdevice("virtio-blk-pci", id);
                break;
        case DOMAIN_DISK_BUS_IDE: {
                char busname[16];
                snprintf(busname, sizeof(busname), "ide.%d", idx / 2);
                o = jdevice(cdrom ? "ide-cd" : "ide-hd", id);
                if (o) {
                        jstr(o, "bus", busname);
                        jint(o, "unit", idx % 2);
                }
                break;
        }
        case DOMAIN_DISK_BUS_SATA: {
                /* q35's built-in AHCI is "ide"; other machines get ours, "dv-sata0". */
                char busname[48];
                snprintf(busname, sizeof(busname), "%s.%d",
                         b->sata_id[0] ? b->sata_id
                         : b->q35      ? "ide"
                                       : "dv-sata0",
                         idx);
                o = jdevice(cdrom ? "ide-cd" : "ide-hd", id);
                if (o)
                        jstr(o, "bus", busname);
                break;
        }
        case DOMAIN_DISK_BUS_FDC:
                o = jdevice("floppy", id);
                if (o)
                        jint(o, "unit", idx);
                break;
        default: /* SCSI */
                driver = cdrom ? "scsi-cd" : "scsi-hd";
                o = jdevice(driver, id);
                if (o) {
                        char busname[48];
                        snprintf(busname, sizeof(busname), "%s.0",
                                 b->scsi_id[0] ? b->scsi_id : "dv-scsi0");
                        jstr(o, "bus", busname);
                        jint(o, "channel", 0);
                        jint(o, "scsi-id", idx);
                        jint(o, "lun", 0);
                }
                break;
        }
        if (!o) {
                fail_errno(b, -ENOMEM);
                return;
        }
        if (path)
                jstr(o, "drive", node);
        if (d->serial)
                jstr(o, "serial", d->serial);
        if (d->shareable)
                jbool(o, "share-rw", true);
        bool direct, no_flush;
        int wc;
        disk_cache(d->driver.cache, &direct, &no_flush, &wc);
        if (wc >= 0 && path)
                jstr(o, "write-cache", onoff(wc));
        if (d->boot_order)
                jint(o, "bootindex", d->boot_order);
        add_json(b, "-device", o);
}

static void build_disks(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                enum domain_disk_bus bus = disk_bus(d);
                /* The PC machine has its floppy controller built in, q35 has none. */
                if (bus == DOMAIN_DISK_BUS_FDC && b->q35 && !b->have_fdc) {
                        add_json(b, "-device", jdevice("isa-fdc", "fdc0"));
                        b->have_fdc = true;
                }
                if (bus == DOMAIN_DISK_BUS_SATA && !b->q35 && !b->microvm && !b->have_ahci) {
                        add_json(b, "-device", jdevice("ich9-ahci", "dv-sata0"));
                        b->have_ahci = true;
                }
                if (bus == DOMAIN_DISK_BUS_SCSI && !b->have_scsi) {
                        add_json(b, "-device", jdevice("virtio-scsi-pci", "dv-scsi0"));
                        b->have_scsi = true;
                }
        }
        for (size_t i = 0; i < def->n_disks; i++)
                build_disk(b, i);
}

/* ---- filesystems (9p) ------------------------------------------------------------------ */

static void build_filesystems(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_filesystems; i++) {
                const struct domain_fs *fs = &def->filesystems[i];
                if (fs->driver.type && fs->driver.type != DOMAIN_FS_DRIVER_PATH) {
                        refuse(b, fs->line,
                               "<filesystem><driver type='%s'> is not supported by the QEMU "
                               "driver (path: virtio-9p)",
                               domain_fs_driver_to_string(fs->driver.type));
                        continue;
                }
                if (fs->driver.format) {
                        refuse(b, fs->line,
                               "<filesystem><driver format=> does not fit a "
                               "directory shared with virtio-9p");
                        continue;
                }
                if (!fs->source || !fs->target_dir)
                        continue; /* validation refused it already */
                const char *model = fs->accessmode == DOMAIN_FS_ACCESS_MAPPED   ? "mapped"
                                    : fs->accessmode == DOMAIN_FS_ACCESS_SQUASH ? "none"
                                                                                : "passthrough";
                char id[32];
                snprintf(id, sizeof(id), "dv-fs%zu", i);
                _cleanup_(buf_freep) struct buf o = BUF_INIT;
                buf_puts(&o, "local");
                put_opt(&o, "id", id);
                put_opt(&o, "path", fs->source);
                put_opt(&o, "security_model", model);
                if (fs->readonly)
                        put_opt(&o, "readonly", "on");
                if (fs->driver.wrpolicy_immediate)
                        put_opt(&o, "writeout", "immediate");
                add(b, "-fsdev");
                add_buf(b, &o);
                struct json_object *dev = jdevice("virtio-9p-pci", id + 3);
                if (dev) {
                        jstr(dev, "fsdev", id);
                        jstr(dev, "mount_tag", fs->target_dir);
                }
                add_json(b, "-device", dev);
        }
}

/* ---- interfaces ------------------------------------------------------------------------ */

static bool ifname_valid(const char *s) {
        size_t l = strlen(s);
        if (l == 0 || l > 15)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
                        return false;
        return true;
}

static void build_interfaces(struct builder *b) {
        const struct domain_def *def = b->def;
        const struct qemu_argv_ctx *ctx = b->ctx;
        for (size_t i = 0; i < def->n_interfaces; i++) {
                const struct domain_net *n = &def->interfaces[i];
                if (n->type != DOMAIN_NET_NETWORK && n->type != DOMAIN_NET_BRIDGE) {
                        refuse(b, n->line,
                               "interface type '%s' is not supported by the QEMU "
                               "driver (network or bridge)",
                               domain_net_type_to_string(n->type));
                        continue;
                }
                const char *driver = !n->model                    ? "rtl8139" /* libvirt's */
                                     : streq(n->model, "virtio")  ? "virtio-net-pci"
                                     : streq(n->model, "e1000")   ? "e1000"
                                     : streq(n->model, "e1000e")  ? "e1000e"
                                     : streq(n->model, "rtl8139") ? "rtl8139"
                                                                  : NULL;
                if (!driver) {
                        refuse(b, n->line,
                               "interface model '%s' is not supported by the QEMU driver "
                               "(virtio, e1000, e1000e, rtl8139)",
                               n->model);
                        continue;
                }
                const char *tap = ctx->tap_names ? ctx->tap_names[i] : NULL;
                int tap_fd = ctx->fds && ctx->fds->taps ? ctx->fds->taps[i] : -1;
                const char *mac = ctx->macs && ctx->macs[i] ? ctx->macs[i] : n->mac;
                if (!tap || !ifname_valid(tap)) {
                        bad_ctx(b, n->line, "interface %zu: %s tap device name '%s'", i,
                                tap ? "invalid" : "no", strempty(tap));
                        continue;
                }
                if (!mac || !mac_is_full_form(mac)) {
                        bad_ctx(b, n->line, "interface %zu: %s MAC address '%s'", i,
                                mac ? "invalid" : "no", strempty(mac));
                        continue;
                }
                char id[32];
                snprintf(id, sizeof(id), "dv-net%zu", i);
                _cleanup_(buf_freep) struct buf o = BUF_INIT;
                buf_puts(&o, "tap");
                put_opt(&o, "id", id);
                if (tap_fd >= 0)
                        buf_printf(&o, ",fd=%d", tap_fd); /* the agent's, attached to tap */
                else {
                        put_opt(&o, "ifname", tap);
                        put_opt(&o, "script", "no");
                        put_opt(&o, "downscript", "no");
                }
                add(b, "-netdev");
                add_buf(b, &o);
                struct json_object *dev = jdevice(driver, id + 3);
                if (dev) {
                        jstr(dev, "netdev", id);
                        jstr(dev, "mac", mac);
                        if (n->boot_order)
                                jint(dev, "bootindex", n->boot_order);
                }
                add_json(b, "-device", dev);
        }
}

/* ---- serial devices and consoles --------------------------------------------------------- */

/* The descriptor ctx->fds gives for serial or console c (type 'file'), -1 none. */
static int chr_fd(const struct builder *b, const struct domain_chr *c) {
        const struct qemu_fds *f = b->ctx->fds;
        const struct domain_def *def = b->def;
        if (!f)
                return -1;
        if (f->serials && c >= def->serials && c < def->serials + def->n_serials)
                return f->serials[c - def->serials];
        if (f->consoles && c >= def->consoles && c < def->consoles + def->n_consoles)
                return f->consoles[c - def->consoles];
        return -1;
}

/* path=PATH, or path=/dev/fdset/FD after an -add-fd when the agent opened it (fd >= 0). */
static void put_chr_path(struct builder *b, struct buf *o, const char *path, int fd) {
        if (fd < 0) {
                put_opt(o, "path", path);
                return;
        }
        add_fd(b, fd, path);
        buf_printf(o, ",path=/dev/fdset/%d", fd);
}

/* The -chardev of one serial or console; false when refused. */
static bool add_chardev(struct builder *b, const struct domain_chr *c, const char *id,
                        bool *pty_used, const char *what) {
        _cleanup_(buf_freep) struct buf o = BUF_INIT;
        switch (domain_chr_type(c)) {
        case DOMAIN_CHR_PTY:
                if (*pty_used) {
                        refuse(b, c->line,
                               "a second pty <%s>: the QEMU driver sends one serial device or "
                               "console to the console log",
                               what);
                        return false;
                }
                if (!b->ctx->serial_log) {
                        bad_ctx(b, c->line, "no console log path for the pty <%s>", what);
                        return false;
                }
                *pty_used = true;
                buf_puts(&o, "file");
                put_opt(&o, "id", id);
                put_chr_path(b, &o, b->ctx->serial_log,
                             b->ctx->fds ? b->ctx->fds->console_log : -1);
                put_opt(&o, "append", "on");
                break;
        case DOMAIN_CHR_FILE:
                buf_puts(&o, "file");
                put_opt(&o, "id", id);
                put_chr_path(b, &o, strempty(c->source_path), chr_fd(b, c));
                if (c->append != DOMAIN_TRI_UNSET)
                        put_opt(&o, "append", onoff(c->append == DOMAIN_TRI_YES));
                break;
        case DOMAIN_CHR_NULL:
                buf_puts(&o, "null");
                put_opt(&o, "id", id);
                break;
        default:
                refuse(b, c->line,
                       "<%s type='%s'> is not supported by the QEMU driver (QEMU runs "
                       "detached: its stdio is a log file)",
                       what, domain_chr_type_to_string(domain_chr_type(c)));
                return false;
        }
        add(b, "-chardev");
        add_buf(b, &o);
        return true;
}

static void add_isa_serial(struct builder *b, const char *chardev, const char *id, unsigned index) {
        struct json_object *o = jdevice("isa-serial", id);
        if (o) {
                jstr(o, "chardev", chardev);
                jint(o, "index", index);
        }
        add_json(b, "-device", o);
}

static void build_serials(struct builder *b) {
        const struct domain_def *def = b->def;
        bool pty_used = false;
        for (size_t i = 0; i < def->n_serials; i++) {
                const struct domain_chr *c = &def->serials[i];
                if (c->target_type && !streq(c->target_type, "isa-serial")) {
                        refuse(b, c->line,
                               "serial target type '%s' is not supported by the QEMU driver "
                               "(isa-serial)",
                               c->target_type);
                        continue;
                }
                char chr[32], id[32];
                snprintf(chr, sizeof(chr), "dv-serial%zu", i);
                snprintf(id, sizeof(id), "serial%zu", i);
                if (add_chardev(b, c, chr, &pty_used, "serial"))
                        add_isa_serial(b, chr, id,
                                       c->has_target_port ? c->target_port : (unsigned)i);
        }
        for (size_t i = 0; i < def->n_consoles; i++) {
                const struct domain_chr *c = &def->consoles[i];
                bool serial = !c->target_type || streq(c->target_type, "serial");
                if (serial && i == 0 && def->n_serials > 0)
                        continue; /* libvirt: the first console is the first serial device */
                char chr[32], id[32];
                snprintf(chr, sizeof(chr), "dv-console%zu", i);
                snprintf(id, sizeof(id), "console%zu", i);
                if (serial && i == 0) {
                        if (add_chardev(b, c, chr, &pty_used, "console"))
                                add_isa_serial(b, chr, id, 0);
                } else if (c->target_type && streq(c->target_type, "virtio")) {
                        if (!add_chardev(b, c, chr, &pty_used, "console"))
                                continue;
                        /* The only virtio-serial bus: QEMU finds it. */
                        (void)vserial_id(b);
                        struct json_object *o = jdevice("virtconsole", id);
                        if (o)
                                jstr(o, "chardev", chr);
                        add_json(b, "-device", o);
                } else
                        refuse(b, c->line,
                               "console target type '%s' is not supported by the QEMU driver "
                               "(serial on the first console, virtio)",
                               strempty(c->target_type));
        }
}

/* ---- input, graphics, video ----------------------------------------------------------- */

static void build_inputs(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_inputs; i++) {
                const struct domain_input *in = &def->inputs[i];
                enum domain_input_bus bus = in->bus;
                if (!bus)
                        bus = in->type == DOMAIN_INPUT_TABLET ? DOMAIN_INPUT_BUS_USB
                                                              : DOMAIN_INPUT_BUS_PS2;
                const char *kind = domain_input_type_to_string(in->type);
                char id[32];
                snprintf(id, sizeof(id), "input%zu", i);
                if (bus == DOMAIN_INPUT_BUS_PS2) {
                        /* The PS/2 keyboard and mouse are part of the PC machines. */
                        if (in->type == DOMAIN_INPUT_TABLET)
                                refuse(b, in->line, "a tablet cannot be on bus 'ps2'");
                        else if (b->microvm)
                                refuse(b, in->line, "machine microvm has no PS/2 devices");
                } else if (bus == DOMAIN_INPUT_BUS_USB) {
                        const char *ubus = usb_bus(b, in->line, "a USB input device");
                        if (!ubus)
                                continue;
                        struct json_object *o =
                                jdevice(in->type == DOMAIN_INPUT_TABLET  ? "usb-tablet"
                                        : in->type == DOMAIN_INPUT_MOUSE ? "usb-mouse"
                                                                         : "usb-kbd",
                                        id);
                        if (o)
                                jstr(o, "bus", ubus);
                        add_json(b, "-device", o);
                } else if (bus == DOMAIN_INPUT_BUS_VIRTIO) {
                        add_json(b, "-device",
                                 jdevice(in->type == DOMAIN_INPUT_TABLET  ? "virtio-tablet-pci"
                                         : in->type == DOMAIN_INPUT_MOUSE ? "virtio-mouse-pci"
                                                                          : "virtio-keyboard-pci",
                                         id));
                } else
                        refuse(b, in->line,
                               "input %s on bus '%s' is not supported by the QEMU driver", kind,
                               domain_input_bus_to_string(bus));
        }
}

static void build_graphics(struct builder *b) {
        const struct domain_def *def = b->def;
        if (def->n_graphics == 0) {
                add2(b, "-display", "none");
                return;
        }
        const struct domain_graphics *g = &def->graphics[0];
        _cleanup_(buf_freep) struct buf v = BUF_INIT;
        bool fixed_port = g->has_port && g->port >= 5900 && g->autoport != DOMAIN_TRI_YES;
        bool tcp = g->listen_type == DOMAIN_LISTEN_ADDRESS || g->listen || fixed_port ||
                   g->autoport == DOMAIN_TRI_YES || (g->has_port && g->port == -1);
        if (g->listen_type == DOMAIN_LISTEN_NONE) {
                buf_puts(&v, "none");
        } else if (g->listen_type == DOMAIN_LISTEN_SOCKET || !tcp) {
                const char *sock = g->socket ? g->socket : b->ctx->vnc_socket;
                if (!sock) {
                        bad_ctx(b, g->line, "no VNC socket path");
                        return;
                }
                buf_puts(&v, "unix:");
                put_opt_value(&v, sock);
        } else {
                /* libvirt's vnc_listen default. */
                const char *addr = g->listen ? g->listen : "127.0.0.1";
                bool v6 = strchr(addr, ':') != NULL;
                if (v6)
                        buf_putc(&v, '[');
                put_opt_value(&v, addr);
                if (v6)
                        buf_putc(&v, ']');
                /* An automatic port: QEMU takes the first free display from 5900 up. */
                buf_printf(&v, ":%d", fixed_port ? g->port - 5900 : 0);
                if (!fixed_port)
                        buf_puts(&v, ",to=99");
        }
        if (g->has_websocket) {
                if (g->websocket == -1 && tcp && g->listen_type != DOMAIN_LISTEN_SOCKET)
                        buf_puts(&v, ",websocket=on");
                else
                        refuse(b, g->line,
                               "<graphics websocket='%d'>: the QEMU driver only offers an "
                               "automatic websocket port (-1) next to a TCP listen address",
                               g->websocket);
        }
        if (g->passwd)
                buf_puts(&v, ",password=on");
        add(b, "-vnc");
        add_buf(b, &v);
        if (g->keymap)
                add2(b, "-k", g->keymap);
}

static void build_video(struct builder *b) {
        const struct domain_def *def = b->def;
        if (def->n_videos > 1)
                refuse(b, def->videos[1].line,
                       "more than one <video> is not supported by the QEMU driver");
        enum domain_video_model model = def->n_videos ? def->videos[0].model : DOMAIN_VIDEO_UNSET;
        if (!model) {
                if (def->n_graphics == 0)
                        return;
                model = DOMAIN_VIDEO_VGA; /* VNC needs a display adapter */
        }
        const char *driver = NULL;
        switch (model) {
        case DOMAIN_VIDEO_VGA:
                driver = "VGA";
                break;
        case DOMAIN_VIDEO_CIRRUS:
                driver = "cirrus-vga";
                break;
        case DOMAIN_VIDEO_VMVGA:
                driver = "vmware-svga";
                break;
        case DOMAIN_VIDEO_QXL:
                driver = "qxl-vga";
                break;
        case DOMAIN_VIDEO_VIRTIO:
                driver = "virtio-vga";
                break;
        case DOMAIN_VIDEO_BOCHS:
                driver = "bochs-display";
                break;
        case DOMAIN_VIDEO_RAMFB:
                driver = "ramfb";
                break;
        case DOMAIN_VIDEO_NONE:
                return;
        default:
                refuse(b, def->videos[0].line,
                       "video model '%s' is not supported by the QEMU driver",
                       domain_video_model_to_string(model));
                return;
        }
        add_json(b, "-device", jdevice(driver, "video0"));
}

/* ---- the whole command line ----------------------------------------------------------- */

static bool abs_path(const char *p) {
        return p && p[0] == '/';
}

/* ---- devices libvirt adds: balloon, rng, watchdog, sound, hub, vsock, iommu ------------ */

static void build_memballoon(struct builder *b) {
        const struct domain_memballoon *m = &b->def->memballoon;
        if (!b->def->has_memballoon || streq(m->model, "none"))
                return;
        if (!streq(m->model, "virtio")) {
                refuse(b, m->line,
                       "memballoon model '%s' is not supported by the QEMU driver (virtio, none)",
                       m->model);
                return;
        }
        struct json_object *o = jdevice("virtio-balloon-pci", "balloon0");
        if (o && m->autodeflate != DOMAIN_TRI_UNSET)
                jbool(o, "deflate-on-oom", m->autodeflate == DOMAIN_TRI_YES);
        if (o && m->free_page_reporting != DOMAIN_TRI_UNSET)
                jbool(o, "free-page-reporting", m->free_page_reporting == DOMAIN_TRI_YES);
        /* The property libvirt sets with qom-set after start, given at creation: the
         * guest's statistics are polled from the first second, with no QMP step. */
        if (o && m->has_stats_period && m->stats_period > 0)
                jint(o, "guest-stats-polling-interval", m->stats_period);
        add_json(b, "-device", o);
}

static void build_rngs(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_rngs; i++) {
                const struct domain_rng *g = &def->rngs[i];
                if (!streq(g->model, "virtio")) {
                        refuse(b, g->line,
                               "rng model '%s' is not supported by the QEMU driver (virtio)",
                               g->model);
                        continue;
                }
                char obj[32], id[32];
                snprintf(obj, sizeof(obj), "objrng%zu", i);
                snprintf(id, sizeof(id), "rng%zu", i);
                _cleanup_(buf_freep) struct buf o = BUF_INIT;
                if (streq(g->backend_model, "builtin")) {
                        buf_puts(&o, "rng-builtin");
                        put_opt(&o, "id", obj);
                } else if (streq(g->backend_model, "random")) {
                        /* Only the kernel's generators: a path is opened by QEMU itself. */
                        const char *path = g->backend_path ? g->backend_path : "/dev/urandom";
                        if (!streq(path, "/dev/urandom") && !streq(path, "/dev/random")) {
                                refuse(b, g->line,
                                       "rng backend '%s' is not supported by the QEMU driver "
                                       "(/dev/urandom, /dev/random)",
                                       path);
                                continue;
                        }
                        buf_puts(&o, "rng-random");
                        put_opt(&o, "id", obj);
                        put_opt(&o, "filename", path);
                } else {
                        refuse(b, g->line,
                               "rng backend model '%s' is not supported by the QEMU driver "
                               "(random, builtin)",
                               g->backend_model);
                        continue;
                }
                add(b, "-object");
                add_buf(b, &o);
                struct json_object *d = jdevice("virtio-rng-pci", id);
                if (d) {
                        jstr(d, "rng", obj);
                        if (g->has_rate) {
                                jint(d, "max-bytes", g->rate_bytes);
                                /* libvirt's default period: one second. */
                                jint(d, "period", g->rate_period ? g->rate_period : 1000);
                        }
                }
                add_json(b, "-device", d);
        }
}

static void build_watchdogs(struct builder *b) {
        const struct domain_def *def = b->def;
        static const char *const actions[] = {"reset", "shutdown",   "poweroff", "pause",
                                              "none",  "inject-nmi", NULL};
        const char *action = NULL;
        for (size_t i = 0; i < def->n_watchdogs; i++) {
                const struct domain_watchdog *w = &def->watchdogs[i];
                const char *a = w->action ? w->action : "reset";
                if (streq(a, "dump")) {
                        refuse(b, w->line,
                               "<watchdog action='dump'> is not supported by the QEMU driver: it "
                               "needs a dump directory the agent does not manage (use reset, "
                               "shutdown, poweroff, pause, none or inject-nmi)");
                        continue;
                }
                if (!strv_contains((char *const *)actions, a)) {
                        refuse(b, w->line,
                               "watchdog action '%s' is not supported by the QEMU driver (reset, "
                               "shutdown, poweroff, pause, none, inject-nmi)",
                               a);
                        continue;
                }
                if (action && !streq(action, a)) {
                        refuse(b, w->line,
                               "watchdogs with different actions: QEMU has one watchdog action");
                        continue;
                }
                action = a;
                char id[32];
                snprintf(id, sizeof(id), "watchdog%zu", i);
                if (streq(w->model, "i6300esb"))
                        add_json(b, "-device", jdevice("i6300esb", id));
                else if (streq(w->model, "ib700") && !b->q35 && !b->microvm)
                        add_json(b, "-device", jdevice("ib700", id));
                else if (streq(w->model, "itco") && b->q35)
                        /* q35's ICH9 has it built in; libvirt lets it reboot the guest. */
                        add2(b, "-global", "ICH9-LPC.noreboot=off");
                else
                        refuse(b, w->line,
                               "watchdog model '%s' is not supported by the QEMU driver on "
                               "this machine (i6300esb; itco on q35; ib700 on pc)",
                               w->model);
        }
        if (action) {
                _cleanup_(buf_freep) struct buf a = BUF_INIT;
                put_opt(&a, "watchdog", action);
                add(b, "-action");
                add_buf(b, &a);
        }
}

static void build_panics(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_panics; i++) {
                const struct domain_panic *p = &def->panics[i];
                /* x86's default is the ISA device, which every PC guest has (below). */
                if (!p->model || streq(p->model, "isa")) {
                        if (b->microvm)
                                refuse(b, p->line, "machine microvm has no ISA pvpanic");
                        b->panic_isa = true;
                } else if (streq(p->model, "pvpanic")) {
                        char id[32];
                        snprintf(id, sizeof(id), "panic%zu", i);
                        add_json(b, "-device", jdevice("pvpanic-pci", id));
                } else
                        refuse(b, p->line,
                               "panic model '%s' is not supported by the QEMU driver (isa, "
                               "pvpanic)",
                               p->model);
        }
}

static void build_hubs(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_hubs; i++) {
                const struct domain_hub *h = &def->hubs[i];
                if (!streq(h->type, "usb")) {
                        refuse(b, h->line, "hub type '%s' is not supported (usb)", h->type);
                        continue;
                }
                const char *bus = usb_bus(b, h->line, "a USB hub");
                if (!bus)
                        continue;
                char id[32];
                snprintf(id, sizeof(id), "hub%zu", i);
                struct json_object *o = jdevice("usb-hub", id);
                if (o)
                        jstr(o, "bus", bus);
                add_json(b, "-device", o);
        }
}

/* The audiodev of a sound device: the <audio> it names, the first one, or "audio1" of
 * type none that build_audio adds (libvirt's implicit backend for a headless guest). */
static unsigned sound_audio_id(const struct domain_def *def, const struct domain_sound *s) {
        if (s->audio_id)
                return s->audio_id;
        return def->n_audios ? def->audios[0].id : 1;
}

static void build_audio(struct builder *b) {
        const struct domain_def *def = b->def;
        for (size_t i = 0; i < def->n_audios; i++) {
                const struct domain_audio *a = &def->audios[i];
                if (!streq(a->type, "none")) {
                        refuse(b, a->line,
                               "audio type '%s' is not supported by the QEMU driver (none: a "
                               "headless host plays no sound)",
                               a->type);
                        continue;
                }
                _cleanup_(buf_freep) struct buf o = BUF_INIT;
                buf_printf(&o, "none,id=audio%u", a->id);
                add(b, "-audiodev");
                add_buf(b, &o);
        }
        if (def->n_audios == 0 && def->n_sounds > 0)
                add2(b, "-audiodev", "none,id=audio1");
}

static const struct {
        const char *model, *driver;
        bool hda, usb;
} sound_models[] = {
        {"ich9", "ich9-intel-hda", true, false}, {"ich6", "intel-hda", true, false},
        {"ac97", "AC97", false, false},          {"es1370", "ES1370", false, false},
        {"usb", "usb-audio", false, true},
};

static void build_sounds(struct builder *b) {
        const struct domain_def *def = b->def;
        build_audio(b);
        for (size_t i = 0; i < def->n_sounds; i++) {
                const struct domain_sound *s = &def->sounds[i];
                size_t k;
                for (k = 0; k < ELEMENTSOF(sound_models); k++)
                        if (streq(s->model, sound_models[k].model))
                                break;
                if (k == ELEMENTSOF(sound_models)) {
                        refuse(b, s->line,
                               "sound model '%s' is not supported by the QEMU driver (ich9, ich6, "
                               "ac97, es1370, usb)",
                               s->model);
                        continue;
                }
                char id[32], audiodev[32];
                snprintf(id, sizeof(id), "sound%zu", i);
                snprintf(audiodev, sizeof(audiodev), "audio%u", sound_audio_id(def, s));
                if (s->codecs && !sound_models[k].hda) {
                        refuse(b, s->line, "<codec> fits only the HDA sound models (ich6, ich9)");
                        continue;
                }
                const char *bus = NULL;
                if (sound_models[k].usb && !(bus = usb_bus(b, s->line, "a USB sound device")))
                        continue;
                struct json_object *o = jdevice(sound_models[k].driver, id);
                if (o && !sound_models[k].hda)
                        jstr(o, "audiodev", audiodev);
                if (o && bus)
                        jstr(o, "bus", bus);
                add_json(b, "-device", o);
                if (!sound_models[k].hda)
                        continue;
                /* libvirt's default codec: duplex. */
                static const char *const dflt[] = {"duplex", NULL};
                char *const *codecs = s->codecs ? s->codecs : (char *const *)dflt;
                for (size_t c = 0; codecs[c]; c++) {
                        const char *cd = streq(codecs[c], "duplex")   ? "hda-duplex"
                                         : streq(codecs[c], "micro")  ? "hda-micro"
                                         : streq(codecs[c], "output") ? "hda-output"
                                                                      : NULL;
                        if (!cd) {
                                refuse(b, s->line,
                                       "codec type '%s' is not supported by the QEMU driver "
                                       "(duplex, micro, output)",
                                       codecs[c]);
                                continue;
                        }
                        char cid[64], cbus[40];
                        snprintf(cid, sizeof(cid), "%s-codec%zu", id, c);
                        snprintf(cbus, sizeof(cbus), "%s.0", id);
                        struct json_object *co = jdevice(cd, cid);
                        if (co) {
                                jstr(co, "bus", cbus);
                                jint(co, "cad", (int64_t)c);
                                jstr(co, "audiodev", audiodev);
                        }
                        add_json(b, "-device", co);
                }
        }
}

static void build_vsock(struct builder *b) {
        const struct domain_vsock *v = &b->def->vsock;
        if (!b->def->has_vsock)
                return;
        if (v->model && !streq(v->model, "virtio")) {
                refuse(b, v->line, "vsock model '%s' is not supported by the QEMU driver (virtio)",
                       v->model);
                return;
        }
        unsigned cid = b->ctx->vsock_cid ? b->ctx->vsock_cid : v->has_cid ? v->cid : 0;
        if (!cid) {
                bad_ctx(b, v->line,
                        "no guest CID for the vsock (<cid auto='yes'> needs one the "
                        "driver chose)");
                return;
        }
        struct json_object *o = jdevice("vhost-vsock-pci", "vsock0");
        if (o) {
                jint(o, "guest-cid", cid);
                /* The agent opened /dev/vhost-vsock and set the CID on it. */
                if (b->ctx->fds && b->ctx->fds->vsock >= 0) {
                        char fd[16];
                        snprintf(fd, sizeof(fd), "%d", b->ctx->fds->vsock);
                        jstr(o, "vhostfd", fd);
                }
        }
        add_json(b, "-device", o);
}

static void build_iommu(struct builder *b) {
        const struct domain_iommu *m = &b->def->iommu;
        if (!b->def->has_iommu)
                return;
        if (!streq(m->model, "intel")) {
                refuse(b, m->line,
                       "iommu model '%s' is not supported by the QEMU driver (intel, on q35)",
                       m->model);
                return;
        }
        if (!b->q35) {
                refuse(b, m->line, "<iommu model='intel'> needs machine q35");
                return;
        }
        bool split = b->def->ioapic == DOMAIN_IOAPIC_QEMU;
        if (m->intremap == DOMAIN_TRI_YES && !split) {
                /* As libvirt: the interrupts are remapped in QEMU's own I/O APIC. */
                refuse(b, m->line,
                       "<iommu><driver intremap='on'> needs <features><ioapic driver='qemu'/>");
                return;
        }
        if (m->eim == DOMAIN_TRI_YES && (!b->kvm || !split || m->intremap != DOMAIN_TRI_YES)) {
                refuse(b, m->line,
                       "<iommu><driver eim='on'> needs intremap='on', <features><ioapic "
                       "driver='qemu'/> and KVM (QEMU refuses it under TCG)");
                return;
        }
        struct json_object *o = jdevice("intel-iommu", "iommu0");
        if (o && m->intremap != DOMAIN_TRI_UNSET)
                jstr(o, "intremap", onoff(m->intremap == DOMAIN_TRI_YES));
        if (o && m->eim != DOMAIN_TRI_UNSET)
                jstr(o, "eim", onoff(m->eim == DOMAIN_TRI_YES));
        if (o && m->caching_mode != DOMAIN_TRI_UNSET)
                jbool(o, "caching-mode", m->caching_mode == DOMAIN_TRI_YES);
        if (o && m->iotlb != DOMAIN_TRI_UNSET)
                jbool(o, "device-iotlb", m->iotlb == DOMAIN_TRI_YES);
        if (o && m->aw_bits)
                jint(o, "aw-bits", m->aw_bits);
        add_json(b, "-device", o);
}

/* ---- channels ------------------------------------------------------------------------- */

static void build_channels(struct builder *b) {
        const struct domain_def *def = b->def;
        const struct qemu_argv_ctx *ctx = b->ctx;
        for (size_t i = 0; i < def->n_channels; i++) {
                const struct domain_channel *c = &def->channels[i];
                if (!streq(c->target_type, "virtio")) {
                        refuse(b, c->line,
                               "channel target type '%s' is not supported by the QEMU driver "
                               "(virtio)",
                               c->target_type);
                        continue;
                }
                if (!streq(c->type, "unix")) {
                        refuse(b, c->line,
                               "<channel type='%s'> is not supported by the QEMU driver (unix: "
                               "a socket the agent binds%s)",
                               c->type,
                               streq(c->type, "spicevmc") || streq(c->type, "spiceport")
                                       ? "; SPICE is not offered"
                               : streq(c->type, "pty")
                                       ? "; a pty would need /dev/ptmx and /dev/pts in QEMU's jail"
                                       : "");
                        continue;
                }
                if (c->source_mode && !streq(c->source_mode, "bind")) {
                        refuse(b, c->line,
                               "<channel><source mode='%s'> is not supported by the QEMU "
                               "driver (bind: the agent listens, QEMU connects to nothing)",
                               c->source_mode);
                        continue;
                }
                if (!c->target_name) {
                        refuse(b, c->line, "a virtio channel needs <target name=...>");
                        continue;
                }
                const char *path = c->source_path;
                if (!path && ctx->channel_paths)
                        path = ctx->channel_paths[i];
                int fd = ctx->fds && ctx->fds->channels ? ctx->fds->channels[i] : -1;
                if (!abs_path(path)) {
                        bad_ctx(b, c->line, "channel '%s': no socket path", c->target_name);
                        continue;
                }
                char chr[32], id[32];
                snprintf(chr, sizeof(chr), "charchannel%zu", i);
                snprintf(id, sizeof(id), "channel%zu", i);
                _cleanup_(buf_freep) struct buf o = BUF_INIT;
                buf_puts(&o, "socket");
                put_opt(&o, "id", chr);
                if (fd >= 0)
                        buf_printf(&o, ",fd=%d", fd); /* the agent bound and listens */
                else
                        put_opt(&o, "path", path);
                buf_puts(&o, ",server=on,wait=off");
                add(b, "-chardev");
                add_buf(b, &o);
                char bus[40];
                snprintf(bus, sizeof(bus), "%s.0", vserial_id(b));
                struct json_object *d = jdevice("virtserialport", id);
                if (d) {
                        jstr(d, "bus", bus);
                        jstr(d, "chardev", chr);
                        jstr(d, "name", c->target_name);
                }
                add_json(b, "-device", d);
        }
}

/* The two QMP monitors by path: QEMU binds and listens. */
static void add_qmp_paths(struct builder *b) {
        {
                _cleanup_(buf_freep) struct buf q = BUF_INIT;
                buf_puts(&q, "unix:");
                put_opt_value(&q, b->ctx->qmp_socket);
                buf_puts(&q, ",server=on,wait=off");
                add(b, "-qmp");
                add_buf(b, &q);
        }
        {
                _cleanup_free_ char *events = qemu_events_socket(b->ctx->qmp_socket);
                _cleanup_(buf_freep) struct buf q = BUF_INIT;
                buf_puts(&q, "unix:");
                if (events)
                        put_opt_value(&q, events);
                else
                        fail_errno(b, -ENOMEM);
                buf_puts(&q, ",server=on,wait=off");
                add(b, "-qmp");
                add_buf(b, &q);
        }
}

/* A QMP monitor on the listening socket fd the agent bound. */
static void add_qmp_fd(struct builder *b, const char *id, int fd) {
        _cleanup_(buf_freep) struct buf c = BUF_INIT, m = BUF_INIT;
        buf_printf(&c, "socket,id=%s,fd=%d,server=on,wait=off", id, fd);
        add(b, "-chardev");
        add_buf(b, &c);
        buf_printf(&m, "chardev=%s,mode=control", id);
        add(b, "-mon");
        add_buf(b, &m);
}

char *qemu_events_socket(const char *qmp_socket) {
        if (!qmp_socket)
                return NULL;
        size_t n = strlen(qmp_socket);
        if (n > 4 && streq(qmp_socket + n - 4, ".qmp"))
                n -= 4;
        char *s = NULL;
        if (asprintf(&s, "%.*s.events", (int)n, qmp_socket) < 0)
                return NULL;
        return s;
}

int qemu_argv(const struct domain_def *def, const struct qemu_argv_ctx *ctx, char ***ret,
              struct dv_error *err) {
        if (def->type != DOMAIN_TYPE_KVM && def->type != DOMAIN_TYPE_QEMU)
                return dv_error_add(err, -EOPNOTSUPP, def->line,
                                    "domain type '%s' is not run by the QEMU driver",
                                    domain_type_to_string(def->type));
        struct builder b = {.def = def, .ctx = ctx, .err = err};
        const char *binary = ctx->binary ? ctx->binary : def->emulator;
        if (!binary)
                bad_ctx(&b, def->line, "no QEMU binary (agent.conf qemu.binary or <emulator>)");
        if (!ctx->accel || (!streq(ctx->accel, "kvm") && !streq(ctx->accel, "tcg")))
                bad_ctx(&b, def->line, "accelerator '%s' is neither kvm nor tcg",
                        strempty(ctx->accel));
        if (!abs_path(ctx->qmp_socket) || (!ctx->fds && !abs_path(ctx->pidfile)))
                bad_ctx(&b, def->line, "the QMP socket and pidfile need absolute paths");
        if (!def->name)
                bad_ctx(&b, def->line, "a domain needs a name");
        if (b.r < 0)
                return b.r;
        if (def->os.arch && !streq(def->os.arch, "x86_64"))
                refuse(&b, def->os.type_line,
                       "arch '%s' is not supported by the QEMU driver (x86_64)", def->os.arch);

        const char *machine = def->os.machine ? def->os.machine : "pc";
        b.q35 = strncmp(machine, "q35", 3) == 0 || strncmp(machine, "pc-q35", 6) == 0;
        b.microvm = streq(machine, "microvm");
        b.kvm = streq(ctx->accel, "kvm");

        add(&b, binary);
        {
                _cleanup_(buf_freep) struct buf n = BUF_INIT;
                put_opt(&n, "guest", def->name);
                add(&b, "-name");
                add_buf(&b, &n);
        }
        if (ctx->uuid || def->uuid)
                add2(&b, "-uuid", ctx->uuid ? ctx->uuid : def->uuid);
        build_machine(&b);
        build_cpu(&b);
        build_memory_smp(&b);
        build_features(&b);
        add(&b, "-nodefaults");
        add(&b, "-no-user-config");
        /* QEMU may not run programs, gain privileges or use obsolete system calls. */
        add2(&b, "-sandbox",
             "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
             "resourcecontrol=deny");
        if (ctx->fds) {
                add_qmp_fd(&b, "dv-qmp", ctx->fds->qmp);
                add_qmp_fd(&b, "dv-events", ctx->fds->events);
        } else {
                add2(&b, "-pidfile", ctx->pidfile);
                add_qmp_paths(&b);
        }
        if (ctx->paused)
                add(&b, "-S");
        build_lifecycle(&b);
        build_firmware(&b);
        build_boot(&b);
        build_clock(&b);
        build_iommu(&b);
        build_controllers(&b);
        build_disks(&b);
        build_filesystems(&b);
        build_interfaces(&b);
        build_serials(&b);
        build_channels(&b);
        build_inputs(&b);
        build_hubs(&b);
        build_graphics(&b);
        build_video(&b);
        build_sounds(&b);
        build_memballoon(&b);
        build_rngs(&b);
        build_watchdogs(&b);
        build_vsock(&b);
        build_panics(&b);
        /* The guest can report a panic (QMP GUEST_PANICKED); -action decides what follows.
         * A written <panic model='isa'> is this device, under libvirt's name. */
        if (!b.microvm)
                add_json(&b, "-device", jdevice("pvpanic", b.panic_isa ? "panic0" : "dv-panic"));
        if (def->features[DOMAIN_FEATURE_VMCOREINFO] != DOMAIN_FEATURE_ABSENT &&
            feature_on(def, DOMAIN_FEATURE_VMCOREINFO))
                add_json(&b, "-device", jdevice("vmcoreinfo", "dv-vmcoreinfo"));

        if (b.r < 0) {
                strv_free(b.argv);
                return b.r;
        }
        *ret = TAKE_PTR(b.argv);
        return 0;
}
