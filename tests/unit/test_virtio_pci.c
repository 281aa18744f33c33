/*
 * virtio-pci modern transport, driven like a guest driver through the BAR
 * (virtio_bar_read/virtio_bar_write) and PCI config space, on a real KVM VM
 * (MSI-X vectors are KVM routes + irqfds, notify addresses ioeventfds) with
 * a tiny fake device behind it. Feature negotiation, reset, queue setup (bad
 * rings set NEEDS_RESET), MSI-X table/PBA/vectors, ISR, the device config
 * window, the capability chain, the PCI-config access window, and a kick
 * reaching the device through the I/O thread.
 *
 * Needs /dev/kvm: without a usable one every case is skipped with the reason;
 * tests/run-all runs it in the nested host where this machine has none:
 * herd-test-needs: kvm
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd/bus.h"
#include "herd/guest_mem.h"
#include "herd/kvm.h"
#include "herd/layout.h"
#include "herd/log.h"
#include "herd/pci.h"
#include "herd/virtio_pci.h"
#include "virtio_driver.h"

#define RAM       (4 * MiB)
#define NQUEUES   2
#define DEV_BIT   5 /* a device-specific feature the fake offers */
#define CFG_SIZE  8
#define DESC      0x10000ULL
#define AVAIL     0x20000ULL
#define USED      0x30000ULL

#define S_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV  VIRTIO_STATUS_DRIVER
#define S_FOK  VIRTIO_STATUS_FEATURES_OK
#define S_DOK  VIRTIO_STATUS_DRIVER_OK

struct ctx {
    struct kvm kvm;
    struct guest_mem gm;
    struct bus pio, mmio;
    struct pci_bus pci;
    struct virtio_dev dev;
    struct herd_err err;
    /* what the fake device saw */
    unsigned notify[VIRTIO_MAX_QUEUES]; /* atomics: the I/O thread writes */
    pthread_t notified_by[VIRTIO_MAX_QUEUES]; /* the thread of the last notify */
    unsigned features_ok, resets, cfg_writes, cfg_reads;
    unsigned last_cfg_off, last_cfg_len;
    uint8_t last_cfg_data[8];
};

static struct herd_err kvm_why;
static int kvm_usable = -1;

/* ---- the fake device ---------------------------------------------------- */

static void fake_config_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    struct ctx *c = dev->backend;

    c->cfg_reads++;
    for (unsigned i = 0; i < len; i++)
        data[i] = (uint8_t)(0xa0 + off + i);
}

static void fake_config_write(struct virtio_dev *dev, unsigned off, const uint8_t *data,
                              unsigned len)
{
    struct ctx *c = dev->backend;

    c->cfg_writes++;
    c->last_cfg_off = off;
    c->last_cfg_len = len;
    memcpy(c->last_cfg_data, data, len < 8 ? len : 8);
}

static void fake_features_ok(struct virtio_dev *dev)
{
    struct ctx *c = dev->backend;

    c->features_ok++;
}

/* The hook's return type changed once (chains consumed, for polled queues);
 * the fake takes nothing from the ring either way. */
#ifdef VIRTIO_POLL_NS
#define NOTIFY_TYPE unsigned
#define NOTIFY_DONE return 0
#else
#define NOTIFY_TYPE void
#define NOTIFY_DONE return
#endif

static NOTIFY_TYPE fake_queue_notify(struct virtio_dev *dev, unsigned q)
{
    struct ctx *c = dev->backend;

    c->notified_by[q] = pthread_self();
    __atomic_fetch_add(&c->notify[q], 1, __ATOMIC_SEQ_CST);
    NOTIFY_DONE;
}

static void fake_reset(struct virtio_dev *dev)
{
    struct ctx *c = dev->backend;

    c->resets++;
}

/* The queues the fake asks to have served inline (setup_inline sets it). */
static uint32_t fake_inline_mask;

static uint32_t fake_inline_queues(struct virtio_dev *dev)
{
    (void)dev;
    return fake_inline_mask;
}

static const struct virtio_dev_ops fake_ops = {
    .name = "virtio-fake",
    .device_id = 2,
    .class_code = 0x018000,
    .config_size = CFG_SIZE,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .features_ok = fake_features_ok,
    .queue_notify = fake_queue_notify,
    .inline_queues = fake_inline_queues,
    .reset = fake_reset,
};

static const struct virtio_dev_ops *setup_ops = &fake_ops;

/* ---- fixture -------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct kvm kvm;
    struct guest_mem gm;

    (void)state;
    if (kvm_open(&kvm, NULL, &kvm_why)) {
        kvm_usable = 0;
    } else {
        if (guest_mem_create(&gm, RAM)) {
            herd_err_set(&kvm_why, -ENOMEM, "", "cannot create guest RAM");
            kvm_usable = 0;
        } else {
            kvm_usable = !kvm_create_vm(&kvm, &gm, &kvm_why);
            guest_mem_destroy(&gm);
        }
        kvm_close(&kvm);
    }
    if (!kvm_usable)
        fprintf(stderr, "test_virtio_pci: /dev/kvm is not usable (%s): every case is skipped\n",
                kvm_why.msg);
    /* expected complaints (refused features, bad rings) stay off the output */
    log_set_level(LOG_ERROR);
    return 0;
}

static int setup(void **state)
{
    struct ctx *c;

    *state = NULL;
    if (!kvm_usable)
        return 0;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    if (guest_mem_create(&c->gm, RAM) || kvm_open(&c->kvm, NULL, &c->err) ||
        kvm_create_vm(&c->kvm, &c->gm, &c->err)) {
        fprintf(stderr, "setup: %s\n", c->err.msg);
        return -1;
    }
    bus_init(&c->pio, "pio");
    bus_init(&c->mmio, "mmio");
    if (pci_bus_init(&c->pci, &c->pio, &c->mmio))
        return -1;
    if (virtio_dev_init(&c->dev, setup_ops, c, 1ULL << DEV_BIT, NQUEUES, &c->kvm, &c->gm,
                        &c->pci, &c->mmio, &c->err)) {
        fprintf(stderr, "setup: virtio_dev_init: %s\n", c->err.msg);
        return -1;
    }
    *state = c;
    return 0;
}

/* The same device with queue 0 served inline. */
static int setup_inline(void **state)
{
    int rc;

    fake_inline_mask = 1u << 0;
    rc = setup(state);
    fake_inline_mask = 0;
    return rc;
}

