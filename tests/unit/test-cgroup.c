/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <memtune>, <cputune> and <blkiotune> (model/domain-tune.c): values, units, libvirt's
 * ranges and line-numbered errors; cpusets. The per-domain cgroup set
 * (drivers/domain/cgroup.c) built from them for QEMU and containers on v1 and v2, and
 * applied to a fake cgroup tree: values written, the parent's cpuset copied, the reason
 * when the host lacks a file, a character device refused as a blkio device, refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/domain/cgroup-bpf.h"
#include "drivers/domain/cgroup.h"
#include "drivers/domain/qemu-cgroup.h"
#include "model/domain.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"

static char *tmp;

static int setup_tmp(void **state) {
        (void)state;
        tmp = test_mkdtemp("dvt-cgroup");
        return tmp ? 0 : -1;
}

static int teardown_tmp(void **state) {
        (void)state;
        test_rm_rf(tmp);
        free(tmp);
        tmp = NULL;
        return 0;
}

/* A qemu domain with body after <vcpu> (on line 5). */
static char *domain_xml(unsigned vcpus, const char *body) {
        char *s = NULL;
        assert_true(asprintf(&s,
                             "<domain type='qemu'>\n<name>t</name>\n<memory "
                             "unit='MiB'>64</memory>\n<vcpu>%u</vcpu>\n%s\n<os><type>hvm</type></"
                             "os>\n</domain>\n",
                             vcpus, body) > 0);
        return s;
}

/* "LINE: MESSAGE" of the first problem, or "(accepted)". */
static char *first_problem(unsigned vcpus, const char *body) {
        _cleanup_free_ char *xml = domain_xml(vcpus, body);
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        char *s = NULL;
        if (dv_object_parse(xml, strlen(xml), "t.xml", &o, &err) >= 0)
                s = strdup("(accepted)");
        else
                assert_true(asprintf(&s, "%d: %s", dv_error_line(&err), dv_error_message(&err)) >
                            0);
        dv_object_free(o);
        dv_error_clear(&err);
        return s;
}

static struct dv_object *parse_ok(unsigned vcpus, const char *body) {
        _cleanup_free_ char *xml = domain_xml(vcpus, body);
        return test_parse_string_ok(xml, "tune");
}

static void test_values(void **state) {
        (void)state;
        struct dv_object *o = parse_ok(
                4, "<memtune><hard_limit unit='MiB'>1</hard_limit><soft_limit>100</soft_limit>"
                   "<swap_hard_limit unit='bytes'>1048577</swap_hard_limit>"
                   "<min_guarantee unit='KiB'>7</min_guarantee></memtune>"
                   "<cputune><shares>2</shares><period>1000</period><quota>-5</quota>"
                   "<global_quota>1000</global_quota><vcpupin vcpu='3' cpuset='0-2,^1'/>"
                   "</cputune><blkiotune><weight>10</weight><device><path>/dev/sda</path>"
                   "<write_bytes_sec>0</write_bytes_sec></device></blkiotune>");
        const struct domain_tune *t = &o->def.domain->tune;
        assert_true(t->has_hard_limit && t->has_soft_limit && t->has_swap_hard_limit);
        assert_int_equal(t->hard_limit_kib, 1024);
        assert_int_equal(t->soft_limit_kib, 100);       /* KiB by default, as libvirt */
        assert_int_equal(t->swap_hard_limit_kib, 1025); /* rounded up */
        assert_int_equal(t->min_guarantee_kib, 7);
        assert_int_equal(t->shares, 2);
        assert_int_equal(t->period, 1000);
        assert_int_equal(t->quota, -1); /* any negative: no limit */
        assert_false(t->has_global_period);
        assert_int_equal(t->global_quota, 1000);
        assert_int_equal(t->n_vcpupins, 1);
        assert_int_equal(t->vcpupins[0].vcpu, 3);
        assert_string_equal(t->vcpupins[0].cpuset, "0-2,^1");
        assert_int_equal(t->blkio_weight, 10);
        assert_int_equal(t->n_blkio_devs, 1);
        assert_true(t->blkio_devs[0].has_write_bytes);
        assert_int_equal(t->blkio_devs[0].write_bytes_sec, 0);
        assert_false(t->blkio_devs[0].has_read_bytes);
        dv_object_free(o);
}

