/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A growable string buffer and the indent-aware XML writer that all XML output
 * goes through (libvirt's virBuffer in spirit). Allocation failure is sticky:
 * the buffer records it and buf_steal() returns NULL. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

struct buf {
        char *s;
        size_t len, cap;
        int indent; /* XML nesting depth; two spaces each */
        bool oom;
        bool in_tag; /* an element start tag is open: attributes may follow */
};

#define BUF_INIT \
        { 0 }

void buf_puts(struct buf *b, const char *s);
void buf_putn(struct buf *b, const char *s, size_t n);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* Appends s escaped for XML text and single-quoted attribute values. */
void buf_escape_xml(struct buf *b, const char *s);
void buf_reset(struct buf *b);
/* Returns the string (never NULL unless out of memory) and empties b. */
char *buf_steal(struct buf *b) _warn_unused_result_;
void buf_free(struct buf *b);
static inline const char *buf_str(const struct buf *b) {
        return b->s ? b->s : "";
}
static inline void buf_freep(struct buf *b) {
        buf_free(b);
}
#define _cleanup_buf_ _cleanup_(buf_freep)

/* XML writer, libvirt's conventions: two-space indent, single-quoted attributes.
 *   xml_open(b, "pool"); xml_attr(b, "type", "dir"); xml_open_end(b);
 *     xml_text_elem(b, "name", "p1");
 *   xml_close(b, "pool");
 * or xml_open(...); xml_attr(...); xml_empty_end(b) for <x a='1'/>. */
void xml_open(struct buf *b, const char *name);
void xml_attr(struct buf *b, const char *name, const char *value); /* value NULL: skipped */
void xml_attrf(struct buf *b, const char *name, const char *fmt, ...) _printf_(3, 4);
void xml_attr_u64(struct buf *b, const char *name, uint64_t v);
void xml_open_end(struct buf *b);                /* ">\n", indent++ */
void xml_empty_end(struct buf *b);               /* "/>\n" */
void xml_close(struct buf *b, const char *name); /* indent--, "</name>\n" */
/* <name>escaped text</name>; text NULL: nothing written */
void xml_text_elem(struct buf *b, const char *name, const char *text);
void xml_text_elemf(struct buf *b, const char *name, const char *fmt, ...) _printf_(3, 4);
/* <name unit='bytes'>v</name> */
void xml_bytes_elem(struct buf *b, const char *name, uint64_t v);
/* An open element with text: xml_open + attrs, then xml_text_end(b, name, text). */
void xml_text_end(struct buf *b, const char *name, const char *text);
