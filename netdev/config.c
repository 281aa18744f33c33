/* Node network configuration: JSON parsing and static validation. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "herd/netdev.h"

#define DEFAULT_MTU 1500

/* ---- JSON helpers -------------------------------------------------------- */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int json_keys_check(const json_t *obj, const char *const *allowed,
                           const char *field, struct herd_err *err)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)obj, key, val) {
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            known = known || strcmp(*a, key) == 0;
        if (!known)
            return herd_err_set(err, -EINVAL, field, "%s: unknown key '%s'",
                                field, key);
    }
    return 0;
}

static int json_str(const json_t *obj, const char *key, bool required,
                    const char *field, char *out, size_t size,
                    struct herd_err *err)
{
    json_t *v = json_object_get(obj, key);
    char path[128];

    snprintf(path, sizeof(path), "%s.%s", field, key);
    if (!v) {
        if (required)
            return herd_err_set(err, -EINVAL, path, "%s is required", path);
        return 0;
    }
    if (!json_is_string(v))
        return herd_err_set(err, -EINVAL, path, "%s: expected a string, got %s",
                            path, json_kind(v));
    if (strlen(json_string_value(v)) >= size)
        return herd_err_set(err, -ENAMETOOLONG, path,
                            "%s: '%s' is %zu characters, at most %zu allowed", path,
                            json_string_value(v), strlen(json_string_value(v)),
                            size - 1);
    snprintf(out, size, "%s", json_string_value(v));
    return 0;
}

static int json_uint(const json_t *obj, const char *key, bool required,
                     const char *field, long long max, long long *out,
                     struct herd_err *err)
{
    json_t *v = json_object_get(obj, key);
    char path[128];

    snprintf(path, sizeof(path), "%s.%s", field, key);
    if (!v) {
        if (required)
            return herd_err_set(err, -EINVAL, path, "%s is required", path);
        return 0;
    }
    if (!json_is_integer(v))
        return herd_err_set(err, -EINVAL, path, "%s: expected an integer, got %s",
                            path, json_kind(v));
    if (json_integer_value(v) < 0 || json_integer_value(v) > max)
        return herd_err_set(err, -ERANGE, path, "%s: %lld out of range (0..%lld)",
                            path, (long long)json_integer_value(v), max);
    *out = json_integer_value(v);
    return 0;
}

/* ---- parsing ------------------------------------------------------------- */

static int addr_parse(const char *text, int *family, union netdev_inaddr *a)
{
    if (inet_pton(AF_INET, text, &a->v4) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &a->v6) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -EINVAL;
}

static int parse_vxlan_addrs(const json_t *obj, const char *field,
                             struct netdev_vxlan_cfg *vx, struct herd_err *err)
{
    char local[64] = "", remote[64] = "", group[64] = "", path[128];
    int fam_remote = 0, rc;

    if ((rc = json_str(obj, "local", true, field, local, sizeof(local), err)) ||
        (rc = json_str(obj, "remote", false, field, remote, sizeof(remote), err)) ||
        (rc = json_str(obj, "group", false, field, group, sizeof(group), err)))
        return rc;
    snprintf(path, sizeof(path), "%s.local", field);
    if (addr_parse(local, &vx->family, &vx->local))
        return herd_err_set(err, -EINVAL, path, "%s: '%s' is not an IP address",
                            path, local);
    if (!*remote == !*group)
        return herd_err_set(err, -EINVAL, field,
                            "%s: exactly one of 'remote' (unicast peer) and "
                            "'group' (multicast) is required", field);
    vx->remote_is_group = *group != 0;
    snprintf(path, sizeof(path), "%s.%s", field, *group ? "group" : "remote");
    if (addr_parse(*group ? group : remote, &fam_remote, &vx->remote))
        return herd_err_set(err, -EINVAL, path, "%s: '%s' is not an IP address",
                            path, *group ? group : remote);
    if (fam_remote != vx->family)
        return herd_err_set(err, -EINVAL, path,
                            "%s: address family differs from 'local'", path);
    return 0;
}

