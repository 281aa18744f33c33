/*
 * virtio-net, polled (see virtio_net.h).
 */
#include "virtio_net.h"

#include "cpl0.h"
#include "dma.h"
#include "lib.h"
#include "tsc.h"

static void fill_rx(struct virtq *vq, uint8_t *bufs, uint16_t idflag)
{
    for (uint16_t i = 0; i < vq->size; i++) {
        struct vq_seg s = { dma_addr(bufs + (uint64_t)i * VNET_BUF), VNET_BUF, true };
        vq_add(vq, &s, 1, i | idflag);
    }
}

bool vnet_ctrl(struct vnet *n, const uint8_t *cmd, uint32_t len, uint8_t *ack, char *why, size_t whylen)
{
    uint8_t *out = n->ctrlbuf, *in = n->ctrlbuf + 2048;
    struct vq_seg s[2] = { { dma_addr(out), len, false }, { dma_addr(in), 1, true } };
    uint64_t tok, dl = tsc_deadline(1000);
    uint32_t got;
    bool bad;

    if (!n->ctrlbuf || len > 2048) {
        snprintf(why, whylen, "no control queue, or a command over 2 KiB");
        return false;
    }
    memcpy(out, cmd, len);
    *in = 0xff;
    if (!vq_add(&n->ctrl, s, 2, 1)) {
        snprintf(why, whylen, "control queue full");
        return false;
    }
    vq_kick(&n->ctrl);
    while (!vq_get(&n->ctrl, &tok, &got, &bad)) {
        if (tsc_passed(dl)) {
            snprintf(why, whylen, "no answer on the control queue within 1 s");
            return false;
        }
        cpu_relax();
    }
    *ack = *(volatile uint8_t *)in;
    return true;
}

/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: class 4, command 0, le16 pairs; ack 0 = OK. */
static bool set_pairs(struct vnet *n, uint16_t pairs, char *why, size_t whylen)
{
    uint8_t cmd[4] = { 4, 0, (uint8_t)pairs, (uint8_t)(pairs >> 8) }, ack;

    if (!vnet_ctrl(n, cmd, sizeof(cmd), &ack, why, whylen))
        return false;
    if (ack != 0) {
        snprintf(why, whylen, "VQ_PAIRS_SET %u refused (ack %u)", pairs, ack);
        return false;
    }
    return true;
}

static bool open_pair1(struct vnet *n, char *why, size_t whylen)
{
    if (!virtio_has(&n->vd, VIRTIO_NET_F_MQ) || !virtio_has(&n->vd, VIRTIO_NET_F_CTRL_VQ) ||
        virtio_cfg16(&n->vd, 8) < 2) {
        snprintf(why, whylen, "probe.net.queues=2 but the device offers no second queue pair");
        return false;
    }
    uint16_t max = virtio_cfg16(&n->vd, 8);
    if (!virtio_queue(&n->vd, 2, &n->rx1, 256, false, why, whylen) ||
        !virtio_queue(&n->vd, 3, &n->tx1, 256, false, why, whylen) ||
        !virtio_queue(&n->vd, (uint16_t)(2 * max), &n->ctrl, 64, false, why, whylen))
        return false;
    n->rxbufs1 = dma_alloc((uint64_t)n->rx1.size * VNET_BUF, 4096);
    n->ctrlbuf = dma_alloc(4096, 4096);
    if (!n->rxbufs1 || !n->ctrlbuf) {
        snprintf(why, whylen, "out of memory for packet buffers");
        return false;
    }
    return true;
}

bool vnet_open(struct vnet *n, uint32_t index, unsigned pairs, char *why, size_t whylen)
{
    memset(n, 0, sizeof(*n));
    n->pairs = pairs == 2 ? 2 : 1;
    if (!virtio_find(VIRTIO_ID_NET, index, &n->vd, why, whylen))
        return false;
    uint64_t want = BIT(VIRTIO_F_EVENT_IDX) | BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
                    BIT(VIRTIO_NET_F_MRG_RXBUF);
    if (n->pairs == 2)
        want |= BIT(VIRTIO_NET_F_MQ) | BIT(VIRTIO_NET_F_CTRL_VQ);
    if (!virtio_negotiate(&n->vd, want, BIT(VIRTIO_F_VERSION_1), why, whylen))
        return false;
    if (!virtio_queue(&n->vd, 0, &n->rx, 256, false, why, whylen) ||
        !virtio_queue(&n->vd, 1, &n->tx, 256, false, why, whylen))
        return false;
    if (n->pairs == 2 && !open_pair1(n, why, whylen))
        return false;
    n->rxbufs = dma_alloc((uint64_t)n->rx.size * VNET_BUF, 4096);
    n->txbufs = dma_alloc((uint64_t)n->tx.size * VNET_BUF, 4096);
    if (!n->rxbufs || !n->txbufs) {
        snprintf(why, whylen, "out of memory for packet buffers");
        return false;
    }
    for (uint16_t i = 0; i < n->tx.size; i++)
        n->tx_free[n->ntx_free++] = i;
    n->cfg_gen = rd8(n->vd.common + VCC_CFGGEN);
    if (virtio_has(&n->vd, VIRTIO_NET_F_MAC))
        for (int i = 0; i < 6; i++)
            n->mac[i] = virtio_cfg8(&n->vd, (uint32_t)i);
    else
        memcpy(n->mac, "\x02\x00\x00\x48\x52\x44", 6); /* locally administered */
    n->status = virtio_has(&n->vd, VIRTIO_NET_F_STATUS) ? virtio_cfg16(&n->vd, 6) : VIRTIO_NET_S_LINK_UP;
    fill_rx(&n->rx, n->rxbufs, 0);
    if (n->pairs == 2)
        fill_rx(&n->rx1, n->rxbufs1, VNET_RX1);
    virtio_driver_ok(&n->vd);
    vq_kick(&n->rx);
    if (n->pairs == 2) {
        vq_kick(&n->rx1);
        if (!set_pairs(n, 2, why, whylen))
            return false;
    }
    return true;
}

