/*
 * qcow2 refcounts and cluster allocation.
 *
 * Crash-safety rules kept here:
 *  - an increment reaches the disk (refblock written and synced) before any
 *    table that points at the cluster (the L2 cache depends on this cache);
 *  - a decrement is deferred (qcow2_free_deferred) and applied only after the
 *    tables that stopped pointing at the cluster are durable (qcow2_flush);
 *    freed clusters are reused only after that.
 * A crash can therefore leave refcounts too high (leaks), never too low.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"

uint64_t qcow2_rb_get(const uint8_t *rb, uint64_t i, unsigned order)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order;
        uint64_t bit = i * bits;
        return (rb[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    case 3:
        return rb[i];
    case 4:
        return bd_be16(rb + i * 2);
    case 5:
        return bd_be32(rb + i * 4);
    default:
        return bd_be64(rb + i * 8);
    }
}

void qcow2_rb_set(uint8_t *rb, uint64_t i, unsigned order, uint64_t v)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned bits = 1u << order;
        uint64_t bit = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        rb[bit / 8] = (uint8_t)((rb[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
        return;
    }
    case 3:
        rb[i] = (uint8_t)v;
        return;
    case 4:
        bd_put_be16(rb + i * 2, (uint16_t)v);
        return;
    case 5:
        bd_put_be32(rb + i * 4, (uint32_t)v);
        return;
    default:
        bd_put_be64(rb + i * 8, v);
    }
}

/* Refblock for a cluster; *rb NULL (and 0 returned) when none exists yet. */
static int refblock_of(struct qcow2 *q, uint64_t cluster, uint8_t **rb, uint64_t *rboff)
{
    uint64_t r = cluster / q->rb_entries;
    *rb = NULL;
    *rboff = 0;
    if (r >= q->reft_size || q->reft[r] == 0)
        return 0;
    *rboff = q->reft[r] & QCOW2_OFFSET_MASK;
    if (*rboff & (q->cs - 1))
        return qcow2_mark_corrupt(q, "Refblock offset %#llx unaligned (reftable index: %#llx)",
                                  (unsigned long long)*rboff, (unsigned long long)r);
    return qcow2_cache_get(&q->rbc, *rboff, rb);
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc)
{
    uint8_t *rb;
    uint64_t rboff;
    int r = refblock_of(q, cluster, &rb, &rboff);
    if (r < 0)
        return r;
    *rc = rb ? qcow2_rb_get(rb, cluster % q->rb_entries, q->refcount_order) : 0;
    return 0;
}

int qcow2_refcount_set(struct qcow2 *q, uint64_t cluster, uint64_t rc)
{
    uint8_t *rb;
    uint64_t rboff;
    int r = refblock_of(q, cluster, &rb, &rboff);
    if (r < 0)
        return r;
    if (!rb)
        return qcow2_mark_corrupt(q, "no refblock for cluster %llu",
                                  (unsigned long long)cluster);
    if (rc > q->refcount_max)
        return -ERANGE;
    qcow2_rb_set(rb, cluster % q->rb_entries, q->refcount_order, rc);
    qcow2_cache_mark_dirty(&q->rbc, rboff);
    return 0;
}

static int write_reft_entry(struct qcow2 *q, uint64_t r)
{
    uint8_t b[8];
    bd_put_be64(b, q->reft[r]);
    return bd_pwrite_full(q->fd, b, 8, q->reft_offset + r * 8);
}

/* A new refblock for range r, placed at cluster `at` inside that range. */
static int refblock_create_at(struct qcow2 *q, uint64_t r, uint64_t at)
{
    uint8_t *rb;
    uint64_t off = at << q->cluster_bits;
    int rc = qcow2_cache_get_empty(&q->rbc, off, &rb);
    if (rc < 0)
        return rc;
    qcow2_rb_set(rb, at % q->rb_entries, q->refcount_order, 1);
    rc = qcow2_cache_flush(&q->rbc); /* the block (self-referencing) before the table */
    if (rc < 0)
        return rc;
    q->reft[r] = off;
    return write_reft_entry(q, r);
}

/*
 * The refcount table is full: build a larger one after the end of what the
 * current table covers (everything there is free), with refblocks for its own
 * clusters, then switch the header to it and free the old one.
 */
