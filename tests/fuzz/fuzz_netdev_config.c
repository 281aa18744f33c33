/*
 * libFuzzer target: the node's network configuration (netdev_config_parse_json,
 * which also runs netdev_config_validate) with arbitrary text.
 *
 * Contract checked beyond "no sanitizer report": a refusal carries a message
 * and leaves an empty configuration; an accepted configuration has
 * NUL-terminated names that are valid interface names, role_bridge indexes
 * that point at role bridges, segments findable with netdev_config_find, and
 * validates again (validation is idempotent).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/netdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_netdev_config: contract broken: %s: ", #cond);    \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void check_accepted(struct netdev_config *cfg)
{
    struct herd_err err;

    for (int r = 0; r < NETDEV_ROLE_COUNT; r++) {
        int i = cfg->role_bridge[r];
        if (i < 0)
            continue;
        FUZZ_ASSERT((size_t)i < cfg->n_bridges, "role_bridge[%d] = %d of %zu", r, i,
                    cfg->n_bridges);
        FUZZ_ASSERT(cfg->bridges[i].role == (enum netdev_role)r &&
                        cfg->bridges[i].segment[0] == 0,
                    "role_bridge[%d] is not that role's bridge", r);
    }
    for (size_t i = 0; i < cfg->n_bridges; i++) {
        const struct netdev_bridge_cfg *b = &cfg->bridges[i];
        FUZZ_ASSERT(memchr(b->name, 0, sizeof(b->name)) && memchr(b->segment, 0, sizeof(b->segment)) &&
                        memchr(b->uplink, 0, sizeof(b->uplink)) &&
                        memchr(b->field, 0, sizeof(b->field)),
                    "bridge %zu: unterminated string", i);
        FUZZ_ASSERT(netdev_name_check(b->name) == 0, "bridge %zu: name '%s' accepted", i,
                    b->name);
        FUZZ_ASSERT((unsigned)b->role < NETDEV_ROLE_COUNT, "bridge %zu: role %d", i, b->role);
        FUZZ_ASSERT(b->mtu >= NETDEV_MTU_MIN && b->mtu <= NETDEV_MTU_MAX, "bridge %zu: mtu %u",
                    i, b->mtu);
        if (b->vxlan.enabled) {
            FUZZ_ASSERT(b->vxlan.vni && b->vxlan.vni <= NETDEV_VNI_MAX, "bridge %zu: vni %u", i,
                        b->vxlan.vni);
            FUZZ_ASSERT(netdev_name_check(b->vxlan.name) == 0, "bridge %zu: vxlan name '%s'",
                        i, b->vxlan.name);
        }
        FUZZ_ASSERT(netdev_config_find(cfg, b->role, b->segment[0] ? b->segment : NULL) == b,
                    "bridge %zu not found by role and segment", i);
    }
    FUZZ_ASSERT(netdev_config_validate(cfg, &err) == 0, "validates once, not twice: %s: %s",
                err.field, err.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netdev_config cfg;
    struct herd_err err;
    char *text = malloc(size + 1);
    int rc;

    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = 0;

    rc = netdev_config_parse_json(text, &cfg, &err);
    if (rc) {
        FUZZ_ASSERT(rc < 0 && err.msg[0], "refused (%d) without a message", rc);
        FUZZ_ASSERT(memchr(err.msg, 0, sizeof(err.msg)) && memchr(err.field, 0, sizeof(err.field)),
                    "unterminated error");
        FUZZ_ASSERT(cfg.bridges == NULL && cfg.n_bridges == 0, "refused config not emptied");
    } else {
        check_accepted(&cfg);
    }
    netdev_config_free(&cfg);
    free(text);
    return 0;
}
