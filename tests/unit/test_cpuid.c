/*
 * CPUID filter: a fake KVM_GET_SUPPORTED_CPUID table (with host topology and
 * features herd-vmm does not back) rewritten for one vCPU of a VM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "herd/cpuid.h"

#define SIG_EBX 0x756e6547 /* "Genu" */
#define SIG_EDX 0x49656e69 /* "ineI" */
#define SIG_ECX 0x6c65746e /* "ntel" */

#define L1_EBX_HOST 0xab100801u /* APIC id 0xab, 16 logical, CLFLUSH 8, brand 1 */
#define L1_ECX_KEEP ((1u << 0) | (1u << 9) | (1u << 21)) /* SSE3, SSSE3, x2APIC */
#define L1_EDX_KEEP ((1u << 0) | (1u << 9) | (1u << 25)) /* FPU, APIC, SSE */

/* Leaf 4 EAX: type in 4:0, level in 7:5, garbage in the topology fields. */
#define CACHE_EAX(type, level) (0xfc000000u | 0x03ffc000u | 0x100u | ((level) << 5) | (type))

enum { I_L0, I_L1, I_L4_0, I_L4_1, I_L4_2, I_L4_3, I_L4_4, I_L5, I_L6, I_LA, I_LB_0, I_LB_1,
       I_LB_2, I_L1F_0, I_L1F_1, I_L1F_2, I_X1, I_KVM, NR };

static void fake_table(struct kvm_cpuid_entry2 *t, uint32_t l1_edx)
{
    memset(t, 0, NR * sizeof(*t));
    t[I_L0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x1f, .ebx = SIG_EBX,
                                        .ecx = SIG_ECX, .edx = SIG_EDX};
    t[I_L1] = (struct kvm_cpuid_entry2){
        .function = 1, .eax = 0x000906ea, .ebx = L1_EBX_HOST,
        .ecx = L1_ECX_KEEP | CPUID_1_ECX_VMX | CPUID_1_ECX_MONITOR, .edx = l1_edx};
    for (unsigned i = 0; i < 5; i++) {
        static const uint32_t eax[5] = {CACHE_EAX(1, 1), CACHE_EAX(2, 1), CACHE_EAX(3, 2),
                                        CACHE_EAX(3, 3), 0};
        t[I_L4_0 + i] = (struct kvm_cpuid_entry2){
            .function = 4, .index = i, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            .eax = eax[i], .ebx = i ? 0x01c0003f : 0, .ecx = i ? 0x3f + i : 0, .edx = 0};
    }
    t[I_L5] = (struct kvm_cpuid_entry2){.function = 5, .eax = 0x40, .ebx = 0x40, .ecx = 3,
                                        .edx = 0x11142120};
    t[I_L6] = (struct kvm_cpuid_entry2){.function = 6, .eax = 0x77 | CPUID_6_EAX_ARAT,
                                        .ebx = 2, .ecx = 9, .edx = 1};
    t[I_LA] = (struct kvm_cpuid_entry2){.function = 0xa, .eax = 0x07300805, .ebx = 0,
                                        .ecx = 0, .edx = 0x603};
    for (unsigned i = 0; i < 3; i++) {
        /* Host: 2 threads/core, 24 logical per package, x2APIC id 0x35. */
        static const uint32_t ecx[3] = {0x100, 0x201, 0x002};
        t[I_LB_0 + i] = (struct kvm_cpuid_entry2){
            .function = 0xb, .index = i, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            .eax = i == 2 ? 0 : 1 + 4 * i, .ebx = i == 2 ? 0 : (i ? 24 : 2), .ecx = ecx[i],
            .edx = 0x35};
        t[I_L1F_0 + i] = t[I_LB_0 + i];
        t[I_L1F_0 + i].function = 0x1f;
    }
    t[I_X1] = (struct kvm_cpuid_entry2){.function = 0x80000001, .eax = 0x906ea,
                                        .ecx = CPUID_80000001_ECX_SVM | 0x1 | (1u << 5),
                                        .edx = (1u << 29) | (1u << 20)};
    t[I_KVM] = (struct kvm_cpuid_entry2){.function = 0x40000000, .eax = 0x40000001,
                                         .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d};
}

