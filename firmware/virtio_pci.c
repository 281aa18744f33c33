/*
 * virtio-pci modern transport (see virtio_pci.h). Everything the device
 * says is checked before use: capability pointers stay in the header,
 * structures stay inside their BAR, lengths have the spec's minimums.
 */
#include "virtio_pci.h"

#include "cpl0.h"
#include "lib.h"
#include "dma.h"
#include "tsc.h"

#define PCI_CAP_ID_VNDR 0x09
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define COMMON_CFG_MIN 56
#define RESET_WAIT_MS 1000

static bool is_type(const struct pci_dev *d, uint16_t type, bool *transitional)
{
    if (d->vendor != VIRTIO_VENDOR)
        return false;
    *transitional = d->device >= 0x1000 && d->device <= 0x103f;
    if (*transitional)
        return d->subsys == type;
    return d->device == 0x1040 + type;
}

/* One vendor capability -> its physical address (BAR mapped on demand). */
static bool cap_addr(const struct pci_dev *d, uint8_t cap, uint32_t minlen, uint64_t *pa, uint32_t *len,
                     uint8_t *barno, char *why, size_t whylen)
{
    static uint64_t bar_addr[6], bar_size[6];
    static const struct pci_dev *bar_dev;
    static uint32_t bar_gen;
    if (bar_dev != d || bar_gen != pci_generation()) {
        bar_gen = pci_generation();
        memset(bar_addr, 0, sizeof(bar_addr));
        memset(bar_size, 0, sizeof(bar_size));
        bar_dev = d;
    }
    uint8_t bar = pci_read8(d, (uint16_t)(cap + 4));
    uint32_t off = pci_read32(d, (uint16_t)(cap + 8));
    uint32_t l = pci_read32(d, (uint16_t)(cap + 12));
    if (bar > 5) {
        snprintf(why, whylen, "capability at 0x%x names BAR %u", cap, bar);
        return false;
    }
    if (!bar_addr[bar]) {
        bar_addr[bar] = pci_map_bar(d, bar, &bar_size[bar], why, whylen);
        if (!bar_addr[bar])
            return false;
    }
    if (l < minlen || off > bar_size[bar] || l > bar_size[bar] - off) {
        snprintf(why, whylen, "capability at 0x%x: BAR %u offset 0x%x length 0x%x outside the BAR (0x%lx) or short",
                 cap, bar, off, l, (unsigned long)bar_size[bar]);
        return false;
    }
    *pa = bar_addr[bar] + off;
    *len = l;
    *barno = bar;
    return true;
}

static bool open_dev(struct virtio_dev *vd, char *why, size_t whylen)
{
    const struct pci_dev *d = vd->pci;
    if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS)) {
        snprintf(why, whylen, "no PCI capability list");
        return false;
    }
    bool have[5] = { false };
    uint8_t cap = pci_read8(d, PCI_CAP_PTR) & 0xfc;
    for (int guard = 0; cap && guard < 48; guard++) {
        if (cap < 0x40) {
            snprintf(why, whylen, "capability pointer 0x%x inside the header", cap);
            return false;
        }
        uint8_t id = pci_read8(d, cap), next = pci_read8(d, (uint16_t)(cap + 1)) & 0xfc;
        if (id == PCI_CAP_ID_VNDR) {
            uint8_t type = pci_read8(d, (uint16_t)(cap + 3)), caplen = pci_read8(d, (uint16_t)(cap + 2));
            uint32_t len;
            uint8_t bar;
            /* The first capability of each type is the preferred one. */
            if (type >= 1 && type <= 4 && !have[type]) {
                if (caplen < 16 || (type == VIRTIO_PCI_CAP_NOTIFY_CFG && caplen < 20)) {
                    snprintf(why, whylen, "virtio capability type %u at 0x%x too short (%u)", type, cap, caplen);
                    return false;
                }
                bool ok = true;
                switch (type) {
                case VIRTIO_PCI_CAP_COMMON_CFG:
                    ok = cap_addr(d, cap, COMMON_CFG_MIN, &vd->common, &len, &vd->bar_common, why, whylen);
                    break;
                case VIRTIO_PCI_CAP_NOTIFY_CFG:
                    ok = cap_addr(d, cap, 2, &vd->notify, &len, &vd->bar_notify, why, whylen);
                    vd->notify_mult = pci_read32(d, (uint16_t)(cap + 16));
                    break;
                case VIRTIO_PCI_CAP_ISR_CFG:
                    ok = cap_addr(d, cap, 1, &vd->isr, &len, &bar, why, whylen);
                    break;
                case VIRTIO_PCI_CAP_DEVICE_CFG:
                    ok = cap_addr(d, cap, 0, &vd->devcfg, &vd->devcfg_len, &bar, why, whylen);
                    break;
                }
                if (!ok)
                    return false;
                have[type] = true;
            }
        }
        cap = next;
    }
    if (!have[1] || !have[2] || !have[3]) {
        snprintf(why, whylen, "missing virtio capabilities:%s%s%s", have[1] ? "" : " common", have[2] ? "" : " notify",
                 have[3] ? "" : " isr");
        return false;
    }
    return true;
}

