/*
 * qcow2 consistency check: every reference counted from the tables on disk,
 * compared with the stored refcounts and the COPIED flags. Read-only; the
 * numbers and messages follow qemu-img check so the outputs can be diffed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"

struct chk {
    struct qcow2 *q;
    struct qcow2_check_result *res;
    FILE *msgs;
    uint64_t nb;      /* clusters in the file */
    uint32_t *refs;   /* computed references */
    uint64_t *rc;     /* stored refcounts */
    uint8_t *table;   /* one cluster */
    uint64_t next_contig;
};

static void say(struct chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct chk *c, const char *fmt, ...)
{
    if (!c->msgs)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->msgs, fmt, ap);
    va_end(ap);
}

static void inc_range(struct chk *c, uint64_t off, uint64_t len)
{
    if (len == 0)
        return;
    uint64_t first = off >> c->q->cluster_bits;
    uint64_t last = (off + len - 1) >> c->q->cluster_bits;
    for (uint64_t i = first; i <= last; i++) {
        if (i >= c->nb) {
            say(c, "ERROR: counting reference for region exceeding the end of the file "
                   "by one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64 "\n",
                i << c->q->cluster_bits, c->q->cs);
            c->res->corruptions++;
            return;
        }
        c->refs[i]++;
    }
}

static int read_table(struct chk *c, uint64_t off)
{
    int r = bd_pread_full(c->q->fd, c->table, c->q->cs, off);
    if (r < 0)
        c->res->check_errors++;
    return r;
}

static void count_l2_entry(struct chk *c, uint64_t e)
{
    struct qcow2 *q = c->q;
    uint64_t host, len;
    switch (qcow2_classify(q, e)) {
    case QCOW2_C_COMPRESSED:
        qcow2_compressed_range(q, e, &host, &len);
        if (e & QCOW2_OFLAG_COPIED) {
            say(c, "ERROR: coffset=0x%" PRIx64 ": copied flag must never be set for "
                   "compressed clusters\n", host);
            c->res->corruptions++;
        }
        inc_range(c, host, len);
        c->res->allocated_clusters++;
        c->res->compressed_clusters++;
        c->res->fragmented_clusters++;
        return;
    case QCOW2_C_NORMAL:
    case QCOW2_C_ZERO_ALLOC:
        host = e & QCOW2_OFFSET_MASK;
        if (host & (q->cs - 1)) {
            say(c, "ERROR offset=%" PRIx64 ": Data cluster is not properly aligned; L2 entry "
                   "corrupted.\n", host);
            c->res->corruptions++;
            return;
        }
        c->res->allocated_clusters++;
        if (c->next_contig && host != c->next_contig)
            c->res->fragmented_clusters++;
        c->next_contig = host + q->cs;
        inc_range(c, host, q->cs);
        return;
    default:
        return;
    }
}

static int count_l1(struct chk *c)
{
    struct qcow2 *q = c->q;
    for (uint32_t i = 0; i < q->l1_size; i++) {
        uint64_t l2 = q->l1[i] & QCOW2_OFFSET_MASK;
        if (!l2)
            continue;
        if (l2 & (q->cs - 1)) {
            say(c, "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 entry "
                   "corrupted\n", l2);
            c->res->corruptions++;
            continue;
        }
        inc_range(c, l2, q->cs);
        if (read_table(c, l2) < 0)
            continue;
        c->next_contig = 0; /* fragmentation is counted within one L2 table */
        for (uint64_t j = 0; j < q->l2_entries; j++)
            count_l2_entry(c, bd_be64(c->table + j * 8));
    }
    return 0;
}

static void count_refblocks(struct chk *c)
{
    struct qcow2 *q = c->q;
    for (uint64_t i = 0; i < q->reft_size; i++) {
        uint64_t off = q->reft[i] & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if ((off >> q->cluster_bits) >= c->nb) {
            say(c, "ERROR refcount block %" PRIu64 " is outside image\n", i);
            c->res->corruptions++;
            continue;
        }
        inc_range(c, off, q->cs);
        if (read_table(c, off) < 0)
            continue;
        for (uint64_t j = 0; j < q->rb_entries; j++) {
            uint64_t cl = i * q->rb_entries + j;
            if (cl < c->nb)
                c->rc[cl] = qcow2_rb_get(c->table, j, q->refcount_order);
        }
    }
}

