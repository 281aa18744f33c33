/* Ranges on a cluster as any node sees them (docs/cluster.md "Lost
 * nodes", "List, reset, down"): `range status` of a range on the cluster
 * from its assignments, its nodes' reports (hostile: only fields of the
 * right type are shown) and the registered nodes (a guest of a node that
 * is gone is lost); `range ls` with the cluster's ranges. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "herd/etcd.h"
#include "herd/range_spec.h"
#include "cluster_range.h"
#include "cluster_segments.h"
#include "herdd.h"

/* A field of a node's status document, if it has the type wanted. */
static void copy_typed(json_t *to, json_t *from, const char *k, json_type type)
{
    json_t *v = json_object_get(from, k);
    if (v && json_typeof(v) == type)
        json_object_set(to, k, v);
}

/* One guest's row: what its node reported (only fields of the right type:
 * the document is etcd's, so hostile), else "assigned"; lost when its node
 * is not registered. */
static json_t *guest_row(const char *guest, const char *node, json_t *st, json_t *nodes)
{
    json_t *o = json_pack("{ss ss ss sb ss}", "name", guest, "node", node, "state", "assigned",
                          "ready", 0, "note", "not created yet");
    const char *by = json_string_value(json_object_get(st, "node"));
    bool lost = !json_object_get(nodes, node);

    if (json_is_object(st) && by && !strcmp(by, node)) { /* a report of its node's */
        static const struct {
            const char *k;
            json_type t;
        } f[] = {{"state", JSON_STRING},   {"note", JSON_STRING},    {"template", JSON_STRING},
                 {"pid", JSON_INTEGER},    {"cpus", JSON_INTEGER},   {"mem", JSON_INTEGER},
                 {"restarts", JSON_INTEGER}, {"reset", JSON_INTEGER}, {"nics", JSON_ARRAY}};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
            copy_typed(o, st, f[i].k, f[i].t);
        json_object_set_new(o, "ready", json_boolean(json_is_true(json_object_get(st, "ready"))));
    }
    json_object_set_new(o, "lost", json_boolean(lost));
    if (lost) {
        json_object_set(o, "node_state", json_object_get(o, "state"));
        json_object_set_new(o, "state", json_string("lost"));
        json_object_set_new(o, "ready", json_false());
        json_object_set_new(o, "note", json_pack("s++", "node ", node,
                                                 " is gone (it stopped, or its lease expired)"));
    }
    return o;
}

static void count(json_t *r, const char *k)
{
    json_object_set_new(r, k, json_integer(json_integer_value(json_object_get(r, k)) + 1));
}

static json_t *status_doc(const char *name, json_t *doc, json_t *assigned, json_t *stats,
                          json_t *nodes)
{
    json_t *r = json_pack("{ss sb sI}", "name", name, "cluster", 1, "guests",
                          json_integer_value(json_object_get(doc, "guests")));
    json_t *vms = json_array(), *per = json_object();
    const char *g;
    json_t *v;

    json_t *placement = json_object_get(doc, "placement");
    json_object_set_new(r, "placement", json_is_object(placement) ? json_deep_copy(placement)
                                                                  : json_object());
    for (const char *const *k = (const char *const[]){"existing", "running", "ready", "failed",
                                                      "lost", "not_started", NULL};
         *k; k++)
        json_object_set_new(r, *k, json_integer(0));
    json_object_foreach(assigned, g, v) {
        json_t *row = guest_row(g, json_string_value(v), json_object_get(stats, g), nodes);
        const char *s = json_string_value(json_object_get(row, "state"));
        bool lost = json_is_true(json_object_get(row, "lost"));
        if (strcmp(s, "assigned") && !lost)
            count(r, "existing");
        if (!lost && json_integer_value(json_object_get(row, "pid")) > 0)
            count(r, "running");
        if (json_is_true(json_object_get(row, "ready")))
            count(r, "ready");
        if (!strcmp(s, "exited") || !strcmp(s, "error"))
            count(r, "failed");
        if (lost)
            count(r, "lost");
        if (!strcmp(s, "assigned") || !strcmp(s, "created"))
            count(r, "not_started");
        json_array_append_new(vms, row);
        json_t *pn = json_object_get(per, json_string_value(v));
        if (!pn)
            json_object_set_new(per, json_string_value(v),
                                pn = json_pack("{sb si si}", "registered",
                                               json_object_get(nodes, json_string_value(v)) != NULL,
                                               "guests", 0, "ready", 0));
        count(pn, "guests");
        if (json_is_true(json_object_get(row, "ready")))
            count(pn, "ready");
    }
    json_int_t total = json_integer_value(json_object_get(r, "guests"));
    json_int_t ready = json_integer_value(json_object_get(r, "ready"));
    json_int_t lost = json_integer_value(json_object_get(r, "lost"));
    json_object_set_new(r, "state", json_string(lost ? "degraded"
                                                : ready == total ? "up"
                                                : json_integer_value(json_object_get(r, "failed"))
                                                    ? "degraded"
                                                    : "starting"));
    json_object_set_new(r, "nodes", per);
    json_object_set_new(r, "vms", vms);
    return r;
}

