/*
 * The ACPI power ports: S5 through the sleep control register and the reset
 * value through the reset register end the VM with status 0; every other
 * value, width and offset does nothing; reads return 0; the reset vector
 * holds real-mode code that writes the reset register (its own value).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "herd/acpi_power.h"
#include "herd/bus.h"
#include "herd/layout.h"

struct ctx {
    struct bus pio;
    struct vm_stopper stopper;
    int stops, status;
    char reason[128];
};

static void fake_stop(void *opaque, int status, const char *reason)
{
    struct ctx *c = opaque;

    c->stops++;
    c->status = status;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    c->stopper = (struct vm_stopper){.stop = fake_stop, .ctx = c};
    c->status = -1;
    bus_init(&c->pio, "pio");
    if (acpi_power_register(&c->pio, &c->stopper))
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void out(struct ctx *c, uint16_t port, uint64_t value, unsigned len)
{
    uint8_t data[8];

    memcpy(data, &value, sizeof(data));
    bus_dispatch(&c->pio, port, data, len, true);
}

static void test_s5_powers_off(void **state)
{
    struct ctx *c = *state;

    /* What Linux writes: SLP_TYP from \_S5 (5) << 2 | SLP_EN. */
    out(c, ACPI_SLEEP_CONTROL_PORT, (5 << 2) | 0x20, 1);
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->status, 0);
    assert_string_equal(c->reason, "guest powered off (ACPI S5)");
    /* Other bits (WAK_STS-style garbage in bits 0-1, 6-7) do not matter. */
    out(c, ACPI_SLEEP_CONTROL_PORT, 0xff & ~0x08 & ~0x10, 1); /* SLP_TYP 1 */
    assert_int_equal(c->stops, 1);
    out(c, ACPI_SLEEP_CONTROL_PORT, 0xc3 | (5 << 2) | 0x20, 1);
    assert_int_equal(c->stops, 2);
}

static void test_reset(void **state)
{
    struct ctx *c = *state;

    out(c, ACPI_RESET_PORT, ACPI_RESET_VALUE, 1);
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->status, 0);
    assert_string_equal(c->reason, "guest reset (ACPI reset register)");
    out(c, ACPI_RESET_PORT, ACPI_RESET_VECTOR_VALUE, 1);
    assert_int_equal(c->stops, 2);
    assert_string_equal(c->reason, "guest reset (reset vector)");
}

static void test_other_values_ignored(void **state)
{
    struct ctx *c = *state;
    uint8_t data[8];
    const char *why;

    for (unsigned v = 0; v < 256; v++) {
        int s5 = (v & 0x20) && ((v >> 2) & 7) == 5;

        assert_int_equal(acpi_power_decode(ACPI_SLEEP_CONTROL_PORT, (uint8_t)v, &why), s5);
        assert_int_equal(acpi_power_decode(ACPI_SLEEP_STATUS_PORT, (uint8_t)v, &why), 0);
        assert_int_equal(acpi_power_decode(ACPI_RESET_PORT, (uint8_t)v, &why),
                         v == ACPI_RESET_VALUE || v == ACPI_RESET_VECTOR_VALUE);
        assert_int_equal(acpi_power_decode(ACPI_POWER_PORT + 3, (uint8_t)v, &why), 0);
    }
    /* Sleep states other than S5, SLP_EN without a type, the status port. */
    out(c, ACPI_SLEEP_CONTROL_PORT, (3 << 2) | 0x20, 1);
    out(c, ACPI_SLEEP_CONTROL_PORT, 5 << 2, 1);
    out(c, ACPI_SLEEP_STATUS_PORT, 0xff, 1);
    out(c, ACPI_RESET_PORT, 0xfe, 1);
    out(c, ACPI_POWER_PORT + 3, 0x01, 1);
    assert_int_equal(c->stops, 0);
    /* Reads: zero at every width and offset (WAK_STS never set). */
    for (unsigned off = 0; off < ACPI_POWER_PORTS; off++) {
        for (unsigned len = 1; off + len <= ACPI_POWER_PORTS; len *= 2) {
            memset(data, 0xaa, sizeof(data));
            assert_true(bus_dispatch(&c->pio, ACPI_POWER_PORT + off, data, len, false));
            for (unsigned i = 0; i < len; i++)
                assert_int_equal(data[i], 0);
        }
    }
}

/* Any width at any offset is the run of its bytes: a wide write ends the VM
 * exactly when one of its bytes, at its port, would. */
static void test_wide_accesses(void **state)
{
    struct ctx *c = *state;
    const uint64_t values[] = {0, 0x34, 0x0100, 0x010034, 0xffffffff, 0x00010000,
                               0x3434343434343434ULL, 0x0101010101010101ULL};
    const char *why;

    for (unsigned off = 0; off < ACPI_POWER_PORTS; off++) {
        for (unsigned len = 1; len <= 8; len *= 2) {
            for (unsigned k = 0; k < sizeof(values) / sizeof(values[0]); k++) {
                int expect = 0, before = c->stops;

                for (unsigned i = 0; i < len && off + i < ACPI_POWER_PORTS; i++)
                    expect |= acpi_power_decode((uint16_t)(ACPI_POWER_PORT + off + i),
                                                (uint8_t)(values[k] >> (8 * i)), &why);
                if (off + len > ACPI_POWER_PORTS)
                    expect = 0; /* not claimed: past the range, dropped */
                out(c, (uint16_t)(ACPI_POWER_PORT + off), values[k], len);
                assert_int_equal(c->stops - before, expect);
            }
        }
    }
}

static void test_reset_vector(void **state)
{
    uint8_t *ram = calloc(1, 2 * MiB);
    struct guest_mem gm;
    const uint8_t *v;

    assert_non_null(ram);
    assert_int_equal(guest_mem_init_buffer(&gm, ram, 2 * MiB), 0);
    assert_int_equal(acpi_power_write_reset_vector(&gm), 0);
    v = ram + ACPI_RESET_VECTOR;
    /* mov al, imm8; mov dx, imm16; out dx, al */
    assert_int_equal(v[0], 0xb0);
    assert_int_equal(v[1], ACPI_RESET_VECTOR_VALUE);
    assert_int_equal(v[2], 0xba);
    assert_int_equal(v[3] | (v[4] << 8), ACPI_RESET_PORT);
    assert_int_equal(v[5], 0xee);
    assert_int_equal(v[6], 0xf4); /* then hlt forever */
    assert_int_equal(ram[0xfffff], 0xf4);
    free(ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_values_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_accesses, setup, teardown),
        cmocka_unit_test(test_reset_vector),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
