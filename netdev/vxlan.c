/* VXLAN uplinks: one VXLAN device per bridge that spans nodes, with the MTU
 * accounting against its underlay. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>

#include "plan.h"

static size_t addr_len(int family)
{
    return family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
}

static unsigned vxlan_overhead(int family)
{
    return family == AF_INET6 ? NETDEV_VXLAN_OVERHEAD6 : NETDEV_VXLAN_OVERHEAD4;
}

/* ifindex of the link that holds addr, 0 if none, or a negative errno. */
static int addr_owner(struct netdev_nl *nl, int family, const union netdev_inaddr *a)
{
    struct nl_cache *cache;
    struct nl_object *obj;
    int rc = netdev_nl_errno(rtnl_addr_alloc_cache(nl->sk, &cache)), found = 0;

    if (rc)
        return rc;
    for (obj = nl_cache_get_first(cache); obj && !found; obj = nl_cache_get_next(obj)) {
        struct nl_addr *local = rtnl_addr_get_local((struct rtnl_addr *)obj);
        if (local && nl_addr_get_family(local) == family &&
            nl_addr_get_len(local) == addr_len(family) &&
            memcmp(nl_addr_get_binary_addr(local), a, addr_len(family)) == 0)
            found = rtnl_addr_get_ifindex((struct rtnl_addr *)obj);
    }
    nl_cache_free(cache);
    return found;
}

static int inspect_underlay(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                            struct bridge_plan *plan, struct herd_err *err)
{
    const struct netdev_vxlan_cfg *vx = &br->vxlan;
    struct rtnl_link *dev;
    char local[INET6_ADDRSTRLEN], field[128];
    unsigned need = br->mtu + vxlan_overhead(vx->family), mtu;
    int owner = addr_owner(nl, vx->family, &vx->local), rc;

    snprintf(field, sizeof(field), "%s.vxlan", br->field);
    inet_ntop(vx->family, &vx->local, local, sizeof(local));
    if (owner < 0)
        return herd_err_set(err, owner, field, "%s: reading addresses: %s", field,
                            strerror(-owner));
    if (owner == 0)
        return herd_err_set(err, -EADDRNOTAVAIL, field,
                            "%s: local address %s is not configured on this node",
                            field, local);
    rc = *vx->dev ? netdev_link_get(nl, vx->dev, &dev)
                  : netdev_link_get_index(nl, owner, &dev);
    if (rc)
        return herd_err_set(err, -ENODEV, field,
                            "%s: underlay device '%s' does not exist", field, vx->dev);
    plan->underlay_ifindex = rtnl_link_get_ifindex(dev);
    mtu = rtnl_link_get_mtu(dev);
    if (mtu < need)
        rc = herd_err_set(err, -ERANGE, field,
                          "%s: underlay '%s' has MTU %u, which cannot carry the "
                          "bridge MTU %u plus %u bytes of VXLAN overhead; set the "
                          "bridge MTU to at most %u or the underlay's to at least %u",
                          field, rtnl_link_get_name(dev), mtu, br->mtu,
                          vxlan_overhead(vx->family),
                          mtu > vxlan_overhead(vx->family)
                                ? mtu - vxlan_overhead(vx->family) : 0, need);
    rtnl_link_put(dev);
    return rc;
}

static bool addr_equals(struct nl_addr *got, int family, const union netdev_inaddr *a)
{
    bool eq = got && nl_addr_get_family(got) == family &&
              nl_addr_get_len(got) == addr_len(family) &&
              memcmp(nl_addr_get_binary_addr(got), a, addr_len(family)) == 0;

    nl_addr_put(got);
    return eq;
}

static bool addr_any(int family, const union netdev_inaddr *a)
{
    static const union netdev_inaddr zero;

    return !memcmp(a, &zero, addr_len(family));
}

/* Which configured attribute differs, or NULL. */
static const char *vxlan_mismatch(struct rtnl_link *link, const struct netdev_bridge_cfg *br,
                                  const struct bridge_plan *plan)
{
    const struct netdev_vxlan_cfg *vx = &br->vxlan;
    struct nl_addr *a = NULL;
    uint32_t id = 0, port = 0, dev = 0;

    if (rtnl_link_vxlan_get_id(link, &id) || id != vx->vni)
        return "VNI";
    if (rtnl_link_vxlan_get_port(link, &port) || port != vx->port)
        return "UDP port";
    rtnl_link_vxlan_get_local(link, &a);
    if (!addr_equals(a, vx->family, &vx->local))
        return "local address";
    a = NULL;
    rtnl_link_vxlan_get_group(link, &a);
    /* no default remote (peers in the FDB): the kernel reports no group */
    if (!(a == NULL && addr_any(vx->family, &vx->remote)) &&
        !addr_equals(a, vx->family, &vx->remote))
        return vx->remote_is_group ? "group" : "remote";
    if (*vx->dev && (rtnl_link_vxlan_get_link(link, &dev) ||
                     (int)dev != plan->underlay_ifindex))
        return "underlay device";
    if (rtnl_link_get_mtu(link) != br->mtu)
        return "MTU";
    return NULL;
}

