/* Anti-spoofing verdicts on crafted frames. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "herd/netfilter.h"

static const uint8_t MAC[6] = {0x0e, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t OTHER[6] = {0x0e, 0x99, 0x99, 0x99, 0x99, 0x99};
static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct fb {
    uint8_t b[256];
    size_t len;
};

static void eth(struct fb *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memset(f, 0, sizeof(*f));
    memcpy(f->b, dst, 6);
    memcpy(f->b + 6, src, 6);
    f->b[12] = (uint8_t)(type >> 8);
    f->b[13] = (uint8_t)type;
    f->len = 14;
}

static void ip4(struct fb *f, const char *src, uint8_t proto, uint16_t sport,
                uint16_t dport)
{
    uint8_t *p = f->b + f->len;

    p[0] = 0x45;
    p[9] = proto;
    inet_pton(AF_INET, src, p + 12);
    inet_pton(AF_INET, "10.0.0.99", p + 16);
    p[20] = (uint8_t)(sport >> 8);
    p[21] = (uint8_t)sport;
    p[22] = (uint8_t)(dport >> 8);
    p[23] = (uint8_t)dport;
    f->len += 28;
}

static void arp(struct fb *f, const uint8_t *sha, const char *spa)
{
    uint8_t *p = f->b + f->len;

    p[1] = 1;                 /* Ethernet */
    p[2] = 0x08;              /* IPv4 */
    p[4] = 6;
    p[5] = 4;
    p[7] = 2;                 /* reply */
    memcpy(p + 8, sha, 6);
    inet_pton(AF_INET, spa, p + 14);
    inet_pton(AF_INET, "10.0.0.99", p + 24);
    f->len += 28;
}

static void ip6(struct fb *f, const char *src, uint8_t nh)
{
    uint8_t *p = f->b + f->len;

    p[0] = 0x60;
    p[6] = nh;
    inet_pton(AF_INET6, src, p + 8);
    inet_pton(AF_INET6, "ff02::1", p + 24);
    f->len += 40;
}

/* ICMPv6 NA for target with a target link-layer option carrying ll. */
static void na(struct fb *f, const char *target, const uint8_t *ll)
{
    uint8_t *p = f->b + f->len;

    p[0] = 136;
    inet_pton(AF_INET6, target, p + 8);
    p[24] = 2;
    p[25] = 1;
    memcpy(p + 26, ll, 6);
    f->len += 32;
}

static struct netfilter restricted(void)
{
    struct netfilter f;

    netfilter_init(&f, MAC);
    assert_int_equal(netfilter_allow_ip(&f, "10.0.0.5"), 0);
    assert_int_equal(netfilter_allow_ip(&f, "fd00::5"), 0);
    return f;
}

static void test_src_mac(void **state)
{
    struct netfilter f;
    struct fb fr;

    (void)state;
    netfilter_init(&f, MAC);
    eth(&fr, BCAST, MAC, 0x88b5);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, OTHER, 0x88b5);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_SRC_MAC);
    assert_int_equal(netfilter_tx(&f, fr.b, 13), NETFILTER_DROP_MALFORMED);
    assert_int_equal(netfilter_tx(&f, fr.b, 0), NETFILTER_DROP_MALFORMED);
}

static void test_unrestricted_ip_passes(void **state)
{
    struct netfilter f;
    struct fb fr;

    (void)state;
    netfilter_init(&f, MAC);
    eth(&fr, BCAST, MAC, 0x0800);
    ip4(&fr, "192.168.7.7", 17, 1, 2);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x0806);
    arp(&fr, MAC, "192.168.7.7");
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x0806);
    arp(&fr, OTHER, "192.168.7.7"); /* sender MAC is always checked */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ARP);
}

