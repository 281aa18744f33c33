/* Guests: create (overlay + taps), start (spawn herd-vmm), stop/kill/pause/
 * resume/reboot, rm, logs, snapshots (snapshot.c's steps between a pause
 * and a resume). Every guest lives in STATE/vms/NAME/:
 *   disk.qcow2   its overlay (backing file + backing format = the template's,
 *                or for a guest restored from a snapshot the snapshot's
 *                disk copy, qcow2)
 *   console.log  its serial console (herd-vmm --serial file:...)
 *   vmm.log      herd-vmm's own stderr
 * and its control socket is STATE/run/<id>/ctl.sock (short, whatever the
 * name), in a directory owned by the guest's uid (docs/security.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "herd/qcow2.h"
#include "herdd.h"
#include "vmm_argv.h"

/* gs->fd_mu: while herdd holds a tap's queue open (between
 * netdev_tap_create and netdev_tap_close), a herd-vmm spawned by another
 * thread would inherit a copy of that descriptor until its exec, and the
 * guest that owns the tap could meet EBUSY opening it. Taps are held and
 * processes spawned under this lock only (taken after the store lock, never
 * the other way round).
 *
 * gs->spawn_hook is called with each herd-vmm this file spawns (store lock
 * held): supervision, registered from above by main.c, so that guests never
 * call up into it. */
void hd_guests_init(struct hd_guests *gs, struct hd_res *r)
{
    gs->res = r;
    gs->st = r->st;
    gs->cfg = r->cfg;
    pthread_mutex_init(&gs->fd_mu, NULL);
    gs->spawn_hook = NULL;
    gs->spawn_arg = NULL;
}

void hd_vm_set_spawn_hook(struct hd_guests *gs, hd_spawn_hook hook, void *arg)
{
    gs->spawn_hook = hook;
    gs->spawn_arg = arg;
}

void hd_vm_free(const struct hd_config *cfg, struct hd_vm *vm)
{
    if (!vm)
        return;
    hd_console_finish(cfg, vm);
    json_decref(vm->last_console);
    json_decref(vm->cloud_init);
    free(vm->resources);
    free(vm);
}

void hd_vm_set_state(struct hd_store *st, struct hd_vm *vm, const char *state,
                     const char *note)
{
    bool changed = strcmp(vm->state, state) != 0;
    snprintf(vm->state, sizeof(vm->state), "%s", state);
    if (note)
        snprintf(vm->note, sizeof(vm->note), "%s", note);
    if (strcmp(state, "creating"))
        hd_db_save_vm(st, vm);
    if (changed) {
        json_t *d = json_pack("{ss}", "state", state);
        if (vm->range[0])
            json_object_set_new(d, "range", json_string(vm->range));
        if (note)
            json_object_set_new(d, "note", json_string(note));
        hd_event(&st->ev, "vm.state", vm->name, d);
    }
    pthread_cond_broadcast(&st->changed);
}

/* ---- create ------------------------------------------------------------------- */

struct mac_ctx {
    struct hd_store *st;
    struct netdev_nl *nl;
    const char *self;
};

