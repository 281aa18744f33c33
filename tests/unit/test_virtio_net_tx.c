/*
 * virtio-net TX as a hostile guest drives it, on the path where the kicking
 * vCPU's thread serves the queue (here the test's own thread): a real
 * device on a real tap in a real KVM VM. Chains are written into guest RAM
 * by hand and kicked once each; then the used ring, the device status and
 * what the tap's host side received (a packet socket bound to the tap) are
 * checked, before the kick's write has even returned for the first two.
 *
 * Cases: a frame in one buffer and split over three arrive byte for byte;
 * a spoofed source MAC is dropped and counted; a buffer outside guest RAM,
 * a descriptor loop and an avail index moved past the queue size set
 * NEEDS_RESET and send nothing; a chain of only device-writable buffers and
 * one longer than any frame are completed and send nothing; after each
 * reset the device sends again. The VMM (this process) survives all.
 *
 * Needs /dev/kvm and root (a tap); without either every case is skipped
 * with the reason. tests/run-all runs it in the nested host where this
 * machine has no usable KVM:
 * herd-test-needs: kvm
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herd/bus.h"
#include "herd/device_config.h"
#include "herd/guest_mem.h"
#include "herd/kvm.h"
#include "herd/layout.h"
#include "herd/log.h"
#include "herd/netfilter.h"
#include "herd/pci.h"
#include "herd/virtio_net.h"
#include "herd/virtq.h"
#include "virtio_driver.h"

#define RAM      (4 * MiB)
#define QSIZE    16
#define TXQ      1
#define DESC     0x10000ULL
#define AVAIL    0x11000ULL
#define USED     0x12000ULL
#define BUF      0x20000ULL /* frames from here; the oversize chain uses 80 KiB */
#define ETHERTYPE 0x88b5    /* local experimental */

static const uint8_t guest_mac[6] = {0x02, 0x68, 0x74, 0x78, 0x00, 0x01};

struct ctx {
    struct kvm kvm;
    struct guest_mem gm;
    struct bus pio, mmio;
    struct pci_bus pci;
    struct virtio_net *net;
    struct virtio_dev *dev;
    int pkt;         /* packet socket on the tap */
    uint16_t avail;  /* the driver's avail index */
    struct herd_err err;
};

static char tap[IFNAMSIZ];
static char why_skip[600];

/* `ip link VERB dev TAP REST`, or with tuntap: 0 when it worked. */
static int ip(const char *obj, const char *verb, const char *rest)
{
    char cmd[200];

    snprintf(cmd, sizeof(cmd), "ip %s %s dev %s %s", obj, verb, tap, rest);
    return system(cmd);
}

static int group_setup(void **state)
{
    struct herd_err err = {0};
    struct kvm kvm;

    (void)state;
    snprintf(tap, sizeof(tap), "htx%u", (unsigned)getpid() % 100000);
    if (geteuid() != 0)
        snprintf(why_skip, sizeof(why_skip), "not root: no tap");
    else if (kvm_open(&kvm, NULL, &err))
        snprintf(why_skip, sizeof(why_skip), "/dev/kvm is not usable: %s", err.msg);
    else
        kvm_close(&kvm);
    if (!why_skip[0] &&
        (ip("tuntap", "add", "mode tap vnet_hdr") || ip("link", "set", "up")))
        snprintf(why_skip, sizeof(why_skip), "cannot create tap %s", tap);
    if (why_skip[0])
        fprintf(stderr, "test_virtio_net_tx: every case is skipped: %s\n", why_skip);
    /* expected complaints (bad chains) stay off the output */
    log_set_level(LOG_ERROR);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (geteuid() == 0)
        ip("link", "del", "2>/dev/null");
    return 0;
}

static void *ram(struct ctx *c, uint64_t gpa, uint64_t len)
{
    void *p = guest_mem_ptr(&c->gm, gpa, len);

    assert_non_null(p);
    return p;
}

