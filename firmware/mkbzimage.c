/*
 * mkbzimage: wraps herd-probe.elf into a bzImage-format file for boot
 * loaders that speak the Linux x86 boot protocol (herd-vmm's Linux loader).
 *
 * Output: one boot sector + one setup sector carrying the setup header at
 * 0x1f1 (protocol 2.15, 64-bit entry flagged in xloadflags), then the
 * protected-mode part: the probe's PT_LOAD bytes from 0x100000 on, as a
 * flat image. The probe is not relocatable; loaders must put it at
 * pref_address (0x100000) and enter at +0x200 in long mode (or at
 * code32_start in 32-bit protected mode). There is no real-mode setup code:
 * the 16-bit entry just halts.
 *
 * Host tool, run at build time. Usage: mkbzimage IN.elf OUT.bzImage
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR 0x100000u
#define SETUP_SECTS 1u
#define SETUP_SIZE ((SETUP_SECTS + 1u) * 512u)
#define MAX_IMAGE (16u << 20)

#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x0001
#define CMDLINE_SIZE 4095u /* the probe copies up to 4095 bytes + NUL */

/* Offsets in the setup area (struct setup_header lives at 0x1f1). */
#define H_SETUP_SECTS 0x1f1
#define H_SYSSIZE 0x1f4
#define H_VID_MODE 0x1fa
#define H_BOOT_FLAG 0x1fe
#define H_JUMP 0x200
#define H_HEADER 0x202
#define H_VERSION 0x206
#define H_KERNEL_VERSION 0x20e
#define H_LOADFLAGS 0x211
#define H_CODE32_START 0x214
#define H_INITRD_ADDR_MAX 0x22c
#define H_KERNEL_ALIGNMENT 0x230
#define H_RELOCATABLE 0x234
#define H_MIN_ALIGNMENT 0x235
#define H_XLOADFLAGS 0x236
#define H_CMDLINE_SIZE 0x238
#define H_PREF_ADDRESS 0x258
#define H_INIT_SIZE 0x260
#define H_KERNEL_INFO_OFFSET 0x268
#define H_END 0x26c

#define RM_STUB 0x280     /* 16-bit entry: cli; hlt; jmp back to the hlt */
#define VERSION_STR 0x2a0 /* kernel_version points here (minus 0x200) */
#define KERNEL_INFO_OFF 0x100 /* entry.S puts kernel_info at image + 0x100 */

static void put16(uint8_t *p, uint32_t off, uint16_t v)
{
    p[off] = (uint8_t)v;
    p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t off, uint32_t v)
{
    put16(p, off, (uint16_t)v);
    put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint32_t off, uint64_t v)
{
    put32(p, off, (uint32_t)v);
    put32(p, off + 4, (uint32_t)(v >> 32));
}

static void die(const char *what)
{
    fprintf(stderr, "mkbzimage: %s\n", what);
    exit(1);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mkbzimage: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        die("out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= 64u << 20)
                die("input too large");
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                die("out of memory");
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    if (ferror(f))
        die("read error");
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mkbzimage IN.elf OUT.bzImage\n");
        return 2;
    }
    size_t elen;
    uint8_t *elf = read_file(argv[1], &elen);
    Elf64_Ehdr eh;
    if (elen < sizeof(eh))
        die("input too short for an ELF header");
    memcpy(&eh, elf, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        die("not an x86-64 ELF64 file");
    if (eh.e_phoff > elen || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > elen - eh.e_phoff)
        die("program headers outside the file");

    /* Flat image of every PT_LOAD segment, relative to LOAD_ADDR. */
    uint8_t *img = calloc(1, MAX_IMAGE);
    if (!img)
        die("out of memory");
    uint64_t file_end = 0, mem_end = 0;
    int loads = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        loads++;
        if (ph.p_paddr < LOAD_ADDR || ph.p_memsz < ph.p_filesz ||
            ph.p_paddr - LOAD_ADDR + ph.p_memsz > MAX_IMAGE)
            die("PT_LOAD segment outside [1 MiB, 1 MiB + 16 MiB)");
        if (ph.p_offset > elen || ph.p_filesz > elen - ph.p_offset)
            die("PT_LOAD segment data outside the file");
        uint64_t off = ph.p_paddr - LOAD_ADDR;
        memcpy(img + off, elf + ph.p_offset, ph.p_filesz);
        if (off + ph.p_filesz > file_end)
            file_end = off + ph.p_filesz;
        if (off + ph.p_memsz > mem_end)
            mem_end = off + ph.p_memsz;
    }
    if (!loads || file_end <= 0x200)
        die("no loadable image starting at 0x100000");
    if (memcmp(img + KERNEL_INFO_OFF, "LToP", 4) != 0)
        die("no kernel_info (LToP) at image offset 0x100");

    uint8_t setup[SETUP_SIZE];
    memset(setup, 0, sizeof(setup));
    setup[H_SETUP_SECTS] = SETUP_SECTS;
    put32(setup, H_SYSSIZE, (uint32_t)((file_end + 15) / 16));
    put16(setup, H_VID_MODE, 0xffff); /* "normal" */
    put16(setup, H_BOOT_FLAG, 0xaa55);
    setup[H_JUMP] = 0xeb; /* jmp short RM_STUB */
    setup[H_JUMP + 1] = (uint8_t)(RM_STUB - (H_JUMP + 2));
    memcpy(setup + H_HEADER, "HdrS", 4);
    put16(setup, H_VERSION, 0x020f);
    put16(setup, H_KERNEL_VERSION, VERSION_STR - 0x200);
    setup[H_LOADFLAGS] = LOADED_HIGH;
    put32(setup, H_CODE32_START, LOAD_ADDR);
    put32(setup, H_INITRD_ADDR_MAX, 0x7fffffff);
    put32(setup, H_KERNEL_ALIGNMENT, LOAD_ADDR);
    setup[H_RELOCATABLE] = 0;
    setup[H_MIN_ALIGNMENT] = 20; /* log2(kernel_alignment) */
    put16(setup, H_XLOADFLAGS, XLF_KERNEL_64);
    put32(setup, H_CMDLINE_SIZE, CMDLINE_SIZE);
    put64(setup, H_PREF_ADDRESS, LOAD_ADDR);
    put32(setup, H_INIT_SIZE, (uint32_t)((mem_end + 4095) & ~4095ULL));
    put32(setup, H_KERNEL_INFO_OFFSET, KERNEL_INFO_OFF);
    static const uint8_t stub[] = { 0xfa, 0xf4, 0xeb, 0xfd }; /* cli; 1: hlt; jmp 1b */
    memcpy(setup + RM_STUB, stub, sizeof(stub));
    memcpy(setup + VERSION_STR, "herd-probe", sizeof("herd-probe"));

    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        fprintf(stderr, "mkbzimage: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    if (fwrite(setup, 1, sizeof(setup), out) != sizeof(setup) ||
        fwrite(img, 1, file_end, out) != file_end || fclose(out) != 0) {
        fprintf(stderr, "mkbzimage: write %s failed\n", argv[2]);
        remove(argv[2]);
        return 1;
    }
    free(img);
    free(elf);
    return 0;
}
