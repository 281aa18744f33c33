/*
 * ACPI table writer. Hardware-reduced ACPI (no PM timer, no SCI, no GPE
 * blocks) is what a VMM without a chipset can honestly describe; Linux and
 * other modern kernels accept it. Power-off and reset go through the FADT's
 * sleep control and reset registers (herd/acpi_power.h); the DSDT describes
 * the PCI host bridge and the legacy devices herd-vmm emulates, since a
 * hardware-reduced kernel finds nothing by probing. Tables are laid out one
 * after another in the reserved BIOS area, 16-byte aligned, each with its
 * checksum.
 */
#include "herd/acpi.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "herd/acpi_ged.h"
#include "herd/acpi_power.h"
#include "herd/aml.h"
#include "herd/layout.h"
#include "herd/pci.h"

#define ACPI_OEM_ID       "HERD  "
#define ACPI_OEM_TABLE_ID "HERDVMM "
#define ACPI_CREATOR_ID   "HERD"

#define FADT_SIZE 276
#define FADT_REVISION 6
#define FADT_MINOR_REVISION 5
#define FADT_OFF_DSDT 40
#define FADT_OFF_IAPC_BOOT_ARCH 109
#define FADT_OFF_FLAGS 112
#define FADT_OFF_RESET_REG 116
#define FADT_OFF_RESET_VALUE 128
#define FADT_OFF_MINOR_REVISION 131
#define FADT_OFF_X_DSDT 140
#define FADT_OFF_SLEEP_CONTROL 244
#define FADT_OFF_SLEEP_STATUS 256
#define FADT_OFF_HYPERVISOR_ID 268

#define MADT_PCAT_COMPAT 1
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_LAPIC_NMI 4
#define MADT_ENABLED 1

struct madt_lapic {
    uint8_t type, length, processor_uid, apic_id;
    uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {
    uint8_t type, length, id, reserved;
    uint32_t address;
    uint32_t gsi_base;
} __attribute__((packed));

struct madt_lapic_nmi {
    uint8_t type, length, processor_uid;
    uint16_t flags;
    uint8_t lint;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_sdt_header) == 36, "SDT header is 36 bytes");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP v2 is 36 bytes");

uint8_t acpi_sum(const void *p, uint32_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    for (uint32_t i = 0; i < len; i++)
        sum += b[i];
    return sum;
}

static void fill_header(uint8_t *table, const char *sig, uint32_t length, uint8_t revision)
{
    struct acpi_sdt_header h;

    memset(&h, 0, sizeof(h));
    memcpy(h.signature, sig, 4);
    h.length = length;
    h.revision = revision;
    memcpy(h.oem_id, ACPI_OEM_ID, 6);
    memcpy(h.oem_table_id, ACPI_OEM_TABLE_ID, 8);
    h.oem_revision = 1;
    memcpy(h.creator_id, ACPI_CREATOR_ID, 4);
    h.creator_revision = 1;
    memcpy(table, &h, sizeof(h));
}

static void seal(uint8_t *table, uint32_t length)
{
    table[offsetof(struct acpi_sdt_header, checksum)] = 0;
    table[offsetof(struct acpi_sdt_header, checksum)] = (uint8_t)-acpi_sum(table, length);
}

/* Hands out 16-byte aligned room in the ACPI area. */
struct acpi_area {
    const struct guest_mem *gm;
    uint64_t next;
};

static uint8_t *area_alloc(struct acpi_area *a, uint32_t size, uint64_t *gpa)
{
    uint64_t at = (a->next + 15) & ~15ULL;
    uint8_t *p;

    if (at + size > LAYOUT_ACPI_END)
        return NULL;
    p = guest_mem_ptr(a->gm, at, size);
    if (!p)
        return NULL;
    memset(p, 0, size);
    a->next = at + size;
    *gpa = at;
    return p;
}

static uint32_t madt_size(unsigned nr_cpus)
{
    return (uint32_t)(sizeof(struct acpi_sdt_header) + 8 + nr_cpus * sizeof(struct madt_lapic) +
                      sizeof(struct madt_ioapic) + sizeof(struct madt_lapic_nmi));
}

