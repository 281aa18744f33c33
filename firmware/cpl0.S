/*
 * The probe's CPL0 handlers: 256 IDT stubs, the ud2 call dispatcher (the
 * CPL3 code's only way to do port I/O, hlt, cpuid and MSR access), the
 * counting interrupt handler and the crash reporter.
 *
 * CPL0 runs in KVM's instruction emulator on the PVM host (~2-4 us per
 * instruction, not every form accepted), so the hot paths are a handful of
 * plain instructions with register-indirect operands, and the ud2 ABI lets
 * the handler clobber the caller-saved registers instead of saving them
 * (see cpl0.h).
 */
#include "cpl0.h"

#define PORT_SERIAL 0x3f8
#define PORT_DEBUG_EXIT 0x501
#define LAPIC_EOI 0xfee000b0

    .text
    .code64

/* Stub v sits at isr_stubs + 16 * v (the IDT in tables.S relies on it).
 * Exceptions without an error code push a 0 so every frame looks alike. */
    .balign 4096
    .globl isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .org isr_stubs + 16 * vec, 0xcc /* fails if a stub outgrew 16 bytes */
    .if vec == 6
    jmp ud_entry                    /* ud2 call: no push, fast path */
    .elseif vec >= VEC_FIRST_IRQ
    pushq $vec
    jmp irq_entry
    .else
    .if (vec != 8) && (vec != 10) && (vec != 11) && (vec != 12) && (vec != 13) && (vec != 14) && (vec != 17) && (vec != 21) && (vec != 29) && (vec != 30)
    pushq $0
    .endif
    pushq $vec
    jmp fault_entry
    .endif
    .set vec, vec + 1
    .endr
    .org isr_stubs + 16 * 256, 0xcc
    .globl isr_stubs_end
isr_stubs_end:

/* ---- ud2 calls ------------------------------------------------------
 * Frame: 0(rsp) rip, 8 cs, 16 rflags, 24 rsp, 32 ss. */
ud_entry:
    testb $3, 8(%rsp)
    jz   ud_bad                     /* ud2 at CPL0 is a probe bug */
    movq (%rsp), %rcx
    cmpw $0x0b0f, (%rcx)            /* really a ud2, not some other #UD? */
    jne  ud_bad
    addq $2, %rcx
    movq %rcx, (%rsp)
    cmpq $OP_COUNT, %rax
    jae  ud_bad
    movl $ud_table, %ecx
    jmp  *(%rcx,%rax,8)

ud_bad:
    pushq $0
    pushq $6
    jmp  fault_entry

    .section .rodata
    .balign 8
ud_table:
    .quad op_outb, op_outw, op_outl, op_inb, op_inw, op_inl, op_write
    .quad op_wait, op_idle, op_exit, op_cpuid, op_rdmsr, op_wrmsr, op_setif
ud_table_end:
    .text

op_outb:
    movl %edi, %edx
    movl %esi, %eax
    outb %al, %dx
    xorl %eax, %eax
    iretq
op_outw:
    movl %edi, %edx
    movl %esi, %eax
    outw %ax, %dx
    xorl %eax, %eax
    iretq
op_outl:
    movl %edi, %edx
    movl %esi, %eax
    outl %eax, %dx
    xorl %eax, %eax
    iretq
op_inb:
    movl %edi, %edx
    xorl %eax, %eax
    inb  %dx, %al
    iretq
op_inw:
    movl %edi, %edx
    xorl %eax, %eax
    inw  %dx, %ax
    iretq
op_inl:
    movl %edi, %edx
    inl  %dx, %eax
    iretq

/* One exit per byte either way; looping here saves a ud2 round trip per
 * byte. The buffer is CPL3 memory (all pages are user pages, no SMAP). */
op_write:
    movq %rdx, %rcx
    movl %edi, %edx
    testq %rcx, %rcx
    jz   2f
1:  movb (%rsi), %al
    outb %al, %dx
    incq %rsi
    decq %rcx
    jnz  1b
2:  xorl %eax, %eax
    iretq

/* sti's one-instruction shadow keeps an interrupt from slipping in before
 * the hlt; the interrupt is handled on this stack (same CPL) and returns
 * here past the hlt. */