static void test_leaf1_for_vcpu3_of_4(void **state)
{
    struct kvm_cpuid_entry2 t[NR];
    const struct kvm_cpuid_entry2 *e;

    fake_table(t, L1_EDX_KEEP);
    cpuid_filter(t, NR, 3, 4);
    e = &t[I_L1];
    assert_int_equal(e->eax, 0x000906ea);
    assert_int_equal(e->ebx >> 24, 3);           /* initial APIC id */
    assert_int_equal((e->ebx >> 16) & 0xff, 4);  /* logical processors per package */
    assert_int_equal(e->ebx & 0xffff, 0x0801);   /* CLFLUSH size and brand kept */
    assert_true(e->edx & CPUID_1_EDX_HTT);
    assert_int_equal(e->edx & ~CPUID_1_EDX_HTT, L1_EDX_KEEP);
    assert_true(e->ecx & CPUID_1_ECX_HYPERVISOR);
    assert_false(e->ecx & CPUID_1_ECX_VMX);
    assert_false(e->ecx & CPUID_1_ECX_MONITOR);
    assert_int_equal(e->ecx & ~CPUID_1_ECX_HYPERVISOR, L1_ECX_KEEP);
}

static void test_single_vcpu_clears_htt(void **state)
{
    struct kvm_cpuid_entry2 t[NR];

    fake_table(t, L1_EDX_KEEP | CPUID_1_EDX_HTT);
    cpuid_filter(t, NR, 0, 1);
    assert_false(t[I_L1].edx & CPUID_1_EDX_HTT);
    assert_int_equal(t[I_L1].edx, L1_EDX_KEEP);
    assert_int_equal(t[I_L1].ebx >> 24, 0);
    assert_int_equal((t[I_L1].ebx >> 16) & 0xff, 1);
    /* One core: leaf 4 says so, leaf 0xb has one core at the core level. */
    assert_int_equal(t[I_L4_3].eax >> 26, 0);
    assert_int_equal(t[I_LB_1].eax & 0x1f, 0);
    assert_int_equal(t[I_LB_1].ebx & 0xffff, 1);
    assert_int_equal(t[I_LB_1].edx, 0);
}

static void test_hidden_features(void **state)
{
    struct kvm_cpuid_entry2 t[NR];

    fake_table(t, L1_EDX_KEEP);
    cpuid_filter(t, NR, 3, 4);
    /* PMU leaf: all zero (version 0 = no architectural PMU). */
    assert_int_equal(t[I_LA].eax, 0);
    assert_int_equal(t[I_LA].ebx, 0);
    assert_int_equal(t[I_LA].ecx, 0);
    assert_int_equal(t[I_LA].edx, 0);
    /* MONITOR/MWAIT leaf emptied too. */
    assert_int_equal(t[I_L5].eax | t[I_L5].ebx | t[I_L5].ecx | t[I_L5].edx, 0);
    /* Thermal/power: only ARAT survives. */
    assert_int_equal(t[I_L6].eax, CPUID_6_EAX_ARAT);
    assert_int_equal(t[I_L6].ebx | t[I_L6].ecx | t[I_L6].edx, 0);
    /* SVM gone, the rest of 0x80000001 kept. */
    assert_false(t[I_X1].ecx & CPUID_80000001_ECX_SVM);
    assert_int_equal(t[I_X1].ecx, 0x1 | (1u << 5));
    assert_int_equal(t[I_X1].edx, (1u << 29) | (1u << 20));
    assert_int_equal(t[I_X1].eax, 0x906ea);
}

