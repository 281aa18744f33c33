/* herdd configuration: YAML (libyaml) read into a JSON tree (jansson), then
 * read through the tables of keys at the end (config_keys.h). Unknown keys
 * are errors. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config_keys.h"

int hd_fail(struct hd_err *err, int status, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->status = status;
    va_start(ap, fmt);
    herd_err_vset(&err->lib, 0, field, fmt, ap);
    va_end(ap);
    return -1;
}

int hd_fail_lib(struct hd_err *err, int status, int rc, const char *field)
{
    if (!err)
        return -1;
    err->status = status;
    if (!err->code)
        err->code = rc;
    if (!err->field[0])
        snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    if (!err->msg[0])
        snprintf(err->msg, sizeof(err->msg), "%s", strerror(-rc));
    return -1;
}

bool hd_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > HD_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

int hd_check_fields(json_t *body, const char *const known[], struct hd_err *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(body, key, v) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= !strcmp(known[i], key);
        if (!ok)
            return hd_fail(err, 400, key, "unknown field '%s'", key);
    }
    return 0;
}

int hd_body_name(json_t *body, const char *const known[], const char **name,
                 struct hd_err *err)
{
    json_t *v;

    if (!json_is_object(body))
        return hd_fail(err, 400, "", "a JSON object is expected");
    if (hd_check_fields(body, known, err) < 0)
        return -1;
    v = json_object_get(body, "name");
    if (!v)
        return hd_fail(err, 400, "name", "name is required");
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        !hd_name_ok(json_string_value(v)))
        return hd_fail(err, 400, "name",
                       "name must be 1-%d characters from [A-Za-z0-9_.-], starting with a "
                       "letter or digit", HD_NAME_MAX);
    *name = json_string_value(v);
    return 0;
}

/* ---- YAML -> JSON --------------------------------------------------------- */

#define YJ_MAX_NODES 200000
#define YJ_MAX_DEPTH 64

static json_t *yj_scalar(yaml_node_t *node, struct hd_err *err)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(s, len);
    if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    /* integers: [-+]?[0-9]+ */
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool digits = i < len;
    for (size_t j = i; j < len; j++)
        if (!isdigit((unsigned char)s[j]))
            digits = false;
    if (digits) {
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE || *end) {
            hd_fail(err, 400, "", "line %zu column %zu: number %s is too large",
                    node->start_mark.line + 1, node->start_mark.column + 1, s);
            return NULL;
        }
        return json_integer(v);
    }
    /* floats: digits with one '.' or an exponent */
    if (len < 64 && (isdigit((unsigned char)s[i]) || s[i] == '.')) {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (!*end && end != s && strpbrk(s, ".eE") && !strpbrk(s, "xXpP")) {
            if (errno == ERANGE) {
                hd_fail(err, 400, "", "line %zu column %zu: number %s is out of range",
                        node->start_mark.line + 1, node->start_mark.column + 1, s);
                return NULL;
            }
            return json_real(d);
        }
    }
    return json_stringn(s, len);
}

static json_t *yj_node(yaml_document_t *doc, yaml_node_t *node, int depth,
                       size_t *count, struct hd_err *err)
{
    if (!node) {
        hd_fail(err, 400, "", "YAML: dangling node");
        return NULL;
    }
    if (++*count > YJ_MAX_NODES || depth > YJ_MAX_DEPTH) {
        hd_fail(err, 400, "", "YAML: document too large or too deep (aliases?)");
        return NULL;
    }
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return yj_scalar(node, err);
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            json_t *v = yj_node(doc, yaml_document_get_node(doc, *it), depth + 1, count, err);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                hd_fail(err, 400, "", "line %zu column %zu: mapping keys must be scalars",
                        node->start_mark.line + 1, node->start_mark.column + 1);
                json_decref(o);
                return NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            if (strlen(key) != k->data.scalar.length) {
                hd_fail(err, 400, "", "line %zu: NUL byte in a key", k->start_mark.line + 1);
                json_decref(o);
                return NULL;
            }
            if (json_object_get(o, key)) {
                hd_fail(err, 400, key, "line %zu column %zu: duplicate key '%s'",
                        k->start_mark.line + 1, k->start_mark.column + 1, key);
                json_decref(o);
                return NULL;
            }
            json_t *v = yj_node(doc, yaml_document_get_node(doc, p->value), depth + 1, count,
                                err);
            if (!v) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, key, v);
        }
        return o;
    }
    default:
        hd_fail(err, 400, "", "YAML: empty node");
        return NULL;
    }
}

