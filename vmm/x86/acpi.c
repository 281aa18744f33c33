/*
 * ACPI table writer. Hardware-reduced ACPI (no PM timer, no SCI, no GPE
 * blocks) is what a VMM without a chipset can honestly describe; Linux and
 * other modern kernels accept it. Tables are laid out one after another in
 * the reserved BIOS area, 16-byte aligned, each with its checksum.
 */
#include "herd/acpi.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

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
#define FADT_OFF_MINOR_REVISION 131
#define FADT_OFF_X_DSDT 140
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

static void fill_fadt(uint8_t *t, uint64_t dsdt)
{
    uint32_t dsdt32 = (uint32_t)dsdt;
    uint32_t flags = ACPI_FADT_HW_REDUCED;
    uint16_t boot_arch = ACPI_FADT_8042 | ACPI_FADT_NO_VGA | ACPI_FADT_NO_CMOS_RTC;
    uint64_t hypervisor = 0;

    fill_header(t, "FACP", FADT_SIZE, FADT_REVISION);
    memcpy(t + FADT_OFF_DSDT, &dsdt32, 4);
    memcpy(t + FADT_OFF_IAPC_BOOT_ARCH, &boot_arch, 2);
    memcpy(t + FADT_OFF_FLAGS, &flags, 4);
    t[FADT_OFF_MINOR_REVISION] = FADT_MINOR_REVISION;
    memcpy(t + FADT_OFF_X_DSDT, &dsdt, 8);
    memcpy(&hypervisor, "HERDVMM", 7);
    memcpy(t + FADT_OFF_HYPERVISOR_ID, &hypervisor, 8);
    seal(t, FADT_SIZE);
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
    dsdt = area_alloc(&area, hdr, &dsdt_at);
    madt = area_alloc(&area, madt_size(nr_cpus), &madt_at);
    mcfg = area_alloc(&area, MCFG_SIZE, &mcfg_at);
    if (!rsdp_p || !xsdt || !fadt || !dsdt || !madt || !mcfg)
        return -EFAULT;

    /* An empty DSDT: no AML devices; the legacy ones are found by probing. */
    fill_header(dsdt, "DSDT", hdr, 2);
    seal(dsdt, hdr);
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
