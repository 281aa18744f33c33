/*
 * qcow2 guest-to-host mapping: L1 table (kept in memory, written at flush)
 * and L2 tables (through the metadata cache).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"

enum qcow2_ctype qcow2_classify(const struct qcow2 *q, uint64_t entry)
{
    if (entry & QCOW2_OFLAG_COMPRESSED)
        return QCOW2_C_COMPRESSED;
    uint64_t host = entry & QCOW2_OFFSET_MASK;
    if (q->version >= 3 && (entry & QCOW2_OFLAG_ZERO))
        return host ? QCOW2_C_ZERO_ALLOC : QCOW2_C_ZERO_PLAIN;
    return host ? QCOW2_C_NORMAL : QCOW2_C_UNALLOCATED;
}

/* Host offset of a normal or preallocated-zero cluster, checked. */
int qcow2_entry_host(const struct qcow2 *q, uint64_t entry, uint64_t *host)
{
    *host = entry & QCOW2_OFFSET_MASK;
    if (*host & (q->cs - 1))
        return qcow2_mark_corrupt((struct qcow2 *)q, "unaligned data cluster offset %#llx",
                                  (unsigned long long)*host);
    return 0;
}

bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len)
{
    if (off < q->cs)
        return true; /* header cluster */
    if (q->l1_size && off < q->l1_offset + (uint64_t)q->l1_size * 8 &&
        q->l1_offset < off + len)
        return true;
    if (off < q->reft_offset + q->reft_size * 8 && q->reft_offset < off + len)
        return true;
    return false;
}

static int l2_table_of(struct qcow2 *q, uint64_t ci, uint64_t *l2off)
{
    uint64_t l1i = ci / q->l2_entries;
    if (l1i >= q->l1_size)
        return qcow2_mark_corrupt(q, "guest cluster %llu beyond the L1 table",
                                  (unsigned long long)ci);
    uint64_t e = q->l1[l1i];
    *l2off = e & QCOW2_OFFSET_MASK;
    if ((*l2off & (q->cs - 1)) || (e & QCOW2_L1_RESERVED & ~0x1ffull))
        return qcow2_mark_corrupt(q, "L1 entry %llu (%#llx) invalid", (unsigned long long)l1i,
                                  (unsigned long long)e);
    if (*l2off && qcow2_overlaps_metadata(q, *l2off, q->cs))
        return qcow2_mark_corrupt(q, "L2 table at %#llx overlaps metadata",
                                  (unsigned long long)*l2off);
    return 0;
}

int qcow2_l2_get(struct qcow2 *q, uint64_t ci, uint64_t *entry)
{
    uint64_t l2off;
    int r = l2_table_of(q, ci, &l2off);
    *entry = 0;
    if (r < 0 || l2off == 0)
        return r;
    uint8_t *t;
    r = qcow2_cache_get(&q->l2c, l2off, &t);
    if (r < 0)
        return r;
    *entry = bd_be64(t + (ci % q->l2_entries) * 8);
    if (!(*entry & QCOW2_OFLAG_COMPRESSED) && (*entry & (q->cs - 1) & ~1ull & QCOW2_OFFSET_MASK))
        return qcow2_mark_corrupt(q, "L2 entry %#llx for guest cluster %llu is unaligned",
                                  (unsigned long long)*entry, (unsigned long long)ci);
    return 0;
}

void qcow2_l1_dirty(struct qcow2 *q, uint32_t i)
{
    if (q->l1_dirty_lo >= q->l1_dirty_hi) {
        q->l1_dirty_lo = i;
        q->l1_dirty_hi = i + 1;
        return;
    }
    q->l1_dirty_lo = BD_MIN(q->l1_dirty_lo, i);
    q->l1_dirty_hi = BD_MAX(q->l1_dirty_hi, i + 1);
}

/* A writable L2 table for l1 index i: new, or a private copy of a shared one. */
static int l2_table_prepare(struct qcow2 *q, uint64_t l1i, uint64_t *l2off)
{
    uint64_t old = q->l1[l1i];
    if (*l2off && (old & QCOW2_OFLAG_COPIED))
        return 0;
    uint64_t noff;
    int r = qcow2_alloc_clusters(q, 1, &noff);
    if (r < 0)
        return r;
    uint8_t *src = NULL;
    if (*l2off) {
        r = qcow2_cache_get(&q->l2c, *l2off, &src);
        if (r == 0)
            memcpy(q->bounce, src, q->cs);
    }
    uint8_t *t;
    if (r == 0)
        r = qcow2_cache_get_empty(&q->l2c, noff, &t);
    if (r < 0)
        return r;
    if (*l2off) {
        memcpy(t, q->bounce, q->cs);
        r = qcow2_free_deferred(q, *l2off, 1);
    }
    q->l1[l1i] = noff | QCOW2_OFLAG_COPIED;
    qcow2_l1_dirty(q, (uint32_t)l1i);
    *l2off = noff;
    return r;
}

/* The writable L2 table for guest cluster ci, allocated or copied first. */
static int l2_table_writable(struct qcow2 *q, uint64_t ci, uint64_t *l2off)
{
    int r = l2_table_of(q, ci, l2off);
    return r < 0 ? r : l2_table_prepare(q, ci / q->l2_entries, l2off);
}

int qcow2_l2_prepare(struct qcow2 *q, uint64_t ci)
{
    uint64_t l2off;
    return l2_table_writable(q, ci, &l2off);
}

int qcow2_l2_set(struct qcow2 *q, uint64_t ci, uint64_t entry)
{
    uint64_t l2off;
    int r = l2_table_writable(q, ci, &l2off);
    if (r < 0)
        return r;
    uint8_t *t;
    r = qcow2_cache_get(&q->l2c, l2off, &t);
    if (r < 0)
        return r;
    bd_put_be64(t + (ci % q->l2_entries) * 8, entry);
    qcow2_cache_mark_dirty(&q->l2c, l2off);
    return 0;
}

int qcow2_write_l1(struct qcow2 *q)
{
    if (q->l1_dirty_lo >= q->l1_dirty_hi)
        return 0;
    uint32_t lo = q->l1_dirty_lo, n = q->l1_dirty_hi - lo;
    uint8_t *buf = malloc((size_t)n * 8);
    if (!buf)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        bd_put_be64(buf + (size_t)i * 8, q->l1[lo + i]);
    int r = bd_pwrite_full(q->fd, buf, (uint64_t)n * 8, q->l1_offset + (uint64_t)lo * 8);
    free(buf);
    if (r == 0)
        q->l1_dirty_lo = q->l1_dirty_hi = 0;
    return r;
}
