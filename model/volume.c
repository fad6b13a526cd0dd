/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage volume definitions: parse, validate and format libvirt's <volume> XML.
 * The pool a volume belongs to comes from the policy element (model/policy.c). */
#include <errno.h>
#include <inttypes.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "model/pool.h"
#include "model/volume.h"
#include "model/xml.h"
#include "util/parse.h"

static const char *const volume_types[] = {"file", "block", "dir", "network", "netdir", NULL};

/* libvirt's volume formats: file formats (detected when listing; raw and qcow2 are
 * the ones created), then partition formats of disk pools. */
static const char *const file_formats[] = {
        "raw", "dir",   "bochs", "cloop", "dmg",   "iso", "vpc",  "vdi",  "fat",
        "vhd", "ploop", "cow",   "qcow",  "qcow2", "qed", "vmdk", "luks", NULL,
};
static const char *const partition_formats[] = {
        "none",      "linux",      "fat16",    "fat32", "linux-swap",
        "linux-lvm", "linux-raid", "extended", NULL,
};

/* libvirt <target> children that declvirt does not implement: refused, never ignored. */
static const char *const unsupported_target_elems[] = {
        "encryption", "compat", "clusterSize", "features", "nocow", NULL,
};

static void join_list(struct buf *b, const char *const *list) {
        for (size_t i = 0; list[i]; i++) {
                if (i > 0)
                        buf_puts(b, ", ");
                buf_puts(b, list[i]);
        }
}

static int check_name(const char *name, int line, struct dv_error *err) {
        const char *why = dv_name_problem(DV_KIND_VOLUME, name);
        return why ? dv_error_add(err, -EINVAL, line, "invalid volume name '%s': %s", name, why)
                   : 0;
}

static int check_path(const char *what, const char *path, int line, struct dv_error *err) {
        const char *why = pool_path_problem(path);
        return why ? dv_error_add(err, -EINVAL, line, "%s path '%s' %s", what, strempty(path), why)
                   : 0;
}

static int check_type(const char *type, int line, struct dv_error *err) {
        if (dv_str_in(volume_types, type))
                return 0;
        return dv_error_add(err, -EINVAL, line,
                            "<volume type='%s'>: expected file, block, dir, network or netdir",
                            type);
}

static int check_format(const char *format, bool backing, int line, struct dv_error *err) {
        if (dv_str_in(file_formats, format) || (!backing && dv_str_in(partition_formats, format)))
                return 0;
        _cleanup_buf_ struct buf b = BUF_INIT;
        join_list(&b, file_formats);
        if (!backing) {
                buf_puts(&b, "; partitions: ");
                join_list(&b, partition_formats);
        }
        return dv_error_add(err, -EINVAL, line, "unknown %svolume format '%s'; expected one of: %s",
                            backing ? "backing store " : "", format, buf_str(&b));
}

/* Lines of the elements that rules refer to (0: not parsed from XML). */
struct lines {
        int allocation, backing;
        bool capacity_seen; /* a <capacity> that failed to parse is not "missing" too */
};

static int check_rules(const struct volume_def *def, const struct lines *l, struct dv_error *err) {
        int r = 0;
        if (!def->name)
                r = dv_error_add(err, -EINVAL, def->line, "<volume> needs a <name>");
        /* Desired volumes are created: the size is what the user must say. */
        if (!def->has_capacity && !l->capacity_seen)
                r = dv_error_add(err, -EINVAL, def->line, "<volume> needs a <capacity>");
        if (def->has_capacity && def->has_allocation && def->allocation > def->capacity)
                r = dv_error_add(err, -EINVAL, l->allocation ? l->allocation : def->line,
                                 "allocation (%" PRIu64 " bytes) is larger than capacity (%" PRIu64
                                 " bytes)",
                                 def->allocation, def->capacity);
        if (def->has_backing && !def->backing.path)
                r = dv_error_add(err, -EINVAL, l->backing ? l->backing : def->line,
                                 "<backingStore> needs a <path>");
        return r;
}

