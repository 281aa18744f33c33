/* herdd's route table (hd_routes, api.c), the API's access policy, checked
 * row by row: every row has a role; every request that changes something is
 * audited, but for the listed read-only ones; no role and auditor alone are
 * refused every audited route; each row matches the path it describes and
 * no two rows tie. The cases are made from the table, not listed: a row
 * added to it is checked without touching this file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../ctl/herdd/herdd.h"
#include "../../ctl/herdd/routes.h"

/* POST requests that change nothing, so are not audited. Any other row
 * whose method is not GET or HEAD must be audited. */
static const char *const read_only[] = {"POST /v1/node/plan", "POST /v1/node/plan/**"};

static bool is_read_only(const struct hd_route *r)
{
    char key[128];
    snprintf(key, sizeof(key), "%s %s", r->method, r->pattern);
    for (size_t i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
        if (!strcmp(key, read_only[i]))
            return true;
    return false;
}

static bool is_fallback(const struct hd_route *r)
{
    size_t l = strlen(r->pattern);
    return l >= 3 && !strcmp(r->pattern + l - 3, "/**");
}

/* The method a request of row r is made with ("*": a method no row names). */
static const char *method_of(const struct hd_route *r)
{
    return strcmp(r->method, "*") ? r->method : "PUT";
}

/* A path row r describes: {captures} become c1, c2 (no literal is),
 * "**" one more segment. Returns the number of captures. */
static int path_of(const struct hd_route *r, char *buf, size_t size)
{
    const char *p = r->pattern;
    int ncap = 0;
    size_t n = 0;

    buf[0] = 0;
    while (*p) {
        const char *s = p + 1, *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (s[0] == '{')
            n += (size_t)snprintf(buf + n, size - n, "/c%d", ++ncap);
        else if (len == 2 && !memcmp(s, "**", 2))
            n += (size_t)snprintf(buf + n, size - n, "/zz");
        else
            n += (size_t)snprintf(buf + n, size - n, "/%.*s", (int)len, s);
        p = s + len;
    }
    return ncap;
}

/* The pattern with every {capture} as {}: two rows of one method with the
 * same shape would match the same paths equally well. */
static void shape_of(const struct hd_route *r, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = r->pattern; *p && n + 2 < size; p++) {
        buf[n++] = *p;
        if (*p == '{') {
            while (p[1] && p[1] != '}')
                p++;
        }
    }
    buf[n] = 0;
}

static void test_every_row_has_a_role(void **state)
{
    (void)state;
    assert_true(hd_routes_n > 0);
    for (size_t i = 0; i < hd_routes_n; i++) {
        const struct hd_route *r = &hd_routes[i];
        assert_non_null(r->method);
        assert_non_null(r->pattern);
        if (r->need <= HD_NEED_UNSET || r->need > HD_NEED_AUDITOR)
            fail_msg("%s %s: no role needed (need %d)", r->method, r->pattern, (int)r->need);
    }
}

/* A row with a handler names GET, POST or DELETE (any other method is
 * answered 405 before the handler) and has no "**"; a fallback row
 * ("**") has no handler. */
static void test_handlers_and_fallbacks(void **state)
{
    (void)state;
    for (size_t i = 0; i < hd_routes_n; i++) {
        const struct hd_route *r = &hd_routes[i];
        if (is_fallback(r)) {
            if (r->handler)
                fail_msg("fallback %s %s has a handler", r->method, r->pattern);
            continue;
        }
        if (!r->handler || strstr(r->pattern, "**"))
            fail_msg("%s %s: a route needs a handler and no **", r->method, r->pattern);
        if (strcmp(r->method, "GET") && strcmp(r->method, "POST") && strcmp(r->method, "DELETE"))
            fail_msg("%s %s: herdd answers %s 405 before any handler", r->method, r->pattern,
                     r->method);
    }
}

static void test_mutating_rows_are_audited(void **state)
{
    (void)state;
    for (size_t i = 0; i < hd_routes_n; i++) {
        const struct hd_route *r = &hd_routes[i];
        const char *m = method_of(r);
        char path[256];
        bool reads = !strcmp(m, "GET") || !strcmp(m, "HEAD") || is_read_only(r);

        if (r->mutates == reads)
            fail_msg("%s %s: audited %d, expected %d", r->method, r->pattern, r->mutates, !reads);
        path_of(r, path, sizeof(path));
        /* answer() asks hd_route_audited with the url as received */
        if (hd_route_audited(hd_routes, hd_routes_n, m, path) != r->mutates)
            fail_msg("%s %s: the audit decision for %s %s is not the row's", r->method,
                     r->pattern, m, path);
    }
    /* each listed read-only request is a row (the list cannot go stale) */
    for (size_t k = 0; k < sizeof(read_only) / sizeof(read_only[0]); k++) {
        bool found = false;
        for (size_t i = 0; i < hd_routes_n && !found; i++)
            found = is_read_only(&hd_routes[i]) &&
                    !strcmp(strchr(read_only[k], ' ') + 1, hd_routes[i].pattern);
        if (!found)
            fail_msg("read-only '%s' is no row of the table", read_only[k]);
    }
}

