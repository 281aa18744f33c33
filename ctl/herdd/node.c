/* Node profile, capacity admission and planning (libherd-ctl's capacity). */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "herd/capacity.h"
#include "herd/range_spec.h"
#include "herdd.h"

static struct cap_node node_now(struct hd_res *r)
{
    struct cap_node n;
    memset(&n, 0, sizeof(n));
    capacity_read_node(NULL, NULL, &n);
    if (!n.cpus)
        n.cpus = 1;
    n.disk_free = r->disk_free;
    n.disk_total = r->disk_total;
    return n;
}

static void policy(struct hd_res *r, struct cap_policy *p, bool for_create)
{
    const struct hd_config *cfg = r->cfg;

    cap_policy_default(p);
    p->vcpu_overcommit = cfg->cpu_overcommit;
    p->mem_threshold = cfg->mem_fraction;
    p->mem_overcommit = cfg->mem_overcommit;
    if (!for_create) {
        p->overlay_initial = 0;
        p->disk_floor = 0;
    } else {
        p->disk_floor = cfg->storage_floor;
    }
}

/* A guest's resident memory is measured again when its last measure is
 * this old (hd_resident_refresh). */
#define RESIDENT_MAX_AGE_NS (5 * 1000000000LL)

/* The Pss line of /proc/PID/smaps_rollup in bytes; 0 when unreadable (the
 * process is gone or not ours to read). */
static uint64_t pss_of(pid_t pid)
{
    char path[64], line[128];
    unsigned long long kb = 0;
    bool found = false;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "Pss: %llu kB", &kb) == 1;
    fclose(f);
    return found ? (uint64_t)kb << 10 : 0;
}

static bool measured(const struct hd_vm *vm)
{
    return vm->resident_at && vm->resident_at > vm->spawn_ns;
}

/* What a running guest holds: its herd-vmm's proportional set size, which
 * divides pages shared with other processes (a snapshot's RAM file that
 * several restored guests map) among them, so the sum over all guests
 * counts a shared page once; until this herd-vmm has been measured, what a
 * new guest is expected to hold. Store lock held. */
static uint64_t vm_resident(const struct hd_vm *vm, const struct cap_policy *p)
{
    return measured(vm) ? vm->resident : cap_guest_resident(p, vm->mem, 1);
}

struct pss_row {
    int64_t id;
    pid_t pid;
    uint64_t pss;
};

static int pss_row_cmp(const void *a, const void *b)
{
    const struct pss_row *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* The running guests whose measure is missing or older than
 * RESIDENT_MAX_AGE_NS, sorted by id; *n of them. Store lock held. */
static struct pss_row *stale_guests(struct hd_store *st, int64_t now, size_t *n)
{
    size_t cap = 0;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        cap++;
    struct pss_row *rows = calloc(cap ? cap : 1, sizeof(*rows));
    *n = 0;
    if (!rows)
        return NULL;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (vm->pidfd >= 0 && vm->pid > 0 &&
            (!measured(vm) || now - vm->resident_at > RESIDENT_MAX_AGE_NS))
            rows[(*n)++] = (struct pss_row){.id = vm->id, .pid = vm->pid};
    qsort(rows, *n, sizeof(*rows), pss_row_cmp);
    return rows;
}

void hd_resident_refresh(struct hd_res *r)
{
    struct hd_store *st = r->st;
    size_t n;
    pthread_mutex_lock(&st->mu);
    struct pss_row *rows = stale_guests(st, hd_mono_ns(), &n);
    pthread_mutex_unlock(&st->mu);
    if (!rows)
        return;
    /* /proc without the store lock: 1000 guests take up to 0.2 s */
    for (size_t i = 0; i < n; i++)
        rows[i].pss = pss_of(rows[i].pid);
    int64_t now = hd_mono_ns();
    pthread_mutex_lock(&st->mu);
    for (struct hd_vm *vm = st->vms; vm && n; vm = vm->next) {
        struct pss_row key = {.id = vm->id};
        struct pss_row *row = bsearch(&key, rows, n, sizeof(*rows), pss_row_cmp);
        /* the same process still (not one started since), and readable */
        if (row && row->pss && vm->pid == row->pid && vm->pidfd >= 0) {
            vm->resident = row->pss;
            vm->resident_at = now;
        }
    }
    pthread_mutex_unlock(&st->mu);
    free(rows);
}

/* store lock held */
static struct cap_use use_now(struct hd_res *r, unsigned *running)
{
    struct cap_use u = {0, 0, 0, 0};
    struct cap_policy p;
    policy(r, &p, false);
    *running = 0;
    for (struct hd_vm *vm = r->st->vms; vm; vm = vm->next) {
        u.guests++;
        if (vm->pidfd >= 0) {
            (*running)++;
            u.vcpus += vm->cpus;
            u.mem += cap_guest_mem(&p, vm->mem, 1);
            u.resident += vm_resident(vm, &p);
        }
    }
    return u;
}

/* herdd's descriptors: three a running guest (pidfd, console pipe, console
 * log: state.c's hd_fd_high) and some for API connections, database,
 * netlink and the files it opens for a moment. */
#define FDS_PER_GUEST 3
#define FDS_RESERVED 256

/* RLIMIT_NOFILE's soft limit (herdd raised it to the hard one at start);
 * UINT64_MAX when unlimited or unknown. */
static uint64_t fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return (uint64_t)rl.rlim_cur;
}

