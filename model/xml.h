/* Safe XML reading for desired files (libxml2): size limit, no network, no DTD,
 * no entity substitution; element and attribute helpers that report lines.
 * Parsers use these so that every error names the file's line. */
#pragma once

#include <libxml/tree.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define DV_XML_MAX_SIZE (1024 * 1024)
#define DV_POLICY_NS "https://declvirt.dev/xmlns/policy/1"

/* Parses data (at most DV_XML_MAX_SIZE bytes). Refuses DTDs, entity declarations
 * and references, and text that is not UTF-8. Errors go to err with libxml2's line. */
int dv_xml_parse(const char *data, size_t len, xmlDoc **ret, struct dv_error *err);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDoc *, xmlFreeDoc)
#define _cleanup_xml_doc_ _cleanup_(xmlFreeDocp)

int dv_xml_line(const xmlNode *n);
/* Element children only. */
xmlNode *dv_xml_first_child(const xmlNode *n);
xmlNode *dv_xml_next(const xmlNode *n);
#define dv_xml_foreach_child(c, parent)                                                            \
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
