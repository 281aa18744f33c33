/*
 * herd-probe entry points and the CPL0 bring-up: from whatever state a boot
 * loader leaves us in to 64-bit CPL3 with our own GDT, TSS, IDT and identity
 * page tables (all prebuilt at link time in tables.S, so this file only loads
 * them).
 *
 * Entry points (the image is linked to run at 0x100000 only):
 *   0x100000  Linux 32-bit boot protocol (code32_start): protected mode,
 *             paging off, esi = struct boot_params.
 *   0x100200  Linux 64-bit boot protocol: long mode, identity paging,
 *             rsi = struct boot_params.
 *   pvh_start PVH (ELF note XEN_ELFNOTE_PHYS32_ENTRY): protected mode,
 *             paging off, ebx = struct hvm_start_info, no stack.
 *
 * Everything here runs at CPL0, which the PVM host executes through KVM's
 * instruction emulator (slow and incomplete), so the code is a short run of
 * plain instructions with register-indirect memory operands only, no
 * absolute-address (SIB, no base) forms, and no stack use before we set
 * our own.
 * The boot type and info pointer ride in edi/esi all the way to CPL3.
 */
#include "cpl0.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20

/* The PVH entry note, read by QEMU and herd-vmm from the PT_NOTE segment. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                         /* namesz: "Xen\0" */
    .long 4                         /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start

    .section .text.head, "ax", @progbits
    .code32
    .globl linux32_start
linux32_start:                      /* 0x100000: code32_start */
    cli
    movl $BOOT_LINUX, %edi
    jmp  common32

    /* Linux boot protocol 2.15 kernel_info, at a fixed offset so the
     * bzImage header can point at it (header kernel_info_offset). */
    .org 0x100
    .globl kernel_info
kernel_info:
    .ascii "LToP"                   /* magic */
    .long  kernel_info_end - kernel_info /* size */
    .long  kernel_info_end - kernel_info /* size_total */
    .long  0                        /* setup_type_max */
kernel_info_end:

    .org 0x200
    .code64
    .globl linux64_start
linux64_start:                      /* 0x100200: 64-bit entry, rsi = boot_params */
    cli
    movl $BOOT_LINUX, %edi
    jmp  reload64

    .text
    .code32
    .globl pvh_start
pvh_start:
    cli
    movl %ebx, %esi
    movl $BOOT_PVH, %edi
    /* fall through */

/* 32-bit protected mode, paging off: enter long mode on our tables. */
common32:
    movl $gdt_desc, %eax
    lgdt (%eax)
    movl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl  $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl  $(CR0_PG | CR0_PE), %eax
    movl %eax, %cr0
    ljmp $SEL_KCODE, $from32

    .code64
from32:
    /* Upper register halves are undefined after the mode switch. */
    movl %edi, %edi
    movl %esi, %esi
    /* fall through: the PVH path also runs the 64-bit entry's reload, so
     * QEMU exercises every instruction the Linux 64-bit path uses. */

/* 64-bit, any identity-mapped paging and GDT: switch to ours. */
reload64:
    /* Our stack first: PVH gives none (rsp may well be 0) and the CS reload
     * below pushes. */
    movl $cpl0_stack_top, %esp
    movl $gdt_desc, %eax
    lgdt (%rax)
    /* Exactly PAE: drops SMEP/SMAP a loader may have left on (our pages are
     * all user pages, and CPL0 executes them). */
    movl $CR4_PAE, %eax
    movq %rax, %cr4
    movl $pml4, %eax
    movq %rax, %cr3
    pushq $SEL_KCODE
    pushq $1f
    lretq
1:
    movl $SEL_KDATA, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    /* ltr faults on a busy TSS; if this image is entered a second time
     * (a VMM reset without reloading it), the descriptor still says busy. */
    movl $(gdt + SEL_TSS + 5), %eax
    movb $0x89, (%rax)
    movl $SEL_TSS, %eax
    ltr  %ax
    movl $idt_desc, %eax
    lidt (%rax)
    /* iretq to CPL3 with IF=0; tests that want interrupts turn IF on with
     * OP_SETIF. rdi/rsi (boot type, info pointer) survive the iretq. */
    pushq $SEL_UDATA
    pushq $cpl3_stack_top
    pushq $0x2
    pushq $SEL_UCODE
    pushq $cpl3_start
    iretq

/* CPL3 from here on. */
cpl3_start:
    call probe_main
    movl $OP_EXIT, %eax
    movl $EXIT_CRASH, %edi
    ud2
