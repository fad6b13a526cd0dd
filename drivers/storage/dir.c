/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dir pool driver: a directory made with mkdir and removed with rmdir, whose
 * regular files are the volumes (raw made here, qcow2 through qemu-img). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
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

/* ---- paths: never through a symlink ------------------------------------------------------ */

int dir_open_nofollow(const char *path, int flags) {
        /* Any user who can write to a directory on the path could otherwise point the
         * agent (root) at another file: no component may be a symlink. */
        struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY),
                               .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
        if (fd >= 0)
                return fd;
        struct stat st;
        /* O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: say what is there. */
        if (errno == ENOTDIR && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        if (errno != ENOSYS)
                return -errno;
        /* Kernels before 5.6: the last component at least. */
        fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        return fd >= 0 ? fd : -errno;
}

const char *dir_open_problem(int r) {
        switch (r) {
        case -ELOOP:
                return "is or goes through a symbolic link, which is never followed";
        case -ENOTDIR:
                return "is not a directory";
        default: {
                static __thread char buf[96];
                snprintf(buf, sizeof(buf), "cannot be opened: %s", strerror(-r));
                return buf;
        }
        }
}

/* The pool's directory, opened without following symlinks; err names the path. */
static int open_target(const struct pool_def *def, struct dv_error *err) {
        int fd = dir_open_nofollow(def->target.path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return dv_error_add(err, fd == -ELOOP ? -EEXIST : fd, 0, "target path %s %s",
                                    def->target.path, dir_open_problem(fd));
        return fd;
}

const char *dir_file_kind(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG:
                return "a regular file";
        case S_IFLNK:
                return "a symbolic link";
        case S_IFDIR:
                return "a directory";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFCHR:
                return "a character device";
        case S_IFBLK:
                return "a block device";
        default:
                return "not a regular file";
        }
}

