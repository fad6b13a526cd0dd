/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The disk pool driver: a gpt or dos partition table on one device, written with
 * `parted mklabel` only on a device that carries no signature; partitions are volumes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/storage/blkid.h"
#include "drivers/storage/disk.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"

/* ---- labels and names ------------------------------------------------------------------- */

/* libvirt's names on the left, parted's on the right. lvm2 (a whole-disk PV) is not a
 * partition table parted makes. */
static const struct {
        const char *format, *parted;
} labels[] = {
        {"dos", "msdos"}, {"gpt", "gpt"}, {"mac", "mac"},   {"bsd", "bsd"},
        {"dvh", "dvh"},   {"sun", "sun"}, {"pc98", "pc98"},
};

const char *drv_disk_label_to_parted(const char *format) {
        for (size_t i = 0; format && i < ELEMENTSOF(labels); i++)
                if (streq(labels[i].format, format))
                        return labels[i].parted;
        return NULL;
}

const char *drv_disk_label_from_parted(const char *label) {
        for (size_t i = 0; label && i < ELEMENTSOF(labels); i++)
                if (streq(labels[i].parted, label))
                        return labels[i].format;
        return NULL;
}

const char *drv_disk_pool_format(const struct pool_def *def) {
        return def->source.format ? def->source.format : "gpt";
}

char *drv_disk_partition_path(const char *dev, unsigned number) {
        size_t l = dev ? strlen(dev) : 0;
        if (l == 0 || number == 0)
                return NULL;
        bool digit = dev[l - 1] >= '0' && dev[l - 1] <= '9';
        char *p = NULL;
        if (asprintf(&p, "%s%s%u", dev, digit ? "p" : "", number) < 0)
                return NULL;
        return p;
}

int drv_disk_partition_number(const char *dev, const char *name, unsigned *ret) {
        if (!dev || !name)
                return -EINVAL;
        const char *base = strrchr(dev, '/');
        base = base ? base + 1 : dev;
        size_t bl = strlen(base);
        if (bl == 0 || strncmp(name, base, bl) != 0)
                return -EINVAL;
        const char *num = name + bl;
        if (base[bl - 1] >= '0' && base[bl - 1] <= '9') {
                if (*num != 'p')
                        return -EINVAL;
                num++;
        }
        /* No leading zero: "loop0p01" is not a name the kernel gives. */
        if (num[0] < '1' || num[0] > '9')
                return -EINVAL;
        uint64_t n;
        if (parse_u64_range(num, 1, 4096, &n) < 0)
                return -EINVAL;
        *ret = (unsigned)n;
        return 0;
}

/* ---- parted's machine-readable output --------------------------------------------------- */

void disk_table_done(struct disk_table *t) {
        if (!t)
                return;
        free(t->label);
        for (size_t i = 0; i < t->n_parts; i++) {
                free(t->parts[i].fs);
                free(t->parts[i].name);
                free(t->parts[i].flags);
        }
        free(t->parts);
        free(t->free);
        *t = (struct disk_table){0};
}

static int table_copy(const struct disk_table *src, struct disk_table *dst) {
        struct disk_table t = {
                .size = src->size,
                .logical_sector = src->logical_sector,
                .label = src->label ? strdup(src->label) : NULL,
        };
        if (src->label && !t.label)
                return -ENOMEM;
        if (src->n_parts > 0) {
                t.parts = calloc(src->n_parts, sizeof(*t.parts));
                if (!t.parts) {
                        disk_table_done(&t);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < src->n_parts; i++) {
                        const struct disk_partition *s = &src->parts[i];
                        t.parts[i] = (struct disk_partition){.number = s->number,
                                                             .start = s->start,
                                                             .end = s->end,
                                                             .size = s->size,
                                                             .fs = strdup(s->fs),
                                                             .name = strdup(s->name),
                                                             .flags = strdup(s->flags)};
                        t.n_parts++;
                        if (!t.parts[i].fs || !t.parts[i].name || !t.parts[i].flags) {
                                disk_table_done(&t);
                                return -ENOMEM;
                        }
                }
        }
        if (src->n_free > 0) {
                t.free = calloc(src->n_free, sizeof(*t.free));
                if (!t.free) {
                        disk_table_done(&t);
                        return -ENOMEM;
                }
                memcpy(t.free, src->free, src->n_free * sizeof(*t.free));
                t.n_free = src->n_free;
        }
        *dst = t;
        return 0;
}

/* Splits one line (without its newline) into fields at unescaped ':'; the trailing ';'
 * is required and dropped. Returns the number of fields or a negative errno. */
static int split_fields(const char *line, size_t len, char ***ret) {
        if (len == 0 || line[len - 1] != ';')
                return -EINVAL;
        len--;
        _cleanup_strv_free_ char **f = NULL;
        _cleanup_buf_ struct buf cur = BUF_INIT;
        int n = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || line[i] == ':') {
                        char *s = buf_steal(&cur);
                        if (!s)
                                s = strdup("");
                        if (!s || strv_consume(&f, s) < 0)
                                return -ENOMEM;
                        n++;
                        continue;
                }
                if (line[i] == '\\' && i + 1 < len)
                        i++;
                buf_putc(&cur, line[i]);
        }
        if (cur.oom)
                return -ENOMEM;
        *ret = TAKE_PTR(f);
        return n;
}

static int parse_bytes(const char *s, uint64_t *ret) {
        size_t l = strlen(s);
        if (l < 2 || s[l - 1] != 'B')
                return -EINVAL;
        _cleanup_free_ char *num = strndup(s, l - 1);
        if (!num)
                return -ENOMEM;
        return parse_u64(num, ret);
}

