/*
 * qcow2 shrink (qemu-img resize --shrink, qemu-io truncate): what lies past
 * the new end is dropped as qemu drops it. The guest clusters past the end
 * become unallocated (their host clusters freed), L2 tables wholly past it
 * leave the L1 table (its size stays), refblocks that then count nothing
 * but themselves leave the refcount table, the new size goes in the header
 * and the file is cut after its last cluster still in use.
 *
 * Crash safety as everywhere here: a reference is dropped on disk (L2
 * entry, L1 entry, reftable entry), synced, before the refcount it held
 * drops; a crash in between leaks clusters, never reuses one still named.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2_int.h"

/* Host clusters an L2 entry holds: a run of whole clusters (0 for none). */
static void entry_clusters(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *n)
{
    *n = 0;
    switch (qcow2_classify(q, e)) {
    case QCOW2_C_NORMAL:
    case QCOW2_C_ZERO_ALLOC:
        *off = e & QCOW2_OFFSET_MASK;
        *n = 1;
        break;
    case QCOW2_C_COMPRESSED: {
        uint64_t o, len;
        qcow2_compressed_range(q, e, &o, &len);
        *off = o & ~(q->cs - 1);
        *n = ((o + len - 1) >> q->cluster_bits) - (o >> q->cluster_bits) + 1;
        break;
    }
    default:
        break;
    }
}

/* Host runs the shrink freed, to be punched out of the file afterwards (as
 * qemu discards them). */
struct runs {
    uint64_t (*r)[2];
    size_t n, cap;
};

static int runs_add(struct runs *v, uint64_t off, uint64_t n)
{
    if (v->n && v->r[v->n - 1][0] + v->r[v->n - 1][1] == off) {
        v->r[v->n - 1][1] += n;
        return 0;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void *p = realloc(v->r, cap * sizeof(*v->r));
        if (!p)
            return -ENOMEM;
        v->r = p;
        v->cap = cap;
    }
    v->r[v->n][0] = off;
    v->r[v->n++][1] = n;
    return 0;
}

