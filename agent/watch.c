/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The desired_dir watcher: inotify on the root and its subdirectories, debounced on an
 * sd-event timer; it only says which directories to look at again. See docs/watcher.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/watch.h"
#include "util/fs.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"

/* How often, by default, a missing root is looked for again, and a symlinked root
 * checked for a new target. */
#define ROOT_POLL_USEC USEC_PER_SEC
/* Reads per wake-up before yielding to the other sources; epoll is level-triggered,
 * so whatever is left is read on the next iteration. */
#define MAX_READS_PER_WAKEUP 64

/* No IN_MODIFY: a writer pausing between write() calls would otherwise be taken as
 * done after each pause. IN_CLOSE_WRITE says "the writer is done"; renames, deletes,
 * links and attribute changes are complete when they happen. */
#define WATCH_MASK                                                                          \
        (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_CREATE | \
         IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct wdir {
        int wd;
        unsigned depth; /* 0 for the root */
        char *path;
};

struct dv_watch {
        sd_event *event;
        sd_event_source *io;
        sd_event_source *timer;      /* debounce */
        sd_event_source *poll_timer; /* looks for a missing root */
        int fd;
        char *root;
        bool root_is_link; /* the root is watched through a symlink ... */
        dev_t root_dev;    /* ... whose target was this when the watch was added */
        ino_t root_ino;
        uint64_t debounce_usec, max_delay_usec, poll_usec;
        dv_watch_cb cb;
        void *userdata;

        struct hashmap *by_wd;   /* "wd" -> struct wdir (owned) */
        struct hashmap *by_path; /* path -> the same struct wdir */

        struct hashmap *dirty; /* path -> (void *)1 */
        bool full;
        bool rewatch;         /* drop every watch and add them again (overflow) */
        uint64_t burst_start; /* CLOCK_MONOTONIC of the burst's first event; 0: none */
        uint64_t deadline;    /* when the debounce timer fires; 0: not armed */
};

static void wdir_free(void *p) {
        struct wdir *d = p;
        if (!d)
                return;
        free(d->path);
        free(d);
}

static void wd_key(int wd, char buf[static 16]) {
        snprintf(buf, 16, "%d", wd);
}

static struct wdir *wdir_by_wd(const struct dv_watch *w, int wd) {
        char key[16];
        wd_key(wd, key);
        return hashmap_get(w->by_wd, key);
}

/* Removes d from both maps and frees it; rm: also ask the kernel to drop the watch
 * (not when the kernel already did, IN_IGNORED). */
static void wdir_forget(struct dv_watch *w, struct wdir *d, bool rm) {
        char key[16];
        wd_key(d->wd, key);
        hashmap_remove(w->by_wd, key);
        if (hashmap_get(w->by_path, d->path) == d)
                hashmap_remove(w->by_path, d->path);
        if (rm)
                (void)inotify_rm_watch(w->fd, d->wd); /* EINVAL when already gone: fine */
        wdir_free(d);
}

static bool path_is_at_or_under(const char *path, const char *dir) {
        size_t l = strlen(dir);
        while (l > 1 && dir[l - 1] == '/')
                l--;
        return strncmp(path, dir, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

/* Drops the watches of dir and of everything below it. */
static void drop_tree(struct dv_watch *w, const char *dir) {
        const char *key;
        void *v;
        for (size_t i = 0; hashmap_iter(w->by_path, &i, &key, &v);)
                if (path_is_at_or_under(key, dir))
                        wdir_forget(w, v, true);
}

static void drop_all(struct dv_watch *w) {
        const char *key;
        void *v;
        for (size_t i = 0; hashmap_iter(w->by_wd, &i, &key, &v);)
                wdir_forget(w, v, true);
}

static void mark_dirty(struct dv_watch *w, const char *path) {
        if (!w->dirty && !(w->dirty = hashmap_new())) {
                w->full = true; /* cannot remember which: rescan everything */
                return;
        }
        if (hashmap_get(w->dirty, path))
                return;
        if (hashmap_put(w->dirty, path, (void *)1, NULL) < 0)
                w->full = true;
}

/* Adds (or refreshes) the watch of one directory. */
static int add_one(struct dv_watch *w, const char *path, unsigned depth) {
        /* Below the root, symlinks are never followed (the loader does not follow
         * symlinked directories either); the root may be one, as configured. */
        uint32_t mask = WATCH_MASK | (depth > 0 ? IN_DONT_FOLLOW : 0);
        int wd = inotify_add_watch(w->fd, path, mask);
        if (wd < 0)
                return -errno;

        struct wdir *old = hashmap_get(w->by_path, path);
        if (old && old->wd != wd)
                wdir_forget(w, old, true); /* another inode used to be at this path */

        struct wdir *d = wdir_by_wd(w, wd);
        if (d) {
                /* The same inode seen again: it was renamed, or this is a refresh. */
                d->depth = depth;
                if (!streq(d->path, path)) {
                        char *p = strdup(path);
                        if (!p)
                                return -ENOMEM;
                        if (hashmap_get(w->by_path, d->path) == d)
                                hashmap_remove(w->by_path, d->path);
                        free(d->path);
                        d->path = p;
                        if (hashmap_put(w->by_path, d->path, d, NULL) < 0)
                                return -ENOMEM;
                }
                return 0;
        }

        d = calloc(1, sizeof(*d));
        if (!d || !(d->path = strdup(path))) {
                wdir_free(d);
                (void)inotify_rm_watch(w->fd, wd);
                return -ENOMEM;
        }
        d->wd = wd;
        d->depth = depth;
        char key[16];
        wd_key(wd, key);
        int r = hashmap_put(w->by_wd, key, d, NULL);
        if (r < 0) {
                wdir_free(d);
                (void)inotify_rm_watch(w->fd, wd);
                return r;
        }
        r = hashmap_put(w->by_path, d->path, d, NULL);
        if (r < 0) {
                wdir_forget(w, d, true);
                return r;
        }
        return 0;
}

static bool ignorable_add_error(int r) {
        /* The directory went away or was replaced by something else meanwhile: the
         * event that says so is in the queue. */
        return r == -ENOENT || r == -ENOTDIR || r == -ELOOP;
}

/* Watches path and its subdirectories down to DV_WATCH_MAX_DEPTH. The watch comes
 * before the listing, so an entry created meanwhile is either listed or an event.
 * mark: the directories are new to us, and what happened in them before their watch
 * existed is lost, so they are reported. */
static int add_tree(struct dv_watch *w, const char *path, unsigned depth, bool mark) {
        int r = add_one(w, path, depth);
        if (r < 0)
                return r;
        if (mark)
                mark_dirty(w, path);
        if (depth >= DV_WATCH_MAX_DEPTH)
                return 0;

        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (depth > 0 ? O_NOFOLLOW : 0));
        if (fd < 0)
                return ignorable_add_error(-errno) ? 0 : -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return r;
        }
        struct dirent *de;
        while ((de = readdir(dir))) {
                /* Hidden directories are never read by the loader (docs/watcher.md):
                 * no watch; events on their names still count in this directory. */
                if (de->d_name[0] == '.')
                        continue;
                if (de->d_type == DT_UNKNOWN) {
                        struct stat st;
                        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISDIR(st.st_mode))
                                continue;
                } else if (de->d_type != DT_DIR)
                        continue;
                _cleanup_free_ char *child = path_join(path, de->d_name);
                if (!child) {
                        w->full = true;
                        continue;
                }
                r = add_tree(w, child, depth + 1, mark);
                if (r < 0 && !ignorable_add_error(r)) {
                        log_debug("cannot watch %s: %s", child, strerror(-r));
                        w->full = true; /* it stays unwatched: at least rescan now */
                }
        }
        closedir(dir);
        return 0;
}

