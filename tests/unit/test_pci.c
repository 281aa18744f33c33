/*
 * PCI bus 0 as a guest sees it: configuration space through the legacy
 * 0xcf8/0xcfc ports and through ECAM, both reached by dispatching on plain
 * port and MMIO buses. The host bridge, an absent slot, other functions, the
 * BAR sizing protocol (and a refused BAR move), read-only fields, the
 * capability list, and BAR placement in the 32-bit window.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "herd/bus.h"
#include "herd/pci.h"

#define VENDOR   0x1af4
#define DEVICE   0x1042
#define CLASS    0x018000 /* mass storage, other */
#define SUBVEN   0x1af4
#define SUBSYS   0x0002
#define BAR0_SZ  0x8000
#define BAR2_SZ  0x1000

struct ctx {
    struct bus pio, mmio;
    struct pci_bus pci;
    struct pci_dev dev;
    /* config_written calls seen by the device */
    unsigned writes, last_off, last_len;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    bus_init(&c->pio, "pio");
    bus_init(&c->mmio, "mmio");
    if (pci_bus_init(&c->pci, &c->pio, &c->mmio))
        return -1;
    pci_dev_init(&c->dev, VENDOR, DEVICE, CLASS, SUBVEN, SUBSYS);
    if (pci_dev_add_bar(&c->pci, &c->dev, 0, BAR0_SZ) ||
        pci_dev_add_bar(&c->pci, &c->dev, 2, BAR2_SZ) || pci_bus_add(&c->pci, &c->dev))
        return -1;
    c->dev.opaque = c;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    pci_bus_destroy(&c->pci);
    free(c);
    return 0;
}

/* ---- guest-side accessors --------------------------------------------------- */

