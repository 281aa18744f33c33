/*
 * CPUID the guest sees: KVM's supported set (KVM_GET_SUPPORTED_CPUID),
 * filtered so that it describes this VM (its APIC ids and CPU count) and
 * hides what herd-vmm does not offer (nested VMX/SVM, MONITOR/MWAIT, the
 * PMU, thermal and power management).
 */
#ifndef HERD_CPUID_H
#define HERD_CPUID_H

#include <linux/kvm.h>

#define CPUID_MAX_ENTRIES 256

/* Feature bits touched by the filter (leaf 1). */
#define CPUID_1_ECX_MONITOR    (1u << 3)
#define CPUID_1_ECX_VMX        (1u << 5)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT        (1u << 28)
#define CPUID_80000001_ECX_SVM (1u << 2)
#define CPUID_6_EAX_ARAT       (1u << 2)

/* Rewrites `entries` in place for vCPU `vcpu_id` (its APIC id) of a VM with
 * `nr_vcpus` CPUs in one package, one thread per core. */
void cpuid_filter(struct kvm_cpuid_entry2 *entries, unsigned nr, unsigned vcpu_id,
                  unsigned nr_vcpus);

/* The TSC-deadline timer (leaf 1 ECX bit 24): KVM emulates it in its
 * LAPIC but never reports it in KVM_GET_SUPPORTED_CPUID (it tells through
 * KVM_CAP_TSC_DEADLINE_TIMER), so the VMM sets the bit when the capability
 * is there and clears it otherwise. No leaf 1: nothing happens. */
void cpuid_set_tsc_deadline(struct kvm_cpuid_entry2 *entries, unsigned nr, int supported);

/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *entries, unsigned nr,
                                    unsigned function, unsigned index);

#endif
