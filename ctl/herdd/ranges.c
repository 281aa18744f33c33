/* Ranges: a YAML spec (libherd-ctl's range_spec) expanded into guests named
 * <range>-<scenario>-<role>-<n>, created and started with bounded
 * parallelism by a background job that reports progress as events
 * (range.progress, range.failed_guest, range.up.done). `up` is idempotent:
 * guests that exist are started if they are not running, missing ones are
 * created, so `up` after an interrupted `up` completes the range. `down`
 * removes exactly the range's guests, the segment bridges it created and
 * its resource disks (resdisk.c; built at each `up`, kept by `reset`). */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd/capacity.h"
#include "herd/range_spec.h"
#include "herdd.h"


struct hd_range_job {
    struct hd_ranges *rg; /* its context (the job's threads reach it here) */
    char name[RANGE_NAME_MAX + 1];
    struct range_spec *spec;
    struct range_guest *guests;
    size_t n;
    struct range_nic_addr *addrs; /* guest g's NIC k: addrs[g * RANGE_NICS_MAX + k] */
    struct hd_resdisk *disks;     /* resource disks: [0] the range's, [1 + s] scenario s's */
    pthread_mutex_t mu;
    size_t next;
    long created, started, failed, ready;
    struct hd_range_job *next_job;
};

void hd_ranges_init(struct hd_ranges *rg, struct hd_guests *gs)
{
    rg->gs = gs;
    rg->jobs = NULL;
}

/* store lock held */
static bool job_running(struct hd_ranges *rg, const char *name)
{
    for (struct hd_range_job *j = rg->jobs; j; j = j->next_job)
        if (!strcmp(j->name, name))
            return true;
    return false;
}

/* store lock held */
static void job_unlink(struct hd_range_job *j)
{
    for (struct hd_range_job **pp = &j->rg->jobs; *pp; pp = &(*pp)->next_job)
        if (*pp == j) {
            *pp = j->next_job;
            break;
        }
}

static void job_free(struct hd_range_job *j)
{
    free(j->guests);
    free(j->addrs);
    free(j->disks);
    range_spec_free(j->spec);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* store lock held; steals extra (may be NULL) */
static void set_range_state(struct hd_store *st, const char *name, const char *state,
                            json_t *extra)
{
    json_t *r = hd_db_ranges(st, name);
    if (!r) {
        json_decref(extra);
        return;
    }
    json_t *spec = json_incref(json_object_get(r, "spec"));
    json_object_del(r, "spec");
    json_object_del(r, "name");
    json_object_set_new(r, "state", json_string(state));
    if (extra)
        json_object_update(r, extra);
    hd_db_save_range(st, name, json_string_value(spec), r);
    json_decref(spec);
    json_decref(r);
    json_decref(extra);
}

static void progress(struct hd_range_job *j, const char *type)
{
    hd_event(&j->rg->gs->st->ev, type, j->name,
             json_pack("{ss sI sI sI sI sI}", "range", j->name, "guests", (json_int_t)j->n,
                       "created", (json_int_t)j->created, "started", (json_int_t)j->started,
                       "ready", (json_int_t)j->ready, "failed", (json_int_t)j->failed));
}

/* The planned addresses of one NIC, into its API item. */
static void nic_addresses(json_t *o, const struct range_nic_addr *na)
{
    char a[IPAM_NET_STR];
    if (!na->set)
        return;
    ipam_addr_format_len(&na->v4, na->len4, a);
    json_object_set_new(o, "ipv4", json_string(a));
    if (na->has_gateway) {
        ipam_addr_format(&na->gateway, a);
        json_object_set_new(o, "gateway", json_string(a));
    }
    if (na->has_v6) {
        ipam_addr_format_len(&na->v6, na->len6, a);
        json_object_set_new(o, "ipv6", json_string(a));
    }
}

/* The guest's NoCloud seed (herdd.md "Seeds"): when the range has keys or
 * the role commands; its host name is the guest's name (vm create's
 * default). NULL: no seed. */
static json_t *cloud_init(const struct range_spec *spec, const struct range_role *role)
{
    if (!spec->n_ssh_keys && !role->n_runcmd)
        return NULL;
    json_t *keys = json_array(), *cmds = json_array();
    for (size_t i = 0; i < spec->n_ssh_keys; i++)
        json_array_append_new(keys, json_string(spec->ssh_keys[i]));
    for (size_t i = 0; i < role->n_runcmd; i++)
        json_array_append_new(cmds, json_string(role->runcmd[i]));
    return json_pack("{so so}", "ssh_authorized_keys", keys, "runcmd", cmds);
}

static json_t *guest_body(const struct hd_range_job *j, size_t g)
{
    const struct range_guest *gu = &j->guests[g];
    const struct range_role *role = gu->role;
    json_t *b = json_pack("{ss ss sb}", "name", gu->name, "template", role->template_name,
                          "start", 1);
    if (role->cpus)
        json_object_set_new(b, "cpus", json_integer(role->cpus));
    if (role->mem)
        json_object_set_new(b, "mem", json_integer((json_int_t)role->mem));
    if (role->nics_set) {
        json_t *a = json_array();
        for (size_t k = 0; k < role->n_nics; k++) {
            json_t *o = json_pack("{ss}", "network", range_network_name(role->nics[k].network));
            if (role->nics[k].segment[0])
                json_object_set_new(o, "segment", json_string(role->nics[k].segment));
            nic_addresses(o, &j->addrs[g * RANGE_NICS_MAX + k]);
            json_array_append_new(a, o);
        }
        json_object_set_new(b, "nics", a);
    }
    json_t *ci = cloud_init(j->spec, role);
    if (ci)
        json_object_set_new(b, "cloud_init", ci);
    return b;
}

/* The resource disk of the guest's scope: its scenario's, else the range's;
 * NULL when neither names one. */
static const char *guest_resources(const struct hd_range_job *j, const struct range_guest *gu)
{
    size_t s = (size_t)(gu->scenario - j->spec->scenarios);
    if (gu->scenario->resources)
        return j->disks[1 + s].path;
    return j->spec->resources ? j->disks[0].path : NULL;
}

static void one_guest(struct hd_range_job *j, const struct range_guest *gu)
{
    struct hd_guests *gs = j->rg->gs;
    struct hd_store *st = gs->st;
    struct hd_err err = {0};
    json_t *out = NULL;
    int rc;

    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, gu->name);
    bool exists = vm != NULL, running = vm && vm->pidfd >= 0;
    pthread_mutex_unlock(&st->mu);
    if (running) {
        rc = 0;
    } else if (exists) {
        rc = hd_vm_action(gs, gu->name, "start", NULL, &out, &err);
    } else {
        json_t *b = guest_body(j, (size_t)(gu - j->guests));
        rc = hd_vm_create(gs, b, j->name, guest_resources(j, gu), &out, &err);
        json_decref(b);
    }
    json_decref(out);
    pthread_mutex_lock(&j->mu);
    if (rc == 0) {
        j->created += !exists;
        j->started++;
    } else {
        j->failed++;
        /* create may have succeeded and only the start failed */
        pthread_mutex_lock(&st->mu);
        j->created += !exists && hd_vm_find(st, gu->name) != NULL;
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&j->mu);
    if (rc < 0)
        hd_event(&st->ev, "range.failed_guest", gu->name,
                 json_pack("{ss ss si}", "range", j->name, "error", err.msg, "status", err.status));
    pthread_mutex_lock(&j->mu);
    progress(j, "range.progress");
    pthread_mutex_unlock(&j->mu);
}

