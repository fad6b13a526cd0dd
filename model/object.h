/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A desired object: one file, one root element, one kind. Dispatches parsing and
 * formatting to the kind modules and carries the policy and the content hash. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "model/enum.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"

struct pool_def;
struct volume_def;
struct network_def;
struct domain_def;

enum dv_kind {
        DV_KIND_POOL,
        DV_KIND_VOLUME,
        DV_KIND_NETWORK,
        DV_KIND_DOMAIN,
        _DV_KIND_MAX,
};
DV_ENUM_DECL(dv_kind);

/* Policy values. 0 always means "not written": effective values come from
 * dv_policy_effective_*() so that unset stays distinguishable. */
enum dv_want {
        DV_WANT_UNSET,
        DV_WANT_UP,   /* running / active */
        DV_WANT_DOWN, /* stopped / inactive */
};
enum dv_restart {
        DV_RESTART_UNSET,
        DV_RESTART_ALWAYS,
        DV_RESTART_ON_FAILURE,
        DV_RESTART_NEVER,
        _DV_RESTART_MAX
};
enum dv_on_change {
        DV_ON_CHANGE_UNSET,
        DV_ON_CHANGE_RESTART_REQUIRED,
        DV_ON_CHANGE_RESTART,
        _DV_ON_CHANGE_MAX
};
enum dv_on_remove {
        DV_ON_REMOVE_UNSET,
        DV_ON_REMOVE_STOP,
        DV_ON_REMOVE_KEEP,
        DV_ON_REMOVE_DELETE,
        _DV_ON_REMOVE_MAX
};
enum dv_build { DV_BUILD_UNSET, DV_BUILD_NO, DV_BUILD_IF_EMPTY, _DV_BUILD_MAX };
DV_ENUM_DECL(dv_restart);
DV_ENUM_DECL(dv_on_change);
DV_ENUM_DECL(dv_on_remove);
DV_ENUM_DECL(dv_build);

struct dv_policy {
        bool present;
        int line;
        enum dv_want state;
        int autostart;                   /* -1 unset, 0 no, 1 yes */
        bool has_privileged, privileged; /* containers: no user namespace of their own */
        enum dv_restart restart;
        enum dv_on_change on_change;
        enum dv_on_remove on_remove;
        enum dv_build build;
        bool has_shutdown_timeout;
        uint64_t shutdown_timeout; /* seconds */
        char *pool;                /* volume: the pool it belongs to */
};

/* Finds and parses the policy element of root (direct child, or for domains and
 * networks inside <metadata>). At most one; attributes checked against the kind. */
int dv_policy_parse(const void *root_node, enum dv_kind kind, struct dv_policy *ret,
                    struct dv_error *err);
void dv_policy_format(struct buf *b, const struct dv_policy *p, enum dv_kind kind);
void dv_policy_done(struct dv_policy *p);

enum dv_want dv_policy_state(const struct dv_policy *p);          /* default UP */
bool dv_policy_autostart(const struct dv_policy *p);              /* default yes */
bool dv_policy_privileged(const struct dv_policy *p);             /* default no */
enum dv_restart dv_policy_restart(const struct dv_policy *p);     /* default always */
enum dv_on_change dv_policy_on_change(const struct dv_policy *p); /* default restart-required */
enum dv_on_remove dv_policy_on_remove(const struct dv_policy *p,
                                      enum dv_kind kind);       /* stop; volume keep */
enum dv_build dv_policy_build(const struct dv_policy *p);       /* default if-empty */
uint64_t dv_policy_shutdown_timeout(const struct dv_policy *p); /* default 120 */

/* Name rules of docs/design.md#names. NULL when valid, else the reason. */
const char *dv_name_problem(enum dv_kind kind, const char *name);

struct dv_object {
        enum dv_kind kind;
        char *name;
        char *pool; /* volumes: pool name (from the policy), else NULL */
        struct dv_policy policy;
        union {
                struct pool_def *pool;
                struct volume_def *volume;
                struct network_def *network;
                struct domain_def *domain;
                void *any;
        } def;
        char hash[HASH_HEX_LEN + 1]; /* of the file's bytes */
        int line;                    /* line of the root element */
        int n_ref;                   /* shared with executor jobs; see dv_object_ref */
};

/* Parses one desired file's content. `filename` is only used for messages
 * (err->file is set to it). Validation is included: a returned object is valid. */
int dv_object_parse(const char *data, size_t len, const char *filename, struct dv_object **ret,
                    struct dv_error *err);
/* Reads (at most DV_XML_MAX_SIZE bytes) and parses a file. */
int dv_object_parse_file(const char *path, struct dv_object **ret, struct dv_error *err);
/* Formats the object back to XML (with its policy), libvirt's conventions. */
char *dv_object_format(const struct dv_object *o);
/* Formats only what the user wrote for the definition, without the policy: two
 * objects whose definitions match format identically. */
char *dv_object_format_def(const struct dv_object *o);
/* Objects are reference-counted so that an action running in a worker keeps the
 * definition it works on while the engine moves on. dv_object_free drops one
 * reference. Both are thread-safe. */
struct dv_object *dv_object_ref(struct dv_object *o);
void dv_object_free(struct dv_object *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct dv_object *, dv_object_free)
/* "pool/NAME", "volume/POOL/NAME", "network/NAME", "domain/NAME"; caller frees. */
char *dv_object_id(const struct dv_object *o);
char *dv_object_id_make(enum dv_kind kind, const char *pool, const char *name);
