/*
 * The disk engine's io_uring is restricted (blockdev/io_uring.c,
 * docs/security.md): on an engine made for a temporary image, every
 * operation a compromised herd-vmm would submit (the test build's attacks,
 * the same code herd-vmm-hooks runs) is refused with EACCES and leaves no
 * trace, io_uring_register is refused too, while the guest-style reads and
 * writes still go through the ring (also from a qcow2's backing file). A
 * control case runs the same attacks on a ring without restrictions and
 * sees them succeed, so the attacks are real.
 *
 * Needs no KVM; skips where this kernel gives no io_uring (sysctl
 * kernel.io_uring_disabled, seccomp of a container).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../blockdev/internal.h"

#define IMG_SIZE (1024 * 1024)

static char dir[] = "/tmp/herd-test-uring.XXXXXX";
static char sockpath[100];

static char *path_of(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static bool exists(const char *name)
{
    struct stat st;
    return lstat(path_of(name), &st) == 0;
}

static void touch(const char *name)
{
    int fd = open(path_of(name), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void make_image(const char *name, uint8_t seed)
{
    static uint8_t buf[IMG_SIZE];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + seed);
    int fd = open(path_of(name), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
    close(fd);
}

static bool have_uring(void)
{
    struct io_uring r;
    if (io_uring_queue_init(4, &r, 0) < 0)
        return false;
    io_uring_queue_exit(&r);
    return true;
}

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(sockpath, sizeof(sockpath), "%s/listen.sock", dir);
    touch("victim");
    touch("rename-me");
    touch("secret");
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the attacks, run by the engine's first-submission hook ---------------- */

static int results[BD_ATK_NR];
static int hook_fd = -2;
static struct bd_uring_attack_ctx ctx;

static void run_attacks(struct io_uring *ring, int fd)
{
    ctx = (struct bd_uring_attack_ctx){
        .file = path_of("secret"), .dir = dir, .sock = sockpath, .sock_fd = -1};
    hook_fd = fd;
    for (int op = 0; op < BD_ATK_NR; op++)
        results[op] = bd_test_uring_attack(ring, fd, (enum bd_uring_attack)op, &ctx);
}

struct done {
    int64_t res;
    int n;
};

static void req_done(struct blockdev_req *req, int64_t res)
{
    struct done *d = req->opaque;
    d->res = res;
    d->n++;
}

static int64_t aio(struct blockdev *bd, enum blockdev_op op, void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct done d = {0};
    struct blockdev_req req = {.op = op, .off = off, .iov = &iov, .iovcnt = 1,
                               .done = req_done, .opaque = &d};
    assert_int_equal(blockdev_aio_submit(bd, &req), 0);
    while (!d.n)
        assert_true(blockdev_aio_reap(bd, 1) >= 0);
    return d.res;
}

static void check_pattern(const uint8_t *b, size_t len, uint64_t off, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        if (b[i] != (uint8_t)((off + i) * 7 + seed))
            fail_msg("byte %zu of the read at %llu: %#x", i, (unsigned long long)off, b[i]);
}

static void test_attacks_refused_io_works(void **state)
{
    if (!have_uring())
        skip();
    make_image("disk.raw", 1);
    struct blockdev_open_opts o = {.format = "raw"};
    struct blockdev *bd = NULL;
    assert_int_equal(blockdev_open(path_of("disk.raw"), &o, &bd), 0);
    blockdev_aio_start(bd);
    assert_int_equal(blockdev_engine(bd), BLOCKDEV_ENGINE_IO_URING);

    bd_test_on_first_submit(run_attacks);
    static uint8_t buf[8192] __attribute__((aligned(4096)));
    assert_int_equal(aio(bd, BLOCKDEV_OP_READ, buf, sizeof(buf), 65536), sizeof(buf));
    check_pattern(buf, sizeof(buf), 65536, 1);
    assert_int_equal(hook_fd, bd->fd); /* the read went to the ring */

    for (int op = 0; op < BD_ATK_NR; op++) {
        print_message("uring-attack %s: %d\n", bd_uring_attack_names[op], results[op]);
        if (results[op] != -EACCES)
            fail_msg("%s: %d, expected -EACCES", bd_uring_attack_names[op], results[op]);
    }
    assert_true(exists("victim"));
    assert_true(exists("rename-me"));
    assert_false(exists("renamed"));
    assert_false(exists("symlink"));

    /* A write (buffered: at submission, see aio.c), then a read through the ring. */
    memset(buf, 0xa5, sizeof(buf));
    assert_int_equal(aio(bd, BLOCKDEV_OP_WRITE, buf, 4096, 4096), 4096);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(aio(bd, BLOCKDEV_OP_READ, buf, 8192, 0), 8192);
    check_pattern(buf, 4096, 0, 1);
    for (int i = 4096; i < 8192; i++)
        assert_int_equal(buf[i], 0xa5);
    assert_int_equal(blockdev_close(bd), 0);
}

