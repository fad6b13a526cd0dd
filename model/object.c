/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Desired objects: one file, one root element; dispatch to the kind modules. */
#include <errno.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <string.h>

#include "model/domain.h"
#include "model/network.h"
#include "model/object.h"
#include "model/pool.h"
#include "model/volume.h"
#include "model/xml.h"
#include "util/fs.h"

char *dv_object_id_make(enum dv_kind kind, const char *pool, const char *name) {
        char *s = NULL;
        int n = kind == DV_KIND_VOLUME ? asprintf(&s, "volume/%s/%s", strempty(pool), name)
                                       : asprintf(&s, "%s/%s", dv_kind_to_string(kind), name);
        return n < 0 ? NULL : s;
}

char *dv_object_id(const struct dv_object *o) {
        return dv_object_id_make(o->kind, o->pool, o->name);
}

struct dv_object *dv_object_ref(struct dv_object *o) {
        if (o)
                __atomic_add_fetch(&o->n_ref, 1, __ATOMIC_RELAXED);
        return o;
}

void dv_object_free(struct dv_object *o) {
        if (!o)
                return;
        if (__atomic_sub_fetch(&o->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        switch (o->kind) {
        case DV_KIND_POOL:
                pool_def_free(o->def.pool);
                break;
        case DV_KIND_VOLUME:
                volume_def_free(o->def.volume);
                break;
        case DV_KIND_NETWORK:
                network_def_free(o->def.network);
                break;
        case DV_KIND_DOMAIN:
                domain_def_free(o->def.domain);
                break;
        default:
                break;
        }
        dv_policy_done(&o->policy);
        free(o->name);
        free(o->pool);
        free(o);
}

static int kind_of_root(const xmlNode *root, enum dv_kind *ret, struct dv_error *err) {
        for (int k = 0; k < _DV_KIND_MAX; k++)
                if (dv_xml_is(root, dv_kind_to_string(k))) {
                        *ret = k;
                        return 0;
                }
        return dv_error_add(err, -EINVAL, dv_xml_line(root),
                            "root element <%s> is not one of <pool>, <volume>, <network>, <domain>",
                            (const char *)root->name);
}

int dv_object_parse(const char *data, size_t len, const char *filename, struct dv_object **ret,
                    struct dv_error *err) {
        _cleanup_xml_doc_ xmlDoc *doc = NULL;
        _cleanup_(dv_object_freep) struct dv_object *o = NULL;
        int r;

        if (filename)
                dv_error_set_file(err, filename);
        r = dv_xml_parse(data, len, &doc, err);
        if (r < 0)
                return r;
        xmlNode *root = xmlDocGetRootElement(doc);
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->line = dv_xml_line(root);
        o->n_ref = 1;
        o->policy.autostart = -1;
        r = kind_of_root(root, &o->kind, err);
        if (r < 0) {
                o->kind = _DV_KIND_MAX;
                return r;
        }
        /* Policy errors and definition errors are both reported, so that validate
         * shows every problem at once. */
        int rp = dv_policy_parse(root, o->kind, &o->policy, err);
        const char *name = NULL;
        switch (o->kind) {
        case DV_KIND_POOL:
                r = pool_def_parse(root, &o->def.pool, err);
                name = r >= 0 ? o->def.pool->name : NULL;
                break;
        case DV_KIND_VOLUME:
                r = volume_def_parse(root, &o->def.volume, err);
                name = r >= 0 ? o->def.volume->name : NULL;
                break;
        case DV_KIND_NETWORK:
                r = network_def_parse(root, &o->def.network, err);
                name = r >= 0 ? network_def_name(o->def.network) : NULL;
                break;
        case DV_KIND_DOMAIN:
                r = domain_def_parse(root, &o->def.domain, err);
                name = r >= 0 ? domain_def_name(o->def.domain) : NULL;
                break;
        default:
                r = -EINVAL;
        }
        if (rp < 0)
                return rp;
        if (r < 0)
                return r;
        o->name = strdup(name);
        if (!o->name)
                return -ENOMEM;
        if (o->policy.pool) {
                o->pool = strdup(o->policy.pool);
                if (!o->pool)
                        return -ENOMEM;
        }
        hash_hex(data, len, o->hash);
        *ret = TAKE_PTR(o);
        return 0;
}

int dv_object_parse_file(const char *path, struct dv_object **ret, struct dv_error *err) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        dv_error_set_file(err, path);
        int r = read_full_file(path, DV_XML_MAX_SIZE, &data, &len);
        if (r == -EFBIG)
                return dv_error_add(err, r, 0, "file is larger than %d bytes", DV_XML_MAX_SIZE);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read: %s", strerror(-r));
        return dv_object_parse(data, len, path, ret, err);
}

static char *format_object(const struct dv_object *o, bool with_policy) {
        struct buf b = BUF_INIT;
        const struct dv_policy *p = with_policy ? &o->policy : NULL;
        switch (o->kind) {
        case DV_KIND_POOL:
                pool_def_format(&b, o->def.pool, p);
                break;
        case DV_KIND_VOLUME:
                volume_def_format(&b, o->def.volume, p);
                break;
        case DV_KIND_NETWORK:
                network_def_format(&b, o->def.network, p);
                break;
        case DV_KIND_DOMAIN:
                domain_def_format(&b, o->def.domain, p);
                break;
        default:
                break;
        }
        return buf_steal(&b);
}

char *dv_object_format(const struct dv_object *o) {
        return format_object(o, true);
}
char *dv_object_format_def(const struct dv_object *o) {
        return format_object(o, false);
}
