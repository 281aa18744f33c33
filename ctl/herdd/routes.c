/* herdd's API routes: splitting a path, matching it to a row of a route
 * table, the role and audit decisions taken from the row (routes.h). Pure:
 * no libmicrohttpd, no herdd state. */
#include <stdio.h>
#include <string.h>

#include "herdd.h"
#include "routes.h"

int hd_path_split(const char *url, struct hd_path *p)
{
    p->nseg = 0;
    if (strlen(url) >= sizeof(p->buf))
        return -1;
    snprintf(p->buf, sizeof(p->buf), "%s", url);
    for (char *save = NULL, *t = strtok_r(p->buf, "/", &save); t && p->nseg < HD_PATH_SEGS;
         t = strtok_r(NULL, "/", &save))
        p->seg[p->nseg++] = t;
    return 0;
}

/* The next segment of the pattern at *pp (start, length); false at its end. */
static bool next_seg(const char **pp, const char **s, size_t *len)
{
    const char *q = *pp;
    while (*q == '/')
        q++;
    *s = q;
    while (*q && *q != '/')
        q++;
    *len = (size_t)(q - *s);
    *pp = q;
    return *len != 0;
}

/* How specific a row's match is, a byte a segment (then one for the
 * method), compared as a string: the larger wins. */
enum { RANK_REST = 1, RANK_CAPTURE = 2, RANK_EXACT = 3 }; /* EXACT: a literal, or the end */
#define RANK_LEN (HD_PATH_SEGS + 2)

/* Whether r matches method and p; if so rank (RANK_LEN bytes) and cap
 * (HD_ROUTE_CAPS entries), where not NULL, are filled. */
static bool match_row(const struct hd_route *r, const char *method, const struct hd_path *p,
                      unsigned char *rank, const char **cap)
{
    unsigned char rk[RANK_LEN];
    const char *caps[HD_ROUTE_CAPS] = {0};
    const char *pat = r->pattern, *s;
    size_t len, ncap = 0;
    int i = 0;

    if (!r->method || !r->pattern || (strcmp(r->method, "*") && strcmp(r->method, method)))
        return false;
    for (; next_seg(&pat, &s, &len); i++) {
        if (len == 2 && !memcmp(s, "**", 2)) {
            memset(rk + i, RANK_REST, (size_t)(HD_PATH_SEGS + 1 - i));
            i = -1; /* matched whatever follows */
            break;
        }
        if (i >= p->nseg)
            return false;
        if (s[0] == '{' && s[len - 1] == '}') {
            if (ncap < HD_ROUTE_CAPS)
                caps[ncap++] = p->seg[i];
            rk[i] = RANK_CAPTURE;
        } else if (strlen(p->seg[i]) == len && !memcmp(s, p->seg[i], len)) {
            rk[i] = RANK_EXACT;
        } else {
            return false;
        }
    }
    if (i >= 0) { /* the pattern ended: so must the path */
        if (i != p->nseg)
            return false;
        memset(rk + i, RANK_EXACT, (size_t)(HD_PATH_SEGS + 1 - i));
    }
    rk[RANK_LEN - 1] = strcmp(r->method, "*") ? 1 : 0;
    if (rank)
        memcpy(rank, rk, sizeof(rk));
    if (cap)
        memcpy(cap, caps, sizeof(caps));
    return true;
}

bool hd_route_matches(const struct hd_route *r, const char *method, const struct hd_path *p)
{
    return match_row(r, method, p, NULL, NULL);
}

const struct hd_route *hd_route_match(const struct hd_route *tab, size_t n, const char *method,
                                      const struct hd_path *p, const char **cap)
{
    const struct hd_route *best = NULL;
    unsigned char best_rank[RANK_LEN] = {0}, rank[RANK_LEN];

    for (size_t i = 0; i < n; i++) {
        if (match_row(&tab[i], method, p, rank, NULL) &&
            (!best || memcmp(rank, best_rank, sizeof(rank)) > 0)) {
            best = &tab[i];
            memcpy(best_rank, rank, sizeof(rank));
        }
    }
    if (best && cap)
        match_row(best, method, p, NULL, cap);
    return best;
}

bool hd_route_allowed(unsigned roles, const struct hd_route *r)
{
    switch (r ? r->need : HD_NEED_UNSET) {
    case HD_NEED_ANY: return roles != 0;
    case HD_NEED_SYSADMIN: return roles & HD_ROLE_SYSADMIN;
    case HD_NEED_SECADMIN: return roles & HD_ROLE_SECADMIN;
    case HD_NEED_AUDITOR: return roles & HD_ROLE_AUDITOR;
    case HD_NEED_UNSET: break;
    }
    return false;
}

const char *hd_need_name(enum hd_need n)
{
    switch (n) {
    case HD_NEED_ANY: return "any role";
    case HD_NEED_SYSADMIN: return "sysadmin";
    case HD_NEED_SECADMIN: return "secadmin";
    case HD_NEED_AUDITOR: return "auditor";
    case HD_NEED_UNSET: break;
    }
    return "a route";
}

bool hd_route_audited(const struct hd_route *tab, size_t n, const char *method, const char *url)
{
    struct hd_path p;

    hd_path_split(url, &p); /* too long: no segment, the fallback rows decide */
    const struct hd_route *r = hd_route_match(tab, n, method, &p, NULL);
    return r ? r->mutates : strcmp(method, "GET") && strcmp(method, "HEAD");
}

bool hd_route_collection_known(const struct hd_route *tab, size_t n, const char *coll)
{
    for (size_t i = 0; i < n; i++) {
        const char *pat = tab[i].pattern, *s;
        size_t len;

        if (!tab[i].handler || !pat || !next_seg(&pat, &s, &len) || len != 2 ||
            memcmp(s, "v1", 2) || !next_seg(&pat, &s, &len))
            continue;
        if (strlen(coll) == len && !memcmp(s, coll, len))
            return true;
    }
    return false;
}
