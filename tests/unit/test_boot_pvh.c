/*
 * PVH loader: small ELF64 images built here, loaded into a 64 MiB guest, and
 * the hvm_start_info checked as a PVH guest reads it. Then malformed images:
 * each must be refused with a reason that names the problem, without
 * touching guest memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/boot.h"
#include "herd/boot_pvh.h"
#include "herd/e820.h"
#include "herd/guest_mem.h"
#include "herd/layout.h"
#include "support.h"

#define RAM      (64 * MiB)
#define FILL     0xcc
#define ENTRY    0x100040u
#define SEG_OFF  0x1000
#define SEG_FILE 0x300
#define SEG_MEM  0x2000
#define NOTE_OFF 0x200

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

/* ---- ELF builder ------------------------------------------------------- */

struct img {
    uint8_t *buf;
    size_t len;
};

static Elf64_Ehdr *ehdr(struct img *im)
{
    return (Elf64_Ehdr *)(void *)im->buf;
}

static Elf64_Phdr *phdr(struct img *im, unsigned i)
{
    return (Elf64_Phdr *)(void *)(im->buf + ehdr(im)->e_phoff) + i;
}

static size_t put_note(uint8_t *p, uint32_t type, const char *name, const void *desc,
                       uint32_t descsz)
{
    Elf64_Nhdr nh = {.n_namesz = (uint32_t)strlen(name) + 1, .n_descsz = descsz, .n_type = type};
    size_t off = sizeof(nh);

    memcpy(p, &nh, sizeof(nh));
    memcpy(p + off, name, nh.n_namesz);
    off += (nh.n_namesz + 3) & ~3u;
    memcpy(p + off, desc, descsz);
    off += (descsz + 3) & ~3u;
    return off;
}

/* A valid PVH image: PT_NOTE (a GNU build-id note, then the Xen entry note)
 * and one PT_LOAD at 1 MiB with SEG_FILE bytes of pattern and a bss up to
 * SEG_MEM. Allocated to its exact size so ASan sees any over-read. */
static struct img build(uint32_t entry)
{
    struct img im = {.len = SEG_OFF + SEG_FILE};
    static const uint8_t build_id[20] = {1, 2, 3, 4, 5};
    size_t note_len;
    Elf64_Ehdr *eh;

    im.buf = calloc(1, im.len);
    assert_non_null(im.buf);
    eh = ehdr(&im);
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = 0xffffffff81000000ULL; /* virtual: PVH must not use it */
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 2;

    note_len = put_note(im.buf + NOTE_OFF, 3, "GNU", build_id, sizeof(build_id));
    note_len += put_note(im.buf + NOTE_OFF + note_len, XEN_ELFNOTE_PHYS32_ENTRY, "Xen", &entry,
                         4);
    *phdr(&im, 0) = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = NOTE_OFF,
                                 .p_filesz = note_len, .p_memsz = note_len, .p_align = 4};
    *phdr(&im, 1) = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_X,
                                 .p_offset = SEG_OFF, .p_vaddr = 0xffffffff81000000ULL,
                                 .p_paddr = LAYOUT_KERNEL_START, .p_filesz = SEG_FILE,
                                 .p_memsz = SEG_MEM, .p_align = 0x1000};
    for (unsigned i = 0; i < SEG_FILE; i++)
        im.buf[SEG_OFF + i] = (uint8_t)(i * 7 + 1);
    return im;
}

/* The offset of the Xen note's descriptor inside the image. */
static Elf64_Nhdr *xen_note(struct img *im)
{
    return (Elf64_Nhdr *)(void *)(im->buf + NOTE_OFF + 12 + 4 + 20);
}

/* Reallocates to `len` bytes (shorter or longer), zero-filling growth. */
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

/* ---- helpers ----------------------------------------------------------- */

