/*
 * Test "blk": drives a virtio-blk device (virtio_blk.c) through PCI.
 * Writes pattern probe.blk.seed over the disk with many requests in flight,
 * flushes, reads everything back and verifies it; asks for the device ID;
 * uses WRITE_ZEROES and DISCARD when offered (pattern.h has the layout) and
 * verifies the whole disk once more. With probe.blk.parent=P the disk is a
 * copy-on-write overlay on a parent holding pattern P: the probe writes
 * only the even MiB and the odd MiB must show the parent. With
 * probe.blk.ro=1 the device must offer VIRTIO_BLK_F_RO and fail writes
 * with VIRTIO_BLK_S_IOERR; reads are verified against the parent pattern
 * if one is given.
 *
 * Keys: probe.blk.dev=N (which virtio-blk device, default 0),
 * probe.blk.seed=N (default 1), probe.blk.parent=N, probe.blk.ro=1,
 * probe.blk.depth=N (requests in flight, default 32), probe.blk.chunk=SIZE
 * (bytes per request, default 64K, power of two, 512..512K),
 * probe.blk.size=SIZE (expected capacity), probe.blk.serial=ID (expected
 * GET_ID answer), probe.blk.indirect=0 (direct chains only).
 */
#include "cmdline.h"
#include "cpl0.h"
#include "dma.h"
#include "lib.h"
#include "pattern.h"
#include "serial.h"
#include "tests.h"
#include "tsc.h"
#include "virtio_blk.h"

#define IO_TIMEOUT_MS 10000 /* no completion for this long: the device hung */
#define MAX_REPORTS 3

struct blkrun {
    struct test_ctx *t;
    struct vblk b;
    uint64_t seed, parent, cap;
    bool ro, zeroes_applied, verify;
    uint32_t chunk;
    uint16_t depth;
    uint8_t *bufs;
    uint64_t requests, bad_sectors, io_errors;
    uint64_t notifies0, suppressed0;
};

static struct blkrun run;

static uint64_t expect_seed(const struct blkrun *r, uint64_t off)
{
    if (r->ro)
        return r->parent;
    return pattern_expected(off, r->cap, r->seed, r->parent, r->zeroes_applied);
}

static const char *seed_name(const struct blkrun *r, const uint8_t *sec, uint64_t off)
{
    if (pattern_check(sec, r->seed, off, SECTOR) == SECTOR)
        return "the probe's pattern";
    if (r->parent && pattern_check(sec, r->parent, off, SECTOR) == SECTOR)
        return "the parent's pattern";
    if (pattern_check(sec, 0, off, SECTOR) == SECTOR)
        return "zeros";
    return "something else";
}

static void verify(struct blkrun *r, const uint8_t *buf, uint64_t off, uint32_t len)
{
    for (uint32_t s = 0; s < len; s += SECTOR) {
        uint64_t seed = expect_seed(r, off + s);
        uint64_t i = pattern_check(buf + s, seed, off + s, SECTOR);
        if (i == SECTOR)
            continue;
        if (r->bad_sectors++ < MAX_REPORTS)
            fail(r->t, "sector %lu byte %lu reads 0x%02x, expected 0x%02x (%s; sector holds %s)",
                 (unsigned long)((off + s) / SECTOR), (unsigned long)i, buf[s + i],
                 (uint8_t)(pattern_word(seed, off + s + (i & ~7ULL)) >> (8 * (i & 7))),
                 seed == 0 ? "zeros" : seed == r->seed ? "probe pattern" : "parent pattern",
                 seed_name(r, buf + s, off + s));
    }
}

/* One pipelined pass of IN or OUT requests over [start, end) (bytes);
 * even_only: skip the odd MiB. Reads are verified. */
