/*
 * virtio-net device, userspace path. TX: each chain is header + frame in
 * device-readable buffers; the frame is checked by netpath and written to
 * the tap with one writev (the tap's vnet header is the virtio header). RX:
 * a frame is read from the tap into a bounce buffer, checked, then spread
 * over as many chains as it needs (mergeable buffers) or one chain.
 *
 * Multi-queue (queues=N, N > 1): N queue pairs (RX 2p, TX 2p+1) and the
 * control queue (2N) on a multi-queue tap, one tap queue per pair. Until
 * the driver sets the number of pairs in use (VIRTIO_NET_CTRL_MQ), only
 * pair 0 is; frames the kernel steers to the tap queue of a pair not in use
 * go to pair 0's RX queue, so none waits unread. One I/O thread serves the
 * RX and control queues; on the userspace path each TX queue is served by
 * the vCPU thread that kicks it (inline_tx, below).
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

#define RXQ 0 /* pair 0: the only pair on the vhost path */
#define TXQ 1
#define RXQ_OF(p) (2 * (p))
#define TXQ_OF(p) (2 * (p) + 1)
#define FRAME_MAX (65536 + VIRTIO_NET_HDR_LEN)

#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1

enum rx_state {
    RX_EMPTY,     /* nothing in hand */
    RX_READY,     /* a frame passed netpath and waits for guest buffers */
    RX_THROTTLED, /* a frame waits for the rate limiter (timer armed) */
};

/* One tap queue: its descriptor and the frame in hand. */
struct net_rxq {
    int fd;
    bool armed;           /* EPOLLIN is watched */
    enum rx_state state;
    size_t len;           /* bytes in buf, virtio header included */
    uint8_t buf[FRAME_MAX];
};

struct virtio_net {
    struct virtio_dev dev;
    unsigned pairs;        /* queue pairs offered (1..VIRTIO_NET_MAX_PAIRS) */
    unsigned active_pairs; /* in use: 1 until the driver sets more */
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
    int timer_fd;         /* rate-limit wake-up */
    struct net_rxq *rxq[VIRTIO_NET_MAX_PAIRS]; /* rxq[k]: tap queue k */
    uint8_t tx_buf[FRAME_MAX];
    uint16_t rx_heads[VIRTIO_QUEUE_SIZE];
    uint32_t rx_lens[VIRTIO_QUEUE_SIZE];
    struct virtq_chain chain;    /* TX or control chain, or RX chains after the first */
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
static bool tx_one(struct virtio_net *net, unsigned pair, const struct virtq_chain *c)
{
    struct virtq *vq = &net->dev.queues[TXQ_OF(pair)].vq;
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
        if (write(net->tap.fds[pair], net->tx_buf, total) < 0 && errno != EAGAIN)
            log_debug("virtio-net: tap write: %s", strerror(errno));
        break;
    }
    virtq_push(vq, c->head, 0);
    return true;
}

static unsigned process_tx(struct virtio_net *net, unsigned pair)
{
    struct virtio_dev *dev = &net->dev;
    struct virtq *vq = &dev->queues[TXQ_OF(pair)].vq;
    unsigned taken = 0;
    struct herd_err why;
    int rc;

    while ((rc = virtq_pop(vq, &net->chain, &why)) > 0) {
        if (!tx_one(net, pair, &net->chain))
            break; /* rate limited: the timer resumes */
        taken++;
    }
    if (rc < 0)
        virtio_dev_fail(dev, TXQ_OF(pair), why.msg);
    if (taken)
        virtio_dev_signal_queue(dev, TXQ_OF(pair));
    return taken;
}

/* ---- RX ------------------------------------------------------------------ */

static void set_rx_armed(struct virtio_net *net, struct net_rxq *rq, bool on)
{
    if (rq->armed == on)
        return;
    if (virtio_dev_rewatch_fd(&net->dev, rq->fd, on ? EPOLLIN : 0) == 0)
        rq->armed = on;
}

/* The RX queue that frames from tap queue k go to. */
static unsigned rx_target(const struct virtio_net *net, unsigned k)
{
    return RXQ_OF(k < net->active_pairs ? k : 0);
}

enum deliver_result { DELIVERED, NO_BUFFERS, DROPPED, BROKEN };

/* Copies the frame in rq->buf into as many chains of RX queue q as it
 * needs (one without mergeable buffers) and returns them. */
