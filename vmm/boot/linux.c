/*
 * Linux x86 boot protocol loader for bzImage files, using the 64-bit entry
 * point: the VMM plays the part of the real-mode setup code, so the guest
 * never runs 16-bit code (which on an emulating host would be very slow).
 */
#include "herd/boot_linux.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "herd/layout.h"

#define SETUP_HEADER_OFFSET 0x1f1
#define BOOT_FLAG_MAGIC     0xAA55
#define HDRS_MAGIC          0x53726448 /* "HdrS" */
#define DEFAULT_SETUP_SECTS 4
#define ENTRY64_OFFSET      0x200
#define LOADER_TYPE_UNKNOWN 0xff
#define OLD_CMDLINE_MAX     255
#define OLD_INITRD_ADDR_MAX 0x37ffffffULL

/* The setup header as it appears in the file, bounds-checked. */
struct bzimage {
    struct setup_header hdr;
    size_t header_len;     /* bytes of header present in the file */
    size_t setup_size;     /* real-mode part, including the boot sector */
    const uint8_t *kernel; /* protected-mode part */
    size_t kernel_size;
};

static int parse_header(const uint8_t *image, size_t len, struct bzimage *bz, struct herd_err *err)
{
    unsigned setup_sects;

    if (len < 0x202 + 2 + 4)
        return herd_err_set(err, -ENOEXEC, "",
                            "bzImage: file of %zu bytes is too short for a setup header", len);
    memset(bz, 0, sizeof(*bz));
    /* The byte at 0x201 is the jump offset that skips the header: its end. */
    bz->header_len = (size_t)0x202 + image[0x201] - SETUP_HEADER_OFFSET;
    if (bz->header_len > sizeof(bz->hdr))
        bz->header_len = sizeof(bz->hdr);
    if (bz->header_len > len - SETUP_HEADER_OFFSET)
        return herd_err_set(err, -ENOEXEC, "",
                            "bzImage: setup header runs past the end of the %zu-byte file", len);
    memcpy(&bz->hdr, image + SETUP_HEADER_OFFSET, bz->header_len);

    if (bz->hdr.boot_flag != BOOT_FLAG_MAGIC)
        return herd_err_set(err, -ENOEXEC, "", "bzImage: boot_flag is %#x, expected 0xaa55",
                            bz->hdr.boot_flag);
    if (bz->hdr.header != HDRS_MAGIC)
        return herd_err_set(err, -ENOEXEC, "", "bzImage: no \"HdrS\" signature at offset 0x202");
    if (bz->hdr.version < LINUX_MIN_PROTOCOL) {
        herd_err_set(err, -ENOEXEC, "",
                     "bzImage: boot protocol %u.%02u has no 64-bit entry point (need %u.%02u+)",
                     bz->hdr.version >> 8, bz->hdr.version & 0xff, LINUX_MIN_PROTOCOL >> 8,
                     LINUX_MIN_PROTOCOL & 0xff);
        return -ENOEXEC;
    }
    if (!(bz->hdr.xloadflags & XLF_KERNEL_64))
        return herd_err_set(err, -ENOEXEC, "",
                            "bzImage: xloadflags lack XLF_KERNEL_64 (not a 64-bit kernel)");
    if (!(bz->hdr.loadflags & LOADED_HIGH))
        return herd_err_set(err, -ENOEXEC, "",
                            "bzImage: loadflags lack LOADED_HIGH (zImage kernels unsupported)");
    setup_sects = bz->hdr.setup_sects ? bz->hdr.setup_sects : DEFAULT_SETUP_SECTS;
    bz->setup_size = (size_t)(setup_sects + 1) * 512;
    if (bz->setup_size >= len)
        return herd_err_set(err, -ENOEXEC, "",
                            "bzImage: setup_sects=%u runs past the end of the %zu-byte file",
                            setup_sects, len);
    bz->kernel = image + bz->setup_size;
    bz->kernel_size = len - bz->setup_size;
    if (bz->kernel_size <= ENTRY64_OFFSET)
        return herd_err_set(err, -ENOEXEC, "",
                            "bzImage: protected-mode part of %zu bytes holds no 64-bit entry",
                            bz->kernel_size);
    return 0;
}

static uint64_t kernel_footprint(const struct bzimage *bz)
{
    uint64_t init = bz->hdr.init_size;

    return init > bz->kernel_size ? init : bz->kernel_size;
}

static int check_kernel_fits(const struct guest_mem *gm, const struct bzimage *bz,
                             struct herd_err *err)
{
    uint64_t footprint = kernel_footprint(bz);

