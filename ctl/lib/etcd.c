/* etcd v3 over its JSON gateway: requests (jansson), HTTP (libcurl), failover
 * between endpoints, watches as a stream of JSON lines. The replies are read
 * by etcd_reply.c. Contract: include/herd/etcd.h. */
#include "herd/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct etcd {
    pthread_mutex_t mu;          /* one call at a time on curl */
    CURL *curl;
    char endpoints[ETCD_ENDPOINTS_MAX][ETCD_ENDPOINT_LEN]; /* fixed once open */
    size_t n;
    _Atomic size_t cur;          /* where the next call goes first (read without mu) */
    char *ca, *cert, *key;
    long timeout_ms, connect_timeout_ms;
};

struct reply {
    char *p;
    size_t n, cap;
    bool over;                   /* past ETCD_REPLY_MAX: the transfer is cut */
    char why[CURL_ERROR_SIZE];   /* curl's detail of a failed transfer */
};

/* ---- options -------------------------------------------------------------- */

static int check_endpoint(const char *ep, size_t i, struct herd_err *err)
{
    char field[32];

    snprintf(field, sizeof(field), "endpoints[%zu]", i);
    if (!ep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)))
        return herd_err_set(err, -EINVAL, field, "etcd endpoint '%s' is not http:// or https://",
                            ep ? ep : "(null)");
    if (strlen(ep) >= ETCD_ENDPOINT_LEN || strlen(ep) < 9)
        return herd_err_set(err, -EINVAL, field, "etcd endpoint '%s': 9 to %d characters", ep,
                            ETCD_ENDPOINT_LEN - 1);
    return 0;
}

static int check_opts(const struct etcd_opts *o, struct herd_err *err)
{
    if (!o || !o->n_endpoints || o->n_endpoints > ETCD_ENDPOINTS_MAX || !o->endpoints)
        return herd_err_set(err, -EINVAL, "endpoints", "1 to %d etcd endpoints are needed",
                            ETCD_ENDPOINTS_MAX);
    for (size_t i = 0; i < o->n_endpoints; i++)
        if (check_endpoint(o->endpoints[i], i, err) < 0)
            return -EINVAL;
    if (!o->cert != !o->key)
        return herd_err_set(err, -EINVAL, o->cert ? "key" : "cert",
                            "an etcd client certificate needs its key and a key its certificate");
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int etcd_open(struct etcd **out, const struct etcd_opts *o, struct herd_err *err)
{
    struct etcd *e;

    *out = NULL;
    if (check_opts(o, err) < 0)
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (!e || !(e->curl = curl_easy_init())) {
        free(e);
        return herd_err_set(err, -ENOMEM, "", "out of memory (curl)");
    }
    pthread_mutex_init(&e->mu, NULL);
    for (size_t i = 0; i < o->n_endpoints; i++) {
        snprintf(e->endpoints[i], ETCD_ENDPOINT_LEN, "%s", o->endpoints[i]);
        size_t l = strlen(e->endpoints[i]);
        while (l > 8 && e->endpoints[i][l - 1] == '/')
            e->endpoints[i][--l] = 0;
    }
    e->n = o->n_endpoints;
    e->ca = dup_or_null(o->ca);
    e->cert = dup_or_null(o->cert);
    e->key = dup_or_null(o->key);
    e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    e->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 2000;
    *out = e;
    return 0;
}

void etcd_close(struct etcd *e)
{
    if (!e)
        return;
    curl_easy_cleanup(e->curl);
    pthread_mutex_destroy(&e->mu);
    free(e->ca);
    free(e->cert);
    free(e->key);
    free(e);
}

/* Without the call lock: a status read never waits for a slow call. */
void etcd_endpoint(struct etcd *e, char *out, size_t size)
{
    snprintf(out, size, "%s", e->endpoints[atomic_load(&e->cur) % e->n]);
}

/* ---- HTTP ----------------------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    struct reply *r = arg;
    size_t n = size * nmemb;

    if (r->n + n > ETCD_REPLY_MAX) {
        r->over = true;
        return 0;
    }
    if (r->n + n + 1 > r->cap) {
        size_t cap = (r->n + n + 1) * 2;
        char *p = realloc(r->p, cap);
        if (!p)
            return 0;
        r->p = p;
        r->cap = cap;
    }
    memcpy(r->p + r->n, data, n);
    r->n += n;
    r->p[r->n] = 0;
    return n;
}

/* What every request on c has: TLS files, timeouts, no signals. */
static void common_opts(struct etcd *e, CURL *c, const char *url, const char *body,
                        struct curl_slist *hdr)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (e->ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
    if (e->cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, e->key);
    }
}

