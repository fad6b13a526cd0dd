/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The logical (LVM) pool driver: a volume group adopted by name or built with
 * pvcreate+vgcreate from empty devices; its logical volumes are the pool's volumes. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json_object.h>
#include <json_tokener.h>

#include "drivers/cmd.h"
#include "drivers/storage/blkid.h"
#include "drivers/storage/logical.h"
#include "model/object.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

/* LVM commands are quick, but a VG on a slow or hung device must not hang a worker. */
#define LVM_TIMEOUT_USEC (120ULL * USEC_PER_SEC)
/* vol_list right after pool_observe reuses what observe found this recently. */
#define LVM_FRESH_USEC (2ULL * USEC_PER_SEC)
#define LVM_NAME_MAX   127

/* ---- names ------------------------------------------------------------------------------- */

const char *lvm_name_problem(const char *name) {
        if (!name || !*name)
                return "the name is empty";
        if (strlen(name) > LVM_NAME_MAX)
                return "the name is longer than 127 characters";
        if (name[0] == '-')
                return "the name begins with '-'";
        if (streq(name, ".") || streq(name, ".."))
                return "the name is '.' or '..'";
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '+' || *p == '_' || *p == '.' || *p == '-'))
                        return "LVM names may only contain A-Z a-z 0-9 + _ . -";
        return NULL;
}

/* LV names also may not use the prefixes and infixes LVM keeps for its own sub-volumes. */
static const char *lv_name_problem(const char *name) {
        const char *why = lvm_name_problem(name);
        if (why)
                return why;
        static const char *const prefixes[] = {"snapshot", "pvmove"};
        static const char *const reserved[] = {"_cdata", "_cmeta",   "_corig",   "_mimage",
                                               "_mlog",  "_pmspare", "_rimage",  "_rmeta",
                                               "_tdata", "_tmeta",   "_vorigin", "_vdata"};
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
                        return "LVM reserves names beginning with 'snapshot' or 'pvmove'";
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strstr(name, reserved[i]))
                        return "LVM reserves names containing _cdata, _cmeta, _mimage, _rimage, "
                               "_tdata, _tmeta and the like";
        return NULL;
}

static const char *vg_of(const struct pool_def *def) {
        const char *vg = pool_def_vg_name(def);
        return vg && !lvm_name_problem(vg) ? vg : NULL;
}

static int check_vg(const struct pool_def *def, const char **ret, struct dv_error *err) {
        const char *vg = pool_def_vg_name(def);
        const char *why = lvm_name_problem(vg);
        if (why)
                return dv_error_add(err, -EINVAL, 0, "pool %s: volume group name '%s': %s",
                                    strna(def->name), strna(vg), why);
        *ret = vg;
        return 0;
}

/* ---- argv builders ----------------------------------------------------------------------- */

static int argv_make(char ***ret, const char *first, ...) {
        _cleanup_strv_free_ char **argv = NULL;
        va_list ap;
        va_start(ap, first);
        int r = 0;
        for (const char *s = first; s; s = va_arg(ap, const char *))
                if ((r = strv_push(&argv, s)) < 0)
                        break;
        va_end(ap);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_lvm_vgs_argv(const struct pool_def *def, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg)
                return -EINVAL;
        /* A selection rather than a VG argument: a missing VG is an empty report with
         * exit status 0, not an error to tell apart by its (localised) message. */
        _cleanup_free_ char *sel = NULL;
        if (asprintf(&sel, "vg_name=\"%s\"", vg) < 0)
                return -ENOMEM;
        return argv_make(ret, "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                         "vg_name,vg_size,vg_free,vg_extent_size,vg_seqno,vg_tags,pv_name", "-S",
                         sel, NULL);
}

int drv_lvm_lvs_argv(const struct pool_def *def, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg)
                return -EINVAL;
        return argv_make(ret, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                         "lv_name,lv_size,lv_attr,origin,devices", vg, NULL);
}

static bool dev_ok(const char *dev) {
        return dev && dev[0] == '/' && !strchr(dev, '\n');
}

int drv_lvm_pvcreate_argv(const char *dev, char ***ret) {
        if (!dev_ok(dev))
                return -EINVAL;
        /* No --yes/-f: pvcreate asks before wiping a signature, and with stdin from
         * /dev/null the answer is no, a second guard behind our own probe. */
        return argv_make(ret, "pvcreate", dev, NULL);
}

int drv_lvm_pvremove_argv(const char *dev, char ***ret) {
        if (!dev_ok(dev))
                return -EINVAL;
        return argv_make(ret, "pvremove", dev, NULL);
}

int drv_lvm_vgcreate_argv(const struct pool_def *def, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg || def->source.n_devices == 0)
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "vgcreate") < 0 || strv_push(&argv, vg) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < def->source.n_devices; i++) {
                if (!dev_ok(def->source.devices[i].path))
                        return -EINVAL;
                if (strv_push(&argv, def->source.devices[i].path) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_lvm_vgremove_argv(const struct pool_def *def, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg)
                return -EINVAL;
        /* No -f: it would remove logical volumes too. */
        return argv_make(ret, "vgremove", vg, NULL);
}

int drv_lvm_vgchange_argv(const struct pool_def *def, bool activate, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg)
                return -EINVAL;
        return argv_make(ret, "vgchange", activate ? "-aly" : "-aln", vg, NULL);
}

