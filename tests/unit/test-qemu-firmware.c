/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UEFI firmware selection from the descriptors in tests/data/qemu/firmware (and from the
 * host's, when the ovmf package is installed), and the domain's NVRAM made from its
 * template. */
#include <errno.h>
#include <fcntl.h>
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

#include "drivers/domain/qemu-firmware.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/fs.h"
#include "util/macro.h"

#define FW_DIR "tests/data/qemu/firmware"

static char *dom_xml(const char *machine, const char *firmware_children) {
        char *s = NULL;
        assert_true(asprintf(&s,
                             "<domain type='kvm'><name>fw</name><memory unit='MiB'>64</memory>"
                             "<os firmware='efi'><type arch='x86_64' machine='%s'>hvm</type>%s"
                             "</os></domain>",
                             machine, firmware_children) > 0);
        return s;
}

/* select on the test descriptors; returns the result and fills *f. */
static int select_for(const char *machine, const char *children, char *const *dirs,
                      struct qemu_firmware *f, struct dv_error *err) {
        _cleanup_free_ char *xml = dom_xml(machine, children);
        struct dv_object *o = test_parse_string_ok(xml, "firmware test domain");
        char *const def_dirs[] = {FW_DIR, NULL};
        int r = qemu_firmware_select(o->def.domain, "/nv/fw_VARS.fd", dirs ? dirs : def_dirs, f,
                                     err);
        dv_object_free(o);
        return r;
}

static void test_select(void **state) {
        (void)state;
        static const struct {
                const char *machine, *children, *code, *vars;
                bool smm;
        } cases[] = {
                /* pc: only the plain firmware targets i440fx. */
                {"pc", "", "/test/fw/CODE.fd", "/test/fw/VARS.fd", false},
                {"pc-i440fx-7.2", "", "/test/fw/CODE.fd", "/test/fw/VARS.fd", false},
                /* q35 with nothing asked: the first in name order, as libvirt picks. */
                {"q35", "", "/test/fw/CODE.secboot.fd", "/test/fw/VARS.ms.fd", true},
                {"q35", "<firmware><feature enabled='no' name='secure-boot'/></firmware>",
                 "/test/fw/CODE.fd", "/test/fw/VARS.fd", false},
                {"pc-q35-7.2",
                 "<firmware><feature enabled='yes' name='secure-boot'/>"
                 "<feature enabled='no' name='enrolled-keys'/></firmware>",
                 "/test/fw/CODE.secboot.fd", "/test/fw/VARS.fd", true},
                /* A written loader is used as it is; the descriptor naming it gives SMM. */
                {"q35", "<loader readonly='yes' type='pflash'>/test/fw/CODE.secboot.fd</loader>",
                 "/test/fw/CODE.secboot.fd", "/test/fw/VARS.ms.fd", true},
                {"q35", "<loader readonly='yes' type='pflash'>/elsewhere/CODE.fd</loader>",
                 "/elsewhere/CODE.fd", NULL, false},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct qemu_firmware f = {0};
                struct dv_error err = DV_ERROR_INIT;
                if (select_for(cases[i].machine, cases[i].children, NULL, &f, &err) < 0)
                        fail_msg("case %zu: %s", i, dv_error_message(&err));
                assert_string_equal(f.code, cases[i].code);
                if (cases[i].vars)
                        assert_string_equal(f.vars_template, cases[i].vars);
                else
                        assert_null(f.vars_template);
                assert_int_equal(f.requires_smm, cases[i].smm);
                assert_string_equal(f.nvram, "/nv/fw_VARS.fd");
                qemu_firmware_done(&f);
        }
}

static void test_refusals(void **state) {
        (void)state;
        struct qemu_firmware f = {0};
        struct dv_error err = DV_ERROR_INIT;
        /* Secure boot on i440fx: no descriptor has it. */
        assert_int_equal(select_for("pc",
                                    "<firmware><feature enabled='yes' name='secure-boot'/>"
                                    "</firmware>",
                                    NULL, &f, &err),
                         -EBUSY);
        const char *m = dv_error_message(&err);
        assert_non_null(strstr(m, "no firmware descriptor in " FW_DIR));
        assert_non_null(strstr(m, "machine pc, with secure boot"));
        assert_non_null(strstr(m, "ovmf"));
        dv_error_clear(&err);
        /* No descriptor at all. */
        char *const none[] = {"/nonexistent", NULL};
        assert_int_equal(select_for("q35", "", none, &f, &err), -EBUSY);
        dv_error_clear(&err);
        /* An empty file of the same name in an earlier directory hides a descriptor; a
         * broken one is named. */
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-fw");
        _cleanup_free_ char *mask = path_join(dir, "60-plain.json");
        assert_int_equal(write_file_atomic(mask, "", 0, 0644), 0);
        char *const masked[] = {dir, FW_DIR, NULL};
        assert_int_equal(select_for("pc", "", masked, &f, &err), -EBUSY);
        dv_error_clear(&err);
        _cleanup_free_ char *bad = path_join(dir, "10-bad.json");
        assert_int_equal(write_file_atomic(bad, "{ not json", 10, 0644), 0);
        assert_int_equal(select_for("pc", "", masked, &f, &err), -EINVAL);
        assert_non_null(strstr(dv_error_message(&err), bad));
        dv_error_clear(&err);
        /* An unknown firmware feature is refused by the model, naming it. */
        _cleanup_free_ char *xml =
                dom_xml("q35", "<firmware><feature enabled='yes' name='x'/></firmware>");
        struct dv_object *o = NULL;
        assert_true(dv_object_parse(xml, strlen(xml), "x.xml", &o, &err) < 0);
        assert_non_null(strstr(dv_error_message(&err), "firmware feature"));
        dv_error_clear(&err);
        test_rm_rf(dir);
}

/* The host's own descriptors (Debian's ovmf): pc gets a firmware whose files exist. */
static void test_host_descriptors(void **state) {
        (void)state;
        if (access("/usr/share/qemu/firmware", F_OK) < 0) {
                print_message("skipped: no /usr/share/qemu/firmware (ovmf not installed)\n");
                skip();
                return;
        }
        struct qemu_firmware f = {0};
        struct dv_error err = DV_ERROR_INIT;
        _cleanup_free_ char *xml = dom_xml("pc", "");
        struct dv_object *o = test_parse_string_ok(xml, "host firmware");
        if (qemu_firmware_select(o->def.domain, "/nv/x_VARS.fd", NULL, &f, &err) < 0)
                fail_msg("%s", dv_error_message(&err));
        assert_int_equal(access(f.code, R_OK), 0);
        assert_int_equal(access(f.vars_template, R_OK), 0);
        assert_non_null(f.descriptor);
        qemu_firmware_done(&f);
        dv_object_free(o);
}

static void test_nvram_create(void **state) {
        (void)state;
        _cleanup_free_ char *dir = test_mkdtemp("declvirt-nv");
        _cleanup_free_ char *tmpl = path_join(dir, "VARS.fd");
        _cleanup_free_ char *nv = path_join(dir, "sub/dom_VARS.fd");
        assert_int_equal(write_file_atomic(tmpl, "TEMPLATE", 8, 0644), 0);
        struct qemu_firmware f = {.vars_template = tmpl, .nvram = nv};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(qemu_firmware_nvram_create(&f, &err), 0);
        size_t len = 0;
        _cleanup_free_ char *got = test_read_file(nv, &len);
        assert_int_equal(len, 8);
        assert_memory_equal(got, "TEMPLATE", 8);
        struct stat st;
        assert_int_equal(stat(nv, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* The guest's own data now: kept as it is at the next start. */
        assert_int_equal(write_file_atomic(nv, "GUEST", 5, 0600), 0);
        assert_int_equal(qemu_firmware_nvram_create(&f, &err), 0);
        free(got);
        got = test_read_file(nv, &len);
        assert_int_equal(len, 5);
        /* A symlink planted in its place is refused, its target untouched. */
        assert_int_equal(unlink(nv), 0);
        assert_int_equal(symlink(tmpl, nv), 0);
        assert_int_equal(qemu_firmware_nvram_create(&f, &err), -EBADF);
        assert_non_null(strstr(dv_error_message(&err), nv));
        dv_error_clear(&err);
        /* No template and no file: an error naming the NVRAM. */
        assert_int_equal(unlink(nv), 0);
        f.vars_template = NULL;
        assert_int_equal(qemu_firmware_nvram_create(&f, &err), -ENOENT);
        dv_error_clear(&err);
        test_rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_select),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_host_descriptors),
                cmocka_unit_test(test_nvram_create),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
