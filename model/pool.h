/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pool definitions: libvirt's <pool> format, the types declvirt supports.
 * Fields the user did not write stay absent (NULL / has_* false) so that the
 * planner compares only what was written. Observed values (capacity, allocation,
 * available, free extents) are filled by drivers for the observed XML. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "model/enum.h"
#include "model/object.h"
#include "model/perms.h"

enum pool_type {
        POOL_DIR,
        POOL_FS,
        POOL_NETFS,
        POOL_LOGICAL,
        POOL_DISK,
        POOL_ISCSI,
        POOL_ISCSI_DIRECT,
        _POOL_TYPE_MAX,
};
DV_ENUM_DECL(pool_type);

/* The <source> children a pool type uses (libvirt's poolTypeInfo flags). */
enum {
        POOL_SOURCE_HOST = 1 << 0,
        POOL_SOURCE_DEVICE = 1 << 1, /* required: exactly one */
        POOL_SOURCE_DIR = 1 << 2,
        POOL_SOURCE_NAME = 1 << 3,
        POOL_SOURCE_FORMAT = 1 << 4,
        POOL_SOURCE_INITIATOR = 1 << 5,
        POOL_SOURCE_AUTH = 1 << 6,
};

enum pool_target_rule {
        POOL_TARGET_REQUIRED, /* the pool is its target directory */
        POOL_TARGET_OPTIONAL, /* libvirt shows default_target when none is written */
        POOL_TARGET_VG,       /* optional, and always /dev/VG (pool_def_default_target) */
        POOL_TARGET_NONE,     /* <target> does not apply */
};

/* What a <source><device path=> names. */
enum pool_device_kind {
        POOL_DEVICE_PATH,       /* an absolute, normalised path */
        POOL_DEVICE_ISCSI_NAME, /* an iSCSI target name (iqn., eui. or naa.) */
        POOL_DEVICE_IQN,        /* an iSCSI target name of the iqn. form only */
};

/* Everything that depends on the pool type outside its driver: the model's rules and
 * the engine's choices. A new pool type adds a row here and a driver in drivers/. */
struct pool_type_info {
        const char *name;           /* pool_type_to_string() */
        unsigned source_allowed;    /* POOL_SOURCE_* */
        unsigned source_required;   /* POOL_SOURCE_*, a subset of source_allowed */
        const char *const *formats; /* <source><format type=>, NULL when none */
        enum pool_device_kind device;
        enum pool_target_rule target;
        const char *default_target; /* POOL_TARGET_OPTIONAL: what libvirt shows */
        /* Nothing to start or stop: "active" is the agent's own flag (a directory, a
         * partition table, a remote target reached per request). */
        bool stateless;
        /* Its volumes are files under the target path, which storage_locations bounds. */
        bool file_backed;
};
/* The row of a pool type; NULL outside the enum. */
const struct pool_type_info *pool_type_info(enum pool_type type);

struct pool_extent {
        uint64_t start, end;
};

struct pool_device {
        char *path;
        struct pool_extent *free_extents; /* observed (disk pools) */
        size_t n_free_extents;
};

struct pool_auth {
        char *type; /* "chap" */
        char *username;
        char *secret_usage; /* <secret usage='...'/> */
        char *secret_uuid;  /* <secret uuid='...'/> */
};

struct pool_def {
        enum pool_type type;
        char *name;
        char *uuid; /* NULL when not written */
        bool has_capacity, has_allocation, has_available;
        uint64_t capacity, allocation, available;
        struct {
                struct pool_device *devices;
                size_t n_devices;
                char *dir; /* netfs: exported directory */
                char *host_name;
                bool has_port;
                uint16_t port;
                char *format; /* <format type=...> */
                char *name;   /* logical: VG name */
                char *initiator_iqn;
                bool has_auth;
                struct pool_auth auth;
        } source;
        struct {
                char *path;
                struct dv_perms perms;
        } target;
        int line; /* of <pool> */
        /* Lines of <source> and <target> (0 when absent or not parsed from XML), so that
         * "needs a ..." messages point at the element that lacks something. */
        int source_line, target_line;
};

/* root is the <pool> xmlNode. Validates as part of parsing. */
int pool_def_parse(const void *root, struct pool_def **ret, struct dv_error *err);
int pool_def_validate(const struct pool_def *def, struct dv_error *err);
/* virsh pool-dumpxml layout; policy (may be NULL) is written as a child. */
void pool_def_format(struct buf *b, const struct pool_def *def, const struct dv_policy *policy);
void pool_def_free(struct pool_def *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct pool_def *, pool_def_free)
/* Logical pools: the volume group name (source name, else pool name). */
const char *pool_def_vg_name(const struct pool_def *def);
/* The target path in force: the written one, else the one libvirt shows for the type
 * (/dev, /dev/disk/by-path, /dev/VG); a new string, NULL for none or -ENOMEM (*ret). */
int pool_def_target_path(const struct pool_def *def, char **ret);

/* Libvirt's pool types that declvirt refuses ("pool type 'X' is not supported"). */
bool pool_type_is_known_unsupported(const char *type);

/* Helpers shared by the storage model (pool.c, volume.c, perms.c). */
/* NULL when path is absolute and normalised (no '.', '..' or empty components, no
 * trailing '/', not '/' itself, no control characters), else the reason. */
const char *pool_path_problem(const char *path);
