/* Unit tests: herd/range_addr.h (a range's NIC addresses from its spec). */
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

#include "herd/range_addr.h"
#include "herd/range_spec.h"

/* A parsed spec, its guests and room for a plan. */
struct fx {
    struct range_spec *spec;
    struct range_guest *guests;
    size_t n;
    struct range_nic_addr *out;
};

static void fx_open(struct fx *f, const char *yaml)
{
    struct range_err err;
    memset(f, 0, sizeof(*f));
    int rc = range_spec_parse(yaml, strlen(yaml), &f->spec, &err);
    if (rc)
        fail_msg("spec refused (%d): %s [field %s]\n%s", rc, err.msg, err.field, yaml);
    assert_int_equal(range_spec_expand(f->spec, &f->guests, &f->n), 0);
    f->out = calloc(f->n * RANGE_NICS_MAX, sizeof(*f->out));
    assert_non_null(f->out);
}

static void fx_close(struct fx *f)
{
    free(f->out);
    free(f->guests);
    range_spec_free(f->spec);
}

static size_t out_bytes(const struct fx *f)
{
    return f->n * RANGE_NICS_MAX * sizeof(*f->out);
}

static void plan_ok(struct fx *f, const struct range_held *held, size_t n_held)
{
    struct range_err err;
    memset(&err, 0, sizeof(err));
    memset(f->out, 0xa5, out_bytes(f));
    int rc = range_addr_plan(f->spec, f->guests, f->n, held, n_held, f->out, &err);
    if (rc)
        fail_msg("plan refused (%d): %s [field %s]", rc, err.msg, err.field);
}

static bool all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i])
            return false;
    return true;
}

/* Plans, expects -EINVAL with exactly field, a message that starts with the
 * field and contains want, and an all-zero out. */
static void plan_bad(struct fx *f, const struct range_held *held, size_t n_held,
                     const char *field, const char *want)
{
    struct range_err err;
    memset(&err, 0, sizeof(err));
    memset(f->out, 0xa5, out_bytes(f));
    int rc = range_addr_plan(f->spec, f->guests, f->n, held, n_held, f->out, &err);
    if (rc != -EINVAL || strcmp(err.field, field) || !strstr(err.msg, want))
        print_error("-> rc %d field '%s' msg '%s'; want -EINVAL field '%s' msg ~ '%s'\n", rc,
                    err.field, err.msg, field, want);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err.field, field);
    assert_non_null(strstr(err.msg, want));
    assert_memory_equal(err.msg, field, strlen(field));
    assert_true(all_zero(f->out, out_bytes(f)));
}

static const struct range_nic_addr *nic_of(const struct fx *f, size_t g, unsigned k)
{
    assert_true(g < f->n);
    assert_true(k < RANGE_NICS_MAX);
    return &f->out[g * RANGE_NICS_MAX + k];
}

static void assert_addr(const struct ipam_addr *a, int family, const char *want)
{
    char buf[IPAM_ADDR_STR];
    assert_int_equal(a->family, family);
    ipam_addr_format(a, buf);
    assert_string_equal(buf, want);
}

/* Guest g's NIC k has v4/len4, gateway gw (NULL: none) and v6/len6 (NULL: none). */
static void expect(const struct fx *f, size_t g, unsigned k, const char *v4, unsigned len4,
                   const char *gw, const char *v6, unsigned len6)
{
    const struct range_nic_addr *na = nic_of(f, g, k);
    if (!na->set)
        fail_msg("%s nic %u: not set, want %s", f->guests[g].name, k, v4);
    assert_addr(&na->v4, AF_INET, v4);
    assert_int_equal(na->len4, len4);
    assert_int_equal(na->has_gateway, gw != NULL);
    if (gw)
        assert_addr(&na->gateway, AF_INET, gw);
    assert_int_equal(na->has_v6, v6 != NULL);
    if (v6) {
        assert_addr(&na->v6, AF_INET6, v6);
        assert_int_equal(na->len6, len6);
    }
}

static void expect_unset(const struct fx *f, size_t g, unsigned k)
{
    const struct range_nic_addr *na = nic_of(f, g, k);
    if (!all_zero(na, sizeof(*na)))
        fail_msg("%s nic %u: set (or not zero), want unset", f->guests[g].name, k);
}

static struct ipam_addr a4(const char *s)
{
    struct ipam_addr a;
    assert_int_equal(ipam_addr_parse(s, AF_INET, &a), 0);
    return a;
}

