/* The per-tap filter in the host kernel: nftables netdev-family table with
 * an ingress chain on the tap (see herd/netdev_kfilter.h). The rules are
 * generated as nft text (netdev_kfilter_rules, pure) and applied through
 * libnftables in one transaction. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "herd/netdev_kfilter.h"

/* ---- configuration ----------------------------------------------------------- */

static int parse_prefix(const char *text, struct netdev_kf_prefix *p)
{
    char buf[64], *slash, *end;
    long plen = -1;

    if (strlen(text) >= sizeof(buf))
        return -EINVAL;
    snprintf(buf, sizeof(buf), "%s", text);
    if ((slash = strchr(buf, '/'))) {
        *slash = 0;
        if (!isdigit((unsigned char)slash[1]))
            return -EINVAL;
        plen = strtol(slash + 1, &end, 10);
        if (*end)
            return -EINVAL;
    }
    memset(p, 0, sizeof(*p));
    if (inet_pton(AF_INET, buf, &p->addr.v4) == 1) {
        p->family = AF_INET;
        p->plen = 32;
    } else if (inet_pton(AF_INET6, buf, &p->addr.v6) == 1) {
        p->family = AF_INET6;
        p->plen = 128;
    } else {
        return -EINVAL;
    }
    if (plen >= 0) {
        if ((unsigned long)plen > p->plen || plen == 0)
            return -EINVAL;
        p->plen = (unsigned)plen;
    }
    /* clear host bits */
    uint8_t *b = p->family == AF_INET ? (uint8_t *)&p->addr.v4 : p->addr.v6.s6_addr;
    unsigned bytes = p->family == AF_INET ? 4 : 16;
    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = p->plen > i * 8 ? p->plen - i * 8 : 0;
        if (keep < 8)
            b[i] &= (uint8_t)(0xff00u >> keep);
    }
    return 0;
}

static int parse_bucket(json_t *o, const char *field, struct tbucket_cfg *b,
                        struct herd_err *err)
{
    const char *k;
    json_t *v;

    memset(b, 0, sizeof(*b));
    if (!o)
        return 0;
    if (!json_is_object(o))
        return herd_err_set(err, -EINVAL, field, "%s must be {size, refill_time}", field);
    json_object_foreach(o, k, v) {
        if (strcmp(k, "size") && strcmp(k, "refill_time"))
            return herd_err_set(err, -EINVAL, field, "%s.%s: unknown field (size, "
                                "refill_time; the kernel limiter has no one_time_burst)",
                                field, k);
        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > (json_int_t)UINT32_MAX)
            return herd_err_set(err, -EINVAL, field, "%s.%s must be an integer in 1..%u",
                                field, k, UINT32_MAX);
    }
    b->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    b->refill_time_ms = (uint64_t)json_integer_value(json_object_get(o, "refill_time"));
    if (!b->size || !b->refill_time_ms)
        return herd_err_set(err, -EINVAL, field, "%s needs size and refill_time (ms)", field);
    if (b->size * 1000 / b->refill_time_ms == 0)
        return herd_err_set(err, -EINVAL, field, "%s: %llu per %llu ms is under 1 per "
                            "second", field, (unsigned long long)b->size,
                            (unsigned long long)b->refill_time_ms);
    return 0;
}

int netdev_kfilter_parse_nic(json_t *item, const char *field,
                             struct netdev_kfilter_cfg *cfg, struct herd_err *err)
{
    char f[128];
    json_t *a, *rl, *v;
    size_t i;
    const char *k;
    int rc;

    cfg->pin_ip = false;
    cfg->n_addrs = 0;
    memset(&cfg->bytes, 0, sizeof(cfg->bytes));
    memset(&cfg->frames, 0, sizeof(cfg->frames));
    if (!json_is_object(item))
        return 0;
    if ((a = json_object_get(item, "addresses"))) {
        snprintf(f, sizeof(f), "%s.addresses", field);
        if (!json_is_array(a) || json_array_size(a) > NETDEV_KF_MAX_ADDRS)
            return herd_err_set(err, -EINVAL, f, "%s must be a list of at most %d "
                                "addresses or prefixes", f, NETDEV_KF_MAX_ADDRS);
        cfg->pin_ip = true;
        json_array_foreach(a, i, v) {
            snprintf(f, sizeof(f), "%s.addresses[%zu]", field, i);
            if (!json_is_string(v) || parse_prefix(json_string_value(v), &cfg->addrs[i]))
                return herd_err_set(err, -EINVAL, f, "%s must be an IPv4 or IPv6 address "
                                    "or prefix (10.1.0.5, fd01::/64)", f);
            cfg->n_addrs++;
        }
    }
    if ((rl = json_object_get(item, "rate_limit"))) {
        snprintf(f, sizeof(f), "%s.rate_limit", field);
        if (!json_is_object(rl))
            return herd_err_set(err, -EINVAL, f, "%s must be {bandwidth, ops}", f);
        json_object_foreach(rl, k, v) {
            if (strcmp(k, "bandwidth") && strcmp(k, "ops"))
                return herd_err_set(err, -EINVAL, f, "%s.%s: unknown field (bandwidth, ops)",
                                    f, k);
        }
        snprintf(f, sizeof(f), "%s.rate_limit.bandwidth", field);
        if ((rc = parse_bucket(json_object_get(rl, "bandwidth"), f, &cfg->bytes, err)))
            return rc;
        snprintf(f, sizeof(f), "%s.rate_limit.ops", field);
        if ((rc = parse_bucket(json_object_get(rl, "ops"), f, &cfg->frames, err)))
            return rc;
    }
    return 0;
}