static void start_root_poll(struct dv_watch *w) {
        uint64_t now;
        if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        (void)sd_event_source_set_time(w->poll_timer, now + w->poll_usec);
        (void)sd_event_source_set_enabled(w->poll_timer, SD_EVENT_ONESHOT);
}

/* Watches the root tree from scratch; when the root is not there, polls for it.
 * Returns whether the root is watched. */
static bool watch_root(struct dv_watch *w, bool mark) {
        /* A symlinked root (desired_dir -> a release directory) can be pointed
         * elsewhere by a rename in its parent, which is not watched: the target is
         * compared on the poll timer. Taken before the watch, so a swap in between
         * shows as a difference at the next look, never as a missed one. */
        struct stat lst, st;
        w->root_is_link =
                lstat(w->root, &lst) >= 0 && S_ISLNK(lst.st_mode) && stat(w->root, &st) >= 0;
        if (w->root_is_link) {
                w->root_dev = st.st_dev;
                w->root_ino = st.st_ino;
        }
        int r = add_tree(w, w->root, 0, mark);
        if (r >= 0) {
                if (w->root_is_link)
                        start_root_poll(w);
                else
                        (void)sd_event_source_set_enabled(w->poll_timer, SD_EVENT_OFF);
                return true;
        }
        if (!ignorable_add_error(r) && r != -EACCES) {
                log_debug("cannot watch %s: %s", w->root, strerror(-r));
                w->full = true;
        }
        start_root_poll(w);
        return false;
}

