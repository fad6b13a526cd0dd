/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.conf: defaults, every key, relative paths, the two shipped files, and every
 * file under tests/data/config/bad-*.yaml refused with the problem its .err gives. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/config.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DIR "tests/data/config"

/* Every key as written in agent.conf; the shipped files must mention each one. */
static const char *const all_keys[] = {
        "desired_dir",
        "state_dir",
        "run_dir",
        "resync_interval",
        "debounce",
        "max_parallel",
        "removal_delay",
        "log_level",
        "strict_permissions",
        "storage_locations",
        "metrics_file",
        "secrets_dir",
        "qemu",
        "binary",
        "accel",
        "uid_range",
        "container",
        "template_dir",
        "data_dir",
        "id_range",
        "xen",
        "enabled",
        "xl",
};

static char *cwd(void) {
        char *c = getcwd(NULL, 0);
        assert_non_null(c);
        return c;
}

static char *join(const char *a, const char *b) {
        char *r = NULL;
        assert_true(asprintf(&r, "%s/%s", a, b) >= 0);
        return r;
}

static int parse_str(const char *yaml, struct dv_config **c, struct dv_error *err) {
        return dv_config_parse(yaml, strlen(yaml), "/etc/declvirt/agent.conf", c, err);
}

static struct dv_config *parse_ok(const char *yaml) {
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        int r = parse_str(yaml, &c, &err);
        if (r < 0) {
                char *s = dv_error_summary(&err);
                print_message("refused: %s\n%s\n", s, yaml);
                free(s);
                fail();
        }
        assert_false(dv_error_failed(&err));
        dv_error_clear(&err);
        return c;
}

/* "LINE: MESSAGE" of the first problem of a refused text. */
static void expect_refused(const char *yaml, const char *expected) {
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        int r = parse_str(yaml, &c, &err);
        assert_true(r < 0);
        assert_null(c);
        char actual[1024];
        snprintf(actual, sizeof(actual), "%d: %s", dv_error_line(&err),
                 strna(dv_error_message(&err)));
        if (strcmp(actual, expected) != 0) {
                print_message("%s\n  expected: %s\n  actual:   %s\n", yaml, expected, actual);
                fail();
        }
        dv_error_clear(&err);
}

/* The non-path values of the built-in defaults. */
static void expect_default_values(const struct dv_config *c) {
        assert_int_equal(c->resync_interval_usec, 30 * USEC_PER_SEC);
        assert_int_equal(c->debounce_usec, 10 * USEC_PER_MSEC);
        assert_int_equal(c->removal_delay_usec, 2 * USEC_PER_SEC);
        assert_int_equal(c->max_parallel, 4);
        assert_int_equal(c->log_level, LOG_INFO);
        assert_true(c->strict_permissions);
        assert_null(c->metrics_file);
        assert_string_equal(c->secrets_dir, "/etc/declvirt/secrets");
        assert_string_equal(c->qemu.binary, "/usr/bin/qemu-system-x86_64");
        assert_int_equal(c->qemu.accel, DV_ACCEL_AUTO);
        assert_int_equal(c->qemu.uid_first, 3000000);
        assert_int_equal(c->qemu.uid_last, 3999999);
        assert_string_equal(c->container.template_dir, "/var/lib/declvirt/templates");
        assert_string_equal(c->container.data_dir, "/var/lib/declvirt/containers");
        assert_int_equal(c->container.id_first, 1879048192u);
        assert_int_equal(c->container.id_last, 2147352575u);
        assert_int_equal(c->xen.enabled, DV_AUTO);
        assert_string_equal(c->xen.xl, "/usr/sbin/xl");
}

static void expect_defaults(const struct dv_config *c) {
        assert_string_equal(c->desired_dir, "/etc/declvirt/desired.d");
        assert_string_equal(c->state_dir, "/var/lib/declvirt/state");
        assert_string_equal(c->run_dir, "/run/declvirt");
        assert_int_equal(strv_length(c->storage_locations), 0);
        expect_default_values(c);
}