int netdev_kfilter_table_name(const char *tap, char out[IFNAMSIZ + 8])
{
    if (netdev_name_check(tap))
        return -EINVAL;
    for (const char *c = tap; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-')
            return -EINVAL;
    snprintf(out, IFNAMSIZ + 8, NETDEV_KF_TABLE_PREFIX "%s", tap);
    return 0;
}

/* ---- rule generation ----------------------------------------------------------- */

struct out {
    FILE *f;
    char *buf;
    size_t len;
};

static void link_local(const uint8_t m[6], struct in6_addr *a)
{
    const uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2],
                            0xff, 0xfe, m[3], m[4], m[5]};
    memcpy(a->s6_addr, ll, 16);
}

static void put_prefix(FILE *f, const struct netdev_kf_prefix *p)
{
    char t[INET6_ADDRSTRLEN];

    inet_ntop(p->family, &p->addr, t, sizeof(t));
    if (p->plen == (p->family == AF_INET ? 32u : 128u))
        fprintf(f, "%s", t);
    else
        fprintf(f, "%s/%u", t, p->plen);
}

/* The elements of allow<family> (family's prefixes; the link-local too for
 * IPv6). Returns how many. */
static unsigned put_elements(FILE *f, const struct netdev_kfilter_cfg *c, int family)
{
    unsigned n = 0;

    if (family == AF_INET6) {
        struct netdev_kf_prefix ll = {.family = AF_INET6, .plen = 128};
        link_local(c->mac, &ll.addr.v6);
        put_prefix(f, &ll);
        n++;
    }
    for (unsigned i = 0; i < c->n_addrs; i++) {
        if (c->addrs[i].family != family)
            continue;
        fputs(n++ ? ", " : "", f);
        put_prefix(f, &c->addrs[i]);
    }
    return n;
}

static void put_hex128(FILE *f, const uint8_t a[16])
{
    fputs("0x", f);
    for (int i = 0; i < 16; i++)
        fprintf(f, "%02x", a[i]);
}

/* allow6 as 128-bit integers (ranges for prefixes), for comparing the raw
 * ND target field (nft 1.0.6 has no ND target expression). */
static void put_targets(FILE *f, const struct netdev_kfilter_cfg *c)
{
    struct in6_addr ll;

    link_local(c->mac, &ll);
    fputs("{ ", f);
    put_hex128(f, ll.s6_addr);
    for (unsigned i = 0; i < c->n_addrs; i++) {
        const struct netdev_kf_prefix *p = &c->addrs[i];
        uint8_t hi[16];
        if (p->family != AF_INET6)
            continue;
        fputs(", ", f);
        put_hex128(f, p->addr.v6.s6_addr);
        if (p->plen == 128)
            continue;
        memcpy(hi, p->addr.v6.s6_addr, 16);
        for (unsigned b = p->plen; b < 128; b++)
            hi[b / 8] |= (uint8_t)(0x80u >> (b % 8));
        fputc('-', f);
        put_hex128(f, hi);
    }
    fputs(" }", f);
}

