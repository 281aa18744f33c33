/*
 * virtio-pci modern transport. Register semantics follow virtio 1.x 4.1.4;
 * MSI-X follows PCI 3.0 6.8.2 (per-vector mask, function mask, pending
 * bits). Locking: dev->lock guards all transport and queue state; the vCPU
 * threads take it for BAR accesses, the I/O thread while serving queues.
 */
#include "herd/virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "herd/jail.h"
#include "herd/log.h"

/* Capability types (4.1.4). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR    3
#define CAP_DEVICE 4
#define CAP_PCI_CFG 5
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 1

/* Common configuration register offsets. */
enum {
    CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c,
    CC_MSIX_CONFIG = 0x10, CC_NUM_QUEUES = 0x12, CC_STATUS = 0x14, CC_CFG_GEN = 0x15,
    CC_Q_SELECT = 0x16, CC_Q_SIZE = 0x18, CC_Q_MSIX = 0x1a, CC_Q_ENABLE = 0x1c,
    CC_Q_NOTIFY_OFF = 0x1e, CC_Q_DESC = 0x20, CC_Q_DRIVER = 0x28, CC_Q_DEVICE = 0x30,
};

struct virtio_pci_cap {
    uint8_t cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2];
    uint32_t offset, length;
} __attribute__((packed));

bool virtio_has_feature(const struct virtio_dev *dev, unsigned bit)
{
    return dev->driver_features & (1ULL << bit);
}

