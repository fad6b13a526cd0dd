/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container plan of drivers/domain/lxc-plan.h: what a <domain type='lxc'> becomes
 * (namespaces, mounts, cgroup limits, veths, init argv and env), built without touching
 * the host, and its printed form. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/domain/lxc-plan.h"
#include "model/object.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"

#define CONTAINER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void lxc_plan_free(struct lxc_plan *p) {
        if (!p)
                return;
        free(p->name);
        free(p->uid_map);
        free(p->gid_map);
        free(p->root);
        for (size_t i = 0; i < p->n_ops; i++) {
                free(p->ops[i].source);
                free(p->ops[i].target);
                free(p->ops[i].fstype);
                free(p->ops[i].data);
        }
        free(p->ops);
        cgroup_set_done(&p->cg);
        for (size_t i = 0; i < p->n_ifaces; i++) {
                free(p->ifaces[i].bridge);
                free(p->ifaces[i].mac);
        }
        free(p->ifaces);
        strv_free(p->argv);
        strv_free(p->env);
        free(p->cwd);
        free(p->user);
        free(p->group);
        free(p->console_log);
        strv_free(p->mkdirs);
        free(p);
}

/* ---- what the driver cannot honour ------------------------------------------------------ */

static int unsupported(struct dv_error *err, int line, const char *what) {
        return dv_error_add(err, -EOPNOTSUPP, line,
                            "%s (line %d) is not supported by the container driver", what, line);
}

static int check_idmap(const struct domain_idmap *m, size_t n, const char *kind, int line,
                       struct dv_error *err) {
        int r = 0;
        bool root = false;
        if (n > LXC_MAX_IDMAP)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, line,
                                     "<idmap> has %zu <%s> entries; the kernel takes at most %d", n,
                                     kind, LXC_MAX_IDMAP));
        for (size_t i = 0; i < n; i++) {
                if (m[i].count == 0)
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, m[i].line,
                                             "<%s> with count 0 maps nothing", kind));
                if (m[i].start == 0 && m[i].count > 0)
                        root = true;
                for (size_t j = 0; j < i; j++) {
                        uint64_t a0 = m[i].start, a1 = a0 + m[i].count;
                        uint64_t b0 = m[j].start, b1 = b0 + m[j].count;
                        uint64_t c0 = m[i].target, c1 = c0 + m[i].count;
                        uint64_t d0 = m[j].target, d1 = d0 + m[j].count;
                        if ((a0 < b1 && b0 < a1) || (c0 < d1 && d0 < c1))
                                KEEP(r, dv_error_add(err, -EOPNOTSUPP, m[i].line,
                                                     "<%s> overlaps the one on line %d", kind,
                                                     m[j].line));
                }
                if ((uint64_t)m[i].start + m[i].count > UINT32_MAX ||
                    (uint64_t)m[i].target + m[i].count > UINT32_MAX)
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, m[i].line,
                                             "<%s> goes beyond the largest id", kind));
        }
        if (n > 0 && !root)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, line,
                                     "<idmap> does not map %s 0 (the container's root)",
                                     streq(kind, "uid") ? "uid" : "gid"));
        return r;
}