static bool mac_in_use(const uint8_t mac[6], void *opaque)
{
    struct mac_ctx *c = opaque;
    char text[18];
    bool used = false;

    netdev_mac_format(mac, text);
    pthread_mutex_lock(&c->st->mu);
    for (struct hd_vm *vm = c->st->vms; vm && !used; vm = vm->next)
        for (unsigned i = 0; i < vm->n_nics; i++)
            if (!strcmp(vm->nics[i].mac, text) && strcmp(vm->name, c->self))
                used = true;
    pthread_mutex_unlock(&c->st->mu);
    return used || (c->nl && netdev_mac_seen_on_host(mac, c->nl));
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Removes what create made: taps, the overlay and the guest's directory,
 * the control socket file. Without the store lock. */
static void release_resources(struct hd_res *r, struct hd_vm *vm)
{
    struct netdev_nl *nl = NULL;
    char p[4096];

    if (vm->n_nics && netdev_nl_open(&nl) == 0) {
        for (unsigned i = 0; i < vm->n_nics; i++)
            if (vm->nics[i].tap[0]) {
                netdev_tap_remove(nl, vm->nics[i].tap);
                netdev_kfilter_remove(vm->nics[i].tap);
            }
        netdev_nl_close(nl);
    }
    hd_run_dir_remove(vm);
    hd_cgroup_release(r, vm);
    hd_vm_path(vm, "disk.qcow2", p, sizeof(p));
    hd_overlay_wipe_unlink(r->cfg, p);
    hd_vm_path(vm, NULL, p, sizeof(p));
    remove_tree(p);
}

/* What a guest's overlay stands on: its template's image, or for a guest
 * restored from a snapshot the snapshot's copy of the source's overlay. */
static void overlay_backing(const struct hd_config *cfg, const struct hd_vm *vm,
                            const struct hd_template *t, char *file, size_t size,
                            const char **fmt)
{
    if (vm->snapshot[0]) {
        hd_snapshot_path(cfg, vm->snapshot, HD_SNAP_DISK, file, size);
        *fmt = "qcow2";
        return;
    }
    snprintf(file, size, "%s", t->image);
    *fmt = t->format;
}

/* A fresh overlay at disk over what vm stands on (any old one wiped). */
static int overlay_make(const struct hd_config *cfg, const struct hd_vm *vm,
                        const struct hd_template *t, const char *disk)
{
    char backing[4096];
    const char *fmt;

    overlay_backing(cfg, vm, t, backing, sizeof(backing), &fmt);
    hd_overlay_wipe_unlink(cfg, disk);
    struct qcow2_create_opts o = {.backing_file = backing, .backing_fmt = fmt,
                                  .size = t->image_size};
    return qcow2_create(disk, &o);
}

/* The guest's directory and its overlay on t's image (*overlay_ns: how
 * long making the overlay took). */
static int overlay_create(const struct hd_config *cfg, const struct hd_vm *vm,
                          const struct hd_template *t, int64_t *overlay_ns, struct hd_err *err)
{
    char dir[4096], disk[4096];

    hd_vm_path(vm, NULL, dir, sizeof(dir));
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return hd_fail(err, 500, "", "%s: %s", dir, strerror(errno));
    hd_vm_path(vm, "disk.qcow2", disk, sizeof(disk));
    int64_t t0 = hd_mono_ns();
    int rc = overlay_make(cfg, vm, t, disk);
    *overlay_ns = hd_mono_ns() - t0;
    if (rc < 0)
        return hd_fail(err, 500, "", "overlay %s: %s", disk, strerror(-rc));
    return 0;
}

/* NIC i's MAC and its tap on the NIC's bridge (held open under fd_mu
 * only); its kernel filter comes after, with the guest's other NICs'
 * (nics_filter). On failure nic->tap is "". */
static int nic_create(struct hd_guests *gs, struct netdev_nl *nl, struct hd_vm *vm, unsigned i,
                      struct hd_err *err)
{
    struct hd_nic *nic = &vm->nics[i];
    struct mac_ctx mc = {gs->st, nl, vm->name};
    uint8_t mac[6];
    struct herd_err nerr;
    herd_err_clear(&nerr);
    int rc = netdev_mac_assign(vm->name, i, mac_in_use, &mc, mac);
    if (rc < 0)
        return hd_fail(err, 500, "", "no free MAC for %s nic %u", vm->name, i);
    netdev_mac_format(mac, nic->mac);
    netdev_tap_name(nic->tap, vm->name, i);
    struct netdev_tap_cfg tc = {.identity = vm->name, .nic = i, .bridge = nic->bridge,
                                .vnet_hdr_len = NETDEV_VNET_HDR_LEN, .persist = true,
                                .owner = (uid_t)-1};
    memcpy(tc.guest_mac, mac, 6);
    struct netdev_tap tap;
    pthread_mutex_lock(&gs->fd_mu);
    rc = netdev_tap_create(nl, &tc, &tap, &nerr);
    if (rc == -EEXIST) {
        /* A leftover of a crash (no guest of ours has it): replace it. */
        netdev_tap_remove(nl, nic->tap);
        rc = netdev_tap_create(nl, &tc, &tap, &nerr);
    }
    if (rc == 0)
        netdev_tap_close(&tap);
    pthread_mutex_unlock(&gs->fd_mu);
    if (rc < 0) {
        nic->tap[0] = 0;
        return hd_fail(err, rc == -ENODEV || rc == -ENOENT ? 409 : 500,
                       nerr.field[0] ? nerr.field : "nics", "tap for nic %u on %s: %s", i,
                       nic->bridge, nerr.msg[0] ? nerr.msg : strerror(-rc));
    }
    memcpy(nic->kf.tap, nic->tap, sizeof(nic->kf.tap));
    memcpy(nic->kf.mac, mac, 6);
    return 0;
}

/* The kernel filters of the guest's taps, in one nftables transaction,
 * before anything can send through them: the taps are persistent with no
 * queue open (none passes a frame in from a guest) and herd-vmm, the only
 * process that opens them, is spawned after this. Whatever path herd-vmm
 * takes, vhost-net or userspace, the guest's frames meet them. Outside
 * fd_mu, so that the filters of guests starting at once share one
 * transaction too (netdev_kfilter_install_all). */
static int nics_filter(struct hd_vm *vm, struct hd_err *err)
{
    struct netdev_kfilter_cfg kf[HD_MAX_NICS];
    struct herd_err nerr;

    for (unsigned i = 0; i < vm->n_nics; i++)
        kf[i] = vm->nics[i].kf;
    int rc = netdev_kfilter_install_all(kf, vm->n_nics, &nerr);
    if (rc < 0)
        return hd_fail(err, 500, nerr.field[0] ? nerr.field : "nics", "%s", nerr.msg);
    return 0;
}

/* Removes the taps made so far (a failed create). */
static void nics_remove(struct netdev_nl *nl, struct hd_vm *vm)
{
    for (unsigned i = 0; i < vm->n_nics; i++)
        if (vm->nics[i].tap[0]) {
            netdev_tap_remove(nl, vm->nics[i].tap);
            vm->nics[i].tap[0] = 0;
        }
}

static int make_resources(struct hd_guests *gs, struct hd_vm *vm, const struct hd_template *t,
                          int64_t *overlay_ns, struct hd_err *err)
{
    struct netdev_nl *nl = NULL;

    if (overlay_create(gs->cfg, vm, t, overlay_ns, err) < 0)
        return -1;
    if (!vm->n_nics)
        return 0;
    int rc = netdev_nl_open(&nl);
    if (rc < 0)
        return hd_fail(err, 500, "", "netlink: %s", strerror(-rc));
    for (unsigned i = 0; i < vm->n_nics && rc == 0; i++)
        rc = nic_create(gs, nl, vm, i, err);
    if (rc == 0)
        rc = nics_filter(vm, err);
    if (rc < 0)
        nics_remove(nl, vm);
    netdev_nl_close(nl);
    return rc < 0 ? -1 : 0;
}

static void unlink_vm(struct hd_store *st, struct hd_vm *vm)
{
    struct hd_vm **pp = &st->vms;
    while (*pp && *pp != vm)
        pp = &(*pp)->next;
    if (*pp)
        *pp = vm->next;
}

static void append_vm(struct hd_store *st, struct hd_vm *vm)
{
    struct hd_vm **pp = &st->vms;
    while (*pp)
        pp = &(*pp)->next;
    vm->next = NULL;
    *pp = vm;
}

static int vm_start_locked(struct hd_guests *gs, struct hd_vm *vm, struct hd_err *err);

/* A create request's body, checked (no lock held). */
struct create_req {
    const char *name, *tmpl, *restart;
    const char *snapshot; /* restored from this snapshot; NULL: booted from tmpl */
    bool start;
    json_t *cloud_init; /* borrowed from the body; NULL: no seed */
    const char *range;  /* the guest's range (its segments' bridges); NULL: none */
    json_t *owned;      /* a snapshot's NIC items (freed by the caller) */
    char tmpl_buf[HD_NAME_MAX + 1];
};

/* "template", or "snapshot" (then the guest's shape and disks are the
 * snapshot's: no cpus, mem, nics or cloud_init of its own). */
static int create_source_parse(json_t *body, struct create_req *req, struct hd_err *err)
{
    static const char *const not_with_snapshot[] = {"template", "cpus", "mem", "nics",
                                                    "cloud_init"};
    json_t *v = json_object_get(body, "snapshot");
    if (v) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !hd_name_ok(json_string_value(v)))
            return hd_fail(err, 400, "snapshot", "snapshot must be a snapshot name");
        for (size_t i = 0; i < sizeof(not_with_snapshot) / sizeof(not_with_snapshot[0]); i++)
            if (json_object_get(body, not_with_snapshot[i]))
                return hd_fail(err, 400, not_with_snapshot[i], "%s: a guest restored from a "
                               "snapshot has the snapshot's template, cpus, mem, nics and "
                               "disks", not_with_snapshot[i]);
        req->snapshot = json_string_value(v);
        return 0;
    }
    v = json_object_get(body, "template");
    if (!v)
        return hd_fail(err, 400, "template", "template (or snapshot) is required");
    if (!json_is_string(v))
        return hd_fail(err, 400, "template", "template must be a template name");
    req->tmpl = json_string_value(v);
    return 0;
}

static int create_req_parse(json_t *body, struct create_req *req, struct hd_err *err)
{
    static const char *const known[] = {"name", "template", "snapshot", "cpus", "mem", "nics",
                                        "restart", "start", "cloud_init", NULL};
    json_t *v;

    if (hd_body_name(body, known, &req->name, err) < 0)
        return -1;
    if (create_source_parse(body, req, err) < 0)
        return -1;
    req->restart = "no";
    v = json_object_get(body, "restart");
    if (v) {
        req->restart = json_string_value(v);
        if (!req->restart || (strcmp(req->restart, "no") && strcmp(req->restart, "on-failure") &&
                              strcmp(req->restart, "always")))
            return hd_fail(err, 400, "restart", "restart must be no, on-failure or always");
    }
    v = json_object_get(body, "start");
    if (v && !json_is_boolean(v))
        return hd_fail(err, 400, "start", "start must be true or false");
    req->start = json_is_true(v);
    req->cloud_init = json_object_get(body, "cloud_init");
    if (req->cloud_init && hd_seed_check(req->cloud_init, err) < 0)
        return -1;
    return 0;
}

