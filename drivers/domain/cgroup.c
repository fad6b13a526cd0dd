/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cgroup of a domain (drivers/domain/cgroup.h): the set of directories and limits
 * built from the definition, and create, limit, join, check and remove on the host. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "drivers/domain/cgroup-bpf.h"
#include "drivers/domain/cgroup.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"

void cgroup_set_done(struct cgroup_set *s) {
        strv_free(s->dirs);
        free(s->check_ctrl);
        free(s->check_path);
        for (size_t i = 0; i < s->n_limits; i++) {
                free(s->limits[i].file);
                free(s->limits[i].alt_file);
                free(s->limits[i].value);
                free(s->limits[i].dev_path);
        }
        free(s->limits);
        free(s->devices_dir);
        free(s->bpf_dir);
        free(s->v2_dir);
        strv_free(s->device_rules);
        free(s->cpuset);
        *s = (struct cgroup_set){0};
}

/* ---- building the set (pure) -------------------------------------------------------------- */

/* Appends a limit; value (may be NULL for CGROUP_LIMIT_PARENT) is taken over. */
static struct cgroup_limit *limit_push(struct cgroup_set *s, enum cgroup_limit_kind kind,
                                       const char *dir, const char *file, char *value,
                                       const char *what, int line, int *r) {
        struct cgroup_limit *n = realloc(s->limits, (s->n_limits + 1) * sizeof(*n));
        if (!n || (kind != CGROUP_LIMIT_PARENT && !value)) {
                free(value);
                *r = -ENOMEM;
                return NULL;
        }
        s->limits = n;
        struct cgroup_limit *l = &s->limits[s->n_limits++];
        *l = (struct cgroup_limit){.kind = kind,
                                   .file = path_join(dir, file),
                                   .value = value,
                                   .what = what,
                                   .line = line};
        if (!l->file) {
                *r = -ENOMEM;
                return NULL;
        }
        return l;
}

static int limit_add(struct cgroup_set *s, const char *dir, const char *file, char *value,
                     const char *what, int line) {
        int r = 0;
        limit_push(s, CGROUP_LIMIT_VALUE, dir, file, value, what, line, &r);
        return r;
}

/* A limit that fails with "missing" as the reason when the host lacks the file. */
static int limit_add_why(struct cgroup_set *s, const char *dir, const char *file, char *value,
                         const char *what, int line, const char *missing) {
        int r = 0;
        struct cgroup_limit *l =
                limit_push(s, CGROUP_LIMIT_VALUE, dir, file, value, what, line, &r);
        if (l)
                l->missing = missing;
        return r;
}

/* A per-device limit: dev_path's "MAJ:MIN" goes before value when applied. file_alt:
 * the BFQ name of a weight file, NULL. */
static int limit_add_dev(struct cgroup_set *s, const char *dir, const char *file,
                         const char *file_alt, const char *dev_path, char *value, const char *what,
                         int line, const char *missing) {
        int r = 0;
        struct cgroup_limit *l =
                limit_push(s, CGROUP_LIMIT_DEVICE, dir, file, value, what, line, &r);
        if (!l)
                return r;
        l->missing = missing;
        l->dev_path = strdup(dev_path);
        if (file_alt)
                l->alt_file = path_join(dir, file_alt);
        return !l->dev_path || (file_alt && !l->alt_file) ? -ENOMEM : 0;
}

/* The CFS period and quota over the whole cgroup, or false when nothing caps CPU time.
 * libvirt's <period>/<quota> are per vCPU: one cgroup holds every thread here, so the
 * quota is multiplied by the vCPUs; <global_*> apply as they are. With both, the
 * smaller rate wins (libvirt enforces both, on the vCPUs' and the whole cgroup). */
static bool cpu_cap(const struct domain_def *def, const struct cgroup_want *w, uint64_t *period,
                    int64_t *quota, int *line) {
        const struct domain_tune *t = &def->tune;
        unsigned vcpus = domain_def_vcpus(def);
        bool per = t->has_period || t->has_quota,
             glob = t->has_global_period || t->has_global_quota;
        uint64_t p1 = t->has_period ? t->period : CGROUP_CPU_PERIOD_USEC;
        int64_t q1 = t->has_quota && t->quota >= 0 ? t->quota * (int64_t)vcpus : -1;
        uint64_t p2 = t->has_global_period ? t->global_period : CGROUP_CPU_PERIOD_USEC;
        int64_t q2 = t->has_global_quota ? t->global_quota : -1;
        if (w->vcpu_cap && def->has_vcpu && !t->has_quota && !t->has_global_quota) {
                /* A container's <vcpu> N: at most N CPUs' worth of time. */
                per = true;
                q1 = (int64_t)vcpus * (int64_t)p1;
                *line = def->vcpu_line;
        } else
                *line = t->has_quota || t->has_period
                                ? (t->quota_line ? t->quota_line : t->period_line)
                                : t->global_line;
        if (per && glob && q1 >= 0 && q2 >= 0) {
                if ((unsigned __int128)q2 * p1 < (unsigned __int128)q1 * p2)
                        per = false;
                else
                        glob = false;
        } else if (per && glob)
                per = q1 >= 0 || q2 < 0;
        if (!per && !glob)
                return false;
        *period = per ? p1 : p2;
        *quota = per ? q1 : q2;
        if (!per)
                *line = t->global_line;
        return true;
}

