/* Shared helpers for the cmocka unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
 * DECLVIRT_UPDATE_GOLDEN set in the environment, rewrites the golden file instead. */
void test_check_golden_text(const char *path, const char *actual);
/* The part of path after its last '/'. */
const char *test_base_name(const char *path);
/* Frees the first n entries of an array that may have holes, then the array. */
void test_free_n(char **a, size_t n);
