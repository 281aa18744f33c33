/*
 * netdev: host networking for herd guests. No KVM knowledge.
 *
 * What it owns on a node:
 *   - role bridges (management, storage, service, communication), named in the
 *     node's configuration, and segment bridges per (role, segment) whose names
 *     are derived predictably (netdev_segment_bridge_name);
 *   - VXLAN uplinks (one per bridge at most) so a segment spans nodes;
 *   - taps, one per guest NIC, with a deterministic MAC.
 * Everything goes through rtnetlink (libnl-3 / libnl-route-3); nothing shells
 * out. Links netdev creates carry the ifalias NETDEV_OWNER_ALIAS, so teardown
 * removes only what netdev made.
 *
 * Errors: functions return 0 or a negative errno. Where a struct herd_err
 * (herd/error.h) is passed it is filled with that errno, the offending field
 * (dotted path into the configuration, e.g.
 * "roles.communication.segments[0].vxlan.vni", or a link name) and a one-line,
 * human message that says what is wrong and what was expected. herdd hands
 * its own record to netdev, so both reach API clients as {"error", "field"}.
 *
 * The userspace packet path (anti-spoofing, rate limits, counters) lives in
 * herd/netfilter.h, herd/ratelimit.h, herd/netstats.h and herd/netpath.h.
 */
#ifndef HERD_NETDEV_H
#define HERD_NETDEV_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "herd/error.h"

/* ---- roles --------------------------------------------------------------- */

enum netdev_role {
    NETDEV_ROLE_MANAGEMENT,
    NETDEV_ROLE_STORAGE,
    NETDEV_ROLE_SERVICE,
    NETDEV_ROLE_COMMUNICATION,
    NETDEV_ROLE_COUNT
};

const char *netdev_role_name(enum netdev_role role); /* "management", ... */
char netdev_role_letter(enum netdev_role role);      /* 'm', 's', 'v', 'c' */
int netdev_role_parse(const char *name, enum netdev_role *out); /* -EINVAL */

/* ---- names (all within IFNAMSIZ) ----------------------------------------- */

#define NETDEV_NAME_MAX (IFNAMSIZ - 1) /* 15 characters */
#define NETDEV_IDENT_MAX 63            /* segment names, guest identities */
#define NETDEV_OWNER_ALIAS "herd-netdev"
#define NETDEV_TAP_PREFIX "ht-"        /* every tap netdev names */
#define NETDEV_VXLAN_PREFIX "hx-"      /* hx-<vni> */

/* 0 if name is a valid Linux interface name (1..15 chars, no '/', ':',
 * whitespace, not "." or ".."); -ENAMETOOLONG or -EINVAL otherwise. */
int netdev_name_check(const char *name);
/* 0 if ident is a valid identity / segment name: 1..NETDEV_IDENT_MAX chars
 * from [A-Za-z0-9_.-]; -EINVAL / -ENAMETOOLONG otherwise. */
int netdev_ident_check(const char *ident);
/* prefix + ident when that fits in 15 characters; otherwise prefix, the
 * first characters of ident, and 8 hex digits of a hash of the whole ident.
 * The same inputs always give the same name. */
int netdev_name_derive(char out[IFNAMSIZ], const char *prefix, const char *ident);
/* "hs<role letter>-<segment>", e.g. "hsc-red". */
int netdev_segment_bridge_name(char out[IFNAMSIZ], enum netdev_role role,
                               const char *segment);
/* A range's own segment: "hs<role letter>-<range>.<segment>" (hashed when
 * longer than 15 characters, netdev_name_derive), e.g. "hsc-deb.lab-net":
 * two ranges that name the same segment get two bridges. */
int netdev_range_segment_bridge_name(char out[IFNAMSIZ], enum netdev_role role,
                                     const char *range, const char *segment);
/* "hx-<vni>", e.g. "hx-1001". */
int netdev_vxlan_name(char out[IFNAMSIZ], uint32_t vni);
/* "ht-<identity>-<nic>", e.g. "ht-web01-0". */
int netdev_tap_name(char out[IFNAMSIZ], const char *identity, unsigned nic);

