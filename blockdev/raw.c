/*
 * raw format: the guest disk is the file, byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int raw_open(struct blockdev *bd, const struct blockdev_open_opts *opts)
{
    int r = bd_file_size(bd->fd, &bd->size);
    if (r < 0)
        return r;
    bd->priv = bd; /* nothing private; non-NULL marks "opened" */
    return 0;
}

static void raw_close(struct blockdev *bd)
{
    bd->priv = NULL;
}

static int raw_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
    return bd_pread_full(bd->fd, buf, len, off);
}

static int raw_write(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
    return bd_pwrite_full(bd->fd, buf, len, off);
}

static int raw_zero(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
    int mode = (flags & BLOCKDEV_ZERO_MAY_UNMAP) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                                 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    if (fallocate(bd->fd, mode, (off_t)off, (off_t)len) == 0)
        return 0;
    static const uint8_t zeros[65536];
    while (len) {
        uint64_t n = BD_MIN(len, sizeof(zeros));
        int r = bd_pwrite_full(bd->fd, zeros, n, off);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

static int raw_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
    /* Discard is a hint on raw; punching keeps the contents well defined (zeros)
     * only where the file system supports it, so leave data alone otherwise. */
    if (fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) < 0 && errno != EOPNOTSUPP)
        return -errno;
    return 0;
}

static int raw_flush(struct blockdev *bd)
{
    int r = bd_fdatasync(bd->fd);
    struct stat st;
    /* A character device (/dev/null, a tty) has nothing to write back, and
     * its driver may refuse fdatasync with EINVAL: nothing is lost. */
    if (r == -EINVAL && fstat(bd->fd, &st) == 0 && S_ISCHR(st.st_mode))
        return 0;
    return r;
}

static int raw_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                            struct blockdev_status *st)
{
    return bd_file_status(bd->fd, off, maxlen, bd->size, st);
}

static int raw_map_direct(struct blockdev *bd, uint64_t off, uint64_t len, bool write,
                          uint64_t *host)
{
    *host = off;
    return 1;
}

static int raw_resize(struct blockdev *bd, uint64_t size)
{
    if (size > INT64_MAX)
        return -EFBIG;
    if (ftruncate(bd->fd, (off_t)size) < 0)
        return -errno;
    bd->size = size;
    return 0;
}

/* The grown part of the file takes disk space: allocated (falloc) or
 * written with zeros (full); metadata is qcow2's alone. */
static int raw_grow_prealloc(struct blockdev *bd, uint64_t size, int mode)
{
    if (mode == BLOCKDEV_PREALLOC_METADATA)
        return -ENOTSUP;
    uint64_t old = bd->size;
    int r = raw_resize(bd, size);
    if (r < 0 || size == old)
        return r;
    if (mode == BLOCKDEV_PREALLOC_FALLOC)
        return fallocate(bd->fd, 0, (off_t)old, (off_t)(size - old)) < 0 ? -errno : 0;
    static const uint8_t zeros[65536];
    for (uint64_t off = old; off < size;) {
        uint64_t n = BD_MIN(size - off, sizeof(zeros));
        if ((r = bd_pwrite_full(bd->fd, zeros, n, off)) < 0)
            return r;
        off += n;
    }
    return 0;
}

const struct bd_driver bd_raw_driver = {
    .name = "raw",
    .open = raw_open,
    .close = raw_close,
    .read = raw_read,
    .write = raw_write,
    .zero = raw_zero,
    .discard = raw_discard,
    .flush = raw_flush,
    .block_status = raw_block_status,
    .map_direct = raw_map_direct,
    .resize = raw_resize,
    .grow_prealloc = raw_grow_prealloc,
};
