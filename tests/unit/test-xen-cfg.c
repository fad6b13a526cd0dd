/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The xl.cfg converter: golden .cfg files for every fixture in tests/data/xen
 * (DECLVIRT_UPDATE_GOLDEN=1 rewrites them), golden error lists for the refused-* (EOPNOTSUPP)
 * and invalid-* (EINVAL) ones, the context the engine passes, quoting refusals, and
 * `declvirt native`'s placeholders. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>

/* libxlutil (libxen-dev) parses xl.cfg files offline: when its header and library are
 * there, every golden file also goes through xl's own parser. */
#if __has_include(<libxlutil.h>)
#include <libxlutil.h>
#define HAVE_LIBXLUTIL 1
#endif

#include "drivers/domain/xen-cfg.h"
#include "model/domain.h"
#include "tests/helpers/testlib.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DATA "tests/data/xen"

/* The context the engine would give, with stable values so the golden files are too:
 * volumes under /var/lib/declvirt/POOL/VOL, generated MACs 00:16:3e:00:00:NN, the
 * bridge of network NET "dv-NET". */
struct test_ctx {
        struct xen_cfg_ctx ctx;
        char **disks, **macs, **bridges;
        size_t n_disks, n_ifaces;
};

static void test_ctx_fill(struct test_ctx *t, const struct domain_def *def) {
        memset(t, 0, sizeof(*t));
        char buf[512];
        t->n_disks = def->n_disks;
        t->n_ifaces = def->n_interfaces;
        t->disks = calloc(def->n_disks + 1, sizeof(char *));
        t->macs = calloc(def->n_interfaces + 1, sizeof(char *));
        t->bridges = calloc(def->n_interfaces + 1, sizeof(char *));
        assert_non_null(t->disks);
        assert_non_null(t->macs);
        assert_non_null(t->bridges);
        for (size_t i = 0; i < def->n_disks; i++) {
                const struct domain_disk *d = &def->disks[i];
                if (domain_disk_type(d) == DOMAIN_DISK_VOLUME && d->has_source) {
                        snprintf(buf, sizeof(buf), "/var/lib/declvirt/%s/%s", d->source.pool,
                                 d->source.volume);
                        t->disks[i] = strdup(buf);
                }
        }
        for (size_t i = 0; i < def->n_interfaces; i++) {
                const struct domain_net *n = &def->interfaces[i];
                if (n->mac)
                        t->macs[i] = strdup(n->mac);
                else {
                        snprintf(buf, sizeof(buf), "00:16:3e:00:00:%02zx", i);
                        t->macs[i] = strdup(buf);
                }
                if (n->type == DOMAIN_NET_NETWORK) {
                        snprintf(buf, sizeof(buf), "dv-%.12s", n->source_network);
                        t->bridges[i] = strdup(buf);
                }
        }
        t->ctx = (struct xen_cfg_ctx){
                .disk_paths = t->disks,
                .macs = t->macs,
                .bridges = t->bridges,
        };
}

static void test_ctx_done(struct test_ctx *t) {
        test_free_n(t->disks, t->n_disks);
        test_free_n(t->macs, t->n_ifaces);
        test_free_n(t->bridges, t->n_ifaces);
}

static struct dv_object *load(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.xml", DATA, name);
        return test_load_object(path, DV_KIND_DOMAIN);
}

static char *errors_text(const struct dv_error *err) {
        struct buf b = BUF_INIT;
        for (size_t k = 0; k < err->n_problems; k++)
                buf_printf(&b, "%d: %s\n", err->problems[k].line, err->problems[k].msg);
        char *text = buf_steal(&b);
        assert_non_null(text);
        return text;
}

/* One golden fixture: NAME.xml's xl.cfg must equal NAME.cfg. */
static void test_golden_cfg(void **state) {
        const char *path = *state;
        _cleanup_free_ char *golden = test_sibling(path, ".cfg");
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def);
        struct dv_error err = DV_ERROR_INIT;
        char *cfg = NULL;
        int r = xen_cfg_build(def, &t.ctx, &cfg, &err);
        if (r < 0)
                fail_msg("%s: %s", path, strna(dv_error_message(&err)));
        test_check_golden_text(golden, cfg);
        /* The checks alone agree with the build. */
        assert_int_equal(xen_cfg_check(def, &err), 0);
        assert_int_equal(err.n_problems, 0);
        free(cfg);
        test_ctx_done(&t);
        dv_object_free(o);
}

