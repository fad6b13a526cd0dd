/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The desired_dir watcher (docs/watcher.md): inotify on the root and
 * its subdirectories (depth <= DV_WATCH_MAX_DEPTH), including ones created, moved
 * in, moved out or removed while running; events only say "look again": the
 * callback receives the directories to rescan, never a verdict on a file.
 * Debounced: the first event after a quiet time is reported at once (a lone rename);
 * within a burst the callback runs once the directory has been quiet for `debounce`,
 * and at most `max_delay` after the first event of the burst. IN_Q_OVERFLOW (and a
 * watch that could not be added) asks for a full rescan. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define DV_WATCH_MAX_DEPTH 3

struct dv_watch;

/* dirs: NULL-terminated absolute paths of directories in which something
 * happened (the root included); full: rescan everything. Both owned by the watcher
 * for the duration of the call. */
typedef void (*dv_watch_cb)(struct dv_watch *w, bool full, char *const *dirs, void *userdata);

int dv_watch_new(sd_event *e, const char *root, uint64_t debounce_usec, uint64_t max_delay_usec,
                 dv_watch_cb cb, void *userdata, struct dv_watch **ret);
void dv_watch_free(struct dv_watch *w);
/* How often a missing root is looked for, and a symlinked root checked for a new
 * target (default 1 s; tests shorten it). 0 leaves it unchanged. */
void dv_watch_set_poll_interval(struct dv_watch *w, uint64_t usec);
/* A new quiet period (agent.conf reloaded); takes effect from the next event. */
void dv_watch_set_debounce(struct dv_watch *w, uint64_t usec);
/* Number of directories currently watched (for tests and status). */
unsigned dv_watch_count(const struct dv_watch *w);
