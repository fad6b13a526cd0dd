/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* String vectors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/strv.h"

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

void strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}

int strv_consume(char ***l, char *s) {
        if (!s)
                return -ENOMEM;
        size_t n = strv_length(*l);
        char **c = realloc(*l, (n + 2) * sizeof(char *));
        if (!c) {
                free(s);
                return -ENOMEM;
        }
        c[n] = s;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_push(char ***l, const char *s) {
        return strv_consume(l, strdup(s));
}

int strv_pushf(char ***l, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        return strv_consume(l, s);
}

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

char **strv_copy(char *const *l) {
        char **c = calloc(strv_length(l) + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; l && l[i]; i++) {
                c[i] = strdup(l[i]);
                if (!c[i]) {
                        strv_free(c);
                        return NULL;
                }
        }
        return c;
}

char *strv_join(char *const *l, const char *sep, bool quote) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; l && l[i]; i++) {
                if (i > 0)
                        buf_puts(&b, sep);
                if (quote && (l[i][0] == '\0' || strpbrk(l[i], " \t\n'\"\\$`"))) {
                        buf_putc(&b, '\'');
                        for (const char *p = l[i]; *p; p++) {
                                if (*p == '\'')
                                        buf_puts(&b, "'\\''");
                                else
                                        buf_putc(&b, *p);
                        }
                        buf_putc(&b, '\'');
                } else
                        buf_puts(&b, l[i]);
        }
        return buf_steal(&b);
}

char *strdupf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}