/* Something happened at `now`. The first strong event of a quiet time fires at once;
 * a strong event within a burst (re)starts the quiet period; a weak one
 * (a regular file just created: its writer is still writing, IN_CLOSE_WRITE follows)
 * only makes sure the burst is reported by its max_delay bound. */
static void note_event(struct dv_watch *w, bool strong) {
        uint64_t now;
        if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0)
                now = 1;
        bool lone = w->burst_start == 0;
        if (lone)
                w->burst_start = now;
        uint64_t cap = w->burst_start + w->max_delay_usec;
        uint64_t deadline;
        if (strong && lone)
                deadline = now; /* a lone rename is acted on at once; what follows in
                                 * the same read, or before the pass, is a burst */
        else if (strong)
                deadline = MIN(now + w->debounce_usec, cap);
        else
                deadline = w->deadline ? w->deadline : cap;
        if (deadline == w->deadline)
                return;
        w->deadline = deadline;
        (void)sd_event_source_set_time(w->timer, deadline);
        (void)sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

/* A new name that is a regular file with one link is being written by someone. */
static bool is_file_being_written(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join(dir, name);
        struct stat st;
        return p && lstat(p, &st) >= 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
}

/* The kernel dropped the watch of d: directory removed, or its filesystem unmounted. */
static void handle_ignored(struct dv_watch *w, struct wdir *d) {
        _cleanup_free_ char *path = strdup(d->path);
        unsigned depth = d->depth;
        wdir_forget(w, d, false);
        if (!path) {
                w->full = true;
                return;
        }
        if (depth == 0) {
                /* Removed, unmounted, or the target of a symlinked root removed: look
                 * again at whatever the root path names now, or poll for it. */
                drop_all(w);
                mark_dirty(w, w->root);
                (void)watch_root(w, true);
                return;
        }
        struct stat st;
        if (lstat(path, &st) >= 0 && S_ISDIR(st.st_mode)) {
                /* Something is at that path again (the filesystem beneath a mount
                 * point, or a directory re-created at once): watch it. */
                int r = add_tree(w, path, depth, true);
                if (r < 0 && !ignorable_add_error(r))
                        w->full = true;
        }
}

