/* herdd's API: HTTP/1.1 + JSON on a unix socket (libmicrohttpd, one thread
 * per connection). Callers are identified by SO_PEERCRED and authorised by
 * role; every state-changing request is audited, refused ones included.
 * Routes, the role each needs and whether it is audited: hd_routes below. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "herdd.h"
#include "routes.h"

/* Each connection has its own thread (libmicrohttpd); 2 MiB of stack, not
 * the default 8, bounds the address space 2000 of them reserve. The
 * deepest request handling is jansson's parser at its 2048-level nesting
 * limit (tests/integration/escape-api.sh sends such a body). */
#define HD_API_THREAD_STACK (2u << 20)

/* One per accepted socket (MHD's socket context), made when the connection
 * starts, before any byte of it is read: the caller's credentials and
 * whether this connection put its uid over api_connections_per_uid. */
struct sock {
    bool cred;
    bool over;      /* over the per-uid limit: every request gets 429 */
    uid_t uid;
    pid_t pid;
};

/* Open connections per uid: api->uid_counts, HD_API_CONNECTIONS slots (at
 * most that many connections exist at once, so as many slots are enough; a
 * slot with n == 0 is free), under api->uid_counts_mu. */
struct hd_uid_count {
    uid_t uid;
    unsigned n;
};

/* Adds delta to uid's count; returns the new count. */
static unsigned uid_count_add(struct hd_api *api, uid_t uid, int delta)
{
    struct hd_uid_count *counts = api->uid_counts;
    struct hd_uid_count *slot = NULL, *free_slot = NULL;
    unsigned n = 0;

    pthread_mutex_lock(&api->uid_counts_mu);
    for (size_t i = 0; i < HD_API_CONNECTIONS && !slot; i++) {
        if (counts[i].n && counts[i].uid == uid)
            slot = &counts[i];
        else if (!counts[i].n && !free_slot)
            free_slot = &counts[i];
    }
    if (!slot && delta > 0 && free_slot) {
        slot = free_slot;
        slot->uid = uid;
        slot->n = 0;
    }
    if (slot) {
        if (delta < 0 && slot->n < (unsigned)-delta)
            slot->n = 0;
        else
            slot->n += (unsigned)delta;
        n = slot->n;
    }
    pthread_mutex_unlock(&api->uid_counts_mu);
    return n;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct hd_api *api = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct sock *s = calloc(1, sizeof(*s));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct ucred uc;
        socklen_t l = sizeof(uc);

        if (!s)
            return; /* on_request refuses a connection without one */
        if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0) {
            s->cred = true;
            s->uid = uc.uid;
            s->pid = uc.pid;
            s->over = uid_count_add(api, uc.uid, 1) > api->cfg->api_conns_per_uid;
            /* A uid with no role over its limit gets no answer at all: the
             * connection ends before herdd reads a byte of it, so such
             * callers hold at most api_connections_per_uid connections
             * (and their threads) while their 403s go out. */
            if (s->over && !hd_roles_of(api->cfg, uc.uid))
                shutdown(ci->connect_fd, SHUT_RDWR);
        }
        *socket_context = s;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct sock *s = *socket_context;
        if (s && s->cred)
            uid_count_add(api, s->uid, -1);
        free(s);
        *socket_context = NULL;
    }
}

struct conn {
    char *body;
    size_t len, cap;
    bool too_big;
    bool cred;
    uid_t uid;
    pid_t pid;
};

struct reply {
    int status;
    json_t *json;           /* body (new reference) */
    struct MHD_Response *raw; /* or a prepared response */
    char target[128];       /* for the audit entry */
};

static int fail_reply(struct reply *r, const struct hd_err *e)
{
    r->status = e->status ? e->status : 500;
    r->json = json_pack("{ss ss}", "error", e->msg, "field", e->field);
    return -1;
}

