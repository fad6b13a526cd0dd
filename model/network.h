/* Network definitions: libvirt's <network> format. Struct layout is the network
 * module's own; this header is its whole interface. */
#pragma once

#include "model/object.h"

struct network_def;

int network_def_parse(const void *root, struct network_def **ret, struct dv_error *err);
int network_def_validate(const struct network_def *def, struct dv_error *err);
/* virsh net-dumpxml layout; the policy (may be NULL) goes inside <metadata>. */
void network_def_format(struct buf *b, const struct network_def *def, const struct dv_policy *policy);
void network_def_free(struct network_def *def);
const char *network_def_name(const struct network_def *def);
const char *network_def_uuid(const struct network_def *def);