bool vnet_identity(struct vnet *n)
{
    uint8_t gen = rd8(n->vd.common + VCC_CFGGEN), mac[6];
    bool changed = false;

    if (gen == n->cfg_gen || !virtio_has(&n->vd, VIRTIO_NET_F_MAC))
        return false;
    do { /* a consistent read: the generation the same before and after */
        n->cfg_gen = gen;
        for (int i = 0; i < 6; i++)
            mac[i] = virtio_cfg8(&n->vd, (uint32_t)i);
        if (virtio_has(&n->vd, VIRTIO_NET_F_STATUS))
            n->status = virtio_cfg16(&n->vd, 6);
        gen = rd8(n->vd.common + VCC_CFGGEN);
    } while (gen != n->cfg_gen);
    changed = memcmp(mac, n->mac, 6) != 0;
    memcpy(n->mac, mac, 6);
    return changed;
}

uint16_t vnet_tx_reap(struct vnet *n)
{
    uint64_t tok;
    uint32_t len;
    bool bad;
    for (unsigned p = 0; p < n->pairs; p++) {
        struct virtq *vq = p ? &n->tx1 : &n->tx;
        while (vq_get(vq, &tok, &len, &bad) && tok < VQ_MAX_SIZE)
            n->tx_free[n->ntx_free++] = (uint16_t)tok;
        if (bad)
            n->bad_rx++;
    }
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
    struct virtq *vq = n->pairs == 2 && (n->tx_next++ & 1) ? &n->tx1 : &n->tx;
    if (!vq_add(vq, &s, 1, b)) {
        n->tx_free[n->ntx_free++] = b;
        return false;
    }
    return true;
}

void vnet_tx_kick(struct vnet *n)
{
    vq_kick(&n->tx);
    if (n->pairs == 2)
        vq_kick(&n->tx1);
}

static const uint8_t *recv_on(struct vnet *n, struct virtq *vq, uint8_t *bufs, uint16_t idflag,
                              uint32_t *len, uint16_t *buf)
{
    uint64_t tok;
    uint32_t l;
    bool bad;
    while (vq_get(vq, &tok, &l, &bad)) {
        if ((tok & VNET_RX1) != idflag || (tok & ~(uint64_t)VNET_RX1) >= vq->size) {
            n->bad_rx++; /* not a buffer of this queue: never give it back */
            continue;
        }
        uint8_t *p = bufs + (tok & ~(uint64_t)VNET_RX1) * VNET_BUF;
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

const uint8_t *vnet_recv(struct vnet *n, uint32_t *len, uint16_t *buf)
{
    const uint8_t *f = recv_on(n, &n->rx, n->rxbufs, 0, len, buf);
    if (!f && n->pairs == 2)
        f = recv_on(n, &n->rx1, n->rxbufs1, VNET_RX1, len, buf);
    return f;
}

void vnet_rx_done(struct vnet *n, uint16_t buf)
{
    bool one = buf & VNET_RX1;
    uint16_t i = buf & (uint16_t)~VNET_RX1;
    struct vq_seg s = { dma_addr((one ? n->rxbufs1 : n->rxbufs) + (uint64_t)i * VNET_BUF), VNET_BUF, true };
    vq_add(one ? &n->rx1 : &n->rx, &s, 1, buf);
    n->rx_pending++;
}

void vnet_rx_kick(struct vnet *n)
{
    if (n->rx_pending) {
        vq_kick(&n->rx);
        if (n->pairs == 2)
            vq_kick(&n->rx1);
        n->rx_pending = 0;
    }
}
