/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The QEMU argv builder: golden argv files for every fixture in tests/data/qemu
 * (DECLVIRT_UPDATE_GOLDEN=1 rewrites them), golden error lists for the refused ones,
 * context errors, and real QEMU (TCG, -S) accepting the command lines. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/cmd.h"
#include "drivers/domain/qemu-argv.h"
#include "drivers/domain/qemu-disk.h"
#include "model/domain.h"
#include "tests/helpers/testlib.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DATA "tests/data/qemu"
#define QEMU "/usr/bin/qemu-system-x86_64"

/* The context the driver would give, with fixed paths so the golden files are stable. */
struct test_ctx {
        struct qemu_argv_ctx ctx;
        char **disks, **taps, **macs, **channels;
        char *qmp, *pid, *log, *vnc;
        struct qemu_firmware fw; /* chosen from DATA/firmware, as the driver chooses */
};

static void test_ctx_fill(struct test_ctx *t, const struct domain_def *def, const char *dir) {
        memset(t, 0, sizeof(*t));
        char buf[512];
        snprintf(buf, sizeof(buf), "%s/%s.qmp", dir, def->name);
        t->qmp = strdup(buf);
        snprintf(buf, sizeof(buf), "%s/%s.pid", dir, def->name);
        t->pid = strdup(buf);
        snprintf(buf, sizeof(buf), "%s/%s.console.log", dir, def->name);
        t->log = strdup(buf);
        snprintf(buf, sizeof(buf), "%s/%s.vnc", dir, def->name);
        t->vnc = strdup(buf);
        t->disks = calloc(def->n_disks + 1, sizeof(char *));
        t->taps = calloc(def->n_interfaces + 1, sizeof(char *));
        t->macs = calloc(def->n_interfaces + 1, sizeof(char *));
        assert_non_null(t->disks);
        assert_non_null(t->taps);
        assert_non_null(t->macs);
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                if (domain_disk_type(d) == DOMAIN_DISK_VOLUME) {
                        snprintf(buf, sizeof(buf), "/var/lib/declvirt/%s/%s", d->source.pool,
                                 d->source.volume);
                        t->disks[i] = strdup(buf);
                }
        }
        for (size_t i = 0; i < def->n_interfaces; i++) {
                snprintf(buf, sizeof(buf), "dvt%08zx", i);
                t->taps[i] = strdup(buf);
                if (def->interfaces[i].mac)
                        t->macs[i] = strdup(def->interfaces[i].mac);
                else {
                        snprintf(buf, sizeof(buf), "52:54:00:00:00:%02zx", i);
                        t->macs[i] = strdup(buf);
                }
        }
        /* The driver's default for a channel without a written path. */
        t->channels = calloc(def->n_channels + 1, sizeof(char *));
        assert_non_null(t->channels);
        for (size_t i = 0; i < def->n_channels; i++) {
                snprintf(buf, sizeof(buf), "%s/%s.%s", dir, def->name,
                         strempty(def->channels[i].target_name));
                t->channels[i] = strdup(buf);
        }
        t->ctx = (struct qemu_argv_ctx){
                .binary = def->emulator ? def->emulator : QEMU,
                .accel = def->type == DOMAIN_TYPE_KVM ? "kvm" : "tcg",
                .qmp_socket = t->qmp,
                .pidfile = t->pid,
                .serial_log = t->log,
                .vnc_socket = t->vnc,
                .disk_paths = t->disks,
                .tap_names = t->taps,
                .macs = t->macs,
                .channel_paths = t->channels,
                /* What the driver would find free for <cid auto='yes'>. */
                .vsock_cid = def->has_vsock && def->vsock.cid_auto == DOMAIN_TRI_YES ? 3 : 0,
        };
        if (qemu_firmware_wanted(def)) {
                char *const dirs[] = {DATA "/firmware", NULL};
                snprintf(buf, sizeof(buf), "/var/lib/declvirt/state/domains/%s_VARS.fd", def->name);
                struct dv_error err = DV_ERROR_INIT;
                if (qemu_firmware_select(def, buf, dirs, &t->fw, &err) >= 0)
                        t->ctx.firmware = &t->fw;
                dv_error_clear(&err);
        }
}

