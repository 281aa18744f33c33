/* The etcd client's reading of the JSON gateway's replies (ctl/lib/etcd_reply.c):
 * what etcd 3.4 answers (int64s as strings, defaults left out, base64 bytes)
 * and hostile or broken replies, each refused with -EPROTO (or the errno the
 * reply means) and a message naming the field; every prefix of a valid reply
 * and bytes changed in it are read without a crash (ASan+UBSan build). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd/etcd.h"

#define S(lit) (lit), strlen(lit)

static const char range_ok[] =
    "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
    "\"revision\":\"7\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L2hlcmQveA==\","
    "\"create_revision\":\"2\",\"mod_revision\":\"6\",\"version\":\"3\",\"value\":\"aGVsbG8=\","
    "\"lease\":\"2324035850976999438\"},{\"key\":\"L2hlcmQveQ==\",\"value\":\"AAEA\","
    "\"create_revision\":5,\"mod_revision\":5,\"version\":1}],\"count\":\"2\"}";

static void test_range_valid(void **state)
{
    struct etcd_kvs kvs;
    struct herd_err err;
    (void)state;

    assert_int_equal(etcd_parse_range(S(range_ok), &kvs, &err), 0);
    assert_int_equal(kvs.n, 2);
    assert_int_equal(kvs.revision, 7);
    assert_int_equal(kvs.count, 2);
    assert_string_equal(kvs.kv[0].key, "/herd/x");
    assert_int_equal(kvs.kv[0].key_len, 7);
    assert_string_equal(kvs.kv[0].value, "hello");
    assert_int_equal(kvs.kv[0].create_revision, 2);
    assert_int_equal(kvs.kv[0].mod_revision, 6);
    assert_int_equal(kvs.kv[0].version, 3);
    assert_true(kvs.kv[0].lease == 2324035850976999438LL);
    /* binary values: "\0\1\0" */
    assert_int_equal(kvs.kv[1].value_len, 3);
    assert_memory_equal(kvs.kv[1].value, "\0\1\0", 3);
    assert_int_equal(kvs.kv[1].lease, 0);
    etcd_kvs_free(&kvs);
    /* no key: etcd leaves kvs and count out */
    assert_int_equal(etcd_parse_range(S("{\"header\":{\"revision\":\"2\"}}"), &kvs, &err), 0);
    assert_int_equal(kvs.n, 0);
    assert_int_equal(kvs.count, 0);
    assert_int_equal(kvs.revision, 2);
    etcd_kvs_free(&kvs);
    /* a value left out (empty) and more */
    assert_int_equal(etcd_parse_range(S("{\"kvs\":[{\"key\":\"YQ==\"}],\"count\":\"9\","
                                        "\"more\":true}"), &kvs, &err), 0);
    assert_int_equal(kvs.kv[0].value_len, 0);
    assert_string_equal(kvs.kv[0].value, "");
    assert_true(kvs.more);
    etcd_kvs_free(&kvs);
}

struct bad_case {
    const char *body;
    int rc;
    const char *field; /* in err.field and err.msg; "" when not about a field */
};

static void expect_range(const struct bad_case *c)
{
    struct etcd_kvs kvs;
    struct herd_err err;

    herd_err_clear(&err);
    int rc = etcd_parse_range(S(c->body), &kvs, &err);
    if (rc != c->rc)
        fail_msg("'%s': %d, not %d (%s)", c->body, rc, c->rc, err.msg);
    assert_int_equal(kvs.n, 0);
    assert_null(kvs.kv);
    assert_int_equal(err.code, c->rc);
    assert_true(err.msg[0]);
    if (strcmp(err.field, c->field) || !strstr(err.msg, c->field))
        fail_msg("'%s': field '%s' msg '%s', not '%s'", c->body, err.field, err.msg, c->field);
}

