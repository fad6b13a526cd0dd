/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cgroup of a QEMU domain (drivers/domain/qemu-cgroup.h). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/domain/cgroup-bpf.h"
#include "drivers/domain/qemu-cgroup.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static char *cfg_root, *cfg_base;

void qemu_cgroup_set_config(const char *root, const char *base) {
        pthread_mutex_lock(&cfg_lock);
        free(cfg_root);
        free(cfg_base);
        cfg_root = root ? strdup(root) : NULL;
        cfg_base = base ? strdup(base) : NULL;
        pthread_mutex_unlock(&cfg_lock);
}

/* The layout with root and base copied into the two buffers. */
static int layout(struct cgroup_layout *l, char root[static 256], char base[static 128]) {
        pthread_mutex_lock(&cfg_lock);
        snprintf(root, 256, "%s", cfg_root ? cfg_root : CGROUP_DEFAULT_ROOT);
        snprintf(base, 128, "%s", cfg_base ? cfg_base : CGROUP_DEFAULT_BASE);
        pthread_mutex_unlock(&cfg_lock);
        return cgroup_layout_get(root, base, l);
}

/* What QEMU opens by path in its jail: the pseudo-devices, and /dev/kvm for KVM. Disks,
 * taps and /dev/net/tun come as descriptors the agent opened (device rules apply only
 * at open). No mknod: QEMU never makes nodes. */
static const char *const devices_tcg[] = {"c 1:3 rw", "c 1:5 rw", "c 1:8 rw", "c 1:9 rw", NULL};
static const char *const devices_kvm[] = {"c 1:3 rw", "c 1:5 rw",    "c 1:8 rw",
                                          "c 1:9 rw", "c 10:232 rw", NULL};

/* The set of def on this host (pure once the layout is known). */
static int build(const struct domain_def *def, bool kvm, struct cgroup_set *ret,
                 struct dv_error *err) {
        char root[256], base[128];
        struct cgroup_layout l;
        *ret = (struct cgroup_set){0};
        if (layout(&l, root, base) < 0)
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "no cgroup hierarchy found at %s: QEMU cannot be confined",
                                    root);
        const struct cgroup_want want = {
                .devices = kvm ? devices_kvm : devices_tcg,
                .vcpu_pins = true,
                .accounting = true,
                .bpf_devices = true,
        };
        return cgroup_set_build(&l, def, &want, ret, err);
}

void qemu_cgroup_print(const struct domain_def *def, bool kvm, FILE *f) {
        struct cgroup_set s;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        if (build(def, kvm, &s, &err) < 0) {
                fprintf(f, "no cgroup: %s\n", strna(dv_error_message(&err)));
                return;
        }
        cgroup_set_print(&s, f);
        cgroup_set_done(&s);
}

int qemu_cgroup_prepare(const struct domain_def *def, bool kvm, struct qemu_cgroup *ret,
                        struct dv_error *err) {
        *ret = (struct qemu_cgroup){0};
        int r = build(def, kvm, &ret->set, err);
        if (r < 0)
                return r;
        if (!cgroup_set_device_control(&ret->set))
                dv_error_warn(err, 0,
                              "domain %s: device control is not available on this host (no "
                              "cgroup v1 devices controller, and the kernel cannot load a "
                              "cgroup device program): QEMU's device allow-list is not "
                              "enforced",
                              def->name);
        r = cgroup_create(&ret->set, err);
        if (r < 0) {
                (void)cgroup_remove(&ret->set, 0);
                qemu_cgroup_done(ret);
                return r;
        }
        /* Left over from a QEMU that is gone, the cgroup would be empty (and removed):
         * processes in it are not ours, and QEMU does not join them. */
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        if (cgroup_pids(&ret->set, &pids, &n) >= 0 && n > 0) {
                r = dv_error_add(err, -EBUSY, 0,
                                 "the cgroup %s of domain %s holds a process (PID %d) not "
                                 "started by declvirt",
                                 ret->set.dirs[0], def->name, (int)pids[0]);
                qemu_cgroup_done(ret);
                return r;
        }
        r = cgroup_apply(&ret->set, err);
        if (r >= 0)
                r = cgroup_open_members(&ret->set, &ret->fds, &ret->n_fds, &ret->v2_fd, err);
        if (r < 0) {
                (void)cgroup_remove(&ret->set, 0);
                qemu_cgroup_done(ret);
        }
        return r;
}

void qemu_cgroup_done(struct qemu_cgroup *cg) {
        for (size_t i = 0; i < cg->n_fds; i++)
                close(cg->fds[i]);
        free(cg->fds);
        if (cg->v2_fd > 2)
                close(cg->v2_fd);
        cgroup_set_done(&cg->set);
        *cg = (struct qemu_cgroup){0};
}

