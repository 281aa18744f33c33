/* Unit tests: herd/range_spec.h (range YAML spec parse, validate, expand). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "herd/range_spec.h"

static const char good[] =
    "range: lab1\n"
    "scenarios:\n"
    "  - name: red\n"
    "    roles:\n"
    "      - name: attacker\n"
    "        template: probe\n"
    "        count: 4\n"
    "        cpus: 2\n"
    "        mem: 128M\n"
    "        nics:\n"
    "          - {network: communication, segment: red-net}\n"
    "          - {network: management}\n"
    "      - name: c2\n"
    "        template: probe-v2.1\n"
    "        count: 1\n"
    "  - name: blue\n"
    "    roles:\n"
    "      - name: web\n"
    "        template: probe\n"
    "        count: 3\n"
    "        nics: []\n";

static struct range_spec *parse_ok(const char *yaml)
{
    struct range_spec *spec = NULL;
    struct range_err err;
    int rc = range_spec_parse(yaml, strlen(yaml), &spec, &err);
    if (rc)
        print_error("unexpected error %d: %s [field %s]\n", rc, err.msg, err.field);
    assert_int_equal(rc, 0);
    assert_non_null(spec);
    return spec;
}

/* Parses yaml, expects -EINVAL with the given field and a message containing
 * want (and starting with the field). */
static void parse_bad_rc(const char *yaml, size_t len, int want_rc, const char *field,
                         const char *want)
{
    struct range_spec *spec = (struct range_spec *)1;
    struct range_err err;
    int rc = range_spec_parse(yaml, len, &spec, &err);
    if (rc != want_rc || strcmp(err.field, field) || !strstr(err.msg, want))
        print_error("yaml:\n%s\n-> rc %d field '%s' msg '%s'; want rc %d field '%s' msg ~ '%s'\n",
                    yaml, rc, err.field, err.msg, want_rc, field, want);
    assert_int_equal(rc, want_rc);
    assert_null(spec);
    assert_string_equal(err.field, field);
    assert_non_null(strstr(err.msg, want));
    if (*field)
        assert_memory_equal(err.msg, field, strlen(field));
}

static void parse_bad(const char *yaml, const char *field, const char *want)
{
    parse_bad_rc(yaml, strlen(yaml), -EINVAL, field, want);
}

static void test_good(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(good);
    assert_string_equal(s->name, "lab1");
    assert_int_equal(s->n_scenarios, 2);
    assert_int_equal(s->n_guests, 8);
    const struct range_scenario *red = &s->scenarios[0];
    assert_string_equal(red->name, "red");
    assert_int_equal(red->n_roles, 2);
    const struct range_role *a = &red->roles[0];
    assert_string_equal(a->name, "attacker");
    assert_string_equal(a->template_name, "probe");
    assert_int_equal(a->count, 4);
    assert_int_equal(a->cpus, 2);
    assert_int_equal(a->mem, 128ULL << 20);
    assert_true(a->nics_set);
    assert_int_equal(a->n_nics, 2);
    assert_int_equal(a->nics[0].network, RANGE_NET_COMMUNICATION);
    assert_string_equal(a->nics[0].segment, "red-net");
    assert_int_equal(a->nics[1].network, RANGE_NET_MANAGEMENT);
    assert_string_equal(a->nics[1].segment, "");
    assert_int_equal(a->line, 5);
    const struct range_role *c2 = &red->roles[1];
    assert_string_equal(c2->template_name, "probe-v2.1");
    assert_int_equal(c2->cpus, 0);
    assert_int_equal(c2->mem, 0);
    assert_false(c2->nics_set);
    const struct range_role *web = &s->scenarios[1].roles[0];
    assert_true(web->nics_set);
    assert_int_equal(web->n_nics, 0);
    range_spec_free(s);
}

static void test_expand(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(good);
    struct range_guest *g;
    size_t n;
    assert_int_equal(range_spec_expand(s, &g, &n), 0);
    assert_int_equal(n, 8);
    static const char *const names[] = {
        "lab1-red-attacker-1", "lab1-red-attacker-2", "lab1-red-attacker-3",
        "lab1-red-attacker-4", "lab1-red-c2-1",       "lab1-blue-web-1",
        "lab1-blue-web-2",     "lab1-blue-web-3",
    };
    for (size_t i = 0; i < n; i++)
        assert_string_equal(g[i].name, names[i]);
    assert_ptr_equal(g[0].role, &s->scenarios[0].roles[0]);
    assert_ptr_equal(g[4].scenario, &s->scenarios[0]);
    assert_int_equal(g[3].index, 4);
    assert_int_equal(g[5].index, 1);
    assert_string_equal(g[5].role->template_name, "probe");
    free(g);

    char name[RANGE_GUEST_NAME_MAX + 1];
    assert_int_equal(range_guest_name(name, s, &s->scenarios[1], &s->scenarios[1].roles[0], 2), 0);
    assert_string_equal(name, "lab1-blue-web-2");
    assert_int_equal(range_guest_name(name, s, &s->scenarios[1], &s->scenarios[1].roles[0], 0), -EINVAL);
    assert_int_equal(range_guest_name(name, s, &s->scenarios[1], &s->scenarios[1].roles[0], 4), -EINVAL);
    range_spec_free(s);
}

static void test_longest_names(void **state)
{
    (void)state;
    const char *y =
        "range: abcdefghijklmnopqrstuvwx\n"
        "scenarios:\n"
        "- name: abcdefghijklmnop\n"
        "  roles:\n"
        "  - {name: qrstuvwxyz012345, template: t, count: 1000}\n";
    struct range_spec *s = parse_ok(y);
    struct range_guest *g;
    size_t n;
    assert_int_equal(range_spec_expand(s, &g, &n), 0);
    assert_int_equal(n, 1000);
    assert_string_equal(g[999].name, "abcdefghijklmnopqrstuvwx-abcdefghijklmnop-qrstuvwxyz012345-1000");
    assert_int_equal(strlen(g[999].name), RANGE_GUEST_NAME_MAX);
    free(g);
    range_spec_free(s);
}

/* JSON is accepted as YAML flow style (herdd may take either as a body). */
static void test_json_body(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(
        "{\"range\": \"lab1\", \"scenarios\": [{\"name\": \"red\", \"roles\": "
        "[{\"name\": \"a\", \"template\": \"probe\", \"count\": 3, \"mem\": \"64M\", "
        "\"nics\": [{\"network\": \"service\"}]}]}]}");
    assert_int_equal(s->n_guests, 3);
    assert_int_equal(s->scenarios[0].roles[0].mem, 64ULL << 20);
    range_spec_free(s);
    parse_bad("{\"range\": \"lab1\", \"scenarios\": [{\"name\": \"red\", \"roles\": "
              "[{\"name\": \"a\", \"template\": \"probe\", \"count\": \"3\"}]}]}",
              "scenarios[0].roles[0].count", "quoted string");
    parse_bad("{\"range\": \"lab1\", \"scenarios\": [{\"name\": \"red\", \"roles\": "
              "[{\"name\": \"a\", \"template\": \"probe\", \"count\": null}]}]}",
              "scenarios[0].roles[0].count", "got null");
}

