/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The iscsi pool driver (open-iscsi: iscsiadm and the kernel initiator), and the CHAP
 * secret files that both iSCSI drivers (iscsi, iscsi-direct) read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "drivers/storage.h"

extern const struct storage_driver storage_driver_iscsi;

#define DRV_ISCSI_DEFAULT_PORT        3260
#define DRV_ISCSI_DEFAULT_SECRETS_DIR "/etc/declvirt/secrets"
/* What the stable volume paths are under when the pool has no <target><path>. */
#define DRV_ISCSI_BY_PATH_DIR "/dev/disk/by-path"
/* CHAP secrets are short (RFC 3720 recommends 12..16 bytes); anything long is a mistake. */
#define DRV_ISCSI_SECRET_MAX 255
/* iscsiadm talks to iscsid, which talks to the target: bounded so that an unreachable
 * portal fails the action instead of holding a worker. */
#define DRV_ISCSI_CMD_TIMEOUT_USEC   (30ULL * 1000000)
#define DRV_ISCSI_LOGIN_TIMEOUT_USEC (60ULL * 1000000)

/* Where CHAP passwords live: SECRETS_DIR/NAME, NAME being <secret usage='NAME'/> (or
 * the uuid of <secret uuid=.../>). The agent sets it from agent.conf; default
 * DRV_ISCSI_DEFAULT_SECRETS_DIR. Thread-safe; the string is copied. NULL resets. */
void drv_iscsi_set_secrets_dir(const char *dir);
/* The owner a secret file must have (0, root, unless a test says otherwise). */
void drv_iscsi_set_secret_owner(uid_t uid);
/* The secret's name from <auth>: usage, else uuid; NULL without <auth>. */
const char *drv_iscsi_secret_name(const struct pool_def *def);
/* Reads SECRETS_DIR/NAME. Refuses (-EPERM, with the reason) a file that is not a regular
 * file, not owned by the secret owner, or readable or writable by group or others; a
 * NAME with '/' or a leading '.' (-EINVAL); an empty or too long secret (-EINVAL). One
 * trailing newline is dropped. Caller frees (and should wipe) *ret. */
int drv_iscsi_read_secret(const char *name, char **ret, struct dv_error *err);

/* "HOST:PORT" ("[V6ADDR]:PORT" for IPv6 literals), port 3260 when not written. */
char *drv_iscsi_host_port(const struct pool_def *def);
/* "HOST:PORT,1": the portal as open-iscsi names a node (target portal group 1). */
char *drv_iscsi_portal(const struct pool_def *def);
/* The target IQN: <source><device path='IQN'/>; NULL when missing. */
const char *drv_iscsi_target(const struct pool_def *def);

/* Pure argv builders, compared with tests/data/iscsi/ golden files. -EINVAL when the
 * definition lacks host or device.
 *   iscsiadm --mode discovery --type sendtargets --portal HOST:PORT
 *   iscsiadm --mode node --targetname IQN --portal HOST:PORT,1 --op new
 *   iscsiadm --mode node --targetname IQN --portal HOST:PORT,1 --op update --name N --value V
 *   iscsiadm --mode node --targetname IQN --portal HOST:PORT,1 --login
 *   iscsiadm --mode node --targetname IQN --portal HOST:PORT,1 --logout
 *   iscsiadm --mode session
 *   iscsiadm --mode session -r SID -R */
int drv_iscsi_discovery_argv(const struct pool_def *def, char ***ret);
int drv_iscsi_node_new_argv(const struct pool_def *def, char ***ret);
int drv_iscsi_node_update_argv(const struct pool_def *def, const char *name, const char *value,
                               char ***ret);
int drv_iscsi_login_argv(const struct pool_def *def, char ***ret);
int drv_iscsi_logout_argv(const struct pool_def *def, char ***ret);
int drv_iscsi_session_argv(char ***ret);
int drv_iscsi_rescan_argv(unsigned sid, char ***ret);
/* The --op update settings for <auth type='chap'>, in order, as a NULL-terminated list of
 * name, value pairs (authmethod CHAP, username, password). Caller frees. */
int drv_iscsi_chap_settings(const struct pool_def *def, const char *password, char ***ret);

/* One line of `iscsiadm --mode session` or of sendtargets discovery. */
struct drv_iscsi_session {
        unsigned sid;  /* 0 for discovery lines */
        char *address; /* host or IP, without brackets */
        uint16_t port;
        unsigned tpgt;
        char *target;
};
void drv_iscsi_sessions_free(struct drv_iscsi_session *s, size_t n);
/* "tcp: [SID] ADDR:PORT,TPGT IQN (non-flash)" per line. Lines that do not parse are
 * skipped; "iscsiadm: No active sessions." gives none. */
int drv_iscsi_parse_sessions(const char *out, struct drv_iscsi_session **ret, size_t *n);
/* "ADDR:PORT,TPGT IQN" per line (sendtargets discovery output). */
int drv_iscsi_parse_discovery(const char *out, struct drv_iscsi_session **ret, size_t *n);

/* The kernel's view (sysfs), read by observe and vol_list because it costs no process.
 * The root is "/sys" unless a test points it at a tree of its own. */
void drv_iscsi_set_sysfs_root(const char *root);
struct drv_iscsi_sysfs_session {
        unsigned sid;
        char *state; /* "LOGGED_IN", "FAILED", "FREE" */
};
/* Finds the kernel session to def's target and portal. Returns 1 and fills *ret when
 * there is one, 0 when not (also when the kernel has no iSCSI transport at all). */
int drv_iscsi_sysfs_find_session(const struct pool_def *def, struct drv_iscsi_sysfs_session *ret);
/* The LUNs of session sid as volumes "unit:BUS:TARGET:LUN", path the stable name
 * DIR/ip-HOST:PORT-iscsi-IQN-lun-LUN (DIR: the pool's target path or
 * /dev/disk/by-path) when it exists, else /dev/NAME; capacity from the block device. */
int drv_iscsi_sysfs_list_luns(const struct pool_def *def, unsigned sid, struct vol_status **ret,
                              size_t *n, struct dv_error *err);
