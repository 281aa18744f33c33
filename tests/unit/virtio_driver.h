/*
 * What a guest's virtio-pci driver does, for unit tests: register accesses
 * through virtio_bar_read/virtio_bar_write on the calling thread (so a kick
 * of an inline queue is served before vd_kick returns), feature
 * negotiation and queue setup.
 */
#ifndef HERD_TEST_VIRTIO_DRIVER_H
#define HERD_TEST_VIRTIO_DRIVER_H

#include <stdint.h>

#include "herd/virtio_pci.h"

/* Common configuration layout (virtio 1.x 4.1.4.3). */
enum {
    CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c,
    CC_MSIX_CONFIG = 0x10, CC_NUM_QUEUES = 0x12, CC_STATUS = 0x14, CC_CFG_GEN = 0x15,
    CC_Q_SELECT = 0x16, CC_Q_SIZE = 0x18, CC_Q_MSIX = 0x1a, CC_Q_ENABLE = 0x1c,
    CC_Q_NOTIFY_OFF = 0x1e, CC_Q_DESC = 0x20, CC_Q_DRIVER = 0x28, CC_Q_DEVICE = 0x30,
};

uint64_t vd_le(const uint8_t *b, unsigned len);
void vd_put_le(uint8_t *b, uint64_t v, unsigned len);
uint64_t vd_rd(struct virtio_dev *dev, uint64_t off, unsigned len);
void vd_wr(struct virtio_dev *dev, uint64_t off, uint64_t v, unsigned len);
/* Reset, ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; the status read
 * back. */
uint8_t vd_negotiate(struct virtio_dev *dev, uint64_t features);
/* Queue q's size and ring addresses (not enabled). */
void vd_program_queue(struct virtio_dev *dev, unsigned q, uint16_t size, uint64_t desc,
                      uint64_t avail, uint64_t used);
/* The notify write for queue q. */
void vd_kick(struct virtio_dev *dev, unsigned q);

#endif
