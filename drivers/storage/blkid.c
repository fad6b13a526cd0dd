/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The signature probe of drivers/storage/blkid.h: libblkid superblocks and partition
 * tables on one device, so that build='if-empty' never formats anything in use. */
#include <blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "drivers/storage/blkid.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe)

/* Appends what the current probe result names (superblock TYPE or partition table
 * PTTYPE) to out, comma separated; returns how many names were added. */
static int append_result(blkid_probe pr, struct buf *out, bool *is_fs) {
        const char *v = NULL;
        int n = 0;

        if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && v && *v) {
                const char *usage = NULL;
                if (out->len > 0)
                        buf_putc(out, ',');
                buf_puts(out, v);
                n++;
                if (blkid_probe_lookup_value(pr, "USAGE", &usage, NULL) == 0 && usage &&
                    streq(usage, "filesystem"))
                        *is_fs = true;
        }
        v = NULL;
        if (blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0 && v && *v) {
                if (out->len > 0)
                        buf_putc(out, ',');
                buf_puts(out, v);
                n++;
        }
        return n;
}

int storage_probe_signature_full(const char *dev, char **ret_type, bool *ret_is_fs,
                                 struct dv_error *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        _cleanup_buf_ struct buf types = BUF_INIT;
        bool is_fs = false;
        int found = 0, r;

        if (ret_type)
                *ret_type = NULL;
        if (ret_is_fs)
                *ret_is_fs = false;
        if (!dev || !*dev)
                return dv_error_add(err, -EINVAL, 0, "no source device given");

        /* Our own fd (not blkid_new_probe_from_filename) so that the reason for a
         * failure is our errno, and the fd is O_CLOEXEC for certain. */
        fd = open(dev, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                if (r == -ENOENT)
                        return dv_error_add(err, r, 0, "source device %s does not exist", dev);
                return dv_error_add(err, r, 0, "cannot open %s to look for signatures: %s", dev,
                                    strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                return dv_error_add(err, r, 0, "cannot stat %s: %s", dev, strerror(-r));
        }
        if (S_ISDIR(st.st_mode))
                return dv_error_add(err, -EISDIR, 0, "source device %s is a directory", dev);
        if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
                return dv_error_add(err, -ENOTBLK, 0, "source device %s is not a block device",
                                    dev);

        pr = blkid_new_probe();
        if (!pr)
                return dv_error_add(err, -ENOMEM, 0, "cannot allocate a blkid probe");
        if (blkid_probe_set_device(pr, fd, 0, 0) < 0)
                return dv_error_add(err, -EIO, 0, "blkid cannot use %s", dev);

        /* Every kind of superblock, whatever its usage (filesystem, raid, crypto,
         * other: swap and LVM), and every partition table. */
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
        blkid_probe_enable_partitions(pr, 1);
        blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);

        r = blkid_do_safeprobe(pr);
        log_debug("blkid safeprobe of %s: %d", dev, r);
        if (r == 0) {
                found = append_result(pr, &types, &is_fs);
                if (found == 0) {
                        /* Something matched but left no name: still a signature. */
                        buf_puts(&types, "unknown");
                        found = 1;
                }
        } else if (r == -2) {
                /* Ambivalent: several superblocks (say, ext4 and a swap header). List
                 * them all with the low-level walk, which stops at each match. */
                bool dummy = false;
                blkid_reset_probe(pr);
                while (blkid_do_probe(pr) == 0)
                        found += append_result(pr, &types, &dummy);
                if (found == 0) {
                        buf_puts(&types, "ambivalent");
                        found = 1;
                }
                found = MAX(found, 2);
        } else if (r == 1) {
                found = 0;
        } else {
                return dv_error_add(err, -EIO, 0, "blkid cannot read %s", dev);
        }

        if (found == 0)
                return 0;
        if (types.oom)
                return dv_error_oom(err);
        if (ret_is_fs)
                *ret_is_fs = found == 1 && is_fs;
        if (ret_type) {
                *ret_type = buf_steal(&types);
                if (!*ret_type)
                        return dv_error_oom(err);
        }
        return 1;
}

int storage_probe_signature(const char *dev, char **ret_type, struct dv_error *err) {
        return storage_probe_signature_full(dev, ret_type, NULL, err);
}