/* Each bad fixture lists every problem, with its line, in NAME.err; refused-* are what
 * the Xen driver does not do (-EOPNOTSUPP), invalid-* what xl.cfg cannot hold (-EINVAL). */
static void test_bad_fixtures(void **state) {
        const char *path = *state;
        const char *name = test_base_name(path);
        int want = strncmp(name, "refused", 7) == 0 ? -EOPNOTSUPP : -EINVAL;
        _cleanup_free_ char *golden = test_sibling(path, ".err");
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def);
        struct dv_error err = DV_ERROR_INIT;
        char *cfg = NULL;
        int r = xen_cfg_build(def, &t.ctx, &cfg, &err);
        if (r != want)
                fail_msg("%s: %d, expected %d (%s)", path, r, want, strna(dv_error_message(&err)));
        assert_null(cfg);
        _cleanup_free_ char *text = errors_text(&err);
        test_check_golden_text(golden, text);
        /* xen_cfg_check finds the same problems. */
        struct dv_error err2 = DV_ERROR_INIT;
        assert_int_equal(xen_cfg_check(def, &err2), want);
        assert_int_equal(err2.n_problems, err.n_problems);
        dv_error_clear(&err2);
        dv_error_clear(&err);
        test_ctx_done(&t);
        dv_object_free(o);
}

static char *build_ok(const struct domain_def *def, const struct xen_cfg_ctx *ctx) {
        struct dv_error err = DV_ERROR_INIT;
        char *cfg = NULL;
        int r = xen_cfg_build(def, ctx, &cfg, &err);
        if (r < 0)
                fail_msg("xen_cfg_build: %d %s", r, strna(dv_error_message(&err)));
        assert_non_null(cfg);
        return cfg;
}

static void expect_error(const struct domain_def *def, const struct xen_cfg_ctx *ctx, int want,
                         const char *fragment) {
        struct dv_error err = DV_ERROR_INIT;
        char *cfg = NULL;
        assert_int_equal(xen_cfg_build(def, ctx, &cfg, &err), want);
        assert_null(cfg);
        _cleanup_free_ char *text = errors_text(&err);
        if (!strstr(text, fragment))
                fail_msg("expected \"%s\" in \"%s\"", fragment, text);
        dv_error_clear(&err);
}

static void expect_in(const char *cfg, const char *fragment) {
        if (!strstr(cfg, fragment))
                fail_msg("expected \"%s\" in:\n%s", fragment, cfg);
}

static void expect_not_in(const char *cfg, const char *fragment) {
        if (strstr(cfg, fragment))
                fail_msg("did not expect \"%s\" in:\n%s", fragment, cfg);
}