static void test_defaults(void **state) {
        (void)state;
        struct dv_config *c = NULL;
        assert_int_equal(dv_config_new_default(&c), 0);
        expect_defaults(c);
        assert_null(c->path);
        dv_config_free(c);

        /* An empty file, a document with only comments, "---" and "~" are all defaults. */
        const char *empty[] = {"", "\n\n", "# nothing\n", "---\n", "--- ~\n...\n", "{}\n"};
        for (size_t i = 0; i < ELEMENTSOF(empty); i++) {
                c = parse_ok(empty[i]);
                expect_defaults(c);
                assert_string_equal(c->path, "/etc/declvirt/agent.conf");
                dv_config_free(c);
        }

        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load(DIR "/comments-only.yaml", &c, &err), 0);
        expect_defaults(c);
        dv_config_free(c);
        dv_error_clear(&err);

        dv_config_free(NULL);
}

static void test_every_key(void **state) {
        (void)state;
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load(DIR "/full.yaml", &c, &err), 0);
        assert_false(dv_error_failed(&err));
        assert_string_equal(c->desired_dir, "/srv/declvirt/desired");
        assert_string_equal(c->state_dir, "/srv/declvirt/state");
        assert_string_equal(c->run_dir, "/run/dv-test");
        assert_int_equal(c->resync_interval_usec, 120 * USEC_PER_SEC);
        assert_int_equal(c->debounce_usec, 250 * USEC_PER_MSEC);
        assert_int_equal(c->max_parallel, 16);
        assert_int_equal(c->removal_delay_usec, 3600 * USEC_PER_SEC);
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_false(c->strict_permissions);
        assert_int_equal(strv_length(c->storage_locations), 2);
        assert_string_equal(c->storage_locations[0], "/srv/vm/*");
        assert_string_equal(c->storage_locations[1], "/data/images"); /* trailing slash dropped */
        assert_string_equal(c->metrics_file, "/var/lib/prometheus/node-exporter/declvirt.prom");
        assert_string_equal(c->secrets_dir, "/srv/declvirt/secrets");
        assert_string_equal(c->qemu.binary, "qemu-kvm"); /* no '/': left for PATH */
        assert_int_equal(c->qemu.accel, DV_ACCEL_KVM);
        assert_int_equal(c->qemu.uid_first, 5000000);
        assert_int_equal(c->qemu.uid_last, 5000099);
        assert_string_equal(c->container.template_dir, "/srv/templates");
        assert_string_equal(c->container.data_dir, "/srv/containers");
        assert_int_equal(c->xen.enabled, DV_YES);
        assert_string_equal(c->xen.xl, "/opt/xen/bin/xl");
        dv_config_free(c);
        dv_error_clear(&err);
}

static void test_flow_style(void **state) {
        (void)state;
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load(DIR "/flow.yaml", &c, &err), 0);
        assert_string_equal(c->desired_dir, "/srv/d");
        assert_int_equal(c->max_parallel, 256);
        assert_int_equal(c->debounce_usec, 0);
        assert_int_equal(c->resync_interval_usec, 1500 * USEC_PER_MSEC);
        assert_false(c->strict_permissions);
        assert_null(c->storage_locations);
        assert_null(c->metrics_file);
        assert_string_equal(c->qemu.binary, "/usr/bin/qemu-system-x86_64");
        assert_string_equal(c->container.template_dir, "/var/lib/declvirt/templates");
        assert_int_equal(c->xen.enabled, DV_NO);
        assert_int_equal(c->log_level, LOG_ERR);
        dv_config_free(c);
        dv_error_clear(&err);
}

