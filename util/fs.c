/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File-system helpers. */
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *dir = path_dirname(path);
        _cleanup_free_ char *tmp = NULL;
        if (!dir || asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd =
                open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        const char *p = data;
        size_t left = len;
        int r = 0;
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
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
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