op_wait:
    sti
    hlt
    cli
    xorl %eax, %eax
    iretq

op_exit:
    movl %edi, %eax
    movl $PORT_DEBUG_EXIT, %edx
    outb %al, %dx
    /* no debug-exit device: fall into idle */
op_idle:
    cli
1:  hlt
    jmp  1b

op_cpuid:
    movl %edi, %eax
    movl %esi, %ecx
    cpuid
    iretq

op_rdmsr:
    movl %edi, %ecx
    rdmsr
    shlq $32, %rdx
    orq  %rdx, %rax
    iretq

op_wrmsr:
    movl %edi, %ecx
    movl %esi, %eax
    movq %rsi, %rdx
    shrq $32, %rdx
    wrmsr
    xorl %eax, %eax
    iretq

op_setif:
    movq 16(%rsp), %rcx
    andq $~0x200, %rcx
    testq %rdi, %rdi
    jz   1f
    orq  $0x200, %rcx
1:  movq %rcx, 16(%rsp)
    xorl %eax, %eax
    iretq

/* ---- interrupts -----------------------------------------------------
 * Count per vector, EOI the LAPIC (not for the spurious vector), return.
 * Frame: 0(rsp) vector, 8 rip, ... */
irq_entry:
    pushq %rax
    pushq %rcx
    movq 16(%rsp), %rax
    movl $irq_counts, %ecx
    shlq $3, %rax
    addq %rax, %rcx
    incq (%rcx)
    cmpq $(VEC_SPURIOUS * 8), %rax
    je   1f
    movl $LAPIC_EOI, %eax
    movl $0, (%rax)                 /* register-indirect: the emulator
                                       refuses the absolute form */
1:  popq %rcx
    popq %rax
    addq $8, %rsp
    iretq

/* ---- crashes --------------------------------------------------------
 * Frame: 0(rsp) vector, 8 error code, 16 rip, 24 cs, 32 rflags, 40 rsp.
 * Prints "herd-probe: CRASH vector V error E rip R cs C rsp S cr2 A" and
 * exits with EXIT_CRASH. Slow (hundreds of emulated instructions), but only
 * ever runs once. */
fault_entry:
    movl $PORT_SERIAL, %edx
    movl $crash_msg, %esi
    call put_str
    movq (%rsp), %rax
    call put_hex
    movl $crash_err, %esi
    call put_str
    movq 8(%rsp), %rax
    call put_hex
    movl $crash_rip, %esi
    call put_str
    movq 16(%rsp), %rax
    call put_hex
    movl $crash_cs, %esi
    call put_str
    movq 24(%rsp), %rax
    call put_hex
    movl $crash_rsp, %esi
    call put_str
    movq 40(%rsp), %rax
    call put_hex
    movl $crash_cr2, %esi
    call put_str
    movq %cr2, %rax
    call put_hex
    movb $'\n', %al
    outb %al, %dx
    movl $EXIT_CRASH, %edi
    jmp  op_exit

/* Print the NUL-terminated string at rsi to port dx. */
put_str:
1:  movb (%rsi), %al
    testb %al, %al
    jz   2f
    outb %al, %dx
    incq %rsi
    jmp  1b
2:  ret

/* Print rax as 0x-prefixed hex, leading zeros dropped, to port dx. */
put_hex:
    movq %rax, %rdi
    movb $'0', %al
    outb %al, %dx
    movb $'x', %al
    outb %al, %dx
    movl $60, %ecx
    xorl %r8d, %r8d                 /* nonzero once a digit was printed */
1:  movq %rdi, %rax
    shrq %cl, %rax
    andl $0xf, %eax
    testl %ecx, %ecx
    jz   2f                         /* always print the last digit */
    orl  %eax, %r8d
    jz   3f
2:  movl $hexdigits, %esi
    addq %rax, %rsi
    movb (%rsi), %al
    outb %al, %dx
3:  subl $4, %ecx
    jns  1b
    ret

    .section .rodata
crash_msg: .asciz "\nherd-probe: CRASH vector "
crash_err: .asciz " error "
crash_rip: .asciz " rip "
crash_cs:  .asciz " cs "
crash_rsp: .asciz " rsp "
crash_cr2: .asciz " cr2 "
hexdigits: .ascii "0123456789abcdef"
