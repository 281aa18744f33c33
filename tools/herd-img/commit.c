/*
 * herd-img commit (merge an overlay into its parent), rebase (change the
 * backing file, copying what differs unless -u). convert is in convert.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "herd/qcow2.h"
#include "img.h"

#define CHUNK (1u << 20)

static bool all_zero(const uint8_t *b, size_t n)
{
    return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

/* Copies the allocated extents of `src`'s top layer (or of the whole chain
 * with whole_chain) into dst. Zero extents become write-zeroes that may
 * unmap (or are skipped with sparse). */
static int copy_extents(struct blockdev *src, struct blockdev *dst, bool whole_chain,
                        bool sparse)
{
    uint64_t size = img_min(blockdev_size(src), blockdev_size(dst)), off = 0;
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return -ENOMEM;
    int r = 0;
    while (r == 0 && off < size) {
        struct blockdev_extent e;
        struct blockdev_status st;
        uint64_t len;
        bool zero, alloc;
        if (whole_chain) {
            r = blockdev_map_extent(src, off, size - off, &e);
            len = e.length, zero = e.zero && !e.data, alloc = true;
        } else {
            r = blockdev_block_status(src, off, size - off, &st);
            len = st.len, zero = st.flags & BLOCKDEV_ST_ZERO,
            alloc = st.flags & BLOCKDEV_ST_ALLOCATED;
        }
        if (r < 0)
            break;
        /* As qemu-img commit (a mirror job with unmap): zeroes free the
         * parent's clusters, leaving zero clusters without a host offset. */
        if (alloc && zero && !sparse)
            r = blockdev_write_zeroes(dst, off, len, BLOCKDEV_ZERO_MAY_UNMAP);
        for (uint64_t done = 0; r == 0 && alloc && !zero && done < len;) {
            uint64_t n = img_min(len - done, CHUNK);
            r = blockdev_pread(src, buf, n, off + done);
            if (r == 0 && !(sparse && all_zero(buf, n)))
                r = blockdev_pwrite(dst, buf, n, off + done);
            done += n;
        }
        off += len;
    }
    free(buf);
    return r < 0 ? r : blockdev_flush(dst);
}

/* Copies what the images above chain depth `depth` decide into base. */
static int commit_above(struct blockdev *top, struct blockdev *base, unsigned depth)
{
    uint64_t size = img_min(blockdev_size(top), blockdev_size(base)), off = 0;
    uint8_t *buf = malloc(CHUNK);
    int r = buf ? 0 : -ENOMEM;
    while (r == 0 && off < size) {
        struct blockdev_extent e;
        if ((r = blockdev_map_extent(top, off, img_min(size - off, CHUNK), &e)) < 0)
            break;
        if (e.present && e.depth < depth) {
            if (e.zero && !e.data)
                r = blockdev_write_zeroes(base, off, e.length, BLOCKDEV_ZERO_MAY_UNMAP);
            else if ((r = blockdev_pread(top, buf, e.length, off)) == 0)
                r = blockdev_pwrite(base, buf, e.length, off);
        }
        off += e.length;
    }
    free(buf);
    return r < 0 ? r : blockdev_flush(base);
}

/* Whether BASE names layer b, the backing file of parent: as qemu, a
 * relative BASE is taken from parent's directory (backing names are
 * relative to the image naming them), and both sides are canonicalized. */
static bool names_layer(struct blockdev *parent, struct blockdev *b, const char *base)
{
    char *cand = img_backing_path(blockdev_filename(parent), base);
    char *want = cand ? realpath(cand, NULL) : NULL;
    char *have = realpath(blockdev_filename(b), NULL);
    bool same = want && have && !strcmp(want, have);
    free(cand);
    free(want);
    free(have);
    return same;
}

/* commit -b BASE where BASE is deeper than the immediate backing file: the
 * top image keeps its content (qemu-img: -b implies -d). */
static int commit_to_base(const char *path, const char *fmt, const char *base, bool quiet)
{
    struct blockdev *top = img_open(path, fmt, false, true, false);
    if (!top)
        return 1;
    unsigned depth = 0;
    struct blockdev *b = top, *parent = top;
    while ((b = blockdev_backing(parent)) != NULL) {
        depth++;
        if (names_layer(parent, b, base))
            break;
        parent = b;
    }
    bool found = b && depth > 0;
    if (!found) {
        img_error("Did not find '%s' in the backing chain of '%s'", base, path);
        blockdev_close(top);
        return 1;
    }
    int r = 0;
    if (depth == 1) {
        blockdev_close(top);
        return -1; /* the immediate backing file: the plain commit */
    }
    struct blockdev *dst = img_open(blockdev_filename(b), blockdev_format(b), true, false, true);
    r = dst ? commit_above(top, dst, depth) : -EINVAL;
    if (dst && blockdev_close(dst) < 0 && r == 0)
        r = -EIO;
    blockdev_close(top);
    if (r < 0) {
        if (r != -EINVAL)
            img_error("Commit failed: %s", strerror(-r));
        return 1;
    }
    if (!quiet)
        printf("Image committed.\n");
    return 0;
}

