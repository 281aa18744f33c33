/*
 * Split virtqueues (virtio 1.x, 2.7): the device side. Everything the guest
 * puts in a ring is hostile: descriptor indices, chain lengths, loops,
 * indirect tables and buffer addresses are checked against the queue size
 * and guest RAM before any byte is touched. A bad chain is reported with a
 * reason; the transport then marks the device NEEDS_RESET.
 */
#ifndef HERD_VIRTQ_H
#define HERD_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "herd/error.h"
#include "herd/guest_mem.h"

#define VIRTQ_MAX_SIZE  1024
#define VIRTQ_MAX_IOV   (VIRTQ_MAX_SIZE + 2)
#define VIRTQ_MAX_CHAIN_BYTES (1ULL << 32) /* more than any sane request */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq {
    const struct guest_mem *mem;
    uint16_t size;         /* entries, power of two, <= VIRTQ_MAX_SIZE */
    bool ready;
    bool event_idx;        /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;         /* VIRTIO_F_INDIRECT_DESC negotiated */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* host views, valid once virtq_start succeeded */
    struct virtq_desc *desc;
    volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
    volatile uint16_t *used;  /* flags, idx, then {u32 id, u32 len}[size], avail_event */
    uint16_t last_avail;   /* next avail entry to take */
    uint16_t used_idx;     /* next used entry to fill */
    uint16_t signalled_used; /* used idx when the guest was last interrupted */
    bool signalled_valid;
};

/* One request as the device sees it: device-readable buffers first, then
 * device-writable ones (the spec requires that order). */
struct virtq_chain {
    uint16_t head;
    unsigned nr_out, nr_in;
    struct iovec out[VIRTQ_MAX_IOV];
    struct iovec in[VIRTQ_MAX_IOV];
    uint64_t out_len, in_len;
    bool writable_seen; /* a device-writable descriptor (even empty) came */
};

void virtq_init(struct virtq *vq, const struct guest_mem *mem);

/* Validates the ring addresses/size and maps them; -EINVAL with reason. */
int virtq_start(struct virtq *vq, struct herd_err *err);
void virtq_reset(struct virtq *vq);

/* Takes the next available chain. 1: got one; 0: ring empty; negative: the
 * guest handed us garbage (reason in err; the queue must not be used again
 * until reset). */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain, struct herd_err *err);

/* Returns a chain to the guest with `written` bytes in its writable part. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* Puts the last popped chain back (e.g. no room in the backend yet). */
void virtq_unpop(struct virtq *vq);

/* Whether the guest wants an interrupt for what was pushed since the last
 * time this returned true (EVENT_IDX or the NO_INTERRUPT flag). */
bool virtq_should_signal(struct virtq *vq);

/* With EVENT_IDX: asks for a notification at the next avail entry, then
 * rechecks; true if entries arrived meanwhile (process them). Without it,
 * toggles VIRTQ_USED_F_NO_NOTIFY. */
bool virtq_enable_notify(struct virtq *vq);
void virtq_disable_notify(struct virtq *vq);

/* Entries the guest has made available and we have not taken. */
uint16_t virtq_pending(const struct virtq *vq);

#endif
