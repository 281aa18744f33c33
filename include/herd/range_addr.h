/*
 * range_addr: the address of every NIC of a range, from its spec's
 * `networks` section, explicit `addresses` and `overrides` (herd/range_spec.h).
 * Pure and deterministic: the same spec and the same held addresses give
 * the same plan. docs/ranges.md "Addressing".
 *
 * A NIC a role lists gets an address when its scope (its network, or its
 * segment of that network) has a subnet in `networks`:
 *   1. an address the guest already holds on that scope (HELD, same owner
 *      name and NIC index: a guest that exists keeps its address), when it
 *      is still a free host of the subnet (not the gateway, the network or
 *      broadcast address, another guest's, or kept for another NIC);
 *   2. else the role's override for that guest and NIC;
 *   3. else the NIC's explicit `addresses`, item guest-1;
 *   4. else the lowest free host of the subnet, guests in range_spec_expand
 *      order, NICs in order.
 * Never handed out: the network and broadcast addresses, the gateway, the
 * DHCP server's address (a scope with dhcp: range_subnet.dhcp_server), an
 * address HELD by a NIC of any other guest (another range's on a shared
 * bridge) or by a guest of this range on a NIC the spec no longer gives it
 * (it keeps that address until it is removed), an address already given in
 * this plan. The IPv6 address, where
 * the scope has a prefix, is the prefix plus the IPv4 address's host
 * offset, so both stacks number a guest alike.
 *
 * Refused, each with the field path of the offending item and nothing
 * planned: two subnets of the range that overlap (IPv4 or IPv6), an
 * explicit address or override outside its subnet or on a NIC whose scope
 * has no subnet, an address taken twice (by the gateway, another explicit
 * address, or another guest: the message names who), and a subnet with
 * fewer free hosts than NICs to address.
 */
#ifndef HERD_RANGE_ADDR_H
#define HERD_RANGE_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "herd/ipam.h"
#include "herd/range_spec.h"

/* An address a guest already has (from herdd's records). */
struct range_held {
    enum range_network network;
    const char *segment;         /* "" for the network's own bridge */
    struct ipam_addr v4;
    const char *owner;           /* the guest's name */
    unsigned nic;                /* its NIC index */
};

/* One NIC's addressing; set is false when its scope has no subnet. */
struct range_nic_addr {
    bool set;
    struct ipam_addr v4;
    unsigned len4;               /* the subnet's prefix length */
    bool has_gateway;
    struct ipam_addr gateway;
    bool has_v6;
    struct ipam_addr v6;
    unsigned len6;
};

/* The plan for the N guests of range_spec_expand(spec): out has
 * N * RANGE_NICS_MAX entries, guest g's NIC k at out[g * RANGE_NICS_MAX + k]
 * (all unset for roles that list no NICs). 0; -EINVAL (err filled: field,
 * message, line) for a spec whose addressing cannot be satisfied; -ENOMEM. */
int range_addr_plan(const struct range_spec *spec, const struct range_guest *guests, size_t n,
                    const struct range_held *held, size_t n_held, struct range_nic_addr *out,
                    struct range_err *err);

/* The field path of spec->subnets[i] ("networks.management",
 * "networks.communication.segments.red-net") into out. */
void range_subnet_path(const struct range_subnet *sn, char *out, size_t size);

/* The subnet of (network, segment), NULL when it has none. */
const struct range_subnet *range_subnet_find(const struct range_spec *spec,
                                             enum range_network net, const char *segment);

#endif
