/*
 * audit: append-only, hash-chained audit log, one canonical JSON object per
 * line. The writer and the (strict) reader here agree byte for byte on the
 * layout, so any edit — even one a JSON parser would accept as equivalent —
 * breaks the entry's hash. See herd/audit.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "herd/audit.h"

#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"

struct audit_log {
    pthread_mutex_t lock;
    int fd;
    bool broken;                       /* a write failed half-way */
    uint64_t seq;                      /* last entry's seq */
    char prev[AUDIT_HEX_LEN + 1];      /* sha256 of the last line */
    char hash[AUDIT_HEX_LEN + 1];      /* last entry's hash field */
};

/* ---- hashing ------------------------------------------------------------- */

static void to_hex(const unsigned char *md, unsigned len, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[2 * len] = '\0';
}

/* sha256(a || b) as hex. */
static int sha256_hex(const void *a, size_t alen, const void *b, size_t blen,
                      char out[AUDIT_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, a, alen) &&
             (blen == 0 || EVP_DigestUpdate(ctx, b, blen)) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 32)
        return -EIO;
    to_hex(md, mdlen, out);
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
    else return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

struct out {
    char *buf;
    size_t len, cap;
    bool overflow;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (o->len + n >= o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* A JSON string of at most max input bytes of s: '"' and '\\' escaped,
 * control characters as \u00xx, invalid UTF-8 bytes as '?'. */
static void out_json(struct out *o, const char *s, size_t max, char *copy)
{
    size_t n = strnlen(s ? s : "", max), k = 0;
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    out_put(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        char esc[8];
        if (u[i] == '"' || u[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)u[i];
            out_put(o, esc, 2);
            copy[k++] = (char)u[i++];
        } else if (u[i] < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
            out_put(o, esc, 6);
            copy[k++] = (char)u[i++];
        } else {
            size_t l = utf8_len(u + i, n - i);
            if (l == 0) {
                out_put(o, "?", 1);
                copy[k++] = '?';
                i++;
            } else {
                out_put(o, (const char *)u + i, l);
                memcpy(copy + k, u + i, l);
                k += l;
                i += l;
            }
        }
    }
    copy[k] = '\0';
    out_put(o, "\"", 1);
}

int audit_open(const char *path, struct audit_log **out)
{
    *out = NULL;
    struct audit_log *log = calloc(1, sizeof(*log));
    if (!log)
        return -ENOMEM;
    log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log->fd < 0) {
        int e = -errno;
        free(log);
        return e;
    }
    if (flock(log->fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
        close(log->fd);
        free(log);
        return e;
    }
    memcpy(log->prev, ZERO_HEX, sizeof(log->prev));
    memcpy(log->hash, ZERO_HEX, sizeof(log->hash));
    int rc = 0;
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (rfd < 0 || fstat(rfd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size > 0) {
        size_t want = (size_t)st.st_size < AUDIT_LINE_MAX + 2 ? (size_t)st.st_size
                                                              : AUDIT_LINE_MAX + 2;
        char *buf = malloc(want + 1);
        if (!buf) {
            rc = -ENOMEM;
            goto out;
        }
        ssize_t r = pread(rfd, buf, want, st.st_size - (off_t)want);
        if (r != (ssize_t)want) {
            rc = r < 0 ? -errno : -EIO;
        } else if (buf[want - 1] != '\n') {
            rc = -EBADMSG; /* cut mid-line */
        } else {
            size_t end = want - 1, start = end;
            while (start > 0 && buf[start - 1] != '\n')
                start--;
            struct audit_entry e;
            if (start == 0 && want < (size_t)st.st_size)
                rc = -EBADMSG; /* longer than any valid line */
            else if ((rc = audit_parse_line(buf + start, end - start, &e)) == 0) {
                log->seq = e.seq;
                memcpy(log->hash, e.hash, sizeof(log->hash));
                rc = sha256_hex(buf + start, end - start, NULL, 0, log->prev);
            }
        }
        free(buf);
    }
out:
    if (rfd >= 0)
        close(rfd);
    if (rc) {
        close(log->fd);
        free(log);
        return rc;
    }
    pthread_mutex_init(&log->lock, NULL);
    *out = log;
    return 0;
}

void audit_close(struct audit_log *log)
{
    if (!log)
        return;
    close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log);
}

void audit_get_head(struct audit_log *log, struct audit_head *out)
{
    pthread_mutex_lock(&log->lock);
    out->seq = log->seq;
    memcpy(out->hash, log->hash, sizeof(out->hash));
    pthread_mutex_unlock(&log->lock);
}

int audit_append_at(struct audit_log *log, int64_t sec, unsigned msec, uid_t uid,
                    const char *role, const char *action, const char *target,
                    const char *result, struct audit_entry *out)
{
    struct audit_entry e;
    memset(&e, 0, sizeof(e));
    struct tm tm;
    time_t t = (time_t)sec;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -EINVAL;
    char ts[24];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(e.time, sizeof(e.time), "%s.%03uZ", ts, msec % 1000);
    e.uid = (uint32_t)uid;

    char *buf = malloc(AUDIT_LINE_MAX + 2);
    if (!buf)
        return -ENOMEM;
    pthread_mutex_lock(&log->lock);
    int rc = 0;
    if (log->broken) {
        rc = -EIO;
        goto unlock;
    }
    e.seq = log->seq + 1;
    memcpy(e.prev, log->prev, sizeof(e.prev));
    struct out o = {.buf = buf, .cap = AUDIT_LINE_MAX + 2};
    char num[32];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)e.seq);
    out_str(&o, "{\"seq\":");
    out_str(&o, num);
    out_str(&o, ",\"time\":");
    out_json(&o, e.time, sizeof(e.time) - 1, e.time);
    snprintf(num, sizeof(num), "%u", e.uid);
    out_str(&o, ",\"uid\":");
    out_str(&o, num);
    out_str(&o, ",\"role\":");
    out_json(&o, role, AUDIT_ROLE_MAX, e.role);
    out_str(&o, ",\"action\":");
    out_json(&o, action, AUDIT_ACTION_MAX, e.action);
    out_str(&o, ",\"target\":");
    out_json(&o, target, AUDIT_TARGET_MAX, e.target);
    out_str(&o, ",\"result\":");
    out_json(&o, result, AUDIT_RESULT_MAX, e.result);
    out_str(&o, ",\"prev\":\"");
    out_str(&o, e.prev);
    out_str(&o, "\"");
    if (o.overflow) { /* cannot happen: the maxima fit AUDIT_LINE_MAX */
        rc = -EOVERFLOW;
        goto unlock;
    }
    if ((rc = sha256_hex(buf, o.len, "}", 1, e.hash)))
        goto unlock;
    out_str(&o, ",\"hash\":\"");
    out_str(&o, e.hash);
    out_str(&o, "\"}");
    size_t linelen = o.len;
    out_put(&o, "\n", 1);
    if (o.overflow || o.len > AUDIT_LINE_MAX + 1) {
        rc = -EOVERFLOW;
        goto unlock;
    }
    size_t done = 0;
    while (done < o.len) {
        ssize_t w = write(log->fd, buf + done, o.len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            if (done)
                log->broken = true; /* a partial line is on disk */
            goto unlock;
        }
        done += (size_t)w;
    }
    if (fdatasync(log->fd) < 0) {
        rc = -errno;
        log->broken = true; /* the entry may or may not be durable */
        goto unlock;
    }
    char line_sha[AUDIT_HEX_LEN + 1];
    if ((rc = sha256_hex(buf, linelen, NULL, 0, line_sha))) {
        log->broken = true;
        goto unlock;
    }
    log->seq = e.seq;
    memcpy(log->prev, line_sha, sizeof(log->prev));
    memcpy(log->hash, e.hash, sizeof(log->hash));
    if (out)
        *out = e;
unlock:
    pthread_mutex_unlock(&log->lock);
    free(buf);
    return rc;
}

