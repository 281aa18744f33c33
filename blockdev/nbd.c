/*
 * NBD-backed read-only images through libnbd: a parent served by qemu-nbd or
 * nbdkit on another node, used in place. The path is an NBD URI
 * (nbd://host[:port]/export or nbd+unix:///export?socket=PATH).
 */
#include <errno.h>
#include <libnbd.h>
#include <stdlib.h>

#include "internal.h"

static int nbdev_open(struct blockdev *bd, const struct blockdev_open_opts *opts)
{
    if (!opts->read_only) {
        bd_set_error("NBD image '%s': only read-only use is supported", bd->filename);
        return -EROFS;
    }
    struct nbd_handle *h = nbd_create();
    if (!h)
        return -ENOMEM;
    bd->priv = h;
    if (nbd_connect_uri(h, bd->filename) < 0) {
        int err = nbd_get_errno();
        bd_set_error("NBD image '%s': %s", bd->filename, nbd_get_error());
        return err ? -err : -EIO;
    }
    int64_t size = nbd_get_size(h);
    if (size < 0) {
        bd_set_error("NBD image '%s': %s", bd->filename, nbd_get_error());
        return -EIO;
    }
    bd->size = (uint64_t)size;
    return 0;
}

static void nbd_close_dev(struct blockdev *bd)
{
    nbd_close(bd->priv);
    bd->priv = NULL;
}

static int nbdev_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
    const uint64_t chunk = 32u << 20; /* servers cap requests at 32 MiB */
    uint8_t *p = buf;
    while (len) {
        uint64_t n = BD_MIN(len, chunk);
        if (nbd_pread(bd->priv, p, n, off, 0) < 0) {
            int err = nbd_get_errno();
            return err ? -err : -EIO;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int nbd_ro_write(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
    return -EROFS;
}

static int nbd_ro_zero(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
    return -EROFS;
}

static int nbd_ro_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
    return -EROFS;
}

static int nbdev_flush(struct blockdev *bd)
{
    return 0;
}

static int nbdev_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                            struct blockdev_status *st)
{
    st->len = maxlen;
    st->flags = BLOCKDEV_ST_DATA | BLOCKDEV_ST_ALLOCATED;
    return 0;
}

const struct bd_driver bd_nbd_driver = {
    .name = "nbd",
    .open = nbdev_open,
    .close = nbd_close_dev,
    .read = nbdev_read,
    .write = nbd_ro_write,
    .zero = nbd_ro_zero,
    .discard = nbd_ro_discard,
    .flush = nbdev_flush,
    .block_status = nbdev_block_status,
};
