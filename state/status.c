/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* status.xml and metrics.prom: formatting a status snapshot, parsing status.xml
 * back for the `status` and `wait` commands, and the settled rule they share. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/xml.h"
#include "state/status.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/parse.h"

const double status_duration_bounds[12] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, INFINITY,
};

const char *const status_phases[STATUS_N_PHASES] = {
        "pending", "waiting", "creating", "ready",    "stopping",
        "stopped", "failed",  "blocked",  "removing",
};

static const char *const status_kinds[] = {"pool", "volume", "network", "domain"};

/* ---- small helpers -------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p that XML 1.0 allows, 0 when invalid.
 * p is NUL-terminated, and a NUL is never a continuation byte, so no check reads
 * past the end. */
static size_t utf8_len(const unsigned char *p) {
        unsigned c = p[0];
        if (c < 0x80)
                return 1;
        if (c < 0xc2 || c > 0xf4 || (p[1] & 0xc0) != 0x80)
                return 0;
        if (c < 0xe0)
                return 2;
        if ((p[2] & 0xc0) != 0x80)
                return 0;
        if (c < 0xf0) {
                if ((c == 0xe0 && p[1] < 0xa0) ||
                    (c == 0xed && p[1] >= 0xa0)) /* overlong, surrogate */
                        return 0;
                if (c == 0xef && p[1] == 0xbf &&
                    (p[2] == 0xbe || p[2] == 0xbf)) /* U+FFFE, U+FFFF */
                        return 0;
                return 3;
        }
        if ((p[3] & 0xc0) != 0x80 || (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
                return 0;
        return 4;
}

/* Messages carry command output and file names, which need not be UTF-8; one bad
 * byte would make the whole status.xml unreadable (libxml2 refuses it), so bad
 * bytes become U+FFFD. Returns s itself when it is clean, else a copy in *tmp. */
static const char *utf8_clean(const char *s, char **tmp) {
        if (!s)
                return NULL;
        const unsigned char *p = (const unsigned char *)s;
        size_t k;
        while (*p && (k = utf8_len(p)) > 0)
                p += k;
        if (!*p)
                return s;
        struct buf b = BUF_INIT;
        buf_putn(&b, s, (size_t)(p - (const unsigned char *)s));
        while (*p) {
                k = utf8_len(p);
                if (k == 0) {
                        buf_puts(&b, "\xef\xbf\xbd");
                        p++;
                } else {
                        buf_putn(&b, (const char *)p, k);
                        p += k;
                }
        }
        *tmp = buf_steal(&b);
        return *tmp ? *tmp : "?";
}

static void attr(struct buf *b, const char *name, const char *value) {
        _cleanup_free_ char *tmp = NULL;
        xml_attr(b, name, utf8_clean(value, &tmp));
}

static const char *nonempty(const char *s) {
        return s && *s ? s : NULL;
}

const char *status_format_time(char buf[static 32], uint64_t usec) {
        time_t t = (time_t)(usec / USEC_PER_SEC);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "@%" PRIu64, usec / USEC_PER_SEC);
        return buf;
}

static const char *digits(const char *s, int n, int *ret) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return NULL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return s + n;
}

int status_parse_time(const char *s, uint64_t *ret_usec) {
        int year, mon, day, hour, min, sec, oh = 0, om = 0;
        const char *p = s;
        if (!(p = digits(p, 4, &year)) || *p++ != '-' || !(p = digits(p, 2, &mon)) || *p++ != '-' ||
            !(p = digits(p, 2, &day)) || (*p != 'T' && *p != 't' && *p != ' ') ||
            !(p = digits(p + 1, 2, &hour)) || *p++ != ':' || !(p = digits(p, 2, &min)) ||
            *p++ != ':' || !(p = digits(p, 2, &sec)))
                return -EINVAL;
        if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
                return -EINVAL;
        uint64_t frac = 0;
        if (*p == '.') {
                int nd = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, nd++)
                        if (nd < 6)
                                frac = frac * 10 + (uint64_t)(*p - '0');
                if (nd == 0)
                        return -EINVAL;
                for (; nd < 6; nd++)
                        frac *= 10;
        }
        int sign = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                sign = *p == '+' ? 1 : -1;
                if (!(p = digits(p + 1, 2, &oh)) || *p++ != ':' || !(p = digits(p, 2, &om)) ||
                    oh > 23 || om > 59)
                        return -EINVAL;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        struct tm tm = {
                .tm_year = year - 1900,
                .tm_mon = mon - 1,
                .tm_mday = day,
                .tm_hour = hour,
                .tm_min = min,
                .tm_sec = sec == 60 ? 59 : sec,
        };
        time_t t = timegm(&tm);
        /* timegm normalizes February 30th to March; -1 is also a valid result. */
        if (tm.tm_mday != day || tm.tm_mon != mon - 1 || tm.tm_year != year - 1900)
                return -EINVAL;
        t -= (time_t)sign * (oh * 3600 + om * 60);
        if (t < 0)
                return -ERANGE;
        *ret_usec = (uint64_t)t * USEC_PER_SEC + frac;
        return 0;
}