static void *worker(void *arg)
{
    struct hd_range_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n)
            break;
        one_guest(j, &j->guests[i]);
    }
    return NULL;
}

/* Counts the range's guests: ready, and those that ended (store lock held). */
static void count_ready(struct hd_range_job *j, long *ready, long *pending)
{
    *ready = 0;
    *pending = 0;
    for (struct hd_vm *vm = j->rg->gs->st->vms; vm; vm = vm->next) {
        if (strcmp(vm->range, j->name))
            continue;
        if (vm->ready)
            (*ready)++;
        else if (vm->pidfd >= 0)
            (*pending)++;
    }
}

/* The guests exist now: their DHCP leases are by their real MACs. */
static void refresh_dhcp(struct hd_range_job *j)
{
    struct hd_store *st = j->rg->gs->st;
    struct hd_range_plan plan = {j->name, j->spec, j->guests, j->n, j->addrs};
    pthread_mutex_lock(&st->mu);
    json_t *r = hd_db_ranges(st, j->name);
    json_t *recs = json_incref(json_object_get(r, "dhcp"));
    json_decref(r);
    pthread_mutex_unlock(&st->mu);
    if (json_array_size(recs)) {
        json_t *now = hd_range_dhcp_refresh(st, &plan, recs);
        pthread_mutex_lock(&st->mu);
        set_range_state(st, j->name, "starting", json_pack("{so}", "dhcp", now));
        pthread_mutex_unlock(&st->mu);
    }
    json_decref(recs);
}

