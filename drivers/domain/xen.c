/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Xen domain driver of drivers/domain/xen.h: a cache of the domains in xenstore kept
 * fresh by watches, and the life cycle through xl run with the command runner. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#include "drivers/cmd.h"
#include "drivers/domain/xen-cfg.h"
#include "drivers/domain/xen.h"
#include "model/object.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

#define DEFAULT_XL      "/usr/sbin/xl"
#define DEFAULT_RUN_DIR "/run/declvirt"
#define NOT_AVAILABLE   "Xen is not available on this host"

/* A xenstored that comes up later is found within this. */
#define RETRY_USEC (2 * USEC_PER_SEC)
/* Without watch events the cache is read again at most this often. */
#define REFRESH_USEC (1 * USEC_PER_SEC)
#define CREATE_USEC  (60 * USEC_PER_SEC)
#define DESTROY_USEC (30 * USEC_PER_SEC)
/* After xl returns, the domain's entries appear (create) or go (destroy) at once with
 * libxl; a little slack for a loaded host. */
#define APPEAR_USEC (5 * USEC_PER_SEC)
#define VANISH_USEC (10 * USEC_PER_SEC)
#define POLL_USEC   (50 * USEC_PER_MSEC)
#define MAX_DOMID   0x7FEF /* DOMID_FIRST_RESERVED - 1 */
#define UUID_LEN    36

/* ---- state --------------------------------------------------------------------------------- */

/* One domain as xenstore shows it. */
struct xdom {
        int domid;
        char *name;
        char *uuid; /* from /vm/UUID/uuid (or the /vm path): NULL when not written yet */
};

/* What this process knows of a domain name beyond xenstore. */
struct xen_entry {
        bool busy; /* a start or stop runs: observe only reads */
        int domid; /* ours, last seen running; 0 */
};

/* Everything below is guarded by `lock`, xenstore requests included: libxenstore's
 * requests are serialised per handle anyway, and its xs_talkv swaps the process's
 * SIGPIPE disposition around each request, which is only safe one at a time. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int cfg_enabled = -1;
static char *cfg_xl, *cfg_run_dir;

static struct xs_handle *xsh;
static int conn_errno;         /* why the last connection attempt failed */
static uint64_t conn_next_try; /* CLOCK_MONOTONIC: no attempt before */

static struct xdom *doms;
static size_t n_doms;
static bool cache_valid, cache_stale;
static uint64_t cache_at;

static struct hashmap *recs;
static int ev_epoll = -1; /* stable across reconnections: the engine adds it once */

static void doms_clear_locked(void) {
        for (size_t i = 0; i < n_doms; i++) {
                free(doms[i].name);
                free(doms[i].uuid);
        }
        free(doms);
        doms = NULL;
        n_doms = 0;
        cache_valid = false;
}

static void conn_close_locked(void) {
        if (xsh)
                xs_close(xsh); /* its watch pipe leaves ev_epoll as it is closed */
        xsh = NULL;
        doms_clear_locked();
}

void xen_driver_set_config(const struct dom_driver_config *c) {
        pthread_mutex_lock(&lock);
        free(cfg_xl);
        free(cfg_run_dir);
        cfg_enabled = c ? c->xen_enabled : -1;
        cfg_xl = strdup(c && c->xl ? c->xl : DEFAULT_XL);
        cfg_run_dir = strdup(c && c->run_dir ? c->run_dir : DEFAULT_RUN_DIR);
        conn_close_locked();
        conn_next_try = 0;
        pthread_mutex_unlock(&lock);
}

static struct xen_entry *entry_get_locked(const char *name) {
        if (!recs && !(recs = hashmap_new()))
                return NULL;
        struct xen_entry *r = hashmap_get(recs, name);
        if (!r) {
                r = calloc(1, sizeof(*r));
                if (r && hashmap_put(recs, name, r, NULL) < 0) {
                        free(r);
                        r = NULL;
                }
        }
        return r;
}