static void test_ctx_done(struct test_ctx *t, const struct domain_def *def) {
        test_free_n(t->disks, def->n_disks);
        test_free_n(t->taps, def->n_interfaces);
        test_free_n(t->macs, def->n_interfaces);
        test_free_n(t->channels, def->n_channels);
        free(t->qmp);
        free(t->pid);
        free(t->log);
        free(t->vnc);
        qemu_firmware_done(&t->fw);
}

static char *argv_text(char **argv) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; argv[i]; i++) {
                buf_puts(&b, argv[i]);
                buf_putc(&b, '\n');
        }
        char *s = buf_steal(&b);
        assert_non_null(s);
        return s;
}

/* The descriptors the driver would pass, numbered from 3 in disk order: each disk's image,
 * then the backing layers that NAME.backing lists for it ("TARGET PATH FORMAT" lines). */
struct test_chains {
        struct qemu_disk_chain chains[16];
        struct qemu_disk_layer layers[64];
        char backing[16][3][256]; /* NAME.backing: target, path, format */
};

static void test_chains_fill(struct test_chains *c, const struct domain_def *def,
                             char *const *disks, const char *fixture) {
        memset(c, 0, sizeof(*c));
        assert_true(def->n_disks <= ELEMENTSOF(c->chains));
        _cleanup_free_ char *bpath = test_sibling(fixture, ".backing");
        size_t n_backing = 0, len = 0;
        if (access(bpath, F_OK) == 0) {
                _cleanup_free_ char *text = test_read_file(bpath, &len);
                char *save = NULL;
                for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        assert_true(n_backing < ELEMENTSOF(c->backing));
                        char(*e)[256] = c->backing[n_backing++];
                        assert_int_equal(sscanf(l, "%255s %255s %255s", e[0], e[1], e[2]), 3);
                }
        }
        size_t n = 0;
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                char *path = disks[i]                                   ? disks[i]
                             : domain_disk_type(d) == DOMAIN_DISK_FILE  ? d->source.file
                             : domain_disk_type(d) == DOMAIN_DISK_BLOCK ? d->source.dev
                                                                        : NULL;
                if (!path)
                        continue;
                c->chains[i].layers = &c->layers[n];
                c->layers[n++] = (struct qemu_disk_layer){
                        .path = path,
                        .format = d->driver.format == DOMAIN_DISK_FORMAT_QCOW2 ? "qcow2" : "raw",
                };
                c->chains[i].n_layers = 1;
                for (size_t k = 0; k < n_backing; k++) {
                        if (!streq(c->backing[k][0], d->target_dev))
                                continue;
                        assert_true(n < ELEMENTSOF(c->layers));
                        c->layers[n++] = (struct qemu_disk_layer){.path = c->backing[k][1],
                                                                  .format = c->backing[k][2]};
                        c->chains[i].n_layers++;
                }
        }
        for (size_t k = 0; k < n; k++)
                c->layers[k].fd = 3 + (int)k;
}