int lxc_check_def(const struct domain_def *def, struct dv_error *err) {
        int r = 0;
        if (def->type != DOMAIN_TYPE_LXC)
                return dv_error_add(err, -EOPNOTSUPP, def->line,
                                    "the container driver runs <domain type='lxc'> only");
        for (size_t i = 0; i < def->n_disks; i++)
                KEEP(r, unsupported(err, def->disks[i].line, "<disk>"));
        for (size_t i = 0; i < def->n_graphics; i++)
                KEEP(r, unsupported(err, def->graphics[i].line, "<graphics>"));
        for (size_t i = 0; i < def->n_videos; i++)
                KEEP(r, unsupported(err, def->videos[i].line, "<video>"));
        for (size_t i = 0; i < def->n_inputs; i++)
                KEEP(r, unsupported(err, def->inputs[i].line, "<input>"));
        for (size_t i = 0; i < def->n_serials; i++)
                KEEP(r, unsupported(err, def->serials[i].line, "<serial>"));
        for (size_t i = 1; i < def->n_consoles; i++)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, def->consoles[i].line,
                                     "a second <console> (line %d) is not supported by the "
                                     "container driver (init's output goes to one log)",
                                     def->consoles[i].line));
        if (def->cpu.present)
                KEEP(r, unsupported(err, def->cpu.line, "<cpu>"));
        if (def->clock.present && def->clock.offset != DOMAIN_CLOCK_UTC)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, def->clock.line,
                                     "<clock> (line %d) other than offset='utc' is not supported "
                                     "by the container driver (containers share the host's clock)",
                                     def->clock.line));
        if (def->vcpu_cpuset)
                KEEP(r, unsupported(err, def->vcpu_line, "<vcpu cpuset>"));
        if (def->has_max_memory)
                KEEP(r, unsupported(err, def->max_memory_line, "<maxMemory>"));
        if (def->has_bootloader)
                KEEP(r, unsupported(err, def->bootloader_line, "<bootloader>"));
        for (int f = 0; f < _DOMAIN_FEATURE_MAX; f++)
                if (f != DOMAIN_FEATURE_PRIVNET && def->features[f] != DOMAIN_FEATURE_ABSENT) {
                        char what[64];
                        snprintf(what, sizeof(what), "<features><%s/>",
                                 domain_feature_to_string((enum domain_feature)f));
                        KEEP(r, unsupported(err, def->line, what));
                }
        if (def->on_poweroff > DOMAIN_LIFECYCLE_DESTROY)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, def->on_poweroff_line,
                                     "<on_poweroff> other than destroy (line %d) is not supported "
                                     "by the container driver (the restart policy decides)",
                                     def->on_poweroff_line));
        if (def->on_crash > DOMAIN_LIFECYCLE_DESTROY)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, def->on_crash_line,
                                     "<on_crash> other than destroy (line %d) is not supported by "
                                     "the container driver (the restart policy decides)",
                                     def->on_crash_line));
        if (def->on_reboot > DOMAIN_LIFECYCLE_RESTART)
                KEEP(r, dv_error_add(err, -EOPNOTSUPP, def->on_reboot_line,
                                     "<on_reboot> other than restart or destroy (line %d) is not "
                                     "supported by the container driver",
                                     def->on_reboot_line));

        bool userns = def->n_uid_map > 0;
        for (size_t i = 0; i < def->n_filesystems; i++) {
                const struct domain_fs *fs = &def->filesystems[i];
                enum domain_fs_type t = domain_fs_type(fs);
                if (fs->accessmode != DOMAIN_FS_ACCESS_UNSET &&
                    fs->accessmode != DOMAIN_FS_ACCESS_PASSTHROUGH)
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, fs->line,
                                             "<filesystem accessmode='%s'> (line %d) is not "
                                             "supported by the container driver (passthrough only)",
                                             domain_fs_access_to_string(fs->accessmode), fs->line));
                enum domain_fs_driver d = fs->driver.type;
                bool driver_ok = d == DOMAIN_FS_DRIVER_UNSET ||
                                 (t == DOMAIN_FS_MOUNT && d == DOMAIN_FS_DRIVER_PATH) ||
                                 (t == DOMAIN_FS_FILE && d == DOMAIN_FS_DRIVER_LOOP);
                if (!driver_ok)
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, fs->line,
                                             "<filesystem type='%s'> with <driver type='%s'> (line "
                                             "%d) is not supported by the container driver",
                                             domain_fs_type_to_string(t),
                                             domain_fs_driver_to_string(d), fs->line));
                if (fs->driver.format && !streq(fs->driver.format, "raw"))
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, fs->line,
                                             "<driver format='%s'> (line %d) is not supported by "
                                             "the container driver (raw images only)",
                                             fs->driver.format, fs->line));
                if (userns && (t == DOMAIN_FS_BLOCK || t == DOMAIN_FS_FILE))
                        KEEP(r,
                             dv_error_add(err, -EOPNOTSUPP, fs->line,
                                          "<filesystem type='%s'> (line %d) cannot be mounted "
                                          "inside a user namespace (<idmap> on line %d): the "
                                          "kernel does not let one mount block devices",
                                          domain_fs_type_to_string(t), fs->line, def->idmap_line));
        }
        for (size_t i = 0; i < def->n_interfaces; i++) {
                const struct domain_net *n = &def->interfaces[i];
                if (n->model)
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, n->line,
                                             "<interface><model type='%s'> (line %d) is not "
                                             "supported by the container driver (a veth has no "
                                             "model)",
                                             n->model, n->line));
                if (n->boot_order)
                        KEEP(r, unsupported(err, n->boot_line, "<interface><boot>"));
        }
        KEEP(r, check_idmap(def->uid_map, def->n_uid_map, "uid", def->idmap_line, err));
        KEEP(r, check_idmap(def->gid_map, def->n_gid_map, "gid", def->idmap_line, err));
        if (def->has_memory && def->memory_kib < LXC_MIN_MEMORY_KIB)
                KEEP(r, dv_error_add(err, -EBUSY, def->memory_line,
                                     "<memory> of container %s is %" PRIu64
                                     " KiB, below the %d KiB a container needs: the kernel would "
                                     "kill its init as it starts",
                                     strna(def->name), def->memory_kib, LXC_MIN_MEMORY_KIB));
        return r;
}

/* ---- names -------------------------------------------------------------------------------- */

static int veth_hex(const char *domain, size_t index, char hex[static HASH_HEX_LEN + 1]) {
        if (dv_name_problem(DV_KIND_DOMAIN, domain))
                return -EINVAL;
        char key[128];
        int n = snprintf(key, sizeof(key), "%s/%zu", domain, index);
        if (n < 0 || (size_t)n >= sizeof(key))
                return -EINVAL;
        hash_hex(key, (size_t)n, hex);
        return 0;
}

int lxc_veth_name(const struct domain_def *def, size_t index, char buf[static IFNAMSIZ]) {
        if (index < def->n_interfaces) {
                const char *t = def->interfaces[index].target_dev;
                if (t && *t && strlen(t) < IFNAMSIZ && !strchr(t, '/')) {
                        memcpy(buf, t, strlen(t) + 1);
                        return 0;
                }
        }
        char hex[HASH_HEX_LEN + 1];
        int r = veth_hex(def->name, index, hex);
        if (r < 0)
                return r;
        snprintf(buf, IFNAMSIZ, "dvc%.8s", hex);
        return 0;
}

