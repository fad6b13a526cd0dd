/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The measuring half of `make bench` (bench/run starts and stops the agent): writes desired
 * files, renames them in, and times what the agent does from inotify on state_dir and /proc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC  1000000000ULL
/* A run that takes longer than this is a broken agent, not a slow one. */
#define RUN_TIMEOUT_MS 60000
#define EVBUF_SIZE     (64 * 1024)
#define MAX_GROUPS     16

static const char *prog = "dvbench";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", prog);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static double ms(uint64_t ns) {
        return (double)ns / 1e6;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                die("out of memory");
        return s;
}

/* Whole decimal numbers only: a typo in bench/run must not become 0 runs. */
static uint64_t parse_u64(const char *s, const char *what) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || !end || end == s || *end || s[0] == '-')
                die("%s: not a number: '%s'", what, s);
        return v;
}

static void write_file(const char *path, const char *data) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                die("cannot create %s: %m", path);
        size_t left = strlen(data);
        while (left > 0) {
                ssize_t n = write(fd, data, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        die("cannot write %s: %m", path);
                data += n;
                left -= (size_t)n;
        }
        if (close(fd) < 0)
                die("cannot write %s: %m", path);
}

static char *read_file(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size_t cap = 1 << 16, len = 0;
        char *buf = malloc(cap);
        for (;;) {
                if (!buf)
                        die("out of memory");
                if (len + 1 >= cap) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        continue;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        close(fd);
                        free(buf);
                        return NULL;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        *ret_len = len;
        return buf;
}

/* ---- the desired files --------------------------------------------------------------- */

struct layout {
        const char *root;  /* has desired/, state/, stage/ and pools/ */
        uint64_t capacity; /* of each raw volume, bytes */
        bool sparse;       /* allocation 0; else allocation = capacity (fallocate) */
};

/* The names are ours ([a-z0-9.]) and the root is a mkdtemp path, so nothing here needs
 * escaping; the agent's own XML goes through its writer. */
static void stage_pool(const struct layout *l, const char *name) {
        char *path = xasprintf("%s/stage/%s.xml", l->root, name);
        char *xml = xasprintf("<pool type='dir'>\n"
                              "  <name>%s</name>\n"
                              "  <target>\n"
                              "    <path>%s/pools/%s</path>\n"
                              "  </target>\n"
                              "</pool>\n",
                              name, l->root, name);
        write_file(path, xml);
        free(path);
        free(xml);
}

static void stage_volume(const struct layout *l, const char *pool, const char *name) {
        char *path = xasprintf("%s/stage/%s.xml", l->root, name);
        char *alloc = l->sparse ? xasprintf("  <allocation unit='bytes'>0</allocation>\n")
                                : xasprintf("%s", "");
        char *xml = xasprintf("<volume>\n"
                              "  <name>%s</name>\n"
                              "  <dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' "
                              "pool='%s'/>\n"
                              "  <capacity unit='bytes'>%" PRIu64 "</capacity>\n"
                              "%s"
                              "  <target>\n"
                              "    <format type='raw'/>\n"
                              "  </target>\n"
                              "</volume>\n",
                              name, pool, l->capacity, alloc);
        write_file(path, xml);
        free(path);
        free(alloc);
        free(xml);
}

static void move_in(const struct layout *l, const char *name) {
        char *from = xasprintf("%s/stage/%s.xml", l->root, name);
        char *to = xasprintf("%s/desired/%s.xml", l->root, name);
        if (rename(from, to) < 0)
                die("cannot rename %s to %s: %m", from, to);
        free(from);
        free(to);
}

/* ---- status.xml ---------------------------------------------------------------------- */

struct tally {
        size_t total, ready, bad; /* managed objects whose name has the prefix */
        char *bad_example;        /* "kind/name: phase: message" of one failed/blocked */
};

static void tally_done(struct tally *t) {
        free(t->bad_example);
        *t = (struct tally){0};
}

static bool attr_is(xmlNode *n, const char *attr, const char *value) {
        xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
        bool r = v && strcmp((const char *)v, value) == 0;
        xmlFree(v);
        return r;
}

/* A domain whose QEMU is not `running` (paused, prelaunch, ...) is `ready` with the message
 * "paused" (reconcile/plan.c); for the domain figures only QMP `running` counts. */
static bool is_paused(xmlNode *n) {
        if (!attr_is(n, "kind", "domain"))
                return false;
        bool paused = false;
        for (xmlNode *c = n->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "message") == 0) {
                        xmlChar *m = xmlNodeGetContent(c);
                        paused = m && strcmp((const char *)m, "paused") == 0;
                        xmlFree(m);
                }
        return paused;
}

/* Counts the managed objects of status.xml whose name begins with prefix. -errno when
 * the file is missing or does not parse (never expected: the agent renames it in). */
static int status_tally(const char *state_dir, const char *prefix, struct tally *t) {
        *t = (struct tally){0};
        char *path = xasprintf("%s/status.xml", state_dir);
        size_t len = 0;
        char *data = read_file(path, &len);
        free(path);
        if (!data)
                return -errno;
        xmlDoc *doc = xmlReadMemory(data, (int)len, "status.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_HUGE);
        free(data);
        if (!doc)
                return -EBADMSG;
        xmlNode *root = xmlDocGetRootElement(doc);
        size_t plen = strlen(prefix);
        for (xmlNode *n = root ? root->children : NULL; n; n = n->next) {
                if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "object") != 0)
                        continue;
                if (!attr_is(n, "managed", "yes"))
                        continue;
                xmlChar *name = xmlGetProp(n, (const xmlChar *)"name");
                bool mine = name && strncmp((const char *)name, prefix, plen) == 0;
                if (mine) {
                        t->total++;
                        if (attr_is(n, "phase", "ready") && !is_paused(n))
                                t->ready++;
                        else if (attr_is(n, "phase", "failed") || attr_is(n, "phase", "blocked")) {
                                t->bad++;
                                if (!t->bad_example) {
                                        xmlChar *kind = xmlGetProp(n, (const xmlChar *)"kind");
                                        xmlChar *phase = xmlGetProp(n, (const xmlChar *)"phase");
                                        xmlChar *msg = NULL;
                                        for (xmlNode *c = n->children; c; c = c->next)
                                                if (c->type == XML_ELEMENT_NODE &&
                                                    strcmp((const char *)c->name, "message") == 0)
                                                        msg = xmlNodeGetContent(c);
                                        t->bad_example =
                                                xasprintf("%s/%s: %s: %s", (const char *)kind,
                                                          (const char *)name, (const char *)phase,
                                                          msg ? (const char *)msg : "");
                                        xmlFree(kind);
                                        xmlFree(phase);
                                        xmlFree(msg);
                                }
                        }
                }
                xmlFree(name);
        }
        xmlFreeDoc(doc);
        return 0;
}