bool virtio_queue_live(const struct virtio_dev *dev, unsigned q)
{
    return q < dev->nr_queues && dev->queues[q].enabled &&
           (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(dev->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- interrupts --------------------------------------------------------- */

static bool vector_masked(const struct virtio_dev *dev, unsigned v)
{
    return dev->msix_masked || (dev->vectors[v].ctrl & MSIX_ENTRY_MASKED);
}

static void fire_vector(struct virtio_dev *dev, uint16_t v)
{
    uint64_t one = 1;

    if (!dev->msix_enabled || v >= dev->nr_vectors)
        return; /* no MSI-X: drivers poll (INTx is not offered) */
    if (vector_masked(dev, v)) {
        dev->vectors[v].pending = true;
        return;
    }
    if (write(dev->vectors[v].fd, &one, sizeof(one)) < 0)
        log_warn_guest("%s: interrupt eventfd write failed: %s", dev->ops->name, strerror(errno));
}

void virtio_dev_signal_queue(struct virtio_dev *dev, unsigned q)
{
    if (!virtq_should_signal(&dev->queues[q].vq))
        return;
    dev->isr |= 1;
    fire_vector(dev, dev->queues[q].msix_vector);
}

void virtio_dev_interrupt_queue(struct virtio_dev *dev, unsigned q)
{
    if (q >= dev->nr_queues)
        return;
    dev->isr |= 1;
    fire_vector(dev, dev->queues[q].msix_vector);
}

void virtio_dev_config_changed(struct virtio_dev *dev)
{
    dev->config_generation++;
    dev->isr |= 2;
    fire_vector(dev, dev->config_vector);
}

void virtio_dev_fail(struct virtio_dev *dev, unsigned q, const char *why)
{
    dev->bad_chains++;
    log_warn_guest("%s (pci %02x.0) queue %u: %s; device needs reset", dev->ops->name,
                   dev->pci.slot, q, why);
    if (dev->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    dev->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (dev->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_dev_config_changed(dev);
}

/* The guest changed an MSI-X entry or mask: re-route, deliver pending. */
static void update_vector(struct virtio_dev *dev, unsigned v)
{
    struct virtio_vector *vec = &dev->vectors[v];
    uint64_t addr = ((uint64_t)vec->addr_hi << 32) | vec->addr_lo;

    if (vec->gsi < 0)
        return;
    if (!vector_masked(dev, v)) {
        int rc = kvm_msi_route_set(dev->kvm, (unsigned)vec->gsi, addr, vec->data);

        if (rc)
            log_warn_guest("%s: MSI route for vector %u: %s", dev->ops->name, v, strerror(-rc));
        if (vec->pending && dev->msix_enabled) {
            vec->pending = false;
            fire_vector(dev, (uint16_t)v);
        }
    }
}

/* ---- reset and queues ---------------------------------------------------- */

static void reset_device(struct virtio_dev *dev)
{
    for (unsigned q = 0; q < dev->nr_queues; q++) {
        struct virtio_queue *vq = &dev->queues[q];

        virtq_reset(&vq->vq);
        vq->vq.size = vq->max_size;
        vq->enabled = false;
        vq->msix_vector = VIRTIO_NO_VECTOR;
    }
    dev->driver_features = 0;
    dev->dfselect = dev->gfselect = 0;
    dev->config_vector = VIRTIO_NO_VECTOR;
    dev->status = 0;
    dev->isr = 0;
    dev->queue_sel = 0;
    if (dev->ops->reset)
        dev->ops->reset(dev);
}

static void enable_queue(struct virtio_dev *dev, unsigned q)
{
    struct virtio_queue *vq = &dev->queues[q];
    struct herd_err why;

    vq->vq.event_idx = virtio_has_feature(dev, VIRTIO_F_EVENT_IDX);
    vq->vq.indirect = virtio_has_feature(dev, VIRTIO_F_INDIRECT_DESC);
    if (virtq_start(&vq->vq, &why)) {
        virtio_dev_fail(dev, q, why.msg);
        return;
    }
    vq->enabled = true;
}

static void set_status(struct virtio_dev *dev, uint8_t status)
{
    uint8_t old = dev->status;

    if (status == 0) {
        reset_device(dev);
        return;
    }
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
        /* Refuse features we did not offer, and legacy drivers. */
        if ((dev->driver_features & ~dev->device_features) ||
            !virtio_has_feature(dev, VIRTIO_F_VERSION_1)) {
            log_warn_guest("%s: driver accepted features %#llx (offered %#llx): refused",
                     dev->ops->name, (unsigned long long)dev->driver_features,
                     (unsigned long long)dev->device_features);
            status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        } else if (dev->ops->features_ok) {
            dev->ops->features_ok(dev);
        }
    }
    /* NEEDS_RESET is the device's to set; the driver cannot clear it. */
    dev->status = (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) |
                            (dev->status & VIRTIO_STATUS_NEEDS_RESET));
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
        dev->ops->driver_ok)
        dev->ops->driver_ok(dev);
    if (status & VIRTIO_STATUS_DRIVER_OK) {
        uint64_t one = 1;

        /* Work the driver queued before DRIVER_OK is picked up now. */
        for (unsigned q = 0; q < dev->nr_queues; q++)
            if (dev->queues[q].enabled && write(dev->queues[q].kick_fd, &one, sizeof(one)) < 0)
                log_warn_guest("%s: kick eventfd write failed", dev->ops->name);
    }
}

/* ---- common configuration ------------------------------------------------ */

static void common_image(struct virtio_dev *dev, uint8_t *b)
{
    struct virtio_queue *vq = dev->queue_sel < dev->nr_queues ? &dev->queues[dev->queue_sel]
                                                              : NULL;

    memset(b, 0, VIRTIO_COMMON_SIZE);
    pci_put32(b + CC_DFSELECT, dev->dfselect);
    pci_put32(b + CC_DF, dev->dfselect < 2 ? (uint32_t)(dev->device_features >> (32 * dev->dfselect)) : 0);
    pci_put32(b + CC_GFSELECT, dev->gfselect);
    pci_put32(b + CC_GF, dev->gfselect < 2 ? (uint32_t)(dev->driver_features >> (32 * dev->gfselect)) : 0);
    pci_put16(b + CC_MSIX_CONFIG, dev->config_vector);
    pci_put16(b + CC_NUM_QUEUES, (uint16_t)dev->nr_queues);
    b[CC_STATUS] = dev->status;
    b[CC_CFG_GEN] = dev->config_generation;
    pci_put16(b + CC_Q_SELECT, dev->queue_sel);
    if (!vq)
        return; /* a nonexistent queue reads as size 0 */
    pci_put16(b + CC_Q_SIZE, vq->vq.size);
    pci_put16(b + CC_Q_MSIX, vq->msix_vector);
    pci_put16(b + CC_Q_ENABLE, vq->enabled);
    pci_put16(b + CC_Q_NOTIFY_OFF, (uint16_t)dev->queue_sel);
    pci_put32(b + CC_Q_DESC, (uint32_t)vq->vq.desc_gpa);
    pci_put32(b + CC_Q_DESC + 4, (uint32_t)(vq->vq.desc_gpa >> 32));
    pci_put32(b + CC_Q_DRIVER, (uint32_t)vq->vq.avail_gpa);
    pci_put32(b + CC_Q_DRIVER + 4, (uint32_t)(vq->vq.avail_gpa >> 32));
    pci_put32(b + CC_Q_DEVICE, (uint32_t)vq->vq.used_gpa);
    pci_put32(b + CC_Q_DEVICE + 4, (uint32_t)(vq->vq.used_gpa >> 32));
}

static bool touches(unsigned off, unsigned len, unsigned reg, unsigned reg_len)
{
    return off < reg + reg_len && reg < off + len;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)pci_get32(p) | ((uint64_t)pci_get32(p + 4) << 32);
}

static void write_queue_regs(struct virtio_dev *dev, const uint8_t *b, unsigned off,
                             unsigned len)
{
    struct virtio_queue *vq;

    if (dev->queue_sel >= dev->nr_queues)
        return;
    vq = &dev->queues[dev->queue_sel];
    if (touches(off, len, CC_Q_MSIX, 2)) {
        uint16_t v = pci_get16(b + CC_Q_MSIX);

        vq->msix_vector = v < dev->nr_vectors ? v : VIRTIO_NO_VECTOR;
    }
    if (vq->enabled) {
        if (touches(off, len, CC_Q_ENABLE, 2) && pci_get16(b + CC_Q_ENABLE) == 0)
            log_debug("%s: queue %u disable ignored (reset the device)", dev->ops->name,
                      dev->queue_sel);
        return; /* a live queue's layout cannot change */
    }
    if (touches(off, len, CC_Q_SIZE, 2)) {
        uint16_t size = pci_get16(b + CC_Q_SIZE);

        vq->vq.size = size <= vq->max_size ? size : vq->max_size;
    }
    if (touches(off, len, CC_Q_DESC, 8))
        vq->vq.desc_gpa = get64(b + CC_Q_DESC);
    if (touches(off, len, CC_Q_DRIVER, 8))
        vq->vq.avail_gpa = get64(b + CC_Q_DRIVER);
    if (touches(off, len, CC_Q_DEVICE, 8))
        vq->vq.used_gpa = get64(b + CC_Q_DEVICE);
    if (touches(off, len, CC_Q_ENABLE, 2) && pci_get16(b + CC_Q_ENABLE) == 1)
        enable_queue(dev, dev->queue_sel);
}

static void common_write(struct virtio_dev *dev, unsigned off, const uint8_t *data, unsigned len)
{
    uint8_t b[VIRTIO_COMMON_SIZE];

    common_image(dev, b);
    memcpy(b + off, data, len);
    if (touches(off, len, CC_DFSELECT, 4))
        dev->dfselect = pci_get32(b + CC_DFSELECT);
    if (touches(off, len, CC_GFSELECT, 4))
        dev->gfselect = pci_get32(b + CC_GFSELECT);
    if (touches(off, len, CC_GF, 4) && dev->gfselect < 2 &&
        !(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
        unsigned shift = 32 * dev->gfselect;

        dev->driver_features &= ~(0xffffffffULL << shift);
        dev->driver_features |= (uint64_t)pci_get32(b + CC_GF) << shift;
    }
    if (touches(off, len, CC_MSIX_CONFIG, 2)) {
        uint16_t v = pci_get16(b + CC_MSIX_CONFIG);

        dev->config_vector = v < dev->nr_vectors ? v : VIRTIO_NO_VECTOR;
    }
    if (touches(off, len, CC_Q_SELECT, 2))
        dev->queue_sel = pci_get16(b + CC_Q_SELECT);
    write_queue_regs(dev, b, off, len);
    if (touches(off, len, CC_STATUS, 1))
        set_status(dev, b[CC_STATUS]);
}

/* ---- MSI-X table ---------------------------------------------------------- */

static uint32_t msix_word(const struct virtio_vector *vec, unsigned word)
{
    const uint32_t words[4] = {vec->addr_lo, vec->addr_hi, vec->data, vec->ctrl};

    return words[word & 3];
}

/* Aligned dword or qword accesses only (PCI 3.0 6.8.2); others read 0. */
static void msix_table_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    unsigned v = off / 16, word = (off % 16) / 4;

    memset(data, 0, len);
    if (v >= dev->nr_vectors)
        return;
    if (len < 4 && (off % 4) + len <= 4) { /* lenient: a part of one dword */
        uint32_t val = msix_word(&dev->vectors[v], word) >> (8 * (off % 4));

        memcpy(data, &val, len);
        return;
    }
    if ((len != 4 && len != 8) || off % len)
        return;
    for (unsigned i = 0; i < len / 4; i++) {
        uint32_t val = msix_word(&dev->vectors[v], word + i);

        memcpy(data + 4 * i, &val, 4);
    }
}

static void msix_set_word(struct virtio_vector *vec, unsigned word, uint32_t val)
{
    switch (word) {
    case 0: vec->addr_lo = val; break;
    case 1: vec->addr_hi = val; break;
    case 2: vec->data = val; break;
    case 3: vec->ctrl = val & MSIX_ENTRY_MASKED; break;
    }
}

static void msix_table_write(struct virtio_dev *dev, unsigned off, const uint8_t *data,
                             unsigned len)
{
    unsigned v = off / 16, word = (off % 16) / 4;

    if (v >= dev->nr_vectors || (len != 4 && len != 8) || off % len)
        return;
    for (unsigned i = 0; i < len / 4; i++) {
        uint32_t val;

        memcpy(&val, data + 4 * i, 4);
        msix_set_word(&dev->vectors[v], word + i, val);
    }
    update_vector(dev, v);
}

static void msix_pba_read(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    uint64_t bits = 0;

    for (unsigned v = 0; v < dev->nr_vectors; v++)
        if (dev->vectors[v].pending)
            bits |= 1ULL << v;
    memset(data, 0, len);
    if (off < 8)
        memcpy(data, (uint8_t *)&bits + off, len > 8 - off ? 8 - off : len);
}

static bool served_inline(const struct virtio_dev *dev, unsigned q)
{
    return dev->inline_queues & (1u << q);
}

void virtio_dev_serve(struct virtio_dev *dev, unsigned q)
{
    struct virtq *vq = &dev->queues[q].vq;
    unsigned idle = 0;

    while (virtio_queue_live(dev, q)) {
        if (dev->ops->queue_notify(dev, q) == 0 && ++idle == 2)
            break;
        if (!virtq_enable_notify(vq))
            break;
    }
}

/* A kick of an inline queue, on the kicking vCPU's thread. */
static void serve_inline(struct virtio_dev *dev, unsigned q)
{
    pthread_mutex_lock(&dev->lock);
    virtio_dev_serve(dev, q);
    pthread_mutex_unlock(&dev->lock);
}

/* ---- BAR decoding --------------------------------------------------------- */

void virtio_bar_read(struct virtio_dev *dev, uint64_t off, uint8_t *data, unsigned len)
{
    memset(data, 0, len);
    pthread_mutex_lock(&dev->lock);
    if (off + len <= VIRTIO_COMMON_SIZE) {
        uint8_t b[VIRTIO_COMMON_SIZE];

        common_image(dev, b);
        memcpy(data, b + off, len);
    } else if (off == VIRTIO_ISR_OFF) {
        data[0] = dev->isr; /* reading ISR acknowledges it */
        dev->isr = 0;
    } else if (off >= VIRTIO_DEVCFG_OFF && off + len <= VIRTIO_DEVCFG_OFF + dev->ops->config_size) {
        dev->ops->config_read(dev, (unsigned)(off - VIRTIO_DEVCFG_OFF), data, len);
    } else if (off >= VIRTIO_MSIX_TABLE_OFF && off < VIRTIO_MSIX_TABLE_OFF + 16 * dev->nr_vectors) {
        msix_table_read(dev, (unsigned)(off - VIRTIO_MSIX_TABLE_OFF), data, len);
    } else if (off >= VIRTIO_MSIX_PBA_OFF && off < VIRTIO_MSIX_PBA_OFF + 8) {
        msix_pba_read(dev, (unsigned)(off - VIRTIO_MSIX_PBA_OFF), data, len);
    }
    pthread_mutex_unlock(&dev->lock);
}

void virtio_bar_write(struct virtio_dev *dev, uint64_t off, const uint8_t *data, unsigned len)
{
    if (off >= VIRTIO_NOTIFY_OFF && off < VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * dev->nr_queues) {
        /* Normally swallowed by the ioeventfd; this is the fallback path. */
        unsigned q = (unsigned)(off - VIRTIO_NOTIFY_OFF) / VIRTIO_NOTIFY_MULT;
        uint64_t one = 1;

        if (served_inline(dev, q)) {
            serve_inline(dev, q);
            return;
        }
        if (write(dev->queues[q].kick_fd, &one, sizeof(one)) < 0)
            log_warn_guest("%s: kick eventfd write failed", dev->ops->name);
        return;
    }
    pthread_mutex_lock(&dev->lock);
    if (off + len <= VIRTIO_COMMON_SIZE)
        common_write(dev, (unsigned)off, data, len);
    else if (off >= VIRTIO_DEVCFG_OFF && off + len <= VIRTIO_DEVCFG_OFF + dev->ops->config_size &&
             dev->ops->config_write)
        dev->ops->config_write(dev, (unsigned)(off - VIRTIO_DEVCFG_OFF), data, len);
    else if (off >= VIRTIO_MSIX_TABLE_OFF && off < VIRTIO_MSIX_TABLE_OFF + 16 * dev->nr_vectors)
        msix_table_write(dev, (unsigned)(off - VIRTIO_MSIX_TABLE_OFF), data, len);
    pthread_mutex_unlock(&dev->lock);
}

static void bar_mmio_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    virtio_bar_read(opaque, off, data, len);
}

