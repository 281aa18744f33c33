/*
 * herd-img io commands: qemu-io's read/readv/write/writev, aio_read/
 * aio_write/aio_flush (completed at submission, reported as qemu-io reports
 * a completion), discard, flush, alloc, map and length, with its messages,
 * report lines and exit rules (a failed command makes the exit status 1;
 * an aio request counts as done once submitted).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd/qcow2.h"
#include "io.h"

#define MAX_REQ 2147483136ull /* qemu's BDRV_REQUEST_MAX_BYTES */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void io_human(double v, char *out, size_t n)
{
    static const char *const sfx[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int i = 6;
    while (i > 0 && v < (double)(1ull << (10 * i)))
        i--;
    char num[64];
    snprintf(num, sizeof(num), i ? "%.3f" : "%f", v / (double)(1ull << (10 * i)));
    char *dot = strstr(num, ".000");
    if (dot)
        *dot = 0;
    snprintf(out, n, "%s %s", num, sfx[i]);
}

/* qemu-io's print_report; -C gives "bytes,ops,h:mm:ss.cc,bytes/s,ops/s". */
static void report(const char *verb, uint64_t len, uint64_t off, double t0, bool quiet,
                   bool terse)
{
    if (quiet)
        return;
    double t = now_s() - t0;
    char sz[80], rate[80];
    if (terse) {
        unsigned s = (unsigned)t;
        printf("%" PRIu64 ",1,%u:%02u:%02u.%02u,%.3f,%.3f\n", len, s / 3600, s / 60 % 60, s % 60,
               (unsigned)((t - s) * 100), t > 0 ? (double)len / t : 0, t > 0 ? 1 / t : 0.0);
        return;
    }
    io_human((double)len, sz, sizeof(sz));
    io_human(t > 0 ? (double)len / t : 0, rate, sizeof(rate));
    printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", verb, len, len, off);
    printf("%s, 1 ops; %05.2f sec (%s/sec and %.4f ops/sec)\n", sz, t, rate,
           t > 0 ? 1 / t : 0.0);
}

/* qemu-io's dump_buffer (read -v). */
static void dump(const uint8_t *p, uint64_t off, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 16) {
        uint64_t n = len - i < 16 ? len - i : 16;
        printf("%08" PRIx64 ":  ", off + i);
        for (uint64_t j = 0; j < n; j++)
            printf("%02x ", p[i + j]);
        printf(" ");
        for (uint64_t j = 0; j < n; j++)
            putchar(isalnum(p[i + j]) ? p[i + j] : '.');
        printf("\n");
    }
}

/* A pattern byte as qemu-io takes it (img_parse_byte), or its complaint. */
static int parse_pattern(const char *arg)
{
    int v = img_parse_byte(arg);
    if (v < 0)
        printf("%s is not a valid pattern byte\n", arg);
    return v;
}

int io_parse_num(const char *arg, uint64_t *v)
{
    int r = img_parse_size(arg, v);
    if (r == -ERANGE)
        printf("Parsing error: argument too large -- %s\n", arg);
    else if (r < 0)
        printf("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s\n",
               arg);
    return r < 0 ? -EINVAL : 0;
}

struct opts {
    bool invalid, quiet, terse, verbose, zero, unmap, nofallback, fua, compress, has_pattern, has_s, has_l;
    bool vmstate; /* -b: the VM state area, not the disk */
    int pattern;
    uint64_t off, len, poff, plen;
};

/* Options common to the I/O commands; unknown ones give getopt's message
 * and the usage line as qemu-io does. */
