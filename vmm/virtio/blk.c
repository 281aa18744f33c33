/*
 * virtio-blk device. Requests are parsed from the chain (header, data,
 * status byte anywhere the guest split them), checked against the disk's
 * size and mode, and handed to blockdev asynchronously; the request slot is
 * the chain's head index, which is unique among outstanding chains.
 */
#include "herd/virtio_blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "herd/blockdev.h"
#include "herd/iov.h"
#include "herd/jail.h"
#include "herd/log.h"

#define BLK_HDR_BYTES 16
#define BLK_SEG_MAX   (VIRTIO_QUEUE_SIZE - 2) /* what a queue can carry, as QEMU says */
#define BLK_DISCARD_ALIGN_SECTORS 128 /* 64 KiB: qcow2's default cluster */
#define BLK_MAX_DISCARD_SECTORS   (1u << 22) /* 2 GiB per request */

struct blk_request {
    struct blockdev_req breq;
    struct virtio_blk *blk;
    unsigned q;
    uint16_t head;
    uint8_t *status;
    uint32_t written; /* bytes the device wrote into the chain, on success */
    struct iovec iov[VIRTQ_MAX_IOV];
    bool busy;
};

struct virtio_blk {
    struct virtio_dev dev;
    struct blockdev *bd;
    uint64_t sectors;
    bool readonly;
    bool draining; /* reset in progress: completions must not touch rings */
    char serial[VIRTIO_BLK_ID_BYTES];
    unsigned queues;
    struct blk_request *slots[VIRTIO_MAX_QUEUES];
    struct virtq_chain chain; /* scratch for the request being parsed */
};

static struct virtio_blk *blk_of(struct virtio_dev *dev)
{
    return dev->backend;
}

static void put_status(struct virtio_blk *blk, struct blk_request *r, uint8_t status)
{
    struct virtq *vq = &blk->dev.queues[r->q].vq;

    r->busy = false;
    if (blk->draining || !vq->ready)
        return;
    *r->status = status;
    virtq_push(vq, r->head, status == VIRTIO_BLK_S_OK ? r->written : 1);
    virtio_dev_signal_queue(&blk->dev, r->q);
}