static void test_errors(void **state) {
        (void)state;
        static const struct {
                unsigned vcpus;
                const char *body, *expected;
        } cases[] = {
                {1, "<cputune>\n<shares>-1</shares></cputune>",
                 "6: <shares> '-1' is not a whole number from 2 to 262144"},
                {1, "<cputune>\n<period>999</period></cputune>",
                 "6: <period> '999' is not a whole number from 1000 to 1000000"},
                {1, "<cputune>\n<quota>10</quota></cputune>",
                 "6: <quota> '10' must be -1 (no limit) or from 1000 to 17592186044415"},
                {1, "<cputune>\n<quota>1e5</quota></cputune>",
                 "6: <quota> '1e5' must be -1 (no limit) or from 1000 to 17592186044415"},
                {2, "<cputune>\n<vcpupin vcpu='2' cpuset='0'/></cputune>",
                 "6: <vcpupin vcpu='2'>: the domain has 2 vCPUs (0 to 1)"},
                {1, "<cputune>\n<vcpupin vcpu='0' cpuset='0-'/></cputune>",
                 "6: <vcpupin> cpuset '0-' is not a CPU list such as '0-3,^2' (CPUs below 1024, "
                 "at least one)"},
                {1, "<cputune>\n<emulatorpin cpuset='1,^1'/></cputune>",
                 "6: <emulatorpin> cpuset '1,^1' is not a CPU list such as '0-3,^2' (CPUs below "
                 "1024, at least one)"},
                {1, "<cputune>\n<emulatorpin cpuset='1024'/></cputune>",
                 "6: <emulatorpin> cpuset '1024' is not a CPU list such as '0-3,^2' (CPUs below "
                 "1024, at least one)"},
                {2,
                 "<cputune><vcpupin vcpu='1' cpuset='0'/>\n<vcpupin vcpu='1' cpuset='1'/>"
                 "</cputune>",
                 "6: vCPU 1 is pinned twice (first on line 5)"},
                {1, "<cputune>\n<iothreadpin iothread='1' cpuset='0'/></cputune>",
                 "6: <iothreadpin> in <cputune> is not supported (declvirt applies shares, "
                 "period, quota, global_period, global_quota, vcpupin and emulatorpin)"},
                {1, "<cputune>\n<vcpusched vcpus='0' scheduler='fifo'/></cputune>",
                 "6: <vcpusched> in <cputune> is not supported (declvirt applies shares, "
                 "period, quota, global_period, global_quota, vcpupin and emulatorpin)"},
                {1, "<cputune>\n<shares>2</shares><shares>3</shares></cputune>",
                 "6: more than one <shares> in <cputune> (the first is on line 6)"},
                {1, "<memtune>\n<hard_limit unit='lightyears'>1</hard_limit></memtune>",
                 "6: <hard_limit>: unknown unit 'lightyears'"},
                {1, "<memtune>\n<hard_limit>-1</hard_limit></memtune>",
                 "6: <hard_limit>: negative size '-1'"},
                {1,
                 "<memtune><hard_limit>2048</hard_limit>\n<swap_hard_limit>1024</"
                 "swap_hard_limit></memtune>",
                 "6: <swap_hard_limit> (1024 KiB) is below <hard_limit> (2048 KiB): it limits "
                 "memory and swap together"},
                {1, "<memtune/>\n<memtune/>",
                 "6: element <memtune> appears more than once in <domain> (first on line 5)"},
                {1, "<blkiotune>\n<weight>5</weight></blkiotune>",
                 "6: <weight> '5' is not a whole number from 10 to 1000"},
                {1, "<blkiotune>\n<device><weight>100</weight></device></blkiotune>",
                 "6: <device> in <blkiotune> needs a <path>"},
                {1, "<blkiotune><device>\n<path>sda</path></device></blkiotune>",
                 "6: <path> 'sda' in <blkiotune> is not an absolute path"},
                {1,
                 "<blkiotune><device><path>/dev/a</path></device>\n<device><path>/dev/a</"
                 "path></device></blkiotune>",
                 "6: device /dev/a appears twice in <blkiotune> (first on line 5)"},
                {1,
                 "<blkiotune><device><path>/dev/a</path>\n<read_bytes_sec>x</read_bytes_sec>"
                 "</device></blkiotune>",
                 "6: <read_bytes_sec> 'x' is not a whole number from 0 to "
                 "18446744073709551615"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = first_problem(cases[i].vcpus, cases[i].body);
                if (!streq(got, cases[i].expected))
                        fail_msg("case %zu:\n  got:      %s\n  expected: %s", i, got,
                                 cases[i].expected);
        }
}

static void test_cpuset(void **state) {
        (void)state;
        struct domain_cpuset c;
        char buf[64];
        assert_int_equal(domain_cpuset_parse("0-3,^2,8,10-11", &c), 0);
        domain_cpuset_format(&c, buf, sizeof(buf));
        assert_string_equal(buf, "0-1,3,8,10-11");
        assert_int_equal(domain_cpuset_parse("1023", &c), 0);
        assert_true(domain_cpuset_has(&c, 1023));
        assert_false(domain_cpuset_has(&c, 0));
        assert_int_equal(domain_cpuset_parse("^1", &c), -ERANGE);
        assert_int_equal(domain_cpuset_parse("3-1", &c), -EINVAL);
        assert_int_equal(domain_cpuset_parse("", &c), -EINVAL);
        assert_int_equal(domain_cpuset_parse("1,", &c), -EINVAL);
        assert_int_equal(domain_cpuset_parse("1024", &c), -EINVAL);
        assert_int_equal(domain_cpuset_parse("^1-2", &c), -EINVAL);
}

/* ---- the set -------------------------------------------------------------------------------- */

static const char *const devs[] = {"c 1:3 rw", NULL};
static const struct cgroup_want qemu_want = {
        .devices = devs, .vcpu_pins = true, .accounting = true};

static char *set_text(const struct cgroup_set *s) {
        char *t = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&t, &n);
        assert_non_null(f);
        cgroup_set_print(s, f);
        fclose(f);
        return t;
}