bool virtio_find(uint16_t type, uint32_t index, struct virtio_dev *vd, char *why, size_t whylen)
{
    memset(vd, 0, sizeof(*vd));
    uint32_t seen = 0;
    for (uint32_t i = 0; i < pci_count(); i++) {
        const struct pci_dev *d = pci_get(i);
        bool tr;
        if (!is_type(d, type, &tr) || seen++ != index)
            continue;
        vd->pci = d;
        vd->type = type;
        vd->transitional = tr;
        return open_dev(vd, why, whylen);
    }
    snprintf(why, whylen, "%s device %u not found (%u virtio device(s) of that type on %u PCI functions)",
             type == VIRTIO_ID_NET ? "virtio-net" : type == VIRTIO_ID_BLOCK ? "virtio-blk" : "virtio", index, seen,
             pci_count());
    return false;
}

uint8_t virtio_status(const struct virtio_dev *vd) { return rd8(vd->common + VCC_STATUS); }
void virtio_set_status(const struct virtio_dev *vd, uint8_t s) { wr8(vd->common + VCC_STATUS, s); }

bool virtio_reset(const struct virtio_dev *vd)
{
    virtio_set_status(vd, 0);
    uint64_t dl = tsc_deadline(RESET_WAIT_MS);
    while (virtio_status(vd) != 0) {
        if (tsc_passed(dl))
            return false;
        cpu_relax();
    }
    return true;
}

bool virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required, char *why, size_t whylen)
{
    if (!virtio_reset(vd)) {
        snprintf(why, whylen, "device status stays 0x%x after reset", virtio_status(vd));
        return false;
    }
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr32(vd->common + VCC_DFSELECT, 0);
    uint64_t lo = rd32(vd->common + VCC_DF);
    wr32(vd->common + VCC_DFSELECT, 1);
    uint64_t hi = rd32(vd->common + VCC_DF);
    vd->offered = lo | hi << 32;
    if ((vd->offered & required) != required) {
        snprintf(why, whylen, "device offers features 0x%lx, lacks required 0x%lx", (unsigned long)vd->offered,
                 (unsigned long)(required & ~vd->offered));
        virtio_set_status(vd, VIRTIO_STATUS_FAILED);
        return false;
    }
    vd->negotiated = vd->offered & (wanted | required);
    wr32(vd->common + VCC_GFSELECT, 0);
    wr32(vd->common + VCC_GF, (uint32_t)vd->negotiated);
    wr32(vd->common + VCC_GFSELECT, 1);
    wr32(vd->common + VCC_GF, (uint32_t)(vd->negotiated >> 32));
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    uint8_t s = virtio_status(vd);
    if (!(s & VIRTIO_STATUS_FEATURES_OK)) {
        snprintf(why, whylen, "device refused features 0x%lx (status 0x%x)", (unsigned long)vd->negotiated, s);
        virtio_set_status(vd, VIRTIO_STATUS_FAILED);
        return false;
    }
    vd->num_queues = rd16(vd->common + VCC_NUMQ);
    wr16(vd->common + VCC_MSIX, VIRTIO_MSI_NO_VECTOR);
    return true;
}