/* What the engine resolves overrides what the file says; what it leaves NULL does not. */
static void test_context(void **state) {
        (void)state;
        struct dv_object *o = load("pv-bootloader");
        const struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def);
        struct xen_cfg_ctx c = t.ctx;

        /* A generated UUID: written when the file has none. */
        c.uuid = "11111111-2222-4333-8444-555555555555";
        _cleanup_free_ char *a = build_ok(def, &c);
        expect_in(a, "uuid = \"11111111-2222-4333-8444-555555555555\"\n");
        /* Disk paths: the resolved volume, and an override of a written source. */
        expect_in(a, "target=/var/lib/declvirt/data/pv-bootloader-data'");
        char *paths[] = {"/dev/mapper/other", NULL, NULL, NULL};
        c.disk_paths = paths;
        expect_error(def, &c, -EINVAL,
                     "disk 'xvdb': no path for its volume 'pv-bootloader-data' in pool 'data'");
        paths[1] = "/srv/vol.img";
        _cleanup_free_ char *b = build_ok(def, &c);
        expect_in(b, "target=/dev/mapper/other'");
        expect_in(b, "target=/srv/vol.img'");
        expect_in(b, "target=/var/lib/declvirt/iso/tools.iso'");
        /* MACs: the engine's for interfaces without one; NULL entries keep the file's. */
        char *macs[] = {NULL, "00:16:3e:aa:bb:cc", NULL};
        c = t.ctx;
        c.macs = macs;
        _cleanup_free_ char *m = build_ok(def, &c);
        expect_in(m, "'mac=00:16:3e:44:55:66,bridge=dv-xen-net'");
        expect_in(m, "'mac=00:16:3e:aa:bb:cc,bridge=xenbr1'");
        c.macs = NULL;
        _cleanup_free_ char *m2 = build_ok(def, &c);
        expect_in(m2, "'bridge=xenbr1'");
        char *bad_macs[] = {NULL, "00:16:3e:aa:bb", NULL};
        c.macs = bad_macs;
        expect_error(def, &c, -EINVAL, "interface 1: invalid MAC address '00:16:3e:aa:bb'");
        /* Bridges: a network's comes from the engine; a written bridge may be overridden;
         * "" keeps the written one. */
        char *bridges[] = {"", "br-over", NULL};
        c = t.ctx;
        c.bridges = bridges;
        expect_error(def, &c, -EINVAL, "interface 0: no bridge for its network 'xen-net'");
        bridges[0] = "br-net";
        _cleanup_free_ char *br = build_ok(def, &c);
        expect_in(br, "bridge=br-net'");
        expect_in(br, "bridge=br-over'");
        expect_not_in(br, "xenbr1");
        bridges[1] = "";
        _cleanup_free_ char *br2 = build_ok(def, &c);
        expect_in(br2, "bridge=xenbr1'");
        /* What the engine passes is checked like the file. */
        bridges[0] = "br,0";
        expect_error(def, &c, -EINVAL, "the bridge of interface 0 contains a comma");
        c = t.ctx;
        char *quoted[] = {"/dev/vg0/it's", t.disks[1], NULL, NULL};
        c.disk_paths = quoted;
        expect_error(def, &c, -EINVAL, "the path of disk 'xvda' contains a single quote");
        char *relative[] = {"dev/vg0/x", t.disks[1], NULL, NULL};
        c.disk_paths = relative;
        expect_error(def, &c, -EINVAL, "disk 'xvda': source path 'dev/vg0/x' is not absolute");
        test_ctx_done(&t);
        dv_object_free(o);

        /* The VNC listen default. */
        o = load("hvm-uefi");
        test_ctx_fill(&t, o->def.domain);
        c = t.ctx;
        _cleanup_free_ char *v1 = build_ok(o->def.domain, &c);
        expect_in(v1, "vnclisten = \"127.0.0.1\"\n");
        c.vnc_listen_default = "::1";
        _cleanup_free_ char *v2 = build_ok(o->def.domain, &c);
        expect_in(v2, "vnclisten = \"::1\"\n");
        /* No context at all: a file that needs nothing resolved builds. */
        _cleanup_free_ char *v3 = build_ok(o->def.domain, NULL);
        expect_in(v3, "vnclisten = \"127.0.0.1\"\n");
        expect_not_in(v3, "uuid");
        test_ctx_done(&t);
        dv_object_free(o);
}

/* Values xl.cfg cannot hold are refused, whatever field they come in. */
static void test_quoting(void **state) {
        (void)state;
        struct dv_object *o = load("pv-kernel");
        struct domain_def *def = o->def.domain;
        struct test_ctx t;
        test_ctx_fill(&t, def);
        static const struct {
                const char *value, *what;
        } cases[] = {
                {"console=hvc0 x=\"y\"", "contains a double quote"},
                {"console=hvc0 x='y'", "contains a single quote"},
                {"console=hvc0\nroot=/dev/xvda", "contains a newline"},
                {"console=hvc0\\n", "contains a backslash"},
                {"console=hvc0\t\x01", "contains a control character"},
        };
        char *saved = def->os.cmdline;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                def->os.cmdline = (char *)cases[i].value;
                expect_error(def, &t.ctx, -EINVAL, cases[i].what);
                expect_error(def, &t.ctx, -EINVAL, "<cmdline>");
        }
        def->os.cmdline = saved;
        /* In a device spec a comma would split the value: the PV framebuffer's password. */
        char *pw = def->graphics[0].passwd;
        def->graphics[0].passwd = "a,b";
        expect_error(def, &t.ctx, -EINVAL,
                     "<graphics passwd=> contains a comma, which xl.cfg cannot hold in a "
                     "device spec");
        def->graphics[0].passwd = pw;
        /* A disk target may hold commas: it comes last and takes the rest of the spec. */
        _cleanup_free_ char *cfg = build_ok(def, &t.ctx);
        expect_in(cfg, "target=/var/lib/declvirt/images/pv,kernel.qcow2'");
        test_ctx_done(&t);
        dv_object_free(o);
}

