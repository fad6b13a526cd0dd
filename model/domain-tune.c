/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <memtune>, <cputune> and <blkiotune> of a domain (model/domain.h, struct domain_tune):
 * read with libvirt's units and ranges, checked against the rest of the definition. The
 * drivers apply them through the domain's cgroup (drivers/domain/cgroup.c). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/domain.h"
#include "model/xml.h"
#include "util/macro.h"

#define LINE(n)    dv_xml_line(n)
#define NAME(n)    ((const char *)(n)->name)
#define ATTRS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* libvirt's ranges (virsh schedinfo): periods in µs, quotas in µs or negative for none. */
#define PERIOD_MIN 1000
#define PERIOD_MAX 1000000
#define QUOTA_MIN  1000
#define QUOTA_MAX  INT64_C(17592186044415)
#define SHARES_MIN 2
#define SHARES_MAX 262144
#define WEIGHT_MIN 10
#define WEIGHT_MAX 1000

int domain_cpuset_parse(const char *s, struct domain_cpuset *ret) {
        *ret = (struct domain_cpuset){0};
        struct domain_cpuset minus = {0};
        const char *p = s;
        if (!p || !*p)
                return -EINVAL;
        for (;;) {
                bool neg = *p == '^';
                if (neg)
                        p++;
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                char *end;
                errno = 0;
                unsigned long a = strtoul(p, &end, 10), b = a;
                if (errno || a >= DOMAIN_MAX_CPUS)
                        return -EINVAL;
                p = end;
                if (*p == '-' && !neg) {
                        p++;
                        if (!isdigit((unsigned char)*p))
                                return -EINVAL;
                        b = strtoul(p, &end, 10);
                        if (errno || b >= DOMAIN_MAX_CPUS || b < a)
                                return -EINVAL;
                        p = end;
                }
                for (unsigned long c = a; c <= b; c++)
                        (neg ? &minus : ret)->w[c / 64] |= UINT64_C(1) << (c % 64);
                if (*p == '\0')
                        break;
                if (*p != ',')
                        return -EINVAL;
                p++;
        }
        bool any = false;
        for (size_t i = 0; i < ELEMENTSOF(ret->w); i++) {
                ret->w[i] &= ~minus.w[i];
                any = any || ret->w[i];
        }
        return any ? 0 : -ERANGE;
}

void domain_cpuset_format(const struct domain_cpuset *c, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = '\0';
        for (unsigned i = 0; i < DOMAIN_MAX_CPUS; i++) {
                if (!domain_cpuset_has(c, i))
                        continue;
                unsigned j = i;
                while (j + 1 < DOMAIN_MAX_CPUS && domain_cpuset_has(c, j + 1))
                        j++;
                int k = j > i ? snprintf(buf + len, size - len, "%s%u-%u", len ? "," : "", i, j)
                              : snprintf(buf + len, size - len, "%s%u", len ? "," : "", i);
                if (k < 0 || (size_t)k >= size - len)
                        return; /* truncated: callers size buf for the worst case */
                len += (size_t)k;
                i = j;
        }
}

void domain_tune_done(struct domain_tune *t) {
        for (size_t i = 0; i < t->n_vcpupins; i++)
                free(t->vcpupins[i].cpuset);
        free(t->vcpupins);
        free(t->emulatorpin);
        for (size_t i = 0; i < t->n_blkio_devs; i++)
                free(t->blkio_devs[i].path);
        free(t->blkio_devs);
        *t = (struct domain_tune){0};
}

/* An unsigned leaf in [min, max]. */
static int leaf_u64(const xmlNode *n, uint64_t min, uint64_t max, uint64_t *ret,
                    struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        int r = dv_xml_leaf_text(n, &v, err);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        unsigned long long x = v && isdigit((unsigned char)*v) ? strtoull(v, &end, 10) : 0;
        if (!v || !isdigit((unsigned char)*v) || errno || *end || x < min || x > max)
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "<%s> '%s' is not a whole number from %" PRIu64 " to %" PRIu64,
                                    NAME(n), strempty(v), min, max);
        *ret = x;
        return 0;
}

