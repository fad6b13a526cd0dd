/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Worker threads with a job queue and a done queue. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reconcile/exec.h"

struct executor {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t *threads;
        unsigned n_threads;
        struct exec_job *queue, *queue_tail;
        struct exec_job *done, *done_tail;
        unsigned pending; /* queued + running */
        unsigned running;
        bool stopping;
        int efd;
};

static void push(struct exec_job **head, struct exec_job **tail, struct exec_job *j) {
        j->next = NULL;
        if (*tail)
                (*tail)->next = j;
        else
                *head = j;
        *tail = j;
}

static void *worker(void *arg) {
        struct executor *x = arg;
        pthread_mutex_lock(&x->lock);
        for (;;) {
                while (!x->queue && !x->stopping)
                        pthread_cond_wait(&x->cond, &x->lock);
                /* Stopping: what runs finishes, what waits in the queue never starts. */
                if (x->stopping)
                        break;
                struct exec_job *j = x->queue;
                x->queue = j->next;
                if (!x->queue)
                        x->queue_tail = NULL;
                x->running++;
                pthread_mutex_unlock(&x->lock);

                j->result = j->run(j);

                pthread_mutex_lock(&x->lock);
                push(&x->done, &x->done_tail, j);
                x->pending--;
                x->running--;
                uint64_t one = 1;
                (void)!write(x->efd, &one, sizeof(one));
                pthread_cond_broadcast(&x->cond);
        }
        pthread_mutex_unlock(&x->lock);
        return NULL;
}

int exec_new(unsigned max_parallel, struct executor **ret) {
        if (max_parallel == 0)
                max_parallel = 1;
        struct executor *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        pthread_mutex_init(&x->lock, NULL);
        pthread_cond_init(&x->cond, NULL);
        x->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        x->threads = calloc(max_parallel, sizeof(pthread_t));
        if (x->efd < 0 || !x->threads) {
                exec_free(x);
                return -ENOMEM;
        }
        /* Workers never take signals: the event loop handles them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (unsigned i = 0; i < max_parallel; i++) {
                if (pthread_create(&x->threads[i], NULL, worker, x) != 0)
                        break;
                x->n_threads++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (x->n_threads == 0) {
                exec_free(x);
                return -EAGAIN;
        }
        *ret = x;
        return 0;
}

void exec_job_free(struct exec_job *j) {
        if (!j)
                return;
        if (j->free_data)
                j->free_data(j->data);
        dv_error_clear(&j->err);
        free(j);
}

void exec_free(struct executor *x) {
        if (!x)
                return;
        pthread_mutex_lock(&x->lock);
        x->stopping = true;
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
        for (unsigned i = 0; i < x->n_threads; i++)
                pthread_join(x->threads[i], NULL);
        for (struct exec_job *j = x->queue, *n; j; j = n) {
                n = j->next;
                exec_job_free(j);
        }
        for (struct exec_job *j = x->done, *n; j; j = n) {
                n = j->next;
                exec_job_free(j);
        }
        if (x->efd >= 0)
                close(x->efd);
        pthread_cond_destroy(&x->cond);
        pthread_mutex_destroy(&x->lock);
        free(x->threads);
        free(x);
}

int exec_fd(const struct executor *x) {
        return x->efd;
}

int exec_submit(struct executor *x, struct exec_job *job) {
        pthread_mutex_lock(&x->lock);
        push(&x->queue, &x->queue_tail, job);
        x->pending++;
        pthread_cond_signal(&x->cond);
        pthread_mutex_unlock(&x->lock);
        return 0;
}

struct exec_job *exec_reap(struct executor *x) {
        uint64_t v;
        (void)!read(x->efd, &v, sizeof(v));
        pthread_mutex_lock(&x->lock);
        struct exec_job *l = x->done;
        x->done = x->done_tail = NULL;
        pthread_mutex_unlock(&x->lock);
        return l;
}

void exec_wait(struct executor *x) {
        pthread_mutex_lock(&x->lock);
        while (!x->done && x->pending > 0)
                pthread_cond_wait(&x->cond, &x->lock);
        pthread_mutex_unlock(&x->lock);
}

unsigned exec_running(const struct executor *x) {
        pthread_mutex_lock((pthread_mutex_t *)&x->lock);
        unsigned n = x->running;
        pthread_mutex_unlock((pthread_mutex_t *)&x->lock);
        return n;
}

unsigned exec_pending(const struct executor *x) {
        pthread_mutex_lock((pthread_mutex_t *)&x->lock);
        unsigned n = x->pending;
        pthread_mutex_unlock((pthread_mutex_t *)&x->lock);
        return n;
}