const struct status_condition *status_condition_find(const struct status_object *o,
                                                     const char *type) {
        for (size_t i = 0; o && i < o->n_conditions; i++)
                if (streq_ptr(o->conditions[i].type, type))
                        return &o->conditions[i];
        return NULL;
}

bool status_condition_true(const struct status_object *o, const char *type) {
        const struct status_condition *c = status_condition_find(o, type);
        return c && c->status;
}

int status_object_settled(const struct status_object *o, bool want_down) {
        if (!o || !o->phase)
                return 0;
        if (streq(o->phase, "failed") || streq(o->phase, "blocked") ||
            status_condition_true(o, "Duplicate"))
                return -1;
        if (want_down)
                return streq(o->phase, "stopped");
        if (streq(o->phase, "ready"))
                return 1;
        return streq(o->phase, "stopped") && status_condition_true(o, "HeldDown");
}

void status_count(const struct status_snapshot *s, struct status_counts *ret) {
        *ret = (struct status_counts){.invalid_files = s->n_files};
        for (size_t i = 0; i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                if (!o->managed)
                        continue;
                ret->objects++;
                if (streq_ptr(o->phase, "ready"))
                        ret->ready++;
                else if (streq_ptr(o->phase, "failed"))
                        ret->failed++;
                else if (streq_ptr(o->phase, "blocked"))
                        ret->blocked++;
                if (status_condition_true(o, "FileInvalid"))
                        ret->invalid_files++;
        }
}

const struct status_object *status_find(const struct status_snapshot *s, const char *kind,
                                        const char *pool, const char *name) {
        for (size_t i = 0; s && i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                if (streq_ptr(o->kind, kind) && streq_ptr(o->name, name) &&
                    (!streq_ptr(kind, "volume") || streq_ptr(o->pool, pool)))
                        return o;
        }
        return NULL;
}

int status_parse_object_id(const char *id, char **ret_kind, char **ret_pool, char **ret_name) {
        const char *slash = strchr(id, '/');
        if (!slash || slash == id || !slash[1])
                return -EINVAL;
        size_t kl = (size_t)(slash - id);
        const char *kind = NULL;
        for (size_t i = 0; i < ELEMENTSOF(status_kinds); i++)
                if (strlen(status_kinds[i]) == kl && memcmp(status_kinds[i], id, kl) == 0)
                        kind = status_kinds[i];
        if (!kind)
                return -EINVAL;
        const char *rest = slash + 1, *name = rest;
        _cleanup_free_ char *pool = NULL;
        if (streq(kind, "volume")) {
                const char *s2 = strchr(rest, '/');
                if (!s2 || s2 == rest || !s2[1])
                        return -EINVAL;
                pool = strndup(rest, (size_t)(s2 - rest));
                if (!pool)
                        return -ENOMEM;
                name = s2 + 1;
        }
        /* Names never hold a '/' (docs/design.md#names). */
        if (strchr(name, '/'))
                return -EINVAL;
        _cleanup_free_ char *k = strdup(kind), *n = strdup(name);
        if (!k || !n)
                return -ENOMEM;
        *ret_kind = TAKE_PTR(k);
        *ret_name = TAKE_PTR(n);
        *ret_pool = TAKE_PTR(pool);
        return 0;
}

