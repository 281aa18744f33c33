/* range_addr: a range's NIC addresses from its spec. See herd/range_addr.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "herd/range_addr.h"

/* One subnet's pool, and who holds each host (for messages). */
struct scope {
    const struct range_subnet *sn;
    char path[96];               /* "networks.communication.segments.red-net" */
    struct ipam_pool pool;
    char **who;                  /* who[off - 1]: the holder, malloc'd; NULL free */
};

struct plan {
    const struct range_spec *spec;
    const struct range_guest *guests;
    size_t n;
    struct range_nic_addr *out;
    struct range_err *err;
    size_t n_scopes;
    struct scope *scopes;
};

static int fail(struct range_err *err, const char *field, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct range_err *err, const char *field, int line, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (err) {
        snprintf(err->field, sizeof(err->field), "%s", field);
        snprintf(err->msg, sizeof(err->msg), "%s%s%s", field, field[0] ? ": " : "", text);
        if (line > 0) {
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof(err->msg) - l, " (line %d)", line);
        }
        err->line = line;
        err->column = 0;
    }
    return -EINVAL;
}

void range_subnet_path(const struct range_subnet *sn, char *out, size_t size)
{
    if (sn->segment[0])
        snprintf(out, size, "networks.%s.segments.%s", range_network_name(sn->network),
                 sn->segment);
    else
        snprintf(out, size, "networks.%s", range_network_name(sn->network));
}

const struct range_subnet *range_subnet_find(const struct range_spec *spec,
                                             enum range_network net, const char *segment)
{
    for (size_t i = 0; i < spec->n_subnets; i++)
        if (spec->subnets[i].network == net && !strcmp(spec->subnets[i].segment, segment))
            return &spec->subnets[i];
    return NULL;
}

static struct scope *scope_of(struct plan *p, enum range_network net, const char *segment)
{
    for (size_t i = 0; i < p->n_scopes; i++)
        if (p->scopes[i].sn->network == net && !strcmp(p->scopes[i].sn->segment, segment))
            return &p->scopes[i];
    return NULL;
}

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n_scopes; i++) {
        struct scope *s = &p->scopes[i];
        for (uint32_t h = 0; s->who && h < s->pool.hosts; h++)
            free(s->who[h]);
        free(s->who);
        ipam_pool_free(&s->pool);
    }
    free(p->scopes);
}

/* Overlapping subnets (IPv4, then IPv6 prefixes) of one range. */
static int check_overlaps(struct plan *p)
{
    const struct range_spec *spec = p->spec;
    for (size_t i = 0; i < spec->n_subnets; i++) {
        const struct range_subnet *a = &spec->subnets[i];
        for (size_t j = 0; j < i; j++) {
            const struct range_subnet *b = &spec->subnets[j];
            char pa[96], pb[96], na[IPAM_NET_STR], nb[IPAM_NET_STR], field[110];
            bool v4 = ipam_net_overlap(&a->v4, &b->v4);
            bool v6 = !v4 && a->has_v6 && b->has_v6 && ipam_net_overlap(&a->v6, &b->v6);
            if (!v4 && !v6)
                continue;
            range_subnet_path(a, pa, sizeof(pa));
            range_subnet_path(b, pb, sizeof(pb));
            ipam_net_format(v4 ? &a->v4 : &a->v6, na);
            ipam_net_format(v4 ? &b->v4 : &b->v6, nb);
            snprintf(field, sizeof(field), "%s.%s", pa, v4 ? "subnet" : "ipv6");
            return fail(p->err, field, a->line, "%s overlaps %s.%s (%s)", na, pb,
                        v4 ? "subnet" : "ipv6", nb);
        }
    }
    return 0;
}

static int scopes_init(struct plan *p)
{
    const struct range_spec *spec = p->spec;
    if (!spec->n_subnets)
        return 0;
    p->scopes = calloc(spec->n_subnets, sizeof(*p->scopes));
    if (!p->scopes)
        return -ENOMEM;
    for (size_t i = 0; i < spec->n_subnets; i++) {
        struct scope *s = &p->scopes[i];
        s->sn = &spec->subnets[i];
        range_subnet_path(s->sn, s->path, sizeof(s->path));
        if (ipam_pool_init(&s->pool, &s->sn->v4) < 0)
            return -ENOMEM;
        p->n_scopes = i + 1;
        if (!(s->who = calloc(s->pool.hosts, sizeof(*s->who))))
            return -ENOMEM;
    }
    return 0;
}

/* Marks a taken by holder (a description, copied). 0, -EEXIST (who holds
 * it in *prev), -ERANGE / -EINVAL (not a host of s), -ENOMEM. */
