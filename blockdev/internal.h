/*
 * blockdev private definitions shared by the format drivers, the I/O engine
 * and the generic layer. Not installed; include/herd/blockdev.h is the contract.
 */
#ifndef HERD_BLOCKDEV_INTERNAL_H
#define HERD_BLOCKDEV_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "herd/blockdev.h"
#include "herd/error.h"

struct bd_engine;
struct bd_worker;

/* An allocating write's copy-on-write between its preparation and its
 * commit (bd_driver.cow_prepare): write len bytes of buf at host on the
 * O_DIRECT descriptor, then commit. */
struct bd_cow {
    uint64_t ci, entry, host, len;
    bool reuse;
    uint8_t *buf;
};
/* A buffer the worker lends to one prepared copy-on-write. */
struct bd_cow_buf {
    uint8_t *buf;
    uint64_t cap;
};

struct bd_driver {
    const char *name;
    int (*open)(struct blockdev *bd, const struct blockdev_open_opts *opts);
    void (*close)(struct blockdev *bd);
    int (*read)(struct blockdev *bd, void *buf, uint64_t len, uint64_t off);
    int (*write)(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off);
    int (*zero)(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags);
    int (*discard)(struct blockdev *bd, uint64_t off, uint64_t len);
    int (*flush)(struct blockdev *bd);
    int (*block_status)(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                        struct blockdev_status *st);
    /*
     * Async data path: translate [off, off+len) into at most one host range in
     * this layer's file when the whole range maps 1:1 to allocated, writable
     * (for writes) data. Returns 1 and *host when it does, 0 when the request
     * must take the synchronous path, negative errno on error.
     */
    int (*map_direct)(struct blockdev *bd, uint64_t off, uint64_t len, bool write,
                      uint64_t *host);
    /* New guest-visible size (writable image); NULL: the format cannot. */
    int (*resize)(struct blockdev *bd, uint64_t size);
    /* A grow with its new area preallocated (enum blockdev_prealloc, not
     * off); NULL: the format cannot. */
    int (*grow_prealloc)(struct blockdev *bd, uint64_t size, int mode);
    /*
     * Optional, for the worker's batches of allocating writes (worker.c):
     * prepare the copy-on-write of req if it is one (1, c filled, slot's
     * buffer used), 0 if req must run the ordinary way, 2 if it touches a
     * cluster one of the n prepared in batch will change (commit those
     * first), or -errno. cow_commit points the metadata at the written data.
     */
    int (*cow_prepare)(struct blockdev *bd, const struct blockdev_req *req,
                       struct bd_cow_buf *slot, const struct bd_cow *batch, unsigned n,
                       struct bd_cow *c);
    int (*cow_commit)(struct blockdev *bd, const struct bd_cow *c);
};

struct blockdev {
    char *filename;
    const struct bd_driver *drv;
    void *priv;
    int fd;        /* buffered descriptor: metadata and unaligned data */
    int dfd;       /* O_DIRECT descriptor when asked for, else -1 */
    uint64_t size; /* guest-visible bytes */
    bool read_only;
    struct blockdev *backing;
    char *backing_name; /* as stored in the image */
    char *backing_fmt;  /* as stored or given; NULL if none */
    struct bd_engine *eng;
    int engine_kind;
    int efd; /* eventfd for aio completions */
    bool efd_watched; /* blockdev_aio_fd() handed it out: reaps reset it */
    bool plugged;     /* blockdev_aio_plug: ring entries wait for the unplug */
    struct bd_worker *worker; /* NULL: no thread, requests run at submission */
    bool worker_tried;
    pthread_mutex_t meta_lock; /* held by whoever reads or changes format state
                                  while the worker may run (aio.c) */
    pthread_mutex_t done_lock; /* the done list */
    struct blockdev_req *done_head, *done_tail;
    unsigned inflight; /* submitter's thread only */
    bool locked;
};

extern const struct bd_driver bd_raw_driver;
extern const struct bd_driver bd_qcow2_driver;
extern const struct bd_driver bd_nbd_driver;
extern const struct bd_driver bd_null_driver;

/* blockdev.c */
int bd_read_backing(struct blockdev *bd, void *buf, uint64_t len, uint64_t off);

/* file.c: full-length positional I/O; short reads past EOF are zero-filled. */
int bd_pread_full(int fd, void *buf, uint64_t len, uint64_t off);
int bd_pwrite_full(int fd, const void *buf, uint64_t len, uint64_t off);
int bd_file_size(int fd, uint64_t *size);
int bd_fdatasync(int fd);
int bd_file_status(int fd, uint64_t off, uint64_t maxlen, uint64_t file_size,
                   struct blockdev_status *st);

/* lock.c: QEMU-compatible OFD byte locks; a conflict is explained in err. */
int bd_lock_image(int fd, bool write, const char *path, struct herd_err *err);
/* The same, retrying a conflict every 10 ms for up to wait_ms. */
int bd_lock_image_wait(int fd, bool write, const char *path, unsigned wait_ms,
                       struct herd_err *err);
void bd_unlock_image(int fd);

