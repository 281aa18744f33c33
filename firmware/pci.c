/*
 * PCI configuration space and BARs (see pci.h).
 *
 * Costs on the PVM host: a port access is a ud2 call plus an exit (~50 us
 * each way), an ECAM access one MMIO exit. Enumeration reads a vendor ID
 * per slot (bus 0 plus buses behind bridges), so it is ~32 accesses per
 * bus, not 8192.
 */
#include "pci.h"

#include "acpi_mp.h"
#include "cpl0.h"
#include "lib.h"

#define CFG_ADDR 0xcf8
#define CFG_DATA 0xcfc
#define ECAM_LIMIT 0x100000000ULL /* the probe maps only 0-4 GiB */

/* BAR window for BARs the firmware left unassigned: above the boot marker
 * page (0xc0000000) and below the IOAPIC; clipped below ECAM when ECAM
 * lies inside it. QEMU microvm's 32-bit window is 0xc0000000-0xdfffffff. */
#define WIN_START 0xc1000000ULL
#define WIN_END 0xfec00000ULL

static enum pci_method method;
static uint64_t ecam_base;
static const char *ecam_source = "";
static uint8_t bus_first, bus_last;
static struct pci_dev devs[PCI_MAX_DEVS];
static uint32_t ndevs;
static uint64_t win_next, win_end;
static const struct bootinfo *boot;
static uint32_t generation;

enum pci_method pci_method(void) { return method; }
const char *pci_method_name(void) { return method == PCI_ECAM ? "ecam" : method == PCI_PORTS ? "ports" : "none"; }
uint64_t pci_ecam_base(void) { return ecam_base; }
const char *pci_ecam_source(void) { return ecam_source; }
uint32_t pci_count(void) { return ndevs; }
uint32_t pci_generation(void) { return generation; }
const struct pci_dev *pci_get(uint32_t i) { return i < ndevs ? &devs[i] : 0; }

static uint64_t ecam_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    return ecam_base + ((uint64_t)(bus - bus_first) << 20) + ((uint64_t)dev << 15) + ((uint64_t)fn << 12) + off;
}

static uint32_t port_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    return 0x80000000U | ((uint32_t)bus << 16) | ((uint32_t)dev << 11) | ((uint32_t)fn << 8) | (off & 0xfc);
}

static uint32_t cfg_read(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, int width)
{
    if (method == PCI_ECAM) {
        uint64_t a = ecam_addr(bus, dev, fn, off);
        return width == 4 ? rd32(a) : width == 2 ? rd16(a) : rd8(a);
    }
    if (method != PCI_PORTS || off >= 256)
        return 0xffffffffU >> (32 - 8 * width);
    outl(CFG_ADDR, port_addr(bus, dev, fn, off));
    uint16_t p = (uint16_t)(CFG_DATA + (off & 3));
    return width == 4 ? inl(p) : width == 2 ? inw(p) : inb(p);
}

static void cfg_write(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, int width, uint32_t v)
{
    if (method == PCI_ECAM) {
        uint64_t a = ecam_addr(bus, dev, fn, off);
        if (width == 4)
            wr32(a, v);
        else if (width == 2)
            *(volatile uint16_t *)pa_ptr(a) = (uint16_t)v;
        else
            wr8(a, (uint8_t)v);
        return;
    }
    if (method != PCI_PORTS || off >= 256)
        return;
    outl(CFG_ADDR, port_addr(bus, dev, fn, off));
    uint16_t p = (uint16_t)(CFG_DATA + (off & 3));
    if (width == 4)
        outl(p, v);
    else if (width == 2)
        outw(p, (uint16_t)v);
    else
        outb(p, (uint8_t)v);
}

uint32_t pci_read32(const struct pci_dev *d, uint16_t off) { return cfg_read(d->bus, d->dev, d->fn, off, 4); }
uint16_t pci_read16(const struct pci_dev *d, uint16_t off) { return (uint16_t)cfg_read(d->bus, d->dev, d->fn, off, 2); }
uint8_t pci_read8(const struct pci_dev *d, uint16_t off) { return (uint8_t)cfg_read(d->bus, d->dev, d->fn, off, 1); }
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v) { cfg_write(d->bus, d->dev, d->fn, off, 4, v); }
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v) { cfg_write(d->bus, d->dev, d->fn, off, 2, v); }

