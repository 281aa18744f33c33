/*
 * virtio-net device, userspace path. TX: each chain is header + frame in
 * device-readable buffers; the frame is checked by netpath and written to
 * the tap with one writev (the tap's vnet header is the virtio header). RX:
 * a frame is read from the tap into a bounce buffer, checked, then spread
 * over as many chains as it needs (mergeable buffers) or one chain.
 */
#include "herd/virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "herd/iov.h"
#include "herd/log.h"
#include "herd/netdev.h"
#include "herd/netpath.h"
#include "herd/ratelimit.h"
#include "herd/vhost_net.h"

#define RXQ 0
#define TXQ 1
#define FRAME_MAX (65536 + VIRTIO_NET_HDR_LEN)

enum rx_state {
    RX_EMPTY,     /* nothing in hand */
    RX_READY,     /* a frame passed netpath and waits for guest buffers */
    RX_THROTTLED, /* a frame waits for the rate limiter (timer armed) */
};

struct virtio_net {
    struct virtio_dev dev;
    enum net_path data_path;
    struct vhost_net vhost;
    bool vhost_running;
    /* vhost signals these; the I/O thread forwards each to its queue's
     * current MSI-X vector, so masks, pending bits and vector changes are
     * honoured exactly as on the userspace path. */
    int vhost_call_fd[2];
    struct netdev_tap tap;
    struct netpath path;
    uint8_t mac[6];
    bool mrg_rxbuf;
    bool rx_armed;        /* tap EPOLLIN is watched */
    enum rx_state rx_state;
    size_t rx_len;        /* bytes in rx_buf, virtio header included */
    int timer_fd;         /* rate-limit wake-up */
    uint8_t rx_buf[FRAME_MAX];
    uint8_t tx_buf[FRAME_MAX];
    uint16_t rx_heads[VIRTIO_QUEUE_SIZE];
    uint32_t rx_lens[VIRTIO_QUEUE_SIZE];
    struct virtq_chain chain;    /* TX chain, or RX chains after the first */
    struct virtq_chain rx_first; /* first RX chain: gets num_buffers */
};

static struct virtio_net *net_of(struct virtio_dev *dev)
{
    return dev->backend;
}

int virtio_net_choose_path(enum vhost_mode mode, bool vhost_available, enum net_path *path,
                           struct herd_err *err)
{
    if (mode == VHOST_ON && !vhost_available)
        return herd_err_set(err, -ENODEV, "",
                            "vhost=on but /dev/vhost-net is not available on this host");
    *path = mode != VHOST_OFF && vhost_available ? NET_PATH_VHOST : NET_PATH_USERSPACE;
    return 0;
}