int drv_lvm_vgtag_argv(const struct pool_def *def, bool add, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg)
                return -EINVAL;
        return argv_make(ret, "vgchange", add ? "--addtag" : "--deltag", LVM_STOPPED_TAG, vg, NULL);
}

int drv_lvm_lvcreate_argv(const struct pool_def *def, const struct volume_def *vol, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg || !vol || lv_name_problem(vol->name) || !vol->has_capacity || vol->capacity == 0)
                return -EINVAL;
        _cleanup_free_ char *size = NULL;
        if (asprintf(&size, "%" PRIu64 "b", vol->capacity) < 0)
                return -ENOMEM;
        return argv_make(ret, "lvcreate", "--name", vol->name, "-L", size, vg, "--yes", NULL);
}

int drv_lvm_lvextend_argv(const struct pool_def *def, const char *name, uint64_t capacity,
                          char ***ret) {
        const char *vg = vg_of(def);
        if (!vg || lv_name_problem(name) || capacity == 0)
                return -EINVAL;
        _cleanup_free_ char *size = NULL, *lv = NULL;
        if (asprintf(&size, "%" PRIu64 "b", capacity) < 0 || asprintf(&lv, "%s/%s", vg, name) < 0)
                return -ENOMEM;
        return argv_make(ret, "lvextend", "-L", size, lv, NULL);
}

int drv_lvm_lvremove_argv(const struct pool_def *def, const char *name, char ***ret) {
        const char *vg = vg_of(def);
        if (!vg || lv_name_problem(name))
                return -EINVAL;
        _cleanup_free_ char *lv = NULL;
        if (asprintf(&lv, "%s/%s", vg, name) < 0)
                return -ENOMEM;
        return argv_make(ret, "lvremove", "-f", lv, NULL);
}

/* ---- JSON report parsers ----------------------------------------------------------------- */

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

void lvm_vg_info_done(struct lvm_vg_info *vg) {
        if (!vg)
                return;
        strv_free(vg->pvs);
        strv_free(vg->tags);
        *vg = (struct lvm_vg_info){0};
}

void lvm_lv_info_array_free(struct lvm_lv_info *lv, size_t n) {
        for (size_t i = 0; lv && i < n; i++) {
                free(lv[i].name);
                free(lv[i].origin);
        }
        free(lv);
}

