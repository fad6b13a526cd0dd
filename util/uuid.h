/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UUIDs in libvirt's grammar (virUUIDParse): 32 hexadecimal digits in pairs, with '-'
 * or ' ' allowed anywhere between pairs and white space around the whole; written
 * back in the canonical lower-case 8-4-4-4-12 form. */
#pragma once

#include <stdint.h>

#include "util/macro.h"

#define UUID_BYTES      16
#define UUID_STRING_LEN 36 /* without the terminating NUL */

/* 0, or -EINVAL when s (may be NULL) is not a UUID. */
int uuid_parse(const char *s, uint8_t ret[static UUID_BYTES]) _warn_unused_result_;
/* Lower-case 8-4-4-4-12. */
void uuid_format(const uint8_t u[static UUID_BYTES], char out[static UUID_STRING_LEN + 1]);
/* uuid_parse then uuid_format: one spelling for every way of writing the same UUID. */
int uuid_canonical(const char *s, char out[static UUID_STRING_LEN + 1]) _warn_unused_result_;
/* A random RFC 4122 version 4 UUID string; caller frees; NULL on failure. */
char *uuid_generate_string(void) _warn_unused_result_;