static void test_range_hostile(void **state)
{
    static const struct bad_case cases[] = {
        {"", -EPROTO, ""},
        {"null", -EPROTO, ""},
        {"[1,2]", -EPROTO, ""},
        {"\"kvs\"", -EPROTO, ""},
        {"{\"kvs\":[", -EPROTO, ""},
        {"{\"kvs\":[]} trailing", -EPROTO, ""},
        {"{\"kvs\":[],\"kvs\":[]}", -EPROTO, ""}, /* duplicate keys */
        {"{\"header\":[]}", -EPROTO, "header"},
        {"{\"header\":{\"revision\":true}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\"7x\"}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\"\"}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\"-\"}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\" 7\"}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\"+7\"}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\"99999999999999999999\"}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":1.5}}", -EPROTO, "revision"},
        {"{\"header\":{\"revision\":\"-5\"},\"kvs\":[]}", -EPROTO, "revision"},
        {"{\"count\":{}}", -EPROTO, "count"},
        {"{\"more\":\"yes\"}", -EPROTO, "more"},
        {"{\"kvs\":{}}", -EPROTO, "kvs"},
        {"{\"kvs\":[1]}", -EPROTO, "kvs"},
        {"{\"kvs\":[null]}", -EPROTO, "kvs"},
        {"{\"kvs\":[{}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":5}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"YQ\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"Y===\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"Y=Q=\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"YQ==YQ==\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"@@@@\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"YQ-_\"}],\"count\":\"1\"}", -EPROTO, "key"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"value\":[]}],\"count\":\"1\"}", -EPROTO, "value"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"value\":\"%%%%\"}],\"count\":\"1\"}", -EPROTO, "value"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"lease\":\"x\"}],\"count\":\"1\"}", -EPROTO, "lease"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"version\":null}],\"count\":\"1\"}", -EPROTO, "version"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":[]}],\"count\":\"1\"}", -EPROTO,
         "mod_revision"},
        {"{\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":{}}],\"count\":\"1\"}", -EPROTO,
         "create_revision"},
        {"{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"Yg==\"}],\"count\":\"1\"}", -EPROTO, "count"},
        {"{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"\"}],\"count\":\"2\"}", -EPROTO, "key"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_range(&cases[i]);
}

static void test_reply_too_large(void **state)
{
    size_t n = ETCD_REPLY_MAX + 1;
    char *big = malloc(n);
    struct etcd_kvs kvs;
    struct herd_err err;
    (void)state;

    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    assert_int_equal(etcd_parse_range(big, n, &kvs, &err), -EPROTO);
    assert_non_null(strstr(err.msg, "larger than"));
    free(big);
}

