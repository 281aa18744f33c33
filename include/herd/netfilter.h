/*
 * netfilter: anti-spoofing decisions for the userspace packet path (the
 * frames herd-vmm's virtio-net moves between a guest and its tap). Pure
 * logic: no I/O, no allocation, no locks.
 *
 * Transmit (guest -> tap), netfilter_tx:
 *   - the Ethernet source must be the NIC's MAC;
 *   - ARP: the sender hardware address must be the NIC's MAC; with an allowed
 *     set, the sender IP must be in it (0.0.0.0, an RFC 5227 probe, passes);
 *   - with an allowed set: IPv4 source in the set (0.0.0.0 only for DHCP,
 *     UDP 68 -> 67); IPv6 source in the set or the NIC's EUI-64 link-local
 *     address (:: only for ICMPv6 and hop-by-hop, i.e. DAD and MLD); an
 *     ICMPv6 neighbour advertisement's target must be allowed too;
 *   - always: the link-layer address options of NS/NA/RS must carry the
 *     NIC's MAC, and ICMPv6 behind extension headers is refused unless it
 *     is MLD right after hop-by-hop, a later fragment or the first fragment
 *     of an echo (so neighbour discovery cannot hide behind them: RFC 6980);
 *     the extension header chain is walked with bounds (8 headers at most);
 *   - with an allowed set, ethertypes other than ARP, IPv4 and IPv6 are
 *     dropped (up to two 802.1Q/802.1ad tags are looked through).
 * Receive (tap -> guest), netfilter_rx: unless promiscuous (off by default),
 * only frames for the NIC's MAC, broadcast and multicast reach the guest.
 *
 * The allowed set is "configured" once netfilter_allow_ip was called (or
 * restrict_ip set): from then on a family with no address allows none.
 * Changing a filter while another thread uses it is the caller's business
 * (herd-vmm swaps whole structs between frames).
 */
#ifndef HERD_NETFILTER_H
#define HERD_NETFILTER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETFILTER_MAX_IP4 16
#define NETFILTER_MAX_IP6 16

/* Verdicts double as drop-reason indexes in struct netstats. */
enum netfilter_verdict {
    NETFILTER_PASS = 0,
    NETFILTER_DROP_MALFORMED,  /* too short / bad header for its type */
    NETFILTER_DROP_SRC_MAC,    /* Ethernet source is not the NIC's MAC */
    NETFILTER_DROP_ARP,        /* ARP sender MAC or IP not allowed */
    NETFILTER_DROP_IP4_SRC,    /* IPv4 source not allowed */
    NETFILTER_DROP_IP6_SRC,    /* IPv6 source not allowed */
    NETFILTER_DROP_ND,         /* IPv6 neighbour discovery spoofing */
    NETFILTER_DROP_ETHERTYPE,  /* not ARP/IPv4/IPv6 while IPs restricted */
    NETFILTER_DROP_NOT_FOR_US, /* rx: unicast for another MAC, promisc off */
    NETFILTER_VERDICT_COUNT
};

struct netfilter {
    uint8_t mac[6];
    bool promisc;     /* rx: deliver every frame */
    bool restrict_ip; /* the allowed set below is enforced */
    unsigned n_ip4, n_ip6;
    struct in_addr ip4[NETFILTER_MAX_IP4];
    struct in6_addr ip6[NETFILTER_MAX_IP6];
};

void netfilter_init(struct netfilter *f, const uint8_t mac[6]);
/* Adds an IPv4 or IPv6 address (text) to the allowed set and turns
 * restrict_ip on. -EINVAL on bad text, -ENOSPC when the set is full. */
int netfilter_allow_ip(struct netfilter *f, const char *addr);

enum netfilter_verdict netfilter_tx(const struct netfilter *f,
                                    const void *frame, size_t len);
enum netfilter_verdict netfilter_rx(const struct netfilter *f,
                                    const void *frame, size_t len);
const char *netfilter_verdict_name(enum netfilter_verdict v); /* "src_mac" */

#endif
