/*
 * Builds the guest memory map. The reservations mirror what a PC BIOS (and
 * QEMU) reports, so guests written for real machines find what they expect:
 * the EBDA (where our MP table lives) and the BIOS area are not RAM.
 */
#include "herd/e820.h"

#include <errno.h>

#include "herd/layout.h"
#include "herd/pci.h"

static int add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
    if (size == 0)
        return 0;
    if (map->nr == E820_MAX_ENTRIES)
        return -ENOSPC;
    map->entries[map->nr++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
    return 0;
}

int e820_build(struct e820_map *map, const struct guest_mem *gm)
{
    uint64_t low_end = guest_mem_low_end(gm);
    int rc = 0;

    map->nr = 0;
    if (low_end < LAYOUT_KERNEL_START + MiB)
        return -EINVAL;
    rc |= add(map, 0, LAYOUT_EBDA_START, E820_RAM);
    rc |= add(map, LAYOUT_EBDA_START, 0xa0000 - LAYOUT_EBDA_START, E820_RESERVED);
    rc |= add(map, LAYOUT_BIOS_START, LAYOUT_LEGACY_END - LAYOUT_BIOS_START, E820_RESERVED);
    rc |= add(map, LAYOUT_LEGACY_END, low_end - LAYOUT_LEGACY_END, E820_RAM);
    /* ECAM must be reserved for guests to trust the MCFG table. */
    rc |= add(map, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED);
    for (unsigned i = 1; i < gm->nr_slots; i++)
        rc |= add(map, gm->slots[i].gpa, gm->slots[i].size, E820_RAM);
    return rc ? -ENOSPC : 0;
}

uint64_t e820_ram_total(const struct e820_map *map)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < map->nr; i++)
        if (map->entries[i].type == E820_RAM)
            total += map->entries[i].size;
    return total;
}
