/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File-system helpers. */
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/parse.h"
#include "util/macro.h"

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_len) {
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *data = malloc(cap + 1);
        if (!data)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        size_t ncap = MIN(cap * 2, max + 1);
                        if (ncap <= cap)
                                ncap = cap + 1;
                        char *n = realloc(data, ncap + 1);
                        if (!n)
                                return -ENOMEM;
                        data = n;
                        cap = ncap;
                }
                ssize_t k = read(fd, data + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len > max)
                        return -EFBIG;
        }
        data[len] = '\0';
        *ret = TAKE_PTR(data);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_full_fd(fd, max, ret, ret_len);
}

char *path_join(const char *a, const char *b) {
        size_t la = strlen(a);
        while (la > 1 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        char *r = NULL;
        if (asprintf(&r, "%.*s/%s", (int)la, a, b) < 0)
                return NULL;
        return r;
}

char *path_make_absolute(const char *p, const char *dir) {
        if (p[0] == '/' || !dir)
                return strdup(p);
        return path_join(dir, p);
}

char *path_dirname(const char *path) {
        const char *s = strrchr(path, '/');
        if (!s)
                return strdup(".");
        if (s == path)
                return strdup("/");
        return strndup(path, (size_t)(s - path));
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char c = *s;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (c == '\0')
                        break;
        }
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int temp_name(const char *base, char **ret) {
        uint64_t v;
        if (getrandom(&v, sizeof(v), 0) != sizeof(v))
                return -errno;
        /* A dot file, so that readers of a directory (node_exporter's textfile collector
         * reads *.prom) skip it; base is cut so the name stays under NAME_MAX. */
        if (asprintf(ret, ".%.200s.%016" PRIx64 ".tmp", base, v) < 0)
                return -ENOMEM;
        return 0;
}

/* O_TMPFILE has no name until linkat gives it one: nothing to plant, nothing left
 * behind by a crash. */
static int link_tmpfile(int fd, int dfd, const char *name) {
        if (linkat(fd, "", dfd, name, AT_EMPTY_PATH) == 0)
                return 0;
        /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link does not. */
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0)
                return 0;
        return -errno;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *dir = path_dirname(path);
        if (!dir)
                return -ENOMEM;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!*base)
                return -EISDIR;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        /* A predictable temp name in a directory that others may write (a textfile
         * collector's) would let them plant a FIFO that blocks the open, or a symlink.
         * So: an unnamed O_TMPFILE, or else a random name created with O_EXCL. Either way
         * the fd is a new regular file of ours, and 0600 until it is complete. */
        bool named = false;
        _cleanup_close_ int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        _cleanup_free_ char *tmp = NULL;
        int r = 0;
        if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                return -errno;
        for (unsigned attempt = 0; fd < 0; attempt++) {
                free(tmp);
                tmp = NULL;
                if ((r = temp_name(base, &tmp)) < 0)
                        return r;
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 && (errno != EEXIST || attempt >= 8))
                        return -errno;
                named = true;
        }
        const char *p = data;
        size_t left = len;
        while (left > 0) {
                ssize_t k = write(fd, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                p += k;
                left -= (size_t)k;
        }
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        for (unsigned attempt = 0; r == 0 && !named; attempt++) {
                free(tmp);
                tmp = NULL;
                if ((r = temp_name(base, &tmp)) < 0)
                        break;
                r = link_tmpfile(fd, dfd, tmp);
                if (r == -EEXIST && attempt < 8)
                        r = 0;
                else
                        named = r == 0;
        }
        /* rename replaces whatever has the final name, a planted symlink included,
         * and never follows it. */
        if (r == 0 && renameat(dfd, tmp, dfd, base) < 0)
                r = -errno;
        if (r < 0) {
                if (named)
                        (void)unlinkat(dfd, tmp, 0);
                return r;
        }
        (void)fsync(dfd);
        return 0;
}

int open_private_log(const char *path) {
        /* O_NONBLOCK: a FIFO planted under the name must not hang the open. */
        _cleanup_close_ int fd =
                open(path,
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
                     0600);
        /* ENXIO: a FIFO without a reader, or a socket. */
        if (fd < 0)
                return errno == ENXIO ? -EBADFD : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        /* A log made by an older version, or by QEMU with its own umask. */
        if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0)
                return -errno;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Removes empty and "." components and doubled or trailing slashes, in place. */
void path_simplify(char *s) {
        char *out = s;
        const char *in = s;
        while (*in) {
                while (*in == '/')
                        in++;
                if (!*in)
                        break;
                const char *end = strchrnul(in, '/');
                size_t n = (size_t)(end - in);
                if (n == 1 && in[0] == '.') {
                        in = end;
                        continue;
                }
                /* out never overtakes in: every component read had a '/' before it. */
                *out++ = '/';
                memmove(out, in, n);
                out += n;
                in = end;
        }
        if (out == s)
                *out++ = '/';
        *out = '\0';
}

bool path_location_allowed(char *const *patterns, const char *path) {
        if (!patterns || !patterns[0])
                return true;
        if (!path || path[0] != '/')
                return false;
        _cleanup_free_ char *s = strdup(path);
        if (!s)
                return false;
        path_simplify(s);
        /* ".." could climb out of an allowed directory: /var/lib/declvirt/.. matches a
         * star after /var/lib/declvirt/. Callers pass canonical paths; others are refused. */
        for (const char *q = s; (q = strstr(q, "/..")); q += 3)
                if (q[3] == '/' || q[3] == '\0')
                        return false;
        /* The path or any directory above it, so that a star after /srv/vm/ allows a pool
         * at /srv/vm/p1 and also its volumes at /srv/vm/p1/disk.qcow2. */
        for (size_t len = strlen(s);;) {
                s[len] = '\0';
                for (size_t i = 0; patterns[i]; i++)
                        if (fnmatch(patterns[i], s, FNM_PATHNAME) == 0)
                                return true;
                if (len == 1)
                        return false;
                char *slash = strrchr(s, '/');
                len = slash == s ? 1 : (size_t)(slash - s);
        }
}

