/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container driver of drivers/domain/lxc.h: the container's init is cloned straight
 * into its namespaces (clone3, no helper binary) by a child that only makes system calls,
 * its plan computed beforehand; observe, adoption, events, graceful stop then SIGKILL. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <netinet/ether.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/domain/cgroup.h"
#include "drivers/domain/lxc-plan.h"
#include "drivers/domain/lxc.h"
#include "drivers/domain/proc.h"
#include "drivers/network/bridge.h"
#include "drivers/storage/blkid.h"
#include "model/object.h"
#include "util/fs.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

#define DEFAULT_RUN_DIR       "/run/declvirt"
#define DEFAULT_STATE_DIR     "/var/lib/declvirt/state"
#define DEFAULT_TEMPLATE_DIR  "/var/lib/declvirt/templates"
#define DEFAULT_CONTAINER_DIR "/var/lib/declvirt/containers"
#define DEFAULT_CGROUP_ROOT   "/sys/fs/cgroup"
#define DEFAULT_CGROUP_BASE   "declvirt"

#define START_WAIT_MSEC     10000
#define KILL_WAIT_USEC      (5 * USEC_PER_SEC)
#define CGROUP_WAIT_MSEC    2000
#define OBSERVE_CGROUP_MSEC 200

/* ---- configuration and per-container records ------------------------------------------ */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *cfg_run_dir, *cfg_state_dir, *cfg_template_dir, *cfg_container_dir;
static char *cfg_cgroup_root, *cfg_cgroup_base;

/* What this process knows of a container beyond the host's files; lives as long as the
 * process. Guarded by `lock` (pidfd also by ev_lock). */
struct lxc_entry {
        struct dom_proc_busy run; /* busy: a start or stop runs, observe only reads */
        pid_t pid;                /* the init last seen running, 0 */
        uint64_t start;           /* its start time (/proc/PID/stat field 22) */
        bool child;               /* ... is our child: we reap it and learn its exit status */
        int pidfd;                /* in ev_epoll while it runs, -1 */
};
static struct hashmap *recs;
/* The events' epoll set (see lxc_events_fd), guarded by ev_lock. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static int ev_epoll = -1;

static void set_str(char **dst, const char *v, const char *def) {
        free(*dst);
        *dst = strdup(v ? v : def);
}

void lxc_driver_set_config(const struct dom_driver_config *c) {
        pthread_mutex_lock(&lock);
        set_str(&cfg_run_dir, c ? c->run_dir : NULL, DEFAULT_RUN_DIR);
        set_str(&cfg_state_dir, c ? c->state_dir : NULL, DEFAULT_STATE_DIR);
        set_str(&cfg_template_dir, c ? c->template_dir : NULL, DEFAULT_TEMPLATE_DIR);
        set_str(&cfg_container_dir, c ? c->container_dir : NULL, DEFAULT_CONTAINER_DIR);
        pthread_mutex_unlock(&lock);
}

void lxc_driver_set_cgroup(const char *root, const char *base) {
        pthread_mutex_lock(&lock);
        set_str(&cfg_cgroup_root, root, DEFAULT_CGROUP_ROOT);
        set_str(&cfg_cgroup_base, base, DEFAULT_CGROUP_BASE);
        pthread_mutex_unlock(&lock);
}

void lxc_driver_forget(void) {
        pthread_mutex_lock(&ev_lock);
        pthread_mutex_lock(&lock);
        size_t i = 0;
        const char *key;
        void *v;
        while (recs && hashmap_iter(recs, &i, &key, &v)) {
                struct lxc_entry *r = v;
                if (r->pidfd >= 0) {
                        if (ev_epoll >= 0)
                                (void)epoll_ctl(ev_epoll, EPOLL_CTL_DEL, r->pidfd, NULL);
                        close(r->pidfd);
                }
                /* Kept allocated: epoll may still name it; zeroed like a new record. */
                *r = (struct lxc_entry){.pidfd = -1};
        }
        pthread_mutex_unlock(&lock);
        pthread_mutex_unlock(&ev_lock);
}

static struct lxc_entry *entry_get(const char *name) {
        pthread_mutex_lock(&lock);
        if (!recs)
                recs = hashmap_new();
        struct lxc_entry *r = recs ? hashmap_get(recs, name) : NULL;
        if (!r && recs) {
                r = calloc(1, sizeof(*r));
                if (r) {
                        r->pidfd = -1;
                        if (hashmap_put(recs, name, r, NULL) < 0) {
                                free(r);
                                r = NULL;
                        }
                }
        }
        pthread_mutex_unlock(&lock);
        return r;
}

/* ---- paths and the plan's context ---------------------------------------------------------- */

struct paths {
        char *name;
        char *run_sub, *state_sub, *template_dir, *container_dir;
        char *pidfile, *startfile, *ct_dir, *root;
        char *cgroup_root, *cgroup_base;
};

static void paths_done(struct paths *p) {
        free(p->name);
        free(p->run_sub);
        free(p->state_sub);
        free(p->template_dir);
        free(p->container_dir);
        free(p->pidfile);
        free(p->startfile);
        free(p->ct_dir);
        free(p->root);
        free(p->cgroup_root);
        free(p->cgroup_base);
        *p = (struct paths){0};
}

static int paths_get(const struct domain_def *def, struct paths *p, struct dv_error *err) {
        *p = (struct paths){0};
        const char *name = def ? def->name : NULL;
        const char *problem = dv_name_problem(DV_KIND_DOMAIN, name);
        if (problem)
                return dv_error_add(err, -EINVAL, 0, "domain name '%s': %s", strna(name), problem);
        pthread_mutex_lock(&lock);
        p->run_sub = path_join(cfg_run_dir ? cfg_run_dir : DEFAULT_RUN_DIR, "lxc");
        p->state_sub = path_join(cfg_state_dir ? cfg_state_dir : DEFAULT_STATE_DIR, "domains");
        p->template_dir = strdup(cfg_template_dir ? cfg_template_dir : DEFAULT_TEMPLATE_DIR);
        p->container_dir = strdup(cfg_container_dir ? cfg_container_dir : DEFAULT_CONTAINER_DIR);
        p->cgroup_root = strdup(cfg_cgroup_root ? cfg_cgroup_root : DEFAULT_CGROUP_ROOT);
        p->cgroup_base = strdup(cfg_cgroup_base ? cfg_cgroup_base : DEFAULT_CGROUP_BASE);
        pthread_mutex_unlock(&lock);
        p->name = strdup(name);
        if (!p->run_sub || !p->state_sub || !p->template_dir || !p->container_dir ||
            !p->cgroup_root || !p->cgroup_base || !p->name ||
            !(p->pidfile = strdupf("%s/%s.pid", p->run_sub, name)) ||
            !(p->startfile = strdupf("%s/%s.start", p->run_sub, name)) ||
            !(p->ct_dir = strdupf("%s/%s", p->run_sub, name)) ||
            !(p->root = strdupf("%s/%s/root", p->run_sub, name))) {
                paths_done(p);
                return dv_error_oom(err);
        }
        return 0;
}

static int plan_for(const struct domain_def *def, const struct paths *p,
                    const struct dom_start *args, struct lxc_plan **ret, struct dv_error *err) {
        struct lxc_plan_ctx ctx = {
                .run_dir = p->run_sub,
                .state_dir = p->state_sub,
                .template_dir = p->template_dir,
                .container_dir = p->container_dir,
                .cgroup_root = p->cgroup_root,
                .cgroup_base = p->cgroup_base,
                .macs = args ? args->macs : NULL,
                .bridges = args ? args->bridges : NULL,
                .id_base = args ? args->id_base : 0,
                .privileged = args && args->privileged,
        };
        struct cgroup_layout l;
        int r = cgroup_layout_get(p->cgroup_root, p->cgroup_base, &l);
        ctx.cgroup_mode = l.mode;
        ctx.cgroup_unified = l.unified;
        ctx.cgroup_devices = l.devices;
        if (r < 0)
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "no cgroup hierarchy found at %s: containers cannot run",
                                    p->cgroup_root);
        return lxc_plan_build(def, &ctx, ret, err);
}

/* Enough of a cgroup set to check a process's cgroup and list or remove the cgroups. */
static int cgroup_plan(const struct paths *p, struct cgroup_set *ret) {
        struct cgroup_layout l;
        *ret = (struct cgroup_set){0};
        int r = cgroup_layout_get(p->cgroup_root, p->cgroup_base, &l);
        if (r < 0)
                return r;
        return cgroup_set_dirs(&l, p->name, true, false, ret);
}

/* ---- processes -------------------------------------------------------------------------- */

/* True when pid is the init of a pid namespace other than ours: /proc/PID/status NSpid
 * has a last field of 1 and more than one field. */
static bool is_ns_init(pid_t pid) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(p, 64 * 1024, &s, &len) < 0)
                return false;
        const char *l = strstr(s, "\nNSpid:");
        if (!l)
                return false;
        l += 7;
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        _cleanup_free_ char *line = strndup(l, n);
        if (!line)
                return false;
        size_t fields = 0;
        char *last = NULL, *save = NULL;
        for (char *w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                fields++;
                last = w;
        }
        return fields >= 2 && last && streq(last, "1");
}

