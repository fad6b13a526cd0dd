/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The iscsi-direct pool driver: libiscsi in user space, driven through its asynchronous
 * API with our own deadline, and a per-target cache so that observe never waits on the
 * network from the event loop. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "drivers/storage/iscsi-direct.h"
#include "drivers/storage/iscsi.h"
#include "model/object.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/time.h"

/* REPORT LUNS: 8 header bytes + 8 per LUN; 512 LUNs is more than any target we know. */
#define REPORT_LUNS_ALLOC (8 + 8 * 512)
#define INQUIRY_ALLOC     255
/* Cache entries of pools not observed for this long are dropped. */
#define CACHE_IDLE_USEC (3600ULL * 1000000)

/* ---- names ------------------------------------------------------------------------------ */

char *drv_iscsi_direct_vol_name(unsigned lun) {
        char *s = NULL;
        if (asprintf(&s, DRV_ISCSI_DIRECT_VOL_PREFIX "%u", lun) < 0)
                return NULL;
        return s;
}

int drv_iscsi_direct_parse_vol_name(const char *name, unsigned *ret) {
        size_t pl = strlen(DRV_ISCSI_DIRECT_VOL_PREFIX);
        uint64_t v;
        if (!name || strncmp(name, DRV_ISCSI_DIRECT_VOL_PREFIX, pl) != 0)
                return -EINVAL;
        /* LUNs of the flat and peripheral addressing methods fit 14 bits. */
        if (parse_u64_range(name + pl, 0, 16383, &v) < 0)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

char *drv_iscsi_direct_lun_path(const struct pool_def *def, unsigned lun) {
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        const char *target = drv_iscsi_target(def);
        char *s = NULL;
        if (!hp || !target)
                return NULL;
        /* libvirt's name for it, so that observed volume XML matches vol-dumpxml. */
        if (asprintf(&s, "ip-%s-iscsi-%s-lun-%u", hp, target, lun) < 0)
                return NULL;
        return s;
}

char *drv_iscsi_direct_cache_key(const struct pool_def *def) {
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        char *s = NULL;
        if (!hp || !drv_iscsi_target(def) || !def->source.initiator_iqn)
                return NULL;
        const struct pool_auth *a = &def->source.auth;
        if (asprintf(&s, "%s\n%s\n%s\n%s\n%s", hp, drv_iscsi_target(def), def->source.initiator_iqn,
                     def->source.has_auth ? strempty(a->username) : "",
                     def->source.has_auth ? strempty(drv_iscsi_secret_name(def)) : "") < 0)
                return NULL;
        return s;
}

void drv_iscsi_direct_result_done(struct drv_iscsi_direct_result *r) {
        if (!r)
                return;
        free(r->luns);
        *r = (struct drv_iscsi_direct_result){0};
}

/* ---- the probe -------------------------------------------------------------------------- */

/* What a probe needs, copied out of the definition so a thread can own it. */
struct probe_params {
        char *portal; /* HOST:PORT */
        char *target;
        char *initiator;
        char *username; /* NULL without <auth> */
        char *secret_name;
};

static void probe_params_done(struct probe_params *p) {
        free(p->portal);
        free(p->target);
        free(p->initiator);
        free(p->username);
        free(p->secret_name);
        *p = (struct probe_params){0};
}

static int probe_params_from_def(const struct pool_def *def, struct probe_params *p) {
        *p = (struct probe_params){0};
        const char *target = drv_iscsi_target(def);
        if (!target || !def->source.initiator_iqn || !def->source.host_name)
                return -EINVAL;
        p->portal = drv_iscsi_host_port(def);
        p->target = strdup(target);
        p->initiator = strdup(def->source.initiator_iqn);
        bool ok = p->portal && p->target && p->initiator;
        if (def->source.has_auth) {
                const char *sn = drv_iscsi_secret_name(def);
                p->username = def->source.auth.username ? strdup(def->source.auth.username) : NULL;
                p->secret_name = sn ? strdup(sn) : NULL;
                ok = ok && p->username && p->secret_name;
        }
        if (!ok) {
                probe_params_done(p);
                return -ENOMEM;
        }
        return 0;
}

struct waiter {
        bool done;
        int status;
        void *data;
};

static void on_done(struct iscsi_context *ctx, int status, void *command_data, void *priv) {
        (void)ctx;
        struct waiter *w = priv;
        w->done = true;
        w->status = status;
        w->data = command_data;
}

/* Serves the context until the callback has run or the deadline passed. libiscsi's own
 * timeouts are checked in iscsi_service(), which is why we wake at least every second.
 * sock_err (may be NULL) gets the socket's error when poll reports one: libiscsi's own
 * message for a refused connection does not say why. */
static int wait_for_sock(struct iscsi_context *ctx, struct waiter *w, uint64_t deadline,
                         int *sock_err) {
        while (!w->done) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = iscsi_get_fd(ctx),
                                   .events = (short)iscsi_which_events(ctx)};
                int ms = (int)MIN((deadline - now + 999) / 1000, (uint64_t)1000);
                int r = poll(&p, 1, ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0 && sock_err && (p.revents & (POLLERR | POLLHUP))) {
                        int e = 0;
                        socklen_t len = sizeof(e);
                        if (getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e > 0)
                                *sock_err = e;
                }
                if (iscsi_service(ctx, r > 0 ? p.revents : 0) < 0)
                        return w->done ? 0 : -EIO;
        }
        return 0;
}