/* ---- the xenstore connection -------------------------------------------------------------- */

static int epoll_ensure_locked(void) {
        if (ev_epoll < 0) {
                ev_epoll = epoll_create1(EPOLL_CLOEXEC);
                if (ev_epoll < 0)
                        return -errno;
        }
        return ev_epoll;
}

/* The open handle, connecting (at most every RETRY_USEC) when there is none. xs_open(0):
 * libxenstore 4.17 ignores XS_OPEN_SOCKETONLY and tries xenstored's socket
 * (XENSTORED_PATH, else /run/xenstored/socket), then the xenbus device (XENSTORED_PATH
 * again, else /dev/xen/xenbus or /proc/xen/xenbus): the device is what a dom0 with a
 * xenstore stub domain has, and it is absent on hosts without Xen. */
static struct xs_handle *conn_get_locked(void) {
        if (xsh || cfg_enabled == 0)
                return xsh;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (conn_next_try && now < conn_next_try)
                return NULL;
        conn_next_try = now + RETRY_USEC;
        struct xs_handle *h = xs_open(0);
        if (!h) {
                conn_errno = errno ? errno : EIO;
                log_debug("xenstore: cannot connect: %s", strerror(conn_errno));
                return NULL;
        }
        /* The specials say a domain was introduced or released; /local/domain sees the
         * entries written and removed around both (libxl writes them before the
         * introduction and removes them around the release). */
        if (!xs_watch(h, "@introduceDomain", "dv") || !xs_watch(h, "@releaseDomain", "dv") ||
            !xs_watch(h, "/local/domain", "dv")) {
                conn_errno = errno ? errno : EIO;
                log_debug("xenstore: cannot watch: %s", strerror(conn_errno));
                xs_close(h);
                return NULL;
        }
        int fd = xs_fileno(h);
        if (epoll_ensure_locked() >= 0 && fd >= 0) {
                struct epoll_event ev = {.events = EPOLLIN};
                if (epoll_ctl(ev_epoll, EPOLL_CTL_ADD, fd, &ev) < 0)
                        log_debug("xenstore: cannot add the watch fd: %m");
        }
        xsh = h;
        conn_errno = 0;
        cache_stale = true;
        log_debug("xenstore: connected");
        return xsh;
}

/* A request failed: a dead connection is dropped (and tried again later). libxenstore
 * closes its socket on a protocol or I/O error and answers EBADF or EINVAL from then on. */
static void conn_failed_locked(int e) {
        if (e == ENOENT || e == EACCES || e == EEXIST || e == E2BIG || e == ENOMEM)
                return; /* an answer, not a broken connection */
        log_debug("xenstore: request failed (%s): reconnecting", strerror(e));
        conn_close_locked();
        conn_errno = e;
}

static char *xs_get_locked(const char *path) {
        unsigned len = 0;
        char *v = xs_read(xsh, XBT_NULL, path, &len);
        if (!v)
                conn_failed_locked(errno);
        return v;
}

static bool uuid_plausible(const char *s) {
        if (!s || strlen(s) != UUID_LEN)
                return false;
        for (size_t i = 0; i < UUID_LEN; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
                        return false;
        }
        return true;
}

static void lower(char *s) {
        for (; s && *s; s++)
                if (*s >= 'A' && *s <= 'F')
                        *s = (char)(*s - 'A' + 'a');
}

/* Reads the list of domains: /local/domain/N/name, and the UUID from the /vm entry that
 * /local/domain/N/vm names (libxl: "/vm/UUID", holding uuid and name). Domain-0 is left
 * out. -errno when xenstore cannot be read (the cache is then empty and invalid). */