/* 409 "descriptors" when running + count guests would need more
 * descriptors than herdd may open: refused up front rather than failing
 * one guest's start half-way with EMFILE. */
static int fd_admit(uint64_t running, uint64_t count, struct hd_err *err)
{
    uint64_t lim = fd_limit(), need = (running + count) * FDS_PER_GUEST + FDS_RESERVED;
    if (lim == UINT64_MAX || need <= lim)
        return 0;
    return hd_fail(err, 409, "descriptors",
                   "admission refused: herdd's open descriptors would pass RLIMIT_NOFILE: "
                   "%llu guests need about %llu of %llu (%d a guest + %d); raise herdd's "
                   "limit (systemd: LimitNOFILE)",
                   (unsigned long long)(running + count), (unsigned long long)need,
                   (unsigned long long)lim, FDS_PER_GUEST, FDS_RESERVED);
}

int hd_admit(struct hd_res *r, unsigned cpus, uint64_t mem, unsigned count, struct hd_err *err)
{
    struct cap_node n = node_now(r);
    struct cap_policy p;
    unsigned running;
    struct cap_use u;
    struct cap_item it = {.template_name = "", .cpus = cpus, .mem = mem, .count = count};
    enum cap_limit lim = CAP_LIMIT_NONE;
    char msg[256] = "";

    policy(r, &p, false);
    u = use_now(r, &running);
    int rc = cap_admit(&n, &p, &u, &it, 1, &lim, msg, sizeof(msg));
    if (rc == -ENOSPC)
        return hd_fail(err, 409, cap_limit_name(lim), "admission refused: %s", msg);
    if (rc < 0 && rc != -ENOSYS)
        return hd_fail(err, 400, "", "admission: %s", msg[0] ? msg : strerror(-rc));
    return fd_admit(running, count, err);
}

int hd_admit_many(struct hd_res *r, const struct cap_item *items, size_t n, struct hd_err *err)
{
    struct cap_node nd = node_now(r);
    struct cap_policy p;
    unsigned running;
    enum cap_limit lim = CAP_LIMIT_NONE;
    char msg[256] = "";

    policy(r, &p, false);
    struct cap_use u = use_now(r, &running);
    int rc = cap_admit(&nd, &p, &u, items, n, &lim, msg, sizeof(msg));
    if (rc == -ENOSPC)
        return hd_fail(err, 409, cap_limit_name(lim), "admission refused: %s", msg);
    if (rc < 0 && rc != -ENOSYS)
        return hd_fail(err, 400, "", "admission: %s", msg[0] ? msg : strerror(-rc));
    uint64_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += items[i].count;
    return fd_admit(running, count, err);
}