/* Guests: 0..2 lab-red-attacker-1..3, 3 lab-red-c2-1, 4..5 lab-blue-web-1..2. */
static const char spec_main[] =
    "range: lab\n"
    "networks:\n"
    "  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1}\n"
    "  communication:\n"
    "    segments:\n"
    "      red-net: {subnet: 10.20.1.0/24, gateway: 10.20.1.1, ipv6: \"fd00:20:1::/64\"}\n"
    "      blue-net: {subnet: 10.20.2.0/28}\n"
    "scenarios:\n"
    "  - name: red\n"
    "    roles:\n"
    "      - name: attacker\n"
    "        template: t\n"
    "        count: 3\n"
    "        nics:\n"
    "          - {network: communication, segment: red-net}\n"
    "          - {network: management}\n"
    "          - {network: service}\n"
    "      - name: c2\n"
    "        template: t\n"
    "        count: 1\n"
    "  - name: blue\n"
    "    roles:\n"
    "      - name: web\n"
    "        template: t\n"
    "        count: 2\n"
    "        nics:\n"
    "          - {network: management}\n"
    "          - {network: communication, segment: blue-net}\n"
    "          - {network: communication}\n";

/* The plan of spec_main with nothing held. */
static void expect_main(const struct fx *f)
{
    assert_int_equal(f->n, 6);
    assert_string_equal(f->guests[0].name, "lab-red-attacker-1");
    assert_string_equal(f->guests[5].name, "lab-blue-web-2");
    expect(f, 0, 0, "10.20.1.2", 24, "10.20.1.1", "fd00:20:1::2", 64);
    expect(f, 0, 1, "10.10.0.2", 24, "10.10.0.1", NULL, 0);
    expect(f, 1, 0, "10.20.1.3", 24, "10.20.1.1", "fd00:20:1::3", 64);
    expect(f, 1, 1, "10.10.0.3", 24, "10.10.0.1", NULL, 0);
    expect(f, 2, 0, "10.20.1.4", 24, "10.20.1.1", "fd00:20:1::4", 64);
    expect(f, 2, 1, "10.10.0.4", 24, "10.10.0.1", NULL, 0);
    expect(f, 4, 0, "10.10.0.5", 24, "10.10.0.1", NULL, 0);
    expect(f, 4, 1, "10.20.2.1", 28, NULL, NULL, 0);
    expect(f, 5, 0, "10.10.0.6", 24, "10.10.0.1", NULL, 0);
    expect(f, 5, 1, "10.20.2.2", 28, NULL, NULL, 0);
    /* service and communication's own bridge have no subnet */
    for (size_t g = 0; g < 3; g++)
        expect_unset(f, g, 2);
    expect_unset(f, 4, 2);
    expect_unset(f, 5, 2);
    /* c2 lists no NICs; nobody has NICs 3..7 */
    for (unsigned k = 0; k < RANGE_NICS_MAX; k++)
        expect_unset(f, 3, k);
    for (size_t g = 0; g < f->n; g++)
        for (unsigned k = 3; k < RANGE_NICS_MAX; k++)
            expect_unset(f, g, k);
}

static void test_allocate(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, spec_main);
    plan_ok(&f, NULL, 0);
    expect_main(&f);

    /* The subnet lookup and path helpers. */
    const struct range_subnet *sn = range_subnet_find(f.spec, RANGE_NET_COMMUNICATION, "red-net");
    assert_non_null(sn);
    char path[96];
    range_subnet_path(sn, path, sizeof(path));
    assert_string_equal(path, "networks.communication.segments.red-net");
    sn = range_subnet_find(f.spec, RANGE_NET_MANAGEMENT, "");
    assert_non_null(sn);
    range_subnet_path(sn, path, sizeof(path));
    assert_string_equal(path, "networks.management");
    assert_null(range_subnet_find(f.spec, RANGE_NET_COMMUNICATION, ""));
    assert_null(range_subnet_find(f.spec, RANGE_NET_SERVICE, ""));
    assert_null(range_subnet_find(f.spec, RANGE_NET_MANAGEMENT, "red-net"));
    fx_close(&f);
}

/* IPv6 mirrors the IPv4 host number (an offset, in hex in the text), also
 * across a subnet wider than /24. */
static void test_ipv6_mirror(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "range: lab\n"
                "networks:\n"
                "  storage: {subnet: 10.30.0.0/16, ipv6: \"fd00:30::/112\"}\n"
                "scenarios:\n"
                "- name: s\n"
                "  roles:\n"
                "  - name: a\n"
                "    template: t\n"
                "    count: 2\n"
                "    nics: [{network: storage, addresses: [10.30.1.2, 10.30.0.255]}]\n");
    plan_ok(&f, NULL, 0);
    expect(&f, 0, 0, "10.30.1.2", 16, NULL, "fd00:30::102", 112);
    expect(&f, 1, 0, "10.30.0.255", 16, NULL, "fd00:30::ff", 112);
    fx_close(&f);
}