static void test_values(void **state) {
        (void)state;
        static const struct {
                const char *text;
                uint64_t usec;
        } durations[] = {
                {"100ms", 100 * USEC_PER_MSEC},    {"30s", 30 * USEC_PER_SEC},
                {"2m", 120 * USEC_PER_SEC},        {"1h", 3600 * USEC_PER_SEC},
                {"45", 45 * USEC_PER_SEC},         {"1.5s", 1500 * USEC_PER_MSEC},
                {"24h", 24 * 3600 * USEC_PER_SEC}, {"\"90s\"", 90 * USEC_PER_SEC},
        };
        for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "removal_delay: %s\n", durations[i].text);
                struct dv_config *c = parse_ok(yaml);
                assert_int_equal(c->removal_delay_usec, durations[i].usec);
                dv_config_free(c);
        }
        static const struct {
                const char *text;
                bool value;
        } bools[] = {
                {"true", true}, {"false", false}, {"yes", true},   {"no", false},
                {"True", true}, {"NO", false},    {"'yes'", true},
        };
        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "strict_permissions: %s\n", bools[i].text);
                struct dv_config *c = parse_ok(yaml);
                assert_int_equal(c->strict_permissions, bools[i].value);
                dv_config_free(c);
        }
        static const char *const levels[] = {"debug", "info", "notice", "warning", "error"};
        static const int level_values[] = {LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR};
        for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
                char yaml[128];
                snprintf(yaml, sizeof(yaml), "log_level: %s\n", levels[i]);
                struct dv_config *c = parse_ok(yaml);
                assert_int_equal(c->log_level, level_values[i]);
                dv_config_free(c);
        }
        struct dv_config *c =
                parse_ok("qemu: {accel: tcg}\nxen: {enabled: true}\nmax_parallel: 1\n");
        assert_int_equal(c->qemu.accel, DV_ACCEL_TCG);
        assert_int_equal(c->xen.enabled, DV_YES);
        assert_int_equal(c->max_parallel, 1);
        dv_config_free(c);
        c = parse_ok("xen:\n  enabled: no\nmetrics_file: \"\"\nstorage_locations:\n");
        assert_int_equal(c->xen.enabled, DV_NO);
        assert_null(c->metrics_file);
        assert_null(c->storage_locations);
        dv_config_free(c);

        /* The bounds themselves are accepted, one step past them is not. */
        c = parse_ok("resync_interval: 100ms\ndebounce: 1s\nremoval_delay: 0\n");
        dv_config_free(c);
        expect_refused("resync_interval: 99ms\n",
                       "1: 'resync_interval' must be between 100ms and 24h, not 99ms");
        expect_refused("debounce: 1001ms\n", "1: 'debounce' must be between 0 and 1s, not 1001ms");
        expect_refused("removal_delay: 25h\n",
                       "1: 'removal_delay' must be between 0 and 24h, not 25h");
}

static void check_bad_file(const char *path, const char *expected, size_t *bad) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_config *c = NULL;
        int r = dv_config_load(path, &c, &err);
        char actual[1024] = "(accepted)";
        if (r < 0)
                snprintf(actual, sizeof(actual), "%d: %s", dv_error_line(&err),
                         strna(dv_error_message(&err)));
        if (r >= 0 || c || !expected || strcmp(actual, expected) != 0) {
                print_message("%s\n  expected: %s\n  actual:   %s\n", path,
                              expected ? expected : "(no .err file)", actual);
                (*bad)++;
        } else {
                /* Messages name the file: "PATH:LINE: message". */
                assert_string_equal(err.file, path);
                char *s = dv_error_summary(&err);
                char want[1200];
                if (dv_error_line(&err) > 0)
                        snprintf(want, sizeof(want), "%s:%s", path, expected);
                else
                        snprintf(want, sizeof(want), "%s: %s", path, strchr(expected, ' ') + 1);
                assert_string_equal(s, want);
                free(s);
        }
        dv_config_free(c);
        dv_error_clear(&err);
}

/* One bad-*.yaml: refused with the first line of its .err file, naming the file. */
static void test_bad_file(void **state) {
        const char *path = *state;
        _cleanup_free_ char *errpath = test_sibling(path, ".err");
        _cleanup_free_ char *expected = test_read_first_line(errpath);
        size_t bad = 0;
        check_bad_file(path, expected, &bad);
        assert_int_equal(bad, 0);
}

/* Every problem is reported, in file order, not just the first. */
static void test_all_problems(void **state) {
        (void)state;
        const char *yaml = "debounse: 1s\n"
                           "max_parallel: 0\n"
                           "qemu:\n"
                           "  accel: hvf\n"
                           "  binary: [a]\n"
                           "log_level: info\n"
                           "xen: {enabled: maybe}\n";
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(parse_str(yaml, &c, &err), -EINVAL);
        assert_null(c);
        assert_int_equal(err.n_problems, 5);
        assert_int_equal(err.problems[0].line, 1);
        assert_int_equal(err.problems[1].line, 2);
        assert_string_equal(err.problems[1].msg, "'max_parallel' must be between 1 and 256, not 0");
        assert_int_equal(err.problems[2].line, 4);
        assert_int_equal(err.problems[3].line, 5);
        assert_string_equal(err.problems[3].msg,
                            "'qemu.binary' must be a program or path, not a sequence");
        assert_int_equal(err.problems[4].line, 7);
        assert_string_equal(err.problems[4].msg,
                            "'xen.enabled' must be one of auto, yes, no, not 'maybe'");
        dv_error_clear(&err);

        /* A hostile file does not produce an endless list. */
        char big[8192] = "";
        for (int i = 0; i < 100; i++) {
                char line[64];
                snprintf(line, sizeof(line), "unknown%d: x\n", i);
                strcat(big, line);
        }
        assert_int_equal(parse_str(big, &c, &err), -EINVAL);
        assert_int_equal(err.n_problems, 21);
        assert_string_equal(err.problems[20].msg,
                            "too many problems; the rest of the file was not read");
        dv_error_clear(&err);

        /* Too deep to be anything but an attack: reported after the unknown key. */
        assert_int_equal(dv_config_load(DIR "/bad-deep-nesting.yaml", &c, &err), -EINVAL);
        assert_int_equal(err.n_problems, 2);
        assert_string_equal(err.problems[1].msg, "nesting is deeper than 32 levels");
        dv_error_clear(&err);

        /* A NULL error object still gets the errno. */
        assert_int_equal(parse_str("max_parallel: x\n", &c, NULL), -EINVAL);
        assert_null(c);
}

