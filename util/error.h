/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The error object that carries a person-readable reason up the stack: a file,
 * one or more problems with line numbers, and for commands the argv and stderr tail. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "util/macro.h"

struct dv_problem {
        int line; /* 0 when unknown */
        char *msg;
};

struct dv_error {
        char *file; /* what the problems are in, or NULL */
        struct dv_problem *problems;
        size_t n_problems;
        int code;                    /* negative errno of the first problem */
        char *argv;                  /* for command failures: the command line */
        char *stderr_tail;           /* for command failures: last bytes of stderr */
        struct dv_problem *warnings; /* things accepted but ignored, for example */
        size_t n_warnings;
};

#define DV_ERROR_INIT \
        { 0 }

/* Adds a problem and returns r (a negative errno), so callers can write
 * `return dv_error_add(err, -EINVAL, line, "...")`. err may be NULL. */
int dv_error_add(struct dv_error *err, int r, int line, const char *fmt, ...) _printf_(4, 5);
int dv_error_addv(struct dv_error *err, int r, int line, const char *fmt, va_list ap)
        _printf_(4, 0);
/* The one out-of-memory path: adds "out of memory" and returns -ENOMEM. */
int dv_error_oom(struct dv_error *err);
/* Records a warning; never changes the outcome. */
void dv_error_warn(struct dv_error *err, int line, const char *fmt, ...) _printf_(3, 4);
/* These add context to problems already there: when they fail (-ENOMEM) the problems
 * are still reported, only without it, so callers need not check. */
int dv_error_set_file(struct dv_error *err, const char *file);
int dv_error_set_command(struct dv_error *err, const char *argv, const char *stderr_tail);

static inline int dv_error_failed(const struct dv_error *err) {
        return err && err->n_problems > 0;
}
const char *dv_error_message(const struct dv_error *err); /* first problem, or NULL */
int dv_error_line(const struct dv_error *err);            /* line of the first problem */

/* "file:line: message" (or fewer parts when not known) for problem i; caller frees. */
char *dv_error_format(const struct dv_error *err, size_t i) _warn_unused_result_;
/* One line summary of the first problem, with file and line; caller frees. */
char *dv_error_summary(const struct dv_error *err) _warn_unused_result_;
/* Prints every problem, then every warning ("file:line: warning: ..."). */
void dv_error_print(FILE *f, const struct dv_error *err);

void dv_error_clear(struct dv_error *err);
#define _cleanup_dv_error_ _cleanup_(dv_error_clear)
/* Moves src into dst (dst is cleared first); src is left empty. */
void dv_error_move(struct dv_error *dst, struct dv_error *src);

/* The one way to keep the first error: *r takes q when q is the first failure, or
 * -ENOMEM (after which problems may be missing, so it wins over any other). */
static inline void dv_keep_error(int *r, int q) {
        if (q < 0 && (*r >= 0 || q == -ENOMEM))
                *r = q;
}

/* Runs expr (an int: 0 or -errno) and keeps the first error in r, so that a checker
 * reports every problem and still returns the first one's errno. */
#define KEEP(r, expr) dv_keep_error(&(r), (expr))
