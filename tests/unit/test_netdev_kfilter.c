/* The kernel filter's rule generation (pure): NIC policy -> nft text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd/netdev_kfilter.h"

static const uint8_t MAC[6] = {0x0e, 0x11, 0x22, 0x33, 0x44, 0x55};

/* Parses a NIC item into cfg for tap ht-web01-0; returns the rc. */
static int parse(const char *json, struct netdev_kfilter_cfg *cfg, struct herd_err *err)
{
    json_error_t je;
    json_t *nic = json_loads(json, JSON_DECODE_ANY, &je);
    int rc;

    assert_non_null(nic);
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->tap, sizeof(cfg->tap), "ht-web01-0");
    memcpy(cfg->mac, MAC, 6);
    herd_err_clear(err);
    rc = netdev_kfilter_parse_nic(nic, "nics[0]", cfg, err);
    json_decref(nic);
    return rc;
}

static char *rules_of(const char *json)
{
    struct netdev_kfilter_cfg cfg;
    struct herd_err err;
    char *out = NULL;

    assert_int_equal(parse(json, &cfg, &err), 0);
    assert_int_equal(netdev_kfilter_rules(&cfg, &out), 0);
    assert_non_null(out);
    return out;
}

static const char GOLDEN[] =
    "table netdev herd-ht-web01-0 {\n"
    "\tcounter accepted {\n"
    "\t}\n"
    "\tcounter malformed {\n"
    "\t}\n"
    "\tcounter src_mac {\n"
    "\t}\n"
    "\tcounter ethertype {\n"
    "\t}\n"
    "\tcounter arp_spoof {\n"
    "\t}\n"
    "\tcounter ip4_src {\n"
    "\t}\n"
    "\tcounter ip6_src {\n"
    "\t}\n"
    "\tcounter nd_spoof {\n"
    "\t}\n"
    "\tcounter rate_bytes {\n"
    "\t}\n"
    "\tcounter rate_frames {\n"
    "\t}\n"
    "\tlimit limit_bytes {\n"
    "\t\trate over 1000000 bytes/second burst 100000 bytes\n"
    "\t}\n"
    "\tlimit limit_frames {\n"
    "\t\trate over 1000/second burst 1000 packets\n"
    "\t}\n"
    "\tset allow4 {\n"
    "\t\ttype ipv4_addr\n"
    "\t\tflags interval\n"
    "\t\telements = { 10.1.0.5 }\n"
    "\t}\n"
    "\tset allow6 {\n"
    "\t\ttype ipv6_addr\n"
    "\t\tflags interval\n"
    "\t\telements = { fe80::c11:22ff:fe33:4455, fd01::/64 }\n"
    "\t}\n"
    "\tchain guest_tx {\n"
    "\t\ttype filter hook ingress device \"ht-web01-0\" priority filter; policy accept;\n"
    "\t\tether saddr != 0e:11:22:33:44:55 counter name src_mac drop\n"
    "\t\tmeta protocol arp jump arp_check\n"
    "\t\tmeta protocol ip jump ip4_check\n"
    "\t\tmeta protocol ip6 jump ip6_check\n"
    "\t\tmeta protocol != { arp, ip, ip6 } counter name ethertype drop\n"
    "\t\tlimit name limit_bytes counter name rate_bytes drop\n"
    "\t\tlimit name limit_frames counter name rate_frames drop\n"
    "\t\tcounter name accepted accept\n"
    "\t}\n"
    "\tchain arp_check {\n"
    "\t\tarp htype != 1 counter name arp_spoof drop\n"
    "\t\tarp ptype != ip counter name arp_spoof drop\n"
    "\t\tarp hlen != 6 counter name arp_spoof drop\n"
    "\t\tarp plen != 4 counter name arp_spoof drop\n"
    "\t\tarp saddr ether != 0e:11:22:33:44:55 counter name arp_spoof drop\n"
    "\t\tarp saddr ip 0.0.0.0 return\n"
    "\t\tarp saddr ip != @allow4 counter name arp_spoof drop\n"
    "\t}\n"
    "\tchain ip4_check {\n"
    "\t\tip version != 4 counter name malformed drop\n"
    "\t\tip hdrlength < 5 counter name malformed drop\n"
    "\t\tip saddr 0.0.0.0 udp sport 68 udp dport 67 return\n"
    "\t\tip saddr != @allow4 counter name ip4_src drop\n"
    "\t}\n"
    "\tchain ip6_check {\n"
    "\t\tip6 version != 6 counter name malformed drop\n"
    "\t\tmeta l4proto ipv6-icmp ip6 nexthdr != ipv6-icmp jump icmp6_behind_ext\n"
    "\t\tip6 saddr :: jump ip6_unspecified\n"
    "\t\tip6 saddr != :: ip6 saddr != @allow6 counter name ip6_src drop\n"
    "\t\tip6 nexthdr ipv6-icmp icmpv6 type nd-router-solicit jump nd_rs\n"
    "\t\tip6 nexthdr ipv6-icmp icmpv6 type nd-neighbor-solicit jump nd_ns\n"
    "\t\tip6 nexthdr ipv6-icmp icmpv6 type nd-neighbor-advert jump nd_na\n"
    "\t}\n"
    "\tchain icmp6_behind_ext {\n"
    "\t\tip6 nexthdr 0 icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } return\n"
    "\t\tfrag frag-off != 0 return\n"
    "\t\texthdr frag exists icmpv6 type { echo-request, echo-reply } return\n"
    "\t\tcounter name nd_spoof drop\n"
    "\t}\n"
    "\tchain ip6_unspecified {\n"
    "\t\tip6 nexthdr ipv6-icmp icmpv6 type { nd-router-solicit, nd-neighbor-solicit } return\n"
    "\t\tip6 nexthdr 0 icmpv6 type { mld-listener-report, mld-listener-done, mld2-listener-report } return\n"
    "\t\tcounter name ip6_src drop\n"
    "\t}\n"
    "\tchain nd_rs {\n"
    "\t\tip6 length != { 8, 16, 24 } counter name nd_spoof drop\n"
    "\t\tip6 length { 16, 24 } @th,72,8 != 1 counter name nd_spoof drop\n"
    "\t\tip6 length { 16, 24 } @th,64,8 { 1, 2 } @th,80,48 != 0x0e1122334455 counter name nd_spoof drop\n"
    "\t\tip6 length 24 @th,136,8 != 1 counter name nd_spoof drop\n"
    "\t\tip6 length 24 @th,128,8 { 1, 2 } @th,144,48 != 0x0e1122334455 counter name nd_spoof drop\n"
    "\t}\n"
    "\tchain nd_ns {\n"
    "\t\tip6 length != { 24, 32, 40 } counter name nd_spoof drop\n"
    "\t\tip6 length { 32, 40 } @th,200,8 != 1 counter name nd_spoof drop\n"
    "\t\tip6 length { 32, 40 } @th,192,8 { 1, 2 } @th,208,48 != 0x0e1122334455 counter name nd_spoof drop\n"
    "\t\tip6 length 40 @th,264,8 != 1 counter name nd_spoof drop\n"
    "\t\tip6 length 40 @th,256,8 { 1, 2 } @th,272,48 != 0x0e1122334455 counter name nd_spoof drop\n"
    "\t\tip6 saddr :: @th,64,128 != { 0xfe800000000000000c1122fffe334455, 0xfd010000000000000000000000000000-0xfd01000000000000ffffffffffffffff } counter name nd_spoof drop\n"
    "\t}\n"
    "\tchain nd_na {\n"
    "\t\tip6 length != { 24, 32, 40 } counter name nd_spoof drop\n"
    "\t\tip6 length { 32, 40 } @th,200,8 != 1 counter name nd_spoof drop\n"
    "\t\tip6 length { 32, 40 } @th,192,8 { 1, 2 } @th,208,48 != 0x0e1122334455 counter name nd_spoof drop\n"
    "\t\tip6 length 40 @th,264,8 != 1 counter name nd_spoof drop\n"
    "\t\tip6 length 40 @th,256,8 { 1, 2 } @th,272,48 != 0x0e1122334455 counter name nd_spoof drop\n"
    "\t\t@th,64,128 != { 0xfe800000000000000c1122fffe334455, 0xfd010000000000000000000000000000-0xfd01000000000000ffffffffffffffff } counter name nd_spoof drop\n"
    "\t}\n"
    "}\n"
    ;

