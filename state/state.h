/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing state_dir (docs/state-files.md): atomic, batched writes that skip files
 * whose content did not change, and the agent's lock. state/ only formats and
 * writes; it never decides anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

struct state_store;

/* Opens (creating with mode 0755 as needed) the state directory root, and removes the
 * temp files that a crashed writer left (those of a live process are kept). A store is
 * used from one thread at a time. */
int state_store_open(const char *root, struct state_store **ret,
                     struct dv_error *err) _warn_unused_result_;
/* Frees s; anything queued and not committed is dropped. */
void state_store_free(struct state_store *s);
const char *state_store_root(const struct state_store *s);

/* relpath: below the root, no leading '/', no empty, "." or ".." component; names
 * beginning with '.' and ending with ".tmp" are the temp files' and ".lock" is the
 * lock's (-EINVAL for all of these). */

/* Queues relpath (e.g. "pools/p1.xml") to hold data. Nothing is written when the
 * file already holds exactly this content and mode (known from an in-memory hash after
 * the first look, checked against the file's inode, size and mtime). Subdirectories
 * are created as needed (mode 0755; "applied" 0700). mode 0 means the default, 0644
 * (0600 under applied/); under applied/ group and other bits are always dropped.
 * Returns 1 when queued, 0 when the file already holds this content (which also
 * cancels an earlier put or remove of relpath in this batch). A later put or remove
 * of the same relpath before the commit replaces the earlier one. */
int state_store_put(struct state_store *s, const char *relpath, const char *data, size_t len,
                    mode_t mode) _warn_unused_result_;
/* Queues the removal of relpath, and of its directory when that is then empty and not
 * a top-level one (volumes/POOL, never volumes). Returns 1 when queued, 0 when the
 * file is already absent (no error). */
int state_store_remove(struct state_store *s, const char *relpath) _warn_unused_result_;
/* Writes everything queued: all temp files first, one syncfs, the renames (in the
 * order of the puts), the removals, then one fsync per directory touched. A batch of
 * at most 4 files fsyncs each file instead of syncfs (docs/state-files.md says why).
 * On failure (ENOSPC, EROFS...) every temp file is removed, no file not yet renamed
 * is touched, the queue is dropped, the cached hashes of the unfinished files are
 * forgotten, and the error says which file. Returns the number of files written or
 * removed. */
int state_store_commit(struct state_store *s, struct dv_error *err) _warn_unused_result_;
/* Reads relpath back (for the last-applied store and tests); -ENOENT when absent.
 * Reads the disk, not the queue. */
int state_store_read(struct state_store *s, const char *relpath, char **ret,
                     size_t *ret_len) _warn_unused_result_;
/* Lists the regular files directly in a subdirectory (relative names, sorted; names
 * beginning with '.' left out; subdir NULL or "" is the root). -ENOENT when the
 * subdirectory does not exist. Returns the number of names; *ret is never NULL on
 * success. */
int state_store_list(struct state_store *s, const char *subdir, char ***ret) _warn_unused_result_;

/* Takes the flock on ROOT/.lock (creating ROOT as needed) and writes the PID into it.
 * When another process holds it, returns -EBUSY with "another declvirt agent (PID N)
 * is using ROOT" in err. The fd is O_CLOEXEC; the lock lasts until every copy of it
 * is closed, so a child forked without exec must close it. */
int state_lock(const char *root, int *ret_fd, struct dv_error *err) _warn_unused_result_;
/* Whether an agent holds ROOT/.lock: 1 (*ret_pid: the PID it wrote, 0 when unknown), 0
 * when the lock is free or the file does not exist, -errno when it cannot be told (a
 * symlink: -ELOOP; not a regular file: -EBADFD). Creates nothing; holds a shared lock
 * only for the instant of the test. */
int state_lock_probe(const char *root, pid_t *ret_pid) _warn_unused_result_;