/* Ours: alive, the init of its own pid namespace, in our cgroup for this name, and (when
 * want_start is not 0) started when we recorded. */
static bool pid_is_ours(const struct cgroup_set *cp, pid_t pid, uint64_t want_start,
                        struct dom_proc_stat *ret) {
        struct dom_proc_stat f;
        if (pid <= 1 || dom_proc_stat(pid, &f) < 0 || !dom_proc_stat_alive(&f))
                return false;
        if (want_start && f.start != want_start)
                return false;
        if (!is_ns_init(pid) || !cgroup_contains(cp, pid))
                return false;
        if (ret)
                *ret = f;
        return true;
}

/* The start time (/proc/PID/stat field 22) recorded with the pidfile; 0 when none. */
static uint64_t read_start(const char *path) {
        uint64_t v = 0;
        return read_u64_file(path, 1, UINT64_MAX, &v) < 0 ? 0 : v;
}

/* ---- events ------------------------------------------------------------------------------- */

/* A pidfd per running container in one epoll set, only once someone asked for it.
 * epoll's data is the lxc_entry, which lives as long as the process. */

int lxc_events_fd(void) {
        pthread_mutex_lock(&ev_lock);
        if (ev_epoll < 0)
                ev_epoll = epoll_create1(EPOLL_CLOEXEC);
        int r = ev_epoll >= 0 ? ev_epoll : negative_errno();
        pthread_mutex_unlock(&ev_lock);
        return r;
}

static void events_close_locked(struct lxc_entry *ent) {
        if (ent->pidfd < 0)
                return;
        if (ev_epoll >= 0)
                (void)epoll_ctl(ev_epoll, EPOLL_CTL_DEL, ent->pidfd, NULL);
        close(ent->pidfd);
        ent->pidfd = -1;
}

static void events_close(struct lxc_entry *ent) {
        pthread_mutex_lock(&ev_lock);
        events_close_locked(ent);
        pthread_mutex_unlock(&ev_lock);
}

static void events_watch(struct lxc_entry *ent, pid_t pid) {
        pthread_mutex_lock(&ev_lock);
        if (ev_epoll >= 0 && ent->pidfd < 0) {
                int fd = pidfd_open(pid, 0);
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ent};
                if (fd >= 0 && epoll_ctl(ev_epoll, EPOLL_CTL_ADD, fd, &ev) == 0)
                        ent->pidfd = fd;
                else if (fd >= 0)
                        close(fd);
        }
        pthread_mutex_unlock(&ev_lock);
}

int lxc_events_dispatch(void) {
        pthread_mutex_lock(&ev_lock);
        int n = 0;
        struct epoll_event evs[32];
        int k = ev_epoll >= 0 ? epoll_wait(ev_epoll, evs, (int)ELEMENTSOF(evs), 0) : 0;
        int r = k < 0 && errno != EINTR ? negative_errno() : 0;
        for (int i = 0; i < k; i++) {
                /* The init exited: the next observe says so. */
                events_close_locked(evs[i].data.ptr);
                n++;
        }
        pthread_mutex_unlock(&ev_lock);
        return r < 0 ? r : n;
}

/* ---- clean-up ----------------------------------------------------------------------------- */

static void veths_remove(const struct domain_def *def) {
        for (size_t i = 0; i < def->n_interfaces; i++) {
                char host[IFNAMSIZ];
                if (lxc_veth_name(def, i, host) < 0)
                        continue;
                struct nl_link l;
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                /* Only a veth: a <target dev> name may be someone else's interface. */
                if (nl_link_get(host, &l, &e) == 0 && streq(l.kind, "veth") &&
                    nl_link_delete(host, &e) < 0)
                        log_debug("cannot remove veth %s: %s", host, strna(dv_error_message(&e)));
        }
}

/* Removes what a container that is gone leaves behind: veths, cgroups, pidfile, the
 * root's (empty) mount point. The writable layers in DATA_DIR stay. */
static void cleanup_after(const struct domain_def *def, const struct paths *p,
                          int cgroup_wait_msec) {
        veths_remove(def);
        struct cgroup_set cp;
        if (cgroup_plan(p, &cp) == 0)
                (void)cgroup_remove(&cp, cgroup_wait_msec);
        cgroup_set_done(&cp);
        dom_proc_unlink_quiet(p->pidfile);
        dom_proc_unlink_quiet(p->startfile);
        if (rmdir(p->root) < 0 && errno != ENOENT)
                log_debug("cannot remove %s: %m", p->root);
        if (rmdir(p->ct_dir) < 0 && errno != ENOENT)
                log_debug("cannot remove %s: %m", p->ct_dir);
}

/* ---- finding our container ---------------------------------------------------------------- */

/* The running init of container p (pidfile, else the last one we saw, else an init in
 * our cgroup whose pidfile was lost). *ret_foreign: a process in our cgroup that is not a
 * container init (something else holds the name). */
static pid_t find_ours(const struct paths *p, struct lxc_entry *ent, bool write, pid_t *ret_foreign,
                       struct dom_proc_stat *ret_facts, pid_t *ret_filepid, bool *ret_garbage) {
        struct cgroup_set cp;
        pid_t found = 0, filepid = 0;
        *ret_foreign = 0;
        bool garbage = dom_proc_read_pidfile(p->pidfile, &filepid) < 0;
        if (ret_filepid)
                *ret_filepid = filepid;
        if (ret_garbage)
                *ret_garbage = garbage;
        if (cgroup_plan(p, &cp) < 0)
                return 0;
        uint64_t start = read_start(p->startfile);
        pthread_mutex_lock(&lock);
        pid_t prev = ent->pid;
        uint64_t prev_start = ent->start;
        pthread_mutex_unlock(&lock);
        if (filepid > 0 && pid_is_ours(&cp, filepid, start, ret_facts))
                found = filepid;
        else if (prev > 0 && pid_is_ours(&cp, prev, prev_start, ret_facts))
                found = prev;
        else if (filepid == 0 && prev == 0) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                (void)cgroup_pids(&cp, &pids, &n);
                for (size_t i = 0; i < n && !found; i++)
                        if (pid_is_ours(&cp, pids[i], 0, ret_facts))
                                found = pids[i];
                if (!found && n > 0)
                        *ret_foreign = pids[0];
        }
        if (found && write && found != filepid) {
                (void)dom_proc_write_pidfile(p->pidfile, found);
                (void)dom_proc_write_u64(p->startfile, ret_facts->start);
        }
        cgroup_set_done(&cp);
        return found;
}

/* ---- observe ----------------------------------------------------------------------------- */

/* True when pid shares our user namespace: a container started before containers had
 * one of their own (or privileged='yes'), whose root is the host's. */
