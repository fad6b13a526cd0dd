/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.conf: a strict reader for the agent's YAML configuration (docs/agent.conf.md),
 * driven by libyaml's event parser and a table of the known keys. */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <yaml.h>

#include "agent/config.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"

/* Nesting below a key's value that is tolerated while skipping a node we report as
 * wrong; deeper input is a hostile file, and stopping early bounds libyaml's stacks. */
#define MAX_DEPTH 32
/* After this many problems the rest of the file is not worth reading. */
#define MAX_PROBLEMS  20
#define MAX_LOCATIONS 256
/* User text quoted in a message is cut to this many bytes. */
#define SHOW_BYTES 64
#define SHOW_SIZE  (SHOW_BYTES + 4)

enum value_type {
        V_PATH,     /* a path; relative: against the config file's directory */
        V_OPT_PATH, /* the same, but "" or null means none */
        V_PROGRAM,  /* a program: a bare name is left for PATH, anything with a '/' is a path */
        V_DURATION, /* min..max in usec */
        V_UINT,     /* min..max */
        V_BOOL,
        V_LOG_LEVEL,
        V_PATTERNS, /* storage_locations */
        V_ACCEL,
        V_ID_RANGE, /* FIRST-LAST, at least min ids, within 1..max */
        V_TRISTATE,
        V_SECTION,
};

struct section;

struct key {
        const char *name;
        enum value_type type;
        size_t offset; /* into struct dv_config */
        uint64_t min, max;
        const struct section *section;
};

struct section {
        const char *name; /* NULL at the top level */
        const struct key *keys;
        size_t n_keys;
};

#define F(member) offsetof(struct dv_config, member)
#define HOUR_USEC (3600 * USEC_PER_SEC)

static const struct key qemu_keys[] = {
        {"binary", V_PROGRAM, F(qemu.binary), 0, 0, NULL},
        {"accel", V_ACCEL, F(qemu.accel), 0, 0, NULL},
        /* One id per QEMU domain: fewer than 16 is a typing mistake; (uid_t)-1 and
         * 65534 (nobody) are never handed out. */
        {"uid_range", V_ID_RANGE, F(qemu.uid_first), DV_QEMU_UID_RANGE_MIN, UINT32_MAX - 1, NULL},
};
static const struct key container_keys[] = {
        {"template_dir", V_PATH, F(container.template_dir), 0, 0, NULL},
        {"data_dir", V_PATH, F(container.data_dir), 0, 0, NULL},
        /* 65536 ids per container: a smaller range holds not even one. */
        {"id_range", V_ID_RANGE, F(container.id_first), DV_CONTAINER_IDS, UINT32_MAX - 1, NULL},
};
static const struct key xen_keys[] = {
        {"enabled", V_TRISTATE, F(xen.enabled), 0, 0, NULL},
        {"xl", V_PROGRAM, F(xen.xl), 0, 0, NULL},
};
static const struct section qemu_section = {"qemu", qemu_keys, ELEMENTSOF(qemu_keys)};
static const struct section container_section = {"container", container_keys,
                                                 ELEMENTSOF(container_keys)};
static const struct section xen_section = {"xen", xen_keys, ELEMENTSOF(xen_keys)};

/* The ranges are documented in docs/agent.conf.md: keep them in step. */
static const struct key top_keys[] = {
        {"desired_dir", V_PATH, F(desired_dir), 0, 0, NULL},
        {"state_dir", V_PATH, F(state_dir), 0, 0, NULL},
        {"run_dir", V_PATH, F(run_dir), 0, 0, NULL},
        /* A resync is a full pass: more often than 10/s is a mistake, and a day is
         * the longest drift anyone would accept going unnoticed. */
        {"resync_interval", V_DURATION, F(resync_interval_usec), 100 * USEC_PER_MSEC,
         24 * HOUR_USEC, NULL},
        /* docs/watcher.md: the debounce never delays a pass by more than 1 s. */
        {"debounce", V_DURATION, F(debounce_usec), 0, USEC_PER_SEC, NULL},
        {"max_parallel", V_UINT, F(max_parallel), 1, 256, NULL},
        {"removal_delay", V_DURATION, F(removal_delay_usec), 0, 24 * HOUR_USEC, NULL},
        {"log_level", V_LOG_LEVEL, F(log_level), 0, 0, NULL},
        {"strict_permissions", V_BOOL, F(strict_permissions), 0, 0, NULL},
        {"storage_locations", V_PATTERNS, F(storage_locations), 0, 0, NULL},
        {"metrics_file", V_OPT_PATH, F(metrics_file), 0, 0, NULL},
        {"secrets_dir", V_PATH, F(secrets_dir), 0, 0, NULL},
        {"qemu", V_SECTION, 0, 0, 0, &qemu_section},
        {"container", V_SECTION, 0, 0, 0, &container_section},
        {"xen", V_SECTION, 0, 0, 0, &xen_section},
};
static const struct section top_section = {NULL, top_keys, ELEMENTSOF(top_keys)};