/* {"report": [{"KEY": [rows...]}, ...]}: calls fn for every row of every report. */
static int report_rows(const char *json, const char *what, const char *key,
                       int (*fn)(json_object *row, void *userdata, struct dv_error *err),
                       void *userdata, struct dv_error *err) {
        if (!json)
                return dv_error_add(err, -EBADMSG, 0, "%s printed nothing", what);
        enum json_tokener_error jerr = json_tokener_success;
        _cleanup_(json_object_putp) json_object *root = json_tokener_parse_verbose(json, &jerr);
        json_object *reports = NULL;
        if (!root || !json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "report", &reports) ||
            !json_object_is_type(reports, json_type_array))
                return dv_error_add(err, -EBADMSG, 0, "%s printed no JSON report%s%s", what,
                                    root ? "" : ": ", root ? "" : json_tokener_error_desc(jerr));
        for (size_t i = 0; i < json_object_array_length(reports); i++) {
                json_object *rep = json_object_array_get_idx(reports, i), *rows = NULL;
                if (!json_object_is_type(rep, json_type_object) ||
                    !json_object_object_get_ex(rep, key, &rows))
                        continue;
                if (!json_object_is_type(rows, json_type_array))
                        return dv_error_add(err, -EBADMSG, 0, "%s: \"%s\" is not a list", what,
                                            key);
                for (size_t k = 0; k < json_object_array_length(rows); k++) {
                        json_object *row = json_object_array_get_idx(rows, k);
                        if (!json_object_is_type(row, json_type_object))
                                return dv_error_add(err, -EBADMSG, 0, "%s: a row is not an object",
                                                    what);
                        int r = fn(row, userdata, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static const char *row_str(json_object *row, const char *field) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(row, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int row_u64(json_object *row, const char *what, const char *field, uint64_t *ret,
                   struct dv_error *err) {
        const char *s = row_str(row, field);
        if (!s || parse_u64(s, ret) < 0)
                return dv_error_add(err, -EBADMSG, 0, "%s: field %s is '%s', not a number", what,
                                    field, strna(s));
        return 0;
}

struct vgs_ctx {
        const char *vg;
        struct lvm_vg_info *info;
};

static int split_push(char ***l, const char *s) {
        /* vg_tags is comma separated; tags cannot contain ','. */
        while (s && *s) {
                size_t n = strcspn(s, ",");
                if (n > 0) {
                        char *t = strndup(s, n);
                        if (!t || strv_consume(l, t) < 0)
                                return -ENOMEM;
                }
                s += n;
                if (*s == ',')
                        s++;
        }
        return 0;
}

static int vgs_row(json_object *row, void *userdata, struct dv_error *err) {
        struct vgs_ctx *c = userdata;
        const char *name = row_str(row, "vg_name");
        if (!name || !streq(name, c->vg))
                return 0;
        struct lvm_vg_info *v = c->info;
        int r;
        if ((r = row_u64(row, "vgs", "vg_size", &v->size, err)) < 0 ||
            (r = row_u64(row, "vgs", "vg_free", &v->free, err)) < 0 ||
            (r = row_u64(row, "vgs", "vg_extent_size", &v->extent_size, err)) < 0 ||
            (r = row_u64(row, "vgs", "vg_seqno", &v->seqno, err)) < 0)
                return r;
        if (!v->found && split_push(&v->tags, row_str(row, "vg_tags")) < 0)
                return dv_error_oom(err);
        v->found = true;
        const char *pv = row_str(row, "pv_name");
        if (pv && *pv && !strv_contains(v->pvs, pv) && strv_push(&v->pvs, pv) < 0)
                return dv_error_oom(err);
        return 0;
}

int drv_lvm_parse_vgs(const char *json, const char *vg, struct lvm_vg_info *ret,
                      struct dv_error *err) {
        struct lvm_vg_info info = {0};
        struct vgs_ctx c = {.vg = vg, .info = &info};
        int r = report_rows(json, "vgs", "vg", vgs_row, &c, err);
        if (r < 0) {
                lvm_vg_info_done(&info);
                return r;
        }
        *ret = info;
        return 0;
}

struct lvs_ctx {
        struct lvm_lv_info *v;
        size_t n, cap;
};

static int lvs_row(json_object *row, void *userdata, struct dv_error *err) {
        struct lvs_ctx *c = userdata;
        const char *name = row_str(row, "lv_name");
        if (!name || !*name)
                return dv_error_add(err, -EBADMSG, 0, "lvs: a row has no lv_name");
        /* The devices field is per segment: an LV on several segments has several rows. */
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->v[i].name, name))
                        return 0;
        uint64_t size;
        int r = row_u64(row, "lvs", "lv_size", &size, err);
        if (r < 0)
                return r;
        if (c->n == c->cap) {
                size_t ncap = c->cap ? c->cap * 2 : 8;
                struct lvm_lv_info *nv = reallocarray(c->v, ncap, sizeof(*nv));
                if (!nv)
                        return dv_error_oom(err);
                c->v = nv;
                c->cap = ncap;
        }
        struct lvm_lv_info *lv = &c->v[c->n++];
        *lv = (struct lvm_lv_info){.size = size};
        lv->name = strdup(name);
        const char *origin = row_str(row, "origin");
        if (origin && *origin)
                lv->origin = strdup(origin);
        const char *attr = row_str(row, "lv_attr");
        snprintf(lv->attr, sizeof(lv->attr), "%s", attr ? attr : "");
        if (!lv->name || (origin && *origin && !lv->origin))
                return dv_error_oom(err);
        return 0;
}

int drv_lvm_parse_lvs(const char *json, struct lvm_lv_info **ret, size_t *n, struct dv_error *err) {
        struct lvs_ctx c = {0};
        int r = report_rows(json, "lvs", "lv", lvs_row, &c, err);
        if (r < 0) {
                lvm_lv_info_array_free(c.v, c.n);
                return r;
        }
        *ret = c.v;
        *n = c.n;
        return 0;
}

/* ---- running LVM ------------------------------------------------------------------------- */

static int run_lvm(char **argv, char **ret_out, struct dv_error *err) {
        struct cmd_opts opts = {.timeout_usec = LVM_TIMEOUT_USEC};
        struct cmd_result res = {0};
        int r = cmd_run(argv, &opts, ret_out ? &res : NULL, err);
        if (r >= 0 && ret_out)
                *ret_out = TAKE_PTR(res.out);
        cmd_result_done(&res);
        return r;
}

/* Runs argv that a builder just made; built is the builder's result. */
static int run_built(int built, char **argv, const char *what, struct dv_error *err) {
        if (built < 0)
                return dv_error_add(err, built, 0, "cannot build the %s command: %s", what,
                                    strerror(-built));
        return run_lvm(argv, NULL, err);
}

static int query_vg(const struct pool_def *def, struct lvm_vg_info *ret, struct dv_error *err) {
        _cleanup_strv_free_ char **argv = NULL;
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        r = drv_lvm_vgs_argv(def, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the vgs command: %s", strerror(-r));
        _cleanup_free_ char *out = NULL;
        r = run_lvm(argv, &out, err);
        if (r < 0)
                return r;
        return drv_lvm_parse_vgs(out, vg, ret, err);
}

/* ---- the lvs cache ----------------------------------------------------------------------- */

/* An lvs listing stays valid while the VG's metadata seqno and the /dev/VG directory
 * (where activation adds and removes nodes; activation does not change the seqno)
 * are unchanged. */
struct lv_cache_key {
        uint64_t seqno;
        bool dev_present;
        dev_t dev;
        ino_t ino;
        struct timespec mtime;
};

struct lv_cache_entry {
        char *vg;
        struct lv_cache_key key;
        uint64_t checked_usec; /* when observe last found the key unchanged */
        struct lvm_lv_info *lvs;
        size_t n;
        struct lvm_vg_info vg_info;
        struct lv_cache_entry *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lv_cache_entry *cache_head;
static unsigned lvs_runs;

static void entry_free(struct lv_cache_entry *e) {
        if (!e)
                return;
        free(e->vg);
        lvm_lv_info_array_free(e->lvs, e->n);
        lvm_vg_info_done(&e->vg_info);
        free(e);
}

static bool key_same(const struct lv_cache_key *a, const struct lv_cache_key *b) {
        return a->seqno == b->seqno && a->dev_present == b->dev_present && a->dev == b->dev &&
               a->ino == b->ino && a->mtime.tv_sec == b->mtime.tv_sec &&
               a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static struct lv_cache_entry **cache_find_locked(const char *vg) {
        struct lv_cache_entry **p = &cache_head;
        while (*p && !streq((*p)->vg, vg))
                p = &(*p)->next;
        return p;
}

static void cache_forget(const char *vg) {
        if (!vg)
                return;
        pthread_mutex_lock(&cache_lock);
        struct lv_cache_entry **p = cache_find_locked(vg);
        struct lv_cache_entry *e = *p;
        if (e)
                *p = e->next;
        pthread_mutex_unlock(&cache_lock);
        entry_free(e);
}

void lvm_cache_clear(void) {
        pthread_mutex_lock(&cache_lock);
        struct lv_cache_entry *e = cache_head;
        cache_head = NULL;
        pthread_mutex_unlock(&cache_lock);
        while (e) {
                struct lv_cache_entry *n = e->next;
                entry_free(e);
                e = n;
        }
}

unsigned lvm_lvs_runs(void) {
        pthread_mutex_lock(&cache_lock);
        unsigned n = lvs_runs;
        pthread_mutex_unlock(&cache_lock);
        return n;
}

static int lv_array_copy(const struct lvm_lv_info *src, size_t n, struct lvm_lv_info **ret) {
        struct lvm_lv_info *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i] = src[i];
                v[i].name = strdup(src[i].name);
                v[i].origin = src[i].origin ? strdup(src[i].origin) : NULL;
                if (!v[i].name || (src[i].origin && !v[i].origin)) {
                        lvm_lv_info_array_free(v, i + 1);
                        return -ENOMEM;
                }
        }
        *ret = v;
        return 0;
}

static int vg_info_copy(const struct lvm_vg_info *src, struct lvm_vg_info *ret) {
        *ret = *src;
        ret->pvs = strv_copy(src->pvs);
        ret->tags = strv_copy(src->tags);
        if ((src->pvs && !ret->pvs) || (src->tags && !ret->tags)) {
                lvm_vg_info_done(ret);
                return -ENOMEM;
        }
        return 0;
}

static void cache_key_of(const char *vg, const struct lvm_vg_info *info, struct lv_cache_key *k) {
        char dir[PATH_MAX];
        struct stat st;
        *k = (struct lv_cache_key){.seqno = info->seqno};
        snprintf(dir, sizeof(dir), "/dev/%s", vg);
        if (stat(dir, &st) == 0) {
                k->dev_present = true;
                k->dev = st.st_dev;
                k->ino = st.st_ino;
                k->mtime = st.st_mtim;
        }
}

/* The LVs of an existing VG (info from query_vg just now): from the cache while its
 * key holds, else from lvs. */
static int get_lvs(const struct pool_def *def, const struct lvm_vg_info *info,
                   struct lvm_lv_info **ret, size_t *n, struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        struct lv_cache_key key;
        cache_key_of(vg, info, &key);

        pthread_mutex_lock(&cache_lock);
        struct lv_cache_entry *e = *cache_find_locked(vg);
        if (e && key_same(&e->key, &key)) {
                r = lv_array_copy(e->lvs, e->n, ret);
                if (r >= 0) {
                        *n = e->n;
                        e->checked_usec = now_usec(CLOCK_MONOTONIC);
                        lvm_vg_info_done(&e->vg_info);
                        r = vg_info_copy(info, &e->vg_info);
                }
                pthread_mutex_unlock(&cache_lock);
                return r < 0 ? dv_error_oom(err) : 0;
        }
        lvs_runs++;
        pthread_mutex_unlock(&cache_lock);

        /* lvs runs outside the lock: other pools are not held up by this one. */
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_lvs_argv(def, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the lvs command: %s", strerror(-r));
        _cleanup_free_ char *out = NULL;
        r = run_lvm(argv, &out, err);
        if (r < 0)
                return r;
        struct lvm_lv_info *lvs = NULL;
        size_t nlv = 0;
        r = drv_lvm_parse_lvs(out, &lvs, &nlv, err);
        if (r < 0)
                return r;

        struct lv_cache_entry *ne = calloc(1, sizeof(*ne));
        if (!ne || !(ne->vg = strdup(vg)) || lv_array_copy(lvs, nlv, &ne->lvs) < 0 ||
            vg_info_copy(info, &ne->vg_info) < 0) {
                entry_free(ne);
                lvm_lv_info_array_free(lvs, nlv);
                return dv_error_oom(err);
        }
        ne->n = nlv;
        ne->key = key;
        ne->checked_usec = now_usec(CLOCK_MONOTONIC);
        pthread_mutex_lock(&cache_lock);
        struct lv_cache_entry **p = cache_find_locked(vg);
        struct lv_cache_entry *old = *p;
        ne->next = old ? old->next : NULL;
        *p = ne;
        pthread_mutex_unlock(&cache_lock);
        entry_free(old);
        *ret = lvs;
        *n = nlv;
        return 0;
}

/* What observe found a moment ago, if it was that recent. */
static bool cache_recent(const char *vg, struct lvm_vg_info *ret_info, struct lvm_lv_info **ret,
                         size_t *n) {
        bool hit = false;
        pthread_mutex_lock(&cache_lock);
        struct lv_cache_entry *e = *cache_find_locked(vg);
        if (e && now_usec(CLOCK_MONOTONIC) - e->checked_usec < LVM_FRESH_USEC &&
            lv_array_copy(e->lvs, e->n, ret) >= 0) {
                if (vg_info_copy(&e->vg_info, ret_info) >= 0) {
                        *n = e->n;
                        hit = true;
                } else
                        lvm_lv_info_array_free(*ret, e->n);
        }
        pthread_mutex_unlock(&cache_lock);
        return hit;
}

/* ---- devices ----------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical, sorted, de-duplicated device paths (symlinks such as /dev/disk/by-id
 * resolved; a path that does not resolve is kept as written). */
static char **canonical_set(char *const *l) {
        _cleanup_strv_free_ char **out = NULL;
        for (size_t i = 0; l && l[i]; i++) {
                char *c = realpath(l[i], NULL);
                if (!c)
                        c = strdup(l[i]);
                if (!c)
                        return NULL;
                if (strv_contains(out, c)) {
                        free(c);
                        continue;
                }
                if (strv_consume(&out, c) < 0)
                        return NULL;
        }
        if (!out && !(out = calloc(1, sizeof(char *))))
                return NULL;
        qsort(out, strv_length(out), sizeof(char *), cmp_str);
        return TAKE_PTR(out);
}

static char **source_devices(const struct pool_def *def) {
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < def->source.n_devices; i++)
                if (strv_push(&l, strempty(def->source.devices[i].path)) < 0)
                        return NULL;
        if (!l)
                l = calloc(1, sizeof(char *));
        return TAKE_PTR(l);
}

/* 0 when the pool names no devices (adopt any VG of that name) or exactly the VG's
 * PVs; -EEXIST with both lists otherwise: the file describes another VG. */
static int check_devices(const struct pool_def *def, const char *vg, const struct lvm_vg_info *info,
                         struct dv_error *err) {
        if (def->source.n_devices == 0)
                return 0;
        _cleanup_strv_free_ char **want_raw = source_devices(def);
        _cleanup_strv_free_ char **want = want_raw ? canonical_set(want_raw) : NULL;
        _cleanup_strv_free_ char **have = canonical_set(info->pvs);
        if (!want || !have)
                return dv_error_oom(err);
        size_t n = strv_length(want);
        bool same = n == strv_length(have);
        for (size_t i = 0; same && i < n; i++)
                same = streq(want[i], have[i]);
        if (same)
                return 0;
        _cleanup_free_ char *h = strv_join(info->pvs, ", ", false);
        _cleanup_free_ char *w = strv_join(want_raw, ", ", false);
        return dv_error_add(err, -EEXIST, 0,
                            "volume group %s already exists with devices %s; the pool lists %s", vg,
                            strna(h), strna(w));
}

/* 0 when every source device exists and is empty; -EEXIST naming the first that holds
 * a signature; the probe's own error for a device that is missing or unreadable. */
static int check_devices_empty(const struct pool_def *def, struct dv_error *err) {
        for (size_t i = 0; i < def->source.n_devices; i++) {
                const char *dev = def->source.devices[i].path;
                if (!dev_ok(dev))
                        return dv_error_add(err, -EINVAL, 0,
                                            "pool %s: source device '%s' is not an absolute path",
                                            strna(def->name), strna(dev));
                _cleanup_free_ char *type = NULL;
                int r = storage_probe_signature(dev, &type, err);
                if (r < 0)
                        return r;
                if (r > 0)
                        return dv_error_add(
                                err, -EEXIST, 0,
                                "%s holds a %s signature; not formatting (build='if-empty')", dev,
                                strna(type));
        }
        return 0;
}

/* ---- pool -------------------------------------------------------------------------------- */

static void set_reason(struct pool_status *s, enum pool_state state, struct dv_error *e) {
        s->state = state;
        free(s->reason);
        s->reason = dv_error_failed(e) ? strdup(dv_error_message(e)) : NULL;
}

static int logical_pool_observe(const struct pool_def *def, struct pool_status *ret,
                                struct dv_error *err) {
        struct pool_status s = {0};
        struct lvm_vg_info info = {0};
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        r = query_vg(def, &info, err);
        if (r < 0)
                return r;
        _cleanup_dv_error_ struct dv_error why = DV_ERROR_INIT;
        if (!info.found) {
                /* Absent: buildable only from devices that are all there and empty. */
                if (def->source.n_devices == 0) {
                        dv_error_add(&why, -ENOENT, 0,
                                     "volume group %s does not exist and the pool lists no source "
                                     "device to build it from",
                                     vg);
                        set_reason(&s, POOL_STATE_BROKEN, &why);
                } else if (check_devices_empty(def, &why) < 0)
                        set_reason(&s, POOL_STATE_BROKEN, &why);
                else
                        s.state = POOL_STATE_ABSENT;
                goto done;
        }
        if (check_devices(def, vg, &info, &why) < 0) {
                set_reason(&s, POOL_STATE_BROKEN, &why);
                goto done;
        }
        s.has_sizes = true;
        s.capacity = info.size;
        s.available = info.free;
        s.allocation = info.size >= info.free ? info.size - info.free : 0;
        if (strv_contains(info.tags, LVM_STOPPED_TAG)) {
                s.state = POOL_STATE_INACTIVE;
                goto done;
        }
        /* Started unless it has LVs that could be active and none is: activation that is
         * unknown ('X': no device-mapper, activation disabled) or an empty VG leaves only
         * the agent's own choice, the tag above. LVs flagged to skip activation ('k') do
         * not count: vgchange -ay leaves them alone. */
        struct lvm_lv_info *lvs = NULL;
        size_t n = 0;
        r = get_lvs(def, &info, &lvs, &n, err);
        if (r < 0) {
                lvm_vg_info_done(&info);
                return r;
        }
        bool counted = false, active = false, unknown = false;
        for (size_t i = 0; i < n; i++) {
                if (strlen(lvs[i].attr) < 10 || lvs[i].attr[4] == 'X') {
                        unknown = true;
                        continue;
                }
                if (lvs[i].attr[9] == 'k')
                        continue;
                counted = true;
                if (lvs[i].attr[4] == 'a')
                        active = true;
        }
        lvm_lv_info_array_free(lvs, n);
        s.state = counted && !active && !unknown ? POOL_STATE_INACTIVE : POOL_STATE_ACTIVE;
done:
        if (dv_error_failed(&why) && !s.reason)
                r = -ENOMEM;
        lvm_vg_info_done(&info);
        if (r < 0) {
                pool_status_done(&s);
                return dv_error_oom(err);
        }
        *ret = s;
        return 0;
}

static void undo_pvcreate(const struct pool_def *def, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_strv_free_ char **argv = NULL;
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                if (drv_lvm_pvremove_argv(def->source.devices[i].path, &argv) >= 0)
                        (void)run_lvm(argv, NULL, &e);
        }
}

static int logical_pool_build(const struct pool_def *def, enum dv_build build,
                              struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        struct lvm_vg_info info = {0};
        r = query_vg(def, &info, err);
        if (r < 0)
                return r;
        bool found = info.found;
        if (found)
                r = check_devices(def, vg, &info, err);
        lvm_vg_info_done(&info);
        if (found)
                return r; /* adopted (or refused): nothing to make */
        if (build == DV_BUILD_NO)
                return dv_error_add(err, -ENOENT, 0,
                                    "volume group %s does not exist and build='no'", vg);
        if (def->source.n_devices == 0)
                return dv_error_add(err, -ENOENT, 0,
                                    "volume group %s does not exist and the pool lists no source "
                                    "device to build it from",
                                    vg);
        _cleanup_strv_free_ char **devs = source_devices(def);
        _cleanup_strv_free_ char **canon = devs ? canonical_set(devs) : NULL;
        if (!canon)
                return dv_error_oom(err);
        if (strv_length(canon) != def->source.n_devices)
                return dv_error_add(err, -EINVAL, 0, "pool %s lists the same device twice",
                                    strna(def->name));
        /* Every device is checked before any is touched: nothing half-built. */
        r = check_devices_empty(def, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < def->source.n_devices; i++) {
                struct stat st;
                if (stat(def->source.devices[i].path, &st) == 0 && !S_ISBLK(st.st_mode))
                        return dv_error_add(err, -EINVAL, 0,
                                            "source device %s is not a block device",
                                            def->source.devices[i].path);
        }
        for (size_t i = 0; i < def->source.n_devices; i++) {
                _cleanup_strv_free_ char **argv = NULL;
                r = drv_lvm_pvcreate_argv(def->source.devices[i].path, &argv);
                r = run_built(r, argv, "pvcreate", err);
                if (r < 0) {
                        undo_pvcreate(def, i);
                        return r;
                }
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_vgcreate_argv(def, &argv);
        r = run_built(r, argv, "vgcreate", err);
        if (r < 0) {
                undo_pvcreate(def, def->source.n_devices);
                return r;
        }
        cache_forget(vg);
        return 0;
}

static int logical_pool_start(const struct pool_def *def, struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        struct lvm_vg_info info = {0};
        r = query_vg(def, &info, err);
        if (r < 0)
                return r;
        if (!info.found)
                r = dv_error_add(err, -ENOENT, 0, "volume group %s does not exist", vg);
        else
                r = check_devices(def, vg, &info, err);
        bool tagged = strv_contains(info.tags, LVM_STOPPED_TAG);
        lvm_vg_info_done(&info);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_vgchange_argv(def, true, &argv);
        r = run_built(r, argv, "vgchange", err);
        if (r >= 0 && tagged) {
                _cleanup_strv_free_ char **targv = NULL;
                r = drv_lvm_vgtag_argv(def, false, &targv);
                r = run_built(r, targv, "vgchange", err);
        }
        cache_forget(vg);
        return r;
}

static int logical_pool_stop(const struct pool_def *def, struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        struct lvm_vg_info info = {0};
        r = query_vg(def, &info, err);
        if (r < 0)
                return r;
        bool found = info.found, tagged = strv_contains(info.tags, LVM_STOPPED_TAG);
        if (found)
                r = check_devices(def, vg, &info, err);
        lvm_vg_info_done(&info);
        if (!found || r < 0)
                return r; /* nothing to stop, or not ours to touch */
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_vgchange_argv(def, false, &argv);
        r = run_built(r, argv, "vgchange", err);
        if (r >= 0 && !tagged) {
                _cleanup_strv_free_ char **targv = NULL;
                r = drv_lvm_vgtag_argv(def, true, &targv);
                r = run_built(r, targv, "vgchange", err);
        }
        cache_forget(vg);
        return r;
}

static int lv_names_joined(const struct lvm_lv_info *lvs, size_t n, char **ret) {
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < n; i++)
                if (strv_push(&l, lvs[i].name) < 0)
                        return -ENOMEM;
        *ret = strv_join(l, ", ", false);
        return *ret ? 0 : -ENOMEM;
}

static int logical_pool_delete(const struct pool_def *def, struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        struct lvm_vg_info info = {0};
        r = query_vg(def, &info, err);
        if (r < 0)
                return r;
        if (!info.found) {
                lvm_vg_info_done(&info);
                return 0;
        }
        r = check_devices(def, vg, &info, err);
        struct lvm_lv_info *lvs = NULL;
        size_t n = 0;
        if (r >= 0) {
                cache_forget(vg); /* a fresh listing: this decides whether data goes */
                r = get_lvs(def, &info, &lvs, &n, err);
        }
        if (r >= 0 && n > 0) {
                _cleanup_free_ char *names = NULL;
                r = lv_names_joined(lvs, n, &names);
                r = dv_error_add(err, r < 0 ? r : -ENOTEMPTY, 0,
                                 "volume group %s still holds %zu logical volume%s (%s)", vg, n,
                                 n == 1 ? "" : "s", strna(names));
        }
        lvm_lv_info_array_free(lvs, n);
        if (r < 0) {
                lvm_vg_info_done(&info);
                return r;
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_vgremove_argv(def, &argv);
        r = run_built(r, argv, "vgremove", err);
        /* The PVs were made by build (delete runs only for what the agent created). */
        for (size_t i = 0; r >= 0 && info.pvs && info.pvs[i]; i++) {
                if (info.pvs[i][0] != '/')
                        continue; /* "[unknown]": a missing device */
                _cleanup_strv_free_ char **pargv = NULL;
                r = drv_lvm_pvremove_argv(info.pvs[i], &pargv);
                r = run_built(r, pargv, "pvremove", err);
        }
        lvm_vg_info_done(&info);
        cache_forget(vg);
        return r;
}

/* ---- volumes ----------------------------------------------------------------------------- */

static char *logical_vol_path(const struct pool_def *def, const char *name) {
        const char *vg = vg_of(def);
        char *p = NULL;
        if (!vg || lv_name_problem(name) || asprintf(&p, "/dev/%s/%s", vg, name) < 0)
                return NULL;
        return p;
}

/* The VG (which must exist and be this pool's) and its LVs, fresh from vgs. */
static int vg_and_lvs(const struct pool_def *def, struct lvm_vg_info *info,
                      struct lvm_lv_info **lvs, size_t *n, struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        r = query_vg(def, info, err);
        if (r >= 0 && !info->found)
                r = dv_error_add(err, -ENOENT, 0, "volume group %s does not exist", vg);
        if (r >= 0)
                r = check_devices(def, vg, info, err);
        if (r >= 0)
                r = get_lvs(def, info, lvs, n, err);
        if (r < 0)
                lvm_vg_info_done(info);
        return r;
}

static const struct lvm_lv_info *lv_find(const struct lvm_lv_info *lvs, size_t n,
                                         const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(lvs[i].name, name))
                        return &lvs[i];
        return NULL;
}

static int logical_vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                            struct dv_error *err) {
        const char *vg;
        int r = check_vg(def, &vg, err);
        if (r < 0)
                return r;
        struct lvm_vg_info info = {0};
        struct lvm_lv_info *lvs = NULL;
        size_t nlv = 0;
        if (!cache_recent(vg, &info, &lvs, &nlv)) {
                r = vg_and_lvs(def, &info, &lvs, &nlv, err);
                if (r < 0)
                        return r;
        }
        lvm_vg_info_done(&info);
        struct vol_status *v = calloc(nlv ? nlv : 1, sizeof(*v));
        size_t nv = 0;
        if (!v)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < nlv; i++) {
                if (lv_name_problem(lvs[i].name) || dv_name_problem(DV_KIND_VOLUME, lvs[i].name)) {
                        log_debug("pool %s: not listing LV '%s'", strna(def->name), lvs[i].name);
                        continue;
                }
                struct vol_status *s = &v[nv++];
                *s = (struct vol_status){
                        .name = strdup(lvs[i].name),
                        .path = logical_vol_path(def, lvs[i].name),
                        .type = strdup("block"),
                        .capacity = lvs[i].size,
                        .allocation = lvs[i].size, /* thick LVs: every extent is allocated */
                };
                if (!s->name || !s->path || !s->type)
                        r = -ENOMEM;
        }
        lvm_lv_info_array_free(lvs, nlv);
        if (r < 0) {
                vol_status_array_free(v, nv);
                return dv_error_oom(err);
        }
        *ret = v;
        *n = nv;
        return 0;
}

