/* herdd configuration: YAML read into JSON (types, duplicates, documents,
 * sizes), the config file's keys and their checks, uid -> roles, names.
 * The test_keys_* cases walk the key tables (config_keys.h): a key added to
 * a table is tested by them (bounds, types, default, docs/herdd.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../ctl/herdd/config_keys.h"

static json_t *yj(const char *text, struct hd_err *err)
{
    memset(err, 0, sizeof(*err));
    return hd_yaml_to_json(text, strlen(text), err);
}

static void test_yaml_scalars_are_typed(void **state)
{
    struct hd_err err;
    (void)state;
    json_t *j = yj("a: 1\nb: -7\nc: 1.5\nd: true\ne: ~\nf: '12'\ng: hello\nh: [1, x]\n"
                   "i: {k: v}\nj: 0x10\nk:\n", &err);
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "a")));
    assert_int_equal(json_integer_value(json_object_get(j, "b")), -7);
    assert_true(json_is_real(json_object_get(j, "c")));
    assert_true(json_is_true(json_object_get(j, "d")));
    assert_true(json_is_null(json_object_get(j, "e")));
    assert_string_equal(json_string_value(json_object_get(j, "f")), "12");
    assert_string_equal(json_string_value(json_object_get(j, "g")), "hello");
    assert_int_equal(json_array_size(json_object_get(j, "h")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "i"), "k")), "v");
    assert_string_equal(json_string_value(json_object_get(j, "j")), "0x10"); /* not a number */
    assert_true(json_is_null(json_object_get(j, "k")));
    json_decref(j);
}

