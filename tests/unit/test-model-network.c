/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The <network> model: fixtures under tests/data/model/network parse, format to their
 * .golden.xml, re-parse to the same text and validate against libvirt's schema;
 * the invalid files under tests/data/invalid/network-* are refused as their .err says. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/network.h"
#include "model/object.h"
#include "tests/helpers/testlib.h"
#include "util/strv.h"

#define DIR         "tests/data/model/network"
#define INVALID_DIR "tests/data/invalid"

static struct dv_object *parse_string(const char *xml, struct dv_error *err) {
        struct dv_object *o = NULL;
        int r = dv_object_parse(xml, strlen(xml), "inline.xml", &o, err);
        if (r < 0)
                assert_null(o);
        return o;
}

/* One fixture: formats to NAME.golden.xml and back (parse -> format -> parse -> format is
 * byte-stable, the definition alone too); the definition has no policy metadata. */
static void test_golden(void **state) {
        struct dv_object *o = test_check_model_golden(*state, DV_KIND_NETWORK);
        _cleanup_free_ char *def = dv_object_format_def(o);
        assert_null(strstr(def, "metadata"));
        dv_object_free(o);
}

/* One fixture: what we write for it is valid for libvirt's schema. */
static void test_schema_valid(void **state) {
        const char *path = *state;
        struct dv_object *o = test_load_object(path, DV_KIND_NETWORK);
        _cleanup_free_ char *out = dv_object_format(o);
        dv_object_free(o);
        test_check_schema(path, out, "network");
}

/* One refused file: its .err is one newline-terminated line, and names the first problem. */
static void test_invalid_file(void **state) {
        const char *path = *state;
        _cleanup_free_ char *errpath = test_sibling(path, ".err");
        _cleanup_free_ char *text = test_read_file(errpath, NULL);
        char *nl = strchr(text, '\n');
        if (!nl || nl[1] != '\0')
                fail_msg("%s: not one newline-terminated line", errpath);
        test_check_refused_file(path);
}

static void test_forward_modes(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(DIR "/isolated.xml", DV_KIND_NETWORK);
        const struct network_def *d = o->def.network;
        assert_int_equal(d->forward.mode, NETWORK_FORWARD_NONE);
        assert_string_equal(network_forward_mode_to_string(d->forward.mode), "none");
        dv_object_free(o);

        o = test_load_object(DIR "/nat.xml", DV_KIND_NETWORK);
        d = o->def.network;
        char a[NETWORK_ADDR_STRLEN];
        assert_int_equal(d->forward.mode, NETWORK_FORWARD_NAT);
        assert_string_equal(d->forward.dev, "eth0");
        assert_int_equal(strv_length(d->forward.interfaces), 1);
        assert_true(d->forward.has_nat_address);
        assert_string_equal(network_addr_format(&d->forward.nat_start, a), "198.51.100.10");
        assert_string_equal(network_addr_format(&d->forward.nat_end, a), "198.51.100.20");
        assert_true(d->forward.has_nat_port);
        assert_int_equal(d->forward.nat_port_start, 1024);
        assert_int_equal(d->forward.nat_port_end, 65535);
        assert_string_equal(d->mac, "52:54:00:ab:00:01"); /* short form, upper case: canonical */
        assert_true(d->has_mtu);
        assert_int_equal(d->mtu, 9000);
        assert_int_equal(d->bridge.stp, 1);
        assert_true(d->bridge.has_delay);
        dv_object_free(o);

        o = test_load_object(DIR "/nat-no-mode.xml", DV_KIND_NETWORK);
        assert_int_equal(o->def.network->forward.mode, NETWORK_FORWARD_NAT);
        dv_object_free(o);

        o = test_load_object(DIR "/route.xml", DV_KIND_NETWORK);
        d = o->def.network;
        assert_int_equal(d->forward.mode, NETWORK_FORWARD_ROUTE);
        assert_string_equal(d->forward.interfaces[0], "eth1");
        dv_object_free(o);

        o = test_load_object(DIR "/open.xml", DV_KIND_NETWORK);
        assert_int_equal(o->def.network->forward.mode, NETWORK_FORWARD_OPEN);
        dv_object_free(o);

        o = test_load_object(DIR "/bridge.xml", DV_KIND_NETWORK);
        d = o->def.network;
        assert_int_equal(d->forward.mode, NETWORK_FORWARD_BRIDGE);
        assert_string_equal(d->bridge.name, "br0");
        assert_int_equal(d->bridge.stp, -1);
        assert_false(d->bridge.has_delay);
        dv_object_free(o);

        o = test_load_object(DIR "/bridge-macvtap.xml", DV_KIND_NETWORK);
        d = o->def.network;
        assert_int_equal(d->forward.mode, NETWORK_FORWARD_BRIDGE);
        assert_null(d->bridge.name);
        assert_int_equal(strv_length(d->forward.interfaces), 2);
        assert_string_equal(d->forward.interfaces[1], "eth3");
        dv_object_free(o);
}

