/* Finding taps no process holds (left behind by a crash) and removing them.
 * libnl-route does not parse tun link info, so this reads the RTM_GETLINK
 * dump with libnl-3's message layer. */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "herd/netdev_kfilter.h"
#include "nl.h"

struct stale_list {
    const char *prefix;
    char (*names)[IFNAMSIZ];
    size_t n, cap;
    int rc;
};

/* True when the link is a tap nobody has open. The kernel reports queue
 * counts for multi-queue taps only; a single-queue tap has its carrier on
 * exactly while a file descriptor is attached. */
static bool tun_is_stale(struct nlattr *linkinfo, struct nlattr *carrier)
{
    struct nlattr *li[IFLA_INFO_MAX + 1], *td[IFLA_TUN_MAX + 1];

    if (nla_parse_nested(li, IFLA_INFO_MAX, linkinfo, NULL) < 0 || !li[IFLA_INFO_KIND])
        return false;
    if (strcmp(nla_get_string(li[IFLA_INFO_KIND]), "tun") != 0 || !li[IFLA_INFO_DATA])
        return false;
    if (nla_parse_nested(td, IFLA_TUN_MAX, li[IFLA_INFO_DATA], NULL) < 0)
        return false;
    if (!td[IFLA_TUN_TYPE] || nla_get_u8(td[IFLA_TUN_TYPE]) != IFF_TAP)
        return false;
    if (!td[IFLA_TUN_NUM_QUEUES]) /* no carrier attribute: cannot tell, keep */
        return carrier && nla_get_u8(carrier) == 0;
    return nla_get_u32(td[IFLA_TUN_NUM_QUEUES]) == 0 &&
           (!td[IFLA_TUN_NUM_DISABLED_QUEUES] ||
            nla_get_u32(td[IFLA_TUN_NUM_DISABLED_QUEUES]) == 0);
}

static int stale_add(struct stale_list *l, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char (*names)[IFNAMSIZ] = realloc(l->names, cap * IFNAMSIZ);
        if (!names)
            return -ENOMEM;
        l->names = names;
        l->cap = cap;
    }
    snprintf(l->names[l->n++], IFNAMSIZ, "%s", name);
    return 0;
}

static int on_link(struct nl_msg *msg, void *arg)
{
    struct stale_list *l = arg;
    struct nlattr *tb[IFLA_MAX + 1];
    const char *name;

    if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
        return NL_SKIP;
    if (!tb[IFLA_IFNAME] || !tb[IFLA_LINKINFO])
        return NL_SKIP;
    name = nla_get_string(tb[IFLA_IFNAME]);
    if (strncmp(name, l->prefix, strlen(l->prefix)) != 0)
        return NL_SKIP;
    if (tun_is_stale(tb[IFLA_LINKINFO], tb[IFLA_CARRIER]) && !l->rc)
        l->rc = stale_add(l, name);
    return NL_OK;
}

static int stale_scan(struct netdev_nl *nl, struct stale_list *l)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
    int rc;

    if (!cb)
        return -ENOMEM;
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_link, l);
    rc = nl_send_simple(nl->sk, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
    if (rc >= 0)
        rc = nl_recvmsgs(nl->sk, cb);
    nl_cb_put(cb);
    return rc < 0 ? netdev_nl_errno(rc) : l->rc;
}

int netdev_tap_cleanup(struct netdev_nl *nl, const char *prefix, unsigned *removed)
{
    struct stale_list l = {.prefix = prefix && *prefix ? prefix : NETDEV_TAP_PREFIX};
    unsigned count = 0;
    int rc = stale_scan(nl, &l);

    for (size_t i = 0; i < l.n && !rc; i++) {
        int r = netdev_link_delete(nl, l.names[i]);
        if (r && r != -ENODEV)
            rc = r;
        else
            count++;
    }
    free(l.names);
    /* the kernel filters of taps that are gone (those just removed too) */
    if (!rc)
        rc = netdev_kfilter_cleanup(NULL);
    if (removed)
        *removed = count;
    return rc;
}