static int wait_for(struct iscsi_context *ctx, struct waiter *w, uint64_t deadline) {
        return wait_for_sock(ctx, w, deadline, NULL);
}

static const char *ctx_error(struct iscsi_context *ctx) {
        const char *e = iscsi_get_error(ctx);
        return e && *e ? e : "unknown error";
}

/* One SCSI command; *ret is the finished task (caller frees), status checked by caller. */
static int run_task(struct iscsi_context *ctx, struct scsi_task *task, struct waiter *w,
                    uint64_t deadline, struct scsi_task **pending) {
        if (!task)
                return -ENOMEM;
        /* Until it finishes, the context owns the task: destroying the context on a
         * timeout cancels it, and we free it afterwards. */
        *pending = task;
        int r = wait_for(ctx, w, deadline);
        if (r < 0)
                return r;
        *pending = NULL;
        if (w->status == SCSI_STATUS_TIMEOUT) {
                if (w->data)
                        scsi_free_scsi_task(w->data);
                return -ETIMEDOUT;
        }
        return 0;
}

static int cmp_lun(const void *a, const void *b) {
        unsigned x = ((const struct drv_iscsi_direct_lun *)a)->lun;
        unsigned y = ((const struct drv_iscsi_direct_lun *)b)->lun;
        return x < y ? -1 : x > y;
}

static void copy_ident(char *dst, size_t size, const char *src) {
        /* SCSI pads identification strings with spaces. */
        size_t n = strnlen(src, size - 1);
        while (n > 0 && src[n - 1] == ' ')
                n--;
        memcpy(dst, src, n);
        dst[n] = '\0';
}

struct probe_run {
        struct iscsi_context *ctx;
        struct waiter w;
        struct scsi_task *pending;
        uint64_t deadline;
        const struct probe_params *p;
};

/* One LUN: TEST UNIT READY (again while it reports a unit attention: the first command
 * after a login or a change usually gets one), INQUIRY, READ CAPACITY(16).
 * Returns 1 with *ret filled for a ready direct-access LUN, 0 to leave it out. */
