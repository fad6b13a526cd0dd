/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The desired set: the files of desired_dir (docs/design.md#desired-files), scanned
 * incrementally. A file is re-read only when its (dev, inode, size, mtime, ctime)
 * changed; files that are refused (untrusted, outside storage_locations, invalid)
 * keep their error. The set knows files, not objects: the engine resolves ids,
 * duplicates and last-known-good. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "model/object.h"
#include "util/error.h"

#define DESIRED_MAX_DEPTH 3

/* True when a directory entry name can be a desired file: ends in .xml and is
 * none of the temporary or backup names that tools leave behind. */
bool desired_name_is_candidate(const char *name);

/* The trust rule (docs/design.md#desired-files): when running as root, a file or directory
 * owned by anyone but root or writable by group or others is refused. Returns 0,
 * or -EPERM with the reason in err. */
int desired_check_trust(const char *path, const struct stat *st, struct dv_error *err);
/* Reads a desired file: path resolved once by descriptors (util/fs.h path_chase), with
 * check_trust every directory on the way, through every symlink, must be root's
 * (CHASE_TRUSTED), and the descriptor the bytes are read from must pass
 * desired_check_trust. At most DV_XML_MAX_SIZE bytes. ret_st (may be NULL): the fstat of
 * what was read. Returns 0 or -errno with the reason in err. */
int desired_read_file(const char *path, bool check_trust, char **ret_data, size_t *ret_len,
                      struct stat *ret_st, struct dv_error *err) _warn_unused_result_;
/* storage_locations (fnmatch FNM_PATHNAME): a pool target, volume path or domain
 * disk file outside them is refused. locations NULL/empty: anywhere. */
int desired_check_locations(const struct dv_object *o, char *const *locations,
                            struct dv_error *err);
/* What the object's driver refuses offline (a domain element its driver does not support). */
int desired_check_driver(const struct dv_object *o, struct dv_error *err);

struct desired_file {
        char *path; /* absolute path as found (a symlink's own path) */
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
        struct dv_object *obj; /* NULL when refused or invalid */
        struct dv_error err;   /* problems (and warnings) of the last read */
        char *last_id;         /* id of the object this file last defined validly */
        uint64_t generation;   /* scan generation that last changed it */
        bool seen;
};

struct desired_set;

int desired_set_new(const char *root, bool check_trust, char *const *locations,
                    struct desired_set **ret);
void desired_set_free(struct desired_set *s);
/* New storage_locations (agent.conf reloaded): every file is read again on the next
 * scan, so the rule applies to all of them. */
int desired_set_set_locations(struct desired_set *s, char *const *locations);
/* Rescans the subtrees at dirs (NULL: the whole root). Returns the number of files
 * added, changed or removed. Directory-level problems (root missing, untrusted
 * directory) are reported through desired_set_problems. */
int desired_set_scan(struct desired_set *s, char *const *dirs);
/* Iteration over the files: for (size_t i = 0; (f = desired_set_next(s, &i));) */
struct desired_file *desired_set_next(const struct desired_set *s, size_t *i);
size_t desired_set_count(const struct desired_set *s);
uint64_t desired_set_generation(const struct desired_set *s);
/* Problems with directories: paths refused, root missing. */
const struct dv_error *desired_set_problems(const struct desired_set *s);
const char *desired_set_root(const struct desired_set *s);
