/*
 * qcow2 compressed clusters: descriptor decoding and decompression
 * (raw deflate for zlib images, zstd frames when the header says zstd).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2_int.h"

void qcow2_compressed_range(const struct qcow2 *q, uint64_t entry, uint64_t *off,
                            uint64_t *len)
{
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t sectors = ((entry >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
    *off = entry & ((1ull << x) - 1);
    *len = sectors * 512 - (*off & 511);
}

static int inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, -12) != Z_OK)
        return -ENOMEM;
    s.next_in = (Bytef *)in;
    s.avail_in = (uInt)in_len;
    s.next_out = out;
    s.avail_out = (uInt)out_len;
    int zr = inflate(&s, Z_FINISH);
    bool full = s.avail_out == 0;
    inflateEnd(&s);
    /* The stored size is rounded to sectors: trailing bytes are allowed. */
    if ((zr == Z_STREAM_END || zr == Z_BUF_ERROR || zr == Z_OK) && full)
        return 0;
    return -EIO;
}

static int unzstd(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return -ENOMEM;
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {out, out_len, 0};
    int r = -EIO;
    while (ob.pos < ob.size) {
        size_t zr = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(zr))
            break;
        if (ob.pos == ob.size) {
            r = 0;
            break;
        }
        if (zr == 0 || ib.pos == ib.size)
            break; /* frame ended (or input ran out) before the cluster was full */
    }
    ZSTD_freeDCtx(d);
    return r;
}

int qcow2_decompress(int type, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    if (type == QCOW2_COMPRESSION_ZLIB)
        return inflate_raw(in, in_len, out, out_len);
    if (type == QCOW2_COMPRESSION_ZSTD)
        return unzstd(in, in_len, out, out_len);
    return -ENOTSUP;
}

int qcow2_read_compressed(struct qcow2 *q, uint64_t entry, uint8_t *out)
{
    if (q->cbuf_valid && q->cbuf_entry == entry) {
        if (out)
            memcpy(out, q->cbuf, q->cs);
        return 0;
    }
    uint64_t off, len;
    qcow2_compressed_range(q, entry, &off, &len);
    if (off < q->cs || len > 2 * q->cs + 512)
        return qcow2_mark_corrupt(q, "compressed cluster descriptor %#llx invalid",
                                  (unsigned long long)entry);
    uint8_t *in = malloc(len);
    if (!in)
        return -ENOMEM;
    int r = bd_pread_full(q->fd, in, len, off);
    if (r == 0)
        r = qcow2_decompress(q->compression_type, in, len, q->cbuf, q->cs);
    free(in);
    q->cbuf_valid = r == 0;
    q->cbuf_entry = entry;
    if (r == 0 && out)
        memcpy(out, q->cbuf, q->cs);
    return r;
}

/* Compresses one cluster into out (room for out_max bytes); -ENOSPC when it
 * does not fit (qemu then writes the cluster uncompressed). */
static int compress_cluster(int type, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_max, size_t *out_len)
{
    if (type == QCOW2_COMPRESSION_ZSTD) {
        size_t n = ZSTD_compress(out, out_max, in, in_len, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(n))
            return -ENOSPC;
        *out_len = n;
        return 0;
    }
    if (type != QCOW2_COMPRESSION_ZLIB)
        return -ENOTSUP;
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    s.next_in = (Bytef *)in;
    s.avail_in = (uInt)in_len;
    s.next_out = out;
    s.avail_out = (uInt)out_max;
    int zr = deflate(&s, Z_FINISH);
    *out_len = out_max - s.avail_out;
    deflateEnd(&s);
    return zr == Z_STREAM_END ? 0 : -ENOSPC;
}

/* Room for len compressed bytes: packed after the previous compressed
 * cluster's data when it fits in that host cluster (one more reference to
 * it), else at the start of newly allocated clusters. */
static int alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *off)
{
    uint64_t in = q->cfree & (q->cs - 1);
    if (q->cfree && in && in + len <= q->cs) {
        uint64_t c = q->cfree >> q->cluster_bits, rc;
        int r = qcow2_refcount_get(q, c, &rc);
        if (r < 0)
            return r;
        if (rc > 0 && rc < q->refcount_max) {
            if ((r = qcow2_refcount_set(q, c, rc + 1)) < 0)
                return r;
            *off = q->cfree;
            q->cfree += len;
            return 0;
        }
    }
    int r = qcow2_alloc_clusters(q, (len + q->cs - 1) >> q->cluster_bits, off);
    if (r == 0)
        q->cfree = *off + len;
    return r;
}

int qcow2_write_compressed(struct blockdev *bd, uint64_t off, const void *data)
{
    if (bd->drv != &bd_qcow2_driver)
        return -EINVAL;
    struct qcow2 *q = qcow2_of(bd);
    if (!q->writable)
        return -EROFS;
    if ((off & (q->cs - 1)) || off >= bd->size)
        return -EINVAL;
    uint64_t ci = off >> q->cluster_bits, e;
    int r = qcow2_l2_get(q, ci, &e);
    if (r < 0)
        return r;
    enum qcow2_ctype t = qcow2_classify(q, e);
    if (t != QCOW2_C_UNALLOCATED && t != QCOW2_C_ZERO_PLAIN)
        return -EIO;
    uint8_t *out = malloc(q->cs);
    if (!out)
        return -ENOMEM;
    size_t len = 0;
    r = compress_cluster(q->compression_type, data, q->cs, out, q->cs - 1, &len);
    if (r == -ENOSPC) {
        free(out);
        return blockdev_pwrite(bd, data, BD_MIN(q->cs, bd->size - off), off);
    }
    uint64_t host = 0;
    if (r == 0) /* the L2 table before the data, as qemu lays it out */
        r = qcow2_l2_prepare(q, ci);
    if (r == 0)
        r = alloc_bytes(q, len, &host);
    if (r == 0 && qcow2_overlaps_metadata(q, host, len))
        r = qcow2_mark_corrupt(q, "compressed data at %#llx overlaps metadata",
                               (unsigned long long)host);
    if (r == 0)
        r = bd_pwrite_full(q->fd, out, len, host);
    free(out);
    if (r < 0)
        return r;
    q->data_written = true;
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t nsec = ((host + len - 1) >> 9) - (host >> 9);
    q->cbuf_valid = false;
    return qcow2_l2_set(q, ci, QCOW2_OFLAG_COMPRESSED | (nsec << x) | host);
}