static int load(struct ctx *c, struct img *im, const char *cmdline, const uint8_t *initrd,
                size_t initrd_size, struct boot_entry *e)
{
    struct boot_args args = {.cmdline = cmdline, .initrd = initrd, .initrd_size = initrd_size,
                             .e820 = &c->map};

    herd_err_clear(&c->err);
    return pvh_load(&c->gm, im->buf, im->len, &args, e, &c->err);
}

static int ram_untouched(const struct ctx *c)
{
    return test_all_bytes(c->ram, RAM, FILL);
}

/* Loads `im`, expects a refusal whose message contains `what`, and guest
 * memory exactly as it was. */
static void expect_refused(struct ctx *c, struct img *im, const char *what)
{
    struct boot_entry e;

    memset(&e, 0x5a, sizeof(e));
    assert_true(load(c, im, "console=ttyS0", NULL, 0, &e) < 0);
    assert_true(strlen(c->err.msg) > 0);
    if (!strstr(c->err.msg, what))
        fail_msg("error \"%s\" does not mention \"%s\"", c->err.msg, what);
    assert_true(ram_untouched(c));
    drop(im);
}

/* ---- good images ------------------------------------------------------- */

static void check_start_info(struct ctx *c, const char *cmdline, const struct boot_entry *e)
{
    const struct hvm_start_info *si = guest_mem_ptr(&c->gm, LAYOUT_PVH_START_INFO, sizeof(*si));
    const struct hvm_memmap_table_entry *mm;
    const char *cl;

    assert_non_null(si);
    assert_int_equal(e->boot_info, LAYOUT_PVH_START_INFO);
    assert_int_equal(si->magic, HVM_START_MAGIC);
    assert_int_equal(si->version, 1);
    assert_int_equal(si->flags, 0);
    assert_int_equal(si->rsdp_paddr, 0);
    cl = guest_mem_ptr(&c->gm, si->cmdline_paddr, strlen(cmdline) + 1);
    assert_non_null(cl);
    assert_string_equal(cl, cmdline);
    assert_int_equal(si->memmap_entries, c->map.nr);
    mm = guest_mem_ptr(&c->gm, si->memmap_paddr, si->memmap_entries * sizeof(*mm));
    assert_non_null(mm);
    for (unsigned i = 0; i < c->map.nr; i++) {
        assert_int_equal(mm[i].addr, c->map.entries[i].addr);
        assert_int_equal(mm[i].size, c->map.entries[i].size);
        assert_int_equal(mm[i].type, c->map.entries[i].type);
        assert_int_equal(mm[i].reserved, 0);
    }
    /* Boot structures must not overlap what the guest is handed. */
    assert_true(si->memmap_paddr >= LAYOUT_PVH_START_INFO + sizeof(*si));
}

static void test_load_basic(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    struct boot_entry e;
    const uint8_t *seg;
    const struct hvm_start_info *si;

    assert_int_equal(load(c, &im, "console=ttyS0 root=/dev/vda", NULL, 0, &e), 0);
    assert_int_equal(e.mode, BOOT_MODE_PVH);
    assert_int_equal(e.rip, ENTRY);
    assert_int_equal(e.kernel_end, LAYOUT_KERNEL_START + SEG_MEM);
    seg = c->ram + LAYOUT_KERNEL_START;
    assert_memory_equal(seg, im.buf + SEG_OFF, SEG_FILE);
    for (unsigned i = SEG_FILE; i < SEG_MEM; i++)
        assert_int_equal(seg[i], 0); /* bss zeroed over the 0xcc fill */
    assert_int_equal(seg[SEG_MEM], FILL); /* and not one byte more */
    assert_int_equal(c->ram[LAYOUT_KERNEL_START - 1], FILL);
    check_start_info(c, "console=ttyS0 root=/dev/vda", &e);
    si = guest_mem_ptr(&c->gm, LAYOUT_PVH_START_INFO, sizeof(*si));
    assert_int_equal(si->nr_modules, 0);
    assert_int_equal(si->modlist_paddr, 0);
    drop(&im);
}

