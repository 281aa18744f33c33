/* Anti-spoofing decisions on raw Ethernet frames (see herd/netfilter.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "herd/netfilter.h"

#define ETH_HLEN_ 14
#define ETHTYPE_IP4 0x0800
#define ETHTYPE_ARP 0x0806
#define ETHTYPE_IP6 0x86dd
#define ETHTYPE_VLAN 0x8100
#define ETHTYPE_QINQ 0x88a8
#define IPPROTO_ICMP6_ 58
#define IPPROTO_HOPOPTS_ 0
#define ND_RS 133
#define ND_NS 135
#define ND_NA 136
#define ND_OPT_SRC_LL 1
#define ND_OPT_TGT_LL 2

struct frame {
    const uint8_t *p;
    size_t len;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

void netfilter_init(struct netfilter *f, const uint8_t mac[6])
{
    memset(f, 0, sizeof(*f));
    memcpy(f->mac, mac, 6);
}

int netfilter_allow_ip(struct netfilter *f, const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, addr, &a4) == 1) {
        if (f->n_ip4 >= NETFILTER_MAX_IP4)
            return -ENOSPC;
        f->ip4[f->n_ip4++] = a4;
    } else if (inet_pton(AF_INET6, addr, &a6) == 1) {
        if (f->n_ip6 >= NETFILTER_MAX_IP6)
            return -ENOSPC;
        f->ip6[f->n_ip6++] = a6;
    } else {
        return -EINVAL;
    }
    f->restrict_ip = true;
    return 0;
}

static bool ip4_allowed(const struct netfilter *f, const uint8_t *a)
{
    for (unsigned i = 0; i < f->n_ip4; i++) {
        if (memcmp(&f->ip4[i], a, 4) == 0)
            return true;
    }
    return false;
}

/* fe80::/64 with the modified EUI-64 of the NIC's MAC. */
static bool ip6_is_own_linklocal(const struct netfilter *f, const uint8_t *a)
{
    const uint8_t *m = f->mac;
    const uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2],
                            0xff, 0xfe, m[3], m[4], m[5]};

    return memcmp(a, ll, 16) == 0;
}

static bool ip6_allowed(const struct netfilter *f, const uint8_t *a)
{
    if (ip6_is_own_linklocal(f, a))
        return true;
    for (unsigned i = 0; i < f->n_ip6; i++) {
        if (memcmp(&f->ip6[i], a, 16) == 0)
            return true;
    }
    return false;
}

static enum netfilter_verdict check_arp(const struct netfilter *f, struct frame fr)
{
    static const uint8_t zero4[4];
    const uint8_t *a = fr.p;

    if (fr.len < 28)
        return NETFILTER_DROP_MALFORMED;
    if (rd16(a) != 1 || rd16(a + 2) != ETHTYPE_IP4 || a[4] != 6 || a[5] != 4)
        return NETFILTER_DROP_ARP; /* only Ethernet/IPv4 ARP from a guest */
    if (memcmp(a + 8, f->mac, 6) != 0)
        return NETFILTER_DROP_ARP;
    if (f->restrict_ip && memcmp(a + 14, zero4, 4) != 0 && !ip4_allowed(f, a + 14))
        return NETFILTER_DROP_ARP;
    return NETFILTER_PASS;
}

/* 0.0.0.0 -> UDP 68 -> 67: a DHCP client without an address yet. */
static bool ip4_is_dhcp_client(struct frame fr, size_t ihl)
{
    const uint8_t *udp = fr.p + ihl;

    return fr.p[9] == IPPROTO_UDP && fr.len >= ihl + 8 && rd16(udp) == 68 &&
           rd16(udp + 2) == 67;
}

static enum netfilter_verdict check_ip4(const struct netfilter *f, struct frame fr)
{
    static const uint8_t zero4[4];
    size_t ihl;

