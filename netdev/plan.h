/* netdev internals: what netdev_setup has to do for one bridge entry, found
 * read-only first (inspect), then done (apply) with an undo log. */
#ifndef NETDEV_PLAN_H
#define NETDEV_PLAN_H

#include <stdbool.h>

#include "nl.h"

struct bridge_plan {
    bool br_create;    /* the bridge does not exist */
    bool br_up;        /* exists but is down */
    bool uplink_attach;
    bool vx_create;
    bool vx_up;
    bool vx_attach;    /* exists but not on this bridge */
    int underlay_ifindex;
};

/* What setup changed, so a failure can put it back. */
struct undo_log {
    char (*created)[IFNAMSIZ]; /* links to delete, in creation order */
    size_t n_created;
    char (*attached)[IFNAMSIZ]; /* existing links enslaved: release them */
    size_t n_attached;
    size_t cap;
};

int undo_init(struct undo_log *u, size_t entries);
void undo_note_created(struct undo_log *u, const char *name);
void undo_note_attached(struct undo_log *u, const char *name);
void undo_rollback(struct netdev_nl *nl, struct undo_log *u);
void undo_free(struct undo_log *u);

int bridge_inspect(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                   struct bridge_plan *plan, struct herd_err *err);
int bridge_apply(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                 const struct bridge_plan *plan, struct undo_log *undo,
                 struct herd_err *err);
int vxlan_inspect(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                  struct bridge_plan *plan, struct herd_err *err);
int vxlan_apply(struct netdev_nl *nl, const struct netdev_bridge_cfg *br,
                const struct bridge_plan *plan, struct undo_log *undo,
                struct herd_err *err);
/* First thing a plan would do, as a message for netdev_check; NULL if none. */
const char *plan_pending(const struct bridge_plan *plan);

#endif
