/*
 * ACPI tables as a guest reads them: RSDP found where guests scan for it,
 * both RSDP checksums, XSDT entries that lead to FACP, APIC (MADT) and MCFG
 * with valid checksums, a hardware-reduced FADT pointing at a DSDT, the
 * MADT's CPUs and IOAPIC, and the MCFG's ECAM window.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "herd/acpi.h"
#include "herd/layout.h"
#include "herd/pci.h"

#define RAM (16 * MiB)

struct ctx {
    uint8_t *ram;
    struct guest_mem gm;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    c->ram = calloc(1, RAM);
    assert_int_equal(guest_mem_init_buffer(&c->gm, c->ram, RAM), 0);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    free(c->ram);
    free(c);
    return 0;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

/* Checks a table's signature, length bounds and checksum; returns it. */
static const uint8_t *table_at(struct ctx *c, uint64_t gpa, const char *sig)
{
    const uint8_t *t = c->ram + gpa;
    uint32_t len;

    assert_true(gpa + 36 <= LAYOUT_ACPI_END);
    assert_memory_equal(t, sig, 4);
    len = rd32(t + 4);
    assert_true(len >= 36 && gpa + len <= LAYOUT_ACPI_END);
    assert_int_equal(acpi_sum(t, len), 0);
    return t;
}

/* Finds the RSDP the way a guest does: 16-byte steps in 0xe0000-0xfffff. */
static uint64_t scan_rsdp(struct ctx *c)
{
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
        if (!memcmp(c->ram + a, "RSD PTR ", 8))
            return a;
    return 0;
}

static const uint8_t *find(struct ctx *c, const uint8_t *xsdt, const char *sig)
{
    uint32_t n = (rd32(xsdt + 4) - 36) / 8;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t gpa = rd64(xsdt + 36 + 8 * i);

        if (!memcmp(c->ram + gpa, sig, 4))
            return table_at(c, gpa, sig);
    }
    fail_msg("no %s table in the XSDT", sig);
    return NULL;
}

static void test_tables_for_cpus(void **state, unsigned cpus)
{
    struct ctx *c = *state;
    const uint8_t *xsdt, *madt, *fadt, *mcfg;
    uint64_t rsdp = 0, found;
    unsigned lapics = 0, ioapics = 0;

    memset(c->ram, 0, RAM);
    assert_int_equal(acpi_write_tables(&c->gm, cpus, &rsdp), 0);
    found = scan_rsdp(c);
    assert_int_equal(found, rsdp);
    assert_int_equal(acpi_sum(c->ram + rsdp, 20), 0);  /* ACPI 1.0 checksum */
    assert_int_equal(acpi_sum(c->ram + rsdp, 36), 0);  /* extended checksum */
    assert_int_equal(c->ram[rsdp + 15], 2);            /* revision 2: XSDT */
    xsdt = table_at(c, rd64(c->ram + rsdp + 24), "XSDT");

    fadt = find(c, xsdt, "FACP");
    assert_true(rd32(fadt + 112) & ACPI_FADT_HW_REDUCED);
    assert_int_equal(rd64(fadt + 140), rd32(fadt + 40)); /* X_DSDT == DSDT */
    table_at(c, rd64(fadt + 140), "DSDT");

    madt = find(c, xsdt, "APIC");
    assert_int_equal(rd32(madt + 36), LAYOUT_LAPIC);
    for (uint32_t off = 44; off < rd32(madt + 4);) {
        const uint8_t *e = madt + off;

        assert_true(e[1] >= 2 && off + e[1] <= rd32(madt + 4));
        if (e[0] == 0) {                 /* processor local APIC */
            assert_int_equal(e[3], lapics); /* APIC id */
            assert_int_equal(rd32(e + 4) & 1, 1); /* enabled */
            lapics++;
        } else if (e[0] == 1) {          /* IOAPIC */
            assert_int_equal(e[2], cpus);
            assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
            assert_int_equal(rd32(e + 8), 0); /* GSI base */
            ioapics++;
        }
        off += e[1];
    }
    assert_int_equal(lapics, cpus);
    assert_int_equal(ioapics, 1);

    mcfg = find(c, xsdt, "MCFG");
    assert_int_equal(rd64(mcfg + 44), PCI_ECAM_BASE);
    assert_int_equal(mcfg[44 + 10], 0);                                 /* start bus */
    assert_int_equal(mcfg[44 + 11], PCI_ECAM_SIZE / (1 << 20) - 1);     /* end bus */
}

static void test_one_cpu(void **state)
{
    test_tables_for_cpus(state, 1);
}

static void test_many_cpus(void **state)
{
    test_tables_for_cpus(state, 4);
    test_tables_for_cpus(state, ACPI_MAX_CPUS);
}

static void test_bad_counts_refused(void **state)
{
    struct ctx *c = *state;
    uint64_t rsdp = 0x1234;

    memset(c->ram, 0, RAM);
    assert_int_equal(acpi_write_tables(&c->gm, 0, &rsdp), -EINVAL);
    assert_int_equal(acpi_write_tables(&c->gm, ACPI_MAX_CPUS + 1, &rsdp), -EINVAL);
    assert_int_equal(rsdp, 0x1234);
    assert_int_equal(scan_rsdp(c), 0); /* nothing written */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_cpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_cpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_counts_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