static uint64_t le(const uint8_t *b, unsigned len)
{
    uint64_t v = 0;

    for (unsigned i = len; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

static void put_le(uint8_t *b, uint64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t pio_read(struct ctx *c, uint16_t port, unsigned len)
{
    uint8_t b[4];

    memset(b, 0xa5, sizeof(b));
    assert_true(bus_dispatch(&c->pio, port, b, len, false));
    return le(b, len);
}

static void pio_write(struct ctx *c, uint16_t port, uint64_t v, unsigned len)
{
    uint8_t b[4];

    put_le(b, v, len);
    assert_true(bus_dispatch(&c->pio, port, b, len, true));
}

static uint32_t cf8(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
    return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

/* Mechanism #1: address dword to 0xcf8, data at 0xcfc + (reg & 3). */
static uint64_t conf1_read(struct ctx *c, unsigned slot, unsigned fn, unsigned reg,
                           unsigned len)
{
    pio_write(c, PCI_PORT_ADDR, cf8(0, slot, fn, reg), 4);
    return pio_read(c, (uint16_t)(PCI_PORT_DATA + (reg & 3)), len);
}

static void conf1_write(struct ctx *c, unsigned slot, unsigned fn, unsigned reg, uint64_t v,
                        unsigned len)
{
    pio_write(c, PCI_PORT_ADDR, cf8(0, slot, fn, reg), 4);
    pio_write(c, (uint16_t)(PCI_PORT_DATA + (reg & 3)), v, len);
}

static uint64_t ecam_addr(unsigned slot, unsigned fn, unsigned reg)
{
    return PCI_ECAM_BASE + ((uint64_t)slot << 15) + ((uint64_t)fn << 12) + reg;
}

static uint64_t ecam_read(struct ctx *c, unsigned slot, unsigned fn, unsigned reg, unsigned len)
{
    uint8_t b[8];

    memset(b, 0xa5, sizeof(b));
    assert_true(bus_dispatch(&c->mmio, ecam_addr(slot, fn, reg), b, len, false));
    return le(b, len);
}

static void ecam_write(struct ctx *c, unsigned slot, unsigned fn, unsigned reg, uint64_t v,
                       unsigned len)
{
    uint8_t b[8];

    put_le(b, v, len);
    assert_true(bus_dispatch(&c->mmio, ecam_addr(slot, fn, reg), b, len, true));
}

/* Both mechanisms must agree; returns the value. */
static uint64_t cfg_read(struct ctx *c, unsigned slot, unsigned reg, unsigned len)
{
    uint64_t a = conf1_read(c, slot, 0, reg, len), b = ecam_read(c, slot, 0, reg, len);

    if (a != b)
        fail_msg("slot %u reg %#x/%u: conf1 %#llx, ECAM %#llx", slot, reg, len,
                 (unsigned long long)a, (unsigned long long)b);
    return a;
}

/* ---- the bus --------------------------------------------------------------- */

static void test_ranges_registered(void **state)
{
    struct ctx *c = *state;
    const struct bus_range *r;

    r = bus_find(&c->pio, PCI_PORT_ADDR, 4);
    assert_non_null(r);
    assert_int_equal(r->base, PCI_PORT_ADDR);
    assert_int_equal(r->size, 8);
    r = bus_find(&c->mmio, PCI_ECAM_BASE, 4);
    assert_non_null(r);
    assert_int_equal(r->size, PCI_ECAM_SIZE);
    /* the ECAM area is outside the BAR window */
    assert_true(PCI_ECAM_BASE >= PCI_MMIO_WINDOW_END);
}

static void test_init_conflict(void **state)
{
    struct bus pio, mmio;
    struct pci_bus pci;
    struct bus_range other = {.base = 0xcfc, .size = 1, .name = "squatter"};

    (void)state;
    bus_init(&pio, "pio");
    bus_init(&mmio, "mmio");
    assert_int_equal(bus_register(&pio, &other), 0);
    assert_int_equal(pci_bus_init(&pci, &pio, &mmio), -EEXIST);
    pci_bus_destroy(&pci);
}

static void test_host_bridge(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(cfg_read(c, 0, PCI_VENDOR_ID, 2), 0x1b36);
    assert_int_equal(cfg_read(c, 0, PCI_DEVICE_ID, 2), 0x0008);
    assert_int_equal(cfg_read(c, 0, PCI_CLASS_PROG, 1), 0x00);
    assert_int_equal(cfg_read(c, 0, PCI_CLASS_PROG + 1, 2), 0x0600);
    assert_int_equal(cfg_read(c, 0, PCI_HEADER_TYPE, 1), 0);
    assert_ptr_equal(c->pci.devs[0], &c->pci.host_bridge);
    /* no BARs */
    for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
        conf1_write(c, 0, 0, PCI_BAR0 + 4 * b, 0xffffffff, 4);
        assert_int_equal(cfg_read(c, 0, PCI_BAR0 + 4 * b, 4), 0);
    }
}

static void test_device_ids_all_widths(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(c->dev.slot, 1);
    assert_ptr_equal(c->pci.devs[1], &c->dev);
    assert_int_equal(cfg_read(c, 1, 0, 4), (uint32_t)DEVICE << 16 | VENDOR);
    assert_int_equal(cfg_read(c, 1, 0, 2), VENDOR);
    assert_int_equal(cfg_read(c, 1, 2, 2), DEVICE);
    assert_int_equal(cfg_read(c, 1, 0, 1), VENDOR & 0xff);
    assert_int_equal(cfg_read(c, 1, 1, 1), VENDOR >> 8);
    assert_int_equal(cfg_read(c, 1, 2, 1), DEVICE & 0xff);
    assert_int_equal(cfg_read(c, 1, 3, 1), DEVICE >> 8);
    /* class code in 0x09..0x0b, revision 0 below it */
    assert_int_equal(cfg_read(c, 1, 8, 4), (uint32_t)CLASS << 8);
    assert_int_equal(cfg_read(c, 1, PCI_SUBSYS_VENDOR, 2), SUBVEN);
    assert_int_equal(cfg_read(c, 1, PCI_SUBSYS_ID, 2), SUBSYS);
    assert_int_equal(cfg_read(c, 1, PCI_SUBSYS_VENDOR, 4), (uint32_t)SUBSYS << 16 | SUBVEN);
    assert_int_equal(cfg_read(c, 1, PCI_HEADER_TYPE, 1), 0);
    /* conf1 with a dword address whose low bits are set: they are ignored */
    pio_write(c, PCI_PORT_ADDR, cf8(0, 1, 0, 0) | 3, 4);
    assert_int_equal(pio_read(c, PCI_PORT_DATA, 2), VENDOR);
    /* ECAM qword read */
    assert_int_equal(ecam_read(c, 1, 0, 0, 8),
                     (uint64_t)le(c->dev.config + 4, 4) << 32 | ((uint32_t)DEVICE << 16 | VENDOR));
}

static void test_cf8_latch(void **state)
{
    struct ctx *c = *state;

    pio_write(c, PCI_PORT_ADDR, 0x80000810, 4);
    assert_int_equal(pio_read(c, PCI_PORT_ADDR, 4), 0x80000810);
    /* only dword writes to 0xcf8 change the address */
    pio_write(c, PCI_PORT_ADDR, 0x12, 1);
    pio_write(c, PCI_PORT_ADDR, 0x3456, 2);
    assert_int_equal(pio_read(c, PCI_PORT_ADDR, 4), 0x80000810);
    assert_int_equal(pio_read(c, PCI_PORT_ADDR + 1, 1), 0x08);
}

static void test_absent_slot_all_ones(void **state)
{
    struct ctx *c = *state;
    uint8_t before[PCI_CONFIG_SIZE];

    for (unsigned slot = 2; slot < PCI_MAX_DEVICES; slot++) {
        assert_int_equal(cfg_read(c, slot, 0, 4), 0xffffffff);
        assert_int_equal(cfg_read(c, slot, 0, 2), 0xffff);
        assert_int_equal(cfg_read(c, slot, 3, 1), 0xff);
        assert_int_equal(ecam_read(c, slot, 0, 0x100, 4), 0xffffffff);
    }
    /* writes to nowhere change nothing */
    memcpy(before, c->dev.config, sizeof(before));
    conf1_write(c, 7, 0, PCI_COMMAND, 0xffff, 2);
    ecam_write(c, 7, 0, PCI_COMMAND, 0xffff, 2);
    assert_memory_equal(before, c->dev.config, sizeof(before));
    assert_int_equal(cfg_read(c, 7, PCI_COMMAND, 2), 0xffff);
}

static void test_other_functions_all_ones(void **state)
{
    struct ctx *c = *state;

    for (unsigned fn = 1; fn < 8; fn++) {
        assert_int_equal(conf1_read(c, 1, fn, 0, 4), 0xffffffff);
        assert_int_equal(ecam_read(c, 1, fn, 0, 4), 0xffffffff);
        assert_int_equal(conf1_read(c, 0, fn, 0, 2), 0xffff);
        conf1_write(c, 1, fn, PCI_COMMAND, 0x7, 2);
        ecam_write(c, 1, fn, PCI_COMMAND, 0x7, 2);
    }
    assert_int_equal(cfg_read(c, 1, PCI_COMMAND, 2), 0);
}

static void test_cf8_disabled_and_other_buses(void **state)
{
    struct ctx *c = *state;

    /* enable bit clear: no config cycle */
    pio_write(c, PCI_PORT_ADDR, cf8(0, 1, 0, 0) & 0x7fffffff, 4);
    assert_int_equal(pio_read(c, PCI_PORT_DATA, 4), 0xffffffff);
    assert_int_equal(pio_read(c, PCI_PORT_DATA + 2, 2), 0xffff);
    pio_write(c, PCI_PORT_DATA + 0, 0x7, 2);
    assert_int_equal(cfg_read(c, 1, PCI_COMMAND, 2), 0);
    /* bus 1 and bus 255: nothing there */
    for (unsigned b = 1; b < 256; b += 254) {
        pio_write(c, PCI_PORT_ADDR, cf8(b, 1, 0, 0), 4);
        assert_int_equal(pio_read(c, PCI_PORT_DATA, 4), 0xffffffff);
        pio_write(c, PCI_PORT_ADDR, cf8(b, 1, 0, PCI_COMMAND), 4);
        pio_write(c, PCI_PORT_DATA, 0x7, 2);
        assert_int_equal(cfg_read(c, 1, PCI_COMMAND, 2), 0);
    }
    /* the latch read back as written, whatever it names */
    pio_write(c, PCI_PORT_ADDR, cf8(3, 1, 0, 0), 4);
    assert_int_equal(pio_read(c, PCI_PORT_ADDR, 4), cf8(3, 1, 0, 0));
}

static void test_bar_sizing(void **state)
{
    struct ctx *c = *state;
    uint32_t bar0 = (uint32_t)c->dev.bars[0].addr, bar2 = (uint32_t)c->dev.bars[2].addr;

    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0 + 8, 4), bar2);
    /* conf1 */
    conf1_write(c, 1, 0, PCI_BAR0, 0xffffffff, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), (uint32_t)~(BAR0_SZ - 1));
    conf1_write(c, 1, 0, PCI_BAR0, bar0, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    /* ECAM, BAR2 */
    ecam_write(c, 1, 0, PCI_BAR0 + 8, 0xffffffff, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0 + 8, 4), (uint32_t)~(BAR2_SZ - 1));
    ecam_write(c, 1, 0, PCI_BAR0 + 8, bar2, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0 + 8, 4), bar2);
    /* unused BARs read 0 whatever is written, sizing included */
    for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
        if (b == 0 || b == 2)
            continue;
        conf1_write(c, 1, 0, PCI_BAR0 + 4 * b, 0xffffffff, 4);
        assert_int_equal(cfg_read(c, 1, PCI_BAR0 + 4 * b, 4), 0);
    }
    /* the assignment itself never changed */
    assert_int_equal(c->dev.bars[0].addr, bar0);
    assert_int_equal(c->dev.bars[2].addr, bar2);
}

