/*
 * netdev_kfilter: the per-tap filter in the host kernel (nftables, netdev
 * family, ingress hook on the tap). It sees every frame a guest transmits
 * before the bridge does, whatever moves it into the tap (herd-vmm's
 * userspace virtio-net or vhost-net), and no process of the guest's can
 * change it. herdd installs it when it makes the tap, before the guest runs,
 * and removes it with the tap.
 *
 * One table per tap, "netdev herd-<tap>", holding:
 *   - named counters, one per drop reason (NETDEV_KF_REASONS) and
 *     "accepted";
 *   - named limits "limit_bytes" / "limit_frames" (token buckets, when the
 *     NIC has a rate limit);
 *   - sets "allow4" / "allow6" (when the NIC's addresses are pinned);
 *   - the base chain "guest_tx" (hook ingress, device <tap>) and regular
 *     chains it jumps to.
 * What it enforces (docs/netdev.md has the reasons):
 *   - Ethernet source = the NIC's MAC; one 802.1Q tag is looked through
 *     (the kernel strips it before the hook), a second one is dropped;
 *     with pinned addresses, only ARP, IPv4 and IPv6;
 *   - ARP: Ethernet/IPv4 only, sender MAC = the NIC's; sender IP in allow4
 *     (or 0.0.0.0, a probe) when pinned, not a martian otherwise;
 *   - IPv4/IPv6 source in allow4/allow6 when pinned (0.0.0.0 only for DHCP
 *     68->67; :: only for DAD, RS and MLD; the NIC's EUI-64 link-local is
 *     always in allow6), not a martian otherwise;
 *   - neighbour discovery only directly after the IPv6 header (RFC 6980),
 *     NS/NA/RS with at most two 8-byte options, link-layer options = the
 *     NIC's MAC, NA and DAD NS targets in allow6 when pinned;
 *   - the rate limits (frames over them are dropped and counted).
 */
#ifndef HERD_NETDEV_KFILTER_H
#define HERD_NETDEV_KFILTER_H

#include <jansson.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "herd/netdev.h"
#include "herd/ratelimit.h"

#define NETDEV_KF_MAX_ADDRS 16
#define NETDEV_KF_TABLE_PREFIX "herd-"

/* Drop reasons, in rule order: counter names in the table and in
 * netdev_kfilter_stats' JSON. */
#define NETDEV_KF_REASONS \
    X(malformed) X(src_mac) X(ethertype) X(arp_spoof) X(ip4_src) X(ip6_src) \
    X(nd_spoof) X(rate_bytes) X(rate_frames)

struct netdev_kf_prefix {
    int family;                /* AF_INET or AF_INET6 */
    union netdev_inaddr addr;  /* host bits cleared */
    unsigned plen;             /* 32/128 for one address */
};

struct netdev_kfilter_cfg {
    char tap[IFNAMSIZ];
    uint8_t mac[6];            /* the guest's MAC (not the tap's) */
    bool pin_ip;               /* "addresses" given (even empty): sources pinned */
    unsigned n_addrs;
    struct netdev_kf_prefix addrs[NETDEV_KF_MAX_ADDRS];
    struct tbucket_cfg bytes;  /* size 0: no byte limit */
    struct tbucket_cfg frames; /* size 0: no frame limit */
};

/* Fills the policy part of cfg (pin_ip, addrs, bytes, frames) from a NIC
 * item of a template or guest: {"addresses": ["10.1.0.5", "fd01::/64"],
 * "rate_limit": {"bandwidth": {"size": BYTES, "refill_time": MS},
 *                "ops": {"size": FRAMES, "refill_time": MS}}}.
 * A string item or an object without those keys leaves everything open
 * (no pinning, no limit). Other keys are the caller's. err->field gets
 * "<field>.addresses[1]" etc. 0 or -EINVAL. */
int netdev_kfilter_parse_nic(json_t *item, const char *field,
                             struct netdev_kfilter_cfg *cfg, struct herd_err *err);

/* "herd-<tap>"; -EINVAL for a tap name with characters other than
 * [A-Za-z0-9_.-]. */
int netdev_kfilter_table_name(const char *tap, char out[IFNAMSIZ + 8]);

/* The nft script that defines the table (pure; no host access). *out is
 * malloc'd; free it. 0, -EINVAL (bad config: name, MAC, limits) or -ENOMEM. */
int netdev_kfilter_rules(const struct netdev_kfilter_cfg *cfg, char **out);

/* Replaces the tap's table with a new one for cfg, in one transaction
 * (libnftables). The tap must exist. err gets nft's message. */
int netdev_kfilter_install(const struct netdev_kfilter_cfg *cfg, struct herd_err *err);
/* The same for n taps (a guest's NICs) in one transaction: all or none. */
int netdev_kfilter_install_all(const struct netdev_kfilter_cfg *cfgs, unsigned n,
                               struct herd_err *err);
/* Deletes the tap's table; 0 when there was none. */
int netdev_kfilter_remove(const char *tap);
/* {"table", "enforced_by", "accepted": {"packets", "bytes"},
 *  "dropped": {"packets", "bytes"}, "drops": {reason: {"packets", "bytes"}},
 *  "limits": {"bytes": {"rate", "burst"}, "frames": {...}} (absent ones
 *  left out), "addresses": [...] or null (not pinned)}, read from the
 * kernel. -ENOENT when the tap has no table. */
int netdev_kfilter_stats(const char *tap, json_t **out);
/* Deletes every herd-* table whose tap no longer exists (what a crash
 * between removing a tap and its table leaves). *removed may be NULL. */
int netdev_kfilter_cleanup(unsigned *removed);

#endif