static int error_reply(struct reply *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int error_reply(struct reply *r, int status, const char *field, const char *fmt, ...)
{
    struct hd_err e = {.status = status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    snprintf(e.field, sizeof(e.field), "%s", field ? field : "");
    return fail_reply(r, &e);
}

static json_t *parse_body(struct conn *c, struct reply *r)
{
    json_error_t je;
    if (!c->len) {
        error_reply(r, 400, "", "a JSON body is expected");
        return NULL;
    }
    json_t *j = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        error_reply(r, 400, "", "malformed JSON at line %d column %d: %s", je.line, je.column,
                    je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        error_reply(r, 400, "", "a JSON object is expected");
        return NULL;
    }
    return j;
}

/* POST /v1/templates and /v1/templates/derive: both make a template from a
 * body naming it; 201 on success. */
static int create_template(struct hd_res *res, struct conn *c, struct reply *r,
                           int (*make)(struct hd_res *, json_t *, json_t **, struct hd_err *))
{
    struct hd_err err = {0};
    json_t *b = parse_body(c, r);

    if (!b)
        return -1;
    const char *n = json_string_value(json_object_get(b, "name"));
    snprintf(r->target, sizeof(r->target), "%s", n ? n : "");
    int rc = make(res, b, &r->json, &err);
    json_decref(b);
    if (rc < 0)
        return fail_reply(r, &err);
    r->status = 201;
    return 0;
}

static const char *query(struct MHD_Connection *mc, const char *key)
{
    return MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, key);
}

static bool query_true(struct MHD_Connection *mc, const char *key)
{
    const char *v = query(mc, key);
    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !*v);
}

/* ---- events stream -------------------------------------------------------------- */

struct ev_stream {
    struct hd_store *st;    /* its events and whether herdd is stopping */
    uint64_t seq;
    char type[64], name[80];
    char *buf;
    size_t len, off;
};

