/* Taps for guest NICs: creation on a bridge, opening, removal, and cleanup
 * of taps a crash left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <netlink/addr.h>
#include <netlink/route/link.h>

#include "nl.h"

static void tap_reset(struct netdev_tap *tap)
{
    memset(tap, 0, sizeof(*tap));
    for (int i = 0; i < NETDEV_TAP_MAX_QUEUES; i++)
        tap->fds[i] = -1;
}

static int tun_open_queue(const char *name, unsigned queues, int vnet_hdr_len)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK), rc;

    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (vnet_hdr_len)
        ifr.ifr_flags |= IFF_VNET_HDR;
    if (queues > 1)
        ifr.ifr_flags |= IFF_MULTI_QUEUE;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 ||
        (vnet_hdr_len && ioctl(fd, TUNSETVNETHDRSZ, &vnet_hdr_len) < 0)) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int tap_open_queues(struct netdev_tap *tap, const char *name, unsigned queues,
                           int vnet_hdr_len)
{
    if (queues == 0)
        queues = 1;
    if (queues > NETDEV_TAP_MAX_QUEUES)
        return -EINVAL;
    if (vnet_hdr_len != 0 && vnet_hdr_len != 10 && vnet_hdr_len != 12)
        return -EINVAL;
    snprintf(tap->name, sizeof(tap->name), "%s", name);
    for (unsigned q = 0; q < queues; q++) {
        int fd = tun_open_queue(name, queues, vnet_hdr_len);
        if (fd < 0)
            return fd;
        tap->fds[q] = fd;
        tap->queues = q + 1;
    }
    return 0;
}

void netdev_tap_close(struct netdev_tap *tap)
{
    for (unsigned q = 0; q < NETDEV_TAP_MAX_QUEUES; q++) {
        if (tap->fds[q] >= 0)
            close(tap->fds[q]);
        tap->fds[q] = -1;
    }
    tap->queues = 0;
}

int netdev_tap_open(const char *name, unsigned queues, int vnet_hdr_len,
                    struct netdev_tap *tap)
{
    int rc;

    tap_reset(tap);
    if ((rc = netdev_name_check(name)))
        return rc;
    rc = tap_open_queues(tap, name, queues, vnet_hdr_len);
    if (rc)
        netdev_tap_close(tap);
    tap->persist = true;
    return rc;
}

static int tap_persist(struct netdev_tap *tap, uid_t owner)
{
    if (ioctl(tap->fds[0], TUNSETPERSIST, 1) < 0)
        return -errno;
    tap->persist = true;
    if (owner != (uid_t)-1 && ioctl(tap->fds[0], TUNSETOWNER, (unsigned long)owner) < 0)
        return -errno;
    return 0;
}

/* MTU, host-side MAC, bridge and up, in one RTM_NEWLINK. */
static int tap_configure(struct netdev_nl *nl, struct netdev_tap *tap,
                         const struct netdev_tap_cfg *cfg, int master, unsigned mtu)
{
    struct rtnl_link *link = NULL, *chg = rtnl_link_alloc();
    struct nl_addr *addr = NULL;
    uint8_t host[6];
    int rc = chg ? netdev_link_get(nl, tap->name, &link) : -ENOMEM;

    if (rc)
        goto out;
    tap->ifindex = rtnl_link_get_ifindex(link);
    rtnl_link_set_mtu(chg, mtu);
    if (netdev_mac_is_unicast(cfg->guest_mac)) {
        netdev_mac_host_side(cfg->guest_mac, host);
        if (!(addr = nl_addr_build(AF_LLC, host, 6))) {
            rc = -ENOMEM;
            goto out;
        }
        rtnl_link_set_addr(chg, addr);
    }
    if (master)
        rtnl_link_set_master(chg, master);
    rtnl_link_set_flags(chg, IFF_UP);
    rc = netdev_link_change(nl, link, chg);
out:
    nl_addr_put(addr);
    if (link)
        rtnl_link_put(link);
    if (chg)
        rtnl_link_put(chg);
    return rc;
}

