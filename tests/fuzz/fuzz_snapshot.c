/*
 * libFuzzer target: the snapshot file's reader (snap_read, snap_find,
 * snap_get in vmm/snapshot/format.c), the container herd-vmm --restore
 * trusts nothing of.
 *
 * Input: byte 0 is a mode, bytes 1-144 the header, the rest the state. The
 * harness lays them out as a file (header at 0, state at 4096, the file as
 * long as the header says when that is at most 64 MiB: a memfd, sparse). In
 * mode bit 0 it first recomputes both checksums, so that mutations reach the
 * structural checks behind them instead of stopping at a CRC mismatch.
 *
 * Contract checked beyond "no sanitizer report": a refused file comes with
 * a message and an empty reader; an accepted one hands out only sections
 * inside its state, each found again by its type and index, and snap_get
 * agrees with snap_find on every one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "herd/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_snapshot: contract broken: %s: ", #cond);         \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

#define FILE_MAX (64ULL << 20)

static void fix_checksums(struct snap_header *h, const uint8_t *state, size_t state_len)
{
    if (h->state_len <= state_len)
        h->state_crc = (uint32_t)crc32(0, state, (uInt)h->state_len);
    h->header_crc = 0;
    h->header_crc = (uint32_t)crc32(0, (const Bytef *)h, sizeof(*h));
}

static int make_file(const struct snap_header *h, const uint8_t *state, size_t state_len)
{
    int fd = memfd_create("fuzz-snapshot", MFD_CLOEXEC);
    uint64_t len = h->file_size <= FILE_MAX ? h->file_size : SNAP_STATE_OFF + state_len;

    if (fd < 0)
        abort();
    if (len < SNAP_STATE_OFF + state_len)
        len = SNAP_STATE_OFF + state_len;
    if (ftruncate(fd, (off_t)len) < 0 || pwrite(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) ||
        (state_len && pwrite(fd, state, state_len, SNAP_STATE_OFF) != (ssize_t)state_len))
        abort();
    return fd;
}

static void check_accepted(const struct snap_reader *r)
{
    for (uint32_t i = 0; i < r->nr_sections; i++) {
        uint64_t len = 0;
        const uint8_t *d = r->sections[i].data;
        struct herd_err err = {0};

        FUZZ_ASSERT(d >= r->state && r->sections[i].len <= r->hdr.state_len &&
                        (uint64_t)(d - r->state) <= r->hdr.state_len - r->sections[i].len,
                    "section %u outside the state", i);
        FUZZ_ASSERT(snap_find(r, r->sections[i].type, r->sections[i].index, &len) == d &&
                        len == r->sections[i].len,
                    "section %u not found again", i);
        FUZZ_ASSERT(snap_get(r, r->sections[i].type, r->sections[i].index, len, "s", &err) == d,
                    "snap_get disagrees on section %u", i);
        FUZZ_ASSERT(!snap_get(r, r->sections[i].type, r->sections[i].index, len + 1, "s", &err) &&
                        err.msg[0],
                    "snap_get took a wrong size for section %u", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snap_header h;
    struct snap_reader r;
    struct herd_err err = {0};
    const uint8_t *state;
    size_t state_len;
    int fd;

    if (size < 1 + sizeof(h))
        return 0;
    memcpy(&h, data + 1, sizeof(h));
    state = data + 1 + sizeof(h);
    state_len = size - 1 - sizeof(h);
    if (data[0] & 1)
        fix_checksums(&h, state, state_len);
    fd = make_file(&h, state, state_len);
    if (snap_read(&r, fd, &err) == 0) {
        check_accepted(&r);
        snap_reader_free(&r);
    } else {
        FUZZ_ASSERT(err.msg[0] != 0, "refused without a message");
        FUZZ_ASSERT(!r.state && !r.sections && r.nr_sections == 0, "a refused reader holds state");
    }
    close(fd);
    return 0;
}
