/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strict number, duration and unit parsing. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/macro.h"
#include "util/parse.h"

int parse_u64(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        uint64_t v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int parse_u64_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v;
        int r = parse_u64(s, &v);
        if (r < 0)
                return r;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_mode(const char *s, unsigned *ret) {
        if (!s || !*s || strlen(s) > 5)
                return -EINVAL;
        unsigned v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '7')
                        return -EINVAL;
                v = v * 8 + (unsigned)(*p - '0');
        }
        if (v > 07777)
                return -ERANGE;
        *ret = v;
        return 0;
}

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        {"us", 1},
        {"ms", USEC_PER_MSEC},
        {"s", USEC_PER_SEC},
        {"sec", USEC_PER_SEC},
        {"m", 60 * USEC_PER_SEC},
        {"min", 60 * USEC_PER_SEC},
        {"h", 3600 * USEC_PER_SEC},
        {"", USEC_PER_SEC},
};

int parse_duration_usec(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        const char *p = s;
        uint64_t whole = 0, frac = 0, frac_div = 1;
        bool digits = false;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t)(*p - '0');
                digits = true;
        }
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (frac_div < 1000000000ULL) {
                                frac = frac * 10 + (uint64_t)(*p - '0');
                                frac_div *= 10;
                        }
                        digits = true;
                }
        }
        if (!digits)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                if (!streq(p, duration_units[i].suffix))
                        continue;
                uint64_t u = duration_units[i].usec, part = frac * u / frac_div;
                if (whole > UINT64_MAX / u || whole * u > UINT64_MAX - part)
                        return -ERANGE;
                *ret = whole * u + part;
                return 0;
        }
        return -EINVAL;
}

/* libvirt's units (virScaleInteger), in any case: "b" or "bytes"; a letter of k, m, g, t,
 * p, e alone or followed by "iB" for powers of 1024, by "B" for powers of 1000. */
uint64_t unit_multiplier(const char *unit) {
        if (!unit || !*unit)
                return 1;
        if (strcasecmp(unit, "b") == 0 || strcasecmp(unit, "bytes") == 0)
                return 1;
        const char *letters = "kmgtpe";
        const char *at = strchr(letters, tolower((unsigned char)unit[0]));
        if (!at || !*at)
                return 0;
        uint64_t base;
        if (unit[1] == '\0' || strcasecmp(unit + 1, "iB") == 0)
                base = 1024;
        else if (strcasecmp(unit + 1, "B") == 0)
                base = 1000;
        else
                return 0;
        uint64_t m = 1;
        for (const char *p = letters; p <= at; p++)
                m *= base;
        return m;
}

int parse_scaled(const char *value, const char *unit, uint64_t *ret) {
        uint64_t v, m = unit_multiplier(unit);
        if (m == 0)
                return -EINVAL;
        /* libvirt accepts surrounding whitespace in element text. */
        char tmp[32];
        size_t n;
        while (value && isspace((unsigned char)*value))
                value++;
        if (!value)
                return -EINVAL;
        n = strlen(value);
        while (n > 0 && isspace((unsigned char)value[n - 1]))
                n--;
        if (n == 0 || n >= sizeof(tmp))
                return n == 0 ? -EINVAL : -ERANGE;
        memcpy(tmp, value, n);
        tmp[n] = '\0';
        int r = parse_u64(tmp, &v);
        if (r < 0)
                return r;
        if (m > 1 && v > UINT64_MAX / m)
                return -ERANGE;
        *ret = v * m;
        return 0;
}

int parse_yes_no(const char *s) {
        if (streq_ptr(s, "yes"))
                return 1;
        if (streq_ptr(s, "no"))
                return 0;
        return -EINVAL;
}

const char *format_duration(char buf[static 32], uint64_t usec) {
        if (usec >= USEC_PER_SEC && usec % USEC_PER_SEC == 0)
                snprintf(buf, 32, "%" PRIu64 "s", usec / USEC_PER_SEC);
        else if (usec >= USEC_PER_SEC)
                snprintf(buf, 32, "%.3gs", (double)usec / USEC_PER_SEC);
        else if (usec % USEC_PER_MSEC == 0)
                snprintf(buf, 32, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
        else
                snprintf(buf, 32, "%" PRIu64 "us", usec);
        return buf;
}