static void test_null_cmdline_is_empty(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    struct boot_entry e;

    assert_int_equal(load(c, &im, NULL, NULL, 0, &e), 0);
    check_start_info(c, "", &e);
    drop(&im);
}

static void test_initrd_module(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    size_t size = 3 * 4096 + 123;
    uint8_t *initrd = malloc(size);
    const struct hvm_start_info *si;
    const struct hvm_modlist_entry *mod;
    struct boot_entry e;
    int in_ram = 0;

    assert_non_null(initrd);
    for (size_t i = 0; i < size; i++)
        initrd[i] = (uint8_t)(i ^ (i >> 8));
    assert_int_equal(load(c, &im, "quiet", initrd, size, &e), 0);
    si = guest_mem_ptr(&c->gm, LAYOUT_PVH_START_INFO, sizeof(*si));
    assert_int_equal(si->nr_modules, 1);
    mod = guest_mem_ptr(&c->gm, si->modlist_paddr, sizeof(*mod));
    assert_non_null(mod);
    assert_int_equal(mod->size, size);
    assert_int_equal(mod->paddr % 4096, 0);
    assert_int_equal(mod->cmdline_paddr, 0);
    assert_true(mod->paddr >= e.kernel_end);
    assert_true(mod->paddr + size <= guest_mem_low_end(&c->gm));
    for (unsigned i = 0; i < c->map.nr; i++) {
        const struct e820_entry *m = &c->map.entries[i];

        if (m->type == E820_RAM && m->addr <= mod->paddr && mod->paddr + size <= m->addr + m->size)
            in_ram = 1;
    }
    assert_true(in_ram);
    assert_memory_equal(guest_mem_ptr(&c->gm, mod->paddr, size), initrd, size);
    /* The module list does not overlap start_info, the memmap or the zero page. */
    assert_true(si->modlist_paddr >= si->memmap_paddr + E820_MAX_ENTRIES * 24 ||
                si->modlist_paddr + sizeof(*mod) <= LAYOUT_PVH_START_INFO);
    check_start_info(c, "quiet", &e);
    /* The kernel is intact after the initrd went in. */
    assert_memory_equal(c->ram + LAYOUT_KERNEL_START, im.buf + SEG_OFF, SEG_FILE);
    free(initrd);
    drop(&im);
}

static void test_entry_note_8_bytes_and_two_segments(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    uint64_t entry64 = 0x300010;
    struct boot_entry e;
    Elf64_Nhdr *nh = xen_note(&im);
    size_t note_len;

    /* Rewrite the Xen note with an 8-byte descriptor and add a second
     * PT_LOAD at 3 MiB holding the entry, with nothing but bss after. */
    note_len = 36 + put_note((uint8_t *)nh, XEN_ELFNOTE_PHYS32_ENTRY, "Xen", &entry64, 8);
    phdr(&im, 0)->p_filesz = phdr(&im, 0)->p_memsz = note_len;
    resize(&im, SEG_OFF + SEG_FILE + 0x100);
    ehdr(&im)->e_phnum = 3;
    *phdr(&im, 2) = (Elf64_Phdr){.p_type = PT_LOAD, .p_offset = SEG_OFF + SEG_FILE,
                                 .p_paddr = 0x300000, .p_filesz = 0x100, .p_memsz = 0x5000};
    memset(im.buf + SEG_OFF + SEG_FILE, 0x42, 0x100);
    assert_int_equal(load(c, &im, "x", NULL, 0, &e), 0);
    assert_int_equal(e.rip, 0x300010);
    assert_int_equal(e.kernel_end, 0x305000);
    assert_int_equal(c->ram[0x300000], 0x42);
    assert_int_equal(c->ram[0x3000ff], 0x42);
    assert_int_equal(c->ram[0x300100], 0);
    assert_int_equal(c->ram[0x304fff], 0);
    assert_int_equal(c->ram[0x305000], FILL);
    drop(&im);
}

