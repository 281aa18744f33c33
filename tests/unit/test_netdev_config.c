/* Configuration parsing and validation: good configs load with derived
 * names; each kind of bad configuration gets its own precise error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "herd/netdev.h"

static const char *good =
    "{\"roles\": {"
    " \"management\": {\"bridge\": \"hbr-mgmt\"},"
    " \"storage\": {\"bridge\": \"hbr-stor\", \"mtu\": 9000, \"uplink\": \"eth1\"},"
    " \"communication\": {\"bridge\": \"hbr-comm\", \"mtu\": 1450,"
    "   \"segments\": [{\"name\": \"red\", \"vxlan\": {\"vni\": 1001,"
    "      \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.2\"}},"
    "     {\"name\": \"blue\", \"mtu\": 1400, \"vxlan\": {\"vni\": 1002,"
    "      \"local\": \"fd00::1\", \"group\": \"ff05::42\", \"dev\": \"eth0\","
    "      \"port\": 8472}}]}}}";

static void test_good_config(void **state)
{
    struct netdev_config cfg;
    struct herd_err err;
    const struct netdev_bridge_cfg *b;

    (void)state;
    assert_int_equal(netdev_config_parse_json(good, &cfg, &err), 0);
    assert_int_equal(cfg.n_bridges, 5);
    assert_int_equal(cfg.role_bridge[NETDEV_ROLE_SERVICE], -1);
    b = netdev_config_find(&cfg, NETDEV_ROLE_MANAGEMENT, NULL);
    assert_non_null(b);
    assert_string_equal(b->name, "hbr-mgmt");
    assert_int_equal(b->mtu, 1500);
    b = netdev_config_find(&cfg, NETDEV_ROLE_STORAGE, NULL);
    assert_int_equal(b->mtu, 9000);
    assert_string_equal(b->uplink, "eth1");
    b = netdev_config_find(&cfg, NETDEV_ROLE_COMMUNICATION, "red");
    assert_non_null(b);
    assert_string_equal(b->name, "hsc-red");
    assert_int_equal(b->mtu, 1450); /* inherited from the role */
    assert_true(b->vxlan.enabled);
    assert_int_equal(b->vxlan.vni, 1001);
    assert_int_equal(b->vxlan.port, NETDEV_VXLAN_PORT);
    assert_int_equal(b->vxlan.family, AF_INET);
    assert_false(b->vxlan.remote_is_group);
    assert_string_equal(b->vxlan.name, "hx-1001");
    b = netdev_config_find(&cfg, NETDEV_ROLE_COMMUNICATION, "blue");
    assert_int_equal(b->mtu, 1400);
    assert_int_equal(b->vxlan.family, AF_INET6);
    assert_true(b->vxlan.remote_is_group);
    assert_int_equal(b->vxlan.port, 8472);
    assert_null(netdev_config_find(&cfg, NETDEV_ROLE_COMMUNICATION, "green"));
    netdev_config_free(&cfg);
}

struct bad {
    const char *json;
    int rc;
    const char *field;
    const char *msg_part;
};

