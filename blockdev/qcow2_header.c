/*
 * qcow2 header and header extensions: parsing with every field checked,
 * rewriting the backing file name, the corrupt bit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"

#define KNOWN_INCOMPAT (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
                        QCOW2_INCOMPAT_COMPRESSION)

static int hdr_err(struct herd_err *herr, int err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int hdr_err(struct herd_err *herr, int err, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return herd_err_set(herr, -err, NULL, "qcow2 image '%s': %s", path, msg);
}

/* qemu's message for incompatible feature bits this code does not know:
 * the names the image's own feature table gives them (in table order, up to
 * the first entry without a name), then the hex mask of the nameless rest. */
static int unsupported_features(const struct qcow2 *q, struct herd_err *herr, uint64_t mask)
{
    char list[400] = "";
    size_t n = 0;
    /* As qemu, a last entry cut short by the extension's length counts,
     * zero-padded to its 48 bytes. */
    for (uint32_t i = 0; q->feature_names && i < q->feature_len; i += 48) {
        uint8_t f[48] = {0};
        memcpy(f, q->feature_names + i, BD_MIN(48u, q->feature_len - i));
        if (f[2] == 0)
            break;
        if (f[0] != 0 || f[1] >= 64 || !(mask & (1ull << f[1])))
            continue;
        mask &= ~(1ull << f[1]);
        if (n < sizeof(list))
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%.46s", n ? ", " : "",
                                  (const char *)f + 2);
    }
    if (mask && n < sizeof(list))
        snprintf(list + n, sizeof(list) - n, "%sUnknown incompatible feature: %" PRIx64,
                 n ? ", " : "", mask);
    return herd_err_set(herr, -ENOTSUP, NULL, "Unsupported qcow2 feature(s): %s", list);
}

static int check_incompat(struct qcow2 *q, struct herd_err *herr, const char *path,
                          bool repair)
{
    if (q->incompat & QCOW2_INCOMPAT_DATA_FILE)
        return hdr_err(herr, ENOTSUP, path, "external data files are not supported");
    if (q->incompat & QCOW2_INCOMPAT_EXTL2)
        return hdr_err(herr, ENOTSUP, path, "extended L2 entries (subclusters) are not supported");
    /* Unknown bits are refused once the feature table is read
     * (qcow2_header_read), to name them. */
    if (repair)
        return 0; /* qcow2_repair clears the bits once the image is consistent */
    if (q->writable && (q->incompat & QCOW2_INCOMPAT_CORRUPT))
        return hdr_err(herr, EACCES, path,
                       "image is marked corrupt; it can only be opened read-only");
    if (q->writable && (q->incompat & QCOW2_INCOMPAT_DIRTY))
        return hdr_err(herr, EACCES, path, "image is dirty (lazy refcounts); repair it with "
                       "'herd-img check -r all' before writing");
    return 0;
}

static int parse_fixed(struct qcow2 *q, const uint8_t *h, uint64_t file_size,
                       struct herd_err *herr, const char *path)
{
    if (bd_be32(h) != QCOW2_MAGIC)
        return hdr_err(herr, EINVAL, path, "bad magic");
    q->version = bd_be32(h + 4);
    if (q->version != 2 && q->version != 3)
        return hdr_err(herr, ENOTSUP, path, "unsupported version %u", q->version);
    q->backing_offset = bd_be64(h + 8);
    q->backing_len = bd_be32(h + 16);
    q->cluster_bits = bd_be32(h + 20);
    if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return hdr_err(herr, EINVAL, path, "cluster_bits %u out of range [9, 21]", q->cluster_bits);
    q->cs = 1ull << q->cluster_bits;
    q->l2_entries = q->cs / 8;
    q->bd->size = bd_be64(h + 24);
    if (bd_be32(h + 32) != 0)
        return hdr_err(herr, ENOTSUP, path, "encrypted images are not supported");
    q->l1_size = bd_be32(h + 36);
    q->l1_offset = bd_be64(h + 40);
    q->reft_offset = bd_be64(h + 48);
    q->reft_clusters = bd_be32(h + 56);
    q->nb_snapshots = bd_be32(h + 60);
    q->snapshots_offset = bd_be64(h + 64);
    q->header_length = 72;
    q->refcount_order = 4;
    if (q->version == 3) {
        q->incompat = bd_be64(h + 72);
        q->compat = bd_be64(h + 80);
        q->autoclear = bd_be64(h + 88);
        q->refcount_order = bd_be32(h + 96);
        q->header_length = bd_be32(h + 100);
        if (q->header_length < 104 || q->header_length % 8 || q->header_length > q->cs)
            return hdr_err(herr, EINVAL, path, "header_length %" PRIu64 " invalid",
                           q->header_length);
        if (q->header_length > 104)
            q->compression_type = h[104];
    }
    (void)file_size;
    return 0;
}

