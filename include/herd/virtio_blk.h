/*
 * virtio-blk (virtio 1.x 5.2) on a blockdev image: read, write, flush,
 * get-id, discard, write-zeroes, multi-queue. The image format is always
 * given by the user (--disk ...,format=), never probed. Completions come
 * from blockdev's asynchronous engine (io_uring) in the device's I/O thread
 * and are signalled through the queue's MSI-X irqfd.
 */
#ifndef HERD_VIRTIO_BLK_H
#define HERD_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "herd/device_config.h"
#include "herd/error.h"
#include "herd/virtio_pci.h"

#define VIRTIO_ID_BLOCK 2

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR   512
#define VIRTIO_BLK_CONFIG_SIZE 0x3c

struct virtio_blk;

/* Opens the image and creates the device on the PCI bus. */
int virtio_blk_create(const struct disk_config *cfg, struct kvm *kvm,
                      const struct guest_mem *mem, struct pci_bus *pci, struct bus *mmio,
                      struct virtio_blk **out, struct herd_err *err);
int virtio_blk_start(struct virtio_blk *blk);

/* Its virtio transport (snapshots). */
struct virtio_dev *virtio_blk_dev(struct virtio_blk *blk);
/* Stops the I/O thread, completes or drops in-flight work, closes the image. */
void virtio_blk_destroy(struct virtio_blk *blk);

#endif