/* The CPUs the domain may use when pinned ("" when it is not): emulatorpin with every
 * vcpupin, so that each vCPU thread can be given its own within the cgroup's. */
static int pinned_cpus(const struct domain_def *def, const struct cgroup_want *w, char **ret) {
        const struct domain_tune *t = &def->tune;
        struct domain_cpuset all = {0}, one;
        bool any = false;
        if (t->emulatorpin && domain_cpuset_parse(t->emulatorpin, &all) == 0)
                any = true;
        /* vCPUs pinned with the emulator free: the cgroup keeps the parent's CPUs. */
        for (size_t i = 0; any && w->vcpu_pins && i < t->n_vcpupins; i++)
                if (domain_cpuset_parse(t->vcpupins[i].cpuset, &one) == 0)
                        for (size_t k = 0; k < ELEMENTSOF(all.w); k++)
                                all.w[k] |= one.w[k];
        char buf[DOMAIN_MAX_CPUS * 5];
        buf[0] = '\0';
        if (any)
                domain_cpuset_format(&all, buf, sizeof(buf));
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int refuse(struct dv_error *err, int line, const char *elem, const char *why) {
        return dv_error_add(err, -EOPNOTSUPP, line, "<%s> cannot be applied: %s", elem, why);
}

static int check_tune(const struct cgroup_layout *l, const struct domain_def *def,
                      const struct cgroup_want *w, struct dv_error *err) {
        const struct domain_tune *t = &def->tune;
        int r = 0;
        if (t->has_min_guarantee && l->mode == CGROUP_V1)
                KEEP(r, refuse(err, t->min_guarantee_line, "min_guarantee",
                               "cgroup v1 has no memory guarantee (cgroup v2's memory.min has)"));
        if (t->has_swap_hard_limit && l->mode == CGROUP_V2 && !t->has_hard_limit)
                KEEP(r, refuse(err, t->swap_hard_limit_line, "swap_hard_limit",
                               "on cgroup v2 it needs a <hard_limit> (memory.swap.max counts "
                               "swap alone)"));
        if (t->has_emulator_period || t->has_emulator_quota)
                KEEP(r, refuse(err, t->emulator_line, "emulator_period/emulator_quota",
                               "the emulator's and the vCPUs' threads share one cgroup; use "
                               "<global_quota> or <quota>"));
        if (t->n_vcpupins && !w->vcpu_pins)
                KEEP(r, refuse(err, t->vcpupins[0].line, "vcpupin",
                               "a container has no vCPU threads (<emulatorpin> pins all of it)"));
        return r;
}

/* libvirt's conversion of cpu.shares (2..262144) to cgroup v2's cpu.weight (1..10000). */
static uint64_t shares_to_weight(uint64_t shares) {
        return 1 + ((shares - 2) * 9999) / 262142;
}

#define NO_SWAP_ACCOUNTING                                                            \
        "the host has no swap accounting (no memory.memsw.limit_in_bytes: boot with " \
        "swapaccount=1)"
#define NO_BLKIO_WEIGHT                                                        \
        "the host's I/O schedulers take no weights (neither blkio.weight nor " \
        "blkio.bfq.weight: use BFQ or CFQ)"

static int build_v1(const struct cgroup_layout *l, const struct domain_def *def,
                    const struct cgroup_want *w, struct cgroup_set *s) {
        const struct domain_tune *t = &def->tune;
        const char *root = l->root, *base = l->base, *name = def->name;
        bool pin = !!*s->cpuset || (w->vcpu_pins && t->n_vcpupins > 0);
        int r = 0;
        _cleanup_free_ char *mem = strdupf("%s/memory/%s/%s", root, base, name);
        _cleanup_free_ char *cpu = strdupf("%s/cpu/%s/%s", root, base, name);
        _cleanup_free_ char *cpuset = strdupf("%s/cpuset/%s/%s", root, base, name);
        _cleanup_free_ char *cpuset_top = strdupf("%s/cpuset/%s", root, base);
        _cleanup_free_ char *blkio = strdupf("%s/blkio/%s/%s", root, base, name);
        if (!mem || !cpu || !cpuset || !cpuset_top || !blkio)
                return -ENOMEM;
        s->check_ctrl = strdup("memory");
        if (!s->check_ctrl || strv_push(&s->dirs, mem) < 0 || strv_push(&s->dirs, cpu) < 0)
                return -ENOMEM;
        if (w->accounting &&
            strv_consume(&s->dirs, strdupf("%s/cpuacct/%s/%s", root, base, name)) < 0)
                return -ENOMEM;
        if (pin && strv_push(&s->dirs, cpuset) < 0)
                return -ENOMEM;
        if (t->has_blkiotune && strv_push(&s->dirs, blkio) < 0)
                return -ENOMEM;
        if (w->accounting && strv_consume(&s->dirs, strdupf("%s/pids/%s/%s", root, base, name)) < 0)
                return -ENOMEM;
        if (l->unified) {
                char *u = strdupf("%s/unified/%s/%s", root, base, name);
                if (strv_consume(&s->dirs, u) < 0 || !(s->v2_dir = strdup(u)))
                        return -ENOMEM;
                /* The v1 list and the program both apply on a hybrid host: the program
                 * keeps the list should the v1 devices cgroup be left. */
                if (w->devices && w->bpf_devices && !(s->bpf_dir = strdup(u)))
                        return -ENOMEM;
        }
        if (w->devices && l->devices) {
                s->devices_dir = strdupf("%s/devices/%s/%s", root, base, name);
                if (!s->devices_dir || strv_push(&s->dirs, s->devices_dir) < 0)
                        return -ENOMEM;
                /* Nothing but the listed devices: no host disk, even through a node the
                 * domain finds or makes. */
                KEEP(r, limit_add(s, s->devices_dir, "devices.deny", strdup("a"), "devices", 0));
                for (size_t i = 0; w->devices[i]; i++)
                        KEEP(r, limit_add(s, s->devices_dir, "devices.allow", strdup(w->devices[i]),
                                          "devices", 0));
        }
        if (t->has_hard_limit)
                KEEP(r, limit_add(s, mem, "memory.limit_in_bytes",
                                  strdupf("%" PRIu64, t->hard_limit_kib * 1024), "memory",
                                  t->hard_limit_line));
        else if (w->vcpu_cap && def->has_memory)
                KEEP(r, limit_add(s, mem, "memory.limit_in_bytes",
                                  strdupf("%" PRIu64, def->memory_kib * 1024), "memory",
                                  def->memory_line));
        if (t->has_soft_limit)
                KEEP(r, limit_add(s, mem, "memory.soft_limit_in_bytes",
                                  strdupf("%" PRIu64, t->soft_limit_kib * 1024), "memory soft",
                                  t->soft_limit_line));
        if (t->has_swap_hard_limit)
                KEEP(r,
                     limit_add_why(s, mem, "memory.memsw.limit_in_bytes",
                                   strdupf("%" PRIu64, t->swap_hard_limit_kib * 1024),
                                   "memory and swap", t->swap_hard_limit_line, NO_SWAP_ACCOUNTING));
        if (t->has_shares)
                KEEP(r, limit_add(s, cpu, "cpu.shares", strdupf("%" PRIu64, t->shares),
                                  "cpu shares", t->shares_line));
        uint64_t period;
        int64_t quota;
        int line;
        if (cpu_cap(def, w, &period, &quota, &line)) {
                const char *what = w->vcpu_cap && def->has_vcpu && line == def->vcpu_line
                                           ? "vcpus"
                                           : "cpu quota";
                KEEP(r, limit_add(s, cpu, "cpu.cfs_period_us", strdupf("%" PRIu64, period), what,
                                  line));
                KEEP(r,
                     limit_add(s, cpu, "cpu.cfs_quota_us", strdupf("%" PRId64, quota), what, line));
        }
        if (pin) {
                /* A new v1 cpuset cgroup has no CPUs and no memory nodes: nothing could
                 * run in it. Each level gets its parent's first. */
                limit_push(s, CGROUP_LIMIT_PARENT, cpuset_top, "cpuset.cpus", NULL, "cpuset", 0,
                           &r);
                limit_push(s, CGROUP_LIMIT_PARENT, cpuset_top, "cpuset.mems", NULL, "cpuset", 0,
                           &r);
                limit_push(s, CGROUP_LIMIT_PARENT, cpuset, "cpuset.mems", NULL, "cpuset", 0, &r);
                if (*s->cpuset)
                        KEEP(r, limit_add(s, cpuset, "cpuset.cpus", strdup(s->cpuset), "cpuset",
                                          t->emulatorpin_line));
                else
                        limit_push(s, CGROUP_LIMIT_PARENT, cpuset, "cpuset.cpus", NULL, "cpuset", 0,
                                   &r);
        }
        if (t->has_blkio_weight) {
                struct cgroup_limit *x = limit_push(s, CGROUP_LIMIT_VALUE, blkio, "blkio.weight",
                                                    strdupf("%u", t->blkio_weight), "blkio weight",
                                                    t->blkio_weight_line, &r);
                if (x) {
                        x->missing = NO_BLKIO_WEIGHT;
                        if (!(x->alt_file = path_join(blkio, "blkio.bfq.weight")))
                                r = -ENOMEM;
                }
        }
        for (size_t i = 0; i < t->n_blkio_devs; i++) {
                const struct domain_blkio_dev *d = &t->blkio_devs[i];
                if (d->has_weight)
                        KEEP(r, limit_add_dev(s, blkio, "blkio.weight_device",
                                              "blkio.bfq.weight_device", d->path,
                                              strdupf("%u", d->weight), "blkio weight", d->line,
                                              NO_BLKIO_WEIGHT));
                static const struct {
                        const char *file;
                        size_t has, val;
                } th[] = {
                        {"blkio.throttle.read_bps_device",
                         offsetof(struct domain_blkio_dev, has_read_bytes),
                         offsetof(struct domain_blkio_dev, read_bytes_sec)},
                        {"blkio.throttle.write_bps_device",
                         offsetof(struct domain_blkio_dev, has_write_bytes),
                         offsetof(struct domain_blkio_dev, write_bytes_sec)},
                        {"blkio.throttle.read_iops_device",
                         offsetof(struct domain_blkio_dev, has_read_iops),
                         offsetof(struct domain_blkio_dev, read_iops_sec)},
                        {"blkio.throttle.write_iops_device",
                         offsetof(struct domain_blkio_dev, has_write_iops),
                         offsetof(struct domain_blkio_dev, write_iops_sec)},
                };
                for (size_t k = 0; k < ELEMENTSOF(th); k++) {
                        if (!*(const bool *)((const char *)d + th[k].has))
                                continue;
                        uint64_t v = *(const uint64_t *)((const char *)d + th[k].val);
                        KEEP(r, limit_add_dev(s, blkio, th[k].file, NULL, d->path,
                                              strdupf("%" PRIu64, v), "blkio throttle", d->line,
                                              "the host has no blkio throttling"));
                }
        }
        return r;
}

static int build_v2(const struct cgroup_layout *l, const struct domain_def *def,
                    const struct cgroup_want *w, struct cgroup_set *s) {
        const struct domain_tune *t = &def->tune;
        int r = 0;
        _cleanup_free_ char *top = path_join(l->root, l->base);
        _cleanup_free_ char *dir = top ? path_join(top, def->name) : NULL;
        s->check_ctrl = strdup("");
        if (!dir || !s->check_ctrl || strv_push(&s->dirs, dir) < 0 || !(s->v2_dir = strdup(dir)))
                return -ENOMEM;
        if (w->devices && w->bpf_devices && !(s->bpf_dir = strdup(dir)))
                return -ENOMEM;
        uint64_t period;
        int64_t quota;
        int line;
        bool cap = cpu_cap(def, w, &period, &quota, &line);
        /* The controllers reach the domain's cgroup only when every level above hands them
         * down. */
        char ctl[64] = "+memory";
        if (cap || t->has_shares)
                strcat(ctl, " +cpu");
        if (*s->cpuset)
                strcat(ctl, " +cpuset");
        if (t->has_blkiotune)
                strcat(ctl, " +io");
        if (w->accounting)
                strcat(ctl, " +pids");
        KEEP(r, limit_add(s, l->root, "cgroup.subtree_control", strdup(ctl), "controllers", 0));
        KEEP(r, limit_add(s, top, "cgroup.subtree_control", strdup(ctl), "controllers", 0));
        if (t->has_hard_limit)
                KEEP(r,
                     limit_add(s, dir, "memory.max", strdupf("%" PRIu64, t->hard_limit_kib * 1024),
                               "memory", t->hard_limit_line));
        else if (w->vcpu_cap && def->has_memory)
                KEEP(r, limit_add(s, dir, "memory.max", strdupf("%" PRIu64, def->memory_kib * 1024),
                                  "memory", def->memory_line));
        if (t->has_soft_limit)
                KEEP(r,
                     limit_add(s, dir, "memory.high", strdupf("%" PRIu64, t->soft_limit_kib * 1024),
                               "memory soft", t->soft_limit_line));
        if (t->has_swap_hard_limit && t->has_hard_limit)
                KEEP(r, limit_add(s, dir, "memory.swap.max",
                                  strdupf("%" PRIu64,
                                          (t->swap_hard_limit_kib - t->hard_limit_kib) * 1024),
                                  "swap", t->swap_hard_limit_line));
        if (t->has_min_guarantee)
                KEEP(r, limit_add(s, dir, "memory.min",
                                  strdupf("%" PRIu64, t->min_guarantee_kib * 1024),
                                  "memory guarantee", t->min_guarantee_line));
        if (t->has_shares)
                KEEP(r, limit_add(s, dir, "cpu.weight",
                                  strdupf("%" PRIu64, shares_to_weight(t->shares)), "cpu shares",
                                  t->shares_line));
        if (cap) {
                const char *what = w->vcpu_cap && def->has_vcpu && line == def->vcpu_line
                                           ? "vcpus"
                                           : "cpu quota";
                KEEP(r, limit_add(s, dir, "cpu.max",
                                  quota < 0 ? strdupf("max %" PRIu64, period)
                                            : strdupf("%" PRId64 " %" PRIu64, quota, period),
                                  what, line));
        }
        if (*s->cpuset)
                KEEP(r, limit_add(s, dir, "cpuset.cpus", strdup(s->cpuset), "cpuset",
                                  t->emulatorpin_line));
        if (t->has_blkio_weight)
                KEEP(r, limit_add(s, dir, "io.weight", strdupf("default %u", t->blkio_weight),
                                  "blkio weight", t->blkio_weight_line));
        for (size_t i = 0; i < t->n_blkio_devs; i++) {
                const struct domain_blkio_dev *d = &t->blkio_devs[i];
                if (d->has_weight)
                        KEEP(r, limit_add_dev(s, dir, "io.weight", NULL, d->path,
                                              strdupf("%u", d->weight), "blkio weight", d->line,
                                              NULL));
                if (!d->has_read_bytes && !d->has_write_bytes && !d->has_read_iops &&
                    !d->has_write_iops)
                        continue;
                /* io.max takes "max" for no limit; libvirt writes 0 for that. */
                char v[4][32];
                const uint64_t x[4] = {d->has_read_bytes ? d->read_bytes_sec : 0,
                                       d->has_write_bytes ? d->write_bytes_sec : 0,
                                       d->has_read_iops ? d->read_iops_sec : 0,
                                       d->has_write_iops ? d->write_iops_sec : 0};
                for (size_t k = 0; k < 4; k++) {
                        if (x[k])
                                snprintf(v[k], sizeof(v[k]), "%" PRIu64, x[k]);
                        else
                                strcpy(v[k], "max");
                }
                KEEP(r, limit_add_dev(s, dir, "io.max", NULL, d->path,
                                      strdupf("rbps=%s wbps=%s riops=%s wiops=%s", v[0], v[1], v[2],
                                              v[3]),
                                      "blkio throttle", d->line, NULL));
        }
        return r;
}

int cgroup_set_build(const struct cgroup_layout *l, const struct domain_def *def,
                     const struct cgroup_want *want, struct cgroup_set *ret, struct dv_error *err) {
        *ret = (struct cgroup_set){0};
        int r = check_tune(l, def, want, err);
        if (r < 0)
                return r;
        ret->devices_wanted = want->devices != NULL;
        if (want->devices && want->bpf_devices &&
            !(ret->device_rules = strv_copy((char *const *)want->devices)))
                r = -ENOMEM;
        ret->check_path = strdupf("/%s/%s", l->base, def->name);
        if (r < 0 || !ret->check_path || pinned_cpus(def, want, &ret->cpuset) < 0)
                r = -ENOMEM;
        else
                r = l->mode == CGROUP_V2 ? build_v2(l, def, want, ret)
                                         : build_v1(l, def, want, ret);
        if (r < 0) {
                cgroup_set_done(ret);
                return r == -ENOMEM ? dv_error_oom(err) : r;
        }
        return 0;
}

int cgroup_set_dirs(const struct cgroup_layout *l, const char *name, bool devices, bool accounting,
                    struct cgroup_set *ret) {
        *ret = (struct cgroup_set){0};
        int r = 0;
        ret->check_ctrl = strdup(l->mode == CGROUP_V2 ? "" : "memory");
        ret->check_path = strdupf("/%s/%s", l->base, name);
        ret->cpuset = strdup("");
        if (!ret->check_ctrl || !ret->check_path || !ret->cpuset)
                r = -ENOMEM;
        else if (l->mode == CGROUP_V2)
                r = strv_consume(&ret->dirs, strdupf("%s/%s/%s", l->root, l->base, name));
        else {
                /* Every hierarchy a set may use: removing a missing one is fine. */
                const char *h[] = {"memory",
                                   "cpu",
                                   "cpuacct",
                                   "cpuset",
                                   "blkio",
                                   "pids",
                                   l->unified ? "unified" : NULL,
                                   devices && l->devices ? "devices" : NULL};
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(h); i++) {
                        if (!h[i] ||
                            (!accounting && (streq(h[i], "cpuacct") || streq(h[i], "pids"))))
                                continue;
                        char *d = strdupf("%s/%s/%s/%s", l->root, h[i], l->base, name);
                        r = strv_consume(&ret->dirs, d);
                        if (r >= 0 && streq(h[i], "devices") && !(ret->devices_dir = strdup(d)))
                                r = -ENOMEM;
                }
        }
        if (r < 0)
                cgroup_set_done(ret);
        return r;
}

