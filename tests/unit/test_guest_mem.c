/*
 * guest_mem: slot layout around the 32-bit MMIO hole, the bounds checks every
 * guest- or image-supplied address goes through, and memfd-backed RAM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/guest_mem.h"
#include "herd/layout.h"

#define SMALL (4 * MiB)

/* Big layouts: reserve address space only; pages are touched sparsely. */
static void *reserve(uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    assert_true(p != MAP_FAILED);
    return p;
}

static void test_small_buffer_one_slot(void **state)
{
    uint8_t *buf = calloc(1, SMALL);
    struct guest_mem gm;

    assert_non_null(buf);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, SMALL), 0);
    assert_int_equal(gm.size, SMALL);
    assert_int_equal(gm.memfd, -1);
    assert_int_equal(gm.own_buffer, 0);
    assert_int_equal(gm.nr_slots, 1);
    assert_int_equal(gm.slots[0].gpa, 0);
    assert_int_equal(gm.slots[0].size, SMALL);
    assert_ptr_equal(gm.slots[0].host, buf);
    assert_int_equal(guest_mem_low_end(&gm), SMALL);
    /* Destroying buffer-backed memory must not free/unmap the caller's buffer. */
    guest_mem_destroy(&gm);
    assert_int_equal(gm.memfd, -1);
    buf[SMALL - 1] = 1;
    free(buf);
}

static void test_bad_sizes_refused(void **state)
{
    static uint8_t buf[16];
    struct guest_mem gm;

    memset(&gm, 0x5a, sizeof(gm));
    assert_int_equal(guest_mem_init_buffer(&gm, buf, 0), -EINVAL);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, 2 * MiB - 4096), -EINVAL);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, 4 * MiB + 1), -EINVAL);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, 4 * MiB + 2048), -EINVAL);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, 2048 * GiB), -E2BIG);
    /* Refusal leaves the struct alone. */
    for (size_t i = 0; i < sizeof(gm); i++)
        assert_int_equal(((uint8_t *)&gm)[i], 0x5a);
    assert_int_equal(guest_mem_create(&gm, 1 * MiB), -EINVAL);
    assert_int_equal(guest_mem_create(&gm, 3 * MiB + 1), -EINVAL);
}

static void test_exactly_hole_start_one_slot(void **state)
{
    uint64_t size = LAYOUT_MMIO_HOLE_START;
    uint8_t *buf = reserve(size);
    struct guest_mem gm;

    assert_int_equal(guest_mem_init_buffer(&gm, buf, size), 0);
    assert_int_equal(gm.nr_slots, 1);
    assert_int_equal(gm.slots[0].size, LAYOUT_MMIO_HOLE_START);
    assert_int_equal(guest_mem_low_end(&gm), LAYOUT_MMIO_HOLE_START);
    assert_ptr_equal(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START - 8, 8),
                     buf + LAYOUT_MMIO_HOLE_START - 8);
    assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START, 1));
    assert_null(guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START, 1));
    munmap(buf, size);
}

static void test_above_hole_two_slots(void **state)
{
    uint64_t size = 4 * GiB + 64 * MiB;
    uint64_t high = size - LAYOUT_MMIO_HOLE_START;
    uint8_t *buf = reserve(size);
    struct guest_mem gm;
    uint8_t *p;

    assert_int_equal(guest_mem_init_buffer(&gm, buf, size), 0);
    assert_int_equal(gm.nr_slots, 2);
    assert_int_equal(gm.slots[0].gpa, 0);
    assert_int_equal(gm.slots[0].size, LAYOUT_MMIO_HOLE_START);
    assert_ptr_equal(gm.slots[0].host, buf);
    assert_int_equal(gm.slots[1].gpa, LAYOUT_HIGH_RAM_START);
    assert_int_equal(gm.slots[1].size, high);
    assert_ptr_equal(gm.slots[1].host, buf + LAYOUT_MMIO_HOLE_START);
    assert_int_equal(guest_mem_low_end(&gm), LAYOUT_MMIO_HOLE_START);

    /* High RAM starts right after low RAM in the host mapping. */
    p = guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START, 4096);
    assert_ptr_equal(p, buf + LAYOUT_MMIO_HOLE_START);
    p = guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START + high - 16, 16);
    assert_ptr_equal(p, buf + size - 16);
    assert_null(guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START + high - 16, 17));
    assert_null(guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START + high, 1));

    /* Nothing in the hole is RAM: start, device addresses, end. */
    assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START, 1));
    assert_null(guest_mem_ptr(&gm, LAYOUT_IOAPIC, 4));
    assert_null(guest_mem_ptr(&gm, LAYOUT_LAPIC, 4));
    assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_END - 1, 1));
    /* A range from low RAM across the hole into high RAM is not one slot. */
    assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START - 4096, 8192));
    assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START - 4096,
                              LAYOUT_HIGH_RAM_START - LAYOUT_MMIO_HOLE_START + 8192));

    /* A write lands in the high slot, at the right host offset. */
    assert_int_equal(guest_mem_write(&gm, LAYOUT_HIGH_RAM_START + 0x1234, "herd", 4), 0);
    assert_memory_equal(buf + LAYOUT_MMIO_HOLE_START + 0x1234, "herd", 4);
    assert_int_equal(guest_mem_write(&gm, LAYOUT_IOAPIC, "x", 1), -EFAULT);
    munmap(buf, size);
}

