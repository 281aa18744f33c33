/*
 * ratelimit: token buckets for the userspace packet path, Firecracker's
 * model. A bucket has a size (tokens), a one-time burst (extra tokens spent
 * first and never refilled) and a refill time: the bucket goes from empty to
 * full in refill_time_ms, i.e. it refills at size / refill_time tokens per
 * millisecond. It starts full. A rate limiter holds one bucket for bytes and
 * one for operations (frames); a bucket of size 0 is unlimited.
 *
 * A frame passes when both buckets hold enough; then both are charged. A
 * frame larger than the bucket passes when the bucket is full and leaves it
 * in debt (so jumbo frames under a small bucket still move, at the rate).
 * When a frame does not pass, ratelimit_wait_ns says how long until it
 * would: herd-vmm keeps the frame, arms a timer and stops reading that
 * queue meanwhile (nothing is dropped for rate).
 *
 * Time is passed in by the caller (CLOCK_MONOTONIC ns from ratelimit_now_ns
 * in production, anything in tests). Arithmetic is exact (128-bit
 * token-nanoseconds): no drift however often it is called. Not thread-safe:
 * one limiter per queue and direction, updated from the thread that uses it.
 */
#ifndef HERD_RATELIMIT_H
#define HERD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct tbucket_cfg {
    uint64_t size;           /* tokens; 0 = unlimited */
    uint64_t one_time_burst; /* extra tokens, spent first, not refilled */
    uint64_t refill_time_ms; /* empty -> full; must be > 0 when size > 0 */
};

struct tbucket {
    struct tbucket_cfg cfg;
    __int128 credit;         /* tokens x refill_time_ns; may go negative */
    uint64_t burst_left;     /* one-time burst still unspent */
    uint64_t last_ns;        /* time credit was last brought up to date */
    uint64_t wasted;         /* tokens lost because the bucket was full */
};

struct ratelimit {
    struct tbucket bytes;
    struct tbucket ops;
    uint64_t throttled;      /* consume calls refused */
};

/* 0, or -EINVAL (with size > 0 and refill_time_ms == 0, or a size so large
 * that size * refill_time_ns overflows 2^100). */
int tbucket_cfg_check(const struct tbucket_cfg *cfg);
int tbucket_init(struct tbucket *b, const struct tbucket_cfg *cfg, uint64_t now_ns);
bool tbucket_consume(struct tbucket *b, uint64_t tokens, uint64_t now_ns);
uint64_t tbucket_wait_ns(struct tbucket *b, uint64_t tokens, uint64_t now_ns);
/* Whole tokens available now (negative while in debt), one-time burst
 * not included. */
int64_t tbucket_available(struct tbucket *b, uint64_t now_ns);

/* bytes/ops may be NULL (unlimited). */
int ratelimit_init(struct ratelimit *rl, const struct tbucket_cfg *bytes,
                   const struct tbucket_cfg *ops, uint64_t now_ns);
/* Both buckets or neither are charged. */
bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns);
/* ns until a frame of this size would pass; 0 if it would now. */
uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns);
/* Changes the configuration at runtime (Firecracker's PATCH): a changed
 * bucket restarts full with its new size and one-time burst; an unchanged
 * one keeps its state. NULL leaves that bucket alone. */
int ratelimit_update(struct ratelimit *rl, const struct tbucket_cfg *bytes,
                     const struct tbucket_cfg *ops, uint64_t now_ns);
bool ratelimit_is_limited(const struct ratelimit *rl);
uint64_t ratelimit_now_ns(void); /* CLOCK_MONOTONIC */

#endif