/* A PV domain with neither kernel nor bootloader: the model refuses the file, and the
 * converter would too (a definition built some other way). */
static void test_pv_without_kernel(void **state) {
        (void)state;
        struct dv_object *bad = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_true(dv_object_parse_file("tests/data/invalid/domain-xen-pv-no-kernel.xml", &bad,
                                         &err) < 0);
        assert_null(bad);
        assert_non_null(strstr(strna(dv_error_message(&err)),
                               "a Xen PV domain needs a <kernel> in <os> or a <bootloader>"));
        dv_error_clear(&err);

        struct dv_object *o = load("pv-kernel");
        struct domain_def *def = o->def.domain;
        char *kernel = TAKE_PTR(def->os.kernel), *initrd = TAKE_PTR(def->os.initrd);
        expect_error(def, NULL, -EINVAL,
                     "a Xen PV domain needs a <kernel> in <os> or a <bootloader>");
        def->os.kernel = kernel;
        def->os.initrd = initrd;
        dv_object_free(o);
}

/* declvirt native and xen_cfg_check: nothing resolved, placeholders instead. */
static void test_native(void **state) {
        (void)state;
        struct dv_object *o = load("pv-bootloader");
        const struct domain_def *def = o->def.domain;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(xen_cfg_check(def, &err), 0);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_non_null(f);
        assert_int_equal(xen_cfg_native(def, NULL, f, &err), 0);
        assert_int_equal(fclose(f), 0);
        expect_in(out, "target=<path of volume data/pv-bootloader-data>'");
        expect_in(out, "bridge=<bridge of network xen-net>'");
        expect_in(out, "bootloader = \"pygrub\"\n");
        free(out);
        /* Without placeholders, the build wants what only the engine knows. */
        expect_error(def, NULL, -EINVAL, "no path for its volume");
        expect_error(def, NULL, -EINVAL, "no bridge for its network 'xen-net'");
        dv_object_free(o);

        /* Other domain types belong to other drivers. */
        o = test_load_object("tests/data/model/domain/minimal.xml", DV_KIND_DOMAIN);
        expect_error(o->def.domain, NULL, -EOPNOTSUPP, "is not run by the Xen driver");
        dv_object_free(o);
}

/* The model's own Xen fixtures and the documented examples convert too. */
static void test_model_fixtures(void **state) {
        (void)state;
        static const char *paths[] = {
                "tests/data/model/domain/xen-hvm.xml",
                "tests/data/model/domain/xen-pv-kernel.xml",
                "tests/data/model/domain/xen-pv-bootloader.xml",
                "docs/examples/xen-pv.xml",
                "docs/examples/xen-hvm.xml",
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                const char *path = paths[i];
                struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
                struct test_ctx t;
                test_ctx_fill(&t, o->def.domain);
                _cleanup_free_ char *cfg = build_ok(o->def.domain, &t.ctx);
                expect_in(cfg, "name = \"");
                test_ctx_done(&t);
                dv_object_free(o);
        }
}

/* xl's own parser (libxlutil, loaded at run time: the test needs no Xen to build) reads
 * every golden file, and its disk parser every disk item, with the values we meant. */
