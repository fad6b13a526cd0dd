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
#include "util/macro.h"

void dom_status_done(struct dom_status *s) {
        if (!s)
                return;
        free(s->reason);
        free(s->qmp_status);
        free(s->exit_reason);
        *s = (struct dom_status){ 0 };
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
        lxc_driver_set_config(c);
        xen_driver_set_config(c);
}

/* Each driver's fd is added once it has one: Xen's exists only while xenstore is
 * reachable, so a driver without an fd is asked again at every dispatch. */
static int events_epoll = -1;
static bool events_added[_DOMAIN_TYPE_MAX];

static void events_add_missing(void) {
        for (int t = 0; t < _DOMAIN_TYPE_MAX; t++) {
                const struct domain_driver *d = domain_driver_get(t);
                if (events_added[t] || !d || !d->events_fd)
                        continue;
                /* kvm and qemu share one driver: add its fd once. */
                bool dup = false;
                for (int u = 0; u < t; u++)
                        dup = dup || (events_added[u] && domain_driver_get(u) == d);
                if (dup) {
                        events_added[t] = true;
                        continue;
                }
                int fd = d->events_fd();
                if (fd < 0)
                        continue;
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)t };
                if (epoll_ctl(events_epoll, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST)
                        events_added[t] = true;
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
        for (int t = 0; t < _DOMAIN_TYPE_MAX; t++) {
                const struct domain_driver *d = domain_driver_get(t);
                if (!events_added[t] || !d || !d->events_dispatch)
                        continue;
                bool dup = false;
                for (int u = 0; u < t; u++)
                        dup = dup || domain_driver_get(u) == d;
                if (dup)
                        continue;
                int r = d->events_dispatch();
                if (r > 0)
                        n += r;
        }
        events_add_missing();
        return n;
}
