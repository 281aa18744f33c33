/*
 * io_uring data engine. One ring per top-level image; the generic aio layer
 * falls back to synchronous execution when no ring can be had (old kernel,
 * seccomp, io_uring disabled by sysctl, restrictions not supported).
 *
 * The ring is locked down before anyone can submit on it, because io_uring
 * operations are not seen by seccomp (docs/security.md): it is created
 * disabled (IORING_SETUP_R_DISABLED), gets the chain's image fds as its only
 * registered files and the completion eventfd, then
 * IORING_REGISTER_RESTRICTIONS allows exactly READV and WRITEV, with
 * IOSQE_FIXED_FILE required and no other SQE flag, and no io_uring_register
 * opcode at all; only then is it enabled. A compromised herd-vmm can so only
 * read and write the images the ring was given.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct bd_engine {
    struct io_uring ring;
    int *fds; /* registered files: fds[i] is fixed file i */
    unsigned nfds;
};

#ifdef HERD_TEST_HOOKS
/*
 * Test builds only (vmm/module.mk: herd-vmm-hooks, test_uring_restrict):
 * what a compromised herd-vmm could submit on a disk's ring. Each attack
 * runs alone on the ring (nothing else in flight), with no user data, and
 * waits for its own completion.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

static void (*first_submit_hook)(struct io_uring *ring, int fd);

void bd_test_on_first_submit(void (*fn)(struct io_uring *ring, int fd))
{
    first_submit_hook = fn;
}

const char *const bd_uring_attack_names[BD_ATK_NR] = {
    [BD_ATK_OPENAT_MEM] = "OPENAT-PROC-SELF-MEM", [BD_ATK_OPENAT] = "OPENAT",
    [BD_ATK_SOCKET] = "SOCKET", [BD_ATK_CONNECT] = "CONNECT",
    [BD_ATK_SYMLINKAT] = "SYMLINKAT", [BD_ATK_RENAMEAT] = "RENAMEAT",
    [BD_ATK_UNLINKAT] = "UNLINKAT", [BD_ATK_READV_FD] = "READV-UNREGISTERED-FD",
    [BD_ATK_WRITEV_FD] = "WRITEV-UNREGISTERED-FD", [BD_ATK_REGISTER] = "REGISTER-FILES",
};

int bd_test_uring_attack(struct io_uring *ring, int fd, enum bd_uring_attack op,
                         struct bd_uring_attack_ctx *c)
{
    static char p1[256], p2[256], buf[512];
    static struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    static struct sockaddr_un sun;
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 2};
    int r;

    if (op == BD_ATK_REGISTER) /* a new file for the ring: the attacker's own */
        return io_uring_register_files(ring, &fd, 1);
    sqe = io_uring_get_sqe(ring);
    if (!sqe)
        return -EBUSY;
    switch (op) {
    case BD_ATK_OPENAT_MEM:
        io_uring_prep_openat(sqe, AT_FDCWD, "/proc/self/mem", O_RDWR | O_CLOEXEC, 0);
        break;
    case BD_ATK_OPENAT:
        io_uring_prep_openat(sqe, AT_FDCWD, c->file, O_RDONLY | O_CLOEXEC, 0);
        break;
    case BD_ATK_SOCKET:
        io_uring_prep_socket(sqe, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0);
        break;
    case BD_ATK_CONNECT:
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->sock);
        io_uring_prep_connect(sqe, c->sock_fd >= 0 ? c->sock_fd : fd, (struct sockaddr *)&sun,
                              sizeof(sun));
        break;
    case BD_ATK_SYMLINKAT:
        snprintf(p1, sizeof(p1), "%s/symlink", c->dir);
        io_uring_prep_symlinkat(sqe, "/", AT_FDCWD, p1);
        break;
    case BD_ATK_RENAMEAT:
        snprintf(p1, sizeof(p1), "%s/rename-me", c->dir);
        snprintf(p2, sizeof(p2), "%s/renamed", c->dir);
        io_uring_prep_renameat(sqe, AT_FDCWD, p1, AT_FDCWD, p2, 0);
        break;
    case BD_ATK_UNLINKAT:
        snprintf(p1, sizeof(p1), "%s/victim", c->dir);
        io_uring_prep_unlinkat(sqe, AT_FDCWD, p1, 0);
        break;
    case BD_ATK_READV_FD: /* the image through its plain fd, not as a fixed file */
        io_uring_prep_readv(sqe, fd, &iov, 1, 0);
        break;
    case BD_ATK_WRITEV_FD: /* zero bytes: harmless, yet the ring must refuse it */
        iov.iov_len = 0;
        io_uring_prep_writev(sqe, fd, &iov, 1, 0);
        break;
    default:
        return -EINVAL;
    }
    io_uring_sqe_set_data(sqe, NULL);
    r = io_uring_submit(ring);
    iov.iov_len = sizeof(buf);
    if (r < 0)
        return r;
    r = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
    if (r < 0)
        return r == -ETIME ? -ETIME : r;
    r = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    if (op == BD_ATK_SOCKET && r >= 0)
        c->sock_fd = r;
    return r;
}
#endif

