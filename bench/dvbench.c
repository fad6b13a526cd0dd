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
#include <sys/stat.h>
#include <sys/types.h>
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

static double ms(uint64_t ns) { return (double)ns / 1e6; }

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
                        if (attr_is(n, "phase", "ready"))
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
                                        t->bad_example = xasprintf(
                                                "%s/%s: %s: %s", (const char *)kind,
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
        char *first_write;       /* the name of the first written file, for the report */
        /* Files replaced (IN_MOVED_TO) or written in place (IN_CLOSE_WRITE) under a name
         * that is not a temp dot-file, by the top directory of state_dir they are in. */
        unsigned files;
        unsigned group_files[MAX_GROUPS];
        char *group_name[MAX_GROUPS]; /* "." for state_dir itself, else "pools", ... */
        unsigned n_groups;
        unsigned *wd_group; /* indexed by watch descriptor */
        size_t n_wd;
};

static void watch_clear(struct watch *w) {
        w->status_renamed = w->status_touched = w->writes = w->removals = w->attribs = 0;
        w->overflows = 0;
        free(w->first_write);
        w->first_write = NULL;
        w->files = 0;
        memset(w->group_files, 0, sizeof(w->group_files));
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

static void watch_add(struct watch *w, const char *dir, const char *rel, uint32_t mask,
                      int depth) {
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
        *w = (struct watch){0};
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
static uint64_t wait_ready(struct watch *w, const char *state_dir, const char *prefix,
                           size_t want, uint64_t start, unsigned *ret_renames) {
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
               ms(percentile(lat, runs, 99)), ms(lat[0]), ms(lat[runs - 1]),
               ms(sum / runs), (double)total_renames / (double)runs);
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
               removals,
               attribs, rewritten, wbytes, wchar, syscw, overflows, rss, hwm,
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

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *f) {
        fprintf(f, "Usage: dvbench [--capacity BYTES] [--prealloc] COMMAND ROOT ...\n"
                   "  latency ROOT TAG RUNS         pool+volume renamed in, time to both ready\n"
                   "  burst ROOT TAG POOLS VOLS     POOLS pools with VOLS volumes each at once\n"
                   "  idle ROOT PID PASSES          SIGHUP passes that change nothing\n"
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
        if (strcmp(cmd, "idle") == 0 && nargs == 2) {
                uint64_t pid = parse_u64(args[0], "PID");
                if (pid == 0 || pid > INT_MAX)
                        die("bad PID %s", args[0]);
                return cmd_idle(&l, (pid_t)pid, parse_u64(args[1], "PASSES"));
        }
        usage(stderr);
        return 2;
}