/* ---- inotify on state_dir ------------------------------------------------------------ */

struct watch {
        int fd;
        int root_wd;
        /* What arrived since the caller last looked. */
        unsigned status_renamed; /* IN_MOVED_TO status.xml in state_dir */
        unsigned status_touched; /* IN_ATTRIB status.xml in state_dir */
        unsigned writes;         /* IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE anywhere (d) */
        unsigned removals;       /* IN_DELETE, IN_MOVED_FROM anywhere */
        unsigned attribs;        /* IN_ATTRIB anywhere */
        unsigned overflows;
        char *first_write; /* the name of the first written file, for the report */
        /* Files replaced (IN_MOVED_TO) or written in place (IN_CLOSE_WRITE) under a name
         * that is not a temp dot-file, by the top directory of state_dir they are in. */
        unsigned files;
        unsigned group_files[MAX_GROUPS];
        char *group_name[MAX_GROUPS]; /* "." for state_dir itself, else "pools", ... */
        unsigned n_groups;
        unsigned *wd_group; /* indexed by watch descriptor */
        size_t n_wd;
        /* (e): RUN_DIR/qemu, where the agent writes QEMU's pidfile once QEMU is exec'd
         * (a temp file renamed); created_at is the time the first IN_CREATE or IN_MOVED_TO
         * of a name ending in ".pid" there was read (0: none yet). */
        int extra_wd;
        uint64_t created_at;
};

static void watch_clear(struct watch *w) {
        w->status_renamed = w->status_touched = w->writes = w->removals = w->attribs = 0;
        w->overflows = 0;
        free(w->first_write);
        w->first_write = NULL;
        w->files = 0;
        memset(w->group_files, 0, sizeof(w->group_files));
        w->created_at = 0;
}

/* The group of a directory relative to state_dir: its first component. */
static unsigned watch_group(struct watch *w, const char *rel) {
        size_t len = rel[0] ? strcspn(rel, "/") : 0;
        char *name = len ? strndup(rel, len) : strdup(".");
        if (!name)
                die("out of memory");
        for (unsigned i = 0; i < w->n_groups; i++)
                if (strcmp(w->group_name[i], name) == 0) {
                        free(name);
                        return i;
                }
        if (w->n_groups == MAX_GROUPS)
                die("too many directories in state_dir");
        w->group_name[w->n_groups] = name;
        return w->n_groups++;
}

/* "pools:300,.:2" for the groups with writes; "-" when none. Caller frees. */
static char *watch_groups_format(const unsigned *files, char *const *names, unsigned n) {
        char *out = strdup("");
        for (unsigned i = 0; i < n; i++) {
                if (!files[i])
                        continue;
                char *next = xasprintf("%s%s%s:%u", out, out[0] ? "," : "", names[i], files[i]);
                free(out);
                out = next;
        }
        if (!out || !out[0]) {
                free(out);
                out = strdup("-");
        }
        if (!out)
                die("out of memory");
        return out;
}

static void watch_add(struct watch *w, const char *dir, const char *rel, uint32_t mask, int depth) {
        int wd = inotify_add_watch(w->fd, dir, mask | IN_ONLYDIR);
        if (wd < 0)
                die("cannot watch %s: %m", dir);
        if (depth == 0)
                w->root_wd = wd;
        if ((size_t)wd >= w->n_wd) {
                size_t n = (size_t)wd * 2 + 16;
                w->wd_group = realloc(w->wd_group, n * sizeof(*w->wd_group));
                if (!w->wd_group)
                        die("out of memory");
                memset(w->wd_group + w->n_wd, 0, (n - w->n_wd) * sizeof(*w->wd_group));
                w->n_wd = n;
        }
        w->wd_group[wd] = watch_group(w, rel);
        if (depth >= 3)
                return;
        DIR *d = opendir(dir);
        if (!d)
                die("cannot list %s: %m", dir);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                char *sub = xasprintf("%s/%s", dir, de->d_name);
                char *subrel = xasprintf("%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
                watch_add(w, sub, subrel, mask, depth + 1);
                free(sub);
                free(subrel);
        }
        closedir(d);
}

/* recursive: every directory of state_dir (for (d)); else state_dir only. */
static void watch_open(struct watch *w, const char *state_dir, bool recursive) {
        *w = (struct watch){.extra_wd = -1};
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0)
                die("inotify_init1: %m");
        uint32_t mask = IN_MOVED_TO | IN_ATTRIB;
        if (recursive)
                mask |= IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM;
        if (recursive)
                watch_add(w, state_dir, "", mask, 0);
        else {
                w->root_wd = inotify_add_watch(w->fd, state_dir, mask | IN_ONLYDIR);
                if (w->root_wd < 0)
                        die("cannot watch %s: %m", state_dir);
        }
}

static void watch_close(struct watch *w) {
        watch_clear(w);
        for (unsigned i = 0; i < w->n_groups; i++)
                free(w->group_name[i]);
        w->n_groups = 0;
        free(w->wd_group);
        w->wd_group = NULL;
        w->n_wd = 0;
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
}

/* Reads what is queued without blocking; returns the number of events. */
static unsigned watch_read(struct watch *w) {
        union {
                struct inotify_event ev;
                char bytes[EVBUF_SIZE];
        } buf;
        unsigned count = 0;
        for (;;) {
                ssize_t l = read(w->fd, buf.bytes, sizeof(buf.bytes));
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0 && errno == EAGAIN)
                        break;
                if (l <= 0)
                        die("reading inotify events: %m");
                for (char *p = buf.bytes; p < buf.bytes + l;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        p += sizeof(*ev) + ev->len;
                        count++;
                        if (ev->mask & IN_Q_OVERFLOW) {
                                w->overflows++;
                                continue;
                        }
                        if (ev->wd == w->extra_wd && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
                            !w->created_at && ev->len > 4 &&
                            strcmp(ev->name + strlen(ev->name) - 4, ".pid") == 0)
                                w->created_at = now_ns();
                        bool status = ev->wd == w->root_wd && ev->len &&
                                      strcmp(ev->name, "status.xml") == 0;
                        if ((ev->mask & IN_MOVED_TO) && status)
                                w->status_renamed++;
                        if ((ev->mask & IN_ATTRIB) && status)
                                w->status_touched++;
                        if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)) {
                                w->writes++;
                                if (!w->first_write && ev->len)
                                        w->first_write = strdup(ev->name);
                        }
                        if ((ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) && ev->len &&
                            ev->name[0] != '.' && !(ev->mask & IN_ISDIR)) {
                                w->files++;
                                if (ev->wd >= 0 && (size_t)ev->wd < w->n_wd)
                                        w->group_files[w->wd_group[ev->wd]]++;
                        }
                        if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
                                w->removals++;
                        if (ev->mask & IN_ATTRIB)
                                w->attribs++;
                }
        }
        return count;
}