/* The same device with queue 0 polled by the I/O thread after a kick. */
static int setup_polled(void **state)
{
    static struct virtio_dev_ops polled_ops;
    int rc;

    polled_ops = fake_ops;
    polled_ops.inline_queues = NULL;
    polled_ops.polled_queues = 1u << 0;
    polled_ops.poll_ns = VIRTIO_POLL_NS;
    setup_ops = &polled_ops;
    rc = setup(state);
    setup_ops = &fake_ops;
    return rc;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    if (!c)
        return 0;
    virtio_dev_destroy(&c->dev);
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

/* ---- driver-side accessors ------------------------------------------------- */

#define le vd_le
#define put_le vd_put_le

static uint64_t rd(struct ctx *c, uint64_t off, unsigned len)
{
    return vd_rd(&c->dev, off, len);
}

static void wr(struct ctx *c, uint64_t off, uint64_t v, unsigned len)
{
    vd_wr(&c->dev, off, v, len);
}

/* The same through the MMIO bus at the BAR's address. */
static uint64_t mmio_rd(struct ctx *c, uint64_t off, unsigned len)
{
    uint8_t b[8];

    memset(b, 0xa5, sizeof(b));
    assert_true(bus_dispatch(&c->mmio, c->dev.pci.bars[0].addr + off, b, len, false));
    return le(b, len);
}

static uint64_t cfg_rd(struct ctx *c, unsigned off, unsigned len)
{
    uint8_t b[4];

    pci_config_read(&c->pci, c->dev.pci.slot, 0, off, b, len);
    return le(b, len);
}

static void cfg_wr(struct ctx *c, unsigned off, uint64_t v, unsigned len)
{
    uint8_t b[4];

    put_le(b, v, len);
    pci_config_write(&c->pci, c->dev.pci.slot, 0, off, b, len);
}

static uint8_t status(struct ctx *c)
{
    return (uint8_t)rd(c, CC_STATUS, 1);
}

static void set_status(struct ctx *c, uint8_t s)
{
    wr(c, CC_STATUS, s, 1);
}

static uint64_t device_features(struct ctx *c)
{
    wr(c, CC_DFSELECT, 0, 4);
    uint64_t lo = rd(c, CC_DF, 4);
    wr(c, CC_DFSELECT, 1, 4);
    return lo | rd(c, CC_DF, 4) << 32;
}

#define F(bit) (1ULL << (bit))
#define GOOD_FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX) | F(DEV_BIT))

static uint8_t negotiate(struct ctx *c, uint64_t features)
{
    return vd_negotiate(&c->dev, features);
}

static void program_queue(struct ctx *c, unsigned q, uint16_t size, uint64_t desc, uint64_t avail,
                          uint64_t used)
{
    vd_program_queue(&c->dev, q, size, desc, avail, used);
}

/* ---- features and status -------------------------------------------------- */

static void test_initial_registers(void **state)
{
    struct ctx *c = CTX(state);

    assert_int_equal(status(c), 0);
    assert_int_equal(rd(c, CC_NUM_QUEUES, 2), NQUEUES);
    assert_int_equal(rd(c, CC_MSIX_CONFIG, 2), VIRTIO_NO_VECTOR);
    assert_int_equal(rd(c, CC_CFG_GEN, 1), 0);
    assert_int_equal(rd(c, CC_Q_SELECT, 2), 0);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
    assert_int_equal(rd(c, CC_Q_MSIX, 2), VIRTIO_NO_VECTOR);
    assert_int_equal(rd(c, CC_Q_ENABLE, 2), 0);
    /* the BAR on the MMIO bus is the same register file */
    assert_int_equal(mmio_rd(c, CC_NUM_QUEUES, 2), NQUEUES);
    /* read-only registers ignore writes */
    wr(c, CC_NUM_QUEUES, 9, 2);
    wr(c, CC_CFG_GEN, 9, 1);
    wr(c, CC_Q_NOTIFY_OFF, 9, 2);
    assert_int_equal(rd(c, CC_NUM_QUEUES, 2), NQUEUES);
    assert_int_equal(rd(c, CC_CFG_GEN, 1), 0);
    assert_int_equal(rd(c, CC_Q_NOTIFY_OFF, 2), 0);
    /* past the common config and between regions: zeros */
    assert_int_equal(rd(c, VIRTIO_COMMON_SIZE, 4), 0);
    assert_int_equal(rd(c, 0x0ffc, 4), 0);
    assert_int_equal(rd(c, VIRTIO_BAR_SIZE - 4, 4), 0);
}

static void test_device_features_offered(void **state)
{
    struct ctx *c = CTX(state);
    uint64_t f = device_features(c);

    assert_true(f & F(VIRTIO_F_VERSION_1));
    assert_true(f & F(VIRTIO_F_EVENT_IDX));
    assert_true(f & F(VIRTIO_F_INDIRECT_DESC));
    assert_true(f & F(DEV_BIT));
    assert_false(f & F(VIRTIO_F_ACCESS_PLATFORM));
    assert_int_equal(f, c->dev.device_features);
    wr(c, CC_DFSELECT, 1, 4);
    assert_int_equal(rd(c, CC_DF, 4), 1); /* VERSION_1 is bit 32 */
    assert_int_equal(rd(c, CC_DFSELECT, 4), 1);
    wr(c, CC_DFSELECT, 2, 4);
    assert_int_equal(rd(c, CC_DF, 4), 0);
    wr(c, CC_DFSELECT, 0xffffffff, 4);
    assert_int_equal(rd(c, CC_DF, 4), 0);
    /* device_feature is read-only */
    wr(c, CC_DFSELECT, 0, 4);
    wr(c, CC_DF, 0, 4);
    assert_int_equal(rd(c, CC_DF, 4), (uint32_t)c->dev.device_features);
}

static void test_features_accepted(void **state)
{
    struct ctx *c = CTX(state);

    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    assert_int_equal(c->features_ok, 1);
    assert_int_equal(c->dev.driver_features, GOOD_FEATURES);
    wr(c, CC_GFSELECT, 0, 4);
    assert_int_equal(rd(c, CC_GF, 4), (uint32_t)GOOD_FEATURES);
    wr(c, CC_GFSELECT, 1, 4);
    assert_int_equal(rd(c, CC_GF, 4), 1);
    assert_true(virtio_has_feature(&c->dev, VIRTIO_F_EVENT_IDX));
    assert_false(virtio_has_feature(&c->dev, VIRTIO_F_INDIRECT_DESC));
    /* features are frozen once accepted */
    wr(c, CC_GFSELECT, 0, 4);
    wr(c, CC_GF, 0, 4);
    assert_int_equal(c->dev.driver_features, GOOD_FEATURES);
    /* setting more status bits does not renegotiate */
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_int_equal(status(c), S_ACK | S_DRV | S_FOK | S_DOK);
    assert_int_equal(c->features_ok, 1);
}

static void test_features_not_offered_refused(void **state)
{
    struct ctx *c = CTX(state);
    static const uint64_t extra[] = {F(6), F(0), F(27), F(VIRTIO_F_ACCESS_PLATFORM), F(63)};

    for (unsigned i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        uint8_t s = negotiate(c, GOOD_FEATURES | extra[i]);

        if (s & S_FOK)
            fail_msg("feature mask %#llx accepted", (unsigned long long)extra[i]);
        assert_int_equal(s, S_ACK | S_DRV);
    }
    assert_int_equal(c->features_ok, 0);
    /* a correct set afterwards is fine */
    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    assert_int_equal(c->features_ok, 1);
}

static void test_features_without_version1_refused(void **state)
{
    struct ctx *c = CTX(state);

    assert_int_equal(negotiate(c, F(DEV_BIT) | F(VIRTIO_F_EVENT_IDX)), S_ACK | S_DRV);
    assert_int_equal(negotiate(c, 0), S_ACK | S_DRV);
    assert_int_equal(c->features_ok, 0);
    assert_int_equal(negotiate(c, F(VIRTIO_F_VERSION_1)), S_ACK | S_DRV | S_FOK);
}

static void test_reset(void **state)
{
    struct ctx *c = CTX(state);
    unsigned resets;

    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    program_queue(c, 1, 64, DESC, AVAIL, USED);
    wr(c, CC_Q_MSIX, 2, 2);
    wr(c, CC_Q_ENABLE, 1, 2);
    assert_int_equal(rd(c, CC_Q_ENABLE, 2), 1);
    wr(c, CC_MSIX_CONFIG, 0, 2);
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    resets = c->resets;
    set_status(c, 0);
    assert_int_equal(c->resets, resets + 1);
    assert_int_equal(status(c), 0);
    assert_int_equal(c->dev.driver_features, 0);
    assert_int_equal(rd(c, CC_Q_SELECT, 2), 0);
    assert_int_equal(rd(c, CC_MSIX_CONFIG, 2), VIRTIO_NO_VECTOR);
    for (unsigned q = 0; q < NQUEUES; q++) {
        wr(c, CC_Q_SELECT, q, 2);
        assert_int_equal(rd(c, CC_Q_ENABLE, 2), 0);
        assert_int_equal(rd(c, CC_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
        assert_int_equal(rd(c, CC_Q_MSIX, 2), VIRTIO_NO_VECTOR);
        assert_false(c->dev.queues[q].vq.ready);
        assert_false(virtio_queue_live(&c->dev, q));
    }
    wr(c, CC_GFSELECT, 0, 4);
    assert_int_equal(rd(c, CC_GF, 4), 0);
    /* features can be negotiated again */
    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
}

/* ---- queues ------------------------------------------------------------- */

static void test_queue_select(void **state)
{
    struct ctx *c = CTX(state);
    static const uint16_t absent[] = {NQUEUES, VIRTIO_MAX_QUEUES, 0x7fff, 0xffff};

    for (unsigned q = 0; q < NQUEUES; q++) {
        wr(c, CC_Q_SELECT, q, 2);
        assert_int_equal(rd(c, CC_Q_SELECT, 2), q);
        assert_int_equal(rd(c, CC_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
        assert_int_equal(rd(c, CC_Q_NOTIFY_OFF, 2), q);
    }
    for (unsigned i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        wr(c, CC_Q_SELECT, absent[i], 2);
        assert_int_equal(rd(c, CC_Q_SELECT, 2), absent[i]);
        assert_int_equal(rd(c, CC_Q_SIZE, 2), 0);
        assert_int_equal(rd(c, CC_Q_ENABLE, 2), 0);
        assert_int_equal(rd(c, CC_Q_DESC, 8), 0);
        /* programming an absent queue does nothing (and touches nothing) */
        program_queue(c, absent[i], 16, DESC, AVAIL, USED);
        wr(c, CC_Q_MSIX, 0, 2);
        wr(c, CC_Q_ENABLE, 1, 2);
        assert_int_equal(rd(c, CC_Q_SIZE, 2), 0);
        assert_int_equal(rd(c, CC_Q_ENABLE, 2), 0);
        assert_int_equal(rd(c, CC_Q_MSIX, 2), 0);
    }
    assert_int_equal(status(c) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void test_queue_size_clamped(void **state)
{
    struct ctx *c = CTX(state);

    wr(c, CC_Q_SELECT, 1, 2);
    wr(c, CC_Q_SIZE, 1024, 2);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
    wr(c, CC_Q_SIZE, 0xffff, 2);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
    wr(c, CC_Q_SIZE, 64, 2);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), 64);
    /* queue 0 untouched */
    wr(c, CC_Q_SELECT, 0, 2);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), VIRTIO_QUEUE_SIZE);
}

static void test_queue_addresses_read_back(void **state)
{
    struct ctx *c = CTX(state);

    program_queue(c, 1, 32, 0x123456789abcdef0ULL, 0x1122334455667788ULL, 0x0102030405060708ULL);
    assert_int_equal(rd(c, CC_Q_DESC, 4), 0x9abcdef0);
    assert_int_equal(rd(c, CC_Q_DESC + 4, 4), 0x12345678);
    assert_int_equal(rd(c, CC_Q_DRIVER, 8), 0x1122334455667788ULL);
    assert_int_equal(rd(c, CC_Q_DEVICE, 8), 0x0102030405060708ULL);
    wr(c, CC_Q_SELECT, 0, 2);
    assert_int_equal(rd(c, CC_Q_DESC, 8), 0);
}

static void test_queue_outside_ram_needs_reset(void **state)
{
    struct ctx *c = CTX(state);
    uint8_t gen;

    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    gen = (uint8_t)rd(c, CC_CFG_GEN, 1);
    program_queue(c, 0, 256, RAM - 0x800, AVAIL, USED); /* desc ring needs 4 KiB */
    wr(c, CC_Q_ENABLE, 1, 2);
    assert_int_equal(rd(c, CC_Q_ENABLE, 2), 0);
    assert_true(status(c) & VIRTIO_STATUS_NEEDS_RESET);
    assert_false(c->dev.queues[0].vq.ready);
    assert_true(c->dev.bad_chains > 0);
    /* no DRIVER_OK yet: no config change signalled */
    assert_int_equal(rd(c, CC_CFG_GEN, 1), gen);
    /* the driver cannot clear NEEDS_RESET (or set it) */
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_int_equal(status(c), S_ACK | S_DRV | S_FOK | S_DOK | VIRTIO_STATUS_NEEDS_RESET);
    assert_false(virtio_queue_live(&c->dev, 0));
    /* only a reset does */
    set_status(c, 0);
    assert_int_equal(status(c), 0);
    set_status(c, VIRTIO_STATUS_NEEDS_RESET | S_ACK);
    assert_int_equal(status(c), S_ACK);
}

static void test_queue_bad_layouts_need_reset(void **state)
{
    struct ctx *c = CTX(state);
    static const struct {
        uint16_t size;
        uint64_t desc, avail, used;
    } bad[] = {
        {256, DESC, AVAIL, LAYOUT_MMIO_HOLE_START}, /* used ring in no RAM */
        {256, DESC, RAM - 4, USED},                 /* avail ring straddles the end */
        {256, DESC + 8, AVAIL, USED},               /* misaligned */
        {0, DESC, AVAIL, USED},                     /* size 0 */
        {100, DESC, AVAIL, USED},                   /* not a power of two */
        {256, 0xfffffffffffff000ULL, AVAIL, USED},  /* wraps */
    };

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
        set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
        program_queue(c, 1, bad[i].size, bad[i].desc, bad[i].avail, bad[i].used);
        wr(c, CC_Q_ENABLE, 1, 2);
        if (!(status(c) & VIRTIO_STATUS_NEEDS_RESET))
            fail_msg("layout %u: no NEEDS_RESET", i);
        assert_int_equal(rd(c, CC_Q_ENABLE, 2), 0);
        /* with DRIVER_OK the driver is told: config generation and ISR bit 1 */
        assert_int_equal(rd(c, VIRTIO_ISR_OFF, 1) & 2, 2);
    }
}

static void test_queue_enable_good(void **state)
{
    struct ctx *c = CTX(state);

    assert_int_equal(negotiate(c, GOOD_FEATURES | F(VIRTIO_F_INDIRECT_DESC)),
                     S_ACK | S_DRV | S_FOK);
    program_queue(c, 0, 128, DESC, AVAIL, USED);
    wr(c, CC_Q_ENABLE, 1, 2);
    assert_int_equal(rd(c, CC_Q_ENABLE, 2), 1);
    assert_int_equal(status(c), S_ACK | S_DRV | S_FOK);
    assert_true(c->dev.queues[0].vq.ready);
    assert_true(c->dev.queues[0].vq.event_idx);
    assert_true(c->dev.queues[0].vq.indirect);
    assert_int_equal(c->dev.queues[0].vq.size, 128);
    assert_ptr_equal(c->dev.queues[0].vq.desc, c->gm.base + DESC);
    assert_false(virtio_queue_live(&c->dev, 0)); /* not before DRIVER_OK */
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_true(virtio_queue_live(&c->dev, 0));
    assert_false(virtio_queue_live(&c->dev, 1));
    assert_false(virtio_queue_live(&c->dev, NQUEUES));

    /* a live queue's layout cannot change */
    program_queue(c, 0, 64, DESC + 0x1000, AVAIL + 0x100, USED + 0x100);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), 128);
    assert_int_equal(rd(c, CC_Q_DESC, 8), DESC);
    assert_int_equal(rd(c, CC_Q_DRIVER, 8), AVAIL);
    assert_int_equal(rd(c, CC_Q_DEVICE, 8), USED);
    assert_int_equal(c->dev.queues[0].vq.desc_gpa, DESC);
    /* nor can it be disabled except by reset */
    wr(c, CC_Q_ENABLE, 0, 2);
    assert_int_equal(rd(c, CC_Q_ENABLE, 2), 1);
    assert_true(virtio_queue_live(&c->dev, 0));
    /* the other queue is still programmable */
    program_queue(c, 1, 16, DESC + 0x4000, AVAIL + 0x1000, USED + 0x1000);
    assert_int_equal(rd(c, CC_Q_SIZE, 2), 16);
    assert_int_equal(status(c) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

/* ---- MSI-X ----------------------------------------------------------------- */

static unsigned msix_cap(struct ctx *c)
{
    return (unsigned)cfg_rd(c, PCI_CAP_PTR, 1);
}

static void test_msix_vector_numbers(void **state)
{
    struct ctx *c = CTX(state);
    unsigned nv = NQUEUES + 1;

    assert_int_equal(c->dev.nr_vectors, nv);
    wr(c, CC_MSIX_CONFIG, 0, 2);
    assert_int_equal(rd(c, CC_MSIX_CONFIG, 2), 0);
    wr(c, CC_MSIX_CONFIG, nv - 1, 2);
    assert_int_equal(rd(c, CC_MSIX_CONFIG, 2), nv - 1);
    wr(c, CC_MSIX_CONFIG, nv, 2);
    assert_int_equal(rd(c, CC_MSIX_CONFIG, 2), VIRTIO_NO_VECTOR);
    wr(c, CC_MSIX_CONFIG, 0x7fff, 2);
    assert_int_equal(rd(c, CC_MSIX_CONFIG, 2), VIRTIO_NO_VECTOR);
    for (unsigned q = 0; q < NQUEUES; q++) {
        wr(c, CC_Q_SELECT, q, 2);
        wr(c, CC_Q_MSIX, q + 1, 2);
        assert_int_equal(rd(c, CC_Q_MSIX, 2), q + 1);
        wr(c, CC_Q_MSIX, nv, 2);
        assert_int_equal(rd(c, CC_Q_MSIX, 2), VIRTIO_NO_VECTOR);
        wr(c, CC_Q_MSIX, VIRTIO_NO_VECTOR, 2);
        assert_int_equal(rd(c, CC_Q_MSIX, 2), VIRTIO_NO_VECTOR);
        wr(c, CC_Q_MSIX, 0, 2);
        assert_int_equal(rd(c, CC_Q_MSIX, 2), 0);
    }
}

static void test_msix_table(void **state)
{
    struct ctx *c = CTX(state);
    unsigned nv = NQUEUES + 1;

    for (unsigned v = 0; v < nv; v++) {
        uint64_t e = VIRTIO_MSIX_TABLE_OFF + 16 * v;

        assert_int_equal(rd(c, e + 12, 4), 1); /* masked by default */
        assert_int_equal(rd(c, e + 0, 4), 0);
        wr(c, e + 0, 0xfee00000 + (v << 12), 4);
        wr(c, e + 4, 0, 4);
        wr(c, e + 8, 0x4020 + v, 4);
        assert_int_equal(rd(c, e + 0, 4), 0xfee00000 + (v << 12));
        assert_int_equal(rd(c, e + 4, 4), 0);
        assert_int_equal(rd(c, e + 8, 4), 0x4020 + v);
        /* only the mask bit of vector control is writable */
        wr(c, e + 12, 0xfffffffe, 4);
        assert_int_equal(rd(c, e + 12, 4), 0);
        wr(c, e + 12, 1, 4);
        assert_int_equal(rd(c, e + 12, 4), 1);
        /* sub-dword writes are ignored, sub-dword reads see the dword */
        wr(c, e + 8, 0xff, 1);
        wr(c, e + 10, 0xffff, 2);
        assert_int_equal(rd(c, e + 8, 4), 0x4020 + v);
        assert_int_equal(rd(c, e + 8, 1), 0x20 + v);
        assert_int_equal(rd(c, e + 9, 1), 0x40);
        assert_int_equal(rd(c, e + 0, 2), (v << 12) & 0xffff);
        assert_int_equal(rd(c, e + 2, 2), 0xfee0);
    }
    /* entries past the table: nothing */
    wr(c, VIRTIO_MSIX_TABLE_OFF + 16 * nv, 0x12345678, 4);
    assert_int_equal(rd(c, VIRTIO_MSIX_TABLE_OFF + 16 * nv, 4), 0);
    assert_int_equal(rd(c, VIRTIO_MSIX_TABLE_OFF + 16 * nv + 12, 4), 0);
    /* the PBA: nothing pending, read-only */
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 8), 0);
    wr(c, VIRTIO_MSIX_PBA_OFF, 0xffffffff, 4);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 4), 0);
}

