/*
 * Boot vCPU state: GDT descriptor encoding, the GDT and identity page tables
 * in guest memory (decoded and walked the way the CPU does), and the
 * registers for PVH and the Linux 64-bit entry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "herd/boot.h"
#include "herd/boot_cpu.h"
#include "herd/guest_mem.h"
#include "herd/layout.h"

#define RAM  (16 * MiB)
#define FILL 0xcc

struct ctx {
    uint8_t *ram;
    struct guest_mem gm;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    c->ram = malloc(RAM);
    if (!c->ram || guest_mem_init_buffer(&c->gm, c->ram, RAM))
        return -1;
    memset(c->ram, FILL, RAM);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    free(c->ram);
    free(c);
    return 0;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

/* ---- descriptor encoding ------------------------------------------------ */

static void test_gdt_entry_known_descriptors(void **state)
{
    struct kvm_segment code64 = {.limit = 0xffffffff, .type = 0xb, .present = 1, .s = 1,
                                 .l = 1, .g = 1};
    struct kvm_segment data = {.limit = 0xffffffff, .type = 0x3, .present = 1, .s = 1,
                               .db = 1, .g = 1};
    struct kvm_segment code32 = {.limit = 0xffffffff, .type = 0xb, .present = 1, .s = 1,
                                 .db = 1, .g = 1};
    struct kvm_segment tss = {.limit = 0x67, .type = 0xb, .present = 1};
    /* Byte-granular, DPL 3, AVL, with every base and limit byte distinct. */
    struct kvm_segment odd = {.base = 0x12345678, .limit = 0xabcde, .type = 0x3, .present = 1,
                              .s = 1, .dpl = 3, .avl = 1, .db = 1};
    struct kvm_segment absent = {.limit = 0xffff, .type = 0x3, .s = 1};

    assert_int_equal(boot_cpu_gdt_entry(&code64), 0x00af9b000000ffffULL);
    assert_int_equal(boot_cpu_gdt_entry(&data), 0x00cf93000000ffffULL);
    assert_int_equal(boot_cpu_gdt_entry(&code32), 0x00cf9b000000ffffULL);
    assert_int_equal(boot_cpu_gdt_entry(&tss), 0x00008b0000000067ULL);
    assert_int_equal(boot_cpu_gdt_entry(&odd), 0x125af3345678bcdeULL);
    assert_int_equal(boot_cpu_gdt_entry(&absent), 0x000013000000ffffULL);
}

/* ---- decode what the CPU would load -------------------------------------- */

struct desc {
    uint64_t base;
    uint32_t limit; /* in bytes - 1, after granularity */
    unsigned type, s, dpl, present, avl, l, db, g;
};

static struct desc decode(uint64_t d)
{
    struct desc r = {
        .base = ((d >> 16) & 0xffffff) | ((d >> 56) & 0xff) << 24,
        .limit = (uint32_t)((d & 0xffff) | ((d >> 48) & 0xf) << 16),
        .type = (d >> 40) & 0xf,
        .s = (d >> 44) & 1,
        .dpl = (d >> 45) & 3,
        .present = (d >> 47) & 1,
        .avl = (d >> 52) & 1,
        .l = (d >> 53) & 1,
        .db = (d >> 54) & 1,
        .g = (d >> 55) & 1,
    };

    if (r.g)
        r.limit = (r.limit << 12) | 0xfff;
    return r;
}

static void assert_matches_gdt(const struct ctx *c, const struct kvm_sregs *sr,
                               const struct kvm_segment *seg, uint16_t sel)
{
    struct desc d;

    assert_int_equal(seg->selector, sel);
    assert_true(sel + 7u <= sr->gdt.limit);
    d = decode(rd64(c->ram + sr->gdt.base + sel));
    assert_int_equal(d.base, seg->base);
    assert_int_equal(d.limit, seg->limit);
    assert_int_equal(d.type, seg->type);
    assert_int_equal(d.s, seg->s);
    assert_int_equal(d.dpl, seg->dpl);
    assert_int_equal(d.present, seg->present);
    assert_int_equal(d.l, seg->l);
    assert_int_equal(d.db, seg->db);
    assert_int_equal(d.g, seg->g);
}

