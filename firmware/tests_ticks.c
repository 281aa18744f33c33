/*
 * Test "ticks": a guest that keeps working for a while, for snapshot and
 * restore (tests/integration/snapshot-probe.sh). The LAPIC timer interrupts
 * every 1 ms with interrupts on at CPL3; a round waits probe.ticks.report ms
 * of TSC time (default 100) and prints
 *   ticks: round R ticks T (+D in M ms) [disk ok]
 * for probe.ticks.rounds rounds (default 40). Each round checks the ticks D
 * of its own M milliseconds: never more than M + 2 (no interrupt delivered
 * twice) and at least one (a restore that lost the timer stops it, round
 * after round). Fewer ticks than milliseconds are no error: KVM merges the
 * ticks of a periodic timer while the vCPU does not run (a busy host), and
 * on a host whose guests read the host's TSC (PVM) the round that spans a
 * restore also counts the time the guest spent in the snapshot. With probe.ticks.disk=1 each round also
 * writes sector R of the first disk with a pattern of R and reads back
 * sector R-1, written by the round before (before the snapshot, for the
 * first round after a restore).
 */
#include "apic.h"
#include "cpl0.h"
#include "dma.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"
#include "tsc.h"
#include "virtio_blk.h"

#define TIMER_DIV_16 0x3
#define TIMER_COUNT 62500 /* 1 ms at KVM's 1 GHz APIC clock / 16 */

static uint8_t pattern(uint64_t round, uint32_t i)
{
    return (uint8_t)(round * 31 + i * 7 + 1);
}

/* Writes sector `round`, reads back sector round-1; false on a mismatch. */
static bool disk_round(struct test_ctx *t, struct vblk *b, uint8_t *buf, uint64_t round)
{
    for (uint32_t i = 0; i < SECTOR; i++)
        buf[i] = pattern(round, i);
    if (vblk_sync(b, VIRTIO_BLK_T_OUT, round, buf, SECTOR, 2000) != 0) {
        fail(t, "round %lu: disk write failed", (unsigned long)round);
        return false;
    }
    if (round == 0)
        return true;
    memset(buf, 0, SECTOR);
    if (vblk_sync(b, VIRTIO_BLK_T_IN, round - 1, buf, SECTOR, 2000) != 0) {
        fail(t, "round %lu: disk read failed", (unsigned long)round);
        return false;
    }
    for (uint32_t i = 0; i < SECTOR; i++) {
        if (buf[i] != pattern(round - 1, i)) {
            fail(t, "round %lu: sector %lu byte %u is %u, expected %u", (unsigned long)round,
                 (unsigned long)(round - 1), i, buf[i], pattern(round - 1, i));
            return false;
        }
    }
    return true;
}

static bool check_ticks(struct test_ctx *t, uint64_t round, uint64_t ticks, uint64_t ms)
{
    if (ticks > ms + 2) {
        fail(t, "round %lu: %lu timer interrupts in %lu ms: some came twice", (unsigned long)round,
             (unsigned long)ticks, (unsigned long)ms);
        return false;
    }
    if (ticks == 0 && ms >= 5) {
        fail(t, "round %lu: no timer interrupt in %lu ms: the timer stopped", (unsigned long)round,
             (unsigned long)ms);
        return false;
    }
    return true;
}

void test_ticks(struct test_ctx *t)
{
    const char *cl = t->bi->cmdline;
    volatile uint64_t *cnt = &irq_counts[VEC_TIMER];
    uint64_t rounds, report, base, first, t0;
    bool disk;
    struct vblk b;
    uint8_t *buf = 0;
    char why[200];

    if (!cmdline_u64(cl, "probe.ticks.rounds", 40, &rounds) || rounds == 0 || rounds > 100000 ||
        !cmdline_u64(cl, "probe.ticks.report", 100, &report) || report == 0 || report > 60000 ||
        !cmdline_flag(cl, "probe.ticks.disk", false, &disk)) {
        fail(t, "bad probe.ticks.rounds (1-100000), probe.ticks.report (1-60000 ms) or "
                "probe.ticks.disk (0 or 1)");
        return;
    }
    if (disk) {
        if (!pci_test_setup(t))
            return;
        if (!vblk_open(&b, 0, 16, false, why, sizeof(why))) {
            fail(t, "%s", why);
            return;
        }
        buf = dma_alloc(SECTOR, 4096);
        if (!buf) {
            fail(t, "out of memory for the disk buffer");
            return;
        }
    }
    tsc_per_ms(); /* calibrate first: it borrows the LAPIC timer */
    lapic_enable();
    lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_PERIODIC);
    base = first = *cnt;
    t0 = rdtsc();
    lapic_write(LAPIC_TIMER_INIT, TIMER_COUNT);
    cpl3_set_if(1);
    for (uint64_t r = 0; r < rounds; r++) {
        while (tsc_ms_since(t0) < report)
            cpu_relax();
        uint64_t ms = tsc_ms_since(t0), now = *cnt, ticks = now - base;
        bool ok = check_ticks(t, r, ticks, ms);

        t0 = rdtsc();
        base = now;
        if (ok && disk)
            ok = disk_round(t, &b, buf, r);
        say("ticks: round %lu ticks %lu (+%lu in %lu ms)%s", (unsigned long)r,
            (unsigned long)(now - first), (unsigned long)ticks, (unsigned long)ms,
            disk && ok ? " disk ok" : "");
        if (!ok)
            break;
    }
    cpl3_set_if(0);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0);
}
