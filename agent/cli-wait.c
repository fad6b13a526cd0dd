/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `declvirt wait [--timeout SECONDS] [FILE | KIND/NAME ...]`: blocks until the
 * objects are in their desired phase at the current content of their files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/commands.h"
#include "util/time.h"
#include "model/object.h"
#include "model/xml.h"
#include "reconcile/desired.h"
#include "state/status.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/hashmap.h"
#include "util/macro.h"
#include "util/parse.h"

#define WAIT_DEFAULT_TIMEOUT_USEC (300 * USEC_PER_SEC)
/* status.xml is looked at whenever something is renamed into state_dir (inotify: the
 * agent writes it by rename), and at least every WAIT_POLL_USEC, which covers a state_dir
 * that is not there yet or is replaced: checking is cheap (one stat, a parse only when it
 * changed), and the wake-up is what keeps `wait` from adding a poll interval to every
 * convergence it reports. */
#define WAIT_POLL_USEC (100 * USEC_PER_MSEC)

enum { WAIT_SETTLED = 0, WAIT_FAILED = 1, WAIT_TIMEOUT = 2, WAIT_USAGE = 2 };

struct file_key {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
};

struct target {
        char *path; /* file targets; NULL for KIND/NAME */
        char *id;   /* "domain/web1", "volume/POOL/NAME" */
        char *kind, *pool, *name;
        char hash[HASH_HEX_LEN + 1]; /* of the file's bytes when last read */
        bool want_down;
        bool loaded, missing;
        struct file_key key;
        int state; /* 1 settled, 0 not yet, -1 failed or blocked */
        char *why; /* why not settled (or why failed) */
};

struct waiter {
        struct target *t;
        size_t n;
        bool check_trust;
        char *const *locations;
        char *status_path;
        struct status_snapshot *status;
        struct hashmap *index; /* id -> const struct status_object * (into status) */
        bool have_status_key;
        struct file_key status_key;
        char *status_problem; /* why there is no usable status, or NULL */
        bool tty;             /* progress on stderr */
        bool shown;
        size_t shown_settled;
        uint64_t shown_secs;
};

static void wait_usage(FILE *f) {
        fprintf(f,
                "Usage: declvirt wait [--timeout SECONDS] [FILE | KIND/NAME ...]\n"
                "\n"
                "Waits until the objects are in their desired phase at the current content of\n"
                "their files, as STATE_DIR/status.xml reports it. Default: every object of every\n"
                "desired file now in desired_dir. KIND/NAME is pool/NAME, network/NAME,\n"
                "domain/NAME or volume/POOL/NAME.\n"
                "\n"
                "  -t, --timeout SECONDS   give up after this long (default 300; 90s, 5m work)\n"
                "\n"
                "Exit status: 0 settled, 1 an object failed or is blocked, or a file is invalid,\n"
                "2 timeout (or a usage error).\n");
}

static void key_of(const struct stat *st, struct file_key *k) {
        *k = (struct file_key){
                .dev = st->st_dev,
                .ino = st->st_ino,
                .size = st->st_size,
                .mtime = st->st_mtim,
                .ctime = st->st_ctim,
        };
}