/* An AML integer (ByteConst/WordConst/DWordConst/QWordConst) at p. */
static bool aml_int(uint64_t p, uint64_t end, uint64_t *v)
{
    static const uint8_t sizes[4] = { 1, 2, 4, 8 };
    uint8_t op = rd8(p);
    if (op < 0x0a || op > 0x0e || op == 0x0d)
        return false;
    uint32_t n = sizes[op == 0x0e ? 3 : op - 0x0a];
    if (p + 1 + n > end)
        return false;
    *v = 0;
    for (uint32_t i = 0; i < n; i++)
        *v |= (uint64_t)rd8(p + 1 + i) << (8 * i);
    return true;
}

/* No MCFG (QEMU 7.2 microvm has none): the host bridge's _CBA in the DSDT,
 * as QEMU's GPEX writes it: Method (_CBA) { Return (const) } or
 * Name (_CBA, const). */
static bool find_cba(const struct bootinfo *bi, uint64_t *base)
{
    uint32_t len = 0;
    uint64_t dsdt = acpi_dsdt(bi->rsdp_paddr, &len), end = dsdt + len;
    if (!dsdt)
        return false;
    for (uint64_t p = dsdt + 36; p + 4 <= end; p++) {
        if (memcmp(phys(p), "_CBA", 4) != 0)
            continue;
        if (p >= dsdt + 38 && rd8(p - 2) == 0x14 && p + 6 <= end && rd8(p + 5) == 0xa4 && aml_int(p + 6, end, base))
            return true; /* 14 len "_CBA" flags A4 const */
        if (rd8(p - 1) == 0x08 && aml_int(p + 4, end, base))
            return true; /* 08 "_CBA" const */
    }
    return false;
}

/* ECAM from the first MCFG entry for segment 0 that lies below 4 GiB. */
static bool find_ecam(const struct bootinfo *bi, char *why, size_t whylen)
{
    uint32_t len = 0;
    uint64_t mcfg = acpi_find(bi->rsdp_paddr, "MCFG", &len), cba;
    if (!mcfg) {
        if (find_cba(bi, &cba) && cba >= 0xc0000000ULL && cba + (256ULL << 20) <= ECAM_LIMIT && !(cba & 0xfffff)) {
            ecam_base = cba;
            ecam_source = "DSDT _CBA";
            bus_first = 0;
            bus_last = 255;
            return true;
        }
        snprintf(why, whylen, "no ACPI MCFG table (nor a usable _CBA in the DSDT)");
        return false;
    }
    for (uint32_t off = 44; off + 16 <= len; off += 16) {
        uint64_t base = rd64(mcfg + off);
        uint16_t seg = rd16(mcfg + off + 8);
        uint8_t b0 = rd8(mcfg + off + 10), b1 = rd8(mcfg + off + 11);
        uint64_t size = ((uint64_t)(b1 - b0) + 1) << 20;
        if (seg != 0 || b1 < b0 || (base & 0xfffff))
            continue;
        if (base < 0xc0000000ULL || base >= ECAM_LIMIT || size > ECAM_LIMIT - base) {
            snprintf(why, whylen, "MCFG ECAM at 0x%lx (buses %u-%u) is not in 3-4 GiB", (unsigned long)base, b0, b1);
            return false;
        }
        ecam_base = base;
        ecam_source = "MCFG";
        bus_first = b0;
        bus_last = b1;
        return true;
    }
    snprintf(why, whylen, "MCFG table has no usable entry for segment 0");
    return false;
}

static bool ports_respond(void)
{
    outl(CFG_ADDR, 0x80000000U);
    bool ok = inl(CFG_ADDR) == 0x80000000U;
    outl(CFG_ADDR, 0);
    return ok;
}