static void handle_event(struct dv_watch *w, const struct inotify_event *ev) {
        if (ev->mask & IN_Q_OVERFLOW) {
                /* The kernel dropped events (fs.inotify.max_queued_events): nothing
                 * they said is known, so everything is looked at again. */
                log_notice("inotify queue overflow on %s: events were lost; rescanning everything",
                           w->root);
                w->full = true;
                w->rewatch = true;
                note_event(w, true);
                return;
        }
        struct wdir *d = wdir_by_wd(w, ev->wd);
        if (!d)
                return; /* a watch already dropped; its events still in the queue */

        if (ev->mask & IN_IGNORED) {
                handle_ignored(w, d);
                note_event(w, true);
                return;
        }

        if (ev->len == 0 || ev->name[0] == '\0') {
                /* About the watched directory itself. */
                if (ev->mask & IN_ATTRIB) {
                        /* Its mode or owner matters to the trust check. */
                        mark_dirty(w, d->path);
                        note_event(w, true);
                } else if ((ev->mask & IN_MOVE_SELF) && d->depth == 0) {
                        /* The root was renamed away: its path means something else now.
                         * A subdirectory's rename is handled in its parent. */
                        drop_all(w);
                        mark_dirty(w, w->root);
                        (void)watch_root(w, true);
                        note_event(w, true);
                }
                /* IN_DELETE_SELF and IN_UNMOUNT: IN_IGNORED follows. */
                return;
        }

        /* Any event in a watched directory, on an ignored name too, makes it dirty:
         * the loader's filters decide what the names mean. */
        bool strong = true;
        if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR) &&
            is_file_being_written(d->path, ev->name))
                strong = false;
        mark_dirty(w, d->path);

        if (ev->mask & IN_ISDIR) {
                _cleanup_free_ char *child = path_join(d->path, ev->name);
                if (!child) {
                        w->full = true;
                } else {
                        if (ev->mask & (IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_MOVED_TO))
                                drop_tree(w, child); /* gone, or stale entries of what was there */
                        if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->name[0] != '.' &&
                            d->depth < DV_WATCH_MAX_DEPTH) {
                                int r = add_tree(w, child, d->depth + 1, true);
                                if (r < 0 && !ignorable_add_error(r)) {
                                        log_debug("cannot watch %s: %s", child, strerror(-r));
                                        w->full = true;
                                }
                        }
                }
        }
        note_event(w, strong);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s;
        (void)revents;
        struct dv_watch *w = userdata;
        /* Room for many events per read; each is at most sizeof + NAME_MAX + 1. */
        union {
                struct inotify_event ev;
                char bytes[64 * 1024];
        } buf;

        for (unsigned n = 0; n < MAX_READS_PER_WAKEUP; n++) {
                ssize_t l = read(fd, buf.bytes, sizeof(buf.bytes));
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_debug("reading inotify events failed: %m");
                        break;
                }
                if (l == 0)
                        break;
                for (char *p = buf.bytes; p < buf.bytes + l;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        if ((size_t)(buf.bytes + l - p) < sizeof(*ev) ||
                            (size_t)(buf.bytes + l - p) < sizeof(*ev) + ev->len)
                                break; /* cannot happen: the kernel returns whole events */
                        handle_event(w, ev);
                        p += sizeof(*ev) + ev->len;
                }
        }

        if (w->rewatch) {
                /* After an overflow, creations, renames and IN_IGNORED may be lost:
                 * the map cannot be trusted. Start again from the root. */
                w->rewatch = false;
                drop_all(w);
                mark_dirty(w, w->root);
                (void)watch_root(w, false);
        }
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s;
        (void)usec;
        struct dv_watch *w = userdata;

        bool full = w->full;
        _cleanup_strv_free_ char **dirs = NULL;
        const char *key;
        for (size_t i = 0; hashmap_iter(w->dirty, &i, &key, NULL);)
                if (strv_push(&dirs, key) < 0) {
                        full = true;
                        break;
                }
        if (full && !strv_contains(dirs, w->root) && strv_push(&dirs, w->root) < 0) {
                /* Out of memory: a full rescan needs no list. */
                strv_free(dirs);
                dirs = NULL;
        }
        if (dirs)
                qsort(dirs, strv_length(dirs), sizeof(char *), cmp_str);

        hashmap_free(w->dirty, NULL);
        w->dirty = NULL; /* made again by the next mark_dirty() */
        w->full = false;
        w->burst_start = 0;
        w->deadline = 0;
        if (!dirs && !full)
                return 0; /* only watches came and went: nothing to look at */

        char *const none[] = {NULL};
        /* The callback may free w: nothing below touches it. */
        w->cb(w, full, dirs ? dirs : none, w->userdata);
        return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s;
        (void)usec;
        struct dv_watch *w = userdata;
        if (hashmap_get(w->by_path, w->root)) {
                struct stat st;
                if (!w->root_is_link)
                        return 0;
                if (stat(w->root, &st) >= 0 && st.st_dev == w->root_dev &&
                    st.st_ino == w->root_ino) {
                        start_root_poll(w);
                        return 0;
                }
                /* The symlink points elsewhere now, or nowhere: what is watched is not
                 * the root. Reported whether or not the new target can be watched. */
                drop_all(w);
                mark_dirty(w, w->root);
                (void)watch_root(w, true);
                note_event(w, true);
                return 0;
        }
        /* The root is back (or new): whatever it holds now is news (marked by add_tree). */
        if (watch_root(w, true))
                note_event(w, true);
        return 0;
}