int read_u64_file(const char *path, uint64_t min, uint64_t max, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        int r = read_full_file(path, 64, &s, &len);
        if (r < 0)
                return r;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
                s[--len] = '\0';
        return parse_u64_range(s, min, max, ret);
}

void chase_done(struct chase *c) {
        if (!c)
                return;
        free(c->path);
        free(c->refused);
        if (c->fd >= 0)
                close(c->fd);
        *c = (struct chase)CHASE_INIT;
}

/* Linux's own limit (MAXSYMLINKS). */
#define CHASE_MAX_SYMLINKS 40

/* 0 when the step from directory dir (stat dst) to its entry name (stat est) is one only
 * root can redirect; otherwise -EPERM with why. */
static int chase_step_trusted(const char *dir, const struct stat *dst, const char *name,
                              const struct stat *est, char **why) {
        int r = 0;
        if (dst->st_uid != 0)
                r = asprintf(why, "%s, owned by uid %u, not root", dir, (unsigned)dst->st_uid);
        else if (!(dst->st_mode & (S_IWGRP | S_IWOTH)))
                return 0;
        /* In a sticky directory others may add names but not rename or remove root's. */
        else if ((dst->st_mode & S_ISVTX) && est->st_uid == 0)
                return 0;
        else if (dst->st_mode & S_ISVTX)
                r = asprintf(why, "%s%s%s, owned by uid %u in a directory others can write", dir,
                             streq(dir, "/") ? "" : "/", name, (unsigned)est->st_uid);
        else
                r = asprintf(why, "%s, writable by %s (mode %04o)", dir,
                             (dst->st_mode & S_IWOTH) ? "others" : "its group",
                             (unsigned)(dst->st_mode & 07777));
        return r < 0 ? -ENOMEM : -EPERM;
}

int path_chase(const char *path, unsigned flags, struct chase *ret) {
        *ret = (struct chase)CHASE_INIT;
        _cleanup_free_ char *todo = NULL, *done = strdup(""); /* done: "" is "/" */
        if (path[0] == '/')
                todo = strdup(path);
        else {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return -errno;
                todo = path_join(cwd, path);
        }
        if (!todo || !done)
                return -ENOMEM;
        _cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        unsigned links = 0;
        for (const char *p = todo;;) {
                p += strspn(p, "/");
                if (!*p)
                        break;
                size_t n = strcspn(p, "/");
                _cleanup_free_ char *name = strndup(p, n);
                if (!name)
                        return -ENOMEM;
                p += n;
                if (streq(name, "."))
                        continue;
                if (streq(name, "..")) {
                        /* Its parent was on the way down here: nothing new to check. */
                        int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (up < 0)
                                return -errno;
                        close(fd);
                        fd = up;
                        char *slash = strrchr(done, '/');
                        if (slash)
                                *slash = '\0';
                        continue;
                }
                _cleanup_close_ int child = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (child < 0) {
                        if (errno != ENOENT || !(flags & CHASE_NONEXISTENT))
                                return -errno;
                        char *r = NULL;
                        if (asprintf(&r, "%s/%s%s", done, name, p) < 0)
                                return -ENOMEM;
                        path_simplify(r);
                        ret->path = r;
                        return 0;
                }
                struct stat dst, est;
                if (fstat(fd, &dst) < 0 || fstat(child, &est) < 0)
                        return -errno;
                if (flags & CHASE_TRUSTED) {
                        int r = chase_step_trusted(*done ? done : "/", &dst, name, &est,
                                                   &ret->refused);
                        if (r < 0)
                                return r;
                }
                if (S_ISLNK(est.st_mode)) {
                        if (++links > CHASE_MAX_SYMLINKS)
                                return -ELOOP;
                        char target[PATH_MAX];
                        ssize_t k = readlinkat(child, "", target, sizeof(target));
                        if (k < 0)
                                return -errno;
                        if ((size_t)k >= sizeof(target))
                                return -ENAMETOOLONG;
                        if (k == 0)
                                return -ENOENT;
                        target[k] = '\0';
                        char *next = NULL;
                        if (asprintf(&next, "%s/%s", target, p) < 0)
                                return -ENOMEM;
                        free(todo);
                        p = todo = next;
                        if (target[0] == '/') {
                                int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (root < 0)
                                        return -errno;
                                close(fd);
                                fd = root;
                                done[0] = '\0';
                        }
                        continue;
                }
                if (p[strspn(p, "/")] && !S_ISDIR(est.st_mode))
                        return -ENOTDIR;
                char *d = NULL;
                if (asprintf(&d, "%s/%s", done, name) < 0)
                        return -ENOMEM;
                free(done);
                done = d;
                close(fd);
                fd = TAKE_FD(child);
        }
        ret->path = strdup(*done ? done : "/");
        if (!ret->path)
                return -ENOMEM;
        ret->fd = TAKE_FD(fd);
        return 0;
}

int fd_reopen(int fd, int flags) {
        char p[sizeof("/proc/self/fd/") + 12];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        struct stat a, b;
        if (fstat(fd, &a) < 0)
                return -errno;
        _cleanup_close_ int n = open(p, flags | O_CLOEXEC);
        if (n < 0 || fstat(n, &b) < 0)
                return -errno;
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return -ESTALE;
        return TAKE_FD(n);
}