/* Size a memory BAR: returns the size (0 if absent/IO) and the address. */
static uint64_t bar_probe(const struct pci_dev *d, int bar, uint64_t *addr, bool *is64)
{
    uint16_t off = (uint16_t)(PCI_BAR0 + 4 * bar);
    uint32_t lo = pci_read32(d, off);
    *addr = 0;
    *is64 = false;
    if (lo & 1)
        return 0; /* I/O BAR */
    *is64 = ((lo >> 1) & 3) == 2;
    if (*is64 && bar == 5)
        return 0;
    uint32_t hi = *is64 ? pci_read32(d, (uint16_t)(off + 4)) : 0;
    uint16_t cmd = pci_read16(d, PCI_COMMAND);
    pci_write16(d, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEM));
    pci_write32(d, off, 0xffffffffU);
    uint32_t mlo = pci_read32(d, off);
    uint32_t mhi = 0xffffffffU;
    if (*is64) {
        pci_write32(d, (uint16_t)(off + 4), 0xffffffffU);
        mhi = pci_read32(d, (uint16_t)(off + 4));
        pci_write32(d, (uint16_t)(off + 4), hi);
    }
    pci_write32(d, off, lo);
    pci_write16(d, PCI_COMMAND, cmd);
    uint64_t mask = ((uint64_t)mhi << 32) | (mlo & ~0xfU);
    if ((mlo & ~0xfU) == 0 && (!*is64 || mhi == 0))
        return 0; /* not implemented */
    if (!*is64)
        mask |= 0xffffffff00000000ULL;
    *addr = (((uint64_t)hi << 32) | lo) & ~0xfULL;
    return ~mask + 1;
}

static void add_dev(uint8_t bus, uint8_t dev, uint8_t fn);

static void scan_bus(uint8_t bus, int depth)
{
    for (uint8_t dev = 0; dev < 32; dev++) {
        if ((cfg_read(bus, dev, 0, PCI_VENDOR_ID, 2) & 0xffff) == 0xffff)
            continue;
        uint8_t hdr = (uint8_t)cfg_read(bus, dev, 0, PCI_HEADER_TYPE, 1);
        for (uint8_t fn = 0; fn < ((hdr & 0x80) ? 8 : 1); fn++) {
            if (fn && (cfg_read(bus, dev, fn, PCI_VENDOR_ID, 2) & 0xffff) == 0xffff)
                continue;
            add_dev(bus, dev, fn);
            uint8_t h = (uint8_t)cfg_read(bus, dev, fn, PCI_HEADER_TYPE, 1);
            if ((h & 0x7f) == 1 && depth < 4) {
                uint8_t sec = (uint8_t)cfg_read(bus, dev, fn, PCI_SECONDARY_BUS, 1);
                if (sec > bus && sec <= bus_last)
                    scan_bus(sec, depth + 1);
            }
        }
    }
}

static void add_dev(uint8_t bus, uint8_t dev, uint8_t fn)
{
    if (ndevs == PCI_MAX_DEVS)
        return;
    struct pci_dev *d = &devs[ndevs++];
    d->bus = bus;
    d->dev = dev;
    d->fn = fn;
    uint32_t id = cfg_read(bus, dev, fn, PCI_VENDOR_ID, 4);
    d->vendor = (uint16_t)id;
    d->device = (uint16_t)(id >> 16);
    d->hdr = (uint8_t)cfg_read(bus, dev, fn, PCI_HEADER_TYPE, 1);
    d->subsys = (d->hdr & 0x7f) == 0 ? (uint16_t)cfg_read(bus, dev, fn, PCI_SUBSYS_ID, 2) : 0;
    if ((d->hdr & 0x7f) != 0)
        return;
    /* Keep the window above every BAR that is already placed in it. */
    for (int b = 0; b < 6; b++) {
        uint64_t addr;
        bool is64;
        uint64_t size = bar_probe(d, b, &addr, &is64);
        if (size && addr >= win_next && addr < win_end) {
            uint64_t end = addr + size;
            if (end > win_next)
                win_next = end;
        }
        if (is64)
            b++;
    }
}