#define V1 (&(struct cgroup_layout){"/cg", "declvirt", CGROUP_V1, true, true})
#define V2 (&(struct cgroup_layout){"/cg", "declvirt", CGROUP_V2, false, false})

static void test_set_v1_qemu(void **state) {
        (void)state;
        struct dv_object *o = parse_ok(
                2, "<memtune><hard_limit>1024</hard_limit><soft_limit>512</soft_limit>"
                   "<swap_hard_limit>2048</swap_hard_limit></memtune><cputune><shares>100</shares>"
                   "<quota>30000</quota><vcpupin vcpu='1' cpuset='3'/><emulatorpin cpuset='1'/>"
                   "</cputune><blkiotune><weight>300</weight><device><path>/dev/x</path>"
                   "<read_iops_sec>5</read_iops_sec></device></blkiotune>");
        struct cgroup_set s;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cgroup_set_build(V1, o->def.domain, &qemu_want, &s, &err), 0);
        _cleanup_free_ char *text = set_text(&s);
        assert_string_equal(
                text, "cgroup /cg/memory/declvirt/t\n"
                      "cgroup /cg/cpu/declvirt/t\n"
                      "cgroup /cg/cpuacct/declvirt/t\n"
                      "cgroup /cg/cpuset/declvirt/t\n"
                      "cgroup /cg/blkio/declvirt/t\n"
                      "cgroup /cg/pids/declvirt/t\n"
                      "cgroup /cg/unified/declvirt/t\n"
                      "cgroup /cg/devices/declvirt/t\n"
                      "limit devices /cg/devices/declvirt/t/devices.deny = a\n"
                      "limit devices /cg/devices/declvirt/t/devices.allow = c 1:3 rw\n"
                      "limit memory /cg/memory/declvirt/t/memory.limit_in_bytes = 1048576\n"
                      "limit memory soft /cg/memory/declvirt/t/memory.soft_limit_in_bytes = "
                      "524288\n"
                      "limit memory and swap /cg/memory/declvirt/t/memory.memsw.limit_in_bytes = "
                      "2097152\n"
                      "limit cpu shares /cg/cpu/declvirt/t/cpu.shares = 100\n"
                      "limit cpu quota /cg/cpu/declvirt/t/cpu.cfs_period_us = 100000\n"
                      "limit cpu quota /cg/cpu/declvirt/t/cpu.cfs_quota_us = 60000\n"
                      "limit cpuset /cg/cpuset/declvirt/cpuset.cpus = (the parent's)\n"
                      "limit cpuset /cg/cpuset/declvirt/cpuset.mems = (the parent's)\n"
                      "limit cpuset /cg/cpuset/declvirt/t/cpuset.mems = (the parent's)\n"
                      "limit cpuset /cg/cpuset/declvirt/t/cpuset.cpus = 1,3\n"
                      "limit blkio weight /cg/blkio/declvirt/t/blkio.weight = 300\n"
                      "limit blkio throttle /cg/blkio/declvirt/t/blkio.throttle.read_iops_device "
                      "= (/dev/x) 5\n");
        assert_string_equal(s.cpuset, "1,3");
        cgroup_set_done(&s);
        dv_object_free(o);
}

