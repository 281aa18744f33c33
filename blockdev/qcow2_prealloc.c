/*
 * qcow2 metadata preallocation (qemu-img create -o preallocation=metadata,
 * qemu-img resize --preallocation=metadata): every unallocated guest cluster
 * of a range gets a host cluster of its own, its data left unwritten; with
 * falloc and full, the file's holes from its old end on then take disk
 * space (allocated, or written with zeros).
 *
 * Layout as qemu's preallocate_co: per L2 table, the table first (when it is
 * new), then one contiguous run of data clusters for the unallocated entries
 * it covers. Crash-safe as every allocation here: the refcounts of the table
 * and of the run are durable before the L2 entries that point at them (the
 * L2 cache depends on the refcount cache), the file is extended to cover a
 * run before any entry points into it, and a run that reuses freed space
 * inside the file is zeroed first, so that no entry ever exposes old bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2_int.h"

/* Zeros over [off, off + len) of the image file, all below its end. */
static int zero_old_space(struct qcow2 *q, uint64_t off, uint64_t len)
{
    if (fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) == 0)
        return 0;
    memset(q->bounce, 0, q->cs);
    for (uint64_t d = 0; d < len; d += q->cs) {
        int r = bd_pwrite_full(q->fd, q->bounce, BD_MIN(q->cs, len - d), off + d);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Makes host clusters [off, off + len) safe to point at: inside the file and
 * reading as zeros. */
static int prepare_run(struct qcow2 *q, uint64_t off, uint64_t len)
{
    uint64_t fsize;
    int r = bd_file_size(q->fd, &fsize);
    if (r < 0)
        return r;
    if (off < fsize && (r = zero_old_space(q, off, BD_MIN(len, fsize - off))) < 0)
        return r;
    if (off + len > fsize && ftruncate(q->fd, (off_t)(off + len)) < 0)
        return -errno;
    return 0;
}

/* Preallocates the unallocated entries among guest clusters [ci, end) of one
 * L2 table. */
static int prealloc_table(struct qcow2 *q, uint64_t ci, uint64_t end)
{
    uint64_t n = 0, e;
    for (uint64_t c = ci; c < end; c++) {
        int r = qcow2_l2_get(q, c, &e);
        if (r < 0)
            return r;
        n += qcow2_classify(q, e) == QCOW2_C_UNALLOCATED;
    }
    if (n == 0)
        return 0;
    uint64_t host;
    int r = qcow2_l2_prepare(q, ci);
    if (r == 0)
        r = qcow2_alloc_run(q, n, &host);
    if (r == 0)
        r = prepare_run(q, host, n * q->cs);
    for (uint64_t c = ci; r == 0 && c < end; c++) {
        if ((r = qcow2_l2_get(q, c, &e)) < 0)
            break;
        if (qcow2_classify(q, e) != QCOW2_C_UNALLOCATED)
            continue;
        if (qcow2_overlaps_metadata(q, host, q->cs))
            return qcow2_mark_corrupt(q, "preallocated cluster %#llx overlaps metadata",
                                      (unsigned long long)host);
        r = qcow2_l2_set(q, c, host | QCOW2_OFLAG_COPIED);
        host += q->cs;
    }
    return r;
}

/* Metadata preallocation of guest [from, to), flushed. */
static int prealloc_range(struct blockdev *bd, uint64_t from, uint64_t to)
{
    struct qcow2 *q = qcow2_of(bd);
    to = BD_MIN(to, bd->size);
    uint64_t ci = from >> q->cluster_bits, end = (to + q->cs - 1) >> q->cluster_bits;
    while (ci < end) {
        uint64_t tend = BD_MIN(end, (ci / q->l2_entries + 1) * q->l2_entries);
        int r = prealloc_table(q, ci, tend);
        if (r < 0)
            return r;
        ci = tend;
    }
    return blockdev_flush(bd);
}

/* One hole [off, off + len) of the file made to take disk space: allocated
 * (falloc) or written with zeros (full). */
static int fill_hole(struct qcow2 *q, uint64_t off, uint64_t len, int mode)
{
    if (mode == BLOCKDEV_PREALLOC_FALLOC)
        return fallocate(q->fd, 0, (off_t)off, (off_t)len) < 0 ? -errno : 0;
    memset(q->bounce, 0, q->cs);
    for (uint64_t d = 0; d < len;) {
        uint64_t n = BD_MIN(q->cs, len - d);
        int r = bd_pwrite_full(q->fd, q->bounce, n, off + d);
        if (r < 0)
            return r;
        d += n;
    }
    return 0;
}

/* The holes of file bytes [from, end) take disk space. fill_hole is told
 * each stretch SEEK_HOLE calls a hole (an unwritten extent may be one). */
static int fill_range(struct qcow2 *q, uint64_t from, uint64_t end, int mode)
{
    int r = 0;
    while (r == 0 && from < end) {
        off_t h = lseek(q->fd, (off_t)from, SEEK_HOLE);
        if (h < 0)
            return -errno;
        if ((uint64_t)h >= end)
            break;
        off_t d = lseek(q->fd, h, SEEK_DATA);
        if (d < 0 && errno != ENXIO)
            return -errno;
        uint64_t dend = d < 0 ? end : BD_MIN((uint64_t)d, end);
        r = fill_hole(q, (uint64_t)h, dend - (uint64_t)h, mode);
        from = dend;
    }
    return r;
}

/*
 * falloc, full: the space the preallocation added to the file, from the
 * cluster after its old end (old_end; as qemu, the rest of the old file is
 * left as it was), takes disk space; and so does the host cluster of the
 * guest cluster holding from when it lies before that (allocated before
 * the grow, or by the metadata preallocation in space freed earlier).
 */
static int fill_file(struct qcow2 *q, uint64_t old_end, uint64_t from, int mode)
{
    uint64_t end, e, host;
    int r = bd_file_size(q->fd, &end);
    old_end = (old_end + q->cs - 1) & ~(q->cs - 1);
    if (r == 0)
        r = fill_range(q, old_end, end, mode);
    if (r == 0)
        r = qcow2_l2_get(q, from >> q->cluster_bits, &e);
    if (r == 0 && qcow2_classify(q, e) == QCOW2_C_NORMAL &&
        qcow2_entry_host(q, e, &host) == 0 && host < old_end)
        r = fill_range(q, host, BD_MIN(host + q->cs, end), mode);
    return r == 0 ? bd_fdatasync(q->fd) : r;
}

int qcow2_prealloc_area(struct blockdev *bd, uint64_t from, uint64_t to, int mode)
{
    struct qcow2 *q = qcow2_of(bd);
    if (mode == BLOCKDEV_PREALLOC_OFF)
        return 0;
    if (mode < BLOCKDEV_PREALLOC_OFF || mode > BLOCKDEV_PREALLOC_FULL)
        return -EINVAL;
    uint64_t fsize;
    int r = bd_file_size(q->fd, &fsize);
    if (r == 0)
        r = prealloc_range(bd, from, to);
    if (r == 0 && mode != BLOCKDEV_PREALLOC_METADATA && from < bd->size)
        r = fill_file(q, fsize, from, mode);
    return r;
}

int qcow2_preallocate_mode(struct blockdev *bd, uint64_t from, uint64_t to, int mode)
{
    if (strcmp(blockdev_format(bd), "qcow2"))
        return -ENOTSUP;
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    if (bd->backing_name)
        return -ENOTSUP; /* qemu: only with extended L2 entries */
    return qcow2_prealloc_area(bd, from, to, mode);
}

int qcow2_preallocate(struct blockdev *bd, uint64_t from, uint64_t to)
{
    return qcow2_preallocate_mode(bd, from, to, BLOCKDEV_PREALLOC_METADATA);
}

/* qemu's qcow2_detect_metadata_preallocation: the clusters with a refcount
 * reach clearly past (a ninth more, at least two) what the file really has
 * on disk. The scan stops at that threshold. */
static bool detect_meta_prealloc(struct qcow2 *q)
{
    struct stat st;
    if (fstat(q->fd, &st) < 0)
        return false;
    uint64_t real = (uint64_t)st.st_blocks * 512 / q->cs;
    uint64_t threshold = BD_MAX(real * 10 / 9, real + 2), count = 0;
    uint64_t end = ((uint64_t)st.st_size + q->cs - 1) >> q->cluster_bits;
    for (uint64_t c = 0; c < end && count < threshold; c++) {
        uint64_t rng = c / q->rb_entries, rc = 0;
        if (rng >= q->reft_size || !q->reft[rng]) {
            c = (rng + 1) * q->rb_entries - 1; /* no refblock: none in use there */
            continue;
        }
        if (qcow2_refcount_get(q, c, &rc) < 0)
            return false;
        count += rc != 0;
    }
    return count >= threshold;
}

bool qcow2_meta_preallocated(struct qcow2 *q)
{
    if (q->prealloc_meta < 0)
        q->prealloc_meta = detect_meta_prealloc(q);
    return q->prealloc_meta > 0;
}