static int parse_opts(int argc, char **argv, const char *flags, struct opts *o)
{
    int c;
    optind = 0; /* full getopt reset between commands (glibc) */
    opterr = 0;
    while ((c = getopt(argc, argv, flags)) != -1) {
        switch (c) {
        case 'q': o->quiet = true; break;
        case 'C': o->terse = true; break;
        case 'v': o->verbose = true; break;
        case 'z': o->zero = true; break;
        case 'u': o->unmap = true; break;
        case 'n': o->nofallback = true; break;
        case 'f': o->fua = true; break;
        case 'c': o->compress = true; break;
        case 'b': o->vmstate = true; break;
        case 'p': break; /* ignored, as by qemu-io */
        case 'i':
            printf("injecting invalid %s request\n", strcmp(argv[0], "aio_read") ? "write" : "read");
            o->invalid = true;
            return 0;
        case 'P':
            o->has_pattern = true;
            if ((o->pattern = parse_pattern(optarg)) < 0)
                return -EINVAL;
            break;
        case 's':
            o->has_s = true;
            if (io_parse_num(optarg, &o->poff) < 0)
                return -EINVAL;
            break;
        case 'l':
            o->has_l = true;
            if (io_parse_num(optarg, &o->plen) < 0)
                return -EINVAL;
            break;
        default:
            if (optopt && strchr(flags, optopt))
                fprintf(stderr, "%s: option requires an argument -- '%c'\n", argv[0], optopt);
            else
                fprintf(stderr, "%s: invalid option -- '%c'\n", argv[0], optopt);
            return io_usage(argv[0]);
        }
    }
    return 0;
}

/* "off len" after the options, with qemu-io's length bound. */
static int parse_off_len(int argc, char **argv, struct opts *o)
{
    if (argc - optind != 2)
        return io_usage(argv[0]);
    if (io_parse_num(argv[optind], &o->off) < 0 || io_parse_num(argv[optind + 1], &o->len) < 0)
        return -EINVAL;
    if (o->len > MAX_REQ) {
        printf("length cannot exceed %llu%s, given %s\n", MAX_REQ,
               strcmp(argv[0], "write") ? "" : " without -n", argv[optind + 1]);
        return -EINVAL;
    }
    return 0;
}

/* "off len [len..]" of the vectored commands: one buffer, the lengths as
 * iovec entries (qemu-io's create_iovec and its messages). */
struct vec {
    struct iovec *iov;
    int cnt;
    uint8_t *buf;
    uint64_t size;
};

static void vec_free(struct vec *v)
{
    free(v->iov);
    free(v->buf);
}

static int parse_vec(int argc, char **argv, struct opts *o, int fill, struct vec *v)
{
    memset(v, 0, sizeof(*v));
    if (optind > argc - 2)
        return io_usage(argv[0]);
    if (io_parse_num(argv[optind], &o->off) < 0)
        return -EINVAL;
    int n = argc - optind - 1;
    uint64_t *lens = calloc((size_t)n, sizeof(*lens));
    if (!lens)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        const char *a = argv[optind + 1 + i];
        if (io_parse_num(a, &lens[i]) < 0) {
            free(lens);
            return -EINVAL;
        }
        if (lens[i] > MAX_REQ) {
            printf("Argument '%s' exceeds maximum size %llu\n", a, MAX_REQ);
            free(lens);
            return -EINVAL;
        }
        if (v->size > MAX_REQ - lens[i]) {
            printf("The total number of bytes exceed the maximum size %llu\n", MAX_REQ);
            free(lens);
            return -EINVAL;
        }
        v->size += lens[i];
    }
    v->iov = calloc((size_t)n, sizeof(*v->iov));
    v->buf = malloc(v->size ? v->size : 1);
    if (!v->iov || !v->buf) {
        free(lens);
        vec_free(v);
        return -ENOMEM;
    }
    memset(v->buf, fill, v->size);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        v->iov[i] = (struct iovec){v->buf + pos, lens[i]};
        pos += lens[i];
    }
    v->cnt = n;
    o->len = v->size;
    free(lens);
    return 0;
}

/* Requests past the end fail as qemu-io's do (its block layer's EIO). */
static int check_range(struct io_ctx *x, uint64_t off, uint64_t len)
{
    uint64_t size = blockdev_size(x->bd);
    return off > size || len > size - off ? -EIO : 0;
}

