/* Unit tests: herd/ipam.h (subnets, host offsets, the deterministic pool). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "herd/ipam.h"

static struct ipam_net net4(const char *s)
{
    struct ipam_net n;
    struct herd_err err;
    herd_err_clear(&err);
    int rc = ipam_net_parse(s, AF_INET, &n, "net", &err);
    if (rc)
        fail_msg("%s: %s", s, err.msg);
    return n;
}

static struct ipam_net net6(const char *s)
{
    struct ipam_net n;
    struct herd_err err;
    herd_err_clear(&err);
    int rc = ipam_net_parse(s, AF_INET6, &n, "net", &err);
    if (rc)
        fail_msg("%s: %s", s, err.msg);
    return n;
}

static struct ipam_addr addr(const char *s)
{
    struct ipam_addr a;
    int fam = strchr(s, ':') ? AF_INET6 : AF_INET;
    assert_int_equal(ipam_addr_parse(s, fam, &a), 0);
    return a;
}

static void assert_addr(const struct ipam_addr *a, const char *want)
{
    char buf[IPAM_ADDR_STR];
    ipam_addr_format(a, buf);
    assert_string_equal(buf, want);
}

/* Parses s as a subnet of family, expects -EINVAL and a message starting with
 * want_prefix, and the field passed through. */
