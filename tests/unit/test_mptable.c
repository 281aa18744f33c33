/*
 * MP table: written into a 64 MiB guest, then found and parsed the way a
 * guest does (MP spec 1.4, section 4), with nothing taken from the writer's
 * own structure definitions: raw offsets only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "herd/e820.h"
#include "herd/guest_mem.h"
#include "herd/layout.h"
#include "herd/mptable.h"

#define RAM (64 * MiB)

struct ctx {
    uint8_t *buf;
    struct guest_mem gm;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    c->buf = calloc(1, RAM);
    if (!c->buf || guest_mem_init_buffer(&c->gm, c->buf, RAM))
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    free(c->buf);
    free(c);
    return 0;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;

    for (size_t i = 0; i < len; i++)
        s += p[i];
    return s;
}

/* Scans [start, start+len) on 16-byte boundaries for the floating pointer,
 * as Linux's smp_scan_config does. */
static const uint8_t *find_mpf(const uint8_t *ram, uint64_t start, uint64_t len)
{
    for (uint64_t a = start; a + 16 <= start + len; a += 16)
        if (memcmp(ram + a, "_MP_", 4) == 0 && sum(ram + a, 16) == 0 && ram[a + 8] == 1)
            return ram + a;
    return NULL;
}

struct parsed {
    unsigned nr_cpu, nr_bus, nr_ioapic, nr_intsrc, nr_lint;
    uint8_t cpu_apicid[64], cpu_flags[64];
    uint8_t isa_bus_id;
    int have_isa;
    uint8_t ioapic_id, ioapic_flags;
    uint32_t ioapic_addr;
    int irq_pin[16];         /* ISA IRQ -> IOAPIC pin, -1 if not routed */
    uint8_t irq_dstapic[16];
    unsigned table_len;      /* PCMP base table length */
};

static void parse(const uint8_t *ram, struct parsed *out)
{
    const uint8_t *mpf = find_mpf(ram, LAYOUT_EBDA_START, 1024);
    const uint8_t *mpc, *p, *end;
    uint32_t physptr;
    uint16_t count, len;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < 16; i++)
        out->irq_pin[i] = -1;
    assert_non_null(mpf);
    assert_ptr_equal(mpf, ram + LAYOUT_MPTABLE);
    assert_int_equal(sum(mpf, 16), 0);
    assert_int_equal(mpf[8], 1);  /* length in paragraphs */
    assert_int_equal(mpf[9], 4);  /* spec revision 1.4 */
    assert_int_equal(mpf[11], 0); /* feature byte 1: 0 = a config table follows */
    physptr = rd32(mpf + 4);
    assert_true(physptr >= LAYOUT_EBDA_START && physptr < 0xa0000);

    mpc = ram + physptr;
    assert_memory_equal(mpc, "PCMP", 4);
    len = rd16(mpc + 4);
    assert_true(len >= 44);
    assert_true(physptr + len <= 0xa0000); /* inside the EBDA */
    assert_int_equal(mpc[6], 4);
    assert_int_equal(sum(mpc, len), 0);
    assert_int_equal(rd32(mpc + 36), LAYOUT_LAPIC);
    count = rd16(mpc + 34);
    out->table_len = len;

    p = mpc + 44;
    end = mpc + len;
    for (unsigned n = 0; n < count; n++) {
        assert_true(p < end);
        switch (p[0]) {
        case 0: /* processor, 20 bytes */
            assert_true(p + 20 <= end);
            assert_true(out->nr_cpu < 64);
            out->cpu_apicid[out->nr_cpu] = p[1];
            out->cpu_flags[out->nr_cpu] = p[3];
            out->nr_cpu++;
            p += 20;
            break;
        case 1: /* bus */
            assert_true(p + 8 <= end);
            if (memcmp(p + 2, "ISA   ", 6) == 0) {
                out->have_isa = 1;
                out->isa_bus_id = p[1];
            }
            out->nr_bus++;
            p += 8;
            break;
        case 2: /* IOAPIC */
            assert_true(p + 8 <= end);
            out->ioapic_id = p[1];
            out->ioapic_flags = p[3];
            out->ioapic_addr = rd32(p + 4);
            out->nr_ioapic++;
            p += 8;
            break;
        case 3: /* I/O interrupt assignment */
            assert_true(p + 8 <= end);
            if (p[1] == 0 && out->have_isa && p[4] == out->isa_bus_id && p[5] < 16) {
                out->irq_pin[p[5]] = p[7];
                out->irq_dstapic[p[5]] = p[6];
            }
            out->nr_intsrc++;
            p += 8;
            break;
        case 4: /* local interrupt assignment */
            assert_true(p + 8 <= end);
            out->nr_lint++;
            p += 8;
            break;
        default:
            fail_msg("unknown MP entry type %u at offset %td", p[0], p - mpc);
        }
    }
    /* The entry count covers exactly the table length. */
    assert_ptr_equal(p, end);
}

