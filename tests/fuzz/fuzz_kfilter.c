/*
 * libFuzzer target: a NIC item of the API (JSON text) through the kernel
 * filter's policy parser and rule generator (netdev_kfilter_parse_nic,
 * netdev_kfilter_rules). The rules become nft input run as root, so
 * nothing from the request may reach them as text.
 *
 * Contract checked beyond "no sanitizer report": a refusal carries a field
 * and a message; an accepted item generates a table for the fixed tap
 * whose text holds no character outside the generator's own alphabet (no
 * quote but the device name's two, no ';' '#' '$' or control character
 * but tab and newline), braces balance, and addresses come back in the
 * canonical forms inet_ntop gives.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/netdev_kfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_kfilter: contract broken: %s: ", #cond);          \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void check_rules(const char *r)
{
    static const char head[] = "table netdev herd-ht-fz-0 {\n";
    int depth = 0, quotes = 0;

    FUZZ_ASSERT(!strncmp(r, head, sizeof(head) - 1), "starts with %.40s", r);
    for (const char *c = r; *c; c++) {
        unsigned char u = (unsigned char)*c;
        FUZZ_ASSERT(u == '\t' || u == '\n' || (u >= 0x20 && u < 0x7f), "byte %#x", u);
        FUZZ_ASSERT(u != ';' || (c - r >= 15 && (!strncmp(c - 15, "priority filter", 15) ||
                                                  !strncmp(c - 13, "policy accept", 13))),
                    "';' at %zu", (size_t)(c - r));
        FUZZ_ASSERT(u != '#' && u != '$', "'%c' at %zu", u, (size_t)(c - r));
        quotes += u == '"';
        depth += u == '{';
        depth -= u == '}';
        FUZZ_ASSERT(depth >= 0, "unbalanced at %zu", (size_t)(c - r));
    }
    FUZZ_ASSERT(depth == 0, "depth %d at the end", depth);
    FUZZ_ASSERT(quotes == 2, "%d quotes", quotes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netdev_kfilter_cfg cfg = {.tap = "ht-fz-0",
                                     .mac = {0x0e, 0x11, 0x22, 0x33, 0x44, 0x55}};
    struct herd_err err;
    json_error_t je;
    json_t *nic = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
    char *rules = NULL;
    int rc;

    if (!nic)
        return 0;
    herd_err_clear(&err);
    rc = netdev_kfilter_parse_nic(nic, "nics[0]", &cfg, &err);
    json_decref(nic);
    if (rc) {
        FUZZ_ASSERT(rc == -EINVAL, "rc %d", rc);
        FUZZ_ASSERT(err.field[0] && err.msg[0], "refusal without field/message");
        return 0;
    }
    FUZZ_ASSERT(cfg.n_addrs <= NETDEV_KF_MAX_ADDRS, "%u addresses", cfg.n_addrs);
    rc = netdev_kfilter_rules(&cfg, &rules);
    FUZZ_ASSERT(rc == 0 && rules, "an accepted item generates no rules: %d", rc);
    check_rules(rules);
    free(rules);
    return 0;
}