static void request_done(struct blockdev_req *breq, int64_t result)
{
    struct blk_request *r = breq->opaque;

    if (result < 0)
        log_debug("virtio-blk: request at %llu failed: %s", (unsigned long long)breq->off,
                  strerror((int)-result));
    put_status(r->blk, r, result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

static void submit(struct virtio_blk *blk, struct blk_request *r, enum blockdev_op op,
                   uint64_t off, uint64_t len, int iovcnt, unsigned flags)
{
    int rc;

    r->breq = (struct blockdev_req){.op = op, .off = off, .len = len, .iov = r->iov,
                                    .iovcnt = iovcnt, .flags = flags, .done = request_done,
                                    .opaque = r};
    rc = blockdev_aio_submit(blk->bd, &r->breq);
    if (rc < 0)
        put_status(blk, r, VIRTIO_BLK_S_IOERR);
}

static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
    uint64_t nsec = bytes / VIRTIO_BLK_SECTOR;

    return sector <= blk->sectors && nsec <= blk->sectors - sector;
}

static void do_rw(struct virtio_blk *blk, struct blk_request *r, const struct virtq_chain *c,
                  uint32_t type, uint64_t sector)
{
    bool is_read = type == VIRTIO_BLK_T_IN;
    uint64_t len = is_read ? c->in_len - 1 : c->out_len - BLK_HDR_BYTES;
    int n;

    if (!is_read && blk->readonly) {
        put_status(blk, r, VIRTIO_BLK_S_IOERR);
        return;
    }
    if (len % VIRTIO_BLK_SECTOR || !in_range(blk, sector, len)) {
        put_status(blk, r, VIRTIO_BLK_S_IOERR);
        return;
    }
    if (len == 0) {
        put_status(blk, r, VIRTIO_BLK_S_OK);
        return;
    }
    n = is_read ? iov_slice(c->in, c->nr_in, 0, len, r->iov, VIRTQ_MAX_IOV)
                : iov_slice(c->out, c->nr_out, BLK_HDR_BYTES, len, r->iov, VIRTQ_MAX_IOV);
    if (n < 0) {
        put_status(blk, r, VIRTIO_BLK_S_IOERR);
        return;
    }
    r->written = is_read ? (uint32_t)len + 1 : 1;
    submit(blk, r, is_read ? BLOCKDEV_OP_READ : BLOCKDEV_OP_WRITE, sector * VIRTIO_BLK_SECTOR,
           len, n, 0);
}

/* DISCARD and WRITE_ZEROES carry one {sector, num_sectors, flags} segment. */
static void do_discard_zeroes(struct virtio_blk *blk, struct blk_request *r,
                              const struct virtq_chain *c, uint32_t type)
{
    uint8_t seg[16];
    uint64_t sector;
    uint32_t num, flags;
    bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;

    if (blk->readonly) {
        put_status(blk, r, VIRTIO_BLK_S_IOERR);
        return;
    }
    if (c->out_len != BLK_HDR_BYTES + sizeof(seg) ||
        iov_to_buf(c->out, c->nr_out, BLK_HDR_BYTES, seg, sizeof(seg)) != sizeof(seg)) {
        put_status(blk, r, VIRTIO_BLK_S_UNSUPP); /* we offer one segment only */
        return;
    }
    memcpy(&sector, seg, 8);
    memcpy(&num, seg + 8, 4);
    memcpy(&flags, seg + 12, 4);
    if ((flags & ~1u) || (!zeroes && flags) || num > BLK_MAX_DISCARD_SECTORS) {
        put_status(blk, r, VIRTIO_BLK_S_UNSUPP);
        return;
    }
    if (!in_range(blk, sector, (uint64_t)num * VIRTIO_BLK_SECTOR)) {
        put_status(blk, r, VIRTIO_BLK_S_IOERR);
        return;
    }
    r->written = 1;
    submit(blk, r, zeroes ? BLOCKDEV_OP_WRITE_ZEROES : BLOCKDEV_OP_DISCARD,
           sector * VIRTIO_BLK_SECTOR, (uint64_t)num * VIRTIO_BLK_SECTOR, 0,
           zeroes && (flags & 1) ? BLOCKDEV_ZERO_MAY_UNMAP : 0);
}

static void do_get_id(struct virtio_blk *blk, struct blk_request *r, const struct virtq_chain *c)
{
    size_t len = c->in_len - 1 < VIRTIO_BLK_ID_BYTES ? c->in_len - 1 : VIRTIO_BLK_ID_BYTES;

    iov_from_buf(c->in, c->nr_in, 0, blk->serial, len);
    r->written = (uint32_t)len + 1;
    put_status(blk, r, VIRTIO_BLK_S_OK);
}

/* Returns false if the chain breaks the protocol (the device then fails). */
static bool handle_chain(struct virtio_blk *blk, unsigned q, const struct virtq_chain *c)
{
    struct blk_request *r = &blk->slots[q][c->head];
    const struct iovec *last;
    uint8_t hdr[BLK_HDR_BYTES];
    uint32_t type;
    uint64_t sector;

    if (c->out_len < BLK_HDR_BYTES || c->in_len < 1 || r->busy)
        return false;
    iov_to_buf(c->out, c->nr_out, 0, hdr, sizeof(hdr));
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    last = &c->in[c->nr_in - 1];
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    r->head = c->head;
    r->q = q;
    r->blk = blk;
    r->busy = true;
    r->written = 1;
    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        do_rw(blk, r, c, type, sector);
        break;
    case VIRTIO_BLK_T_FLUSH:
        submit(blk, r, BLOCKDEV_OP_FLUSH, 0, 0, 0, 0);
        break;
    case VIRTIO_BLK_T_GET_ID:
        do_get_id(blk, r, c);
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        do_discard_zeroes(blk, r, c, type);
        break;
    default:
        put_status(blk, r, VIRTIO_BLK_S_UNSUPP);
        break;
    }
    return true;
}