static void refuse(const char *s, int family, const char *want_prefix)
{
    struct ipam_net n;
    memset(&n, 0xa5, sizeof(n));
    struct ipam_net before = n;
    struct herd_err err;
    herd_err_clear(&err);
    assert_int_equal(ipam_net_parse(s, family, &n, "ranges[0].net", &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(err.field, "ranges[0].net");
    if (strncmp(err.msg, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("%s: message \"%s\", want a start of \"%s\"", s, err.msg, want_prefix);
    assert_memory_equal(&n, &before, sizeof(n)); /* out untouched */
}

static void test_addr_parse(void **state)
{
    (void)state;
    struct ipam_addr a, b;
    assert_int_equal(ipam_addr_parse("192.0.2.7", AF_INET, &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.b[0], 192);
    assert_int_equal(a.b[3], 7);
    assert_addr(&a, "192.0.2.7");
    assert_int_equal(ipam_addr_parse("2001:db8::7", AF_INET6, &b), 0);
    assert_int_equal(b.family, AF_INET6);
    assert_int_equal(b.b[0], 0x20);
    assert_int_equal(b.b[15], 7);
    assert_addr(&b, "2001:db8::7");
    /* compressed and uncompressed forms are the same address, printed short */
    struct ipam_addr c;
    assert_int_equal(ipam_addr_parse("2001:0db8:0000:0000:0000:0000:0000:0007", AF_INET6, &c), 0);
    assert_true(ipam_addr_equal(&b, &c));
    assert_addr(&c, "2001:db8::7");
    assert_int_equal(ipam_addr_parse("FD00:1:0:0::A", AF_INET6, &c), 0);
    assert_addr(&c, "fd00:1::a");
    assert_false(ipam_addr_equal(&a, &b));

    const char *bad4[] = {"", " 192.0.2.7", "192.0.2.7 ", "192.0.2.7/32", "192.0.2",
                          "1.2.3",  /* inet_pton(AF_INET) wants all four parts */
                          "01.2.3.4", /* and no leading zeros */
                          "256.0.0.1", "::1", "::ffff:192.0.2.7", "0x7f.0.0.1", "a.b.c.d"};
    for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++)
        if (ipam_addr_parse(bad4[i], AF_INET, &a) != -EINVAL)
            fail_msg("IPv4 \"%s\" accepted", bad4[i]);
    const char *bad6[] = {"", " ::1", "::1 ", "::1/128", "192.0.2.7", "1:2:3:4:5:6:7:8:9",
                          "1::2::3", "fd00::g"};
    for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++)
        if (ipam_addr_parse(bad6[i], AF_INET6, &a) != -EINVAL)
            fail_msg("IPv6 \"%s\" accepted", bad6[i]);
    assert_int_equal(ipam_addr_parse("192.0.2.7", AF_UNIX, &a), -EINVAL);
    assert_int_equal(ipam_addr_parse(NULL, AF_INET, &a), -EINVAL);
}

static void roundtrip(const char *in, int family, const char *want)
{
    struct ipam_net n;
    struct herd_err err;
    herd_err_clear(&err);
    if (ipam_net_parse(in, family, &n, "f", &err) != 0)
        fail_msg("%s: %s", in, err.msg);
    char buf[IPAM_NET_STR];
    ipam_net_format(&n, buf);
    assert_string_equal(buf, want);
    /* and the formatted text parses back to the same subnet */
    struct ipam_net m;
    assert_int_equal(ipam_net_parse(buf, family, &m, "f", NULL), 0);
    assert_true(ipam_addr_equal(&n.base, &m.base));
    assert_int_equal(n.len, m.len);
}

static void test_net_roundtrip(void **state)
{
    (void)state;
    roundtrip("10.1.0.0/24", AF_INET, "10.1.0.0/24");
    roundtrip("10.0.0.0/16", AF_INET, "10.0.0.0/16");
    roundtrip("192.168.7.4/30", AF_INET, "192.168.7.4/30");
    roundtrip("fd00:1::/64", AF_INET6, "fd00:1::/64");
    roundtrip("fd00:0001:0000:0000:0000:0000:0000:0000/64", AF_INET6, "fd00:1::/64");
    roundtrip("FD00:1:0::/48", AF_INET6, "fd00:1::/48");
    roundtrip("2001:db8:0:0:1::/80", AF_INET6, "2001:db8:0:0:1::/80"); /* longest zero run */
    roundtrip("2001:db8:0:0:1:0:0:0/80", AF_INET6, "2001:db8:0:0:1::/80");
    roundtrip("fd00::4/126", AF_INET6, "fd00::4/126");
    struct ipam_net n = net4("10.1.0.0/24");
    assert_int_equal(n.len, 24);
    assert_int_equal(n.base.family, AF_INET);
    /* no err: still refused, nothing to fill */
    assert_int_equal(ipam_net_parse("10.1.0.5/24", AF_INET, &n, "f", NULL), -EINVAL);
}

static void test_net_refuse(void **state)
{
    (void)state;
    const char *v4 = "not an IPv4 subnet (expected e.g. 10.1.0.0/24)";
    const char *v6 = "not an IPv6 subnet (expected e.g. fd00:1::/64)";
    char want[256];

    /* host bits: the message names the subnet they meant */
    refuse("10.1.0.5/24", AF_INET, "10.1.0.5/24: host bits are set (the subnet is 10.1.0.0/24)");
    refuse("10.1.255.255/16", AF_INET,
           "10.1.255.255/16: host bits are set (the subnet is 10.1.0.0/16)");
    refuse("10.1.0.6/30", AF_INET, "10.1.0.6/30: host bits are set (the subnet is 10.1.0.4/30)");
    refuse("fd00:1::1/64", AF_INET6,
           "fd00:1::1/64: host bits are set (the subnet is fd00:1::/64)");
    refuse("fd00:1:2:3::/48", AF_INET6,
           "fd00:1:2:3::/48: host bits are set (the subnet is fd00:1:2::/48)");

    /* prefix out of bounds, both ends */
    refuse("10.0.0.0/8", AF_INET, "10.0.0.0/8: an IPv4 subnet must be /16 to /30");
    refuse("10.0.0.0/15", AF_INET, "10.0.0.0/15: an IPv4 subnet must be /16 to /30");
    refuse("10.0.0.0/31", AF_INET, "10.0.0.0/31: an IPv4 subnet must be /16 to /30");
    refuse("10.0.0.0/32", AF_INET, "10.0.0.0/32: an IPv4 subnet must be /16 to /30");
    refuse("10.0.0.0/0", AF_INET, "10.0.0.0/0: an IPv4 subnet must be /16 to /30");
    refuse("10.0.0.0/999", AF_INET, "10.0.0.0/999: an IPv4 subnet must be /16 to /30");
    refuse("fd00::/47", AF_INET6, "fd00::/47: an IPv6 subnet must be /48 to /126");
    refuse("fd00::/127", AF_INET6, "fd00::/127: an IPv6 subnet must be /48 to /126");
    refuse("fd00::/128", AF_INET6, "fd00::/128: an IPv6 subnet must be /48 to /126");

    /* not a subnet of the family at all */
    const char *bad4[] = {
        "", "x/24", "10.1.0.0", "10.1.0.0/", "/24", "10.1.0.0/24/1", " 10.1.0.0/24",
        "10.1.0.0/24 ", "10.1.0.0 /24", "10.1.0.0/ 24", "10.1.0.0/+24", "10.1.0.0/-24",
        "10.1.0.0/24x", "10.1.0.0/0x18", "10.1.0.0/1000", "10.1.0.0/0024",
        "10.1.0.0/024", /* leading zero: refused, as inet_pton refuses "01.2.3.4" */
        "10.1.0/24", "010.1.0.0/24", "10.1.0.0.0/24", "fd00:1::/64", "::ffff:10.1.0.0/120",
        "10.1.0.0/24\n",
        "123456789012345678901234567890123456789012345678901234567890/24", /* too long */
    };
    for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++) {
        snprintf(want, sizeof(want), "%s: %s", bad4[i], v4);
        refuse(bad4[i], AF_INET, want);
    }
    const char *bad6[] = {"", "x/64", "fd00:1::", "fd00:1::/", "fd00:1::/064", "fd00:1::/+64",
                          " fd00:1::/64", "fd00:1::/64 ", "fd00:1:::/64", "10.1.0.0/24",
                          "fd00:1::/64/1", "fd00:1::g/64"};
    for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++) {
        snprintf(want, sizeof(want), "%s: %s", bad6[i], v6);
        refuse(bad6[i], AF_INET6, want);
    }
    /* an unknown family and a NULL string are refused, not crashed on */
    struct ipam_net n;
    struct herd_err err;
    herd_err_clear(&err);
    assert_int_equal(ipam_net_parse("10.1.0.0/24", AF_UNIX, &n, "f", &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    herd_err_clear(&err);
    assert_int_equal(ipam_net_parse(NULL, AF_INET, &n, "f", &err), -EINVAL);
    assert_string_equal(err.msg, ": not an IPv4 subnet (expected e.g. 10.1.0.0/24)");
}

static void test_contains_overlap(void **state)
{
    (void)state;
    struct ipam_net a16 = net4("10.1.0.0/16"), a24 = net4("10.1.2.0/24"),
                    b24 = net4("10.1.3.0/24"), c24 = net4("10.1.2.0/24"),
                    d24 = net4("10.2.2.0/24"), a30 = net4("10.1.2.252/30");
    struct ipam_addr in = addr("10.1.2.77"), out = addr("10.1.3.0"), v6 = addr("fd00:1::1");

    assert_true(ipam_net_contains(&a24, &in));
    assert_true(ipam_net_contains(&a16, &in));
    assert_false(ipam_net_contains(&a24, &out));
    assert_true(ipam_net_contains(&b24, &out));
    struct ipam_addr netaddr = addr("10.1.2.0"), bcast = addr("10.1.2.255");
    assert_true(ipam_net_contains(&a24, &netaddr)); /* in the subnet, if not a host */
    assert_true(ipam_net_contains(&a24, &bcast));
    assert_false(ipam_net_contains(&a24, &v6));      /* cross-family */

    assert_true(ipam_net_overlap(&a16, &a24));       /* nested, both ways */
    assert_true(ipam_net_overlap(&a24, &a16));
    assert_true(ipam_net_overlap(&a24, &a30));
    assert_true(ipam_net_overlap(&a30, &a24));
    assert_true(ipam_net_overlap(&a24, &c24));       /* identical */
    assert_true(ipam_net_overlap(&a24, &a24));
    assert_false(ipam_net_overlap(&a24, &b24));      /* adjacent */
    assert_false(ipam_net_overlap(&b24, &a24));
    assert_false(ipam_net_overlap(&a24, &d24));      /* disjoint */
    assert_false(ipam_net_overlap(&a16, &d24));
    struct ipam_net e30 = net4("10.1.2.248/30");     /* adjacent /30s */
    assert_false(ipam_net_overlap(&a30, &e30));

    struct ipam_net f48 = net6("fd00:1::/48"), f64 = net6("fd00:1:0:5::/64"),
                    g64 = net6("fd00:1:0:6::/64"), h64 = net6("fd00:2::/64");
    assert_true(ipam_net_overlap(&f48, &f64));
    assert_true(ipam_net_overlap(&f64, &f48));
    assert_true(ipam_net_overlap(&f64, &f64));
    assert_false(ipam_net_overlap(&f64, &g64));
    assert_false(ipam_net_overlap(&f48, &h64));
    struct ipam_addr f5 = addr("fd00:1:0:5::abcd");
    assert_true(ipam_net_contains(&f64, &f5));
    assert_true(ipam_net_contains(&f48, &f5));
    assert_false(ipam_net_contains(&g64, &f5));
    assert_false(ipam_net_contains(&f64, &in));

    /* cross-family: a v4 and a v6 subnet never overlap, even with the same
     * leading bytes */
    struct ipam_net z4 = net4("10.1.0.0/16");
    struct ipam_net z6 = z4;
    z6.base.family = AF_INET6;
    z6.len = 48;
    assert_false(ipam_net_overlap(&z4, &z6));
    assert_false(ipam_net_overlap(&z6, &z4));
    assert_false(ipam_net_overlap(&a24, &f64));
}

static void test_hosts(void **state)
{
    (void)state;
    struct ipam_net n;
    n = net4("10.0.0.0/16");
    assert_int_equal(ipam_net_hosts(&n), 65534);
    n = net4("10.1.0.0/24");
    assert_int_equal(ipam_net_hosts(&n), 254);
    n = net4("10.1.0.8/29");
    assert_int_equal(ipam_net_hosts(&n), 6);
    n = net4("10.1.0.4/30");
    assert_int_equal(ipam_net_hosts(&n), 2);
    n = net6("fd00:1::/64");
    assert_int_equal(ipam_net_hosts(&n), IPAM_POOL_MAX);
    n = net6("fd00:1::/48");
    assert_int_equal(ipam_net_hosts(&n), IPAM_POOL_MAX);
    n = net6("fd00:1::/112");
    assert_int_equal(ipam_net_hosts(&n), IPAM_POOL_MAX); /* 65535, capped */
    n = net6("fd00:1::/113");
    assert_int_equal(ipam_net_hosts(&n), 32767);
    n = net6("fd00:1::/120");
    assert_int_equal(ipam_net_hosts(&n), 255); /* no broadcast in IPv6 */
    n = net6("fd00:1::/126");
    assert_int_equal(ipam_net_hosts(&n), 3);
}

static void test_offset_at(void **state)
{
    (void)state;
    struct ipam_net n = net4("10.1.2.0/24");
    struct ipam_addr a;
    uint32_t off = 0;
    char buf[IPAM_ADDR_STR];

    for (uint32_t o = 1; o <= ipam_net_hosts(&n); o++) {
        assert_int_equal(ipam_net_at(&n, o, &a), 0);
        uint32_t back = 0;
        assert_int_equal(ipam_net_offset(&n, &a, &back), 0);
        assert_int_equal(back, o);
        char want[32];
        snprintf(want, sizeof(want), "10.1.2.%u", o);
        ipam_addr_format(&a, buf);
        assert_string_equal(buf, want);
    }
    a = addr("10.1.2.0"); /* network */
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("10.1.2.255"); /* broadcast */
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("10.1.3.1"); /* outside */
    assert_int_equal(ipam_net_offset(&n, &a, &off), -ERANGE);
    a = addr("fd00::1"); /* other family */
    assert_int_equal(ipam_net_offset(&n, &a, &off), -ERANGE);
    assert_int_equal(ipam_net_at(&n, 0, &a), -ERANGE);
    assert_int_equal(ipam_net_at(&n, 255, &a), -ERANGE);
    assert_int_equal(ipam_net_at(&n, UINT32_MAX, &a), -ERANGE);

    /* /16: offsets cross the byte boundary */
    n = net4("10.7.0.0/16");
    assert_int_equal(ipam_net_at(&n, 256, &a), 0);
    assert_addr(&a, "10.7.1.0");
    assert_int_equal(ipam_net_offset(&n, &a, &off), 0);
    assert_int_equal(off, 256);
    assert_int_equal(ipam_net_at(&n, 65534, &a), 0);
    assert_addr(&a, "10.7.255.254");
    a = addr("10.7.255.255");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);

    /* /30 */
    n = net4("10.1.0.4/30");
    assert_int_equal(ipam_net_at(&n, 1, &a), 0);
    assert_addr(&a, "10.1.0.5");
    assert_int_equal(ipam_net_at(&n, 2, &a), 0);
    assert_addr(&a, "10.1.0.6");
    assert_int_equal(ipam_net_at(&n, 3, &a), -ERANGE);
    a = addr("10.1.0.7");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("10.1.0.8");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -ERANGE);

    /* IPv6: offset 0 excluded, the last address a host, the cap enforced */
    n = net6("fd00:1::/126");
    assert_int_equal(ipam_net_at(&n, 3, &a), 0);
    assert_addr(&a, "fd00:1::3");
    assert_int_equal(ipam_net_offset(&n, &a, &off), 0);
    assert_int_equal(off, 3);
    a = addr("fd00:1::");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("fd00:1::4");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -ERANGE);
    assert_int_equal(ipam_net_at(&n, 4, &a), -ERANGE);

    n = net6("fd00:1::/64");
    assert_int_equal(ipam_net_at(&n, IPAM_POOL_MAX, &a), 0);
    assert_addr(&a, "fd00:1::fffe");
    assert_int_equal(ipam_net_offset(&n, &a, &off), 0);
    assert_int_equal(off, IPAM_POOL_MAX);
    assert_int_equal(ipam_net_at(&n, IPAM_POOL_MAX + 1, &a), -ERANGE);
    a = addr("fd00:1::ffff"); /* in the subnet, past the cap */
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("fd00:1::1:1"); /* past the cap in the high host bits */
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("fd00:1::1:0:0:1");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -EINVAL);
    a = addr("fd00:1::1");
    assert_int_equal(ipam_net_offset(&n, &a, &off), 0);
    assert_int_equal(off, 1);
    a = addr("10.1.0.1");
    assert_int_equal(ipam_net_offset(&n, &a, &off), -ERANGE);
}

