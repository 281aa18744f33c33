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
