/* Unit tests: herd/audit.h (hash-chained audit log). */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "herd/audit.h"

#define T0 1714564800 /* 2024-05-01T12:00:00Z */

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/herd-audit-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Writes n entries: seq i has action "vm.start"/"vm.stop"/"range.up", target
 * "g<i>", uid 1000 + i % 2, every third an error. */
static void fill(const char *path, int n)
{
    struct audit_log *log;
    assert_int_equal(audit_open(path, &log), 0);
    static const char *const acts[] = {"vm.start", "vm.stop", "range.up"};
    for (int i = 1; i <= n; i++) {
        char target[16];
        snprintf(target, sizeof(target), "g%d", i);
        assert_int_equal(audit_append_at(log, T0 + i, (unsigned)i, 1000 + (uid_t)(i % 2),
                                         i % 2 ? "sysadmin" : "secadmin", acts[i % 3], target,
                                         i % 3 == 0 ? "error: no such template" : "ok", NULL),
                         0);
    }
    audit_close(log);
}

/* The file as lines (without '\n'); *n lines; the last one may be partial. */
static char **read_lines(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char **v = NULL;
    *n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t r;
    while ((r = getline(&line, &cap, fp)) >= 0) {
        if (r > 0 && line[r - 1] == '\n')
            line[r - 1] = '\0';
        v = realloc(v, (*n + 1) * sizeof(*v));
        v[*n] = malloc(strlen(line) + 16); /* room for edits that grow a line */
        strcpy(v[(*n)++], line);
    }
    free(line);
    fclose(fp);
    return v;
}

static void write_lines(const char *path, char **v, size_t n)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%s\n", v[i]);
    fclose(fp);
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int verify_bad(const char *path, uint64_t *bad_seq, struct audit_report *r)
{
    int rc = audit_verify(path, r);
    *bad_seq = r->first_bad_seq;
    return rc;
}

static void sha_hex(const char *s, size_t len, const char *tail, char out[65])
{
    unsigned char md[32];
    unsigned ml;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, s, len);
    if (tail)
        EVP_DigestUpdate(c, tail, strlen(tail));
    EVP_DigestFinal_ex(c, md, &ml);
    EVP_MD_CTX_free(c);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* Recomputes line's hash field after an edit (what a careful forger does). */
static void rehash(char *line)
{
    char *h = strstr(line, ",\"hash\":\"");
    assert_non_null(h);
    char hex[65];
    sha_hex(line, (size_t)(h - line), "}", hex);
    memcpy(h + 9, hex, 64);
}

static void test_empty(void **state)
{
    struct fx *f = *state;
    struct audit_report r;
    /* missing file */
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_true(r.ok);
    assert_int_equal(r.entries, 0);
    struct audit_entry *e;
    size_t n;
    assert_int_equal(audit_list(f->path, NULL, &e, &n), 0);
    assert_int_equal(n, 0);
    free(e);
    /* created, empty */
    struct audit_log *log;
    assert_int_equal(audit_open(f->path, &log), 0);
    struct audit_head h;
    audit_get_head(log, &h);
    assert_int_equal(h.seq, 0);
    audit_close(log);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_true(r.ok);
    assert_int_equal(r.head.seq, 0);
}

