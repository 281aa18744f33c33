/* netdev-tapio: plays the guest side of herd-vmm for the netdev integration
 * tests. It holds taps in several network namespaces at once (setns), made
 * with netdev_tap_create, and moves frames through libherd-netdev's packet
 * path (netpath: anti-spoof filter, token buckets, counters) the way
 * virtio-net does.
 *
 *   netdev-tapio exchange NS_A BR_A NS_B BR_B NS_OBS BR_OBS COUNT
 *       tap A <-> tap B, COUNT unicast + COUNT broadcast frames each way;
 *       the observer tap must see none of them.
 *   netdev-tapio spoof NS_A BR_A NS_B BR_B COUNT
 *       A sends legitimate and spoofed frames through its filter; B must get
 *       exactly the legitimate ones; counters must match; B's receive filter
 *       drops unicast for other MACs (promiscuous off).
 *   netdev-tapio ratelimit NS BR RATE SECONDS
 *       A sends as fast as its byte bucket (RATE B/s) allows for SECONDS; B
 *       measures what arrives against the send times.
 * Exit status 0 when every check holds, 1 otherwise; figures on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "herd/netdev.h"
#include "herd/netpath.h"

#define MAGIC "HERDNT01"
#define VNET NETDEV_VNET_HDR_LEN
#define FRAME_MAX 2048

enum kind { K_WARM, K_DATA, K_LEGIT, K_BAD_MAC, K_BAD_IP4, K_BAD_ARP, K_BAD_IP6,
            K_OTHER_DST, K_COUNT };

struct ep {
    struct netdev_tap tap;
    uint8_t mac[6];
    int fd;
};

/* Payload after the headers: magic, kind, seq, send time. */
struct marker {
    char magic[8];
    uint32_t kind, seq;
    uint64_t ts;
} __attribute__((packed));

static int ns_enter(const char *ns)
{
    char path[256];
    int fd, rc;

    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = setns(fd, CLONE_NEWNET) ? -errno : 0;
    close(fd);
    return rc;
}

static int ep_open(struct ep *e, const char *ns, const char *bridge, const char *id)
{
    struct netdev_tap_cfg cfg = {.identity = id, .bridge = bridge,
                                 .vnet_hdr_len = VNET, .owner = (uid_t)-1};
    struct netdev_nl *nl;
    struct herd_err err;
    int rc;

    if ((rc = ns_enter(ns))) {
        fprintf(stderr, "netns %s: %s\n", ns, strerror(-rc));
        return rc;
    }
    if ((rc = netdev_nl_open(&nl)))
        return rc;
    rc = netdev_mac_assign(id, 0, netdev_mac_seen_on_host, nl, e->mac);
    memcpy(cfg.guest_mac, e->mac, 6);
    if (!rc && (rc = netdev_tap_create(nl, &cfg, &e->tap, &err)))
        fprintf(stderr, "tap for %s on %s/%s: %s\n", id, ns, bridge, err.msg);
    netdev_nl_close(nl);
    e->fd = e->tap.fds[0];
    return rc;
}

static int ep_send(struct ep *e, const void *frame, size_t len)
{
    uint8_t hdr[VNET] = {0};
    struct iovec iov[2] = {{hdr, VNET}, {(void *)frame, len}};

    for (;;) {
        if (writev(e->fd, iov, 2) == (ssize_t)(VNET + len))
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        usleep(100);
    }
}

/* One frame (vnet header stripped) or 0 after timeout_ms. */
static ssize_t ep_recv(struct ep *e, uint8_t *frame, int timeout_ms)
{
    uint8_t buf[VNET + FRAME_MAX];
    struct pollfd pfd = {.fd = e->fd, .events = POLLIN};
    ssize_t n;

    for (;;) {
        n = read(e->fd, buf, sizeof(buf));
        if (n > VNET) {
            memcpy(frame, buf + VNET, (size_t)n - VNET);
            return n - VNET;
        }
        if (n >= 0 || (errno != EAGAIN && errno != EINTR))
            return n < 0 ? -errno : 0;
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return 0;
    }
}

