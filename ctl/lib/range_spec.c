/*
 * range_spec: the range YAML spec. libyaml's event parser builds a small,
 * bounded tree (no anchors, aliases or tags; bounded depth, node count and
 * input size), which is then walked and validated field by field. See
 * herd/range_spec.h and docs/ranges.md.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <yaml.h>

#include "herd/range_spec.h"

#define YDEPTH_MAX 16
#define YNODES_MAX 200000

/* ---- small helpers ------------------------------------------------------- */

static const char *const net_names[RANGE_NET_COUNT] = {
    "management", "storage", "service", "communication",
};

const char *range_network_name(enum range_network net)
{
    if ((unsigned)net >= RANGE_NET_COUNT)
        return NULL;
    return net_names[net];
}

int range_network_parse(const char *name, enum range_network *out)
{
    for (unsigned i = 0; name && i < RANGE_NET_COUNT; i++) {
        if (strcmp(name, net_names[i]) == 0) {
            *out = (enum range_network)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int is_alnum_lc(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int range_name_check(const char *s, size_t max)
{
    if (!s || !*s)
        return -EINVAL;
    size_t len = strlen(s);
    if (len > max)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum_lc(s[i]) && s[i] != '-')
            return -EINVAL;
    if (!is_alnum_lc(s[0]) || !is_alnum_lc(s[len - 1]))
        return -EINVAL;
    return 0;
}

static int template_name_check(const char *s)
{
    if (!s || !*s)
        return -EINVAL;
    size_t len = strlen(s);
    if (len > RANGE_TEMPLATE_MAX)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return -EINVAL;
    }
    if (s[0] == '.' || s[0] == '-')
        return -EINVAL;
    return 0;
}

/* Unsigned decimal with overflow detection: 0, -EINVAL (not digits), -ERANGE. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int range_parse_size(const char *s, uint64_t *out)
{
    if (!s)
        return -EINVAL;
    size_t len = strlen(s), digits = 0;
    while (digits < len && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (digits == 0)
        return -EINVAL;
    uint64_t v;
    int rc = parse_u64(s, digits, &v);
    if (rc)
        return rc;
    const char *suf = s + digits;
    unsigned shift = 0;
    if (*suf) {
        switch (*suf) {
        case 'K': case 'k': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        case 'B': shift = 0; break;
        default: return -EINVAL;
        }
        if (*suf == 'B') {
            if (suf[1])
                return -EINVAL;
        } else {
            suf++;
            if (*suf && strcmp(suf, "B") != 0 && strcmp(suf, "iB") != 0)
                return -EINVAL;
        }
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = v << shift;
    return 0;
}

/* ---- OpenSSH public keys ------------------------------------------------- */

static const char *const ssh_key_types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
};

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict standard base64 (RFC 4648 section 4): a non-zero multiple of 4
 * characters, '=' only as the last one or two, unused bits zero. out has
 * room for len / 4 * 3 bytes. -EINVAL on anything else. */
static int b64_decode_strict(const char *s, size_t len, unsigned char *out, size_t *out_len)
{
    if (len == 0 || len % 4)
        return -EINVAL;
    size_t pad = 0;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int d[4];
        bool last = i + 4 == len;
        for (size_t k = 0; k < 4; k++) {
            if (last && k >= 4 - pad) {
                d[k] = 0;
                continue;
            }
            d[k] = b64_value((unsigned char)s[i + k]);
            if (d[k] < 0)
                return -EINVAL;
        }
        uint32_t w = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 |
                     (uint32_t)d[3];
        out[o++] = (unsigned char)(w >> 16);
        if (last && pad == 2) {
            if (w & 0xffff)
                return -EINVAL; /* non-canonical: unused bits set */
            break;
        }
        out[o++] = (unsigned char)(w >> 8);
        if (last && pad == 1) {
            if (w & 0xff)
                return -EINVAL;
            break;
        }
        out[o++] = (unsigned char)w;
    }
    *out_len = o;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int ssh_why(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ssh_why(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int range_ssh_key_check(const char *line, char *why, size_t why_size)
{
    static const char not_key[] = "not an OpenSSH public key (expected TYPE BASE64 [COMMENT])";
    if (why && why_size)
        why[0] = '\0';
    if (!line)
        return ssh_why(why, why_size, "%s", not_key);
    size_t len = strnlen(line, RANGE_SSH_KEY_BYTES_MAX + 1);
    if (len > RANGE_SSH_KEY_BYTES_MAX)
        return ssh_why(why, why_size, "the key is longer than %d bytes", RANGE_SSH_KEY_BYTES_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            return ssh_why(why, why_size,
                           "the key contains a control character (it must be one line, fields separated by spaces)");
    }

    /* TYPE */
    size_t tl = 0;
    while (tl < len && line[tl] != ' ')
        tl++;
    if (tl == 0 || !((line[0] >= 'a' && line[0] <= 'z') || (line[0] >= 'A' && line[0] <= 'Z')))
        return ssh_why(why, why_size, "%s", not_key);
    for (size_t i = 0; i < tl; i++) {
        char c = line[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '@' || c == '_'))
            return ssh_why(why, why_size, "%s", not_key);
    }
    const char *type = NULL;
    for (size_t i = 0; i < sizeof(ssh_key_types) / sizeof(ssh_key_types[0]); i++)
        if (strlen(ssh_key_types[i]) == tl && !memcmp(line, ssh_key_types[i], tl)) {
            type = ssh_key_types[i];
            break;
        }
    if (!type)
        return ssh_why(why, why_size, "unknown key type '%.*s'", tl > 40 ? 40 : (int)tl, line);

    /* BASE64 */
    size_t b = tl;
    while (b < len && line[b] == ' ')
        b++;
    size_t bl = 0;
    while (b + bl < len && line[b + bl] != ' ')
        bl++;
    if (bl == 0)
        return ssh_why(why, why_size, "%s", not_key);
    unsigned char blob[RANGE_SSH_KEY_BYTES_MAX / 4 * 3 + 3]; /* bl < the line's length */
    size_t blen = 0;
    if (b64_decode_strict(line + b, bl, blob, &blen))
        return ssh_why(why, why_size, "the key data is not base64");
    size_t n = strlen(type);
    bool match = blen >= 4 + n && be32(blob) == n && !memcmp(blob + 4, type, n);
    /* ssh-ed25519: string "ssh-ed25519" (4 + 11), string key (4 + 32) */
    bool ed = !strcmp(type, "ssh-ed25519");
    if (match && ed && blen != 51)
        return ssh_why(why, why_size,
                       "the key data does not match its type %s (%zu bytes, expected 51)", type,
                       blen);
    if (!match || (ed && be32(blob + 15) != 32))
        return ssh_why(why, why_size, "the key data does not match its type %s", type);

    /* [COMMENT]: the rest, printable ASCII */
    for (size_t i = b + bl; i < len; i++)
        if ((unsigned char)line[i] > 0x7e)
            return ssh_why(why, why_size, "the comment is not printable ASCII");
    return 0;
}

/* ---- errors -------------------------------------------------------------- */

struct path {
    char buf[128];
    size_t len;
};

static size_t path_push(struct path *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t path_push(struct path *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->buf + p->len, sizeof(p->buf) - p->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->len += (size_t)n;
    if (p->len >= sizeof(p->buf))
        p->len = sizeof(p->buf) - 1;
    return old;
}

static void path_pop(struct path *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}

static int set_err(struct range_err *err, const char *field, int line, int col,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int set_err(struct range_err *err, const char *field, int line, int col,
                   const char *fmt, ...)
{
    if (!err)
        return -EINVAL;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    char where[48] = "";
    if (line > 0)
        snprintf(where, sizeof(where), " (line %d, column %d)", line, col);
    if (field && *field)
        snprintf(err->msg, sizeof(err->msg), "%s: %s%s", field, text, where);
    else
        snprintf(err->msg, sizeof(err->msg), "%s%s", text, where);
    err->line = line;
    err->column = col;
    return -EINVAL;
}

/* ---- the YAML tree ------------------------------------------------------- */

enum ykind { Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
    enum ykind kind;
    int line, col;
    /* scalar */
    char *str;
    size_t len;
    bool plain;
    /* map: kids[2i] key, kids[2i+1] value; seq: kids[i] */
    struct ynode **kids;
    size_t n, cap;
};

struct ybuild {
    yaml_parser_t parser;
    size_t nodes;
    struct range_err *err;
};

static void ynode_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        ynode_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static int ynode_add(struct ynode *parent, struct ynode *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct ynode **k = realloc(parent->kids, cap * sizeof(*k));
        if (!k)
            return -ENOMEM;
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static int yerr_mark(struct ybuild *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int yerr_mark(struct ybuild *b, const yaml_mark_t *m, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    set_err(b->err, "", (int)m->line + 1, (int)m->column + 1, "%s", text);
    return -EINVAL;
}

static int ynext(struct ybuild *b, yaml_event_t *ev)
{
    if (yaml_parser_parse(&b->parser, ev))
        return 0;
    const yaml_parser_t *p = &b->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return -ENOMEM;
    char text[200];
    if (p->context)
        snprintf(text, sizeof(text), "YAML: %s %s", p->problem ? p->problem : "syntax error",
                 p->context);
    else
        snprintf(text, sizeof(text), "YAML: %s", p->problem ? p->problem : "syntax error");
    set_err(b->err, "", (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
            "%s", text);
    return -EINVAL;
}

/* Builds the node that ev starts (ev is consumed). */
static int ybuild_node(struct ybuild *b, yaml_event_t *ev, int depth, struct ynode **out)
{
    int rc = 0;
    *out = NULL;
    const yaml_mark_t mark = ev->start_mark;
    const yaml_char_t *anchor = NULL, *tag = NULL;

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        rc = yerr_mark(b, &mark, "YAML aliases (*name) are not allowed");
        goto out_ev;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        rc = yerr_mark(b, &mark, "YAML: unexpected event");
        goto out_ev;
    }
    if (anchor) {
        rc = yerr_mark(b, &mark, "YAML anchors (&name) are not allowed");
        goto out_ev;
    }
    if (tag) {
        rc = yerr_mark(b, &mark, "YAML tags (!tag) are not allowed");
        goto out_ev;
    }
    if (depth > YDEPTH_MAX) {
        rc = yerr_mark(b, &mark, "YAML nested too deeply");
        goto out_ev;
    }
    if (++b->nodes > YNODES_MAX) {
        rc = yerr_mark(b, &mark, "YAML has too many nodes");
        goto out_ev;
    }
    struct ynode *n = calloc(1, sizeof(*n));
    if (!n) {
        rc = -ENOMEM;
        goto out_ev;
    }
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = Y_SCALAR;
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            free(n);
            rc = -ENOMEM;
            goto out_ev;
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        yaml_event_delete(ev);
        *out = n;
        return 0;
    }
    yaml_event_type_t end = ev->type == YAML_MAPPING_START_EVENT ? YAML_MAPPING_END_EVENT
                                                                 : YAML_SEQUENCE_END_EVENT;
    n->kind = ev->type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ;
    yaml_event_delete(ev);
    for (;;) {
        yaml_event_t kev;
        rc = ynext(b, &kev);
        if (rc)
            break;
        if (kev.type == end) {
            yaml_event_delete(&kev);
            *out = n;
            return 0;
        }
        struct ynode *kid;
        rc = ybuild_node(b, &kev, depth + 1, &kid);
        if (rc)
            break;
        rc = ynode_add(n, kid);
        if (rc) {
            ynode_free(kid);
            break;
        }
    }
    ynode_free(n);
    return rc;
out_ev:
    yaml_event_delete(ev);
    return rc;
}

/* The document's root node, or NULL for an empty document. */
static int ybuild_doc(struct ybuild *b, struct ynode **root)
{
    yaml_event_t ev;
    int rc;
    *root = NULL;
    if ((rc = ynext(b, &ev)))
        return rc;
    if (ev.type != YAML_STREAM_START_EVENT) {
        yaml_event_delete(&ev);
        return set_err(b->err, "", 0, 0, "YAML: no stream");
    }
    yaml_event_delete(&ev);
    if ((rc = ynext(b, &ev)))
        return rc;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return 0;
    }
    if (ev.type != YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        return set_err(b->err, "", 0, 0, "YAML: no document");
    }
    yaml_event_delete(&ev);
    if ((rc = ynext(b, &ev)))
        return rc;
    if ((rc = ybuild_node(b, &ev, 0, root)))
        return rc;
    if ((rc = ynext(b, &ev)))
        goto fail;
    /* DOCUMENT-END */
    yaml_event_delete(&ev);
    if ((rc = ynext(b, &ev)))
        goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc = yerr_mark(b, &ev.start_mark, "YAML: only one document is allowed");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    return 0;
fail:
    ynode_free(*root);
    *root = NULL;
    return rc;
}

/* ---- validation ---------------------------------------------------------- */

struct vctx {
    struct range_err *err;
    struct path path;
};

static const char *kind_name(const struct ynode *n)
{
    switch (n->kind) {
    case Y_MAP: return "a mapping";
    case Y_SEQ: return "a list";
    default: break;
    }
    if (n->plain && (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
                     !strcmp(n->str, "Null") || !strcmp(n->str, "NULL")))
        return "null";
    return "a scalar";
}

static int verr(struct vctx *v, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int verr(struct vctx *v, const struct ynode *n, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return set_err(v->err, v->path.buf, n ? n->line : 0, n ? n->col : 0, "%s", text);
}

static int is_null(const struct ynode *n)
{
    return !strcmp(kind_name(n), "null");
}

/* Quotes a user value for a message, cut to a sane length. */
static const char *shown(const struct ynode *n, char *buf, size_t len)
{
    size_t max = len - 1 < 40 ? len - 1 : 40;
    size_t i, o = 0;
    for (i = 0; i < n->len && o < max; i++) {
        unsigned char c = (unsigned char)n->str[i];
        buf[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    buf[o] = '\0';
    if (i < n->len && o >= 3)
        memcpy(buf + o - 3, "...", 3);
    return buf;
}

static int want_kind(struct vctx *v, const struct ynode *n, enum ykind kind, const char *what)
{
    if (n->kind == kind && !(kind == Y_SCALAR && is_null(n)))
        return 0;
    return verr(v, n, "expected %s, got %s", what, kind_name(n));
}

/* A name-like string: [a-z0-9-] 1..max, starting/ending with a letter/digit. */
static int get_name(struct vctx *v, const struct ynode *n, size_t max, char *dst)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "a name");
    if (rc)
        return rc;
    if (strlen(n->str) != n->len)
        return verr(v, n, "name contains a NUL character");
    rc = range_name_check(n->str, max);
    if (rc == -ENAMETOOLONG)
        return verr(v, n, "'%s' is longer than %zu characters", shown(n, sb, sizeof(sb)), max);
    if (rc)
        return verr(v, n, "'%s' is not a valid name ([a-z0-9-], starting and ending with a letter or digit)",
                    shown(n, sb, sizeof(sb)));
    memcpy(dst, n->str, n->len + 1);
    return 0;
}

/* An integer in lo..hi; refuses quoted strings, floats, booleans. */
static int get_uint(struct vctx *v, const struct ynode *n, uint64_t lo, uint64_t hi,
                    unsigned *out)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "an integer");
    if (rc)
        return rc;
    if (!n->plain)
        return verr(v, n, "expected an integer, got a quoted string");
    const char *s = n->str;
    size_t len = n->len;
    bool neg = false;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++;
        len--;
    }
    uint64_t val = 0;
    rc = parse_u64(s, len, &val);
    if (rc == -EINVAL)
        return verr(v, n, "expected an integer, got '%s'", shown(n, sb, sizeof(sb)));
    if (rc == -ERANGE || neg || val < lo || val > hi) {
        if (neg && rc == 0 && val == 0) {
            *out = 0;
            if (lo == 0)
                return 0;
        }
        return verr(v, n, "%s is not in %llu..%llu", shown(n, sb, sizeof(sb)),
                    (unsigned long long)lo, (unsigned long long)hi);
    }
    *out = (unsigned)val;
    return 0;
}

struct field {
    const char *key;
    const struct ynode *val;
};

/* Checks a mapping's keys against names[]; fills vals[i] (NULL if absent). */
static int get_fields(struct vctx *v, const struct ynode *map, const char *const *names,
                      size_t nnames, const struct ynode **vals, const char *expected)
{
    char sb[48];
    for (size_t i = 0; i < nnames; i++)
        vals[i] = NULL;
    for (size_t k = 0; k + 1 < map->n; k += 2) {
        const struct ynode *key = map->kids[k];
        if (key->kind != Y_SCALAR)
            return verr(v, key, "keys must be plain strings, got %s", kind_name(key));
        size_t i;
        for (i = 0; i < nnames; i++)
            if (key->len == strlen(names[i]) && !memcmp(key->str, names[i], key->len))
                break;
        size_t old = path_push(&v->path, "%s%s", v->path.len ? "." : "",
                               shown(key, sb, sizeof(sb)));
        if (i == nnames) {
            int rc = verr(v, key, "unknown field (expected %s)", expected);
            path_pop(&v->path, old);
            return rc;
        }
        if (vals[i]) {
            int rc = verr(v, key, "duplicate field");
            path_pop(&v->path, old);
            return rc;
        }
        path_pop(&v->path, old);
        vals[i] = map->kids[k + 1];
    }
    return 0;
}

static int missing(struct vctx *v, const struct ynode *map, const char *key)
{
    size_t old = path_push(&v->path, "%s%s", v->path.len ? "." : "", key);
    int rc = verr(v, map, "required field is missing");
    path_pop(&v->path, old);
    return rc;
}

#define PUSH(...) size_t old_ = path_push(&v->path, __VA_ARGS__)
#define POP() path_pop(&v->path, old_)

/* A scalar that is an IPv4 address (family AF_INET) into out. */
static int get_addr(struct vctx *v, const struct ynode *n, struct ipam_addr *out)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "an IPv4 address");
    if (rc)
        return rc;
    if (strlen(n->str) != n->len || ipam_addr_parse(n->str, AF_INET, out) < 0)
        return verr(v, n, "'%s' is not an IPv4 address (expected e.g. 10.1.0.5)",
                    shown(n, sb, sizeof(sb)));
    return 0;
}