uint64_t virtio_net_features(enum net_path path)
{
    uint64_t f = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
                 (1ULL << VIRTIO_NET_F_MRG_RXBUF) | (1ULL << VIRTIO_NET_F_CSUM) |
                 (1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |
                 (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
                 (1ULL << VIRTIO_NET_F_GUEST_TSO6);

    (void)path; /* vhost-net supports the same set */
    return f;
}

unsigned virtio_net_tap_offloads(uint64_t gf)
{
    unsigned off = 0;

    if (!(gf & (1ULL << VIRTIO_NET_F_GUEST_CSUM)))
        return 0; /* TSO without checksum offload is meaningless */
    off |= TUN_F_CSUM;
    if (gf & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
        off |= TUN_F_TSO4;
    if (gf & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
        off |= TUN_F_TSO6;
    return off;
}

/* ---- TX ------------------------------------------------------------------ */

static void arm_timer(struct virtio_net *net, uint64_t wait_ns)
{
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(wait_ns / 1000000000ULL),
                                          .tv_nsec = (long)(wait_ns % 1000000000ULL)}};

    if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
        its.it_value.tv_nsec = 1;
    timerfd_settime(net->timer_fd, 0, &its, NULL);
}

/* Returns false to stop processing TX for now (rate limit). The frame is
 * copied out of guest memory once: the filter then judges exactly the bytes
 * that go to the tap, which the guest can no longer change underneath. */
static bool tx_one(struct virtio_net *net, const struct virtq_chain *c)
{
    struct virtq *vq = &net->dev.queues[TXQ].vq;
    size_t total = c->out_len;
    uint64_t wait = 0;

    if (total < VIRTIO_NET_HDR_LEN || total > sizeof(net->tx_buf)) {
        log_debug("virtio-net: dropping a %zu-byte TX chain", total);
        virtq_push(vq, c->head, 0);
        return true;
    }
    iov_to_buf(c->out, c->nr_out, 0, net->tx_buf, total);
    switch (netpath_tx(&net->path, net->tx_buf + VIRTIO_NET_HDR_LEN, total - VIRTIO_NET_HDR_LEN,
                       ratelimit_now_ns(), &wait)) {
    case NETPATH_WAIT:
        virtq_unpop(vq);
        arm_timer(net, wait);
        return false;
    case NETPATH_DROP:
        break;
    case NETPATH_PASS:
        if (write(net->tap.fds[0], net->tx_buf, total) < 0 && errno != EAGAIN)
            log_debug("virtio-net: tap write: %s", strerror(errno));
        break;
    }
    virtq_push(vq, c->head, 0);
    return true;
}

static unsigned process_tx(struct virtio_net *net)
{
    struct virtio_dev *dev = &net->dev;
    struct virtq *vq = &dev->queues[TXQ].vq;
    unsigned taken = 0;
    struct herd_err why;
    int rc;

    while ((rc = virtq_pop(vq, &net->chain, &why)) > 0) {
        if (!tx_one(net, &net->chain))
            break; /* rate limited: the timer resumes */
        taken++;
    }
    if (rc < 0)
        virtio_dev_fail(dev, TXQ, why.msg);
    if (taken)
        virtio_dev_signal_queue(dev, TXQ);
    return taken;
}

/* ---- RX ------------------------------------------------------------------ */

static void set_rx_armed(struct virtio_net *net, bool on)
{
    if (net->rx_armed == on)
        return;
    if (virtio_dev_rewatch_fd(&net->dev, net->tap.fds[0], on ? EPOLLIN : 0) == 0)
        net->rx_armed = on;
}

enum deliver_result { DELIVERED, NO_BUFFERS, DROPPED, BROKEN };

/* Copies the frame in rx_buf into as many chains as it needs (one without
 * mergeable buffers) and returns them. */
static enum deliver_result deliver(struct virtio_net *net)
{
    struct virtq *vq = &net->dev.queues[RXQ].vq;
    unsigned max = net->mrg_rxbuf ? vq->size : 1, used = 0;
    size_t len = net->rx_len, off = 0;
    struct herd_err why;
    uint16_t nbuf;

    while (off < len) {
        struct virtq_chain *c = used == 0 ? &net->rx_first : &net->chain;
        size_t wrote;
        int rc;

        if (used == max) {
            while (used--)
                virtq_unpop(vq);
            return DROPPED; /* the guest's buffers cannot hold this frame */
        }
        rc = virtq_pop(vq, c, &why);
        if (rc < 0) {
            virtio_dev_fail(&net->dev, RXQ, why.msg);
            return BROKEN;
        }
        if (rc == 0) {
            while (used--)
                virtq_unpop(vq);
            return NO_BUFFERS;
        }
        wrote = iov_from_buf(c->in, c->nr_in, 0, net->rx_buf + off, len - off);
        net->rx_heads[used] = c->head;
        net->rx_lens[used] = (uint32_t)wrote;
        used++;
        off += wrote;
    }
    nbuf = (uint16_t)used;
    iov_from_buf(net->rx_first.in, net->rx_first.nr_in, 10, &nbuf, sizeof(nbuf));
    for (unsigned i = 0; i < used; i++)
        virtq_push(vq, net->rx_heads[i], net->rx_lens[i]);
    return DELIVERED;
}

/* Reads the next frame from the tap and asks netpath about it. */
static void fetch_frame(struct virtio_net *net)
{
    ssize_t n = read(net->tap.fds[0], net->rx_buf, sizeof(net->rx_buf));

    if (n <= VIRTIO_NET_HDR_LEN)
        return; /* EAGAIN (or a runt): the tap is drained */
    memset(net->rx_buf + 10, 0, 2); /* num_buffers is ours to fill */
    net->rx_len = (size_t)n;
    net->rx_state = RX_THROTTLED; /* judged just below */
}

/* Returns the frames delivered to the guest. */
static unsigned process_rx(struct virtio_net *net)
{
    struct virtio_dev *dev = &net->dev;
    unsigned delivered = 0;

    if (!virtio_queue_live(dev, RXQ)) {
        set_rx_armed(net, false); /* DRIVER_OK's kick re-arms it */
        return 0;
    }
    for (;;) {
        uint64_t wait = 0;

        if (net->rx_state == RX_EMPTY) {
            fetch_frame(net);
            if (net->rx_state == RX_EMPTY) {
                set_rx_armed(net, true);
                break;
            }
        }
        if (net->rx_state == RX_THROTTLED) {
            enum netpath_result r = netpath_rx(&net->path, net->rx_buf + VIRTIO_NET_HDR_LEN,
                                               net->rx_len - VIRTIO_NET_HDR_LEN,
                                               ratelimit_now_ns(), &wait);
            if (r == NETPATH_WAIT) {
                arm_timer(net, wait);
                set_rx_armed(net, false);
                break;
            }
            net->rx_state = r == NETPATH_PASS ? RX_READY : RX_EMPTY;
            continue;
        }
        switch (deliver(net)) {
        case NO_BUFFERS:
            /* Ask for a kick when buffers come (with EVENT_IDX the guest
             * only kicks past avail_event); recheck the race. */
            if (virtq_enable_notify(&dev->queues[RXQ].vq))
                continue;
            set_rx_armed(net, false); /* until the guest kicks the RX queue */
            goto out;
        case BROKEN:
            goto out;
        case DELIVERED:
            delivered++;
            /* fall through */
        case DROPPED:
            net->rx_state = RX_EMPTY;
            break;
        }
    }
out:
    if (delivered)
        virtio_dev_signal_queue(dev, RXQ);
    return delivered;
}

/* ---- device ops ------------------------------------------------------------ */

static unsigned queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_net *net = net_of(dev);

    if (q == TXQ)
        return process_tx(net);
    process_rx(net);
    return 0;
}

/* While the transport polls TX: frames waiting on the tap go to the guest
 * now, not when the I/O thread next sleeps in epoll (up to the whole
 * polling window later). One read() a round when the tap is empty. */
static unsigned net_poll(struct virtio_dev *dev)
{
    struct virtio_net *net = net_of(dev);

    if (net->vhost_running || !net->rx_armed)
        return 0; /* the kernel serves the rings, or RX waits for guest buffers */
    return process_rx(net);
}

static void tap_ready(struct virtio_dev *dev, int fd, uint32_t events)
{
    pthread_mutex_lock(&dev->lock);
    process_rx(net_of(dev));
    pthread_mutex_unlock(&dev->lock);
}

static void timer_fired(struct virtio_dev *dev, int fd, uint32_t events)
{
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0)
        return;
    pthread_mutex_lock(&dev->lock);
    if (virtio_queue_live(dev, TXQ))
        process_tx(net_of(dev));
    process_rx(net_of(dev));
    pthread_mutex_unlock(&dev->lock);
}

