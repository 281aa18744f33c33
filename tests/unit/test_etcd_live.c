/* The etcd client against a real etcd (Debian's etcd-server, /usr/bin/etcd,
 * or $HERD_ETCD) that this test starts on 127.0.0.1 with free ports and a
 * temporary data dir, and stops: put, get, range by prefix, delete,
 * transactions (create-if-absent, compare-and-swap on mod_revision),
 * leases (grant, keepalive, time to live, revoke with the keys on it),
 * watches (events in order, compaction reported, stop from the callback),
 * failover to the next endpoint, and an unreachable cluster. Skipped when
 * there is no etcd binary. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "herd/etcd.h"

struct live {
    pid_t pid;
    char dir[64];
    char url[64];
    char dead[64];             /* a port nobody listens on */
    struct etcd *e;
};

/* A port free on 127.0.0.1 now, below the ephemeral range (32768 up on
 * Linux by default), so that no outgoing connection takes it before etcd
 * binds it; -1 when none was found. */
static int free_port(void)
{
    for (int tries = 0; tries < 500; tries++) {
        int port = 20000 + rand() % 12000;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&a, sizeof(a));
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            return port;
    }
    return -1;
}

static void spawn_etcd(struct live *l, const char *bin, int cport, int pport)
{
    char data[96], listen_c[64], listen_p[64], cluster[96];

    snprintf(data, sizeof(data), "%s/data", l->dir);
    snprintf(listen_c, sizeof(listen_c), "http://127.0.0.1:%d", cport);
    snprintf(listen_p, sizeof(listen_p), "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof(cluster), "t=%s", listen_p);
    l->pid = fork();
    if (l->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, bin, "--name", "t", "--data-dir", data, "--listen-client-urls", listen_c,
              "--advertise-client-urls", listen_c, "--listen-peer-urls", listen_p,
              "--initial-advertise-peer-urls", listen_p, "--initial-cluster", cluster,
              (char *)NULL);
        _exit(127);
    }
}

/* etcd answers on l->url (true), or it ended or never answered (false:
 * stopped, its data removed). */
