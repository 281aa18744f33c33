/* herdd configuration: YAML (libyaml) read into a JSON tree (jansson), then
 * checked key by key. Unknown keys are errors. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "herdd.h"

int hd_fail(struct hd_err *err, int status, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->status = status;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
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

/* ---- config ----------------------------------------------------------------- */

static const char *const role_names[] = {"sysadmin", "secadmin", "auditor"};

static int parse_roles(json_t *v, const char *field, unsigned *out, struct hd_err *err)
{
    json_t *items = v;
    bool own = false;
    *out = 0;
    if (json_is_string(v)) {
        items = json_array();
        json_array_append(items, v);
        own = true;
    }
    if (!json_is_array(items))
        return hd_fail(err, 400, field, "a role name or a list of role names is expected");
    size_t i;
    json_t *it;
    int rc = 0;
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
    if (own)
        json_decref(items);
    return rc;
}

static char *dup_str(json_t *o, const char *key, const char *def)
{
    json_t *v = json_object_get(o, key);
    return strdup(v && json_is_string(v) ? json_string_value(v) : def);
}

/* KEY: a number of seconds in [min, max] (def when absent), stored in ms. */
static int seconds_ms(json_t *root, const char *key, unsigned def, unsigned min, unsigned max,
                      const char *path, unsigned *ms, struct hd_err *err)
{
    json_t *v = json_object_get(root, key);

    *ms = def * 1000;
    if (!v)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max)
        return hd_fail(err, 400, key, "%s: %s: seconds, %u-%u", path, key, min, max);
    *ms = (unsigned)(json_number_value(v) * 1000);
    return 0;
}

/* image_dirs: a path or a list of absolute paths (default HD_IMAGE_DIR). */
static int parse_image_dirs(json_t *v, const char *path, struct hd_config *cfg,
                            struct hd_err *err)
{
    json_t *list = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    size_t i;
    json_t *x;

    if (!list)
        list = json_pack("[s]", HD_IMAGE_DIR);
    if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > 16) {
        json_decref(list);
        return hd_fail(err, 400, "image_dirs", "%s: image_dirs: 1-16 absolute directory paths",
                       path);
    }
    cfg->image_dirs = calloc(json_array_size(list), sizeof(char *));
    json_array_foreach(list, i, x) {
        const char *d = json_string_value(x);
        if (!d || d[0] != '/' || strlen(d) >= 1024) {
            json_decref(list);
            return hd_fail(err, 400, "image_dirs", "%s: image_dirs: '%s' is not an absolute "
                           "path", path, d ? d : "?");
        }
        cfg->image_dirs[cfg->n_image_dirs++] = strdup(d);
    }
    json_decref(list);
    return 0;
}

