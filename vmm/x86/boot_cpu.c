/*
 * First vCPU state. PVH wants flat 32-bit protected mode with paging off;
 * the Linux 64-bit entry wants long mode with an identity map covering the
 * kernel, the zero page and the command line. Both get the same GDT so the
 * descriptors in memory always match the hidden segment state KVM is given.
 */
#include "herd/boot_cpu.h"

#include <errno.h>
#include <string.h>

#include "herd/layout.h"

#define GDT_ENTRIES 5
#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITE   (1ULL << 1)
#define PTE_HUGE    (1ULL << 7)

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, int code64)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = selector,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = code64 ? 0 : 1,
        .s = 1,
        .l = code64 ? 1 : 0,
        .g = 1,
    };
}

static struct kvm_segment code32_segment(void)
{
    return flat_segment(BOOT_SEL_CODE32, 0xb, 0); /* execute/read, accessed */
}

static struct kvm_segment code64_segment(void)
{
    return flat_segment(BOOT_SEL_CODE64, 0xb, 1);
}

static struct kvm_segment data_segment(void)
{
    return flat_segment(BOOT_SEL_DATA, 0x3, 0); /* read/write, accessed */
}

static struct kvm_segment tss_segment(void)
{
    return (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = BOOT_SEL_TSS, .type = 0xb, /* busy TSS */
        .present = 1, .s = 0,
    };
}

uint64_t boot_cpu_gdt_entry(const struct kvm_segment *seg)
{
    uint64_t limit = seg->g ? seg->limit >> 12 : seg->limit;
    uint64_t flags = (uint64_t)seg->type | ((uint64_t)seg->s << 4) | ((uint64_t)seg->dpl << 5) |
                     ((uint64_t)seg->present << 7) | ((uint64_t)seg->avl << 12) |
                     ((uint64_t)seg->l << 13) | ((uint64_t)seg->db << 14) |
                     ((uint64_t)seg->g << 15);

    return (limit & 0xffffULL) | ((seg->base & 0xffffffULL) << 16) | ((flags & 0xffULL) << 40) |
           (((limit >> 16) & 0xfULL) << 48) | (((flags >> 12) & 0xfULL) << 52) |
           (((seg->base >> 24) & 0xffULL) << 56);
}

static int write_gdt(const struct guest_mem *gm)
{
    struct kvm_segment c32 = code32_segment(), c64 = code64_segment(), data = data_segment(),
                       tss = tss_segment();
    uint64_t gdt[GDT_ENTRIES] = {
        0,
        boot_cpu_gdt_entry(&c32),
        boot_cpu_gdt_entry(&c64),
        boot_cpu_gdt_entry(&data),
        boot_cpu_gdt_entry(&tss),
    };
    uint64_t idt_null = 0;

    if (guest_mem_write(gm, LAYOUT_BOOT_GDT, gdt, sizeof(gdt)))
        return -EFAULT;
    return guest_mem_write(gm, LAYOUT_BOOT_IDT, &idt_null, sizeof(idt_null));
}

static int write_page_tables(const struct guest_mem *gm)
{
    uint64_t *pml4 = guest_mem_ptr(gm, LAYOUT_PML4, 4096);
    uint64_t *pdpt = guest_mem_ptr(gm, LAYOUT_PDPT, 4096);
    uint64_t *pd = guest_mem_ptr(gm, LAYOUT_PD, 4 * 4096);

    if (!pml4 || !pdpt || !pd)
        return -EFAULT;
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_PRESENT | PTE_WRITE;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i * 2 * MiB) | PTE_PRESENT | PTE_WRITE | PTE_HUGE;
    return 0;
}

int boot_cpu_write_tables(const struct guest_mem *gm)
{
    int rc = write_gdt(gm);

    return rc ? rc : write_page_tables(gm);
}

void boot_cpu_sregs(const struct boot_entry *entry, struct kvm_sregs *sregs)
{
    struct kvm_segment data = data_segment();

    sregs->gdt.base = LAYOUT_BOOT_GDT;
    sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
    sregs->idt.base = LAYOUT_BOOT_IDT;
    sregs->idt.limit = 0;
    sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
    sregs->tr = tss_segment();
    sregs->ldt = (struct kvm_segment){.limit = 0xffff, .type = 0x2, .present = 1};

    if (entry->mode == BOOT_MODE_LINUX64) {
        sregs->cs = code64_segment();
        sregs->cr3 = LAYOUT_PML4;
        sregs->cr4 = X86_CR4_PAE;
        sregs->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
        sregs->efer = X86_EFER_LME | X86_EFER_LMA;
    } else {
        sregs->cs = code32_segment();
        sregs->cr3 = 0;
        sregs->cr4 = 0;
        sregs->cr0 = X86_CR0_PE | X86_CR0_ET;
        sregs->efer = 0;
    }
}

void boot_cpu_regs(const struct boot_entry *entry, struct kvm_regs *regs)
{
    memset(regs, 0, sizeof(*regs));
    regs->rflags = 0x2; /* reserved bit 1; interrupts off */
    regs->rip = entry->rip;
    if (entry->mode == BOOT_MODE_LINUX64) {
        regs->rsi = entry->boot_info;
        regs->rsp = LAYOUT_BOOT_STACK;
    } else {
        regs->rbx = entry->boot_info;
    }
}