    if (fr.len < 20 || (fr.p[0] >> 4) != 4)
        return NETFILTER_DROP_MALFORMED;
    ihl = (size_t)(fr.p[0] & 0x0f) * 4;
    if (ihl < 20 || fr.len < ihl)
        return NETFILTER_DROP_MALFORMED;
    if (!f->restrict_ip || ip4_allowed(f, fr.p + 12))
        return NETFILTER_PASS;
    if (memcmp(fr.p + 12, zero4, 4) == 0 && ip4_is_dhcp_client(fr, ihl))
        return NETFILTER_PASS;
    return NETFILTER_DROP_IP4_SRC;
}

/* NS/NA/RS: link-layer address options must be ours; NA's target allowed. */
static enum netfilter_verdict check_nd(const struct netfilter *f, const uint8_t *icmp,
                                       size_t len)
{
    size_t off;

    if (len < 4 || (icmp[0] != ND_RS && icmp[0] != ND_NS && icmp[0] != ND_NA))
        return NETFILTER_PASS;
    off = icmp[0] == ND_RS ? 8 : 24;
    if (len < off)
        return NETFILTER_DROP_MALFORMED;
    if (icmp[0] == ND_NA && f->restrict_ip && !ip6_allowed(f, icmp + 8))
        return NETFILTER_DROP_ND;
    while (off + 2 <= len) {
        size_t olen = (size_t)icmp[off + 1] * 8;
        if (olen == 0 || off + olen > len)
            return NETFILTER_DROP_MALFORMED;
        if ((icmp[off] == ND_OPT_SRC_LL || icmp[off] == ND_OPT_TGT_LL) &&
            (olen < 8 || memcmp(icmp + off + 2, f->mac, 6) != 0))
            return NETFILTER_DROP_ND;
        off += olen;
    }
    return NETFILTER_PASS;
}

#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60
#define IP6_MAX_EXT 8
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define MLD_QUERY 130
#define MLD_DONE 132
#define MLD2_REPORT 143

static bool icmp6_is_mld(uint8_t type)
{
    return (type >= MLD_QUERY && type <= MLD_DONE) || type == MLD2_REPORT;
}

/* ICMPv6 that is not directly after the fixed header (item 7a). Neighbour
 * discovery must not hide there: RFC 6980 forbids fragmenting it and
 * nothing legitimate puts other headers in front of it, so the chain of
 * extension headers is walked (bounded) and ICMPv6 behind it passes only
 * as MLD right after hop-by-hop (router alert), as a later fragment (its
 * type is in the first one), or as the first fragment of an echo. *off
 * gets the upper-layer offset (40 when there are no extension headers),
 * *nh its protocol; NETFILTER_PASS when there is nothing to refuse. */
static enum netfilter_verdict walk_ip6_ext(struct frame fr, uint8_t *nh, size_t *off)
{
    uint8_t first = *nh;
    bool frag = false;
    int n = 0;

    *off = 40;
    for (; n <= IP6_MAX_EXT; n++) {
        const uint8_t *h = fr.p + *off;
        size_t hlen;

        if (*nh != IPPROTO_HOPOPTS_ && *nh != IPPROTO_ROUTING_ && *nh != IPPROTO_DSTOPTS_ &&
            *nh != IPPROTO_FRAGMENT_ && *nh != IPPROTO_AH_)
            break;
        if (n == IP6_MAX_EXT || *off + 8 > fr.len)
            return NETFILTER_DROP_MALFORMED;
        if (*nh == IPPROTO_FRAGMENT_) {
            frag = true;
            if (rd16(h + 2) & 0xfff8) /* a later fragment: no header to see */
                return NETFILTER_PASS;
            hlen = 8;
        } else if (*nh == IPPROTO_AH_) {
            hlen = ((size_t)h[1] + 2) * 4;
        } else {
            hlen = ((size_t)h[1] + 1) * 8;
        }
        if (*off + hlen > fr.len)
            return NETFILTER_DROP_MALFORMED;
        *nh = h[0];
        *off += hlen;
    }
    if (*nh != IPPROTO_ICMP6_ || n == 0)
        return NETFILTER_PASS;
    if (*off + 1 > fr.len) /* its type is not in this (first) fragment */
        return NETFILTER_DROP_ND;
    if (n == 1 && first == IPPROTO_HOPOPTS_ && icmp6_is_mld(fr.p[*off]))
        return NETFILTER_PASS;
    if (frag && (fr.p[*off] == ICMP6_ECHO_REQUEST || fr.p[*off] == ICMP6_ECHO_REPLY))
        return NETFILTER_PASS;
    return NETFILTER_DROP_ND;
}