static void features_ok(struct virtio_dev *dev)
{
    struct virtio_net *net = net_of(dev);
    unsigned offloads = virtio_net_tap_offloads(dev->driver_features);

    net->mrg_rxbuf = virtio_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
    if (ioctl(net->tap.fds[0], TUNSETOFFLOAD, offloads) < 0)
        log_warn_guest("virtio-net: TUNSETOFFLOAD %#x on %s: %s", offloads, net->tap.name,
                 strerror(errno));
}

/* ---- vhost-net: the kernel serves the rings --------------------------------- */

static void vhost_call(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_net *net = net_of(dev);
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0)
        return;
    pthread_mutex_lock(&dev->lock);
    for (unsigned q = 0; q < 2; q++)
        if (fd == net->vhost_call_fd[q])
            virtio_dev_interrupt_queue(dev, q);
    pthread_mutex_unlock(&dev->lock);
}

static int vhost_start(struct virtio_net *net)
{
    struct virtio_dev *dev = &net->dev;
    uint64_t features;
    int rc;

    rc = vhost_net_ring_features(dev->driver_features, net->vhost.features, &features);
    if (!rc)
        rc = vhost_net_set_memory(&net->vhost, dev->mem);
    if (!rc)
        rc = vhost_net_set_features(&net->vhost, features);
    for (unsigned q = 0; q < 2 && !rc; q++)
        rc = vhost_net_start_queue(&net->vhost, q, &dev->queues[q].vq, dev->queues[q].kick_fd,
                                   net->vhost_call_fd[q], net->tap.fds[0]);
    if (rc) {
        for (unsigned q = 0; q < 2; q++)
            vhost_net_stop_queue(&net->vhost, q);
        return rc;
    }
    /* From here on the kernel reads the kicks and the tap. */
    virtio_dev_watch_queue(dev, RXQ, false);
    virtio_dev_watch_queue(dev, TXQ, false);
    set_rx_armed(net, false);
    net->vhost_running = true;
    return 0;
}

