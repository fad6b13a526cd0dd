/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `declvirt agent` and `declvirt plan`: the event loop (sd-event from libsystemd:
 * signals, timers, io, watchdog and sd_notify in one well-kept library) that
 * drives the engine. Events only mark things dirty and schedule a pass. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "agent/cli.h"
#include "agent/watch.h"
#include "drivers/domain.h"
#include "drivers/domain/qemu.h"
#include "drivers/network.h"
#include "drivers/storage/iscsi.h"
#include "reconcile/engine.h"
#include "state/state.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/strv.h"
#include "util/time.h"

#define MAX_DEBOUNCE_DELAY_USEC USEC_PER_SEC

struct daemon {
        const char *config_path;
        struct dv_config *cfg;
        sd_event *event;
        struct engine *engine;
        struct dv_watch *watch;
        sd_event_source *pass_timer, *resync_timer, *wakeup_timer, *exec_source, *object_events;
        bool once, dry_run;
        bool was_converged;
        bool interactive;
        int lock_fd;
};

static void schedule_pass(struct daemon *d, uint64_t delay) {
        uint64_t now;
        sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        uint64_t when = now + delay, cur;
        int enabled = SD_EVENT_OFF;
        sd_event_source_get_enabled(d->pass_timer, &enabled);
        if (enabled != SD_EVENT_OFF && sd_event_source_get_time(d->pass_timer, &cur) >= 0 &&
            cur <= when)
                return;
        sd_event_source_set_time(d->pass_timer, when);
        sd_event_source_set_enabled(d->pass_timer, SD_EVENT_ONESHOT);
}

static void log_events(struct daemon *d) {
        _cleanup_strv_free_ char **ev = engine_take_events(d->engine);
        for (size_t i = 0; ev && ev[i]; i++) {
                bool bad = strstr(ev[i], " failed") || strstr(ev[i], ": blocked") ||
                           strstr(ev[i], "cannot ");
                if (bad)
                        log_warning("%s", ev[i]);
                else
                        log_info("%s", ev[i]);
        }
}

static void after_pass(struct daemon *d) {
        log_events(d);
        _cleanup_free_ char *summary = engine_summary(d->engine);
        sd_notifyf(false, "STATUS=%s", strempty(summary));
        bool conv = engine_converged(d->engine);
        if (conv && !d->was_converged) {
                log_info("converged: %s", strempty(summary));
                if (d->interactive) {
                        struct buf b = BUF_INIT;
                        engine_format_table(d->engine, &b);
                        fputs(buf_str(&b), stdout);
                        fflush(stdout);
                        buf_free(&b);
                }
        }
        d->was_converged = conv;
        uint64_t next = engine_next_wakeup(d->engine);
        if (next) {
                sd_event_source_set_time(d->wakeup_timer, next);
                sd_event_source_set_enabled(d->wakeup_timer, SD_EVENT_ONESHOT);
        } else
                sd_event_source_set_enabled(d->wakeup_timer, SD_EVENT_OFF);
}

static int on_pass(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s;
        (void)usec;
        struct daemon *d = userdata;
        engine_pass(d->engine);
        after_pass(d);
        return 0;
}

static int on_wakeup(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s;
        (void)usec;
        schedule_pass(userdata, 0);
        return 0;
}

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        engine_mark_all(d->engine);
        schedule_pass(d, 0);
        sd_event_source_set_time(s, usec + d->cfg->resync_interval_usec);
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static int on_exec(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s;
        (void)fd;
        (void)revents;
        struct daemon *d = userdata;
        if (engine_reap(d->engine) > 0)
                schedule_pass(d, 0);
        return 0;
}

/* A domain paused, resumed, shut down or exited: observe it now, not at the resync. */
static int on_object_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s;
        (void)fd;
        (void)revents;
        struct daemon *d = userdata;
        if (engine_event_dispatch(d->engine) > 0)
                schedule_pass(d, 0);
        return 0;
}

static void on_watch(struct dv_watch *w, bool full, char *const *dirs, void *userdata) {
        (void)w;
        struct daemon *d = userdata;
        if (full)
                engine_mark_all(d->engine);
        else
                engine_mark_dirs(d->engine, dirs);
        schedule_pass(d, 0);
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void)s;
        struct daemon *d = userdata;
        log_info("received %s; stopping (objects are left as they are)",
                 strsignal((int)si->ssi_signo));
        sd_notify(false, "STOPPING=1");
        unsigned running = engine_running_now(d->engine),
                 queued = engine_running(d->engine) - running;
        if (running)
                log_info("waiting for %u running action%s to finish", running,
                         running == 1 ? "" : "s");
        if (queued)
                log_info("%u queued action%s will not start; the next start plans again", queued,
                         queued == 1 ? "" : "s");
        sd_event_exit(d->event, 0);
        return 0;
}

