/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The <volume> model: fixtures against golden output (stable, schema-valid), refused
 * files with their first message, units, sizes and formats. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/object.h"
#include "model/pool.h"
#include "model/volume.h"
#include "model/xml.h"
#include "tests/helpers/testlib.h"
#include "util/strv.h"

#define FIXTURES "tests/data/model/volume"
#define INVALID  "tests/data/invalid"
#define POLICY   "<dv:policy xmlns:dv='https://declvirt.dev/xmlns/policy/1' pool='p'/>"

/* One fixture: formats to NAME.golden.xml and back; the definition alone has no policy. */
static void test_golden(void **state) {
        struct dv_object *o = test_check_model_golden(*state, DV_KIND_VOLUME);
        _cleanup_free_ char *def = dv_object_format_def(o);
        assert_non_null(o->pool);
        assert_null(strstr(def, "policy"));
        assert_int_equal(volume_def_validate(o->def.volume, NULL), 0);
        dv_object_free(o);
}

/* Every volume file carries a policy (it names the pool), which libvirt's schema
 * has no place for: the definition is checked without it. */
static void test_schema(void **state) {
        const char *path = *state;
        struct dv_object *o = test_load_object(path, DV_KIND_VOLUME);
        _cleanup_free_ char *out =
                o->policy.present ? dv_object_format_def(o) : dv_object_format(o);
        dv_object_free(o);
        test_check_schema(path, out, "storagevol");
}

/* One of our refused files, through the same entry point as test-invalid. */
static void test_invalid_file(void **state) {
        test_check_refused_file(*state);
}

static struct dv_error refuse(const char *xml) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        int r = dv_object_parse(xml, strlen(xml), "t.xml", &o, &err);
        if (r >= 0) {
                dv_object_free(o);
                fail_msg("accepted:\n%s", xml);
        }
        assert_null(o);
        assert_true(dv_error_failed(&err));
        return err;
}

static void expect_first(const char *xml, const char *msg) {
        struct dv_error err = refuse(xml);
        if (strcmp(dv_error_message(&err), msg) != 0) {
                print_message("%s\n  expected: %s\n  actual:   %s\n", xml, msg,
                              dv_error_message(&err));
                dv_error_clear(&err);
                fail();
        }
        dv_error_clear(&err);
}

/* Every libvirt unit, with the value in bytes. */
static void test_units(void **state) {
        (void)state;
        static const struct {
                const char *unit;
                uint64_t mult;
        } units[] = {
                {"b", 1},          {"bytes", 1},        {"KB", 1000ULL},
                {"K", 1ULL << 10}, {"KiB", 1ULL << 10}, {"MB", 1000000ULL},
                {"M", 1ULL << 20}, {"MiB", 1ULL << 20}, {"GB", 1000000000ULL},
                {"G", 1ULL << 30}, {"GiB", 1ULL << 30}, {"TB", 1000000000000ULL},
                {"T", 1ULL << 40}, {"TiB", 1ULL << 40}, {"PB", 1000000000000000ULL},
                {"P", 1ULL << 50}, {"PiB", 1ULL << 50}, {"EB", 1000000000000000000ULL},
                {"E", 1ULL << 60}, {"EiB", 1ULL << 60},
        };
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                char xml[512];
                snprintf(xml, sizeof(xml),
                         "<volume><name>v</name><capacity unit='%s'>5</capacity>"
                         "<allocation unit='%s'>2</allocation><physical "
                         "unit='%s'>3</physical>" POLICY "</volume>",
                         units[i].unit, units[i].unit, units[i].unit);
                struct dv_object *o = test_parse_string_ok(xml, units[i].unit);
                const struct volume_def *v = o->def.volume;
                assert_true(v->has_capacity && v->has_allocation && v->has_physical);
                assert_int_equal(v->capacity, 5 * units[i].mult);
                assert_int_equal(v->allocation, 2 * units[i].mult);
                assert_int_equal(v->physical, 3 * units[i].mult);
                dv_object_free(o);
        }
        /* No unit: bytes. Surrounding whitespace is fine (libvirt). */
        struct dv_object *o = test_parse_string_ok(
                "<volume><name>v</name><capacity>\n 42 \n</capacity>" POLICY "</volume>", "bytes");
        assert_int_equal(o->def.volume->capacity, 42);
        assert_false(o->def.volume->has_allocation);
        dv_object_free(o);

        /* Units in any case, as libvirt reads them: 'gb' is 10^9. */
        o = test_parse_string_ok(
                "<volume><name>v</name><capacity unit='gb'>1</capacity>" POLICY "</volume>", "gb");
        assert_int_equal(o->def.volume->capacity, 1000000000ULL);
        dv_object_free(o);
        expect_first("<volume><name>v</name><capacity unit='Gx'>1</capacity>" POLICY "</volume>",
                     "<capacity>: unknown unit 'Gx'");
        expect_first("<volume><name>v</name><capacity>1.5</capacity>" POLICY "</volume>",
                     "<capacity>: '1.5' is not a number");
        expect_first("<volume><name>v</name><capacity>+1</capacity>" POLICY "</volume>",
                     "<capacity>: '+1' is not a number");
        expect_first("<volume><name>v</name><capacity></capacity>" POLICY "</volume>",
                     "<capacity>: '' is not a number");
        expect_first("<volume><name>v</name><capacity>1<b/></capacity>" POLICY "</volume>",
                     "unknown element <b> in <capacity>");
        expect_first("<volume><name>v</name><capacity unit='E'>16</capacity>" POLICY "</volume>",
                     "<capacity>: size '16 E' is too large (over 2^64 bytes)");
        expect_first("<volume><name>v</name><capacity>1</capacity><physical>-5</physical>" POLICY
                     "</volume>",
                     "<physical>: negative size '-5'");
}

