/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Facts about file volumes, shared by the dir, fs and netfs pools: the format from
 * the file's header, sizes, backing store; qemu-img info results cached per file version. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "util/error.h"

struct fileinfo {
        char *format;         /* libvirt's name: raw, qcow2, qcow, vmdk, vdi, vpc, iso, ... */
        uint64_t capacity;    /* what the guest sees */
        uint64_t allocation;  /* what the file uses on disk */
        char *backing_path;   /* as recorded in the image, or NULL */
        char *backing_format; /* or NULL */
};

/* Bytes of header the detection looks at: iso9660's "CD001" sits at 32769. */
#define FILEINFO_HEADER_SIZE 32774

/* The format the header shows (libvirt's names); "raw" when nothing matches. Pure. */
const char *fileinfo_detect_format(const void *header, size_t len);
/* Capacity and backing store (name and format) of a qcow2 image from its header
 * (len bytes read from the start of fd; fd for a backing name beyond them), as qemu-img
 * info reports them. -EOPNOTSUPP for what only qemu-img should interpret (encryption,
 * an external data file, a corrupt flag, unknown incompatible features, version 1);
 * -EBADMSG for a malformed header. Allocation is not set (it is the file's blocks). */
int fileinfo_parse_qcow2(const void *header, size_t len, int fd, struct fileinfo *ret);
/* Reads the header of an open file and detects its format. */
int fileinfo_probe_fd(int fd, const char **ret);
/* Whether sizes come from qemu-img info (image formats) rather than from stat
 * (raw data: raw, iso, and formats qemu-img cannot open without more input). */
bool fileinfo_format_uses_qemu_img(const char *format);
/* The format name qemu-img's -f/-F options take ("iso" is "raw" to qemu). */
const char *fileinfo_qemu_format(const char *format);

/* qemu-img info -f FORMAT -U --output=json PATH. -U (force-share) so that an image
 * a running guest holds can still be looked at. PATH must be absolute (a relative
 * name with ':' could be read as a protocol). Pure. */
int fileinfo_qemu_img_info_argv(const char *path, const char *format, char ***ret);
/* Parses qemu-img info's JSON into ret (format, capacity, allocation, backing). */
int fileinfo_parse_qemu_img_info(const char *json, size_t len, struct fileinfo *ret,
                                 struct dv_error *err);

/* The facts of the regular file name in the directory dirfd, whose path (for the
 * cache and messages) is path. st is the caller's fstatat(AT_SYMLINK_NOFOLLOW) of it:
 * when (dev, inode, size, mtime, ctime) match a cached entry, nothing else is read.
 * Otherwise the file is opened without following a symlink and must be that same
 * inode (-ESTALE when it was replaced, -EBADF when it is not a regular file); qemu-img
 * reads it through /proc/PID/fd/N, never by its name. When qemu-img info fails the
 * sizes fall back to stat's; a file whose header cannot be read gives an error.
 * Thread-safe. */
int fileinfo_get(int dirfd, const char *name, const char *path, const struct stat *st,
                 struct fileinfo *ret, struct dv_error *err);
/* "/proc/PID/fd/FD": a name for the file fd has open that another process (qemu-img,
 * run as root) can open, whatever happens meanwhile to the file's name. */
#define FILEINFO_FD_PATH_MAX 48
const char *fileinfo_fd_path(int fd, char buf[static FILEINFO_FD_PATH_MAX]);
void fileinfo_done(struct fileinfo *fi);
/* Drops the cached facts of path (after a change the agent made itself). */
void fileinfo_forget(const char *path);
void fileinfo_cache_clear(void);
/* How many times qemu-img info has run, for tests of the cache. */
uint64_t fileinfo_qemu_img_runs(void);
