/* Writing state_dir (DESIGN.md section 5): atomic, batched writes that skip files
 * whose content did not change, and the agent's lock. state/ only formats and
 * writes; it never decides anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

struct state_store;

/* Opens (creating with mode 0755 as needed) the state directory root. */
int state_store_open(const char *root, struct state_store **ret, struct dv_error *err);
void state_store_free(struct state_store *s);
const char *state_store_root(const struct state_store *s);

/* Queues relpath (e.g. "pools/p1.xml") to hold data. Nothing is written when the
 * file already holds exactly this content (known from an in-memory hash after the
 * first look). Subdirectories are created as needed (mode 0755; "applied" 0700). */
int state_store_put(struct state_store *s, const char *relpath, const char *data, size_t len, mode_t mode);
/* Queues the removal of relpath (no error when absent). */
int state_store_remove(struct state_store *s, const char *relpath);
/* Writes everything queued: all temp files first, one syncfs, the renames, then
 * one fsync per directory touched. On failure (ENOSPC, EROFS...) nothing half
 * written is left under a final name, the queue is dropped, and the error says
 * which file. Returns the number of files written or removed. */
int state_store_commit(struct state_store *s, struct dv_error *err);
/* Reads relpath back (for the last-applied store and tests); -ENOENT when absent. */
int state_store_read(struct state_store *s, const char *relpath, char **ret, size_t *ret_len);
/* Lists the regular files directly in a subdirectory (relative names, sorted). */
int state_store_list(struct state_store *s, const char *subdir, char ***ret);

/* Takes the flock on ROOT/.lock. When another process holds it, returns -EBUSY with
 * "another declvirt agent (PID N) is using ROOT" in err. */
int state_lock(const char *root, int *ret_fd, struct dv_error *err);