static int check_compression(struct qcow2 *q, struct herd_err *herr, const char *path)
{
    bool bit = q->incompat & QCOW2_INCOMPAT_COMPRESSION;
    if (q->compression_type > QCOW2_COMPRESSION_ZSTD)
        return hdr_err(herr, ENOTSUP, path, "unknown compression type %u", q->compression_type);
    if (bit && q->compression_type == QCOW2_COMPRESSION_ZLIB)
        return hdr_err(herr, EINVAL, path, "compression type bit set with zlib compression");
    if (!bit && q->compression_type != QCOW2_COMPRESSION_ZLIB)
        return hdr_err(herr, EINVAL, path, "non-zlib compression type without the feature bit");
    return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static int check_tables(struct qcow2 *q, struct herd_err *herr, const char *path)
{
    uint64_t mask = q->cs - 1;
    if (q->refcount_order > 6)
        return hdr_err(herr, EINVAL, path, "refcount_order %u > 6", q->refcount_order);
    q->rb_entries = q->cs * 8 >> q->refcount_order;
    unsigned bits = 1u << q->refcount_order;
    q->refcount_max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    if (q->bd->size > (1ull << 62))
        return hdr_err(herr, EINVAL, path, "virtual size %" PRIu64 " too large", q->bd->size);
    uint64_t cover = q->l2_entries * q->cs;
    uint64_t need = (q->bd->size + cover - 1) / cover;
    if (need > INT32_MAX) /* qemu's limit and words */
        return herd_err_set(herr, -EFBIG, NULL, "Image is too big");
    if (q->l1_size < need)
        return hdr_err(herr, EINVAL, path, "L1 table too small (%u entries, need %" PRIu64 ")",
                       q->l1_size, need);
    if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return hdr_err(herr, EFBIG, path, "L1 table too large (%u entries)", q->l1_size);
    if (q->l1_size && ((q->l1_offset & mask) || q->l1_offset == 0 ||
                       q->l1_offset > QCOW2_OFFSET_MASK))
        return hdr_err(herr, EINVAL, path, "L1 table offset %#" PRIx64 " invalid", q->l1_offset);
    if (q->reft_clusters == 0 || (q->reft_offset & mask) || q->reft_offset == 0 ||
        q->reft_offset > QCOW2_OFFSET_MASK)
        return hdr_err(herr, EINVAL, path, "refcount table offset %#" PRIx64 " invalid",
                       q->reft_offset);
    if ((uint64_t)q->reft_clusters * q->cs > QCOW2_MAX_REFTABLE_BYTES)
        return hdr_err(herr, EFBIG, path, "refcount table too large (%u clusters)",
                       q->reft_clusters);
    q->reft_size = (uint64_t)q->reft_clusters * q->cs / 8;
    if (q->l1_size && ranges_overlap(q->l1_offset, (uint64_t)q->l1_size * 8, q->reft_offset,
                                     q->reft_size * 8))
        return hdr_err(herr, EINVAL, path, "L1 table overlaps the refcount table");
    if (q->nb_snapshots && ((q->snapshots_offset & mask) || q->snapshots_offset == 0))
        return hdr_err(herr, EINVAL, path, "snapshot table offset %#" PRIx64 " invalid",
                       q->snapshots_offset);
    if (q->nb_snapshots && q->writable)
        return hdr_err(herr, ENOTSUP, path, "images with internal snapshots open read-only");
    return 0;
}

static int check_backing_name(struct qcow2 *q, const uint8_t *c0, struct herd_err *herr,
                              const char *path)
{
    if (q->backing_offset == 0)
        return 0;
    if (q->backing_len == 0 || q->backing_len > QCOW2_MAX_BACKING_NAME)
        return hdr_err(herr, EINVAL, path, "backing file name length %u invalid", q->backing_len);
    if (q->backing_offset < q->header_length || q->backing_offset > q->cs ||
        q->cs - q->backing_offset < q->backing_len)
        return hdr_err(herr, EINVAL, path, "backing file name outside the header cluster");
    if (memchr(c0 + q->backing_offset, 0, q->backing_len))
        return hdr_err(herr, EINVAL, path, "backing file name contains a NUL byte");
    q->bd->backing_name = strndup((const char *)c0 + q->backing_offset, q->backing_len);
    return q->bd->backing_name ? 0 : -ENOMEM;
}

static int keep_ext(struct qcow2 *q, uint32_t type, const uint8_t *data, uint32_t len)
{
    struct qcow2_ext *n = realloc(q->exts, (q->n_exts + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    q->exts = n;
    struct qcow2_ext *e = &n[q->n_exts];
    e->type = type;
    e->len = len;
    e->data = malloc(len ? len : 1);
    if (!e->data)
        return -ENOMEM;
    memcpy(e->data, data, len);
    q->n_exts++;
    return 0;
}

static int parse_one_ext(struct qcow2 *q, uint32_t type, const uint8_t *d, uint32_t len,
                         struct herd_err *herr, const char *path)
{
    if (type == QCOW2_EXT_BACKING_FMT) {
        if (len == 0 || len > 63 || memchr(d, 0, len))
            return hdr_err(herr, EINVAL, path, "backing format extension invalid");
        free(q->bd->backing_fmt);
        q->bd->backing_fmt = strndup((const char *)d, len);
        return q->bd->backing_fmt ? 0 : -ENOMEM;
    }
    if (type == QCOW2_EXT_FEATURES && !q->feature_names) {
        q->feature_names = malloc(len ? len : 1);
        if (!q->feature_names)
            return -ENOMEM;
        memcpy(q->feature_names, d, len);
        q->feature_len = len;
    }
    if (type == QCOW2_EXT_DATA_FILE)
        return hdr_err(herr, ENOTSUP, path, "external data file extension is not supported");
    /* Unknown extensions are kept verbatim so a header rewrite preserves them. */
    return keep_ext(q, type, d, len);
}

static int parse_exts(struct qcow2 *q, const uint8_t *c0, struct herd_err *herr,
                      const char *path)
{
    uint64_t pos = q->header_length;
    uint64_t end = q->backing_offset ? q->backing_offset : q->cs;
    if (q->version == 2 && !q->backing_offset)
        end = q->cs;
    while (pos + 8 <= end) {
        uint32_t type = bd_be32(c0 + pos);
        uint32_t len = bd_be32(c0 + pos + 4);
        pos += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (len > end - pos)
            return hdr_err(herr, EINVAL, path, "header extension %#x overruns the header", type);
        int r = parse_one_ext(q, type, c0 + pos, len, herr, path);
        if (r < 0)
            return r;
        pos += (len + 7ull) & ~7ull;
    }
    return 0; /* v2 images may simply stop */
}

static int load_table(struct qcow2 *q, uint64_t off, uint64_t entries, uint64_t **out)
{
    uint64_t *t = calloc(entries ? entries : 1, 8);
    if (!t)
        return -ENOMEM;
    int r = entries ? bd_pread_full(q->fd, t, entries * 8, off) : 0;
    if (r < 0) {
        free(t);
        return r;
    }
    for (uint64_t i = 0; i < entries; i++)
        t[i] = bd_be64(&t[i]);
    *out = t;
    return 0;
}

static int check_reftable(struct qcow2 *q, struct herd_err *herr, const char *path)
{
    for (uint64_t i = 0; i < q->reft_size; i++) {
        uint64_t e = q->reft[i];
        if (e & QCOW2_REFT_RESERVED)
            return hdr_err(herr, EINVAL, path, "refcount table entry %" PRIu64 " has reserved bits",
                           i);
        /* an unaligned one is found where it is used (qcow2_refcount.c),
         * as qemu does: the image opens, an allocation there fails */
        if (e > QCOW2_OFFSET_MASK)
            return hdr_err(herr, EINVAL, path, "refblock offset %#" PRIx64 " invalid", e);
    }
    return 0;
}

static int clear_autoclear(struct qcow2 *q)
{
    /* Spec: a writer that does not understand an autoclear bit must clear it. */
    if (!q->writable || q->version < 3 || q->autoclear == 0)
        return 0;
    uint8_t b[8];
    bd_put_be64(b, 0);
    int r = bd_pwrite_full(q->fd, b, 8, 88);
    if (r == 0)
        q->autoclear = 0;
    return r;
}

int qcow2_header_read(struct qcow2 *q, const struct blockdev_open_opts *opts)
{
    const char *path = q->bd->filename;
    struct herd_err *herr = opts->err;
    uint64_t fsize;
    int r = bd_file_size(q->fd, &fsize);
    if (r < 0)
        return r;
    uint8_t h[112] = {0};
    if (fsize < 72)
        return hdr_err(herr, EINVAL, path, "file too small for a qcow2 header");
    r = bd_pread_full(q->fd, h, sizeof(h), 0);
    if (r < 0)
        return r;
    if ((r = parse_fixed(q, h, fsize, herr, path)) < 0 || (r = check_incompat(q, herr, path, opts->repair)) < 0 ||
        (r = check_compression(q, herr, path)) < 0 || (r = check_tables(q, herr, path)) < 0)
        return r;
    uint8_t *c0 = malloc(q->cs);
    if (!c0)
        return -ENOMEM;
    r = bd_pread_full(q->fd, c0, q->cs, 0);
    if (r == 0)
        r = check_backing_name(q, c0, herr, path);
    if (r == 0)
        r = parse_exts(q, c0, herr, path);
    free(c0);
    if (r == 0 && (q->incompat & ~KNOWN_INCOMPAT))
        r = unsupported_features(q, herr, q->incompat & ~KNOWN_INCOMPAT);
    if (r == 0)
        r = load_table(q, q->l1_offset, q->l1_size, &q->l1);
    if (r == 0)
        r = load_table(q, q->reft_offset, q->reft_size, &q->reft);
    if (r == 0)
        r = check_reftable(q, herr, path);
    if (r == 0)
        r = clear_autoclear(q);
    return r;
}

void qcow2_header_free(struct qcow2 *q)
{
    for (unsigned i = 0; i < q->n_exts; i++)
        free(q->exts[i].data);
    free(q->exts);
    free(q->feature_names);
    free(q->l1);
    free(q->reft);
}

static size_t put_ext(uint8_t *c0, size_t pos, uint32_t type, const void *d, uint32_t len)
{
    bd_put_be32(c0 + pos, type);
    bd_put_be32(c0 + pos + 4, len);
    memcpy(c0 + pos + 8, d, len);
    return pos + 8 + ((len + 7u) & ~7u);
}

/* Rebuilds header cluster 0 with a new backing name/format; other extensions
 * are kept in their order. */
int qcow2_header_write_backing(struct qcow2 *q, const char *name, const char *fmt)
{
    size_t nlen = name ? strlen(name) : 0, flen = fmt ? strlen(fmt) : 0;
    if (nlen > QCOW2_MAX_BACKING_NAME || flen > 63 || q->version < 3)
        return -EINVAL;
    uint8_t *c0 = calloc(1, q->cs);
    if (!c0)
        return -ENOMEM;
    int r = bd_pread_full(q->fd, c0, q->header_length, 0);
    size_t need = q->header_length + 8 + (nlen ? 8 + ((flen + 7) & ~7u) : 0) + nlen;
    for (unsigned i = 0; i < q->n_exts; i++)
        need += 8 + ((q->exts[i].len + 7u) & ~7u);
    if (r == 0 && need > q->cs)
        r = -ENOSPC;
    if (r < 0) {
        free(c0);
        return r;
    }
    size_t pos = q->header_length;
    if (nlen && flen)
        pos = put_ext(c0, pos, QCOW2_EXT_BACKING_FMT, fmt, (uint32_t)flen);
    for (unsigned i = 0; i < q->n_exts; i++)
        pos = put_ext(c0, pos, q->exts[i].type, q->exts[i].data, q->exts[i].len);
    pos += 8; /* end marker (zeros) */
    bd_put_be64(c0 + 8, nlen ? pos : 0);
    bd_put_be32(c0 + 16, (uint32_t)nlen);
    memcpy(c0 + pos, name ? name : "", nlen);
    r = bd_pwrite_full(q->fd, c0, q->cs, 0);
    if (r == 0)
        r = bd_fdatasync(q->fd);
    free(c0);
    if (r < 0)
        return r;
    q->backing_offset = nlen ? pos : 0;
    q->backing_len = (uint32_t)nlen;
    free(q->bd->backing_name);
    free(q->bd->backing_fmt);
    q->bd->backing_name = nlen ? strdup(name) : NULL;
    q->bd->backing_fmt = nlen && flen ? strdup(fmt) : NULL;
    return 0;
}

int qcow2_mark_corrupt(struct qcow2 *q, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* qemu's words: tools compare them (the file is the caller's to name) */
    fprintf(stderr, "qcow2: Marking image as corrupt: %s; further corruption events "
                    "will be suppressed\n", msg);
    if (q->writable && q->version >= 3 && !(q->incompat & QCOW2_INCOMPAT_CORRUPT)) {
        uint8_t b[8];
        q->incompat |= QCOW2_INCOMPAT_CORRUPT;
        bd_put_be64(b, q->incompat);
        if (bd_pwrite_full(q->fd, b, 8, 72) == 0)
            bd_fdatasync(q->fd);
    }
    q->writable = false;
    q->bd->read_only = true;
    return -EIO;
}