/* Allocates every remaining host of p, checks they come lowest first, and
 * that one more is -ENOSPC. Returns how many it got. */
static uint32_t drain(struct ipam_pool *p)
{
    uint32_t got = 0, last = 0;
    struct ipam_addr a;
    while (ipam_pool_alloc(p, &a) == 0) {
        uint32_t off;
        assert_int_equal(ipam_net_offset(&p->net, &a, &off), 0);
        assert_true(off > last);
        last = off;
        assert_true(ipam_pool_taken(p, &a));
        got++;
        assert_true(got <= p->hosts);
    }
    assert_int_equal(ipam_pool_alloc(p, &a), -ENOSPC);
    assert_int_equal(ipam_pool_free_count(p), 0);
    return got;
}

static void test_pool_exhaust(void **state)
{
    (void)state;
    const char *nets[] = {"10.1.0.8/29", "10.1.0.16/28", "10.1.0.4/30", "fd00::/126",
                          "fd00::/120"};
    const uint32_t want[] = {6, 14, 2, 3, 255};
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        struct ipam_net n = strchr(nets[i], ':') ? net6(nets[i]) : net4(nets[i]);
        struct ipam_pool p;
        assert_int_equal(ipam_pool_init(&p, &n), 0);
        assert_int_equal(p.hosts, want[i]);
        assert_int_equal(ipam_pool_free_count(&p), want[i]);
        assert_int_equal(drain(&p), want[i]);
        ipam_pool_free(&p);
    }
    /* the /29's addresses, in order */
    struct ipam_net n = net4("10.1.0.8/29");
    struct ipam_pool p;
    struct ipam_addr a;
    assert_int_equal(ipam_pool_init(&p, &n), 0);
    for (unsigned o = 9; o <= 14; o++) {
        char want_s[32];
        snprintf(want_s, sizeof(want_s), "10.1.0.%u", o);
        assert_int_equal(ipam_pool_alloc(&p, &a), 0);
        assert_addr(&a, want_s);
    }
    assert_int_equal(ipam_pool_alloc(&p, &a), -ENOSPC);
    ipam_pool_free(&p);
    ipam_pool_free(&p); /* twice is harmless */

    /* a full /16 and an IPv6 /64 (capped) drain completely */
    n = net4("10.9.0.0/16");
    assert_int_equal(ipam_pool_init(&p, &n), 0);
    assert_int_equal(drain(&p), 65534);
    ipam_pool_free(&p);
    n = net6("fd00:9::/64");
    assert_int_equal(ipam_pool_init(&p, &n), 0);
    assert_int_equal(drain(&p), IPAM_POOL_MAX);
    a = addr("fd00:9::ffff");
    assert_false(ipam_pool_taken(&p, &a));
    ipam_pool_free(&p);
}