static void *job_main(void *arg)
{
    struct hd_range_job *j = arg;
    struct hd_store *st = j->rg->gs->st;
    unsigned np = st->cfg->range_parallel;
    pthread_t th[256];
    if (np > j->n)
        np = (unsigned)j->n;
    if (np == 0)
        np = 1;
    unsigned started = 0;
    for (unsigned i = 0; i < np; i++)
        if (pthread_create(&th[i], NULL, worker, j) == 0)
            started++;
    if (!started)
        worker(j);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    refresh_dhcp(j);

    /* wait until every started guest is ready or gone */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += st->cfg->ready_timeout_ms / 1000;
    pthread_mutex_lock(&st->mu);
    long ready = 0, pending = 0, last = -1;
    for (;;) {
        count_ready(j, &ready, &pending);
        if (ready != last) {
            pthread_mutex_lock(&j->mu);
            j->ready = ready;
            progress(j, "range.progress");
            pthread_mutex_unlock(&j->mu);
            last = ready;
        }
        if (!pending || st->stopping)
            break;
        if (pthread_cond_timedwait(&st->changed, &st->mu, &dl) == ETIMEDOUT)
            break;
    }
    long total = (long)j->n;
    long failed = total - ready;
    j->ready = ready;
    j->failed = failed;
    set_range_state(st, j->name, failed ? "degraded" : "up",
                    json_pack("{sI sI}", "ready", (json_int_t)ready, "failed", (json_int_t)failed));
    job_unlink(j);
    pthread_mutex_unlock(&st->mu);
    progress(j, "range.up.done");
    job_free(j);
    return NULL;
}

/* Creates the segment bridges the spec needs that do not exist; their names
 * go to *made. Store lock not held. */
static int make_segments(const struct hd_config *cfg, const struct range_spec *spec,
                         json_t *made, struct hd_err *err)
{
    struct netdev_nl *nl = NULL;
    int rc = 0;
    for (size_t s = 0; s < spec->n_scenarios && rc == 0; s++) {
        for (size_t r = 0; r < spec->scenarios[s].n_roles && rc == 0; r++) {
            const struct range_role *role = &spec->scenarios[s].roles[r];
            for (size_t k = 0; k < role->n_nics && rc == 0; k++) {
                const struct range_nic *nic = &role->nics[k];
                enum netdev_role nr = (enum netdev_role)nic->network;
                if (!nic->segment[0] || netdev_config_find(&cfg->net, nr, nic->segment))
                    continue; /* the role's bridge, or a configured segment */
                const struct netdev_bridge_cfg *parent = netdev_config_find(&cfg->net, nr, "");
                if (!parent)
                    continue; /* guest creation reports the missing role */
                struct netdev_bridge_cfg b;
                memset(&b, 0, sizeof(b));
                b.role = nr;
                snprintf(b.segment, sizeof(b.segment), "%s", nic->segment);
                hd_segment_bridge(cfg, spec->name, nr, nic->segment, b.name);
                b.mtu = parent->mtu;
                snprintf(b.field, sizeof(b.field), "scenarios[%zu].roles[%zu].nics[%zu].segment",
                         s, r, k);
                if (if_nametoindex(b.name))
                    continue;
                if (!nl && (rc = netdev_nl_open(&nl)) < 0) {
                    hd_fail(err, 500, "", "netlink: %s", strerror(-rc));
                    break;
                }
                struct herd_err nerr;
                herd_err_clear(&nerr);
                rc = netdev_bridge_setup(nl, &b, &nerr);
                if (rc < 0) {
                    hd_fail(err, 409, b.field, "segment bridge %s: %s", b.name,
                            nerr.msg[0] ? nerr.msg : strerror(-rc));
                    break;
                }
                json_array_append_new(made, json_string(b.name));
            }
        }
    }
    if (nl)
        netdev_nl_close(nl);
    return rc < 0 ? -1 : 0;
}

static void remove_bridges(json_t *names)
{
    struct netdev_nl *nl = NULL;
    size_t i;
    json_t *v;
    if (!json_array_size(names) || netdev_nl_open(&nl) < 0)
        return;
    json_array_foreach(names, i, v) {
        struct netdev_bridge_cfg b;
        struct herd_err nerr;
        memset(&b, 0, sizeof(b));
        snprintf(b.name, sizeof(b.name), "%s", json_string_value(v));
        herd_err_clear(&nerr);
        netdev_bridge_teardown(nl, &b, &nerr);
    }
    netdev_nl_close(nl);
}