static void test_set_v2(void **state) {
        (void)state;
        struct dv_object *o = parse_ok(
                2, "<memtune><hard_limit>1024</hard_limit><swap_hard_limit>3072</swap_hard_limit>"
                   "<min_guarantee>4</min_guarantee></memtune><cputune><shares>262144</shares>"
                   "<global_period>200000</global_period><global_quota>50000</global_quota>"
                   "<quota>-1</quota><emulatorpin cpuset='0'/></cputune><blkiotune><device>"
                   "<path>/dev/x</path><weight>20</weight><write_bytes_sec>9</write_bytes_sec>"
                   "</device></blkiotune>");
        struct cgroup_set s;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cgroup_set_build(V2, o->def.domain, &qemu_want, &s, &err), 0);
        _cleanup_free_ char *text = set_text(&s);
        assert_string_equal(
                text, "cgroup /cg/declvirt/t\n"
                      "limit controllers /cg/cgroup.subtree_control = +memory +cpu +cpuset +io "
                      "+pids\n"
                      "limit controllers /cg/declvirt/cgroup.subtree_control = +memory +cpu "
                      "+cpuset +io +pids\n"
                      "limit memory /cg/declvirt/t/memory.max = 1048576\n"
                      "limit swap /cg/declvirt/t/memory.swap.max = 2097152\n"
                      "limit memory guarantee /cg/declvirt/t/memory.min = 4096\n"
                      "limit cpu shares /cg/declvirt/t/cpu.weight = 10000\n"
                      "limit cpu quota /cg/declvirt/t/cpu.max = 50000 200000\n"
                      "limit cpuset /cg/declvirt/t/cpuset.cpus = 0\n"
                      "limit blkio weight /cg/declvirt/t/io.weight = (/dev/x) 20\n"
                      "limit blkio throttle /cg/declvirt/t/io.max = (/dev/x) rbps=max wbps=9 "
                      "riops=max wiops=max\n"
                      "devices not-controlled (no cgroup v1 devices controller)\n");
        cgroup_set_done(&s);
        dv_object_free(o);
}

