/*
 * libFuzzer target: arbitrary bytes opened as a qcow2 image (and as raw)
 * through the public blockdev API, the way herd opens a guest's disk.
 *
 * Each input is written to a private temporary directory as "img" and:
 *   1. opened read-only as qcow2 (format named, never probed); the whole
 *      virtual disk is walked with blockdev_map_extent and read in chunks
 *      (bounded: huge virtual sizes are walked, not read byte by byte), a read
 *      past the end must fail with -EINVAL, extents that say "zero" must read
 *      as zeros, then qcow2_get_info and qcow2_check run over it;
 *   2. unless FUZZ_BLOCKDEV_WRITES=0: opened read-write as qcow2 and
 *      written to (write, write-zeroes, discard, flush), then checked again;
 *   3. opened read-only as raw and read at both ends.
 *
 * Backing files: an image may only name a backing file that lies in the
 * temporary directory (no '/' in the name as the harness reads it from the
 * header, no "nbd" anywhere in the input). The directory holds "img" itself (a
 * loop, which the chain-depth bound must stop) and "base" (64 KiB of a raw
 * pattern). Anything else is opened with no_backing, so the fuzzer never opens
 * a host file or a network address.
 *
 * Files are capped with RLIMIT_FSIZE so a corrupt image that asks for a
 * cluster at an absurd offset cannot fill the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "herd/blockdev.h"
#include "herd/qcow2.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK        (64u * 1024)
#define READ_BUDGET  (4u * 1024 * 1024) /* bytes of guest data read per open */
#define MAX_EXTENTS  4096
#define BASE_SIZE    (64u * 1024)
#define FILE_LIMIT   (64ull * 1024 * 1024)