static bool wait_up(struct live *l)
{
    struct etcd_kvs kvs;
    struct herd_err err;
    char cmd[128];

    for (int i = 0; i < 200 && waitpid(l->pid, NULL, WNOHANG) == 0; i++) {
        if (etcd_get(l->e, "/probe", &kvs, &err) == 0) {
            etcd_kvs_free(&kvs);
            return true;
        }
        usleep(50000);
    }
    kill(l->pid, SIGKILL);
    waitpid(l->pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/data'", l->dir);
    if (system(cmd) != 0)
        print_message("%s failed\n", cmd);
    print_message("etcd did not come up on %s\n", l->url);
    return false;
}

/* etcd on ports picked now (again when one was taken before etcd bound it). */
static bool start_live(struct live *l, const char *bin)
{
    struct herd_err err;

    for (int attempt = 0; attempt < 3; attempt++) {
        int cport = free_port(), pport = free_port(), dport = free_port();
        if (cport < 0 || pport < 0 || dport < 0 || cport == pport || dport == cport ||
            dport == pport)
            continue;
        snprintf(l->url, sizeof(l->url), "http://127.0.0.1:%d", cport);
        snprintf(l->dead, sizeof(l->dead), "http://127.0.0.1:%d", dport);
        const char *eps[] = {l->url};
        struct etcd_opts o = {.endpoints = eps, .n_endpoints = 1};
        if (etcd_open(&l->e, &o, &err) < 0)
            return false;
        spawn_etcd(l, bin, cport, pport);
        if (l->pid > 0 && wait_up(l))
            return true;
        etcd_close(l->e);
        l->e = NULL;
    }
    return false;
}

static int setup(void **state)
{
    const char *bin = getenv("HERD_ETCD") ? getenv("HERD_ETCD") : "/usr/bin/etcd";
    struct live *l = calloc(1, sizeof(*l));

    *state = NULL;
    if (access(bin, X_OK) < 0) {
        free(l);
        print_message("skip: %s is missing (apt-get install etcd-server)\n", bin);
        return 0;
    }
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    snprintf(l->dir, sizeof(l->dir), "/tmp/herd-etcd-unit.XXXXXX");
    if (!mkdtemp(l->dir) || !start_live(l, bin)) {
        rmdir(l->dir);
        free(l);
        return -1;
    }
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    struct live *l = *state;
    char cmd[128];

    if (!l)
        return 0;
    etcd_close(l->e);
    kill(l->pid, SIGKILL);
    waitpid(l->pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", l->dir);
    if (system(cmd) != 0)
        return -1;
    free(l);
    return 0;
}

#define LIVE(state)           \
    struct live *l = *(state); \
    if (!l)                    \
        skip();

static void test_kv(void **state)
{
    LIVE(state);
    struct etcd_kvs kvs;
    struct herd_err err;
    int64_t rev = 0, n = 0;

    assert_int_equal(etcd_put(l->e, "/t/a", "one", 3, 0, &rev, &err), 0);
    assert_true(rev > 0);
    assert_int_equal(etcd_put(l->e, "/t/b", "\0\1\2", 3, 0, NULL, &err), 0);
    assert_int_equal(etcd_put(l->e, "/u/c", "", 0, 0, NULL, &err), 0);
    assert_int_equal(etcd_get(l->e, "/t/a", &kvs, &err), 0);
    assert_int_equal(kvs.n, 1);
    assert_string_equal(kvs.kv[0].value, "one");
    assert_int_equal(kvs.kv[0].mod_revision, rev);
    assert_int_equal(kvs.kv[0].version, 1);
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_get(l->e, "/t/none", &kvs, &err), 0);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_range_prefix(l->e, "/t/", &kvs, &err), 0);
    assert_int_equal(kvs.n, 2);
    assert_string_equal(kvs.kv[0].key, "/t/a");
    assert_string_equal(kvs.kv[1].key, "/t/b");
    assert_memory_equal(kvs.kv[1].value, "\0\1\2", 3);
    assert_int_equal(kvs.kv[1].value_len, 3);
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_range_prefix(l->e, "", &kvs, &err), 0);
    assert_true(kvs.n >= 3);
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_delete(l->e, "/t/", true, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(etcd_delete(l->e, "/u/c", false, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(etcd_delete(l->e, "/u/c", false, &n, &err), 0);
    assert_int_equal(n, 0);
    /* refused before a request */
    assert_int_equal(etcd_put(l->e, "", "x", 1, 0, NULL, &err), -EINVAL);
    assert_string_equal(err.field, "key");
    /* etcd's own refusal: a lease that does not exist */
    assert_int_equal(etcd_put(l->e, "/t/x", "x", 1, 12345, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "lease not found"));
}

static void test_txn(void **state)
{
    LIVE(state);
    struct etcd_cmp absent = {"/x/k", ETCD_CREATE_REVISION, ETCD_EQUAL, 0};
    struct etcd_op put1 = {ETCD_OP_PUT, "/x/k", "1", 1, 0, false};
    struct etcd_op put2 = {ETCD_OP_PUT, "/x/k", "2", 1, 0, false};
    struct etcd_op other = {ETCD_OP_PUT, "/x/lost", "y", 1, 0, false};
    struct etcd_txn t = {&absent, 1, &put1, &other, 1, 1};
    struct etcd_kvs kvs;
    struct herd_err err;
    bool ok = false;
    int64_t rev;

    assert_int_equal(etcd_txn(l->e, &t, &ok, &rev, &err), 0);
    assert_true(ok);
    assert_int_equal(etcd_txn(l->e, &t, &ok, NULL, &err), 0);
    assert_false(ok); /* exists now: the else branch ran */
    assert_int_equal(etcd_get(l->e, "/x/lost", &kvs, &err), 0);
    assert_int_equal(kvs.n, 1);
    etcd_kvs_free(&kvs);
    /* compare-and-swap on mod_revision: the stale one loses */
    struct etcd_cmp cas = {"/x/k", ETCD_MOD_REVISION, ETCD_EQUAL, rev};
    struct etcd_txn t2 = {&cas, 1, &put2, NULL, 1, 0};
    assert_int_equal(etcd_txn(l->e, &t2, &ok, NULL, &err), 0);
    assert_true(ok);
    assert_int_equal(etcd_txn(l->e, &t2, &ok, NULL, &err), 0);
    assert_false(ok);
    struct etcd_cmp ver = {"/x/k", ETCD_VERSION, ETCD_GREATER, 1};
    struct etcd_op del = {ETCD_OP_DELETE, "/x/", NULL, 0, 0, true};
    struct etcd_txn t3 = {&ver, 1, &del, NULL, 1, 0};
    assert_int_equal(etcd_txn(l->e, &t3, &ok, NULL, &err), 0);
    assert_true(ok);
    assert_int_equal(etcd_range_prefix(l->e, "/x/", &kvs, &err), 0);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_free(&kvs);
    struct etcd_cmp bad = {"", ETCD_VERSION, ETCD_EQUAL, 0};
    struct etcd_txn t4 = {&bad, 1, NULL, NULL, 0, 0};
    assert_int_equal(etcd_txn(l->e, &t4, &ok, NULL, &err), -EINVAL);
}

static void test_leases(void **state)
{
    LIVE(state);
    struct etcd_kvs kvs;
    struct herd_err err;
    int64_t id, ttl, left, granted;

    assert_int_equal(etcd_lease_grant(l->e, 30, &id, &ttl, &err), 0);
    assert_int_equal(ttl, 30);
    assert_int_equal(etcd_put(l->e, "/l/a", "x", 1, id, NULL, &err), 0);
    assert_int_equal(etcd_get(l->e, "/l/a", &kvs, &err), 0);
    assert_true(kvs.n == 1 && kvs.kv[0].lease == id);
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_lease_keepalive(l->e, id, &ttl, &err), 0);
    assert_int_equal(ttl, 30);
    assert_int_equal(etcd_lease_ttl(l->e, id, &left, &granted, &err), 0);
    assert_true(left > 0 && left <= 30);
    assert_int_equal(granted, 30);
    assert_int_equal(etcd_lease_revoke(l->e, id, &err), 0);
    assert_int_equal(etcd_get(l->e, "/l/a", &kvs, &err), 0);
    assert_int_equal(kvs.n, 0); /* went with its lease */
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_lease_keepalive(l->e, id, &ttl, &err), -ENOENT);
    assert_int_equal(etcd_lease_revoke(l->e, id, &err), -ENOENT);
    assert_int_equal(etcd_lease_ttl(l->e, id, &left, &granted, &err), -ENOENT);
    assert_int_equal(etcd_lease_grant(l->e, 0, &id, &ttl, &err), -EINVAL);
    /* expiry: a 2 s lease not kept alive */
    assert_int_equal(etcd_lease_grant(l->e, 2, &id, &ttl, &err), 0);
    assert_int_equal(etcd_put(l->e, "/l/b", "x", 1, id, NULL, &err), 0);
    sleep(4);
    assert_int_equal(etcd_get(l->e, "/l/b", &kvs, &err), 0);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_free(&kvs);
    assert_int_equal(etcd_lease_keepalive(l->e, id, &ttl, &err), -ENOENT);
}