static void test_xl_parses(void **state) {
        (void)state;
#ifndef HAVE_LIBXLUTIL
        print_message("# libxlutil.h not installed (libxen-dev): xl's parser not tried\n");
        skip();
#else
        void *xlu = dlopen("libxlutil.so.4.17", RTLD_NOW | RTLD_LOCAL);
        void *xl = dlopen("libxenlight.so.4.17", RTLD_NOW | RTLD_LOCAL);
        if (!xlu || !xl) {
                if (xlu)
                        dlclose(xlu);
                if (xl)
                        dlclose(xl);
                print_message("# libxlutil.so.4.17 or libxenlight.so.4.17 missing\n");
                skip();
                return;
        }
        __typeof__(&xlu_cfg_init) cfg_init = (__typeof__(cfg_init))dlsym(xlu, "xlu_cfg_init");
        __typeof__(&xlu_cfg_readdata) readdata =
                (__typeof__(readdata))dlsym(xlu, "xlu_cfg_readdata");
        __typeof__(&xlu_cfg_get_string) get_string =
                (__typeof__(get_string))dlsym(xlu, "xlu_cfg_get_string");
        __typeof__(&xlu_cfg_get_long) get_long =
                (__typeof__(get_long))dlsym(xlu, "xlu_cfg_get_long");
        __typeof__(&xlu_cfg_get_list) get_list =
                (__typeof__(get_list))dlsym(xlu, "xlu_cfg_get_list");
        __typeof__(&xlu_cfg_get_listitem) get_item =
                (__typeof__(get_item))dlsym(xlu, "xlu_cfg_get_listitem");
        __typeof__(&xlu_disk_parse) disk_parse =
                (__typeof__(disk_parse))dlsym(xlu, "xlu_disk_parse");
        __typeof__(&xlu_cfg_destroy) destroy = (__typeof__(destroy))dlsym(xlu, "xlu_cfg_destroy");
        __typeof__(&libxl_device_disk_init) disk_init =
                (__typeof__(disk_init))dlsym(xl, "libxl_device_disk_init");
        __typeof__(&libxl_device_disk_dispose) disk_dispose =
                (__typeof__(disk_dispose))dlsym(xl, "libxl_device_disk_dispose");
        assert_true(cfg_init && readdata && get_string && get_long && get_list && get_item &&
                    disk_parse && destroy && disk_init && disk_dispose);

        _cleanup_strv_free_ char **files = test_list_dir(DATA, ".cfg");
        size_t n = 0;
        for (size_t i = 0; files[i]; i++) {
                char path[512];
                snprintf(path, sizeof(path), "%s/%s", DATA, test_base_name(files[i]));
                size_t len = 0;
                _cleanup_free_ char *data = test_read_file(path, &len);
                XLU_Config *cfg = cfg_init(stderr, path);
                assert_non_null(cfg);
                if (readdata(cfg, data, (int)len) != 0)
                        fail_msg("xl cannot parse %s", path);
                const char *name = NULL;
                assert_int_equal(get_string(cfg, "name", &name, 0), 0);
                assert_non_null(name);
                long offset = 0;
                if (strstr(data, "rtc_timeoffset") &&
                    (get_long(cfg, "rtc_timeoffset", &offset, 0) != 0 || offset == 0))
                        fail_msg("%s: xl does not read rtc_timeoffset", path);
                if (strstr(data, "rtc_timeoffset = \"-3600\""))
                        assert_int_equal(offset, -3600);
                XLU_ConfigList *disks = NULL;
                int n_disks = 0;
                if (get_list(cfg, "disk", &disks, &n_disks, 1) == 0)
                        for (int k = 0; k < n_disks; k++) {
                                const char *spec = get_item(disks, k);
                                assert_non_null(spec);
                                libxl_device_disk d;
                                disk_init(&d);
                                if (disk_parse(cfg, 1, &spec, &d) != 0)
                                        fail_msg("%s: xl cannot parse disk '%s'", path, spec);
                                const char *target = strstr(spec, "target=") + 7;
                                assert_string_equal(d.pdev_path ? d.pdev_path : "", target);
                                assert_non_null(d.vdev);
                                assert_true(strstr(spec, d.vdev) != NULL);
                                disk_dispose(&d);
                        }
                destroy(cfg);
                n++;
        }
        assert_true(n >= 7);
        dlclose(xlu);
        dlclose(xl);
#endif
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_context),           cmocka_unit_test(test_quoting),
                cmocka_unit_test(test_pv_without_kernel), cmocka_unit_test(test_native),
                cmocka_unit_test(test_model_fixtures),    cmocka_unit_test(test_xl_parses),
        };
        _cleanup_strv_free_ char **files = test_list_dir(DATA, ".xml");
        _cleanup_free_ char **refused = test_filter_base_prefix(files, "refused", true);
        _cleanup_free_ char **rest = test_filter_base_prefix(files, "refused", false);
        _cleanup_free_ char **invalid = test_filter_base_prefix(rest, "invalid", true);
        _cleanup_free_ char **golden = test_filter_base_prefix(rest, "invalid", false);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", golden, test_golden_cfg, 7);
        test_list_add_files(&l, "refused", refused, test_bad_fixtures, 2);
        test_list_add_files(&l, "invalid", invalid, test_bad_fixtures, 1);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-xen-cfg");
}
