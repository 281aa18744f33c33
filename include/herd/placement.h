/*
 * placement: which node of a cluster each guest of a range goes to
 * (docs/cluster.md "Placement"). Pure and deterministic: the same nodes,
 * roles and guests give the same answer on any node, in any process.
 *
 * The caller describes the nodes (name, admission limits and what is free
 * of them once every guest already assigned there is counted), the roles
 * (their constraints) and, per role and node, what one guest of the role
 * costs there (its template's cpus and memory on that node; cpus 0: the
 * node does not have the template). Guests are placed one at a time in the
 * order given (the range's expansion order). Each goes to an eligible node:
 *   - the role's `node:` when it names one (only that node);
 *   - a node that has the role's template;
 *   - a node where the guest's vCPUs and memory still fit;
 * and among those, for a role with `spread: true`, to the node holding the
 * fewest guests of that role; then to the node where the most more guests
 * of its shape fit (min of free vCPUs / cpus and free memory / mem: the
 * most free capacity for it); then the node whose name sorts first.
 *
 * A guest no node can take refuses the whole placement (nothing is placed):
 *   -ENOENT  the role's node: names no node of the cluster (field
 *            "<role>.node"), or no node has its template ("<role>.template")
 *   -ENOSPC  every candidate node is full: the field is "<role>.mem" or
 *            "<role>.cpus" (the limit that binds on most of them) and the
 *            message names each candidate node with its limit and what is
 *            free of it.
 *   -EINVAL  bad arguments (no nodes, a guest's role out of range).
 */
#ifndef HERD_PLACEMENT_H
#define HERD_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLACE_NODE_NAME_MAX 63

struct place_node {
    char name[PLACE_NODE_NAME_MAX + 1];
    int64_t vcpus_limit, mem_limit;  /* the node's admission limits */
    int64_t vcpus_free, mem_free;    /* what is left (may be negative: over) */
};

struct place_role {
    const char *field;   /* "scenarios[0].roles[1]", for messages */
    const char *template_name;
    const char *node;    /* "" or NULL: any node */
    bool spread;
};

/* One guest of role r on node k costs cost[r * n_nodes + k]. */
struct place_cost {
    unsigned cpus;       /* 0: node k does not have the role's template */
    uint64_t mem;        /* bytes the node commits for it (memory + overhead) */
};

struct place_req {
    struct place_node *nodes;  /* sorted or not; updated: free minus what is placed */
    size_t n_nodes;
    const struct place_role *roles;
    size_t n_roles;
    const struct place_cost *cost;
    /* guests of role r already on node k (spread counts them): n_roles *
     * n_nodes entries, updated; NULL: none */
    unsigned *on_node;
    const size_t *guest_role;  /* the role of each guest to place */
    size_t n_guests;
};

struct place_err {
    char field[160];
    char msg[1024];
};

/* node_of[i]: the index (into req->nodes) of guest i's node. 0, or a
 * negative errno (above) with err filled and req's nodes and on_node as
 * they were. */
int placement_run(struct place_req *req, size_t *node_of, struct place_err *err);

#endif
