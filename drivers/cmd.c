/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command runner of drivers/cmd.h: posix_spawn with a reduced environment,
 * captured output, a timeout enforced with SIGTERM then SIGKILL, errors that carry argv. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

#define CMD_DEFAULT_GRACE_USEC (2 * USEC_PER_SEC)
/* Without a pidfd the loop has to look for the child's exit by itself. */
#define CMD_POLL_FALLBACK_MSEC 10
#define CMD_READ_CHUNK         16384
/* At most this many lines of stderr go into the one-line error message. */
#define CMD_MSG_LINES 3
#define CMD_MSG_MAX   512

static const char *const passthrough_env[] = {CMD_PASSTHROUGH_ENV};

/* ---- argv as text ------------------------------------------------------------------ */

static bool is_safe_char(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("@%+=:,./_-", c) != NULL;
}

/* Quotes like a POSIX shell would need, so a logged command can be pasted; control
 * characters use bash's $'...' form so that the result stays on one line. */
static void quote_arg(struct buf *b, const char *s) {
        bool plain = *s != '\0', control = false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (!is_safe_char(*p))
                        plain = false;
                if (*p < 0x20 || *p == 0x7f)
                        control = true;
        }
        if (plain) {
                buf_puts(b, s);
                return;
        }
        if (!control) {
                buf_putc(b, '\'');
                for (const char *p = s; *p; p++) {
                        if (*p == '\'')
                                buf_puts(b, "'\\''");
                        else
                                buf_putc(b, *p);
                }
                buf_putc(b, '\'');
                return;
        }
        buf_puts(b, "$'");
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '\n':
                        buf_puts(b, "\\n");
                        break;
                case '\t':
                        buf_puts(b, "\\t");
                        break;
                case '\r':
                        buf_puts(b, "\\r");
                        break;
                case '\'':
                        buf_puts(b, "\\'");
                        break;
                case '\\':
                        buf_puts(b, "\\\\");
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                buf_printf(b, "\\x%02x", *p);
                        else
                                buf_putc(b, (char)*p);
                }
        }
        buf_putc(b, '\'');
}

char *cmd_argv_string(char *const argv[]) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0)
                        buf_putc(&b, ' ');
                quote_arg(&b, argv[i]);
        }
        return buf_steal(&b);
}

/* ---- environment and executable lookup ------------------------------------------- */

/* Adds "NAME=value", replacing an entry of the same name. */
static int env_put(char ***env, const char *entry) {
        const char *eq = strchr(entry, '=');
        if (!eq || eq == entry)
                return -EINVAL;
        size_t n = (size_t)(eq - entry) + 1;
        for (size_t i = 0; *env && (*env)[i]; i++)
                if (strncmp((*env)[i], entry, n) == 0) {
                        char *c = strdup(entry);
                        if (!c)
                                return -ENOMEM;
                        free((*env)[i]);
                        (*env)[i] = c;
                        return 0;
                }
        return strv_push(env, entry);
}