int audit_append(struct audit_log *log, uid_t uid, const char *role, const char *action,
                 const char *target, const char *result, struct audit_entry *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return audit_append_at(log, (int64_t)ts.tv_sec, (unsigned)(ts.tv_nsec / 1000000), uid,
                           role, action, target, result, out);
}

/* ---- reading ------------------------------------------------------------- */

struct in {
    const char *s;
    size_t len, pos;
};

static bool in_lit(struct in *in, const char *lit)
{
    size_t n = strlen(lit);
    if (in->len - in->pos < n || memcmp(in->s + in->pos, lit, n) != 0)
        return false;
    in->pos += n;
    return true;
}

/* Canonical unsigned decimal (no leading zeros). */
static bool in_uint(struct in *in, uint64_t max, uint64_t *out)
{
    size_t start = in->pos;
    uint64_t v = 0;
    while (in->pos < in->len && in->s[in->pos] >= '0' && in->s[in->pos] <= '9') {
        unsigned d = (unsigned)(in->s[in->pos] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        in->pos++;
    }
    size_t n = in->pos - start;
    if (n == 0 || (n > 1 && in->s[start] == '0'))
        return false;
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A string exactly as out_json writes it, decoded into dst (max bytes). */
static bool in_str(struct in *in, char *dst, size_t max)
{
    size_t k = 0;
    if (!in_lit(in, "\""))
        return false;
    while (in->pos < in->len) {
        const unsigned char *u = (const unsigned char *)in->s + in->pos;
        size_t left = in->len - in->pos;
        unsigned char c = u[0];
        if (c == '"') {
            in->pos++;
            dst[k] = '\0';
            return true;
        }
        if (k >= max)
            return false;
        if (c == '\\') {
            if (left >= 2 && (u[1] == '"' || u[1] == '\\')) {
                dst[k++] = (char)u[1];
                in->pos += 2;
                continue;
            }
            if (left >= 6 && u[1] == 'u' && u[2] == '0' && u[3] == '0' && hexval((char)u[4]) >= 0 &&
                hexval((char)u[5]) >= 0) {
                int v = hexval((char)u[4]) * 16 + hexval((char)u[5]);
                if (v >= 0x20)
                    return false;
                dst[k++] = (char)v;
                in->pos += 6;
                continue;
            }
            return false;
        }
        if (c < 0x20)
            return false;
        size_t l = utf8_len(u, left);
        if (l == 0 || k + l > max)
            return false;
        memcpy(dst + k, u, l);
        k += l;
        in->pos += l;
    }
    return false;
}

static bool in_hex(struct in *in, char dst[AUDIT_HEX_LEN + 1])
{
    if (!in_lit(in, "\"") || in->len - in->pos < AUDIT_HEX_LEN + 1)
        return false;
    for (size_t i = 0; i < AUDIT_HEX_LEN; i++)
        if (hexval(in->s[in->pos + i]) < 0)
            return false;
    memcpy(dst, in->s + in->pos, AUDIT_HEX_LEN);
    dst[AUDIT_HEX_LEN] = '\0';
    in->pos += AUDIT_HEX_LEN;
    return in_lit(in, "\"");
}

int audit_parse_line(const char *line, size_t len, struct audit_entry *e)
{
    struct in in = {.s = line, .len = len};
    uint64_t uid;
    memset(e, 0, sizeof(*e));
    if (len > AUDIT_LINE_MAX)
        return -EBADMSG;
    if (!in_lit(&in, "{\"seq\":") || !in_uint(&in, UINT64_MAX, &e->seq) || e->seq == 0 ||
        !in_lit(&in, ",\"time\":") || !in_str(&in, e->time, sizeof(e->time) - 1) ||
        !in_lit(&in, ",\"uid\":") || !in_uint(&in, UINT32_MAX, &uid) ||
        !in_lit(&in, ",\"role\":") || !in_str(&in, e->role, AUDIT_ROLE_MAX) ||
        !in_lit(&in, ",\"action\":") || !in_str(&in, e->action, AUDIT_ACTION_MAX) ||
        !in_lit(&in, ",\"target\":") || !in_str(&in, e->target, AUDIT_TARGET_MAX) ||
        !in_lit(&in, ",\"result\":") || !in_str(&in, e->result, AUDIT_RESULT_MAX) ||
        !in_lit(&in, ",\"prev\":") || !in_hex(&in, e->prev))
        return -EBADMSG;
    size_t body = in.pos;
    if (!in_lit(&in, ",\"hash\":") || !in_hex(&in, e->hash) || !in_lit(&in, "}") ||
        in.pos != len)
        return -EBADMSG;
    e->uid = (uint32_t)uid;
    char want[AUDIT_HEX_LEN + 1];
    if (sha256_hex(line, body, "}", 1, want) || strcmp(want, e->hash) != 0)
        return -EBADMSG;
    return 0;
}

/* Calls fn for each line ('\n' stripped; *complete false for a last line
 * without '\n'). Stops when fn returns non-zero and returns that. */
typedef int (*line_fn)(void *ctx, const char *line, size_t len, bool complete);

static int for_each_line(const char *path, line_fn fn, void *ctx)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    errno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        bool complete = n > 0 && line[n - 1] == '\n';
        if (complete)
            n--;
        if ((rc = fn(ctx, line, (size_t)n, complete)))
            break;
        errno = 0;
    }
    if (!rc && ferror(f))
        rc = -EIO;
    free(line);
    fclose(f);
    return rc;
}