static void test_yaml_refusals(void **state)
{
    struct hd_err err;
    (void)state;
    assert_null(yj("a: 1\na: 2\n", &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.field, "a");
    assert_non_null(strstr(err.msg, "duplicate key"));
    assert_null(yj("a: [1, 2\n", &err));
    assert_non_null(strstr(err.msg, "line"));
    assert_null(yj("a: 99999999999999999999999\n", &err));
    assert_non_null(strstr(err.msg, "too large"));
    assert_null(yj("a: 1\n---\nb: 2\n", &err));
    assert_non_null(strstr(err.msg, "one document"));
    assert_null(yj("", &err));
    assert_null(yj("? [a, b]\n: 1\n", &err));
    assert_non_null(strstr(err.msg, "scalars"));
    /* billion laughs: aliases expand, but the node count is bounded */
    char doc[4096] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    char prev = 'a';
    for (char c = 'b'; c <= 'k'; c++, prev++) {
        char line[128];
        snprintf(line, sizeof(line), "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
                 c, c, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev);
        strcat(doc, line);
    }
    assert_null(yj(doc, &err));
    assert_non_null(strstr(err.msg, "too large"));
}

static void test_sizes(void **state)
{
    uint64_t v;
    (void)state;
    json_t *s;
    assert_int_equal(hd_parse_size(s = json_string("64M"), &v), 0);
    json_decref(s);
    assert_int_equal(v, 64u << 20);
    assert_int_equal(hd_parse_size(s = json_string("2GiB"), &v), 0);
    json_decref(s);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(hd_parse_size(s = json_integer(4096), &v), 0);
    json_decref(s);
    assert_int_equal(v, 4096);
    const char *bad[] = {"", "M", "-1M", "1X", "99999999999T", "1.5G", " 1M", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(hd_parse_size(s = json_string(bad[i]), &v), -1);
        json_decref(s);
    }
    assert_int_equal(hd_parse_size(s = json_integer(-5), &v), -1);
    json_decref(s);
    assert_int_equal(hd_parse_size(s = json_true(), &v), -1);
    json_decref(s);
}

static int load(const char *text, struct hd_config *cfg, struct hd_err *err)
{
    char path[] = "/tmp/test_herdd_config.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    memset(err, 0, sizeof(*err));
    int rc = hd_config_load(path, cfg, err);
    unlink(path);
    return rc;
}

static void test_config_full(void **state)
{
    struct hd_config cfg;
    struct hd_err err;
    (void)state;
    assert_int_equal(load("node: n1\nstate_dir: /var/lib/x\nsocket: /run/x.sock\nvmm: /bin/true\n"
                          "roles:\n  management: {bridge: hbr-mgmt}\n"
                          "  communication: {bridge: hbr-comm, mtu: 1450}\n"
                          "users: {0: sysadmin, 1000: [auditor, secadmin]}\n"
                          "capacity: {cpu_overcommit: 2.5, memory_fraction: 0.5, memory_overcommit: 3}\n"
                          "storage: {alarm_free: 1G, floor_free: 100M}\n"
                          "stop_timeout: 3\nshutdown_timeout: 45\nready_timeout: 900\nrange_parallel: 4\n"
                          "network_setup: true\n"
                          "guest_uids: {first: 500000, count: 20}\ncgroup_root: off\n"
                          "wipe_overlays: zero\nvmm_env: [ASAN_OPTIONS, HERD_TEST_X]\n"
                          "console_log_max: 64K\napi_connections_per_uid: 2000\n"
                          "cgroup_pids_max: 4\n",
                          &cfg, &err),
                     0);
    assert_string_equal(cfg.node_name, "n1");
    assert_string_equal(cfg.socket_path, "/run/x.sock");
    assert_true(cfg.net_setup);
    assert_string_equal(hd_bridge_of(&cfg, "communication"), "hbr-comm");
    assert_null(hd_bridge_of(&cfg, "storage"));
    assert_null(hd_bridge_of(&cfg, "dmz"));
    assert_int_equal(hd_roles_of(&cfg, 0), HD_ROLE_SYSADMIN); /* root as configured */
    assert_int_equal(hd_roles_of(&cfg, 1000), HD_ROLE_AUDITOR | HD_ROLE_SECADMIN);
    assert_int_equal(hd_roles_of(&cfg, 1001), 0);
    assert_true(cfg.cpu_overcommit == 2.5);
    assert_true(cfg.mem_overcommit == 3.0);
    assert_int_equal(cfg.storage_alarm, 1ull << 30);
    assert_int_equal(cfg.storage_floor, 100ull << 20);
    assert_int_equal(cfg.stop_timeout_ms, 3000);
    assert_int_equal(cfg.shutdown_timeout_ms, 45000);
    assert_int_equal(cfg.ready_timeout_ms, 900000);
    assert_int_equal(cfg.range_parallel, 4);
    assert_int_equal(cfg.uid_first, 500000);
    assert_int_equal(cfg.uid_count, 20);
    assert_string_equal(cfg.cgroup_root, "");
    assert_true(cfg.wipe_zero);
    assert_int_equal(cfg.n_vmm_env, 2);
    assert_string_equal(cfg.vmm_env[1], "HERD_TEST_X");
    assert_int_equal(cfg.console_log_max, 64 << 10);
    assert_int_equal(cfg.api_conns_per_uid, 2000);
    assert_int_equal(cfg.pids_max, 4);
    hd_config_free(&cfg);
}

static void test_config_defaults_and_root(void **state)
{
    struct hd_config cfg;
    struct hd_err err;
    (void)state;
    assert_int_equal(load("state_dir: /srv/herd\n", &cfg, &err), 0);
    assert_string_equal(cfg.socket_path, "/srv/herd/herdd.sock");
    /* root, unlisted, holds every role */
    assert_int_equal(hd_roles_of(&cfg, 0),
                     HD_ROLE_SYSADMIN | HD_ROLE_SECADMIN | HD_ROLE_AUDITOR);
    assert_int_equal(hd_roles_of(&cfg, 1), 0);
    assert_int_equal(cfg.range_parallel, 8);
    assert_int_equal(cfg.ready_timeout_ms, 120000);
    assert_int_equal(cfg.stop_timeout_ms, 10000);
    assert_int_equal(cfg.shutdown_timeout_ms, 120000);
    /* confinement defaults: uids 200000-209999, cgroups under /sys/fs/cgroup
     * when usable, overlays discarded, no environment passed */
    assert_int_equal(cfg.uid_first, 200000);
    assert_int_equal(cfg.uid_count, 10000);
    assert_string_equal(cfg.cgroup_root, "/sys/fs/cgroup");
    assert_false(cfg.wipe_zero);
    assert_int_equal(cfg.n_vmm_env, 0);
    assert_int_equal(cfg.pids_max, 64);
    /* containment: a 4 MiB console log (and its .1), 256 API connections a uid */
    assert_int_equal(cfg.console_log_max, 4 << 20);
    assert_int_equal(cfg.api_conns_per_uid, 256);
    /* template files only from /var/lib/herd/images */
    assert_int_equal(cfg.n_image_dirs, 1);
    assert_string_equal(cfg.image_dirs[0], "/var/lib/herd/images");
    hd_config_free(&cfg);
    assert_int_equal(load("image_dirs: /srv/img\n", &cfg, &err), 0);
    assert_int_equal(cfg.n_image_dirs, 1);
    assert_string_equal(cfg.image_dirs[0], "/srv/img");
    hd_config_free(&cfg);
    assert_int_equal(load("image_dirs: [/a, /b/c]\n", &cfg, &err), 0);
    assert_int_equal(cfg.n_image_dirs, 2);
    assert_string_equal(cfg.image_dirs[1], "/b/c");
    hd_config_free(&cfg);
}

static void test_config_refusals(void **state)
{
    static const struct {
        const char *text, *field, *msg;
    } cases[] = {
        {"colour: red\n", "colour", "unknown key"},
        {"state_dir: relative\n", "state_dir", "absolute"},
        {"image_dirs: images\n", "image_dirs", "absolute"},
        {"image_dirs: [/a, 3]\n", "image_dirs", "absolute"},
        {"image_dirs: []\n", "image_dirs", "1-16"},
        {"users: {0: root}\n", "users.0", "unknown role"},
        {"users: [1, 2]\n", "users", "map uids"},
        {"users: {no-such-user-xyz: auditor}\n", "users.no-such-user-xyz", "no user"},
        {"capacity: {cpu_overcommit: 0}\n", "capacity", "cpu_overcommit"},
        {"capacity: {memory_fraction: 1.5}\n", "capacity", "memory_fraction"},
        {"capacity: {memory_overcommit: 0}\n", "capacity", "memory_overcommit"},
        {"capacity: {memory_overcommit: 100.5}\n", "capacity", "memory_overcommit"},
        {"capacity: {cpu_overcommit: 1001}\n", "capacity", "cpu_overcommit"},
        {"storage: {alarm_free: lots}\n", "storage", "alarm_free"},
        {"stop_timeout: -1\n", "stop_timeout", "0-3600"},
        {"shutdown_timeout: 0\n", "shutdown_timeout", "1-3600"},
        {"ready_timeout: 0\n", "ready_timeout", "1-86400"},
        {"ready_timeout: soon\n", "ready_timeout", "1-86400"},
        {"range_parallel: 0\n", "range_parallel", "1-256"},
        {"roles: {management: {bridge: this-name-is-far-too-long}}\n", "", ""},
        {"roles: {dmz: {bridge: b}}\n", "", ""},
        {"- a\n", "", "mapping"},
        {"guest_uids: {first: 0, count: 10}\n", "guest_uids", "first >= 1000"},
        {"guest_uids: {first: 200000, count: 0}\n", "guest_uids", "count"},
        {"guest_uids: {first: 2147483000, count: 1000}\n", "guest_uids", "2^31"},
        {"guest_uids: {first: 200000, size: 5}\n", "guest_uids", ""},
        {"guest_uids: 200000-265535\n", "guest_uids", ""},
        {"cgroup_root: relative\n", "cgroup_root", "absolute"},
        {"wipe_overlays: shred\n", "wipe_overlays", "discard or zero"},
        {"cgroup_pids_max: 3\n", "cgroup_pids_max", "4-65536"},
        {"cgroup_pids_max: 65537\n", "cgroup_pids_max", "4-65536"},
        {"cgroup_pids_max: many\n", "cgroup_pids_max", "4-65536"},
        {"vmm_env: [\"LD_PRELOAD=x\"]\n", "vmm_env", "variable name"},
        {"vmm_env: PATH\n", "vmm_env", "list"},
        {"console_log_max: 1K\n", "console_log_max", "64K to 1G"},
        {"console_log_max: 2G\n", "console_log_max", "64K to 1G"},
        {"console_log_max: big\n", "console_log_max", "64K to 1G"},
        {"api_connections_per_uid: 0\n", "api_connections_per_uid", "1-2000"},
        {"api_connections_per_uid: 2001\n", "api_connections_per_uid", "1-2000"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hd_config cfg;
        struct hd_err err;
        assert_int_equal(load(cases[i].text, &cfg, &err), -1);
        assert_int_equal(err.status, 400);
        if (cases[i].field[0])
            assert_string_equal(err.field, cases[i].field);
        if (cases[i].msg[0] && !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
    }
}

/* ---- cases generated from the key tables ------------------------------------ */

/* "SEC: {OTHERS KEY: VALUE}" (SEC NULL: "KEY: VALUE"); a section with a
 * check gets its other keys at their minimum, so that a bound of one key
 * is tried alone. */
static int load_key(const struct hd_key *sec, const struct hd_key *k, const char *value,
                    struct hd_config *cfg, struct hd_err *err)
{
    char text[1024], others[256] = "";

    if (!sec) {
        snprintf(text, sizeof(text), "%s: %s\n", k->name, value);
        return load(text, cfg, err);
    }
    for (const struct hd_key *o = sec->section->keys; sec->section->check && o->name; o++)
        if (o != k)
            snprintf(others + strlen(others), sizeof(others) - strlen(others), "%s: %.0f, ",
                     o->name, o->min);
    snprintf(text, sizeof(text), "%s: {%s%s: %s}\n", sec->name, others, k->name, value);
    return load(text, cfg, err);
}

static const char *key_name(const struct hd_key *sec, const struct hd_key *k)
{
    static char name[128];

    snprintf(name, sizeof(name), "%s%s%s", sec ? sec->name : "", sec ? "." : "", k->name);
    return name;
}

/* refused, naming the key: err.field is the key (a section's key: the
 * section) and the message names it ("SEC.KEY", or "SEC:" where the
 * section's message names no key) */
static void assert_refused(const struct hd_key *sec, const struct hd_key *k, const char *value)
{
    struct hd_config cfg;
    struct hd_err err;
    char named[128];

    if (load_key(sec, k, value, &cfg, &err) == 0) {
        hd_config_free(&cfg);
        fail_msg("%s: %s was accepted", key_name(sec, k), value);
    }
    if (!sec)
        snprintf(named, sizeof(named), "%s", k->name);
    else if (sec->section->key_in_msg)
        snprintf(named, sizeof(named), "%s.%s", sec->name, k->name);
    else
        snprintf(named, sizeof(named), "%s:", sec->name);
    if (err.status != 400 || strcmp(err.field, sec ? sec->name : k->name) ||
        !strstr(err.msg, named))
        fail_msg("%s: %s: %d '%s' '%s'", key_name(sec, k), value, err.status, err.field,
                 err.msg);
}

static double stored(const struct hd_key *k, const struct hd_config *cfg)
{
    const char *at = (const char *)cfg + k->off;

    switch (k->type) {
    case HD_KEY_COUNT:
    case HD_KEY_SECONDS:
        return *(const unsigned *)at;
    case HD_KEY_SIZE:
        return (double)*(const uint64_t *)at;
    case HD_KEY_DOUBLE:
        return *(const double *)at;
    case HD_KEY_BOOL:
        return *(const bool *)at;
    default:
        fail_msg("%s: not a number", k->name);
        return 0;
    }
}

/* accepted, and WANT is what the key's place in struct hd_config holds */
static void assert_accepted(const struct hd_key *sec, const struct hd_key *k, const char *value,
                            double want)
{
    struct hd_config cfg;
    struct hd_err err;

    if (load_key(sec, k, value, &cfg, &err) < 0)
        fail_msg("%s: %s refused: '%s' '%s'", key_name(sec, k), value, err.field, err.msg);
    if (stored(k, &cfg) != want)
        fail_msg("%s: %s gave %.17g, not %.17g", key_name(sec, k), value, stored(k, &cfg), want);
    hd_config_free(&cfg);
}

static unsigned keys_seen;

/* FN for every key that is not a section: (NULL, key) at the top,
 * (section's row, key) in a section */
static void each_key(void (*fn)(const struct hd_key *sec, const struct hd_key *k))
{
    keys_seen = 0;
    for (const struct hd_key *k = hd_config_keys; k->name; k++) {
        if (k->type != HD_KEY_SECTION) {
            fn(NULL, k);
            keys_seen++;
            continue;
        }
        for (const struct hd_key *s = k->section->keys; s->name; s++, keys_seen++)
            fn(k, s);
    }
    assert_true(keys_seen >= 20);
}

static void key_bounds(const struct hd_key *sec, const struct hd_key *k)
{
    double scale = k->type == HD_KEY_SECONDS ? 1000 : 1;
    char v[64];

    if (k->type == HD_KEY_DOUBLE) { /* min < v <= max */
        snprintf(v, sizeof(v), "%.17g", k->min);
        assert_refused(sec, k, v);
        snprintf(v, sizeof(v), "%.17g", k->max + fabs(k->max) * 1e-9);
        assert_refused(sec, k, v);
        snprintf(v, sizeof(v), "%.17g", k->max);
        assert_accepted(sec, k, v, k->max);
        snprintf(v, sizeof(v), "%.17g", k->min + (k->max - k->min) / 1e6);
        assert_accepted(sec, k, v, strtod(v, NULL));
        return;
    }
    if (k->type != HD_KEY_COUNT && k->type != HD_KEY_SECONDS && k->type != HD_KEY_SIZE)
        return;
    snprintf(v, sizeof(v), "%.0f", k->min - 1);
    assert_refused(sec, k, v);
    snprintf(v, sizeof(v), "%.0f", k->min);
    assert_accepted(sec, k, v, k->min * scale);
    if (isfinite(k->max)) {
        snprintf(v, sizeof(v), "%.0f", k->max);
        assert_accepted(sec, k, v, k->max * scale);
        snprintf(v, sizeof(v), "%.0f", k->max + 1);
        assert_refused(sec, k, v);
    } else {
        assert_accepted(sec, k, "16777215T", (double)(16777215ull << 40));
    }
    if (k->type == HD_KEY_SECONDS) { /* fractions count */
        snprintf(v, sizeof(v), "%.1f", k->max + 0.5);
        assert_refused(sec, k, v);
        snprintf(v, sizeof(v), "%.1f", k->min + 0.5);
        assert_accepted(sec, k, v, (unsigned)((k->min + 0.5) * 1000));
    }
}

static void test_keys_bounds(void **state)
{
    (void)state;
    each_key(key_bounds);
}

static void key_wrong_types(const struct hd_key *sec, const struct hd_key *k)
{
    static const char *const wrong[][10] = {
        [HD_KEY_COUNT] = {"'5'", "1.5", "true", "[1]", "{a: 1}", "~", "five", "''", NULL},
        [HD_KEY_SECONDS] = {"'5'", "true", "[1]", "{a: 1}", "~", "soon", "''", NULL},
        [HD_KEY_SIZE] = {"true", "1.5", "1.5G", "[1]", "{a: 1}", "~", "-1", "lots", "1X", NULL},
        [HD_KEY_DOUBLE] = {"'0.5'", "true", "[1]", "{a: 1}", "~", "half", NULL},
        [HD_KEY_PATH] = {"relative", "''", "'x/y'", NULL},
    };

    for (int i = 0; k->type < sizeof(wrong) / sizeof(wrong[0]) && wrong[k->type][i]; i++)
        assert_refused(sec, k, wrong[k->type][i]);
    if (k->type == HD_KEY_BOOL) { /* only true is true */
        assert_accepted(sec, k, "true", 1);
        assert_accepted(sec, k, "'true'", 0);
        assert_accepted(sec, k, "1", 0);
        assert_accepted(sec, k, "yes", 0);
    }
}

static void test_keys_wrong_types(void **state)
{
    (void)state;
    each_key(key_wrong_types);
    /* a section: a mapping of its own keys */
    for (const struct hd_key *k = hd_config_keys; k->name; k++) {
        static const char *const not_map[] = {"5", "[1]", "x", "~", "''"};
        struct hd_key none = {.name = "no_such_key"}, deeper = {.name = "deeper"};
        if (k->type != HD_KEY_SECTION)
            continue;
        for (size_t i = 0; i < sizeof(not_map) / sizeof(not_map[0]); i++)
            assert_refused(NULL, k, not_map[i]);
        assert_refused(k, &none, "1");
        assert_refused(k, &deeper, "{no_such_key: 1}");
    }
}

/* "{}": every key at its default */
static void key_default(const struct hd_key *sec, const struct hd_key *k)
{
    struct hd_config cfg;
    struct hd_err err;

    assert_int_equal(load("{}\n", &cfg, &err), 0);
    if (k->type == HD_KEY_STRING || k->type == HD_KEY_PATH) {
        assert_string_equal(*(char **)((char *)&cfg + k->off), k->def_s);
        hd_config_free(&cfg);
        assert_int_equal(load_key(sec, k, "[1]", &cfg, &err), 0); /* not a string */
        assert_string_equal(*(char **)((char *)&cfg + k->off), k->def_s);
    } else if (k->type != HD_KEY_CUSTOM) {
        double want = k->def * (k->type == HD_KEY_SECONDS ? 1000 : 1);
        if (stored(k, &cfg) != want)
            fail_msg("%s: default %.17g, not %.17g", key_name(sec, k), stored(k, &cfg), want);
    }
    hd_config_free(&cfg);
}

static void test_keys_defaults(void **state)
{
    (void)state;
    each_key(key_default);
}

/* custom keys: each has cases here (a new one fails until it has some) */
static void test_keys_custom(void **state)
{
    static const struct {
        const char *key, *value, *field, *msg; /* field NULL: accepted */
    } cases[] = {
        {"node", "n1", NULL, NULL},
        {"node", "[1]", NULL, NULL},
        {"socket", "/run/x.sock", NULL, NULL},
        {"socket", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "socket", "107 bytes"},
        {"roles", "{management: {bridge: hbr-m}}", NULL, NULL},
        {"roles", "{dmz: {bridge: b}}", "roles", "unknown role"},
        {"roles", "{management: {bridge: b, colour: red}}", "roles.management", "colour"},
        {"users", "{0: sysadmin}", NULL, NULL},
        {"users", "[1, 2]", "users", "map uids"},
        {"users", "{0: [sysadmin, 5]}", "users.0", "not a string"},
        {"users", "{0: {a: 1}}", "users.0", "a role name or a list"},
        {"cgroup_root", "off", NULL, NULL},
        {"cgroup_root", "relative", "cgroup_root", "absolute path"},
        {"cgroup_root", "5", "cgroup_root", "absolute path"},
        {"wipe_overlays", "zero", NULL, NULL},
        {"wipe_overlays", "shred", "wipe_overlays", "discard or zero"},
        {"wipe_overlays", "[zero]", "wipe_overlays", "discard or zero"},
        {"vmm_env", "[A_1, B]", NULL, NULL},
        {"vmm_env", "PATH", "vmm_env", "a list of variable names"},
        {"vmm_env", "[a]", "vmm_env", "'a' is not a variable name"},
        {"vmm_env", "[V0, V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15, V16, "
                    "V17, V18, V19, V20, V21, V22, V23, V24, V25, V26, V27, V28, V29, V30, V31, "
                    "V32]", "vmm_env", "a list of variable names"},
        {"image_dirs", "/srv", NULL, NULL},
        {"image_dirs", "[]", "image_dirs", "1-16"},
        {"image_dirs", "[/a, rel]", "image_dirs", "'rel' is not an absolute path"},
        {"cluster", "{endpoints: [http://10.0.0.1:2379], address: 10.0.0.5}", NULL, NULL},
        {"cluster", "{endpoints: 'https://e:2379', address: 'fd00::5', lease_ttl: 2, ca: /ca.pem, "
                    "cert: /c.pem, key: /k.pem}", NULL, NULL},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, lease_ttl: 300}", NULL, NULL},
        {"cluster", "[1]", "cluster", "cluster must be a mapping"},
        {"cluster", "{address: 10.0.0.5}", "cluster", "cluster.endpoints: at least one"},
        {"cluster", "{endpoints: [], address: 10.0.0.5}", "cluster", "cluster.endpoints: 1-16"},
        {"cluster", "{endpoints: {a: 1}, address: 10.0.0.5}", "cluster", "cluster.endpoints: 1-16"},
        {"cluster", "{endpoints: [ftp://x], address: 1.2.3.4}", "cluster",
         "'ftp://x' is not an etcd client URL"},
        {"cluster", "{endpoints: [http://e:1, 5], address: 1.2.3.4}", "cluster",
         "is not an etcd client URL"},
        {"cluster", "{endpoints: [http://e:1]}", "cluster", "cluster.address: the node's underlay "
                    "address is needed"},
        {"cluster", "{endpoints: [http://e:1], address: here}", "cluster", "cluster.address:"},
        {"cluster", "{endpoints: [http://e:1], address: 10.0.0.5/24}", "cluster",
         "cluster.address:"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, lease_ttl: 1}", "cluster",
         "cluster.lease_ttl: seconds, 2-300"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, lease_ttl: 301}", "cluster",
         "cluster.lease_ttl: seconds, 2-300"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, lease_ttl: '5'}", "cluster",
         "cluster.lease_ttl"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, lease_ttl: 2.5}", "cluster",
         "cluster.lease_ttl"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, image_port: 0, fetch_rate: 100M}",
         NULL, NULL},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, image_port: 65535, "
                    "fetch_rate: 0}", NULL, NULL},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, image_port: 65536}", "cluster",
         "cluster.image_port: a TCP port, 0-65535"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, image_port: -1}", "cluster",
         "cluster.image_port"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, image_port: '80'}", "cluster",
         "cluster.image_port"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, fetch_rate: fast}", "cluster",
         "cluster.fetch_rate: bytes per second"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, fetch_rate: 2T}", "cluster",
         "cluster.fetch_rate"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, cert: /c.pem}", "cluster",
         "cluster.cert and cluster.key go together"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, ca: ca.pem}", "cluster",
         "cluster.ca must be an absolute path"},
        {"cluster", "{endpoints: [http://e:1], address: 1.2.3.4, colour: red}", "cluster",
         "cluster.colour: unknown key"},
    };
    (void)state;
    for (const struct hd_key *k = hd_config_keys; k->name; k++) {
        bool has = false;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            has |= !strcmp(cases[i].key, k->name);
        if (k->type == HD_KEY_CUSTOM && !has)
            fail_msg("custom key %s has no case in test_keys_custom", k->name);
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hd_key k = {.name = cases[i].key};
        struct hd_config cfg;
        struct hd_err err;
        int rc = load_key(NULL, &k, cases[i].value, &cfg, &err);
        if (!cases[i].field && rc < 0)
            fail_msg("%s: %s refused: %s", cases[i].key, cases[i].value, err.msg);
        if (!cases[i].field) {
            hd_config_free(&cfg);
            continue;
        }
        if (rc == 0 || err.status != 400 || strcmp(err.field, cases[i].field) ||
            !strstr(err.msg, cases[i].msg))
            fail_msg("%s: %s: %d %d '%s' '%s'", cases[i].key, cases[i].value, rc, err.status,
                     err.field, err.msg);
    }
}

