/*
 * Test "pci": PCI configuration access works (ECAM through the ACPI MCFG
 * table, or the legacy ports) and lists the functions found. Also the
 * shared setup of the device tests (pci_test_setup).
 *
 * Keys: probe.pci=ecam|ports (force one access method).
 */
#include "cmdline.h"
#include "dma.h"
#include "lib.h"
#include "pci.h"
#include "serial.h"
#include "tests.h"

bool pci_test_setup(struct test_ctx *t)
{
    uint32_t n;
    const char *v = cmdline_value(t->bi->cmdline, "probe.pci", &n);
    const char *force = 0;
    if (v && streq_n(v, n, "ecam"))
        force = "ecam";
    else if (v && streq_n(v, n, "ports"))
        force = "ports";
    else if (v) {
        fail(t, "bad probe.pci value (ecam or ports)");
        return false;
    }
    if (!dma_reset(t->bi)) {
        fail(t, "no RAM after the probe image for device buffers");
        return false;
    }
    char why[160];
    if (!pci_init(t->bi, force, why, sizeof(why))) {
        fail(t, "%s", why);
        return false;
    }
    return true;
}

void test_pci(struct test_ctx *t)
{
    if (!pci_test_setup(t))
        return;
    if (pci_method() == PCI_ECAM)
        say("pci: config access via ecam at 0x%lx (from %s)", (unsigned long)pci_ecam_base(), pci_ecam_source());
    else
        say("pci: config access via ports 0xcf8/0xcfc");
    for (uint32_t i = 0; i < pci_count(); i++) {
        const struct pci_dev *d = pci_get(i);
        say("pci: %02x:%02x.%u %04x:%04x subsys %04x header %02x class %06x", d->bus, d->dev, d->fn, d->vendor,
            d->device, d->subsys, d->hdr, pci_read32(d, 0x08) >> 8);
    }
    if (pci_count() == 0)
        fail(t, "no PCI functions found");
}