static const struct marker *find_marker(const uint8_t *f, size_t len)
{
    const uint8_t *p = memmem(f, len, MAGIC, 8);

    if (!p || (size_t)(p - f) + sizeof(struct marker) > len)
        return NULL;
    return (const struct marker *)p;
}

static uint64_t now_ns(void)
{
    return ratelimit_now_ns();
}

/* ---- frame builders ------------------------------------------------------ */

static size_t put_marker(uint8_t *p, enum kind k, uint32_t seq)
{
    struct marker m = {.kind = k, .seq = seq, .ts = now_ns()};

    memcpy(m.magic, MAGIC, 8);
    memcpy(p, &m, sizeof(m));
    return sizeof(m);
}

static size_t eth_hdr(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = (uint8_t)(type >> 8);
    f[13] = (uint8_t)type;
    return 14;
}

/* br_netfilter (when loaded) drops IPv4 with a bad header checksum. */
static void ip4_checksum(uint8_t *ip)
{
    uint32_t sum = 0;

    ip[10] = ip[11] = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
}

/* IPv4/UDP frame of total length len (>= 64) from src_ip. */
static size_t udp4_frame(uint8_t *f, size_t len, const uint8_t *dst, const uint8_t *src,
                         const char *src_ip, enum kind k, uint32_t seq)
{
    uint8_t *ip = f + 14;
    size_t iplen = len - 14;

    memset(f, 0, len);
    eth_hdr(f, dst, src, 0x0800);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(iplen >> 8);
    ip[3] = (uint8_t)iplen;
    ip[8] = 64;
    ip[9] = 17;
    inet_pton(AF_INET, src_ip, ip + 12);
    inet_pton(AF_INET, "10.1.0.99", ip + 16);
    ip[20] = 0x30; /* ports 12345 -> 12345 */
    ip[21] = 0x39;
    ip[22] = 0x30;
    ip[23] = 0x39;
    ip[24] = (uint8_t)((iplen - 20) >> 8);
    ip[25] = (uint8_t)(iplen - 20);
    ip4_checksum(ip);
    put_marker(ip + 28, k, seq);
    return len;
}

static size_t arp_frame(uint8_t *f, const uint8_t *src, const char *spa, uint32_t seq)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t *a = f + 14;

    memset(f, 0, 80);
    eth_hdr(f, bcast, src, 0x0806);
    a[1] = 1;
    a[2] = 0x08;
    a[4] = 6;
    a[5] = 4;
    a[7] = 2;
    memcpy(a + 8, src, 6);
    inet_pton(AF_INET, spa, a + 14);
    inet_pton(AF_INET, "10.1.0.99", a + 24);
    put_marker(a + 28, K_BAD_ARP, seq);
    return 80;
}

static size_t udp6_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src,
                         const char *src_ip, uint32_t seq)
{
    uint8_t *ip = f + 14;

    memset(f, 0, 120);
    eth_hdr(f, dst, src, 0x86dd);
    ip[0] = 0x60;
    ip[5] = 64;
    ip[6] = 17;
    ip[7] = 64;
    inet_pton(AF_INET6, src_ip, ip + 8);
    inet_pton(AF_INET6, "fd01::99", ip + 24);
    put_marker(ip + 48, K_BAD_IP6, seq);
    return 120;
}

/* ---- exchange ------------------------------------------------------------ */

static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static int send_burst(struct ep *from, const uint8_t *dst, enum kind k, unsigned count)
{
    uint8_t f[FRAME_MAX];

    for (unsigned i = 0; i < count; i++) {
        size_t len = udp4_frame(f, 200, dst, from->mac, "10.1.0.5", k, i);
        if (ep_send(from, f, len))
            return -1;
        usleep(500);
    }
    return 0;
}