static bool in_host_userns(pid_t pid) {
        char path[64];
        struct stat a, b;
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        return stat(path, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 && a.st_ino == b.st_ino &&
               a.st_dev == b.st_dev;
}

static char *exit_reason(pid_t pid, bool child, bool *clean) {
        int status = 0;
        *clean = false;
        if (child && dom_proc_reap_dying(pid, &status)) {
                if (WIFSIGNALED(status))
                        return strdupf("init was killed by signal %d (%s)", WTERMSIG(status),
                                       strsignal(WTERMSIG(status)));
                if (WEXITSTATUS(status) != 0)
                        return strdupf("init exited with status %d", WEXITSTATUS(status));
                *clean = true;
                return strdup("init exited with status 0");
        }
        return strdupf("container init (PID %d) exited (status unknown: it was started before "
                       "the agent restarted)",
                       (int)pid);
}

int lxc_observe(const struct domain_def *def, struct dom_status *ret, struct dv_error *err) {
        *ret = (struct dom_status){0};
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        struct lxc_entry *ent = entry_get(p.name);
        if (!ent)
                return dv_error_oom(err);
        pthread_mutex_lock(&lock);
        bool busy = ent->run.busy, child = ent->child;
        pid_t prev = ent->pid;
        pthread_mutex_unlock(&lock);

        pid_t foreign = 0, filepid = 0;
        bool garbage = false;
        struct dom_proc_stat f = {0};
        pid_t live = find_ours(&p, ent, !busy, &foreign, &f, &filepid, &garbage);
        if (live) {
                pthread_mutex_lock(&lock);
                if (prev > 0 && prev != live && child && !busy)
                        (void)dom_proc_reap(prev, NULL);
                ent->pid = live;
                ent->start = f.start;
                ent->child = f.ppid == getpid();
                pthread_mutex_unlock(&lock);
                if (!busy)
                        events_watch(ent, live);
                ret->state = DOM_RUNNING;
                ret->pid = live;
                ret->id = (int)live;
                ret->unconfined = in_host_userns(live);
                return 0;
        }

        ret->state = DOM_SHUTOFF;
        if (!busy) {
                events_close(ent);
                if (prev > 0) {
                        ret->exited = true;
                        ret->exit_reason = exit_reason(prev, child, &ret->exit_clean);
                } else if (filepid > 0) {
                        /* A pidfile with no container of ours behind it: it ran and is gone
                         * (the agent was not there to see it). The PID is never signalled. */
                        struct dom_proc_stat other;
                        bool exists =
                                dom_proc_stat(filepid, &other) == 0 && dom_proc_stat_alive(&other);
                        ret->exited = true;
                        if (!exists && other.ppid == getpid())
                                ret->exit_reason = exit_reason(filepid, true, &ret->exit_clean);
                        else
                                ret->exit_reason = strdupf(
                                        "container init (PID %d) is gone; its stale "
                                        "pidfile was removed%s",
                                        (int)filepid,
                                        exists ? " (the PID belongs to another process now)" : "");
                        ret->reason = strdupf("stale pidfile (PID %d) removed", (int)filepid);
                } else if (garbage) {
                        ret->reason = strdup("unreadable pidfile removed");
                }
                if (prev > 0 || filepid > 0)
                        cleanup_after(def, &p, foreign ? 0 : OBSERVE_CGROUP_MSEC);
                else if (garbage)
                        dom_proc_unlink_quiet(p.pidfile);
                pthread_mutex_lock(&lock);
                if (ent->pid == prev) {
                        ent->pid = 0;
                        ent->start = 0;
                        ent->child = false;
                }
                pthread_mutex_unlock(&lock);
        }
        pthread_mutex_lock(&lock);
        if (ret->exited)
                ent->run.exit_clean = ret->exit_clean;
        else
                ret->exit_clean = ent->run.exit_clean;
        pthread_mutex_unlock(&lock);
        if (foreign) {
                ret->state = DOM_BROKEN;
                free(ret->reason);
                ret->reason = strdupf("a process (PID %d) not started by declvirt is in the cgroup "
                                      "of container %s",
                                      (int)foreign, p.name);
        }
        return 0;
}

/* ---- start: the child --------------------------------------------------------------------- */

/* Everything the child needs, computed before the clone: after it, in a copy of a
 * multi-threaded process, only system calls are safe (no malloc, no stdio, no locks). */
struct child_ctx {
        const struct lxc_plan *plan;
        char **targets; /* per op: the host path (root + target) */
        char *root;
        int sync_fd, err_fd, log_fd, null_fd;
        int devices_fd; /* the devices cgroup's cgroup.procs, -1 */
        char *const *argv;
        char *const *envp;
        bool set_ids;
        uid_t uid;
        gid_t gid;
        const char *user, *group; /* names to look up in the container's /etc/passwd, group */
};

enum child_step {
        STEP_SYNC = -100,
        STEP_SETUP,
        STEP_PRIVATE,
        STEP_PIVOT,
        STEP_HOSTNAME,
        STEP_NET,
        STEP_CWD,
        STEP_USER,
        STEP_GROUP,
        STEP_IDS,
        STEP_EXEC,
        STEP_USERNS,
        STEP_DEVICES,
        STEP_CAPS,
};

struct child_report {
        int32_t step; /* an op index, or a child_step */
        int32_t err;  /* errno */
};

static _Noreturn void child_fail(const struct child_ctx *c, int step, int e) {
        struct child_report rep = {.step = step, .err = e};
        ssize_t k = write(c->err_fd, &rep, sizeof(rep));
        (void)k;
        _exit(127);
}

/* mkdir -p, modifying path in place while it works (it is the child's own copy). */
static int child_mkdir_p(char *path, bool last) {
        size_t n = strlen(path);
        for (size_t i = 1; i <= n; i++) {
                if (path[i] != '/' && path[i] != '\0')
                        continue;
                if (path[i] == '\0' && !last)
                        break;
                char saved = path[i];
                path[i] = '\0';
                int r = mkdir(path, 0755);
                int e = errno;
                path[i] = saved;
                if (r < 0 && e != EEXIST)
                        return -e;
        }
        return 0;
}

static int child_remount_ro(const char *target) {
        struct statfs sf;
        if (statfs(target, &sf) < 0)
                return -errno;
        /* A user namespace may not drop the flags it inherited (locked): keep them. */
        unsigned long keep = (unsigned long)sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC |
                                                          MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
        if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
                return -errno;
        return 0;
}

static int child_op(const struct lxc_op *o, char *target) {
        switch (o->kind) {
        case LXC_OP_MOUNT: {
                int r = child_mkdir_p(target, true);
                if (r < 0)
                        return r;
                return mount(o->source, target, o->fstype, o->flags, o->data) < 0 ? -errno : 0;
        }
        case LXC_OP_BIND_FILE: {
                int r = child_mkdir_p(target, false);
                if (r < 0)
                        return r;
                int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
                if (fd < 0)
                        return -errno;
                close(fd);
                return mount(o->source, target, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
        }
        case LXC_OP_SYMLINK:
                if (symlink(o->source, target) < 0 && errno != EEXIST)
                        return -errno;
                return 0;
        case LXC_OP_REMOUNT_RO:
                return child_remount_ro(target);
        case LXC_OP_PROTECT:
                /* A kernel without the file (no CONFIG_MAGIC_SYSRQ) has nothing to protect. */
                if (mount(target, target, NULL, MS_BIND, NULL) < 0)
                        return errno == ENOENT ? 0 : -errno;
                return child_remount_ro(target);
        }
        return -EINVAL;
}

/* Looks name up in a passwd or group file: field 3 of the line whose field 1 is name. */
static char child_buf[256 * 1024];
static int child_lookup(const char *file, const char *name, uint32_t *ret) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t len = 0;
        for (;;) {
                ssize_t k = read(fd, child_buf + len, sizeof(child_buf) - 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t)k;
        }
        close(fd);
        child_buf[len] = '\0';
        size_t nl = strlen(name);
        for (char *line = child_buf; *line;) {
                char *end = strchr(line, '\n');
                if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
                        char *f = strchr(line + nl + 1, ':');
                        if (f && f[1] >= '0' && f[1] <= '9') {
                                uint64_t v = 0;
                                for (f++; *f >= '0' && *f <= '9' && v <= UINT32_MAX; f++)
                                        v = v * 10 + (uint64_t)(*f - '0');
                                if (v > UINT32_MAX)
                                        return -ERANGE;
                                *ret = (uint32_t)v;
                                return 0;
                        }
                }
                if (!end)
                        break;
                line = end + 1;
        }
        return -ENOENT;
}

static int child_link_up(const char *name) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        size_t n = strlen(name);
        if (n >= sizeof(ifr.ifr_name)) {
                close(s);
                return -EINVAL;
        }
        memcpy(ifr.ifr_name, name, n + 1);
        int r = 0;
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        else {
                ifr.ifr_flags |= IFF_UP;
                if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                        r = -errno;
        }
        close(s);
        return r;
}

/* Removes the capabilities in drop from the effective, permitted and inheritable sets and
 * clears the ambient set: a root init would otherwise get them back from its inheritable
 * set at the exec. */
static int child_drop_caps(uint64_t drop) {
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
        if (syscall(SYS_capget, &h, d) < 0)
                return -1;
        for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
                uint32_t keep = ~(uint32_t)(drop >> (32 * i));
                d[i].effective &= keep;
                d[i].permitted &= keep;
                d[i].inheritable &= keep;
        }
        if (syscall(SYS_capset, &h, d) < 0)
                return -1;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -1;
        return 0;
}

static void child_become_root(const struct child_ctx *c) {
        if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                child_fail(c, STEP_USERNS, errno);
}

