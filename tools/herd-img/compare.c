/*
 * herd-img compare: qemu-img compare. Content is compared in 512-byte
 * sectors (the first differing sector is reported); the part of the larger
 * image past the smaller one's end must read as zeros. Exit 0 identical,
 * 1 different, 2 error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

#define CMP_CHUNK (1u << 20)
#define SECTOR 512u

/* Index of the first 512-byte sector that differs (or is non-zero when b is NULL). */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t n)
{
    for (uint64_t i = 0; i < n; i += SECTOR) {
        uint64_t k = img_min(SECTOR, n - i);
        if (b ? memcmp(a + i, b + i, k) != 0 : !(a[i] == 0 && !memcmp(a + i, a + i + 1, k - 1)))
            return (int64_t)i;
    }
    return -1;
}

/* The status qemu-img compare -s compares, EOF (the extent reaches the
 * end of the image) included. */
static unsigned ext_status(const struct blockdev_extent *e, uint64_t size)
{
    return (e->present ? 4u : 0) | (e->zero ? 2u : 0) | (e->data ? 1u : 0) |
           (e->offset_valid ? 8u : 0) | (e->start + e->length >= size ? 16u : 0);
}

/* 1 with qemu-img's line when d (first_diff's answer for the chunk at off)
 * found a difference, else 0. */
static int mismatch(int64_t d, uint64_t off, bool quiet)
{
    if (d < 0)
        return 0;
    if (!quiet)
        printf("Content mismatch at offset %llu!\n", (unsigned long long)(off + (uint64_t)d));
    return 1;
}

int img_compare(int argc, char **argv)
{
    const char *fmt1 = NULL, *fmt2 = NULL;
    bool quiet = false, strict = false, share = false;
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hf:F:T:pqsU", lopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt1 = optarg; break;
        case 'F': fmt2 = optarg; break;
        case 'q': quiet = true; break;
        case 's': strict = true; break;
        case 'U': share = true; break;
        case 'T': case 'p': break;
        case 'h': printf("usage: herd-img compare [-f FMT] [-F FMT] [-q] [-s] [-U] FILE1 FILE2\n"); return 0;
        default: return 1;
        }
    }
    if (optind != argc - 2) {
        img_error("Expecting two image file names");
        fprintf(stderr, "Try 'herd-img --help' for more information\n");
        return 1;
    }
    const char *f1 = argv[optind], *f2 = argv[optind + 1];
    struct blockdev *b1 = img_open(f1, fmt1, false, share, false);
    if (!b1)
        return 2;
    struct blockdev *b2 = img_open(f2, fmt2, false, share, false);
    if (!b2) {
        blockdev_close(b1);
        return 2;
    }
    uint64_t s1 = blockdev_size(b1), s2 = blockdev_size(b2), common = img_min(s1, s2);
    uint8_t *x = malloc(CMP_CHUNK), *y = malloc(CMP_CHUNK);
    int ret = 0, r = x && y ? 0 : -ENOMEM;
    if (strict && s1 != s2) {
        if (!quiet)
            printf("Strict mode: Image size mismatch!\n");
        ret = 1;
        goto out;
    }
    for (uint64_t off = 0; r == 0 && off < common;) {
        struct blockdev_extent e1, e2;
        if ((r = blockdev_map_extent(b1, off, common - off, &e1)) < 0 ||
            (r = blockdev_map_extent(b2, off, common - off, &e2)) < 0)
            break;
        uint64_t n = img_min(img_min(e1.length, e2.length), CMP_CHUNK);
        if (strict && ext_status(&e1, s1) != ext_status(&e2, s2)) {
            if (!quiet)
                printf("Strict mode: Offset %llu block status mismatch!\n",
                       (unsigned long long)off);
            ret = 1;
            goto out;
        }
        if (!(e1.zero && !e1.data && e2.zero && !e2.data)) {
            if ((r = blockdev_pread(b1, x, n, off)) < 0 || (r = blockdev_pread(b2, y, n, off)) < 0)
                break;
            if ((ret = mismatch(first_diff(x, y, n), off, quiet)))
                goto out;
        }
        off += n;
    }
    if (r == 0 && s1 != s2) {
        struct blockdev *big = s1 > s2 ? b1 : b2;
        uint64_t total = s1 > s2 ? s1 : s2;
        if (!quiet)
            printf("Warning: Image size mismatch!\n");
        for (uint64_t off = common; r == 0 && off < total;) {
            struct blockdev_extent e;
            if ((r = blockdev_map_extent(big, off, img_min(total - off, CMP_CHUNK), &e)) < 0)
                break;
            if (!(e.zero && !e.data)) {
                if ((r = blockdev_pread(big, x, e.length, off)) < 0)
                    break;
                if ((ret = mismatch(first_diff(x, NULL, e.length), off, quiet)))
                    goto out;
            }
            off += e.length;
        }
    }
    if (r < 0) {
        img_error("Error while reading offset: %s", strerror(-r));
        ret = 2;
    } else if (!quiet) {
        printf("Images are identical.\n");
    }
out:
    free(x);
    free(y);
    blockdev_close(b1);
    blockdev_close(b2);
    return ret;
}
