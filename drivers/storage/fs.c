/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fs and netfs pool drivers: mount a device (mkfs'ed by build only when blkid
 * finds nothing on it) or a network share on the target; volumes are dir_vol_* files. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/storage/blkid.h"
#include "drivers/storage/dir.h"
#include "drivers/storage/fs.h"
#include "drivers/storage/mount.h"
#include "util/macro.h"
#include "util/time.h"
#include "util/strv.h"

/* ---- formats -------------------------------------------------------------------------- */

static bool is_auto(const char *format) {
        return !format || streq(format, "auto");
}

const char *fs_format_fstype(const char *format) {
        if (is_auto(format))
                return NULL;
        if (streq(format, "hfs+"))
                return "hfsplus";
        return format;
}

bool fs_format_matches(const char *format, const char *blkid_type, bool is_fs) {
        if (!blkid_type)
                return false;
        if (is_auto(format))
                return is_fs;
        if (streq(format, "vmfs"))
                return streq(blkid_type, "VMFS");
        return streq(fs_format_fstype(format), blkid_type);
}

static const char *netfs_format(const struct pool_def *def) {
        return is_auto(def->source.format) ? "auto" : def->source.format;
}

/* ---- names that become argv elements ---------------------------------------------------- */

static bool has_bad_chars(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == ',')
                        return true;
        return false;
}

/* Absolute, hence never taken for an option by mount or mkfs. */
static int check_path_arg(const struct pool_def *def, const char *what, const char *path,
                          struct dv_error *err) {
        if (!path || path[0] != '/')
                return dv_error_add(err, -EINVAL, 0, "pool %s: %s '%s' is not an absolute path",
                                    strna(def->name), what, strna(path));
        return 0;
}

static const char *fs_device(const struct pool_def *def) {
        return def->source.n_devices == 1 ? def->source.devices[0].path : NULL;
}

static int check_fs_def(const struct pool_def *def, struct dv_error *err) {
        int r = check_path_arg(def, "source device", fs_device(def), err);
        if (r < 0)
                return r;
        return check_path_arg(def, "target path", def->target.path, err);
}

char *fs_netfs_source(const struct pool_def *def, struct dv_error *err) {
        const char *host = def->source.host_name, *dir = def->source.dir;
        const char *fmt = netfs_format(def);
        char *s = NULL;

        if (!host || !*host || host[0] == '-' || has_bad_chars(host) || strchr(host, '/')) {
                dv_error_add(err, -EINVAL, 0, "pool %s: host name '%s' cannot be used",
                             strna(def->name), strna(host));
                return NULL;
        }
        if (!dir || !*dir || has_bad_chars(dir)) {
                dv_error_add(err, -EINVAL, 0, "pool %s: source dir '%s' cannot be used",
                             strna(def->name), strna(dir));
                return NULL;
        }
        if (streq(fmt, "cifs")) {
                if (asprintf(&s, "//%s%s%s", host, dir[0] == '/' ? "" : "/", dir) < 0)
                        s = NULL;
        } else {
                if (dir[0] != '/') {
                        dv_error_add(err, -EINVAL, 0,
                                     "pool %s: source dir '%s' is not an absolute path",
                                     strna(def->name), dir);
                        return NULL;
                }
                /* An IPv6 address needs brackets, or its colons read as the separator. */
                bool v6 = strchr(host, ':') && host[0] != '[';
                if (asprintf(&s, "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", dir) < 0)
                        s = NULL;
        }
        if (!s)
                dv_error_oom(err);
        return s;
}

/* ---- argv builders ---------------------------------------------------------------------- */