/* Waits up to timeout_ms for events and reads them; false on timeout. */
static bool watch_wait(struct watch *w, int timeout_ms) {
        struct pollfd p = {.fd = w->fd, .events = POLLIN};
        for (;;) {
                int r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        die("poll: %m");
                if (r == 0)
                        return false;
                watch_read(w);
                return true;
        }
}

/* Returns once nothing happened for quiet_ms (so a pass in flight has ended). */
static void watch_settle(struct watch *w, int quiet_ms) {
        uint64_t deadline = now_ns() + (uint64_t)RUN_TIMEOUT_MS * NSEC_PER_MSEC;
        while (watch_wait(w, quiet_ms))
                if (now_ns() > deadline)
                        die("state_dir never went quiet");
}

/* Waits until status.xml lists want managed objects with the prefix as ready. Returns
 * the CLOCK_MONOTONIC time at which the first such status.xml was seen (the time its
 * IN_MOVED_TO was read, before parsing), and counts the renames seen. Events that come
 * while a file is parsed are read together afterwards: the parse costs the agent some
 * CPU on a 2-core machine, so it is done once per batch, not once per event. */
static uint64_t wait_ready(struct watch *w, const char *state_dir, const char *prefix, size_t want,
                           uint64_t start, unsigned *ret_renames) {
        unsigned renames = 0;
        bool check_now = false; /* the objects are new: nothing to see before a write */
        for (;;) {
                uint64_t seen = now_ns();
                if (check_now) {
                        struct tally t;
                        int r = status_tally(state_dir, prefix, &t);
                        if (r < 0 && r != -ENOENT)
                                die("cannot read %s/status.xml: %s", state_dir, strerror(-r));
                        if (t.bad) {
                                fprintf(stderr, "%s: %zu object(s) failed or blocked, e.g. %s\n",
                                        prog, t.bad, t.bad_example);
                                exit(3);
                        }
                        bool done = r >= 0 && t.ready >= want;
                        tally_done(&t);
                        if (done) {
                                *ret_renames = renames;
                                return seen;
                        }
                }
                uint64_t waited = now_ns() - start;
                if (waited > (uint64_t)RUN_TIMEOUT_MS * NSEC_PER_MSEC)
                        die("objects %s* not ready after %d ms", prefix, RUN_TIMEOUT_MS);
                w->status_renamed = 0;
                if (!watch_wait(w, RUN_TIMEOUT_MS - (int)(waited / NSEC_PER_MSEC)))
                        continue;
                renames += w->status_renamed;
                check_now = w->status_renamed > 0;
        }
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned p) {
        size_t rank = (n * p + 99) / 100;
        return v[rank ? rank - 1 : 0];
}

/* ---- (a) latency --------------------------------------------------------------------- */

static int cmd_latency(const struct layout *l, const char *tag, uint64_t runs) {
        char *state_dir = xasprintf("%s/state", l->root);
        struct watch w;
        watch_open(&w, state_dir, false);
        uint64_t *lat = calloc(runs, sizeof(*lat));
        uint64_t total_renames = 0;
        if (runs == 0)
                die("nothing to measure");
        if (!lat)
                die("out of memory");
        for (uint64_t i = 0; i < runs; i++) {
                /* "TAG17." names both objects of run 17 and no others. */
                char *prefix = xasprintf("%s%" PRIu64 ".", tag, i);
                char *pool = xasprintf("%sp", prefix), *vol = xasprintf("%sv", prefix);
                stage_pool(l, pool);
                stage_volume(l, pool, vol);
                watch_settle(&w, 20);
                watch_clear(&w);
                uint64_t t0 = now_ns();
                move_in(l, pool);
                move_in(l, vol);
                unsigned renames = 0;
                uint64_t t1 = wait_ready(&w, state_dir, prefix, 2, t0, &renames);
                lat[i] = t1 - t0;
                total_renames += renames;
                free(prefix);
                free(pool);
                free(vol);
        }
        qsort(lat, runs, sizeof(*lat), cmp_u64);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < runs; i++)
                sum += lat[i];
        printf("latency runs=%" PRIu64 " p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f min_ms=%.2f "
               "max_ms=%.2f mean_ms=%.2f status_writes_per_run=%.1f\n",
               runs, ms(percentile(lat, runs, 50)), ms(percentile(lat, runs, 90)),
               ms(percentile(lat, runs, 99)), ms(lat[0]), ms(lat[runs - 1]), ms(sum / runs),
               (double)total_renames / (double)runs);
        free(lat);
        watch_close(&w);
        free(state_dir);
        return 0;
}

/* ---- (b) and the population of (c): many objects at once ------------------------------ */

static int cmd_burst(const struct layout *l, const char *tag, uint64_t pools, uint64_t vols) {
        char *state_dir = xasprintf("%s/state", l->root);
        char *prefix = xasprintf("%s.", tag);
        struct watch w;
        watch_open(&w, state_dir, false);
        uint64_t t_stage = now_ns();
        for (uint64_t p = 0; p < pools; p++) {
                char *pool = xasprintf("%sp%" PRIu64, prefix, p);
                stage_pool(l, pool);
                for (uint64_t v = 0; v < vols; v++) {
                        char *vol = xasprintf("%sp%" PRIu64 "v%" PRIu64, prefix, p, v);
                        stage_volume(l, pool, vol);
                        free(vol);
                }
                free(pool);
        }
        uint64_t staged = now_ns() - t_stage;
        watch_settle(&w, 50);
        watch_clear(&w);
        uint64_t t0 = now_ns();
        /* Each pool, then its volumes: the order a tool writing per-pool files would use. */
        for (uint64_t p = 0; p < pools; p++) {
                char *pool = xasprintf("%sp%" PRIu64, prefix, p);
                move_in(l, pool);
                for (uint64_t v = 0; v < vols; v++) {
                        char *vol = xasprintf("%sp%" PRIu64 "v%" PRIu64, prefix, p, v);
                        move_in(l, vol);
                        free(vol);
                }
                free(pool);
        }
        uint64_t t_renamed = now_ns();
        unsigned renames = 0;
        size_t want = (size_t)(pools + pools * vols);
        uint64_t t1 = wait_ready(&w, state_dir, prefix, want, t0, &renames);
        printf("burst objects=%zu pools=%" PRIu64 " volumes_per_pool=%" PRIu64
               " staging_ms=%.1f renames_ms=%.1f all_ready_ms=%.1f status_writes=%u\n",
               want, pools, vols, ms(staged), ms(t_renamed - t0), ms(t1 - t0), renames);
        watch_close(&w);
        free(prefix);
        free(state_dir);
        return 0;
}