static void test_boot_load_dispatches_elf(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    struct boot_args args = {.cmdline = "a=b", .e820 = &c->map};
    struct boot_entry e;

    assert_int_equal(boot_kernel_format(im.buf, im.len), KERNEL_FORMAT_ELF);
    assert_int_equal(boot_kernel_format(im.buf, 3), KERNEL_FORMAT_UNKNOWN);
    assert_int_equal(boot_load(&c->gm, im.buf, im.len, &args, &e, &c->err), 0);
    assert_int_equal(e.mode, BOOT_MODE_PVH);
    assert_int_equal(e.rip, ENTRY);
    check_start_info(c, "a=b", &e);
    drop(&im);
}

static void test_find_entry(void **state)
{
    struct ctx *c = *state;
    struct img im = build(0x123456);
    uint32_t entry = 0;

    assert_int_equal(pvh_find_entry(im.buf, im.len, &entry, &c->err), 0);
    assert_int_equal(entry, 0x123456);
    drop(&im);
}

/* ---- malformed images -------------------------------------------------- */

static void test_bad_truncated(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    resize(&im, sizeof(Elf64_Ehdr) - 1);
    expect_refused(c, &im, "ELF");
    im = build(ENTRY);
    resize(&im, 4);
    expect_refused(c, &im, "not an ELF");
    im = build(ENTRY);
    resize(&im, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10); /* phdrs cut off */
    expect_refused(c, &im, "program header");
    im = build(ENTRY);
    resize(&im, SEG_OFF + 10); /* PT_LOAD contents cut off */
    expect_refused(c, &im, "segment 1");
}

static void test_bad_not_elf(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    im.buf[0] = 0x7e;
    expect_refused(c, &im, "not an ELF");
}

static void test_bad_class(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    im.buf[EI_CLASS] = 7;
    expect_refused(c, &im, "class");
}

static void test_bad_elf32(void **state)
{
    struct ctx *c = *state;
    struct img im = {.len = 0x200};
    Elf32_Ehdr *eh;

    im.buf = calloc(1, im.len);
    assert_non_null(im.buf);
    eh = (Elf32_Ehdr *)(void *)im.buf;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS32;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_machine = EM_386;
    eh->e_phoff = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf32_Phdr);
    eh->e_phnum = 1;
    expect_refused(c, &im, "ELFCLASS64");
}

static void test_bad_machine_or_endian(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    ehdr(&im)->e_machine = EM_AARCH64;
    expect_refused(c, &im, "x86-64");
    im = build(ENTRY);
    im.buf[EI_DATA] = ELFDATA2MSB;
    expect_refused(c, &im, "little-endian");
}

static void test_bad_phdr_table(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    ehdr(&im)->e_phoff = im.len + 64; /* past the end */
    expect_refused(c, &im, "program header");
    im = build(ENTRY);
    ehdr(&im)->e_phoff = UINT64_MAX - 8; /* offset + size wraps */
    expect_refused(c, &im, "program header");
    im = build(ENTRY);
    ehdr(&im)->e_phnum = 0xffff;
    expect_refused(c, &im, "program header");
    im = build(ENTRY);
    ehdr(&im)->e_phnum = 0;
    expect_refused(c, &im, "program header");
    im = build(ENTRY);
    ehdr(&im)->e_phentsize = sizeof(Elf32_Phdr);
    expect_refused(c, &im, "program header");
    im = build(ENTRY);
    ehdr(&im)->e_phoff = sizeof(Elf64_Ehdr) + 4; /* misaligned */
    expect_refused(c, &im, "misaligned");
}

static void test_bad_note_namesz_overflow(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    xen_note(&im)->n_namesz = 0xfffffffd; /* rounds past 2^32 */
    expect_refused(c, &im, "note");
    im = build(ENTRY);
    xen_note(&im)->n_namesz = 64; /* just past the segment */
    expect_refused(c, &im, "past the end of its segment");
    im = build(ENTRY);
    xen_note(&im)->n_descsz = 0xffffffff;
    expect_refused(c, &im, "past the end of its segment");
}

