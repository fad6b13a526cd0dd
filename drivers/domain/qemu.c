/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU domain driver of drivers/domain/qemu.h: process life cycle (spawn, find
 * again, stop gracefully then by force), stale-file clean-up, taps, cached QMP status. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <dirent.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json_object.h>

#include "drivers/cmd.h"
#include "drivers/domain/qemu-argv.h"
#include "drivers/domain/qemu-cgroup.h"
#include "drivers/domain/qemu-disk.h"
#include "drivers/domain/qemu-firmware.h"
#include "drivers/domain/qemu-jail.h"
#include "drivers/domain/proc.h"
#include "drivers/domain/qemu.h"
#include "drivers/domain/qmp.h"
#include "drivers/network/bridge.h"
#include "model/object.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

#define DEFAULT_BINARY    "/usr/bin/qemu-system-x86_64"
#define DEFAULT_RUN_DIR   "/run/declvirt"
#define DEFAULT_STATE_DIR "/var/lib/declvirt/state"

#define START_WAIT_USEC  (10 * USEC_PER_SEC)
#define QMP_CMD_USEC     (5 * USEC_PER_SEC)
#define QMP_REFRESH_USEC (1 * USEC_PER_SEC)
/* observe runs on the main thread: a QEMU that does not answer costs at most this,
 * and is asked again only after QMP_BACKOFF_USEC. */
#define QMP_OBSERVE_USEC   (200 * USEC_PER_MSEC)
#define QMP_BACKOFF_USEC   (5 * USEC_PER_SEC)
#define QUIT_WAIT_USEC     (2 * USEC_PER_SEC)
#define KILL_WAIT_USEC     (5 * USEC_PER_SEC)
#define SCAN_INTERVAL_USEC (1 * USEC_PER_SEC)
#define CMDLINE_MAX        (256 * 1024)
#define LOG_TAIL_BYTES     4096
#define LOG_MSG_LINES      3
#define LOG_MSG_MAX        512
/* How long the removal of a cgroup waits for QEMU's exiting threads to leave it. */
#define CGROUP_WAIT_MSEC 1000

/* ---- configuration and per-domain records --------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *cfg_binary, *cfg_accel, *cfg_run_dir, *cfg_state_dir;
static char **cfg_locations; /* storage_locations: where backing files may be */

/* What this process knows of a domain beyond the host's files. Records live as long as
 * the process (one small struct per domain name), so a pointer stays valid after the
 * map lock is dropped. Fields other than qmp_lock are guarded by `lock`. */
struct qemu_entry {
        pthread_mutex_t qmp_lock; /* held while a QMP connection is open (one client at a time) */
        struct dom_proc_busy run; /* busy: a start or stop runs, observe only reads */
        pid_t pid;                /* the QEMU last seen running, 0 */
        bool child;               /* ... is our child: we reap it and learn its exit status */
        off_t log_offset;         /* size of NAME.qemu.log when it was started or adopted */
        char *qmp_status;
        pid_t qmp_pid;   /* the process qmp_status was read from */
        uint64_t qmp_at; /* CLOCK_MONOTONIC of the last attempt */
        bool qmp_failed;
        pid_t guest_shutdown; /* this QEMU sent SHUTDOWN with reason guest-shutdown */
        /* The events monitor (RUN_DIR/qemu/NAME.events), guarded by ev_lock: */
        struct qmp *events; /* open to the QEMU events_pid, registered in ev_epoll */
        pid_t events_pid;
        pid_t events_tried; /* the QEMU of the last failed attempt, */
        uint64_t events_at; /* ... and when (CLOCK_MONOTONIC) */
};
static struct hashmap *recs;

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static char *dup_or(const char *s, const char *def) {
        return strdup(s ? s : def);
}

void qemu_driver_set_config(const char *binary, const char *accel, const char *run_dir,
                            const char *state_dir) {
        pthread_mutex_lock(&lock);
        free(cfg_binary);
        free(cfg_accel);
        free(cfg_run_dir);
        free(cfg_state_dir);
        cfg_binary = dup_or(binary, DEFAULT_BINARY);
        cfg_accel = dup_or(accel, "auto");
        cfg_run_dir = dup_or(run_dir, DEFAULT_RUN_DIR);
        cfg_state_dir = dup_or(state_dir, DEFAULT_STATE_DIR);
        pthread_mutex_unlock(&lock);
}

int qemu_driver_set_storage_locations(char *const *locations) {
        char **l = NULL;
        if (locations && !(l = strv_copy(locations)))
                return -ENOMEM;
        pthread_mutex_lock(&lock);
        strv_free(cfg_locations);
        cfg_locations = l;
        pthread_mutex_unlock(&lock);
        return 0;
}

static char **locations_copy(void) {
        pthread_mutex_lock(&lock);
        char **l = cfg_locations ? strv_copy(cfg_locations) : NULL;
        bool oom = cfg_locations && !l;
        pthread_mutex_unlock(&lock);
        return oom ? NULL : l ? l : strv_copy((char *const[]){NULL});
}

static struct qemu_entry *entry_get(const char *name) {
        pthread_mutex_lock(&lock);
        if (!recs)
                recs = hashmap_new();
        struct qemu_entry *r = recs ? hashmap_get(recs, name) : NULL;
        if (!r && recs) {
                r = calloc(1, sizeof(*r));
                if (r) {
                        pthread_mutex_init(&r->qmp_lock, NULL);
                        if (hashmap_put(recs, name, r, NULL) < 0) {
                                pthread_mutex_destroy(&r->qmp_lock);
                                free(r);
                                r = NULL;
                        }
                }
        }
        pthread_mutex_unlock(&lock);
        return r;
}

static void entry_forget_locked(struct qemu_entry *r) {
        r->pid = 0;
        r->child = false;
        free(r->qmp_status);
        r->qmp_status = NULL;
        r->qmp_pid = 0;
        r->qmp_at = 0;
        r->qmp_failed = false;
        r->guest_shutdown = 0;
}

/* ---- paths ------------------------------------------------------------------------------- */

struct paths {
        char *name;
        char *run_sub, *state_sub;
        char *pidfile, *qmp, *events, *vnc;
        char *vnc_dir; /* RUN_DIR/qemu-vnc/NAME: the VNC socket's, owned by the domain's uid */
        char *ident;   /* the identity record of the QEMU the agent started (dom_proc_ident) */
        char *qemu_log, *console_log;
        char *binary; /* the domain's <emulator>, else agent.conf's qemu.binary */
        char *accel;  /* agent.conf's qemu.accel */
};

static void paths_done(struct paths *p) {
        free(p->name);
        free(p->run_sub);
        free(p->state_sub);
        free(p->pidfile);
        free(p->qmp);
        free(p->events);
        free(p->vnc);
        free(p->vnc_dir);
        free(p->ident);
        free(p->qemu_log);
        free(p->console_log);
        free(p->binary);
        free(p->accel);
        *p = (struct paths){0};
}

static int paths_get(const struct domain_def *def, struct paths *p, struct dv_error *err) {
        *p = (struct paths){0};
        const char *name = def ? def->name : NULL;
        const char *problem = dv_name_problem(DV_KIND_DOMAIN, name);
        if (problem)
                return dv_error_add(err, -EINVAL, 0, "domain name '%s': %s", strna(name), problem);
        pthread_mutex_lock(&lock);
        const char *run = cfg_run_dir ? cfg_run_dir : DEFAULT_RUN_DIR;
        const char *state = cfg_state_dir ? cfg_state_dir : DEFAULT_STATE_DIR;
        p->run_sub = path_join(run, "qemu");
        p->state_sub = path_join(state, "domains");
        const char *binary = cfg_binary ? cfg_binary : DEFAULT_BINARY;
        p->binary = strdup(def->emulator ? def->emulator : binary);
        p->accel = strdup(cfg_accel ? cfg_accel : "auto");
        pthread_mutex_unlock(&lock);
        p->name = strdup(name);
        if (!p->run_sub || !p->state_sub || !p->binary || !p->accel || !p->name ||
            !(p->pidfile = strdupf("%s/%s.pid", p->run_sub, name)) ||
            !(p->qmp = strdupf("%s/%s.qmp", p->run_sub, name)) ||
            !(p->events = qemu_events_socket(p->qmp)) ||
            !(p->vnc_dir = strdupf("%s-vnc/%s", p->run_sub, name)) ||
            !(p->vnc = strdupf("%s/vnc", p->vnc_dir)) ||
            !(p->ident = strdupf("%s/%s.ident", p->run_sub, name)) ||
            !(p->qemu_log = strdupf("%s/%s.qemu.log", p->state_sub, name)) ||
            !(p->console_log = strdupf("%s/%s.console.log", p->state_sub, name))) {
                paths_done(p);
                return dv_error_oom(err);
        }
        return 0;
}

const char *qemu_accel_for(const struct domain_def *def) {
        if (!def || def->type != DOMAIN_TYPE_KVM)
                return "tcg";
        pthread_mutex_lock(&lock);
        bool kvm = streq_ptr(cfg_accel, "kvm"), tcg = streq_ptr(cfg_accel, "tcg");
        pthread_mutex_unlock(&lock);
        if (kvm)
                return "kvm";
        if (tcg)
                return "tcg";
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return "tcg";
        close(fd);
        return "kvm";
}

/* ---- processes ----------------------------------------------------------------------------- */

/* What a QEMU of ours lacks of the confinement a start gives now (one started by an
 * earlier agent, adopted as it is): NULL when nothing. */
static const char *unconfined_how(const char *name, pid_t pid) {
        struct dom_proc_ident have;
        if (dom_proc_ident_read(pid, &have) == 0 && have.euid == 0)
                return "runs as root";
        char own[64], its[64], path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
        ssize_t a = readlink("/proc/self/ns/mnt", own, sizeof(own) - 1);
        ssize_t b = readlink(path, its, sizeof(its) - 1);
        if (a > 0 && b > 0 && a == b && memcmp(own, its, (size_t)a) == 0)
                return "has no jail of its own";
        if (!qemu_cgroup_contains(name, pid))
                return "is in no cgroup of its own";
        return NULL;
}

struct proc_info {
        struct dom_proc_stat st;
        char **argv;
};

static void proc_info_done(struct proc_info *pi) {
        strv_free(pi->argv);
        *pi = (struct proc_info){0};
}