/* Ports on bridge (entries of /sys/class/net/BRIDGE/brif); 0 when unknown. */
static unsigned bridge_ports(const char *bridge)
{
    char path[96];
    unsigned n = 0;
    struct dirent *e;

    snprintf(path, sizeof(path), "/sys/class/net/%s/brif", bridge);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The bridge's ifindex and MTU, or an error message. */
static int tap_bridge(struct netdev_nl *nl, const char *bridge, int *ifindex,
                      unsigned *mtu, struct herd_err *err)
{
    struct rtnl_link *link;
    int rc;

    *ifindex = 0;
    if (!bridge)
        return 0;
    if ((rc = netdev_link_get(nl, bridge, &link)))
        return herd_err_set(err, -ENODEV, "bridge", "bridge '%s' does not exist",
                            bridge);
    if (!netdev_link_is_kind(link, "bridge"))
        rc = herd_err_set(err, -EINVAL, "bridge", "'%s' is a %s, not a bridge",
                          bridge, netdev_link_kind(link));
    *ifindex = rtnl_link_get_ifindex(link);
    if (!*mtu)
        *mtu = rtnl_link_get_mtu(link);
    rtnl_link_put(link);
    return rc;
}

static int tap_name_for(const struct netdev_tap_cfg *cfg, char name[IFNAMSIZ],
                        struct herd_err *err)
{
    int rc;

    if (cfg->name) {
        if ((rc = netdev_name_check(cfg->name)))
            return herd_err_set(err, rc, "name", "'%s' is not a valid interface "
                                "name (1-%d characters)", cfg->name,
                                NETDEV_NAME_MAX);
        snprintf(name, IFNAMSIZ, "%s", cfg->name);
        return 0;
    }
    if (!cfg->identity || (rc = netdev_tap_name(name, cfg->identity, cfg->nic)))
        return herd_err_set(err, -EINVAL, "identity",
                            "guest identity '%s' must be 1-%d characters from "
                            "A-Z a-z 0-9 _ . -", cfg->identity ? cfg->identity : "",
                            NETDEV_IDENT_MAX);
    return 0;
}

int netdev_tap_create(struct netdev_nl *nl, const struct netdev_tap_cfg *cfg,
                      struct netdev_tap *tap, struct herd_err *err)
{
    struct rtnl_link *existing;
    char name[IFNAMSIZ];
    unsigned mtu = cfg->mtu;
    int master, rc;

    tap_reset(tap);
    herd_err_clear(err);
    if ((rc = tap_name_for(cfg, name, err)) ||
        (rc = tap_bridge(nl, cfg->bridge, &master, &mtu, err)))
        return rc;
    if (!mtu)
        mtu = 1500;
    if (mtu < NETDEV_MTU_MIN || mtu > NETDEV_MTU_MAX)
        return herd_err_set(err, -ERANGE, "mtu", "MTU %u out of range (%d..%d)",
                            mtu, NETDEV_MTU_MIN, NETDEV_MTU_MAX);
    if (!netdev_link_get(nl, name, &existing)) {
        rtnl_link_put(existing);
        return herd_err_set(err, -EEXIST, "name", "link '%s' exists already", name);
    }
    rc = tap_open_queues(tap, name, cfg->queues, cfg->vnet_hdr_len);
    if (rc)
        herd_err_set(err, rc, "name", "opening tap '%s': %s", name, strerror(-rc));
    if (!rc && cfg->persist && (rc = tap_persist(tap, cfg->owner)))
        herd_err_set(err, rc, "name", "making tap '%s' persistent: %s", name,
                     strerror(-rc));
    if (!rc && (rc = tap_configure(nl, tap, cfg, master, mtu))) {
        /* the kernel's EXFULL reaches us through libnl as EIO */
        if (master && bridge_ports(cfg->bridge) >= NETDEV_BRIDGE_MAX_PORTS)
            herd_err_set(err, rc = -EXFULL, "bridge",
                         "bridge '%s' has %u ports, the most a Linux bridge takes: put "
                         "more NICs on another role or segment bridge",
                         cfg->bridge, NETDEV_BRIDGE_MAX_PORTS);
        else
            herd_err_set(err, rc, "name", "configuring tap '%s' (MTU %u%s%s): %s", name,
                         mtu, cfg->bridge ? ", bridge " : "",
                         cfg->bridge ? cfg->bridge : "", strerror(-rc));
    }
    if (rc)
        netdev_tap_destroy(nl, tap);
    return rc;
}

int netdev_tap_destroy(struct netdev_nl *nl, struct netdev_tap *tap)
{
    bool persist = tap->persist;
    int rc = 0;

    netdev_tap_close(tap);
    if (persist && tap->name[0])
        rc = netdev_tap_remove(nl, tap->name);
    tap->persist = false;
    return rc == -ENODEV ? 0 : rc;
}

int netdev_tap_remove(struct netdev_nl *nl, const char *name)
{
    struct rtnl_link *link;
    bool is_tun;
    int rc = netdev_link_get(nl, name, &link);

    if (rc)
        return rc;
    is_tun = netdev_link_is_kind(link, "tun");
    rtnl_link_put(link);
    if (!is_tun)
        return -EINVAL;
    return netdev_link_delete(nl, name);
}
