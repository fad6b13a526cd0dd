/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replays fuzz inputs as an ordinary test: each argument (or, with none, the
 * target's corpus directory tests/fuzz/corpus/NAME) is fed to the fuzz entry
 * point once. Prints TAP, one line per input. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_tests;

static int replay_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_full_file(path, 16 << 20, &data, &len);
        if (r < 0) {
                printf("not ok %d - %s: %s\n", ++n_tests, path, strerror(-r));
                return r;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
        printf("ok %d - %s\n", ++n_tests, path);
        return 0;
}

static int replay(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0) {
                printf("not ok %d - %s: %s\n", ++n_tests, path, strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path);
        struct dirent **list = NULL;
        int n = scandir(path, &list, NULL, alphasort);
        if (n < 0)
                return -errno;
        int ret = 0;
        for (int i = 0; i < n; i++) {
                if (list[i]->d_name[0] != '.') {
                        char *p = NULL;
                        if (asprintf(&p, "%s/%s", path, list[i]->d_name) >= 0) {
                                if (replay_file(p) < 0)
                                        ret = -1;
                                free(p);
                        }
                }
                free(list[i]);
        }
        free(list);
        return ret;
}

int main(int argc, char **argv) {
        int ret = 0;
        if (argc > 1) {
                for (int i = 1; i < argc; i++)
                        if (replay(argv[i]) < 0)
                                ret = 1;
        } else {
                const char *name = strrchr(argv[0], '/');
                name = name ? name + 1 : argv[0];
                char *dir = NULL;
                if (asprintf(&dir, "tests/fuzz/corpus/%s", name) < 0)
                        return 1;
                if (replay(dir) < 0)
                        ret = 1;
                free(dir);
        }
        printf("1..%d\n", n_tests);
        return ret;
}