static void test_msix_pending_and_isr(void **state)
{
    struct ctx *c = CTX(state);
    unsigned cap = msix_cap(c);

    wr(c, CC_MSIX_CONFIG, 1, 2);
    wr(c, VIRTIO_MSIX_TABLE_OFF + 16 + 0, 0xfee00000, 4);
    wr(c, VIRTIO_MSIX_TABLE_OFF + 16 + 8, 0x4031, 4);
    /* MSI-X off: a config change sets the ISR, nothing pends */
    pthread_mutex_lock(&c->dev.lock);
    virtio_dev_config_changed(&c->dev);
    pthread_mutex_unlock(&c->dev.lock);
    assert_int_equal(rd(c, CC_CFG_GEN, 1), 1);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 4), 0);
    /* the ISR is cleared by reading it */
    assert_int_equal(rd(c, VIRTIO_ISR_OFF, 1), 2);
    assert_int_equal(rd(c, VIRTIO_ISR_OFF, 1), 0);

    /* MSI-X on, vector 1 masked: the interrupt pends */
    cfg_wr(c, cap + 2, 0x8000, 2);
    assert_true(c->dev.msix_enabled);
    assert_int_equal(cfg_rd(c, cap + 2, 2) & 0xc000, 0x8000);
    pthread_mutex_lock(&c->dev.lock);
    virtio_dev_config_changed(&c->dev);
    pthread_mutex_unlock(&c->dev.lock);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 4), 1u << 1);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 1), 1u << 1);
    assert_int_equal(rd(c, VIRTIO_ISR_OFF, 1), 2);
    /* unmasking delivers it */
    wr(c, VIRTIO_MSIX_TABLE_OFF + 16 + 12, 0, 4);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 4), 0);
    /* the function mask pends everything again */
    cfg_wr(c, cap + 2, 0xc000, 2);
    assert_true(c->dev.msix_masked);
    pthread_mutex_lock(&c->dev.lock);
    virtio_dev_config_changed(&c->dev);
    pthread_mutex_unlock(&c->dev.lock);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 4), 1u << 1);
    cfg_wr(c, cap + 2, 0x8000, 2);
    assert_int_equal(rd(c, VIRTIO_MSIX_PBA_OFF, 4), 0);
    /* the table size field is read-only */
    cfg_wr(c, cap + 2, 0x07ff, 2);
    assert_int_equal(cfg_rd(c, cap + 2, 2), NQUEUES);
}