static void test_bar_move_refused(void **state)
{
    struct ctx *c = *state;
    uint32_t bar0 = (uint32_t)c->dev.bars[0].addr;

    conf1_write(c, 1, 0, PCI_BAR0, bar0 + 0x100000, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    ecam_write(c, 1, 0, PCI_BAR0, 0x80000000, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    /* a partial write (upper half only) is a move too */
    conf1_write(c, 1, 0, PCI_BAR0 + 2, 0xc000, 2);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    ecam_write(c, 1, 0, PCI_BAR0 + 3, 0x01, 1);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    /* 0 is a move as well */
    conf1_write(c, 1, 0, PCI_BAR0, 0, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    /* after sizing, a different address is still refused */
    conf1_write(c, 1, 0, PCI_BAR0, 0xffffffff, 4);
    conf1_write(c, 1, 0, PCI_BAR0, bar0 + BAR0_SZ, 4);
    assert_int_equal(cfg_read(c, 1, PCI_BAR0, 4), bar0);
    assert_int_equal(c->dev.bars[0].addr, bar0);
}

static void test_read_only_fields(void **state)
{
    struct ctx *c = *state;
    uint8_t before[PCI_CONFIG_SIZE];

    memcpy(before, c->dev.config, sizeof(before));
    conf1_write(c, 1, 0, PCI_VENDOR_ID, 0x12345678, 4);
    ecam_write(c, 1, 0, PCI_DEVICE_ID, 0xbeef, 2);
    conf1_write(c, 1, 0, PCI_STATUS, 0xffff, 2);
    conf1_write(c, 1, 0, PCI_REVISION, 0xffffffff, 4); /* revision + class */
    conf1_write(c, 1, 0, 0x0c, 0xffffffff, 4);        /* cache line .. BIST */
    conf1_write(c, 1, 0, PCI_SUBSYS_VENDOR, 0xffffffff, 4);
    conf1_write(c, 1, 0, PCI_CAP_PTR, 0xff, 1);
    conf1_write(c, 1, 0, PCI_INT_PIN, 0xff, 1);
    ecam_write(c, 1, 0, 0x40, 0xffffffffffffffffULL, 8);
    assert_memory_equal(before, c->dev.config, sizeof(before));
    assert_int_equal(cfg_read(c, 1, PCI_VENDOR_ID, 4), (uint32_t)DEVICE << 16 | VENDOR);
}

static void test_writable_fields(void **state)
{
    struct ctx *c = *state;

    /* command: I/O, memory, bus master and INTx disable only */
    conf1_write(c, 1, 0, PCI_COMMAND, 0xffff, 2);
    assert_int_equal(cfg_read(c, 1, PCI_COMMAND, 2), 0x0407);
    ecam_write(c, 1, 0, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    assert_int_equal(cfg_read(c, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    /* a dword write over command+status changes only command */
    conf1_write(c, 1, 0, PCI_COMMAND, 0xffff0000, 4);
    assert_int_equal(cfg_read(c, 1, PCI_COMMAND, 4), 0);
    /* interrupt line is scratch for the OS */
    conf1_write(c, 1, 0, PCI_INT_LINE, 0x0b, 1);
    assert_int_equal(cfg_read(c, 1, PCI_INT_LINE, 1), 0x0b);
    assert_int_equal(cfg_read(c, 1, PCI_INT_PIN, 1), 0);
}

static void test_extended_config_space(void **state)
{
    struct ctx *c = *state;

    /* present device: no extended capabilities (zero header) */
    assert_int_equal(ecam_read(c, 1, 0, 0x100, 4), 0);
    assert_int_equal(ecam_read(c, 1, 0, 0xffc, 4), 0);
    ecam_write(c, 1, 0, 0x100, 0xffffffff, 4);
    assert_int_equal(ecam_read(c, 1, 0, 0x100, 4), 0);
    /* the last standard dword */
    assert_int_equal(ecam_read(c, 1, 0, 0xfc, 4), 0);
    assert_int_equal(conf1_read(c, 1, 0, 0xff, 1), 0);
}

static void written(struct pci_dev *dev, unsigned off, unsigned len)
{
    struct ctx *c = dev->opaque;

    c->writes++;
    c->last_off = off;
    c->last_len = len;
}

static bool read_hook(struct pci_dev *dev, unsigned off, uint8_t *data, unsigned len)
{
    if (off != 0x60)
        return false;
    for (unsigned i = 0; i < len; i++)
        data[i] = (uint8_t)(0xc0 + i);
    return true;
}

static void test_device_hooks(void **state)
{
    struct ctx *c = *state;
    static const struct pci_dev_ops ops = {.config_written = written, .config_read = read_hook};

    c->dev.ops = &ops;
    conf1_write(c, 1, 0, PCI_COMMAND + 1, 0x04, 1);
    assert_int_equal(c->writes, 1);
    assert_int_equal(c->last_off, PCI_COMMAND + 1);
    assert_int_equal(c->last_len, 1);
    ecam_write(c, 1, 0, 0x80, 0x1234, 2);
    assert_int_equal(c->writes, 2);
    assert_int_equal(c->last_off, 0x80);
    assert_int_equal(c->last_len, 2);
    assert_int_equal(cfg_read(c, 1, 0x60, 4), 0xc3c2c1c0);
    assert_int_equal(cfg_read(c, 1, 0x64, 4), 0);
    assert_int_equal(cfg_read(c, 1, 0, 2), VENDOR);
    /* absent functions reach no hook */
    conf1_write(c, 1, 1, PCI_COMMAND, 0x7, 2);
    assert_int_equal(c->writes, 2);
}

static void test_capability_list(void **state)
{
    struct ctx *c = *state;
    uint8_t msix[12] = {0, 0, 0x03, 0x00, 0x00, 0x40, 0, 0, 0x00, 0x50, 0, 0};
    uint8_t vndr[16], odd[5] = {0, 0, 5, 0xaa, 0xbb};
    static const uint8_t want_ids[] = {0x11, 0x09, 0x09};
    unsigned at[3], ptr, n = 0;

    for (unsigned i = 0; i < sizeof(vndr); i++)
        vndr[i] = (uint8_t)(0x30 + i);
    assert_int_equal(cfg_read(c, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    assert_int_equal(cfg_read(c, 1, PCI_CAP_PTR, 1), 0);

    at[0] = pci_dev_add_cap(&c->dev, 0x11, msix, sizeof(msix));
    at[1] = pci_dev_add_cap(&c->dev, 0x09, odd, sizeof(odd));
    at[2] = pci_dev_add_cap(&c->dev, 0x09, vndr, sizeof(vndr));
    assert_int_equal(at[0], 0x40);
    assert_int_equal(at[1], 0x4c);
    assert_int_equal(at[2], 0x54); /* 0x4c + 5, rounded up to a dword */

    assert_true(cfg_read(c, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    for (ptr = (unsigned)cfg_read(c, 1, PCI_CAP_PTR, 1); ptr; n++) {
        assert_true(n < 3);
        assert_int_equal(ptr, at[n]);
        assert_int_equal(ptr & 3, 0);
        assert_true(ptr >= 0x40);
        assert_int_equal(cfg_read(c, 1, ptr, 1), want_ids[n]);
        ptr = (unsigned)cfg_read(c, 1, ptr + 1, 1);
    }
    assert_int_equal(n, 3);
    /* bodies copied after id and next */
    assert_int_equal(cfg_read(c, 1, at[0] + 2, 2), 0x0003);
    assert_int_equal(cfg_read(c, 1, at[0] + 4, 4), 0x4000);
    assert_int_equal(cfg_read(c, 1, at[1] + 2, 1), 5);
    assert_int_equal(cfg_read(c, 1, at[1] + 4, 1), 0xbb);
    for (unsigned i = 2; i < sizeof(vndr); i++)
        assert_int_equal(cfg_read(c, 1, at[2] + i, 1), vndr[i]);
    /* capabilities are read-only unless the device says otherwise */
    conf1_write(c, 1, 0, at[0], 0xffffffff, 4);
    assert_int_equal(cfg_read(c, 1, at[0], 1), 0x11);
    assert_int_equal(cfg_read(c, 1, at[0] + 1, 1), at[1]);
}

static void test_capability_space_full(void **state)
{
    struct ctx *c = *state;
    uint8_t body[64] = {0};
    unsigned off, count = 0;

    assert_int_equal(pci_dev_add_cap(&c->dev, 0x09, body, 1), 0);
    while ((off = pci_dev_add_cap(&c->dev, 0x09, body, sizeof(body))) != 0) {
        assert_true(off + sizeof(body) <= PCI_CONFIG_SIZE);
        count++;
    }
    assert_int_equal(count, 3); /* 0x40, 0x80, 0xc0 */
    /* a smaller one still fits nowhere: 0x100 is the end */
    assert_int_equal(pci_dev_add_cap(&c->dev, 0x09, body, 4), 0);
    /* the list is intact */
    assert_int_equal(c->dev.config[PCI_CAP_PTR], 0x40);
    assert_int_equal(c->dev.config[0x41], 0x80);
    assert_int_equal(c->dev.config[0x81], 0xc0);
    assert_int_equal(c->dev.config[0xc1], 0);
}

static void test_bar_placement(void **state)
{
    struct ctx *c = *state;
    static struct pci_dev devs[4];
    static const uint64_t sizes[] = {0x1000, 0x100000, 0x2000, 0x4000, 0x10000, 0x1000000};
    struct pci_bar all[2 + 4 * 6];
    unsigned n = 0;

    all[n++] = c->dev.bars[0];
    all[n++] = c->dev.bars[2];
    for (unsigned d = 0; d < 4; d++) {
        pci_dev_init(&devs[d], VENDOR, DEVICE, CLASS, 0, 0);
        for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
            assert_int_equal(pci_dev_add_bar(&c->pci, &devs[d], b, sizes[(b + d) % 6]), 0);
            all[n++] = devs[d].bars[b];
            assert_int_equal(le(devs[d].config + PCI_BAR0 + 4 * b, 4), devs[d].bars[b].addr);
        }
        assert_int_equal(pci_bus_add(&c->pci, &devs[d]), 0);
        assert_int_equal(devs[d].slot, 2 + d);
    }
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(all[i].addr % all[i].size, 0);
        assert_true(all[i].addr >= PCI_MMIO_WINDOW_START);
        assert_true(all[i].addr + all[i].size <= PCI_MMIO_WINDOW_END);
        for (unsigned j = 0; j < i; j++)
            assert_true(all[i].addr + all[i].size <= all[j].addr ||
                        all[j].addr + all[j].size <= all[i].addr);
    }
    /* sizing reads the right mask on a 16 MiB BAR */
    conf1_write(c, 2, 0, PCI_BAR0 + 4 * 5, 0xffffffff, 4);
    assert_int_equal(cfg_read(c, 2, PCI_BAR0 + 4 * 5, 4), 0xff000000);
}

static void test_bar_errors(void **state)
{
    struct ctx *c = *state;
    struct pci_dev d;
    uint64_t next = c->pci.mmio_next;

    pci_dev_init(&d, VENDOR, DEVICE, CLASS, 0, 0);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, PCI_NUM_BARS, 0x1000), -EINVAL);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, 0), -EINVAL);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, 0x800), -EINVAL);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, 0x3000), -EINVAL);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, 0x1800), -EINVAL);
    /* the whole window no longer fits; neither does anything larger */
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_START),
                     -ENOSPC);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, 1ULL << 32), -ENOSPC);
    assert_int_equal(c->pci.mmio_next, next);
    assert_int_equal(d.bars[0].size, 0);
    assert_int_equal(le(d.config + PCI_BAR0, 4), 0);
    /* fill the window with 16 MiB BARs until it is full */
    for (unsigned i = 0;; i++) {
        struct pci_dev e;
        int rc;

        pci_dev_init(&e, VENDOR, DEVICE, CLASS, 0, 0);
        rc = pci_dev_add_bar(&c->pci, &e, 0, 0x1000000);
        if (rc) {
            assert_int_equal(rc, -ENOSPC);
            break;
        }
        assert_true(e.bars[0].addr + 0x1000000 <= PCI_MMIO_WINDOW_END);
        assert_true(i < 16);
    }
}

