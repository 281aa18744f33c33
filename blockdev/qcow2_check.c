/*
 * qcow2 consistency check and repair: every reference counted from the
 * tables on disk, compared with the stored refcounts and the COPIED flags.
 * The numbers and messages follow qemu-img check (and check -r) so the
 * outputs can be diffed.
 *
 * Repair order, chosen so that a crash at any point leaves an image no worse
 * than before (leaks never become corruptions):
 *  1. refcounts that differ from the references are set to the reference
 *     count (lowered for leaks, raised for corruptions), refblocks written and
 *     synced; each single change only moves a refcount towards the truth;
 *  2. or, when a referenced cluster has refcount 0 or a refblock is unusable
 *     (-r all only), a complete new refcount structure is written after the
 *     end of the file, synced, and the header switched to it with one 12-byte
 *     write (then synced): before the switch the old structure rules, after it
 *     the new one, and nothing else is touched meanwhile;
 *  3. COPIED flags are fixed from the now durable refcounts, then synced;
 *  4. only then are the dirty and corrupt header bits cleared.
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
    uint64_t highest; /* last cluster with a refcount or a reference */
    bool rebuild;     /* the refcount structure itself must be rebuilt */
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
    uint64_t max = BD_MIN(c->q->refcount_max, (uint64_t)UINT32_MAX);
    for (uint64_t i = first; i <= last; i++) {
        if (i >= c->nb) {
            say(c, "ERROR: counting reference for region exceeding the end of the file "
                   "by one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64 "\n",
                i << c->q->cluster_bits, c->q->cs);
            c->res->corruptions++;
            return;
        }
        if (c->refs[i] >= max) {
            say(c, "ERROR: overflow cluster offset=0x%" PRIx64 "\n", i << c->q->cluster_bits);
            say(c, "Use qemu-img amend to increase the refcount entry width or qemu-img "
                   "convert to create a clean copy if the image cannot be opened for "
                   "writing\n");
            c->res->corruptions++;
            continue;
        }
        c->refs[i]++;
    }
}

static int read_table(struct chk *c, uint64_t off)
{
    int r = bd_pread_full(c->q->fd, c->table, c->q->cs, off);
    if (r < 0) {
        say(c, "ERROR: could not read the table at 0x%" PRIx64 ": %s\n", off, strerror(-r));
        c->res->check_errors++;
    }
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

static void count_l1(struct chk *c)
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
        if ((l2 >> q->cluster_bits) >= c->nb || read_table(c, l2) < 0)
            continue;
        c->next_contig = 0; /* fragmentation is counted within one L2 table */
        for (uint64_t j = 0; j < q->l2_entries; j++)
            count_l2_entry(c, bd_be64(c->table + j * 8));
    }
}