json_t *hd_node_json(struct hd_res *r)
{
    const struct hd_config *cfg = r->cfg;
    struct hd_store *st = r->st;
    struct cap_node n = node_now(r);
    struct cap_policy p;
    unsigned running;
    char b1[32];

    policy(r, &p, false);
    pthread_mutex_lock(&st->mu);
    struct cap_use u = use_now(r, &running);
    unsigned ready = 0, ntempl = 0;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        ready += vm->ready;
    for (struct hd_template *t = st->templates; t; t = t->next)
        ntempl++;
    json_t *bridges = json_array();
    for (size_t i = 0; i < cfg->net.n_bridges; i++) {
        const struct netdev_bridge_cfg *b = &cfg->net.bridges[i];
        json_t *o = json_pack("{ss ss sb si}", "role", netdev_role_name(b->role), "bridge",
                              b->name, "present", if_nametoindex(b->name) != 0, "mtu",
                              (int)b->mtu);
        if (b->segment[0])
            json_object_set_new(o, "segment", json_string(b->segment));
        json_array_append_new(bridges, o);
    }
    json_t *o = json_pack(
        "{ss ss ss ss sb sI s{si sI sI sI sI} so s{sI sI sI sI si} s{sI sI} s{sf sf sI sI sb} "
        "si}",
        "node", cfg->node_name, "version", HD_VERSION, "state_dir", cfg->state_dir, "vmm",
        cfg->vmm_path, "vmm_control", r->vmm_has_control, "uptime_ms",
        (json_int_t)(hd_now_ms() - st->started_at), "host", "cpus", (int)n.cpus, "mem_total",
        (json_int_t)n.mem_total, "mem_available", (json_int_t)n.mem_available, "disk_total",
        (json_int_t)r->disk_total, "disk_free", (json_int_t)r->disk_free, "bridges", bridges,
        "use", "guests", (json_int_t)u.guests, "running", (json_int_t)running, "ready",
        (json_int_t)ready, "vcpus", (json_int_t)u.vcpus, "templates", (int)ntempl, "limits",
        "vcpus", (json_int_t)cap_vcpu_limit(&n, &p), "mem", (json_int_t)cap_mem_limit(&n, &p),
        "policy", "cpu_overcommit", cfg->cpu_overcommit, "memory_fraction",
        cfg->mem_fraction, "storage_alarm", (json_int_t)cfg->storage_alarm, "storage_floor",
        (json_int_t)cfg->storage_floor, "storage_alarm_on", r->storage_alarm, "range_parallel",
        (int)cfg->range_parallel);
    json_object_set_new(json_object_get(o, "use"), "mem", json_integer((json_int_t)u.mem));
    json_object_set_new(json_object_get(o, "use"), "mem_text",
                        json_string(cap_fmt_bytes(b1, sizeof(b1), u.mem)));
    json_object_set_new(json_object_get(o, "use"), "resident",
                        json_integer((json_int_t)u.resident));
    json_object_set_new(json_object_get(o, "limits"), "mem_commit",
                        json_integer((json_int_t)cap_commit_limit(&n, &p)));
    uint64_t fdl = fd_limit();
    json_object_set_new(json_object_get(o, "limits"), "guests_by_descriptors",
                        fdl == UINT64_MAX ? json_null()
                                          : json_integer((json_int_t)(fdl > FDS_RESERVED
                                                                          ? (fdl - FDS_RESERVED) / FDS_PER_GUEST
                                                                          : 0)));
    json_object_set_new(json_object_get(o, "policy"), "memory_overcommit",
                        json_real(cfg->mem_overcommit));
    /* confinement (docs/security.md) */
    unsigned uids_used = 0;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        uids_used += vm->uid != 0;
    json_t *cg = json_pack("{sb}", "enabled", r->cgroup_ok);
    json_object_set_new(cg, r->cgroup_ok ? "dir" : "reason",
                        json_string(r->cgroup_ok ? r->cgroup_dir : r->cgroup_why));
    if (r->cgroup_ok)
        json_object_set_new(cg, "pids_max", json_integer(cfg->pids_max));
    json_object_set_new(o, "confinement",
                        json_pack("{s{sI sI sI} so ss}", "guest_uids", "first",
                                  (json_int_t)cfg->uid_first, "count",
                                  (json_int_t)cfg->uid_count, "used", (json_int_t)uids_used,
                                  "cgroups", cg, "wipe_overlays",
                                  cfg->wipe_zero ? "zero" : "discard"));
    pthread_mutex_unlock(&st->mu);
    return o;
}

