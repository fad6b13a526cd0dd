/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Incremental loader of desired_dir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/domain.h"
#include "model/domain.h"
#include "model/pool.h"
#include "model/volume.h"
#include "model/xml.h"
#include "reconcile/desired.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/strv.h"

struct desired_set {
        char *root;
        bool check_trust;
        char **locations;
        struct hashmap *files; /* path -> struct desired_file */
        uint64_t generation;
        struct dv_error problems; /* rebuilt from dir_problems after each scan */
        struct hashmap *
                dir_problems; /* directory -> message: kept until that directory is scanned again */
};

static void dir_problem_set(struct desired_set *s, const char *dir, const char *msg) {
        char *m = strdup(msg), *old = NULL;
        if (!m || hashmap_put(s->dir_problems, dir, m, (void **)&old) < 0)
                free(m);
        free(old);
}

bool desired_name_is_candidate(const char *name) {
        static const char *const ignored_suffixes[] = {
                "~", ".swp", ".tmp", ".bak", ".orig", ".rej", ".rpmnew", ".rpmsave",
        };
        if (name[0] == '.' || !str_ends_with(name, ".xml") || strlen(name) == 4)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(ignored_suffixes); i++)
                if (str_ends_with(name, ignored_suffixes[i]))
                        return false;
        /* dpkg leaves NAME.dpkg-new, .dpkg-old, .dpkg-dist, .dpkg-tmp... also before .xml */
        if (strstr(name, ".dpkg-"))
                return false;
        return true;
}

int desired_check_trust(const char *path, const struct stat *st, struct dv_error *err) {
        if (st->st_uid != 0)
                return dv_error_add(err, -EPERM, 0,
                                    "refused: %s is owned by uid %u, not root (strict_permissions)",
                                    path, (unsigned)st->st_uid);
        if (st->st_mode & (S_IWGRP | S_IWOTH))
                return dv_error_add(err, -EPERM, 0,
                                    "refused: %s is writable by %s (mode %04o; strict_permissions)",
                                    path, (st->st_mode & S_IWOTH) ? "others" : "its group",
                                    (unsigned)(st->st_mode & 07777));
        return 0;
}

