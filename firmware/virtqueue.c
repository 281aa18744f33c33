/*
 * Split virtqueue driver side (see virtqueue.h). x86 keeps stores in order
 * and loads in order, so a compiler barrier orders ring writes before the
 * idx store and the idx load before the ring reads; the one store->load
 * ordering (publish avail idx, then read the device's suppression state)
 * needs mfence.
 */
#include "virtqueue.h"

#include "dma.h"
#include "lib.h"

#define barrier() __asm__ volatile("" ::: "memory")
#define mb() __asm__ volatile("mfence" ::: "memory")

static volatile uint16_t *used_event(struct virtq *vq) { return &vq->avail->ring[vq->size]; }
static volatile uint16_t *avail_event(struct virtq *vq) { return (volatile uint16_t *)&vq->used->ring[vq->size]; }

bool vq_alloc(struct virtq *vq, uint16_t size, uint16_t index, bool event_idx, bool indirect)
{
    memset(vq, 0, sizeof(*vq));
    if (!size || size > VQ_MAX_SIZE || (size & (size - 1)))
        return false;
    vq->size = size;
    vq->index = index;
    vq->event_idx = event_idx;
    vq->desc = dma_alloc(16ULL * size, 4096);
    vq->avail = dma_alloc(6 + 2ULL * size, 4096);
    vq->used = dma_alloc(6 + 8ULL * size, 4096);
    if (indirect)
        vq->indirect = dma_alloc(16ULL * VQ_MAX_SEGS * size, 4096);
    if (!vq->desc || !vq->avail || !vq->used || (indirect && !vq->indirect))
        return false;
    for (uint16_t i = 0; i < size; i++)
        vq->desc[i].next = (uint16_t)(i + 1);
    vq->free_head = 0;
    vq->num_free = size;
    /* The probe polls: ask for no interrupts (event idx: next one far away). */
    vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
    *used_event(vq) = 0x8000;
    return true;
}

bool vq_add(struct virtq *vq, const struct vq_seg *segs, uint32_t nseg, uint64_t token)
{
    if (nseg == 0 || nseg > VQ_MAX_SEGS)
        return false;
    uint16_t head = vq->free_head;
    if (vq->indirect && nseg > 1) {
        if (vq->num_free < 1)
            return false;
        struct vq_desc *t = vq->indirect + (uint32_t)head * VQ_MAX_SEGS;
        for (uint32_t i = 0; i < nseg; i++) {
            t[i].addr = segs[i].addr;
            t[i].len = segs[i].len;
            t[i].flags = (uint16_t)((segs[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < nseg ? VRING_DESC_F_NEXT : 0));
            t[i].next = (uint16_t)(i + 1 < nseg ? i + 1 : 0);
        }
        vq->free_head = vq->desc[head].next;
        vq->desc[head].addr = dma_addr(t);
        vq->desc[head].len = nseg * 16;
        vq->desc[head].flags = VRING_DESC_F_INDIRECT;
        vq->num_free--;
        vq->chain_len[head] = 1;
    } else {
        if (vq->num_free < nseg)
            return false;
        uint16_t d = head, last = head;
        for (uint32_t i = 0; i < nseg; i++) {
            last = d;
            vq->desc[d].addr = segs[i].addr;
            vq->desc[d].len = segs[i].len;
            vq->desc[d].flags = (uint16_t)((segs[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < nseg ? VRING_DESC_F_NEXT : 0));
            d = vq->desc[d].next; /* the free list threads through next */
        }
        vq->free_head = vq->desc[last].next;
        vq->num_free = (uint16_t)(vq->num_free - nseg);
        vq->chain_len[head] = (uint16_t)nseg;
    }
    vq->token[head] = token;
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    vq->avail_idx++;
    return true;
}

void vq_add_raw_head(struct virtq *vq, uint16_t head)
{
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    vq->avail_idx++;
}

void vq_kick(struct virtq *vq)
{
    uint16_t old = vq->kicked_idx, new = vq->avail_idx;
    if (old == new)
        return;
    barrier();
    *(volatile uint16_t *)&vq->avail->idx = new;
    mb();
    vq->kicked_idx = new;
    bool notify;
    if (vq->event_idx) {
        uint16_t ev = *avail_event(vq);
        notify = (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
    } else {
        notify = !(*(volatile uint16_t *)&vq->used->flags & VRING_USED_F_NO_NOTIFY);
    }
    if (notify) {
        wr16(vq->notify_addr, vq->index);
        vq->notifies++;
    } else {
        vq->kicks_suppressed++;
    }
}

bool vq_get(struct virtq *vq, uint64_t *token, uint32_t *len, bool *bad_id)
{
    *bad_id = false;
    if (vq->last_used == *(volatile uint16_t *)&vq->used->idx)
        return false;
    barrier();
    struct vq_used_elem e = ((volatile struct vq_used_elem *)vq->used->ring)[vq->last_used & (vq->size - 1)];
    vq->last_used++;
    if (vq->event_idx)
        *used_event(vq) = (uint16_t)(vq->last_used + (vq->irq ? 0 : 0x8000));
    if (e.id >= vq->size || vq->chain_len[e.id] == 0) {
        *bad_id = true;
        return false;
    }
    uint16_t head = (uint16_t)e.id, last = head;
    for (uint16_t i = 1; i < vq->chain_len[head]; i++)
        last = vq->desc[last].next;
    vq->desc[last].next = vq->free_head;
    vq->free_head = head;
    vq->num_free = (uint16_t)(vq->num_free + vq->chain_len[head]);
    vq->chain_len[head] = 0;
    *token = vq->token[head];
    *len = e.len;
    return true;
}

void vq_irq(struct virtq *vq, bool on)
{
    vq->irq = on;
    if (vq->event_idx)
        *used_event(vq) = (uint16_t)(vq->last_used + (on ? 0 : 0x8000));
    else
        *(volatile uint16_t *)&vq->avail->flags = on ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
    mb();
}

bool vq_has_used(const struct virtq *vq)
{
    return vq->last_used != *(volatile uint16_t *)&vq->used->idx;
}

uint16_t vq_inflight(const struct virtq *vq)
{
    uint16_t n = 0;
    for (uint16_t i = 0; i < vq->size; i++)
        n = (uint16_t)(n + (vq->chain_len[i] != 0));
    return n;
}
