/*
 * Growing the image file ahead of its allocating writes, and cutting the
 * file back to its last counted cluster.
 *
 * A direct write past the end of a file is an extending write: ext4 (and
 * XFS) take the inode lock exclusively for it, cannot start it without
 * blocking (io_uring hands it to an io-wq thread), and wait for it to
 * complete before the next one may start, so the copy-on-write clusters of
 * a fresh overlay reach the disk one at a time. Clusters inside the file,
 * even unwritten (fallocate), are plain overwrites: issued at once and in
 * parallel. So before a batched allocating write (worker.c) the file is
 * grown by fallocate to cover it, a chunk at a time.
 *
 * The space grown ahead holds no cluster with a refcount: a crash leaves a
 * longer file whose tail qemu-img check counts as free, not leaked. A clean
 * close cuts the file back to what is counted, never below the size it was
 * opened with, so a file herd wrote has the length qemu would give it.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "qcow2_int.h"

#define GROW_MIN (1ull << 20)
#define GROW_MAX (8ull << 20) /* space a busy guest holds beyond its clusters */

int qcow2_cut_tail(struct qcow2 *q, uint64_t floor)
{
    uint64_t fsize;
    int r = bd_file_size(q->fd, &fsize);
    if (r < 0)
        return r;
    uint64_t c = (fsize + q->cs - 1) >> q->cluster_bits, rc = 0;
    uint64_t floor_c = (floor + q->cs - 1) >> q->cluster_bits;
    while (c > floor_c && rc == 0) {
        uint64_t rng = (c - 1) / q->rb_entries;
        if (rng >= q->reft_size || !q->reft[rng]) {
            c = BD_MAX(rng * q->rb_entries, floor_c); /* no refblock: nothing counted */
            continue;
        }
        if ((r = qcow2_refcount_get(q, c - 1, &rc)) < 0)
            return r;
        if (rc == 0)
            c--;
    }
    uint64_t end = BD_MAX(c << q->cluster_bits, floor);
    if (end < fsize && ftruncate(q->fd, (off_t)end) < 0)
        return -errno;
    q->grown_end = BD_MIN(q->grown_end, BD_MIN(end, fsize)); /* the size now */
    if (q->free_hint > c)
        q->free_hint = c;
    return 0;
}

int qcow2_grow_init(struct qcow2 *q)
{
    uint64_t fsize;
    int r = q->writable ? bd_file_size(q->fd, &fsize) : 0;
    if (r == 0 && q->writable)
        q->open_end = q->grown_end = fsize;
    return r;
}

void qcow2_grow_ahead(struct qcow2 *q, uint64_t end)
{
    if (!q->writable || q->grow_off || end <= q->grown_end)
        return;
    uint64_t chunk = BD_MIN(BD_MAX(q->grown_end / 16, GROW_MIN), GROW_MAX);
    uint64_t to = BD_MAX(end, q->grown_end + chunk);
    to = (to + q->cs - 1) & ~(q->cs - 1);
    /* Where the file system cannot, writes extend the file as before. Over
     * bytes some other write already put there, fallocate changes nothing. */
    if (fallocate(q->fd, 0, (off_t)q->grown_end, (off_t)(to - q->grown_end)) < 0) {
        q->grow_off = true;
        return;
    }
    q->grown_end = to;
}

void qcow2_grow_trim(struct qcow2 *q)
{
    if (q->writable && q->grown_end > q->open_end)
        (void)qcow2_cut_tail(q, q->open_end); /* a longer file is still a valid one */
}
