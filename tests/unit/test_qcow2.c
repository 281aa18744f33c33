/*
 * qcow2 unit tests: refcount packing, hostile headers refused with a precise
 * error, write/read/zero/discard round trips through the library, leak-only
 * state after an unflushed crash-like close, and a qcow2_check that is clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../blockdev/qcow2_int.h"

static char dir[] = "/tmp/herd-test-qcow2.XXXXXX";

static char *path_of(const char *name)
{
    static char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static int setup(void **state)
{
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct blockdev *open_img(const char *p, bool rw)
{
    struct herd_err e;
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = !rw, .err = &e};
    struct blockdev *bd = NULL;
    int r = blockdev_open(p, &o, &bd);
    if (r < 0)
        print_message("open %s: %s\n", p, e.msg);
    return bd;
}

static void test_refcount_packing(void **state)
{
    uint8_t rb[64];
    for (unsigned order = 0; order <= 6; order++) {
        memset(rb, 0, sizeof(rb));
        uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
        uint64_t n = sizeof(rb) * 8 >> order;
        for (uint64_t i = 0; i < n; i++)
            qcow2_rb_set(rb, i, order, (i * 7 + 1) & max);
        for (uint64_t i = 0; i < n; i++)
            assert_int_equal(qcow2_rb_get(rb, i, order), (i * 7 + 1) & max);
    }
    memset(rb, 0, sizeof(rb));
    qcow2_rb_set(rb, 0, 0, 1); /* 1-bit refcounts start at the least significant bit */
    assert_int_equal(rb[0], 1);
    qcow2_rb_set(rb, 1, 4, 0x1234); /* 16-bit entries are big endian */
    assert_int_equal(rb[2], 0x12);
    assert_int_equal(rb[3], 0x34);
}

static void patch(const char *p, off_t off, const void *b, size_t n)
{
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, n, off), (ssize_t)n);
    close(fd);
}

static void patch_be32(const char *p, off_t off, uint32_t v)
{
    uint8_t b[4];
    bd_put_be32(b, v);
    patch(p, off, b, 4);
}

static void patch_be64(const char *p, off_t off, uint64_t v)
{
    uint8_t b[8];
    bd_put_be64(b, v);
    patch(p, off, b, 8);
}

static void expect_refused(const char *p, int err, const char *msg)
{
    struct herd_err e;
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true, .err = &e};
    struct blockdev *bd = NULL;
    int r = blockdev_open(p, &o, &bd);
    assert_null(bd);
    assert_int_equal(r, err);
    assert_int_equal(e.code, err);
    if (!strstr(e.msg, msg))
        fail_msg("error '%s' lacks '%s'", e.msg, msg);
}

static void fresh(const char *p, uint64_t size)
{
    struct qcow2_create_opts c = {.size = size};
    assert_int_equal(qcow2_create(p, &c), 0);
}

static void test_hostile_headers(void **state)
{
    const char *p = path_of("bad.qcow2");
    fresh(p, 1 << 20);
    patch_be32(p, 0, 0x12345678);
    expect_refused(p, -EINVAL, "bad magic");
    fresh(p, 1 << 20);
    patch_be32(p, 4, 4);
    expect_refused(p, -ENOTSUP, "version 4");
    fresh(p, 1 << 20);
    patch_be32(p, 20, 30);
    expect_refused(p, -EINVAL, "cluster_bits");
    fresh(p, 1 << 20);
    patch_be32(p, 36, 0);
    expect_refused(p, -EINVAL, "L1 table too small");
    fresh(p, 1 << 20);
    patch_be32(p, 36, 0x7fffffff);
    expect_refused(p, -EFBIG, "L1 table too large");
    fresh(p, 1 << 20);
    patch_be64(p, 40, 0x30001);
    expect_refused(p, -EINVAL, "L1 table offset");
    fresh(p, 1 << 20);
    patch_be64(p, 48, 0x30000);
    expect_refused(p, -EINVAL, "overlaps");
    fresh(p, 1 << 20);
    patch_be32(p, 96, 7);
    expect_refused(p, -EINVAL, "refcount_order");
    fresh(p, 1 << 20);
    patch_be32(p, 100, 101);
    expect_refused(p, -EINVAL, "header_length");
    fresh(p, 1 << 20);
    patch_be32(p, 32, 1);
    expect_refused(p, -ENOTSUP, "encrypted");
    fresh(p, 1 << 20);
    patch_be64(p, 72, 1ull << 4);
    expect_refused(p, -ENOTSUP, "extended L2");
    fresh(p, 1 << 20);
    patch_be64(p, 72, 1ull << 9);
    expect_refused(p, -ENOTSUP, "Unknown incompatible feature: 200"); /* bit 9, as qemu words it */
    fresh(p, 1 << 20);
    patch_be64(p, 8, 65500);
    patch_be32(p, 16, 100);
    expect_refused(p, -EINVAL, "backing file name outside");
    fresh(p, 1 << 20);
    patch_be32(p, 112, 0xe2792aca);
    patch_be32(p, 116, 0x10000);
    expect_refused(p, -EINVAL, "overruns");
    fresh(p, 1 << 20);
    patch_be64(p, 0x10000, 0x1000000000020000ull);
    expect_refused(p, -EINVAL, "refblock offset");
}

/* An unaligned refblock offset is qemu's kind of corruption found in use:
 * the image opens and reads, the first allocation that needs the refblock
 * fails with EIO and marks the image corrupt (it then opens read-only only). */
