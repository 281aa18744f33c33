/*
 * virtio-net, polled (see virtio_net.h).
 */
#include "virtio_net.h"

#include "dma.h"
#include "lib.h"

bool vnet_open(struct vnet *n, uint32_t index, char *why, size_t whylen)
{
    memset(n, 0, sizeof(*n));
    if (!virtio_find(VIRTIO_ID_NET, index, &n->vd, why, whylen))
        return false;
    uint64_t want = BIT(VIRTIO_F_EVENT_IDX) | BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
                    BIT(VIRTIO_NET_F_MRG_RXBUF);
    if (!virtio_negotiate(&n->vd, want, BIT(VIRTIO_F_VERSION_1), why, whylen))
        return false;
    if (!virtio_queue(&n->vd, 0, &n->rx, 256, false, why, whylen) ||
        !virtio_queue(&n->vd, 1, &n->tx, 256, false, why, whylen))
        return false;
    n->rxbufs = dma_alloc((uint64_t)n->rx.size * VNET_BUF, 4096);
    n->txbufs = dma_alloc((uint64_t)n->tx.size * VNET_BUF, 4096);
    if (!n->rxbufs || !n->txbufs) {
        snprintf(why, whylen, "out of memory for packet buffers");
        return false;
    }
    for (uint16_t i = 0; i < n->tx.size; i++)
        n->tx_free[n->ntx_free++] = i;
    if (virtio_has(&n->vd, VIRTIO_NET_F_MAC))
        for (int i = 0; i < 6; i++)
            n->mac[i] = virtio_cfg8(&n->vd, (uint32_t)i);
    else
        memcpy(n->mac, "\x02\x00\x00\x48\x52\x44", 6); /* locally administered */
    n->status = virtio_has(&n->vd, VIRTIO_NET_F_STATUS) ? virtio_cfg16(&n->vd, 6) : VIRTIO_NET_S_LINK_UP;
    for (uint16_t i = 0; i < n->rx.size; i++) {
        struct vq_seg s = { dma_addr(n->rxbufs + (uint64_t)i * VNET_BUF), VNET_BUF, true };
        vq_add(&n->rx, &s, 1, i);
    }
    virtio_driver_ok(&n->vd);
    vq_kick(&n->rx);
    return true;
}

uint16_t vnet_tx_reap(struct vnet *n)
{
    uint64_t tok;
    uint32_t len;
    bool bad;
    while (vq_get(&n->tx, &tok, &len, &bad))
        n->tx_free[n->ntx_free++] = (uint16_t)tok;
    if (bad)
        n->bad_rx++;
    return n->ntx_free;
}

bool vnet_send(struct vnet *n, const void *frame, uint32_t len)
{
    if (len > VNET_FRAME_MAX)
        return false;
    if (!n->ntx_free && !vnet_tx_reap(n))
        return false;
    uint16_t b = n->tx_free[--n->ntx_free];
    uint8_t *p = n->txbufs + (uint64_t)b * VNET_BUF;
    memset(p, 0, VNET_HDR_LEN);
    memcpy(p + VNET_HDR_LEN, frame, len);
    struct vq_seg s = { dma_addr(p), VNET_HDR_LEN + len, false };
    if (!vq_add(&n->tx, &s, 1, b)) {
        n->tx_free[n->ntx_free++] = b;
        return false;
    }
    return true;
}

void vnet_tx_kick(struct vnet *n) { vq_kick(&n->tx); }

const uint8_t *vnet_recv(struct vnet *n, uint32_t *len, uint16_t *buf)
{
    uint64_t tok;
    uint32_t l;
    bool bad;
    while (vq_get(&n->rx, &tok, &l, &bad)) {
        uint8_t *p = n->rxbufs + tok * VNET_BUF;
        /* num_buffers (bytes 10-11) must be 1 with mergeable buffers. */
        if (l < VNET_HDR_LEN + 14 || l > VNET_BUF ||
            (virtio_has(&n->vd, VIRTIO_NET_F_MRG_RXBUF) && (p[10] | p[11] << 8) != 1)) {
            n->bad_rx++;
            vnet_rx_done(n, (uint16_t)tok);
            continue;
        }
        *len = l - VNET_HDR_LEN;
        *buf = (uint16_t)tok;
        return p + VNET_HDR_LEN;
    }
    if (bad)
        n->bad_rx++;
    return 0;
}

void vnet_rx_done(struct vnet *n, uint16_t buf)
{
    struct vq_seg s = { dma_addr(n->rxbufs + (uint64_t)buf * VNET_BUF), VNET_BUF, true };
    vq_add(&n->rx, &s, 1, buf);
    n->rx_pending++;
}

void vnet_rx_kick(struct vnet *n)
{
    if (n->rx_pending) {
        vq_kick(&n->rx);
        n->rx_pending = 0;
    }
}