void cgroup_set_print(const struct cgroup_set *s, FILE *f) {
        for (size_t i = 0; s->dirs && s->dirs[i]; i++)
                fprintf(f, "cgroup %s\n", s->dirs[i]);
        for (size_t i = 0; i < s->n_limits; i++) {
                const struct cgroup_limit *l = &s->limits[i];
                if (l->kind == CGROUP_LIMIT_PARENT)
                        fprintf(f, "limit %s %s = (the parent's)\n", l->what, l->file);
                else if (l->kind == CGROUP_LIMIT_DEVICE)
                        fprintf(f, "limit %s %s = (%s) %s\n", l->what, l->file, l->dev_path,
                                l->value);
                else
                        fprintf(f, "limit %s %s = %s\n", l->what, l->file, l->value);
        }
        if (s->bpf_dir)
                fprintf(f, "devices program %s (%zu rules)\n", s->bpf_dir,
                        strv_length(s->device_rules));
        if (s->devices_wanted && !s->devices_dir && !s->bpf_dir)
                fputs("devices not-controlled (no cgroup v1 devices controller)\n", f);
}

/* ---- on the host ----------------------------------------------------------------------- */

int cgroup_detect(const char *root, enum cgroup_mode *ret_mode, bool *ret_unified) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/cgroup.controllers", root);
        *ret_unified = false;
        if (access(p, F_OK) == 0) {
                *ret_mode = CGROUP_V2;
                return 0;
        }
        snprintf(p, sizeof(p), "%s/memory", root);
        if (access(p, F_OK) < 0)
                return -ENOENT;
        *ret_mode = CGROUP_V1;
        snprintf(p, sizeof(p), "%s/unified/cgroup.controllers", root);
        *ret_unified = access(p, F_OK) == 0;
        return 0;
}

