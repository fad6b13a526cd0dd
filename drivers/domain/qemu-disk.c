/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disk images opened by the agent for QEMU: the image and every layer of its backing
 * chain, each checked on its descriptor (fstat), never by name again. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/domain/qemu-disk.h"
#include "drivers/storage/dir.h"
#include "drivers/storage/fileinfo.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

/* Removes "." and resolves ".." by name, in place, on an absolute simplified path. Safe
 * only because the result is opened without following any symlink: then the name is
 * the way the kernel walks too. */
static void resolve_dots(char *s) {
        char *out = s;
        for (const char *p = s; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                size_t n = (size_t)(e - p);
                if (n == 0 || (n == 1 && p[0] == '.')) {
                        /* nothing */
                } else if (n == 2 && p[0] == '.' && p[1] == '.') {
                        while (out > s && *--out != '/')
                                ;
                } else {
                        *out++ = '/';
                        memmove(out, p, n);
                        out += n;
                }
                p = e;
        }
        if (out == s)
                *out++ = '/';
        *out = '\0';
}

/* QEMU reads "nbd:...", "http:..." or "json:{...}" as a protocol, not a file: a header
 * naming one is refused (so is anything but a plain file name). */
static bool is_protocol_name(const char *name) {
        const char *colon = strchr(name, ':');
        return colon && !memchr(name, '/', (size_t)(colon - name));
}

struct opener {
        const struct domain_def *def;
        char *const *locations;
        struct qemu_disks *d;
        size_t cap;
        struct dv_error *err;
};

static bool seen(const struct opener *o, size_t first, const struct stat *st) {
        for (size_t k = first; k < o->d->n; k++) {
                struct stat s;
                if (fstat(o->d->fds[k], &s) == 0 && s.st_dev == st->st_dev &&
                    s.st_ino == st->st_ino)
                        return true;
        }
        return false;
}

/* Opens one layer and appends it. block: a block device is wanted (else a regular
 * file; volume: either, by where the path is). */
static int open_layer(struct opener *o, const struct domain_disk *disk, const char *path,
                      const char *format, bool ro, size_t first, bool backing) {
        const char *dev = disk->target_dev;
        enum domain_disk_type t = domain_disk_type(disk);
        bool under_dev = strncmp(path, "/dev/", 5) == 0;
        bool want_block =
                !backing && (t == DOMAIN_DISK_BLOCK || (t == DOMAIN_DISK_VOLUME && under_dev));
        int flags = (ro ? O_RDONLY : O_RDWR) | O_NONBLOCK; /* never wait on a FIFO */
        int fd;
        if (want_block) {
                /* Device names (/dev/VG/LV, /dev/disk/by-id) are symlinks that only root
                 * can make: followed, but what opens must be a block device. */
                fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        fd = -errno;
        } else
                fd = dir_open_nofollow(path, flags);
        if (fd < 0) {
                if (fd == -ELOOP)
                        return dv_error_add(o->err, fd, disk->line, "disk '%s': %s %s", dev, path,
                                            dir_open_problem(fd));
                return dv_error_add(o->err, fd, disk->line, "disk '%s': cannot open %s: %s", dev,
                                    path, strerror(-fd));
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return dv_error_add(o->err, r, disk->line, "disk '%s': cannot stat %s: %s", dev,
                                    path, strerror(-r));
        }
        bool ok = want_block ? S_ISBLK(st.st_mode) : S_ISREG(st.st_mode);
        if (!ok) {
                close(fd);
                return dv_error_add(o->err, -EBADF, disk->line, "disk '%s': %s is %s, not %s%s",
                                    dev, path, dir_file_kind(st.st_mode),
                                    want_block ? "a block device" : "a regular file",
                                    backing ? " (a backing file of its image)" : "");
        }
        if (seen(o, first, &st)) {
                close(fd);
                return dv_error_add(o->err, -EMLINK, disk->line,
                                    "disk '%s': the backing chain comes back to %s (a loop)", dev,
                                    path);
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                int r = -errno;
                close(fd);
                return dv_error_add(o->err, r, disk->line, "disk '%s': %s: %s", dev, path,
                                    strerror(-r));
        }
        char *p = strdup(path);
        if (!p) {
                close(fd);
                return dv_error_oom(o->err);
        }
        assert(o->d->n < o->cap);
        o->d->fds[o->d->n] = fd;
        o->d->layers[o->d->n] =
                (struct qemu_disk_layer){.path = p, .format = format, .fd = 3 + (int)o->d->n};
        o->d->n++;
        return 0;
}