/* What the user did not write stays absent, so a later diff sees only what was written. */
static void test_absent_values(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(DIR "/isolated.xml", DV_KIND_NETWORK);
        const struct network_def *d = o->def.network;
        assert_string_equal(network_def_name(d), "isolated");
        assert_string_equal(network_def_uuid(d), "6f1e2b0c-8a4d-4e5f-9a0b-1c2d3e4f5a6b");
        assert_int_equal(d->bridge.stp, 0);
        assert_false(d->bridge.has_delay);
        assert_null(d->mac);
        assert_false(d->has_mtu);
        assert_false(d->ipv6);
        assert_false(d->dns.present);
        assert_int_equal(d->dns.enable, -1);
        assert_int_equal(d->domain.local_only, 1);
        assert_int_equal(d->n_ips, 1);
        assert_true(d->ips[0].has_netmask);
        assert_false(d->ips[0].has_prefix);
        assert_int_equal(d->ips[0].family, NETWORK_FAMILY_UNSET);
        assert_int_equal(network_ip_prefix(&d->ips[0]), 24);
        dv_object_free(o);

        o = test_load_object(DIR "/nat-default.xml", DV_KIND_NETWORK);
        d = o->def.network;
        assert_null(d->forward.dev);
        assert_false(d->forward.has_nat_address);
        assert_true(d->forward.has_nat_port);
        dv_object_free(o);
}

static void test_ipv6(void **state) {
        (void)state;
        char a[NETWORK_ADDR_STRLEN];
        struct dv_object *o = test_load_object(DIR "/ipv6.xml", DV_KIND_NETWORK);
        const struct network_def *d = o->def.network;
        assert_true(d->ipv6);
        assert_int_equal(d->n_ips, 3);
        assert_int_equal(d->ips[0].address.family, AF_INET);
        assert_int_equal(d->ips[0].family, NETWORK_FAMILY_IPV4);
        assert_int_equal(d->ips[1].address.family, AF_INET6);
        assert_string_equal(network_addr_format(&d->ips[1].address, a), "2001:db8::1");
        assert_int_equal(network_ip_prefix(&d->ips[2]), 48);
        assert_ptr_equal(network_def_dhcp_ip(d, AF_INET), &d->ips[0]);
        assert_ptr_equal(network_def_dhcp_ip(d, AF_INET6), &d->ips[1]);
        const struct network_ip *v6 = &d->ips[1];
        assert_int_equal(v6->n_hosts, 1);
        assert_null(v6->hosts[0].mac);
        assert_string_equal(v6->hosts[0].name, "db");
        assert_string_equal(network_addr_format(&v6->hosts[0].ip, a), "2001:db8::100");
        dv_object_free(o);
}

