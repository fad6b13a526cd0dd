/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The floor of `make bench-peers`: the end state of each work item made with the system calls
 * and tools only (mkdir, open, ftruncate, fallocate, qemu-img, qemu-system + QMP), timed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_PARALLEL_LIMIT 256 /* the agent's own limit for max_parallel */

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what) {
        fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
        exit(1);
}

static pid_t spawn(char **argv, const char *log) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) {
                errno = r;
                die(argv[0]);
        }
        return pid;
}

static void reap_ok(pid_t pid, const char *what) {
        int st;
        if (waitpid(pid, &st, 0) < 0)
                die("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "floor: %s failed (status 0x%x)\n", what, st);
                exit(1);
        }
}

/* pools DIR N CAPACITY QEMU_IMG PARALLEL: N directories (0711) with a sparse raw file (0600,
 * O_EXCL, ftruncate, no fallocate as allocation is 0, fsync) and a qcow2 made by qemu-img,
 * at most PARALLEL (the agent's max_parallel in the same run) qemu-img at once. Prints the
 * time in ms. */
static int cmd_pools(const char *dir, long n, long long capacity, const char *qemu_img,
                     int max_parallel) {
        char log[4096], cap[32];
        snprintf(log, sizeof(log), "%s/floor-qemu-img.log", dir);
        snprintf(cap, sizeof(cap), "%lld", capacity);
        pid_t running[MAX_PARALLEL_LIMIT];
        int nrun = 0;
        double t0 = now_ms();
        for (long i = 0; i < n; i++) {
                char p[4096], f[4200], q[4200];
                snprintf(p, sizeof(p), "%s/fp%ld", dir, i);
                if (mkdir(p, 0711) < 0)
                        die(p);
                snprintf(f, sizeof(f), "%s/v.raw", p);
                int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0)
                        die(f);
                if (ftruncate(fd, capacity) < 0 || fsync(fd) < 0)
                        die(f);
                close(fd);
                snprintf(q, sizeof(q), "%s/v.qcow2", p);
                if (nrun == max_parallel) {
                        pid_t done = wait(NULL);
                        for (int j = 0; j < nrun; j++)
                                if (running[j] == done) {
                                        running[j] = running[--nrun];
                                        break;
                                }
                }
                char *argv[] = {(char *)qemu_img, "create", "-q", "-f", "qcow2", "-o",
                                "compat=1.1",     q,        cap,  NULL};
                running[nrun++] = spawn(argv, log);
        }
        for (int j = 0; j < nrun; j++)
                reap_ok(running[j], "qemu-img");
        printf("%.3f\n", now_ms() - t0);
        return 0;
}

/* ---- a minimal QMP client ----------------------------------------------------------------- */

struct qmp {
        int fd;
        char buf[65536];
        size_t len;
};

/* Reads until a line containing want (or "error") arrives; events are skipped. */
static int qmp_read_until(struct qmp *q, const char *want, int timeout_ms) {
        double end = now_ms() + timeout_ms;
        for (;;) {
                char *nl;
                while ((nl = memchr(q->buf, '\n', q->len))) {
                        *nl = '\0';
                        bool hit = strstr(q->buf, want) != NULL;
                        bool err = strstr(q->buf, "\"error\"") != NULL;
                        size_t used = (size_t)(nl - q->buf) + 1;
                        memmove(q->buf, q->buf + used, q->len - used);
                        q->len -= used;
                        if (err)
                                return -EIO;
                        if (hit)
                                return 0;
                }
                int left = (int)(end - now_ms());
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = q->fd, .events = POLLIN};
                if (poll(&p, 1, left) <= 0)
                        continue;
                if (q->len == sizeof(q->buf))
                        q->len = 0;
                ssize_t r = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
                if (r <= 0)
                        return -EPIPE;
                q->len += (size_t)r;
        }
}

static int qmp_cmd(struct qmp *q, const char *cmd, const char *want) {
        size_t l = strlen(cmd);
        if (write(q->fd, cmd, l) != (ssize_t)l)
                return -errno;
        return qmp_read_until(q, want, 10000);
}

/* Connects to the socket (retried every 250 us until QEMU listens), reads the greeting and
 * negotiates capabilities. */
static int qmp_open(struct qmp *q, const char *path, pid_t pid, int timeout_ms) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        double end = now_ms() + timeout_ms;
        q->len = 0;
        for (;;) {
                q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (q->fd < 0)
                        return -errno;
                if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        break;
                close(q->fd);
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return -ECHILD;
                if (now_ms() > end)
                        return -ETIMEDOUT;
                usleep(250);
        }
        int r = qmp_read_until(q, "\"QMP\"", timeout_ms);
        if (r < 0)
                return r;
        return qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}\n", "\"return\"");
}

/* domains K ARGVFILE...: starts one QEMU per file (argv one word per line, as `declvirt
 * native` prints it) at once, each with setsid and stdout/stderr to ARGVFILE.log, and waits
 * until QMP query-status says running for all; then sends QMP quit to all and waits until all
 * have exited. Prints "START_MS STOP_MS". */