static enum deliver_result deliver(struct virtio_net *net, struct net_rxq *rq, unsigned q)
{
    struct virtq *vq = &net->dev.queues[q].vq;
    unsigned max = net->mrg_rxbuf ? vq->size : 1, used = 0;
    size_t len = rq->len, off = 0;
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
            virtio_dev_fail(&net->dev, q, why.msg);
            return BROKEN;
        }
        if (rc == 0) {
            while (used--)
                virtq_unpop(vq);
            return NO_BUFFERS;
        }
        wrote = iov_from_buf(c->in, c->nr_in, 0, rq->buf + off, len - off);
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

/* Reads the next frame from the tap queue; netpath judges it next. */
static void fetch_frame(struct net_rxq *rq)
{
    ssize_t n = read(rq->fd, rq->buf, sizeof(rq->buf));

    if (n <= VIRTIO_NET_HDR_LEN)
        return; /* EAGAIN (or a runt): the tap queue is drained */
    memset(rq->buf + 10, 0, 2); /* num_buffers is ours to fill */
    rq->len = (size_t)n;
    rq->state = RX_THROTTLED; /* judged just below */
}

/* Moves frames from tap queue k to the guest until the tap is drained, the
 * guest has no buffers or the rate limiter says wait. Returns the frames
 * delivered. */
static unsigned process_rx_fd(struct virtio_net *net, unsigned k)
{
    struct virtio_dev *dev = &net->dev;
    struct net_rxq *rq = net->rxq[k];
    unsigned q = rx_target(net, k), delivered = 0;

    if (!virtio_queue_live(dev, q)) {
        set_rx_armed(net, rq, false); /* DRIVER_OK's kick re-arms it */
        return 0;
    }
    for (;;) {
        uint64_t wait = 0;

        if (rq->state == RX_EMPTY) {
            fetch_frame(rq);
            if (rq->state == RX_EMPTY) {
                set_rx_armed(net, rq, true);
                break;
            }
        }
        if (rq->state == RX_THROTTLED) {
            enum netpath_result r = netpath_rx(&net->path, rq->buf + VIRTIO_NET_HDR_LEN,
                                               rq->len - VIRTIO_NET_HDR_LEN,
                                               ratelimit_now_ns(), &wait);
            if (r == NETPATH_WAIT) {
                arm_timer(net, wait);
                set_rx_armed(net, rq, false);
                break;
            }
            rq->state = r == NETPATH_PASS ? RX_READY : RX_EMPTY;
            continue;
        }
        switch (deliver(net, rq, q)) {
        case NO_BUFFERS:
            /* Ask for a kick when buffers come (with EVENT_IDX the guest
             * only kicks past avail_event); recheck the race. */
            if (virtq_enable_notify(&dev->queues[q].vq))
                continue;
            set_rx_armed(net, rq, false); /* until the guest kicks that RX queue */
            goto out;
        case BROKEN:
            goto out;
        case DELIVERED:
            delivered++;
            /* fall through */
        case DROPPED:
            rq->state = RX_EMPTY;
            break;
        }
    }
out:
    if (delivered)
        virtio_dev_signal_queue(dev, q);
    return delivered;
}

/* Every tap queue whose frames go to RX queue q (q = -1: all of them). */
static unsigned process_rx(struct virtio_net *net, int q)
{
    unsigned delivered = 0;

    for (unsigned k = 0; k < net->pairs; k++)
        if (q < 0 || rx_target(net, k) == (unsigned)q)
            delivered += process_rx_fd(net, k);
    return delivered;
}

/* ---- control queue (multi-queue only) ---------------------------------------- */

/* One command; returns the ack byte. Only VQ_PAIRS_SET is offered (no
 * CTRL_RX, CTRL_VLAN or announce features), so anything else is an error. */
static uint8_t ctrl_command(struct virtio_net *net, const struct virtq_chain *c)
{
    uint8_t cmd[4];
    uint16_t n;

    if (c->out_len != sizeof(cmd) ||
        iov_to_buf(c->out, c->nr_out, 0, cmd, sizeof(cmd)) != sizeof(cmd) ||
        cmd[0] != VIRTIO_NET_CTRL_MQ || cmd[1] != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)
        return VIRTIO_NET_ERR;
    n = (uint16_t)(cmd[2] | cmd[3] << 8);
    if (n < 1 || n > net->pairs)
        return VIRTIO_NET_ERR;
    if (n != net->active_pairs)
        log_info_guest("virtio-net %s: the driver uses %u of %u queue pairs", net->tap.name, n,
                 net->pairs);
    net->active_pairs = n;
    return VIRTIO_NET_OK;
}

