/* The per-NIC hook of the userspace packet path: filter, limit, count. */
#include <string.h>

#include "herd/netpath.h"

void netpath_init(struct netpath *p, const uint8_t mac[6], uint64_t now_ns)
{
    memset(p, 0, sizeof(*p));
    netfilter_init(&p->filter, mac);
    ratelimit_init(&p->tx_limit, NULL, NULL, now_ns);
    ratelimit_init(&p->rx_limit, NULL, NULL, now_ns);
}

static enum netpath_result limit(struct ratelimit *rl, struct netstats *s, int tx,
                                 size_t len, uint64_t now_ns, uint64_t *wait_ns)
{
    *wait_ns = 0;
    if (ratelimit_consume(rl, len, now_ns))
        return NETPATH_PASS;
    *wait_ns = ratelimit_wait_ns(rl, len, now_ns);
    if (*wait_ns == 0)
        *wait_ns = 1;
    netstats_add_throttled(s, tx);
    return NETPATH_WAIT;
}

enum netpath_result netpath_tx(struct netpath *p, const void *frame, size_t len,
                               uint64_t now_ns, uint64_t *wait_ns)
{
    enum netfilter_verdict v = netfilter_tx(&p->filter, frame, len);
    enum netpath_result r;

    *wait_ns = 0;
    if (v != NETFILTER_PASS) {
        netstats_add_tx_drop(&p->stats, v);
        return NETPATH_DROP;
    }
    r = limit(&p->tx_limit, &p->stats, 1, len, now_ns, wait_ns);
    if (r == NETPATH_PASS)
        netstats_add_tx(&p->stats, len);
    return r;
}

enum netpath_result netpath_rx(struct netpath *p, const void *frame, size_t len,
                               uint64_t now_ns, uint64_t *wait_ns)
{
    enum netfilter_verdict v = netfilter_rx(&p->filter, frame, len);
    enum netpath_result r;

    *wait_ns = 0;
    if (v != NETFILTER_PASS) {
        netstats_add_rx_drop(&p->stats, v);
        return NETPATH_DROP;
    }
    r = limit(&p->rx_limit, &p->stats, 0, len, now_ns, wait_ns);
    if (r == NETPATH_PASS)
        netstats_add_rx(&p->stats, len);
    return r;
}