/* /proc/PID/stat and, when want_argv, the command line. -ESRCH when the process is gone. */
static int proc_read(pid_t pid, bool want_argv, struct proc_info *ret) {
        *ret = (struct proc_info){0};
        if (dom_proc_stat(pid, &ret->st) < 0)
                return -ESRCH;
        if (!want_argv)
                return 0;
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *cmdline = NULL;
        size_t len = 0;
        if (read_full_file(p, CMDLINE_MAX, &cmdline, &len) < 0)
                return -ESRCH;
        for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1)
                if (strv_push(&ret->argv, cmdline + i) < 0) {
                        proc_info_done(ret);
                        return -ENOMEM;
                }
        return 0;
}

/* A zombie has exited (it may stay in state Z for a second or two). */
static bool proc_alive(const struct proc_info *pi) {
        return dom_proc_stat_alive(&pi->st);
}

static bool is_qemu_argv0(char *const *argv) {
        if (!argv || !argv[0])
                return false;
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        return strncmp(base, "qemu", 4) == 0;
}

/* The guest name of QEMU's -name option: "guest=NAME,..." or the legacy "NAME,...". */
static bool argv_guest_is(char *const *argv, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; argv && argv[i] && argv[i + 1]; i++) {
                if (!streq(argv[i], "-name") && !streq(argv[i], "--name"))
                        continue;
                const char *v = argv[i + 1];
                for (const char *opt = v; opt && *opt;) {
                        const char *end = strchr(opt, ',');
                        size_t len = end ? (size_t)(end - opt) : strlen(opt);
                        const char *val = NULL;
                        if (len > 6 && strncmp(opt, "guest=", 6) == 0)
                                val = opt + 6;
                        else if (opt == v && !memchr(opt, '=', len))
                                val = opt;
                        if (val && (size_t)(opt + len - val) == n && strncmp(val, name, n) == 0)
                                return true;
                        opt = end ? end + 1 : NULL;
                }
        }
        return false;
}

/* True when an element names path as an option value: "unix:PATH,..." or
 * "path=PATH,...", with QEMU's doubled commas. */
static bool argv_names_socket(char *const *argv, const char *path) {
        struct buf b = BUF_INIT;
        for (const char *c = path; *c; c++)
                buf_puts(&b, *c == ',' ? ",," : (char[]){*c, 0});
        _cleanup_free_ char *esc = buf_steal(&b);
        if (!esc)
                return false;
        size_t n = strlen(esc);
        for (size_t i = 0; argv && argv[i]; i++)
                for (const char *s = strstr(argv[i], esc); s; s = strstr(s + 1, esc)) {
                        bool before = s == argv[i] || s[-1] == ':' || s[-1] == '=';
                        bool after = s[n] == '\0' || (s[n] == ',' && s[n + 1] != ',');
                        if (before && after)
                                return true;
                }
        return false;
}

/* A QEMU the agent started with its QMP monitor as a descriptor (qemu_argv with fds):
 * its command line cannot name the socket, so its identity record alone decides. */
static bool argv_has_fd_monitor(char *const *argv) {
        for (size_t i = 0; argv && argv[i] && argv[i + 1]; i++)
                if (streq(argv[i], "-mon") && streq(argv[i + 1], "chardev=dv-qmp,mode=control"))
                        return true;
        return false;
}

static bool is_our_child(pid_t pid) {
        struct dom_proc_stat st;
        return dom_proc_stat(pid, &st) == 0 && st.ppid == getpid();
}

/* ---- identity: a command line is not enough ------------------------------------------------ */

/* 0 when pid, whose command line is this domain's, is the QEMU the agent started: the
 * identity recorded in p->ident (PID, start time, uid and gid, binary). With no record (a
 * QEMU started by an agent that kept none), the identity the agent gives every QEMU: its
 * own uid and gid and the configured emulator; the record is then written when `record`.
 * -EPERM with *ret_why saying how it differs; -ESRCH when the process is gone. */
static int ident_check(pid_t pid, const struct paths *p, bool record, bool need_record,
                       char **ret_why) {
        *ret_why = NULL;
        struct dom_proc_ident want;
        int r = dom_proc_ident_load(p->ident, &want);
        if (r < 0) {
                *ret_why = strdupf("its record %s is not one declvirt wrote (%s)", p->ident,
                                   strerror(-r));
                return *ret_why ? -EPERM : -ENOMEM;
        }
        bool unrecorded = want.pid == 0;
        if (unrecorded && need_record) {
                *ret_why = strdupf("there is no record %s of it", p->ident);
                return *ret_why ? -EPERM : -ENOMEM;
        }
        if (unrecorded) {
                want = (struct dom_proc_ident){.pid = pid,
                                               .ruid = getuid(),
                                               .euid = geteuid(),
                                               .rgid = getgid(),
                                               .egid = getegid()};
                r = dom_proc_binary_id(p->binary, &want.exe_dev, &want.exe_ino);
                if (r < 0) {
                        *ret_why = strdupf("the emulator %s cannot be compared with it (%s)",
                                           p->binary, strerror(-r));
                        return *ret_why ? -EPERM : -ENOMEM;
                }
        }
        r = dom_proc_ident_check(pid, &want, ret_why);
        struct dom_proc_ident have;
        if (r == 0 && unrecorded && record && dom_proc_ident_read(pid, &have) == 0 &&
            have.euid == want.euid && have.egid == want.egid && have.exe_ino == want.exe_ino &&
            have.exe_dev == want.exe_dev && dom_proc_ident_write(p->ident, &have) < 0)
                log_debug("cannot write %s", p->ident);
        return r;
}

enum verdict {
        V_NONE,    /* gone, or not a QEMU running this domain */
        V_OURS,    /* the QEMU the agent started: our command line and identity */
        V_FOREIGN, /* another QEMU runs this domain, or a look-alike of ours */
};

/* What pid is to domain p->name. V_FOREIGN: a QEMU with another QMP socket (started by
 * hand), or a process with our command line that is not the agent's (*ret_why, caller
 * frees, says why: any user can give a process any command line). Only V_OURS is ever
 * adopted or signalled. */
static enum verdict verdict_of(pid_t pid, const struct paths *p, bool record, char **ret_why) {
        *ret_why = NULL;
        struct proc_info pi;
        if (proc_read(pid, true, &pi) < 0)
                return V_NONE;
        bool qemu = proc_alive(&pi) && is_qemu_argv0(pi.argv) && argv_guest_is(pi.argv, p->name);
        bool sock = qemu && argv_names_socket(pi.argv, p->qmp);
        bool fd_mon = qemu && !sock && argv_has_fd_monitor(pi.argv);
        proc_info_done(&pi);
        if (!qemu)
                return V_NONE;
        if (!sock && !fd_mon)
                return V_FOREIGN;
        int r = ident_check(pid, p, record, fd_mon, ret_why);
        if (r == -ESRCH)
                return V_NONE;
        if (r < 0 && !*ret_why)
                *ret_why = strdup("its identity cannot be checked");
        return r == 0 ? V_OURS : V_FOREIGN;
}

/* For status and errors: a QEMU of someone else, or a look-alike (why). Caller frees. */
static char *foreign_message(pid_t pid, const char *why, const char *name) {
        if (why)
                return strdupf("process %d has the command line of domain %s but %s: it is not "
                               "declvirt's QEMU and is neither adopted nor signalled",
                               (int)pid, name, why);
        return strdupf("a QEMU process (PID %d) not started by declvirt runs domain %s", (int)pid,
                       name);
}

/* ---- the process table scan (unmanaged QEMUs, lost pidfiles) ------------------------------ */

/* Every live process of the last scan, sorted by PID: a process's command line is read
 * once, when the scan first sees it (PID and start time), and its verdict (a QEMU with
 * this argv, or not a QEMU: argv NULL) kept while it lives. A scan then costs one read of
 * /proc/PID/stat per process instead of two reads and a parse. */
struct scan_entry {
        pid_t pid;
        uint64_t start;
        char **argv; /* NULL: not a QEMU */
};
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scan_entry *scan_entries;
static size_t n_scan_entries;
static uint64_t scan_at;

static void scan_entries_free(struct scan_entry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                strv_free(e[i].argv);
        free(e);
}

static int scan_entry_cmp(const void *a, const void *b) {
        pid_t x = ((const struct scan_entry *)a)->pid, y = ((const struct scan_entry *)b)->pid;
        return (x > y) - (x < y);
}

static void scan_refresh_locked(void) {
        _cleanup_(closedirp) DIR *d = NULL;
        d = opendir("/proc");
        if (!d)
                return;
        struct scan_entry *old = scan_entries, *n = NULL;
        size_t n_old = n_scan_entries, k = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                char *end = NULL;
                errno = 0;
                long v = strtol(de->d_name, &end, 10);
                if (errno || !end || *end || v <= 1 || v > INT32_MAX)
                        continue;
                struct dom_proc_stat st;
                if (dom_proc_stat((pid_t)v, &st) < 0 || !dom_proc_stat_alive(&st))
                        continue;
                if (k == cap) {
                        size_t c = cap ? cap * 2 : 256;
                        struct scan_entry *m = realloc(n, c * sizeof(*n));
                        if (!m)
                                break;
                        n = m;
                        cap = c;
                }
                struct scan_entry key = {.pid = (pid_t)v};
                struct scan_entry *was =
                        old ? bsearch(&key, old, n_old, sizeof(*old), scan_entry_cmp) : NULL;
                if (was && was->start == st.start) {
                        n[k++] = (struct scan_entry){(pid_t)v, st.start, TAKE_PTR(was->argv)};
                        continue;
                }
                struct proc_info pi;
                if (proc_read((pid_t)v, true, &pi) < 0)
                        continue;
                n[k++] = (struct scan_entry){(pid_t)v, pi.st.start,
                                             is_qemu_argv0(pi.argv) ? TAKE_PTR(pi.argv) : NULL};
                proc_info_done(&pi);
        }
        if (n)
                qsort(n, k, sizeof(*n), scan_entry_cmp);
        scan_entries_free(old, n_old);
        scan_entries = n;
        n_scan_entries = k;
        scan_at = now_usec(CLOCK_MONOTONIC);
}

/* Looks for QEMU processes running domain p->name: *ret_ours ours (its pidfile lost),
 * *ret_foreign one that is not, and *ret_why (caller frees) why when its command line is
 * ours (verdict_of). Uses a table at most SCAN_INTERVAL_USEC old unless fresh. */