/* ---- building ----------------------------------------------------------------------------- */

static struct lxc_op *op_add(struct lxc_plan *p, enum lxc_op_kind kind, const char *source,
                             const char *target, const char *fstype, unsigned long flags,
                             const char *data) {
        struct lxc_op *n = realloc(p->ops, (p->n_ops + 1) * sizeof(*n));
        if (!n)
                return NULL;
        p->ops = n;
        struct lxc_op *o = &p->ops[p->n_ops];
        *o = (struct lxc_op){.kind = kind, .fs_index = -1};
        o->source = source ? strdup(source) : NULL;
        o->target = strdup(target);
        o->fstype = fstype ? strdup(fstype) : NULL;
        o->flags = flags;
        o->data = data ? strdup(data) : NULL;
        p->n_ops++;
        if ((source && !o->source) || !o->target || (fstype && !o->fstype) || (data && !o->data))
                return NULL;
        return o;
}

static size_t depth(const char *path) {
        size_t n = 0;
        for (const char *s = path; *s; s++)
                if (*s == '/' && s[1] && s[1] != '/')
                        n++;
        return n;
}

/* The upper and work directories of a writable template at target: the root's directly in
 * CONTAINER_DIR/NAME, the others' in a subdirectory named by a hash of the target. */
static char *template_state_dir(const struct lxc_plan_ctx *ctx, const char *name,
                                const char *target) {
        if (streq(target, "/"))
                return strdupf("%s/%s", ctx->container_dir, name);
        char hex[HASH_HEX_LEN + 1];
        hash_hex(target, strlen(target), hex);
        return strdupf("%s/%s/fs-%.8s", ctx->container_dir, name, hex);
}

/* A read-only filesystem in a user namespace: a bind remounted read-only by the child
 * could be remounted read-write by the container's root, which owns its mount namespace.
 * An overlay without an upper layer, made by the host's root, has a read-only superblock
 * that only the host's root could change. The agent adds an empty second lower layer
 * (overlayfs wants an upper layer or two lower ones). */
static struct lxc_op *read_only_overlay(struct lxc_plan *p, const char *source,
                                        const char *target) {
        _cleanup_free_ char *data = strdupf("lowerdir=%s", source);
        return data ? op_add(p, LXC_OP_MOUNT, "overlay", target, "overlay", MS_RDONLY, data) : NULL;
}

static int add_filesystem(struct lxc_plan *p, const struct domain_def *def, size_t i,
                          const struct lxc_plan_ctx *ctx) {
        const struct domain_fs *fs = &def->filesystems[i];
        struct lxc_op *o = NULL;
        bool remount = false;
        /* In a user namespace the agent mounts every filesystem itself (see
         * lxc_op.host). With ids from container.id_range they are idmapped: the user's
         * files stay as they are on disk and the host's root shows as the container's.
         * Under <idmap> the user chose the ids the files have: directories are bound as
         * they are; templates, shared and owned by the host's root, are idmapped all the
         * same. */
        bool userns = p->ns_flags & CLONE_NEWUSER;
        bool host = userns, idmap = p->id_range;
        switch (domain_fs_type(fs)) {
        case DOMAIN_FS_MOUNT:
                if (fs->readonly && userns) {
                        o = read_only_overlay(p, fs->source, fs->target_dir);
                        host = true;
                        break;
                }
                o = op_add(p, LXC_OP_MOUNT, fs->source, fs->target_dir, NULL, MS_BIND | MS_REC,
                           NULL);
                remount = fs->readonly;
                break;
        case DOMAIN_FS_BLOCK:
        case DOMAIN_FS_FILE:
                o = op_add(p, LXC_OP_MOUNT, fs->source, fs->target_dir, "auto",
                           fs->readonly ? MS_RDONLY : 0, NULL);
                break;
        case DOMAIN_FS_TEMPLATE: {
                _cleanup_free_ char *lower = path_join(ctx->template_dir, fs->source);
                if (!lower)
                        return -ENOMEM;
                if (fs->readonly && userns) {
                        o = read_only_overlay(p, lower, fs->target_dir);
                        host = idmap = true;
                        break;
                }
                if (fs->readonly) {
                        /* Nothing to write: the template itself, read-only (overlayfs wants
                         * an upper directory or two lower ones). */
                        o = op_add(p, LXC_OP_MOUNT, lower, fs->target_dir, NULL, MS_BIND | MS_REC,
                                   NULL);
                        remount = true;
                        break;
                }
                _cleanup_free_ char *dir = template_state_dir(ctx, def->name, fs->target_dir);
                _cleanup_free_ char *upper = dir ? path_join(dir, "upper") : NULL;
                _cleanup_free_ char *work = dir ? path_join(dir, "work") : NULL;
                _cleanup_free_ char *data =
                        upper && work
                                ? strdupf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
                                : NULL;
                if (!data || strv_push(&p->mkdirs, upper) < 0 || strv_push(&p->mkdirs, work) < 0)
                        return -ENOMEM;
                o = op_add(p, LXC_OP_MOUNT, "overlay", fs->target_dir, "overlay", 0, data);
                /* The container's root may not open the template (the host's root's) nor
                 * mount overlayfs with a lower layer it does not own: the agent mounts it,
                 * with an idmapped lower layer; the upper one stays a plain directory owned
                 * by the container's root (an idmapped upper is refused by the kernel). */
                host = idmap = p->ns_flags & CLONE_NEWUSER;
                break;
        }
        default:
                return -EINVAL;
        }
        if (!o)
                return -ENOMEM;
        o->fs_index = (int)i;
        o->line = fs->line;
        o->host = host;
        o->idmap = idmap;
        if (remount) {
                o = op_add(p, LXC_OP_REMOUNT_RO, NULL, fs->target_dir, NULL, 0, NULL);
                if (!o)
                        return -ENOMEM;
                o->fs_index = (int)i;
                o->line = fs->line;
        }
        return 0;
}

