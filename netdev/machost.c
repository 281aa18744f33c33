/* Is a MAC already on this host? Link addresses and neighbour / bridge FDB
 * entries, for collision-checked MAC assignment. */
#include <string.h>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>

#include "nl.h"

static bool addr_is(struct nl_addr *a, const uint8_t mac[6])
{
    return a && nl_addr_get_len(a) == 6 && memcmp(nl_addr_get_binary_addr(a), mac, 6) == 0;
}

static bool in_links(struct netdev_nl *nl, const uint8_t mac[6])
{
    struct nl_cache *cache;
    struct nl_object *o;
    bool seen = false;

    if (rtnl_link_alloc_cache(nl->sk, AF_UNSPEC, &cache) < 0)
        return true; /* cannot tell: say taken, the caller tries another */
    for (o = nl_cache_get_first(cache); o && !seen; o = nl_cache_get_next(o))
        seen = addr_is(rtnl_link_get_addr((struct rtnl_link *)o), mac);
    nl_cache_free(cache);
    return seen;
}

static bool in_neighbours(struct netdev_nl *nl, const uint8_t mac[6])
{
    struct nl_cache *cache;
    struct nl_object *o;
    bool seen = false;

    if (rtnl_neigh_alloc_cache(nl->sk, &cache) < 0)
        return true;
    for (o = nl_cache_get_first(cache); o && !seen; o = nl_cache_get_next(o))
        seen = addr_is(rtnl_neigh_get_lladdr((struct rtnl_neigh *)o), mac);
    nl_cache_free(cache);
    return seen;
}

bool netdev_mac_seen_on_host(const uint8_t mac[6], void *ctx)
{
    struct netdev_nl *nl = ctx;

    return in_links(nl, mac) || in_neighbours(nl, mac);
}