static void test_untouched_leaves(void **state)
{
    struct kvm_cpuid_entry2 t[NR], orig[NR];

    fake_table(orig, L1_EDX_KEEP);
    memcpy(t, orig, sizeof(t));
    cpuid_filter(t, NR, 3, 4);
    assert_memory_equal(&t[I_L0], &orig[I_L0], sizeof(t[0]));
    assert_memory_equal(&t[I_KVM], &orig[I_KVM], sizeof(t[0]));
    /* The null cache descriptor ends the leaf-4 list and must stay null. */
    assert_memory_equal(&t[I_L4_4], &orig[I_L4_4], sizeof(t[0]));
    /* Identity fields of every entry are never rewritten. */
    for (unsigned i = 0; i < NR; i++) {
        assert_int_equal(t[i].function, orig[i].function);
        assert_int_equal(t[i].index, orig[i].index);
        assert_int_equal(t[i].flags, orig[i].flags);
    }
}

static void test_cache_leaf_topology(void **state)
{
    struct kvm_cpuid_entry2 t[NR], orig[NR];

    fake_table(orig, L1_EDX_KEEP);
    memcpy(t, orig, sizeof(t));
    cpuid_filter(t, NR, 3, 4);
    for (unsigned i = I_L4_0; i <= I_L4_3; i++) {
        unsigned level = (t[i].eax >> 5) & 7;

        /* Cache type, level and the other low bits are the host's. */
        assert_int_equal(t[i].eax & 0x3fff, orig[i].eax & 0x3fff);
        assert_int_equal(t[i].ebx, orig[i].ebx);
        assert_int_equal(t[i].ecx, orig[i].ecx);
        /* Cores per package - 1. */
        assert_int_equal(t[i].eax >> 26, 3);
        /* Logical CPUs sharing - 1: private L1/L2, L3 shared by all four. */
        assert_int_equal((t[i].eax >> 14) & 0xfff, level >= 3 ? 3 : 0);
    }
}

static void check_topology_leaf(const struct kvm_cpuid_entry2 *sub, unsigned vcpu,
                                unsigned nr_vcpus)
{
    unsigned core_shift;

    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(sub[i].edx, vcpu); /* x2APIC id at every level */
    /* Subleaf 0: SMT level, one thread per core. */
    assert_int_equal(sub[0].eax & 0x1f, 0);
    assert_int_equal(sub[0].ebx & 0xffff, 1);
    assert_int_equal((sub[0].ecx >> 8) & 0xff, 1);
    assert_int_equal(sub[0].ecx & 0xff, 0);
    /* Subleaf 1: core level, all vCPUs. */
    core_shift = sub[1].eax & 0x1f;
    assert_int_equal(sub[1].ebx & 0xffff, nr_vcpus);
    assert_int_equal((sub[1].ecx >> 8) & 0xff, 2);
    assert_int_equal(sub[1].ecx & 0xff, 1);
    /* The shift must leave every APIC id of the VM in package 0, and no more
     * bits than needed. */
    assert_int_equal((nr_vcpus - 1) >> core_shift, 0);
    if (nr_vcpus > 1) {
        assert_true(core_shift > 0);
        assert_true(((nr_vcpus - 1) >> (core_shift - 1)) != 0);
    }
    /* Subleaf 2: invalid level terminates the enumeration. */
    assert_int_equal(sub[2].eax, 0);
    assert_int_equal(sub[2].ebx & 0xffff, 0);
    assert_int_equal((sub[2].ecx >> 8) & 0xff, 0);
    assert_int_equal(sub[2].ecx & 0xff, 2);
}

static void test_topology_leaves(void **state)
{
    static const unsigned counts[] = {1, 2, 3, 4, 5, 8, 9, 32};

    for (unsigned c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        for (unsigned v = 0; v < counts[c]; v++) {
            struct kvm_cpuid_entry2 t[NR];

            fake_table(t, L1_EDX_KEEP);
            cpuid_filter(t, NR, v, counts[c]);
            check_topology_leaf(&t[I_LB_0], v, counts[c]);
            check_topology_leaf(&t[I_L1F_0], v, counts[c]);
            assert_int_equal(t[I_L1].ebx >> 24, v);
            /* 4 vCPUs -> 2 bits for the core id. */
            if (counts[c] == 4)
                assert_int_equal(t[I_LB_1].eax & 0x1f, 2);
        }
    }
}