/* A plain true or false (YAML 1.2 core schema, lower case). */
static int get_bool(struct vctx *v, const struct ynode *n, bool *out)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "true or false");
    if (rc)
        return rc;
    if (n->plain && !strcmp(n->str, "true"))
        *out = true;
    else if (n->plain && !strcmp(n->str, "false"))
        *out = false;
    else
        return verr(v, n, "expected true or false, got '%s'", shown(n, sb, sizeof(sb)));
    return 0;
}

/* A scalar that is a subnet of family into out (ipam's message). */
static int get_net(struct vctx *v, const struct ynode *n, int family, struct ipam_net *out)
{
    int rc = want_kind(v, n, Y_SCALAR, family == AF_INET ? "an IPv4 subnet (e.g. 10.1.0.0/24)"
                                                         : "an IPv6 prefix (e.g. fd00:1::/64)");
    if (rc)
        return rc;
    if (strlen(n->str) != n->len)
        return verr(v, n, "the subnet contains a NUL character");
    struct herd_err e;
    herd_err_clear(&e);
    if (ipam_net_parse(n->str, family, out, v->path.buf, &e) < 0)
        return verr(v, n, "%s", e.msg);
    return 0;
}

/* nic.addresses: one IPv4 address per guest of the role (count of them). */
static int check_addresses(struct vctx *v, const struct ynode *n, unsigned count,
                           struct range_nic *nic)
{
    int rc = want_kind(v, n, Y_SEQ, "a list of IPv4 addresses, one per guest");
    if (rc)
        return rc;
    if (n->n != count)
        return verr(v, n, "%zu addresses for %u guests (give one per guest, or none)", n->n,
                    count);
    nic->addresses = calloc(count, sizeof(*nic->addresses));
    nic->addr_line = calloc(count, sizeof(*nic->addr_line));
    if (!nic->addresses || !nic->addr_line)
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        size_t o = path_push(&v->path, "[%zu]", i);
        rc = get_addr(v, n->kids[i], &nic->addresses[i]);
        nic->addr_line[i] = n->kids[i]->line;
        for (size_t j = 0; !rc && j < i; j++)
            if (ipam_addr_equal(&nic->addresses[j], &nic->addresses[i]))
                rc = verr(v, n->kids[i], "duplicate address (also [%zu])", j);
        path_pop(&v->path, o);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_nic(struct vctx *v, const struct ynode *n, unsigned count, struct range_nic *nic)
{
    static const char *const keys[] = {"network", "segment", "addresses"};
    const struct ynode *f[3];
    char sb[48];
    int rc = want_kind(v, n, Y_MAP, "a mapping {network: ..., segment: ...}");
    if (rc)
        return rc;
    if ((rc = get_fields(v, n, keys, 3, f, "network, segment, addresses")))
        return rc;
    if (!f[0])
        return missing(v, n, "network");
    {
        PUSH(".network");
        rc = want_kind(v, f[0], Y_SCALAR, "a network name");
        if (!rc && (strlen(f[0]->str) != f[0]->len ||
                    range_network_parse(f[0]->str, &nic->network)))
            rc = verr(v, f[0], "'%s' is not a network (management, storage, service, communication)",
                      shown(f[0], sb, sizeof(sb)));
        POP();
        if (rc)
            return rc;
    }
    nic->segment[0] = '\0';
    if (f[1]) {
        PUSH(".segment");
        rc = get_name(v, f[1], RANGE_PART_MAX, nic->segment);
        POP();
        if (rc)
            return rc;
    }
    if (f[2]) {
        PUSH(".addresses");
        rc = check_addresses(v, f[2], count, nic);
        POP();
    }
    return rc;
}

/* role.overrides: [{guest: N, nic: K, address: A}], each (guest, nic) once. */
static int check_override(struct vctx *v, const struct ynode *n, const struct range_role *r,
                          struct range_override *o)
{
    static const char *const keys[] = {"guest", "nic", "address"};
    const struct ynode *f[3];
    int rc = want_kind(v, n, Y_MAP, "a mapping {guest: N, nic: K, address: A}");
    if (rc)
        return rc;
    if ((rc = get_fields(v, n, keys, 3, f, "guest, nic, address")))
        return rc;
    for (int i = 0; i < 3; i++)
        if (!f[i])
            return missing(v, n, keys[i]);
    o->line = n->line;
    {
        PUSH(".guest");
        rc = get_uint(v, f[0], 1, r->count, &o->guest);
        POP();
        if (rc)
            return rc;
    }
    {
        PUSH(".nic");
        if (!r->nics_set || r->n_nics == 0)
            rc = verr(v, f[1], "the role lists no nics to override");
        else
            rc = get_uint(v, f[1], 0, r->n_nics - 1, &o->nic);
        POP();
        if (rc)
            return rc;
    }
    PUSH(".address");
    rc = get_addr(v, f[2], &o->address);
    POP();
    return rc;
}

static int check_overrides(struct vctx *v, const struct ynode *n, struct range_role *r)
{
    int rc = want_kind(v, n, Y_SEQ, "a list of overrides");
    if (rc)
        return rc;
    if (n->n > RANGE_OVERRIDES_MAX)
        return verr(v, n, "%zu overrides, more than %d", n->n, RANGE_OVERRIDES_MAX);
    if (n->n && !(r->overrides = calloc(n->n, sizeof(*r->overrides))))
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        size_t o = path_push(&v->path, "[%zu]", i);
        struct range_override *ov = &r->overrides[i];
        rc = check_override(v, n->kids[i], r, ov);
        for (size_t j = 0; !rc && j < i; j++)
            if (r->overrides[j].guest == ov->guest && r->overrides[j].nic == ov->nic)
                rc = verr(v, n->kids[i], "guest %u nic %u is overridden twice (also [%zu])",
                          ov->guest, ov->nic, j);
        path_pop(&v->path, o);
        if (rc)
            return rc;
        r->n_overrides = i + 1;
    }
    return 0;
}