/* ---- MAC addresses ------------------------------------------------------- */

#define NETDEV_MAC_GUEST_BYTE0 0x0e /* locally administered, unicast */
#define NETDEV_MAC_HOST_BYTE0 0xfe  /* tap's own (host-side) address */

/* Guest MAC for (identity, nic, salt): 0e:xx:xx:xx:xx:xx, xx from a hash. */
void netdev_mac_derive(const char *identity, unsigned nic, unsigned salt,
                       uint8_t mac[6]);
/* The tap's host-side address for a guest MAC: the same with byte 0 = 0xfe,
 * so a bridge never takes it as its own address and it never equals the
 * guest's. */
void netdev_mac_host_side(const uint8_t guest[6], uint8_t host[6]);
/* Collision-checked derivation: tries salts 0..NETDEV_MAC_TRIES-1 until
 * in_use(mac, ctx) says no (in_use may be NULL). -EADDRINUSE if all taken. */
#define NETDEV_MAC_TRIES 64
typedef bool (*netdev_mac_in_use_fn)(const uint8_t mac[6], void *ctx);
int netdev_mac_assign(const char *identity, unsigned nic,
                      netdev_mac_in_use_fn in_use, void *ctx, uint8_t mac[6]);
int netdev_mac_parse(const char *text, uint8_t mac[6]); /* "aa:bb:..." */
void netdev_mac_format(const uint8_t mac[6], char out[18]);
bool netdev_mac_is_unicast(const uint8_t mac[6]);

/* ---- configuration ------------------------------------------------------- */

#define NETDEV_MTU_MIN 68
#define NETDEV_MTU_MAX 65535
/* Ports a Linux bridge takes (BR_MAX_PORTS 1024, port 0 reserved): a
 * role or segment bridge carries at most this many guest NICs; a tap past
 * it is refused with -EXFULL naming the bridge (netdev_tap_create). */
#define NETDEV_BRIDGE_MAX_PORTS 1023
#define NETDEV_VXLAN_PORT 4789
#define NETDEV_VXLAN_OVERHEAD4 50 /* outer Ethernet+IPv4+UDP+VXLAN */
#define NETDEV_VXLAN_OVERHEAD6 70 /* outer Ethernet+IPv6+UDP+VXLAN */
#define NETDEV_VNI_MAX 0xffffffu  /* 24 bits; 0 is refused too */

union netdev_inaddr {
    struct in_addr v4;
    struct in6_addr v6;
};

struct netdev_vxlan_cfg {
    bool enabled;
    uint32_t vni;
    int family;                 /* AF_INET or AF_INET6 */
    union netdev_inaddr local;  /* required: the node's underlay address */
    union netdev_inaddr remote; /* unicast peer, or multicast group */
    bool remote_is_group;       /* group needs dev */
    uint16_t port;              /* UDP destination port, default 4789 */
    char dev[IFNAMSIZ];         /* underlay device; "" = found from local */
    char name[IFNAMSIZ];        /* derived: netdev_vxlan_name(vni) */
};

struct netdev_bridge_cfg {
    enum netdev_role role;
    char segment[NETDEV_IDENT_MAX + 1]; /* "" for the role bridge itself */
    char name[IFNAMSIZ];                /* configured (role) or derived */
    unsigned mtu;
    char uplink[IFNAMSIZ];              /* existing device to enslave, or "" */
    struct netdev_vxlan_cfg vxlan;
    char field[96];                     /* config path, for error messages */
};

struct netdev_config {
    struct netdev_bridge_cfg *bridges; /* role bridges first, then segments */
    size_t n_bridges;
    int role_bridge[NETDEV_ROLE_COUNT]; /* index into bridges, -1 if absent */
};

