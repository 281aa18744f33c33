/* Applying, reading and removing the per-tap kernel filter through
 * libnftables (the library nft itself is built on); removal through one
 * nfnetlink message of our own. Kept apart from kfilter.c so that programs
 * which only generate rules (unit tests) and programs which never touch
 * them (herd-vmm) do not link libnftables. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "herd/netdev_kfilter.h"

struct nft {
    struct nft_ctx *ctx;
};

static int nft_open(struct nft *n, bool json)
{
    n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!n->ctx)
        return -ENOMEM;
    if (nft_ctx_buffer_output(n->ctx) || nft_ctx_buffer_error(n->ctx)) {
        nft_ctx_free(n->ctx);
        return -ENOMEM;
    }
    if (json)
        nft_ctx_output_set_flags(n->ctx, NFT_CTX_OUTPUT_JSON);
    return 0;
}

static void nft_close(struct nft *n)
{
    if (n->ctx)
        nft_ctx_free(n->ctx);
    n->ctx = NULL;
}

/* Runs cmd; 0 or -EIO with nft's first error line in err. */
static int nft_run(struct nft *n, const char *cmd, char *err, size_t errlen)
{
    if (nft_run_cmd_from_buffer(n->ctx, cmd) == 0)
        return 0;
    if (err && errlen) {
        const char *e = nft_ctx_get_error_buffer(n->ctx);
        snprintf(err, errlen, "%s", e && *e ? e : "nft failed");
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = 0;
    }
    return -EIO;
}

/* ---- installs, batched -----------------------------------------------------
 * libnftables (1.0.6) reads every table, chain, set and object of the
 * network namespace before each transaction that adds rules: with one table
 * per tap, N installs one by one cost O(N^2). Installs that callers ask for
 * at the same time (a range's guests starting in parallel) go into one
 * transaction: whoever finds no transaction running runs every install
 * queued by then, the others wait for its result. When a batch of several
 * fails, each of its installs runs alone, so that each caller gets its own
 * table's error and the others their tables. */

struct kf_job {
    const char *cmd;      /* this install's nft script */
    int rc;
    char msg[200];
    bool done;            /* rc and msg are set (written under kf_mu) */
    struct kf_job *next;
};

static pthread_mutex_t kf_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kf_cv = PTHREAD_COND_INITIALIZER;
static struct kf_job *kf_queue; /* waiting for the next batch */
static bool kf_running;         /* a batch is being run */

/* One nft transaction of script; rc and msg. */
static int run_script(const char *script, char *msg, size_t msglen)
{
    struct nft n;
    int rc = nft_open(&n, false);
    if (rc) {
        snprintf(msg, msglen, "libnftables: %s", strerror(-rc));
        return rc;
    }
    rc = nft_run(&n, script, msg, msglen);
    nft_close(&n);
    /* the cache libnftables built (the whole ruleset: tens of MiB with
     * 1000 taps) goes back to the system, not into the heap's free lists */
    malloc_trim(0);
    return rc;
}

/* Runs a batch (no lock held): every job's rc and msg. */
static void run_batch(struct kf_job *batch)
{
    size_t len = 0;
    char *all = NULL;
    FILE *f = batch->next ? open_memstream(&all, &len) : NULL;
    int rc = -1;

    if (f) {
        for (struct kf_job *j = batch; j; j = j->next)
            fputs(j->cmd, f);
        rc = fclose(f) == 0 ? run_script(all, batch->msg, sizeof(batch->msg)) : -1;
        free(all);
    }
    for (struct kf_job *j = batch; j; j = j->next)
        j->rc = rc == 0 ? 0 : run_script(j->cmd, j->msg, sizeof(j->msg));
}

/* script installed with the installs asked for at the same time; 0 or
 * -EIO (msg says why). */
static int install_batched(const char *script, char *msg, size_t msglen)
{
    struct kf_job me = {.cmd = script};

    pthread_mutex_lock(&kf_mu);
    me.next = kf_queue;
    kf_queue = &me;
    while (!me.done) {
        if (kf_running) {
            pthread_cond_wait(&kf_cv, &kf_mu);
            continue;
        }
        struct kf_job *batch = kf_queue;
        kf_queue = NULL;
        kf_running = true;
        pthread_mutex_unlock(&kf_mu);
        run_batch(batch);
        pthread_mutex_lock(&kf_mu);
        for (struct kf_job *j = batch, *next; j; j = next) {
            next = j->next; /* a waiter's job is gone once it sees done */
            j->done = true;
        }
        kf_running = false;
        pthread_cond_broadcast(&kf_cv);
    }
    pthread_mutex_unlock(&kf_mu);
    snprintf(msg, msglen, "%s", me.msg);
    return me.rc;
}

/* Appends cfg's table to f: create-then-delete replaces a table of a
 * former tap of that name in the same transaction as the new one is made. */