static void test_example_file(void **state)
{
    (void)state;
    const char *root = getenv("HERD_ROOT");
    char path[4096];
    snprintf(path, sizeof(path), "%s/examples/range.yaml", root ? root : ".");
    struct range_spec *s = NULL;
    struct range_err err;
    int rc = range_spec_load(path, &s, &err);
    if (rc)
        print_error("%s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(s->n_scenarios, 2);
    assert_true(s->n_guests >= 12);
    struct range_guest *g;
    size_t n;
    assert_int_equal(range_spec_expand(s, &g, &n), 0);
    assert_int_equal(n, s->n_guests);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(g[i].role->template_name, "probe");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(g[i].name, g[j].name);
    }
    free(g);
    range_spec_free(s);

    /* the Debian range: addressing, DHCP, keys, a resource disk */
    snprintf(path, sizeof(path), "%s/examples/range-debian.yaml", root ? root : ".");
    rc = range_spec_load(path, &s, &err);
    if (rc)
        print_error("%s: %s\n", path, err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(s->n_scenarios, 2);
    assert_int_equal(s->n_guests, 5);
    assert_int_equal(s->n_ssh_keys, 1);
    assert_int_equal(s->n_subnets, 4);
    assert_true(s->subnets[3].dhcp);
    assert_string_equal(s->resources, "/var/lib/herd/images/range-debian");
    range_spec_free(s);

    rc = range_spec_load("/nonexistent/range.yaml", &s, &err);
    assert_int_equal(rc, -ENOENT);
    assert_null(s);
    assert_non_null(strstr(err.msg, "/nonexistent/range.yaml"));
}

#define HEAD "range: lab1\nscenarios:\n- name: red\n  roles:\n"
#define ROLE(extra) HEAD "  - name: a\n    template: probe\n    count: 1\n" extra

static void test_bad_document(void **state)
{
    (void)state;
    parse_bad("", "", "empty");
    parse_bad("# only a comment\n", "", "empty");
    parse_bad("- a\n- b\n", "", "expected a mapping");
    parse_bad("just a string\n", "", "expected a mapping");
    parse_bad("range: lab1\n", "scenarios", "required field is missing");
    parse_bad("scenarios: []\n", "range", "required field is missing");
    parse_bad("range: lab1\nscenarios: []\n", "scenarios", "at least one scenario");
    parse_bad("range: lab1\nscenarios: {}\n", "scenarios", "expected a list of scenarios, got a mapping");
    parse_bad("range: lab1\nscenarios:\n", "scenarios", "got null");
    parse_bad(HEAD "  - {name: a, template: t, count: 1}\nextra: 1\n", "extra",
              "unknown field (expected range, scenarios, networks, ssh_authorized_keys, resources, "
              "on_node_loss)");
    parse_bad("range: lab1\nrange: lab2\nscenarios: []\n", "range", "duplicate field");
    parse_bad("range: lab1\nscenarios: [\n", "", "YAML:");
    parse_bad("range: lab1\n  bad: indent\n", "", "YAML:");
    parse_bad("range: 'lab1\n", "", "YAML:");
    parse_bad("a: 1\n---\nb: 2\n", "", "only one document");
    parse_bad("{[a]: 1}\n", "", "keys must be plain strings");
    /* NUL in the input. */
    parse_bad_rc("range: la\0b1\n", 13, -EINVAL, "", "YAML:");
}

static void test_bad_names(void **state)
{
    (void)state;
    parse_bad("range: Lab1\nscenarios: []\n", "range", "'Lab1' is not a valid name");
    parse_bad("range: lab_1\nscenarios: []\n", "range", "not a valid name");
    parse_bad("range: -lab\nscenarios: []\n", "range", "not a valid name");
    parse_bad("range: lab-\nscenarios: []\n", "range", "not a valid name");
    parse_bad("range: ''\nscenarios: []\n", "range", "not a valid name");
    parse_bad("range: ~\nscenarios: []\n", "range", "expected a name, got null");
    parse_bad("range: [a]\nscenarios: []\n", "range", "expected a name, got a list");
    parse_bad("range: abcdefghijklmnopqrstuvwxy\nscenarios: []\n", "range",
              "longer than 24 characters");
    parse_bad("range: \"l\\u00e9b\"\nscenarios: []\n", "range", "not a valid name");
    parse_bad("range: \"la\\0b\"\nscenarios: []\n", "range", "NUL");
    parse_bad("range: lab1\nscenarios:\n- name: abcdefghijklmnopq\n  roles: []\n",
              "scenarios[0].name", "longer than 16 characters");
    parse_bad("range: lab1\nscenarios:\n- name: red\n  roles: []\n", "scenarios[0].roles",
              "at least one role");
    parse_bad(HEAD "  - {name: 'a b', template: t, count: 1}\n", "scenarios[0].roles[0].name",
              "'a b' is not a valid name");
    parse_bad(HEAD "  - {name: a, template: 'my template', count: 1}\n",
              "scenarios[0].roles[0].template", "not a valid template name");
    parse_bad(HEAD "  - {name: a, template: ../etc, count: 1}\n",
              "scenarios[0].roles[0].template", "not a valid template name");
    parse_bad(HEAD "  - {name: a, template: a/b, count: 1}\n",
              "scenarios[0].roles[0].template", "not a valid template name");
    parse_bad(HEAD "  - {name: a, template: "
                   "a123456789012345678901234567890123456789012345678901234567890123, count: 1}\n",
              "scenarios[0].roles[0].template", "longer than 63");
    parse_bad(ROLE("    nics: [{network: service, segment: Net}]\n"),
              "scenarios[0].roles[0].nics[0].segment", "not a valid name");
}

static void test_duplicates(void **state)
{
    (void)state;
    parse_bad("range: lab1\nscenarios:\n"
              "- {name: red, roles: [{name: a, template: t, count: 1}]}\n"
              "- {name: blue, roles: [{name: a, template: t, count: 1}]}\n"
              "- {name: red, roles: [{name: b, template: t, count: 1}]}\n",
              "scenarios[2].name", "duplicate scenario 'red' (also scenarios[0])");
    parse_bad(HEAD "  - {name: a, template: t, count: 1}\n  - {name: b, template: t, count: 1}\n"
                   "  - {name: a, template: t, count: 2}\n",
              "scenarios[0].roles[2].name", "duplicate role 'a'");
    /* "a-b" + "c" and "a" + "b-c" give the same guest names. */
    parse_bad("range: lab1\nscenarios:\n"
              "- {name: a-b, roles: [{name: c, template: t, count: 1}]}\n"
              "- {name: a, roles: [{name: x, template: t, count: 1}, {name: b-c, template: t, count: 1}]}\n",
              "scenarios[1].roles[1].name", "same names");
    parse_bad(ROLE("    count: 2\n"), "scenarios[0].roles[0].count", "duplicate field");
    parse_bad(ROLE("    nics: [{network: service, network: storage}]\n"),
              "scenarios[0].roles[0].nics[0].network", "duplicate field");
    /* Similar but distinct names are fine. */
    struct range_spec *s = parse_ok("range: lab1\nscenarios:\n"
                                    "- {name: a, roles: [{name: b, template: t, count: 1},"
                                    " {name: b-1, template: t, count: 1}]}\n");
    range_spec_free(s);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *cf = "scenarios[0].roles[0].count";
    parse_bad(HEAD "  - {name: a, template: t, count: 0}\n", cf, "0 is not in 1..1000");
    parse_bad(HEAD "  - {name: a, template: t, count: 1001}\n", cf, "1001 is not in 1..1000");
    parse_bad(HEAD "  - {name: a, template: t, count: -1}\n", cf, "-1 is not in 1..1000");
    parse_bad(HEAD "  - {name: a, template: t, count: -0}\n", cf, "-0 is not in 1..1000");
    parse_bad(HEAD "  - {name: a, template: t, count: 99999999999999999999999999}\n", cf,
              "99999999999999999999999999 is not in 1..1000");
    parse_bad(HEAD "  - {name: a, template: t, count: 18446744073709551617}\n", cf,
              "is not in 1..1000");
    parse_bad(HEAD "  - {name: a, template: t, count: 4.5}\n", cf, "expected an integer, got '4.5'");
    parse_bad(HEAD "  - {name: a, template: t, count: four}\n", cf, "expected an integer");
    parse_bad(HEAD "  - {name: a, template: t, count: '4'}\n", cf,
              "expected an integer, got a quoted string");
    parse_bad(HEAD "  - {name: a, template: t, count: true}\n", cf, "expected an integer");
    parse_bad(HEAD "  - {name: a, template: t, count: 0x10}\n", cf, "expected an integer");
    parse_bad(HEAD "  - {name: a, template: t, count: }\n", cf, "got null");
    parse_bad(HEAD "  - {name: a, template: t, count: [1]}\n", cf, "got a list");
    parse_bad(HEAD "  - {name: a, template: t, count: {n: 1}}\n", cf, "got a mapping");
    parse_bad(ROLE("    cpus: 0\n"), "scenarios[0].roles[0].cpus", "0 is not in 1..32");
    parse_bad(ROLE("    cpus: 33\n"), "scenarios[0].roles[0].cpus", "33 is not in 1..32");
    parse_bad(ROLE("    mem: 64X\n"), "scenarios[0].roles[0].mem", "'64X' is not a size");
    parse_bad(ROLE("    mem: M\n"), "scenarios[0].roles[0].mem", "not a size");
    parse_bad(ROLE("    mem: -64M\n"), "scenarios[0].roles[0].mem", "not a size");
    parse_bad(ROLE("    mem: 1M\n"), "scenarios[0].roles[0].mem", "1M is not in 4M..1T");
    parse_bad(ROLE("    mem: 2T\n"), "scenarios[0].roles[0].mem", "not in 4M..1T");
    parse_bad(ROLE("    mem: 99999999999999999999G\n"), "scenarios[0].roles[0].mem", "not in 4M..1T");
    parse_bad(ROLE("    mem: 17179869184G\n"), "scenarios[0].roles[0].mem", "not in 4M..1T");
    parse_bad(ROLE("    mem: 4194305\n"), "scenarios[0].roles[0].mem", "multiple of 4K");
    parse_bad(ROLE("    mem: [64M]\n"), "scenarios[0].roles[0].mem", "expected a size");

    struct range_spec *s = parse_ok(ROLE("    mem: 4194304\n    cpus: 32\n"));
    assert_int_equal(s->scenarios[0].roles[0].mem, 4ULL << 20);
    assert_int_equal(s->scenarios[0].roles[0].cpus, 32);
    range_spec_free(s);
    s = parse_ok(ROLE("    mem: \"1T\"\n"));
    assert_int_equal(s->scenarios[0].roles[0].mem, 1ULL << 40);
    range_spec_free(s);
    s = parse_ok(HEAD "  - {name: a, template: t, count: +1000}\n");
    assert_int_equal(s->scenarios[0].roles[0].count, 1000);
    range_spec_free(s);
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(range_parse_size("64M", &v), 0);
    assert_int_equal(v, 64ULL << 20);
    assert_int_equal(range_parse_size("64MiB", &v), 0);
    assert_int_equal(v, 64ULL << 20);
    assert_int_equal(range_parse_size("2GB", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(range_parse_size("8k", &v), 0);
    assert_int_equal(v, 8192);
    assert_int_equal(range_parse_size("512B", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(range_parse_size("3T", &v), 0);
    assert_int_equal(v, 3ULL << 40);
    assert_int_equal(range_parse_size("18446744073709551615", &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(range_parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(range_parse_size("16777216T", &v), -ERANGE);
    assert_int_equal(range_parse_size("16777215T", &v), 0);
    assert_int_equal(range_parse_size("", &v), -EINVAL);
    assert_int_equal(range_parse_size("G", &v), -EINVAL);
    assert_int_equal(range_parse_size("1.5G", &v), -EINVAL);
    assert_int_equal(range_parse_size("1GG", &v), -EINVAL);
    assert_int_equal(range_parse_size("1 G", &v), -EINVAL);
    assert_int_equal(range_parse_size("1m", &v), -EINVAL);
    assert_int_equal(range_parse_size("1Bx", &v), -EINVAL);
    assert_int_equal(range_parse_size(NULL, &v), -EINVAL);
}

static void test_names_and_networks(void **state)
{
    (void)state;
    assert_int_equal(range_name_check("a", 16), 0);
    assert_int_equal(range_name_check("a-1-b", 16), 0);
    assert_int_equal(range_name_check("0", 16), 0);
    assert_int_equal(range_name_check("", 16), -EINVAL);
    assert_int_equal(range_name_check(NULL, 16), -EINVAL);
    assert_int_equal(range_name_check("-a", 16), -EINVAL);
    assert_int_equal(range_name_check("a-", 16), -EINVAL);
    assert_int_equal(range_name_check("A", 16), -EINVAL);
    assert_int_equal(range_name_check("a.b", 16), -EINVAL);
    assert_int_equal(range_name_check("abcdefghijklmnopq", 16), -ENAMETOOLONG);
    enum range_network n;
    for (int i = 0; i < RANGE_NET_COUNT; i++) {
        assert_int_equal(range_network_parse(range_network_name((enum range_network)i), &n), 0);
        assert_int_equal(n, i);
    }
    assert_string_equal(range_network_name(RANGE_NET_SERVICE), "service");
    assert_null(range_network_name(RANGE_NET_COUNT));
    assert_int_equal(range_network_parse("Management", &n), -EINVAL);
    assert_int_equal(range_network_parse("mgmt", &n), -EINVAL);
    assert_int_equal(range_network_parse(NULL, &n), -EINVAL);
}

static void test_unknown_and_missing(void **state)
{
    (void)state;
    parse_bad(ROLE("    colour: red\n"), "scenarios[0].roles[0].colour",
              "unknown field (expected name, template, count, cpus, mem, nics, overrides, runcmd, "
              "node, spread)");
    parse_bad(ROLE("    Count: 1\n"), "scenarios[0].roles[0].Count", "unknown field");
    parse_bad("range: lab1\nscenarios:\n- name: red\n  roles: [{name: a, template: t, count: 1}]\n"
              "  color: 1\n", "scenarios[0].color", "unknown field (expected name, roles, resources)");
    parse_bad(ROLE("    nics: [{network: service, vlan: 4}]\n"), "scenarios[0].roles[0].nics[0].vlan",
              "unknown field (expected network, segment, addresses)");
    parse_bad(HEAD "  - {template: t, count: 1}\n", "scenarios[0].roles[0].name", "required");
    parse_bad(HEAD "  - {name: a, count: 1}\n", "scenarios[0].roles[0].template", "required");
    parse_bad(HEAD "  - {name: a, template: t}\n", "scenarios[0].roles[0].count", "required");
    parse_bad("range: lab1\nscenarios:\n- roles: []\n", "scenarios[0].name", "required");
    parse_bad("range: lab1\nscenarios:\n- name: r\n", "scenarios[0].roles", "required");
    parse_bad(ROLE("    nics: [{segment: x}]\n"), "scenarios[0].roles[0].nics[0].network", "required");
    parse_bad(ROLE("    nics: [{network: dmz}]\n"), "scenarios[0].roles[0].nics[0].network",
              "'dmz' is not a network (management, storage, service, communication)");
    parse_bad(ROLE("    nics: [service]\n"), "scenarios[0].roles[0].nics[0]", "expected a mapping");
    parse_bad(ROLE("    nics: {network: service}\n"), "scenarios[0].roles[0].nics", "expected a list");
    parse_bad(ROLE("    nics: [{network: a}, {network: a}, {network: a}, {network: a},"
                   " {network: a}, {network: a}, {network: a}, {network: a}, {network: a}]\n"),
              "scenarios[0].roles[0].nics", "9 NICs, more than 8");
    parse_bad(HEAD "  - 7\n", "scenarios[0].roles[0]", "expected a role (mapping), got a scalar");
    parse_bad("range: lab1\nscenarios: [x]\n", "scenarios[0]", "expected a scenario");
}

static void test_line_numbers(void **state)
{
    (void)state;
    struct range_spec *s;
    struct range_err err;
    const char *y = HEAD "  - name: a\n    template: t\n    count: 5000\n";
    assert_int_equal(range_spec_parse(y, strlen(y), &s, &err), -EINVAL);
    assert_int_equal(err.line, 7);
    assert_int_equal(err.column, 12);
    assert_non_null(strstr(err.msg, "(line 7, column 12)"));
    y = "range: lab1\nscenarios: [\n";
    assert_int_equal(range_spec_parse(y, strlen(y), &s, &err), -EINVAL);
    assert_true(err.line >= 2);
}

static void test_limits(void **state)
{
    (void)state;
    /* 11 roles of 1000 guests: over the range total. */
    char *y = malloc(8192);
    size_t o = (size_t)snprintf(y, 8192, HEAD);
    for (int i = 0; i < 11; i++)
        o += (size_t)snprintf(y + o, 8192 - o, "  - {name: r%d, template: t, count: 1000}\n", i);
    parse_bad(y, "scenarios[0].roles[10].count", "more than 10000 guests");
    /* exactly 10000 is fine */
    o = (size_t)snprintf(y, 8192, HEAD);
    for (int i = 0; i < 10; i++)
        o += (size_t)snprintf(y + o, 8192 - o, "  - {name: r%d, template: t, count: 1000}\n", i);
    struct range_spec *s = parse_ok(y);
    assert_int_equal(s->n_guests, 10000);
    struct range_guest *g;
    size_t n;
    assert_int_equal(range_spec_expand(s, &g, &n), 0);
    assert_int_equal(n, 10000);
    assert_string_equal(g[9999].name, "lab1-red-r9-1000");
    free(g);
    range_spec_free(s);
    free(y);

    /* 65 scenarios */
    size_t cap = 65 * 80 + 64;
    y = malloc(cap);
    o = (size_t)snprintf(y, cap, "range: lab1\nscenarios:\n");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(y + o, cap - o, "- {name: s%d, roles: [{name: a, template: t, count: 1}]}\n", i);
    parse_bad(y, "scenarios", "65 scenarios, more than 64");
    free(y);

    /* Over the byte limit: refused before parsing. */
    size_t big = RANGE_SPEC_BYTES_MAX + 1;
    y = malloc(big);
    memset(y, '#', big);
    parse_bad_rc(y, big, -EFBIG, "", "more than");
    free(y);

    /* Deep nesting. */
    cap = 4096;
    y = malloc(cap);
    o = (size_t)snprintf(y, cap, "range: lab1\nscenarios: ");
    for (int i = 0; i < 1000; i++)
        y[o++] = '[';
    y[o] = '\0';
    parse_bad(y, "", "nested too deeply");
    free(y);
}

static void test_anchors_aliases_tags(void **state)
{
    (void)state;
    parse_bad("range: lab1\nscenarios:\n- &s {name: red, roles: [{name: a, template: t, count: 1}]}\n- *s\n",
              "", "anchors");
    parse_bad("range: &r lab1\nscenarios: []\n", "", "anchors");
    parse_bad("range: lab1\nscenarios: *x\n", "", "YAML");
    parse_bad("range: !!str lab1\nscenarios: []\n", "", "tags");
    parse_bad("range: !custom lab1\nscenarios: []\n", "", "tags");
    /* The billion-laughs bomb: refused at the first anchor, no blow-up. */
    const char *bomb =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    parse_bad(bomb, "", "anchors");
    /* Merge keys need aliases: refused too. */
    parse_bad(HEAD "  - <<: *base\n    name: a\n", "", "YAML");
}

/* Every prefix of a good spec parses or fails cleanly (no crash, no leak, a
 * message), and so does every single-byte corruption. */
/* Every prefix of y (exactly l bytes, no terminator in the buffer) and
 * every single byte of y replaced by each of junk[0..njunk) parses or fails
 * cleanly (-EINVAL, a message, *out NULL): no crash, no leak under ASan.
 * A prefix that parses must expand to its n_guests. Both outcomes occur. */
static void parse_mangled(const char *y, const char *junk, size_t njunk)
{
    size_t len = strlen(y);
    char *buf = malloc(len + 1);
    int ok = 0, bad = 0;
    for (size_t l = 0; l <= len + njunk * len; l++) {
        size_t n = l <= len ? l : len;
        memcpy(buf, y, len);
        if (l > len) { /* the mangled copies: byte i gets junk[j] */
            size_t k = l - len - 1, i = k / njunk, j = k % njunk;
            if (i >= len)
                break;
            buf[i] = junk[j];
        }
        struct range_spec *s = (struct range_spec *)1;
        struct range_err err;
        int rc = range_spec_parse(buf, n, &s, &err);
        if (rc == 0) {
            assert_non_null(s);
            struct range_guest *g;
            size_t ng;
            assert_int_equal(range_spec_expand(s, &g, &ng), 0);
            assert_int_equal(ng, s->n_guests);
            free(g);
            range_spec_free(s);
            ok += l <= len;
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_null(s);
            assert_true(strlen(err.msg) > 0);
            bad += l <= len;
        }
    }
    assert_true(ok > 0);
    assert_true(bad > 0);
    free(buf);
}

static void test_truncations(void **state)
{
    (void)state;
    static const char junk[] = {'\0', ':', '-', '[', '{', '&', '*', '!', '\'', '"', '\n', ' ',
                                '\t', '#', '9', (char)0xff, (char)0xc3, '|', '>', '%', '@'};
    parse_mangled(good, junk, sizeof(junk));
}

/* ---- addressing: networks, nics[k].addresses, overrides ----------------- */

static const char good_addr[] =
    "range: lab2\n"
    "networks:\n"
    "  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1, ipv6: \"fd00:10::/64\"}\n"
    "  communication:\n"
    "    subnet: 10.20.0.0/24\n"
    "    segments:\n"
    "      red-net: {subnet: 10.20.1.0/24, gateway: 10.20.1.254}\n"
    "      blue-net: {subnet: 10.20.2.0/24, ipv6: \"fd00:20:2::/120\"}\n"
    "      plain: {}\n"
    "  storage: {}\n"
    "scenarios:\n"
    "  - name: red\n"
    "    roles:\n"
    "      - name: attacker\n"
    "        template: debian\n"
    "        count: 3\n"
    "        nics:\n"
    "          - {network: communication, segment: red-net}\n"
    "          - network: management\n"
    "            addresses: [10.10.0.50, 10.10.0.51,\n"
    "                        10.10.0.52]\n"
    "        overrides:\n"
    "          - {guest: 2, nic: 0, address: 10.20.1.99}\n"
    "          - {guest: 2, nic: 1, address: 10.10.0.9}\n"
    "      - name: c2\n"
    "        template: debian\n"
    "        count: 1\n";

static void assert_addr_is(const struct ipam_addr *a, const char *want)
{
    char buf[IPAM_ADDR_STR];
    ipam_addr_format(a, buf);
    assert_string_equal(buf, want);
}

static void assert_net_is(const struct ipam_net *n, const char *want)
{
    char buf[IPAM_NET_STR];
    ipam_net_format(n, buf);
    assert_string_equal(buf, want);
}

static void test_networks(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(good_addr);
    /* file order, a network's own subnet before its segments'; scopes
     * without a subnet ("plain", storage) have no entry */
    assert_int_equal(s->n_subnets, 4);
    const struct range_subnet *sn = &s->subnets[0];
    assert_int_equal(sn->network, RANGE_NET_MANAGEMENT);
    assert_string_equal(sn->segment, "");
    assert_net_is(&sn->v4, "10.10.0.0/24");
    assert_true(sn->has_gateway);
    assert_addr_is(&sn->gateway, "10.10.0.1");
    assert_true(sn->has_v6);
    assert_net_is(&sn->v6, "fd00:10::/64");
    assert_int_equal(sn->line, 3);
    sn = &s->subnets[1];
    assert_int_equal(sn->network, RANGE_NET_COMMUNICATION);
    assert_string_equal(sn->segment, "");
    assert_net_is(&sn->v4, "10.20.0.0/24");
    assert_false(sn->has_gateway);
    assert_false(sn->has_v6);
    sn = &s->subnets[2];
    assert_int_equal(sn->network, RANGE_NET_COMMUNICATION);
    assert_string_equal(sn->segment, "red-net");
    assert_net_is(&sn->v4, "10.20.1.0/24");
    assert_true(sn->has_gateway);
    assert_addr_is(&sn->gateway, "10.20.1.254");
    assert_false(sn->has_v6);
    assert_int_equal(sn->line, 7);
    sn = &s->subnets[3];
    assert_string_equal(sn->segment, "blue-net");
    assert_false(sn->has_gateway);
    assert_true(sn->has_v6);
    assert_net_is(&sn->v6, "fd00:20:2::/120");

    const struct range_role *a = &s->scenarios[0].roles[0];
    assert_int_equal(a->n_nics, 2);
    assert_null(a->nics[0].addresses);
    assert_null(a->nics[0].addr_line);
    assert_non_null(a->nics[1].addresses);
    assert_addr_is(&a->nics[1].addresses[0], "10.10.0.50");
    assert_addr_is(&a->nics[1].addresses[1], "10.10.0.51");
    assert_addr_is(&a->nics[1].addresses[2], "10.10.0.52");
    assert_int_equal(a->nics[1].addresses[2].family, AF_INET);
    assert_int_equal(a->nics[1].addr_line[0], 20);
    assert_int_equal(a->nics[1].addr_line[2], 21);
    assert_int_equal(a->n_overrides, 2);
    assert_int_equal(a->overrides[0].guest, 2);
    assert_int_equal(a->overrides[0].nic, 0);
    assert_addr_is(&a->overrides[0].address, "10.20.1.99");
    assert_int_equal(a->overrides[0].line, 23);
    assert_int_equal(a->overrides[1].nic, 1);
    assert_addr_is(&a->overrides[1].address, "10.10.0.9");
    const struct range_role *c2 = &s->scenarios[0].roles[1];
    assert_int_equal(c2->n_overrides, 0);
    assert_null(c2->overrides);
    range_spec_free(s);

    /* without networks: no subnets; the syntax level does not look for a
     * subnet behind an explicit address (range_addr does) */
    s = parse_ok(ROLE("    nics: [{network: service, addresses: [192.0.2.7]}]\n"));
    assert_int_equal(s->n_subnets, 0);
    assert_addr_is(&s->scenarios[0].roles[0].nics[0].addresses[0], "192.0.2.7");
    range_spec_free(s);
    /* the IPv6 prefix may have exactly as many hosts as needed */
    s = parse_ok("range: lab1\nnetworks:\n  service: {subnet: 10.0.0.0/16, ipv6: \"fd00::/112\"}\n"
                 "scenarios:\n- {name: r, roles: [{name: a, template: t, count: 1}]}\n");
    assert_int_equal(s->n_subnets, 1);
    assert_int_equal(s->subnets[0].v6.len, 112);
    range_spec_free(s);
}

#define NETS(x)                                                                    \
    "range: lab1\nnetworks:\n" x                                                    \
    "scenarios:\n- name: red\n  roles:\n  - {name: a, template: t, count: 3}\n"

static void test_networks_refused(void **state)
{
    (void)state;
    parse_bad("range: lab1\nnetworks: [management]\n"
              "scenarios:\n- {name: r, roles: [{name: a, template: t, count: 1}]}\n",
              "networks", "expected a mapping of network names, got a list");
    parse_bad(NETS("  dmz: {subnet: 10.0.0.0/24}\n"), "networks.dmz",
              "'dmz' is not a network (management, storage, service, communication)");
    parse_bad(NETS("  Management: {subnet: 10.0.0.0/24}\n"), "networks.Management",
              "is not a network");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/24}\n  storage: {subnet: 10.1.0.0/24}\n"
                   "  management: {subnet: 10.2.0.0/24}\n"),
              "networks.management", "duplicate network");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/24, vlan: 3}\n"), "networks.management.vlan",
              "unknown field (expected subnet, gateway, ipv6, dhcp, segments)");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/24, subnet: 10.1.0.0/24}\n"),
              "networks.management.subnet", "duplicate field");
    parse_bad(NETS("  management: 10.0.0.0/24\n"), "networks.management",
              "expected a mapping {subnet, gateway, ipv6, dhcp, segments}, got a scalar");
    parse_bad(NETS("  management:\n"), "networks.management", "got null");
    /* segments */
    parse_bad(NETS("  communication: {segments: [red]}\n"), "networks.communication.segments",
              "expected a mapping of segment names, got a list");
    parse_bad(NETS("  communication:\n    segments:\n      Red: {subnet: 10.0.0.0/24}\n"),
              "networks.communication.segments.Red", "'Red' is not a valid name");
    parse_bad(NETS("  communication:\n    segments:\n      red_net: {subnet: 10.0.0.0/24}\n"),
              "networks.communication.segments.red_net", "not a valid name");
    parse_bad(NETS("  communication:\n    segments:\n      abcdefghijklmnopq: {subnet: 10.0.0.0/24}\n"),
              "networks.communication.segments.abcdefghijklmnopq", "longer than 16 characters");
    parse_bad(NETS("  communication:\n    segments:\n      red: {subnet: 10.0.0.0/24}\n"
                   "      blue: {subnet: 10.1.0.0/24}\n      red: {subnet: 10.2.0.0/24}\n"),
              "networks.communication.segments.red", "duplicate segment");
    parse_bad(NETS("  communication:\n    segments:\n"
                   "      red: {subnet: 10.0.0.0/24, segments: {x: {subnet: 10.1.0.0/24}}}\n"),
              "networks.communication.segments.red.segments",
              "unknown field (expected subnet, gateway, ipv6, dhcp)");
    parse_bad(NETS("  communication:\n    segments:\n      red: {subnet: 10.0.0.0/24}\n"
                   "      blue: {subnet: 10.1.0.5/24}\n"),
              "networks.communication.segments.blue.subnet", "host bits are set");
    /* dhcp */
    parse_bad(NETS("  management: {subnet: 10.0.0.0/24, dhcp: yes}\n"), "networks.management.dhcp",
              "expected true or false, got 'yes'");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/24, dhcp: \"true\"}\n"),
              "networks.management.dhcp", "expected true or false, got 'true'");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/24, dhcp: 1}\n"), "networks.management.dhcp",
              "expected true or false");
    parse_bad(NETS("  management: {dhcp: true}\n"), "networks.management.subnet",
              "required field is missing");
    /* subnets */
    parse_bad(NETS("  management: {subnet: 10.10.0.5/24}\n"), "networks.management.subnet",
              "10.10.0.5/24: host bits are set (the subnet is 10.10.0.0/24)");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/8}\n"), "networks.management.subnet",
              "10.0.0.0/8: an IPv4 subnet must be /16 to /30");
    parse_bad(NETS("  management: {subnet: 10.0.0.0/31}\n"), "networks.management.subnet",
              "must be /16 to /30");
    parse_bad(NETS("  management: {subnet: 10.0.0.0}\n"), "networks.management.subnet",
              "not an IPv4 subnet");
    parse_bad(NETS("  management: {subnet: \"fd00::/64\"}\n"), "networks.management.subnet",
              "not an IPv4 subnet");
    parse_bad(NETS("  management: {subnet: [10.0.0.0/24]}\n"), "networks.management.subnet",
              "expected an IPv4 subnet");
    /* gateways */
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, gateway: 10.11.0.1}\n"),
              "networks.management.gateway", "10.11.0.1 is not a host address of 10.10.0.0/24");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.0}\n"),
              "networks.management.gateway", "10.10.0.0 is not a host address of 10.10.0.0/24");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.255}\n"),
              "networks.management.gateway", "10.10.0.255 is not a host address");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1/24}\n"),
              "networks.management.gateway", "'10.10.0.1/24' is not an IPv4 address");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, gateway: 010.10.0.1}\n"),
              "networks.management.gateway", "is not an IPv4 address");
    parse_bad(NETS("  management: {gateway: 10.10.0.1}\n"), "networks.management.subnet",
              "required field is missing");
    parse_bad(NETS("  management: {ipv6: \"fd00::/64\"}\n"), "networks.management.subnet",
              "required field is missing");
    parse_bad(NETS("  communication:\n    segments:\n      red: {gateway: 10.0.0.1}\n"),
              "networks.communication.segments.red.subnet", "required field is missing");
    /* IPv6 prefixes */
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, ipv6: \"fd00::/121\"}\n"),
              "networks.management.ipv6",
              "fd00::/121 has fewer host addresses than the subnet 10.10.0.0/24");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/16, ipv6: \"fd00::/113\"}\n"),
              "networks.management.ipv6", "has fewer host addresses than the subnet 10.10.0.0/16");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, ipv6: \"fd00::/40\"}\n"),
              "networks.management.ipv6", "must be /48 to /126");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, ipv6: \"fd00::5/64\"}\n"),
              "networks.management.ipv6", "host bits are set");
    parse_bad(NETS("  management: {subnet: 10.10.0.0/24, ipv6: 10.11.0.0/24}\n"),
              "networks.management.ipv6", "not an IPv6 subnet");
    /* at most RANGE_SUBNETS_MAX scopes with a subnet */
    size_t cap = 8192, o;
    char *y = malloc(cap);
    for (int total = 64; total <= 65; total++) {
        o = (size_t)snprintf(y, cap, "range: lab1\nnetworks:\n  communication:\n    segments:\n");
        for (int i = 0; i < total; i++)
            o += (size_t)snprintf(y + o, cap - o, "      s%d: {subnet: 10.%d.0.0/24}\n", i, i);
        snprintf(y + o, cap - o, "scenarios:\n- {name: r, roles: [{name: a, template: t, count: 1}]}\n");
        if (total == 64) {
            struct range_spec *s = parse_ok(y);
            assert_int_equal(s->n_subnets, 64);
            assert_string_equal(s->subnets[63].segment, "s63");
            range_spec_free(s);
        } else {
            parse_bad(y, "networks.communication.segments.s64",
                      "more than 64 networks and segments with a subnet");
        }
    }
    free(y);
    /* networks is checked after the scenarios */
    parse_bad("range: lab1\nnetworks:\n  dmz: {}\n"
              "scenarios:\n- {name: r, roles: [{name: a, template: t, count: 0}]}\n",
              "scenarios[0].roles[0].count", "0 is not in 1..1000");
}

