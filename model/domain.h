/* Domain definitions: libvirt's <domain> format for QEMU/KVM, containers and Xen.
 * Struct layout is the domain module's own; this header is its interface. */
#pragma once

#include "model/object.h"

struct domain_def;

int domain_def_parse(const void *root, struct domain_def **ret, struct dv_error *err);
int domain_def_validate(const struct domain_def *def, struct dv_error *err);
/* virsh dumpxml layout; the policy (may be NULL) goes inside <metadata>. */
void domain_def_format(struct buf *b, const struct domain_def *def, const struct dv_policy *policy);
void domain_def_free(struct domain_def *def);
const char *domain_def_name(const struct domain_def *def);
const char *domain_def_uuid(const struct domain_def *def);
