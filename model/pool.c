/* Placeholder so the tree links while the pool module is written; replaced by it. */
#include <errno.h>
#include <libxml/tree.h>
#include "model/pool.h"
#include "model/xml.h"
int pool_def_parse(const void *root, struct pool_def **ret, struct dv_error *err) {
        (void)ret;
        return dv_error_add(err, -EOPNOTSUPP, dv_xml_line(root), "<pool> is not supported yet");
}
int pool_def_validate(const struct pool_def *def, struct dv_error *err) { (void)def; (void)err; return -EOPNOTSUPP; }
void pool_def_format(struct buf *b, const struct pool_def *def, const struct dv_policy *policy) { (void)b; (void)def; (void)policy; }
void pool_def_free(struct pool_def *def) { (void)def; }