static void scan_find(const struct paths *p, bool fresh, bool record, pid_t *ret_ours,
                      pid_t *ret_foreign, char **ret_why) {
        *ret_ours = *ret_foreign = 0;
        *ret_why = NULL;
        pid_t cand[16];
        size_t n_cand = 0;
        uint64_t asked = now_usec(CLOCK_MONOTONIC);
        pthread_mutex_lock(&scan_lock);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        /* fresh: a table made after this call began will do (starts at once share one). */
        if (scan_at == 0 || (fresh ? scan_at < asked : now - scan_at >= SCAN_INTERVAL_USEC))
                scan_refresh_locked();
        for (size_t i = 0; i < n_scan_entries && n_cand < ELEMENTSOF(cand); i++)
                if (scan_entries[i].argv && argv_guest_is(scan_entries[i].argv, p->name))
                        cand[n_cand++] = scan_entries[i].pid;
        pthread_mutex_unlock(&scan_lock);
        /* The table may be a second old: each is looked at again, as it runs now. */
        for (size_t i = 0; i < n_cand; i++) {
                char *why = NULL;
                enum verdict v = verdict_of(cand[i], p, record, &why);
                if (v == V_OURS && *ret_ours == 0)
                        *ret_ours = cand[i];
                else if (v == V_FOREIGN && (*ret_foreign == 0 || (why && !*ret_why))) {
                        /* A look-alike of ours is the one worth naming. */
                        *ret_foreign = cand[i];
                        free(*ret_why);
                        *ret_why = TAKE_PTR(why);
                }
                free(why);
        }
}

/* ---- pidfiles, logs, clean-up --------------------------------------------------------- */

static off_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? st.st_size : 0;
}

/* The last few non-empty lines QEMU wrote to its log after offset, joined by "; ",
 * control characters replaced; NULL when none. */
static char *log_tail_since(const char *path, off_t offset) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return NULL;
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size <= offset)
                return NULL;
        off_t from = MAX(offset, st.st_size - LOG_TAIL_BYTES);
        char data[LOG_TAIL_BYTES + 1];
        ssize_t n = pread(fd, data, (size_t)(st.st_size - from), from);
        if (n <= 0)
                return NULL;
        data[n] = '\0';
        const char *lines[LOG_MSG_LINES];
        size_t lens[LOG_MSG_LINES], k = 0, total = 0, end = (size_t)n;
        while (end > 0 && k < LOG_MSG_LINES) {
                size_t start = end;
                while (start > 0 && data[start - 1] != '\n')
                        start--;
                size_t a = start, b = end;
                while (a < b && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r'))
                        a++;
                while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r' ||
                                 data[b - 1] == '\n'))
                        b--;
                if (b > a) {
                        if (k > 0 && total + (b - a) > LOG_MSG_MAX)
                                break;
                        lines[k] = data + a;
                        lens[k] = b - a;
                        total += b - a;
                        k++;
                }
                end = start > 0 ? start - 1 : 0;
        }
        if (k == 0)
                return NULL;
        struct buf out = BUF_INIT;
        for (size_t i = k; i > 0; i--) {
                if (i < k)
                        buf_puts(&out, "; ");
                for (size_t j = 0; j < MIN(lens[i - 1], (size_t)LOG_MSG_MAX); j++) {
                        unsigned char c = (unsigned char)lines[i - 1][j];
                        buf_putc(&out, c < 0x20 || c == 0x7f ? '?' : (char)c);
                }
        }
        return buf_steal(&out);
}

/* ---- taps ---------------------------------------------------------------------------------- */

int qemu_tap_name(const char *domain, size_t index, char buf[static IFNAMSIZ]) {
        if (dv_name_problem(DV_KIND_DOMAIN, domain))
                return -EINVAL;
        _cleanup_free_ char *key = strdupf("%s/%zu", domain, index);
        if (!key)
                return -ENOMEM;
        char hex[HASH_HEX_LEN + 1];
        hash_hex(key, strlen(key), hex);
        snprintf(buf, IFNAMSIZ, "dvt%.8s", hex);
        return 0;
}

/* A persistent tap owned by root, attached to bridge and up. An existing tap of that
 * name (left by a QEMU that crashed) is reused. */
static int tap_create(const char *tap, const char *bridge, struct dv_error *err) {
        struct nl_link br;
        int r = nl_link_get(bridge, &br, err);
        if (r == -ENODEV)
                return dv_error_add(err, r, 0, "bridge %s does not exist", bridge);
        if (r < 0)
                return r;
        if (!streq(br.kind, "bridge"))
                return dv_error_add(err, -EMEDIUMTYPE, 0, "%s is not a bridge", bridge);

        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot open /dev/net/tun: %m");
        struct ifreq ifr = {0};
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        assert_cc(sizeof(ifr.ifr_name) == IFNAMSIZ);
        if (strlen(tap) >= IFNAMSIZ)
                return dv_error_add(err, -EINVAL, 0, "tap name %s is too long", tap);
        memcpy(ifr.ifr_name, tap, strlen(tap) + 1);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot create tap %s: %m", tap);
        if (ioctl(fd, TUNSETOWNER, (unsigned long)0) < 0 ||
            ioctl(fd, TUNSETPERSIST, (unsigned long)1) < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot make tap %s persistent: %m",
                                    tap);
        close(TAKE_FD(fd));

        struct nl_link l;
        r = nl_link_get(tap, &l, err);
        if (r < 0)
                return r;
        if (l.master != br.ifindex) {
                r = nl_link_set_master(tap, bridge, err);
                if (r < 0)
                        return r;
        }
        /* The bridge's MTU, as libvirt does: a smaller port would lower the bridge's. */
        return nl_link_set(tap, NULL, br.mtu, 1, err);
}

static void taps_remove(const struct domain_def *def) {
        for (size_t i = 0; i < def->n_interfaces; i++) {
                char tap[IFNAMSIZ];
                if (qemu_tap_name(def->name, i, tap) < 0)
                        continue;
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                if (nl_link_delete(tap, &e) < 0)
                        log_debug("cannot remove tap %s: %s", tap, strna(dv_error_message(&e)));
        }
}

static bool iface_has_tap(const struct domain_net *n) {
        return n->type == DOMAIN_NET_NETWORK || n->type == DOMAIN_NET_BRIDGE;
}

static void channels_unlink(const struct domain_def *def, const struct paths *p);

/* Removes what a QEMU that is gone leaves behind: taps (when asked), pidfile, sockets. */
static void cleanup_files(const struct domain_def *def, const struct paths *p, bool taps) {
        if (taps)
                taps_remove(def);
        dom_proc_unlink_quiet(p->pidfile);
        dom_proc_unlink_quiet(p->qmp);
        dom_proc_unlink_quiet(p->events);
        dom_proc_unlink_quiet(p->vnc);
        (void)rmdir(p->vnc_dir);
        dom_proc_unlink_quiet(p->ident);
        channels_unlink(def, p);
        qemu_cgroup_remove(p->name, CGROUP_WAIT_MSEC);
}

/* ---- QMP helpers ---------------------------------------------------------------------- */

/* Runs one command on a fresh connection, serialised with other users of the monitor. */
static int qmp_once(struct qemu_entry *ent, const char *sock, const char *command,
                    struct json_object *args, uint64_t timeout_usec, struct json_object **ret,
                    struct dv_error *err) {
        pthread_mutex_lock(&ent->qmp_lock);
        struct qmp *q = NULL;
        int r = qmp_connect(sock, timeout_usec, &q, err);
        if (r >= 0)
                r = qmp_execute(q, command, args, timeout_usec, ret, err);
        qmp_close(q);
        pthread_mutex_unlock(&ent->qmp_lock);
        return r;
}

static char *status_of(struct json_object *o) {
        struct json_object *s = NULL;
        if (!o || !json_object_object_get_ex(o, "status", &s) ||
            !json_object_is_type(s, json_type_string))
                return NULL;
        return strdup(json_object_get_string(s));
}

static void entry_set_status(struct qemu_entry *ent, pid_t pid, char *status, bool failed) {
        pthread_mutex_lock(&lock);
        if (status || ent->qmp_pid != pid) {
                free(ent->qmp_status);
                ent->qmp_status = status;
                status = NULL;
        }
        ent->qmp_pid = pid;
        ent->qmp_at = now_usec(CLOCK_MONOTONIC);
        ent->qmp_failed = failed;
        pthread_mutex_unlock(&lock);
        free(status);
}

/* The cached status, refreshed when older than a second (or after a failure, five);
 * never blocks on a monitor that a start or stop holds. Caller frees. */
static bool events_watched(struct qemu_entry *ent, pid_t pid);

/* While the events monitor of this QEMU is connected, the cached status stays true until
 * an event says otherwise (which clears qmp_at): no query-status every second from the
 * agent's loop, where a QEMU slow to answer (many starting at once on a busy host) would
 * hold up every other object. */
static char *qmp_status_cached(struct qemu_entry *ent, pid_t pid, const char *sock) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool watched = events_watched(ent, pid);
        pthread_mutex_lock(&lock);
        bool fresh = ent->qmp_pid == pid && ent->qmp_at > 0 &&
                     (watched ||
                      now - ent->qmp_at < (ent->qmp_failed ? QMP_BACKOFF_USEC : QMP_REFRESH_USEC));
        char *cached = ent->qmp_pid == pid && ent->qmp_status ? strdup(ent->qmp_status) : NULL;
        pthread_mutex_unlock(&lock);
        if (fresh || pthread_mutex_trylock(&ent->qmp_lock) != 0)
                return cached;

        _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
        struct qmp *q = NULL;
        struct json_object *o = NULL;
        int r = qmp_connect(sock, QMP_OBSERVE_USEC, &q, &e);
        if (r >= 0)
                r = qmp_execute(q, "query-status", NULL, QMP_OBSERVE_USEC, &o, &e);
        qmp_close(q);
        pthread_mutex_unlock(&ent->qmp_lock);
        if (r < 0)
                log_debug("%s: %s", sock, strna(dv_error_message(&e)));
        char *s = r >= 0 ? status_of(o) : NULL;
        json_object_put(o);
        if (s) {
                free(cached);
                cached = strdup(s);
        }
        entry_set_status(ent, pid, s, r < 0);
        return cached;
}

static enum dom_state state_from_qmp(const char *s) {
        if (!s || streq(s, "running"))
                return DOM_RUNNING;
        return DOM_PAUSED;
}

/* ---- QMP events --------------------------------------------------------------------------- */