static void check_gdt_matches_sregs(struct ctx *c, enum boot_mode mode)
{
    struct boot_entry e = {.mode = mode, .rip = 0x100000, .boot_info = 0x7000};
    struct kvm_sregs sr;

    memset(&sr, 0, sizeof(sr));
    boot_cpu_sregs(&e, &sr);
    assert_int_equal(sr.gdt.base, LAYOUT_BOOT_GDT);
    assert_int_equal(sr.gdt.limit, 5 * 8 - 1);
    assert_int_equal(rd64(c->ram + LAYOUT_BOOT_GDT), 0); /* null descriptor */
    assert_matches_gdt(c, &sr, &sr.cs, mode == BOOT_MODE_LINUX64 ? BOOT_SEL_CODE64
                                                                 : BOOT_SEL_CODE32);
    assert_matches_gdt(c, &sr, &sr.ds, BOOT_SEL_DATA);
    assert_matches_gdt(c, &sr, &sr.es, BOOT_SEL_DATA);
    assert_matches_gdt(c, &sr, &sr.fs, BOOT_SEL_DATA);
    assert_matches_gdt(c, &sr, &sr.gs, BOOT_SEL_DATA);
    assert_matches_gdt(c, &sr, &sr.ss, BOOT_SEL_DATA);
    assert_matches_gdt(c, &sr, &sr.tr, BOOT_SEL_TSS);
    /* Flat 4 GiB segments; TR a busy 64-bit TSS, a system descriptor. */
    assert_int_equal(sr.ds.base, 0);
    assert_int_equal(sr.ds.limit, 0xffffffff);
    assert_int_equal(sr.ds.type & 0xa, 0x2); /* data, writable */
    assert_int_equal(sr.cs.type & 0x8, 0x8); /* code */
    assert_int_equal(sr.tr.type, 0xb);
    assert_int_equal(sr.tr.s, 0);
    /* Empty IDT: interrupts are off until the guest sets its own. */
    assert_int_equal(sr.idt.base, LAYOUT_BOOT_IDT);
    assert_int_equal(sr.idt.limit, 0);
}

static void test_gdt_matches_sregs(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(boot_cpu_write_tables(&c->gm), 0);
    check_gdt_matches_sregs(c, BOOT_MODE_PVH);
    check_gdt_matches_sregs(c, BOOT_MODE_LINUX64);
    /* The 64-bit code descriptor really is L=1, D=0 (D=1 with L=1 is #GP). */
    {
        struct desc d = decode(rd64(c->ram + LAYOUT_BOOT_GDT + BOOT_SEL_CODE64));

        assert_int_equal(d.l, 1);
        assert_int_equal(d.db, 0);
    }
}

/* ---- page tables -------------------------------------------------------- */

#define PTE_P  (1ULL << 0)
#define PTE_W  (1ULL << 1)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define ADDR_MASK 0x000ffffffffff000ULL

/* Walks 4-level paging from cr3; returns 0 and the physical address, or -1
 * if the address is not mapped. Checks every level is present+writable. */