static int probe_lun(struct probe_run *pr, unsigned lun, struct drv_iscsi_direct_lun *ret) {
        struct scsi_task *t = NULL;
        int r;
        for (int i = 0;; i++) {
                pr->w = (struct waiter){0};
                r = run_task(pr->ctx, iscsi_testunitready_task(pr->ctx, (int)lun, on_done, &pr->w),
                             &pr->w, pr->deadline, &pr->pending);
                if (r < 0)
                        return r;
                t = pr->w.data;
                bool ua = pr->w.status == SCSI_STATUS_CHECK_CONDITION && t &&
                          t->sense.key == SCSI_SENSE_UNIT_ATTENTION;
                bool good = pr->w.status == SCSI_STATUS_GOOD;
                if (t)
                        scsi_free_scsi_task(t);
                if (good)
                        break;
                if (!ua || i + 1 >= DRV_ISCSI_DIRECT_TUR_RETRIES) {
                        log_debug("iSCSI %s LUN %u is not ready (status %d); not listed",
                                  pr->p->target, lun, pr->w.status);
                        return 0;
                }
        }

        pr->w = (struct waiter){0};
        r = run_task(pr->ctx,
                     iscsi_inquiry_task(pr->ctx, (int)lun, 0, 0, INQUIRY_ALLOC, on_done, &pr->w),
                     &pr->w, pr->deadline, &pr->pending);
        if (r < 0)
                return r;
        t = pr->w.data;
        struct scsi_inquiry_standard *inq =
                t && pr->w.status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(t) : NULL;
        if (!inq) {
                log_debug("iSCSI %s LUN %u: INQUIRY failed: %s", pr->p->target, lun,
                          ctx_error(pr->ctx));
                if (t)
                        scsi_free_scsi_task(t);
                return 0;
        }
        *ret = (struct drv_iscsi_direct_lun){.lun = lun, .device_type = (int)inq->device_type};
        copy_ident(ret->vendor, sizeof(ret->vendor), inq->vendor_identification);
        copy_ident(ret->product, sizeof(ret->product), inq->product_identification);
        scsi_free_scsi_task(t);
        /* Only block devices are volumes (tgtd's LUN 0 is a controller, for example). */
        if (ret->device_type != SCSI_INQUIRY_PERIPHERAL_DEVICE_TYPE_DIRECT_ACCESS)
                return 0;

        pr->w = (struct waiter){0};
        r = run_task(pr->ctx, iscsi_readcapacity16_task(pr->ctx, (int)lun, on_done, &pr->w), &pr->w,
                     pr->deadline, &pr->pending);
        if (r < 0)
                return r;
        t = pr->w.data;
        struct scsi_readcapacity16 *rc =
                t && pr->w.status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(t) : NULL;
        if (!rc) {
                log_debug("iSCSI %s LUN %u: READ CAPACITY(16) failed: %s", pr->p->target, lun,
                          ctx_error(pr->ctx));
                if (t)
                        scsi_free_scsi_task(t);
                return 0;
        }
        ret->block_size = rc->block_length;
        ret->capacity = (rc->returned_lba + 1) * (uint64_t)rc->block_length;
        scsi_free_scsi_task(t);
        return 1;
}

static int probe_steps(struct probe_run *pr, const char *password,
                       struct drv_iscsi_direct_result *res, struct dv_error *err) {
        const struct probe_params *p = pr->p;
        struct iscsi_context *ctx = pr->ctx;
        int r;
        if (iscsi_set_targetname(ctx, p->target) < 0 ||
            iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL) < 0 ||
            iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C) < 0)
                return dv_error_add(err, -EINVAL, 0, "iSCSI target %s: %s", p->target,
                                    ctx_error(ctx));
        if (p->username && iscsi_set_initiator_username_pwd(ctx, p->username, password) < 0)
                return dv_error_add(err, -EINVAL, 0, "iSCSI target %s: CHAP: %s", p->target,
                                    ctx_error(ctx));
        /* A broken connection fails the probe; the next refresh tries again. */
        iscsi_set_noautoreconnect(ctx, 1);
        uint64_t left = pr->deadline - now_usec(CLOCK_MONOTONIC);
        iscsi_set_timeout(ctx, (int)MAX(left / USEC_PER_SEC, (uint64_t)1));

        pr->w = (struct waiter){0};
        if (iscsi_connect_async(ctx, p->portal, on_done, &pr->w) < 0)
                return dv_error_add(err, -EHOSTUNREACH, 0, "cannot connect to iSCSI portal %s: %s",
                                    p->portal, ctx_error(ctx));
        int sock_err = 0;
        r = wait_for_sock(ctx, &pr->w, pr->deadline, &sock_err);
        if (r == 0 && pr->w.status != SCSI_STATUS_GOOD)
                r = pr->w.status == SCSI_STATUS_TIMEOUT ? -ETIMEDOUT
                    : sock_err > 0                      ? -sock_err
                                                        : -ECONNREFUSED;
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot connect to iSCSI portal %s: %s", p->portal,
                                    r == -ETIMEDOUT ? "no answer in time"
                                    : sock_err > 0  ? strerror(sock_err)
                                                    : ctx_error(ctx));

        pr->w = (struct waiter){0};
        if (iscsi_login_async(ctx, on_done, &pr->w) < 0)
                return dv_error_add(err, -EIO, 0, "login to iSCSI target %s at %s failed: %s",
                                    p->target, p->portal, ctx_error(ctx));
        r = wait_for(ctx, &pr->w, pr->deadline);
        if (r == 0 && pr->w.status != SCSI_STATUS_GOOD)
                r = pr->w.status == SCSI_STATUS_TIMEOUT ? -ETIMEDOUT : -EACCES;
        if (r < 0)
                return dv_error_add(err, r, 0, "login to iSCSI target %s at %s failed: %s",
                                    p->target, p->portal,
                                    r == -ETIMEDOUT ? "no answer in time" : ctx_error(ctx));

        pr->w = (struct waiter){0};
        r = run_task(ctx,
                     iscsi_reportluns_task(ctx, SCSI_REPORTLUNS_REPORT_ALL_LUNS, REPORT_LUNS_ALLOC,
                                           on_done, &pr->w),
                     &pr->w, pr->deadline, &pr->pending);
        if (r < 0)
                return dv_error_add(err, r, 0, "REPORT LUNS to iSCSI target %s at %s failed: %s",
                                    p->target, p->portal,
                                    r == -ETIMEDOUT ? "no answer in time" : ctx_error(ctx));
        struct scsi_task *t = pr->w.data;
        struct scsi_reportluns_list *list =
                t && pr->w.status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(t) : NULL;
        if (!list) {
                if (t)
                        scsi_free_scsi_task(t);
                return dv_error_add(err, -EIO, 0, "REPORT LUNS to iSCSI target %s at %s failed: %s",
                                    p->target, p->portal, ctx_error(ctx));
        }
        size_t n = list->num;
        unsigned *luns = calloc(n ? n : 1, sizeof(*luns));
        if (!luns) {
                scsi_free_scsi_task(t);
                return dv_error_oom(err);
        }
        for (size_t i = 0; i < n; i++)
                luns[i] = list->luns[i];
        scsi_free_scsi_task(t);

        struct drv_iscsi_direct_lun *v = calloc(n ? n : 1, sizeof(*v));
        if (!v) {
                free(luns);
                return dv_error_oom(err);
        }
        size_t nv = 0;
        for (size_t i = 0; i < n; i++) {
                r = probe_lun(pr, luns[i], &v[nv]);
                if (r < 0) {
                        unsigned bad = luns[i];
                        free(luns);
                        free(v);
                        return dv_error_add(err, r, 0, "iSCSI target %s at %s, LUN %u: %s",
                                            p->target, p->portal, bad,
                                            r == -ETIMEDOUT ? "no answer in time" : ctx_error(ctx));
                }
                if (r > 0)
                        nv++;
        }
        free(luns);
        qsort(v, nv, sizeof(*v), cmp_lun);
        res->luns = v;
        res->n_luns = nv;

        /* A polite goodbye, bounded like the rest; the result stands either way. */
        pr->w = (struct waiter){0};
        if (iscsi_logout_async(ctx, on_done, &pr->w) == 0)
                (void)wait_for(ctx, &pr->w,
                               MIN(pr->deadline, now_usec(CLOCK_MONOTONIC) + USEC_PER_SEC));
        return 0;
}

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned n_probes;

