/*
 * qcow2 resize: a shrink goes to qcow2_shrink.c. A grow (qemu-img resize):
 * a larger L1 table when the new size needs
 * one, written and synced before the header points to it; then the new
 * virtual size in the header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"


int qcow2_grow_l1(struct qcow2 *q, uint64_t entries)
{
    uint64_t bytes = entries * 8, nclusters = (bytes + q->cs - 1) >> q->cluster_bits, off;
    uint64_t *nl1 = calloc(nclusters << q->cluster_bits >> 3, 8);
    uint8_t *buf = calloc(1, nclusters << q->cluster_bits);
    int r = nl1 && buf ? 0 : -ENOMEM;
    /* The new table's refcounts are durable before anything points to it. */
    if (r == 0 && (r = qcow2_alloc_clusters(q, nclusters, &off)) == 0)
        r = qcow2_cache_flush(&q->rbc);
    if (r == 0) {
        memcpy(nl1, q->l1, (size_t)q->l1_size * 8);
        for (uint64_t i = 0; i < q->l1_size; i++)
            bd_put_be64(buf + i * 8, nl1[i]);
        r = bd_pwrite_full(q->fd, buf, nclusters << q->cluster_bits, off);
    }
    if (r == 0)
        r = bd_fdatasync(q->fd);
    if (r == 0) {
        uint8_t h[12];
        bd_put_be32(h, (uint32_t)entries);
        bd_put_be64(h + 4, off);
        r = bd_pwrite_full(q->fd, h, sizeof(h), 36);
    }
    if (r == 0)
        r = bd_fdatasync(q->fd);
    if (r == 0) {
        uint64_t old = q->l1_offset, oldc = ((uint64_t)q->l1_size * 8 + q->cs - 1) >> q->cluster_bits;
        free(q->l1);
        q->l1 = nl1;
        nl1 = NULL;
        q->l1_offset = off;
        q->l1_size = (uint32_t)entries;
        if (old && oldc)
            r = qcow2_free_deferred(q, old, oldc);
    }
    free(nl1);
    free(buf);
    return r;
}

/*
 * The grown area [old, bd->size), the header already saying the new size.
 * As qemu, it reads as zeros even where a backing file longer than old has
 * data: the rest of old's cluster is written with zeros (the cluster copied
 * as by any partial write; also when that cluster is preallocated over a
 * backing file, so that its part below old keeps the backing file's data),
 * whole clusters after it are preallocated in mode, then made zero clusters.
 */
static int fill_grown(struct blockdev *bd, uint64_t old, int mode)
{
    struct qcow2 *q = qcow2_of(bd);
    uint64_t end = bd->size, head = BD_MIN(end, (old + q->cs - 1) & ~(q->cs - 1));
    bool zero = bd->backing && bd->backing->size > old;
    bool cow = bd->backing && (zero || mode != BLOCKDEV_PREALLOC_OFF);
    int r = 0;
    if (cow && head > old) {
        uint8_t *z = calloc(1, head - old);
        r = z ? bd->drv->write(bd, z, head - old, old) : -ENOMEM;
        free(z);
    }
    if (r == 0)
        r = qcow2_prealloc_area(bd, cow ? head : old, end, mode);
    if (r == 0 && zero && end > head)
        r = bd->drv->zero(bd, head, end - head, 0);
    return r;
}

int qcow2_grow_prealloc(struct blockdev *bd, uint64_t new_size, int mode)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    if (new_size < bd->size || mode < BLOCKDEV_PREALLOC_OFF || mode > BLOCKDEV_PREALLOC_FULL)
        return -EINVAL;
    uint64_t clusters = (new_size + q->cs - 1) >> q->cluster_bits;
    uint64_t entries = (clusters + q->l2_entries - 1) / q->l2_entries;
    if (entries * 8 > QCOW2_MAX_L1_BYTES)
        return -EFBIG;
    /* Everything the old L1 refers to is on disk first. */
    int r = blockdev_flush(bd);
    if (r == 0 && entries > q->l1_size)
        r = qcow2_grow_l1(q, entries);
    if (r == 0) {
        uint8_t h[8];
        bd_put_be64(h, new_size);
        r = bd_pwrite_full(q->fd, h, sizeof(h), 24);
    }
    if (r == 0)
        r = bd_fdatasync(q->fd);
    if (r == 0) {
        uint64_t old = bd->size;
        bd->size = new_size;
        r = fill_grown(bd, old, mode);
    }
    if (r == 0)
        r = blockdev_flush(bd);
    return r;
}

int qcow2_resize(struct blockdev *bd, uint64_t new_size)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    if (new_size < bd->size)
        return qcow2_of(bd)->writable ? qcow2_shrink(bd, new_size) : -EROFS;
    return qcow2_grow_prealloc(bd, new_size, BLOCKDEV_PREALLOC_OFF);
}
