/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pool definitions: parse, validate and format libvirt's <pool> XML for the
 * pool types declvirt supports (dir fs netfs logical disk iscsi iscsi-direct). */
#include <errno.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "model/pool.h"
#include "model/xml.h"
#include "util/hex.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/uuid.h"

DV_ENUM_IMPL(pool_type, _POOL_TYPE_MAX, "dir", "fs", "netfs", "logical", "disk", "iscsi",
             "iscsi-direct");

/* Every other type libvirt knows: refused by name so that the message says what is
 * wrong (a typo gets "unknown pool type"). */
static const char *const unsupported_types[] = {
        "scsi", "mpath", "rbd", "sheepdog", "gluster", "zfs", "vstorage", NULL,
};

/* libvirt's lists of pool formats. libvirt itself prints <format type='unknown'/> for a disk
 * pool whose label type was never written, so that spelling is accepted as well:
 * pool-dumpxml output must be accepted as it is. */
static const char *const fs_formats[] = {
        "auto", "ext2", "ext3", "ext4", "ufs",   "iso9660", "udf", "gfs",
        "gfs2", "vfat", "hfs+", "xfs",  "ocfs2", "vmfs",    NULL,
};
static const char *const netfs_formats[] = {"auto", "nfs", "cifs", "glusterfs", NULL};
static const char *const disk_formats[] = {
        "dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2", "unknown", NULL,
};
static const char *const logical_formats[] = {"auto", "lvm2", NULL};

/* Names of the POOL_SOURCE_* bits, in bit order. */
#define SOURCE_BITS 7
static const char *const source_elem_names[SOURCE_BITS] = {
        "host", "device", "dir", "name", "format", "initiator", "auth",
};

static const struct pool_type_info pool_types[_POOL_TYPE_MAX] = {
        [POOL_DIR] =
                {
                        .name = "dir",
                        .target = POOL_TARGET_REQUIRED,
                        .stateless = true,
                        .file_backed = true,
                },
        [POOL_FS] =
                {
                        .name = "fs",
                        .source_allowed = POOL_SOURCE_DEVICE | POOL_SOURCE_FORMAT,
                        .source_required = POOL_SOURCE_DEVICE,
                        .formats = fs_formats,
                        .target = POOL_TARGET_REQUIRED,
                        .file_backed = true,
                },
        [POOL_NETFS] =
                {
                        .name = "netfs",
                        .source_allowed = POOL_SOURCE_HOST | POOL_SOURCE_DIR | POOL_SOURCE_FORMAT,
                        .source_required = POOL_SOURCE_HOST | POOL_SOURCE_DIR,
                        .formats = netfs_formats,
                        .target = POOL_TARGET_REQUIRED,
                        .file_backed = true,
                },
        [POOL_LOGICAL] =
                {
                        .name = "logical",
                        .source_allowed =
                                POOL_SOURCE_NAME | POOL_SOURCE_DEVICE | POOL_SOURCE_FORMAT,
                        .formats = logical_formats,
                        .target = POOL_TARGET_VG,
                },
        [POOL_DISK] =
                {
                        .name = "disk",
                        .source_allowed = POOL_SOURCE_DEVICE | POOL_SOURCE_FORMAT,
                        .source_required = POOL_SOURCE_DEVICE,
                        .formats = disk_formats,
                        .target = POOL_TARGET_OPTIONAL,
                        .default_target = "/dev",
                        .stateless = true,
                },
        [POOL_ISCSI] =
                {
                        .name = "iscsi",
                        .source_allowed = POOL_SOURCE_HOST | POOL_SOURCE_DEVICE |
                                          POOL_SOURCE_INITIATOR | POOL_SOURCE_AUTH,
                        .source_required = POOL_SOURCE_HOST | POOL_SOURCE_DEVICE,
                        .device = POOL_DEVICE_ISCSI_NAME,
                        .target = POOL_TARGET_OPTIONAL,
                        .default_target = "/dev/disk/by-path",
                },
        [POOL_ISCSI_DIRECT] =
                {
                        .name = "iscsi-direct",
                        .source_allowed = POOL_SOURCE_HOST | POOL_SOURCE_DEVICE |
                                          POOL_SOURCE_INITIATOR | POOL_SOURCE_AUTH,
                        .source_required =
                                POOL_SOURCE_HOST | POOL_SOURCE_DEVICE | POOL_SOURCE_INITIATOR,
                        .device = POOL_DEVICE_IQN,
                        .target = POOL_TARGET_NONE,
                        .stateless = true,
                },
};

const struct pool_type_info *pool_type_info(enum pool_type type) {
        if ((int)type < 0 || type >= _POOL_TYPE_MAX || !pool_types[type].name)
                return NULL;
        return &pool_types[type];
}

