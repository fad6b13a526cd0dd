/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state store (docs/state-files.md): batched atomic writes under state_dir that
 * skip unchanged files, and the lock that keeps a second agent off the same state. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state/state.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"

/* Largest file read back (first look at a file, state_store_read). status.xml for
 * 10,000 objects is a few MiB. */
#define STATE_READ_MAX (256u << 20)
/* Up to this many files a batch fsyncs each file; above, one syncfs per filesystem.
 * syncfs also flushes everybody else's dirty data on that filesystem (a qemu-img
 * preallocating a volume next door), which the usual two or three files of a pass
 * (status.xml, metrics.prom, one observed file) must not wait for. */
#define STATE_FSYNC_MAX 4
/* Bytes of the final name kept in a temp name: enough to recognise it, and short
 * enough that the temp name fits NAME_MAX whatever the final name. */
#define STATE_TEMP_BASE_MAX 64
/* Levels below the root searched for stale temp files (volumes/POOL/ is level 2). */
#define STATE_SCAN_DEPTH 3
#define STATE_APPLIED    "applied"
#define STATE_LOCK_FILE  ".lock"

/* What was last known to be on disk at one relpath: the content's hash, and the
 * stat facts that tell whether the file was replaced or edited since. */
struct known {
        char hash[HASH_HEX_LEN + 1];
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
};

enum op_kind {
        OP_NONE, /* cancelled: a later call made it unnecessary */
        OP_PUT,
        OP_REMOVE,
};

struct batch_dir;

struct op {
        enum op_kind kind;
        char *relpath;
        char *data;
        size_t len;
        mode_t mode;
        char hash[HASH_HEX_LEN + 1];
        /* During a commit: */
        struct batch_dir *dir;
        const char *base; /* last component, inside relpath */
        char *tmp;        /* temp file name in dir while it exists */
        struct stat st;   /* of the temp file, which becomes the final file */
        bool done;        /* renamed or unlinked */
};

struct state_store {
        char *root;
        int root_fd;
        struct hashmap *known;  /* relpath -> struct known */
        struct hashmap *queued; /* relpath -> struct op (owned by ops) */
        struct op **ops;        /* in queue order: the order of the renames */
        size_t n_ops, cap_ops;
};

/* A directory that one commit works in. */
struct batch_dir {
        char *rel; /* "" for the root */
        int fd;    /* the root's fd is borrowed from the store */
        dev_t dev;
        struct batch_dir *parent;
        bool created; /* made by this commit: removed again if the commit fails */
        bool touched; /* an entry changed: fsync it */
        bool rmdir_wanted;
        bool removed;
};

struct batch {
        struct hashmap *dirs;    /* rel -> struct batch_dir (owned by list) */
        struct batch_dir **list; /* parents before children */
        size_t n, cap;
};

/* ---- names ---------------------------------------------------------------------------- */

static bool is_temp_name(const char *name) {
        return name[0] == '.' && str_ends_with(name, ".tmp");
}

/* A relpath stays below the root: no leading '/', no empty, '.' or '..' component, no
 * trailing '/'. A file may not take a name of the temp namespace or the lock's. */
static int relpath_check(const char *p, bool is_file) {
        if (!p || !*p || p[0] == '/' || strlen(p) >= PATH_MAX)
                return -EINVAL;
        const char *last = p;
        for (const char *c = p;;) {
                const char *e = strchrnul(c, '/');
                size_t n = (size_t)(e - c);
                if (n == 0 || n > NAME_MAX || (n == 1 && c[0] == '.') ||
                    (n == 2 && c[0] == '.' && c[1] == '.'))
                        return -EINVAL;
                last = c;
                if (!*e)
                        break;
                c = e + 1;
        }
        if (is_file && (is_temp_name(last) || streq(p, STATE_LOCK_FILE)))
                return -EINVAL;
        return 0;
}

