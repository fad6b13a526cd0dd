/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UUIDs: libvirt's grammar, one canonical spelling, random version 4 UUIDs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util/hex.h"
#include "util/uuid.h"

int uuid_parse(const char *s, uint8_t ret[static UUID_BYTES]) {
        if (!s)
                return -EINVAL;
        while (isspace((unsigned char)*s))
                s++;
        for (size_t i = 0; i < UUID_BYTES;) {
                if (*s == '-' || *s == ' ') {
                        s++;
                        continue;
                }
                /* Both digits of a pair are checked before moving on, so that a separator
                 * inside a pair is refused as libvirt refuses it. */
                int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);
                if (lo < 0)
                        return -EINVAL;
                ret[i++] = (uint8_t)(hi << 4 | lo);
                s += 2;
        }
        while (isspace((unsigned char)*s))
                s++;
        return *s ? -EINVAL : 0;
}

void uuid_format(const uint8_t u[static UUID_BYTES], char out[static UUID_STRING_LEN + 1]) {
        snprintf(out, UUID_STRING_LEN + 1,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                 u[15]);
}

int uuid_canonical(const char *s, char out[static UUID_STRING_LEN + 1]) {
        uint8_t u[UUID_BYTES];
        int r = uuid_parse(s, u);
        if (r < 0)
                return r;
        uuid_format(u, out);
        return 0;
}

char *uuid_generate_string(void) {
        uint8_t b[UUID_BYTES];
        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return NULL;
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        char out[UUID_STRING_LEN + 1];
        uuid_format(b, out);
        return strdup(out);
}
