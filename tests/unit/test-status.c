/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* status.xml and metrics.prom (state/status.c), and the `status` and `wait`
 * commands run in-process against prepared state directories. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/commands.h"
#include "agent/config.h"
#include "drivers/cmd.h"
#include "model/object.h"
#include "state/state.h"
#include "state/status.h"
#include "tests/helpers/testlib.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"

#define DIR "tests/data/status"
/* 2024-05-01T12:00:00Z */
#define T0 (1714564800ULL * USEC_PER_SEC)

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static char *xstrdup(const char *s) {
        char *c = s ? strdup(s) : NULL;
        if (s && !c)
                fail_msg("out of memory");
        return c;
}

static struct status_object *add_object(struct status_snapshot *s, const char *kind,
                                        const char *pool, const char *name, const char *phase) {
        struct status_object *l = realloc(s->objects, (s->n_objects + 1) * sizeof(*l));
        assert_non_null(l);
        s->objects = l;
        struct status_object *o = &l[s->n_objects++];
        *o = (struct status_object){
                .kind = xstrdup(kind),
                .name = xstrdup(name),
                .pool = xstrdup(pool),
                .phase = xstrdup(phase),
                .managed = true,
        };
        return o;
}

static void add_condition(struct status_object *o, const char *type, bool status,
                          const char *reason, const char *message) {
        struct status_condition *c = realloc(o->conditions, (o->n_conditions + 1) * sizeof(*c));
        assert_non_null(c);
        o->conditions = c;
        c[o->n_conditions++] = (struct status_condition){
                .type = xstrdup(type),
                .status = status,
                .reason = xstrdup(reason),
                .message = xstrdup(message),
        };
}

static void add_file(struct status_snapshot *s, const char *path, int line, const char *error) {
        struct status_file_error *f = realloc(s->files, (s->n_files + 1) * sizeof(*f));
        assert_non_null(f);
        s->files = f;
        f[s->n_files++] = (struct status_file_error){
                .path = xstrdup(path), .line = line, .error = xstrdup(error)};
}

/* The snapshot behind tests/data/status/status.xml and metrics.prom. */
static void sample_snapshot(struct status_snapshot *s) {
        *s = (struct status_snapshot){
                .version = xstrdup("0.1.0"),
                .boot_id = xstrdup("6f1c2b3a4d5e4f60a1b2c3d4e5f60718"),
                .last_pass_usec = T0 + 30 * USEC_PER_SEC + 250000,
                .last_pass_duration_usec = 12345,
                .passes = 42,
                .converged = false,
                .actions_total = 7,
                .actions_failed_total = 2,
                .errors_total = 1,
                .duration_buckets = {3, 10, 20, 5, 2, 1, 0, 0, 0, 1, 0, 0},
                .duration_sum_seconds = 1.5,
                .duration_count = 42,
        };
        struct status_object *o = add_object(s, "pool", NULL, "images", "ready");
        o->file = xstrdup("/etc/declvirt/desired.d/images.xml");
        o->since_usec = T0;
        o->desired_hash = xstrdup("0123456789abcdef0123456789abcdef");
        o->applied_hash = xstrdup("0123456789abcdef0123456789abcdef");
        o->has_sizes = true;
        o->capacity = 107374182400ULL;
        o->allocation = 10737418240ULL;
        o->available = 96636764160ULL;
        add_condition(o, "Ready", true, NULL, NULL);

        o = add_object(s, "volume", "images", "web1.qcow2", "creating");
        o->file = xstrdup("/etc/declvirt/desired.d/web1-disk.xml");
        o->since_usec = T0 + 5 * USEC_PER_SEC;
        o->desired_hash = xstrdup("fedcba9876543210fedcba9876543210");
        o->message = xstrdup("creating: qemu-img <create> 'x' & \"y\"\nsecond line");
        o->has_sizes = true;
        o->capacity = 21474836480ULL;
        o->allocation = 200704;
        add_condition(o, "Ready", false, NULL, NULL);

        o = add_object(s, "network", NULL, "lan", "failed");
        o->file = xstrdup("/etc/declvirt/desired.d/lan.xml");
        o->since_usec = T0 + 10 * USEC_PER_SEC;
        o->desired_hash = xstrdup("00000000000000000000000000000001");
        o->applied_hash = xstrdup("00000000000000000000000000000002");
        o->message = xstrdup("ip link add failed (retry in 8s)");
        add_condition(o, "Ready", false, NULL, NULL);
        add_condition(o, "ActionFailed", true, "ActionFailed",
                      "ip link add: Operation not permitted");

        o = add_object(s, "domain", NULL, "legacy", "ready");
        o->managed = false;
        o->since_usec = T0;

        add_file(s, "/etc/declvirt/desired.d/broken.xml", 3,
                 "malformed XML: Opening and ending tag mismatch");
        add_file(s, "/etc/declvirt/desired.d/sub", 0,
                 "refused: /etc/declvirt/desired.d/sub is writable by others");
}

static void expect_file(const char *path, const char *actual) {
        size_t len = 0;
        char *expected = test_read_file(path, &len);
        if (strcmp(expected, actual) != 0) {
                print_message("%s differs; actual output:\n%s\n", path, actual);
                free(expected);
                fail();
        }
        free(expected);
}

/* ---- status.xml ----------------------------------------------------------------------- */

static void test_format_golden(void **state) {
        (void)state;
        struct status_snapshot s;
        sample_snapshot(&s);
        struct buf b = BUF_INIT;
        status_format_xml(&b, &s);
        expect_file(DIR "/status.xml", buf_str(&b));
        buf_free(&b);
        status_snapshot_free_contents(&s);
}

