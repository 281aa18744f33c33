/* ranges_dhcp.c (layer 4): a range's DHCP servers, one per scope (network
 * or segment) whose `networks` entry says `dhcp: true` (docs/ranges.md
 * "DHCP"). What they serve is the range's address plan: a static lease per
 * NIC on the scope, by MAC. dhcp.c runs each server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/range_spec.h"
#include "herdd.h"

/* The scope's bridge on this node (as hd_nic_resolve finds the range's
 * NICs'); "" when its network has no bridge here. */
static void scope_bridge(const struct hd_config *cfg, const char *range,
                         const struct range_subnet *sn, char out[IFNAMSIZ])
{
    enum netdev_role nr = (enum netdev_role)sn->network;
    if (!netdev_config_find(&cfg->net, nr, "") ||
        hd_segment_bridge(cfg, range, nr, sn->segment, out) < 0)
        out[0] = '\0';
}

/* The range that runs a DHCP server on bridge, other than `range`; NULL
 * when none (store lock held). *owner is the caller's to decref. */
static const char *bridge_served(struct hd_store *st, const char *range, const char *bridge,
                                 json_t **owner)
{
    json_t *all = hd_db_ranges(st, NULL);
    size_t i, k;
    json_t *r, *d;
    *owner = NULL;
    json_array_foreach(all, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (!name || !strcmp(name, range))
            continue;
        json_array_foreach(json_object_get(r, "dhcp"), k, d) {
            const char *b = json_string_value(json_object_get(d, "bridge"));
            if (b && !strcmp(b, bridge)) {
                *owner = json_string(name);
                json_decref(all);
                return json_string_value(*owner);
            }
        }
    }
    json_decref(all);
    return NULL;
}

int hd_range_dhcp_check(struct hd_store *st, const char *range, const struct range_spec *spec,
                        struct hd_err *err)
{
    for (size_t i = 0; i < spec->n_subnets; i++) {
        const struct range_subnet *sn = &spec->subnets[i];
        char field[128], bridge[IFNAMSIZ];
        json_t *owner = NULL;
        if (!sn->dhcp)
            continue;
        range_subnet_path(sn, field, sizeof(field));
        strncat(field, ".dhcp", sizeof(field) - strlen(field) - 1);
        if (hd_dhcp_available() < 0)
            return hd_fail(err, 400, field, "%s: herdd's DHCP needs %s (Debian's dnsmasq-base)",
                           field, HD_DNSMASQ);
        scope_bridge(st->cfg, range, sn, bridge);
        if (!bridge[0])
            return hd_fail(err, 400, field, "%s: network '%s' has no bridge on this node", field,
                           range_network_name(sn->network));
        const char *other = bridge_served(st, range, bridge, &owner);
        if (other) {
            hd_fail(err, 409, field, "%s: bridge %s already has range %s's DHCP server", field,
                    bridge, other);
            json_decref(owner);
            return -1;
        }
    }
    return 0;
}

/* guest's NIC k's MAC: its record's when it exists, else the one
 * netdev_mac_assign derives first (vm.c checks collisions on creation;
 * hd_range_dhcp_refresh catches a NIC that got another one). */
static void nic_mac(struct hd_store *st, const char *guest, unsigned k, char out[18])
{
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, guest);
    bool have = vm && k < vm->n_nics && vm->nics[k].mac[0];
    if (have)
        snprintf(out, 18, "%s", vm->nics[k].mac);
    pthread_mutex_unlock(&st->mu);
    uint8_t mac[6];
    if (!have && netdev_mac_assign(guest, k, NULL, NULL, mac) == 0)
        netdev_mac_format(mac, out);
}

/* The static leases of scope sn: "dhcp-host=MAC,IPV4,NAME,infinite" lines
 * (malloc'd). */