unsigned drv_iscsi_direct_probe_count(void) {
        pthread_mutex_lock(&stats_lock);
        unsigned n = n_probes;
        pthread_mutex_unlock(&stats_lock);
        return n;
}

static int run_probe(const struct probe_params *p, uint64_t timeout_usec,
                     struct drv_iscsi_direct_result *ret, struct dv_error *err) {
        pthread_mutex_lock(&stats_lock);
        n_probes++;
        pthread_mutex_unlock(&stats_lock);
        _cleanup_free_ char *password = NULL;
        int r;
        if (p->username) {
                r = drv_iscsi_read_secret(p->secret_name, &password, err);
                if (r < 0)
                        return r;
        }
        struct probe_run pr = {
                .p = p,
                .deadline = now_usec(CLOCK_MONOTONIC) +
                            (timeout_usec ? timeout_usec : DRV_ISCSI_DIRECT_PROBE_TIMEOUT_USEC),
        };
        pr.ctx = iscsi_create_context(p->initiator);
        if (!pr.ctx) {
                r = dv_error_add(err, -ENOMEM, 0, "cannot create an iSCSI context for %s",
                                 p->initiator);
        } else {
                struct drv_iscsi_direct_result res = {0};
                r = probe_steps(&pr, password, &res, err);
                /* Cancels whatever is in flight (the callbacks only touch pr.w). */
                iscsi_destroy_context(pr.ctx);
                if (pr.pending)
                        scsi_free_scsi_task(pr.pending);
                if (r >= 0)
                        *ret = res;
        }
        if (password)
                explicit_bzero(password, strlen(password));
        return r;
}