static unsigned process_ctrl(struct virtio_net *net)
{
    struct virtio_dev *dev = &net->dev;
    unsigned q = 2 * net->pairs, taken = 0;
    struct virtq *vq = &dev->queues[q].vq;
    struct herd_err why;
    int rc;

    /* Not polled: re-enable kicks (with EVENT_IDX, move avail_event) after
     * each batch and look again for what slipped in meanwhile. */
    do {
        while ((rc = virtq_pop(vq, &net->chain, &why)) > 0) {
            uint8_t ack;

            if (net->chain.in_len < 1) {
                rc = herd_err_set(&why, -EINVAL, "", "control command without an ack byte");
                break;
            }
            ack = ctrl_command(net, &net->chain);
            iov_from_buf(net->chain.in, net->chain.nr_in, 0, &ack, 1);
            virtq_push(vq, net->chain.head, 1);
            taken++;
        }
    } while (rc == 0 && virtq_enable_notify(vq));
    if (rc < 0)
        virtio_dev_fail(dev, q, why.msg);
    if (taken) {
        virtio_dev_signal_queue(dev, q);
        process_rx(net, -1); /* frames may have a new home */
    }
    return taken;
}

/* ---- device ops ------------------------------------------------------------ */

static unsigned queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct virtio_net *net = net_of(dev);

    if (net->pairs > 1 && q == 2 * net->pairs)
        return process_ctrl(net);
    if (q & 1)
        return process_tx(net, q / 2);
    process_rx(net, (int)q);
    return 0;
}

static void tap_ready(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_net *net = net_of(dev);

    pthread_mutex_lock(&dev->lock);
    for (unsigned k = 0; k < net->pairs; k++)
        if (net->rxq[k]->fd == fd)
            process_rx_fd(net, k);
    pthread_mutex_unlock(&dev->lock);
}

static void timer_fired(struct virtio_dev *dev, int fd, uint32_t events)
{
    struct virtio_net *net = net_of(dev);
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0)
        return;
    pthread_mutex_lock(&dev->lock);
    /* Held-back TX frames: served as a kick would be, notifications back
     * on afterwards (an inline TX queue gets no other chance to move its
     * avail_event, and the guest would stop kicking). */
    for (unsigned p = 0; p < net->active_pairs; p++)
        virtio_dev_serve(dev, TXQ_OF(p));
    process_rx(net, -1);
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
    set_rx_armed(net, net->rxq[0], false);
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

struct virtio_dev *virtio_net_dev(struct virtio_net *net)
{
    return &net->dev;
}

/* dev->lock held (quiesced). A frame in hand is dropped, as a full queue
 * would have. */
int virtio_net_save(struct virtio_net *net, struct virtio_net_state *out)
{
    if (net->vhost_running)
        return -EOPNOTSUPP;
    *out = (struct virtio_net_state){.pairs = net->pairs, .active_pairs = net->active_pairs};
    memcpy(out->mac, net->mac, 6);
    return 0;
}

int virtio_net_load(struct virtio_net *net, const struct virtio_net_state *in)
{
    if (in->pairs != net->pairs || in->active_pairs < 1 || in->active_pairs > net->pairs)
        return -EINVAL;
    pthread_mutex_lock(&net->dev.lock);
    net->active_pairs = in->active_pairs;
    if (memcmp(in->mac, net->mac, 6) != 0) {
        log_info("virtio-net %s: the snapshot's MAC %02x:%02x:%02x:%02x:%02x:%02x is now "
                 "%02x:%02x:%02x:%02x:%02x:%02x; the guest is told by a configuration change",
                 net->tap.name, in->mac[0], in->mac[1], in->mac[2], in->mac[3], in->mac[4],
                 in->mac[5], net->mac[0], net->mac[1], net->mac[2], net->mac[3], net->mac[4],
                 net->mac[5]);
        if (net->dev.status & VIRTIO_STATUS_DRIVER_OK)
            virtio_dev_config_changed(&net->dev);
    }
    pthread_mutex_unlock(&net->dev.lock);
    return 0;
}

static void net_reset(struct virtio_dev *dev)
{
    struct virtio_net *net = net_of(dev);

    vhost_stop(net);
    net->mrg_rxbuf = false;
    net->active_pairs = 1;
    for (unsigned k = 0; k < net->pairs; k++) {
        net->rxq[k]->state = RX_EMPTY;
        set_rx_armed(net, net->rxq[k], true);
    }
}

static void config_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    struct virtio_net *net = net_of(dev);
    uint8_t cfg[VIRTIO_NET_CONFIG_SIZE] = {0};

    memcpy(cfg, net->mac, 6);
    cfg[6] = VIRTIO_NET_S_LINK_UP;
    cfg[8] = (uint8_t)net->pairs; /* max_virtqueue_pairs (le16) */
    memcpy(data, cfg + off, len);
}