/* The backing file's descriptor is one of the ring's files too: a read of
 * an unallocated cluster of the overlay is served by the ring from it. */
static void test_backing_read_on_ring(void **state)
{
    if (!have_uring())
        skip();
    if (access("/usr/bin/qemu-img", X_OK) != 0)
        skip();
    make_image("base.raw", 3);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "qemu-img create -q -f qcow2 -b '%s' -F raw '%s' >/dev/null", path_of("base.raw"),
             path_of("top.qcow2"));
    assert_int_equal(system(cmd), 0);
    struct blockdev_open_opts o = {.format = "qcow2"};
    struct blockdev *bd = NULL;
    assert_int_equal(blockdev_open(path_of("top.qcow2"), &o, &bd), 0);
    blockdev_aio_start(bd);
    assert_int_equal(blockdev_engine(bd), BLOCKDEV_ENGINE_IO_URING);
    hook_fd = -2;
    bd_test_on_first_submit(run_attacks);
    static uint8_t buf[4096];
    assert_int_equal(aio(bd, BLOCKDEV_OP_READ, buf, sizeof(buf), 8192), sizeof(buf));
    check_pattern(buf, sizeof(buf), 8192, 3);
    assert_non_null(bd->backing);
    assert_int_equal(hook_fd, bd->backing->fd);
    for (int op = 0; op < BD_ATK_NR; op++)
        assert_int_equal(results[op], -EACCES);
    /* A write allocates in the overlay (on the worker thread) and reads back. */
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(aio(bd, BLOCKDEV_OP_WRITE, buf, sizeof(buf), 8192), sizeof(buf));
    memset(buf, 0, sizeof(buf));
    assert_int_equal(aio(bd, BLOCKDEV_OP_READ, buf, sizeof(buf), 8192), sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0x5a);
    assert_int_equal(blockdev_close(bd), 0);
}

/* Control: the same attacks on a ring without restrictions succeed. */
static void test_unrestricted_ring_allows_attacks(void **state)
{
    if (!have_uring())
        skip();
    make_image("plain.raw", 5);
    touch("victim");
    int fd = open(path_of("plain.raw"), O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    /* something to connect to */
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    unlink(sockpath);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    struct io_uring ring;
    assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
    run_attacks(&ring, fd);
    for (int op = 0; op < BD_ATK_NR; op++)
        print_message("unrestricted uring-attack %s: %d\n", bd_uring_attack_names[op],
                      results[op]);
    assert_true(results[BD_ATK_OPENAT_MEM] >= 0);
    assert_true(results[BD_ATK_OPENAT] >= 0);
    assert_true(results[BD_ATK_SOCKET] >= 0);
    assert_int_equal(results[BD_ATK_CONNECT], 0);
    assert_int_equal(results[BD_ATK_SYMLINKAT], 0);
    assert_int_equal(results[BD_ATK_RENAMEAT], 0);
    assert_int_equal(results[BD_ATK_UNLINKAT], 0);
    assert_int_equal(results[BD_ATK_READV_FD], 512);
    assert_int_equal(results[BD_ATK_WRITEV_FD], 0);
    assert_int_equal(results[BD_ATK_REGISTER], 0);
    assert_false(exists("victim"));
    assert_true(exists("renamed"));
    assert_true(exists("symlink"));
    io_uring_queue_exit(&ring);
    close(lfd);
    close(fd);
    for (int op = BD_ATK_OPENAT_MEM; op <= BD_ATK_SOCKET; op++)
        if (results[op] >= 0)
            close(results[op]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attacks_refused_io_works),
        cmocka_unit_test(test_backing_read_on_ring),
        cmocka_unit_test(test_unrestricted_ring_allows_attacks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
