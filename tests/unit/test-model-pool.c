/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The <pool> model: fixtures against golden output (stable, schema-valid), refused
 * files with their first message, and the rules of each pool type. */
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
#include "model/xml.h"
#include "tests/helpers/testlib.h"
#include "util/strv.h"

#define FIXTURES "tests/data/model/pool"
#define INVALID  "tests/data/invalid"

/* Fixtures that are valid declvirt input but not valid against libvirt's RNG schema,
 * with the reason. */
static const struct {
        const char *name, *why;
} schema_exempt[] = {
        {"logical-format-auto",
         "the model accepts 'auto' for logical pools; libvirt's schema spells it 'unknown'"},
};

/* One fixture: formats to NAME.golden.xml and back; the definition alone has no policy. */
static void test_golden(void **state) {
        struct dv_object *o = test_check_model_golden(*state, DV_KIND_POOL);
        _cleanup_free_ char *def = dv_object_format_def(o);
        assert_null(strstr(def, "policy"));
        assert_int_equal(pool_def_validate(o->def.pool, NULL), 0);
        dv_object_free(o);
}

static bool schema_exempted(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(schema_exempt); i++) {
                char name[256];
                snprintf(name, sizeof(name), "/%s.xml", schema_exempt[i].name);
                if (str_ends_with(path, name))
                        return true;
        }
        return false;
}

/* The fixtures that libvirt's schema must accept; the strings are shared with files. */
static char **schema_fixtures(char *const *files) {
        size_t n = strv_length((char **)files), k = 0;
        char **out = calloc(n + 1, sizeof(*out));
        assert_non_null(out);
        for (size_t i = 0; i < n; i++)
                if (!schema_exempted(files[i]))
                        out[k++] = files[i];
        return out;
}

/* virt-xml-validate on what we write: the whole output when the fixture has no
 * policy; otherwise the definition without the policy (libvirt's schema has no
 * place for it), so that every fixture is checked. */
static void test_schema(void **state) {
        const char *path = *state;
        struct dv_object *o = test_load_object(path, DV_KIND_POOL);
        _cleanup_free_ char *out =
                o->policy.present ? dv_object_format_def(o) : dv_object_format(o);
        dv_object_free(o);
        test_check_schema(path, out, "storagepool");
}

/* One of our refused files, through the same entry point as test-invalid. */
static void test_invalid_file(void **state) {
        test_check_refused_file(*state);
}

/* Parses in-memory XML expected to be refused; returns the error (caller clears). */
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

static void test_types(void **state) {
        (void)state;
        static const char *const ours[] = {"dir",  "fs",    "netfs",       "logical",
                                           "disk", "iscsi", "iscsi-direct"};
        static const char *const theirs[] = {"rbd",   "gluster",  "zfs",     "scsi",
                                             "mpath", "vstorage", "sheepdog"};
        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                assert_int_equal(pool_type_from_string(ours[i]), (int)i);
                assert_string_equal(pool_type_to_string((int)i), ours[i]);
        }
        assert_null(pool_type_to_string(_POOL_TYPE_MAX));
        for (size_t i = 0; i < ELEMENTSOF(theirs); i++) {
                char xml[256], msg[128];
                snprintf(xml, sizeof(xml), "<pool type='%s'><name>p</name></pool>", theirs[i]);
                snprintf(msg, sizeof(msg), "pool type '%s' is not supported", theirs[i]);
                expect_first(xml, msg);
                assert_int_equal(pool_type_from_string(theirs[i]), -EINVAL);
        }
        expect_first("<pool type='Dir'><name>p</name></pool>", "unknown pool type 'Dir'");
        expect_first("<pool><name>p</name></pool>", "<pool> needs the attribute 'type'");
}