/* ---- device configuration --------------------------------------------------- */

static void test_device_config_window(void **state)
{
    struct ctx *c = CTX(state);
    unsigned reads;

    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF, 4), 0xa3a2a1a0);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + 4, 4), 0xa7a6a5a4);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + 7, 1), 0xa7);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF, 8), 0xa7a6a5a4a3a2a1a0ULL);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + 2, 2), 0xa3a2);
    reads = c->cfg_reads;
    /* crossing or past the end: zeros, the device is not asked */
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + 6, 4), 0);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + 8, 1), 0);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + 4, 8), 0);
    assert_int_equal(rd(c, VIRTIO_DEVCFG_OFF + VIRTIO_DEVCFG_MAX - 4, 4), 0);
    assert_int_equal(c->cfg_reads, reads);

    wr(c, VIRTIO_DEVCFG_OFF + 4, 0x11223344, 4);
    assert_int_equal(c->cfg_writes, 1);
    assert_int_equal(c->last_cfg_off, 4);
    assert_int_equal(c->last_cfg_len, 4);
    assert_int_equal(le(c->last_cfg_data, 4), 0x11223344);
    wr(c, VIRTIO_DEVCFG_OFF + 7, 0x55, 1);
    assert_int_equal(c->cfg_writes, 2);
    assert_int_equal(c->last_cfg_off, 7);
    wr(c, VIRTIO_DEVCFG_OFF + 6, 0, 4);
    wr(c, VIRTIO_DEVCFG_OFF + 8, 0, 1);
    assert_int_equal(c->cfg_writes, 2);
}