static void bar_mmio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    virtio_bar_write(opaque, off, data, len);
}

/* ---- PCI config side: MSI-X control, the PCI-config access window --------- */

static unsigned msix_cap_off(const struct virtio_dev *dev)
{
    return dev->pci.config[PCI_CAP_PTR]; /* MSI-X is the first capability */
}

bool virtio_pci_cfg_window_ok(uint8_t bar, uint32_t off, uint32_t len)
{
    /* Subtraction form: off + len can wrap in 32 bits (off 0xffffffff). */
    return bar == 0 && (len == 1 || len == 2 || len == 4) && len <= VIRTIO_BAR_SIZE &&
           off <= VIRTIO_BAR_SIZE - len;
}

static void config_written(struct pci_dev *pdev, unsigned off, unsigned len)
{
    struct virtio_dev *dev = pdev->opaque;
    unsigned cap = msix_cap_off(dev);

    if (touches(off, len, cap + 2, 2)) {
        uint16_t ctrl = pci_get16(pdev->config + cap + 2);
        bool was_masked;

        pthread_mutex_lock(&dev->lock);
        was_masked = dev->msix_masked;
        dev->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
        dev->msix_masked = ctrl & MSIX_CTRL_MASKALL;
        if (was_masked != dev->msix_masked || dev->msix_enabled)
            for (unsigned v = 0; v < dev->nr_vectors; v++)
                update_vector(dev, v);
        pthread_mutex_unlock(&dev->lock);
    }
    /* VIRTIO_PCI_CAP_PCI_CFG: a write to pci_cfg_data goes to the BAR. */
    if (dev->pcicfg_cap && touches(off, len, dev->pcicfg_cap + 16, 4)) {
        const uint8_t *c = pdev->config + dev->pcicfg_cap;
        uint32_t boff = pci_get32(c + 8), blen = pci_get32(c + 12);

        if (virtio_pci_cfg_window_ok(c[4], boff, blen))
            virtio_bar_write(dev, boff, c + 16, blen);
    }
}

