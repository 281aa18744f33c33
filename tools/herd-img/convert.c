/*
 * herd-img convert: qemu-img convert of one source (its whole chain) into a
 * new (or with -n an existing) raw or qcow2 image. -c compresses each
 * non-zero cluster (the target's compression_type), -S N leaves zero runs of
 * at least N bytes unwritten (0: write everything), -B/-F give the target a
 * backing file and write only the clusters whose content differs from it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "herd/qcow2.h"
#include "img.h"

#define SECTOR 512u

struct conv {
    struct blockdev *src, *dst, *base; /* base: the -B image, opened read-only */
    uint64_t size, gran, sparse;
    bool compress, fresh;
    uint8_t *buf, *bbuf;
};

static bool is_zero(const uint8_t *b, uint64_t n)
{
    return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

/* Does the target read [off, off+n) as zeros before we write anything? */
static int target_reads_zero(struct conv *c, uint64_t off, uint64_t n, bool *zero)
{
    *zero = c->fresh;
    if (!c->fresh || !c->base || off >= blockdev_size(c->base))
        return 0;
    struct blockdev_extent e;
    int r = blockdev_map_extent(c->base, off, img_min(n, blockdev_size(c->base) - off), &e);
    if (r < 0)
        return r;
    *zero = e.zero && !e.data && e.length >= n;
    return 0;
}

static int put_zeroes(struct conv *c, uint64_t off, uint64_t n)
{
    bool z;
    int r = target_reads_zero(c, off, n, &z);
    if (r < 0 || z)
        return r;
    return blockdev_write_zeroes(c->dst, off, n, BLOCKDEV_ZERO_MAY_UNMAP);
}

/* Plain data: zero runs of at least c->sparse bytes (whole sectors) skipped. */
static int put_data(struct conv *c, const uint8_t *b, uint64_t off, uint64_t n)
{
    if (!c->sparse)
        return blockdev_pwrite(c->dst, b, n, off);
    uint64_t p = 0;
    while (p < n) {
        uint64_t q = p;
        while (q < n && is_zero(b + q, img_min(SECTOR, n - q)))
            q += img_min(SECTOR, n - q);
        if (q - p >= c->sparse || (q == n && p == 0)) {
            int r = put_zeroes(c, off + p, q - p);
            if (r < 0)
                return r;
            p = q;
            continue;
        }
        uint64_t d = q; /* data from p: extend past short zero runs */
        while (d < n) {
            uint64_t z = d;
            while (z < n && is_zero(b + z, img_min(SECTOR, n - z)))
                z += img_min(SECTOR, n - z);
            if (z > d && (z - d >= c->sparse || z == n))
                break;
            d = z > d ? z : d + img_min(SECTOR, n - d);
        }
        int r = blockdev_pwrite(c->dst, b + p, d - p, off + p);
        if (r < 0)
            return r;
        p = d;
    }
    return 0;
}

static int convert_unit(struct conv *c, uint64_t off, uint64_t n)
{
    int r = blockdev_pread(c->src, c->buf, n, off);
    if (r < 0)
        return r;
    if (c->base) {
        uint64_t bsz = blockdev_size(c->base), in = off < bsz ? img_min(n, bsz - off) : 0;
        memset(c->bbuf + in, 0, n - in);
        if (in && (r = blockdev_pread(c->base, c->bbuf, in, off)) < 0)
            return r;
        if (!memcmp(c->buf, c->bbuf, n))
            return 0; /* the backing file already reads so */
    }
    if (c->compress) {
        if (is_zero(c->buf, n))
            return put_zeroes(c, off, n);
        memset(c->buf + n, 0, c->gran - n);
        return qcow2_write_compressed(c->dst, off, c->buf);
    }
    return put_data(c, c->buf, off, n);
}

static int convert_all(struct conv *c)
{
    for (uint64_t off = 0; off < c->size;) {
        uint64_t n = img_min(c->gran - off % c->gran, c->size - off);
        struct blockdev_extent e;
        int r = blockdev_map_extent(c->src, off, c->size - off, &e);
        if (r < 0)
            return r;
        if (c->sparse && e.zero && !e.data && e.length >= n) {
            /* A run of whole units that reads as zeros. */
            uint64_t len = e.length;
            if (off + len < c->size)
                len = (off + len) / c->gran * c->gran - off;
            if (len < n)
                len = n;
            for (uint64_t d = 0; d < len; d += c->gran - (off + d) % c->gran)
                if ((r = put_zeroes(c, off + d, img_min(c->gran - (off + d) % c->gran,
                                                      len - d))) < 0)
                    return r;
            off += len;
            continue;
        }
        if ((r = convert_unit(c, off, n)) < 0) {
            img_error("error while writing at byte %llu: %s", (unsigned long long)off,
                      strerror(-r));
            return -EALREADY;
        }
        off += n;
    }
    return blockdev_flush(c->dst);
}

int img_convert(int argc, char **argv)
{
    const char *fmt = NULL, *ofmt = "raw", *base = NULL, *bfmt = NULL;
    char *oopts = NULL;
    bool compress = false, no_create = false, quiet = false, share = false;
    uint64_t sparse = 4096;
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hf:O:o:B:F:cnS:qpt:T:UW", lopts, NULL)) != -1) {
        switch (ch) {
        case 'f': fmt = optarg; break;
        case 'O': ofmt = optarg; break;
        case 'o': oopts = optarg; break;
        case 'B': base = optarg; break;
        case 'F': bfmt = optarg; break;
        case 'c': compress = true; break;
        case 'n': no_create = true; break;
        case 'q': quiet = true; break;
        case 'U': share = true; break;
        case 'S':
            if (img_parse_size(optarg, &sparse) < 0) {
                img_error("Invalid buffer size for sparse output specified. You may use k, M, "
                          "G, T, P or E suffixes for");
                img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                return 1;
            }
            if (sparse % SECTOR || sparse > 16777216) {
                img_error("Invalid buffer size for sparse output specified. Valid sizes are "
                          "multiples of 512 up to 16777216. Select 0 to disable sparse "
                          "detection (fully allocates output).");
                return 1;
            }
            break;
        case 'p': case 't': case 'T': case 'W': break;
        case 'h':
            printf("usage: herd-img convert [-c] [-n] [-S SIZE] [-f FMT] [-O FMT] [-o OPTS] "
                   "[-B BACKING -F FMT] SRC DST\n");
            return 0;
        default: return 1;
        }
    }
    (void)quiet;
    if (optind > argc - 2) {
        img_error("Expecting image file name");
        return 1;
    }
    if (optind != argc - 2) {
        img_error("herd-img convert takes one source image");
        return 1;
    }
    if (strcmp(ofmt, "raw") && strcmp(ofmt, "qcow2")) {
        img_error("Unknown file format '%s'", ofmt);
        return 1;
    }
    if (compress && strcmp(ofmt, "qcow2")) {
        img_error("Compression not supported for this file format");
        return 1;
    }
    if (base && strcmp(ofmt, "qcow2")) {
        img_error("Backing file not supported for file format 'raw'");
        return 1;
    }
    if (base && !bfmt && !no_create) {
        img_error("Use of backing file requires explicit backing format");
        return 1;
    }
    if (base && no_create) {
        img_error("-B cannot be used with -n");
        return 1;
    }
    const char *src_path = argv[optind], *dst_path = argv[optind + 1];
    struct conv c = {.compress = compress, .fresh = !no_create, .sparse = sparse};
    c.src = img_open(src_path, fmt, false, share, false);
    if (!c.src)
        return 1;
    c.size = blockdev_size(c.src);
    int r = 0;
    if (!no_create) {
        char size[32];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)c.size);
        char *cargv[16];
        int n = 0;
        cargv[n++] = "create";
        cargv[n++] = "-q";
        cargv[n++] = "-f";
        cargv[n++] = (char *)ofmt;
        if (oopts) {
            cargv[n++] = "-o";
            cargv[n++] = oopts;
        }
        if (base) {
            cargv[n++] = "-b";
            cargv[n++] = (char *)base;
            cargv[n++] = "-F";
            cargv[n++] = (char *)bfmt;
        }
        cargv[n++] = (char *)dst_path;
        cargv[n++] = size;
        cargv[n] = NULL;
        r = img_create(n, cargv) == 0 ? 0 : -EINVAL;
    }
    if (r == 0) {
        c.dst = img_open(dst_path, ofmt, true, false, true);
        r = c.dst ? 0 : -EINVAL;
    }
    if (r == 0 && base) {
        char *bp = img_backing_path(dst_path, base);
        c.base = bp ? img_open(bp, bfmt, false, true, false) : NULL;
        free(bp);
        r = c.base ? 0 : -EINVAL;
    }
    struct qcow2_info qi;
    c.gran = c.dst && qcow2_get_info(c.dst, &qi) == 0 ? qi.cluster_size : 65536;
    if (r == 0 && no_create && blockdev_size(c.dst) < c.size) {
        img_error("error while writing at byte %llu: Input/output error",
                  (unsigned long long)blockdev_size(c.dst));
        r = -EALREADY;
    }
    c.buf = malloc(c.gran);
    c.bbuf = malloc(c.gran);
    if (r == 0 && (!c.buf || !c.bbuf))
        r = -ENOMEM;
    if (r == 0)
        r = convert_all(&c);
    if (c.dst && blockdev_close(c.dst) < 0 && r == 0)
        r = -EIO;
    if (c.base)
        blockdev_close(c.base);
    blockdev_close(c.src);
    free(c.buf);
    free(c.bbuf);
    if (r < 0 && r != -EINVAL && r != -EALREADY)
        img_error("error while converting: %s", strerror(-r));
    return r < 0 ? 1 : 0;
}
