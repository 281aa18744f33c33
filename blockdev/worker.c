/*
 * The disk's worker thread: runs every asynchronous request that is not a
 * single host range on the io_uring ring (allocating qcow2 writes with their
 * copy-on-write, buffered writes, flush, discard, write-zeroes), so that the
 * submitting thread (herd-vmm's virtio I/O thread) never waits for them.
 *
 * Requests run one at a time, in submission order, each under the image's
 * metadata lock (bd->meta_lock): whatever reached the worker completes in
 * the order the guest queued it, and the format drivers' crash-safe order
 * (data, then refcounts, then the L2 pointer) is unchanged. Completions go
 * onto bd's done list and are signalled on the aio eventfd in batches.
 *
 * What does not come here (aio.c): reads and O_DIRECT writes of mapped
 * data go to the ring; a buffered write of already mapped data runs at
 * submission while this thread is idle. ext4 (and most file systems) have
 * no non-blocking buffered write (RWF_NOWAIT: EOPNOTSUPP), so the ring hands
 * each one to io-wq, serialised per inode; and a page-cache write (~1.5 us)
 * costs less than waking another thread, which on a virtualised host is an
 * IPI exit. Measured (depth-32 4K guest writes on raw, the
 * tools/bench.d/virtio.sh row, 2-core PVM host, medians of 7): on the ring
 * 117-132k IOPS, every write here 132-146k, mapped writes at submission
 * 186-195k; QEMU 150-170k.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct bd_worker {
    struct blockdev *bd;
    pthread_t thread;
    pthread_mutex_t lock; /* the job queue and stop */
    pthread_cond_t cond;      /* work queued or stop */
    pthread_cond_t progress;  /* a request finished */
    struct blockdev_req *head, *tail;
    bool stop;
    unsigned pending; /* pushed and not yet done (atomic) */
    void (*init)(void);
};

/* Appends the list first..last to bd's done list; the eventfd is written
 * only when the list was empty (the reaper takes the whole list). */
void bd_done_append(struct blockdev *bd, struct blockdev_req *first, struct blockdev_req *last)
{
    uint64_t one = 1;
    bool was_empty;

    last->next_ = NULL;
    pthread_mutex_lock(&bd->done_lock);
    was_empty = !bd->done_head;
    if (bd->done_tail)
        bd->done_tail->next_ = first;
    else
        bd->done_head = first;
    bd->done_tail = last;
    pthread_mutex_unlock(&bd->done_lock);
    if (was_empty && bd->efd >= 0) {
        ssize_t w = write(bd->efd, &one, sizeof(one));
        (void)w;
    }
}

static struct blockdev_req *take_jobs(struct bd_worker *w)
{
    struct blockdev_req *jobs;

    pthread_mutex_lock(&w->lock);
    while (!w->head && !w->stop)
        pthread_cond_wait(&w->cond, &w->lock);
    jobs = w->head;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->lock);
    return jobs;
}

static void *worker_main(void *arg)
{
    struct bd_worker *w = arg;
    struct blockdev *bd = w->bd;

    if (w->init)
        w->init();
    for (;;) {
        struct blockdev_req *jobs = take_jobs(w);

        if (!jobs)
            return NULL; /* stopped with nothing queued */
        while (jobs) {
            struct blockdev_req *r = jobs;

            jobs = r->next_;
            pthread_mutex_lock(&bd->meta_lock);
            r->result_ = bd_run_sync(bd, r);
            pthread_mutex_unlock(&bd->meta_lock);
            bd_done_append(bd, r, r); /* at once: the guest may refill */
            pthread_mutex_lock(&w->lock);
            __atomic_sub_fetch(&w->pending, 1, __ATOMIC_RELEASE);
            pthread_cond_broadcast(&w->progress);
            pthread_mutex_unlock(&w->lock);
        }
    }
}

struct bd_worker *bd_worker_start(struct blockdev *bd, void (*init)(void))
{
    struct bd_worker *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->bd = bd;
    w->init = init;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->progress, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->progress);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

bool bd_worker_busy(const struct bd_worker *w)
{
    return w && __atomic_load_n(&w->pending, __ATOMIC_ACQUIRE) != 0;
}

void bd_worker_wait(struct bd_worker *w, long max_ns)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += max_ns;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&w->lock);
    if (w->pending)
        pthread_cond_timedwait(&w->progress, &w->lock, &until);
    pthread_mutex_unlock(&w->lock);
}

void bd_worker_push(struct bd_worker *w, struct blockdev_req *req)
{
    req->next_ = NULL;
    __atomic_add_fetch(&w->pending, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next_ = req;
    else
        w->head = req;
    w->tail = req;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void bd_worker_stop(struct bd_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL); /* it finishes what was queued first */
    pthread_cond_destroy(&w->progress);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
