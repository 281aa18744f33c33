/*
 * Pinned backing chains (blockdev_open_opts.chain_pinned): an overlay whose
 * header was rewritten to name another file, a longer or shorter chain, a
 * different backing format, a symbolic link, a FIFO or a device are all
 * refused before the file they name is opened; the pinned chain itself
 * opens and reads.
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
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../blockdev/qcow2_int.h"

static char dir[] = "/tmp/herd-test-chain.XXXXXX";
static char base[256], other[256], mid[256], top[256];

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(base, sizeof(base), "%s/base.raw", dir);
    snprintf(other, sizeof(other), "%s/secret.raw", dir);
    snprintf(mid, sizeof(mid), "%s/mid.qcow2", dir);
    snprintf(top, sizeof(top), "%s/top.qcow2", dir);
    for (int i = 0; i < 2; i++) {
        int fd = open(i ? other : base, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, 1 << 20) < 0 || pwrite(fd, i ? "SECRET" : "parent", 6, 0) != 6)
            return -1;
        close(fd);
    }
    struct qcow2_create_opts m = {.size = 1 << 20, .backing_file = base, .backing_fmt = "raw"};
    struct qcow2_create_opts t = {.size = 1 << 20, .backing_file = mid, .backing_fmt = "qcow2"};
    return qcow2_create(mid, &m) || qcow2_create(top, &t) ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const struct blockdev_link good[] = {{.path = mid, .format = "qcow2"},
                                            {.path = base, .format = "raw"}};

static struct herd_err last; /* why the last open_pinned failed */

static int open_pinned(const char *p, const struct blockdev_link *chain, unsigned n,
                       struct blockdev **bd)
{
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true, .chain_pinned = true,
                                   .chain = chain, .chain_len = n, .err = &last};
    int r = blockdev_open(p, &o, bd);
    if (r < 0)
        assert_int_equal(last.code, r);
    return r;
}

/* Rewrites the backing name (and format) of a qcow2 header in place, as a
 * compromised herd-vmm holding the overlay open read-write could. */
static void rebase(const char *p, const char *name, const char *fmt)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "qemu-img rebase -u -f qcow2 -b '%s' -F %s '%s'", name, fmt, p);
    assert_int_equal(system(cmd), 0);
}

static void test_pinned_chain_opens(void **state)
{
    struct blockdev *bd = NULL;
    assert_int_equal(open_pinned(top, good, 2, &bd), 0);
    char b[6];
    assert_int_equal(blockdev_pread(bd, b, 6, 0), 0);
    assert_memory_equal(b, "parent", 6);
    blockdev_close(bd);
}

static void expect_refused(const char *p, const struct blockdev_link *chain, unsigned n,
                           int err, const char *msg)
{
    struct blockdev *bd = (struct blockdev *)1;
    int wd, in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    assert_true(in >= 0);
    wd = inotify_add_watch(in, other, IN_OPEN);
    assert_true(wd >= 0);
    assert_int_equal(open_pinned(p, chain, n, &bd), err);
    assert_null(bd);
    if (!strstr(last.msg, msg))
        fail_msg("error '%s' lacks '%s'", last.msg, msg);
    char ev[256];
    assert_int_equal(read(in, ev, sizeof(ev)), -1); /* the named file was never opened */
    assert_int_equal(errno, EAGAIN);
    close(in);
}

static void test_rewritten_header_refused(void **state)
{
    rebase(top, other, "raw"); /* top -> secret.raw */
    expect_refused(top, good, 2, -EPERM, "pinned chain says");
    rebase(top, mid, "raw"); /* the right file, the wrong format */
    expect_refused(top, good, 2, -EPERM, "backing format 'raw'");
    rebase(mid, other, "raw"); /* one level down */
    rebase(top, mid, "qcow2");
    expect_refused(top, good, 2, -EPERM, "secret.raw");
    rebase(mid, base, "raw");
    /* chains of another length */
    expect_refused(top, good, 1, -EPERM, "pinned chain ends there");
    const struct blockdev_link longer[] = {good[0], good[1], {.path = other, .format = "raw"}};
    expect_refused(top, longer, 3, -EPERM, "has no backing file");
    expect_refused(top, NULL, 0, -EPERM, "pinned chain ends there");
    /* not pinned: the header decides (how herd-img and herd-vmm without
     * backing= behave) */
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true};
    struct blockdev *bd = NULL;
    assert_int_equal(blockdev_open(top, &o, &bd), 0);
    blockdev_close(bd);
}

static void test_links_and_special_files(void **state)
{
    char link[256], fifo[256];
    snprintf(link, sizeof(link), "%s/link.qcow2", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(symlink(top, link), 0);
    struct blockdev *bd = NULL;
    assert_int_equal(open_pinned(link, good, 2, &bd), -ELOOP);
    assert_non_null(strstr(last.msg, "symbolic link"));
    /* a link in the chain */
    char mlink[256];
    snprintf(mlink, sizeof(mlink), "%s/mid-link.qcow2", dir);
    assert_int_equal(symlink(mid, mlink), 0);
    const struct blockdev_link via_link[] = {{.path = mlink, .format = "qcow2"}, good[1]};
    rebase(top, mlink, "qcow2");
    assert_int_equal(open_pinned(top, via_link, 2, &bd), -ELOOP);
    rebase(top, mid, "qcow2");
    /* a FIFO (would block an open without O_NONBLOCK) and a device */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const struct blockdev_link to_fifo[] = {{.path = fifo, .format = "raw"}};
    rebase(top, fifo, "raw");
    assert_int_equal(open_pinned(top, to_fifo, 1, &bd), -EPERM);
    assert_non_null(strstr(last.msg, "not a regular file"));
    const struct blockdev_link to_dev[] = {{.path = "/dev/zero", .format = "raw"}};
    rebase(top, "/dev/zero", "raw");
    assert_int_equal(open_pinned(top, to_dev, 1, &bd), -EPERM);
    assert_non_null(strstr(last.msg, "not a regular file"));
    /* an NBD URI where a file is pinned: refused by name, nothing dialled */
    rebase(top, "nbd+unix:///x?socket=/run/herdd.sock", "raw");
    expect_refused(top, good, 2, -EPERM, "pinned chain says");
    rebase(top, mid, "qcow2");
    assert_int_equal(open_pinned(top, good, 2, &bd), 0);
    blockdev_close(bd);
}

int main(void)
{
    if (system("command -v qemu-img >/dev/null") != 0) {
        printf("skip: qemu-img is not installed (needed to rewrite headers)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_chain_opens),
        cmocka_unit_test(test_rewritten_header_refused),
        cmocka_unit_test(test_links_and_special_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