/* Each running domain's events monitor stays connected (observe opens it, once per QEMU);
 * all of them sit in one epoll fd that the agent's loop watches. Only opened once someone
 * asked for that fd: `declvirt plan` and tests that do not listen never hold a monitor.
 * epoll's data is the qemu_entry, which lives as long as the process. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static int ev_epoll = -1;

int qemu_events_fd(void) {
        pthread_mutex_lock(&ev_lock);
        if (ev_epoll < 0)
                ev_epoll = epoll_create1(EPOLL_CLOEXEC);
        int r = ev_epoll >= 0 ? ev_epoll : negative_errno();
        pthread_mutex_unlock(&ev_lock);
        return r;
}

static void events_close_locked(struct qemu_entry *ent) {
        if (!ent->events)
                return;
        if (ev_epoll >= 0)
                (void)epoll_ctl(ev_epoll, EPOLL_CTL_DEL, qmp_fd(ent->events), NULL);
        qmp_close(ent->events);
        ent->events = NULL;
        ent->events_pid = 0;
}

static bool events_watched(struct qemu_entry *ent, pid_t pid) {
        pthread_mutex_lock(&ev_lock);
        bool w = ent->events && ent->events_pid == pid;
        pthread_mutex_unlock(&ev_lock);
        return w;
}

static void events_close(struct qemu_entry *ent) {
        pthread_mutex_lock(&ev_lock);
        events_close_locked(ent);
        pthread_mutex_unlock(&ev_lock);
}

/* Connects the events monitor of the QEMU pid unless it is connected, or failed less
 * than QMP_BACKOFF_USEC ago (a QEMU started before the agent knew of it has none). */
static void events_ensure(struct qemu_entry *ent, pid_t pid, const char *sock) {
        pthread_mutex_lock(&ev_lock);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (ev_epoll < 0 || (ent->events && ent->events_pid == pid) ||
            (ent->events_tried == pid && now - ent->events_at < QMP_BACKOFF_USEC)) {
                pthread_mutex_unlock(&ev_lock);
                return;
        }
        events_close_locked(ent);
        _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
        struct qmp *q = NULL;
        int r = qmp_connect(sock, QMP_OBSERVE_USEC, &q, &e);
        if (r >= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ent};
                if (epoll_ctl(ev_epoll, EPOLL_CTL_ADD, qmp_fd(q), &ev) < 0) {
                        r = negative_errno();
                        dv_error_add(&e, r, 0, "epoll: %m");
                        qmp_close(q);
                }
        }
        if (r >= 0) {
                ent->events = q;
                ent->events_pid = pid;
                ent->events_tried = 0;
        } else {
                log_debug("%s: %s", sock, strna(dv_error_message(&e)));
                ent->events_tried = pid;
                ent->events_at = now;
        }
        pthread_mutex_unlock(&ev_lock);
}

/* The status an event implies, until query-status says better. */
static const char *event_status(const char *name) {
        if (streq(name, "STOP"))
                return "paused";
        if (streq(name, "RESUME"))
                return "running";
        if (streq(name, "SHUTDOWN"))
                return "shutdown";
        if (streq(name, "GUEST_PANICKED"))
                return "guest-panicked";
        return NULL;
}

/* Reads what the events monitor of ent has; true when it brought news. Closes the
 * connection when QEMU closed it. */
static bool events_read_locked(struct qemu_entry *ent) {
        if (!ent->events)
                return false;
        int r = qmp_read_events(ent->events);
        bool wake = r < 0; /* QEMU closed the monitor: it exits */
        bool guest_shutdown = false;
        const char *st = NULL;
        for (struct json_object *e; (e = qmp_next_event(ent->events));) {
                struct json_object *v = NULL, *data = NULL;
                const char *name = json_object_object_get_ex(e, "event", &v)
                                           ? json_object_get_string(v)
                                           : NULL;
                const char *s = name ? event_status(name) : NULL;
                if (s) {
                        st = s;
                        wake = true;
                }
                /* The guest powered off (not a panic, a signal or a QMP quit): an exit
                 * known to be clean even when QEMU is not our child. */
                if (streq_ptr(name, "SHUTDOWN") && json_object_object_get_ex(e, "data", &data) &&
                    json_object_object_get_ex(data, "reason", &v) &&
                    streq_ptr(json_object_get_string(v), "guest-shutdown"))
                        guest_shutdown = true;
                log_debug("QEMU PID %d: event %s", (int)ent->events_pid, strna(name));
                json_object_put(e);
        }
        pid_t pid = ent->events_pid;
        if (r < 0)
                events_close_locked(ent);
        if (!wake)
                return false;
        /* The next observe asks query-status at once; until then the event's word. */
        pthread_mutex_lock(&lock);
        if (ent->qmp_pid == pid) {
                ent->qmp_at = 0;
                if (st) {
                        char *c = strdup(st);
                        if (c) {
                                free(ent->qmp_status);
                                ent->qmp_status = c;
                        }
                }
        }
        if (guest_shutdown && ent->pid == pid)
                ent->guest_shutdown = pid;
        pthread_mutex_unlock(&lock);
        return true;
}

int qemu_events_dispatch(void) {
        pthread_mutex_lock(&ev_lock);
        int n = 0;
        struct epoll_event evs[32];
        int k = ev_epoll >= 0 ? epoll_wait(ev_epoll, evs, (int)ELEMENTSOF(evs), 0) : 0;
        int r = k < 0 && errno != EINTR ? negative_errno() : 0;
        for (int i = 0; i < k; i++)
                if (events_read_locked(evs[i].data.ptr))
                        n++;
        pthread_mutex_unlock(&ev_lock);
        return r < 0 ? r : n;
}

/* ---- observe ----------------------------------------------------------------------------- */

/* Why a QEMU we knew is gone. */
static void exit_reason(pid_t pid, bool child, bool guest_off, const char *log, off_t offset,
                        struct dom_status *ret) {
        _cleanup_free_ char *tail = log_tail_since(log, offset);
        int status = 0;
        char *s = NULL;
        if (child && dom_proc_reap_dying(pid, &status)) {
                if (WIFSIGNALED(status))
                        s = strdupf("killed by signal %d", WTERMSIG(status));
                else if (WEXITSTATUS(status) != 0)
                        s = strdupf("QEMU exited with status %d%s%s", WEXITSTATUS(status),
                                    tail ? ": " : "", strempty(tail));
                else if (tail && strstr(tail, "terminating on signal"))
                        /* QEMU exits with status 0 on SIGTERM/SIGINT/SIGHUP. */
                        s = strdup(tail);
                else {
                        s = strdup("guest shut down");
                        ret->exit_clean = true;
                }
        } else if (guest_off) {
                /* Not our child (adopted), but its events monitor said so. */
                s = strdup("guest shut down");
                ret->exit_clean = true;
        } else if (tail)
                s = strdupf("QEMU (PID %d) exited: %s", (int)pid, tail);
        else
                s = strdupf("QEMU (PID %d) exited (status unknown: it was started before the "
                            "agent restarted)",
                            (int)pid);
        ret->exit_reason = s;
}

int qemu_observe(const struct domain_def *def, struct dom_status *ret, struct dv_error *err) {
        *ret = (struct dom_status){0};
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        struct qemu_entry *ent = entry_get(p.name);
        if (!ent)
                return dv_error_oom(err);

        pthread_mutex_lock(&lock);
        bool busy = ent->run.busy, child = ent->child;
        pid_t prev = ent->pid;
        off_t offset = ent->log_offset;
        pthread_mutex_unlock(&lock);

        pid_t filepid = 0;
        bool garbage = dom_proc_read_pidfile(p.pidfile, &filepid) < 0;
        pid_t live = 0;
        _cleanup_free_ char *why = NULL;
        if (filepid > 0 && verdict_of(filepid, &p, !busy, &why) == V_OURS)
                live = filepid;

        /* The QEMU we saw last, its pidfile gone or rewritten: still ours? */
        if (!live && prev > 0 && prev != filepid) {
                free(why);
                if (verdict_of(prev, &p, !busy, &why) == V_OURS) {
                        live = prev;
                        if (!busy && dom_proc_write_pidfile(p.pidfile, prev) < 0)
                                log_debug("cannot write %s", p.pidfile);
                }
        }
        free(why);
        why = NULL;

        pid_t found = 0, foreign = 0;
        if (!live) {
                scan_find(&p, false, !busy, &found, &foreign, &why);
                if (found > 0) {
                        /* Ours, its pidfile lost: adopt it, write the pidfile again. */
                        live = found;
                        if (!busy && dom_proc_write_pidfile(p.pidfile, found) < 0)
                                log_debug("cannot write %s", p.pidfile);
                }
        }
        bool live_child = live > 0 && is_our_child(live);

        if (live) {
                if (prev > 0 && prev != live && child && !busy)
                        (void)dom_proc_reap(prev, NULL);
                pthread_mutex_lock(&lock);
                if (ent->pid != live) {
                        if (!busy)
                                ent->log_offset = file_size(p.qemu_log);
                        ent->pid = live;
                }
                ent->child = live_child;
                pthread_mutex_unlock(&lock);
                ret->pid = live;
                ret->id = (int)live; /* libvirt's id: QEMU's PID, stable across adoption */
                if (!busy)
                        events_ensure(ent, live, p.events);
                ret->qmp_status = qmp_status_cached(ent, live, p.qmp);
                ret->state = state_from_qmp(ret->qmp_status);
                const char *how = unconfined_how(p.name, live);
                ret->unconfined = how != NULL;
                if (how && !(ret->unconfined_how = strdup(how)))
                        return -ENOMEM;
                ret->no_device_control = !qemu_cgroup_device_control();
                return 0;
        }

        ret->state = DOM_SHUTOFF;
        if (!busy) {
                /* What QEMU said last (SHUTDOWN) may not have been dispatched yet. */
                pthread_mutex_lock(&ev_lock);
                (void)events_read_locked(ent);
                events_close_locked(ent);
                pthread_mutex_unlock(&ev_lock);
                pthread_mutex_lock(&lock);
                bool guest_off = prev > 0 && ent->guest_shutdown == prev;
                pthread_mutex_unlock(&lock);
                if (prev > 0) {
                        ret->exited = true;
                        exit_reason(prev, child, guest_off, p.qemu_log, offset, ret);
                } else if (filepid > 0) {
                        /* A pidfile with no QEMU of ours behind it: it ran and is gone (the
                         * agent was not there to see it). The PID is never signalled: it
                         * may belong to anyone now. */
                        struct proc_info other = {0};
                        bool exists = proc_read(filepid, false, &other) == 0 && proc_alive(&other);
                        bool ours_zombie = !exists && other.st.ppid == getpid();
                        proc_info_done(&other);
                        ret->exited = true;
                        if (ours_zombie)
                                exit_reason(filepid, true, false, p.qemu_log, 0, ret);
                        else
                                ret->exit_reason = strdupf(
                                        "QEMU (PID %d) is gone; its stale pidfile was removed%s",
                                        (int)filepid,
                                        exists ? " (the PID belongs to another process now)" : "");
                        ret->reason = strdupf("stale pidfile (PID %d) removed", (int)filepid);
                } else if (garbage) {
                        ret->reason = strdup("unreadable pidfile removed");
                }
                bool stale = prev > 0 || filepid > 0 || garbage || access(p.qmp, F_OK) == 0;
                if (stale && !foreign) {
                        cleanup_files(def, &p, prev > 0 || filepid > 0);
                } else if (filepid > 0 || garbage) {
                        /* Leave a foreign QEMU's files alone; only our pidfile was stale. */
                        dom_proc_unlink_quiet(p.pidfile);
                }
                pthread_mutex_lock(&lock);
                if (ent->pid == prev)
                        entry_forget_locked(ent);
                pthread_mutex_unlock(&lock);
        }
        /* Kept while the domain stays down: the engine observes every pass and decides on
         * restart='on-failure' later than the pass that saw the exit. */
        pthread_mutex_lock(&lock);
        if (ret->exited)
                ent->run.exit_clean = ret->exit_clean;
        else
                ret->exit_clean = ent->run.exit_clean;
        pthread_mutex_unlock(&lock);
        if (foreign) {
                ret->state = DOM_BROKEN;
                free(ret->reason);
                ret->reason = foreign_message(foreign, why, p.name);
        }
        return 0;
}