static void test_ip4(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    eth(&fr, BCAST, MAC, 0x0800);
    ip4(&fr, "10.0.0.5", 6, 1000, 80);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x0800);
    ip4(&fr, "10.0.0.6", 6, 1000, 80);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_IP4_SRC);
    eth(&fr, BCAST, MAC, 0x0800);
    ip4(&fr, "0.0.0.0", 17, 68, 67); /* DHCP discover */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x0800);
    ip4(&fr, "0.0.0.0", 17, 68, 53);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_IP4_SRC);
    eth(&fr, BCAST, MAC, 0x0800);
    ip4(&fr, "10.0.0.5", 6, 1, 2);
    assert_int_equal(netfilter_tx(&f, fr.b, 14 + 19), NETFILTER_DROP_MALFORMED);
    fr.b[14] = 0x44; /* IHL 4 */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_MALFORMED);
}

static void test_vlan_tag_is_looked_through(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    eth(&fr, BCAST, MAC, 0x8100);
    fr.b[14] = 0x00;
    fr.b[15] = 0x05;
    fr.b[16] = 0x08; /* inner: IPv4 */
    fr.b[17] = 0x00;
    fr.len = 18;
    ip4(&fr, "10.0.0.6", 6, 1, 2);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_IP4_SRC);
    memcpy(fr.b + 18 + 12, (uint8_t[]){10, 0, 0, 5}, 4);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
}

static void test_arp(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    eth(&fr, BCAST, MAC, 0x0806);
    arp(&fr, MAC, "10.0.0.5");
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x0806);
    arp(&fr, MAC, "10.0.0.1"); /* gratuitous ARP for the gateway's IP */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ARP);
    eth(&fr, BCAST, MAC, 0x0806);
    arp(&fr, MAC, "0.0.0.0"); /* RFC 5227 probe */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x0806);
    arp(&fr, MAC, "10.0.0.5");
    assert_int_equal(netfilter_tx(&f, fr.b, 14 + 27), NETFILTER_DROP_MALFORMED);
}

static void test_ip6(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 17);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::6", 17);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_IP6_SRC);
    eth(&fr, BCAST, MAC, 0x86dd); /* EUI-64 link-local of MAC */
    ip6(&fr, "fe80::c11:22ff:fe33:4455", 17);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fe80::1", 17);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_IP6_SRC);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "::", 58); /* DAD */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "::", 17);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_IP6_SRC);
}

static void test_nd(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 58);
    na(&fr, "fd00::5", MAC);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 58);
    na(&fr, "fd00::1", MAC); /* claims the router's address */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 58);
    na(&fr, "fd00::5", OTHER); /* points the address at another MAC */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 58);
    na(&fr, "fd00::5", MAC);
    fr.b[fr.len - 7] = 0; /* option length 0 */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_MALFORMED);
}

/* An 8-byte extension header (hop-by-hop, destination options, fragment)
 * whose next header is nh; for a fragment, off is the fragment offset. */
static void ext(struct fb *f, uint8_t nh, uint16_t frag_off)
{
    uint8_t *p = f->b + f->len;

    memset(p, 0, 8);
    p[0] = nh;
    p[2] = (uint8_t)(frag_off >> 5);
    p[3] = (uint8_t)(frag_off << 3);
    f->len += 8;
}

/* Item 7a: neighbour discovery behind extension headers. RFC 6980: ND is
 * never fragmented, and nothing legitimate puts it behind other headers,
 * so it is refused whatever it says; MLD behind hop-by-hop (router alert)
 * and fragmented echo still pass. */
