/*
 * qcow2 v3 image creation. The layout is the one qemu-img create writes, so
 * the two tools produce byte-identical files for the same options:
 *   cluster 0  header, extensions (backing format, feature names when they
 *              fit), end marker, backing file name
 *   cluster 1  refcount table (one cluster)
 *   cluster 2  first refblock
 *   cluster 3  L1 table (l1_size * 8 bytes, file ends right after it)
 * followed by any further refblocks the L1 table needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2_int.h"

static const struct {
    uint8_t type, bit;
    const char *name;
} feature_table[] = {
    {0, 0, "dirty bit"},           {0, 1, "corrupt bit"},
    {0, 2, "external data file"},  {0, 3, "compression type"},
    {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},             {2, 1, "raw external data"},
};

#define FEATURE_TABLE_LEN (sizeof(feature_table) / sizeof(feature_table[0]) * 48)

struct layout {
    uint64_t cs, l1_size, l1_off, nrb, rb_entries, end;
    unsigned cluster_bits, refcount_order;
    uint64_t rb_at[512]; /* cluster index of each range's refblock (0 = none) */
};

/* Refblocks beyond the first go where qemu's allocator puts them: the next
 * free cluster, and a block landing in a range without one gets that range's
 * block right after it. */
static int place_refblock(struct layout *l, uint64_t r, uint64_t *next)
{
    uint64_t max = BD_MIN(l->cs / 8, 512);
    while (r < max && !l->rb_at[r]) {
        l->rb_at[r] = (*next)++;
        l->nrb++;
        r = l->rb_at[r] / l->rb_entries;
    }
    return r < max ? 0 : -EFBIG;
}

