/* etcd's JSON gateway replies, read as hostile input (include/herd/etcd.h):
 * every field is checked for its type, int64s are proto3's decimal strings
 * (integers accepted too), bytes are base64 (OpenSSL's EVP_DecodeBlock).
 * Absent fields are proto3 defaults (0, false, empty), as the gateway omits
 * them. Pure: no I/O, so the unit tests feed it whatever they like. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "herd/etcd.h"

static int bad(struct herd_err *err, const char *field, const char *what)
{
    return herd_err_set(err, -EPROTO, field, "etcd replied with a bad %s: %s", field, what);
}

/* body -> a JSON object, or NULL and err */
static json_t *load_object(const char *body, size_t len, struct herd_err *err)
{
    json_error_t je;
    json_t *root;

    if (len > ETCD_REPLY_MAX) {
        herd_err_set(err, -EPROTO, "", "etcd's reply is larger than %u bytes", ETCD_REPLY_MAX);
        return NULL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        herd_err_set(err, -EPROTO, "", "etcd's reply is not JSON: %s (byte %d)", je.text,
                     je.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        herd_err_set(err, -EPROTO, "", "etcd's reply is not a JSON object");
        return NULL;
    }
    return root;
}

/* "123", "-1" or 123 -> *out; absent -> 0 */
static int get_int(json_t *obj, const char *name, int64_t *out, struct herd_err *err)
{
    json_t *v = json_object_get(obj, name);
    const char *s;
    char *end;

    *out = 0;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    s = json_string_value(v);
    if (!s)
        return bad(err, name, "not an integer");
    if (!*s || strlen(s) > 20 || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
        return bad(err, name, "not a decimal integer");
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || *end || end == s || (s[0] == '-' && !s[1]))
        return bad(err, name, "not a 64-bit decimal integer");
    *out = n;
    return 0;
}

static int get_bool(json_t *obj, const char *name, bool *out, struct herd_err *err)
{
    json_t *v = json_object_get(obj, name);

    *out = false;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad(err, name, "not a boolean");
    *out = json_is_true(v);
    return 0;
}

/* an object member, absent -> NULL (ok), present but not an object -> -1 */
static int get_object(json_t *obj, const char *name, json_t **out, struct herd_err *err)
{
    json_t *v = json_object_get(obj, name);

    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return bad(err, name, "not an object");
    *out = v;
    return 0;
}

static int get_array(json_t *obj, const char *name, json_t **out, struct herd_err *err)
{
    json_t *v = json_object_get(obj, name);

    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return bad(err, name, "not an array");
    *out = v;
    return 0;
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Standard base64 with padding (what the gateway writes): the alphabet,
 * a length that is a multiple of 4, '=' only as the last one or two. */
static bool b64_valid(const char *s, size_t n, size_t *pad)
{
    *pad = 0;
    if (n % 4)
        return false;
    while (*pad < 2 && n > *pad && s[n - 1 - *pad] == '=')
        (*pad)++;
    for (size_t i = 0; i < n - *pad; i++)
        if (!b64_char(s[i]))
            return false;
    return true;
}

/* base64 member name -> malloc'd bytes + NUL; absent -> "" */
static int get_bytes(json_t *obj, const char *name, char **out, size_t *len,
                     struct herd_err *err)
{
    json_t *v = json_object_get(obj, name);
    const char *s = "";
    size_t n = 0, pad;

    *out = NULL;
    *len = 0;
    if (v && !json_is_string(v))
        return bad(err, name, "not a base64 string");
    if (v) {
        s = json_string_value(v);
        n = json_string_length(v);
    }
    if (n > INT_MAX || !b64_valid(s, n, &pad))
        return bad(err, name, "not valid base64");
    char *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return herd_err_set(err, -ENOMEM, name, "out of memory");
    int got = n ? EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)s, (int)n) : 0;
    if (got < 0 || (size_t)got < pad) {
        free(buf);
        return bad(err, name, "not valid base64");
    }
    *len = (size_t)got - pad;
    buf[*len] = 0;
    *out = buf;
    return 0;
}