/* One golden fixture: NAME.xml's argv must equal NAME.argv. */
static void test_golden_argv(void **state) {
        const char *path = *state;
        _cleanup_free_ char *golden = test_sibling(path, ".argv");
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def, "/run/declvirt/qemu");
        free(t.log);
        char logp[256];
        snprintf(logp, sizeof(logp), "/var/lib/declvirt/state/domains/%s.console.log", def->name);
        t.log = strdup(logp);
        t.ctx.serial_log = t.log;
        struct test_chains chains;
        test_chains_fill(&chains, def, t.disks, path);
        t.ctx.disk_chains = chains.chains;
        struct dv_error err = DV_ERROR_INIT;
        char **argv = NULL;
        int r = qemu_argv(def, &t.ctx, &argv, &err);
        if (r < 0)
                fail_msg("%s: %s", path, strna(dv_error_message(&err)));
        test_check_golden_argv(golden, argv);
        strv_free(argv);
        argv = NULL;

        /* How the driver runs it (QEMU as its own user): NAME.fds.argv, for the fixtures
         * that have serial files, taps, pflash units or VNC. The numbers follow the disks'
         * layers as the driver's do. */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        static const char *const with_fds[] = {"kvm-full.xml", "uefi.xml", "minimal.xml",
                                               "efi-secure.xml", "q35-devices.xml"};
        bool fds_golden = false;
        for (size_t i = 0; i < ELEMENTSOF(with_fds); i++)
                fds_golden = fds_golden || streq(base, with_fds[i]);
        if (fds_golden) {
                int next = 3;
                for (size_t i = 0; i < def->n_disks; i++)
                        next += (int)chains.chains[i].n_layers;
                int ser[16], con[16], taps[16];
                assert_true(def->n_serials <= 16 && def->n_consoles <= 16 &&
                            def->n_interfaces <= 16);
                struct qemu_fds f = {.qmp = next++, .events = next++, .console_log = next++};
                for (size_t i = 0; i < def->n_serials; i++)
                        ser[i] = domain_chr_type(&def->serials[i]) == DOMAIN_CHR_FILE ? next++ : -1;
                for (size_t i = 0; i < def->n_consoles; i++)
                        con[i] =
                                domain_chr_type(&def->consoles[i]) == DOMAIN_CHR_FILE ? next++ : -1;
                for (size_t i = 0; i < def->n_interfaces; i++)
                        taps[i] = next++;
                f.serials = ser;
                f.consoles = con;
                f.taps = taps;
                f.loader = t.ctx.firmware || (def->os.has_loader &&
                                              def->os.loader.type == DOMAIN_LOADER_PFLASH)
                                   ? next++
                                   : -1;
                f.nvram = t.ctx.firmware || def->os.has_nvram ? next++ : -1;
                int chans[16];
                assert_true(def->n_channels <= 16);
                for (size_t i = 0; i < def->n_channels; i++)
                        chans[i] = next++;
                f.channels = chans;
                f.vsock = def->has_vsock ? next++ : -1;
                t.ctx.fds = &f;
                t.ctx.pidfile = NULL; /* not needed with fds */
                _cleanup_free_ char *fgolden = test_sibling(path, ".fds.argv");
                r = qemu_argv(def, &t.ctx, &argv, &err);
                if (r < 0)
                        fail_msg("%s (fds): %s", path, strna(dv_error_message(&err)));
                test_check_golden_argv(fgolden, argv);
                strv_free(argv);
        }
        dv_error_clear(&err);
        test_ctx_done(&t, def);
        dv_object_free(o);
}

/* One refused fixture (refused*.xml): every problem, with its line, in NAME.err. */
static void test_refused(void **state) {
        const char *path = *state;
        _cleanup_free_ char *golden = test_sibling(path, ".err");
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def, "/run/declvirt/qemu");
        struct dv_error err = DV_ERROR_INIT;
        char **argv = NULL;
        assert_int_equal(qemu_argv(def, &t.ctx, &argv, &err), -EOPNOTSUPP);
        assert_null(argv);
        struct buf b = BUF_INIT;
        for (size_t k = 0; k < err.n_problems; k++)
                buf_printf(&b, "%d: %s\n", err.problems[k].line, err.problems[k].msg);
        _cleanup_free_ char *text = buf_steal(&b);
        assert_non_null(text);
        test_check_golden_text(golden, text);
        dv_error_clear(&err);
        test_ctx_done(&t, def);
        dv_object_free(o);
}

static struct dv_object *load(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.xml", DATA, name);
        return test_load_object(path, DV_KIND_DOMAIN);
}