static void test_dhcp_and_dns_hosts(void **state) {
        (void)state;
        char a[NETWORK_ADDR_STRLEN];
        struct dv_object *o = test_load_object(DIR "/dhcp-hosts.xml", DV_KIND_NETWORK);
        const struct network_def *d = o->def.network;
        assert_int_equal(d->n_ips, 2);
        const struct network_ip *ip = network_def_dhcp_ip(d, AF_INET);
        assert_ptr_equal(ip, &d->ips[0]);
        assert_int_equal(ip->n_ranges, 1);
        assert_int_equal(ip->n_hosts, 3);
        assert_string_equal(ip->hosts[0].mac, "52:54:00:11:22:33");
        assert_string_equal(ip->hosts[0].name, "alpha");
        assert_null(ip->hosts[1].name);
        assert_null(ip->hosts[2].mac);
        assert_string_equal(network_addr_format(&ip->hosts[2].ip, a), "10.0.0.13");
        assert_null(network_def_dhcp_ip(d, AF_INET6));
        dv_object_free(o);

        struct dv_error err = DV_ERROR_INIT;
        o = NULL;
        assert_int_equal(dv_object_parse_file(DIR "/dns-hosts.xml", &o, &err), 0);
        d = o->def.network;
        assert_true(d->dns.present);
        assert_int_equal(d->dns.enable, 1);
        assert_int_equal(d->dns.forward_plain_names, 0);
        assert_int_equal(d->dns.n_hosts, 2);
        assert_int_equal(strv_length(d->dns.hosts[0].hostnames), 2);
        assert_string_equal(d->dns.hosts[0].hostnames[1], "db.lab.example");
        assert_string_equal(network_addr_format(&d->dns.hosts[1].ip, a), "2001:db8::10");
        assert_string_equal(d->domain.name, "lab.example");
        /* <txt> is accepted, ignored and reported as a warning with its line */
        assert_int_equal(err.n_problems, 0);
        assert_int_equal(err.n_warnings, 1);
        assert_int_equal(err.warnings[0].line, 14);
        assert_non_null(strstr(err.warnings[0].msg, "<txt>"));
        dv_object_free(o);
        dv_error_clear(&err);
}

static void test_policy(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(DIR "/policy-metadata.xml", DV_KIND_NETWORK);
        assert_true(o->policy.present);
        assert_int_equal(o->policy.state, DV_WANT_DOWN);
        assert_int_equal(o->policy.autostart, 0);
        assert_int_equal(o->policy.on_remove, DV_ON_REMOVE_KEEP);
        _cleanup_free_ char *full = dv_object_format(o);
        _cleanup_free_ char *def = dv_object_format_def(o);
        assert_non_null(strstr(full, "<metadata>\n    <dv:policy"));
        assert_null(strstr(full, "app:info")); /* other metadata is not reproduced */
        assert_null(strstr(def, "dv:policy"));
        dv_object_free(o);

        /* a network without a policy writes no <metadata> */
        o = test_load_object(DIR "/nat.xml", DV_KIND_NETWORK);
        _cleanup_free_ char *s = dv_object_format(o);
        assert_null(strstr(s, "metadata"));
        dv_object_free(o);
}

