/*
 * Test "boot": the boot loader's hand-over. Command line present and carrying
 * probe.tests; memory map sane (non-overlapping, RAM present, low RAM below
 * 640 KiB, no RAM in the 640 KiB-1 MiB hole, our image and the boot
 * structures inside it); RAM size and
 * CPU count as probe.mem / probe.cpus expect.
 */
#include "acpi_mp.h"
#include "cpl0.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"

#define LOW_RAM_END 0xa0000ULL
#define LEGACY_END 0x100000ULL
#define HOLE_START 0xc0000000ULL /* RAM below 4 GiB stops at 3 GiB */
#define FOUR_GIB 0x100000000ULL

static const char *type_name(uint32_t type)
{
    switch (type) {
    case 1: return "ram";
    case 2: return "reserved";
    case 3: return "acpi";
    case 4: return "nvs";
    case 5: return "unusable";
    default: return "other";
    }
}

/* Is [addr, addr+len) covered by the (sorted, non-overlapping) entries,
 * RAM only or any type? */
static bool covered(const struct memrange *m, uint32_t n, uint64_t addr, uint64_t len, bool ram_only)
{
    uint64_t end = addr + len;
    if (end < addr)
        return false;
    for (uint32_t i = 0; i < n && addr < end; i++) {
        if (ram_only && m[i].type != E820_RAM)
            continue;
        if (m[i].addr <= addr && addr < m[i].addr + m[i].size)
            addr = m[i].addr + m[i].size;
    }
    return addr >= end;
}

