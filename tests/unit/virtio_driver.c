/* Driver-side virtio-pci accesses for unit tests (virtio_driver.h). */
#include "virtio_driver.h"

#include <string.h>

uint64_t vd_le(const uint8_t *b, unsigned len)
{
    uint64_t v = 0;

    for (unsigned i = len; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

void vd_put_le(uint8_t *b, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

uint64_t vd_rd(struct virtio_dev *dev, uint64_t off, unsigned len)
{
    uint8_t b[8];

    memset(b, 0xa5, sizeof(b));
    virtio_bar_read(dev, off, b, len);
    return vd_le(b, len);
}

void vd_wr(struct virtio_dev *dev, uint64_t off, uint64_t v, unsigned len)
{
    uint8_t b[8];

    vd_put_le(b, v, len);
    virtio_bar_write(dev, off, b, len);
}

uint8_t vd_negotiate(struct virtio_dev *dev, uint64_t features)
{
    vd_wr(dev, CC_STATUS, 0, 1);
    vd_wr(dev, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
    vd_wr(dev, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    vd_wr(dev, CC_GFSELECT, 0, 4);
    vd_wr(dev, CC_GF, (uint32_t)features, 4);
    vd_wr(dev, CC_GFSELECT, 1, 4);
    vd_wr(dev, CC_GF, features >> 32, 4);
    vd_wr(dev, CC_STATUS,
          VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
    return (uint8_t)vd_rd(dev, CC_STATUS, 1);
}

void vd_program_queue(struct virtio_dev *dev, unsigned q, uint16_t size, uint64_t desc,
                      uint64_t avail, uint64_t used)
{
    vd_wr(dev, CC_Q_SELECT, q, 2);
    vd_wr(dev, CC_Q_SIZE, size, 2);
    vd_wr(dev, CC_Q_DESC, (uint32_t)desc, 4);
    vd_wr(dev, CC_Q_DESC + 4, desc >> 32, 4);
    vd_wr(dev, CC_Q_DRIVER, avail, 8); /* 64-bit access works too */
    vd_wr(dev, CC_Q_DEVICE, (uint32_t)used, 4);
    vd_wr(dev, CC_Q_DEVICE + 4, used >> 32, 4);
}

void vd_kick(struct virtio_dev *dev, unsigned q)
{
    vd_wr(dev, VIRTIO_NOTIFY_OFF + q * VIRTIO_NOTIFY_MULT, q, 2);
}