static bool config_read(struct pci_dev *pdev, unsigned off, uint8_t *data, unsigned len)
{
    struct virtio_dev *dev = pdev->opaque;

    if (dev->pcicfg_cap && touches(off, len, dev->pcicfg_cap + 16, 4)) {
        uint8_t *c = pdev->config + dev->pcicfg_cap;
        uint32_t boff = pci_get32(c + 8), blen = pci_get32(c + 12);

        if (virtio_pci_cfg_window_ok(c[4], boff, blen))
            virtio_bar_read(dev, boff, c + 16, blen);
    }
    (void)data;
    (void)len;
    return false; /* then read from config[] as usual */
}

static const struct pci_dev_ops virtio_pci_ops = {
    .config_written = config_written,
    .config_read = config_read,
};

static unsigned add_virtio_cap(struct pci_dev *pdev, uint8_t type, uint32_t off, uint32_t len,
                           unsigned extra, const void *extra_data)
{
    uint8_t buf[24];
    struct virtio_pci_cap cap = {.cap_len = (uint8_t)(sizeof(cap) + extra), .cfg_type = type,
                                 .bar = 0, .offset = off, .length = len};

    memcpy(buf, &cap, sizeof(cap));
    if (extra)
        memcpy(buf + sizeof(cap), extra_data, extra);
    return pci_dev_add_cap(pdev, PCI_CAP_ID_VNDR, buf, (unsigned)sizeof(cap) + extra);
}