static void test_round_trip(void **state) {
        (void)state;
        size_t len = 0;
        char *data = test_read_file(DIR "/status.xml", &len);
        struct status_snapshot *s = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(status_parse_xml(data, len, &s, &err), 0);
        assert_false(dv_error_failed(&err));

        assert_string_equal(s->version, "0.1.0");
        assert_true(s->last_pass_usec == T0 + 30 * USEC_PER_SEC); /* seconds in the file */
        assert_true(s->last_pass_duration_usec == 12000);
        assert_int_equal(s->passes, 42);
        assert_false(s->converged);
        assert_int_equal(s->n_objects, 4);
        assert_int_equal(s->n_files, 2);
        const struct status_object *v = status_find(s, "volume", "images", "web1.qcow2");
        assert_non_null(v);
        assert_string_equal(v->message, "creating: qemu-img <create> 'x' & \"y\"\nsecond line");
        assert_null(v->applied_hash);
        assert_null(status_find(s, "volume", "other", "web1.qcow2"));
        const struct status_object *n = status_find(s, "network", NULL, "lan");
        assert_non_null(n);
        assert_int_equal(n->n_conditions, 2);
        assert_string_equal(n->conditions[1].message, "ip link add: Operation not permitted");
        assert_null(n->conditions[0].message);
        assert_false(status_find(s, "domain", NULL, "legacy")->managed);
        assert_int_equal(s->files[0].line, 3);
        assert_int_equal(s->files[1].line, 0);

        struct buf b = BUF_INIT;
        status_format_xml(&b, s);
        assert_string_equal(buf_str(&b), data);
        buf_free(&b);
        status_snapshot_free(s);
        free(data);
}

static void expect_parse_error(const char *xml, int line, const char *msg) {
        struct status_snapshot *s = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_true(status_parse_xml(xml, strlen(xml), &s, &err) < 0);
        assert_null(s);
        assert_true(dv_error_failed(&err));
        if (!strstr(dv_error_message(&err), msg) || dv_error_line(&err) != line)
                fail_msg("for %s\nexpected line %d '%s'\ngot line %d '%s'", xml, line, msg,
                         dv_error_line(&err), dv_error_message(&err));
        dv_error_clear(&err);
}

static void test_parse_errors(void **state) {
        (void)state;
        expect_parse_error("<pool/>", 1, "root element is <pool>, not <status>");
        expect_parse_error("<status>\n<object kind='pool' name='x'/>\n</status>", 2,
                           "<object> needs the attribute 'phase'");
        expect_parse_error(
                "<status>\n\n<object kind='pool' name='x' phase='ready' managed='maybe'/></status>",
                3, "expected 'yes' or 'no'");
        expect_parse_error("<status last-pass='yesterday'/>", 1, "not an RFC 3339 time");
        expect_parse_error("<status passes='-1'/>", 1, "not an unsigned number");
        expect_parse_error(
                "<status><object kind='pool' name='x' phase='ready'>\n<condition type='Ready'/>"
                "</object></status>",
                2, "<condition> needs the attribute 'status'");
        expect_parse_error("<status><file line='3'/></status>", 1,
                           "<file> needs the attribute 'path'");
        expect_parse_error("<!DOCTYPE status [<!ENTITY x 'y'>]><status/>", 1, "DTDs");
        expect_parse_error("<status>", 1, "malformed XML");

        /* Unknown elements and attributes are skipped (a newer agent's file). */
        const char *newer =
                "<status future='1'><object kind='pool' name='x' phase='ready' extra='y'>"
                "<gadget/></object><whatever/></status>";
        struct status_snapshot *s = NULL;
        assert_int_equal(status_parse_xml(newer, strlen(newer), &s, NULL), 0);
        assert_int_equal(s->n_objects, 1);
        assert_true(s->objects[0].managed); /* managed defaults to yes */
        status_snapshot_free(s);
}

static void test_bad_utf8(void **state) {
        (void)state;
        struct status_snapshot s = {.version = xstrdup("0.1.0")};
        struct status_object *o = add_object(&s, "domain", NULL, "d1", "failed");
        /* Latin-1 from a command's stderr, a lone continuation byte, an overlong
         * slash, a surrogate, and valid multibyte text that must stay. */
        o->message = xstrdup(
                "caf\xe9 \x80 \xc0\xaf \xed\xa0\x80 ok: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
        struct buf b = BUF_INIT;
        status_format_xml(&b, &s);
        struct status_snapshot *p = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(status_parse_xml(b.s, b.len, &p, &err), 0);
        assert_string_equal(p->objects[0].message,
                            "caf\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok: caf\xc3\xa9 "
                            "\xe2\x82\xac \xf0\x9f\x98\x80");
        status_snapshot_free(p);
        buf_free(&b);
        status_snapshot_free_contents(&s);
}

static void test_time(void **state) {
        (void)state;
        char t[32];
        uint64_t v = 0;
        assert_string_equal(status_format_time(t, T0 + 999999), "2024-05-01T12:00:00Z");
        assert_int_equal(status_parse_time("2024-05-01T12:00:00Z", &v), 0);
        assert_true(v == T0);
        assert_int_equal(status_parse_time("2024-05-01T14:00:00.5+02:00", &v), 0);
        assert_true(v == T0 + 500000);
        assert_int_equal(status_parse_time("2024-05-01T11:30:00-00:30", &v), 0);
        assert_true(v == T0);
        assert_int_equal(status_parse_time("1970-01-01T00:00:00Z", &v), 0);
        assert_true(v == 0);
        assert_int_equal(status_parse_time("2024-02-30T00:00:00Z", &v), -EINVAL);
        assert_int_equal(status_parse_time("2024-05-01T12:00:00", &v), -EINVAL);
        assert_int_equal(status_parse_time("2024-05-01T12:00:00Zjunk", &v), -EINVAL);
        assert_int_equal(status_parse_time("2024-05-01T24:00:00Z", &v), -EINVAL);
        assert_int_equal(status_parse_time("2024-5-1T12:00:00Z", &v), -EINVAL);
        assert_int_equal(status_parse_time("2024-05-01T12:00:00.Z", &v), -EINVAL);
        assert_int_equal(status_parse_time("1969-12-31T23:59:59Z", &v), -ERANGE);
        assert_int_equal(status_parse_time("", &v), -EINVAL);
}

static void test_object_id(void **state) {
        (void)state;
        char *k = NULL, *p = NULL, *n = NULL;
        assert_int_equal(status_parse_object_id("volume/images/web1.qcow2", &k, &p, &n), 0);
        assert_string_equal(k, "volume");
        assert_string_equal(p, "images");
        assert_string_equal(n, "web1.qcow2");
        free(k), free(p), free(n);
        k = p = n = NULL;
        assert_int_equal(status_parse_object_id("domain/web1", &k, &p, &n), 0);
        assert_string_equal(k, "domain");
        assert_null(p);
        assert_string_equal(n, "web1");
        free(k), free(n);
        const char *bad[] = {"domain",        "domain/",   "/web1",          "vm/web1",
                             "volume/images", "volume//x", "volume/images/", "pool/a/b",
                             "volume/a/b/c",  ""};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                k = p = n = NULL;
                if (status_parse_object_id(bad[i], &k, &p, &n) != -EINVAL)
                        fail_msg("'%s' was accepted", bad[i]);
                assert_null(k);
        }
}