/* A quota: -1 (or any negative value: no limit, as libvirt reads it) or [QUOTA_MIN, QUOTA_MAX]. */
static int leaf_quota(const xmlNode *n, int64_t *ret, struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        int r = dv_xml_leaf_text(n, &v, err);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        long long x = v && *v ? strtoll(v, &end, 10) : 0;
        if (!v || !*v || errno || *end || (x >= 0 && (x < QUOTA_MIN || x > QUOTA_MAX)))
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "<%s> '%s' must be -1 (no limit) or from %d to %" PRId64,
                                    NAME(n), strempty(v), QUOTA_MIN, QUOTA_MAX);
        *ret = x < 0 ? -1 : x;
        return 0;
}

/* A memtune size: libvirt units, KiB by default, rounded up to KiB. */
static int leaf_kib(const xmlNode *n, uint64_t *ret, struct dv_error *err) {
        uint64_t bytes = 0;
        int r = dv_xml_scaled_leaf(n, "KiB", &bytes, err);
        if (r < 0)
                return r;
        if (bytes > (UINT64_C(1) << 62))
                return dv_error_add(err, -ERANGE, LINE(n), "<%s>: more than 4 EiB", NAME(n));
        *ret = bytes / 1024 + (bytes % 1024 != 0);
        return 0;
}

/* One more zeroed element of an array of at most max (cheap hostile files); NULL with
 * *r set when not. */
static void *grow(void *arrayp, size_t *n, size_t size, size_t max, const xmlNode *c, int *r,
                  struct dv_error *err) {
        void **a = arrayp;
        if (*n >= max) {
                KEEP(*r, dv_error_add(err, -E2BIG, LINE(c), "more than %zu <%s> elements", max,
                                      NAME(c)));
                return NULL;
        }
        char *p = realloc(*a, (*n + 1) * size);
        if (!p) {
                *r = -ENOMEM;
                return NULL;
        }
        *a = p;
        memset(p + *n * size, 0, size);
        return p + (*n)++ * size;
}

/* The numeric children of an element, each allowed once: where each goes. */
enum num_kind { NUM_U64, NUM_QUOTA, NUM_KIB };
struct num_child {
        const char *name;
        enum num_kind kind;
        uint64_t min, max; /* NUM_U64 */
        bool *has;
        void *value; /* uint64_t, or int64_t for NUM_QUOTA */
        int *line;   /* NULL: not kept */
};

/* Reads c when it is one of the table's; 1 when it was (r the outcome in *ret), 0 if not. */
static int num_child(const xmlNode *c, const xmlNode *parent, const struct num_child *tab, size_t n,
                     const void **seen, int *ret, struct dv_error *err) {
        for (size_t i = 0; i < n; i++) {
                if (!dv_xml_is(c, tab[i].name))
                        continue;
                KEEP(*ret, dv_xml_once(&seen[i], c, parent, err));
                int q = tab[i].kind == NUM_QUOTA ? leaf_quota(c, tab[i].value, err)
                        : tab[i].kind == NUM_KIB
                                ? leaf_kib(c, tab[i].value, err)
                                : leaf_u64(c, tab[i].min, tab[i].max, tab[i].value, err);
                KEEP(*ret, q);
                *tab[i].has = q >= 0;
                if (tab[i].line)
                        *tab[i].line = LINE(c);
                return 1;
        }
        return 0;
}