/* ---- start ------------------------------------------------------------------------------- */

/* Finds our running QEMU (pidfile, else the process table); *ret_foreign another one
 * running the domain, *ret_why (caller frees) why it is not ours when it looks it. */
static pid_t find_ours(const struct paths *p, pid_t *ret_foreign, char **ret_why) {
        pid_t filepid = 0, found = 0;
        *ret_foreign = 0;
        *ret_why = NULL;
        if (dom_proc_read_pidfile(p->pidfile, &filepid) == 0 && filepid > 0) {
                char *why = NULL;
                enum verdict v = verdict_of(filepid, p, true, &why);
                free(why);
                if (v == V_OURS)
                        return filepid;
        }
        scan_find(p, true, true, &found, ret_foreign, ret_why);
        if (found > 0)
                (void)dom_proc_write_pidfile(p->pidfile, found);
        return found;
}

/* Reaps our zombie left in the pidfile, if any, so it does not linger. */
static void reap_stale(const struct paths *p) {
        pid_t filepid = 0;
        if (dom_proc_read_pidfile(p->pidfile, &filepid) == 0 && filepid > 0) {
                struct proc_info pi;
                if (proc_read(filepid, false, &pi) == 0 && !proc_alive(&pi) &&
                    pi.st.ppid == getpid())
                        (void)dom_proc_reap(filepid, NULL);
                proc_info_done(&pi);
        }
}

/* SIGKILL and reap a QEMU we just spawned (failed start). */
static void kill_spawned(int fd, pid_t pid) {
        if (dom_proc_kill_reap(fd, pid, KILL_WAIT_USEC) < 0)
                log_debug("QEMU (PID %d) does not die", (int)pid);
}

static bool wants_vnc_password(const struct domain_def *def) {
        for (size_t i = 0; i < def->n_graphics; i++)
                if (def->graphics[i].type == DOMAIN_GRAPHICS_VNC && def->graphics[i].passwd)
                        return true;
        return false;
}

/* ---- host memory ---------------------------------------------------------------------- */

/* MemTotal of /proc/meminfo in KiB (the kernel's "kB" are KiB). */
static int host_mem_total_kib(uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        int r = read_full_file("/proc/meminfo", 64 * 1024, &s, &len);
        if (r < 0)
                return r;
        for (char *line = s; line && *line;) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                if (strncmp(line, "MemTotal:", 9) == 0) {
                        char *v = line + 9;
                        v += strspn(v, " \t");
                        char *unit = strchr(v, ' ');
                        if (!unit || strcmp(unit, " kB") != 0)
                                return -EINVAL;
                        *unit = '\0';
                        return parse_u64(v, ret);
                }
                line = end ? end + 1 : NULL;
        }
        return -ENOENT;
}

/* For people: "64 MiB", "15.5 GiB". */
static const char *format_kib(char buf[static 32], uint64_t kib) {
        const uint64_t mib = 1024, gib = 1024 * 1024, tib = gib * 1024;
        if (kib >= tib)
                snprintf(buf, 32, "%.1f TiB", (double)kib / (double)tib);
        else if (kib >= gib)
                snprintf(buf, 32, "%.1f GiB", (double)kib / (double)gib);
        else if (kib >= mib)
                snprintf(buf, 32, "%.1f MiB", (double)kib / (double)mib);
        else
                snprintf(buf, 32, "%" PRIu64 " KiB", kib);
        size_t n = strlen(buf);
        if (n > 6 && strncmp(buf + n - 6, ".0 ", 3) == 0) /* "64.0 MiB" -> "64 MiB" */
                memmove(buf + n - 6, buf + n - 4, 5);
        return buf;
}

/* QEMU would start and the guest would be killed by the OOM killer later, or QEMU
 * would fail to allocate after a long wait: refused up front instead. -EBUSY is one of
 * the engine's refusals (STORAGE_IS_REFUSAL): the domain is blocked until its file
 * changes, not retried every few seconds like a failure (which -ENOMEM would be). An
 * unreadable /proc/meminfo refuses nothing. */
static int check_host_memory(const struct domain_def *def, struct dv_error *err) {
        uint64_t total = 0;
        if (!def->has_memory)
                return 0;
        int r = host_mem_total_kib(&total);
        if (r < 0) {
                log_debug("domain %s: cannot read MemTotal from /proc/meminfo: %s", def->name,
                          strerror(-r));
                return 0;
        }
        if (def->memory_kib <= total)
                return 0;
        char want[32], have[32];
        return dv_error_add(err, -EBUSY, def->memory_line,
                            "<memory> of domain %s is %s (%" PRIu64
                            " KiB), more than this host has: "
                            "%s (MemTotal %" PRIu64 " KiB in /proc/meminfo); QEMU not started",
                            def->name, format_kib(want, def->memory_kib), def->memory_kib,
                            format_kib(have, total), total);
}

/* Every descriptor QEMU gets: the disks' layers (3, 4, ...), then what qemu_fds names. */
struct qemu_given {
        int fds[CMD_PASS_FDS_MAX];
        size_t n;
        bool owned[CMD_PASS_FDS_MAX]; /* closed by given_close (the disks' are not) */
};

static void given_close(struct qemu_given *g) {
        for (size_t k = 0; k < g->n; k++)
                if (g->owned[k] && g->fds[k] >= 0) {
                        close(g->fds[k]);
                        g->fds[k] = -1;
                }
}

/* Adds fd (taken over; -errno passed through) and returns its number in QEMU. */
static int given_add(struct qemu_given *g, int fd) {
        if (fd < 0)
                return fd;
        if (g->n >= CMD_PASS_FDS_MAX) {
                close(fd);
                return -E2BIG;
        }
        g->fds[g->n] = fd;
        g->owned[g->n] = true;
        return 3 + (int)g->n++;
}

/* A listening socket at path, root's only, in the agent's 0750 directory: QEMU gets the
 * descriptor and serves QMP on it; clients connect to the path as before. */
