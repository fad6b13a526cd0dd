/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container plan: golden plans for every fixture in tests/data/lxc (cgroup v1 hybrid,
 * and v2 for some; DECLVIRT_UPDATE_GOLDEN=1 rewrites them), golden error lists for the
 * refused ones, the source checks (missing init, root, template), veth names, and the
 * cgroup writer on fake v1 and v2 trees. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/domain/cgroup.h"
#include "drivers/domain/lxc-plan.h"
#include "drivers/domain/lxc.h"
#include "model/domain.h"
#include "tests/helpers/testlib.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/macro.h"
#include "util/strv.h"

#define DATA "tests/data/lxc"

/* The bridges the engine resolves for type='network' interfaces. */
static char *const bridges[] = {NULL, "virbr-default", NULL, NULL};

static struct lxc_plan_ctx fixed_ctx(enum cgroup_mode mode, char *const *macs) {
        return (struct lxc_plan_ctx){
                .run_dir = "/run/declvirt/lxc",
                .state_dir = "/var/lib/declvirt/state/domains",
                .template_dir = "/var/lib/declvirt/templates",
                .container_dir = "/var/lib/declvirt/containers",
                .cgroup_root = "/sys/fs/cgroup",
                .cgroup_mode = mode,
                .cgroup_unified = mode == CGROUP_V1,
                .cgroup_devices = mode == CGROUP_V1,
                .cgroup_base = "declvirt",
                .macs = macs,
                .bridges = bridges,
                .id_base = 1879048192u, /* the first range of container.id_range */
        };
}

static char *plan_text(const struct lxc_plan *p) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        assert_non_null(f);
        lxc_plan_print(p, f);
        fclose(f);
        return s;
}

/* The engine's generated MACs, stable for the golden files. */
static char **macs_for(const struct domain_def *def) {
        char **m = NULL;
        for (size_t i = 0; i < def->n_interfaces; i++) {
                char buf[32];
                snprintf(buf, sizeof(buf), "52:54:00:00:00:%02zx", i);
                assert_int_equal(
                        strv_push(&m, def->interfaces[i].mac ? def->interfaces[i].mac : buf), 0);
        }
        return m;
}

static void golden_one(const char *path, enum cgroup_mode mode, const char *suffix,
                       bool privileged) {
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        _cleanup_strv_free_ char **macs = macs_for(def);
        struct lxc_plan_ctx ctx = fixed_ctx(mode, macs);
        ctx.privileged = privileged;
        struct dv_error err = DV_ERROR_INIT;
        struct lxc_plan *p = NULL;
        int r = lxc_plan_build(def, &ctx, &p, &err);
        if (r < 0)
                fail_msg("%s: %s", path, strna(dv_error_message(&err)));
        _cleanup_free_ char *text = plan_text(p);
        char golden[512];
        snprintf(golden, sizeof(golden), "%.*s%s", (int)(strlen(path) - 4), path, suffix);
        test_check_golden_text(golden, text);
        lxc_plan_free(p);
        dv_error_clear(&err);
        dv_object_free(o);
}

/* One golden fixture: NAME.xml's plan on cgroup v1 must equal NAME.plan. */
static void test_golden_plan(void **state) {
        golden_one(*state, CGROUP_V1, ".plan", false);
}

static void test_golden_plans_v2(void **state) {
        (void)state;
        golden_one(DATA "/minimal.xml", CGROUP_V2, ".v2.plan", false);
        golden_one(DATA "/full.xml", CGROUP_V2, ".v2.plan", false);
}

/* privileged='yes': no user namespace, the capabilities dropped instead; the device
 * allow-list stays. Without a range allocated yet, the plan says where it comes from. */