#define ROLE3(extra) HEAD "  - name: a\n    template: probe\n    count: 3\n" extra

static void test_addresses_refused(void **state)
{
    (void)state;
    const char *f = "scenarios[0].roles[0].nics[0].addresses";
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1, 10.0.0.2]}]\n"), f,
              "2 addresses for 3 guests (give one per guest, or none)");
    parse_bad(ROLE3("    nics: [{network: management,\n"
                    "            addresses: [10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4]}]\n"),
              f, "4 addresses for 3 guests");
    parse_bad(ROLE3("    nics: [{network: management, addresses: []}]\n"), f,
              "0 addresses for 3 guests");
    parse_bad(ROLE3("    nics: [{network: management, addresses: 10.0.0.1}]\n"), f,
              "expected a list of IPv4 addresses, one per guest, got a scalar");
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1, foo, 10.0.0.3]}]\n"),
              "scenarios[0].roles[0].nics[0].addresses[1]",
              "'foo' is not an IPv4 address (expected e.g. 10.1.0.5)");
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1, 10.0.0.2, \"fd00::3\"]}]\n"),
              "scenarios[0].roles[0].nics[0].addresses[2]", "'fd00::3' is not an IPv4 address");
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1/24, 10.0.0.2, 10.0.0.3]}]\n"),
              "scenarios[0].roles[0].nics[0].addresses[0]", "is not an IPv4 address");
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1, [10.0.0.2], 10.0.0.3]}]\n"),
              "scenarios[0].roles[0].nics[0].addresses[1]", "expected an IPv4 address, got a list");
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1, ~, 10.0.0.3]}]\n"),
              "scenarios[0].roles[0].nics[0].addresses[1]", "got null");
    parse_bad(ROLE3("    nics: [{network: management, addresses: [10.0.0.1, 10.0.0.2, 10.0.0.1]}]\n"),
              "scenarios[0].roles[0].nics[0].addresses[2]", "duplicate address (also [0])");
    parse_bad(ROLE3("    nics:\n"
                    "      - {network: management, addresses: [10.0.0.1, 10.0.0.2, 10.0.0.3]}\n"
                    "      - {network: storage, addresses: [10.1.0.1, 10.1.0.1, 10.1.0.3]}\n"),
              "scenarios[0].roles[0].nics[1].addresses[1]", "duplicate address (also [0])");
    /* The same address in two NICs' lists is the plan's business, not the
     * syntax's (they may be on different networks). */
    struct range_spec *s =
        parse_ok(ROLE3("    nics:\n"
                       "      - {network: management, addresses: [10.0.0.1, 10.0.0.2, 10.0.0.3]}\n"
                       "      - {network: storage, addresses: [10.0.0.1, 10.0.0.2, 10.0.0.3]}\n"));
    range_spec_free(s);
}

