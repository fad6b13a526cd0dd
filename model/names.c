/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Object name rules (docs/design.md#names): checked at parse time and again
 * before a name becomes a path, an argv element or a netlink attribute. */
#include <string.h>

#include "model/object.h"

const char *dv_name_problem(enum dv_kind kind, const char *name) {
        /* Volumes: 240, not 255, because the agent's own files add suffixes to the
         * name (NAME.xml, .NAME.creating) and a file name has at most 255 bytes. */
        size_t max = kind == DV_KIND_VOLUME ? 240 : 64;
        if (!name || !*name)
                return "name is empty";
        size_t len = strlen(name);
        if (len > max)
                return kind == DV_KIND_VOLUME ? "name is longer than 240 bytes"
                                              : "name is longer than 64 bytes";
        if (streq(name, ".") || streq(name, ".."))
                return "name may not be '.' or '..'";
        if (name[0] == '-')
                return "name may not begin with '-'";
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '+' || c == '-')
                        continue;
                if (c == ':' && kind == DV_KIND_VOLUME)
                        continue;
                if (c == '/')
                        return "name may not contain '/'";
                if (c < 0x20 || c == 0x7f)
                        return "name may not contain control characters";
                return kind == DV_KIND_VOLUME ? "name may contain only A-Z a-z 0-9 _ . + - :"
                                              : "name may contain only A-Z a-z 0-9 _ . + -";
        }
        /* Hidden names would be hidden from listings and state readers too. */
        if (name[0] == '.')
                return "name may not begin with '.'";
        return NULL;
}