/* aio.c: one request, synchronously, under meta_lock; bytes or -errno. */
int64_t bd_run_sync(struct blockdev *bd, struct blockdev_req *req);

/* worker.c: a thread running requests in submission order (see there);
 * init runs first in the new thread (herd-vmm confines it there). NULL if
 * no thread can be had. Stop finishes what was queued, then joins. */
struct bd_worker *bd_worker_start(struct blockdev *bd, void (*init)(void));
void bd_worker_push(struct bd_worker *w, struct blockdev_req *req);
/* Requests pushed and not yet done (false for NULL). */
bool bd_worker_busy(const struct bd_worker *w);
/* Waits until a request finishes, at most max_ns (< 1 s); at once if idle. */
void bd_worker_wait(struct bd_worker *w, long max_ns);
void bd_worker_stop(struct bd_worker *w);
/* Appends first..last (linked by next_) to the list *head..*tail. */
static inline void bd_req_list_append(struct blockdev_req **head, struct blockdev_req **tail,
                                      struct blockdev_req *first, struct blockdev_req *last)
{
    last->next_ = NULL;
    if (*tail)
        (*tail)->next_ = first;
    else
        *head = first;
    *tail = last;
}
/* Appends first..last (linked by next_, results in result_) to the done list. */
void bd_done_append(struct blockdev *bd, struct blockdev_req *first, struct blockdev_req *last);

/* io_uring.c */
/* A ring restricted to READV/WRITEV on the given fds (registered files, fixed
 * file required), completions signalled on efd; NULL where none can be had. */
struct bd_engine *bd_engine_new(unsigned depth, const int *fds, unsigned nfds, int efd);
void bd_engine_free(struct bd_engine *e);
/* -EBADF when fd is not one of the ring's files (take the synchronous path).
 * defer: only queue the entry; bd_engine_flush (or the next reap) submits. */
int bd_engine_submit(struct bd_engine *e, int fd, bool write, const struct iovec *iov,
                     int iovcnt, uint64_t off, struct blockdev_req *req, bool defer);
/* Submits the deferred entries in one system call. */
int bd_engine_flush(struct bd_engine *e);
/* Completions are waiting on the ring (a memory read, no system call). */
bool bd_engine_ready(struct bd_engine *e);
/* Waits for at least min completions; calls cb for each. Returns count or -errno. */
int bd_engine_reap(struct bd_engine *e, unsigned min,
                   void (*cb)(struct blockdev_req *req, int64_t res, void *ctx), void *ctx);
#ifdef HERD_TEST_HOOKS
/* Test builds only: fn runs once, on the ring, just before the next
 * submission (fd: the image descriptor that submission is for). */
struct io_uring;
void bd_test_on_first_submit(void (*fn)(struct io_uring *ring, int fd));
/* What a compromised herd-vmm could submit on a ring (io_uring.c). */
enum bd_uring_attack {
    BD_ATK_OPENAT_MEM, /* open /proc/self/mem read-write (defeats no PROT_EXEC) */
    BD_ATK_OPENAT,     /* open ctx->file */
    BD_ATK_SOCKET,     /* a new AF_UNIX socket */
    BD_ATK_CONNECT,    /* connect it (or fd) to ctx->sock */
    BD_ATK_SYMLINKAT,  /* ctx->dir/symlink -> / */
    BD_ATK_RENAMEAT,   /* ctx->dir/rename-me -> ctx->dir/renamed */
    BD_ATK_UNLINKAT,   /* ctx->dir/victim */
    BD_ATK_READV_FD,   /* read fd as a plain (not registered) descriptor */
    BD_ATK_WRITEV_FD,  /* write 0 bytes to fd the same way */
    BD_ATK_REGISTER,   /* io_uring_register: register fd as a new file */
    BD_ATK_NR
};
struct bd_uring_attack_ctx {
    const char *file, *dir, *sock;
    int sock_fd; /* set by BD_ATK_SOCKET when it succeeds; start with -1 */
};
extern const char *const bd_uring_attack_names[BD_ATK_NR];
/* The completion's result (an fd, a byte count, 0 or -errno), or
 * io_uring_register's for BD_ATK_REGISTER; -ETIME: no completion in 2 s. */
int bd_test_uring_attack(struct io_uring *ring, int fd, enum bd_uring_attack op,
                         struct bd_uring_attack_ctx *c);
#endif

/* Big-endian helpers. */
static inline uint64_t bd_be64(const void *p)
{
    const uint8_t *b = p;
    return ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) | ((uint64_t)b[2] << 40) |
           ((uint64_t)b[3] << 32) | ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) |
           ((uint64_t)b[6] << 8) | b[7];
}

static inline uint32_t bd_be32(const void *p)
{
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static inline uint16_t bd_be16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)((b[0] << 8) | b[1]);
}

static inline void bd_put_be64(void *p, uint64_t v)
{
    uint8_t *b = p;
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

static inline void bd_put_be32(void *p, uint32_t v)
{
    uint8_t *b = p;
    for (int i = 3; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

static inline void bd_put_be16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

#define BD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BD_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