/* Counts marked frames from src until want arrive or timeout_ms passes. */
static unsigned recv_count(struct ep *at, const uint8_t *src, unsigned want, int timeout_ms)
{
    uint8_t f[FRAME_MAX];
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000;
    unsigned got = 0;
    ssize_t n;

    while (got < want && now_ns() < end) {
        if ((n = ep_recv(at, f, 50)) <= 0)
            continue;
        if (find_marker(f, (size_t)n) && (!src || memcmp(f + 6, src, 6) == 0))
            got++;
    }
    return got;
}

static int exchange_one_way(struct ep *from, struct ep *to, const char *label,
                            unsigned count)
{
    unsigned got;

    if (send_burst(from, to->mac, K_DATA, count) ||
        send_burst(from, BCAST, K_DATA, count))
        return 1;
    got = recv_count(to, from->mac, 2 * count, 3000);
    printf("%s: %u of %u frames (unicast + broadcast) arrived\n", label, got, 2 * count);
    return got == 2 * count ? 0 : 1;
}

static int cmd_exchange(char **argv)
{
    struct ep a, b, obs;
    unsigned count = (unsigned)atoi(argv[6]), seen;
    int bad = 0;

    if (ep_open(&a, argv[0], argv[1], "xa") || ep_open(&b, argv[2], argv[3], "xb") ||
        ep_open(&obs, argv[4], argv[5], "xobs"))
        return 1;
    printf("taps: %s on %s/%s, %s on %s/%s, observer %s on %s/%s\n", a.tap.name,
           argv[0], argv[1], b.tap.name, argv[2], argv[3], obs.tap.name, argv[4],
           argv[5]);
    bad |= exchange_one_way(&a, &b, "node1 -> node2", count);
    bad |= exchange_one_way(&b, &a, "node2 -> node1", count);
    seen = recv_count(&obs, NULL, 1u << 30, 500);
    printf("observer tap on %s saw %u test frames\n", argv[5], seen);
    bad |= seen != 0;
    netdev_tap_close(&a.tap);
    netdev_tap_close(&b.tap);
    netdev_tap_close(&obs.tap);
    return bad;
}

/* ---- spoof --------------------------------------------------------------- */