char *status_object_id(const struct status_object *o) {
        char *s = NULL;
        int r;
        if (streq_ptr(o->kind, "volume"))
                r = asprintf(&s, "volume/%s/%s", strempty(o->pool), strempty(o->name));
        else
                r = asprintf(&s, "%s/%s", strempty(o->kind), strempty(o->name));
        return r < 0 ? NULL : s;
}

/* ---- status.xml ----------------------------------------------------------------------- */

static void format_object(struct buf *b, const struct status_object *o) {
        char t[32];
        xml_open(b, "object");
        attr(b, "kind", o->kind);
        attr(b, "name", o->name);
        attr(b, "pool", o->pool);
        attr(b, "file", o->file);
        xml_attr(b, "managed", o->managed ? "yes" : "no");
        attr(b, "phase", o->phase);
        if (o->since_usec)
                xml_attr(b, "since", status_format_time(t, o->since_usec));
        attr(b, "desired-hash", o->desired_hash);
        attr(b, "applied-hash", o->applied_hash);
        if (o->n_conditions == 0 && !nonempty(o->message)) {
                xml_empty_end(b);
                return;
        }
        xml_open_end(b);
        for (size_t i = 0; i < o->n_conditions; i++) {
                const struct status_condition *c = &o->conditions[i];
                xml_open(b, "condition");
                attr(b, "type", c->type);
                xml_attr(b, "status", c->status ? "true" : "false");
                attr(b, "reason", c->reason);
                if (nonempty(c->message)) {
                        _cleanup_free_ char *tmp = NULL;
                        xml_text_end(b, "condition", utf8_clean(c->message, &tmp));
                } else
                        xml_empty_end(b);
        }
        if (nonempty(o->message)) {
                _cleanup_free_ char *tmp = NULL;
                xml_text_elem(b, "message", utf8_clean(o->message, &tmp));
        }
        xml_close(b, "object");
}

static void format_xml(struct buf *b, const struct status_snapshot *s, bool per_pass) {
        char t[32];
        struct status_counts c;
        status_count(s, &c);
        xml_open(b, "status");
        attr(b, "version", s->version);
        attr(b, "boot-id", s->boot_id);
        if (per_pass) {
                if (s->last_pass_usec)
                        xml_attr(b, "last-pass", status_format_time(t, s->last_pass_usec));
                xml_attr_u64(b, "last-pass-duration-ms",
                             s->last_pass_duration_usec / USEC_PER_MSEC);
                xml_attr_u64(b, "passes", s->passes);
        }
        xml_attr(b, "converged", s->converged ? "yes" : "no");
        xml_open_end(b);
        for (size_t i = 0; i < s->n_objects; i++)
                format_object(b, &s->objects[i]);
        for (size_t i = 0; i < s->n_files; i++) {
                const struct status_file_error *f = &s->files[i];
                xml_open(b, "file");
                attr(b, "path", f->path);
                if (f->line > 0)
                        xml_attrf(b, "line", "%d", f->line);
                attr(b, "error", f->error);
                xml_empty_end(b);
        }
        xml_open(b, "counts");
        xml_attr_u64(b, "objects", c.objects);
        xml_attr_u64(b, "ready", c.ready);
        xml_attr_u64(b, "failed", c.failed);
        xml_attr_u64(b, "blocked", c.blocked);
        xml_attr_u64(b, "invalid-files", c.invalid_files);
        xml_empty_end(b);
        xml_close(b, "status");
}

void status_format_xml(struct buf *b, const struct status_snapshot *s) {
        format_xml(b, s, true);
}

void status_content_hash(const struct status_snapshot *s, char out[static HASH_HEX_LEN + 1]) {
        struct buf b = BUF_INIT;
        format_xml(&b, s, false);
        /* Sizes are in metrics.prom, not in status.xml: they count as content too. */
        for (size_t i = 0; i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                if (o->has_sizes)
                        buf_printf(&b, "%zu %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i, o->capacity,
                                   o->allocation, o->available);
        }
        /* On allocation failure the hash of nothing differs from any real content,
         * so the caller writes the file again: the safe side. */
        hash_hex(buf_str(&b), b.oom ? 0 : b.len, out);
        buf_free(&b);
}