/* The checks that need the node's state (store lock held): the template,
 * the guest's shape, its name, the storage floor, and capacity for a start. */
/* One NIC item's role, segment, bridge and addresses (checked already). */
static void nic_fill(const struct hd_config *cfg, json_t *item, const char *range,
                     struct hd_nic *nic)
{
    memset(nic, 0, sizeof(*nic));
    hd_nic_resolve(cfg, item, range, nic->role, nic->bridge, "nics", NULL);
    const char *seg = json_is_object(item) ? json_string_value(json_object_get(item, "segment"))
                                           : NULL;
    snprintf(nic->segment, sizeof(nic->segment), "%s", seg ? seg : "");
    hd_nic_addr_parse(item, "nics", nic, NULL);
}

/* No address of the new guest's NICs is another NIC's on the same bridge
 * (another guest's, or another of its own). Store lock held. */
static int addresses_free(struct hd_res *r, const char *name, const char *range, json_t *nics,
                          struct hd_err *err)
{
    struct hd_nic mine[HD_MAX_NICS];
    size_t i;
    json_t *it;
    json_array_foreach(nics, i, it) {
        char field[32];
        if (i >= HD_MAX_NICS)
            break;
        snprintf(field, sizeof(field), "nics[%zu]", i);
        nic_fill(r->cfg, it, range, &mine[i]);
        if (hd_nic_addr_conflict(r->st, &mine[i], name, field, err) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(mine[j].bridge, mine[i].bridge) &&
                ((mine[i].ipv4[0] && !strcmp(mine[j].ipv4, mine[i].ipv4)) ||
                 (mine[i].ipv6[0] && !strcmp(mine[j].ipv6, mine[i].ipv6))))
                return hd_fail(err, 400, field, "%s: the same address as nics[%zu] on bridge %s",
                               field, j, mine[i].bridge);
    }
    return 0;
}

/* A guest from a snapshot: the snapshot's template, shape and NICs (*nics
 * a new reference into req->owned). Store lock held. */
static int create_from_snapshot(struct hd_res *r, struct create_req *req, struct hd_template **t,
                                unsigned *cpus, uint64_t *mem, json_t **nics,
                                struct hd_err *err)
{
    struct hd_snap_info si;
    if (hd_snapshot_info(r->st, req->snapshot, "snapshot", &si, err) < 0)
        return -1;
    req->owned = si.nics;
    snprintf(req->tmpl_buf, sizeof(req->tmpl_buf), "%s", si.tmpl);
    req->tmpl = req->tmpl_buf;
    *t = hd_template_find(r->st, si.tmpl);
    if (!*t)
        return hd_fail(err, 409, "snapshot", "template '%s' of snapshot '%s' is gone", si.tmpl,
                       req->snapshot);
    *cpus = si.cpus;
    *mem = si.mem;
    *nics = si.nics;
    return 0;
}

/* A guest of warm template t: a clone of t's snapshot, on the NICs the
 * body gives (a range's segments) if there are as many as the snapshot's;
 * cpus and mem, if given, must be the snapshot's. Store lock held. */
static int create_warm(struct hd_res *r, json_t *body, struct create_req *req,
                       const struct hd_template *t, unsigned *cpus, uint64_t *mem,
                       json_t **nics, struct hd_err *err)
{
    struct hd_snap_info si;
    if (req->cloud_init)
        return hd_fail(err, 400, "cloud_init", "cloud_init: a guest of warm template '%s' is "
                       "restored from a snapshot (its seed is the snapshot's)", t->name);
    if (hd_snapshot_info(r->st, t->snapshot, "template", &si, err) < 0)
        return -1;
    req->owned = si.nics;
    req->snapshot = t->snapshot;
    *cpus = si.cpus;
    *mem = si.mem;
    *nics = si.nics;
    if (hd_check_shape(r->cfg, body, cpus, mem, nics, err) < 0)
        return -1;
    if (*cpus != si.cpus || *mem != si.mem)
        return hd_fail(err, 400, *cpus != si.cpus ? "cpus" : "mem", "a guest of warm template "
                       "'%s' has its snapshot's %u vCPUs and %llu MiB", t->name, si.cpus,
                       (unsigned long long)(si.mem >> 20));
    if (json_array_size(*nics) != json_array_size(si.nics))
        return hd_fail(err, 400, "nics", "a guest of warm template '%s' has its snapshot's %zu "
                       "NICs", t->name, json_array_size(si.nics));
    return 0;
}

static int create_admit(struct hd_res *r, json_t *body, struct create_req *req,
                        struct hd_template **t, unsigned *cpus, uint64_t *mem, json_t **nics,
                        struct hd_err *err)
{
    if (req->snapshot) {
        if (create_from_snapshot(r, req, t, cpus, mem, nics, err) < 0)
            return -1;
    } else {
        *t = hd_template_find(r->st, req->tmpl);
        if (!*t)
            return hd_fail(err, 404, "template", "no template '%s'", req->tmpl);
        *cpus = (*t)->cpus;
        *mem = (*t)->mem;
        *nics = (*t)->nics;
        if ((*t)->snapshot[0] ? create_warm(r, body, req, *t, cpus, mem, nics, err) < 0
                              : hd_check_shape(r->cfg, body, cpus, mem, nics, err) < 0)
            return -1;
    }
    if (hd_vm_find(r->st, req->name))
        return hd_fail(err, 409, "name", "guest '%s' exists already", req->name);
    if (addresses_free(r, req->name, req->range, *nics, err) < 0)
        return -1;
    if (r->disk_total && r->disk_free < r->cfg->storage_floor)
        return hd_fail(err, 507, "", "state dir has %llu MiB free, under the floor of %llu MiB: "
                       "no new overlays", (unsigned long long)(r->disk_free >> 20),
                       (unsigned long long)(r->cfg->storage_floor >> 20));
    if (req->start && hd_admit(r, *cpus, *mem, 1, err) < 0)
        return -1;
    return 0;
}

/* A new record, "creating" and busy (NICs resolved; checked already). */
static struct hd_vm *vm_new(const struct hd_config *cfg, const struct create_req *req,
                            const char *range, const char *resources, unsigned cpus,
                            uint64_t mem, json_t *nics)
{
    struct hd_vm *vm = calloc(1, sizeof(*vm));
    size_t i;
    json_t *v;

    if (!vm)
        return NULL;
    snprintf(vm->name, sizeof(vm->name), "%s", req->name);
    snprintf(vm->tmpl, sizeof(vm->tmpl), "%s", req->tmpl);
    snprintf(vm->range, sizeof(vm->range), "%s", range ? range : "");
    snprintf(vm->snapshot, sizeof(vm->snapshot), "%s", req->snapshot ? req->snapshot : "");
    memcpy(vm->origin, vm->snapshot, sizeof(vm->origin));
    vm->restore_pending = req->snapshot != NULL;
    snprintf(vm->restart, sizeof(vm->restart), "%s", req->restart);
    vm->cpus = cpus;
    vm->mem = mem;
    vm->pidfd = -1;
    vm->exit_code = -1;
    vm->created = hd_now_ms();
    vm->state_dir = cfg->state_dir;
    vm->cloud_init = req->cloud_init ? json_deep_copy(req->cloud_init) : NULL;
    if (resources) {
        /* the seed mounts the resource disk: a guest with one has a seed */
        vm->resources = strdup(resources);
        if (!vm->cloud_init)
            vm->cloud_init = json_object();
        if (!vm->resources || !vm->cloud_init) {
            hd_vm_free(cfg, vm);
            return NULL;
        }
    }
    json_array_foreach(nics, i, v) {
        struct hd_nic *nic = &vm->nics[vm->n_nics++];
        nic_fill(cfg, v, range, nic);
        netdev_kfilter_parse_nic(v, "nics", &nic->kf, NULL); /* checked by hd_check_shape */
    }
    snprintf(vm->state, sizeof(vm->state), "creating");
    vm->busy = true;
    return vm;
}

