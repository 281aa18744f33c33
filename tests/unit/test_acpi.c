/*
 * ACPI tables as a guest reads them: RSDP found where guests scan for it,
 * both RSDP checksums, XSDT entries that lead to FACP, APIC (MADT) and MCFG
 * with valid checksums, a hardware-reduced FADT pointing at a DSDT, with
 * its reset and sleep registers on the power ports, the MADT's CPUs and
 * IOAPIC, and the MCFG's ECAM window. The DSDT is read back by ACPICA's
 * disassembler (iasl -d), an oracle we did not write: it must find the PCI
 * host bridge, the ECAM reservation, COM1, the i8042 and \_S5 with the
 * resources herd-vmm really decodes, and the power button with the Generic
 * Event Device whose _EVT reads the event register on its port and
 * notifies it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "herd/acpi.h"
#include "herd/acpi_ged.h"
#include "herd/acpi_power.h"
#include "herd/layout.h"
#include "herd/pci.h"
#include "support.h"

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

/* A Generic Address Structure naming one byte-wide I/O port. */
static void check_gas_port(const uint8_t *gas, uint16_t port)
{
    assert_int_equal(gas[0], 1); /* SystemIO */
    assert_int_equal(gas[1], 8); /* bit width */
    assert_int_equal(gas[2], 0); /* bit offset */
    assert_int_equal(gas[3], 1); /* byte access */
    assert_int_equal(rd64(gas + 4), port);
}

static void check_fadt_power(const uint8_t *fadt)
{
    assert_true(rd32(fadt + 112) & ACPI_FADT_RESET_REG_SUP);
    check_gas_port(fadt + 116, ACPI_RESET_PORT);
    assert_int_equal(fadt[128], ACPI_RESET_VALUE);
    check_gas_port(fadt + 244, ACPI_SLEEP_CONTROL_PORT);
    check_gas_port(fadt + 256, ACPI_SLEEP_STATUS_PORT);
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
    /* Neither button is a fixed feature: the power button is \_SB.PWRB. */
    assert_true(rd32(fadt + 112) & ACPI_FADT_PWR_BUTTON);
    assert_true(rd32(fadt + 112) & ACPI_FADT_SLP_BUTTON);
    assert_int_equal(rd64(fadt + 140), rd32(fadt + 40)); /* X_DSDT == DSDT */
    table_at(c, rd64(fadt + 140), "DSDT");
    check_fadt_power(fadt);

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

static const char *find_iasl(void)
{
    static char path[4096];
    const char *env = getenv("PATH");
    char *dirs, *save = NULL;

    if (!env)
        env = "/usr/bin:/bin";
    dirs = strdup(env);
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof(path), "%s/iasl", d);
        if (access(path, X_OK) == 0) {
            free(dirs);
            return path;
        }
    }
    free(dirs);
    return NULL;
}

/* The text from `start` to the next "Device (" (or the end), malloc'd. */
static char *section(const char *dsl, const char *start)
{
    const char *p = strstr(dsl, start), *end;

    if (!p)
        fail_msg("iasl output has no \"%s\"", start);
    end = strstr(p + strlen(start), "Device (");
    return strndup(p, end ? (size_t)(end - p) : strlen(p));
}

static void expect_in(const char *text, const char *what, const char *where)
{
    if (!strstr(text, what))
        fail_msg("%s: no \"%s\" in:\n%s", where, what, text);
}

/* Disassembles the DSDT the guest would read; the .dsl text, malloc'd. */
static char *disassemble_dsdt(struct ctx *c, const char *iasl)
{
    char dir[] = "/tmp/herd-acpi-test.XXXXXX", path[256], cmd[1024];
    const uint8_t *xsdt, *fadt, *dsdt;
    uint64_t rsdp = 0;
    size_t len = 0;
    char *text;
    FILE *f;

    memset(c->ram, 0, RAM);
    assert_int_equal(acpi_write_tables(&c->gm, 2, &rsdp), 0);
    xsdt = table_at(c, rd64(c->ram + rsdp + 24), "XSDT");
    fadt = find(c, xsdt, "FACP");
    dsdt = table_at(c, rd64(fadt + 140), "DSDT");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(dsdt, 1, rd32(dsdt + 4), f), rd32(dsdt + 4));
    fclose(f);
    snprintf(cmd, sizeof(cmd), "cd %s && '%s' -d dsdt.dat > iasl.log 2>&1", dir, iasl);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "cat %s/iasl.log", dir);
        assert_int_equal(system(cmd), 0);
        fail_msg("iasl -d failed on our DSDT");
    }
    snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
    text = (char *)test_read_file(path, &len);
    assert_non_null(text);
    text = realloc(text, len + 1);
    text[len] = 0;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return text;
}

/* The GED: its interrupt as herd-vmm raises it (level, active high, the
 * GSI acpi_ged uses), the one-byte event register on its port, and an _EVT
 * that reads it once and notifies the power button for bit 0. */
