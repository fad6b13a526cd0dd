/* Placeholder so the tree links while the domain module is written; replaced by it. */
#include <errno.h>
#include <libxml/tree.h>
#include "model/domain.h"
#include "model/xml.h"
int domain_def_parse(const void *root, struct domain_def **ret, struct dv_error *err) {
        (void)ret;
        return dv_error_add(err, -EOPNOTSUPP, dv_xml_line(root), "<domain> is not supported yet");
}
int domain_def_validate(const struct domain_def *def, struct dv_error *err) { (void)def; (void)err; return -EOPNOTSUPP; }
void domain_def_format(struct buf *b, const struct domain_def *def, const struct dv_policy *policy) { (void)b; (void)def; (void)policy; }
void domain_def_free(struct domain_def *def) { (void)def; }
const char *domain_def_name(const struct domain_def *def) { (void)def; return NULL; }
const char *domain_def_uuid(const struct domain_def *def) { (void)def; return NULL; }