static int cmd_spoof(char **argv)
{
    static const uint8_t other_mac[6] = {0x0e, 0xde, 0xad, 0xbe, 0xef, 0x01};
    struct ep a, b;
    struct netpath pa, pb;
    unsigned count = (unsigned)atoi(argv[4]), got[K_COUNT] = {0};
    uint8_t f[FRAME_MAX];
    uint64_t wait;
    ssize_t n;
    int bad = 0;

    if (ep_open(&a, argv[0], argv[1], "sa") || ep_open(&b, argv[2], argv[3], "sb"))
        return 1;
    netpath_init(&pa, a.mac, now_ns());
    netfilter_allow_ip(&pa.filter, "10.1.0.5");
    netfilter_allow_ip(&pa.filter, "fd01::5");
    netpath_init(&pb, b.mac, now_ns());
    for (unsigned i = 0; i < count; i++) {
        size_t lens[6];
        uint8_t frames[6][FRAME_MAX];
        lens[0] = udp4_frame(frames[0], 100, b.mac, a.mac, "10.1.0.5", K_LEGIT, i);
        lens[1] = udp4_frame(frames[1], 100, b.mac, other_mac, "10.1.0.5", K_BAD_MAC, i);
        lens[2] = udp4_frame(frames[2], 100, b.mac, a.mac, "10.1.0.1", K_BAD_IP4, i);
        lens[3] = arp_frame(frames[3], a.mac, "10.1.0.1", i);
        lens[4] = udp6_frame(frames[4], b.mac, a.mac, "fd01::1", i);
        lens[5] = udp4_frame(frames[5], 100, other_mac, a.mac, "10.1.0.5", K_OTHER_DST, i);
        for (int k = 0; k < 6; k++) {
            if (netpath_tx(&pa, frames[k], lens[k], now_ns(), &wait) == NETPATH_PASS &&
                ep_send(&a, frames[k], lens[k]))
                return 1;
        }
        usleep(500);
    }
    /* Until every legitimate frame is in, then 300 ms more for stragglers
     * (spoofed frames that got through would show up there). */
    uint64_t end = now_ns() + 3000000000ULL;
    bool all_in = false;
    while (now_ns() < end) {
        if (!all_in && got[K_LEGIT] == count) {
            all_in = true;
            end = now_ns() + 300000000ULL;
        }
        if ((n = ep_recv(&b, f, 50)) <= 0)
            continue;
        const struct marker *m = find_marker(f, (size_t)n);
        if (m && m->kind < K_COUNT &&
            netpath_rx(&pb, f, (size_t)n, now_ns(), &wait) == NETPATH_PASS)
            got[m->kind]++;
    }
    char json[1024];
    netstats_format_json(&pa.stats, json, sizeof(json));
    printf("sender counters: %s\n", json);
    netstats_format_json(&pb.stats, json, sizeof(json));
    printf("receiver counters: %s\n", json);
    printf("received: legit %u/%u, spoofed mac %u, spoofed ip4 %u, spoofed arp %u, "
           "spoofed ip6 %u, for another mac %u\n", got[K_LEGIT], count, got[K_BAD_MAC],
           got[K_BAD_IP4], got[K_BAD_ARP], got[K_BAD_IP6], got[K_OTHER_DST]);
    bad |= got[K_LEGIT] != count || got[K_BAD_MAC] || got[K_BAD_IP4] ||
           got[K_BAD_ARP] || got[K_BAD_IP6] || got[K_OTHER_DST];
    bad |= pa.stats.tx_frames != 2 * (uint64_t)count; /* legit + other-dst */
    bad |= pa.stats.tx_drops[NETFILTER_DROP_SRC_MAC] != count;
    bad |= pa.stats.tx_drops[NETFILTER_DROP_IP4_SRC] != count;
    bad |= pa.stats.tx_drops[NETFILTER_DROP_ARP] != count;
    bad |= pa.stats.tx_drops[NETFILTER_DROP_IP6_SRC] != count;
    bad |= pb.stats.rx_drops[NETFILTER_DROP_NOT_FOR_US] != count;
    bad |= pb.stats.rx_frames != count;
    netdev_tap_close(&a.tap);
    netdev_tap_close(&b.tap);
    return bad;
}

/* ---- rate limit ------------------------------------------------------------ */

struct rl_run {
    struct ep a, b;
    struct netpath pa;
    uint64_t rate, seconds;
    volatile int sender_done;
    uint64_t offered, throttled;
    /* receiver results */
    uint64_t bytes, frames, first_ts, last_ts, first_len, max_seq, lost;
};

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL)};

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static void *rl_sender(void *arg)
{
    struct rl_run *r = arg;
    uint8_t f[FRAME_MAX];
    uint64_t wait, start = 0, seq = 0;
    enum kind k = K_WARM;

    for (;;) {
        uint64_t t = now_ns();
        if (k == K_DATA && t - start >= r->seconds * 1000000000ULL)
            break;
        size_t len = udp4_frame(f, 1000, r->b.mac, r->a.mac, "10.1.0.5", k,
                                (uint32_t)seq);
        r->offered++;
        enum netpath_result res = netpath_tx(&r->pa, f, len, t, &wait);
        if (res == NETPATH_WAIT) {
            r->throttled++;
            if (k == K_WARM) { /* initial bucket drained: measure from here */
                k = K_DATA;
                seq = 0;
            }
            sleep_ns(wait);
            if (!start && k == K_DATA)
                start = now_ns();
            continue;
        }
        if (res != NETPATH_PASS || ep_send(&r->a, f, len))
            break;
        seq++;
    }
    r->sender_done = 1;
    return NULL;
}