/* A copy of scalar n (want: what it should be, for the kind message). */
static int get_string(struct vctx *v, const struct ynode *n, const char *want, char **out)
{
    int rc = want_kind(v, n, Y_SCALAR, want);
    if (rc)
        return rc;
    if (!(*out = malloc(n->len + 1)))
        return -ENOMEM;
    memcpy(*out, n->str, n->len + 1);
    return 0;
}

/* role.runcmd: 0..RANGE_RUNCMD_MAX shell commands, kept byte-exact. */
static int check_runcmd(struct vctx *v, const struct ynode *n, struct range_role *r)
{
    int rc = want_kind(v, n, Y_SEQ, "a list of shell commands");
    if (rc)
        return rc;
    if (n->n > RANGE_RUNCMD_MAX)
        return verr(v, n, "%zu commands, more than %d", n->n, RANGE_RUNCMD_MAX);
    if (n->n && !(r->runcmd = calloc(n->n, sizeof(*r->runcmd))))
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *c = n->kids[i];
        size_t o = path_push(&v->path, "[%zu]", i);
        rc = want_kind(v, c, Y_SCALAR, "a shell command (string)");
        if (!rc && c->len == 0)
            rc = verr(v, c, "the command is empty");
        else if (!rc && c->len > RANGE_RUNCMD_BYTES_MAX)
            rc = verr(v, c, "the command is %zu bytes, more than %d", c->len,
                      RANGE_RUNCMD_BYTES_MAX);
        else if (!rc && strlen(c->str) != c->len)
            rc = verr(v, c, "the command contains a NUL character");
        if (!rc)
            rc = get_string(v, c, "a shell command (string)", &r->runcmd[i]);
        path_pop(&v->path, o);
        if (rc)
            return rc;
        r->n_runcmd = i + 1;
    }
    return 0;
}

