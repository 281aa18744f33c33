/*
 * ipam: IPv4 and IPv6 subnets and a deterministic address pool, for the
 * addressing of range guests (docs/ranges.md "Addressing"). Pure: no I/O,
 * no global state; libherd-ctl.a.
 *
 * A subnet is a network address and a prefix length. Its usable hosts are
 * numbered by their offset from the network address:
 *   IPv4: 1 .. 2^(32-len) - 2 (the network and broadcast addresses are not
 *         hosts); prefixes /16 .. /30 (a /16 has 65534 hosts);
 *   IPv6: 1 .. min(2^(128-len) - 1, IPAM_POOL_MAX); prefixes /48 .. /126.
 * A pool marks which hosts of one subnet are taken and hands out the lowest
 * free one, so the same requests in the same order always get the same
 * addresses.
 */
#ifndef HERD_IPAM_H
#define HERD_IPAM_H

#include <stdbool.h>
#include <stdint.h>

#include "herd/error.h"

#define IPAM_POOL_MAX 65534u     /* hosts a pool tracks, at most */
#define IPAM_V4_LEN_MIN 16
#define IPAM_V4_LEN_MAX 30
#define IPAM_V6_LEN_MIN 48
#define IPAM_V6_LEN_MAX 126
#define IPAM_ADDR_STR 46         /* INET6_ADDRSTRLEN */
#define IPAM_NET_STR (IPAM_ADDR_STR + 4)

struct ipam_addr {
    int family;                  /* AF_INET or AF_INET6 */
    uint8_t b[16];               /* network byte order; IPv4 in b[0..3] */
};

struct ipam_net {
    struct ipam_addr base;       /* the network address (host bits zero) */
    unsigned len;                /* prefix length */
};

/* "192.0.2.7" (family AF_INET) or "2001:db8::7" (AF_INET6) into out;
 * -EINVAL for anything else (no prefix, no spaces, no IPv4-mapped forms
 * where IPv4 is asked for). The text is what inet_pton(family) accepts, so
 * IPv4 wants four decimal parts without leading zeros ("1.2.3" and
 * "01.2.3.4" are refused). out is written only on success; unused bytes of
 * b are zero. */
int ipam_addr_parse(const char *s, int family, struct ipam_addr *out);
void ipam_addr_format(const struct ipam_addr *a, char out[IPAM_ADDR_STR]);
bool ipam_addr_equal(const struct ipam_addr *a, const struct ipam_addr *b);

/* "10.1.0.0/24" or "fd00:1::/64" of the given family into out, prefix
 * within the bounds above and host bits zero. The address is as
 * ipam_addr_parse; the prefix is 1 to 3 decimal digits with no sign and no
 * leading zero ("/024" is refused, as "01.2.3.4" is). Errors fill err
 * (code -EINVAL, field as given) with a message naming s and what was
 * expected, e.g.
 * "10.1.0.5/24: host bits are set (the subnet is 10.1.0.0/24)",
 * "10.0.0.0/8: an IPv4 subnet must be /16 to /30" or
 * "x/24: not an IPv4 subnet (expected e.g. 10.1.0.0/24)"
 * ("fd00:1::/64" for IPv6); returns -EINVAL and leaves out untouched. */
int ipam_net_parse(const char *s, int family, struct ipam_net *out, const char *field,
                   struct herd_err *err);
/* Canonical text (inet_ntop: IPv6 lower-case, longest zero run as "::"). */
/* "A/LEN": an address with a prefix length (a NIC's address, host bits
 * kept); "" for an unknown family, like ipam_net_format. */
void ipam_addr_format_len(const struct ipam_addr *a, unsigned len, char out[IPAM_NET_STR]);
void ipam_net_format(const struct ipam_net *n, char out[IPAM_NET_STR]);
bool ipam_net_contains(const struct ipam_net *n, const struct ipam_addr *a);
/* Whether two subnets share an address (false across families). */
bool ipam_net_overlap(const struct ipam_net *a, const struct ipam_net *b);
/* The number of usable hosts (capped at IPAM_POOL_MAX). */
uint32_t ipam_net_hosts(const struct ipam_net *n);
/* a's host offset in n: 0, or -ERANGE outside n, -EINVAL when a is in n
 * but not a usable host (network or broadcast address, or past the cap). */
int ipam_net_offset(const struct ipam_net *n, const struct ipam_addr *a, uint32_t *off);
/* The host at offset off (1..ipam_net_hosts) of n. -ERANGE otherwise. */
int ipam_net_at(const struct ipam_net *n, uint32_t off, struct ipam_addr *out);

struct ipam_pool {
    struct ipam_net net;
    uint32_t hosts;              /* ipam_net_hosts(&net) */
    uint32_t n_taken;
    uint8_t *taken;              /* bit off-1 set: host off is taken */
};

/* An empty pool over n. 0 or -ENOMEM. */
int ipam_pool_init(struct ipam_pool *p, const struct ipam_net *n);
void ipam_pool_free(struct ipam_pool *p);
/* Takes a given address: 0; -EEXIST if taken already; -ERANGE / -EINVAL as
 * ipam_net_offset. */
int ipam_pool_take(struct ipam_pool *p, const struct ipam_addr *a);
/* Takes the lowest free host into out: 0, or -ENOSPC when none is left. */
int ipam_pool_alloc(struct ipam_pool *p, struct ipam_addr *out);
/* Gives a taken address back (nothing if it was not taken or not in p). */
void ipam_pool_release(struct ipam_pool *p, const struct ipam_addr *a);
bool ipam_pool_taken(const struct ipam_pool *p, const struct ipam_addr *a);
uint32_t ipam_pool_free_count(const struct ipam_pool *p);

#endif
