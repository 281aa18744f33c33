/*
 * virtio-blk requests (see virtio_blk.h).
 */
#include "virtio_blk.h"

#include "cpl0.h"
#include "dma.h"
#include "lib.h"
#include "tsc.h"

bool vblk_open(struct vblk *b, uint32_t index, uint16_t qsize, bool indirect, char *why, size_t whylen)
{
    if (!vblk_setup(b, index, qsize, indirect, 0, why, whylen))
        return false;
    virtio_driver_ok(&b->vd);
    return true;
}

bool vblk_setup(struct vblk *b, uint32_t index, uint16_t qsize, bool indirect, uint64_t drop, char *why,
                size_t whylen)
{
    memset(b, 0, sizeof(*b));
    if (!virtio_find(VIRTIO_ID_BLOCK, index, &b->vd, why, whylen))
        return false;
    uint64_t want = BIT(VIRTIO_F_EVENT_IDX) | BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_BLK_F_FLUSH) |
                    BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_SIZE_MAX) |
                    BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES);
    if (!virtio_negotiate(&b->vd, want & ~drop, BIT(VIRTIO_F_VERSION_1), why, whylen))
        return false;
    if (!virtio_queue(&b->vd, 0, &b->vq, qsize, indirect, why, whylen))
        return false;
    b->slots = dma_alloc(sizeof(struct vblk_slot) * b->vq.size, 64);
    if (!b->slots) {
        snprintf(why, whylen, "out of memory for request slots");
        return false;
    }
    for (uint16_t i = 0; i < b->vq.size; i++)
        b->free_slot[i] = (uint16_t)(b->vq.size - 1 - i);
    b->nfree = b->vq.size;
    struct virtio_dev *vd = &b->vd;
    b->capacity = virtio_cfg64(vd, 0);
    b->size_max = virtio_has(vd, VIRTIO_BLK_F_SIZE_MAX) ? virtio_cfg32(vd, 8) : 0;
    b->seg_max = virtio_has(vd, VIRTIO_BLK_F_SEG_MAX) ? virtio_cfg32(vd, 12) : 0;
    b->blk_size = virtio_has(vd, VIRTIO_BLK_F_BLK_SIZE) ? virtio_cfg32(vd, 20) : 512;
    b->max_discard_sectors = virtio_has(vd, VIRTIO_BLK_F_DISCARD) ? virtio_cfg32(vd, 36) : 0;
    b->max_wz_sectors = virtio_has(vd, VIRTIO_BLK_F_WRITE_ZEROES) ? virtio_cfg32(vd, 48) : 0;
    return true;
}

bool vblk_submit(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, uint64_t cookie)
{
    if (!b->nfree)
        return false;
    uint16_t s = b->free_slot[b->nfree - 1];
    struct vblk_slot *sl = &b->slots[s];
    sl->hdr.type = type;
    sl->hdr.reserved = 0;
    sl->hdr.sector = sector;
    sl->status = VBLK_S_NONE;
    sl->cookie = cookie;
    struct vq_seg seg[3];
    uint32_t n = 0;
    seg[n++] = (struct vq_seg){ dma_addr(&sl->hdr), sizeof(sl->hdr), false };
    if (type == VIRTIO_BLK_T_DISCARD || type == VIRTIO_BLK_T_WRITE_ZEROES) {
        sl->dwz.sector = sector;
        sl->dwz.num_sectors = (uint32_t)(len / SECTOR);
        sl->dwz.flags = 0;
        sl->hdr.sector = 0;
        seg[n++] = (struct vq_seg){ dma_addr(&sl->dwz), sizeof(sl->dwz), false };
    } else if (type != VIRTIO_BLK_T_FLUSH) {
        seg[n++] = (struct vq_seg){ dma_addr(buf), len, type != VIRTIO_BLK_T_OUT };
    }
    seg[n++] = (struct vq_seg){ dma_addr(&sl->status), 1, true };
    if (!vq_add(&b->vq, seg, n, s))
        return false;
    b->nfree--;
    return true;
}

bool vblk_poll(struct vblk *b, uint64_t *cookie, uint8_t *status, bool *bad)
{
    uint64_t tok;
    uint32_t len;
    if (!vq_get(&b->vq, &tok, &len, bad))
        return false;
    struct vblk_slot *sl = &b->slots[tok];
    *cookie = sl->cookie;
    *status = *(volatile uint8_t *)&sl->status;
    b->free_slot[b->nfree++] = (uint16_t)tok;
    return true;
}

uint8_t vblk_sync(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, uint64_t timeout_ms)
{
    if (!vblk_submit(b, type, sector, buf, len, 0))
        return VBLK_S_NONE;
    vblk_kick(b);
    uint64_t dl = tsc_deadline(timeout_ms), cookie;
    uint8_t st;
    bool bad;
    while (!vblk_poll(b, &cookie, &st, &bad)) {
        if (bad || tsc_passed(dl))
            return VBLK_S_NONE;
        cpu_relax();
    }
    return st;
}