int drv_iscsi_direct_probe(const struct pool_def *def, uint64_t timeout_usec,
                           struct drv_iscsi_direct_result *ret, struct dv_error *err) {
        struct probe_params p;
        int r = probe_params_from_def(def, &p);
        if (r == -EINVAL)
                return dv_error_add(err, r, 0,
                                    "pool %s needs a host, a device (target IQN) and an "
                                    "initiator IQN",
                                    strna(def->name));
        if (r < 0)
                return dv_error_oom(err);
        r = run_probe(&p, timeout_usec, ret, err);
        probe_params_done(&p);
        return r;
}

/* ---- the cache observe reads -------------------------------------------------------------- */

struct cache_entry {
        struct cache_entry *next;
        char *key;
        bool refreshing;  /* a background probe runs */
        bool have_result; /* a probe finished at least once */
        bool waited;      /* the first observe already waited for it */
        uint64_t done_usec, used_usec;
        int error; /* of the last probe */
        char *reason;
        struct drv_iscsi_direct_result res;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cache_cond = PTHREAD_COND_INITIALIZER;
static struct cache_entry *cache;
static unsigned n_running;

static void entry_free(struct cache_entry *e) {
        if (!e)
                return;
        free(e->key);
        free(e->reason);
        drv_iscsi_direct_result_done(&e->res);
        free(e);
}

struct refresh_job {
        struct cache_entry *entry; /* stays allocated while refreshing is set */
        struct probe_params p;
};

static void *refresh_thread(void *arg) {
        struct refresh_job *job = arg;
        struct drv_iscsi_direct_result res = {0};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int r = run_probe(&job->p, 0, &res, &err);
        _cleanup_free_ char *reason = r < 0 ? dv_error_summary(&err) : NULL;
        pthread_mutex_lock(&cache_lock);
        struct cache_entry *e = job->entry;
        drv_iscsi_direct_result_done(&e->res);
        free(e->reason);
        e->res = res;
        e->error = r < 0 ? r : 0;
        e->reason = TAKE_PTR(reason);
        e->have_result = true;
        e->refreshing = false;
        e->done_usec = now_usec(CLOCK_MONOTONIC);
        n_running--;
        pthread_cond_broadcast(&cache_cond);
        pthread_mutex_unlock(&cache_lock);
        probe_params_done(&job->p);
        free(job);
        return NULL;
}

/* Called with cache_lock held. */
static int start_refresh(struct cache_entry *e, const struct pool_def *def) {
        struct refresh_job *job = calloc(1, sizeof(*job));
        if (!job)
                return -ENOMEM;
        int r = probe_params_from_def(def, &job->p);
        if (r < 0) {
                free(job);
                return r;
        }
        job->entry = e;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        r = -pthread_create(&t, &attr, refresh_thread, job);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                probe_params_done(&job->p);
                free(job);
                return r;
        }
        e->refreshing = true;
        n_running++;
        return 0;
}

/* Called with cache_lock held. */
static struct cache_entry *cache_get(const char *key, uint64_t now) {
        struct cache_entry **pp = &cache, *found = NULL;
        while (*pp) {
                struct cache_entry *e = *pp;
                if (streq(e->key, key)) {
                        found = e;
                        pp = &e->next;
                } else if (!e->refreshing && now - e->used_usec > CACHE_IDLE_USEC) {
                        *pp = e->next; /* a pool nobody asks about any more */
                        entry_free(e);
                } else
                        pp = &e->next;
        }
        if (found)
                return found;
        found = calloc(1, sizeof(*found));
        if (!found || !(found->key = strdup(key))) {
                free(found);
                return NULL;
        }
        found->next = cache;
        cache = found;
        return found;
}

void drv_iscsi_direct_cache_reset(void) {
        pthread_mutex_lock(&cache_lock);
        while (n_running > 0)
                pthread_cond_wait(&cache_cond, &cache_lock);
        while (cache) {
                struct cache_entry *e = cache;
                cache = e->next;
                entry_free(e);
        }
        pthread_mutex_unlock(&cache_lock);
}

static int set_reason(struct pool_status *s, enum pool_state state, const char *fmt, ...)
        _printf_(3, 4);
static int set_reason(struct pool_status *s, enum pool_state state, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        s->state = state;
        int r = vasprintf(&s->reason, fmt, ap);
        va_end(ap);
        if (r < 0)
                s->reason = NULL;
        return 0;
}

/* Answers from the cache and starts a background refresh when the answer is older
 * than DRV_ISCSI_DIRECT_REFRESH_USEC: the state seen lags the target by at most one
 * observe (a full resync at the latest). Only the very first observe of a target
 * waits, and for at most DRV_ISCSI_DIRECT_FIRST_WAIT_USEC. */