static int put_table(FILE *f, const struct netdev_kfilter_cfg *cfg)
{
    char table[IFNAMSIZ + 8], *rules = NULL;
    int rc = netdev_kfilter_rules(cfg, &rules);

    if (rc)
        return rc;
    netdev_kfilter_table_name(cfg->tap, table);
    fprintf(f, "table netdev %s\ndelete table netdev %s\n%s", table, table, rules);
    free(rules);
    return 0;
}

int netdev_kfilter_install_all(const struct netdev_kfilter_cfg *cfgs, unsigned n,
                               struct herd_err *err)
{
    char msg[200], *cmd = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&cmd, &len);
    int rc = f ? 0 : -ENOMEM;

    herd_err_clear(err);
    for (unsigned i = 0; i < n && !rc; i++)
        if ((rc = put_table(f, &cfgs[i])))
            herd_err_set(err, rc, "tap", "kernel filter for '%s': bad configuration",
                         cfgs[i].tap);
    if (f && fclose(f) != 0 && !rc)
        rc = -ENOMEM;
    if (rc) {
        free(cmd);
        return err->msg[0] ? rc : herd_err_set(err, rc, "tap", "out of memory");
    }
    rc = install_batched(cmd, msg, sizeof(msg));
    if (rc)
        herd_err_set(err, rc, "tap", "kernel filter for '%s'%s (nftables): %s", cfgs[0].tap,
                     n > 1 ? " and the guest's other taps" : "", msg);
    free(cmd);
    return rc;
}

int netdev_kfilter_install(const struct netdev_kfilter_cfg *cfg, struct herd_err *err)
{
    return netdev_kfilter_install_all(cfg, 1, err);
}

static int remove_table(struct nft *n, const char *table)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "table netdev %s\ndelete table netdev %s\n", table, table);
    return nft_run(n, cmd, NULL, 0);
}

/* ---- removal without libnftables ------------------------------------------
 * libnftables (1.0.6) reads every table, chain, set and object of the
 * network namespace into its cache before any command that adds or
 * deletes: with one table per tap, removing N taps' tables one by one
 * costs O(N^2) (1000 guests: minutes of `range down`). Deleting a table by
 * name needs no cache: one NFT_MSG_DELTABLE in a batch (the kernel removes
 * its chains, sets and objects with it). */

struct nl_buf {
    char data[512];
    size_t len;
};

/* Appends a message (header, nfgenmsg) of type with flags; the header. */
static struct nlmsghdr *nl_put(struct nl_buf *b, uint16_t type, uint16_t flags, uint8_t family,
                               uint16_t res_id, uint32_t seq)
{
    struct nlmsghdr *h = (struct nlmsghdr *)(b->data + b->len);
    struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(h);
    h->nlmsg_len = NLMSG_LENGTH(sizeof(*g));
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = seq;
    h->nlmsg_pid = 0;
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = htons(res_id);
    return h;
}

static void nl_end(struct nl_buf *b, struct nlmsghdr *h)
{
    b->len += NLMSG_ALIGN(h->nlmsg_len);
}

/* A string attribute at the end of h (room checked by the caller). */
static void nl_attr_str(struct nlmsghdr *h, uint16_t type, const char *s)
{
    struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    size_t n = strlen(s) + 1;
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + n);
    memcpy((char *)a + NLA_HDRLEN, s, n);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* The kernel's answer to message seq: 0 (its ACK) or its negative errno. */
static int nl_wait_ack(int fd, uint32_t seq)
{
    char buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, 5000);
        if (r == 0)
            return -ETIMEDOUT;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
                continue;
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (e->error || h->nlmsg_seq == seq)
                return e->error; /* a batch error (seq of its message) or our ACK */
        }
    }
}

/* Deletes netdev table `table`; 0 when there is none. */
static int delete_table_nl(const char *table)
{
    struct nl_buf b = {.len = 0};
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    if (strlen(table) >= NFT_TABLE_MAXNAMELEN)
        return -ENAMETOOLONG;
    nl_end(&b, nl_put(&b, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC,
                      NFNL_SUBSYS_NFTABLES, 1));
    struct nlmsghdr *del = nl_put(&b, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE,
                                  NLM_F_REQUEST | NLM_F_ACK, NFPROTO_NETDEV, 0, 2);
    nl_attr_str(del, NFTA_TABLE_NAME, table);
    nl_end(&b, del);
    nl_end(&b, nl_put(&b, NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES,
                      3));
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0)
        return -errno;
    int rc = sendto(fd, b.data, b.len, 0, (struct sockaddr *)&k, sizeof(k)) < 0
                 ? -errno
                 : nl_wait_ack(fd, 2);
    close(fd);
    return rc == -ENOENT ? 0 : rc;
}