static int listen_at(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
            listen(fd, 16) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* The tap's queue, attached as root (TUNSETIFF on the persistent tap tap_create made):
 * QEMU needs no CAP_NET_ADMIN. vnet headers as QEMU's own open of a tap asks. */
static int tap_open(const char *tap) {
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct ifreq ifr = {0};
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        memcpy(ifr.ifr_name, tap, MIN(strlen(tap) + 1, sizeof(ifr.ifr_name)));
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        return fd;
}

/* A serial device's or console's file (type 'file'): made root's as before, and opened
 * for QEMU. Without append='on' QEMU would truncate it: done here. */
static int chr_file_open(const struct domain_chr *c) {
        int fd = open_private_log(c->source_path);
        if (fd >= 0 && c->append != DOMAIN_TRI_YES && ftruncate(fd, 0) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        return fd;
}

/* The VNC socket's directory, the domain's uid's alone, under RUN_DIR/qemu-vnc (0711: it
 * can be passed through, not listed): QEMU creates the socket itself. */
static int vnc_dir_prepare(const struct paths *p, uint32_t uid, struct dv_error *err) {
        _cleanup_free_ char *parent = path_dirname(p->vnc_dir);
        if (!parent)
                return dv_error_oom(err);
        int r = mkdir_p(parent, 0711);
        if (r >= 0 && mkdir(p->vnc_dir, 0700) < 0 && errno != EEXIST)
                r = -errno;
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create %s: %s", p->vnc_dir, strerror(-r));
        _cleanup_close_ int fd = open(p->vnc_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchown(fd, uid, uid) < 0 || fchmod(fd, 0700) < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot give %s to uid %u: %m",
                                    p->vnc_dir, (unsigned)uid);
        return 0;
}

/* QEMU's jail (drivers/domain/qemu-jail.h): mounted on RUN_DIR/qemu-jail, an empty
 * directory of root's, in QEMU's own mount namespace only. Writable in it: the directory
 * of the VNC socket, the domain's own or the one <graphics socket=...> names. */
static int jail_prepare(const struct domain_def *def, const struct paths *p, const char *program,
                        bool kvm, struct cmd_jail *ret, struct dv_error *err) {
        _cleanup_free_ char *binary = NULL;
        int r = cmd_find_program(program, &binary);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot run %s: %s", program, strerror(-r));
        _cleanup_free_ char *run = path_dirname(p->run_sub);
        _cleanup_free_ char *mountpoint = run ? path_join(run, "qemu-jail") : NULL;
        if (!mountpoint)
                return dv_error_oom(err);
        r = mkdir_p(mountpoint, 0700);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create %s: %s", mountpoint, strerror(-r));
        _cleanup_strv_free_ char **writable = NULL;
        for (size_t k = 0; k < def->n_graphics; k++) {
                const char *sock = def->graphics[k].socket;
                char *dir = sock ? path_dirname(sock) : strdup(p->vnc_dir);
                if (!dir || (!strv_contains(writable, dir) ? strv_consume(&writable, dir) < 0
                                                           : (free(dir), false)))
                        return dv_error_oom(err);
        }
        struct qemu_jail_opts o = {
                .binary = binary, .mountpoint = mountpoint, .kvm = kvm, .writable = writable};
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        r = qemu_jail_build(def, &o, ret, err);
        if (r >= 0)
                log_debug("domain %s: its jail holds %zu entries (built in %" PRIu64 " us)",
                          p->name, ret->n, now_usec(CLOCK_MONOTONIC) - t0);
        return r;
}

/* ---- sockets and devices for the devices libvirt adds (channels, vsock) ----------------- */

/* A channel's socket when the file writes no path: RUN_DIR/qemu/NAME.CHANNEL (the guest
 * agent's is NAME.org.qemu.guest_agent.0), in the agent's own 0750 directory. */
static char *channel_path(const struct paths *p, const struct domain_channel *c) {
        if (c->source_path)
                return strdup(c->source_path);
        return strdupf("%s/%s.%s", p->run_sub, p->name, strempty(c->target_name));
}

/* Whether channel c is one the agent binds for QEMU (unix, virtio, bind). */
static bool channel_bound(const struct domain_channel *c) {
        return streq_ptr(c->type, "unix") && streq_ptr(c->target_type, "virtio") &&
               (!c->source_mode || streq(c->source_mode, "bind")) && c->target_name;
}

/* A listening socket at path, root's, mode 0600: what was there is replaced only when it
 * is a socket (a stale one of ours); a file or a symlink planted there stays and fails
 * the start. */
static int channel_listen(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* bind creates the file with the umask's mode; fchmodat without following a
         * symlink then narrows what was just made, not something swapped in. */
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            fchmodat(AT_FDCWD, path, 0600, AT_SYMLINK_NOFOLLOW) < 0 || listen(fd, 16) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Removes the sockets the agent made in its run directory for the channels. */
static void channels_unlink(const struct domain_def *def, const struct paths *p) {
        for (size_t i = 0; i < def->n_channels; i++) {
                const struct domain_channel *c = &def->channels[i];
                if (c->source_path || !channel_bound(c))
                        continue;
                _cleanup_free_ char *path = channel_path(p, c);
                if (path)
                        dom_proc_unlink_quiet(path);
        }
}

/* /dev/vhost-vsock with the guest's CID set on it (the written one, or the first free
 * from 3 up, as libvirt chooses): QEMU gets the descriptor, the CID stays the agent's
 * choice. */
static int vsock_open(const struct domain_vsock *v, unsigned *ret_cid, struct dv_error *err) {
        _cleanup_close_ int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return dv_error_add(err, -errno, v->line,
                                    "<vsock> needs /dev/vhost-vsock (the vhost_vsock kernel "
                                    "module): %m");
        bool fixed = v->cid_auto != DOMAIN_TRI_YES && v->has_cid;
        uint64_t cid = fixed ? v->cid : 3;
        for (; cid < UINT32_MAX; cid++) {
                if (ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &cid) == 0) {
                        *ret_cid = (unsigned)cid;
                        return TAKE_FD(fd);
                }
                if (errno != EADDRINUSE || fixed || cid >= 65535)
                        break;
        }
        return dv_error_add(err, -errno, v->line, "cannot give the guest vsock CID %" PRIu64 ": %m",
                            cid);
}

/* What the devices of the file need from the agent, for qemu_argv. */
struct qemu_devs {
        int *channels;        /* one per def->channels[i]: its listening socket's number */
        char **channel_paths; /* one per def->channels[i] */
        size_t n_channels;
        unsigned vsock_cid;
};

static void qemu_devs_done(struct qemu_devs *d) {
        free(d->channels);
        for (size_t i = 0; d->channel_paths && i < d->n_channels; i++)
                free(d->channel_paths[i]);
        free(d->channel_paths);
        *d = (struct qemu_devs){0};
}

/* The channels' sockets, bound and listening, and /dev/vhost-vsock: added to g as QEMU's
 * descriptors and named in f (docs/qemu.md, Channels). */
static int give_devices(const struct domain_def *def, const struct paths *p, struct qemu_given *g,
                        struct qemu_fds *f, struct qemu_devs *d, struct dv_error *err) {
        f->vsock = -1;
        d->n_channels = def->n_channels;
        d->channels = calloc(def->n_channels + 1, sizeof(int));
        d->channel_paths = calloc(def->n_channels + 1, sizeof(char *));
        if (!d->channels || !d->channel_paths)
                return dv_error_oom(err);
        f->channels = d->channels;
        for (size_t i = 0; i < def->n_channels; i++) {
                const struct domain_channel *c = &def->channels[i];
                d->channels[i] = -1;
                if (!(d->channel_paths[i] = channel_path(p, c)))
                        return dv_error_oom(err);
                if (!channel_bound(c))
                        continue; /* qemu_argv refuses it */
                int r = d->channels[i] = given_add(g, channel_listen(d->channel_paths[i]));
                if (r < 0)
                        return dv_error_add(err, r, c->line,
                                            "cannot listen on %s for channel "
                                            "'%s': %s",
                                            d->channel_paths[i], c->target_name, strerror(-r));
        }
        if (def->has_vsock) {
                int r = f->vsock = given_add(g, vsock_open(&def->vsock, &d->vsock_cid, err));
                if (r < 0)
                        return dv_error_failed(err)
                                       ? r
                                       : dv_error_add(err, r, def->vsock.line,
                                                      "cannot pass the vsock: %s", strerror(-r));
        }
        return 0;
}

static int start_spawned(const struct domain_def *def, const struct paths *p,
                         struct qemu_entry *ent, char *const *argv, struct qemu_given *g,
                         uint32_t uid, const struct cmd_jail *jail, const struct qemu_cgroup *cg,
                         bool paused, struct dv_error *err) {
        off_t offset = file_size(p->qemu_log);
        pid_t pid = 0;
        /* QEMU's QMP socket appearing in run_dir wakes the wait at once (no polling
         * interval in the start latency); set up before QEMU can create it. */
        _cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino >= 0 && inotify_add_watch(ino, p->run_sub, IN_CREATE | IN_MOVED_TO) < 0) {
                close(ino);
                ino = -1;
        }
        struct cmd_creds creds = {.uid = uid,
                                  .gid = uid,
                                  .cgroup_fds = cg->fds,
                                  .n_cgroup_fds = cg->n_fds,
                                  .cgroup_v2_fd = cg->v2_fd,
                                  .jail = jail};
        int r = cmd_spawn_detached_as(argv, p->qemu_log, NULL, g->fds, g->n,
                                      uid || cg->n_fds || cg->v2_fd ? &creds : NULL, &pid, err);
        /* QEMU holds them now: closing ours makes a client of a QEMU that died get an error
         * rather than wait in the listen queue. */
        given_close(g);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = pidfd_open(pid, 0);
        /* QEMU writes no pidfile (it is not allowed in run_dir): the agent does. */
        r = dom_proc_write_pidfile(p->pidfile, pid);
        if (r < 0) {
                kill_spawned(fd, pid);
                return dv_error_add(err, r, 0, "cannot write %s: %s", p->pidfile, strerror(-r));
        }
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + START_WAIT_USEC;
        _cleanup_free_ char *line = cmd_argv_string(argv);
        struct json_object *st = NULL;
        _cleanup_dv_error_ struct dv_error qerr = DV_ERROR_INIT;

        for (;;) {
                int status = 0;
                if (dom_proc_reap(pid, &status)) {
                        _cleanup_free_ char *tail = log_tail_since(p->qemu_log, offset);
                        dv_error_set_command(err, line, tail);
                        if (WIFSIGNALED(status))
                                return dv_error_add(
                                        err, -EIO, 0,
                                        "QEMU was killed by signal %d while starting%s%s",
                                        WTERMSIG(status), tail ? ": " : "", strempty(tail));
                        return dv_error_add(err, -EIO, 0,
                                            "QEMU failed to start (exit status %d)%s%s",
                                            WEXITSTATUS(status), tail ? ": " : "", strempty(tail));
                }
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                if (access(p->qmp, F_OK) == 0) {
                        dv_error_clear(&qerr);
                        pthread_mutex_lock(&ent->qmp_lock);
                        struct qmp *q = NULL;
                        r = qmp_connect(p->qmp, MIN(deadline - now, QMP_CMD_USEC), &q, &qerr);
                        if (r >= 0 && paused) {
                                for (size_t i = 0; r >= 0 && i < def->n_graphics; i++) {
                                        if (!def->graphics[i].passwd)
                                                continue;
                                        struct json_object *a = json_object_new_object();
                                        json_object_object_add(a, "protocol",
                                                               json_object_new_string("vnc"));
                                        json_object_object_add(
                                                a, "password",
                                                json_object_new_string(def->graphics[i].passwd));
                                        r = qmp_execute(q, "set_password", a, QMP_CMD_USEC, NULL,
                                                        &qerr);
                                        json_object_put(a);
                                }
                                if (r >= 0)
                                        r = qmp_execute(q, "cont", NULL, QMP_CMD_USEC, NULL, &qerr);
                        }
                        /* The events monitor is connected here, in the worker, before the
                         * status query: no event can fall between the two, and the agent's
                         * loop never waits for this QEMU's monitors. */
                        if (r >= 0)
                                events_ensure(ent, pid, p->events);
                        if (r >= 0)
                                r = qmp_execute(q, "query-status", NULL, QMP_CMD_USEC, &st, &qerr);
                        qmp_close(q);
                        pthread_mutex_unlock(&ent->qmp_lock);
                        if (r >= 0)
                                break;
                        /* Listening but not answering yet, or a QMP error: try again until
                         * the deadline unless QEMU refused a command. */
                        if (r == -EIO || r == -EOPNOTSUPP)
                                break;
                }
                /* Until QEMU exits (pidfd) or something is created in run_dir (inotify);
                 * once the socket exists but does not answer yet, retry every 10 ms. */
                bool have_socket = access(p->qmp, F_OK) == 0;
                struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = ino, .events = POLLIN}};
                int wait_ms =
                        have_socket || ino < 0 ? 10 : (int)MIN((deadline - now) / 1000 + 1, 1000u);
                if (fd < 0 && ino < 0)
                        usleep(10000);
                else if (poll(pf, 2, wait_ms) > 0 && (pf[1].revents & POLLIN)) {
                        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                        while (read(ino, buf, sizeof(buf)) > 0)
                                ;
                }
        }

        if (r < 0 || !st) {
                kill_spawned(fd, pid);
                json_object_put(st);
                _cleanup_free_ char *tail = log_tail_since(p->qemu_log, offset);
                dv_error_set_command(err, line, tail);
                if (dv_error_failed(&qerr)) {
                        r = dv_error_add(err, qerr.code, 0, "QEMU did not come up: %s%s%s",
                                         dv_error_message(&qerr), tail ? "; QEMU said: " : "",
                                         strempty(tail));
                } else
                        r = dv_error_add(err, -ETIMEDOUT, 0,
                                         "QEMU did not open its QMP socket within 10 s%s%s",
                                         tail ? "; QEMU said: " : "", strempty(tail));
                return r;
        }
        /* Who it is, for every later look (observe, stop, an agent restart): QMP answered,
         * so it has run the emulator; it is our child, its PID cannot be reused yet. */
        struct dom_proc_ident id;
        r = dom_proc_ident_read(pid, &id);
        if (r >= 0)
                r = dom_proc_ident_write(p->ident, &id);
        if (r < 0) {
                kill_spawned(fd, pid);
                json_object_put(st);
                return dv_error_add(err, r, 0, "cannot record QEMU (PID %d) in %s: %s", (int)pid,
                                    p->ident, strerror(-r));
        }
        char *s = status_of(st);
        json_object_put(st);
        pthread_mutex_lock(&lock);
        entry_forget_locked(ent);
        ent->pid = pid;
        ent->child = true;
        ent->log_offset = offset;
        ent->qmp_status = s;
        ent->qmp_pid = pid;
        ent->qmp_at = now_usec(CLOCK_MONOTONIC);
        pthread_mutex_unlock(&lock);
        log_debug("domain %s: QEMU running as PID %d (%s)", def->name, (int)pid, strna(s));
        return 0;
}