static void test_golden_privileged(void **state) {
        (void)state;
        golden_one(DATA "/minimal.xml", CGROUP_V1, ".privileged.plan", true);
        golden_one(DATA "/template.xml", CGROUP_V1, ".privileged.plan", true);
        struct dv_object *o = test_load_object(DATA "/minimal.xml", DV_KIND_DOMAIN);
        struct lxc_plan_ctx ctx = fixed_ctx(CGROUP_V1, NULL);
        ctx.id_base = 0;
        struct dv_error err = DV_ERROR_INIT;
        struct lxc_plan *p = NULL;
        assert_int_equal(lxc_plan_build(o->def.domain, &ctx, &p, &err), 0);
        assert_true(p->id_range);
        assert_int_equal(p->n_uid_map, 0);
        _cleanup_free_ char *text = plan_text(p);
        assert_non_null(strstr(text, "uid_map 0 (allocated from container.id_range) 65536\n"));
        lxc_plan_free(p);
        /* <idmap> and privileged='yes' contradict each other. */
        struct dv_object *o2 = test_load_object(DATA "/idmap.xml", DV_KIND_DOMAIN);
        ctx.privileged = true;
        assert_int_equal(lxc_plan_build(o2->def.domain, &ctx, &p, &err), -EOPNOTSUPP);
        assert_non_null(strstr(dv_error_message(&err), "contradict"));
        dv_error_clear(&err);
        dv_object_free(o2);
        dv_object_free(o);
}

/* One refused fixture (refused*.xml): every problem, with its line, in NAME.err. */
static void test_refused(void **state) {
        const char *path = *state;
        _cleanup_free_ char *golden = test_sibling(path, ".err");
        struct dv_object *o = test_load_object(path, DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        struct lxc_plan_ctx ctx = fixed_ctx(CGROUP_V1, NULL);
        struct dv_error err = DV_ERROR_INIT;
        struct lxc_plan *p = NULL;
        int r = lxc_plan_build(def, &ctx, &p, &err);
        assert_true(r == -EOPNOTSUPP || r == -EBUSY);
        assert_true(DOM_IS_REFUSAL(r));
        assert_null(p);
        /* The same from the check the lead's validate can call. */
        struct dv_error err2 = DV_ERROR_INIT;
        assert_int_equal(lxc_check_def(def, &err2), r);
        assert_int_equal(err2.n_problems, err.n_problems);
        dv_error_clear(&err2);
        struct buf b = BUF_INIT;
        for (size_t k = 0; k < err.n_problems; k++)
                buf_printf(&b, "%d: %s\n", err.problems[k].line, err.problems[k].msg);
        _cleanup_free_ char *text = buf_steal(&b);
        test_check_golden_text(golden, text);
        dv_error_clear(&err);
        dv_object_free(o);
}

static void test_memory_floor(void **state) {
        (void)state;
        struct dv_object *o = test_parse_string_ok(
                "<domain type='lxc'><name>tiny</name><memory unit='KiB'>1024</memory>"
                "<os><type>exe</type><init>/sbin/init</init></os><devices>"
                "<filesystem type='mount'><source dir='/srv/x'/><target dir='/'/></filesystem>"
                "</devices></domain>",
                "tiny");
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(lxc_check_def(o->def.domain, &err), -EBUSY);
        assert_non_null(strstr(dv_error_message(&err), "1024 KiB, below the 4096 KiB"));
        assert_int_equal(dv_error_line(&err), 1);
        dv_error_clear(&err);
        dv_object_free(o);
}

static void test_veth_names(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(DATA "/full.xml", DV_KIND_DOMAIN);
        const struct domain_def *def = o->def.domain;
        char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];
        assert_int_equal(lxc_veth_name(def, 0, a), 0);
        assert_string_equal(a, "veth-ct"); /* <target dev> written: the host end's name */
        assert_int_equal(lxc_veth_name(def, 1, b), 0);
        assert_int_equal(lxc_veth_name(def, 1, c), 0);
        assert_string_equal(b, c);
        assert_int_equal(strncmp(b, "dvc", 3), 0);
        assert_int_equal(strlen(b), 11);
        assert_int_equal(lxc_veth_name(def, 2, c), 0);
        assert_string_not_equal(b, c);
        assert_int_equal(lxc_iface_name(def, 1, c), 0);
        assert_string_equal(b, c);
        assert_int_equal(lxc_iface_name(def, 3, c), -ENOENT);
        dv_object_free(o);
}

