/*
 * blockdev's asynchronous path (aio.c, worker.c): allocating writes run on
 * the disk's worker thread while mapped buffered writes may run at
 * submission and reads go to io_uring. Whatever the route, requests on one
 * image apply in submission order, done() runs only inside
 * blockdev_aio_reap() on the caller's thread, a close with requests in
 * flight loses nothing, and the image stays clean for qemu-img check.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../blockdev/qcow2_int.h"

#define DISK   (4u << 20)
#define CLUSTER 65536u
#define NREQ   1024
#define CHUNK  4096u

static char dir[] = "/tmp/herd-test-aio.XXXXXX";
static char parent[256], overlay[256];
static uint8_t model[DISK]; /* what the guest disk must read as */

struct req {
    struct blockdev_req b;
    struct iovec iov;
    uint8_t *buf;
    int64_t result;
    bool done;
};

static pthread_t submitter;
static unsigned outside_reap, in_reap_done;
static bool reaping;

static void on_done(struct blockdev_req *b, int64_t result)
{
    struct req *r = b->opaque;

    if (!reaping || !pthread_equal(pthread_self(), submitter))
        outside_reap++;
    r->result = result;
    r->done = true;
    in_reap_done++;
}

static int reap(struct blockdev *bd, unsigned min)
{
    reaping = true;
    int n = blockdev_aio_reap(bd, min);
    reaping = false;
    return n;
}

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(parent, sizeof(parent), "%s/parent.raw", dir);
    snprintf(overlay, sizeof(overlay), "%s/overlay.qcow2", dir);
    int fd = open(parent, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    for (uint32_t i = 0; i < DISK; i++)
        model[i] = (uint8_t)(i * 7 + (i >> 12));
    if (pwrite(fd, model, DISK, 0) != DISK)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool direct; /* open the overlay O_DIRECT: allocating writes go in batches */

static struct blockdev *fresh_overlay(void)
{
    struct qcow2_create_opts c = {.size = DISK, .backing_file = parent, .backing_fmt = "raw"};
    struct blockdev_open_opts o = {.format = "qcow2", .direct = direct};
    struct blockdev *bd;

    int fd = open(parent, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, model, DISK, 0), DISK); /* the overlay reads as its parent */
    close(fd);
    unlink(overlay);
    assert_int_equal(qcow2_create(overlay, &c), 0);
    assert_int_equal(blockdev_open(overlay, &o, &bd), 0);
    return bd;
}

static void submit_rw(struct blockdev *bd, struct req *r, enum blockdev_op op, uint64_t off,
                      uint32_t len)
{
    r->iov = (struct iovec){.iov_base = r->buf, .iov_len = len};
    r->b = (struct blockdev_req){.op = op, .off = off, .iov = &r->iov, .iovcnt = 1,
                                 .done = on_done, .opaque = r};
    r->done = false;
    assert_int_equal(blockdev_aio_submit(bd, &r->b), 0);
}

static void submit_other(struct blockdev *bd, struct req *r, enum blockdev_op op, uint64_t off,
                         uint64_t len)
{
    r->b = (struct blockdev_req){.op = op, .off = off, .len = len, .done = on_done, .opaque = r};
    r->done = false;
    assert_int_equal(blockdev_aio_submit(bd, &r->b), 0);
}

static void read_back_and_compare(struct blockdev *bd)
{
    static uint8_t got[DISK];

    assert_int_equal(blockdev_pread(bd, got, DISK, 0), 0);
    for (uint32_t i = 0; i < DISK; i++)
        if (got[i] != model[i])
            fail_msg("byte %u reads %#x, want %#x", i, got[i], model[i]);
}

static void qemu_img_check_clean(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s'", overlay);
    assert_int_equal(system(cmd), 0);
}

/*
 * A storm on four clusters: allocating and mapped writes, overlapping, with
 * write-zeroes, discards and flushes between, all submitted before any is
 * reaped. The disk must read as if they had run one by one.
 */