static void fill_madt(uint8_t *t, unsigned nr_cpus)
{
    uint32_t size = madt_size(nr_cpus), lapic_addr = (uint32_t)LAYOUT_LAPIC;
    uint32_t flags = MADT_PCAT_COMPAT;
    uint8_t *p = t + sizeof(struct acpi_sdt_header);

    fill_header(t, "APIC", size, 5);
    memcpy(p, &lapic_addr, 4);
    memcpy(p + 4, &flags, 4);
    p += 8;
    for (unsigned i = 0; i < nr_cpus; i++) {
        struct madt_lapic l = {.type = MADT_LAPIC, .length = sizeof(l),
                               .processor_uid = (uint8_t)i, .apic_id = (uint8_t)i,
                               .flags = MADT_ENABLED};
        memcpy(p, &l, sizeof(l));
        p += sizeof(l);
    }
    struct madt_ioapic io = {.type = MADT_IOAPIC, .length = sizeof(io), .id = (uint8_t)nr_cpus,
                             .address = (uint32_t)LAYOUT_IOAPIC, .gsi_base = 0};
    memcpy(p, &io, sizeof(io));
    p += sizeof(io);
    /* LINT1 of every processor (uid 0xff) is NMI, as on a PC. */
    struct madt_lapic_nmi nmi = {.type = MADT_LAPIC_NMI, .length = sizeof(nmi),
                                 .processor_uid = 0xff, .flags = 0, .lint = 1};
    memcpy(p, &nmi, sizeof(nmi));
    seal(t, size);
}

/* MCFG: one ECAM window for segment 0, bus 0. */
#define MCFG_SIZE (36 + 8 + 16)

static void fill_mcfg(uint8_t *t)
{
    uint64_t base = PCI_ECAM_BASE;

    fill_header(t, "MCFG", MCFG_SIZE, 1);
    memcpy(t + 44, &base, 8);
    t[44 + 8] = 0;  /* segment (u16) */
    t[44 + 9] = 0;
    t[44 + 10] = 0; /* start bus */
    t[44 + 11] = (uint8_t)(PCI_ECAM_SIZE / (1 << 20) - 1); /* end bus */
    seal(t, MCFG_SIZE);
}

/* Generic Address Structure for one byte-wide I/O port. */
static void put_gas_port(uint8_t *at, uint16_t port)
{
    uint64_t addr = port;

    at[0] = ACPI_GAS_SYSTEM_IO;
    at[1] = 8; /* bit width */
    at[2] = 0; /* bit offset */
    at[3] = ACPI_GAS_ACCESS_BYTE;
    memcpy(at + 4, &addr, 8);
}

static void fill_fadt(uint8_t *t, uint64_t dsdt)
{
    uint32_t dsdt32 = (uint32_t)dsdt;
    /* The power button is a control-method device (\_SB.PWRB), and there
     * is no sleep button at all: neither is a fixed-feature one. */
    uint32_t flags = ACPI_FADT_HW_REDUCED | ACPI_FADT_RESET_REG_SUP | ACPI_FADT_PWR_BUTTON |
                     ACPI_FADT_SLP_BUTTON;
    uint16_t boot_arch = ACPI_FADT_8042 | ACPI_FADT_NO_VGA | ACPI_FADT_NO_CMOS_RTC;
    uint64_t hypervisor = 0;

    fill_header(t, "FACP", FADT_SIZE, FADT_REVISION);
    memcpy(t + FADT_OFF_DSDT, &dsdt32, 4);
    memcpy(t + FADT_OFF_IAPC_BOOT_ARCH, &boot_arch, 2);
    memcpy(t + FADT_OFF_FLAGS, &flags, 4);
    put_gas_port(t + FADT_OFF_RESET_REG, ACPI_RESET_PORT);
    t[FADT_OFF_RESET_VALUE] = ACPI_RESET_VALUE;
    put_gas_port(t + FADT_OFF_SLEEP_CONTROL, ACPI_SLEEP_CONTROL_PORT);
    put_gas_port(t + FADT_OFF_SLEEP_STATUS, ACPI_SLEEP_STATUS_PORT);
    t[FADT_OFF_MINOR_REVISION] = FADT_MINOR_REVISION;
    memcpy(t + FADT_OFF_X_DSDT, &dsdt, 8);
    memcpy(&hypervisor, "HERDVMM", 7);
    memcpy(t + FADT_OFF_HYPERVISOR_ID, &hypervisor, 8);
    seal(t, FADT_SIZE);
}

