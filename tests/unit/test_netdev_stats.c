/* Counters and the per-NIC packet-path hook (filter -> limiter -> count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "herd/netpath.h"

static const uint8_t MAC[6] = {0x0e, 1, 2, 3, 4, 5};
static const uint8_t OTHER[6] = {0x0e, 9, 9, 9, 9, 9};

static void frame(uint8_t *b, const uint8_t *dst, const uint8_t *src)
{
    memset(b, 0, 100);
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    b[12] = 0x88;
    b[13] = 0xb5;
}

static void test_counters_and_json(void **state)
{
    struct netstats s, snap;
    char buf[1024];
    int n;

    (void)state;
    netstats_reset(&s);
    netstats_add_tx(&s, 100);
    netstats_add_tx(&s, 50);
    netstats_add_rx(&s, 60);
    netstats_add_tx_drop(&s, NETFILTER_DROP_SRC_MAC);
    netstats_add_tx_drop(&s, NETFILTER_DROP_IP4_SRC);
    netstats_add_tx_drop(&s, NETFILTER_VERDICT_COUNT); /* ignored */
    netstats_add_rx_drop(&s, NETFILTER_DROP_NOT_FOR_US);
    netstats_add_throttled(&s, 1);
    netstats_snapshot(&s, &snap);
    assert_int_equal(snap.tx_frames, 2);
    assert_int_equal(snap.tx_bytes, 150);
    assert_int_equal(netstats_tx_dropped(&snap), 2);
    assert_int_equal(netstats_rx_dropped(&snap), 1);
    n = netstats_format_json(&s, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_non_null(strstr(buf, "\"tx\": {\"frames\": 2, \"bytes\": 150, \"throttled\": 1, "
                                "\"dropped\": 2, \"drops\": {\"malformed\": 0, \"src_mac\": 1"));
    assert_non_null(strstr(buf, "\"not_for_us\": 1}}}"));
    assert_int_equal(netstats_format_json(&s, NULL, 0), n); /* size query */
    assert_int_equal(netstats_format_json(&s, buf, 10), n); /* truncated */
    assert_int_equal(strlen(buf), 9);
}

static void test_netpath(void **state)
{
    struct netpath p;
    struct tbucket_cfg bytes = {.size = 200, .refill_time_ms = 1000};
    uint8_t b[100];
    uint64_t wait;

    (void)state;
    netpath_init(&p, MAC, 0);
    ratelimit_init(&p.tx_limit, &bytes, NULL, 0);
    frame(b, OTHER, MAC);
    assert_int_equal(netpath_tx(&p, b, 100, 0, &wait), NETPATH_PASS);
    assert_int_equal(netpath_tx(&p, b, 100, 0, &wait), NETPATH_PASS);
    assert_int_equal(netpath_tx(&p, b, 100, 0, &wait), NETPATH_WAIT);
    assert_int_equal(wait, 500000000); /* 100 bytes at 200 B/s */
    frame(b, OTHER, OTHER);            /* spoofed: dropped, costs no tokens */
    assert_int_equal(netpath_tx(&p, b, 100, 0, &wait), NETPATH_DROP);
    assert_int_equal(wait, 0);
    frame(b, OTHER, MAC);
    assert_int_equal(netpath_tx(&p, b, 100, 500000000, &wait), NETPATH_PASS);
    frame(b, OTHER, MAC); /* rx: not for us */
    assert_int_equal(netpath_rx(&p, b, 100, 0, &wait), NETPATH_DROP);
    frame(b, MAC, OTHER);
    assert_int_equal(netpath_rx(&p, b, 100, 0, &wait), NETPATH_PASS);
    assert_int_equal(p.stats.tx_frames, 3);
    assert_int_equal(p.stats.tx_bytes, 300);
    assert_int_equal(p.stats.tx_throttled, 1);
    assert_int_equal(p.stats.tx_drops[NETFILTER_DROP_SRC_MAC], 1);
    assert_int_equal(p.stats.rx_frames, 1);
    assert_int_equal(p.stats.rx_drops[NETFILTER_DROP_NOT_FOR_US], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_json),
        cmocka_unit_test(test_netpath),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