static void check_for(struct ctx *c, unsigned nr_cpus)
{
    struct parsed t;

    assert_int_equal(mptable_write(&c->gm, nr_cpus), 0);
    parse(c->buf, &t);
    assert_int_equal(t.nr_cpu, nr_cpus);
    for (unsigned i = 0; i < nr_cpus; i++) {
        assert_int_equal(t.cpu_apicid[i], i);
        assert_true(t.cpu_flags[i] & 0x1); /* enabled */
        if (i == 0)
            assert_true(t.cpu_flags[i] & 0x2); /* bootstrap processor */
        else
            assert_false(t.cpu_flags[i] & 0x2);
    }
    assert_true(t.have_isa);
    assert_int_equal(t.nr_ioapic, 1);
    assert_int_equal(t.ioapic_id, nr_cpus); /* no clash with any LAPIC id */
    assert_true(t.ioapic_flags & 1);
    assert_int_equal(t.ioapic_addr, LAYOUT_IOAPIC);
    for (int irq = 0; irq < 16; irq++) {
        assert_int_equal(t.irq_pin[irq], irq);
        assert_int_equal(t.irq_dstapic[irq], nr_cpus);
    }
    assert_int_equal(t.nr_lint, 2);
    /* mptable_size is the floating pointer plus the whole PCMP table. */
    assert_int_equal(mptable_size(nr_cpus), 16 + t.table_len);
}

static void test_one_cpu(void **state)
{
    check_for(*state, 1);
}

static void test_four_cpus(void **state)
{
    check_for(*state, 4);
}

static void test_max_cpus(void **state)
{
    check_for(*state, MPTABLE_MAX_CPUS);
    assert_true(LAYOUT_MPTABLE + mptable_size(MPTABLE_MAX_CPUS) <= 0xa0000);
}

static void test_rewrite_with_fewer_cpus(void **state)
{
    struct ctx *c = *state;

    check_for(c, 8);
    check_for(c, 2);
}

static void test_size_grows_per_cpu(void **state)
{
    /* Each processor entry is 20 bytes. */
    for (unsigned n = 1; n < MPTABLE_MAX_CPUS; n++)
        assert_int_equal(mptable_size(n + 1) - mptable_size(n), 20);
}

static void test_table_is_in_reserved_e820(void **state)
{
    struct ctx *c = *state;
    struct e820_map map;
    uint64_t start = LAYOUT_MPTABLE, end = LAYOUT_MPTABLE + mptable_size(MPTABLE_MAX_CPUS);
    int covered = 0;

    assert_int_equal(e820_build(&map, &c->gm), 0);
    for (unsigned i = 0; i < map.nr; i++) {
        const struct e820_entry *e = &map.entries[i];

        if (e->addr <= start && end <= e->addr + e->size) {
            assert_int_equal(e->type, E820_RESERVED);
            covered = 1;
        }
    }
    assert_true(covered);
}

static void test_bad_cpu_counts(void **state)
{
    struct ctx *c = *state;
    uint8_t *area = c->buf + LAYOUT_MPTABLE;

    memset(area, 0xcc, 1024);
    assert_int_equal(mptable_write(&c->gm, 0), -EINVAL);
    assert_int_equal(mptable_write(&c->gm, MPTABLE_MAX_CPUS + 1), -EINVAL);
    assert_int_equal(mptable_write(&c->gm, 255), -EINVAL);
    assert_int_equal(mptable_write(&c->gm, 256), -EINVAL);
    assert_int_equal(mptable_write(&c->gm, UINT32_MAX), -EINVAL);
    for (int i = 0; i < 1024; i++)
        assert_int_equal(area[i], 0xcc);
}

static void test_area_not_ram(void **state)
{
    struct ctx *c = *state;
    struct guest_mem gm = c->gm;

    /* Low RAM ending inside the EBDA, before the table would end. */
    gm.slots[0].size = LAYOUT_MPTABLE + 32;
    memset(c->buf + LAYOUT_MPTABLE, 0xcc, 32);
    assert_int_equal(mptable_write(&gm, 1), -EFAULT);
    for (int i = 0; i < 32; i++)
        assert_int_equal(c->buf[LAYOUT_MPTABLE + i], 0xcc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_cpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_four_cpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_cpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_with_fewer_cpus, setup, teardown),
        cmocka_unit_test(test_size_grows_per_cpu),
        cmocka_unit_test_setup_teardown(test_table_is_in_reserved_e820, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cpu_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_area_not_ram, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
