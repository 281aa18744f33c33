/*
 * Linux x86 boot protocol (Documentation/arch/x86/boot.rst): bzImage
 * setup header checks, protected-mode kernel at 1 MiB, the zero page
 * (struct boot_params) with command line, initrd and e820 table, and entry
 * at the 64-bit entry point (load address + 0x200).
 */
#ifndef HERD_BOOT_LINUX_H
#define HERD_BOOT_LINUX_H

#include "herd/boot.h"
#include "herd/error.h"

/* The oldest protocol with a 64-bit entry point (xloadflags). */
#define LINUX_MIN_PROTOCOL 0x020c

int linux_load(const struct guest_mem *gm, const uint8_t *image, size_t len,
               const struct boot_args *args, struct boot_entry *entry, struct herd_err *err);

#endif