static ssize_t ev_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct ev_stream *s = cls;
    (void)pos;
    while (s->off >= s->len) {
        free(s->buf);
        s->buf = NULL;
        s->len = s->off = 0;
        if (s->st->stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        uint64_t last;
        json_t *a = hd_events_after(&s->st->ev, s->seq, s->type, s->name, 256, 15000, &last);
        s->seq = last;
        if (!json_array_size(a)) {
            json_decref(a);
            /* keep-alive: an empty line every 15 s (clients skip it) */
            s->buf = strdup("\n");
            s->len = 1;
            break;
        }
        size_t i;
        json_t *e;
        size_t cap = 0;
        json_array_foreach(a, i, e) {
            char *line = json_dumps(e, JSON_COMPACT);
            size_t l = strlen(line);
            if (s->len + l + 2 > cap) {
                cap = (s->len + l + 2) * 2;
                s->buf = realloc(s->buf, cap);
            }
            memcpy(s->buf + s->len, line, l);
            s->len += l;
            s->buf[s->len++] = '\n';
            free(line);
        }
        json_decref(a);
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void ev_free(void *cls)
{
    struct ev_stream *s = cls;
    free(s->buf);
    free(s);
}

/* ---- the routes' handlers ------------------------------------------------------ */

/* A request being answered: what a route's handler gets. */
struct hd_call {
    struct hd_api *api;             /* its context */
    struct MHD_Connection *mc;
    struct conn *c;
    struct reply *r;
    const char *cap[HD_ROUTE_CAPS]; /* the row's {captures}: name, then action */
};

/* r's body is j, or err when j is NULL. */
static int json_reply(struct reply *r, json_t *j, const struct hd_err *err)
{
    r->json = j;
    return j ? 0 : fail_reply(r, err);
}

static int h_events(struct hd_call *q)
{
    struct hd_store *st = q->api->st;
    struct MHD_Connection *mc = q->mc;
    struct reply *r = q->r;
    const char *since = query(mc, "since");
    const char *type = query(mc, "type");
    const char *name = query(mc, "name");
    uint64_t seq = since ? strtoull(since, NULL, 10) : hd_event_seq(&st->ev);
    if (since && !*since)
        return error_reply(r, 400, "since", "since must be an event number");
    if (!query_true(mc, "follow")) {
        uint64_t last;
        int wait = query(mc, "wait") ? atoi(query(mc, "wait")) : 0;
        if (wait < 0 || wait > 600)
            return error_reply(r, 400, "wait", "wait must be 0-600 seconds");
        json_t *a = hd_events_after(&st->ev, since ? seq : 0, type, name, 10000, wait * 1000, &last);
        r->json = json_pack("{so sI}", "events", a, "last", (json_int_t)last);
        r->status = 200;
        return 0;
    }
    struct ev_stream *s = calloc(1, sizeof(*s));
    s->st = st;
    s->seq = seq;
    snprintf(s->type, sizeof(s->type), "%s", type ? type : "");
    snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
    r->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, ev_read, s, ev_free);
    MHD_add_response_header(r->raw, "Content-Type", "application/x-ndjson");
    r->status = 200;
    return 0;
}

static int h_node(struct hd_call *q)
{
    q->r->json = hd_node_json(q->api->res);
    return 0;
}

static int h_node_plan(struct hd_call *q)
{
    struct hd_err err = {0};
    if (hd_node_plan(q->api->res, q->c->body ? q->c->body : "", q->c->len, &q->r->json, &err) < 0)
        return fail_reply(q->r, &err);
    return 0;
}

static int h_cluster_nodes(struct hd_call *q)
{
    struct hd_err err = {0};
    q->r->json = hd_cluster_nodes(q->api->cluster, &err);
    return q->r->json ? 0 : fail_reply(q->r, &err);
}

static int h_cluster_status(struct hd_call *q)
{
    struct hd_err err = {0};
    q->r->json = hd_cluster_status(q->api->cluster, &err);
    return q->r->json ? 0 : fail_reply(q->r, &err);
}

static int h_node_network(struct hd_call *q)
{
    struct hd_api *api = q->api;
    struct netdev_nl *nl;
    struct hd_err err = {0};
    if (!api->cfg->net.bridges)
        return error_reply(q->r, 409, "roles", "no roles are configured");
    int rc = netdev_nl_open(&nl);
    if (rc == 0) {
        rc = netdev_setup(nl, &api->cfg->net, &err.lib);
        netdev_nl_close(nl);
    }
    if (rc < 0) {
        hd_fail_lib(&err, 409, rc, "");
        return fail_reply(q->r, &err);
    }
    hd_event(&api->st->ev, "node.network", NULL, NULL);
    q->r->json = hd_node_json(api->res);
    return 0;
}

static int h_templates(struct hd_call *q)
{
    struct hd_store *st = q->api->st;
    json_t *a = json_array();
    pthread_mutex_lock(&st->mu);
    for (struct hd_template *t = st->templates; t; t = t->next)
        json_array_append_new(a, hd_template_json(st, t));
    pthread_mutex_unlock(&st->mu);
    q->r->json = a;
    return 0;
}

/* A template from image files, or with "snapshot" a warm template. */
static int template_add(struct hd_res *res, json_t *b, json_t **out, struct hd_err *err)
{
    if (json_is_object(b) && json_object_get(b, "snapshot"))
        return hd_snapshot_template_add(res, b, out, err);
    return hd_template_add(res, b, out, err);
}

static int h_template_add(struct hd_call *q)
{
    return create_template(q->api->res, q->c, q->r, template_add);
}

static int h_template_derive(struct hd_call *q)
{
    return create_template(q->api->res, q->c, q->r, hd_template_derive);
}

static int h_template(struct hd_call *q)
{
    struct hd_store *st = q->api->st;
    const char *name = q->cap[0];
    pthread_mutex_lock(&st->mu);
    struct hd_template *t = hd_template_find(st, name);
    q->r->json = t ? hd_template_json(st, t) : NULL;
    pthread_mutex_unlock(&st->mu);
    return q->r->json ? 0 : error_reply(q->r, 404, "name", "no template '%s'", name);
}

static int h_template_rm(struct hd_call *q)
{
    struct hd_err err = {0};
    if (hd_template_rm(q->api->res, q->cap[0], &err) < 0)
        return fail_reply(q->r, &err);
    q->r->json = json_pack("{ss}", "removed", q->cap[0]);
    return 0;
}

static int h_vms(struct hd_call *q)
{
    struct hd_store *st = q->api->st;
    const char *range = query(q->mc, "range");
    json_t *a = json_array();
    pthread_mutex_lock(&st->mu);
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (!range || !strcmp(range, vm->range))
            json_array_append_new(a, hd_vm_json(vm, false));
    pthread_mutex_unlock(&st->mu);
    q->r->json = a;
    return 0;
}

static int h_vm_create(struct hd_call *q)
{
    struct hd_err err = {0};
    struct reply *r = q->r;
    json_t *b = parse_body(q->c, r);
    if (!b)
        return -1;
    const char *n = json_string_value(json_object_get(b, "name"));
    snprintf(r->target, sizeof(r->target), "%s", n ? n : "");
    int rc = hd_vm_create(q->api->gs, b, NULL, NULL, &r->json, &err);
    json_decref(b);
    if (rc < 0)
        return fail_reply(r, &err);
    r->status = 201;
    return 0;
}

static int h_vm(struct hd_call *q)
{
    struct hd_store *st = q->api->st;
    const char *name = q->cap[0];
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    q->r->json = vm ? hd_vm_json(vm, true) : NULL;
    pthread_mutex_unlock(&st->mu);
    return q->r->json ? 0 : error_reply(q->r, 404, "name", "no guest '%s'", name);
}

static int h_vm_rm(struct hd_call *q)
{
    struct hd_err err = {0};
    if (hd_vm_rm(q->api->gs, q->cap[0], query_true(q->mc, "force"), &err) < 0)
        return fail_reply(q->r, &err);
    q->r->json = json_pack("{ss}", "removed", q->cap[0]);
    return 0;
}

static int h_vm_console(struct hd_call *q)
{
    struct hd_err err = {0};
    const char *off = query(q->mc, "offset");
    char *end = NULL;
    long long o = off ? strtoll(off, &end, 10) : 0;
    if (off && (!*off || *end))
        return error_reply(q->r, 400, "offset", "offset must be a number");
    return json_reply(q->r, hd_vm_console_read(q->api->st, q->cap[0], o, &err), &err);
}

static int h_vm_console_input(struct hd_call *q)
{
    struct hd_err err = {0};
    json_t *b = parse_body(q->c, q->r);
    if (!b)
        return -1;
    int rc = hd_vm_console_input(q->api->st, q->cap[0], b, &q->r->json, &err);
    json_decref(b);
    return rc < 0 ? fail_reply(q->r, &err) : 0;
}

static int h_vm_net(struct hd_call *q)
{
    struct hd_err err = {0};
    return json_reply(q->r, hd_vm_net(q->api->gs, q->cap[0], &err), &err);
}

static int h_vm_logs(struct hd_call *q)
{
    struct hd_err err = {0};
    const char *lines = query(q->mc, "lines");
    const char *which = query(q->mc, "log");
    long n = lines ? strtol(lines, NULL, 10) : 100;
    if (n <= 0 || n > 100000)
        return error_reply(q->r, 400, "lines", "lines must be 1-100000");
    if (which && strcmp(which, "console") && strcmp(which, "vmm"))
        return error_reply(q->r, 400, "log", "log must be console or vmm");
    return json_reply(q->r, hd_vm_logs(q->api->gs, q->cap[0], which ? which : "console", n, &err), &err);
}

/* POST /v1/vms/NAME/snapshot {"name"}: 201 with the snapshot's record. */
static int h_vm_snapshot(struct hd_call *q)
{
    struct hd_err err = {0};
    json_t *b = parse_body(q->c, q->r);
    if (!b)
        return -1;
    int rc = hd_vm_snapshot(q->api->gs, q->cap[0], b, NULL, &q->r->json, &err);
    json_decref(b);
    if (rc < 0)
        return fail_reply(q->r, &err);
    q->r->status = 201;
    return 0;
}

/* POST /v1/vms/NAME/restore {"snapshot"}: the guest back to that snapshot. */
static int h_vm_restore(struct hd_call *q)
{
    static const char *const known[] = {"snapshot", NULL};
    struct hd_err err = {0};
    json_t *b = parse_body(q->c, q->r);
    if (!b)
        return -1;
    const char *snap = json_string_value(json_object_get(b, "snapshot"));
    int rc = hd_check_fields(b, known, &err);
    if (rc == 0 && (!snap || !hd_name_ok(snap)))
        rc = hd_fail(&err, 400, "snapshot", "snapshot must be a snapshot name");
    if (rc == 0)
        rc = hd_vm_restore(q->api->gs, q->cap[0], snap, &err);
    if (rc == 0)
        q->r->json = json_pack("{ss ss}", "name", q->cap[0], "snapshot", snap);
    json_decref(b);
    return rc < 0 ? fail_reply(q->r, &err) : 0;
}

static int h_snapshots(struct hd_call *q)
{
    q->r->json = hd_snapshot_list(q->api->st);
    return 0;
}

static int h_snapshot(struct hd_call *q)
{
    struct hd_err err = {0};
    return json_reply(q->r, hd_snapshot_get(q->api->st, q->cap[0], &err), &err);
}

static int h_snapshot_rm(struct hd_call *q)
{
    struct hd_err err = {0};
    if (hd_snapshot_rm(q->api->res, q->cap[0], false, &err) < 0)
        return fail_reply(q->r, &err);
    q->r->json = json_pack("{ss}", "removed", q->cap[0]);
    return 0;
}

/* POST /v1/vms/NAME/ACTION: start, stop, ... (hd_vm_action answers 404 to
 * an unknown action); the body, if any, may only have "timeout". */
static int h_vm_action(struct hd_call *q)
{
    struct hd_err err = {0};
    json_t *b = NULL;
    if (q->c->len && !(b = parse_body(q->c, q->r)))
        return -1;
    const char *key;
    json_t *v;
    json_object_foreach(b, key, v) {
        if (strcmp(key, "timeout")) {
            error_reply(q->r, 400, key, "unknown field '%s'", key); /* key is b's */
            json_decref(b);
            return -1;
        }
    }
    int rc = hd_vm_action(q->api->gs, q->cap[0], q->cap[1], b, &q->r->json, &err);
    json_decref(b);
    return rc < 0 ? fail_reply(q->r, &err) : 0;
}

static int h_ranges(struct hd_call *q)
{
    q->r->json = hd_range_list(q->api->rg);
    hd_cluster_range_list(q->api->cluster, q->r->json); /* and the cluster's */
    return 0;
}

static int h_range_up(struct hd_call *q)
{
    struct hd_err err = {0};
    struct reply *r = q->r;
    int rc = hd_cluster_range_up(q->api->cluster, q->c->body ? q->c->body : "", q->c->len,
                                 &r->json, &err); /* 1: not in a cluster */
    if (rc > 0)
        rc = hd_range_up(q->api->rg, q->c->body ? q->c->body : "", q->c->len, &r->json, &err);
    if (rc < 0)
        return fail_reply(r, &err);
    const char *n = json_string_value(json_object_get(r->json, "name"));
    snprintf(r->target, sizeof(r->target), "%s", n ? n : "");
    r->status = 202;
    return 0;
}

static int h_range(struct hd_call *q)
{
    struct hd_err err = {0};
    json_t *j = hd_range_status(q->api->rg, q->cap[0], &err);
    if (!j && err.status == 404) /* not this node's own: one on the cluster? */
        j = hd_cluster_range_status(q->api->cluster, q->cap[0], &err);
    return json_reply(q->r, j, &err);
}

static int h_range_down(struct hd_call *q)
{
    struct hd_err err = {0};
    int rc = hd_range_down(q->api->rg, q->cap[0], &q->r->json, &err);
    if (rc < 0 && err.status == 404) { /* not this node's own: one on the cluster? */
        struct hd_err cerr = {0};
        int c = hd_cluster_range_down(q->api->cluster, q->cap[0], &q->r->json, &cerr);
        if (c <= 0) { /* 1: not on the cluster either (the 404 stands) */
            rc = c;
            err = cerr;
        }
    }
    return rc < 0 ? fail_reply(q->r, &err) : 0;
}

/* POST /v1/ranges/NAME/reset: every guest, or the body's {"vms": [...]};
 * with {"to": CHECKPOINT} each back to its snapshot in that checkpoint */
static int h_range_reset(struct hd_call *q)
{
    struct hd_err err = {0};
    json_t *b = NULL;
    if (q->c->len && !(b = parse_body(q->c, q->r)))
        return -1;
    int rc = hd_range_reset(q->api->rg, q->cap[0], b, &q->r->json, &err);
    if (rc < 0 && err.status == 404) { /* not this node's own: one on the cluster? */
        struct hd_err cerr = {0};
        int c = hd_cluster_range_reset(q->api->cluster, q->cap[0], b, &q->r->json, &cerr);
        if (c <= 0) { /* 1: not on the cluster either (the 404 stands) */
            rc = c;
            err = cerr;
        }
    }
    json_decref(b);
    return rc < 0 ? fail_reply(q->r, &err) : 0;
}

/* POST /v1/ranges/NAME/checkpoints {"name"}: 201 with its summary. */
static int h_range_checkpoint(struct hd_call *q)
{
    struct hd_err err = {0};
    json_t *b = parse_body(q->c, q->r);
    if (!b)
        return -1;
    int rc = hd_range_checkpoint(q->api->rg, q->cap[0], b, &q->r->json, &err);
    json_decref(b);
    if (rc < 0)
        return fail_reply(q->r, &err);
    q->r->status = 201;
    return 0;
}

static int h_range_checkpoints(struct hd_call *q)
{
    struct hd_err err = {0};
    return json_reply(q->r, hd_checkpoint_list(q->api->gs, q->cap[0], &err), &err);
}

static int h_range_checkpoint_rm(struct hd_call *q)
{
    struct hd_err err = {0};
    if (hd_range_checkpoint_rm(q->api->rg, q->cap[0], q->cap[1], &err) < 0)
        return fail_reply(q->r, &err);
    q->r->json = json_pack("{ss ss}", "range", q->cap[0], "removed", q->cap[1]);
    return 0;
}

static int h_audit(struct hd_call *q)
{
    struct hd_err err = {0};
    const char *l = query(q->mc, "limit");
    long lim = l ? strtol(l, NULL, 10) : 100;
    if (lim < 0 || lim > 1000000)
        return error_reply(q->r, 400, "limit", "limit must be 0-1000000");
    return json_reply(q->r, hd_audit_list(q->api->st, (size_t)lim, &err), &err);
}

static int h_audit_verify(struct hd_call *q)
{
    struct hd_err err = {0};
    return json_reply(q->r, hd_audit_verify(q->api->st, &err), &err);
}

/* ---- the routes: the API and its access policy -------------------------------- */

/* One row a route (routes.h): the role a caller needs (else 403, before
 * 405 and before the handler looks at anything), whether the request is
 * audited (refused and failed ones too) and its handler. A request gets the
 * most specific row that matches it. The fallback rows ("**", no handler)
 * give the policy of the paths that have no route: a caller who passes is
 * answered 405 "not part of the API", or 404 under an unknown collection.
 * tests/unit/test_herdd_routes.c checks the table. */
#define ANY HD_NEED_ANY
#define SYSADMIN HD_NEED_SYSADMIN
#define SECADMIN HD_NEED_SECADMIN
#define AUDITOR HD_NEED_AUDITOR
#define AUDITED true
#define READONLY false
const struct hd_route hd_routes[] = {
    /* method   pattern                    need      audited   handler */
    {"GET",    "/v1/node",                 ANY,      READONLY, h_node},
    {"POST",   "/v1/node/plan",            ANY,      READONLY, h_node_plan},
    {"POST",   "/v1/node/network",         SECADMIN, AUDITED,  h_node_network},
    {"GET",    "/v1/templates",            ANY,      READONLY, h_templates},
    {"POST",   "/v1/templates",            SYSADMIN, AUDITED,  h_template_add},
    {"POST",   "/v1/templates/derive",     SYSADMIN, AUDITED,  h_template_derive},
    {"GET",    "/v1/templates/{name}",     ANY,      READONLY, h_template},
    {"DELETE", "/v1/templates/{name}",     SYSADMIN, AUDITED,  h_template_rm},
    {"GET",    "/v1/vms",                  ANY,      READONLY, h_vms},
    {"POST",   "/v1/vms",                  SYSADMIN, AUDITED,  h_vm_create},
    {"GET",    "/v1/vms/{name}",           ANY,      READONLY, h_vm},
    {"DELETE", "/v1/vms/{name}",           SYSADMIN, AUDITED,  h_vm_rm},
    {"GET",    "/v1/vms/{name}/console",   ANY,      READONLY, h_vm_console},
    {"POST",   "/v1/vms/{name}/console",   SYSADMIN, AUDITED,  h_vm_console_input},
    {"GET",    "/v1/vms/{name}/net",       ANY,      READONLY, h_vm_net},
    {"GET",    "/v1/vms/{name}/logs",      ANY,      READONLY, h_vm_logs},
    {"POST",   "/v1/vms/{name}/snapshot",  SYSADMIN, AUDITED,  h_vm_snapshot},
    {"POST",   "/v1/vms/{name}/restore",   SYSADMIN, AUDITED,  h_vm_restore},
    {"POST",   "/v1/vms/{name}/{action}",  SYSADMIN, AUDITED,  h_vm_action},
    {"GET",    "/v1/snapshots",            ANY,      READONLY, h_snapshots},
    {"GET",    "/v1/snapshots/{name}",     ANY,      READONLY, h_snapshot},
    {"DELETE", "/v1/snapshots/{name}",     SYSADMIN, AUDITED,  h_snapshot_rm},
    {"GET",    "/v1/ranges",               ANY,      READONLY, h_ranges},
    {"POST",   "/v1/ranges",               SYSADMIN, AUDITED,  h_range_up},
    {"GET",    "/v1/ranges/{name}",        ANY,      READONLY, h_range},
    {"DELETE", "/v1/ranges/{name}",        SYSADMIN, AUDITED,  h_range_down},
    {"POST",   "/v1/ranges/{name}/reset",  SYSADMIN, AUDITED,  h_range_reset},
    {"GET",    "/v1/ranges/{name}/checkpoints", ANY, READONLY, h_range_checkpoints},
    {"POST",   "/v1/ranges/{name}/checkpoints", SYSADMIN, AUDITED, h_range_checkpoint},
    {"DELETE", "/v1/ranges/{name}/checkpoints/{cp}", SYSADMIN, AUDITED, h_range_checkpoint_rm},
    {"GET",    "/v1/events",               ANY,      READONLY, h_events},
    {"GET",    "/v1/cluster/nodes",        ANY,      READONLY, h_cluster_nodes},
    {"GET",    "/v1/cluster/status",       ANY,      READONLY, h_cluster_status},
    {"GET",    "/v1/audit",                AUDITOR,  READONLY, h_audit},
    {"GET",    "/v1/audit/verify",         AUDITOR,  READONLY, h_audit_verify},
    /* fallbacks: paths without a route */
    {"POST",   "/v1/node/plan/**",         ANY,      READONLY, NULL},
    {"POST",   "/v1/node/network/**",      SECADMIN, AUDITED,  NULL},
    {"GET",    "/v1/audit/**",             AUDITOR,  READONLY, NULL},
    {"HEAD",   "/v1/audit/**",             AUDITOR,  READONLY, NULL},
    {"*",      "/v1/audit/**",             AUDITOR,  AUDITED,  NULL},
    {"GET",    "/**",                      ANY,      READONLY, NULL},
    {"HEAD",   "/**",                      SYSADMIN, READONLY, NULL},
    {"*",      "/**",                      SYSADMIN, AUDITED,  NULL},
};
const size_t hd_routes_n = sizeof(hd_routes) / sizeof(hd_routes[0]);
#undef ANY
#undef SYSADMIN
#undef SECADMIN
#undef AUDITOR
#undef AUDITED
#undef READONLY

/* Answers a request whose caller has roles (not none) into r: 414 and 404
 * for paths that are not /v1/COLLECTION[/NAME[/SUB[/ITEM]]], then the matched row's
 * role (403), 405 for methods other than GET, POST and DELETE, the row's
 * handler, or 404/405 where only a fallback row matched. */
static int route(struct hd_api *api, struct MHD_Connection *mc, struct conn *c,
                 const char *method, const char *url, unsigned roles, struct reply *r)
{
    struct hd_path p;
    struct hd_call q = {.api = api, .mc = mc, .c = c, .r = r};

    if (hd_path_split(url, &p) < 0)
        return error_reply(r, 414, "", "path too long");
    if (p.nseg < 2 || strcmp(p.seg[0], "v1"))
        return error_reply(r, 404, "", "no such path: %s (API paths start with /v1/)", url);
    if (p.nseg > 5)
        return error_reply(r, 404, "", "no such path: %s", url);
    if (p.nseg > 2)
        snprintf(r->target, sizeof(r->target), "%s", p.seg[2]);

    const struct hd_route *row = hd_route_match(hd_routes, hd_routes_n, method, &p, q.cap);
    if (!hd_route_allowed(roles, row))
        return error_reply(r, 403, "", "uid %u may not %s %s: %s is required", (unsigned)c->uid,
                           method, url, hd_need_name(row ? row->need : HD_NEED_UNSET));
    if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "DELETE"))
        return error_reply(r, 405, "", "method %s is not allowed", method);
    r->status = 200;
    if (row->handler)
        return row->handler(&q);
    if (!hd_route_collection_known(hd_routes, hd_routes_n, p.seg[1]))
        return error_reply(r, 404, "", "no such path: %s", url);
    return error_reply(r, 405, "", "%s %s is not part of the API", method, url);
}

