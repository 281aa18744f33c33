/*
 * CPUID filter. KVM reports what it *can* virtualize; a VM should instead
 * describe itself: its topology (APIC ids, core counts) must match the MP
 * table, and features herd-vmm does not back must be hidden so a guest does
 * not try them and fault.
 */
#include "herd/cpuid.h"

#include <stddef.h>

#define LEAF_TOPOLOGY_V1 0x0b
#define LEAF_TOPOLOGY_V2 0x1f
#define TOPO_LEVEL_SMT   1
#define TOPO_LEVEL_CORE  2

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *entries, unsigned nr,
                                    unsigned function, unsigned index)
{
    for (unsigned i = 0; i < nr; i++)
        if (entries[i].function == function && entries[i].index == index)
            return &entries[i];
    return NULL;
}

/* Bits needed to number n items (0 for n <= 1). */
static unsigned order_bits(unsigned n)
{
    unsigned bits = 0;

    while ((1u << bits) < n)
        bits++;
    return bits;
}

static void filter_leaf1(struct kvm_cpuid_entry2 *e, unsigned vcpu_id, unsigned nr_vcpus)
{
    unsigned logical = nr_vcpus > 255 ? 255 : nr_vcpus;

    e->ebx &= 0x0000ffff; /* keep brand index and CLFLUSH line size */
    e->ebx |= (vcpu_id & 0xff) << 24;
    e->ebx |= logical << 16;
    if (nr_vcpus > 1)
        e->edx |= CPUID_1_EDX_HTT;
    else
        e->edx &= ~CPUID_1_EDX_HTT;
    e->ecx &= ~(CPUID_1_ECX_VMX | CPUID_1_ECX_MONITOR);
    e->ecx |= CPUID_1_ECX_HYPERVISOR;
}

static void filter_cache_leaf(struct kvm_cpuid_entry2 *e, unsigned nr_vcpus)
{
    unsigned cores = nr_vcpus > 64 ? 64 : nr_vcpus;
    unsigned level = (e->eax >> 5) & 0x7;
    unsigned sharing = level >= 3 ? nr_vcpus - 1 : 0;

    if ((e->eax & 0x1f) == 0) /* no more caches */
        return;
    e->eax &= 0x3fff;
    e->eax |= (cores - 1) << 26;
    e->eax |= (sharing & 0xfff) << 14;
}

static void filter_topology(struct kvm_cpuid_entry2 *e, unsigned vcpu_id, unsigned nr_vcpus)
{
    e->edx = vcpu_id; /* x2APIC id */
    switch (e->index) {
    case 0:
        e->eax = 0; /* one thread per core: no SMT bits */
        e->ebx = 1;
        e->ecx = (TOPO_LEVEL_SMT << 8) | e->index;
        break;
    case 1:
        e->eax = order_bits(nr_vcpus);
        e->ebx = nr_vcpus;
        e->ecx = (TOPO_LEVEL_CORE << 8) | e->index;
        break;
    default:
        e->eax = 0;
        e->ebx = 0;
        e->ecx = e->index;
        break;
    }
}

void cpuid_set_tsc_deadline(struct kvm_cpuid_entry2 *entries, unsigned nr, int supported)
{
    struct kvm_cpuid_entry2 *e = cpuid_find(entries, nr, 0x1, 0);

    if (!e)
        return;
    if (supported)
        e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
    else
        e->ecx &= ~CPUID_1_ECX_TSC_DEADLINE;
}

void cpuid_filter(struct kvm_cpuid_entry2 *entries, unsigned nr, unsigned vcpu_id,
                  unsigned nr_vcpus)
{
    for (unsigned i = 0; i < nr; i++) {
        struct kvm_cpuid_entry2 *e = &entries[i];

        switch (e->function) {
        case 0x1:
            filter_leaf1(e, vcpu_id, nr_vcpus);
            break;
        case 0x4:
            filter_cache_leaf(e, nr_vcpus);
            break;
        case 0x5: /* MONITOR/MWAIT: hidden */
        case 0xa: /* architectural PMU: not offered */
            e->eax = e->ebx = e->ecx = e->edx = 0;
            break;
        case 0x6: /* thermal/power: only "APIC timer always running" */
            e->eax &= CPUID_6_EAX_ARAT;
            e->ebx = e->ecx = e->edx = 0;
            break;
        case LEAF_TOPOLOGY_V1:
        case LEAF_TOPOLOGY_V2:
            filter_topology(e, vcpu_id, nr_vcpus);
            break;
        case 0x80000001:
            e->ecx &= ~CPUID_80000001_ECX_SVM;
            break;
        default:
            break;
        }
    }
}