static void test_determinism(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, spec_main);
    size_t bytes = out_bytes(&f);
    plan_ok(&f, NULL, 0);
    struct range_nic_addr *first = malloc(bytes);
    assert_non_null(first);
    memcpy(first, f.out, bytes);
    plan_ok(&f, NULL, 0);
    assert_memory_equal(f.out, first, bytes);

    /* The first plan's addresses held by this range's guests: the same plan. */
    struct range_held held[6 * RANGE_NICS_MAX];
    size_t nh = 0;
    for (size_t g = 0; g < f.n; g++) {
        const struct range_role *role = f.guests[g].role;
        for (unsigned k = 0; k < RANGE_NICS_MAX; k++) {
            if (!first[g * RANGE_NICS_MAX + k].set)
                continue;
            held[nh++] = (struct range_held){.network = role->nics[k].network,
                                             .segment = role->nics[k].segment,
                                             .v4 = first[g * RANGE_NICS_MAX + k].v4,
                                             .owner = f.guests[g].name,
                                             .nic = k};
        }
    }
    assert_int_equal(nh, 10);
    plan_ok(&f, held, nh);
    assert_memory_equal(f.out, first, bytes);
    /* In reverse order too: HELD order does not matter. */
    struct range_held rev[6 * RANGE_NICS_MAX];
    for (size_t i = 0; i < nh; i++)
        rev[i] = held[nh - 1 - i];
    plan_ok(&f, rev, nh);
    assert_memory_equal(f.out, first, bytes);

    /* Held wins over what the allocator would give: attacker-2 keeps
     * 10.20.1.50 (IPv6 ::32) and 10.10.0.77, the others move down. */
    struct range_held keep[] = {
        {RANGE_NET_COMMUNICATION, "red-net", a4("10.20.1.50"), "lab-red-attacker-2", 0},
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.77"), "lab-red-attacker-2", 1},
    };
    plan_ok(&f, keep, 2);
    expect(&f, 0, 0, "10.20.1.2", 24, "10.20.1.1", "fd00:20:1::2", 64);
    expect(&f, 0, 1, "10.10.0.2", 24, "10.10.0.1", NULL, 0);
    expect(&f, 1, 0, "10.20.1.50", 24, "10.20.1.1", "fd00:20:1::32", 64);
    expect(&f, 1, 1, "10.10.0.77", 24, "10.10.0.1", NULL, 0);
    expect(&f, 2, 0, "10.20.1.3", 24, "10.20.1.1", "fd00:20:1::3", 64);
    expect(&f, 2, 1, "10.10.0.3", 24, "10.10.0.1", NULL, 0);
    expect(&f, 4, 0, "10.10.0.4", 24, "10.10.0.1", NULL, 0);
    expect(&f, 5, 0, "10.10.0.5", 24, "10.10.0.1", NULL, 0);

    /* Other guests' addresses (another range on the same bridges) are
     * skipped; ones on other scopes, outside the subnet or on networks
     * without a subnet change nothing. */
    struct range_held other[] = {
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.2"), "lab2-x-y-1", 0},
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.4"), "lab2-x-y-2", 0},
        {RANGE_NET_COMMUNICATION, "red-net", a4("10.20.1.3"), "lab2-x-y-1", 1},
        {RANGE_NET_COMMUNICATION, "blue-net", a4("10.20.2.1"), "lab2-x-y-1", 2},
        {RANGE_NET_COMMUNICATION, "red-net", a4("10.20.2.2"), "lab2-x-y-2", 1}, /* not in red-net */
        {RANGE_NET_MANAGEMENT, "", a4("10.20.1.2"), "lab2-x-y-3", 0},           /* not in management */
        {RANGE_NET_SERVICE, "", a4("10.10.0.3"), "lab2-x-y-3", 1},              /* no subnet */
        {RANGE_NET_COMMUNICATION, "", a4("10.20.1.4"), "lab2-x-y-3", 2},        /* own bridge */
    };
    plan_ok(&f, other, sizeof(other) / sizeof(other[0]));
    expect(&f, 0, 0, "10.20.1.2", 24, "10.20.1.1", "fd00:20:1::2", 64);
    expect(&f, 0, 1, "10.10.0.3", 24, "10.10.0.1", NULL, 0);
    expect(&f, 1, 0, "10.20.1.4", 24, "10.20.1.1", "fd00:20:1::4", 64);
    expect(&f, 1, 1, "10.10.0.5", 24, "10.10.0.1", NULL, 0);
    expect(&f, 2, 0, "10.20.1.5", 24, "10.20.1.1", "fd00:20:1::5", 64);
    expect(&f, 2, 1, "10.10.0.6", 24, "10.10.0.1", NULL, 0);
    expect(&f, 4, 0, "10.10.0.7", 24, "10.10.0.1", NULL, 0);
    expect(&f, 4, 1, "10.20.2.2", 28, NULL, NULL, 0);
    expect(&f, 5, 0, "10.10.0.8", 24, "10.10.0.1", NULL, 0);
    expect(&f, 5, 1, "10.20.2.3", 28, NULL, NULL, 0);
    for (size_t g = 0; g < f.n; g++)
        for (unsigned k = 0; k < RANGE_NICS_MAX; k++)
            for (size_t i = 0; i < 4; i++)
                if (nic_of(&f, g, k)->set)
                    assert_false(ipam_addr_equal(&nic_of(&f, g, k)->v4, &other[i].v4));

    /* A guest name that is not this range's, even one that looks close
     * (another range's guest with the same role names), is another guest. */
    struct range_held lookalike[] = {
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.2"), "lab2-red-attacker-1", 1},
    };
    plan_ok(&f, lookalike, 1);
    expect(&f, 0, 1, "10.10.0.3", 24, "10.10.0.1", NULL, 0);

    /* Down, then up again: with those others gone, the same addresses. */
    plan_ok(&f, NULL, 0);
    assert_memory_equal(f.out, first, bytes);
    free(first);
    fx_close(&f);
}

