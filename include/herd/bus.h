/*
 * Address decoding for guest accesses that exit to herd-vmm: one bus for I/O
 * ports, one for MMIO. Devices register a range and two callbacks; the vCPU
 * loop hands every exit to bus_dispatch. Accesses nobody claims read as all
 * ones and writes are dropped, as on a PC.
 */
#ifndef HERD_BUS_H
#define HERD_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_DEVICES 32

/* `offset` is relative to the range's base; `len` is 1, 2, 4 or 8. */
typedef void (*bus_read_fn)(void *opaque, uint64_t offset, uint8_t *data, unsigned len);
typedef void (*bus_write_fn)(void *opaque, uint64_t offset, const uint8_t *data, unsigned len);

struct bus_range {
    uint64_t base;
    uint64_t size;
    const char *name;
    bus_read_fn read;   /* NULL: reads as all ones */
    bus_write_fn write; /* NULL: writes dropped */
    void *opaque;
};

struct bus {
    const char *name; /* "pio" or "mmio", for logs */
    unsigned nr;
    struct bus_range ranges[BUS_MAX_DEVICES]; /* sorted by base, disjoint */
};

void bus_init(struct bus *bus, const char *name);

/* Adds a range; -EEXIST if it overlaps one already there, -ENOSPC if full. */
int bus_register(struct bus *bus, const struct bus_range *range);

/* The range holding [addr, addr+len), or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned len);

/* Performs a guest access. Returns true if a device claimed it. */
bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool write);

#endif
