/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers for the cmocka unit tests. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/object.h"

/* Reads a whole file (aborts the test on failure); caller frees. */
char *test_read_file(const char *path, size_t *len);
/* Sorted list of the files in dir whose names end with suffix; NULL-terminated. */
char **test_list_dir(const char *dir, const char *suffix);
/* Makes a temporary directory under /tmp; caller frees the path. */
char *test_mkdtemp(const char *prefix);
/* rm -rf, for test clean-up only. */
void test_rm_rf(const char *path);
/* True when the program is on PATH. */
bool test_have_program(const char *name);
/* Parses a desired file that must be valid and of this kind (fails the test otherwise). */
struct dv_object *test_load_object(const char *path, enum dv_kind kind);
/* Parses XML text that must be valid (fails the test otherwise, printing it). */
struct dv_object *test_parse_string_ok(const char *data, const char *what);
/* A model fixture directory: every NAME.xml that is not itself a NAME.golden.xml. */
char **test_list_fixtures(const char *dir);
/* "NAME.xml" -> "NAME.golden.xml"; caller frees. */
char *test_golden_path(const char *fixture);
/* Compares actual with the golden file at path (fails the test with both texts); with
 * DECLVIRT_UPDATE_GOLDEN set in the environment, rewrites the golden file instead. This
 * is the only place that reads or writes golden files. */
void test_check_golden_text(const char *path, const char *actual);
/* The same for an argv: one argument per line, each line ending in a newline. */
void test_check_golden_argv(const char *path, char *const *argv);

/* The round trip of a model fixture: NAME.xml parses as kind and formats to
 * NAME.golden.xml; that output parses again to the same name, the same text and the same
 * definition. Returns the object parsed from NAME.xml for the caller's own checks. */
struct dv_object *test_check_model_golden(const char *path, enum dv_kind kind);
/* virt-xml-validate (libvirt's RNG schema, e.g. "storagepool", "network", "domain") on
 * xml, which was formatted from the file at what; fails naming what, with the validator's
 * output and the XML. Skips the test when virt-xml-validate is not installed. */
void test_check_schema(const char *what, const char *xml, const char *schema);
/* The desired file at path is refused with the first line of its NAME.err file
 * ("LINE: MESSAGE", the first problem reported); fails naming the file otherwise. */
void test_check_refused_file(const char *path);

/* A cmocka test list built at run time, so that every fixture file is a test of its own
 * and a failure names its fixture:
 *
 *     struct test_list l = TEST_LIST_INIT;
 *     test_list_add(&l, tests, ELEMENTSOF(tests));
 *     test_list_add_files(&l, "golden", files, test_one_golden, 6);
 *     return test_list_run(&l, "test-qemu-argv");
 */
struct test_list {
        struct CMUnitTest *tests;
        size_t n;
        char **names; /* the names built for file tests, freed by test_list_run */
};
#define TEST_LIST_INIT \
        { 0 }
void test_list_add(struct test_list *l, const struct CMUnitTest *tests, size_t n);
/* One test per file, named "PREFIX FILE-BASE-NAME", called with the file's path as *state.
 * Fewer than at_least files adds one failing test that says so, so that a fixture
 * directory that went missing cannot pass by testing nothing. */
void test_list_add_files(struct test_list *l, const char *prefix, char *const *files,
                         CMUnitTestFunction fn, size_t at_least);
/* Runs every test of the list as one group and frees the list. */
int test_list_run(struct test_list *l, const char *group);
/* The entries of files (a NULL-terminated list) whose base name starts (keep) or does not
 * start (!keep) with prefix; the strings are shared with files: free only the array. */
char **test_filter_base_prefix(char *const *files, const char *prefix, bool keep);
/* path with its extension (from the last '.' of the base name) replaced by ext, e.g.
 * ("a/b.xml", ".err") -> "a/b.err"; caller frees. */
char *test_sibling(const char *path, const char *ext);
/* The first line of the file at path without its newline, or NULL when there is no such
 * file; caller frees. */
char *test_read_first_line(const char *path);
/* The part of path after its last '/'. */
const char *test_base_name(const char *path);
/* Frees the first n entries of an array that may have holes, then the array. */
void test_free_n(char **a, size_t n);