/* resources: an absolute host path of 1..RANGE_RESOURCES_BYTES_MAX bytes,
 * one line; what it names (a directory or an image file) is herdd's to
 * check. */
static int check_resources(struct vctx *v, const struct ynode *n, char **out)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "an absolute path");
    if (rc)
        return rc;
    if (strlen(n->str) != n->len)
        return verr(v, n, "the path contains a NUL character");
    if (memchr(n->str, '\n', n->len) || memchr(n->str, '\r', n->len))
        return verr(v, n, "the path contains a line break");
    if (n->len > RANGE_RESOURCES_BYTES_MAX)
        return verr(v, n, "the path is %zu bytes, more than %d", n->len,
                    RANGE_RESOURCES_BYTES_MAX);
    if (n->str[0] != '/')
        return verr(v, n, "'%s' is not an absolute path", shown(n, sb, sizeof(sb)));
    return get_string(v, n, "an absolute path", out);
}

/* role.node: a cluster node's name (herdd's node names: [A-Za-z0-9._-],
 * starting with a letter or digit, 1..RANGE_NODE_MAX). */
static int check_node(struct vctx *v, const struct ynode *n, char *out)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "a node name");
    if (rc)
        return rc;
    bool ok = n->len >= 1 && n->len <= RANGE_NODE_MAX && strlen(n->str) == n->len &&
              isalnum((unsigned char)n->str[0]);
    for (size_t i = 0; ok && i < n->len; i++)
        ok = isalnum((unsigned char)n->str[i]) || strchr("-_.", n->str[i]);
    if (!ok)
        return verr(v, n, "'%s' is not a node name ([A-Za-z0-9._-], 1..%d, starting with a "
                    "letter or digit)", shown(n, sb, sizeof(sb)), RANGE_NODE_MAX);
    memcpy(out, n->str, n->len + 1);
    return 0;
}

