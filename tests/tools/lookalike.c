/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A process that does nothing but wait, whatever its arguments: the integration tests run
 * it as nobody under the command line of a QEMU or a dnsmasq of the agent's (exec -a), a
 * look-alike the agent must neither adopt nor signal (docs/qemu.md, docs/network.md). */
#include <unistd.h>

int main(void) {
        for (;;)
                pause();
}