static void expect_ctx_error(const struct domain_def *def, const struct qemu_argv_ctx *ctx,
                             int want, const char *fragment) {
        struct dv_error err = DV_ERROR_INIT;
        char **argv = NULL;
        assert_int_equal(qemu_argv(def, ctx, &argv, &err), want);
        assert_null(argv);
        const char *msg = dv_error_message(&err);
        if (!msg || !strstr(msg, fragment))
                fail_msg("expected \"%s\" in \"%s\"", fragment, strna(msg));
        dv_error_clear(&err);
}

static void test_context_errors(void **state) {
        (void)state;
        struct dv_object *o = load("kvm-full");
        struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def, "/run/declvirt/qemu");
        struct qemu_argv_ctx c = t.ctx;

        c.accel = "hvf";
        expect_ctx_error(def, &c, -EINVAL, "accelerator 'hvf'");
        c = t.ctx;
        c.qmp_socket = "relative.qmp";
        expect_ctx_error(def, &c, -EINVAL, "absolute");
        c = t.ctx;
        c.disk_paths = NULL; /* the volume disk (vdb) has no path then */
        expect_ctx_error(def, &c, -EINVAL, "no path for its volume 'web1-data' in pool 'data'");
        c = t.ctx;
        c.tap_names = NULL;
        expect_ctx_error(def, &c, -EINVAL, "interface 0: no tap device name");
        char *bad_taps[] = {"dvt0", "this-name-is-too-long", NULL};
        c = t.ctx;
        c.tap_names = bad_taps;
        expect_ctx_error(def, &c, -EINVAL, "interface 1: invalid tap device name");
        char *bad_macs[] = {"52:54:00:ab:cd:01", "52:54:00:ab:cd", NULL};
        c = t.ctx;
        c.macs = bad_macs;
        expect_ctx_error(def, &c, -EINVAL, "interface 1: invalid MAC address");
        /* A written MAC serves when the engine passes none. */
        char *no_macs[] = {NULL, "52:54:00:ab:cd:02", NULL};
        c = t.ctx;
        c.macs = no_macs;
        char **argv = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(qemu_argv(def, &c, &argv, &err), 0);
        _cleanup_free_ char *text = argv_text(argv);
        assert_non_null(strstr(text, "\"mac\":\"52:54:00:ab:cd:01\""));
        assert_non_null(strstr(text, "\"mac\":\"52:54:00:ab:cd:02\""));
        strv_free(argv);
        /* No binary at all: neither the context nor <emulator>. */
        char *emulator = TAKE_PTR(def->emulator);
        c = t.ctx;
        c.binary = NULL;
        expect_ctx_error(def, &c, -EINVAL, "no QEMU binary");
        def->emulator = emulator;
        /* paused adds -S; a generated UUID overrides the written one. */
        c = t.ctx;
        c.paused = true;
        c.uuid = "11111111-2222-3333-4444-555555555555";
        argv = NULL;
        assert_int_equal(qemu_argv(def, &c, &argv, &err), 0);
        assert_true(strv_contains(argv, "-S"));
        assert_true(strv_contains(argv, "11111111-2222-3333-4444-555555555555"));
        assert_false(strv_contains(argv, "6f9a1c2e-8b3d-4e5f-9a0b-1c2d3e4f5a6b"));
        strv_free(argv);
        test_ctx_done(&t, def);
        dv_object_free(o);

        /* Other domain types belong to other drivers. */
        o = test_load_object("tests/data/model/domain/lxc-container.xml", DV_KIND_DOMAIN);
        test_ctx_fill(&t, o->def.domain, "/run/declvirt/qemu");
        expect_ctx_error(o->def.domain, &t.ctx, -EOPNOTSUPP,
                         "domain type 'lxc' is not run by the QEMU driver");
        test_ctx_done(&t, o->def.domain);
        dv_object_free(o);
}

/* ---- real QEMU ------------------------------------------------------------------------- */

static void replace(char **p, const char *v) {
        free(*p);
        *p = strdup(v);
        assert_non_null(*p);
}

