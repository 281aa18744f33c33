/* Segments of ranges on a cluster (docs/cluster.md "Segments across
 * nodes"). The placer gives each segment whose guests are on two nodes or
 * more a VNI, allocated in etcd (/herd/vni/N, created only if absent), and
 * writes the range's segments record (/herd/segments/RANGE: per segment its
 * VNI and the nodes hosting it, with their underlay addresses). Each node
 * makes the bridge of every segment its guests use (the name a node's own
 * range would get, hd_segment_bridge); with a VNI, a VXLAN uplink on it
 * (no default remote) whose all-zero FDB entries are the other nodes'
 * underlay addresses. A bridge no guest of the node wants any more goes,
 * with its VXLAN device and entries.
 *
 * Everything read from etcd is hostile: a record or VNI key that is not
 * what herd writes is logged and left out, never trusted. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herd/etcd.h"
#include "herd/netdev.h"
#include "herd/range_spec.h"
#include "cluster_segments.h"
#include "herdd.h"

#define VNI_TRIES 64     /* create-if-absent attempts before giving up */
#define PEERS_MAX 256    /* nodes hosting one segment */
#define RECORD_TTL_MS 1000 /* a record read this recently is used again */

static bool vni_ok(json_int_t v)
{
    return v >= HD_CLUSTER_VNI_FIRST && v <= HD_CLUSTER_VNI_LAST;
}

/* An underlay address: 1 (family set) or 0 when it is not one. */
static int addr_parse(const char *s, int *family, union netdev_inaddr *a)
{
    if (s && inet_pton(AF_INET, s, &a->v4) == 1) {
        *family = AF_INET;
        return 1;
    }
    if (s && inet_pton(AF_INET6, s, &a->v6) == 1) {
        *family = AF_INET6;
        return 1;
    }
    return 0;
}

/* ---- the placer ------------------------------------------------------------ */

/* /herd/vni/: VNI -> {range, segment} (valid values only; the others are
 * taken all the same: their keys are in used). */
struct vni_table {
    json_t *mine;  /* "ROLE/SEGMENT" -> VNI: this range's */
    json_t *keys;  /* every key of a VNI whose value names this range */
    json_t *used;  /* "N" -> true: every key under /herd/vni/ */
};

static void vni_free(struct vni_table *t)
{
    json_decref(t->mine);
    json_decref(t->keys);
    json_decref(t->used);
}

static int vni_load(struct hd_cluster *cl, const char *range, struct vni_table *t,
                    struct hd_err *err)
{
    struct etcd_kvs kvs;

    if (etcd_range_prefix(cl->etcd_api, HD_CLUSTER_VNI, &kvs, &err->lib) < 0)
        return hd_fail_lib(err, 503, err->lib.code, "cluster");
    t->mine = json_object();
    t->keys = json_array();
    t->used = json_object();
    for (size_t i = 0; i < kvs.n; i++) {
        const char *n = kvs.kv[i].key + strlen(HD_CLUSTER_VNI);
        char *end;
        unsigned long v = strtoul(n, &end, 10);
        json_object_set_new(t->used, n, json_true());
        json_t *doc = json_loadb(kvs.kv[i].value, kvs.kv[i].value_len, 0, NULL);
        const char *r = json_string_value(json_object_get(doc, "range"));
        const char *s = json_string_value(json_object_get(doc, "segment"));
        if (*n && !*end && vni_ok((json_int_t)v) && r && s && !strcmp(r, range)) {
            json_object_set_new(t->mine, s, json_integer((json_int_t)v));
            json_array_append_new(t->keys, json_string(kvs.kv[i].key));
        }
        json_decref(doc);
    }
    etcd_kvs_free(&kvs);
    return 0;
}

