/*
 * etcd: a client for etcd v3 over its JSON gateway (HTTP POST /v3/...,
 * libcurl + jansson), enough for herd's cluster store (docs/cluster.md):
 * put, get, range by prefix, delete, transactions (compare-and-swap), leases
 * (grant, keepalive, time to live, revoke) and watches.
 *
 * Everything an endpoint answers is hostile: every field is checked for its
 * type before it is used, numbers (int64 as JSON strings, proto3's habit, or
 * as integers) must be whole and in range, keys and values must be valid
 * base64, and a reply larger than ETCD_REPLY_MAX is refused. A bad reply is
 * -EPROTO with a message naming the field, never a crash.
 *
 * Errors: functions return 0 or a negative errno and fill the herd_err
 * they are given (may be NULL):
 *   -ECONNREFUSED  no endpoint could be reached (each was tried in turn)
 *   -ETIMEDOUT     the endpoint did not answer in time
 *   -ENOENT        etcd's NOT_FOUND (e.g. an unknown or expired lease)
 *   -ERANGE        etcd's OUT_OF_RANGE (a revision compacted away)
 *   -EINVAL        a bad argument, or etcd's INVALID_ARGUMENT
 *   -EAGAIN        etcd is unavailable (no leader, stopping)
 *   -EACCES        refused by etcd's authentication
 *   -EPROTO        a reply that is not what the gateway answers
 *   -ENOMEM
 * Failover: the client talks to one endpoint at a time and moves to the
 * next on a connection error (refused, unreachable, reset, timed out before
 * an answer) and retries the call there, each endpoint once per call.
 * A retried call may have been applied by the endpoint that failed: callers
 * make their transactions such that a second try tells (docs/cluster.md).
 *
 * Threads: one struct etcd may be shared; its calls are serialised by a
 * lock of its own (one connection). A watch uses a connection of its own
 * and blocks its caller's thread until its callback says stop.
 * curl_global_init must have been called before any thread uses this.
 */
#ifndef HERD_ETCD_H
#define HERD_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/error.h"

#define ETCD_ENDPOINTS_MAX 16
#define ETCD_ENDPOINT_LEN 256     /* "https://host:port", no path */
#define ETCD_REPLY_MAX (64u << 20) /* bytes of one reply or one watch line */

struct etcd_opts {
    const char *const *endpoints;  /* "http://127.0.0.1:2379", "https://..." */
    size_t n_endpoints;            /* 1..ETCD_ENDPOINTS_MAX */
    const char *ca;                /* PEM CA bundle to check the server (NULL: system's) */
    const char *cert, *key;        /* client certificate and key (both or neither) */
    long timeout_ms;               /* one call, per endpoint (0: 5000) */
    long connect_timeout_ms;       /* (0: 2000) */
};

struct etcd;

/* Checks the options (scheme http or https, lengths, cert with key); no
 * connection is made yet. */
int etcd_open(struct etcd **out, const struct etcd_opts *o, struct herd_err *err);
void etcd_close(struct etcd *e);
/* The endpoint the next call goes to first (the last one that answered). */
void etcd_endpoint(struct etcd *e, char *out, size_t size);

/* ---- keys and values ------------------------------------------------------ */
struct etcd_kv {
    char *key;                 /* NUL-terminated; key_len excludes the NUL */
    size_t key_len;
    char *value;               /* NUL-terminated too (for text); may hold NULs */
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
};

struct etcd_kvs {
    struct etcd_kv *kv;
    size_t n;
    int64_t revision;          /* the store's revision when it answered */
    int64_t count;             /* keys in the range (n may be fewer: more) */
    bool more;
};
void etcd_kv_free(struct etcd_kv *kv);
void etcd_kvs_free(struct etcd_kvs *kvs);

/* key = value, attached to lease (0: none). *revision (may be NULL): the
 * store's revision after it. */
int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
             int64_t *revision, struct herd_err *err);
/* The key, if it exists: out->n is 0 or 1. */
int etcd_get(struct etcd *e, const char *key, struct etcd_kvs *out, struct herd_err *err);
/* Every key starting with prefix ("" : every key), in key order. */
int etcd_range_prefix(struct etcd *e, const char *prefix, struct etcd_kvs *out,
                      struct herd_err *err);
/* Deletes key (prefix: every key starting with it); *deleted may be NULL. */
int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted,
                struct herd_err *err);

/* Drops the history before revision: watches from before it end (-ESTALE). */
int etcd_compact(struct etcd *e, int64_t revision, struct herd_err *err);

