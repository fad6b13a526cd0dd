/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.conf (YAML, libyaml): docs/agent.conf.md. Unknown keys, wrong types,
 * bad durations, duplicate keys and malformed YAML are errors "agent.conf:LINE: msg".
 * Relative paths are resolved against the config file's directory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define DV_CONFIG_DEFAULT_PATH "/etc/declvirt/agent.conf"
/* A larger agent.conf is refused unread. */
#define DV_CONFIG_MAX_SIZE (1024 * 1024)

enum dv_qemu_accel { DV_ACCEL_AUTO, DV_ACCEL_KVM, DV_ACCEL_TCG };
/* "auto", "kvm", "tcg": as agent.conf writes it. */
const char *dv_qemu_accel_name(enum dv_qemu_accel a);
enum dv_tristate { DV_AUTO = -1, DV_NO = 0, DV_YES = 1 };
/* qemu.uid_range: each QEMU domain runs as a uid (= gid) of its own from this range
 * (docs/agent.conf.md). The default lies above the ids Debian gives accounts (up to
 * 59999 and 65534) and systemd's dynamic users (61184-65519). */
#define DV_QEMU_UID_FIRST     3000000u
#define DV_QEMU_UID_LAST      3999999u
#define DV_QEMU_UID_RANGE_MIN 16u
/* container.id_range: each container without <idmap> gets 65536 ids of its own from this
 * range for its user namespace (docs/agent.conf.md). The default lies above the ranges
 * systemd-nspawn picks from (524288-1879048191) and /etc/subuid hands out by default
 * (100000-600100000), and below systemd's foreign range (2147352576) and 2^31. */
#define DV_CONTAINER_IDS      65536u
#define DV_CONTAINER_ID_FIRST 1879048192u
#define DV_CONTAINER_ID_LAST  2147352575u

struct dv_config {
        char *path;        /* the file read (made absolute), or NULL for built-in defaults */
        char *desired_dir; /* absolute */
        char *state_dir;   /* absolute */
        char *run_dir;     /* absolute */
        uint64_t resync_interval_usec; /* 30s */
        uint64_t debounce_usec;        /* 10ms */
        uint64_t removal_delay_usec;   /* 2s */
        unsigned max_parallel;         /* 4; 1..256 */
        int log_level;                 /* LOG_INFO; syslog.h values */
        bool strict_permissions;       /* true */
        char **storage_locations;      /* NULL or empty: anywhere; absolute fnmatch patterns */
        char *metrics_file;            /* NULL when "" */
        char *secrets_dir;             /* /etc/declvirt/secrets */
        struct {
                char *binary; /* /usr/bin/qemu-system-x86_64 */
                enum dv_qemu_accel accel;
                uint32_t uid_first, uid_last; /* qemu.uid_range, kept in this order */
        } qemu;
        struct {
                char *template_dir;         /* /var/lib/declvirt/templates */
                char *data_dir;             /* /var/lib/declvirt/containers */
                uint32_t id_first, id_last; /* container.id_range, kept in this order */
        } container;
        struct {
                enum dv_tristate enabled; /* auto */
                char *xl;                 /* /usr/sbin/xl */
        } xen;
};

/* Built-in defaults (the values above). */
int dv_config_new_default(struct dv_config **ret);
/* Parses YAML text (data need not be NUL-terminated); `path` names the file in messages
 * (err->file) and its directory is the base for relative paths; NULL: the current
 * directory is the base. Every problem found is added to err, the first one decides. */
int dv_config_parse(const char *data, size_t len, const char *path, struct dv_config **ret,
                    struct dv_error *err);
/* Reads and parses path. When path is NULL the default path is used, and a missing
 * default file means built-in defaults. */
int dv_config_load(const char *path, struct dv_config **ret, struct dv_error *err);
void dv_config_free(struct dv_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct dv_config *, dv_config_free)
/* No account of the passwd file nor group of the group file (NULL: /etc/passwd,
 * /etc/group; a missing file holds none) has an id in qemu.uid_range: -EEXIST naming the
 * first one found otherwise. Run once when the agent starts. */
int dv_config_check_uid_range(const struct dv_config *c, const char *passwd, const char *group,
                              struct dv_error *err) _warn_unused_result_;
/* The same for container.id_range, which also must not overlap qemu.uid_range nor an
 * entry of the subuid and subgid files (NULL: /etc/subuid, /etc/subgid), whose ids
 * belong to users' own containers: -EEXIST naming the first conflict. */
int dv_config_check_container_range(const struct dv_config *c, const char *passwd,
                                    const char *group, const char *subuid, const char *subgid,
                                    struct dv_error *err) _warn_unused_result_;
/* True when the list is empty, or when path or a directory above it matches one of
 * storage_locations with fnmatch(FNM_PATHNAME). So a pattern that is "/srv/vm/" plus a
 * star allows /srv/vm/pool1 and /srv/vm/pool1/disk.qcow2, but not /srv/vm itself.
 * path must be absolute with no ".." component (refused otherwise); resolve symlinks
 * before asking. */
bool dv_config_location_allowed(const struct dv_config *c, const char *path);
