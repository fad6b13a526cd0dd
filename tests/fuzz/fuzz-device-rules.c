/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the device rule parser of drivers/domain/cgroup-bpf.c: each line of the
 * input is one rule. A refusal must say why on one line; an accepted rule must format to
 * text that parses back to the same rule; the accepted rules must make a program. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/domain/cgroup-bpf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(int r, const struct dv_error *err) {
        if (r != -EINVAL && r != -ERANGE)
                abort();
        const char *m = dv_error_message(err);
        if (!m || !*m || err->n_problems != 1)
                abort(); /* one problem, which says why */
        for (const char *q = m; *q; q++)
                if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
                        abort(); /* the rule is quoted only when it is printable */
}

static void check_rule(const struct cgroup_dev_rule *rule) {
        char buf[CGROUP_DEV_RULE_STRLEN];
        const char *text = cgroup_dev_rule_format(rule, buf);
        if (strlen(text) + 1 >= CGROUP_DEV_RULE_STRLEN)
                abort(); /* never truncated */
        struct cgroup_dev_rule again;
        if (cgroup_dev_rule_parse(text, &again, NULL) < 0 || again.type != rule->type ||
            again.major != rule->major || again.minor != rule->minor ||
            again.access != rule->access)
                abort(); /* what we format, we accept, as the same rule */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        struct cgroup_dev_rule *rules = calloc(size / 2 + 1, sizeof(*rules));
        if (!text || !rules)
                abort();
        memcpy(text, data, size);
        text[size] = '\0';
        size_t n = 0;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                struct dv_error err = DV_ERROR_INIT;
                struct cgroup_dev_rule rule;
                int r = cgroup_dev_rule_parse(line, &rule, &err);
                if (r < 0)
                        check_refusal(r, &err);
                else {
                        if (dv_error_failed(&err))
                                abort();
                        check_rule(&rule);
                        rules[n++] = rule;
                }
                dv_error_clear(&err);
        }
        struct bpf_insn *insns = NULL;
        size_t n_insns = 0;
        int r = cgroup_bpf_devices_program(rules, n, &insns, &n_insns);
        if (n > CGROUP_BPF_MAX_RULES ? r != -E2BIG : r != 0 || n_insns > 6 + 8 * n + 2)
                abort(); /* every list the parser gives makes a program, of bounded size */
        free(insns);
        free(rules);
        free(text);
        return 0;
}
