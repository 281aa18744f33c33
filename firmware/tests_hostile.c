/*
 * Test "hostile": malformed virtqueue chains on one virtio-blk device (the
 * victim), then proof that a second, well-formed virtio-blk device still
 * works and that the victim works again after a reset.
 *
 * Each case runs on a freshly reset and initialized victim (descriptors
 * written by hand into its ring, one notify). Within 2 s the device must
 * react: set NEEDS_RESET (0x40) in its status, or complete the chain. With
 * probe.hostile.strict=1 (herd-vmm, which checks every guest address
 * against guest RAM) a completion must carry an error status (not
 * VIRTIO_BLK_S_OK); without it a completion with OK is reported but
 * accepted, because QEMU treats addresses outside RAM as unassigned memory
 * (reads give zeros, writes vanish) and ignores a nested indirect flag.
 * No reaction at all (a hung queue) always fails. That the VMM survives
 * shows by the probe going on; the victim must work again after a reset
 * and the second device throughout.
 *
 * Cases (probe.hostile.cases=a,b,... picks some; default all of level 1):
 *   oob-data     data buffer at the first byte after RAM (device writes)
 *   oob-wdata    the same for a write request (device reads it)
 *   oob-header   request header at 256 GiB
 *   straddle     data buffer starting 2 KiB before the end of RAM
 *   loop         descriptor chain 0 -> 1 -> 2 -> 0
 *   self-loop    descriptor 0 -> 0
 *   huge-len     data descriptor 0xfffff000 bytes long from a RAM address
 *   zero-len     every descriptor 0 bytes long
 *   next-oob     next index beyond the queue size
 *   head-oob     avail ring entry beyond the queue size
 *   avail-jump   avail idx moved by more than the queue size
 *   indirect-oob indirect table outside RAM (only if INDIRECT_DESC offered)
 *   indirect-len indirect table length not a multiple of 16
 *   indirect-nest indirect descriptor inside an indirect table
 * probe.hostile.level=2 adds (level 2 only, for herd-vmm):
 *   mmio-data    data buffer on the device's own registers (DMA into MMIO,
 *                the re-entrancy case; not run against QEMU by default)
 *
 * Keys: probe.hostile.dev=N (victim, default 0), probe.hostile.good=N
 * (default 1), probe.hostile.cases=LIST, probe.hostile.level=1|2,
 * probe.hostile.strict=1.
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

#define CASE_WAIT_MS 2000
#define IO_MS 10000
#define BAD_ADDR 0x4000000000ULL /* 256 GiB: never RAM for the probe's VMs */
#define GOOD_BYTES (1ULL << 20)

struct hctx {
    struct vblk b;
    struct vblk_hdr *hdr;
    uint8_t *data;
    uint8_t *status;
    struct vq_desc *itab;
};

enum { C_OOB_DATA, C_OOB_WDATA, C_OOB_HEADER, C_STRADDLE, C_LOOP, C_SELF_LOOP, C_HUGE_LEN, C_ZERO_LEN, C_NEXT_OOB,
       C_HEAD_OOB, C_AVAIL_JUMP, C_IND_OOB, C_IND_LEN, C_IND_NEST, C_MMIO_DATA, C_COUNT };

static const struct {
    const char *name;
    int level;
    bool indirect;
} cases[C_COUNT] = {
    [C_OOB_DATA] = { "oob-data", 1, false },      [C_OOB_WDATA] = { "oob-wdata", 1, false },
    [C_OOB_HEADER] = { "oob-header", 1, false },  [C_STRADDLE] = { "straddle", 1, false },
    [C_LOOP] = { "loop", 1, false },
    [C_SELF_LOOP] = { "self-loop", 1, false },    [C_HUGE_LEN] = { "huge-len", 1, false },
    [C_ZERO_LEN] = { "zero-len", 1, false },      [C_NEXT_OOB] = { "next-oob", 1, false },
    [C_HEAD_OOB] = { "head-oob", 1, false },      [C_AVAIL_JUMP] = { "avail-jump", 1, false },
    [C_IND_OOB] = { "indirect-oob", 1, true },    [C_IND_LEN] = { "indirect-len", 1, true },
    [C_IND_NEST] = { "indirect-nest", 1, true },  [C_MMIO_DATA] = { "mmio-data", 2, false },
};

static struct hctx hc;

