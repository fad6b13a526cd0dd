/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The attacker of tests/integration/desired-trust.sh: swaps two names with
 * renameat2(RENAME_EXCHANGE) as fast as it can, so that whoever checks one of them and
 * then opens it again by name gets the other. Usage: rename-exchange A B SECONDS.
 * Ends with A and B exchanged (an odd number of swaps), so that the last state is the
 * attacker's; prints the count. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: rename-exchange A B SECONDS\n");
                return 2;
        }
        double end = now() + atof(argv[3]);
        unsigned long n = 0;
        while (n % 2 == 0 || now() < end) {
                if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) < 0) {
                        fprintf(stderr, "rename-exchange: %s\n", strerror(errno));
                        return 1;
                }
                n++;
        }
        printf("%lu\n", n);
        return 0;
}