static void test_overrides_refused(void **state)
{
    (void)state;
#define NICS2 "    nics: [{network: management}, {network: storage}]\n"
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 0, nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].guest", "0 is not in 1..3");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 4, nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].guest", "4 is not in 1..3");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: -1, nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].guest", "-1 is not in 1..3");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: '1', nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].guest", "quoted string");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 1, nic: 2, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].nic", "2 is not in 0..1");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 1, nic: -1, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].nic", "is not in 0..1");
    parse_bad(ROLE3("    overrides: [{guest: 1, nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].nic", "the role lists no nics to override");
    parse_bad(ROLE3("    nics: []\n    overrides: [{guest: 1, nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].nic", "the role lists no nics to override");
    /* overrides before nics in the file: nics still count */
    parse_bad(ROLE3("    overrides: [{guest: 1, nic: 1, address: 10.0.0.5}]\n"
                    "    nics: [{network: management}]\n"),
              "scenarios[0].roles[0].overrides[0].nic", "1 is not in 0..0");
    parse_bad(ROLE3(NICS2 "    overrides:\n"
                    "      - {guest: 2, nic: 0, address: 10.0.0.5}\n"
                    "      - {guest: 2, nic: 1, address: 10.1.0.5}\n"
                    "      - {guest: 2, nic: 0, address: 10.0.0.6}\n"),
              "scenarios[0].roles[0].overrides[2]",
              "guest 2 nic 0 is overridden twice (also [0])");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 1, nic: 0, address: 10.0.0.5, vlan: 3}]\n"),
              "scenarios[0].roles[0].overrides[0].vlan",
              "unknown field (expected guest, nic, address)");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 1, nic: 0}]\n"),
              "scenarios[0].roles[0].overrides[0].address", "required field is missing");
    parse_bad(ROLE3(NICS2 "    overrides: [{nic: 0, address: 10.0.0.5}]\n"),
              "scenarios[0].roles[0].overrides[0].guest", "required field is missing");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 1, nic: 0, address: 10.0.0}]\n"),
              "scenarios[0].roles[0].overrides[0].address", "'10.0.0' is not an IPv4 address");
    parse_bad(ROLE3(NICS2 "    overrides: [{guest: 1, nic: 0, address: 10.0.0.5, guest: 2}]\n"),
              "scenarios[0].roles[0].overrides[0].guest", "duplicate field");
    parse_bad(ROLE3(NICS2 "    overrides: {guest: 1, nic: 0, address: 10.0.0.5}\n"),
              "scenarios[0].roles[0].overrides", "expected a list of overrides, got a mapping");
    parse_bad(ROLE3(NICS2 "    overrides: [7]\n"), "scenarios[0].roles[0].overrides[0]",
              "expected a mapping {guest: N, nic: K, address: A}");