/* Guests: 0..2 lab-red-a-1..3, 3..4 lab-red-b-1..2. */
static const char spec_explicit[] =
    "range: lab\n"
    "networks:\n"
    "  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1}\n"
    "  communication: {subnet: 10.20.0.0/24, ipv6: \"fd00:20::/64\"}\n"
    "scenarios:\n"
    "  - name: red\n"
    "    roles:\n"
    "      - name: a\n"
    "        template: t\n"
    "        count: 3\n"
    "        nics:\n"
    "          - {network: management, addresses: [10.10.0.50, 10.10.0.2, 10.10.0.52]}\n"
    "          - {network: communication}\n"
    "        overrides:\n"
    "          - {guest: 3, nic: 0, address: 10.10.0.99}\n"
    "          - {guest: 1, nic: 1, address: 10.20.0.1}\n"
    "      - name: b\n"
    "        template: t\n"
    "        count: 2\n"
    "        nics:\n"
    "          - {network: management}\n"
    "          - {network: communication}\n";

static void test_explicit(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, spec_explicit);
    plan_ok(&f, NULL, 0);
    expect(&f, 0, 0, "10.10.0.50", 24, "10.10.0.1", NULL, 0);
    expect(&f, 1, 0, "10.10.0.2", 24, "10.10.0.1", NULL, 0);
    expect(&f, 2, 0, "10.10.0.99", 24, "10.10.0.1", NULL, 0); /* override beats the list */
    expect(&f, 0, 1, "10.20.0.1", 24, NULL, "fd00:20::1", 64); /* override */
    expect(&f, 1, 1, "10.20.0.2", 24, NULL, "fd00:20::2", 64);
    expect(&f, 2, 1, "10.20.0.3", 24, NULL, "fd00:20::3", 64);
    /* the allocator skips the gateway and every explicit address */
    expect(&f, 3, 0, "10.10.0.3", 24, "10.10.0.1", NULL, 0);
    expect(&f, 4, 0, "10.10.0.4", 24, "10.10.0.1", NULL, 0);
    expect(&f, 3, 1, "10.20.0.4", 24, NULL, "fd00:20::4", 64);
    expect(&f, 4, 1, "10.20.0.5", 24, NULL, "fd00:20::5", 64);

    /* A held address of this range's guest beats its override and list. */
    struct range_held held[] = {
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.60"), "lab-red-a-3", 0},
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.61"), "lab-red-a-1", 0},
    };
    plan_ok(&f, held, 2);
    expect(&f, 0, 0, "10.10.0.61", 24, "10.10.0.1", NULL, 0);
    expect(&f, 2, 0, "10.10.0.60", 24, "10.10.0.1", NULL, 0);
    expect(&f, 1, 0, "10.10.0.2", 24, "10.10.0.1", NULL, 0);
    expect(&f, 3, 0, "10.10.0.3", 24, "10.10.0.1", NULL, 0);

    /* Another guest holding an explicit address: refused, naming it. */
    struct range_held other[] = {
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.2"), "lab9-x-y-4", 0},
    };
    plan_bad(&f, other, 1, "scenarios[0].roles[0].nics[0].addresses[1]",
             "10.10.0.2 is already taken by guest lab9-x-y-4");
    struct range_held other_ov[] = {
        {RANGE_NET_COMMUNICATION, "", a4("10.20.0.1"), "lab9-x-y-4", 1},
    };
    plan_bad(&f, other_ov, 1, "scenarios[0].roles[0].overrides[1].address",
             "10.20.0.1 is already taken by guest lab9-x-y-4");
    /* ...but the same address held on another network is no conflict. */
    struct range_held elsewhere[] = {
        {RANGE_NET_STORAGE, "", a4("10.10.0.2"), "lab9-x-y-4", 0},
    };
    plan_ok(&f, elsewhere, 1);
    expect(&f, 1, 0, "10.10.0.2", 24, "10.10.0.1", NULL, 0);
    fx_close(&f);
}

