/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The iscsi pool driver: iscsiadm for discovery, node records, CHAP, login and logout;
 * sysfs for what the kernel has (sessions, LUNs), which costs no process per observe.
 * Also the CHAP secret files both iSCSI drivers read. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/storage/iscsi.h"
#include "model/object.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/parse.h"
#include "util/strv.h"

/* iscsiadm exit codes (open-iscsi's include/iscsi_err.h). */
#define ISCSI_ERR_SESS_EXISTS   15
#define ISCSI_ERR_NO_OBJS_FOUND 21

/* ---- settings ---------------------------------------------------------------------------- */

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets_dir;  /* NULL: DRV_ISCSI_DEFAULT_SECRETS_DIR */
static uid_t secret_owner; /* root */
static char *sysfs_root;   /* NULL: /sys */

void drv_iscsi_set_secrets_dir(const char *dir) {
        char *d = dir ? strdup(dir) : NULL;
        pthread_mutex_lock(&settings_lock);
        free(secrets_dir);
        secrets_dir = d;
        pthread_mutex_unlock(&settings_lock);
}

void drv_iscsi_set_secret_owner(uid_t uid) {
        pthread_mutex_lock(&settings_lock);
        secret_owner = uid;
        pthread_mutex_unlock(&settings_lock);
}

void drv_iscsi_set_sysfs_root(const char *root) {
        char *d = root ? strdup(root) : NULL;
        pthread_mutex_lock(&settings_lock);
        free(sysfs_root);
        sysfs_root = d;
        pthread_mutex_unlock(&settings_lock);
}

static char *sysfs_path(const char *rel) {
        pthread_mutex_lock(&settings_lock);
        char *p = path_join(sysfs_root ? sysfs_root : "/sys", rel);
        pthread_mutex_unlock(&settings_lock);
        return p;
}

/* ---- secrets ----------------------------------------------------------------------------- */

const char *drv_iscsi_secret_name(const struct pool_def *def) {
        if (!def->source.has_auth)
                return NULL;
        return def->source.auth.secret_usage ? def->source.auth.secret_usage
                                             : def->source.auth.secret_uuid;
}

static const char *secret_name_problem(const char *name) {
        if (!name || !*name)
                return "is empty";
        if (name[0] == '.')
                return "begins with '.'";
        if (strlen(name) > 255)
                return "is longer than 255 bytes";
        for (const char *c = name; *c; c++) {
                if (*c == '/')
                        return "contains '/'";
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        return "contains control characters";
        }
        return NULL;
}

int drv_iscsi_read_secret(const char *name, char **ret, struct dv_error *err) {
        const char *why = secret_name_problem(name);
        if (why)
                return dv_error_add(err, -EINVAL, 0, "CHAP secret name '%s' %s", strempty(name),
                                    why);
        pthread_mutex_lock(&settings_lock);
        _cleanup_free_ char *path =
                path_join(secrets_dir ? secrets_dir : DRV_ISCSI_DEFAULT_SECRETS_DIR, name);
        uid_t owner = secret_owner;
        pthread_mutex_unlock(&settings_lock);
        if (!path)
                return dv_error_oom(err);
        _cleanup_close_ int fd =
                open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        int r;
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return dv_error_add(err, r, 0, "CHAP secret file %s does not exist", path);
                return dv_error_add(err, r, 0, "cannot open CHAP secret file %s: %s", path,
                                    strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot look at CHAP secret file %s: %s", path,
                                    strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return dv_error_add(err, -EPERM, 0, "CHAP secret file %s is not a regular file",
                                    path);
        if (st.st_uid != owner)
                return dv_error_add(err, -EPERM, 0,
                                    "CHAP secret file %s is owned by uid %u, not %u; refusing it",
                                    path, (unsigned)st.st_uid, (unsigned)owner);
        if (st.st_mode & 077)
                return dv_error_add(err, -EPERM, 0,
                                    "CHAP secret file %s can be accessed by group or others "
                                    "(mode %04o); refusing it (chmod 0600)",
                                    path, (unsigned)(st.st_mode & 07777));
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        r = read_full_fd(fd, DRV_ISCSI_SECRET_MAX + 2, &data, &len);
        if (r == -EFBIG)
                return dv_error_add(err, -EINVAL, 0, "CHAP secret file %s holds more than %d bytes",
                                    path, DRV_ISCSI_SECRET_MAX);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read CHAP secret file %s: %s", path,
                                    strerror(-r));
        if (len > 0 && data[len - 1] == '\n')
                data[--len] = '\0';
        if (len > 0 && data[len - 1] == '\r')
                data[--len] = '\0';
        bool bad = len == 0 || len > DRV_ISCSI_SECRET_MAX || strlen(data) != len;
        for (size_t i = 0; !bad && i < len; i++)
                bad = (unsigned char)data[i] < 0x20 || data[i] == 0x7f;
        if (bad) {
                explicit_bzero(data, len);
                return dv_error_add(err, -EINVAL, 0,
                                    "CHAP secret file %s must hold one line of 1..%d printable "
                                    "characters",
                                    path, DRV_ISCSI_SECRET_MAX);
        }
        *ret = TAKE_PTR(data);
        return 0;
}

