/*
 * blockdev — disk images for herd guests: raw and qcow2 (v2 and v3, read/write),
 * backing chains, OFD locks compatible with QEMU, an io_uring data path with a
 * synchronous fallback, and NBD-backed read-only parents.
 *
 * No KVM knowledge. Every function returns 0 (or a count) on success and a
 * negative errno on failure. Why an open failed is told in the struct herd_err
 * (herd/error.h) the caller names in opts->err: that errno and one line such as
 * "Could not open 'x': No such file or directory" (field is left ""); a
 * failed open always leaves a message there.
 *
 * Formats are never probed: the caller names the top image's format, and a
 * backing file's format comes from the qcow2 backing-format header extension,
 * or from opts->backing_format, or (only with opts->backing_raw_fallback) raw.
 * Anything else is -EINVAL with a message.
 *
 * Threading: a struct blockdev is used by one thread at a time; once
 * asynchronous I/O starts, blockdev adds its own worker thread (below).
 */
#ifndef HERD_BLOCKDEV_H
#define HERD_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "herd/error.h"

#define BLOCKDEV_MAX_CHAIN 64 /* default bound on backing chain depth */

struct blockdev;

/* One image of a pinned backing chain: its path (as resolved against the
 * image naming it) and its format. */
struct blockdev_link {
    const char *path;
    const char *format;
};

struct blockdev_open_opts {
    const char *format;         /* "raw", "qcow2", "nbd" (path = NBD URI) or "null-co"
                                   (no file: null_size bytes of zeros, writes
                                   dropped; path only names it); required */
    uint64_t null_size;         /* null-co: the disk's size */
    bool read_only;             /* open O_RDONLY, take only shared locks */
    bool direct;                /* O_DIRECT on the data files (falls back if refused) */
    bool no_backing;            /* do not open the backing chain */
    bool no_lock;               /* skip OFD locks (like qemu-img -U / force-share) */
    unsigned lock_wait_ms;      /* retry a lock conflict this long (0: fail at once):
                                   a SIGKILLed herd-vmm's io_uring keeps its image
                                   files open ~10-20 ms after the process is gone */
    bool backing_raw_fallback;  /* backing without a format extension is raw */
    const char *backing_format; /* format of the first backing file if the header has none */
    const char *backing_driver; /* format of the first backing file, over the header's
                                   (qemu's backing.driver=); NULL = the header's */
    unsigned max_chain;         /* 0 = BLOCKDEV_MAX_CHAIN */
    size_t l2_cache_bytes;      /* 0 = default (32 MiB or what fits the disk) */
    int engine;                 /* enum blockdev_engine; 0 = auto */
    bool repair;                /* qcow2 check -r: a dirty or corrupt-marked image may
                                   open read-write (only the repair writes to it) */
    /*
     * Pinned chain (chain_pinned): the caller, not the image headers,
     * decides what may be opened. The top image's backing must resolve to
     * exactly chain[0] (path and format; a format stored in the header must
     * agree), chain[0]'s to chain[1], ..., and chain[chain_len - 1] must
     * have none; any difference fails with -EPERM before the differing file
     * is opened. Every file (the top one too) is then opened with
     * O_NOFOLLOW and must be a regular file. Checked even with no_backing.
     */
    bool chain_pinned;
    const struct blockdev_link *chain;
    unsigned chain_len;
    struct herd_err *err;       /* cleared, then filled when the open fails; may be NULL */
};

enum blockdev_engine {
    BLOCKDEV_ENGINE_AUTO = 0, /* io_uring if the kernel allows it, else sync */
    BLOCKDEV_ENGINE_SYNC = 1,
    BLOCKDEV_ENGINE_IO_URING = 2,
};

/* Opens PATH (and its backing chain). *out is NULL on failure. */
int blockdev_open(const char *path, const struct blockdev_open_opts *opts,
                  struct blockdev **out);
/* Flushes (when writable) and closes the chain. Returns the flush result. */
int blockdev_close(struct blockdev *bd);

uint64_t blockdev_size(const struct blockdev *bd);
const char *blockdev_format(const struct blockdev *bd);
const char *blockdev_filename(const struct blockdev *bd);
bool blockdev_read_only(const struct blockdev *bd);
struct blockdev *blockdev_backing(const struct blockdev *bd); /* NULL if none */
/* Backing name as stored in the image and its format ("" if none stored). */
const char *blockdev_backing_name(const struct blockdev *bd);
const char *blockdev_backing_format(const struct blockdev *bd);
/* The backing name resolved as blockdev_open would resolve it (relative to
 * the image's directory), malloc'd; NULL if none or out of memory. */
char *blockdev_backing_path(const struct blockdev *bd);
/* Engine in use for data I/O (BLOCKDEV_ENGINE_SYNC or _IO_URING). */
int blockdev_engine(const struct blockdev *bd);

/*
 * Synchronous I/O on the guest-visible disk. Reads past the end fail with
 * -EINVAL; they never return short.
 */
int blockdev_pread(struct blockdev *bd, void *buf, size_t len, uint64_t off);
int blockdev_pwrite(struct blockdev *bd, const void *buf, size_t len, uint64_t off);
int blockdev_preadv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off);
int blockdev_pwritev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off);

#define BLOCKDEV_ZERO_MAY_UNMAP 1u /* write-zeroes may deallocate */
int blockdev_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags);
/* Discard: whole clusters inside the range read as zeros afterwards; the
 * unaligned head and tail are left unchanged (as QEMU does). */