static void check_ged(const char *s)
{
    char want[128];

    expect_in(s, "Name (_HID, \"ACPI0013\"", "GED0");
    expect_in(s, "Name (_UID, Zero)", "GED0");
    snprintf(want, sizeof(want), "Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, )"
             "\n                {\n                    0x%08X,", ACPI_GED_GSI);
    expect_in(s, want, "GED0 interrupt");
    snprintf(want, sizeof(want), "OperationRegion (GDST, SystemIO, 0x%04X, One)", ACPI_GED_PORT);
    expect_in(s, want, "GED0 event register");
    expect_in(s, "Field (GDST, ByteAcc, NoLock, Preserve)\n            {\n"
                 "                GDAT,   8\n            }", "GED0 event register");
    expect_in(s, "Method (_EVT, 1, Serialized)", "GED0");
    expect_in(s, "Local0 = GDAT", "GED0 _EVT");
    expect_in(s, "If (((Local0 & One) == One))\n                {\n"
                 "                    Notify (\\_SB.PWRB, 0x80)", "GED0 _EVT");
    /* GDAT is read once per event (a second read would see it cleared):
     * nothing after that line names it. */
    assert_null(strstr(strchr(strstr(s, "Local0 = GDAT"), '\n'), "GDAT"));
}

static void test_dsdt_through_iasl(void **state)
{
    const char *iasl = find_iasl();
    char *dsl, *s;

    if (!iasl) {
        printf("# iasl not found (acpica-tools): DSDT disassembly check not run\n");
        skip();
    }
    dsl = disassemble_dsdt(*state, iasl);
    /* iasl flags AML it could not parse; ours must have none. */
    assert_null(strstr(dsl, "Unknown"));
    assert_null(strstr(dsl, "Error"));
    expect_in(dsl, "Scope (\\_SB)", "DSDT");

    s = section(dsl, "Device (PCI0)");
    expect_in(s, "Name (_HID, EisaId (\"PNP0A08\")", "PCI0");
    expect_in(s, "Name (_CID, EisaId (\"PNP0A03\")", "PCI0");
    expect_in(s, "Name (_SEG, Zero)", "PCI0");
    expect_in(s, "Name (_BBN, Zero)", "PCI0");
    expect_in(s, "Name (_UID, Zero)", "PCI0");
    expect_in(s, "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,\n"
                 "                    0x0000,             // Granularity\n"
                 "                    0x0000,             // Range Minimum\n"
                 "                    0x0000,             // Range Maximum", "PCI0 buses");
    expect_in(s, "IO (Decode16,\n                    0x0CF8,             // Range Minimum\n"
                 "                    0x0CF8,             // Range Maximum\n"
                 "                    0x01,               // Alignment\n"
                 "                    0x08,               // Length", "PCI0 config ports");
    expect_in(s, "0x0CF7,             // Range Maximum", "PCI0 low IO window");
    expect_in(s, "0x0D00,             // Range Minimum", "PCI0 high IO window");
    expect_in(s, "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, "
                 "ReadWrite,\n                    0x00000000,         // Granularity\n"
                 "                    0xD0000000,         // Range Minimum\n"
                 "                    0xDFFFFFFF,         // Range Maximum", "PCI0 BAR window");
    free(s);

    s = section(dsl, "Device (MRES)");
    expect_in(s, "EisaId (\"PNP0C02\")", "MRES");
    expect_in(s, "Memory32Fixed (ReadWrite,\n                    0xE0000000,         // Address "
                 "Base\n                    0x00100000,         // Address Length", "ECAM");
    free(s);

    s = section(dsl, "Device (COM1)");
    expect_in(s, "EisaId (\"PNP0501\")", "COM1");
    expect_in(s, "0x03F8,             // Range Minimum", "COM1");
    expect_in(s, "0x08,               // Length", "COM1");
    expect_in(s, "IRQNoFlags ()\n                    {4}", "COM1");
    free(s);

    s = section(dsl, "Device (PS2K)");
    expect_in(s, "EisaId (\"PNP0303\")", "PS2K");
    expect_in(s, "0x0060,             // Range Minimum", "PS2K");
    expect_in(s, "0x0064,             // Range Minimum", "PS2K");
    expect_in(s, "IRQNoFlags ()\n                    {1}", "PS2K");
    free(s);

    s = section(dsl, "Device (PWRB)");
    expect_in(s, "Name (_HID, EisaId (\"PNP0C0C\")", "PWRB");
    free(s);

    s = section(dsl, "Device (GED0)");
    check_ged(s);
    free(s);

    expect_in(dsl, "Name (\\_S5, Package (0x02)", "DSDT");
    expect_in(dsl, "0x05, \n        Zero", "\\_S5");
    free(dsl);
}

/* The DSDT body fits its buffer with room to spare, and a short buffer is
 * refused rather than cut. */
static void test_dsdt_size(void **state)
{
    uint8_t buf[ACPI_DSDT_MAX];
    long len = acpi_build_dsdt_body(buf, sizeof(buf));

    assert_true(len > 0 && len < ACPI_DSDT_MAX / 2);
    assert_int_equal(acpi_build_dsdt_body(buf, (size_t)len - 1), -ENOSPC);
    assert_int_equal(acpi_build_dsdt_body(buf, (size_t)len), len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_cpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_cpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_counts_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dsdt_through_iasl, setup, teardown),
        cmocka_unit_test(test_dsdt_size),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