static int walk(const struct ctx *c, uint64_t cr3, uint64_t va, uint64_t *pa)
{
    uint64_t pml4e, pdpte, pde;

    pml4e = rd64(c->ram + (cr3 & ADDR_MASK) + ((va >> 39) & 511) * 8);
    if (!(pml4e & PTE_P))
        return -1;
    assert_true(pml4e & PTE_W);
    assert_false(pml4e & PTE_PS);
    assert_true((pml4e & ADDR_MASK) + 4096 <= RAM);
    pdpte = rd64(c->ram + (pml4e & ADDR_MASK) + ((va >> 30) & 511) * 8);
    if (!(pdpte & PTE_P))
        return -1;
    assert_true(pdpte & PTE_W);
    assert_false(pdpte & PTE_PS); /* no 1 GiB pages: not every CPU has them */
    assert_true((pdpte & ADDR_MASK) + 4096 <= RAM);
    pde = rd64(c->ram + (pdpte & ADDR_MASK) + ((va >> 21) & 511) * 8);
    if (!(pde & PTE_P))
        return -1;
    assert_true(pde & PTE_W);
    assert_true(pde & PTE_PS); /* 2 MiB page */
    assert_false(pde & PTE_NX);
    assert_int_equal(pde & 0x1fe000ULL, 0); /* reserved bits of a 2 MiB PDE */
    *pa = (pde & 0x000fffffffe00000ULL) | (va & 0x1fffff);
    return 0;
}

static void test_identity_map_0_to_4g(void **state)
{
    struct ctx *c = *state;
    static const uint64_t probes[] = {
        0, 0x7000, 0x9fc00, 0x100000, 0x100200, 0x1fffff, 0x200000, 0x12345678,
        0xbfffffff, 0xc0000000, 0xfec00000, 0xfee00000, 0xfee000f0, 0xffffffff,
    };
    uint64_t pa;

    assert_int_equal(boot_cpu_write_tables(&c->gm), 0);
    for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        assert_int_equal(walk(c, LAYOUT_PML4, probes[i], &pa), 0);
        assert_int_equal(pa, probes[i]);
    }
    /* Every 2 MiB page below 4 GiB, and nothing above. */
    for (uint64_t va = 0; va < 4 * GiB; va += 2 * MiB) {
        assert_int_equal(walk(c, LAYOUT_PML4, va + 0x1234, &pa), 0);
        assert_int_equal(pa, va + 0x1234);
    }
    assert_int_equal(walk(c, LAYOUT_PML4, 4 * GiB, &pa), -1);
    assert_int_equal(walk(c, LAYOUT_PML4, 512 * GiB, &pa), -1);
    assert_int_equal(walk(c, LAYOUT_PML4, 0xffffffff80000000ULL, &pa), -1);
}

static void test_tables_leave_boot_data_alone(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(boot_cpu_write_tables(&c->gm), 0);
    /* start_info/memmap, zero page, stack page, command line untouched. */
    for (uint64_t a = LAYOUT_PVH_START_INFO; a < LAYOUT_PML4; a++)
        assert_int_equal(c->ram[a], FILL);
    for (uint64_t a = LAYOUT_PD + 4 * 4096; a < LAYOUT_PD + 8 * 4096; a++)
        assert_int_equal(c->ram[a], FILL);
    assert_int_equal(c->ram[LAYOUT_CMDLINE], FILL);
    assert_int_equal(c->ram[LAYOUT_BOOT_GDT - 1], FILL);
    assert_int_equal(c->ram[LAYOUT_KERNEL_START], FILL);
}

static void test_tables_need_ram(void **state)
{
    struct ctx *c = *state;
    struct guest_mem gm = c->gm;

    gm.slots[0].size = LAYOUT_BOOT_GDT + 8; /* not even the GDT fits */
    assert_int_equal(boot_cpu_write_tables(&gm), -EFAULT);
    for (uint64_t a = 0; a < 0x10000; a++)
        assert_int_equal(c->ram[a], FILL);
    gm.slots[0].size = LAYOUT_PD + 4096; /* PDs 1-3 are not RAM */
    assert_int_equal(boot_cpu_write_tables(&gm), -EFAULT);
    /* No half-built page tables: PML4, PDPT and PD 0 are all still unwritten. */
    for (uint64_t a = LAYOUT_PML4; a < LAYOUT_PD + 4096; a++)
        assert_int_equal(c->ram[a], FILL);
}

/* ---- registers ------------------------------------------------------------ */

