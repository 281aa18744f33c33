/*
 * The probe's CPU tables, complete at link time: GDT (with 64-bit user
 * segments and a TSS), TSS (rsp0), IDT (256 interrupt gates into the stubs
 * of cpl0.S), identity page tables for 0-4 GiB and the two stacks.
 *
 * Building them here instead of at run time keeps the emulated CPL0 boot
 * path to a few dozen instructions. Descriptor fields that split an address
 * into pieces (TSS base, IDT gate offsets) are computed by the linker script
 * (probe.ld) and referenced as absolute symbols.
 */
#include "cpl0.h"

    .section .data.tables, "aw", @progbits

    .balign 4096
    .globl pml4
pml4:
    .quad pdpt + 0x7                /* present, writable, user */
    .fill 511, 8, 0

    .balign 4096
pdpt:
    .quad pd + 0x0000 + 0x7
    .quad pd + 0x1000 + 0x7
    .quad pd + 0x2000 + 0x7
    .quad pd + 0x3000 + 0x7
    .fill 508, 8, 0

    /* 2048 x 2 MiB pages = 0-4 GiB, present|writable|user|PS. The top GiB
     * (MMIO: boot marker, IOAPIC, LAPIC) is also PCD|PWT. User access is on
     * everywhere because the tests (CPL3) touch RAM, boot data and MMIO. */
    .balign 4096
pd:
    .set addr, 0
    .rept 2048
    .if addr >= 0xc0000000
    .quad addr + 0x9f
    .else
    .quad addr + 0x87
    .endif
    .set addr, addr + 0x200000
    .endr

    .balign 16
    .globl gdt
gdt:
    .quad 0                         /* 0x00 null */
    .quad 0x00af9a000000ffff        /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff        /* 0x10 kernel data */
    .quad 0x00cff2000000ffff        /* 0x18 user data (DPL 3) */
    .quad 0x00affa000000ffff        /* 0x20 user code, 64-bit (DPL 3) */
    .quad tss_desc_lo               /* 0x28 TSS (16 bytes in long mode) */
    .quad tss_desc_hi
gdt_end:

    .balign 16
    .globl gdt_desc
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt                       /* lgdt in 32-bit mode reads the low half */

    .balign 16
    .globl tss
tss:
    .long 0
    .quad cpl0_stack_top            /* rsp0: stack for CPL3 -> CPL0 events */
    .fill 11, 8, 0                  /* rsp1, rsp2, reserved, ist1-7, reserved */
    .word 0
    .word 104                       /* I/O map base past the limit: no bitmap */
tss_end:

    .balign 16
    .globl idt_desc
idt_desc:
    .word 256 * 16 - 1
    .quad idt

    /* Gate v points at isr_stubs + 16 * v; idt_gate_lo is the gate for
     * isr_stubs itself. Adding 16 * v stays inside the low offset word
     * because probe.ld asserts the stubs don't cross a 64 KiB boundary. */
    .balign 4096
    .globl idt
idt:
    .set vec, 0
    .rept 256
    .quad idt_gate_lo + 16 * vec
    .quad 0
    .set vec, vec + 1
    .endr

    .globl irq_counts
    .balign 64
irq_counts:
    .fill 256, 8, 0

    /* Stacks: interrupts and ud2 calls from CPL3 land on the CPL0 stack
     * (TSS rsp0); the tests run on the CPL3 stack. */
    .balign 4096
cpl0_stack:
    .fill 8192, 1, 0
    .globl cpl0_stack_top
cpl0_stack_top:
cpl3_stack:
    .fill 32768, 1, 0
    .globl cpl3_stack_top
cpl3_stack_top:
