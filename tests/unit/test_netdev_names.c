/* Interface name derivation: valid, predictable, within IFNAMSIZ. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "herd/netdev.h"

static void test_name_check(void **state)
{
    (void)state;
    assert_int_equal(netdev_name_check("hbr-mgmt"), 0);
    assert_int_equal(netdev_name_check("123456789012345"), 0);
    assert_int_equal(netdev_name_check("1234567890123456"), -ENAMETOOLONG);
    assert_int_equal(netdev_name_check(""), -EINVAL);
    assert_int_equal(netdev_name_check("a/b"), -EINVAL);
    assert_int_equal(netdev_name_check("a:b"), -EINVAL);
    assert_int_equal(netdev_name_check("a b"), -EINVAL);
    assert_int_equal(netdev_name_check("."), -EINVAL);
    assert_int_equal(netdev_name_check(".."), -EINVAL);
}

static void test_ident_check(void **state)
{
    char long_id[NETDEV_IDENT_MAX + 2];

    (void)state;
    assert_int_equal(netdev_ident_check("web-01_a.b"), 0);
    assert_int_equal(netdev_ident_check("a b"), -EINVAL);
    assert_int_equal(netdev_ident_check("ä"), -EINVAL);
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = 0;
    assert_int_equal(netdev_ident_check(long_id), -ENAMETOOLONG);
}

static void test_derive_short_is_verbatim(void **state)
{
    char out[IFNAMSIZ];

    (void)state;
    assert_int_equal(netdev_name_derive(out, "hsc-", "red"), 0);
    assert_string_equal(out, "hsc-red");
    assert_int_equal(netdev_name_derive(out, "hsc-", "12345678901"), 0);
    assert_string_equal(out, "hsc-12345678901"); /* exactly 15 */
}

static void test_derive_long_is_hashed_and_stable(void **state)
{
    char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];

    (void)state;
    assert_int_equal(netdev_name_derive(a, "hsc-", "scenario-alpha-dmz"), 0);
    assert_int_equal(netdev_name_derive(b, "hsc-", "scenario-alpha-dmz"), 0);
    assert_int_equal(netdev_name_derive(c, "hsc-", "scenario-alpha-lan"), 0);
    assert_int_equal(strlen(a), NETDEV_NAME_MAX);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_memory_equal(a, "hsc-sce", 7); /* readable head */
    assert_int_equal(netdev_name_check(a), 0);
}

static void test_derive_rejects(void **state)
{
    char out[IFNAMSIZ];

    (void)state;
    assert_int_equal(netdev_name_derive(out, "hsc-", "bad name"), -EINVAL);
    assert_int_equal(netdev_name_derive(out, "prefix-too-", "x"), -ENAMETOOLONG);
}

static void test_role_names(void **state)
{
    char out[IFNAMSIZ];
    enum netdev_role r;

    (void)state;
    assert_int_equal(netdev_segment_bridge_name(out, NETDEV_ROLE_COMMUNICATION, "red"), 0);
    assert_string_equal(out, "hsc-red");
    assert_int_equal(netdev_segment_bridge_name(out, NETDEV_ROLE_SERVICE, "web"), 0);
    assert_string_equal(out, "hsv-web");
    /* a range's own segment: two ranges, two bridges; stable, 15 chars */
    char a[IFNAMSIZ], b[IFNAMSIZ];
    assert_int_equal(netdev_range_segment_bridge_name(out, NETDEV_ROLE_COMMUNICATION, "deb",
                                                      "lab-net"), 0);
    assert_string_equal(out, "hsc-deb.lab-net");
    assert_int_equal(netdev_range_segment_bridge_name(a, NETDEV_ROLE_COMMUNICATION, "team1",
                                                      "red-net"), 0);
    assert_int_equal(netdev_range_segment_bridge_name(b, NETDEV_ROLE_COMMUNICATION, "team2",
                                                      "red-net"), 0);
    assert_string_not_equal(a, b);
    assert_int_equal((int)strlen(a), 15);
    assert_int_equal(strncmp(a, "hsc-tea", 7), 0);
    assert_int_equal(netdev_range_segment_bridge_name(b, NETDEV_ROLE_COMMUNICATION, "team1",
                                                      "red-net"), 0);
    assert_string_equal(a, b);
    assert_int_not_equal(strcmp(a, "hsc-red-net"), 0);
    assert_int_equal(netdev_range_segment_bridge_name(out, NETDEV_ROLE_COMMUNICATION, "r",
                                                      "bad seg"), -EINVAL);
    assert_int_equal(netdev_role_parse("storage", &r), 0);
    assert_int_equal(r, NETDEV_ROLE_STORAGE);
    assert_int_equal(netdev_role_parse("mgmt", &r), -EINVAL);
    assert_string_equal(netdev_role_name(NETDEV_ROLE_MANAGEMENT), "management");
}

static void test_vxlan_and_tap_names(void **state)
{
    char out[IFNAMSIZ];

    (void)state;
    assert_int_equal(netdev_vxlan_name(out, 1001), 0);
    assert_string_equal(out, "hx-1001");
    assert_int_equal(netdev_vxlan_name(out, NETDEV_VNI_MAX), 0);
    assert_string_equal(out, "hx-16777215");
    assert_int_equal(netdev_vxlan_name(out, 0), -ERANGE);
    assert_int_equal(netdev_vxlan_name(out, NETDEV_VNI_MAX + 1), -ERANGE);
    assert_int_equal(netdev_tap_name(out, "web01", 0), 0);
    assert_string_equal(out, "ht-web01-0");
    assert_int_equal(netdev_tap_name(out, "range7-scenario3-webserver-12", 3), 0);
    assert_int_equal(strlen(out), NETDEV_NAME_MAX);
    assert_memory_equal(out, "ht-", 3);
    assert_int_equal(netdev_tap_name(out, "bad/id", 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_check),
        cmocka_unit_test(test_ident_check),
        cmocka_unit_test(test_derive_short_is_verbatim),
        cmocka_unit_test(test_derive_long_is_hashed_and_stable),
        cmocka_unit_test(test_derive_rejects),
        cmocka_unit_test(test_role_names),
        cmocka_unit_test(test_vxlan_and_tap_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