#undef NICS2
    /* one override per (guest, nic), different pairs are fine */
    struct range_spec *s = parse_ok(ROLE3("    nics: [{network: management}, {network: storage}]\n"
                                          "    overrides:\n"
                                          "      - {guest: 1, nic: 1, address: 10.0.0.5}\n"
                                          "      - {guest: 3, nic: 1, address: 10.0.0.5}\n"
                                          "      - {guest: 1, nic: 0, address: 10.0.0.6}\n"));
    assert_int_equal(s->scenarios[0].roles[0].n_overrides, 3);
    assert_int_equal(s->scenarios[0].roles[0].overrides[1].guest, 3);
    range_spec_free(s);
}

/* Specs with addressing that fail at every stage free what they allocated
 * (the sanitizer build reports a leak otherwise). */
static void test_addressing_frees(void **state)
{
    (void)state;
#define ADDR_ROLE(n)                                                                   \
    "  - name: " n "\n    template: t\n    count: 2\n"                                  \
    "    nics:\n"                                                                       \
    "      - {network: management, addresses: [10.0.0.1, 10.0.0.2]}\n"                \
    "      - {network: storage, addresses: [10.1.0.1, 10.1.0.2]}\n"                    \
    "    overrides: [{guest: 1, nic: 0, address: 10.0.0.9}]\n"
    /* halfway through a role's (second) addresses list */
    parse_bad(HEAD ADDR_ROLE("a")
              "  - name: b\n    template: t\n    count: 3\n"
              "    nics:\n"
              "      - {network: management, addresses: [10.0.0.3, 10.0.0.4, 10.0.0.5]}\n"
              "      - {network: storage, addresses: [10.1.0.3, 10.1.0.4, bad]}\n",
              "scenarios[0].roles[1].nics[1].addresses[2]", "'bad' is not an IPv4 address");
    /* a duplicate inside the list */
    parse_bad(HEAD ADDR_ROLE("a")
              "  - name: b\n    template: t\n    count: 3\n"
              "    nics: [{network: management, addresses: [10.0.0.3, 10.0.0.3, 10.0.0.5]}]\n",
              "scenarios[0].roles[1].nics[0].addresses[1]", "duplicate address");
    /* in the overrides, after the addresses */
    parse_bad(HEAD ADDR_ROLE("a")
              "  - name: b\n    template: t\n    count: 2\n"
              "    nics: [{network: management, addresses: [10.0.0.3, 10.0.0.4]}]\n"
              "    overrides:\n"
              "      - {guest: 1, nic: 0, address: 10.0.0.7}\n"
              "      - {guest: 2, nic: 0, address: x}\n",
              "scenarios[0].roles[1].overrides[1].address", "not an IPv4 address");
    /* a later NIC refused after an earlier one's list */
    parse_bad(HEAD "  - name: a\n    template: t\n    count: 2\n"
              "    nics:\n"
              "      - {network: management, addresses: [10.0.0.1, 10.0.0.2]}\n"
              "      - {network: dmz}\n",
              "scenarios[0].roles[0].nics[1].network", "'dmz' is not a network");
    /* a duplicate role name after the role's own lists */
    parse_bad(HEAD ADDR_ROLE("a") ADDR_ROLE("a"), "scenarios[0].roles[1].name",
              "duplicate role 'a'");
    /* a later scenario, the guest-name check, and networks, after all roles */
    parse_bad("range: lab1\nscenarios:\n- name: red\n  roles:\n" ADDR_ROLE("a")
              "- name: blue\n  roles:\n" ADDR_ROLE("a") "  - {name: b, template: t, count: x}\n",
              "scenarios[1].roles[1].count", "expected an integer");
    parse_bad("range: lab1\nscenarios:\n- name: a-b\n  roles:\n" ADDR_ROLE("c")
              "- name: a\n  roles:\n" ADDR_ROLE("b-c"),
              "scenarios[1].roles[0].name", "same names");
    parse_bad("range: lab1\nnetworks:\n  management: {subnet: 10.0.0.0/24}\n"
              "  communication:\n    segments:\n      red: {subnet: 10.2.0.0/24}\n"
              "      blue: {subnet: 10.3.0.0/24, gateway: 10.4.0.1}\n"
              "scenarios:\n- name: red\n  roles:\n" ADDR_ROLE("a"),
              "networks.communication.segments.blue.gateway", "is not a host address");
    /* and the good one */
    struct range_spec *s = parse_ok("range: lab1\nnetworks:\n  management: {subnet: 10.0.0.0/24}\n"
                                    "scenarios:\n- name: red\n  roles:\n" ADDR_ROLE("a")
                                    ADDR_ROLE("b"));
    assert_int_equal(s->scenarios[0].n_roles, 2);
    assert_int_equal(s->n_subnets, 1);
    range_spec_free(s);
#undef ADDR_ROLE
}

/* test_truncations for the addressing spec: every prefix and single-byte
 * corruption parses or fails cleanly, without a leak. */
static void test_addressing_truncations(void **state)
{
    (void)state;
    static const char junk[] = {'\0', ':', '[', '{', ',', '/', '.', '9', 'x', ' ', '\n', '"'};
    parse_mangled(good_addr, junk, sizeof(junk));
}

/* ---- cloud-init: ssh_authorized_keys, roles[j].runcmd ------------------- */

/* Real public keys (ssh-keygen -t ed25519 / rsa -b 2048 / ecdsa -b 256|384|521);
 * the sk- ones are hand-built blobs of the right shape (no token needed). */
#define KEY_ED25519                                                                  \
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJPBAtyXxLYbVC1LRljSqQVTA4xmFioevki/jbPnZJtF " \
    "user@host-ed25519"
#define KEY_RSA                                                                        \
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC/PLK6H/T4XrBq10vueDKtMr/IgSmUxXFANqvrww0XWH86yptj" \
    "//cRmU0j15siliHjU5nFYCboYWvm/1Nh8xUt0YCf3eQ4yqrzXXo3yWCyI2JcfFbAfjSEbo5TICDX2C3gZ1+vlEN5" \
    "divR2qGeKmKzETNPYuZrx7ZVAkFVD8WcPEVbr7xIWxu8vBeIdSwKg4IDGEmeE6MGYyMN2tImiBDDik/KAAUvIpwD" \
    "AUfUHYVnX2VToxQ/fPVF9S8rcpO5duYaGvaWResKm3mys9f1Xz4kyJXvnmpu/ycSURxVGovWIK6rYvVrdlvXj5moT" \
    "6fozho66ZgSta1kfPoNxGacBl05 user@host-rsab2048"
