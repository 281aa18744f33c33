/*
 * Tiny PVH guest that echoes its serial input: prints "E>" once, then copies
 * every byte received on COM1 back to COM1 until it receives 'q', then exits
 * through debug-exit with value 0 (status 1). Tests console input paths.
 */
    .text
    .code32
    .globl _start
_start:
    mov $0x3f8, %dx
    mov $'E', %al
    out %al, %dx
    mov $'>', %al
    out %al, %dx
1:  mov $0x3fd, %dx          /* LSR: wait for data ready */
    in %dx, %al
    test $1, %al
    jz 1b
    mov $0x3f8, %dx          /* RBR */
    in %dx, %al
    cmp $'q', %al
    je 2f
    out %al, %dx             /* THR: echo it */
    jmp 1b
2:  mov $0x501, %dx
    mov $0, %al
    out %al, %dx
3:  hlt
    jmp 3b
