/*
 * Test and timing hooks a guest can reach without drivers:
 * - debug-exit (QEMU isa-debug-exit compatible): a write of v to port 0x501
 *   ends herd-vmm with exit status (v << 1) | 1, so a test guest hands back
 *   its verdict as the process status.
 * - boot marker (Firecracker compatible): a write of 123 to MMIO 0xc0000000
 *   or port 0x3f0 logs "boot marker after N us" since herd-vmm started.
 */
#ifndef HERD_DEBUGPORT_H
#define HERD_DEBUGPORT_H

#include <stdint.h>

#include "herd/bus.h"
#include "herd/vm_stop.h"

struct debugport {
    struct vm_stopper stopper;
    uint64_t start_ns; /* CLOCK_MONOTONIC at process start */
    uint64_t first_marker_us; /* 0 until the first marker */
};

void debugport_init(struct debugport *d, const struct vm_stopper *stopper, uint64_t start_ns);
int debugport_register(struct debugport *d, struct bus *pio, struct bus *mmio);

/* Exit status for a debug-exit write of `value` (`len` bytes wide). */
int debugport_exit_status(uint32_t value);

/* CLOCK_MONOTONIC in ns, and the value recorded when the process started. */
uint64_t debugport_now_ns(void);
uint64_t debugport_process_start_ns(void);

#endif
