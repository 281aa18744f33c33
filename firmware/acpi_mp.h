/*
 * CPU count from the firmware tables a VMM provides: the Intel MP table
 * (herd-vmm) or the ACPI MADT (QEMU microvm).
 */
#ifndef HERD_PROBE_ACPI_MP_H
#define HERD_PROBE_ACPI_MP_H

#include <stdint.h>

struct cpu_count {
    uint32_t enabled;   /* processors flagged enabled */
    const char *source; /* "mptable", "madt", or NULL if none was found */
    char note[128];     /* why a table was rejected ("" if none was) */
};

/* MP table first, ACPI MADT otherwise (only = "mptable" or "madt" restricts
 * it to one, so both parsers can be tested on one VMM). rsdp_hint: the RSDP
 * address from the boot info, 0 to search for it. */
void cpus_count(uint64_t rsdp_hint, const char *only, struct cpu_count *out);

/* The ACPI table with signature `sig` (4 chars) listed in the RSDT/XSDT,
 * length and checksum verified; its physical address and *len, or 0. */
uint64_t acpi_find(uint64_t rsdp_hint, const char *sig, uint32_t *len);

/* The DSDT (from the FADT's X_DSDT or DSDT field), checked; or 0. */
uint64_t acpi_dsdt(uint64_t rsdp_hint, uint32_t *len);

#endif
