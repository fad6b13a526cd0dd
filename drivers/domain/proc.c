/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The process helpers of drivers/domain/proc.h, shared by the QEMU, container and dnsmasq
 * drivers: pidfiles, /proc/PID/stat, identity records, reaping, pidfd waits and signals,
 * the busy flag. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/domain/proc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/time.h"

/* How long one poll on a pidfd lasts before /proc is asked again (see wait_exit). */
#define WAIT_SLICE_MSEC 1000

int dom_proc_stat(pid_t pid, struct dom_proc_stat *ret) {
        char p[64];
        *ret = (struct dom_proc_stat){0};
        snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *stat = NULL;
        size_t len = 0;
        if (read_full_file(p, 4096, &stat, &len) < 0)
                return -ESRCH;
        /* The command name (field 2) may hold spaces and parentheses: fields start after
         * the last ')'. */
        const char *rp = strrchr(stat, ')');
        int ppid = 0;
        char st = 0;
        unsigned long long start = 0;
        /* Fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime. */
        if (!rp || sscanf(rp + 1,
                          " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                          "%*d %llu",
                          &st, &ppid, &start) != 3)
                return -ESRCH;
        ret->state = st;
        ret->ppid = (pid_t)ppid;
        ret->start = start;
        return 0;
}

bool dom_proc_stat_alive(const struct dom_proc_stat *st) {
        return st->state != 'Z' && st->state != 'X' && st->state != 'x' && st->state != 0;
}

bool dom_proc_alive(pid_t pid) {
        struct dom_proc_stat st;
        return dom_proc_stat(pid, &st) == 0 && dom_proc_stat_alive(&st);
}

/* "Uid:\tR\tE\tS\tF" (or Gid:) of /proc/PID/status: real and effective. */
static int status_ids(const char *status, const char *key, unsigned *ret_r, unsigned *ret_e) {
        for (const char *l = status; l && *l;) {
                if (strncmp(l, key, strlen(key)) == 0)
                        return sscanf(l + strlen(key), " %u %u", ret_r, ret_e) == 2 ? 0 : -EINVAL;
                l = strchr(l, '\n');
                l = l ? l + 1 : NULL;
        }
        return -EINVAL;
}

int dom_proc_ident_read(pid_t pid, struct dom_proc_ident *ret) {
        *ret = (struct dom_proc_ident){0};
        struct dom_proc_stat st;
        if (dom_proc_stat(pid, &st) < 0 || !dom_proc_stat_alive(&st))
                return -ESRCH;
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
        _cleanup_free_ char *status = NULL;
        size_t len = 0;
        unsigned ru, eu, rg, eg;
        if (read_full_file(p, 16384, &status, &len) < 0 ||
            status_ids(status, "Uid:", &ru, &eu) < 0 || status_ids(status, "Gid:", &rg, &eg) < 0)
                return -ESRCH;
        /* stat(2) follows the magic link to the very file the process runs, even when it
         * was deleted or replaced since (a package upgrade). */
        struct stat exe;
        snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
        if (stat(p, &exe) < 0)
                return -ESRCH;
        *ret = (struct dom_proc_ident){
                .pid = pid,
                .start = st.start,
                .ruid = ru,
                .euid = eu,
                .rgid = rg,
                .egid = eg,
                .exe_dev = (uint64_t)exe.st_dev,
                .exe_ino = (uint64_t)exe.st_ino,
        };
        return 0;
}

int dom_proc_binary_id(const char *binary, uint64_t *ret_dev, uint64_t *ret_ino) {
        struct stat st;
        int r = -ENOENT;
        if (!binary || !*binary)
                return -EINVAL;
        if (strchr(binary, '/'))
                r = stat(binary, &st) < 0 ? negative_errno() : 0;
        else {
                /* The first executable in the children's PATH, as cmd_run finds it. */
                const char *path = CMD_DEFAULT_PATH;
                for (const char *d = path; r < 0 && d;) {
                        const char *end = strchr(d, ':');
                        size_t n = end ? (size_t)(end - d) : strlen(d);
                        _cleanup_free_ char *f = strndup(d, n);
                        _cleanup_free_ char *full = f ? path_join(f, binary) : NULL;
                        if (!full)
                                return -ENOMEM;
                        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
                                r = 0;
                        d = end ? end + 1 : NULL;
                }
        }
        if (r < 0)
                return r;
        *ret_dev = (uint64_t)st.st_dev;
        *ret_ino = (uint64_t)st.st_ino;
        return 0;
}

