/*
 * The Generic Event Device's event register and interrupt line: a press
 * raises the line (level) and sets bit 0; a guest read returns the pending
 * events once, clears them and lowers the line; presses before the read
 * merge; writes, wide and misplaced accesses do nothing; unknown events are
 * refused; and presses from another thread while a vCPU reads lose nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>

#include "herd/acpi_ged.h"
#include "herd/bus.h"

struct ctx {
    struct acpi_ged ged;
    struct bus pio;
    int level;        /* the line as the fake IRQ chip sees it */
    int raises, lowers;
};

static void fake_irq(void *opaque, int level)
{
    struct ctx *c = opaque;

    if (level)
        c->raises++;
    else
        c->lowers++;
    c->level = level;
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    acpi_ged_init(&c->ged, fake_irq, c);
    bus_init(&c->pio, "pio");
    if (acpi_ged_register(&c->ged, &c->pio)) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    acpi_ged_destroy(&c->ged);
    free(c);
    return 0;
}

/* A guest read of `len` bytes at `port`; returns the first byte. */
static uint8_t guest_read(struct ctx *c, uint16_t port, unsigned len, bool *claimed)
{
    uint8_t b[4];

    memset(b, 0xaa, sizeof(b));
    *claimed = bus_dispatch(&c->pio, port, b, len, false);
    return b[0];
}

static uint8_t read_events(struct ctx *c)
{
    bool claimed;
    uint8_t v = guest_read(c, ACPI_GED_PORT, 1, &claimed);

    assert_true(claimed);
    return v;
}

static void test_idle(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(read_events(c), 0);
    assert_int_equal(c->raises + c->lowers, 0); /* the line never moved */
}

static void test_press_then_read_clears(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(acpi_ged_notify(&c->ged, ACPI_GED_EVT_POWER_BUTTON), 0);
    assert_int_equal(c->level, 1);
    assert_int_equal(c->raises, 1);
    assert_int_equal(read_events(c), ACPI_GED_EVT_POWER_BUTTON);
    assert_int_equal(c->level, 0);
    assert_int_equal(c->lowers, 1);
    /* Read-to-clear: _EVT sees the press once. */
    assert_int_equal(read_events(c), 0);
    assert_int_equal(c->lowers, 1);
    /* The next press raises the line again. */
    assert_int_equal(acpi_ged_notify(&c->ged, ACPI_GED_EVT_POWER_BUTTON), 0);
    assert_int_equal(c->raises, 2);
    assert_int_equal(acpi_ged_read_events(&c->ged), ACPI_GED_EVT_POWER_BUTTON);
    assert_int_equal(c->level, 0);
}

/* The line is level: presses before the guest reads stay one assertion
 * and one event (the guest may have the pin masked for a while). */
static void test_presses_merge(void **state)
{
    struct ctx *c = *state;

    for (int i = 0; i < 5; i++)
        assert_int_equal(acpi_ged_notify(&c->ged, ACPI_GED_EVT_POWER_BUTTON), 0);
    assert_int_equal(c->raises, 1);
    assert_int_equal(c->level, 1);
    assert_int_equal(read_events(c), ACPI_GED_EVT_POWER_BUTTON);
    assert_int_equal(c->lowers, 1);
}

static void test_unknown_events_refused(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(acpi_ged_notify(&c->ged, 0), -EINVAL);
    assert_int_equal(acpi_ged_notify(&c->ged, 0x02), -EINVAL);
    assert_int_equal(acpi_ged_notify(&c->ged, 0x81), -EINVAL);
    assert_int_equal(c->raises, 0);
    assert_int_equal(read_events(c), 0);
}

/* What a hostile guest can do: write anything (ignored), read at other
 * widths and neighbouring ports (nothing of ours, nothing cleared). */
static void test_guest_writes_and_odd_accesses(void **state)
{
    struct ctx *c = *state;
    uint8_t b[4];
    bool claimed;

    assert_int_equal(acpi_ged_notify(&c->ged, ACPI_GED_EVT_POWER_BUTTON), 0);
    for (unsigned v = 0; v < 256; v++) {
        b[0] = (uint8_t)v;
        assert_true(bus_dispatch(&c->pio, ACPI_GED_PORT, b, 1, true));
    }
    memset(b, 0, sizeof(b));
    bus_dispatch(&c->pio, ACPI_GED_PORT, b, 2, true);
    bus_dispatch(&c->pio, ACPI_GED_PORT, b, 4, true);
    assert_int_equal(c->level, 1); /* still pending */
    /* Wider reads span ports nobody claims: all ones, nothing cleared. */
    assert_int_equal(guest_read(c, ACPI_GED_PORT, 2, &claimed), 0xff);
    assert_false(claimed);
    assert_int_equal(guest_read(c, ACPI_GED_PORT, 4, &claimed), 0xff);
    assert_false(claimed);
    assert_int_equal(guest_read(c, ACPI_GED_PORT + 1, 1, &claimed), 0xff);
    assert_false(claimed);
    assert_int_equal(guest_read(c, ACPI_GED_PORT - 1, 1, &claimed), 0xff);
    assert_false(claimed);
    assert_int_equal(c->level, 1);
    assert_int_equal(read_events(c), ACPI_GED_EVT_POWER_BUTTON);
    assert_int_equal(c->level, 0);
}

static void test_no_irq_callback(void **state)
{
    struct acpi_ged g;

    acpi_ged_init(&g, NULL, NULL);
    assert_int_equal(acpi_ged_notify(&g, ACPI_GED_EVT_POWER_BUTTON), 0); /* must not crash */
    assert_int_equal(acpi_ged_read_events(&g), ACPI_GED_EVT_POWER_BUTTON);
    acpi_ged_destroy(&g);
}

static void test_port_taken(void **state)
{
    struct ctx *c = *state;

    /* A second device on the same port is refused by the bus. */
    assert_int_equal(acpi_ged_register(&c->ged, &c->pio), -EEXIST);
}

/* The control thread presses while a vCPU reads: every press is seen by
 * some read, and the line ends low exactly when nothing is pending. */
#define PRESSES 20000

static void *presser(void *opaque)
{
    struct ctx *c = opaque;

    for (int i = 0; i < PRESSES; i++)
        acpi_ged_notify(&c->ged, ACPI_GED_EVT_POWER_BUTTON);
    return NULL;
}

static void test_concurrent_press_and_read(void **state)
{
    struct ctx *c = *state;
    pthread_t t;
    int seen = 0;

    assert_int_equal(pthread_create(&t, NULL, presser, c), 0);
    for (int i = 0; i < PRESSES; i++)
        seen += acpi_ged_read_events(&c->ged) != 0;
    pthread_join(t, NULL);
    seen += acpi_ged_read_events(&c->ged) != 0;
    assert_true(seen >= 1);
    assert_int_equal(c->level, 0);
    /* Each raise is one batch of presses that exactly one read returned. */
    assert_int_equal(c->raises, seen);
    assert_int_equal(c->lowers, seen);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_idle),
        T(test_press_then_read_clears),
        T(test_presses_merge),
        T(test_unknown_events_refused),
        T(test_guest_writes_and_odd_accesses),
        cmocka_unit_test(test_no_irq_callback),
        T(test_port_taken),
        T(test_concurrent_press_and_read),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
