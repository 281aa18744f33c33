/*
 * qcow2 format driver: open, read, write (cluster copy-on-write), write
 * zeroes, discard, flush, allocation status.
 *
 * Write order for a newly allocated cluster: refcount (in the refblock
 * cache) -> data (written to the host file at once) -> L2 entry (in the L2
 * cache). The L2 cache writes refblocks before any L2 table, and flush writes
 * refblocks, syncs, writes L2 tables and the L1 table, syncs, and only then
 * applies deferred refcount decrements. A crash leaks, never corrupts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"

#define DEFAULT_L2_CACHE (32u * 1024 * 1024)
#define DEFAULT_RB_CACHE (4u * 1024 * 1024)

/* Guest bytes of cluster ci: short only for the disk's last cluster; past
 * the disk (the VM state area) clusters are whole. */
static uint64_t cluster_len(const struct qcow2 *q, uint64_t ci)
{
    uint64_t start = ci << q->cluster_bits;
    return start >= q->bd->size ? q->cs : BD_MIN(q->cs, q->bd->size - start);
}

static int qcow2_open(struct blockdev *bd, const struct blockdev_open_opts *opts)
{
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    bd->priv = q;
    q->bd = bd;
    q->fd = bd->fd;
    q->writable = !bd->read_only;
    q->prealloc_meta = -1;
    int r = qcow2_header_read(q, opts);
    if (r == 0)
        r = qcow2_grow_init(q);
    if (r < 0)
        return r;
    size_t l2bytes = opts->l2_cache_bytes ? opts->l2_cache_bytes : DEFAULT_L2_CACHE;
    size_t l2n = BD_MIN(l2bytes / q->cs, (size_t)q->l1_size + 4);
    size_t rbn = BD_MIN(DEFAULT_RB_CACHE / q->cs, (size_t)q->reft_size + 4);
    if ((r = qcow2_cache_init(&q->rbc, q, BD_MAX(rbn, 16))) < 0 ||
        (r = qcow2_cache_init(&q->l2c, q, BD_MAX(l2n, 16))) < 0)
        return r;
    q->l2c.depends = &q->rbc;
    q->cbuf = aligned_alloc(4096, BD_MAX(q->cs, 4096));
    q->bounce = aligned_alloc(4096, BD_MAX(q->cs, 4096));
    if (!q->cbuf || !q->bounce)
        return -ENOMEM;
    return 0;
}

static void qcow2_close(struct blockdev *bd)
{
    struct qcow2 *q = qcow2_of(bd);
    qcow2_grow_trim(q);
    qcow2_cache_free(&q->l2c);
    qcow2_cache_free(&q->rbc);
    qcow2_header_free(q);
    free(q->pending);
    free(q->cbuf);
    free(q->bounce);
    free(q);
    bd->priv = NULL;
}

/* Number of bytes from off (inside cluster ci, entry e) that share e's kind
 * and, for host-backed kinds, are contiguous on the host. */
static int run_length(struct qcow2 *q, uint64_t ci, uint64_t e, uint64_t off, uint64_t max,
                      uint64_t *n)
{
    enum qcow2_ctype t = qcow2_classify(q, e);
    uint64_t inoff = off & (q->cs - 1);
    *n = BD_MIN(max, q->cs - inoff);
    if (t == QCOW2_C_COMPRESSED)
        return 0;
    uint64_t host = e & QCOW2_OFFSET_MASK;
    while (*n < max) {
        uint64_t ne;
        int r = qcow2_l2_get(q, ++ci, &ne);
        if (r < 0)
            return r;
        host += q->cs;
        if (qcow2_classify(q, ne) != t)
            break;
        if ((t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC) &&
            ((ne & QCOW2_OFFSET_MASK) != host ||
             (ne & QCOW2_OFLAG_COPIED) != (e & QCOW2_OFLAG_COPIED)))
            break;
        *n += BD_MIN(max - *n, q->cs);
    }
    return 0;
}