#define XHEAD                                                                    \
    "range: lab\n"                                                                \
    "networks:\n"                                                                 \
    "  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1}\n"                  \
    "  communication:\n"                                                          \
    "    segments:\n"                                                             \
    "      red-net: {subnet: 10.20.1.0/24}\n"                                     \
    "scenarios:\n"                                                                \
    "  - name: red\n"                                                             \
    "    roles:\n"

static void bad_spec(const char *yaml, const char *field, const char *want)
{
    struct fx f;
    fx_open(&f, yaml);
    plan_bad(&f, NULL, 0, field, want);
    fx_close(&f);
}

/* dhcp: true keeps the subnet's highest host that is not the gateway for
 * herdd's server: never planned, refused as an explicit address, and it
 * counts against the subnet's room. */
static void test_dhcp_server(void **state)
{
    (void)state;
    static const char *const yaml =
        "range: d\n"
        "networks:\n"
        "  communication:\n"
        "    segments:\n"
        "      a: {subnet: 10.0.1.0/29, dhcp: true}\n"
        "      b: {subnet: 10.0.2.0/29, gateway: 10.0.2.6, dhcp: true}\n"
        "scenarios:\n"
        "  - name: s\n"
        "    roles:\n"
        "      - name: r\n"
        "        template: t\n"
        "        count: 5\n"
        "        nics:\n"
        "          - {network: communication, segment: a}\n"
        "          - {network: communication, segment: b}\n";
    struct fx f;
    fx_open(&f, yaml);
    assert_true(f.spec->subnets[0].dhcp);
    assert_addr(&f.spec->subnets[0].dhcp_server, AF_INET, "10.0.1.6");
    assert_addr(&f.spec->subnets[1].dhcp_server, AF_INET, "10.0.2.5");
    /* a: hosts .1-.6, .6 the server: five guests fit; b: .6 gateway, .5
     * server: four hosts for five guests */
    plan_bad(&f, NULL, 0, "networks.communication.segments.b.subnet",
             "10.0.2.0/29 has 4 free host addresses for 5 NICs");
    fx_close(&f);

    char *small = strdup(yaml);
    assert_non_null(small);
    memcpy(strstr(small, "count: 5"), "count: 4", 8);
    fx_open(&f, small);
    plan_ok(&f, NULL, 0);
    for (size_t g = 0; g < 4; g++) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "10.0.1.%zu", g + 1);
        snprintf(b, sizeof(b), "10.0.2.%zu", g + 1);
        expect(&f, g, 0, a, 29, NULL, NULL, 0);
        expect(&f, g, 1, b, 29, "10.0.2.6", NULL, 0);
    }
    fx_close(&f);
    free(small);

    bad_spec("range: d\n"
             "networks:\n"
             "  management: {subnet: 10.0.1.0/24, gateway: 10.0.1.1, dhcp: true}\n"
             "scenarios:\n"
             "  - name: s\n"
             "    roles:\n"
             "      - name: r\n"
             "        template: t\n"
             "        count: 1\n"
             "        nics: [{network: management, addresses: [10.0.1.254]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[0]",
             "10.0.1.254 is already taken by networks.management.dhcp (herdd's DHCP server)");
}