static void test_slots_run_out(void **state)
{
    struct ctx *c = *state;
    static struct pci_dev devs[PCI_MAX_DEVICES];

    for (unsigned i = 2; i < PCI_MAX_DEVICES; i++) {
        pci_dev_init(&devs[i], VENDOR, (uint16_t)i, CLASS, 0, 0);
        assert_int_equal(pci_bus_add(&c->pci, &devs[i]), 0);
        assert_int_equal(devs[i].slot, i);
    }
    pci_dev_init(&devs[0], VENDOR, 0, CLASS, 0, 0);
    assert_int_equal(pci_bus_add(&c->pci, &devs[0]), -ENOSPC);
    assert_int_equal(cfg_read(c, 31, PCI_DEVICE_ID, 2), 31);
    assert_int_equal(cfg_read(c, 0, PCI_VENDOR_ID, 2), 0x1b36);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* An 8-byte ECAM write spans two BARs: neither may move. */
static void test_bar_move_by_qword_refused(void **state)
{
    struct ctx *c = *state;
    static struct pci_dev d2;
    uint32_t bar0, bar1;

    pci_dev_init(&d2, VENDOR, DEVICE, CLASS, 0, 0);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d2, 0, 0x1000), 0);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d2, 1, 0x1000), 0);
    assert_int_equal(pci_bus_add(&c->pci, &d2), 0);
    bar0 = (uint32_t)d2.bars[0].addr;
    bar1 = (uint32_t)d2.bars[1].addr;
    ecam_write(c, d2.slot, 0, PCI_BAR0, (uint64_t)(bar1 + 0x100000) << 32 | bar0, 8);
    assert_int_equal(cfg_read(c, d2.slot, PCI_BAR0 + 4, 4), bar1);
    ecam_write(c, d2.slot, 0, 0x0c, (uint64_t)(bar0 + 0x100000) << 32, 8);
    assert_int_equal(cfg_read(c, d2.slot, PCI_BAR0, 4), bar0);
}