/* Seen-line bookkeeping for duplicate keys is sized by the largest section. */
#define MAX_SECTION_KEYS 16
assert_cc(ELEMENTSOF(top_keys) <= MAX_SECTION_KEYS);

#define FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->offset))

/* ---- defaults and destruction ------------------------------------------------------ */

void dv_config_free(struct dv_config *c) {
        if (!c)
                return;
        free(c->path);
        free(c->desired_dir);
        free(c->state_dir);
        free(c->run_dir);
        strv_free(c->storage_locations);
        free(c->metrics_file);
        free(c->secrets_dir);
        free(c->qemu.binary);
        free(c->container.template_dir);
        free(c->container.data_dir);
        free(c->xen.xl);
        free(c);
}

int dv_config_new_default(struct dv_config **ret) {
        _cleanup_(dv_config_freep) struct dv_config *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->desired_dir = strdup("/etc/declvirt/desired.d");
        c->state_dir = strdup("/var/lib/declvirt/state");
        c->run_dir = strdup("/run/declvirt");
        c->secrets_dir = strdup("/etc/declvirt/secrets");
        c->qemu.binary = strdup("/usr/bin/qemu-system-x86_64");
        c->container.template_dir = strdup("/var/lib/declvirt/templates");
        c->container.data_dir = strdup("/var/lib/declvirt/containers");
        c->xen.xl = strdup("/usr/sbin/xl");
        if (!c->desired_dir || !c->state_dir || !c->run_dir || !c->secrets_dir || !c->qemu.binary ||
            !c->container.template_dir || !c->container.data_dir || !c->xen.xl)
                return -ENOMEM;
        c->resync_interval_usec = 30 * USEC_PER_SEC;
        c->debounce_usec = 10 * USEC_PER_MSEC;
        c->removal_delay_usec = 2 * USEC_PER_SEC;
        c->max_parallel = 4;
        c->log_level = LOG_INFO;
        c->strict_permissions = true;
        c->qemu.accel = DV_ACCEL_AUTO;
        c->qemu.uid_first = DV_QEMU_UID_FIRST;
        c->qemu.uid_last = DV_QEMU_UID_LAST;
        c->container.id_first = DV_CONTAINER_ID_FIRST;
        c->container.id_last = DV_CONTAINER_ID_LAST;
        c->xen.enabled = DV_AUTO;
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- paths --------------------------------------------------------------------------- */

/* Drops "." components and doubled or trailing slashes of an absolute path, in place.
 * ".." is kept: resolving it by text would be wrong across symlinks. */
/* p made absolute against base (an absolute directory) and simplified. */
static char *path_resolve(const char *base, const char *p) {
        char *r = path_make_absolute(p, base);
        if (r)
                path_simplify(r);
        return r;
}

static int current_dir(char **ret) {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
                return negative_errno();
        if (cwd[0] != '/') { /* "(unreachable)/..." when the cwd is outside our root */
                free(cwd);
                return -ENOENT;
        }
        *ret = cwd;
        return 0;
}

/* ---- the parser ---------------------------------------------------------------------- */

struct parser {
        yaml_parser_t yp;
        yaml_event_t ev;
        bool have_ev;
        const char *data;
        size_t len;
        const char *base; /* the config file's directory, absolute */
        struct dv_config *c;
        struct dv_error *err;
        int r; /* the first problem's errno */
        unsigned n_problems;
};

/* Copies user text into a message: cut at a character boundary, control characters
 * shown as '?', so that every message stays one readable line. */
static const char *show(char out[static SHOW_SIZE], const char *s, size_t len) {
        size_t n = len, o = 0;
        bool cut = false;
        if (len > SHOW_BYTES) {
                n = SHOW_BYTES;
                while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                        n--;
                cut = true;
        }
        for (size_t i = 0; i < n; i++)
                out[o++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        if (cut) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o] = '\0';
        return out;
}

static int ev_line(const struct parser *p) {
        size_t l = p->ev.start_mark.line + 1;
        return l > INT_MAX ? INT_MAX : (int)l;
}

static const char *ev_what(const struct parser *p) {
        switch (p->ev.type) {
        case YAML_SCALAR_EVENT:
                return "a scalar";
        case YAML_SEQUENCE_START_EVENT:
                return "a sequence";
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        default:
                return "nothing";
        }
}

static const char *ev_text(const struct parser *p) {
        return (const char *)p->ev.data.scalar.value;
}

static size_t ev_len(const struct parser *p) {
        return p->ev.data.scalar.length;
}

/* A problem that does not stop the parse: returns 0, or a negative errno once there
 * are so many problems that reading on is pointless. */
_printf_(4, 5) static int problem(struct parser *p, int r, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        dv_error_addv(p->err, r, line, fmt, ap);
        va_end(ap);
        KEEP(p->r, r);
        if (++p->n_problems < MAX_PROBLEMS)
                return 0;
        dv_error_add(p->err, r, line, "too many problems; the rest of the file was not read");
        return p->r;
}

/* A problem after which the parse stops. */
_printf_(4, 5) static int fatal(struct parser *p, int r, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        dv_error_addv(p->err, r, line, fmt, ap);
        va_end(ap);
        KEEP(p->r, r);
        p->n_problems++;
        return p->r;
}

/* Out of memory: the parse stops. */
static int fatal_oom(struct parser *p) {
        KEEP(p->r, dv_error_oom(p->err));
        p->n_problems++;
        return p->r;
}

static int syntax_error(struct parser *p) {
        const yaml_parser_t *y = &p->yp;
        if (y->error == YAML_MEMORY_ERROR)
                return fatal_oom(p);
        const char *what = y->problem ? y->problem : "cannot parse";
        if (y->error == YAML_READER_ERROR) {
                /* Decoding problems have an offset, not a mark. */
                size_t end = MIN(y->problem_offset, p->len);
                int line = 1;
                for (size_t i = 0; i < end; i++)
                        if (p->data[i] == '\n' && line < INT_MAX)
                                line++;
                if (y->problem_value >= 0)
                        return fatal(p, -EINVAL, line, "malformed YAML: %s (byte 0x%02x)", what,
                                     (unsigned)y->problem_value & 0xff);
                return fatal(p, -EINVAL, line, "malformed YAML: %s", what);
        }
        int line = (int)MIN(y->problem_mark.line + 1, (size_t)INT_MAX);
        if (y->context) {
                int cline = (int)MIN(y->context_mark.line + 1, (size_t)INT_MAX);
                return fatal(p, -EINVAL, line, "malformed YAML: %s (%s on line %d)", what,
                             y->context, cline);
        }
        return fatal(p, -EINVAL, line, "malformed YAML: %s", what);
}

/* Refuses the YAML features that make a config mean more than it shows: anchors and
 * aliases (and with them "billion laughs" bombs) and explicit tags. */
static int check_node_props(struct parser *p, const yaml_char_t *anchor, const yaml_char_t *tag) {
        char s[SHOW_SIZE];
        if (anchor)
                return fatal(p, -EINVAL, ev_line(p),
                             "YAML anchors and aliases are not allowed (found '&%s')",
                             show(s, (const char *)anchor, strlen((const char *)anchor)));
        if (tag) {
                /* libyaml hands over the expanded tag; show it the way it was written. */
                const char *t = (const char *)tag, *core = "tag:yaml.org,2002:";
                bool short_form = strncmp(t, core, strlen(core)) == 0;
                if (short_form)
                        t += strlen(core);
                return fatal(p, -EINVAL, ev_line(p), "YAML tags are not allowed (found '%s%s')",
                             short_form ? "!!" : "", show(s, t, strlen(t)));
        }
        return 0;
}

static int next(struct parser *p) {
        if (p->have_ev) {
                yaml_event_delete(&p->ev);
                p->have_ev = false;
        }
        if (!yaml_parser_parse(&p->yp, &p->ev))
                return syntax_error(p);
        p->have_ev = true;
        char s[SHOW_SIZE];
        switch (p->ev.type) {
        case YAML_ALIAS_EVENT: {
                const char *a = (const char *)p->ev.data.alias.anchor;
                return fatal(p, -EINVAL, ev_line(p),
                             "YAML anchors and aliases are not allowed (found '*%s')",
                             show(s, strempty(a), strlen(strempty(a))));
        }
        case YAML_SCALAR_EVENT:
                return check_node_props(p, p->ev.data.scalar.anchor, p->ev.data.scalar.tag);
        case YAML_SEQUENCE_START_EVENT:
                return check_node_props(p, p->ev.data.sequence_start.anchor,
                                        p->ev.data.sequence_start.tag);
        case YAML_MAPPING_START_EVENT:
                return check_node_props(p, p->ev.data.mapping_start.anchor,
                                        p->ev.data.mapping_start.tag);
        default:
                return 0;
        }
}

/* Consumes the node whose first event is the current one. */
static int skip_node(struct parser *p) {
        int depth = 0;
        for (;;) {
                switch (p->ev.type) {
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (++depth > MAX_DEPTH)
                                return fatal(p, -EINVAL, ev_line(p),
                                             "nesting is deeper than %d levels", MAX_DEPTH);
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        depth--;
                        break;
                default:
                        break;
                }
                if (depth <= 0)
                        return 0;
                int r = next(p);
                if (r < 0)
                        return r;
        }
}

static bool ev_is_null(const struct parser *p) {
        if (p->ev.type != YAML_SCALAR_EVENT || p->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *s = ev_text(p);
        return ev_len(p) == 0 || streq(s, "~") || streq(s, "null") || streq(s, "Null") ||
               streq(s, "NULL");
}

/* The current event as a string value. Returns 1 with *ret set (NULL for a null value
 * when allow_null), 0 when a problem was recorded and the node skipped, or a negative
 * errno to stop. */
static int want_scalar(struct parser *p, const char *name, const char *expected, bool allow_null,
                       const char **ret) {
        if (p->ev.type != YAML_SCALAR_EVENT) {
                int r = problem(p, -EINVAL, ev_line(p), "'%s' must be %s, not %s", name, expected,
                                ev_what(p));
                return r < 0 ? r : skip_node(p);
        }
        if (ev_is_null(p)) {
                if (!allow_null)
                        return problem(p, -EINVAL, ev_line(p), "'%s' needs a value", name);
                *ret = NULL;
                return 1;
        }
        if (strlen(ev_text(p)) != ev_len(p))
                return problem(p, -EINVAL, ev_line(p), "'%s' contains a NUL byte", name);
        *ret = ev_text(p);
        return 1;
}

static int set_string(char **field, char *value) {
        if (!value)
                return -ENOMEM;
        free(*field);
        *field = value;
        return 0;
}

/* Bounds of a duration, for messages: "0", "100ms", "1s", "24h". */
static const char *format_bound(char buf[static 32], uint64_t usec) {
        if (usec == 0)
                return "0";
        if (usec % HOUR_USEC == 0)
                snprintf(buf, 32, "%" PRIu64 "h", usec / HOUR_USEC);
        else if (usec % (60 * USEC_PER_SEC) == 0 && usec >= 60 * USEC_PER_SEC)
                snprintf(buf, 32, "%" PRIu64 "m", usec / (60 * USEC_PER_SEC));
        else
                format_duration(buf, usec);
        return buf;
}

static int parse_duration_checked(const char *s, uint64_t *ret) {
        /* parse_duration_usec can wrap around when a fraction is added to a whole part
         * close to 2^64 usec. A fraction after ten or more digits is beyond every bound
         * here in any unit but "us" (where a fraction means nothing), so refuse it first. */
        size_t digits = strspn(s, "0123456789");
        if (s[digits] == '.' && digits >= 10)
                return -ERANGE;
        return parse_duration_usec(s, ret);
}

static int parse_patterns(struct parser *p, const char *name, char ***field) {
        char s[SHOW_SIZE];
        if (ev_is_null(p)) {
                strv_free(*field);
                *field = NULL;
                return 0;
        }
        if (p->ev.type != YAML_SEQUENCE_START_EVENT) {
                int r = problem(p, -EINVAL, ev_line(p),
                                "'%s' must be a sequence of patterns, not %s", name, ev_what(p));
                return r < 0 ? r : skip_node(p);
        }
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        bool bad = false;
        for (;;) {
                int r = next(p);
                if (r < 0)
                        return r;
                if (p->ev.type == YAML_SEQUENCE_END_EVENT)
                        break;
                const char *v = NULL;
                if (p->ev.type != YAML_SCALAR_EVENT) {
                        r = problem(p, -EINVAL, ev_line(p), "'%s' entries must be strings, not %s",
                                    name, ev_what(p));
                        if (r >= 0)
                                r = skip_node(p);
                } else if (ev_is_null(p) || ev_len(p) == 0)
                        r = problem(p, -EINVAL, ev_line(p), "'%s' has an empty entry", name);
                else if (strlen(ev_text(p)) != ev_len(p))
                        r = problem(p, -EINVAL, ev_line(p), "'%s' entry contains a NUL byte", name);
                else if (ev_text(p)[0] != '/')
                        r = problem(p, -EINVAL, ev_line(p),
                                    "'%s' entry '%s' is not an absolute path", name,
                                    show(s, ev_text(p), ev_len(p)));
                else if (n >= MAX_LOCATIONS) {
                        /* Said once, not for every entry past the limit. */
                        if (n++ == MAX_LOCATIONS)
                                r = problem(p, -E2BIG, ev_line(p), "'%s' has more than %d entries",
                                            name, MAX_LOCATIONS);
                } else {
                        n++;
                        v = ev_text(p);
                }
                if (r < 0)
                        return r;
                if (!v) {
                        bad = true;
                        continue;
                }
                char *c = strdup(v);
                if (!c)
                        return fatal_oom(p);
                /* Trailing slashes would make a pattern match nothing. */
                path_simplify(c);
                if (strv_consume(&l, c) < 0)
                        return fatal_oom(p);
        }
        if (!bad) {
                strv_free(*field);
                *field = TAKE_PTR(l);
        }
        return 0;
}

static int parse_mapping(struct parser *p, const struct section *sec);

/* The current event starts the value of key k; name is its dotted name for messages. */
static int parse_value(struct parser *p, const struct key *k, const char *name) {
        char s[SHOW_SIZE], b1[32], b2[32];
        const char *v = NULL;
        int r, line = ev_line(p);

        switch (k->type) {
        case V_PATH:
        case V_OPT_PATH:
        case V_PROGRAM: {
                bool optional = k->type == V_OPT_PATH;
                r = want_scalar(p, name, k->type == V_PROGRAM ? "a program or path" : "a path",
                                optional, &v);
                if (r <= 0)
                        return r;
                char **field = FIELD(p->c, k, char *);
                if (optional && (!v || !*v)) {
                        free(*field);
                        *field = NULL;
                        return 0;
                }
                if (!*v)
                        return problem(p, -EINVAL, line, "'%s' must not be empty", name);
                char *value = k->type == V_PROGRAM && !strchr(v, '/') ? strdup(v)
                                                                      : path_resolve(p->base, v);
                if (set_string(field, value) < 0)
                        return fatal_oom(p);
                return 0;
        }
        case V_DURATION: {
                r = want_scalar(p, name, "a duration", false, &v);
                if (r <= 0)
                        return r;
                uint64_t usec;
                r = parse_duration_checked(v, &usec);
                if (r == -EINVAL)
                        return problem(
                                p, r, line,
                                "'%s': invalid duration '%s' (write it like 100ms, 30s, 2m or 1h)",
                                name, show(s, v, ev_len(p)));
                if (r < 0 || usec < k->min || usec > k->max)
                        return problem(p, -ERANGE, line, "'%s' must be between %s and %s, not %s",
                                       name, format_bound(b1, k->min), format_bound(b2, k->max),
                                       show(s, v, ev_len(p)));
                *FIELD(p->c, k, uint64_t) = usec;
                return 0;
        }
        case V_UINT: {
                r = want_scalar(p, name, "a number", false, &v);
                if (r <= 0)
                        return r;
                uint64_t n;
                r = parse_u64(v, &n);
                if (r == -EINVAL)
                        return problem(p, r, line, "'%s' must be a whole number, not '%s'", name,
                                       show(s, v, ev_len(p)));
                if (r < 0 || n < k->min || n > k->max)
                        return problem(p, -ERANGE, line,
                                       "'%s' must be between %" PRIu64 " and %" PRIu64 ", not %s",
                                       name, k->min, k->max, show(s, v, ev_len(p)));
                *FIELD(p->c, k, unsigned) = (unsigned)n;
                return 0;
        }
        case V_BOOL: {
                r = want_scalar(p, name, "true or false", false, &v);
                if (r <= 0)
                        return r;
                /* YAML 1.2's spellings, plus the yes/no of YAML 1.1 that people write. */
                static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES"};
                static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO"};
                for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                        if (streq(v, yes[i]) || streq(v, no[i])) {
                                *FIELD(p->c, k, bool) = streq(v, yes[i]);
                                return 0;
                        }
                }
                return problem(p, -EINVAL, line, "'%s' must be true or false, not '%s'", name,
                               show(s, v, ev_len(p)));
        }
        case V_LOG_LEVEL: {
                r = want_scalar(p, name, "a log level", false, &v);
                if (r <= 0)
                        return r;
                int level = log_level_from_string(v);
                if (level < 0)
                        return problem(
                                p, -EINVAL, line,
                                "'%s' must be one of debug, info, notice, warning, error, not '%s'",
                                name, show(s, v, ev_len(p)));
                *FIELD(p->c, k, int) = level;
                return 0;
        }
        case V_ACCEL: {
                r = want_scalar(p, name, "kvm, tcg or auto", false, &v);
                if (r <= 0)
                        return r;
                enum dv_qemu_accel a;
                if (streq(v, "auto"))
                        a = DV_ACCEL_AUTO;
                else if (streq(v, "kvm"))
                        a = DV_ACCEL_KVM;
                else if (streq(v, "tcg"))
                        a = DV_ACCEL_TCG;
                else
                        return problem(p, -EINVAL, line,
                                       "'%s' must be one of kvm, tcg, auto, not '%s'", name,
                                       show(s, v, ev_len(p)));
                *FIELD(p->c, k, enum dv_qemu_accel) = a;
                return 0;
        }
        case V_ID_RANGE: {
                r = want_scalar(p, name, "a range FIRST-LAST", false, &v);
                if (r <= 0)
                        return r;
                const char *dash = strchr(v, '-');
                _cleanup_free_ char *first_s = dash ? strndup(v, (size_t)(dash - v)) : NULL;
                uint64_t first = 0, last = 0;
                if (dash && !first_s)
                        return fatal_oom(p);
                if (!dash || parse_u64(first_s, &first) < 0 || parse_u64(dash + 1, &last) < 0)
                        return problem(p, -EINVAL, line,
                                       "'%s' must be a range of ids FIRST-LAST (3000000-3999999), "
                                       "not '%s'",
                                       name, show(s, v, ev_len(p)));
                if (first == 0 || last > k->max || first > last)
                        return problem(p, -ERANGE, line,
                                       "'%s' must lie within 1-%" PRIu64 " with FIRST <= LAST, "
                                       "not %s",
                                       name, k->max, show(s, v, ev_len(p)));
                if (last - first + 1 < k->min)
                        return problem(p, -ERANGE, line,
                                       "'%s' %s holds %" PRIu64 " ids, fewer than %" PRIu64 " (%s)",
                                       name, show(s, v, ev_len(p)), last - first + 1, k->min,
                                       k->min == DV_CONTAINER_IDS ? "the ids of one container"
                                                                  : "one per QEMU domain");
                uint32_t *field = FIELD(p->c, k, uint32_t);
                field[0] = (uint32_t)first;
                field[1] = (uint32_t)last;
                return 0;
        }
        case V_TRISTATE: {
                r = want_scalar(p, name, "auto, yes or no", false, &v);
                if (r <= 0)
                        return r;
                enum dv_tristate t;
                if (streq(v, "auto"))
                        t = DV_AUTO;
                else if (streq(v, "yes") || streq(v, "true"))
                        t = DV_YES;
                else if (streq(v, "no") || streq(v, "false"))
                        t = DV_NO;
                else
                        return problem(p, -EINVAL, line,
                                       "'%s' must be one of auto, yes, no, not '%s'", name,
                                       show(s, v, ev_len(p)));
                *FIELD(p->c, k, enum dv_tristate) = t;
                return 0;
        }
        case V_PATTERNS:
                return parse_patterns(p, name, FIELD(p->c, k, char **));
        case V_SECTION:
                /* "qemu:" with every sub-key commented out keeps the defaults. */
                if (ev_is_null(p))
                        return 0;
                if (p->ev.type != YAML_MAPPING_START_EVENT) {
                        r = problem(p, -EINVAL, line, "'%s' must be a mapping, not %s", name,
                                    ev_what(p));
                        return r < 0 ? r : skip_node(p);
                }
                return parse_mapping(p, k->section);
        }
        return fatal(p, -EINVAL, line, "internal error: unknown value type");
}

/* Optimal string alignment distance (Levenshtein plus transpositions), for
 * "did you mean". Long strings are never close to a key. */
static unsigned edit_distance(const char *a, size_t la, const char *b) {
        size_t lb = strlen(b);
        if (la > 32 || lb > 32)
                return UINT_MAX;
        unsigned d[33][33];
        for (size_t i = 0; i <= la; i++)
                d[i][0] = (unsigned)i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = (unsigned)j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        unsigned cost = a[i - 1] != b[j - 1];
                        unsigned v = MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
                        v = MIN(v, d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                v = MIN(v, d[i - 2][j - 2] + 1);
                        d[i][j] = v;
                }
        return d[la][lb];
}

static const struct key *section_find(const struct section *sec, const char *name, size_t len) {
        for (size_t i = 0; i < sec->n_keys; i++)
                if (strlen(sec->keys[i].name) == len && memcmp(sec->keys[i].name, name, len) == 0)
                        return &sec->keys[i];
        return NULL;
}

static int unknown_key(struct parser *p, const struct section *sec, const char *key, size_t len,
                       int line) {
        char s[SHOW_SIZE];
        const char *prefix = sec->name ? sec->name : "", *dot = sec->name ? "." : "";
        show(s, key, len);

        /* At the top level, a sub-key written flat ("accel:") or dotted ("qemu.accel:"); before
         * the spelling check, which would turn "xl" into "xen". */
        if (!sec->name)
                for (size_t i = 0; i < sec->n_keys; i++) {
                        const struct section *sub = sec->keys[i].section;
                        if (!sub)
                                continue;
                        size_t nl = strlen(sub->name);
                        bool dotted =
                                len > nl + 1 && memcmp(key, sub->name, nl) == 0 && key[nl] == '.';
                        const struct key *k = dotted ? section_find(sub, key + nl + 1, len - nl - 1)
                                                     : section_find(sub, key, len);
                        if (k)
                                return problem(
                                        p, -EINVAL, line,
                                        "unknown key '%s' (write '%s:' indented under '%s:')", s,
                                        k->name, sub->name);
                }

        const struct key *best = NULL;
        unsigned best_d = UINT_MAX;
        for (size_t i = 0; i < sec->n_keys; i++) {
                unsigned d = edit_distance(key, len, sec->keys[i].name);
                if (d < best_d) {
                        best_d = d;
                        best = &sec->keys[i];
                }
        }
        /* A distance as long as the key itself would suggest anything for short keys. */
        if (best && best_d <= 2 && best_d < strlen(best->name))
                return problem(p, -EINVAL, line, "unknown key '%s%s%s' (did you mean '%s%s%s'?)",
                               prefix, dot, s, prefix, dot, best->name);
        return problem(p, -EINVAL, line, "unknown key '%s%s%s'", prefix, dot, s);
}

/* The current event is the MAPPING_START of section sec; consumes up to its end. */
static int parse_mapping(struct parser *p, const struct section *sec) {
        int seen[MAX_SECTION_KEYS] = {0};
        for (;;) {
                int r = next(p);
                if (r < 0)
                        return r;
                if (p->ev.type == YAML_MAPPING_END_EVENT)
                        return 0;
                int line = ev_line(p);
                if (p->ev.type != YAML_SCALAR_EVENT) {
                        r = problem(p, -EINVAL, line, "a key must be a string, not %s", ev_what(p));
                        if (r >= 0)
                                r = skip_node(p);
                        if (r >= 0)
                                r = next(p);
                        if (r >= 0)
                                r = skip_node(p);
                        if (r < 0)
                                return r;
                        continue;
                }
                _cleanup_free_ char *key = malloc(ev_len(p) + 1);
                if (!key)
                        return fatal_oom(p);
                size_t len = ev_len(p);
                memcpy(key, ev_text(p), len + 1);
                const struct key *k = section_find(sec, key, len);

                r = next(p);
                if (r < 0)
                        return r;
                if (!k) {
                        r = unknown_key(p, sec, key, len, line);
                        if (r >= 0)
                                r = skip_node(p);
                        if (r < 0)
                                return r;
                        continue;
                }
                char name[64];
                snprintf(name, sizeof(name), "%s%s%s", sec->name ? sec->name : "",
                         sec->name ? "." : "", k->name);
                size_t i = (size_t)(k - sec->keys);
                if (seen[i]) {
                        r = problem(p, -EINVAL, line, "duplicate key '%s' (first on line %d)", name,
                                    seen[i]);
                        if (r >= 0)
                                r = skip_node(p);
                        if (r < 0)
                                return r;
                        continue;
                }
                seen[i] = line;
                r = parse_value(p, k, name);
                if (r < 0)
                        return r;
        }
}

static int parse_stream(struct parser *p) {
        int r = next(p);
        if (r < 0)
                return r;
        if (p->ev.type != YAML_STREAM_START_EVENT)
                return fatal(p, -EINVAL, ev_line(p), "malformed YAML: no stream start");
        r = next(p);
        if (r < 0)
                return r;
        if (p->ev.type == YAML_STREAM_END_EVENT)
                return 0; /* empty, or only comments: all defaults */

        /* DOCUMENT_START, then the root node. */
        r = next(p);
        if (r < 0)
                return r;
        if (p->ev.type == YAML_MAPPING_START_EVENT)
                r = parse_mapping(p, &top_section);
        else if (!ev_is_null(p)) {
                r = problem(p, -EINVAL, ev_line(p),
                            "the configuration must be a mapping of keys to values, not %s",
                            ev_what(p));
                if (r >= 0)
                        r = skip_node(p);
        }
        if (r < 0)
                return r;

        r = next(p); /* DOCUMENT_END */
        if (r < 0)
                return r;
        r = next(p);
        if (r < 0)
                return r;
        if (p->ev.type == YAML_DOCUMENT_START_EVENT)
                return fatal(p, -EINVAL, ev_line(p),
                             "more than one YAML document: only one is allowed");
        return 0;
}

int dv_config_parse(const char *data, size_t len, const char *path, struct dv_config **ret,
                    struct dv_error *err) {
        int r;
        if (path) {
                r = dv_error_set_file(err, path);
                if (r < 0)
                        return r;
        }
        if (len > DV_CONFIG_MAX_SIZE)
                return dv_error_add(err, -EFBIG, 0, "file is larger than %d bytes",
                                    DV_CONFIG_MAX_SIZE);

        _cleanup_free_ char *cwd = NULL, *abs_path = NULL, *base = NULL;
        /* Only a relative (or absent) path needs the current directory, which may be gone. */
        if (!path || path[0] != '/') {
                r = current_dir(&cwd);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot find the current directory: %s",
                                            strerror(-r));
        }
        if (path) {
                abs_path = path_resolve(cwd, path);
                base = abs_path ? path_dirname(abs_path) : NULL;
        } else
                base = strdup(cwd);
        if (!base)
                return dv_error_oom(err);

        _cleanup_(dv_config_freep) struct dv_config *c = NULL;
        r = dv_config_new_default(&c);
        if (r < 0)
                return dv_error_oom(err);
        c->path = TAKE_PTR(abs_path);

        struct parser p = {.data = data, .len = len, .base = base, .c = c, .err = err};
        if (!yaml_parser_initialize(&p.yp))
                return dv_error_oom(err);
        yaml_parser_set_input_string(&p.yp, (const unsigned char *)data, len);
        /* UTF-8 only: a UTF-16 file is refused rather than guessed. */
        yaml_parser_set_encoding(&p.yp, YAML_UTF8_ENCODING);
        r = parse_stream(&p);
        if (p.have_ev)
                yaml_event_delete(&p.ev);
        yaml_parser_delete(&p.yp);
        if (r < 0 || p.r < 0)
                return p.r < 0 ? p.r : r;
        *ret = TAKE_PTR(c);
        return 0;
}

