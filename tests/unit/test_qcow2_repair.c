/*
 * qcow2 repair (herd-img check -r): crafted leaks, refcounts too low,
 * refcount 0 (rebuild), dirty and corrupt bits, hostile tables. Each repaired
 * image must check clean afterwards with its data unchanged, and what may not
 * be repaired must be left alone.
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

static char dir[] = "/tmp/herd-test-qcow2-repair.XXXXXX";
static char img[300];

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(img, sizeof(img), "%s/r.qcow2", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct blockdev *open_img(bool rw, bool repair, int *err)
{
    struct herd_err e;
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = !rw, .repair = repair,
                                   .no_backing = true, .err = &e};
    struct blockdev *bd = NULL;
    int r = blockdev_open(img, &o, &bd);
    if (err)
        *err = r;
    return bd;
}

struct layout {
    uint64_t cs, l2, rb, reft;
    unsigned order;
};

/* 1 MiB image: guest cluster 0 = 0x11, guest cluster 2 = 0x22, flushed. */
static void make(unsigned cs, unsigned refbits, struct layout *l)
{
    struct qcow2_create_opts c = {.size = 1 << 20, .cluster_size = cs,
                                  .refcount_bits = refbits};
    assert_int_equal(qcow2_create(img, &c), 0);
    struct blockdev *bd = open_img(true, false, NULL);
    assert_non_null(bd);
    uint8_t *b = malloc(cs);
    memset(b, 0x11, cs);
    assert_int_equal(blockdev_pwrite(bd, b, cs, 0), 0);
    memset(b, 0x22, cs);
    assert_int_equal(blockdev_pwrite(bd, b, cs, 2ull * cs), 0);
    free(b);
    struct qcow2 *q = qcow2_of(bd);
    assert_int_equal(blockdev_flush(bd), 0);
    l->cs = q->cs;
    l->l2 = q->l1[0] & QCOW2_OFFSET_MASK;
    l->rb = q->reft[0] & QCOW2_OFFSET_MASK;
    l->reft = q->reft_offset;
    l->order = q->refcount_order;
    assert_int_equal(blockdev_close(bd), 0);
}

static uint64_t get64(uint64_t off)
{
    uint8_t b[8];
    int fd = open(img, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, 8, (off_t)off), 8);
    close(fd);
    return bd_be64(b);
}

