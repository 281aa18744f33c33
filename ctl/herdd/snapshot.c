/*
 * Snapshots of guests (layer 2, docs/herdd.md "Layers" and "Snapshots";
 * docs/snapshot.md "herdd"). A snapshot is STATE/snapshots/NAME/:
 *   vm.snap     herd-vmm's snapshot file (RAM and device state), written by
 *               herd-vmm into a descriptor herdd opened (O_CREAT|O_EXCL)
 *   disk.qcow2  a sparse copy of the guest's overlay, taken while the
 *               guest is still paused (herd-vmm flushed it as it wrote
 *               vm.snap): a qcow2 delta over the template's chain
 *   seed.iso    a copy of its cloud-init seed, when it had one
 * all root's and read-only (herd-vmm opens them before it drops to the
 * guest's uid), and a record in the database (the document the API shows).
 * Guests restored from it (vm.c) get their own overlay over disk.qcow2.
 *
 * This file has the steps (begin, write, copy, commit, abort), listing and
 * removal; vm.c runs the steps around its pause and resume of the guest,
 * which is marked busy throughout (no stop, rm or second snapshot meanwhile).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herdd.h"

#define SNAP_TIMEOUT_MS 120000 /* writing RAM and syncing it */

void hd_snapshot_path(const struct hd_config *cfg, const char *name, const char *file,
                      char *out, size_t size)
{
    if (file)
        snprintf(out, size, "%s/snapshots/%s/%s", cfg->state_dir, name, file);
    else if (name)
        snprintf(out, size, "%s/snapshots/%s", cfg->state_dir, name);
    else
        snprintf(out, size, "%s/snapshots", cfg->state_dir);
}

/* The snapshot a snapshot's disk copy stands on ("parent": it was taken of
 * a guest restored from that one), "" when none. Store lock held. */
static void parent_of(struct hd_store *st, const char *name, char out[HD_NAME_MAX + 1])
{
    json_t *d = hd_db_snapshots(st, name);
    const char *p = json_string_value(json_object_get(d, "parent"));
    snprintf(out, HD_NAME_MAX + 1, "%s", p && hd_name_ok(p) ? p : "");
    json_decref(d);
}

static int chain_prepend(struct hd_chain *pin, const char *path, const char *fmt,
                         struct hd_err *err)
{
    if (pin->n >= HD_CHAIN_MAX)
        return hd_fail(err, 409, "disk", "the snapshot's chain is longer than %d", HD_CHAIN_MAX);
    char *p = strdup(path), *f = strdup(fmt);
    if (!p || !f) {
        free(p);
        free(f);
        return hd_fail(err, 500, "disk", "out of memory");
    }
    memmove(&pin->path[1], &pin->path[0], pin->n * sizeof(pin->path[0]));
    memmove(&pin->format[1], &pin->format[0], pin->n * sizeof(pin->format[0]));
    pin->path[0] = p;
    pin->format[0] = f;
    pin->n++;
    return 0;
}

int hd_snapshot_chain(struct hd_store *st, const char *name, struct hd_chain *pin,
                      struct hd_err *err)
{
    char names[HD_CHAIN_MAX][HD_NAME_MAX + 1];
    unsigned n = 0;

    snprintf(names[n++], sizeof(names[0]), "%s", name);
    for (;;) {
        char parent[HD_NAME_MAX + 1];
        parent_of(st, names[n - 1], parent);
        if (!parent[0])
            break;
        if (n == HD_CHAIN_MAX)
            return hd_fail(err, 409, "disk", "snapshot '%s' stands on more than %d others",
                           name, HD_CHAIN_MAX - 1);
        snprintf(names[n++], sizeof(names[0]), "%s", parent);
    }
    while (n--) { /* the oldest first: each later copy goes in front of it */
        char copy[4096];
        hd_snapshot_path(st->cfg, names[n], HD_SNAP_DISK, copy, sizeof(copy));
        if (chain_prepend(pin, copy, "qcow2", err) < 0)
            return -1;
    }
    return 0;
}

