/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the drivers that run detached processes (QEMU, containers, dnsmasq) share: pidfiles,
 * /proc/PID/stat, process identity records, reaping, waiting for an exit through a pidfd,
 * signalling, the busy flag. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* How long dom_proc_reap_dying waits for a child that is on its way out. */
#define DOM_PROC_REAP_WAIT_MSEC 1000

/* ---- /proc/PID/stat ------------------------------------------------------------------- */

struct dom_proc_stat {
        char state;     /* field 3: R, S, D, Z, ... */
        pid_t ppid;     /* field 4 */
        uint64_t start; /* field 22, starttime in clock ticks since boot */
};

/* -ESRCH when the process is gone (or its stat cannot be read); *ret is zeroed then. */
int dom_proc_stat(pid_t pid, struct dom_proc_stat *ret);

/* False for a zombie too: PID 1 of a container host or a test namespace may never reap
 * it, and a zombie has exited (it may stay in state Z for a second or two). */
bool dom_proc_stat_alive(const struct dom_proc_stat *st);

/* dom_proc_stat and dom_proc_stat_alive in one. */
bool dom_proc_alive(pid_t pid);

/* ---- identity ---------------------------------------------------------------------------- */

/* What makes a process the one the agent started, beyond its command line (which any
 * user can give a process of their own): its PID and start time, its credentials and the
 * binary it runs. Kept in a record file the agent writes (root's, in a directory only
 * root can write) and compared with /proc before a process is adopted or signalled. */
struct dom_proc_ident {
        pid_t pid;
        uint64_t start;   /* /proc/PID/stat field 22; 0 in a wanted identity: not compared */
        uid_t ruid, euid; /* /proc/PID/status Uid: real, effective */
        gid_t rgid, egid; /* /proc/PID/status Gid: real, effective */
        uint64_t exe_dev; /* the file /proc/PID/exe is (st_dev, st_ino) */
        uint64_t exe_ino;
};

/* What /proc says of pid now. -ESRCH when it is gone or a zombie (a zombie has no exe). */
int dom_proc_ident_read(pid_t pid, struct dom_proc_ident *ret);

/* st_dev and st_ino of the program binary (symlinks followed; a name without '/' is looked
 * up in the PATH that drivers/cmd.c gives children). -errno when there is none. */
int dom_proc_binary_id(const char *binary, uint64_t *ret_dev, uint64_t *ret_ino);

/* 0 when pid's identity is want's (want->start 0: the start time is not compared);
 * -EPERM when it is not, with *ret_why (caller frees) saying how for a message: "runs as
 * uid 65534 gid 65534, exe /usr/bin/python3"; -ESRCH when the process is gone; -ENOMEM. */
int dom_proc_ident_check(pid_t pid, const struct dom_proc_ident *want, char **ret_why);

/* The record: one line, written atomically, mode 0600. */
int dom_proc_ident_write(const char *path, const struct dom_proc_ident *id);
/* 0 with ret->pid 0 when there is no record; -EPERM when the file is not a regular file of
 * the agent's own that only it can write (then it is no record of ours); -EINVAL for
 * garbage. */
int dom_proc_ident_load(const char *path, struct dom_proc_ident *ret);

/* ---- pidfiles --------------------------------------------------------------------------- */

/* 0 with *ret 0 when there is no pidfile; -EINVAL for garbage (not a PID from 2 up). */
int dom_proc_read_pidfile(const char *path, pid_t *ret);
/* "N\n", written to a temporary name and renamed. */
int dom_proc_write_u64(const char *path, uint64_t v);
int dom_proc_write_pidfile(const char *path, pid_t pid);
/* unlink(2) that logs at debug anything but "not there". */
void dom_proc_unlink_quiet(const char *path);

/* ---- exits -------------------------------------------------------------------------------- */

/* Reaps pid when it is our child and has exited; *ret_status (may be NULL) gets its wait
 * status. False when it is not our child or has not exited yet. Never blocks. */
bool dom_proc_reap(pid_t pid, int *ret_status);

/* Like dom_proc_reap, for a child on its way out (its command line is gone already, it is
 * not a zombie yet): waits up to DOM_PROC_REAP_WAIT_MSEC for it. */
bool dom_proc_reap_dying(pid_t pid, int *ret_status);

/* True when the process exited (or is a zombie) before timeout_usec passed. fd: a pidfd
 * of pid, or -1 (then /proc/PID/stat every 10 ms). */
bool dom_proc_wait_exit(int fd, pid_t pid, uint64_t timeout_usec);

/* Sends sig through the pidfd fd (only the process it pins), or by PID when fd is -1. A
 * process that is gone already is no error; else -errno. */
int dom_proc_signal(int fd, pid_t pid, int sig);

/* SIGKILL, wait up to timeout_usec, reap when it is our child: for a process just spawned
 * by a start that failed. -ETIMEDOUT when it does not die. */
int dom_proc_kill_reap(int fd, pid_t pid, uint64_t timeout_usec);

/* ---- a domain's busy flag ------------------------------------------------------------- */

/* Part of a driver's per-domain record, guarded by the driver's own lock. */
struct dom_proc_busy {
        bool busy;       /* a start or stop runs: observe only reads */
        bool exit_clean; /* the last exit was clean: reported until the next start or stop */
};

/* Marks the domain busy for a start or stop (and forgets what the last exit said);
 * -EBUSY when one runs already. */
int dom_proc_busy_begin(struct dom_proc_busy *b, pthread_mutex_t *lock);
void dom_proc_busy_end(struct dom_proc_busy *b, pthread_mutex_t *lock);
