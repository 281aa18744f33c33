/* Ranges on a cluster (docs/cluster.md "Ranges"): `range up` on any node
 * stores the range in etcd and places its guests on the nodes; one placer
 * at a time, elected through etcd (the key /herd/placer, created only if
 * absent, on the placing node's lease); placement itself is libherd-ctl's
 * placement_run over the nodes' profiles and every assignment already
 * made. The nodes then create their guests (cluster_reconcile.c). Range
 * reset raises the assignments' reset generation; range down deletes the
 * range, its assignments and statuses. Status and list: cluster_view.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd/capacity.h"
#include "herd/etcd.h"
#include "herd/placement.h"
#include "herd/range_spec.h"
#include "cluster_range.h"
#include "cluster_segments.h"
#include "herdd.h"

#define PLACER_WAIT_MS 10000 /* how long a placement waits for another to finish */
#define TXN_OPS 100          /* ops per transaction (etcd's default limit is 128) */
#define TXN_BYTES (1u << 20) /* bytes of keys and values per transaction */

/* ---- the placer's election: /herd/placer ------------------------------------ */

struct placer {
    char value[HD_NAME_MAX + 32]; /* "NODE #N": this call's, not only this node's */
    int64_t revision;             /* the key's create_revision while held */
};

static int64_t node_lease(struct hd_cluster *cl, struct hd_err *err)
{
    char why[sizeof(cl->last_error)];

    pthread_mutex_lock(&cl->mu);
    int64_t lease = cl->registered ? cl->lease : 0;
    snprintf(why, sizeof(why), "%s", cl->last_error[0] ? cl->last_error : "no answer");
    pthread_mutex_unlock(&cl->mu);
    if (!lease)
        hd_fail(err, 503, "cluster", "this node is not registered in the cluster (etcd: %s)",
                why);
    return lease;
}