int fs_mount_argv(const struct pool_def *def, char ***ret, struct dv_error *err) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *source = NULL;
        const char *type = NULL;
        char opts[128];
        int r;

        if (def->type == POOL_FS) {
                r = check_fs_def(def, err);
                if (r < 0)
                        return r;
                source = strdup(fs_device(def));
                if (!source)
                        return dv_error_oom(err);
                type = fs_format_fstype(def->source.format);
                snprintf(opts, sizeof(opts), "%s", FS_MOUNT_OPTIONS);
        } else if (def->type == POOL_NETFS) {
                r = check_path_arg(def, "target path", def->target.path, err);
                if (r < 0)
                        return r;
                source = fs_netfs_source(def, err);
                if (!source)
                        return -EINVAL;
                const char *fmt = netfs_format(def);
                type = streq(fmt, "auto") ? NULL : fmt;
                /* cifs without credentials would ask for a password; glusterfs wants
                 * direct I/O for images (both as libvirt does). */
                const char *extra = streq(fmt, "cifs")        ? ",guest"
                                    : streq(fmt, "glusterfs") ? ",direct-io-mode=1"
                                                              : "";
                char port[32] = "";
                if (def->source.has_port)
                        snprintf(port, sizeof(port), ",%s=%u",
                                 streq(fmt, "glusterfs") ? "server-port" : "port",
                                 (unsigned)def->source.port);
                snprintf(opts, sizeof(opts), "%s%s%s", FS_MOUNT_OPTIONS, port, extra);
        } else
                return dv_error_add(err, -EINVAL, 0, "pool %s is not an fs or netfs pool",
                                    strna(def->name));

        if (strv_push(&argv, "mount") < 0 || strv_push(&argv, "-o") < 0 ||
            strv_push(&argv, opts) < 0)
                return dv_error_oom(err);
        if (type && (strv_push(&argv, "-t") < 0 || strv_push(&argv, type) < 0))
                return dv_error_oom(err);
        if (strv_push(&argv, source) < 0 || strv_push(&argv, def->target.path) < 0)
                return dv_error_oom(err);
        *ret = TAKE_PTR(argv);
        return 0;
}

int fs_mkfs_argv(const struct pool_def *def, char ***ret, struct dv_error *err) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = check_fs_def(def, err);
        if (r < 0)
                return r;
        const char *fmt = is_auto(def->source.format) ? "ext4" : def->source.format;
        if (streq(fmt, "iso9660") || streq(fmt, "vmfs") || streq(fmt, "gfs"))
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "pool %s: a %s filesystem cannot be made here; make it "
                                    "yourself, or choose another format",
                                    strna(def->name), fmt);
        const char *force = NULL;
        if (streq(fmt, "ext2") || streq(fmt, "ext3") || streq(fmt, "ext4"))
                force = "-F"; /* a whole device, not a partition: no question asked */
        else if (streq(fmt, "xfs"))
                force = "-f";
        if (strv_push(&argv, "mkfs") < 0 || strv_push(&argv, "-t") < 0 ||
            strv_push(&argv, fs_format_fstype(fmt)) < 0 || (force && strv_push(&argv, force) < 0) ||
            strv_push(&argv, fs_device(def)) < 0)
                return dv_error_oom(err);
        *ret = TAKE_PTR(argv);
        return 0;
}

int fs_umount_argv(const struct pool_def *def, char ***ret, struct dv_error *err) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = check_path_arg(def, "target path", def->target.path, err);
        if (r < 0)
                return r;
        if (strv_push(&argv, "umount") < 0 || strv_push(&argv, def->target.path) < 0)
                return dv_error_oom(err);
        *ret = TAKE_PTR(argv);
        return 0;
}

/* ---- the mount table -------------------------------------------------------------------- */

/* Equal but for trailing slashes ("host:/dir/" is "host:/dir"). */
static bool same_source(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        while (la > 1 && a[la - 1] == '/')
                la--;
        while (lb > 1 && b[lb - 1] == '/')
                lb--;
        return la == lb && memcmp(a, b, la) == 0;
}

static bool entry_is_source(const struct pool_def *def, const struct mount_entry *e,
                            const struct stat *dev_st, const char *netfs_src) {
        if (def->type == POOL_NETFS)
                return netfs_src && same_source(e->source, netfs_src);
        const char *dev = fs_device(def);
        if (dev && streq(e->source, dev))
                return true;
        /* /dev/disk/by-id/... names the same device as the /dev/sdX the kernel shows. */
        return dev_st && S_ISBLK(dev_st->st_mode) && e->major == major(dev_st->st_rdev) &&
               e->minor == minor(dev_st->st_rdev);
}

static void set_reason(struct pool_status *s, enum pool_state state, const char *fmt, ...)
        _printf_(3, 4);