static char *scope_hosts(struct hd_store *st, const struct hd_range_plan *p,
                         const struct range_subnet *sn)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t g = 0; g < p->n; g++) {
        const struct range_role *role = p->guests[g].role;
        for (size_t k = 0; role->nics_set && k < role->n_nics; k++) {
            const struct range_nic_addr *na = &p->addrs[g * RANGE_NICS_MAX + k];
            if (!na->set || role->nics[k].network != sn->network ||
                strcmp(role->nics[k].segment, sn->segment))
                continue;
            char mac[18] = "", ip[IPAM_ADDR_STR], line[160];
            nic_mac(st, p->guests[g].name, (unsigned)k, mac);
            ipam_addr_format(&na->v4, ip);
            int n = snprintf(line, sizeof(line), "dhcp-host=%s,%s,%s,infinite\n", mac, ip,
                             p->guests[g].name);
            if (len + (size_t)n + 1 > cap) {
                char *t = realloc(s, cap *= 2);
                if (!t) {
                    free(s);
                    return NULL;
                }
                s = t;
            }
            memcpy(s + len, line, (size_t)n + 1);
            len += (size_t)n;
        }
    }
    return s;
}

/* Starts scope sn's server (none while no NIC of the range is on it: its
 * bridge may not exist yet); its record (with "hosts") into recs. */
static int start_scope(struct hd_store *st, const struct hd_range_plan *p,
                       const struct range_subnet *sn, json_t *recs, struct hd_err *err)
{
    char bridge[IFNAMSIZ];
    scope_bridge(st->cfg, p->name, sn, bridge);
    char *hosts = scope_hosts(st, p, sn);
    if (!hosts)
        return hd_fail(err, 500, "", "out of memory");
    if (!hosts[0]) { /* no NIC of the range on it (yet): no server, no bridge */
        free(hosts);
        return 0;
    }
    struct hd_dhcp_scope sc = {.range = p->name, .bridge = bridge, .net = sn->v4,
                               .server = sn->dhcp_server, .has_gateway = sn->has_gateway,
                               .gateway = sn->gateway, .hosts = hosts};
    json_t *rec = NULL;
    int rc = hd_dhcp_start(st->cfg, &sc, &rec, err);
    if (rc == 0) {
        json_object_set_new(rec, "hosts", json_string(hosts));
        json_array_append_new(recs, rec);
    }
    free(hosts);
    return rc;
}

void hd_range_dhcp_stop(json_t *recs)
{
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec)
        hd_dhcp_stop(rec);
}

json_t *hd_range_dhcp_start(struct hd_store *st, const struct hd_range_plan *p, json_t *old,
                            struct hd_err *err)
{
    hd_range_dhcp_stop(old);
    json_t *recs = json_array();
    for (size_t i = 0; i < p->spec->n_subnets; i++) {
        if (!p->spec->subnets[i].dhcp)
            continue;
        if (start_scope(st, p, &p->spec->subnets[i], recs, err) < 0) {
            hd_range_dhcp_stop(recs);
            json_decref(recs);
            return NULL;
        }
    }
    return recs;
}

/* The subnet of the server in rec (by its bridge). */
static const struct range_subnet *rec_scope(const struct hd_config *cfg,
                                            const struct range_spec *spec, json_t *rec)
{
    const char *b = json_string_value(json_object_get(rec, "bridge"));
    for (size_t i = 0; b && i < spec->n_subnets; i++) {
        char bridge[IFNAMSIZ];
        if (!spec->subnets[i].dhcp)
            continue;
        scope_bridge(cfg, spec->name, &spec->subnets[i], bridge);
        if (!strcmp(bridge, b))
            return &spec->subnets[i];
    }
    return NULL;
}

json_t *hd_range_dhcp_refresh(struct hd_store *st, const struct hd_range_plan *p, json_t *recs)
{
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec) {
        const struct range_subnet *sn = rec_scope(st->cfg, p->spec, rec);
        char *hosts = sn ? scope_hosts(st, p, sn) : NULL;
        const char *had = json_string_value(json_object_get(rec, "hosts"));
        struct hd_err err = {0};
        if (!hosts || (had && !strcmp(had, hosts) && hd_dhcp_running(rec))) {
            json_array_append(out, rec);
        } else {
            hd_dhcp_stop(rec);
            if (start_scope(st, p, sn, out, &err) < 0)
                hd_event(&st->ev, "range.dhcp_failed", p->name,
                         json_pack("{ss ss}", "range", p->name, "error", err.msg));
        }
        free(hosts);
    }
    return out;
}