static void test_sizes(void **state) {
        (void)state;
        /* Equal is fine; a sparse volume has less allocation than capacity. */
        struct dv_object *o = test_parse_string_ok(
                "<volume><name>v</name><capacity>10</capacity><allocation>10</allocation>" POLICY
                "</volume>",
                "eq");
        dv_object_free(o);
        expect_first(
                "<volume><name>v</name><capacity>10</capacity><allocation>11</allocation>" POLICY
                "</volume>",
                "allocation (11 bytes) is larger than capacity (10 bytes)");
        expect_first("<volume><name>v</name><allocation>11</allocation>" POLICY "</volume>",
                     "<volume> needs a <capacity>");
        /* A capacity that does not parse is not reported as missing as well. */
        struct dv_error err =
                refuse("<volume><name>v</name><capacity>x</capacity>" POLICY "</volume>");
        assert_int_equal(err.n_problems, 1);
        dv_error_clear(&err);
}

static void test_values(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(FIXTURES "/qcow2-backing.xml", DV_KIND_VOLUME);
        const struct volume_def *v = o->def.volume;
        assert_string_equal(o->pool, "images");
        assert_string_equal(v->name, "web1.qcow2");
        assert_null(v->type);
        assert_null(v->key);
        assert_null(v->target.path);
        assert_string_equal(v->target.format, "qcow2");
        assert_string_equal(volume_def_format_type(v), "qcow2");
        assert_true(v->has_allocation);
        assert_int_equal(v->allocation, 0);
        assert_int_equal(v->capacity, 20ULL << 30);
        assert_true(v->target.perms.has_mode);
        assert_int_equal(v->target.perms.mode, 0600);
        assert_int_equal(v->target.perms.owner, 64055);
        assert_true(v->has_backing);
        assert_string_equal(v->backing.path, "/var/lib/declvirt/images/debian-12.qcow2");
        assert_string_equal(v->backing.format, "qcow2");
        dv_object_free(o);

        o = test_load_object(FIXTURES "/raw-minimal.xml", DV_KIND_VOLUME);
        v = o->def.volume;
        assert_null(v->target.format);
        assert_string_equal(volume_def_format_type(v), "raw");
        assert_false(v->has_backing || v->has_allocation || v->has_physical);
        assert_false(v->target.perms.has_mode || v->target.perms.has_owner ||
                     v->target.perms.has_group);
        dv_object_free(o);
        assert_string_equal(volume_def_format_type(NULL), "raw");

        o = test_load_object(FIXTURES "/iscsi-lun-name.xml", DV_KIND_VOLUME);
        assert_string_equal(o->def.volume->name, "unit:0:0:1");
        assert_string_equal(o->def.volume->type, "block");
        dv_object_free(o);
}

