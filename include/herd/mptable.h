/*
 * Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
 * (Linux with acpi=off, or our test guest) finds its CPUs, the IOAPIC and
 * which ISA interrupt lands on which IOAPIC pin.
 */
#ifndef HERD_MPTABLE_H
#define HERD_MPTABLE_H

#include <stdint.h>

#include "herd/guest_mem.h"

/* The table (floating pointer + configuration table) must fit in the last
 * KiB of base memory, where every MP-aware guest looks first. */
#define MPTABLE_MAX_CPUS 32

/* IOAPIC pins described to the guest (ISA IRQs 0-15 identity mapped, the
 * rest available for PCI INTx later). */
#define MPTABLE_IOAPIC_PINS 24

/* Writes the table at LAYOUT_MPTABLE for `nr_cpus` CPUs (APIC ids 0..n-1).
 * Returns 0, -EINVAL for a bad count, -EFAULT if the area is not RAM. */
int mptable_write(const struct guest_mem *gm, unsigned nr_cpus);

/* Size in bytes of the table for nr_cpus (floating pointer included). */
unsigned mptable_size(unsigned nr_cpus);

#endif