/* validate reports every problem at once, each with its element's line. */
static void test_all_problems(void **state) {
        (void)state;
        static const char xml[] = "<network>\n"
                                  "  <name>n</name>\n"
                                  "  <bridge name='a-very-long-bridge-name'/>\n"
                                  "  <mtu size='10'/>\n"
                                  "  <ip address='192.0.2.1' prefix='24'>\n"
                                  "    <dhcp>\n"
                                  "      <range start='192.0.2.9' end='192.0.2.2'/>\n"
                                  "      <host ip='192.0.2.7'/>\n"
                                  "    </dhcp>\n"
                                  "  </ip>\n"
                                  "</network>\n";
        struct dv_error err = DV_ERROR_INIT;
        assert_null(parse_string(xml, &err));
        assert_int_equal(err.n_problems, 4);
        assert_int_equal(err.problems[0].line, 3);
        assert_int_equal(err.problems[1].line, 4);
        assert_int_equal(err.problems[2].line, 7);
        assert_int_equal(err.problems[3].line, 8);
        assert_string_equal(err.problems[3].msg, "<host ip='192.0.2.7'>: needs mac= or name=");
        dv_error_clear(&err);

        /* parse problems are all reported too */
        static const char xml2[] = "<network foo='1'>\n"
                                   "  <name>n</name>\n"
                                   "  <name>m</name>\n"
                                   "  <portgroup name='x'/>\n"
                                   "  <forward mode='hostdev'/>\n"
                                   "</network>\n";
        assert_null(parse_string(xml2, &err));
        assert_int_equal(err.n_problems, 4);
        assert_string_equal(err.problems[0].msg, "unknown attribute 'foo' on <network>");
        assert_string_equal(err.problems[1].msg, "more than one <name> (the first is on line 2)");
        assert_string_equal(err.problems[2].msg,
                            "<portgroup> in <network> is not supported by declvirt");
        assert_string_equal(err.problems[3].msg, "forward mode 'hostdev' is not supported");
        dv_error_clear(&err);

        /* libvirt's features that declvirt lacks are named as such, not as unknown */
        static const char xml3[] =
                "<network trustGuestRxFilters='no'>\n"
                "  <name>n</name>\n"
                "  <bridge name='dv0' zone='trusted'/>\n"
                "  <dnsmasq:options "
                "xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'/>\n"
                "</network>\n";
        assert_null(parse_string(xml3, &err));
        assert_int_equal(err.n_problems, 3);
        assert_string_equal(
                err.problems[0].msg,
                "attribute 'trustGuestRxFilters' on <network> is not supported by declvirt");
        assert_int_equal(err.problems[1].line, 3);
        assert_string_equal(err.problems[1].msg,
                            "attribute 'zone' on <bridge> is not supported by declvirt");
        assert_int_equal(err.problems[2].line, 4);
        assert_string_equal(err.problems[2].msg,
                            "dnsmasq options (<dnsmasq:options>) are not supported by declvirt");
        dv_error_clear(&err);
}

/* network_def_validate on its own, for definitions changed after parsing. */
static void test_validate_struct(void **state) {
        (void)state;
        struct dv_object *o = test_load_object(DIR "/nat.xml", DV_KIND_NETWORK);
        struct network_def *d = o->def.network;
        struct dv_error err = DV_ERROR_INIT;
        assert_int_equal(network_def_validate(d, &err), 0);

        d->mtu = 65536;
        assert_true(network_def_validate(d, &err) < 0);
        assert_string_equal(dv_error_message(&err), "<mtu size='65536'>: out of range 68..65535");
        dv_error_clear(&err);
        d->mtu = 1500;

        d->ips[0].prefix = 31;
        assert_true(network_def_validate(d, &err) < 0); /* the range is now outside the subnet */
        dv_error_clear(&err);
        d->ips[0].prefix = 16;

        free(d->mac);
        d->mac = strdup("ff:ff:ff:ff:ff:ff");
        assert_true(network_def_validate(d, &err) < 0);
        assert_non_null(strstr(dv_error_message(&err), "multicast"));
        dv_error_clear(&err);

        assert_int_equal(network_def_validate(NULL, NULL), -EINVAL);
        dv_object_free(o);
}