/* PCI0: the host bridge of segment 0, buses as many as ECAM covers. */
static void dsdt_pci0(struct aml *a)
{
    aml_device_begin(a, "PCI0");
    aml_name_eisaid(a, "_HID", "PNP0A08"); /* PCI Express root bridge */
    aml_name_eisaid(a, "_CID", "PNP0A03"); /* PCI root bridge */
    aml_name_integer(a, "_SEG", 0);
    aml_name_integer(a, "_BBN", 0);
    aml_name_integer(a, "_UID", 0);
    aml_name(a, "_CRS");
    aml_restemplate_begin(a);
    aml_res_word_bus(a, 0, ACPI_PCI_LAST_BUS);
    aml_res_io(a, PCI_PORT_ADDR, PCI_PORT_ADDR, 1, 8);
    aml_res_word_io(a, 0x0000, PCI_PORT_ADDR - 1);
    aml_res_word_io(a, 0x0d00, 0xffff);
    aml_res_dword_memory(a, (uint32_t)PCI_MMIO_WINDOW_START, (uint32_t)(PCI_MMIO_WINDOW_END - 1));
    aml_restemplate_end(a);
    aml_end(a);
}

/* Motherboard resources: the ECAM window, so kernels trust the MCFG. */
static void dsdt_motherboard(struct aml *a)
{
    aml_device_begin(a, "MRES");
    aml_name_eisaid(a, "_HID", "PNP0C02");
    aml_name_integer(a, "_UID", 0);
    aml_name(a, "_CRS");
    aml_restemplate_begin(a);
    aml_res_memory32_fixed(a, 1, (uint32_t)PCI_ECAM_BASE, (uint32_t)PCI_ECAM_SIZE);
    aml_restemplate_end(a);
    aml_end(a);
}

static void dsdt_com1(struct aml *a)
{
    aml_device_begin(a, "COM1");
    aml_name_eisaid(a, "_HID", "PNP0501"); /* 16550A-compatible */
    aml_name_integer(a, "_UID", 1);
    aml_name(a, "_CRS");
    aml_restemplate_begin(a);
    aml_res_io(a, PORT_SERIAL0, PORT_SERIAL0, 1, 8);
    aml_res_irq_noflags(a, SERIAL0_IRQ);
    aml_restemplate_end(a);
    aml_end(a);
}

/* The i8042 controller as its keyboard port; no mouse is behind it. */
static void dsdt_i8042(struct aml *a)
{
    aml_device_begin(a, "PS2K");
    aml_name_eisaid(a, "_HID", "PNP0303");
    aml_name(a, "_CRS");
    aml_restemplate_begin(a);
    aml_res_io(a, PORT_I8042_DATA, PORT_I8042_DATA, 1, 1);
    aml_res_io(a, PORT_I8042_CMD, PORT_I8042_CMD, 1, 1);
    aml_res_irq_noflags(a, ACPI_I8042_KBD_IRQ);
    aml_restemplate_end(a);
    aml_end(a);
}

/* The power button: a control-method button the GED notifies. */
static void dsdt_power_button(struct aml *a)
{
    aml_device_begin(a, "PWRB");
    aml_name_eisaid(a, "_HID", "PNP0C0C");
    aml_name_integer(a, "_UID", 0);
    aml_end(a);
}

/* _EVT (Arg0: the GSI): reads (and so clears) the event register and
 * notifies the device of each event found:
 *   Store (GDAT, Local0)
 *   If (LEqual (And (Local0, 1, ), 1)) { Notify (\_SB.PWRB, 0x80) } */
static void ged_evt_method(struct aml *a)
{
    aml_method_begin(a, "_EVT", 1, 1);
    aml_store(a);
    aml_name_string(a, "GDAT");
    aml_local(a, 0);
    aml_if_begin(a);
    aml_lequal(a);
    aml_and(a);
    aml_local(a, 0);
    aml_integer(a, ACPI_GED_EVT_POWER_BUTTON);
    aml_no_target(a);
    aml_integer(a, ACPI_GED_EVT_POWER_BUTTON);
    aml_notify(a, "\\_SB.PWRB", ACPI_NOTIFY_BUTTON_PRESSED);
    aml_end(a);
    aml_end(a);
}

/* The Generic Event Device (herd/acpi_ged.h): its interrupt, the event
 * register as a one-byte field, and _EVT. */