static void test_bar_huge_size_refused(void **state)
{
    struct ctx *c = *state;
    struct pci_dev d;
    uint64_t next = c->pci.mmio_next;

    pci_dev_init(&d, VENDOR, DEVICE, CLASS, 0, 0);
    assert_int_equal(pci_dev_add_bar(&c->pci, &d, 0, 1ULL << 63), -ENOSPC);
    assert_int_equal(c->pci.mmio_next, next);
}

static void test_cf8_straddling_read_fills_all_bytes(void **state)
{
    struct ctx *c = *state;

    pio_write(c, PCI_PORT_ADDR, 0x80000810, 4);
    assert_int_equal(pio_read(c, PCI_PORT_ADDR + 2, 4) >> 16, 0xffff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ranges_registered),
        cmocka_unit_test(test_init_conflict),
        T(test_host_bridge),
        T(test_device_ids_all_widths),
        T(test_cf8_latch),
        T(test_absent_slot_all_ones),
        T(test_other_functions_all_ones),
        T(test_cf8_disabled_and_other_buses),
        T(test_bar_sizing),
        T(test_bar_move_refused),
        T(test_read_only_fields),
        T(test_writable_fields),
        T(test_extended_config_space),
        T(test_device_hooks),
        T(test_capability_list),
        T(test_capability_space_full),
        T(test_bar_placement),
        T(test_bar_errors),
        T(test_slots_run_out),
        T(test_bar_move_by_qword_refused),
        T(test_bar_huge_size_refused),
        T(test_cf8_straddling_read_fills_all_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