struct writer {
    struct live *l;
    int64_t from;
};

static void *write_later(void *arg)
{
    struct writer *w = arg;
    struct herd_err err;

    usleep(300000);
    etcd_put(w->l->e, "/w/a", "1", 1, 0, NULL, &err);
    etcd_put(w->l->e, "/other", "1", 1, 0, NULL, &err);
    etcd_delete(w->l->e, "/w/a", false, NULL, &err);
    return NULL;
}

struct seen {
    int msgs, events, ticks;
    bool created, compacted;
    enum etcd_event_type types[8];
    char keys[8][16];
    int64_t compact_revision;
};

static int on_watch(void *arg, const struct etcd_watch_msg *m)
{
    struct seen *s = arg;

    if (!m)
        return ++s->ticks > 10 ? 2 : 0; /* ten idle seconds: give up */
    s->msgs++;
    s->created |= m->created;
    if (m->canceled) {
        s->compacted = m->compact_revision > 0;
        s->compact_revision = m->compact_revision;
    }
    for (size_t i = 0; i < m->n_events && s->events < 8; i++, s->events++) {
        s->types[s->events] = m->events[i].type;
        snprintf(s->keys[s->events], sizeof(s->keys[0]), "%s", m->events[i].kv.key);
    }
    return s->events >= 2 ? 1 : 0;
}

