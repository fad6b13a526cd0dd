/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small language helpers used everywhere: cleanup attributes, ownership moves,
 * compile-time checks. Modelled on systemd's src/basic/macro.h. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)         __attribute__((cleanup(f)))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _unused_             __attribute__((unused))
#define _warn_unused_result_ __attribute__((warn_unused_result))

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Defines NAMEp(type *p) calling NAME(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }

#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -1;       \
                _fd_;            \
        })

#define ELEMENTSOF(x)   (sizeof(x) / sizeof((x)[0]))
#define assert_cc(expr) _Static_assert(expr, #expr)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define USEC_PER_SEC  ((uint64_t)1000000)
#define USEC_PER_MSEC ((uint64_t)1000)
#define NSEC_PER_USEC ((uint64_t)1000)

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}
static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}
static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return __builtin_strcmp(a, b) == 0;
}
#define streq(a, b) (__builtin_strcmp((a), (b)) == 0)

static inline bool str_ends_with(const char *s, const char *suffix) {
        size_t l = __builtin_strlen(s), k = __builtin_strlen(suffix);
        return l >= k && __builtin_strcmp(s + l - k, suffix) == 0;
}

#define SWAP(a, b)                           \
        do {                                 \
                __typeof__(a) _swap_t = (a); \
                (a) = (b);                   \
                (b) = _swap_t;               \
        } while (0)