/* What the user did not write stays absent. */
static void test_absent(void **state) {
        (void)state;
        struct dv_object *o = test_parse_string_ok(
                "<pool type='dir'><name>p</name><target><path>/p</path></target></pool>", "absent");
        const struct pool_def *d = o->def.pool;
        assert_int_equal(d->type, POOL_DIR);
        assert_string_equal(d->name, "p");
        assert_null(d->uuid);
        assert_false(d->has_capacity || d->has_allocation || d->has_available);
        assert_int_equal(d->source.n_devices, 0);
        assert_null(d->source.dir);
        assert_null(d->source.host_name);
        assert_false(d->source.has_port);
        assert_null(d->source.format);
        assert_null(d->source.name);
        assert_null(d->source.initiator_iqn);
        assert_false(d->source.has_auth);
        assert_false(d->target.perms.has_mode || d->target.perms.has_owner ||
                     d->target.perms.has_group);
        assert_null(d->target.perms.label);
        assert_false(o->policy.present);
        assert_int_equal(d->line, 1);
        dv_object_free(o);
}

static void test_values(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(FIXTURES "/iscsi-chap.xml", DV_KIND_POOL);
        const struct pool_def *d = o->def.pool;
        assert_string_equal(d->source.host_name, "192.0.2.20");
        assert_true(d->source.has_port);
        assert_int_equal(d->source.port, 3260);
        assert_int_equal(d->source.n_devices, 1);
        assert_string_equal(d->source.devices[0].path, "iqn.2024-01.org.example.san:storage.lun1");
        assert_string_equal(d->source.initiator_iqn, "iqn.2024-01.org.example:host1");
        assert_true(d->source.has_auth);
        assert_string_equal(d->source.auth.type, "chap");
        assert_string_equal(d->source.auth.username, "declvirt");
        assert_string_equal(d->source.auth.secret_usage, "libvirtiscsi");
        assert_null(d->source.auth.secret_uuid);
        dv_object_free(o);

        o = test_load_object(FIXTURES "/dir-policy.xml", DV_KIND_POOL);
        d = o->def.pool;
        assert_string_equal(d->name, "vm-images_2");
        assert_string_equal(d->uuid, "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a92");
        assert_true(d->has_capacity);
        assert_int_equal(d->capacity, 100ULL << 30);
        assert_string_equal(d->target.path, "/srv/vm & images");
        assert_true(d->target.perms.has_mode);
        assert_int_equal(d->target.perms.mode, 0755);
        assert_true(d->target.perms.has_owner);
        assert_int_equal(d->target.perms.owner, 107);
        assert_false(d->target.perms.has_group); /* -1: leave as it is */
        assert_string_equal(d->target.perms.label, "system_u:object_r:svirt_image_t:s0");
        assert_true(o->policy.present);
        assert_int_equal(dv_policy_state(&o->policy), DV_WANT_DOWN);
        assert_int_equal(dv_policy_build(&o->policy), DV_BUILD_NO);
        dv_object_free(o);

        o = test_load_object(FIXTURES "/disk-virsh-dumpxml.xml", DV_KIND_POOL);
        d = o->def.pool;
        assert_int_equal(d->source.devices[0].n_free_extents, 2);
        assert_int_equal(d->source.devices[0].free_extents[1].start, 269484032);
        assert_int_equal(d->source.devices[0].free_extents[1].end, 1073724928);
        assert_int_equal(d->available, 805272576);
        dv_object_free(o);

        o = test_load_object(FIXTURES "/iscsi-direct.xml", DV_KIND_POOL);
        assert_string_equal(o->def.pool->source.auth.secret_uuid,
                            "c0ffee00-aabb-ccdd-eeff-001122334455");
        dv_object_free(o);
}

static void test_vg_name(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(FIXTURES "/logical-devices.xml", DV_KIND_POOL);
        assert_string_equal(pool_def_vg_name(o->def.pool), "vg0");
        dv_object_free(o);
        o = test_load_object(FIXTURES "/logical-pool-name.xml", DV_KIND_POOL);
        assert_string_equal(pool_def_vg_name(o->def.pool), "vgdata");
        assert_null(o->def.pool->target.path);
        dv_object_free(o);
        assert_null(pool_def_vg_name(NULL));
}