static void rl_receive(struct rl_run *r)
{
    uint8_t f[FRAME_MAX];
    uint64_t grace_end = 0;
    ssize_t n;

    for (;;) {
        if (r->sender_done && !grace_end)
            grace_end = now_ns() + 500000000ULL;
        if (grace_end && now_ns() > grace_end)
            break;
        if ((n = ep_recv(&r->b, f, 20)) <= 0)
            continue;
        const struct marker *m = find_marker(f, (size_t)n);
        if (!m || m->kind != K_DATA || memcmp(f + 6, r->a.mac, 6) != 0)
            continue;
        if (!r->frames) {
            r->first_ts = m->ts;
            r->first_len = (uint64_t)n;
        }
        r->frames++;
        r->bytes += (uint64_t)n;
        r->last_ts = m->ts;
        if (m->seq > r->max_seq)
            r->max_seq = m->seq;
    }
    r->lost = r->frames ? r->max_seq + 1 - r->frames : 0;
}

static int rl_attempt(char **argv, int attempt, int *retryable)
{
    struct rl_run *r = calloc(1, sizeof(*r));
    struct tbucket_cfg bytes;
    pthread_t th;
    int bad = 1;

    r->rate = strtoull(argv[2], NULL, 10);
    r->seconds = strtoull(argv[3], NULL, 10);
    /* Firecracker's model: a bucket of a quarter second, refilled in 250 ms. */
    bytes = (struct tbucket_cfg){.size = r->rate / 4, .refill_time_ms = 250};
    if (ep_open(&r->a, argv[0], argv[1], "rla") || ep_open(&r->b, argv[0], argv[1], "rlb"))
        goto out;
    netpath_init(&r->pa, r->a.mac, now_ns());
    ratelimit_init(&r->pa.tx_limit, &bytes, NULL, now_ns());
    if (pthread_create(&th, NULL, rl_sender, r))
        goto out;
    rl_receive(r);
    pthread_join(th, NULL);

    double window = (double)(r->last_ts - r->first_ts) / 1e9;
    double measured = window > 0 ? (double)(r->bytes - r->first_len) / window : 0;
    double ratio = measured / (double)r->rate;
    printf("attempt %d: limit %llu B/s (bucket %llu B, refill 250 ms); offered %llu "
           "frames of 1000 B, throttled %llu times; delivered %llu frames, %llu B in "
           "%.3f s = %.0f B/s (%.2f%% of the limit); lost %llu, tokens wasted %llu\n",
           attempt, (unsigned long long)r->rate, (unsigned long long)bytes.size,
           (unsigned long long)r->offered, (unsigned long long)r->throttled,
           (unsigned long long)r->frames, (unsigned long long)(r->bytes - r->first_len),
           window, measured, 100.0 * ratio, (unsigned long long)r->lost,
           (unsigned long long)r->pa.tx_limit.bytes.wasted);
    bad = ratio > 1.10 || ratio < 0.90 || window < 0.8 * (double)r->seconds;
    /* Under-delivery the limiter's own accounting blames on starvation of
     * this process (tokens wasted, frames lost) may be retried; too much
     * never is. */
    *retryable = bad && ratio <= 1.10 && (r->lost || r->pa.tx_limit.bytes.wasted);
out:
    netdev_tap_close(&r->a.tap);
    netdev_tap_close(&r->b.tap);
    free(r);
    return bad;
}

static int cmd_ratelimit(char **argv)
{
    int retryable = 0, bad = 1;

    for (int attempt = 1; attempt <= 3; attempt++) {
        bad = rl_attempt(argv, attempt, &retryable);
        if (!bad || !retryable)
            break;
        printf("attempt %d was starved (see lost/wasted); trying again\n", attempt);
    }
    return bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 9 && strcmp(argv[1], "exchange") == 0)
        return cmd_exchange(argv + 2);
    if (argc == 7 && strcmp(argv[1], "spoof") == 0)
        return cmd_spoof(argv + 2);
    if (argc == 6 && strcmp(argv[1], "ratelimit") == 0)
        return cmd_ratelimit(argv + 2);
    fprintf(stderr, "usage: netdev-tapio exchange NS_A BR_A NS_B BR_B NS_OBS BR_OBS COUNT\n"
                    "       netdev-tapio spoof NS_A BR_A NS_B BR_B COUNT\n"
                    "       netdev-tapio ratelimit NS BR RATE SECONDS\n");
    return 64;
}
