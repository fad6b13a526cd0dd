/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The executor: runs actions in max_parallel worker threads so that slow work
 * (qemu-img preallocation, mkfs, iSCSI login, graceful shutdown) never stalls the
 * loop. Completion is signalled on an eventfd the event loop watches. */
#pragma once

#include <stdbool.h>

#include "util/error.h"

struct exec_job;
typedef int (*exec_fn)(struct exec_job *job);

struct exec_job {
        exec_fn run; /* called in a worker; fills err on failure */
        void *data;  /* the caller's */
        void (*free_data)(void *data);
        int result; /* run's return value */
        struct dv_error err;
        struct exec_job *next;
};

struct executor;

int exec_new(unsigned max_parallel, struct executor **ret);
/* Waits for running jobs to finish, then frees everything: queued jobs never start. */
void exec_free(struct executor *x);
/* Readable when finished jobs can be reaped. */
int exec_fd(const struct executor *x);
/* Takes ownership of job. */
int exec_submit(struct executor *x, struct exec_job *job);
/* Finished jobs, oldest first, as a list (job->next); the caller frees each with
 * exec_job_free. Clears the eventfd. */
struct exec_job *exec_reap(struct executor *x);
/* Blocks until at least one job has finished or nothing is queued or running. */
void exec_wait(struct executor *x);
/* Jobs queued or running. */
unsigned exec_pending(const struct executor *x);
/* Jobs a worker is running now (not those waiting in the queue). */
unsigned exec_running(const struct executor *x);
void exec_job_free(struct exec_job *job);
