/*
 * PCI bus 0. BARs are placed by herd-vmm (there is no firmware to do it) and
 * stay where they are: the sizing protocol (write all ones, read the mask,
 * write the address back) works, but a guest that tries to move a BAR is
 * refused with a log line, and keeps reading the original address.
 */
#include "herd/pci.h"

#include <errno.h>
#include <string.h>

#include "herd/log.h"

#define HOST_BRIDGE_VENDOR 0x1b36 /* Red Hat, Inc. (generic PCIe host bridge id) */
#define HOST_BRIDGE_DEVICE 0x0008
#define CLASS_HOST_BRIDGE  0x060000
#define PCI_BAR_MEM_MASK   0xfffffff0u

void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
                  uint16_t subsys_vendor, uint16_t subsys_id)
{
    memset(dev, 0, sizeof(*dev));
    pci_put16(dev->config + PCI_VENDOR_ID, vendor);
    pci_put16(dev->config + PCI_DEVICE_ID, device);
    dev->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    dev->config[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
    dev->config[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
    pci_put16(dev->config + PCI_SUBSYS_VENDOR, subsys_vendor);
    pci_put16(dev->config + PCI_SUBSYS_ID, subsys_id);
    /* Memory space, bus master and INTx disable are the guest's to set. */
    pci_put16(dev->wmask + PCI_COMMAND, 0x0406 | 0x0001);
    dev->wmask[PCI_INT_LINE] = 0xff;
    dev->next_cap = 0x40;
}

int pci_dev_add_bar(struct pci_bus *bus, struct pci_dev *dev, unsigned bar, uint64_t size)
{
    uint64_t addr;

    if (bar >= PCI_NUM_BARS || size < 4096 || (size & (size - 1)))
        return -EINVAL;
    if (size > PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_START)
        return -ENOSPC;
    addr = (bus->mmio_next + size - 1) & ~(size - 1);
    if (addr > PCI_MMIO_WINDOW_END - size)
        return -ENOSPC;
    bus->mmio_next = addr + size;
    dev->bars[bar] = (struct pci_bar){.addr = addr, .size = size};
    pci_put32(dev->config + PCI_BAR0 + 4 * bar, (uint32_t)addr); /* 32-bit, non-prefetch */
    pci_put32(dev->wmask + PCI_BAR0 + 4 * bar, (uint32_t)~(size - 1) & PCI_BAR_MEM_MASK);
    return 0;
}

unsigned pci_dev_add_cap(struct pci_dev *dev, uint8_t id, const void *body, unsigned len)
{
    unsigned off = dev->next_cap, prev;

    if (len < 2 || off + len > PCI_CONFIG_SIZE)
        return 0;
    memcpy(dev->config + off, body, len);
    dev->config[off] = id;
    dev->config[off + 1] = 0;
    if (dev->config[PCI_CAP_PTR] == 0) {
        dev->config[PCI_CAP_PTR] = (uint8_t)off;
    } else {
        for (prev = dev->config[PCI_CAP_PTR]; dev->config[prev + 1]; prev = dev->config[prev + 1])
            ;
        dev->config[prev + 1] = (uint8_t)off;
    }
    pci_put16(dev->config + PCI_STATUS,
              pci_get16(dev->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
    dev->next_cap = (off + len + 3) & ~3u;
    return off;
}

int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev)
{
    for (unsigned slot = 1; slot < PCI_MAX_DEVICES; slot++) {
        if (!bus->devs[slot]) {
            dev->slot = slot;
            bus->devs[slot] = dev;
            return 0;
        }
    }
    return -ENOSPC;
}

/* After a BAR write: sizing (all ones) is fine; anything else must be the
 * address we assigned, else it is put back. */
static void check_bar(struct pci_dev *dev, unsigned bar)
{
    uint8_t *reg = dev->config + PCI_BAR0 + 4 * bar;
    uint32_t v = pci_get32(reg) & PCI_BAR_MEM_MASK;
    uint32_t mask = pci_get32(dev->wmask + PCI_BAR0 + 4 * bar);

    if (!dev->bars[bar].size || v == mask || v == (uint32_t)dev->bars[bar].addr)
        return;
    log_warn_guest("pci %02x.0: guest tried to move BAR%u from %#llx to %#x; BAR relocation is not "
             "supported, keeping it", dev->slot, bar, (unsigned long long)dev->bars[bar].addr,
             v);
    pci_put32(reg, (uint32_t)dev->bars[bar].addr);
}

void pci_dev_save_config(struct pci_bus *bus, const struct pci_dev *dev,
                         uint8_t out[PCI_CONFIG_SIZE])
{
    pthread_mutex_lock(&bus->lock);
    memcpy(out, dev->config, PCI_CONFIG_SIZE);
    pthread_mutex_unlock(&bus->lock);
}

void pci_dev_load_config(struct pci_bus *bus, struct pci_dev *dev,
                         const uint8_t in[PCI_CONFIG_SIZE])
{
    pthread_mutex_lock(&bus->lock);
    for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++)
        dev->config[i] = (uint8_t)((dev->config[i] & ~dev->wmask[i]) | (in[i] & dev->wmask[i]));
    for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++)
        check_bar(dev, bar);
    pthread_mutex_unlock(&bus->lock);
}

static struct pci_dev *lookup(struct pci_bus *bus, unsigned slot, unsigned fn)
{
    if (fn != 0 || slot >= PCI_MAX_DEVICES)
        return NULL;
    return bus->devs[slot];
}

void pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned off,
                     uint8_t *data, unsigned len)
{
    struct pci_dev *dev;

    pthread_mutex_lock(&bus->lock);
    dev = lookup(bus, slot, fn);
    if (!dev) {
        memset(data, 0xff, len); /* no device: all ones, as on real hardware */
    } else if (off + len > PCI_CONFIG_SIZE) {
        memset(data, 0, len); /* extended config space: nothing there */
    } else if (!(dev->ops && dev->ops->config_read && dev->ops->config_read(dev, off, data, len))) {
        memcpy(data, dev->config + off, len);
    }
    pthread_mutex_unlock(&bus->lock);
}

