/*
 * Test "timer": LAPIC timer interrupts reach the probe. Periodic timer on
 * VEC_TIMER; none is taken while CPL3 runs with IF=0; CPL3 spins with IF=1
 * until enough ticks were counted by the CPL0 handler (bounded by the TSC),
 * the TSC advanced meanwhile, and a CPL0 hlt (OP_WAIT) wakes up on the next
 * tick.
 */
#include "apic.h"
#include "cpl0.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"

#define TICKS 5
/* KVM's APIC timer runs at 1 GHz; divide by 16 and 62500 = 1 ms period. */
#define TIMER_DIV_16 0x3
#define TIMER_COUNT 62500
/* 10e6 TSC cycles: 2-10 ms for a 1-5 GHz TSC, i.e. at least two periods. */
#define MASKED_CYCLES 10000000ULL

void test_timer(struct test_ctx *t)
{
    volatile uint64_t *cnt = &irq_counts[VEC_TIMER];
    lapic_enable();
    uint32_t id = lapic_read(LAPIC_ID) >> 24;
    if (id != 0)
        fail(t, "LAPIC id %u on the BSP, expected 0", id);

    lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_PERIODIC);
    uint64_t base = *cnt;
    lapic_write(LAPIC_TIMER_INIT, TIMER_COUNT);
    uint32_t cur = lapic_read(LAPIC_TIMER_CUR);

    /* With IF=0 at CPL3 the ticks must stay pending (the probe relies on
     * that to keep interrupts out of the other tests): spin a few periods. */
    uint64_t masked = wait_count(cnt, base + 1, MASKED_CYCLES) - base;
    uint64_t t0 = rdtsc();
    cpl3_set_if(1);
    uint64_t got = wait_count(cnt, base + TICKS, WAIT_CYCLES);
    uint64_t t1 = rdtsc();
    uint64_t woke = 0;
    if (got - base >= TICKS) {
        uint64_t before = *cnt;
        cpl0_wait();
        woke = *cnt - before;
    }
    cpl3_set_if(0);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0);

    if (cur == 0 || cur > TIMER_COUNT)
        fail(t, "timer current count %u after loading %u", cur, TIMER_COUNT);
    if (masked)
        fail(t, "%lu timer interrupts delivered while CPL3 had IF=0", (unsigned long)masked);
    if (t1 <= t0)
        fail(t, "TSC did not advance (0x%lx -> 0x%lx)", (unsigned long)t0, (unsigned long)t1);
    if (got - base < TICKS) {
        fail(t, "%lu of %u timer interrupts within %lu TSC cycles", (unsigned long)(got - base), TICKS,
             (unsigned long)(t1 - t0));
        return;
    }
    if (woke == 0)
        fail(t, "hlt returned without a timer interrupt");
    say("timer: %u interrupts in %lu TSC cycles", TICKS, (unsigned long)(t1 - t0));
}