/* ---- (c) and (d): a pass that changes nothing ----------------------------------------- */

struct proc_sample {
        uint64_t ticks;       /* utime + stime, clock ticks (/proc/PID/stat) */
        uint64_t run_ns;      /* sum of sum_exec_runtime over the threads (schedstat) */
        uint64_t write_bytes; /* /proc/PID/io */
        uint64_t wchar, syscw;
};

static uint64_t proc_stat_ticks(pid_t pid) {
        char *path = xasprintf("/proc/%d/stat", (int)pid);
        size_t len = 0;
        char *data = read_file(path, &len);
        if (!data)
                die("cannot read %s: %m (did the agent die?)", path);
        free(path);
        /* Fields after the command name, which may hold spaces: state is field 3, utime
         * field 14, stime field 15. */
        char *p = strrchr(data, ')');
        uint64_t ticks = 0;
        int field = 2;
        for (char *save = NULL, *tok = p ? strtok_r(p + 1, " ", &save) : NULL; tok;
             tok = strtok_r(NULL, " ", &save)) {
                field++;
                if (field == 14 || field == 15)
                        ticks += parse_u64(tok, "/proc/PID/stat");
                if (field == 15)
                        break;
        }
        if (field != 15)
                die("cannot parse /proc/%d/stat", (int)pid);
        free(data);
        return ticks;
}

/* schedstat's first field is the thread's CPU time in ns: finer than the 10 ms ticks. */
static uint64_t proc_run_ns(pid_t pid) {
        char *dir = xasprintf("/proc/%d/task", (int)pid);
        DIR *d = opendir(dir);
        uint64_t sum = 0;
        if (!d)
                die("cannot list %s: %m", dir);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char *path = xasprintf("%s/%s/schedstat", dir, de->d_name);
                size_t len = 0;
                char *data = read_file(path, &len);
                free(path);
                if (!data)
                        continue; /* a thread that just ended */
                data[strcspn(data, " ")] = '\0';
                sum += parse_u64(data, "schedstat");
                free(data);
        }
        closedir(d);
        free(dir);
        return sum;
}

/* Value of "key:" in a /proc file of "key: value" lines; UINT64_MAX when missing. */
static uint64_t proc_key(pid_t pid, const char *file, const char *key) {
        char *path = xasprintf("/proc/%d/%s", (int)pid, file);
        size_t len = 0;
        char *data = read_file(path, &len);
        if (!data)
                die("cannot read %s: %m", path);
        free(path);
        uint64_t v = UINT64_MAX;
        size_t klen = strlen(key);
        for (char *save = NULL, *line = strtok_r(data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, key, klen) != 0 || line[klen] != ':')
                        continue;
                char *s = line + klen + 1;
                s += strspn(s, " \t");
                s[strcspn(s, " \t")] = '\0';
                v = parse_u64(s, key);
                break;
        }
        free(data);
        return v;
}

static void proc_sample(pid_t pid, struct proc_sample *s) {
        s->ticks = proc_stat_ticks(pid);
        s->run_ns = proc_run_ns(pid);
        s->write_bytes = proc_key(pid, "io", "write_bytes");
        s->wchar = proc_key(pid, "io", "wchar");
        s->syscw = proc_key(pid, "io", "syscw");
}

static int cmd_idle(const struct layout *l, pid_t pid, uint64_t passes) {
        char *state_dir = xasprintf("%s/state", l->root);
        long hz = sysconf(_SC_CLK_TCK);
        struct watch w;
        if (passes == 0 || hz <= 0)
                die("nothing to measure");
        /* Let everything in flight end first, so the figures are those of the passes. */
        watch_open(&w, state_dir, false);
        watch_settle(&w, 500);
        watch_close(&w);
        watch_open(&w, state_dir, true);

        uint64_t *wall = calloc(passes, sizeof(*wall)), *run = calloc(passes, sizeof(*run));
        uint64_t ticks = 0, wbytes = 0, wchar = 0, syscw = 0;
        unsigned writes = 0, removals = 0, attribs = 0, rewritten = 0, overflows = 0;
        unsigned files = 0, group_files[MAX_GROUPS] = {0};
        char *first_write = NULL;
        if (!wall || !run)
                die("out of memory");
        for (uint64_t i = 0; i < passes; i++) {
                struct proc_sample a, b;
                watch_clear(&w);
                proc_sample(pid, &a);
                uint64_t t0 = now_ns();
                if (kill(pid, SIGHUP) < 0)
                        die("cannot signal the agent (PID %d): %m", (int)pid);
                /* The pass ends with the touch (or, if something changed, the rename) of
                 * status.xml; metrics.prom is touched right after it. */
                while (!w.status_touched && !w.status_renamed) {
                        if (now_ns() - t0 > (uint64_t)RUN_TIMEOUT_MS * NSEC_PER_MSEC)
                                die("no pass seen %d ms after SIGHUP", RUN_TIMEOUT_MS);
                        watch_wait(&w, RUN_TIMEOUT_MS);
                }
                wall[i] = now_ns() - t0;
                watch_settle(&w, 200);
                proc_sample(pid, &b);
                ticks += b.ticks - a.ticks;
                run[i] = b.run_ns - a.run_ns;
                wbytes += b.write_bytes - a.write_bytes;
                wchar += b.wchar - a.wchar;
                syscw += b.syscw - a.syscw;
                writes += w.writes;
                files += w.files;
                for (unsigned g = 0; g < w.n_groups; g++)
                        group_files[g] += w.group_files[g];
                removals += w.removals;
                attribs += w.attribs;
                rewritten += w.status_renamed;
                overflows += w.overflows;
                if (!first_write && w.first_write)
                        first_write = strdup(w.first_write);
        }
        uint64_t *wall_s = calloc(passes, sizeof(*wall_s)), *run_s = calloc(passes, sizeof(*run_s));
        if (!wall_s || !run_s)
                die("out of memory");
        memcpy(wall_s, wall, passes * sizeof(*wall));
        memcpy(run_s, run, passes * sizeof(*run));
        qsort(wall_s, passes, sizeof(*wall_s), cmp_u64);
        qsort(run_s, passes, sizeof(*run_s), cmp_u64);
        uint64_t rss = proc_key(pid, "status", "VmRSS"), hwm = proc_key(pid, "status", "VmHWM");
        char *by_dir = watch_groups_format(group_files, w.group_name, w.n_groups);
        printf("idle passes=%" PRIu64 " cpu_ms_p50=%.1f cpu_ms_min=%.1f cpu_ms_max=%.1f "
               "cpu_ms_ticks_mean=%.1f wall_ms_p50=%.1f wall_ms_max=%.1f write_events=%u "
               "files_written=%u files_by_dir=%s "
               "files_removed=%u attrib_changes=%u status_rewrites=%u write_bytes=%" PRIu64
               " wchar=%" PRIu64 " write_syscalls=%" PRIu64 " inotify_overflows=%u "
               "vmrss_kib=%" PRIu64 " vmhwm_kib=%" PRIu64 " first_written=%s\n",
               passes, ms(percentile(run_s, passes, 50)), ms(run_s[0]), ms(run_s[passes - 1]),
               (double)ticks * 1000.0 / (double)hz / (double)passes,
               ms(percentile(wall_s, passes, 50)), ms(wall_s[passes - 1]), writes, files, by_dir,
               removals, attribs, rewritten, wbytes, wchar, syscw, overflows, rss, hwm,
               first_write ? first_write : "-");
        free(first_write);
        free(by_dir);
        free(wall);
        free(run);
        free(wall_s);
        free(run_s);
        watch_close(&w);
        free(state_dir);
        return 0;
}