static int parse_memtune(const xmlNode *n, struct domain_tune *t, struct dv_error *err) {
        t->has_memtune = true;
        t->memtune_line = LINE(n);
        int r = dv_xml_check_attrs(n, NULL, err);
        const struct num_child tab[] = {
                {"hard_limit", NUM_KIB, 0, 0, &t->has_hard_limit, &t->hard_limit_kib,
                 &t->hard_limit_line},
                {"soft_limit", NUM_KIB, 0, 0, &t->has_soft_limit, &t->soft_limit_kib,
                 &t->soft_limit_line},
                {"swap_hard_limit", NUM_KIB, 0, 0, &t->has_swap_hard_limit, &t->swap_hard_limit_kib,
                 &t->swap_hard_limit_line},
                {"min_guarantee", NUM_KIB, 0, 0, &t->has_min_guarantee, &t->min_guarantee_kib,
                 &t->min_guarantee_line},
        };
        const void *seen[ELEMENTSOF(tab)] = {0};
        dv_xml_foreach_child(c, n) if (!num_child(c, n, tab, ELEMENTSOF(tab), seen, &r, err))
                KEEP(r, dv_xml_unknown(c, n, err));
        /* libvirt's own rule: swap is the sum of memory and swap, so never below memory. */
        if (t->has_hard_limit && t->has_swap_hard_limit &&
            t->swap_hard_limit_kib < t->hard_limit_kib)
                KEEP(r, dv_error_add(err, -EINVAL, t->swap_hard_limit_line,
                                     "<swap_hard_limit> (%" PRIu64 " KiB) is below <hard_limit> "
                                     "(%" PRIu64 " KiB): it limits memory and swap together",
                                     t->swap_hard_limit_kib, t->hard_limit_kib));
        return r;
}

/* Children of <cputune> declvirt cannot apply: refused by name, never silently dropped. */
#define CPUTUNE_REFUSED                                                                         \
        ATTRS("iothread_period", "iothread_quota", "iothreadpin", "vcpusched", "iothreadsched", \
              "emulatorsched", "cachetune", "memorytune")

static int parse_pin(const xmlNode *c, bool vcpu, char **ret_cpuset, unsigned *ret_vcpu,
                     struct dv_error *err) {
        int r = dv_xml_check_empty(c, vcpu ? ATTRS("vcpu", "cpuset") : ATTRS("cpuset"), err);
        uint64_t v = 0;
        if (vcpu) {
                int q = dv_xml_prop_u64_required(c, "vcpu", 0, DOMAIN_MAX_CPUS - 1, &v, err);
                KEEP(r, q);
                *ret_vcpu = (unsigned)v;
        }
        int q = dv_xml_prop_required(c, "cpuset", ret_cpuset, err);
        KEEP(r, q);
        struct domain_cpuset set;
        if (q >= 0 && domain_cpuset_parse(*ret_cpuset, &set) < 0)
                KEEP(r, dv_error_add(err, -EINVAL, LINE(c),
                                     "<%s> cpuset '%s' is not a CPU list such as '0-3,^2' (CPUs "
                                     "below %d, at least one)",
                                     NAME(c), *ret_cpuset, DOMAIN_MAX_CPUS));
        return r;
}

