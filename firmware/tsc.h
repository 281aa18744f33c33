/*
 * Wall-clock bounds for the device tests: the TSC rate, measured once
 * against the LAPIC timer (KVM's in-kernel LAPIC counts at 1 GHz).
 */
#ifndef HERD_PROBE_TSC_H
#define HERD_PROBE_TSC_H

#include <stdint.h>

/* TSC cycles per millisecond (calibrated on first use; 2.5e6 if the
 * calibration gives an implausible value). */
uint64_t tsc_per_ms(void);
/* A deadline `ms` from now, and whether it has passed. */
uint64_t tsc_deadline(uint64_t ms);
int tsc_passed(uint64_t deadline);
/* Milliseconds since the TSC value `start`. */
uint64_t tsc_ms_since(uint64_t start);

#endif