/* libvirt <source> children that declvirt does not implement. */
static const char *const unsupported_source_elems[] = {"adapter", "vendor", "product", "protocol",
                                                       NULL};

bool pool_type_is_known_unsupported(const char *type) {
        return dv_str_in(unsupported_types, type);
}

/* ---- helpers shared with volume.c and perms.c ----------------------------------------- */

const char *pool_path_problem(const char *p) {
        if (!p || p[0] != '/')
                return "is not absolute";
        if (streq(p, "/"))
                return "may not be '/'";
        size_t len = strlen(p);
        if (len > 4095)
                return "is longer than 4095 bytes";
        for (const char *q = p; *q; q++)
                if ((unsigned char)*q < 0x20 || *q == 0x7f)
                        return "contains a control character";
        if (p[len - 1] == '/')
                return "is not normalised: it ends with '/'";
        /* Each component starts after a '/': paths are compared and prefix-matched
         * (storage_locations, the pool that holds a disk), so only one spelling. */
        for (const char *q = p; *q;) {
                const char *s = q + 1, *e = strchrnul(s, '/');
                size_t n = (size_t)(e - s);
                if (n == 0)
                        return "is not normalised: it contains '//'";
                if (n == 1 && s[0] == '.')
                        return "is not normalised: it has a '.' component";
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return "is not normalised: it has a '..' component";
                q = e;
        }
        return NULL;
}

/* ---- value checks: used by the parser with the element's line and by
 *      pool_def_validate with the closest line the definition knows -------------------- */

static int check_name(const char *name, int line, struct dv_error *err) {
        const char *why = dv_name_problem(DV_KIND_POOL, name);
        return why ? dv_error_add(err, -EINVAL, line, "invalid pool name '%s': %s", name, why) : 0;
}

static int check_path(const char *what, const char *path, int line, struct dv_error *err) {
        const char *why = pool_path_problem(path);
        return why ? dv_error_add(err, -EINVAL, line, "%s path '%s' %s", what, strempty(path), why)
                   : 0;
}

static char *join_list(const char *const *list) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; list[i]; i++) {
                if (i > 0)
                        buf_puts(&b, ", ");
                buf_puts(&b, list[i]);
        }
        return buf_steal(&b);
}

static int check_format(enum pool_type type, const char *format, int line, struct dv_error *err) {
        const char *const *list = pool_types[type].formats;
        if (dv_str_in(list, format))
                return 0;
        _cleanup_free_ char *allowed = list ? join_list(list) : NULL;
        return dv_error_add(err, -EINVAL, line,
                            "unknown format '%s' for pool type '%s'; expected one of: %s", format,
                            pool_type_to_string(type), strna(allowed));
}

