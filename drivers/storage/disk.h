/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The disk storage pool driver (docs/storage-disk.md): a partition table on
 * one block device, made and read with parted; the partitions are the volumes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/storage.h"

extern const struct storage_driver storage_driver_disk;

/* Partitions start on 1 MiB boundaries, as parted's "optimal" alignment and libvirt do. */
#define DISK_ALIGN_BYTES (1024ULL * 1024)
/* parted on a local device answers in milliseconds; a hung device must not hang us. */
#define DISK_PARTED_TIMEOUT_USEC (60ULL * 1000000)
/* Observe hashes this much of the start of the device (MBR, GPT header and entries,
 * a filesystem superblock) to know whether its cached parted facts still hold. */
#define DISK_HEAD_BYTES (128u * 1024)

/* One partition as `parted -m ... print` reports it. */
struct disk_partition {
        unsigned number;
        uint64_t start, end, size; /* bytes; end is inclusive, as parted prints it */
        char *fs;                  /* what parted found inside ("ext4", "linux-swap(v1)", "") */
        char *name;                /* gpt partition name ("" for msdos) */
        char *flags;               /* "lvm, boot" ... ("" when none) */
};

/* `parted -s -m DEV unit B print free`, parsed. */
struct disk_table {
        uint64_t size;           /* of the device, bytes */
        unsigned logical_sector; /* bytes */
        char *label;             /* parted's name: "gpt", "msdos", "loop", "unknown", ... */
        struct disk_partition *parts;
        size_t n_parts;
        struct pool_extent *free; /* free extents, inclusive ends */
        size_t n_free;
};

void disk_table_done(struct disk_table *t);
/* Parses parted's machine-readable output ("BYT;" then the device line, then one line
 * per partition or free extent; ':' and '\' inside fields escaped with '\').
 * -EINVAL with the reason when it does not have that shape. */
int drv_disk_parse_parted(const char *out, struct disk_table *ret, struct dv_error *err);

/* libvirt's disk pool format (dos, gpt, ...) <-> parted's label name (msdos, gpt, ...).
 * NULL: parted cannot make that label (lvm2) / not a partition table (loop, unknown). */
const char *drv_disk_label_to_parted(const char *format);
const char *drv_disk_label_from_parted(const char *label);
/* The pool's label format: the written one, or "gpt". */
const char *drv_disk_pool_format(const struct pool_def *def);

/* Pure argv builders, compared with tests/data/disk/ golden files.
 * parted -s -m DEV unit B print [free] */
int drv_disk_print_argv(const char *dev, bool free, char ***ret);
/* parted -s DEV mklabel LABEL (gpt by default, dos -> msdos); -EOPNOTSUPP for lvm2. */
int drv_disk_mklabel_argv(const struct pool_def *def, char ***ret);
/* parted -s DEV mkpart primary [FSTYPE] STARTB ENDB [set N lvm|raid on]: the partition
 * type follows the volume format (none/raw/linux: default; linux-swap, fat16, fat32:
 * parted's fs-type; linux-lvm, linux-raid: a flag). -EOPNOTSUPP for other formats. */
int drv_disk_mkpart_argv(const char *dev, unsigned number, uint64_t start, uint64_t end,
                         const char *format, char ***ret);
/* parted -s DEV rm N */
int drv_disk_rm_argv(const char *dev, unsigned number, char ***ret);
/* wipefs --all [--force] --types LABEL[,PMBR] DEV: only the partition table we made.
 * --force only for an image file (image true), which wipefs otherwise leaves alone. */
int drv_disk_wipefs_argv(const char *dev, const char *parted_label, bool image, char ***ret);
/* partx --update DEV: tells the kernel about partitions parted could not announce. */
int drv_disk_partx_argv(const char *dev, char ***ret);

/* Partition naming, libvirt's: DEV + 'p' + N when DEV ends in a digit, else DEV + N
 * (dev as given; the driver passes the kernel's name, symlinks resolved). The volume
 * name is the last component ("loop0p1", "sdb2"). */
char *drv_disk_partition_path(const char *dev, unsigned number);
/* The partition number that the volume name stands for on dev; -EINVAL when the name
 * is not one of dev's partition names. */
int drv_disk_partition_number(const char *dev, const char *name, unsigned *ret);

/* Where the next partition goes, decided before anything is done: the number parted
 * gives it (the lowest unused one; msdos has 4 primary slots) and the first free extent
 * that holds capacity bytes from a 1 MiB aligned start. -ENOSPC ("needs N bytes but the
 * largest free extent ... has M") or -ENOSPC for a full msdos table, -EINVAL for a
 * capacity that is not a whole number of sectors. what names the volume in messages. */
int drv_disk_plan_partition(const struct disk_table *t, const char *what, uint64_t capacity,
                            unsigned *ret_number, uint64_t *ret_start, uint64_t *ret_end,
                            struct dv_error *err);

/* The volume format a partition shows (linux-lvm, linux-raid, linux-swap from its
 * flags), or NULL when the table does not tell one apart from a plain data partition. */
const char *drv_disk_partition_format(const struct disk_partition *p);

/* The free extents of dev (from the same cached parted output observe uses), for the
 * observed pool XML's <freeExtent start= end=/>: libvirt's convention, end is the first
 * byte after the extent (parted's end + 1; struct disk_table keeps parted's inclusive
 * ends). *ret is malloc'ed, n entries; none when the device has no partition table. */
int drv_disk_free_extents(const char *dev, struct pool_extent **ret, size_t *n,
                          struct dv_error *err);

/* Tests: how many times parted was run to read a table; empty the cache. */
unsigned drv_disk_parted_runs(void);
void drv_disk_cache_clear(void);
