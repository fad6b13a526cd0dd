/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util/: numbers, durations, units, the XML writer, the hash map, strv, errors. */
#include <dirent.h>
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

#include "util/buf.h"
#include "tests/helpers/testlib.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hashmap.h"
#include "util/mac.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/uuid.h"

static void test_parse_u64(void **state) {
        (void)state;
        uint64_t v;
        assert_int_equal(parse_u64("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_u64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_u64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_u64("-1", &v), -EINVAL);
        assert_int_equal(parse_u64("+1", &v), -EINVAL);
        assert_int_equal(parse_u64(" 1", &v), -EINVAL);
        assert_int_equal(parse_u64("1x", &v), -EINVAL);
        assert_int_equal(parse_u64("", &v), -EINVAL);
        assert_int_equal(parse_u64_range("5", 1, 4, &v), -ERANGE);
}

static void test_parse_duration(void **state) {
        (void)state;
        uint64_t v;
        assert_int_equal(parse_duration_usec("10ms", &v), 0);
        assert_true(v == 10000);
        assert_int_equal(parse_duration_usec("30s", &v), 0);
        assert_true(v == 30000000);
        assert_int_equal(parse_duration_usec("2m", &v), 0);
        assert_true(v == 120000000);
        assert_int_equal(parse_duration_usec("1.5s", &v), 0);
        assert_true(v == 1500000);
        assert_int_equal(parse_duration_usec("7", &v), 0);
        assert_true(v == 7000000);
        assert_int_equal(parse_duration_usec("1h", &v), 0);
        assert_true(v == 3600000000ULL);
        assert_int_equal(parse_duration_usec("10 s", &v), -EINVAL);
        assert_int_equal(parse_duration_usec("ms", &v), -EINVAL);
        assert_int_equal(parse_duration_usec("5d", &v), -EINVAL);
        assert_int_equal(parse_duration_usec("-1s", &v), -EINVAL);
        assert_int_equal(parse_duration_usec("99999999999999999999h", &v), -ERANGE);
}

static void test_parse_scaled(void **state) {
        (void)state;
        uint64_t v;
        assert_int_equal(parse_scaled("1", "KiB", &v), 0);
        assert_true(v == 1024);
        assert_int_equal(parse_scaled("1", "KB", &v), 0);
        assert_true(v == 1000);
        assert_int_equal(parse_scaled(" 2 ", "G", &v), 0);
        assert_true(v == 2ULL << 30);
        assert_int_equal(parse_scaled("16", "EiB", &v), -ERANGE);
        assert_int_equal(parse_scaled("15", "EiB", &v), 0);
        assert_int_equal(parse_scaled("1", "parsecs", &v), -EINVAL);
        assert_int_equal(parse_scaled("1", NULL, &v), 0);
        assert_true(v == 1);
        /* In any case, as libvirt reads them. */
        static const struct {
                const char *unit;
                uint64_t mult;
        } cases[] = {
                {"kib", 1024},
                {"KIB", 1024},
                {"k", 1024},
                {"K", 1024},
                {"kb", 1000},
                {"Kb", 1000},
                {"mib", 1 << 20},
                {"m", 1 << 20},
                {"MB", 1000000},
                {"gIb", 1ULL << 30},
                {"tb", 1000000000000ULL},
                {"B", 1},
                {"BYTES", 1},
                {"e", 1ULL << 60},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(parse_scaled("1", cases[i].unit, &v), 0);
                assert_true(v == cases[i].mult);
        }
        const char *bad[] = {"kibi", "x", "kB2", "bb", "iB", "KiBB"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(parse_scaled("1", bad[i], &v), -EINVAL);
        unsigned m;
        assert_int_equal(parse_mode("0755", &m), 0);
        assert_int_equal(m, 0755);
        assert_int_equal(parse_mode("0758", &m), -EINVAL);
        assert_int_equal(parse_mode("17777", &m), -ERANGE);
}

static void test_xml_writer(void **state) {
        (void)state;
        struct buf b = BUF_INIT;
        xml_open(&b, "pool");
        xml_attr(&b, "type", "dir");
        xml_open_end(&b);
        xml_text_elem(&b, "name", "a<b>&'\"");
        xml_bytes_elem(&b, "capacity", 42);
        xml_open(&b, "target");
        xml_attr(&b, "skipped", NULL);
        xml_empty_end(&b);
        xml_close(&b, "pool");
        char *s = buf_steal(&b);
        assert_string_equal(s, "<pool type='dir'>\n"
                               "  <name>a&lt;b&gt;&amp;&apos;&quot;</name>\n"
                               "  <capacity unit='bytes'>42</capacity>\n"
                               "  <target/>\n"
                               "</pool>\n");
        free(s);
}

static void test_hashmap(void **state) {
        (void)state;
        struct hashmap *m = hashmap_new();
        char keys[2000][16];
        for (int i = 0; i < 2000; i++) {
                snprintf(keys[i], sizeof(keys[i]), "k%d", i);
                assert_int_equal(hashmap_put(m, keys[i], keys[i], NULL), 0);
        }
        assert_int_equal(hashmap_size(m), 2000);
        for (int i = 0; i < 2000; i += 2)
                assert_ptr_equal(hashmap_remove(m, keys[i]), keys[i]);
        assert_int_equal(hashmap_size(m), 1000);
        assert_null(hashmap_get(m, "k0"));
        assert_ptr_equal(hashmap_get(m, "k1"), keys[1]);
        void *old = NULL;
        assert_int_equal(hashmap_put(m, "k1", keys[3], &old), 0);
        assert_ptr_equal(old, keys[1]);
        size_t n = 0;
        for (size_t i = 0; hashmap_iter(m, &i, NULL, NULL);)
                n++;
        assert_int_equal(n, 1000);
        /* Removing while iterating. */
        const char *k;
        for (size_t i = 0; hashmap_iter(m, &i, &k, NULL);)
                hashmap_remove(m, k);
        assert_int_equal(hashmap_size(m), 0);
        for (int i = 0; i < 2000; i++) /* reuse of tombstones */
                assert_int_equal(hashmap_put(m, keys[i], keys[i], NULL), 0);
        assert_int_equal(hashmap_size(m), 2000);
        hashmap_free(m, NULL);
}

static void test_strv(void **state) {
        (void)state;
        char **l = NULL;
        assert_int_equal(strv_push(&l, "a"), 0);
        assert_int_equal(strv_push(&l, "b c"), 0);
        assert_int_equal(strv_pushf(&l, "%d", 7), 0);
        assert_int_equal(strv_length(l), 3);
        assert_true(strv_contains(l, "7"));
        char *j = strv_join(l, " ", true);
        assert_string_equal(j, "a 'b c' 7");
        free(j);
        strv_free(l);
}

/* libvirt's virUUIDParse grammar: 32 hex digits in pairs, '-' or ' ' between pairs,
 * white space around; one canonical spelling. */
static void test_uuid(void **state) {
        (void)state;
        static const char canon[] = "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91";
        static const char *const good[] = {
                "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91",
                "2D6A8C3E7F1B4D0A9A535B0C2E4F7A91",
                "  2d6a8c3e7f1b4d0a9a535b0c2e4f7a91\n",
                "2d-6a-8c-3e-7f-1b-4d-0a-9a-53-5b-0c-2e-4f-7a-91",
                "-2d6a8c3e 7f1b 4d0a 9a53 5b0c2e4f7a91\t",
                "2d6a8c3e--7f1b4d0a9a535b0c2e4f7a91",
        };
        static const char *const bad[] = {
                "",
                "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a9",   /* 31 digits */
                "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a911", /* 33 digits */
                "2d6a8c3e7-f1b-4d0a-9a53-5b0c2e4f7a91",  /* '-' inside a pair */
                "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a9g",
                "{2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91}",
                "2d6a8c3e:7f1b-4d0a-9a53-5b0c2e4f7a91",
                "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91 x",
                "2d6a8c3e-7f1b-4d0a-9a53-5b0c2e4f7a91-", /* only white space after the digits */
        };
        char out[UUID_STRING_LEN + 1];
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                memset(out, 0, sizeof(out));
                assert_int_equal(uuid_canonical(good[i], out), 0);
                assert_string_equal(out, canon);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(uuid_canonical(bad[i], out), -EINVAL);
        assert_int_equal(uuid_canonical(NULL, out), -EINVAL);

        uint8_t u[UUID_BYTES];
        assert_int_equal(uuid_parse("00112233-4455-6677-8899-aabbccddeeff", u), 0);
        for (int i = 0; i < UUID_BYTES; i++)
                assert_int_equal(u[i], i * 0x11);

        /* Generated: version 4, RFC 4122 variant, canonical, two calls differ. */
        char *a = uuid_generate_string(), *b = uuid_generate_string();
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(uuid_canonical(a, out), 0);
        assert_string_equal(out, a);
        assert_int_equal(a[14], '4');
        assert_non_null(strchr("89ab", a[19]));
        assert_string_not_equal(a, b);
        free(a);
        free(b);
}

/* libvirt's virMacAddrParse grammar: six octets of one or two hex digits, ':' only. */
static void test_mac(void **state) {
        (void)state;
        static const char *const good[][2] = {
                {"52:54:00:0a:0b:0c", "52:54:00:0a:0b:0c"},
                {"52:54:0:A:b:C", "52:54:00:0a:0b:0c"},
                {"0:0:0:0:0:1", "00:00:00:00:00:01"},
                {"FE:FF:FF:FF:FF:FF", "fe:ff:ff:ff:ff:ff"},
        };
        static const char *const bad[] = {
                "",
                "52:54:00:0a:0b",       /* five octets */
                "52:54:00:0a:0b:0c:0d", /* seven */
                "52:54:00:0a:0b:0c:",   /* trailing separator */
                "52:54:00:00a:0b:0c",   /* three digits */
                "52-54-00-0a-0b-0c",    /* libvirt takes ':' only */
                "52:54::0a:0b:0c",      /* empty octet */
                "52:54:00:0a:0b:0g",
                " 52:54:00:0a:0b:0c", /* no space or sign before an octet */
                "52:54:00:+a:0b:0c",
                "52:54:00:0x:0b:0c",
                "52:54:00:0a:0b:0c ",
        };
        char out[MAC_STRING_LEN + 1];
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                assert_int_equal(mac_canonical(good[i][0], out), 0);
                assert_string_equal(out, good[i][1]);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(mac_canonical(bad[i], out), -EINVAL);
        assert_int_equal(mac_canonical(NULL, out), -EINVAL);

        uint8_t m[MAC_BYTES];
        assert_int_equal(mac_parse("01:00:5e:00:00:01", m), 0);
        assert_true(mac_is_multicast(m));
        assert_int_equal(mac_parse("ff:ff:ff:ff:ff:ff", m), 0);
        assert_true(mac_is_multicast(m));
        assert_int_equal(mac_parse("52:54:00:00:00:01", m), 0);
        assert_false(mac_is_multicast(m));
        assert_int_equal(mac_parse("3:0:0:0:0:0", m), 0);
        assert_true(mac_is_multicast(m));

        assert_true(mac_is_full_form("52:54:00:0A:0b:0c"));
        assert_false(mac_is_full_form("52:54:0:a:b:c"));
        assert_false(mac_is_full_form("52-54-00-0a-0b-0c"));

        char *g = mac_generate_string();
        assert_non_null(g);
        assert_int_equal(strncmp(g, "52:54:00:", 9), 0);
        assert_int_equal(mac_canonical(g, out), 0);
        assert_string_equal(out, g);
        free(g);
}

static void test_error(void **state) {
        (void)state;
        struct dv_error e = DV_ERROR_INIT;
        assert_false(dv_error_failed(&e));
        assert_int_equal(dv_error_add(&e, -ERANGE, 3, "too %s", "big"), -ERANGE);
        dv_error_add(&e, 0, 0, "second");
        dv_error_warn(&e, 5, "ignored <x>");
        dv_error_set_file(&e, "f.xml");
        char *s = dv_error_format(&e, 0);
        assert_string_equal(s, "f.xml:3: too big");
        free(s);
        s = dv_error_format(&e, 1);
        assert_string_equal(s, "f.xml: second");
        free(s);
        assert_int_equal(e.code, -ERANGE);
        assert_int_equal(e.n_warnings, 1);
        struct dv_error m = DV_ERROR_INIT;
        dv_error_move(&m, &e);
        assert_false(dv_error_failed(&e));
        assert_true(dv_error_failed(&m));
        dv_error_clear(&m);
        assert_int_equal(dv_error_add(NULL, -EIO, 0, "no error object"), -EIO);
}

/* path_chase() against a small tree of directories and symlinks in a fresh directory. */
static void test_path_chase(void **state) {
        (void)state;
        char tmpl[] = "/tmp/test-chase.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        assert_int_equal(chmod(tmpl, 0755), 0);
        char *p = NULL, *want = NULL;
#define AT(name) (free(p), p = path_join(tmpl, name), p)
        assert_int_equal(mkdir(AT("a"), 0755), 0);
        assert_int_equal(mkdir(AT("a/b"), 0755), 0);
        assert_int_equal(symlink("a/b", AT("rel")), 0);
        assert_int_equal(symlink("../a/./b", AT("a/up")), 0);
        assert_int_equal(symlink("loop", AT("loop")), 0);
        assert_int_equal(symlink(tmpl, AT("a/abs")), 0);
        FILE *f = fopen(AT("a/b/f"), "w");
        assert_non_null(f);
        fclose(f);

        struct chase c = CHASE_INIT;
        want = path_join(tmpl, "a/b/f");
        /* Relative, ".." inside a symlink, an absolute symlink back to the top. */
        const char *ways[] = {"rel/f", "a/up/f", "a/abs/a/abs/rel/f", "a/../rel//./f"};
        for (size_t i = 0; i < ELEMENTSOF(ways); i++) {
                assert_int_equal(path_chase(AT(ways[i]), 0, &c), 0);
                assert_string_equal(c.path, want);
                struct stat a, b;
                assert_int_equal(fstat(c.fd, &a), 0);
                assert_int_equal(stat(want, &b), 0);
                assert_true(a.st_ino == b.st_ino);
                int fd = fd_reopen(c.fd, O_RDONLY);
                assert_true(fd >= 0);
                close(fd);
                chase_done(&c);
        }
        /* A missing tail: an error, or appended as written with CHASE_NONEXISTENT. */
        assert_int_equal(path_chase(AT("rel/x/y"), 0, &c), -ENOENT);
        chase_done(&c);
        assert_int_equal(path_chase(AT("rel/x//y/"), CHASE_NONEXISTENT, &c), 0);
        free(want);
        want = path_join(tmpl, "a/b/x/y");
        assert_string_equal(c.path, want);
        assert_int_equal(c.fd, -1);
        chase_done(&c);
        assert_int_equal(path_chase(AT("loop/f"), CHASE_NONEXISTENT, &c), -ELOOP);
        chase_done(&c);
        assert_int_equal(path_chase(AT("a/b/f/g"), 0, &c), -ENOTDIR);
        chase_done(&c);

        /* CHASE_TRUSTED: every directory on the way, through the symlinks. */
        if (geteuid() == 0) {
                assert_int_equal(path_chase(AT("rel/f"), CHASE_TRUSTED, &c), 0);
                chase_done(&c);
                assert_int_equal(chmod(AT("a"), 0775), 0);
                assert_int_equal(path_chase(AT("rel/f"), CHASE_TRUSTED, &c), -EPERM);
                assert_non_null(strstr(c.refused, "/a, writable by its group (mode 0775)"));
                chase_done(&c);
                /* Sticky: root's entries cannot be renamed by others. */
                assert_int_equal(chmod(AT("a"), 01777), 0);
                assert_int_equal(path_chase(AT("rel/f"), CHASE_TRUSTED, &c), 0);
                chase_done(&c);
                assert_int_equal(lchown(AT("a/b"), 65534, 65534), 0);
                assert_int_equal(path_chase(AT("rel/f"), CHASE_TRUSTED, &c), -EPERM);
                assert_non_null(strstr(c.refused,
                                       "/a/b, owned by uid 65534 in a directory others can write"));
                chase_done(&c);
                assert_int_equal(chmod(AT("a"), 0755), 0);
                assert_int_equal(path_chase(AT("rel/f"), CHASE_TRUSTED, &c), -EPERM);
                assert_non_null(strstr(c.refused, "/a/b, owned by uid 65534, not root"));
                chase_done(&c);
        } else {
                /* The fresh directory is ours, not root's. */
                assert_int_equal(path_chase(AT("rel/f"), CHASE_TRUSTED, &c), -EPERM);
                assert_non_null(c.refused);
                chase_done(&c);
        }
#undef AT
        const char *rm[] = {"a/b/f", "a/up", "a/abs", "a/b", "a", "rel", "loop"};
        for (size_t i = 0; i < ELEMENTSOF(rm); i++) {
                char *q = path_join(tmpl, rm[i]);
                assert_int_equal(remove(q), 0);
                free(q);
        }
        assert_int_equal(rmdir(tmpl), 0);
        free(p);
        free(want);
}

/* ---- files the agent writes ------------------------------------------------------------- */

/* Entries of dir other than . and .., dot files (temp files) included. */
static int count_entries(const char *dir) {
        DIR *d = opendir(dir);
        assert_non_null(d);
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

/* metrics_file may sit in a directory others write (a textfile collector's): what they
 * plant there, at any name, is neither opened (a FIFO would block) nor followed. */
static void test_write_file_atomic_planted(void **state) {
        (void)state;
        char *dir = test_mkdtemp("declvirt-fs");
        char *path = path_join(dir, "metrics.prom");
        char *victim = path_join(dir, "victim");
        char *fifo = NULL, *old_tmp = NULL;
        assert_true(asprintf(&fifo, "%s.tmp.%d", path, (int)getpid()) > 0);
        assert_true(asprintf(&old_tmp, ".metrics.prom.%d.tmp", (int)getpid()) > 0);
        /* The temp name of earlier versions, and a FIFO at the final name too. */
        assert_int_equal(mkfifo(fifo, 0666), 0);
        char *fifo2 = path_join(dir, old_tmp);
        assert_int_equal(mkfifo(fifo2, 0666), 0);
        FILE *f = fopen(victim, "we");
        assert_non_null(f);
        fputs("root's secret\n", f);
        fclose(f);
        assert_int_equal(chmod(victim, 0600), 0);
        assert_int_equal(symlink(victim, path), 0);

        assert_int_equal(write_file_atomic(path, "m 1\n", 4, 0644), 0);
        size_t len = 0;
        char *data = test_read_file(victim, &len);
        assert_string_equal(data, "root's secret\n");
        free(data);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        data = test_read_file(path, &len);
        assert_string_equal(data, "m 1\n");
        free(data);
        /* Nothing left behind: the two FIFOs, the victim and the file. */
        assert_int_equal(count_entries(dir), 4);

        /* A FIFO at the final name is replaced, not opened. */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0666), 0);
        assert_int_equal(write_file_atomic(path, "m 2\n", 4, 0600), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        /* Temp names are not predictable. */
        char *a = NULL, *b = NULL;
        assert_int_equal(temp_name("metrics.prom", &a), 0);
        assert_int_equal(temp_name("metrics.prom", &b), 0);
        assert_string_not_equal(a, b);
        assert_int_equal(strncmp(a, ".metrics.prom.", 14), 0);
        free(a);
        free(b);

        test_rm_rf(dir);
        free(fifo);
        free(fifo2);
        free(old_tmp);
        free(victim);
        free(path);
        free(dir);
}

static void test_open_private_log(void **state) {
        (void)state;
        char *dir = test_mkdtemp("declvirt-fs");
        char *log = path_join(dir, "d.console.log");
        int fd = open_private_log(log);
        assert_true(fd > 2);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
        close(fd);
        struct stat st;
        assert_int_equal(stat(log, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* One from an older version loses group and other access. */
        assert_int_equal(chmod(log, 0644), 0);
        fd = open_private_log(log);
        assert_true(fd > 2);
        close(fd);
        assert_int_equal(stat(log, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* A FIFO does not block; a symlink is not followed. */
        assert_int_equal(unlink(log), 0);
        assert_int_equal(mkfifo(log, 0666), 0);
        assert_int_equal(open_private_log(log), -EBADFD);
        assert_int_equal(unlink(log), 0);
        assert_int_equal(symlink("/etc/passwd", log), 0);
        assert_int_equal(open_private_log(log), -ELOOP);
        test_rm_rf(dir);
        free(log);
        free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_u64),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_parse_scaled),
                cmocka_unit_test(test_xml_writer),
                cmocka_unit_test(test_hashmap),
                cmocka_unit_test(test_strv),
                cmocka_unit_test(test_error),
                cmocka_unit_test(test_uuid),
                cmocka_unit_test(test_mac),
                cmocka_unit_test(test_path_chase),
                cmocka_unit_test(test_write_file_atomic_planted),
                cmocka_unit_test(test_open_private_log),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