static void test_explicit_refused(void **state)
{
    (void)state;
    /* an override equal to the gateway */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 2\n"
                   "        nics: [{network: management}]\n"
                   "        overrides: [{guest: 2, nic: 0, address: 10.10.0.1}]\n",
             "scenarios[0].roles[0].overrides[0].address",
             "10.10.0.1 is already taken by networks.management.gateway");
    /* a list item equal to the gateway */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 2\n"
                   "        nics: [{network: management, addresses: [10.10.0.9, 10.10.0.1]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[1]",
             "10.10.0.1 is already taken by networks.management.gateway");
    /* two roles' lists naming the same address: the later one is refused */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 2\n"
                   "        nics: [{network: management, addresses: [10.10.0.7, 10.10.0.8]}]\n"
                   "      - name: b\n        template: t\n        count: 3\n"
                   "        nics:\n"
                   "          - {network: communication, segment: red-net}\n"
                   "          - {network: management, addresses: [10.10.0.20, 10.10.0.21, 10.10.0.7]}\n",
             "scenarios[0].roles[1].nics[1].addresses[2]",
             "10.10.0.7 is already taken by scenarios[0].roles[0].nics[0].addresses[0]");
    /* an override equal to another role's list item */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 2\n"
                   "        nics: [{network: management, addresses: [10.10.0.7, 10.10.0.8]}]\n"
                   "      - name: b\n        template: t\n        count: 1\n"
                   "        nics: [{network: management}]\n"
                   "        overrides: [{guest: 1, nic: 0, address: 10.10.0.8}]\n",
             "scenarios[0].roles[1].overrides[0].address",
             "10.10.0.8 is already taken by scenarios[0].roles[0].nics[0].addresses[1]");
    /* outside the subnet */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 2\n"
                   "        nics: [{network: management, addresses: [10.10.0.9, 10.11.0.5]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[1]",
             "10.11.0.5 is not in networks.management.subnet (10.10.0.0/24)");
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 1\n"
                   "        nics: [{network: communication, segment: red-net}]\n"
                   "        overrides: [{guest: 1, nic: 0, address: 10.20.2.5}]\n",
             "scenarios[0].roles[0].overrides[0].address",
             "10.20.2.5 is not in networks.communication.segments.red-net.subnet (10.20.1.0/24)");
    /* the network and broadcast addresses are not hosts */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 2\n"
                   "        nics: [{network: management, addresses: [10.10.0.0, 10.10.0.9]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[0]",
             "10.10.0.0 is not a host address of 10.10.0.0/24");
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 1\n"
                   "        nics: [{network: management, addresses: [10.10.0.255]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[0]",
             "10.10.0.255 is not a host address of 10.10.0.0/24");
    /* an explicit address on a NIC whose scope has no subnet */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 1\n"
                   "        nics: [{network: service, addresses: [10.40.0.5]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[0]", "has no subnet");
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 1\n"
                   "        nics: [{network: management}, {network: communication, segment: blue-net}]\n"
                   "        overrides: [{guest: 1, nic: 1, address: 10.20.3.5}]\n",
             "scenarios[0].roles[0].overrides[0].address", "has no subnet");
    /* communication itself has none (only its segment red-net does) */
    bad_spec(XHEAD "      - name: a\n        template: t\n        count: 1\n"
                   "        nics: [{network: communication, addresses: [10.20.1.5]}]\n",
             "scenarios[0].roles[0].nics[0].addresses[0]", "has no subnet");
}

static void test_overlap(void **state)
{
    (void)state;
    const char *tail = "scenarios:\n- name: s\n  roles:\n  - {name: a, template: t, count: 1}\n";
    char y[1024];
    snprintf(y, sizeof(y),
             "range: lab\nnetworks:\n"
             "  management: {subnet: 10.10.0.0/16}\n"
             "  storage: {subnet: 10.10.5.0/24}\n%s", tail);
    bad_spec(y, "networks.storage.subnet",
             "10.10.5.0/24 overlaps networks.management.subnet (10.10.0.0/16)");
    snprintf(y, sizeof(y),
             "range: lab\nnetworks:\n"
             "  communication:\n    segments:\n"
             "      red-net: {subnet: 10.20.1.0/24}\n"
             "      blue-net: {subnet: 10.20.0.0/16}\n%s", tail);
    bad_spec(y, "networks.communication.segments.blue-net.subnet",
             "10.20.0.0/16 overlaps networks.communication.segments.red-net.subnet (10.20.1.0/24)");
    /* a network's own subnet against one of its segments */
    snprintf(y, sizeof(y),
             "range: lab\nnetworks:\n"
             "  communication:\n    subnet: 10.20.0.0/22\n    segments:\n"
             "      red-net: {subnet: 10.20.3.0/24}\n%s", tail);
    bad_spec(y, "networks.communication.segments.red-net.subnet",
             "10.20.3.0/24 overlaps networks.communication.subnet (10.20.0.0/22)");
    /* IPv6 prefixes */
    snprintf(y, sizeof(y),
             "range: lab\nnetworks:\n"
             "  management: {subnet: 10.10.0.0/24, ipv6: \"fd00:1::/64\"}\n"
             "  storage: {subnet: 10.11.0.0/24, ipv6: \"fd00:1:0:0:1::/80\"}\n%s", tail);
    bad_spec(y, "networks.storage.ipv6",
             "fd00:1:0:0:1::/80 overlaps networks.management.ipv6 (fd00:1::/64)");
    snprintf(y, sizeof(y),
             "range: lab\nnetworks:\n"
             "  service: {subnet: 10.10.0.0/24, ipv6: \"fd00:1::/48\"}\n"
             "  communication:\n    segments:\n"
             "      x: {subnet: 10.11.0.0/24, ipv6: \"fd00:1:0:2::/64\"}\n%s", tail);
    bad_spec(y, "networks.communication.segments.x.ipv6",
             "overlaps networks.service.ipv6 (fd00:1::/48)");
    /* adjacent, disjoint subnets and prefixes are fine */
    snprintf(y, sizeof(y),
             "range: lab\nnetworks:\n"
             "  management: {subnet: 10.10.0.0/24, ipv6: \"fd00:1::/64\"}\n"
             "  storage: {subnet: 10.10.1.0/24, ipv6: \"fd00:1:0:1::/64\"}\n"
             "  service: {subnet: 10.10.2.0/24}\n%s", tail);
    struct fx f;
    fx_open(&f, y);
    plan_ok(&f, NULL, 0);
    fx_close(&f);
}

