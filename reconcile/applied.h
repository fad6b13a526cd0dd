/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The last-applied store (docs/design.md, ownership): for each object the agent
 * applied from a desired file, the definition it applied, the content hash, the
 * values it generated (UUID) and whether it created the data underneath (only
 * then may on-remove='delete' destroy it). Kept as JSON in state_dir/applied/
 * (0700, files 0600): it is the agent's own bookkeeping, not libvirt XML. */
#pragma once

#include <stdbool.h>

#include "model/object.h"
#include "util/mac.h"  /* mac_generate_string: the values generated and kept here */
#include "util/uuid.h" /* uuid_generate_string */

struct applied {
        enum dv_kind kind;
        char *name;
        char *pool;            /* volumes */
        char *file;            /* the desired file it came from */
        char *hash;            /* content hash of that file when applied */
        char *xml;             /* dv_object_format() of the applied definition */
        struct dv_object *obj; /* xml parsed */
        char *uuid;            /* generated when the file has none */
        char *mac;             /* networks: the bridge MAC, generated when the file has none */
        char **macs;           /* domains: one MAC per <interface>, generated when not written */
        bool created;          /* the agent created the data (pool directory, volume) */
        bool active;           /* pools: started by the agent (types where start is bookkeeping) */
        char *boot_id;         /* boot during which the agent last brought it up */
        uint32_t uid;          /* QEMU domains: the uid (= gid) QEMU runs as, allocated from
                                * agent.conf qemu.uid_range when first applied; 0: none */
        uint32_t id_base;      /* containers in a user namespace of their own: the first of
                                * their 65536 host ids, allocated from agent.conf
                                * container.id_range when first applied; 0: none */
};

/* "applied/KIND@[POOL@]NAME.json" */
char *applied_relpath(enum dv_kind kind, const char *pool, const char *name) _warn_unused_result_;
char *applied_to_json(const struct applied *a) _warn_unused_result_;
/* Parses a record; the embedded XML must parse as an object of the same kind/name. */
int applied_from_json(const char *data, size_t len, struct applied **ret,
                      struct dv_error *err) _warn_unused_result_;
/* Builds a record for object o (copies what it needs; o is not kept). */
int applied_new_from(const struct dv_object *o, const char *file,
                     struct applied **ret) _warn_unused_result_;
void applied_free(struct applied *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct applied *, applied_free)
