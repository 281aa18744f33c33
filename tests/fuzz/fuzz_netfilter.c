/*
 * libFuzzer target: the anti-spoofing filter of the userspace packet path
 * (netfilter_tx / netfilter_rx) and the per-NIC hook around it (netpath_tx /
 * netpath_rx), with arbitrary frames.
 *
 * Input layout:
 *   byte 0      flags: bit 0 promiscuous, bit 1 restrict to the allowed set
 *               even when empty, bits 4-7 number of allowed addresses
 *   bytes 1-6   the NIC's MAC
 *   then        per allowed address: 1 byte kind (bit 0: IPv6) and 4 or 16
 *               bytes of address (given as text to netfilter_allow_ip)
 *   the rest    the frame
 *
 * Contract checked beyond "no sanitizer report": verdicts are in range and
 * named; a transmitted frame that passes carries the NIC's MAC as source; a
 * received frame that passes without promiscuous mode is for the NIC's MAC or
 * multicast/broadcast; netpath agrees with netfilter (no rate limit set).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/netfilter.h"
#include "herd/netpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_netfilter: contract broken: %s: ", #cond);        \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netfilter f;
    struct netpath p;
    size_t off = 7;
    uint64_t wait;

    if (size < 7)
        return 0;
    netfilter_init(&f, data + 1);
    f.promisc = data[0] & 1;
    if (data[0] & 2)
        f.restrict_ip = true;
    for (unsigned n = data[0] >> 4; n && off < size; n--) {
        int v6 = data[off++] & 1;
        size_t alen = v6 ? 16 : 4;
        char text[INET6_ADDRSTRLEN];

        if (size - off < alen)
            break;
        if (!inet_ntop(v6 ? AF_INET6 : AF_INET, data + off, text, sizeof(text)))
            abort();
        off += alen;
        int rc = netfilter_allow_ip(&f, text);
        FUZZ_ASSERT(rc == 0 || rc == -ENOSPC, "allow_ip(%s) = %d", text, rc);
        FUZZ_ASSERT(f.restrict_ip, "allow_ip(%s) left restrict_ip off", text);
    }
    FUZZ_ASSERT(netfilter_allow_ip(&(struct netfilter){0}, "not an address") == -EINVAL,
                "bad address text accepted");

    /* The frame in a buffer of its own exact size, so ASan sees any overread. */
    size_t len = size - off;
    uint8_t *frame = malloc(len ? len : 1);
    if (!frame)
        abort();
    memcpy(frame, data + off, len);

    enum netfilter_verdict tx = netfilter_tx(&f, frame, len);
    enum netfilter_verdict rx = netfilter_rx(&f, frame, len);
    FUZZ_ASSERT((unsigned)tx < NETFILTER_VERDICT_COUNT && (unsigned)rx < NETFILTER_VERDICT_COUNT,
                "verdicts %d %d", tx, rx);
    FUZZ_ASSERT(strcmp(netfilter_verdict_name(tx), "?") && strcmp(netfilter_verdict_name(rx), "?"),
                "unnamed verdict");
    if (tx == NETFILTER_PASS)
        FUZZ_ASSERT(len >= 14 && memcmp(frame + 6, f.mac, 6) == 0,
                    "tx passed a frame of %zu bytes not from the NIC's MAC", len);
    if (rx == NETFILTER_PASS && !f.promisc)
        FUZZ_ASSERT(len >= 14 && ((frame[0] & 1) || memcmp(frame, f.mac, 6) == 0),
                    "rx passed a frame of %zu bytes for another MAC", len);

    netpath_init(&p, data + 1, 1000);
    p.filter = f;
    enum netpath_result ptx = netpath_tx(&p, frame, len, 2000, &wait);
    enum netpath_result prx = netpath_rx(&p, frame, len, 3000, &wait);
    FUZZ_ASSERT(ptx == (tx == NETFILTER_PASS ? NETPATH_PASS : NETPATH_DROP),
                "netpath_tx %d, netfilter_tx %d", ptx, tx);
    FUZZ_ASSERT(prx == (rx == NETFILTER_PASS ? NETPATH_PASS : NETPATH_DROP),
                "netpath_rx %d, netfilter_rx %d", prx, rx);

    free(frame);
    return 0;
}
