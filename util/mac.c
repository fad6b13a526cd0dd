/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* MAC addresses: libvirt's grammar, one canonical spelling, generated addresses. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util/hex.h"
#include "util/mac.h"

int mac_parse(const char *s, uint8_t ret[static MAC_BYTES]) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < MAC_BYTES; i++) {
                int hi = hex_digit(s[0]);
                if (hi < 0) /* no sign, space or empty octet */
                        return -EINVAL;
                int lo = hex_digit(s[1]);
                if (lo < 0) {
                        ret[i] = (uint8_t)hi;
                        s += 1;
                } else {
                        ret[i] = (uint8_t)(hi << 4 | lo);
                        s += 2;
                }
                if (i + 1 < MAC_BYTES && *s++ != ':')
                        return -EINVAL;
        }
        return *s ? -EINVAL : 0;
}

void mac_format(const uint8_t m[static MAC_BYTES], char out[static MAC_STRING_LEN + 1]) {
        snprintf(out, MAC_STRING_LEN + 1, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                 m[4], m[5]);
}

int mac_canonical(const char *s, char out[static MAC_STRING_LEN + 1]) {
        uint8_t m[MAC_BYTES];
        int r = mac_parse(s, m);
        if (r < 0)
                return r;
        mac_format(m, out);
        return 0;
}

bool mac_is_multicast(const uint8_t m[static MAC_BYTES]) {
        return m[0] & 1;
}

bool mac_is_full_form(const char *s) {
        if (!s || strlen(s) != MAC_STRING_LEN)
                return false;
        for (size_t i = 0; i < MAC_STRING_LEN; i++)
                if (i % 3 == 2 ? s[i] != ':' : hex_digit(s[i]) < 0)
                        return false;
        return true;
}

char *mac_generate_string(void) {
        uint8_t m[MAC_BYTES] = {0x52, 0x54, 0x00};
        if (getrandom(m + 3, 3, 0) != 3)
                return NULL;
        char out[MAC_STRING_LEN + 1];
        mac_format(m, out);
        return strdup(out);
}
