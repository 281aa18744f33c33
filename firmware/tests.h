/*
 * The probe's test interface: each test gets the boot facts and the parsed
 * command line, reports failures with fail(), and may print detail lines
 * with say(). A test passes when it reported no failure.
 */
#ifndef HERD_PROBE_TESTS_H
#define HERD_PROBE_TESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "bootinfo.h"
#include "cmdline.h"

struct test_ctx {
    const struct bootinfo *bi;
    const struct probe_args *args;
    uint32_t nfail;
    char why[512]; /* failure reasons, "; "-separated */
};

void fail(struct test_ctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Spin at CPL3 until *counter >= target or `cycles` TSC cycles passed.
 * Returns the final counter value. */
uint64_t wait_count(volatile uint64_t *counter, uint64_t target, uint64_t cycles);

/* TSC budgets for waits. The TSC rate is unknown (no calibration source on
 * every VMM); 4e9 cycles is 1-4 s on anything from 1 to 4 GHz, far above
 * what a working interrupt path needs even on the slow PVM host. */
#define WAIT_CYCLES 4000000000ULL

void test_boot(struct test_ctx *t);
void test_serial(struct test_ctx *t);
void test_cpuid(struct test_ctx *t);
void test_timer(struct test_ctx *t);
void test_crash(struct test_ctx *t);
void test_pci(struct test_ctx *t);
void test_blk(struct test_ctx *t);
void test_net(struct test_ctx *t);
void test_hostile(struct test_ctx *t);
void test_msix(struct test_ctx *t);
void test_flood(struct test_ctx *t);
void test_ticks(struct test_ctx *t);

/* Device tests' common start: probe.pci, the DMA allocator, PCI scan.
 * Reports its own failure. */
bool pci_test_setup(struct test_ctx *t);

/* Linker symbols bounding the probe image. */
extern char __image_start[], __image_end[];

#endif