/* ---- sources ---------------------------------------------------------------------------- */

static char *tmp;

static int setup_tmp(void **state) {
        (void)state;
        tmp = test_mkdtemp("dv-lxc-plan");
        return 0;
}

static int teardown_tmp(void **state) {
        (void)state;
        test_rm_rf(tmp);
        free(tmp);
        tmp = NULL;
        return 0;
}

static void write_file(const char *dir, const char *name, const char *data, mode_t mode) {
        _cleanup_free_ char *p = path_join(dir, name);
        _cleanup_free_ char *d = path_dirname(p);
        assert_int_equal(mkdir_p(d, 0755), 0);
        assert_int_equal(write_file_atomic(p, data, strlen(data), mode), 0);
}

/* Parses a container whose filesystems are given as XML and checks its sources. */
static int check_sources(const char *init, const char *filesystems, struct dv_error *err) {
        _cleanup_free_ char *xml = NULL;
        assert_true(
                asprintf(&xml,
                         "<domain type='lxc'>\n<name>src</name>\n<memory unit='MiB'>64</memory>\n"
                         "<os><type>exe</type>\n<init>%s</init></os>\n<devices>\n%s</devices>\n"
                         "</domain>\n",
                         init, filesystems) > 0);
        struct dv_object *o = test_parse_string_ok(xml, "src");
        _cleanup_free_ char *templates = path_join(tmp, "templates");
        struct lxc_plan_ctx ctx = fixed_ctx(CGROUP_V1, NULL);
        ctx.template_dir = templates;
        struct lxc_plan *p = NULL;
        int r = lxc_plan_build(o->def.domain, &ctx, &p, err);
        assert_int_equal(r, 0);
        r = lxc_plan_check_sources(o->def.domain, p, err);
        lxc_plan_free(p);
        dv_object_free(o);
        return r;
}

static void test_sources(void **state) {
        (void)state;
        _cleanup_free_ char *root = path_join(tmp, "root");
        write_file(root, "sbin/init", "#!/bin/sh\n", 0755);
        write_file(root, "etc/motd", "hi\n", 0644);
        _cleanup_free_ char *link = path_join(root, "init-link");
        assert_int_equal(symlink("/sbin/init", link), 0); /* absolute: inside the root */
        _cleanup_free_ char *tmpl = path_join(tmp, "templates/base");
        write_file(tmpl, "bin/init", "#!/bin/sh\n", 0755);

        char fs[1024];
        struct dv_error err = DV_ERROR_INIT;
        snprintf(fs, sizeof(fs),
                 "<filesystem type='mount'><source dir='%s'/><target dir='/'/></filesystem>\n",
                 root);
        assert_int_equal(check_sources("/sbin/init", fs, &err), 0);
        assert_int_equal(check_sources("/init-link", fs, &err), 0);

        /* A missing init, with the filesystem line of the root. */
        assert_int_equal(check_sources("/sbin/nope", fs, &err), -ENOENT);
        assert_string_equal(dv_error_message(&err),
                            "init /sbin/nope not found in the container's root filesystem "
                            "(filesystem at line 7): No such file or directory");
        dv_error_clear(&err);
        /* Not executable. */
        assert_int_equal(check_sources("/etc/motd", fs, &err), -EACCES);
        assert_non_null(strstr(dv_error_message(&err), "is not an executable file"));
        dv_error_clear(&err);

        /* A root directory that does not exist: -ENOENT naming it and the line. */
        snprintf(
                fs, sizeof(fs),
                "<filesystem type='mount'><source dir='%s/absent'/><target dir='/'/></filesystem>\n",
                tmp);
        assert_int_equal(check_sources("/sbin/init", fs, &err), -ENOENT);
        char want[1024];
        snprintf(want, sizeof(want),
                 "source directory %s/absent of <filesystem> (line 7): No such file or directory",
                 tmp);
        assert_string_equal(dv_error_message(&err), want);
        assert_int_equal(dv_error_line(&err), 7);
        dv_error_clear(&err);

        /* Templates: present, absent. */
        snprintf(
                fs, sizeof(fs),
                "<filesystem type='template'><source name='base'/><target dir='/'/></filesystem>\n");
        assert_int_equal(check_sources("/bin/init", fs, &err), 0);
        assert_int_equal(check_sources("/sbin/init", fs, &err), -ENOENT);
        dv_error_clear(&err);
        snprintf(
                fs, sizeof(fs),
                "<filesystem type='template'><source name='nosuch'/><target dir='/'/></filesystem>\n");
        assert_int_equal(check_sources("/bin/init", fs, &err), -ENOENT);
        snprintf(want, sizeof(want),
                 "template 'nosuch' of <filesystem> (line 7): %s/templates/nosuch: No such file or "
                 "directory",
                 tmp);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);

        /* A block device and an image that do not exist; a directory given as an image. */
        snprintf(
                fs, sizeof(fs),
                "<filesystem type='mount'><source dir='%s'/><target dir='/'/></filesystem>\n"
                "<filesystem type='block'><source dev='/dev/no-such-disk'/><target dir='/d'/></filesystem>\n"
                "<filesystem type='file'><source file='%s'/><target dir='/f'/></filesystem>\n",
                root, root);
        assert_int_equal(check_sources("/sbin/init", fs, &err), -ENOENT);
        assert_int_equal(err.n_problems, 2);
        assert_string_equal(err.problems[0].msg,
                            "source block device /dev/no-such-disk of <filesystem> (line 8): No "
                            "such file or directory");
        assert_non_null(strstr(err.problems[1].msg, "is not an image file"));
        dv_error_clear(&err);
}

