/*
 * herd-img measure: qemu-img measure. The size a new image would need, for
 * -O qcow2 (metadata of a fully allocated image plus the source's allocated
 * clusters, as qcow2_measure counts them) and -O raw (the virtual size).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

static uint64_t rup(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static uint64_t divup(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a;
}

/* Refcount table and blocks for `clusters` clusters, themselves counted
 * (the fixed point qemu's qcow2_refcount_metadata_size finds). */
static uint64_t refcount_meta(uint64_t clusters, uint64_t cs, unsigned rbits)
{
    uint64_t per_table = cs / 8, per_block = cs * 8 / rbits, table = 0, blocks = 0, n = 0, last;
    do {
        last = n;
        blocks = divup(clusters + table + blocks, per_block);
        table = divup(blocks, per_table);
        n = clusters + blocks + table;
    } while (n != last);
    return (blocks + table) * cs;
}

static uint64_t qcow2_full_size(uint64_t size, uint64_t cs, unsigned rbits)
{
    uint64_t aligned = rup(size, cs), meta = cs;
    uint64_t nl2e = rup(aligned / cs, cs / 8);
    meta += nl2e * 8;
    uint64_t nl1e = rup(nl2e * 8 / cs, cs / 8);
    meta += nl1e * 8;
    meta += refcount_meta((meta + aligned) / cs, cs, rbits);
    return meta + aligned;
}

struct mopts {
    uint64_t cs;
    unsigned rbits;
    bool prealloc_full;
};

static int parse_mopts(char *s, struct mopts *m)
{
    for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        uint64_t n;
        if (!v) {
            img_error("Invalid parameter '%s'", kv);
            return -1;
        }
        *v++ = 0;
        if (!strcmp(kv, "cluster_size")) {
            if (img_parse_size(v, &n) < 0 || n < 512 || n > (2u << 20) || (n & (n - 1))) {
                img_error("Cluster size must be a power of two between 512 and 2048k");
                return -1;
            }
            m->cs = n;
        } else if (!strcmp(kv, "refcount_bits")) {
            if (img_parse_size(v, &n) < 0 || n == 0 || n > 64 || (n & (n - 1))) {
                img_error("Refcount width must be a power of two and may not exceed 64 bits");
                return -1;
            }
            m->rbits = (unsigned)n;
        } else if (!strcmp(kv, "preallocation")) {
            if (!strcmp(v, "full") || !strcmp(v, "falloc"))
                m->prealloc_full = true;
            else if (strcmp(v, "off") && strcmp(v, "metadata")) {
                img_error("Invalid parameter '%s'", v);
                return -1;
            }
        } else if (strcmp(kv, "compat") && strcmp(kv, "lazy_refcounts") &&
                   strcmp(kv, "compression_type") && strcmp(kv, "extended_l2") &&
                   strcmp(kv, "size")) {
            img_error("Invalid parameter '%s'", kv);
            return -1;
        }
    }
    return 0;
}

int img_measure(int argc, char **argv)
{
    const char *fmt = NULL, *ofmt = "raw", *size_arg = NULL;
    char *oopts = NULL;
    bool json = false, share = false;
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"size", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'j'},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hf:O:o:l:U", lopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O': ofmt = optarg; break;
        case 'o': oopts = optarg; break;
        case 's': size_arg = optarg; break;
        case 'U': share = true; break;
        case 'l': img_error("snapshots are not supported"); return 1;
        case 'j':
            if (!strcmp(optarg, "json"))
                json = true;
            else if (strcmp(optarg, "human")) {
                img_error("--output must be used with human or json as argument.");
                return 1;
            }
            break;
        case 'h':
            printf("usage: herd-img measure [--output=human|json] [-O FMT] [-o OPTS] "
                   "[--size N | [-f FMT] FILE]\n");
            return 0;
        default: return 1;
        }
    }
    if (fmt && optind >= argc) {
        img_error("--image-opts, -f, and -l require a filename argument.");
        return 1;
    }
    if (optind < argc - 1) {
        img_error("At most one filename argument is allowed.");
        return 1;
    }
    const char *file = optind < argc ? argv[optind] : NULL;
    if (file && size_arg) {
        img_error("--size N cannot be used together with a filename.");
        return 1;
    }
    if (!file && !size_arg) {
        img_error("Either --size N or one filename must be specified.");
        return 1;
    }
    uint64_t size = 0;
    if (size_arg && img_parse_size(size_arg, &size) < 0) {
        img_error("Invalid image size specified. You may use k, M, G, T, P or E suffixes for");
        img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        return 1;
    }
    bool qcow2 = !strcmp(ofmt, "qcow2");
    if (!qcow2 && strcmp(ofmt, "raw")) {
        img_error("Block driver '%s' does not support size measurement", ofmt);
        return 1;
    }
    struct mopts m = {65536, 16, false};
    if (oopts) {
        char *dup = strdup(oopts);
        int pr = dup ? parse_mopts(dup, &m) : -1;
        free(dup);
        if (pr < 0)
            return 1;
    }
    struct blockdev *src = NULL;
    bool bitmaps = false;
    uint64_t required = 0, full;
    if (file) {
        src = img_open(file, fmt, false, share, false);
        if (!src)
            return 1;
        size = blockdev_size(src);
        bitmaps = !strcmp(blockdev_format(src), "qcow2");
    }
    if (qcow2) {
        uint64_t vsize = rup(size, m.cs);
        if (divup(vsize / m.cs, m.cs / 8) * 8 > (32u << 20)) {
            img_error("The image size is too large (try using a larger cluster size)");
            if (src)
                blockdev_close(src);
            return 1;
        }
        for (uint64_t off = 0; src && off < size;) {
            struct blockdev_extent e;
            int r = blockdev_map_extent(src, off, size - off, &e);
            if (r < 0) {
                img_error("Unable to get block status: %s", strerror(-r));
                blockdev_close(src);
                return 1;
            }
            uint64_t pnum = e.length;
            if (!e.zero && e.data && e.present) {
                pnum = rup(off + pnum, m.cs) - off;
                required += off % m.cs + pnum;
            }
            off += pnum;
        }
        if (m.prealloc_full)
            required = vsize;
        full = qcow2_full_size(vsize, m.cs, m.rbits);
        required = full - vsize + required;
    } else {
        required = full = src ? size : rup(size, 512);
        bitmaps = false;
    }
    if (src)
        blockdev_close(src);
    if (json) {
        printf("{\n");
        if (bitmaps)
            printf("    \"bitmaps\": 0,\n");
        printf("    \"required\": %llu,\n    \"fully-allocated\": %llu\n}\n",
               (unsigned long long)required, (unsigned long long)full);
    } else {
        printf("required size: %llu\nfully allocated size: %llu\n", (unsigned long long)required,
               (unsigned long long)full);
        if (bitmaps)
            printf("bitmaps size: 0\n");
    }
    return 0;
}