int hd_vm_create(struct hd_guests *gs, json_t *body, const char *range, const char *resources,
                 json_t **out, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    struct create_req req = {0};
    struct hd_template *t = NULL;
    unsigned cpus = 0;
    uint64_t mem = 0;
    json_t *nics = NULL;

    if (create_req_parse(body, &req, err) < 0)
        return -1;
    req.range = range;
    pthread_mutex_lock(&st->mu);
    if (create_admit(gs->res, body, &req, &t, &cpus, &mem, &nics, err) < 0) {
        pthread_mutex_unlock(&st->mu);
        json_decref(req.owned);
        return -1;
    }
    /* Recorded as "creating" first: a herdd killed from here on finds the
     * record and removes what was made. */
    struct hd_vm *vm = vm_new(gs->cfg, &req, range, resources, cpus, mem, nics);
    json_decref(req.owned);
    if (!vm || hd_uid_alloc(gs->res, vm, err) < 0) {
        pthread_mutex_unlock(&st->mu);
        hd_vm_free(gs->cfg, vm);
        return vm ? -1 : hd_fail(err, 500, "", "out of memory");
    }
    if (hd_db_save_vm(st, vm) < 0) {
        pthread_mutex_unlock(&st->mu);
        hd_vm_free(gs->cfg, vm);
        return hd_fail(err, 500, "", "database write failed");
    }
    append_vm(st, vm);
    /* t stays while a guest uses it, and this one is listed now */
    pthread_mutex_unlock(&st->mu);

    int64_t t0 = hd_mono_ns(), overlay_ns = 0;
    int rc = make_resources(gs, vm, t, &overlay_ns, err);
    if (rc == 0 && vm->cloud_init)
        rc = hd_seed_write(vm, err); /* the MACs are known now */
    int64_t dt = hd_mono_ns() - t0;
    pthread_mutex_lock(&st->mu);
    if (rc < 0) {
        unlink_vm(st, vm);
        hd_db_delete_vm(st, vm);
        pthread_mutex_unlock(&st->mu);
        release_resources(gs->res, vm);
        hd_vm_free(gs->cfg, vm);
        return -1;
    }
    vm->busy = false;
    hd_vm_set_state(st, vm, "created", NULL);
    if (req.start && vm_start_locked(gs, vm, err) < 0) {
        /* created, but not started: say so, keep the guest */
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    *out = hd_vm_json(vm, true);
    json_object_set_new(*out, "create_us", json_integer(dt / 1000));
    json_object_set_new(*out, "overlay_us", json_integer(overlay_ns / 1000));
    pthread_mutex_unlock(&st->mu);
    return 0;
}

/* ---- start ---------------------------------------------------------------------- */

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* A restored guest's overlay stands on its snapshot's disk copy, which
 * stands on its parent snapshot's copy (if any) and so on down to the
 * template's chain (hd_snapshot_chain): the copies go in front. */
static int chain_prepend_snapshot(struct hd_store *st, const struct hd_vm *vm,
                                  struct hd_chain *pin, struct hd_err *err)
{
    return vm->snapshot[0] ? hd_snapshot_chain(st, vm->snapshot, pin, err) : 0;
}

/* The guest's pinned chain (pin), after checking that the overlay (which
 * the guest's herd-vmm could write) names that chain and nothing else, and
 * that the template's files are still where image_dirs allows. A refusal
 * is announced (the request that asked for the start, or the supervisor's
 * restart, is audited with its message): it means a compromised guest or a
 * changed image directory. */
static int pinned_chain(struct hd_res *r, struct hd_vm *vm, const struct hd_template *t,
                        const char *disk, struct hd_chain *pin, struct hd_err *err)
{
    if (hd_image_file_check(r->cfg, t->kernel, "kernel", err) == 0 &&
        (!t->initrd || hd_image_file_check(r->cfg, t->initrd, "initrd", err) == 0) &&
        hd_chain_of(r->cfg, t->image, t->format, "template", pin, err) == 0 &&
        chain_prepend_snapshot(r->st, vm, pin, err) == 0 &&
        hd_chain_verify(disk, pin, err) == 0)
        return 0;
    hd_chain_free(pin);
    err->status = 409;
    if (!err->msg[0])
        hd_fail(err, 500, "disk", "out of memory");
    hd_vm_set_state(r->st, vm, "error", err->msg);
    hd_event(&r->st->ev, "vm.start_refused", vm->name,
             json_pack("{ss ss}", "field", err->field, "reason", err->msg));
    return -1;
}

/* Spawns herd-vmm with argv, its output appended to vmmlog, in a session
 * of its own with default signal handling. */
static int spawn_vmm(struct hd_guests *gs, const struct hd_vmm_argv *a, const char *vmmlog,
                     pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, vmmlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    pthread_mutex_lock(&gs->fd_mu);
    int rc = posix_spawn(pid, a->argv[0], &fa, &at, a->argv, hd_vmm_env(gs->res));
    pthread_mutex_unlock(&gs->fd_mu);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

/* What one start hands herd-vmm: its files' paths and the pinned chain. */
struct start_files {
    char disk[4096], seed[4096], vmmlog[4096], control[108], fifo[4096];
    char restore[4096];         /* a restored guest's snapshot file; "" otherwise */
    bool snap_seed;             /* it attaches the snapshot's seed copy */
    char res[4096];             /* the snapshot's resource disk, when snap_res */
    bool snap_res;
    struct hd_chain pin;
};

/* May vm start now: its state, no other request on it, its template, admission. */
static int start_check(struct hd_res *r, const struct hd_vm *vm, const struct hd_template *t,
                       struct hd_err *err)
{
    if (strcmp(vm->state, "created") && strcmp(vm->state, "stopped") &&
        strcmp(vm->state, "exited") && strcmp(vm->state, "error"))
        return hd_fail(err, 409, "state", "guest '%s' is %s", vm->name, vm->state);
    if (vm->busy)
        return hd_fail(err, 409, "state", "guest '%s' is busy with another request", vm->name);
    if (!t)
        return hd_fail(err, 409, "template", "template '%s' is gone", vm->tmpl);
    return hd_admit(r, vm->cpus, vm->mem, 1, err);
}

/* confinement: its own uid (kept while the guest exists, written through
 * when new), the run directory that uid owns */
static int confine_prepare(struct hd_res *r, struct hd_vm *vm, struct hd_err *err)
{
    uid_t old_uid = vm->uid;
    int rc = hd_uid_alloc(r, vm, err) < 0 || hd_run_dir_prepare(vm, err) < 0 ? -1 : 0;
    if (vm->uid != old_uid)
        hd_db_save_vm(r->st, vm);
    return rc;
}

/* vmm.log is appended to across starts: one older copy past the cap */
static void vmm_log_rotate(const struct hd_config *cfg, const char *vmmlog)
{
    struct stat vst;
    if (stat(vmmlog, &vst) == 0 && (uint64_t)vst.st_size > cfg->console_log_max) {
        char old[4200];
        snprintf(old, sizeof(old), "%s.1", vmmlog);
        rename(vmmlog, old);
    }
}

/* A guest on a snapshot's disk: the snapshot's seed copy, if the source had
 * a seed, and, when its overlay is fresh over that disk (restore_pending),
 * the snapshot's file (herd-vmm --restore); otherwise it boots its
 * template's kernel from its disk. The file stays root's and 0400:
 * herd-vmm opens it before it drops to the guest's uid (docs/security.md). */
static int restore_prepare(struct hd_res *r, struct hd_vm *vm, struct start_files *f,
                           struct hd_err *err)
{
    struct hd_snap_info si;

    f->restore[0] = 0;
    vm->snap_ready = false;
    if (vm->snapshot[0]) {
        if (hd_snapshot_info(r->st, vm->snapshot, "snapshot", &si, err) < 0) {
            err->status = 409;
            return -1;
        }
        json_decref(si.nics);
        f->snap_seed = si.seed;
        if (si.seed)
            hd_snapshot_path(r->cfg, vm->snapshot, HD_SNAP_SEED, f->seed, sizeof(f->seed));
        f->snap_res = si.resources;
        if (si.resources)
            hd_snapshot_path(r->cfg, vm->snapshot, HD_SNAP_RESOURCES, f->res, sizeof(f->res));
        if (vm->restore_pending) {
            vm->snap_ready = si.ready;
            hd_snapshot_path(r->cfg, vm->snapshot, HD_SNAP_FILE, f->restore,
                             sizeof(f->restore));
        }
    }
    return 0;
}

/* The host side of a start: pinned chain, confinement, cgroup (where the
 * host has one), console pipe, paths. On failure nothing of it is held. */
static int start_prepare(struct hd_res *r, struct hd_vm *vm, const struct hd_template *t,
                         struct start_files *f, struct hd_err *err)
{
    hd_vm_path(vm, "disk.qcow2", f->disk, sizeof(f->disk));
    hd_seed_path(vm, f->seed, sizeof(f->seed));
    if (restore_prepare(r, vm, f, err) < 0)
        return -1;
    if (pinned_chain(r, vm, t, f->disk, &f->pin, err) < 0)
        return -1;
    if (confine_prepare(r, vm, err) < 0) {
        hd_chain_free(&f->pin);
        return -1;
    }
    hd_cgroup_prepare(r, vm);
    hd_vm_path(vm, "vmm.log", f->vmmlog, sizeof(f->vmmlog));
    hd_vm_control_path(vm, f->control, sizeof(f->control));
    unlink(f->control);
    /* The console goes through a FIFO herdd drains into a capped
     * console.log (console.c), so no guest fills the disk through it. */
    if (hd_console_start(r->cfg, vm, f->fifo, sizeof(f->fifo), err) < 0) {
        hd_chain_free(&f->pin);
        hd_cgroup_release(r, vm);
        return -1;
    }
    vmm_log_rotate(r->cfg, f->vmmlog);
    struct stat vst;
    vm->vmmlog_off = stat(f->vmmlog, &vst) == 0 ? vst.st_size : 0;
    return 0;
}

/* herd-vmm's command line for this start; frees the pinned chain. */
static int start_argv(struct hd_res *r, const struct hd_vm *vm, const struct hd_template *t,
                      struct start_files *f, struct hd_vmm_argv *argv, struct hd_err *err)
{
    struct hd_vmm_nic nics[HD_MAX_NICS];
    for (unsigned i = 0; i < vm->n_nics; i++)
        nics[i] = (struct hd_vmm_nic){vm->nics[i].tap, vm->nics[i].mac};
    const struct hd_vmm_launch launch = {
        .vmm = r->cfg->vmm_path, .kernel = t->kernel, .initrd = t->initrd,
        .cmdline = t->cmdline, .mem = vm->mem, .cpus = vm->cpus, .console = f->fifo,
        .disk = f->disk, .chain = &f->pin,
        .seed = vm->cloud_init || f->snap_seed ? f->seed : NULL,
        .restore = f->restore[0] ? f->restore : NULL,
        .resources = f->snap_res ? f->res : vm->cloud_init ? vm->resources : NULL,
        .nics = nics, .n_nics = vm->n_nics,
        .control = r->vmm_has_control ? f->control : NULL,
        /* RLIMIT_FSIZE: no file herd-vmm writes grows past what the overlay
         * can legitimately need (docs/security.md) */
        .file_size_max = r->vmm_has_fsize ? hd_vmm_file_size_max(t->image_size) : 0,
        .uid = (unsigned)vm->uid, .cgroup = vm->cgroup,
    };
    int rc = hd_vmm_argv_build(&launch, argv, err);
    hd_chain_free(&f->pin);
    return rc;
}

/* A start that failed after start_prepare: console pipe and cgroup
 * released, the guest in "error" with note. */
static void start_undo(struct hd_res *r, struct hd_vm *vm, const char *note)
{
    hd_console_finish(r->cfg, vm);
    hd_cgroup_release(r, vm);
    hd_vm_set_state(r->st, vm, "error", note);
}

/* The record of a herd-vmm just spawned as pid: nothing left of the last run. */
static void vm_spawned(struct hd_vm *vm, pid_t pid)
{
    vm->pid = pid;
    vm->child = true;
    vm->pidfd = hd_fd_high(pidfd_open_(pid));
    vm->ready = false;
    vm->ready_at = 0;
    vm->has_exit = false;
    vm->exit_code = -1;
    vm->exit_signal = 0;
    json_decref(vm->last_console);
    vm->last_console = NULL;
    vm->stop_requested = false;
    vm->console_off = 0;
    vm->console_carry[0] = 0;
    vm->started = hd_now_ms();
    vm->spawn_ns = hd_mono_ns();
}

/* Hands the new herd-vmm to supervision (the spawn hook); if that fails it
 * is killed and reaped and the start undone. */
static int start_supervise(struct hd_guests *gs, struct hd_vm *vm, struct hd_err *err)
{
    if (vm->pidfd < 0 || !gs->spawn_hook || gs->spawn_hook(gs->spawn_arg, vm) < 0) {
        kill(vm->pid, SIGKILL);
        waitpid(vm->pid, NULL, 0);
        if (vm->pidfd >= 0)
            close(vm->pidfd);
        vm->pidfd = -1;
        vm->pid = 0;
        start_undo(gs->res, vm, "herd-vmm could not be supervised");
        return hd_fail(err, 500, "", "cannot supervise herd-vmm: %s", strerror(errno));
    }
    return 0;
}

static int vm_start_locked(struct hd_guests *gs, struct hd_vm *vm, struct hd_err *err)
{
    struct hd_res *r = gs->res;
    struct hd_template *t = hd_template_find(gs->st, vm->tmpl);
    struct start_files f = {.pin = {0}};
    struct hd_vmm_argv argv;
    pid_t pid;

    if (start_check(r, vm, t, err) < 0 || start_prepare(r, vm, t, &f, err) < 0)
        return -1;
    if (start_argv(r, vm, t, &f, &argv, err) < 0) {
        start_undo(r, vm, err->msg);
        return -1;
    }
    /* "starting" is on disk before the process exists: a herdd killed from
     * here on looks for this guest's herd-vmm when it starts again. */
    hd_vm_set_state(gs->st, vm, "starting", "");
    int rc = spawn_vmm(gs, &argv, f.vmmlog, &pid);
    hd_vmm_argv_free(&argv);
    if (rc != 0) {
        start_undo(r, vm, "herd-vmm could not be run");
        return hd_fail(err, 500, "vmm", "cannot run %s: %s", gs->cfg->vmm_path, strerror(rc));
    }
    vm_spawned(vm, pid);
    if (start_supervise(gs, vm, err) < 0)
        return -1;
    /* its overlay moves on from the snapshot's disk now: a later start
     * boots from it (written through with the state) */
    vm->restore_pending = false;
    hd_vm_set_state(gs->st, vm, "running", "");
    return 0;
}

/* ---- stop, kill, pause, resume -------------------------------------------------- */

/* How long a herd-vmm sent SIGKILL may take to end: its exit waits on the
 * kernel, which removes its taps under the RTNL lock; with hundreds of
 * guests going down at once (range down) that queue takes seconds. */
#define KILL_WAIT_MS 60000

/* Waits (without the store lock) until the guest's process is gone and the
 * supervisor has recorded it. */
static bool wait_gone(int pidfd, int timeout_ms)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

static void wait_recorded(struct hd_store *st, struct hd_vm *vm, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (vm->pidfd >= 0)
        if (pthread_cond_timedwait(&st->changed, &st->mu, &dl) == ETIMEDOUT)
            break;
}

static int pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* How a guest is ended: herd-vmm stops it (flushing its disks), the guest
 * shuts itself down (ACPI power button), or SIGKILL. */
enum stop_how { STOP_VMM, STOP_POWERDOWN, STOP_KILL };

/* Asks herd-vmm (control command CMD) or the process (SIGTERM) to end and
 * waits up to TIMEOUT_MS for it. Store lock not held. */
static bool ask_and_wait(struct hd_res *res, const struct hd_vm *vm, int pidfd, const char *cmd,
                         int timeout_ms)
{
    char why[256];
    json_t *r = res->vmm_has_control ? hd_control(vm, cmd, 2000, why, sizeof(why)) : NULL;
    if (r)
        json_decref(r);
    else if (!strcmp(cmd, "stop"))
        pidfd_signal(pidfd, SIGTERM);
    else
        return false; /* no power button without a control socket */
    return wait_gone(pidfd, timeout_ms);
}

/* Store lock held on entry and exit; dropped while waiting. STOP_POWERDOWN
 * waits TIMEOUT_MS for the guest to power off, then stops it as STOP_VMM
 * does (stop_timeout); STOP_VMM waits TIMEOUT_MS; SIGKILL ends what is left. */
static int vm_stop_locked(struct hd_res *r, struct hd_vm *vm, enum stop_how how,
                          int timeout_ms, struct hd_err *err)
{
    struct hd_store *st = r->st;
    static const char *const notes[] = {
        [STOP_VMM] = "stopped by request",
        [STOP_POWERDOWN] = "shut down by request (ACPI power button)",
        [STOP_KILL] = "killed by request",
    };
    if (vm->busy)
        return hd_fail(err, 409, "state", "guest '%s' is busy with another request", vm->name);
    if (vm->pidfd < 0)
        return hd_fail(err, 409, "state", "guest '%s' is %s, not running", vm->name, vm->state);
    if (how == STOP_POWERDOWN && !r->vmm_has_control)
        return hd_fail(err, 501, "", "this herd-vmm has no control socket (--control)");
    int pidfd = dup(vm->pidfd);
    if (pidfd < 0)
        return hd_fail(err, 500, "", "dup: %s", strerror(errno));
    vm->busy = true;
    vm->stop_requested = true;
    hd_vm_set_state(st, vm, "stopping", notes[how]);
    pthread_mutex_unlock(&st->mu);

    bool gone = false;
    if (how == STOP_POWERDOWN) {
        gone = ask_and_wait(r, vm, pidfd, "powerdown", timeout_ms);
        timeout_ms = (int)r->cfg->stop_timeout_ms;
    }
    if (!gone && how != STOP_KILL)
        gone = ask_and_wait(r, vm, pidfd, "stop", timeout_ms);
    if (!gone) {
        pidfd_signal(pidfd, SIGKILL);
        gone = wait_gone(pidfd, KILL_WAIT_MS);
    }
    close(pidfd);
    pthread_mutex_lock(&st->mu);
    wait_recorded(st, vm, 5000);
    vm->busy = false;
    if (!gone)
        return hd_fail(err, 500, "", "herd-vmm (pid %d) did not end after SIGKILL", vm->pid);
    return 0;
}

/* Store lock held (dropped around the control request, the guest marked
 * busy): pause or resume through herd-vmm's control socket. */
static int vm_pause_resume_locked(struct hd_res *res, struct hd_vm *vm, const char *action,
                                  struct hd_err *err)
{
    bool pause = !strcmp(action, "pause");
    if (vm->busy)
        return hd_fail(err, 409, "state", "guest '%s' is busy with another request", vm->name);
    if (strcmp(vm->state, pause ? "running" : "paused"))
        return hd_fail(err, 409, "state", "guest '%s' is %s", vm->name, vm->state);
    if (!res->vmm_has_control)
        return hd_fail(err, 501, "", "this herd-vmm has no control socket (--control)");
    vm->busy = true;
    pthread_mutex_unlock(&res->st->mu);
    char why[256];
    json_t *r = hd_control(vm, action, 7000, why, sizeof(why));
    pthread_mutex_lock(&res->st->mu);
    vm->busy = false;
    if (!r)
        return hd_fail(err, 502, "", "%s", why);
    json_decref(r);
    if (vm->pidfd >= 0)
        hd_vm_set_state(res->st, vm, pause ? "paused" : "running", "");
    return 0;
}

int hd_vm_action(struct hd_guests *gs, const char *name, const char *action, json_t *opts,
                 json_t **out, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    struct hd_res *res = gs->res;
    int rc = 0;
    bool shutdown = !strcmp(action, "shutdown");
    int timeout_ms = (int)(shutdown ? gs->cfg->shutdown_timeout_ms : gs->cfg->stop_timeout_ms);
    json_t *tv = json_object_get(opts, "timeout");
    if (tv) {
        if (!json_is_number(tv) || json_number_value(tv) < 0 || json_number_value(tv) > 3600)
            return hd_fail(err, 400, "timeout", "timeout must be seconds, 0-3600");
        timeout_ms = (int)(json_number_value(tv) * 1000);
    }
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm || !strcmp(vm->state, "creating")) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 404, "name", "no guest '%s'", name);
    }
    if (!strcmp(action, "start")) {
        rc = vm_start_locked(gs, vm, err);
    } else if (!strcmp(action, "stop")) {
        rc = vm_stop_locked(res, vm, STOP_VMM, timeout_ms, err);
    } else if (shutdown) {
        rc = vm_stop_locked(res, vm, STOP_POWERDOWN, timeout_ms, err);
    } else if (!strcmp(action, "kill")) {
        rc = vm_stop_locked(res, vm, STOP_KILL, timeout_ms, err);
    } else if (!strcmp(action, "reboot")) {
        if (vm->pidfd >= 0)
            rc = vm_stop_locked(res, vm, STOP_VMM, timeout_ms, err);
        if (rc == 0)
            rc = vm_start_locked(gs, vm, err);
    } else if (!strcmp(action, "pause") || !strcmp(action, "resume")) {
        rc = vm_pause_resume_locked(res, vm, action, err);
    } else {
        rc = hd_fail(err, 404, "action", "no action '%s'", action);
    }
    if (rc == 0)
        *out = hd_vm_json(vm, true);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int hd_vm_rm(struct hd_guests *gs, const char *name, bool force, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm || !strcmp(vm->state, "creating")) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 404, "name", "no guest '%s'", name);
    }
    if (vm->busy) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 409, "state", "guest '%s' is busy with another request", name);
    }
    if (vm->pidfd >= 0) {
        if (!force) {
            hd_fail(err, 409, "state", "guest '%s' is %s: stop it first (or force)", name,
                    vm->state);
            pthread_mutex_unlock(&st->mu);
            return -1;
        }
        if (vm_stop_locked(gs->res, vm, STOP_KILL, 0, err) < 0) {
            pthread_mutex_unlock(&st->mu);
            return -1;
        }
    }
    vm->busy = true;
    hd_db_delete_vm(st, vm);
    unlink_vm(st, vm);
    pthread_mutex_unlock(&st->mu);
    release_resources(gs->res, vm);
    json_t *d = vm->range[0] ? json_pack("{ss}", "range", vm->range) : NULL;
    hd_event(&st->ev, "vm.removed", vm->name, d);
    hd_vm_free(gs->cfg, vm);
    return 0;
}