/* The TX queues are served on the kicking vCPU's thread on the userspace
 * path (vhost-net reads their kicks itself). Two probes exchanging frames on
 * the 2-core PVM host: 68 000 frames/s one way against 55 000 through the
 * I/O thread (docs/devices.md): no wake-up and no wait for a core per batch,
 * and the copy and tap write run on time the guest was spending anyway. */
static uint32_t inline_tx(struct virtio_dev *dev)
{
    return net_of(dev)->data_path == NET_PATH_USERSPACE ? 0xaaaaaaaau : 0;
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
    .polled_queues = 0xaaaaaaaau, /* the TX queues (odd); not RX or control */
    /* No spinning: two probes exchanging frames on the 2-core PVM host (four
     * threads wanting a core) made 32k frames/s with the 50 us window, 37k
     * without; a guest's TX kick is one exit per batch, not per frame. */
    .poll_ns = VIRTIO_POLL_NONE,
    .inline_queues = inline_tx,
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
    net->pairs = cfg->queues ? cfg->queues : 1;
    net->active_pairs = 1;
    if (cfg->queues > VIRTIO_NET_MAX_PAIRS)
        rc = herd_err_set(err, -EINVAL, "queues", "net tap=%s: queues=%u: at most %d pairs",
                          cfg->tap, cfg->queues, VIRTIO_NET_MAX_PAIRS);
    else if (cfg->queues > 1 && cfg->vhost == VHOST_ON)
        rc = herd_err_set(err, -EINVAL, "vhost",
                          "net tap=%s: vhost=on serves one queue pair; queues=%u needs "
                          "vhost=auto or off", cfg->tap, cfg->queues);
    else
        rc = 0;
    if (rc) {
        free(net);
        return rc;
    }
    rc = virtio_net_choose_path(net->pairs > 1 ? VHOST_OFF : cfg->vhost,
                                access(VHOST_NET_DEVICE, R_OK | W_OK) == 0, &path, err);
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
    rc = netdev_tap_open(cfg->tap, net->pairs, VIRTIO_NET_HDR_LEN, &net->tap);
    if (rc) {
        if (rc == -EINVAL)
            herd_err_set(err, rc, "", "net tap=%s: cannot open %u queue%s: %s (queues>1 "
                         "needs a tap created multi_queue, queues=1 one created without)",
                         cfg->tap, net->pairs, net->pairs > 1 ? "s" : "", strerror(-rc));
        else
            herd_err_set(err, rc, "", "net tap=%s: %s", cfg->tap, strerror(-rc));
        for (unsigned q = 0; q < 2; q++)
            if (net->vhost_call_fd[q] >= 0)
                close(net->vhost_call_fd[q]);
        if (net->vhost.fd >= 0)
            vhost_net_close(&net->vhost);
        free(net);
        return rc;
    }
    for (unsigned k = 0; k < net->pairs; k++) {
        net->rxq[k] = calloc(1, sizeof(*net->rxq[k]));
        if (!net->rxq[k]) {
            rc = -ENOMEM;
            break;
        }
        net->rxq[k]->fd = net->tap.fds[k];
        net->rxq[k]->armed = true;
    }
    if (cfg->mac_set)
        memcpy(net->mac, cfg->mac, 6);
    else
        default_mac(net->mac, index);
    netpath_init(&net->path, net->mac, ratelimit_now_ns());
    net->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    uint64_t features = virtio_net_features(path);
    if (net->pairs > 1)
        features |= (1ULL << VIRTIO_NET_F_CTRL_VQ) | (1ULL << VIRTIO_NET_F_MQ);
    if (!rc)
        rc = virtio_dev_init(&net->dev, &net_ops, net, features,
                             net->pairs > 1 ? 2 * net->pairs + 1 : 2, kvm, mem, pci, mmio, err);
    for (unsigned k = 0; k < net->pairs && !rc; k++)
        rc = virtio_dev_watch_fd(&net->dev, net->rxq[k]->fd, EPOLLIN, tap_ready);
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
    for (unsigned k = 0; k < VIRTIO_NET_MAX_PAIRS; k++)
        free(net->rxq[k]);
    free(net);
}

void virtio_net_info(const struct virtio_net *net, uint8_t mac[6], enum net_path *path,
                     struct netstats *stats)
{
    memcpy(mac, net->mac, 6);
    *path = net->data_path;
    netstats_snapshot(&net->path.stats, stats);
}
