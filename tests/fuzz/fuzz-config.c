/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the agent.conf reader: parse; a refusal must carry a one-line
 * reason, and an accepted config must satisfy every documented bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p) {
        if (!p || p[0] != '/')
                abort(); /* every directory is made absolute */
}

static void check_refusal(const struct dv_error *err) {
        if (!dv_error_failed(err))
                abort(); /* a refusal always says why */
        for (size_t i = 0; i < err->n_problems; i++) {
                const char *m = err->problems[i].msg;
                if (!m || !*m || err->problems[i].line < 0)
                        abort();
                for (const char *q = m; *q; q++)
                        if ((unsigned char)*q < 0x20)
                                abort(); /* user text is shown on one line */
        }
        char *s = dv_error_summary(err);
        free(s);
}

static void check_config(const struct dv_config *c) {
        check_path(c->path);
        check_path(c->desired_dir);
        check_path(c->state_dir);
        check_path(c->run_dir);
        check_path(c->secrets_dir);
        check_path(c->container.template_dir);
        if (c->metrics_file)
                check_path(c->metrics_file);
        if (!c->qemu.binary || !*c->qemu.binary || !c->xen.xl || !*c->xen.xl)
                abort();
        if (c->max_parallel < 1 || c->max_parallel > 256)
                abort();
        if (c->resync_interval_usec < 100000 ||
            c->resync_interval_usec > 24 * 3600 * UINT64_C(1000000))
                abort();
        if (c->debounce_usec > 1000000 || c->removal_delay_usec > 24 * 3600 * UINT64_C(1000000))
                abort();
        if (c->log_level < 3 || c->log_level > 7)
                abort();
        for (size_t i = 0; c->storage_locations && c->storage_locations[i]; i++)
                check_path(c->storage_locations[i]);
        (void)dv_config_location_allowed(c, "/var/lib/declvirt/pool/disk.qcow2");
        (void)dv_config_location_allowed(c, "/var/lib/declvirt/../x");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct dv_error err = DV_ERROR_INIT;
        struct dv_config *c = NULL;
        int r = dv_config_parse((const char *)data, size, "/etc/declvirt/agent.conf", &c, &err);
        if (r < 0) {
                if (c)
                        abort(); /* nothing is handed out on failure */
                check_refusal(&err);
        } else
                check_config(c);
        dv_config_free(c);
        dv_error_clear(&err);
        return 0;
}
