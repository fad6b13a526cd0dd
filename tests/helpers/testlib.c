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

const char *test_base_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

void test_free_n(char **a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                free(a[i]);
        free(a);
}
