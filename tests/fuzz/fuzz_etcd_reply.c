/*
 * libFuzzer target: herdd's readers of etcd's JSON gateway replies
 * (ctl/lib/etcd_reply.c): range, put, delete, txn, lease grant, keepalive,
 * time-to-live, a watch stream line and an error reply, with arbitrary
 * bytes. herdd reads them as hostile input (docs/cluster.md).
 *
 * Input: byte 0 picks the reader, the rest is the body.
 *
 * Contract checked beyond "no sanitizer report": a refusal (negative) comes
 * with a message; an accepted range gives n <= count (unless "more"),
 * NUL-terminated keys and values of their stated lengths; an accepted watch
 * line's events hold keys of their stated length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_etcd_reply: contract broken: %s: ", #cond);       \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void check_kv(const struct etcd_kv *kv)
{
    FUZZ_ASSERT(kv->key && kv->key[kv->key_len] == 0, "key not NUL-terminated at its length");
    FUZZ_ASSERT(!kv->value || kv->value[kv->value_len] == 0,
                "value not NUL-terminated at its length");
}

static void range(const char *body, size_t len)
{
    struct etcd_kvs kvs;
    struct herd_err err = {0};

    memset(&kvs, 0, sizeof(kvs));
    if (etcd_parse_range(body, len, &kvs, &err) < 0) {
        FUZZ_ASSERT(err.msg[0], "range refused without a message");
        return;
    }
    for (size_t i = 0; i < kvs.n; i++)
        check_kv(&kvs.kv[i]);
    etcd_kvs_free(&kvs);
}

static void watch_line(const char *body, size_t len)
{
    struct etcd_watch_msg m;
    struct herd_err err = {0};

    memset(&m, 0, sizeof(m));
    if (etcd_parse_watch_line(body, len, &m, &err) < 0) {
        FUZZ_ASSERT(err.msg[0], "watch line refused without a message");
        etcd_watch_msg_free(&m);
        return;
    }
    for (size_t i = 0; i < m.n_events; i++)
        check_kv(&m.events[i].kv);
    FUZZ_ASSERT(memchr(m.reason, 0, sizeof(m.reason)), "reason not NUL-terminated");
    etcd_watch_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct herd_err err = {0};
    int64_t a = 0, b = 0;
    bool ok = false;
    char *body;
    size_t len;
    int rc = 0;

    if (size < 1)
        return 0;
    len = size - 1;
    body = malloc(len + 1);
    if (!body)
        abort();
    memcpy(body, data + 1, len);
    body[len] = 0;
    switch (data[0] % 9) {
    case 0: range(body, len); break;
    case 1: rc = etcd_parse_put(body, len, &a, &err); break;
    case 2: rc = etcd_parse_delete(body, len, &a, &err); break;
    case 3: rc = etcd_parse_txn(body, len, &ok, &a, &err); break;
    case 4: rc = etcd_parse_grant(body, len, &a, &b, &err); break;
    case 5: rc = etcd_parse_keepalive(body, len, 42, &a, &err); break;
    case 6: rc = etcd_parse_ttl(body, len, &a, &b, &err); break;
    case 7: watch_line(body, len); break;
    case 8: rc = etcd_parse_error(400 + (long)(len % 200), body, len, &err);
            FUZZ_ASSERT(rc < 0, "an error reply read as success");
            break;
    }
    FUZZ_ASSERT(rc >= 0 || err.msg[0], "refused (%d) without a message", rc);
    free(body);
    return 0;
}