static int refresh_locked(void) {
        if (!conn_get_locked())
                return -ENODEV;
        unsigned n = 0;
        char **ids = xs_directory(xsh, XBT_NULL, "/local/domain", &n);
        if (!ids) {
                int e = errno;
                if (e != ENOENT) {
                        conn_failed_locked(e);
                        return -(e ? e : EIO);
                }
                n = 0;
        }
        struct xdom *list = calloc(n + 1, sizeof(*list));
        size_t k = 0;
        int r = list ? 0 : -ENOMEM;
        for (unsigned i = 0; r == 0 && i < n; i++) {
                uint64_t d;
                if (parse_u64_range(ids[i], 1, MAX_DOMID, &d) < 0)
                        continue;
                char p[96];
                snprintf(p, sizeof(p), "/local/domain/%" PRIu64 "/name", d);
                char *name = xs_get_locked(p);
                if (!xsh) {
                        free(name);
                        r = -EIO;
                        break;
                }
                if (!name)
                        continue; /* being built or torn down: not a domain to us yet */
                snprintf(p, sizeof(p), "/local/domain/%" PRIu64 "/vm", d);
                _cleanup_free_ char *vm = xs_get_locked(p);
                char *uuid = NULL;
                if (vm && strncmp(vm, "/vm/", 4) == 0 && strlen(vm) < 512) {
                        _cleanup_free_ char *up = strdupf("%s/uuid", vm);
                        uuid = up ? xs_get_locked(up) : NULL;
                        if (!uuid_plausible(uuid)) {
                                free(uuid);
                                uuid = uuid_plausible(vm + 4) ? strdup(vm + 4) : NULL;
                        }
                        lower(uuid);
                }
                if (!xsh) {
                        free(name);
                        free(uuid);
                        r = -EIO;
                        break;
                }
                list[k++] = (struct xdom){.domid = (int)d, .name = name, .uuid = uuid};
        }
        free(ids);
        if (r < 0) {
                for (size_t i = 0; i < k; i++) {
                        free(list[i].name);
                        free(list[i].uuid);
                }
                free(list);
                return r;
        }
        doms_clear_locked();
        doms = list;
        n_doms = k;
        cache_valid = true;
        cache_stale = false;
        cache_at = now_usec(CLOCK_MONOTONIC);
        return 0;
}

static int refresh_if_due_locked(void) {
        if (cache_valid && xsh && !cache_stale &&
            now_usec(CLOCK_MONOTONIC) - cache_at < REFRESH_USEC)
                return 0;
        return refresh_locked();
}

static const struct xdom *find_locked(const char *name) {
        for (size_t i = 0; i < n_doms; i++)
                if (streq(doms[i].name, name))
                        return &doms[i];
        return NULL;
}

/* ---- available -------------------------------------------------------------------------- */

static int xen_available(struct dv_error *err) {
        pthread_mutex_lock(&lock);
        int enabled = cfg_enabled;
        bool ok = enabled != 0 && conn_get_locked() != NULL;
        int e = conn_errno;
        pthread_mutex_unlock(&lock);
        if (enabled == 0)
                return dv_error_add(err, -ENODEV, 0, "Xen is disabled in agent.conf (xen.enabled)");
        if (ok)
                return 0;
        if (enabled > 0) {
                const char *path = getenv("XENSTORED_PATH");
                return dv_error_add(err, -ENODEV, 0,
                                    NOT_AVAILABLE ". xen.enabled is yes but xenstore (%s) cannot "
                                                  "be reached: %s",
                                    path ? path : xs_daemon_socket(), strerror(e ? e : EIO));
        }
        return dv_error_add(err, -ENODEV, 0, NOT_AVAILABLE);
}

/* ---- files ---------------------------------------------------------------------------------- */

struct paths {
        char *name, *dir, *cfg, *domid, *xl;
};

static void paths_done(struct paths *p) {
        free(p->name);
        free(p->dir);
        free(p->cfg);
        free(p->domid);
        free(p->xl);
        *p = (struct paths){0};
}