/* role.node and role.spread: where a cluster places the role's guests. */
static int check_placement(struct vctx *v, const struct ynode *node, const struct ynode *spread,
                           struct range_role *r)
{
    int rc = 0;
    if (node) {
        PUSH(".node");
        rc = check_node(v, node, r->node);
        POP();
    }
    if (!rc && spread) {
        PUSH(".spread");
        rc = get_bool(v, spread, &r->spread);
        POP();
    }
    return rc;
}

static int check_role(struct vctx *v, const struct ynode *n, struct range_role *r)
{
    static const char *const keys[] = {"name", "template", "count",  "cpus", "mem",
                                       "nics", "overrides", "runcmd", "node", "spread"};
    const struct ynode *f[10];
    char sb[48];
    int rc = want_kind(v, n, Y_MAP, "a role (mapping)");
    if (rc)
        return rc;
    if ((rc = get_fields(v, n, keys, 10, f,
                         "name, template, count, cpus, mem, nics, overrides, runcmd, node, "
                         "spread")))
        return rc;
    r->line = n->line;
    for (int i = 0; i < 3; i++)
        if (!f[i])
            return missing(v, n, keys[i]);
    {
        PUSH(".name");
        rc = get_name(v, f[0], RANGE_PART_MAX, r->name);
        POP();
        if (rc)
            return rc;
    }
    {
        PUSH(".template");
        rc = want_kind(v, f[1], Y_SCALAR, "a template name");
        if (!rc) {
            int trc = strlen(f[1]->str) != f[1]->len ? -EINVAL : template_name_check(f[1]->str);
            if (trc == -ENAMETOOLONG)
                rc = verr(v, f[1], "'%s' is longer than %d characters",
                          shown(f[1], sb, sizeof(sb)), RANGE_TEMPLATE_MAX);
            else if (trc)
                rc = verr(v, f[1], "'%s' is not a valid template name ([A-Za-z0-9._-])",
                          shown(f[1], sb, sizeof(sb)));
            else
                memcpy(r->template_name, f[1]->str, f[1]->len + 1);
        }
        POP();
        if (rc)
            return rc;
    }
    {
        PUSH(".count");
        rc = get_uint(v, f[2], 1, RANGE_COUNT_MAX, &r->count);
        POP();
        if (rc)
            return rc;
    }
    if (f[3]) {
        PUSH(".cpus");
        rc = get_uint(v, f[3], 1, RANGE_CPUS_MAX, &r->cpus);
        POP();
        if (rc)
            return rc;
    }
    if (f[4]) {
        PUSH(".mem");
        rc = want_kind(v, f[4], Y_SCALAR, "a size (e.g. 64M, 1G)");
        if (!rc) {
            uint64_t mem = 0;
            int src = strlen(f[4]->str) != f[4]->len ? -EINVAL : range_parse_size(f[4]->str, &mem);
            if (src == -EINVAL)
                rc = verr(v, f[4], "'%s' is not a size (e.g. 64M, 1G)", shown(f[4], sb, sizeof(sb)));
            else if (src || mem < RANGE_MEM_MIN || mem > RANGE_MEM_MAX)
                rc = verr(v, f[4], "%s is not in 4M..1T", shown(f[4], sb, sizeof(sb)));
            else if (mem % 4096)
                rc = verr(v, f[4], "%s is not a multiple of 4K", shown(f[4], sb, sizeof(sb)));
            else
                r->mem = mem;
        }
        POP();
        if (rc)
            return rc;
    }
    if (f[5]) {
        PUSH(".nics");
        rc = want_kind(v, f[5], Y_SEQ, "a list of NICs");
        if (!rc && f[5]->n > RANGE_NICS_MAX)
            rc = verr(v, f[5], "%zu NICs, more than %d", f[5]->n, RANGE_NICS_MAX);
        for (size_t i = 0; !rc && i < f[5]->n; i++) {
            size_t o = path_push(&v->path, "[%zu]", i);
            rc = check_nic(v, f[5]->kids[i], r->count, &r->nics[i]);
            path_pop(&v->path, o);
            if (!rc)
                r->n_nics = i + 1;
        }
        POP();
        if (rc)
            return rc;
        r->nics_set = true;
    }
    if (f[6]) {
        PUSH(".overrides");
        rc = check_overrides(v, f[6], r);
        POP();
        if (rc)
            return rc;
    }
    if (f[7]) {
        PUSH(".runcmd");
        rc = check_runcmd(v, f[7], r);
        POP();
        if (rc)
            return rc;
    }
    return check_placement(v, f[8], f[9], r);
}