/* ---- domains (issue 6) ---------------------------------------------------------------- */

/* The smallest guest: TCG, 32 MiB, no disk, no boot device. SeaBIOS finds nothing to boot
 * and waits 60 s before it tries again, so an idle guest costs little CPU. */
static void stage_domain(const char *root, const char *name) {
        char *path = xasprintf("%s/stage/%s.xml", root, name);
        char *xml = xasprintf("<domain type='qemu'>\n"
                              "  <name>%s</name>\n"
                              "  <memory unit='MiB'>32</memory>\n"
                              "  <vcpu>1</vcpu>\n"
                              "  <os>\n"
                              "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                              "  </os>\n"
                              "</domain>\n",
                              name);
        write_file(path, xml);
        free(path);
        free(xml);
}

static int cmd_domxml(const char *root, const char *name) {
        stage_domain(root, name);
        return 0;
}

/* utime+stime (ticks) and the start time (ticks since boot) of a process; false when it is
 * gone or a zombie. */
static bool proc_stat_fields(pid_t pid, uint64_t *ticks, uint64_t *start) {
        char *path = xasprintf("/proc/%d/stat", (int)pid);
        size_t len = 0;
        char *data = read_file(path, &len);
        free(path);
        if (!data)
                return false;
        char *p = strrchr(data, ')');
        int field = 2;
        bool alive = true;
        *ticks = *start = 0;
        for (char *save = NULL, *tok = p ? strtok_r(p + 1, " ", &save) : NULL; tok;
             tok = strtok_r(NULL, " ", &save)) {
                field++;
                if (field == 3 && (tok[0] == 'Z' || tok[0] == 'X'))
                        alive = false;
                if (field == 14 || field == 15)
                        *ticks += parse_u64(tok, "/proc/PID/stat");
                if (field == 22) {
                        *start = parse_u64(tok, "/proc/PID/stat");
                        break;
                }
        }
        free(data);
        return alive && field == 22;
}

/* The QEMUs the agent runs, from its pidfiles (RUN_DIR/qemu/NAME.pid). */
struct qemu_proc {
        char *name;
        pid_t pid;
        uint64_t start, ticks;
        bool alive;
};

static size_t qemu_list(const char *root, struct qemu_proc **ret) {
        char *dir = xasprintf("%s/run/qemu", root);
        DIR *d = opendir(dir);
        size_t n = 0, cap = 0;
        struct qemu_proc *v = NULL;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".pid") != 0)
                        continue;
                char *path = xasprintf("%s/%s", dir, de->d_name);
                size_t len = 0;
                char *data = read_file(path, &len);
                free(path);
                if (!data)
                        continue;
                data[strcspn(data, "\n")] = '\0';
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        v = realloc(v, cap * sizeof(*v));
                        if (!v)
                                die("out of memory");
                }
                uint64_t pid = parse_u64(data, "pidfile");
                free(data);
                if (pid == 0 || pid > INT_MAX)
                        die("bad PID in %s/%s", dir, de->d_name);
                struct qemu_proc *q = &v[n++];
                q->name = strndup(de->d_name, l - 4);
                if (!q->name)
                        die("out of memory");
                q->pid = (pid_t)pid;
                q->alive = proc_stat_fields(q->pid, &q->ticks, &q->start);
        }
        if (d)
                closedir(d);
        free(dir);
        *ret = v;
        return n;
}

static void qemu_list_free(struct qemu_proc *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

static uint64_t qemu_ticks(const struct qemu_proc *v, size_t n) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += v[i].ticks;
        return sum;
}

/* Writes pid to PATH so that bench/run can kill it should this program die first. */
static void write_pid(const char *path, pid_t pid) {
        char *s = xasprintf("%d\n", (int)pid);
        write_file(path, s);
        free(s);
}

/* fork+exec of argv in a session of its own, stdin from /dev/null and stdout+stderr
 * appended to log: how the agent runs QEMU (cmd_spawn_detached), and how it is run itself. */
static pid_t spawn_detached(char *const *argv, const char *log) {
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (logfd < 0 || nullfd < 0)
                die("cannot open %s or /dev/null: %m", log);
        pid_t pid = fork();
        if (pid < 0)
                die("fork: %m");
        if (pid == 0) {
                if (setsid() < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
                        _exit(126);
                execv(argv[0], argv);
                _exit(127);
        }
        close(logfd);
        close(nullfd);
        return pid;
}

/* A QMP connection: lines of JSON. */
struct qmp_conn {
        int fd;
        size_t len;
        char buf[16384];
};

/* The next line (without \r\n) into line; false on EOF or when deadline passed. */
static bool qmp_line(struct qmp_conn *c, char *line, size_t size, uint64_t deadline) {
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->len);
                if (nl) {
                        size_t n = (size_t)(nl - c->buf);
                        if (n >= size)
                                die("QMP line longer than %zu bytes", size);
                        memcpy(line, c->buf, n);
                        line[n] = '\0';
                        if (n && line[n - 1] == '\r')
                                line[n - 1] = '\0';
                        memmove(c->buf, nl + 1, c->len - n - 1);
                        c->len -= n + 1;
                        return true;
                }
                if (c->len == sizeof(c->buf))
                        die("QMP line longer than %zu bytes", sizeof(c->buf));
                uint64_t now = now_ns();
                if (now >= deadline)
                        return false;
                struct pollfd p = {.fd = c->fd, .events = POLLIN};
                int r = poll(&p, 1, (int)((deadline - now) / NSEC_PER_MSEC) + 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        die("poll: %m");
                if (r == 0)
                        return false;
                ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                c->len += (size_t)n;
        }
}