static void test_settled(void **state) {
        (void)state;
        struct status_object o = {.phase = (char *)"ready"};
        assert_int_equal(status_object_settled(&o, false), 1);
        assert_int_equal(status_object_settled(&o, true), 0); /* still up: not yet stopped */
        o.phase = (char *)"stopped";
        assert_int_equal(status_object_settled(&o, true), 1);
        assert_int_equal(status_object_settled(&o, false), 0);
        const char *not_yet[] = {"pending",  "waiting",  "creating",
                                 "stopping", "removing", "something-new"};
        for (size_t i = 0; i < ELEMENTSOF(not_yet); i++) {
                o.phase = (char *)not_yet[i];
                assert_int_equal(status_object_settled(&o, false), 0);
                assert_int_equal(status_object_settled(&o, true), 0);
        }
        o.phase = (char *)"failed";
        assert_int_equal(status_object_settled(&o, false), -1);
        assert_int_equal(status_object_settled(&o, true), -1);
        o.phase = (char *)"blocked";
        assert_int_equal(status_object_settled(&o, false), -1);
        o.phase = NULL;
        assert_int_equal(status_object_settled(&o, false), 0);
        assert_int_equal(status_object_settled(NULL, false), 0);

        /* Left down on purpose (autostart='no' after boot): settled although wanted up. */
        struct status_condition held = {.type = (char *)"HeldDown", .status = true};
        o = (struct status_object){
                .phase = (char *)"stopped", .conditions = &held, .n_conditions = 1};
        assert_int_equal(status_object_settled(&o, false), 1);
        held.status = false;
        assert_int_equal(status_object_settled(&o, false), 0);
        /* Defined by two files: neither is applied, whatever the phase says. */
        struct status_condition dup = {.type = (char *)"Duplicate", .status = true};
        o = (struct status_object){.phase = (char *)"ready", .conditions = &dup, .n_conditions = 1};
        assert_int_equal(status_object_settled(&o, false), -1);
}

static void test_counts(void **state) {
        (void)state;
        struct status_snapshot s;
        sample_snapshot(&s);
        add_condition(&s.objects[0], "FileInvalid", true, "InvalidFile", "images.xml:2: bad");
        struct status_counts c;
        status_count(&s, &c);
        assert_int_equal(c.objects, 3); /* the unmanaged domain is not counted */
        assert_int_equal(c.ready, 1);
        assert_int_equal(c.failed, 1);
        assert_int_equal(c.blocked, 0);
        assert_int_equal(c.invalid_files, 3);
        status_snapshot_free_contents(&s);
}

static void test_content_hash(void **state) {
        (void)state;
        struct status_snapshot s;
        sample_snapshot(&s);
        char h1[HASH_HEX_LEN + 1], h2[HASH_HEX_LEN + 1];
        status_content_hash(&s, h1);
        /* Another pass that changed nothing: same content. */
        s.passes++;
        s.last_pass_usec += 30 * USEC_PER_SEC;
        s.last_pass_duration_usec = 999;
        status_content_hash(&s, h2);
        assert_string_equal(h1, h2);
        /* A phase change is content. */
        free(s.objects[1].phase);
        s.objects[1].phase = xstrdup("ready");
        status_content_hash(&s, h2);
        assert_string_not_equal(h1, h2);
        status_snapshot_free_contents(&s);
}

static void write_file(const char *path, const char *data) {
        int r = write_file_atomic(path, data, strlen(data), 0644);
        if (r < 0)
                fail_msg("cannot write %s: %s", path, strerror(-r));
}