static void test_ptr_bounds(void **state)
{
    uint8_t *buf = calloc(1, SMALL);
    struct guest_mem gm;

    assert_non_null(buf);
    assert_int_equal(guest_mem_init_buffer(&gm, buf, SMALL), 0);
    assert_ptr_equal(guest_mem_ptr(&gm, 0, SMALL), buf);
    assert_ptr_equal(guest_mem_ptr(&gm, 0x1000, 1), buf + 0x1000);
    assert_ptr_equal(guest_mem_ptr(&gm, SMALL - 1, 1), buf + SMALL - 1);
    assert_ptr_equal(guest_mem_ptr(&gm, SMALL, 0), NULL); /* gpa itself is past RAM */
    /* Straddling the end of the slot. */
    assert_null(guest_mem_ptr(&gm, SMALL - 1, 2));
    assert_null(guest_mem_ptr(&gm, SMALL - 4096, 4097));
    assert_null(guest_mem_ptr(&gm, 0, SMALL + 1));
    /* Lengths that would wrap gpa + len around 2^64. */
    assert_null(guest_mem_ptr(&gm, 0x1000, UINT64_MAX));
    assert_null(guest_mem_ptr(&gm, 0x1000, UINT64_MAX - 0xfff + 1));
    assert_null(guest_mem_ptr(&gm, SMALL - 1, UINT64_MAX));
    /* Addresses past RAM, in the hole, and at the top of the address space. */
    assert_null(guest_mem_ptr(&gm, SMALL, 1));
    assert_null(guest_mem_ptr(&gm, LAYOUT_MMIO_HOLE_START, 1));
    assert_null(guest_mem_ptr(&gm, LAYOUT_HIGH_RAM_START, 1));
    assert_null(guest_mem_ptr(&gm, UINT64_MAX, 1));
    assert_null(guest_mem_ptr(&gm, UINT64_MAX - 1, 2));

    /* guest_mem_write: copies exactly, refuses a straddling write whole. */
    memset(buf + SMALL - 8, 0xaa, 8);
    assert_int_equal(guest_mem_write(&gm, SMALL - 4, "abcdefgh", 8), -EFAULT);
    for (int i = 0; i < 8; i++)
        assert_int_equal(buf[SMALL - 8 + i], 0xaa);
    assert_int_equal(guest_mem_write(&gm, 0x2000, "abcdefgh", 8), 0);
    assert_memory_equal(buf + 0x2000, "abcdefgh", 8);
    assert_int_equal(buf[0x2008], 0);
    assert_int_equal(buf[0x1fff], 0);
    free(buf);
}

static void test_memfd_create_destroy(void **state)
{
    struct guest_mem gm;
    struct stat st;
    uint8_t *p;
    int fd;

    assert_int_equal(guest_mem_create(&gm, 8 * MiB), 0);
    assert_true(gm.memfd >= 0);
    assert_int_equal(gm.own_buffer, 1);
    assert_non_null(gm.base);
    assert_int_equal(gm.size, 8 * MiB);
    assert_int_equal(gm.nr_slots, 1);
    assert_int_equal(gm.slots[0].size, 8 * MiB);
    assert_int_equal(fstat(gm.memfd, &st), 0);
    assert_int_equal(st.st_size, 8 * MiB);
    assert_true(fcntl(gm.memfd, F_GETFD) & FD_CLOEXEC);

    /* RAM starts zeroed, and the mapping is shared with the memfd. */
    p = guest_mem_ptr(&gm, 6 * MiB, 4096);
    assert_non_null(p);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(p[i], 0);
    assert_int_equal(guest_mem_write(&gm, 6 * MiB + 10, "memfd", 5), 0);
    {
        char back[5];

        assert_int_equal(pread(gm.memfd, back, 5, (off_t)(6 * MiB + 10)), 5);
        assert_memory_equal(back, "memfd", 5);
    }
    fd = gm.memfd;
    guest_mem_destroy(&gm);
    assert_int_equal(gm.memfd, -1);
    assert_null(gm.base);
    assert_int_equal(gm.nr_slots, 0);
    /* The descriptor really was closed. */
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    /* After destroy nothing is addressable any more. */
    assert_null(guest_mem_ptr(&gm, 0, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_buffer_one_slot),
        cmocka_unit_test(test_bad_sizes_refused),
        cmocka_unit_test(test_exactly_hole_start_one_slot),
        cmocka_unit_test(test_above_hole_two_slots),
        cmocka_unit_test(test_ptr_bounds),
        cmocka_unit_test(test_memfd_create_destroy),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
