/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Safe XML reading and element helpers. */
#include <ctype.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <string.h>

#include "model/xml.h"
#include "util/parse.h"

struct collector {
        struct dv_error *err;
        int n;
};

static void collect_error(void *userdata, xmlErrorPtr e) {
        struct collector *c = userdata;
        if (!e || c->n++ > 0) /* the first error is the one that explains */
                return;
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "malformed XML");
        msg[strcspn(msg, "\n")] = '\0'; /* libxml2 adds detail lines ("Bytes: 0x..") */
        size_t l = strlen(msg);
        while (l > 0 && msg[l - 1] == ' ')
                msg[--l] = '\0';
        if (e->domain == XML_FROM_IO || e->code == XML_ERR_INVALID_CHAR ||
            e->code == XML_ERR_INVALID_ENCODING)
                dv_error_add(c->err, -EINVAL, e->line, "not valid UTF-8 XML: %s", msg);
        else
                dv_error_add(c->err, -EINVAL, e->line, "malformed XML: %s", msg);
}

static void ignore_generic(void *ctx, const char *msg, ...) {
        (void)ctx;
        (void)msg;
}

static bool has_doctype(const char *data, size_t len) {
        /* Checked before parsing so that no entity declaration is ever processed. */
        return memmem(data, len, "<!DOCTYPE", 9) || memmem(data, len, "<!ENTITY", 8);
}

static int first_line_of(const char *data, size_t len, const char *needle) {
        const char *p = memmem(data, len, needle, strlen(needle));
        int line = 1;
        for (const char *q = data; p && q < p; q++)
                if (*q == '\n')
                        line++;
        return line;
}

int dv_xml_parse(const char *data, size_t len, xmlDoc **ret, struct dv_error *err) {
        if (len > DV_XML_MAX_SIZE)
                return dv_error_add(err, -EFBIG, 0, "file is larger than %d bytes",
                                    DV_XML_MAX_SIZE);
        if (len == 0)
                return dv_error_add(err, -EINVAL, 0, "file is empty");
        if (memchr(data, '\0', len))
                return dv_error_add(err, -EINVAL, first_line_of(data, len, ""),
                                    "file contains a NUL byte: not a text file");
        if (has_doctype(data, len)) {
                const char *what = memmem(data, len, "<!DOCTYPE", 9) ? "<!DOCTYPE" : "<!ENTITY";
                return dv_error_add(err, -EINVAL, first_line_of(data, len, what),
                                    "DTDs and entity declarations are not allowed");
        }

        struct collector c = {.err = err};
        xmlSetStructuredErrorFunc(&c, collect_error);
        xmlSetGenericErrorFunc(NULL, ignore_generic);
        /* No XML_PARSE_NOENT (no entity substitution), no DTDLOAD, no network, no HUGE. */
        xmlDoc *doc = xmlReadMemory(data, (int)len, "desired.xml", "UTF-8",
                                    XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES);
        xmlSetStructuredErrorFunc(NULL, NULL);
        xmlSetGenericErrorFunc(NULL, NULL);
        if (!doc || c.n > 0) {
                if (doc)
                        xmlFreeDoc(doc);
                if (c.n == 0)
                        dv_error_add(err, -EINVAL, 0, "malformed XML");
                return err && err->code ? err->code : -EINVAL;
        }
        if (doc->intSubset || doc->extSubset) {
                xmlFreeDoc(doc);
                return dv_error_add(err, -EINVAL, 1, "DTDs are not allowed");
        }
        if (!xmlDocGetRootElement(doc)) {
                xmlFreeDoc(doc);
                return dv_error_add(err, -EINVAL, 0, "no root element");
        }
        *ret = doc;
        return 0;
}

int dv_xml_line(const xmlNode *n) {
        return n ? (int)xmlGetLineNo((xmlNode *)n) : 0;
}

static xmlNode *skip_to_element(xmlNode *n) {
        while (n && n->type != XML_ELEMENT_NODE)
                n = n->next;
        return n;
}