/* JSON text:
 * {"roles": {"management": {"bridge": "hbr-mgmt", "mtu": 1500,
 *                           "uplink": "eth1"},
 *            "communication": {"bridge": "hbr-comm", "mtu": 1450,
 *                "segments": [{"name": "red", "mtu": 1450,
 *                    "vxlan": {"vni": 1001, "local": "10.0.0.1",
 *                              "remote": "10.0.0.2", "port": 4789,
 *                              "dev": "eth0"}}]}}}
 * Every role is optional; at least one is required. "mtu" defaults to 1500
 * for role bridges and to the role's MTU for segments. "vxlan" may also sit
 * on a role. "group" instead of "remote" gives a multicast group (then "dev"
 * is required). Unknown keys are errors. The result is validated
 * (netdev_config_validate). Free with netdev_config_free. */
int netdev_config_parse_json(const char *text, struct netdev_config *cfg,
                             struct herd_err *err);
int netdev_config_load(const char *path, struct netdev_config *cfg,
                       struct herd_err *err);
/* Static checks (no host access): names, MTU ranges, VNIs, uniqueness of
 * bridge names, VNIs and uplinks, derived names. Fills derived names. */
int netdev_config_validate(struct netdev_config *cfg, struct herd_err *err);
void netdev_config_free(struct netdev_config *cfg);
const struct netdev_bridge_cfg *netdev_config_find(const struct netdev_config *cfg,
                                                   enum netdev_role role,
                                                   const char *segment);

/* ---- netlink handle ------------------------------------------------------ */

/* One rtnetlink socket, bound to the network namespace of the thread that
 * opens it. Not shared between threads. */
struct netdev_nl;
int netdev_nl_open(struct netdev_nl **out);
void netdev_nl_close(struct netdev_nl *nl);

/* ---- node setup ---------------------------------------------------------- */

/* Brings the host to cfg: creates missing bridges and VXLAN devices, brings
 * them up, enslaves uplinks. First checks everything (a link that exists
 * with other settings, a missing uplink, an underlay whose MTU cannot carry
 * the segment MTU plus VXLAN overhead, ...) and changes nothing when a check
 * fails; if the kernel refuses a step, what this call created is removed
 * again. Running it on a host that already matches changes nothing (no
 * netlink write at all). */
int netdev_setup(struct netdev_nl *nl, const struct netdev_config *cfg,
                 struct herd_err *err);
/* 0 when the host matches cfg, -ENOENT when something is missing, another
 * negative errno when something exists with other settings. Read-only. */
int netdev_check(struct netdev_nl *nl, const struct netdev_config *cfg,
                 struct herd_err *err);
/* Removes the VXLAN devices and bridges of cfg that netdev created (ifalias
 * NETDEV_OWNER_ALIAS); links it adopted are left in place. Uplinks are
 * released by the kernel when their bridge goes. Missing links are fine. */
int netdev_teardown(struct netdev_nl *nl, const struct netdev_config *cfg,
                    struct herd_err *err);

/* One bridge (with its uplink and VXLAN device); what netdev_setup does per
 * entry, for callers that manage bridges one at a time. */
int netdev_bridge_setup(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                        struct herd_err *err);
int netdev_bridge_check(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                        struct herd_err *err);
int netdev_bridge_teardown(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                           struct herd_err *err);

/* The unicast peers of a VXLAN device made without a default remote
 * (netdev_vxlan_cfg.remote all zero, remote_is_group false): its all-zero
 * FDB entries, one per peer (`bridge fdb append 00:00:00:00:00:00 dev VX
 * dst PEER`). Broadcast, multicast and unknown unicast frames go to each.
 * set: the entries become exactly peers[] (missing ones appended, others
 * deleted; entries the kernel learned for single MACs are left alone).
 * get: the peers now, at most max written to out, *n how many there are.
 * family: AF_INET or AF_INET6; entries of the other family are ignored. */
int netdev_vxlan_peers_set(struct netdev_nl *nl, const char *vxlan, int family,
                           const union netdev_inaddr *peers, size_t n, struct herd_err *err);
int netdev_vxlan_peers_get(struct netdev_nl *nl, const char *vxlan, int family,
                           union netdev_inaddr *out, size_t max, size_t *n,
                           struct herd_err *err);

/* ---- taps ---------------------------------------------------------------- */

#define NETDEV_TAP_MAX_QUEUES 16
#define NETDEV_VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1 (num_buffers) */

