/* veth pairs into network namespaces: herdd's DHCP servers sit in their own
 * namespace, joined to a bridge by one veth pair (herd/netdev.h). */
#include <errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/link/veth.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "nl.h"

/* The pair, its peer created straight into the namespace nsfd. */
static int veth_add(struct netdev_nl *nl, const char *host_name, int nsfd,
                    const char *peer_name)
{
    struct rtnl_link *link = rtnl_link_veth_alloc();
    if (!link)
        return -ENOMEM;
    struct rtnl_link *peer = rtnl_link_veth_get_peer(link);
    rtnl_link_set_name(link, host_name);
    rtnl_link_set_name(peer, peer_name);
    rtnl_link_set_ns_fd(peer, nsfd);
    int rc = netdev_nl_errno(rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL));
    rtnl_link_put(peer);
    rtnl_link_veth_release(link);
    return rc;
}

/* The host end: ours (ifalias), on the bridge, up. */
static int host_end_attach(struct netdev_nl *nl, const char *host_name, const char *bridge,
                           struct herd_err *err)
{
    struct rtnl_link *br = NULL, *link = NULL;
    int rc = netdev_link_get(nl, bridge, &br);
    if (rc < 0)
        return herd_err_set(err, rc, "", "bridge %s: %s", bridge, strerror(-rc));
    rc = netdev_link_get(nl, host_name, &link);
    if (rc == 0)
        rc = netdev_link_set_owner(nl, link);
    if (rc == 0)
        rc = netdev_link_set_master(nl, link, rtnl_link_get_ifindex(br));
    if (rc == 0)
        rc = netdev_link_set_up(nl, link);
    if (rc < 0)
        herd_err_set(err, rc, "", "veth %s on %s: %s", host_name, bridge, strerror(-rc));
    if (link)
        rtnl_link_put(link);
    rtnl_link_put(br);
    return rc;
}

struct ns_setup {
    int nsfd;
    const char *ifname;
    struct in_addr addr;
    unsigned prefix_len;
    int rc;
    char what[64];
};

static int addr_add(struct netdev_nl *nl, int ifindex, struct in_addr a, unsigned len)
{
    struct rtnl_addr *ra = rtnl_addr_alloc();
    struct nl_addr *local = nl_addr_build(AF_INET, &a, sizeof(a));
    struct in_addr bc = a;
    uint32_t host_mask = len >= 32 ? 0 : 0xffffffffu >> len;
    bc.s_addr |= htonl(host_mask);
    struct nl_addr *brd = nl_addr_build(AF_INET, &bc, sizeof(bc));
    int rc = -ENOMEM;
    if (ra && local && brd) {
        nl_addr_set_prefixlen(local, (int)len);
        rtnl_addr_set_ifindex(ra, ifindex);
        rtnl_addr_set_local(ra, local);
        rtnl_addr_set_broadcast(ra, brd);
        rc = netdev_nl_errno(rtnl_addr_add(nl->sk, ra, 0));
    }
    if (brd)
        nl_addr_put(brd);
    if (local)
        nl_addr_put(local);
    if (ra)
        rtnl_addr_put(ra);
    return rc;
}

/* Runs on its own thread: setns() moves only that thread. */
static void *ns_setup_main(void *arg)
{
    struct ns_setup *s = arg;
    struct netdev_nl *nl = NULL;
    struct rtnl_link *link = NULL;
    snprintf(s->what, sizeof(s->what), "setns");
    if (setns(s->nsfd, CLONE_NEWNET) < 0) {
        s->rc = -errno;
        return NULL;
    }
    snprintf(s->what, sizeof(s->what), "netlink");
    if ((s->rc = netdev_nl_open(&nl)) < 0)
        return NULL;
    snprintf(s->what, sizeof(s->what), "%s", s->ifname);
    s->rc = netdev_link_get(nl, s->ifname, &link);
    if (s->rc == 0)
        s->rc = netdev_link_set_up(nl, link);
    if (s->rc == 0) {
        snprintf(s->what, sizeof(s->what), "address on %s", s->ifname);
        s->rc = addr_add(nl, rtnl_link_get_ifindex(link), s->addr, s->prefix_len);
    }
    if (link)
        rtnl_link_put(link);
    netdev_nl_close(nl);
    return NULL;
}

int netdev_veth_into_ns(struct netdev_nl *nl, const char *host_name, const char *bridge,
                        int nsfd, const char *peer_name, struct in_addr addr,
                        unsigned prefix_len, struct herd_err *err)
{
    if (netdev_name_check(host_name) < 0 || netdev_name_check(peer_name) < 0 ||
        prefix_len == 0 || prefix_len > 32)
        return herd_err_set(err, -EINVAL, "", "bad veth name or prefix length");
    int rc = veth_add(nl, host_name, nsfd, peer_name);
    if (rc < 0)
        return herd_err_set(err, rc, "", "veth %s: %s", host_name, strerror(-rc));
    rc = host_end_attach(nl, host_name, bridge, err);
    if (rc == 0) {
        struct ns_setup s = {.nsfd = nsfd, .ifname = peer_name, .addr = addr,
                             .prefix_len = prefix_len};
        pthread_t th;
        rc = -pthread_create(&th, NULL, ns_setup_main, &s);
        if (rc == 0) {
            pthread_join(th, NULL);
            rc = s.rc;
        }
        if (rc < 0)
            herd_err_set(err, rc, "", "namespace side (%s): %s", s.what, strerror(-rc));
    }
    if (rc < 0)
        netdev_link_delete(nl, host_name); /* its peer goes with it */
    return rc;
}

int netdev_veth_remove(struct netdev_nl *nl, const char *host_name)
{
    struct rtnl_link *link = NULL;
    if (strncmp(host_name, NETDEV_VETH_PREFIX, strlen(NETDEV_VETH_PREFIX)))
        return -EINVAL;
    int rc = netdev_link_get(nl, host_name, &link);
    if (rc < 0)
        return rc == -ENODEV ? 0 : rc;
    bool mine = netdev_link_is_kind(link, "veth") && netdev_link_is_owned(link);
    rtnl_link_put(link);
    return mine ? netdev_link_delete(nl, host_name) : -EPERM;
}