static void take_paths(const struct hd_config *cfg, struct hd_snap_take *tk)
{
    hd_snapshot_path(cfg, tk->name, NULL, tk->dir, sizeof(tk->dir));
    snprintf(tk->file, sizeof(tk->file), "%s/%s", tk->dir, HD_SNAP_FILE);
    snprintf(tk->copy, sizeof(tk->copy), "%s/%s", tk->dir, HD_SNAP_DISK);
    snprintf(tk->seed_copy, sizeof(tk->seed_copy), "%s/%s", tk->dir, HD_SNAP_SEED);
    snprintf(tk->res_copy, sizeof(tk->res_copy), "%s/%s", tk->dir, HD_SNAP_RESOURCES);
}

void hd_snapshot_abort(const struct hd_config *cfg, struct hd_snap_take *tk)
{
    if (tk->dir_made) {
        unlink(tk->file);
        hd_overlay_wipe_unlink(cfg, tk->copy);
        unlink(tk->seed_copy);
        unlink(tk->res_copy);
        rmdir(tk->dir);
        tk->dir_made = false;
    }
    hd_chain_free(&tk->pin);
}

static int body_name(json_t *body, const char **name, struct hd_err *err)
{
    static const char *const known[] = {"name", NULL};

    return hd_body_name(body, known, name, err);
}

/* Is path an image herdd built (STATE/ranges/...): never written in place,
 * only replaced by rename, so a hard link keeps what the guest had. */
static bool herdd_image(const struct hd_config *cfg, const char *path)
{
    char top[4200];
    snprintf(top, sizeof(top), "%s/ranges/", cfg->state_dir);
    return !strncmp(path, top, strlen(top)) && !strstr(path, "/../");
}

/* May vm be snapshotted now? (store lock held) */
static int source_check(struct hd_res *r, const char *vmname, const char *name,
                        struct hd_vm **out, struct hd_err *err)
{
    struct hd_vm *vm = hd_vm_find(r->st, vmname);

    if (!vm || !strcmp(vm->state, "creating"))
        return hd_fail(err, 404, "vm", "no guest '%s'", vmname);
    json_t *old = hd_db_snapshots(r->st, name);
    if (old) {
        json_decref(old);
        return hd_fail(err, 409, "name", "snapshot '%s' exists already", name);
    }
    if (vm->busy)
        return hd_fail(err, 409, "state", "guest '%s' is busy with another request", vmname);
    if (vm->pidfd < 0 || (strcmp(vm->state, "running") && strcmp(vm->state, "paused")))
        return hd_fail(err, 409, "state", "guest '%s' is %s: a snapshot is taken of a running "
                       "or paused guest", vmname, vm->state);
    if (!r->vmm_has_control)
        return hd_fail(err, 501, "", "this herd-vmm has no control socket (--control)");
    if (vm->resources && !herdd_image(r->cfg, vm->resources))
        return hd_fail(err, 409, "vm", "guest '%s' has a raw image file as its resource disk "
                       "(%s), which its owner could change in place: not kept in snapshots",
                       vmname, vm->resources);
    *out = vm;
    return 0;
}

/* STATE/snapshots/NAME, new (0700); 409 when another request made it first. */
static int dir_make(const struct hd_config *cfg, struct hd_snap_take *tk, struct hd_err *err)
{
    char top[4096];

    hd_snapshot_path(cfg, NULL, NULL, top, sizeof(top));
    if (mkdir(top, 0700) < 0 && errno != EEXIST)
        return hd_fail(err, 500, "", "%s: %s", top, strerror(errno));
    take_paths(cfg, tk);
    if (mkdir(tk->dir, 0700) < 0) {
        if (errno == EEXIST)
            return hd_fail(err, 409, "name", "snapshot '%s' exists already (or is being taken)",
                           tk->name);
        return hd_fail(err, 500, "", "%s: %s", tk->dir, strerror(errno));
    }
    tk->dir_made = true;
    return 0;
}