static int check_host(const char *host, int line, struct dv_error *err) {
        size_t len = strlen(host);
        bool ok = len > 0 && len <= 253 && host[0] != '-';
        for (const char *p = host; ok && *p; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == ':';
        return ok ? 0
                  : dv_error_add(err, -EINVAL, line,
                                 "<host name='%s'>: not a host name or IP address", host);
}

/* iSCSI names (RFC 3720): iqn.YYYY-MM.reversed.domain[:identifier], and for the
 * open-iscsi pool also eui.<16 hex> and naa.<16 or 32 hex>. They end up in argv and
 * in libiscsi URLs, so no spaces or control characters either. */
static bool iscsi_name_ok(const char *s, bool iqn_only) {
        size_t len = strlen(s);
        if (len < 5 || len > 223)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                        return false;
        if (!iqn_only && (strncmp(s, "eui.", 4) == 0 || strncmp(s, "naa.", 4) == 0)) {
                size_t n = len - 4;
                if (n != 16 && !(n == 32 && s[0] == 'n'))
                        return false;
                for (const char *p = s + 4; *p; p++)
                        if (hex_digit(*p) < 0)
                                return false;
                return true;
        }
        /* iqn.YYYY-MM.domain */
        if (strncmp(s, "iqn.", 4) != 0 || len < 13)
                return false;
        const char *d = s + 4;
        for (int i = 0; i < 7; i++) {
                bool want_dash = i == 4;
                if (want_dash ? d[i] != '-' : !(d[i] >= '0' && d[i] <= '9'))
                        return false;
        }
        int month = (d[5] - '0') * 10 + (d[6] - '0');
        if (month < 1 || month > 12 || d[7] != '.')
                return false;
        const char *dom = d + 8, *end = strchrnul(dom, ':');
        if (end == dom)
                return false;
        for (const char *p = dom; p < end; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
                        return false;
        return *end != ':' || end[1] != '\0';
}

static int check_iscsi_name(const char *what, const char *s, bool iqn_only, int line,
                            struct dv_error *err) {
        if (iscsi_name_ok(s, iqn_only))
                return 0;
        return dv_error_add(
                err, -EINVAL, line,
                "%s '%s' is not an iSCSI qualified name such as iqn.2024-01.com.example:storage",
                what, s);
}

static int check_device(enum pool_type type, const char *path, int line, struct dv_error *err) {
        enum pool_device_kind kind = pool_types[type].device;
        if (kind != POOL_DEVICE_PATH)
                return check_iscsi_name("source device path", path, kind == POOL_DEVICE_IQN, line,
                                        err);
        return check_path("source device", path, line, err);
}

/* The VG name becomes an argv element of vgcreate/vgchange and a /dev path. */
static int check_vg_name(const char *name, int line, struct dv_error *err) {
        const char *why = dv_name_problem(DV_KIND_POOL, name);
        return why ? dv_error_add(err, -EINVAL, line,
                                  "invalid volume group name '%s' in <source><name>: %s", name, why)
                   : 0;
}

/* NFS exports are absolute paths; CIFS shares and gluster volumes are names. */
static int check_netfs_dir(const char *dir, const char *format, int line, struct dv_error *err) {
        bool nfs = !format || streq(format, "auto") || streq(format, "nfs");
        for (const char *p = dir; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return dv_error_add(err, -EINVAL, line,
                                            "source dir path contains a control character");
        if (!*dir)
                return dv_error_add(err, -EINVAL, line, "source dir path is empty");
        if (nfs && dir[0] != '/')
                return dv_error_add(err, -EINVAL, line,
                                    "source dir path '%s' of an NFS export is not absolute", dir);
        return 0;
}

static int check_uuid(const char *what, const char *uuid, int line, struct dv_error *err) {
        char canon[UUID_STRING_LEN + 1];
        if (uuid_canonical(uuid, canon) < 0)
                return dv_error_add(err, -EINVAL, line, "%s '%s' is not a UUID", what, uuid);
        return 0;
}

/* CHAP names end up in iscsiadm's argv and in libiscsi's settings. */
static bool has_control(const char *s) {
        for (; s && *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static int check_auth(const struct pool_auth *a, int line, struct dv_error *err) {
        int r = 0;
        if (has_control(a->username) || has_control(a->secret_usage))
                r = dv_error_add(err, -EINVAL, line,
                                 "<auth> values may not contain control characters");
        if (!streq_ptr(a->type, "chap"))
                r = dv_error_add(err, -EINVAL, line,
                                 "auth type '%s' is not supported; expected 'chap'",
                                 strna(a->type));
        if (!a->username || !*a->username)
                r = dv_error_add(err, -EINVAL, line, "<auth> needs a non-empty username");
        if (!a->secret_usage == !a->secret_uuid)
                r = dv_error_add(err, -EINVAL, line,
                                 "<secret> needs either usage='...' or uuid='...' (one of them)");
        if (a->secret_usage && !*a->secret_usage)
                r = dv_error_add(err, -EINVAL, line, "<secret usage=''> is empty");
        if (a->secret_uuid && check_uuid("<secret uuid>", a->secret_uuid, line, err) < 0)
                r = -EINVAL;
        return r;
}

/* ---- structural rules: what each type needs, what does not apply to it ---------------- */

static int check_rules(const struct pool_def *def, struct dv_error *err) {
        const char *t = pool_type_to_string(def->type);
        int sl = def->source_line ? def->source_line : def->line;
        int tl = def->target_line ? def->target_line : def->line;
        const struct pool_type_info *info = &pool_types[def->type];
        unsigned allowed = info->source_allowed, required = info->source_required;
        int r = 0;

        if (!def->name)
                r = dv_error_add(err, -EINVAL, def->line, "<pool> needs a <name>");

        /* A parsed definition never holds these (the parser refuses the element);
         * a definition built in code might. */
        unsigned set = (def->source.host_name ? POOL_SOURCE_HOST : 0) |
                       (def->source.n_devices ? POOL_SOURCE_DEVICE : 0) |
                       (def->source.dir ? POOL_SOURCE_DIR : 0) |
                       (def->source.name ? POOL_SOURCE_NAME : 0) |
                       (def->source.format ? POOL_SOURCE_FORMAT : 0) |
                       (def->source.initiator_iqn ? POOL_SOURCE_INITIATOR : 0) |
                       (def->source.has_auth ? POOL_SOURCE_AUTH : 0);
        for (int i = 0; i < SOURCE_BITS; i++)
                if ((set & ~allowed) & (1u << i))
                        r = dv_error_add(err, -EINVAL, sl,
                                         "<%s> in <source> does not apply to pool type '%s'",
                                         source_elem_names[i], t);
        const struct dv_perms *pp = &def->target.perms;
        if (info->target == POOL_TARGET_NONE &&
            (def->target.path || pp->has_mode || pp->has_owner || pp->has_group || pp->label))
                r = dv_error_add(err, -EINVAL, tl, "<target> does not apply to pool type '%s'", t);

        switch (info->target) {
        case POOL_TARGET_REQUIRED:
                if (!def->target.path)
                        r = dv_error_add(err, -EINVAL, tl,
                                         "pool type '%s' needs a <target> with a <path>", t);
                break;
        case POOL_TARGET_VG: {
                /* libvirt puts a logical pool at /dev/VG whatever the file says; saying
                 * something else is a mistake worth reporting, not ignoring. */
                const char *vg = pool_def_vg_name(def);
                if (def->target.path && vg &&
                    (strncmp(def->target.path, "/dev/", 5) != 0 ||
                     !streq(def->target.path + 5, vg)))
                        r = dv_error_add(err, -EINVAL, tl,
                                         "the target path of a logical pool is '/dev/%s' (its "
                                         "volume group), not '%s'",
                                         vg, def->target.path);
                break;
        }
        default:
                break;
        }

        if (required & POOL_SOURCE_DEVICE) {
                if (def->source.n_devices == 0)
                        r = dv_error_add(err, -EINVAL, sl,
                                         "pool type '%s' needs a <device path='...'> in <source>",
                                         t);
                else if (def->source.n_devices > 1)
                        r = dv_error_add(
                                err, -EINVAL, sl,
                                "pool type '%s' takes exactly one <device> in <source>, not %zu", t,
                                def->source.n_devices);
        }
        if ((required & POOL_SOURCE_HOST) && !def->source.host_name)
                r = dv_error_add(err, -EINVAL, sl,
                                 "pool type '%s' needs a <host name='...'> in <source>", t);
        if ((required & POOL_SOURCE_DIR) && !def->source.dir)
                r = dv_error_add(err, -EINVAL, sl,
                                 "pool type '%s' needs a <dir path='...'> in <source>", t);
        if ((required & POOL_SOURCE_INITIATOR) && !def->source.initiator_iqn)
                r = dv_error_add(err, -EINVAL, sl,
                                 "pool type '%s' needs <initiator><iqn name='...'/></initiator> "
                                 "in <source>",
                                 t);
        return r;
}

static int check_values(const struct pool_def *def, struct dv_error *err) {
        int sl = def->source_line ? def->source_line : def->line;
        int tl = def->target_line ? def->target_line : def->line;
        int r = 0;

        if ((unsigned)def->type >= _POOL_TYPE_MAX)
                return dv_error_add(err, -EINVAL, def->line, "unknown pool type %d",
                                    (int)def->type);
        if (def->name && check_name(def->name, def->line, err) < 0)
                r = -EINVAL;
        if (def->uuid && check_uuid("<uuid>", def->uuid, def->line, err) < 0)
                r = -EINVAL;
        for (size_t i = 0; i < def->source.n_devices; i++)
                if (check_device(def->type, def->source.devices[i].path, sl, err) < 0)
                        r = -EINVAL;
        if (def->source.host_name && check_host(def->source.host_name, sl, err) < 0)
                r = -EINVAL;
        if (def->source.has_port && def->source.port == 0)
                r = dv_error_add(err, -EINVAL, sl, "<host port='0'>: out of range 1..65535");
        if (def->source.dir && check_netfs_dir(def->source.dir, def->source.format, sl, err) < 0)
                r = -EINVAL;
        if (def->source.format && check_format(def->type, def->source.format, sl, err) < 0)
                r = -EINVAL;
        if (def->source.name && check_vg_name(def->source.name, sl, err) < 0)
                r = -EINVAL;
        if (def->source.initiator_iqn &&
            check_iscsi_name("initiator iqn", def->source.initiator_iqn, false, sl, err) < 0)
                r = -EINVAL;
        if (def->source.has_auth && check_auth(&def->source.auth, sl, err) < 0)
                r = -EINVAL;
        if (def->target.path && check_path("target", def->target.path, tl, err) < 0)
                r = -EINVAL;
        if (def->target.perms.has_mode && def->target.perms.mode > 07777)
                r = dv_error_add(err, -EINVAL, tl,
                                 "<mode> '0%o' is not an octal file mode (0 to 07777)",
                                 def->target.perms.mode);
        return r;
}

int pool_def_validate(const struct pool_def *def, struct dv_error *err) {
        int r = check_values(def, err);
        if (r < 0 && (unsigned)def->type >= _POOL_TYPE_MAX)
                return r;
        int k = check_rules(def, err);
        return r < 0 ? r : k;
}

/* ---- parsing ------------------------------------------------------------------------- */

static int parse_host(struct pool_def *def, const xmlNode *n, struct dv_error *err) {
        static const char *const attrs[] = {"name", "port", NULL};
        int r = dv_xml_check_empty(n, attrs, err), k;
        uint64_t port;
        k = dv_xml_prop_required(n, "name", &def->source.host_name, err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                r = k;
        else if (check_host(def->source.host_name, dv_xml_line(n), err) < 0)
                r = -EINVAL;
        k = dv_xml_prop_u64(n, "port", 1, 65535, &port, err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                r = k;
        else if (k > 0) {
                def->source.has_port = true;
                def->source.port = (uint16_t)port;
        }
        return r;
}

static int parse_device(struct pool_def *def, const xmlNode *n, struct dv_error *err) {
        static const char *const attrs[] = {"path", NULL};
        static const char *const extent_attrs[] = {"start", "end", NULL};
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ struct pool_extent *ext = NULL;
        size_t n_ext = 0;
        int r = dv_xml_check_attrs(n, attrs, err), k;

        k = dv_xml_prop_required(n, "path", &path, err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                r = k;
        else if (check_device(def->type, path, dv_xml_line(n), err) < 0)
                r = -EINVAL;

        /* Free extents are observed (disk pools); accepted so dump output parses. */
        dv_xml_foreach_child(c, n) {
                struct pool_extent e = {0};
                if (!dv_xml_is(c, "freeExtent")) {
                        r = dv_xml_unknown(c, n, err);
                        continue;
                }
                k = dv_xml_check_empty(c, extent_attrs, err);
                int ks = dv_xml_prop_u64_required(c, "start", 0, UINT64_MAX, &e.start, err);
                int ke = dv_xml_prop_u64_required(c, "end", 0, UINT64_MAX, &e.end, err);
                if (ks == -ENOMEM || ke == -ENOMEM)
                        return -ENOMEM;
                if (k < 0 || ks < 0 || ke < 0) {
                        r = -EINVAL;
                        continue;
                }
                if (e.start > e.end) {
                        r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                         "<freeExtent>: start is after end");
                        continue;
                }
                struct pool_extent *ne = reallocarray(ext, n_ext + 1, sizeof(*ne));
                if (!ne)
                        return -ENOMEM;
                ext = ne;
                ext[n_ext++] = e;
        }
        if (!path)
                return r;
        /* Kept even when invalid, so that the type rules do not also report a
         * missing device. */
        struct pool_device *d =
                reallocarray(def->source.devices, def->source.n_devices + 1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        def->source.devices = d;
        d[def->source.n_devices++] = (struct pool_device){
                .path = TAKE_PTR(path),
                .free_extents = TAKE_PTR(ext),
                .n_free_extents = n_ext,
        };
        return r;
}

static int parse_initiator(struct pool_def *def, const xmlNode *n, struct dv_error *err) {
        static const char *const attrs[] = {"name", NULL};
        const void *seen = NULL;
        int r = dv_xml_check_attrs(n, NULL, err), k;
        dv_xml_foreach_child(c, n) {
                if (!dv_xml_is(c, "iqn")) {
                        r = dv_xml_unknown(c, n, err);
                        continue;
                }
                if (dv_xml_once(&seen, c, n, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                if (dv_xml_check_empty(c, attrs, err) < 0)
                        r = -EINVAL;
                k = dv_xml_prop_required(c, "name", &def->source.initiator_iqn, err);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
                else if (check_iscsi_name("initiator iqn", def->source.initiator_iqn, false,
                                          dv_xml_line(c), err) < 0)
                        r = -EINVAL;
        }
        if (!seen)
                r = dv_error_add(err, -EINVAL, dv_xml_line(n),
                                 "<initiator> needs an <iqn name='...'/>");
        return r;
}

static int parse_auth(struct pool_def *def, const xmlNode *n, struct dv_error *err) {
        static const char *const attrs[] = {"type", "username", NULL};
        static const char *const secret_attrs[] = {"usage", "uuid", NULL};
        struct pool_auth *a = &def->source.auth;
        const void *seen = NULL;
        int line = dv_xml_line(n);
        int r = dv_xml_check_attrs(n, attrs, err), k;

        def->source.has_auth = true;
        k = dv_xml_prop_required(n, "type", &a->type, err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                r = k;
        else if (!streq(a->type, "chap"))
                r = dv_error_add(err, -EINVAL, line,
                                 "auth type '%s' is not supported; expected 'chap'", a->type);
        k = dv_xml_prop_required(n, "username", &a->username, err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                r = k;
        else if (!*a->username)
                r = dv_error_add(err, -EINVAL, line, "<auth> needs a non-empty username");
        else if (has_control(a->username))
                r = dv_error_add(err, -EINVAL, line,
                                 "<auth> values may not contain control characters");

        dv_xml_foreach_child(c, n) {
                if (!dv_xml_is(c, "secret")) {
                        r = dv_xml_unknown(c, n, err);
                        continue;
                }
                if (dv_xml_once(&seen, c, n, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                if (dv_xml_check_empty(c, secret_attrs, err) < 0)
                        r = -EINVAL;
                if (dv_xml_prop(c, "usage", &a->secret_usage) < 0 ||
                    dv_xml_prop(c, "uuid", &a->secret_uuid) < 0)
                        return -ENOMEM;
                int sl = dv_xml_line(c);
                if (!a->secret_usage == !a->secret_uuid)
                        r = dv_error_add(
                                err, -EINVAL, sl,
                                "<secret> needs either usage='...' or uuid='...' (one of them)");
                else if (a->secret_usage && !*a->secret_usage)
                        r = dv_error_add(err, -EINVAL, sl, "<secret usage=''> is empty");
                else if (has_control(a->secret_usage))
                        r = dv_error_add(err, -EINVAL, sl,
                                         "<auth> values may not contain control characters");
                else if (a->secret_uuid) {
                        char canon[UUID_STRING_LEN + 1];
                        if (uuid_canonical(a->secret_uuid, canon) < 0) {
                                r = dv_error_add(err, -EINVAL, sl,
                                                 "<secret uuid> '%s' is not a UUID",
                                                 a->secret_uuid);
                        } else {
                                char *u = strdup(canon);
                                if (!u)
                                        return -ENOMEM;
                                free(a->secret_uuid);
                                a->secret_uuid = u;
                        }
                }
        }
        if (!seen)
                r = dv_error_add(err, -EINVAL, line,
                                 "<auth> needs a <secret usage='...'/> or <secret uuid='...'/>");
        return r;
}

static int parse_source(struct pool_def *def, const xmlNode *src, struct dv_error *err) {
        static const char *const path_attr[] = {"path", NULL};
        static const char *const type_attr[] = {"type", NULL};
        const void *seen[SOURCE_BITS] = {0};
        const xmlNode *dir_node = NULL;
        unsigned allowed = pool_types[def->type].source_allowed;
        const char *t = pool_type_to_string(def->type);
        int r = dv_xml_check_attrs(src, NULL, err), k = 0;

        def->source_line = dv_xml_line(src);
        dv_xml_foreach_child(c, src) {
                int bit = -1;
                for (int i = 0; i < SOURCE_BITS; i++)
                        if (dv_xml_is(c, source_elem_names[i]))
                                bit = i;
                if (bit < 0) {
                        if (!c->ns && dv_str_in(unsupported_source_elems, (const char *)c->name))
                                r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                                 "<%s> in <source> is not supported",
                                                 (const char *)c->name);
                        else
                                r = dv_xml_unknown(c, src, err);
                        continue;
                }
                unsigned what = 1u << bit;
                if (!(allowed & what)) {
                        r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                         "<%s> in <source> does not apply to pool type '%s'",
                                         source_elem_names[bit], t);
                        continue;
                }
                if (what != POOL_SOURCE_DEVICE && dv_xml_once(&seen[bit], c, src, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                switch (what) {
                case POOL_SOURCE_HOST:
                        k = parse_host(def, c, err);
                        break;
                case POOL_SOURCE_DEVICE:
                        k = parse_device(def, c, err);
                        break;
                case POOL_SOURCE_DIR:
                        k = dv_xml_check_empty(c, path_attr, err);
                        KEEP(k, dv_xml_prop_required(c, "path", &def->source.dir, err));
                        dir_node = c;
                        break;
                case POOL_SOURCE_NAME:
                        k = dv_xml_leaf_text(c, &def->source.name, err);
                        if (k >= 0)
                                k = check_vg_name(def->source.name, dv_xml_line(c), err);
                        break;
                case POOL_SOURCE_FORMAT:
                        k = dv_xml_check_empty(c, type_attr, err);
                        KEEP(k, dv_xml_prop_required(c, "type", &def->source.format, err));
                        if (def->source.format && k != -ENOMEM)
                                KEEP(k, check_format(def->type, def->source.format, dv_xml_line(c),
                                                     err));
                        break;
                case POOL_SOURCE_INITIATOR:
                        k = parse_initiator(def, c, err);
                        break;
                case POOL_SOURCE_AUTH:
                        k = parse_auth(def, c, err);
                        break;
                default:
                        break;
                }
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
        }
        /* After the loop: whether the dir must be absolute depends on <format>. */
        if (dir_node && def->source.dir &&
            check_netfs_dir(def->source.dir, def->source.format, dv_xml_line(dir_node), err) < 0)
                r = -EINVAL;
        return r;
}

static int parse_target(struct pool_def *def, const xmlNode *tgt, struct dv_error *err) {
        const void *seen_path = NULL, *seen_perms = NULL;
        int r = dv_xml_check_attrs(tgt, NULL, err), k;

        def->target_line = dv_xml_line(tgt);
        dv_xml_foreach_child(c, tgt) {
                if (dv_xml_is(c, "path")) {
                        if (dv_xml_once(&seen_path, c, tgt, err) < 0) {
                                r = -EINVAL;
                                continue;
                        }
                        k = dv_xml_leaf_text(c, &def->target.path, err);
                        if (k >= 0)
                                k = check_path("target", def->target.path, dv_xml_line(c), err);
                } else if (dv_xml_is(c, "permissions")) {
                        if (dv_xml_once(&seen_perms, c, tgt, err) < 0) {
                                r = -EINVAL;
                                continue;
                        }
                        k = dv_perms_parse(c, &def->target.perms, err);
                } else {
                        k = dv_xml_unknown(c, tgt, err);
                }
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
        }
        return r;
}

int pool_def_parse(const void *root_node, struct pool_def **ret, struct dv_error *err) {
        static const char *const root_attrs[] = {"type", NULL};
        const xmlNode *root = root_node;
        _cleanup_(pool_def_freep) struct pool_def *def = NULL;
        _cleanup_free_ char *type = NULL;
        const void *seen_name = NULL, *seen_uuid = NULL, *seen_cap = NULL, *seen_alloc = NULL,
                   *seen_avail = NULL, *seen_source = NULL, *seen_target = NULL;
        int r, k;

        def = calloc(1, sizeof(*def));
        if (!def)
                return -ENOMEM;
        def->line = dv_xml_line(root);
        r = dv_xml_check_attrs(root, root_attrs, err);
        k = dv_xml_prop_required(root, "type", &type, err);
        if (k < 0)
                return k;
        /* Everything else depends on the type: stop here rather than report noise. */
        k = pool_type_from_string(type);
        if (k < 0) {
                if (pool_type_is_known_unsupported(type))
                        return dv_error_add(err, -EINVAL, def->line,
                                            "pool type '%s' is not supported", type);
                return dv_error_add(err, -EINVAL, def->line, "unknown pool type '%s'", type);
        }
        def->type = k;

        dv_xml_foreach_child(c, root) {
                const void **slot = dv_xml_is(c, "name")         ? &seen_name
                                    : dv_xml_is(c, "uuid")       ? &seen_uuid
                                    : dv_xml_is(c, "capacity")   ? &seen_cap
                                    : dv_xml_is(c, "allocation") ? &seen_alloc
                                    : dv_xml_is(c, "available")  ? &seen_avail
                                    : dv_xml_is(c, "source")     ? &seen_source
                                    : dv_xml_is(c, "target")     ? &seen_target
                                                                 : NULL;
                if (dv_xml_is_policy(c)) /* parsed by model/policy.c */
                        continue;
                if (!slot) {
                        if (dv_xml_is(c, "features"))
                                r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                                 "<features> in <pool> is not supported");
                        else if (dv_xml_is(c, "metadata"))
                                r = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                                 "<metadata> is not part of pool XML; the policy "
                                                 "element goes directly in <pool>");
                        else
                                r = dv_xml_unknown(c, root, err);
                        continue;
                }
                if (dv_xml_once(slot, c, root, err) < 0) {
                        r = -EINVAL;
                        continue;
                }
                k = 0;
                if (slot == &seen_name) {
                        k = dv_xml_leaf_text(c, &def->name, err);
                        if (k >= 0)
                                k = check_name(def->name, dv_xml_line(c), err);
                } else if (slot == &seen_uuid) {
                        _cleanup_free_ char *u = NULL;
                        char canon[UUID_STRING_LEN + 1];
                        k = dv_xml_leaf_text(c, &u, err);
                        if (k >= 0 && uuid_canonical(u, canon) < 0)
                                k = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                                 "<uuid> '%s' is not a UUID", u);
                        else if (k >= 0 && !(def->uuid = strdup(canon)))
                                k = -ENOMEM;
                } else if (slot == &seen_cap) {
                        k = dv_xml_scaled_leaf(c, "bytes", &def->capacity, err);
                        def->has_capacity = k >= 0;
                } else if (slot == &seen_alloc) {
                        k = dv_xml_scaled_leaf(c, "bytes", &def->allocation, err);
                        def->has_allocation = k >= 0;
                } else if (slot == &seen_avail) {
                        k = dv_xml_scaled_leaf(c, "bytes", &def->available, err);
                        def->has_available = k >= 0;
                } else if (slot == &seen_source) {
                        k = parse_source(def, c, err);
                } else if (pool_types[def->type].target == POOL_TARGET_NONE) {
                        k = dv_error_add(err, -EINVAL, dv_xml_line(c),
                                         "<target> does not apply to pool type '%s'", type);
                } else {
                        k = parse_target(def, c, err);
                }
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        r = k;
        }
        k = check_rules(def, err);
        if (r < 0 || k < 0)
                return r < 0 ? r : k;
        *ret = TAKE_PTR(def);
        return 0;
}

/* ---- formatting ---------------------------------------------------------------------- */

/* libvirt's order: host, device, dir, name, initiator, format, auth. */
static void format_source(struct buf *b, const struct pool_def *def) {
        xml_open(b, "source");
        xml_open_end(b);
        if (def->source.host_name) {
                xml_open(b, "host");
                xml_attr(b, "name", def->source.host_name);
                if (def->source.has_port)
                        xml_attr_u64(b, "port", def->source.port);
                xml_empty_end(b);
        }
        for (size_t i = 0; i < def->source.n_devices; i++) {
                const struct pool_device *d = &def->source.devices[i];
                xml_open(b, "device");
                xml_attr(b, "path", d->path);
                if (d->n_free_extents == 0) {
                        xml_empty_end(b);
                        continue;
                }
                xml_open_end(b);
                for (size_t j = 0; j < d->n_free_extents; j++) {
                        xml_open(b, "freeExtent");
                        xml_attr_u64(b, "start", d->free_extents[j].start);
                        xml_attr_u64(b, "end", d->free_extents[j].end);
                        xml_empty_end(b);
                }
                xml_close(b, "device");
        }
        if (def->source.dir) {
                xml_open(b, "dir");
                xml_attr(b, "path", def->source.dir);
                xml_empty_end(b);
        }
        xml_text_elem(b, "name", def->source.name);
        if (def->source.initiator_iqn) {
                xml_open(b, "initiator");
                xml_open_end(b);
                xml_open(b, "iqn");
                xml_attr(b, "name", def->source.initiator_iqn);
                xml_empty_end(b);
                xml_close(b, "initiator");
        }
        if (def->source.format) {
                xml_open(b, "format");
                xml_attr(b, "type", def->source.format);
                xml_empty_end(b);
        }
        if (def->source.has_auth) {
                xml_open(b, "auth");
                xml_attr(b, "type", def->source.auth.type);
                xml_attr(b, "username", def->source.auth.username);
                xml_open_end(b);
                xml_open(b, "secret");
                xml_attr(b, "usage", def->source.auth.secret_usage);
                xml_attr(b, "uuid", def->source.auth.secret_uuid);
                xml_empty_end(b);
                xml_close(b, "auth");
        }
        xml_close(b, "source");
}

void pool_def_format(struct buf *b, const struct pool_def *def, const struct dv_policy *policy) {
        xml_open(b, "pool");
        xml_attr(b, "type", pool_type_to_string(def->type));
        xml_open_end(b);
        xml_text_elem(b, "name", def->name);
        xml_text_elem(b, "uuid", def->uuid);
        if (def->has_capacity)
                xml_bytes_elem(b, "capacity", def->capacity);
        if (def->has_allocation)
                xml_bytes_elem(b, "allocation", def->allocation);
        if (def->has_available)
                xml_bytes_elem(b, "available", def->available);
        /* libvirt always writes <source> and, except for network-only types, <target>,
         * even when empty; the schema wants them for several types. */
        format_source(b, def);
        if (pool_types[def->type].target != POOL_TARGET_NONE) {
                xml_open(b, "target");
                xml_open_end(b);
                xml_text_elem(b, "path", def->target.path);
                dv_perms_format(b, &def->target.perms);
                xml_close(b, "target");
        }
        dv_policy_format(b, policy, DV_KIND_POOL);
        xml_close(b, "pool");
}

void pool_def_free(struct pool_def *def) {
        if (!def)
                return;
        free(def->name);
        free(def->uuid);
        for (size_t i = 0; i < def->source.n_devices; i++) {
                free(def->source.devices[i].path);
                free(def->source.devices[i].free_extents);
        }
        free(def->source.devices);
        free(def->source.dir);
        free(def->source.host_name);
        free(def->source.format);
        free(def->source.name);
        free(def->source.initiator_iqn);
        free(def->source.auth.type);
        free(def->source.auth.username);
        free(def->source.auth.secret_usage);
        free(def->source.auth.secret_uuid);
        free(def->target.path);
        dv_perms_done(&def->target.perms);
        free(def);
}

int pool_def_target_path(const struct pool_def *def, char **ret) {
        const struct pool_type_info *info = pool_type_info(def->type);
        const char *vg = pool_def_vg_name(def);
        *ret = NULL;
        if (def->target.path)
                *ret = strdup(def->target.path);
        else if (info && info->target == POOL_TARGET_VG && vg)
                *ret = strdupf("/dev/%s", vg);
        else if (info && info->default_target)
                *ret = strdup(info->default_target);
        else
                return 0;
        return *ret ? 0 : -ENOMEM;
}

const char *pool_def_vg_name(const struct pool_def *def) {
        if (!def)
                return NULL;
        return def->source.name ? def->source.name : def->name;
}