static void check_memmap(struct test_ctx *t, struct memrange *m, uint32_t *pn)
{
    const struct bootinfo *bi = t->bi;
    uint32_t n = 0;
    for (uint32_t i = 0; i < bi->nmem; i++) {
        const struct memrange *e = &bi->mem[i];
        if (e->size == 0)
            continue;
        if (e->addr + e->size < e->addr) {
            fail(t, "memmap entry %u wraps: 0x%lx+0x%lx", i, (unsigned long)e->addr,
                 (unsigned long)e->size);
            continue;
        }
        /* insertion sort by address */
        uint32_t j = n++;
        while (j > 0 && m[j - 1].addr > e->addr) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = *e;
    }
    *pn = n;
    if (n == 0) {
        fail(t, "no memory map");
        return;
    }
    uint64_t ram = 0, low = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && m[i].addr < m[i - 1].addr + m[i - 1].size)
            fail(t, "memmap entries overlap: [0x%lx,0x%lx) %s and [0x%lx,0x%lx) %s",
                 (unsigned long)m[i - 1].addr, (unsigned long)(m[i - 1].addr + m[i - 1].size),
                 type_name(m[i - 1].type), (unsigned long)m[i].addr,
                 (unsigned long)(m[i].addr + m[i].size), type_name(m[i].type));
        if (m[i].type != E820_RAM)
            continue;
        ram += m[i].size;
        if (m[i].addr < LOW_RAM_END) {
            uint64_t end = m[i].addr + m[i].size;
            low += (end < LOW_RAM_END ? end : LOW_RAM_END) - m[i].addr;
        }
    }
    say("memmap: %u entries, RAM %lu KiB", n, (unsigned long)(ram >> 10));
    if (t->args->verbose)
        for (uint32_t i = 0; i < n; i++)
            say("memmap: [0x%09lx, 0x%09lx) %s", (unsigned long)m[i].addr,
                (unsigned long)(m[i].addr + m[i].size), type_name(m[i].type));
    if (ram == 0)
        fail(t, "no RAM (type 1) in the memory map");
    if (!covered(m, n, 0, 0x1000, true) || low < 0x80000)
        fail(t, "low RAM below 640 KiB missing or short (%lu KiB, page 0 %s)",
             (unsigned long)(low >> 10), covered(m, n, 0, 0x1000, true) ? "ram" : "not ram");
    for (uint32_t i = 0; i < n; i++)
        if (m[i].type == E820_RAM && m[i].addr < LEGACY_END && m[i].addr + m[i].size > LOW_RAM_END)
            fail(t, "RAM entry [0x%lx,0x%lx) covers the legacy VGA/BIOS hole", (unsigned long)m[i].addr,
                 (unsigned long)(m[i].addr + m[i].size));
    uint64_t is = (uint64_t)(uintptr_t)__image_start, ie = (uint64_t)(uintptr_t)__image_end;
    if (!covered(m, n, is, ie - is, true))
        fail(t, "probe image [0x%lx,0x%lx) not inside RAM", (unsigned long)is, (unsigned long)ie);
    for (uint32_t i = 0; i < bi->nranges; i++) {
        const struct bootrange *r = &bi->ranges[i];
        if (!covered(m, n, r->addr, r->size, false))
            fail(t, "%s [0x%lx,0x%lx) not inside RAM or reserved memory", r->what,
                 (unsigned long)r->addr, (unsigned long)(r->addr + r->size));
    }
    /* The RAM the map promises must hold data: write and read back the
     * last quadword of every RAM range we can reach (below the hole),
     * restoring what was there. */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t end = m[i].addr + m[i].size;
        if (m[i].type != E820_RAM || m[i].size < 8 || end > HOLE_START)
            continue;
        volatile uint64_t *q = (volatile uint64_t *)pa_ptr((end - 8) & ~7ULL);
        uint64_t old = *q;
        *q = 0x5a5aa5a5c3c33c3cULL ^ end;
        uint64_t got = *q;
        *q = old;
        if (got != (0x5a5aa5a5c3c33c3cULL ^ end))
            fail(t, "RAM at 0x%lx does not keep what was written", (unsigned long)(end - 8));
    }
    if (t->args->has_mem) {
        uint64_t mem = t->args->mem, top = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (m[i].type != E820_RAM || m[i].addr >= FOUR_GIB)
                continue;
            uint64_t end = m[i].addr + m[i].size;
            if (end > FOUR_GIB)
                end = FOUR_GIB;
            if (end > top)
                top = end;
        }
        uint64_t want_top = mem < HOLE_START ? mem : HOLE_START;
        if (top != want_top)
            fail(t, "RAM below 4 GiB ends at 0x%lx, expected 0x%lx for probe.mem", (unsigned long)top,
                 (unsigned long)want_top);
        /* The VMMs may carve the EBDA/BIOS area (0x9fc00-0x100000) out. */
        if (ram + (1ULL << 20) < mem || ram > mem)
            fail(t, "total RAM %lu KiB, expected %lu KiB (less at most 1 MiB)",
                 (unsigned long)(ram >> 10), (unsigned long)(mem >> 10));
    }
}

void test_boot(struct test_ctx *t)
{
    const struct bootinfo *bi = t->bi;
    if (bi->err[0])
        fail(t, "%s", bi->err);
    if (t->args->err[0])
        fail(t, "%s", t->args->err);
    if (!bi->cmdline_present || bi->cmdline_len == 0)
        fail(t, "no command line");
    else if (!t->args->has_tests)
        fail(t, "command line lacks probe.tests");

    struct memrange m[MEMMAP_MAX];
    uint32_t n = 0;
    check_memmap(t, m, &n);

    struct cpu_count cc;
    cpus_count(bi->rsdp_paddr, t->args->cpusrc, &cc);
    if (cc.source)
        say("cpus: %u (%s)", cc.enabled, cc.source);
    else
        say("cpus: no MP table or MADT found%s%s", cc.note[0] ? ": " : "", cc.note);
    if (t->args->has_cpus) {
        if (!cc.source)
            fail(t, "no MP table or MADT to count CPUs%s%s", cc.note[0] ? ": " : "", cc.note);
        else if (cc.enabled != t->args->cpus)
            fail(t, "%u enabled CPUs in the %s, probe.cpus=%lu", cc.enabled, cc.source,
                 (unsigned long)t->args->cpus);
    }
}