bool qemu_cgroup_wants_pin(const struct domain_def *def) {
        return def->tune.emulatorpin || def->tune.n_vcpupins > 0;
}

static void to_cpu_set(const struct domain_cpuset *c, cpu_set_t *s) {
        CPU_ZERO(s);
        for (unsigned i = 0; i < DOMAIN_MAX_CPUS && i < CPU_SETSIZE; i++)
                if (domain_cpuset_has(c, i))
                        CPU_SET(i, s);
}

static int pin_one(pid_t tid, const char *cpuset, const char *what, int line,
                   struct dv_error *err) {
        struct domain_cpuset c;
        cpu_set_t s;
        if (domain_cpuset_parse(cpuset, &c) < 0)
                return dv_error_add(err, -EINVAL, line, "bad cpuset '%s'", cpuset);
        to_cpu_set(&c, &s);
        if (sched_setaffinity(tid, sizeof(s), &s) < 0)
                return dv_error_add(err, negative_errno(), line,
                                    "cannot pin %s (thread %d) to CPUs %s: %m", what, (int)tid,
                                    cpuset);
        return 0;
}

int qemu_cgroup_pin(const struct domain_def *def, pid_t pid, struct json_object *cpus,
                    struct dv_error *err) {
        const struct domain_tune *t = &def->tune;
        size_t n = cpus && json_object_is_type(cpus, json_type_array)
                           ? json_object_array_length(cpus)
                           : 0;
        pid_t *vcpu_tid = calloc(n + 1, sizeof(pid_t));
        if (!vcpu_tid)
                return dv_error_oom(err);
        int r = 0;
        /* query-cpus-fast: [{"cpu-index": N, "thread-id": TID, ...}, ...] */
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(cpus, i), *v;
                int idx =
                        json_object_object_get_ex(e, "cpu-index", &v) ? json_object_get_int(v) : -1;
                if (json_object_object_get_ex(e, "thread-id", &v) && idx >= 0 && (size_t)idx < n)
                        vcpu_tid[idx] = (pid_t)json_object_get_int(v);
        }
        for (size_t i = 0; r >= 0 && i < t->n_vcpupins; i++) {
                const struct domain_vcpupin *p = &t->vcpupins[i];
                if (p->vcpu >= n || vcpu_tid[p->vcpu] <= 0) {
                        r = dv_error_add(err, -ENOENT, p->line,
                                         "QEMU did not name the thread of vCPU %u", p->vcpu);
                        break;
                }
                char what[32];
                snprintf(what, sizeof(what), "vCPU %u", p->vcpu);
                r = pin_one(vcpu_tid[p->vcpu], p->cpuset, what, p->line, err);
        }
        if (r >= 0 && t->emulatorpin) {
                /* Every thread that is not a vCPU's: the main loop, I/O and workers (the
                 * threads they start later inherit it). */
                char dir[64];
                snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
                DIR *d = opendir(dir);
                if (!d)
                        r = dv_error_add(err, negative_errno(), 0, "cannot list %s: %m", dir);
                for (struct dirent *de; r >= 0 && d && (de = readdir(d));) {
                        uint64_t tid;
                        if (parse_u64(de->d_name, &tid) < 0)
                                continue;
                        bool vcpu = false;
                        for (size_t i = 0; i < n; i++)
                                vcpu = vcpu || vcpu_tid[i] == (pid_t)tid;
                        if (!vcpu)
                                r = pin_one((pid_t)tid, t->emulatorpin, "an emulator thread",
                                            t->emulatorpin_line, err);
                }
                if (d)
                        closedir(d);
        }
        free(vcpu_tid);
        return r;
}

void qemu_cgroup_remove(const char *name, int wait_msec) {
        char root[256], base[128];
        struct cgroup_layout l;
        struct cgroup_set s;
        if (layout(&l, root, base) < 0 || cgroup_set_dirs(&l, name, true, true, &s) < 0)
                return;
        (void)cgroup_remove(&s, wait_msec);
        cgroup_set_done(&s);
}

bool qemu_cgroup_contains(const char *name, pid_t pid) {
        char root[256], base[128];
        struct cgroup_layout l;
        struct cgroup_set s;
        if (layout(&l, root, base) < 0 || cgroup_set_dirs(&l, name, false, false, &s) < 0)
                return false;
        bool in = cgroup_contains(&s, pid);
        cgroup_set_done(&s);
        return in;
}

bool qemu_cgroup_device_control(void) {
        char root[256], base[128];
        struct cgroup_layout l;
        return layout(&l, root, base) >= 0 &&
               (l.devices || ((l.mode == CGROUP_V2 || l.unified) && cgroup_bpf_supported() >= 0));
}
