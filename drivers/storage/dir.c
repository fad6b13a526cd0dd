/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dir pool driver: a directory made with mkdir and removed with rmdir, whose
 * regular files are the volumes (raw made here, qcow2 through qemu-img). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/storage/dir.h"
#include "drivers/storage/fileinfo.h"
#include "model/object.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"

static int check_target(const struct pool_def *def, struct dv_error *err) {
        if (!def->target.path || def->target.path[0] != '/')
                return dv_error_add(err, -EINVAL, 0, "pool %s: target path '%s' is not absolute",
                                    strna(def->name), strna(def->target.path));
        return 0;
}

static void fsync_dir(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
                (void)fsync(fd);
}

/* chown first: it clears set-id bits that a chmod may want to set. */
static int apply_perms_fd(int fd, const struct dv_perms *p, bool force_mode,
                          unsigned default_mode) {
        if ((p->has_owner || p->has_group) &&
            fchown(fd, p->has_owner ? (uid_t)p->owner : (uid_t)-1,
                   p->has_group ? (gid_t)p->group : (gid_t)-1) < 0)
                return -errno;
        if ((p->has_mode || force_mode) &&
            fchmod(fd, (p->has_mode ? p->mode : default_mode) & 07777) < 0)
                return -errno;
        return 0;
}

/* ---- pool ------------------------------------------------------------------------------- */

static int dir_pool_observe(const struct pool_def *def, struct pool_status *ret,
                            struct dv_error *err) {
        struct pool_status s = {0};
        int r = check_target(def, err);
        if (r < 0)
                return r;
        const char *path = def->target.path;
        struct stat st;
        if (stat(path, &st) < 0) {
                if (errno == ENOENT) {
                        s.state = POOL_STATE_ABSENT;
                        *ret = s;
                        return 0;
                }
                r = -errno;
                s.state = POOL_STATE_BROKEN;
                if (asprintf(&s.reason, "cannot look at target path %s: %s", path, strerror(-r)) <
                    0)
                        s.reason = NULL;
                *ret = s;
                return 0;
        }
        if (!S_ISDIR(st.st_mode)) {
                s.state = POOL_STATE_BROKEN;
                if (asprintf(&s.reason, "target path %s is not a directory", path) < 0)
                        s.reason = NULL;
                *ret = s;
                return 0;
        }
        s.state = POOL_STATE_ACTIVE;
        s.has_perms = true;
        s.mode = st.st_mode & 07777;
        s.owner = st.st_uid;
        s.group = st.st_gid;
        struct statvfs sv;
        if (statvfs(path, &sv) == 0) {
                s.has_sizes = true;
                s.capacity = (uint64_t)sv.f_frsize * sv.f_blocks;
                s.allocation = (uint64_t)sv.f_frsize * (sv.f_blocks - sv.f_bfree);
                s.available = (uint64_t)sv.f_frsize * sv.f_bavail;
        }
        *ret = s;
        return 0;
}

int dir_pool_set_perms(const struct pool_def *def, struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        const struct dv_perms *p = &def->target.perms;
        if (!p->has_mode && !p->has_owner && !p->has_group)
                return 0;
        _cleanup_close_ int fd = open(def->target.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", def->target.path,
                                    strerror(-r));
        }
        r = apply_perms_fd(fd, p, false, 0);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot set the permissions of %s: %s",
                                    def->target.path, strerror(-r));
        return 0;
}

static int dir_pool_build(const struct pool_def *def, enum dv_build build, struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        const char *path = def->target.path;
        struct stat st;
        if (stat(path, &st) == 0) {
                if (!S_ISDIR(st.st_mode))
                        return dv_error_add(err, -ENOTDIR, 0, "target path %s is not a directory",
                                            path);
                return dir_pool_set_perms(def, err); /* built already: nothing to make */
        }
        if (errno != ENOENT) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot look at target path %s: %s", path,
                                    strerror(-r));
        }
        if (build == DV_BUILD_NO)
                return dv_error_add(err, -ENOENT, 0, "target %s does not exist and build='no'",
                                    path);

        _cleanup_free_ char *parent = path_dirname(path);
        if (!parent)
                return dv_error_oom(err);
        r = mkdir_p(parent, 0755);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create %s: %s", parent, strerror(-r));
        unsigned mode = def->target.perms.has_mode ? def->target.perms.mode : DIR_POOL_DEFAULT_MODE;
        if (mkdir(path, mode & 07777) < 0 && errno != EEXIST) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot create %s: %s", path, strerror(-r));
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        /* The mode is set explicitly: mkdir's was masked by the umask. */
        r = apply_perms_fd(fd, &def->target.perms, true, DIR_POOL_DEFAULT_MODE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot set the permissions of %s: %s", path,
                                    strerror(-r));
        (void)fsync(fd);
        fsync_dir(parent);
        return 0;
}