void etcd_kv_free(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

void etcd_kvs_free(struct etcd_kvs *kvs)
{
    for (size_t i = 0; i < kvs->n; i++)
        etcd_kv_free(&kvs->kv[i]);
    free(kvs->kv);
    memset(kvs, 0, sizeof(*kvs));
}

void etcd_watch_msg_free(struct etcd_watch_msg *m)
{
    for (size_t i = 0; i < m->n_events; i++)
        etcd_kv_free(&m->events[i].kv);
    free(m->events);
    memset(m, 0, sizeof(*m));
}

/* one mvccpb.KeyValue; a key is required and not empty */
static int parse_kv(json_t *o, struct etcd_kv *kv, struct herd_err *err)
{
    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o))
        return bad(err, "kvs", "an item is not an object");
    if (!json_object_get(o, "key"))
        return bad(err, "key", "missing");
    if (get_bytes(o, "key", &kv->key, &kv->key_len, err) < 0)
        return -EPROTO;
    if (!kv->key_len) {
        etcd_kv_free(kv);
        return bad(err, "key", "empty");
    }
    if (get_bytes(o, "value", &kv->value, &kv->value_len, err) < 0 ||
        get_int(o, "create_revision", &kv->create_revision, err) < 0 ||
        get_int(o, "mod_revision", &kv->mod_revision, err) < 0 ||
        get_int(o, "version", &kv->version, err) < 0 || get_int(o, "lease", &kv->lease, err) < 0) {
        etcd_kv_free(kv);
        return -EPROTO;
    }
    return 0;
}

/* header.revision (the header is optional: a txn's inner replies) */
static int header_revision(json_t *root, int64_t *rev, struct herd_err *err)
{
    json_t *h;

    *rev = 0;
    if (get_object(root, "header", &h, err) < 0)
        return -EPROTO;
    if (h && get_int(h, "revision", rev, err) < 0)
        return -EPROTO;
    return *rev < 0 ? bad(err, "revision", "negative") : 0;
}

static int parse_kvs(json_t *arr, struct etcd_kvs *out, struct herd_err *err)
{
    size_t i;
    json_t *it;

    if (!arr || !json_array_size(arr))
        return 0;
    out->kv = calloc(json_array_size(arr), sizeof(*out->kv));
    if (!out->kv)
        return herd_err_set(err, -ENOMEM, "kvs", "out of memory");
    json_array_foreach(arr, i, it) {
        if (parse_kv(it, &out->kv[i], err) < 0)
            return -EPROTO;
        out->n++;
    }
    return 0;
}

/* a RangeResponse object into out (freed on failure) */
static int range_from(json_t *root, struct etcd_kvs *out, struct herd_err *err)
{
    json_t *arr;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = header_revision(root, &out->revision, err);
    if (!rc)
        rc = get_int(root, "count", &out->count, err);
    if (!rc)
        rc = get_bool(root, "more", &out->more, err);
    if (!rc)
        rc = get_array(root, "kvs", &arr, err);
    if (!rc)
        rc = parse_kvs(arr, out, err);
    if (!rc && out->count < (int64_t)out->n)
        rc = bad(err, "count", "fewer than the keys it lists");
    if (rc < 0)
        etcd_kvs_free(out);
    return rc < 0 ? rc : 0;
}

int etcd_parse_range(const char *body, size_t len, struct etcd_kvs *out, struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    int rc;

    memset(out, 0, sizeof(*out));
    if (!root)
        return -EPROTO;
    rc = range_from(root, out, err);
    json_decref(root);
    return rc;
}

int etcd_parse_put(const char *body, size_t len, int64_t *revision, struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    int64_t rev;
    int rc;

    if (!root)
        return -EPROTO;
    rc = header_revision(root, &rev, err);
    json_decref(root);
    if (!rc && revision)
        *revision = rev;
    return rc;
}

int etcd_parse_delete(const char *body, size_t len, int64_t *deleted, struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    int64_t n = 0, rev;
    int rc;

    if (!root)
        return -EPROTO;
    rc = header_revision(root, &rev, err);
    if (!rc)
        rc = get_int(root, "deleted", &n, err);
    if (!rc && n < 0)
        rc = bad(err, "deleted", "negative");
    json_decref(root);
    if (!rc && deleted)
        *deleted = n;
    return rc;
}