/* LVM rounds sizes up to whole extents; the planner would then see a volume larger
 * than written and refuse it as a shrink, so sizes must be whole extents. */
static int check_extent(const struct pool_def *def, const char *name, uint64_t capacity,
                        const struct lvm_vg_info *info, struct dv_error *err) {
        uint64_t ext = info->extent_size;
        if (ext == 0 || capacity % ext == 0)
                return 0;
        uint64_t up = (capacity / ext + 1) * ext;
        return dv_error_add(err, -EINVAL, 0,
                            "volume %s: capacity %" PRIu64
                            " bytes is not a multiple of the extent size (%" PRIu64
                            " bytes) of pool %s; LVM would make it %" PRIu64 " bytes: write that",
                            name, capacity, ext, strna(def->name), up);
}

static int logical_vol_create(const struct pool_def *def, const struct volume_def *vol,
                              struct dv_error *err) {
        const char *why = lv_name_problem(vol->name);
        if (!why)
                why = dv_name_problem(DV_KIND_VOLUME, vol->name);
        if (why)
                return dv_error_add(err, -EINVAL, 0, "volume name '%s': %s", strna(vol->name), why);
        const char *format = volume_def_format_type(vol);
        if (!streq(format, "raw"))
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "volume %s: format '%s' cannot be created in logical pool %s "
                                    "(LVs are raw block devices)",
                                    vol->name, format, strna(def->name));
        if (!vol->has_capacity || vol->capacity == 0)
                return dv_error_add(err, -EINVAL, 0, "volume %s has no capacity", vol->name);
        struct lvm_vg_info info = {0};
        struct lvm_lv_info *lvs = NULL;
        size_t n = 0;
        int r = vg_and_lvs(def, &info, &lvs, &n, err);
        if (r < 0)
                return r;
        if (lv_find(lvs, n, vol->name))
                r = dv_error_add(err, -EEXIST, 0, "logical volume %s/%s already exists",
                                 pool_def_vg_name(def), vol->name);
        if (r >= 0)
                r = check_extent(def, vol->name, vol->capacity, &info, err);
        if (r >= 0 && vol->capacity > info.free)
                r = dv_error_add(err, -ENOSPC, 0,
                                 "volume %s needs %" PRIu64 " bytes but pool %s has only %" PRIu64
                                 " available",
                                 vol->name, vol->capacity, strna(def->name), info.free);
        lvm_lv_info_array_free(lvs, n);
        lvm_vg_info_done(&info);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_lvcreate_argv(def, vol, &argv);
        r = run_built(r, argv, "lvcreate", err);
        cache_forget(pool_def_vg_name(def));
        return r;
}

