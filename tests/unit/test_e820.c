/*
 * e820: the guest memory map for small and >4 GiB guests, its sorted and
 * disjoint shape, and the RAM total.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "herd/e820.h"
#include "herd/pci.h"
#include "herd/guest_mem.h"
#include "herd/layout.h"

/* e820_build only reads the slot layout; the address space is reserved but
 * never touched, so even large guests cost nothing. */
struct mem {
    struct guest_mem gm;
    void *buf;
    uint64_t size;
};

static void mem_init(struct mem *m, uint64_t size)
{
    m->size = size;
    m->buf = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(m->buf != MAP_FAILED);
    assert_int_equal(guest_mem_init_buffer(&m->gm, m->buf, size), 0);
}

static void mem_fini(struct mem *m)
{
    munmap(m->buf, m->size);
}

static void assert_entry(const struct e820_map *map, unsigned i, uint64_t addr, uint64_t size,
                         uint32_t type)
{
    assert_true(i < map->nr);
    assert_int_equal(map->entries[i].addr, addr);
    assert_int_equal(map->entries[i].size, size);
    assert_int_equal(map->entries[i].type, type);
}

static void test_map_64m(void **state)
{
    struct e820_map map;
    struct mem m;

    mem_init(&m, 64 * MiB);
    memset(&map, 0xee, sizeof(map));
    assert_int_equal(e820_build(&map, &m.gm), 0);
    assert_int_equal(map.nr, 5);
    assert_entry(&map, 0, 0, 0x9fc00, E820_RAM);
    assert_entry(&map, 1, 0x9fc00, 0x400, E820_RESERVED);
    assert_entry(&map, 2, 0xe0000, 0x20000, E820_RESERVED); /* ACPI + BIOS area */
    assert_entry(&map, 3, 0x100000, 64 * MiB - 0x100000, E820_RAM);
    assert_entry(&map, 4, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED); /* MCFG's ECAM */
    assert_int_equal(e820_ram_total(&map), 0x9fc00 + 63 * MiB);
    mem_fini(&m);
}

static void test_map_above_4g(void **state)
{
    struct e820_map map;
    struct mem m;

    mem_init(&m, 6 * GiB);
    assert_int_equal(e820_build(&map, &m.gm), 0);
    assert_int_equal(map.nr, 6);
    assert_entry(&map, 0, 0, 0x9fc00, E820_RAM);
    assert_entry(&map, 1, 0x9fc00, 0x400, E820_RESERVED);
    assert_entry(&map, 2, 0xe0000, 0x20000, E820_RESERVED); /* ACPI + BIOS area */
    /* Low RAM stops exactly at the MMIO hole ... */
    assert_entry(&map, 3, 0x100000, 0xc0000000 - 0x100000, E820_RAM);
    assert_entry(&map, 4, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED);
    /* ... and the rest (6 GiB - 3 GiB) continues at 4 GiB. */
    assert_entry(&map, 5, 0x100000000ULL, 3 * GiB, E820_RAM);
    /* No RAM in the hole; only the ECAM window is described there. */
    for (unsigned i = 0; i < map.nr; i++) {
        uint64_t a = map.entries[i].addr, e = a + map.entries[i].size;

        if (a < LAYOUT_MMIO_HOLE_END && e > LAYOUT_MMIO_HOLE_START)
            assert_true(map.entries[i].type == E820_RESERVED && a == PCI_ECAM_BASE);
    }
    mem_fini(&m);
}

static void test_map_at_hole_boundary(void **state)
{
    struct e820_map map;
    struct mem m;

    /* Exactly 3 GiB: all of it fits below the hole, no high entry. */
    mem_init(&m, LAYOUT_MMIO_HOLE_START);
    assert_int_equal(e820_build(&map, &m.gm), 0);
    assert_int_equal(map.nr, 5);
    assert_entry(&map, 3, 0x100000, 0xc0000000 - 0x100000, E820_RAM);
    mem_fini(&m);

    /* One page more: that page appears at 4 GiB. */
    mem_init(&m, LAYOUT_MMIO_HOLE_START + 4096);
    assert_int_equal(e820_build(&map, &m.gm), 0);
    assert_int_equal(map.nr, 6);
    assert_entry(&map, 5, 0x100000000ULL, 4096, E820_RAM);
    mem_fini(&m);
}

static void test_sorted_disjoint_and_total(void **state)
{
    static const uint64_t sizes[] = {
        2 * MiB, 4 * MiB, 64 * MiB, 100 * MiB + 4096, 1 * GiB, 3 * GiB - 4096, 3 * GiB,
        4 * GiB, 5 * GiB + 12 * 4096, 64 * GiB,
    };

    for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        struct e820_map map;
        struct mem m;

        mem_init(&m, sizes[s]);
        assert_int_equal(e820_build(&map, &m.gm), 0);
        assert_true(map.nr >= 4 && map.nr <= E820_MAX_ENTRIES);
        for (unsigned i = 0; i < map.nr; i++) {
            const struct e820_entry *e = &map.entries[i];

            assert_true(e->size > 0);
            assert_true(e->type == E820_RAM || e->type == E820_RESERVED);
            assert_true(e->addr + e->size > e->addr); /* no wrap */
            if (i > 0) {
                const struct e820_entry *p = &map.entries[i - 1];

                assert_true(p->addr + p->size <= e->addr);
            }
        }
        /* All the RAM the user asked for, less the EBDA-to-1-MiB legacy area. */
        assert_int_equal(e820_ram_total(&map),
                         sizes[s] - (LAYOUT_LEGACY_END - LAYOUT_EBDA_START));
        mem_fini(&m);
    }
}

static void test_ram_total_counts_only_ram(void **state)
{
    struct e820_map map = {
        .nr = 4,
        .entries = {
            {.addr = 0, .size = 0x1000, .type = E820_RAM},
            {.addr = 0x1000, .size = 0x2000, .type = E820_RESERVED},
            {.addr = 0x3000, .size = 0x4000, .type = 3 /* ACPI */},
            {.addr = 0x100000000ULL, .size = 0x100000000ULL, .type = E820_RAM},
        },
    };
    struct e820_map empty = {.nr = 0};

    assert_int_equal(e820_ram_total(&map), 0x1000 + 0x100000000ULL);
    assert_int_equal(e820_ram_total(&empty), 0);
}

static void test_too_little_low_ram_refused(void **state)
{
    /* A layout e820_build cannot describe (less than 1 MiB above 1 MiB). */
    struct guest_mem gm = {.size = 1 * MiB + 4096, .memfd = -1, .nr_slots = 1,
                           .slots = {{.gpa = 0, .size = 1 * MiB + 4096}}};
    struct e820_map map;

    assert_int_equal(e820_build(&map, &gm), -EINVAL);
    assert_int_equal(map.nr, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_64m),
        cmocka_unit_test(test_map_above_4g),
        cmocka_unit_test(test_map_at_hole_boundary),
        cmocka_unit_test(test_sorted_disjoint_and_total),
        cmocka_unit_test(test_ram_total_counts_only_ram),
        cmocka_unit_test(test_too_little_low_ram_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
