/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one command runner every driver uses (docs/design.md, contracts): argv only, never
 * a shell; environment reduced to PATH, LC_ALL=C and a few variables that configure
 * the tools themselves; stdin from /dev/null (or given data); stdout and stderr
 * captured up to a limit; timeout, then SIGTERM, then SIGKILL; a non-zero exit
 * becomes an error carrying the argv and the stderr tail. Safe to call from
 * worker threads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

#define CMD_DEFAULT_TIMEOUT_USEC (60ULL * 1000000ULL)
#define CMD_DEFAULT_MAX_OUTPUT   (4u << 20)
#define CMD_STDERR_TAIL          2048

/* The environment of every child: PATH=CMD_DEFAULT_PATH, LC_ALL=C, then each of
 * CMD_PASSTHROUGH_ENV that is set in the agent's own environment (variables that
 * configure the tools themselves, so that a test or an operator can point LVM at
 * another lvm.conf or libxenstore at another socket), then opts->extra_env, whose
 * entries replace earlier ones of the same name (PATH included). argv[0] without a
 * '/' is looked up in the child's PATH, not in the agent's. */
#define CMD_DEFAULT_PATH    "/usr/sbin:/usr/bin:/sbin:/bin"
#define CMD_PASSTHROUGH_ENV "LVM_SYSTEM_DIR", "XENSTORED_PATH"

struct cmd_opts {
        uint64_t timeout_usec;    /* 0: CMD_DEFAULT_TIMEOUT_USEC */
        uint64_t kill_grace_usec; /* after SIGTERM before SIGKILL; 0: 2 s */
        size_t max_output;        /* stdout bytes kept; 0: CMD_DEFAULT_MAX_OUTPUT */
        const char *stdin_data;   /* NULL: /dev/null */
        size_t stdin_len;
        char *const *extra_env; /* "NAME=value" entries added to the reduced environment */
        bool allow_nonzero;     /* a non-zero exit is not an error (inspect result) */
};

struct cmd_result {
        int exit_status; /* -1 when killed by a signal */
        int term_signal; /* 0 unless killed */
        bool timed_out;
        char *out; /* stdout, NUL-terminated (truncated at max_output) */
        size_t out_len;
        char *err_tail; /* last CMD_STDERR_TAIL bytes of stderr */
        uint64_t duration_usec;
};

/* Runs argv[0] (looked up in PATH when it has no '/') and waits for it.
 * Returns 0 on exit status 0 (or any status with allow_nonzero), otherwise a
 * negative errno with err set to "ARGV0 failed (exit status N): STDERR-TAIL" and
 * err->argv/stderr_tail filled. res may be NULL.
 * Errors: -EIO for a non-zero exit ("ARGV0 failed (exit status N): LAST STDERR
 * LINES") or a death by signal ("ARGV0 was killed by signal N"), -ETIMEDOUT
 * ("ARGV0 timed out after Ns"), the exec errno ("cannot run ARGV0: REASON").
 * The child runs in its own process group; on timeout the whole group gets
 * SIGTERM, then SIGKILL after the grace period. Only the child's own PID is
 * reaped (SIGCHLD must not be set to SIG_IGN, nobody may waitpid(-1)). */
int cmd_run(char *const argv[], const struct cmd_opts *opts, struct cmd_result *res,
            struct dv_error *err) _warn_unused_result_;
void cmd_result_done(struct cmd_result *res);

/* Starts argv detached in its own session (setsid), stdio to /dev/null or to
 * log_path (appended) when given; does not wait. For long-running programs such
 * as QEMU and dnsmasq. Returns the PID (also through ret_pid, which may be NULL);
 * the caller reaps it or leaves it to be adopted. Same environment as cmd_run. */
int cmd_spawn_detached(char *const argv[], const char *log_path, char *const *extra_env,
                       pid_t *ret_pid, struct dv_error *err) _warn_unused_result_;

/* The same, and fds[k] (the caller's, left open) is descriptor 3 + k in the child, so the
 * argv can name 3, 4, ...: how QEMU gets the disk images the agent opened (-add-fd).
 * Nothing else above stderr reaches the child. At most CMD_PASS_FDS_MAX (-E2BIG). */