static int layout_compute(const struct qcow2_create_opts *o, struct layout *l)
{
    memset(l, 0, sizeof(*l));
    l->cs = o->cluster_size ? o->cluster_size : 65536;
    if (l->cs < 512 || l->cs > (2u << 20) || (l->cs & (l->cs - 1)))
        return herd_err_set(o->err, -EINVAL, NULL,
                            "Cluster size must be a power of two between 512 and 2048k");
    l->cluster_bits = (unsigned)__builtin_ctzll(l->cs);
    unsigned rb = o->refcount_bits ? o->refcount_bits : 16;
    if (rb > 64 || (rb & (rb - 1)))
        return herd_err_set(o->err, -EINVAL, NULL,
                            "Refcount width must be a power of two and may not exceed 64 bits");
    l->refcount_order = (unsigned)__builtin_ctz(rb);
    l->rb_entries = l->cs * 8 / rb;
    uint64_t cover = l->cs / 8 * l->cs;
    l->l1_size = (o->size + cover - 1) / cover;
    if (l->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return herd_err_set(o->err, -EFBIG, NULL,
                            "The image size is too large for file format 'qcow2' (try "
                            "using a larger cluster size)");
    l->l1_off = l->l1_size ? 3 * l->cs : 0;
    uint64_t l1_end = l->l1_size ? l->l1_off + l->l1_size * 8 : 3 * l->cs;
    uint64_t used = (l1_end + l->cs - 1) / l->cs, next = used;
    l->rb_at[0] = 2;
    l->nrb = 1;
    for (uint64_t r = 0; r <= (used - 1) / l->rb_entries; r++) {
        if (place_refblock(l, r, &next) < 0)
            return herd_err_set(o->err, -EFBIG, NULL,
                                "Image too large for a single-cluster refcount table at this "
                                "cluster size");
    }
    l->end = next > used ? next * l->cs : l1_end;
    return 0;
}

static size_t put_ext(uint8_t *c0, size_t pos, uint32_t type, const void *d, uint32_t len)
{
    bd_put_be32(c0 + pos, type);
    bd_put_be32(c0 + pos + 4, len);
    memcpy(c0 + pos + 8, d, len);
    return pos + 8 + ((len + 7u) & ~7u);
}

static void header_build(uint8_t *c0, const struct qcow2_create_opts *o, const struct layout *l)
{
    size_t blen = o->backing_file ? strlen(o->backing_file) : 0;
    size_t flen = o->backing_fmt ? strlen(o->backing_fmt) : 0;
    bool v2 = o->version == 2;
    bd_put_be32(c0, QCOW2_MAGIC);
    bd_put_be32(c0 + 4, v2 ? 2 : 3);
    bd_put_be32(c0 + 20, l->cluster_bits);
    bd_put_be64(c0 + 24, o->size);
    bd_put_be32(c0 + 36, (uint32_t)l->l1_size);
    bd_put_be64(c0 + 40, l->l1_off);
    bd_put_be64(c0 + 48, l->cs);
    bd_put_be32(c0 + 56, 1);
    size_t pos = 72; /* v2: the extensions follow the fixed fields */
    if (!v2) {
        if (o->compression_type == QCOW2_COMPRESSION_ZSTD)
            bd_put_be64(c0 + 72, QCOW2_INCOMPAT_COMPRESSION);
        bd_put_be32(c0 + 96, l->refcount_order);
        bd_put_be32(c0 + 100, 112);
        c0[104] = (uint8_t)o->compression_type;
        pos = 112;
    }
    if (blen && flen)
        pos = put_ext(c0, pos, QCOW2_EXT_BACKING_FMT, o->backing_fmt, (uint32_t)flen);
    /* qemu-img writes the feature name table only with clusters above 4 KiB,
     * and never into a v2 header. */
    if (!v2 && l->cs > 4096 && pos + 8 + FEATURE_TABLE_LEN + 8 + blen <= l->cs) {
        uint8_t ft[FEATURE_TABLE_LEN] = {0};
        for (size_t i = 0; i < sizeof(feature_table) / sizeof(feature_table[0]); i++) {
            ft[i * 48] = feature_table[i].type;
            ft[i * 48 + 1] = feature_table[i].bit;
            strncpy((char *)ft + i * 48 + 2, feature_table[i].name, 46);
        }
        pos = put_ext(c0, pos, QCOW2_EXT_FEATURES, ft, FEATURE_TABLE_LEN);
    }
    pos += 8; /* end marker */
    if (blen) {
        bd_put_be64(c0 + 8, pos);
        bd_put_be32(c0 + 16, (uint32_t)blen);
        memcpy(c0 + pos, o->backing_file, blen);
    }
}

static int check_opts(const struct qcow2_create_opts *o)
{
    size_t blen = o->backing_file ? strlen(o->backing_file) : 0;
    if (blen > QCOW2_MAX_BACKING_NAME)
        return herd_err_set(o->err, -EINVAL, NULL, "Backing file name too long");
    if (blen && (!o->backing_fmt || !o->backing_fmt[0]))
        return herd_err_set(o->err, -EINVAL, NULL,
                            "Backing file specified without backing format");
    if (o->backing_fmt && strlen(o->backing_fmt) > 63)
        return herd_err_set(o->err, -EINVAL, NULL, "Backing format name too long");
    if (o->compression_type != QCOW2_COMPRESSION_ZLIB &&
        o->compression_type != QCOW2_COMPRESSION_ZSTD)
        return herd_err_set(o->err, -EINVAL, NULL, "Unknown compression type");
    if (o->size % 512)
        return herd_err_set(o->err, -EINVAL, NULL, "Image size must be a multiple of 512 bytes");
    if (o->version != 0 && o->version != 2 && o->version != 3)
        return herd_err_set(o->err, -EINVAL, NULL, "Unknown qcow2 version %u", o->version);
    if (o->version == 2 && o->refcount_bits && o->refcount_bits != 16)
        return herd_err_set(o->err, -EINVAL, NULL,
                            "Different refcount widths than 16 bits require compatibility "
                            "level 1.1 or above (use version=v3 or greater)");
    if (o->version == 2 && o->compression_type != QCOW2_COMPRESSION_ZLIB)
        return herd_err_set(o->err, -EINVAL, NULL,
                            "Non-zlib compression type is only supported with compatibility "
                            "level 1.1 and above (use version=v3 or greater)");
    return 0;
}

static int write_metadata(int fd, const struct qcow2_create_opts *o, const struct layout *l)
{
    uint8_t *buf = calloc(1, l->cs);
    if (!buf)
        return -ENOMEM;
    header_build(buf, o, l);
    int r = bd_pwrite_full(fd, buf, l->cs, 0);
    uint64_t used = (l->end + l->cs - 1) / l->cs, nranges = BD_MIN(l->cs / 8, 512);
    memset(buf, 0, l->cs);
    for (uint64_t i = 0; i < nranges; i++)
        if (l->rb_at[i])
            bd_put_be64(buf + i * 8, l->rb_at[i] * l->cs);
    if (r == 0)
        r = bd_pwrite_full(fd, buf, l->cs, l->cs);
    for (uint64_t i = 0; r == 0 && i < nranges; i++) {
        if (!l->rb_at[i])
            continue;
        memset(buf, 0, l->cs);
        for (uint64_t c = i * l->rb_entries; c < used && c < (i + 1) * l->rb_entries; c++)
            qcow2_rb_set(buf, c - i * l->rb_entries, l->refcount_order, 1);
        r = bd_pwrite_full(fd, buf, l->cs, l->rb_at[i] * l->cs);
    }
    free(buf);
    if (r == 0 && ftruncate(fd, (off_t)l->end) < 0)
        r = -errno;
    return r;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *opts)
{
    struct layout l;
    int r = check_opts(opts);
    if (r == 0)
        r = layout_compute(opts, &l);
    if (r < 0)
        return r;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return herd_err_set(opts->err, -errno, NULL, "Could not create '%s': %s", path,
                            strerror(errno));
    r = bd_lock_image(fd, true, path, opts->err);
    if (r == 0 && ftruncate(fd, 0) < 0)
        r = -errno;
    if (r == 0)
        r = write_metadata(fd, opts, &l);
    /* No fdatasync: like qemu-img create; callers that need the new image
     * durable before using it sync it (overlay creation stays sub-millisecond). */
    bd_unlock_image(fd);
    close(fd);
    return r;
}