static void test_more_errors(void **state) {
        (void)state;
        expect_refused("max_parallel: 4\nmax_paralel: 4\n",
                       "2: unknown key 'max_paralel' (did you mean 'max_parallel'?)");
        expect_refused("stat_dir: /x\n", "1: unknown key 'stat_dir' (did you mean 'state_dir'?)");
        expect_refused("xen:\n  xk: /x\n", "2: unknown key 'xen.xk' (did you mean 'xen.xl'?)");
        expect_refused("xen:\n  ab: /x\n", "2: unknown key 'xen.ab'");
        expect_refused("xl: /x\n", "1: unknown key 'xl' (write 'xl:' indented under 'xen:')");
        expect_refused("template_dir: /x\n", "1: unknown key 'template_dir' (write 'template_dir:' "
                                             "indented under 'container:')");
        expect_refused("debounce: 10ms\n...\n---\ndebounce: 20ms\n",
                       "3: more than one YAML document: only one is allowed");
        expect_refused("[1, 2]\n",
                       "1: the configuration must be a mapping of keys to values, not a sequence");
        expect_refused("desired_dir: !custom /x\n",
                       "1: YAML tags are not allowed (found '!custom')");
        expect_refused("qemu:\n  binary: &b /x\n",
                       "2: YAML anchors and aliases are not allowed (found '&b')");
        expect_refused("storage_locations: [\"/a\", ~]\n",
                       "1: 'storage_locations' has an empty entry");
        expect_refused("qemu: []\n", "1: 'qemu' must be a mapping, not a sequence");
        expect_refused("max_parallel:\n", "1: 'max_parallel' needs a value");
        expect_refused("log_level: ~\n", "1: 'log_level' needs a value");
        expect_refused(
                "debounce: 1.5.5s\n",
                "1: 'debounce': invalid duration '1.5.5s' (write it like 100ms, 30s, 2m or 1h)");
        expect_refused("max_parallel: 4\n\"\\xff\": 1\n", "2: unknown key '\xc3\xbf'");

        /* Past the limit on storage_locations, said once. */
        char *yaml = strdup("storage_locations:\n");
        for (int i = 0; i < 300; i++) {
                char *n = NULL;
                assert_true(asprintf(&n, "%s  - /srv/%d/*\n", yaml, i) >= 0);
                free(yaml);
                yaml = n;
        }
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(parse_str(yaml, &c, &err), -E2BIG);
        assert_int_equal(err.n_problems, 1);
        assert_int_equal(err.problems[0].line, 258);
        assert_string_equal(err.problems[0].msg, "'storage_locations' has more than 256 entries");
        dv_error_clear(&err);
        free(yaml);
}

/* Too large to keep in the repository: made here. */
static void test_file_over_one_mib(void **state) {
        (void)state;
        char *dir = test_mkdtemp("dv-config");
        char *path = join(dir, "big.conf");
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs("max_parallel: 4\n", f);
        for (int i = 0; i < DV_CONFIG_MAX_SIZE / 64 + 1; i++)
                fputs("# 3456789012345678901234567890123456789012345678901234567890123\n", f);
        fclose(f);
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load(path, &c, &err), -EFBIG);
        assert_null(c);
        assert_int_equal(dv_error_line(&err), 0);
        assert_string_equal(dv_error_message(&err), "file is larger than 1048576 bytes");
        assert_string_equal(err.file, path);
        dv_error_clear(&err);

        /* The same limit for text handed over directly. */
        size_t len = DV_CONFIG_MAX_SIZE + 1;
        char *data = malloc(len);
        assert_non_null(data);
        memset(data, '\n', len);
        assert_int_equal(dv_config_parse(data, len, "big.conf", &c, &err), -EFBIG);
        assert_string_equal(dv_error_message(&err), "file is larger than 1048576 bytes");
        dv_error_clear(&err);
        /* Exactly the limit is fine. */
        assert_int_equal(dv_config_parse(data, len - 1, "big.conf", &c, &err), 0);
        dv_config_free(c);
        dv_error_clear(&err);
        free(data);

        free(path);
        test_rm_rf(dir);
        free(dir);
}

