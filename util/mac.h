/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* MAC addresses in libvirt's grammar (virMacAddrParse): six octets of one or two
 * hexadecimal digits separated by ':' ("52:54:0:a:b:c" is 52:54:00:0a:0b:0c), and
 * the canonical lower-case xx:xx:xx:xx:xx:xx spelling. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/macro.h"

#define MAC_BYTES      6
#define MAC_STRING_LEN 17 /* without the terminating NUL */

/* 0, or -EINVAL when s (may be NULL) is not a MAC address. */
int mac_parse(const char *s, uint8_t ret[static MAC_BYTES]) _warn_unused_result_;
/* Lower-case xx:xx:xx:xx:xx:xx. */
void mac_format(const uint8_t m[static MAC_BYTES], char out[static MAC_STRING_LEN + 1]);
/* mac_parse then mac_format. */
int mac_canonical(const char *s, char out[static MAC_STRING_LEN + 1]) _warn_unused_result_;
/* The group bit (the lowest bit of the first octet): not an interface's address. */
bool mac_is_multicast(const uint8_t m[static MAC_BYTES]);
/* A MAC address in its full form: six hex pairs separated by ':' (either case), as
 * dnsmasq's lease file and generated configuration write it. */
bool mac_is_full_form(const char *s);
/* A random locally administered MAC in libvirt's range 52:54:00:xx:xx:xx; caller
 * frees; NULL on failure. */
char *mac_generate_string(void) _warn_unused_result_;