static void test_unaligned_refblock_in_use(void **state)
{
    const char *p = path_of("ua.qcow2");
    fresh(p, 1 << 20);
    patch_be64(p, 0x10000, 0x20200);
    struct blockdev *bd = open_img(p, true);
    assert_non_null(bd);
    uint8_t buf[512] = {0};
    assert_int_equal(blockdev_pread(bd, buf, sizeof(buf), 0), 0);
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(blockdev_pwrite(bd, buf, sizeof(buf), 0), -EIO);
    assert_true(blockdev_read_only(bd));
    blockdev_close(bd);
    struct qcow2_info qi;
    bd = open_img(p, false);
    assert_non_null(bd);
    assert_int_equal(qcow2_get_info(bd, &qi), 0);
    assert_true(qi.corrupt);
    blockdev_close(bd);
    assert_null(open_img(p, true));
}

static void test_roundtrip_and_check(void **state)
{
    const char *p = path_of("rt.qcow2");
    struct qcow2_create_opts c = {.size = 8 << 20, .cluster_size = 4096};
    assert_int_equal(qcow2_create(p, &c), 0);
    struct blockdev *bd = open_img(p, true);
    assert_non_null(bd);
    uint8_t *buf = malloc(1 << 20), *rd = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(blockdev_pwrite(bd, buf, 100000, 12345), 0);
    assert_int_equal(blockdev_pwrite(bd, buf, 1 << 20, 3 << 20), 0);
    assert_int_equal(blockdev_write_zeroes(bd, 3 << 20, 8192, 0), 0);
    assert_int_equal(blockdev_discard(bd, (3 << 20) + 8192, 8192), 0);
    assert_int_equal(blockdev_pread(bd, rd, 100000, 12345), 0);
    assert_memory_equal(rd, buf, 100000);
    assert_int_equal(blockdev_pread(bd, rd, 1 << 20, 3 << 20), 0);
    for (int i = 0; i < 16384; i++)
        assert_int_equal(rd[i], 0);
    assert_memory_equal(rd + 16384, buf + 16384, (1 << 20) - 16384);
    assert_int_equal(blockdev_pread(bd, rd, 4096, 7 << 20), 0);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(rd[i], 0);
    assert_int_equal(blockdev_pread(bd, rd, 1, 8 << 20), -EINVAL);
    assert_int_equal(blockdev_close(bd), 0);

    bd = open_img(p, false);
    assert_non_null(bd);
    struct qcow2_check_result res;
    assert_int_equal(qcow2_check(bd, &res, NULL, NULL), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_true(res.allocated_clusters >= 256);
    assert_int_equal(blockdev_pwrite(bd, buf, 1, 0), -EROFS);
    blockdev_close(bd);
    free(buf);
    free(rd);
}

/* Writes whose metadata never reached the disk leave leaks, not corruption. */
static void test_unflushed_is_leak_only(void **state)
{
    const char *p = path_of("leak.qcow2");
    fresh(p, 4 << 20);
    struct blockdev *bd = open_img(p, true);
    assert_non_null(bd);
    uint8_t buf[4096];
    memset(buf, 0x5a, sizeof(buf));
    for (int i = 0; i < 64; i++)
        assert_int_equal(blockdev_pwrite(bd, buf, sizeof(buf), (uint64_t)i * 65536), 0);
    /* Push refcounts out (as an L2 eviction would), then "crash": skip the flush. */
    struct qcow2 *q = qcow2_of(bd);
    assert_int_equal(qcow2_cache_flush(&q->rbc), 0);
    int fd = dup(bd->fd);
    bd->read_only = true; /* close without flushing */
    q->writable = false;
    blockdev_close(bd);
    close(fd);
    bd = open_img(p, false);
    assert_non_null(bd);
    struct qcow2_check_result res;
    assert_int_equal(qcow2_check(bd, &res, NULL, NULL), 0);
    assert_int_equal(res.corruptions, 0);
    assert_true(res.leaks > 0);
    blockdev_close(bd);
}

static void test_backing_format_required(void **state)
{
    char base[256], top[256];
    snprintf(base, sizeof(base), "%s", path_of("base.raw"));
    snprintf(top, sizeof(top), "%s", path_of("top.qcow2"));
    int fd = open(base, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    assert_int_equal(pwrite(fd, "herd", 4, 4096), 4);
    close(fd);
    struct qcow2_create_opts c = {.size = 1 << 20, .backing_file = "base.raw",
                                  .backing_fmt = "raw"};
    assert_int_equal(qcow2_create(top, &c), 0);
    struct blockdev *bd = open_img(top, false);
    assert_non_null(bd);
    char b[4];
    assert_int_equal(blockdev_pread(bd, b, 4, 4096), 0);
    assert_memory_equal(b, "herd", 4);
    blockdev_close(bd);
    /* No format extension and no caller argument: refused, never probed. */
    patch_be32(top, 112, 0x1234567);
    struct herd_err e;
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true, .err = &e};
    assert_int_equal(blockdev_open(top, &o, &bd), -EINVAL);
    assert_non_null(strstr(e.msg, "never probed"));
    o.backing_format = "raw";
    assert_int_equal(blockdev_open(top, &o, &bd), 0);
    blockdev_close(bd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refcount_packing),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_unaligned_refblock_in_use),
        cmocka_unit_test(test_roundtrip_and_check),
        cmocka_unit_test(test_unflushed_is_leak_only),
        cmocka_unit_test(test_backing_format_required),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