/* Pinned addresses (a prefix's host bits cleared), both limits: the whole
 * table, byte for byte. */
static void test_golden(void **state)
{
    char *r;

    (void)state;
    r = rules_of("{\"network\": \"communication\", \"addresses\": [\"10.1.0.5\", \"fd01::1/64\"],"
                 " \"rate_limit\": {\"bandwidth\": {\"size\": 100000, \"refill_time\": 100},"
                 " \"ops\": {\"size\": 1000, \"refill_time\": 1000}}}");
    assert_string_equal(r, GOLDEN);
    free(r);
}

/* No addresses: sources are not pinned (martians only), no sets, no ND
 * target rule; MAC, ARP MAC, ND options and ND placement still enforced;
 * no limit objects without a rate limit. */
static void test_open(void **state)
{
    char *r;

    (void)state;
    r = rules_of("\"communication\"");
    assert_null(strstr(r, "@allow"));
    assert_null(strstr(r, "set allow"));
    assert_null(strstr(r, "limit "));
    assert_null(strstr(r, "@th,64,128"));
    assert_non_null(strstr(r, "ether saddr != 0e:11:22:33:44:55 counter name src_mac drop"));
    assert_non_null(strstr(r, "arp saddr ether != 0e:11:22:33:44:55"));
    assert_non_null(strstr(r, "ip saddr { 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/3 } counter name "
                              "ip4_src drop"));
    assert_non_null(strstr(r, "ip6 saddr { ::1, ::ffff:0:0/96, ff00::/8 } counter name "
                              "ip6_src drop"));
    assert_non_null(strstr(r, "meta l4proto ipv6-icmp ip6 nexthdr != ipv6-icmp jump "
                              "icmp6_behind_ext"));
    assert_non_null(strstr(r, "@th,208,48 != 0x0e1122334455 counter name nd_spoof drop"));
    assert_non_null(strstr(r, "counter name accepted accept"));
    assert_null(strstr(r, "meta protocol != { arp, ip, ip6 }"));
    assert_non_null(strstr(r, "meta protocol { 0x8100, 0x88a8 } counter name ethertype drop"));
    free(r);
}