static int logical_vol_resize(const struct pool_def *def, const struct volume_def *vol,
                              uint64_t capacity, struct dv_error *err) {
        if (lv_name_problem(vol->name))
                return dv_error_add(err, -EINVAL, 0, "volume name '%s' is not valid",
                                    strna(vol->name));
        struct lvm_vg_info info = {0};
        struct lvm_lv_info *lvs = NULL;
        size_t n = 0;
        int r = vg_and_lvs(def, &info, &lvs, &n, err);
        if (r < 0)
                return r;
        const struct lvm_lv_info *lv = lv_find(lvs, n, vol->name);
        uint64_t current = lv ? lv->size : 0;
        if (!lv)
                r = dv_error_add(err, -ENOENT, 0, "logical volume %s/%s does not exist",
                                 pool_def_vg_name(def), vol->name);
        else if (capacity < current)
                r = dv_error_add(err, -EINVAL, 0,
                                 "shrinking volume %s from %" PRIu64 " to %" PRIu64
                                 " bytes would lose data",
                                 vol->name, current, capacity);
        else if (capacity > current) {
                r = check_extent(def, vol->name, capacity, &info, err);
                if (r >= 0 && capacity - current > info.free)
                        r = dv_error_add(err, -ENOSPC, 0,
                                         "volume %s needs %" PRIu64
                                         " more bytes but pool %s has only %" PRIu64 " available",
                                         vol->name, capacity - current, strna(def->name),
                                         info.free);
        }
        lvm_lv_info_array_free(lvs, n);
        lvm_vg_info_done(&info);
        if (r < 0 || capacity == current)
                return r;
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_lvextend_argv(def, vol->name, capacity, &argv);
        r = run_built(r, argv, "lvextend", err);
        cache_forget(pool_def_vg_name(def));
        return r;
}