/* The memory figures a plan used: what the guests commit and hold now, the
 * limits, the request's commitment and expected resident bytes. */
static void plan_figures(json_t *o, const struct cap_plan *plan, const struct cap_use *u,
                         const struct cap_policy *p)
{
    json_object_set_new(o, "mem_commit_limit", json_integer((json_int_t)plan->commit_limit));
    json_object_set_new(o, "req_resident", json_integer((json_int_t)plan->req_resident));
    json_object_set_new(o, "use_mem", json_integer((json_int_t)u->mem));
    json_object_set_new(o, "use_resident", json_integer((json_int_t)u->resident));
    json_object_set_new(o, "memory_overcommit", json_real(p->mem_overcommit));
}

int hd_node_plan(struct hd_res *r, const char *yaml, size_t len, json_t **out, struct hd_err *err)
{
    struct hd_store *st = r->st;
    struct range_spec *spec = NULL;
    struct range_err rerr;
    memset(&rerr, 0, sizeof(rerr));
    int rc = range_spec_parse(yaml, len, &spec, &rerr);
    if (rc == -ENOSYS)
        return hd_fail(err, 501, "", "range specs are not available yet (libherd-ctl)");
    if (rc < 0)
        return hd_fail(err, rc == -EFBIG ? 413 : 400, rerr.field, "%s", rerr.msg);
    size_t nroles = 0;
    for (size_t s = 0; s < spec->n_scenarios; s++)
        nroles += spec->scenarios[s].n_roles;
    struct cap_item *items = calloc(nroles + 1, sizeof(*items));
    char (*names)[128] = calloc(nroles + 1, sizeof(*names));
    size_t k = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t s = 0; s < spec->n_scenarios; s++) {
        for (size_t j = 0; j < spec->scenarios[s].n_roles; j++) {
            const struct range_role *role = &spec->scenarios[s].roles[j];
            struct hd_template *t = hd_template_find(st, role->template_name);
            if (!t) {
                pthread_mutex_unlock(&st->mu);
                hd_fail(err, 400, "", "scenarios[%zu].roles[%zu].template: no template '%s'",
                        s, j, role->template_name);
                snprintf(err->field, sizeof(err->field), "scenarios[%zu].roles[%zu].template",
                         s, j);
                free(items);
                free(names);
                range_spec_free(spec);
                return -1;
            }
            snprintf(names[k], sizeof(names[k]), "%s/%s", spec->scenarios[s].name, role->name);
            items[k].template_name = t->name;
            items[k].cpus = role->cpus ? role->cpus : t->cpus;
            items[k].mem = role->mem ? role->mem : t->mem;
            items[k].count = role->count;
            k++;
        }
    }
    struct cap_node n = node_now(r);
    struct cap_policy p;
    unsigned running;
    policy(r, &p, true);
    struct cap_use u = use_now(r, &running);
    struct cap_plan plan;
    memset(&plan, 0, sizeof(plan));
    rc = cap_plan(&n, &p, &u, items, k, &plan);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        free(items);
        free(names);
        range_spec_free(spec);
        return hd_fail(err, rc == -ENOSYS ? 501 : 400, "", "plan: %s", strerror(-rc));
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < k; i++) {
        const struct cap_plan_row *row = &plan.rows[i];
        json_t *o = json_pack("{ss ss si sI sI ss}", "role", names[i], "template",
                              items[i].template_name, "cpus", (int)items[i].cpus, "mem",
                              (json_int_t)items[i].mem, "count", (json_int_t)items[i].count,
                              "binds", cap_limit_name(row->binds));
        json_object_set_new(o, "fits", row->fits == UINT64_MAX ? json_null()
                                                               : json_integer((json_int_t)row->fits));
        json_array_append_new(rows, o);
    }
    *out = json_pack("{ss sI so sb ss sI sI sI sI}", "range", spec->name, "guests",
                     (json_int_t)spec->n_guests, "rows", rows, "fits", plan.admit_rc == 0,
                     "message", plan.admit_rc == 0 ? "the whole range fits" : plan.admit_msg,
                     "vcpu_limit", (json_int_t)plan.vcpu_limit, "mem_limit",
                     (json_int_t)plan.mem_limit, "req_vcpus", (json_int_t)plan.req_vcpus,
                     "req_mem", (json_int_t)plan.req_mem);
    plan_figures(*out, &plan, &u, &p);
    cap_plan_free(&plan);
    free(items);
    free(names);
    range_spec_free(spec);
    return 0;
}

