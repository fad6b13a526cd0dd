/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Last-applied records as JSON. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile/applied.h"
#include "util/hash.h"
#include "util/macro.h"
#include "util/strv.h"

char *applied_relpath(enum dv_kind kind, const char *pool, const char *name) {
        char *s = NULL;
        int n = kind == DV_KIND_VOLUME
                        ? asprintf(&s, "applied/volume@%s@%s.json", strempty(pool), name)
                        : asprintf(&s, "applied/%s@%s.json", dv_kind_to_string(kind), name);
        if (n < 0)
                return NULL;
        if (strlen(s) - strlen("applied/") > 250) {
                /* Too long for a file name: the record holds the name, the file a hash of it. */
                char h[HASH_HEX_LEN + 1];
                hash_hex(name, strlen(name), h);
                free(s);
                if (asprintf(&s, "applied/volume@%s@#%s.json", strempty(pool), h) < 0)
                        return NULL;
        }
        return s;
}

static void add_str(json_object *o, const char *k, const char *v) {
        if (v)
                json_object_object_add(o, k, json_object_new_string(v));
}

char *applied_to_json(const struct applied *a) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        add_str(o, "kind", dv_kind_to_string(a->kind));
        add_str(o, "name", a->name);
        add_str(o, "pool", a->pool);
        add_str(o, "file", a->file);
        add_str(o, "hash", a->hash);
        add_str(o, "uuid", a->uuid);
        add_str(o, "mac", a->mac);
        if (a->macs) {
                json_object *l = json_object_new_array();
                for (char **m = a->macs; l && *m; m++)
                        json_object_array_add(l, json_object_new_string(*m));
                if (l)
                        json_object_object_add(o, "macs", l);
        }
        json_object_object_add(o, "created", json_object_new_boolean(a->created));
        json_object_object_add(o, "active", json_object_new_boolean(a->active));
        add_str(o, "boot_id", a->boot_id);
        if (a->uid)
                json_object_object_add(o, "uid", json_object_new_int64(a->uid));
        if (a->id_base)
                json_object_object_add(o, "id_base", json_object_new_int64(a->id_base));
        add_str(o, "xml", a->xml);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        char *r = s ? strdup(s) : NULL;
        json_object_put(o);
        if (r) { /* end with a newline, as text files should */
                size_t l = strlen(r);
                char *n = realloc(r, l + 2);
                if (n) {
                        n[l] = '\n';
                        n[l + 1] = '\0';
                        r = n;
                }
        }
        return r;
}

static int get_str(json_object *o, const char *k, char **ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static bool get_bool(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

void applied_free(struct applied *a) {
        if (!a)
                return;
        free(a->name);
        free(a->pool);
        free(a->file);
        free(a->hash);
        free(a->xml);
        free(a->uuid);
        free(a->mac);
        strv_free(a->macs);
        free(a->boot_id);
        dv_object_free(a->obj);
        free(a);
}

int applied_from_json(const char *data, size_t len, struct applied **ret, struct dv_error *err) {
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_object *o = json_tokener_parse_ex(tok, data, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return dv_error_add(err, -EINVAL, 0, "not a valid JSON record: %s",
                                    json_tokener_error_desc(jerr));
        }
        _cleanup_(applied_freep) struct applied *a = calloc(1, sizeof(*a));
        _cleanup_free_ char *kind = NULL;
        int r = -ENOMEM;
        if (a && get_str(o, "kind", &kind) >= 0 && get_str(o, "name", &a->name) >= 0 &&
            get_str(o, "pool", &a->pool) >= 0 && get_str(o, "file", &a->file) >= 0 &&
            get_str(o, "hash", &a->hash) >= 0 && get_str(o, "uuid", &a->uuid) >= 0 &&
            get_str(o, "mac", &a->mac) >= 0 && get_str(o, "boot_id", &a->boot_id) >= 0 &&
            get_str(o, "xml", &a->xml) >= 0)
                r = 0;
        json_object *macs;
        if (a && r == 0 && json_object_object_get_ex(o, "macs", &macs)) {
                if (!json_object_is_type(macs, json_type_array))
                        r = -EINVAL;
                for (size_t i = 0; r == 0 && i < json_object_array_length(macs); i++) {
                        json_object *m = json_object_array_get_idx(macs, i);
                        if (!json_object_is_type(m, json_type_string) ||
                            strv_push(&a->macs, json_object_get_string(m)) < 0)
                                r = -EINVAL;
                }
        }
        if (a) {
                a->created = get_bool(o, "created");
                a->active = get_bool(o, "active");
        }
        json_object *uid;
        if (a && r == 0 && json_object_object_get_ex(o, "uid", &uid)) {
                /* Never 0 nor (uid_t)-1: a record naming root would run QEMU as root. */
                int64_t v = json_object_get_int64(uid);
                if (!json_object_is_type(uid, json_type_int) || v <= 0 || v >= UINT32_MAX)
                        r = -EINVAL;
                else
                        a->uid = (uint32_t)v;
        }
        json_object *base;
        if (a && r == 0 && json_object_object_get_ex(o, "id_base", &base)) {
                /* Never 0: the container's root would be the host's. */
                int64_t v = json_object_get_int64(base);
                if (!json_object_is_type(base, json_type_int) || v <= 0 ||
                    v > (int64_t)UINT32_MAX - 65536)
                        r = -EINVAL;
                else
                        a->id_base = (uint32_t)v;
        }
        json_object_put(o);
        if (r < 0)
                return dv_error_add(err, r, 0, "record has fields of the wrong type");
        int k = dv_kind_from_string(kind);
        if (k < 0 || !a->name || !a->xml)
                return dv_error_add(err, -EINVAL, 0, "record lacks kind, name or definition");
        a->kind = k;
        _cleanup_dv_error_ struct dv_error perr = DV_ERROR_INIT;
        r = dv_object_parse(a->xml, strlen(a->xml), NULL, &a->obj, &perr);
        if (r < 0) {
                dv_error_add(err, r, 0, "recorded definition does not parse: %s",
                             strempty(dv_error_message(&perr)));
                return r;
        }
        if (a->obj->kind != a->kind || !streq(a->obj->name, a->name) ||
            !streq_ptr(a->obj->pool, a->pool))
                return dv_error_add(err, -EINVAL, 0, "recorded definition is for another object");
        *ret = TAKE_PTR(a);
        return 0;
}

int applied_new_from(const struct dv_object *o, const char *file, struct applied **ret) {
        _cleanup_(applied_freep) struct applied *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->kind = o->kind;
        a->name = strdup(o->name);
        a->pool = o->pool ? strdup(o->pool) : NULL;
        a->file = file ? strdup(file) : NULL;
        a->hash = strdup(o->hash);
        a->xml = dv_object_format(o);
        if (!a->name || (o->pool && !a->pool) || (file && !a->file) || !a->hash || !a->xml)
                return -ENOMEM;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int r = dv_object_parse(a->xml, strlen(a->xml), NULL, &a->obj, &err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}