static int parse_cputune(const xmlNode *n, struct domain_tune *t, struct dv_error *err) {
        t->has_cputune = true;
        t->cputune_line = LINE(n);
        int r = dv_xml_check_attrs(n, NULL, err);
        const struct num_child tab[] = {
                {"shares", NUM_U64, SHARES_MIN, SHARES_MAX, &t->has_shares, &t->shares,
                 &t->shares_line},
                {"period", NUM_U64, PERIOD_MIN, PERIOD_MAX, &t->has_period, &t->period,
                 &t->period_line},
                {"quota", NUM_QUOTA, 0, 0, &t->has_quota, &t->quota, &t->quota_line},
                {"global_period", NUM_U64, PERIOD_MIN, PERIOD_MAX, &t->has_global_period,
                 &t->global_period, &t->global_line},
                {"global_quota", NUM_QUOTA, 0, 0, &t->has_global_quota, &t->global_quota,
                 &t->global_line},
                {"emulator_period", NUM_U64, PERIOD_MIN, PERIOD_MAX, &t->has_emulator_period,
                 &t->emulator_period, &t->emulator_line},
                {"emulator_quota", NUM_QUOTA, 0, 0, &t->has_emulator_quota, &t->emulator_quota,
                 &t->emulator_line},
        };
        const void *seen[ELEMENTSOF(tab)] = {0}, *seen_pin = NULL;
        dv_xml_foreach_child(c, n) {
                if (num_child(c, n, tab, ELEMENTSOF(tab), seen, &r, err))
                        continue;
                if (dv_xml_is(c, "vcpupin")) {
                        struct domain_vcpupin *p = grow(&t->vcpupins, &t->n_vcpupins, sizeof(*p),
                                                        DOMAIN_MAX_CPUS, c, &r, err);
                        if (!p) {
                                if (r == -ENOMEM)
                                        return r;
                                continue;
                        }
                        p->line = LINE(c);
                        KEEP(r, parse_pin(c, true, &p->cpuset, &p->vcpu, err));
                } else if (dv_xml_is(c, "emulatorpin")) {
                        KEEP(r, dv_xml_once(&seen_pin, c, n, err));
                        free(t->emulatorpin);
                        t->emulatorpin = NULL;
                        t->emulatorpin_line = LINE(c);
                        KEEP(r, parse_pin(c, false, &t->emulatorpin, NULL, err));
                } else if (dv_xml_name_in(c, CPUTUNE_REFUSED))
                        KEEP(r, dv_error_add(err, -EOPNOTSUPP, LINE(c),
                                             "<%s> in <cputune> is not supported (declvirt applies "
                                             "shares, period, quota, global_period, global_quota, "
                                             "vcpupin and emulatorpin)",
                                             NAME(c)));
                else
                        KEEP(r, dv_xml_unknown(c, n, err));
        }
        for (size_t i = 0; i < t->n_vcpupins; i++)
                for (size_t j = 0; j < i; j++)
                        if (t->vcpupins[i].vcpu == t->vcpupins[j].vcpu)
                                KEEP(r, dv_error_add(err, -EINVAL, t->vcpupins[i].line,
                                                     "vCPU %u is pinned twice (first on line %d)",
                                                     t->vcpupins[i].vcpu, t->vcpupins[j].line));
        return r;
}

static int parse_blkio_dev(const xmlNode *n, struct domain_blkio_dev *d, struct dv_error *err) {
        d->line = LINE(n);
        int r = dv_xml_check_attrs(n, NULL, err);
        uint64_t weight = 0;
        const struct num_child tab[] = {
                {"weight", NUM_U64, WEIGHT_MIN, WEIGHT_MAX, &d->has_weight, &weight, NULL},
                {"read_bytes_sec", NUM_U64, 0, UINT64_MAX, &d->has_read_bytes, &d->read_bytes_sec,
                 NULL},
                {"write_bytes_sec", NUM_U64, 0, UINT64_MAX, &d->has_write_bytes,
                 &d->write_bytes_sec, NULL},
                {"read_iops_sec", NUM_U64, 0, UINT64_MAX, &d->has_read_iops, &d->read_iops_sec,
                 NULL},
                {"write_iops_sec", NUM_U64, 0, UINT64_MAX, &d->has_write_iops, &d->write_iops_sec,
                 NULL},
        };
        const void *seen[ELEMENTSOF(tab)] = {0}, *seen_path = NULL;
        dv_xml_foreach_child(c, n) {
                if (num_child(c, n, tab, ELEMENTSOF(tab), seen, &r, err))
                        continue;
                if (!dv_xml_is(c, "path")) {
                        KEEP(r, dv_xml_unknown(c, n, err));
                        continue;
                }
                KEEP(r, dv_xml_once(&seen_path, c, n, err));
                free(d->path);
                d->path = NULL;
                int q = dv_xml_leaf_text(c, &d->path, err);
                KEEP(r, q);
                if (q >= 0 && (!d->path || d->path[0] != '/'))
                        KEEP(r, dv_error_add(err, -EINVAL, LINE(c),
                                             "<path> '%s' in <blkiotune> is not an absolute path",
                                             strempty(d->path)));
        }
        d->weight = (unsigned)weight;
        if (!seen_path)
                KEEP(r,
                     dv_error_add(err, -EINVAL, d->line, "<device> in <blkiotune> needs a <path>"));
        return r;
}