static void test_pvh_registers(void **state)
{
    struct boot_entry e = {.mode = BOOT_MODE_PVH, .rip = 0x1000850,
                           .boot_info = LAYOUT_PVH_START_INFO};
    struct kvm_sregs sr;
    struct kvm_regs r;

    memset(&sr, 0, sizeof(sr));
    sr.apic_base = 0xfee00900; /* KVM's value must survive */
    sr.cr0 = X86_CR0_PG;        /* and stale ones must not */
    sr.cr4 = X86_CR4_PAE;
    sr.efer = X86_EFER_LME | X86_EFER_LMA;
    boot_cpu_sregs(&e, &sr);
    assert_true(sr.cr0 & X86_CR0_PE);
    assert_false(sr.cr0 & X86_CR0_PG);
    assert_false(sr.cr4 & X86_CR4_PAE);
    assert_false(sr.efer & (X86_EFER_LME | X86_EFER_LMA));
    assert_int_equal(sr.cs.l, 0);
    assert_int_equal(sr.cs.db, 1); /* 32-bit code */
    assert_int_equal(sr.cs.selector, BOOT_SEL_CODE32);
    assert_int_equal(sr.cs.base, 0);
    assert_int_equal(sr.cs.limit, 0xffffffff);
    assert_int_equal(sr.apic_base, 0xfee00900);

    memset(&r, 0xee, sizeof(r));
    boot_cpu_regs(&e, &r);
    assert_int_equal(r.rip, 0x1000850);
    assert_int_equal(r.rbx, LAYOUT_PVH_START_INFO);
    assert_int_equal(r.rflags, 0x2); /* IF clear */
    assert_int_equal(r.rsi, 0);
    assert_int_equal(r.rax, 0);
}

static void test_linux64_registers(void **state)
{
    struct boot_entry e = {.mode = BOOT_MODE_LINUX64, .rip = 0x100200,
                           .boot_info = LAYOUT_ZERO_PAGE};
    struct kvm_sregs sr;
    struct kvm_regs r;

    memset(&sr, 0, sizeof(sr));
    sr.apic_base = 0xfee00900;
    boot_cpu_sregs(&e, &sr);
    assert_true(sr.cr0 & X86_CR0_PE);
    assert_true(sr.cr0 & X86_CR0_PG);
    assert_true(sr.cr4 & X86_CR4_PAE);
    assert_true(sr.efer & X86_EFER_LME);
    assert_true(sr.efer & X86_EFER_LMA);
    assert_int_equal(sr.cr3, LAYOUT_PML4);
    assert_int_equal(sr.cs.l, 1);
    assert_int_equal(sr.cs.db, 0);
    assert_int_equal(sr.cs.selector, BOOT_SEL_CODE64);
    assert_int_equal(sr.ds.selector, BOOT_SEL_DATA);
    assert_int_equal(sr.apic_base, 0xfee00900);

    memset(&r, 0xee, sizeof(r));
    boot_cpu_regs(&e, &r);
    assert_int_equal(r.rip, 0x100200);
    assert_int_equal(r.rsi, LAYOUT_ZERO_PAGE);
    assert_int_equal(r.rflags, 0x2);
    assert_int_equal(r.rsp, LAYOUT_BOOT_STACK);
    assert_int_equal(r.rbx, 0);
    assert_int_equal(r.rbp, 0);
    /* The stack sits in RAM below the page tables and above the zero page. */
    assert_true(r.rsp <= LAYOUT_PML4 && r.rsp > LAYOUT_ZERO_PAGE + 4096);
    assert_int_equal(r.rsp % 16, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gdt_entry_known_descriptors),
        cmocka_unit_test_setup_teardown(test_gdt_matches_sregs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_map_0_to_4g, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_leave_boot_data_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_need_ram, setup, teardown),
        cmocka_unit_test(test_pvh_registers),
        cmocka_unit_test(test_linux64_registers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
