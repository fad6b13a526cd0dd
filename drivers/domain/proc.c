/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The process helpers of drivers/domain/proc.h, shared by the QEMU and container drivers:
 * pidfiles, /proc/PID/stat, reaping, pidfd waits and signals, the busy flag. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/domain/proc.h"
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
