/*
 * netstats: per-NIC counters of the userspace packet path: frames and bytes
 * each way, drops by reason (the netfilter verdicts), frames held back by
 * the rate limiter. The packet thread adds with relaxed atomics; any thread
 * (herd-vmm's control socket serving herdd) may snapshot at any time.
 * "tx" is guest -> tap, "rx" is tap -> guest, as the guest sees it.
 */
#ifndef HERD_NETSTATS_H
#define HERD_NETSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "herd/netfilter.h"

struct netstats {
    uint64_t tx_frames, tx_bytes;     /* passed to the tap */
    uint64_t rx_frames, rx_bytes;     /* passed to the guest */
    uint64_t tx_throttled, rx_throttled; /* rate limiter said "later" */
    uint64_t tx_drops[NETFILTER_VERDICT_COUNT]; /* [0] (PASS) unused */
    uint64_t rx_drops[NETFILTER_VERDICT_COUNT];
};

void netstats_reset(struct netstats *s);
void netstats_add_tx(struct netstats *s, uint64_t bytes);
void netstats_add_rx(struct netstats *s, uint64_t bytes);
void netstats_add_tx_drop(struct netstats *s, enum netfilter_verdict why);
void netstats_add_rx_drop(struct netstats *s, enum netfilter_verdict why);
void netstats_add_throttled(struct netstats *s, int tx);
/* A consistent-enough copy (each field read atomically). */
void netstats_snapshot(const struct netstats *s, struct netstats *out);
uint64_t netstats_tx_dropped(const struct netstats *s); /* sum of reasons */
uint64_t netstats_rx_dropped(const struct netstats *s);
/* {"tx": {"frames", "bytes", "throttled", "dropped", "drops": {reason: n}},
 *  "rx": {...}} into buf; returns the length (snprintf semantics), or a
 * negative errno. */
int netstats_format_json(const struct netstats *s, char *buf, size_t size);

#endif
