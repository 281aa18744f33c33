/*
 * Test "cpuid": the CPUID the VMM configured. Executed at CPL0 (a ud2 call),
 * because on the PVM host CPL3 runs natively and a CPL3 cpuid may reach the
 * host CPU without the VMM's table; the native view is compared and any
 * difference reported as a detail line, not a failure.
 */
#include "cpl0.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"

static bool printable12(const char s[12])
{
    bool any = false;
    for (int i = 0; i < 12; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
        if (s[i] != ' ')
            any = true;
    }
    return any;
}

void test_cpuid(struct test_ctx *t)
{
    uint32_t r[4], n[4];
    char vendor[13], hv[13];

    cpuid_vmm(0, 0, r);
    uint32_t max_basic = r[0];
    memcpy(vendor + 0, &r[1], 4);
    memcpy(vendor + 4, &r[3], 4);
    memcpy(vendor + 8, &r[2], 4);
    vendor[12] = '\0';
    if (!printable12(vendor)) {
        fail(t, "vendor string not printable");
        memcpy(vendor, "?", 2);
    }
    if (max_basic < 1)
        fail(t, "max basic leaf %u < 1", max_basic);

    cpuid_vmm(1, 0, r);
    uint32_t fam = (r[0] >> 8) & 0xf, model = (r[0] >> 4) & 0xf;
    if (fam == 0xf)
        fam += (r[0] >> 20) & 0xff;
    if (fam == 0x6 || fam >= 0xf)
        model |= ((r[0] >> 16) & 0xf) << 4;
    if (fam == 0)
        fail(t, "leaf 1 family 0 (eax 0x%x)", r[0]);
    uint32_t apic_id = r[1] >> 24;
    if (apic_id != 0)
        fail(t, "BSP initial APIC id %u, expected 0", apic_id);
    bool hv_bit = (r[2] >> 31) & 1;
    if (!hv_bit)
        fail(t, "hypervisor bit (leaf 1 ecx bit 31) clear");
    uint32_t leaf1_eax = r[0];

    cpuid_vmm(0x80000000, 0, r);
    if (r[0] < 0x80000001) {
        fail(t, "max extended leaf 0x%x < 0x80000001", r[0]);
    } else {
        cpuid_vmm(0x80000001, 0, r);
        if (!((r[3] >> 29) & 1))
            fail(t, "long mode bit (0x80000001 edx bit 29) clear");
    }

    cpuid_vmm(0x40000000, 0, r);
    memcpy(hv + 0, &r[1], 4);
    memcpy(hv + 4, &r[2], 4);
    memcpy(hv + 8, &r[3], 4);
    hv[12] = '\0';
    if (memcmp(hv, "KVMKVMKVM\0\0\0", 12) != 0)
        fail(t, "leaf 0x40000000 signature is not KVMKVMKVM");
    for (int i = 0; i < 12; i++)
        if (hv[i] && (hv[i] < 0x20 || hv[i] > 0x7e))
            hv[i] = '?';

    say("cpuid: vendor %s, family 0x%x model 0x%x, max leaf 0x%x, hypervisor %s", vendor, fam, model,
        max_basic, hv[0] ? hv : "(none)");

    /* What a CPL3 cpuid sees (informational). */
    cpuid_native(0, 0, n);
    cpuid_native(1, 0, r);
    char nvendor[13];
    memcpy(nvendor + 0, &n[1], 4);
    memcpy(nvendor + 4, &n[3], 4);
    memcpy(nvendor + 8, &n[2], 4);
    nvendor[12] = '\0';
    if (memcmp(nvendor, vendor, 12) != 0 || r[0] != leaf1_eax || n[0] != max_basic)
        say("cpuid: note: CPL3 cpuid differs: vendor %s, max leaf 0x%x, leaf 1 eax 0x%x",
            printable12(nvendor) ? nvendor : "?", n[0], r[0]);
}