static void set_mtime(const char *path, uint64_t usec) {
        struct timespec ts[2] = {
                {.tv_sec = (time_t)(usec / USEC_PER_SEC),
                 .tv_nsec = (long)(usec % USEC_PER_SEC * 1000)},
                {.tv_sec = (time_t)(usec / USEC_PER_SEC),
                 .tv_nsec = (long)(usec % USEC_PER_SEC * 1000)},
        };
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_read_file_heartbeat(void **state) {
        (void)state;
        char *dir = test_mkdtemp("dv-status");
        char *path = path_join(dir, "status.xml");
        write_file(path, "<status last-pass='2024-05-01T12:00:00Z' passes='3' converged='yes'/>\n");

        /* The agent touched the file after later passes that changed nothing. */
        set_mtime(path, T0 + 3600 * USEC_PER_SEC + 42);
        struct status_snapshot *s = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(status_read_file(path, &s, &err), 0);
        assert_true(s->last_pass_usec == T0 + 3600 * USEC_PER_SEC + 42);
        status_snapshot_free(s);

        /* An mtime older than last-pass (a copied file): the attribute wins. */
        set_mtime(path, T0 - USEC_PER_SEC);
        assert_int_equal(status_read_file(path, &s, &err), 0);
        assert_true(s->last_pass_usec == T0);
        status_snapshot_free(s);

        char *missing = path_join(dir, "nope.xml");
        s = NULL;
        assert_int_equal(status_read_file(missing, &s, &err), -ENOENT);
        assert_null(s);
        char *m = dv_error_summary(&err);
        assert_string_equal(m + strlen(dir), "/nope.xml: cannot read: No such file or directory");
        free(m);
        dv_error_clear(&err);
        free(missing);
        free(path);
        test_rm_rf(dir);
        free(dir);
}

/* 10,000 objects make a status.xml of several MiB: more than dv_xml_parse takes. */
static void test_large(void **state) {
        (void)state;
        struct status_snapshot s = {.version = xstrdup("0.1.0")};
        s.objects = calloc(10000, sizeof(*s.objects));
        assert_non_null(s.objects);
        for (size_t i = 0; i < 10000; i++) {
                struct status_object *o = &s.objects[s.n_objects++];
                char name[64];
                snprintf(name, sizeof(name), "disk-%05zu.qcow2", i);
                *o = (struct status_object){
                        .kind = xstrdup("volume"),
                        .pool = xstrdup("images"),
                        .name = xstrdup(name),
                        .phase = xstrdup("ready"),
                        .managed = true,
                        .since_usec = T0,
                        .file = xstrdup(
                                "/etc/declvirt/desired.d/volumes/some-long-directory/disk.xml"),
                        .desired_hash = xstrdup("0123456789abcdef0123456789abcdef"),
                        .applied_hash = xstrdup("0123456789abcdef0123456789abcdef"),
                };
                add_condition(o, "Ready", true, NULL, NULL);
        }
        struct buf b = BUF_INIT;
        status_format_xml(&b, &s);
        assert_true(b.len > 1024 * 1024);
        struct status_snapshot *p = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(status_parse_xml(b.s, b.len, &p, &err), 0);
        assert_int_equal(p->n_objects, 10000);
        assert_non_null(status_find(p, "volume", "images", "disk-09999.qcow2"));
        struct buf b2 = BUF_INIT;
        status_format_xml(&b2, p);
        assert_true(b2.len == b.len && memcmp(b.s, b2.s, b.len) == 0);
        /* The same safety as dv_xml_parse for large documents. */
        struct buf evil = BUF_INIT;
        buf_puts(&evil, "<!DOCTYPE status [<!ENTITY a 'b'>]>");
        buf_puts(&evil, b.s);
        struct status_snapshot *q = NULL;
        assert_true(status_parse_xml(evil.s, evil.len, &q, &err) < 0);
        assert_non_null(strstr(dv_error_message(&err), "DTDs"));
        dv_error_clear(&err);
        buf_free(&evil);
        buf_free(&b2);
        buf_free(&b);
        status_snapshot_free(p);
        status_snapshot_free_contents(&s);
}

/* ---- metrics.prom --------------------------------------------------------------------- */

static void promtool_check(const char *text) {
        if (!test_have_program("promtool")) {
                print_message("skip: promtool is not installed (Debian package prometheus): "
                              "the metrics were not checked with `promtool check metrics`\n");
                return;
        }
        struct cmd_opts opts = {
                .stdin_data = text, .stdin_len = strlen(text), .allow_nonzero = true};
        struct cmd_result res = {0};
        struct dv_error err = DV_ERROR_INIT;
        int r = cmd_run((char *const[]){"promtool", "check", "metrics", NULL}, &opts, &res, &err);
        if (r < 0 || res.exit_status != 0)
                fail_msg("promtool check metrics failed (status %d): %s%s", res.exit_status,
                         strempty(res.err_tail), strempty(res.out));
        cmd_result_done(&res);
        dv_error_clear(&err);
}

static void test_metrics_golden(void **state) {
        (void)state;
        struct status_snapshot s;
        sample_snapshot(&s);
        struct buf b = BUF_INIT;
        status_format_metrics(&b, &s);
        expect_file(DIR "/metrics.prom", buf_str(&b));
        /* Every kind x phase, zeros included. */
        assert_non_null(strstr(b.s, "\ndeclvirt_objects{kind=\"domain\",phase=\"removing\"} 0\n"));
        assert_non_null(strstr(b.s, "\ndeclvirt_objects{kind=\"network\",phase=\"failed\"} 1\n"));
        /* The unmanaged domain has no ready gauge and is not counted. */
        assert_null(strstr(b.s, "legacy"));
        assert_non_null(strstr(b.s, "\ndeclvirt_objects{kind=\"domain\",phase=\"ready\"} 0\n"));
        /* Cumulative buckets; +Inf equals _count. */
        assert_non_null(
                strstr(b.s, "declvirt_reconcile_duration_seconds_bucket{le=\"0.0025\"} 13\n"));
        assert_non_null(
                strstr(b.s, "declvirt_reconcile_duration_seconds_bucket{le=\"+Inf\"} 42\n"));
        assert_non_null(strstr(b.s, "declvirt_reconcile_duration_seconds_count 42\n"));
        promtool_check(b.s);
        buf_free(&b);
        status_snapshot_free_contents(&s);
}

static void test_metrics_escaping(void **state) {
        (void)state;
        struct status_snapshot s = {.version = xstrdup("0.1.0")};
        struct status_object *o = add_object(&s, "volume", "po\"ol", "a\\b\"c\nd", "ready");
        o->has_sizes = true;
        o->capacity = 1;
        o->allocation = 2;
        add_object(&s, "domain", NULL, "caf\xe9", "ready");
        struct buf b = BUF_INIT;
        status_format_metrics(&b, &s);
        assert_non_null(strstr(b.s,
                               "declvirt_object_ready{kind=\"volume\",name=\"a\\\\b\\\"c\\nd\","
                               "pool=\"po\\\"ol\"} 1\n"));
        assert_non_null(strstr(b.s, "declvirt_volume_capacity_bytes{pool=\"po\\\"ol\",volume="
                                    "\"a\\\\b\\\"c\\nd\"} 1\n"));
        assert_non_null(strstr(b.s, "declvirt_volume_allocation_bytes{pool=\"po\\\"ol\",volume="
                                    "\"a\\\\b\\\"c\\nd\"} 2\n"));
        /* Label values are UTF-8. */
        assert_non_null(strstr(b.s, "name=\"caf\xef\xbf\xbd\",pool=\"\"} 1\n"));
        promtool_check(b.s);
        buf_free(&b);
        status_snapshot_free_contents(&s);
}

/* ---- the commands --------------------------------------------------------------------- */

struct env {
        char *dir;
        struct dv_config *cfg;
        char *status_path;
        int lock_fd; /* the lock an agent holds: the tests run as if one did */
};

static int env_setup(void **state) {
        struct env *e = calloc(1, sizeof(*e));
        assert_non_null(e);
        e->dir = test_mkdtemp("dv-status");
        assert_int_equal(dv_config_new_default(&e->cfg), 0);
        free(e->cfg->state_dir);
        free(e->cfg->desired_dir);
        e->cfg->state_dir = path_join(e->dir, "state");
        e->cfg->desired_dir = path_join(e->dir, "desired.d");
        assert_int_equal(mkdir(e->cfg->state_dir, 0755), 0);
        assert_int_equal(mkdir(e->cfg->desired_dir, 0755), 0);
        e->status_path = path_join(e->cfg->state_dir, "status.xml");
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(state_lock(e->cfg->state_dir, &e->lock_fd, &err), 0);
        *state = e;
        return 0;
}

static int env_teardown(void **state) {
        struct env *e = *state;
        if (e->lock_fd >= 0)
                close(e->lock_fd);
        test_rm_rf(e->dir);
        free(e->dir);
        free(e->status_path);
        dv_config_free(e->cfg);
        free(e);
        return 0;
}

static char *read_back(int fd) {
        char *data = NULL;
        assert_true(lseek(fd, 0, SEEK_SET) == 0);
        assert_int_equal(read_full_fd(fd, 1 << 20, &data, NULL), 0);
        close(fd);
        return data;
}

/* Runs a command in-process with fd 1 and 2 redirected to temp files. */
static int run(int (*cmd)(const struct dv_config *, int, char **), const struct dv_config *cfg,
               char **out, char **err, int argc, char **argv) {
        fflush(stdout);
        fflush(stderr);
        int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
        int fo = open("/tmp", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
        int fe = open("/tmp", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
        assert_true(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
        assert_true(dup2(fo, STDOUT_FILENO) >= 0 && dup2(fe, STDERR_FILENO) >= 0);
        optind = 0;
        int r = cmd(cfg, argc, argv);
        fflush(stdout);
        fflush(stderr);
        dup2(saved_out, STDOUT_FILENO);
        dup2(saved_err, STDERR_FILENO);
        close(saved_out);
        close(saved_err);
        char *o = read_back(fo), *e = read_back(fe);
        if (out)
                *out = o;
        else
                free(o);
        if (err)
                *err = e;
        else
                free(e);
        return r;
}

#define RUN(cmd, cfg, out, err, ...)                                        \
        run(cmd, cfg, out, err, (int)ELEMENTSOF(((char *[]){__VA_ARGS__})), \
            (char *[]){__VA_ARGS__, NULL})

static void write_status(struct env *e, struct status_snapshot *s) {
        struct buf b = BUF_INIT;
        status_format_xml(&b, s);
        write_file(e->status_path, buf_str(&b));
        buf_free(&b);
}

/* A snapshot with two ready objects and a recent pass. */
static void healthy_snapshot(struct status_snapshot *s) {
        *s = (struct status_snapshot){
                .version = xstrdup("0.1.0"), .last_pass_usec = now_usec(), .converged = true};
        struct status_object *o = add_object(s, "pool", NULL, "images", "ready");
        o->since_usec = now_usec() - 3600 * USEC_PER_SEC;
        o->file = xstrdup("/etc/declvirt/desired.d/images.xml");
        add_condition(o, "Ready", true, NULL, NULL);
        o = add_object(s, "domain", NULL, "web1", "ready");
        o->since_usec = now_usec() - 60 * USEC_PER_SEC;
        add_condition(o, "Ready", true, NULL, NULL);
}

static void check_line(struct env *e, int code, const char *prefix, const char *perf) {
        char *out = NULL;
        int r = RUN(cli_status, e->cfg, &out, NULL, "status", "--check");
        if (r != code || strncmp(out, prefix, strlen(prefix)) != 0 ||
            (perf && !strstr(out, perf)) || strchr(out, '\n') != out + strlen(out) - 1)
                fail_msg("expected exit %d and '%s...' (%s), got %d and '%s'", code, prefix,
                         strempty(perf), r, out);
        free(out);
}

static void test_check(void **state) {
        struct env *e = *state;
        check_line(e, 3, "DECLVIRT UNKNOWN - ",
                   "status.xml: cannot read: No such file or directory");
        write_file(e->status_path, "<status>");
        check_line(e, 3, "DECLVIRT UNKNOWN - ", "malformed XML");

        struct status_snapshot s;
        healthy_snapshot(&s);
        write_status(e, &s);
        check_line(e, 0, "DECLVIRT OK - 2 objects ready | ",
                   "| objects=2 ready=2 failed=0 blocked=0 invalid_files=0 last_pass_age=");

        /* Unmanaged objects are shown but never alarm. */
        struct status_object *o = add_object(&s, "volume", "images", "stray.iso", "failed");
        o->managed = false;
        write_status(e, &s);
        check_line(e, 0, "DECLVIRT OK - 2 objects ready | ", NULL);

        /* In progress for a short while: still OK. */
        o = add_object(&s, "network", NULL, "lan", "creating");
        o->since_usec = now_usec() - 60 * USEC_PER_SEC;
        s.converged = false;
        write_status(e, &s);
        check_line(e, 0, "DECLVIRT OK - 2 of 3 objects ready, the rest in progress | ",
                   "objects=3 ready=2 ");

        /* ... for longer than 5 minutes: WARNING. */
        o->since_usec = now_usec() - 7 * 60 * USEC_PER_SEC;
        write_status(e, &s);
        check_line(e, 1, "DECLVIRT WARNING - slow: network/lan creating for 7m | ", NULL);

        /* An invalid file: WARNING. */
        o->since_usec = now_usec();
        add_file(&s, "/etc/declvirt/desired.d/bad.xml", 2, "malformed XML");
        write_status(e, &s);
        check_line(e, 1, "DECLVIRT WARNING - 1 invalid file | ", "invalid_files=1 ");

        /* Failed and blocked: CRITICAL, and the warnings still said. */
        o = add_object(&s, "domain", NULL, "db1", "failed");
        o = add_object(&s, "pool", NULL, "vg0", "blocked");
        write_status(e, &s);
        check_line(e, 2,
                   "DECLVIRT CRITICAL - failed: domain/db1; blocked: pool/vg0; 1 invalid file | ",
                   "objects=5 ready=2 failed=1 blocked=1 invalid_files=1 ");

        /* One object only. */
        char *out = NULL;
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--check", "domain/web1"),
                         0);
        assert_non_null(strstr(out, "DECLVIRT OK - 1 object ready | objects=1 ready=1 failed=0"));
        free(out);
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--check", "domain/db1"), 2);
        free(out);
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--check", "domain/nope"),
                         2);
        assert_non_null(strstr(out, "DECLVIRT CRITICAL - domain/nope is not in "));
        free(out);
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--check", "nonsense"), 3);
        free(out);
        status_snapshot_free_contents(&s);

        /* The agent is gone: no pass, no touch, for more than 3 x resync_interval. */
        healthy_snapshot(&s);
        s.last_pass_usec = now_usec() - 10 * 60 * USEC_PER_SEC;
        write_status(e, &s);
        set_mtime(e->status_path, s.last_pass_usec);
        check_line(e, 2, "DECLVIRT CRITICAL - last pass 10m ago: the agent is stuck | ",
                   "last_pass_age=600s");
        /* The heartbeat: last-pass is old (nothing changed since), but the agent
         * touched the file just now. */
        set_mtime(e->status_path, now_usec());
        check_line(e, 0, "DECLVIRT OK - 2 objects ready | ", "last_pass_age=0s");
        status_snapshot_free_contents(&s);
}

static void test_status_output(void **state) {
        struct env *e = *state;
        char *out = NULL, *err = NULL;
        assert_int_equal(RUN(cli_status, e->cfg, &out, &err, "status"), 1);
        assert_non_null(strstr(err, "is the agent running?"));
        free(out);
        free(err);

        struct status_snapshot s;
        sample_snapshot(&s);
        s.last_pass_usec = now_usec();
        write_status(e, &s);
        status_snapshot_free_contents(&s);

        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status"), 0);
        size_t len = 0;
        char *expected = test_read_file(DIR "/table.txt", &len);
        /* The summary ends with an age, which depends on now. */
        if (strncmp(out, expected, len) != 0)
                fail_msg("table differs; expected:\n%s\nactual:\n%s", expected, out);
        assert_non_null(strstr(out + len, "s ago; not converged\n"));
        free(expected);
        free(out);

        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "volume/images/web1.qcow2"),
                         0);
        assert_non_null(strstr(
                out,
                "volume/images/web1.qcow2\n  phase:        creating since 2024-05-01T12:00:05Z ("));
        assert_non_null(strstr(out, "  file:         /etc/declvirt/desired.d/web1-disk.xml\n"));
        assert_non_null(strstr(out, "  applied-hash: -\n"));
        assert_non_null(strstr(out, "    Ready=false\n"));
        free(out);
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "network/lan"), 0);
        assert_non_null(strstr(
                out,
                "    ActionFailed=true (ActionFailed): ip link add: Operation not permitted\n"));
        free(out);
        assert_int_equal(RUN(cli_status, e->cfg, &out, &err, "status", "network/nope"), 1);
        assert_string_equal(out, "");
        assert_non_null(strstr(err, "network/nope is not in "));
        free(out);
        free(err);
        assert_int_equal(RUN(cli_status, e->cfg, NULL, &err, "status", "net/lan"), 2);
        free(err);

        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--json"), 0);
        json_object *j = json_tokener_parse(out);
        assert_non_null(j);
        json_object *v, *objs, *o;
        assert_true(json_object_object_get_ex(j, "objects", &objs));
        assert_int_equal(json_object_array_length(objs), 4);
        o = json_object_array_get_idx(objs, 1);
        assert_true(json_object_object_get_ex(o, "id", &v));
        assert_string_equal(json_object_get_string(v), "volume/images/web1.qcow2");
        assert_true(json_object_object_get_ex(o, "message", &v));
        assert_string_equal(json_object_get_string(v),
                            "creating: qemu-img <create> 'x' & \"y\"\nsecond line");
        assert_true(json_object_object_get_ex(o, "since", &v));
        assert_string_equal(json_object_get_string(v), "2024-05-01T12:00:05Z");
        assert_true(json_object_object_get_ex(j, "counts", &v));
        assert_true(json_object_object_get_ex(v, "failed", &v));
        assert_int_equal(json_object_get_int(v), 1);
        assert_true(json_object_object_get_ex(j, "invalid_files", &v));
        assert_int_equal(json_object_array_length(v), 2);
        assert_true(json_object_object_get_ex(j, "converged", &v));
        assert_false(json_object_get_boolean(v));
        json_object_put(j);
        free(out);

        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--json", "pool/images"), 0);
        j = json_tokener_parse(out);
        assert_non_null(j);
        assert_true(json_object_object_get_ex(j, "phase", &v));
        assert_string_equal(json_object_get_string(v), "ready");
        json_object_put(j);
        free(out);
}