static void compare_refcounts(struct chk *c)
{
    uint64_t highest = 0;
    bool any = false;
    for (uint64_t i = 0; i < c->nb; i++) {
        uint64_t rc = c->rc[i], ref = c->refs[i];
        if (rc || ref) {
            highest = i;
            any = true;
        }
        if (rc == ref)
            continue;
        if (rc < ref) {
            say(c, "ERROR cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n", i,
                rc, ref);
            c->res->corruptions++;
        } else {
            say(c, "Leaked cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
                i, rc, ref);
            c->res->leaks++;
        }
    }
    c->res->image_end_offset = any ? (highest + 1) << c->q->cluster_bits : 0;
}

static uint64_t rc_at(struct chk *c, uint64_t off)
{
    uint64_t i = off >> c->q->cluster_bits;
    return i < c->nb ? c->rc[i] : 0;
}

static void check_copied(struct chk *c)
{
    struct qcow2 *q = c->q;
    for (uint32_t i = 0; i < q->l1_size; i++) {
        uint64_t e = q->l1[i], l2 = e & QCOW2_OFFSET_MASK;
        if (!l2 || (l2 & (q->cs - 1)))
            continue;
        uint64_t rc = rc_at(c, l2);
        if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
            say(c, "ERROR OFLAG_COPIED L2 cluster: l1_index=%" PRIu32 " l1_entry=%" PRIx64
                   " refcount=%" PRIu64 "\n", i, e, rc);
            c->res->corruptions++;
        }
        if (read_table(c, l2) < 0)
            continue;
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t le = bd_be64(c->table + j * 8);
            enum qcow2_ctype t = qcow2_classify(q, le);
            if (t != QCOW2_C_NORMAL && t != QCOW2_C_ZERO_ALLOC)
                continue;
            if ((le & QCOW2_OFFSET_MASK) & (q->cs - 1))
                continue;
            rc = rc_at(c, le & QCOW2_OFFSET_MASK);
            if ((rc == 1) != !!(le & QCOW2_OFLAG_COPIED)) {
                say(c, "ERROR OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64
                       "\n", le, rc);
                c->res->corruptions++;
            }
        }
    }
}

int qcow2_check(struct blockdev *bd, struct qcow2_check_result *res, FILE *msgs,
                struct herd_err *err)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    memset(res, 0, sizeof(*res));
    if (q->nb_snapshots)
        return herd_err_set(err, -ENOTSUP, NULL,
                            "checking images with internal snapshots is not supported");
    int r = blockdev_flush(bd);
    uint64_t fsize;
    if (r == 0)
        r = bd_file_size(q->fd, &fsize);
    if (r < 0)
        return r;
    struct chk c = {.q = q, .res = res, .msgs = msgs};
    c.nb = (fsize + q->cs - 1) >> q->cluster_bits;
    c.refs = calloc(c.nb + 1, sizeof(*c.refs));
    c.rc = calloc(c.nb + 1, sizeof(*c.rc));
    c.table = malloc(q->cs);
    if (!c.refs || !c.rc || !c.table) {
        r = -ENOMEM;
        goto out;
    }
    res->total_clusters = (bd->size + q->cs - 1) >> q->cluster_bits;
    inc_range(&c, 0, q->cs);
    inc_range(&c, q->l1_offset, (uint64_t)q->l1_size * 8);
    inc_range(&c, q->reft_offset, (uint64_t)q->reft_clusters * q->cs);
    count_l1(&c);
    count_refblocks(&c);
    compare_refcounts(&c);
    check_copied(&c);
out:
    free(c.refs);
    free(c.rc);
    free(c.table);
    return r;
}