static void test_put_delete(void **state)
{
    struct herd_err err;
    int64_t rev = -1, n = -1;
    (void)state;

    assert_int_equal(etcd_parse_put(S("{\"header\":{\"revision\":\"12\"}}"), &rev, &err), 0);
    assert_int_equal(rev, 12);
    assert_int_equal(etcd_parse_put(S("{\"header\":\"x\"}"), &rev, &err), -EPROTO);
    assert_int_equal(etcd_parse_delete(S("{\"header\":{},\"deleted\":\"3\"}"), &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(etcd_parse_delete(S("{\"header\":{}}"), &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(etcd_parse_delete(S("{\"deleted\":\"-1\"}"), &n, &err), -EPROTO);
    assert_string_equal(err.field, "deleted");
    assert_int_equal(etcd_parse_delete(S("{\"deleted\":true}"), NULL, &err), -EPROTO);
}

static void test_txn(void **state)
{
    struct herd_err err;
    int64_t rev = 0;
    bool ok = true;
    (void)state;

    assert_int_equal(etcd_parse_txn(S("{\"header\":{\"revision\":\"6\"},\"succeeded\":true,"
                                      "\"responses\":[{\"response_put\":{\"header\":{}}}]}"),
                                    &ok, &rev, &err), 0);
    assert_true(ok);
    assert_int_equal(rev, 6);
    /* failed compares: etcd leaves "succeeded" out */
    assert_int_equal(etcd_parse_txn(S("{\"header\":{\"revision\":\"6\"},\"responses\":"
                                      "[{\"response_range\":{\"kvs\":[]}}]}"),
                                    &ok, NULL, &err), 0);
    assert_false(ok);
    static const char *const bad[] = {
        "{\"succeeded\":\"true\"}",
        "{\"succeeded\":1}",
        "{\"responses\":{}}",
        "{\"responses\":[1]}",
        "{\"responses\":[{}]}",
        "{\"responses\":[{\"response_put\":{},\"response_range\":{}}]}",
        "{\"responses\":[{\"response_launch\":{}}]}",
        "{\"responses\":[{\"response_put\":7}]}",
        "{\"header\":{\"revision\":[]},\"succeeded\":true}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        herd_err_clear(&err);
        if (etcd_parse_txn(S(bad[i]), &ok, &rev, &err) != -EPROTO || !err.msg[0])
            fail_msg("txn '%s' was accepted", bad[i]);
    }
}

static void test_leases(void **state)
{
    struct herd_err err;
    int64_t id = 0, ttl = 0, granted = 0;
    (void)state;

    assert_int_equal(etcd_parse_grant(S("{\"header\":{},\"ID\":\"2324035850976999432\","
                                        "\"TTL\":\"3\"}"), &id, &ttl, &err), 0);
    assert_true(id == 2324035850976999432LL);
    assert_int_equal(ttl, 3);
    assert_int_equal(etcd_parse_grant(S("{\"ID\":\"0\",\"TTL\":\"3\"}"), &id, &ttl, &err),
                     -EPROTO);
    assert_string_equal(err.field, "ID");
    assert_int_equal(etcd_parse_grant(S("{\"ID\":\"5\"}"), &id, &ttl, &err), -EPROTO);
    assert_string_equal(err.field, "TTL");
    assert_int_equal(etcd_parse_grant(S("{\"ID\":\"5\",\"TTL\":\"3\",\"error\":\"no\"}"), &id,
                                      &ttl, &err), -EINVAL);
    assert_int_equal(etcd_parse_grant(S("{\"ID\":\"5\",\"TTL\":\"3\",\"error\":5}"), &id, &ttl,
                                      &err), -EPROTO);
    /* keepalive: a stream of one result */
    assert_int_equal(etcd_parse_keepalive(S("{\"result\":{\"header\":{},\"ID\":\"77\","
                                            "\"TTL\":\"30\"}}"), 77, &ttl, &err), 0);
    assert_int_equal(ttl, 30);
    /* an expired lease: TTL left out */
    assert_int_equal(etcd_parse_keepalive(S("{\"result\":{\"header\":{},\"ID\":\"77\"}}"), 77,
                                          &ttl, &err), -ENOENT);
    assert_int_equal(etcd_parse_keepalive(S("{\"result\":{\"ID\":\"78\",\"TTL\":\"30\"}}"), 77,
                                          &ttl, &err), -EPROTO);
    assert_string_equal(err.field, "ID");
    assert_int_equal(etcd_parse_keepalive(S("{\"result\":[]}"), 77, &ttl, &err), -EPROTO);
    assert_int_equal(etcd_parse_keepalive(S("{}"), 77, &ttl, &err), -EPROTO);
    assert_int_equal(etcd_parse_keepalive(S("{\"error\":{\"grpc_code\":14}}"), 77, &ttl, &err),
                     -EPROTO);
    assert_int_equal(etcd_parse_keepalive(S("{\"error\":\"x\",\"message\":\"gone\","
                                            "\"code\":5}"), 77, &ttl, &err), -ENOENT);
    /* time to live */
    assert_int_equal(etcd_parse_ttl(S("{\"ID\":\"77\",\"TTL\":\"29\",\"grantedTTL\":\"30\"}"),
                                    &ttl, &granted, &err), 0);
    assert_int_equal(ttl, 29);
    assert_int_equal(granted, 30);
    assert_int_equal(etcd_parse_ttl(S("{\"ID\":\"77\",\"TTL\":\"-1\"}"), &ttl, &granted, &err),
                     -ENOENT);
    assert_int_equal(etcd_parse_ttl(S("{\"TTL\":\"soon\"}"), &ttl, &granted, &err), -EPROTO);
}

static void test_watch_lines(void **state)
{
    struct etcd_watch_msg m;
    struct herd_err err;
    (void)state;

    assert_int_equal(etcd_parse_watch_line(S("{\"result\":{\"header\":{\"revision\":\"6\"},"
                                             "\"created\":true}}"), &m, &err), 0);
    assert_true(m.created);
    assert_false(m.canceled);
    assert_int_equal(m.revision, 6);
    assert_int_equal(m.n_events, 0);
    etcd_watch_msg_free(&m);
    assert_int_equal(etcd_parse_watch_line(
                         S("{\"result\":{\"header\":{\"revision\":\"8\"},\"watch_id\":\"1\","
                           "\"events\":[{\"kv\":{\"key\":\"L2hlcmQvYQ==\",\"create_revision\":"
                           "\"7\",\"mod_revision\":\"7\",\"version\":\"1\",\"value\":\"MQ==\"}},"
                           "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L2hlcmQvYQ==\","
                           "\"mod_revision\":\"8\"}}]}}"), &m, &err), 0);
    assert_int_equal(m.watch_id, 1);
    assert_int_equal(m.n_events, 2);
    assert_int_equal(m.events[0].type, ETCD_EVENT_PUT);
    assert_string_equal(m.events[0].kv.key, "/herd/a");
    assert_string_equal(m.events[0].kv.value, "1");
    assert_int_equal(m.events[1].type, ETCD_EVENT_DELETE);
    assert_int_equal(m.events[1].kv.mod_revision, 8);
    etcd_watch_msg_free(&m);
    /* compaction: canceled with the compact revision */
    assert_int_equal(etcd_parse_watch_line(S("{\"result\":{\"header\":{},\"canceled\":true,"
                                             "\"compact_revision\":\"5\"}}"), &m, &err), 0);
    assert_true(m.canceled);
    assert_int_equal(m.compact_revision, 5);
    etcd_watch_msg_free(&m);
    assert_int_equal(etcd_parse_watch_line(S("{\"result\":{\"canceled\":true,"
                                             "\"cancel_reason\":\"no leader\"}}"), &m, &err), 0);
    assert_string_equal(m.reason, "no leader");
    etcd_watch_msg_free(&m);
    /* the stream's own error */
    assert_int_equal(etcd_parse_watch_line(S("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
                                             "\"message\":\"etcdserver: no leader\"}}"), &m,
                                           &err), -ECANCELED);
    assert_true(m.canceled);
    assert_string_equal(m.reason, "etcdserver: no leader");
    assert_non_null(strstr(err.msg, "no leader"));
    etcd_watch_msg_free(&m);
    static const char *const bad[] = {
        "{}",
        "{\"result\":[]}",
        "{\"result\":{\"created\":\"yes\"}}",
        "{\"result\":{\"canceled\":1}}",
        "{\"result\":{\"watch_id\":\"one\"}}",
        "{\"result\":{\"compact_revision\":\"-3\"}}",
        "{\"result\":{\"cancel_reason\":5}}",
        "{\"result\":{\"events\":{}}}",
        "{\"result\":{\"events\":[7]}}",
        "{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}",
        "{\"result\":{\"events\":[{\"type\":\"EXPLODE\",\"kv\":{\"key\":\"YQ==\"}}]}}",
        "{\"result\":{\"events\":[{\"type\":1,\"kv\":{\"key\":\"YQ==\"}}]}}",
        "{\"result\":{\"events\":[{\"kv\":[]}]}}",
        "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}},{\"kv\":{\"key\":\"!\"}}]}}",
        "{\"error\":\"string\"}",
        "{\"error\":{\"message\":5}}",
        "{\"error\":{\"grpc_code\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        herd_err_clear(&err);
        int rc = etcd_parse_watch_line(S(bad[i]), &m, &err);
        if (rc != -EPROTO || !err.msg[0])
            fail_msg("watch line '%s': %d '%s'", bad[i], rc, err.msg);
        assert_int_equal(m.n_events, 0);
        assert_null(m.events);
    }
}

static void test_errors(void **state)
{
    struct herd_err err;
    (void)state;

    assert_int_equal(etcd_parse_error(404, S("{\"error\":\"etcdserver: requested lease not "
                                             "found\",\"message\":\"etcdserver: requested lease "
                                             "not found\",\"code\":5}"), &err), -ENOENT);
    assert_non_null(strstr(err.msg, "requested lease not found"));
    assert_non_null(strstr(err.msg, "HTTP 404"));
    assert_int_equal(etcd_parse_error(400, S("{\"error\":\"bad\",\"code\":3}"), &err), -EINVAL);
    assert_int_equal(etcd_parse_error(503, S("{\"message\":\"no leader\",\"code\":\"14\"}"),
                                      &err), -EAGAIN);
    assert_int_equal(etcd_parse_error(400, S("{\"message\":\"compacted\",\"code\":11}"), &err),
                     -ERANGE);
    assert_int_equal(etcd_parse_error(401, S("{\"message\":\"auth\",\"code\":16}"), &err),
                     -EACCES);
    assert_int_equal(etcd_parse_error(500, S("{\"message\":\"?\",\"code\":999}"), &err),
                     -EPROTO);
    /* not the gateway's error document */
    assert_int_equal(etcd_parse_error(502, S("<html>Bad Gateway</html>"), &err), -EPROTO);
    assert_non_null(strstr(err.msg, "HTTP 502"));
    assert_int_equal(etcd_parse_error(500, S("{\"message\":7,\"code\":3}"), &err), -EPROTO);
    assert_int_equal(etcd_parse_error(500, S("{\"message\":\"x\",\"code\":[]}"), &err), -EPROTO);
    assert_int_equal(etcd_parse_error(500, "", 0, &err), -EPROTO);
}

/* Every prefix of valid replies, and each byte replaced by a few others:
 * read without a crash; a refusal always says why; a result is whole. */
static void mutate_one(const char *text, size_t len)
{
    struct etcd_kvs kvs;
    struct etcd_watch_msg m;
    struct herd_err err;
    int64_t a, b;
    bool ok;

    herd_err_clear(&err);
    if (etcd_parse_range(text, len, &kvs, &err) < 0)
        assert_true(err.msg[0]);
    else
        for (size_t i = 0; i < kvs.n; i++)
            assert_true(kvs.kv[i].key && kvs.kv[i].key_len && kvs.kv[i].value);
    etcd_kvs_free(&kvs);
    herd_err_clear(&err);
    if (etcd_parse_watch_line(text, len, &m, &err) < 0)
        assert_true(err.msg[0]);
    etcd_watch_msg_free(&m);
    etcd_parse_txn(text, len, &ok, &a, &err);
    etcd_parse_grant(text, len, &a, &b, &err);
    etcd_parse_keepalive(text, len, 1, &a, &err);
    etcd_parse_ttl(text, len, &a, &b, &err);
    etcd_parse_delete(text, len, &a, &err);
    etcd_parse_error(400, text, len, &err);
}

static void test_mutations(void **state)
{
    static const char *const replies[] = {
        range_ok,
        "{\"result\":{\"header\":{\"revision\":\"8\"},\"events\":[{\"type\":\"DELETE\","
        "\"kv\":{\"key\":\"L2hlcmQvYQ==\",\"mod_revision\":\"8\"}},{\"kv\":{\"key\":\"YQ==\","
        "\"value\":\"MQ==\"}}]}}",
        "{\"header\":{\"revision\":\"6\"},\"succeeded\":true,\"responses\":[{\"response_put\":"
        "{\"header\":{\"revision\":\"6\"}}}]}",
        "{\"result\":{\"ID\":\"77\",\"TTL\":\"30\"}}",
    };
    static const char subst[] = {'"', '{', '}', '[', ']', ',', ':', '0', '-', '=', 'A', '\\',
                                 '\0', (char)0xff};
    (void)state;
    for (size_t r = 0; r < sizeof(replies) / sizeof(replies[0]); r++) {
        size_t len = strlen(replies[r]);
        char *buf = malloc(len);
        assert_non_null(buf);
        for (size_t n = 0; n <= len; n++) { /* prefixes, in a buffer of their own size */
            char *p = malloc(n ? n : 1);
            memcpy(p, replies[r], n);
            mutate_one(p, n);
            free(p);
        }
        for (size_t i = 0; i < len; i++) {
            for (size_t s = 0; s < sizeof(subst); s++) {
                memcpy(buf, replies[r], len);
                buf[i] = subst[s];
                mutate_one(buf, len);
            }
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_valid),   cmocka_unit_test(test_range_hostile),
        cmocka_unit_test(test_reply_too_large), cmocka_unit_test(test_put_delete),
        cmocka_unit_test(test_txn),           cmocka_unit_test(test_leases),
        cmocka_unit_test(test_watch_lines),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