/* The structured error handler for documents larger than dv_xml_parse accepts. */
struct big_collector {
        struct dv_error *err;
        int n;
};

static void big_collect(void *userdata, xmlErrorPtr e) {
        struct big_collector *c = userdata;
        if (!e || c->n++ > 0)
                return;
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "malformed XML");
        size_t l = strlen(msg);
        while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
                msg[--l] = '\0';
        dv_error_add(c->err, -EINVAL, e->line, "malformed XML: %s", msg);
}

static void big_ignore(void *ctx, const char *msg, ...) {
        (void)ctx;
        (void)msg;
}

/* dv_xml_parse caps desired files at 1 MiB; status.xml of 10,000 objects is a
 * few MiB. Larger documents get the same safety here: no NUL, no DTD or entity
 * declaration (checked before parsing), no network, no entity substitution. */
static int parse_doc(const char *data, size_t len, xmlDoc **ret, struct dv_error *err) {
        if (len <= DV_XML_MAX_SIZE)
                return dv_xml_parse(data, len, ret, err);
        if (len > STATUS_MAX_SIZE)
                return dv_error_add(err, -EFBIG, 0, "file is larger than %u bytes",
                                    STATUS_MAX_SIZE);
        if (memchr(data, '\0', len))
                return dv_error_add(err, -EINVAL, 0, "file contains a NUL byte: not a text file");
        if (memmem(data, len, "<!DOCTYPE", 9) || memmem(data, len, "<!ENTITY", 8))
                return dv_error_add(err, -EINVAL, 0,
                                    "DTDs and entity declarations are not allowed");
        struct big_collector c = {.err = err};
        xmlSetStructuredErrorFunc(&c, big_collect);
        xmlSetGenericErrorFunc(NULL, big_ignore);
        xmlDoc *doc = xmlReadMemory(data, (int)len, "status.xml", "UTF-8",
                                    XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES);
        xmlSetStructuredErrorFunc(NULL, NULL);
        xmlSetGenericErrorFunc(NULL, NULL);
        if (!doc || c.n > 0 || doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
                if (doc)
                        xmlFreeDoc(doc);
                if (!dv_error_failed(err))
                        dv_error_add(err, -EINVAL, 0, "malformed XML");
                return err && err->code ? err->code : -EINVAL;
        }
        *ret = doc;
        return 0;
}

/* Raw element text: unlike dv_xml_text, nothing is trimmed, so messages come back
 * exactly. An element with no content gives NULL. */
static int raw_text(const xmlNode *n, char **ret) {
        if (!n->children)
                return 0;
        xmlChar *v = xmlNodeGetContent(n);
        if (!v)
                return -ENOMEM;
        char *s = NULL;
        if (*v) {
                s = strdup((const char *)v);
                if (!s) {
                        xmlFree(v);
                        return -ENOMEM;
                }
        }
        xmlFree(v);
        free(*ret);
        *ret = s;
        return 0;
}

static int prop_bool(const xmlNode *n, const char *name, const char *yes, const char *no, bool *ret,
                     struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, name, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        if (streq(v, yes))
                *ret = true;
        else if (streq(v, no))
                *ret = false;
        else
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "<%s %s='%s'>: expected '%s' or '%s'", (const char *)n->name,
                                    name, v, yes, no);
        return 1;
}

static int prop_time(const xmlNode *n, const char *name, uint64_t *ret, struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, name, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        if (status_parse_time(v, ret) < 0)
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "<%s %s='%s'>: not an RFC 3339 time", (const char *)n->name,
                                    name, v);
        return 1;
}

