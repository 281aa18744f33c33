/* The node's side of ranges on a cluster (docs/cluster.md "Reconcile"): a
 * thread that lists this node's assignments (/herd/assign/NODE/), makes
 * its guests match them (creates and starts the missing, resets those
 * whose reset generation went up, removes the cluster guests no longer
 * assigned), writes each guest's status back
 * (/herd/status/RANGE/GUEST), then watches the prefix from the listed
 * revision. A watch that ends (compaction, etcd restarted, the network)
 * is followed by a new list: whatever happened meanwhile converges, and
 * nothing is created twice (a guest is created only when this node has
 * none of its name). It also notices nodes whose lease expired and
 * announces their guests as lost (range.lost, range.found); for ranges
 * with on_node_loss: replace the first live node by name has them placed
 * anew (cluster_range.c). The bridges of its guests' segments, with their
 * VXLAN uplinks, are cluster_segments.c's (made before a guest is created
 * or started, kept to the range's segments record each tick).
 *
 * Every assignment is hostile input: its key must be
 * /herd/assign/NODE/RANGE/GUEST with valid names, its value a JSON object
 * whose body names GUEST; a bad one is logged and skipped. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd/capacity.h"
#include "herd/etcd.h"
#include "herd/range_spec.h"
#include "cluster_segments.h"
#include "herdd.h"

#define TICK_MS 1000       /* status write-back and the node check, at most this often */
#define RETRY_MS 1000      /* after a failed list or a watch that ended */
#define LOG_EVERY_MS 60000 /* the same trouble is logged this often */
#define RELIST 2           /* on_watch: end the watch and list again */

struct rec {
    struct hd_cluster *cl;
    struct hd_guests *gs;
    char prefix[sizeof(HD_CLUSTER_ASSIGN) + HD_NAME_MAX + 1];
    json_t *desired;      /* guest -> its assignment {range, guest, node, body, ...} */
    json_t *written;      /* guest -> the status text last written */
    json_t *errors;       /* guest -> why its create or start failed */
    json_t *applied;      /* guest -> the reset generation it was last reset to */
    json_t *waiting;      /* guest -> why it is not made yet (its template's copy) */
    json_t *nodes;        /* registered node names (the last node check); NULL: none yet */
    json_t *replace;      /* ranges that had guests on a node that left: to place anew
                           * (on_node_loss: replace) by the first node by name */
    int64_t rev;          /* revision the assignments are known at */
    int64_t max_rev;      /* the highest revision seen (a lower one: etcd lost its data) */
    bool untrusted;       /* the last list went back and was empty: removals wait */
    int64_t tick_ms;
    int64_t logged_ms;
    char logged_what[80]; /* what was logged then (the same is not again for a while) */
    struct hd_segs *segs; /* the segment bridges (cluster_segments.c) */
};

static int64_t now_ms(void)
{
    return hd_mono_ns() / 1000000;
}

/* Trouble that goes on is logged once a minute, not once a second: the
 * same `what` again within LOG_EVERY_MS is only in cluster status. Nothing
 * is logged while the node is not registered (etcd cannot be reached or
 * refuses it: the registration's log line says so already). */
static void rec_log(struct rec *r, const char *what, const char *msg)
{
    int64_t t = now_ms();

    pthread_mutex_lock(&r->cl->mu);
    snprintf(r->cl->rec_error, sizeof(r->cl->rec_error), "%s: %s", what, msg);
    bool registered = r->cl->registered;
    pthread_mutex_unlock(&r->cl->mu);
    if (!registered) /* etcd's trouble: the registration's log line has it */
        return;
    if (r->logged_ms && t - r->logged_ms < LOG_EVERY_MS && !strcmp(r->logged_what, what))
        return;
    r->logged_ms = t;
    snprintf(r->logged_what, sizeof(r->logged_what), "%s", what);
    fprintf(stderr, "herdd: cluster: reconcile: %s: %s\n", what, msg);
}

static bool stopping(struct hd_cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    bool s = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    return s || cl->res->st->stopping;
}

/* ---- assignments ---------------------------------------------------------- */

