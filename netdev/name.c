/* Interface names: validation and predictable derivation within IFNAMSIZ. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "herd/netdev.h"

#define HASH_HEX 8

int netdev_name_check(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0)
        return -EINVAL;
    if (len > NETDEV_NAME_MAX)
        return -ENAMETOOLONG;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return -EINVAL;
    for (const char *p = name; *p; p++) {
        if (*p == '/' || *p == ':' || isspace((unsigned char)*p) ||
            !isprint((unsigned char)*p))
            return -EINVAL;
    }
    return 0;
}

int netdev_ident_check(const char *ident)
{
    size_t len = ident ? strlen(ident) : 0;

    if (len == 0)
        return -EINVAL;
    if (len > NETDEV_IDENT_MAX)
        return -ENAMETOOLONG;
    for (const char *p = ident; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return -EINVAL;
    }
    return 0;
}

/* FNV-1a, 32 bits: stable across builds and hosts. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

int netdev_name_derive(char out[IFNAMSIZ], const char *prefix, const char *ident)
{
    size_t plen = strlen(prefix), ilen = strlen(ident);
    int rc = netdev_ident_check(ident);

    if (rc)
        return rc;
    if (plen + HASH_HEX > NETDEV_NAME_MAX)
        return -ENAMETOOLONG;
    memcpy(out, prefix, plen);
    if (plen + ilen <= NETDEV_NAME_MAX) {
        memcpy(out + plen, ident, ilen + 1);
        return 0;
    }
    size_t keep = NETDEV_NAME_MAX - plen - HASH_HEX;
    char hex[HASH_HEX + 1];
    memcpy(out + plen, ident, keep);
    snprintf(hex, sizeof(hex), "%08x", name_hash(ident));
    memcpy(out + plen + keep, hex, HASH_HEX + 1);
    return 0;
}

int netdev_segment_bridge_name(char out[IFNAMSIZ], enum netdev_role role,
                               const char *segment)
{
    char prefix[8];

    if ((unsigned)role >= NETDEV_ROLE_COUNT)
        return -EINVAL;
    snprintf(prefix, sizeof(prefix), "hs%c-", netdev_role_letter(role));
    return netdev_name_derive(out, prefix, segment);
}

int netdev_range_segment_bridge_name(char out[IFNAMSIZ], enum netdev_role role,
                                     const char *range, const char *segment)
{
    char prefix[8], ident[NETDEV_IDENT_MAX + 1];
    int n;

    if ((unsigned)role >= NETDEV_ROLE_COUNT || !range || !segment)
        return -EINVAL;
    n = snprintf(ident, sizeof(ident), "%s.%s", range, segment);
    if (n < 0 || (size_t)n >= sizeof(ident))
        return -ENAMETOOLONG;
    snprintf(prefix, sizeof(prefix), "hs%c-", netdev_role_letter(role));
    return netdev_name_derive(out, prefix, ident);
}

int netdev_vxlan_name(char out[IFNAMSIZ], uint32_t vni)
{
    if (vni == 0 || vni > NETDEV_VNI_MAX)
        return -ERANGE;
    snprintf(out, IFNAMSIZ, NETDEV_VXLAN_PREFIX "%u", vni);
    return 0;
}

int netdev_tap_name(char out[IFNAMSIZ], const char *identity, unsigned nic)
{
    char ident[NETDEV_IDENT_MAX + 16];
    int rc = netdev_ident_check(identity);

    if (rc)
        return rc;
    snprintf(ident, sizeof(ident), "%s-%u", identity, nic);
    return netdev_name_derive(out, NETDEV_TAP_PREFIX, ident);
}