static void test_pool_take(void **state)
{
    (void)state;
    struct ipam_net n = net4("10.1.2.0/24");
    struct ipam_pool p;
    struct ipam_addr a, got;
    assert_int_equal(ipam_pool_init(&p, &n), 0);

    a = addr("10.1.2.1");
    assert_int_equal(ipam_pool_take(&p, &a), 0);
    assert_true(ipam_pool_taken(&p, &a));
    assert_int_equal(ipam_pool_take(&p, &a), -EEXIST);
    assert_int_equal(ipam_pool_free_count(&p), 253);
    a = addr("10.1.2.2");
    assert_int_equal(ipam_pool_take(&p, &a), 0);
    a = addr("10.1.2.4");
    assert_int_equal(ipam_pool_take(&p, &a), 0);
    a = addr("10.1.2.9"); /* second bitmap byte */
    assert_int_equal(ipam_pool_take(&p, &a), 0);
    assert_int_equal(ipam_pool_free_count(&p), 250);

    /* lowest free first: 3, then 5, 6, 7, 8, then 10 */
    const char *order[] = {"10.1.2.3", "10.1.2.5", "10.1.2.6", "10.1.2.7", "10.1.2.8",
                           "10.1.2.10"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        assert_int_equal(ipam_pool_alloc(&p, &got), 0);
        assert_addr(&got, order[i]);
    }
    assert_int_equal(ipam_pool_free_count(&p), 244);
    assert_int_equal(p.n_taken, 10);

    /* refusals change nothing */
    a = addr("10.1.2.0");
    assert_int_equal(ipam_pool_take(&p, &a), -EINVAL);
    a = addr("10.1.2.255");
    assert_int_equal(ipam_pool_take(&p, &a), -EINVAL);
    a = addr("10.1.3.1");
    assert_int_equal(ipam_pool_take(&p, &a), -ERANGE);
    a = addr("fd00::1");
    assert_int_equal(ipam_pool_take(&p, &a), -ERANGE);
    a = addr("10.1.2.5");
    assert_int_equal(ipam_pool_take(&p, &a), -EEXIST);
    assert_int_equal(ipam_pool_free_count(&p), 244);
    a = addr("10.1.2.255");
    assert_false(ipam_pool_taken(&p, &a));
    a = addr("10.1.3.1");
    assert_false(ipam_pool_taken(&p, &a));

    /* take the last host, fill the rest: exhaustion after exactly the free count */
    a = addr("10.1.2.254");
    assert_int_equal(ipam_pool_take(&p, &a), 0);
    uint32_t left = ipam_pool_free_count(&p);
    assert_int_equal(left, 243);
    assert_int_equal(drain(&p), left);
    ipam_pool_free(&p);
}

