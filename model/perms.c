/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <permissions> of pool and volume targets (mode, owner, group, label), parsed and
 * formatted the way libvirt's storage_conf does. */
#include <errno.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "model/perms.h"
#include "model/pool.h"
#include "model/xml.h"
#include "util/parse.h"

/* libvirt writes -1 for "leave as it is"; (uid_t)-1 itself is no valid id. */
static int parse_id(const xmlNode *n, const char *text, bool *has, uint32_t *ret,
                    struct dv_error *err) {
        uint64_t v;
        if (streq(text, "-1")) {
                *has = false;
                return 0;
        }
        if (parse_u64_range(text, 0, UINT32_MAX - 1, &v) < 0)
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "<%s> '%s' is not a numeric id (0 to 4294967294, or -1)",
                                    (const char *)n->name, text);
        *has = true;
        *ret = (uint32_t)v;
        return 0;
}

int dv_perms_parse(const void *node, struct dv_perms *ret, struct dv_error *err) {
        const xmlNode *n = node;
        struct dv_perms p = {0};
        const void *seen_mode = NULL, *seen_owner = NULL, *seen_group = NULL, *seen_label = NULL;
        int r = dv_xml_check_attrs(n, NULL, err), k;

        dv_xml_foreach_child(c, n) {
                _cleanup_free_ char *text = NULL;
                const void **slot = dv_xml_is(c, "mode")    ? &seen_mode
                                    : dv_xml_is(c, "owner") ? &seen_owner
                                    : dv_xml_is(c, "group") ? &seen_group
                                    : dv_xml_is(c, "label") ? &seen_label
                                                            : NULL;
                if (!slot) {
                        r = dv_xml_unknown(c, n, err);
                        continue;
                }
                if (dv_xml_once(slot, c, n, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                k = dv_xml_leaf_text(c, &text, err);
                if (k == -ENOMEM) {
                        dv_perms_done(&p);
                        return k;
                }
                if (k < 0) {
                        r = k;
                        continue;
                }
                if (slot == &seen_mode) {
                        if (parse_mode(text, &p.mode) < 0)
                                r = dv_error_add(
                                        err, -EINVAL, dv_xml_line(c),
                                        "<mode> '%s' is not an octal file mode (0 to 07777)", text);
                        else
                                p.has_mode = true;
                } else if (slot == &seen_owner) {
                        if (parse_id(c, text, &p.has_owner, &p.owner, err) < 0)
                                r = -EINVAL;
                } else if (slot == &seen_group) {
                        if (parse_id(c, text, &p.has_group, &p.group, err) < 0)
                                r = -EINVAL;
                } else {
                        p.label = TAKE_PTR(text);
                }
        }
        if (r < 0) {
                dv_perms_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

void dv_perms_format(struct buf *b, const struct dv_perms *p) {
        if (!p || (!p->has_mode && !p->has_owner && !p->has_group && !p->label))
                return;
        xml_open(b, "permissions");
        xml_open_end(b);
        /* libvirt prints "0%o": 0711 -> "0711". */
        if (p->has_mode)
                xml_text_elemf(b, "mode", "0%o", p->mode);
        if (p->has_owner)
                xml_text_elemf(b, "owner", "%u", (unsigned)p->owner);
        if (p->has_group)
                xml_text_elemf(b, "group", "%u", (unsigned)p->group);
        xml_text_elem(b, "label", p->label);
        xml_close(b, "permissions");
}

void dv_perms_done(struct dv_perms *p) {
        if (!p)
                return;
        free(p->label);
        p->label = NULL;
}

bool dv_perms_equal(const struct dv_perms *a, const struct dv_perms *b) {
        if (a->has_mode != b->has_mode || (a->has_mode && a->mode != b->mode))
                return false;
        if (a->has_owner != b->has_owner || (a->has_owner && a->owner != b->owner))
                return false;
        if (a->has_group != b->has_group || (a->has_group && a->group != b->group))
                return false;
        return streq_ptr(a->label, b->label);
}
