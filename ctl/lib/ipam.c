/*
 * ipam: IPv4/IPv6 subnets and a deterministic address pool. Text goes through
 * inet_pton/inet_ntop only; hosts are numbered by their offset from the
 * network address, and a pool is a calloc'd bitmap of those offsets (at most
 * IPAM_POOL_MAX bits, 8 KiB) scanned for the lowest free one. See herd/ipam.h.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "herd/ipam.h"

/* Bytes of an address of the family: 4, 16, or 0 for anything else. */
static unsigned fam_bytes(int family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* Whether a and b agree on their first len bits (len capped at nbytes * 8). */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned len, unsigned nbytes)
{
    if (len > nbytes * 8)
        len = nbytes * 8;
    unsigned full = len / 8, rest = len % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        if ((a[full] & mask) != (b[full] & mask))
            return false;
    }
    return true;
}

/* Whether any of bits len.. of a is set. */
static bool host_bits_set(const uint8_t *a, unsigned len, unsigned nbytes)
{
    for (unsigned i = 0; i < nbytes; i++) {
        unsigned lo = i * 8;
        uint8_t host = 0xff;
        if (lo + 8 <= len)
            continue;
        if (lo < len)
            host = (uint8_t)(0xffu >> (len - lo));
        if (a[i] & host)
            return true;
    }
    return false;
}

int ipam_addr_parse(const char *s, int family, struct ipam_addr *out)
{
    if (!s || !out || !fam_bytes(family) || !*s)
        return -EINVAL;
    size_t n = strlen(s);
    if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
        return -EINVAL;
    struct ipam_addr a;
    memset(&a, 0, sizeof(a));
    a.family = family;
    if (inet_pton(family, s, a.b) != 1)
        return -EINVAL;
    *out = a;
    return 0;
}

void ipam_addr_format(const struct ipam_addr *a, char out[IPAM_ADDR_STR])
{
    out[0] = '\0';
    if (!fam_bytes(a->family) || !inet_ntop(a->family, a->b, out, IPAM_ADDR_STR))
        out[0] = '\0';
}

bool ipam_addr_equal(const struct ipam_addr *a, const struct ipam_addr *b)
{
    unsigned nb = fam_bytes(a->family);
    return nb && a->family == b->family && memcmp(a->b, b->b, nb) == 0;
}

static int net_bad(const char *s, int family, const char *field, struct herd_err *err)
{
    if (family == AF_INET)
        return herd_err_set(err, -EINVAL, field,
                            "%s: not an IPv4 subnet (expected e.g. 10.1.0.0/24)", s);
    if (family == AF_INET6)
        return herd_err_set(err, -EINVAL, field,
                            "%s: not an IPv6 subnet (expected e.g. fd00:1::/64)", s);
    return herd_err_set(err, -EINVAL, field, "%s: not a subnet (unknown address family %d)", s,
                        family);
}

int ipam_net_parse(const char *s, int family, struct ipam_net *out, const char *field,
                   struct herd_err *err)
{
    if (!s)
        s = "";
    if (!fam_bytes(family))
        return net_bad(s, family, field, err);

    const char *slash = strchr(s, '/');
    char addr[IPAM_ADDR_STR];
    if (!slash || (size_t)(slash - s) >= sizeof(addr))
        return net_bad(s, family, field, err);
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';

    struct ipam_net n;
    memset(&n, 0, sizeof(n));
    if (ipam_addr_parse(addr, family, &n.base) != 0)
        return net_bad(s, family, field, err);

    /* The prefix: 1 to 3 decimal digits, no sign, no leading zero. */
    const char *p = slash + 1;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 3 || p[digits] != '\0' || (p[0] == '0' && digits > 1))
        return net_bad(s, family, field, err);
    unsigned len = 0;
    for (size_t i = 0; i < digits; i++)
        len = len * 10 + (unsigned)(p[i] - '0');

    if (family == AF_INET && (len < IPAM_V4_LEN_MIN || len > IPAM_V4_LEN_MAX))
        return herd_err_set(err, -EINVAL, field, "%s: an IPv4 subnet must be /%d to /%d", s,
                            IPAM_V4_LEN_MIN, IPAM_V4_LEN_MAX);
    if (family == AF_INET6 && (len < IPAM_V6_LEN_MIN || len > IPAM_V6_LEN_MAX))
        return herd_err_set(err, -EINVAL, field, "%s: an IPv6 subnet must be /%d to /%d", s,
                            IPAM_V6_LEN_MIN, IPAM_V6_LEN_MAX);
    n.len = len;

    unsigned nb = fam_bytes(family);
    if (host_bits_set(n.base.b, len, nb)) {
        struct ipam_net fixed = n;
        for (unsigned i = 0; i < nb; i++) {
            unsigned lo = i * 8;
            if (lo >= len)
                fixed.base.b[i] = 0;
            else if (lo + 8 > len)
                fixed.base.b[i] &= (uint8_t)(0xffu << (8 - (len - lo)));
        }
        char txt[IPAM_NET_STR];
        ipam_net_format(&fixed, txt);
        return herd_err_set(err, -EINVAL, field, "%s: host bits are set (the subnet is %s)", s,
                            txt);
    }
    if (out)
        *out = n;
    return 0;
}

void ipam_addr_format_len(const struct ipam_addr *a, unsigned len, char out[IPAM_NET_STR])
{
    char t[IPAM_ADDR_STR];
    ipam_addr_format(a, t);
    if (!t[0]) {
        out[0] = '\0';
        return;
    }
    snprintf(out, IPAM_NET_STR, "%s/%u", t, len);
}