int blockdev_discard(struct blockdev *bd, uint64_t off, uint64_t len);
/* Makes every completed write durable (data, then metadata, in crash-safe order). */
int blockdev_flush(struct blockdev *bd);
/* Changes the guest-visible size: raw grows or shrinks the file; qcow2
 * grows or shrinks (qcow2_resize). As qemu, a grown area reads as zeros
 * even where a backing file longer than the old size has data: it is
 * written as zeros then. -EROFS read-only, -ENOTSUP for a format that
 * cannot, -EBUSY with requests in flight. */
int blockdev_resize(struct blockdev *bd, uint64_t size);
/* qemu's preallocation modes for a grown area (resize --preallocation=). */
enum blockdev_prealloc {
    BLOCKDEV_PREALLOC_OFF,
    BLOCKDEV_PREALLOC_METADATA, /* qcow2: L2 tables and host clusters, data unwritten */
    BLOCKDEV_PREALLOC_FALLOC,   /* and the file's new space allocated on disk */
    BLOCKDEV_PREALLOC_FULL,     /* and the file's new space written with zeros */
};
/* A grow (size >= the current one, else -EINVAL) whose new area is
 * preallocated in mode: raw takes falloc and full (-ENOTSUP metadata),
 * qcow2 every mode (qcow2_grow_prealloc). */
int blockdev_grow_prealloc(struct blockdev *bd, uint64_t size, int mode);

/*
 * Asynchronous interface (what a virtio-blk device uses).
 *
 * Requests are submitted with blockdev_aio_submit(); completions are reaped
 * with blockdev_aio_reap(), which calls req->done(req, result) (result = bytes
 * or negative errno). blockdev_aio_fd() is an eventfd that becomes readable
 * when completions are ready (put it in the device's epoll set). Reads and
 * O_DIRECT writes of already allocated data go through io_uring (at once,
 * or, between blockdev_aio_plug() and _unplug(), in one batch at the
 * unplug: a device taking many requests from its queue); a buffered write
 * of allocated data runs at submission while the worker is idle; everything
 * else (allocation, copy-on-write, flush, discard, zeroes) runs on the
 * disk's worker thread, in submission order. done() always runs from
 * blockdev_aio_reap().
 *
 * Submitting and reaping happen on one thread; the synchronous calls above
 * must not be used while asynchronous requests are in flight.
 */
enum blockdev_op {
    BLOCKDEV_OP_READ,
    BLOCKDEV_OP_WRITE,
    BLOCKDEV_OP_FLUSH,
    BLOCKDEV_OP_DISCARD,
    BLOCKDEV_OP_WRITE_ZEROES,
};

struct blockdev_req {
    enum blockdev_op op;
    uint64_t off;
    uint64_t len;             /* bytes (sum of iov for read/write) */
    const struct iovec *iov;  /* read/write */
    int iovcnt;
    unsigned flags;           /* BLOCKDEV_ZERO_MAY_UNMAP for write-zeroes */
    void (*done)(struct blockdev_req *req, int64_t result);
    void *opaque;
    /* private to blockdev */
    int64_t result_;
    unsigned pending_;
    struct blockdev_req *next_;
};

int blockdev_aio_submit(struct blockdev *bd, struct blockdev_req *req);
/* Between these, ring submissions are queued and go to the kernel together
 * at the unplug (one system call for a batch). */
void blockdev_aio_plug(struct blockdev *bd);
void blockdev_aio_unplug(struct blockdev *bd);
/* Runs done() for finished requests; waits for at least min_done. Returns count. */
int blockdev_aio_reap(struct blockdev *bd, unsigned min_done);
int blockdev_aio_fd(struct blockdev *bd);
/* Sets up the data engine (the io_uring ring) now rather than at the first
 * submission: herd-vmm does it before its seccomp filters forbid
 * io_uring_setup. Idempotent; the sync engine if no ring can be had. */
void blockdev_aio_start(struct blockdev *bd);
/* Starts the disk's worker thread now rather than at the first submission
 * (herd-vmm: after it dropped privileges, before it confines the thread
 * that submits). thread_init (may be NULL) runs first in the new thread.
 * Only the first call does anything; where no thread can be had, requests
 * run at submission. Returns 0, or -errno when the thread was refused. */
int blockdev_aio_start_worker(struct blockdev *bd, void (*thread_init)(void));
unsigned blockdev_aio_inflight(const struct blockdev *bd);
/* True when completions wait to be reaped; no system call (for pollers). */
bool blockdev_aio_ready(struct blockdev *bd);
/* True while requests run on the worker thread: their completions will
 * come through blockdev_aio_fd() (a poller may stop and wait for it). */
bool blockdev_aio_background(const struct blockdev *bd);

/*
 * Allocation status (qemu-img map semantics).
 * blockdev_block_status() describes one extent of THIS layer starting at off
 * (length <= maxlen, > 0). blockdev_map_extent() follows the chain.
 */
#define BLOCKDEV_ST_DATA         0x01u /* reads from this layer's data */
#define BLOCKDEV_ST_ZERO         0x02u /* reads as zeros */
#define BLOCKDEV_ST_ALLOCATED    0x04u /* this layer decides the content */
#define BLOCKDEV_ST_OFFSET_VALID 0x08u /* host_off is meaningful */
#define BLOCKDEV_ST_COMPRESSED   0x10u

struct blockdev_status {
    uint64_t len;
    unsigned flags;
    uint64_t host_off;
};

int blockdev_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                          struct blockdev_status *st);

struct blockdev_extent {
    uint64_t start, length;
    unsigned depth; /* chain level that decides (0 = top) */
    bool present, zero, data, offset_valid;
    uint64_t offset;
};

int blockdev_map_extent(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                        struct blockdev_extent *ext);

/* Host file facts for info. */
int blockdev_actual_size(const struct blockdev *bd, uint64_t *bytes);

#endif