static void set_reason(struct pool_status *s, enum pool_state state, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        s->state = state;
        free(s->reason);
        if (vasprintf(&s->reason, fmt, ap) < 0)
                s->reason = NULL;
        va_end(ap);
}

static const char *pool_source_name(const struct pool_def *def, const char *netfs_src) {
        return def->type == POOL_NETFS ? strna(netfs_src) : strna(fs_device(def));
}

static int classify(const struct pool_def *def, const struct mount_table *t,
                    const struct stat *dev_st, const char *netfs_src, struct pool_status *ret) {
        const char *target = def->target.path;
        const struct mount_entry *at = mount_table_find_target(t, target);
        if (at) {
                if (entry_is_source(def, at, dev_st, netfs_src))
                        ret->state = POOL_STATE_ACTIVE;
                else
                        set_reason(ret, POOL_STATE_BROKEN,
                                   "target %s is mounted from %s, not from %s", target, at->source,
                                   pool_source_name(def, netfs_src));
                return 1;
        }
        /* A network share may be mounted in several places; a local filesystem
         * mounted twice would be mounted by two owners. */
        if (def->type != POOL_FS)
                return 0;
        for (size_t i = 0; i < t->n; i++) {
                const struct mount_entry *e = &t->entries[i];
                if (entry_is_source(def, e, dev_st, NULL)) {
                        set_reason(ret, POOL_STATE_BROKEN,
                                   "source device %s is already mounted on %s, not on %s",
                                   fs_device(def), e->target, target);
                        return 1;
                }
        }
        return 0;
}

int fs_classify_mounts(const struct pool_def *def, const struct mount_table *t,
                       const struct stat *dev_st, struct pool_status *ret) {
        _cleanup_free_ char *src = NULL;
        if (def->type == POOL_NETFS) {
                src = fs_netfs_source(def, NULL);
                if (!src)
                        return -EINVAL;
        }
        return classify(def, t, dev_st, src, ret);
}

/* The live view: the pool's state as the mount table says (0 when not mounted). */
static int current_mounts(const struct pool_def *def, struct pool_status *ret,
                          struct dv_error *err) {
        _cleanup_mount_table_ struct mount_table *t = NULL;
        _cleanup_free_ char *src = NULL;
        struct stat st, *stp = NULL;
        int r;

        if (def->type == POOL_NETFS) {
                src = fs_netfs_source(def, err);
                if (!src)
                        return -EINVAL;
        } else if (fs_device(def) && stat(fs_device(def), &st) == 0)
                stp = &st;
        r = mount_table_current(&t);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read the mount table: %s", strerror(-r));
        return classify(def, t, stp, src, ret);
}

/* ---- the signature cache ---------------------------------------------------------------- */

/* Observe must be cheap: a probe of a device is kept until the device node's times
 * change (a write through it updates them) and for at most PROBE_CACHE_USEC, since a
 * write by another path (a loop device's backing file) does not touch them. Build
 * never uses the cache. */
#define PROBE_CACHE_MAX  64
#define PROBE_CACHE_USEC (60ULL * 1000000)

struct probe_entry {
        char *path;
        dev_t rdev;
        ino_t ino;
        struct timespec mtim, ctim;
        uint64_t when;
        char *type;
        bool is_fs;
};

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static struct probe_entry probe_cache[PROBE_CACHE_MAX];

