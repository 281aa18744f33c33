/*
 * i8042: controller commands a guest uses to probe it, the configuration
 * byte, and the two ways Linux resets a PC through it (0xfe pulse, and the
 * output port's reset bit), observed through a fake stopper.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/bus.h"
#include "herd/i8042.h"
#include "herd/layout.h"

struct ctx {
    struct i8042 k;
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
    i8042_init(&c->k, &st);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    i8042_destroy(&c->k);
    free(c);
    return 0;
}

static uint8_t status(struct ctx *c)
{
    return i8042_read(&c->k, PORT_I8042_CMD);
}

static uint8_t data(struct ctx *c)
{
    return i8042_read(&c->k, PORT_I8042_DATA);
}

static void cmd(struct ctx *c, uint8_t v)
{
    i8042_write(&c->k, PORT_I8042_CMD, v);
}

static void put(struct ctx *c, uint8_t v)
{
    i8042_write(&c->k, PORT_I8042_DATA, v);
}

static void test_initial_status(void **state)
{
    struct ctx *c = *state;

    assert_false(status(c) & I8042_STR_OBF);
    assert_true(status(c) & I8042_STR_SYSFLAG);
    assert_int_equal(c->stops, 0);
}

/* Bit 4 set means the keyboard is not inhibited (keylock off): Linux's
 * i8042 driver warns "Keylock active" when it reads it clear. It stays set
 * whatever the guest does with commands, data and the output buffer. */
static void test_keylock_off(void **state)
{
    struct ctx *c = *state;

    assert_true(status(c) & I8042_STR_KEYLOCK);
    cmd(c, I8042_CMD_SELF_TEST);
    assert_true(status(c) & I8042_STR_KEYLOCK);
    (void)data(c);
    put(c, 0xff);
    assert_true(status(c) & I8042_STR_KEYLOCK);
    (void)data(c);
    cmd(c, I8042_CMD_KBD_DIS);
    cmd(c, I8042_CMD_WRITE_CTR);
    put(c, 0x00);
    assert_int_equal(status(c), I8042_STR_SYSFLAG | I8042_STR_KEYLOCK);
}

static void test_self_test(void **state)
{
    struct ctx *c = *state;

    cmd(c, I8042_CMD_SELF_TEST);
    assert_true(status(c) & I8042_STR_OBF);
    assert_true(status(c) & I8042_STR_CMDDAT); /* last write was a command */
    assert_true(status(c) & I8042_STR_OBF);    /* reading status leaves data there */
    assert_int_equal(data(c), 0x55);
    assert_false(status(c) & I8042_STR_OBF);
    assert_int_equal(c->stops, 0);
}

static void test_port_tests(void **state)
{
    struct ctx *c = *state;

    cmd(c, I8042_CMD_KBD_TEST);
    assert_true(status(c) & I8042_STR_OBF);
    assert_int_equal(data(c), 0x00);
    cmd(c, I8042_CMD_AUX_TEST);
    assert_true(status(c) & I8042_STR_OBF);
    assert_int_equal(data(c), 0x00);
    assert_false(status(c) & I8042_STR_OBF);
}

static void test_ctr_read_write(void **state)
{
    struct ctx *c = *state;
    uint8_t ctr;

    cmd(c, I8042_CMD_READ_CTR);
    assert_true(status(c) & I8042_STR_OBF);
    ctr = data(c);
    assert_true(ctr & I8042_STR_SYSFLAG); /* the CTR's system flag is set after POST */
    cmd(c, I8042_CMD_WRITE_CTR);
    assert_false(status(c) & I8042_STR_OBF); /* waits for its data byte */
    put(c, 0x30);
    assert_false(status(c) & I8042_STR_CMDDAT);
    assert_false(status(c) & I8042_STR_OBF); /* consumed, no reply */
    cmd(c, I8042_CMD_READ_CTR);
    assert_int_equal(data(c), 0x30);
    /* Port enable/disable commands flip the CTR's disable bits. */
    cmd(c, I8042_CMD_KBD_EN);
    cmd(c, I8042_CMD_AUX_EN);
    cmd(c, I8042_CMD_READ_CTR);
    assert_int_equal(data(c), 0x00);
    cmd(c, I8042_CMD_KBD_DIS);
    cmd(c, I8042_CMD_READ_CTR);
    assert_int_equal(data(c), 0x10);
    cmd(c, I8042_CMD_AUX_DIS);
    cmd(c, I8042_CMD_READ_CTR);
    assert_int_equal(data(c), 0x30);
    assert_int_equal(c->stops, 0);
}