#define KEY_P256                                                                       \
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFHDfBo6So0yccdC" \
    "CQEBnZFdHtT1lFdQwFzHtI4z0xPIjkbVhOrqgsFDcP36VfL0/U0HMULwrxlVIVVLgVQlJoc= user@host-ecdsab256"
#define KEY_P384                                                                       \
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBLOLFx09HeLVZ/YY" \
    "IrNF029d80Bv+etMeZCBB+wN/qV0IOvACt21pRNatrsmIS/9/ROEwvvmTNpJvjvVG05yWJyH9S6jZw4/BG8bmvgz" \
    "eModxG6mXczgaiD0dwvS018ksw== user@host-ecdsab384"
#define KEY_P521                                                                       \
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAD8uBZT3G5jK2pC" \
    "5GK65mr2M5ZtkNWUDalkTaisclI85HBugnoTSvcT3munZnIh/zv3+lW1XNJZ/p+OxMEecNhtPABzivuwMKVTM/Kn" \
    "40vn+44j94GeGYV4F1K64VPrdFH5B+QTMIuTelyMUNqkUX5W3vs9ZUcsn7b+1b5RUEtcAE+KVA== " \
    "user@host-ecdsab521"
#define KEY_SK_ED25519                                                                 \
    "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAECAwQFBgcICQoLDA0O" \
    "DxAREhMUFRYXGBkaGxwdHh8gAAAABHNzaDo="
#define KEY_SK_P256                                                                    \
    "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAA" \
    "IbmlzdHAyNTYAAABBBAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0" \
    "NTY3ODk6Ozw9Pj8AAAAEc3NoOg== yubikey 5"
/* base64 of ssh-ed25519 blobs with a 31-byte key and with a trailing byte */
#define B64_ED_SHORT "AAAAC3NzaC1lZDI1NTE5AAAAHwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define B64_ED_LONG "AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gAA=="
#define B64_ED "AAAAC3NzaC1lZDI1NTE5AAAAIJPBAtyXxLYbVC1LRljSqQVTA4xmFioevki/jbPnZJtF"
#define B64_DSS "AAAAB3NzaC1kc3MAAAAUAQEBAQEBAQEBAQEBAQEBAQEBAQE="

static void key_ok(const char *line)
{
    char why[160] = "untouched";
    int rc = range_ssh_key_check(line, why, sizeof(why));
    if (rc)
        print_error("key '%s' -> %d '%s'\n", line, rc, why);
    assert_int_equal(rc, 0);
}

static void key_bad(const char *line, const char *want)
{
    char why[160] = "";
    int rc = range_ssh_key_check(line, why, sizeof(why));
    if (rc != -EINVAL || !strstr(why, want))
        print_error("key '%s' -> %d '%s'; want '%s'\n", line ? line : "(null)", rc, why, want);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(why, want));
    assert_null(strchr(why, '\n'));
}

static void test_ssh_key_check(void **state)
{
    (void)state;
    key_ok(KEY_ED25519);
    key_ok(KEY_RSA);
    key_ok(KEY_P256);
    key_ok(KEY_P384);
    key_ok(KEY_P521);
    key_ok(KEY_SK_ED25519);
    key_ok(KEY_SK_P256);
    key_ok("ssh-ed25519 " B64_ED);                      /* no comment */
    key_ok("ssh-ed25519 " B64_ED " ");                  /* trailing space */
    key_ok("ssh-ed25519  " B64_ED "  two  spaces ~!#$%^&*()'\"{}[]<>?/\\|`=+;:,.");
    /* no why buffer: still the right answer */
    assert_int_equal(range_ssh_key_check(KEY_ED25519, NULL, 0), 0);
    assert_int_equal(range_ssh_key_check("ssh-dss " B64_DSS, NULL, 0), -EINVAL);
    char tiny[8];
    assert_int_equal(range_ssh_key_check("ssh-dss " B64_DSS, tiny, sizeof(tiny)), -EINVAL);
    assert_string_equal(tiny, "unknown");

    const char *nk = "not an OpenSSH public key (expected TYPE BASE64 [COMMENT])";
    key_bad(NULL, nk);
    key_bad("", nk);
    key_bad("   ", nk);
    key_bad("ssh-ed25519", nk);
    key_bad("ssh-ed25519 ", nk);
    key_bad(" " KEY_ED25519, nk);
    key_bad("command=\"ls\" " KEY_ED25519, nk);   /* authorized_keys options */
    key_bad("-----BEGIN OPENSSH PRIVATE KEY-----", nk);
    key_bad("ssh-dss " B64_DSS " old", "unknown key type 'ssh-dss'");
    key_bad("SSH-ED25519 " B64_ED, "unknown key type 'SSH-ED25519'");
    key_bad("ssh-ed448 " B64_ED, "unknown key type 'ssh-ed448'");
    key_bad(B64_ED " user@host", nk);   /* the type left out */
    key_bad("abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij " B64_ED,
            "unknown key type 'abcdefghij-abcdefghij-abcdefghij-abcdefg'");
    /* base64: alphabet, length, padding, canonical trailing bits */
    const char *nb = "the key data is not base64";
    key_bad("ssh-ed25519 " B64_ED "!", nb);
    key_bad("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJPBAtyXxLYbVC1LRljSqQVTA4xmFioevki_jbPnZJtF", nb);
    key_bad("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJPBAtyXxLYbVC1LRljSqQVTA4xmFioevki/jbPnZJt", nb);
    key_bad("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJPBAtyXxLYbVC1LRljSqQVTA4xmFioevki/jbPnZJtF=", nb);
    key_bad("ssh-ed25519 AAA=AAAA", nb);
    key_bad("ssh-ed25519 AA==AAAA", nb);
    key_bad("ssh-ed25519 A===", nb);
    key_bad("ssh-ed25519 ====", nb);
    key_bad("ssh-ed25519 AAB=", nb);   /* unused bits set */
    key_bad("ssh-ed25519 AB==", nb);
    key_bad("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFHDfBo6So0yccdC"
            "CQEBnZFdHtT1lFdQwFzHtI4z0xPIjkbVhOrqgsFDcP36VfL0/U0HMULwrxlVIVVLgVQlJoc user", nb);
    /* blob vs type */
    key_bad("ssh-rsa " B64_ED " x", "the key data does not match its type ssh-rsa");
    key_bad("ssh-ed25519 " B64_DSS, "the key data does not match its type ssh-ed25519");
    key_bad("ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFHDfBo6So0yccdC"
            "CQEBnZFdHtT1lFdQwFzHtI4z0xPIjkbVhOrqgsFDcP36VfL0/U0HMULwrxlVIVVLgVQlJoc=",
            "the key data does not match its type ecdsa-sha2-nistp384");
    key_bad("ssh-ed25519 AAAA", "the key data does not match its type ssh-ed25519");
    key_bad("ssh-ed25519 /////yBzc2gtZWQyNTUxOQ==", "does not match its type ssh-ed25519");
    key_bad("ssh-ed25519 " B64_ED_SHORT, "does not match its type ssh-ed25519 (50 bytes, expected 51)");
    key_bad("ssh-ed25519 " B64_ED_LONG, "does not match its type ssh-ed25519 (52 bytes, expected 51)");
    /* 51 bytes, but the key string's length says 31 */
    key_bad("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAHwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",
            "the key data does not match its type ssh-ed25519");
    key_bad("sk-ssh-ed25519@openssh.com " B64_ED,
            "does not match its type sk-ssh-ed25519@openssh.com");
    /* one line, printable ASCII */
    const char *cc = "control character";
    key_bad(KEY_ED25519 "\n", cc);
    key_bad(KEY_ED25519 "\n" KEY_RSA, cc);
    key_bad("ssh-ed25519\t" B64_ED, cc);
    key_bad("ssh-ed25519 " B64_ED " a\rb", cc);
    key_bad("ssh-ed25519 " B64_ED " del\x7f", cc);
    key_bad("ssh-ed25519 " B64_ED " j\xc3\xbcrgen@host", "the comment is not printable ASCII");
    key_bad("ssh-ed25519\xc2\xa0" B64_ED, nk);

    /* at most 8192 bytes: pad the comment */
    char *big = malloc(8194);
    size_t l = strlen(KEY_ED25519);
    memcpy(big, KEY_ED25519, l);
    memset(big + l, 'x', 8192 - l);
    big[8192] = '\0';
    key_ok(big);
    big[8192] = 'x';
    big[8193] = '\0';
    key_bad(big, "the key is longer than 8192 bytes");
    free(big);
}

#define KEYS_HEAD "range: lab1\nscenarios:\n- name: red\n  roles: [{name: a, template: t, count: 1}]\n"

