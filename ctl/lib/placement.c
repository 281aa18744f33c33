/* Placement of a range's guests on a cluster's nodes (herd/placement.h):
 * one guest at a time, each to the eligible node with the most room for
 * it, deterministically. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/capacity.h"
#include "herd/placement.h"

static const struct place_cost *cost_of(const struct place_req *q, size_t r, size_t k)
{
    return &q->cost[r * q->n_nodes + k];
}

static unsigned on_node(const struct place_req *q, size_t r, size_t k)
{
    return q->on_node ? q->on_node[r * q->n_nodes + k] : 0;
}

/* The role's node: constraint allows node k. */
static bool node_allowed(const struct place_role *role, const struct place_node *n)
{
    return !role->node || !role->node[0] || !strcmp(role->node, n->name);
}

static bool fits(const struct place_node *n, const struct place_cost *c)
{
    return c->cpus && n->vcpus_free >= (int64_t)c->cpus && n->mem_free >= 0 &&
           (uint64_t)n->mem_free >= c->mem;
}

/* How many more guests of cost c fit on n: the room it has for the shape. */
static uint64_t room(const struct place_node *n, const struct place_cost *c)
{
    uint64_t v = (uint64_t)n->vcpus_free / c->cpus;
    uint64_t m = c->mem ? (uint64_t)n->mem_free / c->mem : UINT64_MAX;
    return v < m ? v : m;
}

/* Is node a a better home than node b for a guest of role r? */
static bool better(const struct place_req *q, size_t r, size_t a, size_t b)
{
    if (q->roles[r].spread && on_node(q, r, a) != on_node(q, r, b))
        return on_node(q, r, a) < on_node(q, r, b);
    uint64_t ra = room(&q->nodes[a], cost_of(q, r, a)), rb = room(&q->nodes[b], cost_of(q, r, b));
    if (ra != rb)
        return ra > rb;
    return strcmp(q->nodes[a].name, q->nodes[b].name) < 0;
}

/* The node for one guest of role r, or -1 when none can take it. */
static long choose(const struct place_req *q, size_t r)
{
    long best = -1;

    for (size_t k = 0; k < q->n_nodes; k++) {
        if (!node_allowed(&q->roles[r], &q->nodes[k]) || !fits(&q->nodes[k], cost_of(q, r, k)))
            continue;
        if (best < 0 || better(q, r, k, (size_t)best))
            best = (long)k;
    }
    return best;
}

static int fail(struct place_err *err, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct place_err *err, int rc, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return rc;
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

/* Appends to buf (bounded; a cut message ends in "...") */
static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;

    if (len + 1 >= size)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= size - len && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

/* Why no node took a guest of role r (guest: its 1-based place among those
 * of this call). */
static int refuse(const struct place_req *q, size_t r, size_t guest, struct place_err *err)
{
    const struct place_role *role = &q->roles[r];
    char field[160], list[700] = "", b1[32], b2[32];
    size_t allowed = 0, with_tmpl = 0, mem_binds = 0;

    for (size_t k = 0; k < q->n_nodes; k++) {
        const struct place_node *n = &q->nodes[k];
        const struct place_cost *c = cost_of(q, r, k);
        if (!node_allowed(role, n))
            continue;
        allowed++;
        if (!c->cpus)
            continue;
        with_tmpl++;
        bool mem = n->mem_free < 0 || (uint64_t)n->mem_free < c->mem;
        mem_binds += mem;
        if (mem)
            add(list, sizeof(list), "%s%s: memory limit %s, %s free", with_tmpl > 1 ? "; " : "",
                n->name, cap_fmt_bytes(b1, sizeof(b1), (uint64_t)n->mem_limit),
                cap_fmt_bytes(b2, sizeof(b2), n->mem_free > 0 ? (uint64_t)n->mem_free : 0));
        else
            add(list, sizeof(list), "%s%s: vcpu limit %" PRId64 ", %" PRId64 " free",
                with_tmpl > 1 ? "; " : "", n->name, n->vcpus_limit,
                n->vcpus_free > 0 ? n->vcpus_free : 0);
    }
    if (!allowed) {
        snprintf(field, sizeof(field), "%s.node", role->field);
        return fail(err, -ENOENT, field, "%s: no node '%s' in the cluster (%zu node%s registered)",
                    field, role->node, q->n_nodes, q->n_nodes == 1 ? "" : "s");
    }
    if (!with_tmpl) {
        snprintf(field, sizeof(field), "%s.template", role->field);
        return fail(err, -ENOENT, field, "%s: no%s node has template '%s'", field,
                    role->node && role->node[0] ? " allowed" : "", role->template_name);
    }
    snprintf(field, sizeof(field), "%s.%s", role->field, mem_binds * 2 >= with_tmpl ? "mem" : "cpus");
    const struct place_cost *c0 = NULL;
    for (size_t k = 0; k < q->n_nodes && !c0; k++)
        if (node_allowed(role, &q->nodes[k]) && cost_of(q, r, k)->cpus)
            c0 = cost_of(q, r, k);
    return fail(err, -ENOSPC, field,
                "%s: guest %zu of this placement (%u vCPU, %s) fits on no node: %s", field, guest,
                c0->cpus, cap_fmt_bytes(b1, sizeof(b1), c0->mem), list);
}

int placement_run(struct place_req *q, size_t *node_of, struct place_err *err)
{
    size_t nn = q->n_nodes, non = q->n_roles * q->n_nodes;
    int rc = 0;

    if (!nn || !q->nodes || !q->cost || (q->n_guests && !node_of))
        return fail(err, -EINVAL, "", "no nodes to place on");
    struct place_node *saved = malloc(nn * sizeof(*saved));
    unsigned *saved_on = q->on_node ? malloc((non ? non : 1) * sizeof(*saved_on)) : NULL;
    if (!saved || (q->on_node && !saved_on)) {
        free(saved);
        free(saved_on);
        return fail(err, -ENOMEM, "", "out of memory (placement)");
    }
    memcpy(saved, q->nodes, nn * sizeof(*saved));
    if (saved_on)
        memcpy(saved_on, q->on_node, non * sizeof(*saved_on));
    for (size_t i = 0; i < q->n_guests && !rc; i++) {
        size_t r = q->guest_role[i];
        if (r >= q->n_roles) {
            rc = fail(err, -EINVAL, "", "guest %zu: role %zu out of range", i, r);
            break;
        }
        long k = choose(q, r);
        if (k < 0) {
            rc = refuse(q, r, i + 1, err);
            break;
        }
        node_of[i] = (size_t)k;
        q->nodes[k].vcpus_free -= cost_of(q, r, (size_t)k)->cpus;
        q->nodes[k].mem_free -= (int64_t)cost_of(q, r, (size_t)k)->mem;
        if (q->on_node)
            q->on_node[r * nn + (size_t)k]++;
    }
    if (rc) {
        memcpy(q->nodes, saved, nn * sizeof(*saved));
        if (saved_on)
            memcpy(q->on_node, saved_on, non * sizeof(*saved_on));
    }
    free(saved);
    free(saved_on);
    return rc;
}