/* Reads one QMP message (a line) within the deadline; NULL on EOF or timeout. */
static char *qmp_line(int fd, char *buf, size_t size, size_t *have, int timeout_ms) {
        for (;;) {
                char *nl = memchr(buf, '\n', *have);
                if (nl) {
                        size_t l = (size_t)(nl - buf) + 1;
                        char *line = strndup(buf, l - 1);
                        memmove(buf, buf + l, *have - l);
                        *have -= l;
                        return line;
                }
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, timeout_ms) <= 0 || *have >= size)
                        return NULL;
                ssize_t k = read(fd, buf + *have, size - *have);
                if (k <= 0)
                        return NULL;
                *have += (size_t)k;
        }
}

/* Sends a command and returns its reply (events are skipped). */
static char *qmp_command(int fd, const char *cmd, char *buf, size_t size, size_t *have) {
        assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
        for (;;) {
                char *line = qmp_line(fd, buf, size, have, 10000);
                if (!line || strstr(line, "\"return\"") || strstr(line, "\"error\""))
                        return line;
                free(line);
        }
}

static char *read_log(const char *path) {
        char *s = NULL;
        size_t l = 0;
        if (read_full_file(path, 1 << 16, &s, &l) < 0)
                return strdup("(no log)");
        return s;
}

/* Starts QEMU with the argv, checks that it reaches the prelaunch state (every option
 * and device accepted), then quits it; killed by PID whatever happens. */
static void run_qemu(const char *name, char **argv, const struct qemu_disks *disks, const char *qmp,
                     const char *log) {
        struct dv_error err = DV_ERROR_INIT;
        pid_t pid = 0;
        assert_int_equal(
                cmd_spawn_detached_fds(argv, log, NULL, disks->fds, disks->n, &pid, &err) > 0, 1);
        dv_error_clear(&err);

        int fd = -1;
        bool exited = false;
        int status = 0;
        for (int i = 0; i < 1000 && fd < 0; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        exited = true;
                        break;
                }
                int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", qmp);
                if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        fd = s;
                else {
                        if (s >= 0)
                                close(s);
                        usleep(10000);
                }
        }
        char buf[65536];
        size_t have = 0;
        char *greeting = fd >= 0 ? qmp_line(fd, buf, sizeof(buf), &have, 10000) : NULL;
        char *caps = greeting ? qmp_command(fd, "{\"execute\":\"qmp_capabilities\"}\n", buf,
                                            sizeof(buf), &have)
                              : NULL;
        char *st =
                caps ? qmp_command(fd, "{\"execute\":\"query-status\"}\n", buf, sizeof(buf), &have)
                     : NULL;
        char *quit =
                st ? qmp_command(fd, "{\"execute\":\"quit\"}\n", buf, sizeof(buf), &have) : NULL;
        if (fd >= 0)
                close(fd);
        if (!exited) {
                /* quit makes QEMU exit; SIGKILL is for when it did not. */
                for (int i = 0; i < 300; i++) {
                        if (waitpid(pid, &status, WNOHANG) == pid) {
                                exited = true;
                                break;
                        }
                        usleep(10000);
                }
                if (!exited) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                }
        }
        bool ok = st && strstr(st, "\"prelaunch\"");
        free(greeting);
        free(caps);
        free(quit);
        if (!ok) {
                _cleanup_free_ char *line = cmd_argv_string(argv);
                _cleanup_free_ char *l = read_log(log);
                char *copy = st ? strdup(st) : NULL;
                free(st);
                /* cmocka truncates long messages: the details go to stderr. */
                fprintf(stderr, "# argv: %s\n# log:\n%s\n", strna(line), l);
                fail_msg("%s: QEMU did not reach prelaunch (%s)", name, strna(copy));
        }
        free(st);
}

