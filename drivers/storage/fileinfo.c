/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File volume facts (fileinfo.h): header magic, qemu-img info through the command
 * runner, and a cache keyed by what a change to the file changes. */
#include <errno.h>
#include <fcntl.h>
#include <json_object.h>
#include <json_tokener.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/cmd.h"
#include "drivers/storage/fileinfo.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strv.h"

#define QEMU_IMG_INFO_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define QEMU_IMG_INFO_MAX_OUTPUT   (1u << 20)
/* A pool with more files than this is unusual; past it the cache starts over
 * rather than growing without bound (entries of deleted files are never used again). */
#define FILEINFO_CACHE_MAX 65536

static bool has_magic(const unsigned char *h, size_t len, size_t off, const char *magic,
                      size_t mlen) {
        return len >= off + mlen && memcmp(h + off, magic, mlen) == 0;
}

static uint32_t be32(const unsigned char *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p) {
        return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* qcow2 header fields (QEMU's docs/interop/qcow2.txt). */
#define QCOW2_V2_HEADER_LEN        72
#define QCOW2_EXT_BACKING_FMT      0xe2792acau
#define QCOW2_INCOMPAT_DIRTY       (1u << 0)
#define QCOW2_INCOMPAT_COMPRESSION (1u << 3)
#define QCOW2_INCOMPAT_EXTL2       (1u << 4)
#define QCOW2_BACKING_MAX          1023 /* QEMU refuses longer backing file names */

int fileinfo_parse_qcow2(const void *header, size_t len, int fd, struct fileinfo *ret) {
        const unsigned char *h = header;
        if (len < QCOW2_V2_HEADER_LEN || !has_magic(h, len, 0, "QFI\xfb", 4))
                return -EBADMSG;
        uint32_t version = be32(h + 4);
        if (version != 2 && version != 3)
                return -EOPNOTSUPP;
        uint64_t backing_off = be64(h + 8);
        uint32_t backing_len = be32(h + 16);
        uint32_t crypt = be32(h + 32);
        size_t header_len = QCOW2_V2_HEADER_LEN;
        if (version == 3) {
                if (len < 104)
                        return -EBADMSG;
                /* Corrupt, an external data file or anything newer: qemu-img knows. */
                uint64_t incompat = be64(h + 72);
                if (incompat & ~(uint64_t)(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_COMPRESSION |
                                           QCOW2_INCOMPAT_EXTL2))
                        return -EOPNOTSUPP;
                header_len = be32(h + 100);
                if (header_len < 104)
                        return -EBADMSG;
        }
        if (crypt != 0 || backing_len > QCOW2_BACKING_MAX)
                return -EOPNOTSUPP;
        struct fileinfo fi = {.capacity = be64(h + 24)};
        int r = 0;
        if (backing_off && backing_len) {
                fi.backing_path = calloc(1, backing_len + 1);
                if (!fi.backing_path)
                        return -ENOMEM;
                if (backing_off <= len && backing_len <= len - backing_off)
                        memcpy(fi.backing_path, h + backing_off, backing_len);
                else if (pread(fd, fi.backing_path, backing_len, (off_t)backing_off) !=
                         (ssize_t)backing_len)
                        r = -EBADMSG;
                if (r >= 0 && strlen(fi.backing_path) != backing_len)
                        r = -EBADMSG; /* a NUL inside: not a name qemu-img would show */
                /* The backing format, from the header extensions (within what was read). */
                for (size_t off = header_len; r >= 0 && off + 8 <= len;) {
                        uint32_t type = be32(h + off), elen = be32(h + off + 4);
                        if (type == 0 || elen > len - off - 8)
                                break;
                        if (type == QCOW2_EXT_BACKING_FMT) {
                                fi.backing_format = strndup((const char *)h + off + 8, elen);
                                if (!fi.backing_format)
                                        r = -ENOMEM;
                                break;
                        }
                        off += 8 + (((size_t)elen + 7) & ~(size_t)7);
                }
        }
        if (r < 0) {
                fileinfo_done(&fi);
                return r;
        }
        *ret = fi;
        return 0;
}

const char *fileinfo_detect_format(const void *header, size_t len) {
        const unsigned char *h = header;
        if (has_magic(h, len, 0, "QFI\xfb", 4) && len >= 8) {
                uint32_t version = be32(h + 4);
                if (version == 1)
                        return "qcow";
                if (version == 2 || version == 3)
                        return "qcow2";
        }
        if (has_magic(h, len, 0, "QED\0", 4))
                return "qed";
        if (has_magic(h, len, 0, "KDMV", 4) || has_magic(h, len, 0, "# Disk DescriptorFile", 21))
                return "vmdk";
        if (has_magic(h, len, 64, "\x7f\x10\xda\xbe", 4))
                return "vdi";
        if (has_magic(h, len, 0, "conectix", 8))
                return "vpc";
        if (has_magic(h, len, 0, "LUKS\xba\xbe", 6))
                return "luks";
        if (has_magic(h, len, 0, "Bochs Virtual HD Image", 22))
                return "bochs";
        if (has_magic(h, len, 0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop", 37))
                return "cloop";
        if (has_magic(h, len, 0, "OOOM", 4) && len >= 8 && be32(h + 4) == 2)
                return "cow";
        if (has_magic(h, len, 32769, "CD001", 5))
                return "iso";
        return "raw";
}

/* Reads the header into h (FILEINFO_HEADER_SIZE bytes); its length in *len. */
static int read_header(int fd, unsigned char *h, size_t *ret_len) {
        size_t len = 0;
        while (len < FILEINFO_HEADER_SIZE) {
                ssize_t n = pread(fd, h + len, FILEINFO_HEADER_SIZE - len, (off_t)len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret_len = len;
        return 0;
}

int fileinfo_probe_fd(int fd, const char **ret) {
        _cleanup_free_ unsigned char *h = malloc(FILEINFO_HEADER_SIZE);
        if (!h)
                return -ENOMEM;
        size_t len = 0;
        int r = read_header(fd, h, &len);
        if (r < 0)
                return r;
        *ret = fileinfo_detect_format(h, len);
        return 0;
}

bool fileinfo_format_uses_qemu_img(const char *format) {
        static const char *const image_formats[] = {"qcow2", "qcow", "qed",   "vmdk",
                                                    "vdi",   "vpc",  "bochs", "cloop"};
        for (size_t i = 0; i < ELEMENTSOF(image_formats); i++)
                if (streq(format, image_formats[i]))
                        return true;
        return false;
}

const char *fileinfo_qemu_format(const char *format) {
        return streq(format, "iso") ? "raw" : format;
}

int fileinfo_qemu_img_info_argv(const char *path, const char *format, char ***ret) {
        if (!path || path[0] != '/')
                return -EINVAL;
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_push(&argv, "qemu-img") < 0 || strv_push(&argv, "info") < 0 ||
            strv_push(&argv, "-f") < 0 || strv_push(&argv, fileinfo_qemu_format(format)) < 0 ||
            strv_push(&argv, "-U") < 0 || strv_push(&argv, "--output=json") < 0 ||
            strv_push(&argv, path) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int json_get_u64(struct json_object *o, const char *key, bool required, uint64_t *ret,
                        struct dv_error *err) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v)) {
                if (required)
                        return dv_error_add(err, -EBADMSG, 0, "qemu-img info: no \"%s\"", key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return dv_error_add(err, -EBADMSG, 0, "qemu-img info: \"%s\" is not a size", key);
        *ret = (uint64_t)json_object_get_int64(v);
        return 1;
}

static int json_get_str(struct json_object *o, const char *key, char **ret) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return 0;
        char *s = strdup(json_object_get_string(v));
        if (!s)
                return -ENOMEM;
        free(*ret);
        *ret = s;
        return 1;
}

int fileinfo_parse_qemu_img_info(const char *json, size_t len, struct fileinfo *ret,
                                 struct dv_error *err) {
        if (len > INT32_MAX)
                return dv_error_add(err, -EFBIG, 0, "qemu-img info: output too large");
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        struct json_object *root = json_tokener_parse_ex(tok, json, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        while (end < len && strchr(" \t\r\n", json[end]) && json[end] != '\0')
                end++;
        if (root && jerr == json_tokener_success && end < len) {
                json_object_put(root);
                return dv_error_add(err, -EBADMSG, 0,
                                    "qemu-img info: trailing data after the JSON object");
        }
        if (!root || jerr != json_tokener_success) {
                json_object_put(root);
                return dv_error_add(err, -EBADMSG, 0, "qemu-img info: invalid JSON: %s",
                                    json_tokener_error_desc(jerr));
        }
        struct fileinfo fi = {0};
        int r = 0;
        if (!json_object_is_type(root, json_type_object))
                r = dv_error_add(err, -EBADMSG, 0, "qemu-img info: not a JSON object");
        if (r >= 0)
                r = json_get_u64(root, "virtual-size", true, &fi.capacity, err);
        if (r >= 0)
                r = json_get_u64(root, "actual-size", false, &fi.allocation, err);
        if (r >= 0)
                r = json_get_str(root, "format", &fi.format);
        if (r >= 0)
                r = json_get_str(root, "backing-filename", &fi.backing_path);
        if (r >= 0)
                r = json_get_str(root, "backing-filename-format", &fi.backing_format);
        json_object_put(root);
        if (r < 0) {
                fileinfo_done(&fi);
                return r == -ENOMEM ? dv_error_oom(err) : r;
        }
        *ret = fi;
        return 0;
}

void fileinfo_done(struct fileinfo *fi) {
        if (!fi)
                return;
        free(fi->format);
        free(fi->backing_path);
        free(fi->backing_format);
        *fi = (struct fileinfo){0};
}

static int fileinfo_copy(const struct fileinfo *src, struct fileinfo *dst) {
        struct fileinfo c = {.capacity = src->capacity, .allocation = src->allocation};
        if ((src->format && !(c.format = strdup(src->format))) ||
            (src->backing_path && !(c.backing_path = strdup(src->backing_path))) ||
            (src->backing_format && !(c.backing_format = strdup(src->backing_format)))) {
                fileinfo_done(&c);
                return -ENOMEM;
        }
        *dst = c;
        return 0;
}

/* ---- the cache ------------------------------------------------------------------------ */

struct file_key {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
};

struct cache_entry {
        struct file_key key;
        struct fileinfo fi;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hashmap *cache; /* path -> struct cache_entry, under cache_lock */
static uint64_t qemu_img_runs;

static struct file_key key_of(const struct stat *st) {
        return (struct file_key){.dev = st->st_dev,
                                 .ino = st->st_ino,
                                 .size = st->st_size,
                                 .mtime = st->st_mtim,
                                 .ctime = st->st_ctim};
}

static bool key_equal(const struct file_key *a, const struct file_key *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
               a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void cache_entry_free(void *p) {
        struct cache_entry *e = p;
        if (!e)
                return;
        fileinfo_done(&e->fi);
        free(e);
}

/* Raw data has its sizes in the stat: always fresh, even on a cache hit. */
static void sizes_from_stat(struct fileinfo *fi, const struct stat *st) {
        fi->capacity = (uint64_t)st->st_size;
        fi->allocation = (uint64_t)st->st_blocks * 512;
}

static int cache_lookup(const char *path, const struct stat *st, struct fileinfo *ret) {
        struct file_key k = key_of(st);
        int r = 0;
        pthread_mutex_lock(&cache_lock);
        struct cache_entry *e = cache ? hashmap_get(cache, path) : NULL;
        if (e && key_equal(&e->key, &k))
                r = fileinfo_copy(&e->fi, ret) < 0 ? -ENOMEM : 1;
        pthread_mutex_unlock(&cache_lock);
        if (r > 0 && !fileinfo_format_uses_qemu_img(ret->format))
                sizes_from_stat(ret, st);
        return r;
}

static void cache_store(const char *path, const struct stat *st, const struct fileinfo *fi) {
        struct cache_entry *e = calloc(1, sizeof(*e));
        if (!e || fileinfo_copy(fi, &e->fi) < 0) {
                free(e);
                return; /* not cached: computed again next time */
        }
        e->key = key_of(st);
        pthread_mutex_lock(&cache_lock);
        if (cache && hashmap_size(cache) >= FILEINFO_CACHE_MAX) {
                hashmap_free(cache, cache_entry_free);
                cache = NULL;
        }
        if (!cache)
                cache = hashmap_new();
        void *old = NULL;
        if (!cache || hashmap_put(cache, path, e, &old) < 0)
                cache_entry_free(e);
        else
                cache_entry_free(old);
        pthread_mutex_unlock(&cache_lock);
}

void fileinfo_forget(const char *path) {
        pthread_mutex_lock(&cache_lock);
        if (cache)
                cache_entry_free(hashmap_remove(cache, path));
        pthread_mutex_unlock(&cache_lock);
}

void fileinfo_cache_clear(void) {
        pthread_mutex_lock(&cache_lock);
        hashmap_free(cache, cache_entry_free);
        cache = NULL;
        pthread_mutex_unlock(&cache_lock);
}

uint64_t fileinfo_qemu_img_runs(void) {
        return __atomic_load_n(&qemu_img_runs, __ATOMIC_RELAXED);
}

/* Runs qemu-img info; 0 with fi filled, 1 when qemu-img ran but failed (a corrupt
 * image: worth caching), negative when it could not run at all. */
static int query_qemu_img(const char *path, int fd, const char *format, struct fileinfo *fi) {
        _cleanup_strv_free_ char **argv = NULL;
        char fdpath[FILEINFO_FD_PATH_MAX];
        int r = fileinfo_qemu_img_info_argv(fileinfo_fd_path(fd, fdpath), format, &argv);
        if (r < 0)
                return r;
        struct cmd_opts opts = {.timeout_usec = QEMU_IMG_INFO_TIMEOUT_USEC,
                                .max_output = QEMU_IMG_INFO_MAX_OUTPUT};
        struct cmd_result res = {0};
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        __atomic_add_fetch(&qemu_img_runs, 1, __ATOMIC_RELAXED);
        r = cmd_run(argv, &opts, &res, &err);
        if (r >= 0)
                r = fileinfo_parse_qemu_img_info(res.out, res.out_len, fi, &err);
        if (r < 0) {
                log_debug("%s: %s", path, strna(dv_error_message(&err)));
                /* Could not run (qemu-img missing, killed): do not remember the failure. */
                r = res.exit_status > 0 || r == -EBADMSG ? 1 : r;
        }
        cmd_result_done(&res);
        return r;
}

const char *fileinfo_fd_path(int fd, char buf[static FILEINFO_FD_PATH_MAX]) {
        snprintf(buf, FILEINFO_FD_PATH_MAX, "/proc/%d/fd/%d", (int)getpid(), fd);
        return buf;
}

int fileinfo_get(int dirfd, const char *name, const char *path, const struct stat *st,
                 struct fileinfo *ret, struct dv_error *err) {
        int r = cache_lookup(path, st, ret);
        if (r != 0)
                return r < 0 ? dv_error_oom(err) : 0;

        /* O_NONBLOCK: never hang on a FIFO swapped in after the caller's stat;
         * O_NOFOLLOW and the identity check: never measure another file. */
        _cleanup_close_ int fd =
                openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot open %s: %s", path, strerror(-r));
        }
        struct stat fst;
        if (fstat(fd, &fst) < 0) {
                r = -errno;
                return dv_error_add(err, r, 0, "cannot stat %s: %s", path, strerror(-r));
        }
        if (!S_ISREG(fst.st_mode))
                return dv_error_add(err, -EBADF, 0, "%s is not a regular file", path);
        if (fst.st_dev != st->st_dev || fst.st_ino != st->st_ino)
                return dv_error_add(err, -ESTALE, 0, "%s was replaced while it was looked at",
                                    path);
        _cleanup_free_ unsigned char *h = malloc(FILEINFO_HEADER_SIZE);
        size_t len = 0;
        r = h ? read_header(fd, h, &len) : -ENOMEM;
        if (r < 0)
                return dv_error_add(err, r, 0, "cannot read %s: %s", path, strerror(-r));
        const char *format = fileinfo_detect_format(h, len);

        struct fileinfo fi = {0};
        bool cacheable = true;
        /* qcow2, the format the agent makes, is read from its header: no qemu-img run
         * for each new or changed volume. Anything unusual in it goes to qemu-img. */
        if (streq(format, "qcow2") && fileinfo_parse_qcow2(h, len, fd, &fi) >= 0)
                fi.allocation = (uint64_t)fst.st_blocks * 512;
        else if (fileinfo_format_uses_qemu_img(format)) {
                r = query_qemu_img(path, fd, format, &fi);
                if (r != 0) {
                        cacheable = r > 0;
                        fileinfo_done(&fi);
                        sizes_from_stat(&fi, &fst);
                } else if (fi.allocation == 0)
                        fi.allocation = (uint64_t)fst.st_blocks * 512;
        } else
                sizes_from_stat(&fi, &fst);
        /* The header decides the format name: qemu-img was told which one to use. */
        free(fi.format);
        fi.format = strdup(format);
        if (!fi.format) {
                fileinfo_done(&fi);
                return dv_error_oom(err);
        }
        if (cacheable)
                cache_store(path, &fst, &fi);
        *ret = fi;
        return 0;
}