/* What check_role allocated (the role itself is part of its scenario's array). */
static void role_free(struct range_role *role)
{
    for (size_t k = 0; k < RANGE_NICS_MAX; k++) {
        free(role->nics[k].addresses);
        free(role->nics[k].addr_line);
        role->nics[k].addresses = NULL;
        role->nics[k].addr_line = NULL;
    }
    free(role->overrides);
    role->overrides = NULL;
    for (size_t k = 0; k < role->n_runcmd; k++)
        free(role->runcmd[k]);
    free(role->runcmd);
    role->runcmd = NULL;
    role->n_runcmd = 0;
}

static int check_scenario(struct vctx *v, const struct ynode *n, struct range_scenario *s)
{
    static const char *const keys[] = {"name", "roles", "resources"};
    const struct ynode *f[3];
    int rc = want_kind(v, n, Y_MAP, "a scenario (mapping)");
    if (rc)
        return rc;
    if ((rc = get_fields(v, n, keys, 3, f, "name, roles, resources")))
        return rc;
    s->line = n->line;
    if (!f[0])
        return missing(v, n, "name");
    if (!f[1])
        return missing(v, n, "roles");
    {
        PUSH(".name");
        rc = get_name(v, f[0], RANGE_PART_MAX, s->name);
        POP();
        if (rc)
            return rc;
    }
    if (f[2]) {
        PUSH(".resources");
        rc = check_resources(v, f[2], &s->resources);
        POP();
        if (rc)
            return rc;
    }
    PUSH(".roles");
    rc = want_kind(v, f[1], Y_SEQ, "a list of roles");
    if (!rc && f[1]->n == 0)
        rc = verr(v, f[1], "a scenario needs at least one role");
    if (!rc && f[1]->n > RANGE_ROLES_MAX)
        rc = verr(v, f[1], "%zu roles, more than %d", f[1]->n, RANGE_ROLES_MAX);
    if (!rc && !(s->roles = calloc(f[1]->n, sizeof(*s->roles))))
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < f[1]->n; i++) {
        size_t o = path_push(&v->path, "[%zu]", i);
        rc = check_role(v, f[1]->kids[i], &s->roles[i]);
        for (size_t j = 0; !rc && j < i; j++)
            if (!strcmp(s->roles[j].name, s->roles[i].name)) {
                size_t o2 = path_push(&v->path, ".name");
                rc = verr(v, f[1]->kids[i], "duplicate role '%s' (also %s.roles[%zu])",
                          s->roles[i].name, "this scenario", j);
                path_pop(&v->path, o2);
            }
        path_pop(&v->path, o);
        if (rc)
            role_free(&s->roles[i]);
        else
            s->n_roles = i + 1;
    }
    POP();
    return rc;
}

/* After scenario i: the guest total and guest-name collisions of its roles
 * with every earlier (scenario, role). The path is at "scenarios[i]". */
static int check_totals(struct vctx *v, struct range_spec *spec, size_t i)
{
    const struct range_scenario *s = &spec->scenarios[i];
    for (size_t r = 0; r < s->n_roles; r++) {
        const struct range_role *role = &s->roles[r];
        spec->n_guests += role->count;
        if (spec->n_guests > RANGE_GUESTS_MAX) {
            PUSH(".roles[%zu].count", r);
            int rc = set_err(v->err, v->path.buf, role->line, 0,
                             "the range would have more than %d guests", RANGE_GUESTS_MAX);
            POP();
            return rc;
        }
        char a[2 * RANGE_PART_MAX + 2];
        snprintf(a, sizeof(a), "%s-%s", s->name, role->name);
        for (size_t pi = 0; pi <= i; pi++) {
            const struct range_scenario *ps = &spec->scenarios[pi];
            size_t lim = pi == i ? r : ps->n_roles;
            for (size_t pr = 0; pr < lim; pr++) {
                char b[2 * RANGE_PART_MAX + 2];
                snprintf(b, sizeof(b), "%s-%s", ps->name, ps->roles[pr].name);
                if (strcmp(a, b) != 0)
                    continue;
                PUSH(".roles[%zu].name", r);
                int rc = set_err(v->err, v->path.buf, role->line, 0,
                                 "guests of role '%s' in scenario '%s' would have the same names as those of role '%s' in scenario '%s' (%s-%s-1)",
                                 role->name, s->name, ps->roles[pr].name, ps->name,
                                 spec->name, a);
                POP();
                return rc;
            }
        }
    }
    return 0;
}

/* ---- addressing: networks.<net>[.segments.<seg>] ------------------------ */

/* dhcp: true: the server's address is the highest host of the subnet that
 * is not its gateway (range_addr never hands it to a guest). */
static int check_dhcp(struct vctx *v, const struct ynode *n, struct range_subnet *sn)
{
    PUSH(".dhcp");
    int rc = get_bool(v, n, &sn->dhcp);
    if (!rc && sn->dhcp) {
        uint32_t off = ipam_net_hosts(&sn->v4);
        if (sn->has_gateway && ipam_net_at(&sn->v4, off, &sn->dhcp_server) == 0 &&
            ipam_addr_equal(&sn->dhcp_server, &sn->gateway))
            off--;
        if (off == 0 || ipam_net_at(&sn->v4, off, &sn->dhcp_server) < 0)
            rc = verr(v, n, "the subnet has no host address left for the DHCP server");
    }
    POP();
    return rc;
}

/* One scope's {subnet, gateway, ipv6, dhcp} (and, for a network, segments)
 * into a new entry of spec->subnets when it has a subnet. */