/* Sends r (JSON or raw) and audits it if its route says so (hd_routes: also
 * requests refused before routing). close: the connection
 * is closed after the answer (a request refused before its body was read). */
static enum MHD_Result answer(struct hd_api *api, struct MHD_Connection *mc, uid_t uid,
                              unsigned roles, const char *method, const char *url,
                              struct reply *r, bool close)
{
    if (hd_route_audited(hd_routes, hd_routes_n, method, url)) {
        const char *msg = json_string_value(json_object_get(r->json, "error"));
        hd_audit(api->st, uid, roles, method, url, r->target, r->status, msg);
    }
    struct MHD_Response *resp = r->raw;
    if (!resp) {
        char *text = r->json ? json_dumps(r->json, JSON_COMPACT) : strdup("{}");
        size_t n = strlen(text);
        text = realloc(text, n + 2);
        text[n++] = '\n';
        text[n] = 0;
        resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "application/json");
    }
    if (close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    json_decref(r->json);
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The first callback of a request, before any body byte is read: callers
 * without credentials or role, over their uid's connection limit, or
 * announcing a body over HD_BODY_MAX are answered at once and the
 * connection closed, so nothing of theirs is ever buffered. Returns false
 * when the request was refused (r filled). */
static bool admit(struct hd_api *api, struct MHD_Connection *mc, const struct sock *s,
                  unsigned roles, struct reply *r)
{
    if (!s || !s->cred) {
        error_reply(r, 403, "", "caller's credentials are unknown");
        return false;
    }
    if (!roles) {
        error_reply(r, 403, "", "uid %u has no role on this node", (unsigned)s->uid);
        return false;
    }
    if (s->over) {
        error_reply(r, 429, "", "uid %u has more than %u connections open to herdd",
                    (unsigned)s->uid, api->cfg->api_conns_per_uid);
        return false;
    }
    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > HD_BODY_MAX) {
        error_reply(r, 413, "", "request body over %u bytes", HD_BODY_MAX);
        return false;
    }
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    struct hd_api *api = cls;
    struct conn *c = *con_cls;
    (void)version;
    if (!c) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        const struct sock *s = ci ? ci->socket_context : NULL;
        unsigned roles = s && s->cred ? hd_roles_of(api->cfg, s->uid) : 0;
        struct reply r = {0};

        if (!admit(api, mc, s, roles, &r))
            return answer(api, mc, s && s->cred ? s->uid : (uid_t)-1, roles, method, url, &r, true);
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        c->cred = true;
        c->uid = s->uid;
        c->pid = s->pid;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        if (c->len + *upload_size > HD_BODY_MAX) {
            c->too_big = true;
        } else {
            if (c->len + *upload_size + 1 > c->cap) {
                c->cap = (c->len + *upload_size + 1) * 2;
                if (c->cap > HD_BODY_MAX + 1)
                    c->cap = HD_BODY_MAX + 1;
                c->body = realloc(c->body, c->cap);
            }
            memcpy(c->body + c->len, upload, *upload_size);
            c->len += *upload_size;
            c->body[c->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    struct reply r = {0};
    unsigned roles = hd_roles_of(api->cfg, c->uid);
    if (!roles)
        error_reply(&r, 403, "", "uid %u has no role on this node", (unsigned)c->uid);
    else if (c->too_big)
        error_reply(&r, 413, "", "request body over %u bytes", HD_BODY_MAX);
    else
        route(api, mc, c, method, url, roles, &r);
    return answer(api, mc, c->uid, roles, method, url, &r, false);
}

static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls,
                    enum MHD_RequestTerminationCode tc)
{
    struct conn *c = *con_cls;
    (void)cls;
    (void)mc;
    (void)tc;
    if (c) {
        free(c->body);
        free(c);
    }
    *con_cls = NULL;
}

int hd_api_start(struct hd_api *api, struct hd_ranges *rg, struct hd_guests *gs,
                 struct hd_cluster *cl, struct hd_err *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    api->gs = gs;
    api->rg = rg;
    api->cluster = cl;
    api->res = gs->res;
    api->st = gs->st;
    api->cfg = gs->cfg;
    api->daemon = NULL;
    api->listen_fd = -1;
    pthread_mutex_init(&api->uid_counts_mu, NULL);
    api->uid_counts = calloc(HD_API_CONNECTIONS, sizeof(*api->uid_counts));
    if (!api->uid_counts)
        return hd_fail(err, 500, "", "out of memory");

    const char *path = api->cfg->socket_path;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    api->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (api->listen_fd < 0)
        return hd_fail(err, 500, "socket", "socket: %s", strerror(errno));
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return hd_fail(err, 500, "socket", "%s exists and is not a socket", path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(probe);
            return hd_fail(err, 500, "socket", "%s: another herdd answers there", path);
        }
        close(probe);
        unlink(path);
    }
    mode_t old = umask(0);
    int rc = bind(api->listen_fd, (struct sockaddr *)&a, sizeof(a));
    umask(old);
    if (rc < 0)
        return hd_fail(err, 500, "socket", "bind %s: %s", path, strerror(errno));
    /* Anyone may connect; what a caller may do depends on its uid. */
    chmod(path, 0666);
    if (listen(api->listen_fd, 512) < 0)
        return hd_fail(err, 500, "socket", "listen %s: %s", path, strerror(errno));
    /* the callbacks get api as their cls */
    api->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                                       MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                       MHD_USE_ERROR_LOG,
                                   0, NULL, NULL, on_request, api, MHD_OPTION_LISTEN_SOCKET,
                                   api->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_done, api,
                                   MHD_OPTION_NOTIFY_CONNECTION, on_connection, api,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)HD_API_CONNECTIONS,
                                   MHD_OPTION_THREAD_STACK_SIZE, (size_t)HD_API_THREAD_STACK,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                                   MHD_OPTION_END);
    if (!api->daemon)
        return hd_fail(err, 500, "socket", "libmicrohttpd did not start on %s", path);
    return 0;
}

void hd_api_stop(struct hd_api *api)
{
    if (api->daemon)
        MHD_stop_daemon(api->daemon); /* every connection's thread has ended */
    api->daemon = NULL;
    /* libmicrohttpd closed the listening socket */
    if (api->listen_fd >= 0)
        unlink(api->cfg->socket_path);
    api->listen_fd = -1;
    if (api->uid_counts) {
        free(api->uid_counts);
        api->uid_counts = NULL;
        pthread_mutex_destroy(&api->uid_counts_mu);
    }
}