static bool same_file(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Removes name from dirfd only while it is still the file fd has open: the
 * directory may be writable by others, who may have put something else there. */
static void unlink_if_same(int dirfd, const char *name, int fd) {
        struct stat a, b;
        if (fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            same_file(&a, &b))
                (void)unlinkat(dirfd, name, 0);
}

/* The last component of path (trailing slashes ignored) into a new string. */
static char *last_component(const char *path) {
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
                len--;
        size_t start = len;
        while (start > 0 && path[start - 1] != '/')
                start--;
        return strndup(path + start, len - start);
}

/* mkdir -p of the directory holding path, one component at a time relative to the
 * one before, never through a symlink; returns that directory's descriptor. */
static int open_parent_creating(const char *path, mode_t mode) {
        _cleanup_free_ char *parent = path_dirname(path);
        if (!parent)
                return -ENOMEM;
        int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (char *save = NULL, *c = strtok_r(parent, "/", &save); c;
             c = strtok_r(NULL, "/", &save)) {
                int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0 && errno == ENOENT) {
                        if (mkdirat(fd, c, mode) < 0 && errno != EEXIST) {
                                int r = -errno;
                                close(fd);
                                return r;
                        }
                        nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                int r = nfd < 0 ? -errno : 0;
                close(fd);
                if (r < 0)
                        return r;
                fd = nfd;
        }
        return fd;
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
        _cleanup_close_ int fd = dir_open_nofollow(path, O_RDONLY | O_DIRECTORY);
        struct stat st;
        if (fd < 0 && fd == -ENOENT) {
                s.state = POOL_STATE_ABSENT;
                *ret = s;
                return 0;
        }
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = fd < 0 ? fd : -errno;
                s.state = POOL_STATE_BROKEN;
                if (asprintf(&s.reason, "target path %s %s", path, dir_open_problem(r)) < 0)
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
        if (fstatvfs(fd, &sv) == 0) {
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
        /* On the descriptor: a symlink put in the target's place never passes the
         * owner and mode on to what it points to. */
        _cleanup_close_ int fd = open_target(def, err);
        if (fd < 0)
                return fd;
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
        _cleanup_close_ int fd = dir_open_nofollow(path, O_RDONLY | O_DIRECTORY);
        if (fd >= 0)
                return dir_pool_set_perms(def, err); /* built already: nothing to make */
        if (fd != -ENOENT)
                return dv_error_add(err, fd == -ELOOP ? -EEXIST : fd, 0, "target path %s %s", path,
                                    dir_open_problem(fd));
        if (build == DV_BUILD_NO)
                return dv_error_add(err, -ENOENT, 0, "target %s does not exist and build='no'",
                                    path);

        _cleanup_close_ int pfd = open_parent_creating(path, 0755);
        if (pfd < 0)
                return dv_error_add(err, pfd == -ELOOP ? -EEXIST : pfd, 0,
                                    "cannot create the directories above %s: a component %s", path,
                                    dir_open_problem(pfd));
        _cleanup_free_ char *base = last_component(path);
        if (!base)
                return dv_error_oom(err);
        unsigned mode = def->target.perms.has_mode ? def->target.perms.mode : DIR_POOL_DEFAULT_MODE;
        if (mkdirat(pfd, base, mode & 07777) < 0 && errno != EEXIST) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot create %s: %s", path, strerror(-r));
        }
        fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r == -ELOOP ? -EEXIST : r, 0, "target path %s %s", path,
                                    dir_open_problem(r));
        }
        /* The mode is set explicitly: mkdir's was masked by the umask. */
        r = apply_perms_fd(fd, &def->target.perms, true, DIR_POOL_DEFAULT_MODE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot set the permissions of %s: %s", path,
                                    strerror(-r));
        (void)fsync(fd);
        (void)fsync(pfd);
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
        _cleanup_free_ char *parent = path_dirname(def->target.path);
        _cleanup_free_ char *base = last_component(def->target.path);
        if (!parent || !base)
                return dv_error_oom(err);
        _cleanup_close_ int pfd = dir_open_nofollow(parent, O_RDONLY | O_DIRECTORY);
        if (pfd == -ENOENT)
                return 0;
        if (pfd < 0)
                return dv_error_add(err, pfd == -ELOOP ? -EEXIST : pfd, 0, "%s %s", parent,
                                    dir_open_problem(pfd));
        /* rmdir only: files in it, ours or not, are never removed with the pool; and
         * a symlink in the target's place is not a directory (ENOTDIR). */
        if (unlinkat(pfd, base, AT_REMOVEDIR) < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ENOTEMPTY || errno == EEXIST)
                        return dv_error_add(err, -ENOTEMPTY, 0, "pool directory %s is not empty",
                                            def->target.path);
                r = -errno;
                return dv_error_add(err, r == -ENOTDIR ? -EEXIST : r, 0, "cannot remove %s: %s",
                                    def->target.path,
                                    r == -ENOTDIR ? "it is not a directory" : strerror(-r));
        }
        (void)fsync(pfd);
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
        int fd = open_target(def, err);
        if (fd < 0)
                return fd;
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
                /* Only regular files are volumes: a symlink (another user's, pointing
                 * anywhere), a FIFO or a device node is never adopted, measured or given
                 * to a guest. A volume declared under such a name is refused at create. */
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* gone */
                if (!S_ISREG(st.st_mode)) {
                        if (!S_ISDIR(st.st_mode))
                                log_debug("pool %s: not listing %s/%s: it is %s", strna(def->name),
                                          def->target.path, de->d_name, dir_file_kind(st.st_mode));
                        continue;
                }
                _cleanup_free_ char *path = path_join(def->target.path, de->d_name);
                if (!path) {
                        r = dv_error_oom(err);
                        break;
                }
                struct fileinfo fi = {0};
                _cleanup_dv_error_ struct dv_error ferr = DV_ERROR_INIT;
                if (fileinfo_get(dirfd(d), de->d_name, path, &st, &fi, &ferr) < 0) {
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

static int pool_available(int dirfd, uint64_t *ret) {
        struct statvfs sv;
        if (fstatvfs(dirfd, &sv) < 0)
                return -errno;
        *ret = (uint64_t)sv.f_frsize * sv.f_bavail;
        return 0;
}

static int check_space(const struct pool_def *def, int dirfd, const char *vol, uint64_t need,
                       struct dv_error *err) {
        uint64_t avail = 0;
        if (need == 0 || pool_available(dirfd, &avail) < 0)
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

/* The file a new volume is written to: created here, on a descriptor, never opened
 * by a name something else could be put under (O_EXCL, O_NOFOLLOW). */
static int create_file(int dirfd, const char *name, const char *path, unsigned mode,
                       struct dv_error *err) {
        int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                        mode & 07777);
        if (fd < 0) {
                int r = -errno;
                if (r == -EEXIST)
                        return dv_error_add(err, r, 0, "%s already exists", path);
                return dv_error_add(err, r, 0, "cannot create %s: %s", path, strerror(-r));
        }
        return fd;
}

static int create_raw(const struct pool_def *def, int dirfd, const struct volume_def *vol,
                      const char *path, struct dv_error *err) {
        /* libvirt's rule: an allocation that is not written means fully allocated. */
        uint64_t alloc = vol->has_allocation ? MIN(vol->allocation, vol->capacity) : vol->capacity;
        int r = check_space(def, dirfd, vol->name, alloc, err);
        if (r < 0)
                return r;
        const struct dv_perms *p = &vol->target.perms;
        _cleanup_close_ int fd = create_file(dirfd, vol->name, path,
                                             p->has_mode ? p->mode : DIR_VOL_DEFAULT_MODE, err);
        if (fd < 0)
                return fd;
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
        if (r < 0) {
                unlink_if_same(dirfd, vol->name, fd);
                return dv_error_add(err, r, 0, "cannot %s %s: %s", what, path, strerror(-r));
        }
        int cfd = TAKE_FD(fd);
        if (close(cfd) < 0 && errno != EINTR) {
                r = -errno;
                (void)unlinkat(dirfd, vol->name, 0);
                return dv_error_add(err, r, 0, "cannot write %s: %s", path, strerror(-r));
        }
        return 0;
}

/* Never replaces an existing file: a volume that appeared meanwhile is not ours. */
static int rename_noreplace(int dirfd, const char *from, const char *to) {
        if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* File systems without RENAME_NOREPLACE: link fails when the name is taken. */
        if (linkat(dirfd, from, dirfd, to, 0) < 0)
                return -errno;
        (void)unlinkat(dirfd, from, 0);
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

int dir_qemu_img_create_argv(const struct volume_def *vol, const char *file,
                             const char *backing_format, char ***ret) {
        if (!streq(volume_def_format_type(vol), "qcow2"))
                return -EOPNOTSUPP;
        if (!vol->has_capacity || !file || file[0] != '/')
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
                r = strv_push(&argv, file);
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

static int create_qcow2(const struct pool_def *def, int dirfd, const struct volume_def *vol,
                        const char *path, struct dv_error *err) {
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
        _cleanup_free_ char *tmp = dir_vol_temp_path(def, vol->name);
        _cleanup_free_ char *tmpname = tmp ? last_component(tmp) : NULL;
        if (!tmpname)
                return dv_error_oom(err);
        /* Left over from a crash of an agent that named its temporary files: never a
         * volume (hidden name). unlinkat never follows a symlink. */
        (void)unlinkat(dirfd, tmpname, 0);
        /* The image is made in a file without a name (O_TMPFILE), which nobody else can
         * reach, and linked in under the volume's name only when complete. File systems
         * without O_TMPFILE (NFS, CIFS) get a hidden name created O_EXCL|O_NOFOLLOW:
         * if something is put there first, nothing is written. */
        char fdpath[FILEINFO_FD_PATH_MAX];
        _cleanup_close_ int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        bool named = fd < 0;
        if (named && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot create a file in %s: %s", def->target.path,
                                    strerror(-r));
        }
        if (named) {
                fd = openat(dirfd, tmpname,
                            O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd < 0) {
                        r = -errno;
                        /* Something planted there since the unlink: try again later. */
                        return dv_error_add(err, r == -EEXIST ? -EAGAIN : r, 0,
                                            "cannot create %s: %s", tmp, strerror(-r));
                }
        }
        /* qemu-img writes into the file we created, through our descriptor: no name
         * of it is ever looked up again, so nothing put in its place meanwhile (a
         * symlink to a file of root's) can be written to. */
        _cleanup_strv_free_ char **argv = NULL;
        r = dir_qemu_img_create_argv(vol, fileinfo_fd_path(fd, fdpath), backing_format, &argv);
        if (r < 0)
                r = dv_error_add(err, r, 0, "cannot build the qemu-img command for volume %s: %s",
                                 vol->name, strerror(-r));
        struct cmd_opts opts = {.timeout_usec = DIR_QEMU_IMG_TIMEOUT_USEC};
        if (r >= 0)
                r = cmd_run(argv, &opts, NULL, err);
        const char *what = "set the permissions of";
        if (r >= 0 &&
            (r = apply_perms_fd(fd, &vol->target.perms, true, DIR_VOL_DEFAULT_MODE)) >= 0) {
                what = "write";
                r = fsync(fd) < 0 ? -errno : 0;
        }
        if (r < 0) {
                if (named)
                        unlink_if_same(dirfd, tmpname, fd);
                return dv_error_failed(err) ? r
                                            : dv_error_add(err, r, 0, "cannot %s %s: %s", what,
                                                           path, strerror(-r));
        }
        if (!named) {
                /* linkat never replaces: a file that appeared under the name is not ours. */
                if (linkat(AT_FDCWD, fdpath, dirfd, vol->name, AT_SYMLINK_FOLLOW) == 0)
                        return 0;
                r = -errno;
                if (r == -EEXIST)
                        return dv_error_add(err, r, 0, "volume file %s already exists", path);
                return dv_error_add(err, r, 0, "cannot link %s into place: %s", path, strerror(-r));
        }
        r = rename_noreplace(dirfd, tmpname, vol->name);
        if (r < 0) {
                unlink_if_same(dirfd, tmpname, fd);
                if (r == -EEXIST)
                        return dv_error_add(err, r, 0, "volume file %s already exists", path);
                return dv_error_add(err, r, 0, "cannot rename %s to %s: %s", tmp, path,
                                    strerror(-r));
        }
        /* The temporary name is in a directory others may write to: what was renamed
         * must be the file we made, or the volume is not ours. */
        struct stat a, b;
        if (fstat(fd, &a) < 0 || fstatat(dirfd, vol->name, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
            !same_file(&a, &b))
                return dv_error_add(err, -ESTALE, 0,
                                    "%s was replaced by someone else while volume %s was made; "
                                    "%s is not the agent's",
                                    tmp, vol->name, path);
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
        _cleanup_close_ int dirfd = open_target(def, err);
        if (dirfd < 0)
                return dirfd;
        struct stat st;
        if (fstatat(dirfd, vol->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISREG(st.st_mode))
                        return dv_error_add(err, -EEXIST, 0,
                                            "%s is %s, not a volume file; not using it", path,
                                            dir_file_kind(st.st_mode));
                return dv_error_add(err, -EEXIST, 0, "volume file %s already exists", path);
        }
        r = raw ? create_raw(def, dirfd, vol, path, err) : create_qcow2(def, dirfd, vol, path, err);
        if (r < 0)
                return r;
        fileinfo_forget(path);
        (void)fsync(dirfd);
        return 0;
}

/* The volume file name in the pool, opened without following a symlink and only
 * when it is a regular file; st is its fstat. err names what is there instead. */
static int open_volume(int dirfd, const char *name, const char *path, int flags, struct stat *st,
                       struct dv_error *err) {
        _cleanup_close_ int fd =
                openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == ELOOP)
                return dv_error_add(err, -EEXIST, 0, "%s is a symbolic link, not a volume file",
                                    path);
        if (fd < 0 || fstat(fd, st) < 0) {
                int r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        if (!S_ISREG(st->st_mode))
                return dv_error_add(err, -EEXIST, 0, "%s is %s, not a volume file", path,
                                    dir_file_kind(st->st_mode));
        return TAKE_FD(fd);
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
        _cleanup_close_ int dirfd = open_target(def, err);
        if (dirfd < 0)
                return dirfd;
        struct stat st;
        _cleanup_close_ int fd = open_volume(dirfd, vol->name, path, O_RDWR, &st, err);
        if (fd < 0)
                return fd;
        struct fileinfo fi = {0};
        r = fileinfo_get(dirfd, vol->name, path, &st, &fi, err);
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
                if (full && (r = check_space(def, dirfd, vol->name, capacity - current, err)) < 0)
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
                /* Through our descriptor: the name may be someone else's symlink by now. */
                _cleanup_strv_free_ char **argv = NULL;
                char fdpath[FILEINFO_FD_PATH_MAX];
                r = dir_qemu_img_resize_argv(fileinfo_fd_path(fd, fdpath), format, capacity, &argv);
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
        _cleanup_close_ int dirfd = open_target(def, err);
        if (dirfd < 0)
                return dirfd;
        /* Only a volume file is deleted: what stands in its name otherwise was not made
         * by the agent (unlinkat would remove a symlink itself, never its target). */
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                r = -errno;
                return dv_error_add(err, r, 0, "cannot delete %s: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return dv_error_add(err, -EEXIST, 0, "%s is %s, not a volume file; not deleting it",
                                    path, dir_file_kind(st.st_mode));
        if (unlinkat(dirfd, name, 0) < 0) {
                if (errno == ENOENT)
                        return 0;
                r = -errno;
                return dv_error_add(err, r, 0, "cannot delete %s: %s", path, strerror(-r));
        }
        fileinfo_forget(path);
        (void)fsync(dirfd);
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