/* The guest's seed and resource disks, if it has them, as herd-vmm was
 * given them (vm.c's restore_prepare): its snapshot's copies when it
 * stands on a snapshot that has them, else its own. */
static void disk_sources(struct hd_store *st, const struct hd_vm *vm, struct hd_snap_take *tk)
{
    struct hd_snap_info si = {0};
    struct hd_err ignored = {0};

    if (vm->snapshot[0] && hd_snapshot_info(st, vm->snapshot, "", &si, &ignored) == 0)
        json_decref(si.nics);
    tk->seed = si.seed || vm->cloud_init;
    if (si.seed)
        hd_snapshot_path(st->cfg, vm->snapshot, HD_SNAP_SEED, tk->seed_src,
                         sizeof(tk->seed_src));
    else if (vm->cloud_init)
        hd_seed_path(vm, tk->seed_src, sizeof(tk->seed_src));
    tk->res = si.resources || (vm->cloud_init && vm->resources);
    if (si.resources)
        hd_snapshot_path(st->cfg, vm->snapshot, HD_SNAP_RESOURCES, tk->res_src,
                         sizeof(tk->res_src));
    else if (tk->res)
        snprintf(tk->res_src, sizeof(tk->res_src), "%s", vm->resources);
}

int hd_snapshot_begin(struct hd_res *r, const char *vmname, json_t *body,
                      struct hd_snap_take *tk, struct hd_err *err)
{
    const char *name = NULL;
    struct hd_vm *vm = NULL;

    memset(tk, 0, sizeof(*tk));
    if (body_name(body, &name, err) < 0 || source_check(r, vmname, name, &vm, err) < 0)
        return -1;
    snprintf(tk->name, sizeof(tk->name), "%s", name);
    struct hd_template *t = hd_template_find(r->st, vm->tmpl);
    if (!t)
        return hd_fail(err, 409, "vm", "template '%s' of guest '%s' is gone", vm->tmpl, vmname);
    if (hd_chain_of(r->cfg, t->image, t->format, "template", &tk->pin, err) < 0)
        return -1;
    if ((vm->snapshot[0] && hd_snapshot_chain(r->st, vm->snapshot, &tk->pin, err) < 0) ||
        dir_make(r->cfg, tk, err) < 0) {
        hd_chain_free(&tk->pin);
        return -1;
    }
    tk->vm = vm;
    disk_sources(r->st, vm, tk);
    tk->ready = vm->ready;
    hd_vm_path(vm, "disk.qcow2", tk->disk, sizeof(tk->disk));
    vm->busy = true;
    return 0;
}

int hd_snapshot_write(struct hd_snap_take *tk, struct hd_err *err)
{
    char why[512];

    int fd = open(tk->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return hd_fail(err, 500, "", "%s: %s", tk->file, strerror(errno));
    json_t *rep = hd_control_request_fd(tk->vm, "{\"cmd\":\"snapshot\"}\n", "snapshot", fd,
                                        SNAP_TIMEOUT_MS, why, sizeof(why));
    close(fd);
    if (!rep)
        return hd_fail(err, 502, "", "%s", why);
    json_decref(rep);
    if (chmod(tk->file, 0400) < 0)
        return hd_fail(err, 500, "", "%s: %s", tk->file, strerror(errno));
    return 0;
}

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, buf, len, off);
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Copies [off, end) of in to the same place in out. */
static int copy_range(int in, int out, off_t off, off_t end, char *buf, size_t bufsz)
{
    while (off < end) {
        size_t want = (size_t)(end - off) < bufsz ? (size_t)(end - off) : bufsz;
        ssize_t n = pread(in, buf, want, off);
        if (n <= 0)
            return -1;
        if (write_all(out, buf, (size_t)n, off) < 0)
            return -1;
        off += n;
    }
    return 0;
}