/* Removes what a "creating" record left behind (herdd died mid-create). */
void hd_vm_discard_partial(struct hd_guests *gs, struct hd_vm *vm)
{
    for (unsigned i = 0; i < vm->n_nics; i++)
        netdev_tap_name(vm->nics[i].tap, vm->name, i);
    release_resources(gs->res, vm);
}

/* ---- network (the kernel filters of the guest's taps) ------------------------- */

json_t *hd_vm_net(struct hd_guests *gs, const char *name, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    struct hd_nic nics[HD_MAX_NICS];
    unsigned n;

    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm) {
        pthread_mutex_unlock(&st->mu);
        hd_fail(err, 404, "name", "no guest '%s'", name);
        return NULL;
    }
    n = vm->n_nics;
    memcpy(nics, vm->nics, sizeof(nics[0]) * n);
    pthread_mutex_unlock(&st->mu);
    json_t *a = json_array();
    for (unsigned i = 0; i < n; i++) {
        json_t *f = NULL;
        int rc = nics[i].tap[0] ? netdev_kfilter_stats(nics[i].tap, &f) : -ENOENT;
        json_t *o = json_pack("{ss ss ss ss}", "role", nics[i].role, "bridge", nics[i].bridge,
                              "tap", nics[i].tap, "mac", nics[i].mac);
        json_object_set_new(o, "filter", rc == 0 ? f : json_null());
        if (rc < 0)
            json_object_set_new(o, "filter_error", json_string(rc == -ENOENT
                                                               ? "no kernel filter on the tap"
                                                               : strerror(-rc)));
        json_array_append_new(a, o);
    }
    return json_pack("{ss so}", "name", name, "nics", a);
}