/* Sends cmd; the reply (events before it are skipped) into reply. false on EOF or timeout. */
static bool qmp_cmd(struct qmp_conn *c, const char *cmd, char *reply, size_t size,
                    uint64_t deadline) {
        size_t left = strlen(cmd);
        while (left > 0) {
                ssize_t n = write(c->fd, cmd, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                cmd += n;
                left -= (size_t)n;
        }
        while (qmp_line(c, reply, size, deadline))
                if (strncmp(reply, "{\"return\"", 9) == 0 || strncmp(reply, "{\"error\"", 8) == 0)
                        return true;
        return false;
}

#define QEMU_START_TIMEOUT_MS 30000

/* Waits until QEMU (our child pid) answers query-status with running: connect() is tried
 * every 250 µs until the socket listens, then the greeting, qmp_capabilities and
 * query-status. Dies when QEMU exits or takes longer than QEMU_START_TIMEOUT_MS. */
static void qmp_wait_running(const char *sock, pid_t pid, const char *log, uint64_t start) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sock) >= sizeof(sa.sun_path))
                die("QMP socket path too long: %s", sock);
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        uint64_t deadline = start + (uint64_t)QEMU_START_TIMEOUT_MS * NSEC_PER_MSEC;
        char line[16384];
        for (;;) {
                int status = 0;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        die("QEMU (PID %d) exited while starting (wait status %#x); see %s",
                            (int)pid, (unsigned)status, log);
                if (now_ns() > deadline)
                        die("QEMU (PID %d) did not report running on %s within %d ms", (int)pid,
                            sock, QEMU_START_TIMEOUT_MS);
                struct qmp_conn *c = calloc(1, sizeof(*c));
                if (!c)
                        die("out of memory");
                c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c->fd < 0)
                        die("socket: %m");
                bool running = false;
                if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                    qmp_line(c, line, sizeof(line), deadline) && strstr(line, "\"QMP\"") &&
                    qmp_cmd(c, "{\"execute\":\"qmp_capabilities\"}\n", line, sizeof(line),
                            deadline)) {
                        /* Without -S QEMU is running once it answers; retry a few times
                         * in case it is still in prelaunch. */
                        for (int i = 0; i < 1000 && !running; i++) {
                                if (!qmp_cmd(c, "{\"execute\":\"query-status\"}\n", line,
                                             sizeof(line), deadline))
                                        break;
                                running = strstr(line, "\"running\": true") != NULL;
                                if (!running)
                                        nanosleep(&(struct timespec){0, 1000000}, NULL);
                        }
                }
                close(c->fd);
                free(c);
                if (running)
                        return;
                nanosleep(&(struct timespec){0, 250000}, NULL);
        }
}

/* argv of `declvirt native FILE`: one argument per line. */
static char **read_argv(const char *path) {
        size_t len = 0;
        char *data = read_file(path, &len);
        if (!data)
                die("cannot read %s: %m", path);
        size_t n = 0, cap = 16;
        char **argv = calloc(cap, sizeof(*argv));
        for (char *save = NULL, *line = strtok_r(data, "\n", &save); argv && line;
             line = strtok_r(NULL, "\n", &save)) {
                if (n + 2 > cap) {
                        cap *= 2;
                        argv = realloc(argv, cap * sizeof(*argv));
                        if (!argv)
                                break;
                }
                argv[n++] = strdup(line);
                argv[n] = NULL;
        }
        if (!argv)
                die("out of memory");
        free(data);
        if (n == 0 || argv[0][0] != '/')
                die("%s: not an argv with an absolute program", path);
        return argv;
}

/* The path after OPT in argv, up to the first comma ("unix:" dropped); dies if missing. */
static char *argv_path(char **argv, const char *opt) {
        for (size_t i = 0; argv[i] && argv[i + 1]; i++) {
                if (strcmp(argv[i], opt) != 0)
                        continue;
                const char *v = argv[i + 1];
                if (strncmp(v, "unix:", 5) == 0)
                        v += 5;
                char *s = strndup(v, strcspn(v, ","));
                if (!s)
                        die("out of memory");
                return s;
        }
        die("the QEMU argv has no %s", opt);
}

/* One start of QEMU by hand, to QMP running; killed and reaped at once. *ret_exec_at is
 * the time from the fork to the exec (spawn_detached returns once the vfork'd child has
 * exec'd), the point where the agent writes its pidfile. */
static uint64_t qemu_direct_once(const char *root, char **argv, const char *qmp,
                                 const char *pidfile, uint64_t *ret_cpu, uint64_t *ret_exec_at) {
        char *log = xasprintf("%s/direct.log", root);
        char *pidrec = xasprintf("%s/direct.pid", root);
        (void)unlink(qmp);
        (void)unlink(pidfile);
        uint64_t t0 = now_ns();
        pid_t pid = spawn_detached(argv, log);
        *ret_exec_at = now_ns() - t0;
        write_pid(pidrec, pid);
        qmp_wait_running(qmp, pid, log, t0);
        uint64_t t = now_ns() - t0;
        *ret_cpu = proc_run_ns(pid); /* QEMU's own CPU up to QMP running, all threads */
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        (void)unlink(pidrec);
        free(log);
        free(pidrec);
        return t;
}

/* After each start the guest runs SeaBIOS for a while (~100 ms of CPU under TCG); let it
 * finish so that it does not share the CPUs with the next start. */
#define DOM_GAP_MS 300

static void sleep_ms(unsigned n) {
        nanosleep(&(struct timespec){n / 1000, (long)(n % 1000) * 1000000L}, NULL);
}

/* Sorts v (signed ns) and prints " KEY_p50_ms=.. KEY_min_ms=.. KEY_max_ms=..". */
static void print_spread(const char *key, int64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_i64);
        printf(" %s_p50_ms=%.1f %s_min_ms=%.1f %s_max_ms=%.1f", key, (double)v[(n - 1) / 2] / 1e6,
               key, (double)v[0] / 1e6, key, (double)v[n - 1] / 1e6);
}

