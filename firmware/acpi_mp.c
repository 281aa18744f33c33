/*
 * Finds the CPU count in the MP table or the ACPI MADT. The tables come from
 * the VMM: signatures, lengths and checksums are verified and every entry is
 * bounds-checked before a byte of it is believed.
 */
#include "acpi_mp.h"

#include "lib.h"

#define PHYS_READ_LIMIT 0xc0000000ULL
#define TABLE_MAX (1U << 20)

static bool readable(uint64_t pa, uint64_t len)
{
    return pa < PHYS_READ_LIMIT && len <= PHYS_READ_LIMIT - pa;
}

static uint8_t sum8(uint64_t pa, uint32_t len)
{
    uint8_t s = 0;
    for (uint32_t i = 0; i < len; i++)
        s = (uint8_t)(s + rd8(pa + i));
    return s;
}

static void note(struct cpu_count *c, const char *msg, uint64_t v)
{
    if (!c->note[0])
        snprintf(c->note, sizeof(c->note), "%s 0x%lx", msg, (unsigned long)v);
}

/* Scan [start, start+len) on 16-byte boundaries for a 4- or 8-byte signature. */
static uint64_t scan(uint64_t start, uint32_t len, const char *sig, uint32_t siglen)
{
    if (!readable(start, len))
        return 0;
    for (uint64_t p = start; p + siglen <= start + len; p += 16)
        if (memcmp(phys(p), sig, siglen) == 0)
            return p;
    return 0;
}

/* EBDA segment from the BIOS data area, if a plausible one is recorded. */
static uint64_t ebda_base(void)
{
    uint64_t seg = rd16(0x40e);
    uint64_t base = seg << 4;
    return (base >= 0x80000 && base < 0xa0000) ? base : 0;
}

/* ---- MP table ------------------------------------------------------- */

static uint64_t mp_find(void)
{
    uint64_t p, e = ebda_base();
    if (e && (p = scan(e, 1024, "_MP_", 4)))
        return p;
    if ((p = scan(0x9fc00, 1024, "_MP_", 4)))
        return p;
    return scan(0xf0000, 0x10000, "_MP_", 4);
}

static bool mp_count(struct cpu_count *c)
{
    uint64_t fp = mp_find();
    if (!fp)
        return false;
    uint32_t fplen = rd8(fp + 8) * 16U;
    if (fplen < 16 || !readable(fp, fplen) || sum8(fp, fplen) != 0) {
        note(c, "MP floating pointer with bad length/checksum at", fp);
        return false;
    }
    if (rd8(fp + 11) != 0) {
        note(c, "MP default configuration (no table) not supported, type", rd8(fp + 11));
        return false;
    }
    uint64_t t = rd32(fp + 4);
    if (!readable(t, 44) || memcmp(phys(t), "PCMP", 4) != 0) {
        note(c, "MP floating pointer to no PCMP table, physptr", t);
        return false;
    }
    uint32_t len = rd16(t + 4), count = rd16(t + 34);
    if (len < 44 || !readable(t, len) || sum8(t, len) != 0) {
        note(c, "MP config table with bad length/checksum at", t);
        return false;
    }
    /* Walk by the table length, as Linux does: real firmware (QEMU's
     * qboot) leaves the entry count at 0. */
    uint32_t off = 44, enabled = 0, entries = 0;
    while (off < len) {
        uint8_t type = rd8(t + off);
        uint32_t elen = type == 0 ? 20 : 8;
        if (type > 4 || off + elen > len) {
            note(c, "MP config table has a bad entry, type", type);
            return false;
        }
        if (type == 0 && (rd8(t + off + 3) & 1))
            enabled++;
        off += elen;
        entries++;
    }
    if (count && count != entries) {
        note(c, "MP config table entry count disagrees with its length, count", count);
        return false;
    }
    c->enabled = enabled;
    c->source = "mptable";
    return true;
}

/* ---- ACPI ----------------------------------------------------------- */

static bool rsdp_valid(uint64_t p)
{
    if (!readable(p, 36) || memcmp(phys(p), "RSD PTR ", 8) != 0 || sum8(p, 20) != 0)
        return false;
    if (rd8(p + 15) >= 2) {
        uint32_t len = rd32(p + 20);
        if (len < 36 || len > 4096 || !readable(p, len) || sum8(p, len) != 0)
            return false;
    }
    return true;
}

static uint64_t rsdp_find(uint64_t hint, struct cpu_count *c)
{
    uint64_t p, e = ebda_base();
    if (hint) {
        if (rsdp_valid(hint))
            return hint;
        note(c, "invalid RSDP from the boot info at", hint);
    }
    if (e && (p = scan(e, 1024, "RSD PTR ", 8)) && rsdp_valid(p))
        return p;
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
        a = scan(a, (uint32_t)(0x100000 - a), "RSD PTR ", 8);
        if (!a)
            break;
        if (rsdp_valid(a))
            return a;
    }
    return 0;
}