/* vol-dumpxml output is accepted; the observed parts nobody acts on are dropped
 * with a warning, never silently. */
static void test_dumpxml_warnings(void **state) {
        (void)state;
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        assert_int_equal(dv_object_parse_file(FIXTURES "/virsh-vol-dumpxml.xml", &o, &err), 0);
        assert_false(dv_error_failed(&err));
        assert_int_equal(err.n_warnings, 3);
        assert_int_equal(err.warnings[0].line, 17);
        assert_string_equal(err.warnings[0].msg, "<timestamps> are observed values; ignored");
        assert_string_equal(err.warnings[1].msg,
                            "<permissions> of a <backingStore> are observed values; ignored");
        assert_int_equal(err.warnings[2].line, 32);
        assert_string_equal(o->def.volume->key, "/var/lib/libvirt/images/base.qcow2");
        assert_true(o->def.volume->has_physical);
        assert_int_equal(o->def.volume->physical, 1966997504);
        dv_object_free(o);
        dv_error_clear(&err);

        o = NULL;
        assert_int_equal(
                dv_object_parse(
                        "<volume><name>v</name><capacity>1</capacity><source><device "
                        "path='/dev/sdb'>"
                        "<extent start='0' end='1'/></device></source>" POLICY "</volume>",
                        strlen("<volume><name>v</name><capacity>1</capacity><source><device "
                               "path='/dev/sdb'><extent start='0' "
                               "end='1'/></device></source>" POLICY "</volume>"),
                        "src.xml", &o, &err),
                0);
        assert_int_equal(err.n_warnings, 1);
        assert_string_equal(err.warnings[0].msg,
                            "<source> of a volume is an observed value; ignored");
        dv_object_free(o);
        dv_error_clear(&err);
}

static void test_rules(void **state) {
        (void)state;
        expect_first("<volume type='disk'><name>v</name><capacity>1</capacity>" POLICY "</volume>",
                     "<volume type='disk'>: expected file, block, dir, network or netdir");
        expect_first("<volume><name>v</name><name>w</name><capacity>1</capacity>" POLICY
                     "</volume>",
                     "more than one <name> in <volume> (the first is on line 1)");
        expect_first("<volume><name>.</name><capacity>1</capacity>" POLICY "</volume>",
                     "invalid volume name '.': name may not be '.' or '..'");
        expect_first("<volume><name>a b</name><capacity>1</capacity>" POLICY "</volume>",
                     "invalid volume name 'a b': name may contain only A-Z a-z 0-9 _ . + - :");
        expect_first("<volume><name>v</name><capacity>1</capacity><target><path>/a/./b</path></"
                     "target>" POLICY "</volume>",
                     "volume target path '/a/./b' is not normalised: it has a '.' component");
        expect_first("<volume><name>v</name><capacity>1</capacity><target><format/></target>" POLICY
                     "</volume>",
                     "<format> needs the attribute 'type'");
        expect_first("<volume><name>v</name><capacity>1</capacity><target><compat>1.1</compat></"
                     "target>" POLICY "</volume>",
                     "<compat> in <target> is not supported");
        expect_first(
                "<volume><name>v</name><capacity>1</capacity><backingStore><format type='qcow2'/>"
                "</backingStore>" POLICY "</volume>",
                "<backingStore> needs a <path>");
        expect_first("<volume><name>v</name><capacity>1</capacity><backingStore><path>/b</path>"
                     "<format type='linux'/></backingStore>" POLICY "</volume>",
                     "unknown backing store volume format 'linux'; expected one of: raw, dir, "
                     "bochs, cloop, dmg, "
                     "iso, vpc, vdi, fat, vhd, ploop, cow, qcow, qcow2, qed, vmdk, luks");
        expect_first("<volume><name>v</name><capacity>1</capacity><target><timestamps><when/></"
                     "timestamps>"
                     "</target>" POLICY "</volume>",
                     "unknown element <when> in <timestamps>");
        expect_first("<volume><name>v</name><capacity>1</capacity><key>k</key><key>l</key>" POLICY
                     "</volume>",
                     "more than one <key> in <volume> (the first is on line 1)");
        expect_first("<volume><name>v</name><capacity>1</capacity><metadata/>" POLICY "</volume>",
                     "<metadata> is not part of volume XML; the policy element goes directly in "
                     "<volume>");
        expect_first("<volume><name>v</name><capacity>1</capacity><lock/>" POLICY "</volume>",
                     "unknown element <lock> in <volume>");
        /* The policy comes first (model/policy.c), then the definition. */
        expect_first("<volume><name>v</name><capacity>1</capacity></volume>",
                     "a volume needs a policy element naming its pool: <dv:policy "
                     "xmlns:dv='https://declvirt.dev/xmlns/policy/1' pool='NAME'/>");
}

