/*
 * Linux bzImage loader: a synthetic bzImage (setup header + a patterned
 * protected-mode payload) loaded into a 64 MiB guest, then the zero page
 * read back as the kernel's 64-bit entry code reads it. Malformed headers
 * must be refused with a reason naming the field, guest memory untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/boot.h"
#include "herd/boot_linux.h"
#include "herd/e820.h"
#include "herd/guest_mem.h"
#include "herd/layout.h"
#include "support.h"

#define RAM          (64 * MiB)
#define FILL         0xcc
#define SETUP_SECTS  4
#define SETUP_SIZE   ((SETUP_SECTS + 1) * 512)
#define PAYLOAD      0x3000
#define INIT_SIZE    0x80000 /* the kernel's in-place footprint, beyond the file */
#define INITRD_MAX   0x02ffffffu /* 48 MiB - 1: below the end of RAM, so it binds */
#define CMDLINE_SIZE 0x7ff

struct ctx {
    uint8_t *ram;
    struct guest_mem gm;
    struct e820_map map;
    struct herd_err err;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    c->ram = malloc(RAM);
    if (!c->ram || guest_mem_init_buffer(&c->gm, c->ram, RAM) || e820_build(&c->map, &c->gm))
        return -1;
    memset(c->ram, FILL, RAM);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    free(c->ram);
    free(c);
    return 0;
}

struct img {
    uint8_t *buf;
    size_t len;
};

static struct setup_header *hdr(struct img *im)
{
    return (struct setup_header *)(void *)(im->buf + 0x1f1);
}

/* Exact-size heap buffer so ASan sees any read past the file. */
static struct img build(void)
{
    struct img im = {.len = SETUP_SIZE + PAYLOAD};
    struct setup_header h = {
        .setup_sects = SETUP_SECTS,
        .boot_flag = 0xaa55,
        .jump = 0x6aeb, /* "jmp short +0x6a": the header ends at 0x26c */
        .header = 0x53726448,
        .version = 0x020f,
        .loadflags = LOADED_HIGH,
        .initrd_addr_max = INITRD_MAX,
        .kernel_alignment = 0x200000,
        .relocatable_kernel = 1,
        .xloadflags = XLF_KERNEL_64,
        .cmdline_size = CMDLINE_SIZE,
        .pref_address = 0x1000000,
        .init_size = INIT_SIZE,
    };

    im.buf = calloc(1, im.len);
    assert_non_null(im.buf);
    memcpy(im.buf + 0x1f1, &h, sizeof(h));
    assert_int_equal(im.buf[0x201], 0x6a);
    for (unsigned i = 0; i < PAYLOAD; i++)
        im.buf[SETUP_SIZE + i] = (uint8_t)(i * 13 + (i >> 8));
    return im;
}

static void resize(struct img *im, size_t len)
{
    uint8_t *n = calloc(1, len ? len : 1);

    assert_non_null(n);
    memcpy(n, im->buf, len < im->len ? len : im->len);
    free(im->buf);
    im->buf = n;
    im->len = len;
}

static void drop(struct img *im)
{
    free(im->buf);
}

static int load(struct ctx *c, struct img *im, const char *cmdline, const uint8_t *initrd,
                size_t initrd_size, struct boot_entry *e)
{
    struct boot_args args = {.cmdline = cmdline, .initrd = initrd, .initrd_size = initrd_size,
                             .e820 = &c->map};

    herd_err_clear(&c->err);
    return linux_load(&c->gm, im->buf, im->len, &args, e, &c->err);
}

static int ram_untouched(const struct ctx *c)
{
    return test_all_bytes(c->ram, RAM, FILL);
}

static void expect_refused(struct ctx *c, struct img *im, const char *what)
{
    struct boot_entry e;

    assert_true(load(c, im, "console=ttyS0", NULL, 0, &e) < 0);
    assert_true(strlen(c->err.msg) > 0);
    if (!strstr(c->err.msg, what))
        fail_msg("error \"%s\" does not mention \"%s\"", c->err.msg, what);
    assert_true(ram_untouched(c));
    drop(im);
}

