/* Static validation of a node network configuration (no host access). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "herd/netdev.h"

static int name_err(struct herd_err *err, int rc, const char *field,
                    const char *what, const char *name)
{
    if (rc == -ENAMETOOLONG)
        return herd_err_set(err, rc, field,
                            "%s: %s '%s' is %zu characters; Linux interface "
                            "names have at most %d", field, what, name,
                            strlen(name), NETDEV_NAME_MAX);
    return herd_err_set(err, rc, field,
                        "%s: %s '%s' is not a valid interface name", field, what,
                        name);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Role bridge names must not look like names netdev derives itself. */
static bool reserved_name(const char *name)
{
    if (has_prefix(name, NETDEV_TAP_PREFIX) || has_prefix(name, NETDEV_VXLAN_PREFIX))
        return true;
    return strlen(name) >= 4 && name[0] == 'h' && name[1] == 's' && name[3] == '-';
}

static int check_names(struct netdev_bridge_cfg *b, struct herd_err *err)
{
    char field[128];
    int rc;

    if (*b->segment) {
        snprintf(field, sizeof(field), "%s.name", b->field);
        rc = netdev_ident_check(b->segment);
        if (rc)
            return herd_err_set(err, rc, field,
                                "%s: segment name '%s' must be 1-%d characters "
                                "from A-Z a-z 0-9 _ . -", field, b->segment,
                                NETDEV_IDENT_MAX);
        rc = netdev_segment_bridge_name(b->name, b->role, b->segment);
        if (rc)
            return herd_err_set(err, rc, field, "%s: cannot derive a bridge name",
                                field);
    } else {
        snprintf(field, sizeof(field), "%s.bridge", b->field);
        if ((rc = netdev_name_check(b->name)))
            return name_err(err, rc, field, "bridge name", b->name);
        if (reserved_name(b->name))
            return herd_err_set(err, -EINVAL, field,
                                "%s: '%s' starts with a prefix netdev reserves "
                                "(" NETDEV_TAP_PREFIX ", " NETDEV_VXLAN_PREFIX
                                ", hs?-)", field, b->name);
    }
    if (*b->uplink) {
        snprintf(field, sizeof(field), "%s.uplink", b->field);
        if ((rc = netdev_name_check(b->uplink)))
            return name_err(err, rc, field, "uplink", b->uplink);
    }
    return 0;
}

static int check_mtu(const struct netdev_bridge_cfg *b, struct herd_err *err)
{
    char field[128];
    unsigned max = NETDEV_MTU_MAX;

    if (b->vxlan.enabled)
        max -= b->vxlan.family == AF_INET6 ? NETDEV_VXLAN_OVERHEAD6
                                           : NETDEV_VXLAN_OVERHEAD4;
    snprintf(field, sizeof(field), "%s.mtu", b->field);
    if (b->mtu < NETDEV_MTU_MIN || b->mtu > max)
        return herd_err_set(err, -ERANGE, field, "%s: %u out of range (%d..%u%s)",
                            field, b->mtu, NETDEV_MTU_MIN, max,
                            b->vxlan.enabled ? " with VXLAN" : "");
    return 0;
}

static int check_vxlan(struct netdev_bridge_cfg *b, struct herd_err *err)
{
    struct netdev_vxlan_cfg *vx = &b->vxlan;
    char field[128];
    int rc;

    if (!vx->enabled)
        return 0;
    snprintf(field, sizeof(field), "%s.vxlan.vni", b->field);
    if (vx->vni == 0 || vx->vni > NETDEV_VNI_MAX)
        return herd_err_set(err, -ERANGE, field, "%s: %u out of range (1..%u)",
                            field, vx->vni, NETDEV_VNI_MAX);
    snprintf(field, sizeof(field), "%s.vxlan.port", b->field);
    if (vx->port == 0)
        return herd_err_set(err, -ERANGE, field, "%s: 0 out of range (1..65535)",
                            field);
    snprintf(field, sizeof(field), "%s.vxlan.dev", b->field);
    if (*vx->dev && (rc = netdev_name_check(vx->dev)))
        return name_err(err, rc, field, "underlay device", vx->dev);
    if (vx->remote_is_group && !*vx->dev)
        return herd_err_set(err, -EINVAL, field,
                            "%s: a multicast group needs the underlay device", field);
    snprintf(field, sizeof(field), "%s.vxlan.%s", b->field,
             vx->remote_is_group ? "group" : "remote");
    bool mcast = vx->family == AF_INET ? IN_MULTICAST(ntohl(vx->remote.v4.s_addr))
                                       : IN6_IS_ADDR_MULTICAST(&vx->remote.v6);
    if (mcast != vx->remote_is_group)
        return herd_err_set(err, -EINVAL, field, "%s: %s", field,
                            mcast ? "a multicast address belongs in 'group'"
                                    : "a group must be a multicast address");
    return netdev_vxlan_name(vx->name, vx->vni);
}

static int check_unique(const struct netdev_config *cfg, size_t i,
                        struct herd_err *err)
{
    const struct netdev_bridge_cfg *b = &cfg->bridges[i];

    for (size_t j = 0; j < i; j++) {
        const struct netdev_bridge_cfg *o = &cfg->bridges[j];
        if (*b->segment && o->role == b->role && strcmp(o->segment, b->segment) == 0)
            return herd_err_set(err, -EEXIST, b->field,
                                "%s: segment '%s' is already defined by %s",
                                b->field, b->segment, o->field);
        if (strcmp(o->name, b->name) == 0)
            return herd_err_set(err, -EEXIST, b->field,
                                "%s: bridge name '%s' is already used by %s",
                                b->field, b->name, o->field);
        if (*b->uplink && strcmp(o->uplink, b->uplink) == 0)
            return herd_err_set(err, -EEXIST, b->field,
                                "%s: uplink '%s' is already the uplink of %s "
                                "(roles must not share a device)", b->field,
                                b->uplink, o->field);
        if (b->vxlan.enabled && o->vxlan.enabled && b->vxlan.vni == o->vxlan.vni)
            return herd_err_set(err, -EEXIST, b->field,
                                "%s: VNI %u is already used by %s", b->field,
                                b->vxlan.vni, o->field);
    }
    for (size_t j = 0; j < cfg->n_bridges; j++) {
        const char *up = cfg->bridges[j].uplink;
        if (*up && strcmp(up, b->name) == 0)
            return herd_err_set(err, -EINVAL, cfg->bridges[j].field,
                                "%s: uplink '%s' is a herd bridge",
                                cfg->bridges[j].field, up);
    }
    return 0;
}

int netdev_config_validate(struct netdev_config *cfg, struct herd_err *err)
{
    int rc;

    if (cfg->n_bridges == 0)
        return herd_err_set(err, -EINVAL, "roles", "roles: no role is configured");
    for (size_t i = 0; i < cfg->n_bridges; i++) {
        struct netdev_bridge_cfg *b = &cfg->bridges[i];
        if ((rc = check_names(b, err)) || (rc = check_vxlan(b, err)) ||
            (rc = check_mtu(b, err)) || (rc = check_unique(cfg, i, err)))
            return rc;
    }
    return 0;
}