/* Errors after which the next endpoint is worth a try. */
static bool unreachable(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

/* One POST to one endpoint: 0 with *status and r filled, or the CURLcode. */
static CURLcode post_once(struct etcd *e, const char *ep, const char *path, const char *body,
                          struct reply *r, long *status)
{
    char url[ETCD_ENDPOINT_LEN + 64];
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    CURLcode cc;

    snprintf(url, sizeof(url), "%s%s", ep, path);
    r->n = 0;
    r->over = false;
    r->why[0] = 0;
    common_opts(e, e->curl, url, body, hdr);
    curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, r->why);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, r);
    cc = curl_easy_perform(e->curl);
    curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdr);
    *status = 0;
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
    return cc;
}

/* A failed perform as errno and message. */
static int transport_error(CURLcode cc, const struct reply *r, const char *ep,
                           struct herd_err *err)
{
    char why[CURL_ERROR_SIZE + 128];

    snprintf(why, sizeof(why), "%s%s%s%s", curl_easy_strerror(cc), r->why[0] ? " (" : "",
             r->why, r->why[0] ? ")" : "");

    if (r->over)
        return herd_err_set(err, -EPROTO, "", "etcd %s: reply larger than %u bytes", ep,
                            ETCD_REPLY_MAX);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return herd_err_set(err, -ETIMEDOUT, "", "etcd %s: %s", ep, why);
    if (unreachable(cc))
        return herd_err_set(err, -ECONNREFUSED, "", "etcd %s: %s", ep, why);
    return herd_err_set(err, -EIO, "", "etcd %s: %s", ep, why);
}

/* POST body to path, moving on to the next endpoint when one cannot be
 * reached (or answers 503); r holds a 200's body. 0 or -errno. */
static int call(struct etcd *e, const char *path, const char *body, struct reply *r,
                struct herd_err *err)
{
    int rc = -ECONNREFUSED;
    long status = 0;
    char tried[sizeof(err->msg)] = "";

