/*
 * libFuzzer target: the kernel loaders (boot_load: PVH ELF and bzImage) over
 * buffer-backed guest RAM, with arbitrary image bytes, command line and
 * initrd size.
 *
 * Input layout (all of it chosen by the fuzzer):
 *   byte 0     guest RAM size: 2, 4, 8 or 16 MiB (low two bits)
 *   byte 1     flags: bit 0 no initrd, bit 1 NULL command line, bit 2 RSDP
 *   bytes 2-3  command line length (little endian), taken from the end
 *   bytes 4-6  initrd size in bytes (little endian, 24 bits)
 *   byte 7     reserved
 *   bytes 8-   the kernel image, then the command line bytes
 *
 * Beyond "no sanitizer report", it checks the loaders' contract:
 *   - a refused kernel, command line or initrd leaves guest RAM as it was;
 *   - a refusal comes with a message;
 *   - an accepted kernel lies inside low RAM, its entry point inside RAM, the
 *     command line is in place, and the initrd (if any) is in RAM above the
 *     kernel and holds the initrd bytes;
 *   - unless FUZZ_BOOT_STRICT=0: a bzImage booted without an initrd gets no
 *     initrd, and no setup_data list, from fields the image itself carries.
 */
#include <asm/bootparam.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "herd/boot.h"
#include "herd/boot_pvh.h"
#include "herd/e820.h"
#include "herd/guest_mem.h"
#include "herd/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RAM    (16u << 20)
#define MAX_INITRD (1u << 24)
#define FILL       0xa5

