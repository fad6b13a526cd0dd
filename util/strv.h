/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NULL-terminated string vectors (argv and lists). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

size_t strv_length(char *const *l);
void strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)
/* Appends a copy of s; -ENOMEM on failure (l unchanged). */
int strv_push(char ***l, const char *s) _warn_unused_result_;
/* Appends s, taking ownership (freed on failure). */
int strv_consume(char ***l, char *s) _warn_unused_result_;
int strv_pushf(char ***l, const char *fmt, ...) _printf_(2, 3) _warn_unused_result_;
/* A formatted string (asprintf that returns it); NULL on failure. */
char *strdupf(const char *fmt, ...) _printf_(1, 2) _warn_unused_result_;
bool strv_contains(char *const *l, const char *s);
char **strv_copy(char *const *l) _warn_unused_result_;
/* Joins with sep; argv-style quoting of elements with spaces when quote is true. */
char *strv_join(char *const *l, const char *sep, bool quote) _warn_unused_result_;