static void put(uint64_t off, const void *b, size_t n)
{
    int fd = open(img, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void put64(uint64_t off, uint64_t v)
{
    uint8_t b[8];
    bd_put_be64(b, v);
    put(off, b, 8);
}

static void set_refcount(const struct layout *l, uint64_t cluster, uint64_t v)
{
    uint8_t *rb = malloc(l->cs);
    int fd = open(img, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, rb, l->cs, (off_t)l->rb), (ssize_t)l->cs);
    qcow2_rb_set(rb, cluster, l->order, v);
    assert_int_equal(pwrite(fd, rb, l->cs, (off_t)l->rb), (ssize_t)l->cs);
    close(fd);
    free(rb);
}

static char *msgs;
static size_t msgs_len;

/* Runs qcow2_repair on the image; its messages land in msgs. */
static int repair(unsigned fix, struct qcow2_check_result *res)
{
    int err;
    struct blockdev *bd = open_img(fix != 0, fix != 0, &err);
    if (!bd)
        return err;
    free(msgs);
    msgs = NULL;
    FILE *m = open_memstream(&msgs, &msgs_len);
    assert_non_null(m);
    struct herd_err e = {0};
    int r = qcow2_repair(bd, fix, res, m, &e);
    fclose(m);
    assert_int_equal(blockdev_close(bd), 0);
    return r;
}

static void has_msg(const char *s)
{
    if (!msgs || !strstr(msgs, s))
        fail_msg("messages lack '%s':\n%s", s, msgs ? msgs : "");
}

static void expect_clean(void)
{
    struct qcow2_check_result res;
    assert_int_equal(repair(0, &res), 0);
    if (res.corruptions || res.leaks || res.check_errors)
        fail_msg("not clean: %llu corruptions, %llu leaks, %llu errors:\n%s",
                 (unsigned long long)res.corruptions, (unsigned long long)res.leaks,
                 (unsigned long long)res.check_errors, msgs);
}

/* Guest clusters 0 and 2 still read 0x11 and 0x22 (or `c2` for cluster 2). */
static void expect_data(uint64_t cs, uint8_t c2)
{
    struct blockdev *bd = open_img(false, false, NULL);
    assert_non_null(bd);
    uint8_t *b = malloc(cs);
    assert_int_equal(blockdev_pread(bd, b, cs, 0), 0);
    for (uint64_t i = 0; i < cs; i++)
        assert_int_equal(b[i], 0x11);
    assert_int_equal(blockdev_pread(bd, b, cs, 2 * cs), 0);
    for (uint64_t i = 0; i < cs; i++)
        assert_int_equal(b[i], c2);
    free(b);
    blockdev_close(bd);
}

static void test_leak_repaired(void **state)
{
    struct layout l;
    make(65536, 0, &l);
    uint64_t e2 = get64(l.l2 + 2 * 8);
    put64(l.l2 + 2 * 8, 0); /* guest cluster 2 forgotten: its data cluster leaks */
    struct qcow2_check_result res;
    assert_int_equal(repair(0, &res), 0);
    assert_int_equal(res.leaks, 1);
    assert_int_equal(res.corruptions, 0);
    char line[80];
    snprintf(line, sizeof(line), "Leaked cluster %llu refcount=1 reference=0",
             (unsigned long long)((e2 & QCOW2_OFFSET_MASK) / l.cs));
    has_msg(line);
    assert_int_equal(repair(QCOW2_FIX_LEAKS, &res), 0);
    assert_int_equal(res.leaks_fixed, 1);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(res.corruptions_fixed, 0);
    has_msg("Repairing cluster");
    expect_clean();
    expect_data(l.cs, 0);
}

/* Two guest clusters share one data cluster whose refcount says 1. */
static void test_low_refcount(void **state)
{
    struct layout l;
    make(4096, 0, &l);
    uint64_t e0 = get64(l.l2);
    put64(l.l2 + 2 * 8, e0);
    struct qcow2_check_result res;
    /* -r leaks fixes the leak (the old cluster 2), never the corruption. */
    assert_int_equal(repair(QCOW2_FIX_LEAKS, &res), 0);
    assert_int_equal(res.leaks_fixed, 1);
    assert_int_equal(res.corruptions, 1);
    assert_int_equal(res.corruptions_fixed, 0);
    has_msg("ERROR cluster");
    assert_int_equal(get64(l.l2), e0); /* COPIED left alone while corrupt */
    /* -r all raises the refcount, then drops COPIED from both entries. */
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    assert_int_equal(res.corruptions_fixed, 3);
    assert_int_equal(res.corruptions, 0);
    has_msg("Repairing OFLAG_COPIED data cluster");
    assert_int_equal(get64(l.l2), e0 & ~QCOW2_OFLAG_COPIED);
    expect_clean();
    expect_data(l.cs, 0x11);
    /* A write to a shared cluster copies it: the other keeps its data. */
    struct blockdev *bd = open_img(true, false, NULL);
    assert_non_null(bd);
    uint8_t b = 0x33;
    assert_int_equal(blockdev_pwrite(bd, &b, 1, 2 * l.cs), 0);
    assert_int_equal(blockdev_close(bd), 0);
    bd = open_img(false, false, NULL);
    assert_int_equal(blockdev_pread(bd, &b, 1, 0), 0);
    assert_int_equal(b, 0x11);
    blockdev_close(bd);
}

/* A referenced cluster with refcount 0: -r leaks refuses, -r all rebuilds. */
static void test_zero_refcount_rebuild(void **state)
{
    struct layout l;
    make(65536, 0, &l);
    uint64_t data0 = get64(l.l2) & QCOW2_OFFSET_MASK;
    set_refcount(&l, data0 / l.cs, 0);
    struct qcow2_check_result res;
    assert_int_equal(repair(QCOW2_FIX_LEAKS, &res), -EIO);
    assert_int_equal(res.check_errors, 1);
    has_msg("ERROR need to rebuild refcount structures");
    assert_int_equal(get64(48), l.reft); /* nothing written */
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    has_msg("Rebuilding refcount structure");
    assert_int_equal(res.corruptions_fixed, 1);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_true(get64(48) != l.reft);
    expect_clean();
    expect_data(l.cs, 0x22);
    /* The old structure's clusters are free again and get reused. */
    struct blockdev *bd = open_img(true, false, NULL);
    uint8_t *b = calloc(1, 8 * l.cs);
    assert_int_equal(blockdev_pwrite(bd, b, 8 * l.cs, 8 * l.cs), 0);
    assert_int_equal(blockdev_close(bd), 0);
    free(b);
    expect_clean();
}

static void test_dirty_and_corrupt_bits(void **state)
{
    struct layout l;
    make(65536, 0, &l);
    put64(l.l2 + 2 * 8, 0);
    put64(72, QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT);
    int err;
    assert_null(open_img(true, false, &err));
    assert_int_equal(err, -EACCES);
    struct qcow2_check_result res;
    assert_int_equal(repair(QCOW2_FIX_LEAKS, &res), 0);
    assert_int_equal(res.leaks_fixed, 1);
    assert_int_equal(get64(72), 0);
    struct blockdev *bd = open_img(true, false, NULL);
    assert_non_null(bd);
    blockdev_close(bd);

    /* With a corruption left, the bits stay. */
    make(65536, 0, &l);
    put64(l.l2 + 2 * 8, get64(l.l2));
    put64(72, QCOW2_INCOMPAT_DIRTY);
    assert_int_equal(repair(QCOW2_FIX_LEAKS, &res), 0);
    assert_int_equal(res.corruptions, 1);
    assert_int_equal(get64(72), QCOW2_INCOMPAT_DIRTY);
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    assert_int_equal(get64(72), 0);
    expect_clean();
}

/* Hostile tables: precise errors, no crash, repairs only where sound. */
static void test_hostile_tables(void **state)
{
    struct layout l;
    struct qcow2_check_result res;
    /* A refblock beyond the end of the file. */
    make(65536, 0, &l);
    put64(l.reft + 8, 0x7f0000000ull);
    assert_int_equal(repair(0, &res), 0);
    assert_true(res.corruptions >= 1);
    has_msg("ERROR refcount block 1 is outside image");
    assert_int_equal(repair(QCOW2_FIX_LEAKS, &res), -EIO);
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    has_msg("Rebuilding refcount structure");
    expect_clean();
    expect_data(l.cs, 0x22);

    /* L1 and L2 entries pointing past the end of the file. */
    make(65536, 0, &l);
    put64(l.l2 + 5 * 8, 0x8000007000000000ull);
    assert_int_equal(repair(0, &res), 0);
    assert_true(res.corruptions >= 1);
    has_msg("exceeding the end of the file");
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    assert_true(res.corruptions >= 1); /* not repairable: left as it is */

    make(65536, 0, &l);
    put64(3 * 65536, 0x8000007000000000ull); /* L1[0] */
    assert_int_equal(repair(0, &res), 0);
    assert_true(res.corruptions >= 1);

    /* A refblock that is also a data cluster. */
    make(65536, 0, &l);
    put64(l.l2 + 3 * 8, l.rb | QCOW2_OFLAG_COPIED);
    assert_int_equal(repair(0, &res), 0);
    has_msg("ERROR refcount block 0 refcount=2");
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    expect_clean();
    expect_data(l.cs, 0x22);

    /* 1-bit refcounts and a cluster referenced twice: overflow, reported. */
    make(65536, 1, &l);
    put64(l.l2 + 2 * 8, get64(l.l2));
    assert_int_equal(repair(0, &res), 0);
    has_msg("ERROR: overflow cluster offset=");
    assert_true(res.corruptions >= 1);
    assert_int_equal(repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res), 0);
    assert_true(res.corruptions >= 1);
}

