/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cgroups of containers (drivers/domain/lxc-cgroup.h): create, limit, join, check and
 * remove BASE/NAME in the v1 hierarchies or the v2 tree. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/domain/lxc-cgroup.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"

int lxc_cgroup_detect(const char *root, enum lxc_cgroup_mode *ret_mode, bool *ret_unified) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/cgroup.controllers", root);
        *ret_unified = false;
        if (access(p, F_OK) == 0) {
                *ret_mode = LXC_CGROUP_V2;
                return 0;
        }
        snprintf(p, sizeof(p), "%s/memory", root);
        if (access(p, F_OK) < 0)
                return -ENOENT;
        *ret_mode = LXC_CGROUP_V1;
        snprintf(p, sizeof(p), "%s/unified/cgroup.controllers", root);
        *ret_unified = access(p, F_OK) == 0;
        return 0;
}

int lxc_cgroup_create(const struct lxc_plan *p, struct dv_error *err) {
        for (size_t i = 0; p->cgroup_dirs && p->cgroup_dirs[i]; i++) {
                int r = mkdir_p(p->cgroup_dirs[i], 0755);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot create cgroup %s: %s",
                                            p->cgroup_dirs[i], strerror(-r));
        }
        return 0;
}

static int write_value(const char *file, const char *value) {
        _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(value);
        ssize_t k = write(fd, value, n);
        if (k < 0)
                return negative_errno();
        return (size_t)k == n ? 0 : -EIO;
}

int lxc_cgroup_apply(const struct lxc_plan *p, struct dv_error *err) {
        for (size_t i = 0; i < p->n_limits; i++) {
                const struct lxc_limit *l = &p->limits[i];
                log_debug("container %s: %s = %s", p->name, l->file, l->value);
                int r = write_value(l->file, l->value);
                if (r < 0) {
                        if (streq(l->what, "controllers"))
                                return dv_error_add(err, r, l->line,
                                                    "cannot enable the cgroup controllers '%s' "
                                                    "in %s: %s",
                                                    l->value, l->file, strerror(-r));
                        return dv_error_add(err, r, l->line,
                                            "cannot set %s limit %s in %s: %s (the kernel refused "
                                            "it)",
                                            l->what, l->value, l->file, strerror(-r));
                }
        }
        return 0;
}

int lxc_cgroup_join(const struct lxc_plan *p, pid_t pid, struct dv_error *err) {
        char v[32];
        snprintf(v, sizeof(v), "%d", (int)pid);
        for (size_t i = 0; p->cgroup_dirs && p->cgroup_dirs[i]; i++) {
                if (p->devices_dir && streq(p->cgroup_dirs[i], p->devices_dir))
                        continue; /* init joins it itself, after its mounts */
                _cleanup_free_ char *f = path_join(p->cgroup_dirs[i], "cgroup.procs");
                if (!f)
                        return -ENOMEM;
                int r = write_value(f, v);
                if (r < 0)
                        return dv_error_add(err, r, 0, "cannot move PID %d into %s: %s", (int)pid,
                                            f, strerror(-r));
        }
        return 0;
}

int lxc_cgroup_remove(const struct lxc_plan *p, int wait_msec) {
        int ret = 0;
        for (size_t i = 0; p->cgroup_dirs && p->cgroup_dirs[i]; i++) {
                /* Tasks of a pid namespace that is going away leave their cgroup a moment
                 * after its init is reaped. */
                for (int waited = 0;; waited += 10) {
                        if (rmdir(p->cgroup_dirs[i]) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY || waited >= wait_msec) {
                                log_debug("cannot remove cgroup %s: %m", p->cgroup_dirs[i]);
                                if (ret == 0)
                                        ret = negative_errno();
                                break;
                        }
                        (void)poll(NULL, 0, 10);
                }
        }
        return ret;
}

bool lxc_cgroup_contains(const struct lxc_plan *p, pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (read_full_file(path, 64 * 1024, &s, &len) < 0)
                return false;
        size_t cl = strlen(p->cgroup_check_ctrl);
        for (char *line = s; line && *line;) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                /* "ID:CONTROLLERS:PATH", CONTROLLERS comma-separated, empty for v2. */
                char *c = strchr(line, ':');
                char *q = c ? strchr(c + 1, ':') : NULL;
                if (c && q) {
                        bool match = false;
                        if (cl == 0)
                                match = q == c + 1;
                        else
                                for (char *w = c + 1; w < q;) {
                                        size_t n = strcspn(w, ",:");
                                        if (n == cl && strncmp(w, p->cgroup_check_ctrl, n) == 0)
                                                match = true;
                                        w += n + 1;
                                }
                        if (match && streq(q + 1, p->cgroup_check_path))
                                return true;
                }
                line = end ? end + 1 : NULL;
        }
        return false;
}

int lxc_cgroup_pids(const struct lxc_plan *p, pid_t **ret, size_t *n) {
        *ret = NULL;
        *n = 0;
        if (!p->cgroup_dirs || !p->cgroup_dirs[0])
                return 0;
        _cleanup_free_ char *f = path_join(p->cgroup_dirs[0], "cgroup.procs");
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (!f)
                return -ENOMEM;
        int r = read_full_file(f, 1 << 20, &s, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (char *line = s; line && *line;) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                uint64_t v = 0;
                if (parse_u64(line, &v) == 0 && v > 1 && v <= INT32_MAX) {
                        pid_t *k = realloc(*ret, (*n + 1) * sizeof(pid_t));
                        if (!k) {
                                free(*ret);
                                *ret = NULL;
                                *n = 0;
                                return -ENOMEM;
                        }
                        *ret = k;
                        (*ret)[(*n)++] = (pid_t)v;
                }
                line = end ? end + 1 : NULL;
        }
        return 0;
}