static bool pass(struct blkrun *r, uint32_t type, uint64_t start, uint64_t end, bool even_only)
{
    uint16_t freebuf[256], nfree = 0;
    for (uint16_t i = 0; i < r->depth; i++)
        freebuf[nfree++] = i;
    uint64_t next = start, dl = tsc_deadline(IO_TIMEOUT_MS);
    while (next < end || nfree < r->depth) {
        bool added = false;
        while (next < end && nfree) {
            if (even_only && ((next / PATTERN_MIB) & 1)) {
                next = (next / PATTERN_MIB + 1) * PATTERN_MIB;
                continue;
            }
            uint32_t len = end - next < r->chunk ? (uint32_t)(end - next) : r->chunk;
            uint16_t bi = freebuf[nfree - 1];
            uint8_t *buf = r->bufs + (uint64_t)bi * r->chunk;
            if (type == VIRTIO_BLK_T_OUT)
                pattern_fill(buf, r->seed, next, len);
            if (!vblk_submit(&r->b, type, next / SECTOR, buf, len, (next / SECTOR) << 16 | bi))
                break;
            nfree--;
            next += len;
            added = true;
            r->requests++;
        }
        if (added)
            vblk_kick(&r->b);
        uint64_t cookie;
        uint8_t st;
        bool bad, got = false;
        while (vblk_poll(&r->b, &cookie, &st, &bad)) {
            got = true;
            uint16_t bi = (uint16_t)(cookie & 0xffff);
            uint64_t off = (cookie >> 16) * SECTOR;
            uint32_t len = end - off < r->chunk ? (uint32_t)(end - off) : r->chunk;
            if (st != VIRTIO_BLK_S_OK) {
                if (r->io_errors++ < MAX_REPORTS)
                    fail(r->t, "%s at sector %lu: status %u", type == VIRTIO_BLK_T_OUT ? "write" : "read",
                         (unsigned long)(off / SECTOR), st);
            } else if (type == VIRTIO_BLK_T_IN && r->verify) {
                verify(r, r->bufs + (uint64_t)bi * r->chunk, off, len);
            }
            freebuf[nfree++] = bi;
        }
        if (bad) {
            fail(r->t, "device returned a used entry that is not an outstanding request");
            return false;
        }
        if (got) {
            dl = tsc_deadline(IO_TIMEOUT_MS);
        } else if (tsc_passed(dl)) {
            fail(r->t, "no completion for %u ms with %u requests in flight (device status 0x%x)", IO_TIMEOUT_MS,
                 r->depth - nfree, virtio_status(&r->b.vd));
            return false;
        } else {
            cpu_relax();
        }
    }
    return true;
}

/* WRITE_ZEROES or DISCARD over [start, end) in pieces the device accepts. */
static bool ranged(struct blkrun *r, uint32_t type, uint64_t start, uint64_t end, uint32_t max_sectors)
{
    uint64_t piece = max_sectors ? (uint64_t)max_sectors * SECTOR : end - start;
    if (piece > PATTERN_MIB)
        piece = PATTERN_MIB;
    for (uint64_t off = start; off < end; off += piece) {
        uint64_t len = end - off < piece ? end - off : piece;
        uint8_t st = vblk_sync(&r->b, type, off / SECTOR, 0, (uint32_t)len, IO_TIMEOUT_MS);
        if (st != VIRTIO_BLK_S_OK) {
            fail(r->t, "%s of sectors %lu+%lu: status %u", type == VIRTIO_BLK_T_DISCARD ? "discard" : "write-zeroes",
                 (unsigned long)(off / SECTOR), (unsigned long)(len / SECTOR), st);
            return false;
        }
    }
    return true;
}

static bool keys(struct test_ctx *t, struct blkrun *r, uint64_t *dev, uint64_t *size, bool *indirect)
{
    const char *cl = t->bi->cmdline;
    uint64_t depth, chunk;
    bool ok = cmdline_u64(cl, "probe.blk.dev", 0, dev) && cmdline_u64(cl, "probe.blk.seed", 1, &r->seed) &&
              cmdline_u64(cl, "probe.blk.parent", 0, &r->parent) && cmdline_flag(cl, "probe.blk.ro", false, &r->ro) &&
              cmdline_u64(cl, "probe.blk.depth", 32, &depth) && cmdline_size(cl, "probe.blk.chunk", 65536, &chunk) &&
              cmdline_size(cl, "probe.blk.size", 0, size) &&
              cmdline_flag(cl, "probe.blk.indirect", true, indirect);
    if (!ok || r->seed == 0 || depth == 0 || depth > 256 || chunk < 512 || chunk > 512 * 1024 ||
        (chunk & (chunk - 1))) {
        fail(t, "bad probe.blk.* value");
        return false;
    }
    r->depth = (uint16_t)depth;
    r->chunk = (uint32_t)chunk;
    return true;
}