static int dir_pool_start(const struct pool_def *def, struct dv_error *err) {
        (void)def;
        (void)err;
        return 0; /* a directory is active as soon as it exists */
}

static int dir_pool_stop(const struct pool_def *def, struct dv_error *err) {
        (void)def;
        (void)err;
        return 0;
}

static int dir_pool_delete(const struct pool_def *def, struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        /* rmdir only: files in it, ours or not, are never removed with the pool. */
        if (rmdir(def->target.path) < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ENOTEMPTY || errno == EEXIST)
                        return dv_error_add(err, -ENOTEMPTY, 0, "pool directory %s is not empty",
                                            def->target.path);
                r = -errno;
                return dv_error_add(err, r, 0, "cannot remove %s: %s", def->target.path,
                                    strerror(-r));
        }
        _cleanup_free_ char *parent = path_dirname(def->target.path);
        if (parent)
                fsync_dir(parent);
        return 0;
}

/* ---- volumes ------------------------------------------------------------------------- */

char *dir_vol_path(const struct pool_def *def, const char *name) {
        /* Validated at parse time; checked again right before it becomes a path. */
        if (!def->target.path || dv_name_problem(DV_KIND_VOLUME, name))
                return NULL;
        return path_join(def->target.path, name);
}

char *dir_vol_temp_path(const struct pool_def *def, const char *name) {
        if (!def->target.path || dv_name_problem(DV_KIND_VOLUME, name))
                return NULL;
        char *p = NULL;
        /* ".NAME.creating" must fit NAME_MAX (255); long names use their hash. */
        if (strlen(name) + strlen("..creating") <= 255) {
                if (asprintf(&p, "%s/.%s.creating", def->target.path, name) < 0)
                        return NULL;
        } else {
                char h[HASH_HEX_LEN + 1];
                hash_hex(name, strlen(name), h);
                if (asprintf(&p, "%s/.%s.creating", def->target.path, h) < 0)
                        return NULL;
        }
        return p;
}

static int cmp_vol(const void *a, const void *b) {
        return strcmp(((const struct vol_status *)a)->name, ((const struct vol_status *)b)->name);
}

int dir_vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                 struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        int fd = open(def->target.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot list %s: %s", def->target.path,
                                    strerror(-r));
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return dv_error_add(err, r, 0, "cannot list %s: %s", def->target.path,
                                    strerror(-r));
        }
        struct vol_status *v = NULL;
        size_t nv = 0, cap = 0;
        struct dirent *de;
        r = 0;
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = dv_error_add(err, -errno, 0, "cannot list %s: %s",
                                                 def->target.path, strerror(errno));
                        break;
                }
                /* Hidden: temporary files (ours and other tools'), lost+found-like state. */
                if (de->d_name[0] == '.')
                        continue;
                if (dv_name_problem(DV_KIND_VOLUME, de->d_name)) {
                        log_debug("pool %s: not listing '%s': %s", strna(def->name), de->d_name,
                                  dv_name_problem(DV_KIND_VOLUME, de->d_name));
                        continue;
                }
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue; /* gone, dangling symlink, directory, device... */
                _cleanup_free_ char *path = path_join(def->target.path, de->d_name);
                if (!path) {
                        r = dv_error_oom(err);
                        break;
                }
                struct fileinfo fi = {0};
                _cleanup_dv_error_ struct dv_error ferr = DV_ERROR_INIT;
                if (fileinfo_get(path, &st, &fi, &ferr) < 0) {
                        log_debug("pool %s: not listing %s: %s", strna(def->name), path,
                                  strna(dv_error_message(&ferr)));
                        continue;
                }
                if (nv == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct vol_status *nvp = reallocarray(v, ncap, sizeof(*v));
                        if (!nvp) {
                                fileinfo_done(&fi);
                                r = dv_error_oom(err);
                                break;
                        }
                        v = nvp;
                        cap = ncap;
                }
                struct vol_status *s = &v[nv++];
                *s = (struct vol_status){
                        .name = strdup(de->d_name),
                        .path = TAKE_PTR(path),
                        .type = strdup("file"),
                        .format = TAKE_PTR(fi.format),
                        .capacity = fi.capacity,
                        .allocation = fi.allocation,
                        .backing_path = TAKE_PTR(fi.backing_path),
                        .backing_format = TAKE_PTR(fi.backing_format),
                };
                if (!s->name || !s->type) {
                        r = dv_error_oom(err);
                        break;
                }
        }
        closedir(d);
        if (r < 0) {
                vol_status_array_free(v, nv);
                return r;
        }
        if (nv > 0)
                qsort(v, nv, sizeof(*v), cmp_vol);
        *ret = v;
        *n = nv;
        return 0;
}