static void test_pool_release(void **state)
{
    (void)state;
    struct ipam_net n = net4("10.1.0.16/28");
    struct ipam_pool p;
    struct ipam_addr a, got;
    assert_int_equal(ipam_pool_init(&p, &n), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ipam_pool_alloc(&p, &got), 0); /* .17 .. .21 */
    assert_int_equal(ipam_pool_free_count(&p), 9);

    /* released, then the next alloc gets it back */
    a = addr("10.1.0.19");
    ipam_pool_release(&p, &a);
    assert_false(ipam_pool_taken(&p, &a));
    assert_int_equal(ipam_pool_free_count(&p), 10);
    assert_int_equal(ipam_pool_alloc(&p, &got), 0);
    assert_true(ipam_addr_equal(&got, &a));
    assert_int_equal(ipam_pool_free_count(&p), 9);

    /* two released: the lower comes back first */
    struct ipam_addr hi = addr("10.1.0.21"), lo = addr("10.1.0.18");
    ipam_pool_release(&p, &hi);
    ipam_pool_release(&p, &lo);
    assert_int_equal(ipam_pool_alloc(&p, &got), 0);
    assert_true(ipam_addr_equal(&got, &lo));
    assert_int_equal(ipam_pool_alloc(&p, &got), 0);
    assert_true(ipam_addr_equal(&got, &hi));
    assert_int_equal(ipam_pool_alloc(&p, &got), 0);
    assert_addr(&got, "10.1.0.22");
    assert_int_equal(ipam_pool_free_count(&p), 8);

    /* releasing what is not taken changes nothing */
    uint8_t before[2]; /* 14 hosts: 2 bitmap bytes */
    memcpy(before, p.taken, sizeof(before));
    uint32_t n_before = p.n_taken;
    const char *not_taken[] = {"10.1.0.23", "10.1.0.16", "10.1.0.31", "10.1.0.40",
                               "10.2.0.17", "fd00::11"};
    for (size_t i = 0; i < sizeof(not_taken) / sizeof(not_taken[0]); i++) {
        a = addr(not_taken[i]);
        ipam_pool_release(&p, &a);
        assert_int_equal(p.n_taken, n_before);
        assert_memory_equal(p.taken, before, 2);
        assert_int_equal(ipam_pool_free_count(&p), 8);
    }
    /* a double release counts once */
    a = addr("10.1.0.17");
    ipam_pool_release(&p, &a);
    ipam_pool_release(&p, &a);
    assert_int_equal(ipam_pool_free_count(&p), 9);
    assert_int_equal(ipam_pool_alloc(&p, &got), 0);
    assert_true(ipam_addr_equal(&got, &a));
    ipam_pool_free(&p);
}