static void print_id(struct test_ctx *t, struct blkrun *r)
{
    uint8_t *id = dma_alloc(VIRTIO_BLK_ID_BYTES + 1, 64);
    uint8_t st = id ? vblk_sync(&r->b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, IO_TIMEOUT_MS) : VBLK_S_NONE;
    uint32_t n;
    const char *want = cmdline_value(t->bi->cmdline, "probe.blk.serial", &n);
    if (st == VIRTIO_BLK_S_OK) {
        id[VIRTIO_BLK_ID_BYTES] = 0;
        say("blk: id \"%s\"", (char *)id);
        if (want && !streq_n(want, n, (char *)id))
            fail(t, "get-id \"%s\", probe.blk.serial expects another", (char *)id);
    } else {
        say("blk: get-id status %u", st);
        if (want)
            fail(t, "get-id failed with status %u", st);
    }
}

static void test_ro(struct test_ctx *t, struct blkrun *r)
{
    if (!virtio_has(&r->b.vd, VIRTIO_BLK_F_RO))
        fail(t, "probe.blk.ro=1 but the device does not offer VIRTIO_BLK_F_RO");
    r->verify = r->parent != 0;
    uint64_t t0 = rdtsc();
    if (!pass(r, VIRTIO_BLK_T_IN, 0, r->cap, false))
        return;
    say("blk: read %lu MiB in %lu ms%s", (unsigned long)(r->cap >> 20), (unsigned long)tsc_ms_since(t0),
        r->verify ? ", parent pattern verified" : "");
    /* A write of what is there anyway (harmless if it went through). */
    uint8_t *buf = r->bufs;
    pattern_fill(buf, r->parent, 0, SECTOR);
    uint8_t st = vblk_sync(&r->b, VIRTIO_BLK_T_OUT, 0, buf, SECTOR, IO_TIMEOUT_MS);
    say("blk: write on the read-only disk: status %u", st);
    if (st != VIRTIO_BLK_S_IOERR)
        fail(t, "write on a read-only disk completed with status %u, expected %u (IOERR)", st, VIRTIO_BLK_S_IOERR);
    if (virtio_has(&r->b.vd, VIRTIO_BLK_F_WRITE_ZEROES)) {
        st = vblk_sync(&r->b, VIRTIO_BLK_T_WRITE_ZEROES, 0, 0, SECTOR, IO_TIMEOUT_MS);
        if (st == VIRTIO_BLK_S_OK)
            fail(t, "write-zeroes on a read-only disk succeeded");
    }
    if (r->verify) {
        r->bad_sectors = 0;
        pass(r, VIRTIO_BLK_T_IN, 0, PATTERN_MIB < r->cap ? PATTERN_MIB : r->cap, false);
    }
}