static int build_env(char *const *extra, char ***ret, struct dv_error *err) {
        _cleanup_strv_free_ char **env = NULL;
        if (strv_push(&env, "PATH=" CMD_DEFAULT_PATH) < 0 || strv_push(&env, "LC_ALL=C") < 0)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(passthrough_env); i++) {
                /* The agent never changes its environment once threads run, so getenv is safe. */
                const char *v = getenv(passthrough_env[i]);
                if (v && strv_pushf(&env, "%s=%s", passthrough_env[i], v) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; extra && extra[i]; i++) {
                int r = env_put(&env, extra[i]);
                if (r == -EINVAL)
                        return dv_error_add(err, r, 0, "invalid environment entry '%s'", extra[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static const char *env_get(char *const *env, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

/* execvp's rules with the child's PATH: the first executable regular file wins;
 * EACCES when only non-executable candidates exist. Empty PATH elements (the
 * current directory) are skipped on purpose. */
static int find_executable(const char *name, char *const *env, char **ret) {
        if (strchr(name, '/')) {
                char *c = strdup(name);
                if (!c)
                        return -ENOMEM;
                *ret = c;
                return 0;
        }
        const char *path = env_get(env, "PATH");
        if (!path)
                path = CMD_DEFAULT_PATH;
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        int r = -ENOENT;
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = path_join(d, name);
                if (!p)
                        return -ENOMEM;
                struct stat st;
                if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (access(p, X_OK) < 0) {
                        r = -EACCES;
                        continue;
                }
                *ret = TAKE_PTR(p);
                return 0;
        }
        return r;
}

/* ---- spawning ------------------------------------------------------------------------ */

/* Keeps our descriptors off 0..2 so that the child's dup2 calls cannot clobber
 * each other even when the agent runs with a standard descriptor closed. */
static int fd_above_stdio(int fd) {
        if (fd < 0 || fd > STDERR_FILENO)
                return fd;
        int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int r = n < 0 ? -errno : n;
        close(fd);
        return r;
}

static int make_pipe(int p[2]) {
        p[0] = p[1] = -1;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        fds[0] = fd_above_stdio(fds[0]);
        fds[1] = fd_above_stdio(fds[1]);
        if (fds[0] < 0 || fds[1] < 0) {
                int r = fds[0] < 0 ? fds[0] : fds[1];
                if (fds[0] >= 0)
                        close(fds[0]);
                if (fds[1] >= 0)
                        close(fds[1]);
                return r;
        }
        p[0] = fds[0];
        p[1] = fds[1];
        return 0;
}

static int open_devnull(int flags) {
        int fd = open("/dev/null", flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd_above_stdio(fd);
}

static void set_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
                (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* posix_spawn reports exec failures as its return value (glibc uses CLONE_VFORK),
 * runs only async-signal-safe code in the child and is safe in a threaded program.
 * The child gets fds 0..2 and nothing else, an empty signal mask and default
 * dispositions (the agent may block or ignore signals for itself). */
/* pass[k] becomes descriptor 3 + k in the child; nothing else above stderr survives. Every
 * pass[k] must be above 2 + n_pass (the caller moves them there), so no dup2 overwrites a
 * descriptor a later one still reads. */
static int spawn_child(const char *path, char *const argv[], char *const envp[], int fd0, int fd1,
                       int fd2, const int *pass, size_t n_pass, bool new_session, pid_t *ret) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        sigset_t mask, def;
        sigemptyset(&mask);
        sigfillset(&def);
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                      (new_session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP);
        if ((r = posix_spawn_file_actions_adddup2(&fa, fd0, STDIN_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, fd1, STDOUT_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, fd2, STDERR_FILENO)) == 0) {
                for (size_t k = 0; r == 0 && k < n_pass; k++)
                        r = posix_spawn_file_actions_adddup2(&fa, pass[k],
                                                             STDERR_FILENO + 1 + (int)k);
        }
        if (r == 0 &&
            (r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1 + (int)n_pass)) ==
                    0 &&
            (r = posix_spawnattr_setflags(&attr, flags)) == 0 &&
            (r = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
            (r = posix_spawnattr_setsigmask(&attr, &mask)) == 0 &&
            (r = posix_spawnattr_setsigdefault(&attr, &def)) == 0) {
                pid_t pid = 0;
                r = posix_spawn(&pid, path, &fa, &attr, argv, envp);
                if (r == 0)
                        *ret = pid;
        }
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

/* Checks the argv and prepares environment and executable; shared by both entry points. */
int cmd_find_program(const char *name, char **ret) {
        char *const env[] = {NULL};
        return find_executable(name, env, ret);
}

static int prepare(char *const argv[], char *const *extra_env, char ***ret_env, char **ret_path,
                   struct dv_error *err) {
        if (!argv || !argv[0] || !argv[0][0])
                return dv_error_add(err, -EINVAL, 0, "empty command line");
        _cleanup_strv_free_ char **env = NULL;
        int r = build_env(extra_env, &env, err);
        if (r < 0)
                return r == -ENOMEM ? dv_error_oom(err) : r;
        if (log_get_max_level() >= LOG_DEBUG) {
                _cleanup_free_ char *line = cmd_argv_string(argv);
                log_debug("running %s", strna(line));
        }
        _cleanup_free_ char *path = NULL;
        r = find_executable(argv[0], env, &path);
        if (r < 0) {
                _cleanup_free_ char *line = cmd_argv_string(argv);
                dv_error_set_command(err, line, NULL);
                return dv_error_add(err, r, 0, "cannot run %s: %s", argv[0], strerror(-r));
        }
        *ret_env = TAKE_PTR(env);
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* ---- cmd_run ---------------------------------------------------------------------------- */

struct tail {
        char data[CMD_STDERR_TAIL];
        size_t len;
};

static void tail_append(struct tail *t, const char *p, size_t n) {
        if (n >= sizeof(t->data)) {
                memcpy(t->data, p + n - sizeof(t->data), sizeof(t->data));
                t->len = sizeof(t->data);
        } else if (t->len + n > sizeof(t->data)) {
                size_t keep = sizeof(t->data) - n;
                memmove(t->data, t->data + t->len - keep, keep);
                memcpy(t->data + keep, p, n);
                t->len = sizeof(t->data);
        } else {
                memcpy(t->data + t->len, p, n);
                t->len += n;
        }
}

struct run_state {
        int out_fd, err_fd, in_fd, pidfd;
        pid_t pid;
        const char *in_data;
        size_t in_left;
        struct buf out;
        size_t max_output;
        bool out_truncated;
        struct tail err;
        bool exited;
        bool status_lost; /* reaped by someone else */
        int status;
};

/* Reads what is available; closes the fd at end of file or on error. */
static void drain_fd(struct run_state *s, int *fd, bool is_stdout) {
        char chunk[CMD_READ_CHUNK];
        while (*fd >= 0) {
                ssize_t n = read(*fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        close(*fd);
                        *fd = -1;
                        return;
                }
                if (!is_stdout) {
                        tail_append(&s->err, chunk, (size_t)n);
                        continue;
                }
                size_t room = s->max_output > s->out.len ? s->max_output - s->out.len : 0;
                size_t take = MIN(room, (size_t)n);
                if (take > 0)
                        buf_putn(&s->out, chunk, take);
                if (take < (size_t)n)
                        s->out_truncated = true; /* the rest is read and dropped */
        }
}

static void feed_stdin(struct run_state *s) {
        while (s->in_fd >= 0 && s->in_left > 0) {
                ssize_t n = write(s->in_fd, s->in_data, MIN(s->in_left, (size_t)65536));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) /* EPIPE: the child does not want the rest */
                        break;
                s->in_data += n;
                s->in_left -= (size_t)n;
        }
        if (s->in_fd >= 0) {
                close(s->in_fd);
                s->in_fd = -1;
        }
}

static void check_exited(struct run_state *s) {
        if (s->exited)
                return;
        for (;;) {
                int status = 0;
                pid_t p = waitpid(s->pid, &status, WNOHANG);
                if (p < 0 && errno == EINTR)
                        continue;
                if (p == s->pid) {
                        s->exited = true;
                        s->status = status;
                } else if (p < 0) {
                        /* ECHILD: someone reaped it behind our back (SIGCHLD ignored or
                         * waitpid(-1) elsewhere); its status is lost. */
                        s->exited = true;
                        s->status_lost = true;
                }
                return;
        }
}

/* The whole process group, so that helpers the child started go too; the child
 * itself as well in case it moved to another group. */
static void kill_child(const struct run_state *s, int sig) {
        if (s->exited)
                return;
        (void)kill(-s->pid, sig);
        (void)kill(s->pid, sig);
}

static void run_loop(struct run_state *s, uint64_t timeout, uint64_t grace, bool *timed_out) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout;
        int stage = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
        while (!s->exited) {
                struct pollfd p[4];
                int *which[4];
                nfds_t n = 0;
                if (s->out_fd >= 0) {
                        p[n] = (struct pollfd){.fd = s->out_fd, .events = POLLIN};
                        which[n++] = &s->out_fd;
                }
                if (s->err_fd >= 0) {
                        p[n] = (struct pollfd){.fd = s->err_fd, .events = POLLIN};
                        which[n++] = &s->err_fd;
                }
                if (s->in_fd >= 0) {
                        p[n] = (struct pollfd){.fd = s->in_fd, .events = POLLOUT};
                        which[n++] = &s->in_fd;
                }
                if (s->pidfd >= 0) {
                        p[n] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
                        which[n++] = &s->pidfd;
                }
                int ms = -1;
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (stage < 2) {
                        uint64_t left = deadline > now ? deadline - now : 0;
                        ms = (int)MIN((left + USEC_PER_MSEC - 1) / USEC_PER_MSEC,
                                      (uint64_t)INT_MAX);
                }
                if (s->pidfd < 0 && (ms < 0 || ms > CMD_POLL_FALLBACK_MSEC))
                        ms = CMD_POLL_FALLBACK_MSEC;
                int k = poll(p, n, ms);
                if (k < 0 && errno != EINTR)
                        break; /* cannot happen with valid fds; the wait below still reaps */
                for (nfds_t i = 0; k > 0 && i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        if (which[i] == &s->out_fd)
                                drain_fd(s, &s->out_fd, true);
                        else if (which[i] == &s->err_fd)
                                drain_fd(s, &s->err_fd, false);
                        else if (which[i] == &s->in_fd)
                                feed_stdin(s);
                }
                check_exited(s);
                if (s->exited)
                        break;
                now = now_usec(CLOCK_MONOTONIC);
                if (stage < 2 && now >= deadline) {
                        *timed_out = true;
                        if (stage == 0) {
                                kill_child(s, SIGTERM);
                                deadline = now + grace;
                        } else
                                kill_child(s, SIGKILL);
                        stage++;
                }
        }
        if (!s->exited) {
                /* Only after poll failed: wait for the child itself. */
                int status = 0;
                while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
                        ;
                s->exited = true;
                s->status = status;
        }
        /* What the child wrote before it exited is in the pipes; descendants that
         * still hold them are not waited for. */
        if (s->out_fd >= 0)
                drain_fd(s, &s->out_fd, true);
        if (s->err_fd >= 0)
                drain_fd(s, &s->err_fd, false);
}

/* The last few non-empty lines of stderr on one line, control characters replaced. */
static char *stderr_summary(const char *tail) {
        size_t len = strlen(tail);
        const char *lines[CMD_MSG_LINES];
        size_t lens[CMD_MSG_LINES], n = 0, total = 0;
        size_t end = len;
        while (end > 0 && n < CMD_MSG_LINES) {
                size_t start = end;
                while (start > 0 && tail[start - 1] != '\n')
                        start--;
                size_t a = start, b = end;
                while (a < b && (tail[a] == ' ' || tail[a] == '\t' || tail[a] == '\r'))
                        a++;
                while (b > a && (tail[b - 1] == ' ' || tail[b - 1] == '\t' || tail[b - 1] == '\r'))
                        b--;
                if (b > a) {
                        if (n > 0 && total + (b - a) > CMD_MSG_MAX)
                                break;
                        lines[n] = tail + a;
                        lens[n] = b - a;
                        total += b - a;
                        n++;
                }
                end = start > 0 ? start - 1 : 0;
        }
        struct buf b = BUF_INIT;
        buf_puts(&b, "");
        for (size_t i = n; i > 0; i--) {
                if (i < n)
                        buf_puts(&b, "; ");
                size_t l = MIN(lens[i - 1], (size_t)CMD_MSG_MAX);
                for (size_t j = 0; j < l; j++) {
                        unsigned char c = (unsigned char)lines[i - 1][j];
                        buf_putc(&b, c < 0x20 || c == 0x7f ? '?' : (char)c);
                }
        }
        return buf_steal(&b);
}

/* For err->stderr_tail: printable, keeps newlines and tabs. */
static char *sanitize_tail(const char *tail) {
        char *c = strdup(tail);
        for (char *p = c; p && *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                        *p = '?';
        return c;
}

static int report(char *const argv[], const struct cmd_result *res, uint64_t timeout,
                  bool allow_nonzero, struct dv_error *err) {
        int r;
        if (res->timed_out) {
                char d[32];
                r = dv_error_add(err, -ETIMEDOUT, 0, "%s timed out after %s", argv[0],
                                 format_duration(d, timeout));
        } else if (res->term_signal > 0)
                r = dv_error_add(err, -EIO, 0, "%s was killed by signal %d", argv[0],
                                 res->term_signal);
        else if (res->exit_status < 0)
                r = dv_error_add(err, -ECHILD, 0, "%s: exit status lost (reaped elsewhere)",
                                 argv[0]);
        else if (res->exit_status != 0 && !allow_nonzero) {
                _cleanup_free_ char *msg = stderr_summary(res->err_tail);
                if (msg && *msg)
                        r = dv_error_add(err, -EIO, 0, "%s failed (exit status %d): %s", argv[0],
                                         res->exit_status, msg);
                else
                        r = dv_error_add(err, -EIO, 0, "%s failed (exit status %d)", argv[0],
                                         res->exit_status);
        } else
                return 0;
        _cleanup_free_ char *line = cmd_argv_string(argv);
        _cleanup_free_ char *t = sanitize_tail(res->err_tail);
        dv_error_set_command(err, line, t);
        return r;
}

int cmd_run(char *const argv[], const struct cmd_opts *opts, struct cmd_result *res,
            struct dv_error *err) {
        static const struct cmd_opts no_opts = {0};
        struct cmd_result local = {0};
        if (!res)
                res = &local;
        *res = (struct cmd_result){0};
        if (!opts)
                opts = &no_opts;
        uint64_t timeout = opts->timeout_usec ? opts->timeout_usec : CMD_DEFAULT_TIMEOUT_USEC;
        uint64_t grace = opts->kill_grace_usec ? opts->kill_grace_usec : CMD_DEFAULT_GRACE_USEC;

        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *path = NULL;
        int r = prepare(argv, opts->extra_env, &env, &path, err);
        if (r < 0)
                return r;

        _cleanup_close_ int in_r = -1, in_w = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
        int p[2];
        if ((r = make_pipe(p)) < 0)
                goto fail_setup;
        out_r = p[0], out_w = p[1];
        if ((r = make_pipe(p)) < 0)
                goto fail_setup;
        err_r = p[0], err_w = p[1];
        if (opts->stdin_data) {
                if ((r = make_pipe(p)) < 0)
                        goto fail_setup;
                in_r = p[0], in_w = p[1];
                set_nonblock(in_w);
        } else if ((in_r = open_devnull(O_RDONLY)) < 0) {
                r = in_r;
                goto fail_setup;
        }
        set_nonblock(out_r);
        set_nonblock(err_r);

        /* A child that exits without reading its stdin makes our write raise
         * SIGPIPE, which is directed at this thread: block it here and take it
         * back off the pending set afterwards, whatever the agent's disposition. */
        sigset_t pipe_set, old_mask;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        bool pipe_was_pending = false;
        if (opts->stdin_data) {
                pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
                sigset_t pending;
                if (sigpending(&pending) == 0)
                        pipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
        }

        uint64_t start = now_usec(CLOCK_MONOTONIC);
        pid_t pid = 0;
        r = spawn_child(path, argv, env, in_r, out_w, err_w, NULL, 0, false, &pid);
        if (r < 0) {
                if (opts->stdin_data)
                        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
                _cleanup_free_ char *line = cmd_argv_string(argv);
                dv_error_set_command(err, line, NULL);
                return dv_error_add(err, r, 0, "cannot run %s: %s", argv[0], strerror(-r));
        }
        /* The child's ends: EOF on stdout/stderr must mean the child closed them. */
        close(TAKE_FD(in_r));
        close(TAKE_FD(out_w));
        close(TAKE_FD(err_w));

        struct run_state s = {
                .out_fd = TAKE_FD(out_r),
                .err_fd = TAKE_FD(err_r),
                .in_fd = TAKE_FD(in_w),
                .pidfd = pidfd_open(pid, 0), /* may be -1 (old kernel): the loop then polls */
                .pid = pid,
                .in_data = opts->stdin_data,
                .in_left = opts->stdin_data ? opts->stdin_len : 0,
                .max_output = opts->max_output ? opts->max_output : CMD_DEFAULT_MAX_OUTPUT,
        };
        if (s.pidfd >= 0)
                (void)fcntl(s.pidfd, F_SETFD, FD_CLOEXEC);
        if (s.in_fd >= 0 && s.in_left == 0)
                feed_stdin(&s); /* empty data: EOF at once */

        bool timed_out = false;
        run_loop(&s, timeout, grace, &timed_out);
        if (s.out_fd >= 0)
                close(s.out_fd);
        if (s.err_fd >= 0)
                close(s.err_fd);
        if (s.in_fd >= 0)
                close(s.in_fd);
        if (s.pidfd >= 0)
                close(s.pidfd);

        if (opts->stdin_data) {
                sigset_t pending;
                if (!pipe_was_pending && sigpending(&pending) == 0 &&
                    sigismember(&pending, SIGPIPE) == 1) {
                        struct timespec zero = {0};
                        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                                ;
                }
                pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        }

        res->duration_usec = now_usec(CLOCK_MONOTONIC) - start;
        res->timed_out = timed_out;
        if (s.status_lost)
                res->exit_status = -1;
        else if (WIFSIGNALED(s.status)) {
                res->exit_status = -1;
                res->term_signal = WTERMSIG(s.status);
        } else
                res->exit_status = WEXITSTATUS(s.status);
        buf_puts(&s.out, ""); /* an empty output is "" rather than NULL */
        res->out_len = s.out.len;
        res->out = buf_steal(&s.out);
        res->err_tail = strndup(s.err.data, s.err.len);
        if (!res->out || !res->err_tail) {
                cmd_result_done(res);
                return dv_error_oom(err);
        }
        log_debug("%s: exit status %d, signal %d%s%s, %zu bytes of output, %" PRIu64 " us", argv[0],
                  res->exit_status, res->term_signal, timed_out ? ", timed out" : "",
                  s.out_truncated ? " (truncated)" : "", res->out_len, res->duration_usec);

        r = report(argv, res, timeout, opts->allow_nonzero, err);
        cmd_result_done(&local);
        return r;

fail_setup:
        return dv_error_add(err, r, 0, "cannot run %s: %s", argv[0], strerror(-r));
}

void cmd_result_done(struct cmd_result *res) {
        if (!res)
                return;
        free(res->out);
        free(res->err_tail);
        *res = (struct cmd_result){0};
}

/* ---- cmd_spawn_detached -------------------------------------------------------------- */

/* What the child of spawn_child_as reports through its pipe when it cannot exec: the step
 * that failed, its errno and, for the jail, the entry. */
enum as_step {
        AS_STEP_FDS,
        AS_STEP_SESSION,
        AS_STEP_CGROUP,
        AS_STEP_JAIL,
        AS_STEP_JAIL_ENTRY,
        AS_STEP_CAPS,
        AS_STEP_IDS,
        AS_STEP_EXEC
};
struct as_report {
        int step, err, index;
};

static const char *as_step_text(int step) {
        switch (step) {
        case AS_STEP_FDS:
                return "cannot set up its descriptors";
        case AS_STEP_SESSION:
                return "cannot start a session";
        case AS_STEP_CGROUP:
                return "cannot join its cgroup";
        case AS_STEP_JAIL:
                return "cannot set up its jail";
        case AS_STEP_CAPS:
                return "cannot drop its capabilities";
        case AS_STEP_IDS:
                return "cannot take its user and group";
        default:
                return "cannot run";
        }
}

static _Noreturn void as_fail_at(int report_fd, int step, int e, int index) {
        struct as_report rep = {step, e, index};
        (void)!write(report_fd, &rep, sizeof(rep));
        _exit(127);
}

static _Noreturn void as_fail(int report_fd, int step, int e) {
        as_fail_at(report_fd, step, e, -1);
}

/* ---- jails ------------------------------------------------------------------------------ */

void cmd_jail_done(struct cmd_jail *j) {
        if (!j)
                return;
        for (size_t k = 0; k < j->n; k++) {
                free(j->entries[k].src);
                free(j->entries[k].dst);
        }
        free(j->entries);
        free(j->mountpoint);
        *j = (struct cmd_jail){0};
}

static struct cmd_jail_entry *jail_find(struct cmd_jail *j, const char *dst) {
        for (size_t k = 0; k < j->n; k++)
                if (streq(j->entries[k].dst, dst))
                        return &j->entries[k];
        return NULL;
}

/* True when dst lies below a directory bound whole: the bind already shows it. */
static bool jail_covered(const struct cmd_jail *j, const char *dst) {
        for (size_t k = 0; k < j->n; k++) {
                const struct cmd_jail_entry *e = &j->entries[k];
                size_t n = strlen(e->dst);
                if (e->kind == CMD_JAIL_DIR && strncmp(dst, e->dst, n) == 0 && dst[n] == '/')
                        return true;
        }
        return false;
}

static int jail_push(struct cmd_jail *j, enum cmd_jail_kind kind, const char *src, const char *dst,
                     size_t dst_len, bool writable, bool device) {
        struct cmd_jail_entry *e = reallocarray(j->entries, j->n + 1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        j->entries = e;
        e = &j->entries[j->n];
        *e = (struct cmd_jail_entry){.kind = kind, .writable = writable, .device = device};
        e->dst = strndup(dst, dst_len);
        e->src = src ? strdup(src) : NULL;
        if (!e->dst || (src && !e->src)) {
                free(e->dst);
                free(e->src);
                return -ENOMEM;
        }
        j->n++;
        return 0;
}

int cmd_jail_bind(struct cmd_jail *j, const char *path, bool writable) {
        if (!path || path[0] != '/' || strstr(path, "/../") || strstr(path, "/./") ||
            str_ends_with(path, "/..") || str_ends_with(path, "/.") || strstr(path, "//"))
                return -EINVAL;
        const char *dst = path + 1;
        if (!*dst || jail_find(j, dst) || jail_covered(j, dst))
                return 0;
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        enum cmd_jail_kind kind;
        bool device = false;
        if (S_ISDIR(st.st_mode))
                kind = CMD_JAIL_DIR;
        else if (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode))
                kind = CMD_JAIL_FILE;
        else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
                kind = CMD_JAIL_FILE, device = true;
        else
                return -EINVAL;
        /* The directories above it, outermost first, so that the child's mkdirs find
         * their parents. */
        for (const char *slash = strchr(dst, '/'); slash; slash = strchr(slash + 1, '/')) {
                _cleanup_free_ char *dir = strndup(dst, (size_t)(slash - dst));
                if (!dir)
                        return -ENOMEM;
                if (jail_find(j, dir))
                        continue;
                int r = jail_push(j, CMD_JAIL_MKDIR, NULL, dir, strlen(dir), false, false);
                if (r < 0)
                        return r;
        }
        return jail_push(j, kind, path, dst, strlen(dst), writable, device);
}

/* In the child, after fork (async-signal-safe system calls only): the steps of the
 * header's comment. The tmpfs is nodev, noexec and nosuid; each bind mount gets its own
 * flags (libraries must stay executable, device nodes usable). */
static void jail_enter(int rfd, const struct cmd_jail *j) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", j->mountpoint, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0755,size=1m") < 0 ||
            chdir(j->mountpoint) < 0)
                as_fail(rfd, AS_STEP_JAIL, errno);
        for (size_t k = 0; k < j->n; k++) {
                const struct cmd_jail_entry *e = &j->entries[k];
                if (e->kind != CMD_JAIL_FILE) {
                        if (mkdir(e->dst, 0755) < 0 && errno != EEXIST)
                                as_fail_at(rfd, AS_STEP_JAIL_ENTRY, errno, (int)k);
                } else {
                        int fd = open(e->dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                        if (fd < 0)
                                as_fail_at(rfd, AS_STEP_JAIL_ENTRY, errno, (int)k);
                        close(fd);
                }
                if (e->kind == CMD_JAIL_MKDIR)
                        continue;
                unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID;
                if (!e->writable)
                        flags |= MS_RDONLY;
                if (!e->device)
                        flags |= MS_NODEV;
                if (mount(e->src, e->dst, NULL, MS_BIND, NULL) < 0 ||
                    mount(NULL, e->dst, NULL, flags, NULL) < 0)
                        as_fail_at(rfd, AS_STEP_JAIL_ENTRY, errno, (int)k);
        }
        if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0 ||
            mount(NULL, "/", NULL,
                  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                as_fail(rfd, AS_STEP_JAIL, errno);
}

/* A fork (no shared memory, SIGCHLD at exit) whose child starts in the cgroup v2
 * directory cgroup_fd. -1 with errno when the kernel cannot (before 5.7: ENOSYS, E2BIG,
 * EINVAL), the caller then forks. In the child only system calls may follow (glibc's
 * fork handlers did not run). */
static pid_t clone_into_cgroup(int cgroup_fd) {
        struct clone_args a = {
                .flags = CLONE_INTO_CGROUP,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t)cgroup_fd,
        };
        return (pid_t)syscall(SYS_clone3, &a, sizeof(a));
}

/* spawn_child for a program that must not keep the agent's privileges: fork, then in
 * the child (async-signal-safe calls only, the agent has threads) the descriptors as
 * spawn_child sets them, a new session, and the credentials dropped for good: no
 * supplementary groups, gid and uid creds->gid/uid (real, effective and saved), an empty
 * bounding set, no ambient capabilities and no_new_privs, so that neither exec of a
 * set-uid file nor file capabilities can give any of it back. The bounding set is
 * emptied while still root (CAP_SETPCAP). A failure before exec is reported through a
 * CLOEXEC pipe: EOF on it means the exec happened. */
static int spawn_child_as(const char *path, char *const argv[], char *const envp[], int fd0,
                          int fd1, int fd2, const int *pass, size_t n_pass,
                          const struct cmd_creds *creds, pid_t *ret, int *ret_step,
                          int *ret_index) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        /* The running kernel may know more capabilities than the headers. */
        uint64_t v = CAP_LAST_CAP;
        if (read_u64_file("/proc/sys/kernel/cap_last_cap", 0, 63, &v) < 0)
                v = CAP_LAST_CAP;
        int last_cap = (int)v;
        pid_t pid = creds->cgroup_v2_fd > 2 ? clone_into_cgroup(creds->cgroup_v2_fd) : -1;
        bool join_v2 = creds->cgroup_v2_fd > 2 && pid < 0;
        if (pid < 0)
                pid = fork();
        if (pid < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        if (pid == 0) {
                /* The report pipe above every descriptor the dup2s below write. */
                int rfd = fcntl(p[1], F_DUPFD_CLOEXEC, 3 + (int)n_pass);
                if (rfd < 0)
                        _exit(127);
                int src[3] = {fd0, fd1, fd2};
                for (int k = 0; k < 3; k++)
                        if (dup2(src[k], k) < 0)
                                as_fail(rfd, AS_STEP_FDS, errno);
                for (size_t k = 0; k < n_pass; k++)
                        if (dup2(pass[k], 3 + (int)k) < 0)
                                as_fail(rfd, AS_STEP_FDS, errno);
                /* CLOEXEC rather than close: the report pipe must stay open should execve
                 * fail. */
                if (close_range(3 + (unsigned)n_pass, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                        as_fail(rfd, AS_STEP_FDS, errno);
                if (setsid() < 0)
                        as_fail(rfd, AS_STEP_SESSION, errno);
                struct sigaction dfl = {.sa_handler = SIG_DFL};
                for (int s = 1; s < NSIG; s++)
                        (void)sigaction(s, &dfl, NULL);
                sigset_t none;
                sigemptyset(&none);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                for (size_t k = 0; k < creds->n_cgroup_fds; k++)
                        if (write(creds->cgroup_fds[k], "0", 1) != 1)
                                as_fail(rfd, AS_STEP_CGROUP, errno);
                if (join_v2) {
                        int fd = openat(creds->cgroup_v2_fd, "cgroup.procs",
                                        O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0 || write(fd, "0", 1) != 1)
                                as_fail(rfd, AS_STEP_CGROUP, errno);
                        close(fd);
                }
                if (creds->jail)
                        jail_enter(rfd, creds->jail);
                for (int c = 0; c <= last_cap; c++)
                        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                                as_fail(rfd, AS_STEP_CAPS, errno);
                /* The system calls, not glibc's wrappers: after a raw clone3 glibc still
                 * believes the agent's threads are here and would signal them. */
                if (syscall(SYS_setgroups, 0, NULL) < 0 ||
                    syscall(SYS_setresgid, creds->gid, creds->gid, creds->gid) < 0 ||
                    syscall(SYS_setresuid, creds->uid, creds->uid, creds->uid) < 0)
                        as_fail(rfd, AS_STEP_IDS, errno);
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
                    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        as_fail(rfd, AS_STEP_CAPS, errno);
                execve(path, argv, envp);
                as_fail(rfd, AS_STEP_EXEC, errno);
        }
        close(p[1]);
        struct as_report rep = {0};
        ssize_t n;
        do
                n = read(p[0], &rep, sizeof(rep));
        while (n < 0 && errno == EINTR);
        close(p[0]);
        if (n == 0) {
                *ret = pid;
                return 0;
        }
        /* The child failed (or the read did): reap it, it exits at once. */
        (void)waitpid(pid, NULL, 0);
        if (n != (ssize_t)sizeof(rep))
                return n < 0 ? -errno : -EIO;
        *ret_step = rep.step;
        *ret_index = rep.index;
        return rep.err > 0 ? -rep.err : -EIO;
}

static int spawn_detached(char *const argv[], const char *path, char *const *env,
                          const char *log_path, const int *pass, size_t n_pass,
                          const struct cmd_creds *creds, pid_t *ret_pid, struct dv_error *err) {
        int r;
        _cleanup_close_ int null_fd = open_devnull(O_RDWR);
        if (null_fd < 0)
                return dv_error_add(err, null_fd, 0, "cannot open /dev/null: %s",
                                    strerror(-null_fd));
        _cleanup_close_ int log_fd = -1;
        if (log_path) {
                /* Root's only: QEMU's stderr may quote its command line. */
                log_fd = open_private_log(log_path);
                if (log_fd < 0) {
                        r = log_fd;
                        return dv_error_add(err, r, 0, "cannot open log file %s: %s", log_path,
                                            strerror(-r));
                }
                log_fd = fd_above_stdio(log_fd);
                if (log_fd < 0)
                        return dv_error_add(err, log_fd, 0, "cannot open log file %s: %s", log_path,
                                            strerror(-log_fd));
        }
        int out = log_fd >= 0 ? log_fd : null_fd;
        pid_t pid = 0;
        int step = AS_STEP_EXEC, index = -1;
        if (creds)
                r = spawn_child_as(path, argv, env, null_fd, out, out, pass, n_pass, creds, &pid,
                                   &step, &index);
        else
                r = spawn_child(path, argv, env, null_fd, out, out, pass, n_pass, true, &pid);
        if (r < 0) {
                _cleanup_free_ char *line = cmd_argv_string(argv);
                dv_error_set_command(err, line, NULL);
                if (creds && step == AS_STEP_JAIL_ENTRY && creds->jail && index >= 0 &&
                    (size_t)index < creds->jail->n)
                        return dv_error_add(
                                err, r, 0, "%s as uid %u gid %u: cannot bind %s into its jail: %s",
                                argv[0], (unsigned)creds->uid, (unsigned)creds->gid,
                                creds->jail->entries[index].src ? creds->jail->entries[index].src
                                                                : creds->jail->entries[index].dst,
                                strerror(-r));
                if (creds && step != AS_STEP_EXEC)
                        return dv_error_add(err, r, 0, "%s as uid %u gid %u: %s: %s", argv[0],
                                            (unsigned)creds->uid, (unsigned)creds->gid,
                                            as_step_text(step), strerror(-r));
                return dv_error_add(err, r, 0, "cannot run %s: %s", argv[0], strerror(-r));
        }
        if (creds)
                log_debug("%s started as PID %d, uid %u gid %u", argv[0], (int)pid,
                          (unsigned)creds->uid, (unsigned)creds->gid);
        else
                log_debug("%s started as PID %d", argv[0], (int)pid);
        if (ret_pid)
                *ret_pid = pid;
        return (int)pid;
}

int cmd_spawn_detached(char *const argv[], const char *log_path, char *const *extra_env,
                       pid_t *ret_pid, struct dv_error *err) {
        return cmd_spawn_detached_fds(argv, log_path, extra_env, NULL, 0, ret_pid, err);
}

int cmd_spawn_detached_fds(char *const argv[], const char *log_path, char *const *extra_env,
                           const int *fds, size_t n_fds, pid_t *ret_pid, struct dv_error *err) {
        return cmd_spawn_detached_as(argv, log_path, extra_env, fds, n_fds, NULL, ret_pid, err);
}

int cmd_spawn_detached_as(char *const argv[], const char *log_path, char *const *extra_env,
                          const int *fds, size_t n_fds, const struct cmd_creds *creds,
                          pid_t *ret_pid, struct dv_error *err) {
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *path = NULL;
        if (n_fds > CMD_PASS_FDS_MAX)
                return dv_error_add(err, -E2BIG, 0,
                                    "cannot pass %zu descriptors to %s (at most %d)", n_fds,
                                    argv && argv[0] ? argv[0] : "a program", CMD_PASS_FDS_MAX);
        int r = prepare(argv, extra_env, &env, &path, err);
        if (r < 0)
                return r;
        /* Copies above 2 + n_fds: the child's dup2 to 3.. then cannot clobber a source
         * that a later dup2 still needs, whatever numbers the caller's descriptors have. */
        int moved[CMD_PASS_FDS_MAX];
        size_t n_moved = 0;
        for (; n_moved < n_fds; n_moved++) {
                moved[n_moved] = fcntl(fds[n_moved], F_DUPFD_CLOEXEC, 3 + (int)n_fds);
                if (moved[n_moved] < 0) {
                        r = -errno;
                        break;
                }
        }
        if (r >= 0)
                r = spawn_detached(argv, path, env, log_path, moved, n_fds, creds, ret_pid, err);
        else
                r = dv_error_add(err, r, 0, "cannot pass descriptor %d to %s: %s", fds[n_moved],
                                 argv[0], strerror(-r));
        for (size_t k = 0; k < n_moved; k++)
                close(moved[k]);
        return r;
}