static int read_chunk(struct qcow2 *q, uint64_t e, uint8_t *buf, uint64_t n, uint64_t off)
{
    uint64_t host;
    int r;
    switch (qcow2_classify(q, e)) {
    case QCOW2_C_UNALLOCATED:
        return bd_read_backing(q->bd, buf, n, off);
    case QCOW2_C_ZERO_PLAIN:
    case QCOW2_C_ZERO_ALLOC:
        memset(buf, 0, n);
        return 0;
    case QCOW2_C_NORMAL:
        if ((r = qcow2_entry_host(q, e, &host)) < 0)
            return r;
        return bd_pread_full(q->fd, buf, n, host + (off & (q->cs - 1)));
    case QCOW2_C_COMPRESSED:
        if ((r = qcow2_read_compressed(q, e, NULL)) < 0)
            return r;
        memcpy(buf, q->cbuf + (off & (q->cs - 1)), n);
        return 0;
    }
    return -EIO;
}

static int qcow2_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
    struct qcow2 *q = qcow2_of(bd);
    uint8_t *p = buf;
    while (len) {
        uint64_t ci = off >> q->cluster_bits, e, n;
        int r = qcow2_l2_get(q, ci, &e);
        if (r == 0)
            r = run_length(q, ci, e, off, len, &n);
        if (r == 0)
            r = read_chunk(q, e, p, n, off);
        if (r < 0)
            return r;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static bool entry_has_host(const struct qcow2 *q, uint64_t e)
{
    enum qcow2_ctype t = qcow2_classify(q, e);
    return t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC || t == QCOW2_C_COMPRESSED;
}

static int free_entry(struct qcow2 *q, uint64_t e)
{
    if (!entry_has_host(q, e))
        return 0;
    if (qcow2_classify(q, e) != QCOW2_C_COMPRESSED)
        return qcow2_free_deferred(q, e & QCOW2_OFFSET_MASK, 1);
    uint64_t off, len;
    qcow2_compressed_range(q, e, &off, &len);
    uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;
    return qcow2_free_deferred(q, first << q->cluster_bits, last - first + 1);
}

/*
 * Copy-on-write of one guest cluster, first half: its L2 table, the current
 * content (backing, zeros, compressed or shared data) with the new bytes
 * (data NULL = zeros) over it in b, and the host cluster it goes to
 * (allocated: refcount in the cache). Nothing points at it yet.
 */
static int cow_prepare(struct qcow2 *q, uint64_t ci, uint64_t e, const uint8_t *data,
                       uint64_t inoff, uint64_t n, uint8_t *b, struct bd_cow *c)
{
    uint64_t clen = cluster_len(q, ci), gstart = ci << q->cluster_bits;
    /* The L2 table first (it may use the bounce buffer), then the data: qemu's
     * layout, which tools and QEMU's iotests that poke images rely on. */
    int r = qcow2_l2_prepare(q, ci);
    if (r == 0 && n < clen)
        r = read_chunk(q, e, b, clen, gstart);
    if (r < 0)
        return r;
    memset(b + clen, 0, q->cs - clen);
    if (data)
        memcpy(b + inoff, data, n);
    else
        memset(b + inoff, 0, n);
    bool reuse = qcow2_classify(q, e) == QCOW2_C_ZERO_ALLOC && (e & QCOW2_OFLAG_COPIED);
    uint64_t host = e & QCOW2_OFFSET_MASK;
    if (!reuse && (r = qcow2_alloc_clusters(q, 1, &host)) < 0)
        return r;
    if (qcow2_overlaps_metadata(q, host, q->cs))
        return qcow2_mark_corrupt(q, "data cluster %#llx overlaps metadata",
                                  (unsigned long long)host);
    *c = (struct bd_cow){.ci = ci, .entry = e, .host = host, .len = q->cs, .reuse = reuse,
                         .buf = b};
    return 0;
}

/* Second half, once the data is on the host: the L2 entry, then the old
 * cluster's reference (deferred to the next flush). */
static int cow_commit(struct qcow2 *q, const struct bd_cow *c)
{
    q->data_written = true;
    int r = qcow2_l2_set(q, c->ci, c->host | QCOW2_OFLAG_COPIED);
    if (r == 0 && !c->reuse)
        r = free_entry(q, c->entry);
    return r;
}

/* Copy-on-write of one guest cluster, start to end. */
static int cow_cluster(struct qcow2 *q, uint64_t ci, uint64_t e, const uint8_t *data,
                       uint64_t inoff, uint64_t n)
{
    struct bd_cow c;
    int r = cow_prepare(q, ci, e, data, inoff, n, q->bounce, &c);
    if (r < 0)
        return r;
    /* With O_DIRECT in use, write whole clusters the same way: mixing cached and
     * direct writes on one range makes every later direct write flush the cache. */
    r = -EINVAL;
    if (q->bd->dfd >= 0 && q->cs >= 4096)
        r = bd_pwrite_full(q->bd->dfd, c.buf, q->cs, c.host);
    if (r == -EINVAL)
        r = bd_pwrite_full(q->fd, c.buf, q->cs, c.host);
    if (r < 0)
        return r;
    return cow_commit(q, &c);
}

/*
 * The worker's batched form (internal.h bd_driver.cow_prepare): a write
 * that lies in one cluster which needs a copy-on-write, on an image with an
 * O_DIRECT descriptor and clusters of 4 KiB or more.
 */
static int qcow2_cow_prepare(struct blockdev *bd, const struct blockdev_req *req,
                             struct bd_cow_buf *slot, const struct bd_cow *batch, unsigned n,
                             struct bd_cow *c)
{
    struct qcow2 *q = qcow2_of(bd);
    uint64_t ci = req->off >> q->cluster_bits, inoff = req->off & (q->cs - 1), e;
    if (!q->writable || bd->dfd < 0 || q->cs < 4096 || !req->len || inoff + req->len > q->cs ||
        req->off > bd->size || req->len > bd->size - req->off)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (batch[i].ci == ci)
            return 2; /* its L2 entry changes when that one commits */
    int r = qcow2_l2_get(q, ci, &e);
    if (r < 0)
        return r;
    if (qcow2_classify(q, e) == QCOW2_C_NORMAL && (e & QCOW2_OFLAG_COPIED))
        return 0; /* allocated: an ordinary write */
    if (slot->cap < q->cs) {
        uint8_t *b = aligned_alloc(4096, q->cs);
        if (!b)
            return 0; /* the unbatched path needs no extra memory */
        free(slot->buf);
        slot->buf = b;
        slot->cap = q->cs;
    }
    r = cow_prepare(q, ci, e, NULL, inoff, req->len, slot->buf, c);
    if (r < 0)
        return r;
    qcow2_grow_ahead(q, c->host + c->len);
    for (int i = 0, at = (int)inoff; i < req->iovcnt; at += (int)req->iov[i].iov_len, i++)
        memcpy(slot->buf + at, req->iov[i].iov_base, req->iov[i].iov_len);
    return 1;
}

static int qcow2_cow_commit(struct blockdev *bd, const struct bd_cow *c)
{
    return cow_commit(qcow2_of(bd), c);
}

static int zero_host_range(struct qcow2 *q, uint64_t host, uint64_t n)
{
    if (fallocate(q->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)host, (off_t)n) == 0)
        return 0;
    memset(q->bounce, 0, q->cs);
    for (uint64_t d = 0; d < n;) {
        uint64_t k = BD_MIN(q->cs, n - d);
        int r = bd_pwrite_full(q->fd, q->bounce, k, host + d);
        if (r < 0)
            return r;
        d += k;
    }
    return 0;
}