/* A job for the range spec in yaml: parsed and expanded into its guests. */
static struct hd_range_job *job_new(struct hd_ranges *rg, const char *yaml, size_t len,
                                    struct hd_err *err)
{
    struct range_spec *spec = NULL;
    struct range_err rerr;
    memset(&rerr, 0, sizeof(rerr));
    int rc = range_spec_parse(yaml, len, &spec, &rerr);
    if (rc < 0) {
        hd_fail(err, rc == -EFBIG ? 413 : 400, rerr.field, "%s",
                rerr.msg[0] ? rerr.msg : strerror(-rc));
        return NULL;
    }
    struct hd_range_job *j = calloc(1, sizeof(*j));
    j->rg = rg;
    snprintf(j->name, sizeof(j->name), "%s", spec->name);
    j->spec = spec;
    if (range_spec_expand(spec, &j->guests, &j->n) < 0) {
        range_spec_free(spec);
        free(j);
        hd_fail(err, 500, "", "range expansion failed");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    j->addrs = calloc(j->n ? j->n * RANGE_NICS_MAX : 1, sizeof(*j->addrs));
    j->disks = calloc(spec->n_scenarios + 1, sizeof(*j->disks));
    if (!j->addrs || !j->disks) {
        job_free(j);
        hd_fail(err, 500, "", "out of memory");
        return NULL;
    }
    return j;
}

/* One capacity item per role (store lock held): its template must exist and
 * each of its networks have a bridge here. Counts are left 0. */
static struct cap_item *role_items(struct hd_store *st, const struct range_spec *spec,
                                   size_t *nroles, struct hd_err *err)
{
    *nroles = 0;
    for (size_t s = 0; s < spec->n_scenarios; s++)
        *nroles += spec->scenarios[s].n_roles;
    struct cap_item *items = calloc(*nroles + 1, sizeof(*items));
    size_t k = 0;
    for (size_t s = 0; s < spec->n_scenarios; s++) {
        for (size_t r = 0; r < spec->scenarios[s].n_roles; r++) {
            const struct range_role *role = &spec->scenarios[s].roles[r];
            struct hd_template *t = hd_template_find(st, role->template_name);
            char field[96];
            snprintf(field, sizeof(field), "scenarios[%zu].roles[%zu].template", s, r);
            if (!t) {
                free(items);
                hd_fail(err, 400, field, "%s: no template '%s'", field, role->template_name);
                return NULL;
            }
            for (size_t n = 0; n < role->n_nics; n++) {
                const char *net = range_network_name(role->nics[n].network);
                if (hd_bridge_of(st->cfg, net))
                    continue;
                free(items);
                snprintf(field, sizeof(field), "scenarios[%zu].roles[%zu].nics[%zu].network", s,
                         r, n);
                hd_fail(err, 400, field, "%s: network '%s' has no bridge on this node", field,
                        net);
                return NULL;
            }
            items[k].template_name = t->name;
            items[k].cpus = role->cpus ? role->cpus : t->cpus;
            items[k].mem = role->mem ? role->mem : t->mem;
            k++;
        }
    }
    return items;
}

/* Counts, per role, the guests that must start (store lock held); a name
 * taken by a guest outside the range refuses it. */
static int count_to_start(const struct hd_range_job *j, struct cap_item *items, struct hd_err *err)
{
    size_t k = 0;
    const struct range_role *prev_role = NULL;
    for (size_t i = 0; i < j->n; i++) {
        const struct range_guest *gu = &j->guests[i];
        if (prev_role && gu->role != prev_role)
            k++;
        prev_role = gu->role;
        struct hd_vm *vm = hd_vm_find(j->rg->gs->st, gu->name);
        if (vm && strcmp(vm->range, j->name))
            return hd_fail(err, 409, "range",
                           "guest name %s is taken by a guest outside range %s", gu->name,
                           j->name);
        if (!vm || vm->pidfd < 0)
            items[k].count++;
    }
    return 0;
}

/* Every check before anything changes (store lock held): not already
 * coming up, templates and networks, names, capacity, the storage floor. */
/* Every NIC's address (store lock held): guests that exist keep theirs,
 * other guests' are not handed out (herd/range_addr.h). */
static int plan_addresses(struct hd_range_job *j, struct hd_err *err)
{
    size_t n_held = 0;
    struct range_held *held = hd_addr_held(j->rg->gs->st, j->name, &n_held);
    struct range_err rerr;
    if (!held)
        return hd_fail(err, 500, "", "out of memory");
    memset(&rerr, 0, sizeof(rerr));
    int rc = range_addr_plan(j->spec, j->guests, j->n, held, n_held, j->addrs, &rerr);
    free(held);
    if (rc == -ENOMEM)
        return hd_fail(err, 500, "", "out of memory");
    if (rc < 0)
        return hd_fail(err, 400, rerr.field, "%s", rerr.msg);
    return 0;
}

/* A role on a warm template gets clones of its snapshot: no seed of its own
 * (ssh keys, runcmd) and no resource disk. Store lock held. */
static int warm_roles_check(struct hd_store *st, const struct range_spec *spec,
                            struct hd_err *err)
{
    for (size_t s = 0; s < spec->n_scenarios; s++) {
        const struct range_scenario *sc = &spec->scenarios[s];
        for (size_t r = 0; r < sc->n_roles; r++) {
            const struct range_role *role = &sc->roles[r];
            const struct hd_template *t = hd_template_find(st, role->template_name);
            if (!t || !t->snapshot[0])
                continue;
            char field[96];
            snprintf(field, sizeof(field), "scenarios[%zu].roles[%zu].template", s, r);
            if (spec->n_ssh_keys || role->n_runcmd || spec->resources || sc->resources)
                return hd_fail(err, 400, field, "%s: '%s' is a warm template (clones of snapshot "
                               "'%s'): its guests take no ssh keys, runcmd or resource disk",
                               field, t->name, t->snapshot);
        }
    }
    return 0;
}

static int range_admit(struct hd_range_job *j, struct hd_err *err)
{
    struct hd_res *res = j->rg->gs->res;
    size_t nroles;
    if (job_running(j->rg, j->name))
        return hd_fail(err, 409, "range", "range '%s' is being brought up already", j->name);
    if (warm_roles_check(res->st, j->spec, err) < 0)
        return -1;
    if (plan_addresses(j, err) < 0 || hd_range_dhcp_check(res->st, j->name, j->spec, err) < 0)
        return -1;
    struct cap_item *items = role_items(res->st, j->spec, &nroles, err);
    if (!items)
        return -1;
    int rc = count_to_start(j, items, err);
    if (rc == 0)
        rc = hd_admit_many(res, items, nroles, err);
    free(items);
    if (rc < 0)
        return -1;
    if (res->disk_total && res->disk_free < res->cfg->storage_floor)
        return hd_fail(err, 507, "", "state dir is under its free-space floor: no new overlays");
    return 0;
}

/* The range's record: starting, its bridges (this run's and an earlier
 * run's), its DHCP servers (steals dhcp), its first creation time. */
static void save_range_start(const struct hd_range_job *j, const char *yaml, json_t *made,
                             json_t *dhcp, json_t *old)
{
    struct hd_store *st = j->rg->gs->st;
    if (old) {
        json_t *prev = json_object_get(old, "bridges_created");
        json_array_extend(made, prev ? prev : json_array());
    }
    json_t *doc = json_pack("{ss sI so sI}", "state", "starting", "guests", (json_int_t)j->n,
                            "bridges_created", made, "created",
                            (json_int_t)(old ? json_integer_value(json_object_get(old, "created"))
                                             : hd_now_ms()));
    json_object_set_new(doc, "dhcp", dhcp);
    pthread_mutex_lock(&st->mu);
    hd_db_save_range(st, j->name, yaml, doc);
    pthread_mutex_unlock(&st->mu);
    json_decref(doc);
}

static void resources_discard(struct hd_range_job *j)
{
    for (size_t i = 0; i <= j->spec->n_scenarios; i++)
        hd_resdisk_discard(&j->disks[i]);
}

/* Every scope's resource disk checked and built under a temporary name
 * (store lock not held: a build reads the whole directory); 400 naming
 * `resources` or `scenarios[i].resources`. On failure nothing is left. */
static int resources_prepare(struct hd_range_job *j, struct hd_err *err)
{
    const struct range_spec *spec = j->spec;
    const struct hd_config *cfg = j->rg->gs->cfg;
    if (spec->resources &&
        hd_resdisk_prepare(cfg, j->name, NULL, spec->resources, "resources", &j->disks[0],
                           err) < 0)
        return -1;
    for (size_t s = 0; s < spec->n_scenarios; s++) {
        const struct range_scenario *sc = &spec->scenarios[s];
        char field[48];
        if (!sc->resources)
            continue;
        snprintf(field, sizeof(field), "scenarios[%zu].resources", s);
        if (hd_resdisk_prepare(cfg, j->name, sc->name, sc->resources, field, &j->disks[1 + s],
                               err) < 0) {
            resources_discard(j);
            return -1;
        }
    }
    return 0;
}

/* The built images into place, all or (on an error) none of the new ones. */
static int resources_commit(struct hd_range_job *j, struct hd_err *err)
{
    for (size_t i = 0; i <= j->spec->n_scenarios; i++)
        if (hd_resdisk_commit(&j->disks[i], err) < 0) {
            resources_discard(j);
            return -1;
        }
    return 0;
}

static int start_job(struct hd_range_job *j, json_t **out, struct hd_err *err)
{
    struct hd_store *st = j->rg->gs->st;
    uint64_t seq = hd_event_seq(&st->ev);
    *out = json_pack("{ss sI sI si}", "name", j->name, "guests", (json_int_t)j->n, "event_seq",
                     (json_int_t)seq, "parallel", (int)st->cfg->range_parallel);
    hd_event(&st->ev, "range.up.started", j->name,
             json_pack("{ss sI}", "range", j->name, "guests", (json_int_t)j->n));
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &at, job_main, j);
    pthread_attr_destroy(&at);
    if (rc == 0)
        return 0;
    json_decref(*out);
    *out = NULL;
    return hd_fail(err, 500, "", "cannot start the range job");
}