static int paths_get(const struct domain_def *def, struct paths *p, struct dv_error *err) {
        *p = (struct paths){0};
        const char *name = def ? def->name : NULL;
        const char *problem = dv_name_problem(DV_KIND_DOMAIN, name);
        if (problem)
                return dv_error_add(err, -EINVAL, 0, "invalid domain name '%s': %s", strna(name),
                                    problem);
        pthread_mutex_lock(&lock);
        p->dir = path_join(cfg_run_dir ? cfg_run_dir : DEFAULT_RUN_DIR, "xen");
        p->xl = strdup(cfg_xl ? cfg_xl : DEFAULT_XL);
        pthread_mutex_unlock(&lock);
        p->name = strdup(name);
        if (!p->dir || !p->xl || !p->name || !(p->cfg = strdupf("%s/%s.cfg", p->dir, name)) ||
            !(p->domid = strdupf("%s/%s.domid", p->dir, name))) {
                paths_done(p);
                return dv_error_oom(err);
        }
        return 0;
}

/* RUN_DIR/xen/NAME.domid: "DOMID UUID\n", written when a start succeeds: the UUID is what
 * makes a domain of that name ours (domids are not reused at once, UUIDs never). */
static int record_read(const struct paths *p, int *ret_domid, char ret_uuid[static UUID_LEN + 1]) {
        _cleanup_free_ char *text = NULL;
        int r = read_full_file(p->domid, 256, &text, NULL);
        if (r < 0)
                return r;
        char *sp = strchr(text, ' ');
        if (!sp)
                return -EBADMSG;
        *sp = '\0';
        char *u = sp + 1;
        u[strcspn(u, "\n")] = '\0';
        uint64_t d;
        if (parse_u64_range(text, 1, MAX_DOMID, &d) < 0 || !uuid_plausible(u))
                return -EBADMSG;
        *ret_domid = (int)d;
        memcpy(ret_uuid, u, UUID_LEN + 1);
        lower(ret_uuid);
        return 0;
}

static int record_write(const struct paths *p, int domid, const char *uuid) {
        _cleanup_free_ char *text = strdupf("%d %s\n", domid, uuid);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(p->domid, text, strlen(text), 0600);
}

static void files_remove(const struct paths *p) {
        (void)unlink(p->cfg);
        (void)unlink(p->domid);
}

/* The UUID that makes a domain of this name ours: the written one, else the one recorded
 * at start. NULL when neither (then no running domain of that name is ours). */
static const char *expected_uuid(const struct domain_def *def, bool have_record,
                                 const char *recorded) {
        if (def->uuid)
                return def->uuid;
        return have_record ? recorded : NULL;
}

static bool uuid_eq(const char *a, const char *b) {
        return a && b && strcasecmp(a, b) == 0;
}

/* ---- observe -------------------------------------------------------------------------------- */