/* ---- wait ----------------------------------------------------------------------------- */

static const char *const pool_xml = "<pool type='dir'>\n"
                                    "  <name>p1</name>\n"
                                    "  <target>\n"
                                    "    <path>/var/tmp/declvirt-test/p1</path>\n"
                                    "  </target>\n"
                                    "</pool>\n";
static const char *const pool_down_xml =
        "<pool type='dir'>\n"
        "  <name>p2</name>\n"
        "  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' state='inactive'/>\n"
        "  <target>\n"
        "    <path>/var/tmp/declvirt-test/p2</path>\n"
        "  </target>\n"
        "</pool>\n";

/* Writes a desired file and returns its path; *hash gets what wait will compute. */
static char *desired(struct env *e, const char *name, const char *xml,
                     char hash[static HASH_HEX_LEN + 1]) {
        char *path = path_join(e->cfg->desired_dir, name);
        write_file(path, xml);
        struct dv_object *o = NULL;
        struct dv_error err = DV_ERROR_INIT;
        if (dv_object_parse_file(path, &o, &err) < 0) {
                dv_error_print(stderr, &err);
                fail_msg("test file %s does not parse", name);
        }
        memcpy(hash, o->hash, HASH_HEX_LEN + 1);
        dv_object_free(o);
        dv_error_clear(&err);
        return path;
}