/* A cluster a write must give a new host cluster (qemu's test): none yet,
 * compressed, or shared. An allocated zero cluster of its own is reused. */
static bool needs_new_cluster(const struct qcow2 *q, uint64_t e)
{
    enum qcow2_ctype t = qcow2_classify(q, e);
    if (t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC)
        return !(e & QCOW2_OFLAG_COPIED);
    return true;
}

/* Guest clusters from ci (entry e) on, in one L2 table and in the write's
 * bytes [off, off + len), that all need a new host cluster: how many. */
static int new_run(struct qcow2 *q, uint64_t ci, uint64_t e, uint64_t off, uint64_t len,
                   uint64_t *k)
{
    uint64_t last = (off + len - 1) >> q->cluster_bits;
    uint64_t tend = (ci / q->l2_entries + 1) * q->l2_entries - 1;
    *k = needs_new_cluster(q, e);
    for (uint64_t c = ci + 1; *k && c <= BD_MIN(last, tend); c++) {
        uint64_t ne;
        int r = qcow2_l2_get(q, c, &ne);
        if (r < 0)
            return r;
        if (!needs_new_cluster(q, ne))
            break;
        ++*k;
    }
    return 0;
}

static int write_host(struct qcow2 *q, const uint8_t *b, uint64_t n, uint64_t host)
{
    int r = -EINVAL;
    if (q->bd->dfd >= 0 && q->cs >= 4096) /* as cow_cluster: no mixed cached/direct */
        r = bd_pwrite_full(q->bd->dfd, b, n, host);
    return r == -EINVAL ? bd_pwrite_full(q->fd, b, n, host) : r;
}