/* /herd/assign/NODE/RANGE/GUEST -> range and guest (checked names). */
static bool split_key(const struct rec *r, const char *key, char *range, char *guest)
{
    size_t pl = strlen(r->prefix);
    const char *rest = key + pl, *slash;

    if (strncmp(key, r->prefix, pl) || !(slash = strchr(rest, '/')))
        return false;
    size_t rl = (size_t)(slash - rest);
    if (!rl || rl > RANGE_NAME_MAX || strlen(slash + 1) > HD_NAME_MAX)
        return false;
    memcpy(range, rest, rl);
    range[rl] = 0;
    strcpy(guest, slash + 1);
    return range_name_check(range, RANGE_NAME_MAX) == 0 && hd_name_ok(guest) &&
           !strncmp(guest, range, rl) && guest[rl] == '-';
}

/* The assignment in kv, checked; NULL (logged) when it is not one. */
static json_t *parse_assignment(struct rec *r, const struct etcd_kv *kv, char *guest)
{
    char range[RANGE_NAME_MAX + 1];
    json_t *doc;

    if (!split_key(r, kv->key, range, guest)) {
        rec_log(r, "assignment", "a key under the node's prefix is not RANGE/GUEST: skipped");
        return NULL;
    }
    doc = json_loadb(kv->value, kv->value_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *body = json_object_get(doc, "body");
    const char *bname = json_string_value(json_object_get(body, "name"));
    const char *drange = json_string_value(json_object_get(doc, "range"));
    if (!json_is_object(doc) || !json_is_object(body) || !bname || strcmp(bname, guest) ||
        !drange || strcmp(drange, range)) {
        json_decref(doc);
        rec_log(r, guest, "its assignment is not {range, body: {name, ...}} for its key: skipped");
        return NULL;
    }
    return doc;
}

/* The names in desired, for the profile (published whole: readers hold a
 * reference, never a lock while they use it). */
static void publish(struct rec *r)
{
    json_t *names = json_object(), *old;
    const char *k;
    json_t *v;

    json_object_foreach(r->desired, k, v)
        json_object_set_new(names, k, json_true());
    pthread_mutex_lock(&r->cl->mu);
    old = r->cl->assigned;
    r->cl->assigned = names;
    r->cl->rec_revision = r->rev;
    r->cl->written_ms = 0; /* the profile's `cluster` may change: due at the next tick */
    pthread_mutex_unlock(&r->cl->mu);
    json_decref(old);
}

/* ---- guests ----------------------------------------------------------------- */

/* A cluster guest: of a range this node has no record of (its ranges of
 * its own have one). Store lock held. */
static bool cluster_guest(struct hd_store *st, const struct hd_vm *vm)
{
    if (!vm->range[0])
        return false;
    json_t *rec = hd_db_ranges(st, vm->range);
    json_decref(rec);
    return rec == NULL;
}

/* The assignment's reset generation (range reset bumps it; 0: none). */
static json_int_t reset_gen(json_t *doc)
{
    json_int_t g = json_integer_value(json_object_get(doc, "reset"));
    return g > 0 ? g : 0;
}

/* The guest's template on this node (a copy of another node's fetched and
 * checked first: cluster_images.c): 0 ready, 1 not yet (r->waiting says
 * why, in its status), -1 refused (err). */
static int template_ready(struct rec *r, const char *guest, json_t *doc, struct hd_err *err)
{
    json_t *body = json_object_get(doc, "body");
    const char *tmpl = json_string_value(json_object_get(body, "template"));
    char note[600] = "";
    int rc = tmpl ? hd_images_ready(r->cl, tmpl, note, sizeof(note), err) : 0;

    if (rc > 0)
        json_object_set_new(r->waiting, guest, json_string(note));
    else
        json_object_del(r->waiting, guest);
    return rc;
}

/* The guest as its assignment wants it: created and started when this node
 * has none of its name; started when it was created and never started;
 * reset when its assignment's reset generation is past the one it was
 * last reset to (unknown: taken as reached, so nothing is reset twice). */
static void converge_one(struct rec *r, const char *guest, json_t *doc)
{
    struct hd_store *st = r->gs->st;
    const char *range = json_string_value(json_object_get(doc, "range"));
    json_int_t gen = reset_gen(doc);
    json_t *seen = json_object_get(r->applied, guest);
    struct hd_err err = {0};
    json_t *out = NULL;
    int rc = 0;

    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, guest);
    bool exists = vm != NULL, other = vm && (strcmp(vm->range, range) || !cluster_guest(st, vm));
    bool start = vm && !vm->busy && !strcmp(vm->state, "created");
    pthread_mutex_unlock(&st->mu);
    int ready = exists || other ? 0 : template_ready(r, guest, doc, &err);
    if (ready > 0)
        return; /* made once its template's copy is (recreate_missing) */
    if (ready < 0) {
        rc = -1; /* err: why its template's copy was refused */
    } else if (other) {
        rc = hd_fail(&err, 409, "name", "guest name %s is taken on this node by a guest that "
                     "is not of the cluster's range %s", guest, range);
    } else if ((!exists || start || (seen && json_integer_value(seen) < gen)) &&
               hd_segs_guest(r->segs, doc, &err) < 0) {
        rc = -1; /* its segment bridges could not be made: not created or started */
    } else if (!exists) {
        json_t *body = json_deep_copy(json_object_get(doc, "body"));
        json_object_set_new(body, "start", json_true());
        rc = hd_vm_create(r->gs, body, range, NULL, &out, &err);
        json_decref(body);
    } else if (seen && json_integer_value(seen) < gen) {
        rc = hd_vm_reset(r->gs, guest, &err);
    } else if (start) {
        rc = hd_vm_action(r->gs, guest, "start", NULL, &out, &err);
    }
    if (!other && (rc == 0 || !seen)) /* a fresh guest, a reset done, or unknown */
        json_object_set_new(r->applied, guest, json_integer(gen));
    json_decref(out);
    if (rc < 0) {
        json_object_set_new(r->errors, guest, json_string(err.msg));
        hd_event(&st->ev, "range.failed_guest", guest,
                 json_pack("{ss ss si}", "range", range, "error", err.msg, "status", err.status));
    } else {
        json_object_del(r->errors, guest);
    }
}