static void vhost_stop(struct virtio_net *net)
{
    if (!net->vhost_running)
        return;
    for (unsigned q = 0; q < 2; q++)
        vhost_net_stop_queue(&net->vhost, q);
    virtio_dev_watch_queue(&net->dev, RXQ, true);
    virtio_dev_watch_queue(&net->dev, TXQ, true);
    net->vhost_running = false;
}

static void driver_ok(struct virtio_dev *dev)
{
    struct virtio_net *net = net_of(dev);
    int rc;

    if (net->data_path != NET_PATH_VHOST)
        return;
    rc = vhost_start(net);
    if (rc)
        log_warn_guest("virtio-net %s: vhost-net start failed (%s); serving in userspace",
                 net->tap.name, strerror(-rc));
}

static void net_reset(struct virtio_dev *dev)
{
    struct virtio_net *net = net_of(dev);

    vhost_stop(net);
    net->rx_state = RX_EMPTY;
    net->mrg_rxbuf = false;
    set_rx_armed(net, true);
}

static void config_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    struct virtio_net *net = net_of(dev);
    uint8_t cfg[VIRTIO_NET_CONFIG_SIZE] = {0};

    memcpy(cfg, net->mac, 6);
    cfg[6] = VIRTIO_NET_S_LINK_UP;
    cfg[8] = 1; /* max_virtqueue_pairs */
    memcpy(data, cfg + off, len);
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .class_code = 0x020000,
    .config_size = VIRTIO_NET_CONFIG_SIZE,
    .config_read = config_read,
    .features_ok = features_ok,
    .driver_ok = driver_ok,
    .queue_notify = queue_notify,
    .polled_queues = 1u << TXQ,
    /* No spinning: two probes exchanging frames on the 2-core PVM host (four
     * threads wanting a core) made 32k frames/s with the 50 us window, 37k
     * without; a guest's TX kick is one exit per batch, not per frame. */
    .poll_ns = VIRTIO_POLL_NONE,
    .poll = net_poll,
    .reset = net_reset,
};

/* 52:54:00-style locally administered MAC from the NIC index and pid when
 * the user gave none; herdd passes deterministic ones. */
static void default_mac(uint8_t mac[6], unsigned index)
{
    unsigned pid = (unsigned)getpid();

    mac[0] = 0x0e;
    mac[1] = 0x68; /* 'h' */
    mac[2] = (uint8_t)(pid >> 16);
    mac[3] = (uint8_t)(pid >> 8);
    mac[4] = (uint8_t)pid;
    mac[5] = (uint8_t)index;
}

