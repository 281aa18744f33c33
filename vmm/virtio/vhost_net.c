/*
 * vhost-net control: a thin layer over the VHOST_* ioctls. The rings are
 * the very ones the userspace path would serve (same guest addresses, same
 * eventfds), so switching paths changes who reads them, nothing else.
 */
#include "herd/vhost_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "herd/virtio_pci.h"

/* Ring-layout features vhost-net must be told about; the offload bits are
 * the tap's business (TUNSETOFFLOAD) and the rest the transport's. */
#define VHOST_RING_BITS ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) | \
                         (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << 15 /* MRG_RXBUF */))

int vhost_net_ring_features(uint64_t guest_features, uint64_t vhost_features, uint64_t *out)
{
    uint64_t need = guest_features & VHOST_RING_BITS;

    if (need & ~vhost_features)
        return -ENOTSUP;
    *out = need;
    return 0;
}

int vhost_net_open(struct vhost_net *v, struct herd_err *err)
{
    v->fd = open(VHOST_NET_DEVICE, O_RDWR | O_CLOEXEC);
    if (v->fd < 0) {
        int rc = -errno;

        herd_err_set(err, rc, "", "%s: %s", VHOST_NET_DEVICE, strerror(errno));
        return rc;
    }
    if (ioctl(v->fd, VHOST_SET_OWNER) < 0 || ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0) {
        int rc = -errno;

        herd_err_set(err, rc, "", "%s: VHOST_SET_OWNER/GET_FEATURES: %s", VHOST_NET_DEVICE,
                     strerror(errno));
        vhost_net_close(v);
        return rc;
    }
    return 0;
}

void vhost_net_close(struct vhost_net *v)
{
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
}

int vhost_net_set_memory(struct vhost_net *v, const struct guest_mem *mem)
{
    struct vhost_memory *m = calloc(1, sizeof(*m) + mem->nr_slots * sizeof(m->regions[0]));
    int rc = 0;

    if (!m)
        return -ENOMEM;
    m->nregions = mem->nr_slots;
    for (unsigned i = 0; i < mem->nr_slots; i++) {
        m->regions[i].guest_phys_addr = mem->slots[i].gpa;
        m->regions[i].memory_size = mem->slots[i].size;
        m->regions[i].userspace_addr = (uintptr_t)mem->slots[i].host;
    }
    if (ioctl(v->fd, VHOST_SET_MEM_TABLE, m) < 0)
        rc = -errno;
    free(m);
    return rc;
}

int vhost_net_set_features(struct vhost_net *v, uint64_t features)
{
    return ioctl(v->fd, VHOST_SET_FEATURES, &features) < 0 ? -errno : 0;
}

int vhost_net_start_queue(struct vhost_net *v, unsigned q, const struct virtq *vq, int kick_fd,
                          int call_fd, int tap_fd)
{
    struct vhost_vring_state num = {.index = q, .num = vq->size};
    struct vhost_vring_state base = {.index = q, .num = vq->last_avail};
    struct vhost_vring_addr addr = {
        .index = q,
        .desc_user_addr = (uintptr_t)vq->desc,
        .avail_user_addr = (uintptr_t)vq->avail,
        .used_user_addr = (uintptr_t)vq->used,
    };
    struct vhost_vring_file kick = {.index = q, .fd = kick_fd};
    struct vhost_vring_file call = {.index = q, .fd = call_fd};
    struct vhost_vring_file backend = {.index = q, .fd = tap_fd};

    if (ioctl(v->fd, VHOST_SET_VRING_NUM, &num) < 0 ||
        ioctl(v->fd, VHOST_SET_VRING_BASE, &base) < 0 ||
        ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
        ioctl(v->fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
        ioctl(v->fd, VHOST_SET_VRING_CALL, &call) < 0 ||
        ioctl(v->fd, VHOST_NET_SET_BACKEND, &backend) < 0)
        return -errno;
    return 0;
}

int vhost_net_stop_queue(struct vhost_net *v, unsigned q)
{
    struct vhost_vring_file backend = {.index = q, .fd = -1};

    return ioctl(v->fd, VHOST_NET_SET_BACKEND, &backend) < 0 ? -errno : 0;
}