struct netdev_tap_cfg {
    const char *identity;   /* guest identity ([A-Za-z0-9_.-]) */
    unsigned nic;           /* NIC index within the guest */
    const char *name;       /* NULL: netdev_tap_name(identity, nic) */
    const char *bridge;     /* attach to this bridge; NULL: stay detached */
    unsigned queues;        /* 0 or 1: single queue; >1: IFF_MULTI_QUEUE */
    int vnet_hdr_len;       /* 0: no IFF_VNET_HDR; else 10 or 12 */
    unsigned mtu;           /* 0: the bridge's MTU (1500 without bridge) */
    uint8_t guest_mac[6];   /* the NIC's MAC; the tap gets its host side */
    bool persist;           /* survive closing the fds (TUNSETPERSIST) */
    uid_t owner;            /* TUNSETOWNER when persist; (uid_t)-1: none */
};

struct netdev_tap {
    char name[IFNAMSIZ];
    int ifindex;
    unsigned queues;
    int fds[NETDEV_TAP_MAX_QUEUES]; /* one per queue, O_NONBLOCK|O_CLOEXEC */
    bool persist;
};

/* Creates the tap (IFF_TAP|IFF_NO_PI[|IFF_VNET_HDR][|IFF_MULTI_QUEUE]),
 * sets its MTU and host-side MAC, attaches it to the bridge and brings it
 * up. -EEXIST if a link of that name exists already. On failure nothing is
 * left behind. */
int netdev_tap_create(struct netdev_nl *nl, const struct netdev_tap_cfg *cfg,
                      struct netdev_tap *tap, struct herd_err *err);
/* Opens queues of an existing (persistent) tap by name: what herd-vmm does
 * when herdd made the tap. Needs CAP_NET_ADMIN or to be the tap's owner. */
int netdev_tap_open(const char *name, unsigned queues, int vnet_hdr_len,
                    struct netdev_tap *tap);
/* Closes the fds; a non-persistent tap disappears with them. */
void netdev_tap_close(struct netdev_tap *tap);
/* Closes the fds and deletes the link (persistent or not). */
int netdev_tap_destroy(struct netdev_nl *nl, struct netdev_tap *tap);
/* Deletes a tap by name (only a tun/tap link). -ENODEV if none. */
int netdev_tap_remove(struct netdev_nl *nl, const char *name);
/* Deletes every tap whose name starts with prefix (NULL: NETDEV_TAP_PREFIX)
 * and that no process holds open: what a crash leaves behind. Taps in use
 * are kept. *removed (may be NULL) gets the count. Also deletes the kernel
 * filters (herd/netdev_kfilter.h) of taps that no longer exist: a program
 * calling this links libnftables ($(NETDEV_NFT_LDLIBS)). */
int netdev_tap_cleanup(struct netdev_nl *nl, const char *prefix, unsigned *removed);

/* A veth pair for a service in its own network namespace (herdd's DHCP
 * servers): host_name here, ours (NETDEV_OWNER_ALIAS), enslaved to bridge
 * and up; its peer peer_name created in the namespace nsfd (an open
 * /proc/PID/ns/net), up there with addr/prefix_len (and the subnet's
 * broadcast address). The host has no address on the bridge. On failure
 * nothing is left (deleting the host end deletes the peer). 0 or -errno. */
#define NETDEV_VETH_PREFIX "hd-"   /* herdd names its host ends so */
int netdev_veth_into_ns(struct netdev_nl *nl, const char *host_name, const char *bridge,
                        int nsfd, const char *peer_name, struct in_addr addr,
                        unsigned prefix_len, struct herd_err *err);
/* Deletes such a pair by its host end: only a veth named NETDEV_VETH_PREFIX…
 * that carries our ifalias (-EINVAL, -EPERM otherwise); 0 if it is gone. */
int netdev_veth_remove(struct netdev_nl *nl, const char *host_name);

/* True if mac is a link address or a bridge FDB entry on this host (for
 * netdev_mac_assign's in_use; ctx is the struct netdev_nl *). */
bool netdev_mac_seen_on_host(const uint8_t mac[6], void *nl);

#endif