static unsigned queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_blk *blk = blk_of(dev);
    struct virtq *vq = &dev->queues[q].vq;
    unsigned taken = 0;
    struct herd_err why;
    int rc;

    blockdev_aio_plug(blk->bd); /* one io_uring_enter for the batch */
    while ((rc = virtq_pop(vq, &blk->chain, &why)) > 0) {
        taken++;
        if (!handle_chain(blk, q, &blk->chain)) {
            rc = herd_err_set(&why, -EINVAL, "",
                              "request without header or status byte (%llu/%llu "
                              "bytes readable/writable)", (unsigned long long)blk->chain.out_len,
                              (unsigned long long)blk->chain.in_len);
            break;
        }
    }
    blockdev_aio_unplug(blk->bd);
    if (rc < 0)
        virtio_dev_fail(dev, q, why.msg);
    blockdev_aio_reap(blk->bd, 0);
    return taken;
}

static void aio_ready(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_blk *blk = blk_of(dev);

    pthread_mutex_lock(&dev->lock);
    blockdev_aio_reap(blk->bd, 0);
    pthread_mutex_unlock(&dev->lock);
}

/* While the transport polls: completions without waiting for the eventfd. */
static unsigned blk_poll(struct virtio_dev *dev)
{
    struct virtio_blk *blk = blk_of(dev);

    if (!blockdev_aio_ready(blk->bd))
        return 0;
    int n = blockdev_aio_reap(blk->bd, 0);
    return n > 0 ? (unsigned)n : 0;
}

static bool blk_waiting(struct virtio_dev *dev)
{
    return blockdev_aio_background(blk_of(dev)->bd);
}

static void blk_reset(struct virtio_dev *dev)
{
    struct virtio_blk *blk = blk_of(dev);

    /* Let in-flight I/O land (it targets guest buffers) without touching
     * the rings the guest is tearing down. */
    blk->draining = true;
    while (blockdev_aio_inflight(blk->bd))
        blockdev_aio_reap(blk->bd, 1);
    blockdev_aio_reap(blk->bd, 0);
    blk->draining = false;
    for (unsigned q = 0; q < blk->queues; q++)
        for (unsigned i = 0; i < VIRTIO_QUEUE_SIZE; i++)
            blk->slots[q][i].busy = false;
}

/* Snapshot: requests in flight complete (into the rings, as usual) first;
 * then the image is flushed, so that its file holds every completed write
 * and the metadata that finds it (qcow2 caches tables write-back): a copy
 * of it taken now is the disk the snapshot's guest saw. Nothing else can
 * reach the image meanwhile: the I/O thread waits for dev->lock and the
 * worker has nothing queued. */
static int blk_quiesce(struct virtio_dev *dev)
{
    struct virtio_blk *blk = blk_of(dev);

    while (blockdev_aio_inflight(blk->bd))
        blockdev_aio_reap(blk->bd, 1);
    blockdev_aio_reap(blk->bd, 0);
    return blockdev_flush(blk->bd);
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *blk)
{
    return &blk->dev;
}

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void config_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    struct virtio_blk *blk = blk_of(dev);
    uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE] = {0};

    put_le(cfg + 0x00, blk->sectors, 8);         /* capacity */
    put_le(cfg + 0x0c, BLK_SEG_MAX, 4);          /* seg_max */
    put_le(cfg + 0x14, VIRTIO_BLK_SECTOR, 4);    /* blk_size */
    put_le(cfg + 0x22, blk->queues, 2);          /* num_queues */
    put_le(cfg + 0x24, BLK_MAX_DISCARD_SECTORS, 4);
    put_le(cfg + 0x28, 1, 4);                    /* max_discard_seg */
    put_le(cfg + 0x2c, BLK_DISCARD_ALIGN_SECTORS, 4);
    put_le(cfg + 0x30, BLK_MAX_DISCARD_SECTORS, 4);
    put_le(cfg + 0x34, 1, 4);                    /* max_write_zeroes_seg */
    cfg[0x38] = 1;                               /* write_zeroes_may_unmap */
    memcpy(data, cfg + off, len);
}

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = 0x018000, /* mass storage, other */
    .config_size = VIRTIO_BLK_CONFIG_SIZE,
    .config_read = config_read,
    .queue_notify = queue_notify,
    .polled_queues = ~0u,
    .poll = blk_poll,
    .waiting_elsewhere = blk_waiting,
    .reset = blk_reset,
    .quiesce = blk_quiesce,
};