static struct status_object *status_pool(struct status_snapshot *s, const char *name,
                                         const char *phase, const char *hash, const char *message) {
        struct status_object *o = add_object(s, "pool", NULL, name, phase);
        o->desired_hash = xstrdup(hash);
        o->message = xstrdup(message);
        o->since_usec = now_usec();
        return o;
}

static bool json_bool_is(json_object *j, const char *key, int want) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(j, key, &v))
                return false;
        if (want < 0)
                return v == NULL;
        return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v) == want;
}

/* No agent holds the lock: said plainly, the last pass shown as history, --check CRITICAL. */
static void test_no_agent(void **state) {
        struct env *e = *state;
        char *out = NULL, *err = NULL;
        struct status_snapshot s;
        healthy_snapshot(&s);
        write_status(e, &s);
        status_snapshot_free_contents(&s);
        _cleanup_free_ char *lock = path_join(e->cfg->state_dir, ".lock");
        pid_t pid = 0;

        /* Held (env_setup took it as an agent does): the probe sees it and our PID. */
        assert_int_equal(state_lock_probe(e->cfg->state_dir, &pid), 1);
        assert_int_equal(pid, getpid());
        check_line(e, 0, "DECLVIRT OK - 2 objects ready | ", NULL);
        assert_int_equal(RUN(cli_status, e->cfg, &out, &err, "status"), 0);
        assert_non_null(strstr(out, "s ago; converged\n"));
        assert_null(strstr(err, "no agent"));
        free(out);
        free(err);

        /* The agent stopped: its last pass is recent and says converged. */
        close(e->lock_fd);
        e->lock_fd = -1;
        assert_int_equal(state_lock_probe(e->cfg->state_dir, &pid), 0);
        check_line(e, 2, "DECLVIRT CRITICAL - no agent is running (the lock on ", "last_pass_age=");
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--check"), 2);
        assert_non_null(strstr(out, ".lock is free); last pass "));
        free(out);
        assert_int_equal(RUN(cli_status, e->cfg, &out, &err, "status"), 0);
        assert_non_null(strstr(err, "declvirt status: no agent is running (the lock on "));
        assert_non_null(strstr(err, "what follows is what its last pass recorded"));
        assert_non_null(strstr(out, "; no agent is running; at its last pass ("));
        assert_non_null(strstr(out, "s ago): converged\n"));
        assert_null(strstr(out, "; converged\n"));
        free(out);
        free(err);
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--json"), 0);
        json_object *j = json_tokener_parse(out);
        assert_non_null(j);
        assert_true(json_bool_is(j, "agent_running", false));
        assert_true(json_bool_is(j, "agent_pid", -1));
        json_object_put(j);
        free(out);
        /* The probe took no lock that outlives it: an agent can start now. */
        struct dv_error derr = DV_ERROR_INIT;
        int fd = -1;
        assert_int_equal(state_lock(e->cfg->state_dir, &fd, &derr), 0);
        assert_int_equal(RUN(cli_status, e->cfg, &out, NULL, "status", "--json"), 0);
        j = json_tokener_parse(out);
        assert_true(json_bool_is(j, "agent_running", true));
        json_object *v = NULL;
        assert_true(json_object_object_get_ex(j, "agent_pid", &v));
        assert_int_equal(json_object_get_int(v), getpid());
        json_object_put(j);
        free(out);
        close(fd);

        /* No lock file at all (no agent ever ran here): not running, and nothing created. */
        assert_int_equal(unlink(lock), 0);
        assert_int_equal(state_lock_probe(e->cfg->state_dir, &pid), 0);
        check_line(e, 2, "DECLVIRT CRITICAL - no agent is running", NULL);
        assert_int_equal(access(lock, F_OK), -1);
        /* ... nor status.xml: still CRITICAL, not UNKNOWN. */
        assert_int_equal(unlink(e->status_path), 0);
        check_line(e, 2, "DECLVIRT CRITICAL - no agent is running", NULL);
        assert_int_equal(RUN(cli_status, e->cfg, NULL, &err, "status"), 1);
        assert_non_null(strstr(err, "no status to show: no agent is running"));
        free(err);
        healthy_snapshot(&s);
        write_status(e, &s);
        status_snapshot_free_contents(&s);

        /* A symlink planted as the lock is never followed: cannot tell, UNKNOWN. */
        _cleanup_free_ char *target = path_join(e->dir, "target");
        assert_int_equal(symlink(target, lock), 0);
        assert_int_equal(state_lock_probe(e->cfg->state_dir, &pid), -ELOOP);
        check_line(e, 3, "DECLVIRT UNKNOWN - cannot tell whether an agent is running: ", NULL);
        assert_int_equal(access(target, F_OK), -1);
        assert_int_equal(unlink(lock), 0);
        /* A FIFO does not hang the probe. */
        assert_int_equal(mkfifo(lock, 0644), 0);
        assert_int_equal(state_lock_probe(e->cfg->state_dir, &pid), -EBADFD);
        assert_int_equal(unlink(lock), 0);
}