/* Pattern check; prints qemu-io's message. Returns -EIO on a mismatch. */
static int verify(const uint8_t *buf, uint64_t len, int pattern, uint64_t report_off)
{
    for (uint64_t i = 0; i < len; i++)
        if (buf[i] != (uint8_t)pattern) {
            printf("Pattern verification failed at offset %" PRIu64 ", %" PRIu64 " bytes\n",
                   report_off, len);
            return -EIO;
        }
    return 0;
}

/* -b and -c take whole sectors, as qemu-io checks them. */
static int sector_aligned(const struct opts *o)
{
    if (o->off % 512 || o->len % 512) {
        printf("%" PRIu64 " is not a sector-aligned value for '%s'\n",
               o->off % 512 ? o->off : o->len, o->off % 512 ? "offset" : "count");
        return -EINVAL;
    }
    return 0;
}

static int cmd_read(struct io_ctx *x, int argc, char **argv)
{
    struct opts o = {0};
    int r = parse_opts(argc, argv, "bCl:pP:qs:v", &o);
    if (r == 0)
        r = parse_off_len(argc, argv, &o);
    if (r < 0)
        return r;
    if (!o.has_pattern && (o.has_l || o.has_s))
        return io_usage(argv[0]);
    if (!o.has_l)
        o.plen = o.len - o.poff; /* may wrap: caught below */
    if (o.poff > o.len || o.plen > o.len - o.poff) {
        printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }
    if (o.vmstate && (r = sector_aligned(&o)) < 0)
        return r;
    double t0 = now_s();
    r = o.vmstate ? (o.len > MAX_REQ ? -EINVAL : 0) : check_range(x, o.off, o.len);
    uint8_t *buf = r == 0 ? malloc(o.len ? o.len : 1) : NULL;
    if (r == 0 && !buf)
        r = -ENOMEM;
    if (r == 0)
        r = o.vmstate ? qcow2_vmstate_rw(x->bd, buf, o.len, o.off, false)
                      : blockdev_pread(x->bd, buf, o.len, o.off);
    if (r < 0) {
        printf("read failed: %s\n", strerror(-r));
        free(buf);
        return r;
    }
    if (o.has_pattern)
        r = verify(buf + o.poff, o.plen, o.pattern, o.off + o.poff);
    if (o.verbose && !o.quiet)
        dump(buf, o.off, o.len);
    free(buf);
    report("read", o.len, o.off, t0, o.quiet, o.terse);
    return r;
}

/* readv and aio_read: aio_read reports failures but never fails. */
static int cmd_readv(struct io_ctx *x, int argc, char **argv)
{
    bool aio = !strcmp(argv[0], "aio_read");
    struct opts o = {0};
    struct vec v;
    int r = parse_opts(argc, argv, aio ? "CP:iqv" : "CP:qv", &o);
    if (o.invalid)
        return 0;
    if (r == 0)
        r = parse_vec(argc, argv, &o, 0xab, &v);
    if (r < 0)
        return r;
    double t0 = now_s();
    r = check_range(x, o.off, v.size);
    if (r == 0)
        r = blockdev_preadv(x->bd, v.iov, v.cnt, o.off);
    if (r < 0) {
        printf("readv failed: %s\n", strerror(-r));
    } else {
        if (o.has_pattern)
            r = verify(v.buf, v.size, o.pattern, o.off);
        if (o.verbose && !o.quiet)
            dump(v.buf, o.off, v.size);
        report("read", v.size, o.off, t0, o.quiet, o.terse);
    }
    vec_free(&v);
    return aio ? 0 : r;
}

/* write -c: whole clusters from a cluster boundary, compressed; only the
 * last may be short, where it ends the image (zero-padded), as qemu's
 * qcow2 driver takes it. Written in order; the first failure ends it. raw
 * has no compressed clusters. */