static bool ts_eq(struct timespec a, struct timespec b) {
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static void probe_forget(const char *path) {
        pthread_mutex_lock(&probe_lock);
        for (size_t i = 0; i < PROBE_CACHE_MAX; i++)
                if (probe_cache[i].path && streq(probe_cache[i].path, path)) {
                        free(probe_cache[i].path);
                        free(probe_cache[i].type);
                        probe_cache[i] = (struct probe_entry){0};
                }
        pthread_mutex_unlock(&probe_lock);
}

/* storage_probe_signature_full through the cache; st is the device's stat. */
static int probe_cached(const char *dev, const struct stat *st, char **ret_type, bool *ret_is_fs,
                        struct dv_error *err) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        pthread_mutex_lock(&probe_lock);
        for (size_t i = 0; i < PROBE_CACHE_MAX; i++) {
                struct probe_entry *e = &probe_cache[i];
                if (!e->path || !streq(e->path, dev))
                        continue;
                if (e->rdev == st->st_rdev && e->ino == st->st_ino && ts_eq(e->mtim, st->st_mtim) &&
                    ts_eq(e->ctim, st->st_ctim) && now - e->when < PROBE_CACHE_USEC) {
                        char *type = e->type ? strdup(e->type) : NULL;
                        bool is_fs = e->is_fs, had = e->type != NULL;
                        pthread_mutex_unlock(&probe_lock);
                        if (had && !type)
                                return dv_error_oom(err);
                        *ret_type = type;
                        *ret_is_fs = is_fs;
                        return had ? 1 : 0;
                }
        }
        pthread_mutex_unlock(&probe_lock);

        _cleanup_free_ char *type = NULL;
        bool is_fs = false;
        int r = storage_probe_signature_full(dev, &type, &is_fs, err);
        if (r < 0)
                return r;

        pthread_mutex_lock(&probe_lock);
        size_t slot = 0;
        for (size_t i = 0; i < PROBE_CACHE_MAX; i++) {
                if (probe_cache[i].path && streq(probe_cache[i].path, dev)) {
                        slot = i;
                        break;
                }
                if (!probe_cache[i].path || probe_cache[i].when < probe_cache[slot].when)
                        slot = i; /* a free slot, else the oldest */
                if (!probe_cache[slot].path)
                        break;
        }
        struct probe_entry *e = &probe_cache[slot];
        free(e->path);
        free(e->type);
        *e = (struct probe_entry){
                .path = strdup(dev),
                .rdev = st->st_rdev,
                .ino = st->st_ino,
                .mtim = st->st_mtim,
                .ctim = st->st_ctim,
                .when = now,
                .type = type ? strdup(type) : NULL,
                .is_fs = is_fs,
        };
        if (!e->path || (type && !e->type)) {
                free(e->path);
                free(e->type);
                *e = (struct probe_entry){0};
        }
        pthread_mutex_unlock(&probe_lock);
        *ret_type = TAKE_PTR(type);
        *ret_is_fs = is_fs;
        return r;
}

/* ---- pool ------------------------------------------------------------------------------- */

/* The target directory, looked at without following a symlink anywhere in its path:
 * 0 with st filled, or a negative errno (-ELOOP: a symlink; -ENOTDIR). */