static void test_missing_file(void **state) {
        (void)state;
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load(DIR "/does-not-exist.yaml", &c, &err), -ENOENT);
        assert_null(c);
        char *s = dv_error_summary(&err);
        assert_string_equal(s, DIR "/does-not-exist.yaml: cannot read: No such file or directory");
        free(s);
        dv_error_clear(&err);

        assert_int_equal(dv_config_load(DIR, &c, &err), -EISDIR);
        dv_error_clear(&err);
}

static void test_default_path(void **state) {
        (void)state;
        if (access(DV_CONFIG_DEFAULT_PATH, F_OK) == 0 || errno != ENOENT) {
                print_message("skip: " DV_CONFIG_DEFAULT_PATH
                              " exists here: cannot test the built-in defaults\n");
                skip();
        }
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load(NULL, &c, &err), 0);
        assert_false(dv_error_failed(&err));
        expect_defaults(c);
        assert_null(c->path);
        dv_config_free(c);
}

static void test_relative_paths(void **state) {
        (void)state;
        char *here = cwd();
        char *base = join(here, DIR);
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;

        /* A relative config path: made absolute from the current directory. */
        assert_int_equal(dv_config_load(DIR "/relative.yaml", &c, &err), 0);
        char *p = join(base, "relative.yaml");
        assert_string_equal(c->path, p);
        free(p);
#define EXPECT_UNDER(field, rel)                \
        do {                                    \
                char *e_ = join(base, rel);     \
                assert_string_equal(field, e_); \
                free(e_);                       \
        } while (0)
        EXPECT_UNDER(c->desired_dir, "desired.d");
        EXPECT_UNDER(c->state_dir, "var/state");
        EXPECT_UNDER(c->run_dir, "../run"); /* ".." is kept: symlinks make it ambiguous */
        EXPECT_UNDER(c->metrics_file, "metrics/declvirt.prom");
        assert_string_equal(c->secrets_dir, base);
        EXPECT_UNDER(c->qemu.binary, "bin/qemu");
        EXPECT_UNDER(c->container.template_dir, "templates");
        assert_string_equal(c->xen.xl, "xl"); /* a bare program name stays one */
#undef EXPECT_UNDER
        dv_config_free(c);

        /* A bare file name: the current directory is the base. */
        assert_int_equal(dv_config_parse("desired_dir: d\n", 15, "agent.conf", &c, &err), 0);
        p = join(here, "d");
        assert_string_equal(c->desired_dir, p);
        free(p);
        p = join(here, "agent.conf");
        assert_string_equal(c->path, p);
        free(p);
        dv_config_free(c);

        /* No path at all: the current directory, and no file name in messages. */
        assert_int_equal(dv_config_parse("desired_dir: ./d/./e/\n", 22, NULL, &c, &err), 0);
        p = join(here, "d/e");
        assert_string_equal(c->desired_dir, p);
        free(p);
        assert_null(c->path);
        dv_config_free(c);

        /* An absolute config path. */
        assert_int_equal(dv_config_parse("state_dir: s\nrun_dir: /abs\n", 27,
                                         "/opt/dv//conf/agent.conf", &c, &err),
                         0);
        assert_string_equal(c->state_dir, "/opt/dv/conf/s");
        assert_string_equal(c->run_dir, "/abs");
        assert_string_equal(c->path, "/opt/dv/conf/agent.conf");
        dv_config_free(c);
        /* A config in the root directory. */
        assert_int_equal(dv_config_parse("state_dir: s\n", 13, "/agent.conf", &c, &err), 0);
        assert_string_equal(c->state_dir, "/s");
        dv_config_free(c);

        assert_false(dv_error_failed(&err));
        dv_error_clear(&err);
        free(base);
        free(here);
}

/* An agent started in a directory that was removed since: an absolute config path
 * needs no current directory, a relative one says why it cannot be used. */