int virtio_net_create(const struct nic_config *cfg, unsigned index, struct kvm *kvm,
                      const struct guest_mem *mem, struct pci_bus *pci, struct bus *mmio,
                      struct virtio_net **out, struct herd_err *err)
{
    struct virtio_net *net = calloc(1, sizeof(*net));
    enum net_path path = NET_PATH_USERSPACE;
    int rc;

    *out = NULL;
    if (!net)
        return -ENOMEM;
    net->timer_fd = net->vhost.fd = -1;
    net->vhost_call_fd[0] = net->vhost_call_fd[1] = -1;
    for (unsigned i = 0; i < NETDEV_TAP_MAX_QUEUES; i++)
        net->tap.fds[i] = -1;
    rc = virtio_net_choose_path(cfg->vhost, access(VHOST_NET_DEVICE, R_OK | W_OK) == 0, &path,
                                err);
    if (rc) {
        free(net);
        return rc;
    }
    if (path == NET_PATH_VHOST) {
        struct herd_err why;

        rc = vhost_net_open(&net->vhost, &why);
        if (rc && cfg->vhost == VHOST_ON) {
            herd_err_set(err, rc, "", "net tap=%s: vhost=on: %s", cfg->tap, why.msg);
            free(net);
            return rc;
        }
        if (rc) {
            log_info("virtio-net %s: %s; using the userspace path", cfg->tap, why.msg);
            path = NET_PATH_USERSPACE;
        }
        for (unsigned q = 0; q < 2 && path == NET_PATH_VHOST; q++)
            net->vhost_call_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    net->data_path = path;
    rc = netdev_tap_open(cfg->tap, 1, VIRTIO_NET_HDR_LEN, &net->tap);
    if (rc) {
        herd_err_set(err, rc, "", "net tap=%s: %s", cfg->tap, strerror(-rc));
        free(net);
        return rc;
    }
    if (cfg->mac_set)
        memcpy(net->mac, cfg->mac, 6);
    else
        default_mac(net->mac, index);
    netpath_init(&net->path, net->mac, ratelimit_now_ns());
    net->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    rc = virtio_dev_init(&net->dev, &net_ops, net, virtio_net_features(path), 2, kvm, mem, pci,
                         mmio, err);
    /* The tap must be extra fd slot 0 (set_rx_armed relies on it). */
    if (!rc)
        rc = virtio_dev_watch_fd(&net->dev, net->tap.fds[0], EPOLLIN, tap_ready);
    if (!rc)
        rc = virtio_dev_watch_fd(&net->dev, net->timer_fd, EPOLLIN, timer_fired);
    for (unsigned q = 0; q < 2 && !rc; q++)
        if (net->vhost_call_fd[q] >= 0)
            rc = virtio_dev_watch_fd(&net->dev, net->vhost_call_fd[q], EPOLLIN, vhost_call);
    if (rc) {
        if (err && !err->msg[0])
            herd_err_set(err, rc, "", "virtio-net: %s", strerror(-rc));
        virtio_net_destroy(net);
        return rc;
    }
    net->rx_armed = true;
    *out = net;
    return 0;
}

int virtio_net_start(struct virtio_net *net)
{
    return virtio_dev_start(&net->dev);
}

void virtio_net_destroy(struct virtio_net *net)
{
    if (!net)
        return;
    virtio_dev_destroy(&net->dev);
    if (net->vhost.fd >= 0) {
        for (unsigned q = 0; q < 2; q++)
            vhost_net_stop_queue(&net->vhost, q);
        vhost_net_close(&net->vhost);
    }
    for (unsigned q = 0; q < 2; q++)
        if (net->vhost_call_fd[q] >= 0)
            close(net->vhost_call_fd[q]);
    netdev_tap_close(&net->tap);
    if (net->timer_fd >= 0)
        close(net->timer_fd);
    free(net);
}

void virtio_net_info(const struct virtio_net *net, uint8_t mac[6], enum net_path *path,
                     struct netstats *stats)
{
    memcpy(mac, net->mac, 6);
    *path = net->data_path;
    netstats_snapshot(&net->path.stats, stats);
}