xmlNode *dv_xml_first_child(const xmlNode *n) {
        return n ? skip_to_element(n->children) : NULL;
}
xmlNode *dv_xml_next(const xmlNode *n) {
        return n ? skip_to_element(n->next) : NULL;
}

bool dv_xml_is(const xmlNode *n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && !n->ns && xmlStrEqual(n->name, BAD_CAST name);
}

bool dv_xml_is_policy(const xmlNode *n) {
        return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
               xmlStrEqual(n->ns->href, BAD_CAST DV_POLICY_NS) &&
               xmlStrEqual(n->name, BAD_CAST "policy");
}

xmlNode *dv_xml_child(const xmlNode *n, const char *name) {
        dv_xml_foreach_child(c, n) if (dv_xml_is(c, name)) return c;
        return NULL;
}

size_t dv_xml_count(const xmlNode *n, const char *name) {
        size_t k = 0;
        dv_xml_foreach_child(c, n) if (dv_xml_is(c, name)) k++;
        return k;
}

int dv_xml_prop(const xmlNode *n, const char *name, char **ret) {
        xmlChar *v = xmlGetNoNsProp(n, BAD_CAST name);
        if (!v)
                return 0;
        char *s = strdup((const char *)v);
        xmlFree(v);
        if (!s)
                return -ENOMEM;
        free(*ret);
        *ret = s;
        return 1;
}

int dv_xml_text(const xmlNode *n, char **ret) {
        xmlChar *v = xmlNodeGetContent(n);
        const char *s = v ? (const char *)v : "";
        while (isspace((unsigned char)*s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char)s[l - 1]))
                l--;
        char *c = strndup(s, l);
        xmlFree(v);
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 0;
}

int dv_xml_check_attrs(const xmlNode *n, const char *const *allowed, struct dv_error *err) {
        int r = 0;
        for (xmlAttr *a = n->properties; a; a = a->next) {
                if (a->ns) /* attributes in other namespaces (xmlns:, ours) are not libvirt's */
                        continue;
                if (!dv_str_in(allowed, (const char *)a->name))
                        r = dv_error_add(err, -EINVAL, dv_xml_line(n),
                                         "unknown attribute '%s' on <%s>", (const char *)a->name,
                                         (const char *)n->name);
        }
        return r;
}

int dv_xml_scaled(const xmlNode *n, const char *default_unit, uint64_t *ret, struct dv_error *err) {
        _cleanup_free_ char *unit = NULL, *text = NULL;
        if (dv_xml_prop(n, "unit", &unit) < 0 || dv_xml_text(n, &text) < 0)
                return -ENOMEM;
        if (text[0] == '-')
                return dv_error_add(err, -ERANGE, dv_xml_line(n), "<%s>: negative size '%s'",
                                    (const char *)n->name, text);
        int r = parse_scaled(text, unit ? unit : default_unit, ret);
        if (r == -ERANGE)
                return dv_error_add(err, r, dv_xml_line(n),
                                    "<%s>: size '%s %s' is too large (over 2^64 bytes)",
                                    (const char *)n->name, text, unit ? unit : default_unit);
        if (r < 0 && unit && unit_multiplier(unit) == 0)
                return dv_error_add(err, r, dv_xml_line(n), "<%s>: unknown unit '%s'",
                                    (const char *)n->name, unit);
        if (r < 0)
                return dv_error_add(err, r, dv_xml_line(n), "<%s>: '%s' is not a number",
                                    (const char *)n->name, text);
        return 0;
}

int dv_xml_prop_yes_no(const xmlNode *n, const char *name, int *ret, struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, name, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        if (streq(v, "yes") || streq(v, "on"))
                *ret = 1;
        else if (streq(v, "no") || streq(v, "off"))
                *ret = 0;
        else
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "<%s %s='%s'>: expected 'yes' or 'no'", (const char *)n->name,
                                    name, v);
        return 1;
}