static int check_scope(struct vctx *v, const struct ynode *n, enum range_network net,
                       const char *segment, struct range_spec *spec, const struct ynode **segs)
{
    static const char *const keys[] = {"subnet", "gateway", "ipv6", "dhcp", "segments"};
    const struct ynode *f[5];
    size_t nkeys = segs ? 5 : 4;
    int rc = want_kind(v, n, Y_MAP, segs ? "a mapping {subnet, gateway, ipv6, dhcp, segments}"
                                         : "a mapping {subnet, gateway, ipv6, dhcp}");
    if (rc)
        return rc;
    if ((rc = get_fields(v, n, keys, nkeys, f, segs ? "subnet, gateway, ipv6, dhcp, segments"
                                                    : "subnet, gateway, ipv6, dhcp")))
        return rc;
    if (segs)
        *segs = f[4];
    if (!f[0]) {
        if (f[1] || f[2] || f[3])
            return missing(v, n, "subnet");
        return 0;
    }
    if (spec->n_subnets == RANGE_SUBNETS_MAX)
        return verr(v, n, "more than %d networks and segments with a subnet", RANGE_SUBNETS_MAX);
    struct range_subnet *sn = &spec->subnets[spec->n_subnets];
    memset(sn, 0, sizeof(*sn));
    sn->network = net;
    snprintf(sn->segment, sizeof(sn->segment), "%s", segment);
    sn->line = n->line;
    {
        PUSH(".subnet");
        rc = get_net(v, f[0], AF_INET, &sn->v4);
        POP();
        if (rc)
            return rc;
    }
    if (f[1]) {
        PUSH(".gateway");
        uint32_t off;
        char sb[48], net_s[IPAM_NET_STR];
        rc = get_addr(v, f[1], &sn->gateway);
        if (!rc && ipam_net_offset(&sn->v4, &sn->gateway, &off) < 0) {
            ipam_net_format(&sn->v4, net_s);
            rc = verr(v, f[1], "%s is not a host address of %s", shown(f[1], sb, sizeof(sb)),
                      net_s);
        }
        POP();
        if (rc)
            return rc;
        sn->has_gateway = true;
    }
    if (f[2]) {
        PUSH(".ipv6");
        rc = get_net(v, f[2], AF_INET6, &sn->v6);
        if (!rc && ipam_net_hosts(&sn->v6) < ipam_net_hosts(&sn->v4)) {
            char n4[IPAM_NET_STR], n6[IPAM_NET_STR];
            ipam_net_format(&sn->v4, n4);
            ipam_net_format(&sn->v6, n6);
            rc = verr(v, f[2], "%s has fewer host addresses than the subnet %s (each guest's "
                               "IPv6 address mirrors its IPv4 host number)", n6, n4);
        }
        POP();
        if (rc)
            return rc;
        sn->has_v6 = true;
    }
    if (f[3] && (rc = check_dhcp(v, f[3], sn)))
        return rc;
    spec->n_subnets++;
    return 0;
}

static int check_segments(struct vctx *v, const struct ynode *n, enum range_network net,
                          struct range_spec *spec)
{
    char seg[RANGE_PART_MAX + 1];
    int rc = want_kind(v, n, Y_MAP, "a mapping of segment names");
    for (size_t k = 0; !rc && k + 1 < n->n; k += 2) {
        const struct ynode *key = n->kids[k];
        char sb[48];
        size_t o = path_push(&v->path, ".%s", key->kind == Y_SCALAR ? shown(key, sb, sizeof(sb)) : "?");
        rc = get_name(v, key, RANGE_PART_MAX, seg);
        for (size_t j = 0; !rc && j < k; j += 2)
            if (n->kids[j]->len == key->len && !memcmp(n->kids[j]->str, key->str, key->len))
                rc = verr(v, key, "duplicate segment");
        if (!rc)
            rc = check_scope(v, n->kids[k + 1], net, seg, spec, NULL);
        path_pop(&v->path, o);
    }
    return rc;
}

static int check_networks(struct vctx *v, const struct ynode *n, struct range_spec *spec)
{
    int rc = want_kind(v, n, Y_MAP, "a mapping of network names");
    if (rc)
        return rc;
    if (!(spec->subnets = calloc(RANGE_SUBNETS_MAX, sizeof(*spec->subnets))))
        return -ENOMEM;
    bool seen[RANGE_NET_COUNT] = {false};
    for (size_t k = 0; !rc && k + 1 < n->n; k += 2) {
        const struct ynode *key = n->kids[k];
        enum range_network net = RANGE_NET_MANAGEMENT;
        char sb[48];
        if (key->kind != Y_SCALAR)
            return verr(v, key, "keys must be plain strings, got %s", kind_name(key));
        size_t o = path_push(&v->path, ".%s", shown(key, sb, sizeof(sb)));
        if (strlen(key->str) != key->len || range_network_parse(key->str, &net))
            rc = verr(v, key, "'%s' is not a network (management, storage, service, communication)",
                      shown(key, sb, sizeof(sb)));
        else if (seen[net])
            rc = verr(v, key, "duplicate network");
        const struct ynode *segs = NULL;
        if (!rc) {
            seen[net] = true;
            rc = check_scope(v, n->kids[k + 1], net, "", spec, &segs);
        }
        if (!rc && segs) {
            size_t o2 = path_push(&v->path, ".segments");
            rc = check_segments(v, segs, net, spec);
            path_pop(&v->path, o2);
        }
        path_pop(&v->path, o);
    }
    return rc;
}

/* ssh_authorized_keys: 0..RANGE_SSH_KEYS_MAX OpenSSH public key lines. */
static int check_ssh_keys(struct vctx *v, const struct ynode *n, struct range_spec *spec)
{
    int rc = want_kind(v, n, Y_SEQ, "a list of OpenSSH public keys");
    if (rc)
        return rc;
    if (n->n > RANGE_SSH_KEYS_MAX)
        return verr(v, n, "%zu keys, more than %d", n->n, RANGE_SSH_KEYS_MAX);
    if (n->n && !(spec->ssh_keys = calloc(n->n, sizeof(*spec->ssh_keys))))
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->kids[i];
        size_t o = path_push(&v->path, "[%zu]", i);
        rc = want_kind(v, k, Y_SCALAR, "an OpenSSH public key (TYPE BASE64 [COMMENT])");
        if (!rc && strlen(k->str) != k->len)
            rc = verr(v, k, "the key contains a NUL character");
        if (!rc) {
            char why[160];
            if (range_ssh_key_check(k->str, why, sizeof(why)))
                rc = verr(v, k, "%s", why);
        }
        if (!rc)
            rc = get_string(v, k, "an OpenSSH public key", &spec->ssh_keys[i]);
        path_pop(&v->path, o);
        if (rc)
            return rc;
        spec->n_ssh_keys = i + 1;
    }
    return 0;
}

/* on_node_loss: keep (the default) or replace. */
static int check_node_loss(struct vctx *v, const struct ynode *n, struct range_spec *spec)
{
    char sb[48];
    int rc = want_kind(v, n, Y_SCALAR, "keep or replace");
    if (rc)
        return rc;
    if (n->plain && !strcmp(n->str, "replace"))
        spec->replace_lost = true;
    else if (!n->plain || strcmp(n->str, "keep"))
        return verr(v, n, "expected keep or replace, got '%s'", shown(n, sb, sizeof(sb)));
    return 0;
}