static void status_key(char *out, size_t size, const char *range, const char *guest)
{
    snprintf(out, size, "%s%s/%s", HD_CLUSTER_STATUS, range, guest);
}

/* The guest's status, if this node wrote it: a guest placed anew on
 * another node (on_node_loss: replace) has that node's status under the
 * same key. Deleted only if unchanged since it was read. */
static void delete_status(struct rec *r, const char *key)
{
    struct etcd_kvs kvs;
    struct herd_err err;
    bool done;

    if (etcd_get(r->cl->etcd_rec, key, &kvs, &err) < 0)
        return;
    json_t *doc = kvs.n ? json_loadb(kvs.kv[0].value, kvs.kv[0].value_len, 0, NULL) : NULL;
    const char *node = json_string_value(json_object_get(doc, "node"));
    if (node && !strcmp(node, r->cl->cfg->node_name)) {
        struct etcd_cmp cmp = {key, ETCD_MOD_REVISION, ETCD_EQUAL, kvs.kv[0].mod_revision};
        struct etcd_op del = {ETCD_OP_DELETE, key, NULL, 0, 0, false};
        struct etcd_txn t = {&cmp, 1, &del, NULL, 1, 0};
        etcd_txn(r->cl->etcd_rec, &t, &done, NULL, &err);
    }
    json_decref(doc);
    etcd_kvs_free(&kvs);
}

/* The guest of range that an assignment no longer names: removed if it is
 * the cluster's (a guest of the node's own of that name stays). */
static void remove_one(struct rec *r, const char *guest, const char *range)
{
    struct hd_store *st = r->gs->st;
    struct hd_err err = {0};
    char key[256];

    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, guest);
    bool ours = vm && !strcmp(vm->range, range) && cluster_guest(st, vm);
    pthread_mutex_unlock(&st->mu);
    if (ours && hd_vm_rm(r->gs, guest, true, &err) < 0 && err.status != 404)
        rec_log(r, guest, err.msg);
    status_key(key, sizeof(key), range, guest);
    delete_status(r, key);
    json_object_del(r->written, guest);
    json_object_del(r->applied, guest);
    json_object_del(r->errors, guest);
    json_object_del(r->waiting, guest);
}

/* The cluster guests of this node that no assignment names. */
static void remove_unassigned(struct rec *r)
{
    struct hd_store *st = r->gs->st;
    json_t *gone = json_object();
    const char *k;
    json_t *v;

    pthread_mutex_lock(&st->mu);
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (!json_object_get(r->desired, vm->name) && cluster_guest(st, vm))
            json_object_set_new(gone, vm->name, json_string(vm->range));
    pthread_mutex_unlock(&st->mu);
    json_object_foreach(gone, k, v)
        remove_one(r, k, json_string_value(v));
    json_decref(gone);
}