int netdev_kfilter_remove(const char *tap)
{
    char table[IFNAMSIZ + 8];
    int rc;

    if ((rc = netdev_kfilter_table_name(tap, table)))
        return rc;
    return delete_table_nl(table);
}

/* The "nftables" array of a JSON listing, or NULL. */
static json_t *list_json(struct nft *n, const char *cmd, json_t **root)
{
    json_error_t je;

    *root = NULL;
    if (nft_run(n, cmd, NULL, 0))
        return NULL;
    *root = json_loads(nft_ctx_get_output_buffer(n->ctx), 0, &je);
    json_t *a = json_object_get(*root, "nftables");
    return json_is_array(a) ? a : NULL;
}

static json_t *elem_json(json_t *e)
{
    json_t *p = json_object_get(e, "prefix");
    if (json_is_object(p)) {
        char t[96];
        snprintf(t, sizeof(t), "%s/%lld", json_string_value(json_object_get(p, "addr")),
                 (long long)json_integer_value(json_object_get(p, "len")));
        return json_string(t);
    }
    return json_deep_copy(e);
}

int netdev_kfilter_stats(const char *tap, json_t **out)
{
    char table[IFNAMSIZ + 8], cmd[128];
    json_t *root, *a, *item, *o, *drops, *limits, *addrs = NULL;
    json_int_t dp = 0, db = 0;
    struct nft n;
    size_t i;
    int rc;

    *out = NULL;
    if ((rc = netdev_kfilter_table_name(tap, table)) || (rc = nft_open(&n, true)))
        return rc;
    snprintf(cmd, sizeof(cmd), "list table netdev %s", table);
    a = list_json(&n, cmd, &root);
    nft_close(&n);
    if (!a) {
        json_decref(root);
        return -ENOENT;
    }
    o = json_pack("{ss ss}", "table", table, "enforced_by",
                  "nftables netdev ingress hook on the tap (host kernel)");
    drops = json_object();
    limits = json_object();
#define X(r) json_object_set_new(drops, #r, json_pack("{sI sI}", "packets", (json_int_t)0, \
                                                      "bytes", (json_int_t)0));
    NETDEV_KF_REASONS
#undef X
    json_array_foreach(a, i, item) {
        json_t *c = json_object_get(item, "counter"), *l = json_object_get(item, "limit"),
               *s = json_object_get(item, "set");
        if (json_is_object(c)) {
            const char *name = json_string_value(json_object_get(c, "name"));
            json_int_t p = json_integer_value(json_object_get(c, "packets"));
            json_int_t b = json_integer_value(json_object_get(c, "bytes"));
            json_t *pb = json_pack("{sI sI}", "packets", p, "bytes", b);
            if (name && !strcmp(name, "accepted")) {
                json_object_set_new(o, "accepted", pb);
            } else if (name) {
                json_object_set_new(drops, name, pb);
                dp += p;
                db += b;
            } else {
                json_decref(pb);
            }
        } else if (json_is_object(l)) {
            const char *name = json_string_value(json_object_get(l, "name"));
            json_t *lo = json_deep_copy(l);
            json_object_del(lo, "family");
            json_object_del(lo, "table");
            json_object_del(lo, "handle");
            json_object_del(lo, "name");
            json_object_set_new(limits, name && !strcmp(name, "limit_frames") ? "frames"
                                                                               : "bytes", lo);
        } else if (json_is_object(s)) {
            json_t *e = json_object_get(s, "elem");
            size_t k;
            json_t *x;
            if (!addrs)
                addrs = json_array();
            json_array_foreach(e, k, x)
                json_array_append_new(addrs, elem_json(x));
        }
    }
    json_object_set_new(o, "dropped", json_pack("{sI sI}", "packets", dp, "bytes", db));
    json_object_set_new(o, "drops", drops);
    json_object_set_new(o, "limits", limits);
    json_object_set_new(o, "addresses", addrs ? addrs : json_null());
    json_decref(root);
    *out = o;
    return 0;
}

int netdev_kfilter_cleanup(unsigned *removed)
{
    json_t *root, *a, *item;
    unsigned count = 0;
    struct nft n;
    size_t i;
    int rc;

    if (removed)
        *removed = 0;
    if ((rc = nft_open(&n, true)))
        return rc;
    a = list_json(&n, "list tables netdev", &root);
    json_array_foreach(a, i, item) {
        const char *name = json_string_value(json_object_get(json_object_get(item, "table"),
                                                             "name"));
        size_t pl = strlen(NETDEV_KF_TABLE_PREFIX);
        if (!name || strncmp(name, NETDEV_KF_TABLE_PREFIX, pl) || !name[pl] ||
            if_nametoindex(name + pl))
            continue;
        if (remove_table(&n, name) == 0)
            count++;
        else
            rc = -EIO;
    }
    json_decref(root);
    nft_close(&n);
    if (removed)
        *removed = count;
    return rc;
}
