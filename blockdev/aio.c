/*
 * Asynchronous requests: metadata work at submission, data on io_uring when
 * the range maps straight to one host range of some layer, otherwise executed
 * synchronously and completed from the next reap.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#define RING_DEPTH 256
#define DIRECT_ALIGN 4096

int blockdev_aio_fd(struct blockdev *bd)
{
    if (bd->efd < 0)
        bd->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return bd->efd;
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
    if (n && blockdev_aio_fd(bd) >= 0)
        bd->eng = bd_engine_new(RING_DEPTH, fds, n, bd->efd);
    free(fds);
    if (bd->eng)
        bd->engine_kind = BLOCKDEV_ENGINE_IO_URING;
}

void blockdev_aio_start(struct blockdev *bd)
{
    engine_start(bd);
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

/* 1 = submitted to the ring, 0 = take the sync path, <0 = error. */
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
        r = bd_engine_submit(bd->eng, fd, write, req->iov, req->iovcnt, host, req);
        return r < 0 ? 0 : 1;
    }
}

static int64_t run_sync(struct blockdev *bd, struct blockdev_req *req)
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

static void complete_later(struct blockdev *bd, struct blockdev_req *req, int64_t res)
{
    req->result_ = res;
    req->next_ = NULL;
    if (bd->done_tail)
        bd->done_tail->next_ = req;
    else
        bd->done_head = req;
    bd->done_tail = req;
    if (bd->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(bd->efd, &one, sizeof(one));
        (void)w;
    }
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
    bd->inflight++;
    if (bd->eng && (req->op == BLOCKDEV_OP_READ || req->op == BLOCKDEV_OP_WRITE) &&
        req->len && req->off <= bd->size && req->len <= bd->size - req->off &&
        !(req->op == BLOCKDEV_OP_WRITE && bd->read_only)) {
        int r = try_direct(bd, req);
        if (r == 1)
            return 0;
        if (r < 0) {
            complete_later(bd, req, r);
            return 0;
        }
    }
    complete_later(bd, req, run_sync(bd, req));
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
    if (res >= 0 && (uint64_t)res != req->len)
        res = run_sync(c->bd, req);
    c->bd->inflight--;
    c->n++;
    req->done(req, res);
}

int blockdev_aio_reap(struct blockdev *bd, unsigned min_done)
{
    struct reap_ctx c = {.bd = bd};
    if (bd->efd >= 0) {
        uint64_t v;
        ssize_t rd = read(bd->efd, &v, sizeof(v));
        (void)rd;
    }
    while (bd->done_head) {
        struct blockdev_req *req = bd->done_head;
        bd->done_head = req->next_;
        if (!bd->done_head)
            bd->done_tail = NULL;
        bd->inflight--;
        c.n++;
        req->done(req, req->result_);
    }
    if (!bd->eng)
        return (int)c.n;
    unsigned want = min_done > c.n ? min_done - c.n : 0;
    if (want > bd->inflight)
        want = bd->inflight;
    int r = bd_engine_reap(bd->eng, want, ring_done, &c);
    return r < 0 ? r : (int)c.n;
}
