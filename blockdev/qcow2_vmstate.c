/*
 * qcow2 VM state area (qemu-io's read -b / write -b; where qemu keeps the
 * RAM of an internal snapshot while it is saved): guest-style clusters
 * past the disk, from the first L1 entry the disk does not use on. Writes
 * grow the L1 table as qemu does (by half again until the area fits);
 * reads past it see zeros, and an unallocated cluster reads through to the
 * backing file as any guest cluster does (qemu's behaviour too).
 */
#include <errno.h>
#include <string.h>

#include "qcow2_int.h"

/* Bytes one L1 entry covers. */
static uint64_t l1_span(const struct qcow2 *q)
{
    return q->cs * q->l2_entries;
}

/* Where the area starts: the first L1 entry past the disk. */
static uint64_t vmstate_base(const struct qcow2 *q)
{
    return (q->bd->size + l1_span(q) - 1) / l1_span(q) * l1_span(q);
}

/* The L1 table made to cover guest bytes up to end. */
static int cover(struct qcow2 *q, uint64_t end)
{
    uint64_t need = (end + l1_span(q) - 1) / l1_span(q), n = q->l1_size ? q->l1_size : 1;
    if (need <= q->l1_size)
        return 0;
    while (n < need)
        n = (n * 3 + 1) / 2;
    if (n * 8 > QCOW2_MAX_L1_BYTES)
        return -EFBIG;
    int r = blockdev_flush(q->bd); /* what the old table names is on disk first */
    return r < 0 ? r : qcow2_grow_l1(q, n);
}

int qcow2_vmstate_rw(struct blockdev *bd, void *buf, uint64_t len, uint64_t pos, bool write)
{
    if (bd->drv != &bd_qcow2_driver)
        return -ENOTSUP;
    struct qcow2 *q = qcow2_of(bd);
    uint64_t base = vmstate_base(q), limit = (QCOW2_MAX_L1_BYTES / 8) * l1_span(q);
    if (pos > limit || len > limit - pos || base > limit - pos - len)
        return -EINVAL;
    uint64_t off = base + pos;
    if (write) {
        if (!q->writable)
            return -EROFS;
        int r = cover(q, off + len);
        return r < 0 ? r : bd->drv->write(bd, buf, len, off);
    }
    uint64_t covered = (uint64_t)q->l1_size * l1_span(q);
    uint64_t in = off >= covered ? 0 : BD_MIN(len, covered - off);
    memset((uint8_t *)buf + in, 0, len - in);
    return in ? bd->drv->read(bd, buf, in, off) : 0;
}
