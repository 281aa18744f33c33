/*
 * TSC calibration against the LAPIC timer (see tsc.h). Done once: a
 * one-shot count from 0xffffffff at divide-by-1 (1 ns per count on KVM),
 * sampled together with the TSC about 20 ms apart. The timer is stopped
 * and masked afterwards.
 */
#include "tsc.h"

#include "apic.h"
#include "cpl0.h"

#define TIMER_DIV_1 0xb
#define SPAN_NS 20000000U
#define FALLBACK 2500000ULL

static uint64_t per_ms;

uint64_t tsc_per_ms(void)
{
    if (per_ms)
        return per_ms;
    lapic_enable();
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | 0x30);
    lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_1);
    lapic_write(LAPIC_TIMER_INIT, 0xffffffffU);
    uint32_t c0 = lapic_read(LAPIC_TIMER_CUR);
    uint64_t t0 = rdtsc(), t1 = t0;
    uint32_t c1 = c0;
    /* Bounded by the TSC too, in case the timer does not count. */
    while (c0 - c1 < SPAN_NS && rdtsc() - t0 < 400000000ULL) {
        c1 = lapic_read(LAPIC_TIMER_CUR);
        t1 = rdtsc();
    }
    lapic_write(LAPIC_TIMER_INIT, 0);
    uint64_t ns = c0 - c1;
    per_ms = ns >= SPAN_NS / 2 ? (t1 - t0) * 1000000ULL / ns : 0;
    if (per_ms < 100000ULL || per_ms > 10000000ULL) /* 0.1-10 GHz */
        per_ms = FALLBACK;
    return per_ms;
}

uint64_t tsc_deadline(uint64_t ms) { return rdtsc() + ms * tsc_per_ms(); }
int tsc_passed(uint64_t deadline) { return (int64_t)(rdtsc() - deadline) >= 0; }
uint64_t tsc_ms_since(uint64_t start) { return (rdtsc() - start) / tsc_per_ms(); }