/* One cluster of a run at host: the write's part [inoff, inoff + n) over
 * the cluster's current content (data NULL: zeros). */
static int run_cluster(struct qcow2 *q, uint64_t ci, uint64_t host, const uint8_t *data,
                       uint64_t inoff, uint64_t n)
{
    uint64_t e, clen = cluster_len(q, ci);
    if (data && n == q->cs)
        return write_host(q, data, n, host);
    int r = qcow2_l2_get(q, ci, &e);
    if (r == 0 && n < clen)
        r = read_chunk(q, e, q->bounce, clen, ci << q->cluster_bits);
    if (r < 0)
        return r;
    if (n >= clen)
        memset(q->bounce, 0, q->cs);
    memset(q->bounce + clen, 0, q->cs - clen);
    if (data)
        memcpy(q->bounce + inoff, data, n);
    else
        memset(q->bounce + inoff, 0, n);
    return write_host(q, q->bounce, q->cs, host);
}

/*
 * An allocating write over k guest clusters from ci that all need a new
 * host cluster, as qemu places it: the L2 table first, then one contiguous
 * run of host clusters (refblocks it lacks right after it), the data, and
 * last the L2 entries (the old clusters' references deferred to the flush).
 * Returns the bytes of the write it covered in *done.
 */
static int write_new_run(struct qcow2 *q, uint64_t ci, uint64_t k, const uint8_t *data,
                         uint64_t off, uint64_t len, uint64_t *done)
{
    uint64_t host;
    int r = qcow2_l2_prepare(q, ci);
    if (r == 0)
        r = qcow2_alloc_run(q, k, &host);
    if (r < 0)
        return r;
    if (qcow2_overlaps_metadata(q, host, k << q->cluster_bits))
        return qcow2_mark_corrupt(q, "data cluster %#llx overlaps metadata",
                                  (unsigned long long)host);
    *done = 0;
    for (uint64_t j = 0; j < k && r == 0; j++) {
        uint64_t inoff = (off + *done) & (q->cs - 1), n = BD_MIN(len - *done, q->cs - inoff);
        r = run_cluster(q, ci + j, host + (j << q->cluster_bits), data ? data + *done : NULL,
                        inoff, n);
        *done += n;
    }
    q->data_written = true;
    for (uint64_t j = 0; j < k && r == 0; j++) {
        uint64_t e;
        if ((r = qcow2_l2_get(q, ci + j, &e)) == 0 &&
            (r = qcow2_l2_set(q, ci + j, (host + (j << q->cluster_bits)) | QCOW2_OFLAG_COPIED)) == 0)
            r = free_entry(q, e);
    }
    return r;
}

