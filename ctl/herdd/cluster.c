/* herdd's place in a cluster (docs/cluster.md): its node profile under
 * /herd/nodes/NAME in etcd, attached to a lease this file's thread keeps
 * alive; registered again on a new lease when the old one is lost; revoked
 * at a clean exit so that the node is gone at once. Without a cluster:
 * section none of this runs and the API's cluster calls answer 409. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd/etcd.h"
#include "herdd.h"

#define PROFILE_REFRESH_MS 2000 /* a changed profile is written at most this often */
#define ERROR_LOG_MS 60000      /* etcd errors that go on are logged this often */

static int64_t mono_ms(void)
{
    return hd_mono_ns() / 1000000;
}

/* ---- the profile --------------------------------------------------------- */

/* The value of /herd/nodes/NAME: who the node is and what it can take. */
static char *profile_text(struct hd_cluster *cl)
{
    const struct hd_config *cfg = cl->cfg;
    json_t *o = hd_node_capacity(cl->res);
    char *text;

    json_object_set_new(o, "name", json_string(cfg->node_name));
    json_object_set_new(o, "address", json_string(cfg->cluster_address));
    json_object_set_new(o, "herdd_version", json_string(HD_VERSION));
    json_object_set_new(o, "started", json_integer(cl->res->st->started_at));
    json_object_set_new(o, "cluster", hd_cluster_assigned_use(cl));
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

/* ---- the lease file: STATE/cluster.lease -------------------------------- */

/* The lease of the herdd that ran on this state dir before (0: none): a
 * profile still held by it is this node's own, not another node's. */
static int64_t lease_file_read(const struct hd_cluster *cl)
{
    char buf[32] = "";
    int fd = open(cl->lease_file, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    char *end;

    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    long long id = strtoll(buf, &end, 10);
    return end != buf && (*end == '\n' || !*end) && id > 0 ? id : 0;
}

static void lease_file_write(const struct hd_cluster *cl, int64_t lease)
{
    char tmp[4200], buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", lease);

    snprintf(tmp, sizeof(tmp), "%s.tmp", cl->lease_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    bool ok = write(fd, buf, (size_t)n) == n;
    close(fd);
    if (!ok || rename(tmp, cl->lease_file) < 0)
        unlink(tmp);
}

/* ---- registration --------------------------------------------------------- */

/* create_revision == 0: put the profile on lease only if nobody holds the key */
static int put_if_absent(struct hd_cluster *cl, const char *text, int64_t lease, bool *done,
                         struct herd_err *err)
{
    struct etcd_cmp cmp = {cl->key, ETCD_CREATE_REVISION, ETCD_EQUAL, 0};
    struct etcd_op put = {ETCD_OP_PUT, cl->key, text, strlen(text), lease, false};
    struct etcd_txn t = {&cmp, 1, &put, NULL, 1, 0};

    return etcd_txn(cl->etcd, &t, done, NULL, err);
}

/* The key held by prev (an earlier lease of this node): moved to lease if
 * nothing changed it since (mod_revision), and prev revoked. */
static int take_over(struct hd_cluster *cl, const char *text, int64_t lease,
                     const struct etcd_kv *kv, bool *done, struct herd_err *err)
{
    struct etcd_cmp cmp = {cl->key, ETCD_MOD_REVISION, ETCD_EQUAL, kv->mod_revision};
    struct etcd_op put = {ETCD_OP_PUT, cl->key, text, strlen(text), lease, false};
    struct etcd_txn t = {&cmp, 1, &put, NULL, 1, 0};
    struct herd_err ignore;
    int rc = etcd_txn(cl->etcd, &t, done, NULL, err);

    if (!rc && *done)
        etcd_lease_revoke(cl->etcd, kv->lease, &ignore);
    return rc;
}

/* The key exists: ours (this lease: a retried transaction that had been
 * applied; prev: taken over), or another live node's (-EEXIST). */
static int claim_existing(struct hd_cluster *cl, const char *text, int64_t lease, int64_t prev,
                          bool *done, struct herd_err *err)
{
    struct etcd_kvs kvs;
    int rc = etcd_get(cl->etcd, cl->key, &kvs, err);

    *done = false;
    if (rc < 0 || !kvs.n) { /* gone meanwhile: try again */
        etcd_kvs_free(&kvs);
        return rc;
    }
    if (kvs.kv[0].lease == lease)
        *done = true;
    else if (prev && kvs.kv[0].lease == prev)
        rc = take_over(cl, text, lease, &kvs.kv[0], done, err);
    else
        rc = herd_err_set(err, -EEXIST, "node",
                          "node name '%s' is taken: etcd key %s is held by lease %" PRIx64
                          " of another live node (it goes when that node stops, or its lease "
                          "expires %u s after it died)",
                          cl->cfg->node_name, cl->key, (uint64_t)kvs.kv[0].lease,
                          cl->cfg->lease_ttl);
    etcd_kvs_free(&kvs);
    return rc;
}

/* The profile on lease under the node's key. 0, or -EEXIST (another node
 * holds the name) or etcd's error. */
static int claim(struct hd_cluster *cl, int64_t lease, int64_t prev, struct herd_err *err)
{
    char *text = profile_text(cl);
    bool done = false;
    int rc = text ? 0 : herd_err_set(err, -ENOMEM, "", "out of memory (node profile)");

    for (int tries = 0; !rc && !done && tries < 3; tries++) {
        rc = put_if_absent(cl, text, lease, &done, err);
        if (!rc && !done)
            rc = claim_existing(cl, text, lease, prev, &done, err);
    }
    if (!rc && !done)
        rc = herd_err_set(err, -EAGAIN, "node", "etcd key %s kept changing", cl->key);
    if (!rc) {
        pthread_mutex_lock(&cl->mu);
        free(cl->written);
        cl->written = text;
        cl->written_ms = mono_ms();
        pthread_mutex_unlock(&cl->mu);
        text = NULL;
    }
    free(text);
    return rc;
}

/* A new lease and the profile on it; prev: a lease this node held before.
 * 0, or -errno with err (nothing left behind: the new lease revoked). */
static int register_node(struct hd_cluster *cl, int64_t prev, struct herd_err *err)
{
    int64_t lease, ttl;
    struct herd_err ignore;
    int rc = etcd_lease_grant(cl->etcd, cl->cfg->lease_ttl, &lease, &ttl, err);

    if (rc < 0)
        return rc;
    rc = claim(cl, lease, prev, err);
    if (rc < 0) {
        etcd_lease_revoke(cl->etcd, lease, &ignore);
        return rc;
    }
    lease_file_write(cl, lease);
    pthread_mutex_lock(&cl->mu);
    cl->lease = lease;
    cl->granted_ttl = ttl;
    cl->registered = true;
    cl->registrations++;
    cl->renewed_ms = mono_ms();
    cl->last_error[0] = 0;
    cl->error_logged_ms = 0;
    pthread_mutex_unlock(&cl->mu);
    hd_event(&cl->res->st->ev, "cluster.registered", cl->cfg->node_name,
             json_pack("{ss sI}", "key", cl->key, "lease", (json_int_t)lease));
    return 0;
}

/* ---- the keepalive thread -------------------------------------------------- */

/* The error in status at once; in the log the first one after a success,
 * then one every ERROR_LOG_MS while they go on (not one a tick), and one
 * whose errno differs from the last logged (etcd down, then the name taken). */
static void note_error(struct hd_cluster *cl, const char *what, const struct herd_err *err)
{
    int64_t now = mono_ms();

    pthread_mutex_lock(&cl->mu);
    snprintf(cl->last_error, sizeof(cl->last_error), "%s", err->msg);
    bool log = !cl->error_logged_ms || now - cl->error_logged_ms >= ERROR_LOG_MS ||
               err->code != cl->error_logged_code; /* another kind of trouble */
    if (log) {
        cl->error_logged_ms = now;
        cl->error_logged_code = err->code;
    }
    pthread_mutex_unlock(&cl->mu);
    if (log)
        fprintf(stderr, "herdd: cluster: %s: %s\n", what, err->msg);
}

static void lost(struct hd_cluster *cl, const char *why)
{
    pthread_mutex_lock(&cl->mu);
    cl->registered = false;
    snprintf(cl->last_error, sizeof(cl->last_error), "%s", why);
    pthread_mutex_unlock(&cl->mu);
    fprintf(stderr, "herdd: cluster: registration lost: %s; registering again\n", why);
    hd_event(&cl->res->st->ev, "cluster.lost", cl->cfg->node_name,
             json_pack("{ss ss}", "key", cl->key, "reason", why));
}

/* A changed profile (use, templates, free disk), at most every
 * PROFILE_REFRESH_MS, on the same lease. */
static void refresh_profile(struct hd_cluster *cl, int64_t lease)
{
    struct herd_err err;
    char *text;

    pthread_mutex_lock(&cl->mu);
    bool due = mono_ms() - cl->written_ms >= PROFILE_REFRESH_MS;
    pthread_mutex_unlock(&cl->mu);
    if (!due || !(text = profile_text(cl)))
        return;
    pthread_mutex_lock(&cl->mu);
    bool same = cl->written && !strcmp(cl->written, text);
    cl->written_ms = mono_ms();
    pthread_mutex_unlock(&cl->mu);
    if (same || etcd_put(cl->etcd, cl->key, text, strlen(text), lease, NULL, &err) < 0) {
        free(text);
        return;
    }
    pthread_mutex_lock(&cl->mu);
    free(cl->written);
    cl->written = text;
    pthread_mutex_unlock(&cl->mu);
}

/* One renewal of a registered node: lost when etcd says the lease is gone,
 * or when no renewal got through for a whole TTL. */
static void renew(struct hd_cluster *cl, int64_t lease)
{
    struct herd_err err;
    int64_t ttl;
    int rc = etcd_lease_keepalive(cl->etcd, lease, &ttl, &err);
    char why[600];

    if (rc == 0) {
        pthread_mutex_lock(&cl->mu);
        cl->renewed_ms = mono_ms();
        cl->error_logged_ms = 0;
        pthread_mutex_unlock(&cl->mu);
        refresh_profile(cl, lease);
        return;
    }
    if (rc == -ENOENT) {
        snprintf(why, sizeof(why), "lease %" PRIx64 " expired in etcd", (uint64_t)lease);
        lost(cl, why);
        return;
    }
    note_error(cl, "keepalive", &err);
    pthread_mutex_lock(&cl->mu);
    bool expired = mono_ms() - cl->renewed_ms > (int64_t)cl->cfg->lease_ttl * 1000;
    pthread_mutex_unlock(&cl->mu);
    if (expired) {
        snprintf(why, sizeof(why), "no keepalive got through for %u s (%s)", cl->cfg->lease_ttl,
                 err.msg);
        lost(cl, why);
    }
}

static void tick(struct hd_cluster *cl)
{
    struct herd_err err;

    pthread_mutex_lock(&cl->mu);
    bool registered = cl->registered;
    int64_t lease = cl->lease;
    pthread_mutex_unlock(&cl->mu);
    if (registered) {
        renew(cl, lease);
        return;
    }
    if (register_node(cl, lease, &err) < 0) {
        note_error(cl, "registration", &err);
        return;
    }
    fprintf(stderr, "herdd: cluster: registered again as %s (lease %" PRIx64 ")\n", cl->key,
            (uint64_t)cl->lease);
}

/* Waits up to ms or until told to stop; true when told. */
static bool wait_stop(struct hd_cluster *cl, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop && pthread_cond_timedwait(&cl->cond, &cl->mu, &ts) != ETIMEDOUT)
        ;
    bool stop = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    return stop;
}

/* The thread: a renewal (or a registration) every third of the TTL. */
static void *keepalive_main(void *arg)
{
    struct hd_cluster *cl = arg;
    int64_t period = (int64_t)cl->cfg->lease_ttl * 1000 / 3;

    while (!wait_stop(cl, period < 500 ? 500 : period))
        tick(cl);
    return NULL;
}

/* ---- start, stop ----------------------------------------------------------- */

/* Two clients, each its own connection and lock: the keepalive thread's,
 * and the API's (a slow API read never delays a renewal). */
static int open_etcd(struct hd_cluster *cl, struct hd_err *err)
{
    const struct hd_config *cfg = cl->cfg;
    long call_ms = (long)cfg->lease_ttl * 1000 / 3;
    struct etcd_opts o = {
        .endpoints = (const char *const *)cfg->etcd,
        .n_endpoints = cfg->n_etcd,
        .ca = cfg->etcd_ca,
        .cert = cfg->etcd_cert,
        .key = cfg->etcd_key,
        .timeout_ms = call_ms < 1000 ? 1000 : call_ms > 5000 ? 5000 : call_ms,
        .connect_timeout_ms = 1000,
    };

    if (etcd_open(&cl->etcd, &o, &err->lib) < 0 || etcd_open(&cl->etcd_api, &o, &err->lib) < 0 ||
        etcd_open(&cl->etcd_rec, &o, &err->lib) < 0)
        return hd_fail_lib(err, 400, -EINVAL, "cluster");
    return 0;
}

static void close_etcd(struct hd_cluster *cl)
{
    etcd_close(cl->etcd);
    etcd_close(cl->etcd_api);
    etcd_close(cl->etcd_rec);
    cl->etcd = cl->etcd_api = cl->etcd_rec = NULL;
}

static void cluster_init(struct hd_cluster *cl, struct hd_guests *gs)
{
    struct hd_res *r = gs->res;

    memset(cl, 0, sizeof(*cl));
    cl->res = r;
    cl->gs = gs;
    cl->cfg = r->cfg;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->cond, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(cl->key, sizeof(cl->key), "%s%s", HD_CLUSTER_NODES, r->cfg->node_name);
    snprintf(cl->lease_file, sizeof(cl->lease_file), "%s/cluster.lease", r->cfg->state_dir);
}

/* The first registration: 0 registered, 1 not (etcd did not answer: the
 * thread goes on trying), -1 refused (the name is another node's). */
static int first_registration(struct hd_cluster *cl, struct hd_err *err)
{
    int64_t prev = lease_file_read(cl);
    char ep[ETCD_ENDPOINT_LEN];
    int rc = register_node(cl, prev, &err->lib);

    if (rc == -EEXIST)
        return hd_fail_lib(err, 409, rc, "cluster");
    if (rc < 0) {
        note_error(cl, "registration", &err->lib);
        fprintf(stderr, "herdd: cluster: not registered yet; trying again every %u ms\n",
                cl->cfg->lease_ttl * 1000 / 3);
        cl->lease = prev; /* still ours, if etcd has it */
        return 1;
    }
    etcd_endpoint(cl->etcd, ep, sizeof(ep));
    fprintf(stderr, "herdd: cluster: registered as %s (lease %" PRIx64 ", TTL %u s) on %s\n",
            cl->key, (uint64_t)cl->lease, cl->cfg->lease_ttl, ep);
    return 0;
}

int hd_cluster_start(struct hd_cluster *cl, struct hd_guests *gs, struct hd_err *err)
{
    cluster_init(cl, gs);
    if (!cl->cfg->n_etcd)
        return 0;
    if (open_etcd(cl, err) < 0 || first_registration(cl, err) < 0) {
        close_etcd(cl);
        return -1;
    }
    if (pthread_create(&cl->thread, NULL, keepalive_main, cl) != 0) {
        hd_cluster_stop(cl);
        return hd_fail(err, 500, "cluster", "cannot start the cluster keepalive thread");
    }
    cl->running = true;
    if (hd_images_start(cl) < 0) {
        hd_cluster_stop(cl);
        return hd_fail(err, 500, "cluster", "cannot start the cluster's image threads");
    }
    if (hd_cluster_reconcile_start(cl) < 0) {
        hd_cluster_stop(cl);
        return hd_fail(err, 500, "cluster", "cannot start the cluster reconcile thread");
    }
    return 0;
}

void hd_cluster_stop(struct hd_cluster *cl)
{
    struct herd_err err;

    if (!cl->etcd)
        return;
    pthread_mutex_lock(&cl->mu);
    cl->stop = true;
    pthread_cond_broadcast(&cl->cond);
    pthread_mutex_unlock(&cl->mu);
    if (cl->running)
        pthread_join(cl->thread, NULL);
    if (cl->rec_running)
        pthread_join(cl->rec_thread, NULL);
    cl->running = cl->rec_running = false;
    hd_images_stop(cl);
    if (cl->lease && etcd_lease_revoke(cl->etcd, cl->lease, &err) < 0 && err.code != -ENOENT)
        fprintf(stderr, "herdd: cluster: revoking lease %" PRIx64 ": %s\n", (uint64_t)cl->lease,
                err.msg);
    else if (cl->lease)
        unlink(cl->lease_file);
    close_etcd(cl);
    free(cl->written);
    cl->written = NULL;
    json_decref(cl->assigned);
    cl->assigned = NULL;
}

/* ---- the API's views -------------------------------------------------------- */

static int not_in_cluster(struct hd_err *err)
{
    return hd_fail(err, 409, "cluster", "this node is not in a cluster: herdd's configuration "
                   "has no cluster: section (docs/cluster.md)");
}

static json_t *lease_hex(int64_t lease)
{
    char s[24];

    if (!lease)
        return json_null();
    snprintf(s, sizeof(s), "%" PRIx64, (uint64_t)lease);
    return json_string(s);
}

/* One profile as the API shows it: the node's own document (whatever it
 * holds: another node wrote it) with the key's lease and revisions. */
static json_t *node_entry(const struct etcd_kv *kv)
{
    json_t *o = json_loadb(kv->value, kv->value_len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(o)) {
        json_decref(o);
        o = json_pack("{ss}", "error", "the profile is not a JSON object");
    }
    json_object_set_new(o, "key", json_string(kv->key));
    json_object_set_new(o, "name", json_string(kv->key + strlen(HD_CLUSTER_NODES)));
    json_object_set_new(o, "lease", lease_hex(kv->lease));
    json_object_set_new(o, "registered_revision", json_integer(kv->create_revision));
    json_object_set_new(o, "mod_revision", json_integer(kv->mod_revision));
    return o;
}

json_t *hd_cluster_nodes(struct hd_cluster *cl, struct hd_err *err)
{
    struct etcd_kvs kvs;
    json_t *nodes;

    if (!cl->etcd) {
        not_in_cluster(err);
        return NULL;
    }
    int rc = etcd_range_prefix(cl->etcd_api, HD_CLUSTER_NODES, &kvs, &err->lib);
    if (rc < 0) {
        hd_fail_lib(err, 503, rc, "cluster");
        return NULL;
    }
    nodes = json_array();
    for (size_t i = 0; i < kvs.n; i++)
        json_array_append_new(nodes, node_entry(&kvs.kv[i]));
    json_t *out = json_pack("{so sI}", "nodes", nodes, "revision", (json_int_t)kvs.revision);
    etcd_kvs_free(&kvs);
    return out;
}

/* The lease's seconds left as etcd counts them (null when it cannot say). */
static json_t *ttl_left(struct hd_cluster *cl, int64_t lease, json_t *o)
{
    struct herd_err err;
    int64_t left = 0, granted = 0;

    if (lease && etcd_lease_ttl(cl->etcd_api, lease, &left, &granted, &err) == 0)
        return json_integer(left);
    if (lease)
        json_object_set_new(o, "ttl_error", json_string(err.msg));
    return json_null();
}

json_t *hd_cluster_status(struct hd_cluster *cl, struct hd_err *err)
{
    char ep[ETCD_ENDPOINT_LEN];
    json_t *eps = json_array();

    if (!cl->etcd) {
        json_decref(eps);
        not_in_cluster(err);
        return NULL;
    }
    for (size_t i = 0; i < cl->cfg->n_etcd; i++)
        json_array_append_new(eps, json_string(cl->cfg->etcd[i]));
    etcd_endpoint(cl->etcd, ep, sizeof(ep));
    pthread_mutex_lock(&cl->mu);
    int64_t lease = cl->lease;
    json_t *o = json_pack("{ss ss ss ss so sb so sI sI so ss}", "node", cl->cfg->node_name,
                          "key", cl->key, "address", cl->cfg->cluster_address, "endpoint", ep,
                          "endpoints", eps, "registered", cl->registered, "lease",
                          lease_hex(lease), "ttl", (json_int_t)cl->cfg->lease_ttl,
                          "registrations", (json_int_t)cl->registrations, "renewed_ms_ago",
                          cl->renewed_ms ? json_integer(mono_ms() - cl->renewed_ms) : json_null(),
                          "last_error", cl->last_error);
    json_object_set_new(o, "reconcile",
                        json_pack("{sI sI sI ss}", "lists", (json_int_t)cl->rec_lists,
                                  "revision", (json_int_t)cl->rec_revision, "assigned",
                                  (json_int_t)json_object_size(cl->assigned), "last_error",
                                  cl->rec_error));
    pthread_mutex_unlock(&cl->mu);
    json_object_set_new(o, "images", hd_images_status(cl));
    json_object_set_new(o, "ttl_left", ttl_left(cl, lease, o));
    return o;
}