static void test_data_without_command_is_resend(void **state)
{
    struct ctx *c = *state;

    put(c, 0xff); /* "reset keyboard": no keyboard behind the controller */
    assert_true(status(c) & I8042_STR_OBF);
    assert_int_equal(data(c), 0xfe);
    /* The CTR was not touched by a stray data byte. */
    cmd(c, I8042_CMD_READ_CTR);
    assert_int_equal(data(c), 0x45);
}

static void test_pulse_reset(void **state)
{
    struct ctx *c = *state;

    cmd(c, I8042_CMD_RESET);
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->status, 0);
    assert_true(strlen(c->reason) > 0);
}

static void test_output_port_reset_bit(void **state)
{
    struct ctx *c = *state;

    cmd(c, I8042_CMD_WRITE_OUTP);
    put(c, 0xdf); /* bit 0 set: CPU keeps running (A20 etc. only) */
    assert_int_equal(c->stops, 0);
    assert_false(status(c) & I8042_STR_OBF);
    cmd(c, I8042_CMD_WRITE_OUTP);
    put(c, 0xde); /* bit 0 clear: reset */
    assert_int_equal(c->stops, 1);
    assert_int_equal(c->status, 0);
    /* Without the 0xd1 prefix the same byte is just keyboard data. */
    put(c, 0x00);
    assert_int_equal(c->stops, 1);
}

static void test_no_stopper(void **state)
{
    struct vm_stopper none = {0};
    struct i8042 k;

    i8042_init(&k, &none);
    i8042_write(&k, PORT_I8042_CMD, I8042_CMD_RESET); /* must not crash */
    i8042_write(&k, PORT_I8042_CMD, I8042_CMD_SELF_TEST);
    assert_int_equal(i8042_read(&k, PORT_I8042_DATA), 0x55);
    i8042_destroy(&k);
}

static void test_on_the_port_bus(void **state)
{
    struct ctx *c = *state;
    struct bus pio;
    uint8_t b[2];

    bus_init(&pio, "pio");
    assert_int_equal(i8042_register(&c->k, &pio), 0);
    b[0] = I8042_CMD_SELF_TEST;
    assert_true(bus_dispatch(&pio, PORT_I8042_CMD, b, 1, true));
    assert_true(bus_dispatch(&pio, PORT_I8042_CMD, b, 1, false));
    assert_true(b[0] & I8042_STR_OBF);
    assert_true(bus_dispatch(&pio, PORT_I8042_DATA, b, 1, false));
    assert_int_equal(b[0], 0x55);
    /* 0x61-0x63 are claimed and read as zero; writes there do nothing. */
    memset(b, 0xaa, sizeof(b));
    assert_true(bus_dispatch(&pio, 0x61, b, 1, false));
    assert_int_equal(b[0], 0);
    b[0] = I8042_CMD_RESET;
    assert_true(bus_dispatch(&pio, 0x62, b, 1, true));
    assert_int_equal(c->stops, 0);
    assert_false(bus_dispatch(&pio, 0x65, b, 1, false));
    b[0] = I8042_CMD_RESET;
    assert_true(bus_dispatch(&pio, PORT_I8042_CMD, b, 1, true));
    assert_int_equal(c->stops, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_initial_status),
        T(test_keylock_off),
        T(test_self_test),
        T(test_port_tests),
        T(test_ctr_read_write),
        T(test_data_without_command_is_resend),
        T(test_pulse_reset),
        T(test_output_port_reset_bit),
        cmocka_unit_test(test_no_stopper),
        T(test_on_the_port_bus),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
