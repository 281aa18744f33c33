/*
 * qcow2 driver internals shared by blockdev/qcow2*.c.
 */
#ifndef HERD_QCOW2_INT_H
#define HERD_QCOW2_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/qcow2.h"
#include "internal.h"

/* What one L2 entry means. */
enum qcow2_ctype {
    QCOW2_C_UNALLOCATED,
    QCOW2_C_ZERO_PLAIN,
    QCOW2_C_ZERO_ALLOC,
    QCOW2_C_NORMAL,
    QCOW2_C_COMPRESSED,
};

struct qcow2;

/* Set-associative write-back cache of cluster-sized tables (L2 or refblocks). */
struct qcow2_cache_entry {
    uint64_t offset; /* host offset of the table; 0 = empty slot */
    uint8_t *data;
    uint64_t lru;
    bool dirty;
};

struct qcow2_cache {
    struct qcow2 *q;
    struct qcow2_cache_entry *e;
    unsigned sets, ways;
    uint64_t tick;
    struct qcow2_cache *depends; /* written (and synced) before any of ours */
};

struct qcow2_ext {
    uint32_t type, len;
    uint8_t *data;
};

struct qcow2 {
    struct blockdev *bd;
    int fd;
    bool writable;
    unsigned version;
    unsigned cluster_bits;
    uint64_t cs; /* cluster size */
    uint64_t l2_entries;
    uint64_t header_length;

    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1; /* host order */
    uint32_t l1_dirty_lo, l1_dirty_hi; /* dirty index range [lo, hi) */

    uint64_t reft_offset;
    uint32_t reft_clusters;
    uint64_t reft_size; /* entries */
    uint64_t *reft;     /* host order */
    unsigned refcount_order;
    uint64_t rb_entries; /* refcounts per refblock */
    uint64_t refcount_max;

    uint64_t incompat, compat, autoclear;
    uint8_t compression_type;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t backing_offset;
    uint32_t backing_len;

    struct qcow2_ext *exts; /* extensions other than backing format / end */
    unsigned n_exts;
    char *feature_names; /* raw feature table (48-byte entries), may be NULL */
    uint32_t feature_len;

    struct qcow2_cache l2c, rbc;
    uint64_t free_hint; /* first cluster index worth searching for free space */
    uint64_t *pending; /* clusters whose refcount drops at the next flush */
    size_t n_pending, cap_pending;
    bool data_written; /* data since the last sync */

    uint8_t *cbuf; /* last decompressed cluster */
    uint64_t cbuf_entry;
    bool cbuf_valid;
    uint8_t *bounce; /* one cluster, for copy-on-write */
    uint64_t cfree; /* next free byte in the last compressed-data cluster; 0 = none */
    int8_t prealloc_meta; /* metadata preallocation suspected: -1 not yet checked, 0, 1 */
    uint64_t open_end, grown_end; /* file size at open; what it has been grown to */
    bool grow_off; /* the file system cannot fallocate: writes extend the file */
};

/* qcow2_header.c */
int qcow2_header_read(struct qcow2 *q, const struct blockdev_open_opts *opts);
void qcow2_header_free(struct qcow2 *q);
int qcow2_header_write_backing(struct qcow2 *q, const char *name, const char *fmt);
int qcow2_mark_corrupt(struct qcow2 *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* qcow2_cache.c */
int qcow2_cache_init(struct qcow2_cache *c, struct qcow2 *q, size_t entries);
void qcow2_cache_free(struct qcow2_cache *c);
int qcow2_cache_get(struct qcow2_cache *c, uint64_t offset, uint8_t **data);
int qcow2_cache_get_empty(struct qcow2_cache *c, uint64_t offset, uint8_t **data);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset);
int qcow2_cache_flush(struct qcow2_cache *c);
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset);

