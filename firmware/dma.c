/*
 * Bump allocator for device-visible memory (see dma.h).
 */
#include "dma.h"

#include "lib.h"
#include "tests.h"

#define DMA_LIMIT 0xc0000000ULL /* stay below the MMIO hole */

static uint64_t next, end, ram_end;

uint64_t dma_reset(const struct bootinfo *bi)
{
    uint64_t start = ((uint64_t)(uintptr_t)__image_end + 0xfffff) & ~0xfffffULL;
    next = end = ram_end = 0;
    uint64_t top = 0;
    for (uint32_t i = 0; i < bi->nmem; i++) {
        const struct memrange *m = &bi->mem[i];
        if (m->type != E820_RAM || m->addr > start || m->addr + m->size <= start)
            continue;
        top = m->addr + m->size;
    }
    for (uint32_t i = 0; i < bi->nmem; i++) {
        /* A RAM entry may be followed by an adjacent one. */
        const struct memrange *m = &bi->mem[i];
        if (m->type == E820_RAM && m->size && m->addr == top)
            top = m->addr + m->size, i = (uint32_t)-1;
    }
    ram_end = top;
    if (top > DMA_LIMIT)
        top = DMA_LIMIT;
    if (top > start) {
        next = start;
        end = top;
    }
    return end - next;
}

void *dma_alloc(uint64_t size, uint64_t align)
{
    if (!align)
        align = 1;
    uint64_t a = (next + align - 1) & ~(align - 1);
    if (a < next || a > end || size > end - a)
        return 0;
    next = a + size;
    void *p = (void *)pa_ptr(a);
    memset(p, 0, size);
    return p;
}

uint64_t dma_left(void) { return end - next; }
uint64_t dma_ram_end(void) { return ram_end; }
