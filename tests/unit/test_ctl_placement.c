/* Unit tests: herd/placement.h (a range's guests on a cluster's nodes). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "herd/placement.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define NODES_MAX 8
#define ROLES_MAX 4
#define GUESTS_MAX 64

/* A small cluster: nodes, roles, costs, guests; rebuilt by each test. */
struct fx {
    struct place_node nodes[NODES_MAX];
    struct place_role roles[ROLES_MAX];
    struct place_cost cost[ROLES_MAX * NODES_MAX];
    unsigned on[ROLES_MAX * NODES_MAX];
    size_t guest_role[GUESTS_MAX];
    size_t node_of[GUESTS_MAX];
    struct place_req q;
    struct place_err err;
};

static void fx_node(struct fx *f, const char *name, int64_t vcpus, int64_t mem)
{
    struct place_node *n = &f->nodes[f->q.n_nodes++];
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->vcpus_limit = n->vcpus_free = vcpus;
    n->mem_limit = n->mem_free = mem;
}

/* A role of template "probe" (its costs: fx_cost). */
static size_t fx_role(struct fx *f, const char *field, const char *node, bool spread)
{
    size_t r = f->q.n_roles++;
    f->roles[r] = (struct place_role){field, "probe", node, spread};
    return r;
}

static void fx_cost(struct fx *f, size_t r, size_t k, unsigned cpus, uint64_t mem)
{
    f->cost[r * f->q.n_nodes + k] = (struct place_cost){cpus, mem};
}

static void fx_cost_all(struct fx *f, size_t r, unsigned cpus, uint64_t mem)
{
    for (size_t k = 0; k < f->q.n_nodes; k++)
        fx_cost(f, r, k, cpus, mem);
}

static void fx_guests(struct fx *f, size_t r, size_t count)
{
    for (size_t i = 0; i < count; i++)
        f->guest_role[f->q.n_guests++] = r;
}

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    f->q.nodes = f->nodes;
    f->q.roles = f->roles;
    f->q.cost = f->cost;
    f->q.on_node = f->on;
    f->q.guest_role = f->guest_role;
}

static int fx_run(struct fx *f)
{
    memset(&f->err, 0, sizeof(f->err));
    return placement_run(&f->q, f->node_of, &f->err);
}

static size_t count_on(const struct fx *f, size_t k)
{
    size_t n = 0;
    for (size_t i = 0; i < f->q.n_guests; i++)
        n += f->node_of[i] == k;
    return n;
}

/* Equal nodes: guests alternate, ties going to the name that sorts first. */
static void test_equal_nodes_balance(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "n2", 8, 8 * GiB);
    fx_node(&f, "n1", 8, 8 * GiB);
    fx_node(&f, "n3", 8, 8 * GiB);
    size_t r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&f, r, 1, 64 * MiB);
    fx_guests(&f, r, 6);
    assert_int_equal(fx_run(&f), 0);
    /* n1 (index 1) first, then n2 (0), then n3 (2), and round again */
    size_t want[6] = {1, 0, 2, 1, 0, 2};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(f.node_of[i], want[i]);
    assert_int_equal(f.nodes[1].vcpus_free, 6);
    assert_int_equal(f.nodes[1].mem_free, (int64_t)(8 * GiB - 128 * MiB));
}

/* Unequal nodes: each guest to the most room, so a bigger node takes more,
 * and the same input gives the same answer. */
static void test_by_capacity(void **state)
{
    (void)state;
    struct fx f, g;
    fx_init(&f);
    fx_node(&f, "n1", 4, 64 * GiB);
    fx_node(&f, "n2", 8, 64 * GiB);
    fx_node(&f, "n3", 12, 64 * GiB);
    size_t r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&f, r, 1, 64 * MiB);
    fx_guests(&f, r, 12);
    g = f;
    g.q.nodes = g.nodes, g.q.roles = g.roles, g.q.cost = g.cost, g.q.on_node = g.on;
    g.q.guest_role = g.guest_role;
    assert_int_equal(fx_run(&f), 0);
    /* vCPUs bind: 4/8/12 free; most room first: ends 4 free on each */
    assert_int_equal(count_on(&f, 0), 0);
    assert_int_equal(count_on(&f, 1), 4);
    assert_int_equal(count_on(&f, 2), 8);
    assert_int_equal(fx_run(&g), 0);
    assert_memory_equal(f.node_of, g.node_of, 12 * sizeof(size_t));
    /* 8 more: every node has 4 left, so 3+3+2, n1 and n2 first on ties */
    fx_init(&g);
    memcpy(g.nodes, f.nodes, sizeof(f.nodes));
    g.q.n_nodes = 3;
    r = fx_role(&g, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&g, r, 1, 64 * MiB);
    fx_guests(&g, r, 8);
    assert_int_equal(fx_run(&g), 0);
    assert_int_equal(count_on(&g, 0), 3);
    assert_int_equal(count_on(&g, 1), 3);
    assert_int_equal(count_on(&g, 2), 2);
    assert_int_equal(g.nodes[2].vcpus_free, 2);
}

