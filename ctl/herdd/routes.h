/* herdd's API routes: the table that is the API's access policy (one row a
 * route: method, path pattern, role needed, audited or not, handler) and
 * the pure functions that read it: split a path, match a method and path
 * to a row, decide whether a caller's roles are enough and whether a
 * request is audited. The table itself is hd_routes in api.c (next to its
 * handlers); these functions take any table, so tests can use the real one
 * without a running daemon. docs/herdd.md "API access policy". */
#ifndef HERDD_ROUTES_H
#define HERDD_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

/* The role a route needs. HD_NEED_UNSET (0) is a row without a policy: it
 * refuses everyone, so a row that forgets its need fails closed. */
enum hd_need { HD_NEED_UNSET, HD_NEED_ANY, HD_NEED_SYSADMIN, HD_NEED_SECADMIN, HD_NEED_AUDITOR };

struct hd_call; /* a request being answered (api.c) */

struct hd_route {
    const char *method;  /* "GET", "POST", "DELETE"; "*": any (fallback rows) */
    const char *pattern; /* "/v1/vms/{name}/console": literal segments, {captures}
                          * (one segment each) and, last, "**" (any rest:
                          * a fallback row) */
    enum hd_need need;
    bool mutates;        /* audited (refused and failed requests too) */
    int (*handler)(struct hd_call *call); /* NULL on fallback rows: 405/404 */
};

extern const struct hd_route hd_routes[];
extern const size_t hd_routes_n;

#define HD_PATH_MAX 512 /* a path this long or longer is answered 414 */
#define HD_PATH_SEGS 8  /* segments kept; more are not looked at */
#define HD_ROUTE_CAPS 2 /* {captures} in a pattern, at most */

struct hd_path {
    char buf[HD_PATH_MAX];
    const char *seg[HD_PATH_SEGS];
    int nseg;
};

/* Splits url at '/' into p (empty segments are dropped: "//v1//vms" is
 * /v1/vms). -1 when url is HD_PATH_MAX long or longer (p then has no
 * segment). */
int hd_path_split(const char *url, struct hd_path *p);

/* Whether row r matches method and path p. */
bool hd_route_matches(const struct hd_route *r, const char *method, const struct hd_path *p);

/* The most specific of the n rows of tab that match method and p, NULL when
 * none does. Specific: at the first segment where two patterns differ, a
 * literal beats a {capture}, which beats "**" (so POST /v1/vms/x/console is
 * the console row, not the action row /v1/vms/{name}/{action}); then a
 * named method beats "*". cap (HD_ROUTE_CAPS entries, may be NULL) gets the
 * row's captures in order, pointing into p. */
const struct hd_route *hd_route_match(const struct hd_route *tab, size_t n, const char *method,
                                      const struct hd_path *p, const char **cap);

/* Whether a caller with roles (HD_ROLE_* bits) may make a request that
 * matched r (false for NULL and for rows without a need). */
bool hd_route_allowed(unsigned roles, const struct hd_route *r);

/* "sysadmin", "secadmin", "auditor", "any role": for 403 messages. */
const char *hd_need_name(enum hd_need n);

/* Whether a request (method, url as received) is audited: its row's
 * mutates, whatever its answer. A url that does not split (too long) or
 * matches no row is audited unless its method is GET or HEAD. */
bool hd_route_audited(const struct hd_route *tab, size_t n, const char *method, const char *url);

/* Whether coll (/v1/COLL/...) is a collection of the API: some row with a
 * handler is under /v1/coll. Decides 404 (no such path) against 405 (not
 * part of the API) for a request only a fallback row matches. */
bool hd_route_collection_known(const struct hd_route *tab, size_t n, const char *coll);

#endif