/* ---- logs --------------------------------------------------------------------- */

json_t *hd_vm_logs(struct hd_guests *gs, const char *name, const char *which, long lines,
                   struct hd_err *err)
{
    struct hd_store *st = gs->st;
    char path[4096];
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm) {
        pthread_mutex_unlock(&st->mu);
        hd_fail(err, 404, "name", "no guest '%s'", name);
        return NULL;
    }
    hd_vm_path(vm, !strcmp(which, "vmm") ? "vmm.log" : "console.log", path, sizeof(path));
    pthread_mutex_unlock(&st->mu);
    json_t *l = hd_tail_lines(path, lines);
    return json_pack("{ss ss so}", "name", name, "log", which, "lines", l);
}

/* The guest, for a reset or a restore: found, not being created, not busy,
 * its template there. Store lock held. */
static int rebase_find(struct hd_store *st, const char *name, struct hd_vm **out,
                       struct hd_err *err)
{
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm || !strcmp(vm->state, "creating"))
        return hd_fail(err, 404, "name", "no guest '%s'", name);
    if (vm->busy || !hd_template_find(st, vm->tmpl))
        return hd_fail(err, 409, "state", "guest '%s' cannot be reset now", name);
    *out = vm;
    return 0;
}

/* Kill, a fresh overlay over snap's disk copy (snap "": the template's
 * image), and start again if it ran (or had exited): with snap, the start
 * restores snap's RAM and devices. new_instance: a guest with a seed gets a
 * new instance-id (cloud-init runs again). Store lock held. */