static void test_append_verify(void **state)
{
    struct fx *f = *state;
    struct audit_log *log;
    struct audit_entry e;
    assert_int_equal(audit_open(f->path, &log), 0);
    assert_int_equal(audit_append_at(log, T0, 123, 0, "sysadmin", "vm.start", "lab1-red-a-1",
                                     "ok", &e), 0);
    assert_int_equal(e.seq, 1);
    assert_string_equal(e.time, "2024-05-01T12:00:00.123Z");
    assert_string_equal(e.prev, "0000000000000000000000000000000000000000000000000000000000000000");
    size_t n;
    char **v = read_lines(f->path, &n);
    assert_int_equal(n, 1);
    char want[512];
    snprintf(want, sizeof(want),
             "{\"seq\":1,\"time\":\"2024-05-01T12:00:00.123Z\",\"uid\":0,\"role\":\"sysadmin\","
             "\"action\":\"vm.start\",\"target\":\"lab1-red-a-1\",\"result\":\"ok\",\"prev\":\"%s\","
             "\"hash\":\"%s\"}", e.prev, e.hash);
    assert_string_equal(v[0], want);
    char hx[65];
    sha_hex(v[0], strstr(v[0], ",\"hash\"") - v[0], "}", hx);
    assert_string_equal(hx, e.hash);
    char line1[65];
    sha_hex(v[0], strlen(v[0]), NULL, line1);
    free_lines(v, n);

    struct audit_entry e2;
    assert_int_equal(audit_append(log, 4294967295u, "auditor", "audit.verify", "", "error: x", &e2), 0);
    assert_int_equal(e2.seq, 2);
    assert_string_equal(e2.prev, line1);
    assert_int_equal(e2.uid, 4294967295u);
    assert_int_equal(strlen(e2.time), 24);
    assert_int_equal(e2.time[23], 'Z');
    struct audit_head h;
    audit_get_head(log, &h);
    assert_int_equal(h.seq, 2);
    assert_string_equal(h.hash, e2.hash);
    /* one writer at a time */
    struct audit_log *other;
    assert_int_equal(audit_open(f->path, &other), -EBUSY);
    audit_close(log);

    /* reopening continues the chain */
    assert_int_equal(audit_open(f->path, &log), 0);
    audit_get_head(log, &h);
    assert_int_equal(h.seq, 2);
    assert_string_equal(h.hash, e2.hash);
    assert_int_equal(audit_append(log, 5, NULL, NULL, NULL, NULL, &e), 0);
    assert_int_equal(e.seq, 3);
    assert_string_equal(e.role, "");
    audit_close(log);

    struct audit_report r;
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_true(r.ok);
    assert_int_equal(r.entries, 3);
    assert_int_equal(r.head.seq, 3);
    assert_string_equal(r.head.hash, e.hash);
    assert_int_equal(r.first_bad_seq, 0);
    /* against its own head as anchor */
    assert_int_equal(audit_verify_anchor(f->path, &r.head, &r), 0);
}

static void test_escaping_and_limits(void **state)
{
    struct fx *f = *state;
    struct audit_log *log;
    struct audit_entry e;
    assert_int_equal(audit_open(f->path, &log), 0);
    const char *weird = "a\"b\\c\nd\te\x01 \xc3\xa9 \xff\xfe end";
    assert_int_equal(audit_append_at(log, T0, 0, 1, "r\"ole", "act\\ion", weird,
                                     "error: \"quoted\"\n", &e), 0);
    assert_string_equal(e.target, "a\"b\\c\nd\te\x01 \xc3\xa9 ?? end");
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char ctl[600];
    memset(ctl, '\n', sizeof(ctl) - 1);
    ctl[sizeof(ctl) - 1] = '\0';
    struct audit_entry e2;
    assert_int_equal(audit_append_at(log, T0, 0, 1, big, big, big, ctl, &e2), 0);
    assert_int_equal(strlen(e2.role), AUDIT_ROLE_MAX);
    assert_int_equal(strlen(e2.action), AUDIT_ACTION_MAX);
    assert_int_equal(strlen(e2.target), AUDIT_TARGET_MAX);
    assert_int_equal(strlen(e2.result), AUDIT_RESULT_MAX);
    audit_close(log);
    struct audit_report r;
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_int_equal(r.entries, 2);
    struct audit_entry *v;
    size_t n;
    assert_int_equal(audit_list(f->path, NULL, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].target, e.target);
    assert_string_equal(v[0].role, "r\"ole");
    assert_string_equal(v[0].result, "error: \"quoted\"\n");
    assert_string_equal(v[1].result, e2.result);
    assert_string_equal(v[1].hash, e2.hash);
    free(v);
    /* the file is one line per entry, valid UTF-8 */
    size_t nl;
    char **lines = read_lines(f->path, &nl);
    assert_int_equal(nl, 2);
    assert_null(strchr(lines[0], '\n'));
    assert_null(strstr(lines[0], "\xff"));
    free_lines(lines, nl);
}