void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned off,
                      const uint8_t *data, unsigned len)
{
    struct pci_dev *dev;

    pthread_mutex_lock(&bus->lock);
    dev = lookup(bus, slot, fn);
    if (dev && off + len <= PCI_CONFIG_SIZE) {
        for (unsigned i = 0; i < len; i++) {
            uint8_t m = dev->wmask[off + i];

            dev->config[off + i] = (uint8_t)((dev->config[off + i] & ~m) | (data[i] & m));
        }
        /* Every BAR the write touched (an 8-byte ECAM write spans two). */
        for (unsigned bar = 0; bar < PCI_NUM_BARS; bar++) {
            unsigned reg = PCI_BAR0 + 4 * bar;

            if (off < reg + 4 && reg < off + len)
                check_bar(dev, bar);
        }
        if (dev->ops && dev->ops->config_written)
            dev->ops->config_written(dev, off, len);
    }
    pthread_mutex_unlock(&bus->lock);
}

/* Legacy mechanism #1: 0xcf8 holds the address, 0xcfc-0xcff the data. */
static bool cf8_decode(uint32_t cf8, unsigned port_off, unsigned *slot, unsigned *fn,
                       unsigned *reg)
{
    if (!(cf8 & 0x80000000u) || ((cf8 >> 16) & 0xff) != 0)
        return false;
    *slot = (cf8 >> 11) & 0x1f;
    *fn = (cf8 >> 8) & 0x7;
    *reg = (cf8 & 0xfc) + port_off;
    return true;
}

static void port_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct pci_bus *bus = opaque;
    unsigned slot, fn, reg;

    if (offset < 4) {
        uint32_t v;

        memset(data, 0xff, len); /* bytes past the latch read as all ones */
        pthread_mutex_lock(&bus->lock);
        v = bus->cf8;
        pthread_mutex_unlock(&bus->lock);
        memcpy(data, (uint8_t *)&v + offset, len > 4 - offset ? 4 - offset : len);
        return;
    }
    if (!cf8_decode(__atomic_load_n(&bus->cf8, __ATOMIC_RELAXED), (unsigned)offset - 4, &slot,
                    &fn, &reg) || reg + len > 0x100) {
        memset(data, 0xff, len);
        return;
    }
    pci_config_read(bus, slot, fn, reg, data, len);
}

static void port_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct pci_bus *bus = opaque;
    unsigned slot, fn, reg;

    if (offset < 4) {
        if (offset == 0 && len == 4) {
            pthread_mutex_lock(&bus->lock);
            memcpy(&bus->cf8, data, 4);
            pthread_mutex_unlock(&bus->lock);
        }
        return;
    }
    if (cf8_decode(__atomic_load_n(&bus->cf8, __ATOMIC_RELAXED), (unsigned)offset - 4, &slot,
                   &fn, &reg) && reg + len <= 0x100)
        pci_config_write(bus, slot, fn, reg, data, len);
}

/* ECAM: bus 0 only; offset = slot << 15 | fn << 12 | register. */
static void ecam_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    unsigned reg = offset & 0xfff;

    if ((reg & 0xfff) + len > 0x1000) {
        memset(data, 0xff, len);
        return;
    }
    pci_config_read(opaque, (offset >> 15) & 0x1f, (offset >> 12) & 7, reg, data, len);
}

static void ecam_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    unsigned reg = offset & 0xfff;

    if (reg + len <= 0x1000)
        pci_config_write(opaque, (offset >> 15) & 0x1f, (offset >> 12) & 7, reg, data, len);
}

int pci_bus_init(struct pci_bus *bus, struct bus *pio, struct bus *mmio)
{
    struct bus_range ports = {.base = PCI_PORT_ADDR, .size = 8, .name = "pci-conf1",
                              .read = port_read, .write = port_write, .opaque = bus};
    struct bus_range ecam = {.base = PCI_ECAM_BASE, .size = PCI_ECAM_SIZE, .name = "pci-ecam",
                             .read = ecam_read, .write = ecam_write, .opaque = bus};
    int rc;

    memset(bus, 0, sizeof(*bus));
    pthread_mutex_init(&bus->lock, NULL);
    bus->mmio_next = PCI_MMIO_WINDOW_START;
    pci_dev_init(&bus->host_bridge, HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE, CLASS_HOST_BRIDGE,
                 HOST_BRIDGE_VENDOR, 0);
    bus->devs[0] = &bus->host_bridge;
    rc = bus_register(pio, &ports);
    if (!rc)
        rc = bus_register(mmio, &ecam);
    return rc;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    pthread_mutex_destroy(&bus->lock);
}