/* Containers: <memory> and <vcpu> are the limits unless <memtune>/<cputune> say more. */
static void test_set_container(void **state) {
        (void)state;
        static const struct cgroup_want ct = {.devices = devs, .vcpu_cap = true};
        struct dv_object *o = parse_ok(2, "");
        struct cgroup_set s;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cgroup_set_build(V1, o->def.domain, &ct, &s, &err), 0);
        _cleanup_free_ char *a = set_text(&s);
        assert_non_null(strstr(a, "memory.limit_in_bytes = 67108864\n"));
        assert_non_null(strstr(a, "limit vcpus /cg/cpu/declvirt/t/cpu.cfs_quota_us = 200000\n"));
        assert_null(strstr(a, "cpuacct"));
        cgroup_set_done(&s);
        dv_object_free(o);

        o = parse_ok(2, "<memtune><hard_limit>2048</hard_limit></memtune><cputune><period>"
                        "50000</period><quota>10000</quota></cputune>");
        assert_int_equal(cgroup_set_build(V1, o->def.domain, &ct, &s, &err), 0);
        _cleanup_free_ char *b = set_text(&s);
        assert_non_null(strstr(b, "memory.limit_in_bytes = 2097152\n"));
        assert_non_null(strstr(b, "cpu.cfs_period_us = 50000\n"));
        assert_non_null(strstr(b, "cpu.cfs_quota_us = 20000\n"));
        cgroup_set_done(&s);
        dv_object_free(o);

        /* Refused, with the reason and the line. */
        o = parse_ok(2, "<cputune>\n<vcpupin vcpu='0' cpuset='0'/></cputune>");
        assert_int_equal(cgroup_set_build(V1, o->def.domain, &ct, &s, &err), -EOPNOTSUPP);
        assert_int_equal(dv_error_line(&err), 6);
        assert_string_equal(dv_error_message(&err),
                            "<vcpupin> cannot be applied: a container has no vCPU threads "
                            "(<emulatorpin> pins all of it)");
        dv_error_clear(&err);
        dv_object_free(o);
}

static void test_set_refused(void **state) {
        (void)state;
        const struct {
                const struct cgroup_layout *l;
                const char *body, *expected;
        } cases[] = {
                {V1, "<memtune>\n<min_guarantee>4</min_guarantee></memtune>",
                 "6: <min_guarantee> cannot be applied: cgroup v1 has no memory guarantee "
                 "(cgroup v2's memory.min has)"},
                {V2, "<memtune>\n<swap_hard_limit>4</swap_hard_limit></memtune>",
                 "6: <swap_hard_limit> cannot be applied: on cgroup v2 it needs a <hard_limit> "
                 "(memory.swap.max counts swap alone)"},
                {V1, "<cputune>\n<emulator_quota>2000</emulator_quota></cputune>",
                 "6: <emulator_period/emulator_quota> cannot be applied: the emulator's and "
                 "the vCPUs' threads share one cgroup; use <global_quota> or <quota>"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct dv_object *o = parse_ok(1, cases[i].body);
                struct cgroup_set s;
                struct dv_error err = DV_ERROR_INIT;
                assert_int_equal(cgroup_set_build(cases[i].l, o->def.domain, &qemu_want, &s, &err),
                                 -EOPNOTSUPP);
                _cleanup_free_ char *got = NULL;
                assert_true(asprintf(&got, "%d: %s", dv_error_line(&err), dv_error_message(&err)) >
                            0);
                if (!streq(got, cases[i].expected))
                        fail_msg("case %zu:\n  got:      %s\n  expected: %s", i, got,
                                 cases[i].expected);
                dv_error_clear(&err);
                dv_object_free(o);
        }
}

/* The smaller of the per-vCPU and the global rate wins: one cgroup enforces both. */
static void test_quota_choice(void **state) {
        (void)state;
        struct dv_object *o = parse_ok(4, "<cputune><quota>10000</quota><global_period>"
                                          "100000</global_period><global_quota>30000</"
                                          "global_quota></cputune>");
        struct cgroup_set s;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cgroup_set_build(V1, o->def.domain, &qemu_want, &s, &err), 0);
        _cleanup_free_ char *a = set_text(&s);
        /* 4 x 10000 = 40000 per 100000 against 30000: the global one. */
        assert_non_null(strstr(a, "cpu.cfs_quota_us = 30000\n"));
        cgroup_set_done(&s);
        dv_object_free(o);
}