/* The lowest free VNI, created for (range, key) only if absent. */
static json_int_t vni_alloc(struct hd_cluster *cl, struct vni_table *t, const char *range,
                            const char *key, struct hd_err *err)
{
    char name[32], kbuf[64];
    uint32_t v = HD_CLUSTER_VNI_FIRST;
    json_t *doc = json_pack("{ss ss}", "range", range, "segment", key);
    char *val = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(doc);
    for (int tries = 0; val && tries < VNI_TRIES && v <= HD_CLUSTER_VNI_LAST; v++) {
        snprintf(name, sizeof(name), "%" PRIu32, v);
        if (json_object_get(t->used, name))
            continue;
        tries++;
        snprintf(kbuf, sizeof(kbuf), "%s%s", HD_CLUSTER_VNI, name);
        struct etcd_cmp cmp = {kbuf, ETCD_CREATE_REVISION, ETCD_EQUAL, 0};
        struct etcd_op put = {ETCD_OP_PUT, kbuf, val, strlen(val), 0, false};
        struct etcd_txn txn = {&cmp, 1, &put, NULL, 1, 0};
        bool done = false;
        if (etcd_txn(cl->etcd_api, &txn, &done, NULL, &err->lib) < 0) {
            free(val);
            return hd_fail_lib(err, 503, err->lib.code, "cluster");
        }
        json_object_set_new(t->used, name, json_true());
        if (done) {
            free(val);
            json_object_set_new(t->mine, key, json_integer(v));
            return v;
        }
    }
    free(val);
    return hd_fail(err, 503, "cluster", "no free VNI for segment %s of range %s (%u tried)",
                   key, range, VNI_TRIES);
}

/* The previous record's VNI and addresses (hostile: checked by the caller). */
static json_t *record_load(struct etcd *e, const char *range, struct hd_err *err)
{
    struct etcd_kvs kvs;
    char key[256];

    snprintf(key, sizeof(key), "%s%s", HD_CLUSTER_SEGMENTS, range);
    if (etcd_get(e, key, &kvs, &err->lib) < 0) {
        hd_fail_lib(err, 503, err->lib.code, "cluster");
        return NULL;
    }
    json_t *doc = kvs.n ? json_loadb(kvs.kv[0].value, kvs.kv[0].value_len, 0, NULL) : NULL;
    etcd_kvs_free(&kvs);
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = json_object();
    }
    return doc;
}

/* node -> its underlay address: the live profile's, else the old record's. */
static json_t *seg_addresses(json_t *nodes, json_t *profiles, json_t *old)
{
    json_t *out = json_object(), *v;
    const char *n;
    union netdev_inaddr a;
    int fam;

    json_object_foreach(nodes, n, v) {
        const char *addr = json_string_value(
            json_object_get(json_object_get(profiles, n), "address"));
        if (!addr_parse(addr, &fam, &a))
            addr = json_string_value(json_object_get(json_object_get(old, "nodes"), n));
        if (addr_parse(addr, &fam, &a))
            json_object_set_new(out, n, json_string(addr));
        else
            fprintf(stderr, "herdd: cluster: segments: node '%.63s' has no valid underlay "
                    "address: it is left out of the segment's VXLAN peers\n", n);
    }
    return out;
}

char *hd_segments_record(struct hd_cluster *cl, const char *range, json_t *seg_nodes,
                         json_t *profiles, struct hd_err *err)
{
    struct vni_table t = {NULL, NULL, NULL};
    json_t *old = record_load(cl->etcd_api, range, err), *rec = json_object(), *nodes;
    const char *key;
    int rc = old ? vni_load(cl, range, &t, err) : -1;

    json_object_foreach(seg_nodes, key, nodes) {
        if (rc < 0)
            break;
        json_t *was = json_object_get(old, key);
        /* the VNI key naming this range and segment is the one it has */
        json_int_t vni = json_integer_value(json_object_get(t.mine, key));
        if (!vni && json_object_size(nodes) >= 2)
            vni = vni_alloc(cl, &t, range, key, err);
        if (vni < 0) {
            rc = -1;
            break;
        }
        json_object_set_new(rec, key, json_pack("{sI so}", "vni", vni, "nodes",
                                                seg_addresses(nodes, profiles, was)));
    }
    char *s = rc < 0 ? NULL : json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(old);
    json_decref(rec);
    vni_free(&t);
    if (rc == 0 && !s)
        hd_fail(err, 500, "", "out of memory (segments)");
    return s;
}

