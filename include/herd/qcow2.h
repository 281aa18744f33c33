/*
 * qcow2 — on-disk format facts, image creation, consistency check and the
 * format-specific information herd-img prints. The I/O path is reached
 * through include/herd/blockdev.h.
 */
#ifndef HERD_QCOW2_H
#define HERD_QCOW2_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "herd/blockdev.h"
#include "herd/error.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Header extension types. */
#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u
#define QCOW2_EXT_BITMAPS      0x23852875u
#define QCOW2_EXT_CRYPTO       0x0537be77u
#define QCOW2_EXT_DATA_FILE    0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS     (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW    (1ull << 1)

/* Table entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull
#define QCOW2_REFT_RESERVED    0x00000000000001ffull

#define QCOW2_COMPRESSION_ZLIB 0
#define QCOW2_COMPRESSION_ZSTD 1

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_L1_BYTES     (32u * 1024 * 1024)
#define QCOW2_MAX_REFTABLE_BYTES (8u * 1024 * 1024)

struct qcow2_create_opts {
    uint64_t size;            /* 0 with a backing file = the backing file's size */
    unsigned cluster_size;    /* 0 = 65536 */
    unsigned refcount_bits;   /* 0 = 16 */
    int compression_type;     /* QCOW2_COMPRESSION_* */
    const char *backing_file; /* stored as given */
    const char *backing_fmt;  /* required with backing_file */
    unsigned version;         /* 0 or 3 = v3 (compat=1.1); 2 = v2 (compat=0.10:
                                 16-bit refcounts, zlib, no extensions but the
                                 backing format) */
    struct herd_err *err;     /* why it failed (may be NULL) */
};

/* Creates a new qcow2 image laid out exactly as qemu-img create lays it out. */
int qcow2_create(const char *path, const struct qcow2_create_opts *opts);

/* Format-specific facts (qemu-img info's "format-specific"). */
struct qcow2_info {
    unsigned version;
    uint64_t cluster_size;
    unsigned refcount_bits;
    int compression_type;
    bool lazy_refcounts, corrupt, extended_l2, dirty;
    unsigned nb_snapshots;
};

/* Fails with -EINVAL if bd is not a qcow2 image. */
int qcow2_get_info(struct blockdev *bd, struct qcow2_info *info);

struct qcow2_check_result {
    uint64_t corruptions, leaks, check_errors;
    uint64_t corruptions_fixed, leaks_fixed; /* by qcow2_repair */
    uint64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
    uint64_t image_end_offset;
};

/* Reads every table from disk (the image must be flushed) and cross-checks
 * references with refcounts. Messages like qemu-img's go to msgs (may be NULL);
 * a check that cannot run says why in err (may be NULL). */
int qcow2_check(struct blockdev *bd, struct qcow2_check_result *res, FILE *msgs,
                struct herd_err *err);

/*
 * qemu-img check -r: qcow2_check that also repairs. QCOW2_FIX_LEAKS lowers
 * refcounts that exceed the references to them; QCOW2_FIX_ERRORS also raises
 * refcounts that are too low and rebuilds the refcount structure when a
 * referenced cluster has refcount 0 (or a refblock is unusable). Both fix the
 * COPIED flags once the refcounts are right, and clear the dirty and corrupt
 * header bits when nothing is left to fix. bd must be opened read-write with
 * opts.repair. Crash-safe: every step moves a refcount towards the true
 * count, each durable before the next depends on it; a rebuilt structure is
 * written after the end of the file and switched to by one header write.
 * Counts, as qemu-img's, in res (corruptions/leaks are what is left).
 * -EIO with "need to rebuild" printed when only leaks may be fixed and the
 * refcount structure is beyond that.
 */
#define QCOW2_FIX_LEAKS  1u
#define QCOW2_FIX_ERRORS 2u
int qcow2_repair(struct blockdev *bd, unsigned fix, struct qcow2_check_result *res,
                 FILE *msgs, struct herd_err *err);

/* Rewrites the backing file name and format in the header (rebase -u). */
int qcow2_set_backing(struct blockdev *bd, const char *name, const char *fmt);

/* Drops every cluster of the image (all reads fall through to the backing file). */
int qcow2_make_empty(struct blockdev *bd);

/* Reads one cluster's raw L2 entry for guest offset off (0 if unallocated). */
int qcow2_get_l2_entry(struct blockdev *bd, uint64_t off, uint64_t *entry);

/*
 * Writes one whole guest cluster compressed (the image's compression type),
 * at cluster-aligned off; data is one cluster (zero-padded past the end of
 * the image). Compressed clusters are packed bytewise into host clusters,
 * each user counted in the refcount, made durable before the L2 pointer as
 * for every allocation. Data that does not compress below a cluster is
 * written as a normal cluster. As qemu, the cluster must not be allocated
 * yet: -EIO otherwise.
 */
int qcow2_write_compressed(struct blockdev *bd, uint64_t off, const void *data);

/* The VM state area (qemu-io read -b / write -b): len bytes at pos from
 * its start, past the disk, from the first L1 entry the disk does not use.
 * Writes grow the L1 table (by half again until it fits, as qemu); reads
 * past it see zeros. -ENOTSUP for a format without one, -EINVAL past the
 * L1 table's limit. */
int qcow2_vmstate_rw(struct blockdev *bd, void *buf, uint64_t len, uint64_t pos, bool write);

/* qemu-img resize for qcow2 (the driver's resize; callers use
 * blockdev_resize): grows the virtual size (and the L1 table when needed;
 * the new area zeroed over a longer backing file), -EFBIG past the L1 limit; shrinks as qemu (clusters past the end freed,
 * L2 tables and refblocks no longer needed dropped, the file cut after its
 * last cluster in use), -ENOTSUP for an image with internal snapshots. */
int qcow2_resize(struct blockdev *bd, uint64_t new_size);

/*
 * preallocation=metadata: each unallocated guest cluster of [from, to) gets
 * a host cluster of its own (reading as zeros), L2 tables as needed, laid
 * out as qemu (per L2 table: the table, then the run of its data clusters);
 * the file is extended over them. -ENOTSUP for an image with a backing file
 * (qemu allows it only with extended L2 entries), -EROFS read-only.
 */
int qcow2_preallocate(struct blockdev *bd, uint64_t from, uint64_t to);
/* The same in any enum blockdev_prealloc mode: falloc and full then make the
 * holes of the file past its old end take disk space. */
int qcow2_preallocate_mode(struct blockdev *bd, uint64_t from, uint64_t to, int mode);
/* A grow (as qcow2_resize) whose new area is preallocated in mode (enum
 * blockdev_prealloc); with a backing file too, where the new area reads as
 * zeros all the same. -EINVAL for a size below the current one. */
int qcow2_grow_prealloc(struct blockdev *bd, uint64_t new_size, int mode);

#endif