/* One template's row of the capacity prediction: how many more guests of
 * its shape fit on this node now, and the limit that stops the next. */
static json_t *template_fit(const struct cap_node *n, const struct cap_policy *p,
                            const struct cap_use *u, const struct hd_template *t)
{
    struct cap_item it = {.template_name = t->name, .cpus = t->cpus, .mem = t->mem, .count = 1};
    struct cap_plan plan;
    json_t *o;

    memset(&plan, 0, sizeof(plan));
    if (cap_plan(n, p, u, &it, 1, &plan) < 0 || plan.n != 1)
        return json_pack("{si sI sn ss}", "cpus", (int)t->cpus, "mem", (json_int_t)t->mem,
                         "fits", "binds", "unknown");
    o = json_pack("{si sI ss}", "cpus", (int)t->cpus, "mem", (json_int_t)t->mem, "binds",
                  cap_limit_name(plan.rows[0].binds));
    json_object_set_new(o, "fits", plan.rows[0].fits == UINT64_MAX
                                       ? json_null()
                                       : json_integer((json_int_t)plan.rows[0].fits));
    cap_plan_free(&plan);
    return o;
}

json_t *hd_node_capacity(struct hd_res *r)
{
    struct cap_node n = node_now(r);
    struct cap_policy p;
    unsigned running;
    json_t *templates = json_object();

    policy(r, &p, true);
    pthread_mutex_lock(&r->st->mu);
    struct cap_use u = use_now(r, &running);
    for (struct hd_template *t = r->st->templates; t; t = t->next)
        json_object_set_new(templates, t->name, template_fit(&n, &p, &u, t));
    pthread_mutex_unlock(&r->st->mu);
    return json_pack("{si sI sI sI s{sI sI sI sf} s{sI sI sI sI si} so}", "cpus", (int)n.cpus,
                     "mem_total", (json_int_t)n.mem_total, "disk_total",
                     (json_int_t)n.disk_total, "disk_free", (json_int_t)n.disk_free, "limits",
                     "vcpus", (json_int_t)cap_vcpu_limit(&n, &p), "mem",
                     (json_int_t)cap_mem_limit(&n, &p), "mem_commit",
                     (json_int_t)cap_commit_limit(&n, &p), "memory_overcommit",
                     p.mem_overcommit, "use", "guests", (json_int_t)u.guests, "vcpus",
                     (json_int_t)u.vcpus, "mem", (json_int_t)u.mem, "resident",
                     (json_int_t)u.resident, "running", (int)running, "templates", templates);
}
