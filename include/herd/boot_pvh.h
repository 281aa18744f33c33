/*
 * PVH boot (Xen's x86/HVM direct boot ABI, also used by QEMU, Firecracker and
 * Cloud Hypervisor): an ELF64 whose note XEN_ELFNOTE_PHYS32_ENTRY (type 18,
 * name "Xen") gives a 32-bit entry point; the kernel gets struct
 * hvm_start_info in ebx with command line, modules (initrd) and memory map.
 */
#ifndef HERD_BOOT_PVH_H
#define HERD_BOOT_PVH_H

#include "herd/boot.h"
#include "herd/error.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC          0x336ec578u

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

/* Finds the PVH entry in an ELF image; 0 or -ENOEXEC with a reason. */
int pvh_find_entry(const uint8_t *image, size_t len, uint32_t *entry, struct herd_err *err);

int pvh_load(const struct guest_mem *gm, const uint8_t *image, size_t len,
             const struct boot_args *args, struct boot_entry *entry, struct herd_err *err);

#endif