static bool under_applied(const char *rel) {
        size_t n = strlen(STATE_APPLIED);
        return strncmp(rel, STATE_APPLIED, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

/* applied/ holds the user's definitions (CHAP user names, paths): never readable by
 * group or others, whatever the caller asks. Set-id and sticky bits have no use here. */
static mode_t file_mode(const char *relpath, mode_t mode) {
        bool applied = under_applied(relpath);
        mode_t m = (mode & 0777) ? (mode & 0777) : (applied ? 0600 : 0644);
        return applied ? (m & 0700) : m;
}

static mode_t dir_mode(const char *rel) {
        return under_applied(rel) ? 0700 : 0755;
}

/* The separator between root and a relpath in messages ("/" + "x" must not read "//x"). */
static const char *root_sep(const struct state_store *s) {
        return str_ends_with(s->root, "/") ? "" : "/";
}

/* "WHAT ROOT/REL: reason" into err; returns r. */
static int store_error(const struct state_store *s, struct dv_error *err, int r, const char *what,
                       const char *rel) {
        return dv_error_add(err, r, 0, "%s %s%s%s: %s", what, s->root, *rel ? root_sep(s) : "", rel,
                            strerror(-r));
}

/* ---- the known-content cache ---------------------------------------------------------- */

static void forget(struct state_store *s, const char *relpath) {
        free(hashmap_remove(s->known, relpath));
}

static int remember(struct state_store *s, const char *relpath, const char *hash,
                    const struct stat *st) {
        struct known *k = hashmap_get(s->known, relpath);
        if (!k) {
                k = malloc(sizeof(*k));
                if (!k)
                        return -ENOMEM;
                int r = hashmap_put(s->known, relpath, k, NULL);
                if (r < 0) {
                        free(k);
                        return r;
                }
        }
        memcpy(k->hash, hash, sizeof(k->hash));
        k->dev = st->st_dev;
        k->ino = st->st_ino;
        k->size = st->st_size;
        k->mtime = st->st_mtim;
        return 0;
}

static bool known_matches(const struct known *k, const struct stat *st) {
        return k->dev == st->st_dev && k->ino == st->st_ino && k->size == st->st_size &&
               k->mtime.tv_sec == st->st_mtim.tv_sec && k->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static bool same_version(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reads a regular file below the root and records its hash. */
static int read_at(struct state_store *s, const char *relpath, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = openat(s->root_fd, relpath,
                                        O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_full_fd(fd, STATE_READ_MAX, &data, &len);
        if (r < 0)
                return r;
        /* A file changed while being read shows a different size or mtime now; then
         * its hash would describe nothing, so only a stable read is remembered. */
        struct stat st2;
        if (fstat(fd, &st2) < 0)
                return -errno;
        if (same_version(&st, &st2) && (size_t)st2.st_size == len) {
                char h[HASH_HEX_LEN + 1];
                hash_hex(data, len, h);
                r = remember(s, relpath, h, &st2);
                if (r < 0)
                        return r;
        } else
                forget(s, relpath);
        *ret = TAKE_PTR(data);
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* 1 when relpath already holds content with this hash and length, and the mode;
 * 0 when it must be written (including when that cannot be told). */
static int on_disk_matches(struct state_store *s, const char *relpath, const char *hash, size_t len,
                           mode_t mode) {
        struct stat st;
        if (fstatat(s->root_fd, relpath, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            (size_t)st.st_size != len) {
                forget(s, relpath);
                return 0;
        }
        if ((st.st_mode & 07777) != mode)
                return 0;
        struct known *k = hashmap_get(s->known, relpath);
        if (!k || !known_matches(k, &st)) {
                /* First sight (or changed behind our back): learn what it holds. */
                _cleanup_free_ char *data = NULL;
                int r = read_at(s, relpath, &data, NULL);
                if (r == -ENOMEM)
                        return r;
                k = hashmap_get(s->known, relpath);
                if (r < 0 || !k || !known_matches(k, &st))
                        return 0;
        }
        return streq(k->hash, hash);
}

/* ---- the queue -------------------------------------------------------------------------- */

static void op_free(struct op *op) {
        if (!op)
                return;
        free(op->relpath);
        free(op->data);
        free(op->tmp);
        free(op);
}

static void queue_clear(struct state_store *s) {
        for (size_t i = 0; i < s->n_ops; i++) {
                hashmap_remove(s->queued, s->ops[i]->relpath);
                op_free(s->ops[i]);
        }
        s->n_ops = 0;
}

/* The queued operation for relpath, created (cancelled) when there is none. */
static struct op *queue_get(struct state_store *s, const char *relpath) {
        struct op *op = hashmap_get(s->queued, relpath);
        if (op)
                return op;
        if (s->n_ops == s->cap_ops) {
                size_t ncap = s->cap_ops ? s->cap_ops * 2 : 64;
                struct op **n = realloc(s->ops, ncap * sizeof(*n));
                if (!n)
                        return NULL;
                s->ops = n;
                s->cap_ops = ncap;
        }
        op = calloc(1, sizeof(*op));
        if (!op)
                return NULL;
        op->relpath = strdup(relpath);
        if (!op->relpath || hashmap_put(s->queued, relpath, op, NULL) < 0) {
                op_free(op);
                return NULL;
        }
        s->ops[s->n_ops++] = op;
        return op;
}

static void queue_cancel(struct state_store *s, const char *relpath) {
        struct op *op = hashmap_get(s->queued, relpath);
        if (!op)
                return;
        op->kind = OP_NONE;
        free(op->data);
        op->data = NULL;
        op->len = 0;
}

int state_store_put(struct state_store *s, const char *relpath, const char *data, size_t len,
                    mode_t mode) {
        int r = relpath_check(relpath, true);
        if (r < 0)
                return r;
        if (!data && len > 0)
                return -EINVAL;
        mode = file_mode(relpath, mode);
        char h[HASH_HEX_LEN + 1];
        hash_hex(data ? data : "", len, h);
        r = on_disk_matches(s, relpath, h, len, mode);
        if (r < 0)
                return r;
        if (r > 0) {
                /* An earlier put or remove in this batch would now change it back. */
                queue_cancel(s, relpath);
                return 0;
        }
        /* The caller's buffer is theirs again as soon as we return. */
        char *copy = malloc(len ? len : 1);
        if (!copy)
                return -ENOMEM;
        if (len)
                memcpy(copy, data, len);
        struct op *op = queue_get(s, relpath);
        if (!op) {
                free(copy);
                return -ENOMEM;
        }
        free(op->data);
        op->kind = OP_PUT;
        op->data = copy;
        op->len = len;
        op->mode = mode;
        memcpy(op->hash, h, sizeof(h));
        return 1;
}

int state_store_remove(struct state_store *s, const char *relpath) {
        int r = relpath_check(relpath, true);
        if (r < 0)
                return r;
        struct stat st;
        if (fstatat(s->root_fd, relpath, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
            (errno == ENOENT || errno == ENOTDIR)) {
                queue_cancel(s, relpath);
                forget(s, relpath);
                return 0;
        }
        struct op *op = queue_get(s, relpath);
        if (!op)
                return -ENOMEM;
        free(op->data);
        op->data = NULL;
        op->len = 0;
        op->kind = OP_REMOVE;
        return 1;
}

/* ---- one commit ------------------------------------------------------------------------- */

static void batch_free(struct batch *b) {
        for (size_t i = 0; i < b->n; i++) {
                struct batch_dir *d = b->list[i];
                if (d->parent && d->fd >= 0)
                        close(d->fd);
                free(d->rel);
                free(d);
        }
        free(b->list);
        hashmap_free(b->dirs, NULL);
}

static const char *last_component(const char *rel) {
        const char *sl = strrchr(rel, '/');
        return sl ? sl + 1 : rel;
}

static int batch_add_dir(struct batch *b, struct batch_dir *d) {
        if (b->n == b->cap) {
                size_t ncap = b->cap ? b->cap * 2 : 16;
                struct batch_dir **n = realloc(b->list, ncap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                b->list = n;
                b->cap = ncap;
        }
        int r = hashmap_put(b->dirs, d->rel, d, NULL);
        if (r < 0)
                return r;
        b->list[b->n++] = d;
        return 0;
}

/* Opens the directory rel below the root one component at a time, never following a
 * symlink, creating missing components when create is set. -ENOENT (with nothing in
 * err) when it is missing and create is not set. */
static int batch_open_dir(struct state_store *s, struct batch *b, const char *rel, bool create,
                          struct batch_dir **ret, struct dv_error *err) {
        struct batch_dir *d = hashmap_get(b->dirs, rel);
        if (d) {
                *ret = d;
                return 0;
        }
        struct batch_dir *parent = NULL;
        _cleanup_close_ int fd = -1;
        bool created = false;
        int r;
        if (*rel) {
                const char *sl = strrchr(rel, '/');
                _cleanup_free_ char *prel = strndup(rel, sl ? (size_t)(sl - rel) : 0);
                if (!prel)
                        return -ENOMEM;
                r = batch_open_dir(s, b, prel, create, &parent, err);
                if (r < 0)
                        return r;
                const char *base = last_component(rel);
                fd = openat(parent->fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT && create) {
                        mode_t m = dir_mode(rel);
                        if (mkdirat(parent->fd, base, m) == 0)
                                created = true;
                        else if (errno != EEXIST)
                                return store_error(s, err, -errno, "cannot create directory", rel);
                        fd = openat(parent->fd, base,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        /* mkdir's mode went through the umask. */
                        if (fd >= 0 && created && fchmod(fd, m) < 0)
                                return store_error(s, err, -errno, "cannot set the mode of", rel);
                }
                if (fd < 0) {
                        r = -errno;
                        if ((r == -ENOENT || r == -ENOTDIR) && !create)
                                return r;
                        return store_error(s, err, r, "cannot open directory", rel);
                }
                if (created)
                        parent->touched = true;
        }
        struct stat st;
        if (fstat(*rel ? fd : s->root_fd, &st) < 0)
                return store_error(s, err, -errno, "cannot stat", rel);
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->rel = strdup(rel);
        if (!d->rel) {
                free(d);
                return -ENOMEM;
        }
        d->parent = parent;
        d->fd = *rel ? fd : s->root_fd;
        d->dev = st.st_dev;
        d->created = created;
        r = batch_add_dir(b, d);
        if (r < 0) {
                free(d->rel);
                free(d);
                return r;
        }
        TAKE_FD(fd);
        *ret = d;
        return 0;
}

static int op_open_dir(struct state_store *s, struct batch *b, struct op *op, bool create,
                       struct dv_error *err) {
        const char *sl = strrchr(op->relpath, '/');
        _cleanup_free_ char *rel = strndup(op->relpath, sl ? (size_t)(sl - op->relpath) : 0);
        if (!rel)
                return store_error(s, err, -ENOMEM, "cannot write", op->relpath);
        op->base = sl ? sl + 1 : op->relpath;
        int r = batch_open_dir(s, b, rel, create, &op->dir, err);
        if (r == -ENOMEM)
                return store_error(s, err, r, "cannot write", op->relpath);
        return r;
}

static int write_all(int fd, const char *p, size_t left) {
        while (left > 0) {
                ssize_t k = write(fd, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                left -= (size_t)k;
        }
        return 0;
}

/* Writes op's content to a new temp file in its directory. */
static int write_temp(struct state_store *s, struct op *op, bool fsync_it, struct dv_error *err) {
        _cleanup_close_ int fd = -1;
        for (unsigned attempt = 0; fd < 0; attempt++) {
                free(op->tmp);
                op->tmp = NULL;
                /* The PID tells a crashed process's temp from a live one's; the random
                 * part makes the name one nobody can create first. */
                uint64_t rnd;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return store_error(s, err, -errno, "cannot write", op->relpath);
                if (asprintf(&op->tmp, ".%.*s.%d.%016" PRIx64 ".tmp", STATE_TEMP_BASE_MAX, op->base,
                             (int)getpid(), rnd) < 0) {
                        op->tmp = NULL;
                        return -ENOMEM;
                }
                /* 0600 until the content is complete; fchmod below sets the real mode. */
                fd = openat(op->dir->fd, op->tmp,
                            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        int r = -errno;
                        free(op->tmp);
                        op->tmp = NULL;
                        /* EEXIST: a temp of a crashed process whose PID is in use again. */
                        if (r != -EEXIST || attempt >= 8)
                                return store_error(s, err, r, "cannot write", op->relpath);
                }
        }
        int r = write_all(fd, op->data, op->len);
        if (r == 0 && fchmod(fd, op->mode) < 0)
                r = -errno;
        if (r == 0 && fsync_it && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && fstat(fd, &op->st) < 0)
                r = -errno;
        /* close() reports delayed write errors on some filesystems (NFS). */
        if (r == 0 && close(TAKE_FD(fd)) < 0 && errno != EINTR)
                r = -errno;
        if (r < 0)
                return store_error(s, err, r, "cannot write", op->relpath);
        return 0;
}

/* Undoes what a failed commit left: temp files, and directories it created that
 * are empty. The cached hashes of the unfinished files are forgotten so the next
 * put of the same content looks at the disk again. */
static void batch_abort(struct state_store *s, struct batch *b) {
        for (size_t i = 0; i < s->n_ops; i++) {
                struct op *op = s->ops[i];
                if (op->tmp) {
                        (void)unlinkat(op->dir->fd, op->tmp, 0);
                        free(op->tmp);
                        op->tmp = NULL;
                }
                if (op->kind != OP_NONE && !op->done)
                        forget(s, op->relpath);
        }
        for (size_t i = b->n; i-- > 0;) {
                struct batch_dir *d = b->list[i];
                if (d->created && d->parent &&
                    unlinkat(d->parent->fd, last_component(d->rel), AT_REMOVEDIR) == 0)
                        d->removed = true;
        }
}

/* Removes the subdirectories (below the top-level ones such as volumes/) that the
 * removals of this batch left empty. */
static void batch_rmdir_empty(struct batch *b) {
        for (size_t i = b->n; i-- > 0;) {
                struct batch_dir *d = b->list[i];
                if (!d->rmdir_wanted || !d->parent || !strchr(d->rel, '/'))
                        continue;
                if (unlinkat(d->parent->fd, last_component(d->rel), AT_REMOVEDIR) < 0) {
                        if (errno != ENOTEMPTY && errno != EEXIST)
                                log_debug("cannot remove directory %s: %m", d->rel);
                        continue;
                }
                d->removed = true;
                d->parent->touched = true;
                d->parent->rmdir_wanted = true;
        }
}

static int batch_run(struct state_store *s, struct batch *b, int *count, struct dv_error *err) {
        size_t n_writes = 0;
        for (size_t i = 0; i < s->n_ops; i++)
                n_writes += s->ops[i]->kind == OP_PUT;
        bool fsync_each = n_writes <= STATE_FSYNC_MAX;
        const struct op *first_put = NULL;
        int r;

        /* 1. Every temp file, and the directories of the removals. */
        for (size_t i = 0; i < s->n_ops; i++) {
                struct op *op = s->ops[i];
                if (op->kind == OP_PUT) {
                        r = op_open_dir(s, b, op, true, err);
                        if (r < 0)
                                return r;
                        r = write_temp(s, op, fsync_each, err);
                        if (r < 0)
                                return r;
                        if (!first_put)
                                first_put = op;
                } else if (op->kind == OP_REMOVE) {
                        r = op_open_dir(s, b, op, false, err);
                        if (r == -ENOENT || r == -ENOTDIR) {
                                op->kind = OP_NONE; /* its directory is gone: so is the file */
                                forget(s, op->relpath);
                        } else if (r < 0)
                                return r;
                }
        }

        /* 2. One flush per filesystem for a large batch. */
        if (!fsync_each) {
                for (size_t i = 0; i < b->n; i++) {
                        bool seen = false;
                        for (size_t j = 0; j < i && !seen; j++)
                                seen = b->list[j]->dev == b->list[i]->dev;
                        if (seen)
                                continue;
                        if (syncfs(b->list[i]->fd) < 0) {
                                r = -errno;
                                return dv_error_add(
                                        err, r, 0,
                                        "cannot flush %s%s%s and %zu other files to disk: %s",
                                        s->root, root_sep(s), first_put->relpath, n_writes - 1,
                                        strerror(-r));
                        }
                }
        }

        /* 3. The renames, in queue order, then the removals. */
        for (size_t i = 0; i < s->n_ops; i++) {
                struct op *op = s->ops[i];
                if (op->kind != OP_PUT)
                        continue;
                if (renameat(op->dir->fd, op->tmp, op->dir->fd, op->base) < 0)
                        return store_error(s, err, -errno, "cannot write", op->relpath);
                free(op->tmp);
                op->tmp = NULL;
                op->done = true;
                op->dir->touched = true;
                (*count)++;
                r = remember(s, op->relpath, op->hash, &op->st);
                if (r < 0)
                        forget(s, op->relpath);
        }
        for (size_t i = 0; i < s->n_ops; i++) {
                struct op *op = s->ops[i];
                if (op->kind != OP_REMOVE)
                        continue;
                forget(s, op->relpath);
                if (unlinkat(op->dir->fd, op->base, 0) < 0) {
                        if (errno != ENOENT)
                                return store_error(s, err, -errno, "cannot remove", op->relpath);
                } else {
                        op->dir->touched = true;
                        (*count)++;
                }
                op->done = true;
                op->dir->rmdir_wanted = true;
        }
        batch_rmdir_empty(b);

        /* 4. One fsync per directory touched, so the renames themselves are durable. */
        for (size_t i = 0; i < b->n; i++) {
                struct batch_dir *d = b->list[i];
                if (d->touched && !d->removed && fsync(d->fd) < 0) {
                        r = -errno;
                        /* What is in it may not have reached the disk: look again next time. */
                        for (size_t j = 0; j < s->n_ops; j++)
                                if (s->ops[j]->dir == d)
                                        forget(s, s->ops[j]->relpath);
                        return store_error(s, err, r, "cannot flush to disk the directory", d->rel);
                }
        }
        return 0;
}

int state_store_commit(struct state_store *s, struct dv_error *err) {
        if (s->n_ops == 0)
                return 0;
        struct batch b = {.dirs = hashmap_new()};
        int count = 0, r;
        if (!b.dirs)
                r = -ENOMEM;
        else
                r = batch_run(s, &b, &count, err);
        if (r < 0) {
                batch_abort(s, &b);
                log_debug("state commit failed after %d files: %s", count, strerror(-r));
        }
        batch_free(&b);
        queue_clear(s);
        return r < 0 ? r : count;
}

/* ---- open, read, list ------------------------------------------------------------------- */

/* A temp file is stale unless the process named in it is alive and is not us (a temp
 * with our PID is from an earlier process that had the same PID: PIDs repeat after
 * a reboot). Names that do not parse are nobody's. */
static bool temp_is_stale(const char *name) {
        size_t n = strlen(name) - strlen(".tmp");
        _cleanup_free_ char *stem = strndup(name, n);
        if (!stem)
                return false;
        char *dot = strrchr(stem, '.');
        if (!dot || dot == stem)
                return true;
        *dot = '\0'; /* drop the random part */
        dot = strrchr(stem, '.');
        uint64_t pid;
        if (!dot || parse_u64_range(dot + 1, 1, INT_MAX, &pid) < 0)
                return true;
        if ((pid_t)pid == getpid())
                return true;
        return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void remove_stale_temps(int dfd, const char *rel, unsigned depth) {
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                unsigned char type = de->d_type;
                if (type == DT_UNKNOWN) {
                        struct stat st;
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
                }
                if (type == DT_DIR && depth > 0) {
                        _cleanup_close_ int sub =
                                openat(dirfd(d), de->d_name,
                                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_free_ char *srel = NULL;
                        if (sub >= 0 &&
                            asprintf(&srel, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= 0)
                                remove_stale_temps(sub, srel, depth - 1);
                } else if (type == DT_REG && is_temp_name(de->d_name) &&
                           temp_is_stale(de->d_name)) {
                        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                                log_debug("removed stale temp file %s%s%s", rel, *rel ? "/" : "",
                                          de->d_name);
                }
        }
        closedir(d);
}

int state_store_open(const char *root, struct state_store **ret, struct dv_error *err) {
        if (!root || !*root)
                return dv_error_add(err, -EINVAL, 0, "the state directory is not set");
        int r = mkdir_p(root, 0755);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create state directory %s: %s", root,
                                    strerror(-r));
        struct state_store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->root_fd = -1;
        s->root = strdup(root);
        s->known = hashmap_new();
        s->queued = hashmap_new();
        if (!s->root || !s->known || !s->queued) {
                state_store_free(s);
                return -ENOMEM;
        }
        s->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0) {
                r = -errno;
                r = dv_error_add(err, r, 0, "cannot open state directory %s: %s", root,
                                 strerror(-r));
                state_store_free(s);
                return r;
        }
        remove_stale_temps(s->root_fd, "", STATE_SCAN_DEPTH);
        *ret = s;
        return 0;
}

void state_store_free(struct state_store *s) {
        if (!s)
                return;
        queue_clear(s);
        free(s->ops);
        hashmap_free(s->queued, NULL);
        hashmap_free(s->known, free);
        if (s->root_fd >= 0)
                close(s->root_fd);
        free(s->root);
        free(s);
}

const char *state_store_root(const struct state_store *s) {
        return s->root;
}

int state_store_read(struct state_store *s, const char *relpath, char **ret, size_t *ret_len) {
        int r = relpath_check(relpath, true);
        if (r < 0)
                return r;
        return read_at(s, relpath, ret, ret_len);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int state_store_list(struct state_store *s, const char *subdir, char ***ret) {
        bool root = !subdir || !*subdir;
        if (!root) {
                int r = relpath_check(subdir, false);
                if (r < 0)
                        return r;
        }
        struct batch b = {.dirs = hashmap_new()};
        if (!b.dirs)
                return -ENOMEM;
        struct batch_dir *bd = NULL;
        int r = batch_open_dir(s, &b, root ? "" : subdir, false, &bd, NULL);
        int fd = r < 0 ? -1 : openat(bd->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (r >= 0 && fd < 0)
                r = -errno;
        batch_free(&b);
        if (r < 0)
                return r;
        DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n = 0;
        struct dirent *de;
        r = l ? 0 : -ENOMEM;
        while (r == 0 && (de = readdir(d))) {
                /* Dot files are temp files and the lock: never state. */
                if (de->d_name[0] == '.')
                        continue;
                bool reg = de->d_type == DT_REG;
                if (de->d_type == DT_UNKNOWN) {
                        struct stat st;
                        reg = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                              S_ISREG(st.st_mode);
                }
                if (!reg)
                        continue;
                r = strv_push(&l, de->d_name);
                n++;
        }
        closedir(d);
        if (r < 0)
                return r;
        qsort(l, n, sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return (int)MIN(n, (size_t)INT_MAX);
}

/* ---- the lock --------------------------------------------------------------------------- */

/* The holder writes its PID right after taking the lock; give it a moment to do so. */
static pid_t read_lock_pid(int fd) {
        for (int attempt = 0; attempt < 20; attempt++) {
                char buf[32];
                ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
                if (k > 0) {
                        buf[k] = '\0';
                        buf[strcspn(buf, "\n")] = '\0';
                        uint64_t pid;
                        if (parse_u64_range(buf, 1, INT_MAX, &pid) == 0)
                                return (pid_t)pid;
                }
                (void)nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        return 0;
}

/* `declvirt status` tests the lock by taking it for a moment (state_lock_probe): an
 * agent starting just then tries again for a while before it takes the holder for
 * another agent. */
static int flock_patiently(int fd) {
        for (int attempt = 0;; attempt++) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                if (errno != EWOULDBLOCK || attempt >= 20)
                        return -1;
                (void)nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
        }
}

int state_lock_probe(const char *root, pid_t *ret_pid) {
        *ret_pid = 0;
        if (!root || !*root)
                return -EINVAL;
        _cleanup_free_ char *path = path_join(root, STATE_LOCK_FILE);
        if (!path)
                return -ENOMEM;
        /* Read-only and never created: looking changes nothing. O_NONBLOCK: a FIFO planted
         * there must not hang the open. */
        _cleanup_close_ int fd =
                open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                /* An agent always has the file: none ever ran with this state directory. */
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        /* Shared, and only for this instant: an agent holds it exclusively. */
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
                (void)flock(fd, LOCK_UN);
                return 0;
        }
        if (errno != EWOULDBLOCK)
                return -errno;
        *ret_pid = read_lock_pid(fd);
        return 1;
}

/* The PID is for people and for the messages of state_lock; the lock is what counts. */
static int write_lock_pid(int fd) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
                return errno ? -errno : -EIO;
        return 0;
}

/* A lock file that others could open (0644 from an older version): a process that opened
 * it then can flock it whenever the agent is not running, and keep the agent from
 * starting. Called holding the lock on old_fd: puts a new 0600 file, locked too, in
 * its place, so that such a descriptor refers to a file nobody looks at any more.
 * Whoever opens the name meanwhile finds one of the two files locked by us. */
static int lock_replace(int dfd, const char *path, int *ret_fd) {
        _cleanup_free_ char *tmp = NULL;
        int r = temp_name(STATE_LOCK_FILE, &tmp);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = openat(
                dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0 || write_lock_pid(fd) < 0 ||
            renameat(dfd, tmp, dfd, STATE_LOCK_FILE) < 0) {
                r = -errno;
                (void)unlinkat(dfd, tmp, 0);
                return r;
        }
        log_info("replaced %s, which others could open, by a file only root can open", path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int state_lock(const char *root, int *ret_fd, struct dv_error *err) {
        if (!root || !*root)
                return dv_error_add(err, -EINVAL, 0, "the state directory is not set");
        int r = mkdir_p(root, 0755);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create state directory %s: %s", root,
                                    strerror(-r));
        _cleanup_free_ char *path = path_join(root, STATE_LOCK_FILE);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", root, strerror(-r));
        }
        /* O_CLOEXEC matters twice here: a QEMU or dnsmasq started by the agent outlives
         * it and must not keep the lock from the next agent. 0600: a user who could open
         * the file could flock it and so keep the agent from starting. O_NONBLOCK: a
         * FIFO under the name must not hang the agent. */
        _cleanup_close_ int fd =
                openat(dfd, STATE_LOCK_FILE,
                       O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd < 0 && (errno == EROFS || errno == EACCES))
                /* A read-only state directory can still be locked; writes will report. */
                fd = openat(dfd, STATE_LOCK_FILE,
                            O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return dv_error_add(err, -EBADFD, 0, "%s is not a regular file: remove it", path);
        bool exposed = (st.st_mode & 077) || st.st_uid != geteuid();
        if (flock_patiently(fd) < 0) {
                r = -errno;
                if (r != -EWOULDBLOCK)
                        return dv_error_add(err, r, 0, "cannot lock %s: %s", path, strerror(-r));
                pid_t pid = read_lock_pid(fd);
                if (exposed && (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH)))
                        /* Not replaced here: two agents starting together could each
                         * replace it and both run. The admin removes it once. */
                        return dv_error_add(
                                err, -EBUSY, 0,
                                "%s is locked by a process that is not a declvirt agent (the file is mode %04o, owner %u, so others can open it): remove %s and start again",
                                path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, path);
                if (pid > 0)
                        return dv_error_add(err, -EBUSY, 0,
                                            "another declvirt agent (PID %d) is using %s", (int)pid,
                                            root);
                return dv_error_add(err, -EBUSY, 0, "another declvirt agent is using %s", root);
        }
        /* A full or read-only disk does not stop the agent here. */
        if (write_lock_pid(fd) < 0)
                log_debug("cannot write the PID into %s: %m", path);
        if (exposed) {
                int nfd = -1;
                r = lock_replace(dfd, path, &nfd);
                if (r >= 0) {
                        close(fd);
                        fd = nfd;
                } else {
                        /* A bind mount or a read-only file system: closing it to new
                         * openers is what can still be done. */
                        if (fchmod(fd, 0600) < 0)
                                log_debug("cannot chmod %s: %m", path);
                        log_warning(
                                "%s can be opened by others, and replacing it failed (%s): a process that opened it before can keep the next agent from starting; remove it while no agent runs",
                                path, strerror(-r));
                }
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