static void make_file(const char *path, const char *format) {
        if (format && streq(format, "qcow2")) {
                char *argv[] = {"qemu-img", "create",     "-q", "-f",
                                "qcow2",    (char *)path, "1M", NULL};
                struct dv_error err = DV_ERROR_INIT;
                if (cmd_run(argv, NULL, NULL, &err) < 0)
                        fail_msg("qemu-img: %s", strna(dv_error_message(&err)));
                dv_error_clear(&err);
                return;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1 << 20), 0);
        close(fd);
}

static void test_qemu_accepts(void **state) {
        (void)state;
        if (access(QEMU, X_OK) != 0) {
                printf("# skip: %s is not installed\n", QEMU);
                skip();
        }
        if (!test_have_program("qemu-img")) {
                printf("# skip: qemu-img is not installed\n");
                skip();
        }
        static const char *const names[] = {
                "minimal", "kvm-full",      "pc-ide-sata", "vnc-port",    "vnc-socket",
                "uefi",    "backing-chain", "empty-media", "q35-devices", "pc-devices"};
        _cleanup_free_ char *dir = test_mkdtemp("dv-qemu-argv");
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                struct dv_object *o = load(names[k]);
                struct domain_def *def = o->def.domain;
                char p[512];
                /* Host paths the fixtures name become small files in the test directory. */
                def->memory_kib = def->current_memory_kib = 64 * 1024;
                for (size_t i = 0; i < def->n_serials; i++)
                        if (def->serials[i].source_path) {
                                snprintf(p, sizeof(p), "%s/serial%zu.log", dir, i);
                                replace(&def->serials[i].source_path, p);
                        }
                for (size_t i = 0; i < def->n_consoles; i++)
                        if (def->consoles[i].source_path) {
                                snprintf(p, sizeof(p), "%s/serial%zu.log", dir, i);
                                replace(&def->consoles[i].source_path, p);
                        }
                for (size_t i = 0; i < def->n_filesystems; i++)
                        replace(&def->filesystems[i].source, dir);
                for (size_t i = 0; i < def->n_graphics; i++)
                        if (def->graphics[i].socket) {
                                snprintf(p, sizeof(p), "%s/custom.vnc", dir);
                                replace(&def->graphics[i].socket, p);
                        }
                if (def->os.has_loader && def->os.loader.type == DOMAIN_LOADER_PFLASH) {
                        snprintf(p, sizeof(p), "%s/code.fd", dir);
                        make_file(p, "raw");
                        replace(&def->os.loader.path, p);
                        snprintf(p, sizeof(p), "%s/vars.fd", dir);
                        make_file(p, "raw");
                        replace(&def->os.nvram.path, p);
                }
                /* Without the kernel's vhost-vsock, QEMU could not create the device. */
                if (def->has_vsock && access("/dev/vhost-vsock", R_OK | W_OK) != 0)
                        def->has_vsock = false;
                for (size_t i = 0; i < def->n_channels; i++)
                        if (def->channels[i].source_path) {
                                snprintf(p, sizeof(p), "%s/chan%zu.sock", dir, i);
                                replace(&def->channels[i].source_path, p);
                        }
                /* No taps here: the interfaces are left out. */
                size_t n_if = def->n_interfaces;
                def->n_interfaces = 0;

                struct test_ctx t;
                test_ctx_fill(&t, def, dir);
                t.ctx.binary = QEMU;
                t.ctx.accel = "tcg";
                t.ctx.paused = true;
                for (size_t i = 0; i < def->n_disks; i++) {
                        const struct domain_disk *d = &def->disks[i];
                        if (!d->has_source)
                                continue;
                        free(t.disks[i]);
                        t.disks[i] = NULL;
                        if (domain_disk_type(d) == DOMAIN_DISK_BLOCK) {
                                /* A character device stands for the block device; it
                                 * takes no O_DIRECT. */
                                t.disks[i] = strdup("/dev/null");
                                def->disks[i].driver.cache = DOMAIN_DISK_CACHE_UNSET;
                                continue;
                        }
                        snprintf(p, sizeof(p), "%s/disk%zu.img", dir, i);
                        make_file(p, domain_disk_format_to_string(d->driver.format));
                        t.disks[i] = strdup(p);
                }
                /* The images as the driver passes them (descriptors); the character
                 * device standing for a block device keeps its path. */
                struct dv_error err = DV_ERROR_INIT;
                struct qemu_disks disks;
                bool blk[64] = {false};
                assert_true(def->n_disks <= ELEMENTSOF(blk));
                for (size_t i = 0; i < def->n_disks; i++)
                        if (def->disks[i].has_source &&
                            domain_disk_type(&def->disks[i]) == DOMAIN_DISK_BLOCK)
                                blk[i] = !(def->disks[i].has_source = false);
                if (streq(names[k], "backing-chain")) {
                        /* vda: overlay -> mid.qcow2 -> base.img (raw), by relative names
                         * that resolve against the image's directory. */
                        snprintf(p, sizeof(p), "%s/base.img", dir);
                        make_file(p, "raw");
                        char mid[512];
                        snprintf(mid, sizeof(mid), "%s/mid.qcow2", dir);
                        char *m[] = {"qemu-img", "create", "-q",  "-f", "qcow2", "-b",
                                     "base.img", "-F",     "raw", mid,  NULL};
                        /* -u: qemu-img itself would not find ./x (QEMU neither). */
                        char *top[] = {"qemu-img", "create", "-q",       "-u",
                                       "-f",       "qcow2",  "-b",       "./x/../mid.qcow2",
                                       "-F",       "qcow2",  t.disks[0], "1M",
                                       NULL};
                        assert_int_equal(cmd_run(m, NULL, NULL, &err), 0);
                        unlink(t.disks[0]);
                        assert_int_equal(cmd_run(top, NULL, NULL, &err), 0);
                }
                if (qemu_disks_open(def, t.disks, NULL, &disks, &err) < 0)
                        fail_msg("%s: %s", names[k], strna(dv_error_message(&err)));
                if (streq(names[k], "backing-chain")) {
                        assert_int_equal(disks.chains[0].n_layers, 3);
                        assert_string_equal(disks.chains[0].layers[2].format, "raw");
                        assert_string_equal(disks.chains[0].layers[1].format, "qcow2");
                }
                for (size_t i = 0; i < def->n_disks; i++)
                        if (blk[i])
                                def->disks[i].has_source = true;
                t.ctx.disk_chains = disks.chains;
                char **argv = NULL;
                if (qemu_argv(def, &t.ctx, &argv, &err) < 0)
                        fail_msg("%s: %s", names[k], strna(dv_error_message(&err)));
                snprintf(p, sizeof(p), "%s/%s.qemu.log", dir, def->name);
                run_qemu(names[k], argv, &disks, t.qmp, p);
                qemu_disks_done(&disks);
                strv_free(argv);
                test_ctx_done(&t, def);
                def->n_interfaces = n_if;
                dv_object_free(o);
        }
        test_rm_rf(dir);
}