static int xen_observe(const struct domain_def *def, struct dom_status *ret, struct dv_error *err) {
        *ret = (struct dom_status){0};
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        int recorded_domid = 0;
        char recorded_uuid[UUID_LEN + 1] = "";
        bool have_record = record_read(&p, &recorded_domid, recorded_uuid) == 0;

        pthread_mutex_lock(&lock);
        struct xen_entry *ent = entry_get_locked(p.name);
        if (!ent) {
                pthread_mutex_unlock(&lock);
                return dv_error_oom(err);
        }
        r = refresh_if_due_locked();
        if (r < 0) {
                pthread_mutex_unlock(&lock);
                /* Not SHUTOFF: a domain may well run while xenstore cannot be read. */
                return dv_error_add(err, -ENODEV, 0, NOT_AVAILABLE " (xenstore: %s)", strerror(-r));
        }
        const struct xdom *x = find_locked(p.name);
        bool busy = ent->busy;
        int prev = ent->domid;
        int domid = x ? x->domid : 0;
        _cleanup_free_ char *uuid = x && x->uuid ? strdup(x->uuid) : NULL;
        bool ours = false;
        if (x) {
                const char *want = expected_uuid(def, have_record, recorded_uuid);
                ours = uuid_eq(want, uuid);
                if (ours && !busy)
                        ent->domid = domid;
        } else if (!busy)
                ent->domid = 0;
        pthread_mutex_unlock(&lock);

        if (x && (ours || busy)) {
                /* Running; a start in progress has not recorded it yet. A new domid for the
                 * same UUID (the toolstack restarted it, on_reboot='restart') is recorded. */
                ret->state = DOM_RUNNING;
                ret->id = domid;
                if (ours && !busy && (!have_record || recorded_domid != domid) &&
                    (mkdir_p(p.dir, 0700) < 0 || record_write(&p, domid, uuid) < 0))
                        log_debug("cannot write %s", p.domid);
                return 0;
        }
        if (x) {
                ret->state = DOM_BROKEN;
                ret->reason = strdupf("a Xen domain (domid %d) not started by declvirt runs %s",
                                      domid, p.name);
                return ret->reason ? 0 : dv_error_oom(err);
        }
        ret->state = DOM_SHUTOFF;
        if (busy)
                return 0;
        /* Gone without a stop of ours: xenstore keeps nothing of a released domain, so the
         * guest's own power-off and a crash look the same: not a clean exit. */
        int gone = prev > 0 ? prev : have_record ? recorded_domid : 0;
        if (gone > 0) {
                ret->exited = true;
                ret->exit_clean = false;
                ret->exit_reason = strdupf("the Xen domain (domid %d) is gone: it crashed or was "
                                           "shut down from inside or by another tool (xenstore "
                                           "does not say which)",
                                           gone);
                if (prev == 0)
                        ret->reason =
                                strdupf("stale domid file (domid %d, domain gone) removed", gone);
        }
        if (have_record || access(p.cfg, F_OK) == 0)
                files_remove(&p);
        return 0;
}

/* ---- events ---------------------------------------------------------------------------------- */

static int xen_events_fd(void) {
        pthread_mutex_lock(&lock);
        int fd = epoll_ensure_locked();
        if (fd >= 0 && cfg_enabled != 0)
                (void)conn_get_locked(); /* so that the watch fd is in the set */
        pthread_mutex_unlock(&lock);
        return fd;
}

/* How many names differ between two lists: appeared, gone, or another domid. */
static int count_changes(const struct xdom *a, size_t na, const struct xdom *b, size_t nb) {
        int n = 0;
        for (size_t i = 0; i < na; i++) {
                bool same = false;
                for (size_t j = 0; j < nb && !same; j++)
                        same = streq(a[i].name, b[j].name) && a[i].domid == b[j].domid &&
                               streq_ptr(a[i].uuid, b[j].uuid);
                n += !same;
        }
        for (size_t j = 0; j < nb; j++) {
                bool found = false;
                for (size_t i = 0; i < na && !found; i++)
                        found = streq(a[i].name, b[j].name);
                n += !found;
        }
        return n;
}

/* A watch event whose path says something about the list of domains: the specials,
 * /local/domain itself, /local/domain/N and /local/domain/N/name, /vm... (the uuid). Deeper
 * paths (devices, memory, control) are PV driver traffic and are ignored. */
static bool event_relevant(const char *path) {
        if (path[0] == '@' || streq(path, "/local/domain"))
                return true;
        if (strncmp(path, "/local/domain/", 14) != 0)
                return false;
        const char *rest = path + 14;
        const char *slash = strchr(rest, '/');
        return !slash || streq(slash, "/name") || streq(slash, "/vm");
}

