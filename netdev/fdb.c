/* The unicast peers of a VXLAN device that has no default remote: its
 * all-zero FDB entries (00:00:00:00:00:00 dst PEER, `bridge fdb append`),
 * one per peer. The kernel sends every broadcast, multicast and unknown
 * unicast frame to each of them (head-end replication); the entries it
 * learns for single MACs are left alone. */
#include <errno.h>
#include <linux/neighbour.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>

#include "nl.h"

static size_t fam_len(int family)
{
    return family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
}

static bool mac_zero(struct nl_addr *ll)
{
    static const unsigned char zero[6];

    return ll && nl_addr_get_len(ll) == 6 && !memcmp(nl_addr_get_binary_addr(ll), zero, 6);
}

/* The device's ifindex, checking that it is a VXLAN device. */
static int vxlan_index(struct netdev_nl *nl, const char *name, struct herd_err *err)
{
    struct rtnl_link *link;
    int rc = netdev_link_get(nl, name, &link);

    if (rc)
        return herd_err_set(err, rc, name, "VXLAN device '%s': %s", name, strerror(-rc));
    int idx = rtnl_link_get_ifindex(link);
    bool vx = netdev_link_is_kind(link, "vxlan");
    rtnl_link_put(link);
    if (!vx)
        return herd_err_set(err, -EINVAL, name, "'%s' is not a VXLAN device", name);
    return idx;
}

/* Every all-zero entry of ifindex: their destinations (family), at most max. */
static int peers_read(struct netdev_nl *nl, int ifindex, int family, union netdev_inaddr *out,
                      size_t max, size_t *n, struct herd_err *err)
{
    struct nl_cache *cache;
    int rc = netdev_nl_errno(rtnl_neigh_alloc_cache_flags(nl->sk, &cache, NL_CACHE_AF_ITER));

    *n = 0;
    if (rc)
        return herd_err_set(err, rc, "", "reading the FDB: %s", strerror(-rc));
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_neigh *ne = (struct rtnl_neigh *)o;
        struct nl_addr *dst = rtnl_neigh_get_dst(ne);
        if (rtnl_neigh_get_family(ne) != AF_BRIDGE || rtnl_neigh_get_ifindex(ne) != ifindex ||
            !mac_zero(rtnl_neigh_get_lladdr(ne)) || !dst || nl_addr_get_family(dst) != family ||
            nl_addr_get_len(dst) != fam_len(family))
            continue;
        if (*n < max)
            memcpy(&out[*n], nl_addr_get_binary_addr(dst), fam_len(family));
        (*n)++;
    }
    nl_cache_free(cache);
    return 0;
}

/* One all-zero entry to peer added (NLM_F_APPEND) or deleted. */
static int peer_change(struct netdev_nl *nl, int ifindex, int family,
                       const union netdev_inaddr *peer, bool add)
{
    static const unsigned char zero[6];
    struct rtnl_neigh *ne = rtnl_neigh_alloc();
    struct nl_addr *ll = nl_addr_build(AF_LLC, zero, 6);
    struct nl_addr *dst = nl_addr_build(family, peer, fam_len(family));
    int rc = -ENOMEM;

    if (ne && ll && dst) {
        rtnl_neigh_set_ifindex(ne, ifindex);
        rtnl_neigh_set_family(ne, AF_BRIDGE);
        rtnl_neigh_set_lladdr(ne, ll);
        rtnl_neigh_set_dst(ne, dst);
        rtnl_neigh_set_flags(ne, NTF_SELF);
        rtnl_neigh_set_state(ne, NUD_PERMANENT | NUD_NOARP);
        rc = netdev_nl_errno(add ? rtnl_neigh_add(nl->sk, ne, NLM_F_CREATE | NLM_F_APPEND)
                                 : rtnl_neigh_delete(nl->sk, ne, 0));
    }
    nl_addr_put(ll);
    nl_addr_put(dst);
    if (ne)
        rtnl_neigh_put(ne);
    return rc;
}

static bool listed(const union netdev_inaddr *set, size_t n, int family,
                   const union netdev_inaddr *a)
{
    for (size_t i = 0; i < n; i++)
        if (!memcmp(&set[i], a, fam_len(family)))
            return true;
    return false;
}

int netdev_vxlan_peers_get(struct netdev_nl *nl, const char *vxlan, int family,
                           union netdev_inaddr *out, size_t max, size_t *n,
                           struct herd_err *err)
{
    int idx = vxlan_index(nl, vxlan, err);

    *n = 0;
    if (idx < 0)
        return idx;
    if (family != AF_INET && family != AF_INET6)
        return herd_err_set(err, -EAFNOSUPPORT, vxlan, "peers: not an IP family");
    return peers_read(nl, idx, family, out, max, n, err);
}

int netdev_vxlan_peers_set(struct netdev_nl *nl, const char *vxlan, int family,
                           const union netdev_inaddr *peers, size_t n, struct herd_err *err)
{
    union netdev_inaddr *have = NULL;
    size_t got = 0, cap;
    int rc = netdev_vxlan_peers_get(nl, vxlan, family, NULL, 0, &got, err);

    if (rc)
        return rc;
    cap = got;
    if (cap && !(have = calloc(cap, sizeof(*have))))
        return herd_err_set(err, -ENOMEM, vxlan, "out of memory");
    if (cap && (rc = netdev_vxlan_peers_get(nl, vxlan, family, have, cap, &got, err))) {
        free(have);
        return rc;
    }
    int idx = vxlan_index(nl, vxlan, err);
    if (got > cap)
        got = cap; /* one appeared meanwhile: the next call takes it */
    for (size_t i = 0; idx > 0 && i < got && !rc; i++)
        if (!listed(peers, n, family, &have[i]) &&
            (rc = peer_change(nl, idx, family, &have[i], false)) == -ENOENT)
            rc = 0;
    for (size_t i = 0; idx > 0 && i < n && !rc; i++)
        if (!listed(have, got, family, &peers[i]) &&
            (rc = peer_change(nl, idx, family, &peers[i], true)) == -EEXIST)
            rc = 0;
    free(have);
    if (idx < 0)
        return idx;
    if (rc)
        return herd_err_set(err, rc, vxlan, "VXLAN device '%s': changing its peers: %s", vxlan,
                            strerror(-rc));
    return 0;
}