static void build_config_space(struct virtio_dev *dev)
{
    struct pci_dev *pdev = &dev->pci;
    uint8_t msix[12] = {0};
    uint32_t mult = VIRTIO_NOTIFY_MULT, zero = 0;
    unsigned at;

    pci_dev_init(pdev, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->ops->device_id),
                 dev->ops->class_code, VIRTIO_PCI_VENDOR, (uint16_t)(0x40 + dev->ops->device_id));
    pdev->config[PCI_REVISION] = 1; /* modern-only device */
    pdev->ops = &virtio_pci_ops;
    pdev->opaque = dev;

    pci_put16(msix + 2, (uint16_t)(dev->nr_vectors - 1));
    pci_put32(msix + 4, VIRTIO_MSIX_TABLE_OFF); /* BIR 0 */
    pci_put32(msix + 8, VIRTIO_MSIX_PBA_OFF);
    at = pci_dev_add_cap(pdev, PCI_CAP_ID_MSIX, msix, sizeof(msix));
    pci_put16(pdev->wmask + at + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);

    add_virtio_cap(pdev, CAP_COMMON, VIRTIO_COMMON_OFF, VIRTIO_COMMON_SIZE, 0, NULL);
    add_virtio_cap(pdev, CAP_NOTIFY, VIRTIO_NOTIFY_OFF, VIRTIO_NOTIFY_MULT * dev->nr_queues, 4,
                   &mult);
    add_virtio_cap(pdev, CAP_ISR, VIRTIO_ISR_OFF, 1, 0, NULL);
    add_virtio_cap(pdev, CAP_DEVICE, VIRTIO_DEVCFG_OFF, dev->ops->config_size, 0, NULL);
    dev->pcicfg_cap = add_virtio_cap(pdev, CAP_PCI_CFG, 0, 0, 4, &zero);
    if (dev->pcicfg_cap) {
        /* bar, offset, length and the data window are the driver's to set */
        pdev->wmask[dev->pcicfg_cap + 4] = 0xff;
        memset(pdev->wmask + dev->pcicfg_cap + 8, 0xff, 12);
    }
}

/* ---- snapshots ---------------------------------------------------------------- */

int virtio_dev_quiesce(struct virtio_dev *dev)
{
    pthread_mutex_lock(&dev->lock);
    return dev->ops->quiesce ? dev->ops->quiesce(dev) : 0;
}

void virtio_dev_unquiesce(struct virtio_dev *dev)
{
    pthread_mutex_unlock(&dev->lock);
}

void virtio_dev_save(const struct virtio_dev *dev, struct virtio_dev_state *out)
{
    memset(out, 0, sizeof(*out));
    out->device_features = dev->device_features;
    out->driver_features = dev->driver_features;
    out->dfselect = dev->dfselect;
    out->gfselect = dev->gfselect;
    out->config_vector = dev->config_vector;
    out->queue_sel = dev->queue_sel;
    out->status = dev->status;
    out->config_generation = dev->config_generation;
    out->isr = dev->isr;
    out->msix_enabled = dev->msix_enabled;
    out->msix_masked = dev->msix_masked;
    out->nr_queues = dev->nr_queues;
    out->nr_vectors = dev->nr_vectors;
    for (unsigned v = 0; v < dev->nr_vectors; v++) {
        const struct virtio_vector *s = &dev->vectors[v];

        out->vectors[v] = (struct virtio_vector_state){.addr_lo = s->addr_lo, .addr_hi = s->addr_hi,
                                                       .data = s->data, .ctrl = s->ctrl,
                                                       .pending = s->pending};
    }
    for (unsigned q = 0; q < dev->nr_queues; q++) {
        const struct virtio_queue *s = &dev->queues[q];

        out->queues[q] = (struct virtio_queue_state){
            .desc = s->vq.desc_gpa, .avail = s->vq.avail_gpa, .used = s->vq.used_gpa,
            .size = s->vq.size, .msix_vector = s->msix_vector, .last_avail = s->vq.last_avail,
            .used_idx = s->vq.used_idx, .signalled_used = s->vq.signalled_used,
            .enabled = s->enabled, .signalled_valid = s->vq.signalled_valid};
    }
}

static int check_state(const struct virtio_dev *dev, const struct virtio_dev_state *in,
                       struct herd_err *err)
{
    const char *name = dev->ops->name;

    if (in->nr_queues != dev->nr_queues || in->nr_vectors != dev->nr_vectors)
        return herd_err_set(err, -EINVAL, "", "%s: the snapshot's device has %u queues and %u "
                            "vectors, this one %u and %u", name, in->nr_queues, in->nr_vectors,
                            dev->nr_queues, dev->nr_vectors);
    if (in->device_features != dev->device_features)
        return herd_err_set(err, -EINVAL, "", "%s: the snapshot's device offered features %#llx, "
                            "this one offers %#llx", name,
                            (unsigned long long)in->device_features,
                            (unsigned long long)dev->device_features);
    if (in->driver_features & ~in->device_features)
        return herd_err_set(err, -EINVAL, "", "%s: the snapshot's driver features %#llx were "
                            "never offered", name, (unsigned long long)in->driver_features);
    if (in->config_vector >= dev->nr_vectors && in->config_vector != VIRTIO_NO_VECTOR)
        return herd_err_set(err, -EINVAL, "", "%s: config vector %u out of range", name,
                            in->config_vector);
    for (unsigned q = 0; q < dev->nr_queues; q++) {
        const struct virtio_queue_state *s = &in->queues[q];

        if (!s->size || s->size > dev->queues[q].max_size || (s->size & (s->size - 1)) ||
            (s->msix_vector >= dev->nr_vectors && s->msix_vector != VIRTIO_NO_VECTOR) ||
            s->enabled > 1 || s->signalled_valid > 1)
            return herd_err_set(err, -EINVAL, "", "%s: queue %u of the snapshot is malformed "
                                "(size %u, vector %u)", name, q, s->size, s->msix_vector);
    }
    return 0;
}

