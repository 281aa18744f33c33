/*
 * 16550A model: registers as a guest driver sees them, transmit to the
 * output fd, loopback, the receive FIFO, and the interrupt line (recorded
 * through a fake irq callback).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/bus.h"
#include "herd/layout.h"
#include "herd/serial.h"

struct ctx {
    struct serial s;
    int out[2]; /* pipe: the UART writes [1], the test reads [0] */
    int level;  /* last level reported */
    int raises, lowers;
};

static void record_irq(void *opaque, int level)
{
    struct ctx *c = opaque;

    c->level = level;
    if (level)
        c->raises++;
    else
        c->lowers++;
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c || pipe2(c->out, O_CLOEXEC | O_NONBLOCK))
        return -1;
    serial_init(&c->s, c->out[1], record_irq, c);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    serial_destroy(&c->s);
    close(c->out[0]);
    close(c->out[1]);
    free(c);
    return 0;
}

/* What the UART wrote so far (non-blocking). */
static size_t drain(struct ctx *c, char *buf, size_t cap)
{
    ssize_t n = read(c->out[0], buf, cap);

    if (n < 0) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    return (size_t)n;
}

static uint8_t rd(struct ctx *c, unsigned reg)
{
    return serial_read(&c->s, reg);
}

static void wr(struct ctx *c, unsigned reg, uint8_t v)
{
    serial_write(&c->s, reg, v);
}

