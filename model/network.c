/* Placeholder so the tree links while the network module is written; replaced by it. */
#include <errno.h>
#include <libxml/tree.h>
#include "model/network.h"
#include "model/xml.h"
int network_def_parse(const void *root, struct network_def **ret, struct dv_error *err) {
        (void)ret;
        return dv_error_add(err, -EOPNOTSUPP, dv_xml_line(root), "<network> is not supported yet");
}
int network_def_validate(const struct network_def *def, struct dv_error *err) { (void)def; (void)err; return -EOPNOTSUPP; }
void network_def_format(struct buf *b, const struct network_def *def, const struct dv_policy *policy) { (void)b; (void)def; (void)policy; }
void network_def_free(struct network_def *def) { (void)def; }
const char *network_def_name(const struct network_def *def) { (void)def; return NULL; }
const char *network_def_uuid(const struct network_def *def) { (void)def; return NULL; }