static int stat_target(const struct pool_def *def, struct stat *st, struct statvfs *sv) {
        _cleanup_close_ int fd = dir_open_nofollow(def->target.path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        if (fstat(fd, st) < 0 || (sv && fstatvfs(fd, sv) < 0))
                return -errno;
        return 0;
}

static void fill_active(const struct pool_def *def, struct pool_status *s) {
        struct stat st;
        struct statvfs sv;
        if (stat_target(def, &st, &sv) < 0)
                return;
        s->has_perms = true;
        s->mode = st.st_mode & 07777;
        s->owner = st.st_uid;
        s->group = st.st_gid;
        s->has_sizes = true;
        s->capacity = (uint64_t)sv.f_frsize * sv.f_blocks;
        s->allocation = (uint64_t)sv.f_frsize * (sv.f_blocks - sv.f_bfree);
        s->available = (uint64_t)sv.f_frsize * sv.f_bavail;
}

/* The target directory when nothing is mounted on it: 1 there, 0 missing, or BROKEN. */
static int look_at_target(const struct pool_def *def, struct pool_status *s) {
        struct stat st;
        int r = stat_target(def, &st, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                set_reason(s, POOL_STATE_BROKEN, "target path %s %s", def->target.path,
                           dir_open_problem(r));
                return -1;
        }
        return 1;
}

/* For build: a target that exists must be a directory reached through no symlink. */
static int check_target_for_build(const struct pool_def *def, struct dv_error *err) {
        struct stat st;
        int r = stat_target(def, &st, NULL);
        if (r == -ENOENT)
                return 0;
        if (r == -ENOTDIR || r == -ELOOP)
                return dv_error_add(err, -EEXIST, 0, "target path %s %s", def->target.path,
                                    r == -ENOTDIR ? "exists and is not a directory"
                                                  : dir_open_problem(r));
        return r < 0 ? dv_error_add(err, r, 0, "target path %s %s", def->target.path,
                                    dir_open_problem(r))
                     : 0;
}

static int refusal_reason(const char *dev, const char *type, char **ret) {
        return asprintf(ret, "%s holds a %s signature; not formatting (build='if-empty')", dev,
                        type) < 0
                       ? -ENOMEM
                       : 0;
}

static int fs_pool_observe(const struct pool_def *def, struct pool_status *ret,
                           struct dv_error *err) {
        struct pool_status s = {0};
        int r = check_fs_def(def, err);
        if (r < 0)
                return r;
        const char *dev = fs_device(def);

        r = current_mounts(def, &s, err);
        if (r < 0)
                return r;
        if (r > 0) {
                if (s.state == POOL_STATE_ACTIVE)
                        fill_active(def, &s);
                *ret = s;
                return 0;
        }

        struct stat st;
        if (stat(dev, &st) < 0) {
                if (errno == ENOENT)
                        set_reason(&s, POOL_STATE_BROKEN, "source device %s does not exist", dev);
                else
                        set_reason(&s, POOL_STATE_BROKEN, "cannot look at source device %s: %s",
                                   dev, strerror(errno));
                *ret = s;
                return 0;
        }
        if (!S_ISBLK(st.st_mode)) {
                set_reason(&s, POOL_STATE_BROKEN, "source device %s is not a block device", dev);
                *ret = s;
                return 0;
        }
        int target = look_at_target(def, &s);
        if (target < 0) {
                *ret = s;
                return 0;
        }

        _cleanup_free_ char *type = NULL;
        bool is_fs = false;
        _cleanup_dv_error_ struct dv_error perr = DV_ERROR_INIT;
        r = probe_cached(dev, &st, &type, &is_fs, &perr);
        if (r < 0) {
                s.state = POOL_STATE_BROKEN;
                s.reason = dv_error_summary(&perr);
        } else if (r == 0)
                s.state = POOL_STATE_ABSENT; /* build makes the filesystem */
        else if (fs_format_matches(def->source.format, type, is_fs))
                s.state = target > 0 ? POOL_STATE_INACTIVE : POOL_STATE_ABSENT;
        else {
                /* Something else lives there: shown now, not only when build refuses. */
                s.state = POOL_STATE_BROKEN;
                if (refusal_reason(dev, type, &s.reason) < 0)
                        s.reason = NULL;
        }
        *ret = s;
        return 0;
}

static int run_argv(char **argv, uint64_t timeout, struct dv_error *err) {
        /* cmd_run logs the argv at debug. */
        struct cmd_opts o = {.timeout_usec = timeout};
        return cmd_run(argv, &o, NULL, err);
}

static uint64_t mount_timeout(const struct pool_def *def) {
        return def->type == POOL_NETFS ? FS_NETFS_TIMEOUT_USEC : 0;
}

static int fs_pool_build(const struct pool_def *def, enum dv_build build, struct dv_error *err) {
        struct pool_status s = {0};
        int r = check_fs_def(def, err);
        if (r < 0)
                return r;
        const char *dev = fs_device(def);

        /* Everything that could refuse is checked before anything is made. */
        r = current_mounts(def, &s, err);
        if (r < 0)
                return r;
        if (r > 0) {
                bool ok = s.state == POOL_STATE_ACTIVE;
                if (!ok)
                        dv_error_add(err, -EBUSY, 0, "%s", strna(s.reason));
                pool_status_done(&s);
                return ok ? 0 : -EBUSY; /* mounted already: built */
        }
        r = check_target_for_build(def, err);
        if (r < 0)
                return r;
        struct stat st;
        if (stat(dev, &st) == 0 && !S_ISBLK(st.st_mode))
                return dv_error_add(err, -EINVAL, 0, "source device %s is not a block device", dev);

        _cleanup_free_ char *type = NULL;
        bool is_fs = false;
        int found = storage_probe_signature_full(dev, &type, &is_fs, err);
        if (found < 0)
                return found;
        if (found > 0 && !fs_format_matches(def->source.format, type, is_fs)) {
                _cleanup_free_ char *why = NULL;
                if (refusal_reason(dev, type, &why) < 0)
                        return dv_error_oom(err);
                return dv_error_add(err, -EEXIST, 0, "%s", why);
        }
        _cleanup_strv_free_ char **mkfs = NULL;
        if (found == 0) {
                if (build == DV_BUILD_NO)
                        return dv_error_add(err, -ENOENT, 0,
                                            "source device %s has no filesystem and build='no'",
                                            dev);
                r = fs_mkfs_argv(def, &mkfs, err);
                if (r < 0)
                        return r;
        }

        if (mkfs) {
                /* The kernel refuses an exclusive open of a device that is mounted (in any
                 * mount namespace) or held by LVM, RAID or device-mapper, none of which
                 * the signature probe or our mount table need show. */
                int fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0) {
                        r = -errno;
                        if (r == -EBUSY)
                                return dv_error_add(
                                        err, -EBUSY, 0,
                                        "source device %s is in use (mounted, or held "
                                        "by LVM, RAID or device-mapper); not formatting",
                                        dev);
                        return dv_error_add(err, r, 0, "cannot open %s: %s", dev, strerror(-r));
                }
                close(fd);
        }

        r = storage_driver_dir.pool_build(def, build, err); /* the target directory */
        if (r < 0)
                return r;
        if (!mkfs)
                return 0; /* the filesystem asked for is there: simply mounted by start */
        r = run_argv(mkfs, FS_MKFS_TIMEOUT_USEC, err);
        probe_forget(dev);
        return r;
}