static int take(struct scope *s, const struct ipam_addr *a, const char *holder,
                const char **prev)
{
    uint32_t off;
    int rc = ipam_net_offset(&s->pool.net, a, &off);
    if (rc < 0)
        return rc;
    rc = ipam_pool_take(&s->pool, a);
    if (rc == -EEXIST) {
        *prev = s->who[off - 1] ? s->who[off - 1] : "another NIC";
        return rc;
    }
    if (rc < 0)
        return rc;
    if (!(s->who[off - 1] = strdup(holder)))
        return -ENOMEM;
    return 0;
}

static void fill(struct range_nic_addr *na, const struct scope *s, const struct ipam_addr *v4)
{
    const struct range_subnet *sn = s->sn;
    uint32_t off = 0;
    na->set = true;
    na->v4 = *v4;
    na->len4 = sn->v4.len;
    na->has_gateway = sn->has_gateway;
    na->gateway = sn->gateway;
    if (sn->has_v6 && ipam_net_offset(&sn->v4, v4, &off) == 0 &&
        ipam_net_at(&sn->v6, off, &na->v6) == 0) {
        na->has_v6 = true;
        na->len6 = sn->v6.len;
    }
}

static bool guest_of_range(const struct plan *p, const char *name, size_t *g)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->guests[i].name, name)) {
            *g = i;
            return true;
        }
    return false;
}

/* The NIC of this range that HELD entry h belongs to: the guest is one of
 * the range's and the spec still puts that NIC on h's network and segment.
 * Returns its scope (NULL: h is someone else's) and its guest in *g. */
static struct scope *own_nic(struct plan *p, const struct range_held *h, size_t *g)
{
    if (h->nic >= RANGE_NICS_MAX || !guest_of_range(p, h->owner, g))
        return NULL;
    const struct range_role *role = p->guests[*g].role;
    if (!role->nics_set || h->nic >= role->n_nics)
        return NULL;
    const struct range_nic *nic = &role->nics[h->nic];
    if (nic->network != h->network || strcmp(nic->segment, h->segment))
        return NULL;
    return scope_of(p, nic->network, nic->segment);
}

/* The gateways; then what other guests hold (and what this range's guests
 * hold on NICs the spec no longer gives them: theirs until removed); then
 * step 1: this range's guests keep what they hold, where that address is
 * still a free host of the subnet (else the NIC goes on to steps 2-4). */
static int take_fixed(struct plan *p, const struct range_held *held, size_t n_held)
{
    const char *prev;
    for (size_t i = 0; i < p->n_scopes; i++) {
        struct scope *s = &p->scopes[i];
        char holder[sizeof(s->path) + 40];
        if (s->sn->has_gateway) {
            snprintf(holder, sizeof(holder), "%s.gateway", s->path);
            if (take(s, &s->sn->gateway, holder, &prev) == -ENOMEM)
                return -ENOMEM;
        }
        if (s->sn->dhcp) {
            snprintf(holder, sizeof(holder), "%s.dhcp (herdd's DHCP server)", s->path);
            if (take(s, &s->sn->dhcp_server, holder, &prev) == -ENOMEM)
                return -ENOMEM;
        }
    }
    for (int own = 0; own < 2; own++) {
        for (size_t i = 0; i < n_held; i++) {
            size_t g = 0;
            struct scope *mine = own_nic(p, &held[i], &g);
            struct scope *s = mine ? mine : scope_of(p, held[i].network, held[i].segment);
            char holder[RANGE_GUEST_NAME_MAX + 32];
            if (!s || (mine != NULL) != own)
                continue;
            snprintf(holder, sizeof(holder), "guest %s", held[i].owner);
            int rc = take(s, &held[i].v4, holder, &prev);
            if (rc == -ENOMEM)
                return rc;
            struct range_nic_addr *na = &p->out[g * RANGE_NICS_MAX + held[i].nic];
            if (own && rc == 0 && !na->set)
                fill(na, s, &held[i].v4);
        }
    }
    return 0;
}

static void role_path(const struct plan *p, const struct range_guest *gu, char *out,
                      size_t size)
{
    size_t si = (size_t)(gu->scenario - p->spec->scenarios);
    size_t ri = (size_t)(gu->role - gu->scenario->roles);
    snprintf(out, size, "scenarios[%zu].roles[%zu]", si, ri);
}

/* The explicit address for guest g's NIC k (an override or the list), with
 * its field path and line; false when there is none. */
static bool explicit_addr(const struct plan *p, size_t g, unsigned k, struct ipam_addr *a,
                          char *field, size_t size, int *line)
{
    const struct range_guest *gu = &p->guests[g];
    const struct range_role *role = gu->role;
    char rp[64];
    role_path(p, gu, rp, sizeof(rp));
    for (size_t i = 0; i < role->n_overrides; i++) {
        const struct range_override *o = &role->overrides[i];
        if (o->guest == gu->index && o->nic == k) {
            *a = o->address;
            snprintf(field, size, "%s.overrides[%zu].address", rp, i);
            *line = o->line;
            return true;
        }
    }
    const struct range_nic *nic = &role->nics[k];
    if (!nic->addresses)
        return false;
    *a = nic->addresses[gu->index - 1];
    snprintf(field, size, "%s.nics[%u].addresses[%u]", rp, k, gu->index - 1);
    *line = nic->addr_line[gu->index - 1];
    return true;
}