int hd_range_up(struct hd_ranges *rg, const char *yaml, size_t len, json_t **out,
                struct hd_err *err)
{
    struct hd_store *st = rg->gs->st;
    struct hd_range_job *j = job_new(rg, yaml, len, err);
    if (!j)
        return -1;
    pthread_mutex_lock(&st->mu);
    if (range_admit(j, err) < 0) {
        pthread_mutex_unlock(&st->mu);
        job_free(j);
        return -1;
    }
    j->next_job = rg->jobs;
    rg->jobs = j;
    json_t *old = hd_db_ranges(st, j->name);
    pthread_mutex_unlock(&st->mu);

    json_t *made = json_array(), *dhcp = NULL;
    struct hd_range_plan plan = {j->name, j->spec, j->guests, j->n, j->addrs};
    int rc = resources_prepare(j, err);
    if (rc == 0 && (rc = make_segments(st->cfg, j->spec, made, err)) < 0)
        resources_discard(j);
    if (rc == 0)
        rc = resources_commit(j, err);
    if (rc == 0 && !(dhcp = hd_range_dhcp_start(st, &plan, json_object_get(old, "dhcp"), err)))
        rc = -1;
    if (rc < 0) {
        remove_bridges(made);
        if (!old) /* a new range: no image of it stays */
            hd_resdisk_remove(st->cfg, j->name);
        json_decref(made);
        json_decref(old);
        pthread_mutex_lock(&st->mu);
        job_unlink(j);
        pthread_mutex_unlock(&st->mu);
        job_free(j);
        return -1;
    }
    save_range_start(j, yaml, made, dhcp, old);
    json_decref(old);
    return start_job(j, out, err);
}