static int write_range(struct qcow2 *q, const uint8_t *data, uint64_t len, uint64_t off)
{
    if (!q->writable)
        return -EROFS;
    while (len) {
        uint64_t ci = off >> q->cluster_bits, e, n, inoff = off & (q->cs - 1);
        int r = qcow2_l2_get(q, ci, &e);
        if (r < 0)
            return r;
        if (qcow2_classify(q, e) == QCOW2_C_NORMAL && (e & QCOW2_OFLAG_COPIED)) {
            uint64_t host;
            if ((r = run_length(q, ci, e, off, len, &n)) < 0 ||
                (r = qcow2_entry_host(q, e, &host)) < 0)
                return r;
            if (qcow2_overlaps_metadata(q, host, q->cs))
                return qcow2_mark_corrupt(q, "data cluster %#llx overlaps metadata",
                                          (unsigned long long)host);
            r = data ? bd_pwrite_full(q->fd, data, n, host + inoff)
                     : zero_host_range(q, host + inoff, n);
            q->data_written = true;
        } else if ((r = new_run(q, ci, e, off, len, &n)) == 0 && n > 1) {
            r = write_new_run(q, ci, n, data, off, len, &n);
        } else if (r == 0) {
            n = BD_MIN(len, q->cs - inoff);
            r = cow_cluster(q, ci, e, data, inoff, n);
        }
        if (r < 0)
            return r;
        if (data)
            data += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int qcow2_write(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
    return write_range(qcow2_of(bd), buf, len, off);
}

static bool reads_zero(const struct qcow2 *q, uint64_t e, uint64_t off)
{
    enum qcow2_ctype t = qcow2_classify(q, e);
    if (t == QCOW2_C_ZERO_PLAIN || t == QCOW2_C_ZERO_ALLOC)
        return true;
    return t == QCOW2_C_UNALLOCATED && (!q->bd->backing || off >= q->bd->backing->size);
}

static int zero_cluster(struct qcow2 *q, uint64_t ci, uint64_t e, bool unmap)
{
    enum qcow2_ctype t = qcow2_classify(q, e);
    if (t == QCOW2_C_ZERO_PLAIN)
        return 0;
    if (!unmap && (t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC) &&
        (e & QCOW2_OFLAG_COPIED))
        return qcow2_l2_set(q, ci, (e & QCOW2_OFFSET_MASK) | QCOW2_OFLAG_COPIED |
                                       QCOW2_OFLAG_ZERO);
    int r = qcow2_l2_set(q, ci, QCOW2_OFLAG_ZERO);
    if (r == 0)
        r = free_entry(q, e);
    return r;
}

/* Whether [off, off + len) (clamped to the image) reads as zeros by
 * allocation status alone, through the backing chain, no data read: qemu's
 * is_zero() test before it zeroes a whole cluster for a partial request. */
static int range_is_zero(struct qcow2 *q, uint64_t off, uint64_t len, bool *zero)
{
    *zero = true;
    if (off >= q->bd->size)
        return 0;
    len = BD_MIN(len, q->bd->size - off);
    while (len && *zero) {
        struct blockdev_extent ext;
        int r = blockdev_map_extent(q->bd, off, len, &ext);
        if (r < 0)
            return r;
        if (ext.length == 0 || ext.length > len)
            return -EIO;
        *zero = ext.zero;
        off += ext.length;
        len -= ext.length;
    }
    return 0;
}

/* A partial zero request on an unallocated cluster whose other bytes read as
 * zeros already: the whole cluster becomes a zero cluster (qemu, v3 only). */
static int zero_partial_whole(struct qcow2 *q, uint64_t ci, uint64_t e, uint64_t off,
                              uint64_t n, bool *done)
{
    *done = false;
    if (q->version < 3 || qcow2_classify(q, e) != QCOW2_C_UNALLOCATED)
        return 0;
    uint64_t cstart = ci << q->cluster_bits;
    bool head, tail = false;
    int r = range_is_zero(q, cstart, off - cstart, &head);
    if (r == 0 && head)
        r = range_is_zero(q, off + n, cstart + q->cs - (off + n), &tail);
    if (r < 0 || !head || !tail)
        return r;
    *done = true;
    return zero_cluster(q, ci, e, false);
}

static int qcow2_zero(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    while (len) {
        uint64_t ci = off >> q->cluster_bits, e, inoff = off & (q->cs - 1);
        uint64_t n = BD_MIN(len, q->cs - inoff);
        int r = qcow2_l2_get(q, ci, &e);
        if (r < 0)
            return r;
        bool done = false;
        if (q->version >= 3 && inoff == 0 && n == cluster_len(q, ci))
            r = zero_cluster(q, ci, e, flags & BLOCKDEV_ZERO_MAY_UNMAP);
        else if ((r = zero_partial_whole(q, ci, e, off, n, &done)) == 0 && !done &&
                 ((q->version >= 3 && qcow2_classify(q, e) == QCOW2_C_UNALLOCATED) ||
                  !reads_zero(q, e, off)))
            r = write_range(q, NULL, n, off); /* qemu: zeros written, the cluster copied */
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

static int qcow2_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    /* v2 has no zero flag: over a backing file, a discarded cluster could
     * only expose its data, so discard stays a no-op hint there (qemu's
     * rule); without one, unallocated clusters read as zeros. */
    if (q->version < 3 && bd->backing_name)
        return 0;
    uint64_t end = off + len;
    uint64_t first = (off + q->cs - 1) >> q->cluster_bits;
    uint64_t last = end == bd->size ? (end + q->cs - 1) >> q->cluster_bits
                                    : end >> q->cluster_bits;
    for (uint64_t ci = first; ci < last; ci++) {
        uint64_t e;
        int r = qcow2_l2_get(q, ci, &e);
        if (r < 0)
            return r;
        enum qcow2_ctype t = qcow2_classify(q, e);
        bool keep_unalloc = (!bd->backing && !entry_has_host(q, e)) || q->version < 3;
        if (t == QCOW2_C_UNALLOCATED && !bd->backing)
            continue;
        if (t == QCOW2_C_ZERO_PLAIN && bd->backing)
            continue;
        r = qcow2_l2_set(q, ci, keep_unalloc ? 0 : QCOW2_OFLAG_ZERO);
        if (r == 0)
            r = free_entry(q, e);
        if (r < 0)
            return r;
    }
    return 0;
}

static int qcow2_flush(struct blockdev *bd)
{
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return 0;
    int r;
    if ((r = qcow2_cache_flush(&q->rbc)) < 0 || (r = qcow2_cache_flush(&q->l2c)) < 0 ||
        (r = qcow2_write_l1(q)) < 0 || (r = bd_fdatasync(q->fd)) < 0)
        return r;
    q->data_written = false;
    if (q->n_pending)
        r = qcow2_apply_pending(q);
    return r;
}

/* A data run of a metadata-preallocated image: what the file has there
 * decides, as qemu asks it (BDRV_BLOCK_RECURSE): a hole reads as zeros. */
static int prealloc_status(struct qcow2 *q, struct blockdev_status *st)
{
    uint64_t fsize;
    struct blockdev_status fst;
    int r = bd_file_size(q->fd, &fsize);
    if (r == 0)
        r = bd_file_status(q->fd, st->host_off, st->len, fsize, &fst);
    if (r < 0)
        return r;
    if (st->host_off < fsize)
        st->len = BD_MIN(st->len, fst.len);
    st->flags |= fst.flags & BLOCKDEV_ST_ZERO;
    return 0;
}

static int qcow2_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                              struct blockdev_status *st)
{
    struct qcow2 *q = qcow2_of(bd);
    uint64_t ci = off >> q->cluster_bits, e, n;
    int r = qcow2_l2_get(q, ci, &e);
    if (r == 0)
        r = run_length(q, ci, e, off, maxlen, &n);
    if (r < 0)
        return r;
    st->len = n;
    st->host_off = (e & QCOW2_OFFSET_MASK) + (off & (q->cs - 1));
    switch (qcow2_classify(q, e)) {
    case QCOW2_C_UNALLOCATED:
        st->flags = 0;
        break;
    case QCOW2_C_ZERO_PLAIN:
        st->flags = BLOCKDEV_ST_ZERO | BLOCKDEV_ST_ALLOCATED;
        break;
    case QCOW2_C_ZERO_ALLOC:
        st->flags = BLOCKDEV_ST_ZERO | BLOCKDEV_ST_ALLOCATED | BLOCKDEV_ST_OFFSET_VALID;
        break;
    case QCOW2_C_NORMAL:
        st->flags = BLOCKDEV_ST_DATA | BLOCKDEV_ST_ALLOCATED | BLOCKDEV_ST_OFFSET_VALID;
        if (qcow2_meta_preallocated(q))
            return prealloc_status(q, st);
        break;
    case QCOW2_C_COMPRESSED:
        st->flags = BLOCKDEV_ST_DATA | BLOCKDEV_ST_ALLOCATED | BLOCKDEV_ST_COMPRESSED;
        break;
    }
    if (!(st->flags & BLOCKDEV_ST_OFFSET_VALID))
        st->host_off = 0;
    return 0;
}

static int qcow2_map_direct(struct blockdev *bd, uint64_t off, uint64_t len, bool write,
                            uint64_t *host)
{
    struct qcow2 *q = qcow2_of(bd);
    uint64_t ci = off >> q->cluster_bits, e, n;
    int r = qcow2_l2_get(q, ci, &e);
    if (r < 0)
        return r;
    enum qcow2_ctype t = qcow2_classify(q, e);
    if (t == QCOW2_C_UNALLOCATED && !write && bd->backing && off + len <= bd->backing->size)
        return 2;
    if (t != QCOW2_C_NORMAL || (write && !(e & QCOW2_OFLAG_COPIED)) || (write && !q->writable))
        return 0;
    r = run_length(q, ci, e, off, len, &n);
    if (r < 0)
        return r;
    if (n < len)
        return 0;
    if ((r = qcow2_entry_host(q, e, host)) < 0)
        return r;
    *host += off & (q->cs - 1);
    if (write && qcow2_overlaps_metadata(q, *host & ~(q->cs - 1), len))
        return 0;
    return 1;
}

const struct bd_driver bd_qcow2_driver = {
    .name = "qcow2",
    .open = qcow2_open,
    .close = qcow2_close,
    .read = qcow2_read,
    .write = qcow2_write,
    .zero = qcow2_zero,
    .discard = qcow2_discard,
    .flush = qcow2_flush,
    .block_status = qcow2_block_status,
    .map_direct = qcow2_map_direct,
    .resize = qcow2_resize,
    .grow_prealloc = qcow2_grow_prealloc,
    .cow_prepare = qcow2_cow_prepare,
    .cow_commit = qcow2_cow_commit,
};

int qcow2_get_info(struct blockdev *bd, struct qcow2_info *info)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    memset(info, 0, sizeof(*info));
    info->version = q->version;
    info->cluster_size = q->cs;
    info->refcount_bits = 1u << q->refcount_order;
    info->compression_type = q->compression_type;
    info->lazy_refcounts = q->compat & QCOW2_COMPAT_LAZY_REFCOUNTS;
    info->corrupt = q->incompat & QCOW2_INCOMPAT_CORRUPT;
    info->extended_l2 = q->incompat & QCOW2_INCOMPAT_EXTL2;
    info->dirty = q->incompat & QCOW2_INCOMPAT_DIRTY;
    info->nb_snapshots = q->nb_snapshots;
    return 0;
}

int qcow2_set_backing(struct blockdev *bd, const char *name, const char *fmt)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    int r = qcow2_flush(bd);
    if (r < 0)
        return r;
    return qcow2_header_write_backing(q, name, fmt);
}

int qcow2_get_l2_entry(struct blockdev *bd, uint64_t off, uint64_t *entry)
{
    if (bd->drv != &bd_qcow2_driver || off >= bd->size)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    return qcow2_l2_get(q, off >> q->cluster_bits, entry);
}

int qcow2_make_empty(struct blockdev *bd)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    uint64_t nclusters = (bd->size + q->cs - 1) >> q->cluster_bits;
    for (uint64_t ci = 0; ci < nclusters; ci++) {
        if (q->l1[ci / q->l2_entries] == 0) {
            ci += q->l2_entries - 1 - ci % q->l2_entries;
            continue;
        }
        uint64_t e;
        int r = qcow2_l2_get(q, ci, &e);
        if (r == 0 && e)
            r = qcow2_l2_set(q, ci, 0);
        if (r == 0)
            r = free_entry(q, e);
        if (r < 0)
            return r;
    }
    return qcow2_flush(bd);
}