static void put_mac_hex(FILE *f, const uint8_t m[6])
{
    fprintf(f, "0x%02x%02x%02x%02x%02x%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* NS/NA/RS: fixed part of `fixed` bytes, then at most two options of 8
 * bytes each; a source/target link-layer option must carry the MAC. */
static void put_nd_shape(FILE *f, const struct netdev_kfilter_cfg *c, unsigned fixed)
{
    unsigned o1 = fixed * 8, o2 = (fixed + 8) * 8;

    fprintf(f, "\t\tip6 length != { %u, %u, %u } counter name nd_spoof drop\n", fixed,
            fixed + 8, fixed + 16);
    fprintf(f, "\t\tip6 length { %u, %u } @th,%u,8 != 1 counter name nd_spoof drop\n",
            fixed + 8, fixed + 16, o1 + 8);
    fprintf(f, "\t\tip6 length { %u, %u } @th,%u,8 { 1, 2 } @th,%u,48 != ", fixed + 8,
            fixed + 16, o1, o1 + 16);
    put_mac_hex(f, c->mac);
    fputs(" counter name nd_spoof drop\n", f);
    fprintf(f, "\t\tip6 length %u @th,%u,8 != 1 counter name nd_spoof drop\n", fixed + 16,
            o2 + 8);
    fprintf(f, "\t\tip6 length %u @th,%u,8 { 1, 2 } @th,%u,48 != ", fixed + 16, o2, o2 + 16);
    put_mac_hex(f, c->mac);
    fputs(" counter name nd_spoof drop\n", f);
}

static int bucket_ok(const struct tbucket_cfg *b)
{
    if (!b->size)
        return 0;
    if (!b->refill_time_ms || b->size > UINT32_MAX || b->size * 1000 / b->refill_time_ms == 0)
        return -EINVAL;
    return 0;
}

int netdev_kfilter_rules(const struct netdev_kfilter_cfg *c, char **out)
{
    static const char *const reasons[] = {
#define X(r) #r,
        NETDEV_KF_REASONS
#undef X
    };
    char table[IFNAMSIZ + 8], mac[18];
    struct out o = {0};
    FILE *f;
    int rc;

    *out = NULL;
    if ((rc = netdev_kfilter_table_name(c->tap, table)) || !netdev_mac_is_unicast(c->mac) ||
        c->n_addrs > NETDEV_KF_MAX_ADDRS || (rc = bucket_ok(&c->bytes)) ||
        (rc = bucket_ok(&c->frames)))
        return rc ? rc : -EINVAL;
    if (!(f = o.f = open_memstream(&o.buf, &o.len)))
        return -ENOMEM;
    netdev_mac_format(c->mac, mac);

    fprintf(f, "table netdev %s {\n", table);
    fputs("\tcounter accepted {\n\t}\n", f);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        fprintf(f, "\tcounter %s {\n\t}\n", reasons[i]);
    if (c->bytes.size)
        fprintf(f, "\tlimit limit_bytes {\n\t\trate over %llu bytes/second burst %llu bytes\n"
                "\t}\n", (unsigned long long)(c->bytes.size * 1000 / c->bytes.refill_time_ms),
                (unsigned long long)c->bytes.size);
    if (c->frames.size)
        fprintf(f, "\tlimit limit_frames {\n\t\trate over %llu/second burst %llu packets\n"
                "\t}\n", (unsigned long long)(c->frames.size * 1000 / c->frames.refill_time_ms),
                (unsigned long long)c->frames.size);
    if (c->pin_ip) {
        fputs("\tset allow4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n", f);
        bool any4 = false;
        for (unsigned i = 0; i < c->n_addrs; i++)
            any4 |= c->addrs[i].family == AF_INET;
        if (any4) {
            fputs("\t\telements = { ", f);
            put_elements(f, c, AF_INET);
            fputs(" }\n", f);
        }
        fputs("\t}\n\tset allow6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n"
              "\t\telements = { ", f);
        put_elements(f, c, AF_INET6);
        fputs(" }\n\t}\n", f);
    }

    /* the hook: every frame the guest sends */
    fprintf(f, "\tchain guest_tx {\n"
               "\t\ttype filter hook ingress device \"%s\" priority filter; policy accept;\n"
               "\t\tether saddr != %s counter name src_mac drop\n"
               "\t\tmeta protocol arp jump arp_check\n"
               "\t\tmeta protocol ip jump ip4_check\n"
               "\t\tmeta protocol ip6 jump ip6_check\n",
            c->tap, mac);
    /* One 802.1Q tag is stripped before the hook (the checks above see the
     * inner frame); a second one would hide it. Other ethertypes pass only
     * while the addresses are not pinned (as in the userspace filter). */
    if (c->pin_ip)
        fputs("\t\tmeta protocol != { arp, ip, ip6 } counter name ethertype drop\n", f);
    else
        fputs("\t\tmeta protocol { 0x8100, 0x88a8 } counter name ethertype drop\n", f);
    if (c->bytes.size)
        fputs("\t\tlimit name limit_bytes counter name rate_bytes drop\n", f);
    if (c->frames.size)
        fputs("\t\tlimit name limit_frames counter name rate_frames drop\n", f);
    fputs("\t\tcounter name accepted accept\n\t}\n", f);

    /* ARP */
    fputs("\tchain arp_check {\n"
          "\t\tarp htype != 1 counter name arp_spoof drop\n"
          "\t\tarp ptype != ip counter name arp_spoof drop\n"
          "\t\tarp hlen != 6 counter name arp_spoof drop\n"
          "\t\tarp plen != 4 counter name arp_spoof drop\n", f);
    fprintf(f, "\t\tarp saddr ether != %s counter name arp_spoof drop\n", mac);
    if (c->pin_ip)
        fputs("\t\tarp saddr ip 0.0.0.0 return\n"
              "\t\tarp saddr ip != @allow4 counter name arp_spoof drop\n", f);
    else
        fputs("\t\tarp saddr ip { 127.0.0.0/8, 224.0.0.0/3 } counter name arp_spoof drop\n", f);
    fputs("\t}\n", f);

    /* IPv4 */
    fputs("\tchain ip4_check {\n"
          "\t\tip version != 4 counter name malformed drop\n"
          "\t\tip hdrlength < 5 counter name malformed drop\n"
          "\t\tip saddr 0.0.0.0 udp sport 68 udp dport 67 return\n", f);
    if (c->pin_ip)
        fputs("\t\tip saddr != @allow4 counter name ip4_src drop\n", f);
    else
        fputs("\t\tip saddr { 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/3 } counter name ip4_src drop\n",
              f);
    fputs("\t}\n", f);

    /* IPv6 */
    fputs("\tchain ip6_check {\n"
          "\t\tip6 version != 6 counter name malformed drop\n"
          "\t\tmeta l4proto ipv6-icmp ip6 nexthdr != ipv6-icmp jump icmp6_behind_ext\n"
          "\t\tip6 saddr :: jump ip6_unspecified\n", f);
    if (c->pin_ip)
        fputs("\t\tip6 saddr != :: ip6 saddr != @allow6 counter name ip6_src drop\n", f);
    else
        fputs("\t\tip6 saddr { ::1, ::ffff:0:0/96, ff00::/8 } counter name ip6_src drop\n", f);
    fputs("\t\tip6 nexthdr ipv6-icmp icmpv6 type nd-router-solicit jump nd_rs\n"
          "\t\tip6 nexthdr ipv6-icmp icmpv6 type nd-neighbor-solicit jump nd_ns\n"
          "\t\tip6 nexthdr ipv6-icmp icmpv6 type nd-neighbor-advert jump nd_na\n"
          "\t}\n", f);
    /* RFC 6980: ND never behind extension headers or fragmented. ICMPv6
     * there passes only as MLD after hop-by-hop, as a later fragment (the
     * type is in the first) or as the first fragment of an echo. */
    fputs("\tchain icmp6_behind_ext {\n"
          "\t\tip6 nexthdr 0 icmpv6 type { mld-listener-query, mld-listener-report, "
          "mld-listener-done, mld2-listener-report } return\n"
          "\t\tfrag frag-off != 0 return\n"
          "\t\texthdr frag exists icmpv6 type { echo-request, echo-reply } return\n"
          "\t\tcounter name nd_spoof drop\n"
          "\t}\n", f);
    fputs("\tchain ip6_unspecified {\n"
          "\t\tip6 nexthdr ipv6-icmp icmpv6 type { nd-router-solicit, nd-neighbor-solicit } "
          "return\n"
          "\t\tip6 nexthdr 0 icmpv6 type { mld-listener-report, mld-listener-done, "
          "mld2-listener-report } return\n"
          "\t\tcounter name ip6_src drop\n"
          "\t}\n", f);
    fputs("\tchain nd_rs {\n", f);
    put_nd_shape(f, c, 8);
    fputs("\t}\n\tchain nd_ns {\n", f);
    put_nd_shape(f, c, 24);
    if (c->pin_ip) {
        fputs("\t\tip6 saddr :: @th,64,128 != ", f);
        put_targets(f, c);
        fputs(" counter name nd_spoof drop\n", f);
    }
    fputs("\t}\n\tchain nd_na {\n", f);
    put_nd_shape(f, c, 24);
    if (c->pin_ip) {
        fputs("\t\t@th,64,128 != ", f);
        put_targets(f, c);
        fputs(" counter name nd_spoof drop\n", f);
    }
    fputs("\t}\n}\n", f);

    if (fclose(f) || !o.buf) {
        free(o.buf);
        return -ENOMEM;
    }
    *out = o.buf;
    return 0;
}
