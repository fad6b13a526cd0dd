/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "drivers/domain/qemu-jail.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"

/* Where Debian and other distributions put what QEMU loads by name: firmware, option
 * ROMs, keymaps (searched below QEMU's data directory, then these). Only those that exist
 * are bound. */
static const char *const firmware_dirs[] = {
        "/usr/share/qemu",    "/usr/share/seabios",   "/usr/lib/ipxe/qemu",
        "/usr/share/OVMF",    "/usr/share/ovmf",      "/usr/share/qemu-efi-aarch64",
        "/usr/share/AAVMF",   "/usr/share/edk2",      "/usr/share/sgabios",
        "/usr/share/vgabios", "/usr/share/misc/qemu",
};

/* ---- the dynamic loader's view -------------------------------------------------------- */

/* PT_INTERP of an ELF file: the dynamic loader that resolves its libraries. -ENOEXEC for
 * anything else (a script, a static binary, a shared object with no interpreter). */
static int elf_interp(const char *path, char **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
            memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
                return -ENOEXEC;
        for (unsigned k = 0; k < eh.e_phnum; k++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + k * sizeof(ph))) !=
                    (ssize_t)sizeof(ph))
                        return -ENOEXEC;
                if (ph.p_type != PT_INTERP)
                        continue;
                if (ph.p_filesz < 2 || ph.p_filesz > PATH_MAX)
                        return -ENOEXEC;
                char *s = calloc(1, ph.p_filesz + 1);
                if (!s)
                        return -ENOMEM;
                if (pread(fd, s, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz ||
                    s[0] != '/') {
                        free(s);
                        return -ENOEXEC;
                }
                s[strnlen(s, ph.p_filesz)] = 0;
                *ret = s;
                return 0;
        }
        return -ENOEXEC;
}

/* The absolute paths in `LOADER --list` output: "\tlibz.so.1 => /lib/.../libz.so.1
 * (0x...)" and "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; "not found" lines are
 * skipped (the object cannot be loaded anyway; for QEMU's binary the start fails with the
 * loader's own message). */
static int parse_list(const char *out, char ***libs) {
        for (const char *line = out; line && *line;) {
                const char *end = strchrnul(line, '\n');
                const char *p = memmem(line, (size_t)(end - line), "=> ", 3);
                p = p ? p + 3 : line;
                while (p < end && (*p == ' ' || *p == '\t'))
                        p++;
                if (p < end && *p == '/') {
                        const char *q = p;
                        while (q < end && *q != ' ')
                                q++;
                        _cleanup_free_ char *lib = strndup(p, (size_t)(q - p));
                        if (!lib)
                                return -ENOMEM;
                        if (!strv_contains(*libs, lib) && strv_consume(libs, TAKE_PTR(lib)) < 0)
                                return -ENOMEM;
                }
                line = *end ? end + 1 : NULL;
        }
        return 0;
}