/* Every libvirt unit, on <capacity>, <allocation> and <available>. */
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
                         "<pool type='dir'><name>p</name><capacity unit='%s'>7</capacity>"
                         "<allocation unit='%s'>3</allocation><available unit='%s'>4</available>"
                         "<target><path>/p</path></target></pool>",
                         units[i].unit, units[i].unit, units[i].unit);
                struct dv_object *o = test_parse_string_ok(xml, units[i].unit);
                assert_int_equal(o->def.pool->capacity, 7 * units[i].mult);
                assert_int_equal(o->def.pool->allocation, 3 * units[i].mult);
                assert_int_equal(o->def.pool->available, 4 * units[i].mult);
                _cleanup_free_ char *out = dv_object_format(o);
                char want[128];
                snprintf(want, sizeof(want), "<capacity unit='bytes'>%llu</capacity>",
                         (unsigned long long)(7 * units[i].mult));
                assert_non_null(strstr(out, want));
                dv_object_free(o);
        }
        expect_first("<pool type='dir'><name>p</name><capacity unit='XB'>1</capacity></pool>",
                     "<capacity>: unknown unit 'XB'");
        expect_first("<pool type='dir'><name>p</name><available>12x</available></pool>",
                     "<available>: '12x' is not a number");
        expect_first("<pool type='dir'><name>p</name><allocation unit='E'>16</allocation></pool>",
                     "<allocation>: size '16 E' is too large (over 2^64 bytes)");
        expect_first("<pool type='dir'><name>p</name><capacity scale='2'>1</capacity></pool>",
                     "unknown attribute 'scale' on <capacity>");
}