static void test_ssh_keys_spec(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(KEYS_HEAD
                                    "ssh_authorized_keys:\n"
                                    "  - " KEY_ED25519 "\n"
                                    "  - '" KEY_RSA "'\n"
                                    "  - \"" KEY_P256 "\"\n"
                                    "  - " KEY_P384 "\n"
                                    "  - " KEY_P521 "\n"
                                    "  - " KEY_SK_ED25519 "\n"
                                    "  - " KEY_SK_P256 "\n");
    assert_int_equal(s->n_ssh_keys, 7);
    assert_string_equal(s->ssh_keys[0], KEY_ED25519);
    assert_string_equal(s->ssh_keys[1], KEY_RSA);
    assert_string_equal(s->ssh_keys[2], KEY_P256);
    assert_string_equal(s->ssh_keys[6], KEY_SK_P256);
    range_spec_free(s);

    s = parse_ok(KEYS_HEAD);
    assert_int_equal(s->n_ssh_keys, 0);
    assert_null(s->ssh_keys);
    range_spec_free(s);
    s = parse_ok(KEYS_HEAD "ssh_authorized_keys: []\n");
    assert_int_equal(s->n_ssh_keys, 0);
    assert_null(s->ssh_keys);
    range_spec_free(s);
    /* JSON works too; keys before scenarios */
    s = parse_ok("{\"range\": \"lab1\", \"ssh_authorized_keys\": [\"" KEY_ED25519 "\"],"
                 " \"scenarios\": [{\"name\": \"red\", \"roles\": [{\"name\": \"a\","
                 " \"template\": \"t\", \"count\": 1}]}]}");
    assert_int_equal(s->n_ssh_keys, 1);
    assert_string_equal(s->ssh_keys[0], KEY_ED25519);
    range_spec_free(s);

    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - " KEY_ED25519 "\n  - ssh-dss " B64_DSS "\n",
              "ssh_authorized_keys[1]", "ssh_authorized_keys[1]: unknown key type 'ssh-dss' (line 7, column 5)");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - ssh-ed25519 " B64_ED "!\n",
              "ssh_authorized_keys[0]", "the key data is not base64");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - ssh-rsa " B64_ED "\n",
              "ssh_authorized_keys[0]", "the key data does not match its type ssh-rsa");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - my key\n", "ssh_authorized_keys[0]",
              "unknown key type 'my'");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - \"" KEY_ED25519 "\\n\"\n",
              "ssh_authorized_keys[0]", "control character");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - |\n    " KEY_ED25519 "\n",
              "ssh_authorized_keys[0]", "control character");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - \"" KEY_ED25519 "\\0x\"\n",
              "ssh_authorized_keys[0]", "NUL character");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - \"ssh-ed25519 " B64_ED " j\\u00fcrgen\"\n",
              "ssh_authorized_keys[0]", "the comment is not printable ASCII");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - \n", "ssh_authorized_keys[0]",
              "expected an OpenSSH public key (TYPE BASE64 [COMMENT]), got null");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n  - [a]\n", "ssh_authorized_keys[0]",
              "got a list");
    parse_bad(KEYS_HEAD "ssh_authorized_keys: " KEY_ED25519 "\n", "ssh_authorized_keys",
              "expected a list of OpenSSH public keys, got a scalar");
    parse_bad(KEYS_HEAD "ssh_authorized_keys:\n", "ssh_authorized_keys",
              "expected a list of OpenSSH public keys, got null");
    parse_bad(KEYS_HEAD "ssh_authorized_keys: []\nssh_authorized_keys: []\n",
              "ssh_authorized_keys", "duplicate field");
    parse_bad(KEYS_HEAD "ssh_keys: []\n", "ssh_keys",
              "unknown field (expected range, scenarios, networks, ssh_authorized_keys, resources, "
              "on_node_loss)");

    /* 32 keys fine, 33 refused */
    size_t cap = 34 * (sizeof(KEY_ED25519) + 8) + 256;
    char *y = malloc(cap);
    size_t o = (size_t)snprintf(y, cap, KEYS_HEAD "ssh_authorized_keys:\n");
    for (int i = 0; i < 32; i++)
        o += (size_t)snprintf(y + o, cap - o, "  - " KEY_ED25519 "\n");
    s = parse_ok(y);
    assert_int_equal(s->n_ssh_keys, 32);
    range_spec_free(s);
    snprintf(y + o, cap - o, "  - " KEY_ED25519 "\n");
    parse_bad(y, "ssh_authorized_keys", "33 keys, more than 32");
    free(y);

    /* 8192 bytes fine, 8193 refused */
    cap = 8400;
    y = malloc(cap);
    o = (size_t)snprintf(y, cap, KEYS_HEAD "ssh_authorized_keys:\n  - ");
    size_t start = o;
    o += (size_t)snprintf(y + o, cap - o, "%s", KEY_ED25519);
    memset(y + o, 'x', 8192 - (o - start));
    o = start + 8192;
    memcpy(y + o, "\n", 2);
    s = parse_ok(y);
    assert_int_equal(strlen(s->ssh_keys[0]), 8192);
    range_spec_free(s);
    memcpy(y + o, "x\n", 3);
    parse_bad(y, "ssh_authorized_keys[0]", "the key is longer than 8192 bytes");
    free(y);
}

#define RC_ROLE(extra) HEAD "  - name: a\n    template: probe\n    count: 1\n" extra

static void test_runcmd(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(RC_ROLE(
        "    runcmd:\n"
        "      - systemctl restart nginx\n"
        "      - 'echo \"it''s\" > /tmp/x'\n"
        "      - \"printf '%s\\\\n' \\\"a b\\\" | tee -a /etc/motd\"\n"
        "      - echo h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x90\x91\n"
        "      - \"echo \\u00e9\\t\\U0001F411\"\n"
        "      - |\n"
        "        if true; then\n"
        "          echo multi\n"
        "        fi\n"
        "      - true\n"
        "      - 42\n"
        "      - '  spaces kept  '\n"
        "  - {name: b, template: t, count: 1, runcmd: []}\n"
        "  - {name: c, template: t, count: 1}\n"));
    const struct range_role *a = &s->scenarios[0].roles[0];
    assert_int_equal(a->n_runcmd, 9);
    assert_string_equal(a->runcmd[0], "systemctl restart nginx");
    assert_string_equal(a->runcmd[1], "echo \"it's\" > /tmp/x");
    assert_string_equal(a->runcmd[2], "printf '%s\\n' \"a b\" | tee -a /etc/motd");
    assert_string_equal(a->runcmd[3], "echo h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x90\x91");
    assert_string_equal(a->runcmd[4], "echo \xc3\xa9\t\xf0\x9f\x90\x91");
    assert_string_equal(a->runcmd[5], "if true; then\n  echo multi\nfi\n");
    assert_string_equal(a->runcmd[6], "true");
    assert_string_equal(a->runcmd[7], "42");
    assert_string_equal(a->runcmd[8], "  spaces kept  ");
    assert_int_equal(s->scenarios[0].roles[1].n_runcmd, 0);
    assert_null(s->scenarios[0].roles[1].runcmd);
    assert_int_equal(s->scenarios[0].roles[2].n_runcmd, 0);
    assert_null(s->scenarios[0].roles[2].runcmd);
    range_spec_free(s);

    parse_bad(RC_ROLE("    runcmd: ls\n"), "scenarios[0].roles[0].runcmd",
              "expected a list of shell commands, got a scalar");
    parse_bad(RC_ROLE("    runcmd:\n"), "scenarios[0].roles[0].runcmd",
              "expected a list of shell commands, got null");
    parse_bad(RC_ROLE("    runcmd: [ls, '']\n"), "scenarios[0].roles[0].runcmd[1]",
              "the command is empty");
    parse_bad(RC_ROLE("    runcmd: [ls, ~]\n"), "scenarios[0].roles[0].runcmd[1]",
              "expected a shell command (string), got null");
    parse_bad(RC_ROLE("    runcmd: [[apt, install, x]]\n"), "scenarios[0].roles[0].runcmd[0]",
              "expected a shell command (string), got a list");
    parse_bad(RC_ROLE("    runcmd: [{a: b}]\n"), "scenarios[0].roles[0].runcmd[0]",
              "got a mapping");
    parse_bad(RC_ROLE("    runcmd: [ls, ls, ls, \"a\\0b\"]\n"), "scenarios[0].roles[0].runcmd[3]",
              "the command contains a NUL character");
    parse_bad(RC_ROLE("    runcmd: [ls]\n    runcmd: [ls]\n"), "scenarios[0].roles[0].runcmd",
              "duplicate field");
    parse_bad(HEAD "  - {name: a, template: t, count: 1}\n"
                   "  - {name: b, template: t, count: 1, runcmd: [a, b, c, '']}\n",
              "scenarios[0].roles[1].runcmd[3]",
              "scenarios[0].roles[1].runcmd[3]: the command is empty (line 6, column ");

    /* 64 commands fine, 65 refused */
    size_t cap = 66 * 16 + 256;
    char *y = malloc(cap);
    size_t o = (size_t)snprintf(y, cap, RC_ROLE("    runcmd:\n"));
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(y + o, cap - o, "      - echo %d\n", i);
    s = parse_ok(y);
    assert_int_equal(s->scenarios[0].roles[0].n_runcmd, 64);
    assert_string_equal(s->scenarios[0].roles[0].runcmd[63], "echo 63");
    range_spec_free(s);
    snprintf(y + o, cap - o, "      - echo 64\n");
    parse_bad(y, "scenarios[0].roles[0].runcmd", "65 commands, more than 64");
    free(y);

    /* 4096 bytes fine, 4097 refused */
    cap = 4400;
    y = malloc(cap);
    o = (size_t)snprintf(y, cap, RC_ROLE("    runcmd:\n      - "));
    memset(y + o, 'e', 4096);
    memcpy(y + o + 4096, "\n", 2);
    s = parse_ok(y);
    assert_int_equal(strlen(s->scenarios[0].roles[0].runcmd[0]), 4096);
    range_spec_free(s);
    memcpy(y + o + 4096, "e\n", 3);
    parse_bad(y, "scenarios[0].roles[0].runcmd[0]", "the command is 4097 bytes, more than 4096");
    free(y);
}

/* Failing in the middle of the lists, and after them, frees what was kept
 * (the sanitizer build reports a leak otherwise). */
static void test_cloud_init_frees(void **state)
{
    (void)state;
#define RC3 "    runcmd: [echo one, echo two, echo three]\n"
    /* in the middle of a role's runcmd, after an earlier role's */
    parse_bad(HEAD "  - name: a\n    template: t\n    count: 1\n" RC3
                   "  - name: b\n    template: t\n    count: 1\n"
                   "    runcmd: [echo one, echo two, '', echo four]\n",
              "scenarios[0].roles[1].runcmd[2]", "the command is empty");
    /* a duplicate role name after its runcmd */
    parse_bad(HEAD "  - name: a\n    template: t\n    count: 1\n" RC3
                   "  - name: a\n    template: t\n    count: 1\n" RC3,
              "scenarios[0].roles[1].name", "duplicate role 'a'");
    /* a later scenario fails, after roles with runcmd */
    parse_bad("range: lab1\nscenarios:\n- name: red\n  roles:\n"
              "  - name: a\n    template: t\n    count: 1\n" RC3
              "- name: blue\n  roles:\n"
              "  - name: a\n    template: t\n    count: 1\n" RC3
              "  - {name: b, template: t, count: x}\n",
              "scenarios[1].roles[1].count", "expected an integer");
    /* in the middle of the keys, after runcmd and networks */
    parse_bad("range: lab1\nnetworks:\n  management: {subnet: 10.0.0.0/24}\n"
              "scenarios:\n- name: red\n  roles:\n"
              "  - name: a\n    template: t\n    count: 1\n" RC3
              "ssh_authorized_keys:\n"
              "  - " KEY_ED25519 "\n"
              "  - " KEY_RSA "\n"
              "  - ssh-ed25519 AAAA\n"
              "  - " KEY_P256 "\n",
              "ssh_authorized_keys[2]", "does not match its type ssh-ed25519");
    /* keys first in the file: networks still fail after them */
    parse_bad("range: lab1\nssh_authorized_keys: [" KEY_ED25519 "]\n"
              "scenarios:\n- name: red\n  roles:\n"
              "  - name: a\n    template: t\n    count: 1\n" RC3
              "networks: {dmz: {subnet: 10.0.0.0/24}}\n",
              "networks.dmz", "is not a network");
    /* and all of it at once, good */
    struct range_spec *s = parse_ok("range: lab1\nssh_authorized_keys: [" KEY_ED25519 ", "
                                    KEY_SK_ED25519 "]\n"
                                    "scenarios:\n- name: red\n  roles:\n"
                                    "  - name: a\n    template: t\n    count: 2\n" RC3
                                    "  - name: b\n    template: t\n    count: 1\n" RC3);
    assert_int_equal(s->n_ssh_keys, 2);
    assert_int_equal(s->scenarios[0].roles[1].n_runcmd, 3);
    assert_string_equal(s->scenarios[0].roles[1].runcmd[2], "echo three");
    range_spec_free(s);
#undef RC3
}

