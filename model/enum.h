/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Enum <-> string tables with a compile-time check that each table covers its
 * enum (libvirt's VIR_ENUM_IMPL in spirit). */
#pragma once

#include <string.h>

#include "util/macro.h"

#define DV_ENUM_DECL(name)                   \
        const char *name##_to_string(int v); \
        int name##_from_string(const char *s)

/* DV_ENUM_IMPL(pool_type, _POOL_TYPE_MAX, "dir", "fs", ...): the strings in enum order.
 * from_string returns -EINVAL for NULL or an unknown string. */
#define DV_ENUM_IMPL(name, last, ...)                                           \
        static const char *const name##_table[] = {__VA_ARGS__};                \
        assert_cc(ELEMENTSOF(name##_table) == (last));                          \
        const char *name##_to_string(int v) {                                   \
                if (v < 0 || (size_t)v >= ELEMENTSOF(name##_table))             \
                        return NULL;                                            \
                return name##_table[v];                                         \
        }                                                                       \
        int name##_from_string(const char *s) {                                 \
                if (!s)                                                         \
                        return -EINVAL;                                         \
                for (size_t i = 0; i < ELEMENTSOF(name##_table); i++)           \
                        if (name##_table[i] && strcmp(name##_table[i], s) == 0) \
                                return (int)i;                                  \
                return -EINVAL;                                                 \
        }