/* Cached: the host's hierarchies do not change under a running agent. */
int cgroup_layout_get(const char *root, const char *base, struct cgroup_layout *ret) {
        static pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;
        static char *cached_root;
        static enum cgroup_mode cached_mode;
        static bool cached_unified, cached_devices;
        static int cached_r;
        pthread_mutex_lock(&cg_lock);
        if (!cached_root || !streq(cached_root, root)) {
                free(cached_root);
                cached_root = strdup(root);
                cached_r = cgroup_detect(root, &cached_mode, &cached_unified);
                _cleanup_free_ char *allow = path_join(root, "devices/devices.allow");
                cached_devices = cached_r >= 0 && cached_mode == CGROUP_V1 && allow &&
                                 access(allow, F_OK) == 0;
        }
        *ret = (struct cgroup_layout){.root = root,
                                      .base = base,
                                      .mode = cached_mode,
                                      .unified = cached_unified,
                                      .devices = cached_devices};
        int r = cached_r;
        pthread_mutex_unlock(&cg_lock);
        return r;
}

int cgroup_create(const struct cgroup_set *p, struct dv_error *err) {
        size_t tail = p->check_path ? strlen(p->check_path) : 0;
        for (size_t i = 0; p->dirs && p->dirs[i]; i++) {
                const char *d = p->dirs[i];
                /* The hierarchy itself must be there: mkdir -p would otherwise make a plain
                 * directory in the tmpfs at /sys/fs/cgroup. */
                size_t len = strlen(d);
                _cleanup_free_ char *hier = len > tail ? strndup(d, len - tail) : NULL;
                if (hier && access(hier, F_OK) < 0)
                        return dv_error_add(err, -EOPNOTSUPP, 0,
                                            "cannot create cgroup %s: the host has no cgroup "
                                            "hierarchy at %s",
                                            d, hier);
                int r = mkdir_p(d, 0755);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot create cgroup %s: %s", d,
                                            strerror(-r));
        }
        return 0;
}