bool virtio_queue(struct virtio_dev *vd, uint16_t index, struct virtq *vq, uint16_t max_size, bool indirect,
                  char *why, size_t whylen)
{
    if (index >= vd->num_queues) {
        snprintf(why, whylen, "queue %u of %u", index, vd->num_queues);
        return false;
    }
    uint64_t c = vd->common;
    wr16(c + VCC_Q_SELECT, index);
    uint16_t dmax = rd16(c + VCC_Q_SIZE);
    if (dmax == 0) {
        snprintf(why, whylen, "queue %u not available (size 0)", index);
        return false;
    }
    if (rd16(c + VCC_Q_ENABLE)) {
        snprintf(why, whylen, "queue %u already enabled after reset", index);
        return false;
    }
    uint16_t size = 1;
    while ((uint32_t)size * 2 <= dmax && (uint32_t)size * 2 <= max_size && size * 2 <= VQ_MAX_SIZE)
        size = (uint16_t)(size * 2);
    if (!vq_alloc(vq, size, index, virtio_has(vd, VIRTIO_F_EVENT_IDX),
                  indirect && virtio_has(vd, VIRTIO_F_INDIRECT_DESC))) {
        snprintf(why, whylen, "out of memory for queue %u (size %u)", index, size);
        return false;
    }
    wr16(c + VCC_Q_SIZE, size);
    wr16(c + VCC_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
    uint64_t a[3] = { dma_addr(vq->desc), dma_addr(vq->avail), dma_addr(vq->used) };
    for (int i = 0; i < 3; i++) {
        wr32(c + VCC_Q_DESC + 8 * i, (uint32_t)a[i]);
        wr32(c + VCC_Q_DESC + 8 * i + 4, (uint32_t)(a[i] >> 32));
    }
    uint16_t noff = rd16(c + VCC_Q_NOFF);
    vq->notify_addr = vd->notify + (uint64_t)noff * vd->notify_mult;
    wr16(c + VCC_Q_ENABLE, 1);
    return true;
}

uint16_t virtio_map_vector(struct virtio_dev *vd, uint16_t queue, uint16_t vector)
{
    if (queue == VIRTIO_MAP_CONFIG) {
        wr16(vd->common + VCC_MSIX, vector);
        return rd16(vd->common + VCC_MSIX);
    }
    wr16(vd->common + VCC_Q_SELECT, queue);
    wr16(vd->common + VCC_Q_MSIX, vector);
    return rd16(vd->common + VCC_Q_MSIX);
}

void virtio_driver_ok(struct virtio_dev *vd)
{
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                              VIRTIO_STATUS_DRIVER_OK);
}

uint8_t virtio_cfg8(const struct virtio_dev *vd, uint32_t off)
{
    return off + 1 <= vd->devcfg_len ? rd8(vd->devcfg + off) : 0;
}

uint16_t virtio_cfg16(const struct virtio_dev *vd, uint32_t off)
{
    return off + 2 <= vd->devcfg_len ? rd16(vd->devcfg + off) : 0;
}

uint32_t virtio_cfg32(const struct virtio_dev *vd, uint32_t off)
{
    return off + 4 <= vd->devcfg_len ? rd32(vd->devcfg + off) : 0;
}

uint64_t virtio_cfg64(const struct virtio_dev *vd, uint32_t off)
{
    if (off + 8 > vd->devcfg_len)
        return 0;
    uint64_t v;
    uint8_t g0, g1;
    int tries = 0;
    do {
        g0 = rd8(vd->common + VCC_CFGGEN);
        v = rd32(vd->devcfg + off) | (uint64_t)rd32(vd->devcfg + off + 4) << 32;
        g1 = rd8(vd->common + VCC_CFGGEN);
    } while (g0 != g1 && ++tries < 16);
    return v;
}