int drv_disk_parse_parted(const char *out, struct disk_table *ret, struct dv_error *err) {
        struct disk_table t = {0};
        int r = 0, lineno = 0;
        bool seen_byt = false, seen_dev = false;
        const char *p = out ? out : "";

        while (*p && r >= 0) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                const char *line = p;
                p = nl ? nl + 1 : p + len;
                lineno++;
                while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
                        len--;
                if (len == 0)
                        continue;
                if (!seen_byt) {
                        /* "BYT;" says the unit is bytes; anything else would mislead us. */
                        if (len != 4 || strncmp(line, "BYT;", 4) != 0) {
                                r = dv_error_add(err, -EINVAL, 0,
                                                 "parted output line %d: expected 'BYT;'", lineno);
                                break;
                        }
                        seen_byt = true;
                        continue;
                }
                _cleanup_strv_free_ char **f = NULL;
                int nf = split_fields(line, len, &f);
                if (nf == -ENOMEM) {
                        r = dv_error_oom(err);
                        break;
                }
                if (nf < 0) {
                        r = dv_error_add(err, -EINVAL, 0,
                                         "parted output line %d does not end with ';'", lineno);
                        break;
                }
                if (!seen_dev) {
                        /* path:size:transport:logical-sector:physical-sector:label:model:flags */
                        uint64_t lss = 0;
                        if (nf < 6 || parse_bytes(f[1], &t.size) < 0 ||
                            parse_u64_range(f[3], 512, 65536, &lss) < 0) {
                                r = dv_error_add(err, -EINVAL, 0,
                                                 "parted output line %d is not a device line",
                                                 lineno);
                                break;
                        }
                        t.logical_sector = (unsigned)lss;
                        t.label = strdup(f[5]);
                        if (!t.label) {
                                r = dv_error_oom(err);
                                break;
                        }
                        seen_dev = true;
                        continue;
                }
                uint64_t num, start, end, size;
                if ((nf != 5 && nf != 7) || parse_u64_range(f[0], 1, 4096, &num) < 0 ||
                    parse_bytes(f[1], &start) < 0 || parse_bytes(f[2], &end) < 0 ||
                    parse_bytes(f[3], &size) < 0 || end < start) {
                        r = dv_error_add(err, -EINVAL, 0,
                                         "parted output line %d is not a partition or free "
                                         "extent line",
                                         lineno);
                        break;
                }
                if (nf == 5) {
                        if (!streq(f[4], "free")) {
                                r = dv_error_add(err, -EINVAL, 0,
                                                 "parted output line %d: unknown entry '%s'",
                                                 lineno, f[4]);
                                break;
                        }
                        struct pool_extent *ne = reallocarray(t.free, t.n_free + 1, sizeof(*ne));
                        if (!ne) {
                                r = dv_error_oom(err);
                                break;
                        }
                        t.free = ne;
                        t.free[t.n_free++] = (struct pool_extent){.start = start, .end = end};
                        continue;
                }
                struct disk_partition *np = reallocarray(t.parts, t.n_parts + 1, sizeof(*np));
                if (!np) {
                        r = dv_error_oom(err);
                        break;
                }
                t.parts = np;
                t.parts[t.n_parts++] = (struct disk_partition){.number = (unsigned)num,
                                                               .start = start,
                                                               .end = end,
                                                               .size = size,
                                                               .fs = TAKE_PTR(f[4]),
                                                               .name = TAKE_PTR(f[5]),
                                                               .flags = TAKE_PTR(f[6])};
                /* f[4..6] were taken: strv_free stops at the first NULL, so free the rest. */
                for (int k = 7; k < nf; k++)
                        free(TAKE_PTR(f[k]));
        }
        if (r >= 0 && !seen_dev)
                r = dv_error_add(err, -EINVAL, 0, "parted printed no device line");
        if (r < 0) {
                disk_table_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

const char *drv_disk_partition_format(const struct disk_partition *p) {
        /* parted's flags are ", " separated words. */
        static const struct {
                const char *flag, *format;
        } map[] = {{"lvm", "linux-lvm"}, {"raid", "linux-raid"}, {"swap", "linux-swap"}};
        const char *s = p->flags ? p->flags : "";
        while (*s) {
                size_t l = strcspn(s, ",");
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (l == strlen(map[i].flag) && strncmp(s, map[i].flag, l) == 0)
                                return map[i].format;
                s += l;
                while (*s == ',' || *s == ' ')
                        s++;
        }
        return NULL;
}

/* ---- argv builders ---------------------------------------------------------------------- */

/* A device path becomes a parted argument: absolute, and never taken for an option. */
static bool dev_ok(const char *dev) {
        return dev && dev[0] == '/' && !strchr(dev, '\n');
}

int drv_disk_print_argv(const char *dev, bool free, char ***ret) {
        if (!dev_ok(dev))
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "parted") < 0 || strv_push(&argv, "-s") < 0 ||
            strv_push(&argv, "-m") < 0 || strv_push(&argv, dev) < 0 ||
            strv_push(&argv, "unit") < 0 || strv_push(&argv, "B") < 0 ||
            strv_push(&argv, "print") < 0 || (free && strv_push(&argv, "free") < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_disk_mklabel_argv(const struct pool_def *def, char ***ret) {
        if (def->source.n_devices != 1 || !dev_ok(def->source.devices[0].path))
                return -EINVAL;
        const char *label = drv_disk_label_to_parted(drv_disk_pool_format(def));
        if (!label)
                return -EOPNOTSUPP;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "parted") < 0 || strv_push(&argv, "-s") < 0 ||
            strv_push(&argv, def->source.devices[0].path) < 0 || strv_push(&argv, "mklabel") < 0 ||
            strv_push(&argv, label) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* How parted makes a partition of a volume format: its fs-type argument (which sets the
 * msdos type byte or the gpt type GUID) or a flag. -EOPNOTSUPP for the others. */
static int mkpart_format(const char *format, const char **ret_fstype, const char **ret_flag) {
        *ret_fstype = *ret_flag = NULL;
        if (!format || streq(format, "none") || streq(format, "raw") || streq(format, "linux"))
                return 0;
        if (streq(format, "linux-swap") || streq(format, "fat16") || streq(format, "fat32"))
                *ret_fstype = format;
        else if (streq(format, "linux-lvm"))
                *ret_flag = "lvm";
        else if (streq(format, "linux-raid"))
                *ret_flag = "raid";
        else
                return -EOPNOTSUPP;
        return 0;
}

int drv_disk_mkpart_argv(const char *dev, unsigned number, uint64_t start, uint64_t end,
                         const char *format, char ***ret) {
        if (!dev_ok(dev) || number == 0 || end <= start)
                return -EINVAL;
        const char *fstype, *flag;
        int r = mkpart_format(format, &fstype, &flag);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **argv = NULL;
        /* "primary": the partition type on msdos, the partition name on gpt (libvirt's). */
        if (strv_push(&argv, "parted") < 0 || strv_push(&argv, "-s") < 0 ||
            strv_push(&argv, dev) < 0 || strv_push(&argv, "mkpart") < 0 ||
            strv_push(&argv, "primary") < 0 || (fstype && strv_push(&argv, fstype) < 0) ||
            strv_pushf(&argv, "%" PRIu64 "B", start) < 0 ||
            strv_pushf(&argv, "%" PRIu64 "B", end) < 0)
                return -ENOMEM;
        if (flag && (strv_push(&argv, "set") < 0 || strv_pushf(&argv, "%u", number) < 0 ||
                     strv_push(&argv, flag) < 0 || strv_push(&argv, "on") < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_disk_rm_argv(const char *dev, unsigned number, char ***ret) {
        if (!dev_ok(dev) || number == 0)
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "parted") < 0 || strv_push(&argv, "-s") < 0 ||
            strv_push(&argv, dev) < 0 || strv_push(&argv, "rm") < 0 ||
            strv_pushf(&argv, "%u", number) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_disk_wipefs_argv(const char *dev, const char *parted_label, bool image, char ***ret) {
        if (!dev_ok(dev) || !parted_label)
                return -EINVAL;
        /* blkid's names for what parted wrote; a gpt label comes with its protective MBR. */
        const char *types = streq(parted_label, "gpt")     ? "gpt,PMBR"
                            : streq(parted_label, "msdos") ? "dos"
                                                           : NULL;
        if (!types)
                return -EOPNOTSUPP;
        _cleanup_strv_free_ char **argv = NULL;
        /* wipefs leaves an image file's table alone ("not a whole disk") unless forced;
         * for a block device it must keep its own in-use check, so no --force there. */
        if (strv_push(&argv, "wipefs") < 0 || strv_push(&argv, "--all") < 0 ||
            (image && strv_push(&argv, "--force") < 0) || strv_push(&argv, "--types") < 0 ||
            strv_push(&argv, types) < 0 || strv_push(&argv, dev) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_disk_partx_argv(const char *dev, char ***ret) {
        if (!dev_ok(dev))
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "partx") < 0 || strv_push(&argv, "--update") < 0 ||
            strv_push(&argv, dev) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* ---- planning a partition --------------------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a) {
        uint64_t r = v % a;
        return r == 0 ? v : (v > UINT64_MAX - (a - r) ? UINT64_MAX : v + (a - r));
}

int drv_disk_plan_partition(const struct disk_table *t, const char *what, uint64_t capacity,
                            unsigned *ret_number, uint64_t *ret_start, uint64_t *ret_end,
                            struct dv_error *err) {
        unsigned lss = t->logical_sector ? t->logical_sector : 512;
        if (capacity == 0)
                return dv_error_add(err, -EINVAL, 0, "volume %s: capacity 0 is not a partition",
                                    what);
        /* The partition is exactly the capacity: a rounded-up one would read as a
         * different size from the one written, and the planner would see drift. */
        if (capacity % lss != 0)
                return dv_error_add(err, -EINVAL, 0,
                                    "volume %s: capacity %" PRIu64
                                    " bytes is not a whole number of %u-byte sectors",
                                    what, capacity, lss);
        bool msdos = t->label && streq(t->label, "msdos");
        unsigned max = msdos ? 4 : 128, number = 0;
        for (unsigned n = 1; n <= max && number == 0; n++) {
                bool used = false;
                for (size_t i = 0; i < t->n_parts && !used; i++)
                        used = t->parts[i].number == n;
                if (!used)
                        number = n;
        }
        if (number == 0)
                return dv_error_add(err, -ENOSPC, 0,
                                    "volume %s: the %s partition table has no free slot (%u "
                                    "partitions)",
                                    what, strna(t->label), max);
        uint64_t largest = 0;
        for (size_t i = 0; i < t->n_free; i++) {
                const struct pool_extent *e = &t->free[i];
                uint64_t start = align_up(e->start, DISK_ALIGN_BYTES);
                if (start > e->end)
                        continue;
                uint64_t room = e->end - start + 1;
                largest = MAX(largest, room);
                if (room >= capacity) {
                        *ret_number = number;
                        *ret_start = start;
                        *ret_end = start + capacity - 1;
                        return 0;
                }
        }
        return dv_error_add(err, -ENOSPC, 0,
                            "volume %s needs %" PRIu64 " bytes but the largest free extent has "
                            "only %" PRIu64 " (from a 1 MiB boundary)",
                            what, capacity, largest);
}

/* ---- the device and the cache ----------------------------------------------------------- */

struct device {
        char *path; /* the kernel's node, symlinks resolved */
        struct stat st;
        uint64_t size;
        char head_hash[HASH_HEX_LEN + 1];
};

static void device_done(struct device *d) {
        free(d->path);
        *d = (struct device){0};
}

static const char *pool_dev(const struct pool_def *def) {
        return def->source.n_devices == 1 ? def->source.devices[0].path : NULL;
}

static int check_def(const struct pool_def *def, struct dv_error *err) {
        if (!dev_ok(pool_dev(def)))
                return dv_error_add(err, -EINVAL, 0,
                                    "disk pool %s needs exactly one absolute source device path",
                                    strna(def->name));
        return 0;
}

/* Opens, identifies and sizes the device; with head, hashes its first bytes. */
static int device_open(const char *path, bool head, struct device *ret, struct dv_error *err) {
        struct device d = {0};
        int r;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                if (r == -ENOENT)
                        return dv_error_add(err, r, 0, "source device %s does not exist", path);
                return dv_error_add(err, r, 0, "cannot open source device %s: %s", path,
                                    strerror(-r));
        }
        if (fstat(fd, &d.st) < 0) {
                r = negative_errno();
                return dv_error_add(err, r, 0, "cannot stat %s: %s", path, strerror(-r));
        }
        if (S_ISBLK(d.st.st_mode)) {
                if (ioctl(fd, BLKGETSIZE64, &d.size) < 0) {
                        r = negative_errno();
                        return dv_error_add(err, r, 0, "cannot get the size of %s: %s", path,
                                            strerror(-r));
                }
        } else if (S_ISREG(d.st.st_mode)) {
                /* An image file: parted handles them too; tests use them. */
                d.size = (uint64_t)d.st.st_size;
        } else if (S_ISDIR(d.st.st_mode)) {
                return dv_error_add(err, -ENOTBLK, 0, "source device %s is a directory", path);
        } else {
                return dv_error_add(err, -ENOTBLK, 0, "source device %s is not a block device",
                                    path);
        }
        if (head) {
                _cleanup_free_ unsigned char *b = malloc(DISK_HEAD_BYTES);
                if (!b)
                        return dv_error_oom(err);
                size_t got = 0;
                while (got < DISK_HEAD_BYTES) {
                        ssize_t k = pread(fd, b + got, DISK_HEAD_BYTES - got, (off_t)got);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0) {
                                r = negative_errno();
                                return dv_error_add(err, r, 0, "cannot read %s: %s", path,
                                                    strerror(-r));
                        }
                        if (k == 0)
                                break;
                        got += (size_t)k;
                }
                hash_hex(b, got, d.head_hash);
        }
        char *real = realpath(path, NULL);
        d.path = real ? real : strdup(path);
        if (!d.path)
                return dv_error_oom(err);
        *ret = d;
        return 0;
}

struct cache_entry {
        dev_t dev, rdev;
        ino_t ino;
        uint64_t size;
        struct timespec mtime;
        char head_hash[HASH_HEX_LEN + 1];
        struct disk_table table;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hashmap *cache; /* device path as written -> struct cache_entry */
static unsigned parted_runs;

static void cache_entry_free(void *p) {
        struct cache_entry *c = p;
        if (!c)
                return;
        disk_table_done(&c->table);
        free(c);
}

static bool cache_matches(const struct cache_entry *c, const struct device *d) {
        /* The head hash covers the partition table (MBR, GPT header and entries) and a
         * filesystem superblock; the rest says it is still the same device and size. */
        return c->dev == d->st.st_dev && c->rdev == d->st.st_rdev && c->ino == d->st.st_ino &&
               c->size == d->size && c->mtime.tv_sec == d->st.st_mtim.tv_sec &&
               c->mtime.tv_nsec == d->st.st_mtim.tv_nsec && streq(c->head_hash, d->head_hash);
}

static void cache_forget(const char *path) {
        pthread_mutex_lock(&cache_lock);
        if (cache)
                cache_entry_free(hashmap_remove(cache, path));
        pthread_mutex_unlock(&cache_lock);
}

void drv_disk_cache_clear(void) {
        pthread_mutex_lock(&cache_lock);
        hashmap_free(cache, cache_entry_free);
        cache = NULL;
        parted_runs = 0;
        pthread_mutex_unlock(&cache_lock);
}

unsigned drv_disk_parted_runs(void) {
        pthread_mutex_lock(&cache_lock);
        unsigned n = parted_runs;
        pthread_mutex_unlock(&cache_lock);
        return n;
}

/* Runs `parted print free` on the device. A device without a partition table is
 * not an error: label "unknown" (parted exits 1 but still prints the device line). */
static int read_table(const char *dev, struct disk_table *ret, struct dv_error *err) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = drv_disk_print_argv(dev, true, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the parted command for %s", dev);
        struct cmd_opts opts = {.timeout_usec = DISK_PARTED_TIMEOUT_USEC, .allow_nonzero = true};
        struct cmd_result res = {0};
        r = cmd_run(argv, &opts, &res, err);
        pthread_mutex_lock(&cache_lock);
        parted_runs++;
        pthread_mutex_unlock(&cache_lock);
        if (r < 0) {
                cmd_result_done(&res);
                return r;
        }
        struct disk_table t = {0};
        _cleanup_dv_error_ struct dv_error perr = DV_ERROR_INIT;
        r = drv_disk_parse_parted(res.out, &t, &perr);
        bool unlabelled = r >= 0 && streq_ptr(t.label, "unknown");
        if (res.exit_status != 0 && !unlabelled) {
                _cleanup_free_ char *cmdline = cmd_argv_string(argv);
                if (r >= 0)
                        disk_table_done(&t);
                r = dv_error_add(err, -EIO, 0, "parted cannot read %s (exit status %d): %s", dev,
                                 res.exit_status, strempty(res.err_tail));
                dv_error_set_command(err, cmdline, res.err_tail);
        } else if (r < 0) {
                r = dv_error_add(err, r, 0, "cannot understand parted's output for %s: %s", dev,
                                 strna(dv_error_message(&perr)));
        } else {
                *ret = t;
        }
        cmd_result_done(&res);
        return r;
}

/* The table of dev, from the cache while the device's head and identity are unchanged. */
static int get_table(const char *dev, struct device *ret_dev, struct disk_table *ret,
                     struct dv_error *err) {
        _cleanup_(device_done) struct device d = {0};
        int r = device_open(dev, true, &d, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&cache_lock);
        struct cache_entry *c = cache ? hashmap_get(cache, dev) : NULL;
        if (c && cache_matches(c, &d)) {
                r = table_copy(&c->table, ret);
                pthread_mutex_unlock(&cache_lock);
                if (r < 0)
                        return dv_error_oom(err);
                *ret_dev = d;
                d = (struct device){0};
                return 0;
        }
        pthread_mutex_unlock(&cache_lock);

        struct disk_table t = {0};
        r = read_table(d.path, &t, err);
        if (r < 0)
                return r;
        /* Remember it only if nothing changed while parted read it. */
        _cleanup_(device_done) struct device after = {0};
        _cleanup_dv_error_ struct dv_error ignore = DV_ERROR_INIT;
        bool stable = device_open(dev, true, &after, &ignore) >= 0 &&
                      streq(after.head_hash, d.head_hash) && after.size == d.size;
        struct cache_entry *n = stable ? calloc(1, sizeof(*n)) : NULL;
        if (n && table_copy(&t, &n->table) >= 0) {
                n->dev = d.st.st_dev;
                n->rdev = d.st.st_rdev;
                n->ino = d.st.st_ino;
                n->size = d.size;
                n->mtime = d.st.st_mtim;
                memcpy(n->head_hash, d.head_hash, sizeof(n->head_hash));
                void *old = NULL;
                pthread_mutex_lock(&cache_lock);
                if (!cache)
                        cache = hashmap_new();
                if (cache && hashmap_put(cache, dev, n, &old) >= 0)
                        n = NULL;
                pthread_mutex_unlock(&cache_lock);
                cache_entry_free(old);
        }
        cache_entry_free(n);
        *ret = t;
        *ret_dev = d;
        d = (struct device){0};
        return 0;
}

int drv_disk_free_extents(const char *dev, struct pool_extent **ret, size_t *n,
                          struct dv_error *err) {
        _cleanup_(device_done) struct device d = {0};
        struct disk_table t = {0};
        if (!dev_ok(dev))
                return dv_error_add(err, -EINVAL, 0, "source device path '%s' is not absolute",
                                    strna(dev));
        int r = get_table(dev, &d, &t, err);
        if (r < 0)
                return r;
        /* libvirt's <freeExtent end=> is the first byte after the extent. */
        for (size_t i = 0; i < t.n_free; i++)
                t.free[i].end++;
        *ret = TAKE_PTR(t.free);
        *n = t.n_free;
        t.n_free = 0;
        disk_table_done(&t);
        return 0;
}

/* Serialises changes to one device's table across threads and processes (and keeps
 * udev from probing half-written tables): a BSD lock on the whole-disk node, as
 * udev documents. Bounded: a device held for long is reported, never waited on. */
static int lock_device(const char *path, int *ret_fd, struct dv_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int r;
        if (fd < 0) {
                r = negative_errno();
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        for (int i = 0; i < 200; i++) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
                if (errno != EWOULDBLOCK && errno != EINTR) {
                        r = negative_errno();
                        return dv_error_add(err, r, 0, "cannot lock %s: %s", path, strerror(-r));
                }
                nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        }
        return dv_error_add(err, -EBUSY, 0, "%s is locked by another program", path);
}

/* A block device nobody holds (mounted, swap, device-mapper, md): O_EXCL fails with
 * EBUSY otherwise, for a whole disk also when one of its partitions is held. */
static int check_not_held(const struct device *d, const char *what, struct dv_error *err) {
        if (!S_ISBLK(d->st.st_mode))
                return 0;
        _cleanup_close_ int fd =
                open(d->path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == EBUSY)
                return dv_error_add(err, -EBUSY, 0, "%s %s is in use (mounted or held)", what,
                                    d->path);
        return 0;
}

static int run_tool(char **argv, struct dv_error *err) {
        struct cmd_opts opts = {.timeout_usec = DISK_PARTED_TIMEOUT_USEC};
        return cmd_run(argv, &opts, NULL, err);
}

/* ---- pool ------------------------------------------------------------------------------- */

static void set_reason(struct pool_status *s, enum pool_state state, const char *fmt, ...)
        _printf_(3, 4);
static void set_reason(struct pool_status *s, enum pool_state state, const char *fmt, ...) {
        va_list ap;
        s->state = state;
        va_start(ap, fmt);
        if (vasprintf(&s->reason, fmt, ap) < 0)
                s->reason = NULL;
        va_end(ap);
}

static int disk_pool_observe(const struct pool_def *def, struct pool_status *ret,
                             struct dv_error *err) {
        struct pool_status s = {0};
        int r = check_def(def, err);
        if (r < 0)
                return r;
        const char *dev = pool_dev(def);
        _cleanup_(device_done) struct device d = {0};
        struct disk_table t = {0};
        _cleanup_dv_error_ struct dv_error derr = DV_ERROR_INIT;
        r = get_table(dev, &d, &t, &derr);
        if (r < 0) {
                /* A missing or unreadable device is something in the way, not a failure
                 * of observing: the pool shows blocked with the reason. */
                set_reason(&s, POOL_STATE_BROKEN, "%s", strna(dv_error_message(&derr)));
                *ret = s;
                return 0;
        }
        const char *want = drv_disk_pool_format(def);
        const char *have = drv_disk_label_from_parted(t.label);
        if (!have) {
                /* No partition table ("unknown"), or a whole-device filesystem ("loop").
                 * Something else on it (a filesystem, an LVM or RAID member) is in the
                 * way now and at every pass (no build attempted, nothing retried after a
                 * restart), until the device changes; an empty one needs building. The
                 * probe reads a few sectors, no program runs. */
                _cleanup_free_ char *sig = NULL;
                r = storage_probe_signature(d.path, &sig, &derr);
                if (r < 0)
                        set_reason(&s, POOL_STATE_BROKEN, "%s", strna(dv_error_message(&derr)));
                else if (r > 0)
                        set_reason(&s, POOL_STATE_BROKEN,
                                   "%s holds a %s signature; not formatting (build='if-empty')",
                                   dev, sig);
                else
                        s.state = POOL_STATE_ABSENT;
        } else if (!streq(have, want)) {
                set_reason(&s, POOL_STATE_BROKEN,
                           "device %s has a %s partition table, not %s; not relabelling", dev, have,
                           want);
        } else {
                s.state = POOL_STATE_ACTIVE;
                s.has_sizes = true;
                s.capacity = d.size;
                for (size_t i = 0; i < t.n_parts; i++)
                        s.allocation += t.parts[i].size;
                /* libvirt's rule: available is the total of the free extents (a volume
                 * must still fit in one of them). */
                for (size_t i = 0; i < t.n_free; i++)
                        s.available += t.free[i].end - t.free[i].start + 1;
                /* The observed pool XML lists them, end exclusive as libvirt writes them. */
                s.free_extents = calloc(t.n_free ? t.n_free : 1, sizeof(*s.free_extents));
                for (size_t i = 0; s.free_extents && i < t.n_free; i++)
                        s.free_extents[i] =
                                (struct pool_extent){t.free[i].start, t.free[i].end + 1};
                s.n_free_extents = s.free_extents ? t.n_free : 0;
        }
        disk_table_done(&t);
        *ret = s;
        return 0;
}

static int disk_pool_build(const struct pool_def *def, enum dv_build build, struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        const char *dev = pool_dev(def);
        const char *format = drv_disk_pool_format(def);
        const char *label = drv_disk_label_to_parted(format);
        if (!label)
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "disk pool %s: a '%s' label cannot be made with parted",
                                    strna(def->name), format);
        _cleanup_(device_done) struct device d = {0};
        r = device_open(dev, false, &d, err);
        if (r < 0)
                return r;
        _cleanup_close_ int lock = -1;
        r = lock_device(d.path, &lock, err);
        if (r < 0)
                return r;

        /* What is on it decides, before anything else (build='no' included). */
        _cleanup_free_ char *sig = NULL;
        r = storage_probe_signature(d.path, &sig, err);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Built already (an earlier pass, or a restart): the wanted table and
                 * nothing else. parted confirms what blkid saw. */
                struct disk_table t = {0};
                _cleanup_dv_error_ struct dv_error ignore = DV_ERROR_INIT;
                const char *blk = streq(label, "msdos") ? "dos"
                                  : streq(label, "gpt") ? "gpt"
                                                        : NULL;
                bool same = !strchr(sig, ',') && (!blk || streq(sig, blk)) &&
                            read_table(d.path, &t, &ignore) >= 0 && streq_ptr(t.label, label);
                disk_table_done(&t);
                if (same)
                        return 0;
                return dv_error_add(err, -EEXIST, 0,
                                    "%s holds a %s signature; not formatting (build='if-empty')",
                                    dev, sig);
        }
        if (build == DV_BUILD_NO)
                return dv_error_add(err, -ENOENT, 0,
                                    "device %s has no partition table and build='no'", dev);
        r = check_not_held(&d, "source device", err);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_disk_mklabel_argv(def, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the parted command for %s", dev);
        r = run_tool(argv, err);
        cache_forget(dev);
        return r;
}

static int disk_pool_start(const struct pool_def *def, struct dv_error *err) {
        (void)def;
        (void)err;
        return 0; /* a partition table is there or not: nothing to start */
}

static int disk_pool_stop(const struct pool_def *def, struct dv_error *err) {
        (void)def;
        (void)err;
        return 0;
}

static int disk_pool_delete(const struct pool_def *def, struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        const char *dev = pool_dev(def);
        _cleanup_(device_done) struct device d = {0};
        _cleanup_dv_error_ struct dv_error derr = DV_ERROR_INIT;
        r = device_open(dev, false, &d, &derr);
        if (r == -ENOENT)
                return 0; /* the device is gone, and its table with it */
        if (r < 0) {
                dv_error_move(err, &derr);
                return r;
        }
        _cleanup_close_ int lock = -1;
        r = lock_device(d.path, &lock, err);
        if (r < 0)
                return r;
        struct disk_table t = {0};
        r = read_table(d.path, &t, err);
        if (r < 0)
                return r;
        const char *want = drv_disk_label_to_parted(drv_disk_pool_format(def));
        if (!drv_disk_label_from_parted(t.label)) {
                r = 0; /* no partition table: nothing to remove */
        } else if (!streq_ptr(t.label, want)) {
                r = dv_error_add(err, -EEXIST, 0,
                                 "device %s has a %s partition table, not the %s one this pool "
                                 "made; not removing it",
                                 dev, t.label, strna(want));
        } else if (t.n_parts > 0) {
                r = dv_error_add(err, -ENOTEMPTY, 0,
                                 "device %s still has %zu partition%s; not removing its "
                                 "partition table",
                                 dev, t.n_parts, t.n_parts == 1 ? "" : "s");
        } else {
                _cleanup_strv_free_ char **argv = NULL;
                r = drv_disk_wipefs_argv(d.path, t.label, S_ISREG(d.st.st_mode), &argv);
                if (r < 0)
                        r = dv_error_add(err, r, 0, "a %s partition table cannot be removed",
                                         t.label);
                else
                        r = run_tool(argv, err);
                /* wipefs says "ignoring" and exits 0 in some cases: check what is left. */
                struct disk_table left = {0};
                if (r >= 0 && read_table(d.path, &left, err) >= 0 &&
                    drv_disk_label_from_parted(left.label))
                        r = dv_error_add(err, -EIO, 0,
                                         "the %s partition table of %s is still there after "
                                         "wipefs",
                                         left.label, dev);
                disk_table_done(&left);
        }
        disk_table_done(&t);
        cache_forget(dev);
        return r;
}

/* ---- volumes ---------------------------------------------------------------------------- */

static char *disk_vol_path(const struct pool_def *def, const char *name) {
        const char *dev = pool_dev(def);
        if (!dev_ok(dev) || dv_name_problem(DV_KIND_VOLUME, name))
                return NULL;
        _cleanup_free_ char *real = realpath(dev, NULL);
        const char *base = real ? real : dev;
        unsigned n;
        if (drv_disk_partition_number(base, name, &n) < 0)
                return NULL;
        return drv_disk_partition_path(base, n);
}

static int cmp_vol(const void *a, const void *b) {
        return strcmp(((const struct vol_status *)a)->name, ((const struct vol_status *)b)->name);
}

static int disk_vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                         struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        _cleanup_(device_done) struct device d = {0};
        struct disk_table t = {0};
        r = get_table(pool_dev(def), &d, &t, err);
        if (r < 0)
                return r;
        struct vol_status *v = t.n_parts ? calloc(t.n_parts, sizeof(*v)) : NULL;
        size_t nv = 0;
        if (t.n_parts && !v)
                r = dv_error_oom(err);
        for (size_t i = 0; r >= 0 && i < t.n_parts; i++) {
                const struct disk_partition *p = &t.parts[i];
                char *path = drv_disk_partition_path(d.path, p->number);
                const char *slash = path ? strrchr(path, '/') : NULL;
                const char *format = drv_disk_partition_format(p);
                struct vol_status *s = &v[nv++];
                *s = (struct vol_status){
                        .name = slash ? strdup(slash + 1) : NULL,
                        .path = path,
                        .type = strdup("block"),
                        .format = format ? strdup(format) : NULL,
                        .capacity = p->size,
                        .allocation = p->size,
                };
                if (!s->name || !s->path || !s->type || (format && !s->format))
                        r = dv_error_oom(err);
        }
        disk_table_done(&t);
        if (r < 0) {
                vol_status_array_free(v, nv);
                return r;
        }
        if (nv > 1)
                qsort(v, nv, sizeof(*v), cmp_vol);
        *ret = v;
        *n = nv;
        return 0;
}

static const struct disk_partition *find_part(const struct disk_table *t, unsigned number) {
        for (size_t i = 0; i < t->n_parts; i++)
                if (t->parts[i].number == number)
                        return &t->parts[i];
        return NULL;
}

/* After parted: the kernel normally knows the new table at once (parted tells it with
 * BLKPG); when the node does not show up, partx asks again. */
static void wait_for_node(const struct device *d, unsigned number, bool present) {
        if (!S_ISBLK(d->st.st_mode))
                return;
        _cleanup_free_ char *node = drv_disk_partition_path(d->path, number);
        if (!node)
                return;
        for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < 20; i++) {
                        if ((access(node, F_OK) == 0) == present)
                                return;
                        nanosleep(&(struct timespec){.tv_nsec = 25 * 1000 * 1000}, NULL);
                }
                _cleanup_strv_free_ char **argv = NULL;
                _cleanup_dv_error_ struct dv_error ignore = DV_ERROR_INIT;
                if (pass == 0 && drv_disk_partx_argv(d->path, &argv) >= 0) {
                        log_debug("partition node %s: not %s after parted; running partx", node,
                                  present ? "there" : "gone");
                        (void)run_tool(argv, &ignore);
                }
        }
}

static int disk_vol_create(const struct pool_def *def, const struct volume_def *vol,
                           struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        const char *dev = pool_dev(def);
        const char *why = dv_name_problem(DV_KIND_VOLUME, vol->name);
        if (why)
                return dv_error_add(err, -EINVAL, 0, "volume name '%s': %s", strna(vol->name), why);
        if (!vol->has_capacity)
                return dv_error_add(err, -EINVAL, 0, "volume %s has no capacity", vol->name);
        const char *format = vol->target.format, *fstype, *flag;
        if (mkpart_format(format, &fstype, &flag) < 0)
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "volume %s: format '%s' cannot be created in a disk pool "
                                    "(none, linux, linux-swap, linux-lvm, linux-raid, fat16, "
                                    "fat32 can)",
                                    vol->name, format);

        _cleanup_(device_done) struct device d = {0};
        r = device_open(dev, false, &d, err);
        if (r < 0)
                return r;
        _cleanup_close_ int lock = -1;
        r = lock_device(d.path, &lock, err);
        if (r < 0)
                return r;
        /* Fresh, under the lock: the cache may predate another volume's partition. */
        _cleanup_(disk_table_done) struct disk_table t = {0};
        r = read_table(d.path, &t, err);
        if (r < 0)
                return r;
        const char *want = drv_disk_label_to_parted(drv_disk_pool_format(def));
        if (!streq_ptr(t.label, want))
                return dv_error_add(err, -EINVAL, 0,
                                    "device %s has no %s partition table (parted says '%s')", dev,
                                    strna(want), strna(t.label));
        unsigned asked;
        if (drv_disk_partition_number(d.path, vol->name, &asked) < 0) {
                _cleanup_free_ char *example = drv_disk_partition_path(d.path, 1);
                const char *ex = example && strrchr(example, '/') ? strrchr(example, '/') + 1 : "";
                return dv_error_add(err, -EINVAL, 0,
                                    "volume name '%s' is not a partition name of %s (like %s)",
                                    vol->name, d.path, ex);
        }
        if (find_part(&t, asked))
                return dv_error_add(err, -EEXIST, 0, "partition %u of %s (volume %s) exists", asked,
                                    d.path, vol->name);
        unsigned number;
        uint64_t start, end;
        r = drv_disk_plan_partition(&t, vol->name, vol->capacity, &number, &start, &end, err);
        if (r < 0)
                return r;
        if (number != asked) {
                _cleanup_free_ char *next = drv_disk_partition_path(d.path, number);
                const char *nx = next && strrchr(next, '/') ? strrchr(next, '/') + 1 : "";
                return dv_error_add(err, -EINVAL, 0,
                                    "volume %s cannot be created: parted numbers the next "
                                    "partition of %s %u (%s); name volumes in that order",
                                    vol->name, d.path, number, nx);
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_disk_mkpart_argv(d.path, number, start, end, format, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the parted command for %s", vol->name);
        r = run_tool(argv, err);
        cache_forget(dev);
        if (r < 0) {
                /* mkpart may have made the partition before a later step failed (the
                 * flag): take back exactly what we made, nothing else. */
                _cleanup_(disk_table_done) struct disk_table after = {0};
                _cleanup_dv_error_ struct dv_error ignore = DV_ERROR_INIT;
                const struct disk_partition *p = NULL;
                if (read_table(d.path, &after, &ignore) >= 0)
                        p = find_part(&after, number);
                _cleanup_strv_free_ char **rm = NULL;
                if (p && p->start == start && drv_disk_rm_argv(d.path, number, &rm) >= 0)
                        (void)run_tool(rm, &ignore);
                cache_forget(dev);
                return r;
        }
        wait_for_node(&d, number, true);
        return 0;
}

static int disk_vol_delete(const struct pool_def *def, const char *name, struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        const char *dev = pool_dev(def);
        _cleanup_(device_done) struct device d = {0};
        r = device_open(dev, false, &d, err);
        if (r < 0)
                return r;
        unsigned number;
        if (drv_disk_partition_number(d.path, name, &number) < 0)
                return dv_error_add(err, -EINVAL, 0, "volume name '%s' is not a partition of %s",
                                    strna(name), d.path);
        _cleanup_close_ int lock = -1;
        r = lock_device(d.path, &lock, err);
        if (r < 0)
                return r;
        _cleanup_(disk_table_done) struct disk_table t = {0};
        r = read_table(d.path, &t, err);
        if (r < 0)
                return r;
        if (!drv_disk_label_from_parted(t.label) || !find_part(&t, number))
                return 0; /* already gone */
        if (S_ISBLK(d.st.st_mode)) {
                _cleanup_(device_done) struct device part = {0};
                part.path = drv_disk_partition_path(d.path, number);
                if (!part.path)
                        return dv_error_oom(err);
                part.st.st_mode = S_IFBLK;
                r = check_not_held(&part, "partition", err);
                if (r < 0)
                        return r;
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_disk_rm_argv(d.path, number, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the parted command for %s", name);
        r = run_tool(argv, err);
        cache_forget(dev);
        if (r < 0)
                return r;
        wait_for_node(&d, number, false);
        return 0;
}

const struct storage_driver storage_driver_disk = {
        .type = POOL_DISK,
        .pool_observe = disk_pool_observe,
        .pool_build = disk_pool_build,
        .pool_start = disk_pool_start,
        .pool_stop = disk_pool_stop,
        .pool_delete = disk_pool_delete,
        .vol_list = disk_vol_list,
        .vol_create = disk_vol_create,
        .vol_delete = disk_vol_delete,
        .vol_path = disk_vol_path,
};