int dom_proc_ident_check(pid_t pid, const struct dom_proc_ident *want, char **ret_why) {
        *ret_why = NULL;
        struct dom_proc_ident have;
        if (dom_proc_ident_read(pid, &have) < 0)
                return -ESRCH;
        struct buf b = BUF_INIT;
        const char *sep = "";
        if (have.ruid != want->ruid || have.euid != want->euid || have.rgid != want->rgid ||
            have.egid != want->egid) {
                if (have.ruid == have.euid && have.rgid == have.egid)
                        buf_printf(&b, "runs as uid %u gid %u", (unsigned)have.euid,
                                   (unsigned)have.egid);
                else
                        buf_printf(&b, "runs as uid %u (real %u) gid %u (real %u)",
                                   (unsigned)have.euid, (unsigned)have.ruid, (unsigned)have.egid,
                                   (unsigned)have.rgid);
                buf_printf(&b, " (declvirt gave it uid %u gid %u)", (unsigned)want->euid,
                           (unsigned)want->egid);
                sep = ", ";
        }
        if (have.exe_dev != want->exe_dev || have.exe_ino != want->exe_ino) {
                char p[64], exe[4096];
                snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
                ssize_t n = readlink(p, exe, sizeof(exe) - 1);
                exe[n > 0 ? n : 0] = '\0';
                /* Control characters of a file name stay out of messages. */
                for (char *c = exe; *c; c++)
                        if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                *c = '?';
                buf_printf(&b, "%sexe %s", sep, n > 0 ? exe : "(unreadable)");
                sep = ", ";
        }
        if (want->pid != pid)
                buf_printf(&b, "%sis not the recorded PID %d", sep, (int)want->pid);
        else if (want->start != 0 && have.start != want->start)
                buf_printf(&b,
                           "%sstarted at %" PRIu64 " (clock ticks since boot), not at %" PRIu64
                           " as the recorded process",
                           sep, have.start, want->start);
        if (b.len == 0 && !b.oom)
                return 0;
        *ret_why = buf_steal(&b);
        return *ret_why ? -EPERM : -ENOMEM;
}

int dom_proc_ident_write(const char *path, const struct dom_proc_ident *id) {
        char s[256];
        int n = snprintf(s, sizeof(s),
                         "pid=%d start=%" PRIu64 " uid=%u,%u gid=%u,%u exe=%" PRIu64 ":%" PRIu64
                         "\n",
                         (int)id->pid, id->start, (unsigned)id->ruid, (unsigned)id->euid,
                         (unsigned)id->rgid, (unsigned)id->egid, id->exe_dev, id->exe_ino);
        if (n < 0 || (size_t)n >= sizeof(s) || id->pid <= 0)
                return -EINVAL;
        return write_file_atomic(path, s, (size_t)n, 0600);
}

int dom_proc_ident_load(const char *path, struct dom_proc_ident *ret) {
        *ret = (struct dom_proc_ident){0};
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : errno == ELOOP ? -EPERM : negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0022))
                return -EPERM;
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        int r = read_full_fd(fd, 4096, &s, &len);
        if (r < 0)
                return r;
        int pid = 0;
        unsigned long long start = 0, dev = 0, ino = 0;
        unsigned ru, eu, rg, eg;
        int end = 0;
        if (sscanf(s, "pid=%d start=%llu uid=%u,%u gid=%u,%u exe=%llu:%llu%n", &pid, &start, &ru,
                   &eu, &rg, &eg, &dev, &ino, &end) != 8 ||
            pid < 2 || strspn(s + end, "\n") != strlen(s + end))
                return -EINVAL;
        *ret = (struct dom_proc_ident){
                .pid = pid,
                .start = start,
                .ruid = ru,
                .euid = eu,
                .rgid = rg,
                .egid = eg,
                .exe_dev = dev,
                .exe_ino = ino,
        };
        return 0;
}

