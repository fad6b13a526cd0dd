/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging to stderr; <N> prefixes when the reader is journald or not a terminal. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static int max_level = LOG_INFO;
static bool use_prefix = true;

static const char *const level_names[] = {
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level) {
        max_level = level;
}
int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && streq(level_names[i], s))
                        return (int)i;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t)level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

void log_open(void) {
        use_prefix = getenv("JOURNAL_STREAM") || !isatty(STDERR_FILENO);
}

static void log_write(int level, const char *msg, const char *suffix) {
        int saved = errno;
        if (use_prefix)
                fprintf(stderr, "<%d>%s%s\n", level, msg, strempty(suffix));
        else if (level <= LOG_WARNING)
                fprintf(stderr, "%s: %s%s\n", strna(log_level_to_string(level)), msg,
                        strempty(suffix));
        else
                fprintf(stderr, "%s%s\n", msg, strempty(suffix));
        errno = saved;
}

void log_internal(int level, const char *fmt, ...) {
        char msg[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_write(level, msg, NULL);
}

int log_internal_errno(int level, int r, const char *fmt, ...) {
        if (level > max_level)
                return r < 0 ? r : -r;
        char msg[4096], suffix[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(suffix, sizeof(suffix), ": %s", strerror(r < 0 ? -r : r));
        log_write(level, msg, suffix);
        return r < 0 ? r : -r;
}