json_t *hd_segments_down_keys(struct hd_cluster *cl, const char *range, struct hd_err *err)
{
    struct vni_table t = {NULL, NULL, NULL};
    char key[300];

    if (vni_load(cl, range, &t, err) < 0)
        return NULL;
    json_t *keys = json_incref(t.keys);
    snprintf(key, sizeof(key), "%s%s", HD_CLUSTER_SEGMENTS, range);
    json_array_insert_new(keys, 0, json_string(key));
    vni_free(&t);
    return keys;
}

json_t *hd_segments_view(struct hd_cluster *cl, const char *range)
{
    struct hd_err err = {0};
    json_t *rec = record_load(cl->etcd_api, range, &err), *out = json_object(), *v;
    const char *k;

    json_object_foreach(rec, k, v) { /* only what herd writes, checked */
        json_int_t vni = json_integer_value(json_object_get(v, "vni"));
        json_t *nodes = json_array(), *a;
        const char *n;
        json_object_foreach(json_object_get(v, "nodes"), n, a) {
            union netdev_inaddr ad;
            int fam;
            if (hd_name_ok(n) && addr_parse(json_string_value(a), &fam, &ad))
                json_array_append_new(nodes, json_string(n));
        }
        json_object_set_new(out, k, json_pack("{sI so}", "vni", vni_ok(vni) ? vni : 0,
                                               "nodes", nodes));
    }
    json_decref(rec);
    return out;
}

/* ---- each node ---------------------------------------------------------------- */

struct hd_segs {
    struct hd_cluster *cl;
    struct netdev_nl *nl;
    char file[4200];     /* STATE/cluster-segments.json */
    json_t *applied;     /* bridge -> {range, key, vni, peers: [ADDRESS]}; stale: true for
                          * those a herdd that ran before made */
    json_t *records;     /* range -> {doc, ms}: records read lately */
    json_t *logged;      /* bridge -> the last message logged about it */
    int family;          /* this node's underlay address */
    union netdev_inaddr local;
};

static void segs_log(struct hd_segs *s, const char *bridge, const char *msg)
{
    const char *was = json_string_value(json_object_get(s->logged, bridge));

    if (was && !strcmp(was, msg))
        return;
    json_object_set_new(s->logged, bridge, json_string(msg));
    fprintf(stderr, "herdd: cluster: segment bridge %s: %s\n", bridge, msg);
}

static void segs_save(struct hd_segs *s)
{
    char tmp[4300];

    snprintf(tmp, sizeof(tmp), "%s.tmp", s->file);
    if (json_dump_file(s->applied, tmp, JSON_COMPACT | JSON_SORT_KEYS) == 0)
        rename(tmp, s->file);
    else
        fprintf(stderr, "herdd: cluster: segments: cannot write %s\n", tmp);
}

struct hd_segs *hd_segs_open(struct hd_cluster *cl)
{
    struct hd_segs *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->cl = cl;
    snprintf(s->file, sizeof(s->file), "%s/cluster-segments.json", cl->cfg->state_dir);
    s->records = json_object();
    s->logged = json_object();
    s->applied = json_object();
    addr_parse(cl->cfg->cluster_address, &s->family, &s->local);
    json_t *was = json_load_file(s->file, 0, NULL);
    const char *b;
    json_t *v;
    json_object_foreach(was, b, v) /* only names netdev could have made */
        if (json_is_object(v) && !strncmp(b, "hs", 2) && netdev_name_check(b) == 0)
            json_object_set_new(s->applied, b, json_pack("{sb sI}", "stale", 1, "vni",
                                                         json_integer_value(json_object_get(
                                                             v, "vni"))));
    json_decref(was);
    return s;
}

