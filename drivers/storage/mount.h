/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The mount table as /proc/self/mountinfo shows it (octal escapes such as \040
 * undone), cached until the kernel says it changed; shared by the fs and netfs pools. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/macro.h"

struct mount_entry {
        int id, parent_id;
        unsigned major, minor; /* st_dev of the files in it */
        char *root;            /* the directory of the file system mounted here ("/" usually) */
        char *target;          /* the mount point */
        char *fstype;          /* "ext4", "nfs4", "fuse.glusterfs" ... */
        char *source;          /* "/dev/loop0", "host:/dir", "//host/share", "none" ... */
};

struct mount_table {
        struct mount_entry *entries;
        size_t n;
        unsigned refs; /* atomic */
};

/* Parses the text of a mountinfo file. Malformed lines are skipped (the kernel does
 * not write them; a test may). Returns 0 or -ENOMEM; *ret has one reference. */
int mount_table_parse(const char *text, size_t len, struct mount_table **ret);
/* Reads and parses a mountinfo file. */
int mount_table_read(const char *path, struct mount_table **ret);
/* This process's mount table. Cheap when nothing was mounted or unmounted since the
 * last call: one poll() of an open /proc/self/mountinfo, which the kernel marks with
 * POLLPRI on every change in the mount namespace. Thread-safe. The caller owns one
 * reference. */
int mount_table_current(struct mount_table **ret);
/* How many times mount_table_current read the file (for tests of the cache). */
unsigned long mount_table_reads(void);

struct mount_table *mount_table_ref(struct mount_table *t);
void mount_table_unref(struct mount_table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct mount_table *, mount_table_unref)
#define _cleanup_mount_table_ _cleanup_(mount_table_unrefp)

/* The mount that is visible at target: of the entries with that mount point, the one
 * no other entry with the same mount point is mounted on top of. NULL if none. */
const struct mount_entry *mount_table_find_target(const struct mount_table *t, const char *target);

/* Undoes the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134
 * backslash); any other backslash is kept as it is. Caller frees; NULL on ENOMEM. */
char *mount_unescape(const char *s, size_t len);
