/*
 * Test "msix": virtio-blk completions by MSI-X interrupt (PCI 3.0 6.8.2,
 * virtio 4.1.5.1.2), i.e. the VMM's path from a used-ring update to an
 * interrupt at the guest's LAPIC (on herd-vmm: an irqfd on a KVM MSI route).
 *
 *  1. setup: the device is initialized up to DRIVER_OK; MSI-X is enabled
 *     with the function mask set; table entry 0 (config changes) gets
 *     message address 0xfee00000 (APIC id 0, physical) and data V (edge,
 *     fixed), entry 1 (request queue 0) data V+1, both unmasked;
 *     config_msix_vector = 0 and queue_msix_vector = 1 must read back
 *     (0xffff = the device could not allocate: fail); DRIVER_OK; function
 *     mask off. V = probe.msix.vector (default 0x40; every vector >= 32 has
 *     the probe's counting gate).
 *  2. singles: 16 requests one at a time (4 KiB write, read back and
 *     compare, alternately), each waited for with the CPL0 `sti; hlt`
 *     (ud2 op 7) and a LAPIC one-shot timer as a 5 ms watchdog, bounded
 *     by 1 s of TSC: the interrupt count of V+1 must grow, and right after
 *     the interrupt the completion must be in the used ring.
 *  3. batch: 2 MiB written and read back (verified) with 32 requests of
 *     64 KiB in flight; after every kick the probe sleeps (hlt) until an
 *     interrupt before it looks at the used ring, which is never spun on.
 *  4. suppression: interrupts off (EVENT_IDX: used_event far ahead; else
 *     VRING_AVAIL_F_NO_INTERRUPT): a completed request must not interrupt
 *     (20 ms with IF=1 at CPL3). The spec says SHOULD NOT; both VMMs honor
 *     it and on the PVM host every needless interrupt costs an exit.
 *  5. vector mask: entry 1 masked (read back), a request completed (the
 *     used index watched, the entry not taken), no interrupt for 20 ms, its PBA bit set; the entry's
 *     data changed to V+2 while masked; unmasked: the pending message must
 *     arrive on V+2 (not V+1) within 1 s and the PBA bit clear. Entry 1
 *     restored (masked, data V+1, unmasked): nothing pending, so nothing
 *     may arrive.
 *  6. function mask: the same with the function mask bit of the message
 *     control register instead of the entry's mask bit.
 *  Afterwards vectors unmapped, entries masked, MSI-X disabled, device
 *  reset. No interrupt may arrive on V (no config change happened).
 *
 * Keys: probe.msix.dev=N (which virtio-blk device, default 0; the first
 * 1 MiB + 2 MiB of it are overwritten), probe.msix.vector=V (first IDT
 * vector, 0x20-0xef, default 0x40), probe.msix.eventidx=0 (do not
 * negotiate VIRTIO_F_EVENT_IDX: interrupts controlled by the avail flags).
 */
#include "apic.h"
#include "cmdline.h"
#include "cpl0.h"
#include "dma.h"
#include "lib.h"
#include "pattern.h"
#include "serial.h"
#include "tests.h"
#include "tsc.h"
#include "virtio_blk.h"

#define PCI_CAP_ID_MSIX 0x11
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 1
#define MSI_ADDR 0xfee00000U /* destination APIC id 0, physical, no RH */

#define ENTRY_CONFIG 0
#define ENTRY_QUEUE 1
#define SEED 7
#define SINGLES 16
#define SINGLE_BYTES 4096
#define BATCH_START (1ULL << 20)
#define BATCH_END (3ULL << 20)
#define BATCH_DEPTH 32
#define BATCH_CHUNK 65536
#define IRQ_MS 1000   /* an interrupt that is due must come within this */
#define QUIET_MS 20   /* nothing may come in this long */
#define IO_MS 10000   /* no progress for this long: the device hung */
#define TIMER_DIV_16 0x3
#define WATCHDOG_COUNT (62500 * 5) /* 5 ms at KVM's 1 GHz APIC clock / 16 */