static void test_collects(void **state) {
        (void)state;
        struct dv_error err = refuse("<volume>\n"
                                     "  <name>v/w</name>\n"
                                     "  <capacity unit='G'>1</capacity>\n"
                                     "  <allocation unit='G'>2</allocation>\n"
                                     "  <target>\n"
                                     "    <format type='qcow9'/>\n"
                                     "  </target>\n"
                                     "  " POLICY "\n"
                                     "</volume>\n");
        assert_int_equal(err.n_problems, 3);
        assert_int_equal(err.problems[0].line, 2);
        assert_int_equal(err.problems[1].line, 6);
        assert_int_equal(err.problems[2].line, 4);
        assert_string_equal(
                err.problems[2].msg,
                "allocation (2147483648 bytes) is larger than capacity (1073741824 bytes)");
        dv_error_clear(&err);
}

static void test_validate_built(void **state) {
        (void)state;
        struct volume_def v = {.name = (char *)"v", .has_capacity = true, .capacity = 10};
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(volume_def_validate(&v, &err), 0);
        v.has_allocation = true;
        v.allocation = 11;
        assert_true(volume_def_validate(&v, &err) < 0);
        assert_string_equal(dv_error_message(&err),
                            "allocation (11 bytes) is larger than capacity (10 bytes)");
        dv_error_clear(&err);
        v.allocation = 1;
        v.target.format = (char *)"vmdk";
        v.target.path = (char *)"rel.img";
        assert_true(volume_def_validate(&v, &err) < 0);
        assert_string_equal(dv_error_message(&err), "volume target path 'rel.img' is not absolute");
        dv_error_clear(&err);
        v.target.path = NULL;
        v.name = (char *)"a/b";
        assert_true(volume_def_validate(&v, &err) < 0);
        dv_error_clear(&err);
}

/* What the observed-state writer does: a definition built in code formats the
 * vol-dumpxml way, and the output is valid input again. */
static void test_format_built(void **state) {
        (void)state;
        struct volume_def v = {
                .name = (char *)"a&b.img",
                .type = (char *)"file",
                .key = (char *)"/var/lib/declvirt/p/a&b.img",
                .has_capacity = true,
                .capacity = 1024,
                .has_allocation = true,
                .allocation = 0,
        };
        v.target.path = v.key;
        v.target.format = (char *)"raw";
        struct buf b = BUF_INIT;
        volume_def_format(&b, &v, NULL);
        _cleanup_free_ char *out = buf_steal(&b);
        assert_string_equal(out, "<volume type='file'>\n"
                                 "  <name>a&amp;b.img</name>\n"
                                 "  <key>/var/lib/declvirt/p/a&amp;b.img</key>\n"
                                 "  <capacity unit='bytes'>1024</capacity>\n"
                                 "  <allocation unit='bytes'>0</allocation>\n"
                                 "  <target>\n"
                                 "    <path>/var/lib/declvirt/p/a&amp;b.img</path>\n"
                                 "    <format type='raw'/>\n"
                                 "  </target>\n"
                                 "</volume>\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_units),          cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_values),         cmocka_unit_test(test_dumpxml_warnings),
                cmocka_unit_test(test_rules),          cmocka_unit_test(test_collects),
                cmocka_unit_test(test_validate_built), cmocka_unit_test(test_format_built),
        };
        _cleanup_strv_free_ char **fixtures = test_list_fixtures(FIXTURES);
        _cleanup_strv_free_ char **all_invalid = test_list_dir(INVALID, ".xml");
        _cleanup_free_ char **invalid = test_filter_base_prefix(all_invalid, "volume-", true);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", fixtures, test_golden, 12);
        test_list_add_files(&l, "schema", fixtures, test_schema, 10);
        test_list_add_files(&l, "invalid", invalid, test_invalid_file, 8);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-model-volume");
}