/* Type rules and value checks, each with its message. */
static void test_rules(void **state) {
        (void)state;
        expect_first("<pool type='dir'><name>p</name></pool>",
                     "pool type 'dir' needs a <target> with a <path>");
        expect_first("<pool type='dir'><name>p</name><target/></pool>",
                     "pool type 'dir' needs a <target> with a <path>");
        expect_first("<pool type='fs'><name>p</name><target><path>/m</path></target></pool>",
                     "pool type 'fs' needs a <device path='...'> in <source>");
        expect_first("<pool type='fs'><name>p</name><source><device path='/dev/a'/><device "
                     "path='/dev/b'/></source>"
                     "<target><path>/m</path></target></pool>",
                     "pool type 'fs' takes exactly one <device> in <source>, not 2");
        expect_first("<pool type='fs'><name>p</name><source><device path='/dev/a'/><format "
                     "type='zfs'/></source>"
                     "<target><path>/m</path></target></pool>",
                     "unknown format 'zfs' for pool type 'fs'; expected one of: auto, ext2, ext3, "
                     "ext4, ufs, "
                     "iso9660, udf, gfs, gfs2, vfat, hfs+, xfs, ocfs2, vmfs");
        expect_first("<pool type='netfs'><name>p</name><source><dir path='/e'/></source>"
                     "<target><path>/m</path></target></pool>",
                     "pool type 'netfs' needs a <host name='...'> in <source>");
        expect_first("<pool type='netfs'><name>p</name><source><host name='h'/></source>"
                     "<target><path>/m</path></target></pool>",
                     "pool type 'netfs' needs a <dir path='...'> in <source>");
        expect_first(
                "<pool type='netfs'><name>p</name><source><host name='h'/><dir path='e'/></source>"
                "<target><path>/m</path></target></pool>",
                "source dir path 'e' of an NFS export is not absolute");
        expect_first("<pool type='netfs'><name>p</name><source><host name='h'/><dir path='/e'/>"
                     "<format type='ext4'/></source><target><path>/m</path></target></pool>",
                     "unknown format 'ext4' for pool type 'netfs'; expected one of: auto, nfs, "
                     "cifs, glusterfs");
        expect_first("<pool type='netfs'><name>p</name><source><host name='a b'/><dir "
                     "path='/e'/></source>"
                     "<target><path>/m</path></target></pool>",
                     "<host name='a b'>: not a host name or IP address");
        expect_first("<pool type='netfs'><name>p</name><source><host name='h' port='65536'/><dir "
                     "path='/e'/>"
                     "</source><target><path>/m</path></target></pool>",
                     "<host port='65536'>: out of range 1..65535");
        expect_first("<pool type='netfs'><name>p</name><source><host name='h'/><host "
                     "name='i'/><dir path='/e'/>"
                     "</source><target><path>/m</path></target></pool>",
                     "more than one <host> in <source> (the first is on line 1)");
        expect_first(
                "<pool type='logical'><name>p</name><target><path>/dev/q</path></target></pool>",
                "the target path of a logical pool is '/dev/p' (its volume group), not '/dev/q'");
        expect_first(
                "<pool type='logical'><name>p</name><source><name>-vg</name></source></pool>",
                "invalid volume group name '-vg' in <source><name>: name may not begin with '-'");
        expect_first(
                "<pool type='logical'><name>p</name><source><format "
                "type='unknown'/></source></pool>",
                "unknown format 'unknown' for pool type 'logical'; expected one of: auto, lvm2");
        expect_first("<pool type='disk'><name>p</name><target><path>/dev</path></target></pool>",
                     "pool type 'disk' needs a <device path='...'> in <source>");
        expect_first("<pool type='disk'><name>p</name><source><device path='sdb'/></source></pool>",
                     "source device path 'sdb' is not absolute");
        expect_first(
                "<pool type='iscsi'><name>p</name><source><device path='iqn.2024-01.a:b'/></source>"
                "<target><path>/dev/disk/by-path</path></target></pool>",
                "pool type 'iscsi' needs a <host name='...'> in <source>");
        expect_first("<pool type='iscsi'><name>p</name><source><host name='h'/><device "
                     "path='/dev/sda'/></source>"
                     "</pool>",
                     "source device path '/dev/sda' is not an iSCSI qualified name such as "
                     "iqn.2024-01.com.example:storage");
        expect_first("<pool type='iscsi-direct'><name>p</name><source><host name='h'/>"
                     "<device path='iqn.2024-01.a:b'/></source></pool>",
                     "pool type 'iscsi-direct' needs <initiator><iqn name='...'/></initiator> in "
                     "<source>");
        expect_first("<pool type='iscsi-direct'><name>p</name><source><host name='h'/>"
                     "<device path='iqn.2024-13.a:b'/><initiator><iqn "
                     "name='iqn.2024-01.a:i'/></initiator>"
                     "</source></pool>",
                     "source device path 'iqn.2024-13.a:b' is not an iSCSI qualified name such as "
                     "iqn.2024-01.com.example:storage");
        expect_first("<pool type='iscsi-direct'><name>p</name><source><host name='h'/>"
                     "<device path='iqn.2024-01.a:b'/><initiator><iqn "
                     "name='iqn.2024-01.a:i'/></initiator>"
                     "</source><target><path>/dev</path></target></pool>",
                     "<target> does not apply to pool type 'iscsi-direct'");
        expect_first("<pool type='iscsi'><name>p</name><source><host name='h'/><device "
                     "path='iqn.2024-01.a:b'/>"
                     "<auth type='ceph' username='u'><secret usage='s'/></auth></source></pool>",
                     "auth type 'ceph' is not supported; expected 'chap'");
        expect_first("<pool type='iscsi'><name>p</name><source><host name='h'/><device "
                     "path='iqn.2024-01.a:b'/>"
                     "<auth type='chap' username='u'><secret usage='s' "
                     "uuid='c0ffee00aabbccddeeff001122334455'/>"
                     "</auth></source></pool>",
                     "<secret> needs either usage='...' or uuid='...' (one of them)");
        expect_first("<pool type='iscsi'><name>p</name><source><host name='h'/><device "
                     "path='iqn.2024-01.a:b'/>"
                     "<auth type='chap' username='u'/></source></pool>",
                     "<auth> needs a <secret usage='...'/> or <secret uuid='...'/>");
        expect_first("<pool type='iscsi'><name>p</name><source><host name='h'/><device "
                     "path='iqn.2024-01.a:b'/>"
                     "<initiator/></source></pool>",
                     "<initiator> needs an <iqn name='...'/>");
        expect_first("<pool type='dir'><name>p</name><source><host name='h'/></source>"
                     "<target><path>/p</path></target></pool>",
                     "<host> in <source> does not apply to pool type 'dir'");
        expect_first(
                "<pool type='fs'><name>p</name><source><adapter name='host0'/></source></pool>",
                "<adapter> in <source> is not supported");
        expect_first("<pool type='iscsi'><name>p</name><source><host name='h'/>"
                     "<device path='iqn.2024-01.a:b'/><auth type='chap' username='a&#10;b'>"
                     "<secret usage='s'/></auth></source></pool>",
                     "<auth> values may not contain control characters");
        expect_first(
                "<pool type='dir'><name>p</name><metadata/></pool>",
                "<metadata> is not part of pool XML; the policy element goes directly in <pool>");
        expect_first("<pool type='dir'><name>p</name><features><cow state='no'/></features></pool>",
                     "<features> in <pool> is not supported");
        expect_first("<pool type='dir'><name>p</name><uuid>not-a-uuid</uuid></pool>",
                     "<uuid> 'not-a-uuid' is not a UUID");
        expect_first("<pool type='dir'><name>a/b</name></pool>",
                     "invalid pool name 'a/b': name may not contain '/'");
        expect_first("<pool type='dir'><name>p</name><name>q</name></pool>",
                     "more than one <name> in <pool> (the first is on line 1)");
        expect_first("<pool type='dir' id='3'><name>p</name></pool>",
                     "unknown attribute 'id' on <pool>");
        expect_first("<pool type='dir'><name lang='en'>p</name></pool>",
                     "unknown attribute 'lang' on <name>");
        expect_first(
                "<pool "
                "type='dir'><name>p</name><target><path>/p</path><path>/q</path></target></pool>",
                "more than one <path> in <target> (the first is on line 1)");
        expect_first("<pool type='dir' "
                     "xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>p</name>"
                     "<fs:mount_opts/></pool>",
                     "unknown element <fs:mount_opts> in <pool>");
}

