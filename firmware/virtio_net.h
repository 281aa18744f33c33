/*
 * virtio-net driver for the probe (virtio spec 5.1): one receive and one
 * transmit queue, no offloads. Every buffer is one descriptor holding the
 * 12-byte virtio_net_hdr followed by the frame (VERSION_1 implies any
 * layout). Receive buffers are 2 KiB, enough for a 1514-byte frame without
 * mergeable buffers; VIRTIO_NET_F_MRG_RXBUF is still negotiated when
 * offered (num_buffers must then be 1).
 *
 * With pairs = 2 (probe.net.queues=2) it negotiates VIRTIO_NET_F_MQ and
 * CTRL_VQ, sets up the second pair (rx1/tx1) and the control queue, and
 * tells the device through VIRTIO_NET_CTRL_MQ to use both; frames then go
 * out on the two TX queues in turn and are taken from both RX queues.
 */
#ifndef HERD_PROBE_VIRTIO_NET_H
#define HERD_PROBE_VIRTIO_NET_H

#include "virtio_pci.h"

#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VNET_RX1 0x8000u /* buffer ids of rx1 */

#define VNET_HDR_LEN 12
#define VNET_BUF 2048
#define VNET_FRAME_MAX 1514

struct vnet {
    struct virtio_dev vd;
    struct virtq rx, tx;    /* pair 0 */
    struct virtq rx1, tx1;  /* pair 1 (pairs == 2) */
    struct virtq ctrl;
    unsigned pairs;
    unsigned tx_next;       /* pair the next frame goes out on */
    uint8_t *rxbufs1, *ctrlbuf;
    uint8_t mac[6];
    uint8_t cfg_gen;        /* config generation when mac/status were read */
    uint16_t status;
    uint8_t *rxbufs, *txbufs;
    uint16_t tx_free[VQ_MAX_SIZE], ntx_free;
    uint16_t rx_pending; /* buffers re-added since the last rx kick */
    uint64_t bad_rx;     /* used entries with impossible lengths/ids */
};

/* pairs: 1, or 2 (the device must offer VIRTIO_NET_F_MQ with >= 2 pairs). */
bool vnet_open(struct vnet *n, uint32_t index, unsigned pairs, char *why, size_t whylen);

/* Re-reads MAC and link status if the device's configuration changed since
 * they were read (a restored clone is told its new MAC this way); true
 * when the MAC changed. One MMIO read when nothing changed. */
bool vnet_identity(struct vnet *n);

/* One control-queue command (pairs == 2 only): LEN bytes out, the device's
 * ack byte back (0 OK, 1 error). false: no answer within 1 s. */
bool vnet_ctrl(struct vnet *n, const uint8_t *cmd, uint32_t len, uint8_t *ack, char *why, size_t whylen);

/* Queue a frame (copied; len <= VNET_FRAME_MAX). false if every transmit
 * buffer is still owned by the device. Call vnet_tx_kick to send. */
bool vnet_send(struct vnet *n, const void *frame, uint32_t len);
void vnet_tx_kick(struct vnet *n);
/* Reclaim transmitted buffers; returns how many are free. */
uint16_t vnet_tx_reap(struct vnet *n);

/* Next received frame (pointer into the probe's buffer, valid until
 * vnet_rx_done), or NULL. */
const uint8_t *vnet_recv(struct vnet *n, uint32_t *len, uint16_t *buf);
/* Give the buffer back to the device (batched; kicked by vnet_rx_kick). */
void vnet_rx_done(struct vnet *n, uint16_t buf);
void vnet_rx_kick(struct vnet *n);

#endif
