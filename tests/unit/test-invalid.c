/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every file under tests/data/invalid is refused with the message its .err file
 * gives ("LINE: MESSAGE", the first problem reported). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/object.h"
#include "model/xml.h"
#include "tests/helpers/testlib.h"
#include "util/strv.h"

#define DIR "tests/data/invalid"

static void check_refused(const char *path, const char *expected) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        int r = dv_object_parse_file(path, &o, &err);
        if (r >= 0) {
                dv_object_free(o);
                fail_msg("%s was accepted", path);
        }
        assert_null(o);
        assert_true(dv_error_failed(&err));
        char actual[1024];
        snprintf(actual, sizeof(actual), "%d: %s", dv_error_line(&err), dv_error_message(&err));
        if (!expected || strcmp(actual, expected) != 0) {
                print_message("%s\n  expected: %s\n  actual:   %s\n", path,
                              expected ? expected : "(no .err file)", actual);
                dv_error_clear(&err);
                fail();
        }
        /* The file name is in every formatted message. */
        char *s = dv_error_summary(&err);
        assert_non_null(strstr(s, path));
        free(s);
        dv_error_clear(&err);
}

/* One invalid file: refused with the first line of NAME.err, naming the file. */
static void test_invalid_file(void **state) {
        test_check_refused_file(*state);
}

/* Too large to keep in the repository: made here. */
static void test_file_over_one_mib(void **state) {
        (void)state;
        char *dir = test_mkdtemp("dv-invalid");
        char path[4096];
        snprintf(path, sizeof(path), "%s/big.xml", dir);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs("<pool type='dir'>\n<name>big</name>\n<!--", f);
        for (int i = 0; i < DV_XML_MAX_SIZE / 64 + 1; i++)
                fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
        fputs("-->\n</pool>\n", f);
        fclose(f);
        check_refused(path, "0: file is larger than 1048576 bytes");
        test_rm_rf(dir);
        free(dir);
}

/* A missing file names itself. */
static void test_missing_file(void **state) {
        (void)state;
        check_refused("tests/data/invalid/does-not-exist.xml",
                      "0: cannot read: No such file or directory");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_over_one_mib),
                cmocka_unit_test(test_missing_file),
        };
        _cleanup_strv_free_ char **files = test_list_dir(DIR, ".xml");
        struct test_list l = TEST_LIST_INIT;
        /* At least 40 hostile or malformed files. */
        test_list_add_files(&l, "invalid", files, test_invalid_file, 40);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-invalid");
}