static _Noreturn void child_main(struct child_ctx *c) {
        const struct lxc_plan *p = c->plan;
        char go = 0;
        ssize_t k;
        do
                k = read(c->sync_fd, &go, 1);
        while (k < 0 && errno == EINTR);
        if (k != 1)
                _exit(1); /* the parent gave up */
        if (setsid() < 0 || dup2(c->null_fd, 0) < 0 || dup2(c->log_fd, 1) < 0 ||
            dup2(c->log_fd, 2) < 0)
                child_fail(c, STEP_SETUP, errno);
        /* Targets are reached from the root's mount point (the cwd): under a user
         * namespace the container's root may not search the host directories above it.
         * With the ids of the host's root this finds the mounts the agent attached. */
        size_t rl = strlen(c->root);
        const char *root_base = strrchr(c->root, '/') + 1;
        if (chdir(c->root) < 0)
                child_fail(c, STEP_PIVOT, errno);
        if (p->ns_flags & CLONE_NEWUSER) {
                /* Our own copy of the agent's mounts (the cwd follows into it), in which
                 * what the agent attached is locked, read-only flags included. pivot_root
                 * refuses a locked mount: the root is bound over itself first. */
                if (unshare(CLONE_NEWNS) < 0)
                        child_fail(c, STEP_PRIVATE, errno);
                if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        child_fail(c, STEP_PRIVATE, errno);
                if (mount(".", ".", NULL, MS_BIND | MS_REC, NULL) < 0 || chdir("..") < 0 ||
                    chdir(root_base) < 0)
                        child_fail(c, STEP_PIVOT, errno);
        } else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                child_fail(c, STEP_PRIVATE, errno);
        /* The directory above the root (0755): from it the root's mount point is reached
         * again once something is mounted on it, even by a container root that may not
         * search the host's directories above. */
        int up_fd = open("..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (up_fd < 0)
                child_fail(c, STEP_PIVOT, errno);
        bool userns = p->ns_flags & CLONE_NEWUSER;
        /* With ids from container.id_range the agent made the filesystems: become the
         * container's root at once, so that what the child creates (mount points, /dev)
         * belongs to its ids (an unmapped owner is refused with EOVERFLOW). The parent
         * wrote the maps before the go. */
        if (p->id_range) {
                child_become_root(c);
                userns = false;
        }
        for (size_t i = 0; i < p->n_ops; i++) {
                const struct lxc_op *o = &p->ops[i];
                bool is_root = streq(o->target, "/");
                /* In a user namespace, become its root before creating anything in /dev:
                 * until then our ids are the host's root, which the map does not name, and
                 * the kernel refuses (EOVERFLOW) to create a file or directory (/dev/pts in
                 * the /dev tmpfs) for an unmapped owner. Under <idmap> /proc is mounted
                 * before, with the host root's ids, as it always was. The parent wrote the
                 * maps before waking us. */
                if (userns && o->kind == LXC_OP_MOUNT && streq(o->target, "/dev")) {
                        child_become_root(c);
                        userns = false;
                }
                if (o->host) /* attached by the agent */
                        continue;
                int r = child_op(o, is_root ? c->targets[i] : c->targets[i] + rl + 1);
                if (r < 0 && !o->optional)
                        child_fail(c, (int)i, -r);
                /* Into the mount just made. */
                if (is_root && (fchdir(up_fd) < 0 || chdir(root_base) < 0))
                        child_fail(c, STEP_PIVOT, errno);
        }
        if (userns)
                child_become_root(c);
        if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                child_fail(c, STEP_PIVOT, errno);
        /* The device allow-list only now: it would refuse the block devices mounted above.
         * "0" is the writer itself; the descriptor was opened by the host's root. */
        if (c->devices_fd >= 0 && write(c->devices_fd, "0", 1) != 1)
                child_fail(c, STEP_DEVICES, errno);
        if (sethostname(p->name, strlen(p->name)) < 0)
                child_fail(c, STEP_HOSTNAME, errno);
        if (p->ns_flags & CLONE_NEWNET) {
                int r = child_link_up("lo");
                for (size_t i = 0; r >= 0 && i < p->n_ifaces; i++)
                        r = child_link_up(p->ifaces[i].guest);
                if (r < 0)
                        child_fail(c, STEP_NET, -r);
        }
        uid_t uid = c->uid;
        gid_t gid = c->gid;
        if (c->user) {
                uint32_t v = 0;
                int r = child_lookup("/etc/passwd", c->user, &v);
                if (r < 0)
                        child_fail(c, STEP_USER, -r);
                uid = v;
        }
        if (c->group) {
                uint32_t v = 0;
                int r = child_lookup("/etc/group", c->group, &v);
                if (r < 0)
                        child_fail(c, STEP_GROUP, -r);
                gid = v;
        }
        /* The bounding set while we still hold CAP_SETPCAP (a non-root inituser loses it). */
        for (int cap = 0; cap < 64; cap++)
                if ((p->cap_drop & (UINT64_C(1) << cap)) &&
                    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                        child_fail(c, STEP_CAPS, errno);
        if (c->set_ids && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                           setresuid(uid, uid, uid) < 0))
                child_fail(c, STEP_IDS, errno);
        if (p->cap_drop && child_drop_caps(p->cap_drop) < 0)
                child_fail(c, STEP_CAPS, errno);
        if (chdir(p->cwd) < 0)
                child_fail(c, STEP_CWD, errno);
        sigset_t none;
        sigemptyset(&none);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int s = 1; s < NSIG; s++)
                (void)sigaction(s, &dfl, NULL);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        /* The container gets 0..2 and nothing else: a descriptor of the agent's opened
         * without O_CLOEXEC (by a library, say) would otherwise reach the guest. CLOEXEC
         * rather than close: the report pipe must stay open should execve fail. */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                child_fail(c, STEP_EXEC, errno);
        execve(c->argv[0], c->argv, c->envp);
        child_fail(c, STEP_EXEC, errno);
}

/* The clone3 arguments, version 0 (Linux 5.3): glibc has no wrapper. */
struct clone_args_v0 {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* ---- start: the parent --------------------------------------------------------------------- */

static const char *fs_line_text(char buf[static 48], int line) {
        if (line > 0)
                snprintf(buf, 48, " (filesystem at line %d)", line);
        else
                buf[0] = '\0';
        return buf;
}

static int child_error(const struct domain_def *def, const struct lxc_plan *p,
                       const struct child_report *rep, struct dv_error *err) {
        int e = -rep->err;
        char lb[48];
        if (rep->step >= 0 && (size_t)rep->step < p->n_ops) {
                const struct lxc_op *o = &p->ops[rep->step];
                const char *what = o->kind == LXC_OP_REMOUNT_RO ? "cannot make read-only"
                                   : o->kind == LXC_OP_SYMLINK  ? "cannot create symlink"
                                                                : "cannot mount";
                return dv_error_add(err, e, o->line, "container %s: %s %s%s%s%s: %s", def->name,
                                    what, o->target, o->source ? " from " : "", strempty(o->source),
                                    fs_line_text(lb, o->line), strerror(-e));
        }
        int root_line = 0;
        for (size_t i = 0; i < def->n_filesystems; i++)
                if (streq(def->filesystems[i].target_dir, "/"))
                        root_line = def->filesystems[i].line;
        switch (rep->step) {
        case STEP_EXEC:
                if (e == -ENOENT || e == -ENOTDIR)
                        return dv_error_add(err, -ENOENT, def->os.init_line,
                                            "init %s not found in the container's root "
                                            "filesystem%s",
                                            def->os.init, fs_line_text(lb, root_line));
                return dv_error_add(err, e, def->os.init_line,
                                    "cannot run init %s in container %s: %s", def->os.init,
                                    def->name, strerror(-e));
        case STEP_PIVOT:
                return dv_error_add(err, e, root_line,
                                    "container %s: cannot switch to its root: %s", def->name,
                                    strerror(-e));
        case STEP_USER:
        case STEP_GROUP:
                return dv_error_add(err, e == -ENOENT ? -EINVAL : e, def->os.line,
                                    "container %s: %s '%s' %s in the container's %s", def->name,
                                    rep->step == STEP_USER ? "inituser" : "initgroup",
                                    rep->step == STEP_USER ? def->os.inituser : def->os.initgroup,
                                    e == -ENOENT ? "is not" : "cannot be looked up",
                                    rep->step == STEP_USER ? "/etc/passwd" : "/etc/group");
        case STEP_CWD:
                return dv_error_add(err, e, def->os.line, "container %s: initdir %s: %s", def->name,
                                    p->cwd, strerror(-e));
        default: {
                static const char *const names[] = {"synchronise",
                                                    "set up stdio",
                                                    "make mounts private",
                                                    "pivot",
                                                    "set hostname",
                                                    "bring up interfaces",
                                                    "chdir",
                                                    "user",
                                                    "group",
                                                    "set uid and gid",
                                                    "exec",
                                                    "become root in its user namespace",
                                                    "join its device cgroup",
                                                    "drop capabilities"};
                int i = rep->step - STEP_SYNC;
                const char *n = i >= 0 && (size_t)i < ELEMENTSOF(names) ? names[i] : "start";
                return dv_error_add(err, e, 0, "container %s: cannot %s: %s", def->name, n,
                                    strerror(-e));
        }
        }
}

static int write_proc_file(pid_t pid, const char *file, const char *data, struct dv_error *err) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? write(fd, data, strlen(data)) : -1;
        if (n < 0 || (size_t)n != strlen(data))
                return dv_error_add(err, n < 0 ? negative_errno() : -EIO, 0, "cannot write %s: %s",
                                    path, strerror(errno));
        return 0;
}

static char *idmap_text(const struct domain_idmap *m, size_t n) {
        char *s = strdup("");
        for (size_t i = 0; s && i < n; i++) {
                char *t = strdupf("%s%" PRIu32 " %" PRIu32 " %" PRIu32 "\n", s, m[i].start,
                                  m[i].target, m[i].count);
                free(s);
                s = t;
        }
        return s;
}

/* The veth pair of interface i: host end on its bridge and up, the container end named
 * peer with the guest's MAC, still on the host (it moves once the child exists). */