static void test_exhaustion(void **state)
{
    (void)state;
    char y[1024];
#define EXH_FMT                                                                  \
    "range: lab\n"                                                                \
    "networks:\n"                                                                 \
    "  management: {subnet: 10.0.0.0/29, gateway: 10.0.0.1}\n"                    \
    "scenarios:\n"                                                                \
    "- name: s\n"                                                                 \
    "  roles:\n"                                                                  \
    "  - {name: a, template: t, count: %d, nics: [{network: management}]}\n"
    snprintf(y, sizeof(y), EXH_FMT, 6);
    bad_spec(y, "networks.management.subnet",
             "10.0.0.0/29 has 5 free host addresses for 6 NICs");

    struct fx f;
    snprintf(y, sizeof(y), EXH_FMT, 5);
    fx_open(&f, y);
    plan_ok(&f, NULL, 0);
    struct ipam_addr gw = a4("10.0.0.1");
    for (size_t g = 0; g < 5; g++) {
        const struct range_nic_addr *na = nic_of(&f, g, 0);
        assert_true(na->set);
        assert_false(ipam_addr_equal(&na->v4, &gw));
        for (size_t h = 0; h < g; h++)
            assert_false(ipam_addr_equal(&na->v4, &nic_of(&f, h, 0)->v4));
    }
    expect(&f, 0, 0, "10.0.0.2", 29, "10.0.0.1", NULL, 0);
    expect(&f, 4, 0, "10.0.0.6", 29, "10.0.0.1", NULL, 0);
    /* Another guest holding one of them: one short now. */
    struct range_held other[] = {{RANGE_NET_MANAGEMENT, "", a4("10.0.0.4"), "lab2-s-a-1", 0}};
    plan_bad(&f, other, 1, "networks.management.subnet",
             "10.0.0.0/29 has 4 free host addresses for 5 NICs");
    /* This range's own guest holding it: still fits, and keeps it. */
    struct range_held own[] = {{RANGE_NET_MANAGEMENT, "", a4("10.0.0.4"), "lab-s-a-5", 0}};
    plan_ok(&f, own, 1);
    expect(&f, 4, 0, "10.0.0.4", 29, "10.0.0.1", NULL, 0);
    expect(&f, 2, 0, "10.0.0.5", 29, "10.0.0.1", NULL, 0);
    expect(&f, 3, 0, "10.0.0.6", 29, "10.0.0.1", NULL, 0);
    fx_close(&f);

    /* Explicit addresses count against the subnet too. */
    bad_spec("range: lab\n"
             "networks:\n"
             "  communication:\n    segments:\n      red-net: {subnet: 10.0.0.0/30}\n"
             "scenarios:\n"
             "- name: s\n"
             "  roles:\n"
             "  - {name: a, template: t, count: 1,\n"
             "     nics: [{network: communication, segment: red-net, addresses: [10.0.0.2]}]}\n"
             "  - {name: b, template: t, count: 2,\n"
             "     nics: [{network: communication, segment: red-net}]}\n",
             "networks.communication.segments.red-net.subnet",
             "10.0.0.0/30 has 1 free host addresses for 2 NICs");
}

/* Every failure leaves out all zero, also after guests before the failing
 * one were given addresses. */
static void test_failure_zeroes(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, spec_explicit);
    /* the conflict is found at guest 1 (a-2), after a-1 was filled */
    struct range_held other[] = {
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.2"), "lab9-x-y-4", 0},
        {RANGE_NET_MANAGEMENT, "", a4("10.10.0.30"), "lab-red-b-1", 0}, /* kept first */
    };
    plan_bad(&f, other, 2, "scenarios[0].roles[0].nics[0].addresses[1]", "guest lab9-x-y-4");
    /* a good plan after a bad one is unaffected */
    plan_ok(&f, NULL, 0);
    expect(&f, 3, 0, "10.10.0.3", 24, "10.10.0.1", NULL, 0);
    fx_close(&f);

    /* exhaustion on the second scope, after the first was allocated */
    fx_open(&f, "range: lab\n"
                "networks:\n"
                "  management: {subnet: 10.0.0.0/24}\n"
                "  storage: {subnet: 10.1.0.0/30}\n"
                "scenarios:\n"
                "- name: s\n"
                "  roles:\n"
                "  - {name: a, template: t, count: 3,\n"
                "     nics: [{network: management}, {network: storage}]}\n");
    plan_bad(&f, NULL, 0, "networks.storage.subnet", "2 free host addresses for 3 NICs");
    fx_close(&f);
}