#define CMD_PASS_FDS_MAX 256
int cmd_spawn_detached_fds(char *const argv[], const char *log_path, char *const *extra_env,
                           const int *fds, size_t n_fds, pid_t *ret_pid,
                           struct dv_error *err) _warn_unused_result_;

/* The same, and the child drops the agent's privileges before exec, for good: uid and gid
 * creds->uid/gid (real, effective, saved), no supplementary groups, an empty capability
 * bounding set, no ambient capabilities, no_new_privs. How QEMU runs as its domain's own
 * user. creds NULL: as cmd_spawn_detached_fds. A failure of any step before exec is an
 * error naming the step ("ARGV0 as uid U gid G: cannot take its user and group: ..."; for a
 * jail's entry "... cannot bind PATH into its jail: ..."). */
struct cmd_jail;
struct cmd_creds {
        uid_t uid;
        gid_t gid;
        /* Cgroup membership files ("tasks" of a v1 hierarchy, "cgroup.procs" of v2) opened
         * for writing: the child writes "0" (itself) to each first, so that everything it
         * opens afterwards (a device node in the jail) is checked against the cgroup's
         * device rules, and its memory is charged there from the start. */
        const int *cgroup_fds;
        size_t n_cgroup_fds;
        /* A directory descriptor (> 2) of a cgroup v2 cgroup the child starts in (clone3
         * CLONE_INTO_CGROUP: no migration, so no wait for the kernel's global threadgroup
         * lock, ~10 ms); where the kernel lacks it, the child joins it by its cgroup.procs
         * first thing. 0: none. */
        int cgroup_v2_fd;
        /* NULL, or the mount namespace the child enters before it drops its privileges
         * (below). */
        const struct cmd_jail *jail;
};

/* A jail: the child's own mount namespace (private propagation) whose root is a fresh
 * tmpfs mounted on `mountpoint` (an empty directory of root's; the mount is seen only in
 * the child's namespace) holding the files and directories bound into it, read-only
 * unless marked writable, at their own paths. Then pivot_root into it, the old root
 * detached and the new one remounted read-only: nothing else of the host's tree is
 * reachable by path. Built with cmd_jail_bind(); the child only runs the list. */
enum cmd_jail_kind { CMD_JAIL_MKDIR, CMD_JAIL_FILE, CMD_JAIL_DIR };
struct cmd_jail_entry {
        enum cmd_jail_kind kind;
        char *src; /* the host path bound (NULL for MKDIR) */
        char *dst; /* the path in the jail, relative to its root ("usr/bin/qemu") */
        bool writable;
        bool device; /* a device node: its bind mount keeps device access (no MS_NODEV) */
};
struct cmd_jail {
        char *mountpoint;
        struct cmd_jail_entry *entries;
        size_t n;
};
/* Adds host `path` (absolute) to the jail at the same path, and the directories above it
 * (once each). A directory is bound whole, a file or device node alone; symlinks are
 * followed (what the child binds is what the path names when the jail is built). Adding a
 * path twice keeps the first; a path below one already bound as a directory is skipped.
 * -ENOENT and the like from stat, -ENOMEM. */
int cmd_jail_bind(struct cmd_jail *j, const char *path, bool writable) _warn_unused_result_;
void cmd_jail_done(struct cmd_jail *j);
int cmd_spawn_detached_as(char *const argv[], const char *log_path, char *const *extra_env,
                          const int *fds, size_t n_fds, const struct cmd_creds *creds,
                          pid_t *ret_pid, struct dv_error *err) _warn_unused_result_;

/* Where the runner finds program `name` (as it would run it: absolute as given, else the
 * first executable regular file in CMD_DEFAULT_PATH); *ret is the caller's. -ENOENT,
 * -EACCES, -ENOMEM. */
int cmd_find_program(const char *name, char **ret) _warn_unused_result_;

/* The argv as one line for logs and errors, quoted where needed; caller frees. */
char *cmd_argv_string(char *const argv[]) _warn_unused_result_;