struct mx {
    struct test_ctx *t;
    struct vblk b;
    const struct pci_dev *p;
    uint8_t cap;
    uint32_t nvec;
    uint64_t table, pba;
    uint8_t vcfg, vq, valt;
    uint8_t *buf;
    uint64_t wakes;
};

static struct mx mx;

static uint16_t ctrl_read(struct mx *m) { return pci_read16(m->p, (uint16_t)(m->cap + 2)); }
static void ctrl_write(struct mx *m, uint16_t v) { pci_write16(m->p, (uint16_t)(m->cap + 2), v); }
static uint64_t entry(struct mx *m, uint32_t e) { return m->table + 16ULL * e; }

static void entry_program(struct mx *m, uint32_t e, uint8_t vector)
{
    wr32(entry(m, e) + 0, MSI_ADDR);
    wr32(entry(m, e) + 4, 0);
    wr32(entry(m, e) + 8, vector); /* edge, fixed, assert irrelevant */
}

static void entry_mask(struct mx *m, uint32_t e, bool masked)
{
    wr32(entry(m, e) + 12, masked ? MSIX_ENTRY_MASKED : 0);
}

static bool pba_bit(struct mx *m, uint32_t e) { return (rd32(m->pba + 4ULL * (e / 32)) >> (e % 32)) & 1; }

static uint64_t irqs(uint8_t v) { return irq_counts[v]; }

/* CPL0 `sti; hlt` until irq_counts[v] >= target; the LAPIC one-shot timer
 * (armed before each hlt) bounds each sleep, the TSC the whole wait. */
static uint64_t hlt_until(struct mx *m, uint8_t v, uint64_t target, uint64_t ms)
{
    uint64_t dl = tsc_deadline(ms);
    while (irqs(v) < target && !tsc_passed(dl)) {
        lapic_write(LAPIC_TIMER_INIT, WATCHDOG_COUNT);
        cpl0_wait();
        m->wakes++;
    }
    return irqs(v);
}

/* IF=1 at CPL3 and spin (interrupts taken as they come) for ms or until
 * irq_counts[v] >= target. */
static uint64_t spin_until(uint8_t v, uint64_t target, uint64_t ms)
{
    cpl3_set_if(1);
    uint64_t n = wait_count(&irq_counts[v], target, ms * tsc_per_ms());
    cpl3_set_if(0);
    return n;
}

/* Take interrupts still in flight from an earlier phase (an interrupt
 * for completions already drained) before counting from zero. */
static void settle(struct mx *m) { spin_until(m->vq, irqs(m->vq) + 1000, 2); }

/* Wait (polling the used index, bounded) until a completion is in the
 * used ring, without taking it: taking it would move used_event past it,
 * and a device that decides about the interrupt after publishing the
 * entry (QEMU's virtio-blk does, from a bottom half) would then rightly
 * send none. */
static bool wait_used(struct mx *m, const char *what)
{
    uint64_t dl = tsc_deadline(IRQ_MS);
    while (!vq_has_used(&m->b.vq)) {
        if (tsc_passed(dl)) {
            fail(m->t, "%s: request not completed within %u ms", what, IRQ_MS);
            return false;
        }
        cpu_relax();
    }
    return true;
}

/* Poll (no interrupt expected) for one completion and take it. */
static bool poll_one(struct mx *m, uint8_t *st, const char *what)
{
    uint64_t dl = tsc_deadline(IRQ_MS), cookie;
    bool bad = false;
    while (!vblk_poll(&m->b, &cookie, st, &bad)) {
        if (bad || tsc_passed(dl)) {
            fail(m->t, "%s: %s", what, bad ? "bogus used entry" : "request not completed within 1 s");
            return false;
        }
        cpu_relax();
    }
    if (*st != VIRTIO_BLK_S_OK) {
        fail(m->t, "%s: status %u", what, *st);
        return false;
    }
    return true;
}

