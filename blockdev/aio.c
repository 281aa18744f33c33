/*
 * Asynchronous requests. A read that maps straight to one host range of
 * some layer goes to the io_uring ring; so does such an O_DIRECT write, and
 * a buffered one runs at submission (one page-cache copy: cheaper than a
 * thread wake-up, see worker.c), but a write only while the worker is idle,
 * so that writes apply in submission order. Everything else (allocating
 * writes with their copy-on-write, flush, discard, write-zeroes, reads the
 * ring cannot take, writes that come while the worker is busy) goes to the
 * disk's worker thread (worker.c), or, where no thread could be had, runs at
 * submission.
 * Completions are reaped by blockdev_aio_reap.
 *
 * Two threads share a struct blockdev: the submitter (which also reaps) and
 * the worker. The worker holds bd->meta_lock while it runs a request; the
 * submitter only tries the lock to map a request (the mapping reads format
 * metadata) and hands the request to the worker when it is held, so it
 * never waits behind a copy-on-write or an fdatasync.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#define RING_DEPTH 256
#define DIRECT_ALIGN 4096

static int completion_fd(struct blockdev *bd)
{
    if (bd->efd < 0)
        bd->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return bd->efd;
}

int blockdev_aio_fd(struct blockdev *bd)
{
    bd->efd_watched = true; /* from now on each reap resets it */
    return completion_fd(bd);
}

unsigned blockdev_aio_inflight(const struct blockdev *bd)
{
    return bd->inflight;
}

/*
 * The ring can only ever use the files registered when it is created (see
 * io_uring.c): every descriptor try_direct may pick, i.e. the buffered and
 * O_DIRECT fds of every layer of the chain, and the completion eventfd,
 * which is therefore created first.
 */
static void engine_start(struct blockdev *bd)
{
    if (bd->engine_kind != 0)
        return;
    bd->engine_kind = BLOCKDEV_ENGINE_SYNC;
    unsigned n = 0;
    for (struct blockdev *c = bd; c; c = c->backing)
        n += 2;
    int *fds = malloc(n * sizeof(*fds));
    if (!fds)
        return;
    n = 0;
    for (struct blockdev *c = bd; c; c = c->backing) {
        if (c->fd >= 0)
            fds[n++] = c->fd;
        if (c->dfd >= 0)
            fds[n++] = c->dfd;
    }
    if (n && completion_fd(bd) >= 0)
        bd->eng = bd_engine_new(RING_DEPTH, fds, n, bd->efd);
    free(fds);
    if (bd->eng)
        bd->engine_kind = BLOCKDEV_ENGINE_IO_URING;
}

void blockdev_aio_start(struct blockdev *bd)
{
    engine_start(bd);
}

int blockdev_aio_start_worker(struct blockdev *bd, void (*thread_init)(void))
{
    if (bd->worker_tried)
        return bd->worker ? 0 : -EAGAIN;
    bd->worker_tried = true;
    if (completion_fd(bd) < 0)
        return -errno;
    bd->worker = bd_worker_start(bd, thread_init);
    return bd->worker ? 0 : -EAGAIN;
}

bool blockdev_aio_ready(struct blockdev *bd)
{
    return __atomic_load_n(&bd->done_head, __ATOMIC_ACQUIRE) != NULL ||
           (bd->eng && bd_engine_ready(bd->eng));
}

void blockdev_aio_plug(struct blockdev *bd)
{
    bd->plugged = true;
}

void blockdev_aio_unplug(struct blockdev *bd)
{
    bd->plugged = false;
    if (bd->eng)
        bd_engine_flush(bd->eng);
}

bool blockdev_aio_background(const struct blockdev *bd)
{
    return bd_worker_busy(bd->worker);
}

static bool aligned_for_direct(const struct blockdev_req *req, uint64_t host)
{
    if ((host | req->len) % DIRECT_ALIGN)
        return false;
    for (int i = 0; i < req->iovcnt; i++)
        if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) % DIRECT_ALIGN)
            return false;
    return true;
}

enum route {
    ROUTE_OTHER = 0,  /* worker thread (or, without one, at submission) */
    ROUTE_RING = 1,   /* submitted to the ring */
    ROUTE_MAPPED = 2, /* a buffered write of mapped data: at submission when the worker is idle */
};

/* An enum route, or <0 = error. */
static int try_direct(struct blockdev *bd, struct blockdev_req *req)
{
    bool write = req->op == BLOCKDEV_OP_WRITE;
    struct blockdev *cur = bd;
    for (;;) {
        if (!cur->drv->map_direct || cur->fd < 0)
            return 0;
        uint64_t host;
        int r = cur->drv->map_direct(cur, req->off, req->len, write, &host);
        if (r == 2 && cur->backing) {
            cur = cur->backing;
            continue;
        }
        if (r <= 0)
            return r;
        int fd = cur->dfd >= 0 && aligned_for_direct(req, host) ? cur->dfd : cur->fd;
        if (write && fd == cur->fd)
            return ROUTE_MAPPED; /* the ring would punt it to io-wq (worker.c) */
        r = bd_engine_submit(bd->eng, fd, write, req->iov, req->iovcnt, host, req, bd->plugged);
        return r < 0 ? ROUTE_OTHER : ROUTE_RING;
    }
}