static int write_value(const char *file, const char *value) {
        _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(value);
        ssize_t k = write(fd, value, n);
        if (k < 0)
                return negative_errno();
        return (size_t)k == n ? 0 : -EIO;
}

/* The same file one directory up, its last newline dropped ("0-1"). */
static int parent_value(const char *file, char **ret) {
        _cleanup_free_ char *dir = path_dirname(file);
        _cleanup_free_ char *up = dir ? path_dirname(dir) : NULL;
        const char *base = strrchr(file, '/');
        _cleanup_free_ char *pf = up && base ? path_join(up, base + 1) : NULL;
        if (!pf)
                return -ENOMEM;
        size_t len = 0;
        int r = read_full_file(pf, 64 * 1024, ret, &len);
        if (r < 0)
                return r;
        while (len > 0 && ((*ret)[len - 1] == '\n' || (*ret)[len - 1] == ' '))
                (*ret)[--len] = '\0';
        return 0;
}

/* "MAJ:MIN value" of a block device node, checked to be one. */
static int device_value(const struct cgroup_limit *l, char **ret, struct dv_error *err) {
        struct stat st;
        if (stat(l->dev_path, &st) < 0)
                return dv_error_add(err, negative_errno(), l->line, "cannot set %s on %s: %m",
                                    l->what, l->dev_path);
        if (!S_ISBLK(st.st_mode))
                return dv_error_add(err, -EINVAL, l->line,
                                    "cannot set %s on %s: not a block device", l->what,
                                    l->dev_path);
        *ret = strdupf("%u:%u %s", major(st.st_rdev), minor(st.st_rdev), l->value);
        return *ret ? 0 : dv_error_oom(err);
}