/* ---- applied to a fake tree ------------------------------------------------------------------ */

static void put(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *p = path_join(dir, name);
        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(write_file_atomic(p, content, strlen(content), 0644), 0);
}

static char *get(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join(dir, name);
        size_t len = 0;
        return test_read_file(p, &len);
}

static void test_apply_fake_v1(void **state) {
        (void)state;
        _cleanup_free_ char *root = path_join(tmp, "cg");
        const char *hier[] = {"memory", "cpu", "cpuset", "devices"};
        for (size_t i = 0; i < ELEMENTSOF(hier); i++) {
                _cleanup_free_ char *h = path_join(root, hier[i]);
                assert_int_equal(mkdir_p(h, 0755), 0);
        }
        _cleanup_free_ char *cpuset_root = path_join(root, "cpuset");
        put(cpuset_root, "cpuset.cpus", "0-7\n");
        put(cpuset_root, "cpuset.mems", "0\n");
        struct cgroup_layout l = {root, "declvirt", CGROUP_V1, false, true};
        struct dv_object *o = parse_ok(1, "<memtune><hard_limit>4</hard_limit><swap_hard_limit>"
                                          "8</swap_hard_limit></memtune><cputune><vcpupin "
                                          "vcpu='0' cpuset='2'/></cputune>");
        struct cgroup_set s;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(cgroup_set_build(&l, o->def.domain, &qemu_want, &s, &err), 0);
        /* cpuacct and pids are missing: refused rather than made in the tmpfs. */
        assert_int_equal(cgroup_create(&s, &err), -EOPNOTSUPP);
        assert_non_null(strstr(dv_error_message(&err), "the host has no cgroup hierarchy at "));
        dv_error_clear(&err);
        cgroup_set_done(&s);
        static const struct cgroup_want w = {.devices = devs, .vcpu_pins = true};
        assert_int_equal(cgroup_set_build(&l, o->def.domain, &w, &s, &err), 0);
        assert_int_equal(cgroup_create(&s, &err), 0);
        _cleanup_free_ char *mem = path_join(root, "memory/declvirt/t");
        _cleanup_free_ char *dev = path_join(root, "devices/declvirt/t");
        _cleanup_free_ char *cs = path_join(root, "cpuset/declvirt/t");
        _cleanup_free_ char *cs_top = path_join(root, "cpuset/declvirt");
        put(dev, "devices.deny", "");
        put(dev, "devices.allow", "");
        put(mem, "memory.limit_in_bytes", "");
        /* No memory.memsw.*: the reason, not just ENOENT. */
        assert_int_equal(cgroup_apply(&s, &err), -EOPNOTSUPP);
        assert_string_equal(dv_error_message(&err),
                            "cannot set memory and swap 8192: the host has no swap accounting (no "
                            "memory.memsw.limit_in_bytes: boot with swapaccount=1)");
        dv_error_clear(&err);
        put(mem, "memory.memsw.limit_in_bytes", "");
        put(cs_top, "cpuset.cpus", "");
        put(cs_top, "cpuset.mems", "");
        put(cs, "cpuset.cpus", "");
        put(cs, "cpuset.mems", "");
        assert_int_equal(cgroup_apply(&s, &err), 0);
        _cleanup_free_ char *v1 = get(mem, "memory.limit_in_bytes");
        _cleanup_free_ char *v2 = get(mem, "memory.memsw.limit_in_bytes");
        _cleanup_free_ char *v3 = get(cs_top, "cpuset.cpus");
        _cleanup_free_ char *v4 = get(cs, "cpuset.mems");
        _cleanup_free_ char *v5 = get(cs, "cpuset.cpus");
        _cleanup_free_ char *v6 = get(dev, "devices.allow");
        assert_string_equal(v1, "4096");
        assert_string_equal(v2, "8192");
        assert_string_equal(v3, "0-7");
        assert_string_equal(v4, "0");
        /* vcpupin alone: the cgroup keeps the parent's CPUs, the thread gets its own. */
        assert_string_equal(v5, "0-7");
        assert_string_equal(v6, "c 1:3 rw");
        /* The members' files, for the child to join. */
        put(mem, "cgroup.procs", "");
        int *fds = NULL;
        size_t n = 0;
        assert_true(cgroup_open_members(&s, &fds, &n, NULL, &err) < 0); /* cpu's is missing */
        dv_error_clear(&err);
        for (size_t i = 0; s.dirs[i]; i++)
                put(s.dirs[i], "cgroup.procs", "");
        assert_int_equal(cgroup_open_members(&s, &fds, &n, NULL, &err), 0);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(write(fds[i], "0", 1), 1);
                close(fds[i]);
        }
        free(fds);
        _cleanup_free_ char *procs = get(s.dirs[0], "cgroup.procs");
        assert_string_equal(procs, "0");
        cgroup_set_done(&s);
        dv_object_free(o);
}