/* ---- status write-back ------------------------------------------------------ */

/* What /herd/status/RANGE/GUEST holds (store lock held). */
static json_t *status_doc(struct rec *r, const char *guest, json_t *doc)
{
    struct hd_vm *vm = hd_vm_find(r->gs->st, guest);
    const char *why = json_string_value(json_object_get(r->errors, guest));
    json_t *o = json_pack("{ss ss ss sI}", "name", guest, "range",
                          json_string_value(json_object_get(doc, "range")), "node",
                          r->cl->cfg->node_name, "reset",
                          json_integer_value(json_object_get(r->applied, guest)));

    if (!vm) {
        json_object_set_new(o, "state", json_string(why ? "error" : "assigned"));
        json_object_set_new(o, "ready", json_false());
        const char *wait = json_string_value(json_object_get(r->waiting, guest));
        json_object_set_new(o, "note", json_string(why ? why : wait ? wait : "not created yet"));
        return o;
    }
    json_t *nics = json_array();
    for (unsigned i = 0; i < vm->n_nics; i++)
        json_array_append_new(nics, json_pack("{ss ss}", "role", vm->nics[i].role, "mac",
                                              vm->nics[i].mac));
    json_object_update_new(
        o, json_pack("{ss ss sb sI si sI ss si so}", "template", vm->tmpl, "state",
                     why && !vm->started ? "error" : vm->state, "ready", vm->ready, "pid",
                     (json_int_t)(vm->pidfd >= 0 ? vm->pid : 0), "cpus", (int)vm->cpus, "mem",
                     (json_int_t)vm->mem, "note", why && !vm->started ? why : vm->note,
                     "restarts", (int)vm->restarts, "nics", nics));
    return o;
}

/* One status, written only when it changed, and only while the guest's
 * assignment exists (a range taken down meanwhile gets no status back). */
static void write_status(struct rec *r, const char *guest, json_t *doc, const char *text)
{
    const char *range = json_string_value(json_object_get(doc, "range"));
    const char *was = json_string_value(json_object_get(r->written, guest));
    char skey[256], akey[512];
    struct herd_err err;
    bool done = false;

    if (was && !strcmp(was, text))
        return;
    status_key(skey, sizeof(skey), range, guest);
    snprintf(akey, sizeof(akey), "%s%s/%s", r->prefix, range, guest);
    struct etcd_cmp cmp = {akey, ETCD_CREATE_REVISION, ETCD_GREATER, 0};
    struct etcd_op put = {ETCD_OP_PUT, skey, text, strlen(text), 0, false};
    struct etcd_txn t = {&cmp, 1, &put, NULL, 1, 0};
    if (etcd_txn(r->cl->etcd_rec, &t, &done, NULL, &err) < 0) {
        rec_log(r, "status", err.msg);
        return;
    }
    if (done)
        json_object_set_new(r->written, guest, json_string(text));
}

static void sync_status(struct rec *r)
{
    struct hd_store *st = r->gs->st;
    json_t *texts = json_object();
    const char *k;
    json_t *v;

    pthread_mutex_lock(&st->mu);
    json_object_foreach(r->desired, k, v) {
        json_t *o = status_doc(r, k, v);
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        if (s)
            json_object_set_new(texts, k, json_string(s));
        free(s);
    }
    pthread_mutex_unlock(&st->mu);
    json_object_foreach(texts, k, v)
        write_status(r, k, json_object_get(r->desired, k), json_string_value(v));
    json_decref(texts);
}

/* ---- lost nodes ---------------------------------------------------------------- */

