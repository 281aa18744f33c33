/*
 * PVH loader: ELF64 program headers are copied to their physical addresses,
 * the entry comes from the XEN_ELFNOTE_PHYS32_ENTRY note, and the guest gets
 * hvm_start_info (version 1: with memory map) in ebx. Every offset and size
 * in the file is checked before use.
 */
#include "herd/boot_pvh.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "herd/layout.h"

#define PVH_MODLIST (LAYOUT_PVH_MEMMAP + E820_MAX_ENTRIES * sizeof(struct hvm_memmap_table_entry))
#define MAX_PHDRS   64

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(LAYOUT_PVH_START_INFO + sizeof(struct hvm_start_info) <= LAYOUT_PVH_MEMMAP,
               "start_info overlaps the memory map");
_Static_assert(PVH_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_ZERO_PAGE,
               "PVH module list overlaps the zero page");

/* [off, off+size) inside a buffer of len bytes, without overflow. */
static int in_file(uint64_t off, uint64_t size, size_t len)
{
    return off <= len && size <= len - off;
}

static int check_ehdr(const uint8_t *image, size_t len, const Elf64_Ehdr **out,
                      struct herd_err *err)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)image;

    if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return herd_err_set(err, -ENOEXEC, "", "ELF: not an ELF file");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64)
        return herd_err_set(err, -ENOEXEC, "",
                            "ELF: class %u is not ELFCLASS64 (32-bit PVH images unsupported)",
                            eh->e_ident[EI_CLASS]);
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
        return herd_err_set(err, -ENOEXEC, "",
                            "ELF: not a little-endian x86-64 image (e_machine %u)", eh->e_machine);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS ||
        !in_file(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len)) {
        return herd_err_set(err, -ENOEXEC, "",
                            "ELF: program header table (off %#llx, %u x %u bytes) is invalid",
                            (unsigned long long)eh->e_phoff, eh->e_phnum, eh->e_phentsize);
    }
    if (eh->e_phoff % 8)
        return herd_err_set(err, -ENOEXEC, "", "ELF: program header table is misaligned");
    *out = eh;
    return 0;
}

static const Elf64_Phdr *phdrs(const uint8_t *image, const Elf64_Ehdr *eh)
{
    return (const Elf64_Phdr *)(image + eh->e_phoff);
}

/* Walks one PT_NOTE segment; returns 1 and the entry if it holds the note. */
static int scan_notes(const uint8_t *p, uint64_t size, uint32_t *entry, struct herd_err *err)
{
    uint64_t off = 0;

    while (size - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        uint64_t name_len, desc_len;

        memcpy(&nh, p + off, sizeof(nh));
        off += sizeof(nh);
        name_len = ((uint64_t)nh.n_namesz + 3) & ~3ULL;
        desc_len = ((uint64_t)nh.n_descsz + 3) & ~3ULL;
        if (name_len > size - off || desc_len > size - off - name_len)
            return herd_err_set(err, -ENOEXEC, "", "ELF: note runs past the end of its segment");
        if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
            memcmp(p + off, "Xen", 4) == 0) {
            uint64_t value = 0;

            if (nh.n_descsz != 4 && nh.n_descsz != 8)
                return herd_err_set(err, -ENOEXEC, "", "ELF: PVH entry note has %u-byte value",
                                    nh.n_descsz);
            memcpy(&value, p + off + name_len, nh.n_descsz);
            if (value > UINT32_MAX)
                return herd_err_set(err, -ENOEXEC, "", "ELF: PVH entry %#llx is above 4 GiB",
                                    (unsigned long long)value);
            *entry = (uint32_t)value;
            return 1;
        }
        off += name_len + desc_len;
    }
    return 0;
}

int pvh_find_entry(const uint8_t *image, size_t len, uint32_t *entry, struct herd_err *err)
{
    const Elf64_Ehdr *eh = NULL;
    int rc = check_ehdr(image, len, &eh, err);

    if (rc)
        return rc;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = &phdrs(image, eh)[i];

        if (ph->p_type != PT_NOTE)
            continue;
        if (!in_file(ph->p_offset, ph->p_filesz, len))
            return herd_err_set(err, -ENOEXEC, "", "ELF: note segment %u lies outside the file", i);
        rc = scan_notes(image + ph->p_offset, ph->p_filesz, entry, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return 0;
    }
    return herd_err_set(err, -ENOEXEC, "",
                        "ELF: no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); a Linux vmlinux needs "
                        "CONFIG_PVH=y");
}