/* (e): RUNS pairs of a start of QEMU by hand (the argv of `declvirt native`, to QMP
 * running) and a domain file renamed in (to status.xml showing it ready); the agent's
 * overhead is the difference. Both are split at QEMU's exec (by hand: when the vfork'd child
 * has exec'd; through the agent: when the agent writes the pidfile, right after its spawn
 * saw the exec happen): "pre" is the agent's time to get QEMU exec'd (the confinement's
 * set-up is in it), "post" the agent's time from QEMU's exec to status.xml. The agent's domains
 * stay up (bench/run kills them). */
enum { E_QEMU, E_QEMU_PID, E_AGENT, E_AGENT_PID, E_OVER, E_PRE, E_POST, E_CPU, E_QCPU, E_N };

static int cmd_domstart(const char *root, const char *argvfile, const char *tag, pid_t agent,
                        uint64_t runs) {
        char *state_dir = xasprintf("%s/state", root);
        char *run_qemu = xasprintf("%s/run/qemu", root);
        char **argv = read_argv(argvfile);
        char *qmp = argv_path(argv, "-qmp"), *pidfile = argv_path(argv, "-pidfile");
        if (runs == 0)
                die("nothing to measure");
        if (pidfile[0] != '/')
                die("the pidfile %s is not an absolute path", pidfile);
        /* Signed: with QEMU's own spread a run through the agent can be the faster one. */
        int64_t *v[E_N];
        for (int k = 0; k < E_N; k++)
                if (!(v[k] = calloc(runs, sizeof(int64_t))))
                        die("out of memory");
        /* The agent creates it at its first start too (0750); it must exist to be watched. */
        if (mkdir(run_qemu, 0750) < 0 && errno != EEXIST)
                die("cannot create %s: %m", run_qemu);
        struct watch w;
        watch_open(&w, state_dir, false);
        w.extra_wd = inotify_add_watch(w.fd, run_qemu, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
        if (w.extra_wd < 0)
                die("cannot watch %s: %m", run_qemu);
        uint64_t warm_cpu = 0, warm_pid = 0; /* the first start warms the disk cache: not counted */
        uint64_t warm = qemu_direct_once(root, argv, qmp, pidfile, &warm_cpu, &warm_pid);
        sleep_ms(DOM_GAP_MS);
        unsigned total_renames = 0;
        for (uint64_t i = 0; i < runs; i++) {
                uint64_t qcpu = 0, qpid = 0;
                uint64_t q = qemu_direct_once(root, argv, qmp, pidfile, &qcpu, &qpid);
                sleep_ms(DOM_GAP_MS);

                char *prefix = xasprintf("%s%" PRIu64 ".", tag, i);
                char *name = xasprintf("%sd", prefix);
                stage_domain(root, name);
                watch_settle(&w, 50);
                watch_clear(&w);
                uint64_t cpu0 = proc_run_ns(agent);
                uint64_t t0 = now_ns();
                char *from = xasprintf("%s/stage/%s.xml", root, name);
                char *to = xasprintf("%s/desired/%s.xml", root, name);
                if (rename(from, to) < 0)
                        die("cannot rename %s to %s: %m", from, to);
                unsigned renames = 0;
                uint64_t t1 = wait_ready(&w, state_dir, prefix, 1, t0, &renames);
                uint64_t cpu = proc_run_ns(agent) - cpu0;
                if (!w.created_at)
                        die("no pidfile seen in %s for %s", run_qemu, name);
                int64_t a = (int64_t)(t1 - t0), apid = (int64_t)(w.created_at - t0);
                v[E_QEMU][i] = (int64_t)q;
                v[E_QEMU_PID][i] = (int64_t)qpid;
                v[E_AGENT][i] = a;
                v[E_AGENT_PID][i] = apid;
                v[E_OVER][i] = a - (int64_t)q;
                v[E_PRE][i] = apid - (int64_t)qpid;
                v[E_POST][i] = (a - apid) - ((int64_t)q - (int64_t)qpid);
                v[E_CPU][i] = (int64_t)cpu;
                v[E_QCPU][i] = (int64_t)qcpu;
                total_renames += renames;
                free(from);
                free(to);
                free(prefix);
                free(name);
                sleep_ms(DOM_GAP_MS);
        }
        static const char *const keys[E_N] = {
                [E_QEMU] = "qemu",     [E_QEMU_PID] = "qemu_pidfile",
                [E_AGENT] = "agent",   [E_AGENT_PID] = "agent_pidfile",
                [E_OVER] = "overhead", [E_PRE] = "pre",
                [E_POST] = "post",     [E_CPU] = "agent_cpu",
                [E_QCPU] = "qemu_cpu",
        };
        printf("domstart runs=%" PRIu64 " qemu_warmup_ms=%.1f", runs, ms(warm));
        for (int k = 0; k < E_N; k++)
                print_spread(keys[k], v[k], runs);
        printf(" status_writes_per_run=%.1f\n", (double)total_renames / (double)runs);
        watch_close(&w);
        for (size_t i = 0; argv[i]; i++)
                free(argv[i]);
        free(argv);
        free(qmp);
        free(pidfile);
        for (int k = 0; k < E_N; k++)
                free(v[k]);
        free(run_qemu);
        free(state_dir);
        return 0;
}

/* (f): N domain files renamed in at once; time until status.xml shows all of them ready,
 * and the agent's CPU time (all threads) over that interval. */
static int cmd_domburst(const char *root, const char *tag, pid_t agent, uint64_t n) {
        char *state_dir = xasprintf("%s/state", root);
        char *prefix = xasprintf("%s.", tag);
        long hz = sysconf(_SC_CLK_TCK);
        if (n == 0 || hz <= 0)
                die("nothing to measure");
        for (uint64_t i = 0; i < n; i++) {
                char *name = xasprintf("%sd%" PRIu64, prefix, i);
                stage_domain(root, name);
                free(name);
        }
        struct watch w;
        watch_open(&w, state_dir, false);
        watch_settle(&w, 50);
        watch_clear(&w);
        struct proc_sample a, b;
        proc_sample(agent, &a);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
                char *name = xasprintf("%sd%" PRIu64, prefix, i);
                struct layout l = {.root = root};
                move_in(&l, name);
                free(name);
        }
        uint64_t t_renamed = now_ns();
        unsigned renames = 0;
        uint64_t t1 = wait_ready(&w, state_dir, prefix, n, t0, &renames);
        proc_sample(agent, &b);
        struct qemu_proc *q = NULL;
        size_t nq = qemu_list(root, &q);
        size_t alive = 0;
        for (size_t i = 0; i < nq; i++)
                alive += q[i].alive;
        printf("domburst domains=%" PRIu64 " renames_ms=%.1f all_ready_ms=%.1f "
               "agent_cpu_ms=%.1f agent_cpu_ms_ticks=%.0f status_writes=%u qemu_running=%zu "
               "qemu_cpu_ms_total=%.0f vmrss_kib=%" PRIu64 "\n",
               n, ms(t_renamed - t0), ms(t1 - t0), ms(b.run_ns - a.run_ns),
               (double)(b.ticks - a.ticks) * 1000.0 / (double)hz, renames, alive,
               (double)qemu_ticks(q, nq) * 1000.0 / (double)hz, proc_key(agent, "status", "VmRSS"));
        qemu_list_free(q, nq);
        watch_close(&w);
        free(prefix);
        free(state_dir);
        return 0;
}