static void test_bad_note_segment_outside_file(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    phdr(&im, 0)->p_offset = im.len - 8;
    expect_refused(c, &im, "note segment 0");
    im = build(ENTRY);
    phdr(&im, 0)->p_filesz = UINT64_MAX;
    expect_refused(c, &im, "note segment 0");
}

static void test_bad_note_desc_2_bytes(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    xen_note(&im)->n_descsz = 2;
    expect_refused(c, &im, "2-byte");
}

static void test_bad_entry_above_4g(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    uint64_t entry64 = 0x100000040ULL;
    size_t note_len;

    note_len = 36 + put_note((uint8_t *)xen_note(&im), XEN_ELFNOTE_PHYS32_ENTRY, "Xen",
                             &entry64, 8);
    phdr(&im, 0)->p_filesz = phdr(&im, 0)->p_memsz = note_len;
    expect_refused(c, &im, "above 4 GiB");
}

static void test_bad_no_note(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    xen_note(&im)->n_type = 17; /* some other Xen note */
    expect_refused(c, &im, "no PVH entry note");
    im = build(ENTRY);
    memcpy((uint8_t *)xen_note(&im) + 12, "Xem", 4); /* right type, wrong owner */
    expect_refused(c, &im, "no PVH entry note");
    im = build(ENTRY);
    phdr(&im, 0)->p_type = PT_NULL; /* no PT_NOTE at all */
    expect_refused(c, &im, "no PVH entry note");
}

static void test_bad_entry_outside_segments(void **state)
{
    struct ctx *c = *state;
    struct img im = build(0x200000);
    struct boot_entry e;

    assert_true(load(c, &im, "x", NULL, 0, &e) < 0);
    assert_non_null(strstr(c->err.msg, "not inside any loaded segment"));
    assert_true(ram_untouched(c)); /* no segment copied before the entry was checked */
    drop(&im);
    /* An entry in the bss is not code the file supplies either. */
    im = build(LAYOUT_KERNEL_START + SEG_FILE + 0x10);
    assert_true(load(c, &im, "x", NULL, 0, &e) < 0);
    assert_non_null(strstr(c->err.msg, "not inside any loaded segment"));
    drop(&im);
}

static void test_bad_segment_below_1m(void **state)
{
    struct ctx *c = *state;
    struct img im = build(0x8000);

    phdr(&im, 1)->p_paddr = 0x8000; /* over the boot structures */
    expect_refused(c, &im, "below 1 MiB");
}

static void test_bad_segment_bigger_than_ram(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    phdr(&im, 1)->p_memsz = RAM;
    expect_refused(c, &im, "does not fit");
    im = build(ENTRY);
    phdr(&im, 1)->p_paddr = LAYOUT_MMIO_HOLE_START; /* in the hole */
    expect_refused(c, &im, "does not fit");
    im = build(ENTRY);
    phdr(&im, 1)->p_memsz = UINT64_MAX; /* paddr + memsz wraps */
    expect_refused(c, &im, "does not fit");
}

static void test_bad_filesz_gt_memsz(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    phdr(&im, 1)->p_memsz = SEG_FILE - 1;
    expect_refused(c, &im, "segment 1");
}

static void test_bad_segment_beyond_file(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    phdr(&im, 1)->p_filesz = SEG_FILE + 1;
    phdr(&im, 1)->p_memsz = SEG_MEM;
    expect_refused(c, &im, "segment 1");
    im = build(ENTRY);
    phdr(&im, 1)->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
    expect_refused(c, &im, "segment 1");
}

static void test_bad_no_load_segment(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);

    phdr(&im, 1)->p_type = PT_NULL;
    expect_refused(c, &im, "no loadable segment");
}