static int check_spec(struct vctx *v, const struct ynode *root, struct range_spec *spec)
{
    static const char *const keys[] = {"range", "scenarios", "networks", "ssh_authorized_keys",
                                       "resources", "on_node_loss"};
    const struct ynode *f[6];
    int rc;
    if (!root)
        return set_err(v->err, "", 0, 0, "the range spec is empty");
    if ((rc = want_kind(v, root, Y_MAP, "a mapping with range and scenarios")))
        return rc;
    if ((rc = get_fields(v, root, keys, 6, f,
                         "range, scenarios, networks, ssh_authorized_keys, resources, "
                         "on_node_loss")))
        return rc;
    if (!f[0])
        return missing(v, root, "range");
    if (!f[1])
        return missing(v, root, "scenarios");
    {
        PUSH("range");
        rc = get_name(v, f[0], RANGE_NAME_MAX, spec->name);
        POP();
        if (rc)
            return rc;
    }
    const struct ynode *sq = f[1];
    PUSH("scenarios");
    rc = want_kind(v, sq, Y_SEQ, "a list of scenarios");
    if (!rc && sq->n == 0)
        rc = verr(v, sq, "a range needs at least one scenario");
    if (!rc && sq->n > RANGE_SCENARIOS_MAX)
        rc = verr(v, sq, "%zu scenarios, more than %d", sq->n, RANGE_SCENARIOS_MAX);
    if (!rc && !(spec->scenarios = calloc(sq->n, sizeof(*spec->scenarios))))
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < sq->n; i++) {
        size_t o = path_push(&v->path, "[%zu]", i);
        struct range_scenario *s = &spec->scenarios[i];
        rc = check_scenario(v, sq->kids[i], s);
        spec->n_scenarios = i + 1; /* so range_spec_free sees its roles */
        for (size_t j = 0; !rc && j < i; j++)
            if (!strcmp(spec->scenarios[j].name, s->name)) {
                size_t o2 = path_push(&v->path, ".name");
                rc = verr(v, sq->kids[i], "duplicate scenario '%s' (also scenarios[%zu])",
                          s->name, j);
                path_pop(&v->path, o2);
            }
        if (!rc)
            rc = check_totals(v, spec, i);
        path_pop(&v->path, o);
    }
    POP();
    if (!rc && f[2]) {
        size_t o = path_push(&v->path, "networks");
        rc = check_networks(v, f[2], spec);
        path_pop(&v->path, o);
    }
    if (!rc && f[3]) {
        size_t o = path_push(&v->path, "ssh_authorized_keys");
        rc = check_ssh_keys(v, f[3], spec);
        path_pop(&v->path, o);
    }
    if (!rc && f[4]) {
        size_t o = path_push(&v->path, "resources");
        rc = check_resources(v, f[4], &spec->resources);
        path_pop(&v->path, o);
    }
    if (!rc && f[5]) {
        size_t o = path_push(&v->path, "on_node_loss");
        rc = check_node_loss(v, f[5], spec);
        path_pop(&v->path, o);
    }
    return rc;
}

/* ---- public -------------------------------------------------------------- */

void range_spec_free(struct range_spec *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; i < spec->n_scenarios; i++) {
        struct range_scenario *sc = &spec->scenarios[i];
        for (size_t r = 0; r < sc->n_roles; r++)
            role_free(&sc->roles[r]);
        free(sc->roles);
        free(sc->resources);
    }
    free(spec->scenarios);
    free(spec->subnets);
    for (size_t i = 0; i < spec->n_ssh_keys; i++)
        free(spec->ssh_keys[i]);
    free(spec->ssh_keys);
    free(spec->resources);
    free(spec);
}

int range_spec_parse(const char *buf, size_t len, struct range_spec **out,
                     struct range_err *err)
{
    struct range_err dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    *out = NULL;
    if (len > RANGE_SPEC_BYTES_MAX) {
        set_err(err, "", 0, 0, "the range spec is %zu bytes, more than %u", len,
                RANGE_SPEC_BYTES_MAX);
        return -EFBIG;
    }
    struct ybuild b = {.err = err};
    if (!yaml_parser_initialize(&b.parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)(buf ? buf : ""), len);
    yaml_parser_set_encoding(&b.parser, YAML_UTF8_ENCODING);
    struct ynode *root = NULL;
    int rc = ybuild_doc(&b, &root);
    yaml_parser_delete(&b.parser);
    if (rc) {
        if (rc == -ENOMEM)
            set_err(err, "", 0, 0, "out of memory");
        return rc;
    }
    struct range_spec *spec = calloc(1, sizeof(*spec));
    if (!spec) {
        ynode_free(root);
        set_err(err, "", 0, 0, "out of memory");
        return -ENOMEM;
    }
    struct vctx v = {.err = err};
    rc = check_spec(&v, root, spec);
    ynode_free(root);
    if (rc) {
        if (rc == -ENOMEM)
            set_err(err, "", 0, 0, "out of memory");
        range_spec_free(spec);
        return rc;
    }
    memset(err, 0, sizeof(*err));
    *out = spec;
    return 0;
}

int range_spec_load(const char *path, struct range_spec **out, struct range_err *err)
{
    struct range_err dummy;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof(*err));
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        set_err(err, "", 0, 0, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = RANGE_SPEC_BYTES_MAX + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            set_err(err, "", 0, 0, "%s: %s", path, strerror(e));
            free(buf);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap)
            break;
    }
    close(fd);
    int rc = range_spec_parse(buf, len, out, err);
    free(buf);
    return rc;
}

int range_guest_name(char out[RANGE_GUEST_NAME_MAX + 1], const struct range_spec *spec,
                     const struct range_scenario *sc, const struct range_role *role,
                     unsigned index)
{
    if (index == 0 || index > role->count)
        return -EINVAL;
    int n = snprintf(out, RANGE_GUEST_NAME_MAX + 1, "%s-%s-%s-%u", spec->name, sc->name,
                     role->name, index);
    if (n < 0 || n > RANGE_GUEST_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

int range_spec_expand(const struct range_spec *spec, struct range_guest **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t total = 0;
    for (size_t i = 0; i < spec->n_scenarios; i++)
        for (size_t r = 0; r < spec->scenarios[i].n_roles; r++)
            total += spec->scenarios[i].roles[r].count;
    if (total > RANGE_GUESTS_MAX)
        return -E2BIG;
    struct range_guest *g = calloc(total ? total : 1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < spec->n_scenarios; i++) {
        const struct range_scenario *sc = &spec->scenarios[i];
        for (size_t r = 0; r < sc->n_roles; r++) {
            const struct range_role *role = &sc->roles[r];
            for (unsigned idx = 1; idx <= role->count; idx++, k++) {
                int rc = range_guest_name(g[k].name, spec, sc, role, idx);
                if (rc) {
                    free(g);
                    return rc;
                }
                g[k].scenario = sc;
                g[k].role = role;
                g[k].index = idx;
            }
        }
    }
    *out = g;
    *n = total;
    return 0;
}
