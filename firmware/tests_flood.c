/*
 * flood: writes the console as fast as the probe can for probe.flood.secs
 * seconds (default 60), ~900-byte lines, then passes. With
 * probe.flood.bar=1 it also tries to move the first memory BAR it finds
 * before every line (herd-vmm refuses and warns: a guest-triggerable log
 * line; a VMM that allows moves gets the BAR back at the end). What
 * herdd's console cap and herd-vmm's log rate limit are tested against
 * (tests/integration/escape-console.sh). Fails only on bad keys.
 */
#include "cmdline.h"
#include "lib.h"
#include "pci.h"
#include "serial.h"
#include "tests.h"
#include "tsc.h"

void test_flood(struct test_ctx *t)
{
    const char *cl = t->bi->cmdline;
    uint64_t secs, lines = 0;
    bool bar;
    const struct pci_dev *d = 0;
    uint32_t bar0 = 0;
    uint16_t bar_off = PCI_BAR0;
    static char pad[860];

    if (!cmdline_u64(cl, "probe.flood.secs", 60, &secs) || secs > 86400) {
        fail(t, "bad probe.flood.secs (0-86400)");
        return;
    }
    if (!cmdline_flag(cl, "probe.flood.bar", false, &bar)) {
        fail(t, "bad probe.flood.bar (0 or 1)");
        return;
    }
    if (bar) {
        if (!pci_test_setup(t))
            return;
        for (uint32_t i = 0; i < pci_count() && !d; i++) {
            for (uint16_t b = 0; b < 6 && !d; b++) {
                uint32_t v = pci_read32(pci_get(i), (uint16_t)(PCI_BAR0 + 4 * b));
                if ((v & ~0xfu) && !(v & 1)) {
                    d = pci_get(i);
                    bar_off = (uint16_t)(PCI_BAR0 + 4 * b);
                    bar0 = v;
                }
            }
        }
        /* none placed by firmware (QEMU microvm): place one ourselves */
        for (uint32_t i = 0; i < pci_count() && !d; i++) {
            for (int b = 0; b < 6 && !d; b++) {
                uint64_t size;
                char why[96];
                if (pci_map_bar(pci_get(i), b, &size, why, sizeof(why))) {
                    d = pci_get(i);
                    bar_off = (uint16_t)(PCI_BAR0 + 4 * b);
                    bar0 = pci_read32(d, bar_off);
                }
            }
        }
        if (!d) {
            fail(t, "probe.flood.bar: no device with a memory BAR");
            return;
        }
    }
    for (size_t i = 0; i + 1 < sizeof(pad); i++)
        pad[i] = (char)('a' + i % 26);
    say("flood: %llu s%s", (unsigned long long)secs, bar ? ", moving a BAR before each line" : "");
    uint64_t end = tsc_deadline(secs * 1000);
    while (!tsc_passed(end)) {
        if (d)
            pci_write32(d, bar_off, (bar0 & ~0xfu) + 0x100000u + (uint32_t)(lines & 0xff) * 0x1000u);
        say("flood %llu %s", (unsigned long long)lines++, pad);
    }
    /* herd-vmm refuses every move; a VMM that allows them gets its BAR back */
    if (d)
        pci_write32(d, bar_off, bar0);
    say("flood: done, %llu lines", (unsigned long long)lines);
}