/* Step 1 keeps a held address only when it is still a free host of the
 * subnet: not the gateway, the network or broadcast address, another
 * guest's, or kept already for another NIC; then the NIC is planned as if
 * it held nothing. An address a guest of the range holds on a NIC the spec
 * no longer lists stays reserved (the guest keeps it until removed). */
static const char spec_held[] =
    "range: lab\n"
    "networks:\n"
    "  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1, ipv6: \"fd00::/64\"}\n"
    "scenarios:\n"
    "  - name: s\n"
    "    roles:\n"
    "      - name: a\n"
    "        template: t\n"
    "        count: 3\n"
    "        nics: [{network: management}]\n";

static void test_held_checked(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, spec_held);
    struct range_held h[2] = {
        {.network = RANGE_NET_MANAGEMENT, .segment = "", .owner = "lab-s-a-2", .nic = 0},
        {.network = RANGE_NET_MANAGEMENT, .segment = "", .nic = 0},
    };
    /* the gateway, the network and the broadcast address are not kept */
    static const char *const bad[] = {"10.10.0.1", "10.10.0.0", "10.10.0.255"};
    for (size_t i = 0; i < 3; i++) {
        h[0].v4 = a4(bad[i]);
        plan_ok(&f, h, 1);
        expect(&f, 0, 0, "10.10.0.2", 24, "10.10.0.1", "fd00::2", 64);
        expect(&f, 1, 0, "10.10.0.3", 24, "10.10.0.1", "fd00::3", 64);
        expect(&f, 2, 0, "10.10.0.4", 24, "10.10.0.1", "fd00::4", 64);
    }
    /* two guests of the range holding one address: the first keeps it */
    h[0] = (struct range_held){RANGE_NET_MANAGEMENT, "", a4("10.10.0.7"), "lab-s-a-1", 0};
    h[1] = (struct range_held){RANGE_NET_MANAGEMENT, "", a4("10.10.0.7"), "lab-s-a-3", 0};
    plan_ok(&f, h, 2);
    expect(&f, 0, 0, "10.10.0.7", 24, "10.10.0.1", "fd00::7", 64);
    expect(&f, 1, 0, "10.10.0.2", 24, "10.10.0.1", "fd00::2", 64);
    expect(&f, 2, 0, "10.10.0.3", 24, "10.10.0.1", "fd00::3", 64);
    /* another guest's address is not kept by one of ours, in either order */
    h[0] = (struct range_held){RANGE_NET_MANAGEMENT, "", a4("10.10.0.7"), "lab-s-a-3", 0};
    h[1] = (struct range_held){RANGE_NET_MANAGEMENT, "", a4("10.10.0.7"), "other-x-y-1", 0};
    for (int order = 0; order < 2; order++) {
        plan_ok(&f, h, 2);
        expect(&f, 0, 0, "10.10.0.2", 24, "10.10.0.1", "fd00::2", 64);
        expect(&f, 1, 0, "10.10.0.3", 24, "10.10.0.1", "fd00::3", 64);
        expect(&f, 2, 0, "10.10.0.4", 24, "10.10.0.1", "fd00::4", 64);
        struct range_held t = h[0];
        h[0] = h[1];
        h[1] = t;
    }
    /* held on a NIC the role no longer has: reserved, not kept */
    h[0] = (struct range_held){RANGE_NET_MANAGEMENT, "", a4("10.10.0.2"), "lab-s-a-1", 3};
    plan_ok(&f, h, 1);
    expect(&f, 0, 0, "10.10.0.3", 24, "10.10.0.1", "fd00::3", 64);
    expect(&f, 1, 0, "10.10.0.4", 24, "10.10.0.1", "fd00::4", 64);
    expect(&f, 2, 0, "10.10.0.5", 24, "10.10.0.1", "fd00::5", 64);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocate),
        cmocka_unit_test(test_ipv6_mirror),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_explicit),
        cmocka_unit_test(test_explicit_refused),
        cmocka_unit_test(test_dhcp_server),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_exhaustion),
        cmocka_unit_test(test_failure_zeroes),
        cmocka_unit_test(test_held_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