/* store lock held */
static json_t *range_vm_names(struct hd_store *st, const char *name)
{
    json_t *a = json_array();
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (!strcmp(vm->range, name))
            json_array_append_new(a, json_string(vm->name));
    return a;
}

int hd_range_down(struct hd_ranges *rg, const char *name, json_t **out, struct hd_err *err)
{
    struct hd_store *st = rg->gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *r = hd_db_ranges(st, name);
    if (!r) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 404, "name", "no range '%s'", name);
    }
    if (job_running(rg, name)) {
        pthread_mutex_unlock(&st->mu);
        json_decref(r);
        return hd_fail(err, 409, "name", "range '%s' is still coming up", name);
    }
    json_t *names = range_vm_names(st, name);
    pthread_mutex_unlock(&st->mu);
    size_t i;
    json_t *v;
    long removed = 0, errors = 0;
    char last[512] = "";
    json_array_foreach(names, i, v) {
        struct hd_err e = {0};
        if (hd_vm_rm(rg->gs, json_string_value(v), true, &e) == 0) {
            removed++;
        } else if (e.status != 404) {
            errors++;
            snprintf(last, sizeof(last), "%s: %s", json_string_value(v), e.msg);
        }
    }
    json_decref(names);
    if (errors) {
        json_decref(r);
        return hd_fail(err, 500, "", "%ld guest(s) not removed; last: %s", errors, last);
    }
    hd_checkpoint_drop_all(rg->gs, name); /* its guests no longer stand on them */
    hd_range_dhcp_stop(json_object_get(r, "dhcp"));
    /* segment bridges this range made, unless another range still uses them */
    json_t *made = json_deep_copy(json_object_get(r, "bridges_created"));
    hd_resdisk_remove(st->cfg, name);
    pthread_mutex_lock(&st->mu);
    hd_db_delete_range(st, name);
    json_t *others = hd_db_ranges(st, NULL);
    json_t *keep = json_array();
    json_array_foreach(made, i, v) {
        bool used = false;
        size_t a;
        json_t *o;
        json_array_foreach(others, a, o) {
            size_t b;
            json_t *x;
            json_array_foreach(json_object_get(o, "bridges_created"), b, x)
                used |= json_equal(x, v);
        }
        if (!used)
            json_array_append(keep, v);
    }
    pthread_mutex_unlock(&st->mu);
    remove_bridges(keep);
    json_decref(others);
    json_decref(made);
    json_decref(r);
    hd_event(&st->ev, "range.down", name, json_pack("{ss sI}", "range", name, "removed", (json_int_t)removed));
    *out = json_pack("{ss sI so}", "name", name, "removed", (json_int_t)removed,
                     "bridges_removed", keep);
    return 0;
}

/* The guests of range name that sel ({"vms": [NAME...]}, or NULL: all)
 * names, checked: each a string naming one of the range's guests, once.
 * Store lock held. NULL with err filled when sel is bad. */