/* Steps 2 and 3: explicit addresses and overrides, checked and taken. */
static int take_explicit(struct plan *p)
{
    for (size_t g = 0; g < p->n; g++) {
        const struct range_role *role = p->guests[g].role;
        for (unsigned k = 0; role->nics_set && k < role->n_nics; k++) {
            struct range_nic_addr *na = &p->out[g * RANGE_NICS_MAX + k];
            const struct range_nic *nic = &role->nics[k];
            struct ipam_addr a;
            char field[110], as[IPAM_ADDR_STR], ns[IPAM_NET_STR];
            int line = 0;
            if (na->set || !explicit_addr(p, g, k, &a, field, sizeof(field), &line))
                continue;
            struct scope *s = scope_of(p, nic->network, nic->segment);
            ipam_addr_format(&a, as);
            if (!s)
                return fail(p->err, field, line,
                            "%s: %s%s%s has no subnet in networks to take it from", as,
                            range_network_name(nic->network), nic->segment[0] ? " segment " : "",
                            nic->segment);
            const char *prev = NULL;
            int rc = take(s, &a, field, &prev);
            ipam_net_format(&s->pool.net, ns);
            if (rc == -ERANGE)
                return fail(p->err, field, line, "%s is not in %s.subnet (%s)", as, s->path, ns);
            if (rc == -EINVAL)
                return fail(p->err, field, line, "%s is not a host address of %s", as, ns);
            if (rc == -EEXIST)
                return fail(p->err, field, line, "%s is already taken by %s", as, prev);
            if (rc < 0)
                return rc;
            fill(na, s, &a);
        }
    }
    return 0;
}

/* NICs still to be given an address on s. */
static uint32_t wanted(const struct plan *p, const struct scope *s)
{
    uint32_t n = 0;
    for (size_t g = 0; g < p->n; g++) {
        const struct range_role *role = p->guests[g].role;
        for (unsigned k = 0; role->nics_set && k < role->n_nics; k++)
            n += !p->out[g * RANGE_NICS_MAX + k].set &&
                 role->nics[k].network == s->sn->network &&
                 !strcmp(role->nics[k].segment, s->sn->segment);
    }
    return n;
}

/* Step 4: the lowest free host, in guest order. */
static int allocate(struct plan *p)
{
    for (size_t i = 0; i < p->n_scopes; i++) {
        struct scope *s = &p->scopes[i];
        uint32_t want = wanted(p, s), have = ipam_pool_free_count(&s->pool);
        if (want > have) {
            char field[110], ns[IPAM_NET_STR];
            snprintf(field, sizeof(field), "%s.subnet", s->path);
            ipam_net_format(&s->pool.net, ns);
            return fail(p->err, field, s->sn->line,
                        "%s has %u free host addresses for %u NICs of this range", ns, have,
                        want);
        }
    }
    for (size_t g = 0; g < p->n; g++) {
        const struct range_role *role = p->guests[g].role;
        for (unsigned k = 0; role->nics_set && k < role->n_nics; k++) {
            struct range_nic_addr *na = &p->out[g * RANGE_NICS_MAX + k];
            struct scope *s = scope_of(p, role->nics[k].network, role->nics[k].segment);
            struct ipam_addr a;
            if (na->set || !s)
                continue;
            if (ipam_pool_alloc(&s->pool, &a) < 0)
                return -ENOSPC; /* counted above: cannot happen */
            fill(na, s, &a);
        }
    }
    return 0;
}

int range_addr_plan(const struct range_spec *spec, const struct range_guest *guests, size_t n,
                    const struct range_held *held, size_t n_held, struct range_nic_addr *out,
                    struct range_err *err)
{
    struct plan p = {.spec = spec, .guests = guests, .n = n, .out = out, .err = err};
    memset(out, 0, n * RANGE_NICS_MAX * sizeof(*out));
    int rc = check_overlaps(&p);
    if (!rc)
        rc = scopes_init(&p);
    if (!rc)
        rc = take_fixed(&p, held, n_held);
    if (!rc)
        rc = take_explicit(&p);
    if (!rc)
        rc = allocate(&p);
    plan_free(&p);
    if (rc == -ENOMEM)
        fail(err, "", 0, "out of memory");
    if (rc)
        memset(out, 0, n * RANGE_NICS_MAX * sizeof(*out));
    return rc == -ENOSPC ? -EINVAL : rc;
}