/* Random bytes over the metadata clusters: never a crash, and a repair that
 * says it succeeded leaves an image that checks clean. */
static void test_fuzzed_metadata(void **state)
{
    struct layout l;
    const char *env = getenv("HERD_REPAIR_FUZZ_ROUNDS");
    int rounds = env ? atoi(env) : 60, repaired = 0;
    srand(1234);
    for (int round = 0; round < rounds; round++) {
        make(4096, 0, &l);
        for (int k = 0; k < 4; k++) {
            uint64_t table = (uint64_t[]){l.reft, l.rb, 3 * l.cs, l.l2}[rand() % 4];
            uint64_t at = table + (uint64_t)(rand() % (int)(l.cs / 8)) * 8;
            uint64_t v = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 9);
            if (rand() % 2)
                v &= 0xffffffull << 9;
            put64(at, v);
        }
        struct qcow2_check_result res;
        int r = repair(QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res);
        if (r == 0 && !res.corruptions && !res.check_errors) {
            struct qcow2_check_result again;
            int r2 = repair(0, &again);
            if (r2 == 0 && (again.corruptions || again.leaks))
                fail_msg("round %d: repaired image not clean:\n%s", round, msgs);
            repaired++;
        }
    }
    print_message("%d of %d damaged images repaired to clean\n", repaired, rounds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leak_repaired),
        cmocka_unit_test(test_low_refcount),
        cmocka_unit_test(test_zero_refcount_rebuild),
        cmocka_unit_test(test_dirty_and_corrupt_bits),
        cmocka_unit_test(test_hostile_tables),
        cmocka_unit_test(test_fuzzed_metadata),
    };
    int r = cmocka_run_group_tests(tests, setup, teardown);
    free(msgs);
    return r;
}
