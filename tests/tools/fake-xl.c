/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tests' stand-in for Xen's xl: records its argv and creates or removes a domain's
 * entries in the xenstore named by XENSTORED_PATH (tests/tools/xenstored), as libxl would.
 * Knobs are xenstore keys under /tool/fake-xl (the agent passes no other environment):
 *   log               file that gets one line per call (the argv after argv[0])
 *   fail-create       a message: `create` prints it to stderr and exits 1
 *   ignore-shutdown   present: `shutdown` hangs until killed (the timeout path)
 *   next-domid        the domid the next `create` uses (default 1), then incremented
 * Concurrent calls (the agent starts domains in parallel) take XENSTORED_PATH.lock while
 * they allocate a domid or change entries: the hypervisor's own atomicity, stood in for.
 * Extra commands for the tests (not xl's): `crash NAME` (the domain vanishes as a crashed
 * one does: entries removed, @releaseDomain). See docs/xen.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <xenstore.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/parse.h"

#define KNOB "/tool/fake-xl/"

static struct xs_handle *xs;

static char *xs_get(const char *path) {
        unsigned len = 0;
        return xs_read(xs, XBT_NULL, path, &len);
}

static bool xs_put(const char *path, const char *value) {
        return xs_write(xs, XBT_NULL, path, value, (unsigned)strlen(value));
}

static void log_argv(int argc, char **argv) {
        _cleanup_free_ char *path = xs_get(KNOB "log");
        if (!path || !*path)
                return;
        struct buf b = BUF_INIT;
        for (int i = 1; i < argc; i++) {
                if (i > 1)
                        buf_putc(&b, ' ');
                buf_puts(&b, argv[i]);
        }
        buf_putc(&b, '\n');
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0 && b.s) {
                if (write(fd, b.s, b.len) < 0)
                        perror("fake-xl: log");
        }
        if (fd >= 0)
                close(fd);
        buf_free(&b);
}

/* The domid of the domain called name, or -1. */
static int find_domain(const char *name) {
        unsigned n = 0;
        _cleanup_free_ char **ids = xs_directory(xs, XBT_NULL, "/local/domain", &n);
        for (unsigned i = 0; ids && i < n; i++) {
                uint64_t d;
                if (parse_u64_range(ids[i], 1, 0x7FEF, &d) < 0)
                        continue;
                char p[64];
                snprintf(p, sizeof(p), "/local/domain/%s/name", ids[i]);
                _cleanup_free_ char *v = xs_get(p);
                if (v && streq(v, name))
                        return (int)d;
        }
        return -1;
}

/* `key = "value"` or `key = value` in an xl.cfg; NULL when absent. Caller frees. */
static char *cfg_value(const char *text, const char *key) {
        size_t kl = strlen(key);
        for (const char *line = text; line && *line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                while (*line == ' ' || *line == '\t')
                        line++;
                if (strncmp(line, key, kl) != 0)
                        continue;
                const char *p = line + kl;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p != '=')
                        continue;
                p++;
                while (*p == ' ' || *p == '\t')
                        p++;
                const char *end;
                if (*p == '"' || *p == '\'') {
                        char q = *p++;
                        end = strchr(p, q);
                } else {
                        end = p + strcspn(p, " \t\n#");
                }
                if (!end)
                        return NULL;
                return strndup(p, (size_t)(end - p));
        }
        return NULL;
}

static void remove_domain(int domid) {
        char p[64];
        snprintf(p, sizeof(p), "/local/domain/%d/vm", domid);
        _cleanup_free_ char *vm = xs_get(p);
        if (vm && strncmp(vm, "/vm/", 4) == 0)
                (void)xs_rm(xs, XBT_NULL, vm);
        snprintf(p, sizeof(p), "/local/domain/%d", domid);
        (void)xs_rm(xs, XBT_NULL, p);
        (void)xs_release_domain(xs, (unsigned)domid);
}

/* Held until exit. No lock (no XENSTORED_PATH): calls are not serialised. */
static void lock_store(void) {
        const char *sock = getenv("XENSTORED_PATH");
        if (!sock)
                return;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s.lock", sock) < 0)
                return;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0 && flock(fd, LOCK_EX) < 0)
                perror("fake-xl: flock");
}

