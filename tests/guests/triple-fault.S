/*
 * Tiny PVH guest that triple-faults on purpose: it loads an empty IDT and
 * raises an exception, which becomes a double and then a triple fault.
 * herd-vmm must end with status 4 and print the vCPU registers.
 */
    .text
    .code32
    .globl _start
_start:
    mov $0x3f8, %dx
    mov $'T', %al
    out %al, %dx
    mov $0xdead, %esi        /* a marker the register dump must show */
    lidt idt_null
    ud2
idt_null:
    .word 0
    .long 0