static void assert_load_fails(const char *text, const char *field, const char *msg)
{
    struct hd_config cfg;
    struct hd_err err;

    assert_int_equal(load(text, &cfg, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.field, field);
    if (!strstr(err.msg, msg))
        fail_msg("'%s': '%s' lacks '%s'", text, err.msg, msg);
}

static void test_keys_unknown_and_order(void **state)
{
    struct hd_config cfg;
    struct hd_err err;
    char text[256], key[128];
    (void)state;
    for (const struct hd_key *k = hd_config_keys; k->name; k++) {
        snprintf(key, sizeof(key), "%ss", k->name);
        snprintf(text, sizeof(text), "%s: 1\n", key);
        assert_load_fails(text, key, "unknown key");
    }
    /* unknown keys before any value; then the table's order; in a section
     * the file's order */
    assert_load_fails("state_dir: relative\ncolour: red\n", "colour", "unknown key 'colour'");
    assert_load_fails("range_parallel: 0\nstop_timeout: -1\n", "stop_timeout", "0-3600");
    assert_load_fails("capacity: {memory_fraction: 2, cpu_overcommit: 0}\n", "capacity",
                      "capacity.memory_fraction:");
    assert_load_fails("capacity: {cpu_overcommit: 0, memory_fraction: 2}\n", "capacity",
                      "capacity.cpu_overcommit:");
    assert_load_fails("storage: {alarm_free: 1G, nested: {x: 1}}\n", "storage", "storage.nested:");
    assert_load_fails("node: a\nnode: b\n", "node", "duplicate key 'node'");
    assert_load_fails("", "", "empty");
    assert_load_fails("- a\n", "", "a mapping is expected");
    /* guest_uids' check: first + count below 2^31, count's default counted */
    assert_load_fails("guest_uids: {first: 2147473648}\n", "guest_uids", "2^31");
    assert_int_equal(load("guest_uids: {first: 2147473647}\n", &cfg, &err), 0);
    hd_config_free(&cfg);
}

/* docs/herdd.md's configuration table has a row for each key, "| `KEY`" or
 * "| `SECTION.KEY`", and no other; a bounded number's row says its bounds. */
static char *doc_config_section(void)
{
    static char doc[1 << 17];
    FILE *f = fopen("docs/herdd.md", "r");
    if (!f)
        f = fopen("../../docs/herdd.md", "r");
    if (!f)
        return NULL;
    doc[fread(doc, 1, sizeof(doc) - 1, f)] = 0;
    fclose(f);
    char *start = strstr(doc, "\n## Configuration\n"), *end;
    assert_non_null(start);
    end = strstr(start + 1, "\n## ");
    if (end)
        *end = 0;
    return start;
}

static const char *doc_row(const char *section, const struct hd_key *sec, const struct hd_key *k)
{
    char row[160];

    snprintf(row, sizeof(row), "\n| `%s` |", key_name(sec, k));
    return strstr(section, row);
}

static const char *doc;

/* the row's third column ("| key | type | default | meaning |"), without
 * backticks, is the key's default */
static bool doc_default_ok(const char *row, const struct hd_key *k)
{
    char def[128];
    uint64_t size;
    json_t *j;
    bool ok;

    if (sscanf(row, "\n| %*[^|]| %*[^|]| `%127[^`|]", def) != 1 &&
        sscanf(row, "\n| %*[^|]| %*[^|]| %127[^ |]", def) != 1)
        return false;
    switch (k->type) {
    case HD_KEY_STRING:
    case HD_KEY_PATH:
        return !strcmp(def, k->def_s);
    case HD_KEY_BOOL:
        return !strcmp(def, k->def ? "true" : "false");
    case HD_KEY_SIZE:
        ok = hd_parse_size(j = json_string(def), &size) == 0 && size == k->def;
        json_decref(j);
        return ok;
    case HD_KEY_CUSTOM:
        return true;
    default:
        return strtod(def, NULL) == k->def;
    }
}

static void key_documented(const struct hd_key *sec, const struct hd_key *k)
{
    const char *row = doc_row(doc, sec, k);
    char bounds[64] = "";

    if (!row)
        fail_msg("docs/herdd.md: no row for %s", key_name(sec, k));
    if (k->type == HD_KEY_COUNT || k->type == HD_KEY_SECONDS)
        snprintf(bounds, sizeof(bounds), "%.0f-%.0f", k->min, k->max);
    if (k->type == HD_KEY_DOUBLE)
        snprintf(bounds, sizeof(bounds), "(%g-%g]", k->min, k->max);
    const char *eol = strchr(row + 1, '\n');
    const char *at = bounds[0] ? strstr(row, bounds) : row;
    if (!at || (eol && at > eol))
        fail_msg("docs/herdd.md: the row of %s does not say %s", key_name(sec, k), bounds);
    if (!doc_default_ok(row, k))
        fail_msg("docs/herdd.md: the row of %s has another default", key_name(sec, k));
}

static void test_keys_documented(void **state)
{
    (void)state;
    doc = doc_config_section();
    if (!doc)
        skip();
    each_key(key_documented);
    for (const char *r = strstr(doc, "\n| `"); r; r = strstr(r + 1, "\n| `")) {
        char name[128];
        const char *dot;
        if (sscanf(r, "\n| `%127[^`]`", name) != 1)
            fail_msg("docs/herdd.md: a row without a key");
        dot = strchr(name, '.');
        const struct hd_key *k = hd_config_keys;
        while (k->name && strncmp(k->name, name, dot ? (size_t)(dot - name) : strlen(name) + 1))
            k++;
        if (!k->name || (dot && k->type != HD_KEY_SECTION) || (!dot && k->type == HD_KEY_SECTION))
            fail_msg("docs/herdd.md: %s is no key (or a section without its keys)", name);
        const struct hd_key *s = dot ? k->section->keys : NULL;
        while (s && s->name && strcmp(s->name, dot + 1))
            s++;
        if (dot && !s->name)
            fail_msg("docs/herdd.md: %s is no key", name);
    }
}

/* cluster: its values in the configuration; a node name fit for etcd's key */
static void test_cluster(void **state)
{
    struct hd_config cfg;
    struct hd_err err;
    (void)state;

    assert_int_equal(load("node: n1\ncluster:\n  endpoints: [http://10.0.0.1:2379, "
                          "https://10.0.0.2:2379/]\n  address: 10.0.0.5\n  ca: /etc/ca.pem\n"
                          "  cert: /etc/c.pem\n  key: /etc/k.pem\n",
                          &cfg, &err), 0);
    assert_int_equal(cfg.n_etcd, 2);
    assert_string_equal(cfg.etcd[1], "https://10.0.0.2:2379/");
    assert_string_equal(cfg.cluster_address, "10.0.0.5");
    assert_string_equal(cfg.etcd_ca, "/etc/ca.pem");
    assert_string_equal(cfg.etcd_cert, "/etc/c.pem");
    assert_string_equal(cfg.etcd_key, "/etc/k.pem");
    assert_int_equal(cfg.lease_ttl, 10);
    hd_config_free(&cfg);
    /* without cluster: no etcd at all */
    assert_int_equal(load("node: n1\n", &cfg, &err), 0);
    assert_int_equal(cfg.n_etcd, 0);
    assert_null(cfg.etcd);
    hd_config_free(&cfg);
    assert_load_fails("node: 'a b'\ncluster: {endpoints: [http://e:1], address: 1.2.3.4}\n",
                      "node", "node: 'a b' cannot name a node of a cluster");
    assert_load_fails("node: a/b\ncluster: {endpoints: [http://e:1], address: 1.2.3.4}\n",
                      "node", "cannot name a node");
    assert_int_equal(load("node: 'a b'\n", &cfg, &err), 0); /* alone: any name */
    hd_config_free(&cfg);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(hd_name_ok("web01"));
    assert_true(hd_name_ok("lab1-red-attacker-1"));
    assert_true(hd_name_ok("A.b_c-d"));
    assert_false(hd_name_ok(""));
    assert_false(hd_name_ok("-x"));
    assert_false(hd_name_ok(".x"));
    assert_false(hd_name_ok("a b"));
    assert_false(hd_name_ok("a/b"));
    assert_false(hd_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
    assert_true(hd_name_ok("012345678901234567890123456789012345678901234567890123456789012"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_scalars_are_typed),
        cmocka_unit_test(test_yaml_refusals),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_config_full),
        cmocka_unit_test(test_config_defaults_and_root),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_keys_bounds),
        cmocka_unit_test(test_keys_wrong_types),
        cmocka_unit_test(test_keys_defaults),
        cmocka_unit_test(test_keys_custom),
        cmocka_unit_test(test_keys_unknown_and_order),
        cmocka_unit_test(test_keys_documented),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