static void test_reset_values(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(rd(c, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
    assert_int_equal(rd(c, UART_IER), 0);
    assert_int_equal(rd(c, UART_LCR), 0);
    assert_int_equal(rd(c, UART_SCR), 0);
    assert_int_equal(rd(c, UART_MSR), UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
    assert_int_equal(rd(c, UART_RBR_THR), 0); /* empty FIFO */
    assert_int_equal(c->raises, 0);
    assert_int_equal(c->level, 0);
}

static void test_scratch_register(void **state)
{
    struct ctx *c = *state;
    char buf[8];

    wr(c, UART_SCR, 0x5a);
    assert_int_equal(rd(c, UART_SCR), 0x5a);
    wr(c, UART_SCR, 0xa5);
    assert_int_equal(rd(c, UART_SCR), 0xa5);
    assert_int_equal(drain(c, buf, sizeof(buf)), 0);
    /* LSR and MSR are read-only. */
    wr(c, UART_LSR, 0);
    assert_int_equal(rd(c, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
    wr(c, UART_MSR, 0);
    assert_int_equal(rd(c, UART_MSR) & 0xf0, UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
}

static void test_dlab_switches_divisor(void **state)
{
    struct ctx *c = *state;
    char buf[8];

    assert_int_equal(rd(c, UART_LCR), 0);
    wr(c, UART_IER, 0x05);
    wr(c, UART_LCR, UART_LCR_DLAB | 0x03);
    assert_int_equal(rd(c, UART_RBR_THR), 0x0c); /* DLL reset value: 9600 baud */
    assert_int_equal(rd(c, UART_IER), 0);        /* DLM */
    wr(c, UART_RBR_THR, 0x01);                   /* DLL = 1: 115200 */
    wr(c, UART_IER, 0x02);                       /* DLM */
    assert_int_equal(rd(c, UART_RBR_THR), 0x01);
    assert_int_equal(rd(c, UART_IER), 0x02);
    assert_int_equal(drain(c, buf, sizeof(buf)), 0); /* writing DLL sent nothing */
    wr(c, UART_LCR, 0x03);
    assert_int_equal(rd(c, UART_LCR), 0x03);
    assert_int_equal(rd(c, UART_IER), 0x05); /* IER untouched by the DLM write */
    wr(c, UART_RBR_THR, 'Z');
    assert_int_equal(drain(c, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], 'Z');
    wr(c, UART_LCR, UART_LCR_DLAB);
    assert_int_equal(rd(c, UART_RBR_THR), 0x01); /* 'Z' did not land in DLL */
}

static void test_transmit(void **state)
{
    struct ctx *c = *state;
    const char *msg = "herd\r\n";
    char buf[32];

    for (const char *p = msg; *p; p++) {
        assert_true(rd(c, UART_LSR) & UART_LSR_THRE); /* a polling driver's check */
        wr(c, UART_RBR_THR, (uint8_t)*p);
    }
    assert_int_equal(drain(c, buf, sizeof(buf)), strlen(msg));
    assert_memory_equal(buf, msg, strlen(msg));
    assert_int_equal(rd(c, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
    assert_false(rd(c, UART_LSR) & UART_LSR_DR); /* nothing echoed back */
}

static void test_transmit_discarded_without_fd(void **state)
{
    struct serial s;

    serial_init(&s, -1, NULL, NULL);
    serial_write(&s, UART_RBR_THR, 'x');
    serial_write(&s, UART_IER, UART_IER_THRI); /* no irq callback: must not crash */
    assert_int_equal(serial_read(&s, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
    assert_int_equal(serial_read(&s, UART_IIR_FCR), UART_IIR_THRI);
    serial_destroy(&s);
}

static void test_loopback(void **state)
{
    struct ctx *c = *state;
    char buf[8];
    uint8_t in[1] = {'q'};

    wr(c, UART_MCR, UART_MCR_LOOP);
    wr(c, UART_RBR_THR, 'A');
    wr(c, UART_RBR_THR, 'B');
    assert_int_equal(drain(c, buf, sizeof(buf)), 0); /* not on the wire */
    assert_true(rd(c, UART_LSR) & UART_LSR_DR);
    assert_int_equal(rd(c, UART_RBR_THR), 'A');
    assert_true(rd(c, UART_LSR) & UART_LSR_DR);
    assert_int_equal(rd(c, UART_RBR_THR), 'B');
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
    /* The outside world is disconnected in loopback. */
    assert_int_equal(serial_receive(&c->s, in, 1), 0);
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
    /* Leaving loopback: transmit goes to the wire again. */
    wr(c, UART_MCR, UART_MCR_OUT2);
    wr(c, UART_RBR_THR, 'C');
    assert_int_equal(drain(c, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], 'C');
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
}

static void test_loopback_msr_mirrors_mcr(void **state)
{
    struct ctx *c = *state;
    uint8_t msr;

    wr(c, UART_MCR, UART_MCR_LOOP);
    msr = rd(c, UART_MSR);
    /* CTS, DSR, DCD dropped: inputs now follow the (clear) outputs, with
     * their delta bits set. */
    assert_int_equal(msr & 0xf0, 0);
    assert_int_equal(msr & 0x0f, UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
    assert_int_equal(rd(c, UART_MSR), 0); /* deltas clear on read */

    wr(c, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS);
    assert_int_equal(rd(c, UART_MSR), UART_MSR_CTS | UART_MSR_DCTS);
    wr(c, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_DTR);
    assert_int_equal(rd(c, UART_MSR), UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DDSR);
    wr(c, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT1);
    assert_int_equal(rd(c, UART_MSR), UART_MSR_RI | UART_MSR_DCTS | UART_MSR_DDSR);
    wr(c, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
    /* RI falling edge: trailing-edge ring indicator. */
    assert_int_equal(rd(c, UART_MSR), UART_MSR_DCD | UART_MSR_DDCD | UART_MSR_TERI);
    wr(c, UART_MCR, 0x1f);
    assert_int_equal(rd(c, UART_MSR) & 0xf0,
                     UART_MSR_CTS | UART_MSR_DSR | UART_MSR_RI | UART_MSR_DCD);
    assert_int_equal(rd(c, UART_MCR), 0x1f);
    wr(c, UART_MCR, 0xff); /* bits 7:5 do not exist */
    assert_int_equal(rd(c, UART_MCR), 0x1f);
}

static void test_thre_interrupt(void **state)
{
    struct ctx *c = *state;

    wr(c, UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
    assert_int_equal(c->raises, 0);
    wr(c, UART_IER, UART_IER_THRI);
    assert_int_equal(c->level, 1); /* THR already empty: raised at once */
    assert_int_equal(c->raises, 1);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_THRI);
    assert_int_equal(c->level, 0); /* reading IIR acknowledged it */
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
    assert_int_equal(c->level, 0);
    /* Each transmitted byte empties THR again. */
    wr(c, UART_RBR_THR, 'x');
    assert_int_equal(c->level, 1);
    assert_int_equal(c->raises, 2);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_THRI);
    assert_int_equal(c->level, 0);
    /* Disabling THRI drops a pending interrupt. */
    wr(c, UART_RBR_THR, 'y');
    assert_int_equal(c->level, 1);
    wr(c, UART_IER, 0);
    assert_int_equal(c->level, 0);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
}

static void test_no_irq_without_out2(void **state)
{
    struct ctx *c = *state;

    wr(c, UART_MCR, UART_MCR_DTR | UART_MCR_RTS); /* OUT2 clear */
    wr(c, UART_IER, UART_IER_THRI);
    assert_int_equal(c->raises, 0);
    assert_int_equal(c->level, 0);
    /* The condition is still pending inside the UART... */
    wr(c, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    /* ...and reaches the line once OUT2 gates it through. */
    assert_int_equal(c->level, 1);
    assert_int_equal(c->raises, 1);
    wr(c, UART_MCR, UART_MCR_DTR);
    assert_int_equal(c->level, 0);
}

static void test_rx_interrupt(void **state)
{
    struct ctx *c = *state;
    const uint8_t in[] = "xy";

    wr(c, UART_MCR, UART_MCR_OUT2);
    wr(c, UART_IER, UART_IER_RDI);
    assert_int_equal(c->level, 0);
    assert_int_equal(serial_receive(&c->s, in, 2), 2);
    assert_int_equal(c->level, 1);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_RDI);
    assert_int_equal(c->level, 1); /* IIR read does not acknowledge data */
    assert_true(rd(c, UART_LSR) & UART_LSR_DR);
    assert_int_equal(rd(c, UART_RBR_THR), 'x');
    assert_int_equal(c->level, 1);
    assert_int_equal(rd(c, UART_RBR_THR), 'y');
    assert_int_equal(c->level, 0);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
}

static void test_rx_has_priority_over_thre(void **state)
{
    struct ctx *c = *state;
    const uint8_t in[] = "k";

    wr(c, UART_MCR, UART_MCR_OUT2);
    wr(c, UART_IER, UART_IER_RDI | UART_IER_THRI);
    assert_int_equal(serial_receive(&c->s, in, 1), 1);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_RDI);
    assert_int_equal(rd(c, UART_RBR_THR), 'k');
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_THRI);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
}

static void test_rx_fifo_full_from_host(void **state)
{
    struct ctx *c = *state;
    uint8_t in[100];

    for (unsigned i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    /* The host side is told how much fit; nothing is lost, no overrun. */
    assert_int_equal(serial_receive(&c->s, in, sizeof(in)), SERIAL_RX_FIFO);
    assert_int_equal(serial_receive(&c->s, in, sizeof(in)), 0);
    assert_int_equal(rd(c, UART_LSR) & UART_LSR_OE, 0);
    for (unsigned i = 0; i < SERIAL_RX_FIFO; i++)
        assert_int_equal(rd(c, UART_RBR_THR), i);
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
    /* The ring wraps correctly afterwards. */
    assert_int_equal(serial_receive(&c->s, in + 10, 3), 3);
    assert_int_equal(rd(c, UART_RBR_THR), 10);
    assert_int_equal(rd(c, UART_RBR_THR), 11);
    assert_int_equal(rd(c, UART_RBR_THR), 12);
}

static void test_rx_overrun_in_loopback(void **state)
{
    struct ctx *c = *state;
    uint8_t lsr;

    wr(c, UART_MCR, UART_MCR_LOOP);
    for (unsigned i = 0; i < SERIAL_RX_FIFO + 1; i++)
        wr(c, UART_RBR_THR, (uint8_t)(i + 1));
    lsr = rd(c, UART_LSR);
    assert_true(lsr & UART_LSR_OE);
    assert_true(lsr & UART_LSR_DR);
    assert_false(rd(c, UART_LSR) & UART_LSR_OE); /* cleared by the LSR read */
    /* The FIFO holds the first 64 bytes; the 65th was the one lost. */
    for (unsigned i = 0; i < SERIAL_RX_FIFO; i++)
        assert_int_equal(rd(c, UART_RBR_THR), i + 1);
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
}

static void test_fcr(void **state)
{
    struct ctx *c = *state;
    const uint8_t in[] = "abc", z[] = "z";

    wr(c, UART_IIR_FCR, UART_FCR_ENABLE);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_FIFO | UART_IIR_NO_INT);
    assert_int_equal(serial_receive(&c->s, in, 3), 3);
    assert_int_equal(rd(c, UART_RBR_THR), 'a');
    wr(c, UART_IIR_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX);
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
    assert_int_equal(rd(c, UART_RBR_THR), 0);
    /* After the clear, new data comes out first, not stale bytes. */
    assert_int_equal(serial_receive(&c->s, z, 1), 1);
    assert_int_equal(rd(c, UART_RBR_THR), 'z');
    assert_false(rd(c, UART_LSR) & UART_LSR_DR);
    wr(c, UART_IIR_FCR, 0);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
}

static void test_modem_status_interrupt(void **state)
{
    struct ctx *c = *state;

    /* A loopback round trip leaves delta bits set once back on the wire. */
    wr(c, UART_MCR, UART_MCR_LOOP);
    wr(c, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(c->level, 0);
    wr(c, UART_IER, UART_IER_MSI);
    assert_int_equal(c->level, 1);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_MSI);
    assert_int_equal(c->level, 1);
    rd(c, UART_MSR); /* reading MSR clears the deltas */
    assert_int_equal(c->level, 0);
    assert_int_equal(rd(c, UART_IIR_FCR), UART_IIR_NO_INT);
}

static void test_ier_reserved_bits(void **state)
{
    struct ctx *c = *state;

    wr(c, UART_MCR, 0); /* keep the line quiet */
    wr(c, UART_IER, 0xff);
    assert_int_equal(rd(c, UART_IER), 0x0f);
}

static void test_on_the_port_bus(void **state)
{
    struct ctx *c = *state;
    struct bus pio;
    uint8_t data[4];
    char buf[4];

    bus_init(&pio, "pio");
    assert_int_equal(serial_register(&c->s, &pio, PORT_SERIAL0), 0);
    assert_int_equal(serial_register(&c->s, &pio, PORT_SERIAL0 + 4), -EEXIST);
    data[0] = 0x77;
    assert_true(bus_dispatch(&pio, PORT_SERIAL0 + UART_SCR, data, 1, true));
    assert_int_equal(rd(c, UART_SCR), 0x77);
    memset(data, 0xee, sizeof(data));
    assert_true(bus_dispatch(&pio, PORT_SERIAL0 + UART_LSR, data, 2, false));
    assert_int_equal(data[0], UART_LSR_THRE | UART_LSR_TEMT);
    assert_int_equal(data[1], 0);
    data[0] = '!';
    assert_true(bus_dispatch(&pio, PORT_SERIAL0, data, 1, true));
    assert_int_equal(drain(c, buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], '!');
    assert_false(bus_dispatch(&pio, PORT_SERIAL0 + 8, data, 1, false));
}

static void test_input_thread(void **state)
{
    struct ctx *c = *state;
    int in[2];
    uint8_t got[3];
    unsigned n = 0;

    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(serial_start_input(&c->s, in[0]), 0);
    assert_int_equal(write(in[1], "abc", 3), 3);
    /* Host input reaches the receive FIFO, in order (2 s at most). */
    for (int tries = 0; n < 3 && tries < 2000; tries++) {
        if (rd(c, UART_LSR) & UART_LSR_DR)
            got[n++] = rd(c, UART_RBR_THR);
        else
            usleep(1000);
    }
    assert_int_equal(n, 3);
    assert_memory_equal(got, "abc", 3);
    close(in[1]); /* EOF: the thread ends; teardown joins it */
    serial_destroy(&c->s);
    serial_init(&c->s, c->out[1], record_irq, c);
    close(in[0]);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_reset_values),
        T(test_scratch_register),
        T(test_dlab_switches_divisor),
        T(test_transmit),
        cmocka_unit_test(test_transmit_discarded_without_fd),
        T(test_loopback),
        T(test_loopback_msr_mirrors_mcr),
        T(test_thre_interrupt),
        T(test_no_irq_without_out2),
        T(test_rx_interrupt),
        T(test_rx_has_priority_over_thre),
        T(test_rx_fifo_full_from_host),
        T(test_rx_overrun_in_loopback),
        T(test_fcr),
        T(test_modem_status_interrupt),
        T(test_ier_reserved_bits),
        T(test_on_the_port_bus),
        T(test_input_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