static json_t *reset_selection(struct hd_store *st, const char *name, json_t *sel,
                               struct hd_err *err)
{
    json_t *all = range_vm_names(st, name);
    json_t *want = sel ? json_object_get(sel, "vms") : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(sel, key, v) {
        if (strcmp(key, "vms") && strcmp(key, "to")) {
            hd_fail(err, 400, key, "unknown field '%s' (reset takes \"vms\" and \"to\")", key);
            json_decref(all);
            return NULL;
        }
    }
    if (!want)
        return all;
    if (!json_is_array(want) || !json_array_size(want)) {
        hd_fail(err, 400, "vms", "vms must be a non-empty array of the range's guest names");
        json_decref(all);
        return NULL;
    }
    json_t *out = json_array();
    size_t i, j, k;
    json_array_foreach(want, i, v) {
        const char *vn = json_string_value(v);
        bool found = false, twice = false;
        json_t *a;
        json_array_foreach(all, j, a)
            found |= vn && !strcmp(vn, json_string_value(a));
        for (k = 0; vn && k < i; k++)
            twice |= !strcmp(vn, json_string_value(json_array_get(want, k)) ?: "");
        if (!found || twice) {
            char field[32];
            snprintf(field, sizeof(field), "vms[%zu]", i);
            if (!vn)
                hd_fail(err, 400, field, "a guest name (string) is expected");
            else if (twice)
                hd_fail(err, 400, field, "'%s' is named twice", vn);
            else
                hd_fail(err, 400, field, "'%s' is not a guest of range '%s'", vn, name);
            json_decref(all);
            json_decref(out);
            return NULL;
        }
        json_array_append(out, v);
    }
    json_decref(all);
    return out;
}

/* 409 while an `up` of range name runs (takes the store lock). */
static int range_not_coming_up(struct hd_ranges *rg, const char *name, struct hd_err *err)
{
    pthread_mutex_lock(&rg->gs->st->mu);
    bool up = job_running(rg, name);
    pthread_mutex_unlock(&rg->gs->st->mu);
    return up ? hd_fail(err, 409, "name", "range '%s' is still coming up", name) : 0;
}

int hd_range_checkpoint(struct hd_ranges *rg, const char *range, json_t *body, json_t **out,
                        struct hd_err *err)
{
    if (range_not_coming_up(rg, range, err) < 0)
        return -1;
    return hd_checkpoint_take(rg->gs, range, body, out, err);
}

int hd_range_checkpoint_rm(struct hd_ranges *rg, const char *range, const char *cp,
                           struct hd_err *err)
{
    if (range_not_coming_up(rg, range, err) < 0)
        return -1;
    return hd_checkpoint_rm(rg->gs, range, cp, err);
}

/* sel's "to": a checkpoint of the range holding every guest in names; *to
 * its map guest -> snapshot (NULL without "to"). Store lock held. */
static int reset_target(struct hd_store *st, const char *name, json_t *sel, json_t *names,
                        json_t **to, struct hd_err *err)
{
    json_t *v = json_object_get(sel, "to");
    *to = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return hd_fail(err, 400, "to", "to must be a checkpoint name");
    json_t *map = hd_checkpoint_map(st, name, json_string_value(v), err);
    if (!map)
        return -1;
    size_t i;
    json_t *g;
    json_array_foreach(names, i, g) {
        if (!json_object_get(map, json_string_value(g))) {
            json_decref(map);
            return hd_fail(err, 409, "to", "guest '%s' is not in checkpoint '%s' (made after "
                           "it): name the guests to reset with vms", json_string_value(g),
                           json_string_value(v));
        }
    }
    *to = map;
    return 0;
}

/* A reset's guests, range_parallel at a time (each is killed, gets a fresh
 * overlay and is started or restored: the waits for the old processes to
 * end overlap). */
struct reset_work {
    struct hd_guests *gs;
    json_t *names;        /* the guests */
    json_t *to;           /* guest -> snapshot, or NULL: plain resets */
    pthread_mutex_t mu;
    size_t next;
    long n, errors;
    char last[512];       /* the last failure */
};

static void *reset_worker(void *arg)
{
    struct reset_work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        size_t i = w->next++;
        pthread_mutex_unlock(&w->mu);
        if (i >= json_array_size(w->names))
            break;
        struct hd_err e = {0};
        const char *vn = json_string_value(json_array_get(w->names, i));
        int rc = w->to ? hd_vm_restore(w->gs, vn, json_string_value(json_object_get(w->to, vn)),
                                       &e)
                       : hd_vm_reset(w->gs, vn, &e);
        pthread_mutex_lock(&w->mu);
        if (rc == 0) {
            w->n++;
        } else {
            w->errors++;
            snprintf(w->last, sizeof(w->last), "%s: %s", vn, e.msg);
        }
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

static void reset_all(struct reset_work *w)
{
    pthread_t th[64];
    size_t np = w->gs->cfg->range_parallel, started = 0;
    if (np > json_array_size(w->names))
        np = json_array_size(w->names);
    if (np > sizeof(th) / sizeof(th[0]))
        np = sizeof(th) / sizeof(th[0]);
    pthread_mutex_init(&w->mu, NULL);
    for (size_t i = 0; i < np; i++)
        if (pthread_create(&th[i], NULL, reset_worker, w) == 0)
            started++;
    if (!started)
        reset_worker(w);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&w->mu);
}