json_t *hd_cluster_range_status(struct hd_cluster *cl, const char *name, struct hd_err *err)
{
    struct etcd_kvs rk, ak, sk, nk;
    char key[256];

    if (!cl->etcd || range_name_check(name, RANGE_NAME_MAX))
        return NULL;
    snprintf(key, sizeof(key), "%s%s", HD_CLUSTER_RANGES, name);
    if (etcd_get(cl->etcd_api, key, &rk, &err->lib) < 0) {
        hd_fail_lib(err, 503, err->lib.code, "cluster");
        return NULL;
    }
    json_t *doc = rk.n ? json_loadb(rk.kv[0].value, rk.kv[0].value_len, 0, NULL) : NULL;
    etcd_kvs_free(&rk);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    snprintf(key, sizeof(key), "%s%s/", HD_CLUSTER_STATUS, name);
    memset(&ak, 0, sizeof(ak));
    memset(&sk, 0, sizeof(sk));
    memset(&nk, 0, sizeof(nk));
    if (hd_cluster_list(cl, HD_CLUSTER_ASSIGN, &ak, err) < 0 || hd_cluster_list(cl, key, &sk, err) < 0 ||
        hd_cluster_list(cl, HD_CLUSTER_NODES, &nk, err) < 0) {
        etcd_kvs_free(&ak);
        etcd_kvs_free(&sk);
        etcd_kvs_free(&nk);
        json_decref(doc);
        return NULL;
    }
    json_t *assigned = hd_cluster_range_assigned(&ak, name), *stats = json_object(), *nodes = json_object();
    for (size_t i = 0; i < sk.n; i++)
        json_object_set_new(stats, sk.kv[i].key + strlen(key),
                            json_loadb(sk.kv[i].value, sk.kv[i].value_len, 0, NULL));
    for (size_t i = 0; i < nk.n; i++)
        json_object_set_new(nodes, nk.kv[i].key + strlen(HD_CLUSTER_NODES), json_true());
    json_t *r = status_doc(name, doc, assigned, stats, nodes);
    json_object_set_new(r, "segments", hd_segments_view(cl, name)); /* their VNIs */
    etcd_kvs_free(&ak);
    etcd_kvs_free(&sk);
    etcd_kvs_free(&nk);
    json_decref(doc);
    json_decref(assigned);
    json_decref(stats);
    json_decref(nodes);
    return r;
}

/* One range of the cluster's for `range ls`: its counts, no guests. */
static void list_one(json_t *list, const struct etcd_kv *kv, const struct etcd_kvs *ak,
                     const struct etcd_kvs *sk, json_t *nodes)
{
    const char *name = kv->key + strlen(HD_CLUSTER_RANGES);
    char prefix[256];
    json_t *doc;

    if (range_name_check(name, RANGE_NAME_MAX))
        return;
    doc = json_loadb(kv->value, kv->value_len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    snprintf(prefix, sizeof(prefix), "%s%s/", HD_CLUSTER_STATUS, name);
    json_t *assigned = hd_cluster_range_assigned(ak, name), *stats = json_object();
    for (size_t i = 0; i < sk->n; i++)
        if (!strncmp(sk->kv[i].key, prefix, strlen(prefix)))
            json_object_set_new(stats, sk->kv[i].key + strlen(prefix),
                                json_loadb(sk->kv[i].value, sk->kv[i].value_len, 0, NULL));
    json_t *r = status_doc(name, doc, assigned, stats, nodes);
    json_object_del(r, "vms");
    json_array_append_new(list, r);
    json_decref(doc);
    json_decref(assigned);
    json_decref(stats);
}

/* Every range on the cluster, as `range ls` shows a range: appended to
 * list (the node's own ranges). Nothing appended when not in a cluster,
 * not registered or etcd cannot be read (the node's own list does not
 * depend on etcd). */
void hd_cluster_range_list(struct hd_cluster *cl, json_t *list)
{
    struct etcd_kvs rk, ak, sk, nk;
    struct hd_err err = {0};

    if (!cl->etcd || !json_is_array(list))
        return;
    pthread_mutex_lock(&cl->mu);
    bool registered = cl->registered;
    pthread_mutex_unlock(&cl->mu);
    if (!registered) /* etcd is away: the node's own list is not held up by it */
        return;
    memset(&rk, 0, sizeof(rk));
    memset(&ak, 0, sizeof(ak));
    memset(&sk, 0, sizeof(sk));
    memset(&nk, 0, sizeof(nk));
    if (hd_cluster_list(cl, HD_CLUSTER_RANGES, &rk, &err) == 0 && hd_cluster_list(cl, HD_CLUSTER_ASSIGN, &ak, &err) == 0 &&
        hd_cluster_list(cl, HD_CLUSTER_STATUS, &sk, &err) == 0 && hd_cluster_list(cl, HD_CLUSTER_NODES, &nk, &err) == 0) {
        json_t *nodes = json_object();
        for (size_t i = 0; i < nk.n; i++)
            json_object_set_new(nodes, nk.kv[i].key + strlen(HD_CLUSTER_NODES), json_true());
        for (size_t i = 0; i < rk.n; i++)
            list_one(list, &rk.kv[i], &ak, &sk, nodes);
        json_decref(nodes);
    }
    etcd_kvs_free(&rk);
    etcd_kvs_free(&ak);
    etcd_kvs_free(&sk);
    etcd_kvs_free(&nk);
}