static int add_system_mounts(struct lxc_plan *p) {
        bool userns = p->ns_flags & CLONE_NEWUSER, netns = p->ns_flags & CLONE_NEWNET;
        const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
        /* devpts refuses gid=5 (the tty group) when the user namespace does not map it. */
        bool tty_mapped = !userns || p->id_range;
        for (size_t i = 0; i < p->n_gid_map; i++)
                if (p->gid_map[i].start <= 5 && 5 - p->gid_map[i].start < p->gid_map[i].count)
                        tty_mapped = true;
        /* The kernel's knobs and the magic SysRq key are the host's: read-only. */
        if (!op_add(p, LXC_OP_MOUNT, "proc", "/proc", "proc", nse, NULL) ||
            !op_add(p, LXC_OP_PROTECT, NULL, "/proc/sys", NULL, 0, NULL) ||
            !op_add(p, LXC_OP_PROTECT, NULL, "/proc/sysrq-trigger", NULL, 0, NULL))
                return -ENOMEM;
        if (!userns || netns) {
                struct lxc_op *o =
                        op_add(p, LXC_OP_MOUNT, "sysfs", "/sys", "sysfs", nse | MS_RDONLY, NULL);
                if (!o)
                        return -ENOMEM;
                /* The container's network namespace's sysfs, made by the agent so that
                 * its read-only flag is locked like the others'. */
                o->host = userns;
        } else {
                /* A user namespace may mount sysfs only with a network namespace of its own:
                 * the host's, bound read-only by the agent, so that the read-only flag is
                 * locked when the child copies the mounts into its namespace. */
                struct lxc_op *o = op_add(p, LXC_OP_MOUNT, "/sys", "/sys", NULL,
                                          MS_BIND | MS_REC | MS_RDONLY, NULL);
                if (!o)
                        return -ENOMEM;
                o->host = true;
        }
        if (!op_add(p, LXC_OP_MOUNT, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
                    "mode=755,size=65536k") ||
            !op_add(p, LXC_OP_MOUNT, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                    tty_mapped ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
                               : "newinstance,ptmxmode=0666,mode=0620") ||
            !op_add(p, LXC_OP_MOUNT, "tmpfs", "/dev/shm", "tmpfs", nse, "mode=1777"))
                return -ENOMEM;
        static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                char path[32];
                snprintf(path, sizeof(path), "/dev/%s", nodes[i]);
                if (!op_add(p, LXC_OP_BIND_FILE, path, path, NULL, MS_BIND, NULL))
                        return -ENOMEM;
        }
        static const char *const links[][2] = {
                {"pts/ptmx", "/dev/ptmx"},          {"/proc/self/fd", "/dev/fd"},
                {"/proc/self/fd/0", "/dev/stdin"},  {"/proc/self/fd/1", "/dev/stdout"},
                {"/proc/self/fd/2", "/dev/stderr"},
        };
        for (size_t i = 0; i < ELEMENTSOF(links); i++)
                if (!op_add(p, LXC_OP_SYMLINK, links[i][0], links[i][1], NULL, 0, NULL))
                        return -ENOMEM;
        return 0;
}

/* null, zero, full, random, urandom; tty, console, ptmx; the pseudo-terminals. */
static const char *const allowed_devices[] = {
        "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",   "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", NULL,
};

/* What a container without a user namespace may not keep: its root is the host's root,
 * so these would reach the host (load modules, raw I/O and the disks, the clock, the
 * security modules and audit, device nodes, mounts — a remount of /sys or /proc/sys
 * read-write among them —, the kernel log, accounting, BPF and perf, wake-up alarms,
 * open_by_handle_at() on the host's filesystems; and, when it shares the host's network,
 * the host's interfaces, routes and firewall and raw packets on its links). */