int volume_def_validate(const struct volume_def *def, struct dv_error *err) {
        const struct lines none = {0};
        int r = 0, k;
        if (def->name && check_name(def->name, def->line, err) < 0)
                r = -EINVAL;
        if (def->type && check_type(def->type, def->line, err) < 0)
                r = -EINVAL;
        if (def->target.path && check_path("volume target", def->target.path, def->line, err) < 0)
                r = -EINVAL;
        if (def->target.format && check_format(def->target.format, false, def->line, err) < 0)
                r = -EINVAL;
        if (def->target.perms.has_mode && def->target.perms.mode > 07777)
                r = dv_error_add(err, -EINVAL, def->line,
                                 "<mode> '0%o' is not an octal file mode (0 to 07777)",
                                 def->target.perms.mode);
        if (def->has_backing && def->backing.path &&
            check_path("backing store", def->backing.path, def->line, err) < 0)
                r = -EINVAL;
        if (def->has_backing && def->backing.format &&
            check_format(def->backing.format, true, def->line, err) < 0)
                r = -EINVAL;
        k = check_rules(def, &none, err);
        return r < 0 ? r : k;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* <format type='...'/>: stored even when invalid so the caller reports only once. */
static int parse_format(const xmlNode *n, bool backing, char **ret, struct dv_error *err) {
        static const char *const attrs[] = {"type", NULL};
        int r = dv_xml_check_empty(n, attrs, err);
        int k = dv_xml_prop_required(n, "type", ret, err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return k;
        if (check_format(*ret, backing, dv_xml_line(n), err) < 0)
                return -EINVAL;
        return r;
}

/* <timestamps> are observed values (atime, btime, ctime, mtime): accepted so that
 * vol-dumpxml output parses, and dropped with a warning. */
static int parse_timestamps(const xmlNode *n, struct dv_error *err) {
        static const char *const names[] = {"atime", "btime", "ctime", "mtime", NULL};
        int r = dv_xml_check_attrs(n, NULL, err);
        dv_xml_foreach_child(c, n) {
                if (!c->ns && dv_str_in(names, (const char *)c->name))
                        r = dv_xml_check_empty(c, NULL, err) < 0 ? -EINVAL : r;
                else
                        r = dv_xml_unknown(c, n, err);
        }
        if (r >= 0)
                dv_error_warn(err, dv_xml_line(n), "<timestamps> are observed values; ignored");
        return r;
}

/* A volume's <source> lists the extents it occupies (observed, block pools). */
static int parse_observed_source(const xmlNode *n, struct dv_error *err) {
        static const char *const dev_attrs[] = {"path", NULL};
        static const char *const ext_attrs[] = {"start", "end", NULL};
        int r = dv_xml_check_attrs(n, NULL, err);
        dv_xml_foreach_child(d, n) {
                if (!dv_xml_is(d, "device")) {
                        r = dv_xml_unknown(d, n, err);
                        continue;
                }
                if (dv_xml_check_attrs(d, dev_attrs, err) < 0)
                        r = -EINVAL;
                dv_xml_foreach_child(e, d) {
                        if (!dv_xml_is(e, "extent"))
                                r = dv_xml_unknown(e, d, err);
                        else if (dv_xml_check_empty(e, ext_attrs, err) < 0)
                                r = -EINVAL;
                }
        }
        if (r >= 0 && dv_xml_first_child(n))
                dv_error_warn(err, dv_xml_line(n),
                              "<source> of a volume is an observed value; ignored");
        return r;
}

static int parse_target(struct volume_def *def, const xmlNode *t, struct dv_error *err) {
        const void *seen_path = NULL, *seen_format = NULL, *seen_perms = NULL, *seen_ts = NULL;
        int r = dv_xml_check_attrs(t, NULL, err), k;

        dv_xml_foreach_child(c, t) {
                const void **slot = dv_xml_is(c, "path")          ? &seen_path
                                    : dv_xml_is(c, "format")      ? &seen_format
                                    : dv_xml_is(c, "permissions") ? &seen_perms
                                    : dv_xml_is(c, "timestamps")  ? &seen_ts
                                                                  : NULL;
                if (!slot) {
                        if (!c->ns && dv_str_in(unsupported_target_elems, (const char *)c->name))
                                r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                                 "<%s> in <target> is not supported",
                                                 (const char *)c->name);
                        else
                                r = dv_xml_unknown(c, t, err);
                        continue;
                }
                if (dv_xml_once(slot, c, t, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                if (slot == &seen_path) {
                        k = dv_xml_leaf_text(c, &def->target.path, err);
                        if (k >= 0)
                                k = check_path("volume target", def->target.path, dv_xml_line(c),
                                               err);
                } else if (slot == &seen_format) {
                        k = parse_format(c, false, &def->target.format, err);
                } else if (slot == &seen_perms) {
                        k = dv_perms_parse(c, &def->target.perms, err);
                } else {
                        k = parse_timestamps(c, err);
                }
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
        }
        return r;
}

static int parse_backing(struct volume_def *def, const xmlNode *t, struct dv_error *err) {
        const void *seen_path = NULL, *seen_format = NULL, *seen_perms = NULL, *seen_ts = NULL;
        int r = dv_xml_check_attrs(t, NULL, err), k;

        def->has_backing = true;
        dv_xml_foreach_child(c, t) {
                const void **slot = dv_xml_is(c, "path")          ? &seen_path
                                    : dv_xml_is(c, "format")      ? &seen_format
                                    : dv_xml_is(c, "permissions") ? &seen_perms
                                    : dv_xml_is(c, "timestamps")  ? &seen_ts
                                                                  : NULL;
                if (!slot) {
                        r = dv_xml_unknown(c, t, err);
                        continue;
                }
                if (dv_xml_once(slot, c, t, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                if (slot == &seen_path) {
                        k = dv_xml_leaf_text(c, &def->backing.path, err);
                        if (k >= 0)
                                k = check_path("backing store", def->backing.path, dv_xml_line(c),
                                               err);
                } else if (slot == &seen_format) {
                        k = parse_format(c, true, &def->backing.format, err);
                } else if (slot == &seen_perms) {
                        /* The backing file's permissions are observed: checked, then dropped. */
                        struct dv_perms p = {0};
                        k = dv_perms_parse(c, &p, err);
                        dv_perms_done(&p);
                        if (k >= 0)
                                dv_error_warn(err, dv_xml_line(c),
                                              "<permissions> of a <backingStore> are observed "
                                              "values; ignored");
                } else {
                        k = parse_timestamps(c, err);
                }
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
        }
        return r;
}

int volume_def_parse(const void *root_node, struct volume_def **ret, struct dv_error *err) {
        static const char *const root_attrs[] = {"type", NULL};
        const xmlNode *root = root_node;
        _cleanup_(volume_def_freep) struct volume_def *def = NULL;
        const void *seen_name = NULL, *seen_key = NULL, *seen_source = NULL, *seen_cap = NULL,
                   *seen_alloc = NULL, *seen_phys = NULL, *seen_target = NULL, *seen_backing = NULL;
        struct lines lines = {0};
        int r, k;

        def = calloc(1, sizeof(*def));
        if (!def)
                return -ENOMEM;
        def->line = dv_xml_line(root);
        r = dv_xml_check_attrs(root, root_attrs, err);
        k = dv_xml_prop(root, "type", &def->type);
        if (k < 0)
                return k;
        if (def->type && check_type(def->type, def->line, err) < 0)
                r = -EINVAL;

        dv_xml_foreach_child(c, root) {
                const void **slot = dv_xml_is(c, "name")           ? &seen_name
                                    : dv_xml_is(c, "key")          ? &seen_key
                                    : dv_xml_is(c, "source")       ? &seen_source
                                    : dv_xml_is(c, "capacity")     ? &seen_cap
                                    : dv_xml_is(c, "allocation")   ? &seen_alloc
                                    : dv_xml_is(c, "physical")     ? &seen_phys
                                    : dv_xml_is(c, "target")       ? &seen_target
                                    : dv_xml_is(c, "backingStore") ? &seen_backing
                                                                   : NULL;
                if (dv_xml_is_policy(c)) /* parsed by model/policy.c */
                        continue;
                if (!slot) {
                        if (dv_xml_is(c, "metadata"))
                                r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                                 "<metadata> is not part of volume XML; the policy "
                                                 "element goes directly in <volume>");
                        else
                                r = dv_xml_unknown(c, root, err);
                        continue;
                }
                if (dv_xml_once(slot, c, root, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                if (slot == &seen_name) {
                        k = dv_xml_leaf_text(c, &def->name, err);
                        if (k >= 0)
                                k = check_name(def->name, dv_xml_line(c), err);
                } else if (slot == &seen_key) {
                        k = dv_xml_leaf_text(c, &def->key, err);
                } else if (slot == &seen_source) {
                        k = parse_observed_source(c, err);
                } else if (slot == &seen_cap) {
                        k = dv_xml_scaled_leaf(c, "bytes", &def->capacity, err);
                        def->has_capacity = k >= 0;
                } else if (slot == &seen_alloc) {
                        k = dv_xml_scaled_leaf(c, "bytes", &def->allocation, err);
                        def->has_allocation = k >= 0;
                        lines.allocation = dv_xml_line(c);
                } else if (slot == &seen_phys) {
                        k = dv_xml_scaled_leaf(c, "bytes", &def->physical, err);
                        def->has_physical = k >= 0;
                } else if (slot == &seen_target) {
                        k = parse_target(def, c, err);
                } else {
                        lines.backing = dv_xml_line(c);
                        k = parse_backing(def, c, err);
                }
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
        }
        lines.capacity_seen = seen_cap != NULL;
        k = check_rules(def, &lines, err);
        if (r < 0 || k < 0)
                return r < 0 ? r : k;
        *ret = TAKE_PTR(def);
        return 0;
}

/* ---- formatting ---------------------------------------------------------------------- */

static void format_target(struct buf *b, const char *elem, const char *path, const char *format,
                          const struct dv_perms *perms) {
        xml_open(b, elem);
        xml_open_end(b);
        xml_text_elem(b, "path", path);
        if (format) {
                xml_open(b, "format");
                xml_attr(b, "type", format);
                xml_empty_end(b);
        }
        dv_perms_format(b, perms);
        xml_close(b, elem);
}

void volume_def_format(struct buf *b, const struct volume_def *def,
                       const struct dv_policy *policy) {
        xml_open(b, "volume");
        xml_attr(b, "type", def->type);
        xml_open_end(b);
        xml_text_elem(b, "name", def->name);
        xml_text_elem(b, "key", def->key);
        if (def->has_capacity)
                xml_bytes_elem(b, "capacity", def->capacity);
        if (def->has_allocation)
                xml_bytes_elem(b, "allocation", def->allocation);
        if (def->has_physical)
                xml_bytes_elem(b, "physical", def->physical);
        /* Written even when empty: libvirt's schema requires <target>. */
        format_target(b, "target", def->target.path, def->target.format, &def->target.perms);
        if (def->has_backing)
                format_target(b, "backingStore", def->backing.path, def->backing.format, NULL);
        dv_policy_format(b, policy, DV_KIND_VOLUME);
        xml_close(b, "volume");
}

void volume_def_free(struct volume_def *def) {
        if (!def)
                return;
        free(def->name);
        free(def->type);
        free(def->key);
        free(def->target.path);
        free(def->target.format);
        dv_perms_done(&def->target.perms);
        free(def->backing.path);
        free(def->backing.format);
        free(def);
}

const char *volume_def_format_type(const struct volume_def *def) {
        return def && def->target.format ? def->target.format : "raw";
}