static void submission_order(void)
{
    static struct req reqs[NREQ];
    struct blockdev *bd = fresh_overlay();
    uint32_t seed = 12345;

    submitter = pthread_self();
    outside_reap = in_reap_done = 0;
    /* Clusters 0 and 1 allocated first: writes there are mapped (they may
     * run at submission), writes to 2 and 3 allocate (worker) at first. */
    static uint8_t pre[2 * CLUSTER];
    memset(pre, 0x11, sizeof(pre));
    assert_int_equal(blockdev_pwrite(bd, pre, sizeof(pre), 0), 0);
    memcpy(model, pre, sizeof(pre));
    for (unsigned i = 0; i < NREQ; i++) {
        struct req *r = &reqs[i];
        seed = seed * 1103515245u + 12345u;
        uint64_t off = (uint64_t)((seed >> 8) % 4) * CLUSTER + ((seed >> 12) % 15) * CHUNK;
        unsigned kind = (seed >> 20) % 8;

        if (kind == 0) {
            submit_other(bd, r, BLOCKDEV_OP_FLUSH, 0, 0);
        } else if (kind == 1) {
            submit_other(bd, r, BLOCKDEV_OP_WRITE_ZEROES, off, 2 * CHUNK);
            memset(model + off, 0, 2 * CHUNK);
        } else if (kind == 2) {
            uint64_t c = off & ~(uint64_t)(CLUSTER - 1);
            submit_other(bd, r, BLOCKDEV_OP_WRITE_ZEROES, c, CLUSTER);
            memset(model + c, 0, CLUSTER);
        } else {
            r->buf = malloc(2 * CHUNK);
            assert_non_null(r->buf);
            memset(r->buf, (int)(i & 0xff), 2 * CHUNK);
            submit_rw(bd, r, BLOCKDEV_OP_WRITE, off, 2 * CHUNK);
            memcpy(model + off, r->buf, 2 * CHUNK);
        }
    }
    assert_int_equal(outside_reap, 0);
    while (blockdev_aio_inflight(bd))
        assert_true(reap(bd, 1) >= 0);
    for (unsigned i = 0; i < NREQ; i++) {
        assert_true(reqs[i].done);
        assert_true(reqs[i].result >= 0);
        free(reqs[i].buf);
        reqs[i].buf = NULL;
    }
    assert_int_equal(in_reap_done, NREQ);
    assert_int_equal(outside_reap, 0);
    read_back_and_compare(bd);
    assert_int_equal(blockdev_close(bd), 0);
    qemu_img_check_clean();
}

static void test_submission_order(void **state)
{
    direct = false;
    submission_order();
}

/* The same with O_DIRECT (where the file system has it): allocating writes
 * are batched on the worker's ring (worker.c) and must still apply in
 * order, each L2 entry after its data. */
static void test_submission_order_direct(void **state)
{
    direct = true;
    submission_order();
    direct = false;
}

/* First writes to 32 fresh clusters, 512 of them at random, all submitted
 * before any is reaped: with O_DIRECT, batches of copy-on-writes in which
 * the same cluster comes up again (it must wait for the batch's commit, or
 * it would be allocated twice and one write lost). */
static void test_batch_collisions(void **state)
{
    static struct req reqs[512];
    uint32_t seed = 777;

    direct = true;
    struct blockdev *bd = fresh_overlay();
    direct = false;
    submitter = pthread_self();
    for (unsigned i = 0; i < 512; i++) {
        struct req *r = &reqs[i];
        seed = seed * 1103515245u + 12345u;
        uint64_t off = (uint64_t)(8 + (seed >> 10) % 32) * CLUSTER + ((seed >> 20) % 16) * CHUNK;

        r->buf = aligned_alloc(4096, CHUNK);
        assert_non_null(r->buf);
        memset(r->buf, (int)(i * 13 & 0xff), CHUNK);
        submit_rw(bd, r, BLOCKDEV_OP_WRITE, off, CHUNK);
        memcpy(model + off, r->buf, CHUNK);
    }
    while (blockdev_aio_inflight(bd))
        assert_true(reap(bd, 1) >= 0);
    for (unsigned i = 0; i < 512; i++) {
        assert_int_equal(reqs[i].result, CHUNK);
        free(reqs[i].buf);
        reqs[i].buf = NULL;
    }
    read_back_and_compare(bd);
    assert_int_equal(blockdev_close(bd), 0);
    qemu_img_check_clean();
}

/* Reads go to the ring: one submitted while an allocating write of the same
 * cluster is in flight need not see it (as on real disks), but once the
 * write is reaped, every read sees it and the rest of the cluster still
 * reads as the parent (the copy-on-write). */
static void test_read_after_reaped_write(void **state)
{
    static struct req w, rd;
    struct blockdev *bd = fresh_overlay();

    submitter = pthread_self();
    w.buf = malloc(CHUNK);
    rd.buf = malloc(CLUSTER);
    assert_non_null(w.buf);
    assert_non_null(rd.buf);
    for (unsigned c = 0; c < 8; c++) {
        uint64_t off = (uint64_t)c * CLUSTER + CHUNK;
        memset(w.buf, 0xc0 + (int)c, CHUNK);
        submit_rw(bd, &w, BLOCKDEV_OP_WRITE, off, CHUNK);
        memcpy(model + off, w.buf, CHUNK);
        while (!w.done)
            assert_true(reap(bd, 1) >= 0);
        assert_int_equal(w.result, CHUNK);
        submit_rw(bd, &rd, BLOCKDEV_OP_READ, (uint64_t)c * CLUSTER, CLUSTER);
        while (!rd.done)
            assert_true(reap(bd, 1) >= 0);
        assert_int_equal(rd.result, CLUSTER);
        assert_memory_equal(rd.buf, model + (uint64_t)c * CLUSTER, CLUSTER);
    }
    free(w.buf);
    free(rd.buf);
    w.buf = rd.buf = NULL;
    assert_int_equal(blockdev_close(bd), 0);
    qemu_img_check_clean();
}