/* ---- names ------------------------------------------------------------------------------- */

static uint16_t port_of(const struct pool_def *def) {
        return def->source.has_port ? def->source.port : DRV_ISCSI_DEFAULT_PORT;
}

char *drv_iscsi_host_port(const struct pool_def *def) {
        const char *h = def->source.host_name;
        char *s = NULL;
        if (!h)
                return NULL;
        bool v6 = strchr(h, ':') != NULL;
        if (asprintf(&s, "%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "", (unsigned)port_of(def)) < 0)
                return NULL;
        return s;
}

char *drv_iscsi_portal(const struct pool_def *def) {
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        char *s = NULL;
        if (!hp || asprintf(&s, "%s,1", hp) < 0)
                return NULL;
        return s;
}

const char *drv_iscsi_target(const struct pool_def *def) {
        if (def->source.n_devices != 1 || !def->source.devices[0].path ||
            !*def->source.devices[0].path)
                return NULL;
        return def->source.devices[0].path;
}

/* ---- argv -------------------------------------------------------------------------------- */

static int node_argv(const struct pool_def *def, char ***ret) {
        const char *t = drv_iscsi_target(def);
        _cleanup_free_ char *portal = drv_iscsi_portal(def);
        if (!t || !portal)
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "iscsiadm") < 0 || strv_push(&argv, "--mode") < 0 ||
            strv_push(&argv, "node") < 0 || strv_push(&argv, "--targetname") < 0 ||
            strv_push(&argv, t) < 0 || strv_push(&argv, "--portal") < 0 ||
            strv_consume(&argv, TAKE_PTR(portal)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int node_argv_plus(const struct pool_def *def, char ***ret, const char *a, const char *b) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = node_argv(def, &argv);
        if (r < 0)
                return r;
        if ((a && strv_push(&argv, a) < 0) || (b && strv_push(&argv, b) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_iscsi_discovery_argv(const struct pool_def *def, char ***ret) {
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        if (!hp || !drv_iscsi_target(def))
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "iscsiadm") < 0 || strv_push(&argv, "--mode") < 0 ||
            strv_push(&argv, "discovery") < 0 || strv_push(&argv, "--type") < 0 ||
            strv_push(&argv, "sendtargets") < 0 || strv_push(&argv, "--portal") < 0 ||
            strv_consume(&argv, TAKE_PTR(hp)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_iscsi_node_new_argv(const struct pool_def *def, char ***ret) {
        return node_argv_plus(def, ret, "--op", "new");
}

int drv_iscsi_node_update_argv(const struct pool_def *def, const char *name, const char *value,
                               char ***ret) {
        if (!name || !value)
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        int r = node_argv_plus(def, &argv, "--op", "update");
        if (r < 0)
                return r;
        if (strv_push(&argv, "--name") < 0 || strv_push(&argv, name) < 0 ||
            strv_push(&argv, "--value") < 0 || strv_push(&argv, value) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_iscsi_login_argv(const struct pool_def *def, char ***ret) {
        return node_argv_plus(def, ret, "--login", NULL);
}

int drv_iscsi_logout_argv(const struct pool_def *def, char ***ret) {
        return node_argv_plus(def, ret, "--logout", NULL);
}

int drv_iscsi_session_argv(char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "iscsiadm") < 0 || strv_push(&argv, "--mode") < 0 ||
            strv_push(&argv, "session") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_iscsi_rescan_argv(unsigned sid, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = drv_iscsi_session_argv(&argv);
        if (r < 0)
                return r;
        if (strv_push(&argv, "-r") < 0 || strv_pushf(&argv, "%u", sid) < 0 ||
            strv_push(&argv, "-R") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int drv_iscsi_chap_settings(const struct pool_def *def, const char *password, char ***ret) {
        if (!def->source.has_auth || !def->source.auth.username || !password)
                return -EINVAL;
        _cleanup_strv_free_ char **l = NULL;
        if (strv_push(&l, "node.session.auth.authmethod") < 0 || strv_push(&l, "CHAP") < 0 ||
            strv_push(&l, "node.session.auth.username") < 0 ||
            strv_push(&l, def->source.auth.username) < 0 ||
            strv_push(&l, "node.session.auth.password") < 0 || strv_push(&l, password) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- parsing iscsiadm output -------------------------------------------------------------- */

void drv_iscsi_sessions_free(struct drv_iscsi_session *s, size_t n) {
        for (size_t i = 0; s && i < n; i++) {
                free(s[i].address);
                free(s[i].target);
        }
        free(s);
}

/* "ADDR:PORT,TPGT" with ADDR possibly "[v6]". */
static int parse_portal(const char *s, size_t len, struct drv_iscsi_session *ret) {
        _cleanup_free_ char *p = strndup(s, len);
        if (!p)
                return -ENOMEM;
        char *comma = strrchr(p, ',');
        if (!comma)
                return -EINVAL;
        *comma = '\0';
        uint64_t tpgt, port;
        if (parse_u64_range(comma + 1, 0, 65535, &tpgt) < 0)
                return -EINVAL;
        char *colon = strrchr(p, ':');
        if (!colon || colon == p)
                return -EINVAL;
        *colon = '\0';
        if (parse_u64_range(colon + 1, 1, 65535, &port) < 0)
                return -EINVAL;
        char *addr = p;
        size_t al = strlen(addr);
        if (addr[0] == '[') {
                if (al < 3 || addr[al - 1] != ']')
                        return -EINVAL;
                addr[al - 1] = '\0';
                addr++;
        }
        ret->address = strdup(addr);
        if (!ret->address)
                return -ENOMEM;
        ret->port = (uint16_t)port;
        ret->tpgt = (unsigned)tpgt;
        return 0;
}

static bool is_name_char(char c) {
        return c > 0x20 && c < 0x7f;
}

/* One line: [prefix] PORTAL TARGET [rest]. with_sid: "tcp: [SID] " first. */
static int parse_line(const char *line, bool with_sid, struct drv_iscsi_session *ret) {
        const char *p = line;
        *ret = (struct drv_iscsi_session){0};
        if (with_sid) {
                const char *colon = strchr(p, ':');
                if (!colon || colon[1] != ' ' || colon[2] != '[')
                        return -EINVAL;
                p = colon + 3;
                const char *end = strchr(p, ']');
                if (!end || end == p)
                        return -EINVAL;
                _cleanup_free_ char *num = strndup(p, (size_t)(end - p));
                uint64_t sid;
                if (!num || parse_u64_range(num, 0, UINT32_MAX, &sid) < 0)
                        return -EINVAL;
                ret->sid = (unsigned)sid;
                p = end + 1;
                if (*p != ' ')
                        return -EINVAL;
                p++;
        }
        const char *sp = strchr(p, ' ');
        if (!sp)
                return -EINVAL;
        int r = parse_portal(p, (size_t)(sp - p), ret);
        if (r < 0)
                return r;
        p = sp + 1;
        size_t tl = 0;
        while (is_name_char(p[tl]))
                tl++;
        if (tl == 0 || (p[tl] != '\0' && p[tl] != ' ')) {
                free(ret->address);
                ret->address = NULL;
                return -EINVAL;
        }
        ret->target = strndup(p, tl);
        if (!ret->target) {
                free(ret->address);
                ret->address = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int parse_lines(const char *out, bool with_sid, struct drv_iscsi_session **ret, size_t *n) {
        struct drv_iscsi_session *v = NULL;
        size_t nv = 0;
        const char *p = out ? out : "";
        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                _cleanup_free_ char *line = strndup(p, len);
                if (!line) {
                        drv_iscsi_sessions_free(v, nv);
                        return -ENOMEM;
                }
                struct drv_iscsi_session s;
                int r = parse_line(line, with_sid, &s);
                if (r == -ENOMEM) {
                        drv_iscsi_sessions_free(v, nv);
                        return r;
                }
                if (r == 0) {
                        struct drv_iscsi_session *nvp = reallocarray(v, nv + 1, sizeof(*v));
                        if (!nvp) {
                                free(s.address);
                                free(s.target);
                                drv_iscsi_sessions_free(v, nv);
                                return -ENOMEM;
                        }
                        v = nvp;
                        v[nv++] = s;
                } else
                        log_debug("iscsiadm output line not understood: %s", line);
                p += len;
                if (*p == '\n')
                        p++;
        }
        *ret = v;
        *n = nv;
        return 0;
}

int drv_iscsi_parse_sessions(const char *out, struct drv_iscsi_session **ret, size_t *n) {
        return parse_lines(out, true, ret, n);
}

int drv_iscsi_parse_discovery(const char *out, struct drv_iscsi_session **ret, size_t *n) {
        return parse_lines(out, false, ret, n);
}

/* The address the kernel reports against the host the pool names: the same literal
 * (compared as addresses, so "::1" matches "0:0::1"); a host name matches any address,
 * because resolving it here could block the event loop. */
static bool address_matches(const char *host, const char *addr) {
        unsigned char a[16], b[16];
        if (streq(host, addr))
                return true;
        int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(fam, host, a) != 1)
                return true; /* a name */
        if (inet_pton(fam, addr, b) != 1)
                return false;
        return memcmp(a, b, fam == AF_INET6 ? 16 : 4) == 0;
}

/* ---- sysfs --------------------------------------------------------------------------------- */

/* A sysfs attribute without its trailing newline; NULL when it cannot be read. */
static char *read_attr(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join(dir, name);
        char *s = NULL;
        size_t len = 0;
        if (!p || read_full_file(p, 4096, &s, &len) < 0)
                return NULL;
        while (len > 0 && isspace((unsigned char)s[len - 1]))
                s[--len] = '\0';
        return s;
}

static int parse_prefixed_uint(const char *s, const char *prefix, unsigned *ret) {
        size_t pl = strlen(prefix);
        uint64_t v;
        if (strncmp(s, prefix, pl) != 0 || parse_u64_range(s + pl, 0, UINT32_MAX, &v) < 0)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

int drv_iscsi_sysfs_find_session(const struct pool_def *def, struct drv_iscsi_sysfs_session *ret) {
        const char *target = drv_iscsi_target(def);
        _cleanup_free_ char *sdir = sysfs_path("class/iscsi_session");
        _cleanup_free_ char *cdir = sysfs_path("class/iscsi_connection");
        if (!target || !def->source.host_name || !sdir || !cdir)
                return 0;
        DIR *d = opendir(sdir);
        if (!d)
                return 0; /* no iSCSI transport in this kernel: no sessions */
        struct drv_iscsi_sysfs_session best = {0};
        bool found = false;
        struct dirent *de;
        while ((de = readdir(d))) {
                unsigned sid;
                if (parse_prefixed_uint(de->d_name, "session", &sid) < 0)
                        continue;
                _cleanup_free_ char *dir = path_join(sdir, de->d_name);
                _cleanup_free_ char *tn = dir ? read_attr(dir, "targetname") : NULL;
                if (!tn || !streq(tn, target))
                        continue;
                _cleanup_free_ char *cname = NULL;
                if (asprintf(&cname, "connection%u:0", sid) < 0)
                        break;
                _cleanup_free_ char *conn = path_join(cdir, cname);
                _cleanup_free_ char *addr = conn ? read_attr(conn, "persistent_address") : NULL;
                _cleanup_free_ char *port = conn ? read_attr(conn, "persistent_port") : NULL;
                uint64_t pv;
                if (!addr || !port || parse_u64_range(port, 1, 65535, &pv) < 0 ||
                    pv != port_of(def) || !address_matches(def->source.host_name, addr))
                        continue;
                _cleanup_free_ char *state = read_attr(dir, "state");
                bool logged_in = state && streq(state, "LOGGED_IN");
                if (found && !logged_in)
                        continue; /* keep the logged-in one we have */
                free(best.state);
                best = (struct drv_iscsi_sysfs_session){.sid = sid, .state = TAKE_PTR(state)};
                if (!best.state)
                        best.state = strdup("unknown");
                found = true;
                if (logged_in)
                        break;
        }
        closedir(d);
        if (!found)
                return 0;
        *ret = best;
        return 1;
}

static int cmp_vol(const void *a, const void *b) {
        return strcmp(((const struct vol_status *)a)->name, ((const struct vol_status *)b)->name);
}

static char *stable_path(const struct pool_def *def, unsigned lun) {
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        const char *dir = def->target.path ? def->target.path : DRV_ISCSI_BY_PATH_DIR;
        char *s = NULL;
        if (!hp ||
            asprintf(&s, "%s/ip-%s-iscsi-%s-lun-%u", dir, hp, drv_iscsi_target(def), lun) < 0)
                return NULL;
        return s;
}

/* One SCSI device directory H:C:T:L of the session: its block device, if any. */
static int add_lun(const struct pool_def *def, const char *tdir, const char *hctl,
                   struct vol_status **v, size_t *nv) {
        unsigned h, c, t, l;
        int end = 0;
        if (sscanf(hctl, "%u:%u:%u:%u%n", &h, &c, &t, &l, &end) != 4 || hctl[end] != '\0')
                return 0;
        _cleanup_free_ char *ddir = path_join(tdir, hctl);
        _cleanup_free_ char *bdir = ddir ? path_join(ddir, "block") : NULL;
        if (!bdir)
                return -ENOMEM;
        DIR *bd = opendir(bdir);
        if (!bd)
                return 0; /* not a disk (a controller LUN) or not attached yet */
        _cleanup_free_ char *dev = NULL;
        struct dirent *de;
        while ((de = readdir(bd)))
                if (de->d_name[0] != '.') {
                        dev = strdup(de->d_name);
                        break;
                }
        closedir(bd);
        if (!dev)
                return 0;
        _cleanup_free_ char *devdir = path_join(bdir, dev);
        _cleanup_free_ char *size = devdir ? read_attr(devdir, "size") : NULL;
        uint64_t sectors = 0;
        if (!size || parse_u64(size, &sectors) < 0 || sectors > UINT64_MAX / 512)
                sectors = 0;
        _cleanup_free_ char *path = stable_path(def, l);
        struct stat st;
        if (path && stat(path, &st) < 0) {
                free(path);
                path = NULL;
                if (asprintf(&path, "/dev/%s", dev) < 0)
                        path = NULL;
        }
        char *name = NULL;
        if (!path || asprintf(&name, "unit:%u:%u:%u", c, t, l) < 0)
                return -ENOMEM;
        struct vol_status *nvp = reallocarray(*v, *nv + 1, sizeof(**v));
        if (!nvp) {
                free(name);
                return -ENOMEM;
        }
        *v = nvp;
        nvp[*nv] = (struct vol_status){
                .name = name,
                .path = TAKE_PTR(path),
                .type = strdup("block"),
                .format = strdup("raw"),
                .capacity = sectors * 512,
                .allocation = sectors * 512,
        };
        (*nv)++;
        if (!nvp[*nv - 1].type || !nvp[*nv - 1].format)
                return -ENOMEM;
        return 0;
}

int drv_iscsi_sysfs_list_luns(const struct pool_def *def, unsigned sid, struct vol_status **ret,
                              size_t *n, struct dv_error *err) {
        char rel[64];
        snprintf(rel, sizeof(rel), "class/iscsi_session/session%u/device", sid);
        _cleanup_free_ char *sdev = sysfs_path(rel);
        if (!sdev)
                return dv_error_oom(err);
        struct vol_status *v = NULL;
        size_t nv = 0;
        int r = 0;
        DIR *d = opendir(sdev);
        if (!d) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot list the LUNs of iSCSI session %u: %s", sid,
                                    strerror(-r));
        }
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (strncmp(de->d_name, "target", 6) != 0)
                        continue;
                _cleanup_free_ char *tdir = path_join(sdev, de->d_name);
                DIR *td = tdir ? opendir(tdir) : NULL;
                if (!td) {
                        r = tdir ? 0 : -ENOMEM;
                        continue;
                }
                struct dirent *te;
                while (r >= 0 && (te = readdir(td)))
                        r = add_lun(def, tdir, te->d_name, &v, &nv);
                closedir(td);
        }
        closedir(d);
        if (r < 0) {
                vol_status_array_free(v, nv);
                return dv_error_oom(err);
        }
        if (nv > 0)
                qsort(v, nv, sizeof(*v), cmp_vol);
        *ret = v;
        *n = nv;
        return 0;
}

/* ---- the driver ---------------------------------------------------------------------------- */

static int check_def(const struct pool_def *def, struct dv_error *err) {
        if (!def->source.host_name || !drv_iscsi_target(def))
                return dv_error_add(err, -EINVAL, 0,
                                    "pool %s needs a <host name=...> and a <device path='IQN'/>",
                                    strna(def->name));
        return 0;
}

static int iscsi_pool_observe(const struct pool_def *def, struct pool_status *ret,
                              struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        struct pool_status s = {0};
        struct drv_iscsi_sysfs_session ses = {0};
        if (drv_iscsi_sysfs_find_session(def, &ses) <= 0) {
                s.state = POOL_STATE_INACTIVE; /* not logged in: start logs in */
                *ret = s;
                return 0;
        }
        _cleanup_free_ char *state = ses.state;
        if (!streq(state, "LOGGED_IN")) {
                _cleanup_free_ char *hp = drv_iscsi_host_port(def);
                s.state = POOL_STATE_BROKEN;
                if (asprintf(&s.reason,
                             "iSCSI session %u to target %s at %s is %s (the kernel keeps "
                             "reconnecting)",
                             ses.sid, drv_iscsi_target(def), strna(hp), state) < 0)
                        s.reason = NULL;
                *ret = s;
                return 0;
        }
        s.state = POOL_STATE_ACTIVE;
        struct vol_status *v = NULL;
        size_t n = 0;
        _cleanup_dv_error_ struct dv_error lerr = DV_ERROR_INIT;
        if (drv_iscsi_sysfs_list_luns(def, ses.sid, &v, &n, &lerr) >= 0) {
                s.has_sizes = true;
                for (size_t i = 0; i < n; i++)
                        s.capacity += v[i].capacity;
                s.allocation = s.capacity;
                vol_status_array_free(v, n);
        }
        *ret = s;
        return 0;
}

/* The last non-empty line of stderr: iscsiadm prints its conclusion last, after
 * complaints about systemd, kmod and the like. */
static char *last_line(const char *tail) {
        if (!tail)
                return NULL;
        size_t end = strlen(tail);
        while (end > 0 && isspace((unsigned char)tail[end - 1]))
                end--;
        size_t start = end;
        while (start > 0 && tail[start - 1] != '\n')
                start--;
        return strndup(tail + start, end - start);
}

/* Runs iscsiadm; exit statuses in ok (0-terminated list, 0 always fine) count as success.
 * A failure says which iscsiadm mode failed and its last stderr line; the whole tail and
 * the argv go into err's command fields. */
static int run_iscsiadm(char **argv, uint64_t timeout, const int *ok, struct cmd_result *res,
                        struct dv_error *err) {
        struct cmd_opts opts = {.timeout_usec = timeout, .allow_nonzero = true};
        struct cmd_result rr = {0};
        _cleanup_free_ char *line = cmd_argv_string(argv);
        log_debug("running %s", strna(line));
        int r = cmd_run(argv, &opts, &rr, err);
        if (r < 0) {
                cmd_result_done(&rr);
                return r;
        }
        bool accepted = rr.exit_status == 0;
        for (const int *o = ok; o && *o; o++)
                accepted = accepted || rr.exit_status == *o;
        if (!accepted) {
                _cleanup_free_ char *why = last_line(rr.err_tail);
                const char *mode = strv_length(argv) > 2 ? argv[2] : "";
                if (rr.exit_status < 0)
                        r = dv_error_add(err, -EIO, 0, "iscsiadm --mode %s was killed by signal %d",
                                         mode, rr.term_signal);
                else
                        r = dv_error_add(err, -EIO, 0,
                                         "iscsiadm --mode %s failed (exit status %d): %s", mode,
                                         rr.exit_status, why && *why ? why : "no error message");
                dv_error_set_command(err, line, rr.err_tail);
                cmd_result_done(&rr);
                return r;
        }
        if (res)
                *res = rr;
        else
                cmd_result_done(&rr);
        return 0;
}

static int build_and_run(int (*build)(const struct pool_def *, char ***),
                         const struct pool_def *def, uint64_t timeout, const int *ok,
                         struct cmd_result *res, struct dv_error *err) {
        _cleanup_strv_free_ char **argv = NULL;
        int r = build(def, &argv);
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot build the iscsiadm command for pool %s: %s",
                                    strna(def->name), strerror(-r));
        return run_iscsiadm(argv, timeout, ok, res, err);
}

static int check_offered(const struct pool_def *def, const char *out, struct dv_error *err) {
        struct drv_iscsi_session *v = NULL;
        size_t n = 0;
        int r = drv_iscsi_parse_discovery(out, &v, &n);
        if (r < 0)
                return dv_error_oom(err);
        const char *t = drv_iscsi_target(def);
        bool found = false;
        _cleanup_strv_free_ char **offered = NULL;
        for (size_t i = 0; i < n; i++) {
                found = found || streq(v[i].target, t);
                if (!strv_contains(offered, v[i].target) && strv_push(&offered, v[i].target) < 0) {
                        drv_iscsi_sessions_free(v, n);
                        return dv_error_oom(err);
                }
        }
        drv_iscsi_sessions_free(v, n);
        if (found)
                return 0;
        _cleanup_free_ char *hp = drv_iscsi_host_port(def);
        _cleanup_free_ char *list = strv_join(offered, ", ", false);
        return dv_error_add(err, -ENOENT, 0,
                            "iSCSI portal %s does not offer target %s (it offers: %s)", strna(hp),
                            t, list && *list ? list : "nothing");
}

static int session_argv_def(const struct pool_def *def, char ***ret) {
        (void)def;
        return drv_iscsi_session_argv(ret);
}

/* After a login the kernel scans the LUNs itself; a rescan catches LUNs added to a
 * session that already existed. Best effort: the login is what matters. */
static void rescan(const struct pool_def *def) {
        struct cmd_result res = {0};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        static const int ok[] = {ISCSI_ERR_NO_OBJS_FOUND, 0};
        if (build_and_run(session_argv_def, def, DRV_ISCSI_CMD_TIMEOUT_USEC, ok, &res, &err) < 0)
                return;
        struct drv_iscsi_session *v = NULL;
        size_t n = 0;
        if (drv_iscsi_parse_sessions(res.out, &v, &n) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        if (!streq(v[i].target, drv_iscsi_target(def)) ||
                            v[i].port != port_of(def) ||
                            !address_matches(def->source.host_name, v[i].address))
                                continue;
                        _cleanup_strv_free_ char **argv = NULL;
                        if (drv_iscsi_rescan_argv(v[i].sid, &argv) >= 0)
                                (void)run_iscsiadm(argv, DRV_ISCSI_CMD_TIMEOUT_USEC, NULL, NULL,
                                                   &err);
                        dv_error_clear(&err);
                }
                drv_iscsi_sessions_free(v, n);
        }
        cmd_result_done(&res);
}

static int iscsi_pool_start(const struct pool_def *def, struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        /* The secret first: a missing or unsafe file is the operator's to fix, and it
         * is better said before anything talks to the network. */
        _cleanup_free_ char *password = NULL;
        if (def->source.has_auth) {
                r = drv_iscsi_read_secret(drv_iscsi_secret_name(def), &password, err);
                if (r < 0)
                        return r;
        }
        struct cmd_result res = {0};
        r = build_and_run(drv_iscsi_discovery_argv, def, DRV_ISCSI_CMD_TIMEOUT_USEC, NULL, &res,
                          err);
        if (r >= 0)
                r = check_offered(def, res.out, err);
        cmd_result_done(&res);
        if (r >= 0)
                r = build_and_run(drv_iscsi_node_new_argv, def, DRV_ISCSI_CMD_TIMEOUT_USEC, NULL,
                                  NULL, err);
        if (r >= 0 && password) {
                _cleanup_strv_free_ char **set = NULL;
                r = drv_iscsi_chap_settings(def, password, &set);
                if (r < 0)
                        r = dv_error_add(err, r, 0, "pool %s: <auth> needs a username",
                                         strna(def->name));
                for (size_t i = 0; r >= 0 && set[i] && set[i + 1]; i += 2) {
                        _cleanup_strv_free_ char **argv = NULL;
                        r = drv_iscsi_node_update_argv(def, set[i], set[i + 1], &argv);
                        if (r < 0)
                                r = dv_error_oom(err);
                        else
                                r = run_iscsiadm(argv, DRV_ISCSI_CMD_TIMEOUT_USEC, NULL, NULL, err);
                }
                for (size_t i = 0; set && set[i]; i++)
                        explicit_bzero(set[i], strlen(set[i]));
        }
        if (password)
                explicit_bzero(password, strlen(password));
        if (r < 0)
                return r;
        static const int login_ok[] = {ISCSI_ERR_SESS_EXISTS, 0};
        r = build_and_run(drv_iscsi_login_argv, def, DRV_ISCSI_LOGIN_TIMEOUT_USEC, login_ok, NULL,
                          err);
        if (r < 0)
                return r;
        rescan(def);
        return 0;
}

static int iscsi_pool_stop(const struct pool_def *def, struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        static const int ok[] = {ISCSI_ERR_NO_OBJS_FOUND, 0};
        return build_and_run(drv_iscsi_logout_argv, def, DRV_ISCSI_CMD_TIMEOUT_USEC, ok, NULL, err);
}

static int iscsi_vol_list(const struct pool_def *def, struct vol_status **ret, size_t *n,
                          struct dv_error *err) {
        int r = check_def(def, err);
        if (r < 0)
                return r;
        struct drv_iscsi_sysfs_session ses = {0};
        if (drv_iscsi_sysfs_find_session(def, &ses) <= 0) {
                *ret = NULL;
                *n = 0;
                return 0;
        }
        free(ses.state);
        return drv_iscsi_sysfs_list_luns(def, ses.sid, ret, n, err);
}

static char *iscsi_vol_path(const struct pool_def *def, const char *name) {
        unsigned c, t, l;
        int end = 0;
        if (!name || sscanf(name, "unit:%u:%u:%u%n", &c, &t, &l, &end) != 3 || name[end] != '\0')
                return NULL;
        return stable_path(def, l);
}

/* No build or delete: the LUNs are the target's; a node record is not worth deleting
 * (and could be shared with an administrator's own). No volume create/delete. */
const struct storage_driver storage_driver_iscsi = {
        .type = POOL_ISCSI,
        .pool_observe = iscsi_pool_observe,
        .pool_start = iscsi_pool_start,
        .pool_stop = iscsi_pool_stop,
        .vol_list = iscsi_vol_list,
        .vol_path = iscsi_vol_path,
};
