/*
 * debug-exit (QEMU isa-debug-exit compatible) and the boot marker
 * (Firecracker compatible), driven through the port and MMIO buses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/bus.h"
#include "herd/debugport.h"
#include "herd/layout.h"

struct ctx {
    struct debugport d;
    struct bus pio, mmio;
    int stops;
    int status;
    char reason[128];
};

static void fake_stop(void *opaque, int status, const char *reason)
{
    struct ctx *c = opaque;

    c->stops++;
    c->status = status;
    snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    struct vm_stopper st;

    if (!c)
        return -1;
    st.stop = fake_stop;
    st.ctx = c;
    c->status = -1;
    /* Pretend herd-vmm started 5 ms ago. */
    debugport_init(&c->d, &st, debugport_now_ns() - 5000000ULL);
    bus_init(&c->pio, "pio");
    bus_init(&c->mmio, "mmio");
    if (debugport_register(&c->d, &c->pio, &c->mmio))
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_exit_status_mapping(void **state)
{
    assert_int_equal(debugport_exit_status(0), 1);
    assert_int_equal(debugport_exit_status(1), 3);
    assert_int_equal(debugport_exit_status(0x10), 0x21);
    assert_int_equal(debugport_exit_status(0x7f), 0xff);
    /* The process status has 8 bits: QEMU's ((v << 1) | 1) & 0xff. */
    for (uint32_t v = 0; v < 0x400; v++)
        assert_int_equal(debugport_exit_status(v), ((v << 1) | 1) & 0xff);
    assert_int_equal(debugport_exit_status(0x80), 1);
    assert_int_equal(debugport_exit_status(0xff), 0xff);
    assert_int_equal(debugport_exit_status(0x100), 1);
    assert_int_equal(debugport_exit_status(0xffffffffu), 0xff);
    /* Always odd: never confusable with a clean 0 or herd-vmm's own 2 and 4. */
    for (uint32_t v = 0; v < 0x400; v++)
        assert_int_equal(debugport_exit_status(v) & 1, 1);
}

static void test_debug_exit_byte_write(void **state)
{
    struct ctx *c = *state;
    uint8_t v = 0x10;

    assert_true(bus_dispatch(&c->pio, PORT_DEBUG_EXIT, &v, 1, true));
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->status, 0x21);
    assert_non_null(strstr(c->reason, "debug-exit"));
}

static void test_debug_exit_wide_writes(void **state)
{
    struct ctx *c = *state;
    uint8_t w4[4] = {0x03, 0x00, 0x00, 0x00}, w2[2] = {0x02, 0x01};

    assert_true(bus_dispatch(&c->pio, PORT_DEBUG_EXIT, w4, 4, true));
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->status, 7);
    /* 0x0102: the value is truncated like QEMU's, to (0x205 & 0xff). */
    assert_true(bus_dispatch(&c->pio, PORT_DEBUG_EXIT, w2, 2, true));
    assert_int_equal(c->stops, 2);
    assert_int_equal(c->status, 0x05);
}

static void test_debug_exit_reads_do_nothing(void **state)
{
    struct ctx *c = *state;
    uint8_t v = 0;

    assert_true(bus_dispatch(&c->pio, PORT_DEBUG_EXIT, &v, 1, false));
    assert_int_equal(v, 0xff);
    assert_int_equal(c->stops, 0);
    /* Neighbouring ports are someone else's. */
    v = 1;
    assert_false(bus_dispatch(&c->pio, PORT_DEBUG_EXIT - 1, &v, 1, true));
    assert_int_equal(c->stops, 0);
}

static void test_boot_marker_port(void **state)
{
    struct ctx *c = *state;
    uint8_t v = 122;
    uint64_t first;

    assert_true(bus_dispatch(&c->pio, PORT_BOOT_MARKER, &v, 1, true));
    assert_int_equal(c->d.first_marker_us, 0); /* not the magic value */
    v = BOOT_MARKER_MAGIC;
    assert_true(bus_dispatch(&c->pio, PORT_BOOT_MARKER, &v, 1, true));
    first = c->d.first_marker_us;
    assert_true(first >= 5000);                /* measured from start_ns */
    assert_true(first < 60ULL * 1000 * 1000);  /* and not from some other epoch */
    /* Later markers do not move the first one. */
    assert_true(bus_dispatch(&c->pio, PORT_BOOT_MARKER, &v, 1, true));
    assert_int_equal(c->d.first_marker_us, first);
    assert_int_equal(c->stops, 0);
}

static void test_boot_marker_mmio(void **state)
{
    struct ctx *c = *state;
    uint8_t v[4] = {BOOT_MARKER_MAGIC, 0, 0, 0};

    /* Only offset 0 is the marker register. */
    assert_true(bus_dispatch(&c->mmio, LAYOUT_BOOT_MARKER_MMIO + 4, v, 1, true));
    assert_int_equal(c->d.first_marker_us, 0);
    v[0] = 0;
    assert_true(bus_dispatch(&c->mmio, LAYOUT_BOOT_MARKER_MMIO, v, 4, true));
    assert_int_equal(c->d.first_marker_us, 0);
    v[0] = BOOT_MARKER_MAGIC;
    assert_true(bus_dispatch(&c->mmio, LAYOUT_BOOT_MARKER_MMIO, v, 4, true));
    assert_true(c->d.first_marker_us >= 5000);
    assert_int_equal(c->stops, 0);
}

static void test_register_twice_refused(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(debugport_register(&c->d, &c->pio, &c->mmio), -EEXIST);
}

static void test_process_start(void **state)
{
    uint64_t start = debugport_process_start_ns(), now = debugport_now_ns();

    assert_true(start > 0);
    assert_true(start <= now);
    assert_true(debugport_now_ns() >= now); /* monotonic */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status_mapping),
        T(test_debug_exit_byte_write),
        T(test_debug_exit_wide_writes),
        T(test_debug_exit_reads_do_nothing),
        T(test_boot_marker_port),
        T(test_boot_marker_mmio),
        T(test_register_twice_refused),
        cmocka_unit_test(test_process_start),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