/* Edits line idx (0-based) of a 5-entry log with fn; expects the first bad seq. */
static void tamper(const char *path, size_t idx, void (*fn)(char *), uint64_t want_bad)
{
    unlink(path);
    fill(path, 5);
    size_t n;
    char **v = read_lines(path, &n);
    assert_int_equal(n, 5);
    char *before = strdup(v[idx]);
    fn(v[idx]);
    assert_string_not_equal(before, v[idx]);
    free(before);
    write_lines(path, v, n);
    free_lines(v, n);
    struct audit_report r;
    uint64_t bad;
    int rc = verify_bad(path, &bad, &r);
    if (rc != -EBADMSG || bad != want_bad)
        print_error("rc %d bad %llu msg %s\n", rc, (unsigned long long)bad, r.msg);
    assert_int_equal(rc, -EBADMSG);
    assert_false(r.ok);
    assert_int_equal(bad, want_bad);
    assert_int_equal(r.entries, want_bad - 1);
    assert_int_equal(r.head.seq, want_bad - 1);
    assert_true(strlen(r.msg) > 0);
    /* a writer refuses to continue a chain whose last line is bad */
    if (idx == 4) {
        struct audit_log *log;
        assert_int_equal(audit_open(path, &log), -EBADMSG);
    }
}

static char *field(char *line, const char *key)
{
    char k[32];
    snprintf(k, sizeof(k), "\"%s\":", key);
    char *p = strstr(line, k);
    assert_non_null(p);
    p += strlen(k);
    if (*p == '"')
        p++;
    return p;
}

static void bump(char *p)
{
    *p = *p == '9' ? '8' : *p == 'f' ? 'e' : *p == 'z' ? 'y' : (char)(*p + 1);
}

static void t_seq(char *l) { bump(field(l, "seq")); }
static void t_time(char *l) { bump(field(l, "time") + 3); }
static void t_uid(char *l) { bump(field(l, "uid")); }
static void t_role(char *l) { bump(field(l, "role")); }
static void t_action(char *l) { bump(field(l, "action")); }
static void t_target(char *l) { bump(field(l, "target")); }
static void t_result(char *l) { bump(field(l, "result")); }
static void t_prev(char *l) { bump(field(l, "prev") + 10); }
static void t_hash(char *l) { bump(field(l, "hash") + 63); }
static void t_space(char *l) { memmove(l + 2, l + 1, strlen(l)); l[1] = ' '; }
static void t_target_rehash(char *l) { bump(field(l, "target")); rehash(l); }
static void t_prev_rehash(char *l) { bump(field(l, "prev")); rehash(l); }
static void t_upper(char *l) { char *h = field(l, "hash"); for (int i = 0; i < 64; i++) if (h[i] >= 'a') { h[i] = (char)(h[i] - 32); break; } }
static void t_ok(char *l) { char *r = field(l, "result"); if (r[0] == 'o') memcpy(r, "no", 2); else memcpy(r, "ok\"", 3); }

static void test_tamper_each_field(void **state)
{
    struct fx *f = *state;
    void (*const fns[])(char *) = {t_seq, t_time, t_uid, t_role, t_action, t_target,
                                   t_result, t_prev, t_hash, t_space, t_upper, t_ok};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        tamper(f->path, 2, fns[i], 3);   /* middle */
        tamper(f->path, 0, fns[i], 1);   /* first */
        tamper(f->path, 4, fns[i], 5);   /* last */
    }
    /* A forger who recomputes the edited entry's hash is caught by the next
     * entry's prev; editing prev and rehashing is caught at once. */
    tamper(f->path, 2, t_target_rehash, 4);
    tamper(f->path, 2, t_prev_rehash, 3);
}

static void test_tamper_last_needs_anchor(void **state)
{
    struct fx *f = *state;
    fill(f->path, 5);
    struct audit_report r;
    assert_int_equal(audit_verify(f->path, &r), 0);
    struct audit_head anchor = r.head;
    size_t n;
    char **v = read_lines(f->path, &n);
    /* rewrite the last entry consistently: the chain alone cannot tell */
    bump(field(v[4], "target"));
    rehash(v[4]);
    write_lines(f->path, v, n);
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_int_equal(audit_verify_anchor(f->path, &anchor, &r), -EBADMSG);
    assert_int_equal(r.first_bad_seq, 5);
    assert_non_null(strstr(r.msg, "anchor"));
    /* drop the last entry: only the anchor tells */
    write_lines(f->path, v, 4);
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_int_equal(r.entries, 4);
    assert_int_equal(audit_verify_anchor(f->path, &anchor, &r), -EBADMSG);
    assert_int_equal(r.first_bad_seq, 5);
    assert_non_null(strstr(r.msg, "removed from the end"));
    /* empty log vs anchor */
    write_lines(f->path, v, 0);
    assert_int_equal(audit_verify_anchor(f->path, &anchor, &r), -EBADMSG);
    assert_int_equal(r.first_bad_seq, 1);
    struct audit_head zero = {0};
    assert_int_equal(audit_verify_anchor(f->path, &zero, &r), 0);
    free_lines(v, n);
}