static void test_cwd_gone(void **state) {
        (void)state;
        int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(here >= 0);
        char *dir = test_mkdtemp("dv-config-cwd");
        assert_int_equal(chdir(dir), 0);
        assert_int_equal(rmdir(dir), 0);

        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        int r1 = dv_config_parse("state_dir: s\n", 13, "/opt/dv/agent.conf", &c, &err);
        char *s1 = c ? strdup(c->state_dir) : NULL;
        dv_config_free(c);
        c = NULL;
        dv_error_clear(&err);
        int r2 = dv_config_parse("state_dir: s\n", 13, "agent.conf", &c, &err);
        char *m2 = dv_error_summary(&err);
        dv_error_clear(&err);

        assert_int_equal(fchdir(here), 0); /* before any assertion can end the test */
        close(here);
        assert_int_equal(r1, 0);
        assert_string_equal(s1, "/opt/dv/s");
        assert_int_equal(r2, -ENOENT);
        assert_null(c);
        assert_string_equal(
                m2, "agent.conf: cannot find the current directory: No such file or directory");
        free(s1);
        free(m2);
        free(dir);
}

static void expect_mentions_every_key(const char *path) {
        size_t len;
        char *text = test_read_file(path, &len);
        for (size_t i = 0; i < ELEMENTSOF(all_keys); i++) {
                char needle[64];
                snprintf(needle, sizeof(needle), "%s:", all_keys[i]);
                if (!strstr(text, needle))
                        fail_msg("%s does not mention %s", path, all_keys[i]);
        }
        free(text);
}

static void test_repo_agent_conf(void **state) {
        (void)state;
        char *here = cwd();
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load("agent.conf", &c, &err), 0);
        char *p = join(here, "desired.d");
        assert_string_equal(c->desired_dir, p);
        free(p);
        p = join(here, "var/state");
        assert_string_equal(c->state_dir, p);
        free(p);
        p = join(here, "var/run");
        assert_string_equal(c->run_dir, p);
        free(p);
        assert_true(c->strict_permissions);
        assert_int_equal(strv_length(c->storage_locations), 0);
        /* Container templates and layers stay in the checkout too. */
        p = join(here, "var/templates");
        assert_string_equal(c->container.template_dir, p);
        free(p);
        p = join(here, "var/containers");
        assert_string_equal(c->container.data_dir, p);
        free(p);
        free(c->container.template_dir);
        free(c->container.data_dir);
        c->container.template_dir = strdup("/var/lib/declvirt/templates");
        c->container.data_dir = strdup("/var/lib/declvirt/containers");
        expect_default_values(c);
        dv_config_free(c);
        dv_error_clear(&err);
        free(here);
        expect_mentions_every_key("agent.conf");
}

static void test_installed_default_conf(void **state) {
        (void)state;
        struct dv_config *c = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_load("scripts/agent.conf.default", &c, &err), 0);
        assert_string_equal(c->desired_dir, "/etc/declvirt/desired.d");
        assert_string_equal(c->state_dir, "/var/lib/declvirt/state");
        assert_string_equal(c->run_dir, "/run/declvirt");
        assert_int_equal(strv_length(c->storage_locations), 2);
        assert_string_equal(c->storage_locations[0], "/var/lib/declvirt/*");
        assert_string_equal(c->storage_locations[1], "/var/lib/libvirt/images/*");
        expect_default_values(c);
        dv_config_free(c);
        dv_error_clear(&err);
        expect_mentions_every_key("scripts/agent.conf.default");
}

/* dir/name, holding text. */
static char *put_file(const char *dir, const char *name, const char *text) {
        char *p = join(dir, name);
        assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
        return p;
}

/* qemu.uid_range: FIRST-LAST, at least 16 ids, never 0 nor (uid_t)-1; and no account of
 * the passwd or group file in it. */