/* No role, or auditor alone, may make a request that is audited; where a
 * fallback row lets them (an auditor under /v1/audit: 405), nothing runs. */
static void test_mutating_rows_refuse_no_role_and_auditor(void **state)
{
    (void)state;
    for (size_t i = 0; i < hd_routes_n; i++) {
        const struct hd_route *r = &hd_routes[i];
        if (!r->mutates)
            continue;
        if (hd_route_allowed(0, r))
            fail_msg("%s %s: a caller with no role is let through", r->method, r->pattern);
        if (hd_route_allowed(HD_ROLE_AUDITOR, r) && r->handler)
            fail_msg("%s %s: an auditor may change state", r->method, r->pattern);
    }
}

static void test_each_row_matches_its_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < hd_routes_n; i++) {
        const struct hd_route *r = &hd_routes[i];
        char path[256];
        const char *cap[HD_ROUTE_CAPS] = {0};
        struct hd_path p;
        int ncap = path_of(r, path, sizeof(path));

        assert_int_equal(hd_path_split(path, &p), 0);
        assert_true(hd_route_matches(r, method_of(r), &p));
        const struct hd_route *m = hd_route_match(hd_routes, hd_routes_n, method_of(r), &p, cap);
        if (m != r)
            fail_msg("%s %s: %s %s is answered by %s %s", r->method, r->pattern, method_of(r),
                     path, m ? m->method : "-", m ? m->pattern : "no row");
        assert_true(ncap <= HD_ROUTE_CAPS);
        for (int k = 0; k < ncap; k++) {
            char want[8];
            snprintf(want, sizeof(want), "c%d", k + 1);
            assert_non_null(cap[k]);
            assert_string_equal(cap[k], want);
        }
        /* GET, POST, DELETE on every row's path find a row (the fallbacks) */
        static const char *const methods[] = {"GET", "POST", "DELETE", "PUT", "HEAD"};
        for (size_t k = 0; k < 5; k++)
            assert_non_null(hd_route_match(hd_routes, hd_routes_n, methods[k], &p, NULL));
    }
}

/* Two rows of a method tie on a path only if they have the same shape
 * (hd_route_match: literal over {capture} over "**", at the first segment
 * they differ): no two rows may. */
static void test_no_two_rows_tie(void **state)
{
    (void)state;
    for (size_t i = 0; i < hd_routes_n; i++) {
        for (size_t j = i + 1; j < hd_routes_n; j++) {
            char a[256], b[256];
            if (strcmp(hd_routes[i].method, hd_routes[j].method))
                continue;
            shape_of(&hd_routes[i], a, sizeof(a));
            shape_of(&hd_routes[j], b, sizeof(b));
            if (!strcmp(a, b))
                fail_msg("rows %zu and %zu are both %s %s", i, j, hd_routes[i].method, a);
        }
    }
}