/* ---- PCI config space --------------------------------------------------------- */

static void test_pci_identity(void **state)
{
    struct ctx *c = CTX(state);
    uint64_t bar = c->dev.pci.bars[0].addr;

    assert_int_equal(cfg_rd(c, PCI_VENDOR_ID, 2), VIRTIO_PCI_VENDOR);
    assert_int_equal(cfg_rd(c, PCI_DEVICE_ID, 2), VIRTIO_PCI_DEVICE_BASE + 2);
    assert_int_equal(cfg_rd(c, PCI_REVISION, 1), 1);
    assert_int_equal(cfg_rd(c, PCI_SUBSYS_VENDOR, 2), VIRTIO_PCI_VENDOR);
    assert_int_equal(cfg_rd(c, PCI_SUBSYS_ID, 2), 0x42);
    assert_int_equal(cfg_rd(c, PCI_CLASS_PROG + 1, 2), 0x0180);
    assert_true(cfg_rd(c, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    /* BAR0: 32 KiB, aligned, in the window, sizable */
    assert_int_equal(c->dev.pci.bars[0].size, VIRTIO_BAR_SIZE);
    assert_int_equal(bar % VIRTIO_BAR_SIZE, 0);
    assert_true(bar >= PCI_MMIO_WINDOW_START && bar + VIRTIO_BAR_SIZE <= PCI_MMIO_WINDOW_END);
    assert_int_equal(cfg_rd(c, PCI_BAR0, 4), bar);
    cfg_wr(c, PCI_BAR0, 0xffffffff, 4);
    assert_int_equal(cfg_rd(c, PCI_BAR0, 4), (uint32_t)~(VIRTIO_BAR_SIZE - 1));
    cfg_wr(c, PCI_BAR0, bar, 4);
    assert_int_equal(cfg_rd(c, PCI_BAR0, 4), bar);
    for (unsigned b = 1; b < PCI_NUM_BARS; b++)
        assert_int_equal(cfg_rd(c, PCI_BAR0 + 4 * b, 4), 0);
    /* the BAR is on the MMIO bus */
    assert_non_null(bus_find(&c->mmio, bar, 4));
    assert_non_null(bus_find(&c->mmio, bar + VIRTIO_BAR_SIZE - 4, 4));
}

static void test_capability_chain(void **state)
{
    struct ctx *c = CTX(state);
    static const struct {
        uint8_t type;
        uint32_t offset, length;
        uint8_t len;
    } want[] = {
        {1, VIRTIO_COMMON_OFF, VIRTIO_COMMON_SIZE, 16},
        {2, VIRTIO_NOTIFY_OFF, VIRTIO_NOTIFY_MULT * NQUEUES, 20},
        {3, VIRTIO_ISR_OFF, 1, 16},
        {4, VIRTIO_DEVCFG_OFF, CFG_SIZE, 16},
        {5, 0, 0, 20},
    };
    unsigned p = msix_cap(c), n = 0;

    /* MSI-X first: table size N-1, table and PBA in BAR0 */
    assert_true(p >= 0x40);
    assert_int_equal(cfg_rd(c, p, 1), 0x11);
    assert_int_equal(cfg_rd(c, p + 2, 2) & 0x7ff, NQUEUES + 1 - 1);
    assert_int_equal(cfg_rd(c, p + 2, 2) & 0xc000, 0); /* disabled, not masked */
    assert_int_equal(cfg_rd(c, p + 4, 4), VIRTIO_MSIX_TABLE_OFF); /* BIR 0 */
    assert_int_equal(cfg_rd(c, p + 8, 4), VIRTIO_MSIX_PBA_OFF);
    for (p = (unsigned)cfg_rd(c, p + 1, 1); p; p = (unsigned)cfg_rd(c, p + 1, 1), n++) {
        if (n >= sizeof(want) / sizeof(want[0]))
            fail_msg("more capabilities than expected (at %#x)", p);
        assert_int_equal(p & 3, 0);
        assert_int_equal(cfg_rd(c, p, 1), 0x09);
        assert_int_equal(cfg_rd(c, p + 2, 1), want[n].len);
        assert_int_equal(cfg_rd(c, p + 3, 1), want[n].type);
        assert_int_equal(cfg_rd(c, p + 4, 1), 0); /* BAR0 */
        assert_int_equal(cfg_rd(c, p + 8, 4), want[n].offset);
        assert_int_equal(cfg_rd(c, p + 12, 4), want[n].length);
        if (want[n].type == 2)
            assert_int_equal(cfg_rd(c, p + 16, 4), VIRTIO_NOTIFY_MULT);
        if (want[n].type == 5)
            assert_int_equal(p, c->dev.pcicfg_cap);
        /* the device's regions fit in the BAR */
        assert_true(want[n].offset + want[n].length <= VIRTIO_BAR_SIZE);
    }
    assert_int_equal(n, 5);
    /* the structure capabilities are read-only */
    p = (unsigned)cfg_rd(c, msix_cap(c) + 1, 1);
    cfg_wr(c, p + 8, 0x12345678, 4);
    assert_int_equal(cfg_rd(c, p + 8, 4), VIRTIO_COMMON_OFF);
    /* each queue's notify address is distinct and inside the notify region */
    for (unsigned q = 0; q < NQUEUES; q++) {
        wr(c, CC_Q_SELECT, q, 2);
        assert_int_equal(rd(c, CC_Q_NOTIFY_OFF, 2) * VIRTIO_NOTIFY_MULT, 4 * q);
    }
}

static void test_pci_cfg_window(void **state)
{
    struct ctx *c = CTX(state);
    unsigned p = c->dev.pcicfg_cap;

    assert_true(p != 0);
    /* read num_queues (2 bytes) */
    cfg_wr(c, p + 4, 0, 1);
    cfg_wr(c, p + 8, CC_NUM_QUEUES, 4);
    cfg_wr(c, p + 12, 2, 4);
    assert_int_equal(cfg_rd(c, p + 16, 4) & 0xffff, NQUEUES);
    assert_int_equal(cfg_rd(c, p + 16, 2), rd(c, CC_NUM_QUEUES, 2));
    /* device features, 4 bytes */
    wr(c, CC_DFSELECT, 0, 4);
    cfg_wr(c, p + 8, CC_DF, 4);
    cfg_wr(c, p + 12, 4, 4);
    assert_int_equal(cfg_rd(c, p + 16, 4), rd(c, CC_DF, 4));
    /* the device config, 1 byte */
    cfg_wr(c, p + 8, VIRTIO_DEVCFG_OFF + 3, 4);
    cfg_wr(c, p + 12, 1, 4);
    assert_int_equal(cfg_rd(c, p + 16, 1), 0xa3);
    /* a write through the window: queue_select */
    cfg_wr(c, p + 8, CC_Q_SELECT, 4);
    cfg_wr(c, p + 12, 2, 4);
    cfg_wr(c, p + 16, 1, 2);
    assert_int_equal(rd(c, CC_Q_SELECT, 2), 1);
    assert_int_equal(c->dev.queue_sel, 1);
    /* status through the window */
    cfg_wr(c, p + 8, CC_STATUS, 4);
    cfg_wr(c, p + 12, 1, 4);
    cfg_wr(c, p + 16, S_ACK, 1);
    assert_int_equal(status(c), S_ACK);
    assert_int_equal(cfg_rd(c, p + 16, 1), S_ACK);

    /* lengths other than 1, 2, 4 and BARs other than 0 reach nothing */
    cfg_wr(c, p + 8, CC_Q_SELECT, 4);
    cfg_wr(c, p + 12, 3, 4);
    cfg_wr(c, p + 16, 0, 2);
    assert_int_equal(rd(c, CC_Q_SELECT, 2), 1);
    cfg_wr(c, p + 12, 2, 4);
    cfg_wr(c, p + 4, 1, 1);
    cfg_wr(c, p + 16, 0, 2);
    assert_int_equal(rd(c, CC_Q_SELECT, 2), 1);
    /* an offset past the BAR reaches nothing */
    cfg_wr(c, p + 4, 0, 1);
    cfg_wr(c, p + 8, VIRTIO_BAR_SIZE - 1, 4);
    cfg_wr(c, p + 12, 2, 4);
    cfg_wr(c, p + 16, 0xffff, 2);
    assert_int_equal(rd(c, CC_Q_SELECT, 2), 1);
    /* the window fields read back what the driver wrote */
    assert_int_equal(cfg_rd(c, p + 8, 4), VIRTIO_BAR_SIZE - 1);
    assert_int_equal(cfg_rd(c, p + 12, 4), 2);
}

/* Offsets whose offset + length wraps in 32 bits reach nothing, either way. */
static void test_pci_cfg_window_wrap(void **state)
{
    struct ctx *c = CTX(state);
    unsigned p = c->dev.pcicfg_cap;
    static const uint32_t lens[] = {1, 2, 4};
    uint8_t before[VIRTIO_COMMON_SIZE], after[VIRTIO_COMMON_SIZE];

    assert_true(p != 0);
    wr(c, CC_Q_SELECT, 1, 2);
    wr(c, CC_STATUS, S_ACK, 1);
    for (unsigned i = 0; i < VIRTIO_COMMON_SIZE; i++)
        before[i] = (uint8_t)rd(c, i, 1);
    cfg_wr(c, p + 4, 0, 1);
    for (unsigned i = 0; i < 3; i++) {
        uint32_t len = lens[i];
        /* off + len wraps to 0 .. len - 1 for the first ones */
        const uint32_t offs[] = {0xffffffffu, 0xffffffffu - (len - 1), 0xffffffffu - len / 2,
                                 0x80000000u, VIRTIO_BAR_SIZE - len + 1};

        for (unsigned k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
            cfg_wr(c, p + 8, offs[k], 4);
            cfg_wr(c, p + 12, len, 4);
            cfg_wr(c, p + 16, 0, 4); /* a write: zeroes, if it reached anything */
            cfg_wr(c, p + 16, 0xa5a5a5a5u, 4);
            /* a read: the data field keeps what was written, nothing read */
            assert_int_equal(cfg_rd(c, p + 16, 4), 0xa5a5a5a5u);
            assert_int_equal(cfg_rd(c, p + 8, 4), offs[k]);
        }
    }
    for (unsigned i = 0; i < VIRTIO_COMMON_SIZE; i++)
        after[i] = (uint8_t)rd(c, i, 1);
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(status(c), S_ACK);
    assert_int_equal(c->dev.queue_sel, 1);
}

/* PCI 3.0 6.8.2 allows aligned qword accesses to the MSI-X table. */
static void test_msix_table_qword(void **state)
{
    struct ctx *c = CTX(state);
    uint64_t e = VIRTIO_MSIX_TABLE_OFF + 16;

    wr(c, e + 0, 0x00000000fee01000ULL, 8);
    assert_int_equal(rd(c, e + 0, 4), 0xfee01000);
    wr(c, e + 8, 0x0000000000004022ULL, 8);
    assert_int_equal(rd(c, e + 8, 4), 0x4022);
    assert_int_equal(rd(c, e + 12, 4), 0);
    assert_int_equal(rd(c, e + 0, 8), 0x00000000fee01000ULL);
    assert_int_equal(rd(c, e + 8, 8), 0x0000000000004022ULL);
}

static void test_init_errors(void **state)
{
    struct ctx *c = CTX(state);
    struct virtio_dev *d = calloc(1, sizeof(*d));
    struct virtio_dev_ops big = fake_ops;
    struct herd_err err;

    assert_non_null(d);
    herd_err_clear(&err);
    assert_int_equal(virtio_dev_init(d, &fake_ops, c, 0, 0, &c->kvm, &c->gm, &c->pci, &c->mmio,
                                     &err), -EINVAL);
    assert_true(err.msg[0] != 0);
    virtio_dev_destroy(d);
    herd_err_clear(&err);
    assert_int_equal(virtio_dev_init(d, &fake_ops, c, 0, VIRTIO_MAX_QUEUES + 1, &c->kvm, &c->gm,
                                     &c->pci, &c->mmio, &err), -EINVAL);
    assert_true(err.msg[0] != 0);
    virtio_dev_destroy(d);
    big.config_size = VIRTIO_DEVCFG_MAX + 1;
    herd_err_clear(&err);
    assert_int_equal(virtio_dev_init(d, &big, c, 0, 1, &c->kvm, &c->gm, &c->pci, &c->mmio, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "config")); /* names the real problem */
    virtio_dev_destroy(d);
    /* nothing was plugged in */
    assert_null(c->pci.devs[c->dev.pci.slot + 1]);
    free(d);
}

/* ---- the I/O thread ------------------------------------------------------------- */

static bool wait_notify(struct ctx *c, unsigned q, unsigned want)
{
    for (int i = 0; i < 2000; i++) {
        if (__atomic_load_n(&c->notify[q], __ATOMIC_SEQ_CST) >= want)
            return true;
        usleep(1000);
    }
    return false;
}

static void test_kick_reaches_device(void **state)
{
    struct ctx *c = CTX(state);
    unsigned n;

    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    program_queue(c, 0, 64, DESC, AVAIL, USED);
    wr(c, CC_Q_ENABLE, 1, 2);
    assert_int_equal(virtio_dev_start(&c->dev), 0);
    /* DRIVER_OK picks up whatever was queued before it */
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    assert_true(wait_notify(c, 0, 1));
    usleep(20000);
    n = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);
    /* a write to queue 0's notify address (the ioeventfd fallback path) */
    wr(c, VIRTIO_NOTIFY_OFF + 0 * VIRTIO_NOTIFY_MULT, 0, 2);
    assert_true(wait_notify(c, 0, n + 1));
    /* and through the MMIO bus, a dword */
    n = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);
    {
        uint8_t b[4] = {0};

        assert_true(bus_dispatch(&c->mmio, c->dev.pci.bars[0].addr + VIRTIO_NOTIFY_OFF, b, 4,
                                 true));
    }
    assert_true(wait_notify(c, 0, n + 1));
    /* queue 1 is not enabled: its kick reaches nobody */
    wr(c, VIRTIO_NOTIFY_OFF + 1 * VIRTIO_NOTIFY_MULT, 1, 2);
    usleep(50000);
    assert_int_equal(__atomic_load_n(&c->notify[1], __ATOMIC_SEQ_CST), 0);
    /* notify writes past the last queue are harmless */
    wr(c, VIRTIO_NOTIFY_OFF + NQUEUES * VIRTIO_NOTIFY_MULT, 0, 2);
    /* a broken device is not served */
    pthread_mutex_lock(&c->dev.lock);
    virtio_dev_fail(&c->dev, 0, "test");
    pthread_mutex_unlock(&c->dev.lock);
    assert_true(status(c) & VIRTIO_STATUS_NEEDS_RESET);
    n = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);
    wr(c, VIRTIO_NOTIFY_OFF, 0, 2);
    usleep(50000);
    assert_int_equal(__atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST), n);
    /* teardown stops the thread */
}