static void test_paths(void **state) {
        (void)state;
        static const struct {
                const char *path, *why;
        } cases[] = {
                {"/var/lib/x", NULL},
                {"/a", NULL},
                {"/a b/c..d/.e", NULL},
                {"var/lib", "is not absolute"},
                {"", "is not absolute"},
                {"/", "may not be '/'"},
                {"/a/", "is not normalised: it ends with '/'"},
                {"/a//b", "is not normalised: it contains '//'"},
                {"//a", "is not normalised: it contains '//'"},
                {"/a/./b", "is not normalised: it has a '.' component"},
                {"/a/..", "is not normalised: it has a '..' component"},
                {"/../etc", "is not normalised: it has a '..' component"},
                {"/a\nb", "contains a control character"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *why = pool_path_problem(cases[i].path);
                if (!streq_ptr(why, cases[i].why))
                        fail_msg("'%s': expected %s, got %s", cases[i].path, strna(cases[i].why),
                                 strna(why));
        }
        assert_string_equal(pool_path_problem(NULL), "is not absolute");
}

/* Several problems in one file are all reported, in document order. */
static void test_collects(void **state) {
        (void)state;
        struct dv_error err = refuse("<pool type='netfs'>\n"
                                     "  <name>p</name>\n"
                                     "  <source>\n"
                                     "    <host name='h' port='0'/>\n"
                                     "    <dir path='/e'/>\n"
                                     "    <bogus/>\n"
                                     "  </source>\n"
                                     "  <target>\n"
                                     "    <path>rel</path>\n"
                                     "    <permissions><mode>8</mode></permissions>\n"
                                     "  </target>\n"
                                     "</pool>\n");
        assert_int_equal(err.n_problems, 4);
        assert_int_equal(err.problems[0].line, 4);
        assert_string_equal(err.problems[0].msg, "<host port='0'>: out of range 1..65535");
        assert_int_equal(err.problems[1].line, 6);
        assert_string_equal(err.problems[1].msg, "unknown element <bogus> in <source>");
        assert_int_equal(err.problems[2].line, 9);
        assert_string_equal(err.problems[2].msg, "target path 'rel' is not absolute");
        assert_int_equal(err.problems[3].line, 10);
        assert_string_equal(err.problems[3].msg,
                            "<mode> '8' is not an octal file mode (0 to 07777)");
        dv_error_clear(&err);
}

static void test_permissions(void **state) {
        (void)state;
        struct dv_object *a = test_parse_string_ok(
                "<pool type='dir'><name>p</name><target><path>/p</path><permissions>"
                "<mode>0700</mode><owner>-1</owner><group>0</group></permissions>"
                "</target></pool>",
                "perms a");
        struct dv_object *b = test_parse_string_ok(
                "<pool type='dir'><name>p</name><target><path>/p</path><permissions>"
                "<group>0</group><mode>700</mode></permissions></target></pool>",
                "perms b");
        const struct dv_perms *pa = &a->def.pool->target.perms, *pb = &b->def.pool->target.perms;
        assert_false(pa->has_owner);
        assert_true(dv_perms_equal(pa, pb));
        struct dv_perms c = *pb;
        c.mode = 0755;
        assert_false(dv_perms_equal(pa, &c));
        c = *pb;
        c.label = (char *)"x";
        assert_false(dv_perms_equal(pa, &c));

        /* Empty <permissions> writes nothing; mode 0 is written the libvirt way. */
        struct buf buf = BUF_INIT;
        struct dv_perms none = {0}, zero = {.has_mode = true, .mode = 0};
        dv_perms_format(&buf, &none);
        assert_string_equal(buf_str(&buf), "");
        dv_perms_format(&buf, &zero);
        assert_string_equal(buf_str(&buf), "<permissions>\n  <mode>00</mode>\n</permissions>\n");
        buf_free(&buf);

        expect_first("<pool "
                     "type='dir'><name>p</name><target><path>/p</"
                     "path><permissions><owner>4294967295</owner>"
                     "</permissions></target></pool>",
                     "<owner> '4294967295' is not a numeric id (0 to 4294967294, or -1)");
        expect_first(
                "<pool "
                "type='dir'><name>p</name><target><path>/p</path><permissions><mode>010000</mode>"
                "</permissions></target></pool>",
                "<mode> '010000' is not an octal file mode (0 to 07777)");
        expect_first("<pool type='dir'><name>p</name><target><path>/p</path><permissions><acl/>"
                     "</permissions></target></pool>",
                     "unknown element <acl> in <permissions>");
        dv_object_free(a);
        dv_object_free(b);
}

/* pool_def_validate on definitions built in code (as drivers and tests do). */
static void test_validate_built(void **state) {
        (void)state;
        struct pool_def d = {.type = POOL_DIR, .name = (char *)"p", .line = 0};
        struct dv_error err = DV_ERROR_INIT;
        assert_true(pool_def_validate(&d, &err) < 0);
        assert_string_equal(dv_error_message(&err),
                            "pool type 'dir' needs a <target> with a <path>");
        dv_error_clear(&err);

        d.target.path = (char *)"/a/../b";
        assert_true(pool_def_validate(&d, &err) < 0);
        assert_string_equal(dv_error_message(&err),
                            "target path '/a/../b' is not normalised: it has a '..' component");
        dv_error_clear(&err);

        d.target.path = (char *)"/a/b";
        d.source.dir = (char *)"/x";
        assert_true(pool_def_validate(&d, &err) < 0);
        assert_string_equal(dv_error_message(&err),
                            "<dir> in <source> does not apply to pool type 'dir'");
        dv_error_clear(&err);

        d.source.dir = NULL;
        d.uuid = (char *)"2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91";
        assert_int_equal(pool_def_validate(&d, &err), 0);
        assert_false(dv_error_failed(&err));

        d.type = _POOL_TYPE_MAX;
        assert_true(pool_def_validate(&d, &err) < 0);
        dv_error_clear(&err);
}

/* Every pool type has a row in the type table, named as the enum names it, and the
 * rows are consistent: required source parts are allowed ones, only optional targets
 * have a default, and a type without a target is not file-backed. */
static void test_type_table(void **state) {
        (void)state;
        for (int t = 0; t < _POOL_TYPE_MAX; t++) {
                const struct pool_type_info *info = pool_type_info(t);
                assert_non_null(info);
                assert_string_equal(info->name, pool_type_to_string(t));
                assert_int_equal(info->source_required & ~info->source_allowed, 0);
                assert_int_equal(info->default_target != NULL,
                                 info->target == POOL_TARGET_OPTIONAL);
                if (info->file_backed)
                        assert_int_equal(info->target, POOL_TARGET_REQUIRED);
                if (info->formats)
                        assert_true(info->source_allowed & POOL_SOURCE_FORMAT);
                if (info->device != POOL_DEVICE_PATH)
                        assert_true(info->source_allowed & POOL_SOURCE_DEVICE);
        }
        assert_null(pool_type_info(_POOL_TYPE_MAX));
        assert_null(pool_type_info(-1));
}

/* The pool's UUID and the CHAP secret's are read with libvirt's grammar (util/uuid.c)
 * and kept in the canonical form. */
static void test_uuid(void **state) {
        (void)state;
        static const char xml[] =
                "<pool type='iscsi'><name>p</name>"
                "<uuid>2D6A8C3E7F1B4D0A9A535B0C2E4F7A91</uuid>"
                "<source><host name='h'/><device path='iqn.2004-04.com.example:t'/>"
                "<auth type='chap' username='u'><secret uuid='2d6a8c3e 7f1b 4d0a 9a53 "
                "5b0c2e4f7a92'/></auth></source>"
                "<target><path>/dev/disk/by-path</path></target></pool>";
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        assert_int_equal(dv_object_parse(xml, strlen(xml), "inline.xml", &o, &err), 0);
        assert_string_equal(o->def.pool->uuid, "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91");
        assert_string_equal(o->def.pool->source.auth.secret_uuid,
                            "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a92");
        dv_object_free(o);
        dv_error_clear(&err);
        expect_first("<pool type='dir'><name>p</name><uuid>2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a9"
                     "</uuid><target><path>/srv/p</path></target></pool>",
                     "<uuid> '2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a9' is not a UUID");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_types),       cmocka_unit_test(test_absent),
                cmocka_unit_test(test_values),      cmocka_unit_test(test_vg_name),
                cmocka_unit_test(test_units),       cmocka_unit_test(test_rules),
                cmocka_unit_test(test_paths),       cmocka_unit_test(test_collects),
                cmocka_unit_test(test_permissions), cmocka_unit_test(test_validate_built),
                cmocka_unit_test(test_uuid),        cmocka_unit_test(test_type_table),
        };
        _cleanup_strv_free_ char **fixtures = test_list_fixtures(FIXTURES);
        _cleanup_free_ char **schema = schema_fixtures(fixtures);
        _cleanup_strv_free_ char **all_invalid = test_list_dir(INVALID, ".xml");
        _cleanup_free_ char **invalid = test_filter_base_prefix(all_invalid, "pool-", true);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", fixtures, test_golden, 15);
        test_list_add_files(&l, "schema", schema, test_schema, 10);
        test_list_add_files(&l, "invalid", invalid, test_invalid_file, 8);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-model-pool");
}