int dv_config_load(const char *path, struct dv_config **ret, struct dv_error *err) {
        const char *p = path ? path : DV_CONFIG_DEFAULT_PATH;
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_full_file(p, DV_CONFIG_MAX_SIZE, &data, &len);
        if (r == -ENOENT && !path) {
                log_debug("%s does not exist: using the built-in defaults", p);
                return dv_config_new_default(ret);
        }
        if (r < 0) {
                int q = dv_error_set_file(err, p);
                if (q < 0)
                        return q;
        }
        if (r == -EFBIG)
                return dv_error_add(err, r, 0, "file is larger than %d bytes", DV_CONFIG_MAX_SIZE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        return dv_config_parse(data, len, p, ret, err);
}

/* ---- storage_locations ------------------------------------------------------------- */

bool dv_config_location_allowed(const struct dv_config *c, const char *path) {
        return path_location_allowed(c ? c->storage_locations : NULL, path);
}

/* ---- qemu.uid_range --------------------------------------------------------------- */

/* An account whose id falls in the range would share its files with a guest's QEMU or a
 * container. */
static int check_ids_in(const char *key, uint32_t first, uint32_t last, const char *path,
                        bool group, struct dv_error *err) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0
                                       : dv_error_add(err, -errno, 0, "cannot read %s: %s", path,
                                                      strerror(errno));
        for (;;) {
                const char *name;
                uint32_t id;
                if (group) {
                        struct group *g = fgetgrent(f);
                        if (!g)
                                break;
                        name = g->gr_name, id = g->gr_gid;
                } else {
                        struct passwd *pw = fgetpwent(f);
                        if (!pw)
                                break;
                        name = pw->pw_name, id = pw->pw_uid;
                }
                if (id >= first && id <= last)
                        return dv_error_add(err, -EEXIST, 0,
                                            "%s %" PRIu32 "-%" PRIu32 " holds the %s %s (%" PRIu32
                                            ") of %s: choose a range "
                                            "no account uses",
                                            key, first, last, group ? "group" : "user", name, id,
                                            path);
        }
        return 0;
}