static int parse_condition(const xmlNode *n, struct status_condition *c, struct dv_error *err) {
        int r = dv_xml_prop_required(n, "type", &c->type, err);
        if (r < 0)
                return r;
        r = prop_bool(n, "status", "true", "false", &c->status, err);
        if (r < 0)
                return r;
        if (r == 0)
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "<condition> needs the attribute 'status'");
        if (dv_xml_prop(n, "reason", &c->reason) < 0 || raw_text(n, &c->message) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_object(const xmlNode *n, struct status_object *o, struct dv_error *err) {
        int r;
        o->managed = true;
        if ((r = dv_xml_prop_required(n, "kind", &o->kind, err)) < 0 ||
            (r = dv_xml_prop_required(n, "name", &o->name, err)) < 0 ||
            (r = dv_xml_prop_required(n, "phase", &o->phase, err)) < 0)
                return r;
        if (dv_xml_prop(n, "pool", &o->pool) < 0 || dv_xml_prop(n, "file", &o->file) < 0 ||
            dv_xml_prop(n, "desired-hash", &o->desired_hash) < 0 ||
            dv_xml_prop(n, "applied-hash", &o->applied_hash) < 0)
                return -ENOMEM;
        if ((r = prop_bool(n, "managed", "yes", "no", &o->managed, err)) < 0 ||
            (r = prop_time(n, "since", &o->since_usec, err)) < 0)
                return r;
        size_t nc = dv_xml_count(n, "condition");
        if (nc > 0 && !(o->conditions = calloc(nc, sizeof(*o->conditions))))
                return -ENOMEM;
        dv_xml_foreach_child(c, n) {
                if (dv_xml_is(c, "condition")) {
                        r = parse_condition(c, &o->conditions[o->n_conditions++], err);
                        if (r < 0)
                                return r;
                } else if (dv_xml_is(c, "message")) {
                        if (raw_text(c, &o->message) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int parse_file(const xmlNode *n, struct status_file_error *f, struct dv_error *err) {
        uint64_t line = 0;
        int r;
        if ((r = dv_xml_prop_required(n, "path", &f->path, err)) < 0)
                return r;
        if ((r = dv_xml_prop_u64(n, "line", 0, INT_MAX, &line, err)) < 0)
                return r;
        f->line = (int)line;
        if (dv_xml_prop(n, "error", &f->error) < 0)
                return -ENOMEM;
        return 0;
}

int status_parse_xml(const char *data, size_t len, struct status_snapshot **ret,
                     struct dv_error *err) {
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        int r = parse_doc(data, len, &doc, err);
        if (r < 0)
                return r;
        xmlNode *root = xmlDocGetRootElement(doc);
        if (!dv_xml_is(root, "status"))
                return dv_error_add(err, -EINVAL, dv_xml_line(root),
                                    "root element is <%s>, not <status>", (const char *)root->name);
        struct status_snapshot *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        uint64_t ms = 0;
        if (dv_xml_prop(root, "version", &s->version) < 0 ||
            dv_xml_prop(root, "boot-id", &s->boot_id) < 0)
                r = -ENOMEM;
        else if ((r = prop_time(root, "last-pass", &s->last_pass_usec, err)) >= 0 &&
                 (r = dv_xml_prop_u64(root, "last-pass-duration-ms", 0, UINT64_MAX / USEC_PER_MSEC,
                                      &ms, err)) >= 0 &&
                 (r = dv_xml_prop_u64(root, "passes", 0, UINT64_MAX, &s->passes, err)) >= 0)
                r = prop_bool(root, "converged", "yes", "no", &s->converged, err);
        s->last_pass_duration_usec = ms * USEC_PER_MSEC;

        size_t no = dv_xml_count(root, "object"), nf = dv_xml_count(root, "file");
        if (r >= 0 && ((no && !(s->objects = calloc(no, sizeof(*s->objects)))) ||
                       (nf && !(s->files = calloc(nf, sizeof(*s->files))))))
                r = -ENOMEM;
        if (r >= 0)
                dv_xml_foreach_child(c, root) {
                        if (dv_xml_is(c, "object"))
                                r = parse_object(c, &s->objects[s->n_objects++], err);
                        else if (dv_xml_is(c, "file"))
                                r = parse_file(c, &s->files[s->n_files++], err);
                        if (r < 0)
                                break;
                }
        if (r < 0) {
                status_snapshot_free(s);
                return r == -ENOMEM && !dv_error_failed(err) ? dv_error_oom(err) : r;
        }
        *ret = s;
        return 0;
}

int status_read_file(const char *path, struct status_snapshot **ret, struct dv_error *err) {
        dv_error_set_file(err, path);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        }
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_full_fd(fd, STATUS_MAX_SIZE, &data, &len);
        if (r == -EFBIG)
                return dv_error_add(err, r, 0, "file is larger than %u bytes", STATUS_MAX_SIZE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        struct status_snapshot *s = NULL;
        r = status_parse_xml(data, len, &s, err);
        if (r < 0)
                return r;
        uint64_t mtime = (uint64_t)MAX(st.st_mtim.tv_sec, 0) * USEC_PER_SEC +
                         (uint64_t)st.st_mtim.tv_nsec / NSEC_PER_USEC;
        s->last_pass_usec = MAX(s->last_pass_usec, mtime);
        *ret = s;
        return 0;
}

/* ---- metrics.prom ------------------------------------------------------------------- */

/* Label values: backslash, double quote and newline escaped (the text format). */
static void label(struct buf *b, const char *name, const char *value, bool first) {
        _cleanup_free_ char *tmp = NULL;
        const char *v = utf8_clean(strempty(value), &tmp);
        buf_puts(b, first ? "{" : ",");
        buf_puts(b, name);
        buf_puts(b, "=\"");
        for (const char *p = v; *p; p++) {
                if (*p == '\\')
                        buf_puts(b, "\\\\");
                else if (*p == '"')
                        buf_puts(b, "\\\"");
                else if (*p == '\n')
                        buf_puts(b, "\\n");
                else
                        buf_putc(b, *p);
        }
        buf_putc(b, '"');
}

static void family(struct buf *b, const char *name, const char *type, const char *help) {
        buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(struct buf *b, const char *name, uint64_t v) {
        buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static size_t phase_index(const char *phase) {
        for (size_t i = 0; phase && i < STATUS_N_PHASES; i++)
                if (streq(phase, status_phases[i]))
                        return i;
        return SIZE_MAX;
}

static size_t kind_index(const char *kind) {
        for (size_t i = 0; kind && i < ELEMENTSOF(status_kinds); i++)
                if (streq(kind, status_kinds[i]))
                        return i;
        return SIZE_MAX;
}

static void format_duration_le(char out[static 32], double bound) {
        if (isinf(bound))
                snprintf(out, 32, "+Inf");
        else
                snprintf(out, 32, "%g", bound);
}

void status_format_metrics(struct buf *b, const struct status_snapshot *s) {
        size_t by_phase[ELEMENTSOF(status_kinds)][STATUS_N_PHASES] = {{0}};
        struct status_counts counts;
        status_count(s, &counts);
        for (size_t i = 0; i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                size_t k = kind_index(o->kind), p = phase_index(o->phase);
                if (o->managed && k != SIZE_MAX && p != SIZE_MAX)
                        by_phase[k][p]++;
        }

        family(b, "declvirt_objects", "gauge", "Managed objects by kind and phase.");
        for (size_t k = 0; k < ELEMENTSOF(status_kinds); k++)
                for (size_t p = 0; p < STATUS_N_PHASES; p++) {
                        buf_puts(b, "declvirt_objects");
                        label(b, "kind", status_kinds[k], true);
                        label(b, "phase", status_phases[p], false);
                        buf_printf(b, "} %zu\n", by_phase[k][p]);
                }

        family(b, "declvirt_object_ready", "gauge", "1 when a managed object is ready, else 0.");
        for (size_t i = 0; i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                if (!o->managed)
                        continue;
                buf_puts(b, "declvirt_object_ready");
                label(b, "kind", o->kind, true);
                label(b, "name", o->name, false);
                label(b, "pool", o->pool, false);
                buf_printf(b, "} %d\n", streq_ptr(o->phase, "ready") ? 1 : 0);
        }

        static const struct {
                const char *name, *help;
                size_t field; /* 0 capacity, 1 allocation, 2 available */
                bool volume;
        } sizes[] = {
                {"declvirt_pool_capacity_bytes", "Storage pool capacity in bytes.", 0, false},
                {"declvirt_pool_allocation_bytes", "Storage pool allocation in bytes.", 1, false},
                {"declvirt_pool_available_bytes", "Storage pool free space in bytes.", 2, false},
                {"declvirt_volume_capacity_bytes", "Volume capacity (virtual size) in bytes.", 0,
                 true},
                {"declvirt_volume_allocation_bytes", "Volume allocation (space used) in bytes.", 1,
                 true},
        };
        for (size_t m = 0; m < ELEMENTSOF(sizes); m++) {
                family(b, sizes[m].name, "gauge", sizes[m].help);
                for (size_t i = 0; i < s->n_objects; i++) {
                        const struct status_object *o = &s->objects[i];
                        if (!o->has_sizes ||
                            !streq_ptr(o->kind, sizes[m].volume ? "volume" : "pool"))
                                continue;
                        uint64_t v = sizes[m].field == 0   ? o->capacity
                                     : sizes[m].field == 1 ? o->allocation
                                                           : o->available;
                        buf_puts(b, sizes[m].name);
                        if (sizes[m].volume) {
                                label(b, "pool", o->pool, true);
                                label(b, "volume", o->name, false);
                        } else
                                label(b, "pool", o->name, true);
                        buf_printf(b, "} %" PRIu64 "\n", v);
                }
        }

        family(b, "declvirt_reconcile_duration_seconds", "histogram",
               "Duration of reconcile passes.");
        uint64_t cum = 0;
        for (size_t i = 0; i < ELEMENTSOF(status_duration_bounds); i++) {
                char le[32];
                cum += s->duration_buckets[i];
                /* +Inf must equal _count; a snapshot whose count disagrees with its
                 * buckets still gives a well-formed histogram. */
                if (isinf(status_duration_bounds[i]))
                        cum = MAX(cum, s->duration_count);
                format_duration_le(le, status_duration_bounds[i]);
                buf_puts(b, "declvirt_reconcile_duration_seconds_bucket");
                label(b, "le", le, true);
                buf_printf(b, "} %" PRIu64 "\n", cum);
        }
        buf_printf(b, "declvirt_reconcile_duration_seconds_sum %.6f\n", s->duration_sum_seconds);
        sample_u64(b, "declvirt_reconcile_duration_seconds_count", cum);

        family(b, "declvirt_actions_total", "counter", "Actions started since the agent started.");
        sample_u64(b, "declvirt_actions_total", s->actions_total);
        family(b, "declvirt_action_failures_total", "counter",
               "Actions that failed since the agent started.");
        sample_u64(b, "declvirt_action_failures_total", s->actions_failed_total);
        family(b, "declvirt_errors_total", "counter", "Errors recorded since the agent started.");
        sample_u64(b, "declvirt_errors_total", s->errors_total);
        family(b, "declvirt_invalid_files", "gauge",
               "Desired files that are invalid or refused now.");
        sample_u64(b, "declvirt_invalid_files", counts.invalid_files);
        family(b, "declvirt_last_pass_timestamp_seconds", "gauge",
               "End of the last pass recorded in status.xml, in seconds since the epoch.");
        buf_printf(b, "declvirt_last_pass_timestamp_seconds %" PRIu64 ".%06" PRIu64 "\n",
                   s->last_pass_usec / USEC_PER_SEC, s->last_pass_usec % USEC_PER_SEC);
        family(b, "declvirt_converged", "gauge",
               "1 when every managed object is in its desired phase.");
        sample_u64(b, "declvirt_converged", s->converged ? 1 : 0);
}

/* ---- freeing -------------------------------------------------------------------------- */

void status_object_done(struct status_object *o) {
        if (!o)
                return;
        free(o->kind);
        free(o->name);
        free(o->pool);
        free(o->file);
        free(o->phase);
        free(o->desired_hash);
        free(o->applied_hash);
        free(o->message);
        for (size_t i = 0; i < o->n_conditions; i++) {
                free(o->conditions[i].type);
                free(o->conditions[i].reason);
                free(o->conditions[i].message);
        }
        free(o->conditions);
        *o = (struct status_object){0};
}

void status_snapshot_free_contents(struct status_snapshot *s) {
        if (!s)
                return;
        free(s->version);
        free(s->boot_id);
        for (size_t i = 0; i < s->n_objects; i++)
                status_object_done(&s->objects[i]);
        free(s->objects);
        for (size_t i = 0; i < s->n_files; i++) {
                free(s->files[i].path);
                free(s->files[i].error);
        }
        free(s->files);
        *s = (struct status_snapshot){0};
}

void status_snapshot_free(struct status_snapshot *s) {
        status_snapshot_free_contents(s);
        free(s);
}