void ipam_net_format(const struct ipam_net *n, char out[IPAM_NET_STR])
{
    ipam_addr_format_len(&n->base, n->len, out);
}

bool ipam_net_contains(const struct ipam_net *n, const struct ipam_addr *a)
{
    unsigned nb = fam_bytes(n->base.family);
    return nb && a->family == n->base.family && prefix_equal(n->base.b, a->b, n->len, nb);
}

bool ipam_net_overlap(const struct ipam_net *a, const struct ipam_net *b)
{
    unsigned nb = fam_bytes(a->base.family);
    unsigned len = a->len < b->len ? a->len : b->len;
    return nb && a->base.family == b->base.family && prefix_equal(a->base.b, b->base.b, len, nb);
}

uint32_t ipam_net_hosts(const struct ipam_net *n)
{
    unsigned nb = fam_bytes(n->base.family);
    if (!nb || n->len >= nb * 8)
        return 0;
    unsigned h = nb * 8 - n->len; /* host bits */
    if (h >= 17)                  /* 2^17 - 2 > IPAM_POOL_MAX */
        return IPAM_POOL_MAX;
    uint32_t all = (uint32_t)1 << h;
    uint32_t hosts = n->base.family == AF_INET ? all - 2 : all - 1;
    return hosts > IPAM_POOL_MAX ? IPAM_POOL_MAX : hosts;
}

int ipam_net_offset(const struct ipam_net *n, const struct ipam_addr *a, uint32_t *off)
{
    if (!ipam_net_contains(n, a))
        return -ERANGE;
    unsigned nb = fam_bytes(a->family);
    uint8_t host[16];
    memcpy(host, a->b, nb);
    for (unsigned i = 0; i < nb; i++) {
        unsigned lo = i * 8;
        if (lo + 8 <= n->len)
            host[i] = 0;
        else if (lo < n->len)
            host[i] &= (uint8_t)(0xffu >> (n->len - lo));
    }
    for (unsigned i = 0; i + 4 < nb; i++)
        if (host[i])
            return -EINVAL; /* past the cap */
    uint32_t v = (uint32_t)host[nb - 4] << 24 | (uint32_t)host[nb - 3] << 16 |
                 (uint32_t)host[nb - 2] << 8 | host[nb - 1];
    if (v == 0 || v > ipam_net_hosts(n))
        return -EINVAL; /* network, broadcast, or past the cap */
    if (off)
        *off = v;
    return 0;
}

int ipam_net_at(const struct ipam_net *n, uint32_t off, struct ipam_addr *out)
{
    if (off == 0 || off > ipam_net_hosts(n))
        return -ERANGE;
    unsigned nb = fam_bytes(n->base.family);
    struct ipam_addr a;
    memset(&a, 0, sizeof(a));
    a.family = n->base.family;
    memcpy(a.b, n->base.b, nb);
    /* off < 2^(host bits), so it only touches host bits (zero in base). */
    a.b[nb - 4] |= (uint8_t)(off >> 24);
    a.b[nb - 3] |= (uint8_t)(off >> 16);
    a.b[nb - 2] |= (uint8_t)(off >> 8);
    a.b[nb - 1] |= (uint8_t)off;
    *out = a;
    return 0;
}

int ipam_pool_init(struct ipam_pool *p, const struct ipam_net *n)
{
    memset(p, 0, sizeof(*p));
    p->net = *n;
    p->hosts = ipam_net_hosts(n);
    p->taken = calloc(p->hosts / 8 + 1, 1);
    return p->taken ? 0 : -ENOMEM;
}

void ipam_pool_free(struct ipam_pool *p)
{
    if (!p)
        return;
    free(p->taken);
    memset(p, 0, sizeof(*p));
}

static bool bit_get(const struct ipam_pool *p, uint32_t off)
{
    return p->taken[(off - 1) / 8] & (1u << ((off - 1) % 8));
}

int ipam_pool_take(struct ipam_pool *p, const struct ipam_addr *a)
{
    uint32_t off;
    int rc = ipam_net_offset(&p->net, a, &off);
    if (rc)
        return rc;
    if (bit_get(p, off))
        return -EEXIST;
    p->taken[(off - 1) / 8] |= (uint8_t)(1u << ((off - 1) % 8));
    p->n_taken++;
    return 0;
}

int ipam_pool_alloc(struct ipam_pool *p, struct ipam_addr *out)
{
    uint32_t nbytes = (p->hosts + 7) / 8;
    for (uint32_t i = 0; i < nbytes; i++) {
        if (p->taken[i] == 0xff)
            continue;
        unsigned bit = (unsigned)__builtin_ctz(~(unsigned)p->taken[i]);
        uint32_t off = i * 8 + bit + 1;
        if (off > p->hosts)
            break;
        int rc = ipam_net_at(&p->net, off, out);
        if (rc)
            return rc;
        p->taken[i] |= (uint8_t)(1u << bit);
        p->n_taken++;
        return 0;
    }
    return -ENOSPC;
}

void ipam_pool_release(struct ipam_pool *p, const struct ipam_addr *a)
{
    uint32_t off;
    if (ipam_net_offset(&p->net, a, &off) != 0 || !bit_get(p, off))
        return;
    p->taken[(off - 1) / 8] &= (uint8_t) ~(1u << ((off - 1) % 8));
    p->n_taken--;
}

bool ipam_pool_taken(const struct ipam_pool *p, const struct ipam_addr *a)
{
    uint32_t off;
    return ipam_net_offset(&p->net, a, &off) == 0 && bit_get(p, off);
}

uint32_t ipam_pool_free_count(const struct ipam_pool *p)
{
    return p->hosts - p->n_taken;
}