/* The firmware of a domain that wants it chosen (qemu-firmware.c); its NVRAM is
 * STATE_DIR/domains/NAME_VARS.fd unless <nvram> names one. */
static int firmware_prepare(const struct domain_def *def, const struct paths *p,
                            struct qemu_firmware *ret, struct dv_error *err) {
        _cleanup_free_ char *nvram = strdupf("%s/%s_VARS.fd", p->state_sub, p->name);
        if (!nvram)
                return dv_error_oom(err);
        return qemu_firmware_select(def, nvram, NULL, ret, err);
}

/* Pins the vCPU and emulator threads of the QEMU just started (docs/qemu.md, Cgroup);
 * on failure QEMU is killed: no half-confined start. */
static int start_pin(const struct domain_def *def, const struct paths *p, struct qemu_entry *ent,
                     struct dv_error *err) {
        if (!qemu_cgroup_wants_pin(def))
                return 0;
        pthread_mutex_lock(&lock);
        pid_t pid = ent->pid;
        pthread_mutex_unlock(&lock);
        struct json_object *cpus = NULL;
        int r = qmp_once(ent, p->qmp, "query-cpus-fast", NULL, QMP_CMD_USEC, &cpus, err);
        if (r >= 0)
                r = qemu_cgroup_pin(def, pid, cpus, err);
        json_object_put(cpus);
        if (r < 0) {
                _cleanup_close_ int fd = pidfd_open(pid, 0);
                kill_spawned(fd, pid);
                pthread_mutex_lock(&lock);
                entry_forget_locked(ent);
                pthread_mutex_unlock(&lock);
        }
        return r;
}

/* Opens for QEMU what it would otherwise open by path (docs/qemu.md, Its own user) and
 * fills f with the numbers QEMU gets them as, after the disks' in g. */
static int give_files(const struct domain_def *def, const struct paths *p, char *const *taps,
                      const struct qemu_firmware *fw, struct qemu_given *g, struct qemu_fds *f,
                      int *serials, int *consoles, int *tap_fds, struct dv_error *err) {
        *f = (struct qemu_fds){.loader = -1,
                               .nvram = -1,
                               .serials = serials,
                               .consoles = consoles,
                               .taps = tap_fds};
        int r = f->qmp = given_add(g, listen_at(p->qmp));
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot listen on %s: %s", p->qmp, strerror(-r));
        r = f->events = given_add(g, listen_at(p->events));
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot listen on %s: %s", p->events, strerror(-r));
        /* What a guest prints may be private: root's only, as before. */
        r = f->console_log = given_add(g, open_private_log(p->console_log));
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot open %s: %s", p->console_log, strerror(-r));
        for (size_t i = 0; i < def->n_serials + def->n_consoles; i++) {
                bool ser = i < def->n_serials;
                const struct domain_chr *c =
                        ser ? &def->serials[i] : &def->consoles[i - def->n_serials];
                int *slot = ser ? &serials[i] : &consoles[i - def->n_serials];
                *slot = -1;
                if (domain_chr_type(c) != DOMAIN_CHR_FILE || !c->source_path)
                        continue;
                r = *slot = given_add(g, chr_file_open(c));
                if (r < 0)
                        return dv_error_add(err, r, c->line, "cannot open %s: %s", c->source_path,
                                            strerror(-r));
        }
        for (size_t i = 0; i < def->n_interfaces; i++) {
                tap_fds[i] = -1;
                if (!taps[i])
                        continue;
                r = tap_fds[i] = given_add(g, tap_open(taps[i]));
                if (r < 0)
                        return dv_error_add(err, r, def->interfaces[i].line,
                                            "cannot attach to tap %s: %s", taps[i], strerror(-r));
        }
        /* The pflash units: the chosen firmware's (its code read-only, the domain's own
         * varstore), else <loader> and <nvram> as written. */
        const struct domain_os *os = &def->os;
        const char *code = fw ? fw->code
                           : os->has_loader && os->loader.type == DOMAIN_LOADER_PFLASH
                                   ? os->loader.path
                                   : NULL;
        const char *nvram = fw ? fw->nvram : os->has_nvram ? os->nvram.path : NULL;
        if (code) {
                bool ro = fw || os->loader.readonly == DOMAIN_TRI_YES;
                int fd = open(code, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
                r = f->loader = given_add(g, fd < 0 ? -errno : fd);
                if (r < 0)
                        return dv_error_add(err, r, os->line, "cannot open the loader %s: %s", code,
                                            strerror(-r));
        }
        if (nvram) {
                int fd = open(nvram, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                r = f->nvram = given_add(g, fd < 0 ? -errno : fd);
                if (r < 0)
                        return dv_error_add(err, r, os->line, "cannot open the NVRAM %s: %s", nvram,
                                            strerror(-r));
        }
        return 0;
}

static int start_locked(const struct domain_def *def, const struct paths *p, struct qemu_entry *ent,
                        const char *uuid, uint32_t uid, char *const *disk_paths, char *const *macs,
                        char *const *bridges, struct dv_error *err) {
        pid_t foreign = 0;
        _cleanup_free_ char *why = NULL;
        pid_t pid = find_ours(p, &foreign, &why);
        if (pid > 0) {
                log_debug("domain %s: QEMU runs already as PID %d", p->name, (int)pid);
                return 0;
        }
        if (foreign > 0) {
                _cleanup_free_ char *m = foreign_message(foreign, why, p->name);
                return dv_error_add(err, -EEXIST, 0, "%s", strna(m));
        }
        int r = check_host_memory(def, err);
        if (r >= 0 && uid)
                r = qemu_jail_check_readable(def, uid, uid, err);
        if (r < 0)
                return r;
        reap_stale(p);
        cleanup_files(def, p, false);

        r = mkdir_p(p->run_sub, 0750);
        if (r >= 0)
                r = mkdir_p(p->state_sub, 0755);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot create %s or %s: %s", p->run_sub,
                                    p->state_sub, strerror(-r));
        if (def->n_graphics > 0) {
                r = vnc_dir_prepare(p, uid, err);
                if (r < 0)
                        return r;
        }

        size_t n = def->n_interfaces;
        _cleanup_(cmd_jail_done) struct cmd_jail jail = {0};
        _cleanup_(qemu_firmware_done) struct qemu_firmware fw = {0};
        _cleanup_strv_free_ char **argv = NULL, **locations = NULL;
        _cleanup_(qemu_disks_done) struct qemu_disks disks = {0};
        _cleanup_free_ int *chr_fds = NULL, *tap_fds = NULL;
        _cleanup_(qemu_devs_done) struct qemu_devs devs = {0};
        _cleanup_(qemu_cgroup_done) struct qemu_cgroup cg = {0};
        /* One entry per interface, NULL for those without a tap. */
        _cleanup_free_ char **taps = calloc(n + 1, sizeof(char *));
        _cleanup_free_ char(*tap_buf)[IFNAMSIZ] = calloc(n + 1, IFNAMSIZ);
        if (!taps || !tap_buf)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct domain_net *ifc = &def->interfaces[i];
                if (!iface_has_tap(ifc))
                        continue;
                const char *bridge =
                        bridges && bridges[i] && *bridges[i] ? bridges[i] : ifc->source_bridge;
                if (!bridge) {
                        r = dv_error_add(err, -EINVAL, ifc->line,
                                         "interface %zu of domain %s: no bridge to attach it to",
                                         i + 1, p->name);
                        goto fail_taps;
                }
                char *name = tap_buf[i];
                r = qemu_tap_name(p->name, i, name);
                taps[i] = name;
                if (r >= 0)
                        r = tap_create(name, bridge, err);
                if (r < 0) {
                        if (!dv_error_failed(err))
                                dv_error_add(err, r, ifc->line, "cannot create tap %s", name);
                        goto fail_taps;
                }
        }

        /* QEMU gets the images as descriptors: what was checked here is what it uses. */
        locations = locations_copy();
        if (!locations) {
                r = dv_error_oom(err);
                goto fail_taps;
        }
        r = qemu_disks_open(def, disk_paths, locations, &disks, err);
        if (r < 0)
                goto fail_taps;

        struct qemu_given given = {.n = disks.n};
        memcpy(given.fds, disks.fds, disks.n * sizeof(int));
        struct qemu_fds qfds;
        chr_fds = calloc(def->n_serials + def->n_consoles + 1, sizeof(int));
        tap_fds = calloc(n + 1, sizeof(int));
        if (!chr_fds || !tap_fds) {
                r = dv_error_oom(err);
                goto fail_taps;
        }
        if (qemu_firmware_wanted(def)) {
                r = firmware_prepare(def, p, &fw, err);
                if (r >= 0)
                        r = qemu_firmware_nvram_create(&fw, err);
                if (r < 0) {
                        given_close(&given);
                        goto fail_taps;
                }
        }
        r = give_files(def, p, taps, qemu_firmware_wanted(def) ? &fw : NULL, &given, &qfds, chr_fds,
                       chr_fds + def->n_serials, tap_fds, err);
        if (r >= 0)
                r = give_devices(def, p, &given, &qfds, &devs, err);
        if (r < 0) {
                given_close(&given);
                goto fail_taps;
        }

        bool paused = wants_vnc_password(def);
        struct qemu_argv_ctx ctx = {
                .fds = &qfds,
                .binary = def->emulator ? def->emulator : p->binary,
                .accel = qemu_accel_for(def),
                .qmp_socket = p->qmp,
                .pidfile = p->pidfile,
                .serial_log = p->console_log,
                .vnc_socket = p->vnc,
                .disk_paths = disk_paths,
                .disk_chains = disks.chains,
                .tap_names = taps,
                .macs = macs,
                .uuid = uuid,
                .paused = paused,
                .firmware = fw.code ? &fw : NULL,
                .channel_paths = devs.channel_paths,
                .vsock_cid = devs.vsock_cid,
        };
        r = qemu_argv(def, &ctx, &argv, err);
        if (r >= 0 && uid)
                r = jail_prepare(def, p, argv[0], streq(ctx.accel, "kvm"), &jail, err);
        if (r >= 0)
                r = qemu_cgroup_prepare(def, streq(ctx.accel, "kvm"), &cg, err);
        if (r >= 0)
                r = start_spawned(def, p, ent, argv, &given, uid, uid ? &jail : NULL, &cg, paused,
                                  err);
        given_close(&given);
        if (r >= 0)
                r = start_pin(def, p, ent, err);
        if (r >= 0)
                return 0;
fail_taps:
        cleanup_files(def, p, true);
        return r;
}

