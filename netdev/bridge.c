/* Role and segment bridges: inspection against the configuration, creation,
 * uplink attachment. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <netlink/route/link.h>

#include "plan.h"

static int inspect_existing(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                            struct rtnl_link *link, struct bridge_plan *plan,
                            struct herd_err *err)
{
    if (!netdev_link_is_kind(link, "bridge"))
        return herd_err_set(err, -EEXIST, br->field,
                            "%s: link '%s' exists but is a %s, not a bridge",
                            br->field, br->name, netdev_link_kind(link));
    if (rtnl_link_get_mtu(link) != br->mtu)
        return herd_err_set(err, -EEXIST, br->field,
                            "%s: bridge '%s' exists with MTU %u; the "
                            "configuration says %u", br->field, br->name,
                            rtnl_link_get_mtu(link), br->mtu);
    plan->br_up = !netdev_link_is_up(link);
    return 0;
}

static int inspect_uplink(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                          int br_ifindex, struct bridge_plan *plan,
                          struct herd_err *err)
{
    struct rtnl_link *up;
    char master[IFNAMSIZ];
    int rc = 0, m;

    if (!*br->uplink)
        return 0;
    if (netdev_link_get(nl, br->uplink, &up))
        return herd_err_set(err, -ENODEV, br->field,
                            "%s: uplink '%s' does not exist", br->field, br->uplink);
    m = rtnl_link_get_master(up);
    if (netdev_link_is_kind(up, "bridge"))
        rc = herd_err_set(err, -EINVAL, br->field, "%s: uplink '%s' is a bridge",
                          br->field, br->uplink);
    else if (rtnl_link_get_mtu(up) < br->mtu)
        rc = herd_err_set(err, -ERANGE, br->field,
                          "%s: uplink '%s' has MTU %u, below the bridge MTU %u",
                          br->field, br->uplink, rtnl_link_get_mtu(up), br->mtu);
    else if (m && m != br_ifindex) {
        netdev_link_index_name(nl, m, master);
        rc = herd_err_set(err, -EBUSY, br->field,
                          "%s: uplink '%s' is already a port of '%s'", br->field,
                          br->uplink, master);
    }
    plan->uplink_attach = !rc && m == 0;
    rtnl_link_put(up);
    return rc;
}

int bridge_inspect(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                   struct bridge_plan *plan, struct herd_err *err)
{
    struct rtnl_link *link = NULL;
    int rc, ifindex = 0;

    memset(plan, 0, sizeof(*plan));
    rc = netdev_link_get(nl, br->name, &link);
    if (rc && rc != -ENODEV)
        return herd_err_set(err, rc, br->field, "%s: cannot read link '%s': %s",
                            br->field, br->name, strerror(-rc));
    plan->br_create = rc == -ENODEV;
    if (link) {
        ifindex = rtnl_link_get_ifindex(link);
        rc = inspect_existing(nl, br, link, plan, err);
        rtnl_link_put(link);
        if (rc)
            return rc;
    }
    return inspect_uplink(nl, br, ifindex, plan, err);
}

/* A bridge's MTU follows its smallest port unless it was set by the user:
 * create it one off and set the real value, so it is pinned. */
static int bridge_create(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                         struct undo_log *undo, struct herd_err *err)
{
    struct rtnl_link *link = rtnl_link_alloc();
    unsigned first_mtu = br->mtu < NETDEV_MTU_MAX ? br->mtu + 1 : br->mtu - 1;
    int rc;

    if (!link)
        return herd_err_set(err, -ENOMEM, br->field, "out of memory");
    rtnl_link_set_type(link, "bridge");
    rtnl_link_set_name(link, br->name);
    rtnl_link_set_mtu(link, first_mtu);
    rc = netdev_nl_errno(rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL));
    rtnl_link_put(link);
    if (rc)
        return herd_err_set(err, rc, br->field, "%s: creating bridge '%s': %s",
                            br->field, br->name, strerror(-rc));
    undo_note_created(undo, br->name);
    if ((rc = netdev_link_get(nl, br->name, &link)))
        return herd_err_set(err, rc, br->field, "%s: bridge '%s' vanished",
                            br->field, br->name);
    if (!(rc = netdev_link_set_owner(nl, link)))
        rc = netdev_link_set_mtu(nl, link, br->mtu);
    rtnl_link_put(link);
    if (rc)
        return herd_err_set(err, rc, br->field, "%s: configuring bridge '%s': %s",
                            br->field, br->name, strerror(-rc));
    return 0;
}

static int uplink_attach(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                         int br_ifindex, struct undo_log *undo,
                         struct herd_err *err)
{
    struct rtnl_link *up;
    int rc;

    if ((rc = netdev_link_get(nl, br->uplink, &up)))
        return herd_err_set(err, rc, br->field, "%s: uplink '%s' vanished",
                            br->field, br->uplink);
    rc = netdev_link_set_master(nl, up, br_ifindex);
    if (!rc)
        undo_note_attached(undo, br->uplink);
    if (!rc && !netdev_link_is_up(up))
        rc = netdev_link_set_up(nl, up);
    rtnl_link_put(up);
    if (rc)
        return herd_err_set(err, rc, br->field,
                            "%s: attaching uplink '%s' to '%s': %s", br->field,
                            br->uplink, br->name, strerror(-rc));
    return 0;
}

int bridge_apply(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                 const struct bridge_plan *plan, struct undo_log *undo,
                 struct herd_err *err)
{
    struct rtnl_link *link;
    int rc;

    if (plan->br_create && (rc = bridge_create(nl, br, undo, err)))
        return rc;
    if (!plan->br_create && !plan->br_up && !plan->uplink_attach)
        return 0;
    if ((rc = netdev_link_get(nl, br->name, &link)))
        return herd_err_set(err, rc, br->field, "%s: bridge '%s' vanished",
                            br->field, br->name);
    if (plan->uplink_attach)
        rc = uplink_attach(nl, br, rtnl_link_get_ifindex(link), undo, err);
    if (!rc && (plan->br_create || plan->br_up) &&
        (rc = netdev_link_set_up(nl, link)))
        herd_err_set(err, rc, br->field, "%s: bringing '%s' up: %s", br->field,
                     br->name, strerror(-rc));
    rtnl_link_put(link);
    return rc;
}
