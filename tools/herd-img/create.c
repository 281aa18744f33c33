/*
 * herd-img create: new raw files and qcow2 v3 overlays, laid out as
 * qemu-img create lays them out.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/qcow2.h"
#include "img.h"

struct create_args {
    const char *fmt, *file;
    const char *path; /* file as a path: its "file:" prefix dropped (img_file_path) */
    struct qcow2_create_opts q;
    bool quiet, have_size, size_in_o;
    const char *prealloc, *compat; /* as given (printed back), NULL when not */
};

static int parse_o(char *opts, struct create_args *a)
{
    for (char *save = NULL, *kv = strtok_r(opts, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v) {
            img_error("Invalid option '%s'", kv);
            return -EINVAL;
        }
        *v++ = 0;
        uint64_t n;
        if (!strcmp(kv, "cluster_size") && img_parse_size(v, &n) == 0 && n <= (4u << 20))
            a->q.cluster_size = (unsigned)n;
        else if (!strcmp(kv, "refcount_bits") && img_parse_size(v, &n) == 0 && n <= 64)
            a->q.refcount_bits = (unsigned)n;
        else if (!strcmp(kv, "compression_type") && (!strcmp(v, "zlib") || !strcmp(v, "zstd")))
            a->q.compression_type = !strcmp(v, "zstd");
        else if (!strcmp(kv, "backing_file"))
            a->q.backing_file = v;
        else if (!strcmp(kv, "backing_fmt"))
            a->q.backing_fmt = v;
        else if (!strcmp(kv, "size") && img_parse_size(v, &n) == 0)
            a->q.size = n, a->have_size = a->size_in_o = true;
        else if (!strcmp(kv, "compat") && (!strcmp(v, "1.1") || !strcmp(v, "v3")))
            a->compat = v, a->q.version = 3;
        else if (!strcmp(kv, "compat") && (!strcmp(v, "0.10") || !strcmp(v, "v2")))
            a->compat = v, a->q.version = 2;
        else if (!strcmp(kv, "preallocation"))
            a->prealloc = v; /* checked once the Formatting line is out, as qemu-img */
        else if ((!strcmp(kv, "lazy_refcounts") && !strcmp(v, "off")) ||
                 (!strcmp(kv, "extended_l2") && !strcmp(v, "off")))
            continue;
        else {
            img_error("Unsupported or invalid option '%s=%s'", kv, v);
            return -EINVAL;
        }
    }
    return 0;
}

static int size_from_backing(struct create_args *a)
{
    const char *b = a->q.backing_file;
    char *path = NULL;
    const char *slash = strrchr(a->path, '/');
    if (b[0] != '/' && !strstr(b, "://") && slash) {
        size_t dl = (size_t)(slash - a->path) + 1;
        path = malloc(dl + strlen(b) + 1);
        if (!path)
            return -ENOMEM;
        memcpy(path, a->path, dl);
        strcpy(path + dl, b);
    }
    struct blockdev *bd = img_open(path ? path : b, a->q.backing_fmt, false, true, false);
    free(path);
    if (!bd)
        return -EINVAL;
    a->q.size = blockdev_size(bd);
    blockdev_close(bd);
    return 0;
}

enum { PREALLOC_OFF = BLOCKDEV_PREALLOC_OFF, PREALLOC_METADATA = BLOCKDEV_PREALLOC_METADATA,
       PREALLOC_FALLOC = BLOCKDEV_PREALLOC_FALLOC, PREALLOC_FULL = BLOCKDEV_PREALLOC_FULL };
/* NULL = off; -1 for a name qemu does not know. */
static int prealloc_mode(const char *v)
{
    return v ? img_prealloc_mode(v) : PREALLOC_OFF;
}

/* Writes zeros over the whole file (preallocation=full). */
static int write_zeros(int fd, uint64_t size)
{
    static const char z[65536];
    for (uint64_t d = 0; d < size;) {
        ssize_t n = pwrite(fd, z, (size_t)img_min(sizeof(z), size - d), (off_t)d);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        d += (uint64_t)n;
    }
    return 0;
}

