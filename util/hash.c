/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* XXH3-128 as 32 hex digits. */
#include <stdio.h>
#include <xxhash.h>

#include "util/hash.h"

void hash_hex(const void *data, size_t len, char out[static HASH_HEX_LEN + 1]) {
        XXH128_hash_t h = XXH3_128bits(data, len);
        snprintf(out, HASH_HEX_LEN + 1, "%016llx%016llx", (unsigned long long)h.high64,
                 (unsigned long long)h.low64);
}
