/*
 * Split virtqueue, device side. Memory ordering: the guest writes a ring
 * entry then the index; we read the index (acquire) then the entry. We write
 * used entries then the used index (release), and with EVENT_IDX read
 * used_event only after a full barrier, as the spec's 2.7.10 requires.
 */
#include "herd/virtq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define AVAIL_FLAGS 0
#define AVAIL_IDX   1
#define AVAIL_RING  2
#define USED_FLAGS  0
#define USED_IDX    1

void virtq_init(struct virtq *vq, const struct guest_mem *mem)
{
    memset(vq, 0, sizeof(*vq));
    vq->mem = mem;
}

void virtq_reset(struct virtq *vq)
{
    const struct guest_mem *mem = vq->mem;

    virtq_init(vq, mem);
}

static bool aligned(uint64_t v, uint64_t a)
{
    return (v & (a - 1)) == 0;
}

int virtq_start(struct virtq *vq, struct herd_err *err)
{
    uint64_t n = vq->size;
    uint64_t desc_len = 16 * n, avail_len = 6 + 2 * n, used_len = 6 + 8 * n;

    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
        return herd_err_set(err, -EINVAL, "", "queue size %u is not a power of two up to %d",
                            vq->size, VIRTQ_MAX_SIZE);
    if (!aligned(vq->desc_gpa, 16) || !aligned(vq->avail_gpa, 2) || !aligned(vq->used_gpa, 4))
        return herd_err_set(err, -EINVAL, "",
                            "ring addresses misaligned (desc %#llx avail %#llx used %#llx)",
                            (unsigned long long)vq->desc_gpa, (unsigned long long)vq->avail_gpa,
                            (unsigned long long)vq->used_gpa);
    vq->desc = guest_mem_ptr(vq->mem, vq->desc_gpa, desc_len);
    vq->avail = guest_mem_ptr(vq->mem, vq->avail_gpa, avail_len);
    vq->used = guest_mem_ptr(vq->mem, vq->used_gpa, used_len);
    if (!vq->desc || !vq->avail || !vq->used) {
        herd_err_set(err, -EINVAL, "", "ring outside guest RAM (desc %#llx avail %#llx used %#llx)",
                     (unsigned long long)vq->desc_gpa, (unsigned long long)vq->avail_gpa,
                     (unsigned long long)vq->used_gpa);
        vq->desc = NULL;
        vq->avail = vq->used = NULL;
        return -EINVAL;
    }
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->signalled_valid = false;
    vq->ready = true;
    return 0;
}