int dv_config_check_uid_range(const struct dv_config *c, const char *passwd, const char *group,
                              struct dv_error *err) {
        int r = check_ids_in("qemu.uid_range", c->qemu.uid_first, c->qemu.uid_last,
                             passwd ? passwd : "/etc/passwd", false, err);
        if (r >= 0)
                r = check_ids_in("qemu.uid_range", c->qemu.uid_first, c->qemu.uid_last,
                                 group ? group : "/etc/group", true, err);
        return r;
}

/* ---- container.id_range ------------------------------------------------------------ */

/* The subuid(5) and subgid(5) format: "owner:start:count" lines. */
static int check_sub_ids(const struct dv_config *c, const char *path, struct dv_error *err) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0
                                       : dv_error_add(err, -errno, 0, "cannot read %s: %s", path,
                                                      strerror(errno));
        char line[512];
        for (unsigned n = 1; fgets(line, sizeof(line), f); n++) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                c2[strcspn(c2 + 1, "\n") + 1] = '\0';
                uint64_t start = 0, count = 0;
                if (parse_u64(c1 + 1, &start) < 0 || parse_u64(c2 + 1, &count) < 0 || count == 0)
                        continue;
                if (start <= c->container.id_last && c->container.id_first < start + count) {
                        *c1 = '\0';
                        return dv_error_add(err, -EEXIST, 0,
                                            "container.id_range %" PRIu32 "-%" PRIu32
                                            " overlaps the ids %" PRIu64 "-%" PRIu64
                                            " of %s in %s (line %u): choose a range no one "
                                            "else uses",
                                            c->container.id_first, c->container.id_last, start,
                                            start + count - 1, line, path, n);
                }
        }
        return 0;
}