static void test_apply_blkio_device(void **state) {
        (void)state;
        _cleanup_free_ char *root = path_join(tmp, "cgb");
        _cleanup_free_ char *blk = path_join(root, "blkio");
        assert_int_equal(mkdir_p(blk, 0755), 0);
        struct cgroup_layout l = {root, "declvirt", CGROUP_V1, false, false};
        static const struct cgroup_want w = {.vcpu_pins = true};
        struct dv_object *o = parse_ok(1, "<blkiotune><weight>100</weight><device><path>/dev/"
                                          "null</path><read_bytes_sec>1</read_bytes_sec></"
                                          "device></blkiotune>");
        struct cgroup_set s;
        struct dv_error err = DV_ERROR_INIT;
        /* Only blkio here: a fake tree with memory and cpu too. */
        _cleanup_free_ char *m = path_join(root, "memory");
        _cleanup_free_ char *c = path_join(root, "cpu");
        assert_int_equal(mkdir_p(m, 0755), 0);
        assert_int_equal(mkdir_p(c, 0755), 0);
        assert_int_equal(cgroup_set_build(&l, o->def.domain, &w, &s, &err), 0);
        assert_int_equal(cgroup_create(&s, &err), 0);
        _cleanup_free_ char *dir = path_join(root, "blkio/declvirt/t");
        /* Neither weight file: the reason. */
        assert_int_equal(cgroup_apply(&s, &err), -EOPNOTSUPP);
        assert_string_equal(dv_error_message(&err),
                            "cannot set blkio weight 100: the host's I/O schedulers take no "
                            "weights (neither blkio.weight nor blkio.bfq.weight: use BFQ or CFQ)");
        dv_error_clear(&err);
        /* BFQ's name is used when it is the one there. */
        put(dir, "blkio.bfq.weight", "");
        put(dir, "blkio.throttle.read_bps_device", "");
        assert_int_equal(cgroup_apply(&s, &err), -EINVAL);
        assert_string_equal(dv_error_message(&err),
                            "cannot set blkio throttle on /dev/null: not a block device");
        dv_error_clear(&err);
        _cleanup_free_ char *w1 = get(dir, "blkio.bfq.weight");
        assert_string_equal(w1, "100");
        assert_true(cgroup_remove(&s, 0) < 0); /* regular files inside: not removable */
        cgroup_set_done(&s);
        dv_object_free(o);
}

