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

struct pool_extent {
        uint64_t start, end;
};

struct pool_device {
        char *path;
        struct pool_extent *free_extents; /* observed (disk pools) */
        size_t n_free_extents;
};

struct pool_auth {
        char *type;         /* "chap" */
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
                char *dir;       /* netfs: exported directory */
                char *host_name;
                bool has_port;
                uint16_t port;
                char *format;    /* <format type=...> */
                char *name;      /* logical: VG name */
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

/* Libvirt's pool types that declvirt refuses ("pool type 'X' is not supported"). */
bool pool_type_is_known_unsupported(const char *type);

/* Helpers shared by the storage model (pool.c, volume.c, perms.c). */
/* NULL when path is absolute and normalised (no '.', '..' or empty components, no
 * trailing '/', not '/' itself, no control characters), else the reason. */
const char *pool_path_problem(const char *path);