int dv_watch_new(sd_event *e, const char *root, uint64_t debounce_usec, uint64_t max_delay_usec,
                 dv_watch_cb cb, void *userdata, struct dv_watch **ret) {
        if (!e || !root || !*root || !cb || !ret)
                return -EINVAL;

        struct dv_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->event = sd_event_ref(e);
        w->debounce_usec = debounce_usec;
        w->max_delay_usec = MAX(max_delay_usec, debounce_usec);
        w->poll_usec = ROOT_POLL_USEC;
        w->cb = cb;
        w->userdata = userdata;

        int r = -ENOMEM;
        if (root[0] == '/')
                w->root = strdup(root);
        else {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                w->root = cwd ? path_make_absolute(root, cwd) : NULL;
        }
        w->by_wd = hashmap_new();
        w->by_path = hashmap_new();
        if (!w->root || !w->by_wd || !w->by_path)
                goto fail;

        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_io, w);
        if (r < 0)
                goto fail;
        /* Accuracy 1 us: sd-event's default (250 ms) would defeat the debounce. */
        r = sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, w);
        if (r < 0)
                goto fail;
        r = sd_event_add_time(e, &w->poll_timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_poll, w);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(w->poll_timer, SD_EVENT_OFF);
        (void)sd_event_source_set_description(w->io, "dv-watch-inotify");
        (void)sd_event_source_set_description(w->timer, "dv-watch-debounce");
        (void)sd_event_source_set_description(w->poll_timer, "dv-watch-root-poll");

        /* Nothing is reported for what is there now: the caller starts with a full pass. */
        (void)watch_root(w, false);
        w->full = false;

        *ret = w;
        return 0;
fail:
        dv_watch_free(w);
        return r;
}

void dv_watch_free(struct dv_watch *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        sd_event_source_disable_unref(w->poll_timer);
        hashmap_free(w->by_wd, wdir_free);
        hashmap_free(w->by_path, NULL);
        hashmap_free(w->dirty, NULL);
        if (w->fd >= 0)
                close(w->fd);
        sd_event_unref(w->event);
        free(w->root);
        free(w);
}

void dv_watch_set_debounce(struct dv_watch *w, uint64_t usec) {
        w->debounce_usec = usec;
}

void dv_watch_set_poll_interval(struct dv_watch *w, uint64_t usec) {
        if (!w || usec == 0)
                return;
        w->poll_usec = usec;
        int enabled = SD_EVENT_OFF;
        if (sd_event_source_get_enabled(w->poll_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                start_root_poll(w); /* a look already planned comes at the new interval */
}

unsigned dv_watch_count(const struct dv_watch *w) {
        return w ? (unsigned)hashmap_size(w->by_wd) : 0;
}