    pthread_mutex_lock(&e->mu);
    for (size_t t = 0; t < e->n; t++) {
        size_t i = (atomic_load(&e->cur) + t) % e->n;
        CURLcode cc = post_once(e, e->endpoints[i], path, body, r, &status);
        if (cc != CURLE_OK) {
            rc = transport_error(cc, r, e->endpoints[i], err);
            if (!unreachable(cc) || r->over)
                break;
            size_t at = strlen(tried);
            snprintf(tried + at, sizeof(tried) - at, "%s%.200s", at ? "; " : "", err->msg);
            if (t + 1 == e->n && e->n > 1)
                herd_err_set(err, rc, "", "no etcd endpoint answered: %.480s", tried);
            continue;
        }
        atomic_store(&e->cur, i);
        rc = status == 200 ? 0 : etcd_parse_error(status, r->p ? r->p : "", r->n, err);
        if (status != 503)
            break;
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---- requests ------------------------------------------------------------- */

/* bytes -> base64 (OpenSSL), malloc'd */
static char *b64(const void *data, size_t len)
{
    char *out;

    if (len > (1u << 30))
        return NULL;
    out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* obj[name] = base64(data) */
static int set_b64(json_t *obj, const char *name, const void *data, size_t len)
{
    char *s = b64(data, len);

    if (!s)
        return -ENOMEM;
    int rc = json_object_set_new(obj, name, json_string(s));
    free(s);
    return rc < 0 ? -ENOMEM : 0;
}

static int set_int(json_t *obj, const char *name, int64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_object_set_new(obj, name, json_string(s)) < 0 ? -ENOMEM : 0;
}

/* The end of a prefix's range: the prefix with its last byte below 0xff
 * incremented (and what follows dropped); "\0" (every key) when none. */
static size_t prefix_end(const char *prefix, char *end)
{
    size_t n = strlen(prefix);

    memcpy(end, prefix, n);
    while (n && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (!n) {
        end[0] = 0;
        return 1;
    }
    end[n - 1]++;
    return n;
}

/* {"key", "range_end"} of every key starting with prefix ("": every key) */
static int set_prefix(json_t *obj, const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = malloc(n + 1);
    int rc;

    if (!end)
        return -ENOMEM;
    size_t en = prefix_end(prefix, end);
    rc = set_b64(obj, "key", n ? prefix : "", n ? n : 1);
    if (!rc)
        rc = set_b64(obj, "range_end", end, en);
    free(end);
    return rc;
}

/* POST obj (stolen) to path; on 0 r holds the reply */
static int request(struct etcd *e, const char *path, json_t *obj, struct reply *r,
                   struct herd_err *err)
{
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    int rc;

    json_decref(obj);
    if (!body)
        return herd_err_set(err, -ENOMEM, "", "out of memory (etcd request)");
    rc = call(e, path, body, r, err);
    free(body);
    return rc;
}

static json_t *key_obj(const char *key, int *rc)
{
    json_t *o = json_object();

    *rc = !o || !key || !*key ? -EINVAL : set_b64(o, "key", key, strlen(key));
    return o;
}

static int bad_key(json_t *o, int rc, struct herd_err *err)
{
    json_decref(o);
    if (rc == -EINVAL)
        return herd_err_set(err, rc, "key", "an etcd key must not be empty");
    return herd_err_set(err, -ENOMEM, "", "out of memory (etcd request)");
}

int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
             int64_t *revision, struct herd_err *err)
{
    struct reply r = {0};
    int rc;
    json_t *o = key_obj(key, &rc);

    if (!rc)
        rc = set_b64(o, "value", value ? value : "", value ? len : 0);
    if (!rc && lease)
        rc = set_int(o, "lease", lease);
    if (rc)
        return bad_key(o, rc, err);
    rc = request(e, "/v3/kv/put", o, &r, err);
    if (!rc)
        rc = etcd_parse_put(r.p, r.n, revision, err);
    free(r.p);
    return rc;
}

int etcd_get(struct etcd *e, const char *key, struct etcd_kvs *out, struct herd_err *err)
{
    struct reply r = {0};
    int rc;
    json_t *o = key_obj(key, &rc);

    memset(out, 0, sizeof(*out));
    if (rc)
        return bad_key(o, rc, err);
    rc = request(e, "/v3/kv/range", o, &r, err);
    if (!rc)
        rc = etcd_parse_range(r.p, r.n, out, err);
    if (!rc && (out->n > 1 || (out->n && strcmp(out->kv[0].key, key)))) {
        etcd_kvs_free(out);
        rc = herd_err_set(err, -EPROTO, "kvs", "etcd answered a get of %s with other keys", key);
    }
    free(r.p);
    return rc;
}

int etcd_range_prefix(struct etcd *e, const char *prefix, struct etcd_kvs *out,
                      struct herd_err *err)
{
    struct reply r = {0};
    json_t *o = json_object();
    int rc = o ? set_prefix(o, prefix) : -ENOMEM;

    memset(out, 0, sizeof(*out));
    if (rc)
        return bad_key(o, rc, err);
    rc = request(e, "/v3/kv/range", o, &r, err);
    if (!rc)
        rc = etcd_parse_range(r.p, r.n, out, err);
    for (size_t i = 0; !rc && i < out->n; i++) {
        if (strncmp(out->kv[i].key, prefix, strlen(prefix))) {
            rc = herd_err_set(err, -EPROTO, "kvs", "etcd answered a range of %s with key %.200s",
                              prefix, out->kv[i].key);
            etcd_kvs_free(out);
        }
    }
    free(r.p);
    return rc;
}

int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted,
                struct herd_err *err)
{
    struct reply r = {0};
    json_t *o = json_object();
    int rc = !o ? -ENOMEM : !key || !*key ? -EINVAL : 0;

    if (!rc)
        rc = prefix ? set_prefix(o, key) : set_b64(o, "key", key, strlen(key));
    if (rc)
        return bad_key(o, rc, err);
    rc = request(e, "/v3/kv/deleterange", o, &r, err);
    if (!rc)
        rc = etcd_parse_delete(r.p, r.n, deleted, err);
    free(r.p);
    return rc;
}

int etcd_compact(struct etcd *e, int64_t revision, struct herd_err *err)
{
    struct reply r = {0};
    json_t *o = json_object();
    int64_t rev;
    int rc = o && revision > 0 ? set_int(o, "revision", revision) : -EINVAL;

    if (rc) {
        json_decref(o);
        return herd_err_set(err, -EINVAL, "revision", "a revision to compact to is positive");
    }
    rc = request(e, "/v3/kv/compaction", o, &r, err);
    if (!rc)
        rc = etcd_parse_put(r.p, r.n, &rev, err);
    free(r.p);
    return rc;
}

/* ---- transactions --------------------------------------------------------- */

static json_t *cmp_json(const struct etcd_cmp *c)
{
    static const char *const targets[] = {"VERSION", "CREATE", "MOD"};
    static const char *const fields[] = {"version", "create_revision", "mod_revision"};
    static const char *const ops[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
    json_t *o;
    int rc;

    if (!c->key || !*c->key || (unsigned)c->target > ETCD_MOD_REVISION ||
        (unsigned)c->op > ETCD_LESS)
        return NULL;
    o = key_obj(c->key, &rc);
    if (!rc)
        rc = json_object_set_new(o, "target", json_string(targets[c->target]));
    if (!rc)
        rc = json_object_set_new(o, "result", json_string(ops[c->op]));
    if (!rc)
        rc = set_int(o, fields[c->target], c->value);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *op_json(const struct etcd_op *op)
{
    json_t *o;
    int rc;

    if (op->kind != ETCD_OP_PUT && op->kind != ETCD_OP_DELETE)
        return NULL;
    o = key_obj(op->key, &rc);
    if (!rc && op->kind == ETCD_OP_DELETE && op->prefix) {
        json_object_clear(o);
        rc = set_prefix(o, op->key);
    }
    if (!rc && op->kind == ETCD_OP_PUT)
        rc = set_b64(o, "value", op->value ? op->value : "", op->value ? op->value_len : 0);
    if (!rc && op->kind == ETCD_OP_PUT && op->lease)
        rc = set_int(o, "lease", op->lease);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return json_pack("{so}", op->kind == ETCD_OP_PUT ? "request_put" : "request_delete_range", o);
}

static json_t *ops_json(const struct etcd_op *ops, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = op_json(&ops[i]);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *txn_json(const struct etcd_txn *t)
{
    json_t *cmp = json_array();

    for (size_t i = 0; cmp && i < t->n_cmp; i++) {
        json_t *c = cmp_json(&t->cmp[i]);
        if (!c || json_array_append_new(cmp, c) < 0) {
            json_decref(cmp);
            return NULL;
        }
    }
    json_t *then = ops_json(t->then, t->n_then), *other = ops_json(t->otherwise, t->n_otherwise);
    if (!cmp || !then || !other) {
        json_decref(cmp);
        json_decref(then);
        json_decref(other);
        return NULL;
    }
    return json_pack("{so so so}", "compare", cmp, "success", then, "failure", other);
}

int etcd_txn(struct etcd *e, const struct etcd_txn *t, bool *succeeded, int64_t *revision,
             struct herd_err *err)
{
    struct reply r = {0};
    json_t *o = txn_json(t);
    int rc;

    *succeeded = false;
    if (!o)
        return herd_err_set(err, -EINVAL, "txn",
                            "a transaction with an empty key, an unknown target or operation");
    rc = request(e, "/v3/kv/txn", o, &r, err);
    if (!rc)
        rc = etcd_parse_txn(r.p, r.n, succeeded, revision, err);
    free(r.p);
    return rc;
}

/* ---- leases --------------------------------------------------------------- */

static int lease_call(struct etcd *e, const char *path, const char *name, int64_t v,
                      struct reply *r, struct herd_err *err)
{
    json_t *o = json_object();

    if (!o || set_int(o, name, v) < 0) {
        json_decref(o);
        return herd_err_set(err, -ENOMEM, "", "out of memory (etcd request)");
    }
    return request(e, path, o, r, err);
}

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted_ttl,
                     struct herd_err *err)
{
    struct reply r = {0};
    int rc;

    if (ttl_s <= 0)
        return herd_err_set(err, -EINVAL, "ttl", "a lease's TTL is a positive number of seconds");
    rc = lease_call(e, "/v3/lease/grant", "TTL", ttl_s, &r, err);
    if (!rc)
        rc = etcd_parse_grant(r.p, r.n, id, granted_ttl, err);
    free(r.p);
    return rc;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl, struct herd_err *err)
{
    struct reply r = {0};
    int rc = lease_call(e, "/v3/lease/keepalive", "ID", id, &r, err);

    if (!rc)
        rc = etcd_parse_keepalive(r.p, r.n, id, ttl, err);
    free(r.p);
    return rc;
}

int etcd_lease_ttl(struct etcd *e, int64_t id, int64_t *left, int64_t *granted,
                   struct herd_err *err)
{
    struct reply r = {0};
    int rc = lease_call(e, "/v3/lease/timetolive", "ID", id, &r, err);

    if (!rc)
        rc = etcd_parse_ttl(r.p, r.n, left, granted, err);
    free(r.p);
    return rc;
}

int etcd_lease_revoke(struct etcd *e, int64_t id, struct herd_err *err)
{
    struct reply r = {0};
    int64_t rev;
    int rc = lease_call(e, "/v3/lease/revoke", "ID", id, &r, err);

    if (!rc)
        rc = etcd_parse_put(r.p, r.n, &rev, err);
    free(r.p);
    return rc;
}

/* ---- watches -------------------------------------------------------------- */

struct watch {
    etcd_watch_fn fn;
    void *arg;
    struct reply line;           /* bytes of the line being received */
    int rc;                      /* why the stream was cut; 0 while it runs */
    bool got;                    /* some bytes came: no failover after that */
    struct herd_err *err;
    struct timespec last_tick;
};

/* One complete line: parse, hand to fn. Sets w->rc to stop. */
static void watch_line(struct watch *w, const char *p, size_t n)
{
    struct etcd_watch_msg m;
    int rc;

    if (!n)
        return;
    rc = etcd_parse_watch_line(p, n, &m, w->err);
    if (rc == -ECANCELED || (!rc && m.canceled)) {
        w->fn(w->arg, &m);
        w->rc = m.compact_revision ? -ESTALE : -ECANCELED;
        if (w->rc == -ESTALE)
            herd_err_set(w->err, -ESTALE, "", "etcd compacted revision %" PRId64
                         " away: re-list and watch from the list's revision", m.compact_revision);
        else if (!rc)
            herd_err_set(w->err, -ECANCELED, "", "etcd canceled the watch: %s",
                         m.reason[0] ? m.reason : "no reason given");
    } else if (rc < 0) {
        w->rc = rc;
        return;
    } else {
        rc = w->fn(w->arg, &m);
        if (rc)
            w->rc = rc;
    }
    etcd_watch_msg_free(&m);
}

static size_t watch_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct watch *w = arg;
    size_t n = size * nmemb, at = 0;

    w->got = true;
    while (at < n && !w->rc) {
        char *nl = memchr(data + at, '\n', n - at);
        size_t part = nl ? (size_t)(nl - (data + at)) : n - at;
        if (part && collect(data + at, 1, part, &w->line) != part) {
            w->rc = herd_err_set(w->err, -EPROTO, "", "a watch line longer than %u bytes",
                                 ETCD_REPLY_MAX);
            break;
        }
        at += part + (nl != NULL);
        if (nl) {
            watch_line(w, w->line.p, w->line.n);
            w->line.n = 0;
        }
    }
    return w->rc ? 0 : n;
}

/* curl's progress callback: fn(arg, NULL) about once a second */
static int watch_tick(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct watch *w = arg;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec == w->last_tick.tv_sec)
        return 0;
    w->last_tick = now;
    if (!w->rc)
        w->rc = w->fn(w->arg, NULL);
    return w->rc != 0;
}

static char *watch_body(const char *prefix, int64_t start)
{
    json_t *req = json_object(), *wrap = NULL;
    char *body = NULL;

    if (req && !set_prefix(req, prefix) && (!start || !set_int(req, "start_revision", start)))
        wrap = json_pack("{sO}", "create_request", req);
    if (wrap)
        body = json_dumps(wrap, JSON_COMPACT);
    json_decref(wrap);
    json_decref(req);
    return body;
}

/* The stream on endpoint ep until it ends: w->rc, or -ECONNRESET / the
 * transport's error. */
static int watch_on(struct etcd *e, CURL *c, const char *ep, const char *body, struct watch *w)
{
    char url[ETCD_ENDPOINT_LEN + 16];
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    long status = 0;
    char why[CURL_ERROR_SIZE] = "";

    snprintf(url, sizeof(url), "%s/v3/watch", ep);
    common_opts(e, c, url, body, hdr);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, watch_tick);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 2L);
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (w->rc)
        return w->rc;
    if (cc == CURLE_OK && status != 200)
        return etcd_parse_error(status, w->line.p ? w->line.p : "", w->line.n, w->err);
    if (cc == CURLE_OK)
        return herd_err_set(w->err, -ECONNRESET, "", "etcd %s ended the watch stream", ep);
    return herd_err_set(w->err, unreachable(cc) ? -ECONNRESET : -EIO, "",
                        "etcd %s: watch: %s%s%s%s", ep, curl_easy_strerror(cc), why[0] ? " (" : "",
                        why, why[0] ? ")" : "");
}

int etcd_watch(struct etcd *e, const char *prefix, int64_t start_revision, etcd_watch_fn fn,
               void *arg, struct herd_err *err)
{
    struct watch w = {.fn = fn, .arg = arg, .err = err};
    char ep[ETCD_ENDPOINT_LEN];
    char *body = watch_body(prefix ? prefix : "", start_revision);
    CURL *c = curl_easy_init();
    int rc = -ECONNRESET;

    if (!body || !c) {
        free(body);
        curl_easy_cleanup(c);
        return herd_err_set(err, -ENOMEM, "", "out of memory (etcd watch)");
    }
    /* failover as for calls: the next endpoint while none has answered */
    for (size_t t = 0; t < e->n; t++) {
        size_t i = (atomic_load(&e->cur) + t) % e->n;
        snprintf(ep, sizeof(ep), "%s", e->endpoints[i]);
        rc = watch_on(e, c, ep, body, &w);
        if (w.got || rc != -ECONNRESET)
            break;
    }
    curl_easy_cleanup(c);
    free(w.line.p);
    free(body);
    return rc;
}
