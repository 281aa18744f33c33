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
 * Allocating writes on an image opened O_DIRECT go in batches: up to
 * BATCH_MAX consecutive ones (each in one cluster, no two in one cluster)
 * are prepared one by one (L2 table, copy-on-write content, host cluster
 * allocated), their data written all at once on a ring of the worker's own
 * (restricted like the submitter's: WRITEV on that one descriptor), and
 * committed (L2 entries) in order once every write is back. So the device
 * sees up to 16 cluster writes in flight instead of one, and each L2 entry
 * still points only at data already written. They are in flight together
 * only because they are no extending writes: the qcow2 driver grows the file
 * ahead of them (qcow2_grow.c); a write past the end of the file runs alone
 * in the file system, and the batch would reach the disk one at a time.
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
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BATCH_MAX 16 /* allocating writes whose data writes are in flight at once */

/* Copy-on-writes prepared, their data writes not yet submitted. */
struct cow_batch {
    unsigned n;
    struct blockdev_req *req[BATCH_MAX];
    struct bd_cow cow[BATCH_MAX];
    int64_t res[BATCH_MAX];
    struct bd_cow_buf buf[BATCH_MAX];
};

struct bd_worker {
    struct blockdev *bd;
    struct bd_engine *ring; /* the top image's O_DIRECT fd only; NULL: no batches */
    int ring_efd;
    struct cow_batch batch;
    pthread_t thread;
    pthread_mutex_t lock; /* the job queue and stop */
    pthread_cond_t cond;      /* work queued or stop */
    pthread_cond_t progress;  /* a request finished */
    struct blockdev_req *head, *tail;
    bool stop, thread_failed;
    unsigned pending; /* pushed and not yet done (atomic) */
    void (*init)(void);
};

/* Appends the list first..last to bd's done list; the eventfd is written
 * only when the list was empty (the reaper takes the whole list). */
void bd_done_append(struct blockdev *bd, struct blockdev_req *first, struct blockdev_req *last)
{
    uint64_t one = 1;
    bool was_empty;

    pthread_mutex_lock(&bd->done_lock);
    was_empty = !bd->done_head;
    bd_req_list_append(&bd->done_head, &bd->done_tail, first, last);
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

/* A request is done: on the done list at once (the guest may refill). */
static void finish(struct bd_worker *w, struct blockdev_req *r, int64_t result)
{
    r->result_ = result;
    bd_done_append(w->bd, r, r);
    pthread_mutex_lock(&w->lock);
    __atomic_sub_fetch(&w->pending, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&w->progress);
    pthread_mutex_unlock(&w->lock);
}

static void batch_write_done(struct blockdev_req *req, int64_t res, void *ctx)
{
    struct cow_batch *b = ctx;

    for (unsigned i = 0; i < b->n; i++)
        if (b->req[i] == req)
            b->res[i] = res;
}

/*
 * The batch's data writes, all in flight at once on the worker's ring, then
 * the commits in submission order: each L2 entry only after its data is on
 * the host, as in the unbatched path. A failed write leaves its cluster
 * allocated and unreferenced (a leak, never a wrong pointer).
 */
static void batch_run(struct bd_worker *w)
{
    struct cow_batch *b = &w->batch;
    struct blockdev *bd = w->bd;
    struct iovec iov[BATCH_MAX];
    unsigned queued = 0;

    if (!b->n)
        return;
    for (unsigned i = 0; i < b->n; i++) {
        iov[i] = (struct iovec){.iov_base = b->cow[i].buf, .iov_len = b->cow[i].len};
        b->res[i] = -EIO;
        /* Each on its own (no deferred batch): submitted together, the block
         * layer merges neighbouring clusters into requests of up to 1 MiB,
         * and on the measured host (a virtual disk) blocks first written that
         * way took later 4 KiB overwrites 15-25 % longer. */
        if (bd_engine_submit(w->ring, bd->dfd, true, &iov[i], 1, b->cow[i].host, b->req[i],
                             false) == 0)
            queued++;
        else
            b->res[i] = bd_pwrite_full(bd->dfd, b->cow[i].buf, b->cow[i].len, b->cow[i].host)
                            ? -EIO : (int64_t)b->cow[i].len;
    }
    if (queued && bd_engine_reap(w->ring, queued, batch_write_done, b) < 0)
        for (unsigned i = 0; i < b->n; i++)
            b->res[i] = -EIO; /* cannot tell which landed: commit none */
    pthread_mutex_lock(&bd->meta_lock);
    for (unsigned i = 0; i < b->n; i++) {
        int64_t r = b->res[i] == (int64_t)b->cow[i].len ? 0 : b->res[i] < 0 ? b->res[i] : -EIO;
        if (r == 0)
            r = bd->drv->cow_commit(bd, &b->cow[i]);
        b->res[i] = r < 0 ? r : (int64_t)b->req[i]->len;
    }
    pthread_mutex_unlock(&bd->meta_lock);
    for (unsigned i = 0; i < b->n; i++)
        finish(w, b->req[i], b->res[i]);
    b->n = 0;
}

/* 1: r joined the batch, 0: run it the ordinary way (after the batch),
 * <0: it failed (after the batch). */
static int batch_add(struct bd_worker *w, struct blockdev_req *r)
{
    struct cow_batch *b = &w->batch;
    struct blockdev *bd = w->bd;
    int rc;

    if (!w->ring || r->op != BLOCKDEV_OP_WRITE || !bd->drv->cow_prepare)
        return 0;
    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&bd->meta_lock);
        rc = bd->drv->cow_prepare(bd, r, &b->buf[b->n], b->cow, b->n, &b->cow[b->n]);
        pthread_mutex_unlock(&bd->meta_lock);
        if (rc != 2)
            break;
        batch_run(w); /* the cluster is in the batch: commit it first */
    }
    if (rc != 1)
        return rc == 2 ? 0 : rc;
    b->req[b->n++] = r;
    if (b->n == BATCH_MAX)
        batch_run(w);
    return 1;
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
            int rc;

            jobs = r->next_;
            rc = batch_add(w, r);
            if (rc == 1)
                continue;
            batch_run(w); /* what came before r completes before it */
            if (rc < 0) {
                finish(w, r, rc);
                continue;
            }
            finish(w, r, bd_run_sync(bd, r));
        }
        batch_run(w); /* nothing more queued: do not hold the batch back */
    }
}

struct bd_worker *bd_worker_start(struct blockdev *bd, void (*init)(void))
{
    struct bd_worker *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->bd = bd;
    w->init = init;
    w->ring_efd = -1;
    /* Here, in the caller's thread: io_uring_setup is not allowed in the
     * confined worker. Only the top image's O_DIRECT descriptor: copy-on-write
     * data goes nowhere else. */
    if (bd->dfd >= 0 && bd->drv->cow_prepare && !bd->read_only &&
        (w->ring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) >= 0)
        w->ring = bd_engine_new(BATCH_MAX, &bd->dfd, 1, w->ring_efd);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->progress, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        w->thread_failed = true;
        bd_worker_stop(w);
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
    __atomic_add_fetch(&w->pending, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&w->lock);
    bd_req_list_append(&w->head, &w->tail, req, req);
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
    if (!w->thread_failed)
        pthread_join(w->thread, NULL); /* it finishes what was queued first */
    bd_engine_free(w->ring);
    if (w->ring_efd >= 0)
        close(w->ring_efd);
    for (unsigned i = 0; i < BATCH_MAX; i++)
        free(w->batch.buf[i].buf);
    pthread_cond_destroy(&w->progress);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