int dom_proc_read_pidfile(const char *path, pid_t *ret) {
        uint64_t v = 0;
        *ret = 0;
        int r = read_u64_file(path, 2, INT32_MAX, &v);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return -EINVAL;
        *ret = (pid_t)v;
        return 0;
}

int dom_proc_write_u64(const char *path, uint64_t v) {
        char s[32];
        int n = snprintf(s, sizeof(s), "%" PRIu64 "\n", v);
        return write_file_atomic(path, s, (size_t)n, 0644);
}

int dom_proc_write_pidfile(const char *path, pid_t pid) {
        if (pid <= 0)
                return -EINVAL;
        return dom_proc_write_u64(path, (uint64_t)pid);
}

void dom_proc_unlink_quiet(const char *path) {
        if (unlink(path) < 0 && errno != ENOENT)
                log_debug("cannot remove %s: %m", path);
}

bool dom_proc_reap(pid_t pid, int *ret_status) {
        for (;;) {
                int status = 0;
                pid_t k = waitpid(pid, &status, WNOHANG);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k == pid) {
                        if (ret_status)
                                *ret_status = status;
                        return true;
                }
                return false;
        }
}

bool dom_proc_reap_dying(pid_t pid, int *ret_status) {
        if (dom_proc_reap(pid, ret_status))
                return true;
        _cleanup_close_ int fd = pidfd_open(pid, 0);
        if (fd < 0)
                return false;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, DOM_PROC_REAP_WAIT_MSEC) <= 0)
                return false;
        return dom_proc_reap(pid, ret_status);
}

bool dom_proc_wait_exit(int fd, pid_t pid, uint64_t timeout_usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        for (;;) {
                if (fd >= 0) {
                        struct pollfd pf = {.fd = fd, .events = POLLIN};
                        uint64_t now = now_usec(CLOCK_MONOTONIC);
                        int ms = now >= deadline
                                         ? 0
                                         : (int)MIN((deadline - now + 999) / 1000, WAIT_SLICE_MSEC);
                        int k = poll(&pf, 1, ms);
                        if (k > 0)
                                return true;
                        if (k < 0 && errno != EINTR)
                                fd = -1; /* the pidfd is useless: /proc from now on */
                } else {
                        if (!dom_proc_alive(pid))
                                return true;
                        (void)poll(NULL, 0, 10);
                }
                /* A zombie that nobody reaps counts as gone. */
                if (!dom_proc_alive(pid))
                        return true;
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return false;
        }
}

int dom_proc_signal(int fd, pid_t pid, int sig) {
        int r = fd >= 0 ? pidfd_send_signal(fd, sig, NULL, 0) : kill(pid, sig);
        return r < 0 && errno != ESRCH ? negative_errno() : 0;
}

int dom_proc_kill_reap(int fd, pid_t pid, uint64_t timeout_usec) {
        (void)dom_proc_signal(fd, pid, SIGKILL);
        int r = dom_proc_wait_exit(fd, pid, timeout_usec) ? 0 : -ETIMEDOUT;
        (void)dom_proc_reap(pid, NULL);
        return r;
}

int dom_proc_busy_begin(struct dom_proc_busy *b, pthread_mutex_t *lock) {
        pthread_mutex_lock(lock);
        int r = b->busy ? -EBUSY : 0;
        if (r == 0) {
                b->exit_clean = false; /* what the last exit said ends with a start or stop */
                b->busy = true;
        }
        pthread_mutex_unlock(lock);
        return r;
}

void dom_proc_busy_end(struct dom_proc_busy *b, pthread_mutex_t *lock) {
        pthread_mutex_lock(lock);
        b->busy = false;
        pthread_mutex_unlock(lock);
}
