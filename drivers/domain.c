/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The domain driver table: which driver runs which <domain type>, their configuration,
 * and one events fd over all of them for the agent's loop. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "drivers/domain.h"
#include "drivers/domain/lxc.h"
#include "drivers/domain/qemu.h"
#include "drivers/domain/xen.h"
#include "util/log.h"
#include "util/macro.h"

void dom_status_done(struct dom_status *s) {
        if (!s)
                return;
        free(s->reason);
        free(s->qmp_status);
        free(s->exit_reason);
        free(s->unconfined_how);
        *s = (struct dom_status){0};
}

const struct domain_driver *domain_driver_get(enum domain_type type) {
        switch (type) {
        case DOMAIN_TYPE_KVM:
        case DOMAIN_TYPE_QEMU:
                return &qemu_domain_driver;
        case DOMAIN_TYPE_LXC:
                return &lxc_domain_driver;
        case DOMAIN_TYPE_XEN:
                return &xen_domain_driver;
        default:
                return NULL;
        }
}

void domain_drivers_set_config(const struct dom_driver_config *c) {
        qemu_driver_set_config(c->qemu_binary, c->qemu_accel, c->run_dir, c->state_dir);
        if (qemu_driver_set_storage_locations(c->storage_locations) < 0)
                (void)log_oom();
        lxc_driver_set_config(c);
        xen_driver_set_config(c);
}

/* Each driver once (kvm and qemu share one). A driver's fd is added once it has one: Xen's
 * exists only while xenstore is reachable, so a driver without an fd is asked again at
 * every dispatch. */
static const struct domain_driver *const drivers[] = {
        &qemu_domain_driver,
        &lxc_domain_driver,
        &xen_domain_driver,
};
static int events_epoll = -1;
static bool events_added[ELEMENTSOF(drivers)];

static void events_add_missing(void) {
        for (size_t i = 0; i < ELEMENTSOF(drivers); i++) {
                if (events_added[i] || !drivers[i]->events_fd)
                        continue;
                int fd = drivers[i]->events_fd();
                if (fd < 0)
                        continue;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                if (epoll_ctl(events_epoll, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST)
                        events_added[i] = true;
        }
}

int domain_events_fd(void) {
        if (events_epoll < 0) {
                events_epoll = epoll_create1(EPOLL_CLOEXEC);
                if (events_epoll < 0)
                        return -errno;
        }
        events_add_missing();
        return events_epoll;
}

int domain_events_dispatch(void) {
        if (events_epoll < 0)
                return 0;
        /* Level-triggered: each driver's dispatch reads without waiting, so asking all of
         * them is cheap, and whatever they leave keeps the fd readable. */
        int n = 0;
        for (size_t i = 0; i < ELEMENTSOF(drivers); i++) {
                if (!events_added[i] || !drivers[i]->events_dispatch)
                        continue;
                int r = drivers[i]->events_dispatch();
                if (r > 0)
                        n += r;
        }
        events_add_missing();
        return n;
}