static int restrict_ring(struct io_uring *ring)
{
    struct io_uring_restriction res[4];

    memset(res, 0, sizeof(res));
    res[0].opcode = IORING_RESTRICTION_SQE_OP;
    res[0].sqe_op = IORING_OP_READV;
    res[1].opcode = IORING_RESTRICTION_SQE_OP;
    res[1].sqe_op = IORING_OP_WRITEV;
    res[2].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
    res[2].sqe_flags = IOSQE_FIXED_FILE;
    res[3].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
    res[3].sqe_flags = 0;
    /* No IORING_RESTRICTION_REGISTER_OP: after enabling, every
     * io_uring_register opcode fails with EACCES. (The raw register call:
     * Debian's liburing 2.3 declares io_uring_register_restrictions and
     * io_uring_enable_rings but its shared library does not export them.) */
    return io_uring_register((unsigned)ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res, 4);
}

struct bd_engine *bd_engine_new(unsigned depth, const int *fds, unsigned nfds, int efd)
{
    if (!nfds || efd < 0)
        return NULL;
    struct bd_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->fds = malloc(nfds * sizeof(*e->fds));
    if (!e->fds) {
        free(e);
        return NULL;
    }
    memcpy(e->fds, fds, nfds * sizeof(*fds));
    e->nfds = nfds;
    if (io_uring_queue_init(depth, &e->ring, IORING_SETUP_R_DISABLED) < 0) {
        free(e->fds);
        free(e);
        return NULL;
    }
    /* Everything the ring will ever need is registered while it is disabled;
     * once enabled, the restrictions forbid any further registration. */
    if (io_uring_register_files(&e->ring, e->fds, nfds) < 0 ||
        io_uring_register_eventfd(&e->ring, efd) < 0 || restrict_ring(&e->ring) < 0 ||
        io_uring_register((unsigned)e->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
        bd_engine_free(e);
        return NULL;
    }
    return e;
}

void bd_engine_free(struct bd_engine *e)
{
    if (!e)
        return;
    io_uring_queue_exit(&e->ring);
    free(e->fds);
    free(e);
}

int bd_engine_submit(struct bd_engine *e, int fd, bool write, const struct iovec *iov,
                     int iovcnt, uint64_t off, struct blockdev_req *req, bool defer)
{
    unsigned idx = 0;
    while (idx < e->nfds && e->fds[idx] != fd)
        idx++;
    if (idx == e->nfds)
        return -EBADF; /* not a registered file: the ring would refuse it */
#ifdef HERD_TEST_HOOKS
    if (first_submit_hook) {
        void (*fn)(struct io_uring *, int) = first_submit_hook;
        first_submit_hook = NULL;
        fn(&e->ring, fd);
    }
#endif
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe) {
        io_uring_submit(&e->ring);
        sqe = io_uring_get_sqe(&e->ring);
        if (!sqe)
            return -EAGAIN;
    }
    if (write)
        io_uring_prep_writev(sqe, (int)idx, iov, (unsigned)iovcnt, off);
    else
        io_uring_prep_readv(sqe, (int)idx, iov, (unsigned)iovcnt, off);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, req);
    if (defer)
        return 0; /* bd_engine_flush or the next reap submits the batch */
    int r = io_uring_submit(&e->ring);
    return r < 0 ? r : 0;
}

bool bd_engine_ready(struct bd_engine *e)
{
    return io_uring_cq_ready(&e->ring) > 0;
}

/* Submits what bd_engine_submit queued; busy rings retry at the next call. */
static int submit_pending(struct bd_engine *e)
{
    if (!io_uring_sq_ready(&e->ring))
        return 0;
    int r = io_uring_submit(&e->ring);
    return r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY ? r : 0;
}

int bd_engine_flush(struct bd_engine *e)
{
    return submit_pending(e);
}

int bd_engine_reap(struct bd_engine *e, unsigned min,
                   void (*cb)(struct blockdev_req *req, int64_t res, void *ctx), void *ctx)
{
    unsigned count = 0;
    /* First: cached buffered reads complete inside this call. */
    int r = submit_pending(e);
    if (r < 0)
        return r;
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0, seen = 0;
        io_uring_for_each_cqe(&e->ring, head, cqe)
        {
            struct blockdev_req *req = io_uring_cqe_get_data(cqe);
            seen++;
            if (!req)
                continue; /* not one of ours (nothing of ours has no request) */
            cb(req, cqe->res, ctx);
            n++;
        }
        io_uring_cq_advance(&e->ring, seen);
        count += n;
        if (count >= min) {
            r = submit_pending(e); /* what the callbacks queued */
            return r < 0 ? r : (int)count;
        }
        r = io_uring_submit_and_wait(&e->ring, 1); /* one system call for both */
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            return r;
    }
}