void hd_segs_close(struct hd_segs *s)
{
    if (!s)
        return;
    if (s->nl)
        netdev_nl_close(s->nl);
    json_decref(s->applied);
    json_decref(s->records);
    json_decref(s->logged);
    free(s);
}

/* The range's record, read again when older than RECORD_TTL_MS. NULL:
 * etcd could not be read (err). */
static json_t *segs_record(struct hd_segs *s, const char *range, struct hd_err *err)
{
    json_t *c = json_object_get(s->records, range);
    int64_t now = hd_mono_ns() / 1000000;

    if (c && now - json_integer_value(json_object_get(c, "ms")) < RECORD_TTL_MS)
        return json_object_get(c, "doc");
    json_t *doc = record_load(s->cl->etcd_rec, range, err);
    if (!doc)
        return NULL;
    json_object_set_new(s->records, range, json_pack("{so sI}", "doc", doc, "ms",
                                                     (json_int_t)now));
    return doc;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* jansson has no sort: peers are kept sorted, so that two lists compare. */
static void peers_sort(json_t *a)
{
    size_t n = json_array_size(a);
    json_t **v = calloc(n + 1, sizeof(*v));

    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(a, i));
    qsort(v, n, sizeof(*v), str_cmp);
    json_array_clear(a);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, v[i]);
    free(v);
}

/* One segment as the record has it: VNI (0: none) and the other nodes'
 * addresses (sorted, this node's family only). */
static json_t *seg_want(struct hd_segs *s, json_t *rec, const char *bridge)
{
    json_int_t vni = json_integer_value(json_object_get(rec, "vni"));
    json_t *nodes = json_object_get(rec, "nodes"), *peers = json_array(), *v;
    const char *n;

    if (!vni_ok(vni)) {
        if (vni)
            segs_log(s, bridge, "the range's segments record has a VNI out of range: no VXLAN");
        vni = 0;
    }
    json_object_foreach(nodes, n, v) {
        union netdev_inaddr a;
        int fam;
        if (!strcmp(n, s->cl->cfg->node_name))
            continue;
        if (!addr_parse(json_string_value(v), &fam, &a) || fam != s->family) {
            segs_log(s, bridge, "a node's underlay address in the segments record is not an "
                     "address of this node's family: that node is left out");
            continue;
        }
        char text[INET6_ADDRSTRLEN];
        inet_ntop(fam, &a, text, sizeof(text)); /* canonical */
        json_array_append_new(peers, json_string(text));
    }
    peers_sort(peers);
    return json_pack("{sI so}", "vni", vni, "peers", peers);
}

/* The bridge's configuration: parent role's MTU; the VXLAN device (vni). */
static int seg_cfg(struct hd_segs *s, const char *range, enum netdev_role role, const char *seg,
                   json_int_t vni, struct netdev_bridge_cfg *b)
{
    const struct hd_config *cfg = s->cl->cfg;
    const struct netdev_bridge_cfg *parent = netdev_config_find(&cfg->net, role, "");

    memset(b, 0, sizeof(*b));
    if (!parent || hd_segment_bridge(cfg, range, role, seg, b->name) < 0)
        return -ENOENT;
    b->role = role;
    snprintf(b->segment, sizeof(b->segment), "%s", seg);
    snprintf(b->field, sizeof(b->field), "segment %s/%s", netdev_role_name(role), seg);
    b->mtu = parent->mtu;
    if (vni) {
        struct netdev_vxlan_cfg *vx = &b->vxlan;
        vx->enabled = true;
        vx->vni = (uint32_t)vni;
        vx->family = s->family;
        vx->local = s->local;
        vx->port = NETDEV_VXLAN_PORT;
        netdev_vxlan_name(vx->name, vx->vni);
    }
    return 0;
}