struct cached {
        char *path;
        dev_t dev;
        ino_t ino;
        struct timespec mtime;
        char **libs;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache;
static size_t n_cache;

void qemu_jail_cache_clear(void) {
        pthread_mutex_lock(&cache_lock);
        for (size_t k = 0; k < n_cache; k++) {
                free(cache[k].path);
                strv_free(cache[k].libs);
        }
        free(cache);
        cache = NULL;
        n_cache = 0;
        pthread_mutex_unlock(&cache_lock);
}

static bool same_file(const struct cached *c, const char *path, const struct stat *st) {
        return streq(c->path, path) && c->dev == st->st_dev && c->ino == st->st_ino &&
               c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* interp NULL: the file's own. */
static int libraries_via(const char *path, const char *interp, char ***ret, struct dv_error *err) {
        struct stat st;
        if (stat(path, &st) < 0)
                return dv_error_add(err, -errno, 0, "cannot put %s in QEMU's jail: %m", path);
        pthread_mutex_lock(&cache_lock);
        for (size_t k = 0; k < n_cache; k++)
                if (same_file(&cache[k], path, &st)) {
                        char **copy = strv_copy(cache[k].libs);
                        pthread_mutex_unlock(&cache_lock);
                        if (!copy)
                                return dv_error_oom(err);
                        *ret = copy;
                        return 0;
                }
        pthread_mutex_unlock(&cache_lock);

        _cleanup_free_ char *own = NULL;
        if (!interp) {
                int r = elf_interp(path, &own);
                if (r < 0)
                        return dv_error_add(err, r, 0,
                                            "cannot put %s in QEMU's jail: no dynamic loader "
                                            "found in it (%s)",
                                            path, strerror(-r));
                interp = own;
        }
        /* The loader lists and exits without running the program; a shared object with a
         * missing library exits non-zero with what it found. */
        struct cmd_opts o = {.allow_nonzero = true};
        struct cmd_result res = {0};
        int r = cmd_run((char *const[]){(char *)interp, "--list", (char *)path, NULL}, &o, &res,
                        err);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **libs = NULL;
        r = strv_push(&libs, interp);
        if (r >= 0)
                r = parse_list(res.out ? res.out : "", &libs);
        int status = res.exit_status;
        cmd_result_done(&res);
        if (r < 0)
                return dv_error_oom(err);
        if (status != 0)
                log_debug("%s --list %s: exit status %d (libraries it lacks are left out)", interp,
                          path, status);
        pthread_mutex_lock(&cache_lock);
        struct cached *c = reallocarray(cache, n_cache + 1, sizeof(*c));
        char *cpath = strdup(path);
        char **copy = strv_copy(libs);
        if (c && cpath && copy) {
                cache = c;
                cache[n_cache++] = (struct cached){.path = cpath,
                                                   .dev = st.st_dev,
                                                   .ino = st.st_ino,
                                                   .mtime = st.st_mtim,
                                                   .libs = copy};
        } else {
                if (c)
                        cache = c;
                free(cpath);
                strv_free(copy);
        }
        pthread_mutex_unlock(&cache_lock);
        *ret = TAKE_PTR(libs);
        return 0;
}

int qemu_jail_libraries(const char *path, char ***ret, struct dv_error *err) {
        return libraries_via(path, NULL, ret, err);
}

/* ---- building the jail ------------------------------------------------------------------ */

static int bind(struct cmd_jail *j, const char *path, bool writable, struct dv_error *err) {
        int r = cmd_jail_bind(j, path, writable);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot put %s in QEMU's jail: %s", path,
                                    strerror(-r));
        return 0;
}

/* The directories of the libraries, bound whole: a few bind mounts rather than one per
 * library (QEMU and its modules need about 150; each costs two mount(2) calls in the
 * child, several milliseconds per start in all). The libraries' directories hold only
 * what every local user can read anyway; what the jail keeps out is the rest of the
 * host: /etc, /home, /root, /run, /proc, /sys, other guests' images, the device nodes. */
static int bind_lib_dirs(struct cmd_jail *j, char *const *libs, struct dv_error *err) {
        for (size_t k = 0; libs && libs[k]; k++) {
                _cleanup_free_ char *dir = path_dirname(libs[k]);
                if (!dir)
                        return dv_error_oom(err);
                int r = bind(j, dir, false, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A firmware directory and, for each symlink in it, the file it names (Debian's
 * /usr/share/qemu links some ROMs to other packages' directories). */
static int bind_firmware_dir(struct cmd_jail *j, const char *dir, struct dv_error *err) {
        int r = bind(j, dir, false, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *pattern = path_join(dir, "*");
        if (!pattern)
                return dv_error_oom(err);
        glob_t g = {0};
        if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0) {
                globfree(&g);
                return 0;
        }
        for (size_t k = 0; r >= 0 && k < g.gl_pathc; k++) {
                struct stat st;
                if (lstat(g.gl_pathv[k], &st) < 0 || !S_ISLNK(st.st_mode))
                        continue;
                _cleanup_free_ char *target = realpath(g.gl_pathv[k], NULL);
                size_t n = strlen(dir);
                if (target && !(strncmp(target, dir, n) == 0 && target[n] == '/'))
                        r = bind(j, target, false, err);
        }
        globfree(&g);
        return r;
}

/* QEMU's module directories: PREFIX/lib/<triplet>/qemu (Debian), PREFIX/lib64/qemu and
 * PREFIX/lib/qemu, PREFIX being the binary's directory's parent. */
static int module_dirs(const char *binary, char ***ret) {
        _cleanup_free_ char *bindir = path_dirname(binary);
        _cleanup_free_ char *prefix = bindir ? path_dirname(bindir) : NULL;
        _cleanup_free_ char *pattern = prefix ? strdupf("%s/lib/*/qemu", prefix) : NULL;
        if (!pattern)
                return -ENOMEM;
        _cleanup_strv_free_ char **dirs = NULL;
        glob_t g = {0};
        if (glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0)
                for (size_t k = 0; k < g.gl_pathc; k++)
                        if (strv_push(&dirs, g.gl_pathv[k]) < 0) {
                                globfree(&g);
                                return -ENOMEM;
                        }
        globfree(&g);
        const char *const others[] = {"lib64/qemu", "lib/qemu"};
        for (size_t k = 0; k < ELEMENTSOF(others); k++) {
                _cleanup_free_ char *d = path_join(prefix, others[k]);
                struct stat st;
                if (!d)
                        return -ENOMEM;
                if (stat(d, &st) == 0 && S_ISDIR(st.st_mode) && strv_push(&dirs, d) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(dirs);
        return 0;
}

static int bind_modules(struct cmd_jail *j, const char *binary, const char *interp,
                        struct dv_error *err) {
        _cleanup_strv_free_ char **dirs = NULL;
        if (module_dirs(binary, &dirs) < 0)
                return dv_error_oom(err);
        for (size_t n = 0; dirs && dirs[n]; n++) {
                const char *d = dirs[n];
                int r = bind(j, d, false, err);
                if (r < 0)
                        return r;
                _cleanup_free_ char *pattern = path_join(d, "*.so");
                if (!pattern)
                        return dv_error_oom(err);
                glob_t g = {0};
                if (glob(pattern, 0, NULL, &g) != 0) {
                        globfree(&g);
                        continue;
                }
                for (size_t k = 0; r >= 0 && k < g.gl_pathc; k++) {
                        _cleanup_strv_free_ char **libs = NULL;
                        r = libraries_via(g.gl_pathv[k], interp, &libs, err);
                        if (r >= 0)
                                r = bind_lib_dirs(j, libs, err);
                }
                globfree(&g);
                if (r < 0)
                        return r;
        }
        return 0;
}

int qemu_jail_build(const struct domain_def *def, const struct qemu_jail_opts *opts,
                    struct cmd_jail *ret, struct dv_error *err) {
        _cleanup_(cmd_jail_done) struct cmd_jail j = {0};
        j.mountpoint = strdup(opts->mountpoint);
        if (!j.mountpoint)
                return dv_error_oom(err);
        static const char *const devices[] = {QEMU_JAIL_DEVICES};
        int r = 0;
        for (size_t k = 0; r >= 0 && k < ELEMENTSOF(devices); k++)
                r = bind(&j, devices[k], false, err);
        if (r >= 0 && opts->kvm)
                r = bind(&j, "/dev/kvm", false, err);
        /* Read-only binds of device nodes still allow writing to them (the node's own
         * permission and the device cgroup decide). */
        for (size_t k = 0; k < j.n; k++)
                if (j.entries[k].device)
                        j.entries[k].writable = true;
        if (r < 0)
                return r;

        _cleanup_strv_free_ char **libs = NULL;
        r = qemu_jail_libraries(opts->binary, &libs, err);
        if (r < 0)
                return r;
        r = bind(&j, opts->binary, false, err);
        if (r >= 0)
                r = bind_lib_dirs(&j, libs, err);
        /* The loader's cache, so that it finds the same files it listed. */
        if (r >= 0 && access("/etc/ld.so.cache", F_OK) == 0)
                r = bind(&j, "/etc/ld.so.cache", false, err);
        if (r >= 0)
                r = bind_modules(&j, opts->binary, libs[0], err);
        for (size_t k = 0; r >= 0 && k < ELEMENTSOF(firmware_dirs); k++) {
                struct stat st;
                if (stat(firmware_dirs[k], &st) == 0 && S_ISDIR(st.st_mode))
                        r = bind_firmware_dir(&j, firmware_dirs[k], err);
        }
        if (r < 0)
                return r;

        const struct domain_os *os = &def->os;
        const char *files[] = {
                os->kernel,
                os->initrd,
                os->has_loader && os->loader.type != DOMAIN_LOADER_PFLASH ? os->loader.path : NULL,
        };
        for (size_t k = 0; k < ELEMENTSOF(files); k++)
                if (files[k] && (r = bind(&j, files[k], false, err)) < 0)
                        return r;
        for (size_t k = 0; opts->writable && opts->writable[k]; k++)
                if ((r = bind(&j, opts->writable[k], true, err)) < 0)
                        return r;
        *ret = j;
        j = (struct cmd_jail){0};
        return 0;
}

/* ---- files QEMU opens itself ------------------------------------------------------------ */

/* Whether uid/gid (no supplementary groups) may use st as `want` (S_IROTH or S_IXOTH),
 * by the mode alone as the kernel checks it: the owner's bits for the owner, the group's
 * for the group, the others' for the rest. An ACL may say more: then *unknown. */
static bool mode_allows(const char *path, const struct stat *st, uint32_t uid, uint32_t gid,
                        mode_t want, bool *unknown) {
        if (getxattr(path, "system.posix_acl_access", NULL, 0) >= 0) {
                *unknown = true;
                return true;
        }
        if (st->st_uid == uid)
                return st->st_mode & (want << 6);
        if (st->st_gid == gid)
                return st->st_mode & (want << 3);
        return st->st_mode & want;
}

/* path and every directory above it, for uid/gid: "" when it may be read, else the first
 * component that stops it (caller frees). */
static int first_denied(const char *path, uint32_t uid, uint32_t gid, char **ret) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        for (char *slash = strchr(copy + 1, '/');; slash = strchr(slash + 1, '/')) {
                if (slash)
                        *slash = 0;
                struct stat st;
                if (stat(copy, &st) < 0)
                        return -errno;
                bool unknown = false;
                bool ok = mode_allows(copy, &st, uid, gid, slash ? S_IXOTH : S_IROTH, &unknown);
                if (!ok) {
                        *ret = strdupf("%s (mode %04o, owner %u:%u)", copy,
                                       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                                       (unsigned)st.st_gid);
                        return *ret ? 0 : -ENOMEM;
                }
                if (!slash)
                        break;
                *slash = '/';
        }
        *ret = strdup("");
        return *ret ? 0 : -ENOMEM;
}

int qemu_jail_check_readable(const struct domain_def *def, uint32_t uid, uint32_t gid,
                             struct dv_error *err) {
        const struct domain_os *os = &def->os;
        const struct {
                const char *path, *what;
        } files[] = {
                {os->kernel, "<kernel>"},
                {os->initrd, "<initrd>"},
                {os->has_loader && os->loader.type != DOMAIN_LOADER_PFLASH ? os->loader.path : NULL,
                 "<loader>"},
        };
        for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                if (!files[k].path)
                        continue;
                _cleanup_free_ char *denied = NULL;
                int r = first_denied(files[k].path, uid, gid, &denied);
                if (r == -ENOMEM)
                        return dv_error_oom(err);
                if (r < 0)
                        return dv_error_add(err, r, os->line, "%s %s of domain %s: %s",
                                            files[k].what, files[k].path, def->name, strerror(-r));
                if (*denied)
                        return dv_error_add(
                                err, -EBUSY, os->line,
                                "%s %s of domain %s cannot be read by its QEMU (uid %u): %s "
                                "keeps it out; QEMU opens this file itself: make it readable "
                                "by uid %u or by everyone; QEMU not started",
                                files[k].what, files[k].path, def->name, (unsigned)uid, denied,
                                (unsigned)uid);
        }
        return 0;
}