static void dsdt_ged(struct aml *a)
{
    aml_device_begin(a, "GED0");
    aml_name_string_value(a, "_HID", "ACPI0013");
    aml_name_integer(a, "_UID", 0);
    aml_name(a, "_CRS");
    aml_restemplate_begin(a);
    aml_res_interrupt(a, 1, 0, ACPI_GED_GSI); /* level, active high: as acpi_ged raises it */
    aml_restemplate_end(a);
    aml_operation_region(a, "GDST", AML_SPACE_SYSTEM_IO, ACPI_GED_PORT, 1);
    aml_field_begin(a, "GDST", AML_FIELD_BYTE_ACC | AML_FIELD_NO_LOCK | AML_FIELD_PRESERVE);
    aml_field_unit(a, "GDAT", 8);
    aml_end(a);
    ged_evt_method(a);
    aml_end(a);
}

/* \_S5: SLP_TYP for power-off through the FADT sleep control register. */
static void dsdt_s5(struct aml *a)
{
    aml_name(a, "\\_S5");
    aml_package_begin(a, 2);
    aml_integer(a, ACPI_S5_SLP_TYP);
    aml_integer(a, 0);
    aml_end(a);
}

long acpi_build_dsdt_body(uint8_t *buf, size_t cap)
{
    struct aml a;

    aml_init(&a, buf, cap);
    aml_scope_begin(&a, "\\_SB");
    dsdt_pci0(&a);
    dsdt_motherboard(&a);
    dsdt_com1(&a);
    dsdt_i8042(&a);
    dsdt_power_button(&a);
    dsdt_ged(&a);
    aml_end(&a);
    dsdt_s5(&a);
    return aml_finish(&a);
}

/* The DSDT: header plus AML, built first into `body`. */
static uint8_t *write_dsdt(struct acpi_area *area, uint64_t *gpa)
{
    const uint32_t hdr = sizeof(struct acpi_sdt_header);
    uint8_t body[ACPI_DSDT_MAX];
    long len = acpi_build_dsdt_body(body, sizeof(body));
    uint8_t *t;

    if (len < 0)
        return NULL;
    t = area_alloc(area, hdr + (uint32_t)len, gpa);
    if (!t)
        return NULL;
    fill_header(t, "DSDT", hdr + (uint32_t)len, 2);
    memcpy(t + hdr, body, (size_t)len);
    seal(t, hdr + (uint32_t)len);
    return t;
}

int acpi_write_tables(const struct guest_mem *gm, unsigned nr_cpus, uint64_t *rsdp_gpa)
{
    struct acpi_area area = {.gm = gm, .next = LAYOUT_ACPI_START};
    const uint32_t hdr = sizeof(struct acpi_sdt_header);
    uint64_t rsdp_at = 0, xsdt_at = 0, fadt_at = 0, dsdt_at = 0, madt_at = 0, mcfg_at = 0;
    uint8_t *rsdp_p, *xsdt, *fadt, *dsdt, *madt, *mcfg;

    if (nr_cpus == 0 || nr_cpus > ACPI_MAX_CPUS)
        return -EINVAL;
    rsdp_p = area_alloc(&area, sizeof(struct acpi_rsdp), &rsdp_at);
    xsdt = area_alloc(&area, hdr + 3 * 8, &xsdt_at);
    fadt = area_alloc(&area, FADT_SIZE, &fadt_at);
    dsdt = write_dsdt(&area, &dsdt_at);
    madt = area_alloc(&area, madt_size(nr_cpus), &madt_at);
    mcfg = area_alloc(&area, MCFG_SIZE, &mcfg_at);
    if (!rsdp_p || !xsdt || !fadt || !dsdt || !madt || !mcfg)
        return -EFAULT;

    fill_fadt(fadt, dsdt_at);
    fill_madt(madt, nr_cpus);
    fill_mcfg(mcfg);

    fill_header(xsdt, "XSDT", hdr + 24, 1);
    memcpy(xsdt + hdr, &fadt_at, 8);
    memcpy(xsdt + hdr + 8, &madt_at, 8);
    memcpy(xsdt + hdr + 16, &mcfg_at, 8);
    seal(xsdt, hdr + 24);

    struct acpi_rsdp r;

    memset(&r, 0, sizeof(r));
    memcpy(r.signature, "RSD PTR ", 8);
    memcpy(r.oem_id, ACPI_OEM_ID, 6);
    r.revision = 2;
    r.length = sizeof(r);
    r.xsdt_address = xsdt_at;
    r.checksum = (uint8_t)-acpi_sum(&r, 20);
    r.extended_checksum = (uint8_t)-acpi_sum(&r, sizeof(r));
    memcpy(rsdp_p, &r, sizeof(r));
    *rsdp_gpa = rsdp_at;
    return 0;
}