static int write_compressed(struct io_ctx *x, const uint8_t *buf, uint64_t off, uint64_t len)
{
    struct qcow2_info qi;
    if (strcmp(blockdev_format(x->bd), "qcow2") || qcow2_get_info(x->bd, &qi) < 0)
        return -ENOTSUP;
    uint64_t cs = qi.cluster_size, size = blockdev_size(x->bd);
    if (off % cs)
        return -EINVAL;
    uint8_t *cl = malloc(cs);
    int r = cl ? 0 : -ENOMEM;
    for (uint64_t done = 0; r == 0 && done < len; done += cs) {
        uint64_t n = img_min(len - done, cs);
        if (n < cs && off + done + n != size) {
            r = -EINVAL;
            break;
        }
        memcpy(cl, buf + done, n);
        memset(cl + n, 0, cs - n);
        r = qcow2_write_compressed(x->bd, off + done, cl);
    }
    free(cl);
    return r;
}

int io_pwrite(struct io_ctx *x, const void *buf, uint64_t len, uint64_t off)
{
    struct qcow2_info qi;
    if (!x->compress || !len)
        return blockdev_pwrite(x->bd, buf, len, off);
    if (qcow2_get_info(x->bd, &qi) < 0)
        return -ENOTSUP;
    /* qemu's filter asks for cluster alignment: the head and tail clusters
     * are read and written whole (the last one ends at the image end) */
    uint64_t cs = qi.cluster_size, size = blockdev_size(x->bd);
    uint64_t a = off / cs * cs, b = img_min((off + len + cs - 1) / cs * cs, size);
    uint8_t *w = malloc(b - a);
    if (!w)
        return -ENOMEM;
    uint64_t last = (b - 1) / cs * cs; /* the tail cluster's start */
    int r = 0;
    if (a < off)
        r = blockdev_pread(x->bd, w, img_min(cs, b - a), a);
    if (r == 0 && off + len < b)
        r = blockdev_pread(x->bd, w + (last - a), b - last, last);
    if (r == 0) {
        memcpy(w + (off - a), buf, len);
        r = write_compressed(x, w, a, b - a);
    }
    free(w);
    return r;
}

int io_write_zeroes(struct io_ctx *x, uint64_t off, uint64_t len, unsigned flags)
{
    struct qcow2_info qi;
    if (!x->compress || !len || qcow2_get_info(x->bd, &qi) < 0)
        return blockdev_write_zeroes(x->bd, off, len, flags);
    /* the filter's cluster alignment: partial clusters at either end are
     * written as data (compressed), the whole ones between as zeroes */
    uint64_t cs = qi.cluster_size, end = off + len;
    uint64_t a = img_min((off + cs - 1) / cs * cs, end), b = img_max(end / cs * cs, a);
    uint8_t *z = calloc(1, cs);
    int r = z ? 0 : -ENOMEM;
    if (r == 0 && a > off)
        r = io_pwrite(x, z, a - off, off);
    if (r == 0 && b > a)
        r = blockdev_write_zeroes(x->bd, a, b - a, flags);
    if (r == 0 && end > b)
        r = io_pwrite(x, z, end - b, b);
    free(z);
    return r;
}