static int pool_available(const struct pool_def *def, uint64_t *ret) {
        struct statvfs sv;
        if (statvfs(def->target.path, &sv) < 0)
                return -errno;
        *ret = (uint64_t)sv.f_frsize * sv.f_bavail;
        return 0;
}

static int check_space(const struct pool_def *def, const char *vol, uint64_t need,
                       struct dv_error *err) {
        uint64_t avail = 0;
        if (need == 0 || pool_available(def, &avail) < 0)
                return 0; /* unknown: the allocation itself will tell */
        if (need > avail)
                return dv_error_add(err, -ENOSPC, 0,
                                    "volume %s needs %" PRIu64
                                    " bytes but pool %s has only %" PRIu64 " available",
                                    vol, need, strna(def->name), avail);
        return 0;
}

static int allocate(int fd, uint64_t offset, uint64_t len) {
        if (len == 0)
                return 0;
        /* posix_fallocate falls back to writing when the file system has no
         * fallocate; it returns the error instead of setting errno. */
        int r = posix_fallocate(fd, (off_t)offset, (off_t)len);
        return -r;
}

static int create_raw(const struct pool_def *def, const struct volume_def *vol, const char *path,
                      struct dv_error *err) {
        /* libvirt's rule: an allocation that is not written means fully allocated. */
        uint64_t alloc = vol->has_allocation ? MIN(vol->allocation, vol->capacity) : vol->capacity;
        int r = check_space(def, vol->name, alloc, err);
        if (r < 0)
                return r;
        const struct dv_perms *p = &vol->target.perms;
        unsigned mode = (p->has_mode ? p->mode : DIR_VOL_DEFAULT_MODE) & 07777;
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
        if (fd < 0) {
                r = -errno;
                if (r == -EEXIST)
                        return dv_error_add(err, r, 0, "volume file %s already exists", path);
                return dv_error_add(err, r, 0, "cannot create %s: %s", path, strerror(-r));
        }
        const char *what = "set the permissions of";
        r = apply_perms_fd(fd, p, true, DIR_VOL_DEFAULT_MODE);
        if (r >= 0) {
                what = "set the size of";
                r = ftruncate(fd, (off_t)vol->capacity) < 0 ? -errno : 0;
        }
        if (r >= 0) {
                what = "allocate space for";
                r = allocate(fd, 0, alloc);
        }
        if (r >= 0) {
                what = "write";
                r = fsync(fd) < 0 ? -errno : 0;
        }
        if (r >= 0) {
                int cfd = TAKE_FD(fd);
                r = close(cfd) < 0 && errno != EINTR ? -errno : 0;
        }
        if (r < 0) {
                unlink(path);
                return dv_error_add(err, r, 0, "cannot %s %s: %s", what, path, strerror(-r));
        }
        return 0;
}

/* Never replaces an existing file: a volume that appeared meanwhile is not ours. */
static int rename_noreplace(const char *from, const char *to) {
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* File systems without RENAME_NOREPLACE: link fails when the name is taken. */
        if (link(from, to) < 0)
                return -errno;
        (void)unlink(from);
        return 0;
}

static int detect_backing_format(const char *path, char **ret, struct dv_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int r;
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "backing store %s: %s", path, strerror(-r));
        }
        const char *f = NULL;
        r = fileinfo_probe_fd(fd, &f);
        if (r < 0)
                return dv_error_add(err, r, 0, "backing store %s: %s", path, strerror(-r));
        *ret = strdup(fileinfo_qemu_format(f));
        return *ret ? 0 : dv_error_oom(err);
}