json_t *hd_yaml_to_json(const char *text, size_t len, struct hd_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    json_t *out = NULL;
    size_t count = 0;

    if (!yaml_parser_initialize(&parser)) {
        hd_fail(err, 500, "", "YAML: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        hd_fail(err, 400, "", "YAML: line %zu column %zu: %s%s%s",
                parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                parser.problem ? parser.problem : "syntax error",
                parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        hd_fail(err, 400, "", "YAML: the document is empty");
    } else {
        out = yj_node(&doc, root, 0, &count, err);
        if (out) {
            yaml_document_t doc2;
            if (!yaml_parser_load(&parser, &doc2)) {
                hd_fail(err, 400, "", "YAML: line %zu: %s", parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "syntax error");
                json_decref(out);
                out = NULL;
            } else {
                if (yaml_document_get_root_node(&doc2)) {
                    hd_fail(err, 400, "", "YAML: only one document is allowed");
                    json_decref(out);
                    out = NULL;
                }
                yaml_document_delete(&doc2);
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}

/* ---- sizes ------------------------------------------------------------------ */

int hd_parse_size(json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -1;
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
        end += strlen(end);
    if (*end)
        return -1;
    if (shift && n > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)n << shift;
    return 0;
}

/* ---- config: the keys' readers ---------------------------------------------- */

#define AT(cfg, k, type) ((type *)((char *)(cfg) + (k)->off))

/* The plain types' readers: V (not NULL) into the key's place; false when
 * V is not of the type or out of bounds. */
static bool read_string(const struct hd_key *k, json_t *v, struct hd_config *cfg)
{
    char **dst = AT(cfg, k, char *);

    free(*dst);
    *dst = strdup(json_is_string(v) ? json_string_value(v) : k->def_s);
    return k->type != HD_KEY_PATH || (*dst)[0] == '/';
}

static bool read_bool(const struct hd_key *k, json_t *v, struct hd_config *cfg)
{
    *AT(cfg, k, bool) = json_is_true(v);
    return true;
}

/* V is a number (an integer where INTEGER) in [min, max] */
static bool number_in(const struct hd_key *k, json_t *v, bool integer)
{
    return (integer ? json_is_integer(v) : json_is_number(v)) &&
           json_number_value(v) >= k->min && json_number_value(v) <= k->max;
}

static bool read_count(const struct hd_key *k, json_t *v, struct hd_config *cfg)
{
    if (!number_in(k, v, true))
        return false;
    *AT(cfg, k, unsigned) = (unsigned)json_integer_value(v);
    return true;
}

static bool read_size(const struct hd_key *k, json_t *v, struct hd_config *cfg)
{
    uint64_t n;

    if (hd_parse_size(v, &n) < 0 || n < k->min || n > k->max)
        return false;
    *AT(cfg, k, uint64_t) = n;
    return true;
}

static bool read_seconds(const struct hd_key *k, json_t *v, struct hd_config *cfg)
{
    if (!number_in(k, v, false))
        return false;
    *AT(cfg, k, unsigned) = (unsigned)(json_number_value(v) * 1000);
    return true;
}

static bool read_double(const struct hd_key *k, json_t *v, struct hd_config *cfg)
{
    if (!json_is_number(v) || !(json_number_value(v) > k->min) || json_number_value(v) > k->max)
        return false;
    *AT(cfg, k, double) = json_number_value(v);
    return true;
}

static bool (*const readers[])(const struct hd_key *, json_t *, struct hd_config *) = {
    [HD_KEY_STRING] = read_string, [HD_KEY_PATH] = read_string, [HD_KEY_BOOL] = read_bool,
    [HD_KEY_COUNT] = read_count,   [HD_KEY_SIZE] = read_size,   [HD_KEY_SECONDS] = read_seconds,
    [HD_KEY_DOUBLE] = read_double,
};

/* a plain key's default into its place */
static void store_default(const struct hd_key *k, struct hd_config *cfg)
{
    switch (k->type) {
    case HD_KEY_STRING:
    case HD_KEY_PATH:
        free(*AT(cfg, k, char *));
        *AT(cfg, k, char *) = strdup(k->def_s);
        break;
    case HD_KEY_BOOL:
        *AT(cfg, k, bool) = k->def;
        break;
    case HD_KEY_COUNT:
        *AT(cfg, k, unsigned) = (unsigned)k->def;
        break;
    case HD_KEY_SECONDS:
        *AT(cfg, k, unsigned) = (unsigned)k->def * 1000;
        break;
    case HD_KEY_SIZE:
        *AT(cfg, k, uint64_t) = (uint64_t)k->def;
        break;
    case HD_KEY_DOUBLE:
        *AT(cfg, k, double) = k->def;
        break;
    default: /* sections and custom keys have none here */
        break;
    }
}

/* "64K", "1G": N in the largest unit that divides it */
static const char *size_text(uint64_t n, char buf[32])
{
    static const char *const unit[] = {"", "K", "M", "G", "T"};
    int u = 0;

    while (u < 4 && n && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    snprintf(buf, 32, "%" PRIu64 "%s", n, unit[u]);
    return buf;
}

/* A bad value of a plain top-level key: the message says what is expected. */
static int key_fail(const struct hd_key *k, struct hd_key_ctx *c)
{
    char lo[32], hi[32];

    switch (k->type) {
    case HD_KEY_PATH:
        return hd_fail(c->err, 400, k->name, "%s: %s must be an absolute path", c->path, k->name);
    case HD_KEY_SECONDS:
        return hd_fail(c->err, 400, k->name, "%s: %s: seconds, %.0f-%.0f", c->path, k->name,
                       k->min, k->max);
    case HD_KEY_SIZE:
        return hd_fail(c->err, 400, k->name, "%s: %s: a size from %s to %s", c->path, k->name,
                       size_text((uint64_t)k->min, lo), size_text((uint64_t)k->max, hi));
    case HD_KEY_DOUBLE:
        return hd_fail(c->err, 400, k->name, "%s: %s: a number in (%g, %g]", c->path, k->name,
                       k->min, k->max);
    default:
        return hd_fail(c->err, 400, k->name, "%s: %s: %.0f-%.0f", c->path, k->name, k->min,
                       k->max);
    }
}

static const struct hd_key *find_key(const struct hd_key *keys, const char *name)
{
    for (const struct hd_key *k = keys; k->name; k++)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

/* A section's error (struct hd_section): KEY NULL when OBJ is no mapping. */
static int section_fail(const struct hd_key *sk, const char *key, struct hd_key_ctx *c)
{
    const struct hd_section *s = sk->section;

    if (!s->key_in_msg)
        return hd_fail(c->err, 400, sk->name, "%s: %s: %s", c->path, sk->name, s->help);
    if (!key)
        return hd_fail(c->err, 400, sk->name, "%s: %s must be a mapping", c->path, sk->name);
    return hd_fail(c->err, 400, sk->name, "%s: %s.%s: %s", c->path, sk->name, key, s->help);
}

/* Section SK from OBJ (NULL: absent): every key's default, then the keys
 * in the file's order, then the section's check. */
static int read_section(const struct hd_key *sk, json_t *obj, struct hd_key_ctx *c)
{
    const struct hd_section *s = sk->section;
    const char *key;
    json_t *v;

    for (const struct hd_key *k = s->keys; k->name; k++)
        store_default(k, c->cfg);
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return section_fail(sk, NULL, c);
    json_object_foreach(obj, key, v) {
        const struct hd_key *k = find_key(s->keys, key);
        if (!k || !readers[k->type](k, v, c->cfg))
            return section_fail(sk, key, c);
    }
    if (s->check && !s->check(c->cfg))
        return hd_fail(c->err, 400, sk->name, "%s: %s: %s", c->path, sk->name, s->help);
    return 0;
}

static int read_key(const struct hd_key *k, json_t *v, struct hd_key_ctx *c)
{
    if (k->type == HD_KEY_SECTION)
        return read_section(k, v, c);
    if (k->type == HD_KEY_CUSTOM)
        return k->parse(v, c);
    store_default(k, c->cfg);
    return !v || readers[k->type](k, v, c->cfg) ? 0 : key_fail(k, c);
}

/* The top level: unknown keys first, then every row in the table's order. */
static int read_top(json_t *root, struct hd_key_ctx *c)
{
    const char *key;
    json_t *v;

    json_object_foreach(root, key, v) {
        if (!find_key(hd_config_keys, key))
            return hd_fail(c->err, 400, key, "%s: unknown key '%s'", c->path, key);
    }
    for (const struct hd_key *k = hd_config_keys; k->name; k++)
        if (read_key(k, json_object_get(root, k->name), c) < 0)
            return -1;
    return 0;
}

/* ---- config: the custom keys ------------------------------------------------ */

static int parse_node(json_t *v, struct hd_key_ctx *c)
{
    char host[256] = "node";

    gethostname(host, sizeof(host) - 1);
    c->cfg->node_name = strdup(json_is_string(v) ? json_string_value(v) : host);
    return 0;
}

/* after state_dir: its default is STATE_DIR/herdd.sock */
static int parse_socket(json_t *v, struct hd_key_ctx *c)
{
    struct hd_config *cfg = c->cfg;
    const char *s = json_is_string(v) ? json_string_value(v) : "";

    if (s[0])
        cfg->socket_path = strdup(s);
    else if (asprintf(&cfg->socket_path, "%s/herdd.sock", cfg->state_dir) < 0)
        return hd_fail(c->err, 500, "socket", "%s: out of memory", c->path);
    if (strlen(cfg->socket_path) >= 108)
        return hd_fail(c->err, 400, "socket", "%s: socket path is longer than 107 bytes",
                       c->path);
    return 0;
}

/* roles -> bridges: handed to netdev as its JSON config */
static int parse_net_roles(json_t *v, struct hd_key_ctx *c)
{
    struct hd_config *cfg = c->cfg;
    struct herd_err nerr = {0};
    json_t *wrap;
    char *text;
    int rc;

    cfg->roles_json = v ? json_incref(v) : json_object();
    if (!json_object_size(cfg->roles_json))
        return 0;
    wrap = json_pack("{sO}", "roles", cfg->roles_json);
    text = json_dumps(wrap, 0);
    rc = netdev_config_parse_json(text, &cfg->net, &nerr);
    free(text);
    json_decref(wrap);
    return rc < 0 ? hd_fail(c->err, 400, nerr.field, "%s: %s", c->path, nerr.msg) : 0;
}

static const char *const role_names[] = {"sysadmin", "secadmin", "auditor"};

/* a role name or a list of them -> HD_ROLE_* bits */
static int parse_role_names(json_t *v, const char *field, unsigned *out, struct hd_err *err)
{
    json_t *items = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    size_t i;
    json_t *it;
    int rc = 0;

    *out = 0;
    if (!json_is_array(items))
        rc = hd_fail(err, 400, field, "a role name or a list of role names is expected");
    json_array_foreach(items, i, it) {
        const char *n = json_string_value(it);
        unsigned bit = 0;
        for (unsigned r = 0; n && r < 3; r++)
            if (!strcmp(n, role_names[r]))
                bit = 1u << r;
        if (!bit) {
            rc = hd_fail(err, 400, field, "unknown role '%s' (sysadmin, secadmin, auditor)",
                         n ? n : "(not a string)");
            break;
        }
        *out |= bit;
    }
    json_decref(items);
    return rc;
}

/* a users key: a uid or a user name */
static int user_uid(const char *key, const char *field, uid_t *uid, struct hd_key_ctx *c)
{
    char *end;
    struct passwd *pw;

    errno = 0;
    unsigned long u = strtoul(key, &end, 10);
    if (*key && !*end && !errno && u < UINT32_MAX) {
        *uid = (uid_t)u;
        return 0;
    }
    pw = getpwnam(key);
    if (!pw)
        return hd_fail(c->err, 400, field, "%s: no user '%s'", c->path, key);
    *uid = pw->pw_uid;
    return 0;
}

/* users: {uid-or-name: role | [roles]} */
static int parse_users(json_t *v, struct hd_key_ctx *c)
{
    struct hd_config *cfg = c->cfg;
    const char *key;
    json_t *rv;

    if (!v)
        return 0;
    if (!json_is_object(v))
        return hd_fail(c->err, 400, "users", "%s: users must map uids (or user names) to roles",
                       c->path);
    cfg->users = calloc(json_object_size(v) + 1, sizeof(*cfg->users));
    json_object_foreach(v, key, rv) {
        struct hd_user *u = &cfg->users[cfg->n_users];
        char field[96];
        snprintf(field, sizeof(field), "users.%s", key);
        if (user_uid(key, field, &u->uid, c) < 0 ||
            parse_role_names(rv, field, &u->roles, c->err) < 0)
            return -1;
        cfg->root_listed |= u->uid == 0;
        cfg->n_users++;
    }
    return 0;
}

static int parse_cgroup_root(json_t *v, struct hd_key_ctx *c)
{
    const char *s = v ? json_string_value(v) : "/sys/fs/cgroup";

    if (!s || (s[0] != '/' && strcmp(s, "off")))
        return hd_fail(c->err, 400, "cgroup_root", "%s: cgroup_root: an absolute path (a "
                       "cgroup v2 mount) or off", c->path);
    c->cfg->cgroup_root = strdup(strcmp(s, "off") ? s : "");
    return 0;
}

static int parse_wipe_overlays(json_t *v, struct hd_key_ctx *c)
{
    const char *w = v ? json_string_value(v) : "discard";

    if (!w || (strcmp(w, "discard") && strcmp(w, "zero")))
        return hd_fail(c->err, 400, "wipe_overlays", "%s: wipe_overlays: discard or zero",
                       c->path);
    c->cfg->wipe_zero = !strcmp(w, "zero");
    return 0;
}

/* LIST's strings into *OUT (NULL-terminated) and *N; each must pass OK,
 * else "PATH: KEY: 'STRING' WHAT". */
static int read_strings(json_t *list, const char *key, bool (*ok)(const char *),
                        const char *what, char ***out, size_t *n, struct hd_key_ctx *c)
{
    size_t i;
    json_t *x;

    *out = calloc(json_array_size(list) + 1, sizeof(char *));
    json_array_foreach(list, i, x) {
        const char *s = json_string_value(x);
        if (!ok(s))
            return hd_fail(c->err, 400, key, "%s: %s: '%s' %s", c->path, key, s ? s : "?",
                           what);
        (*out)[(*n)++] = strdup(s);
    }
    return 0;
}

static bool env_name_ok(const char *s)
{
    bool ok = s && *s && strlen(s) < 64;

    for (const char *p = s; ok && *p; p++)
        ok = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
    return ok;
}

static bool abs_path_ok(const char *s)
{
    return s && s[0] == '/' && strlen(s) < 1024;
}

/* vmm_env: names of variables passed from herdd's environment to herd-vmm
 * (test hooks, sanitizer options); nothing else is passed. */
static int parse_vmm_env(json_t *v, struct hd_key_ctx *c)
{
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > 32)
        return hd_fail(c->err, 400, "vmm_env", "%s: vmm_env: a list of variable names",
                       c->path);
    return read_strings(v, "vmm_env", env_name_ok, "is not a variable name ([A-Z0-9_])",
                        &c->cfg->vmm_env, &c->cfg->n_vmm_env, c);
}

/* image_dirs: a path or a list of 1-16 absolute paths (default HD_IMAGE_DIR) */
static int parse_image_dirs(json_t *v, struct hd_key_ctx *c)
{
    json_t *list = !v                 ? json_pack("[s]", HD_IMAGE_DIR)
                   : json_is_string(v) ? json_pack("[O]", v)
                                       : json_incref(v);
    int rc;

    if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > 16)
        rc = hd_fail(c->err, 400, "image_dirs", "%s: image_dirs: 1-16 absolute directory paths",
                     c->path);
    else
        rc = read_strings(list, "image_dirs", abs_path_ok, "is not an absolute path",
                          &c->cfg->image_dirs, &c->cfg->n_image_dirs, c);
    json_decref(list);
    return rc;
}

/* ---- cluster: etcd endpoints, TLS files, underlay address, lease TTL -------- */

#define HD_LEASE_TTL_MIN 2      /* etcd's own minimum with its default timing */
#define HD_LEASE_TTL_MAX 300
#define HD_LEASE_TTL_DEF 10

static bool endpoint_ok(const char *s)
{
    return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) && strlen(s) > 8 &&
           strlen(s) < 256 && !strchr(s, ' ');
}

/* cluster.endpoints: a URL or a list of 1-16 */
static int cluster_endpoints(json_t *v, struct hd_key_ctx *c)
{
    json_t *list = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    int rc;

    if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > 16)
        rc = hd_fail(c->err, 400, "cluster", "%s: cluster.endpoints: 1-16 etcd client URLs "
                     "(http://HOST:PORT or https://HOST:PORT)", c->path);
    else
        rc = read_strings(list, "cluster", endpoint_ok,
                          "is not an etcd client URL (cluster.endpoints: http:// or https://)",
                          &c->cfg->etcd, &c->cfg->n_etcd, c);
    json_decref(list);
    return rc;
}

/* cluster.ca, .cert, .key: absolute paths */
static int cluster_file(json_t *v, const char *key, char **out, struct hd_key_ctx *c)
{
    const char *s = json_string_value(v);

    if (!abs_path_ok(s))
        return hd_fail(c->err, 400, "cluster", "%s: cluster.%s must be an absolute path",
                       c->path, key);
    *out = strdup(s);
    return 0;
}

static int cluster_address(json_t *v, struct hd_key_ctx *c)
{
    const char *s = json_string_value(v);
    unsigned char buf[16];

    if (!s || (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1))
        return hd_fail(c->err, 400, "cluster", "%s: cluster.address: the node's underlay IPv4 "
                       "or IPv6 address (e.g. 10.0.0.5)", c->path);
    c->cfg->cluster_address = strdup(s);
    return 0;
}

static int cluster_ttl(json_t *v, struct hd_key_ctx *c)
{
    json_int_t n = json_integer_value(v);

    if (!json_is_integer(v) || n < HD_LEASE_TTL_MIN || n > HD_LEASE_TTL_MAX)
        return hd_fail(c->err, 400, "cluster", "%s: cluster.lease_ttl: seconds, %d-%d", c->path,
                       HD_LEASE_TTL_MIN, HD_LEASE_TTL_MAX);
    c->cfg->lease_ttl = (unsigned)n;
    return 0;
}

/* cluster.image_port: where the node serves its templates' files to the
 * other nodes (docs/cluster.md "Parent images"); 0: it serves none */
static int cluster_image_port(json_t *v, struct hd_key_ctx *c)
{
    json_int_t n = json_integer_value(v);

    if (!json_is_integer(v) || n < 0 || n > 65535)
        return hd_fail(c->err, 400, "cluster", "%s: cluster.image_port: a TCP port, 0-65535 "
                       "(0: serve no template files)", c->path);
    c->cfg->image_port = (unsigned)n;
    return 0;
}

/* cluster.fetch_rate: bytes per second a copy is fetched at, at most
 * (0: no limit) */
static int cluster_fetch_rate(json_t *v, struct hd_key_ctx *c)
{
    uint64_t n;

    if (hd_parse_size(v, &n) < 0 || n > (1ULL << 40))
        return hd_fail(c->err, 400, "cluster", "%s: cluster.fetch_rate: bytes per second "
                       "(e.g. 100M; 0: no limit)", c->path);
    c->cfg->fetch_rate = n;
    return 0;
}

static int cluster_key(const char *key, json_t *v, struct hd_key_ctx *c)
{
    struct hd_config *cfg = c->cfg;

    if (!strcmp(key, "endpoints"))
        return cluster_endpoints(v, c);
    if (!strcmp(key, "ca"))
        return cluster_file(v, key, &cfg->etcd_ca, c);
    if (!strcmp(key, "cert"))
        return cluster_file(v, key, &cfg->etcd_cert, c);
    if (!strcmp(key, "key"))
        return cluster_file(v, key, &cfg->etcd_key, c);
    if (!strcmp(key, "address"))
        return cluster_address(v, c);
    if (!strcmp(key, "lease_ttl"))
        return cluster_ttl(v, c);
    if (!strcmp(key, "image_port"))
        return cluster_image_port(v, c);
    if (!strcmp(key, "fetch_rate"))
        return cluster_fetch_rate(v, c);
    return hd_fail(c->err, 400, "cluster", "%s: cluster.%s: unknown key (endpoints, ca, cert, "
                   "key, address, lease_ttl, image_port, fetch_rate)", c->path, key);
}

/* After every key: what a cluster needs, and a node name fit for a key. */
static int cluster_complete(struct hd_key_ctx *c)
{
    const struct hd_config *cfg = c->cfg;

    if (!cfg->n_etcd)
        return hd_fail(c->err, 400, "cluster", "%s: cluster.endpoints: at least one etcd "
                       "client URL is needed", c->path);
    if (!cfg->cluster_address)
        return hd_fail(c->err, 400, "cluster", "%s: cluster.address: the node's underlay "
                       "address is needed", c->path);
    if (!cfg->etcd_cert != !cfg->etcd_key)
        return hd_fail(c->err, 400, "cluster", "%s: cluster.cert and cluster.key go together",
                       c->path);
    if (!hd_name_ok(cfg->node_name))
        return hd_fail(c->err, 400, "node", "%s: node: '%s' cannot name a node of a cluster "
                       "(letters, digits, '-', '_', '.', at most %d)", c->path, cfg->node_name,
                       HD_NAME_MAX);
    return 0;
}

/* cluster: {endpoints, ca?, cert?, key?, address, lease_ttl?} (absent: no
 * cluster, herdd stands alone) */
static int parse_cluster(json_t *v, struct hd_key_ctx *c)
{
    const char *key;
    json_t *kv;

    c->cfg->lease_ttl = HD_LEASE_TTL_DEF;
    c->cfg->image_port = HD_IMAGE_PORT_DEF;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return hd_fail(c->err, 400, "cluster", "%s: cluster must be a mapping (endpoints, "
                       "address, ...)", c->path);
    json_object_foreach(v, key, kv) {
        if (cluster_key(key, kv, c) < 0)
            return -1;
    }
    return cluster_complete(c);
}

/* ---- config: the keys -------------------------------------------------------- */

#define OFF(field) offsetof(struct hd_config, field)

static const struct hd_key capacity_keys[] = {
    /* vCPUs per host CPU */
    {"cpu_overcommit", HD_KEY_DOUBLE, OFF(cpu_overcommit), .min = 0, .max = 1000, .def = 4.0},
    /* share of host RAM the guests may hold */
    {"memory_fraction", HD_KEY_DOUBLE, OFF(mem_fraction), .min = 0, .max = 1, .def = 0.9},
    /* committed guest memory per byte the guests may hold (1: none) */
    {"memory_overcommit", HD_KEY_DOUBLE, OFF(mem_overcommit), .min = 0, .max = 100, .def = 1.0},
    {.name = NULL},
};

static const struct hd_section capacity = {
    capacity_keys,
    "expected cpu_overcommit (0-1000], memory_fraction (0-1] or memory_overcommit (0-100]",
    .key_in_msg = true,
};

static const struct hd_key storage_keys[] = {
    /* free bytes in the state dir under which alarm.storage is raised */
    {"alarm_free", HD_KEY_SIZE, OFF(storage_alarm), .min = 0, .max = INFINITY, .def = 2ull << 30},
    /* free bytes under which new overlays are refused */
    {"floor_free", HD_KEY_SIZE, OFF(storage_floor), .min = 0, .max = INFINITY, .def = 256 << 20},
    {.name = NULL},
};

static const struct hd_section storage = {
    storage_keys, "expected alarm_free or floor_free with a size (e.g. 2G)", .key_in_msg = true,
};

/* one uid (= gid) per guest, no passwd entry */
static const struct hd_key guest_uid_keys[] = {
    {"first", HD_KEY_COUNT, OFF(uid_first), .min = 1000, .max = 0x7ffffffe, .def = 200000},
    {"count", HD_KEY_COUNT, OFF(uid_count), .min = 1, .max = 1000000, .def = 10000},
    {.name = NULL},
};

static bool guest_uids_below_2_31(const struct hd_config *cfg)
{
    return (uint64_t)cfg->uid_first + cfg->uid_count <= 0x7fffffffu;
}

static const struct hd_section guest_uids = {
    guest_uid_keys, "expected {first: N, count: M} with first >= 1000, 1 <= count <= 1000000, "
    "first + count < 2^31", .check = guest_uids_below_2_31,
};

/* In the order of the checks (docs/herdd.md "Configuration" lists them). */
const struct hd_key hd_config_keys[] = {
    {"node", HD_KEY_CUSTOM, .parse = parse_node},           /* default: the host name */
    {"state_dir", HD_KEY_PATH, OFF(state_dir), .def_s = "/var/lib/herd"},
    {"socket", HD_KEY_CUSTOM, .parse = parse_socket},       /* STATE_DIR/herdd.sock */
    {"vmm", HD_KEY_STRING, OFF(vmm_path), .def_s = "/usr/local/bin/herd-vmm"},
    /* create missing role bridges at start */
    {"network_setup", HD_KEY_BOOL, OFF(net_setup), .def = false},
    {"roles", HD_KEY_CUSTOM, .parse = parse_net_roles},     /* netdev's configuration */
    {"users", HD_KEY_CUSTOM, .parse = parse_users},
    {"capacity", HD_KEY_SECTION, .section = &capacity},
    {"storage", HD_KEY_SECTION, .section = &storage},
    /* graceful stop before SIGKILL */
    {"stop_timeout", HD_KEY_SECONDS, OFF(stop_timeout_ms), .min = 0, .max = 3600, .def = 10},
    /* how long a guest may take to power off */
    {"shutdown_timeout", HD_KEY_SECONDS, OFF(shutdown_timeout_ms), .min = 1, .max = 3600,
     .def = 120},
    /* range up waits this long for guests to be ready */
    {"ready_timeout", HD_KEY_SECONDS, OFF(ready_timeout_ms), .min = 1, .max = 86400,
     .def = 120},
    {"range_parallel", HD_KEY_COUNT, OFF(range_parallel), .min = 1, .max = 256, .def = 8},
    /* console.log's cap (herdd writes it; one older console.log.1 of at most
     * the same size is kept) */
    {"console_log_max", HD_KEY_SIZE, OFF(console_log_max), .min = HD_CONSOLE_LOG_MIN,
     .max = HD_CONSOLE_LOG_MAX, .def = 4 << 20},
    /* open API connections one uid may hold */
    {"api_connections_per_uid", HD_KEY_COUNT, OFF(api_conns_per_uid), .min = 1,
     .max = HD_API_CONNECTIONS, .def = 256},
    {"guest_uids", HD_KEY_SECTION, .section = &guest_uids},
    /* the cgroup v2 mount, or off */
    {"cgroup_root", HD_KEY_CUSTOM, .parse = parse_cgroup_root},
    /* pids.max of each guest's group (herd-vmm's threads: main, vCPUs, one
     * per device, control; clone itself is filtered) */
    {"cgroup_pids_max", HD_KEY_COUNT, OFF(pids_max), .min = 4, .max = 65536, .def = 64},
    {"wipe_overlays", HD_KEY_CUSTOM, .parse = parse_wipe_overlays}, /* discard or zero */
    {"vmm_env", HD_KEY_CUSTOM, .parse = parse_vmm_env},
    {"image_dirs", HD_KEY_CUSTOM, .parse = parse_image_dirs},
    /* etcd and this node's place in the cluster (docs/cluster.md) */
    {"cluster", HD_KEY_CUSTOM, .parse = parse_cluster},
    {.name = NULL},
};

/* The file's text (its first 64 KiB) as JSON: a mapping, or NULL and err. */
static json_t *load_mapping(const char *path, struct hd_err *err)
{
    FILE *f = fopen(path, "r");
    char buf[1 << 16];
    size_t n;
    json_t *root;

    if (!f) {
        hd_fail(err, 500, "", "%s: %s", path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    root = hd_yaml_to_json(buf, n, err);
    if (root && !json_is_object(root)) {
        json_decref(root);
        hd_fail(err, 400, "", "%s: a mapping is expected at the top", path);
        return NULL;
    }
    return root;
}

int hd_config_load(const char *path, struct hd_config *cfg, struct hd_err *err)
{
    struct hd_key_ctx c = {path, cfg, err};
    json_t *root;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    root = load_mapping(path, err);
    if (!root)
        return -1;
    cfg->path = strdup(path);
    rc = read_top(root, &c);
    json_decref(root);
    if (rc < 0)
        hd_config_free(cfg);
    return rc;
}

void hd_config_free(struct hd_config *cfg)
{
    free(cfg->path);
    free(cfg->node_name);
    free(cfg->state_dir);
    free(cfg->cgroup_root);
    for (size_t i = 0; i < cfg->n_vmm_env; i++)
        free(cfg->vmm_env[i]);
    free(cfg->vmm_env);
    for (size_t i = 0; i < cfg->n_image_dirs; i++)
        free(cfg->image_dirs[i]);
    free(cfg->image_dirs);
    for (size_t i = 0; i < cfg->n_etcd; i++)
        free(cfg->etcd[i]);
    free(cfg->etcd);
    free(cfg->etcd_ca);
    free(cfg->etcd_cert);
    free(cfg->etcd_key);
    free(cfg->cluster_address);
    free(cfg->socket_path);
    free(cfg->vmm_path);
    json_decref(cfg->roles_json);
    if (cfg->net.bridges)
        netdev_config_free(&cfg->net);
    free(cfg->users);
    memset(cfg, 0, sizeof(*cfg));
}

unsigned hd_roles_of(const struct hd_config *cfg, uid_t uid)
{
    for (size_t i = 0; i < cfg->n_users; i++)
        if (cfg->users[i].uid == uid)
            return cfg->users[i].roles;
    if (uid == 0 && !cfg->root_listed)
        return HD_ROLE_SYSADMIN | HD_ROLE_SECADMIN | HD_ROLE_AUDITOR;
    return 0;
}

int hd_segment_bridge(const struct hd_config *cfg, const char *range, enum netdev_role r,
                      const char *seg, char out[IFNAMSIZ])
{
    const struct netdev_bridge_cfg *bc = netdev_config_find(&cfg->net, r, seg ? seg : "");
    if (bc) {
        snprintf(out, IFNAMSIZ, "%s", bc->name);
        return 0;
    }
    if (!seg || !seg[0])
        return -ENOENT;
    if (range && range[0])
        return netdev_range_segment_bridge_name(out, r, range, seg);
    return netdev_segment_bridge_name(out, r, seg);
}

const char *hd_bridge_of(const struct hd_config *cfg, const char *role)
{
    enum netdev_role r;
    const struct netdev_bridge_cfg *b;

    if (!cfg->net.bridges || netdev_role_parse(role, &r) < 0)
        return NULL;
    b = netdev_config_find(&cfg->net, r, "");
    if (!b)
        b = netdev_config_find(&cfg->net, r, NULL);
    return b ? b->name : NULL;
}