/* range -> how many of node's guests it has (from node's assignments) */
static json_t *ranges_of(struct rec *r, const char *node)
{
    char prefix[sizeof(HD_CLUSTER_ASSIGN) + HD_NAME_MAX + 1];
    struct etcd_kvs kvs;
    struct herd_err err;
    json_t *counts = json_object();

    snprintf(prefix, sizeof(prefix), "%s%s/", HD_CLUSTER_ASSIGN, node);
    if (etcd_range_prefix(r->cl->etcd_rec, prefix, &kvs, &err) < 0)
        return counts;
    for (size_t i = 0; i < kvs.n; i++) {
        const char *rest = kvs.kv[i].key + strlen(prefix), *slash = strchr(rest, '/');
        char range[RANGE_NAME_MAX + 1];
        if (!slash || slash == rest || (size_t)(slash - rest) > RANGE_NAME_MAX)
            continue;
        memcpy(range, rest, (size_t)(slash - rest));
        range[slash - rest] = 0;
        json_int_t n = json_integer_value(json_object_get(counts, range));
        json_object_set_new(counts, range, json_integer(n + 1));
    }
    etcd_kvs_free(&kvs);
    return counts;
}

/* range.lost (the node's lease expired) or range.found (it is back), one
 * event per range with guests on the node. */
static void announce(struct rec *r, const char *node, bool lost)
{
    json_t *counts = ranges_of(r, node);
    const char *k;
    json_t *v;

    json_object_foreach(counts, k, v) {
        hd_event(&r->gs->st->ev, lost ? "range.lost" : "range.found", k,
                 json_pack("{ss ss sI}", "range", k, "node", node, "guests",
                           (json_int_t)json_integer_value(v)));
        if (lost)
            json_object_set_new(r->replace, k, json_true());
    }
    if (lost)
        fprintf(stderr, "herdd: cluster: node %s left the cluster (it stopped, or its lease "
                "expired): its guests are lost until it is back\n", node);
    json_decref(counts);
}

/* The live node whose name sorts first places the guests of lost nodes
 * anew (one node, so that the others do not queue for the placer's key);
 * a range whose placement could not be written is tried again next tick. */
static void replace_lost(struct rec *r)
{
    const char *k, *first = NULL;
    json_t *v;
    void *tmp;

    json_object_foreach(r->nodes, k, v)
        if (!first || strcmp(k, first) < 0)
            first = k;
    if (!first || strcmp(first, r->cl->cfg->node_name) || !json_object_size(r->replace))
        return;
    json_object_foreach_safe(r->replace, tmp, k, v) {
        struct hd_err err = {0};
        if (hd_cluster_replace_lost(r->cl, k, &err) < 0)
            rec_log(r, "placing a lost node's guests anew", err.msg);
        else
            json_object_del(r->replace, k);
    }
}

static void check_nodes(struct rec *r)
{
    struct etcd_kvs kvs;
    struct herd_err err;
    json_t *now = json_object();
    const char *k;
    json_t *v;

    if (etcd_range_prefix(r->cl->etcd_rec, HD_CLUSTER_NODES, &kvs, &err) < 0) {
        json_decref(now);
        return;
    }
    for (size_t i = 0; i < kvs.n; i++)
        json_object_set_new(now, kvs.kv[i].key + strlen(HD_CLUSTER_NODES), json_true());
    etcd_kvs_free(&kvs);
    if (r->nodes) {
        json_object_foreach(r->nodes, k, v)
            if (!json_object_get(now, k))
                announce(r, k, true);
        json_object_foreach(now, k, v)
            if (!json_object_get(r->nodes, k))
                announce(r, k, false);
    }
    json_decref(r->nodes);
    r->nodes = now;
    replace_lost(r);
}

/* Assigned guests this node lost meanwhile (removed on the node itself):
 * created again, the assignment says they exist. Those whose create
 * failed wait for the next list (no retry each second). */
static void recreate_missing(struct rec *r)
{
    struct hd_store *st = r->gs->st;
    json_t *missing = json_array();
    const char *k;
    json_t *v;
    size_t i;

    pthread_mutex_lock(&st->mu);
    json_object_foreach(r->desired, k, v)
        if (!hd_vm_find(st, k) && !json_object_get(r->errors, k))
            json_array_append_new(missing, json_string(k));
    pthread_mutex_unlock(&st->mu);
    json_array_foreach(missing, i, v) {
        const char *g = json_string_value(v);
        if (stopping(r->cl))
            break;
        converge_one(r, g, json_object_get(r->desired, g));
    }
    json_decref(missing);
}

static void tick(struct rec *r, bool force)
{
    int64_t t = now_ms();

    if (!force && t - r->tick_ms < TICK_MS)
        return;
    r->tick_ms = t;
    recreate_missing(r);
    hd_segs_sync(r->segs, r->desired, !r->untrusted);
    sync_status(r);
    check_nodes(r);
}