int img_commit(int argc, char **argv)
{
    const char *fmt = NULL, *base = NULL;
    bool keep = false, quiet = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:dqpt:b:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'd': keep = true; break;
        case 'q': quiet = true; break;
        case 'p': case 't': break;
        case 'b': base = optarg; keep = true; break; /* -b implies -d (qemu-img) */
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    const char *path = argv[optind];
    if (base) {
        int br = commit_to_base(path, fmt, base, quiet);
        if (br >= 0)
            return br;
    }
    struct blockdev *top = img_open(path, fmt, false, false, true);
    if (!top)
        return 1;
    const char *bname = blockdev_backing_name(top), *bfmt = blockdev_backing_format(top);
    if (!bname[0] || !bfmt[0]) {
        img_error("Image does not have a backing file with a known format");
        blockdev_close(top);
        return 1;
    }
    char *ppath = img_backing_path(blockdev_filename(top), bname);
    struct blockdev *parent = ppath ? img_open(ppath, bfmt, true, false, false) : NULL;
    free(ppath);
    int r = parent ? copy_extents(top, parent, false, false) : -EINVAL;
    if (parent && blockdev_size(top) > blockdev_size(parent))
        img_error("warning: data beyond the parent's size was not committed");
    if (parent)
        blockdev_close(parent);
    blockdev_close(top);
    if (r == 0 && !keep) {
        top = img_open(path, fmt, true, false, true);
        r = top ? qcow2_make_empty(top) : -EINVAL;
        if (top)
            blockdev_close(top);
    }
    if (r < 0) {
        img_error("Commit failed: %s", strerror(-r));
        return 1;
    }
    if (!quiet)
        printf("Image committed.\n");
    return 0;
}

/* Makes [off, off + len) of bd read as data (len bytes), or as zeros written
 * as such (zero clusters where whole), as qemu-img rebase does past the end of
 * the old backing file. */
static int rebase_put(struct blockdev *bd, const uint8_t *data, uint64_t len, uint64_t off,
                      bool zeros)
{
    return zeros ? blockdev_write_zeroes(bd, off, len, 0) : blockdev_pwrite(bd, data, len, off);
}

/* Safe rebase: where the overlay does not decide the content, it must read
 * the same through the new backing file as through the old one. Compared and
 * copied cluster by cluster, so that a cluster whose bytes already agree stays
 * unallocated (shared with the backing file), as qemu-img rebase leaves it.
 * Past the old backing file's end (or with none) the old content is zeros,
 * written as zeros (qemu-img rebase: write-zeroes there, data elsewhere). */
static int rebase_copy(struct blockdev *bd, struct blockdev *nb)
{
    uint64_t size = blockdev_size(bd), off = 0, nsize = nb ? blockdev_size(nb) : 0;
    struct blockdev *ob = blockdev_backing(bd);
    uint64_t osize = ob ? blockdev_size(ob) : 0;
    struct qcow2_info qi;
    uint64_t cs = qcow2_get_info(bd, &qi) == 0 ? qi.cluster_size : 65536;
    uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
    int r = a && b ? 0 : -ENOMEM;
    while (r == 0 && off < size) {
        struct blockdev_status st;
        r = blockdev_block_status(bd, off, img_min(size - off, CHUNK), &st);
        if (r < 0)
            break;
        uint64_t n = st.len;
        if (st.flags & BLOCKDEV_ST_ALLOCATED) {
            off += n;
            continue;
        }
        if (off < osize)
            n = img_min(n, osize - off);
        bool zeros = off >= osize;
        uint64_t in = off < nsize ? img_min(n, nsize - off) : 0;
        r = blockdev_pread(bd, a, n, off);
        memset(b + in, 0, n - in);
        if (r == 0 && in)
            r = blockdev_pread(nb, b, in, off);
        /* [from, p): a run of consecutive clusters that differ. */
        uint64_t from = 0, p = 0;
        while (r == 0 && p < n) {
            uint64_t end = img_min((off + p) / cs * cs + cs - off, n);
            bool differ = memcmp(a + p, b + p, end - p) != 0;
            if (!differ && from < p)
                r = rebase_put(bd, a + from, p - from, off + from, zeros);
            if (!differ)
                from = end;
            p = end;
        }
        if (r == 0 && from < n)
            r = rebase_put(bd, a + from, n - from, off + from, zeros);
        off += n;
    }
    free(a);
    free(b);
    return r;
}

int img_rebase(int argc, char **argv)
{
    const char *fmt = NULL, *nb = NULL, *nfmt = NULL;
    bool unsafe = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:b:F:uqpt:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'b': nb = optarg; break;
        case 'F': nfmt = optarg; break;
        case 'u': unsafe = true; break;
        case 'q': case 'p': case 't': break;
        default: return 1;
        }
    }
    if (optind != argc - 1 || !nb) {
        img_error("Expecting one image file name and -b NEW_BACKING");
        return 1;
    }
    if (nb[0] && !nfmt) {
        img_error("Could not change the backing file to '%s': backing format must be "
                  "specified", nb); /* qemu-img's words; herd never probes either */
        return 1;
    }
    struct blockdev *bd = img_open(argv[optind], fmt, true, false, unsafe);
    if (!bd)
        return 1;
    int r = 0;
    if (!unsafe) {
        struct blockdev *newb = NULL;
        if (nb[0]) {
            char *p = img_backing_path(blockdev_filename(bd), nb);
            newb = p ? img_open(p, nfmt, false, false, false) : NULL;
            free(p);
            if (!newb)
                r = -EINVAL;
        }
        if (r == 0)
            r = rebase_copy(bd, newb);
        if (newb)
            blockdev_close(newb);
    }
    if (r == 0)
        r = qcow2_set_backing(bd, nb[0] ? nb : NULL, nb[0] ? nfmt : NULL);
    int cr = blockdev_close(bd);
    if (r == 0)
        r = cr;
    if (r < 0) {
        img_error("Could not change the backing file: %s", strerror(-r));
        return 1;
    }
    return 0;
}
