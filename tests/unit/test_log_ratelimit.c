/*
 * Rate limiting of guest-triggerable log lines (include/herd/log.h): the
 * token bucket's arithmetic on a fake clock, and a guest moving a BAR
 * 100000 times through the 0xcf8/0xcfc ports, which must add a bounded
 * number of lines to herd-vmm's log (stderr, captured in a file here).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/bus.h"
#include "herd/log.h"
#include "herd/pci.h"

#define SEC 1000000000LL

static void test_bucket(void **state)
{
    struct log_ratelimit rl = {0};
    unsigned long sup = 99;
    long long t = 5 * SEC;

    (void)state;
    for (int i = 0; i < LOG_RATELIMIT_BURST; i++) {
        assert_int_equal(log_ratelimit_take(&rl, t, &sup), 1);
        assert_int_equal(sup, 0);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(log_ratelimit_take(&rl, t + i, &sup), 0);
    /* not yet a period later */
    assert_int_equal(log_ratelimit_take(&rl, t + LOG_RATELIMIT_PERIOD_S * SEC - 1, &sup), 0);
    /* one token per period; the first line after says how many were dropped */
    t += LOG_RATELIMIT_PERIOD_S * SEC;
    assert_int_equal(log_ratelimit_take(&rl, t, &sup), 1);
    assert_int_equal(sup, 1001);
    assert_int_equal(log_ratelimit_take(&rl, t, &sup), 0);
    /* a long quiet time refills at most the burst */
    t += 1000 * LOG_RATELIMIT_PERIOD_S * SEC;
    for (int i = 0; i < LOG_RATELIMIT_BURST; i++)
        assert_int_equal(log_ratelimit_take(&rl, t, &sup), 1);
    assert_int_equal(log_ratelimit_take(&rl, t, &sup), 0);
}

/* Runs fn with stderr going to a temp file; returns the file's lines. */
static unsigned stderr_lines(void (*fn)(void *), void *arg, char *last, size_t lastlen)
{
    char path[] = "/tmp/test_log_ratelimit.XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    unsigned lines = 0;
    char buf[4096];

    assert_true(fd >= 0 && saved >= 0);
    unlink(path);
    dup2(fd, STDERR_FILENO);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    last[0] = 0;
    while (fgets(buf, sizeof(buf), f)) {
        lines++;
        size_t l = strlen(buf);
        if (l >= lastlen)
            l = lastlen - 1;
        memcpy(last, buf, l);
        last[l] = 0;
    }
    fclose(f);
    return lines;
}

static void many_warnings(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        log_warn_guest("guest did thing %d", i);
}

static void test_site_bounded(void **state)
{
    char last[1024];

    (void)state;
    log_set_level(LOG_INFO);
    assert_int_equal(stderr_lines(many_warnings, NULL, last, sizeof(last)),
                     LOG_RATELIMIT_BURST);
    assert_non_null(strstr(last, "guest did thing 9"));
}

struct pci_ctx {
    struct bus pio, mmio;
    struct pci_bus pci;
    struct pci_dev dev;
};

static void pio_write32(struct bus *pio, uint16_t port, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    assert_true(bus_dispatch(pio, port, b, 4, true));
}

static void bar_moves(void *arg)
{
    struct pci_ctx *c = arg;
    uint32_t bar0 = (uint32_t)c->dev.bars[0].addr;

    for (uint32_t i = 0; i < 100000; i++) {
        pio_write32(&c->pio, PCI_PORT_ADDR, 0x80000000u | c->dev.slot << 11 | PCI_BAR0);
        pio_write32(&c->pio, PCI_PORT_DATA, bar0 + 0x100000 + (i & 0xff) * 0x1000);
    }
}

static void test_bar_moves_bounded(void **state)
{
    struct pci_ctx *c = calloc(1, sizeof(*c));
    char last[1024];

    (void)state;
    assert_non_null(c);
    bus_init(&c->pio, "pio");
    bus_init(&c->mmio, "mmio");
    assert_int_equal(pci_bus_init(&c->pci, &c->pio, &c->mmio), 0);
    pci_dev_init(&c->dev, 0x1af4, 0x1042, 0x018000, 0x1af4, 2);
    assert_int_equal(pci_dev_add_bar(&c->pci, &c->dev, 0, 0x8000), 0);
    assert_int_equal(pci_bus_add(&c->pci, &c->dev), 0);
    log_set_level(LOG_INFO);
    unsigned n = stderr_lines(bar_moves, c, last, sizeof(last));
    assert_int_equal(n, LOG_RATELIMIT_BURST);
    assert_non_null(strstr(last, "guest tried to move BAR0"));
    /* the move was refused every time */
    assert_int_equal(c->dev.bars[0].addr, pci_get32(c->dev.config + PCI_BAR0) & ~0xfu);
    pci_bus_destroy(&c->pci);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_site_bounded),
        cmocka_unit_test(test_bar_moves_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
