/*
 * virtio-net driver for the probe (virtio spec 5.1): one receive and one
 * transmit queue, no offloads. Every buffer is one descriptor holding the
 * 12-byte virtio_net_hdr followed by the frame (VERSION_1 implies any
 * layout). Receive buffers are 2 KiB, enough for a 1514-byte frame without
 * mergeable buffers; VIRTIO_NET_F_MRG_RXBUF is still negotiated when
 * offered (num_buffers must then be 1).
 */
#ifndef HERD_PROBE_VIRTIO_NET_H
#define HERD_PROBE_VIRTIO_NET_H

#include "virtio_pci.h"

#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define VNET_HDR_LEN 12
#define VNET_BUF 2048
#define VNET_FRAME_MAX 1514

struct vnet {
    struct virtio_dev vd;
    struct virtq rx, tx;
    uint8_t mac[6];
    uint16_t status;
    uint8_t *rxbufs, *txbufs;
    uint16_t tx_free[VQ_MAX_SIZE], ntx_free;
    uint16_t rx_pending; /* buffers re-added since the last rx kick */
    uint64_t bad_rx;     /* used entries with impossible lengths/ids */
};

bool vnet_open(struct vnet *n, uint32_t index, char *why, size_t whylen);

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