/* The device program on bpf_dir (docs/design.md, "Device allow-lists on cgroup v2"). */
static int apply_bpf(const struct cgroup_set *p, struct dv_error *err) {
        if (!p->bpf_dir)
                return 0;
        int r = cgroup_bpf_supported();
        if (r < 0) {
                log_debug("cgroup %s: no device program (%s)%s", p->bpf_dir, strerror(-r),
                          p->devices_dir ? ": the v1 devices cgroup alone controls devices" : "");
                return 0;
        }
        size_t n = strv_length(p->device_rules);
        _cleanup_free_ struct cgroup_dev_rule *rules = calloc(n + 1, sizeof(*rules));
        if (!rules)
                return dv_error_oom(err);
        for (size_t i = 0; i < n; i++) {
                r = cgroup_dev_rule_parse(p->device_rules[i], &rules[i], err);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int fd = open(p->bpf_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return dv_error_add(err, -errno, 0, "cannot open %s: %m", p->bpf_dir);
        return cgroup_bpf_devices_set(fd, p->bpf_dir, rules, n, err);
}

int cgroup_apply(const struct cgroup_set *p, struct dv_error *err) {
        for (size_t i = 0; i < p->n_limits; i++) {
                const struct cgroup_limit *l = &p->limits[i];
                const char *file = l->file;
                if (l->alt_file && access(file, F_OK) < 0 && access(l->alt_file, F_OK) == 0)
                        file = l->alt_file;
                _cleanup_free_ char *v = NULL;
                int r = 0;
                if (l->kind == CGROUP_LIMIT_PARENT) {
                        r = parent_value(file, &v);
                        if (r < 0)
                                return dv_error_add(err, r, 0, "cannot read the parent's %s: %s",
                                                    file, strerror(-r));
                } else if (l->kind == CGROUP_LIMIT_DEVICE) {
                        r = device_value(l, &v, err);
                        if (r < 0)
                                return r;
                }
                const char *value = v ? v : l->value;
                log_debug("cgroup %s: %s = %s", strna(p->check_path), file, value);
                r = write_value(file, value);
                if (r == -ENOENT && l->missing)
                        return dv_error_add(err, -EOPNOTSUPP, l->line, "cannot set %s %s: %s",
                                            l->what, value, l->missing);
                if (r < 0) {
                        if (streq(l->what, "controllers"))
                                return dv_error_add(err, r, l->line,
                                                    "cannot enable the cgroup controllers '%s' "
                                                    "in %s: %s",
                                                    value, file, strerror(-r));
                        return dv_error_add(err, r, l->line,
                                            "cannot set %s limit %s in %s: %s (the kernel refused "
                                            "it)",
                                            l->what, value, file, strerror(-r));
                }
        }
        return apply_bpf(p, err);
}

bool cgroup_set_device_control(const struct cgroup_set *s) {
        return s->devices_dir || (s->bpf_dir && cgroup_bpf_supported() >= 0);
}

int cgroup_join(const struct cgroup_set *p, pid_t pid, bool skip_devices, struct dv_error *err) {
        char v[32];
        snprintf(v, sizeof(v), "%d", (int)pid);
        for (size_t i = 0; p->dirs && p->dirs[i]; i++) {
                if (skip_devices && p->devices_dir && streq(p->dirs[i], p->devices_dir))
                        continue;
                _cleanup_free_ char *f = path_join(p->dirs[i], "cgroup.procs");
                if (!f)
                        return -ENOMEM;
                int r = write_value(f, v);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot move PID %d into %s: %s", (int)pid,
                                            f, strerror(-r));
        }
        return 0;
}

int cgroup_open_members(const struct cgroup_set *p, int **ret_fds, size_t *ret_n, int *ret_v2_fd,
                        struct dv_error *err) {
        size_t n = strv_length(p->dirs), k = 0;
        int *fds = calloc(n + 1, sizeof(int));
        _cleanup_close_ int v2 = -1;
        if (!fds)
                return dv_error_oom(err);
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *d = p->dirs[i];
                if (ret_v2_fd && p->v2_dir && streq(d, p->v2_dir)) {
                        v2 = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (v2 < 0)
                                r = dv_error_add(err, -errno, 0, "cannot open %s: %m", d);
                        continue;
                }
                _cleanup_free_ char *t = path_join(d, "tasks");
                _cleanup_free_ char *f =
                        t && access(t, F_OK) == 0 ? TAKE_PTR(t) : path_join(d, "cgroup.procs");
                fds[k] = f ? open(f, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW) : -ENOMEM;
                if (fds[k] < 0)
                        r = dv_error_add(err, f ? negative_errno() : -ENOMEM, 0,
                                         "cannot open %s: %s", strna(f),
                                         strerror(f ? errno : ENOMEM));
                else
                        k++;
        }
        if (r < 0) {
                for (size_t i = 0; i < k; i++)
                        close(fds[i]);
                free(fds);
                return r;
        }
        /* Above stdio: cmd_creds takes 0 for "none". */
        if (v2 >= 0 && v2 <= 2) {
                int moved = fcntl(v2, F_DUPFD_CLOEXEC, 3);
                close(v2);
                v2 = moved;
        }
        if (ret_v2_fd)
                *ret_v2_fd = v2 >= 0 ? TAKE_FD(v2) : 0;
        *ret_fds = fds;
        *ret_n = k;
        return 0;
}