static uint16_t avail_idx(const struct virtq *vq)
{
    return __atomic_load_n(&vq->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
}

uint16_t virtq_pending(const struct virtq *vq)
{
    return vq->ready ? (uint16_t)(avail_idx(vq) - vq->last_avail) : 0;
}

/* Adds one buffer to the chain after checking it lies in guest RAM. */
static int add_buffer(struct virtq *vq, struct virtq_chain *c, const struct virtq_desc *d,
                      struct herd_err *err)
{
    bool writable = d->flags & VIRTQ_DESC_F_WRITE;
    void *host;

    if (!writable && c->writable_seen)
        return herd_err_set(err, -EINVAL, "",
                            "device-readable descriptor after a device-writable one");
    c->writable_seen |= writable;
    if (d->len == 0)
        return 0; /* legal and harmless: nothing to map */
    host = guest_mem_ptr(vq->mem, d->addr, d->len);
    if (!host)
        return herd_err_set(err, -EFAULT, "", "descriptor buffer %#llx+%u is not guest RAM",
                            (unsigned long long)d->addr, d->len);
    if (c->nr_out + c->nr_in >= VIRTQ_MAX_IOV)
        return herd_err_set(err, -E2BIG, "", "chain has more than %d buffers", VIRTQ_MAX_IOV);
    if (writable) {
        c->in[c->nr_in++] = (struct iovec){.iov_base = host, .iov_len = d->len};
        c->in_len += d->len;
    } else {
        c->out[c->nr_out++] = (struct iovec){.iov_base = host, .iov_len = d->len};
        c->out_len += d->len;
    }
    if (c->in_len + c->out_len > VIRTQ_MAX_CHAIN_BYTES)
        return herd_err_set(err, -E2BIG, "", "chain longer than %llu bytes", VIRTQ_MAX_CHAIN_BYTES);
    return 0;
}

/* Walks an indirect table (one level only, as the spec allows). */
static int walk_indirect(struct virtq *vq, struct virtq_chain *c, const struct virtq_desc *d,
                         struct herd_err *err)
{
    const struct virtq_desc *table;
    unsigned n, i = 0, steps = 0;

    if (!vq->indirect)
        return herd_err_set(err, -EINVAL, "", "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
    if (d->flags & VIRTQ_DESC_F_NEXT)
        return herd_err_set(err, -EINVAL, "", "indirect descriptor with the NEXT flag");
    if (d->len == 0 || d->len % sizeof(struct virtq_desc) ||
        d->len / sizeof(struct virtq_desc) > VIRTQ_MAX_SIZE) {
        return herd_err_set(err, -EINVAL, "", "indirect table of %u bytes", d->len);
    }
    n = d->len / sizeof(struct virtq_desc);
    table = guest_mem_ptr(vq->mem, d->addr, d->len);
    if (!table || !aligned(d->addr, 8))
        return herd_err_set(err, -EFAULT, "", "indirect table %#llx+%u is not guest RAM",
                            (unsigned long long)d->addr, d->len);
    for (;;) {
        struct virtq_desc e;
        int rc;

        memcpy(&e, &table[i], sizeof(e)); /* the guest may change it under us */
        if (e.flags & VIRTQ_DESC_F_INDIRECT)
            return herd_err_set(err, -EINVAL, "", "nested indirect descriptor");
        rc = add_buffer(vq, c, &e, err);
        if (rc)
            return rc;
        if (!(e.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (e.next >= n || ++steps >= n)
            return herd_err_set(err, -EINVAL, "", "indirect chain %s",
                                e.next >= n ? "index out of range" : "loops");
        i = e.next;
    }
}

static int walk_chain(struct virtq *vq, struct virtq_chain *c, uint16_t head, struct herd_err *err)
{
    unsigned steps = 0;
    uint16_t i = head;

    for (;;) {
        struct virtq_desc d;
        int rc;

        memcpy(&d, &vq->desc[i], sizeof(d));
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            rc = walk_indirect(vq, c, &d, err);
            if (rc)
                return rc;
            if (steps > 0 || (d.flags & VIRTQ_DESC_F_NEXT))
                return herd_err_set(err, -EINVAL, "", "indirect descriptor inside a chain");
            return 0;
        }
        rc = add_buffer(vq, c, &d, err);
        if (rc)
            return rc;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if (d.next >= vq->size)
            return herd_err_set(err, -EINVAL, "",
                                "descriptor %u: next %u out of range (queue size %u)", i, d.next,
                                vq->size);
        if (++steps >= vq->size)
            return herd_err_set(err, -ELOOP, "", "descriptor chain from %u loops", head);
        i = d.next;
    }
}

int virtq_pop(struct virtq *vq, struct virtq_chain *chain, struct herd_err *err)
{
    uint16_t idx, head;

    if (!vq->ready)
        return 0;
    idx = avail_idx(vq);
    if (idx == vq->last_avail)
        return 0;
    if ((uint16_t)(idx - vq->last_avail) > vq->size)
        return herd_err_set(err, -EINVAL, "", "avail index moved by %u on a queue of %u",
                            (uint16_t)(idx - vq->last_avail), vq->size);
    head = vq->avail[AVAIL_RING + vq->last_avail % vq->size];
    if (head >= vq->size)
        return herd_err_set(err, -EINVAL, "", "avail ring names descriptor %u (queue size %u)",
                            head, vq->size);
    memset(chain, 0, offsetof(struct virtq_chain, out));
    chain->out_len = chain->in_len = 0;
    chain->writable_seen = false;
    chain->head = head;
    int rc = walk_chain(vq, chain, head, err);

    if (rc)
        return rc;
    vq->last_avail++;
    return 1;
}

void virtq_unpop(struct virtq *vq)
{
    vq->last_avail--;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
    volatile uint32_t *elem = (volatile uint32_t *)(vq->used + 2) + 2 * (vq->used_idx % vq->size);

    elem[0] = head;
    elem[1] = written;
    vq->used_idx++;
    __atomic_store_n(&vq->used[USED_IDX], vq->used_idx, __ATOMIC_RELEASE);
}

/* used_event lives after the avail ring; avail_event after the used ring. */
static uint16_t used_event(const struct virtq *vq)
{
    return vq->avail[AVAIL_RING + vq->size];
}

static void set_avail_event(struct virtq *vq, uint16_t v)
{
    volatile uint16_t *p = (volatile uint16_t *)((volatile uint8_t *)vq->used + 4 + 8 * vq->size);

    *p = v;
}

bool virtq_should_signal(struct virtq *vq)
{
    uint16_t old, new_idx = vq->used_idx, event;
    bool valid = vq->signalled_valid;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(vq->avail[AVAIL_FLAGS] & VIRTQ_AVAIL_F_NO_INTERRUPT);
    old = vq->signalled_used;
    vq->signalled_used = new_idx;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    event = used_event(vq);
    /* vring_need_event(): did new_idx pass event since old? */
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void virtq_disable_notify(struct virtq *vq)
{
    if (!vq->event_idx)
        vq->used[USED_FLAGS] |= VIRTQ_USED_F_NO_NOTIFY;
}

bool virtq_enable_notify(struct virtq *vq)
{
    if (vq->event_idx)
        set_avail_event(vq, vq->last_avail);
    else
        vq->used[USED_FLAGS] &= (uint16_t)~VIRTQ_USED_F_NO_NOTIFY;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return avail_idx(vq) != vq->last_avail;
}
