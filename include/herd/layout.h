/*
 * Guest-physical layout herd-vmm gives every x86-64 guest. One place so the
 * boot loaders, the memory map and the devices agree, and so the test guest
 * (firmware/) can be written against the same numbers.
 */
#ifndef HERD_LAYOUT_H
#define HERD_LAYOUT_H

#include <stdint.h>

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* Boot-time structures in low memory (all below 1 MiB, all inside RAM). */
#define LAYOUT_BOOT_GDT       0x500ULL    /* GDT for the boot vCPU state */
#define LAYOUT_BOOT_IDT       0x540ULL    /* empty IDT (limit 0), after 5 GDT entries */
#define LAYOUT_PVH_START_INFO 0x6000ULL   /* struct hvm_start_info */
#define LAYOUT_PVH_MEMMAP     0x6040ULL   /* hvm_memmap_table_entry[] */
#define LAYOUT_ZERO_PAGE      0x7000ULL   /* Linux struct boot_params */
#define LAYOUT_PML4           0x9000ULL   /* identity page tables: PML4 */
#define LAYOUT_PDPT           0xa000ULL   /*   one PDPT */
#define LAYOUT_PD             0xb000ULL   /*   four PDs (2 MiB pages, 0-4 GiB) */
#define LAYOUT_BOOT_STACK     0x8ff0ULL   /* initial rsp for the 64-bit entry */
#define LAYOUT_CMDLINE        0x20000ULL  /* kernel command line */
#define LAYOUT_CMDLINE_MAX    0x10000ULL  /* incl. NUL; Linux takes 2 KiB+ */

/* Low RAM ends where the EBDA begins; the MP table lives in the EBDA. */
#define LAYOUT_EBDA_START     0x9fc00ULL
#define LAYOUT_MPTABLE        LAYOUT_EBDA_START
#define LAYOUT_LEGACY_END     0x100000ULL /* VGA hole + BIOS area end */
#define LAYOUT_BIOS_START     0xe0000ULL  /* reserved in the e820 map */
#define LAYOUT_ACPI_START     0xe0000ULL  /* RSDP (where guests scan for it) + tables */
#define LAYOUT_ACPI_END       0xf0000ULL

/* Kernel (bzImage protected-mode part, PVH ELF segments) go at 1 MiB+. */
#define LAYOUT_KERNEL_START   0x100000ULL

/* The 32-bit hole: RAM below 4 GiB stops here; devices live above. */
#define LAYOUT_MMIO_HOLE_START 0xc0000000ULL
#define LAYOUT_MMIO_HOLE_END   0x100000000ULL
#define LAYOUT_HIGH_RAM_START  0x100000000ULL

/* Fixed device addresses inside the hole. */
#define LAYOUT_BOOT_MARKER_MMIO 0xc0000000ULL /* Firecracker-style boot marker */
#define LAYOUT_IOAPIC           0xfec00000ULL
#define LAYOUT_LAPIC            0xfee00000ULL

/* Ports. */
#define PORT_SERIAL0     0x3f8
#define PORT_BOOT_MARKER 0x3f0
#define PORT_DEBUG_EXIT  0x501 /* QEMU isa-debug-exit compatible */
#define PORT_I8042_DATA  0x60
#define PORT_I8042_CMD   0x64

#define BOOT_MARKER_MAGIC 123
#define SERIAL0_IRQ       4

#endif