/* Copies the data extents of in into out: holes stay holes. */
static int copy_sparse_fd(int in, int out, off_t size)
{
    size_t bufsz = 1 << 20;
    char *buf = malloc(bufsz);
    if (!buf)
        return -1;
    off_t off = 0;
    int rc = 0;
    while (off < size) {
        off_t data = lseek(in, off, SEEK_DATA);
        if (data < 0) {
            rc = errno == ENXIO ? 0 : -1; /* only a hole is left */
            break;
        }
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0 || copy_range(in, out, data, hole, buf, bufsz) < 0) {
            rc = -1;
            break;
        }
        off = hole;
    }
    free(buf);
    if (rc == 0 && (ftruncate(out, size) < 0 || fdatasync(out) < 0))
        rc = -1;
    return rc;
}

/* src into dst (new, root's, 0400), sparse. */
static int copy_sparse(const char *src, const char *dst, const char *what, struct hd_err *err)
{
    struct stat sb;
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0 || fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        int e = in < 0 ? errno : EINVAL;
        if (in >= 0)
            close(in);
        return hd_fail(err, 500, "", "%s %s: %s", what, src, strerror(e));
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
    if (out < 0) {
        int e = errno;
        close(in);
        return hd_fail(err, 500, "", "%s %s: %s", what, dst, strerror(e));
    }
    int rc = copy_sparse_fd(in, out, sb.st_size);
    int e = errno;
    close(in);
    close(out);
    if (rc < 0)
        return hd_fail(err, 500, "", "copying %s %s: %s", what, src, strerror(e));
    return 0;
}

int hd_snapshot_copy_disks(struct hd_snap_take *tk, struct hd_err *err)
{
    if (copy_sparse(tk->disk, tk->copy, "overlay", err) < 0)
        return -1;
    /* the copy must name the template's chain, as the guest's overlay had to */
    if (hd_chain_verify(tk->copy, &tk->pin, err) < 0)
        return -1;
    if (tk->seed && copy_sparse(tk->seed_src, tk->seed_copy, "seed", err) < 0)
        return -1;
    /* the resource disk is herdd's, replaced only by rename: a link keeps
     * the image the guest has, whatever a later `range up` builds */
    if (tk->res && link(tk->res_src, tk->res_copy) < 0)
        return hd_fail(err, 500, "", "resource disk %s: %s", tk->res_src, strerror(errno));
    return 0;
}

static json_t *file_json(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return json_null();
    return json_pack("{ss sI sI}", "path", path, "size", (json_int_t)sb.st_size, "allocated",
                     (json_int_t)sb.st_blocks * 512);
}

/* A read-only raw disk of the snapshot (the seed's copy, the resource
 * disk's link). */
static json_t *readonly_raw_json(const char *path)
{
    json_t *s = file_json(path);
    if (json_is_object(s)) {
        json_object_set_new(s, "format", json_string("raw"));
        json_object_set_new(s, "readonly", json_true());
    }
    return s;
}

/* The disks as herd-vmm was given them: the overlay's copy over the
 * template's chain, then the seed's copy. */
static json_t *disks_json(const struct hd_snap_take *tk)
{
    json_t *backing = json_array();
    for (unsigned i = 0; i < tk->pin.n; i++)
        json_array_append_new(backing, json_pack("{ss ss}", "path", tk->pin.path[i], "format",
                                                 tk->pin.format[i]));
    json_t *d = file_json(tk->copy);
    if (json_is_object(d)) {
        json_object_set_new(d, "format", json_string("qcow2"));
        json_object_set_new(d, "backing", backing);
    } else {
        json_decref(backing);
    }
    json_t *a = json_pack("[o]", d);
    if (tk->seed)
        json_array_append_new(a, readonly_raw_json(tk->seed_copy));
    if (tk->res)
        json_array_append_new(a, readonly_raw_json(tk->res_copy));
    return a;
}

