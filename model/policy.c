/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The declvirt policy element (docs/design.md#policy-semantics). */
#include <errno.h>
#include <libxml/tree.h>
#include <string.h>

#include "model/object.h"
#include "model/xml.h"
#include "util/parse.h"

DV_ENUM_IMPL(dv_kind, _DV_KIND_MAX, "pool", "volume", "network", "domain");
DV_ENUM_IMPL(dv_restart, _DV_RESTART_MAX, NULL, "always", "on-failure", "never");
DV_ENUM_IMPL(dv_on_change, _DV_ON_CHANGE_MAX, NULL, "restart-required", "restart");
DV_ENUM_IMPL(dv_on_remove, _DV_ON_REMOVE_MAX, NULL, "stop", "keep", "delete");
DV_ENUM_IMPL(dv_build, _DV_BUILD_MAX, NULL, "no", "if-empty");

enum {
        K_POOL = 1 << DV_KIND_POOL,
        K_VOLUME = 1 << DV_KIND_VOLUME,
        K_NETWORK = 1 << DV_KIND_NETWORK,
        K_DOMAIN = 1 << DV_KIND_DOMAIN,
};

static const struct {
        const char *name;
        unsigned kinds;
} policy_attrs[] = {
        {"state", K_DOMAIN | K_NETWORK | K_POOL},
        {"autostart", K_DOMAIN | K_NETWORK | K_POOL},
        {"restart", K_DOMAIN},
        {"on-change", K_DOMAIN},
        {"shutdown-timeout", K_DOMAIN},
        {"privileged", K_DOMAIN},
        {"on-remove", K_DOMAIN | K_NETWORK | K_POOL | K_VOLUME},
        {"build", K_POOL},
        {"pool", K_VOLUME},
};

static int find_policy(const xmlNode *root, enum dv_kind kind, const xmlNode **ret,
                       struct dv_error *err) {
        const xmlNode *found = NULL;
        dv_xml_foreach_child(c, root) {
                const xmlNode *cand = NULL;
                if (dv_xml_is_policy(c))
                        cand = c;
                else if (dv_xml_is(c, "metadata") &&
                         (kind == DV_KIND_DOMAIN || kind == DV_KIND_NETWORK)) {
                        dv_xml_foreach_child(m, c) if (dv_xml_is_policy(m)) {
                                if (found || cand)
                                        return dv_error_add(
                                                err, -EINVAL, dv_xml_line(m),
                                                "more than one policy element (the first is on line %d)",
                                                dv_xml_line(found ? found : cand));
                                cand = m;
                        }
                }
                if (!cand)
                        continue;
                if (found && found != cand)
                        return dv_error_add(
                                err, -EINVAL, dv_xml_line(cand),
                                "more than one policy element (the first is on line %d)",
                                dv_xml_line(found));
                found = cand;
        }
        *ret = found;
        return 0;
}

static int bad_value(struct dv_error *err, const xmlNode *n, enum dv_kind kind, const char *attr,
                     const char *v, const char *allowed) {
        return dv_error_add(err, -EINVAL, dv_xml_line(n),
                            "policy %s='%s' is not valid for a %s; expected %s", attr, v,
                            dv_kind_to_string(kind), allowed);
}

int dv_policy_parse(const void *root_node, enum dv_kind kind, struct dv_policy *ret,
                    struct dv_error *err) {
        const xmlNode *root = root_node, *n = NULL;
        struct dv_policy p = {.autostart = -1};
        int r = find_policy(root, kind, &n, err);
        if (r < 0)
                return r;
        if (!n) {
                if (kind == DV_KIND_VOLUME)
                        return dv_error_add(err, -EINVAL, dv_xml_line(root),
                                            "a volume needs a policy element naming its pool: "
                                            "<dv:policy xmlns:dv='" DV_POLICY_NS "' pool='NAME'/>");
                *ret = p;
                return 0;
        }
        p.present = true;
        p.line = dv_xml_line(n);
        if (dv_xml_first_child(n))
                return dv_error_add(err, -EINVAL, dv_xml_line(n),
                                    "the policy element takes no children");

        for (xmlAttr *a = n->properties; a; a = a->next) {
                const char *an = (const char *)a->name;
                bool known = false, allowed = false;
                for (size_t i = 0; i < ELEMENTSOF(policy_attrs); i++)
                        if (streq(policy_attrs[i].name, an)) {
                                known = true;
                                allowed = policy_attrs[i].kinds & (1u << kind);
                        }
                if (a->ns || !known)
                        r = dv_error_add(err, -EINVAL, p.line, "unknown policy attribute '%s'", an);
                else if (!allowed)
                        r = dv_error_add(err, -EINVAL, p.line,
                                         "policy attribute '%s' does not apply to a %s", an,
                                         dv_kind_to_string(kind));
        }
        if (r < 0)
                return r;

        _cleanup_free_ char *state = NULL, *autostart = NULL, *restart = NULL, *on_change = NULL,
                            *on_remove = NULL, *build = NULL, *timeout = NULL, *privileged = NULL;
        if (dv_xml_prop(n, "state", &state) < 0 || dv_xml_prop(n, "autostart", &autostart) < 0 ||
            dv_xml_prop(n, "restart", &restart) < 0 ||
            dv_xml_prop(n, "on-change", &on_change) < 0 ||
            dv_xml_prop(n, "on-remove", &on_remove) < 0 || dv_xml_prop(n, "build", &build) < 0 ||
            dv_xml_prop(n, "shutdown-timeout", &timeout) < 0 ||
            dv_xml_prop(n, "pool", &p.pool) < 0 || dv_xml_prop(n, "privileged", &privileged) < 0)
                return -ENOMEM;

        if (state) {
                bool dom = kind == DV_KIND_DOMAIN;
                if (streq(state, dom ? "running" : "active"))
                        p.state = DV_WANT_UP;
                else if (streq(state, dom ? "stopped" : "inactive"))
                        p.state = DV_WANT_DOWN;
                else
                        r = bad_value(err, n, kind, "state", state,
                                      dom ? "'running' or 'stopped'" : "'active' or 'inactive'");
        }
        if (autostart) {
                p.autostart = parse_yes_no(autostart);
                if (p.autostart < 0)
                        r = bad_value(err, n, kind, "autostart", autostart, "'yes' or 'no'");
        }
        if (privileged) {
                int v = parse_yes_no(privileged);
                if (v < 0)
                        r = bad_value(err, n, kind, "privileged", privileged, "'yes' or 'no'");
                p.has_privileged = v >= 0;
                p.privileged = v == 1;
        }
        if (restart) {
                int v = dv_restart_from_string(restart);
                if (v <= 0)
                        r = bad_value(err, n, kind, "restart", restart,
                                      "'always', 'on-failure' or 'never'");
                else
                        p.restart = v;
        }
        if (on_change) {
                int v = dv_on_change_from_string(on_change);
                if (v <= 0)
                        r = bad_value(err, n, kind, "on-change", on_change,
                                      "'restart-required' or 'restart'");
                else
                        p.on_change = v;
        }
        if (on_remove) {
                int v = dv_on_remove_from_string(on_remove);
                bool ok = v > 0;
                if (ok && kind == DV_KIND_VOLUME)
                        ok = v == DV_ON_REMOVE_KEEP || v == DV_ON_REMOVE_DELETE;
                else if (ok && kind != DV_KIND_POOL)
                        ok = v != DV_ON_REMOVE_DELETE;
                if (!ok)
                        r = bad_value(err, n, kind, "on-remove", on_remove,
                                      kind == DV_KIND_VOLUME ? "'keep' or 'delete'"
                                      : kind == DV_KIND_POOL ? "'stop', 'keep' or 'delete'"
                                                             : "'stop' or 'keep'");
                else
                        p.on_remove = v;
        }
        if (build) {
                int v = dv_build_from_string(build);
                if (v <= 0)
                        r = bad_value(err, n, kind, "build", build, "'no' or 'if-empty'");
                else
                        p.build = v;
        }
        if (timeout) {
                if (parse_u64_range(timeout, 0, 86400 * 7, &p.shutdown_timeout) < 0)
                        r = bad_value(err, n, kind, "shutdown-timeout", timeout,
                                      "a number of seconds up to 604800");
                else
                        p.has_shutdown_timeout = true;
        }
        if (kind == DV_KIND_VOLUME && !p.pool)
                r = dv_error_add(err, -EINVAL, p.line,
                                 "a volume's policy must name its pool (pool='NAME')");
        if (p.pool) {
                const char *why = dv_name_problem(DV_KIND_POOL, p.pool);
                if (why)
                        r = dv_error_add(err, -EINVAL, p.line, "policy pool='%s': %s", p.pool, why);
        }
        if (r < 0) {
                dv_policy_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

void dv_policy_format(struct buf *b, const struct dv_policy *p, enum dv_kind kind) {
        if (!p || !p->present)
                return;
        bool dom = kind == DV_KIND_DOMAIN;
        xml_open(b, "dv:policy");
        xml_attr(b, "xmlns:dv", DV_POLICY_NS);
        if (p->pool)
                xml_attr(b, "pool", p->pool);
        if (p->state)
                xml_attr(b, "state",
                         p->state == DV_WANT_UP ? (dom ? "running" : "active")
                                                : (dom ? "stopped" : "inactive"));
        if (p->autostart >= 0)
                xml_attr(b, "autostart", p->autostart ? "yes" : "no");
        xml_attr(b, "restart", dv_restart_to_string(p->restart));
        xml_attr(b, "on-change", dv_on_change_to_string(p->on_change));
        xml_attr(b, "on-remove", dv_on_remove_to_string(p->on_remove));
        xml_attr(b, "build", dv_build_to_string(p->build));
        if (p->has_shutdown_timeout)
                xml_attr_u64(b, "shutdown-timeout", p->shutdown_timeout);
        if (p->has_privileged)
                xml_attr(b, "privileged", p->privileged ? "yes" : "no");
        xml_empty_end(b);
}

void dv_policy_done(struct dv_policy *p) {
        free(p->pool);
        p->pool = NULL;
}

enum dv_want dv_policy_state(const struct dv_policy *p) {
        return p->state ? p->state : DV_WANT_UP;
}
bool dv_policy_autostart(const struct dv_policy *p) {
        return p->autostart != 0;
}
bool dv_policy_privileged(const struct dv_policy *p) {
        return p->has_privileged && p->privileged;
}
enum dv_restart dv_policy_restart(const struct dv_policy *p) {
        return p->restart ? p->restart : DV_RESTART_ALWAYS;
}
enum dv_on_change dv_policy_on_change(const struct dv_policy *p) {
        return p->on_change ? p->on_change : DV_ON_CHANGE_RESTART_REQUIRED;
}
enum dv_on_remove dv_policy_on_remove(const struct dv_policy *p, enum dv_kind kind) {
        if (p->on_remove)
                return p->on_remove;
        return kind == DV_KIND_VOLUME ? DV_ON_REMOVE_KEEP : DV_ON_REMOVE_STOP;
}
enum dv_build dv_policy_build(const struct dv_policy *p) {
        return p->build ? p->build : DV_BUILD_IF_EMPTY;
}
uint64_t dv_policy_shutdown_timeout(const struct dv_policy *p) {
        return p->has_shutdown_timeout ? p->shutdown_timeout : 120;
}