static const struct {
        int cap;
        const char *name;
        bool host_net; /* only when it has no network namespace of its own */
} dropped_caps[] = {
        {CAP_DAC_READ_SEARCH, "dac_read_search", false},
        {CAP_NET_ADMIN, "net_admin", true},
        {CAP_NET_RAW, "net_raw", true},
        {CAP_SYS_MODULE, "sys_module", false},
        {CAP_SYS_RAWIO, "sys_rawio", false},
        {CAP_SYS_TIME, "sys_time", false},
        {CAP_MAC_ADMIN, "mac_admin", false},
        {CAP_MAC_OVERRIDE, "mac_override", false},
        {CAP_AUDIT_CONTROL, "audit_control", false},
        {CAP_MKNOD, "mknod", false},
        {CAP_SYS_ADMIN, "sys_admin", false},
        {CAP_SYSLOG, "syslog", false},
        {CAP_SYS_PACCT, "sys_pacct", false},
        {CAP_BPF, "bpf", false},
        {CAP_PERFMON, "perfmon", false},
        {CAP_WAKE_ALARM, "wake_alarm", false},
        {CAP_BLOCK_SUSPEND, "block_suspend", false},
};

static int add_cgroup(struct lxc_plan *p, const struct domain_def *def,
                      const struct lxc_plan_ctx *ctx, struct dv_error *err) {
        const struct cgroup_layout l = {
                .root = ctx->cgroup_root ? ctx->cgroup_root : CGROUP_DEFAULT_ROOT,
                .base = ctx->cgroup_base ? ctx->cgroup_base : CGROUP_DEFAULT_BASE,
                .mode = ctx->cgroup_mode,
                .unified = ctx->cgroup_unified,
                .devices = ctx->cgroup_devices,
        };
        /* <memory> and <vcpu> are the container's limits (it has no vCPU threads). In a
         * user namespace the agent makes the container's filesystems, so init opens no
         * device before its exec and the device program can apply from the start; a
         * privileged container's init mounts its own, with the v1 devices cgroup joined
         * after. */
        const struct cgroup_want want = {
                .devices = allowed_devices, .vcpu_cap = true, .bpf_devices = !ctx->privileged};
        return cgroup_set_build(&l, def, &want, &p->cg, err);
}

static int add_ifaces(struct lxc_plan *p, const struct domain_def *def,
                      const struct lxc_plan_ctx *ctx, struct dv_error *err) {
        if (def->n_interfaces == 0)
                return 0;
        p->ifaces = calloc(def->n_interfaces, sizeof(*p->ifaces));
        if (!p->ifaces)
                return -ENOMEM;
        p->n_ifaces = def->n_interfaces;
        int r = 0;
        for (size_t i = 0; i < def->n_interfaces; i++) {
                const struct domain_net *n = &def->interfaces[i];
                struct lxc_iface *f = &p->ifaces[i];
                f->line = n->line;
                char hex[HASH_HEX_LEN + 1];
                if (lxc_veth_name(def, i, f->host) < 0 || veth_hex(def->name, i, hex) < 0)
                        return -EINVAL;
                snprintf(f->peer, sizeof(f->peer), "dvp%.8s", hex);
                snprintf(f->guest, sizeof(f->guest), "eth%u", (unsigned)(i % 100000));
                const char *mac = ctx->macs && ctx->macs[i] ? ctx->macs[i] : n->mac;
                const char *br = ctx->bridges && ctx->bridges[i] && *ctx->bridges[i]
                                         ? ctx->bridges[i]
                                         : n->source_bridge;
                if (n->type != DOMAIN_NET_ETHERNET && !br)
                        KEEP(r, dv_error_add(err, -EINVAL, n->line,
                                             "interface %zu of container %s: no bridge to attach "
                                             "it to",
                                             i + 1, def->name));
                if (!mac)
                        KEEP(r, dv_error_add(err, -EINVAL, n->line,
                                             "interface %zu of container %s has no MAC address",
                                             i + 1, def->name));
                f->mac = mac ? strdup(mac) : NULL;
                f->bridge = n->type != DOMAIN_NET_ETHERNET && br ? strdup(br) : NULL;
                if ((mac && !f->mac) || (br && n->type != DOMAIN_NET_ETHERNET && !f->bridge))
                        return -ENOMEM;
        }
        return r;
}

static int add_init(struct lxc_plan *p, const struct domain_def *def) {
        const struct domain_os *os = &def->os;
        if (strv_push(&p->argv, os->init) < 0)
                return -ENOMEM;
        for (size_t i = 0; os->initargs && os->initargs[i]; i++)
                if (strv_push(&p->argv, os->initargs[i]) < 0)
                        return -ENOMEM;
        /* Defaults first; an <initenv> of the same name replaces them. systemd and other
         * programs look at $container to know they run in one. */
        const char *defaults[][2] = {
                {"PATH", CONTAINER_PATH}, {"container", "declvirt"}, {"DECLVIRT_NAME", def->name}};
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++) {
                bool replaced = false;
                for (size_t j = 0; j < os->n_initenv; j++)
                        if (streq(os->initenv[j].name, defaults[i][0]))
                                replaced = true;
                if (!replaced && strv_pushf(&p->env, "%s=%s", defaults[i][0], defaults[i][1]) < 0)
                        return -ENOMEM;
        }
        for (size_t j = 0; j < os->n_initenv; j++)
                if (strv_pushf(&p->env, "%s=%s", os->initenv[j].name,
                               strempty(os->initenv[j].value)) < 0)
                        return -ENOMEM;
        p->cwd = strdup(os->initdir ? os->initdir : "/");
        if (!p->cwd || (os->inituser && !(p->user = strdup(os->inituser))) ||
            (os->initgroup && !(p->group = strdup(os->initgroup))))
                return -ENOMEM;
        return 0;
}