static void test_find(void **state)
{
    struct kvm_cpuid_entry2 t[NR];

    fake_table(t, L1_EDX_KEEP);
    assert_ptr_equal(cpuid_find(t, NR, 0, 0), &t[I_L0]);
    assert_ptr_equal(cpuid_find(t, NR, 4, 3), &t[I_L4_3]);
    assert_ptr_equal(cpuid_find(t, NR, 0xb, 1), &t[I_LB_1]);
    assert_ptr_equal(cpuid_find(t, NR, 0x1f, 2), &t[I_L1F_2]);
    assert_ptr_equal(cpuid_find(t, NR, 0x40000000, 0), &t[I_KVM]);
    assert_null(cpuid_find(t, NR, 4, 5));         /* leaf present, subleaf not */
    assert_null(cpuid_find(t, NR, 0x80000008, 0)); /* absent leaf */
    assert_null(cpuid_find(t, NR, 1, 1));
    /* Only the first `nr` entries are searched. */
    assert_null(cpuid_find(t, I_KVM, 0x40000000, 0));
    assert_null(cpuid_find(t, 0, 0, 0));
    /* The result is the entry itself: writable in place. */
    cpuid_find(t, NR, 6, 0)->eax = 0;
    assert_int_equal(t[I_L6].eax, 0);
}

static void test_tsc_deadline(void **state)
{
    struct kvm_cpuid_entry2 t[NR], orig[NR];

    fake_table(orig, L1_EDX_KEEP);
    memcpy(t, orig, sizeof(t));
    /* KVM has the capability: bit 24 appears, nothing else in leaf 1 moves. */
    cpuid_set_tsc_deadline(t, NR, 1);
    assert_int_equal(t[I_L1].ecx, orig[I_L1].ecx | CPUID_1_ECX_TSC_DEADLINE);
    assert_int_equal(t[I_L1].ebx, orig[I_L1].ebx);
    assert_int_equal(t[I_L1].edx, orig[I_L1].edx);
    assert_memory_equal(&t[I_L0], &orig[I_L0], sizeof(t[0]));
    /* The per-vCPU filter keeps it. */
    cpuid_filter(t, NR, 1, 2);
    assert_true(t[I_L1].ecx & CPUID_1_ECX_TSC_DEADLINE);
    /* Setting twice is harmless; without the capability it is cleared. */
    cpuid_set_tsc_deadline(t, NR, 1);
    assert_true(t[I_L1].ecx & CPUID_1_ECX_TSC_DEADLINE);
    cpuid_set_tsc_deadline(t, NR, 0);
    assert_false(t[I_L1].ecx & CPUID_1_ECX_TSC_DEADLINE);
    /* No leaf 1 in the table (or an empty table): nothing is touched. */
    memcpy(t, orig, sizeof(t));
    cpuid_set_tsc_deadline(t, I_L1, 1);
    assert_memory_equal(t, orig, sizeof(t));
    cpuid_set_tsc_deadline(t, 0, 1);
    assert_memory_equal(t, orig, sizeof(t));
}

static void test_empty_table(void **state)
{
    struct kvm_cpuid_entry2 one = {.function = 1, .ebx = L1_EBX_HOST};

    cpuid_filter(&one, 0, 3, 4); /* nr = 0: nothing read or written */
    assert_int_equal(one.ebx, L1_EBX_HOST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf1_for_vcpu3_of_4),
        cmocka_unit_test(test_single_vcpu_clears_htt),
        cmocka_unit_test(test_hidden_features),
        cmocka_unit_test(test_untouched_leaves),
        cmocka_unit_test(test_cache_leaf_topology),
        cmocka_unit_test(test_topology_leaves),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_tsc_deadline),
        cmocka_unit_test(test_empty_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