/* (g): starts the agent (argv after "--") while N domains run, and times it from the
 * fork to the first status.xml that shows all of them ready; then checks that every QEMU
 * is the same process (PID and start time) as before. The agent is left running; its PID
 * is printed and written to ROOT/agent.pid. */
static int cmd_adopt(const char *root, const char *tag, uint64_t n, char **argv) {
        char *state_dir = xasprintf("%s/state", root);
        char *prefix = xasprintf("%s.", tag);
        char *log = xasprintf("%s/agent.log", root);
        char *pidrec = xasprintf("%s/agent.pid", root);
        long hz = sysconf(_SC_CLK_TCK);
        if (n == 0 || hz <= 0)
                die("nothing to measure");
        struct qemu_proc *before = NULL, *after = NULL;
        size_t nb = qemu_list(root, &before);
        size_t alive_before = 0;
        for (size_t i = 0; i < nb; i++)
                alive_before += before[i].alive;
        if (alive_before < n)
                die("only %zu of %" PRIu64 " QEMUs run before the restart", alive_before, n);
        struct watch w;
        watch_open(&w, state_dir, false);
        watch_settle(&w, 200);
        watch_clear(&w);
        uint64_t t0 = now_ns();
        pid_t pid = spawn_detached(argv, log);
        write_pid(pidrec, pid);
        unsigned renames = 0;
        uint64_t t1 = wait_ready(&w, state_dir, prefix, n, t0, &renames);
        uint64_t cpu = proc_run_ns(pid), ticks = proc_stat_ticks(pid);
        size_t na = qemu_list(root, &after);
        size_t same = 0;
        for (size_t i = 0; i < nb; i++) {
                bool found = false;
                for (size_t j = 0; j < na && !found; j++)
                        found = strcmp(before[i].name, after[j].name) == 0 &&
                                before[i].pid == after[j].pid &&
                                before[i].start == after[j].start && after[j].alive;
                same += before[i].alive && found;
        }
        printf("adopt domains=%" PRIu64 " all_ready_ms=%.1f agent_cpu_ms=%.1f "
               "agent_cpu_ms_ticks=%.0f status_writes=%u qemu_before=%zu qemu_same=%zu "
               "qemu_changed=%zu agent_pid=%d\n",
               n, ms(t1 - t0), ms(cpu), (double)ticks * 1000.0 / (double)hz, renames, alive_before,
               same, alive_before - same, (int)pid);
        qemu_list_free(before, nb);
        qemu_list_free(after, na);
        watch_close(&w);
        free(pidrec);
        free(log);
        free(prefix);
        free(state_dir);
        return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static pid_t parse_pid(const char *s) {
        uint64_t pid = parse_u64(s, "PID");
        if (pid == 0 || pid > INT_MAX)
                die("bad PID %s", s);
        return (pid_t)pid;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: dvbench [--capacity BYTES] [--prealloc] COMMAND ROOT ...\n"
                   "  latency ROOT TAG RUNS         pool+volume renamed in, time to both ready\n"
                   "  burst ROOT TAG POOLS VOLS     POOLS pools with VOLS volumes each at once\n"
                   "  idle ROOT PID PASSES          SIGHUP passes that change nothing\n"
                   "  domxml ROOT NAME              stage ROOT/stage/NAME.xml, a tiny TCG domain\n"
                   "  domstart ROOT ARGVFILE TAG PID RUNS  QEMU by hand vs a domain renamed in\n"
                   "  domburst ROOT TAG PID N       N domains renamed in at once\n"
                   "  adopt ROOT TAG N -- AGENT...  start the agent, time until N domains ready\n"
                   "ROOT holds desired/, state/, stage/ and pools/ (bench/run makes it).\n");
}

int main(int argc, char **argv) {
        struct layout l = {.capacity = 1 << 20, .sparse = true};
        int i = 1;
        LIBXML_TEST_VERSION;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "--capacity") == 0 && i + 1 < argc)
                        l.capacity = parse_u64(argv[++i], "--capacity");
                else if (strcmp(argv[i], "--prealloc") == 0)
                        l.sparse = false;
                else if (strcmp(argv[i], "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        }
        if (argc - i < 2) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[i];
        l.root = argv[i + 1];
        char **args = argv + i + 2;
        int nargs = argc - i - 2;
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(cmd, "latency") == 0 && nargs == 2)
                return cmd_latency(&l, args[0], parse_u64(args[1], "RUNS"));
        if (strcmp(cmd, "burst") == 0 && nargs == 3)
                return cmd_burst(&l, args[0], parse_u64(args[1], "POOLS"),
                                 parse_u64(args[2], "VOLS"));
        if (strcmp(cmd, "idle") == 0 && nargs == 2)
                return cmd_idle(&l, parse_pid(args[0]), parse_u64(args[1], "PASSES"));
        if (strcmp(cmd, "domxml") == 0 && nargs == 1)
                return cmd_domxml(l.root, args[0]);
        if (strcmp(cmd, "domstart") == 0 && nargs == 4)
                return cmd_domstart(l.root, args[0], args[1], parse_pid(args[2]),
                                    parse_u64(args[3], "RUNS"));
        if (strcmp(cmd, "domburst") == 0 && nargs == 3)
                return cmd_domburst(l.root, args[0], parse_pid(args[1]), parse_u64(args[2], "N"));
        if (strcmp(cmd, "adopt") == 0 && nargs >= 4 && strcmp(args[2], "--") == 0)
                return cmd_adopt(l.root, args[0], parse_u64(args[1], "N"), args + 3);
        usage(stderr);
        return 2;
}