static int cmd_write(struct io_ctx *x, int argc, char **argv)
{
    struct opts o = {0};
    int r = parse_opts(argc, argv, "bcCfnpP:quz", &o);
    if (r == 0 && argc - optind != 2)
        r = io_usage(argv[0]);
    if (r < 0)
        return r;
    const char *clash = NULL;
    if (o.vmstate && o.zero)
        clash = "-b and -z cannot be specified at the same time";
    else if (o.fua && (o.compress || o.vmstate))
        clash = "-f and -b or -c cannot be specified at the same time";
    else if (o.zero && o.has_pattern)
        clash = "Only one of -z, -P, and -s can be specified at the same time";
    else if (o.unmap && !o.zero)
        clash = "-u requires -z to be specified";
    else if (o.nofallback && !o.zero)
        clash = "-n requires -z to be specified";
    if (clash) {
        printf("%s\n", clash);
        return -EINVAL;
    }
    if ((r = parse_off_len(argc, argv, &o)) < 0)
        return r;
    if ((o.compress || o.vmstate) && (r = sector_aligned(&o)) < 0)
        return r;
    double t0 = now_s();
    r = o.vmstate ? (o.len > MAX_REQ ? -EINVAL : 0) : check_range(x, o.off, o.len);
    if (r == 0 && o.zero) {
        r = io_write_zeroes(x, o.off, o.len, o.unmap ? BLOCKDEV_ZERO_MAY_UNMAP : 0);
    } else if (r == 0) {
        uint8_t *buf = malloc(o.len ? o.len : 1);
        if (!buf)
            return -ENOMEM;
        memset(buf, o.has_pattern ? o.pattern : 0xcd, o.len);
        r = o.vmstate    ? qcow2_vmstate_rw(x->bd, buf, o.len, o.off, true)
            : o.compress ? write_compressed(x, buf, o.off, o.len)
                         : io_pwrite(x, buf, o.len, o.off);
        free(buf);
    }
    if (r == 0 && o.fua)
        r = blockdev_flush(x->bd);
    if (r < 0) {
        printf("write failed: %s\n", strerror(-r));
        return r;
    }
    report("wrote", o.len, o.off, t0, o.quiet, o.terse);
    return 0;
}

/* A vectored write through the compress filter: one request, as qemu's. */
static int write_vec_filtered(struct io_ctx *x, const struct vec *v, uint64_t off, uint64_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return -ENOMEM;
    uint64_t at = 0;
    for (int i = 0; i < v->cnt; at += v->iov[i].iov_len, i++)
        memcpy(b + at, v->iov[i].iov_base, v->iov[i].iov_len);
    int r = io_pwrite(x, b, len, off);
    free(b);
    return r;
}

/* writev and aio_write (which also takes -z [-u] with one length). */
static int cmd_writev(struct io_ctx *x, int argc, char **argv)
{
    bool aio = !strcmp(argv[0], "aio_write");
    struct opts o = {0};
    struct vec v = {0};
    int r = parse_opts(argc, argv, aio ? "CfiqP:uz" : "CfqP:", &o);
    if (o.invalid)
        return 0;
    if (r < 0)
        return r;
    if (optind > argc - 2)
        return io_usage(argv[0]);
    const char *clash = NULL;
    if (o.zero && optind != argc - 2)
        clash = "-z supports only a single length parameter";
    else if (o.unmap && !o.zero)
        clash = "-u requires -z to be specified";
    else if (o.zero && o.has_pattern && !aio) /* qemu-io's aio_write lets it pass */
        clash = "-z and -P cannot be specified at the same time";
    if (clash) {
        printf("%s\n", clash);
        return -EINVAL;
    }
    if (o.zero) {
        if (io_parse_num(argv[optind], &o.off) < 0 || io_parse_num(argv[optind + 1], &o.len) < 0)
            return -EINVAL;
    } else if ((r = parse_vec(argc, argv, &o, o.has_pattern ? o.pattern : 0xcd, &v)) < 0) {
        return r;
    }
    double t0 = now_s();
    r = o.zero && o.len > MAX_REQ ? -EIO : check_range(x, o.off, o.len);
    if (r == 0 && o.zero)
        r = io_write_zeroes(x, o.off, o.len, o.unmap ? BLOCKDEV_ZERO_MAY_UNMAP : 0);
    else if (r == 0 && !x->compress)
        r = blockdev_pwritev(x->bd, v.iov, v.cnt, o.off);
    else if (r == 0)
        r = write_vec_filtered(x, &v, o.off, o.len);
    if (r == 0 && o.fua)
        r = blockdev_flush(x->bd);
    vec_free(&v);
    if (r < 0) {
        printf("%s failed: %s\n", argv[0], strerror(-r));
        return aio ? 0 : r;
    }
    report("wrote", o.len, o.off, t0, o.quiet, o.terse);
    return 0;
}

static int cmd_aio_flush(struct io_ctx *x, int argc, char **argv)
{
    (void)x, (void)argc, (void)argv;
    return 0; /* every aio request completed at submission */
}

