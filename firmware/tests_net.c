/*
 * Test "net": raw Ethernet frames between two probes on one L2 segment,
 * over virtio-net (virtio_net.c). EtherType 0x88b5 (IEEE local
 * experimental): not IP, so bridge netfilter leaves the frames alone.
 *
 * Frame after the Ethernet header (little-endian fields):
 *   "HRDP" kind:u8 flags:u8 len:u16 seq:u32 count:u32 ack:u32 csum:u32
 *   payload[len]
 * kind 1 HELLO (flags bit 0: "I hear you"), 2 DATA, 3 DONE, 4 ACK.
 * csum is FNV-1a over kind..ack and the payload; the payload is also a
 * known function of seq, so a corrupted or misdelivered frame is caught.
 *
 * Protocol: both sides send HELLO every 20 ms until each heard the other
 * (a HELLO with the flag, or any later frame, ends the handshake). A sender
 * sends DATA 0..count-1, at most WINDOW ahead of the peer's ACK (cumulative
 * count of distinct DATA received; sent every 32 frames and when idle), so
 * a slow receiver is not flooded; a window stalled for 200 ms opens anyway.
 * Then DONE until everything is acked or nothing moved for 1 s. A receiver
 * is done when it has every frame, or the sender said DONE and 500 ms went
 * by without new DATA.
 *
 * Keys: probe.net.role=tx|rx|both|listen (default both; listen sends
 * nothing and fails if any herd-probe frame arrives within the wait),
 * probe.net.count=N (default 1000), probe.net.peer=MAC|broadcast (default
 * broadcast: the first probe heard becomes the peer), probe.net.maxloss=N
 * (default 0), probe.net.wait=SECONDS (handshake / listen time, default 20),
 * probe.net.dev=N, probe.net.mac=MAC (expected own MAC), probe.net.queues=1|2
 * (queue pairs; 2 needs the device's VIRTIO_NET_F_MQ, see virtio_net.h),
 * probe.net.delay=MS (wait that long with the device set up before the
 * handshake: the moment for a snapshot, tests/integration/snapshot-probe.sh).
 *
 * Result line: "net: sent N received M lost L" (lost: frames the peer sent
 * that never arrived, from the peer's count; for tx: count - acked).
 */
#include "cmdline.h"
#include "cpl0.h"
#include "dma.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"
#include "tsc.h"
#include "virtio_net.h"

#define ETHERTYPE 0x88b5
#define K_HELLO 1
#define K_DATA 2
#define K_DONE 3
#define K_ACK 4
#define HDR 24
#define WINDOW 128
#define ACK_EVERY 32
#define HELLO_MS 20
#define STALL_MS 200
#define DONE_MS 50
#define SENDER_GIVEUP_MS 1000
#define RECV_LINGER_MS 500
#define NOPROGRESS_MS 5000
#define MAX_COUNT 1000000

enum role { R_TX, R_RX, R_BOTH, R_LISTEN };

struct netrun {
    struct test_ctx *t;
    struct vnet n;
    enum role role;
    uint64_t count, maxloss, wait_s;
    uint8_t peer[6];
    bool peer_known, peer_fixed;
    /* handshake */
    bool heard, heard_back;
    /* sender */
    uint64_t sent, acked;
    /* receiver */
    uint8_t *seen;
    uint64_t received, dups, peer_count, corrupt, foreign, other;
    bool peer_done;
    uint64_t last_data_tsc;
    uint64_t acks_sent_at;
    uint8_t frame[VNET_FRAME_MAX];
};

static struct netrun nr;
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint32_t fnv(uint32_t h, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619U;
    return h;
}

static uint8_t payload_byte(uint32_t seq, uint32_t i) { return (uint8_t)(seq * 13 + i * 7 + 0x5a); }
static uint16_t payload_len(uint32_t seq) { return (uint16_t)(22 + (seq * 37U) % 1440); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v), put16(p + 2, (uint16_t)(v >> 16)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

static bool parse_mac(const char *s, uint32_t n, uint8_t mac[6])
{
    if (n != 17)
        return false;
    for (int i = 0; i < 6; i++) {
        uint64_t v = 0;
        if (i < 5 && s[3 * i + 2] != ':')
            return false;
        for (int j = 0; j < 2; j++) {
            char c = s[3 * i + j];
            uint8_t d = (uint8_t)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                                  c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0xff);
            if (d > 15)
                return false;
            v = v * 16 + d;
        }
        mac[i] = (uint8_t)v;
    }
    return true;
}

