/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File-system helpers: bounded reads, path joins, directory creation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/macro.h"

/* Reads a whole file; -EFBIG if it is larger than max bytes. Adds a NUL after the data. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_len) _warn_unused_result_;
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_len) _warn_unused_result_;
/* a + "/" + b, with no doubled slash; NULL on allocation failure. */
char *path_join(const char *a, const char *b) _warn_unused_result_;
/* Makes an absolute path of p relative to dir (p returned copied when absolute). */
char *path_make_absolute(const char *p, const char *dir) _warn_unused_result_;
/* Directory part of path ("." when none); caller frees. */
char *path_dirname(const char *path) _warn_unused_result_;
/* mkdir -p with mode for the created components. */
int mkdir_p(const char *path, mode_t mode) _warn_unused_result_;
/* Writes data to path atomically: an unnamed (O_TMPFILE) or randomly named (O_EXCL)
 * temp file in the same directory, fsync, rename, fsync of the directory. Nothing
 * planted in the directory is opened or followed. */
int write_file_atomic(const char *path, const void *data, size_t len,
                      mode_t mode) _warn_unused_result_;
/* A temp file name for base nobody can guess: ".BASE.<16 hex digits>.tmp". */
int temp_name(const char *base, char **ret) _warn_unused_result_;
/* Opens a log for appending, created 0600; an existing one loses group and other
 * access. Never blocks on a FIFO nor follows a symlink; anything but a regular file is
 * -EBADFD. Returns the fd (O_CLOEXEC) or -errno. */
int open_private_log(const char *path) _warn_unused_result_;
/* Removes empty and "." components and doubled or trailing slashes, in place. */
void path_simplify(char *s);
/* storage_locations: true when path (absolute, no "..") or a directory above it
 * matches one of the fnmatch(FNM_PATHNAME) patterns; an empty list allows anything. */
bool path_location_allowed(char *const *patterns, const char *path);

/* Reads a file holding one decimal number (a pidfile, a sysctl) in [min, max];
 * trailing newlines and spaces are allowed. -ERANGE/-EINVAL when it holds anything else. */
int read_u64_file(const char *path, uint64_t min, uint64_t max, uint64_t *ret) _warn_unused_result_;

/* path_chase() flags. */
enum {
        /* Refuse a way through a directory that anyone but root could change: one not
         * owned by root, or writable by group or others unless it is sticky and the
         * entry taken from it is root's (then only root can rename or remove that entry).
         * The rule sshd's StrictModes applies to a path, here for every step of every
         * symlink followed. */
        CHASE_TRUSTED = 1 << 0,
        /* A missing component ends the walk: the rest is appended as written and no
         * descriptor is returned. */
        CHASE_NONEXISTENT = 1 << 1,
};

struct chase {
        char *path;    /* the path resolved: absolute, no symlink, no "." or ".." */
        int fd;        /* O_PATH descriptor of the object; -1 when missing (CHASE_NONEXISTENT) */
        char *refused; /* CHASE_TRUSTED: why the way was refused ("/x, writable by others") */
};
#define CHASE_INIT \
        { .fd = -1 }
void chase_done(struct chase *c);

/* Resolves path component by component from "/" (a relative path from the working
 * directory) with openat(O_PATH|O_NOFOLLOW) and readlinkat, following at most 40
 * symlinks. Nothing is looked up twice by name, so the descriptor returned is the
 * object every check was made on. -EPERM with ret->refused set when CHASE_TRUSTED
 * refuses a directory on the way; -ELOOP past 40 symlinks; -errno otherwise. */
int path_chase(const char *path, unsigned flags, struct chase *ret) _warn_unused_result_;
/* Opens the object of an O_PATH descriptor with flags (through /proc/self/fd), checked
 * to be the same inode. Returns the new descriptor or -errno. */
int fd_reopen(int fd, int flags) _warn_unused_result_;
