/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The body shared by the XML fuzz targets: parse; when the input is a valid object
 * of the target's kind, format it and check that the output parses again and
 * formats to the same text (what we format, we must accept). */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline int fuzz_object(const uint8_t *data, size_t size, enum dv_kind kind) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_object *o = NULL;
        if (dv_object_parse((const char *)data, size, "fuzz.xml", &o, &err) < 0 ||
            o->kind != kind) {
                dv_object_free(o);
                dv_error_clear(&err);
                return 0;
        }
        char *out = dv_object_format(o);
        if (!out)
                abort();
        struct dv_error err2 = DV_ERROR_INIT;
        struct dv_object *o2 = NULL;
        if (dv_object_parse(out, strlen(out), "formatted.xml", &o2, &err2) < 0)
                abort();
        char *out2 = dv_object_format(o2);
        if (!out2 || strcmp(out, out2) != 0)
                abort();
        free(out);
        free(out2);
        dv_object_free(o);
        dv_object_free(o2);
        dv_error_clear(&err);
        dv_error_clear(&err2);
        return 0;
}