/* Checks one PT_LOAD segment against the file and guest RAM; writes nothing. */
static int check_segment(const struct guest_mem *gm, size_t len, const Elf64_Phdr *ph,
                         unsigned idx, struct herd_err *err)
{
    if (ph->p_filesz > ph->p_memsz || !in_file(ph->p_offset, ph->p_filesz, len))
        return herd_err_set(err, -ENOEXEC, "",
                            "ELF: segment %u (offset %#llx, filesz %#llx, memsz %#llx) is "
                            "invalid", idx, (unsigned long long)ph->p_offset,
                            (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
    if (ph->p_paddr < LAYOUT_KERNEL_START)
        return herd_err_set(err, -ENOEXEC, "",
                            "ELF: segment %u at %#llx is below 1 MiB, where herd-vmm keeps "
                            "boot structures", idx, (unsigned long long)ph->p_paddr);
    if (!guest_mem_ptr(gm, ph->p_paddr, ph->p_memsz)) {
        herd_err_set(err, -ENOMEM, "",
                     "ELF: segment %u (%#llx+%#llx) does not fit in guest RAM; give it more --mem",
                     idx, (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
        return -ENOMEM;
    }
    return 0;
}

static int is_loadable(const Elf64_Phdr *ph)
{
    return ph->p_type == PT_LOAD && ph->p_memsz != 0;
}

/* Validates every loadable segment and the entry; computes the kernel end. */
static int check_segments(const struct guest_mem *gm, const uint8_t *image, size_t len,
                          uint32_t entry, uint64_t *kernel_end, struct herd_err *err)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)image;
    int entry_inside = 0, loadable = 0;

    *kernel_end = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = &phdrs(image, eh)[i];
        int rc;

        if (!is_loadable(ph))
            continue;
        rc = check_segment(gm, len, ph, i, err);
        if (rc)
            return rc;
        loadable++;
        if (ph->p_paddr + ph->p_memsz > *kernel_end)
            *kernel_end = ph->p_paddr + ph->p_memsz;
        if (entry >= ph->p_paddr && entry - ph->p_paddr < ph->p_filesz)
            entry_inside = 1;
    }
    if (!loadable)
        return herd_err_set(err, -ENOEXEC, "", "ELF: no loadable segment");
    if (!entry_inside)
        return herd_err_set(err, -ENOEXEC, "",
                            "ELF: PVH entry %#x is not inside any loaded segment", entry);
    return 0;
}

/* Copies the (already checked) segments and zeroes their bss parts. */
static void write_segments(const struct guest_mem *gm, const uint8_t *image)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)image;

    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = &phdrs(image, eh)[i];
        uint8_t *dst;

        if (!is_loadable(ph))
            continue;
        dst = guest_mem_ptr(gm, ph->p_paddr, ph->p_memsz);
        memcpy(dst, image + ph->p_offset, ph->p_filesz);
        memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    }
}

static int write_start_info(const struct guest_mem *gm, const struct boot_args *args,
                            uint64_t initrd_addr)
{
    struct hvm_start_info si = {
        .magic = HVM_START_MAGIC,
        .version = 1,
        .cmdline_paddr = LAYOUT_CMDLINE,
        .memmap_paddr = LAYOUT_PVH_MEMMAP,
        .memmap_entries = args->e820->nr,
        .rsdp_paddr = args->rsdp,
    };

    for (unsigned i = 0; i < args->e820->nr; i++) {
        struct hvm_memmap_table_entry me = {
            .addr = args->e820->entries[i].addr,
            .size = args->e820->entries[i].size,
            .type = args->e820->entries[i].type,
        };

        if (guest_mem_write(gm, LAYOUT_PVH_MEMMAP + i * sizeof(me), &me, sizeof(me)))
            return -EFAULT;
    }
    if (initrd_addr) {
        struct hvm_modlist_entry mod = {.paddr = initrd_addr, .size = args->initrd_size};

        if (guest_mem_write(gm, PVH_MODLIST, &mod, sizeof(mod)) ||
            boot_write_initrd(gm, args, initrd_addr))
            return -EFAULT;
        si.nr_modules = 1;
        si.modlist_paddr = PVH_MODLIST;
    }
    return guest_mem_write(gm, LAYOUT_PVH_START_INFO, &si, sizeof(si));
}

int pvh_load(const struct guest_mem *gm, const uint8_t *image, size_t len,
             const struct boot_args *args, struct boot_entry *entry, struct herd_err *err)
{
    uint64_t kernel_end, initrd_addr = 0;
    uint32_t pvh_entry;
    int rc;

    /* Everything is checked before anything is written. */
    rc = pvh_find_entry(image, len, &pvh_entry, err);
    if (!rc)
        rc = check_segments(gm, image, len, pvh_entry, &kernel_end, err);
    if (!rc)
        rc = boot_check_cmdline(args->cmdline, LAYOUT_CMDLINE_MAX - 1, err);
    if (!rc && args->initrd && args->initrd_size)
        rc = boot_plan_initrd(gm, args, kernel_end, 0, &initrd_addr, err);
    if (rc)
        return rc;

    write_segments(gm, image);
    if (boot_write_cmdline(gm, args->cmdline) || write_start_info(gm, args, initrd_addr))
        return herd_err_set(err, -EFAULT, "", "no RAM for the PVH start_info");
    entry->mode = BOOT_MODE_PVH;
    entry->rip = pvh_entry;
    entry->boot_info = LAYOUT_PVH_START_INFO;
    entry->kernel_end = kernel_end;
    return 0;
}