static bool send_frame(struct netrun *r, uint8_t kind, uint8_t flags, uint32_t seq)
{
    uint8_t *f = r->frame;
    memcpy(f, r->peer_known ? r->peer : bcast, 6);
    memcpy(f + 6, r->n.mac, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    uint8_t *h = f + 14;
    uint16_t len = kind == K_DATA ? payload_len(seq) : 0;
    memcpy(h, "HRDP", 4);
    h[4] = kind;
    h[5] = flags;
    put16(h + 6, len);
    put32(h + 8, seq);
    put32(h + 12, (uint32_t)(r->role == R_RX ? 0 : r->count));
    put32(h + 16, (uint32_t)r->received);
    for (uint32_t i = 0; i < len; i++)
        h[HDR + i] = payload_byte(seq, i);
    put32(h + 20, fnv(fnv(2166136261U, h + 4, 16), h + HDR, len));
    uint32_t total = 14 + HDR + len;
    if (total < 60) {
        memset(f + total, 0, 60 - total);
        total = 60;
    }
    return vnet_send(&r->n, f, total);
}

/* Send a control frame now (waiting, bounded, for a transmit buffer). */
static void send_ctl(struct netrun *r, uint8_t kind, uint8_t flags)
{
    uint64_t dl = tsc_deadline(100);
    while (!send_frame(r, kind, flags, 0) && !tsc_passed(dl))
        cpu_relax();
    vnet_tx_kick(&r->n);
}

static void handle(struct netrun *r, const uint8_t *f, uint32_t len)
{
    if (len < 14 + HDR || f[12] != ETHERTYPE >> 8 || f[13] != (ETHERTYPE & 0xff)) {
        r->other++;
        return;
    }
    const uint8_t *h = f + 14;
    if (memcmp(h, "HRDP", 4) != 0 || !memcmp(f + 6, r->n.mac, 6)) {
        r->other++;
        return;
    }
    if (r->role == R_LISTEN) {
        r->foreign++;
        return;
    }
    uint16_t plen = get16(h + 6);
    if ((uint32_t)(14 + HDR + plen) > len || get32(h + 20) != fnv(fnv(2166136261U, h + 4, 16), h + HDR, plen)) {
        if (r->corrupt++ < 3)
            fail(r->t, "corrupt frame (length %u, checksum) from %02x:%02x:%02x:%02x:%02x:%02x", len, f[6], f[7], f[8],
                 f[9], f[10], f[11]);
        return;
    }
    if (!r->peer_known) {
        memcpy(r->peer, f + 6, 6);
        r->peer_known = true;
    } else if (memcmp(r->peer, f + 6, 6) != 0) {
        r->foreign++;
        return;
    }
    uint8_t kind = h[4];
    r->heard = true;
    if (kind != K_HELLO || (h[5] & 1))
        r->heard_back = true;
    if (get32(h + 12))
        r->peer_count = get32(h + 12);
    if (kind == K_ACK || kind == K_HELLO || kind == K_DONE || kind == K_DATA) {
        uint32_t ack = get32(h + 16);
        if (ack > r->acked && ack <= r->sent)
            r->acked = ack;
    }
    if (kind == K_DONE)
        r->peer_done = true;
    if (kind != K_DATA)
        return;
    uint32_t seq = get32(h + 8);
    if (r->role == R_TX)
        return; /* we do not count DATA */
    if (seq >= r->peer_count || seq >= MAX_COUNT || plen != payload_len(seq)) {
        if (r->corrupt++ < 3)
            fail(r->t, "DATA seq %u len %u outside the peer's count %lu", seq, plen, (unsigned long)r->peer_count);
        return;
    }
    for (uint32_t i = 0; i < plen; i++)
        if (h[HDR + i] != payload_byte(seq, i)) {
            if (r->corrupt++ < 3)
                fail(r->t, "DATA seq %u payload byte %u wrong", seq, i);
            return;
        }
    r->last_data_tsc = rdtsc();
    if (r->seen[seq / 8] & (1 << (seq % 8))) {
        r->dups++;
        return;
    }
    r->seen[seq / 8] = (uint8_t)(r->seen[seq / 8] | (1 << (seq % 8)));
    r->received++;
    if (r->received % ACK_EVERY == 0)
        send_ctl(r, K_ACK, 1);
}

/* A restored clone's device may carry a new MAC: the frames go out with
 * it from then on (checked at most every 10 ms: it costs an MMIO read). */
static void check_identity(struct netrun *r)
{
    static uint64_t last;

    if (last && tsc_ms_since(last) < 10)
        return;
    last = rdtsc();
    if (vnet_identity(&r->n))
        say("net: the device's MAC changed to %02x:%02x:%02x:%02x:%02x:%02x", r->n.mac[0], r->n.mac[1],
            r->n.mac[2], r->n.mac[3], r->n.mac[4], r->n.mac[5]);
}

static uint32_t poll_rx(struct netrun *r)
{
    uint32_t len, got = 0;
    uint16_t buf;
    const uint8_t *f;
    while ((f = vnet_recv(&r->n, &len, &buf))) {
        handle(r, f, len);
        vnet_rx_done(&r->n, buf);
        got++;
    }
    vnet_rx_kick(&r->n);
    return got;
}

static bool receiver_done(struct netrun *r)
{
    if (r->role == R_TX)
        return true;
    if (r->peer_count && r->received >= r->peer_count)
        return true;
    return r->peer_done && tsc_ms_since(r->last_data_tsc) >= RECV_LINGER_MS;
}

static void exchange(struct netrun *r)
{
    bool sending = r->role == R_TX || r->role == R_BOTH;
    uint64_t last_hello = 0, last_done = 0, progress = rdtsc(), acked_at = rdtsc(), last_acked = 0;
    uint64_t last_ack_sent = 0, ack_tsc = rdtsc(), stalls = 0, window = WINDOW, data_t0;
    uint64_t hs_deadline = tsc_deadline(r->wait_s * 1000);
    r->last_data_tsc = rdtsc();
    /* Handshake. */
    while (!(r->heard && r->heard_back)) {
        check_identity(r);
        if (tsc_passed(hs_deadline)) {
            fail(r->t, "no peer probe %s within %lu s", r->heard ? "heard us" : "heard", (unsigned long)r->wait_s);
            return;
        }
        if (!last_hello || tsc_ms_since(last_hello) >= HELLO_MS) {
            send_ctl(r, K_HELLO, r->heard ? 1 : 0);
            last_hello = rdtsc();
        }
        poll_rx(r);
        vnet_tx_reap(&r->n);
    }
    send_ctl(r, K_HELLO, 1);
    say("net: peer %02x:%02x:%02x:%02x:%02x:%02x", r->peer[0], r->peer[1], r->peer[2], r->peer[3], r->peer[4],
        r->peer[5]);
    data_t0 = rdtsc();
    r->last_data_tsc = rdtsc();
    for (;;) {
        bool moved = poll_rx(r) != 0;
        vnet_tx_reap(&r->n);
        check_identity(r);
        if (r->acked != last_acked) {
            last_acked = r->acked;
            acked_at = rdtsc();
            window = WINDOW;
        }
        if (sending && r->sent < r->count) {
            uint32_t queued = 0;
            while (r->sent < r->count && r->sent - r->acked < window && send_frame(r, K_DATA, 1, (uint32_t)r->sent)) {
                r->sent++;
                queued++;
                if (queued == 32)
                    break;
            }
            if (queued) {
                vnet_tx_kick(&r->n);
                moved = true;
            } else if (r->sent - r->acked >= window && tsc_ms_since(acked_at) >= STALL_MS) {
                window += ACK_EVERY; /* lost ACKs or a stuck peer: go on */
                acked_at = rdtsc();
                stalls++;
            }
        }
        bool send_done = !sending || (r->sent == r->count && (r->acked >= r->count ||
                                                              tsc_ms_since(acked_at) >= SENDER_GIVEUP_MS));
        if (sending && r->sent == r->count && r->acked < r->count && tsc_ms_since(last_done) >= DONE_MS) {
            send_ctl(r, K_DONE, 1);
            last_done = rdtsc();
        }
        /* Receiver: acknowledge what arrived when the flow pauses. */
        if (r->role != R_TX && r->received != last_ack_sent && tsc_ms_since(ack_tsc) >= 10) {
            send_ctl(r, K_ACK, 1);
            last_ack_sent = r->received;
            ack_tsc = rdtsc();
        }
        if (send_done && receiver_done(r))
            break;
        if (moved)
            progress = rdtsc();
        else if (tsc_ms_since(progress) >= NOPROGRESS_MS) {
            fail(r->t, "no progress for %u ms (sent %lu acked %lu received %lu)", NOPROGRESS_MS,
                 (unsigned long)r->sent, (unsigned long)r->acked, (unsigned long)r->received);
            break;
        }
    }
    /* Throughput measures this phase only: the handshake waits for the
     * peer to boot. */
    say("net: data phase %lu ms", (unsigned long)tsc_ms_since(data_t0));
    /* Final ACKs and DONE for a peer still waiting on us. */
    for (int i = 0; i < 3; i++) {
        send_ctl(r, r->role == R_TX ? K_DONE : K_ACK, 1);
        uint64_t dl = tsc_deadline(20);
        while (!tsc_passed(dl))
            poll_rx(r);
    }
    if (stalls)
        say("net: window stalled %lu times", (unsigned long)stalls);
}

/* The attacker's control commands: each must be refused (ack 1) and change
 * nothing (both pairs stay in use, which the exchange then relies on).
 * Only what QEMU's device refuses too (probe-virtio-qemu runs this): QEMU
 * accepts a trailing byte and RX-mode commands the driver did not
 * negotiate, herd-vmm refuses those as well. */
static bool ctrl_refusals(struct test_ctx *t, struct vnet *v)
{
    static const struct {
        const char *what;
        uint8_t cmd[6];
        uint32_t len;
    } bad[] = {
        { "VQ_PAIRS_SET 0", { 4, 0, 0, 0 }, 4 },
        { "VQ_PAIRS_SET above the maximum", { 4, 0, 0x40, 0 }, 4 },
        { "VQ_PAIRS_SET 65535", { 4, 0, 0xff, 0xff }, 4 },
        { "VQ_PAIRS_SET with a short argument", { 4, 0, 1 }, 3 },
        { "an unknown MQ command", { 4, 7, 1, 0 }, 4 },
        { "a command of an unknown class", { 0x7f, 0, 1, 0 }, 4 },
    };
    char why[120];
    uint8_t ack;

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!vnet_ctrl(v, bad[i].cmd, bad[i].len, &ack, why, sizeof(why))) {
            fail(t, "control queue, %s: %s", bad[i].what, why);
            return false;
        }
        if (ack != 1) {
            fail(t, "control queue accepted %s (ack %u)", bad[i].what, ack);
            return false;
        }
    }
    say("net: 2 queue pairs in use; %u hostile control commands refused",
        (unsigned)(sizeof(bad) / sizeof(bad[0])));
    return true;
}

