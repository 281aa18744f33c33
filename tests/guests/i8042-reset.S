/*
 * Tiny PVH guest that resets the machine the way Linux does with reboot=k:
 * command 0xfe to the i8042 command port. herd-vmm must end with status 0.
 */
    .text
    .code32
    .globl _start
_start:
    mov $0x3f8, %dx
    mov $'R', %al
    out %al, %dx
    mov $0x64, %dx
    mov $0xfe, %al
    out %al, %dx
1:  hlt
    jmp 1b