static int idirect_pool_observe(const struct pool_def *def, struct pool_status *ret,
                                struct dv_error *err) {
        _cleanup_free_ char *key = drv_iscsi_direct_cache_key(def);
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        if (!key || !hp)
                return dv_error_add(err, -EINVAL, 0,
                                    "pool %s needs a host, a device (target IQN) and an "
                                    "initiator IQN",
                                    strna(def->name));
        struct pool_status s = {0};
        pthread_mutex_lock(&cache_lock);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct cache_entry *e = cache_get(key, now);
        if (!e) {
                pthread_mutex_unlock(&cache_lock);
                return dv_error_oom(err);
        }
        e->used_usec = now;
        int r = 0;
        if (!e->refreshing &&
            (!e->have_result || now - e->done_usec >= DRV_ISCSI_DIRECT_REFRESH_USEC))
                r = start_refresh(e, def);
        if (!e->have_result && e->refreshing && !e->waited) {
                e->waited = true;
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                uint64_t ns = (uint64_t)until.tv_nsec + DRV_ISCSI_DIRECT_FIRST_WAIT_USEC * 1000;
                until.tv_sec += (time_t)(ns / 1000000000);
                until.tv_nsec = (long)(ns % 1000000000);
                while (!e->have_result &&
                       pthread_cond_timedwait(&cache_cond, &cache_lock, &until) == 0)
                        ;
        }
        if (e->have_result && e->error == 0) {
                s.state = POOL_STATE_ACTIVE;
                s.has_sizes = true;
                for (size_t i = 0; i < e->res.n_luns; i++)
                        s.capacity += e->res.luns[i].capacity;
                s.allocation = s.capacity; /* LUNs are all the target gives */
        } else if (e->have_result)
                set_reason(&s, POOL_STATE_BROKEN, "%s", strna(e->reason));
        else if (r < 0)
                set_reason(&s, POOL_STATE_BROKEN, "cannot start probing iSCSI target %s at %s: %s",
                           drv_iscsi_target(def), hp, strerror(-r));
        else
                set_reason(&s, POOL_STATE_BROKEN,
                           "waiting for the first answer of iSCSI target %s at %s",
                           drv_iscsi_target(def), hp);
        pthread_mutex_unlock(&cache_lock);
        *ret = s;
        return 0;
}

static int idirect_vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                            struct dv_error *err) {
        _cleanup_free_ char *key = drv_iscsi_direct_cache_key(def);
        if (!key)
                return dv_error_add(err, -EINVAL, 0, "pool %s is not a complete iscsi-direct pool",
                                    strna(def->name));
        pthread_mutex_lock(&cache_lock);
        struct cache_entry *e = cache;
        while (e && !streq(e->key, key))
                e = e->next;
        if (!e || !e->have_result || e->error < 0) {
                pthread_mutex_unlock(&cache_lock);
                return dv_error_add(err, -EAGAIN, 0, "iSCSI target of pool %s not probed yet",
                                    strna(def->name));
        }
        size_t nl = e->res.n_luns;
        struct vol_status *v = calloc(nl ? nl : 1, sizeof(*v));
        int r = v ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < nl; i++) {
                const struct drv_iscsi_direct_lun *l = &e->res.luns[i];
                v[i] = (struct vol_status){
                        .name = drv_iscsi_direct_vol_name(l->lun),
                        .path = drv_iscsi_direct_lun_path(def, l->lun),
                        .type = strdup("network"),
                        .format = strdup("raw"),
                        .capacity = l->capacity,
                        .allocation = l->capacity,
                };
                if (!v[i].name || !v[i].path || !v[i].type || !v[i].format)
                        r = -ENOMEM;
        }
        pthread_mutex_unlock(&cache_lock);
        if (r < 0) {
                vol_status_array_free(v, nl);
                return dv_error_oom(err);
        }
        *ret = v;
        *n = nl;
        return 0;
}

static char *idirect_vol_path(const struct pool_def *def, const char *name) {
        unsigned lun;
        if (drv_iscsi_direct_parse_vol_name(name, &lun) < 0)
                return NULL;
        return drv_iscsi_direct_lun_path(def, lun);
}

/* No start/stop: the pool is as active as its target is reachable. No build, no
 * delete, no volume create/resize/delete: the LUNs are the target's business. */
const struct storage_driver storage_driver_iscsi_direct = {
        .type = POOL_ISCSI_DIRECT,
        .pool_observe = idirect_pool_observe,
        .vol_list = idirect_vol_list,
        .vol_path = idirect_vol_path,
};