/* Store lock held: the record of the snapshot of tk->vm. */
static json_t *snap_doc(const struct hd_snap_take *tk)
{
    const struct hd_vm *vm = tk->vm;
    json_t *nics = json_array();
    for (unsigned i = 0; i < vm->n_nics; i++) {
        const struct hd_nic *n = &vm->nics[i];
        json_t *o = json_pack("{ss ss ss si}", "network", n->role, "bridge", n->bridge, "mac",
                              n->mac, "queues", 1);
        if (n->segment[0])
            json_object_set_new(o, "segment", json_string(n->segment));
        json_array_append_new(nics, o);
    }
    json_t *doc = json_pack("{ss ss ss si sI sI sb sb so so so so}", "name", tk->name, "vm", vm->name,
                     "template", vm->tmpl, "cpus", (int)vm->cpus, "mem", (json_int_t)vm->mem,
                     "created", (json_int_t)hd_now_ms(), "ready", tk->ready, "seed", tk->seed,
                     "dir", json_string(tk->dir), "file", file_json(tk->file), "disks",
                     disks_json(tk), "nics", nics);
    json_object_set_new(doc, "parent", vm->snapshot[0] ? json_string(vm->snapshot) : json_null());
    json_object_set_new(doc, "resources", json_boolean(tk->res));
    if (tk->checkpoint[0])
        json_object_set_new(doc, "checkpoint", json_pack("{ss ss si}", "range", vm->range,
                                                         "name", tk->checkpoint, "guests",
                                                         (int)tk->checkpoint_of));
    return doc;
}

int hd_snapshot_commit(struct hd_store *st, struct hd_snap_take *tk, json_t **out,
                       struct hd_err *err)
{
    json_t *doc = snap_doc(tk);
    if (!doc || hd_db_save_snapshot(st, tk->name, tk->vm->tmpl, doc) < 0) {
        json_decref(doc);
        return hd_fail(err, 500, "", "database write failed");
    }
    *out = doc;
    return 0;
}

/* Store lock held: guests standing on name or created from it (a reset
 * goes back to it), and one of them. */
static unsigned users_of(struct hd_store *st, const char *name, const char **one)
{
    unsigned n = 0;
    *one = NULL;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (!strcmp(vm->snapshot, name) || !strcmp(vm->origin, name)) {
            n++;
            if (!*one || vm->pidfd >= 0)
                *one = vm->name;
        }
    return n;
}

static json_t *with_users(struct hd_store *st, json_t *doc)
{
    const char *one;
    const char *name = json_string_value(json_object_get(doc, "name"));
    json_object_set_new(doc, "guests", json_integer(users_of(st, name ? name : "", &one)));
    return doc;
}

json_t *hd_snapshot_list(struct hd_store *st)
{
    pthread_mutex_lock(&st->mu);
    json_t *a = hd_db_snapshots(st, NULL);
    size_t i;
    json_t *d;
    json_array_foreach(a, i, d) with_users(st, d);
    pthread_mutex_unlock(&st->mu);
    return a;
}

json_t *hd_snapshot_get(struct hd_store *st, const char *name, struct hd_err *err)
{
    pthread_mutex_lock(&st->mu);
    json_t *d = hd_db_snapshots(st, name);
    if (d)
        with_users(st, d);
    pthread_mutex_unlock(&st->mu);
    if (!d)
        hd_fail(err, 404, "name", "no snapshot '%s'", name);
    return d;
}

