/*
 * herd-img info: image facts in qemu-img's human and JSON forms.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "herd/qcow2.h"
#include "img.h"

struct info_args {
    const char *fmt;
    bool json, chain, force_share;
};

/* "28 KiB", "8 MiB", "1.5 GiB": three significant digits, switching unit at 1000. */
static void size_str(uint64_t v, char *out, size_t n)
{
    static const char *const sfx[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int e = 0;
    frexp((double)v / (1000.0 / 1024.0), &e);
    int i = v ? (e - 1) / 10 : 0;
    if (i > 6)
        i = 6;
    snprintf(out, n, "%0.3g %s", (double)v / (double)(1ull << (i * 10)), sfx[i]);
}

static void print_json(struct blockdev *bd, int depth)
{
    struct jw w;
    struct qcow2_info qi;
    bool q = qcow2_get_info(bd, &qi) == 0;
    const char *bname = blockdev_backing_name(bd), *bfmt = blockdev_backing_format(bd);
    uint64_t actual = 0;
    blockdev_actual_size(bd, &actual);
    jw_begin(&w, stdout, depth);
    jw_obj_open(&w, NULL);
    if (bname[0] && bfmt[0])
        jw_str(&w, "backing-filename-format", bfmt);
    jw_int(&w, "virtual-size", blockdev_size(bd));
    jw_str(&w, "filename", blockdev_filename(bd));
    if (q)
        jw_int(&w, "cluster-size", qi.cluster_size);
    jw_str(&w, "format", blockdev_format(bd));
    if (strcmp(blockdev_format(bd), "nbd"))
        jw_int(&w, "actual-size", actual);
    if (q) {
        jw_obj_open(&w, "format-specific");
        jw_str(&w, "type", "qcow2");
        jw_obj_open(&w, "data");
        jw_str(&w, "compat", qi.version == 2 ? "0.10" : "1.1");
        jw_str(&w, "compression-type", qi.compression_type ? "zstd" : "zlib");
        if (qi.version >= 3)
            jw_bool(&w, "lazy-refcounts", qi.lazy_refcounts);
        jw_int(&w, "refcount-bits", qi.refcount_bits);
        if (qi.version >= 3) {
            jw_bool(&w, "corrupt", qi.corrupt);
            jw_bool(&w, "extended-l2", qi.extended_l2);
        }
        jw_obj_close(&w);
        jw_obj_close(&w);
    }
    if (bname[0]) {
        char *full = img_backing_path(blockdev_filename(bd), bname);
        jw_str(&w, "full-backing-filename", full ? full : bname);
        free(full);
        jw_str(&w, "backing-filename", bname);
    }
    jw_bool(&w, "dirty-flag", false);
    jw_obj_close(&w);
}

static void print_human(struct blockdev *bd)
{
    struct qcow2_info qi;
    bool q = qcow2_get_info(bd, &qi) == 0;
    char s[32];
    uint64_t actual = 0;
    blockdev_actual_size(bd, &actual);
    printf("image: %s\nfile format: %s\n", blockdev_filename(bd), blockdev_format(bd));
    size_str(blockdev_size(bd), s, sizeof(s));
    printf("virtual size: %s (%llu bytes)\n", s, (unsigned long long)blockdev_size(bd));
    size_str(actual, s, sizeof(s));
    printf("disk size: %s\n", s);
    if (q)
        printf("cluster_size: %llu\n", (unsigned long long)qi.cluster_size);
    const char *bname = blockdev_backing_name(bd), *bfmt = blockdev_backing_format(bd);
    if (bname[0]) {
        char *full = img_backing_path(blockdev_filename(bd), bname);
        if (full && strcmp(full, bname))
            printf("backing file: %s (actual path: %s)\n", bname, full);
        else
            printf("backing file: %s\n", bname);
        free(full);
        if (bfmt[0])
            printf("backing file format: %s\n", bfmt);
    }
    if (!q)
        return;
    printf("Format specific information:\n    compat: %s\n    compression type: %s\n",
           qi.version == 2 ? "0.10" : "1.1", qi.compression_type ? "zstd" : "zlib");
    if (qi.version >= 3)
        printf("    lazy refcounts: %s\n", qi.lazy_refcounts ? "true" : "false");
    printf("    refcount bits: %u\n", qi.refcount_bits);
    if (qi.version >= 3)
        printf("    corrupt: %s\n    extended l2: %s\n", qi.corrupt ? "true" : "false",
               qi.extended_l2 ? "true" : "false");
}

static int info_one(const struct info_args *a, const char *path, const char *fmt, int idx)
{
    struct blockdev *bd = img_open(path, fmt, false, a->force_share, true);
    if (!bd)
        return -1;
    if (a->json) {
        if (a->chain)
            printf(idx ? ",\n" : "[\n");
        print_json(bd, a->chain ? 1 : 0);
        if (!a->chain)
            printf("\n");
    } else {
        if (idx)
            printf("\n");
        print_human(bd);
    }
    int r = 0;
    const char *bname = blockdev_backing_name(bd);
    if (a->chain && bname[0]) {
        const char *bfmt = blockdev_backing_format(bd);
        char *full = img_backing_path(blockdev_filename(bd), bname);
        if (!bfmt[0]) {
            img_error("Backing file '%s' has no recorded format; formats are never probed",
                      bname);
            r = -1;
        } else if (idx + 1 >= BLOCKDEV_MAX_CHAIN) {
            img_error("Backing chain too deep");
            r = -1;
        } else {
            char fcopy[64];
            snprintf(fcopy, sizeof(fcopy), "%s", bfmt);
            blockdev_close(bd);
            bd = NULL;
            r = info_one(a, full, fcopy, idx + 1);
        }
        free(full);
    }
    if (bd)
        blockdev_close(bd);
    return r;
}

/* Walks the chain's names as qemu-img info --backing-chain does, before
 * printing anything: the first name seen twice makes a loop. Returns that
 * name (malloc'ed) or NULL when the chain ends (or stops opening: info_one
 * then says why). */
static char *chain_loop(const struct info_args *a, const char *path)
{
    char *names[BLOCKDEV_MAX_CHAIN + 1], *loop = NULL, fmt[64] = "";
    int n = 0;
    names[n++] = strdup(path);
    while (names[n - 1] && n <= BLOCKDEV_MAX_CHAIN && !loop) {
        const char *cur = names[n - 1];
        for (int i = 0; i < n - 1 && !loop; i++)
            if (!strcmp(names[i], cur))
                loop = strdup(cur);
        if (loop)
            break;
        struct herd_err e;
        struct blockdev_open_opts o = {
            .format = img_guess_format(cur, n == 1 ? a->fmt : fmt),
            .read_only = true,
            .no_lock = a->force_share,
            .no_backing = true,
            .err = &e,
        };
        struct blockdev *bd;
        if (blockdev_open(cur, &o, &bd) < 0)
            break;
        const char *bname = blockdev_backing_name(bd), *bfmt = blockdev_backing_format(bd);
        bool more = bname[0] && bfmt[0];
        if (more) {
            snprintf(fmt, sizeof(fmt), "%s", bfmt);
            names[n++] = img_backing_path(blockdev_filename(bd), bname);
        }
        blockdev_close(bd);
        if (!more)
            break;
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    return loop;
}

static int info_image(const struct info_args *a, const char *path);

int img_info(int argc, char **argv)
{
    struct info_args a = {0};
    static const struct option lo[] = {
        {"output", required_argument, NULL, 'O'},
        {"backing-chain", no_argument, NULL, 'B'},
        {"force-share", no_argument, NULL, 'U'},
        {"image-opts", no_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    bool image_opts = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
        switch (c) {
        case 'f': a.fmt = optarg; break;
        case 'O': a.json = !strcmp(optarg, "json"); break;
        case 'B': a.chain = true; break;
        case 'U': a.force_share = true; break;
        case 'I': image_opts = true; break;
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    if (image_opts && a.fmt) {
        img_error("--image-opts and --format are mutually exclusive");
        return 1;
    }
    const char *path = argv[optind];
    char *spec = NULL;
    struct img_opts io = {0};
    if (image_opts) {
        if (img_opts_image(argv[optind], &spec, &io) < 0) {
            free(spec);
            return 1;
        }
        path = io.path;
        a.fmt = io.fmt;
        a.force_share |= io.no_lock;
    }
    int r = info_image(&a, path);
    free(spec);
    return r;
}

static int info_image(const struct info_args *a, const char *path)
{
    char *loop = a->chain ? chain_loop(a, path) : NULL;
    if (loop) {
        img_error("Backing file '%s' creates an infinite loop.", loop);
        free(loop);
        return 1;
    }
    int r = info_one(a, path, a->fmt, 0);
    if (a->json && a->chain)
        printf("\n]\n");
    return r < 0 ? 1 : 0;
}
