/* Applying, reading and removing the per-tap kernel filter through
 * libnftables (the library nft itself is built on). Kept apart from
 * kfilter.c so that programs which only generate rules (unit tests) and
 * programs which never touch them (herd-vmm) do not link libnftables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int netdev_kfilter_install(const struct netdev_kfilter_cfg *cfg, struct herd_err *err)
{
    char table[IFNAMSIZ + 8], msg[200];
    char *rules = NULL, *cmd = NULL;
    struct nft n;
    int rc;

    herd_err_clear(err);
    if ((rc = netdev_kfilter_rules(cfg, &rules)))
        return herd_err_set(err, rc, "tap", "kernel filter for '%s': bad configuration",
                            cfg->tap);
    netdev_kfilter_table_name(cfg->tap, table);
    /* create-then-delete: replaces a table of a former tap of that name in
     * the same transaction as the new one is made */
    if (asprintf(&cmd, "table netdev %s\ndelete table netdev %s\n%s", table, table, rules) < 0) {
        free(rules);
        return herd_err_set(err, -ENOMEM, "tap", "out of memory");
    }
    free(rules);
    if ((rc = nft_open(&n, false)) == 0) {
        rc = nft_run(&n, cmd, msg, sizeof(msg));
        nft_close(&n);
        if (rc)
            herd_err_set(err, rc, "tap", "kernel filter for '%s' (nftables): %s", cfg->tap,
                         msg);
    } else {
        herd_err_set(err, rc, "tap", "libnftables: %s", strerror(-rc));
    }
    free(cmd);
    return rc;
}

static int remove_table(struct nft *n, const char *table)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "table netdev %s\ndelete table netdev %s\n", table, table);
    return nft_run(n, cmd, NULL, 0);
}

int netdev_kfilter_remove(const char *tap)
{
    char table[IFNAMSIZ + 8];
    struct nft n;
    int rc;

    if ((rc = netdev_kfilter_table_name(tap, table)) || (rc = nft_open(&n, false)))
        return rc;
    rc = remove_table(&n, table);
    nft_close(&n);
    return rc;
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
