/*
 * netpath: the per-NIC hook herd-vmm's virtio-net calls for every frame on
 * the userspace packet path. It ties together the anti-spoofing filter, the
 * rate limiters of each direction and the counters, in that order: a frame
 * the filter drops costs no tokens; a frame the limiter refuses is not
 * dropped but held by the caller and offered again after *wait_ns.
 *
 *   guest TX: pop a descriptor chain, strip the virtio-net header, then
 *     r = netpath_tx(p, frame, len, now, &wait);
 *     NETPATH_PASS -> write to the tap; NETPATH_DROP -> complete the chain
 *     without writing; NETPATH_WAIT -> push the chain back, stop the TX queue,
 *     arm a timer for wait ns.
 *   guest RX: read a frame from the tap, then the same with netpath_rx;
 *     NETPATH_WAIT -> keep the frame in hand, stop reading the tap until the
 *     timer fires.
 *
 * All of it is pure logic (no I/O); the caller serializes calls per
 * direction; counters may be read from any thread (netstats_snapshot).
 */
#ifndef HERD_NETPATH_H
#define HERD_NETPATH_H

#include <stddef.h>
#include <stdint.h>

#include "herd/netfilter.h"
#include "herd/netstats.h"
#include "herd/ratelimit.h"

enum netpath_result { NETPATH_PASS, NETPATH_DROP, NETPATH_WAIT };

struct netpath {
    struct netfilter filter;
    struct ratelimit tx_limit, rx_limit;
    struct netstats stats;
};

/* Filter for mac, no IP restriction, promisc off, no rate limits. */
void netpath_init(struct netpath *p, const uint8_t mac[6], uint64_t now_ns);
enum netpath_result netpath_tx(struct netpath *p, const void *frame, size_t len,
                               uint64_t now_ns, uint64_t *wait_ns);
enum netpath_result netpath_rx(struct netpath *p, const void *frame, size_t len,
                               uint64_t now_ns, uint64_t *wait_ns);

#endif