int hd_config_load(const char *path, struct hd_config *cfg, struct hd_err *err)
{
    static const char *const known[] = {"node", "state_dir", "socket", "vmm", "roles",
                                        "network_setup", "users", "capacity", "storage",
                                        "stop_timeout", "shutdown_timeout", "ready_timeout",
                                        "range_parallel", "guest_uids",
                                        "cgroup_pids_max",
                                        "cgroup_root", "wipe_overlays", "vmm_env", "image_dirs",
                                        "console_log_max", "api_connections_per_uid", NULL};
    FILE *f = fopen(path, "r");
    char buf[1 << 16];
    size_t n;
    json_t *root;
    const char *key;
    json_t *v;

    memset(cfg, 0, sizeof(*cfg));
    if (!f)
        return hd_fail(err, 500, "", "%s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    root = hd_yaml_to_json(buf, n, err);
    if (!root)
        return -1;
    if (!json_is_object(root)) {
        json_decref(root);
        return hd_fail(err, 400, "", "%s: a mapping is expected at the top", path);
    }
    json_object_foreach(root, key, v) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= !strcmp(known[i], key);
        if (!ok) {
            hd_fail(err, 400, key, "%s: unknown key '%s'", path, key);
            goto fail;
        }
    }
    cfg->path = strdup(path);
    char host[256] = "node";
    gethostname(host, sizeof(host) - 1);
    cfg->node_name = dup_str(root, "node", host);
    cfg->state_dir = dup_str(root, "state_dir", "/var/lib/herd");
    cfg->socket_path = dup_str(root, "socket", "");
    if (!cfg->socket_path[0]) {
        free(cfg->socket_path);
        if (asprintf(&cfg->socket_path, "%s/herdd.sock", cfg->state_dir) < 0)
            cfg->socket_path = NULL;
    }
    cfg->vmm_path = dup_str(root, "vmm", "/usr/local/bin/herd-vmm");
    if (cfg->state_dir[0] != '/') {
        hd_fail(err, 400, "state_dir", "%s: state_dir must be an absolute path", path);
        goto fail;
    }
    if (strlen(cfg->socket_path) >= 108) {
        hd_fail(err, 400, "socket", "%s: socket path is longer than 107 bytes", path);
        goto fail;
    }
    cfg->net_setup = json_is_true(json_object_get(root, "network_setup"));
    /* roles -> bridges: handed to netdev as its JSON config */
    v = json_object_get(root, "roles");
    cfg->roles_json = v ? json_incref(v) : json_object();
    if (json_object_size(cfg->roles_json)) {
        json_t *wrap = json_pack("{sO}", "roles", cfg->roles_json);
        char *text = json_dumps(wrap, 0);
        struct netdev_err nerr = {{0}, {0}};
        int rc = netdev_config_parse_json(text, &cfg->net, &nerr);
        free(text);
        json_decref(wrap);
        if (rc < 0) {
            hd_fail(err, 400, nerr.field, "%s: %s", path, nerr.msg);
            goto fail;
        }
    }
    /* users: {uid-or-name: role | [roles]} */
    v = json_object_get(root, "users");
    if (v && !json_is_object(v)) {
        hd_fail(err, 400, "users", "%s: users must map uids (or user names) to roles", path);
        goto fail;
    }
    if (v) {
        cfg->users = calloc(json_object_size(v) + 1, sizeof(*cfg->users));
        json_t *rv;
        json_object_foreach(v, key, rv) {
            char field[96];
            char *end;
            uid_t uid;
            snprintf(field, sizeof(field), "users.%s", key);
            errno = 0;
            unsigned long u = strtoul(key, &end, 10);
            if (*key && !*end && !errno && u < UINT32_MAX) {
                uid = (uid_t)u;
            } else {
                struct passwd *pw = getpwnam(key);
                if (!pw) {
                    hd_fail(err, 400, field, "%s: no user '%s'", path, key);
                    goto fail;
                }
                uid = pw->pw_uid;
            }
            unsigned roles;
            if (parse_roles(rv, field, &roles, err) < 0)
                goto fail;
            cfg->users[cfg->n_users].uid = uid;
            cfg->users[cfg->n_users++].roles = roles;
            if (uid == 0)
                cfg->root_listed = true;
        }
    }
    /* capacity */
    cfg->cpu_overcommit = 4.0;
    cfg->mem_fraction = 0.9;
    v = json_object_get(root, "capacity");
    if (v) {
        json_t *x;
        if (!json_is_object(v)) {
            hd_fail(err, 400, "capacity", "%s: capacity must be a mapping", path);
            goto fail;
        }
        json_object_foreach(v, key, x) {
            if (!strcmp(key, "cpu_overcommit") && json_is_number(x) &&
                json_number_value(x) > 0 && json_number_value(x) <= 64) {
                cfg->cpu_overcommit = json_number_value(x);
            } else if (!strcmp(key, "memory_fraction") && json_is_number(x) &&
                       json_number_value(x) > 0 && json_number_value(x) <= 1) {
                cfg->mem_fraction = json_number_value(x);
            } else {
                hd_fail(err, 400, "capacity", "%s: capacity.%s: expected cpu_overcommit "
                        "(0-64] or memory_fraction (0-1]", path, key);
                goto fail;
            }
        }
    }
    cfg->storage_alarm = 2ull << 30;
    cfg->storage_floor = 256ull << 20;
    v = json_object_get(root, "storage");
    if (v) {
        json_t *x;
        if (!json_is_object(v)) {
            hd_fail(err, 400, "storage", "%s: storage must be a mapping", path);
            goto fail;
        }
        json_object_foreach(v, key, x) {
            uint64_t *dst = !strcmp(key, "alarm_free") ? &cfg->storage_alarm
                          : !strcmp(key, "floor_free") ? &cfg->storage_floor : NULL;
            if (!dst || hd_parse_size(x, dst) < 0) {
                hd_fail(err, 400, "storage", "%s: storage.%s: expected alarm_free or "
                        "floor_free with a size (e.g. 2G)", path, key);
                goto fail;
            }
        }
    }
    if (seconds_ms(root, "stop_timeout", 10, 0, 3600, path, &cfg->stop_timeout_ms, err) < 0 ||
        seconds_ms(root, "shutdown_timeout", 120, 1, 3600, path, &cfg->shutdown_timeout_ms,
                   err) < 0 ||
        seconds_ms(root, "ready_timeout", 120, 1, 86400, path, &cfg->ready_timeout_ms, err) < 0)
        goto fail;
    cfg->range_parallel = 8;
    v = json_object_get(root, "range_parallel");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 256) {
            hd_fail(err, 400, "range_parallel", "%s: range_parallel: 1-256", path);
            goto fail;
        }
        cfg->range_parallel = (unsigned)json_integer_value(v);
    }
    /* console_log_max: console.log's cap (herdd writes it; one older file,
     * console.log.1, of at most the same size is kept) */
    cfg->console_log_max = 4ull << 20;
    v = json_object_get(root, "console_log_max");
    if (v && (hd_parse_size(v, &cfg->console_log_max) < 0 ||
              cfg->console_log_max < HD_CONSOLE_LOG_MIN ||
              cfg->console_log_max > HD_CONSOLE_LOG_MAX)) {
        hd_fail(err, 400, "console_log_max", "%s: console_log_max: a size from 64K to 1G",
                path);
        goto fail;
    }
    /* api_connections_per_uid: open API connections one uid may hold */
    cfg->api_conns_per_uid = 256;
    v = json_object_get(root, "api_connections_per_uid");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > HD_API_CONNECTIONS) {
            hd_fail(err, 400, "api_connections_per_uid", "%s: api_connections_per_uid: 1-%d",
                    path, HD_API_CONNECTIONS);
            goto fail;
        }
        cfg->api_conns_per_uid = (unsigned)json_integer_value(v);
    }
    /* guest_uids: {first, count}; one uid (= gid) per guest, no passwd entry */
    cfg->uid_first = 200000;
    cfg->uid_count = 10000;
    v = json_object_get(root, "guest_uids");
    if (v) {
        json_t *x;
        bool bad = !json_is_object(v);
        if (!bad)
            json_object_foreach(v, key, x) {
                if ((strcmp(key, "first") && strcmp(key, "count")) || !json_is_integer(x))
                    bad = true;
                else if (!strcmp(key, "first"))
                    cfg->uid_first = json_integer_value(x) >= 1000 &&
                                             json_integer_value(x) < 0x7fffffff
                                         ? (uint32_t)json_integer_value(x) : 0;
                else
                    cfg->uid_count = json_integer_value(x) >= 1 &&
                                             json_integer_value(x) <= 1000000
                                         ? (uint32_t)json_integer_value(x) : 0;
            }
        if (bad || !cfg->uid_first || !cfg->uid_count ||
            (uint64_t)cfg->uid_first + cfg->uid_count > 0x7fffffffu) {
            hd_fail(err, 400, "guest_uids", "%s: guest_uids: expected {first: N, count: M} "
                    "with first >= 1000, 1 <= count <= 1000000, first + count < 2^31", path);
            goto fail;
        }
    }
    v = json_object_get(root, "cgroup_root");
    if (v && (!json_is_string(v) || (json_string_value(v)[0] != '/' &&
                                     strcmp(json_string_value(v), "off")))) {
        hd_fail(err, 400, "cgroup_root", "%s: cgroup_root: an absolute path (a cgroup v2 "
                "mount) or off", path);
        goto fail;
    }
    cfg->cgroup_root = dup_str(root, "cgroup_root", "/sys/fs/cgroup");
    if (!strcmp(cfg->cgroup_root, "off"))
        cfg->cgroup_root[0] = 0;
    /* cgroup_pids_max: pids.max of each guest's group (herd-vmm's threads:
     * main, vCPUs, one per device, control; clone itself is filtered) */
    cfg->pids_max = 64;
    v = json_object_get(root, "cgroup_pids_max");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 4 ||
            json_integer_value(v) > 65536) {
            hd_fail(err, 400, "cgroup_pids_max", "%s: cgroup_pids_max: 4-65536", path);
            goto fail;
        }
        cfg->pids_max = (unsigned)json_integer_value(v);
    }
    v = json_object_get(root, "wipe_overlays");
    if (v) {
        const char *w = json_string_value(v);
        if (!w || (strcmp(w, "discard") && strcmp(w, "zero"))) {
            hd_fail(err, 400, "wipe_overlays", "%s: wipe_overlays: discard or zero", path);
            goto fail;
        }
        cfg->wipe_zero = !strcmp(w, "zero");
    }
    /* vmm_env: names of variables passed from herdd's environment to herd-vmm
     * (test hooks, sanitizer options); nothing else is passed. */
    v = json_object_get(root, "vmm_env");
    if (v) {
        size_t i;
        json_t *x;
        if (!json_is_array(v) || json_array_size(v) > 32) {
            hd_fail(err, 400, "vmm_env", "%s: vmm_env: a list of variable names", path);
            goto fail;
        }
        cfg->vmm_env = calloc(json_array_size(v) + 1, sizeof(char *));
        json_array_foreach(v, i, x) {
            const char *nm = json_string_value(x);
            bool ok = nm && *nm && strlen(nm) < 64;
            for (const char *c = nm; ok && *c; c++)
                ok = (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
            if (!ok) {
                hd_fail(err, 400, "vmm_env", "%s: vmm_env: '%s' is not a variable name "
                        "([A-Z0-9_])", path, nm ? nm : "?");
                goto fail;
            }
            cfg->vmm_env[cfg->n_vmm_env++] = strdup(nm);
        }
    }
    if (parse_image_dirs(json_object_get(root, "image_dirs"), path, cfg, err) < 0)
        goto fail;
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    hd_config_free(cfg);
    return -1;
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