static int xen_events_dispatch(void) {
        pthread_mutex_lock(&lock);
        if (!xsh) {
                pthread_mutex_unlock(&lock);
                return 0;
        }
        bool relevant = false;
        for (;;) {
                char **ev = xs_check_watch(xsh);
                if (!ev) {
                        if (errno != EAGAIN)
                                conn_failed_locked(errno ? errno : EIO);
                        break;
                }
                relevant = relevant || event_relevant(ev[XS_WATCH_PATH]);
                free(ev);
        }
        int n = 0;
        if (relevant || !xsh) {
                struct xdom *old = doms;
                size_t n_old = n_doms;
                doms = NULL;
                n_doms = 0;
                cache_valid = false;
                int r = refresh_locked();
                n = count_changes(old, n_old, doms, n_doms);
                if (r < 0)
                        n = (int)MAX(n_old, (size_t)1); /* everything must be observed again */
                for (size_t i = 0; i < n_old; i++) {
                        free(old[i].name);
                        free(old[i].uuid);
                }
                free(old);
        }
        pthread_mutex_unlock(&lock);
        return n;
}

/* ---- start and stop ----------------------------------------------------------------------------
 */

static int record_begin(const char *name, struct dv_error *err) {
        pthread_mutex_lock(&lock);
        struct xen_entry *ent = entry_get_locked(name);
        int r = !ent ? -ENOMEM : ent->busy ? -EAGAIN : 0;
        if (r == 0)
                ent->busy = true;
        pthread_mutex_unlock(&lock);
        if (r == -ENOMEM)
                return dv_error_oom(err);
        if (r < 0)
                return dv_error_add(err, r, 0, "domain %s is being started or stopped", name);
        return 0;
}

static void record_end(const char *name, int domid) {
        pthread_mutex_lock(&lock);
        struct xen_entry *ent = entry_get_locked(name);
        if (ent) {
                ent->busy = false;
                ent->domid = domid;
        }
        pthread_mutex_unlock(&lock);
}

