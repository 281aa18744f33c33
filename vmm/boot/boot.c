/*
 * What both kernel loaders share: telling the formats apart by their magic
 * numbers (kernel files only; disk images are never probed), the command
 * line, and where the initrd goes.
 */
#include "herd/boot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "herd/boot_linux.h"
#include "herd/boot_pvh.h"
#include "herd/layout.h"

#define PAGE_SIZE 4096ULL

enum kernel_format boot_kernel_format(const uint8_t *image, size_t len)
{
    if (len >= 4 && memcmp(image, "\x7f" "ELF", 4) == 0)
        return KERNEL_FORMAT_ELF;
    if (len >= 0x206 && memcmp(image + 0x202, "HdrS", 4) == 0)
        return KERNEL_FORMAT_BZIMAGE;
    return KERNEL_FORMAT_UNKNOWN;
}

int boot_load(const struct guest_mem *gm, const uint8_t *image, size_t len,
              const struct boot_args *args, struct boot_entry *entry, struct herd_err *err)
{
    switch (boot_kernel_format(image, len)) {
    case KERNEL_FORMAT_ELF:
        return pvh_load(gm, image, len, args, entry, err);
    case KERNEL_FORMAT_BZIMAGE:
        return linux_load(gm, image, len, args, entry, err);
    default:
        return herd_err_set(err, -ENOEXEC, "",
                            "not a kernel herd-vmm can boot: neither an ELF (PVH) nor a bzImage "
                            "(no \"HdrS\" setup header at offset 0x202)");
    }
}

int boot_check_cmdline(const char *cmdline, size_t max_len, struct herd_err *err)
{
    size_t len = cmdline ? strlen(cmdline) : 0;

    if (max_len > LAYOUT_CMDLINE_MAX - 1)
        max_len = LAYOUT_CMDLINE_MAX - 1;
    if (len > max_len)
        return herd_err_set(err, -E2BIG, "",
                            "command line is %zu bytes, this kernel accepts at most %zu", len,
                            max_len);
    return 0;
}

int boot_write_cmdline(const struct guest_mem *gm, const char *cmdline)
{
    const char *s = cmdline ? cmdline : "";
    size_t len = strlen(s);

    if (len > LAYOUT_CMDLINE_MAX - 1)
        return -E2BIG;
    return guest_mem_write(gm, LAYOUT_CMDLINE, s, len + 1);
}

int boot_plan_initrd(const struct guest_mem *gm, const struct boot_args *args, uint64_t floor,
                     uint64_t limit, uint64_t *addr, struct herd_err *err)
{
    uint64_t top = guest_mem_low_end(gm);
    uint64_t size = args->initrd_size;
    uint64_t start;

    if (limit && limit < top)
        top = limit;
    floor = (floor + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (size == 0 || size > top || top - size < floor)
        return herd_err_set(err, -ENOMEM, "",
                            "initrd of %zu bytes does not fit in guest RAM between %#llx and %#llx "
                            "(give the guest more --mem)", args->initrd_size,
                            (unsigned long long)floor, (unsigned long long)top);
    start = (top - size) & ~(PAGE_SIZE - 1);
    if (!guest_mem_ptr(gm, start, size))
        return herd_err_set(err, -EFAULT, "", "initrd range %#llx+%#llx is not RAM",
                            (unsigned long long)start, (unsigned long long)size);
    *addr = start;
    return 0;
}

int boot_write_initrd(const struct guest_mem *gm, const struct boot_args *args, uint64_t addr)
{
    return guest_mem_write(gm, addr, args->initrd, args->initrd_size);
}