static int logical_vol_delete(const struct pool_def *def, const char *name, struct dv_error *err) {
        if (lv_name_problem(name))
                return dv_error_add(err, -EINVAL, 0, "volume name '%s' is not valid", strna(name));
        struct lvm_vg_info info = {0};
        struct lvm_lv_info *lvs = NULL;
        size_t n = 0;
        int r = vg_and_lvs(def, &info, &lvs, &n, err);
        if (r < 0)
                return r;
        lvm_vg_info_done(&info);
        bool exists = lv_find(lvs, n, name) != NULL;
        /* lvremove -f of an origin would take its snapshots along. */
        _cleanup_strv_free_ char **snaps = NULL;
        for (size_t i = 0; i < n && r >= 0; i++)
                if (streq_ptr(lvs[i].origin, name) && strv_push(&snaps, lvs[i].name) < 0)
                        r = dv_error_oom(err);
        lvm_lv_info_array_free(lvs, n);
        if (r < 0)
                return r;
        if (!exists)
                return 0;
        if (snaps) {
                _cleanup_free_ char *l = strv_join(snaps, ", ", false);
                return dv_error_add(err, -EBUSY, 0,
                                    "logical volume %s/%s has snapshots (%s); not removing it",
                                    pool_def_vg_name(def), name, strna(l));
        }
        _cleanup_strv_free_ char **argv = NULL;
        r = drv_lvm_lvremove_argv(def, name, &argv);
        r = run_built(r, argv, "lvremove", err);
        cache_forget(pool_def_vg_name(def));
        return r;
}

const struct storage_driver storage_driver_logical = {
        .type = POOL_LOGICAL,
        .pool_observe = logical_pool_observe,
        .pool_build = logical_pool_build,
        .pool_start = logical_pool_start,
        .pool_stop = logical_pool_stop,
        .pool_delete = logical_pool_delete,
        .vol_list = logical_vol_list,
        .vol_create = logical_vol_create,
        .vol_resize = logical_vol_resize,
        .vol_delete = logical_vol_delete,
        .vol_path = logical_vol_path,
};