int qcow2_reftable_write(struct qcow2 *q, const uint64_t *table, uint64_t bytes, uint64_t offset)
{
    int r = bd_pwrite_full(q->fd, table, bytes, offset);
    if (r == 0)
        r = bd_fdatasync(q->fd); /* the whole table before the header names it */
    uint8_t h[12]; /* refcount_table_offset and refcount_table_clusters */
    bd_put_be64(h, offset);
    bd_put_be32(h + 8, (uint32_t)(bytes >> q->cluster_bits));
    if (r == 0)
        r = bd_pwrite_full(q->fd, h, sizeof(h), 48);
    if (r == 0)
        r = bd_fdatasync(q->fd);
    return r;
}

static int reftable_grow(struct qcow2 *q, uint64_t need_ranges)
{
    uint64_t start = q->reft_size * q->rb_entries; /* first uncovered cluster */
    uint64_t entries = BD_MAX(need_ranges, q->reft_size * 2);
    uint64_t tclusters, nrb, end;
    for (;;) {
        tclusters = (entries * 8 + q->cs - 1) / q->cs;
        nrb = 0;
        for (;;) {
            end = start + tclusters + nrb;
            uint64_t ranges = (end - 1) / q->rb_entries - start / q->rb_entries + 1;
            if (ranges == nrb)
                break;
            nrb = ranges;
        }
        if ((end - 1) / q->rb_entries < entries)
            break;
        entries = (end - 1) / q->rb_entries + 1;
    }
    if (tclusters * q->cs > QCOW2_MAX_REFTABLE_BYTES)
        return -EFBIG;
    uint64_t tbytes = tclusters * q->cs;
    uint64_t *nt = calloc(1, tbytes);
    uint8_t *blk = calloc(1, q->cs);
    int r = (nt && blk) ? 0 : -ENOMEM;
    uint64_t first_r = start / q->rb_entries;
    for (uint64_t i = 0; r == 0 && i < nrb; i++) {
        uint64_t rng = first_r + i, boff = (start + tclusters + i) << q->cluster_bits;
        memset(blk, 0, q->cs);
        for (uint64_t c = start; c < end; c++)
            if (c / q->rb_entries == rng)
                qcow2_rb_set(blk, c % q->rb_entries, q->refcount_order, 1);
        r = bd_pwrite_full(q->fd, blk, q->cs, boff);
        bd_put_be64(&nt[rng], boff);
    }
    for (uint64_t i = 0; i < q->reft_size; i++)
        bd_put_be64(&nt[i], q->reft[i]);
    uint64_t toff = start << q->cluster_bits;
    if (r == 0)
        r = qcow2_reftable_write(q, nt, tbytes, toff);
    free(blk);
    if (r < 0) {
        free(nt);
        return r;
    }
    uint64_t old_off = q->reft_offset, old_clusters = q->reft_clusters;
    for (uint64_t i = 0; i < tbytes / 8; i++)
        nt[i] = bd_be64(&nt[i]);
    free(q->reft);
    q->reft = nt;
    q->reft_offset = toff;
    q->reft_clusters = (uint32_t)tclusters;
    q->reft_size = tbytes / 8;
    return qcow2_free_deferred(q, old_off, old_clusters);
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset)
{
    uint64_t idx = q->free_hint, start = idx, run = 0;
    while (run < n) {
        uint64_t rng = idx / q->rb_entries;
        if (rng >= q->reft_size) {
            int r = reftable_grow(q, rng + 1);
            if (r < 0)
                return r;
            continue; /* the new table and its refblocks now sit at idx.. */
        }
        if (q->reft[rng] == 0) {
            int r = refblock_create_at(q, rng, idx);
            if (r < 0)
                return r;
            run = 0;
            idx++;
            continue;
        }
        uint64_t rc;
        int r = qcow2_refcount_get(q, idx, &rc);
        if (r < 0)
            return r;
        if (rc == 0) {
            if (run++ == 0)
                start = idx;
        } else {
            run = 0;
        }
        idx++;
        if (idx > (QCOW2_OFFSET_MASK >> q->cluster_bits))
            return -ENOSPC;
    }
    for (uint64_t i = 0; i < n; i++) {
        int r = qcow2_refcount_set(q, start + i, 1);
        if (r < 0)
            return r;
    }
    if (n == 1 || start == q->free_hint)
        q->free_hint = start + n;
    *offset = start << q->cluster_bits;
    return 0;
}