/* Memory binds where it is scarcer than vCPUs. */
static void test_memory_binds(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "a", 100, 1 * GiB);
    fx_node(&f, "b", 2, 64 * GiB);
    size_t r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&f, r, 1, 512 * MiB);
    fx_guests(&f, r, 4);
    assert_int_equal(fx_run(&f), 0);
    assert_int_equal(count_on(&f, 0), 2);
    assert_int_equal(count_on(&f, 1), 2);
    /* a fifth does not fit: memory on a, vCPUs on b */
    fx_init(&f);
    fx_node(&f, "a", 100, 1 * GiB);
    fx_node(&f, "b", 2, 64 * GiB);
    r = fx_role(&f, "scenarios[0].roles[2]", NULL, false);
    fx_cost_all(&f, r, 1, 512 * MiB);
    fx_guests(&f, r, 5);
    assert_int_equal(fx_run(&f), -ENOSPC);
    assert_string_equal(f.err.field, "scenarios[0].roles[2].mem");
    assert_non_null(strstr(f.err.msg, "guest 5 of this placement"));
    assert_non_null(strstr(f.err.msg, "a: memory limit 1.0 GiB"));
    assert_non_null(strstr(f.err.msg, "b: vcpu limit 2, 0 free"));
    /* nothing changed on failure */
    assert_int_equal(f.nodes[0].mem_free, (int64_t)GiB);
    assert_int_equal(f.nodes[1].vcpus_free, 2);
    assert_int_equal(f.on[0] + f.on[1], 0);
}

/* A guest bigger than any node: refused, naming the field and each limit. */
static void test_too_big(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "n1", 8, 2 * GiB);
    fx_node(&f, "n2", 8, 3 * GiB);
    size_t r = fx_role(&f, "scenarios[1].roles[0]", NULL, false);
    fx_cost_all(&f, r, 1, 64 * GiB);
    fx_guests(&f, r, 1);
    assert_int_equal(fx_run(&f), -ENOSPC);
    assert_string_equal(f.err.field, "scenarios[1].roles[0].mem");
    assert_non_null(strstr(f.err.msg, "scenarios[1].roles[0].mem: guest 1"));
    assert_non_null(strstr(f.err.msg, "n1: memory limit 2.0 GiB, 2.0 GiB free"));
    assert_non_null(strstr(f.err.msg, "n2: memory limit 3.0 GiB"));
    /* too many vCPUs */
    fx_init(&f);
    fx_node(&f, "n1", 4, 64 * GiB);
    r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&f, r, 16, 64 * MiB);
    fx_guests(&f, r, 1);
    assert_int_equal(fx_run(&f), -ENOSPC);
    assert_string_equal(f.err.field, "scenarios[0].roles[0].cpus");
    assert_non_null(strstr(f.err.msg, "n1: vcpu limit 4, 4 free"));
}

/* node: every guest of the role there; unknown node refused. */
static void test_node_constraint(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "n1", 64, 64 * GiB);
    fx_node(&f, "n2", 4, 64 * GiB);
    size_t a = fx_role(&f, "scenarios[0].roles[0]", "n2", false);
    size_t b = fx_role(&f, "scenarios[0].roles[1]", "", false);
    fx_cost_all(&f, a, 1, 64 * MiB);
    fx_cost_all(&f, b, 1, 64 * MiB);
    fx_guests(&f, a, 3);
    fx_guests(&f, b, 2);
    assert_int_equal(fx_run(&f), 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(f.node_of[i], 1);
    assert_int_equal(f.node_of[3], 0);
    assert_int_equal(f.node_of[4], 0);
    /* n2 full: the role's node constraint is not relaxed */
    fx_init(&f);
    fx_node(&f, "n1", 64, 64 * GiB);
    fx_node(&f, "n2", 4, 64 * GiB);
    a = fx_role(&f, "scenarios[0].roles[0]", "n2", false);
    fx_cost_all(&f, a, 1, 64 * MiB);
    fx_guests(&f, a, 5);
    assert_int_equal(fx_run(&f), -ENOSPC);
    assert_string_equal(f.err.field, "scenarios[0].roles[0].cpus");
    assert_null(strstr(f.err.msg, "n1:"));
    assert_non_null(strstr(f.err.msg, "n2: vcpu limit 4, 0 free"));
    /* an unknown node */
    fx_init(&f);
    fx_node(&f, "n1", 64, 64 * GiB);
    a = fx_role(&f, "scenarios[0].roles[3]", "n9", false);
    fx_cost_all(&f, a, 1, 64 * MiB);
    fx_guests(&f, a, 1);
    assert_int_equal(fx_run(&f), -ENOENT);
    assert_string_equal(f.err.field, "scenarios[0].roles[3].node");
    assert_non_null(strstr(f.err.msg, "no node 'n9' in the cluster (1 node registered)"));
}