static char dir[256], img_path[300], base_path[300];
static FILE *devnull;
static bool writes;
static uint8_t *chunk;

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_blockdev: contract broken: %s: ", #cond);         \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void cleanup(void)
{
    unlink(img_path);
    unlink(base_path);
    rmdir(dir);
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (size) {
        ssize_t n = write(fd, data, size);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    close(fd);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    struct rlimit rl = {FILE_LIMIT, FILE_LIMIT};
    static uint8_t base[BASE_SIZE];

    snprintf(dir, sizeof(dir), "%s/herd-fuzz-blockdev.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_blockdev: mkdtemp");
        exit(1);
    }
    snprintf(img_path, sizeof(img_path), "%s/img", dir);
    snprintf(base_path, sizeof(base_path), "%s/base", dir);
    atexit(cleanup);
    for (size_t i = 0; i < sizeof(base); i++)
        base[i] = (uint8_t)(i * 7 + 1);
    if (write_file(base_path, base, sizeof(base)) < 0) {
        perror("fuzz_blockdev: base");
        exit(1);
    }
    setrlimit(RLIMIT_FSIZE, &rl);
    const char *w = getenv("FUZZ_BLOCKDEV_WRITES");
    writes = !(w && strcmp(w, "0") == 0); /* on unless FUZZ_BLOCKDEV_WRITES=0 */
    devnull = fopen("/dev/null", "w");
    chunk = malloc(CHUNK);
    if (!devnull || !chunk)
        exit(1);
    return 0;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Backing files are allowed only when they cannot leave the temporary
 * directory; see the comment at the top. */
static bool backing_is_safe(const uint8_t *data, size_t size)
{
    if (size < 20)
        return false;
    uint64_t off = be(data + 8, 8);
    uint64_t len = be(data + 16, 4);
    if (off == 0 || len == 0)
        return true; /* no backing file named */
    if (off > size || len > size - off)
        return false;
    if (memchr(data + off, '/', len))
        return false;
    if (memmem(data, size, "nbd", 3))
        return false;
    return true;
}

static void check_zero(const uint8_t *p, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(p[i] == 0, "byte at guest offset %llu is %#x in an extent that "
                               "blockdev_map_extent reports as zero",
                    (unsigned long long)(off + i), p[i]);
}

/* Reads the virtual disk: every extent is visited (bounded), data extents
 * are read (bounded), zero extents are read and checked. */
static void walk(struct blockdev *bd)
{
    uint64_t size = blockdev_size(bd), off = 0, budget = READ_BUDGET;
    unsigned n = 0;

    while (off < size && n++ < MAX_EXTENTS) {
        struct blockdev_extent ext;
        int r = blockdev_map_extent(bd, off, size - off, &ext);
        if (r < 0)
            break;
        FUZZ_ASSERT(ext.start == off && ext.length > 0 && ext.length <= size - off,
                    "map_extent(%llu, %llu) gave start %llu length %llu",
                    (unsigned long long)off, (unsigned long long)(size - off),
                    (unsigned long long)ext.start, (unsigned long long)ext.length);
        if (budget) {
            uint64_t want = ext.length < CHUNK ? ext.length : CHUNK;
            if (want > budget)
                want = budget;
            budget -= want;
            r = blockdev_pread(bd, chunk, want, off);
            if (r == 0 && ext.zero && !ext.data)
                check_zero(chunk, want, off);
        }
        off += ext.length;
    }
    /* Plain sequential chunks from the start, and the very end. */
    for (off = 0; off < size && off < 4 * CHUNK; off += CHUNK) {
        size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        blockdev_pread(bd, chunk, want, off);
    }
    if (size) {
        size_t want = size < CHUNK ? (size_t)size : CHUNK;
        blockdev_pread(bd, chunk, want, size - want);
        blockdev_pread(bd, chunk, 1, size - 1);
    }
    FUZZ_ASSERT(blockdev_pread(bd, chunk, 1, size) == -EINVAL,
                "a read at the end of a %llu-byte disk did not fail with -EINVAL",
                (unsigned long long)size);
    if (size >= 2)
        FUZZ_ASSERT(blockdev_pread(bd, chunk, 2, size - 1) == -EINVAL,
                    "a read across the end of a %llu-byte disk did not fail with -EINVAL",
                    (unsigned long long)size);
}

static void qcow2_facts(struct blockdev *bd)
{
    struct qcow2_info info;
    struct qcow2_check_result res;
    uint64_t entry, actual;

    qcow2_get_info(bd, &info);
    qcow2_check(bd, &res, devnull, NULL);
    qcow2_get_l2_entry(bd, 0, &entry);
    if (blockdev_size(bd))
        qcow2_get_l2_entry(bd, blockdev_size(bd) - 1, &entry);
    blockdev_actual_size(bd, &actual);
    (void)blockdev_backing_name(bd);
    (void)blockdev_backing_format(bd);
}

static void open_read(bool backing)
{
    struct herd_err e;
    struct blockdev_open_opts o = {
        .format = "qcow2",
        .read_only = true,
        .no_lock = true,
        .no_backing = !backing,
        .backing_raw_fallback = true,
        .max_chain = 4,
        .l2_cache_bytes = 64 * 1024,
        .engine = BLOCKDEV_ENGINE_SYNC,
        .err = &e,
    };
    struct blockdev *bd;
    int r = blockdev_open(img_path, &o, &bd);

    if (r < 0) {
        FUZZ_ASSERT(bd == NULL, "failed open left *out set");
        FUZZ_ASSERT(e.msg[0], "failed open without a message");
        FUZZ_ASSERT(e.code == r, "failed open with an error code other than its result");
        return;
    }
    walk(bd);
    qcow2_facts(bd);
    blockdev_close(bd);
}

static void open_write(bool backing)
{
    struct blockdev_open_opts o = {
        .format = "qcow2",
        .no_lock = true,
        .no_backing = !backing,
        .backing_raw_fallback = true,
        .max_chain = 4,
        .l2_cache_bytes = 64 * 1024,
        .engine = BLOCKDEV_ENGINE_SYNC,
    };
    struct blockdev *bd;
    struct qcow2_check_result res;

    if (blockdev_open(img_path, &o, &bd) < 0)
        return;
    uint64_t size = blockdev_size(bd);
    if (size) {
        memset(chunk, 0x5a, 4096);
        uint64_t mid = size / 2, len = size - mid < 4096 ? size - mid : 4096;
        blockdev_pwrite(bd, chunk, 512 < size ? 512 : size, 0);
        blockdev_pwrite(bd, chunk, len, mid);
        blockdev_write_zeroes(bd, 0, size < 2 * CHUNK ? size : 2 * CHUNK, BLOCKDEV_ZERO_MAY_UNMAP);
        blockdev_pwrite(bd, chunk, 100, size > 1000 ? 900 : 0);
        blockdev_discard(bd, mid, len);
        blockdev_pread(bd, chunk, len, mid);
        blockdev_flush(bd);
        qcow2_check(bd, &res, devnull, NULL);
    }
    blockdev_close(bd);
}

static void open_raw(void)
{
    struct blockdev_open_opts o = {
        .format = "raw",
        .read_only = true,
        .no_lock = true,
        .engine = BLOCKDEV_ENGINE_SYNC,
    };
    struct blockdev *bd;

    if (blockdev_open(img_path, &o, &bd) < 0)
        return;
    walk(bd);
    blockdev_close(bd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool backing = backing_is_safe(data, size);
    static bool once;

    /* Writes past the cap fail with EFBIG instead of killing the process.
     * (Here, not in LLVMFuzzerInitialize: libFuzzer installs its own SIGXFSZ
     * handler after that.) */
    if (!once) {
        signal(SIGXFSZ, SIG_IGN);
        once = true;
    }
    if (write_file(img_path, data, size) < 0)
        abort();
    open_read(backing);
    /* The writes change the file; the raw pass and the next input start over. */
    if (writes) {
        open_write(backing);
        if (write_file(img_path, data, size) < 0)
            abort();
    }
    open_raw();
    return 0;
}