struct vstate {
    struct audit_report *r;
    const struct audit_head *anchor;
    bool anchor_seen;
    char prev[AUDIT_HEX_LEN + 1]; /* sha256 of the previous line */
};

#define VBAD 1

static int vbad(struct vstate *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vbad(struct vstate *v, const char *fmt, ...)
{
    struct audit_report *r = v->r;
    r->ok = false;
    r->first_bad_seq = r->entries + 1;
    r->first_bad_line = r->entries + 1;
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(r->msg, sizeof(r->msg), "line %llu (seq %llu): %s",
             (unsigned long long)r->first_bad_line, (unsigned long long)r->first_bad_seq, text);
    return VBAD;
}

static int verify_line(void *ctx, const char *line, size_t len, bool complete)
{
    struct vstate *v = ctx;
    struct audit_report *r = v->r;
    uint64_t want = r->entries + 1;
    if (!complete)
        return vbad(v, "cut mid-line (log truncated or a write was interrupted)");
    if (len > AUDIT_LINE_MAX)
        return vbad(v, "line too long (%zu bytes)", len);
    struct audit_entry e;
    if (audit_parse_line(line, len, &e)) {
        /* Tell an edit (well-formed, wrong hash) from garbage. */
        struct in in = {.s = line, .len = len};
        uint64_t seq;
        if (in_lit(&in, "{\"seq\":") && in_uint(&in, UINT64_MAX, &seq) && len > 80 &&
            memcmp(line + len - 2, "\"}", 2) == 0)
            return vbad(v, "hash mismatch or malformed entry (entry edited)");
        return vbad(v, "not an audit entry (malformed line)");
    }
    if (e.seq != want)
        return vbad(v, "seq is %llu, expected %llu (entry removed, inserted or reordered)",
                    (unsigned long long)e.seq, (unsigned long long)want);
    if (strcmp(e.prev, v->prev) != 0)
        return vbad(v, "prev does not match the previous line (entry removed, replaced or reordered)");
    if (sha256_hex(line, len, NULL, 0, v->prev))
        return -EIO;
    if (v->anchor && v->anchor->seq == e.seq) {
        v->anchor_seen = true;
        if (strcmp(v->anchor->hash, e.hash) != 0)
            return vbad(v, "hash differs from the anchor's (log rewritten)");
    }
    r->entries = want;
    r->head.seq = e.seq;
    memcpy(r->head.hash, e.hash, sizeof(r->head.hash));
    return 0;
}

int audit_verify_anchor(const char *path, const struct audit_head *anchor,
                        struct audit_report *report)
{
    struct audit_head a = {0};
    if (anchor)
        a = *anchor; /* it may point into *report */
    struct vstate v = {.r = report, .anchor = a.seq ? &a : NULL};
    memset(report, 0, sizeof(*report));
    report->ok = true;
    memcpy(report->head.hash, ZERO_HEX, sizeof(report->head.hash));
    memcpy(v.prev, ZERO_HEX, sizeof(v.prev));
    int rc = for_each_line(path, verify_line, &v);
    if (rc < 0)
        return rc;
    if (rc == VBAD)
        return -EBADMSG;
    if (v.anchor && !v.anchor_seen) {
        report->ok = false;
        report->first_bad_seq = report->entries + 1;
        report->first_bad_line = report->entries + 1;
        snprintf(report->msg, sizeof(report->msg),
                 "log ends at seq %llu but the anchor is at seq %llu (entries removed from the end)",
                 (unsigned long long)report->entries, (unsigned long long)v.anchor->seq);
        return -EBADMSG;
    }
    snprintf(report->msg, sizeof(report->msg), "%llu entries, chain intact",
             (unsigned long long)report->entries);
    return 0;
}

int audit_verify(const char *path, struct audit_report *report)
{
    return audit_verify_anchor(path, NULL, report);
}

/* ---- listing ------------------------------------------------------------- */

struct lstate {
    const struct audit_filter *f;
    struct audit_entry *v;
    size_t n, cap;      /* with tail+limit: a ring of cap = limit entries */
    size_t next;        /* ring write position */
    bool ring, done;
};

static bool match(const struct audit_filter *f, const struct audit_entry *e)
{
    if (!f)
        return true;
    if (e->seq < f->since_seq)
        return false;
    if (f->action && *f->action) {
        size_t l = strlen(f->action);
        if (f->action[l - 1] == '*') {
            if (strncmp(e->action, f->action, l - 1) != 0)
                return false;
        } else if (strcmp(e->action, f->action) != 0) {
            return false;
        }
    }
    if (f->target && strcmp(e->target, f->target) != 0)
        return false;
    if (f->role && strcmp(e->role, f->role) != 0)
        return false;
    if (f->by_uid && e->uid != f->uid)
        return false;
    if (f->time_from && strcmp(e->time, f->time_from) < 0)
        return false;
    if (f->time_to && strcmp(e->time, f->time_to) >= 0)
        return false;
    if (f->errors_only && strcmp(e->result, "ok") == 0)
        return false;
    return true;
}

static int list_line(void *ctx, const char *line, size_t len, bool complete)
{
    struct lstate *s = ctx;
    struct audit_entry e;
    if (!complete || audit_parse_line(line, len, &e) || !match(s->f, &e))
        return 0;
    if (s->ring) {
        s->v[s->next] = e;
        s->next = (s->next + 1) % s->cap;
        if (s->n < s->cap)
            s->n++;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct audit_entry *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = e;
    if (s->f && s->f->limit && s->n >= s->f->limit)
        return 2; /* enough */
    return 0;
}

int audit_list(const char *path, const struct audit_filter *f, struct audit_entry **out,
               size_t *n)
{
    struct lstate s = {.f = f};
    *out = NULL;
    *n = 0;
    if (f && f->tail && f->limit) {
        s.ring = true;
        s.cap = f->limit;
        s.v = calloc(s.cap, sizeof(*s.v));
        if (!s.v)
            return -ENOMEM;
    }
    int rc = for_each_line(path, list_line, &s);
    if (rc < 0) {
        free(s.v);
        return rc;
    }
    if (s.ring && s.n == s.cap && s.next) {
        /* rotate the ring into log order */
        struct audit_entry *nv = malloc(s.cap * sizeof(*nv));
        if (!nv) {
            free(s.v);
            return -ENOMEM;
        }
        memcpy(nv, s.v + s.next, (s.cap - s.next) * sizeof(*nv));
        memcpy(nv + (s.cap - s.next), s.v, s.next * sizeof(*nv));
        free(s.v);
        s.v = nv;
    }
    *out = s.v;
    *n = s.n;
    return 0;
}
