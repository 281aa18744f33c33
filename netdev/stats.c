/* Per-NIC counters of the userspace packet path. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "herd/netstats.h"

static void add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void netstats_reset(struct netstats *s)
{
    memset(s, 0, sizeof(*s));
}

void netstats_add_tx(struct netstats *s, uint64_t bytes)
{
    add(&s->tx_frames, 1);
    add(&s->tx_bytes, bytes);
}

void netstats_add_rx(struct netstats *s, uint64_t bytes)
{
    add(&s->rx_frames, 1);
    add(&s->rx_bytes, bytes);
}

void netstats_add_tx_drop(struct netstats *s, enum netfilter_verdict why)
{
    if ((unsigned)why < NETFILTER_VERDICT_COUNT)
        add(&s->tx_drops[why], 1);
}

void netstats_add_rx_drop(struct netstats *s, enum netfilter_verdict why)
{
    if ((unsigned)why < NETFILTER_VERDICT_COUNT)
        add(&s->rx_drops[why], 1);
}

void netstats_add_throttled(struct netstats *s, int tx)
{
    add(tx ? &s->tx_throttled : &s->rx_throttled, 1);
}

void netstats_snapshot(const struct netstats *s, struct netstats *out)
{
    out->tx_frames = get(&s->tx_frames);
    out->tx_bytes = get(&s->tx_bytes);
    out->rx_frames = get(&s->rx_frames);
    out->rx_bytes = get(&s->rx_bytes);
    out->tx_throttled = get(&s->tx_throttled);
    out->rx_throttled = get(&s->rx_throttled);
    for (int i = 0; i < NETFILTER_VERDICT_COUNT; i++) {
        out->tx_drops[i] = get(&s->tx_drops[i]);
        out->rx_drops[i] = get(&s->rx_drops[i]);
    }
}

static uint64_t sum(const uint64_t *drops)
{
    uint64_t n = 0;

    for (int i = 1; i < NETFILTER_VERDICT_COUNT; i++)
        n += get(&drops[i]);
    return n;
}

uint64_t netstats_tx_dropped(const struct netstats *s)
{
    return sum(s->tx_drops);
}

uint64_t netstats_rx_dropped(const struct netstats *s)
{
    return sum(s->rx_drops);
}

struct out {
    char *buf;
    size_t size, len; /* len counts what would have been written */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    size_t room = o->len < o->size ? o->size - o->len : 0;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void put_dir(struct out *o, const char *dir, uint64_t frames, uint64_t bytes,
                    uint64_t throttled, const uint64_t *drops)
{
    put(o, "\"%s\": {\"frames\": %llu, \"bytes\": %llu, \"throttled\": %llu, "
        "\"dropped\": %llu, \"drops\": {", dir, (unsigned long long)frames,
        (unsigned long long)bytes, (unsigned long long)throttled,
        (unsigned long long)sum(drops));
    for (int i = 1; i < NETFILTER_VERDICT_COUNT; i++)
        put(o, "%s\"%s\": %llu", i > 1 ? ", " : "",
            netfilter_verdict_name((enum netfilter_verdict)i),
            (unsigned long long)get(&drops[i]));
    put(o, "}}");
}

int netstats_format_json(const struct netstats *s, char *buf, size_t size)
{
    struct netstats snap;
    struct out o = {buf, size, 0};

    if (!buf && size)
        return -EINVAL;
    netstats_snapshot(s, &snap);
    put(&o, "{");
    put_dir(&o, "tx", snap.tx_frames, snap.tx_bytes, snap.tx_throttled, snap.tx_drops);
    put(&o, ", ");
    put_dir(&o, "rx", snap.rx_frames, snap.rx_bytes, snap.rx_throttled, snap.rx_drops);
    put(&o, "}");
    return (int)o.len;
}