static void setd(struct vq_desc *d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

/* Write the case's descriptors and publish them (one notify). */
static void build(struct hctx *h, int c)
{
    struct virtq *vq = &h->b.vq;
    struct vq_desc *d = vq->desc;
    uint64_t hdr = dma_addr(h->hdr), data = dma_addr(h->data), st = dma_addr(h->status);
    const uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;
    h->hdr->type = c == C_OOB_WDATA ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    h->hdr->sector = 0;
    *h->status = VBLK_S_NONE;
    /* The well-formed request, then the case's damage. */
    setd(&d[0], hdr, sizeof(struct vblk_hdr), N, 1);
    setd(&d[1], data, 4096, (uint16_t)(N | (c == C_OOB_WDATA ? 0 : W)), 2);
    setd(&d[2], st, 1, W, 0);
    uint16_t head = 0;
    switch (c) {
    case C_OOB_DATA:
    case C_OOB_WDATA:
        d[1].addr = dma_ram_end(); /* the first byte after RAM */
        break;
    case C_STRADDLE:
        d[1].addr = dma_ram_end() - 2048; /* half in RAM, half beyond */
        break;
    case C_MMIO_DATA:
        d[1].addr = h->b.vd.common & ~0xfffULL; /* the device's own registers */
        break;
    case C_OOB_HEADER:
        d[0].addr = BAD_ADDR;
        break;
    case C_LOOP:
        d[2].flags = W | N;
        d[2].next = 0;
        break;
    case C_SELF_LOOP:
        d[0].next = 0;
        break;
    case C_HUGE_LEN:
        d[1].len = 0xfffff000U;
        break;
    case C_ZERO_LEN:
        d[0].len = d[1].len = d[2].len = 0;
        break;
    case C_NEXT_OOB:
        d[1].next = (uint16_t)(vq->size + 5);
        break;
    case C_HEAD_OOB:
        head = (uint16_t)(vq->size + 3);
        break;
    case C_IND_OOB:
        setd(&d[0], BAD_ADDR, 48, VRING_DESC_F_INDIRECT, 0);
        break;
    case C_IND_LEN:
    case C_IND_NEST:
        setd(&h->itab[0], hdr, sizeof(struct vblk_hdr), N, 1);
        setd(&h->itab[1], data, 4096, N | W, 2);
        setd(&h->itab[2], st, 1, W, 0);
        if (c == C_IND_NEST)
            setd(&h->itab[1], dma_addr(h->itab), 48, N | VRING_DESC_F_INDIRECT, 2);
        setd(&d[0], dma_addr(h->itab), c == C_IND_LEN ? 47 : 48, VRING_DESC_F_INDIRECT, 0);
        break;
    }
    vq_add_raw_head(vq, head);
    if (c == C_AVAIL_JUMP)
        vq->avail_idx = (uint16_t)(vq->avail_idx + vq->size + 10);
    vq_kick(vq);
    if (!vq->notifies) /* the device suppressed it: notify anyway */
        wr16(vq->notify_addr, vq->index);
}

/* Wait for the device's reaction; returns a description and whether it
 * is acceptable. */
static bool react(struct hctx *h, bool strict, char *out, size_t outlen)
{
    struct virtq *vq = &h->b.vq;
    uint64_t dl = tsc_deadline(CASE_WAIT_MS);
    for (;;) {
        uint8_t s = virtio_status(&h->b.vd);
        if (s & VIRTIO_STATUS_NEEDS_RESET) {
            snprintf(out, outlen, "NEEDS_RESET (status 0x%x)", s);
            return true;
        }
        uint16_t used = *(volatile uint16_t *)&vq->used->idx;
        if (used != 0) {
            volatile struct vq_used_elem *e = &vq->used->ring[0];
            uint8_t st = *(volatile uint8_t *)h->status;
            snprintf(out, outlen, "completed: used id %u len %u, status byte %u", e->id, e->len, st);
            return st != VIRTIO_BLK_S_OK || !strict;
        }
        if (tsc_passed(dl)) {
            snprintf(out, outlen, "no reaction within %u ms (status 0x%x)", CASE_WAIT_MS, s);
            return false;
        }
        cpu_relax();
    }
}

static bool open_victim(struct test_ctx *t, struct hctx *h, uint32_t dev)
{
    char why[200];
    if (!vblk_open(&h->b, dev, 16, false, why, sizeof(why))) {
        fail(t, "victim: %s", why);
        return false;
    }
    return true;
}

/* Write, flush, read back and verify the first MiB (or less) of a device,
 * with a seed that differs from its previous contents. */
static bool sane_io(struct test_ctx *t, struct vblk *b, const char *what, uint64_t seed)
{
    uint64_t bytes = b->capacity * SECTOR < GOOD_BYTES ? b->capacity * SECTOR : GOOD_BYTES;
    uint8_t *buf = dma_alloc(65536, 4096);
    if (!buf || !bytes) {
        fail(t, "%s: no buffer or empty disk", what);
        return false;
    }
    for (uint64_t off = 0; off < bytes; off += 65536) {
        uint32_t len = bytes - off < 65536 ? (uint32_t)(bytes - off) : 65536;
        pattern_fill(buf, seed, off, len);
        uint8_t st = vblk_sync(b, VIRTIO_BLK_T_OUT, off / SECTOR, buf, len, IO_MS);
        if (st != VIRTIO_BLK_S_OK) {
            fail(t, "%s: write at sector %lu: status %u", what, (unsigned long)(off / SECTOR), st);
            return false;
        }
    }
    if (virtio_has(&b->vd, VIRTIO_BLK_F_FLUSH) && vblk_sync(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, IO_MS)) {
        fail(t, "%s: flush failed", what);
        return false;
    }
    for (uint64_t off = 0; off < bytes; off += 65536) {
        uint32_t len = bytes - off < 65536 ? (uint32_t)(bytes - off) : 65536;
        memset(buf, 0, len);
        uint8_t st = vblk_sync(b, VIRTIO_BLK_T_IN, off / SECTOR, buf, len, IO_MS);
        if (st != VIRTIO_BLK_S_OK || pattern_check(buf, seed, off, len) != len) {
            fail(t, "%s: read back at sector %lu: status %u, %s", what, (unsigned long)(off / SECTOR), st,
                 st ? "" : "data differs");
            return false;
        }
    }
    return true;
}

void test_hostile(struct test_ctx *t)
{
    struct hctx *h = &hc;
    const char *cl = t->bi->cmdline;
    uint64_t dev, good, level;
    bool strict;
    if (!cmdline_u64(cl, "probe.hostile.dev", 0, &dev) || !cmdline_u64(cl, "probe.hostile.good", 1, &good) ||
        !cmdline_u64(cl, "probe.hostile.level", 1, &level) || !cmdline_flag(cl, "probe.hostile.strict", false, &strict) ||
        dev == good) {
        fail(t, "bad probe.hostile.* value");
        return;
    }
    uint32_t n;
    const char *list = cmdline_value(cl, "probe.hostile.cases", &n);
    bool want[C_COUNT];
    for (int c = 0; c < C_COUNT; c++)
        want[c] = !list && cases[c].level <= (int)level;
    for (uint32_t i = 0; list && i < n;) {
        uint32_t j = i;
        while (j < n && list[j] != ',')
            j++;
        int c = 0;
        while (c < C_COUNT && !streq_n(list + i, j - i, cases[c].name))
            c++;
        if (c == C_COUNT) {
            fail(t, "unknown probe.hostile.cases entry");
            return;
        }
        want[c] = true;
        i = j + 1;
    }
    if (!pci_test_setup(t))
        return;
    h->hdr = dma_alloc(sizeof(struct vblk_hdr), 64);
    h->status = dma_alloc(64, 64);
    h->data = dma_alloc(4096, 4096);
    h->itab = dma_alloc(16 * 4, 64);
    if (!h->hdr || !h->status || !h->data || !h->itab) {
        fail(t, "out of memory");
        return;
    }
    uint32_t ran = 0, ok = 0;
    bool indirect = true;
    for (int c = 0; c < C_COUNT; c++) {
        if (!want[c])
            continue;
        if (!open_victim(t, h, (uint32_t)dev))
            return;
        if (!indirect || (cases[c].indirect && !(h->b.vd.offered & BIT(VIRTIO_F_INDIRECT_DESC)))) {
            say("hostile: %s: skipped (no VIRTIO_F_INDIRECT_DESC)", cases[c].name);
            continue;
        }
        char what[120];
        build(h, c);
        bool good_reaction = react(h, strict, what, sizeof(what));
        ran++;
        ok += good_reaction;
        say("hostile: %s: %s%s", cases[c].name, what, good_reaction ? "" : " -- NOT ACCEPTABLE");
        if (!good_reaction)
            fail(t, "%s: %s", cases[c].name, what);
        if (!virtio_reset(&h->b.vd)) {
            fail(t, "%s: victim does not finish its reset", cases[c].name);
            return;
        }
    }
    /* The victim, reset, works again. */
    if (open_victim(t, h, (uint32_t)dev) && sane_io(t, &h->b, "victim after reset", 7))
        say("hostile: victim works after reset (1 MiB written and verified)");
    virtio_reset(&h->b.vd);
    /* The other device works. */
    struct vblk *g = &h->b;
    char why[200];
    if (!vblk_open(g, (uint32_t)good, 128, true, why, sizeof(why))) {
        fail(t, "second device: %s", why);
        return;
    }
    if (sane_io(t, g, "second device", 9))
        say("hostile: second device works (1 MiB written and verified)");
    virtio_reset(&g->vd);
    say("hostile: %u cases, %u answered acceptably", ran, ok);
}