static uint8_t *ram, *initrd;
static char *cmdline_buf;
static bool strict;

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_boot: contract broken: %s: ", #cond);             \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void setup(void)
{
    ram = mmap(NULL, MAX_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    initrd = mmap(NULL, MAX_INITRD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cmdline_buf = malloc(0x10000 + 1);
    if (ram == MAP_FAILED || initrd == MAP_FAILED || !cmdline_buf)
        abort();
    const char *st = getenv("FUZZ_BOOT_STRICT");
    strict = !(st && strcmp(st, "0") == 0); /* on unless FUZZ_BOOT_STRICT=0 */
    memset(ram, FILL, MAX_RAM);
    for (size_t i = 0; i < MAX_INITRD; i++)
        initrd[i] = (uint8_t)(i * 13 + 5);
}

/* Index of the first byte that is not FILL, or n (a page at a time). */
static size_t first_changed(const uint8_t *p, size_t n)
{
    static uint8_t fill_page[4096];

    if (!fill_page[0])
        memset(fill_page, FILL, sizeof(fill_page));
    for (size_t off = 0; off < n; off += sizeof(fill_page)) {
        size_t len = n - off < sizeof(fill_page) ? n - off : sizeof(fill_page);
        if (memcmp(p + off, fill_page, len) == 0)
            continue;
        for (size_t i = off; i < off + len; i++)
            if (p[i] != FILL)
                return i;
    }
    return n;
}

static void check_loaded(const struct guest_mem *gm, const struct boot_args *args,
                         const struct boot_entry *e, uint64_t ram_size)
{
    uint64_t low_end = guest_mem_low_end(gm);
    uint64_t initrd_addr = 0, initrd_size = 0;

    FUZZ_ASSERT(e->kernel_end > LAYOUT_KERNEL_START && e->kernel_end <= low_end,
                "kernel_end %#llx, low RAM ends at %#llx", (unsigned long long)e->kernel_end,
                (unsigned long long)low_end);
    FUZZ_ASSERT(guest_mem_ptr(gm, e->rip, 1) != NULL, "entry %#llx is not RAM",
                (unsigned long long)e->rip);
    const char *cl = guest_mem_ptr(gm, LAYOUT_CMDLINE, 1);
    FUZZ_ASSERT(cl && strcmp(cl, args->cmdline ? args->cmdline : "") == 0,
                "command line not in place");
    if (e->mode == BOOT_MODE_LINUX64) {
        const struct boot_params *zp = guest_mem_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*zp));
        FUZZ_ASSERT(zp && e->boot_info == LAYOUT_ZERO_PAGE, "zero page");
        initrd_addr = zp->hdr.ramdisk_image | (uint64_t)zp->ext_ramdisk_image << 32;
        initrd_size = zp->hdr.ramdisk_size | (uint64_t)zp->ext_ramdisk_size << 32;
    } else {
        const struct hvm_start_info *si = guest_mem_ptr(gm, LAYOUT_PVH_START_INFO, sizeof(*si));
        FUZZ_ASSERT(si && si->magic == HVM_START_MAGIC && e->boot_info == LAYOUT_PVH_START_INFO,
                    "start_info");
        FUZZ_ASSERT(si->memmap_entries == args->e820->nr, "memmap entries");
        if (si->nr_modules) {
            const struct hvm_modlist_entry *m =
                guest_mem_ptr(gm, si->modlist_paddr, sizeof(*m));
            FUZZ_ASSERT(m, "module list %#llx is not RAM",
                        (unsigned long long)si->modlist_paddr);
            initrd_addr = m->paddr;
            initrd_size = m->size;
        }
    }
    if (args->initrd && args->initrd_size) {
        FUZZ_ASSERT(initrd_size == args->initrd_size, "initrd size %llu, given %zu",
                    (unsigned long long)initrd_size, args->initrd_size);
        FUZZ_ASSERT(initrd_addr % 4096 == 0 && initrd_addr >= e->kernel_end &&
                        initrd_addr + initrd_size <= low_end,
                    "initrd at %#llx+%#llx, kernel ends at %#llx, low RAM at %#llx",
                    (unsigned long long)initrd_addr, (unsigned long long)initrd_size,
                    (unsigned long long)e->kernel_end, (unsigned long long)low_end);
        const uint8_t *p = guest_mem_ptr(gm, initrd_addr, initrd_size);
        FUZZ_ASSERT(p && memcmp(p, args->initrd, initrd_size) == 0, "initrd bytes");
    } else if (strict || e->mode == BOOT_MODE_PVH) {
        FUZZ_ASSERT(initrd_size == 0, "initrd of %llu bytes without one",
                    (unsigned long long)initrd_size);
    }
    if (strict && e->mode == BOOT_MODE_LINUX64) {
        const struct boot_params *zp = guest_mem_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*zp));
        FUZZ_ASSERT(zp->hdr.setup_data == 0, "setup_data %#llx passed on from the image",
                    (unsigned long long)zp->hdr.setup_data);
    }
    (void)ram_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t ram_sizes[4] = {2u << 20, 4u << 20, 8u << 20, 16u << 20};
    struct guest_mem gm;
    struct e820_map map;
    struct boot_entry entry;
    struct herd_err err;

    if (!ram)
        setup();
    if (size < 8)
        return 0;

    uint64_t ram_size = ram_sizes[data[0] & 3];
    uint8_t flags = data[1];
    size_t cmd_len = (size_t)(data[2] | data[3] << 8);
    size_t initrd_size = (size_t)(data[4] | data[5] << 8 | data[6] << 16);
    const uint8_t *image = data + 8;
    size_t image_len = size - 8;

    if (cmd_len > image_len)
        cmd_len = image_len;
    image_len -= cmd_len;
    memcpy(cmdline_buf, image + image_len, cmd_len);
    cmdline_buf[cmd_len] = 0;

    if (guest_mem_init_buffer(&gm, ram, ram_size) || e820_build(&map, &gm))
        abort();

    struct boot_args args = {
        .cmdline = (flags & 2) ? NULL : cmdline_buf,
        .initrd = (flags & 1) ? NULL : initrd,
        .initrd_size = (flags & 1) ? 0 : initrd_size,
        .e820 = &map,
        .rsdp = (flags & 4) ? LAYOUT_ACPI_START : 0,
    };

    /* The image in a buffer of its own exact size, so ASan sees any overread. */
    uint8_t *img = malloc(image_len ? image_len : 1);
    if (!img)
        abort();
    memcpy(img, image, image_len);
    memset(&entry, 0, sizeof(entry));
    herd_err_clear(&err);

    int rc = boot_load(&gm, img, image_len, &args, &entry, &err);
    if (rc) {
        size_t at = first_changed(ram, ram_size);
        FUZZ_ASSERT(rc < 0 && err.msg[0], "refused (%d) without a message", rc);
        FUZZ_ASSERT(at == ram_size,
                    "refused kernel (%d: %s) changed guest RAM at %#zx", rc, err.msg, at);
    } else {
        check_loaded(&gm, &args, &entry, ram_size);
        memset(ram, FILL, ram_size);
    }
    free(img);
    return 0;
}
