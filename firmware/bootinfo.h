/*
 * What the boot loader told the probe, in one form for both boot paths:
 * PVH (struct hvm_start_info) and the Linux boot protocol (struct
 * boot_params, the "zero page").
 */
#ifndef HERD_PROBE_BOOTINFO_H
#define HERD_PROBE_BOOTINFO_H

#include <stdbool.h>
#include <stdint.h>

#define MEMMAP_MAX 128
#define CMDLINE_MAX 4096 /* incl. NUL; the bzImage header says 4095 */

#define E820_RAM 1

struct memrange {
    uint64_t addr, size;
    uint32_t type;
};

/* A physical range the loader handed us (for the "inside RAM" checks). */
struct bootrange {
    const char *what;
    uint64_t addr, size;
};

struct bootinfo {
    int via; /* BOOT_PVH or BOOT_LINUX */
    uint64_t info_paddr;

    bool cmdline_present;
    char cmdline[CMDLINE_MAX];
    uint32_t cmdline_len;

    uint32_t nmem; /* entries as given (possibly unsorted) */
    struct memrange mem[MEMMAP_MAX];

    uint64_t rsdp_paddr; /* 0 if the loader gave none */

    struct bootrange ranges[4];
    uint32_t nranges;

    /* First problem found while reading the boot data ("" if none); the
     * boot test reports it. */
    char err[160];
};

/* Reads the structures behind `info` (physical address from ebx/rsi). */
void bootinfo_read(struct bootinfo *bi, int via, uint64_t info);

#endif