static void test_remove_swap_insert(void **state)
{
    struct fx *f = *state;
    struct audit_report r;
    uint64_t bad;
    for (size_t del = 0; del < 4; del++) { /* delete a line (not the last) */
        unlink(f->path);
        fill(f->path, 5);
        size_t n;
        char **v = read_lines(f->path, &n);
        char *gone = v[del];
        memmove(v + del, v + del + 1, (n - del - 1) * sizeof(*v));
        write_lines(f->path, v, n - 1);
        v[n - 1] = gone;
        free_lines(v, n);
        assert_int_equal(verify_bad(f->path, &bad, &r), -EBADMSG);
        assert_int_equal(bad, del + 1);
        assert_non_null(strstr(r.msg, "removed"));
    }
    for (size_t a = 0; a < 4; a++) { /* swap neighbours */
        unlink(f->path);
        fill(f->path, 5);
        size_t n;
        char **v = read_lines(f->path, &n);
        char *t = v[a];
        v[a] = v[a + 1];
        v[a + 1] = t;
        write_lines(f->path, v, n);
        free_lines(v, n);
        assert_int_equal(verify_bad(f->path, &bad, &r), -EBADMSG);
        assert_int_equal(bad, a + 1);
        assert_non_null(strstr(r.msg, "reordered"));
    }
    /* a duplicated line */
    unlink(f->path);
    fill(f->path, 5);
    size_t n;
    char **v = read_lines(f->path, &n);
    v = realloc(v, (n + 1) * sizeof(*v));
    memmove(v + 3, v + 2, (n - 2) * sizeof(*v));
    v[2] = strdup(v[3]);
    write_lines(f->path, v, n + 1);
    free_lines(v, n + 1);
    assert_int_equal(verify_bad(f->path, &bad, &r), -EBADMSG);
    assert_int_equal(bad, 4);
    /* garbage and blank lines */
    unlink(f->path);
    fill(f->path, 3);
    FILE *fp = fopen(f->path, "a");
    fputs("\n", fp);
    fclose(fp);
    assert_int_equal(verify_bad(f->path, &bad, &r), -EBADMSG);
    assert_int_equal(bad, 4);
    assert_non_null(strstr(r.msg, "malformed"));
}

static void test_truncate(void **state)
{
    struct fx *f = *state;
    struct audit_report r;
    uint64_t bad;
    fill(f->path, 5);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    off_t full = st.st_size;
    size_t n;
    char **v = read_lines(f->path, &n);
    off_t last_start = full - (off_t)strlen(v[4]) - 1;
    free_lines(v, n);
    /* every cut inside the last line, including its '\n' */
    for (off_t cut = last_start + 1; cut < full; cut++) {
        assert_int_equal(truncate(f->path, cut), 0);
        assert_int_equal(verify_bad(f->path, &bad, &r), -EBADMSG);
        assert_int_equal(bad, 5);
        struct audit_log *log;
        assert_int_equal(audit_open(f->path, &log), -EBADMSG);
        /* reading still works and skips the partial line */
        struct audit_entry *e;
        size_t ne;
        assert_int_equal(audit_list(f->path, NULL, &e, &ne), 0);
        assert_int_equal(ne, 4);
        free(e);
    }
    assert_int_equal(truncate(f->path, last_start - 5), 0);
    assert_int_equal(verify_bad(f->path, &bad, &r), -EBADMSG);
    assert_int_equal(bad, 4);
    assert_non_null(strstr(r.msg, "cut mid-line"));
    /* cut exactly at a line boundary: a valid shorter log */
    unlink(f->path);
    fill(f->path, 5);
    assert_int_equal(truncate(f->path, last_start), 0);
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_int_equal(r.entries, 4);
    struct audit_log *log;
    assert_int_equal(audit_open(f->path, &log), 0);
    struct audit_entry e;
    assert_int_equal(audit_append(log, 0, "a", "b", "c", "ok", &e), 0);
    assert_int_equal(e.seq, 5);
    audit_close(log);
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_int_equal(r.entries, 5);
}

