/*
 * PCI host bridge and bus 0: configuration space through the legacy ports
 * (0xcf8 address, 0xcfc-0xcff data) and through ECAM (MMIO, found by guests
 * via the ACPI MCFG table), plus BAR placement in the 32-bit MMIO window.
 * Devices own their config space bytes; writes honour a per-byte writable
 * mask, so a guest can only change what real hardware would let it change.
 */
#ifndef HERD_PCI_H
#define HERD_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "herd/bus.h"

#define PCI_CONFIG_SIZE   256
#define PCI_MAX_DEVICES   32
#define PCI_NUM_BARS      6
#define PCI_PORT_ADDR     0xcf8
#define PCI_PORT_DATA     0xcfc

/* 32-bit window for BARs and the ECAM area (bus 0 only: 1 MiB). */
#define PCI_MMIO_WINDOW_START 0xd0000000ULL
#define PCI_MMIO_WINDOW_END   0xe0000000ULL
#define PCI_ECAM_BASE         0xe0000000ULL
#define PCI_ECAM_SIZE         0x100000ULL

/* Standard config header offsets and bits used here. */
#define PCI_VENDOR_ID   0x00
#define PCI_DEVICE_ID   0x02
#define PCI_COMMAND     0x04
#define PCI_STATUS      0x06
#define PCI_REVISION    0x08
#define PCI_CLASS_PROG  0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID   0x2e
#define PCI_CAP_PTR     0x34
#define PCI_INT_LINE    0x3c
#define PCI_INT_PIN     0x3d
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10

struct pci_dev;

struct pci_dev_ops {
    /* After the guest wrote config bytes [off, off+len) (already masked). */
    void (*config_written)(struct pci_dev *dev, unsigned off, unsigned len);
    /* Optional override for reads of [off, off+len): return true if handled. */
    bool (*config_read)(struct pci_dev *dev, unsigned off, uint8_t *data, unsigned len);
};

struct pci_bar {
    uint64_t addr;  /* assigned guest-physical address, 0 if unused */
    uint64_t size;  /* power of two, >= 4 KiB for memory BARs */
};

struct pci_dev {
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];  /* guest-writable bits */
    struct pci_bar bars[PCI_NUM_BARS];
    unsigned slot;
    const struct pci_dev_ops *ops;
    void *opaque;
    unsigned next_cap; /* where the next capability goes */
};

struct pci_bus {
    pthread_mutex_t lock; /* config space of every device, the cf8 latch */
    struct pci_dev *devs[PCI_MAX_DEVICES];
    struct pci_dev host_bridge;
    uint32_t cf8;
    uint64_t mmio_next; /* next free address in the BAR window */
};

int pci_bus_init(struct pci_bus *bus, struct bus *pio, struct bus *mmio);
void pci_bus_destroy(struct pci_bus *bus);

/* Prepares a type-0 header. */
void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
                  uint16_t subsys_vendor, uint16_t subsys_id);

/* Allocates a 32-bit memory BAR of `size` bytes (power of two) in the window. */
int pci_dev_add_bar(struct pci_bus *bus, struct pci_dev *dev, unsigned bar, uint64_t size);

/* Appends a capability of `len` bytes (id + next are filled in) and returns
 * its config offset; 0 if the space is full. */
unsigned pci_dev_add_cap(struct pci_dev *dev, uint8_t id, const void *body, unsigned len);

/* Plugs the device into the next free slot (1..31). */
int pci_bus_add(struct pci_bus *bus, struct pci_dev *dev);

/* Snapshots: a function's config space as the guest sees it (without a
 * device's read overrides), and putting one back: only the bytes the guest
 * could write change (wmask), BARs stay where herd-vmm placed them, and no
 * device hook runs (the device restores its own state). */
void pci_dev_save_config(struct pci_bus *bus, const struct pci_dev *dev,
                         uint8_t out[PCI_CONFIG_SIZE]);
void pci_dev_load_config(struct pci_bus *bus, struct pci_dev *dev,
                         const uint8_t in[PCI_CONFIG_SIZE]);

/* Config access by (slot, offset), as both access methods and tests use it. */
void pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned off,
                     uint8_t *data, unsigned len);
void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, unsigned off,
                      const uint8_t *data, unsigned len);

/* Little-endian helpers for config space. */
static inline void pci_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *p, uint32_t v)
{
    pci_put16(p, (uint16_t)v);
    pci_put16(p + 2, (uint16_t)(v >> 16));
}

static inline uint16_t pci_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t pci_get32(const uint8_t *p)
{
    return (uint32_t)pci_get16(p) | ((uint32_t)pci_get16(p + 2) << 16);
}

#endif