    if (!guest_mem_ptr(gm, LAYOUT_KERNEL_START, footprint)) {
        herd_err_set(err, -ENOMEM, "",
                     "bzImage: kernel needs %llu KiB from 1 MiB (init_size) but guest RAM below "
                     "the MMIO hole ends at %llu KiB; give it more --mem",
                     (unsigned long long)(footprint / KiB),
                     (unsigned long long)(guest_mem_low_end(gm) / KiB));
        return -ENOMEM;
    }
    return 0;
}

static void fill_e820(struct boot_params *zp, const struct e820_map *map)
{
    unsigned n = map->nr < E820_MAX_ENTRIES_ZEROPAGE ? map->nr : E820_MAX_ENTRIES_ZEROPAGE;

    for (unsigned i = 0; i < n; i++) {
        zp->e820_table[i].addr = map->entries[i].addr;
        zp->e820_table[i].size = map->entries[i].size;
        zp->e820_table[i].type = map->entries[i].type;
    }
    zp->e820_entries = (uint8_t)n;
}

static int plan_initrd(const struct guest_mem *gm, const struct bzimage *bz,
                       const struct boot_args *args, uint64_t *addr, struct herd_err *err)
{
    uint64_t max = bz->hdr.version >= 0x203 ? bz->hdr.initrd_addr_max : OLD_INITRD_ADDR_MAX;

    *addr = 0;
    if (!args->initrd || !args->initrd_size)
        return 0;
    return boot_plan_initrd(gm, args, LAYOUT_KERNEL_START + kernel_footprint(bz), max + 1, addr,
                            err);
}

static void fill_zero_page(struct boot_params *zp, const struct bzimage *bz,
                           const struct boot_args *args, uint64_t initrd_addr)
{
    memset(zp, 0, sizeof(*zp));
    memcpy(&zp->hdr, &bz->hdr, bz->header_len);
    /* Fields a boot loader owns: whatever the file carried there is not ours
     * to pass on (no initrd, no setup_data list unless we build one). */
    zp->hdr.ramdisk_image = zp->hdr.ramdisk_size = 0;
    zp->hdr.setup_data = 0;
    zp->hdr.type_of_loader = LOADER_TYPE_UNKNOWN;
    zp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
    zp->ext_cmd_line_ptr = 0;
    zp->hdr.code32_start = (uint32_t)LAYOUT_KERNEL_START;
    zp->acpi_rsdp_addr = args->rsdp; /* protocol 2.14+; older kernels scan */
    fill_e820(zp, args->e820);
    if (initrd_addr) {
        zp->hdr.ramdisk_image = (uint32_t)initrd_addr;
        zp->hdr.ramdisk_size = (uint32_t)args->initrd_size;
        zp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
        zp->ext_ramdisk_size = (uint32_t)((uint64_t)args->initrd_size >> 32);
    }
}

int linux_load(const struct guest_mem *gm, const uint8_t *image, size_t len,
               const struct boot_args *args, struct boot_entry *entry, struct herd_err *err)
{
    struct boot_params *zp = guest_mem_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*zp));
    uint64_t initrd_addr;
    struct bzimage bz;
    int rc;

    if (!zp)
        return herd_err_set(err, -EFAULT, "", "no RAM for the zero page");
    /* Everything is checked before anything is written. */
    rc = parse_header(image, len, &bz, err);
    if (!rc)
        rc = check_kernel_fits(gm, &bz, err);
    if (!rc)
        rc = boot_check_cmdline(args->cmdline,
                                bz.hdr.version >= 0x206 ? bz.hdr.cmdline_size : OLD_CMDLINE_MAX,
                                err);
    if (!rc)
        rc = plan_initrd(gm, &bz, args, &initrd_addr, err);
    if (rc)
        return rc;

    if (guest_mem_write(gm, LAYOUT_KERNEL_START, bz.kernel, bz.kernel_size) ||
        boot_write_cmdline(gm, args->cmdline) ||
        (initrd_addr && boot_write_initrd(gm, args, initrd_addr))) {
        return herd_err_set(err, -EFAULT, "",
                            "bzImage: internal error: a checked range is not RAM");
    }
    fill_zero_page(zp, &bz, args, initrd_addr);

    entry->mode = BOOT_MODE_LINUX64;
    entry->rip = LAYOUT_KERNEL_START + ENTRY64_OFFSET;
    entry->boot_info = LAYOUT_ZERO_PAGE;
    entry->kernel_end = LAYOUT_KERNEL_START + kernel_footprint(&bz);
    return 0;
}
