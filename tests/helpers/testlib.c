/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers for the cmocka unit tests. */
#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/strv.h"

char *test_read_file(const char *path, size_t *len) {
        char *data = NULL;
        int r = read_full_file(path, 64u << 20, &data, len);
        if (r < 0)
                fail_msg("cannot read %s: %s", path, strerror(-r));
        return data;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char **test_list_dir(const char *dir, const char *suffix) {
        char **l = NULL;
        DIR *d = opendir(dir);
        if (!d)
                fail_msg("cannot open %s", dir);
        struct dirent *de;
        size_t sl = strlen(suffix);
        while ((de = readdir(d))) {
                size_t nl = strlen(de->d_name);
                if (de->d_name[0] == '.' || nl < sl || strcmp(de->d_name + nl - sl, suffix) != 0)
                        continue;
                if (strv_pushf(&l, "%s/%s", dir, de->d_name) < 0)
                        fail_msg("out of memory");
        }
        closedir(d);
        if (l)
                qsort(l, strv_length(l), sizeof(char *), cmp_str);
        return l;
}

char *test_mkdtemp(const char *prefix) {
        char *p = NULL;
        if (asprintf(&p, "/tmp/%s.XXXXXX", prefix) < 0 || !mkdtemp(p))
                fail_msg("mkdtemp failed");
        return p;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        remove(p);
        return 0;
}

void test_rm_rf(const char *path) {
        if (path)
                nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

bool test_have_program(const char *name) {
        const char *path = getenv("PATH");
        if (!path)
                path = "/usr/sbin:/usr/bin:/sbin:/bin";
        char *copy = strdup(path), *save = NULL;
        bool found = false;
        for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
                char *p = NULL;
                if (asprintf(&p, "%s/%s", d, name) >= 0) {
                        found = access(p, X_OK) == 0;
                        free(p);
                }
        }
        free(copy);
        return found;
}

struct dv_object *test_load_object(const char *path, enum dv_kind kind) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse_file(path, &o, &err) < 0) {
                dv_error_print(stderr, &err);
                fail_msg("%s was refused", path);
        }
        dv_error_clear(&err);
        assert_int_equal(o->kind, kind);
        return o;
}

struct dv_object *test_parse_string_ok(const char *data, const char *what) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse(data, strlen(data), what, &o, &err) < 0) {
                dv_error_print(stderr, &err);
                print_message("%s\n", data);
                fail_msg("%s was refused", what);
        }
        dv_error_clear(&err);
        return o;
}

char **test_list_fixtures(const char *dir) {
        _cleanup_strv_free_ char **all = test_list_dir(dir, ".xml");
        char **l = NULL;
        for (char **f = all; f && *f; f++)
                if (!str_ends_with(*f, ".golden.xml"))
                        assert_int_equal(strv_push(&l, *f), 0);
        assert_non_null(l);
        return l;
}

char *test_golden_path(const char *fixture) {
        char *p = NULL;
        assert_true(asprintf(&p, "%.*s.golden.xml", (int)(strlen(fixture) - 4), fixture) > 0);
        return p;
}

void test_check_golden_text(const char *path, const char *actual) {
        if (getenv("DECLVIRT_UPDATE_GOLDEN")) {
                assert_int_equal(write_file_atomic(path, actual, strlen(actual), 0644), 0);
                return;
        }
        size_t len = 0;
        char *want = test_read_file(path, &len);
        if (strcmp(want, actual) != 0)
                fail_msg("%s differs:\n--- expected\n%s--- actual\n%s", path, want, actual);
        free(want);
}

void test_check_golden_argv(const char *path, char *const *argv) {
        size_t len = 0;
        for (size_t i = 0; argv && argv[i]; i++)
                len += strlen(argv[i]) + 1;
        char *text = malloc(len + 1), *p = text;
        assert_non_null(text);
        for (size_t i = 0; argv && argv[i]; i++)
                p = stpcpy(stpcpy(p, argv[i]), "\n");
        *p = '\0';
        test_check_golden_text(path, text);
        free(text);
}

struct dv_object *test_check_model_golden(const char *path, enum dv_kind kind) {
        char *gpath = test_golden_path(path);
        struct dv_object *o = test_load_object(path, kind);
        char *out = dv_object_format(o);
        assert_non_null(out);
        test_check_golden_text(gpath, out);
        struct dv_object *o2 = test_parse_string_ok(out, gpath);
        assert_string_equal(o->name, o2->name);
        char *out2 = dv_object_format(o2);
        if (strcmp(out, out2) != 0)
                fail_msg("%s: formatting is not stable:\n%s", path, out2);
        char *def1 = dv_object_format_def(o), *def2 = dv_object_format_def(o2);
        assert_string_equal(def1, def2);
        free(def1);
        free(def2);
        free(out2);
        dv_object_free(o2);
        free(out);
        free(gpath);
        return o;
}

