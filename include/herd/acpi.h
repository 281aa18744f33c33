/*
 * ACPI for guests whose kernel has no MP-table parser (the Debian cloud
 * kernel is built without CONFIG_X86_MPPARSE): RSDP, XSDT, a
 * hardware-reduced FADT (sleep control/status and reset registers), a DSDT
 * describing the PCI host bridge, the ECAM motherboard resource, COM1, the
 * i8042, the power button and its Generic Event Device, and \_S5, a MADT
 * listing the local APICs, the IOAPIC and the LINT1 NMI wiring (same CPUs
 * and IOAPIC as the MP table), and an MCFG pointing at the PCI ECAM window.
 */
#ifndef HERD_ACPI_H
#define HERD_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "herd/guest_mem.h"
#include "herd/pci.h"

#define ACPI_MAX_CPUS 32

/* FADT flags / boot architecture bits herd-vmm sets. */
#define ACPI_FADT_HW_REDUCED      (1u << 20)
#define ACPI_FADT_RESET_REG_SUP   (1u << 10)
#define ACPI_FADT_PWR_BUTTON      (1u << 4) /* no fixed power button (a device instead) */
#define ACPI_FADT_SLP_BUTTON      (1u << 5) /* no fixed sleep button */
#define ACPI_FADT_8042            (1u << 1)
#define ACPI_FADT_NO_VGA          (1u << 2)
#define ACPI_FADT_NO_CMOS_RTC     (1u << 5)

/* Generic Address Structure fields. */
#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

/* What the DSDT describes. */
#define ACPI_PCI_LAST_BUS  ((unsigned)(PCI_ECAM_SIZE >> 20) - 1) /* 1 MiB of ECAM per bus */
#define ACPI_I8042_KBD_IRQ 1
#define ACPI_DSDT_MAX      4096 /* room for the DSDT's AML */
#define ACPI_NOTIFY_BUTTON_PRESSED 0x80 /* Notify value for a button (ACPI 6.5, 5.6.6) */

struct acpi_sdt_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
    char signature[8]; /* "RSD PTR " */
    uint8_t checksum;  /* over the first 20 bytes */
    char oem_id[6];
    uint8_t revision;  /* 2: ACPI 2.0+, has the XSDT */
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum; /* over all 36 bytes */
    uint8_t reserved[3];
} __attribute__((packed));

/* Writes the tables into [LAYOUT_ACPI_START, LAYOUT_ACPI_END) for nr_cpus
 * CPUs; stores the RSDP address in *rsdp. 0, -EINVAL, -E2BIG or -EFAULT. */
int acpi_write_tables(const struct guest_mem *gm, unsigned nr_cpus, uint64_t *rsdp);

/* The DSDT's AML (no table header) into buf: its length, or -ENOSPC,
 * -EINVAL, -E2BIG from the AML writer. */
long acpi_build_dsdt_body(uint8_t *buf, size_t cap);

/* Byte sum (mod 256) of a table; 0 for a valid checksum. */
uint8_t acpi_sum(const void *p, uint32_t len);

#endif
