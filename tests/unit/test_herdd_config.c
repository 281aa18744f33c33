/* herdd configuration: YAML read into JSON (types, duplicates, documents,
 * sizes), the config file's keys and their checks, uid -> roles, names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../ctl/herdd/herdd.h"

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
                          "capacity: {cpu_overcommit: 2.5, memory_fraction: 0.5}\n"
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
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