static bool key_equal(const struct file_key *a, const struct file_key *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
               a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void set_why(struct target *t, const char *fmt, ...) _printf_(2, 3);
static void set_why(struct target *t, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        free(t->why);
        t->why = n < 0 ? NULL : s;
}

static void target_done(struct target *t) {
        free(t->path);
        free(t->id);
        free(t->kind);
        free(t->pool);
        free(t->name);
        free(t->why);
}

/* Takes kind, pool, name and hash from a parsed desired file. */
static int target_take_object(struct target *t, const struct dv_object *o) {
        char *id = dv_object_id(o), *kind = strdup(dv_kind_to_string(o->kind)),
             *name = strdup(o->name);
        char *pool = o->pool ? strdup(o->pool) : NULL;
        if (!id || !kind || !name || (o->pool && !pool)) {
                free(id), free(kind), free(name), free(pool);
                return -ENOMEM;
        }
        free(t->id), free(t->kind), free(t->name), free(t->pool);
        t->id = id, t->kind = kind, t->name = name, t->pool = pool;
        memcpy(t->hash, o->hash, sizeof(t->hash));
        t->want_down = dv_policy_state(&o->policy) == DV_WANT_DOWN;
        t->loaded = true;
        return 0;
}

/* (Re)reads a file target when its stat changed, with the agent's checks: trust,
 * parse and validation, storage_locations. A missing file is not an error here
 * (an editor's delete-and-write): the target just is not settled. Returns -errno
 * with the reason in err when the file is invalid. */
static int target_load(struct waiter *w, struct target *t, struct dv_error *err) {
        dv_error_set_file(err, t->path);
        /* O_NONBLOCK: a FIFO put there by mistake must not block us. */
        _cleanup_close_ int fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 && errno == ENOENT) {
                t->missing = true;
                return 0;
        }
        if (fd < 0 || fstat(fd, &st) < 0)
                return dv_error_add(err, -errno, 0, "cannot read: %s", strerror(errno));
        t->missing = false;
        struct file_key k;
        key_of(&st, &k);
        if (t->loaded && key_equal(&k, &t->key))
                return 0;
        if (!S_ISREG(st.st_mode))
                return dv_error_add(err, -EINVAL, 0, "not a regular file");
        if (w->check_trust) {
                int r = desired_check_trust(t->path, &st, err);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_full_fd(fd, DV_XML_MAX_SIZE, &data, &len);
        if (r == -EFBIG)
                return dv_error_add(err, r, 0, "file is larger than %d bytes", DV_XML_MAX_SIZE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        _cleanup_(dv_object_freep) struct dv_object *o = NULL;
        r = dv_object_parse(data, len, t->path, &o, err);
        if (r < 0)
                return r;
        r = desired_check_locations(o, w->locations, err);
        if (r < 0)
                return r;
        r = target_take_object(t, o);
        if (r < 0)
                return dv_error_oom(err);
        /* The key of what was read: a write racing with us shows up as a change. */
        t->key = k;
        return 0;
}

static int add_target(struct waiter *w, struct target **ret) {
        struct target *l = realloc(w->t, (w->n + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        w->t = l;
        l[w->n] = (struct target){0};
        *ret = &l[w->n++];
        return 0;
}

static void print_error(const struct dv_error *err) {
        if (dv_error_failed(err))
                dv_error_print(stderr, err);
        else
                fprintf(stderr, "declvirt wait: %s: invalid\n", strempty(err->file));
}

/* The default targets: every desired file now in desired_dir, found with the
 * agent's own scanner (depth, name filters, symlinks, trust). */
static int targets_from_desired_dir(struct waiter *w, const char *dir) {
        struct desired_set *ds = NULL;
        int r = desired_set_new(dir, w->check_trust, w->locations, &ds);
        if (r < 0)
                return r;
        desired_set_scan(ds, NULL);
        int bad = 0;
        const struct dv_error *problems = desired_set_problems(ds);
        if (dv_error_failed(problems)) {
                dv_error_print(stderr, problems);
                bad++;
        }
        struct desired_file *f;
        for (size_t i = 0; (f = desired_set_next(ds, &i));) {
                if (!f->obj) {
                        print_error(&f->err);
                        bad++;
                        continue;
                }
                struct target *t;
                if (add_target(w, &t) < 0 || !(t->path = strdup(f->path)) ||
                    target_take_object(t, f->obj) < 0) {
                        desired_set_free(ds);
                        return -ENOMEM;
                }
                t->key = (struct file_key){
                        .dev = f->dev,
                        .ino = f->ino,
                        .size = f->size,
                        .mtime = f->mtime,
                        .ctime = f->ctime,
                };
        }
        desired_set_free(ds);
        return bad ? -EINVAL : 0;
}

static int cmp_target(const void *a, const void *b) {
        const struct target *x = a, *y = b;
        return strcmp(x->path ? x->path : x->id, y->path ? y->path : y->id);
}

/* A command-line argument: a file when it exists (or cannot be an id), else KIND/NAME. */
static int target_from_arg(struct waiter *w, const char *arg) {
        struct target *t;
        _cleanup_free_ char *kind = NULL, *pool = NULL, *name = NULL;
        struct stat st;
        bool is_id = stat(arg, &st) < 0 && errno == ENOENT &&
                     status_parse_object_id(arg, &kind, &pool, &name) >= 0;
        if (add_target(w, &t) < 0)
                return -ENOMEM;
        if (is_id) {
                t->kind = TAKE_PTR(kind);
                t->pool = TAKE_PTR(pool);
                t->name = TAKE_PTR(name);
                t->id = strdup(arg);
                return t->id ? 0 : -ENOMEM;
        }
        t->path = strdup(arg);
        if (!t->path)
                return -ENOMEM;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        const char *base = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
        int r;
        if (!desired_name_is_candidate(base)) {
                dv_error_set_file(&err, arg);
                r = dv_error_add(
                        &err, -EINVAL, 0,
                        "the agent ignores a file with this name (not *.xml, or a temporary or "
                        "backup name)");
        } else {
                r = target_load(w, t, &err);
                if (r >= 0 && t->missing) {
                        dv_error_set_file(&err, arg);
                        r = dv_error_add(&err, -ENOENT, 0, "cannot read: %s", strerror(ENOENT));
                }
        }
        if (r < 0)
                print_error(&err);
        return r;
}

/* Re-reads status.xml when its stat changed. No usable status is not an error:
 * the agent may not have written it yet. */
static void refresh_status(struct waiter *w) {
        struct stat st;
        if (stat(w->status_path, &st) < 0) {
                int e = errno;
                status_snapshot_free(w->status);
                w->status = NULL;
                w->have_status_key = false;
                free(w->status_problem);
                if (asprintf(&w->status_problem, "%s: %s%s", w->status_path, strerror(e),
                             e == ENOENT ? " (is the agent running?)" : "") < 0)
                        w->status_problem = NULL;
                return;
        }
        struct file_key k;
        key_of(&st, &k);
        if (w->have_status_key && key_equal(&k, &w->status_key))
                return;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        struct status_snapshot *s = NULL;
        int r = status_read_file(w->status_path, &s, &err);
        hashmap_free(w->index, NULL);
        w->index = NULL;
        status_snapshot_free(w->status);
        w->status = NULL;
        free(w->status_problem);
        w->status_problem = NULL;
        if (r < 0) {
                w->status_problem = dv_error_summary(&err);
                return; /* key not kept: read again next time */
        }
        w->index = hashmap_new();
        bool ok = w->index;
        for (size_t i = 0; ok && i < s->n_objects; i++) {
                _cleanup_free_ char *id = status_object_id(&s->objects[i]);
                ok = id && hashmap_put(w->index, id, &s->objects[i], NULL) >= 0;
        }
        if (!ok) {
                /* Without a whole index an object would look absent: no status yet. */
                hashmap_free(w->index, NULL);
                w->index = NULL;
                status_snapshot_free(s);
                w->status_problem = strdup("out of memory");
                return; /* key not kept: read again next time */
        }
        w->status = s;
        w->status_key = k;
        w->have_status_key = true;
}

/* What an object's status says in one line: its message, or the first true
 * condition other than Ready (a Duplicate first: it is why the object is stuck). */
static const char *object_why(const struct status_object *o) {
        const struct status_condition *dup = status_condition_find(o, "Duplicate");
        if (dup && dup->status && dup->message)
                return dup->message;
        if (o->message && *o->message)
                return o->message;
        for (size_t i = 0; i < o->n_conditions; i++) {
                const struct status_condition *c = &o->conditions[i];
                if (c->status && !streq_ptr(c->type, "Ready") && (c->message || c->reason))
                        return c->message ? c->message : c->reason;
        }
        return "";
}

static const struct status_file_error *file_error_for(const struct status_snapshot *s,
                                                      const char *path) {
        for (size_t i = 0; s && path && i < s->n_files; i++)
                if (streq_ptr(s->files[i].path, path))
                        return &s->files[i];
        return NULL;
}

static void evaluate(struct waiter *w, struct target *t) {
        t->state = 0;
        if (t->path && t->missing) {
                set_why(t, "%s is missing", t->path);
                return;
        }
        if (!w->status) {
                set_why(t, "no status: %s", strna(w->status_problem));
                return;
        }
        const struct status_object *o = w->index ? hashmap_get(w->index, t->id) : NULL;
        if (!o) {
                const struct status_file_error *fe = file_error_for(w->status, t->path);
                if (fe && fe->line > 0)
                        set_why(t, "the agent reports %s:%d: %s", fe->path, fe->line,
                                strempty(fe->error));
                else if (fe)
                        set_why(t, "the agent reports %s: %s", fe->path, strempty(fe->error));
                else
                        set_why(t, "not in status.xml yet");
                return;
        }
        const struct status_condition *dup = status_condition_find(o, "Duplicate");
        if (dup && dup->status) {
                /* A fact about the files now, whichever copy's content is in force:
                 * nothing converges until one of them goes. */
                t->state = -1;
                set_why(t, "%s: %s", strempty(o->phase), object_why(o));
                return;
        }
        if (t->path) {
                /* Only a status about exactly these bytes counts, so a file written a
                 * moment ago is never reported on its old content. */
                if (!streq_ptr(o->desired_hash, t->hash)) {
                        set_why(t,
                                "the agent has not loaded the current content of %s yet (phase %s)",
                                t->path, strempty(o->phase));
                        return;
                }
                t->state = status_object_settled(o, t->want_down);
        } else {
                /* No file to read the policy from: the agent reports "stopped" only when
                 * down is what is wanted, so ready and stopped both count. */
                int up = status_object_settled(o, false), down = status_object_settled(o, true);
                t->state = up < 0 ? -1 : (up > 0 || down > 0) ? 1 : 0;
        }
        if (t->state <= 0)
                set_why(t, "%s: %s", strempty(o->phase), object_why(o));
}

static void waiter_done(struct waiter *w) {
        for (size_t i = 0; i < w->n; i++)
                target_done(&w->t[i]);
        free(w->t);
        free(w->status_path);
        hashmap_free(w->index, NULL);
        status_snapshot_free(w->status);
        free(w->status_problem);
}

/* Redrawn only when what it says changes, not on every poll. */
static void progress(struct waiter *w, size_t settled, uint64_t left) {
        uint64_t secs = (left + USEC_PER_SEC - 1) / USEC_PER_SEC;
        if (!w->tty || (w->shown && settled == w->shown_settled && secs == w->shown_secs))
                return;
        fprintf(stderr, "\r\033[Kwaiting: %zu of %zu objects settled (%" PRIu64 "s left)", settled,
                w->n, secs);
        fflush(stderr);
        w->shown = true;
        w->shown_settled = settled;
        w->shown_secs = secs;
}

static void progress_end(struct waiter *w) {
        if (w->shown)
                fputs("\r\033[K", stderr);
        w->shown = false;
}

int cli_wait(const struct dv_config *cfg, int argc, char **argv) {
        int ino = -1;          /* inotify on state_dir: wakes the wait when status.xml is renamed */
        bool watching = false; /* ino watches state_dir now */
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {"timeout", required_argument, NULL, 't'},
                {},
        };
        uint64_t timeout = WAIT_DEFAULT_TIMEOUT_USEC;
        int c;
        while ((c = getopt_long(argc, argv, "ht:", opts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        wait_usage(stdout);
                        return 0;
                case 't':
                        if (parse_duration_usec(optarg, &timeout) < 0) {
                                fprintf(stderr,
                                        "declvirt wait: --timeout '%s': expected seconds (or 90s, "
                                        "5m)\n",
                                        optarg);
                                return WAIT_USAGE;
                        }
                        break;
                default:
                        wait_usage(stderr);
                        return WAIT_USAGE;
                }
        }

        struct waiter w = {
                .check_trust = geteuid() == 0 && cfg->strict_permissions,
                .locations = cfg->storage_locations,
                .status_path = path_join(cfg->state_dir, "status.xml"),
        };
        int ret = WAIT_FAILED, r = w.status_path ? 0 : -ENOMEM;
        if (r >= 0 && optind >= argc) {
                r = targets_from_desired_dir(&w, cfg->desired_dir);
                if (r >= 0 && w.n == 0)
                        fprintf(stderr,
                                "declvirt wait: no desired files in %s: nothing to wait for\n",
                                cfg->desired_dir);
        }
        for (int i = optind; r >= 0 && i < argc; i++)
                r = target_from_arg(&w, argv[i]);
        if (r == -ENOMEM)
                (void)log_oom();
        if (r < 0)
                goto out;
        qsort(w.t, w.n, sizeof(*w.t), cmp_target);

        w.tty = isatty(STDERR_FILENO);
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        for (;;) {
                for (size_t i = 0; i < w.n; i++) {
                        struct target *t = &w.t[i];
                        if (!t->path)
                                continue;
                        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
                        r = target_load(&w, t, &err);
                        if (r < 0) {
                                progress_end(&w);
                                print_error(&err);
                                goto out;
                        }
                }
                refresh_status(&w);
                size_t settled = 0, failed = 0;
                for (size_t i = 0; i < w.n; i++) {
                        evaluate(&w, &w.t[i]);
                        settled += w.t[i].state > 0;
                        failed += w.t[i].state < 0;
                }
                if (failed > 0) {
                        progress_end(&w);
                        for (size_t i = 0; i < w.n; i++)
                                if (w.t[i].state < 0)
                                        fprintf(stderr, "%s: %s\n", w.t[i].id,
                                                strempty(w.t[i].why));
                        goto out;
                }
                if (settled == w.n) {
                        progress_end(&w);
                        ret = WAIT_SETTLED;
                        goto out;
                }
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline) {
                        progress_end(&w);
                        char d[32];
                        fprintf(stderr,
                                "declvirt wait: timed out after %s; %zu of %zu objects not "
                                "settled:\n",
                                format_duration(d, timeout), w.n - settled, w.n);
                        for (size_t i = 0; i < w.n; i++)
                                if (w.t[i].state == 0)
                                        fprintf(stderr, "%s: %s\n",
                                                w.t[i].id ? w.t[i].id : strempty(w.t[i].path),
                                                strempty(w.t[i].why));
                        ret = WAIT_TIMEOUT;
                        goto out;
                }
                progress(&w, settled, deadline - now);
                uint64_t nap = MIN(WAIT_POLL_USEC, deadline - now);
                if (ino >= 0 && !watching)
                        watching = inotify_add_watch(ino, cfg->state_dir,
                                                     IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF |
                                                             IN_MOVE_SELF) >= 0;
                struct pollfd pf = {.fd = watching ? ino : -1, .events = POLLIN};
                if (poll(&pf, 1, (int)((nap + USEC_PER_MSEC - 1) / USEC_PER_MSEC)) > 0) {
                        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                        ssize_t k;
                        while ((k = read(ino, buf, sizeof(buf))) > 0)
                                for (char *q = buf; q < buf + k;) {
                                        const struct inotify_event *ev =
                                                (const struct inotify_event *)q;
                                        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
                                                watching =
                                                        false; /* watch it again when it is back */
                                        q += sizeof(*ev) + ev->len;
                                }
                }
        }
out:
        if (ino >= 0)
                close(ino);
        waiter_done(&w);
        return ret;
}