int desired_read_file(const char *path, bool check_trust, char **ret_data, size_t *ret_len,
                      struct stat *ret_st, struct dv_error *err) {
        /* The path is resolved once, by descriptors; the checks are made on what is read. */
        _cleanup_(chase_done) struct chase c = CHASE_INIT;
        int r = path_chase(path, check_trust ? CHASE_TRUSTED : 0, &c);
        if (r == -EPERM && c.refused)
                return dv_error_add(err, r, 0,
                                    "refused: %s is reached through %s (strict_permissions)", path,
                                    c.refused);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        struct stat st;
        if (fstat(c.fd, &st) < 0)
                return dv_error_add(err, -errno, 0, "cannot read: %s", strerror(errno));
        if (!S_ISREG(st.st_mode))
                return dv_error_add(err, -EINVAL, 0, "not a regular file");
        /* O_NONBLOCK: what became a FIFO since must not block the loop. */
        _cleanup_close_ int fd = fd_reopen(c.fd, O_RDONLY | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return dv_error_add(err, fd, 0, "cannot read: %s", strerror(-fd));
        if (fstat(fd, &st) < 0)
                return dv_error_add(err, -errno, 0, "cannot read: %s", strerror(errno));
        if (check_trust && desired_check_trust(path, &st, err) < 0)
                return -EPERM;
        r = read_full_fd(fd, DV_XML_MAX_SIZE, ret_data, ret_len);
        if (r == -EFBIG)
                return dv_error_add(err, r, 0, "file is larger than %d bytes", DV_XML_MAX_SIZE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        if (ret_st)
                *ret_st = st;
        return 0;
}

int desired_check_driver(const struct dv_object *o, struct dv_error *err) {
        if (o->kind != DV_KIND_DOMAIN)
                return 0;
        const struct domain_driver *drv = domain_driver_get(o->def.domain->type);
        return drv && drv->check ? drv->check(o->def.domain, err) : 0;
}

/* One path a pool, a volume or a guest is given: allowed when the path as written and
 * the path it resolves to (every symlink followed; a missing tail as written) both match
 * storage_locations, so that a symlinked component cannot take it elsewhere. */
static int check_location(char *const *locations, const char *what, const char *path, int line,
                          struct dv_error *err) {
        if (!path || !locations || !locations[0])
                return 0;
        if (!path_location_allowed(locations, path))
                return dv_error_add(err, -EPERM, line, "%s %s is outside storage_locations", what,
                                    path);
        _cleanup_(chase_done) struct chase c = CHASE_INIT;
        int r = path_chase(path, CHASE_NONEXISTENT, &c);
        if (r < 0)
                return dv_error_add(err, r, line,
                                    "%s %s: cannot resolve it to check storage_locations: %s", what,
                                    path, strerror(-r));
        if (!path_location_allowed(locations, c.path))
                return dv_error_add(err, -EPERM, line,
                                    "%s %s resolves to %s, outside storage_locations", what, path,
                                    c.path);
        return 0;
}

static int check_domain_locations(const struct domain_def *d, char *const *locations,
                                  struct dv_error *err) {
        int r = 0;
#define CHECK(what, path, line)                                           \
        do {                                                              \
                if (check_location(locations, what, path, line, err) < 0) \
                        r = -EPERM;                                       \
        } while (0)
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct domain_disk *k = &d->disks[i];
                int line = k->source_line ? k->source_line : k->line;
                if (domain_disk_type(k) == DOMAIN_DISK_FILE)
                        CHECK("disk file", k->source.file, line);
                else if (domain_disk_type(k) == DOMAIN_DISK_BLOCK)
                        CHECK("block disk", k->source.dev, line);
        }
        for (size_t i = 0; i < d->n_filesystems; i++) {
                const struct domain_fs *fs = &d->filesystems[i];
                /* A template's source is a name, not a path. */
                if (domain_fs_type(fs) != DOMAIN_FS_TEMPLATE)
                        CHECK("filesystem source", fs->source,
                              fs->source_line ? fs->source_line : fs->line);
        }
        if (d->has_os) {
                const struct domain_os *os = &d->os;
                CHECK("kernel", os->kernel, os->line);
                CHECK("initrd", os->initrd, os->line);
                if (os->has_loader)
                        CHECK("loader", os->loader.path, os->line);
                if (os->has_nvram) {
                        CHECK("NVRAM", os->nvram.path, os->line);
                        CHECK("NVRAM template", os->nvram.template_path, os->line);
                }
        }
        for (size_t i = 0; i < d->n_serials; i++)
                if (domain_chr_type(&d->serials[i]) == DOMAIN_CHR_FILE)
                        CHECK("serial file", d->serials[i].source_path, d->serials[i].line);
        for (size_t i = 0; i < d->n_consoles; i++)
                if (domain_chr_type(&d->consoles[i]) == DOMAIN_CHR_FILE)
                        CHECK("console file", d->consoles[i].source_path, d->consoles[i].line);
#undef CHECK
        return r;
}

int desired_check_locations(const struct dv_object *o, char *const *locations,
                            struct dv_error *err) {
        if (!locations || !locations[0])
                return 0;
        if (o->kind == DV_KIND_POOL) {
                const struct pool_def *p = o->def.pool;
                if (pool_type_info(p->type)->file_backed)
                        return check_location(locations, "pool target", p->target.path, p->line,
                                              err);
        } else if (o->kind == DV_KIND_VOLUME) {
                const struct volume_def *v = o->def.volume;
                int r = check_location(locations, "volume path", v->target.path, v->line, err);
                if (v->has_backing &&
                    check_location(locations, "backing store", v->backing.path, v->line, err) < 0)
                        r = -EPERM;
                return r;
        } else if (o->kind == DV_KIND_DOMAIN)
                return check_domain_locations(o->def.domain, locations, err);
        return 0;
}

int desired_set_new(const char *root, bool check_trust, char *const *locations,
                    struct desired_set **ret) {
        struct desired_set *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->root = strdup(root);
        s->files = hashmap_new();
        s->dir_problems = hashmap_new();
        s->check_trust = check_trust;
        if (locations)
                s->locations = strv_copy(locations);
        if (!s->root || !s->files || !s->dir_problems || (locations && !s->locations)) {
                desired_set_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static void desired_file_free(void *p) {
        struct desired_file *f = p;
        if (!f)
                return;
        free(f->path);
        dv_object_free(f->obj);
        dv_error_clear(&f->err);
        free(f->last_id);
        free(f);
}

void desired_set_free(struct desired_set *s) {
        if (!s)
                return;
        hashmap_free(s->files, desired_file_free);
        hashmap_free(s->dir_problems, free);
        strv_free(s->locations);
        dv_error_clear(&s->problems);
        free(s->root);
        free(s);
}

static bool strv_same(char *const *a, char *const *b) {
        size_t na = strv_length(a), nb = strv_length(b);
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

int desired_set_set_locations(struct desired_set *s, char *const *locations) {
        if (strv_same(s->locations, locations))
                return 0; /* a reload that did not touch them reads nothing again */
        char **l = NULL;
        if (locations && !(l = strv_copy(locations)))
                return -ENOMEM;
        strv_free(s->locations);
        s->locations = l;
        void *v;
        for (size_t i = 0; hashmap_iter(s->files, &i, NULL, &v);) {
                struct desired_file *f = v;
                f->ino = 0; /* no inode is 0: the next scan reads it again */
        }
        return 0;
}

static bool same_stat(const struct desired_file *f, const struct stat *st) {
        return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
               f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
               f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* (Re)reads one file whose stat changed. */
static void load_file(struct desired_set *s, struct desired_file *f, const struct stat *st) {
        dv_object_free(f->obj);
        f->obj = NULL;
        dv_error_clear(&f->err);
        f->dev = st->st_dev;
        f->ino = st->st_ino;
        f->size = st->st_size;
        f->mtime = st->st_mtim;
        f->ctime = st->st_ctim;
        f->generation = s->generation;

        dv_error_set_file(&f->err, f->path);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        struct stat st2;
        if (desired_read_file(f->path, s->check_trust, &data, &len, &st2, &f->err) < 0)
                return;
        /* Record what was actually read, so a write racing with us shows up as a change. */
        f->size = st2.st_size;
        f->mtime = st2.st_mtim;
        f->ctime = st2.st_ctim;
        struct dv_object *o = NULL;
        if (dv_object_parse(data, len, f->path, &o, &f->err) < 0)
                return;
        if (desired_check_locations(o, s->locations, &f->err) < 0 ||
            desired_check_driver(o, &f->err) < 0) {
                dv_object_free(o);
                return;
        }
        f->obj = o;
        free(f->last_id);
        f->last_id = dv_object_id(o);
}

static int scan_dir(struct desired_set *s, const char *dir, int depth);
static bool path_is_under(const char *path, const char *dir);

/* A directory that cannot be read or is refused keeps the files known below it as
 * they were: a mistake with a directory never removes the objects of its files. */
static void keep_files_under(struct desired_set *s, const char *dir) {
        const char *key;
        void *v;
        for (size_t i = 0; hashmap_iter(s->files, &i, &key, &v);) {
                struct desired_file *f = v;
                if (path_is_under(f->path, dir))
                        f->seen = true;
        }
}

static void scan_entry(struct desired_set *s, const char *dir, const char *name, int depth) {
        _cleanup_free_ char *path = path_join(dir, name);
        if (!path)
                return;
        struct stat st;
        if (stat(path, &st) < 0)
                return; /* gone, or a dangling symlink: not a desired file */
        if (S_ISDIR(st.st_mode)) {
                struct stat lst;
                /* Subdirectories are followed only when real (not symlinks) and not hidden. */
                if (name[0] == '.' || depth >= DESIRED_MAX_DEPTH || lstat(path, &lst) < 0 ||
                    !S_ISDIR(lst.st_mode))
                        return;
                int r = scan_dir(s, path, depth + 1);
                if (r < 0 && r != -ENOENT)
                        keep_files_under(s, path);
                return;
        }
        if (!S_ISREG(st.st_mode) || !desired_name_is_candidate(name))
                return;
        struct desired_file *f = hashmap_get(s->files, path);
        if (!f) {
                f = calloc(1, sizeof(*f));
                if (!f || !(f->path = strdup(path)) || hashmap_put(s->files, path, f, NULL) < 0) {
                        desired_file_free(f);
                        return;
                }
                load_file(s, f, &st);
        } else if (!same_stat(f, &st))
                load_file(s, f, &st);
        f->seen = true;
}

static int scan_dir(struct desired_set *s, const char *dir, int depth) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (s->check_trust) {
                struct stat st;
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                if (fstat(fd, &st) < 0 || desired_check_trust(dir, &st, &e) < 0) {
                        /* The files below stay unseen: refused like their directory. */
                        dir_problem_set(s, dir, strempty(dv_error_message(&e)));
                        close(fd);
                        return -EPERM;
                }
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (de->d_type == DT_REG || de->d_type == DT_LNK || de->d_type == DT_DIR ||
                    de->d_type == DT_UNKNOWN) {
                        if (de->d_type == DT_REG && !desired_name_is_candidate(de->d_name))
                                continue;
                        scan_entry(s, dir, de->d_name, depth);
                }
        }
        closedir(d);
        return 0;
}

static bool path_is_under(const char *path, const char *dir) {
        size_t l = strlen(dir);
        return strncmp(path, dir, l) == 0 && (path[l] == '/' || (l > 0 && dir[l - 1] == '/'));
}

static int depth_of(const struct desired_set *s, const char *dir) {
        if (streq(dir, s->root))
                return 0;
        int d = 0;
        for (const char *p = dir + strlen(s->root); *p; p++)
                if (*p == '/' && p[1])
                        d++;
        return d;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* s->problems from dir_problems, in the order of the directories. */
static void problems_rebuild(struct desired_set *s) {
        dv_error_clear(&s->problems);
        _cleanup_strv_free_ char **keys = NULL;
        const char *k;
        for (size_t i = 0; hashmap_iter(s->dir_problems, &i, &k, NULL);)
                if (strv_push(&keys, k) < 0) {
                        (void)dv_error_oom(&s->problems);
                        return;
                }
        size_t n = strv_length(keys);
        if (n > 1)
                qsort(keys, n, sizeof(*keys), cmp_str);
        for (size_t i = 0; i < n; i++)
                dv_error_add(&s->problems, -EPERM, 0, "%s",
                             (const char *)hashmap_get(s->dir_problems, keys[i]));
}

static char *problems_text(const struct desired_set *s) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; i < s->problems.n_problems; i++)
                buf_printf(&b, "%s\n", s->problems.problems[i].msg);
        return buf_steal(&b);
}

int desired_set_scan(struct desired_set *s, char *const *dirs) {
        char *const all[] = {s->root, NULL};
        if (!dirs)
                dirs = all;
        s->generation++;
        size_t changed = 0;
        _cleanup_free_ char *before = problems_text(s);

        for (size_t k = 0; dirs[k]; k++) {
                const char *dir = dirs[k];
                if (!streq(dir, s->root) && !path_is_under(dir, s->root))
                        continue;
                /* What was said about dir and below is said again by this scan, or is over. */
                _cleanup_strv_free_ char **gone = NULL;
                const char *pk;
                for (size_t i = 0; hashmap_iter(s->dir_problems, &i, &pk, NULL);)
                        if ((streq(pk, dir) || path_is_under(pk, dir)) && strv_push(&gone, pk) < 0)
                                return -ENOMEM;
                for (char **g = gone; g && *g; g++)
                        free(hashmap_remove(s->dir_problems, *g));
                /* Everything known below dir is unseen until the scan finds it again. */
                const char *key;
                void *v;
                for (size_t i = 0; hashmap_iter(s->files, &i, &key, &v);) {
                        struct desired_file *f = v;
                        if (path_is_under(f->path, dir))
                                f->seen = false;
                }
                int r = scan_dir(s, dir, depth_of(s, dir));
                bool is_root = streq(dir, s->root);
                if (r < 0 && (is_root || r != -ENOENT))
                        keep_files_under(s, dir);
                if (r < 0 && r != -EPERM && is_root) {
                        _cleanup_free_ char *m = NULL;
                        if (r == -ENOENT)
                                (void)!asprintf(
                                        &m,
                                        "desired_dir %s does not exist; objects are kept as they are",
                                        s->root);
                        else
                                (void)!asprintf(&m, "cannot read desired_dir %s: %s", s->root,
                                                strerror(-r));
                        if (m)
                                dir_problem_set(s, dir, m);
                }
                for (size_t i = 0; hashmap_iter(s->files, &i, &key, &v);) {
                        struct desired_file *f = v;
                        if (!f->seen && path_is_under(f->path, dir)) {
                                log_debug("desired file %s is gone", f->path);
                                desired_file_free(hashmap_remove(s->files, key));
                                changed++;
                        }
                }
        }
        for (size_t i = 0;;) {
                struct desired_file *f = desired_set_next(s, &i);
                if (!f)
                        break;
                if (f->generation == s->generation)
                        changed++;
        }
        problems_rebuild(s);
        _cleanup_free_ char *after = problems_text(s);
        if (!streq_ptr(before, after))
                changed++; /* a directory problem came or went: status must say so */
        return (int)MIN(changed, (size_t)INT32_MAX);
}

struct desired_file *desired_set_next(const struct desired_set *s, size_t *i) {
        void *v;
        return hashmap_iter(s->files, i, NULL, &v) ? v : NULL;
}

size_t desired_set_count(const struct desired_set *s) {
        return hashmap_size(s->files);
}
uint64_t desired_set_generation(const struct desired_set *s) {
        return s->generation;
}
const struct dv_error *desired_set_problems(const struct desired_set *s) {
        return &s->problems;
}
const char *desired_set_root(const struct desired_set *s) {
        return s->root;
}
