/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the <pool> parser and formatter. */
#include "tests/fuzz/fuzz-object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_object(data, size, DV_KIND_POOL);
}
