/*
 * PCI configuration access and enumeration for herd-probe: the legacy
 * configuration ports 0xCF8/0xCFC (through ud2 port calls, offsets < 256)
 * or ECAM found through the ACPI MCFG table or, lacking one, the host
 * bridge's _CBA in the DSDT (QEMU 7.2 microvm,pcie=on has no MCFG); MMIO,
 * used natively from CPL3. Memory BARs the firmware left unassigned (or placed above 4 GiB,
 * beyond the probe's page tables) are assigned from a 32-bit window.
 */
#ifndef HERD_PROBE_PCI_H
#define HERD_PROBE_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bootinfo.h"

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SECONDARY_BUS 0x19
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34

#define PCI_COMMAND_MEM 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_STATUS_CAPS 0x0010

#define PCI_MAX_DEVS 64

enum pci_method { PCI_NONE, PCI_PORTS, PCI_ECAM };

struct pci_dev {
    uint8_t bus, dev, fn;
    uint16_t vendor, device, subsys;
    uint8_t hdr;
};

/* Chooses the access method (force: "ports", "ecam" or NULL = ECAM if the
 * MCFG table describes one, else the ports if they respond), then scans
 * the bus tree from the first bus. false with *why filled if there is no
 * usable PCI. Idempotent (rescans each time). */
bool pci_init(const struct bootinfo *bi, const char *force, char *why, size_t whylen);
enum pci_method pci_method(void);
const char *pci_method_name(void);
uint64_t pci_ecam_base(void);
const char *pci_ecam_source(void); /* "MCFG" or "DSDT _CBA" */

/* Incremented by every pci_init (cached device state is stale after it). */
uint32_t pci_generation(void);

/* Devices found by the last pci_init. */
uint32_t pci_count(void);
const struct pci_dev *pci_get(uint32_t i);

uint32_t pci_read32(const struct pci_dev *d, uint16_t off);
uint16_t pci_read16(const struct pci_dev *d, uint16_t off);
uint8_t pci_read8(const struct pci_dev *d, uint16_t off);
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v);
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v);

/* Offset of the first capability with this ID in d's list, or 0. */
uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id);

/* Memory BAR `bar` (0-5) of d: sized (decoding off meanwhile), assigned
 * from the window if it is 0 or above 4 GiB, and memory decoding plus bus
 * mastering enabled. Returns its address and size, or 0 (with *why) for
 * an absent or I/O BAR or an exhausted window. */
uint64_t pci_map_bar(const struct pci_dev *d, int bar, uint64_t *size, char *why, size_t whylen);

#endif