/* ---- transactions ---------------------------------------------------------- */
enum etcd_target { ETCD_VERSION, ETCD_CREATE_REVISION, ETCD_MOD_REVISION };
enum etcd_cmp_op { ETCD_EQUAL, ETCD_NOT_EQUAL, ETCD_GREATER, ETCD_LESS };
struct etcd_cmp {
    const char *key;
    enum etcd_target target;
    enum etcd_cmp_op op;
    int64_t value;             /* create_revision == 0: the key does not exist */
};
enum etcd_op_kind { ETCD_OP_PUT, ETCD_OP_DELETE };
struct etcd_op {
    enum etcd_op_kind kind;
    const char *key;
    const void *value;         /* PUT */
    size_t value_len;
    int64_t lease;             /* PUT; 0: none */
    bool prefix;               /* DELETE every key starting with key */
};
struct etcd_txn {
    const struct etcd_cmp *cmp;
    size_t n_cmp;
    const struct etcd_op *then, *otherwise;
    size_t n_then, n_otherwise;
};
/* If every compare holds, then's ops, else otherwise's, atomically.
 * *succeeded says which ran; *revision (may be NULL) the store's after. */
int etcd_txn(struct etcd *e, const struct etcd_txn *t, bool *succeeded, int64_t *revision,
             struct herd_err *err);

/* ---- leases ---------------------------------------------------------------- */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *id, int64_t *granted_ttl,
                     struct herd_err *err);
/* One renewal: *ttl is the lease's TTL again. -ENOENT: the lease is gone
 * (expired or revoked; its keys with it). */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl, struct herd_err *err);
/* Seconds left (-ENOENT when it has expired) and the TTL it was granted. */
int etcd_lease_ttl(struct etcd *e, int64_t id, int64_t *left, int64_t *granted,
                   struct herd_err *err);
/* The lease and every key attached to it, at once. -ENOENT: already gone. */
int etcd_lease_revoke(struct etcd *e, int64_t id, struct herd_err *err);

/* ---- watches --------------------------------------------------------------- */
enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };
struct etcd_event {
    enum etcd_event_type type;
    struct etcd_kv kv;         /* a DELETE has key and mod_revision only */
};
/* One line of the watch stream. */
struct etcd_watch_msg {
    bool created;              /* the watch is in place (first message) */
    bool canceled;             /* the watch ended: re-list, then watch again */
    int64_t watch_id;
    int64_t revision;          /* header.revision */
    int64_t compact_revision;  /* canceled because start_revision was compacted */
    char reason[256];          /* cancel_reason or the stream's error */
    struct etcd_event *events;
    size_t n_events;
};
void etcd_watch_msg_free(struct etcd_watch_msg *m);
/* Called for each message, and with m NULL about once a second while the
 * stream is idle (a chance to stop). Non-zero stops the watch; etcd_watch
 * then returns it. */
typedef int (*etcd_watch_fn)(void *arg, const struct etcd_watch_msg *m);
/* Watches every key starting with prefix from start_revision (0: from now)
 * until fn returns non-zero (returned, > 0) or the watch ends:
 * -ESTALE: start_revision was compacted (fn saw compact_revision);
 * -ECANCELED: etcd canceled it (fn saw the reason);
 * -ECONNRESET: the stream broke (etcd restarted, network); the caller
 * re-lists (etcd_range_prefix gives the revision to watch from + 1) and
 * watches again. Blocks. */
int etcd_watch(struct etcd *e, const char *prefix, int64_t start_revision, etcd_watch_fn fn,
               void *arg, struct herd_err *err);

/* ---- the gateway's replies (pure; for the unit tests) ---------------------- */
/* body: a reply of 200 from POST /v3/kv/range. */
int etcd_parse_range(const char *body, size_t len, struct etcd_kvs *out, struct herd_err *err);
/* /v3/kv/put, /v3/kv/deleterange (deleted may be NULL), /v3/kv/txn. */
int etcd_parse_put(const char *body, size_t len, int64_t *revision, struct herd_err *err);
int etcd_parse_delete(const char *body, size_t len, int64_t *deleted, struct herd_err *err);
int etcd_parse_txn(const char *body, size_t len, bool *succeeded, int64_t *revision,
                   struct herd_err *err);
/* /v3/lease/grant ({ID, TTL}), /v3/lease/keepalive ({"result": {ID, TTL}}:
 * -ENOENT when TTL is 0 or absent), /v3/lease/timetolive. */
int etcd_parse_grant(const char *body, size_t len, int64_t *id, int64_t *ttl,
                     struct herd_err *err);
int etcd_parse_keepalive(const char *body, size_t len, int64_t id, int64_t *ttl,
                         struct herd_err *err);
int etcd_parse_ttl(const char *body, size_t len, int64_t *left, int64_t *granted,
                   struct herd_err *err);
/* One line of /v3/watch: {"result": {...}} or {"error": {...}} (-> the
 * error's errno, its message in err). */
int etcd_parse_watch_line(const char *line, size_t len, struct etcd_watch_msg *out,
                          struct herd_err *err);
/* A reply other than 200: {"error", "message", "code"} -> -errno and err
 * (the status and the body's message). */
int etcd_parse_error(long http_status, const char *body, size_t len, struct herd_err *err);

#endif