static const struct boot_params *zero_page(struct ctx *c)
{
    const struct boot_params *zp = guest_mem_ptr(&c->gm, LAYOUT_ZERO_PAGE, sizeof(*zp));

    assert_non_null(zp);
    return zp;
}

static void check_common(struct ctx *c, struct img *im, const char *cmdline,
                         const struct boot_entry *e)
{
    const struct boot_params *zp = zero_page(c);
    const char *cl;
    static const uint8_t zeros[sizeof(zp->screen_info)];

    assert_int_equal(e->mode, BOOT_MODE_LINUX64);
    assert_int_equal(e->rip, 0x100200);
    assert_int_equal(e->boot_info, LAYOUT_ZERO_PAGE);
    assert_int_equal(e->kernel_end, LAYOUT_KERNEL_START + INIT_SIZE);
    /* The protected-mode part lands at 1 MiB, byte for byte. */
    assert_memory_equal(c->ram + LAYOUT_KERNEL_START, im->buf + SETUP_SIZE, PAYLOAD);
    assert_int_equal(c->ram[LAYOUT_KERNEL_START - 1], FILL);
    /* Setup header copied from the file... */
    assert_int_equal(zp->hdr.setup_sects, SETUP_SECTS);
    assert_int_equal(zp->hdr.boot_flag, 0xaa55);
    assert_int_equal(zp->hdr.header, 0x53726448);
    assert_int_equal(zp->hdr.version, 0x020f);
    assert_int_equal(zp->hdr.xloadflags, XLF_KERNEL_64);
    assert_int_equal(zp->hdr.init_size, INIT_SIZE);
    assert_int_equal(zp->hdr.cmdline_size, CMDLINE_SIZE);
    assert_int_equal(zp->hdr.initrd_addr_max, INITRD_MAX);
    assert_int_equal(zp->hdr.kernel_alignment, 0x200000);
    assert_int_equal(zp->hdr.pref_address, 0x1000000);
    /* ...with the loader's fields filled in. */
    assert_int_equal(zp->hdr.type_of_loader, 0xff);
    assert_int_equal(zp->hdr.code32_start, LAYOUT_KERNEL_START);
    assert_int_equal(zp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
    assert_int_equal(zp->ext_cmd_line_ptr, 0);
    cl = guest_mem_ptr(&c->gm, zp->hdr.cmd_line_ptr, strlen(cmdline) + 1);
    assert_non_null(cl);
    assert_string_equal(cl, cmdline);
    /* The rest of the zero page is zero, not the 0xcc that was there. */
    assert_memory_equal(&zp->screen_info, zeros, sizeof(zp->screen_info));
    assert_int_equal(zp->acpi_rsdp_addr, 0);
    assert_int_equal(zp->hdr.setup_data, 0);
    /* e820 table equal to the map. */
    assert_int_equal(zp->e820_entries, c->map.nr);
    for (unsigned i = 0; i < c->map.nr; i++) {
        assert_int_equal(zp->e820_table[i].addr, c->map.entries[i].addr);
        assert_int_equal(zp->e820_table[i].size, c->map.entries[i].size);
        assert_int_equal(zp->e820_table[i].type, c->map.entries[i].type);
    }
    assert_int_equal(zp->e820_table[c->map.nr].type, 0);
}

static void test_load_basic(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    struct boot_entry e;

    assert_int_equal(load(c, &im, "console=ttyS0 panic=-1", NULL, 0, &e), 0);
    check_common(c, &im, "console=ttyS0 panic=-1", &e);
    assert_int_equal(zero_page(c)->hdr.ramdisk_image, 0);
    assert_int_equal(zero_page(c)->hdr.ramdisk_size, 0);
    assert_int_equal(zero_page(c)->ext_ramdisk_image, 0);
    drop(&im);
}

static void test_load_with_initrd(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    size_t size = 5 * 4096 + 77;
    uint8_t *initrd = malloc(size);
    const struct boot_params *zp;
    struct boot_entry e;
    uint64_t addr;

    assert_non_null(initrd);
    for (size_t i = 0; i < size; i++)
        initrd[i] = (uint8_t)(0x5a ^ i ^ (i >> 9));
    assert_int_equal(load(c, &im, "root=/dev/ram0", initrd, size, &e), 0);
    check_common(c, &im, "root=/dev/ram0", &e);
    zp = zero_page(c);
    addr = (uint64_t)zp->hdr.ramdisk_image | (uint64_t)zp->ext_ramdisk_image << 32;
    assert_int_equal(zp->hdr.ramdisk_size, size);
    assert_int_equal(zp->ext_ramdisk_size, 0);
    assert_int_equal(addr % 4096, 0);
    assert_true(addr >= LAYOUT_KERNEL_START + INIT_SIZE);       /* above the kernel */
    assert_true(addr + size <= (uint64_t)INITRD_MAX + 1);       /* initrd_addr_max honoured */
    /* Placed as high as allowed: within a page of the limit. */
    assert_true(addr + size + 4096 > (uint64_t)INITRD_MAX + 1);
    assert_memory_equal(c->ram + addr, initrd, size);
    free(initrd);
    drop(&im);
}

static void test_initrd_limited_by_ram(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    size_t size = 4096;
    uint8_t initrd[4096];
    const struct boot_params *zp;
    struct boot_entry e;

    memset(initrd, 0x77, sizeof(initrd));
    hdr(&im)->initrd_addr_max = 0xffffffff; /* above RAM: RAM is the limit */
    assert_int_equal(load(c, &im, "", initrd, size, &e), 0);
    zp = zero_page(c);
    assert_int_equal(zp->hdr.ramdisk_image, RAM - 4096);
    assert_memory_equal(c->ram + RAM - 4096, initrd, size);
    drop(&im);
}

static void test_setup_sects_zero_means_four(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    struct boot_entry e;

    hdr(&im)->setup_sects = 0;
    assert_int_equal(load(c, &im, "x", NULL, 0, &e), 0);
    assert_memory_equal(c->ram + LAYOUT_KERNEL_START, im.buf + 5 * 512, PAYLOAD);
    drop(&im);
}

static void test_boot_load_dispatches_bzimage(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    struct boot_args args = {.cmdline = "dispatch", .e820 = &c->map};
    struct boot_entry e;
    static const uint8_t junk[0x400] = {1, 2, 3};

    assert_int_equal(boot_kernel_format(im.buf, im.len), KERNEL_FORMAT_BZIMAGE);
    assert_int_equal(boot_kernel_format(im.buf, 0x205), KERNEL_FORMAT_UNKNOWN);
    assert_int_equal(boot_load(&c->gm, im.buf, im.len, &args, &e, &c->err), 0);
    check_common(c, &im, "dispatch", &e);
    drop(&im);

    memset(c->ram, FILL, RAM);
    herd_err_clear(&c->err);
    assert_int_equal(boot_kernel_format(junk, sizeof(junk)), KERNEL_FORMAT_UNKNOWN);
    assert_int_equal(boot_load(&c->gm, junk, sizeof(junk), &args, &e, &c->err),
                     -ENOEXEC);
    assert_non_null(strstr(c->err.msg, "HdrS"));
    assert_true(ram_untouched(c));
}

static void test_cmdline_limit_is_cmdline_size(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    char cl[CMDLINE_SIZE + 2];
    struct boot_entry e;

    memset(cl, 'k', sizeof(cl) - 1);
    cl[sizeof(cl) - 1] = 0; /* CMDLINE_SIZE + 1 characters */
    assert_true(load(c, &im, cl, NULL, 0, &e) < 0);
    assert_non_null(strstr(c->err.msg, "command line"));
    assert_non_null(strstr(c->err.msg, "2047"));
    cl[CMDLINE_SIZE] = 0; /* exactly cmdline_size: fine */
    assert_int_equal(load(c, &im, cl, NULL, 0, &e), 0);
    assert_string_equal((char *)c->ram + LAYOUT_CMDLINE, cl);
    drop(&im);
}

/* ---- malformed headers --------------------------------------------------- */

static void test_bad_no_hdrs(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    memcpy(im.buf + 0x202, "HdrT", 4);
    expect_refused(c, &im, "HdrS");
}

static void test_bad_boot_flag(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    hdr(&im)->boot_flag = 0x55aa;
    expect_refused(c, &im, "boot_flag");
}

static void test_bad_old_protocol(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    hdr(&im)->version = 0x020b;
    expect_refused(c, &im, "2.11");
}

static void test_bad_not_64bit(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    hdr(&im)->xloadflags = 0x2; /* XLF_CAN_BE_LOADED_ABOVE_4G alone */
    expect_refused(c, &im, "XLF_KERNEL_64");
}

static void test_bad_not_loaded_high(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    hdr(&im)->loadflags = 0;
    expect_refused(c, &im, "LOADED_HIGH");
}

static void test_bad_setup_sects_past_end(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    hdr(&im)->setup_sects = 255;
    expect_refused(c, &im, "setup_sects");
    im = build();
    hdr(&im)->setup_sects = (SETUP_SIZE + PAYLOAD) / 512 - 1; /* setup ends at EOF exactly */
    expect_refused(c, &im, "setup_sects");
}

static void test_bad_no_room_for_entry(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    resize(&im, SETUP_SIZE + 0x200); /* payload ends where the 64-bit entry would be */
    expect_refused(c, &im, "64-bit entry");
}

static void test_bad_too_short(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    resize(&im, 0x100);
    expect_refused(c, &im, "too short");
}

static void test_bad_init_size_larger_than_ram(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    hdr(&im)->init_size = RAM;
    expect_refused(c, &im, "init_size");
    im = build();
    hdr(&im)->init_size = 0xffffffff;
    expect_refused(c, &im, "--mem");
}

static void test_bad_cmdline_too_long(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    char cl[300];
    struct boot_entry e;

    hdr(&im)->cmdline_size = 255;
    memset(cl, 'x', 256);
    cl[256] = 0;
    assert_true(load(c, &im, cl, NULL, 0, &e) < 0);
    assert_non_null(strstr(c->err.msg, "command line is 256 bytes"));
    assert_non_null(strstr(c->err.msg, "255"));
    assert_true(ram_untouched(c)); /* refused before the kernel was copied */
    drop(&im);
}

/* ramdisk_* and setup_data are the loader's to write: whatever the file
 * carries there must not reach the guest. */
static void test_file_ramdisk_fields_not_passed_on(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    struct boot_entry e;

    hdr(&im)->ramdisk_image = 0x2000000;
    hdr(&im)->ramdisk_size = 0x2000000;
    hdr(&im)->setup_data = 0x30000;
    assert_int_equal(load(c, &im, "x", NULL, 0, &e), 0);
    assert_int_equal(zero_page(c)->hdr.ramdisk_image, 0);
    assert_int_equal(zero_page(c)->hdr.ramdisk_size, 0);
    assert_int_equal(zero_page(c)->hdr.setup_data, 0);
    drop(&im);
}

/* The jump byte at 0x201 says the header ends at 0x26c, the file ends
 * before: the header must not be read past the end of the file. */
static void test_bad_header_past_eof(void **state)
{
    struct ctx *c = *state;
    struct img im = build();

    resize(&im, 0x230);
    expect_refused(c, &im, "past the end");
}

static void test_bad_initrd_too_large(void **state)
{
    struct ctx *c = *state;
    struct img im = build();
    size_t size = INITRD_MAX + 1 - (LAYOUT_KERNEL_START + INIT_SIZE) + 1; /* one byte too many */
    uint8_t *initrd = calloc(1, size);
    struct boot_entry e;

    assert_non_null(initrd);
    assert_true(load(c, &im, "x", initrd, size, &e) < 0);
    assert_non_null(strstr(c->err.msg, "initrd"));
    assert_true(ram_untouched(c)); /* nothing written: kernel, cmdline, zero page */
    /* One page less does fit. */
    assert_int_equal(load(c, &im, "x", initrd, size - 4096, &e), 0);
    assert_int_equal(zero_page(c)->hdr.ramdisk_image, LAYOUT_KERNEL_START + INIT_SIZE);
    free(initrd);
    drop(&im);
}

/* ---- a real bzImage, when one has been fetched ---------------------------- */

static const char *real_bzimage(void)
{
    return test_fetched_file("linux/vmlinuz");
}

static void test_real_bzimage(void **state)
{
    const char *path = real_bzimage();
    size_t len = 0, ram = 256 * MiB, setup;
    uint8_t *image = path ? test_read_file(path, &len) : NULL;
    const struct boot_params *zp;
    struct guest_mem gm;
    struct e820_map map;
    struct boot_args args = {.cmdline = "console=ttyS0", .e820 = &map};
    struct boot_entry e;
    struct herd_err err = {0};
    uint8_t *buf;

    assert_non_null(image);
    assert_int_equal(boot_kernel_format(image, len), KERNEL_FORMAT_BZIMAGE);
    buf = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
               -1, 0);
    assert_true(buf != MAP_FAILED);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, ram), 0);
    assert_int_equal(e820_build(&map, &gm), 0);
    if (linux_load(&gm, image, len, &args, &e, &err))
        fail_msg("%s: %s", path, err.msg);
    zp = guest_mem_ptr(&gm, LAYOUT_ZERO_PAGE, sizeof(*zp));
    assert_int_equal(e.rip, 0x100200);
    assert_true(zp->hdr.version >= LINUX_MIN_PROTOCOL);
    assert_true(zp->hdr.xloadflags & XLF_KERNEL_64);
    setup = ((size_t)(image[0x1f1] ? image[0x1f1] : 4) + 1) * 512;
    assert_memory_equal(buf + LAYOUT_KERNEL_START, image + setup, len - setup);
    assert_int_equal(e.kernel_end, LAYOUT_KERNEL_START + (zp->hdr.init_size > len - setup
                                                              ? zp->hdr.init_size
                                                              : len - setup));
    munmap(buf, ram);
    free(image);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    struct CMUnitTest tests[] = {
        T(test_load_basic),
        T(test_load_with_initrd),
        T(test_initrd_limited_by_ram),
        T(test_setup_sects_zero_means_four),
        T(test_boot_load_dispatches_bzimage),
        T(test_cmdline_limit_is_cmdline_size),
        T(test_bad_no_hdrs),
        T(test_bad_boot_flag),
        T(test_bad_old_protocol),
        T(test_bad_not_64bit),
        T(test_bad_not_loaded_high),
        T(test_bad_setup_sects_past_end),
        T(test_bad_no_room_for_entry),
        T(test_bad_too_short),
        T(test_bad_init_size_larger_than_ram),
        T(test_bad_cmdline_too_long),
        T(test_bad_initrd_too_large),
        T(test_bad_header_past_eof),
        T(test_file_ramdisk_fields_not_passed_on),
        /* Last: only run when a real kernel has been fetched (tools/fetch-test-kernel). */
        cmocka_unit_test(test_real_bzimage),
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);

    if (!real_bzimage()) {
        printf("# no build/linux/vmlinuz: real-kernel case not run\n");
        n--;
    }
    return _cmocka_run_group_tests("test_boot_linux", tests, n, NULL, NULL);
}
