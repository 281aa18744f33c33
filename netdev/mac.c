/* Deterministic, locally administered guest MACs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "herd/netdev.h"

static uint64_t fnv1a64(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* splitmix64's finalizer: spreads FNV's weak low bits over all 64. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

void netdev_mac_derive(const char *identity, unsigned nic, unsigned salt,
                       uint8_t mac[6])
{
    uint8_t tail[8];
    uint64_t h = 0xcbf29ce484222325ULL;

    h = fnv1a64(h, identity, strlen(identity) + 1);
    for (int i = 0; i < 4; i++) {
        tail[i] = (uint8_t)(nic >> (8 * i));
        tail[4 + i] = (uint8_t)(salt >> (8 * i));
    }
    h = mix64(fnv1a64(h, tail, sizeof(tail)));
    mac[0] = NETDEV_MAC_GUEST_BYTE0;
    for (int i = 1; i < 6; i++)
        mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

void netdev_mac_host_side(const uint8_t guest[6], uint8_t host[6])
{
    memcpy(host, guest, 6);
    host[0] = NETDEV_MAC_HOST_BYTE0;
}

int netdev_mac_assign(const char *identity, unsigned nic,
                      netdev_mac_in_use_fn in_use, void *ctx, uint8_t mac[6])
{
    for (unsigned salt = 0; salt < NETDEV_MAC_TRIES; salt++) {
        netdev_mac_derive(identity, nic, salt, mac);
        if (!in_use || !in_use(mac, ctx))
            return 0;
    }
    return -EADDRINUSE;
}

int netdev_mac_parse(const char *text, uint8_t mac[6])
{
    unsigned v[6];
    char end;

    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &end) != 6 || strlen(text) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

void netdev_mac_format(const uint8_t mac[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
}

bool netdev_mac_is_unicast(const uint8_t mac[6])
{
    static const uint8_t zero[6];

    return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}