static int cmd_flush(struct io_ctx *x, int argc, char **argv)
{
    (void)argc, (void)argv;
    int r = blockdev_flush(x->bd);
    if (r < 0)
        printf("flush failed: %s\n", strerror(-r));
    return r;
}

static int cmd_discard(struct io_ctx *x, int argc, char **argv)
{
    struct opts o = {0};
    int r = parse_opts(argc, argv, "Cq", &o);
    if (r == 0)
        r = parse_off_len(argc, argv, &o);
    if (r < 0)
        return r;
    double t0 = now_s();
    r = check_range(x, o.off, o.len);
    if (r == 0)
        r = blockdev_discard(x->bd, o.off, o.len);
    /* qemu frees discarded clusters at once, and the next writes of the
     * run reuse them; blockdev drops the references at a flush (crash
     * safety without cache ordering): flush, for qemu-io's layout */
    if (r == 0)
        r = blockdev_flush(x->bd);
    if (r < 0) {
        printf("discard failed: %s\n", strerror(-r));
        return r;
    }
    report("discard", o.len, o.off, t0, o.quiet, o.terse);
    return 0;
}

/* qemu's bdrv_is_allocated on the top layer: 1 allocated, 0 not, with the
 * extent's length in *num (0 at or past the end). */
static int is_allocated(struct io_ctx *x, uint64_t off, uint64_t max, uint64_t *num)
{
    uint64_t size = blockdev_size(x->bd);
    *num = 0;
    if (off >= size || max == 0)
        return 0;
    if (max > size - off)
        max = size - off;
    struct blockdev_status st;
    int r = blockdev_block_status(x->bd, off, max, &st);
    if (r < 0)
        return r;
    *num = st.len < max ? st.len : max;
    return (st.flags & BLOCKDEV_ST_ALLOCATED) != 0;
}

static int cmd_alloc(struct io_ctx *x, int argc, char **argv)
{
    uint64_t start, count = 512, sum = 0;
    if (io_parse_num(argv[1], &start) < 0 || (argc == 3 && io_parse_num(argv[2], &count) < 0))
        return -EINVAL;
    uint64_t off = start, left = count;
    while (left) {
        uint64_t num;
        int r = is_allocated(x, off, left, &num);
        if (r < 0) {
            printf("is_allocated failed: %s\n", strerror(-r));
            return r;
        }
        if (num == 0) {
            count -= left;
            break;
        }
        if (r)
            sum += num;
        off += num;
        left -= num;
    }
    char s[80];
    io_human((double)start, s, sizeof(s));
    printf("%" PRIu64 "/%" PRIu64 " bytes allocated at offset %s\n", sum, count, s);
    return 0;
}

static int cmd_map(struct io_ctx *x, int argc, char **argv)
{
    (void)argc, (void)argv;
    uint64_t off = 0, size = blockdev_size(x->bd);
    while (off < size) {
        uint64_t num, n;
        int first = is_allocated(x, off, size - off, &num), r = first;
        /* Merge following extents of the same kind, as qemu-io's map does. */
        while (r == first && r >= 0 && num && off + num < size) {
            r = is_allocated(x, off + num, size - off - num, &n);
            if (r != first || !n)
                break;
            num += n;
        }
        if (first < 0 || r < 0) {
            img_error("Failed to get allocation status: %s", strerror(-(first < 0 ? first : r)));
            return first < 0 ? first : r;
        }
        if (!num) {
            img_error("Unexpected end of image");
            return -EIO;
        }
        char s1[80], s2[80];
        io_human((double)num, s1, sizeof(s1));
        io_human((double)off, s2, sizeof(s2));
        printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n", s1, num,
               first ? "    allocated" : "not allocated", s2, off);
        off += num;
    }
    return 0;
}

static int cmd_length(struct io_ctx *x, int argc, char **argv)
{
    (void)argc, (void)argv;
    char s[80];
    io_human((double)blockdev_size(x->bd), s, sizeof(s));
    printf("%s\n", s);
    return 0;
}