/* Store lock held: a snapshot whose parent is name, into child. */
static bool child_of(struct hd_store *st, const char *name, char child[HD_NAME_MAX + 1])
{
    json_t *all = hd_db_snapshots(st, NULL);
    size_t i;
    json_t *d;
    bool found = false;
    json_array_foreach(all, i, d) {
        const char *p = json_string_value(json_object_get(d, "parent"));
        const char *n = json_string_value(json_object_get(d, "name"));
        if (!found && p && n && !strcmp(p, name)) {
            snprintf(child, HD_NAME_MAX + 1, "%s", n);
            found = true;
        }
    }
    json_decref(all);
    return found;
}

/* Store lock held: a warm template made from snapshot name. */
static const struct hd_template *warm_of(struct hd_store *st, const char *name)
{
    for (const struct hd_template *t = st->templates; t; t = t->next)
        if (!strcmp(t->snapshot, name))
            return t;
    return NULL;
}

/* Store lock held: 409 when the checkpoint that d belongs to must remove it. */
static int checkpoint_owned(json_t *d, const char *name, struct hd_err *err)
{
    json_t *cp = json_object_get(d, "checkpoint");
    if (!json_is_object(cp))
        return 0;
    const char *rn = json_string_value(json_object_get(cp, "range"));
    const char *cn = json_string_value(json_object_get(cp, "name"));
    return hd_fail(err, 409, "name", "snapshot '%s' is part of checkpoint '%s' of range '%s': "
                   "remove the checkpoint (herdctl range checkpoint-rm %s %s)", name,
                   cn ? cn : "?", rn ? rn : "?", rn ? rn : "?", cn ? cn : "?");
}

int hd_snapshot_rm(struct hd_res *r, const char *name, bool in_checkpoint, struct hd_err *err)
{
    char child[HD_NAME_MAX + 1];
    struct hd_store *st = r->st;
    struct hd_snap_take tk = {.dir_made = true};
    const struct hd_template *warm;
    const char *one;

    pthread_mutex_lock(&st->mu);
    json_t *d = hd_db_snapshots(st, name);
    unsigned users = d ? users_of(st, name, &one) : 0;
    int rc = 0;
    if (!d)
        rc = hd_fail(err, 404, "name", "no snapshot '%s'", name);
    else if (!in_checkpoint && checkpoint_owned(d, name, err) < 0)
        rc = -1;
    else if (users)
        rc = hd_fail(err, 409, "name", "snapshot '%s' is used by %u guest(s) (e.g. %s): their "
                     "disks stand on its copy (or a reset returns to it)", name, users, one);
    else if ((warm = warm_of(st, name)))
        rc = hd_fail(err, 409, "name", "snapshot '%s' is warm template '%s': remove that first",
                     name, warm->name);
    else if (child_of(st, name, child))
        rc = hd_fail(err, 409, "name", "snapshot '%s' is the parent of snapshot '%s' (its disk "
                     "copy stands on this one's): remove that first", name, child);
    else if (hd_db_delete_snapshot(st, name) < 0)
        rc = hd_fail(err, 500, "", "database write failed");
    pthread_mutex_unlock(&st->mu);
    json_decref(d);
    if (rc < 0)
        return -1;
    snprintf(tk.name, sizeof(tk.name), "%s", name);
    take_paths(r->cfg, &tk);
    hd_snapshot_abort(r->cfg, &tk);
    hd_event(&st->ev, "snapshot.removed", name, NULL);
    return 0;
}

int hd_snapshot_info(struct hd_store *st, const char *name, const char *field,
                     struct hd_snap_info *out, struct hd_err *err)
{
    json_t *d = hd_db_snapshots(st, name);
    if (!d)
        return hd_fail(err, 404, field, "no snapshot '%s'", name);
    memset(out, 0, sizeof(*out));
    const char *t = json_string_value(json_object_get(d, "template"));
    snprintf(out->tmpl, sizeof(out->tmpl), "%s", t ? t : "");
    out->cpus = (unsigned)json_integer_value(json_object_get(d, "cpus"));
    out->mem = (uint64_t)json_integer_value(json_object_get(d, "mem"));
    out->seed = json_is_true(json_object_get(d, "seed"));
    out->resources = json_is_true(json_object_get(d, "resources"));
    out->ready = json_is_true(json_object_get(d, "ready"));
    out->nics = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(d, "nics"), i, n) {
        json_t *item = json_pack("{sO}", "network", json_object_get(n, "network"));
        json_t *seg = json_object_get(n, "segment");
        if (json_is_string(seg))
            json_object_set(item, "segment", seg);
        json_array_append_new(out->nics, item);
    }
    json_decref(d);
    return 0;
}