/* blockdev_close with allocating writes still queued on the worker: every
 * one completes (done() from close's own reap), lands, and is flushed. */
static void test_close_in_flight(void **state)
{
    static struct req reqs[64];
    struct blockdev *bd = fresh_overlay();
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true};

    submitter = pthread_self();
    in_reap_done = 0;
    reaping = true; /* close reaps on this thread */
    for (unsigned i = 0; i < 64; i++) {
        uint64_t off = (uint64_t)(i % 60) * CLUSTER + (i % 3) * CHUNK;
        reqs[i].buf = malloc(CHUNK);
        assert_non_null(reqs[i].buf);
        memset(reqs[i].buf, 0x40 + (int)i, CHUNK);
        submit_rw(bd, &reqs[i], BLOCKDEV_OP_WRITE, off, CHUNK);
        memcpy(model + off, reqs[i].buf, CHUNK);
    }
    assert_int_equal(blockdev_close(bd), 0);
    reaping = false;
    assert_int_equal(in_reap_done, 64);
    for (unsigned i = 0; i < 64; i++) {
        assert_int_equal(reqs[i].result, CHUNK);
        free(reqs[i].buf);
        reqs[i].buf = NULL;
    }
    qemu_img_check_clean();
    assert_int_equal(blockdev_open(overlay, &o, &bd), 0);
    read_back_and_compare(bd);
    assert_int_equal(blockdev_close(bd), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static uint64_t fresh_off(unsigned i)
{
    return (uint64_t)i * CLUSTER + (i % 16) * CHUNK;
}

/* What write_fresh_clusters writes, in the model. */
static void model_fresh_clusters(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        memset(model + fresh_off(i), 0x60 + (int)i, CHUNK);
}

/* First writes to clusters 0..n-1 of a fresh overlay, one 4 KiB write
 * each, all in flight at once, then flushed. */
static void write_fresh_clusters(struct blockdev *bd, unsigned n)
{
    static struct req reqs[64];

    submitter = pthread_self();
    for (unsigned i = 0; i < n; i++) {
        reqs[i].buf = aligned_alloc(4096, CHUNK);
        assert_non_null(reqs[i].buf);
        memset(reqs[i].buf, 0x60 + (int)i, CHUNK);
        submit_rw(bd, &reqs[i], BLOCKDEV_OP_WRITE, fresh_off(i), CHUNK);
    }
    model_fresh_clusters(n);
    while (blockdev_aio_inflight(bd))
        assert_true(reap(bd, 1) >= 0);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(reqs[i].result, CHUNK);
        free(reqs[i].buf);
        reqs[i].buf = NULL;
    }
    assert_int_equal(blockdev_flush(bd), 0);
}

/*
 * With O_DIRECT, the file is grown ahead of the batched copy-on-writes
 * (qcow2_grow.c) so that their writes are no extending writes; a clean
 * close cuts it back to the length the same writes give without O_DIRECT
 * (no growing: qemu's length). A process that dies instead leaves the
 * longer file, which qemu-img check finds clean (the tail counts as free,
 * not leaked) and which reads the same.
 */
static void test_grow_ahead_cut_back(void **state)
{
    struct blockdev *bd = fresh_overlay(); /* buffered: the reference */
    write_fresh_clusters(bd, 40);
    assert_int_equal(blockdev_close(bd), 0);
    off_t want = file_size(overlay);

    direct = true;
    bd = fresh_overlay();
    direct = false;
    if (bd->dfd < 0) {
        blockdev_close(bd);
        skip(); /* no O_DIRECT on this file system: no batches, nothing grown */
    }
    write_fresh_clusters(bd, 40);
    off_t open_size = file_size(overlay);
    assert_true(open_size > want); /* grown past what the clusters need */
    assert_int_equal(open_size % CLUSTER, 0);
    read_back_and_compare(bd);
    assert_int_equal(blockdev_close(bd), 0);
    assert_int_equal(file_size(overlay), want);
    qemu_img_check_clean();

    direct = true;
    bd = fresh_overlay();
    direct = false;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        write_fresh_clusters(bd, 40);
        _exit(0); /* no close: as if killed after the flush */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    blockdev_close(bd); /* the parent's copy: it wrote nothing */
    model_fresh_clusters(40);
    assert_true(file_size(overlay) > want);
    qemu_img_check_clean();
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true};
    assert_int_equal(blockdev_open(overlay, &o, &bd), 0);
    read_back_and_compare(bd);
    assert_int_equal(blockdev_close(bd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submission_order),
        cmocka_unit_test(test_submission_order_direct),
        cmocka_unit_test(test_batch_collisions),
        cmocka_unit_test(test_read_after_reaped_write),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_grow_ahead_cut_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
