/*
 * io_uring data engine. One ring per top-level image; the generic aio layer
 * falls back to synchronous execution when no ring can be had (old kernel,
 * seccomp, io_uring disabled by sysctl).
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

#include "internal.h"

struct bd_engine {
    struct io_uring ring;
    int efd;
};

struct bd_engine *bd_engine_new(unsigned depth)
{
    struct bd_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->efd = -1;
    if (io_uring_queue_init(depth, &e->ring, 0) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

void bd_engine_free(struct bd_engine *e)
{
    if (!e)
        return;
    io_uring_queue_exit(&e->ring);
    free(e);
}

int bd_engine_set_eventfd(struct bd_engine *e, int efd)
{
    int r = io_uring_register_eventfd(&e->ring, efd);
    if (r == 0)
        e->efd = efd;
    return r;
}

int bd_engine_submit(struct bd_engine *e, int fd, bool write, const struct iovec *iov,
                     int iovcnt, uint64_t off, struct blockdev_req *req)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe) {
        io_uring_submit(&e->ring);
        sqe = io_uring_get_sqe(&e->ring);
        if (!sqe)
            return -EAGAIN;
    }
    if (write)
        io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off);
    else
        io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, off);
    io_uring_sqe_set_data(sqe, req);
    int r = io_uring_submit(&e->ring);
    return r < 0 ? r : 0;
}

int bd_engine_reap(struct bd_engine *e, unsigned min,
                   void (*cb)(struct blockdev_req *req, int64_t res, void *ctx), void *ctx)
{
    unsigned count = 0;
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&e->ring, head, cqe)
        {
            cb(io_uring_cqe_get_data(cqe), cqe->res, ctx);
            n++;
        }
        io_uring_cq_advance(&e->ring, n);
        count += n;
        if (count >= min)
            return (int)count;
        int r = io_uring_wait_cqe(&e->ring, &cqe);
        if (r < 0 && r != -EINTR)
            return r;
    }
}
