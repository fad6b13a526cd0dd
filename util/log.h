/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging to stderr with <N> priority prefixes for journald. Only agent/ logs at
 * info and above; library code (model, reconcile, drivers, state) uses log_debug. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "util/macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* "debug", "info", "notice", "warning", "error" -> LOG_*; -EINVAL if unknown. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);
/* Prefix lines with <N> (journald) instead of a readable level word. Decided
 * once from JOURNAL_STREAM / isatty by log_open(). */
void log_open(void);

void log_internal(int level, const char *fmt, ...) _printf_(2, 3);
/* Logs with ": strerror(-r)" appended and returns r (negative). */
int log_internal_errno(int level, int r, const char *fmt, ...) _printf_(3, 4);

#define log_full(level, ...)                              \
        do {                                              \
                if ((level) <= log_get_max_level())       \
                        log_internal(level, __VA_ARGS__); \
        } while (0)
#define log_debug(...)            log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)             log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)           log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...)          log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)            log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...)   log_internal_errno(LOG_ERR, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal_errno(LOG_WARNING, r, __VA_ARGS__)
#define log_debug_errno(r, ...)   log_internal_errno(LOG_DEBUG, r, __VA_ARGS__)
/* The one out-of-memory path for code that logs: returns -ENOMEM. */
#define log_oom() log_error_errno(-ENOMEM, "out of memory")
