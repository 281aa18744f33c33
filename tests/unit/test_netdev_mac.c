/* Guest MAC derivation: deterministic, locally administered unicast,
 * collision-checked. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd/netdev.h"

static void test_derive_is_deterministic_laa_unicast(void **state)
{
    uint8_t a[6], b[6], c[6], d[6];

    (void)state;
    netdev_mac_derive("web01", 0, 0, a);
    netdev_mac_derive("web01", 0, 0, b);
    netdev_mac_derive("web01", 1, 0, c);
    netdev_mac_derive("web02", 0, 0, d);
    assert_memory_equal(a, b, 6);
    assert_memory_not_equal(a, c, 6);
    assert_memory_not_equal(a, d, 6);
    assert_int_equal(a[0], NETDEV_MAC_GUEST_BYTE0);
    assert_true(a[0] & 0x02);    /* locally administered */
    assert_false(a[0] & 0x01);   /* unicast */
    assert_true(netdev_mac_is_unicast(a));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* 20000 identities x 2 NICs: no collision expected in 40 bits. */
static void test_derive_spreads(void **state)
{
    enum { N = 20000 };
    static uint64_t seen[2 * N];
    char id[32];
    uint8_t m[6];

    (void)state;
    for (int i = 0; i < N; i++) {
        for (unsigned nic = 0; nic < 2; nic++) {
            snprintf(id, sizeof(id), "vm-%d", i);
            netdev_mac_derive(id, nic, 0, m);
            uint64_t v = 0;
            for (int k = 0; k < 6; k++)
                v = v << 8 | m[k];
            seen[2 * i + nic] = v;
        }
    }
    qsort(seen, 2 * N, sizeof(seen[0]), cmp_u64);
    for (int i = 0; i + 1 < 2 * N; i++)
        assert_true(seen[i] != seen[i + 1]);
}

static int calls;
static uint8_t taken[3][6];

static bool first_three_taken(const uint8_t mac[6], void *ctx)
{
    (void)ctx;
    if (calls < 3) {
        memcpy(taken[calls++], mac, 6);
        return true;
    }
    calls++;
    return false;
}

static bool all_taken(const uint8_t mac[6], void *ctx)
{
    (void)mac;
    (void)ctx;
    return true;
}

static void test_assign_skips_collisions(void **state)
{
    uint8_t mac[6], salt3[6];

    (void)state;
    calls = 0;
    assert_int_equal(netdev_mac_assign("web01", 0, first_three_taken, NULL, mac), 0);
    assert_int_equal(calls, 4);
    netdev_mac_derive("web01", 0, 3, salt3);
    assert_memory_equal(mac, salt3, 6);
    for (int i = 0; i < 3; i++)
        assert_memory_not_equal(mac, taken[i], 6);
    assert_int_equal(netdev_mac_assign("web01", 0, all_taken, NULL, mac), -EADDRINUSE);
    assert_int_equal(netdev_mac_assign("web01", 0, NULL, NULL, mac), 0);
}

static void test_host_side_and_text(void **state)
{
    uint8_t g[6], h[6], p[6];
    char text[18];

    (void)state;
    netdev_mac_derive("web01", 0, 0, g);
    netdev_mac_host_side(g, h);
    assert_int_equal(h[0], 0xfe);
    assert_memory_equal(g + 1, h + 1, 5);
    netdev_mac_format(g, text);
    assert_int_equal(strlen(text), 17);
    assert_int_equal(netdev_mac_parse(text, p), 0);
    assert_memory_equal(g, p, 6);
    assert_int_equal(netdev_mac_parse("0e:00:00:00:00", p), -EINVAL);
    assert_int_equal(netdev_mac_parse("0e:00:00:00:00:00:11", p), -EINVAL);
    assert_int_equal(netdev_mac_parse("zz:00:00:00:00:00", p), -EINVAL);
    uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {0};
    assert_false(netdev_mac_is_unicast(bcast));
    assert_false(netdev_mac_is_unicast(zero));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_is_deterministic_laa_unicast),
        cmocka_unit_test(test_derive_spreads),
        cmocka_unit_test(test_assign_skips_collisions),
        cmocka_unit_test(test_host_side_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