static int rebase_locked(struct hd_guests *gs, struct hd_vm *vm, const char *snap,
                         bool new_instance, const char *event, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    bool was_running = vm->pidfd >= 0;
    if (was_running && vm_stop_locked(gs->res, vm, STOP_KILL, 0, err) < 0)
        return -1;
    struct hd_template *t = hd_template_find(st, vm->tmpl);
    if (!t || vm->busy)
        return hd_fail(err, 409, "state", "guest '%s' cannot be reset now", vm->name);
    snprintf(vm->snapshot, sizeof(vm->snapshot), "%s", snap);
    vm->restore_pending = snap[0] != 0;
    char disk[4096];
    hd_vm_path(vm, "disk.qcow2", disk, sizeof(disk));
    int rc = overlay_make(gs->cfg, vm, t, disk);
    if (rc < 0) {
        hd_vm_set_state(st, vm, "error", "its overlay could not be made again");
        return hd_fail(err, 500, "", "overlay %s: %s", disk, strerror(-rc));
    }
    if (vm->cloud_init && new_instance) {
        /* a new instance: cloud-init runs again on the fresh overlay */
        vm->seed_gen++;
        if (hd_seed_write(vm, err) < 0)
            return -1;
    }
    vm->restarts = 0;
    if (hd_db_save_vm(st, vm) < 0)
        return hd_fail(err, 500, "", "database write failed");
    json_t *d = json_object();
    if (vm->range[0])
        json_object_set_new(d, "range", json_string(vm->range));
    if (snap[0])
        json_object_set_new(d, "snapshot", json_string(snap));
    hd_event(&st->ev, event, vm->name, d);
    return was_running || !strcmp(vm->state, "exited") ? vm_start_locked(gs, vm, err) : 0;
}