static void test_wait(void **state) {
        struct env *e = *state;
        char h1[HASH_HEX_LEN + 1], h2[HASH_HEX_LEN + 1];
        char *p1 = desired(e, "p1.xml", pool_xml, h1);
        char *p2 = desired(e, "p2.xml", pool_down_xml, h2);
        char *out = NULL, *err = NULL;

        /* No status.xml yet: the reason says so. */
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "0", p1), 2);
        assert_non_null(strstr(err, "pool/p1: no status: "));
        assert_non_null(strstr(err, "(is the agent running?)"));
        free(err);

        /* Settled at the file's current hash: 0, by file, by id, and by default. */
        struct status_snapshot s = {.version = xstrdup("0.1.0"), .last_pass_usec = now_usec()};
        status_pool(&s, "p1", "ready", h1, NULL);
        status_pool(&s, "p2", "stopped", h2, NULL);
        write_status(e, &s);
        assert_int_equal(RUN(cli_wait, e->cfg, &out, &err, "wait", p1), 0);
        assert_string_equal(out, "");
        assert_string_equal(err, "");
        free(out);
        free(err);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, NULL, "wait", p1, p2, "pool/p1", "pool/p2"),
                         0);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, NULL, "wait", "-t", "1"), 0);

        /* state='inactive' wants stopped: ready is not settled. */
        free(s.objects[1].phase);
        s.objects[1].phase = xstrdup("ready");
        write_status(e, &s);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout=0", p2), 2);
        assert_non_null(strstr(err, "pool/p2: ready: \n"));
        free(err);
        /* ... but by id (no policy to read) ready or stopped both count. */
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, NULL, "wait", "--timeout=0", "pool/p2"), 0);

        /* The file changed after the agent's last pass: the status is about old
         * content, so even "ready" is not settled, and the wait times out. */
        write_file(p1, "<!-- edited -->\n");
        write_file(p1, pool_xml);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, NULL, "wait", p1), 0);
        char *edited = NULL;
        assert_true(asprintf(&edited, "<!-- edited -->\n%s", pool_xml) > 0);
        write_file(p1, edited);
        free(edited);
        uint64_t start = now_usec();
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "1", p1), 2);
        assert_true(now_usec() - start >= USEC_PER_SEC);
        assert_non_null(
                strstr(err, "declvirt wait: timed out after 1s; 1 of 1 objects not settled:\n"));
        assert_non_null(strstr(err, "pool/p1: the agent has not loaded the current content of "));
        free(err);

        /* Failed at its current hash: 1 at once, with phase and message. */
        char h1b[HASH_HEX_LEN + 1];
        free(desired(e, "p1.xml", pool_xml, h1b));
        status_snapshot_free_contents(&s);
        s = (struct status_snapshot){.version = xstrdup("0.1.0"), .last_pass_usec = now_usec()};
        status_pool(&s, "p1", "failed", h1, "mkdir /var/tmp/declvirt-test/p1: Permission denied");
        status_pool(&s, "p2", "stopped", h2, NULL);
        write_status(e, &s);
        start = now_usec();
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "60"), 1);
        assert_true(now_usec() - start < 10 * USEC_PER_SEC);
        assert_string_equal(
                err, "pool/p1: failed: mkdir /var/tmp/declvirt-test/p1: Permission denied\n");
        free(err);
        /* Failed at an older hash: the agent has not seen the fix yet, keep waiting. */
        free(s.objects[0].desired_hash);
        s.objects[0].desired_hash = xstrdup("00000000000000000000000000000000");
        write_status(e, &s);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, NULL, "wait", "--timeout", "0", p1), 2);
        /* A KIND/NAME looks at the status only. */
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, NULL, "wait", "--timeout", "0", "pool/p1"), 1);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "0", "pool/nope"),
                         2);
        assert_non_null(strstr(err, "pool/nope: not in status.xml yet\n"));
        free(err);
        status_snapshot_free_contents(&s);

        /* An invalid file: 1 at once with file:line, given by name or found in desired_dir. */
        char *bad = path_join(e->cfg->desired_dir, "bad.xml");
        write_file(bad, "<pool type='dir'>\n  <name>p3</name>\n  <target>\n</pool>\n");
        start = now_usec();
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "60", bad), 1);
        assert_true(now_usec() - start < 10 * USEC_PER_SEC);
        char *expect = NULL;
        assert_true(asprintf(&expect, "%s:4: ", bad) > 0);
        if (strncmp(err, expect, strlen(expect)) != 0)
                fail_msg("expected '%s...', got '%s'", expect, err);
        free(err);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "60"), 1);
        assert_non_null(strstr(err, expect));
        free(err);
        free(expect);

        /* Names the agent ignores, files that do not exist, bad options. */
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "p1.xml.bak"), 1);
        assert_non_null(strstr(err, "the agent ignores a file with this name"));
        free(err);
        char *nope = path_join(e->cfg->desired_dir, "nope.xml");
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", nope), 1);
        assert_non_null(strstr(err, "nope.xml: cannot read: No such file or directory"));
        free(err);
        free(nope);
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "soon"), 2);
        free(err);

        free(bad);
        free(p1);
        free(p2);
}