/* Each of a txn's responses must be one of the kinds herd asks for. */
static int txn_responses(json_t *root, struct herd_err *err)
{
    static const char *const kinds[] = {"response_put", "response_delete_range",
                                        "response_range", "response_txn"};
    json_t *arr, *it;
    size_t i;

    if (get_array(root, "responses", &arr, err) < 0)
        return -EPROTO;
    json_array_foreach(arr, i, it) {
        bool known = false;
        json_t *inner;
        if (!json_is_object(it) || json_object_size(it) != 1)
            return bad(err, "responses", "an item is not an object of one response");
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            known |= json_object_get(it, kinds[k]) != NULL;
        if (!known)
            return bad(err, "responses", "an item of an unknown kind");
        inner = json_object_iter_value(json_object_iter(it));
        if (!json_is_object(inner))
            return bad(err, "responses", "an item's response is not an object");
    }
    return 0;
}

int etcd_parse_txn(const char *body, size_t len, bool *succeeded, int64_t *revision,
                   struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    int64_t rev;
    bool ok;
    int rc;

    if (!root)
        return -EPROTO;
    rc = header_revision(root, &rev, err);
    if (!rc)
        rc = get_bool(root, "succeeded", &ok, err);
    if (!rc)
        rc = txn_responses(root, err);
    json_decref(root);
    if (rc)
        return rc;
    *succeeded = ok;
    if (revision)
        *revision = rev;
    return 0;
}

int etcd_parse_grant(const char *body, size_t len, int64_t *id, int64_t *ttl,
                     struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    json_t *e;
    int rc;

    if (!root)
        return -EPROTO;
    rc = get_int(root, "ID", id, err);
    if (!rc)
        rc = get_int(root, "TTL", ttl, err);
    e = json_object_get(root, "error");
    if (!rc && e && !json_is_string(e))
        rc = bad(err, "error", "not a string");
    else if (!rc && e && json_string_length(e))
        rc = herd_err_set(err, -EINVAL, "", "etcd refused the lease: %.400s",
                          json_string_value(e));
    if (!rc && *id <= 0)
        rc = bad(err, "ID", "not a positive lease id");
    if (!rc && *ttl <= 0)
        rc = bad(err, "TTL", "not a positive number of seconds");
    json_decref(root);
    return rc;
}

int etcd_parse_keepalive(const char *body, size_t len, int64_t id, int64_t *ttl,
                         struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    json_t *res;
    int64_t got = 0;
    int rc;

    if (!root)
        return -EPROTO;
    rc = get_object(root, "result", &res, err);
    if (!rc && !res)
        rc = json_object_get(root, "error") ? etcd_parse_error(200, body, len, err)
                                            : bad(err, "result", "missing");
    if (!rc)
        rc = get_int(res, "ID", &got, err);
    if (!rc)
        rc = get_int(res, "TTL", ttl, err);
    if (!rc && got != id)
        rc = bad(err, "ID", "another lease than the one renewed");
    if (!rc && *ttl <= 0)
        rc = herd_err_set(err, -ENOENT, "", "lease %" PRId64 " has expired", id);
    json_decref(root);
    return rc;
}

int etcd_parse_ttl(const char *body, size_t len, int64_t *left, int64_t *granted,
                   struct herd_err *err)
{
    json_t *root = load_object(body, len, err);
    int rc;

    if (!root)
        return -EPROTO;
    rc = get_int(root, "TTL", left, err);
    if (!rc)
        rc = get_int(root, "grantedTTL", granted, err);
    json_decref(root);
    if (!rc && *left < 0)
        rc = herd_err_set(err, -ENOENT, "", "the lease has expired");
    return rc;
}

static int parse_event(json_t *o, struct etcd_event *ev, struct herd_err *err)
{
    json_t *kv, *type;
    const char *t;

    memset(ev, 0, sizeof(*ev));
    if (!json_is_object(o))
        return bad(err, "events", "an item is not an object");
    type = json_object_get(o, "type");
    t = type ? json_string_value(type) : "PUT";
    if (!t || (strcmp(t, "PUT") && strcmp(t, "DELETE")))
        return bad(err, "type", "neither PUT nor DELETE");
    ev->type = strcmp(t, "PUT") ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
    if (get_object(o, "kv", &kv, err) < 0)
        return -EPROTO;
    if (!kv)
        return bad(err, "kv", "missing");
    return parse_kv(kv, &ev->kv, err);
}

static int watch_events(json_t *res, struct etcd_watch_msg *m, struct herd_err *err)
{
    json_t *arr, *it;
    size_t i;

    if (get_array(res, "events", &arr, err) < 0)
        return -EPROTO;
    if (!arr || !json_array_size(arr))
        return 0;
    m->events = calloc(json_array_size(arr), sizeof(*m->events));
    if (!m->events)
        return herd_err_set(err, -ENOMEM, "events", "out of memory");
    json_array_foreach(arr, i, it) {
        if (parse_event(it, &m->events[i], err) < 0)
            return -EPROTO;
        m->n_events++;
    }
    return 0;
}

