/*
 * debug-exit and boot-marker devices. The process start time is taken in a
 * constructor, before main() and before any VM setup, so the boot marker
 * figure includes everything herd-vmm itself spends (the same basis as
 * Firecracker's boot timer).
 */
#include "herd/debugport.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "herd/layout.h"
#include "herd/log.h"

static uint64_t process_start_ns;

uint64_t debugport_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor(101))) static void record_process_start(void)
{
    process_start_ns = debugport_now_ns();
}

uint64_t debugport_process_start_ns(void)
{
    return process_start_ns;
}

void debugport_init(struct debugport *d, const struct vm_stopper *stopper, uint64_t start_ns)
{
    memset(d, 0, sizeof(*d));
    d->stopper = *stopper;
    d->start_ns = start_ns;
}

int debugport_exit_status(uint32_t value)
{
    return (int)(((value << 1) | 1) & 0xff);
}

static uint32_t value_of(const uint8_t *data, unsigned len)
{
    uint32_t v = 0;

    memcpy(&v, data, len > sizeof(v) ? sizeof(v) : len);
    return v;
}

static void exit_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct debugport *d = opaque;
    uint32_t value = value_of(data, len);
    char why[64];

    snprintf(why, sizeof(why), "guest wrote %#x to debug-exit", value);
    vm_stopper_stop(&d->stopper, debugport_exit_status(value), why);
}

static void marker_write(struct debugport *d, const uint8_t *data, const char *via)
{
    uint64_t us;

    if (data[0] != BOOT_MARKER_MAGIC)
        return;
    us = (debugport_now_ns() - d->start_ns) / 1000;
    if (!__atomic_load_n(&d->first_marker_us, __ATOMIC_RELAXED))
        __atomic_store_n(&d->first_marker_us, us ? us : 1, __ATOMIC_RELAXED);
    log_info_guest("boot marker after %llu us (%s)", (unsigned long long)us, via);
}

static void marker_pio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    marker_write(opaque, data, "port 0x3f0");
}

static void marker_mmio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    if (offset == 0)
        marker_write(opaque, data, "mmio 0xc0000000");
}

int debugport_register(struct debugport *d, struct bus *pio, struct bus *mmio)
{
    /* Four ports wide so a 32-bit write to 0x501 is claimed whole. */
    struct bus_range exit_range = {.base = PORT_DEBUG_EXIT, .size = 4, .name = "debug-exit",
                                   .write = exit_write, .opaque = d};
    struct bus_range marker_port = {.base = PORT_BOOT_MARKER, .size = 1, .name = "boot-marker",
                                    .write = marker_pio_write, .opaque = d};
    struct bus_range marker_mmio = {.base = LAYOUT_BOOT_MARKER_MMIO, .size = 8,
                                    .name = "boot-marker", .write = marker_mmio_write,
                                    .opaque = d};
    int rc;

    rc = bus_register(pio, &exit_range);
    if (!rc)
        rc = bus_register(pio, &marker_port);
    if (!rc)
        rc = bus_register(mmio, &marker_mmio);
    return rc;
}
