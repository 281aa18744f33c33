/* netdev internals: the rtnetlink handle and link helpers (libnl-route). */
#ifndef NETDEV_NL_H
#define NETDEV_NL_H

#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <stdbool.h>

#include "herd/netdev.h"

struct netdev_nl {
    struct nl_sock *sk;
};

/* libnl error code (negative NLE_*) -> negative errno. */
int netdev_nl_errno(int nlerr);
/* The link called name, or -ENODEV. Caller puts it (rtnl_link_put). */
int netdev_link_get(struct netdev_nl *nl, const char *name, struct rtnl_link **out);
/* The link with this index, or -ENODEV. */
int netdev_link_get_index(struct netdev_nl *nl, int ifindex, struct rtnl_link **out);
/* Deletes the link called name; 0 if it is gone already. */
int netdev_link_delete(struct netdev_nl *nl, const char *name);
int netdev_link_change(struct netdev_nl *nl, struct rtnl_link *orig,
                       struct rtnl_link *changes);
int netdev_link_set_up(struct netdev_nl *nl, struct rtnl_link *link);
int netdev_link_set_mtu(struct netdev_nl *nl, struct rtnl_link *link, unsigned mtu);
int netdev_link_set_master(struct netdev_nl *nl, struct rtnl_link *link, int master);
int netdev_link_set_owner(struct netdev_nl *nl, struct rtnl_link *link);
bool netdev_link_is_kind(struct rtnl_link *link, const char *kind);
bool netdev_link_is_owned(struct rtnl_link *link); /* our ifalias */
bool netdev_link_is_up(struct rtnl_link *link);
const char *netdev_link_kind(struct rtnl_link *link); /* "device" if none */
/* Name of ifindex into out ("#<n>" when it cannot be read). */
void netdev_link_index_name(struct netdev_nl *nl, int ifindex, char out[IFNAMSIZ]);

#endif
