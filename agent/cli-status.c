/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `declvirt status [KIND/NAME] [--check] [--json]`: status.xml as a table, one
 * object in detail, JSON, or one monitoring-plugins line with perfdata. */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/commands.h"
#include "util/time.h"
#include "state/state.h"
#include "state/status.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"

/* `status --check` thresholds: a transitional phase held this long is worth a
 * look; no pass for this many resync intervals means the agent is stuck or gone. */
#define CHECK_SLOW_USEC       (5 * 60 * USEC_PER_SEC)
#define CHECK_STALE_INTERVALS 3
/* Object ids named in one check line before "and N more". */
#define CHECK_MAX_IDS 3

enum { EXIT_OK = 0, EXIT_WARNING = 1, EXIT_CRITICAL = 2, EXIT_UNKNOWN = 3 };

/* Whether an agent runs, told by the lock every agent holds on STATE_DIR/.lock (status.xml
 * and its age only say what the last agent did). */
struct agent_probe {
        int running; /* 1 yes, 0 no, -errno: cannot tell */
        pid_t pid;   /* when running: the PID it wrote into the lock file, or 0 */
        char *lock;  /* the lock file, for messages */
};

static void agent_probe_done(struct agent_probe *a) {
        free(a->lock);
}

static int agent_probe(const struct dv_config *cfg, struct agent_probe *ret) {
        *ret = (struct agent_probe){0};
        ret->lock = path_join(cfg->state_dir, ".lock");
        if (!ret->lock)
                return -ENOMEM;
        ret->running = state_lock_probe(cfg->state_dir, &ret->pid);
        return 0;
}

/* "no agent is running (the lock on /var/lib/declvirt/.lock is free)", or why it is not
 * known. Empty when an agent runs. */
static void agent_probe_text(struct buf *b, const struct agent_probe *a) {
        if (a->running == 0)
                buf_printf(b, "no agent is running (the lock on %s is free)", a->lock);
        else if (a->running < 0)
                buf_printf(b, "cannot tell whether an agent is running: %s: %s", a->lock,
                           strerror(-a->running));
}

static void status_usage(FILE *f) {
        fprintf(f, "Usage: declvirt status [KIND/NAME] [--check] [--json]\n"
                   "\n"
                   "Shows STATE_DIR/status.xml: every object with its phase, then the invalid\n"
                   "files and a summary. KIND/NAME (pool/NAME, network/NAME, domain/NAME,\n"
                   "volume/POOL/NAME) shows one object in detail; exit 1 when it is not there.\n"
                   "\n"
                   "  --json    the same data as JSON\n"
                   "  --check   one line for monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL,\n"
                   "            3 UNKNOWN\n");
}

static uint64_t age_of(uint64_t now, uint64_t then) {
        return now > then ? now - then : 0;
}

/* "45s", "12m", "5h", "3d": ages for people. */
static const char *format_age(char buf[static 32], uint64_t usec) {
        uint64_t s = usec / USEC_PER_SEC;
        if (s < 120)
                snprintf(buf, 32, "%" PRIu64 "s", s);
        else if (s < 120 * 60)
                snprintf(buf, 32, "%" PRIu64 "m", s / 60);
        else if (s < 48 * 3600)
                snprintf(buf, 32, "%" PRIu64 "h", s / 3600);
        else
                snprintf(buf, 32, "%" PRIu64 "d", s / 86400);
        return buf;
}

static bool phase_is_transitional(const char *phase) {
        static const char *const l[] = {"pending", "waiting", "creating", "stopping", "removing"};
        for (size_t i = 0; phase && i < ELEMENTSOF(l); i++)
                if (streq(phase, l[i]))
                        return true;
        return false;
}

/* Why an object is where it is: its message, else the first true condition
 * other than Ready that says something. */