static const struct bad bads[] = {
    {"{\"roles\": {\"management\": {\"bridge\": \"hbr-management-x\"}}}", -ENAMETOOLONG,
     "roles.management.bridge", "at most 15"},
    {"{\"roles\": {\"mgmt\": {\"bridge\": \"b\"}}}", -EINVAL, "roles",
     "unknown role 'mgmt'"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\", \"mtu\": 70000}}}", -ERANGE,
     "roles.management.mtu", "70000 out of range (68..65535)"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\", \"mtu\": 67}}}", -ERANGE,
     "roles.management.mtu", "67 out of range"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"mtu\": 65500,"
     " \"vxlan\": {\"vni\": 1, \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.2\"}}}}",
     -ERANGE, "roles.communication.mtu", "with VXLAN"},
    {"{\"roles\": {}}", -EINVAL, "roles", "no role"},
    {"{}", -EINVAL, "roles", "required"},
    {"{\"roles\": {\"management\": {}}}", -EINVAL, "roles.management.bridge",
     "required"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\", \"mtu\": \"1500\"}}}", -EINVAL,
     "roles.management.mtu", "expected an integer"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\", \"speed\": 1}}}", -EINVAL,
     "roles.management", "unknown key 'speed'"},
    {"{\"roles\": {\"management\": {\"bridge\": \"ht-x\"}}}", -EINVAL,
     "roles.management.bridge", "reserves"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\"}, \"service\": {\"bridge\": \"b\"}}}",
     -EEXIST, "roles.service", "already used by roles.management"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\", \"uplink\": \"eth1\"},"
     " \"service\": {\"bridge\": \"c\", \"uplink\": \"eth1\"}}}", -EEXIST,
     "roles.service", "roles must not share"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\", \"uplink\": \"c\"},"
     " \"service\": {\"bridge\": \"c\"}}}", -EINVAL, "roles.management",
     "is a herd bridge"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"segments\": [{\"name\": \"a b\"}]}}}",
     -EINVAL, "roles.communication.segments[0].name", "segment name 'a b'"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"segments\":"
     " [{\"name\": \"x\"}, {\"name\": \"x\"}]}}}", -EEXIST,
     "roles.communication.segments[1]", "already defined"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 0,"
     " \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.2\"}}}}", -ERANGE,
     "roles.communication.vxlan.vni", "0 out of range (1..16777215)"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 16777216,"
     " \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.2\"}}}}", -ERANGE,
     "roles.communication.vxlan.vni", "out of range"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 1,"
     " \"local\": \"10.0.0.1\"}}}}", -EINVAL, "roles.communication.vxlan",
     "exactly one of"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 1,"
     " \"local\": \"10.0.0.1\", \"remote\": \"fd00::2\"}}}}", -EINVAL,
     "roles.communication.vxlan.remote", "family"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 1,"
     " \"local\": \"10.0.0.300\", \"remote\": \"10.0.0.2\"}}}}", -EINVAL,
     "roles.communication.vxlan.local", "not an IP address"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 1,"
     " \"local\": \"10.0.0.1\", \"group\": \"239.1.1.1\"}}}}", -EINVAL,
     "roles.communication.vxlan.dev", "needs the underlay device"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 1,"
     " \"local\": \"10.0.0.1\", \"remote\": \"239.1.1.1\"}}}}", -EINVAL,
     "roles.communication.vxlan.remote", "belongs in 'group'"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"vxlan\": {\"vni\": 1,"
     " \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.2\", \"port\": 0}}}}", -ERANGE,
     "roles.communication.vxlan.port", "out of range"},
    {"{\"roles\": {\"communication\": {\"bridge\": \"b\", \"segments\": ["
     "{\"name\": \"x\", \"vxlan\": {\"vni\": 7, \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.2\"}},"
     "{\"name\": \"y\", \"vxlan\": {\"vni\": 7, \"local\": \"10.0.0.1\", \"remote\": \"10.0.0.3\"}}]}}}",
     -EEXIST, "roles.communication.segments[1]", "VNI 7 is already used"},
    {"{\"roles\": {\"management\": {\"bridge\": \"b\"}, \"management\": {\"bridge\": \"c\"}}}",
     -EINVAL, "", "duplicate"},
    {"{\"roles\": ", -EINVAL, "", "JSON error"},
};

static void test_bad_configs(void **state)
{
    struct netdev_config cfg;
    struct herd_err err;

    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        int rc = netdev_config_parse_json(bads[i].json, &cfg, &err);
        if (rc != bads[i].rc || strcmp(err.field, bads[i].field) != 0 ||
            !strstr(err.msg, bads[i].msg_part))
            fail_msg("case %zu: rc %d field '%s' msg '%s'", i, rc, err.field, err.msg);
        assert_null(cfg.bridges); /* nothing left allocated */
    }
}

static void test_long_segment_names_stay_distinct(void **state)
{
    struct netdev_config cfg;
    struct herd_err err;
    const char *json =
        "{\"roles\": {\"communication\": {\"bridge\": \"b\", \"segments\": ["
        "{\"name\": \"scenario-alpha-dmz\"}, {\"name\": \"scenario-alpha-lan\"}]}}}";

    (void)state;
    assert_int_equal(netdev_config_parse_json(json, &cfg, &err), 0);
    assert_int_equal(cfg.n_bridges, 3);
    assert_string_not_equal(cfg.bridges[1].name, cfg.bridges[2].name);
    assert_true(strlen(cfg.bridges[1].name) <= NETDEV_NAME_MAX);
    netdev_config_free(&cfg);
}

static void test_load_missing_file(void **state)
{
    struct netdev_config cfg;
    struct herd_err err;

    (void)state;
    assert_int_equal(netdev_config_load("/nonexistent/herd.json", &cfg, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_long_segment_names_stay_distinct),
        cmocka_unit_test(test_load_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