void test_net(struct test_ctx *t)
{
    struct netrun *r = &nr;
    memset(r, 0, sizeof(*r));
    r->t = t;
    const char *cl = t->bi->cmdline;
    uint64_t dev, queues, delay;
    uint32_t n;
    const char *role = cmdline_value(cl, "probe.net.role", &n);
    r->role = R_BOTH;
    if (role && streq_n(role, n, "tx"))
        r->role = R_TX;
    else if (role && streq_n(role, n, "rx"))
        r->role = R_RX;
    else if (role && streq_n(role, n, "listen"))
        r->role = R_LISTEN;
    else if (role && !streq_n(role, n, "both")) {
        fail(t, "bad probe.net.role (tx, rx, both, listen)");
        return;
    }
    if (!cmdline_u64(cl, "probe.net.count", 1000, &r->count) || !cmdline_u64(cl, "probe.net.maxloss", 0, &r->maxloss) ||
        !cmdline_u64(cl, "probe.net.wait", 20, &r->wait_s) || !cmdline_u64(cl, "probe.net.dev", 0, &dev) ||
        !cmdline_u64(cl, "probe.net.queues", 1, &queues) || (queues != 1 && queues != 2) ||
        !cmdline_u64(cl, "probe.net.delay", 0, &delay) || delay > 600000 ||
        r->count == 0 || r->count > MAX_COUNT || r->wait_s == 0 || r->wait_s > 3600) {
        fail(t, "bad probe.net.* value");
        return;
    }
    const char *peer = cmdline_value(cl, "probe.net.peer", &n);
    if (peer && !streq_n(peer, n, "broadcast")) {
        if (!parse_mac(peer, n, r->peer)) {
            fail(t, "bad probe.net.peer (aa:bb:cc:dd:ee:ff or broadcast)");
            return;
        }
        r->peer_known = r->peer_fixed = true;
    }
    uint8_t want_mac[6];
    const char *mac = cmdline_value(cl, "probe.net.mac", &n);
    if (mac && !parse_mac(mac, n, want_mac)) {
        fail(t, "bad probe.net.mac");
        return;
    }
    if (!pci_test_setup(t))
        return;
    char why[200];
    if (!vnet_open(&r->n, (uint32_t)dev, (unsigned)queues, why, sizeof(why))) {
        fail(t, "%s", why);
        return;
    }
    struct vnet *v = &r->n;
    const struct pci_dev *p = v->vd.pci;
    say("net: %s %02x:%02x.%u %04x:%04x%s, features 0x%lx of 0x%lx, queues %u/%u%s", pci_method_name(), p->bus,
        p->dev, p->fn, p->vendor, p->device, v->vd.transitional ? " (transitional)" : "",
        (unsigned long)v->vd.negotiated, (unsigned long)v->vd.offered, v->rx.size, v->tx.size,
        v->rx.event_idx ? ", event-idx" : "");
    if (v->pairs == 2 && !ctrl_refusals(t, v))
        return;
    say("net: mac %02x:%02x:%02x:%02x:%02x:%02x, link %s", v->mac[0], v->mac[1], v->mac[2], v->mac[3], v->mac[4],
        v->mac[5], (v->status & VIRTIO_NET_S_LINK_UP) ? "up" : "down");
    if (mac && memcmp(want_mac, v->mac, 6))
        fail(t, "MAC differs from probe.net.mac");
    if (!(v->status & VIRTIO_NET_S_LINK_UP))
        fail(t, "link is down");
    r->seen = dma_alloc(MAX_COUNT / 8, 64);
    if (!r->seen) {
        fail(t, "out of memory for the sequence bitmap");
        goto out;
    }
    if (delay) {
        /* The device is set up and its RX buffers posted: a snapshot taken
         * now carries a NIC in use into the restored guest. */
        say("net: device ready, waiting %lu ms", (unsigned long)delay);
        uint64_t dl = tsc_deadline(delay);
        while (!tsc_passed(dl))
            cpu_relax();
    }
    uint64_t t0 = rdtsc();
    if (r->role == R_LISTEN) {
        uint64_t dl = tsc_deadline(r->wait_s * 1000);
        while (!tsc_passed(dl))
            poll_rx(r);
        say("net: sent 0 received %lu lost 0 (listened %lu s, %lu other frames)", (unsigned long)r->foreign,
            (unsigned long)r->wait_s, (unsigned long)r->other);
        if (r->foreign)
            fail(t, "received %lu herd-probe frames, expected none", (unsigned long)r->foreign);
        goto out;
    }
    exchange(r);
    uint64_t ms = tsc_ms_since(t0);
    uint64_t expected = r->role == R_TX ? 0 : r->peer_count;
    uint64_t lost = r->role == R_TX ? r->count - r->acked : expected - r->received;
    say("net: sent %lu received %lu lost %lu", (unsigned long)r->sent, (unsigned long)r->received,
        (unsigned long)lost);
    say("net: %lu ms, acked %lu, duplicates %lu, other frames %lu, foreign %lu, tx notifies %lu (%lu suppressed), "
        "rx notifies %lu",
        (unsigned long)ms, (unsigned long)r->acked, (unsigned long)r->dups, (unsigned long)r->other,
        (unsigned long)r->foreign, (unsigned long)v->tx.notifies, (unsigned long)v->tx.kicks_suppressed,
        (unsigned long)v->rx.notifies);
    if (r->role != R_RX && r->sent != r->count)
        fail(t, "sent %lu of %lu", (unsigned long)r->sent, (unsigned long)r->count);
    if (r->role != R_TX && !r->peer_count)
        fail(t, "the peer never said how many frames it sends");
    if (lost > r->maxloss)
        fail(t, "lost %lu frames, probe.net.maxloss=%lu", (unsigned long)lost, (unsigned long)r->maxloss);
    if (v->bad_rx)
        fail(t, "%lu bad used entries from the device", (unsigned long)v->bad_rx);
out:
    if (virtio_status(&v->vd) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
        fail(t, "device status 0x%x", virtio_status(&v->vd));
    virtio_reset(&v->vd);
}
