/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Growable buffer and XML writer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static bool buf_grow(struct buf *b, size_t extra) {
        if (b->oom)
                return false;
        if (b->len + extra + 1 <= b->cap)
                return true;
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + extra + 1) {
                if (cap > SIZE_MAX / 2) {
                        b->oom = true;
                        return false;
                }
                cap *= 2;
        }
        char *s = realloc(b->s, cap);
        if (!s) {
                b->oom = true;
                return false;
        }
        b->s = s;
        b->cap = cap;
        return true;
}

void buf_putn(struct buf *b, const char *s, size_t n) {
        if (!buf_grow(b, n))
                return;
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s) {
        if (s)
                buf_putn(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c) {
        buf_putn(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if (!buf_grow(b, (size_t)n))
                return;
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        buf_vprintf(b, fmt, ap);
        va_end(ap);
}

void buf_escape_xml(struct buf *b, const char *s) {
        if (!s)
                return;
        for (const char *p = s; *p; p++) {
                switch (*p) {
                case '<':
                        buf_puts(b, "&lt;");
                        break;
                case '>':
                        buf_puts(b, "&gt;");
                        break;
                case '&':
                        buf_puts(b, "&amp;");
                        break;
                case '\'':
                        buf_puts(b, "&apos;");
                        break;
                case '"':
                        buf_puts(b, "&quot;");
                        break;
                case '\n':
                        buf_puts(b, "&#10;");
                        break;
                case '\r':
                        buf_puts(b, "&#13;");
                        break;
                case '\t':
                        buf_puts(b, "&#9;");
                        break;
                default:
                        /* Control characters are not representable in XML 1.0. */
                        if ((unsigned char)*p < 0x20)
                                buf_printf(b, "\\x%02x", (unsigned char)*p);
                        else
                                buf_putc(b, *p);
                }
        }
}

void buf_reset(struct buf *b) {
        b->len = 0;
        if (b->s)
                b->s[0] = '\0';
        b->indent = 0;
        b->in_tag = false;
}

char *buf_steal(struct buf *b) {
        if (b->oom) {
                buf_free(b);
                return NULL;
        }
        char *s = b->s ? b->s : strdup("");
        *b = (struct buf)BUF_INIT;
        return s;
}

void buf_free(struct buf *b) {
        free(b->s);
        *b = (struct buf)BUF_INIT;
}

static void buf_indent(struct buf *b) {
        for (int i = 0; i < b->indent; i++)
                buf_puts(b, "  ");
}

void xml_open(struct buf *b, const char *name) {
        buf_indent(b);
        buf_putc(b, '<');
        buf_puts(b, name);
        b->in_tag = true;
}

void xml_attr(struct buf *b, const char *name, const char *value) {
        if (!value)
                return;
        buf_putc(b, ' ');
        buf_puts(b, name);
        buf_puts(b, "='");
        buf_escape_xml(b, value);
        buf_putc(b, '\'');
}

void xml_attrf(struct buf *b, const char *name, const char *fmt, ...) {
        char *v = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&v, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        xml_attr(b, name, v);
        free(v);
}

void xml_attr_u64(struct buf *b, const char *name, uint64_t v) {
        xml_attrf(b, name, "%" PRIu64, v);
}

void xml_open_end(struct buf *b) {
        buf_puts(b, ">\n");
        b->in_tag = false;
        b->indent++;
}

void xml_empty_end(struct buf *b) {
        buf_puts(b, "/>\n");
        b->in_tag = false;
}

void xml_close(struct buf *b, const char *name) {
        if (b->indent > 0)
                b->indent--;
        buf_indent(b);
        buf_puts(b, "</");
        buf_puts(b, name);
        buf_puts(b, ">\n");
}

void xml_text_end(struct buf *b, const char *name, const char *text) {
        buf_putc(b, '>');
        buf_escape_xml(b, text);
        buf_puts(b, "</");
        buf_puts(b, name);
        buf_puts(b, ">\n");
        b->in_tag = false;
}

void xml_text_elem(struct buf *b, const char *name, const char *text) {
        if (!text)
                return;
        xml_open(b, name);
        xml_text_end(b, name, text);
}

void xml_text_elemf(struct buf *b, const char *name, const char *fmt, ...) {
        char *v = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&v, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        xml_text_elem(b, name, v);
        free(v);
}

void xml_bytes_elem(struct buf *b, const char *name, uint64_t v) {
        xml_open(b, name);
        xml_attr(b, "unit", "bytes");
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, v);
        xml_text_end(b, name, num);
}