int qcow2_free_deferred(struct qcow2 *q, uint64_t offset, uint64_t nclusters)
{
    uint64_t c = offset >> q->cluster_bits;
    for (uint64_t i = 0; i < nclusters; i++) {
        if (q->n_pending == q->cap_pending) {
            size_t cap = q->cap_pending ? q->cap_pending * 2 : 64;
            uint64_t *p = realloc(q->pending, cap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            q->pending = p;
            q->cap_pending = cap;
        }
        q->pending[q->n_pending++] = c + i;
    }
    return 0;
}

/* Called once the tables that dropped these references are durable. */
int qcow2_apply_pending(struct qcow2 *q)
{
    if (q->n_pending)
        q->cfree = 0; /* the packing cluster may be freed and reused */
    for (size_t i = 0; i < q->n_pending; i++) {
        uint64_t c = q->pending[i], rc;
        int r = qcow2_refcount_get(q, c, &rc);
        if (r < 0)
            return r;
        if (rc == 0)
            return qcow2_mark_corrupt(q, "freeing cluster %llu with refcount 0",
                                      (unsigned long long)c);
        r = qcow2_refcount_set(q, c, rc - 1);
        if (r < 0)
            return r;
        if (rc == 1 && c < q->free_hint)
            q->free_hint = c;
    }
    q->n_pending = 0;
    return qcow2_cache_flush(&q->rbc);
}

/* Refcount of a cluster for the search of qcow2_alloc_run: 0 where no
 * refblock covers it yet. */
static int search_refcount(struct qcow2 *q, uint64_t c, uint64_t *rc)
{
    if (q->reft[c / q->rb_entries] == 0) {
        *rc = 0;
        return 0;
    }
    return qcow2_refcount_get(q, c, rc);
}

/* First cluster from *c on that search_refcount calls free; -EAGAIN once
 * the search leaves what the refcount table covers (grown here). */
static int next_free(struct qcow2 *q, uint64_t *c)
{
    for (uint64_t rc;; (*c)++) {
        uint64_t rng = *c / q->rb_entries;
        if (rng >= q->reft_size) {
            int r = reftable_grow(q, rng + 1);
            return r < 0 ? r : -EAGAIN;
        }
        int r = search_refcount(q, *c, &rc);
        if (r < 0)
            return r;
        if (rc == 0)
            return 0;
    }
}

/* A refblock for range rng at the first free cluster from *next on: where
 * it describes itself, or counted in the refblock of the range it lands in
 * (placed first, the same way). */
static int refblock_place(struct qcow2 *q, uint64_t rng, uint64_t *next, unsigned depth)
{
    int r = next_free(q, next);
    if (r < 0)
        return r;
    uint64_t p = (*next)++, prng = p / q->rb_entries;
    if (prng == rng)
        return refblock_create_at(q, rng, p);
    if (depth > 8)
        return -EIO; /* cannot happen: a range holds more than 8 clusters */
    if (!q->reft[prng] && (r = refblock_place(q, prng, next, depth + 1)) < 0)
        return r;
    uint8_t *rb;
    uint64_t off = p << q->cluster_bits;
    if ((r = qcow2_cache_get_empty(&q->rbc, off, &rb)) < 0)
        return r;
    qcow2_cache_mark_dirty(&q->rbc, off);
    if ((r = qcow2_refcount_set(q, p, 1)) < 0 || (r = qcow2_cache_flush(&q->rbc)) < 0)
        return r; /* the block and its own refcount before the table names it */
    q->reft[rng] = off;
    return write_reft_entry(q, rng);
}

int qcow2_alloc_run(struct qcow2 *q, uint64_t n, uint64_t *offset)
{
    uint64_t start, run, c;
    int r;
retry:
    start = c = q->free_hint;
    run = 0;
    while (run < n) {
        uint64_t rc;
        if (c / q->rb_entries >= q->reft_size) {
            if ((r = reftable_grow(q, c / q->rb_entries + 1)) < 0)
                return r;
            goto retry; /* the new table sits where the run was heading */
        }
        if ((r = search_refcount(q, c, &rc)) < 0)
            return r;
        if (rc)
            run = 0;
        else if (run++ == 0)
            start = c;
        c++;
    }
    /* The refblocks the run lacks go right after it (qemu's order). */
    uint64_t next = start + n;
    for (uint64_t rng = start / q->rb_entries; rng <= (start + n - 1) / q->rb_entries; rng++) {
        if (q->reft[rng])
            continue;
        r = refblock_place(q, rng, &next, 0);
        if (r == -EAGAIN)
            goto retry;
        if (r < 0)
            return r;
    }
    for (uint64_t i = 0; i < n; i++) {
        if ((r = qcow2_refcount_set(q, start + i, 1)) < 0)
            return r;
    }
    if (start == q->free_hint)
        q->free_hint = start + n;
    *offset = start << q->cluster_bits;
    return 0;
}