static uint64_t blk_features(const struct virtio_blk *blk)
{
    uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ULL << VIRTIO_BLK_F_FLUSH);

    if (blk->readonly)
        f |= 1ULL << VIRTIO_BLK_F_RO;
    else
        f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
    if (blk->queues > 1)
        f |= 1ULL << VIRTIO_BLK_F_MQ;
    return f;
}

static void set_serial(struct virtio_blk *blk, const struct disk_config *cfg)
{
    const char *s = cfg->serial;

    if (!s) {
        s = strrchr(cfg->path, '/');
        s = s ? s + 1 : cfg->path;
    }
    memset(blk->serial, 0, sizeof(blk->serial));
    memcpy(blk->serial, s, strlen(s) < sizeof(blk->serial) ? strlen(s) : sizeof(blk->serial));
}

int virtio_blk_create(const struct disk_config *cfg, struct kvm *kvm,
                      const struct guest_mem *mem, struct pci_bus *pci, struct bus *mmio,
                      struct virtio_blk **out, struct herd_err *err)
{
    struct herd_err berr;
    /* lock_wait_ms: herdd restarts a killed guest at once, while the dead
     * herd-vmm's io_uring may still hold the image open for a moment. */
    struct blockdev_open_opts opts = {.format = cfg->format, .read_only = cfg->readonly,
                                      .lock_wait_ms = 1000, .err = &berr};
    struct virtio_blk *blk = calloc(1, sizeof(*blk));
    int rc;

    *out = NULL;
    if (!blk)
        return -ENOMEM;
    blk->readonly = cfg->readonly;
    blk->queues = cfg->queues ? cfg->queues : 1;
    set_serial(blk, cfg);
    struct blockdev_link chain[DISK_MAX_CHAIN];
    for (unsigned i = 0; i < cfg->chain_len; i++)
        chain[i] = (struct blockdev_link){.path = cfg->chain_path[i],
                                          .format = cfg->chain_format[i]};
    opts.chain_pinned = cfg->chain_pinned;
    opts.chain = chain;
    opts.chain_len = cfg->chain_len;
    rc = blockdev_open(cfg->path, &opts, &blk->bd);
    if (rc) {
        herd_err_set(err, rc, "", "disk %s: %s", cfg->path, berr.msg);
        free(blk);
        return rc;
    }
    blk->sectors = blockdev_size(blk->bd) / VIRTIO_BLK_SECTOR;
    for (unsigned q = 0; q < blk->queues && q < VIRTIO_MAX_QUEUES; q++) {
        blk->slots[q] = calloc(VIRTIO_QUEUE_SIZE, sizeof(struct blk_request));
        if (!blk->slots[q]) {
            virtio_blk_destroy(blk);
            return -ENOMEM;
        }
    }
    rc = virtio_dev_init(&blk->dev, &blk_ops, blk, blk_features(blk), blk->queues, kvm, mem, pci,
                         mmio, err);
    if (!rc)
        rc = virtio_dev_watch_fd(&blk->dev, blockdev_aio_fd(blk->bd), EPOLLIN, aio_ready);
    if (!rc) /* the ring now: io_uring_setup is not allowed once confined */
        blockdev_aio_start(blk->bd);
    if (rc) {
        virtio_blk_destroy(blk);
        return rc;
    }
    *out = blk;
    return 0;
}

/* The disk's worker thread runs confined like the I/O thread. */
static void disk_thread_init(void)
{
    jail_enter(JAIL_IO);
}

int virtio_blk_start(struct virtio_blk *blk)
{
    int rc = blockdev_aio_start_worker(blk->bd, disk_thread_init);

    if (rc < 0) /* requests then run on the I/O thread, as before */
        log_warn("virtio-blk: no worker thread for %s (%s); writes run on the I/O thread",
                 blockdev_filename(blk->bd), strerror(-rc));
    return virtio_dev_start(&blk->dev);
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
    if (!blk)
        return;
    virtio_dev_destroy(&blk->dev); /* stops the I/O thread first */
    if (blk->bd) {
        blk->draining = true;
        while (blockdev_aio_inflight(blk->bd))
            blockdev_aio_reap(blk->bd, 1);
        blockdev_close(blk->bd);
    }
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        free(blk->slots[q]);
    free(blk);
}
