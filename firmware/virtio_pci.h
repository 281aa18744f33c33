/*
 * virtio 1.x over PCI (modern transport, virtio spec 4.1): finds a device
 * by type (modern ID 0x1040+type, or transitional 0x1000-0x103f with the
 * type in the subsystem ID), locates the common/notify/ISR/device config
 * capabilities in any BARs at any offsets, maps those BARs, and runs the
 * initialization sequence (reset, ACKNOWLEDGE, DRIVER, features,
 * FEATURES_OK, queues, DRIVER_OK). No interrupts: MSI-X vectors are left
 * at VIRTIO_MSI_NO_VECTOR and the queues are polled (test "msix" maps
 * vectors itself with virtio_map_vector).
 */
#ifndef HERD_PROBE_VIRTIO_PCI_H
#define HERD_PROBE_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci.h"
#include "virtqueue.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34
#define BIT(n) (1ULL << (n))

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* common configuration structure offsets */
#define VCC_DFSELECT 0
#define VCC_DF 4
#define VCC_GFSELECT 8
#define VCC_GF 12
#define VCC_MSIX 16
#define VCC_NUMQ 18
#define VCC_STATUS 20
#define VCC_CFGGEN 21
#define VCC_Q_SELECT 22
#define VCC_Q_SIZE 24
#define VCC_Q_MSIX 26
#define VCC_Q_ENABLE 28
#define VCC_Q_NOFF 30
#define VCC_Q_DESC 32
#define VCC_Q_AVAIL 40
#define VCC_Q_USED 48

struct virtio_dev {
    const struct pci_dev *pci;
    uint16_t type;
    bool transitional;
    uint64_t common, notify, isr, devcfg; /* physical addresses */
    uint32_t notify_mult, devcfg_len;
    uint8_t bar_common, bar_notify; /* for the report */
    uint64_t offered, negotiated;
    uint16_t num_queues;
};

/* The index-th virtio device of `type` on the PCI bus (pci_init first).
 * Maps its BARs and checks its capabilities. */
bool virtio_find(uint16_t type, uint32_t index, struct virtio_dev *vd, char *why, size_t whylen);

/* Reset (waits, bounded, for status 0), ACKNOWLEDGE, DRIVER, read the
 * offered features, write offered & wanted, FEATURES_OK and check it
 * stuck. `required` bits missing from the offer fail. */
bool virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required, char *why, size_t whylen);

/* Size (min of the device maximum and max_size, power of two), allocate
 * and enable queue `index`; EVENT_IDX/INDIRECT follow the negotiation. */
bool virtio_queue(struct virtio_dev *vd, uint16_t index, struct virtq *vq, uint16_t max_size, bool indirect,
                  char *why, size_t whylen);

/* Map the configuration-change event (queue == VIRTIO_MAP_CONFIG) or queue
 * `queue` to MSI-X table entry `vector` (VIRTIO_MSI_NO_VECTOR unmaps) and
 * return what the device reads back: `vector`, or VIRTIO_MSI_NO_VECTOR if
 * it could not allocate it (virtio 4.1.5.1.2). */
#define VIRTIO_MAP_CONFIG 0xffff
uint16_t virtio_map_vector(struct virtio_dev *vd, uint16_t queue, uint16_t vector);

void virtio_driver_ok(struct virtio_dev *vd);
uint8_t virtio_status(const struct virtio_dev *vd);
void virtio_set_status(const struct virtio_dev *vd, uint8_t s);
/* Write 0 and wait (bounded) until the device reads back 0. */
bool virtio_reset(const struct virtio_dev *vd);

/* Device configuration space reads (64-bit: config_generation retry). */
uint8_t virtio_cfg8(const struct virtio_dev *vd, uint32_t off);
uint16_t virtio_cfg16(const struct virtio_dev *vd, uint32_t off);
uint32_t virtio_cfg32(const struct virtio_dev *vd, uint32_t off);
uint64_t virtio_cfg64(const struct virtio_dev *vd, uint32_t off);

static inline bool virtio_has(const struct virtio_dev *vd, int bit) { return (vd->negotiated >> bit) & 1; }

#endif