static void test_nd_behind_extension_headers(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    /* NA claiming the router's address, behind destination options */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 60);
    ext(&fr, 58, 0);
    na(&fr, "fd00::1", OTHER);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    /* even a truthful one: ND is only accepted directly after the header */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 0);
    ext(&fr, 60, 0);
    fr.b[14 + 40] = 60;
    ext(&fr, 58, 0);
    na(&fr, "fd00::5", MAC);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    /* first fragment of an NA */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 44);
    ext(&fr, 58, 0);
    na(&fr, "fd00::5", MAC);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    /* a first fragment too short to show the ICMPv6 type */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 44);
    ext(&fr, 58, 0);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    /* the same without an address set (the checks are about MACs) */
    f.restrict_ip = false;
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::77", 60);
    ext(&fr, 58, 0);
    na(&fr, "fd00::1", OTHER);
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ND);
    f.restrict_ip = true;
    /* extension header running past the frame */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 60);
    ext(&fr, 58, 0);
    fr.b[14 + 41] = 4; /* 40 bytes claimed, 8 there */
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_MALFORMED);
    /* still allowed: MLDv2 report behind hop-by-hop, from :: too */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "::", 0);
    ext(&fr, 58, 0);
    fr.b[fr.len] = 143;
    fr.len += 8;
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    /* ... a fragmented echo request, first and later fragments */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 44);
    ext(&fr, 58, 0);
    fr.b[fr.len] = 128;
    fr.len += 8;
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 44);
    ext(&fr, 58, 1448);
    fr.len += 8;
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
    /* ... and UDP behind destination options */
    eth(&fr, BCAST, MAC, 0x86dd);
    ip6(&fr, "fd00::5", 60);
    ext(&fr, 17, 0);
    fr.len += 8;
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
}

static void test_other_ethertypes(void **state)
{
    struct netfilter f = restricted();
    struct fb fr;

    (void)state;
    eth(&fr, BCAST, MAC, 0x88cc);
    fr.len = 60;
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_DROP_ETHERTYPE);
    f.restrict_ip = false;
    assert_int_equal(netfilter_tx(&f, fr.b, fr.len), NETFILTER_PASS);
}

static void test_rx(void **state)
{
    struct netfilter f;
    struct fb fr;
    const uint8_t mcast[6] = {0x01, 0x00, 0x5e, 0, 0, 1};

    (void)state;
    netfilter_init(&f, MAC);
    eth(&fr, MAC, OTHER, 0x0800);
    assert_int_equal(netfilter_rx(&f, fr.b, 60), NETFILTER_PASS);
    eth(&fr, BCAST, OTHER, 0x0800);
    assert_int_equal(netfilter_rx(&f, fr.b, 60), NETFILTER_PASS);
    eth(&fr, mcast, OTHER, 0x0800);
    assert_int_equal(netfilter_rx(&f, fr.b, 60), NETFILTER_PASS);
    eth(&fr, OTHER, MAC, 0x0800);
    assert_int_equal(netfilter_rx(&f, fr.b, 60), NETFILTER_DROP_NOT_FOR_US);
    f.promisc = true;
    assert_int_equal(netfilter_rx(&f, fr.b, 60), NETFILTER_PASS);
    assert_int_equal(netfilter_rx(&f, fr.b, 10), NETFILTER_DROP_MALFORMED);
}

static void test_allow_ip_limits(void **state)
{
    struct netfilter f;
    char a[32];

    (void)state;
    netfilter_init(&f, MAC);
    assert_false(f.restrict_ip);
    assert_int_equal(netfilter_allow_ip(&f, "nonsense"), -EINVAL);
    for (int i = 0; i < NETFILTER_MAX_IP4; i++) {
        snprintf(a, sizeof(a), "10.0.1.%d", i);
        assert_int_equal(netfilter_allow_ip(&f, a), 0);
    }
    assert_int_equal(netfilter_allow_ip(&f, "10.0.2.1"), -ENOSPC);
    assert_true(f.restrict_ip);
    assert_string_equal(netfilter_verdict_name(NETFILTER_DROP_SRC_MAC), "src_mac");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_src_mac),
        cmocka_unit_test(test_unrestricted_ip_passes),
        cmocka_unit_test(test_ip4),
        cmocka_unit_test(test_vlan_tag_is_looked_through),
        cmocka_unit_test(test_arp),
        cmocka_unit_test(test_ip6),
        cmocka_unit_test(test_nd),
        cmocka_unit_test(test_nd_behind_extension_headers),
        cmocka_unit_test(test_other_ethertypes),
        cmocka_unit_test(test_rx),
        cmocka_unit_test(test_allow_ip_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
