/*
 * Split virtqueues (virtio 1.x, 2.6): descriptor table, available ring and
 * used ring in probe RAM, driven by polling. Chains are direct or (when
 * VIRTIO_F_INDIRECT_DESC was negotiated and asked for) one indirect table
 * per chain. With VIRTIO_F_EVENT_IDX the device's avail_event decides
 * whether a kick notifies; without it, VRING_USED_F_NO_NOTIFY does.
 * Device interrupts are suppressed (the probe polls) unless vq_irq turned
 * them on (test "msix").
 */
#ifndef HERD_PROBE_VIRTQUEUE_H
#define HERD_PROBE_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

#define VQ_MAX_SIZE 256
#define VQ_MAX_SEGS 16 /* per chain */

struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* size entries, then used_event */
};

struct vq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vq_used {
    uint16_t flags;
    uint16_t idx;
    struct vq_used_elem ring[]; /* size entries, then avail_event */
};

/* One buffer of a chain: device-readable (write = false) or -writable. */
struct vq_seg {
    uint64_t addr;
    uint32_t len;
    bool write;
};

struct virtq {
    uint16_t size, index;
    struct vq_desc *desc;
    struct vq_avail *avail;
    struct vq_used *used;
    struct vq_desc *indirect; /* size tables of VQ_MAX_SEGS, or NULL */
    uint64_t notify_addr;
    bool event_idx;
    bool irq; /* interrupts wanted: used_event follows last_used */

    uint16_t free_head, num_free;
    uint16_t avail_idx;   /* next avail slot (published by vq_kick) */
    uint16_t kicked_idx;  /* avail idx at the last kick */
    uint16_t last_used;   /* next used slot to read */
    uint16_t chain_len[VQ_MAX_SIZE]; /* descriptors held by each head */
    uint64_t token[VQ_MAX_SIZE];

    /* statistics */
    uint64_t notifies, kicks_suppressed;
};

/* Allocate the rings (DMA memory) for `size` entries (power of two, at
 * most VQ_MAX_SIZE); indirect: also allocate indirect tables. */
bool vq_alloc(struct virtq *vq, uint16_t size, uint16_t index, bool event_idx, bool indirect);

/* Queue a chain (readable segments first, then writable ones). Uses an
 * indirect table when the queue has them and nseg > 1. Returns false when
 * the queue is full. Not visible to the device until vq_kick. */
bool vq_add(struct virtq *vq, const struct vq_seg *segs, uint32_t nseg, uint64_t token);

/* Publish the queued chains; notify the device unless it suppressed it. */
void vq_kick(struct virtq *vq);

/* Take one completed chain: returns true with its token and the length
 * the device wrote. bad_id is set (and false returned) if the device
 * returned an id that is not an outstanding head. */
bool vq_get(struct virtq *vq, uint64_t *token, uint32_t *len, bool *bad_id);

/* Ask the device for an interrupt on every completion (on) or for none
 * (off, the default): with EVENT_IDX used_event = last_used (and kept so
 * by vq_get) or far ahead; without it VRING_AVAIL_F_NO_INTERRUPT cleared
 * or set. Ends with a full barrier: check vq_has_used afterwards. */
void vq_irq(struct virtq *vq, bool on);

/* A completion is waiting in the used ring. */
bool vq_has_used(const struct virtq *vq);

/* Free descriptors / chains outstanding. */
static inline uint16_t vq_free(const struct virtq *vq) { return vq->num_free; }
uint16_t vq_inflight(const struct virtq *vq);

/* Raw access for the hostile test: put head `head` (whose descriptors the
 * caller wrote itself into vq->desc) on the avail ring. */
void vq_add_raw_head(struct virtq *vq, uint16_t head);

#endif