static bool submit(struct mx *m, uint32_t type, uint64_t off, uint8_t *buf, uint32_t len, uint64_t cookie)
{
    if (type == VIRTIO_BLK_T_OUT)
        pattern_fill(buf, SEED, off, len);
    else
        memset(buf, 0, len);
    if (!vblk_submit(&m->b, type, off / SECTOR, buf, len, cookie)) {
        fail(m->t, "queue full");
        return false;
    }
    vblk_kick(&m->b);
    return true;
}

static bool check_data(struct mx *m, const uint8_t *buf, uint64_t off, uint32_t len)
{
    uint64_t i = pattern_check(buf, SEED, off, len);
    if (i == len)
        return true;
    fail(m->t, "read back at byte %lu: 0x%02x is not the pattern written", (unsigned long)(off + i), buf[i]);
    return false;
}

static bool setup(struct mx *m, uint64_t dev, uint64_t vbase, bool eventidx)
{
    struct test_ctx *t = m->t;
    char why[200];
    if (!vblk_setup(&m->b, (uint32_t)dev, 128, true, eventidx ? 0 : BIT(VIRTIO_F_EVENT_IDX), why, sizeof(why))) {
        fail(t, "%s", why);
        return false;
    }
    m->p = m->b.vd.pci;
    m->cap = pci_find_cap(m->p, PCI_CAP_ID_MSIX);
    if (!m->cap) {
        fail(t, "virtio-blk %02x:%02x.%u has no MSI-X capability", m->p->bus, m->p->dev, m->p->fn);
        return false;
    }
    uint16_t ctrl = ctrl_read(m);
    uint32_t tbl = pci_read32(m->p, (uint16_t)(m->cap + 4)), pba = pci_read32(m->p, (uint16_t)(m->cap + 8));
    m->nvec = (ctrl & 0x7ffU) + 1;
    uint64_t tsz, psz;
    uint64_t tbar = pci_map_bar(m->p, tbl & 7, &tsz, why, sizeof(why));
    if (!tbar) {
        fail(t, "MSI-X table: %s", why);
        return false;
    }
    uint64_t pbar = pci_map_bar(m->p, pba & 7, &psz, why, sizeof(why));
    if (!pbar) {
        fail(t, "MSI-X PBA: %s", why);
        return false;
    }
    say("msix: %02x:%02x.%u capability at 0x%x, control 0x%04x, %u vectors, table BAR %u+0x%x, PBA BAR %u+0x%x, "
        "features 0x%lx%s",
        m->p->bus, m->p->dev, m->p->fn, m->cap, ctrl, m->nvec, tbl & 7, tbl & ~7U, pba & 7, pba & ~7U,
        (unsigned long)m->b.vd.negotiated, m->b.vq.event_idx ? ", event-idx" : ", no event-idx");
    if ((tbl & ~7U) > tsz || 16ULL * m->nvec > tsz - (tbl & ~7U) || (pba & ~7U) > psz ||
        8ULL * ((m->nvec + 63) / 64) > psz - (pba & ~7U)) {
        fail(t, "MSI-X table or PBA outside its BAR (sizes 0x%lx, 0x%lx)", (unsigned long)tsz, (unsigned long)psz);
        return false;
    }
    if (m->nvec < 2) {
        fail(t, "MSI-X table has %u entries, need 2 (config + queue)", m->nvec);
        return false;
    }
    if (ctrl & MSIX_CTRL_ENABLE) {
        fail(t, "MSI-X already enabled before the driver enabled it");
        return false;
    }
    m->table = tbar + (tbl & ~7U);
    m->pba = pbar + (pba & ~7U);
    m->vcfg = (uint8_t)vbase;
    m->vq = (uint8_t)(vbase + 1);
    m->valt = (uint8_t)(vbase + 2);

    /* Enable with the function masked, program, map, unmask (as Linux). */
    ctrl_write(m, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
    entry_program(m, ENTRY_CONFIG, m->vcfg);
    entry_program(m, ENTRY_QUEUE, m->vq);
    entry_mask(m, ENTRY_CONFIG, false);
    entry_mask(m, ENTRY_QUEUE, false);
    for (uint32_t e = 0; e < 2; e++) {
        uint32_t a = rd32(entry(m, e)), h = rd32(entry(m, e) + 4), d = rd32(entry(m, e) + 8),
                 c = rd32(entry(m, e) + 12);
        if (a != MSI_ADDR || h != 0 || d != (e ? m->vq : m->vcfg) || (c & MSIX_ENTRY_MASKED)) {
            fail(t, "MSI-X entry %u reads back addr 0x%x:%08x data 0x%x control 0x%x", e, h, a, d, c);
            return false;
        }
    }
    uint16_t cv = virtio_map_vector(&m->b.vd, VIRTIO_MAP_CONFIG, ENTRY_CONFIG);
    uint16_t qv = virtio_map_vector(&m->b.vd, 0, ENTRY_QUEUE);
    say("msix: config_msix_vector %u reads %u, queue 0 msix_vector %u reads %u", ENTRY_CONFIG, cv, ENTRY_QUEUE, qv);
    if (cv != ENTRY_CONFIG || qv != ENTRY_QUEUE) {
        fail(t, "device did not accept the MSI-X vector mapping (config reads 0x%x, queue 0x%x)", cv, qv);
        return false;
    }
    virtio_driver_ok(&m->b.vd);
    ctrl_write(m, MSIX_CTRL_ENABLE);
    ctrl = ctrl_read(m);
    if ((ctrl & (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL)) != MSIX_CTRL_ENABLE) {
        fail(t, "MSI-X control reads 0x%04x after writing enable, function mask off", ctrl);
        return false;
    }
    if (pba_bit(m, ENTRY_CONFIG) || pba_bit(m, ENTRY_QUEUE)) {
        fail(t, "PBA shows pending vectors (0x%x) before any request", rd32(m->pba));
        return false;
    }
    return true;
}

/* Phase 2: one request at a time, waited for by interrupt. */
static bool singles(struct mx *m)
{
    uint64_t i0 = irqs(m->vq), w0 = m->wakes, t0 = rdtsc();
    vq_irq(&m->b.vq, true);
    for (uint32_t i = 0; i < SINGLES; i++) {
        bool wr = !(i & 1);
        uint64_t off = (uint64_t)(i / 2) * SINGLE_BYTES;
        uint64_t c0 = irqs(m->vq);
        if (!submit(m, wr ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, off, m->buf, SINGLE_BYTES, i))
            return false;
        if (hlt_until(m, m->vq, c0 + 1, IRQ_MS) == c0) {
            fail(m->t, "request %u (%s): no interrupt on vector 0x%x within %u ms (%s in the used ring, PBA 0x%x)", i,
                 wr ? "write" : "read", m->vq, IRQ_MS, vq_has_used(&m->b.vq) ? "completion" : "nothing",
                 rd32(m->pba));
            return false;
        }
        uint64_t cookie;
        uint8_t st;
        bool bad;
        if (!vblk_poll(&m->b, &cookie, &st, &bad)) {
            fail(m->t, "request %u: interrupt on vector 0x%x but %s in the used ring", i, m->vq,
                 bad ? "a bogus entry" : "no completion");
            return false;
        }
        if (st != VIRTIO_BLK_S_OK || cookie != i) {
            fail(m->t, "request %u: status %u, cookie %lu", i, st, (unsigned long)cookie);
            return false;
        }
        if (!wr && !check_data(m, m->buf, off, SINGLE_BYTES))
            return false;
    }
    say("msix: %u single requests, each completed by an interrupt on vector 0x%x (%lu interrupts, %lu wakes), "
        "%lu ms",
        SINGLES, m->vq, (unsigned long)(irqs(m->vq) - i0), (unsigned long)(m->wakes - w0),
        (unsigned long)tsc_ms_since(t0));
    if (irqs(m->vq) - i0 < SINGLES)
        fail(m->t, "%lu interrupts for %u requests", (unsigned long)(irqs(m->vq) - i0), SINGLES);
    return true;
}

/* Phase 3: many requests in flight; the only waiting is hlt. */
static bool batch(struct mx *m, uint32_t type)
{
    uint8_t *bufs = m->buf;
    uint16_t freebuf[BATCH_DEPTH], nfree = 0;
    for (uint16_t i = 0; i < BATCH_DEPTH; i++)
        freebuf[nfree++] = i;
    uint64_t next = BATCH_START, i0 = irqs(m->vq), w0 = m->wakes, empty = 0, unsignalled = 0, reqs = 0, t0 = rdtsc();
    struct virtq *vq = &m->b.vq;
    vq_irq(vq, true);
    for (;;) {
        bool added = false;
        while (next < BATCH_END && nfree) {
            uint16_t bi = freebuf[--nfree];
            uint8_t *buf = bufs + (uint64_t)bi * BATCH_CHUNK;
            if (type == VIRTIO_BLK_T_OUT)
                pattern_fill(buf, SEED, next, BATCH_CHUNK);
            if (!vblk_submit(&m->b, type, next / SECTOR, buf, BATCH_CHUNK, next << 8 | bi)) {
                nfree++;
                break;
            }
            next += BATCH_CHUNK;
            added = true;
            reqs++;
        }
        if (added)
            vblk_kick(&m->b);
        /* Sleep first: completions are looked for only after an interrupt.
         * After a kick one is always due (everything was drained, so
         * used_event is the next used index, and IF=0 keeps an early one
         * pending in the LAPIC); without a kick, completions that slipped
         * in between the last drain and the re-arm are the one race. */
        vq_irq(vq, true);
        if (added || !vq_has_used(vq)) {
            uint64_t c0 = irqs(m->vq);
            if (hlt_until(m, m->vq, c0 + 1, IO_MS) == c0) {
                fail(m->t, "batch: no interrupt on vector 0x%x for %u ms with %u requests in flight (%s in the used "
                     "ring, PBA 0x%x)",
                     m->vq, IO_MS, BATCH_DEPTH - nfree, vq_has_used(vq) ? "completions" : "nothing", rd32(m->pba));
                return false;
            }
            if (!vq_has_used(vq))
                empty++;
        } else {
            unsignalled++;
        }
        uint64_t cookie;
        uint8_t st;
        bool bad = false;
        while (vblk_poll(&m->b, &cookie, &st, &bad)) {
            uint16_t bi = (uint16_t)(cookie & 0xff);
            uint64_t off = cookie >> 8;
            if (st != VIRTIO_BLK_S_OK) {
                fail(m->t, "batch %s at byte %lu: status %u", type == VIRTIO_BLK_T_OUT ? "write" : "read",
                     (unsigned long)off, st);
                return false;
            }
            if (type == VIRTIO_BLK_T_IN && !check_data(m, bufs + (uint64_t)bi * BATCH_CHUNK, off, BATCH_CHUNK))
                return false;
            freebuf[nfree++] = bi;
        }
        if (bad) {
            fail(m->t, "batch: bogus used entry");
            return false;
        }
        if (next >= BATCH_END && nfree == BATCH_DEPTH)
            break;
    }
    say("msix: batch %s of %lu KiB: %lu requests of %u KiB, depth %u, %lu interrupts, %lu wakes, %lu interrupts "
        "found nothing new, %lu drains without sleeping, %lu ms",
        type == VIRTIO_BLK_T_OUT ? "write" : "read+verify", (unsigned long)((BATCH_END - BATCH_START) >> 10),
        (unsigned long)reqs, BATCH_CHUNK >> 10, BATCH_DEPTH, (unsigned long)(irqs(m->vq) - i0),
        (unsigned long)(m->wakes - w0), (unsigned long)empty, (unsigned long)unsignalled,
        (unsigned long)tsc_ms_since(t0));
    if (irqs(m->vq) == i0)
        fail(m->t, "batch: no interrupts");
    return true;
}

/* Phase 4: interrupts turned off in the ring. */
static bool suppressed(struct mx *m)
{
    vq_irq(&m->b.vq, false);
    settle(m);
    uint64_t c0 = irqs(m->vq);
    uint8_t st;
    if (!submit(m, VIRTIO_BLK_T_IN, 0, m->buf, SINGLE_BYTES, 100) || !poll_one(m, &st, "suppressed"))
        return false;
    uint64_t n = spin_until(m->vq, c0 + 1, QUIET_MS) - c0;
    say("msix: interrupts off (%s): request completed, %lu interrupts in %u ms",
        m->b.vq.event_idx ? "used_event far ahead" : "VRING_AVAIL_F_NO_INTERRUPT", (unsigned long)n, QUIET_MS);
    if (n)
        fail(m->t, "interrupt although the driver suppressed it (%s)",
             m->b.vq.event_idx ? "used_event" : "VRING_AVAIL_F_NO_INTERRUPT");
    return true;
}

/* Phases 5 and 6: a completion while masked (entry or function) leaves a
 * pending bit and no interrupt; unmasking delivers it. */
static bool masked(struct mx *m, bool function)
{
    const char *what = function ? "function mask" : "vector mask";
    vq_irq(&m->b.vq, true);
    settle(m);
    if (function) {
        ctrl_write(m, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
        uint16_t c = ctrl_read(m);
        if (!(c & MSIX_CTRL_MASKALL)) {
            fail(m->t, "function mask: control reads 0x%04x after setting it", c);
            return false;
        }
    } else {
        entry_mask(m, ENTRY_QUEUE, true);
        uint32_t c = rd32(entry(m, ENTRY_QUEUE) + 12);
        if (!(c & MSIX_ENTRY_MASKED)) {
            fail(m->t, "vector mask: entry control reads 0x%x after masking", c);
            return false;
        }
    }
    uint8_t target = function ? m->vq : m->valt;
    uint64_t c0 = irqs(m->vq), a0 = irqs(m->valt);
    uint8_t st;
    if (!submit(m, VIRTIO_BLK_T_IN, 0, m->buf, SINGLE_BYTES, 200) || !wait_used(m, what))
        return false;
    uint64_t early = spin_until(m->vq, c0 + 1, QUIET_MS) - c0;
    bool pend = pba_bit(m, ENTRY_QUEUE);
    if (!function)
        wr32(entry(m, ENTRY_QUEUE) + 8, m->valt); /* new data while masked */
    if (function)
        ctrl_write(m, MSIX_CTRL_ENABLE);
    else
        entry_mask(m, ENTRY_QUEUE, false);
    uint64_t t0 = rdtsc();
    uint64_t got = spin_until(target, (function ? c0 : a0) + 1, IRQ_MS) - (function ? c0 : a0);
    uint64_t us = (rdtsc() - t0) * 1000 / tsc_per_ms();
    bool pend_after = pba_bit(m, ENTRY_QUEUE);
    if (!poll_one(m, &st, what))
        return false;
    uint64_t stray = function ? 0 : irqs(m->vq) - c0;
    char how[48] = "";
    if (!function)
        snprintf(how, sizeof(how), " (data changed to 0x%x first)", m->valt);
    say("msix: %s: request completed while masked, %lu interrupts in %u ms, PBA bit %u; unmasked%s: %lu "
        "interrupt(s) on 0x%x after %lu us, PBA bit %u",
        what, (unsigned long)early, QUIET_MS, pend, how, (unsigned long)got, target, (unsigned long)us, pend_after);
    if (early)
        fail(m->t, "%s: interrupt delivered while masked", what);
    if (!pend)
        fail(m->t, "%s: PBA bit %u not set for a masked vector with a pending message", what, ENTRY_QUEUE);
    if (!got)
        fail(m->t, "%s: pending interrupt not delivered within %u ms of unmasking", what, IRQ_MS);
    if (stray)
        fail(m->t, "%s: pending message delivered with the old data (vector 0x%x), not the data written while "
             "masked (0x%x)", what, m->vq, m->valt);
    if (pend_after)
        fail(m->t, "%s: PBA bit still set after the pending message was delivered", what);
    if (!function) {
        /* Back to V+1; nothing is pending now, so unmasking sends nothing. */
        entry_mask(m, ENTRY_QUEUE, true);
        wr32(entry(m, ENTRY_QUEUE) + 8, m->vq);
        entry_mask(m, ENTRY_QUEUE, false);
        uint64_t q0 = irqs(m->vq), x0 = irqs(m->valt);
        spin_until(m->vq, q0 + 1, QUIET_MS);
        if (irqs(m->vq) != q0 || irqs(m->valt) != x0)
            fail(m->t, "vector mask: interrupt after unmasking with nothing pending");
    }
    return !m->t->nfail;
}

static void teardown(struct mx *m)
{
    if (!m->b.vd.common)
        return; /* never got as far as the device */
    if (m->b.vq.avail)
        vq_irq(&m->b.vq, false);
    if (m->cap) {
        virtio_map_vector(&m->b.vd, 0, VIRTIO_MSI_NO_VECTOR);
        virtio_map_vector(&m->b.vd, VIRTIO_MAP_CONFIG, VIRTIO_MSI_NO_VECTOR);
        if (m->table) {
            entry_mask(m, ENTRY_QUEUE, true);
            entry_mask(m, ENTRY_CONFIG, true);
        }
        ctrl_write(m, 0);
    }
    uint8_t st = virtio_status(&m->b.vd);
    if (st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(m->t, "device status 0x%x", st);
    if (m->b.vd.common && !virtio_reset(&m->b.vd))
        fail(m->t, "device did not finish its reset");
}

void test_msix(struct test_ctx *t)
{
    struct mx *m = &mx;
    memset(m, 0, sizeof(*m));
    m->t = t;
    const char *cl = t->bi->cmdline;
    uint64_t dev, vbase;
    bool eventidx;
    if (!cmdline_u64(cl, "probe.msix.dev", 0, &dev) || !cmdline_u64(cl, "probe.msix.vector", 0x40, &vbase) ||
        !cmdline_flag(cl, "probe.msix.eventidx", true, &eventidx) || vbase < VEC_FIRST_IRQ || vbase + 2 >= 0xf0 ||
        (vbase <= VEC_TIMER && vbase + 2 >= VEC_TIMER) || (vbase <= VEC_SERIAL && vbase + 2 >= VEC_SERIAL)) {
        fail(t, "bad probe.msix.* value (vector: 0x20-0xed, not overlapping 0x24 or 0x30)");
        return;
    }
    if (!pci_test_setup(t))
        return;
    tsc_per_ms(); /* calibrate before the timer becomes the watchdog */
    lapic_enable();
    lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER); /* one-shot, armed per hlt */
    m->buf = dma_alloc((uint64_t)BATCH_DEPTH * BATCH_CHUNK, 4096);
    if (!m->buf) {
        fail(t, "out of memory for buffers");
        return;
    }
    uint64_t cfg0 = 0;
    if (setup(m, dev, vbase, eventidx)) {
        if (m->b.capacity * SECTOR < BATCH_END) {
            fail(t, "disk smaller than %llu MiB", BATCH_END >> 20);
        } else {
            cfg0 = irqs(m->vcfg);
            uint32_t n;
            const char *ph = cmdline_value(cl, "probe.msix.phases", &n);
            if (!ph) {
                ph = "swrovf";
                n = 6;
            }
            bool ok = true;
            for (uint32_t i = 0; i < n && ok; i++) {
                switch (ph[i]) {
                case 's': ok = singles(m); break;
                case 'w': ok = batch(m, VIRTIO_BLK_T_OUT); break;
                case 'r': ok = batch(m, VIRTIO_BLK_T_IN); break;
                case 'o': ok = suppressed(m); break;
                case 'v': ok = masked(m, false); break;
                case 'f': ok = masked(m, true); break;
                default: fail(t, "bad probe.msix.phases letter '%c' (s w r o v f)", ph[i]); ok = false;
                }
            }
            if (irqs(m->vcfg) != cfg0)
                fail(t, "%lu interrupts on the config vector 0x%x (no config change happened)",
                     (unsigned long)(irqs(m->vcfg) - cfg0), m->vcfg);
        }
    }
    teardown(m);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0);
}