static enum netfilter_verdict check_ip6(const struct netfilter *f, struct frame fr)
{
    static const uint8_t any6[16];
    enum netfilter_verdict v;
    uint8_t nh;
    size_t off;

    if (fr.len < 40 || (fr.p[0] >> 4) != 6)
        return NETFILTER_DROP_MALFORMED;
    nh = fr.p[6];
    if ((v = walk_ip6_ext(fr, &nh, &off)) != NETFILTER_PASS)
        return v;
    if (off != 40) /* allowed ICMPv6 behind extension headers is not ND */
        nh = 0;
    if (f->restrict_ip) {
        if (memcmp(fr.p + 8, any6, 16) == 0) {
            /* No address yet: DAD (ICMPv6 NS) and MLD (hop-by-hop) only. */
            if (fr.p[6] != IPPROTO_ICMP6_ && fr.p[6] != IPPROTO_HOPOPTS_)
                return NETFILTER_DROP_IP6_SRC;
        } else if (!ip6_allowed(f, fr.p + 8)) {
            return NETFILTER_DROP_IP6_SRC;
        }
    }
    if (nh == IPPROTO_ICMP6_)
        return check_nd(f, fr.p + 40, fr.len - 40);
    return NETFILTER_PASS;
}

enum netfilter_verdict netfilter_tx(const struct netfilter *f, const void *frame,
                                    size_t len)
{
    struct frame fr = {frame, len};
    uint16_t type;
    size_t off = 12;

    if (len < ETH_HLEN_)
        return NETFILTER_DROP_MALFORMED;
    if (memcmp(fr.p + 6, f->mac, 6) != 0)
        return NETFILTER_DROP_SRC_MAC;
    type = rd16(fr.p + off);
    for (int tags = 0; tags < 2 && (type == ETHTYPE_VLAN || type == ETHTYPE_QINQ); tags++) {
        off += 4;
        if (len < off + 2)
            return NETFILTER_DROP_MALFORMED;
        type = rd16(fr.p + off);
    }
    fr.p += off + 2;
    fr.len -= off + 2;
    switch (type) {
    case ETHTYPE_ARP: return check_arp(f, fr);
    case ETHTYPE_IP4: return check_ip4(f, fr);
    case ETHTYPE_IP6: return check_ip6(f, fr);
    default: return f->restrict_ip ? NETFILTER_DROP_ETHERTYPE : NETFILTER_PASS;
    }
}

enum netfilter_verdict netfilter_rx(const struct netfilter *f, const void *frame,
                                    size_t len)
{
    const uint8_t *p = frame;

    if (len < ETH_HLEN_)
        return NETFILTER_DROP_MALFORMED;
    if (f->promisc || (p[0] & 1) || memcmp(p, f->mac, 6) == 0)
        return NETFILTER_PASS;
    return NETFILTER_DROP_NOT_FOR_US;
}

const char *netfilter_verdict_name(enum netfilter_verdict v)
{
    static const char *const names[NETFILTER_VERDICT_COUNT] = {
        [NETFILTER_PASS] = "pass",
        [NETFILTER_DROP_MALFORMED] = "malformed",
        [NETFILTER_DROP_SRC_MAC] = "src_mac",
        [NETFILTER_DROP_ARP] = "arp_spoof",
        [NETFILTER_DROP_IP4_SRC] = "ip4_src",
        [NETFILTER_DROP_IP6_SRC] = "ip6_src",
        [NETFILTER_DROP_ND] = "nd_spoof",
        [NETFILTER_DROP_ETHERTYPE] = "ethertype",
        [NETFILTER_DROP_NOT_FOR_US] = "not_for_us",
    };

    if ((unsigned)v >= NETFILTER_VERDICT_COUNT)
        return "?";
    return names[v];
}