static struct engine_config engine_config_from(const struct dv_config *cfg, bool dry_run) {
        return (struct engine_config){
                .desired_dir = cfg->desired_dir,
                .state_dir = cfg->state_dir,
                .storage_locations = cfg->storage_locations,
                .check_trust = geteuid() == 0 && cfg->strict_permissions,
                .max_parallel = cfg->max_parallel,
                .removal_delay_usec = cfg->removal_delay_usec,
                .dry_run = dry_run,
                .metrics_file = cfg->metrics_file,
                .version = DECLVIRT_VERSION,
                .qemu_uid_first = cfg->qemu.uid_first,
                .qemu_uid_last = cfg->qemu.uid_last,
                .container_id_first = cfg->container.id_first,
                .container_id_last = cfg->container.id_last,
        };
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void)s;
        (void)si;
        struct daemon *d = userdata;
        sd_notify(false, "RELOADING=1");
        struct dv_config *n = NULL;
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        if (dv_config_load(d->config_path, &n, &err) < 0) {
                _cleanup_free_ char *m = dv_error_summary(&err);
                log_error("reload failed, keeping the running configuration: %s", strna(m));
        } else {
                if (!streq(n->desired_dir, d->cfg->desired_dir) ||
                    !streq(n->state_dir, d->cfg->state_dir) ||
                    !streq(n->run_dir, d->cfg->run_dir) ||
                    n->max_parallel != d->cfg->max_parallel ||
                    n->strict_permissions != d->cfg->strict_permissions ||
                    n->qemu.uid_first != d->cfg->qemu.uid_first ||
                    n->qemu.uid_last != d->cfg->qemu.uid_last ||
                    n->container.id_first != d->cfg->container.id_first ||
                    n->container.id_last != d->cfg->container.id_last)
                        log_notice(
                                "desired_dir, state_dir, run_dir, max_parallel, strict_permissions, "
                                "qemu.uid_range and container.id_range take effect at the next "
                                "start; other settings are reloaded");
                /* The engine borrows these strings: the running ones move into the new
                 * configuration, so the pointers it holds stay valid. */
                SWAP(n->desired_dir, d->cfg->desired_dir);
                SWAP(n->state_dir, d->cfg->state_dir);
                SWAP(n->run_dir, d->cfg->run_dir);
                n->max_parallel = d->cfg->max_parallel;
                n->strict_permissions = d->cfg->strict_permissions;
                n->qemu.uid_first = d->cfg->qemu.uid_first;
                n->qemu.uid_last = d->cfg->qemu.uid_last;
                n->container.id_first = d->cfg->container.id_first;
                n->container.id_last = d->cfg->container.id_last;
                struct engine_config ec = engine_config_from(n, d->dry_run);
                if (engine_reconfigure(d->engine, &ec) < 0) { /* only -ENOMEM */
                        (void)log_oom();
                        log_error("reload failed, keeping the running configuration");
                        SWAP(n->desired_dir, d->cfg->desired_dir);
                        SWAP(n->state_dir, d->cfg->state_dir);
                        SWAP(n->run_dir, d->cfg->run_dir);
                        dv_config_free(n);
                } else {
                        dv_config_free(d->cfg);
                        d->cfg = n;
                        log_set_max_level(n->log_level);
                        drv_iscsi_set_secrets_dir(n->secrets_dir);
                        if (qemu_driver_set_storage_locations(n->storage_locations) < 0)
                                (void)log_oom();
                        if (d->watch)
                                dv_watch_set_debounce(d->watch, n->debounce_usec);
                        log_info("configuration reloaded");
                }
        }
        engine_mark_all(d->engine);
        schedule_pass(d, 0);
        sd_notify(false, "READY=1");
        return 0;
}

static void agent_usage(FILE *f) {
        fprintf(f,
                "Usage: declvirt [--config FILE] agent [--once] [--dry-run]\n"
                "\n"
                "Runs the agent in the foreground (systemd Type=notify).\n"
                "  --once      one full pass, waiting for its actions (and for removal_delay when a\n"
                "              file was removed); exit 0 if converged, 1 if not\n"
                "  --dry-run   plan only: log what would be done, change nothing\n");
}