/* Every prefix and single-byte corruption of a spec with keys and runcmd
 * parses or fails cleanly, without a leak. */
static void test_cloud_init_truncations(void **state)
{
    (void)state;
    static const char y[] = "range: lab1\n"
                            "scenarios:\n"
                            "- name: red\n"
                            "  roles:\n"
                            "  - name: a\n"
                            "    template: t\n"
                            "    count: 1\n"
                            "    runcmd: [echo one, 'echo \"two\"', \"x\\ty\"]\n"
                            "ssh_authorized_keys:\n"
                            "  - " KEY_ED25519 "\n"
                            "  - " KEY_P256 "\n";
    static const char junk[] = {'\0', ':', '[', ',', '=', '/', 'A', ' ', '\n', '"', '\t', (char)0xc3};
    parse_mangled(y, junk, sizeof(junk));
}

/* resources: range-wide and a scenario's own; syntax only (an absolute
 * path, one line, no NUL, at most RANGE_RESOURCES_BYTES_MAX bytes). */
#define RES_SPEC(top, red, blue)                                                   \
    "range: lab1\n" top "scenarios:\n"                                             \
    "- name: red\n" red "  roles: [{name: a, template: t, count: 1}]\n"            \
    "- name: blue\n" blue "  roles: [{name: a, template: t, count: 1}]\n"

static void test_resources(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(RES_SPEC("resources: /srv/lab/common\n", "",
                                             "  resources: '/srv/lab/blue dir/x.img'\n"));
    assert_string_equal(s->resources, "/srv/lab/common");
    assert_null(s->scenarios[0].resources);
    assert_string_equal(s->scenarios[1].resources, "/srv/lab/blue dir/x.img");
    range_spec_free(s);
    s = parse_ok(RES_SPEC("", "", ""));
    assert_null(s->resources);
    assert_null(s->scenarios[0].resources);
    assert_null(s->scenarios[1].resources);
    range_spec_free(s);
    s = parse_ok("{\"range\": \"lab1\", \"resources\": \"/r\", \"scenarios\": [{\"name\": \"red\", "
                 "\"resources\": \"/s\", \"roles\": [{\"name\": \"a\", \"template\": \"t\", "
                 "\"count\": 1}]}]}");
    assert_string_equal(s->resources, "/r");
    assert_string_equal(s->scenarios[0].resources, "/s");
    range_spec_free(s);

    parse_bad(RES_SPEC("resources: srv/lab\n", "", ""), "resources",
              "resources: 'srv/lab' is not an absolute path (line 2, column 12)");
    parse_bad(RES_SPEC("", "", "  resources: ./x\n"), "scenarios[1].resources",
              "scenarios[1].resources: './x' is not an absolute path");
    parse_bad(RES_SPEC("", "  resources:\n", ""), "scenarios[0].resources",
              "expected an absolute path, got null");
    parse_bad(RES_SPEC("", "  resources: ''\n", ""), "scenarios[0].resources",
              "'' is not an absolute path");
    parse_bad(RES_SPEC("resources: [/a]\n", "", ""), "resources",
              "expected an absolute path, got a list");
    parse_bad(RES_SPEC("resources: {a: b}\n", "", ""), "resources", "got a mapping");
    parse_bad(RES_SPEC("resources: \"/a\\0b\"\n", "", ""), "resources",
              "the path contains a NUL character");
    parse_bad(RES_SPEC("", "", "  resources: \"/a\\nb\"\n"), "scenarios[1].resources",
              "the path contains a line break");
    parse_bad(RES_SPEC("resources: |\n  /a\n", "", ""), "resources",
              "the path contains a line break");
    parse_bad(RES_SPEC("resources: /a\nresources: /b\n", "", ""), "resources",
              "duplicate field");
    parse_bad(RES_SPEC("", "  resources: /a\n  resources: /b\n", ""), "scenarios[0].resources",
              "duplicate field");

    /* PATH_MAX - 1 bytes fine, PATH_MAX refused */
    size_t cap = PATH_MAX + 512;
    char *y = malloc(cap), *p = malloc(PATH_MAX + 1);
    memset(p, 'a', PATH_MAX);
    p[0] = '/';
    p[PATH_MAX - 1] = 0;
    snprintf(y, cap, RES_SPEC("resources: %s\n", "", ""), p);
    s = parse_ok(y);
    assert_int_equal(strlen(s->resources), PATH_MAX - 1);
    range_spec_free(s);
    p[PATH_MAX - 1] = 'a';
    p[PATH_MAX] = 0;
    snprintf(y, cap, RES_SPEC("", "", "  resources: %s\n"), p);
    char want[96];
    snprintf(want, sizeof(want), "the path is %d bytes, more than %d", PATH_MAX, PATH_MAX - 1);
    parse_bad(y, "scenarios[1].resources", want);
    free(p);
    free(y);

    /* failing after resources were kept frees them (a sanitizer leak otherwise) */
    parse_bad(RES_SPEC("resources: /r\n", "  resources: /s\n",
                       "  resources: /t\n  colour: x\n"),
              "scenarios[1].colour", "unknown field");
    parse_bad("range: lab1\nresources: /r\nscenarios:\n- name: red\n  resources: /s\n"
              "  roles: [{name: a, template: t, count: 1}]\n- name: red\n  resources: /t\n"
              "  roles: [{name: a, template: t, count: 1}]\n",
              "scenarios[1].name", "duplicate scenario");
    parse_bad("range: lab1\nscenarios:\n- name: red\n  resources: /s\n"
              "  roles: [{name: a, template: t, count: 1}]\nresources: /r\n"
              "networks: {dmz: {subnet: 10.0.0.0/24}}\n",
              "networks.dmz", "is not a network");
    parse_bad("range: lab1\nscenarios:\n- name: red\n  resources: /s\n"
              "  roles: [{name: a, template: t, count: 0}]\nresources: /r\n",
              "scenarios[0].roles[0].count", "is not in");
    static const char m[] = RES_SPEC("resources: /srv/common\n", "  resources: /srv/red\n", "");
    static const char junk[] = {'\0', ':', '[', ',', '/', 'A', ' ', '\n', '"', '\t'};
    parse_mangled(m, junk, sizeof(junk));
}
#undef RES_SPEC

/* ---- placement on a cluster: roles[j].node, roles[j].spread ------------- */
static void test_placement(void **state)
{
    (void)state;
    struct range_spec *s = parse_ok(ROLE("    node: n2.rack_1-a\n    spread: true\n"
                                         "  - {name: b, template: t, count: 2, spread: false}\n"
                                         "  - {name: c, template: t, count: 2}\n"));
    const struct range_role *r = s->scenarios[0].roles;
    assert_string_equal(r[0].node, "n2.rack_1-a");
    assert_true(r[0].spread);
    assert_string_equal(r[1].node, "");
    assert_false(r[1].spread);
    assert_string_equal(r[2].node, "");
    assert_false(r[2].spread);
    range_spec_free(s);
    char longest[RANGE_NODE_MAX + 1], yaml[512];
    memset(longest, 'n', RANGE_NODE_MAX);
    longest[RANGE_NODE_MAX] = 0;
    snprintf(yaml, sizeof(yaml), ROLE("    node: %s\n"), longest);
    s = parse_ok(yaml);
    assert_string_equal(s->scenarios[0].roles[0].node, longest);
    range_spec_free(s);
    snprintf(yaml, sizeof(yaml), ROLE("    node: %sn\n"), longest);
    parse_bad(yaml, "scenarios[0].roles[0].node", "is not a node name");
    parse_bad(ROLE("    node: -n1\n"), "scenarios[0].roles[0].node", "is not a node name");
    parse_bad(ROLE("    node: n/1\n"), "scenarios[0].roles[0].node", "is not a node name");
    parse_bad(ROLE("    node: ''\n"), "scenarios[0].roles[0].node", "is not a node name");
    parse_bad(ROLE("    node: [n1]\n"), "scenarios[0].roles[0].node", "a node name");
    parse_bad(ROLE("    node: \"n1\\0x\"\n"), "scenarios[0].roles[0].node", "is not a node name");
    parse_bad(ROLE("    spread: yes\n"), "scenarios[0].roles[0].spread", "expected true or false");
    parse_bad(ROLE("    spread: 'true'\n"), "scenarios[0].roles[0].spread",
              "expected true or false");
    parse_bad(ROLE("    node: n1\n    node: n2\n"), "scenarios[0].roles[0].node",
              "duplicate field");
    /* on_node_loss */
    s = parse_ok(ROLE(""));
    assert_false(s->replace_lost);
    range_spec_free(s);
    s = parse_ok("on_node_loss: replace\n" ROLE(""));
    assert_true(s->replace_lost);
    range_spec_free(s);
    s = parse_ok("on_node_loss: keep\n" ROLE(""));
    assert_false(s->replace_lost);
    range_spec_free(s);
    parse_bad("on_node_loss: move\n" ROLE(""), "on_node_loss", "expected keep or replace, got 'move'");
    parse_bad("on_node_loss: 'replace'\n" ROLE(""), "on_node_loss", "expected keep or replace");
    parse_bad("on_node_loss: [keep]\n" ROLE(""), "on_node_loss", "keep or replace");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_longest_names),
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_bad_document),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_names_and_networks),
        cmocka_unit_test(test_unknown_and_missing),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_anchors_aliases_tags),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_networks_refused),
        cmocka_unit_test(test_addresses_refused),
        cmocka_unit_test(test_overrides_refused),
        cmocka_unit_test(test_addressing_frees),
        cmocka_unit_test(test_addressing_truncations),
        cmocka_unit_test(test_ssh_key_check),
        cmocka_unit_test(test_ssh_keys_spec),
        cmocka_unit_test(test_runcmd),
        cmocka_unit_test(test_cloud_init_frees),
        cmocka_unit_test(test_cloud_init_truncations),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_placement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
