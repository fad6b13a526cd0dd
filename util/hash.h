/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Content hashes for desired-hash/applied-hash (XXH3 128-bit from libxxhash):
 * change detection, not security. */
#pragma once

#include <stddef.h>

#define HASH_HEX_LEN 32
void hash_hex(const void *data, size_t len, char out[static HASH_HEX_LEN + 1]);