bool pci_init(const struct bootinfo *bi, const char *force, char *why, size_t whylen)
{
    method = PCI_NONE;
    boot = bi;
    generation++;
    ecam_base = 0;
    ndevs = 0;
    bus_first = 0;
    bus_last = 255;
    why[0] = '\0';
    bool want_ecam = !force || !strncmp(force, "ecam", 5);
    bool want_ports = !force || !strncmp(force, "ports", 6);
    if (want_ecam && find_ecam(bi, why, whylen))
        method = PCI_ECAM;
    else if (want_ports && ports_respond())
        method = PCI_PORTS;
    if (method == PCI_NONE) {
        if (!why[0] || want_ports)
            snprintf(why + strlen(why), whylen - strlen(why), "%sno PCI: %s", why[0] ? "; " : "",
                     want_ports ? "config ports 0xcf8/0xcfc do not respond" : "ECAM not found");
        return false;
    }
    win_next = WIN_START;
    win_end = WIN_END;
    if (method == PCI_ECAM && ecam_base > win_next && ecam_base < win_end)
        win_end = ecam_base;
    scan_bus(bus_first, 0);
    return true;
}

uint64_t pci_map_bar(const struct pci_dev *d, int bar, uint64_t *size, char *why, size_t whylen)
{
    uint64_t addr;
    bool is64;
    *size = 0;
    if (bar < 0 || bar > 5 || (d->hdr & 0x7f) != 0) {
        snprintf(why, whylen, "BAR %d: no such BAR", bar);
        return 0;
    }
    uint64_t sz = bar_probe(d, bar, &addr, &is64);
    if (!sz || (sz & (sz - 1))) {
        snprintf(why, whylen, "BAR %d: not an implemented memory BAR (0x%x)", bar,
                 pci_read32(d, (uint16_t)(PCI_BAR0 + 4 * bar)));
        return 0;
    }
    if (addr == 0 || addr >= ECAM_LIMIT || sz > ECAM_LIMIT - addr) {
        uint64_t a = (win_next + sz - 1) & ~(sz - 1);
        if (a < win_next || a + sz > win_end) {
            snprintf(why, whylen, "BAR %d: no room for 0x%lx bytes in the BAR window", bar, (unsigned long)sz);
            return 0;
        }
        win_next = a + sz;
        uint16_t off = (uint16_t)(PCI_BAR0 + 4 * bar);
        uint16_t cmd = pci_read16(d, PCI_COMMAND);
        pci_write16(d, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEM));
        pci_write32(d, off, (uint32_t)a | (pci_read32(d, off) & 0xf));
        if (is64)
            pci_write32(d, (uint16_t)(off + 4), 0);
        pci_write16(d, PCI_COMMAND, cmd);
        addr = ((uint64_t)(is64 ? pci_read32(d, (uint16_t)(off + 4)) : 0) << 32 | pci_read32(d, off)) & ~0xfULL;
        if (addr != a) {
            snprintf(why, whylen, "BAR %d: wrote 0x%lx, reads back 0x%lx", bar, (unsigned long)a, (unsigned long)addr);
            return 0;
        }
    }
    /* A BAR on top of RAM would make device registers shadow memory. */
    for (uint32_t i = 0; boot && i < boot->nmem; i++) {
        const struct memrange *m = &boot->mem[i];
        if (m->type == E820_RAM && m->addr < addr + sz && addr < m->addr + m->size) {
            snprintf(why, whylen, "BAR %d at 0x%lx+0x%lx overlaps RAM 0x%lx+0x%lx in the memory map", bar,
                     (unsigned long)addr, (unsigned long)sz, (unsigned long)m->addr, (unsigned long)m->size);
            return 0;
        }
    }
    uint16_t cmd = pci_read16(d, PCI_COMMAND);
    if ((cmd & (PCI_COMMAND_MEM | PCI_COMMAND_MASTER)) != (PCI_COMMAND_MEM | PCI_COMMAND_MASTER))
        pci_write16(d, PCI_COMMAND, (uint16_t)(cmd | PCI_COMMAND_MEM | PCI_COMMAND_MASTER));
    *size = sz;
    return addr;
}

uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id)
{
    if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS))
        return 0;
    uint8_t cap = pci_read8(d, PCI_CAP_PTR) & 0xfc;
    for (int guard = 0; cap >= 0x40 && guard < 48; guard++) {
        if (pci_read8(d, cap) == id)
            return cap;
        cap = pci_read8(d, (uint16_t)(cap + 1)) & 0xfc;
    }
    return 0;
}