/* The backing store the qcow2 layer last opened names: its absolute path and format,
 * or *ret_path NULL when it has none. */
static int read_backing(struct opener *o, const struct domain_disk *disk, char **ret_path,
                        const char **ret_format) {
        size_t k = o->d->n - 1;
        const char *path = o->d->layers[k].path, *dev = disk->target_dev;
        _cleanup_free_ unsigned char *h = malloc(FILEINFO_HEADER_SIZE);
        if (!h)
                return dv_error_oom(o->err);
        ssize_t len = pread(o->d->fds[k], h, FILEINFO_HEADER_SIZE, 0);
        if (len < 0)
                return dv_error_add(o->err, -errno, disk->line, "disk '%s': cannot read %s: %m",
                                    dev, path);
        if (!streq(fileinfo_detect_format(h, (size_t)len), "qcow2"))
                return dv_error_add(o->err, -EBADMSG, disk->line,
                                    "disk '%s': %s is not a qcow2 image", dev, path);
        struct fileinfo fi = {0};
        int r = fileinfo_parse_qcow2(h, (size_t)len, o->d->fds[k], &fi);
        if (r < 0)
                return dv_error_add(o->err, r == -EOPNOTSUPP ? r : -EBADMSG, disk->line,
                                    "disk '%s': %s: %s", dev, path,
                                    r == -EOPNOTSUPP
                                            ? "a qcow2 image QEMU would have to interpret further "
                                              "(encryption, an external data file, unknown "
                                              "features): not supported"
                                            : "malformed qcow2 header");
        *ret_path = NULL;
        *ret_format = NULL;
        if (!fi.backing_path) {
                fileinfo_done(&fi);
                return 0;
        }
        if (is_protocol_name(fi.backing_path)) {
                r = dv_error_add(o->err, -EOPNOTSUPP, disk->line,
                                 "disk '%s': %s names backing store '%s', which QEMU would read "
                                 "as a protocol; only files are supported",
                                 dev, path, fi.backing_path);
                fileinfo_done(&fi);
                return r;
        }
        _cleanup_free_ char *dir = path_dirname(path);
        char *abs = fi.backing_path[0] == '/' ? strdup(fi.backing_path)
                    : dir                     ? path_join(dir, fi.backing_path)
                                              : NULL;
        const char *fmt = NULL;
        if (fi.backing_format)
                fmt = streq(fi.backing_format, "qcow2") ? "qcow2"
                      : streq(fi.backing_format, "raw") ? "raw"
                                                        : NULL;
        if (fi.backing_format && !fmt)
                r = dv_error_add(o->err, -EOPNOTSUPP, disk->line,
                                 "disk '%s': %s: backing file format '%s' is not supported "
                                 "(raw or qcow2)",
                                 dev, path, fi.backing_format);
        fileinfo_done(&fi);
        if (r < 0) {
                free(abs);
                return r;
        }
        if (!abs)
                return dv_error_oom(o->err);
        path_simplify(abs);
        resolve_dots(abs);
        *ret_path = abs;
        *ret_format = fmt;
        return 0;
}

