/*
 * herd-img bench: qemu-img bench's options and output, on blockdev's aio
 * interface (io_uring when available). Requests go to offset, offset+step,
 * ... modulo the image size, as qemu-img bench sends them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img.h"

struct bench {
    struct blockdev *bd;
    uint64_t count, submitted, done, offset, step, bufsize, size;
    bool write;
    int failed;
    struct blockdev_req *reqs;
    struct iovec *iov;
};

static void submit_one(struct bench *b, struct blockdev_req *req);

static void on_done(struct blockdev_req *req, int64_t res)
{
    struct bench *b = req->opaque;
    if (res < 0 && !b->failed)
        b->failed = (int)res;
    b->done++;
    if (b->submitted < b->count)
        submit_one(b, req);
}

static void submit_one(struct bench *b, struct blockdev_req *req)
{
    req->op = b->write ? BLOCKDEV_OP_WRITE : BLOCKDEV_OP_READ;
    req->off = b->offset;
    b->offset = (b->offset + b->step) % b->size;
    if (b->offset + b->bufsize > b->size)
        b->offset = 0;
    b->submitted++;
    int r = blockdev_aio_submit(b->bd, req);
    if (r < 0 && !b->failed)
        b->failed = r;
}

static int parse_num(const char *s, uint64_t *v)
{
    if (img_parse_size(s, v) < 0) {
        img_error("Invalid number: '%s'", s);
        return -1;
    }
    return 0;
}

int img_bench(int argc, char **argv)
{
    const char *fmt = NULL;
    uint64_t count = 75000, depth = 64, bufsize = 4096, offset = 0, step = 0;
    int pattern = 0;
    bool write = false, direct = false, force = false;
    int c;
    static const struct option lo[] = {{"force-share", no_argument, NULL, 'U'},
                                       {"pattern", required_argument, NULL, 'P'},
                                       {NULL, 0, NULL, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:f:no:qs:S:t:wi:U", lo, NULL)) != -1) {
        switch (c) {
        case 'c': if (parse_num(optarg, &count)) return 1; break;
        case 'd': if (parse_num(optarg, &depth)) return 1; break;
        case 'f': fmt = optarg; break;
        case 'n': direct = true; break;
        case 'o': if (parse_num(optarg, &offset)) return 1; break;
        case 'q': break; /* qemu-img bench prints its two lines even with -q */
        case 's': if (parse_num(optarg, &bufsize)) return 1; break;
        case 'S': if (parse_num(optarg, &step)) return 1; break;
        case 't': direct = !strcmp(optarg, "none") || !strcmp(optarg, "directsync"); break;
        case 'w': write = true; break;
        case 'i': case 'U': force = c == 'U' ? true : force; break;
        case 'P':
            if ((pattern = img_parse_byte(optarg)) < 0) {
                img_error("Invalid pattern byte specified");
                return 1;
            }
            break;
        default: return 1;
        }
    }
    if (optind != argc - 1 || depth == 0 || depth > 1024 || bufsize == 0) {
        img_error("Expecting one image file name (and sane -d/-s)");
        return 1;
    }
    struct herd_err e;
    struct blockdev_open_opts o = {.format = img_guess_format(argv[optind], fmt),
                                   .read_only = !write, .direct = direct, .no_lock = force,
                                   .err = &e};
    struct bench b = {.count = count, .offset = offset, .bufsize = bufsize, .write = write,
                      .step = step ? step : bufsize};
    int r = blockdev_open(argv[optind], &o, &b.bd);
    if (r < 0) {
        img_error("Could not open '%s': %s", argv[optind], img_errmsg(&e));
        return 1;
    }
    b.size = blockdev_size(b.bd);
    if (b.size < bufsize) {
        img_error("Image too small for the buffer size");
        blockdev_close(b.bd);
        return 1;
    }
    b.reqs = calloc(depth, sizeof(*b.reqs));
    b.iov = calloc(depth, sizeof(*b.iov));
    for (uint64_t i = 0; b.reqs && b.iov && i < depth; i++) {
        b.iov[i].iov_base = aligned_alloc(4096, (bufsize + 4095) & ~4095ull);
        b.iov[i].iov_len = bufsize;
        if (b.iov[i].iov_base)
            memset(b.iov[i].iov_base, pattern, bufsize); /* qemu-img's default: 0 */
        b.reqs[i] = (struct blockdev_req){.iov = &b.iov[i], .iovcnt = 1, .done = on_done,
                                          .opaque = &b};
    }
    printf("Sending %llu %s requests, %llu bytes each, %llu in parallel (starting at "
           "offset %llu, step size %llu)\n", (unsigned long long)count,
           write ? "write" : "read", (unsigned long long)bufsize, (unsigned long long)depth,
           (unsigned long long)offset, (unsigned long long)b.step);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < depth && b.submitted < count; i++)
        submit_one(&b, &b.reqs[i]);
    while (b.done < b.submitted && !b.failed) {
        r = blockdev_aio_reap(b.bd, 1);
        if (r < 0) {
            b.failed = r;
            break;
        }
    }
    if (write && !b.failed)
        b.failed = blockdev_flush(b.bd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (!b.failed)
        printf("Run completed in %.3f seconds.\n", secs);
    if (b.failed)
        img_error("Failed request: %s", strerror(-b.failed));
    if (getenv("HERD_BENCH_ENGINE"))
        fprintf(stderr, "engine: %s\n",
                blockdev_engine(b.bd) == BLOCKDEV_ENGINE_IO_URING ? "io_uring" : "sync");
    blockdev_close(b.bd);
    for (uint64_t i = 0; b.iov && i < depth; i++)
        free(b.iov[i].iov_base);
    free(b.iov);
    free(b.reqs);
    return b.failed ? 1 : 0;
}