/* One scripted sequence of takes, allocs and releases; the addresses allocs
 * return are written to out (as text, one a line). */
static void script(struct ipam_pool *p, char *out, size_t cap)
{
    static const char *const takes[] = {"fd00:1::2", "fd00:1::5", "fd00:1::9"};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 3; i++) {
        struct ipam_addr a = addr(takes[i]);
        assert_int_equal(ipam_pool_take(p, &a), 0);
    }
    for (int round = 0; round < 20; round++) {
        struct ipam_addr a;
        assert_int_equal(ipam_pool_alloc(p, &a), 0);
        char buf[IPAM_ADDR_STR];
        ipam_addr_format(&a, buf);
        used += (size_t)snprintf(out + used, cap - used, "%s\n", buf);
        assert_true(used < cap);
        if (round % 3 == 2)
            ipam_pool_release(p, &a);
        if (round == 10) {
            struct ipam_addr t = addr("fd00:1::5");
            ipam_pool_release(p, &t);
        }
    }
}

static void test_pool_deterministic(void **state)
{
    (void)state;
    struct ipam_net n = net6("fd00:1::/64");
    struct ipam_pool p1, p2;
    char s1[2048], s2[2048];
    assert_int_equal(ipam_pool_init(&p1, &n), 0);
    assert_int_equal(ipam_pool_init(&p2, &n), 0);
    script(&p1, s1, sizeof(s1));
    script(&p2, s2, sizeof(s2));
    assert_string_equal(s1, s2);
    assert_int_equal(ipam_pool_free_count(&p1), ipam_pool_free_count(&p2));
    assert_memory_equal(p1.taken, p2.taken, (IPAM_POOL_MAX + 7) / 8);
    /* and the sequence is the lowest-free one */
    assert_true(strncmp(s1, "fd00:1::1\nfd00:1::3\nfd00:1::4\nfd00:1::4\n", 40) == 0);
    ipam_pool_free(&p1);
    ipam_pool_free(&p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_net_roundtrip),
        cmocka_unit_test(test_net_refuse),
        cmocka_unit_test(test_contains_overlap),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_offset_at),
        cmocka_unit_test(test_pool_exhaust),
        cmocka_unit_test(test_pool_take),
        cmocka_unit_test(test_pool_release),
        cmocka_unit_test(test_pool_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