int dv_xml_prop_u64(const xmlNode *n, const char *name, uint64_t min, uint64_t max, uint64_t *ret,
                    struct dv_error *err) {
        _cleanup_free_ char *v = NULL;
        if (dv_xml_prop(n, name, &v) < 0)
                return -ENOMEM;
        if (!v)
                return 0;
        int r = parse_u64_range(v, min, max, ret);
        if (r == -ERANGE)
                return dv_error_add(err, r, dv_xml_line(n), "<%s %s='%s'>: out of range %llu..%llu",
                                    (const char *)n->name, name, v, (unsigned long long)min,
                                    (unsigned long long)max);
        if (r < 0)
                return dv_error_add(err, r, dv_xml_line(n), "<%s %s='%s'>: not an unsigned number",
                                    (const char *)n->name, name, v);
        return 1;
}

int dv_xml_missing_attr(const xmlNode *n, const char *name, struct dv_error *err) {
        return dv_error_add(err, -EINVAL, dv_xml_line(n), "<%s> needs the attribute '%s'",
                            (const char *)n->name, name);
}

int dv_xml_prop_required(const xmlNode *n, const char *name, char **ret, struct dv_error *err) {
        int r = dv_xml_prop(n, name, ret);
        if (r < 0)
                return r;
        if (r == 0)
                return dv_xml_missing_attr(n, name, err);
        return 0;
}

int dv_xml_prop_u64_required(const xmlNode *n, const char *name, uint64_t min, uint64_t max,
                             uint64_t *ret, struct dv_error *err) {
        int r = dv_xml_prop_u64(n, name, min, max, ret, err);
        if (r == 0)
                return dv_xml_missing_attr(n, name, err);
        return r < 0 ? r : 0;
}

const char *dv_xml_qname(const xmlNode *n, char *buf, size_t size) {
        if (n->ns && n->ns->prefix)
                snprintf(buf, size, "%s:%s", (const char *)n->ns->prefix, (const char *)n->name);
        else
                snprintf(buf, size, "%s", (const char *)n->name);
        return buf;
}

bool dv_str_in(const char *const *list, const char *s) {
        for (size_t i = 0; s && list && list[i]; i++)
                if (streq(list[i], s))
                        return true;
        return false;
}

bool dv_xml_name_in(const xmlNode *n, const char *const *list) {
        return n && n->type == XML_ELEMENT_NODE && !n->ns && dv_str_in(list, (const char *)n->name);
}

int dv_xml_text_raw(const xmlNode *n, char **ret) {
        xmlChar *v = xmlNodeGetContent(n);
        char *s = strdup(v ? (const char *)v : "");
        xmlFree(v);
        if (!s)
                return -ENOMEM;
        free(*ret);
        *ret = s;
        return 0;
}

int dv_xml_unknown(const xmlNode *c, const xmlNode *parent, struct dv_error *err) {
        return dv_error_add(err, -EINVAL, dv_xml_line(c), "unknown element <%s> in <%s>",
                            DV_XML_QNAME(c), (const char *)parent->name);
}

int dv_xml_once(const void **slot, const xmlNode *n, const xmlNode *parent, struct dv_error *err) {
        if (*slot)
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "more than one <%s> in <%s> (the first is on line %d)",
                                    (const char *)n->name, (const char *)parent->name,
                                    dv_xml_line(*slot));
        *slot = n;
        return 0;
}

int dv_xml_check_empty(const xmlNode *n, const char *const *attrs, struct dv_error *err) {
        int r = dv_xml_check_attrs(n, attrs, err);
        dv_xml_foreach_child(c, n) r = dv_xml_unknown(c, n, err);
        return r;
}

int dv_xml_leaf_text(const xmlNode *n, char **ret, struct dv_error *err) {
        int r = dv_xml_check_empty(n, NULL, err);
        /* The text is kept even after an error, so that callers do not also report
         * the value as missing. */
        if (dv_xml_text(n, ret) < 0)
                return -ENOMEM;
        return r;
}

int dv_xml_scaled_leaf(const xmlNode *n, const char *default_unit, uint64_t *ret,
                       struct dv_error *err) {
        static const char *const attrs[] = {"unit", NULL};
        int r = dv_xml_check_empty(n, attrs, err);
        if (r < 0)
                return r;
        return dv_xml_scaled(n, default_unit, ret, err);
}