static void test_uid_range(void **state) {
        (void)state;
        struct dv_config *c = parse_ok("qemu:\n  uid_range: 100000-100015\n");
        assert_int_equal(c->qemu.uid_first, 100000);
        assert_int_equal(c->qemu.uid_last, 100015);
        dv_config_free(c);
        expect_refused("qemu:\n  uid_range: 100000-100014\n",
                       "2: 'qemu.uid_range' 100000-100014 holds 15 ids, fewer than 16 (one per "
                       "QEMU domain)");
        expect_refused("qemu:\n  uid_range: 0-100\n",
                       "2: 'qemu.uid_range' must lie within 1-4294967294 with FIRST <= LAST, not "
                       "0-100");
        expect_refused("qemu:\n  uid_range: 100-4294967295\n",
                       "2: 'qemu.uid_range' must lie within 1-4294967294 with FIRST <= LAST, not "
                       "100-4294967295");
        expect_refused("qemu:\n  uid_range: 200-100\n",
                       "2: 'qemu.uid_range' must lie within 1-4294967294 with FIRST <= LAST, not "
                       "200-100");
        expect_refused("qemu:\n  uid_range: 3000000\n",
                       "2: 'qemu.uid_range' must be a range of ids FIRST-LAST (3000000-3999999), "
                       "not '3000000'");

        _cleanup_free_ char *dir = test_mkdtemp("dv-config");
        _cleanup_free_ char *pw = put_file(dir, "passwd",
                                           "root:x:0:0:root:/root:/bin/bash\n"
                                           "alice:x:1000:1000::/home/alice:/bin/bash\n");
        _cleanup_free_ char *gr = put_file(dir, "group", "root:x:0:\nstaff:x:3000005:\n");
        c = parse_ok("qemu: {uid_range: 900-999}\n");
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(dv_config_check_uid_range(c, pw, gr, &err), 0);
        dv_config_free(c);
        c = parse_ok("qemu: {uid_range: 1000-1999}\n");
        assert_int_equal(dv_config_check_uid_range(c, pw, gr, &err), -EEXIST);
        assert_non_null(strstr(dv_error_message(&err), "the user alice (1000)"));
        dv_error_clear(&err);
        dv_config_free(c);
        c = parse_ok("qemu: {uid_range: 3000000-3999999}\n");
        assert_int_equal(dv_config_check_uid_range(c, pw, gr, &err), -EEXIST);
        assert_non_null(strstr(dv_error_message(&err), "the group staff (3000005)"));
        dv_error_clear(&err);
        dv_config_free(c);
        /* This host's own files hold nothing in the default range. */
        c = parse_ok("");
        assert_int_equal(dv_config_check_uid_range(c, NULL, NULL, &err), 0);
        dv_config_free(c);
        test_rm_rf(dir);
}

/* container.id_range: FIRST-LAST of at least 65536 ids; no account of the passwd or group
 * file, no entry of the subuid or subgid file in it, and no overlap with qemu.uid_range. */
