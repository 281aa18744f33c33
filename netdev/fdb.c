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

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "nl.h"

static size_t fam_len(int family)
{
    return family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr);
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

/* The dump's reader: the all-zero entries of one device, one family. */
struct fdb_read {
    int ifindex, family;
    union netdev_inaddr *out;
    size_t max, n;
};

static int fdb_entry(struct nl_msg *msg, void *arg)
{
    static const unsigned char zero[6];
    struct fdb_read *r = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    struct nlattr *tb[NDA_MAX + 1];

    if (h->nlmsg_type != RTM_NEWNEIGH || nlmsg_parse(h, sizeof(struct ndmsg), tb, NDA_MAX,
                                                     NULL) < 0)
        return NL_OK;
    const struct ndmsg *ndm = nlmsg_data(h);
    if (ndm->ndm_family != AF_BRIDGE || ndm->ndm_ifindex != r->ifindex || !tb[NDA_LLADDR] ||
        nla_len(tb[NDA_LLADDR]) != 6 || memcmp(nla_data(tb[NDA_LLADDR]), zero, 6) ||
        !tb[NDA_DST] || (size_t)nla_len(tb[NDA_DST]) != fam_len(r->family))
        return NL_OK;
    if (r->n < r->max)
        memcpy(&r->out[r->n], nla_data(tb[NDA_DST]), fam_len(r->family));
    r->n++;
    return NL_OK;
}

/* Every all-zero entry of ifindex: their destinations (family), at most max. */
static int peers_read(struct netdev_nl *nl, int ifindex, int family, union netdev_inaddr *out,
                      size_t max, size_t *n, struct herd_err *err)
{
    struct ndmsg ndm = {.ndm_family = AF_BRIDGE};
    struct fdb_read r = {ifindex, family, out, max, 0};
    struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
    int rc = cb ? nl_send_simple(nl->sk, RTM_GETNEIGH, NLM_F_DUMP, &ndm, sizeof(ndm)) : -NLE_NOMEM;

    if (rc >= 0) {
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fdb_entry, &r);
        rc = nl_recvmsgs(nl->sk, cb);
    }
    if (cb)
        nl_cb_put(cb);
    *n = r.n;
    rc = rc < 0 ? netdev_nl_errno(rc) : 0;
    if (rc)
        return herd_err_set(err, rc, "", "reading the FDB: %s", strerror(-rc));
    return 0;
}

/* One all-zero entry to peer appended or deleted. (libnl's rtnl_neigh
 * leaves NDA_DST out of AF_BRIDGE messages: built here.) */
static int peer_change(struct netdev_nl *nl, int ifindex, int family,
                       const union netdev_inaddr *peer, bool add)
{
    static const unsigned char zero[6];
    struct ndmsg ndm = {.ndm_family = AF_BRIDGE, .ndm_ifindex = ifindex,
                        .ndm_state = NUD_PERMANENT | NUD_NOARP, .ndm_flags = NTF_SELF};
    struct nl_msg *msg = nlmsg_alloc_simple(add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                                            add ? NLM_F_CREATE | NLM_F_APPEND : 0);
    int rc = -NLE_NOMEM;

    if (msg && nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) == 0 &&
        nla_put(msg, NDA_LLADDR, 6, zero) == 0 &&
        nla_put(msg, NDA_DST, (int)fam_len(family), peer) == 0) {
        rc = nl_send_sync(nl->sk, msg); /* frees msg */
        msg = NULL;
    }
    nlmsg_free(msg);
    return netdev_nl_errno(rc);
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