static int parse_vxlan(const json_t *obj, const char *field,
                       struct netdev_vxlan_cfg *vx, struct herd_err *err)
{
    static const char *const keys[] = {"vni", "local", "remote", "group", "port",
                                       "dev", NULL};
    long long vni = 0, port = NETDEV_VXLAN_PORT;
    int rc;

    if (!json_is_object(obj))
        return herd_err_set(err, -EINVAL, field, "%s: expected an object, got %s",
                            field, json_kind(obj));
    if ((rc = json_keys_check(obj, keys, field, err)) ||
        (rc = json_uint(obj, "vni", true, field, 0xffffffffLL, &vni, err)) ||
        (rc = json_uint(obj, "port", false, field, 0xffffLL, &port, err)) ||
        (rc = json_str(obj, "dev", false, field, vx->dev, sizeof(vx->dev), err)) ||
        (rc = parse_vxlan_addrs(obj, field, vx, err)))
        return rc;
    vx->enabled = true;
    vx->vni = (uint32_t)vni;
    vx->port = (uint16_t)port; /* 0 is refused by validation */
    return 0;
}

static struct netdev_bridge_cfg *bridge_add(struct netdev_config *cfg)
{
    struct netdev_bridge_cfg *b;

    b = realloc(cfg->bridges, (cfg->n_bridges + 1) * sizeof(*b));
    if (!b)
        return NULL;
    cfg->bridges = b;
    b = &cfg->bridges[cfg->n_bridges++];
    memset(b, 0, sizeof(*b));
    return b;
}

/* Fields common to roles and segments: mtu, uplink, vxlan. */
static int parse_bridge_common(const json_t *obj, const char *field,
                               unsigned default_mtu, struct netdev_bridge_cfg *b,
                               struct herd_err *err)
{
    long long mtu = default_mtu;
    json_t *vx = json_object_get(obj, "vxlan");
    char path[128];
    int rc;

    snprintf(b->field, sizeof(b->field), "%s", field);
    if ((rc = json_uint(obj, "mtu", false, field, 0x7fffffffLL, &mtu, err)) ||
        (rc = json_str(obj, "uplink", false, field, b->uplink, sizeof(b->uplink),
                       err)))
        return rc;
    b->mtu = (unsigned)mtu;
    snprintf(path, sizeof(path), "%s.vxlan", field);
    return vx ? parse_vxlan(vx, path, &b->vxlan, err) : 0;
}

static int parse_segment(struct netdev_config *cfg, enum netdev_role role,
                         unsigned role_mtu, const json_t *obj, const char *field,
                         struct herd_err *err)
{
    static const char *const keys[] = {"name", "mtu", "uplink", "vxlan", NULL};
    struct netdev_bridge_cfg *b;
    int rc;

    if (!json_is_object(obj))
        return herd_err_set(err, -EINVAL, field, "%s: expected an object, got %s",
                            field, json_kind(obj));
    if ((rc = json_keys_check(obj, keys, field, err)))
        return rc;
    if (!(b = bridge_add(cfg)))
        return herd_err_set(err, -ENOMEM, field, "out of memory");
    b->role = role;
    if ((rc = json_str(obj, "name", true, field, b->segment, sizeof(b->segment),
                       err)))
        return rc;
    return parse_bridge_common(obj, field, role_mtu, b, err);
}

static int parse_role(struct netdev_config *cfg, enum netdev_role role,
                      const json_t *obj, struct herd_err *err)
{
    static const char *const keys[] = {"bridge", "mtu", "uplink", "vxlan",
                                       "segments", NULL};
    struct netdev_bridge_cfg *b;
    char field[96], path[128];
    json_t *segs, *seg;
    size_t i;
    int rc;

    snprintf(field, sizeof(field), "roles.%s", netdev_role_name(role));
    if (!json_is_object(obj))
        return herd_err_set(err, -EINVAL, field, "%s: expected an object, got %s",
                            field, json_kind(obj));
    if ((rc = json_keys_check(obj, keys, field, err)))
        return rc;
    if (!(b = bridge_add(cfg)))
        return herd_err_set(err, -ENOMEM, field, "out of memory");
    b->role = role;
    cfg->role_bridge[role] = (int)(cfg->n_bridges - 1);
    if ((rc = json_str(obj, "bridge", true, field, b->name, sizeof(b->name), err)) ||
        (rc = parse_bridge_common(obj, field, DEFAULT_MTU, b, err)))
        return rc;
    segs = json_object_get(obj, "segments");
    if (!segs)
        return 0;
    snprintf(path, sizeof(path), "%s.segments", field);
    if (!json_is_array(segs))
        return herd_err_set(err, -EINVAL, path, "%s: expected an array, got %s",
                            path, json_kind(segs));
    unsigned role_mtu = b->mtu; /* b moves when bridges grow */
    json_array_foreach(segs, i, seg) {
        snprintf(path, sizeof(path), "%s.segments[%zu]", field, i);
        if ((rc = parse_segment(cfg, role, role_mtu, seg, path, err)))
            return rc;
    }
    return 0;
}

