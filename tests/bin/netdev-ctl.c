/* netdev-ctl: drives libherd-netdev from tests/integration/netdev-*.sh, the
 * way herdd does: node setup / check / teardown from a JSON configuration,
 * tap cleanup, persistent taps, MAC derivation. Not an installed program.
 *
 *   netdev-ctl setup|check|teardown CONFIG.json
 *   netdev-ctl cleanup-taps [PREFIX]        prints the number removed
 *   netdev-ctl tap-persist ID BRIDGE [QUEUES] creates a persistent tap, exits
 *   netdev-ctl mac IDENTITY NIC             collision-checked guest MAC
 *   netdev-ctl filter-rules|filter-install TAP MAC NIC-JSON
 *                                           the tap's kernel filter (nft text /
 *                                           installed), policy from a NIC item
 *                                           ({"addresses": [...], "rate_limit": ...})
 *   netdev-ctl filter-stats TAP             its counters (JSON)
 *   netdev-ctl filter-remove TAP            deletes it
 *   netdev-ctl filter-cleanup               deletes the filters of taps that are gone
 * Errors: "error: MESSAGE" and "field: FIELD" on stderr, exit status 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/netdev.h"
#include "herd/netdev_kfilter.h"

static int fail(const char *what, int rc, const struct herd_err *err)
{
    if (err && err->msg[0]) {
        fprintf(stderr, "error: %s\n", err->msg);
        fprintf(stderr, "field: %s\n", err->field);
    } else {
        fprintf(stderr, "error: %s: %s\n", what, strerror(-rc));
    }
    return 2;
}

static int cmd_config(struct netdev_nl *nl, const char *cmd, const char *path)
{
    struct netdev_config cfg;
    struct herd_err err;
    int rc = netdev_config_load(path, &cfg, &err);

    if (rc)
        return fail("config", rc, &err);
    if (strcmp(cmd, "setup") == 0)
        rc = netdev_setup(nl, &cfg, &err);
    else if (strcmp(cmd, "check") == 0)
        rc = netdev_check(nl, &cfg, &err);
    else
        rc = netdev_teardown(nl, &cfg, &err);
    netdev_config_free(&cfg);
    if (rc)
        return fail(cmd, rc, &err);
    printf("%s: ok\n", cmd);
    return 0;
}

static int cmd_cleanup(struct netdev_nl *nl, const char *prefix)
{
    unsigned removed = 0;
    int rc = netdev_tap_cleanup(nl, prefix, &removed);

    if (rc)
        return fail("cleanup-taps", rc, NULL);
    printf("%u\n", removed);
    return 0;
}

static int cmd_tap_persist(struct netdev_nl *nl, const char *identity,
                           const char *bridge, unsigned queues)
{
    struct netdev_tap_cfg cfg = {.identity = identity, .bridge = bridge,
                                 .persist = true, .owner = (uid_t)-1,
                                 .vnet_hdr_len = NETDEV_VNET_HDR_LEN,
                                 .queues = queues};
    struct netdev_tap tap;
    struct herd_err err;
    int rc;

    netdev_mac_derive(identity, 0, 0, cfg.guest_mac);
    if ((rc = netdev_tap_create(nl, &cfg, &tap, &err)))
        return fail("tap-persist", rc, &err);
    printf("%s\n", tap.name);
    netdev_tap_close(&tap); /* stays: persistent, nobody attached */
    return 0;
}

static int cmd_mac(struct netdev_nl *nl, const char *identity, const char *nic)
{
    uint8_t mac[6];
    char text[18];
    int rc = netdev_mac_assign(identity, (unsigned)atoi(nic), netdev_mac_seen_on_host,
                               nl, mac);

    if (rc)
        return fail("mac", rc, NULL);
    netdev_mac_format(mac, text);
    printf("%s\n", text);
    return 0;
}

static int cmd_filter(const char *cmd, int argc, char **argv)
{
    struct netdev_kfilter_cfg cfg = {0};
    struct herd_err err;
    json_error_t je;
    json_t *nic, *stats;
    char *rules;
    unsigned n;
    int rc;

    herd_err_clear(&err);
    if (!strcmp(cmd, "filter-cleanup")) {
        if ((rc = netdev_kfilter_cleanup(&n)))
            return fail(cmd, rc, NULL);
        printf("%u\n", n);
        return 0;
    }
    if (argc < 3)
        return 64;
    snprintf(cfg.tap, sizeof(cfg.tap), "%s", argv[2]);
    if (!strcmp(cmd, "filter-remove"))
        return (rc = netdev_kfilter_remove(cfg.tap)) ? fail(cmd, rc, NULL) : 0;
    if (!strcmp(cmd, "filter-stats")) {
        if ((rc = netdev_kfilter_stats(cfg.tap, &stats)))
            return fail(cmd, rc, NULL);
        json_dumpf(stats, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("\n");
        json_decref(stats);
        return 0;
    }
    if (argc != 5 || netdev_mac_parse(argv[3], cfg.mac))
        return 64;
    if (!(nic = json_loads(argv[4], JSON_DECODE_ANY, &je)))
        return fail(cmd, -EINVAL, NULL);
    rc = netdev_kfilter_parse_nic(nic, "nic", &cfg, &err);
    json_decref(nic);
    if (rc)
        return fail(cmd, rc, &err);
    if (!strcmp(cmd, "filter-rules")) {
        if ((rc = netdev_kfilter_rules(&cfg, &rules)))
            return fail(cmd, rc, NULL);
        fputs(rules, stdout);
        free(rules);
        return 0;
    }
    if ((rc = netdev_kfilter_install(&cfg, &err)))
        return fail(cmd, rc, &err);
    return 0;
}

int main(int argc, char **argv)
{
    struct netdev_nl *nl;
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc;

    if ((rc = netdev_nl_open(&nl)))
        return fail("netlink", rc, NULL);
    if (argc == 3 && (!strcmp(cmd, "setup") || !strcmp(cmd, "check") ||
                      !strcmp(cmd, "teardown")))
        rc = cmd_config(nl, cmd, argv[2]);
    else if ((argc == 2 || argc == 3) && !strcmp(cmd, "cleanup-taps"))
        rc = cmd_cleanup(nl, argc == 3 ? argv[2] : NULL);
    else if ((argc == 4 || argc == 5) && !strcmp(cmd, "tap-persist"))
        rc = cmd_tap_persist(nl, argv[2], argv[3],
                             argc == 5 ? (unsigned)atoi(argv[4]) : 1);
    else if (argc == 4 && !strcmp(cmd, "mac"))
        rc = cmd_mac(nl, argv[2], argv[3]);
    else if (!strncmp(cmd, "filter-", 7) && (rc = cmd_filter(cmd, argc, argv)) != 64)
        ;
    else {
        fprintf(stderr, "usage: netdev-ctl setup|check|teardown CONFIG | "
                        "cleanup-taps [PREFIX] | tap-persist ID BRIDGE [QUEUES] | mac ID NIC | "
                        "filter-rules|filter-install TAP MAC NIC-JSON | "
                        "filter-stats|filter-remove TAP | filter-cleanup\n");
        rc = 64;
    }
    netdev_nl_close(nl);
    return rc;
}