void test_check_schema(const char *what, const char *xml, const char *schema) {
        if (!test_have_program("virt-xml-validate")) {
                print_message("virt-xml-validate is not installed (Debian: libvirt-clients)\n");
                skip();
        }
        char *dir = test_mkdtemp("dv-schema");
        char path[4096], log[4096], cmd[8192 + 128];
        snprintf(path, sizeof(path), "%s/%s", dir, test_base_name(what));
        snprintf(log, sizeof(log), "%s/validate.log", dir);
        assert_int_equal(write_file_atomic(path, xml, strlen(xml), 0644), 0);
        /* The test's own temporary paths and a fixed schema name, no user input: a shell
         * is fine here, and it redirects the output to the log. */
        snprintf(cmd, sizeof(cmd), "virt-xml-validate '%s' %s >'%s' 2>&1", path, schema, log);
        int st = system(cmd);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                char *msg = test_read_file(log, NULL);
                print_message("%s", msg);
                free(msg);
                test_rm_rf(dir);
                free(dir);
                fail_msg("%s: the formatted output is not valid for libvirt's %s schema:\n%s", what,
                         schema, xml);
        }
        test_rm_rf(dir);
        free(dir);
}

void test_check_refused_file(const char *path) {
        char *errpath = test_sibling(path, ".err");
        char *expected = test_read_first_line(errpath);
        if (!expected)
                fail_msg("%s: no %s", path, errpath);
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        char actual[2048] = "(accepted)";
        if (dv_object_parse_file(path, &o, &err) < 0) {
                assert_null(o);
                snprintf(actual, sizeof(actual), "%d: %s", dv_error_line(&err),
                         dv_error_message(&err));
                /* The file name is in every formatted message. */
                char *summary = dv_error_summary(&err);
                assert_non_null(summary);
                if (!strstr(summary, path))
                        fail_msg("%s: the message does not name the file: %s", path, summary);
                free(summary);
        }
        dv_object_free(o);
        dv_error_clear(&err);
        if (strcmp(actual, expected) != 0)
                fail_msg("%s\n  expected: %s\n  actual:   %s", path, expected, actual);
        free(expected);
        free(errpath);
}

void test_list_add(struct test_list *l, const struct CMUnitTest *tests, size_t n) {
        struct CMUnitTest *t = realloc(l->tests, (l->n + n) * sizeof(*t));
        assert_non_null(t);
        memcpy(t + l->n, tests, n * sizeof(*t));
        l->tests = t;
        l->n += n;
}

static void add_named(struct test_list *l, char *name, CMUnitTestFunction fn, void *state) {
        assert_int_equal(strv_consume(&l->names, name), 0);
        const struct CMUnitTest t = {.name = name, .test_func = fn, .initial_state = state};
        test_list_add(l, &t, 1);
}

static void fail_too_few(void **state) {
        fail_msg("%s", (const char *)*state);
}

void test_list_add_files(struct test_list *l, const char *prefix, char *const *files,
                         CMUnitTestFunction fn, size_t at_least) {
        size_t n = 0;
        for (; files && files[n]; n++) {
                char *name = NULL;
                assert_true(asprintf(&name, "%s %s", prefix, test_base_name(files[n])) > 0);
                add_named(l, name, fn, files[n]);
        }
        if (n < at_least) {
                char *msg = NULL;
                assert_true(asprintf(&msg, "%s: %zu fixtures, expected at least %zu", prefix, n,
                                     at_least) > 0);
                add_named(l, msg, fail_too_few, msg);
        }
}

int test_list_run(struct test_list *l, const char *group) {
        int r = _cmocka_run_group_tests(group, l->tests, l->n, NULL, NULL);
        free(l->tests);
        strv_free(l->names);
        *l = (struct test_list)TEST_LIST_INIT;
        return r;
}

char **test_filter_base_prefix(char *const *files, const char *prefix, bool keep) {
        size_t n = 0;
        for (; files && files[n]; n++)
                ;
        char **out = calloc(n + 1, sizeof(*out));
        assert_non_null(out);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if ((strncmp(test_base_name(files[i]), prefix, strlen(prefix)) == 0) == keep)
                        out[k++] = files[i];
        return out;
}

char *test_sibling(const char *path, const char *ext) {
        const char *dot = strrchr(test_base_name(path), '.');
        size_t keep = dot ? (size_t)(dot - path) : strlen(path);
        char *p = NULL;
        assert_true(asprintf(&p, "%.*s%s", (int)keep, path, ext) > 0);
        return p;
}

char *test_read_first_line(const char *path) {
        if (access(path, F_OK) < 0)
                return NULL;
        char *s = test_read_file(path, NULL);
        s[strcspn(s, "\n")] = '\0';
        return s;
}

const char *test_base_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

void test_free_n(char **a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                free(a[i]);
        free(a);
}
