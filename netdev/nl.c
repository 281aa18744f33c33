/* The rtnetlink handle and small link helpers on libnl-route. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/errno.h>
#include <netlink/route/link.h>

#include "nl.h"

int netdev_nl_errno(int nlerr)
{
    static const struct { int nle, err; } map[] = {
        {NLE_EXIST, EEXIST},         {NLE_NODEV, ENODEV},
        {NLE_OBJ_NOTFOUND, ENODEV},  {NLE_PERM, EPERM},
        {NLE_BUSY, EBUSY},           {NLE_INVAL, EINVAL},
        {NLE_RANGE, ERANGE},         {NLE_NOMEM, ENOMEM},
        {NLE_OPNOTSUPP, EOPNOTSUPP}, {NLE_NOADDR, EADDRNOTAVAIL},
        {NLE_AF_NOSUPPORT, EAFNOSUPPORT}, {NLE_AGAIN, EAGAIN},
        {NLE_MSGSIZE, EMSGSIZE},     {NLE_NOACCESS, EACCES},
        {NLE_MSG_TOOSHORT, EPROTO},  {NLE_BAD_SOCK, EBADF},
    };
    int e = nlerr < 0 ? -nlerr : nlerr;

    if (e == 0)
        return 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].nle == e)
            return -map[i].err;
    }
    return -EIO;
}

int netdev_nl_open(struct netdev_nl **out)
{
    struct netdev_nl *nl = calloc(1, sizeof(*nl));
    int rc;

    if (!nl)
        return -ENOMEM;
    nl->sk = nl_socket_alloc();
    if (!nl->sk) {
        free(nl);
        return -ENOMEM;
    }
    rc = nl_connect(nl->sk, NETLINK_ROUTE);
    if (rc < 0) {
        nl_socket_free(nl->sk);
        free(nl);
        return netdev_nl_errno(rc);
    }
    *out = nl;
    return 0;
}

void netdev_nl_close(struct netdev_nl *nl)
{
    if (!nl)
        return;
    nl_socket_free(nl->sk);
    free(nl);
}

int netdev_link_get(struct netdev_nl *nl, const char *name, struct rtnl_link **out)
{
    int rc = rtnl_link_get_kernel(nl->sk, 0, name, out);

    return rc < 0 ? netdev_nl_errno(rc) : 0;
}

int netdev_link_get_index(struct netdev_nl *nl, int ifindex, struct rtnl_link **out)
{
    int rc = rtnl_link_get_kernel(nl->sk, ifindex, NULL, out);

    return rc < 0 ? netdev_nl_errno(rc) : 0;
}

int netdev_link_delete(struct netdev_nl *nl, const char *name)
{
    struct rtnl_link *link = rtnl_link_alloc();
    int rc;

    if (!link)
        return -ENOMEM;
    rtnl_link_set_name(link, name);
    rc = netdev_nl_errno(rtnl_link_delete(nl->sk, link));
    rtnl_link_put(link);
    return rc == -ENODEV ? 0 : rc;
}

int netdev_link_change(struct netdev_nl *nl, struct rtnl_link *orig,
                       struct rtnl_link *changes)
{
    return netdev_nl_errno(rtnl_link_change(nl->sk, orig, changes, 0));
}

/* Runs one change built by fill(changes, arg). */
static int link_change_with(struct netdev_nl *nl, struct rtnl_link *link,
                            void (*fill)(struct rtnl_link *, const void *),
                            const void *arg)
{
    struct rtnl_link *chg = rtnl_link_alloc();
    int rc;

    if (!chg)
        return -ENOMEM;
    fill(chg, arg);
    rc = netdev_link_change(nl, link, chg);
    rtnl_link_put(chg);
    return rc;
}

static void fill_up(struct rtnl_link *chg, const void *arg)
{
    (void)arg;
    rtnl_link_set_flags(chg, IFF_UP);
}

static void fill_mtu(struct rtnl_link *chg, const void *arg)
{
    rtnl_link_set_mtu(chg, *(const unsigned *)arg);
}

static void fill_master(struct rtnl_link *chg, const void *arg)
{
    rtnl_link_set_master(chg, *(const int *)arg);
}

static void fill_owner(struct rtnl_link *chg, const void *arg)
{
    (void)arg;
    rtnl_link_set_ifalias(chg, NETDEV_OWNER_ALIAS);
}

int netdev_link_set_up(struct netdev_nl *nl, struct rtnl_link *link)
{
    return link_change_with(nl, link, fill_up, NULL);
}

int netdev_link_set_mtu(struct netdev_nl *nl, struct rtnl_link *link, unsigned mtu)
{
    return link_change_with(nl, link, fill_mtu, &mtu);
}

int netdev_link_set_master(struct netdev_nl *nl, struct rtnl_link *link, int master)
{
    return link_change_with(nl, link, fill_master, &master);
}

int netdev_link_set_owner(struct netdev_nl *nl, struct rtnl_link *link)
{
    return link_change_with(nl, link, fill_owner, NULL);
}

const char *netdev_link_kind(struct rtnl_link *link)
{
    const char *kind = rtnl_link_get_type(link);

    return kind ? kind : "device";
}

bool netdev_link_is_kind(struct rtnl_link *link, const char *kind)
{
    const char *k = rtnl_link_get_type(link);

    return k && strcmp(k, kind) == 0;
}

bool netdev_link_is_owned(struct rtnl_link *link)
{
    const char *alias = rtnl_link_get_ifalias(link);

    return alias && strcmp(alias, NETDEV_OWNER_ALIAS) == 0;
}

bool netdev_link_is_up(struct rtnl_link *link)
{
    return (rtnl_link_get_flags(link) & IFF_UP) != 0;
}

void netdev_link_index_name(struct netdev_nl *nl, int ifindex, char out[IFNAMSIZ])
{
    struct rtnl_link *link;

    snprintf(out, IFNAMSIZ, "#%d", ifindex);
    if (netdev_link_get_index(nl, ifindex, &link))
        return;
    snprintf(out, IFNAMSIZ, "%s", rtnl_link_get_name(link));
    rtnl_link_put(link);
}
