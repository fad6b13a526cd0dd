/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mount table of drivers/storage/mount.h: a /proc/self/mountinfo parser and a
 * process-wide cache of it that is reread only when the kernel reports a change. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/storage/mount.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

/* Far more than any real mount table; a bound on what we read all the same. */
#define MOUNTINFO_MAX (64u << 20)

char *mount_unescape(const char *s, size_t len) {
        char *out = malloc(len + 1);
        if (!out)
                return NULL;
        size_t j = 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
                    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                        out[j++] = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) |
                                          (s[i + 3] - '0'));
                        i += 3;
                } else
                        out[j++] = s[i];
        }
        out[j] = '\0';
        return out;
}

static void entry_done(struct mount_entry *e) {
        free(e->root);
        free(e->target);
        free(e->fstype);
        free(e->source);
}

static void mount_table_free(struct mount_table *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                entry_done(&t->entries[i]);
        free(t->entries);
        free(t);
}

struct mount_table *mount_table_ref(struct mount_table *t) {
        if (t)
                __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
        return t;
}

void mount_table_unref(struct mount_table *t) {
        if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
                mount_table_free(t);
}

static int parse_int_field(const char *s, size_t len, int *ret) {
        char tmp[24];
        uint64_t v;
        if (len == 0 || len >= sizeof(tmp))
                return -EINVAL;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        if (parse_u64_range(tmp, 0, INT32_MAX, &v) < 0)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

/* "MAJOR:MINOR" */
static int parse_devno(const char *s, size_t len, unsigned *major, unsigned *minor) {
        const char *colon = memchr(s, ':', len);
        int a, b;
        if (!colon || parse_int_field(s, (size_t)(colon - s), &a) < 0 ||
            parse_int_field(colon + 1, len - (size_t)(colon - s) - 1, &b) < 0)
                return -EINVAL;
        *major = (unsigned)a;
        *minor = (unsigned)b;
        return 0;
}

/* One line: ID PARENT MAJ:MIN ROOT TARGET OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS.
 * Returns 1 when parsed, 0 when malformed, -ENOMEM. */
static int parse_line(const char *line, size_t len, struct mount_entry *e) {
        struct {
                const char *s;
                size_t len;
        } f[64];
        size_t n = 0, i = 0;
        while (i < len && n < ELEMENTSOF(f)) {
                while (i < len && line[i] == ' ')
                        i++;
                if (i >= len)
                        break;
                size_t start = i;
                while (i < len && line[i] != ' ')
                        i++;
                f[n].s = line + start;
                f[n].len = i - start;
                n++;
        }
        /* The separator "-" comes after at least six fields and has three after it. */
        size_t sep = 0;
        for (size_t k = 6; k < n; k++)
                if (f[k].len == 1 && f[k].s[0] == '-') {
                        sep = k;
                        break;
                }
        if (sep == 0 || sep + 2 >= n)
                return 0;
        *e = (struct mount_entry){0};
        if (parse_int_field(f[0].s, f[0].len, &e->id) < 0 ||
            parse_int_field(f[1].s, f[1].len, &e->parent_id) < 0 ||
            parse_devno(f[2].s, f[2].len, &e->major, &e->minor) < 0)
                return 0;
        e->root = mount_unescape(f[3].s, f[3].len);
        e->target = mount_unescape(f[4].s, f[4].len);
        e->fstype = mount_unescape(f[sep + 1].s, f[sep + 1].len);
        e->source = mount_unescape(f[sep + 2].s, f[sep + 2].len);
        if (!e->root || !e->target || !e->fstype || !e->source) {
                entry_done(e);
                return -ENOMEM;
        }
        return 1;
}

int mount_table_parse(const char *text, size_t len, struct mount_table **ret) {
        struct mount_table *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->refs = 1;
        size_t cap = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                if (t->n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        struct mount_entry *ne = realloc(t->entries, ncap * sizeof(*ne));
                        if (!ne) {
                                mount_table_free(t);
                                return -ENOMEM;
                        }
                        t->entries = ne;
                        cap = ncap;
                }
                int r = parse_line(p, l, &t->entries[t->n]);
                if (r < 0) {
                        mount_table_free(t);
                        return r;
                }
                if (r > 0)
                        t->n++;
                p += l + (nl ? 1 : 0);
        }
        *ret = t;
        return 0;
}

int mount_table_read(const char *path, struct mount_table **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_full_file(path, MOUNTINFO_MAX, &text, &len);
        if (r < 0)
                return r;
        return mount_table_parse(text, len, ret);
}

const struct mount_entry *mount_table_find_target(const struct mount_table *t, const char *target) {
        if (!t || !target)
                return NULL;
        const struct mount_entry *found = NULL;
        for (size_t i = 0; i < t->n; i++) {
                const struct mount_entry *c = &t->entries[i];
                if (!streq(c->target, target))
                        continue;
                bool covered = false;
                for (size_t k = 0; k < t->n && !covered; k++)
                        covered = k != i && t->entries[k].parent_id == c->id &&
                                  streq(t->entries[k].target, target);
                if (!covered)
                        return c;
                found = c; /* a cycle cannot happen; keep something all the same */
        }
        return found;
}

/* ---- the cache ------------------------------------------------------------------------------ */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static int cache_fd = -1;
static ino_t cache_ns; /* the mount namespace cache_fd belongs to */
static struct mount_table *cache_table;
static unsigned long cache_reads;

unsigned long mount_table_reads(void) {
        pthread_mutex_lock(&cache_lock);
        unsigned long n = cache_reads;
        pthread_mutex_unlock(&cache_lock);
        return n;
}

int mount_table_current(struct mount_table **ret) {
        int r = 0;
        pthread_mutex_lock(&cache_lock);
        /* An open mountinfo stays with the namespace it was opened in: a process that
         * moved to another one (unshare) must look at the new one. */
        struct stat ns = {0};
        if (stat("/proc/self/ns/mnt", &ns) == 0 && cache_fd >= 0 && ns.st_ino != cache_ns) {
                close(cache_fd);
                cache_fd = -1;
                mount_table_unref(cache_table);
                cache_table = NULL;
        }
        if (cache_fd < 0) {
                cache_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
                if (cache_fd < 0) {
                        r = negative_errno();
                        goto out;
                }
                cache_ns = ns.st_ino;
        }
        bool changed = !cache_table;
        struct pollfd pfd = {.fd = cache_fd, .events = POLLPRI};
        /* POLLPRI (with POLLERR) is set once per change and cleared by this poll, so
         * the poll comes before the read: a change during the read is seen next time. */
        if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLPRI | POLLERR)))
                changed = true;
        if (changed) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                if (lseek(cache_fd, 0, SEEK_SET) < 0) {
                        r = negative_errno();
                        goto out;
                }
                r = read_full_fd(cache_fd, MOUNTINFO_MAX, &text, &len);
                if (r < 0)
                        goto out;
                struct mount_table *t = NULL;
                r = mount_table_parse(text, len, &t);
                if (r < 0)
                        goto out;
                cache_reads++;
                mount_table_unref(cache_table);
                cache_table = t;
                log_debug("mount table reread: %zu entries", t->n);
        }
        *ret = mount_table_ref(cache_table);
        r = 0;
out:
        if (r < 0) {
                /* Nothing stale is kept: the next call starts afresh. */
                mount_table_unref(cache_table);
                cache_table = NULL;
                if (cache_fd >= 0)
                        close(cache_fd);
                cache_fd = -1;
        }
        pthread_mutex_unlock(&cache_lock);
        return r;
}