/* Back to where the guest came from: a fresh overlay over its template's
 * image, or for a guest created from a snapshot over that snapshot's copy
 * (restored again); started again if it was running. */
int hd_vm_reset(struct hd_guests *gs, const char *name, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    struct hd_vm *vm;
    pthread_mutex_lock(&st->mu);
    int rc = rebase_find(st, name, &vm, err);
    if (rc == 0)
        rc = rebase_locked(gs, vm, vm->origin, true, "vm.reset", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Do templates a and b stand on the same image (a warm template and its
 * snapshot's template do)? Store lock held. */
static bool same_image(struct hd_store *st, const char *a, const char *b)
{
    const struct hd_template *ta = hd_template_find(st, a), *tb = hd_template_find(st, b);
    return ta && tb && !strcmp(ta->image, tb->image) && !strcmp(ta->format, tb->format);
}

/* Does the guest's machine take snapshot si's state: its template, shape,
 * NIC count and seed disk (the disks herd-vmm is given)? Store lock held. */
static int restore_fits(struct hd_store *st, const struct hd_vm *vm, const char *snap,
                        const struct hd_snap_info *si, struct hd_err *err)
{
    struct hd_snap_info cur = {.seed = vm->cloud_init != NULL,
                               .resources = vm->cloud_init && vm->resources};
    struct hd_err ignored = {0};
    if (!vm->cloud_init && vm->snapshot[0] &&
        hd_snapshot_info(st, vm->snapshot, "", &cur, &ignored) == 0)
        json_decref(cur.nics);
    if (!same_image(st, si->tmpl, vm->tmpl))
        return hd_fail(err, 409, "snapshot", "snapshot '%s' is of a guest of template '%s'; "
                       "'%s' is of template '%s' (another image)", snap, si->tmpl, vm->name,
                       vm->tmpl);
    if (si->cpus != vm->cpus || si->mem != vm->mem)
        return hd_fail(err, 409, "snapshot", "snapshot '%s' has %u vCPUs and %llu MiB; '%s' "
                       "has %u and %llu MiB", snap, si->cpus,
                       (unsigned long long)(si->mem >> 20), vm->name, vm->cpus,
                       (unsigned long long)(vm->mem >> 20));
    if (json_array_size(si->nics) != vm->n_nics)
        return hd_fail(err, 409, "snapshot", "snapshot '%s' has %zu NICs; '%s' has %u", snap,
                       json_array_size(si->nics), vm->name, vm->n_nics);
    if (si->seed != cur.seed)
        return hd_fail(err, 409, "snapshot", "snapshot '%s' %s a seed disk; '%s' %s", snap,
                       si->seed ? "has" : "has no", vm->name, cur.seed ? "has" : "has none");
    if (si->resources != cur.resources)
        return hd_fail(err, 409, "snapshot", "snapshot '%s' %s a resource disk; '%s' %s", snap,
                       si->resources ? "has" : "has no", vm->name,
                       cur.resources ? "has" : "has none");
    return 0;
}

int hd_vm_restore(struct hd_guests *gs, const char *name, const char *snap, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    struct hd_snap_info si;
    struct hd_vm *vm;
    pthread_mutex_lock(&st->mu);
    int rc = rebase_find(st, name, &vm, err);
    if (rc == 0 && (rc = hd_snapshot_info(st, snap, "snapshot", &si, err)) == 0) {
        rc = restore_fits(st, vm, snap, &si, err);
        json_decref(si.nics);
    }
    if (rc == 0)
        rc = rebase_locked(gs, vm, snap, false, "vm.restored", err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- snapshot ------------------------------------------------------------------- */

/* One control request on vm's socket (no lock held); 502 when it fails. */
static int control_simple(const struct hd_vm *vm, const char *cmd, struct hd_err *err)
{
    char why[512];
    json_t *rep = hd_control(vm, cmd, 7000, why, sizeof(why));
    if (!rep)
        return err ? hd_fail(err, 502, "", "%s", why) : -1;
    json_decref(rep);
    return 0;
}

/* Pause (if it runs) and have herd-vmm write the snapshot. On failure the
 * guest is resumed if it was paused here. No lock held. */
static int snapshot_write(struct hd_snap_take *tk, bool was_paused, struct hd_err *err)
{
    if (!was_paused && control_simple(tk->vm, "pause", err) < 0)
        return -1;
    if (hd_snapshot_write(tk, err) == 0)
        return 0;
    if (!was_paused)
        control_simple(tk->vm, "resume", NULL);
    return -1;
}

/* herd-vmm flushed the guest's disks while it wrote the snapshot (its
 * devices quiesced), so until the guest runs again its overlay is the
 * snapshot's disk: copied now, the guest still paused. Store lock held
 * (dropped while copying, the guest busy). */
static int snapshot_disks(struct hd_guests *gs, struct hd_snap_take *tk, struct hd_err *err)
{
    struct hd_vm *vm = tk->vm;
    vm->busy = true;
    pthread_mutex_unlock(&gs->st->mu);
    int rc = hd_snapshot_copy_disks(tk, err);
    pthread_mutex_lock(&gs->st->mu);
    vm->busy = false;
    return rc;
}

int hd_vm_snapshot(struct hd_guests *gs, const char *name, json_t *body,
                   const struct hd_cp_tag *cp, json_t **out, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    struct hd_snap_take tk;
    struct hd_err resume_err = {0};
    char note[600];

    pthread_mutex_lock(&st->mu);
    if (hd_snapshot_begin(gs->res, name, body, &tk, err) < 0) {
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    struct hd_vm *vm = tk.vm;
    bool was_paused = !strcmp(vm->state, "paused");
    if (cp) {
        snprintf(tk.checkpoint, sizeof(tk.checkpoint), "%s", cp->name);
        tk.checkpoint_of = cp->of;
    }
    pthread_mutex_unlock(&st->mu);
    int64_t t0 = hd_mono_ns();
    if (snapshot_write(&tk, was_paused, err) < 0) {
        pthread_mutex_lock(&st->mu);
        vm->busy = false;
        pthread_mutex_unlock(&st->mu);
        hd_snapshot_abort(gs->cfg, &tk);
        return -1;
    }
    pthread_mutex_lock(&st->mu);
    int rc = snapshot_disks(gs, &tk, err);
    pthread_mutex_unlock(&st->mu);
    note[0] = 0;
    if (!was_paused && control_simple(vm, "resume", &resume_err) < 0)
        snprintf(note, sizeof(note), "could not resume it: %s", resume_err.msg);
    pthread_mutex_lock(&st->mu);
    int64_t paused_ns = hd_mono_ns() - t0;
    if (rc == 0)
        rc = hd_snapshot_commit(st, &tk, out, err);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        hd_snapshot_abort(gs->cfg, &tk);
        return -1;
    }
    json_t *d = json_pack("{ss sI}", "vm", name, "paused_us", (json_int_t)(paused_ns / 1000));
    json_object_set_new(*out, "paused_us", json_integer(paused_ns / 1000));
    if (note[0]) {
        json_object_set_new(d, "note", json_string(note));
        json_object_set_new(*out, "note", json_string(note));
    }
    hd_event(&st->ev, "snapshot.created", tk.name, d);
    hd_chain_free(&tk.pin);
    return 0;
}