/* Default targets use the agent's filters: temporary and backup names, hidden
 * files and directories deeper than 3 are not desired files. */
static void test_wait_default_filters(void **state) {
        struct env *e = *state;
        char h[HASH_HEX_LEN + 1];
        free(desired(e, "p1.xml", pool_xml, h));
        const char *ignored[] = {".p1.xml",       "p1.xml~",        "p1.xml.swp", "p1.xml.tmp",
                                 "p1.xml.bak",    "p1.xml.orig",    "p1.xml.rej", "p1.xml.dpkg-new",
                                 "p1.xml.rpmnew", "p1.xml.rpmsave", "p1.txt",     "x.dpkg-old.xml"};
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++) {
                char *p = path_join(e->cfg->desired_dir, ignored[i]);
                write_file(p, "garbage");
                free(p);
        }
        char *deep = path_join(e->cfg->desired_dir, "a/b/c/d");
        assert_int_equal(mkdir_p(deep, 0755), 0);
        char *deep_file = path_join(deep, "deep.xml");
        write_file(deep_file, "garbage");
        char *sub = path_join(e->cfg->desired_dir, "a/b/c/p2.xml");
        write_file(sub, pool_down_xml);

        struct status_snapshot s = {.version = xstrdup("0.1.0"), .last_pass_usec = now_usec()};
        status_pool(&s, "p1", "ready", h, NULL);
        write_status(e, &s);
        char *err = NULL;
        /* p2 (depth 3) is found; p1 is settled, p2 is not in the status. */
        assert_int_equal(RUN(cli_wait, e->cfg, NULL, &err, "wait", "--timeout", "0"), 2);
        assert_string_equal(strstr(err, "\n") + 1, "pool/p2: not in status.xml yet\n");
        free(err);
        status_snapshot_free_contents(&s);
        free(sub);
        free(deep_file);
        free(deep);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_golden),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_bad_utf8),
                cmocka_unit_test(test_time),
                cmocka_unit_test(test_object_id),
                cmocka_unit_test(test_settled),
                cmocka_unit_test(test_counts),
                cmocka_unit_test(test_content_hash),
                cmocka_unit_test(test_read_file_heartbeat),
                cmocka_unit_test(test_large),
                cmocka_unit_test(test_metrics_golden),
                cmocka_unit_test(test_metrics_escaping),
                cmocka_unit_test_setup_teardown(test_check, env_setup, env_teardown),
                cmocka_unit_test_setup_teardown(test_status_output, env_setup, env_teardown),
                cmocka_unit_test_setup_teardown(test_no_agent, env_setup, env_teardown),
                cmocka_unit_test_setup_teardown(test_wait, env_setup, env_teardown),
                cmocka_unit_test_setup_teardown(test_wait_default_filters, env_setup, env_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