int hd_range_reset(struct hd_ranges *rg, const char *name, json_t *sel, json_t **out,
                   struct hd_err *err)
{
    struct hd_store *st = rg->gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *r = hd_db_ranges(st, name);
    if (!r || job_running(rg, name)) {
        pthread_mutex_unlock(&st->mu);
        json_decref(r);
        return r ? hd_fail(err, 409, "name", "range '%s' is still coming up", name)
                 : hd_fail(err, 404, "name", "no range '%s'", name);
    }
    json_decref(r);
    json_t *to = NULL;
    json_t *names = reset_selection(st, name, sel, err);
    if (names && reset_target(st, name, sel, names, &to, err) < 0) {
        json_decref(names);
        names = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    if (!names)
        return -1;
    struct reset_work w = {.gs = rg->gs, .names = names, .to = to};
    int64_t t0 = hd_mono_ns();
    reset_all(&w);
    int64_t dt = hd_mono_ns() - t0;
    long n = w.n, errors = w.errors;
    const char *last = w.last;
    json_t *done = json_pack("{ss sI sO sI}", "name", name, "reset", (json_int_t)n, "vms", names,
                             "reset_us", (json_int_t)(dt / 1000));
    json_t *ev = json_pack("{ss sI}", "range", name, "reset", (json_int_t)n);
    if (to) {
        const char *cp = json_string_value(json_object_get(sel, "to"));
        json_object_set_new(done, "to", json_string(cp));
        json_object_set_new(ev, "to", json_string(cp));
    }
    json_decref(to);
    json_decref(names);
    hd_event(&st->ev, "range.reset", name, ev);
    if (errors) {
        json_decref(done);
        return hd_fail(err, 500, "", "%ld guest(s) not reset; last: %s", errors, last);
    }
    *out = done;
    return 0;
}

/* store lock held */
static void add_counts(struct hd_ranges *rg, json_t *r, const char *name, bool list)
{
    long running = 0, ready = 0, failed = 0, not_started = 0, total = 0;
    json_t *vms = json_array();
    for (struct hd_vm *vm = rg->gs->st->vms; vm; vm = vm->next) {
        if (strcmp(vm->range, name))
            continue;
        total++;
        running += vm->pidfd >= 0;
        ready += vm->ready;
        failed += !strcmp(vm->state, "exited") || !strcmp(vm->state, "error");
        not_started += !strcmp(vm->state, "created") || !strcmp(vm->state, "creating");
        if (list)
            json_array_append_new(vms, hd_vm_json(vm, false));
    }
    json_object_set_new(r, "existing", json_integer(total));
    json_object_set_new(r, "running", json_integer(running));
    json_object_set_new(r, "ready", json_integer(ready));
    json_object_set_new(r, "failed", json_integer(failed));
    json_int_t guests = json_integer_value(json_object_get(r, "guests"));
    json_object_set_new(r, "not_started", json_integer(not_started + (guests > total ? guests - total : 0)));
    if (job_running(rg, name))
        json_object_set_new(r, "state", json_string("starting"));
    if (list)
        json_object_set_new(r, "vms", vms);
    else
        json_decref(vms);
}

json_t *hd_range_status(struct hd_ranges *rg, const char *name, struct hd_err *err)
{
    struct hd_store *st = rg->gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *r = hd_db_ranges(st, name);
    if (r)
        add_counts(rg, r, name, true);
    pthread_mutex_unlock(&st->mu);
    if (!r)
        hd_fail(err, 404, "name", "no range '%s'", name);
    return r;
}

json_t *hd_range_list(struct hd_ranges *rg)
{
    struct hd_store *st = rg->gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *a = hd_db_ranges(st, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(a, i, r) {
        json_object_del(r, "spec");
        add_counts(rg, r, json_string_value(json_object_get(r, "name")), false);
    }
    pthread_mutex_unlock(&st->mu);
    return a;
}

/* At start: a range whose `up` was cut by a herdd stop is "interrupted";
 * `range up` again completes it. */
void hd_ranges_resume(struct hd_ranges *rg)
{
    struct hd_store *st = rg->gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *a = hd_db_ranges(st, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(a, i, r) {
        const char *state = json_string_value(json_object_get(r, "state"));
        if (state && !strcmp(state, "starting"))
            set_range_state(st, json_string_value(json_object_get(r, "name")), "interrupted",
                            NULL);
    }
    pthread_mutex_unlock(&st->mu);
    json_decref(a);
}