static int watch_result(json_t *res, struct etcd_watch_msg *m, struct herd_err *err)
{
    json_t *reason;
    int rc;

    if ((rc = header_revision(res, &m->revision, err)) < 0 ||
        (rc = get_bool(res, "created", &m->created, err)) < 0 ||
        (rc = get_bool(res, "canceled", &m->canceled, err)) < 0 ||
        (rc = get_int(res, "watch_id", &m->watch_id, err)) < 0 ||
        (rc = get_int(res, "compact_revision", &m->compact_revision, err)) < 0)
        return rc;
    reason = json_object_get(res, "cancel_reason");
    if (reason && !json_is_string(reason))
        return bad(err, "cancel_reason", "not a string");
    if (reason)
        snprintf(m->reason, sizeof(m->reason), "%s", json_string_value(reason));
    if (m->compact_revision < 0 || m->revision < 0)
        return bad(err, "revision", "negative");
    return watch_events(res, m, err);
}

/* {"error": {"grpc_code", "http_code", "message", ...}} in a stream */
static int stream_error(json_t *e, struct etcd_watch_msg *m, struct herd_err *err)
{
    json_t *msg = json_is_object(e) ? json_object_get(e, "message") : NULL;
    int64_t code = 0;

    if (!json_is_object(e) || (msg && !json_is_string(msg)))
        return bad(err, "error", "not an error object");
    if (get_int(e, "grpc_code", &code, err) < 0)
        return -EPROTO;
    snprintf(m->reason, sizeof(m->reason), "%s", msg ? json_string_value(msg) : "stream error");
    m->canceled = true;
    return herd_err_set(err, -ECANCELED, "", "etcd ended the watch: %s (code %" PRId64 ")",
                        m->reason, code);
}

int etcd_parse_watch_line(const char *line, size_t len, struct etcd_watch_msg *out,
                          struct herd_err *err)
{
    json_t *root = load_object(line, len, err);
    json_t *res;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!root)
        return -EPROTO;
    rc = get_object(root, "result", &res, err);
    if (!rc && res)
        rc = watch_result(res, out, err);
    else if (!rc && json_object_get(root, "error"))
        rc = stream_error(json_object_get(root, "error"), out, err);
    else if (!rc)
        rc = bad(err, "result", "missing");
    json_decref(root);
    if (rc < 0 && rc != -ECANCELED)
        etcd_watch_msg_free(out);
    return rc;
}

/* grpc status codes (google.golang.org/grpc/codes) -> errno */
static int grpc_errno(int64_t code)
{
    switch (code) {
    case 3: return -EINVAL;     /* INVALID_ARGUMENT */
    case 4: return -ETIMEDOUT;  /* DEADLINE_EXCEEDED */
    case 5: return -ENOENT;     /* NOT_FOUND */
    case 7: return -EACCES;     /* PERMISSION_DENIED */
    case 8: return -ENOSPC;     /* RESOURCE_EXHAUSTED */
    case 9: return -EPERM;      /* FAILED_PRECONDITION */
    case 11: return -ERANGE;    /* OUT_OF_RANGE */
    case 14: return -EAGAIN;    /* UNAVAILABLE */
    case 16: return -EACCES;    /* UNAUTHENTICATED */
    default: return -EPROTO;
    }
}

int etcd_parse_error(long http_status, const char *body, size_t len, struct herd_err *err)
{
    struct herd_err ignore;
    json_t *root = load_object(body, len, &ignore);
    json_t *msg = root ? json_object_get(root, "message") : NULL;
    int64_t code = 0;

    if (!msg && root)
        msg = json_object_get(root, "error");
    if (!root || !json_is_string(msg) || get_int(root, "code", &code, &ignore) < 0) {
        json_decref(root);
        return herd_err_set(err, -EPROTO, "", "etcd answered HTTP %ld without an error message",
                            http_status);
    }
    herd_err_set(err, grpc_errno(code), "", "etcd: %.400s (HTTP %ld, code %" PRId64 ")",
                 json_string_value(msg), http_status, code);
    json_decref(root);
    return grpc_errno(code);
}