static int open_engine(const struct dv_config *cfg, bool dry_run, struct engine **ret) {
        struct engine_config ec = engine_config_from(cfg, dry_run);
        drv_iscsi_set_secrets_dir(cfg->secrets_dir);
        network_driver_set_dirs(cfg->run_dir, cfg->state_dir);
        agent_set_domain_drivers(cfg);
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        int r = engine_new(&ec, ret, &err);
        if (r < 0) {
                _cleanup_free_ char *m = dv_error_summary(&err);
                log_error("cannot start the engine: %s", m ? m : strerror(-r));
        }
        return r;
}

/* Passes as actions finish, until nothing runs. */
static void run_until_idle(struct daemon *d) {
        engine_pass(d->engine);
        log_events(d);
        for (;;) {
                /* Reap first: a quick action may have finished already. */
                if (engine_reap(d->engine) > 0) {
                        engine_pass(d->engine);
                        log_events(d);
                        continue;
                }
                if (engine_running(d->engine) == 0)
                        break;
                struct pollfd p = {.fd = engine_exec_fd(d->engine), .events = POLLIN};
                (void)poll(&p, 1, -1);
        }
}

/* Sleeps until the CLOCK_MONOTONIC time `at` (usec). */
static void sleep_until(uint64_t at) {
        struct timespec ts = {.tv_sec = (time_t)(at / USEC_PER_SEC),
                              .tv_nsec = (long)(at % USEC_PER_SEC) * 1000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* --once: one full pass, then passes as actions finish, until nothing runs. A file
 * that was removed is removed from the host in --once too: its removal_delay is waited
 * out, then every file is read again (a file put back meanwhile cancels the removal)
 * and the removal carried out. A dry run only plans: it never waits. */
static int run_once(struct daemon *d) {
        engine_mark_all(d->engine);
        run_until_idle(d);
        uint64_t at;
        while (!d->dry_run && !engine_converged(d->engine) &&
               (at = engine_next_removal(d->engine, now_usec(CLOCK_MONOTONIC))) != 0) {
                char buf[32];
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                log_info("waiting %s (removal_delay) before a removal",
                         format_duration(buf, at > now ? at - now : 0));
                sleep_until(at);
                engine_mark_all(d->engine);
                run_until_idle(d);
        }
        _cleanup_free_ char *summary = engine_summary(d->engine);
        bool conv = engine_converged(d->engine);
        log_info("%s: %s", conv ? "converged" : "not converged", strempty(summary));
        if (d->interactive || d->dry_run) {
                struct buf b = BUF_INIT;
                if (d->dry_run)
                        engine_format_plan(d->engine, &b);
                else
                        engine_format_table(d->engine, &b);
                fputs(buf_str(&b), stdout);
                buf_free(&b);
        }
        return conv ? 0 : 1;
}

int cli_agent(const char *config_path, int argc, char **argv) {
        static const struct option opts[] = {
                {"once", no_argument, NULL, 'o'},
                {"dry-run", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct daemon d = {.config_path = config_path, .lock_fd = -1};
        int c, r;
        while ((c = getopt_long(argc, argv, "onh", opts, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        d.once = true;
                        break;
                case 'n':
                        d.dry_run = true;
                        break;
                case 'h':
                        agent_usage(stdout);
                        return 0;
                default:
                        agent_usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                agent_usage(stderr);
                return 2;
        }
        _cleanup_dv_error_ struct dv_error err = DV_ERROR_INIT;
        if (dv_config_load(config_path, &d.cfg, &err) < 0 ||
            dv_config_check_uid_range(d.cfg, NULL, NULL, &err) < 0 ||
            dv_config_check_container_range(d.cfg, NULL, NULL, NULL, NULL, &err) < 0) {
                dv_error_print(stderr, &err);
                dv_config_free(d.cfg);
                return 2;
        }
        log_set_max_level(d.cfg->log_level);
        d.interactive = isatty(STDOUT_FILENO);

        r = mkdir_p(d.cfg->state_dir, 0755);
        if (r >= 0)
                r = mkdir_p(d.cfg->run_dir, 0755);
        if (r < 0) {
                log_error("cannot create %s or %s: %s", d.cfg->state_dir, d.cfg->run_dir,
                          strerror(-r));
                dv_config_free(d.cfg);
                return 1;
        }
        if (state_lock(d.cfg->state_dir, &d.lock_fd, &err) < 0) {
                _cleanup_free_ char *m = dv_error_summary(&err);
                log_error("%s", strna(m));
                dv_config_free(d.cfg);
                return 1;
        }
        if (open_engine(d.cfg, d.dry_run, &d.engine) < 0) {
                close(d.lock_fd);
                dv_config_free(d.cfg);
                return 1;
        }
        log_info("declvirt %s: desired %s, state %s%s", DECLVIRT_VERSION, d.cfg->desired_dir,
                 d.cfg->state_dir, d.dry_run ? " (dry run: nothing is changed)" : "");

        if (d.once) {
                r = run_once(&d);
                goto out;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&d.event);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGTERM, on_term, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGINT, on_term, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGHUP, on_hup, &d);
        if (r >= 0)
                r = sd_event_add_time(d.event, &d.pass_timer, CLOCK_MONOTONIC, 0, 1, on_pass, &d);
        if (r >= 0)
                r = sd_event_add_time(d.event, &d.wakeup_timer, CLOCK_MONOTONIC, 0, 1, on_wakeup,
                                      &d);
        if (r >= 0)
                r = sd_event_add_time_relative(d.event, &d.resync_timer, CLOCK_MONOTONIC,
                                               d.cfg->resync_interval_usec, 0, on_resync, &d);
        if (r >= 0)
                r = sd_event_add_io(d.event, &d.exec_source, engine_exec_fd(d.engine), EPOLLIN,
                                    on_exec, &d);
        if (r >= 0) {
                int efd = engine_event_fd(d.engine);
                r = efd < 0 ? efd
                            : sd_event_add_io(d.event, &d.object_events, efd, EPOLLIN,
                                              on_object_event, &d);
        }
        if (r >= 0)
                r = sd_event_set_watchdog(d.event, true);
        if (r < 0) {
                log_error_errno(r, "cannot set up the event loop");
                goto out;
        }
        sd_event_source_set_enabled(d.wakeup_timer, SD_EVENT_OFF);
        /* Passes run after the sources that mark things dirty. */
        sd_event_source_set_priority(d.pass_timer, SD_EVENT_PRIORITY_IDLE);
        r = dv_watch_new(d.event, d.cfg->desired_dir, d.cfg->debounce_usec, MAX_DEBOUNCE_DELAY_USEC,
                         on_watch, &d, &d.watch);
        if (r < 0) {
                log_error_errno(r, "cannot watch %s", d.cfg->desired_dir);
                goto out;
        }

        /* The first pass is full; READY once it has run, so `systemctl start` returns
         * with the state files written. */
        engine_mark_all(d.engine);
        engine_pass(d.engine);
        after_pass(&d);
        sd_notify(false, "READY=1");
        r = sd_event_loop(d.event);
        if (r < 0)
                log_error_errno(r, "event loop failed");
out:
        dv_watch_free(d.watch);
        sd_event_source_unref(d.pass_timer);
        sd_event_source_unref(d.wakeup_timer);
        sd_event_source_unref(d.resync_timer);
        sd_event_source_unref(d.exec_source);
        sd_event_source_unref(d.object_events);
        sd_event_unref(d.event);
        engine_free(d.engine); /* waits for running actions */
        if (d.lock_fd >= 0)
                close(d.lock_fd);
        dv_config_free(d.cfg);
        return r < 0 ? 1 : r;
}

int cli_plan(const struct dv_config *cfg, int argc, char **argv) {
        if (argc > 1) {
                if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
                        printf("Usage: declvirt [--config FILE] plan\n\n"
                               "Prints what the agent would do now: one line per object with the action,\n"
                               "the phase and the reason. Changes nothing.\n");
                        return 0;
                }
                fprintf(stderr, "Usage: declvirt [--config FILE] plan\n");
                return 2;
        }
        struct engine *e = NULL;
        if (open_engine(cfg, true, &e) < 0)
                return 1;
        engine_mark_all(e);
        engine_pass(e);
        struct buf b = BUF_INIT;
        engine_format_plan(e, &b);
        fputs(buf_str(&b), stdout);
        buf_free(&b);
        engine_free(e);
        return 0;
}

void agent_set_domain_drivers(const struct dv_config *cfg) {
        struct dom_driver_config c = {
                .run_dir = cfg->run_dir,
                .state_dir = cfg->state_dir,
                .qemu_binary = cfg->qemu.binary,
                .qemu_accel = dv_qemu_accel_name(cfg->qemu.accel),
                .template_dir = cfg->container.template_dir,
                .container_dir = cfg->container.data_dir,
                .xen_enabled = cfg->xen.enabled == DV_AUTO  ? -1
                               : cfg->xen.enabled == DV_YES ? 1
                                                            : 0,
                .xl = cfg->xen.xl,
                .storage_locations = cfg->storage_locations,
        };
        domain_drivers_set_config(&c);
}