void hd_snapshot_sweep(struct hd_res *r)
{
    char top[4096];
    hd_snapshot_path(r->cfg, NULL, NULL, top, sizeof(top));
    DIR *d = opendir(top);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!hd_name_ok(e->d_name))
            continue; /* ".", "..", and nothing herdd names */
        pthread_mutex_lock(&r->st->mu);
        json_t *rec = hd_db_snapshots(r->st, e->d_name);
        pthread_mutex_unlock(&r->st->mu);
        if (rec) {
            json_decref(rec);
            continue;
        }
        struct hd_snap_take tk = {.dir_made = true};
        snprintf(tk.name, sizeof(tk.name), "%s", e->d_name);
        take_paths(r->cfg, &tk);
        hd_snapshot_abort(r->cfg, &tk);
        fprintf(stderr, "herdd: removed %s: a snapshot cut short (no record)\n", tk.dir);
    }
    closedir(d);
}

/* ---- warm templates: a snapshot under a template's name ------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Store lock held: warm template name from snapshot snap, its files and
 * boot settings its snapshot's template's, its shape the snapshot's. */
static struct hd_template *warm_new(struct hd_store *st, const char *name, const char *snap,
                                    struct hd_err *err)
{
    struct hd_snap_info si;
    if (hd_snapshot_info(st, snap, "snapshot", &si, err) < 0)
        return NULL;
    const struct hd_template *base = hd_template_find(st, si.tmpl);
    if (!base) {
        json_decref(si.nics);
        hd_fail(err, 409, "snapshot", "template '%s' of snapshot '%s' is gone", si.tmpl, snap);
        return NULL;
    }
    struct hd_template *t = calloc(1, sizeof(*t));
    if (!t) {
        json_decref(si.nics);
        hd_fail(err, 500, "", "out of memory");
        return NULL;
    }
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->snapshot, sizeof(t->snapshot), "%s", snap);
    t->image = strdup(base->image);
    t->format = strdup(base->format);
    t->kernel = strdup(base->kernel);
    t->initrd = dup_or_null(base->initrd);
    t->cmdline = strdup(base->cmdline);
    t->ready_line = strdup(base->ready_line);
    t->sha256 = strdup(base->sha256);
    t->image_size = base->image_size;
    t->file_size = base->file_size;
    t->cpus = si.cpus;
    t->mem = si.mem;
    t->nics = si.nics;
    t->created = hd_now_ms();
    return t;
}

int hd_snapshot_template_add(struct hd_res *r, json_t *body, json_t **out, struct hd_err *err)
{
    static const char *const known[] = {"name", "snapshot", NULL};
    struct hd_store *st = r->st;
    const char *name, *snap = json_string_value(json_object_get(body, "snapshot"));

    if (hd_body_name(body, known, &name, err) < 0)
        return -1;
    if (!snap || !hd_name_ok(snap))
        return hd_fail(err, 400, "snapshot", "snapshot must be a snapshot name");
    pthread_mutex_lock(&st->mu);
    struct hd_template *t = warm_new(st, name, snap, err);
    if (!t || hd_template_insert(st, t, out, err) < 0) {
        pthread_mutex_unlock(&st->mu);
        hd_template_free(t);
        return -1;
    }
    pthread_mutex_unlock(&st->mu);
    hd_event(&st->ev, "template.added", name, json_pack("{ss}", "snapshot", snap));
    return 0;
}