static void test_helpers(void **state) {
        (void)state;
        struct network_addr a, net;
        char s[NETWORK_ADDR_STRLEN];
        assert_int_equal(network_addr_parse("192.0.2.77", &a), 0);
        assert_int_equal(a.family, AF_INET);
        assert_int_equal(network_addr_parse("192.0.2.0", &net), 0);
        assert_true(network_addr_in_subnet(&a, &net, 24));
        assert_true(network_addr_in_subnet(&a, &net, 25));
        assert_false(network_addr_in_subnet(&a, &net, 26));
        assert_false(network_addr_in_subnet(&a, &net, 33));
        assert_int_equal(network_addr_parse("2001:DB8:0::0:1", &a), 0);
        assert_string_equal(network_addr_format(&a, s), "2001:db8::1");
        assert_false(network_addr_in_subnet(&a, &net, 0)); /* other family */
        assert_int_equal(network_addr_parse("192.0.2", &a), -EINVAL);
        assert_int_equal(network_addr_parse("example.org", &a), -EINVAL);
        assert_int_equal(network_addr_parse("fe80::1%eth0", &a), -EINVAL);
        assert_int_equal(network_addr_parse(NULL, &a), -EINVAL);
        struct network_addr none = {0};
        assert_string_equal(network_addr_format(&none, s), "");

        assert_null(network_ifname_problem("virbr0"));
        assert_null(network_ifname_problem("br-lan.10_x"));
        assert_null(network_ifname_problem("123456789012345"));
        assert_non_null(network_ifname_problem("1234567890123456"));
        assert_non_null(network_ifname_problem(""));
        assert_non_null(network_ifname_problem(NULL));
        assert_non_null(network_ifname_problem(".."));
        assert_non_null(network_ifname_problem("-br"));
        assert_non_null(network_ifname_problem("br 0"));
        assert_non_null(network_ifname_problem("br/0"));
        assert_non_null(network_ifname_problem("virbr%d"));

        assert_int_equal(network_forward_mode_from_string("route"), NETWORK_FORWARD_ROUTE);
        assert_int_equal(network_forward_mode_from_string("vepa"), -EINVAL);
}

/* libvirt's defaults when neither netmask nor prefix is written. */
static void test_prefix_defaults(void **state) {
        (void)state;
        static const struct {
                const char *address;
                int prefix;
        } cases[] = {
                {"10.1.2.3", 8},
                {"172.16.0.1", 16},
                {"192.0.2.1", 24},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char xml[256];
                snprintf(xml, sizeof(xml), "<network><name>n</name><ip address='%s'/></network>",
                         cases[i].address);
                struct dv_error err = DV_ERROR_INIT;
                struct dv_object *o = parse_string(xml, &err);
                assert_non_null(o);
                assert_int_equal(network_ip_prefix(&o->def.network->ips[0]), cases[i].prefix);
                dv_object_free(o);
                dv_error_clear(&err);
        }
        struct dv_error err = DV_ERROR_INIT;
        assert_null(
                parse_string("<network><name>n</name><ip address='240.0.0.1'/></network>", &err));
        assert_non_null(strstr(dv_error_message(&err), "no class"));
        dv_error_clear(&err);
        struct dv_object *o = parse_string(
                "<network><name>n</name><ip family='ipv6' address='fd00::1'/></network>", &err);
        assert_non_null(o);
        assert_int_equal(network_ip_prefix(&o->def.network->ips[0]), 64);
        dv_object_free(o);
        dv_error_clear(&err);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_forward_modes),
                cmocka_unit_test(test_absent_values),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_dhcp_and_dns_hosts),
                cmocka_unit_test(test_policy),
                cmocka_unit_test(test_all_problems),
                cmocka_unit_test(test_validate_struct),
                cmocka_unit_test(test_helpers),
                cmocka_unit_test(test_prefix_defaults),
        };
        _cleanup_strv_free_ char **fixtures = test_list_fixtures(DIR);
        _cleanup_strv_free_ char **all_invalid = test_list_dir(INVALID_DIR, ".xml");
        _cleanup_free_ char **invalid = test_filter_base_prefix(all_invalid, "network-", true);
        struct test_list l = TEST_LIST_INIT;
        test_list_add_files(&l, "golden", fixtures, test_golden, 12);
        test_list_add_files(&l, "schema", fixtures, test_schema_valid, 12);
        test_list_add_files(&l, "invalid", invalid, test_invalid_file, 10);
        test_list_add(&l, tests, ELEMENTSOF(tests));
        return test_list_run(&l, "test-model-network");
}
