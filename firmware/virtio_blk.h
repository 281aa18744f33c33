/*
 * virtio-blk driver for the probe (virtio spec 5.2): one request queue,
 * requests as 3-segment chains (header, data, status) or 2 for flush,
 * direct or indirect; submit many, kick once, poll completions.
 */
#ifndef HERD_PROBE_VIRTIO_BLK_H
#define HERD_PROBE_VIRTIO_BLK_H

#include "virtio_pci.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VBLK_S_NONE 0xff /* status byte before the device wrote it */

#define VIRTIO_BLK_ID_BYTES 20
#define SECTOR 512ULL

struct vblk_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct vblk_dwz { /* discard / write zeroes segment */
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags; /* bit 0: unmap (write zeroes) */
};

struct vblk_slot {
    struct vblk_hdr hdr;
    struct vblk_dwz dwz;
    uint8_t status;
    uint8_t pad[15];
    uint64_t cookie;
};

struct vblk {
    struct virtio_dev vd;
    struct virtq vq;
    uint64_t capacity; /* 512-byte sectors */
    uint32_t blk_size, size_max, seg_max;
    uint32_t max_discard_sectors, max_wz_sectors;
    struct vblk_slot *slots;
    uint16_t free_slot[VQ_MAX_SIZE];
    uint16_t nfree;
};

/* Find the index-th virtio-blk device, negotiate (VERSION_1 required;
 * EVENT_IDX, INDIRECT_DESC, FLUSH, RO, BLK_SIZE, SIZE_MAX, SEG_MAX,
 * DISCARD, WRITE_ZEROES wanted), set up queue 0 (at most qsize entries),
 * DRIVER_OK. */
bool vblk_open(struct vblk *b, uint32_t index, uint16_t qsize, bool indirect, char *why, size_t whylen);
/* The same without the final DRIVER_OK (the caller maps MSI-X vectors
 * first, then calls virtio_driver_ok(&b->vd)); features in `drop` are not
 * negotiated even if offered. */
bool vblk_setup(struct vblk *b, uint32_t index, uint16_t qsize, bool indirect, uint64_t drop, char *why,
                size_t whylen);

/* Queue one request. buf/len: the data (read into for IN and GET_ID;
 * DISCARD/WRITE_ZEROES take sector/len in bytes and build their segment
 * themselves, buf unused). false if the queue has no room. */
bool vblk_submit(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, uint64_t cookie);
static inline void vblk_kick(struct vblk *b) { vq_kick(&b->vq); }

/* One completion, if any: its cookie and status. *bad set if the device
 * returned a bogus used entry. */
bool vblk_poll(struct vblk *b, uint64_t *cookie, uint8_t *status, bool *bad);

/* Submit one request and wait for it (bounded): returns its status, or
 * VBLK_S_NONE on a timeout or a bad used entry. */
uint8_t vblk_sync(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, uint64_t timeout_ms);

static inline uint16_t vblk_inflight(const struct vblk *b) { return (uint16_t)(b->vq.size - b->nfree); }

#endif