static int64_t run_request(struct blockdev *bd, struct blockdev_req *req)
{
    int r;
    switch (req->op) {
    case BLOCKDEV_OP_READ:
        r = blockdev_preadv(bd, req->iov, req->iovcnt, req->off);
        break;
    case BLOCKDEV_OP_WRITE:
        r = blockdev_pwritev(bd, req->iov, req->iovcnt, req->off);
        break;
    case BLOCKDEV_OP_FLUSH:
        r = blockdev_flush(bd);
        break;
    case BLOCKDEV_OP_DISCARD:
        r = blockdev_discard(bd, req->off, req->len);
        break;
    case BLOCKDEV_OP_WRITE_ZEROES:
        r = blockdev_write_zeroes(bd, req->off, req->len, req->flags);
        break;
    default:
        r = -EINVAL;
    }
    return r < 0 ? r : (int64_t)req->len;
}

int64_t bd_run_sync(struct blockdev *bd, struct blockdev_req *req)
{
    pthread_mutex_lock(&bd->meta_lock);
    int64_t res = run_request(bd, req);
    pthread_mutex_unlock(&bd->meta_lock);
    return res;
}

static void complete_later(struct blockdev *bd, struct blockdev_req *req, int64_t res)
{
    req->result_ = res;
    bd_done_append(bd, req, req);
}

/* An enum route for a read or write, or <0 = error. */
static int try_ring(struct blockdev *bd, struct blockdev_req *req)
{
    if (!bd->eng || (req->op != BLOCKDEV_OP_READ && req->op != BLOCKDEV_OP_WRITE) ||
        !req->len || req->off > bd->size || req->len > bd->size - req->off ||
        (req->op == BLOCKDEV_OP_WRITE && bd->read_only))
        return ROUTE_OTHER;
    if (!bd->worker)
        return try_direct(bd, req);
    if (req->op == BLOCKDEV_OP_WRITE && bd_worker_busy(bd->worker))
        return ROUTE_OTHER; /* writes apply in submission order: behind the worker's */
    if (pthread_mutex_trylock(&bd->meta_lock) != 0)
        return ROUTE_OTHER; /* the worker is changing metadata: queue behind it */
    int r = try_direct(bd, req);
    pthread_mutex_unlock(&bd->meta_lock);
    return r;
}

/* Runs req here and now; the worker is idle (or absent), so this cannot
 * overtake anything queued before it. */
static void run_now(struct blockdev *bd, struct blockdev_req *req)
{
    complete_later(bd, req, bd_run_sync(bd, req));
}

int blockdev_aio_submit(struct blockdev *bd, struct blockdev_req *req)
{
    if (!req || !req->done)
        return -EINVAL;
    if (req->op == BLOCKDEV_OP_READ || req->op == BLOCKDEV_OP_WRITE) {
        uint64_t t = 0;
        for (int i = 0; i < req->iovcnt; i++)
            t += req->iov[i].iov_len;
        req->len = t;
    }
    engine_start(bd);
    blockdev_aio_start_worker(bd, NULL);
    bd->inflight++;
    int r = try_ring(bd, req);
    if (r == ROUTE_RING)
        return 0;
    if (r < 0)
        complete_later(bd, req, r);
    else if (bd->worker && r != ROUTE_MAPPED)
        bd_worker_push(bd->worker, req);
    else
        run_now(bd, req);
    return 0;
}

struct reap_ctx {
    struct blockdev *bd;
    unsigned n;
};

static void ring_done(struct blockdev_req *req, int64_t res, void *opaque)
{
    struct reap_ctx *c = opaque;
    /* A short transfer (end of a sparse file) is redone synchronously. */
    if (res >= 0 && (uint64_t)res != req->len) {
        res = bd_run_sync(c->bd, req);
    }
    c->bd->inflight--;
    c->n++;
    req->done(req, res);
}

static void run_done_list(struct blockdev *bd, struct reap_ctx *c)
{
    pthread_mutex_lock(&bd->done_lock);
    struct blockdev_req *done = bd->done_head;
    bd->done_head = bd->done_tail = NULL;
    pthread_mutex_unlock(&bd->done_lock);
    while (done) {
        struct blockdev_req *req = done;
        done = req->next_;
        bd->inflight--;
        c->n++;
        req->done(req, req->result_);
    }
}

/*
 * Completions come from two places: the done list (the worker, errors, and
 * requests run at submission) and the ring. Waiting (min_done > 0, drains
 * only) is on the worker while it has requests, checking the ring every
 * millisecond, else on the ring.
 */
int blockdev_aio_reap(struct blockdev *bd, unsigned min_done)
{
    struct reap_ctx c = {.bd = bd};
    if (bd->efd >= 0 && bd->efd_watched) { /* else nobody polls it: spare the call */
        uint64_t v;
        ssize_t rd = read(bd->efd, &v, sizeof(v));
        (void)rd;
    }
    for (;;) {
        /* Busy first: once it reads false, the worker's last result is
         * already on the done list, and whatever else is in flight is on
         * the ring. */
        bool worker_busy = bd_worker_busy(bd->worker);
        run_done_list(bd, &c);
        unsigned want = c.n < min_done && !worker_busy && bd->inflight ? 1 : 0;
        if (bd->eng) {
            int r = bd_engine_reap(bd->eng, want, ring_done, &c);
            if (r < 0)
                return r;
        }
        if (c.n >= min_done || !bd->inflight)
            return (int)c.n;
        if (worker_busy)
            bd_worker_wait(bd->worker, 1000000);
        else if (!bd->eng)
            return (int)c.n; /* nothing can complete: not ours to wait for */
    }
}