/* ---- cgroups on fake trees ------------------------------------------------------------------ */

static void touch(const char *dir, const char *name) {
        write_file(dir, name, "", 0644);
}

static void test_cgroup_v2_fake(void **state) {
        (void)state;
        _cleanup_free_ char *root = path_join(tmp, "cg2");
        touch(root, "cgroup.controllers");
        enum cgroup_mode mode;
        bool unified;
        assert_int_equal(cgroup_detect(root, &mode, &unified), 0);
        assert_int_equal(mode, CGROUP_V2);
        assert_false(unified);

        struct dv_object *o = test_load_object(DATA "/full.xml", DV_KIND_DOMAIN);
        _cleanup_strv_free_ char **macs = macs_for(o->def.domain);
        struct lxc_plan_ctx ctx = fixed_ctx(CGROUP_V2, macs);
        ctx.cgroup_root = root;
        struct lxc_plan *p = NULL;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(lxc_plan_build(o->def.domain, &ctx, &p, &err), 0);
        /* The fake tree is no cgroupfs, where no device program can be attached: that is
         * tested on the real one (test-cgroup-bpf, tests/integration/domain-cgroup.sh). */
        assert_non_null(p->cg.bpf_dir);
        free(p->cg.bpf_dir);
        p->cg.bpf_dir = NULL;
        assert_int_equal(cgroup_create(&p->cg, &err), 0);
        _cleanup_free_ char *dir = path_join(root, "declvirt/ct-full");
        struct stat st;
        assert_int_equal(stat(dir, &st), 0);
        /* cgroupfs has the control files; the fake tree gets them from the test. */
        assert_int_equal(cgroup_apply(&p->cg, &err), -ENOENT);
        assert_non_null(strstr(dv_error_message(&err), "cannot enable the cgroup controllers"));
        dv_error_clear(&err);
        touch(root, "cgroup.subtree_control");
        _cleanup_free_ char *top = path_join(root, "declvirt");
        touch(top, "cgroup.subtree_control");
        assert_int_equal(cgroup_apply(&p->cg, &err), -ENOENT);
        assert_non_null(strstr(dv_error_message(&err), "cannot set memory limit 536870912 in "));
        dv_error_clear(&err);
        touch(dir, "memory.max");
        touch(dir, "cpu.max");
        touch(dir, "cgroup.procs");
        assert_int_equal(cgroup_apply(&p->cg, &err), 0);
        _cleanup_free_ char *mf = path_join(dir, "memory.max");
        _cleanup_free_ char *cf = path_join(dir, "cpu.max");
        _cleanup_free_ char *sf = path_join(top, "cgroup.subtree_control");
        size_t len = 0;
        _cleanup_free_ char *mv = test_read_file(mf, &len);
        _cleanup_free_ char *cv = test_read_file(cf, &len);
        _cleanup_free_ char *sv = test_read_file(sf, &len);
        assert_string_equal(mv, "536870912");
        assert_string_equal(cv, "200000 100000");
        assert_string_equal(sv, "+memory +cpu");
        assert_int_equal(cgroup_join(&p->cg, 4242, true, &err), 0);
        _cleanup_free_ char *pf = path_join(dir, "cgroup.procs");
        _cleanup_free_ char *pv = test_read_file(pf, &len);
        assert_string_equal(pv, "4242");
        pid_t *pids = NULL;
        size_t n = 0;
        assert_int_equal(cgroup_pids(&p->cg, &pids, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(pids[0], 4242);
        free(pids);
        /* Not empty (regular files in a fake tree): removal reports it, keeps trying briefly. */
        assert_true(cgroup_remove(&p->cg, 20) < 0);
        lxc_plan_free(p);
        dv_object_free(o);
}

static void test_cgroup_v1_detect(void **state) {
        (void)state;
        _cleanup_free_ char *root = path_join(tmp, "cg1");
        enum cgroup_mode mode;
        bool unified;
        assert_int_equal(cgroup_detect(root, &mode, &unified), -ENOENT);
        _cleanup_free_ char *mem = path_join(root, "memory");
        assert_int_equal(mkdir_p(mem, 0755), 0);
        assert_int_equal(cgroup_detect(root, &mode, &unified), 0);
        assert_int_equal(mode, CGROUP_V1);
        assert_false(unified);
        _cleanup_free_ char *uni = path_join(root, "unified");
        touch(uni, "cgroup.controllers");
        assert_int_equal(cgroup_detect(root, &mode, &unified), 0);
        assert_true(unified);
}

/* /proc/self/cgroup of this process: the check matches what it says, by controller. */
static void test_cgroup_contains_self(void **state) {
        (void)state;
        size_t len = 0;
        _cleanup_free_ char *s = test_read_file("/proc/self/cgroup", &len);
        char *line = strstr(s, ":memory:");
        struct cgroup_set p = {0};
        if (line) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                p.check_ctrl = "memory";
                p.check_path = line + 8;
        } else {
                line = strstr(s, "0::");
                if (!line)
                        skip();
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                p.check_ctrl = "";
                p.check_path = line + 3;
        }
        assert_true(cgroup_contains(&p, getpid()));
        p.check_path = "/declvirt/not-this";
        assert_false(cgroup_contains(&p, getpid()));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_plans_v2),
                cmocka_unit_test(test_golden_privileged),
                cmocka_unit_test(test_memory_floor),
                cmocka_unit_test(test_veth_names),
                cmocka_unit_test_setup_teardown(test_sources, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_cgroup_v2_fake, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_cgroup_v1_detect, setup_tmp, teardown_tmp),
                cmocka_unit_test(test_cgroup_contains_self),
        };
        _cleanup_strv_free_ char **files = test_list_dir(DATA, ".xml");
        _cleanup_free_ char **golden = test_filter_base_prefix(files, "refused", false);
        _cleanup_free_ char **refused = test_filter_base_prefix(files, "refused", true);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", golden, test_golden_plan, 4);
        test_list_add_files(&l, "refused", refused, test_refused, 2);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-lxc-plan");
}
