/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict number parsing (strtonum in spirit): whole string, no sign surprises,
 * overflow reported. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Decimal unsigned; no leading '+', '-' or spaces; -ERANGE on overflow, -EINVAL otherwise. */
int parse_u64(const char *s, uint64_t *ret);
/* Like parse_u64 with an inclusive range check (-ERANGE outside). */
int parse_u64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* Octal file mode such as 0755 or 755; at most 07777. */
int parse_mode(const char *s, unsigned *ret);
/* Durations: "10ms", "30s", "2m", "1h", "500us", "1.5s"; a bare number means seconds.
 * Result in microseconds. */
int parse_duration_usec(const char *s, uint64_t *ret);
/* libvirt's capacity units in any case (b, bytes, KB, K, KiB, MB, M, MiB, ... EB, E, EiB;
 * empty = bytes).
 * Returns -EINVAL for an unknown unit, -ERANGE when value*unit overflows 64 bits. */
int parse_scaled(const char *value, const char *unit, uint64_t *ret);
/* Unit multiplier, or 0 when unknown. */
uint64_t unit_multiplier(const char *unit);
/* "yes"/"no" -> 1/0, else -EINVAL. */
int parse_yes_no(const char *s);
/* Formats a duration for messages ("1.5s", "300ms"). buf needs 32 bytes. */
const char *format_duration(char buf[static 32], uint64_t usec);