/* Queue 0 inline: a kick is served before the notify write returns, on the
 * kicking (here: the test's) thread; queue 1 still goes through the I/O
 * thread. */
static void test_inline_kick_served_on_caller(void **state)
{
    struct ctx *c = CTX(state);

    assert_int_equal(c->dev.inline_queues, 1u << 0);
    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    for (unsigned q = 0; q < 2; q++) {
        program_queue(c, q, 64, DESC + q * 0x4000, AVAIL + q * 0x4000, USED + q * 0x4000);
        wr(c, CC_Q_ENABLE, 1, 2);
    }
    assert_int_equal(virtio_dev_start(&c->dev), 0);
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    /* DRIVER_OK's sweep of both queues, on the I/O thread */
    assert_true(wait_notify(c, 0, 1) && wait_notify(c, 1, 1));
    assert_false(pthread_equal(c->notified_by[1], pthread_self()));
    usleep(20000);
    for (unsigned i = 1; i <= 3; i++) {
        unsigned n = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);

        wr(c, VIRTIO_NOTIFY_OFF + 0 * VIRTIO_NOTIFY_MULT, 0, 2);
        assert_int_equal(__atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST), n + 1);
        assert_true(pthread_equal(c->notified_by[0], pthread_self()));
    }
    wr(c, VIRTIO_NOTIFY_OFF + 1 * VIRTIO_NOTIFY_MULT, 1, 2);
    assert_true(wait_notify(c, 1, 2));
    assert_false(pthread_equal(c->notified_by[1], pthread_self()));
    /* An entry waits and the device takes nothing (a NIC over its rate
     * limit): the kick returns after two rounds instead of spinning. */
    {
        uint16_t *avail_idx = guest_mem_ptr(&c->gm, AVAIL + 2, 2);
        unsigned n = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);

        assert_non_null(avail_idx);
        *avail_idx = 1;
        wr(c, VIRTIO_NOTIFY_OFF + 0 * VIRTIO_NOTIFY_MULT, 0, 2);
        assert_int_equal(__atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST), n + 2);
    }
    /* a broken device is not served inline either */
    pthread_mutex_lock(&c->dev.lock);
    virtio_dev_fail(&c->dev, 0, "test");
    pthread_mutex_unlock(&c->dev.lock);
    {
        unsigned n = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);

        wr(c, VIRTIO_NOTIFY_OFF, 0, 2);
        assert_int_equal(__atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST), n);
    }
}