static void test_container_id_range(void **state) {
        (void)state;
        struct dv_config *c = parse_ok("container:\n  id_range: 200000-265535\n");
        assert_int_equal(c->container.id_first, 200000);
        assert_int_equal(c->container.id_last, 265535);
        dv_config_free(c);
        expect_refused("container:\n  id_range: 200000-265534\n",
                       "2: 'container.id_range' 200000-265534 holds 65535 ids, fewer than 65536 "
                       "(the ids of one container)");
        expect_refused("container:\n  id_range: 0-65535\n",
                       "2: 'container.id_range' must lie within 1-4294967294 with FIRST <= LAST, "
                       "not 0-65535");

        _cleanup_free_ char *dir = test_mkdtemp("dv-config");
        _cleanup_free_ char *pw = put_file(dir, "passwd",
                                           "root:x:0:0:root:/root:/bin/bash\n"
                                           "alice:x:1000:1000::/home/alice:/bin/bash\n"
                                           "big:x:5000000:5000000::/:/bin/false\n");
        _cleanup_free_ char *gr = put_file(dir, "group", "root:x:0:\nbiggroup:x:6000000:\n");
        _cleanup_free_ char *su = put_file(dir, "subuid", "alice:100000:65536\n");
        _cleanup_free_ char *sg =
                put_file(dir, "subgid", "alice:100000:65536\nbob:7000000:65536\n");
        struct dv_error err = DV_ERROR_INIT;
        static const struct {
                const char *conf, *problem; /* NULL: accepted */
        } cases[] = {
                {"container: {id_range: 200000-399999}\n", NULL},
                {"container: {id_range: 4000000-4999999}\n", NULL},
                {"container: {id_range: 4900000-5099999}\n",
                 "container.id_range 4900000-5099999 holds the user big (5000000) of"},
                {"container: {id_range: 5900000-6099999}\n",
                 "container.id_range 5900000-6099999 holds the group biggroup (6000000) of"},
                {"container: {id_range: 150000-299999}\n",
                 "container.id_range 150000-299999 overlaps the ids 100000-165535 of alice in"},
                {"container: {id_range: 6999999-7099999}\n",
                 "overlaps the ids 7000000-7065535 of bob in"},
                {"container: {id_range: 3500000-3599999}\n",
                 "container.id_range 3500000-3599999 overlaps qemu.uid_range 3000000-3999999"},
                {"qemu: {uid_range: 3000000-3000099}\ncontainer: {id_range: 3000050-3100000}\n",
                 "overlaps qemu.uid_range 3000000-3000099"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                c = parse_ok(cases[i].conf);
                int r = dv_config_check_container_range(c, pw, gr, su, sg, &err);
                if (!cases[i].problem)
                        assert_int_equal(r, 0);
                else {
                        assert_int_equal(r, -EEXIST);
                        if (!strstr(dv_error_message(&err), cases[i].problem))
                                fail_msg("%s: %s", cases[i].conf, dv_error_message(&err));
                }
                dv_error_clear(&err);
                dv_config_free(c);
        }
        /* This host's own files hold nothing in the default range. */
        c = parse_ok("");
        assert_int_equal(dv_config_check_container_range(c, NULL, NULL, NULL, NULL, &err), 0);
        dv_config_free(c);
        test_rm_rf(dir);
}

static void test_location_allowed(void **state) {
        (void)state;
        struct dv_config *c = parse_ok(
                "storage_locations: [/var/lib/declvirt/*, /srv/vm, /data/*/images/*.qcow2]\n");
        static const struct {
                const char *path;
                bool allowed;
        } cases[] = {
                {"/var/lib/declvirt/pool1", true},
                {"/var/lib/declvirt/pool1/disk.qcow2", true}, /* below an allowed directory */
                {"/var/lib/declvirt/a/b/c/d", true},
                {"/var/lib/declvirt", false}, /* the star needs a component */
                {"/var/lib/declvirtx/pool", false},
                {"/var/lib", false},
                {"/srv/vm", true}, /* no wildcard: it and below */
                {"/srv/vm/x.img", true},
                {"/srv/vmx", false},
                {"/data/a/images/x.qcow2", true},
                {"/data/a/images/x.raw", false},
                {"/data/a/b/images/x.qcow2", false}, /* FNM_PATHNAME: * stops at / */
                {"/var/lib/declvirt/..", false},     /* climbing out */
                {"/var/lib/declvirt/../../etc/shadow", false},
                {"/srv/vm/../../etc/shadow", false},
                {"/srv/vm/..x", true},            /* a name, not ".." */
                {"/var//lib/declvirt/./p", true}, /* same path written loosely */
                {"/srv/vm/", true},
                {"var/lib/declvirt/p", false}, /* relative */
                {"", false},
                {"/", false},
                {"/etc/passwd", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (dv_config_location_allowed(c, cases[i].path) != cases[i].allowed)
                        fail_msg("%s: expected %s", cases[i].path,
                                 cases[i].allowed ? "allowed" : "refused");
        assert_false(dv_config_location_allowed(c, NULL));
        dv_config_free(c);

        /* No list, or an empty one: anywhere. */
        c = parse_ok("storage_locations: []\n");
        assert_true(dv_config_location_allowed(c, "/anything/at/all"));
        dv_config_free(c);
        assert_true(dv_config_location_allowed(NULL, "/x"));

        /* "/" allows every absolute path. */
        c = parse_ok("storage_locations: [/]\n");
        assert_true(dv_config_location_allowed(c, "/x/y"));
        dv_config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_every_key),
                cmocka_unit_test(test_flow_style),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_all_problems),
                cmocka_unit_test(test_more_errors),
                cmocka_unit_test(test_file_over_one_mib),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_default_path),
                cmocka_unit_test(test_relative_paths),
                cmocka_unit_test(test_cwd_gone),
                cmocka_unit_test(test_repo_agent_conf),
                cmocka_unit_test(test_installed_default_conf),
                cmocka_unit_test(test_location_allowed),
                cmocka_unit_test(test_uid_range),
                cmocka_unit_test(test_container_id_range),
        };
        _cleanup_strv_free_ char **files = test_list_dir(DIR, ".yaml");
        _cleanup_free_ char **bad = test_filter_base_prefix(files, "bad-", true);
        struct test_list l = TEST_LIST_INIT;
        test_list_add(&l, tests, ELEMENTSOF(tests));
        test_list_add_files(&l, "bad", bad, test_bad_file, 40);
        return test_list_run(&l, "test-config");
}