static int load_queue(struct virtio_dev *dev, unsigned q, const struct virtio_queue_state *s,
                      struct herd_err *err)
{
    struct virtio_queue *vq = &dev->queues[q];
    struct herd_err why;

    virtq_reset(&vq->vq);
    vq->vq.size = s->size;
    vq->msix_vector = s->msix_vector;
    vq->vq.desc_gpa = s->desc;
    vq->vq.avail_gpa = s->avail;
    vq->vq.used_gpa = s->used;
    vq->enabled = false;
    if (!s->enabled)
        return 0;
    vq->vq.event_idx = virtio_has_feature(dev, VIRTIO_F_EVENT_IDX);
    vq->vq.indirect = virtio_has_feature(dev, VIRTIO_F_INDIRECT_DESC);
    if (virtq_start(&vq->vq, &why))
        return herd_err_set(err, -EINVAL, "", "%s: queue %u of the snapshot: %s", dev->ops->name,
                            q, why.msg);
    vq->vq.last_avail = s->last_avail;
    vq->vq.used_idx = s->used_idx;
    vq->vq.signalled_used = s->signalled_used;
    vq->vq.signalled_valid = s->signalled_valid;
    vq->enabled = true;
    return 0;
}

int virtio_dev_load(struct virtio_dev *dev, const struct virtio_dev_state *in,
                    struct herd_err *err)
{
    uint64_t one = 1;
    int rc = check_state(dev, in, err);

    if (rc)
        return rc;
    pthread_mutex_lock(&dev->lock);
    reset_device(dev);
    dev->driver_features = in->driver_features;
    dev->dfselect = in->dfselect;
    dev->gfselect = in->gfselect;
    dev->config_vector = in->config_vector;
    dev->queue_sel = in->queue_sel;
    dev->config_generation = in->config_generation;
    dev->isr = in->isr;
    for (unsigned q = 0; q < dev->nr_queues && !rc; q++)
        rc = load_queue(dev, q, &in->queues[q], err);
    if (rc) {
        reset_device(dev);
        pthread_mutex_unlock(&dev->lock);
        return rc;
    }
    dev->status = in->status;
    if ((dev->status & VIRTIO_STATUS_FEATURES_OK) && dev->ops->features_ok)
        dev->ops->features_ok(dev);
    if ((dev->status & VIRTIO_STATUS_DRIVER_OK) && dev->ops->driver_ok)
        dev->ops->driver_ok(dev);
    dev->msix_enabled = in->msix_enabled;
    dev->msix_masked = in->msix_masked;
    for (unsigned v = 0; v < dev->nr_vectors; v++) {
        const struct virtio_vector_state *s = &in->vectors[v];

        dev->vectors[v].addr_lo = s->addr_lo;
        dev->vectors[v].addr_hi = s->addr_hi;
        dev->vectors[v].data = s->data;
        dev->vectors[v].ctrl = s->ctrl;
        dev->vectors[v].pending = s->pending != 0;
        update_vector(dev, v);
    }
    /* Work the guest queued before the snapshot is picked up at once. */
    if (dev->status & VIRTIO_STATUS_DRIVER_OK)
        for (unsigned q = 0; q < dev->nr_queues; q++)
            if (dev->queues[q].enabled && write(dev->queues[q].kick_fd, &one, sizeof(one)) < 0)
                log_warn("%s: kick eventfd write failed", dev->ops->name);
    pthread_mutex_unlock(&dev->lock);
    return 0;
}

/* ---- the I/O thread ------------------------------------------------------- */

#define EV_STOP  0xffffffffu
#define EV_EXTRA 0x10000u

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool polled(const struct virtio_dev *dev, unsigned q)
{
    return dev->ops->polled_queues & (1u << q);
}

/* Serves every live polled queue that has entries; returns chains taken. */
static unsigned serve_polled(struct virtio_dev *dev)
{
    unsigned done = 0;

    for (unsigned q = 0; q < dev->nr_queues; q++) {
        if (!polled(dev, q) || !virtio_queue_live(dev, q))
            continue;
        virtq_disable_notify(&dev->queues[q].vq);
        if (virtq_pending(&dev->queues[q].vq))
            done += dev->ops->queue_notify(dev, q);
    }
    return done;
}

/* Turns guest notifications back on; true if entries slipped in meanwhile. */
static bool rearm(struct virtio_dev *dev)
{
    bool more = false;

    for (unsigned q = 0; q < dev->nr_queues; q++)
        if (polled(dev, q) && virtio_queue_live(dev, q) &&
            virtq_enable_notify(&dev->queues[q].vq))
            more = true;
    return more;
}

/* After a kick: serve, then keep polling while the guest keeps producing,
 * dropping the lock between rounds so vCPUs can reach the registers. */
