/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The error object: problems with lines, plus command context. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"

int dv_error_addv(struct dv_error *err, int r, int line, const char *fmt, va_list ap) {
        if (r >= 0)
                r = -EINVAL;
        if (!err)
                return r;
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                return r;
        struct dv_problem *p = realloc(err->problems, (err->n_problems + 1) * sizeof(*p));
        if (!p) {
                free(msg);
                return r;
        }
        err->problems = p;
        p[err->n_problems++] = (struct dv_problem){.line = line, .msg = msg};
        if (err->code == 0)
                err->code = r;
        return r;
}

int dv_error_add(struct dv_error *err, int r, int line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        r = dv_error_addv(err, r, line, fmt, ap);
        va_end(ap);
        return r;
}

int dv_error_oom(struct dv_error *err) {
        return dv_error_add(err, -ENOMEM, 0, "out of memory");
}

void dv_error_warn(struct dv_error *err, int line, const char *fmt, ...) {
        if (!err)
                return;
        char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        struct dv_problem *p = realloc(err->warnings, (err->n_warnings + 1) * sizeof(*p));
        if (!p) {
                free(msg);
                return;
        }
        err->warnings = p;
        p[err->n_warnings++] = (struct dv_problem){.line = line, .msg = msg};
}

static int replace_str(char **dst, const char *src) {
        char *c = NULL;
        if (src) {
                c = strdup(src);
                if (!c)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = c;
        return 0;
}

int dv_error_set_file(struct dv_error *err, const char *file) {
        return err ? replace_str(&err->file, file) : 0;
}

int dv_error_set_command(struct dv_error *err, const char *argv, const char *stderr_tail) {
        if (!err)
                return 0;
        int r = replace_str(&err->argv, argv);
        if (r < 0)
                return r;
        return replace_str(&err->stderr_tail, stderr_tail);
}

const char *dv_error_message(const struct dv_error *err) {
        return err && err->n_problems > 0 ? err->problems[0].msg : NULL;
}

int dv_error_line(const struct dv_error *err) {
        return err && err->n_problems > 0 ? err->problems[0].line : 0;
}

char *dv_error_format(const struct dv_error *err, size_t i) {
        if (!err || i >= err->n_problems)
                return NULL;
        struct buf b = BUF_INIT;
        if (err->file) {
                buf_puts(&b, err->file);
                if (err->problems[i].line > 0)
                        buf_printf(&b, ":%d", err->problems[i].line);
                buf_puts(&b, ": ");
        } else if (err->problems[i].line > 0)
                buf_printf(&b, "line %d: ", err->problems[i].line);
        buf_puts(&b, err->problems[i].msg);
        return buf_steal(&b);
}

char *dv_error_summary(const struct dv_error *err) {
        return dv_error_format(err, 0);
}

void dv_error_print(FILE *f, const struct dv_error *err) {
        for (size_t i = 0; err && i < err->n_problems; i++) {
                _cleanup_free_ char *s = dv_error_format(err, i);
                if (s)
                        fprintf(f, "%s\n", s);
        }
        for (size_t i = 0; err && i < err->n_warnings; i++) {
                const struct dv_problem *w = &err->warnings[i];
                if (err->file && w->line > 0)
                        fprintf(f, "%s:%d: warning: %s\n", err->file, w->line, w->msg);
                else if (err->file)
                        fprintf(f, "%s: warning: %s\n", err->file, w->msg);
                else
                        fprintf(f, "warning: %s\n", w->msg);
        }
}

void dv_error_clear(struct dv_error *err) {
        if (!err)
                return;
        for (size_t i = 0; i < err->n_problems; i++)
                free(err->problems[i].msg);
        free(err->problems);
        for (size_t i = 0; i < err->n_warnings; i++)
                free(err->warnings[i].msg);
        free(err->warnings);
        free(err->file);
        free(err->argv);
        free(err->stderr_tail);
        *err = (struct dv_error)DV_ERROR_INIT;
}

void dv_error_move(struct dv_error *dst, struct dv_error *src) {
        dv_error_clear(dst);
        *dst = *src;
        *src = (struct dv_error)DV_ERROR_INIT;
}
