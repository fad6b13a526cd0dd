/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The attacker of the QEMU jail tests: becomes what code running in a confined QEMU is
 * and tries to open paths. Usage: jail-probe PID PATH... It enters PID's mount and
 * network namespaces (opened before the first setns: the jail has no /proc), joins every
 * cgroup v1 hierarchy PID is in (so that the device cgroup applies), takes PID's uid and
 * gid with no supplementary group and no capability, then opens each PATH read-only and
 * prints "PATH ok" or "PATH ERRNONAME" (strerrorname_np). Being loaded before it enters
 * the jail, it needs nothing inside. Exit 0 unless it could not become QEMU. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int die(const char *what) {
        fprintf(stderr, "jail-probe: %s: %s\n", what, strerror(errno));
        return 2;
}

/* Each "N:CONTROLLERS:/PATH" of /proc/PID/cgroup with v1 controllers: joins
 * /sys/fs/cgroup/FIRST-CONTROLLER/PATH. */
static int join_cgroups(const char *pid) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%s/cgroup", pid);
        FILE *f = fopen(p, "re");
        if (!f)
                return -1;
        char line[4096];
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2 || c2 == c1 + 1 || strncmp(c1 + 1, "name=", 5) == 0)
                        continue;
                *c2 = 0;
                char *ctrl = c1 + 1;
                ctrl[strcspn(ctrl, ",")] = 0;
                char tasks[4400];
                snprintf(tasks, sizeof(tasks), "/sys/fs/cgroup/%s%s/tasks", ctrl, c2 + 1);
                int fd = open(tasks, O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, "0", 1) != 1) {
                        fprintf(stderr, "jail-probe: cannot join %s: %s\n", tasks, strerror(errno));
                        fclose(f);
                        return -1;
                }
                close(fd);
        }
        fclose(f);
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: jail-probe PID PATH...\n");
                return 2;
        }
        char p[64];
        snprintf(p, sizeof(p), "/proc/%s/status", argv[1]);
        FILE *f = fopen(p, "re");
        if (!f)
                return die(p);
        char line[512];
        unsigned long uid = 0, gid = 0;
        int found = 0;
        while (fgets(line, sizeof(line), f)) {
                found += sscanf(line, "Uid: %lu", &uid) == 1;
                found += sscanf(line, "Gid: %lu", &gid) == 1;
        }
        fclose(f);
        if (found != 2 || uid == 0 || gid == 0) {
                fprintf(stderr, "jail-probe: PID %s does not run as a uid and gid of its own\n",
                        argv[1]);
                return 2;
        }
        snprintf(p, sizeof(p), "/proc/%s/ns/mnt", argv[1]);
        int mnt = open(p, O_RDONLY | O_CLOEXEC);
        snprintf(p, sizeof(p), "/proc/%s/ns/net", argv[1]);
        int net = open(p, O_RDONLY | O_CLOEXEC);
        if (mnt < 0 || net < 0)
                return die("cannot open the namespaces");
        if (join_cgroups(argv[1]) < 0)
                return 2;
        if (setns(net, CLONE_NEWNET) < 0 || setns(mnt, CLONE_NEWNS) < 0)
                return die("setns");
        if (chdir("/") < 0)
                return die("chdir");
        for (int c = 0; c < 64; c++)
                (void)prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                return die("cannot take QEMU's uid and gid");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return die("no_new_privs");
        for (int k = 2; k < argc; k++) {
                int fd = open(argv[k], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd >= 0) {
                        printf("%s ok\n", argv[k]);
                        close(fd);
                } else {
                        printf("%s %s\n", argv[k], strerrorname_np(errno));
                }
        }
        return 0;
}
