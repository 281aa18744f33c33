/*
 * null-co format (qemu's null-co driver with read-zeroes=on): no file, a
 * disk of opts->null_size bytes that reads as zeros and drops writes. A
 * source of zeros for conversions and tests; nothing is opened or kept.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static int null_open(struct blockdev *bd, const struct blockdev_open_opts *opts)
{
    if (opts->null_size > (uint64_t)INT64_MAX)
        return herd_err_set(opts->err, -EINVAL, NULL, "null-co size %llu too large",
                            (unsigned long long)opts->null_size);
    bd->size = opts->null_size;
    bd->priv = bd; /* nothing private; non-NULL marks "opened" */
    return 0;
}

static void null_close(struct blockdev *bd)
{
    bd->priv = NULL;
}

static int null_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
    memset(buf, 0, len);
    return 0;
}

static int null_drop(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
    return 0;
}

static int null_zero(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
    return 0;
}

static int null_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
    return 0;
}

static int null_flush(struct blockdev *bd)
{
    return 0;
}

static int null_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                             struct blockdev_status *st)
{
    st->len = maxlen;
    st->flags = BLOCKDEV_ST_ZERO | BLOCKDEV_ST_ALLOCATED;
    return 0;
}

const struct bd_driver bd_null_driver = {
    .name = "null-co",
    .open = null_open,
    .close = null_close,
    .read = null_read,
    .write = null_drop,
    .zero = null_zero,
    .discard = null_discard,
    .flush = null_flush,
    .block_status = null_block_status,
};