static int pool_start(const struct pool_def *def, struct dv_error *err) {
        struct pool_status s = {0};
        int r = current_mounts(def, &s, err);
        if (r < 0)
                return r;
        if (r > 0) {
                bool ok = s.state == POOL_STATE_ACTIVE;
                if (!ok)
                        dv_error_add(err, -EBUSY, 0, "%s", strna(s.reason));
                pool_status_done(&s);
                return ok ? 0 : -EBUSY; /* mounted already (by us, before a restart) */
        }
        /* mount(8) follows symlinks: one in the target's path would put the pool's
         * filesystem over whatever it points to. */
        struct stat st;
        r = stat_target(def, &st, NULL);
        if (r < 0)
                return dv_error_add(err, r == -ELOOP ? -EEXIST : r, 0, "target path %s %s",
                                    def->target.path, dir_open_problem(r));
        if (def->type == POOL_FS) {
                const char *dev = fs_device(def);
                if (stat(dev, &st) < 0)
                        return errno == ENOENT
                                       ? dv_error_add(err, -ENOENT, 0,
                                                      "source device %s does not exist", dev)
                                       : dv_error_add(err, -errno, 0, "cannot use %s: %s", dev,
                                                      strerror(errno));
                if (!S_ISBLK(st.st_mode))
                        return dv_error_add(err, -EINVAL, 0,
                                            "source device %s is not a block device", dev);
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = fs_mount_argv(def, &argv, err);
        if (r < 0)
                return r;
        r = run_argv(argv, mount_timeout(def), err);
        if (r < 0)
                return r;
        /* <permissions> are those of the mounted filesystem's root. */
        return dir_pool_set_perms(def, err);
}

static int pool_stop(const struct pool_def *def, struct dv_error *err) {
        struct pool_status s = {0};
        int r = current_mounts(def, &s, err);
        if (r < 0)
                return r;
        enum pool_state state = s.state;
        pool_status_done(&s);
        if (r == 0)
                return 0; /* not mounted */
        if (state != POOL_STATE_ACTIVE) {
                _cleanup_mount_table_ struct mount_table *t = NULL;
                if (mount_table_current(&t) < 0 || !mount_table_find_target(t, def->target.path))
                        return 0; /* only our source mounted elsewhere: not ours to undo */
                return dv_error_add(err, -EBUSY, 0,
                                    "target %s is mounted from something else; not unmounting it",
                                    def->target.path);
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = fs_umount_argv(def, &argv, err);
        if (r < 0)
                return r;
        return run_argv(argv, mount_timeout(def), err);
}

static int pool_delete(const struct pool_def *def, struct dv_error *err) {
        _cleanup_mount_table_ struct mount_table *t = NULL;
        int r = check_path_arg(def, "target path", def->target.path, err);
        if (r < 0)
                return r;
        r = mount_table_current(&t);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read the mount table: %s", strerror(-r));
        /* Deleting a pool removes its empty mount point, never what is on the device. */
        if (mount_table_find_target(t, def->target.path))
                return dv_error_add(err, -EBUSY, 0, "target %s is still mounted; not removing it",
                                    def->target.path);
        return storage_driver_dir.pool_delete(def, err);
}

static int netfs_pool_observe(const struct pool_def *def, struct pool_status *ret,
                              struct dv_error *err) {
        struct pool_status s = {0};
        int r = check_path_arg(def, "target path", def->target.path, err);
        if (r < 0)
                return r;
        r = current_mounts(def, &s, err);
        if (r < 0)
                return r;
        if (r > 0) {
                if (s.state == POOL_STATE_ACTIVE)
                        fill_active(def, &s);
                *ret = s;
                return 0;
        }
        int target = look_at_target(def, &s);
        if (target >= 0)
                s.state = target > 0 ? POOL_STATE_INACTIVE : POOL_STATE_ABSENT;
        *ret = s;
        return 0;
}

static int netfs_pool_build(const struct pool_def *def, enum dv_build build, struct dv_error *err) {
        _cleanup_free_ char *src = fs_netfs_source(def, err);
        if (!src)
                return -EINVAL;
        int r = check_path_arg(def, "target path", def->target.path, err);
        if (r < 0 || (r = check_target_for_build(def, err)) < 0)
                return r;
        return storage_driver_dir.pool_build(def, build, err);
}

/* ---- volumes: files on the mounted filesystem, never in the bare mount point ------------ */

static int require_mounted(const struct pool_def *def, struct dv_error *err) {
        struct pool_status s = {0};
        int r = current_mounts(def, &s, err);
        if (r < 0)
                return r;
        bool ok = r > 0 && s.state == POOL_STATE_ACTIVE;
        pool_status_done(&s);
        if (!ok)
                return dv_error_add(err, -ENODEV, 0, "pool %s is not mounted on %s",
                                    strna(def->name), strna(def->target.path));
        return 0;
}

static int vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                    struct dv_error *err) {
        int r = require_mounted(def, err);
        return r < 0 ? r : dir_vol_list(def, ret, n, err);
}

static int vol_create(const struct pool_def *def, const struct volume_def *vol,
                      struct dv_error *err) {
        int r = require_mounted(def, err);
        return r < 0 ? r : dir_vol_create(def, vol, err);
}

static int vol_resize(const struct pool_def *def, const struct volume_def *vol, uint64_t capacity,
                      struct dv_error *err) {
        int r = require_mounted(def, err);
        return r < 0 ? r : dir_vol_resize(def, vol, capacity, err);
}

static int vol_delete(const struct pool_def *def, const char *name, struct dv_error *err) {
        int r = require_mounted(def, err);
        return r < 0 ? r : dir_vol_delete(def, name, err);
}

const struct storage_driver storage_driver_fs = {
        .type = POOL_FS,
        .pool_observe = fs_pool_observe,
        .pool_build = fs_pool_build,
        .pool_start = pool_start,
        .pool_stop = pool_stop,
        .pool_delete = pool_delete,
        .pool_set_perms = dir_pool_set_perms,
        .vol_list = vol_list,
        .vol_create = vol_create,
        .vol_resize = vol_resize,
        .vol_delete = vol_delete,
        .vol_path = dir_vol_path,
};

const struct storage_driver storage_driver_netfs = {
        .type = POOL_NETFS,
        .pool_observe = netfs_pool_observe,
        .pool_build = netfs_pool_build,
        .pool_start = pool_start,
        .pool_stop = pool_stop,
        .pool_delete = pool_delete,
        .pool_set_perms = dir_pool_set_perms,
        .vol_list = vol_list,
        .vol_create = vol_create,
        .vol_resize = vol_resize,
        .vol_delete = vol_delete,
        .vol_path = dir_vol_path,
};