static void punch(struct qcow2 *q, uint64_t off, uint64_t len)
{
    if (len)
        fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

/* Punches the freed runs' clusters that no one holds any more (a
 * compressed cluster may still hold others' data), a stretch of them in
 * one call (a cluster may be smaller than a file system block). A hint:
 * errors are ignored. */
static void punch_freed(struct qcow2 *q, const struct runs *v)
{
    for (size_t i = 0; i < v->n; i++) {
        uint64_t start = v->r[i][0], end = start + v->r[i][1], from = start;
        for (uint64_t off = start; off < end; off += q->cs) {
            uint64_t rc;
            if (qcow2_refcount_get(q, off >> q->cluster_bits, &rc) == 0 && rc == 0)
                continue;
            punch(q, from, off - from);
            from = off + q->cs;
        }
        punch(q, from, end - from);
    }
}

/* Guest clusters [first, last) leave the image: entries of tables that stay
 * become 0; tables from L1 index keep_l1 on are dropped whole. */
static int drop_clusters(struct qcow2 *q, uint64_t first, uint64_t last, uint64_t keep_l1,
                         struct runs *freed)
{
    for (uint64_t ci = first; ci < last; ci++) {
        uint64_t l1i = ci / q->l2_entries;
        if (l1i >= q->l1_size || (q->l1[l1i] & QCOW2_OFFSET_MASK) == 0) {
            ci += q->l2_entries - 1 - ci % q->l2_entries; /* no table: nothing there */
            continue;
        }
        uint64_t e, off, n;
        int r = qcow2_l2_get(q, ci, &e);
        if (r < 0)
            return r;
        entry_clusters(q, e, &off, &n);
        if (l1i < keep_l1 && e && (r = qcow2_l2_set(q, ci, 0)) < 0)
            return r;
        if (n && ((r = qcow2_free_deferred(q, off, n)) < 0 ||
                  (r = runs_add(freed, off, n << q->cluster_bits)) < 0))
            return r;
    }
    return 0;
}

/* L1 entries from keep on are cleared; their tables are freed at the flush
 * that writes the L1 table. */
static int drop_l2_tables(struct qcow2 *q, uint64_t keep, struct runs *freed)
{
    for (uint64_t i = keep; i < q->l1_size; i++) {
        uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        qcow2_cache_forget(&q->l2c, off);
        q->l1[i] = 0;
        qcow2_l1_dirty(q, (uint32_t)i);
        int r = qcow2_free_deferred(q, off, 1);
        if (r == 0)
            r = runs_add(freed, off, q->cs);
        if (r < 0)
            return r;
    }
    return 0;
}

/* True when refblock r (at rboff) counts nothing but itself. */
static int refblock_unused(struct qcow2 *q, uint64_t r, uint64_t rboff, bool *unused, bool *self)
{
    uint8_t *rb;
    int rc = qcow2_cache_get(&q->rbc, rboff, &rb);
    if (rc < 0)
        return rc;
    uint64_t own = rboff >> q->cluster_bits;
    *self = own / q->rb_entries == r;
    *unused = true;
    for (uint64_t j = 0; j < q->rb_entries && *unused; j++)
        if (qcow2_rb_get(rb, j, q->refcount_order) && !(*self && j == own % q->rb_entries))
            *unused = false;
    return 0;
}

/* Refblocks counting nothing but themselves leave the refcount table (the
 * table written whole and synced first); one counted elsewhere is freed. */
static int drop_refblocks(struct qcow2 *q, struct runs *freed)
{
    uint64_t *nt = malloc(q->reft_clusters << q->cluster_bits);
    if (!nt)
        return -ENOMEM;
    memset(nt, 0, q->reft_clusters << q->cluster_bits);
    bool any = false;
    int r = 0;
    for (uint64_t i = 0; i < q->reft_size && r == 0; i++) {
        uint64_t off = q->reft[i] & QCOW2_OFFSET_MASK;
        bool unused = false, self = false;
        if (off && !(off & (q->cs - 1)))
            r = refblock_unused(q, i, off, &unused, &self);
        any |= unused;
        bd_put_be64(&nt[i], unused ? 0 : q->reft[i]);
    }
    if (r == 0 && any)
        r = bd_pwrite_full(q->fd, nt, q->reft_size * 8, q->reft_offset);
    if (r == 0 && any)
        r = bd_fdatasync(q->fd);
    for (uint64_t i = 0; r == 0 && any && i < q->reft_size; i++) {
        uint64_t off = q->reft[i] & QCOW2_OFFSET_MASK;
        if (!off || bd_be64(&nt[i]))
            continue;
        qcow2_cache_forget(&q->rbc, off);
        q->reft[i] = 0;
        r = runs_add(freed, off, q->cs);
        if (r == 0 && (off >> q->cluster_bits) / q->rb_entries != i)
            r = qcow2_free_deferred(q, off, 1);
    }
    free(nt);
    return r;
}

int qcow2_shrink(struct blockdev *bd, uint64_t new_size)
{
    struct qcow2 *q = qcow2_of(bd);
    if (q->nb_snapshots)
        return -ENOTSUP; /* their tables name clusters past the end too */
    uint64_t first = (new_size + q->cs - 1) >> q->cluster_bits;
    uint64_t last = (bd->size + q->cs - 1) >> q->cluster_bits;
    uint64_t keep_l1 = (first + q->l2_entries - 1) / q->l2_entries;
    struct runs freed = {0};
    q->cbuf_valid = false; /* its cluster may be freed and reused */
    int r = blockdev_flush(bd);
    if (r == 0)
        r = drop_clusters(q, first, last, keep_l1, &freed);
    if (r == 0)
        r = drop_l2_tables(q, keep_l1, &freed);
    if (r == 0)
        r = blockdev_flush(bd); /* entries, tables, then their refcounts */
    if (r == 0)
        r = drop_refblocks(q, &freed);
    if (r == 0)
        r = blockdev_flush(bd);
    if (r == 0)
        punch_freed(q, &freed);
    free(freed.r);
    if (r == 0) {
        uint8_t h[8];
        bd_put_be64(h, new_size);
        r = bd_pwrite_full(q->fd, h, sizeof(h), 24);
    }
    if (r == 0)
        r = bd_fdatasync(q->fd);
    if (r == 0) {
        bd->size = new_size;
        r = qcow2_cut_tail(q, 0);
    }
    return r;
}