int vxlan_inspect(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                  struct bridge_plan *plan, struct herd_err *err)
{
    const struct netdev_vxlan_cfg *vx = &br->vxlan;
    struct rtnl_link *link, *brl = NULL;
    const char *diff;
    char field[128];
    int rc;

    if (!vx->enabled)
        return 0;
    if ((rc = inspect_underlay(nl, br, plan, err)))
        return rc;
    snprintf(field, sizeof(field), "%s.vxlan", br->field);
    rc = netdev_link_get(nl, vx->name, &link);
    plan->vx_create = rc == -ENODEV;
    if (rc == -ENODEV)
        return 0;
    if (rc)
        return herd_err_set(err, rc, field, "%s: cannot read link '%s': %s", field,
                            vx->name, strerror(-rc));
    if (!netdev_link_is_kind(link, "vxlan"))
        rc = herd_err_set(err, -EEXIST, field,
                          "%s: link '%s' exists but is a %s, not a VXLAN device",
                          field, vx->name, netdev_link_kind(link));
    else if ((diff = vxlan_mismatch(link, br, plan)))
        rc = herd_err_set(err, -EEXIST, field,
                          "%s: VXLAN device '%s' exists with another %s than the "
                          "configuration's", field, vx->name, diff);
    if (!rc && !plan->br_create && !netdev_link_get(nl, br->name, &brl)) {
        plan->vx_attach = rtnl_link_get_master(link) != rtnl_link_get_ifindex(brl);
        rtnl_link_put(brl);
    }
    plan->vx_up = !rc && !netdev_link_is_up(link);
    rtnl_link_put(link);
    return rc;
}

static int vxlan_fill(struct rtnl_link *link, const struct netdev_bridge_cfg *br,
                      const struct bridge_plan *plan)
{
    const struct netdev_vxlan_cfg *vx = &br->vxlan;
    struct nl_addr *local = nl_addr_build(vx->family, &vx->local, addr_len(vx->family));
    struct nl_addr *remote = nl_addr_build(vx->family, &vx->remote, addr_len(vx->family));
    int rc = -ENOMEM;

    if (local && remote) {
        rtnl_link_set_name(link, vx->name);
        rtnl_link_set_mtu(link, br->mtu);
        rc = rtnl_link_vxlan_set_id(link, vx->vni);
        rc = rc ? rc : rtnl_link_vxlan_set_port(link, vx->port);
        rc = rc ? rc : rtnl_link_vxlan_set_local(link, local);
        rc = rc ? rc : rtnl_link_vxlan_set_group(link, remote);
        if (!rc && *vx->dev)
            rc = rtnl_link_vxlan_set_link(link, (uint32_t)plan->underlay_ifindex);
        rc = netdev_nl_errno(rc);
    }
    nl_addr_put(local);
    nl_addr_put(remote);
    return rc;
}

static int vxlan_create(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                        const struct bridge_plan *plan, struct undo_log *undo,
                        struct herd_err *err)
{
    struct rtnl_link *link = rtnl_link_vxlan_alloc();
    int rc = link ? vxlan_fill(link, br, plan) : -ENOMEM;

    if (!rc)
        rc = netdev_nl_errno(rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL));
    if (link)
        rtnl_link_put(link);
    if (rc)
        return herd_err_set(err, rc, br->field, "%s.vxlan: creating '%s': %s",
                            br->field, br->vxlan.name, strerror(-rc));
    undo_note_created(undo, br->vxlan.name);
    return 0;
}

int vxlan_apply(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                const struct bridge_plan *plan, struct undo_log *undo,
                struct herd_err *err)
{
    struct rtnl_link *link, *brl;
    int rc;

    if (!br->vxlan.enabled)
        return 0;
    if (plan->vx_create && (rc = vxlan_create(nl, br, plan, undo, err)))
        return rc;
    if (!plan->vx_create && !plan->vx_up && !plan->vx_attach && !plan->br_create)
        return 0;
    if ((rc = netdev_link_get(nl, br->vxlan.name, &link)))
        return herd_err_set(err, rc, br->field, "%s.vxlan: '%s' vanished",
                            br->field, br->vxlan.name);
    if ((rc = netdev_link_get(nl, br->name, &brl))) {
        rtnl_link_put(link);
        return herd_err_set(err, rc, br->field, "%s: bridge '%s' vanished",
                            br->field, br->name);
    }
    if (plan->vx_create)
        rc = netdev_link_set_owner(nl, link);
    if (!rc && rtnl_link_get_master(link) != rtnl_link_get_ifindex(brl)) {
        rc = netdev_link_set_master(nl, link, rtnl_link_get_ifindex(brl));
        if (!rc && !plan->vx_create)
            undo_note_attached(undo, br->vxlan.name);
    }
    if (!rc && !netdev_link_is_up(link))
        rc = netdev_link_set_up(nl, link);
    rtnl_link_put(brl);
    rtnl_link_put(link);
    if (rc)
        return herd_err_set(err, rc, br->field, "%s.vxlan: configuring '%s': %s",
                            br->field, br->vxlan.name, strerror(-rc));
    return 0;
}