static void serve_and_poll(struct virtio_dev *dev)
{
    uint64_t window = dev->ops->poll_ns ? dev->ops->poll_ns : VIRTIO_POLL_NS;
    uint64_t deadline = now_ns() + window;
    unsigned refused = 0; /* rounds in a row that left waiting entries untaken */

    for (;;) {
        bool expired, again;
        unsigned done;

        pthread_mutex_lock(&dev->lock);
        done = serve_polled(dev);
        if (dev->ops->poll)
            done += dev->ops->poll(dev);
        /* Stop early when the device waits on its own thread: it signals an
         * fd when done, and the core it would spin on is that thread's. */
        expired = !done && (now_ns() >= deadline ||
                            (dev->ops->waiting_elsewhere && dev->ops->waiting_elsewhere(dev)));
        /* Only stop after notifications are back on and nothing slipped in
         * (otherwise the guest would wait for us and we for its kick). */
        again = expired && rearm(dev);
        pthread_mutex_unlock(&dev->lock);
        if (expired && !again)
            return;
        /* Entries wait that the device will not take now (a NIC over its
         * rate limit): its own wake-up (the NIC's timer) serves them, and
         * polling on would spin this thread until then. */
        refused = done ? 0 : refused + again;
        if (refused == 2)
            return;
        if (done || again)
            deadline = now_ns() + window;
        else
            __builtin_ia32_pause();
    }
}

static void serve_kick(struct virtio_dev *dev, unsigned q)
{
    uint64_t n;

    if (read(dev->queues[q].kick_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        return;
    if (polled(dev, q))
        return; /* served by serve_and_poll below */
    pthread_mutex_lock(&dev->lock);
    if (virtio_queue_live(dev, q))
        dev->ops->queue_notify(dev, q);
    pthread_mutex_unlock(&dev->lock);
}

/* The I/O thread wakes for short bursts (a kick, a tap frame) while vCPU
 * threads may spin for their whole slice. With EEVDF (Linux 6.12 on) a
 * thread can ask for a shorter slice, which lets it preempt a running vCPU
 * at once on wake-up instead of waiting out the vCPU's slice: measured
 * +10 % probe-to-probe frames/s on a 2-core host (docs/devices.md). Older
 * kernels ignore the request; it changes no share of CPU time, only when
 * the thread gets it. */
static void request_short_slice(void)
{
    /* struct sched_attr, first version (48 bytes): glibc has no wrapper and
     * <linux/sched/types.h> clashes with <sched.h>. */
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } attr = {.size = sizeof(attr), .policy = SCHED_OTHER, .runtime = VIRTIO_IO_SLICE_NS};

    _Static_assert(sizeof(attr) == 48, "sched_attr version 0 is 48 bytes");

    if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
        log_debug("virtio: I/O thread slice of %u ns not set: %s", VIRTIO_IO_SLICE_NS,
                  strerror(errno));
}

static void *io_thread(void *arg)
{
    struct virtio_dev *dev = arg;
    struct epoll_event ev[8];

    request_short_slice();
    jail_enter(JAIL_IO);

    for (;;) {
        int n = epoll_wait(dev->epoll_fd, ev, 8, -1);
        bool kicked = false;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n; i++) {
            uint32_t tag = ev[i].data.u32;

            if (tag == EV_STOP)
                return NULL;
            if (tag >= EV_EXTRA) {
                unsigned k = tag - EV_EXTRA;

                dev->extra_fds[k].handler(dev, dev->extra_fds[k].fd, ev[i].events);
            } else {
                serve_kick(dev, tag);
                kicked |= polled(dev, tag);
            }
        }
        if (kicked)
            serve_and_poll(dev);
    }
    return NULL;
}

static int watch(struct virtio_dev *dev, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = {.events = events, .data.u32 = tag};

    return epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int virtio_dev_watch_fd(struct virtio_dev *dev, int fd, uint32_t events,
                        virtio_fd_handler handler)
{
    unsigned k = dev->nr_extra_fds;
    int rc;

    if (k == sizeof(dev->extra_fds) / sizeof(dev->extra_fds[0]))
        return -ENOSPC;
    rc = watch(dev, fd, events, EV_EXTRA + k);
    if (rc)
        return rc;
    dev->extra_fds[k].fd = fd;
    dev->extra_fds[k].handler = handler;
    dev->nr_extra_fds++;
    return 0;
}

int virtio_dev_watch_queue(struct virtio_dev *dev, unsigned q, bool on)
{
    struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.u32 = q};

    if (q >= dev->nr_queues)
        return -EINVAL;
    return epoll_ctl(dev->epoll_fd, EPOLL_CTL_MOD, dev->queues[q].kick_fd, &ev) < 0 ? -errno : 0;
}