static int peers_apply(struct hd_segs *s, const char *vxname, json_t *peers, struct herd_err *e)
{
    union netdev_inaddr a[PEERS_MAX];
    size_t n = 0, i;
    json_t *v;
    int fam;

    json_array_foreach(peers, i, v)
        if (n < PEERS_MAX && addr_parse(json_string_value(v), &fam, &a[n]))
            n++;
    return netdev_vxlan_peers_set(s->nl, vxname, s->family, a, n, e);
}

/* The segment's bridge as want says: made (with its VXLAN device), peers
 * set, when it differs from what was applied or a link went missing. */
static int seg_apply(struct hd_segs *s, const char *range, enum netdev_role role, const char *seg,
                     json_t *want, struct hd_err *err)
{
    struct netdev_bridge_cfg b;
    json_int_t vni = json_integer_value(json_object_get(want, "vni"));
    struct herd_err e;
    int rc;

    if (seg_cfg(s, range, role, seg, vni, &b) < 0)
        return hd_fail(err, 409, "nics", "segment %s: role %s has no bridge here", seg,
                       netdev_role_name(role));
    json_t *had = json_object_get(s->applied, b.name);
    json_int_t had_vni = json_integer_value(json_object_get(had, "vni"));
    if (had && !json_is_true(json_object_get(had, "stale")) && had_vni == vni &&
        json_equal(json_object_get(had, "peers"), json_object_get(want, "peers")) &&
        if_nametoindex(b.name) && (!vni || if_nametoindex(b.vxlan.name)))
        return 0;
    if (had && had_vni && had_vni != vni) {
        segs_log(s, b.name, "its VNI changed in the range's record: the bridge keeps its "
                 "VXLAN device until no guest uses it");
        return 0;
    }
    if (!s->nl && (rc = netdev_nl_open(&s->nl)) < 0)
        return hd_fail(err, 500, "", "netlink: %s", strerror(-rc));
    herd_err_clear(&e);
    rc = netdev_bridge_setup(s->nl, &b, &e);
    bool made = rc == 0; /* (a failed setup made nothing: netdev rolled it back) */
    if (made && vni)
        rc = peers_apply(s, b.vxlan.name, json_object_get(want, "peers"), &e);
    if (made) { /* noted before anything else: so that it is removed in the end */
        json_t *rec = json_pack("{ss sI sO}", "range", range, "vni", vni, "peers",
                                rc ? json_null() : json_object_get(want, "peers"));
        json_object_set_new(rec, "segment", json_sprintf("%s/%s", netdev_role_name(role), seg));
        json_object_set_new(s->applied, b.name, rec);
        segs_save(s);
    }
    if (rc < 0) {
        segs_log(s, b.name, e.msg[0] ? e.msg : strerror(-rc));
        return hd_fail(err, 409, "nics", "segment bridge %s: %s", b.name,
                       e.msg[0] ? e.msg : strerror(-rc));
    }
    json_object_del(s->logged, b.name);
    return 0;
}

/* Calls fn for each NIC of the assignment doc with a valid segment. */
static int each_segment(json_t *doc, int (*fn)(void *, const char *, enum netdev_role,
                                                const char *),
                        void *arg)
{
    const char *range = json_string_value(json_object_get(doc, "range"));
    json_t *nics = json_object_get(json_object_get(doc, "body"), "nics"), *nic;
    size_t i;
    int rc = 0;

    json_array_foreach(nics, i, nic) {
        const char *net = json_string_value(json_object_get(nic, "network"));
        const char *seg = json_string_value(json_object_get(nic, "segment"));
        enum netdev_role role;
        if (!range || !net || !seg || netdev_role_parse(net, &role) < 0 ||
            netdev_ident_check(seg) < 0)
            continue; /* vm create refuses it, naming the field */
        if ((rc = fn(arg, range, role, seg)) < 0)
            break;
    }
    return rc;
}

struct guest_ctx {
    struct hd_segs *s;
    struct hd_err *err;
    json_t *wanted; /* sync: bridge -> true */
};