static void test_bad_cmdline_too_long(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    char *cl = malloc(LAYOUT_CMDLINE_MAX + 1);
    struct boot_entry e;

    assert_non_null(cl);
    memset(cl, 'a', LAYOUT_CMDLINE_MAX);
    cl[LAYOUT_CMDLINE_MAX] = 0; /* 64 KiB of text: one too many with the NUL */
    assert_true(load(c, &im, cl, NULL, 0, &e) < 0);
    assert_non_null(strstr(c->err.msg, "command line"));
    assert_true(ram_untouched(c));
    /* The longest accepted one is exactly LAYOUT_CMDLINE_MAX - 1 bytes. */
    cl[LAYOUT_CMDLINE_MAX - 1] = 0;
    assert_int_equal(load(c, &im, cl, NULL, 0, &e), 0);
    assert_string_equal((char *)c->ram + LAYOUT_CMDLINE, cl);
    free(cl);
    drop(&im);
}

static void test_bad_initrd_too_large(void **state)
{
    struct ctx *c = *state;
    struct img im = build(ENTRY);
    size_t size = RAM - MiB; /* more than is left above the kernel */
    uint8_t *initrd = calloc(1, size);
    struct boot_entry e;

    assert_non_null(initrd);
    assert_true(load(c, &im, "x", initrd, size, &e) < 0);
    assert_non_null(strstr(c->err.msg, "initrd"));
    assert_true(ram_untouched(c));
    free(initrd);
    drop(&im);
}

/* ---- a real kernel, when one has been fetched ---------------------------- */

static const char *real_vmlinux(void)
{
    return test_fetched_file("linux/vmlinux");
}

static void test_real_vmlinux(void **state)
{
    const char *path = real_vmlinux();
    size_t len = 0, ram = 256 * MiB;
    uint8_t *image = path ? test_read_file(path, &len) : NULL;
    uint8_t *buf;
    struct guest_mem gm;
    struct e820_map map;
    struct boot_args args = {.cmdline = "console=ttyS0", .e820 = &map};
    struct boot_entry e;
    struct herd_err err = {0};
    uint32_t entry = 0;

    assert_non_null(image);
    assert_int_equal(pvh_find_entry(image, len, &entry, &err), 0);
    assert_true(entry >= LAYOUT_KERNEL_START);
    buf = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
               -1, 0);
    assert_true(buf != MAP_FAILED);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, ram), 0);
    assert_int_equal(e820_build(&map, &gm), 0);
    if (pvh_load(&gm, image, len, &args, &e, &err))
        fail_msg("%s: %s", path, err.msg);
    assert_int_equal(e.rip, entry);
    assert_true(e.kernel_end > entry && e.kernel_end <= ram);
    munmap(buf, ram);
    free(image);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    struct CMUnitTest tests[] = {
        T(test_load_basic),
        T(test_null_cmdline_is_empty),
        T(test_initrd_module),
        T(test_entry_note_8_bytes_and_two_segments),
        T(test_boot_load_dispatches_elf),
        T(test_find_entry),
        T(test_bad_truncated),
        T(test_bad_not_elf),
        T(test_bad_class),
        T(test_bad_elf32),
        T(test_bad_machine_or_endian),
        T(test_bad_phdr_table),
        T(test_bad_note_namesz_overflow),
        T(test_bad_note_segment_outside_file),
        T(test_bad_note_desc_2_bytes),
        T(test_bad_entry_above_4g),
        T(test_bad_no_note),
        T(test_bad_entry_outside_segments),
        T(test_bad_segment_below_1m),
        T(test_bad_segment_bigger_than_ram),
        T(test_bad_filesz_gt_memsz),
        T(test_bad_segment_beyond_file),
        T(test_bad_no_load_segment),
        T(test_bad_cmdline_too_long),
        T(test_bad_initrd_too_large),
        /* Last: only run when a real kernel has been fetched (tools/fetch-test-kernel). */
        cmocka_unit_test(test_real_vmlinux),
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);

    if (!real_vmlinux()) {
        printf("# no build/linux/vmlinux: real-kernel case not run\n");
        n--;
    }
    return _cmocka_run_group_tests("test_boot_pvh", tests, n, NULL, NULL);
}
