/*
 * vhost-net: the kernel serves a virtio-net device's rings directly from
 * the tap, with the same ioeventfds (kicks) and irqfds (interrupts) the
 * userspace path uses. herd-vmm hands the rings over at DRIVER_OK and takes
 * them back at reset. Only where /dev/vhost-net exists (not on the PVM
 * development hosts, where this path cannot run).
 */
#ifndef HERD_VHOST_NET_H
#define HERD_VHOST_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "herd/error.h"
#include "herd/guest_mem.h"
#include "herd/virtq.h"

#define VHOST_NET_DEVICE "/dev/vhost-net"

struct vhost_net {
    int fd;
    uint64_t features; /* what the kernel's vhost-net offers */
};

/* Opens /dev/vhost-net and claims it (VHOST_SET_OWNER). */
int vhost_net_open(struct vhost_net *v, struct herd_err *err);
void vhost_net_close(struct vhost_net *v);

/* The guest's accepted features that vhost-net must know about (ring and
 * header layout bits); -ENOTSUP if it lacks one the guest relies on. */
int vhost_net_ring_features(uint64_t guest_features, uint64_t vhost_features, uint64_t *out);

/* Gives the kernel the memory map, the features and queue q's ring, kick
 * and call eventfds, and attaches the tap. */
int vhost_net_set_memory(struct vhost_net *v, const struct guest_mem *mem);
int vhost_net_set_features(struct vhost_net *v, uint64_t features);
int vhost_net_start_queue(struct vhost_net *v, unsigned q, const struct virtq *vq, int kick_fd,
                          int call_fd, int tap_fd);
/* Detaches the tap from queue q (the rings go back to userspace). */
int vhost_net_stop_queue(struct vhost_net *v, unsigned q);

#endif