static int ensure_one(void *arg, const char *range, enum netdev_role role, const char *seg)
{
    struct guest_ctx *g = arg;
    char key[96], bridge[IFNAMSIZ] = "";
    if (g->wanted && hd_segment_bridge(g->s->cl->cfg, range, role, seg, bridge) == 0) {
        if (json_object_get(g->wanted, bridge))
            return 0; /* another guest's NIC brought it to the record this sync */
        json_object_set_new(g->wanted, bridge, json_true());
    }
    json_t *doc = segs_record(g->s, range, g->err);
    if (!doc)
        return hd_fail(g->err, 503, "cluster", "segment %s: the range's segments record "
                       "cannot be read: %s", seg, g->err->msg);
    snprintf(key, sizeof(key), "%s/%s", netdev_role_name(role), seg);
    if (!g->wanted) /* (sync set it above) */
        hd_segment_bridge(g->s->cl->cfg, range, role, seg, bridge);
    json_t *want = seg_want(g->s, json_object_get(doc, key), bridge);
    int rc = seg_apply(g->s, range, role, seg, want, g->err);
    json_decref(want);
    return rc;
}

/* A range of the node's own with the cluster range's name has the same
 * segment bridges: they are not joined. */
static int own_range(struct hd_segs *s, json_t *doc, struct hd_err *err)
{
    struct hd_store *st = s->cl->res->st;
    const char *range = json_string_value(json_object_get(doc, "range"));

    if (!range)
        return 0;
    pthread_mutex_lock(&st->mu);
    json_t *rec = hd_db_ranges(st, range);
    pthread_mutex_unlock(&st->mu);
    json_decref(rec);
    if (!rec)
        return 0;
    return hd_fail(err, 409, "range", "range '%s' is also a range of this node's own: the "
                   "cluster's guests of it cannot share its segment bridges", range);
}

int hd_segs_guest(struct hd_segs *s, json_t *doc, struct hd_err *err)
{
    struct guest_ctx g = {s, err, NULL};

    if (!s)
        return 0;
    return own_range(s, doc, err) < 0 ? -1 : each_segment(doc, ensure_one, &g);
}

/* A bridge no guest wants: removed with its VXLAN device (and so its FDB). */
static void seg_remove(struct hd_segs *s, const char *bridge, json_t *had)
{
    struct netdev_bridge_cfg b;
    struct herd_err e;
    json_int_t vni = json_integer_value(json_object_get(had, "vni"));

    memset(&b, 0, sizeof(b));
    snprintf(b.name, sizeof(b.name), "%s", bridge);
    snprintf(b.field, sizeof(b.field), "segment bridge %s", bridge);
    if (vni_ok(vni)) {
        b.vxlan.enabled = true;
        b.vxlan.vni = (uint32_t)vni;
        netdev_vxlan_name(b.vxlan.name, b.vxlan.vni);
    }
    herd_err_clear(&e);
    if ((s->nl || netdev_nl_open(&s->nl) == 0) && netdev_bridge_teardown(s->nl, &b, &e) < 0)
        segs_log(s, bridge, e.msg);
}

void hd_segs_sync(struct hd_segs *s, json_t *desired, bool may_remove)
{
    struct guest_ctx g = {s, NULL, json_object()};
    struct hd_err err;
    json_t *v;
    const char *k;
    void *tmp;

    if (!s)
        return;
    json_object_clear(s->records); /* each sync reads the records again */
    json_object_foreach(desired, k, v) {
        memset(&err, 0, sizeof(err));
        g.err = &err;
        if (own_range(s, v, &err) == 0) /* (else: the guest is refused, not made) */
            each_segment(v, ensure_one, &g);
    }
    bool changed = false;
    json_object_foreach_safe(s->applied, tmp, k, v) {
        if (!may_remove || json_object_get(g.wanted, k))
            continue;
        seg_remove(s, k, v);
        json_object_del(s->logged, k);
        json_object_del(s->applied, k);
        changed = true;
    }
    if (changed)
        segs_save(s);
    json_decref(g.wanted);
}