/* One try: 1 held, 0 held by another (who: its value), -1 etcd failed. */
static int placer_try(struct hd_cluster *cl, struct placer *p, int64_t lease, char *who,
                      size_t who_size, struct hd_err *err)
{
    struct etcd_cmp cmp = {HD_CLUSTER_PLACER, ETCD_CREATE_REVISION, ETCD_EQUAL, 0};
    struct etcd_op put = {ETCD_OP_PUT, HD_CLUSTER_PLACER, p->value, strlen(p->value), lease, 0};
    struct etcd_txn t = {&cmp, 1, &put, NULL, 1, 0};
    struct etcd_kvs kvs;
    bool done = false;

    if (etcd_txn(cl->etcd_api, &t, &done, &p->revision, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    if (done)
        return 1;
    if (etcd_get(cl->etcd_api, HD_CLUSTER_PLACER, &kvs, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    int rc = 0;
    if (kvs.n && kvs.kv[0].lease == lease && kvs.kv[0].value_len == strlen(p->value) &&
        !memcmp(kvs.kv[0].value, p->value, kvs.kv[0].value_len)) {
        p->revision = kvs.kv[0].create_revision; /* our retried txn had been applied */
        /* (the value names this call, the lease this herdd: a key of a herdd
         * that ran before on this node is on its own lease) */
        rc = 1;
    } else if (kvs.n) {
        snprintf(who, who_size, "%.*s", (int)(kvs.kv[0].value_len > 80 ? 80 : kvs.kv[0].value_len),
                 kvs.kv[0].value);
    }
    etcd_kvs_free(&kvs);
    return rc;
}

/* The placer's key, waiting up to PLACER_WAIT_MS for another placement. */
static int placer_lock(struct hd_cluster *cl, struct placer *p, struct hd_err *err)
{
    char who[96] = "";
    int64_t lease = node_lease(cl, err);

    if (!lease)
        return -1;
    pthread_mutex_lock(&cl->mu);
    unsigned seq = ++cl->placements;
    pthread_mutex_unlock(&cl->mu);
    snprintf(p->value, sizeof(p->value), "%s #%u", cl->cfg->node_name, seq);
    for (int waited = 0; waited < PLACER_WAIT_MS && !cl->res->st->stopping; waited += 50) {
        int rc = placer_try(cl, p, lease, who, sizeof(who), err);
        if (rc)
            return rc > 0 ? 0 : -1;
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    return hd_fail(err, 503, "cluster", "another placement is running (the placer key %s is "
                   "held by '%s'); try again", HD_CLUSTER_PLACER, who);
}

/* Released if still ours (a lease that expired meanwhile took it already). */
static void placer_unlock(struct hd_cluster *cl, const struct placer *p)
{
    struct etcd_cmp cmp = {HD_CLUSTER_PLACER, ETCD_CREATE_REVISION, ETCD_EQUAL, p->revision};
    struct etcd_op del = {ETCD_OP_DELETE, HD_CLUSTER_PLACER, NULL, 0, 0, false};
    struct etcd_txn t = {&cmp, 1, &del, NULL, 1, 0};
    struct herd_err ignore;
    bool done;

    etcd_txn(cl->etcd_api, &t, &done, NULL, &ignore);
}

/* ---- what the cluster holds -------------------------------------------------- */

struct plan {
    struct hd_cluster *cl;
    struct range_spec *spec;
    struct range_guest *guests;
    size_t n;
    json_t *profiles;            /* node name -> its profile (valid ones only) */
    json_t *catalog;             /* templates published for copies: name -> {cpus, mem} */
    json_t *registered;          /* every node with a key under /herd/nodes/ */
    bool replacing;              /* on_node_loss: the lost nodes' guests are placed anew */
    struct place_node *nodes;
    size_t n_nodes;
    json_t *assigned;            /* this range's guests: name -> node */
    json_t *stale;               /* this range's assignments no guest of the spec has:
                                  * key -> node */
    size_t n_roles;
    struct place_role *roles;
    char (*fields)[48];
    struct place_cost *cost;
    unsigned *on_node;
    size_t *guest_role;          /* per guest of the spec */
    size_t *todo;                /* spec guests to place (indexes) */
    size_t n_todo;
    size_t *node_of;             /* per todo */
};

static bool int_field(json_t *o, const char *k, int64_t min, int64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* A profile the placer can use: limits, use (and the assigned part of it). */
static bool profile_ok(json_t *p, struct place_node *n)
{
    json_t *lim = json_object_get(p, "limits"), *use = json_object_get(p, "use");
    json_t *mine = json_object_get(p, "cluster");
    int64_t uv, um, cv = 0, cm = 0;

    if (!int_field(lim, "vcpus", 0, &n->vcpus_limit) || !int_field(lim, "mem", 0, &n->mem_limit) ||
        !int_field(use, "vcpus", 0, &uv) || !int_field(use, "mem", 0, &um) ||
        !json_is_object(json_object_get(p, "templates")))
        return false;
    if (mine && (!int_field(mine, "vcpus", 0, &cv) || !int_field(mine, "mem", 0, &cm)))
        return false;
    /* what runs that is not on assignment (assignments are counted whole) */
    n->vcpus_free = n->vcpus_limit - (uv > cv ? uv - cv : 0);
    n->mem_free = n->mem_limit - (um > cm ? um - cm : 0);
    return true;
}

static int load_nodes(struct plan *pl, struct hd_err *err)
{
    struct etcd_kvs kvs;

    if (etcd_range_prefix(pl->cl->etcd_api, HD_CLUSTER_NODES, &kvs, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    pl->profiles = json_object();
    pl->registered = json_object();
    pl->nodes = calloc(kvs.n + 1, sizeof(*pl->nodes));
    for (size_t i = 0; pl->nodes && i < kvs.n; i++) {
        const char *name = kvs.kv[i].key + strlen(HD_CLUSTER_NODES);
        json_object_set_new(pl->registered, name, json_true());
        json_t *p = json_loadb(kvs.kv[i].value, kvs.kv[i].value_len, JSON_REJECT_DUPLICATES, NULL);
        struct place_node *n = &pl->nodes[pl->n_nodes];
        if (hd_name_ok(name) && json_is_object(p) && profile_ok(p, n)) {
            snprintf(n->name, sizeof(n->name), "%s", name);
            json_object_set(pl->profiles, name, p);
            pl->n_nodes++;
        } else {
            fprintf(stderr, "herdd: cluster: placement: the profile of node '%.63s' is not "
                    "usable: that node is left out\n", name);
        }
        json_decref(p);
    }
    etcd_kvs_free(&kvs);
    pl->catalog = hd_images_catalog(pl->cl->etcd_api);
    if (!pl->nodes)
        return hd_fail(err, 500, "", "out of memory (placement)");
    if (!pl->n_nodes)
        return hd_fail(err, 503, "cluster", "no node is registered in the cluster");
    return 0;
}

static long node_index(const struct plan *pl, const char *name)
{
    for (size_t k = 0; k < pl->n_nodes; k++)
        if (!strcmp(pl->nodes[k].name, name))
            return (long)k;
    return -1;
}

/* One key of /herd/assign/: NODE/RANGE/GUEST into its parts. */
static bool assign_parts(const char *key, char *node, char *range, char *guest)
{
    const char *a = key + strlen(HD_CLUSTER_ASSIGN), *b = strchr(a, '/'), *c;

    if (!b || b == a || b - a > HD_NAME_MAX || !(c = strchr(b + 1, '/')) || c == b + 1 ||
        c - b - 1 > RANGE_NAME_MAX || strlen(c + 1) > HD_NAME_MAX || !c[1])
        return false;
    memcpy(node, a, (size_t)(b - a));
    node[b - a] = 0;
    memcpy(range, b + 1, (size_t)(c - b - 1));
    range[c - b - 1] = 0;
    strcpy(guest, c + 1);
    return true;
}

/* The spec's guest names as a set (a lookup per assignment, not a scan). */
static json_t *guest_names(const struct plan *pl)
{
    json_t *names = json_object();

    for (size_t i = 0; i < pl->n; i++)
        json_object_set_new(names, pl->guests[i].name, json_true());
    return names;
}

/* Every assignment's cost off its node's free; this range's noted. */
static int load_assignments(struct plan *pl, struct hd_err *err)
{
    struct etcd_kvs kvs;
    struct cap_policy pol;
    char node[HD_NAME_MAX + 1], range[RANGE_NAME_MAX + 1], guest[HD_NAME_MAX + 1];

    cap_policy_default(&pol);
    if (etcd_range_prefix(pl->cl->etcd_api, HD_CLUSTER_ASSIGN, &kvs, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    pl->assigned = json_object();
    pl->stale = json_object();
    json_t *names = guest_names(pl);
    for (size_t i = 0; i < kvs.n; i++) {
        if (!assign_parts(kvs.kv[i].key, node, range, guest))
            continue;
        json_t *a = json_loadb(kvs.kv[i].value, kvs.kv[i].value_len, 0, NULL);
        int64_t cpus, mem;
        long k = node_index(pl, node);
        if (k >= 0 && int_field(a, "cpus", 0, &cpus) && int_field(a, "mem", 0, &mem) &&
            cpus <= RANGE_CPUS_MAX && mem <= (int64_t)RANGE_MEM_MAX) { /* else: not ours */
            pl->nodes[k].vcpus_free -= cpus;
            pl->nodes[k].mem_free -= (int64_t)cap_guest_mem(&pol, (uint64_t)mem, 1);
        }
        json_decref(a);
        if (strcmp(range, pl->spec->name))
            continue;
        if (json_object_get(names, guest))
            json_object_set_new(pl->assigned, guest, json_string(node));
        else
            json_object_set_new(pl->stale, kvs.kv[i].key, json_string(node));
    }
    json_decref(names);
    etcd_kvs_free(&kvs);
    return 0;
}

/* ---- roles, costs, guests to place ------------------------------------------- */

/* What one guest of role costs on node k: its template there, the role's
 * cpus and mem over it; cpus 0 when the node has not the template. */
/* Template name as node k makes its guests: its own (in its profile), else
 * one another node publishes, which node k copies first (docs/cluster.md
 * "Parent images"). NULL: neither. */
static json_t *node_template(const struct plan *pl, size_t k, const char *name)
{
    json_t *t = json_object_get(json_object_get(json_object_get(pl->profiles, pl->nodes[k].name),
                                                "templates"),
                                name);
    return t ? t : json_object_get(pl->catalog, name);
}

static struct place_cost role_cost(const struct plan *pl, const struct range_role *role, size_t k)
{
    json_t *t = node_template(pl, k, role->template_name);
    struct place_cost c = {0, 0};
    struct cap_policy pol;
    int64_t cpus, mem;

    if (!int_field(t, "cpus", 1, &cpus) || !int_field(t, "mem", 1, &mem) || cpus > RANGE_CPUS_MAX)
        return c;
    cap_policy_default(&pol);
    c.cpus = role->cpus ? role->cpus : (unsigned)cpus;
    c.mem = cap_guest_mem(&pol, role->mem ? role->mem : (uint64_t)mem, 1);
    return c;
}

static int build_roles(struct plan *pl, struct hd_err *err)
{
    const struct range_spec *s = pl->spec;

    for (size_t i = 0; i < s->n_scenarios; i++)
        pl->n_roles += s->scenarios[i].n_roles;
    pl->roles = calloc(pl->n_roles + 1, sizeof(*pl->roles));
    pl->fields = calloc(pl->n_roles + 1, sizeof(*pl->fields));
    pl->cost = calloc(pl->n_roles * pl->n_nodes + 1, sizeof(*pl->cost));
    pl->on_node = calloc(pl->n_roles * pl->n_nodes + 1, sizeof(*pl->on_node));
    if (!pl->roles || !pl->fields || !pl->cost || !pl->on_node)
        return hd_fail(err, 500, "", "out of memory (placement)");
    size_t r = 0;
    for (size_t i = 0; i < s->n_scenarios; i++)
        for (size_t j = 0; j < s->scenarios[i].n_roles; j++, r++) {
            const struct range_role *role = &s->scenarios[i].roles[j];
            snprintf(pl->fields[r], sizeof(pl->fields[r]), "scenarios[%zu].roles[%zu]", i, j);
            pl->roles[r] = (struct place_role){pl->fields[r], role->template_name, role->node,
                                               role->spread};
            for (size_t k = 0; k < pl->n_nodes; k++)
                pl->cost[r * pl->n_nodes + k] = role_cost(pl, role, k);
        }
    return 0;
}

/* A guest assigned to a node that is gone, replacing: its assignment goes
 * (with its status) and it is placed anew. */
static void unassign_lost(struct plan *pl, const char *guest, const char *node)
{
    char *key = NULL;

    if (asprintf(&key, "%s%s/%s/%s", HD_CLUSTER_ASSIGN, node, pl->spec->name, guest) >= 0) {
        json_object_set_new(pl->stale, key, json_string(node));
        free(key);
    }
    json_object_del(pl->assigned, guest);
}

/* The role index of each guest; guests already assigned counted on their
 * node (spread), the others listed to place (replacing: those of nodes
 * that are gone too). */
static int build_guests(struct plan *pl, struct hd_err *err)
{
    pl->guest_role = calloc(pl->n + 1, sizeof(*pl->guest_role));
    pl->todo = calloc(pl->n + 1, sizeof(*pl->todo));
    pl->node_of = calloc(pl->n + 1, sizeof(*pl->node_of));
    if (!pl->guest_role || !pl->todo || !pl->node_of)
        return hd_fail(err, 500, "", "out of memory (placement)");
    size_t r = 0;
    for (size_t g = 0; g < pl->n; g++) {
        if (g && pl->guests[g].role != pl->guests[g - 1].role)
            r++;
        pl->guest_role[g] = r;
        const char *node = json_string_value(json_object_get(pl->assigned, pl->guests[g].name));
        long k = node ? node_index(pl, node) : -1;
        if (k >= 0) {
            pl->on_node[r * pl->n_nodes + (size_t)k]++;
        } else if (!node) {
            pl->todo[pl->n_todo++] = g;
        } else if (pl->replacing && !json_object_get(pl->registered, node)) {
            unassign_lost(pl, pl->guests[g].name, node);
            pl->todo[pl->n_todo++] = g;
        }
    }
    return 0;
}

static int place(struct plan *pl, struct hd_err *err)
{
    size_t *roles = calloc(pl->n_todo + 1, sizeof(*roles));
    struct place_err perr;

    if (!roles)
        return hd_fail(err, 500, "", "out of memory (placement)");
    for (size_t i = 0; i < pl->n_todo; i++)
        roles[i] = pl->guest_role[pl->todo[i]];
    struct place_req q = {pl->nodes, pl->n_nodes, pl->roles, pl->n_roles, pl->cost,
                          pl->on_node, roles, pl->n_todo};
    int rc = placement_run(&q, pl->node_of, &perr);
    free(roles);
    if (rc == -ENOENT)
        return hd_fail(err, 400, perr.field, "%s", perr.msg);
    if (rc == -ENOSPC)
        return hd_fail(err, 409, perr.field, "placement refused: %s", perr.msg);
    if (rc < 0)
        return hd_fail(err, 500, perr.field, "placement: %s", perr.msg);
    return 0;
}

/* ---- writing it --------------------------------------------------------------- */

/* The guest's vm create body (docs/api: POST /v1/vms): as ranges.c makes
 * it for a node's own range, without addresses (not yet on a cluster);
 * a NIC's segment is its node's segment bridge (cluster_segments.c). */
static json_t *guest_body(const struct range_spec *spec, const struct range_guest *gu)
{
    const struct range_role *role = gu->role;
    json_t *b = json_pack("{ss ss}", "name", gu->name, "template", role->template_name);

    if (role->cpus)
        json_object_set_new(b, "cpus", json_integer(role->cpus));
    if (role->mem)
        json_object_set_new(b, "mem", json_integer((json_int_t)role->mem));
    if (role->nics_set) {
        json_t *a = json_array();
        for (size_t k = 0; k < role->n_nics; k++) {
            json_t *nic = json_pack("{ss}", "network", range_network_name(role->nics[k].network));
            if (role->nics[k].segment[0]) /* its bridge: cluster_segments.c */
                json_object_set_new(nic, "segment", json_string(role->nics[k].segment));
            json_array_append_new(a, nic);
        }
        json_object_set_new(b, "nics", a);
    }
    if (spec->n_ssh_keys || role->n_runcmd) {
        json_t *keys = json_array(), *cmds = json_array();
        for (size_t i = 0; i < spec->n_ssh_keys; i++)
            json_array_append_new(keys, json_string(spec->ssh_keys[i]));
        for (size_t i = 0; i < role->n_runcmd; i++)
            json_array_append_new(cmds, json_string(role->runcmd[i]));
        json_object_set_new(b, "cloud_init", json_pack("{so so}", "ssh_authorized_keys", keys,
                                                      "runcmd", cmds));
    }
    return b;
}

/* The assignment of guest g to node k: what its node needs to create it
 * and what the placer counts (cpus, mem: the role's over the template's). */
static char *assignment(const struct plan *pl, size_t g, size_t k)
{
    const struct range_guest *gu = &pl->guests[g];
    json_t *t = node_template(pl, k, gu->role->template_name);
    int64_t tcpus = 1, tmem = 0;

    int_field(t, "cpus", 1, &tcpus);
    int_field(t, "mem", 0, &tmem);
    json_t *o = json_pack("{ss ss ss so sI sI}", "range", pl->spec->name, "guest", gu->name,
                          "node", pl->nodes[k].name, "body", guest_body(pl->spec, gu), "cpus",
                          (json_int_t)(gu->role->cpus ? gu->role->cpus : tcpus), "mem",
                          (json_int_t)(gu->role->mem ? (int64_t)gu->role->mem : tmem));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* Ops to write, in transactions of at most TXN_OPS ops and about
 * TXN_BYTES bytes (etcd refuses a request over 1.5 MiB by default), each
 * only while the placer's key is still this call's. */
struct batch {
    struct hd_cluster *cl;
    const struct placer *p;
    struct etcd_op ops[TXN_OPS];
    char *keys[TXN_OPS], *vals[TXN_OPS];
    size_t n, bytes;
    int rc;
    struct hd_err *err;
};

static void batch_flush(struct batch *b)
{
    struct etcd_cmp cmp = {HD_CLUSTER_PLACER, ETCD_CREATE_REVISION, ETCD_EQUAL, b->p->revision};
    struct etcd_txn t = {&cmp, 1, b->ops, NULL, b->n, 0};
    bool done = false;

    if (b->n && !b->rc) {
        if (etcd_txn(b->cl->etcd_api, &t, &done, NULL, &b->err->lib) < 0)
            b->rc = hd_fail_lib(b->err, 503, b->err->lib.code, "cluster");
        else if (!done)
            b->rc = hd_fail(b->err, 503, "cluster", "this node lost the placer key meanwhile "
                            "(its lease expired?): range up again completes the placement");
    }
    for (size_t i = 0; i < b->n; i++) {
        free(b->keys[i]);
        free(b->vals[i]);
    }
    b->n = b->bytes = 0;
}

/* Takes key and val (malloc'd; val NULL: a delete). */
static void batch_op(struct batch *b, char *key, char *val, bool prefix)
{
    size_t len = (key ? strlen(key) : 0) + (val ? strlen(val) : 0);

    if (b->n && b->bytes + len > TXN_BYTES)
        batch_flush(b);
    b->keys[b->n] = key;
    b->vals[b->n] = val;
    b->ops[b->n] = val ? (struct etcd_op){ETCD_OP_PUT, key, val, strlen(val), 0, false}
                       : (struct etcd_op){ETCD_OP_DELETE, key, NULL, 0, 0, prefix};
    b->bytes += len;
    if (++b->n == TXN_OPS)
        batch_flush(b);
}

static void batch_put(struct batch *b, char *key, char *val)
{
    if (!key || !val) {
        free(key);
        free(val);
        if (!b->rc)
            b->rc = hd_fail(b->err, 500, "", "out of memory (placement)");
        return;
    }
    batch_op(b, key, val, false);
}

static void batch_del(struct batch *b, char *key, bool prefix)
{
    if (!key) {
        if (!b->rc)
            b->rc = hd_fail(b->err, 500, "", "out of memory (placement)");
        return;
    }
    batch_op(b, key, NULL, prefix);
}

static char *strf(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *f, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static char *range_doc(const struct plan *pl, const char *yaml, size_t len, json_t *placement)
{
    json_t *o = json_pack("{ss ss% sI ss sI sO}", "name", pl->spec->name, "spec", yaml, len,
                          "guests", (json_int_t)pl->n, "submitted_by",
                          pl->cl->cfg->node_name, "submitted", (json_int_t)hd_now_ms(),
                          "placement", placement);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* node -> guests of the range there (kept and new) */
static json_t *placement_counts(const struct plan *pl)
{
    json_t *c = json_object();
    const char *k;
    json_t *v;

    json_object_foreach(pl->assigned, k, v) {
        const char *n = json_string_value(v);
        json_object_set_new(c, n, json_integer(json_integer_value(json_object_get(c, n)) + 1));
    }
    for (size_t i = 0; i < pl->n_todo; i++) {
        const char *n = pl->nodes[pl->node_of[i]].name;
        json_object_set_new(c, n, json_integer(json_integer_value(json_object_get(c, n)) + 1));
    }
    return c;
}

/* "ROLE/SEGMENT" -> {NODE: true}: the nodes of the range's guests (kept and
 * new) on each segment; NULL when the spec has no segment. */
static json_t *seg_nodes(const struct plan *pl)
{
    const char **node = calloc(pl->n + 1, sizeof(*node));
    json_t *out = NULL;

    if (!node)
        return NULL;
    for (size_t i = 0; i < pl->n_todo; i++)
        node[pl->todo[i]] = pl->nodes[pl->node_of[i]].name;
    for (size_t g = 0; g < pl->n; g++) {
        const struct range_role *role = pl->guests[g].role;
        const char *n = node[g] ? node[g]
                                : json_string_value(json_object_get(pl->assigned,
                                                                    pl->guests[g].name));
        for (size_t k = 0; n && k < role->n_nics; k++) {
            char key[96];
            if (!role->nics[k].segment[0])
                continue;
            snprintf(key, sizeof(key), "%s/%s", range_network_name(role->nics[k].network),
                     role->nics[k].segment);
            if (!out)
                out = json_object();
            json_t *set = json_object_get(out, key);
            if (!set)
                json_object_set_new(out, key, set = json_object());
            json_object_set_new(set, n, json_true());
        }
    }
    free(node);
    return out;
}

/* The range's segments record (VNIs allocated), when it has segments. */
static void segments_put(struct plan *pl, struct batch *b)
{
    json_t *sn = b->rc ? NULL : seg_nodes(pl);

    if (!sn)
        return;
    char *rec = hd_segments_record(pl->cl, pl->spec->name, sn, pl->profiles, b->err);
    json_decref(sn);
    if (!rec) {
        b->rc = -1;
        return;
    }
    batch_put(b, strf("%s%s", HD_CLUSTER_SEGMENTS, pl->spec->name), rec);
}

static int write_plan(struct plan *pl, const struct placer *p, const char *yaml, size_t len,
                      json_t *counts, struct hd_err *err)
{
    struct batch b = {.cl = pl->cl, .p = p, .err = err};
    const char *k;
    json_t *v;

    batch_put(&b, strf("%s%s", HD_CLUSTER_RANGES, pl->spec->name),
              range_doc(pl, yaml, len, counts));
    batch_flush(&b); /* the range first, alone (its spec may be large) */
    segments_put(pl, &b); /* before the assignments: the nodes read it to make bridges */
    json_object_foreach(pl->stale, k, v) { /* guests the spec no longer has */
        char node[HD_NAME_MAX + 1], range[RANGE_NAME_MAX + 1], guest[HD_NAME_MAX + 1];
        batch_del(&b, strdup(k), false);
        if (assign_parts(k, node, range, guest))
            batch_del(&b, strf("%s%s/%s", HD_CLUSTER_STATUS, range, guest), false);
    }
    for (size_t i = 0; i < pl->n_todo; i++) {
        size_t g = pl->todo[i], n = pl->node_of[i];
        batch_put(&b, strf("%s%s/%s/%s", HD_CLUSTER_ASSIGN, pl->nodes[n].name, pl->spec->name,
                           pl->guests[g].name),
                  assignment(pl, g, n));
    }
    batch_flush(&b);
    return b.rc;
}

static void plan_free(struct plan *pl)
{
    json_decref(pl->profiles);
    json_decref(pl->catalog);
    json_decref(pl->registered);
    json_decref(pl->assigned);
    json_decref(pl->stale);
    free(pl->nodes);
    free(pl->roles);
    free(pl->fields);
    free(pl->cost);
    free(pl->on_node);
    free(pl->guest_role);
    free(pl->todo);
    free(pl->node_of);
    free(pl->guests);
    range_spec_free(pl->spec);
}

/* ---- range up --------------------------------------------------------------------- */

/* What a cluster cannot do yet (addresses and resource disks need
 * address plans and copies across nodes): 400 naming the field. */
static int cluster_supported(const struct range_spec *s, struct hd_err *err)
{
    if (s->resources)
        return hd_fail(err, 400, "resources", "resources: resource disks are not supported on "
                       "a cluster yet (docs/cluster.md)");
    if (s->n_subnets)
        return hd_fail(err, 400, "networks", "networks: addressing is not supported on a "
                       "cluster yet (docs/cluster.md)");
    for (size_t i = 0; i < s->n_scenarios; i++) {
        const struct range_scenario *sc = &s->scenarios[i];
        if (sc->resources)
            return hd_fail(err, 400, "", "scenarios[%zu].resources: resource disks are not "
                           "supported on a cluster yet (docs/cluster.md)", i);
        for (size_t j = 0; j < sc->n_roles; j++)
            for (size_t k = 0; k < sc->roles[j].n_nics; k++)
                if (sc->roles[j].nics[k].addresses)
                    return hd_fail(err, 400, "", "scenarios[%zu].roles[%zu].nics[%zu].addresses: "
                                   "addresses are not supported on a cluster yet "
                                   "(docs/cluster.md)", i, j, k);
    }
    return 0;
}

/* hd_fail with a formatted field (the messages above name it first). */
static int fix_field(struct hd_err *err)
{
    const char *colon = strchr(err->msg, ':');
    if (!err->field[0] && colon && colon - err->msg < (long)sizeof(err->field))
        snprintf(err->field, sizeof(err->field), "%.*s", (int)(colon - err->msg), err->msg);
    return -1;
}

static int parse_spec(struct plan *pl, struct hd_store *st, const char *yaml, size_t len,
                      struct hd_err *err)
{
    struct range_err rerr;

    memset(&rerr, 0, sizeof(rerr));
    int rc = range_spec_parse(yaml, len, &pl->spec, &rerr);
    if (rc < 0)
        return hd_fail(err, rc == -EFBIG ? 413 : 400, rerr.field, "%s",
                       rerr.msg[0] ? rerr.msg : strerror(-rc));
    if (cluster_supported(pl->spec, err) < 0)
        return fix_field(err);
    if (range_spec_expand(pl->spec, &pl->guests, &pl->n) < 0)
        return hd_fail(err, 500, "", "range expansion failed");
    pthread_mutex_lock(&st->mu);
    json_t *local = hd_db_ranges(st, pl->spec->name);
    pthread_mutex_unlock(&st->mu);
    json_decref(local);
    if (local)
        return hd_fail(err, 409, "range", "range '%s' is a range of this node's own (not on "
                       "the cluster): take it down first", pl->spec->name);
    return 0;
}

/* Placement under the placer's key: nodes, assignments, the guests to
 * place, the plan written. *counts: guests per node (kept and new). */
static int place_locked(struct plan *pl, const struct placer *p, const char *yaml, size_t len,
                        json_t **counts, struct hd_err *err)
{
    int rc = load_nodes(pl, err);

    if (!rc)
        rc = load_assignments(pl, err);
    if (!rc)
        rc = build_roles(pl, err);
    if (!rc)
        rc = build_guests(pl, err);
    if (!rc && pl->replacing && !pl->n_todo)
        return 0; /* nothing was on a lost node (any more) */
    if (!rc)
        rc = place(pl, err);
    *counts = rc ? NULL : placement_counts(pl);
    if (!rc)
        rc = write_plan(pl, p, yaml, len, *counts, err);
    return rc;
}

int hd_cluster_range_up(struct hd_cluster *cl, const char *yaml, size_t len, json_t **out,
                        struct hd_err *err)
{
    struct plan pl = {.cl = cl};
    json_t *counts = NULL;
    struct placer p;
    int rc;

    if (!cl->etcd)
        return 1;
    if (parse_spec(&pl, cl->res->st, yaml, len, err) < 0 || placer_lock(cl, &p, err) < 0) {
        plan_free(&pl);
        return -1;
    }
    rc = place_locked(&pl, &p, yaml, len, &counts, err);
    placer_unlock(cl, &p);
    if (!rc) {
        *out = json_pack("{ss sI sO sI sI sb sI}", "name", pl.spec->name, "guests",
                         (json_int_t)pl.n, "placement", counts, "placed",
                         (json_int_t)pl.n_todo, "kept",
                         (json_int_t)json_object_size(pl.assigned), "cluster", 1, "event_seq",
                         (json_int_t)hd_event_seq(&cl->res->st->ev));
        hd_event(&cl->res->st->ev, "range.placed", pl.spec->name,
                 json_pack("{ss sI sO}", "range", pl.spec->name, "guests", (json_int_t)pl.n,
                           "placement", counts));
    }
    json_decref(counts);
    plan_free(&pl);
    return rc;
}

/* The range's spec as stored with it (NULL: no such range, or not one). */
static char *stored_spec(struct hd_cluster *cl, const char *range, size_t *len,
                         struct hd_err *err)
{
    struct etcd_kvs kvs;
    char key[256];
    char *yaml = NULL;

    snprintf(key, sizeof(key), "%s%s", HD_CLUSTER_RANGES, range);
    if (etcd_get(cl->etcd_api, key, &kvs, &err->lib) < 0) {
        hd_fail_lib(err, 503, err->lib.code, "cluster");
        return NULL;
    }
    json_t *doc = kvs.n ? json_loadb(kvs.kv[0].value, kvs.kv[0].value_len, 0, NULL) : NULL;
    json_t *spec = json_object_get(doc, "spec");
    if (json_is_string(spec)) {
        *len = json_string_length(spec);
        yaml = malloc(*len + 1);
        if (yaml)
            memcpy(yaml, json_string_value(spec), *len + 1);
    }
    json_decref(doc);
    etcd_kvs_free(&kvs);
    if (!yaml)
        hd_fail(err, 404, "range", "range '%s' is not on the cluster (or its spec is unreadable)",
                range);
    return yaml;
}

int hd_cluster_replace_lost(struct hd_cluster *cl, const char *range, struct hd_err *err)
{
    struct plan pl = {.cl = cl, .replacing = true};
    struct range_err rerr;
    json_t *counts = NULL;
    struct placer p;
    size_t len = 0;
    char *yaml = stored_spec(cl, range, &len, err);

    if (!yaml)
        return err->status == 404 ? 0 : -1;
    memset(&rerr, 0, sizeof(rerr));
    if (range_spec_parse(yaml, len, &pl.spec, &rerr) < 0 || !pl.spec->replace_lost ||
        strcmp(pl.spec->name, range) || range_spec_expand(pl.spec, &pl.guests, &pl.n) < 0) {
        free(yaml);
        plan_free(&pl);
        return 0; /* on_node_loss: keep (or a spec this herdd cannot read: kept too) */
    }
    int rc = placer_lock(cl, &p, err);
    if (!rc) {
        rc = place_locked(&pl, &p, yaml, len, &counts, err);
        placer_unlock(cl, &p);
    }
    if (!rc && pl.n_todo) {
        fprintf(stderr, "herdd: cluster: range %s: %zu guest(s) of lost nodes placed anew\n",
                range, pl.n_todo);
        hd_event(&cl->res->st->ev, "range.replaced", range,
                 json_pack("{ss sI sO}", "range", range, "guests", (json_int_t)pl.n_todo,
                           "placement", counts));
    } else if (rc < 0 && err->status != 503) { /* refused: no room; kept lost */
        hd_event(&cl->res->st->ev, "range.replace_failed", range,
                 json_pack("{ss ss ss}", "range", range, "field", err->field, "error",
                           err->msg));
        rc = 0;
    }
    json_decref(counts);
    free(yaml);
    plan_free(&pl);
    return rc;
}

/* ---- shared with cluster_view.c ---------------------------------------------- */

int hd_cluster_list(struct hd_cluster *cl, const char *prefix, struct etcd_kvs *kvs,
                    struct hd_err *err)
{
    if (etcd_range_prefix(cl->etcd_api, prefix, kvs, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    return 0;
}

/* This range's assignments: guest -> node. */
json_t *hd_cluster_range_assigned(const struct etcd_kvs *kvs, const char *name)
{
    char node[HD_NAME_MAX + 1], range[RANGE_NAME_MAX + 1], guest[HD_NAME_MAX + 1];
    json_t *a = json_object();

    for (size_t i = 0; i < kvs->n; i++)
        if (assign_parts(kvs->kv[i].key, node, range, guest) && !strcmp(range, name))
            json_object_set_new(a, guest, json_string(node));
    return a;
}

/* ---- range reset --------------------------------------------------------------------- */

/* The guests a reset names ({"vms": [...]} or NULL: all of assigned),
 * each a guest of the range, once. NULL with err (400) when sel is bad. */
static json_t *reset_names(const char *name, json_t *sel, json_t *assigned, struct hd_err *err)
{
    json_t *want = json_object_get(sel, "vms"), *names = json_array(), *v;
    const char *k;
    size_t i;

    json_object_foreach(sel, k, v)
        if (strcmp(k, "vms")) {
            json_decref(names);
            hd_fail(err, 400, k, "unknown field '%s' (reset takes \"vms\")", k);
            return NULL;
        }
    if (!want) {
        json_object_foreach(assigned, k, v)
            json_array_append_new(names, json_string(k));
        return names;
    }
    if (!json_is_array(want) || !json_array_size(want)) {
        json_decref(names);
        hd_fail(err, 400, "vms", "vms must be a non-empty array of the range's guest names");
        return NULL;
    }
    json_array_foreach(want, i, v) {
        const char *g = json_string_value(v);
        char field[32];
        snprintf(field, sizeof(field), "vms[%zu]", i);
        bool twice = false;
        for (size_t j = 0; g && j < i; j++)
            twice |= !strcmp(g, json_string_value(json_array_get(want, j)) ?: "");
        if (!g || !json_object_get(assigned, g) || twice) {
            json_decref(names);
            if (!g)
                hd_fail(err, 400, field, "a guest name (string) is expected");
            else if (twice)
                hd_fail(err, 400, field, "'%s' is named twice", g);
            else
                hd_fail(err, 400, field, "'%s' is not a guest of range '%s'", g, name);
            return NULL;
        }
        json_array_append(names, v);
    }
    return names;
}

/* Each named guest's assignment with its reset generation one up: its node
 * resets it (cluster_reconcile.c). */
static void bump_resets(struct batch *b, const struct etcd_kvs *kvs, const char *name,
                        json_t *names)
{
    char node[HD_NAME_MAX + 1], range[RANGE_NAME_MAX + 1], guest[HD_NAME_MAX + 1];
    json_t *set = json_object(), *v;
    size_t i;

    json_array_foreach(names, i, v)
        json_object_set_new(set, json_string_value(v), json_true());
    for (size_t n = 0; n < kvs->n; n++) {
        if (!assign_parts(kvs->kv[n].key, node, range, guest) || strcmp(range, name) ||
            !json_object_get(set, guest))
            continue;
        json_t *doc = json_loadb(kvs->kv[n].value, kvs->kv[n].value_len, 0, NULL);
        if (!json_is_object(doc)) {
            json_decref(doc);
            continue;
        }
        json_int_t gen = json_integer_value(json_object_get(doc, "reset"));
        json_object_set_new(doc, "reset", json_integer(gen > 0 ? gen + 1 : 1));
        batch_put(b, strdup(kvs->kv[n].key), json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS));
        json_decref(doc);
    }
    json_decref(set);
}

/* Is range name on the cluster: 0 yes, 1 no (or not in a cluster), -1
 * etcd failed (503 in err). */
static int cluster_range_known(struct hd_cluster *cl, const char *name, struct hd_err *err)
{
    struct etcd_kvs kvs;
    char key[256];

    if (!cl->etcd || range_name_check(name, RANGE_NAME_MAX))
        return 1;
    snprintf(key, sizeof(key), "%s%s", HD_CLUSTER_RANGES, name);
    if (etcd_get(cl->etcd_api, key, &kvs, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    bool exists = kvs.n > 0;
    etcd_kvs_free(&kvs);
    return exists ? 0 : 1;
}

int hd_cluster_range_reset(struct hd_cluster *cl, const char *name, json_t *sel, json_t **out,
                           struct hd_err *err)
{
    struct etcd_kvs kvs;
    struct placer p;

    int known = cluster_range_known(cl, name, err);
    if (known != 0)
        return known;
    if (placer_lock(cl, &p, err) < 0)
        return -1;
    if (hd_cluster_list(cl, HD_CLUSTER_ASSIGN, &kvs, err) < 0) {
        placer_unlock(cl, &p);
        return -1;
    }
    json_t *assigned = hd_cluster_range_assigned(&kvs, name);
    json_t *names = reset_names(name, sel, assigned, err);
    struct batch b = {.cl = cl, .p = &p, .err = err, .rc = names ? 0 : -1};
    if (names)
        bump_resets(&b, &kvs, name, names);
    batch_flush(&b);
    placer_unlock(cl, &p);
    etcd_kvs_free(&kvs);
    if (!b.rc) {
        *out = json_pack("{ss sI sO sb}", "name", name, "reset",
                         (json_int_t)json_array_size(names), "vms", names, "cluster", 1);
        hd_event(&cl->res->st->ev, "range.reset", name,
                 json_pack("{ss sI sb}", "range", name, "reset",
                           (json_int_t)json_array_size(names), "cluster", 1));
    }
    json_decref(names);
    json_decref(assigned);
    return b.rc;
}

/* ---- range down -------------------------------------------------------------------- */

int hd_cluster_range_down(struct hd_cluster *cl, const char *name, json_t **out,
                          struct hd_err *err)
{
    struct etcd_kvs kvs;
    struct placer p;
    char key[256];

    int known = cluster_range_known(cl, name, err);
    if (known != 0)
        return known;
    snprintf(key, sizeof(key), "%s%s", HD_CLUSTER_RANGES, name);
    memset(err, 0, sizeof(*err));
    if (placer_lock(cl, &p, err) < 0)
        return -1;
    if (hd_cluster_list(cl, HD_CLUSTER_ASSIGN, &kvs, err) < 0) {
        placer_unlock(cl, &p);
        return -1;
    }
    json_t *assigned = hd_cluster_range_assigned(&kvs, name), *nodes = json_object();
    etcd_kvs_free(&kvs);
    const char *g;
    json_t *v;
    json_object_foreach(assigned, g, v)
        json_object_set_new(nodes, json_string_value(v), json_true());
    struct batch b = {.cl = cl, .p = &p, .err = err};
    batch_del(&b, strdup(key), false);
    batch_del(&b, strf("%s%s/", HD_CLUSTER_STATUS, name), true);
    json_object_foreach(nodes, g, v)
        batch_del(&b, strf("%s%s/%s/", HD_CLUSTER_ASSIGN, g, name), true);
    json_t *seg_keys = hd_segments_down_keys(cl, name, err); /* its record and VNIs */
    size_t i;
    if (!seg_keys)
        b.rc = -1;
    json_array_foreach(seg_keys, i, v)
        batch_del(&b, strdup(json_string_value(v)), false);
    json_decref(seg_keys);
    batch_flush(&b);
    placer_unlock(cl, &p);
    if (!b.rc) {
        *out = json_pack("{ss sI sb}", "name", name, "removed",
                         (json_int_t)json_object_size(assigned), "cluster", 1);
        hd_event(&cl->res->st->ev, "range.down", name,
                 json_pack("{ss sI sb}", "range", name, "removed",
                           (json_int_t)json_object_size(assigned), "cluster", 1));
    }
    json_decref(assigned);
    json_decref(nodes);
    return b.rc;
}
