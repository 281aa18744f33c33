/*
 * Memory the probe hands to devices (virtqueues, request headers, data
 * buffers): a bump allocator over the RAM range that follows the probe
 * image. Guest-physical == virtual (identity mapping), so a pointer is a
 * device address. dma_reset() frees everything; call it only when no
 * device still owns any of it (after a device reset).
 */
#ifndef HERD_PROBE_DMA_H
#define HERD_PROBE_DMA_H

#include <stddef.h>
#include <stdint.h>

#include "bootinfo.h"

/* Returns the bytes available (0 if the memory map has no RAM after the
 * image). */
uint64_t dma_reset(const struct bootinfo *bi);
/* Zeroed, aligned (power of two); NULL when out of memory. */
void *dma_alloc(uint64_t size, uint64_t align);
uint64_t dma_left(void);
/* The RAM range the allocator uses, for tests that need an address just
 * outside RAM. */
uint64_t dma_ram_end(void);

static inline uint64_t dma_addr(const void *p) { return (uint64_t)(uintptr_t)p; }

#endif