/* qcow2_refcount.c */
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc);
int qcow2_refcount_set(struct qcow2 *q, uint64_t cluster, uint64_t rc);
/* Writes a new refcount table (bytes of big-endian entries, whole clusters)
 * at offset and syncs it, then points the header at it in one 12-byte write,
 * synced: a crash leaves the image on the old table or the new one. q's
 * in-memory table is the caller's to swap. */
int qcow2_reftable_write(struct qcow2 *q, const uint64_t *table, uint64_t bytes, uint64_t offset);
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset);
/* n contiguous clusters as qemu places a data run: clusters no refblock
 * covers yet count as free, and the refblocks the run lacks are placed right
 * after it (describing themselves). */
int qcow2_alloc_run(struct qcow2 *q, uint64_t n, uint64_t *offset);
int qcow2_free_deferred(struct qcow2 *q, uint64_t offset, uint64_t nclusters);
int qcow2_apply_pending(struct qcow2 *q);
uint64_t qcow2_rb_get(const uint8_t *rb, uint64_t i, unsigned order);
void qcow2_rb_set(uint8_t *rb, uint64_t i, unsigned order, uint64_t v);

/* qcow2_cluster.c */
enum qcow2_ctype qcow2_classify(const struct qcow2 *q, uint64_t entry);
int qcow2_l2_get(struct qcow2 *q, uint64_t ci, uint64_t *entry);
int qcow2_l2_set(struct qcow2 *q, uint64_t ci, uint64_t entry);
/* Makes the L2 table of guest cluster ci exist and be writable (allocated
 * or copied) before the data is placed: qemu's allocation order. */
int qcow2_l2_prepare(struct qcow2 *q, uint64_t ci);
int qcow2_entry_host(const struct qcow2 *q, uint64_t entry, uint64_t *host);
int qcow2_write_l1(struct qcow2 *q);
/* L1 entry i changed in memory: the next qcow2_write_l1 writes it. */
void qcow2_l1_dirty(struct qcow2 *q, uint32_t i);
bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len);

/* qcow2_prealloc.c: preallocation (enum blockdev_prealloc) of guest [from, to)
 * with no check of a backing file: the caller knows the range must read as
 * zeros (a grown area, from on a cluster boundary or the cluster allocated). */
int qcow2_prealloc_area(struct blockdev *bd, uint64_t from, uint64_t to, int mode);

/* qcow2_resize.c: a new L1 table of entries (more than now), written and
 * synced before the header names it; the old one freed at the next flush.
 * The caller flushed first. */
int qcow2_grow_l1(struct qcow2 *q, uint64_t entries);

/* qcow2_prealloc.c: whether the image looks metadata-preallocated (qemu's
 * test: clearly more clusters in use than the file has on disk), checked
 * once per open; then data clusters that are holes in the file read as
 * zeros in block status, as qemu reports them. */
bool qcow2_meta_preallocated(struct qcow2 *q);

/* qcow2_grow.c: the file grown (fallocate) to cover [.., end) before a
 * direct write there; cut back at close to its last counted cluster, never
 * below floor (qcow2_cut_tail) or the size it had before growing. */
int qcow2_grow_init(struct qcow2 *q); /* at open: no fstat in a confined thread */
void qcow2_grow_ahead(struct qcow2 *q, uint64_t end);
void qcow2_grow_trim(struct qcow2 *q);
int qcow2_cut_tail(struct qcow2 *q, uint64_t floor);

/* qcow2_shrink.c: the guest size down to new_size (< the current one). */
int qcow2_shrink(struct blockdev *bd, uint64_t new_size);

/* qcow2_compress.c */
void qcow2_compressed_range(const struct qcow2 *q, uint64_t entry, uint64_t *off,
                            uint64_t *len);
int qcow2_read_compressed(struct qcow2 *q, uint64_t entry, uint8_t *out);
int qcow2_decompress(int type, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len);

static inline struct qcow2 *qcow2_of(struct blockdev *bd)
{
    return bd->priv;
}

#endif