/* Reset, negotiate, the TX queue on DESC/AVAIL/USED, DRIVER_OK. */
static void bring_up(struct ctx *c)
{
    memset(ram(c, DESC, 0x3000), 0, 0x3000);
    c->avail = 0;
    assert_int_equal(vd_negotiate(c->dev, (1ULL << VIRTIO_F_VERSION_1) |
                                              (1ULL << VIRTIO_NET_F_MAC)),
                     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                         VIRTIO_STATUS_FEATURES_OK);
    vd_program_queue(c->dev, TXQ, QSIZE, DESC, AVAIL, USED);
    vd_wr(c->dev, CC_Q_ENABLE, 1, 2);
    vd_wr(c->dev, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
}

static int setup(void **state)
{
    struct nic_config cfg = {.tap = tap, .mac_set = true, .vhost = VHOST_OFF, .queues = 1};
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
    struct ctx *c;

    *state = NULL;
    if (why_skip[0])
        return 0;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    memcpy(cfg.mac, guest_mac, 6);
    if (guest_mem_create(&c->gm, RAM) || kvm_open(&c->kvm, NULL, &c->err) ||
        kvm_create_vm(&c->kvm, &c->gm, &c->err)) {
        fprintf(stderr, "setup: %s\n", c->err.msg);
        return -1;
    }
    bus_init(&c->pio, "pio");
    bus_init(&c->mmio, "mmio");
    if (pci_bus_init(&c->pci, &c->pio, &c->mmio) ||
        virtio_net_create(&cfg, 0, &c->kvm, &c->gm, &c->pci, &c->mmio, &c->net, &c->err) ||
        virtio_net_start(c->net)) {
        fprintf(stderr, "setup: virtio-net: %s\n", c->err.msg);
        return -1;
    }
    c->dev = virtio_net_dev(c->net);
    c->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    sll.sll_ifindex = (int)if_nametoindex(tap);
    if (c->pkt < 0 || !sll.sll_ifindex || bind(c->pkt, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        fprintf(stderr, "setup: packet socket on %s: %s\n", tap, strerror(errno));
        return -1;
    }
    bring_up(c);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    if (!c)
        return 0;
    close(c->pkt);
    virtio_net_destroy(c->net);
    pci_bus_destroy(&c->pci);
    kvm_close(&c->kvm);
    guest_mem_destroy(&c->gm);
    free(c);
    return 0;
}

#define CTX(state)                                                                   \
    ({                                                                               \
        struct ctx *c_ = *(state);                                                   \
        if (!c_)                                                                     \
            skip();                                                                  \
        c_;                                                                          \
    })

/* ---- the guest's side ------------------------------------------------------ */

struct desc_spec {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* Writes the descriptors, publishes head 0 and kicks the TX queue. */
static void submit(struct ctx *c, const struct desc_spec *d, unsigned n, uint16_t avail_step)
{
    uint8_t *table = ram(c, DESC, 16 * QSIZE);
    uint16_t *avail = ram(c, AVAIL, 4 + 2 * QSIZE);

    for (unsigned i = 0; i < n; i++) {
        memcpy(table + 16 * i, &d[i].addr, 8);
        memcpy(table + 16 * i + 8, &d[i].len, 4);
        memcpy(table + 16 * i + 12, &d[i].flags, 2);
        memcpy(table + 16 * i + 14, &d[i].next, 2);
    }
    avail[2 + c->avail % QSIZE] = 0;
    c->avail = (uint16_t)(c->avail + avail_step);
    __atomic_store_n(&avail[1], c->avail, __ATOMIC_RELEASE);
    vd_kick(c->dev, TXQ);
}

static uint16_t used_idx(struct ctx *c)
{
    return __atomic_load_n((uint16_t *)ram(c, USED + 2, 2), __ATOMIC_ACQUIRE);
}

static bool needs_reset(struct ctx *c)
{
    return vd_rd(c->dev, CC_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET;
}

/* A frame from src: broadcast, our ethertype, a payload of 46 bytes, after
 * the 12-byte virtio-net header (all zero: no offloads), at BUF. Returns
 * the frame's length (header not counted). */
static size_t put_frame(struct ctx *c, const uint8_t src[6], uint8_t tag)
{
    uint8_t *p = ram(c, BUF, VIRTIO_NET_HDR_LEN + 60);

    memset(p, 0, VIRTIO_NET_HDR_LEN);
    memset(p + VIRTIO_NET_HDR_LEN, 0xff, 6);
    memcpy(p + VIRTIO_NET_HDR_LEN + 6, src, 6);
    p[VIRTIO_NET_HDR_LEN + 12] = ETHERTYPE >> 8;
    p[VIRTIO_NET_HDR_LEN + 13] = ETHERTYPE & 0xff;
    for (unsigned i = 0; i < 46; i++)
        p[VIRTIO_NET_HDR_LEN + 14 + i] = (uint8_t)(tag + i);
    return 60;
}

/* ---- the tap's side ------------------------------------------------------------ */

/* The next frame of ours the tap received within wait_ms (0: none). */
static ssize_t tap_frame(struct ctx *c, uint8_t *buf, size_t size, int wait_ms)
{
    struct pollfd pfd = {.fd = c->pkt, .events = POLLIN};

    for (;;) {
        ssize_t n = recv(c->pkt, buf, size, 0);

        if (n >= 14 && buf[12] == ETHERTYPE >> 8 && buf[13] == (ETHERTYPE & 0xff))
            return n;
        if (n >= 0)
            continue; /* the host's own traffic on the tap */
        if (errno != EAGAIN || poll(&pfd, 1, wait_ms) <= 0)
            return 0;
    }
}

static void drain(struct ctx *c)
{
    uint8_t buf[2048];

    while (tap_frame(c, buf, sizeof(buf), 0) > 0)
        ;
}

/* ---- cases ------------------------------------------------------------------------ */

static void test_frame_served_on_the_kicking_thread(void **state)
{
    struct ctx *c = CTX(state);
    uint8_t got[2048];
    size_t len;

    assert_true(c->dev->inline_queues & (1u << TXQ));
    drain(c);
    len = put_frame(c, guest_mac, 1);
    submit(c, (struct desc_spec[]){{BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0, 0}}, 1, 1);
    /* served before the notify write returned: no other thread involved */
    assert_int_equal(used_idx(c), 1);
    assert_int_equal(tap_frame(c, got, sizeof(got), 1000), (ssize_t)len);
    assert_memory_equal(got, ram(c, BUF + VIRTIO_NET_HDR_LEN, len), len);
    assert_false(needs_reset(c));
}

static void test_split_frame(void **state)
{
    struct ctx *c = CTX(state);
    uint8_t got[2048];
    size_t len;

    drain(c);
    len = put_frame(c, guest_mac, 2);
    submit(c,
           (struct desc_spec[]){{BUF, VIRTIO_NET_HDR_LEN, VIRTQ_DESC_F_NEXT, 1},
                                {BUF + VIRTIO_NET_HDR_LEN, 20, VIRTQ_DESC_F_NEXT, 2},
                                {BUF + VIRTIO_NET_HDR_LEN + 20, (uint32_t)len - 20, 0, 0}},
           3, 1);
    assert_int_equal(used_idx(c), 1);
    assert_int_equal(tap_frame(c, got, sizeof(got), 1000), (ssize_t)len);
    assert_memory_equal(got, ram(c, BUF + VIRTIO_NET_HDR_LEN, len), len);
}

static void test_spoofed_source_dropped(void **state)
{
    struct ctx *c = CTX(state);
    static const uint8_t other[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};
    struct netstats st;
    enum net_path path;
    uint8_t mac[6], got[2048];
    size_t len;

    drain(c);
    len = put_frame(c, other, 3);
    submit(c, (struct desc_spec[]){{BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0, 0}}, 1, 1);
    assert_int_equal(used_idx(c), 1); /* completed, as a dropped frame is */
    assert_int_equal(tap_frame(c, got, sizeof(got), 200), 0);
    virtio_net_info(c->net, mac, &path, &st);
    assert_int_equal(st.tx_drops[NETFILTER_DROP_SRC_MAC], 1);
    assert_int_equal(st.tx_frames, 0);
    assert_false(needs_reset(c));
}

/* A chain the transport must refuse: NEEDS_RESET, nothing sent; after a
 * reset the device sends again. */
static void refused(struct ctx *c, const struct desc_spec *d, unsigned n, uint16_t step)
{
    uint8_t got[2048];
    size_t len;

    drain(c);
    put_frame(c, guest_mac, 4);
    submit(c, d, n, step);
    assert_true(needs_reset(c));
    assert_int_equal(used_idx(c), 0);
    assert_int_equal(tap_frame(c, got, sizeof(got), 200), 0);
    bring_up(c);
    assert_false(needs_reset(c));
    len = put_frame(c, guest_mac, 5);
    submit(c, (struct desc_spec[]){{BUF, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0, 0}}, 1, 1);
    assert_int_equal(used_idx(c), 1);
    assert_int_equal(tap_frame(c, got, sizeof(got), 1000), (ssize_t)len);
}

static void test_buffer_outside_ram(void **state)
{
    struct ctx *c = CTX(state);

    refused(c, (struct desc_spec[]){{BUF, VIRTIO_NET_HDR_LEN, VIRTQ_DESC_F_NEXT, 1},
                                    {RAM - 16, 60, 0, 0}},
            2, 1);
}

static void test_descriptor_loop(void **state)
{
    struct ctx *c = CTX(state);

    refused(c, (struct desc_spec[]){{BUF, VIRTIO_NET_HDR_LEN, VIRTQ_DESC_F_NEXT, 1},
                                    {BUF + VIRTIO_NET_HDR_LEN, 60, VIRTQ_DESC_F_NEXT, 0}},
            2, 1);
}

static void test_avail_index_jump(void **state)
{
    struct ctx *c = CTX(state);

    refused(c, (struct desc_spec[]){{BUF, VIRTIO_NET_HDR_LEN + 60, 0, 0}}, 1, QSIZE + 1);
}

/* Completed with nothing sent: the device drops what is not a frame. */
static void dropped(struct ctx *c, const struct desc_spec *d, unsigned n)
{
    uint8_t got[2048];

    drain(c);
    put_frame(c, guest_mac, 6);
    submit(c, d, n, 1);
    assert_int_equal(used_idx(c), 1);
    assert_int_equal(tap_frame(c, got, sizeof(got), 200), 0);
    assert_false(needs_reset(c));
}

static void test_only_writable_buffers(void **state)
{
    struct ctx *c = CTX(state);

    dropped(c, (struct desc_spec[]){{BUF, VIRTIO_NET_HDR_LEN + 60, VIRTQ_DESC_F_WRITE, 0}}, 1);
}

static void test_longer_than_any_frame(void **state)
{
    struct ctx *c = CTX(state);

    /* 12 + 80 KiB of guest RAM, more than a 64 KiB frame and its header */
    dropped(c, (struct desc_spec[]){{BUF, VIRTIO_NET_HDR_LEN, VIRTQ_DESC_F_NEXT, 1},
                                    {BUF + 0x1000, 40 * 1024, VIRTQ_DESC_F_NEXT, 2},
                                    {BUF + 0x1000 + 40 * 1024, 40 * 1024, 0, 0}},
            3);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_frame_served_on_the_kicking_thread),
        T(test_split_frame),
        T(test_spoofed_source_dropped),
        T(test_buffer_outside_ram),
        T(test_descriptor_loop),
        T(test_avail_index_jump),
        T(test_only_writable_buffers),
        T(test_longer_than_any_frame),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
