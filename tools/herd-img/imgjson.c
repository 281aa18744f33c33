/*
 * herd-img "json:{...}" image names, as qemu takes them: a JSON object
 * (QEMU's dialect: strings in single or double quotes) whose nested objects
 * flatten to the dotted keys of --image-opts ({"file": {"filename": "x"}}
 * is file.filename=x, an array's values KEY.0, KEY.1, ...), read into struct
 * img_opts; null other than "backing": null is a key no option of ours takes.
 * Input is hostile: bounded nesting, every error a message, no crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

#define JSON_MAX_DEPTH 8
#define JSON_MAX_KEY 256

struct jp {
    const char *s;
    struct img_opts *o;
    struct img_strs *store;
    const char *err;
};

static void ws(struct jp *p)
{
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
        p->s++;
}

static char *keep(struct jp *p, char *str)
{
    struct img_strs *st = p->store;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        char **v = realloc(st->v, cap * sizeof(*v));
        if (!v) {
            free(str);
            return NULL;
        }
        st->v = v;
        st->cap = cap;
    }
    return st->v[st->n++] = str;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One escape after the backslash; the byte it stands for, or -1. */
static int escape(struct jp *p)
{
    char c = *p->s++;
    switch (c) {
    case '"': case '\'': case '\\': case '/': return c;
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': {
        int v = 0;
        for (int i = 0; i < 4; i++) {
            int h = hexval(*p->s);
            if (h < 0)
                return -1;
            v = v * 16 + h;
            p->s++;
        }
        return v > 0 && v < 0x80 ? v : -1; /* file names and options: ASCII */
    }
    default: return -1;
    }
}

/* A quoted string at p->s, unescaped (kept in the store). */
static char *string(struct jp *p)
{
    char q = *p->s;
    if (q != '"' && q != '\'') {
        p->err = "expected a string";
        return NULL;
    }
    const char *start = ++p->s;
    size_t cap = strlen(start) + 1;
    char *out = malloc(cap), *w = out;
    if (!out) {
        p->err = "out of memory";
        return NULL;
    }
    while (*p->s && *p->s != q && (size_t)(w - out) < cap - 1) {
        int c = (unsigned char)*p->s++;
        if (c == '\\' && (c = escape(p)) < 0)
            break;
        *w++ = (char)c;
    }
    if (*p->s != q) {
        free(out);
        p->err = "bad string";
        return NULL;
    }
    p->s++;
    *w = 0;
    if (!keep(p, out))
        p->err = "out of memory";
    return p->s && !p->err ? out : NULL;
}

/* A number, true, false or null, as the text the options read. */
static char *scalar(struct jp *p, bool *is_null)
{
    static const struct { const char *word, *value; } words[] = {
        {"true", "on"}, {"false", "off"}, {"null", ""},
    };
    *is_null = false;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i].word);
        if (!strncmp(p->s, words[i].word, n)) {
            p->s += n;
            *is_null = i == 2;
            char *v = strdup(words[i].value);
            return v ? keep(p, v) : NULL;
        }
    }
    size_t n = strspn(p->s, "+-0123456789.eE");
    if (n == 0) {
        p->err = "unexpected character";
        return NULL;
    }
    char *v = strndup(p->s, n);
    p->s += n;
    return v ? keep(p, v) : NULL;
}

static int value(struct jp *p, const char *key, int depth);

/* An array: its values are keys KEY.0, KEY.1, ... as qemu flattens them
 * (none of them an option of ours). */
static int array(struct jp *p, const char *key, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        p->err = "nested too deeply";
        return -EINVAL;
    }
    if (!p->o->bad_opt)
        p->o->bad_opt = key;
    p->s++;
    ws(p);
    if (*p->s == ']') {
        p->s++;
        return 0;
    }
    for (unsigned i = 0;; i++) {
        char ik[JSON_MAX_KEY];
        if ((size_t)snprintf(ik, sizeof(ik), "%s.%u", key, i) >= sizeof(ik)) {
            p->err = "key too long";
            return -EINVAL;
        }
        char *k = strdup(ik);
        if (!k || !keep(p, k)) {
            p->err = "out of memory";
            return -EINVAL;
        }
        if (value(p, k, depth + 1) < 0)
            return -EINVAL;
        ws(p);
        if (*p->s == ']') {
            p->s++;
            return 0;
        }
        if (*p->s++ != ',') {
            p->err = "expected ',' or ']'";
            return -EINVAL;
        }
    }
}

static int object(struct jp *p, const char *prefix, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        p->err = "nested too deeply";
        return -EINVAL;
    }
    p->s++; /* '{' */
    ws(p);
    if (*p->s == '}') {
        p->s++;
        return 0;
    }
    for (;;) {
        ws(p);
        char *k = string(p);
        if (!k)
            return -EINVAL;
        ws(p);
        if (*p->s++ != ':') {
            p->err = "expected ':'";
            return -EINVAL;
        }
        char full[JSON_MAX_KEY];
        if ((size_t)snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "", k) >=
            sizeof(full)) {
            p->err = "key too long";
            return -EINVAL;
        }
        char *fk = strdup(full);
        if (!fk || !keep(p, fk)) {
            p->err = "out of memory";
            return -EINVAL;
        }
        ws(p);
        if (value(p, fk, depth) < 0)
            return -EINVAL;
        ws(p);
        if (*p->s == '}') {
            p->s++;
            return 0;
        }
        if (*p->s++ != ',') {
            p->err = "expected ',' or '}'";
            return -EINVAL;
        }
    }
}

static int value(struct jp *p, const char *key, int depth)
{
    ws(p);
    if (*p->s == '{')
        return object(p, key, depth + 1);
    if (*p->s == '[')
        return array(p, key, depth + 1);
    bool is_null;
    char *v = *p->s == '"' || *p->s == '\'' ? (is_null = false, string(p)) : scalar(p, &is_null);
    if (!v)
        return -EINVAL;
    if (is_null && !strcmp(key, "backing"))
        p->o->no_backing = true;
    else if ((is_null || !img_opts_take(p->o, key, v)) && !p->o->bad_opt)
        p->o->bad_opt = key;
    return 0;
}

static int parse(const char *name, struct img_strs *store, struct img_opts *o, char *err,
                 size_t n)
{
    struct jp p = {.s = name + 5, .o = o, .store = store};
    ws(&p);
    if (strncmp(name, "json:", 5) || *p.s != '{') {
        snprintf(err, n, "Could not parse the JSON options: expected an object");
        return -EINVAL;
    }
    int r = object(&p, "", 0);
    if (r == 0) {
        ws(&p);
        if (*p.s)
            p.err = "trailing characters";
    }
    if (p.err) {
        snprintf(err, n, "Could not parse the JSON options: %s", p.err);
        return -EINVAL;
    }
    return 0;
}

int img_opts_json(const char *name, struct img_strs *store, struct img_opts *o, char *err,
                  size_t n)
{
    /* A first pass learns the top driver: a filter's options are its child's. */
    struct img_opts probe = {0};
    int r = parse(name, store, &probe, err, n);
    if (r == 0 && probe.fmt && !strcmp(probe.fmt, "compress"))
        o->filter = "compress";
    if (r == 0)
        r = parse(name, store, o, err, n);
    if (r == 0)
        img_opts_finish(o);
    return r;
}

void img_strs_free(struct img_strs *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->v[i]);
    free(st->v);
    memset(st, 0, sizeof(*st));
}