int dv_config_check_container_range(const struct dv_config *c, const char *passwd,
                                    const char *group, const char *subuid, const char *subgid,
                                    struct dv_error *err) {
        uint32_t first = c->container.id_first, last = c->container.id_last;
        if (first <= c->qemu.uid_last && c->qemu.uid_first <= last)
                return dv_error_add(err, -EEXIST, 0,
                                    "container.id_range %" PRIu32 "-%" PRIu32
                                    " overlaps qemu.uid_range %" PRIu32 "-%" PRIu32
                                    ": a container would share its ids with a QEMU",
                                    first, last, c->qemu.uid_first, c->qemu.uid_last);
        int r = check_ids_in("container.id_range", first, last, passwd ? passwd : "/etc/passwd",
                             false, err);
        if (r >= 0)
                r = check_ids_in("container.id_range", first, last, group ? group : "/etc/group",
                                 true, err);
        if (r >= 0)
                r = check_sub_ids(c, subuid ? subuid : "/etc/subuid", err);
        if (r >= 0)
                r = check_sub_ids(c, subgid ? subgid : "/etc/subgid", err);
        return r;
}

const char *dv_qemu_accel_name(enum dv_qemu_accel a) {
        return a == DV_ACCEL_KVM ? "kvm" : a == DV_ACCEL_TCG ? "tcg" : "auto";
}