static void test_allowed(void **state)
{
    static const struct {
        enum hd_need need;
        unsigned roles;
        bool ok;
    } cases[] = {
        {HD_NEED_ANY, 0, false},
        {HD_NEED_ANY, HD_ROLE_AUDITOR, true},
        {HD_NEED_SYSADMIN, HD_ROLE_SECADMIN | HD_ROLE_AUDITOR, false},
        {HD_NEED_SYSADMIN, HD_ROLE_SYSADMIN, true},
        {HD_NEED_SECADMIN, HD_ROLE_SYSADMIN | HD_ROLE_AUDITOR, false},
        {HD_NEED_SECADMIN, HD_ROLE_SECADMIN, true},
        {HD_NEED_AUDITOR, HD_ROLE_SYSADMIN | HD_ROLE_SECADMIN, false},
        {HD_NEED_AUDITOR, HD_ROLE_AUDITOR, true},
        {HD_NEED_UNSET, HD_ROLE_SYSADMIN | HD_ROLE_SECADMIN | HD_ROLE_AUDITOR, false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hd_route r = {"GET", "/v1/x", cases[i].need, false, NULL};
        assert_int_equal(hd_route_allowed(cases[i].roles, &r), cases[i].ok);
    }
    assert_false(hd_route_allowed(HD_ROLE_SYSADMIN, NULL));
    assert_string_equal(hd_need_name(HD_NEED_SYSADMIN), "sysadmin");
    assert_string_equal(hd_need_name(HD_NEED_ANY), "any role");
}

/* Requests with no route keep the policy herdd had before the table
 * (need from collection and method, audited unless GET/HEAD), and the
 * overlaps resolve to the specific row. */
static void test_paths_without_route(void **state)
{
    static const struct {
        const char *method, *path;
        enum hd_need need;
        bool audited;
        const char *pattern; /* the row that answers */
    } cases[] = {
        {"PUT", "/v1/vms", HD_NEED_SYSADMIN, true, "/**"},
        {"HEAD", "/v1/vms", HD_NEED_SYSADMIN, false, "/**"},
        {"GET", "/v1/nothing", HD_NEED_ANY, false, "/**"},
        {"POST", "/v1/nothing/x", HD_NEED_SYSADMIN, true, "/**"},
        {"GET", "/v1/audit/x", HD_NEED_AUDITOR, false, "/v1/audit/**"},
        {"HEAD", "/v1/audit", HD_NEED_AUDITOR, false, "/v1/audit/**"},
        {"DELETE", "/v1/audit/verify", HD_NEED_AUDITOR, true, "/v1/audit/**"},
        {"POST", "/v1/node/plan/x", HD_NEED_ANY, false, "/v1/node/plan/**"},
        {"POST", "/v1/node/network/x", HD_NEED_SECADMIN, true, "/v1/node/network/**"},
        {"PUT", "/v1/node/network", HD_NEED_SYSADMIN, true, "/**"},
        {"POST", "/v1//node//plan/", HD_NEED_ANY, false, "/v1/node/plan"},
        {"POST", "/v1/vms/x/console", HD_NEED_SYSADMIN, true, "/v1/vms/{name}/console"},
        {"POST", "/v1/vms/x/net", HD_NEED_SYSADMIN, true, "/v1/vms/{name}/{action}"},
        {"GET", "/v1/templates/derive", HD_NEED_ANY, false, "/v1/templates/{name}"},
        {"POST", "/v1/templates/x", HD_NEED_SYSADMIN, true, "/**"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hd_path p;
        assert_int_equal(hd_path_split(cases[i].path, &p), 0);
        const struct hd_route *r = hd_route_match(hd_routes, hd_routes_n, cases[i].method, &p,
                                                  NULL);
        assert_non_null(r);
        if (strcmp(r->pattern, cases[i].pattern) || r->need != cases[i].need ||
            hd_route_audited(hd_routes, hd_routes_n, cases[i].method, cases[i].path) !=
                cases[i].audited)
            fail_msg("%s %s: row %s %s need %d audited %d", cases[i].method, cases[i].path,
                     r->method, r->pattern, (int)r->need, r->mutates);
    }
    const char *cap[HD_ROUTE_CAPS];
    struct hd_path p;
    hd_path_split("/v1/vms/g1/dance", &p);
    assert_non_null(hd_route_match(hd_routes, hd_routes_n, "POST", &p, cap));
    assert_string_equal(cap[0], "g1");
    assert_string_equal(cap[1], "dance");

    /* a path too long to split: audited unless GET or HEAD */
    char long_path[HD_PATH_MAX + 8];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = 0;
    assert_int_equal(hd_path_split(long_path, &p), -1);
    assert_true(hd_route_audited(hd_routes, hd_routes_n, "POST", long_path));
    assert_false(hd_route_audited(hd_routes, hd_routes_n, "GET", long_path));
    assert_false(hd_route_audited(hd_routes, hd_routes_n, "HEAD", long_path));

    assert_true(hd_route_collection_known(hd_routes, hd_routes_n, "vms"));
    assert_true(hd_route_collection_known(hd_routes, hd_routes_n, "audit"));
    assert_false(hd_route_collection_known(hd_routes, hd_routes_n, "nothing"));
    assert_false(hd_route_collection_known(hd_routes, hd_routes_n, "v"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_has_a_role),
        cmocka_unit_test(test_handlers_and_fallbacks),
        cmocka_unit_test(test_mutating_rows_are_audited),
        cmocka_unit_test(test_mutating_rows_refuse_no_role_and_auditor),
        cmocka_unit_test(test_each_row_matches_its_path),
        cmocka_unit_test(test_no_two_rows_tie),
        cmocka_unit_test(test_allowed),
        cmocka_unit_test(test_paths_without_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