/* A template on some nodes only; on none. */
static void test_templates(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "n1", 64, 64 * GiB);
    fx_node(&f, "n2", 64, 64 * GiB);
    size_t r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost(&f, r, 1, 1, 64 * MiB); /* only n2 has it */
    fx_guests(&f, r, 3);
    assert_int_equal(fx_run(&f), 0);
    assert_int_equal(count_on(&f, 1), 3);
    fx_init(&f);
    fx_node(&f, "n1", 64, 64 * GiB);
    r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_guests(&f, r, 1);
    assert_int_equal(fx_run(&f), -ENOENT);
    assert_string_equal(f.err.field, "scenarios[0].roles[0].template");
    assert_non_null(strstr(f.err.msg, "no node has template 'probe'"));
}

/* spread: the fewest of the role first, even onto a smaller node; guests
 * already there count. */
static void test_spread(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "big", 64, 64 * GiB);
    fx_node(&f, "small", 4, 64 * GiB);
    size_t s = fx_role(&f, "scenarios[0].roles[0]", NULL, true);
    size_t p = fx_role(&f, "scenarios[0].roles[1]", NULL, false);
    fx_cost_all(&f, s, 1, 64 * MiB);
    fx_cost_all(&f, p, 1, 64 * MiB);
    fx_guests(&f, s, 4);
    fx_guests(&f, p, 2);
    assert_int_equal(fx_run(&f), 0);
    size_t want[6] = {0, 1, 0, 1, 0, 0};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(f.node_of[i], want[i]);
    assert_int_equal(f.on[s * 2 + 0], 2);
    assert_int_equal(f.on[s * 2 + 1], 2);
    /* one already on small: the next two go to big first */
    fx_init(&f);
    fx_node(&f, "big", 64, 64 * GiB);
    fx_node(&f, "small", 4, 64 * GiB);
    s = fx_role(&f, "scenarios[0].roles[0]", NULL, true);
    fx_cost_all(&f, s, 1, 64 * MiB);
    f.on[s * 2 + 1] = 1;
    fx_guests(&f, s, 2);
    assert_int_equal(fx_run(&f), 0);
    assert_int_equal(f.node_of[0], 0);
    assert_int_equal(f.node_of[1], 0);
    /* spread over a full node moves on to the others */
    fx_init(&f);
    fx_node(&f, "a", 1, 64 * GiB);
    fx_node(&f, "b", 8, 64 * GiB);
    s = fx_role(&f, "scenarios[0].roles[0]", NULL, true);
    fx_cost_all(&f, s, 1, 64 * MiB);
    fx_guests(&f, s, 3);
    assert_int_equal(fx_run(&f), 0);
    assert_int_equal(count_on(&f, 0), 1);
    assert_int_equal(count_on(&f, 1), 2);
}

/* Over-committed nodes (negative free), bad arguments. */
static void test_edges(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_node(&f, "n1", 4, 1 * GiB);
    f.nodes[0].vcpus_free = -3;
    f.nodes[0].mem_free = -(int64_t)GiB;
    fx_node(&f, "n2", 4, 1 * GiB);
    size_t r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&f, r, 1, 64 * MiB);
    fx_guests(&f, r, 1);
    assert_int_equal(fx_run(&f), 0);
    assert_int_equal(f.node_of[0], 1);
    fx_init(&f);
    fx_node(&f, "n1", 4, 1 * GiB);
    f.nodes[0].vcpus_free = -3;
    r = fx_role(&f, "scenarios[0].roles[0]", NULL, false);
    fx_cost_all(&f, r, 1, 64 * MiB);
    fx_guests(&f, r, 1);
    assert_int_equal(fx_run(&f), -ENOSPC);
    assert_non_null(strstr(f.err.msg, "n1: vcpu limit 4, 0 free"));
    /* no nodes; a role out of range; zero guests is fine */
    fx_init(&f);
    assert_int_equal(fx_run(&f), -EINVAL);
    fx_node(&f, "n1", 4, 1 * GiB);
    r = fx_role(&f, "r", NULL, false);
    fx_cost_all(&f, r, 1, 64 * MiB);
    assert_int_equal(fx_run(&f), 0);
    f.guest_role[f.q.n_guests++] = 7;
    assert_int_equal(fx_run(&f), -EINVAL);
    assert_int_equal(f.nodes[0].vcpus_free, 4);
    /* on_node NULL works; a long message is cut, not overflowed */
    fx_init(&f);
    f.q.on_node = NULL;
    char name[16];
    for (int i = 0; i < NODES_MAX; i++) {
        snprintf(name, sizeof(name), "node-%d-xxxxxxxx", i);
        fx_node(&f, name, 1, 1 * GiB);
    }
    r = fx_role(&f, "scenarios[63].roles[63]", NULL, true);
    fx_cost_all(&f, r, 1, 64 * MiB);
    fx_guests(&f, r, NODES_MAX);
    assert_int_equal(fx_run(&f), 0);
    fx_guests(&f, r, 1);
    assert_int_equal(fx_run(&f), -ENOSPC);
    assert_true(strlen(f.err.msg) < sizeof(f.err.msg));
}