/* "addresses": [] pins to nothing: only the link-local, 0.0.0.0 (DHCP,
 * ARP probes) and :: (DAD, RS, MLD) remain. */
static void test_empty_addresses(void **state)
{
    char *r;

    (void)state;
    r = rules_of("{\"network\": \"service\", \"addresses\": []}");
    assert_non_null(strstr(r, "set allow4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}\n"));
    assert_non_null(strstr(r, "elements = { fe80::c11:22ff:fe33:4455 }"));
    assert_non_null(strstr(r, "ip saddr != @allow4 counter name ip4_src drop"));
    assert_non_null(strstr(r, "arp saddr ip 0.0.0.0 return"));
    assert_non_null(strstr(r, "@th,64,128 != { 0xfe800000000000000c1122fffe334455 } counter"));
    free(r);
}

static void expect_error(const char *json, const char *field)
{
    struct netdev_kfilter_cfg cfg;
    struct herd_err err;

    assert_int_equal(parse(json, &cfg, &err), -EINVAL);
    assert_string_equal(err.field, field);
    assert_true(err.msg[0] != 0);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("{\"addresses\": \"10.1.0.5\"}", "nics[0].addresses");
    expect_error("{\"addresses\": [\"10.1.0.5\", \"10.1.0.256\"]}", "nics[0].addresses[1]");
    expect_error("{\"addresses\": [\"10.1.0.0/33\"]}", "nics[0].addresses[0]");
    expect_error("{\"addresses\": [\"fd01::/0\"]}", "nics[0].addresses[0]");
    expect_error("{\"addresses\": [\"10.1.0.0/x\"]}", "nics[0].addresses[0]");
    expect_error("{\"addresses\": [1]}", "nics[0].addresses[0]");
    expect_error("{\"rate_limit\": {\"tx\": {}}}", "nics[0].rate_limit");
    expect_error("{\"rate_limit\": {\"bandwidth\": {\"size\": 100}}}",
                 "nics[0].rate_limit.bandwidth");
    expect_error("{\"rate_limit\": {\"bandwidth\": {\"size\": 100, \"refill_time\": 1000, "
                 "\"one_time_burst\": 5}}}", "nics[0].rate_limit.bandwidth");
    expect_error("{\"rate_limit\": {\"ops\": {\"size\": 1, \"refill_time\": 2000}}}",
                 "nics[0].rate_limit.ops");
    expect_error("{\"rate_limit\": {\"ops\": {\"size\": -1, \"refill_time\": 1000}}}",
                 "nics[0].rate_limit.ops");
    char many[1024] = "{\"addresses\": [";
    for (int i = 0; i <= NETDEV_KF_MAX_ADDRS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"10.0.0.%d\"",
                 i ? ", " : "", i + 1);
    strcat(many, "]}");
    expect_error(many, "nics[0].addresses");
}

static void test_bad_config(void **state)
{
    struct netdev_kfilter_cfg cfg;
    struct herd_err err;
    char name[IFNAMSIZ + 8], *out = (char *)1;

    (void)state;
    assert_int_equal(parse("\"management\"", &cfg, &err), 0);
    assert_int_equal(netdev_kfilter_table_name("ht-web01-0", name), 0);
    assert_string_equal(name, "herd-ht-web01-0");
    assert_int_equal(netdev_kfilter_table_name("ht\"x", name), -EINVAL);
    assert_int_equal(netdev_kfilter_table_name("ht x", name), -EINVAL);
    assert_int_equal(netdev_kfilter_table_name("", name), -EINVAL);
    snprintf(cfg.tap, sizeof(cfg.tap), "a;b");
    assert_int_equal(netdev_kfilter_rules(&cfg, &out), -EINVAL);
    assert_null(out);
    snprintf(cfg.tap, sizeof(cfg.tap), "ht-web01-0");
    cfg.mac[0] = 0x01; /* multicast */
    assert_int_equal(netdev_kfilter_rules(&cfg, &out), -EINVAL);
    memcpy(cfg.mac, MAC, 6);
    cfg.bytes.size = 1000; /* no refill time */
    assert_int_equal(netdev_kfilter_rules(&cfg, &out), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_empty_addresses),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