static int parse_roles(struct netdev_config *cfg, const json_t *roles,
                       struct herd_err *err)
{
    const char *key;
    json_t *val;
    enum netdev_role role;
    int rc;

    if (!json_is_object(roles))
        return herd_err_set(err, -EINVAL, "roles", "roles: expected an object, got %s",
                            json_kind(roles));
    json_object_foreach((json_t *)roles, key, val) {
        if (netdev_role_parse(key, &role))
            return herd_err_set(err, -EINVAL, "roles",
                                "roles: unknown role '%s' (expected management, "
                                "storage, service or communication)", key);
    }
    for (int r = 0; r < NETDEV_ROLE_COUNT; r++) {
        val = json_object_get(roles, netdev_role_name((enum netdev_role)r));
        if (val && (rc = parse_role(cfg, (enum netdev_role)r, val, err)))
            return rc;
    }
    return 0;
}

static void config_init(struct netdev_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int r = 0; r < NETDEV_ROLE_COUNT; r++)
        cfg->role_bridge[r] = -1;
}

int netdev_config_parse_json(const char *text, struct netdev_config *cfg,
                             struct herd_err *err)
{
    static const char *const keys[] = {"roles", NULL};
    json_error_t jerr;
    json_t *root, *roles;
    int rc;

    herd_err_clear(err);
    config_init(cfg);
    root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return herd_err_set(err, -EINVAL, "", "JSON error at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    rc = -EINVAL;
    if (!json_is_object(root)) {
        herd_err_set(err, rc, "", "expected a JSON object at top level");
        goto out;
    }
    if ((rc = json_keys_check(root, keys, "(top level)", err)))
        goto out;
    roles = json_object_get(root, "roles");
    if (!roles) {
        rc = herd_err_set(err, -EINVAL, "roles", "roles is required");
        goto out;
    }
    if ((rc = parse_roles(cfg, roles, err)))
        goto out;
    rc = netdev_config_validate(cfg, err);
out:
    json_decref(root);
    if (rc)
        netdev_config_free(cfg);
    return rc;
}

int netdev_config_load(const char *path, struct netdev_config *cfg,
                       struct herd_err *err)
{
    FILE *f = fopen(path, "re");
    char *text = NULL;
    size_t cap = 0, len = 0, n;
    int rc;

    config_init(cfg);
    if (!f)
        return herd_err_set(err, -errno, path, "cannot open %s: %s", path,
                            strerror(errno));
    do {
        if (len + 4096 + 1 > cap) {
            char *t = realloc(text, cap = cap * 2 + 4096 + 1);
            if (!t) {
                free(text);
                fclose(f);
                return herd_err_set(err, -ENOMEM, path, "out of memory");
            }
            text = t;
        }
        n = fread(text + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    text[len] = 0;
    rc = netdev_config_parse_json(text, cfg, err);
    free(text);
    return rc;
}

void netdev_config_free(struct netdev_config *cfg)
{
    free(cfg->bridges);
    config_init(cfg);
}

const struct netdev_bridge_cfg *netdev_config_find(const struct netdev_config *cfg,
                                                   enum netdev_role role,
                                                   const char *segment)
{
    const char *want = segment ? segment : "";

    for (size_t i = 0; i < cfg->n_bridges; i++) {
        if (cfg->bridges[i].role == role && strcmp(cfg->bridges[i].segment, want) == 0)
            return &cfg->bridges[i];
    }
    return NULL;
}