/* truncate [-m prealloc_mode] off: raw grows or shrinks, qcow2 grows (to a
 * multiple of 512); preallocation other than "off" is not built. */
static int cmd_truncate(struct io_ctx *x, int argc, char **argv)
{
    int c;
    const char *mode = "off";
    optind = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, "m:")) != -1) {
        if (c != 'm')
            return io_usage(argv[0]);
        mode = optarg;
    }
    if (argc - optind != 1)
        return io_usage(argv[0]);
    static const char *const modes[] = {"off", "metadata", "falloc", "full"};
    size_t m = 0;
    while (m < 4 && strcmp(mode, modes[m]))
        m++;
    if (m == 4) {
        img_error("Invalid preallocation mode '%s'", mode);
        return -EINVAL;
    }
    if (m) {
        img_error("Unsupported preallocation mode '%s' (herd-img truncates with 'off' only)", mode);
        return -ENOTSUP;
    }
    uint64_t size;
    int r = io_parse_num(argv[optind], &size);
    if (r < 0)
        return r;
    bool qcow2 = !strcmp(blockdev_format(x->bd), "qcow2");
    if (qcow2 && size % 512) {
        img_error("The new size must be a multiple of 512");
        return -EINVAL;
    }
    if ((r = blockdev_resize(x->bd, size)) < 0)
        img_error("Could not resize image: %s", strerror(-r));
    return r;
}

const struct io_cmd io_cmds[] = {
    {"read", "r", 2, -1, false, false, cmd_read, "[-abCqv] [-P pattern [-s off] [-l len]] off len",
     "reads a number of bytes at a specified offset"},
    {"readv", NULL, 2, -1, false, false, cmd_readv, "[-Cqv] [-P pattern] off len [len..]",
     "reads a number of bytes at a specified offset"},
    {"write", "w", 2, -1, false, true, cmd_write,
     "[-bcCfnquz] [-P pattern | -s source_file] off len",
     "writes a number of bytes at a specified offset"},
    {"writev", NULL, 2, -1, false, true, cmd_writev, "[-Cfq] [-P pattern] off len [len..]",
     "writes a number of bytes at a specified offset"},
    {"aio_read", NULL, 2, -1, false, false, cmd_readv, "[-Ciqv] [-P pattern] off len [len..]",
     "asynchronously reads a number of bytes"},
    {"aio_write", NULL, 2, -1, false, true, cmd_writev,
     "[-Cfiquz] [-P pattern] off len [len..]", "asynchronously writes a number of bytes"},
    {"aio_flush", NULL, 0, 0, false, false, cmd_aio_flush, "",
     "completes all outstanding aio requests"},
    {"flush", "f", 0, 0, false, false, cmd_flush, "", "flush all in-core file state to disk"},
    {"discard", "d", 2, -1, false, true, cmd_discard, "[-Cq] off len",
     "discards a number of bytes at a specified offset"},
    {"alloc", "a", 1, 2, false, false, cmd_alloc, "offset [count]",
     "checks if offset is allocated in the file"},
    {"map", NULL, 0, 0, false, false, cmd_map, "", "prints the allocated areas of a file"},
    {"length", "l", 0, 0, false, false, cmd_length, "", "gets the length of the current file"},
    {"truncate", "t", 1, 3, false, true, cmd_truncate, "[-m prealloc_mode] off",
     "truncates the current file at the given offset"},
    {"open", "o", 1, -1, true, false, io_cmd_open,
     "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
     "open the file specified by path"},
    {"close", "c", 0, 0, false, false, io_cmd_close, "", "close the current open file"},
    {NULL, NULL, 0, 0, false, false, NULL, NULL, NULL},
};

int io_usage(const char *name)
{
    for (const struct io_cmd *c = io_cmds; c->name; c++)
        if (!strcmp(c->name, name))
            printf("%s %s -- %s\n", c->name, c->args, c->oneline);
    return -EINVAL;
}
