/*
 * The guest's physical memory map, built once from the RAM layout and handed
 * to the guest in the form its boot protocol wants (Linux zero page e820
 * table, PVH memmap). Both come from this one description so they can never
 * disagree.
 */
#ifndef HERD_E820_H
#define HERD_E820_H

#include <stdint.h>

#include "herd/guest_mem.h"

#define E820_RAM      1
#define E820_RESERVED 2

#define E820_MAX_ENTRIES 16

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

struct e820_map {
    unsigned nr;
    struct e820_entry entries[E820_MAX_ENTRIES];
};

/* Builds the map for `gm`: low RAM, EBDA and BIOS reservations, RAM from
 * 1 MiB to the hole, RAM above 4 GiB. Entries are sorted and disjoint. */
int e820_build(struct e820_map *map, const struct guest_mem *gm);

/* Total bytes of type E820_RAM. */
uint64_t e820_ram_total(const struct e820_map *map);

#endif
