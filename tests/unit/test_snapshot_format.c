/*
 * The snapshot container (vmm/snapshot/format.c) without KVM: a round trip
 * of sections and RAM (zero pages left as holes), the writer's refusals
 * (non-empty file, not a regular file), and a reader that refuses, with its
 * reason, every kind of damage: each header field, checksums, section
 * lengths, duplicates, trailing bytes, and 2000 random byte flips, none of
 * which may crash it or hand out a section.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "herd/snapshot.h"

#define RAM (4ULL << 20)

static char path[64];

static int new_file(void)
{
    int fd;

    snprintf(path, sizeof(path), "/tmp/herd-snapfmt.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* A snapshot with three sections and RAM with two non-zero pages. */
static int make_snapshot(uint8_t **ram_out)
{
    struct snap_writer w;
    struct herd_err err = {0};
    uint8_t *ram = calloc(1, RAM);
    uint32_t a = 0x11223344;
    char text[] = "seven b";
    int fd = new_file();

    assert_non_null(ram);
    memset(ram + 4096, 0xa5, 4096);
    ram[RAM - 1] = 7;
    snap_writer_init(&w);
    snap_add(&w, SNAP_S_CONFIG, 0, &a, sizeof(a));
    snap_add(&w, SNAP_S_SERIAL, 0, text, 7);
    snap_add(&w, SNAP_S_VCPU_REGS, 3, ram + 4096, 100);
    assert_int_equal(snap_write(&w, fd, ram, RAM, &err), 0);
    snap_writer_free(&w);
    *ram_out = ram;
    return fd;
}

static void test_round_trip(void **state)
{
    struct snap_reader r;
    struct herd_err err = {0};
    uint8_t *ram, *back = malloc(RAM);
    uint64_t len;
    const uint32_t *a;
    struct stat st;
    int fd = make_snapshot(&ram);

    (void)state;
    assert_int_equal(snap_read(&r, fd, &err), 0);
    assert_int_equal(r.nr_sections, 3);
    a = snap_get(&r, SNAP_S_CONFIG, 0, 4, "config", &err);
    assert_non_null(a);
    assert_int_equal(*a, 0x11223344);
    assert_memory_equal(snap_find(&r, SNAP_S_SERIAL, 0, &len), "seven b", 7);
    assert_int_equal(len, 7);
    assert_memory_equal(snap_find(&r, SNAP_S_VCPU_REGS, 3, &len), ram + 4096, 100);
    assert_null(snap_find(&r, SNAP_S_VCPU_REGS, 0, NULL));
    assert_null(snap_get(&r, SNAP_S_CONFIG, 0, 8, "config", &err));
    assert_non_null(strstr(err.msg, "is 4 bytes, this herd-vmm expects 8"));
    assert_null(snap_get(&r, SNAP_S_PIT, 0, 8, "the PIT", &err));
    assert_non_null(strstr(err.msg, "lacks the PIT"));
    assert_int_equal(r.hdr.ram_off % SNAP_RAM_ALIGN, 0);
    assert_int_equal(pread(fd, back, RAM, (off_t)r.hdr.ram_off), (ssize_t)RAM);
    assert_memory_equal(back, ram, RAM);
    /* zero pages are holes: 2 data pages of RAM and the state are written */
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_blocks * 512 < 64 * 1024);
    snap_reader_free(&r);
    free(ram);
    free(back);
    close(fd);
}

static void test_writer_refusals(void **state)
{
    struct snap_writer w;
    struct herd_err err = {0};
    uint8_t ram[4096] = {0};
    int fd = new_file(), nul = open("/dev/null", O_WRONLY);

    (void)state;
    snap_writer_init(&w);
    snap_add(&w, SNAP_S_CONFIG, 0, "x", 1);
    assert_int_equal(write(fd, "x", 1), 1);
    assert_int_equal(snap_write(&w, fd, ram, sizeof(ram), &err), -EEXIST);
    assert_non_null(strstr(err.msg, "not empty"));
    assert_int_equal(snap_write(&w, nul, ram, sizeof(ram), &err), -EINVAL);
    assert_non_null(strstr(err.msg, "regular file"));
    assert_int_equal(snap_write(&w, fd, ram, 100, &err), -EINVAL);
    snap_add(&w, SNAP_S_CONFIG, 0, ram, SNAP_STATE_MAX); /* over the limit: remembered */
    assert_int_equal(snap_write(&w, fd, ram, sizeof(ram), &err), -EFBIG);
    snap_writer_free(&w);
    close(fd);
    close(nul);
}

/* A copy of the snapshot in `fd` with `fix` applied, checksums recomputed
 * when `recrc`; returns its descriptor. */
static int damaged(int fd, void (*fix)(uint8_t *b, size_t *n), bool recrc)
{
    struct stat st;
    uint8_t *b;
    size_t n;
    int out = new_file();
    struct snap_header h;

    assert_int_equal(fstat(fd, &st), 0);
    n = (size_t)st.st_size;
    b = malloc(n + 4096);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, n, 0), (ssize_t)n);
    fix(b, &n);
    if (recrc) {
        memcpy(&h, b, sizeof(h));
        if (h.state_len <= n - SNAP_STATE_OFF)
            h.state_crc = (uint32_t)crc32(0, b + SNAP_STATE_OFF, (uInt)h.state_len);
        h.header_crc = 0;
        h.header_crc = (uint32_t)crc32(0, (const Bytef *)&h, sizeof(h));
        memcpy(b, &h, sizeof(h));
    }
    assert_int_equal(pwrite(out, b, n, 0), (ssize_t)n);
    free(b);
    return out;
}

