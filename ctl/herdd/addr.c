/* Guests' NIC addresses (layer 2, docs/herdd.md "Layers"): the "ipv4",
 * "gateway" and "ipv6" of a NIC item, checked; no address on two NICs of
 * one bridge; the addresses guests hold, for a range's address plan
 * (herd/range_addr.h). The records themselves (struct hd_nic) keep them and
 * the state database stores them with the guest. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "herdd.h"

/* Whether a (of family) with its host bits (past len) all zero, or (all
 * ones) set. */
static bool host_bits(const struct ipam_addr *a, unsigned len, unsigned bits, bool ones)
{
    for (unsigned b = len; b < bits; b++)
        if (!!(a->b[b / 8] & (0x80u >> (b % 8))) != ones)
            return false;
    return true;
}

/* "A.B.C.D/LEN" (LEN 8..32) or "X::Y/LEN" (16..128): a host address and its
 * subnet's length; not the subnet's own address, nor (IPv4 up to /30) its
 * broadcast address. */
static int host_with_len(const char *s, int family, struct ipam_addr *a, unsigned *len,
                         const char *field, struct hd_err *err)
{
    const char *example = family == AF_INET ? "10.1.0.5/24" : "fd00:1::5/64";
    const char *slash = s ? strrchr(s, '/') : NULL;
    unsigned bits = family == AF_INET ? 32 : 128, min = family == AF_INET ? 8 : 16;
    char host[IPAM_ADDR_STR];

    if (!slash || (size_t)(slash - s) >= sizeof(host))
        return hd_fail(err, 400, field, "%s must be an address with its prefix length (e.g. %s)",
                       field, example);
    memcpy(host, s, (size_t)(slash - s));
    host[slash - s] = 0;
    if (ipam_addr_parse(host, family, a) < 0)
        return hd_fail(err, 400, field, "%s: '%s' is not an %s address (e.g. %s)", field, host,
                       family == AF_INET ? "IPv4" : "IPv6", example);
    *len = 0;
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || *len > bits)
            return hd_fail(err, 400, field, "%s: '%s' is not a prefix length", field, slash + 1);
        *len = *len * 10 + (unsigned)(*p - '0');
    }
    if (!slash[1] || *len < min || *len > bits)
        return hd_fail(err, 400, field, "%s: the prefix length must be %u to %u", field, min,
                       bits);
    bool edge = *len < bits && (host_bits(a, *len, bits, false) ||
                                (family == AF_INET && *len <= 30 && host_bits(a, *len, bits, true)));
    if (edge)
        return hd_fail(err, 400, field, "%s: %s is not a host address of its /%u subnet", field,
                       host, *len);
    return 0;
}

/* Whether g is on the same /len as a. */
static bool same_subnet(const struct ipam_addr *a, const struct ipam_addr *g, unsigned len)
{
    for (unsigned b = 0; b < len; b++)
        if ((a->b[b / 8] ^ g->b[b / 8]) & (0x80u >> (b % 8)))
            return false;
    return true;
}

int hd_nic_addr_parse(json_t *item, const char *field, struct hd_nic *nic, struct hd_err *err)
{
    json_t *v4 = json_is_object(item) ? json_object_get(item, "ipv4") : NULL;
    json_t *gw = json_is_object(item) ? json_object_get(item, "gateway") : NULL;
    json_t *v6 = json_is_object(item) ? json_object_get(item, "ipv6") : NULL;
    char f[64];
    struct ipam_addr a;
    unsigned len = 0;

    nic->ipv4[0] = nic->gateway[0] = nic->ipv6[0] = 0;
    if (v4) {
        snprintf(f, sizeof(f), "%s.ipv4", field);
        if (host_with_len(json_string_value(v4), AF_INET, &a, &len, f, err) < 0)
            return -1;
        ipam_addr_format_len(&a, len, nic->ipv4);
    }
    if (gw) {
        struct ipam_addr g;
        snprintf(f, sizeof(f), "%s.gateway", field);
        if (!v4)
            return hd_fail(err, 400, f, "%s needs %s.ipv4 (the gateway is on its subnet)", f,
                           field);
        if (!json_is_string(gw) || ipam_addr_parse(json_string_value(gw), AF_INET, &g) < 0)
            return hd_fail(err, 400, f, "%s must be an IPv4 address (e.g. 10.1.0.1)", f);
        if (!same_subnet(&a, &g, len) || ipam_addr_equal(&g, &a))
            return hd_fail(err, 400, f, "%s: %s is not another host of %s's subnet", f,
                           json_string_value(gw), nic->ipv4);
        ipam_addr_format(&g, nic->gateway);
    }
    if (v6) {
        snprintf(f, sizeof(f), "%s.ipv6", field);
        if (host_with_len(json_string_value(v6), AF_INET6, &a, &len, f, err) < 0)
            return -1;
        ipam_addr_format_len(&a, len, nic->ipv6);
    }
    return 0;
}

/* The address part of "A/LEN" (cut at '/'). */
static bool same_host(const char *x, const char *y)
{
    size_t lx = strcspn(x, "/"), ly = strcspn(y, "/");
    return x[0] && lx == ly && !memcmp(x, y, lx);
}

int hd_nic_addr_conflict(struct hd_store *st, const struct hd_nic *nic, const char *self,
                         const char *field, struct hd_err *err)
{
    if (!nic->ipv4[0] && !nic->ipv6[0])
        return 0;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next) {
        if (!strcmp(vm->name, self))
            continue;
        for (unsigned i = 0; i < vm->n_nics; i++) {
            const struct hd_nic *o = &vm->nics[i];
            if (strcmp(o->bridge, nic->bridge))
                continue;
            bool v4 = same_host(o->ipv4, nic->ipv4), v6 = same_host(o->ipv6, nic->ipv6);
            if (v4 || v6)
                return hd_fail(err, 409, field, "%s: %s is already the address of guest %s "
                               "(nics[%u]) on bridge %s", field, v4 ? nic->ipv4 : nic->ipv6,
                               vm->name, i, nic->bridge);
        }
    }
    return 0;
}

/* The NIC is on the bridge a NIC of range on its network and segment would
 * get: only such an address can collide with the range's plan. */
static bool same_scope(const struct hd_config *cfg, const char *range, const struct hd_nic *nic)
{
    enum netdev_role r;
    char b[IFNAMSIZ];
    return netdev_role_parse(nic->role, &r) == 0 &&
           hd_segment_bridge(cfg, range, r, nic->segment, b) == 0 && !strcmp(b, nic->bridge);
}

struct range_held *hd_addr_held(struct hd_store *st, const char *range, size_t *n)
{
    size_t count = 0, k = 0;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        for (unsigned i = 0; i < vm->n_nics; i++)
            count += vm->nics[i].ipv4[0] != 0;
    struct range_held *h = calloc(count ? count : 1, sizeof(*h));
    if (!h)
        return NULL;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next) {
        for (unsigned i = 0; i < vm->n_nics; i++) {
            const struct hd_nic *nic = &vm->nics[i];
            char host[IPAM_ADDR_STR];
            size_t l = strcspn(nic->ipv4, "/");
            if (!nic->ipv4[0] || l >= sizeof(host) || !same_scope(st->cfg, range, nic) ||
                range_network_parse(nic->role, &h[k].network) < 0)
                continue;
            memcpy(host, nic->ipv4, l);
            host[l] = 0;
            if (ipam_addr_parse(host, AF_INET, &h[k].v4) < 0)
                continue;
            h[k].segment = nic->segment;
            h[k].owner = vm->name;
            h[k].nic = i;
            k++;
        }
    }
    *n = k;
    return h;
}