/* The domain called name as xenstore shows it now: its domid (0: none) and UUID. */
static int lookup(const char *name, int *ret_domid, char **ret_uuid, struct dv_error *err) {
        pthread_mutex_lock(&lock);
        int r = refresh_locked();
        const struct xdom *x = r < 0 ? NULL : find_locked(name);
        *ret_domid = x ? x->domid : 0;
        if (ret_uuid)
                *ret_uuid = x && x->uuid ? strdup(x->uuid) : NULL;
        pthread_mutex_unlock(&lock);
        if (r < 0)
                return dv_error_add(err, -ENODEV, 0, NOT_AVAILABLE " (xenstore: %s)", strerror(-r));
        return 0;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = {.tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_nsec = (long)(usec % USEC_PER_SEC * NSEC_PER_USEC)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Waits until the domain called name is there with uuid (present) or gone (!present).
 * Returns its domid (present) or 0; -ETIMEDOUT. */
static int wait_domain(const char *name, const char *uuid, bool present, uint64_t timeout_usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        for (;;) {
                int domid = 0;
                _cleanup_free_ char *u = NULL;
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                int r = lookup(name, &domid, &u, &e);
                if (r == 0 && present && domid > 0 && uuid_eq(u, uuid))
                        return domid;
                if (r == 0 && !present && domid == 0)
                        return 0;
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                sleep_usec(POLL_USEC);
        }
}

static int run_xl(const struct paths *p, const char *verb, const char *arg1, const char *arg2,
                  uint64_t timeout_usec, struct dv_error *err) {
        char *argv[] = {p->xl, (char *)verb, (char *)arg1, (char *)arg2, NULL};
        struct cmd_opts o = {.timeout_usec = timeout_usec};
        return cmd_run(argv, &o, NULL, err);
}

/* After a failed or timed-out create, a half-made domain of ours is destroyed: only one
 * with our UUID, never another of that name. */
static void destroy_leftover(const struct paths *p, const char *uuid) {
        int domid = 0;
        _cleanup_free_ char *u = NULL;
        _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
        if (lookup(p->name, &domid, &u, &e) == 0 && domid > 0 && uuid_eq(u, uuid)) {
                dv_error_clear(&e);
                if (run_xl(p, "destroy", p->name, NULL, DESTROY_USEC, &e) < 0)
                        log_debug("domain %s: %s", p->name, strna(dv_error_message(&e)));
        }
}

static int start_locked(const struct domain_def *def, const struct dom_start *a,
                        const struct paths *p, int *ret_domid, struct dv_error *err) {
        int r = xen_available(err);
        if (r < 0)
                return r;
        const char *uuid = a && a->uuid ? a->uuid : def->uuid;
        if (!uuid_plausible(uuid))
                return dv_error_add(err, -EINVAL, 0, "domain %s has no UUID to start it with",
                                    p->name);
        int domid = 0;
        _cleanup_free_ char *running = NULL;
        if ((r = lookup(p->name, &domid, &running, err)) < 0)
                return r;
        if (domid > 0) {
                if (uuid_eq(running, uuid)) {
                        *ret_domid = domid;
                        if (mkdir_p(p->dir, 0700) < 0 || record_write(p, domid, uuid) < 0)
                                log_debug("cannot write %s", p->domid);
                        return 0;
                }
                return dv_error_add(err, -EEXIST, 0,
                                    "a Xen domain (domid %d) not started by declvirt runs %s",
                                    domid, p->name);
        }

        struct xen_cfg_ctx ctx = {
                .uuid = uuid,
                .disk_paths = a ? a->disk_paths : NULL,
                .macs = a ? a->macs : NULL,
                .bridges = a ? a->bridges : NULL,
        };
        _cleanup_free_ char *text = NULL;
        if ((r = xen_cfg_build(def, &ctx, &text, err)) < 0)
                return r;
        if ((r = mkdir_p(p->dir, 0700)) < 0)
                return dv_error_add(err, r, 0, "cannot create %s: %s", p->dir, strerror(-r));
        if ((r = write_file_atomic(p->cfg, text, strlen(text), 0600)) < 0)
                return dv_error_add(err, r, 0, "cannot write %s: %s", p->cfg, strerror(-r));

        if ((r = run_xl(p, "create", p->cfg, NULL, CREATE_USEC, err)) < 0) {
                destroy_leftover(p, uuid);
                files_remove(p);
                return r;
        }
        domid = wait_domain(p->name, uuid, true, APPEAR_USEC);
        if (domid < 0) {
                destroy_leftover(p, uuid);
                files_remove(p);
                return dv_error_add(err, -ETIMEDOUT, 0,
                                    "xl create returned but domain %s did not appear in xenstore",
                                    p->name);
        }
        if ((r = record_write(p, domid, uuid)) < 0)
                log_debug("cannot write %s: %s", p->domid, strerror(-r));
        *ret_domid = domid;
        return 0;
}

static int xen_start(const struct domain_def *def, const struct dom_start *a,
                     struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        if ((r = record_begin(p.name, err)) < 0)
                return r;
        int domid = 0;
        r = start_locked(def, a, &p, &domid, err);
        record_end(p.name, r < 0 ? 0 : domid);
        return r;
}

static int stop_locked(const struct domain_def *def, const struct paths *p, uint64_t timeout_usec,
                       struct dv_error *err) {
        int domid = 0, recorded_domid = 0;
        char recorded_uuid[UUID_LEN + 1] = "";
        bool have_record = record_read(p, &recorded_domid, recorded_uuid) == 0;
        _cleanup_free_ char *uuid = NULL;
        int r = lookup(p->name, &domid, &uuid, err);
        if (r < 0)
                return r;
        if (domid == 0 || !uuid_eq(uuid, expected_uuid(def, have_record, recorded_uuid))) {
                /* Nothing of ours runs; a domain of that name that is not ours is left alone. */
                files_remove(p);
                return 0;
        }
        _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
        r = run_xl(p, "shutdown", "-w", p->name, MAX(timeout_usec, USEC_PER_SEC), &e);
        if (r < 0) {
                log_debug("domain %s: %s; destroying it", p->name, strna(dv_error_message(&e)));
                /* Still ours? xl shutdown may have ended it after all. */
                int now_domid = 0;
                _cleanup_free_ char *now_uuid = NULL;
                if ((r = lookup(p->name, &now_domid, &now_uuid, err)) < 0)
                        return r;
                if (now_domid > 0 && uuid_eq(now_uuid, uuid) &&
                    (r = run_xl(p, "destroy", p->name, NULL, DESTROY_USEC, err)) < 0)
                        return r;
        }
        if (wait_domain(p->name, uuid, false, VANISH_USEC) < 0)
                return dv_error_add(err, -ETIMEDOUT, 0,
                                    "Xen domain %s (domid %d) is still in xenstore after xl "
                                    "returned",
                                    p->name, domid);
        files_remove(p);
        return 0;
}

static int xen_stop(const struct domain_def *def, uint64_t timeout_usec, struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&lock);
        bool enabled = cfg_enabled != 0;
        pthread_mutex_unlock(&lock);
        if (!enabled)
                return 0; /* Xen disabled: nothing of ours can run */
        if ((r = record_begin(p.name, err)) < 0)
                return r;
        r = stop_locked(def, &p, timeout_usec, err);
        /* A stop asked by the agent is never an exit to report: the domid is forgotten. */
        record_end(p.name, 0);
        return r;
}

/* ---- the rest of the table --------------------------------------------------------------------
 */

int xen_vif_name(int domid, size_t index, char buf[static IFNAMSIZ]) {
        int n = snprintf(buf, IFNAMSIZ, "vif%d.%zu", domid, index);
        return n > 0 && n < IFNAMSIZ ? 0 : -EINVAL;
}

static int xen_iface_name(const struct domain_def *def, size_t index, char buf[static IFNAMSIZ]) {
        if (!def || index >= def->n_interfaces)
                return -ENOENT;
        const char *dev = def->interfaces[index].target_dev;
        if (dev && *dev) {
                if (strlen(dev) >= IFNAMSIZ)
                        return -EINVAL;
                memcpy(buf, dev, strlen(dev) + 1);
                return 0;
        }
        pthread_mutex_lock(&lock);
        struct xen_entry *ent = def->name ? entry_get_locked(def->name) : NULL;
        int domid = ent ? ent->domid : 0;
        pthread_mutex_unlock(&lock);
        if (domid <= 0)
                return -ENOENT;
        return xen_vif_name(domid, index, buf);
}

static int xen_native(const struct domain_def *def, const struct dom_start *a, FILE *f,
                      struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        /* Only the checks first: nothing is printed for a definition that cannot run. */
        if ((r = xen_cfg_check(def, err)) < 0)
                return r;
        fprintf(f, "# written to %s (0600), then:\n", p.cfg);
        fprintf(f, "#   %s create %s\n", p.xl, p.cfg);
        fprintf(f, "# stopped with: %s shutdown -w %s; %s destroy %s after shutdown-timeout\n",
                p.xl, p.name, p.xl, p.name);
        struct xen_cfg_ctx ctx = {
                .uuid = a ? a->uuid : NULL,
                .disk_paths = a ? a->disk_paths : NULL,
                .macs = a ? a->macs : NULL,
                .bridges = a ? a->bridges : NULL,
        };
        return xen_cfg_native(def, &ctx, f, err);
}

const struct domain_driver xen_domain_driver = {
        .name = "Xen",
        .available = xen_available,
        .observe = xen_observe,
        .start = xen_start,
        .stop = xen_stop,
        .iface_name = xen_iface_name,
        .events_fd = xen_events_fd,
        .events_dispatch = xen_events_dispatch,
        .native = xen_native,
        .check = xen_cfg_check,
};
