/*
 * Reads PVH start_info or Linux boot_params into struct bootinfo. The loader
 * is a separate program and its data is input: every pointer and count is
 * range-checked before use, and the command line is copied out with a bound.
 */
#include "bootinfo.h"

#include "cpl0.h"
#include "lib.h"

#define HVM_START_MAGIC 0x336ec578
#define HVM_START_INFO_SIZE 56 /* through memmap_entries + reserved (v1) */
#define HVM_MEMMAP_ENTRY_SIZE 24

/* boot_params offsets (Linux boot protocol, "zero page"). */
#define BP_SIZE 4096
#define BP_ACPI_RSDP 0x070
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_BOOT_FLAG 0x1fe
#define BP_HDR_MAGIC 0x202
#define BP_HDR_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define BP_E820_ENTRY_SIZE 20
#define BP_E820_MAX 128

/* Physical addresses the probe may dereference: below the 3 GiB MMIO hole
 * (everything is identity mapped up to 4 GiB; above 3 GiB is devices). */
#define PHYS_READ_LIMIT 0xc0000000ULL

static bool readable(uint64_t pa, uint64_t len)
{
    return pa < PHYS_READ_LIMIT && len <= PHYS_READ_LIMIT - pa;
}

static void set_err(struct bootinfo *bi, const char *msg, uint64_t v)
{
    if (!bi->err[0])
        snprintf(bi->err, sizeof(bi->err), "%s 0x%lx", msg, (unsigned long)v);
}

static void add_range(struct bootinfo *bi, const char *what, uint64_t addr, uint64_t size)
{
    if (bi->nranges < ARRAY_SIZE(bi->ranges))
        bi->ranges[bi->nranges++] = (struct bootrange){ what, addr, size };
}

/* Copy the NUL-terminated command line at pa, at most `max` bytes + NUL. */
static void read_cmdline(struct bootinfo *bi, uint64_t pa, uint32_t max)
{
    if (pa == 0)
        return;
    if (max > CMDLINE_MAX - 1)
        max = CMDLINE_MAX - 1;
    if (!readable(pa, max + 1ULL)) {
        set_err(bi, "cmdline outside readable memory at", pa);
        return;
    }
    uint32_t n = 0;
    while (n < max && rd8(pa + n))
        n++;
    if (n == max && rd8(pa + n)) {
        set_err(bi, "cmdline not terminated within its maximum, at", pa);
        return;
    }
    memcpy(bi->cmdline, phys(pa), n);
    bi->cmdline[n] = '\0';
    bi->cmdline_len = n;
    bi->cmdline_present = true;
    add_range(bi, "cmdline", pa, n + 1ULL);
}

static void read_pvh(struct bootinfo *bi, uint64_t info)
{
    if (!readable(info, HVM_START_INFO_SIZE)) {
        set_err(bi, "start_info outside readable memory at", info);
        return;
    }
    uint32_t magic = rd32(info + 0), version = rd32(info + 4);
    if (magic != HVM_START_MAGIC) {
        set_err(bi, "bad start_info magic", magic);
        return;
    }
    add_range(bi, "start_info", info, version >= 1 ? HVM_START_INFO_SIZE : 48);
    /* hvm_start_info: magic, version, flags, nr_modules, modlist_paddr,
     * cmdline_paddr (0x18), rsdp_paddr (0x20), memmap_paddr (0x28),
     * memmap_entries (0x30), reserved. */
    read_cmdline(bi, rd64(info + 0x18), CMDLINE_MAX - 1);
    bi->rsdp_paddr = rd64(info + 0x20);
    if (version < 1) {
        set_err(bi, "start_info version without a memory map:", version);
        return;
    }
    uint64_t mm = rd64(info + 0x28);
    uint32_t n = rd32(info + 0x30);
    if (n == 0 || n > MEMMAP_MAX) {
        set_err(bi, "bad memmap_entries", n);
        return;
    }
    if (!readable(mm, (uint64_t)n * HVM_MEMMAP_ENTRY_SIZE)) {
        set_err(bi, "memmap outside readable memory at", mm);
        return;
    }
    add_range(bi, "memmap", mm, (uint64_t)n * HVM_MEMMAP_ENTRY_SIZE);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = mm + (uint64_t)i * HVM_MEMMAP_ENTRY_SIZE;
        bi->mem[i] = (struct memrange){ rd64(e), rd64(e + 8), rd32(e + 16) };
    }
    bi->nmem = n;
}

static void read_linux(struct bootinfo *bi, uint64_t bp)
{
    if (!readable(bp, BP_SIZE)) {
        set_err(bi, "boot_params outside readable memory at", bp);
        return;
    }
    add_range(bi, "boot_params", bp, BP_SIZE);
    /* The loader copies the image's setup header into boot_params, so the
     * header magic must be there (Linux boot protocol). */
    if (rd32(bp + BP_HDR_MAGIC) != 0x53726448) /* "HdrS" */
        set_err(bi, "boot_params without the setup header (HdrS), got", rd32(bp + BP_HDR_MAGIC));
    else if (rd16(bp + BP_HDR_BOOT_FLAG) != 0xaa55)
        set_err(bi, "boot_params setup header boot_flag is", rd16(bp + BP_HDR_BOOT_FLAG));
    uint64_t cmd = rd32(bp + BP_HDR_CMD_LINE_PTR) | ((uint64_t)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32);
    read_cmdline(bi, cmd, CMDLINE_MAX - 1);
    bi->rsdp_paddr = rd64(bp + BP_ACPI_RSDP);
    uint32_t n = rd8(bp + BP_E820_ENTRIES);
    if (n == 0 || n > BP_E820_MAX) {
        set_err(bi, "bad e820_entries", n);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = bp + BP_E820_TABLE + (uint64_t)i * BP_E820_ENTRY_SIZE;
        bi->mem[i] = (struct memrange){ rd64(e), rd64(e + 8), rd32(e + 16) };
    }
    bi->nmem = n;
}

void bootinfo_read(struct bootinfo *bi, int via, uint64_t info)
{
    memset(bi, 0, sizeof(*bi));
    bi->via = via;
    bi->info_paddr = info;
    if (via == BOOT_PVH)
        read_pvh(bi, info);
    else if (via == BOOT_LINUX)
        read_linux(bi, info);
    else
        set_err(bi, "unknown boot path", (uint64_t)via);
}