static int parse_blkiotune(const xmlNode *n, struct domain_tune *t, struct dv_error *err) {
        t->has_blkiotune = true;
        t->blkiotune_line = LINE(n);
        int r = dv_xml_check_attrs(n, NULL, err);
        const void *seen = NULL;
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "weight")) {
                        uint64_t v = 0;
                        KEEP(r, dv_xml_once(&seen, c, n, err));
                        int q = leaf_u64(c, WEIGHT_MIN, WEIGHT_MAX, &v, err);
                        KEEP(r, q);
                        t->has_blkio_weight = q >= 0;
                        t->blkio_weight = (unsigned)v;
                        t->blkio_weight_line = LINE(c);
                } else if (dv_xml_is(c, "device")) {
                        struct domain_blkio_dev *d =
                                grow(&t->blkio_devs, &t->n_blkio_devs, sizeof(*d), 256, c, &r, err);
                        if (!d) {
                                if (r == -ENOMEM)
                                        return r;
                                continue;
                        }
                        KEEP(r, parse_blkio_dev(c, d, err));
                } else
                        KEEP(r, dv_xml_unknown(c, n, err));
        }
        for (size_t i = 0; i < t->n_blkio_devs; i++)
                for (size_t j = 0; j < i; j++)
                        if (t->blkio_devs[i].path && t->blkio_devs[j].path &&
                            streq(t->blkio_devs[i].path, t->blkio_devs[j].path))
                                KEEP(r, dv_error_add(err, -EINVAL, t->blkio_devs[i].line,
                                                     "device %s appears twice in <blkiotune> "
                                                     "(first on line %d)",
                                                     t->blkio_devs[i].path, t->blkio_devs[j].line));
        return r;
}

int domain_tune_parse(const void *node, struct domain_def *def, struct dv_error *err) {
        const xmlNode *n = node;
        struct domain_tune *t = &def->tune;
        /* A second element would silently replace the first: refused. */
        int first = dv_xml_is(n, "memtune")     ? t->memtune_line
                    : dv_xml_is(n, "cputune")   ? t->cputune_line
                    : dv_xml_is(n, "blkiotune") ? t->blkiotune_line
                                                : -1;
        if (first < 0)
                return 0;
        if (first > 0)
                return dv_error_add(err, -EINVAL, LINE(n),
                                    "element <%s> appears more than once in <domain> (first on "
                                    "line %d)",
                                    NAME(n), first);
        if (dv_xml_is(n, "memtune"))
                return parse_memtune(n, t, err);
        if (dv_xml_is(n, "cputune"))
                return parse_cputune(n, t, err);
        return parse_blkiotune(n, t, err);
}

int domain_tune_validate(const struct domain_def *def, struct dv_error *err) {
        const struct domain_tune *t = &def->tune;
        unsigned vcpus = domain_def_vcpus(def);
        int r = 0;
        for (size_t i = 0; i < t->n_vcpupins; i++)
                if (t->vcpupins[i].vcpu >= vcpus)
                        KEEP(r, dv_error_add(err, -EINVAL, t->vcpupins[i].line,
                                             "<vcpupin vcpu='%u'>: the domain has %u vCPU%s "
                                             "(0 to %u)",
                                             t->vcpupins[i].vcpu, vcpus, vcpus == 1 ? "" : "s",
                                             vcpus - 1));
        return r;
}