/* What qemu_disks_open refuses: the attacks of issue 17 on disk images. */
static int open_one(const char *xml, const char *dir, char *const *locations, const char *want) {
        struct dv_object *o = test_parse_string_ok(xml, "disk attack");
        struct qemu_disks disks;
        struct dv_error err = DV_ERROR_INIT;
        int r = qemu_disks_open(o->def.domain, NULL, locations, &disks, &err);
        if (r >= 0)
                qemu_disks_done(&disks);
        else if (!strstr(strna(dv_error_message(&err)), want))
                fail_msg("%s: expected \"%s\" in \"%s\"", dir, want, strna(dv_error_message(&err)));
        dv_error_clear(&err);
        dv_object_free(o);
        return r;
}

#define DISK_XML                                                             \
        "<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory>"    \
        "<os><type>hvm</type></os><devices><disk type='file' device='disk'>" \
        "<driver name='qemu' type='%s'/><source file='%s'/>"                 \
        "<target dev='vda'/></disk></devices></domain>"

static void test_disk_attacks(void **state) {
        (void)state;
        _cleanup_free_ char *dir = test_mkdtemp("dv-qemu-disk");
        char p[512], xml[2048], victim[512];
        snprintf(victim, sizeof(victim), "%s/victim", dir);
        make_file(victim, "raw");

        /* A symlink where the image was: refused, the victim is not opened. */
        snprintf(p, sizeof(p), "%s/link.img", dir);
        assert_int_equal(symlink(victim, p), 0);
        snprintf(xml, sizeof(xml), DISK_XML, "raw", p);
        assert_int_equal(open_one(xml, dir, NULL, "symbolic link"), -ELOOP);
        /* A FIFO: refused without blocking. */
        snprintf(p, sizeof(p), "%s/fifo.img", dir);
        assert_int_equal(mkfifo(p, 0600), 0);
        snprintf(xml, sizeof(xml), DISK_XML, "raw", p);
        assert_int_equal(open_one(xml, dir, NULL, "not a regular file"), -EBADF);
        /* A qcow2 naming /etc/shadow as its backing file: outside storage_locations. */
        snprintf(p, sizeof(p), "%s/shadow.qcow2", dir);
        char *c1[] = {"qemu-img",    "create", "-q",  "-u", "-f", "qcow2", "-b",
                      "/etc/shadow", "-F",     "raw", p,    "1M", NULL};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cmd_run(c1, NULL, NULL, &err), 0);
        snprintf(xml, sizeof(xml), DISK_XML, "qcow2", p);
        char pat[600];
        snprintf(pat, sizeof(pat), "%s/*", dir);
        char *locs[] = {pat, NULL};
        assert_int_equal(
                open_one(xml, dir, locs, "/etc/shadow, which is outside storage_locations"),
                -EPERM);
        /* A backing file reached through a symlink: refused even without locations. */
        snprintf(p, sizeof(p), "%s/via-link.qcow2", dir);
        char *c2[] = {"qemu-img", "create", "-q",  "-u", "-f", "qcow2", "-b",
                      "link.img", "-F",     "raw", p,    "1M", NULL};
        assert_int_equal(cmd_run(c2, NULL, NULL, &err), 0);
        snprintf(xml, sizeof(xml), DISK_XML, "qcow2", p);
        assert_int_equal(open_one(xml, dir, locs, "symbolic link"), -ELOOP);
        /* A chain that comes back to itself. */
        snprintf(p, sizeof(p), "%s/loop.qcow2", dir);
        char *c3[] = {"qemu-img",   "create", "-q",    "-u", "-f", "qcow2", "-b",
                      "loop.qcow2", "-F",     "qcow2", p,    "1M", NULL};
        assert_int_equal(cmd_run(c3, NULL, NULL, &err), 0);
        snprintf(xml, sizeof(xml), DISK_XML, "qcow2", p);
        assert_int_equal(open_one(xml, dir, locs, "a loop"), -EMLINK);
        /* A protocol name. */
        snprintf(p, sizeof(p), "%s/nbd.qcow2", dir);
        char *c4[] = {"qemu-img", "create", "-q", "-u", "-f", "qcow2", "-b", "nbd:localhost:10809",
                      "-F",       "raw",    p,    "1M", NULL};
        assert_int_equal(cmd_run(c4, NULL, NULL, &err), 0);
        snprintf(xml, sizeof(xml), DISK_XML, "qcow2", p);
        assert_int_equal(open_one(xml, dir, NULL, "as a protocol"), -EOPNOTSUPP);
        test_rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_context_errors),
                cmocka_unit_test(test_qemu_accepts),
                cmocka_unit_test(test_disk_attacks),
        };
        _cleanup_strv_free_ char **files = test_list_dir(DATA, ".xml");
        _cleanup_free_ char **golden = test_filter_base_prefix(files, "refused", false);
        _cleanup_free_ char **refused = test_filter_base_prefix(files, "refused", true);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", golden, test_golden_argv, 6);
        test_list_add_files(&l, "refused", refused, test_refused, 2);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-qemu-argv");
}
