/* SPDX-License-Identifier: MIT */
#include "store/committer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "basic/util.h"

struct Committer {
        sd_event_source *wakeup; /* the eventfd the thread signals */
        int efd;
        Store *store;

        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool quit;               /* under lock */
        StoreSnapshot *job;      /* under lock: to write, or written */
        bool written;            /* under lock */
        int result;              /* under lock */

        bool busy; /* loop side: a job was submitted and done not yet called */
        committer_done_t done;
        void *userdata;
};

static void *writer(void *userdata) {
        Committer *c = userdata;
        uint64_t one = 1;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                while (!c->quit && (!c->job || c->written))
                        pthread_cond_wait(&c->cond, &c->lock);
                if (c->quit)
                        break;
                StoreSnapshot *snap = c->job;
                pthread_mutex_unlock(&c->lock);
                int r = store_snapshot_write(c->store, snap);
                pthread_mutex_lock(&c->lock);
                c->result = r;
                c->written = true;
                pthread_cond_broadcast(&c->cond); /* committer_free() may wait */
                /* An eventfd write only fails if the counter would overflow. */
                (void) !write(c->efd, &one, sizeof one);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

static int on_written(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Committer *c = userdata;
        uint64_t n;
        StoreSnapshot *snap = NULL;
        int result = 0;

        (void) !read(fd, &n, sizeof n);
        pthread_mutex_lock(&c->lock);
        if (c->job && c->written) {
                snap = c->job;
                result = c->result;
                c->job = NULL;
                c->written = false;
        }
        pthread_mutex_unlock(&c->lock);
        if (!snap)
                return 0;
        result = store_snapshot_done(c->store, snap, result);
        c->busy = false;
        c->done(result, c->userdata);
        return 0;
}

int committer_new(sd_event *event, Store *store, Committer **ret) {
        Committer *c = calloc(1, sizeof *c);
        int r;

        if (!c)
                return -ENOMEM;
        c->efd = -1;
        c->store = store;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &c->wakeup, c->efd, EPOLLIN, on_written, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(c->wakeup, "store-committer");
        *ret = c;
        return 0;
fail:
        committer_free(c);
        return r;
}

static int start_thread(Committer *c) {
        sigset_t all, old;
        int r;

        /* Signals stay with the loop's signalfd: the thread blocks them all. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&c->thread, NULL, writer, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        c->started = true;
        return 0;
}

int committer_submit(Committer *c, StoreSnapshot *snap, committer_done_t done, void *userdata) {
        int r;

        if (!c || !snap || !done)
                return -EINVAL;
        if (c->busy)
                return -EBUSY;
        if (!c->started) {
                r = start_thread(c);
                if (r < 0)
                        return r;
        }
        c->busy = true;
        c->done = done;
        c->userdata = userdata;
        pthread_mutex_lock(&c->lock);
        c->job = snap;
        c->written = false;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return 0;
}

bool committer_busy(const Committer *c) {
        return c && c->busy;
}

Committer *committer_free(Committer *c) {
        if (!c)
                return NULL;
        if (c->started) {
                pthread_mutex_lock(&c->lock);
                /* Let a write in flight finish: a half-done commit is whole
                 * anyway (write_file_atomic), but the snapshot must not be
                 * freed under the thread. */
                while (c->job && !c->written)
                        pthread_cond_wait(&c->cond, &c->lock);
                c->quit = true;
                pthread_cond_broadcast(&c->cond);
                pthread_mutex_unlock(&c->lock);
                pthread_join(c->thread, NULL);
        }
        /* Its outcome as it was: reporting a durable write as failed would
         * let the next snapshot reuse its number, and be skipped. */
        if (c->job)
                (void) store_snapshot_done(c->store, c->job, c->written ? c->result : -ECANCELED);
        sd_event_source_disable_unref(c->wakeup);
        if (c->efd >= 0)
                close(c->efd);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}