/* Random clusters (a fixed seed: the same every run): whatever is placed
 * fits what each node had free, keeps to node: and to the nodes with the
 * template, is the same twice; a refusal changes nothing. */
static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void random_cluster(struct fx *f, uint32_t *seed)
{
    static const char *const names[] = {"a", "b", "c", "d", "e", "f"};
    fx_init(f);
    size_t nn = 1 + rnd(seed) % 6, nr = 1 + rnd(seed) % ROLES_MAX;
    for (size_t k = 0; k < nn; k++)
        fx_node(f, names[k], rnd(seed) % 40, (int64_t)(rnd(seed) % 64) * 256 * MiB);
    for (size_t r = 0; r < nr; r++) {
        const char *node = rnd(seed) % 4 == 0 ? names[rnd(seed) % 7 % 6] : NULL;
        fx_role(f, "scenarios[0].roles[0]", node, rnd(seed) % 2);
        for (size_t k = 0; k < nn; k++)
            if (rnd(seed) % 5)
                fx_cost(f, r, k, 1 + rnd(seed) % 4, (1 + rnd(seed) % 8) * 128 * MiB);
    }
    size_t ng = rnd(seed) % GUESTS_MAX;
    for (size_t i = 0; i < ng; i++)
        f->guest_role[f->q.n_guests++] = rnd(seed) % nr;
}

static void test_random_invariants(void **state)
{
    (void)state;
    uint32_t seed = 20261206;
    size_t placed = 0, refused = 0;
    for (int round = 0; round < 2000; round++) {
        struct fx f, g;
        random_cluster(&f, &seed);
        struct place_node before[NODES_MAX];
        memcpy(before, f.nodes, sizeof(before));
        g = f;
        g.q.nodes = g.nodes, g.q.roles = g.roles, g.q.cost = g.cost, g.q.on_node = g.on;
        g.q.guest_role = g.guest_role;
        int rc = fx_run(&f);
        assert_int_equal(fx_run(&g), rc);
        if (rc) {
            assert_true(rc == -ENOSPC || rc == -ENOENT);
            assert_memory_equal(f.nodes, before, sizeof(before));
            assert_true(f.err.field[0] && f.err.msg[0]);
            refused++;
            continue;
        }
        placed++;
        assert_memory_equal(f.node_of, g.node_of, f.q.n_guests * sizeof(size_t));
        int64_t cpus[NODES_MAX] = {0}, mem[NODES_MAX] = {0};
        for (size_t i = 0; i < f.q.n_guests; i++) {
            size_t r = f.guest_role[i], k = f.node_of[i];
            const struct place_cost *c = &f.cost[r * f.q.n_nodes + k];
            assert_true(k < f.q.n_nodes);
            assert_true(c->cpus > 0); /* the node has the template */
            if (f.roles[r].node)
                assert_string_equal(f.nodes[k].name, f.roles[r].node);
            cpus[k] += c->cpus;
            mem[k] += (int64_t)c->mem;
        }
        for (size_t k = 0; k < f.q.n_nodes; k++) {
            assert_true(cpus[k] <= before[k].vcpus_free);
            assert_true(mem[k] <= before[k].mem_free);
            assert_int_equal(f.nodes[k].vcpus_free, before[k].vcpus_free - cpus[k]);
            assert_int_equal(f.nodes[k].mem_free, before[k].mem_free - mem[k]);
        }
    }
    assert_true(placed > 100 && refused > 100); /* both sides were exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_nodes_balance),
        cmocka_unit_test(test_by_capacity),
        cmocka_unit_test(test_memory_binds),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_node_constraint),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