static void test_watch(void **state)
{
    LIVE(state);
    struct writer w = {l, 0};
    struct seen s = {0};
    struct herd_err err;
    pthread_t t;

    pthread_create(&t, NULL, write_later, &w);
    assert_int_equal(etcd_watch(l->e, "/w/", 0, on_watch, &s, &err), 1);
    pthread_join(t, NULL);
    assert_true(s.created);
    assert_int_equal(s.events, 2);
    assert_int_equal(s.types[0], ETCD_EVENT_PUT);
    assert_int_equal(s.types[1], ETCD_EVENT_DELETE);
    assert_string_equal(s.keys[0], "/w/a");
    assert_string_equal(s.keys[1], "/w/a");
    /* history from before a compaction: -ESTALE, the compact revision told */
    int64_t rev;
    assert_int_equal(etcd_put(l->e, "/w/b", "1", 1, 0, &rev, &err), 0);
    assert_int_equal(etcd_put(l->e, "/w/b", "2", 1, 0, &rev, &err), 0);
    assert_int_equal(etcd_compact(l->e, rev, &err), 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(etcd_watch(l->e, "/w/", 1, on_watch, &s, &err), -ESTALE);
    assert_true(s.compacted);
    assert_int_equal(s.compact_revision, rev);
    assert_non_null(strstr(err.msg, "re-list"));
}

static void test_failover(void **state)
{
    LIVE(state);
    const char *eps[] = {l->dead, l->url};
    struct etcd_opts o = {.endpoints = eps, .n_endpoints = 2, .timeout_ms = 2000};
    struct etcd *e;
    struct etcd_kvs kvs;
    struct herd_err err;
    char ep[ETCD_ENDPOINT_LEN];

    assert_int_equal(etcd_open(&e, &o, &err), 0);
    etcd_endpoint(e, ep, sizeof(ep));
    assert_string_equal(ep, l->dead);
    assert_int_equal(etcd_put(e, "/f", "1", 1, 0, NULL, &err), 0);
    etcd_endpoint(e, ep, sizeof(ep));
    assert_string_equal(ep, l->url);
    assert_int_equal(etcd_get(e, "/f", &kvs, &err), 0);
    assert_int_equal(kvs.n, 1);
    etcd_kvs_free(&kvs);
    etcd_close(e);
    /* nobody there */
    o.n_endpoints = 1;
    assert_int_equal(etcd_open(&e, &o, &err), 0);
    assert_int_equal(etcd_get(e, "/f", &kvs, &err), -ECONNREFUSED);
    assert_non_null(strstr(err.msg, l->dead));
    struct seen s = {0};
    assert_int_equal(etcd_watch(e, "/f", 0, on_watch, &s, &err), -ECONNRESET);
    etcd_close(e);
    /* none of several: each named */
    const char *dead2[] = {l->dead, "http://127.0.0.1:1"};
    struct etcd_opts o2 = {.endpoints = dead2, .n_endpoints = 2};
    assert_int_equal(etcd_open(&e, &o2, &err), 0);
    assert_int_equal(etcd_put(e, "/f", "1", 1, 0, NULL, &err), -ECONNREFUSED);
    assert_non_null(strstr(err.msg, "no etcd endpoint answered"));
    assert_non_null(strstr(err.msg, l->dead));
    assert_non_null(strstr(err.msg, "127.0.0.1:1:"));
    etcd_close(e);
    /* options refused */
    const char *bad[] = {"ftp://x:1"};
    struct etcd_opts ob = {.endpoints = bad, .n_endpoints = 1};
    assert_int_equal(etcd_open(&e, &ob, &err), -EINVAL);
    assert_string_equal(err.field, "endpoints[0]");
    struct etcd_opts oc = {.endpoints = eps, .n_endpoints = 1, .cert = "/c.pem"};
    assert_int_equal(etcd_open(&e, &oc, &err), -EINVAL);
    assert_string_equal(err.field, "key");
    struct etcd_opts od = {.endpoints = eps, .n_endpoints = 0};
    assert_int_equal(etcd_open(&e, &od, &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv),    cmocka_unit_test(test_txn),
        cmocka_unit_test(test_leases), cmocka_unit_test(test_watch),
        cmocka_unit_test(test_failover),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