static struct snap_header *H(uint8_t *b) { return (struct snap_header *)b; }
static void bad_magic(uint8_t *b, size_t *n) { (void)n; b[3] ^= 1; }
static void bad_version(uint8_t *b, size_t *n) { (void)n; H(b)->version = 9; }
static void bad_hsize(uint8_t *b, size_t *n) { (void)n; H(b)->header_size = 100; }
static void bad_flags(uint8_t *b, size_t *n) { (void)n; H(b)->flags = 1; }
static void bad_state_off(uint8_t *b, size_t *n) { (void)n; H(b)->state_off = 8192; }
static void bad_ram_align(uint8_t *b, size_t *n) { (void)n; H(b)->ram_off += 4096; }
static void bad_truncate(uint8_t *b, size_t *n) { (void)b; *n -= 4096; }
static void bad_nsec(uint8_t *b, size_t *n) { (void)n; H(b)->nr_sections = 4; }
static void few_nsec(uint8_t *b, size_t *n) { (void)n; H(b)->nr_sections = 2; }
static void bad_header_crc(uint8_t *b, size_t *n) { (void)n; H(b)->producer[3] ^= 1; }
static void bad_state_crc(uint8_t *b, size_t *n) { (void)n; b[SNAP_STATE_OFF + 20] ^= 1; }
static void huge_section(uint8_t *b, size_t *n)
{
    uint64_t big = ~0ULL - 3;

    (void)n;
    memcpy(b + SNAP_STATE_OFF + 8, &big, 8);
}
static void dup_section(uint8_t *b, size_t *n)
{
    (void)n;
    /* the second section (serial, index 0) becomes config 0 like the first */
    uint32_t t = SNAP_S_CONFIG;

    memcpy(b + SNAP_STATE_OFF + 16 + 8, &t, 4);
}

static void expect_refused(int fd, void (*fix)(uint8_t *, size_t *), bool recrc, const char *why)
{
    struct snap_reader r;
    struct herd_err err = {0};
    int d = damaged(fd, fix, recrc);

    assert_true(snap_read(&r, d, &err) < 0);
    if (!strstr(err.msg, why))
        fail_msg("expected '%s', got '%s'", why, err.msg);
    assert_null(r.state);
    assert_int_equal(r.nr_sections, 0);
    close(d);
}

static void test_reader_refusals(void **state)
{
    uint8_t *ram;
    int fd = make_snapshot(&ram);

    (void)state;
    expect_refused(fd, bad_magic, false, "not a herd snapshot");
    expect_refused(fd, bad_version, true, "version 9; this herd-vmm reads version 1");
    expect_refused(fd, bad_hsize, true, "header of 100 bytes");
    expect_refused(fd, bad_flags, true, "flags 0x1 unknown");
    expect_refused(fd, bad_state_off, true, "outside the limits");
    expect_refused(fd, bad_ram_align, true, "not a valid layout");
    expect_refused(fd, bad_truncate, false, "truncated or appended to");
    expect_refused(fd, bad_header_crc, false, "header checksum mismatch");
    expect_refused(fd, bad_state_crc, false, "state checksum mismatch");
    expect_refused(fd, bad_nsec, true, "starts past the state");
    expect_refused(fd, few_nsec, true, "bytes after its last section");
    expect_refused(fd, huge_section, true, "runs past the state");
    expect_refused(fd, dup_section, true, "appears twice");
    free(ram);
    close(fd);
}

/* Random damage to header and state (checksums fixed half of the time, so
 * the structural checks are reached): never a crash, never a section of a
 * file that was refused, and a file that is accepted stays consistent. */
static unsigned flip_at;
static void flip(uint8_t *b, size_t *n)
{
    (void)n;
    b[flip_at % (SNAP_STATE_OFF + 256)] ^= (uint8_t)(1u << (flip_at % 7));
}

static void test_random_damage(void **state)
{
    uint8_t *ram;
    int fd = make_snapshot(&ram);

    (void)state;
    srand(42);
    for (int i = 0; i < 2000; i++) {
        struct snap_reader r;
        struct herd_err err = {0};
        int d;

        flip_at = (unsigned)rand();
        if (flip_at % (SNAP_STATE_OFF + 256) < SNAP_STATE_OFF && flip_at % (SNAP_STATE_OFF + 256) >= 144)
            continue; /* padding between header and state: not read */
        d = damaged(fd, flip, i & 1);
        if (snap_read(&r, d, &err) == 0) {
            for (uint32_t s = 0; s < r.nr_sections; s++)
                assert_true(r.sections[s].data + r.sections[s].len <= r.state + r.hdr.state_len);
            snap_reader_free(&r);
        } else {
            assert_true(err.msg[0] != 0);
            assert_null(r.state);
        }
        close(d);
    }
    free(ram);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_reader_refusals),
        cmocka_unit_test(test_random_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