static void test_parse_line(void **state)
{
    (void)state;
    struct audit_entry e;
    assert_int_equal(audit_parse_line("", 0, &e), -EBADMSG);
    assert_int_equal(audit_parse_line("{}", 2, &e), -EBADMSG);
    const char *j = "{\"seq\":1,\"time\":\"t\",\"uid\":0,\"role\":\"\",\"action\":\"\",\"target\":\"\","
                    "\"result\":\"ok\",\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"";
    char line[512], hx[65];
    sha_hex(j, strlen(j), "}", hx);
    snprintf(line, sizeof(line), "%s,\"hash\":\"%s\"}", j, hx);
    assert_int_equal(audit_parse_line(line, strlen(line), &e), 0);
    assert_int_equal(e.seq, 1);
    assert_string_equal(e.result, "ok");
    /* trailing bytes, leading zeros, seq 0 */
    char more[600];
    snprintf(more, sizeof(more), "%s ", line);
    assert_int_equal(audit_parse_line(more, strlen(more), &e), -EBADMSG);
    assert_int_equal(audit_parse_line(line, strlen(line) - 1, &e), -EBADMSG);
    const char *z = "{\"seq\":01,";
    assert_int_equal(audit_parse_line(z, strlen(z), &e), -EBADMSG);
}

static void test_list_filters(void **state)
{
    struct fx *f = *state;
    fill(f->path, 12);
    struct audit_entry *v;
    size_t n;
    struct audit_filter flt = {0};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i].seq, i + 1);
    free(v);
    flt.action = "vm.start"; /* i % 3 == 0 */
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(v[0].seq, 3);
    assert_int_equal(v[3].seq, 12);
    free(v);
    flt.action = "vm.*";
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 8);
    free(v);
    flt = (struct audit_filter){.errors_only = true};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(v[0].result, "error: no such template");
    free(v);
    flt = (struct audit_filter){.by_uid = true, .uid = 1001};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(v[0].role, "sysadmin");
    free(v);
    flt = (struct audit_filter){.target = "g7"};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].seq, 7);
    free(v);
    flt = (struct audit_filter){.role = "secadmin", .since_seq = 5};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 4); /* 6 8 10 12 */
    free(v);
    flt = (struct audit_filter){.time_from = "2024-05-01T12:00:03", .time_to = "2024-05-01T12:00:06"};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 3); /* 3 4 5 */
    assert_int_equal(v[0].seq, 3);
    free(v);
    flt = (struct audit_filter){.limit = 5};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(v[4].seq, 5);
    free(v);
    for (size_t lim = 1; lim <= 14; lim++) {
        flt = (struct audit_filter){.limit = lim, .tail = true};
        assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
        size_t want = lim < 12 ? lim : 12;
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(v[i].seq, 12 - want + 1 + i);
        free(v);
    }
    flt = (struct audit_filter){.action = "nothing"};
    assert_int_equal(audit_list(f->path, &flt, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
}

struct thr {
    struct audit_log *log;
    int id;
};

static void *writer(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 50; i++) {
        char target[32];
        snprintf(target, sizeof(target), "t%d-%d", t->id, i);
        if (audit_append(t->log, (uid_t)t->id, "sysadmin", "vm.create", target, "ok", NULL))
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    struct fx *f = *state;
    struct audit_log *log;
    assert_int_equal(audit_open(f->path, &log), 0);
    pthread_t th[4];
    struct thr a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thr){log, i};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    audit_close(log);
    struct audit_report r;
    assert_int_equal(audit_verify(f->path, &r), 0);
    assert_int_equal(r.entries, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_each_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_last_needs_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_swap_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
        cmocka_unit_test(test_parse_line),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
