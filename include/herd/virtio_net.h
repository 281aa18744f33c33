/*
 * virtio-net (virtio 1.x 5.1) on a tap: one RX and one TX queue (or, with
 * queues=N, N pairs and the control queue on a multi-queue tap), the tap's
 * vnet header used as the virtio-net header (12 bytes, num_buffers
 * included), checksum/TSO offloads negotiated with the guest and pushed to
 * the tap, mergeable receive buffers, link status. Frames pass netdev's
 * netpath (anti-spoofing, rate limits, counters) on the userspace path.
 * vhost-net is chosen where /dev/vhost-net exists and vhost=auto|on asks for
 * it; on hosts without it (these PVM machines) the userspace path serves.
 */
#ifndef HERD_VIRTIO_NET_H
#define HERD_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "herd/device_config.h"
#include "herd/error.h"
#include "herd/netstats.h"
#include "herd/virtio_pci.h"

#define VIRTIO_ID_NET 1
/* Queue pairs a NIC may have (queues=N): 2N + 1 queues, N tap queues and
 * the timer within the transport's limits. */
#define VIRTIO_NET_MAX_PAIRS 4

#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16
#define VIRTIO_NET_S_LINK_UP    1
#define VIRTIO_NET_HDR_LEN      12
#define VIRTIO_NET_CONFIG_SIZE  12 /* mac, status, max_virtqueue_pairs, mtu */

enum net_path { NET_PATH_USERSPACE, NET_PATH_VHOST };

struct virtio_net;

/* Which data path serves a NIC: vhost=on needs /dev/vhost-net (error
 * otherwise), auto uses it where it exists and falls back to userspace,
 * off is userspace. */
int virtio_net_choose_path(enum vhost_mode mode, bool vhost_available, enum net_path *path,
                           struct herd_err *err);

/* Features offered for a path (vhost-net cannot do what it does not know). */
uint64_t virtio_net_features(enum net_path path);

/* TUNSETOFFLOAD flags for the features the guest accepted. */
unsigned virtio_net_tap_offloads(uint64_t guest_features);

int virtio_net_create(const struct nic_config *cfg, unsigned index, struct kvm *kvm,
                      const struct guest_mem *mem, struct pci_bus *pci, struct bus *mmio,
                      struct virtio_net **out, struct herd_err *err);
int virtio_net_start(struct virtio_net *net);

/* Snapshots: the transport, and the NIC's own state (queue pairs in use,
 * the MAC the guest was given). A NIC served by vhost-net cannot be saved
 * yet (-EOPNOTSUPP). Loading into a NIC with another MAC (a clone) tells
 * the guest through a configuration change (virtio 1.x 4.1.4.3: the
 * generation moves, the config vector fires). */
struct virtio_net_state {
    uint32_t pairs, active_pairs;
    uint8_t mac[6], pad[2];
};
struct virtio_dev *virtio_net_dev(struct virtio_net *net);
int virtio_net_save(struct virtio_net *net, struct virtio_net_state *out);
int virtio_net_load(struct virtio_net *net, const struct virtio_net_state *in);
void virtio_net_destroy(struct virtio_net *net);

/* For the control socket (any thread): the NIC's MAC, its data path and a
 * snapshot of its counters (all zero on the vhost path, which bypasses
 * netpath). */
void virtio_net_info(const struct virtio_net *net, uint8_t mac[6], enum net_path *path,
                     struct netstats *stats);

#endif