void test_blk(struct test_ctx *t)
{
    struct blkrun *r = &run;
    memset(r, 0, sizeof(*r));
    r->t = t;
    uint64_t dev, size;
    bool indirect;
    if (!keys(t, r, &dev, &size, &indirect) || !pci_test_setup(t))
        return;
    char why[200];
    if (!vblk_open(&r->b, (uint32_t)dev, 128, indirect, why, sizeof(why))) {
        fail(t, "%s", why);
        return;
    }
    struct vblk *b = &r->b;
    const struct pci_dev *p = b->vd.pci;
    say("blk: %s %02x:%02x.%u %04x:%04x%s, features 0x%lx of 0x%lx, queue %u%s%s", pci_method_name(), p->bus, p->dev,
        p->fn, p->vendor, p->device, b->vd.transitional ? " (transitional)" : "", (unsigned long)b->vd.negotiated,
        (unsigned long)b->vd.offered, b->vq.size, b->vq.event_idx ? ", event-idx" : "",
        b->vq.indirect ? ", indirect" : "");
    r->cap = b->capacity * SECTOR;
    say("blk: capacity %lu sectors (%lu KiB), blk_size %u, seg_max %u, size_max %u%s%s%s%s",
        (unsigned long)b->capacity, (unsigned long)(r->cap >> 10), b->blk_size, b->seg_max, b->size_max,
        virtio_has(&b->vd, VIRTIO_BLK_F_RO) ? ", ro" : "", virtio_has(&b->vd, VIRTIO_BLK_F_FLUSH) ? ", flush" : "",
        virtio_has(&b->vd, VIRTIO_BLK_F_DISCARD) ? ", discard" : "",
        virtio_has(&b->vd, VIRTIO_BLK_F_WRITE_ZEROES) ? ", write-zeroes" : "");
    if (size && size != r->cap)
        fail(t, "capacity %lu bytes, probe.blk.size says %lu", (unsigned long)r->cap, (unsigned long)size);
    if (r->cap == 0) {
        fail(t, "capacity 0");
        goto out;
    }
    if (b->size_max && b->size_max < r->chunk)
        r->chunk = 1U << (31 - __builtin_clz(b->size_max));
    if (r->chunk < SECTOR) {
        fail(t, "size_max %u below one sector", b->size_max);
        goto out;
    }
    if (r->depth > b->vq.size)
        r->depth = b->vq.size;
    if (!b->vq.indirect && r->depth > b->vq.size / 3)
        r->depth = b->vq.size / 3;
    r->bufs = dma_alloc((uint64_t)r->depth * r->chunk, 4096);
    if (!r->bufs) {
        fail(t, "out of memory for %u buffers of %u bytes", r->depth, r->chunk);
        goto out;
    }
    print_id(t, r);
    if (r->ro) {
        test_ro(t, r);
        goto out;
    }
    if (virtio_has(&b->vd, VIRTIO_BLK_F_RO)) {
        fail(t, "device offers VIRTIO_BLK_F_RO (read-only) without probe.blk.ro=1");
        goto out;
    }

    uint64_t t0 = rdtsc(), n0 = b->vq.notifies, s0 = b->vq.kicks_suppressed;
    if (!pass(r, VIRTIO_BLK_T_OUT, 0, r->cap, r->parent != 0))
        goto out;
    uint64_t wr_reqs = r->requests;
    if (virtio_has(&b->vd, VIRTIO_BLK_F_FLUSH)) {
        uint8_t st = vblk_sync(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, IO_TIMEOUT_MS);
        if (st != VIRTIO_BLK_S_OK)
            fail(t, "flush: status %u", st);
    }
    say("blk: wrote %s in %lu requests of %u KiB, depth %u, %lu notifies (%lu suppressed), %lu ms",
        r->parent ? "the even MiB" : "the whole disk", (unsigned long)wr_reqs, r->chunk >> 10, r->depth,
        (unsigned long)(b->vq.notifies - n0), (unsigned long)(b->vq.kicks_suppressed - s0),
        (unsigned long)tsc_ms_since(t0));
    r->verify = true;
    t0 = rdtsc();
    r->requests = 0;
    if (!pass(r, VIRTIO_BLK_T_IN, 0, r->cap, false))
        goto out;
    say("blk: read back and verified %lu KiB in %lu requests, %lu ms%s", (unsigned long)(r->cap >> 10),
        (unsigned long)r->requests, (unsigned long)tsc_ms_since(t0),
        r->parent ? " (odd MiB: parent pattern)" : "");
    if (r->bad_sectors)
        goto out;

    bool again = false;
    if (virtio_has(&b->vd, VIRTIO_BLK_F_WRITE_ZEROES) && pattern_has_zero_range(r->cap)) {
        if (!ranged(r, VIRTIO_BLK_T_WRITE_ZEROES, PATTERN_ZERO_START, PATTERN_ZERO_END, b->max_wz_sectors))
            goto out;
        r->zeroes_applied = true;
        again = true;
        say("blk: write-zeroes on sectors %llu-%llu", PATTERN_ZERO_START / SECTOR, PATTERN_ZERO_END / SECTOR - 1);
    }
    if (virtio_has(&b->vd, VIRTIO_BLK_F_DISCARD) && pattern_has_discard_range(r->cap)) {
        if (!ranged(r, VIRTIO_BLK_T_DISCARD, PATTERN_DISCARD_START, PATTERN_DISCARD_END, b->max_discard_sectors))
            goto out;
        /* Discarded contents are unspecified: write the range again. */
        if (!pass(r, VIRTIO_BLK_T_OUT, PATTERN_DISCARD_START, PATTERN_DISCARD_END, false))
            goto out;
        again = true;
        say("blk: discard on sectors %llu-%llu, rewritten", PATTERN_DISCARD_START / SECTOR,
            PATTERN_DISCARD_END / SECTOR - 1);
    }
    if (again) {
        if (virtio_has(&b->vd, VIRTIO_BLK_F_FLUSH) && vblk_sync(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, IO_TIMEOUT_MS))
            fail(t, "second flush failed");
        if (pass(r, VIRTIO_BLK_T_IN, 0, r->cap, false) && !r->bad_sectors)
            say("blk: whole disk verified again%s", r->zeroes_applied ? " (zeros where written zero)" : "");
    }
out:
    if (r->bad_sectors > MAX_REPORTS)
        fail(t, "%lu mismatched sectors in all", (unsigned long)r->bad_sectors);
    uint8_t st = virtio_status(&b->vd);
    if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(t, "device status 0x%x", st);
    if (!virtio_reset(&b->vd))
        fail(t, "device did not finish its reset");
}
