/* PVH ELF note shared by the tiny test guests: 32-bit entry at _start. */
    .section .note.Xen, "a"
    .balign 4
    .long 4, 4, 18          /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start