int qemu_start(const struct domain_def *def, char *const *disk_paths, char *const *macs,
               char *const *bridges, struct dv_error *err) {
        return qemu_start_uuid(def, NULL, disk_paths, macs, bridges, err);
}

int qemu_start_uuid(const struct domain_def *def, const char *uuid, char *const *disk_paths,
                    char *const *macs, char *const *bridges, struct dv_error *err) {
        return qemu_start_as(def, uuid, 0, disk_paths, macs, bridges, err);
}

int qemu_start_as(const struct domain_def *def, const char *uuid, uint32_t uid,
                  char *const *disk_paths, char *const *macs, char *const *bridges,
                  struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        struct qemu_entry *ent = entry_get(p.name);
        if (!ent)
                return dv_error_oom(err);
        if (dom_proc_busy_begin(&ent->run, &lock) < 0)
                return dv_error_add(err, -EBUSY, 0, "domain %s is being started or stopped",
                                    p.name);
        r = start_locked(def, &p, ent, uuid, uid, disk_paths, macs, bridges, err);
        dom_proc_busy_end(&ent->run, &lock);
        return r;
}

/* ---- stop -------------------------------------------------------------------------------- */

static int stop_locked(const struct domain_def *def, const struct paths *p, struct qemu_entry *ent,
                       uint64_t timeout_usec, struct dv_error *err) {
        pid_t foreign = 0;
        _cleanup_free_ char *why = NULL;
        pid_t pid = find_ours(p, &foreign, &why);
        if (pid <= 0) {
                reap_stale(p);
                if (foreign > 0) {
                        /* Not ours: leave the process and whatever it uses alone. */
                        _cleanup_free_ char *m = foreign_message(foreign, why, p->name);
                        log_debug("domain %s: not stopped: %s", p->name, strna(m));
                        pid_t filepid = 0;
                        if (dom_proc_read_pidfile(p->pidfile, &filepid) < 0 || filepid > 0)
                                dom_proc_unlink_quiet(p->pidfile);
                } else
                        cleanup_files(def, p, true);
                pthread_mutex_lock(&lock);
                entry_forget_locked(ent);
                pthread_mutex_unlock(&lock);
                return 0;
        }

        /* The pidfd pins the process: checked once more after opening it (command line
         * and identity), a signal can only reach the QEMU we looked at, never a process
         * that reused its PID. */
        _cleanup_close_ int fd = pidfd_open(pid, 0);
        _cleanup_free_ char *why2 = NULL;
        bool ours = fd >= 0 && verdict_of(pid, p, false, &why2) == V_OURS;
        if (ours) {
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                int r = qmp_once(ent, p->qmp, "system_powerdown", NULL,
                                 MIN(timeout_usec, QMP_CMD_USEC) + 1, NULL, &e);
                bool exited;
                if (r >= 0) {
                        exited = dom_proc_wait_exit(fd, pid, timeout_usec);
                } else {
                        log_debug("domain %s: %s", p->name, strna(dv_error_message(&e)));
                        exited = false;
                }
                dv_error_clear(&e);
                if (!exited) {
                        log_debug("domain %s: no power-down within the timeout, sending quit",
                                  p->name);
                        r = qmp_once(ent, p->qmp, "quit", NULL, QUIT_WAIT_USEC, NULL, &e);
                        if (r < 0)
                                (void)dom_proc_signal(fd, pid, SIGTERM);
                        exited = dom_proc_wait_exit(fd, pid, QUIT_WAIT_USEC);
                }
                if (!exited) {
                        log_debug("domain %s: killing QEMU PID %d", p->name, (int)pid);
                        r = dom_proc_signal(fd, pid, SIGKILL);
                        if (r < 0 || !dom_proc_wait_exit(fd, pid, KILL_WAIT_USEC))
                                return dv_error_add(err, r < 0 ? r : -ETIMEDOUT, 0,
                                                    "QEMU of domain %s (PID %d) does not stop",
                                                    p->name, (int)pid);
                }
        }
        (void)dom_proc_reap(pid, NULL);
        cleanup_files(def, p, true);
        pthread_mutex_lock(&lock);
        entry_forget_locked(ent);
        pthread_mutex_unlock(&lock);
        return 0;
}

int qemu_stop(const struct domain_def *def, uint64_t timeout_usec, struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        struct qemu_entry *ent = entry_get(p.name);
        if (!ent)
                return dv_error_oom(err);
        if (dom_proc_busy_begin(&ent->run, &lock) < 0)
                return dv_error_add(err, -EBUSY, 0, "domain %s is being started or stopped",
                                    p.name);
        events_close(ent); /* the power-down's own events are no news */
        r = stop_locked(def, &p, ent, timeout_usec, err);
        dom_proc_busy_end(&ent->run, &lock);
        return r;
}

/* ---- the driver table ------------------------------------------------------------------ */

static int qemu_drv_start(const struct domain_def *def, const struct dom_start *a,
                          struct dv_error *err) {
        return qemu_start_as(def, a->uuid, a->uid, a->disk_paths, a->macs, a->bridges, err);
}

/* Only interfaces the driver makes a tap for have a host-side device. */
static int qemu_drv_iface_name(const struct domain_def *def, size_t index,
                               char buf[static IFNAMSIZ]) {
        if (index >= def->n_interfaces)
                return -ENOENT;
        enum domain_net_type t = def->interfaces[index].type;
        if (t != DOMAIN_NET_NETWORK && t != DOMAIN_NET_BRIDGE)
                return -ENOENT;
        return qemu_tap_name(def->name, index, buf);
}

/* The argv qemu_start would run, one element per line: the same paths and tap names. */
static int qemu_drv_native(const struct domain_def *def, const struct dom_start *a, FILE *f,
                           struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        char **taps = calloc(def->n_interfaces + 1, sizeof(char *));
        if (!taps)
                return dv_error_oom(err);
        for (size_t i = 0; i < def->n_interfaces; i++) {
                char buf[IFNAMSIZ];
                if (qemu_drv_iface_name(def, i, buf) >= 0 && !(taps[i] = strdup(buf)))
                        r = -ENOMEM;
        }
        /* The images are opened as a start would (the same checks); the descriptors
         * cannot be passed to a printed command line, so their numbers are listed on
         * stderr. When they cannot be opened here the argv names the paths instead. */
        _cleanup_strv_free_ char **locations = locations_copy();
        _cleanup_(qemu_disks_done) struct qemu_disks disks = {0};
        _cleanup_dv_error_ struct dv_error derr = DV_ERROR_INIT;
        if (locations && qemu_disks_open(def, a->disk_paths, locations, &disks, &derr) < 0)
                fprintf(stderr, "disk images not opened (%s): the command line names their paths\n",
                        strna(dv_error_message(&derr)));
        for (size_t k = 0; k < disks.n; k++)
                fprintf(stderr, "fd %d: %s (%s, %s)\n", disks.layers[k].fd, disks.layers[k].path,
                        disks.layers[k].format,
                        (fcntl(disks.fds[k], F_GETFL) & O_ACCMODE) == O_RDONLY ? "read-only"
                                                                               : "read-write");
        qemu_cgroup_print(def, streq(qemu_accel_for(def), "kvm"), stderr);
        _cleanup_strv_free_ char **argv = NULL;
        struct qemu_argv_ctx ctx = {
                .disk_chains = disks.chains,
                .binary = def->emulator ? def->emulator : p.binary,
                .accel = qemu_accel_for(def),
                .qmp_socket = p.qmp,
                .pidfile = p.pidfile,
                .serial_log = p.console_log,
                .vnc_socket = p.vnc,
                .disk_paths = a->disk_paths,
                .tap_names = taps,
                .macs = a->macs,
                .uuid = a->uuid,
                .paused = wants_vnc_password(def),
        };
        _cleanup_(qemu_firmware_done) struct qemu_firmware fw = {0};
        /* The channels' sockets as a start binds them; the vsock CID found free then. */
        _cleanup_strv_free_ char **chans = calloc(def->n_channels + 1, sizeof(char *));
        for (size_t i = 0; chans && i < def->n_channels; i++)
                if (!(chans[i] = channel_path(&p, &def->channels[i])))
                        r = -ENOMEM;
        if (!chans)
                r = -ENOMEM;
        ctx.channel_paths = chans;
        if (def->has_vsock && def->vsock.cid_auto == DOMAIN_TRI_YES) {
                ctx.vsock_cid = 3;
                fprintf(stderr, "vsock: guest CID 3 stands for the first free one, chosen at "
                                "start\n");
        }
        if (r < 0)
                r = dv_error_oom(err);
        else if (qemu_firmware_wanted(def) && (r = firmware_prepare(def, &p, &fw, err)) >= 0)
                ctx.firmware = &fw;
        if (r >= 0)
                r = qemu_argv(def, &ctx, &argv, err);
        for (size_t i = 0; i < def->n_interfaces; i++)
                free(taps[i]);
        free(taps);
        for (size_t i = 0; r >= 0 && argv[i]; i++)
                fprintf(f, "%s\n", argv[i]);
        return r;
}

const struct domain_driver qemu_domain_driver = {
        .name = "QEMU",
        .observe = qemu_observe,
        .start = qemu_drv_start,
        .stop = qemu_stop,
        .iface_name = qemu_drv_iface_name,
        .events_fd = qemu_events_fd,
        .events_dispatch = qemu_events_dispatch,
        .native = qemu_drv_native,
};