/* QEMU's status flag: device control exists with a v1 devices controller, or on cgroup
 * v2 when the kernel can load a device program (root, here). */
static void test_device_control(void **state) {
        (void)state;
        _cleanup_free_ char *v2 = path_join(tmp, "v2");
        _cleanup_free_ char *v1 = path_join(tmp, "v1");
        _cleanup_free_ char *v1dev = path_join(v1, "devices");
        _cleanup_free_ char *v1mem = path_join(v1, "memory");
        put(v2, "cgroup.controllers", "memory cpu");
        assert_int_equal(mkdir_p(v1mem, 0755), 0);
        put(v1dev, "devices.allow", "");
        qemu_cgroup_set_config(v2, NULL);
        assert_int_equal(qemu_cgroup_device_control(), cgroup_bpf_supported() >= 0);
        qemu_cgroup_set_config(v1, NULL);
        assert_true(qemu_cgroup_device_control());
        qemu_cgroup_set_config(NULL, NULL);
}

/* QEMU's cgroup on a fake v1 tree: the device rules (the last one written is /dev/kvm's
 * only for KVM), a descriptor per hierarchy, and a cgroup that holds a process not ours
 * refused. */
static void test_qemu_prepare(void **state) {
        (void)state;
        _cleanup_free_ char *root = path_join(tmp, "q");
        const char *hier[] = {"memory", "cpu", "cpuacct", "pids", "devices"};
        for (size_t i = 0; i < ELEMENTSOF(hier); i++) {
                _cleanup_free_ char *d = NULL;
                assert_true(asprintf(&d, "%s/%s/declvirt/t", root, hier[i]) > 0);
                put(d, "cgroup.procs", "");
                if (streq(hier[i], "devices")) {
                        put(d, "devices.deny", "");
                        put(d, "devices.allow", "");
                        _cleanup_free_ char *top = path_join(root, "devices");
                        put(top, "devices.allow", "");
                }
        }
        qemu_cgroup_set_config(root, NULL);
        struct dv_object *o = parse_ok(1, "");
        struct qemu_cgroup cg;
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *dev = path_join(root, "devices/declvirt/t");
        for (int kvm = 0; kvm <= 1; kvm++) {
                assert_int_equal(qemu_cgroup_prepare(o->def.domain, kvm, &cg, &err), 0);
                assert_int_equal(cg.n_fds, 5);
                _cleanup_free_ char *last = get(dev, "devices.allow");
                /* Written in place, one rule after another: the last one is what shows. */
                assert_string_equal(last, kvm ? "c 10:232 rw" : "c 1:9 rw");
                qemu_cgroup_done(&cg);
                put(dev, "devices.allow", "");
        }
        _cleanup_free_ char *mem = path_join(root, "memory/declvirt/t");
        put(mem, "cgroup.procs", "4242\n");
        assert_int_equal(qemu_cgroup_prepare(o->def.domain, false, &cg, &err), -EBUSY);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want,
                             "the cgroup %s of domain t holds a process (PID 4242) not started "
                             "by declvirt",
                             mem) > 0);
        assert_string_equal(dv_error_message(&err), want);
        dv_error_clear(&err);
        qemu_cgroup_set_config(NULL, NULL);
        dv_object_free(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_cpuset),
                cmocka_unit_test(test_set_v1_qemu),
                cmocka_unit_test(test_set_v2),
                cmocka_unit_test(test_set_container),
                cmocka_unit_test(test_set_refused),
                cmocka_unit_test(test_quota_choice),
                cmocka_unit_test_setup_teardown(test_apply_fake_v1, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_apply_blkio_device, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_device_control, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_qemu_prepare, setup_tmp, teardown_tmp),
        };
        return cmocka_run_group_tests_name("test-cgroup", tests, NULL, NULL);
}
