/* Node setup, check and teardown: inspect everything first, then apply with
 * an undo log, so a failure leaves the host as it was. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/route/link.h>

#include "plan.h"

/* ---- undo log ------------------------------------------------------------ */

int undo_init(struct undo_log *u, size_t entries)
{
    memset(u, 0, sizeof(*u));
    u->cap = entries;
    u->created = calloc(entries, IFNAMSIZ);
    u->attached = calloc(entries, IFNAMSIZ);
    if (!u->created || !u->attached) {
        undo_free(u);
        return -ENOMEM;
    }
    return 0;
}

void undo_note_created(struct undo_log *u, const char *name)
{
    if (u && u->n_created < u->cap)
        snprintf(u->created[u->n_created++], IFNAMSIZ, "%s", name);
}

void undo_note_attached(struct undo_log *u, const char *name)
{
    if (u && u->n_attached < u->cap)
        snprintf(u->attached[u->n_attached++], IFNAMSIZ, "%s", name);
}

void undo_rollback(struct netdev_nl *nl, struct undo_log *u)
{
    struct rtnl_link *link;

    while (u->n_attached > 0) {
        const char *name = u->attached[--u->n_attached];
        if (!netdev_link_get(nl, name, &link)) {
            netdev_link_set_master(nl, link, 0);
            rtnl_link_put(link);
        }
    }
    while (u->n_created > 0)
        netdev_link_delete(nl, u->created[--u->n_created]);
}

void undo_free(struct undo_log *u)
{
    free(u->created);
    free(u->attached);
    memset(u, 0, sizeof(*u));
}

/* ---- plans ---------------------------------------------------------------- */

const char *plan_pending(const struct bridge_plan *p)
{
    if (p->br_create)
        return "the bridge does not exist";
    if (p->br_up)
        return "the bridge is down";
    if (p->uplink_attach)
        return "the uplink is not a port of the bridge";
    if (p->vx_create)
        return "the VXLAN device does not exist";
    if (p->vx_attach)
        return "the VXLAN device is not a port of the bridge";
    if (p->vx_up)
        return "the VXLAN device is down";
    return NULL;
}

static int plan_one(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                    struct bridge_plan *plan, struct herd_err *err)
{
    int rc = bridge_inspect(nl, br, plan, err);

    return rc ? rc : vxlan_inspect(nl, br, plan, err);
}

static int apply_one(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                     const struct bridge_plan *plan, struct undo_log *undo,
                     struct herd_err *err)
{
    int rc = bridge_apply(nl, br, plan, undo, err);

    return rc ? rc : vxlan_apply(nl, br, plan, undo, err);
}

static int setup_bridges(struct netdev_nl *nl, const struct netdev_bridge_cfg *brs,
                         size_t n, struct herd_err *err)
{
    struct bridge_plan *plans = calloc(n ? n : 1, sizeof(*plans));
    struct undo_log undo;
    int rc = plans ? undo_init(&undo, 2 * n + 1) : -ENOMEM;

    if (rc) {
        free(plans);
        return herd_err_set(err, rc, "", "out of memory");
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = plan_one(nl, &brs[i], &plans[i], err);
    for (size_t i = 0; i < n && !rc; i++)
        rc = apply_one(nl, &brs[i], &plans[i], &undo, err);
    if (rc)
        undo_rollback(nl, &undo);
    undo_free(&undo);
    free(plans);
    return rc;
}

static int check_bridges(struct netdev_nl *nl, const struct netdev_bridge_cfg *brs,
                         size_t n, struct herd_err *err)
{
    struct bridge_plan plan;
    const char *pending;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if ((rc = plan_one(nl, &brs[i], &plan, err)))
            return rc;
        if ((pending = plan_pending(&plan)))
            return herd_err_set(err, -ENOENT, brs[i].field, "%s: '%s': %s",
                                brs[i].field, brs[i].name, pending);
    }
    return 0;
}

/* Deletes name if netdev made it; leaves anything else alone. */
static int teardown_link(struct netdev_nl *nl, const char *name, const char *field,
                         struct herd_err *err)
{
    struct rtnl_link *link;
    bool owned;
    int rc = netdev_link_get(nl, name, &link);

    if (rc == -ENODEV)
        return 0;
    if (rc)
        return herd_err_set(err, rc, field, "%s: cannot read '%s': %s", field, name,
                            strerror(-rc));
    owned = netdev_link_is_owned(link);
    rtnl_link_put(link);
    if (owned && (rc = netdev_link_delete(nl, name)))
        return herd_err_set(err, rc, field, "%s: deleting '%s': %s", field, name,
                            strerror(-rc));
    return 0;
}

int netdev_bridge_teardown(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                           struct herd_err *err)
{
    int rc = 0;

    if (br->vxlan.enabled)
        rc = teardown_link(nl, br->vxlan.name, br->field, err);
    return rc ? rc : teardown_link(nl, br->name, br->field, err);
}

int netdev_bridge_setup(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                        struct herd_err *err)
{
    herd_err_clear(err);
    return setup_bridges(nl, br, 1, err);
}

int netdev_bridge_check(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                        struct herd_err *err)
{
    herd_err_clear(err);
    return check_bridges(nl, br, 1, err);
}

int netdev_setup(struct netdev_nl *nl, const struct netdev_config *cfg,
                 struct herd_err *err)
{
    herd_err_clear(err);
    return setup_bridges(nl, cfg->bridges, cfg->n_bridges, err);
}

int netdev_check(struct netdev_nl *nl, const struct netdev_config *cfg,
                 struct herd_err *err)
{
    herd_err_clear(err);
    return check_bridges(nl, cfg->bridges, cfg->n_bridges, err);
}

int netdev_teardown(struct netdev_nl *nl, const struct netdev_config *cfg,
                    struct herd_err *err)
{
    int rc, first = 0;

    herd_err_clear(err);
    /* Segments before their roles; keep going so one failure leaves less. */
    for (size_t i = cfg->n_bridges; i-- > 0;) {
        rc = netdev_bridge_teardown(nl, &cfg->bridges[i], first ? NULL : err);
        if (rc && !first)
            first = rc;
    }
    return first;
}