int cgroup_remove(const struct cgroup_set *p, int wait_msec) {
        int ret = 0;
        for (size_t i = 0; p->dirs && p->dirs[i]; i++) {
                /* Tasks of a pid namespace that is going away leave their cgroup a moment
                 * after its init is reaped. */
                for (int waited = 0;; waited += 10) {
                        if (rmdir(p->dirs[i]) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY || waited >= wait_msec) {
                                log_debug("cannot remove cgroup %s: %m", p->dirs[i]);
                                if (ret == 0)
                                        ret = negative_errno();
                                break;
                        }
                        (void)poll(NULL, 0, 10);
                }
        }
        return ret;
}

bool cgroup_contains(const struct cgroup_set *p, pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(path, 64 * 1024, &s, &len) < 0)
                return false;
        size_t cl = strlen(p->check_ctrl);
        for (char *line = s; line && *line;) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                /* "ID:CONTROLLERS:PATH", CONTROLLERS comma-separated, empty for v2. */
                char *c = strchr(line, ':');
                char *q = c ? strchr(c + 1, ':') : NULL;
                if (c && q) {
                        bool match = false;
                        if (cl == 0)
                                match = q == c + 1;
                        else
                                for (char *w = c + 1; w < q;) {
                                        size_t n = strcspn(w, ",:");
                                        if (n == cl && strncmp(w, p->check_ctrl, n) == 0)
                                                match = true;
                                        w += n + 1;
                                }
                        if (match && streq(q + 1, p->check_path))
                                return true;
                }
                line = end ? end + 1 : NULL;
        }
        return false;
}

int cgroup_pids(const struct cgroup_set *p, pid_t **ret, size_t *n) {
        *ret = NULL;
        *n = 0;
        if (!p->dirs || !p->dirs[0])
                return 0;
        _cleanup_free_ char *f = path_join(p->dirs[0], "cgroup.procs");
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (!f)
                return -ENOMEM;
        int r = read_full_file(f, 1 << 20, &s, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (char *line = s; line && *line;) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                uint64_t v = 0;
                if (parse_u64(line, &v) == 0 && v > 1 && v <= INT32_MAX) {
                        pid_t *k = realloc(*ret, (*n + 1) * sizeof(pid_t));
                        if (!k) {
                                free(*ret);
                                *ret = NULL;
                                *n = 0;
                                return -ENOMEM;
                        }
                        *ret = k;
                        (*ret)[(*n)++] = (pid_t)v;
                }
                line = end ? end + 1 : NULL;
        }
        return 0;
}