/* A system description table at pa, checked; returns its length or 0. */
static uint32_t sdt_check(uint64_t pa, struct cpu_count *c)
{
    if (!readable(pa, 36)) {
        note(c, "ACPI table pointer outside memory:", pa);
        return 0;
    }
    uint32_t len = rd32(pa + 4);
    if (len < 36 || len > TABLE_MAX || !readable(pa, len) || sum8(pa, len) != 0) {
        note(c, "ACPI table with bad length/checksum at", pa);
        return 0;
    }
    return len;
}

static bool madt_count(uint64_t madt, uint32_t len, struct cpu_count *c)
{
    if (len < 44) {
        note(c, "MADT too short:", len);
        return false;
    }
    uint32_t off = 44, enabled = 0;
    while (off + 2 <= len) {
        uint8_t type = rd8(madt + off), elen = rd8(madt + off + 1);
        if (elen < 2 || off + elen > len) {
            note(c, "MADT entry with bad length at offset", off);
            return false;
        }
        if (type == 0 && elen >= 8 && (rd32(madt + off + 4) & 1))
            enabled++;
        else if (type == 9 && elen >= 16 && (rd32(madt + off + 8) & 1))
            enabled++;
        off += elen;
    }
    c->enabled = enabled;
    c->source = "madt";
    return true;
}

static bool acpi_count(uint64_t hint, struct cpu_count *c)
{
    uint64_t rsdp = rsdp_find(hint, c);
    if (!rsdp)
        return false;
    uint64_t root = 0;
    uint32_t esize = 4;
    if (rd8(rsdp + 15) >= 2 && rd64(rsdp + 24)) {
        root = rd64(rsdp + 24);
        esize = 8;
    } else {
        root = rd32(rsdp + 16);
    }
    uint32_t rlen = sdt_check(root, c);
    if (!rlen)
        return false;
    if (memcmp(phys(root), esize == 8 ? "XSDT" : "RSDT", 4) != 0) {
        note(c, "RSDP points to no RSDT/XSDT at", root);
        return false;
    }
    for (uint32_t off = 36; off + esize <= rlen; off += esize) {
        uint64_t t = esize == 8 ? rd64(root + off) : rd32(root + off);
        if (!readable(t, 36) || memcmp(phys(t), "APIC", 4) != 0)
            continue;
        uint32_t len = sdt_check(t, c);
        return len && madt_count(t, len, c);
    }
    note(c, "no MADT in the ACPI root table at", root);
    return false;
}

uint64_t acpi_find(uint64_t rsdp_hint, const char *sig, uint32_t *len)
{
    static struct cpu_count scratch; /* notes are not reported here */
    memset(&scratch, 0, sizeof(scratch));
    uint64_t rsdp = rsdp_find(rsdp_hint, &scratch);
    if (!rsdp)
        return 0;
    uint64_t root;
    uint32_t esize = 4;
    if (rd8(rsdp + 15) >= 2 && rd64(rsdp + 24)) {
        root = rd64(rsdp + 24);
        esize = 8;
    } else {
        root = rd32(rsdp + 16);
    }
    uint32_t rlen = sdt_check(root, &scratch);
    if (!rlen || memcmp(phys(root), esize == 8 ? "XSDT" : "RSDT", 4) != 0)
        return 0;
    for (uint32_t off = 36; off + esize <= rlen; off += esize) {
        uint64_t t = esize == 8 ? rd64(root + off) : rd32(root + off);
        if (!readable(t, 36) || memcmp(phys(t), sig, 4) != 0)
            continue;
        uint32_t l = sdt_check(t, &scratch);
        if (!l)
            return 0;
        *len = l;
        return t;
    }
    return 0;
}

uint64_t acpi_dsdt(uint64_t rsdp_hint, uint32_t *len)
{
    static struct cpu_count scratch;
    uint32_t flen = 0;
    uint64_t fadt = acpi_find(rsdp_hint, "FACP", &flen);
    if (!fadt || flen < 44)
        return 0;
    uint64_t dsdt = flen >= 148 ? rd64(fadt + 140) : 0;
    if (!dsdt)
        dsdt = rd32(fadt + 40);
    memset(&scratch, 0, sizeof(scratch));
    uint32_t l = sdt_check(dsdt, &scratch);
    if (!l || memcmp(phys(dsdt), "DSDT", 4) != 0)
        return 0;
    *len = l;
    return dsdt;
}

void cpus_count(uint64_t rsdp_hint, const char *only, struct cpu_count *out)
{
    memset(out, 0, sizeof(*out));
    if ((!only || !strncmp(only, "mptable", 8)) && mp_count(out))
        return;
    if (!only || !strncmp(only, "madt", 5))
        acpi_count(rsdp_hint, out);
}