static int open_disk(struct opener *o, size_t i, const char *path) {
        const struct domain_disk *disk = &o->def->disks[i];
        bool ro = disk->readonly || domain_disk_device(disk) == DOMAIN_DISK_CDROM;
        bool qcow2 = disk->driver.format == DOMAIN_DISK_FORMAT_QCOW2;
        size_t first = o->d->n;
        int r = open_layer(o, disk, path, qcow2 ? "qcow2" : "raw", ro, first, false);
        for (size_t depth = 0; r >= 0 && streq(o->d->layers[o->d->n - 1].format, "qcow2");
             depth++) {
                _cleanup_free_ char *bpath = NULL;
                const char *fmt = NULL;
                r = read_backing(o, disk, &bpath, &fmt);
                if (r < 0 || !bpath)
                        break;
                const char *above = o->d->layers[o->d->n - 1].path;
                if (depth == QEMU_DISK_CHAIN_MAX)
                        return dv_error_add(o->err, -EMLINK, disk->line,
                                            "disk '%s': the backing chain of %s is deeper than %d",
                                            disk->target_dev, path, QEMU_DISK_CHAIN_MAX);
                if (!path_location_allowed(o->locations, bpath))
                        return dv_error_add(o->err, -EPERM, disk->line,
                                            "disk '%s': %s names backing file %s, which is "
                                            "outside storage_locations",
                                            disk->target_dev, above, bpath);
                r = open_layer(o, disk, bpath, fmt ? fmt : "raw", true, first, true);
                if (r >= 0 && !fmt) {
                        /* No format in the header: raw or qcow2 by the file's own header,
                         * what QEMU would probe (and nothing else). */
                        const char *probed = NULL;
                        size_t k = o->d->n - 1;
                        r = fileinfo_probe_fd(o->d->fds[k], &probed);
                        if (r < 0)
                                return dv_error_add(o->err, r, disk->line,
                                                    "disk '%s': cannot read %s: %s",
                                                    disk->target_dev, bpath, strerror(-r));
                        const char *q = fileinfo_qemu_format(probed);
                        if (!streq(q, "raw") && !streq(q, "qcow2"))
                                return dv_error_add(o->err, -EOPNOTSUPP, disk->line,
                                                    "disk '%s': backing file %s is %s: only raw "
                                                    "and qcow2 are supported",
                                                    disk->target_dev, bpath, probed);
                        o->d->layers[k].format = streq(q, "qcow2") ? "qcow2" : "raw";
                }
        }
        if (r < 0)
                return r;
        o->d->chains[i].n_layers = o->d->n - first;
        return 0;
}

int qemu_disks_open(const struct domain_def *def, char *const *disk_paths, char *const *locations,
                    struct qemu_disks *ret, struct dv_error *err) {
        *ret = (struct qemu_disks){0};
        struct opener o = {.def = def, .locations = locations, .d = ret, .err = err};
        o.cap = def->n_disks * (QEMU_DISK_CHAIN_MAX + 1);
        ret->chains = calloc(def->n_disks + 1, sizeof(*ret->chains));
        ret->layers = calloc(o.cap + 1, sizeof(*ret->layers));
        ret->fds = calloc(o.cap + 1, sizeof(*ret->fds));
        if (!ret->chains || !ret->layers || !ret->fds) {
                qemu_disks_done(ret);
                return dv_error_oom(err);
        }
        int r = 0;
        for (size_t i = 0; r >= 0 && i < def->n_disks; i++) {
                const struct domain_disk *disk = &def->disks[i];
                const char *path = !disk->has_source                               ? NULL
                                   : disk_paths && disk_paths[i] && *disk_paths[i] ? disk_paths[i]
                                   : domain_disk_type(disk) == DOMAIN_DISK_FILE  ? disk->source.file
                                   : domain_disk_type(disk) == DOMAIN_DISK_BLOCK ? disk->source.dev
                                                                                 : NULL;
                if (!path)
                        continue;
                if (path[0] != '/') {
                        /* qemu_argv says it, with the line. */
                        continue;
                }
                r = open_disk(&o, i, path);
        }
        if (r < 0) {
                qemu_disks_done(ret);
                return r;
        }
        /* The layers array does not move any more: the chains can point into it. */
        for (size_t i = 0, k = 0; i < def->n_disks; i++) {
                ret->chains[i].layers = ret->chains[i].n_layers ? &ret->layers[k] : NULL;
                k += ret->chains[i].n_layers;
        }
        return 0;
}

void qemu_disks_done(struct qemu_disks *d) {
        if (!d)
                return;
        for (size_t k = 0; k < d->n; k++) {
                free(d->layers[k].path);
                if (d->fds[k] >= 0)
                        close(d->fds[k]);
        }
        free(d->chains);
        free(d->layers);
        free(d->fds);
        *d = (struct qemu_disks){0};
}