int dir_qemu_img_create_argv(const struct pool_def *def, const struct volume_def *vol,
                             const char *backing_format, char ***ret) {
        if (!streq(volume_def_format_type(vol), "qcow2"))
                return -EOPNOTSUPP;
        if (!vol->has_capacity)
                return -EINVAL;
        _cleanup_free_ char *tmp = dir_vol_temp_path(def, vol->name);
        if (!tmp)
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        int r = 0;
        if (strv_push(&argv, "qemu-img") < 0 || strv_push(&argv, "create") < 0 ||
            strv_push(&argv, "-f") < 0 || strv_push(&argv, "qcow2") < 0)
                return -ENOMEM;
        if (vol->has_backing && vol->backing.path) {
                const char *bf = vol->backing.format ? vol->backing.format : backing_format;
                /* Absolute only: qemu would read "host:..." as a protocol, and a
                 * relative path would be taken relative to the new image. */
                if (vol->backing.path[0] != '/' || !bf)
                        return -EINVAL;
                if (strv_push(&argv, "-b") < 0 || strv_push(&argv, vol->backing.path) < 0 ||
                    strv_push(&argv, "-F") < 0 || strv_push(&argv, fileinfo_qemu_format(bf)) < 0)
                        return -ENOMEM;
        }
        bool prealloc = vol->has_allocation && vol->allocation > 0;
        r = strv_push(&argv, "-o");
        if (r >= 0)
                r = strv_push(&argv, prealloc ? "compat=1.1,preallocation=metadata" : "compat=1.1");
        if (r >= 0)
                r = strv_consume(&argv, TAKE_PTR(tmp));
        if (r >= 0)
                r = strv_pushf(&argv, "%" PRIu64, vol->capacity);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

int dir_qemu_img_resize_argv(const char *path, const char *format, uint64_t capacity, char ***ret) {
        if (!path || path[0] != '/' || !format)
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "qemu-img") < 0 || strv_push(&argv, "resize") < 0 ||
            strv_push(&argv, "-f") < 0 || strv_push(&argv, fileinfo_qemu_format(format)) < 0 ||
            strv_push(&argv, path) < 0 || strv_pushf(&argv, "%" PRIu64, capacity) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int create_qcow2(const struct pool_def *def, const struct volume_def *vol, const char *path,
                        struct dv_error *err) {
        _cleanup_free_ char *backing_format = NULL;
        int r;
        if (vol->has_backing && vol->backing.path) {
                if (vol->backing.path[0] != '/')
                        return dv_error_add(err, -EINVAL, 0,
                                            "backing store path '%s' is not absolute",
                                            vol->backing.path);
                if (!vol->backing.format &&
                    (r = detect_backing_format(vol->backing.path, &backing_format, err)) < 0)
                        return r;
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = dir_qemu_img_create_argv(def, vol, backing_format, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0,
                                    "cannot build the qemu-img command for volume %s: %s",
                                    vol->name, strerror(-r));
        _cleanup_free_ char *tmp = dir_vol_temp_path(def, vol->name);
        if (!tmp)
                return dv_error_oom(err);
        /* Left over from a crash: ours, and never a volume (hidden name). */
        (void)unlink(tmp);
        struct cmd_opts opts = {.timeout_usec = DIR_QEMU_IMG_TIMEOUT_USEC};
        r = cmd_run(argv, &opts, NULL, err);
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        _cleanup_close_ int fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                (void)unlink(tmp);
                return dv_error_add(err, r, 0, "cannot open %s: %s", tmp, strerror(-r));
        }
        r = apply_perms_fd(fd, &vol->target.perms, true, DIR_VOL_DEFAULT_MODE);
        const char *what = "set the permissions of";
        if (r >= 0) {
                what = "write";
                r = fsync(fd) < 0 ? -errno : 0;
        }
        if (r < 0) {
                (void)unlink(tmp);
                return dv_error_add(err, r, 0, "cannot %s %s: %s", what, tmp, strerror(-r));
        }
        r = rename_noreplace(tmp, path);
        if (r < 0) {
                (void)unlink(tmp);
                if (r == -EEXIST)
                        return dv_error_add(err, r, 0, "volume file %s already exists", path);
                return dv_error_add(err, r, 0, "cannot rename %s to %s: %s", tmp, path,
                                    strerror(-r));
        }
        return 0;
}

int dir_vol_create(const struct pool_def *def, const struct volume_def *vol, struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        const char *why = dv_name_problem(DV_KIND_VOLUME, vol->name);
        if (why)
                return dv_error_add(err, -EINVAL, 0, "volume name '%s': %s", strna(vol->name), why);
        const char *format = volume_def_format_type(vol);
        bool raw = streq(format, "raw");
        if (!raw && !streq(format, "qcow2"))
                return dv_error_add(err, -EOPNOTSUPP, 0, "format '%s' cannot be created", format);
        if (!vol->has_capacity)
                return dv_error_add(err, -EINVAL, 0, "volume %s has no capacity", vol->name);
        _cleanup_free_ char *path = dir_vol_path(def, vol->name);
        if (!path)
                return dv_error_oom(err);
        struct stat st;
        if (lstat(path, &st) == 0)
                return dv_error_add(err, -EEXIST, 0, "volume file %s already exists", path);
        r = raw ? create_raw(def, vol, path, err) : create_qcow2(def, vol, path, err);
        if (r < 0)
                return r;
        fileinfo_forget(path);
        fsync_dir(def->target.path);
        return 0;
}

int dir_vol_resize(const struct pool_def *def, const struct volume_def *vol, uint64_t capacity,
                   struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = dir_vol_path(def, vol->name);
        if (!path)
                return dv_error_add(err, -EINVAL, 0, "volume name '%s' is not valid",
                                    strna(vol->name));
        _cleanup_close_ int fd =
                open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return dv_error_add(err, -EINVAL, 0, "%s is not a regular file", path);
        struct fileinfo fi = {0};
        r = fileinfo_get(path, &st, &fi, err);
        if (r < 0)
                return r;
        uint64_t current = fi.capacity;
        _cleanup_free_ char *format = TAKE_PTR(fi.format);
        fileinfo_done(&fi);
        if (capacity < current)
                return dv_error_add(err, -EINVAL, 0,
                                    "shrinking volume %s from %" PRIu64 " to %" PRIu64
                                    " bytes would lose data",
                                    vol->name, current, capacity);
        if (capacity == current)
                return 0;
        if (streq(format, "raw")) {
                /* A fully allocated volume stays fully allocated. */
                bool full = (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size;
                if (full && (r = check_space(def, vol->name, capacity - current, err)) < 0)
                        return r;
                if (ftruncate(fd, (off_t)capacity) < 0) {
                        r = -errno;
                        return dv_error_add(err, r, 0, "cannot grow %s: %s", path, strerror(-r));
                }
                if (full && (r = allocate(fd, current, capacity - current)) < 0) {
                        /* Back to the old size: nothing half-done is left. */
                        (void)ftruncate(fd, (off_t)current);
                        return dv_error_add(err, r, 0, "cannot allocate space for %s: %s", path,
                                            strerror(-r));
                }
                if (fsync(fd) < 0) {
                        r = -errno;
                        return dv_error_add(err, r, 0, "cannot write %s: %s", path, strerror(-r));
                }
        } else if (streq(format, "qcow2")) {
                _cleanup_strv_free_ char **argv = NULL;
                r = dir_qemu_img_resize_argv(path, format, capacity, &argv);
                if (r < 0)
                        return dv_error_add(err, r, 0,
                                            "cannot build the qemu-img command for %s: %s", path,
                                            strerror(-r));
                struct cmd_opts opts = {.timeout_usec = DIR_QEMU_IMG_TIMEOUT_USEC};
                r = cmd_run(argv, &opts, NULL, err);
                if (r < 0)
                        return r;
        } else
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "volume %s has format '%s', which cannot be resized", vol->name,
                                    format);
        fileinfo_forget(path);
        return 0;
}

int dir_vol_delete(const struct pool_def *def, const char *name, struct dv_error *err) {
        int r = check_target(def, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = dir_vol_path(def, name);
        if (!path)
                return dv_error_add(err, -EINVAL, 0, "volume name '%s' is not valid", strna(name));
        if (unlink(path) < 0) {
                if (errno == ENOENT)
                        return 0;
                r = -errno;
                return dv_error_add(err, r, 0, "cannot delete %s: %s", path, strerror(-r));
        }
        fileinfo_forget(path);
        fsync_dir(def->target.path);
        return 0;
}

const struct storage_driver storage_driver_dir = {
        .type = POOL_DIR,
        .pool_observe = dir_pool_observe,
        .pool_build = dir_pool_build,
        .pool_start = dir_pool_start,
        .pool_stop = dir_pool_stop,
        .pool_delete = dir_pool_delete,
        .pool_set_perms = dir_pool_set_perms,
        .vol_list = dir_vol_list,
        .vol_create = dir_vol_create,
        .vol_resize = dir_vol_resize,
        .vol_delete = dir_vol_delete,
        .vol_path = dir_vol_path,
};