static int create_raw(const struct create_args *a, int mode)
{
    int fd = open(a->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int r = fd < 0 || ftruncate(fd, 0) < 0 ? -errno : 0;
    if (r == 0 && mode == PREALLOC_FALLOC && a->q.size)
        r = -posix_fallocate(fd, 0, (off_t)a->q.size);
    if (r == 0 && mode == PREALLOC_FULL)
        r = write_zeros(fd, a->q.size);
    if (r == 0 && ftruncate(fd, (off_t)a->q.size) < 0)
        r = -errno;
    if (r < 0) {
        img_error("%s: Could not create image: %s", a->file, strerror(-r));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    close(fd);
    return 0;
}

/* preallocation=metadata|falloc|full of a new qcow2 image. */
static int prealloc_qcow2(const struct create_args *a, int mode)
{
    struct blockdev *bd = img_open(a->path, "qcow2", true, false, true);
    if (!bd)
        return 1;
    int r = qcow2_preallocate_mode(bd, 0, a->q.size, mode);
    int rc = blockdev_close(bd);
    if (r == 0)
        r = rc;
    if (r < 0) {
        img_error("%s: Could not preallocate metadata: %s", a->file, strerror(-r));
        return 1;
    }
    return 0;
}

static void print_formatting(const struct create_args *a)
{
    if (strcmp(a->fmt, "qcow2")) {
        printf("Formatting '%s', fmt=%s size=%llu", a->file, a->fmt,
               (unsigned long long)a->q.size);
        if (a->prealloc)
            printf(" preallocation=%s", a->prealloc);
        printf("\n");
        return;
    }
    printf("Formatting '%s', fmt=qcow2 cluster_size=%u extended_l2=off", a->file,
           a->q.cluster_size ? a->q.cluster_size : 65536);
    if (a->prealloc)
        printf(" preallocation=%s", a->prealloc);
    printf(" compression_type=%s size=%llu", a->q.compression_type ? "zstd" : "zlib",
           (unsigned long long)a->q.size);
    if (a->compat)
        printf(" compat=%s", a->compat);
    if (a->q.backing_file)
        printf(" backing_file=%s", a->q.backing_file);
    if (a->q.backing_fmt)
        printf(" backing_fmt=%s", a->q.backing_fmt);
    printf(" lazy_refcounts=off refcount_bits=%u\n", a->q.refcount_bits ? a->q.refcount_bits : 16);
}

int img_create(int argc, char **argv)
{
    struct create_args a = {.fmt = "raw"};
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:b:F:o:qu")) != -1) {
        switch (c) {
        case 'f': a.fmt = optarg; break;
        case 'b': a.q.backing_file = optarg; break;
        case 'F': a.q.backing_fmt = optarg; break;
        case 'o': if (parse_o(optarg, &a) < 0) return 1; break;
        case 'q': a.quiet = true; break;
        case 'u': break; /* size is never read from the backing file when given */
        default: return 1;
        }
    }
    if (optind >= argc) {
        img_error("Expecting image file name");
        return 1;
    }
    a.file = argv[optind++];
    char pbuf[IMG_PATH_MAX];
    a.path = img_file_path(a.file, pbuf, sizeof(pbuf));
    if (optind < argc && a.size_in_o) {
        /* qemu-img refuses -o size=... together with the SIZE argument. */
        img_error("%s: The image size must be specified only once", a.file);
        return 1;
    }
    if (optind < argc) {
        int r = img_parse_size(argv[optind], &a.q.size);
        if (r == -ERANGE) {
            img_error("Invalid image size specified. Must be between 0 and %lld.",
                      (long long)INT64_MAX);
            return 1;
        } else if (r < 0) {
            img_error("Invalid image size specified. You may use k, M, G, T, P or E "
                      "suffixes for");
            img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
            return 1;
        }
        a.have_size = true;
    }
    if (strcmp(a.fmt, "qcow2") && strcmp(a.fmt, "raw")) {
        img_error("Unknown file format '%s'", a.fmt);
        return 1;
    }
    if (a.q.backing_file && !a.q.backing_fmt) {
        img_error("Backing file specified without backing format (use -F; formats are "
                  "never probed)");
        return 1;
    }
    if (a.q.backing_file && !strcmp(a.fmt, "raw")) {
        img_error("Backing file not supported for file format 'raw'");
        return 1;
    }
    if (!a.have_size && a.q.backing_file && size_from_backing(&a) < 0)
        return 1;
    if (!a.have_size && !a.q.backing_file) {
        img_error("Image creation needs a size parameter");
        return 1;
    }
    if (!a.quiet) {
        print_formatting(&a);
        fflush(stdout); /* before any error, as qemu-img */
    }
    if (!strcmp(a.fmt, "qcow2")) /* qemu's qcow2 takes whole sectors */
        a.q.size = (a.q.size + 511) & ~511ull;
    int mode = prealloc_mode(a.prealloc);
    bool raw = !strcmp(a.fmt, "raw");
    if (mode < 0) {
        if (raw)
            img_error("%s: invalid parameter value: %s", a.file, a.prealloc);
        else
            img_error("%s: Parameter 'preallocation' does not accept value '%s'", a.file,
                      a.prealloc);
        return 1;
    }
    if (raw && mode == PREALLOC_METADATA) {
        img_error("%s: Unsupported preallocation mode: metadata", a.file);
        return 1;
    }
    if (raw)
        return create_raw(&a, mode);
    if (mode != PREALLOC_OFF && a.q.backing_file) {
        img_error("%s: Backing file and preallocation can only be used at the same time "
                  "if extended_l2 is on", a.file);
        return 1;
    }
    struct herd_err e = {0};
    a.q.err = &e;
    int r = qcow2_create(a.path, &a.q);
    if (r < 0) {
        img_error("%s: %s", a.file, img_errmsg(&e));
        return 1;
    }
    return mode != PREALLOC_OFF ? prealloc_qcow2(&a, mode) : 0;
}