static struct domain_idmap *idmap_copy(const struct domain_idmap *m, size_t n) {
        if (n == 0)
                return NULL;
        struct domain_idmap *c = calloc(n, sizeof(*c));
        if (c)
                memcpy(c, m, n * sizeof(*c));
        return c;
}

/* The host id the container's id 0 maps to. */
static uint32_t idmap_root(const struct domain_idmap *m, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (m[i].start == 0)
                        return m[i].target;
        return 0;
}

int lxc_plan_build(const struct domain_def *def, const struct lxc_plan_ctx *ctx,
                   struct lxc_plan **ret, struct dv_error *err) {
        *ret = NULL;
        const char *problem = dv_name_problem(DV_KIND_DOMAIN, def->name);
        if (problem)
                return dv_error_add(err, -EINVAL, def->name_line, "domain name '%s': %s",
                                    strna(def->name), problem);
        if (!def->os.init)
                return dv_error_add(err, -EINVAL, def->os.line,
                                    "an lxc domain needs <init> in <os>");
        int r = lxc_check_def(def, err);
        if (r < 0)
                return r;
        _cleanup_(lxc_plan_freep) struct lxc_plan *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->name = strdup(def->name);
        p->ns_flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
        if (def->n_interfaces > 0 || domain_def_has_feature(def, DOMAIN_FEATURE_PRIVNET))
                p->ns_flags |= CLONE_NEWNET;
        if (ctx->privileged && def->n_uid_map > 0)
                return dv_error_add(err, -EOPNOTSUPP, def->idmap_line,
                                    "container %s: privileged='yes' and <idmap> (line %d) "
                                    "contradict each other",
                                    def->name, def->idmap_line);
        if (def->n_uid_map == 0 && !ctx->privileged) {
                p->ns_flags |= CLONE_NEWUSER;
                p->id_range = true;
                if (ctx->id_base) {
                        if ((uint64_t)ctx->id_base + LXC_RANGE_IDS > UINT32_MAX)
                                return dv_error_add(err, -ERANGE, 0,
                                                    "container %s: id range at %" PRIu32
                                                    " goes beyond the largest id",
                                                    def->name, ctx->id_base);
                        struct domain_idmap m = {
                                .start = 0, .target = ctx->id_base, .count = LXC_RANGE_IDS};
                        p->uid_map = idmap_copy(&m, 1);
                        p->gid_map = idmap_copy(&m, 1);
                        if (!p->uid_map || !p->gid_map)
                                return -ENOMEM;
                        p->n_uid_map = p->n_gid_map = 1;
                        p->mkdirs_uid = p->mkdirs_gid = ctx->id_base;
                }
        } else if (def->n_uid_map > 0) {
                p->ns_flags |= CLONE_NEWUSER;
                p->uid_map = idmap_copy(def->uid_map, def->n_uid_map);
                p->gid_map = idmap_copy(def->gid_map, def->n_gid_map);
                p->n_uid_map = def->n_uid_map;
                p->n_gid_map = def->n_gid_map;
                if (!p->uid_map || !p->gid_map)
                        return -ENOMEM;
                p->mkdirs_uid = idmap_root(def->uid_map, def->n_uid_map);
                p->mkdirs_gid = idmap_root(def->gid_map, def->n_gid_map);
        }
        if (!(p->ns_flags & CLONE_NEWUSER))
                for (size_t i = 0; i < ELEMENTSOF(dropped_caps); i++)
                        if (!dropped_caps[i].host_net || !(p->ns_flags & CLONE_NEWNET))
                                p->cap_drop |= UINT64_C(1) << dropped_caps[i].cap;
        p->root = strdupf("%s/%s/root", ctx->run_dir, def->name);
        if (!p->name || !p->root)
                return -ENOMEM;

        /* Filesystems by depth of their target, so that "/" comes first and /a before
         * /a/b; equal depths keep the file's order. */
        size_t maxd = 0;
        for (size_t i = 0; i < def->n_filesystems; i++)
                maxd = MAX(maxd, depth(def->filesystems[i].target_dir));
        for (size_t d = 0; d <= maxd; d++)
                for (size_t i = 0; i < def->n_filesystems; i++)
                        if (depth(def->filesystems[i].target_dir) == d &&
                            (r = add_filesystem(p, def, i, ctx)) < 0)
                                return r;
        if ((r = add_system_mounts(p)) < 0 || (r = add_cgroup(p, def, ctx, err)) < 0 ||
            (r = add_init(p, def)) < 0)
                return r;
        /* Read-only remounts last: a read-only root still gets its mount points made. */
        for (size_t i = 0, moved = 0; i + moved < p->n_ops;) {
                if (p->ops[i].kind != LXC_OP_REMOUNT_RO) {
                        i++;
                        continue;
                }
                struct lxc_op o = p->ops[i];
                memmove(&p->ops[i], &p->ops[i + 1], (p->n_ops - i - 1) * sizeof(o));
                p->ops[p->n_ops - 1] = o;
                moved++;
        }
        r = add_ifaces(p, def, ctx, err);
        if (r < 0)
                return r == -ENOMEM ? dv_error_oom(err) : r;

        const struct domain_chr *con = def->n_consoles ? &def->consoles[0] : NULL;
        if (con && domain_chr_type(con) == DOMAIN_CHR_FILE && con->source_path)
                p->console_log = strdup(con->source_path);
        else
                p->console_log = strdupf("%s/%s.console.log", ctx->state_dir, def->name);
        if (!p->console_log)
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- printing ------------------------------------------------------------------------------ */

static const struct {
        unsigned long flag;
        const char *name;
} mount_flags[] = {
        {MS_RDONLY, "ro"},     {MS_NOSUID, "nosuid"}, {MS_NODEV, "nodev"},
        {MS_NOEXEC, "noexec"}, {MS_BIND, "bind"},     {MS_REC, "rec"},
};

static void print_flags(FILE *f, unsigned long flags, const char *data) {
        bool first = true;
        for (size_t i = 0; i < ELEMENTSOF(mount_flags); i++)
                if (flags & mount_flags[i].flag) {
                        fprintf(f, "%s%s", first ? "" : ",", mount_flags[i].name);
                        first = false;
                }
        if (data) {
                fprintf(f, "%s%s", first ? "" : ",", data);
                first = false;
        }
        if (first)
                fputs("defaults", f);
}

/* Elements with spaces, quotes or control characters are quoted, as cmd_argv_string does. */
static void print_word(FILE *f, const char *s) {
        bool plain = *s != '\0';
        for (const char *c = s; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == '"' || *c == '\'' || *c == '\\' || *c == 0x7f)
                        plain = false;
        if (plain) {
                fputs(s, f);
                return;
        }
        fputc('"', f);
        for (const char *c = s; *c; c++) {
                unsigned char u = (unsigned char)*c;
                if (u == '"' || u == '\\')
                        fprintf(f, "\\%c", u);
                else if (u < ' ' || u == 0x7f)
                        fprintf(f, "\\x%02x", u);
                else
                        fputc(u, f);
        }
        fputc('"', f);
}

void lxc_plan_print(const struct lxc_plan *p, FILE *f) {
        static const struct {
                int flag;
                const char *name;
        } ns[] = {{CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mount"}, {CLONE_NEWUTS, "uts"},
                  {CLONE_NEWIPC, "ipc"}, {CLONE_NEWNET, "net"},  {CLONE_NEWUSER, "user"}};
        fprintf(f, "# container plan of domain %s\n", p->name);
        fputs("namespaces", f);
        for (size_t i = 0; i < ELEMENTSOF(ns); i++)
                if (p->ns_flags & ns[i].flag)
                        fprintf(f, " %s", ns[i].name);
        fputc('\n', f);
        fprintf(f, "hostname %s\n", p->name);
        if (p->id_range && p->n_uid_map == 0)
                fputs("uid_map 0 (allocated from container.id_range) 65536\n"
                      "gid_map 0 (allocated from container.id_range) 65536\n",
                      f);
        for (size_t i = 0; i < p->n_uid_map; i++)
                fprintf(f, "uid_map %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", p->uid_map[i].start,
                        p->uid_map[i].target, p->uid_map[i].count);
        for (size_t i = 0; i < p->n_gid_map; i++)
                fprintf(f, "gid_map %" PRIu32 " %" PRIu32 " %" PRIu32 "\n", p->gid_map[i].start,
                        p->gid_map[i].target, p->gid_map[i].count);
        fprintf(f, "root %s\n", p->root);
        for (size_t i = 0; p->mkdirs && p->mkdirs[i]; i++)
                fprintf(f, "mkdir %s\n", p->mkdirs[i]);
        for (size_t i = 0; i < p->n_ops; i++) {
                const struct lxc_op *o = &p->ops[i];
                switch (o->kind) {
                case LXC_OP_MOUNT:
                        fprintf(f, "mount %s source=%s type=%s options=", o->target, o->source,
                                o->fstype ? o->fstype : "none");
                        print_flags(f, o->flags, o->data);
                        if (o->host)
                                fprintf(f, " by-agent%s", o->idmap ? " idmapped" : "");
                        break;
                case LXC_OP_BIND_FILE:
                        fprintf(f, "device %s bind=%s", o->target, o->source);
                        break;
                case LXC_OP_SYMLINK:
                        fprintf(f, "symlink %s -> %s", o->target, o->source);
                        break;
                case LXC_OP_REMOUNT_RO:
                        fprintf(f, "remount %s options=ro", o->target);
                        break;
                case LXC_OP_PROTECT:
                        fprintf(f, "protect %s options=bind,ro", o->target);
                        break;
                }
                if (o->line)
                        fprintf(f, " (filesystem line %d)", o->line);
                fputc('\n', f);
        }
        cgroup_set_print(&p->cg, f);
        if (p->cap_drop) {
                fputs("capabilities drop", f);
                for (size_t i = 0; i < ELEMENTSOF(dropped_caps); i++)
                        if (p->cap_drop & (UINT64_C(1) << dropped_caps[i].cap))
                                fprintf(f, " %s", dropped_caps[i].name);
                fputc('\n', f);
        } else
                fputs("capabilities all (of its user namespace)\n", f);
        for (size_t i = 0; i < p->n_ifaces; i++) {
                const struct lxc_iface *n = &p->ifaces[i];
                fprintf(f, "interface %zu host=%s bridge=%s mac=%s guest=%s\n", i, n->host,
                        n->bridge ? n->bridge : "none", strna(n->mac), n->guest);
        }
        fputs("argv", f);
        for (size_t i = 0; p->argv && p->argv[i]; i++) {
                fputc(' ', f);
                print_word(f, p->argv[i]);
        }
        fputc('\n', f);
        for (size_t i = 0; p->env && p->env[i]; i++) {
                fputs("env ", f);
                print_word(f, p->env[i]);
                fputc('\n', f);
        }
        fprintf(f, "cwd %s\n", p->cwd);
        fprintf(f, "user %s group %s\n", p->user ? p->user : "0", p->group ? p->group : "0");
        fprintf(f, "console %s\n", p->console_log);
}

/* ---- sources ------------------------------------------------------------------------------ */

static const char *fs_what(enum domain_fs_type t) {
        switch (t) {
        case DOMAIN_FS_BLOCK:
                return "block device";
        case DOMAIN_FS_FILE:
                return "image file";
        case DOMAIN_FS_TEMPLATE:
                return "template";
        default:
                return "directory";
        }
}

int lxc_plan_check_sources(const struct domain_def *def, const struct lxc_plan *p,
                           struct dv_error *err) {
        int r = 0;
        _cleanup_free_ char *root_dir = NULL;
        int root_line = 0;
        for (size_t i = 0; i < p->n_ops; i++) {
                const struct lxc_op *o = &p->ops[i];
                if (o->fs_index < 0 || o->kind != LXC_OP_MOUNT)
                        continue;
                const struct domain_fs *fs = &def->filesystems[o->fs_index];
                enum domain_fs_type t = domain_fs_type(fs);
                /* The template's lower directory, or the source itself. */
                const char *path = o->fstype && streq(o->fstype, "overlay")
                                           ? strstr(o->data, "lowerdir=") + 9
                                           : o->source;
                _cleanup_free_ char *copy = strndup(path, strcspn(path, ","));
                if (!copy)
                        return -ENOMEM;
                struct stat st;
                if (stat(copy, &st) < 0) {
                        int e = negative_errno();
                        if (t == DOMAIN_FS_TEMPLATE)
                                KEEP(r, dv_error_add(err, e, fs->line,
                                                     "template '%s' of <filesystem> (line %d): %s: "
                                                     "%s",
                                                     fs->source, fs->line, copy, strerror(-e)));
                        else
                                KEEP(r, dv_error_add(err, e, fs->line,
                                                     "source %s %s of <filesystem> (line %d): %s",
                                                     fs_what(t), copy, fs->line, strerror(-e)));
                        continue;
                }
                bool ok = t == DOMAIN_FS_BLOCK  ? S_ISBLK(st.st_mode)
                          : t == DOMAIN_FS_FILE ? S_ISREG(st.st_mode)
                                                : S_ISDIR(st.st_mode);
                if (!ok) {
                        KEEP(r,
                             dv_error_add(err, -ENOTDIR, fs->line,
                                          "source %s of <filesystem> (line %d) is not %s %s", copy,
                                          fs->line, t == DOMAIN_FS_FILE ? "an" : "a", fs_what(t)));
                        continue;
                }
                if (streq(fs->target_dir, "/") &&
                    (t == DOMAIN_FS_MOUNT || t == DOMAIN_FS_TEMPLATE)) {
                        free(root_dir);
                        root_dir = TAKE_PTR(copy);
                        root_line = fs->line;
                }
        }
        if (r < 0 || !root_dir)
                return r;
        /* The init is looked up inside the root as the container will see it: symlinks
         * resolved within it (an absolute link points into the root, not the host). */
        const char *rd = root_dir;
        _cleanup_close_ int dfd = open(rd, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return dv_error_add(err, negative_errno(), root_line, "cannot open %s: %m", rd);
        /* A path under another <filesystem>'s target is not in this directory: checked
         * when the container starts. */
        for (size_t i = 0; i < def->n_filesystems; i++) {
                const char *t = def->filesystems[i].target_dir;
                size_t n = strlen(t);
                if (!streq(t, "/") && strncmp(def->os.init, t, n) == 0 && def->os.init[n] == '/')
                        return 0;
        }
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
        int fd = (int)syscall(SYS_openat2, dfd, def->os.init, &how, sizeof(how));
        if (fd < 0) {
                int e = negative_errno();
                if (e == -ENOSYS)
                        return 0;
                return dv_error_add(err, e == -ENOENT || e == -ENOTDIR ? -ENOENT : e,
                                    def->os.init_line,
                                    "init %s not found in the container's root filesystem "
                                    "(filesystem at line %d): %s",
                                    def->os.init, root_line, strerror(-e));
        }
        struct stat st;
        int k = fstat(fd, &st);
        close(fd);
        if (k < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                return dv_error_add(err, -EACCES, def->os.init_line,
                                    "init %s in the container's root filesystem (filesystem at "
                                    "line %d) is not an executable file",
                                    def->os.init, root_line);
        return 0;
}