static int cmd_create(const char *file) {
        _cleanup_free_ char *fail = xs_get(KNOB "fail-create");
        if (fail) {
                fprintf(stderr, "Parsing config from %s\n%s\n", file, fail);
                return 1;
        }
        _cleanup_free_ char *text = NULL;
        int r = read_full_file(file, 1 << 20, &text, NULL);
        if (r < 0) {
                fprintf(stderr, "Failed to read config file: %s: %s\n", file, strerror(-r));
                return 1;
        }
        _cleanup_free_ char *name = cfg_value(text, "name");
        _cleanup_free_ char *uuid = cfg_value(text, "uuid");
        _cleanup_free_ char *memory = cfg_value(text, "memory");
        if (!name || !*name) {
                fprintf(stderr, "Domain name must be specified.\n");
                return 1;
        }
        lock_store();
        if (find_domain(name) >= 0) {
                fprintf(stderr, "libxl: error: domain with name \"%s\" already exists.\n", name);
                return 3;
        }
        if (!uuid) {
                char *u = NULL;
                if (read_full_file("/proc/sys/kernel/random/uuid", 64, &u, NULL) < 0)
                        return 1;
                u[strcspn(u, "\n")] = '\0';
                uuid = u;
        }
        _cleanup_free_ char *next = xs_get(KNOB "next-domid");
        uint64_t domid = 1;
        if (next && parse_u64_range(next, 1, 0x7FEF, &domid) < 0)
                domid = 1;
        char v[64], p[256];
        snprintf(v, sizeof(v), "%llu", (unsigned long long)domid + 1);
        xs_put(KNOB "next-domid", v);

        /* What libxl writes first (libxl__domain_make): the domain's directory, its /vm
         * entry, then the name once the domain exists. */
        snprintf(p, sizeof(p), "/vm/%s/uuid", uuid);
        xs_put(p, uuid);
        snprintf(p, sizeof(p), "/vm/%s/name", uuid);
        xs_put(p, name);
        snprintf(p, sizeof(p), "/local/domain/%llu/vm", (unsigned long long)domid);
        snprintf(v, sizeof(v), "/vm/%s", uuid);
        xs_put(p, v);
        snprintf(p, sizeof(p), "/local/domain/%llu/domid", (unsigned long long)domid);
        snprintf(v, sizeof(v), "%llu", (unsigned long long)domid);
        xs_put(p, v);
        if (memory) {
                uint64_t mib;
                if (parse_u64(memory, &mib) == 0) {
                        snprintf(p, sizeof(p), "/local/domain/%llu/memory/target",
                                 (unsigned long long)domid);
                        snprintf(v, sizeof(v), "%llu", (unsigned long long)mib * 1024);
                        xs_put(p, v);
                }
        }
        snprintf(p, sizeof(p), "/local/domain/%llu/name", (unsigned long long)domid);
        xs_put(p, name);
        if (!xs_introduce_domain(xs, (unsigned)domid, 0, 0)) {
                fprintf(stderr, "cannot introduce domain %llu: %s\n", (unsigned long long)domid,
                        strerror(errno));
                return 1;
        }
        printf("Parsing config from %s\n", file);
        return 0;
}

static int named_domain(const char *name) {
        int d = find_domain(name);
        if (d < 0)
                fprintf(stderr, "Domain '%s' does not exist.\n", name);
        return d;
}

int main(int argc, char **argv) {
        xs = xs_open(0);
        if (!xs) {
                fprintf(stderr, "xencall: error: Could not obtain handle on privileged command "
                                "interface: No such file or directory\n");
                return 1;
        }
        log_argv(argc, argv);
        const char *cmd = argc > 1 ? argv[1] : "";
        if (streq(cmd, "create") && argc == 3)
                return cmd_create(argv[2]);
        if (streq(cmd, "shutdown") && argc == 4 && streq(argv[2], "-w")) {
                int d = named_domain(argv[3]);
                if (d < 0)
                        return 1;
                _cleanup_free_ char *ignore = xs_get(KNOB "ignore-shutdown");
                if (!ignore)
                        lock_store();
                if (ignore) {
                        /* A guest that ignores the request: xl waits until it is killed. */
                        printf("Waiting for 1 domains\n");
                        fflush(stdout);
                        for (;;)
                                pause();
                }
                char p[64];
                snprintf(p, sizeof(p), "/local/domain/%d/control/shutdown", d);
                xs_put(p, "poweroff");
                remove_domain(d);
                return 0;
        }
        if ((streq(cmd, "destroy") || streq(cmd, "crash")) && argc == 3) {
                lock_store();
                int d = named_domain(argv[2]);
                if (d < 0)
                        return 1;
                remove_domain(d);
                return 0;
        }
        fprintf(stderr, "fake-xl: unsupported command line\n");
        return 2;
}