static int veth_create(const struct lxc_iface *n, bool named, struct dv_error *err) {
        struct nl_link l, br = {0};
        int r;
        if (nl_link_get(n->host, &l, NULL) == 0) {
                if (named || !streq(l.kind, "veth"))
                        return dv_error_add(err, -EEXIST, n->line,
                                            "interface %s exists already on the host", n->host);
                (void)nl_link_delete(n->host, NULL); /* ours, left by a failed start */
        }
        if (nl_link_get(n->peer, &l, NULL) == 0 && streq(l.kind, "veth"))
                (void)nl_link_delete(n->peer, NULL);
        if (n->bridge) {
                r = nl_link_get(n->bridge, &br, err);
                if (r == -ENODEV)
                        return dv_error_add(err, r, n->line, "bridge %s does not exist", n->bridge);
                if (r < 0)
                        return r;
                if (!streq(br.kind, "bridge"))
                        return dv_error_add(err, -EMEDIUMTYPE, n->line, "%s is not a bridge",
                                            n->bridge);
        }
        struct ether_addr mac;
        if (!n->mac || !ether_aton_r(n->mac, &mac))
                return dv_error_add(err, -EINVAL, n->line, "invalid MAC address %s", strna(n->mac));
        /* The host end's MAC starts with fe, like libvirt's taps: never the lowest on the
         * bridge, so the bridge's own address does not change. */
        struct ether_addr host_mac = mac;
        host_mac.ether_addr_octet[0] = 0xfe;
        r = nl_veth_create(n->host, host_mac.ether_addr_octet, n->peer, mac.ether_addr_octet, err);
        if (r < 0)
                return r;
        if (n->bridge) {
                r = nl_link_set_master(n->host, n->bridge, err);
                if (r >= 0)
                        r = nl_link_set(n->peer, NULL, br.mtu, -1, err);
        }
        if (r >= 0)
                r = nl_link_set(n->host, NULL, br.mtu, 1, err);
        return r;
}

/* Attaches a loop device to file (autoclear: it goes away with the mount). Returns an
 * open fd of the device, its path in dev. */