static const char *object_why(const struct status_object *o) {
        if (o->message && *o->message)
                return o->message;
        for (size_t i = 0; i < o->n_conditions; i++) {
                const struct status_condition *c = &o->conditions[i];
                if (c->status && !streq_ptr(c->type, "Ready") && (c->message || c->reason))
                        return c->message ? c->message : c->reason;
        }
        return NULL;
}

/* A table cell stays on one line. */
static void put_one_line(FILE *f, const char *s) {
        for (const char *p = strempty(s); *p; p++)
                fputc(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p, f);
}

static char *display_name(const struct status_object *o) {
        char *s = NULL;
        if (streq_ptr(o->kind, "volume"))
                return asprintf(&s, "%s/%s", strempty(o->pool), strempty(o->name)) < 0 ? NULL : s;
        return strdup(strempty(o->name));
}

/* ---- the table ------------------------------------------------------------------------ */

static void print_summary(FILE *f, const struct status_snapshot *s, const struct agent_probe *ag,
                          uint64_t now) {
        struct status_counts c;
        char a[32];
        status_count(s, &c);
        size_t unmanaged = s->n_objects - c.objects;
        fprintf(f, "%zu object%s: %zu ready, %zu failed, %zu blocked", c.objects,
                c.objects == 1 ? "" : "s", c.ready, c.failed, c.blocked);
        if (unmanaged > 0)
                fprintf(f, " (and %zu not managed)", unmanaged);
        fprintf(f, "; %zu invalid file%s; ", c.invalid_files, c.invalid_files == 1 ? "" : "s");
        const char *conv = s->converged ? "converged" : "not converged";
        if (ag->running == 0) {
                /* What follows is history: the agent that wrote it is gone. */
                fputs("no agent is running; at its last pass", f);
                if (s->last_pass_usec)
                        fprintf(f, " (%s ago)", format_age(a, age_of(now, s->last_pass_usec)));
                fprintf(f, ": %s\n", conv);
                return;
        }
        if (s->last_pass_usec)
                fprintf(f, "last pass %s ago; ", format_age(a, age_of(now, s->last_pass_usec)));
        fprintf(f, "%s\n", conv);
}

static void print_table(FILE *f, const struct status_snapshot *s, const struct agent_probe *ag,
                        uint64_t now) {
        size_t wk = strlen("KIND"), wn = strlen("NAME"), wp = strlen("PHASE");
        for (size_t i = 0; i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                _cleanup_free_ char *n = display_name(o);
                wk = MAX(wk, strlen(strempty(o->kind)));
                wn = MAX(wn, strlen(strempty(n)));
                wp = MAX(wp, strlen(strempty(o->phase)));
        }
        if (s->n_objects > 0) {
                fprintf(f, "%-*s  %-*s  %-*s  %-20s  %s\n", (int)wk, "KIND", (int)wn, "NAME",
                        (int)wp, "PHASE", "SINCE", "MESSAGE");
                for (size_t i = 0; i < s->n_objects; i++) {
                        const struct status_object *o = &s->objects[i];
                        _cleanup_free_ char *n = display_name(o);
                        char t[32] = "-";
                        if (o->since_usec)
                                status_format_time(t, o->since_usec);
                        const char *why = object_why(o);
                        bool has_why = why && *why;
                        /* No padding after the last column that has something in it. */
                        if (has_why || !o->managed) {
                                fprintf(f, "%-*s  %-*s  %-*s  %-20s  %s", (int)wk,
                                        strempty(o->kind), (int)wn, strempty(n), (int)wp,
                                        strempty(o->phase), t,
                                        o->managed ? ""
                                        : has_why  ? "(not managed) "
                                                   : "(not managed)");
                                put_one_line(f, why);
                        } else
                                fprintf(f, "%-*s  %-*s  %-*s  %s", (int)wk, strempty(o->kind),
                                        (int)wn, strempty(n), (int)wp, strempty(o->phase), t);
                        fputc('\n', f);
                }
        }
        for (size_t i = 0; i < s->n_files; i++) {
                const struct status_file_error *e = &s->files[i];
                fprintf(f, "invalid file: %s", strempty(e->path));
                if (e->line > 0)
                        fprintf(f, ":%d", e->line);
                fputs(": ", f);
                put_one_line(f, e->error);
                fputc('\n', f);
        }
        print_summary(f, s, ag, now);
}