static void count_refblocks(struct chk *c)
{
    struct qcow2 *q = c->q;
    for (uint64_t i = 0; i < q->reft_size; i++) {
        uint64_t off = q->reft[i] & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if (off & (q->cs - 1)) {
            say(c, "ERROR refcount block %" PRIu64 " is not cluster aligned; refcount table "
                   "entry corrupted\n", i);
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if ((off >> q->cluster_bits) >= c->nb) {
            say(c, "ERROR refcount block %" PRIu64 " is outside image\n", i);
            c->res->corruptions++;
            c->rebuild = true;
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
    /* A refblock must be used as a refblock once, and nothing else. */
    for (uint64_t i = 0; i < q->reft_size; i++) {
        uint64_t off = q->reft[i] & QCOW2_OFFSET_MASK, cl = off >> q->cluster_bits;
        if (cl && cl < c->nb && !(off & (q->cs - 1)) && c->refs[cl] != 1) {
            say(c, "ERROR refcount block %" PRIu64 " refcount=%" PRIu32 "\n", i, c->refs[cl]);
            c->res->corruptions++;
            c->rebuild = true;
        }
    }
}

/* (Re)counts everything from the tables on disk; the file may have grown. */
static int calculate(struct chk *c)
{
    struct qcow2 *q = c->q;
    uint64_t fsize;
    int r = bd_file_size(q->fd, &fsize);
    if (r < 0)
        return r;
    free(c->refs);
    free(c->rc);
    c->nb = (fsize + q->cs - 1) >> q->cluster_bits;
    c->refs = calloc(c->nb + 1, sizeof(*c->refs));
    c->rc = calloc(c->nb + 1, sizeof(*c->rc));
    if (!c->refs || !c->rc) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    c->rebuild = false;
    inc_range(c, 0, q->cs);
    inc_range(c, q->l1_offset, (uint64_t)q->l1_size * 8);
    inc_range(c, q->reft_offset, (uint64_t)q->reft_clusters * q->cs);
    count_l1(c);
    count_refblocks(c);
    return 0;
}

/* Stored refcounts against references; with fix, sets the stored ones to
 * the references it may fix (and syncs them before returning). */
static int compare_refcounts(struct chk *c, unsigned fix)
{
    struct qcow2 *q = c->q;
    bool wrote = false;
    c->highest = 0;
    for (uint64_t i = 0; i < c->nb; i++) {
        uint64_t rc = c->rc[i], ref = c->refs[i];
        if (rc || ref)
            c->highest = i;
        if (rc == ref)
            continue;
        uint64_t *fixed = NULL;
        if (rc == 0)
            c->rebuild = true; /* no refblock to raise it in, maybe: rebuild */
        else if (rc > ref && (fix & QCOW2_FIX_LEAKS))
            fixed = &c->res->leaks_fixed;
        else if (rc < ref && (fix & QCOW2_FIX_ERRORS))
            fixed = &c->res->corruptions_fixed;
        say(c, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
            fixed ? "Repairing" : rc < ref ? "ERROR" : "Leaked", i, rc, ref);
        if (fixed) {
            int r = qcow2_refcount_set(q, i, ref);
            if (r == 0) {
                c->rc[i] = ref;
                (*fixed)++;
                wrote = true;
                if (ref == 0 && i < q->free_hint)
                    q->free_hint = i;
                continue;
            }
            say(c, "ERROR could not set the refcount of cluster %" PRIu64 ": %s\n", i,
                strerror(-r));
        }
        if (rc < ref)
            c->res->corruptions++;
        else
            c->res->leaks++;
    }
    if (!wrote)
        return 0;
    int r = qcow2_cache_flush(&q->rbc); /* writes the refblocks and syncs */
    if (r < 0) {
        say(c, "ERROR could not write refcount blocks: %s\n", strerror(-r));
        c->res->check_errors++;
    }
    return r;
}

/* New refcount of cluster i: the references, plus the new structure itself. */
static uint64_t new_rc(const struct chk *c, uint64_t i, uint64_t start, uint64_t end)
{
    if (i < c->nb)
        return c->refs[i];
    return i >= start && i < end ? 1 : 0;
}

static bool range_used(const struct chk *c, uint64_t k, uint64_t start, uint64_t end)
{
    uint64_t lo = k * c->q->rb_entries, hi = lo + c->q->rb_entries;
    if (lo < end && start < hi)
        return true;
    for (uint64_t i = lo; i < hi && i < c->nb; i++)
        if (c->refs[i])
            return true;
    return false;
}

/*
 * A refcount structure built from the references alone, written after the
 * end of the file (where nothing is referenced), synced, then made current
 * by one header write. The old structure is left in place, unreferenced.
 */
static int rebuild_refcounts(struct chk *c)
{
    struct qcow2 *q = c->q;
    uint64_t rbe = q->rb_entries;
    /* The old reftable and refblocks stop being referenced by the switch. */
    for (uint64_t i = 0; i < q->reft_clusters; i++) {
        uint64_t cl = (q->reft_offset >> q->cluster_bits) + i;
        if (cl < c->nb && c->refs[cl])
            c->refs[cl]--;
    }
    for (uint64_t i = 0; i < q->reft_size; i++) {
        uint64_t off = q->reft[i] & QCOW2_OFFSET_MASK, cl = off >> q->cluster_bits;
        if (cl && cl < c->nb && !(off & (q->cs - 1)) && c->refs[cl])
            c->refs[cl]--;
    }
    for (uint64_t i = 0; i < c->nb; i++)
        if (c->refs[i] > q->refcount_max)
            return -ERANGE;
    uint64_t start = c->nb, tcl = 1, nrb = 0, end, ranges;
    for (;;) {
        end = start + tcl + nrb;
        ranges = (end - 1) / rbe + 1;
        uint64_t n = 0;
        for (uint64_t k = 0; k < ranges; k++)
            n += range_used(c, k, start, end);
        uint64_t t = (ranges * 8 + q->cs - 1) >> q->cluster_bits;
        if (n == nrb && t == tcl)
            break;
        nrb = BD_MAX(n, nrb);
        tcl = BD_MAX(t, tcl);
    }
    if ((tcl << q->cluster_bits) > QCOW2_MAX_REFTABLE_BYTES ||
        end > (QCOW2_OFFSET_MASK >> q->cluster_bits))
        return -EFBIG;
    uint64_t tbytes = tcl << q->cluster_bits;
    uint64_t *nt = calloc(1, tbytes);
    uint8_t *blk = malloc(q->cs);
    int r = nt && blk ? 0 : -ENOMEM;
    uint64_t at = start + tcl;
    for (uint64_t k = 0; r == 0 && k < ranges; k++) {
        if (!range_used(c, k, start, end))
            continue;
        memset(blk, 0, q->cs);
        for (uint64_t j = 0; j < rbe; j++)
            qcow2_rb_set(blk, j, q->refcount_order, new_rc(c, k * rbe + j, start, end));
        nt[k] = at << q->cluster_bits;
        r = bd_pwrite_full(q->fd, blk, q->cs, at << q->cluster_bits);
        at++;
    }
    for (uint64_t k = 0; r == 0 && k < ranges; k++)
        bd_put_be64(&nt[k], nt[k]);
    if (r == 0)
        r = qcow2_reftable_write(q, nt, tbytes, start << q->cluster_bits);
    free(blk);
    if (r < 0) {
        free(nt);
        return r;
    }
    for (uint64_t i = 0; i < q->reft_size; i++)
        if (q->reft[i])
            qcow2_cache_forget(&q->rbc, q->reft[i] & QCOW2_OFFSET_MASK);
    for (uint64_t i = 0; i < tbytes / 8; i++)
        nt[i] = bd_be64(&nt[i]);
    free(q->reft);
    q->reft = nt;
    q->reft_offset = start << q->cluster_bits;
    q->reft_clusters = (uint32_t)tcl;
    q->reft_size = tbytes / 8;
    q->free_hint = 0;
    return 0;
}

static uint64_t rc_at(struct chk *c, uint64_t off)
{
    uint64_t i = off >> c->q->cluster_bits;
    return i < c->nb ? c->rc[i] : 0;
}

static int write_fixed_l2(struct chk *c, uint64_t l2)
{
    struct qcow2 *q = c->q;
    int r = -EIO;
    if (!qcow2_overlaps_metadata(q, l2, q->cs))
        r = bd_pwrite_full(q->fd, c->table, q->cs, l2);
    qcow2_cache_forget(&q->l2c, l2);
    if (r < 0) {
        say(c, "ERROR: Could not write L2 table: %s\n", strerror(-r));
        c->res->check_errors++;
    }
    return r;
}

/* COPIED must be set exactly where the refcount is 1. */
static int check_copied(struct chk *c, unsigned fix)
{
    struct qcow2 *q = c->q;
    bool repair = (fix & QCOW2_FIX_ERRORS) ||
                  ((fix & QCOW2_FIX_LEAKS) && !c->res->check_errors && !c->res->corruptions &&
                   !c->res->leaks);
    bool wrote = false;
    int r = 0;
    for (uint32_t i = 0; i < q->l1_size && r == 0; i++) {
        uint64_t e = q->l1[i], l2 = e & QCOW2_OFFSET_MASK;
        if (!l2 || (l2 & (q->cs - 1)))
            continue;
        uint64_t rc = rc_at(c, l2);
        if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
            c->res->corruptions++;
            say(c, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32 " l1_entry=%" PRIx64
                   " refcount=%" PRIu64 "\n", repair ? "Repairing" : "ERROR", i, e, rc);
            if (repair) {
                uint64_t ne = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
                uint8_t b[8];
                bd_put_be64(b, ne);
                r = bd_pwrite_full(q->fd, b, 8, q->l1_offset + (uint64_t)i * 8);
                if (r < 0) {
                    say(c, "ERROR: Could not write L1 table: %s\n", strerror(-r));
                    c->res->check_errors++;
                    break;
                }
                q->l1[i] = ne;
                c->res->corruptions--;
                c->res->corruptions_fixed++;
                wrote = true;
            }
        }
        if ((l2 >> q->cluster_bits) >= c->nb || read_table(c, l2) < 0)
            continue;
        bool dirty = false;
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t le = bd_be64(c->table + j * 8);
            enum qcow2_ctype t = qcow2_classify(q, le);
            if (t != QCOW2_C_NORMAL && t != QCOW2_C_ZERO_ALLOC)
                continue;
            if ((le & QCOW2_OFFSET_MASK) & (q->cs - 1))
                continue;
            rc = rc_at(c, le & QCOW2_OFFSET_MASK);
            if ((rc == 1) == !!(le & QCOW2_OFLAG_COPIED))
                continue;
            c->res->corruptions++;
            say(c, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64 "\n",
                repair ? "Repairing" : "ERROR", le, rc);
            if (repair) {
                bd_put_be64(c->table + j * 8,
                            rc == 1 ? le | QCOW2_OFLAG_COPIED : le & ~QCOW2_OFLAG_COPIED);
                c->res->corruptions--;
                c->res->corruptions_fixed++;
                dirty = true;
            }
        }
        if (dirty) {
            r = write_fixed_l2(c, l2);
            wrote = true;
        }
    }
    if (r == 0 && wrote)
        r = bd_fdatasync(q->fd);
    return r;
}

/* Consistent again: the dirty (lazy refcounts) and corrupt bits go. */
static int mark_clean(struct qcow2 *q)
{
    uint64_t bits = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
    if (q->version < 3 || !(q->incompat & bits))
        return 0;
    uint8_t b[8];
    bd_put_be64(b, q->incompat & ~bits);
    int r = bd_fdatasync(q->fd); /* everything the bits covered, first */
    if (r == 0)
        r = bd_pwrite_full(q->fd, b, 8, 72);
    if (r == 0)
        r = bd_fdatasync(q->fd);
    if (r == 0)
        q->incompat &= ~bits;
    return r;
}

int qcow2_repair(struct blockdev *bd, unsigned fix, struct qcow2_check_result *res,
                 FILE *msgs, struct herd_err *err)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    memset(res, 0, sizeof(*res));
    if (q->nb_snapshots)
        return herd_err_set(err, -ENOTSUP, NULL,
                            "checking images with internal snapshots is not supported");
    if (fix && !q->writable)
        return herd_err_set(err, -EROFS, NULL, "the image is not open for writing");
    int r = blockdev_flush(bd);
    if (r < 0)
        return herd_err_set(err, r, NULL, "%s", strerror(-r));
    struct chk c = {.q = q, .res = res, .msgs = msgs};
    c.table = malloc(q->cs);
    res->total_clusters = (bd->size + q->cs - 1) >> q->cluster_bits;
    r = c.table ? calculate(&c) : -ENOMEM;
    if (r < 0)
        goto out;
    struct qcow2_check_result pre = *res;
    r = compare_refcounts(&c, 0);
    if (r < 0)
        goto out;
    if (c.rebuild && (fix & QCOW2_FIX_ERRORS)) {
        struct qcow2_check_result old = *res;
        say(&c, "Rebuilding refcount structure\n");
        r = rebuild_refcounts(&c);
        if (r < 0) {
            say(&c, "ERROR could not rebuild the refcount structure: %s\n", strerror(-r));
            res->check_errors++;
            goto out;
        }
        /* Counted again against the new structure; what it leaks is fixed. */
        *res = (struct qcow2_check_result){.total_clusters = old.total_clusters};
        if ((r = calculate(&c)) < 0 || (r = compare_refcounts(&c, QCOW2_FIX_LEAKS)) < 0)
            goto out;
        if (c.rebuild)
            say(&c, "ERROR rebuilt refcount structure is still broken\n");
        /* Leaks the rebuild itself left (none: the old structure is not
         * counted in the new one) are not the image's: not reported fixed. */
        res->leaks_fixed = old.leaks_fixed;
        res->corruptions_fixed = old.corruptions_fixed;
        if (res->corruptions < old.corruptions)
            res->corruptions_fixed += old.corruptions - res->corruptions;
        if (res->leaks < old.leaks)
            res->leaks_fixed += old.leaks - res->leaks;
    } else if (fix) {
        if (c.rebuild) {
            say(&c, "ERROR need to rebuild refcount structures\n");
            res->check_errors++;
            r = herd_err_set(err, -EIO, NULL, "%s", strerror(EIO));
            goto out;
        }
        if (res->leaks || res->corruptions) {
            *res = pre;
            if ((r = compare_refcounts(&c, fix)) < 0)
                goto out;
        }
    }
    if ((r = check_copied(&c, fix)) < 0)
        goto out;
    res->image_end_offset = (c.highest + 1) << q->cluster_bits;
    if (fix && !res->check_errors && !res->corruptions)
        r = mark_clean(q);
out:
    if (r < 0 && err && !err->msg[0])
        herd_err_set(err, r, NULL, "%s", strerror(-r));
    free(c.refs);
    free(c.rc);
    free(c.table);
    return r;
}

int qcow2_check(struct blockdev *bd, struct qcow2_check_result *res, FILE *msgs,
                struct herd_err *err)
{
    return qcow2_repair(bd, 0, res, msgs, err);
}
