/*
 * Kernel loading: turns a kernel file plus command line and initrd into
 * guest memory contents and the vCPU state to start from. Two formats:
 * a Linux bzImage (x86 boot protocol, 64-bit entry; boot_linux.h) and an ELF
 * with a PVH entry note (boot_pvh.h). Everything read from the image is
 * checked; a malformed image gets a precise one-line reason.
 */
#ifndef HERD_BOOT_H
#define HERD_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "herd/e820.h"
#include "herd/error.h"
#include "herd/guest_mem.h"


enum boot_mode {
    BOOT_MODE_PVH,     /* 32-bit protected mode, paging off, ebx = start_info */
    BOOT_MODE_LINUX64, /* long mode, identity paging, rsi = zero page */
};

/* Where and how the boot vCPU starts. */
struct boot_entry {
    enum boot_mode mode;
    uint64_t rip;
    uint64_t boot_info; /* start_info (PVH) or boot_params (Linux) address */
    uint64_t kernel_end; /* first byte above the loaded kernel */
};

struct boot_args {
    const char *cmdline;    /* may be NULL: empty command line */
    const uint8_t *initrd;  /* may be NULL */
    size_t initrd_size;
    const struct e820_map *e820;
    uint64_t rsdp;          /* ACPI RSDP address, 0 if none */
};

enum kernel_format { KERNEL_FORMAT_UNKNOWN, KERNEL_FORMAT_BZIMAGE, KERNEL_FORMAT_ELF };

/* Names the kernel file's format from its magic numbers. */
enum kernel_format boot_kernel_format(const uint8_t *image, size_t len);

/* Loads `image` according to its format. */
int boot_load(const struct guest_mem *gm, const uint8_t *image, size_t len,
              const struct boot_args *args, struct boot_entry *entry, struct herd_err *err);

/* Helpers shared by both loaders. Each loader checks everything first
 * (the *_check / *_plan calls write nothing) and only then writes guest
 * memory, so a refused kernel, command line or initrd leaves RAM as it was. */

/* Fails with -E2BIG if the command line is longer than max_len bytes. */
int boot_check_cmdline(const char *cmdline, size_t max_len, struct herd_err *err);

/* Copies the checked command line (NUL-terminated) to LAYOUT_CMDLINE. */
int boot_write_cmdline(const struct guest_mem *gm, const char *cmdline);

/* Picks the initrd's place: page-aligned, as high as possible below `limit`
 * (0: no limit) and below the end of low RAM, above `floor`. */
int boot_plan_initrd(const struct guest_mem *gm, const struct boot_args *args, uint64_t floor,
                     uint64_t limit, uint64_t *addr, struct herd_err *err);

/* Copies the initrd to the planned address. */
int boot_write_initrd(const struct guest_mem *gm, const struct boot_args *args, uint64_t addr);

#endif