int virtio_dev_rewatch_fd(struct virtio_dev *dev, int fd, uint32_t events)
{
    for (unsigned k = 0; k < dev->nr_extra_fds; k++) {
        if (dev->extra_fds[k].fd == fd) {
            struct epoll_event ev = {.events = events, .data.u32 = EV_EXTRA + k};

            return epoll_ctl(dev->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
        }
    }
    return -ENOENT;
}

/* ---- lifetime ------------------------------------------------------------- */

static int init_vectors(struct virtio_dev *dev, struct herd_err *err)
{
    for (unsigned v = 0; v < dev->nr_vectors; v++) {
        struct virtio_vector *vec = &dev->vectors[v];
        int rc;

        vec->ctrl = MSIX_ENTRY_MASKED;
        vec->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        vec->gsi = kvm_msi_gsi_alloc(dev->kvm);
        if (vec->fd < 0 || vec->gsi < 0)
            return herd_err_set(err, -ENOSPC, "", "%s: no eventfd or GSI for MSI-X vector %u",
                                dev->ops->name, v);
        rc = kvm_irqfd(dev->kvm, vec->fd, (unsigned)vec->gsi, true);
        if (rc) {
            herd_err_set(err, rc, "", "%s: KVM_IRQFD: %s", dev->ops->name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int init_queues(struct virtio_dev *dev, struct herd_err *err)
{
    uint64_t bar = dev->pci.bars[0].addr;

    for (unsigned q = 0; q < dev->nr_queues; q++) {
        struct virtio_queue *vq = &dev->queues[q];
        int rc;

        virtq_init(&vq->vq, dev->mem);
        vq->max_size = VIRTIO_QUEUE_SIZE;
        vq->vq.size = vq->max_size;
        vq->msix_vector = VIRTIO_NO_VECTOR;
        vq->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vq->kick_fd < 0) {
            herd_err_set(err, -errno, "", "%s: eventfd: %s", dev->ops->name, strerror(errno));
            return -errno;
        }
        rc = served_inline(dev, q) ? 0
                                   : kvm_ioeventfd(dev->kvm, vq->kick_fd,
                                                   bar + VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q,
                                                   0, true);
        if (rc) {
            herd_err_set(err, rc, "", "%s: KVM_IOEVENTFD: %s", dev->ops->name, strerror(-rc));
            return rc;
        }
        rc = watch(dev, vq->kick_fd, EPOLLIN, q);
        if (rc) {
            herd_err_set(err, rc, "", "%s: epoll: %s", dev->ops->name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops, void *backend,
                    uint64_t features, unsigned nr_queues, struct kvm *kvm,
                    const struct guest_mem *mem, struct pci_bus *pci, struct bus *mmio,
                    struct herd_err *err)
{
    struct bus_range range;
    int rc;

    memset(dev, 0, sizeof(*dev));
    dev->epoll_fd = dev->stop_fd = -1;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        dev->queues[i].kick_fd = -1;
    for (unsigned i = 0; i < VIRTIO_MAX_VECTORS; i++)
        dev->vectors[i].fd = dev->vectors[i].gsi = -1;
    if (nr_queues == 0 || nr_queues > VIRTIO_MAX_QUEUES)
        return herd_err_set(err, -EINVAL, "", "%s: %u queues is not 1-%d", ops->name, nr_queues,
                            VIRTIO_MAX_QUEUES);
    if (ops->config_size > VIRTIO_DEVCFG_MAX)
        return herd_err_set(err, -EINVAL, "", "%s: device config of %u bytes exceeds %d", ops->name,
                            ops->config_size, VIRTIO_DEVCFG_MAX);
    pthread_mutex_init(&dev->lock, NULL);
    dev->ops = ops;
    dev->backend = backend;
    dev->kvm = kvm;
    dev->mem = mem;
    dev->nr_queues = nr_queues;
    dev->nr_vectors = nr_queues + 1;
    dev->inline_queues = ops->inline_queues ? ops->inline_queues(dev) : 0;
    dev->device_features = features | (1ULL << VIRTIO_F_VERSION_1) |
                           (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);
    dev->config_vector = VIRTIO_NO_VECTOR;
    build_config_space(dev);
    rc = pci_dev_add_bar(pci, &dev->pci, 0, VIRTIO_BAR_SIZE);
    if (!rc)
        rc = pci_bus_add(pci, &dev->pci);
    if (rc) {
        herd_err_set(err, rc, "", "%s: no room on the PCI bus: %s", ops->name, strerror(-rc));
        return rc;
    }
    range = (struct bus_range){.base = dev->pci.bars[0].addr, .size = VIRTIO_BAR_SIZE,
                               .name = ops->name, .read = bar_mmio_read,
                               .write = bar_mmio_write, .opaque = dev};
    rc = bus_register(mmio, &range);
    if (rc) {
        herd_err_set(err, rc, "", "%s: BAR registration: %s", ops->name, strerror(-rc));
        return rc;
    }
    dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    dev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dev->epoll_fd < 0 || dev->stop_fd < 0 || watch(dev, dev->stop_fd, EPOLLIN, EV_STOP)) {
        herd_err_set(err, -errno, "", "%s: epoll/eventfd: %s", ops->name, strerror(errno));
        return -errno;
    }
    rc = init_vectors(dev, err);
    if (!rc)
        rc = init_queues(dev, err);
    return rc;
}

int virtio_dev_start(struct virtio_dev *dev)
{
    int rc = pthread_create(&dev->thread, NULL, io_thread, dev);

    if (rc)
        return -rc;
    dev->thread_running = true;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
    uint64_t one = 1;

    if (!dev->ops)
        return;
    if (dev->thread_running) {
        if (write(dev->stop_fd, &one, sizeof(one)) < 0)
            log_warn("%s: cannot stop the I/O thread", dev->ops->name);
        pthread_join(dev->thread, NULL);
        dev->thread_running = false;
    }
    for (unsigned q = 0; q < dev->nr_queues; q++) {
        if (dev->queues[q].kick_fd >= 0 && dev->pci.bars[0].addr && !served_inline(dev, q))
            kvm_ioeventfd(dev->kvm, dev->queues[q].kick_fd,
                          dev->pci.bars[0].addr + VIRTIO_NOTIFY_OFF + VIRTIO_NOTIFY_MULT * q, 0,
                          false);
        close_fd(&dev->queues[q].kick_fd);
    }
    for (unsigned v = 0; v < dev->nr_vectors; v++) {
        if (dev->vectors[v].fd >= 0 && dev->vectors[v].gsi >= 0)
            kvm_irqfd(dev->kvm, dev->vectors[v].fd, (unsigned)dev->vectors[v].gsi, false);
        if (dev->vectors[v].gsi >= 0)
            kvm_msi_gsi_free(dev->kvm, (unsigned)dev->vectors[v].gsi);
        close_fd(&dev->vectors[v].fd);
    }
    close_fd(&dev->epoll_fd);
    close_fd(&dev->stop_fd);
    pthread_mutex_destroy(&dev->lock);
    dev->ops = NULL;
}