static int loop_attach(const char *file, bool readonly, char dev[static 32], struct dv_error *err,
                       int line) {
        _cleanup_close_ int img = open(file, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (img < 0)
                return dv_error_add(err, negative_errno(), line, "cannot open image %s: %m", file);
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return dv_error_add(err, negative_errno(), line,
                                    "cannot open /dev/loop-control: %m");
        for (int attempt = 0; attempt < 16; attempt++) {
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return dv_error_add(err, negative_errno(), line,
                                            "no free loop device for %s: %m", file);
                snprintf(dev, 32, "/dev/loop%d", n);
                int fd = open(dev, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
                if (fd < 0)
                        return dv_error_add(err, negative_errno(), line, "cannot open %s: %m", dev);
                struct loop_config cfg = {.fd = (uint32_t)img};
                cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (readonly ? LO_FLAGS_READ_ONLY : 0);
                if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
                        return fd;
                int e = errno;
                close(fd);
                if (e != EBUSY) /* taken by someone else in between: try the next one */
                        return dv_error_add(err, -e, line, "cannot attach %s to %s: %s", file, dev,
                                            strerror(e));
        }
        return dv_error_add(err, -EBUSY, line, "no free loop device for %s", file);
}

struct start_state {
        int *loop_fds;
        size_t n_loop;
        bool cgroups, veths;
        pid_t pid;
        int pidfd;
        int host_mntns; /* the thread's mount namespace before it made its own, -1 */
};

/* Back to the host's mount namespace; the thread's own goes with its last user. The
 * thread keeps the filesystem attributes it unshared (its cwd is now "/"; the agent uses
 * absolute paths). */
static void start_state_leave_ns(struct start_state *s) {
        if (s->host_mntns < 0)
                return;
        if (setns(s->host_mntns, CLONE_NEWNS) < 0) {
                /* A worker left there would make pool mounts the host never sees: fatal. */
                log_error("cannot return to the host's mount namespace: %m");
                abort();
        }
        close(s->host_mntns);
        s->host_mntns = -1;
}

static void start_state_undo(const struct domain_def *def, const struct paths *p,
                             const struct lxc_plan *plan, struct start_state *s) {
        start_state_leave_ns(s);
        if (s->pid > 0 && dom_proc_kill_reap(s->pidfd, s->pid, KILL_WAIT_USEC) < 0)
                log_debug("container %s: init (PID %d) does not die", def->name, (int)s->pid);
        if (s->veths)
                veths_remove(def);
        if (s->cgroups)
                (void)cgroup_remove(&plan->cg, CGROUP_WAIT_MSEC);
        dom_proc_unlink_quiet(p->pidfile);
        dom_proc_unlink_quiet(p->startfile);
        (void)rmdir(p->root);
        (void)rmdir(p->ct_dir);
}

static void start_state_done(struct start_state *s) {
        start_state_leave_ns(s);
        for (size_t i = 0; i < s->n_loop; i++)
                if (s->loop_fds[i] >= 0)
                        close(s->loop_fds[i]);
        free(s->loop_fds);
        if (s->pidfd >= 0)
                close(s->pidfd);
        *s = (struct start_state){.pidfd = -1, .host_mntns = -1};
}

static int parse_id(const char *s, uint32_t *ret) {
        uint64_t v = 0;
        if (parse_u64(s, &v) < 0 || v >= UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

/* Idmaps the detached mount fd with userns_fd (when >= 0) and makes it read-only (when
 * rdonly), its submounts too when recursive. */
static int idmap_mount(int fd, int userns_fd, bool recursive, bool rdonly) {
        struct mount_attr attr = {.attr_set = (userns_fd >= 0 ? MOUNT_ATTR_IDMAP : 0) |
                                              (rdonly ? MOUNT_ATTR_RDONLY : 0),
                                  .userns_fd = (uint64_t)(userns_fd >= 0 ? userns_fd : 0)};
        if (!attr.attr_set)
                return 0;
        return mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                             sizeof(attr)) < 0
                       ? negative_errno()
                       : 0;
}

/* A copy of the tree at path, detached, idmapped when userns_fd >= 0. A submount whose
 * filesystem cannot be idmapped (EINVAL) makes it the directory's own mount alone. */
static int clone_tree(const char *path, bool recursive, int userns_fd, bool rdonly) {
        for (;;) {
                int fd = open_tree(AT_FDCWD, path,
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                                           (recursive ? AT_RECURSIVE : 0));
                if (fd < 0)
                        return negative_errno();
                int r = idmap_mount(fd, userns_fd, recursive, rdonly);
                if (r >= 0)
                        return fd;
                close(fd);
                if (r != -EINVAL || !recursive)
                        return r;
                recursive = false;
        }
}

/* The errno of a failed fsconfig, the kernel's own words on it in the debug log. */
static int fs_failed(int fs, const struct lxc_op *o) {
        int r = negative_errno();
        char msg[512];
        ssize_t n;
        while ((n = read(fs, msg, sizeof(msg) - 1)) > 0) {
                msg[n] = '\0';
                log_debug("mounting %s on %s: the kernel says: %s", o->source, o->target, msg);
        }
        return r;
}

/* Makes a host op's filesystem as the host's root, detached: a bind (open_tree), an
 * overlay whose lower layer is an idmapped clone of the template (overlayfs refuses to be
 * idmapped itself, and an upper layer on an idmapped mount), or a device's filesystem
 * (fsopen, fsmount). scratch: an unused path where a lower layer may be attached for a
 * moment. Returns the mount's fd. */
static int host_mount(const struct lxc_op *o, int userns_fd, int netns_fd, const char *scratch) {
        int ns = o->idmap ? userns_fd : -1;
        if (o->flags & MS_BIND)
                return clone_tree(o->source, o->flags & MS_REC, ns, o->flags & MS_RDONLY);
        /* sysfs shows the network namespace of whoever opens the context: the
         * container's, entered by this thread for that moment. */
        bool sysfs = streq(o->fstype, "sysfs");
        _cleanup_close_ int own_net =
                sysfs ? open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
        if (sysfs && (own_net < 0 || netns_fd < 0 || setns(netns_fd, CLONE_NEWNET) < 0))
                return own_net < 0 || netns_fd >= 0 ? negative_errno() : -EINVAL;
        _cleanup_close_ int fs = fsopen(o->fstype, FSOPEN_CLOEXEC);
        int r = fs < 0 ? negative_errno() : 0;
        if (sysfs && setns(own_net, CLONE_NEWNET) < 0) {
                /* A worker left in a container's network would act there: fatal. */
                log_error("cannot return to the agent's network namespace: %m");
                abort();
        }
        if (r < 0)
                return r;
        if (streq(o->fstype, "overlay")) {
                /* data is "lowerdir=L,upperdir=U,workdir=W" (lxc-plan.c). The idmapped
                 * lower layer is attached at scratch while the overlay is made: overlayfs
                 * takes a detached one (lowerdir+ by descriptor) only on recent kernels,
                 * and not from every mount namespace. */
                _cleanup_free_ char *data = strdup(o->data);
                char *lower = data ? strstr(data, "lowerdir=") : NULL;
                char *upper = data ? strstr(data, ",upperdir=") : NULL;
                char *work = data ? strstr(data, ",workdir=") : NULL;
                if (!lower || !upper != !work)
                        return data ? -EINVAL : -ENOMEM;
                if (upper) {
                        *upper = *work = '\0';
                        upper += strlen(",upperdir=");
                        work += strlen(",workdir=");
                }
                lower += strlen("lowerdir=");
                /* Read-only (no upper layer): a second, empty lower layer. */
                _cleanup_free_ char *empty = strdupf("%s-empty", scratch);
                _cleanup_free_ char *lowers = strdupf("%s:%s", scratch, strna(empty));
                if (!empty || !lowers)
                        return -ENOMEM;
                if (!upper && mkdir(empty, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                _cleanup_close_ int lfd = clone_tree(lower, false, ns, false);
                if (lfd < 0)
                        return lfd;
                if (mkdir(scratch, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
                if (move_mount(lfd, "", AT_FDCWD, scratch, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                        r = negative_errno();
                        (void)rmdir(scratch);
                        return r;
                }
                if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", upper ? scratch : lowers, 0) <
                            0 ||
                    (upper && fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) ||
                    (upper && fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) ||
                    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                        r = fs_failed(fs, o);
                /* The overlay holds a private clone of its layers: the lower one goes, and
                 * the empty one, which it only ever reads as empty. */
                if (umount2(scratch, MNT_DETACH) < 0)
                        log_debug("cannot unmount %s: %m", scratch);
                (void)rmdir(scratch);
                if (!upper)
                        (void)rmdir(empty);
                if (r < 0)
                        return r;
        } else if ((!sysfs && fsconfig(fs, FSCONFIG_SET_STRING, "source", o->source, 0) < 0) ||
                   ((o->flags & MS_RDONLY) && !sysfs &&
                    fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0) ||
                   fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return fs_failed(fs, o);
        unsigned attrs = ((o->flags & MS_RDONLY) ? MOUNT_ATTR_RDONLY : 0) |
                         ((o->flags & MS_NOSUID) ? MOUNT_ATTR_NOSUID : 0) |
                         ((o->flags & MS_NODEV) ? MOUNT_ATTR_NODEV : 0) |
                         ((o->flags & MS_NOEXEC) ? MOUNT_ATTR_NOEXEC : 0);
        int fd = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
        if (fd < 0)
                return negative_errno();
        if (ns >= 0 && !streq(o->fstype, "overlay") &&
            (r = idmap_mount(fd, ns, false, false)) < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/* Moves the owners of what lies under dfd (not following symlinks, not leaving its
 * filesystem) from the 65536 ids at from_u/from_g to those at to_u/to_g; other owners stay.
 * chown clears the set-id bits, which are put back. */
static int shift_tree(int dfd, dev_t dev, uid_t from_u, gid_t from_g, uid_t to_u, gid_t to_g,
                      unsigned depth) {
        if (depth > 1024)
                return -ELOOP;
        int fd = dup(dfd);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                int r = negative_errno();
                if (fd >= 0)
                        close(fd);
                return r;
        }
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        break;
                }
                if (st.st_dev != dev)
                        continue;
                bool su = st.st_uid >= from_u && st.st_uid - from_u < LXC_RANGE_IDS;
                bool sg = st.st_gid >= from_g && st.st_gid - from_g < LXC_RANGE_IDS;
                if ((su || sg) &&
                    fchownat(dfd, de->d_name, su ? st.st_uid - from_u + to_u : (uid_t)-1,
                             sg ? st.st_gid - from_g + to_g : (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
                        r = negative_errno();
                else if ((su || sg) && !S_ISLNK(st.st_mode) && (st.st_mode & 07000) &&
                         fchmodat(dfd, de->d_name, st.st_mode & 07777, 0) < 0)
                        r = negative_errno();
                if (r >= 0 && S_ISDIR(st.st_mode)) {
                        int sub = openat(dfd, de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = sub < 0 ? negative_errno()
                                    : shift_tree(sub, dev, from_u, from_g, to_u, to_g, depth + 1);
                        if (sub >= 0)
                                close(sub);
                }
        }
        if (r >= 0 && errno != 0)
                r = negative_errno();
        closedir(d);
        return r;
}

/* Makes the writable layer dir the container's root's. A layer a container wrote with
 * other ids (one from before containers had a user namespace: the host's root's, or one
 * whose <idmap> changed) has its files moved to the new range first, so that the
 * container still owns what it wrote; the directory's own owner, set last, says which
 * range the layer is in. */
static int layer_own(const char *dir, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_uid == uid && st.st_gid == gid)
                return 0;
        int r = shift_tree(fd, st.st_dev, st.st_uid, st.st_gid, uid, gid, 0);
        if (r < 0)
                return r;
        return fchown(fd, uid, gid) < 0 ? negative_errno() : 0;
}

/* Attaches the detached mount fd at o's target in the container's root (its mount point
 * made with the ids of the container's root, inside the root: symlinks do not lead out). */
static int host_attach(const struct lxc_plan *plan, const struct lxc_op *o, int fd) {
        if (streq(o->target, "/"))
                return move_mount(fd, "", AT_FDCWD, plan->root, MOVE_MOUNT_F_EMPTY_PATH) < 0
                               ? negative_errno()
                               : 0;
        _cleanup_close_ int root = open(plan->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *rel = strdup(o->target + 1);
        if (root < 0 || !rel)
                return root < 0 ? negative_errno() : -ENOMEM;
        /* With ids from container.id_range, as the container's root: what it creates is
         * its own, as if it made it (the host's root has no id in an idmapped mount).
         * Under <idmap>, as the host's root, as the child used to. The thread's fsuid only
         * (setfsuid is per thread). */
        uid_t u = plan->id_range ? plan->mkdirs_uid : 0;
        gid_t g = plan->id_range ? plan->mkdirs_gid : 0;
        (void)syscall(SYS_setfsgid, g);
        (void)syscall(SYS_setfsuid, u);
        int r = 0;
        for (char *slash = rel;; slash++) {
                slash = strchr(slash, '/');
                if (slash)
                        *slash = '\0';
                char *last = strrchr(rel, '/');
                _cleanup_free_ char *parent =
                        last ? strndup(rel, (size_t)(last - rel)) : strdup(".");
                struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                int pfd = parent ? (int)syscall(SYS_openat2, root, parent, &how, sizeof(how)) : -1;
                if (pfd < 0)
                        r = parent ? negative_errno() : -ENOMEM;
                else if (mkdirat(pfd, last ? last + 1 : rel, 0755) < 0 && errno != EEXIST)
                        r = negative_errno();
                if (pfd >= 0)
                        close(pfd);
                if (r < 0 || !slash)
                        break;
                *slash = '/';
        }
        (void)syscall(SYS_setfsuid, 0);
        (void)syscall(SYS_setfsgid, 0);
        if (r < 0)
                return r;
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        _cleanup_close_ int target = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
        if (target < 0)
                return negative_errno();
        return move_mount(fd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0
                       ? negative_errno()
                       : 0;
}

/* Prepares the host side (directories, loop devices, probed filesystem types, cgroups,
 * veths), clones the child and waits for its exec. */
static int start_spawn(const struct domain_def *def, const struct paths *p, struct lxc_plan *plan,
                       struct lxc_entry *ent, struct start_state *s, struct dv_error *err) {
        int r;
        if ((r = mkdir_p(p->run_sub, 0750)) < 0 || (r = mkdir_p(p->state_sub, 0755)) < 0 ||
            (r = mkdir_p(p->root, 0755)) < 0)
                return dv_error_add(err, r, 0, "cannot create %s, %s or %s: %s", p->run_sub,
                                    p->state_sub, p->root, strerror(-r));
        for (size_t i = 0; plan->mkdirs && plan->mkdirs[i]; i++) {
                r = mkdir_p(plan->mkdirs[i], 0700);
                if (r >= 0 && (plan->ns_flags & CLONE_NEWUSER))
                        r = layer_own(plan->mkdirs[i], plan->mkdirs_uid, plan->mkdirs_gid);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot create %s: %s", plan->mkdirs[i],
                                            strerror(-r));
        }

        /* Image files get a loop device; devices and images their filesystem type. */
        s->loop_fds = calloc(plan->n_ops + 1, sizeof(int));
        if (!s->loop_fds)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n_ops; i++) {
                struct lxc_op *o = &plan->ops[i];
                if (o->fs_index < 0 || !o->fstype || !streq(o->fstype, "auto"))
                        continue;
                const struct domain_fs *fs = &def->filesystems[o->fs_index];
                if (domain_fs_type(fs) == DOMAIN_FS_FILE) {
                        char dev[32];
                        int fd = loop_attach(o->source, fs->readonly, dev, err, fs->line);
                        if (fd < 0)
                                return fd;
                        s->loop_fds[s->n_loop++] = fd;
                        free(o->source);
                        o->source = strdup(dev);
                        if (!o->source)
                                return -ENOMEM;
                }
                _cleanup_free_ char *type = NULL;
                bool is_fs = false;
                _cleanup_dv_error_ struct dv_error e = DV_ERROR_INIT;
                r = storage_probe_signature_full(o->source, &type, &is_fs, &e);
                if (r < 0 || !is_fs) {
                        r = dv_error_add(err, r < 0 ? r : -EMEDIUMTYPE, fs->line,
                                         "<filesystem> (line %d): %s %s%s%s", fs->line, fs->source,
                                         r < 0  ? "cannot be probed: "
                                         : type ? "holds no filesystem that can be mounted: "
                                                : "holds no filesystem",
                                         r < 0 ? strna(dv_error_message(&e)) : strempty(type), "");
                        return r;
                }
                free(o->fstype);
                o->fstype = TAKE_PTR(type);
        }

        r = cgroup_create(&plan->cg, err);
        s->cgroups = true;
        if (r >= 0)
                r = cgroup_apply(&plan->cg, err);
        if (r < 0)
                return r;
        s->veths = plan->n_ifaces > 0;
        for (size_t i = 0; i < plan->n_ifaces; i++) {
                const char *t = def->interfaces[i].target_dev;
                r = veth_create(&plan->ifaces[i], t && streq(t, plan->ifaces[i].host), err);
                if (r < 0)
                        return r;
        }

        /* Everything the child reads, computed now. */
        _cleanup_strv_free_ char **targets = NULL;
        for (size_t i = 0; i < plan->n_ops; i++)
                if (strv_consume(&targets,
                                 streq(plan->ops[i].target, "/")
                                         ? strdup(plan->root)
                                         : strdupf("%s%s", plan->root, plan->ops[i].target)) < 0)
                        return -ENOMEM;
        struct child_ctx c = {
                .plan = plan,
                .targets = targets,
                .root = plan->root,
                .argv = plan->argv,
                .envp = plan->env,
                .set_ids = true,
        };
        uint32_t v = 0;
        if (plan->user && parse_id(plan->user, &v) == 0)
                c.uid = v;
        else if (plan->user && !streq(plan->user, "root"))
                c.user = plan->user;
        if (plan->group && parse_id(plan->group, &v) == 0)
                c.gid = v;
        else if (plan->group && !streq(plan->group, "root"))
                c.group = plan->group;

        /* Root's only: what a guest prints may be private. */
        _cleanup_close_ int log_fd = open_private_log(plan->console_log);
        if (log_fd < 0)
                return dv_error_add(err, log_fd, 0, "cannot open %s: %s", plan->console_log,
                                    strerror(-log_fd));
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        int sync_p[2] = {-1, -1}, err_p[2] = {-1, -1};
        if (null_fd < 0 || pipe2(sync_p, O_CLOEXEC) < 0)
                return dv_error_add(err, negative_errno(), 0, "cannot create a pipe: %m");
        if (pipe2(err_p, O_CLOEXEC) < 0) {
                r = dv_error_add(err, negative_errno(), 0, "cannot create a pipe: %m");
                close(sync_p[0]);
                close(sync_p[1]);
                return r;
        }
        _cleanup_close_ int sync_w = sync_p[1], err_r = err_p[0];
        c.sync_fd = sync_p[0];
        c.err_fd = err_p[1];
        c.log_fd = log_fd;
        c.null_fd = null_fd;
        _cleanup_close_ int devices_fd = -1;
        if (plan->cg.devices_dir) {
                _cleanup_free_ char *procs = path_join(plan->cg.devices_dir, "cgroup.procs");
                devices_fd = procs ? open(procs, O_WRONLY | O_CLOEXEC | O_NOCTTY) : -1;
                if (devices_fd < 0) {
                        r = dv_error_add(err, procs ? negative_errno() : -ENOMEM, 0,
                                         "cannot open %s: %m", strna(procs));
                        close(sync_p[0]);
                        close(err_p[1]);
                        return r;
                }
        }
        c.devices_fd = devices_fd;
        size_t n_host = 0;
        for (size_t i = 0; i < plan->n_ops; i++)
                n_host += plan->ops[i].host;
        /* In a user namespace the filesystems are attached here, in a mount namespace of
         * this thread's own (a slave of the host's: nothing propagates back), which the
         * child shares until it copies it into one of its own; the copy, made for a less
         * privileged user namespace, locks them and their read-only flags. */
        bool private_ns = plan->ns_flags & CLONE_NEWUSER;
        if (private_ns) {
                s->host_mntns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
                if (s->host_mntns < 0 || unshare(CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
                        r = dv_error_add(err, negative_errno(), 0,
                                         "cannot make a mount namespace to prepare container "
                                         "%s: %m",
                                         def->name);
                        close(sync_p[0]);
                        close(err_p[1]);
                        return r;
                }
        }

        int pidfd = -1;
        struct clone_args_v0 ca = {
                .flags = (uint64_t)(private_ns ? plan->ns_flags & ~CLONE_NEWNS : plan->ns_flags) |
                         CLONE_PIDFD,
                .pidfd = (uint64_t)(uintptr_t)&pidfd,
                .exit_signal = SIGCHLD,
        };
        long pid = syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid == 0)
                child_main(&c);
        int e = errno;
        close(sync_p[0]);
        close(err_p[1]);
        if (pid < 0)
                return dv_error_add(err, -e, 0, "cannot create the namespaces of container %s: %s",
                                    def->name, strerror(e));
        s->pid = (pid_t)pid;
        s->pidfd = pidfd;
        log_debug("container %s: init cloned as PID %ld", def->name, pid);

        if (plan->ns_flags & CLONE_NEWUSER) {
                _cleanup_free_ char *um = idmap_text(plan->uid_map, plan->n_uid_map);
                _cleanup_free_ char *gm = idmap_text(plan->gid_map, plan->n_gid_map);
                if (!um || !gm)
                        return -ENOMEM;
                if ((r = write_proc_file(s->pid, "uid_map", um, err)) < 0 ||
                    (r = write_proc_file(s->pid, "gid_map", gm, err)) < 0)
                        return r;
        }
        if ((r = cgroup_join(&plan->cg, s->pid, true, err)) < 0)
                return r;
        for (size_t i = 0; i < plan->n_ifaces; i++)
                if ((r = nl_link_set_netns(plan->ifaces[i].peer, s->pid, plan->ifaces[i].guest,
                                           err)) < 0)
                        return r;
        /* The mounts the container's root may not make, made now that its user
         * namespace has its maps, and attached at their targets. */
        _cleanup_close_ int userns_fd = -1, netns_fd = -1;
        if (n_host > 0 && (plan->ns_flags & CLONE_NEWUSER)) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)s->pid);
                userns_fd = open(path, O_RDONLY | O_CLOEXEC);
                if (userns_fd < 0)
                        return dv_error_add(err, negative_errno(), 0, "cannot open %s: %m", path);
                snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)s->pid);
                netns_fd = open(path, O_RDONLY | O_CLOEXEC);
                if (netns_fd < 0)
                        return dv_error_add(err, negative_errno(), 0, "cannot open %s: %m", path);
        }
        for (size_t i = 0; r >= 0 && i < plan->n_ops; i++)
                if (plan->ops[i].host) {
                        _cleanup_free_ char *scratch = strdupf("%s/lower-%zu", p->ct_dir, i);
                        int fd = scratch ? host_mount(&plan->ops[i], userns_fd, netns_fd, scratch)
                                         : -ENOMEM;
                        if (fd >= 0) {
                                r = host_attach(plan, &plan->ops[i], fd);
                                close(fd);
                        }
                        if (fd < 0 || r < 0) {
                                char lb[48];
                                int fe = fd < 0 ? fd : r;
                                r = dv_error_add(
                                        err, fe, plan->ops[i].line,
                                        "container %s: the agent cannot mount %s from %s%s: %s",
                                        def->name, plan->ops[i].target, plan->ops[i].source,
                                        fs_line_text(lb, plan->ops[i].line), strerror(-fe));
                        }
                }
        if (r < 0)
                return r;
        if (write(sync_w, "g", 1) != 1)
                return dv_error_add(err, negative_errno(), 0, "cannot wake container %s: %m",
                                    def->name);

        /* EOF: the exec closed the pipe. A report: the step that failed. */
        struct child_report rep;
        size_t got = 0;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t)START_WAIT_MSEC * USEC_PER_MSEC;
        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return dv_error_add(err, -ETIMEDOUT, 0,
                                            "container %s did not start its init within %d s",
                                            def->name, START_WAIT_MSEC / 1000);
                struct pollfd pf = {.fd = err_r, .events = POLLIN};
                int k = poll(&pf, 1, (int)((deadline - now) / 1000) + 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        continue;
                ssize_t n = read(err_r, (char *)&rep + got, sizeof(rep) - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
                if (got == sizeof(rep))
                        break;
        }
        if (got == sizeof(rep))
                return child_error(def, plan, &rep, err);
        if (got > 0)
                return dv_error_add(err, -EIO, 0, "container %s: its set-up failed", def->name);

        /* The exec succeeded, so the start did. An init that exits at once is an exit like
         * any later one: the next observe reports it with its status and the restart policy
         * decides. Checking for it here would only catch the exits that beat this line, so
         * the same container would fail to start or start and exit depending on timing.
         * Until it is reaped (by that observe) the init is a zombie whose stat still names
         * its start time; the pidfile and the start file are written for it all the same. */
        struct dom_proc_stat f = {0};
        if ((r = dom_proc_stat(s->pid, &f)) < 0)
                return dv_error_add(err, r, 0, "cannot read /proc/%d/stat of container %s: %s",
                                    (int)s->pid, def->name, strerror(-r));
        if ((r = dom_proc_write_pidfile(p->pidfile, s->pid)) < 0 ||
            (r = dom_proc_write_u64(p->startfile, f.start)) < 0)
                return dv_error_add(err, r, 0, "cannot write %s: %s", p->pidfile, strerror(-r));
        pthread_mutex_lock(&lock);
        ent->pid = s->pid;
        ent->start = f.start;
        ent->child = true;
        pthread_mutex_unlock(&lock);
        events_watch(ent, s->pid);
        log_debug("container %s: init started as PID %d", def->name, (int)s->pid);
        return 0;
}

static int start_locked(const struct domain_def *def, const struct dom_start *args,
                        const struct paths *p, struct lxc_entry *ent, struct dv_error *err) {
        pid_t foreign = 0;
        struct dom_proc_stat f;
        pid_t live = find_ours(p, ent, true, &foreign, &f, NULL, NULL);
        if (live > 0) {
                log_debug("container %s runs already as PID %d", p->name, (int)live);
                return 0;
        }
        if (foreign > 0)
                return dv_error_add(err, -EEXIST, 0,
                                    "a process (PID %d) not started by declvirt is in the cgroup "
                                    "of container %s",
                                    (int)foreign, p->name);
        _cleanup_(lxc_plan_freep) struct lxc_plan *plan = NULL;
        int r = plan_for(def, p, args, &plan, err);
        if (r < 0)
                return r;
        /* Never in the host's user namespace instead: nothing starts half-confined. */
        if (plan->id_range && plan->n_uid_map == 0)
                return dv_error_add(err, -EUSERS, 0,
                                    "container %s has no range of agent.conf container.id_range "
                                    "allocated: not started",
                                    def->name);
        r = lxc_plan_check_sources(def, plan, err);
        if (r < 0)
                return r;
        /* What a container that is gone left behind (the agent was not there to see it). */
        pid_t filepid = 0;
        if (dom_proc_read_pidfile(p->pidfile, &filepid) < 0 || filepid > 0)
                cleanup_after(def, p, CGROUP_WAIT_MSEC);

        struct start_state s = {.pidfd = -1, .host_mntns = -1};
        r = start_spawn(def, p, plan, ent, &s, err);
        if (r < 0) {
                if (!dv_error_failed(err))
                        r = dv_error_add(err, r, 0, "cannot start container %s: %s", def->name,
                                         strerror(-r));
                start_state_undo(def, p, plan, &s);
        }
        start_state_done(&s);
        return r;
}

int lxc_start(const struct domain_def *def, const struct dom_start *args, struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        struct lxc_entry *ent = entry_get(p.name);
        if (!ent)
                return dv_error_oom(err);
        if (dom_proc_busy_begin(&ent->run, &lock) < 0)
                return dv_error_add(err, -EBUSY, 0, "container %s is being started or stopped",
                                    p.name);
        r = start_locked(def, args, &p, ent, err);
        dom_proc_busy_end(&ent->run, &lock);
        return r;
}

/* ---- stop ------------------------------------------------------------------------------- */

/* systemd wants SIGRTMIN+3 to shut down; other inits SIGTERM. */
static bool init_is_systemd(const struct domain_def *def, pid_t pid) {
        if (def->os.init && str_ends_with(def->os.init, "/systemd"))
                return true;
        char p[64], exe[4096];
        snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
        ssize_t n = readlink(p, exe, sizeof(exe) - 1);
        if (n <= 0)
                return false;
        exe[n] = '\0';
        return str_ends_with(exe, "/systemd");
}

static int stop_locked(const struct domain_def *def, const struct paths *p, struct lxc_entry *ent,
                       uint64_t timeout_usec, struct dv_error *err) {
        pid_t foreign = 0, filepid = 0;
        struct dom_proc_stat f;
        pid_t live = find_ours(p, ent, false, &foreign, &f, &filepid, NULL);
        if (live <= 0) {
                if (foreign > 0)
                        log_debug("container %s: PID %d in its cgroup is not ours, not stopping it",
                                  p->name, (int)foreign);
                pthread_mutex_lock(&lock);
                pid_t prev = ent->pid;
                bool child = ent->child;
                ent->pid = 0;
                ent->child = false;
                pthread_mutex_unlock(&lock);
                if (prev > 0 && child)
                        (void)dom_proc_reap_dying(prev, NULL);
                cleanup_after(def, p, foreign ? 0 : CGROUP_WAIT_MSEC);
                return 0;
        }
        /* The pidfd pins the process; checked again after opening it, a signal can only
         * reach the init we looked at. */
        _cleanup_close_ int fd = pidfd_open(live, 0);
        struct cgroup_set cp;
        bool ours = cgroup_plan(p, &cp) == 0 && pid_is_ours(&cp, live, f.start, NULL);
        cgroup_set_done(&cp);
        if (ours) {
                int sig = init_is_systemd(def, live) ? SIGRTMIN + 3 : SIGTERM;
                log_debug("container %s: sending signal %d to init PID %d", p->name, sig,
                          (int)live);
                int r = dom_proc_signal(fd, live, sig);
                bool exited = r >= 0 && dom_proc_wait_exit(fd, live, timeout_usec);
                if (!exited) {
                        log_debug("container %s: init did not stop within the timeout, killing it",
                                  p->name);
                        r = dom_proc_signal(fd, live, SIGKILL);
                        if (r < 0 || !dom_proc_wait_exit(fd, live, KILL_WAIT_USEC))
                                return dv_error_add(err, r < 0 ? r : -ETIMEDOUT, 0,
                                                    "init of container %s (PID %d) does not stop",
                                                    p->name, (int)live);
                }
        }
        (void)dom_proc_reap_dying(live, NULL);
        cleanup_after(def, p, CGROUP_WAIT_MSEC);
        pthread_mutex_lock(&lock);
        ent->pid = 0;
        ent->start = 0;
        ent->child = false;
        pthread_mutex_unlock(&lock);
        return 0;
}

int lxc_stop(const struct domain_def *def, uint64_t timeout_usec, struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        struct lxc_entry *ent = entry_get(p.name);
        if (!ent)
                return dv_error_oom(err);
        if (dom_proc_busy_begin(&ent->run, &lock) < 0)
                return dv_error_add(err, -EBUSY, 0, "container %s is being started or stopped",
                                    p.name);
        events_close(ent); /* its exit is asked for: no news */
        r = stop_locked(def, &p, ent, timeout_usec, err);
        dom_proc_busy_end(&ent->run, &lock);
        return r;
}

/* ---- the rest of the table ------------------------------------------------------------------ */

int lxc_available(struct dv_error *err) {
        pthread_mutex_lock(&lock);
        _cleanup_free_ char *root = strdup(cfg_cgroup_root ? cfg_cgroup_root : DEFAULT_CGROUP_ROOT);
        pthread_mutex_unlock(&lock);
        if (!root)
                return -ENOMEM;
        struct cgroup_layout l;
        if (cgroup_layout_get(root, CGROUP_DEFAULT_BASE, &l) < 0)
                return dv_error_add(err, -EOPNOTSUPP, 0,
                                    "no cgroup hierarchy found at %s: containers cannot run", root);
        if (geteuid() != 0)
                return dv_error_add(err, -EPERM, 0, "containers need the agent to run as root");
        return 0;
}

int lxc_iface_name(const struct domain_def *def, size_t index, char buf[static IFNAMSIZ]) {
        if (!def || index >= def->n_interfaces)
                return -ENOENT;
        return lxc_veth_name(def, index, buf);
}

int lxc_native(const struct domain_def *def, const struct dom_start *args, FILE *f,
               struct dv_error *err) {
        _cleanup_(paths_done) struct paths p = {0};
        int r = paths_get(def, &p, err);
        if (r < 0)
                return r;
        _cleanup_(lxc_plan_freep) struct lxc_plan *plan = NULL;
        r = plan_for(def, &p, args, &plan, err);
        if (r < 0)
                return r;
        lxc_plan_print(plan, f);
        return 0;
}

const struct domain_driver lxc_domain_driver = {
        .name = "container",
        .available = lxc_available,
        .observe = lxc_observe,
        .start = lxc_start,
        .stop = lxc_stop,
        .iface_name = lxc_iface_name,
        .events_fd = lxc_events_fd,
        .events_dispatch = lxc_events_dispatch,
        .native = lxc_native,
        .check = lxc_check_def,
};