static void print_detail(FILE *f, const struct status_object *o, uint64_t now) {
        _cleanup_free_ char *id = status_object_id(o);
        char t[32], a[32];
        fprintf(f, "%s\n", strempty(id));
        fprintf(f, "  phase:        %s", strempty(o->phase));
        if (o->since_usec)
                fprintf(f, " since %s (%s ago)", status_format_time(t, o->since_usec),
                        format_age(a, age_of(now, o->since_usec)));
        fputc('\n', f);
        fprintf(f, "  managed:      %s\n", o->managed ? "yes" : "no");
        fprintf(f, "  file:         %s\n", o->file ? o->file : "-");
        fprintf(f, "  desired-hash: %s\n", o->desired_hash ? o->desired_hash : "-");
        fprintf(f, "  applied-hash: %s\n", o->applied_hash ? o->applied_hash : "-");
        if (o->message)
                fprintf(f, "  message:      %s\n", o->message);
        if (o->n_conditions > 0)
                fprintf(f, "  conditions:\n");
        for (size_t i = 0; i < o->n_conditions; i++) {
                const struct status_condition *c = &o->conditions[i];
                fprintf(f, "    %s=%s", strempty(c->type), c->status ? "true" : "false");
                if (c->reason)
                        fprintf(f, " (%s)", c->reason);
                if (c->message)
                        fprintf(f, ": %s", c->message);
                fputc('\n', f);
        }
}

/* ---- JSON ----------------------------------------------------------------------------- */