/* ---- list, then watch ------------------------------------------------------------ */

/* The reset generation each guest of want was last reset to, from the
 * statuses this node wrote (after a restart this herdd knows no other),
 * where it knows of none yet: a reset asked for while it was away is then
 * done once. */
static void load_applied(struct rec *r, json_t *want)
{
    json_t *ranges = json_object();
    const char *k, *range;
    json_t *v;

    json_object_foreach(want, k, v)
        json_object_set_new(ranges, json_string_value(json_object_get(v, "range")), json_true());
    json_object_foreach(ranges, range, v) {
        char prefix[256];
        struct etcd_kvs kvs;
        struct herd_err err;
        snprintf(prefix, sizeof(prefix), "%s%s/", HD_CLUSTER_STATUS, range);
        if (etcd_range_prefix(r->cl->etcd_rec, prefix, &kvs, &err) < 0)
            continue;
        for (size_t i = 0; i < kvs.n; i++) {
            const char *g = kvs.kv[i].key + strlen(prefix);
            json_t *st = json_loadb(kvs.kv[i].value, kvs.kv[i].value_len, 0, NULL);
            const char *node = json_string_value(json_object_get(st, "node"));
            json_t *gen = json_object_get(st, "reset");
            if (json_object_get(want, g) && !json_object_get(r->applied, g) && node &&
                !strcmp(node, r->cl->cfg->node_name) && json_is_integer(gen))
                json_object_set_new(r->applied, g, json_integer(json_integer_value(gen)));
            json_decref(st);
        }
        etcd_kvs_free(&kvs);
    }
    json_decref(ranges);
}

/* The node's assignments; guests converged. Removals only when the store
 * is the one listed before (its revision did not go back: an etcd that
 * lost its data must not take this node's guests with it) or holds
 * assignments again (written anew after the loss: from then on it is the
 * one followed). */
static int list_and_converge(struct rec *r)
{
    struct etcd_kvs kvs;
    struct herd_err err;
    char guest[HD_NAME_MAX + 1];

    if (etcd_range_prefix(r->cl->etcd_rec, r->prefix, &kvs, &err) < 0) {
        rec_log(r, "listing assignments", err.msg);
        return -1;
    }
    /* a store that went back but holds assignments again was written anew
     * (ranges brought up again, or a restored backup): followed from now */
    bool trusted = kvs.revision >= r->max_rev || kvs.n > 0;
    if (!trusted)
        rec_log(r, "listing assignments", "etcd's revision went back (its data was lost?): "
                "nothing is removed until the assignments are written again");
    r->untrusted = !trusted;
    if (trusted)
        r->max_rev = kvs.revision;
    json_object_clear(r->written); /* statuses written again once (etcd may have lost them) */
    json_t *want = json_object();
    for (size_t i = 0; i < kvs.n; i++) {
        json_t *doc = parse_assignment(r, &kvs.kv[i], guest);
        if (doc)
            json_object_set_new(want, guest, doc);
    }
    r->rev = kvs.revision;
    etcd_kvs_free(&kvs);
    load_applied(r, want);
    json_decref(r->desired);
    r->desired = want;
    publish(r);
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v) {
        if (stopping(r->cl))
            return 0;
        converge_one(r, k, v);
    }
    if (trusted)
        remove_unassigned(r);
    pthread_mutex_lock(&r->cl->mu);
    r->cl->rec_lists++;
    r->cl->rec_error[0] = 0;
    pthread_mutex_unlock(&r->cl->mu);
    tick(r, true);
    return 0;
}

static void on_event(struct rec *r, const struct etcd_event *ev)
{
    char guest[HD_NAME_MAX + 1], range[RANGE_NAME_MAX + 1];

    if (ev->type == ETCD_EVENT_DELETE) {
        if (!split_key(r, ev->kv.key, range, guest) || !json_object_get(r->desired, guest))
            return;
        json_object_del(r->desired, guest);
        publish(r);
        remove_one(r, guest, range);
        return;
    }
    json_t *doc = parse_assignment(r, &ev->kv, guest);
    if (!doc)
        return;
    json_object_set_new(r->desired, guest, doc);
    publish(r);
    converge_one(r, guest, doc);
}

