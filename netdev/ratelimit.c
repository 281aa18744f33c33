/* Token buckets (Firecracker's model), exact in 128-bit token-nanoseconds.
 * credit counts tokens x refill_time_ns: refilling adds elapsed_ns x size,
 * a token costs refill_time_ns, the bucket holds size x refill_time_ns. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "herd/ratelimit.h"

#define NS_PER_MS 1000000ULL
#define ELAPSED_MAX (1ULL << 62) /* keeps elapsed x size inside 2^126 */

int tbucket_cfg_check(const struct tbucket_cfg *cfg)
{
    if (cfg->size == 0)
        return 0;
    if (cfg->refill_time_ms == 0 || cfg->refill_time_ms > UINT32_MAX)
        return -EINVAL;
    return 0;
}

static __int128 refill_ns(const struct tbucket *b)
{
    return (__int128)b->cfg.refill_time_ms * NS_PER_MS;
}

static __int128 capacity(const struct tbucket *b)
{
    return (__int128)b->cfg.size * refill_ns(b);
}

int tbucket_init(struct tbucket *b, const struct tbucket_cfg *cfg, uint64_t now_ns)
{
    int rc = tbucket_cfg_check(cfg);

    if (rc)
        return rc;
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->burst_left = cfg->one_time_burst;
    b->last_ns = now_ns;
    b->credit = capacity(b);
    return 0;
}

static void refill(struct tbucket *b, uint64_t now_ns)
{
    uint64_t elapsed;
    __int128 cap = capacity(b);

    if (now_ns <= b->last_ns)
        return; /* same instant, or a clock that went back: nothing to add */
    elapsed = now_ns - b->last_ns;
    if (elapsed > ELAPSED_MAX)
        elapsed = ELAPSED_MAX;
    b->last_ns = now_ns;
    b->credit += (__int128)elapsed * b->cfg.size;
    if (b->credit > cap) {
        b->wasted += (uint64_t)((b->credit - cap) / refill_ns(b));
        b->credit = cap;
    }
}

/* Can tokens go now? Sets how many come from the one-time burst and the
 * credit the rest costs. */
static bool bucket_check(const struct tbucket *b, uint64_t tokens,
                         uint64_t *from_burst, __int128 *cost)
{
    uint64_t rest;

    *from_burst = tokens < b->burst_left ? tokens : b->burst_left;
    rest = tokens - *from_burst;
    *cost = (__int128)rest * refill_ns(b);
    if (rest == 0 || b->credit >= *cost)
        return true;
    /* Larger than the bucket: allowed from a full bucket, into debt. */
    return rest > b->cfg.size && b->credit >= capacity(b);
}

bool tbucket_consume(struct tbucket *b, uint64_t tokens, uint64_t now_ns)
{
    uint64_t from_burst;
    __int128 cost;

    if (b->cfg.size == 0)
        return true;
    refill(b, now_ns);
    if (!bucket_check(b, tokens, &from_burst, &cost))
        return false;
    b->burst_left -= from_burst;
    b->credit -= cost;
    return true;
}

uint64_t tbucket_wait_ns(struct tbucket *b, uint64_t tokens, uint64_t now_ns)
{
    uint64_t from_burst, rest;
    __int128 cost, target, wait;

    if (b->cfg.size == 0)
        return 0;
    refill(b, now_ns);
    if (bucket_check(b, tokens, &from_burst, &cost))
        return 0;
    rest = tokens - from_burst;
    target = rest > b->cfg.size ? capacity(b) : cost;
    wait = (target - b->credit + b->cfg.size - 1) / b->cfg.size;
    return wait > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)wait;
}

int64_t tbucket_available(struct tbucket *b, uint64_t now_ns)
{
    if (b->cfg.size == 0)
        return INT64_MAX;
    refill(b, now_ns);
    return (int64_t)(b->credit / refill_ns(b));
}

static const struct tbucket_cfg unlimited;

int ratelimit_init(struct ratelimit *rl, const struct tbucket_cfg *bytes,
                   const struct tbucket_cfg *ops, uint64_t now_ns)
{
    int rc;

    memset(rl, 0, sizeof(*rl));
    if ((rc = tbucket_cfg_check(bytes ? bytes : &unlimited)) ||
        (rc = tbucket_cfg_check(ops ? ops : &unlimited)))
        return rc;
    tbucket_init(&rl->bytes, bytes ? bytes : &unlimited, now_ns);
    tbucket_init(&rl->ops, ops ? ops : &unlimited, now_ns);
    return 0;
}

bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns)
{
    uint64_t fb_bytes = 0, fb_ops = 0;
    __int128 c_bytes = 0, c_ops = 0;
    bool lim_bytes = rl->bytes.cfg.size != 0, lim_ops = rl->ops.cfg.size != 0;

    if (lim_bytes)
        refill(&rl->bytes, now_ns);
    if (lim_ops)
        refill(&rl->ops, now_ns);
    if ((lim_bytes && !bucket_check(&rl->bytes, bytes, &fb_bytes, &c_bytes)) ||
        (lim_ops && !bucket_check(&rl->ops, 1, &fb_ops, &c_ops))) {
        rl->throttled++;
        return false;
    }
    rl->bytes.burst_left -= fb_bytes;
    rl->bytes.credit -= c_bytes;
    rl->ops.burst_left -= fb_ops;
    rl->ops.credit -= c_ops;
    return true;
}

uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns)
{
    uint64_t wb = tbucket_wait_ns(&rl->bytes, bytes, now_ns);
    uint64_t wo = tbucket_wait_ns(&rl->ops, 1, now_ns);

    return wb > wo ? wb : wo;
}

static bool cfg_equal(const struct tbucket_cfg *a, const struct tbucket_cfg *b)
{
    return a->size == b->size && a->one_time_burst == b->one_time_burst &&
           a->refill_time_ms == b->refill_time_ms;
}

int ratelimit_update(struct ratelimit *rl, const struct tbucket_cfg *bytes,
                     const struct tbucket_cfg *ops, uint64_t now_ns)
{
    int rc;

    if ((bytes && (rc = tbucket_cfg_check(bytes))) ||
        (ops && (rc = tbucket_cfg_check(ops))))
        return rc;
    if (bytes && !cfg_equal(bytes, &rl->bytes.cfg))
        tbucket_init(&rl->bytes, bytes, now_ns);
    if (ops && !cfg_equal(ops, &rl->ops.cfg))
        tbucket_init(&rl->ops, ops, now_ns);
    return 0;
}

bool ratelimit_is_limited(const struct ratelimit *rl)
{
    return rl->bytes.cfg.size != 0 || rl->ops.cfg.size != 0;
}

uint64_t ratelimit_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