static json_object *jstr(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *jtime(uint64_t usec) {
        char t[32];
        return usec ? json_object_new_string(status_format_time(t, usec)) : NULL;
}

static json_object *json_of_object(const struct status_object *o) {
        json_object *j = json_object_new_object();
        _cleanup_free_ char *id = status_object_id(o);
        json_object_object_add(j, "id", jstr(id));
        json_object_object_add(j, "kind", jstr(o->kind));
        json_object_object_add(j, "name", jstr(o->name));
        json_object_object_add(j, "pool", jstr(o->pool));
        json_object_object_add(j, "file", jstr(o->file));
        json_object_object_add(j, "managed", json_object_new_boolean(o->managed));
        json_object_object_add(j, "phase", jstr(o->phase));
        json_object_object_add(j, "since", jtime(o->since_usec));
        json_object_object_add(j, "desired_hash", jstr(o->desired_hash));
        json_object_object_add(j, "applied_hash", jstr(o->applied_hash));
        json_object_object_add(j, "message", jstr(o->message));
        json_object *conds = json_object_new_array();
        for (size_t i = 0; i < o->n_conditions; i++) {
                const struct status_condition *c = &o->conditions[i];
                json_object *jc = json_object_new_object();
                json_object_object_add(jc, "type", jstr(c->type));
                json_object_object_add(jc, "status", json_object_new_boolean(c->status));
                json_object_object_add(jc, "reason", jstr(c->reason));
                json_object_object_add(jc, "message", jstr(c->message));
                json_object_array_add(conds, jc);
        }
        json_object_object_add(j, "conditions", conds);
        return j;
}

static json_object *json_of_snapshot(const struct status_snapshot *s, const struct agent_probe *ag,
                                     uint64_t now) {
        struct status_counts c;
        status_count(s, &c);
        json_object *j = json_object_new_object();
        /* null: cannot be told (agent_error says why). */
        json_object_object_add(j, "agent_running",
                               ag->running < 0 ? NULL : json_object_new_boolean(ag->running));
        json_object_object_add(j, "agent_pid",
                               ag->running > 0 && ag->pid > 0 ? json_object_new_int(ag->pid)
                                                              : NULL);
        json_object_object_add(j, "agent_error",
                               ag->running < 0 ? jstr(strerror(-ag->running)) : NULL);
        json_object_object_add(j, "version", jstr(s->version));
        json_object_object_add(j, "boot_id", jstr(s->boot_id));
        json_object_object_add(j, "last_pass", jtime(s->last_pass_usec));
        json_object_object_add(
                j, "last_pass_age_seconds",
                s->last_pass_usec
                        ? json_object_new_uint64(age_of(now, s->last_pass_usec) / USEC_PER_SEC)
                        : NULL);
        json_object_object_add(j, "last_pass_duration_ms",
                               json_object_new_uint64(s->last_pass_duration_usec / USEC_PER_MSEC));
        json_object_object_add(j, "passes", json_object_new_uint64(s->passes));
        json_object_object_add(j, "converged", json_object_new_boolean(s->converged));
        json_object *jc = json_object_new_object();
        json_object_object_add(jc, "objects", json_object_new_uint64(c.objects));
        json_object_object_add(jc, "ready", json_object_new_uint64(c.ready));
        json_object_object_add(jc, "failed", json_object_new_uint64(c.failed));
        json_object_object_add(jc, "blocked", json_object_new_uint64(c.blocked));
        json_object_object_add(jc, "invalid_files", json_object_new_uint64(c.invalid_files));
        json_object_object_add(j, "counts", jc);
        json_object *objs = json_object_new_array();
        for (size_t i = 0; i < s->n_objects; i++)
                json_object_array_add(objs, json_of_object(&s->objects[i]));
        json_object_object_add(j, "objects", objs);
        json_object *files = json_object_new_array();
        for (size_t i = 0; i < s->n_files; i++) {
                json_object *jf = json_object_new_object();
                json_object_object_add(jf, "path", jstr(s->files[i].path));
                json_object_object_add(jf, "line",
                                       s->files[i].line > 0 ? json_object_new_int(s->files[i].line)
                                                            : NULL);
                json_object_object_add(jf, "error", jstr(s->files[i].error));
                json_object_array_add(files, jf);
        }
        json_object_object_add(j, "invalid_files", files);
        return j;
}

static void print_json(FILE *f, json_object *j) {
        fprintf(f, "%s\n",
                json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                          JSON_C_TO_STRING_SPACED |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
}

/* ---- --check -------------------------------------------------------------------------- */

/* A list of object ids for the check line: "domain/a, pool/b and 3 more". */
struct id_list {
        struct buf b;
        size_t n;
};

static void id_list_add(struct id_list *l, const struct status_object *o, const char *extra) {
        if (l->n++ >= CHECK_MAX_IDS)
                return;
        _cleanup_free_ char *id = status_object_id(o);
        buf_printf(&l->b, "%s%s%s", l->n > 1 ? ", " : "", strempty(id), strempty(extra));
}

static void id_list_put(struct buf *out, const char *what, struct id_list *l) {
        if (l->n == 0)
                return;
        buf_printf(out, "%s%s: %s", out->len ? "; " : "", what, buf_str(&l->b));
        if (l->n > CHECK_MAX_IDS)
                buf_printf(out, " and %zu more", l->n - CHECK_MAX_IDS);
}

static int do_check(const struct dv_config *cfg, const struct agent_probe *ag, const char *path,
                    const char *kind, const char *pool, const char *name, uint64_t now) {
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        struct status_snapshot *s = NULL;
        if (status_read_file(path, &s, &err) < 0) {
                _cleanup_free_ char *m = dv_error_summary(&err);
                if (ag->running == 0) {
                        /* No status and no agent to write one: that is the news. */
                        struct buf b = BUF_INIT;
                        agent_probe_text(&b, ag);
                        printf("DECLVIRT CRITICAL - %s; %s\n", buf_str(&b),
                               m ? m : "cannot read status.xml");
                        buf_free(&b);
                        return EXIT_CRITICAL;
                }
                printf("DECLVIRT UNKNOWN - %s\n", m ? m : "cannot read status.xml");
                return EXIT_UNKNOWN;
        }

        const struct status_object *only = NULL;
        if (name) {
                only = status_find(s, kind, pool, name);
                if (!only) {
                        printf("DECLVIRT CRITICAL - %s%s%s/%s is not in %s\n", kind,
                               pool ? "/" : "", strempty(pool), name, path);
                        status_snapshot_free(s);
                        return EXIT_CRITICAL;
                }
        }

        struct status_counts c = {0};
        struct id_list failed = {BUF_INIT, 0}, blocked = {BUF_INIT, 0}, slow = {BUF_INIT, 0},
                       dup = {BUF_INIT, 0};
        for (size_t i = 0; i < s->n_objects; i++) {
                const struct status_object *o = &s->objects[i];
                if (!o->managed || (only && o != only))
                        continue;
                c.objects++;
                if (status_condition_true(o, "FileInvalid"))
                        c.invalid_files++;
                if (streq_ptr(o->phase, "ready"))
                        c.ready++;
                else if (streq_ptr(o->phase, "failed")) {
                        c.failed++;
                        id_list_add(&failed, o, NULL);
                } else if (streq_ptr(o->phase, "blocked")) {
                        c.blocked++;
                        id_list_add(&blocked, o, NULL);
                } else if (phase_is_transitional(o->phase) && o->since_usec &&
                           age_of(now, o->since_usec) > CHECK_SLOW_USEC) {
                        char a[32], extra[64];
                        snprintf(extra, sizeof(extra), " %s for %s", o->phase,
                                 format_age(a, age_of(now, o->since_usec)));
                        id_list_add(&slow, o, extra);
                }
                if (status_condition_true(o, "Duplicate"))
                        id_list_add(&dup, o, NULL);
        }
        if (!only)
                c.invalid_files += s->n_files;

        uint64_t age = age_of(now, s->last_pass_usec);
        uint64_t stale = CHECK_STALE_INTERVALS * cfg->resync_interval_usec;
        int code = EXIT_OK;
        struct buf text = BUF_INIT;
        char a[32];
        if (ag->running == 0) {
                code = EXIT_CRITICAL;
                agent_probe_text(&text, ag);
                if (s->last_pass_usec)
                        buf_printf(&text, "; last pass %s ago", format_age(a, age));
        }
        if (c.failed || c.blocked || (age > stale && ag->running != 0)) {
                code = EXIT_CRITICAL;
                id_list_put(&text, "failed", &failed);
                id_list_put(&text, "blocked", &blocked);
                if (age > stale)
                        buf_printf(&text, "%slast pass %s ago: the agent is stuck%s",
                                   text.len ? "; " : "", format_age(a, age),
                                   ag->running > 0 ? "" : " or not running");
        }
        if (slow.n || dup.n || c.invalid_files) {
                if (code == EXIT_OK)
                        code = EXIT_WARNING;
                id_list_put(&text, "slow", &slow);
                id_list_put(&text, "defined by several files", &dup);
                if (c.invalid_files)
                        buf_printf(&text, "%s%zu invalid file%s", text.len ? "; " : "",
                                   c.invalid_files, c.invalid_files == 1 ? "" : "s");
        }
        if (ag->running < 0 && code != EXIT_CRITICAL) {
                /* The check itself could not tell: UNKNOWN, with the reason first. */
                struct buf t = BUF_INIT;
                agent_probe_text(&t, ag);
                if (text.len)
                        buf_printf(&t, "; %s", buf_str(&text));
                buf_free(&text);
                text = t;
                code = EXIT_UNKNOWN;
        }
        if (code == EXIT_OK) {
                if (c.ready == c.objects)
                        buf_printf(&text, "%zu object%s ready", c.objects,
                                   c.objects == 1 ? "" : "s");
                else
                        buf_printf(&text, "%zu of %zu objects ready, the rest %s", c.ready,
                                   c.objects,
                                   s->converged ? "where they should be" : "in progress");
        }
        static const char *const label[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
        printf("DECLVIRT %s - %s | objects=%zu ready=%zu failed=%zu blocked=%zu invalid_files=%zu "
               "last_pass_age=%" PRIu64 "s\n",
               label[code], buf_str(&text), c.objects, c.ready, c.failed, c.blocked,
               c.invalid_files, age / USEC_PER_SEC);
        buf_free(&text);
        buf_free(&failed.b);
        buf_free(&blocked.b);
        buf_free(&slow.b);
        buf_free(&dup.b);
        status_snapshot_free(s);
        return code;
}

/* ---- the command ---------------------------------------------------------------------- */

int cli_status(const struct dv_config *cfg, int argc, char **argv) {
        enum { OPT_CHECK = 0x100, OPT_JSON };
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {"check", no_argument, NULL, OPT_CHECK},
                {"json", no_argument, NULL, OPT_JSON},
                {},
        };
        bool check = false, json = false;
        /* A monitoring system reads a usage error as UNKNOWN, wherever --check is. */
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--check"))
                        check = true;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        status_usage(stdout);
                        return 0;
                case OPT_CHECK:
                        check = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                default:
                        status_usage(stderr);
                        return check ? EXIT_UNKNOWN : 2;
                }
        }
        if (argc - optind > 1) {
                status_usage(stderr);
                return check ? EXIT_UNKNOWN : 2;
        }
        _cleanup_free_ char *kind = NULL, *pool = NULL, *name = NULL;
        if (optind < argc && status_parse_object_id(argv[optind], &kind, &pool, &name) < 0) {
                if (check)
                        printf("DECLVIRT UNKNOWN - '%s' is not KIND/NAME or volume/POOL/NAME\n",
                               argv[optind]);
                else
                        fprintf(stderr,
                                "declvirt status: '%s' is not KIND/NAME (pool/NAME, network/NAME, "
                                "domain/NAME, volume/POOL/NAME)\n",
                                argv[optind]);
                fflush(stdout);
                return check ? EXIT_UNKNOWN : 2;
        }
        _cleanup_free_ char *path = path_join(cfg->state_dir, "status.xml");
        if (!path)
                return check ? EXIT_UNKNOWN : 1;
        _cleanup_(agent_probe_done) struct agent_probe ag = {0};
        if (agent_probe(cfg, &ag) < 0)
                return check ? EXIT_UNKNOWN : 1;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;
        if (check) {
                r = do_check(cfg, &ag, path, kind, pool, name, now);
                fflush(stdout);
                return r;
        }

        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        struct status_snapshot *s = NULL;
        if (status_read_file(path, &s, &err) < 0) {
                dv_error_print(stderr, &err);
                if (ag.running == 0)
                        fprintf(stderr,
                                "declvirt status: no status to show: no agent is running "
                                "(the lock on %s is free)\n",
                                ag.lock);
                else
                        fprintf(stderr,
                                "declvirt status: no status to show (is the agent running?)\n");
                return 1;
        }
        if (!json && ag.running <= 0) {
                /* Said first, so that nobody takes the table for the present. */
                struct buf b = BUF_INIT;
                agent_probe_text(&b, &ag);
                fprintf(stderr, "declvirt status: %s%s\n", buf_str(&b),
                        ag.running == 0 ? "; what follows is what its last pass recorded" : "");
                buf_free(&b);
        }
        r = 0;
        if (name) {
                const struct status_object *o = status_find(s, kind, pool, name);
                if (!o) {
                        fprintf(stderr, "declvirt status: %s is not in %s\n", argv[optind], path);
                        r = 1;
                } else if (json)
                        print_json(stdout, json_of_object(o));
                else
                        print_detail(stdout, o, now);
        } else if (json)
                print_json(stdout, json_of_snapshot(s, &ag, now));
        else
                print_table(stdout, s, &ag, now);
        status_snapshot_free(s);
        fflush(stdout);
        return r;
}