/* Only a node that holds its name's key acts on its assignments: a second
 * herdd of the same name (started while etcd was away, then refused its
 * registration) must not create the first one's guests. */
static bool registered(struct hd_cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    bool reg = cl->registered;
    pthread_mutex_unlock(&cl->mu);
    return reg;
}

static int on_watch(void *arg, const struct etcd_watch_msg *m)
{
    struct rec *r = arg;

    if (stopping(r->cl))
        return 1;
    if (!registered(r->cl))
        return RELIST; /* registered again: listed again */
    if (m) {
        if (m->canceled)
            return 0; /* etcd_watch returns -ESTALE or -ECANCELED */
        if (r->untrusted && m->n_events)
            return RELIST; /* assignments written to a store that lost its data */
        for (size_t i = 0; i < m->n_events && !stopping(r->cl); i++)
            on_event(r, &m->events[i]);
        if (m->revision > r->rev)
            r->rev = m->revision;
        if (m->revision > r->max_rev && !r->untrusted)
            r->max_rev = m->revision;
    }
    tick(r, false);
    return stopping(r->cl) ? 1 : 0;
}

/* Waits ms or until told to stop. */
static void pause_ms(struct hd_cluster *cl, int64_t ms)
{
    for (int64_t t = 0; t < ms && !stopping(cl); t += 100)
        nanosleep(&(struct timespec){0, 100000000}, NULL);
}

static void *reconcile_main(void *arg)
{
    struct hd_cluster *cl = arg;
    struct rec r = {.cl = cl, .gs = cl->gs};
    struct herd_err err;

    snprintf(r.prefix, sizeof(r.prefix), "%s%s/", HD_CLUSTER_ASSIGN, cl->cfg->node_name);
    r.desired = json_object();
    r.written = json_object();
    r.errors = json_object();
    r.waiting = json_object();
    r.replace = json_object();
    r.applied = json_object();
    r.segs = hd_segs_open(cl);
    while (!stopping(cl)) {
        if (!registered(cl)) {
            pause_ms(cl, RETRY_MS / 2);
            continue;
        }
        if (list_and_converge(&r) < 0) {
            pause_ms(cl, RETRY_MS);
            continue;
        }
        int rc = etcd_watch(cl->etcd_rec, r.prefix, r.rev + 1, on_watch, &r, &err);
        if (stopping(cl))
            break;
        if (rc == RELIST) { /* let the placer finish writing (its batches) first */
            pause_ms(cl, RETRY_MS);
            continue;
        }
        rec_log(&r, "watch ended; listing again", err.msg);
        pause_ms(cl, rc == -ESTALE || rc == -ECANCELED ? 0 : RETRY_MS);
    }
    json_decref(r.desired);
    json_decref(r.written);
    json_decref(r.errors);
    json_decref(r.waiting);
    json_decref(r.nodes);
    json_decref(r.replace);
    json_decref(r.applied);
    hd_segs_close(r.segs);
    return NULL;
}

int hd_cluster_reconcile_start(struct hd_cluster *cl)
{
    if (pthread_create(&cl->rec_thread, NULL, reconcile_main, cl) != 0)
        return -1;
    cl->rec_running = true;
    return 0;
}

/* The running guests this node has on assignment, as the profile shows
 * them: the placer counts every assignment, so it takes these out of the
 * node's use to count none twice. */
json_t *hd_cluster_assigned_use(struct hd_cluster *cl)
{
    struct hd_store *st = cl->res->st;
    struct cap_policy p;
    uint64_t vcpus = 0, mem = 0, n = 0;

    cap_policy_default(&p);
    pthread_mutex_lock(&cl->mu);
    json_t *names = json_incref(cl->assigned);
    pthread_mutex_unlock(&cl->mu);
    pthread_mutex_lock(&st->mu);
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next) {
        if (vm->pidfd < 0 || !json_object_get(names, vm->name))
            continue;
        n++;
        vcpus += vm->cpus;
        mem += cap_guest_mem(&p, vm->mem, 1);
    }
    pthread_mutex_unlock(&st->mu);
    json_decref(names);
    return json_pack("{sI sI sI}", "guests", (json_int_t)n, "vcpus", (json_int_t)vcpus, "mem",
                     (json_int_t)mem);
}
