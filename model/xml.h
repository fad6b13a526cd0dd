/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Safe XML reading for desired files (libxml2): size limit, no network, no DTD,
 * no entity substitution; element and attribute helpers that report lines.
 * Parsers use these so that every error names the file's line. */
#pragma once

#include <libxml/tree.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define DV_XML_MAX_SIZE (1024 * 1024)
#define DV_POLICY_NS    "https://declvirt.dev/xmlns/policy/1"

/* Parses data (at most DV_XML_MAX_SIZE bytes). Refuses DTDs, entity declarations
 * and references, and text that is not UTF-8. Errors go to err with libxml2's line. */
int dv_xml_parse(const char *data, size_t len, xmlDoc **ret, struct dv_error *err);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDoc *, xmlFreeDoc)
#define _cleanup_xml_doc_ _cleanup_(xmlFreeDocp)

int dv_xml_line(const xmlNode *n);
/* Element children only. */
xmlNode *dv_xml_first_child(const xmlNode *n);
xmlNode *dv_xml_next(const xmlNode *n);
#define dv_xml_foreach_child(c, parent) \
        for (xmlNode *c = dv_xml_first_child(parent); c; c = dv_xml_next(c))
/* True when n is an element called name in no namespace. */
bool dv_xml_is(const xmlNode *n, const char *name);
/* True when n is the declvirt policy element (any prefix). */
bool dv_xml_is_policy(const xmlNode *n);
/* First element child called name (no namespace), or NULL. */
xmlNode *dv_xml_child(const xmlNode *n, const char *name);
/* Number of element children called name. */
size_t dv_xml_count(const xmlNode *n, const char *name);

/* Attribute as a new string (NULL when absent); *ret untouched when absent.
 * -ENOMEM only. */
int dv_xml_prop(const xmlNode *n, const char *name, char **ret);
/* Element text, whitespace-trimmed, as a new string. */
int dv_xml_text(const xmlNode *n, char **ret);

/* Checks that every attribute of n is in the NULL-terminated list `allowed`;
 * otherwise adds "unknown attribute 'x' on <n>" and returns -EINVAL. */
int dv_xml_check_attrs(const xmlNode *n, const char *const *allowed, struct dv_error *err);

/* Reads a scaled size element such as <capacity unit='G'>10</capacity>.
 * default_unit applies when the element has no unit attribute (libvirt: bytes for
 * storage, KiB for memory). */
int dv_xml_scaled(const xmlNode *n, const char *default_unit, uint64_t *ret, struct dv_error *err);
/* Reads a yes/no (or on/off) attribute into *ret (1/0); absent leaves *ret untouched. */
int dv_xml_prop_yes_no(const xmlNode *n, const char *name, int *ret, struct dv_error *err);
/* Reads an unsigned decimal attribute with a range; absent leaves *ret untouched,
 * and returns 0 (1 when present). */
int dv_xml_prop_u64(const xmlNode *n, const char *name, uint64_t min, uint64_t max, uint64_t *ret,
                    struct dv_error *err);
/* An attribute that must be present. */
int dv_xml_prop_required(const xmlNode *n, const char *name, char **ret, struct dv_error *err);

/* ---- helpers shared by every parser in model/ ------------------------------------------ */

/* The element's name with its namespace prefix when it has one ("p:policy"), for messages. */
const char *dv_xml_qname(const xmlNode *n, char *buf, size_t size);
#define DV_XML_QNAME(n) dv_xml_qname((n), (char[160]){0}, 160)
/* True when n is an element in no namespace whose name is in the NULL-terminated list. */
bool dv_xml_name_in(const xmlNode *n, const char *const *list);
/* True when s is in the NULL-terminated list (false for s NULL). */
bool dv_str_in(const char *const *list, const char *s);
/* Element text as it is, untrimmed (command lines, arguments), as a new string. */
int dv_xml_text_raw(const xmlNode *n, char **ret);

/* Reports "unknown element <c> in <parent>" and returns -EINVAL. */
int dv_xml_unknown(const xmlNode *c, const xmlNode *parent, struct dv_error *err);
/* For elements that may appear once: remembers n in *slot, or reports the second one
 * ("more than one <n> in <parent> (the first is on line N)"). */
int dv_xml_once(const void **slot, const xmlNode *n, const xmlNode *parent, struct dv_error *err);
/* An element with only the attributes in `attrs` and no element children. */
int dv_xml_check_empty(const xmlNode *n, const char *const *attrs, struct dv_error *err);
/* The trimmed text of an element that takes no attributes and no child elements
 * (*ret is set even when it has some, so callers do not also report it missing). */
int dv_xml_leaf_text(const xmlNode *n, char **ret, struct dv_error *err);
/* A <capacity>-style element: unit attribute only, no child elements, libvirt units,
 * default_unit when it has no unit attribute. */
int dv_xml_scaled_leaf(const xmlNode *n, const char *default_unit, uint64_t *ret,
                       struct dv_error *err);
/* Reports "<n> needs the attribute 'name'" and returns -EINVAL. */
int dv_xml_missing_attr(const xmlNode *n, const char *name, struct dv_error *err);
/* dv_xml_prop_u64 for an attribute that must be present: 0 when read, else < 0. */
int dv_xml_prop_u64_required(const xmlNode *n, const char *name, uint64_t min, uint64_t max,
                             uint64_t *ret, struct dv_error *err);