/* A polled queue whose entry the device will not take now (a NIC over its
 * rate limit, on the ioeventfd path): the I/O thread gives up after two
 * rounds that took nothing, leaving the entry to the device's own wake-up,
 * instead of spinning until the device takes it. */
static void test_polled_refused_entry_no_spin(void **state)
{
    struct ctx *c = CTX(state);
    uint16_t *avail_idx = guest_mem_ptr(&c->gm, AVAIL + 2, 2);
    unsigned n0, n1, n2;

    assert_non_null(avail_idx);
    assert_int_equal(negotiate(c, GOOD_FEATURES), S_ACK | S_DRV | S_FOK);
    program_queue(c, 0, 64, DESC, AVAIL, USED);
    wr(c, CC_Q_ENABLE, 1, 2);
    assert_int_equal(virtio_dev_start(&c->dev), 0);
    set_status(c, S_ACK | S_DRV | S_FOK | S_DOK);
    usleep(20000);
    n0 = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);
    *avail_idx = 1; /* one entry, which the fake never takes */
    wr(c, VIRTIO_NOTIFY_OFF + 0 * VIRTIO_NOTIFY_MULT, 0, 2);
    assert_true(wait_notify(c, 0, n0 + 1));
    usleep(50000);
    n1 = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);
    usleep(100000);
    n2 = __atomic_load_n(&c->notify[0], __ATOMIC_SEQ_CST);
    if (n2 != n1)
        *avail_idx = 0; /* let a spinning thread go (teardown joins it), then fail */
    assert_int_equal(n2, n1); /* nothing more after the thread gave up */
    /* and a new kick is served again */
    wr(c, VIRTIO_NOTIFY_OFF + 0 * VIRTIO_NOTIFY_MULT, 0, 2);
    assert_true(wait_notify(c, 0, n2 + 1));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_initial_registers),
        T(test_device_features_offered),
        T(test_features_accepted),
        T(test_features_not_offered_refused),
        T(test_features_without_version1_refused),
        T(test_reset),
        T(test_queue_select),
        T(test_queue_size_clamped),
        T(test_queue_addresses_read_back),
        T(test_queue_outside_ram_needs_reset),
        T(test_queue_bad_layouts_need_reset),
        T(test_queue_enable_good),
        T(test_msix_vector_numbers),
        T(test_msix_table),
        T(test_msix_pending_and_isr),
        T(test_device_config_window),
        T(test_pci_identity),
        T(test_capability_chain),
        T(test_pci_cfg_window),
        T(test_pci_cfg_window_wrap),
        T(test_init_errors),
        T(test_msix_table_qword),
        T(test_kick_reaches_device),
        cmocka_unit_test_setup_teardown(test_inline_kick_served_on_caller, setup_inline,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_polled_refused_entry_no_spin, setup_polled,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