static int cmd_domains(int k, char **files) {
        pid_t pid[k];
        struct qmp *q = calloc((size_t)k, sizeof(*q));
        char qmp_path[k][8192];
        if (!q)
                die("calloc");
        char *argvs[k][128];
        for (int i = 0; i < k; i++) {
                FILE *f = fopen(files[i], "re");
                if (!f)
                        die(files[i]);
                char line[8192];
                int n = 0;
                qmp_path[i][0] = '\0';
                while (n < 127 && fgets(line, sizeof(line), f)) {
                        line[strcspn(line, "\n")] = '\0';
                        argvs[i][n] = strdup(line);
                        if (n > 0 && strcmp(argvs[i][n - 1], "-qmp") == 0 && !qmp_path[i][0] &&
                            strncmp(line, "unix:", 5) == 0) {
                                snprintf(qmp_path[i], sizeof(qmp_path[i]), "%s", line + 5);
                                qmp_path[i][strcspn(qmp_path[i], ",")] = '\0';
                        }
                        n++;
                }
                argvs[i][n] = NULL;
                fclose(f);
                if (!qmp_path[i][0]) {
                        fprintf(stderr, "floor: no -qmp unix: in %s\n", files[i]);
                        return 1;
                }
                unlink(qmp_path[i]);
        }
        posix_spawnattr_t at;
        posix_spawnattr_init(&at);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
        double t0 = now_ms();
        for (int i = 0; i < k; i++) {
                char log[4200];
                snprintf(log, sizeof(log), "%s.log", files[i]);
                posix_spawn_file_actions_t fa;
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
                posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                posix_spawn_file_actions_adddup2(&fa, 1, 2);
                int r = posix_spawn(&pid[i], argvs[i][0], &fa, &at, argvs[i], environ);
                posix_spawn_file_actions_destroy(&fa);
                if (r != 0) {
                        errno = r;
                        die(argvs[i][0]);
                }
        }
        int failed = 0;
        for (int i = 0; i < k; i++) {
                int r = qmp_open(&q[i], qmp_path[i], pid[i], 30000);
                if (r >= 0)
                        r = qmp_cmd(&q[i], "{\"execute\":\"query-status\"}\n", "\"running\": true");
                if (r < 0) {
                        fprintf(stderr, "floor: QEMU %d (%s): QMP: %s\n", i, qmp_path[i],
                                strerror(-r));
                        failed = 1;
                }
        }
        double t1 = now_ms();
        for (int i = 0; i < k; i++)
                if (q[i].fd >= 0)
                        (void)qmp_cmd(&q[i], "{\"execute\":\"quit\"}\n", "\"return\"");
        for (int i = 0; i < k; i++) {
                /* Bounded: SIGKILL after 10 s, as a QEMU that ignores quit must not hang the run.
                 */
                double end = now_ms() + 10000;
                while (waitpid(pid[i], NULL, WNOHANG) == 0) {
                        if (now_ms() > end) {
                                kill(pid[i], SIGKILL);
                                waitpid(pid[i], NULL, 0);
                                failed = 1;
                                break;
                        }
                        usleep(200);
                }
        }
        double t2 = now_ms();
        for (int i = 0; i < k; i++)
                if (q[i].fd >= 0)
                        close(q[i].fd);
        if (failed)
                return 1;
        printf("%.3f %.3f\n", t1 - t0, t2 - t1);
        return 0;
}

/* reaper CMD...: runs CMD as a child subreaper and reaps every orphan at once, as systemd
 * does on a normal host. On this machine PID 1 reaps orphans only every ~2 s, and libvirtd
 * daemonizes QEMU (double fork): without this, `virsh destroy` waits until PID 1 has reaped
 * the QEMU (libvirt polls kill(pid, 0) every 200 ms), which no real host would show.
 * Forwards SIGTERM/SIGINT to CMD; exits with CMD's status. */
static pid_t reaper_child;

static void forward(int sig) {
        if (reaper_child > 0)
                kill(reaper_child, sig);
}

static int cmd_reaper(char **argv) {
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                die("PR_SET_CHILD_SUBREAPER");
        struct sigaction sa = {.sa_handler = forward};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        if (posix_spawn(&reaper_child, argv[0], NULL, NULL, argv, environ) != 0)
                die(argv[0]);
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, 0);
                if (p < 0 && errno == EINTR)
                        continue;
                if (p < 0)
                        return 1;
                if (p == reaper_child)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
}

/* A decimal number in [min, max], or exit 2. */
static long long number(const char *s, long long min, long long max) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
                fprintf(stderr, "floor: '%s' is not a number in [%lld, %lld]\n", s, min, max);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv) {
        if (argc >= 3 && strcmp(argv[1], "reaper") == 0)
                return cmd_reaper(argv + 2);
        signal(SIGPIPE, SIG_IGN);
        if (argc == 7 && strcmp(argv[1], "pools") == 0)
                return cmd_pools(argv[2], (long)number(argv[3], 1, 1000000),
                                 number(argv[4], 0, 1LL << 50), argv[5],
                                 (int)number(argv[6], 1, MAX_PARALLEL_LIMIT));
        if (argc >= 3 && strcmp(argv[1], "domains") == 0)
                return cmd_domains(argc - 2, argv + 2);
        fprintf(stderr,
                "usage: floor pools DIR N CAPACITY QEMU_IMG PARALLEL | floor domains ARGVFILE... | floor reaper CMD...\n");
        return 2;
}
