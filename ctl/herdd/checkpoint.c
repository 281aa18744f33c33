/*
 * Range checkpoints (docs/snapshot.md "Range checkpoints", docs/herdd.md):
 * one snapshot of every guest of a range, taken with all of them paused, so
 * the range is caught at one instant (no guest runs on while another is
 * being saved); `range reset --to` restores each guest to its own.
 *
 * A checkpoint is nothing but its snapshots: snapshot.c's records, named
 * RANGE.CHECKPOINT.N (range and checkpoint names are [a-z0-9-], so no two
 * checkpoints share a name) and tagged {"checkpoint": {"range", "name"}};
 * the snapshot's "vm" is the guest it restores. Listing groups them;
 * removing removes them all; `range down` removes the range's. ranges.c
 * calls in here (after its own check that no `up` of the range runs).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/range_spec.h"
#include "herdd.h"

/* The snapshot of guest number i (from 1) in checkpoint cp of range. */
static void cp_snap_name(const char *range, const char *cp, size_t i, char out[HD_NAME_MAX + 1])
{
    snprintf(out, HD_NAME_MAX + 1, "%s.%s.%zu", range, cp, i);
}

/* Does snapshot record d belong to checkpoint cp (NULL: any) of range? */
static bool in_checkpoint(json_t *d, const char *range, const char *cp)
{
    json_t *t = json_object_get(d, "checkpoint");
    const char *rn = json_string_value(json_object_get(t, "range"));
    const char *cn = json_string_value(json_object_get(t, "name"));
    return rn && cn && !strcmp(rn, range) && (!cp || !strcmp(cn, cp));
}

/* Store lock held: checkpoint cp's snapshot records (a new array; empty
 * when there is no such checkpoint). */
static json_t *cp_snapshots(struct hd_store *st, const char *range, const char *cp)
{
    json_t *all = hd_db_snapshots(st, NULL), *mine = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
        if (in_checkpoint(d, range, cp))
            json_array_append(mine, d);
    json_decref(all);
    return mine;
}

/* The range exists (store lock held). Whether an `up` of it runs is
 * ranges.c's to check before it calls in here. */
static int range_exists(struct hd_store *st, const char *range, struct hd_err *err)
{
    json_t *r = hd_db_ranges(st, range);
    if (!r)
        return hd_fail(err, 404, "name", "no range '%s'", range);
    json_decref(r);
    return 0;
}

/* Body {"name"}: a new checkpoint's name. */
static int cp_body(json_t *body, const char **name, struct hd_err *err)
{
    static const char *const known[] = {"name", NULL};
    if (!json_is_object(body))
        return hd_fail(err, 400, "", "the body must be a JSON object");
    if (hd_check_fields(body, known, err) < 0)
        return -1;
    const char *n = json_string_value(json_object_get(body, "name"));
    if (!n || strlen(n) != json_string_length(json_object_get(body, "name")) ||
        range_name_check(n, RANGE_NAME_MAX) != 0)
        return hd_fail(err, 400, "name", "name must be 1-%d of [a-z0-9-], starting and ending "
                       "with a letter or digit", RANGE_NAME_MAX);
    *name = n;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The names in a (consumed), in strcmp order: RANGE.CP.N is the Nth. */
static json_t *sorted(json_t *a)
{
    size_t n = json_array_size(a);
    json_t **v = malloc(n * sizeof(*v)), *out = json_array();
    if (!v) {
        json_decref(out);
        return a;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(a, i);
    qsort(v, n, sizeof(*v), name_cmp);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(a);
    return out;
}

/* Every guest of the range runs or is paused and can be snapshotted; the
 * names in *guests (store lock held). */
static int cp_guests(struct hd_store *st, const char *range, json_t **guests,
                     struct hd_err *err)
{
    json_t *a = json_array();
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next) {
        if (strcmp(vm->range, range))
            continue;
        int rc = 0;
        if (vm->busy || !strcmp(vm->state, "creating"))
            rc = hd_fail(err, 409, "state", "guest '%s' is busy with another request",
                         vm->name);
        else if (strcmp(vm->state, "running") && strcmp(vm->state, "paused"))
            rc = hd_fail(err, 409, "state", "guest '%s' is %s: a checkpoint is taken of a "
                         "range whose guests all run (or are paused)", vm->name, vm->state);
        if (rc < 0) {
            json_decref(a);
            return -1;
        }
        json_array_append_new(a, json_string(vm->name));
    }
    if (!json_array_size(a)) {
        json_decref(a);
        return hd_fail(err, 409, "name", "range '%s' has no guests", range);
    }
    *guests = sorted(a);
    return 0;
}

/* Checks for a new checkpoint (store lock taken here). */
static int cp_admit(struct hd_store *st, const char *range, const char *cp, json_t **guests,
                    struct hd_err *err)
{
    pthread_mutex_lock(&st->mu);
    int rc = range_exists(st, range, err);
    if (rc == 0) {
        json_t *old = cp_snapshots(st, range, cp);
        if (json_array_size(old))
            rc = hd_fail(err, 409, "name", "range '%s' has a checkpoint '%s' already", range,
                         cp);
        json_decref(old);
    }
    if (rc == 0)
        rc = cp_guests(st, range, guests, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* The guests of the list that run now: the ones the checkpoint pauses. */
static json_t *running_of(struct hd_store *st, json_t *guests)
{
    json_t *runs = json_array();
    size_t i;
    json_t *v;
    pthread_mutex_lock(&st->mu);
    json_array_foreach(guests, i, v) {
        struct hd_vm *vm = hd_vm_find(st, json_string_value(v));
        if (vm && !strcmp(vm->state, "running"))
            json_array_append(runs, v);
    }
    pthread_mutex_unlock(&st->mu);
    return runs;
}

/* The checkpoint being taken, in the database while it runs: if herdd dies
 * meanwhile, the next start undoes it (hd_checkpoint_recover). */
static void mark_key(const char *range, char key[HD_NAME_MAX + 16])
{
    snprintf(key, HD_NAME_MAX + 16, "checkpoint:%s", range);
}

static void mark(struct hd_store *st, const char *range, const char *cp, json_t *runs, bool on)
{
    char key[HD_NAME_MAX + 16];
    mark_key(range, key);
    json_t *doc = on ? json_pack("{ss ss sO}", "range", range, "checkpoint", cp, "paused", runs)
                     : NULL;
    pthread_mutex_lock(&st->mu);
    if (on ? hd_db_meta_put(st, key, doc) < 0 : hd_db_meta_delete(st, key) < 0)
        fprintf(stderr, "herdd: range %s: checkpoint %s: cannot %s its mark in the database\n",
                range, cp, on ? "record" : "clear");
    pthread_mutex_unlock(&st->mu);
    json_decref(doc);
}

/* Pauses each guest of runs; *paused: the names this paused (resumed by
 * resume_all). */
static int pause_all(struct hd_guests *gs, json_t *runs, json_t *paused, struct hd_err *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(runs, i, v) {
        const char *name = json_string_value(v);
        json_t *out = NULL;
        if (hd_vm_action(gs, name, "pause", NULL, &out, err) < 0)
            return -1;
        json_decref(out);
        json_array_append(paused, v);
    }
    return 0;
}

/* Resumes the guests this paused; a failure goes into note (the last one). */
static void resume_all(struct hd_guests *gs, json_t *paused, char *note, size_t size)
{
    size_t i;
    json_t *v;
    json_array_foreach(paused, i, v) {
        struct hd_err e = {0};
        json_t *out = NULL;
        if (hd_vm_action(gs, json_string_value(v), "resume", NULL, &out, &e) < 0)
            snprintf(note, size, "could not resume %s: %s", json_string_value(v), e.msg);
        json_decref(out);
    }
}

/* Removes the snapshots named in made (a failed checkpoint's). */
static void drop_made(struct hd_res *res, json_t *made)
{
    size_t i;
    json_t *v;
    json_array_foreach(made, i, v) {
        struct hd_err e = {0};
        hd_snapshot_rm(res, json_string_value(v), true, &e);
    }
}

/* The snapshots of one checkpoint, taken by range_parallel threads at once
 * (each guest's is independent; what takes the time is writing and syncing
 * the files, which overlap). */
struct cp_work {
    struct hd_guests *gs;
    const char *range, *cp;
    json_t *guests;            /* names, in order: guest i is RANGE.CP.(i+1) */
    pthread_mutex_t mu;
    size_t next;
    bool failed;               /* stop taking more */
    json_t *made;              /* the snapshots made */
    json_int_t bytes;          /* their files' allocated bytes */
    struct hd_err err;         /* the first failure */
};

static void *cp_worker(void *arg)
{
    struct cp_work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        size_t i = w->next++;
        bool stop = w->failed || i >= json_array_size(w->guests);
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        char snap[HD_NAME_MAX + 1];
        struct hd_err e = {0};
        cp_snap_name(w->range, w->cp, i + 1, snap);
        json_t *body = json_pack("{ss}", "name", snap), *doc = NULL;
        struct hd_cp_tag tag = {w->cp, (unsigned)json_array_size(w->guests)};
        int rc = hd_vm_snapshot(w->gs, json_string_value(json_array_get(w->guests, i)), body,
                                &tag, &doc, &e);
        json_decref(body);
        pthread_mutex_lock(&w->mu);
        if (rc == 0) {
            json_array_append_new(w->made, json_string(snap));
            w->bytes += json_integer_value(json_object_get(json_object_get(doc, "file"),
                                                           "allocated"));
        } else if (!w->failed) {
            w->failed = true;
            w->err = e;
        }
        pthread_mutex_unlock(&w->mu);
        json_decref(doc);
    }
    return NULL;
}

/* Snapshots every guest (all paused): the snapshots' names into made, their
 * files' allocated bytes into *bytes; on a failure err is the first. */
static int snapshot_all(struct hd_guests *gs, const char *range, const char *cp, json_t *guests,
                        json_t *made, json_int_t *bytes, struct hd_err *err)
{
    struct cp_work w = {.gs = gs, .range = range, .cp = cp, .guests = guests, .made = made};
    pthread_t th[64];
    size_t np = gs->cfg->range_parallel, started = 0;
    if (np > json_array_size(guests))
        np = json_array_size(guests);
    if (np > sizeof(th) / sizeof(th[0]))
        np = sizeof(th) / sizeof(th[0]);
    pthread_mutex_init(&w.mu, NULL);
    for (size_t i = 0; i < np; i++)
        if (pthread_create(&th[i], NULL, cp_worker, &w) == 0)
            started++;
    if (!started)
        cp_worker(&w);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&w.mu);
    *bytes = w.bytes;
    if (w.failed) {
        *err = w.err;
        return -1;
    }
    return 0;
}

int hd_checkpoint_take(struct hd_guests *gs, const char *range, json_t *body, json_t **out,
                       struct hd_err *err)
{
    const char *cp = NULL;
    json_t *guests = NULL;
    char note[600] = "";
    json_int_t bytes = 0;

    if (cp_body(body, &cp, err) < 0 || cp_admit(gs->st, range, cp, &guests, err) < 0)
        return -1;
    json_t *paused = json_array(), *made = json_array(), *runs = running_of(gs->st, guests);
    int64_t t0 = hd_mono_ns();
    mark(gs->st, range, cp, runs, true);
    int rc = pause_all(gs, runs, paused, err);
    if (rc == 0)
        rc = snapshot_all(gs, range, cp, guests, made, &bytes, err);
    if (rc < 0)
        drop_made(gs->res, made);
    resume_all(gs, paused, note, sizeof(note));
    mark(gs->st, range, cp, NULL, false);
    json_decref(runs);
    int64_t dt = hd_mono_ns() - t0;
    if (rc == 0) {
        *out = json_pack("{ss ss sI sO sI sI}", "range", range, "name", cp, "guests",
                         (json_int_t)json_array_size(guests), "snapshots", made, "paused_us",
                         (json_int_t)(dt / 1000), "allocated", bytes);
        if (note[0])
            json_object_set_new(*out, "note", json_string(note));
        json_t *ev = json_deep_copy(*out);
        json_object_del(ev, "name"); /* the event's name is the range's */
        json_object_set_new(ev, "checkpoint", json_string(cp));
        hd_event(&gs->st->ev, "range.checkpoint.created", range, ev);
    }
    json_decref(guests);
    json_decref(paused);
    json_decref(made);
    return rc;
}

/* One checkpoint's summary from its snapshot records (sorted by name):
 * complete when it has a snapshot of each of the guests it was taken of
 * (a herdd stopped while taking it leaves fewer). */
static json_t *cp_json(const char *range, const char *cp, json_t *snaps)
{
    json_t *vms = json_object();
    json_int_t created = 0, bytes = 0, of = 0;
    size_t i;
    json_t *d;
    json_array_foreach(snaps, i, d) {
        const char *vm = json_string_value(json_object_get(d, "vm"));
        const char *sn = json_string_value(json_object_get(d, "name"));
        if (vm && sn)
            json_object_set_new(vms, vm, json_string(sn));
        json_int_t c = json_integer_value(json_object_get(d, "created"));
        created = c > created ? c : created;
        bytes += json_integer_value(json_object_get(json_object_get(d, "file"), "allocated"));
        of = json_integer_value(json_object_get(json_object_get(d, "checkpoint"), "guests"));
    }
    json_int_t n = (json_int_t)json_array_size(snaps);
    return json_pack("{ss ss sI sI sb sI so}", "range", range, "name", cp, "created", created,
                     "guests", n, "complete", of == n, "allocated", bytes, "vms", vms);
}

json_t *hd_checkpoint_list(struct hd_guests *gs, const char *range, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *r = hd_db_ranges(st, range);
    if (!r) {
        pthread_mutex_unlock(&st->mu);
        hd_fail(err, 404, "name", "no range '%s'", range);
        return NULL;
    }
    json_decref(r);
    json_t *snaps = cp_snapshots(st, range, NULL);
    pthread_mutex_unlock(&st->mu);
    json_t *names = json_object(), *list = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(snaps, i, d) {
        const char *cn = json_string_value(
            json_object_get(json_object_get(d, "checkpoint"), "name"));
        if (!cn)
            continue;
        json_t *g = json_object_get(names, cn);
        if (!g)
            json_object_set_new(names, cn, g = json_array());
        json_array_append(g, d);
    }
    const char *cn;
    json_object_foreach(names, cn, d) json_array_append_new(list, cp_json(range, cn, d));
    json_decref(names);
    json_decref(snaps);
    return list;
}

int hd_checkpoint_rm(struct hd_guests *gs, const char *range, const char *cp, struct hd_err *err)
{
    struct hd_store *st = gs->st;
    pthread_mutex_lock(&st->mu);
    int rc = range_exists(st, range, err);
    json_t *snaps = rc == 0 ? cp_snapshots(st, range, cp) : NULL;
    pthread_mutex_unlock(&st->mu);
    if (rc < 0)
        return -1;
    if (!json_array_size(snaps)) {
        json_decref(snaps);
        return hd_fail(err, 404, "checkpoint", "range '%s' has no checkpoint '%s'", range, cp);
    }
    size_t i;
    json_t *d;
    long removed = 0;
    json_array_foreach(snaps, i, d) {
        if (hd_snapshot_rm(gs->res, json_string_value(json_object_get(d, "name")), true,
                           err) == 0)
            removed++;
        else if (err->status != 404)
            break;
    }
    bool all = removed == (long)json_array_size(snaps);
    json_decref(snaps);
    if (!all)
        return err->msg[0] ? -1 : hd_fail(err, 500, "", "checkpoint '%s' not removed", cp);
    hd_event(&st->ev, "range.checkpoint.removed", range,
             json_pack("{ss ss}", "range", range, "checkpoint", cp));
    return 0;
}

void hd_checkpoint_drop_all(struct hd_guests *gs, const char *range)
{
    struct hd_store *st = gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *snaps = cp_snapshots(st, range, NULL);
    pthread_mutex_unlock(&st->mu);
    size_t i;
    json_t *d;
    json_array_foreach(snaps, i, d) {
        struct hd_err e = {0};
        const char *sn = json_string_value(json_object_get(d, "name"));
        if (sn && hd_snapshot_rm(gs->res, sn, true, &e) < 0 && e.status != 404)
            fprintf(stderr, "herdd: range %s: snapshot %s kept: %s\n", range, sn, e.msg);
    }
    json_decref(snaps);
}

json_t *hd_checkpoint_map(struct hd_store *st, const char *range, const char *cp,
                                struct hd_err *err)
{
    json_t *snaps = cp_snapshots(st, range, cp);
    if (!json_array_size(snaps)) {
        json_decref(snaps);
        hd_fail(err, 404, "to", "range '%s' has no checkpoint '%s'", range, cp);
        return NULL;
    }
    json_t *c = cp_json(range, cp, snaps);
    json_t *map = NULL;
    if (json_is_true(json_object_get(c, "complete")))
        map = json_incref(json_object_get(c, "vms"));
    else
        hd_fail(err, 409, "to", "checkpoint '%s' of range '%s' is incomplete (%zu snapshots: "
                "herdd stopped while taking it): remove it", cp, range, json_array_size(snaps));
    json_decref(c);
    json_decref(snaps);
    return map;
}

/* One mark left by a herdd that died while taking a checkpoint: the
 * checkpoint is all or none, so its snapshots go; the guests it paused and
 * that are still paused run again. */
static void recover_one(struct hd_guests *gs, const char *key, json_t *m)
{
    struct hd_store *st = gs->st;
    const char *range = json_string_value(json_object_get(m, "range"));
    const char *cp = json_string_value(json_object_get(m, "checkpoint"));
    json_t *paused = json_object_get(m, "paused");
    if (!range || !cp || !json_is_array(paused)) {
        fprintf(stderr, "herdd: %s: not a checkpoint mark; removed\n", key);
        return;
    }
    pthread_mutex_lock(&st->mu);
    json_t *snaps = cp_snapshots(st, range, cp);
    pthread_mutex_unlock(&st->mu);
    json_t *removed = json_array(), *resumed = json_array(), *d;
    size_t i;
    json_array_foreach(snaps, i, d) {
        struct hd_err e = {0};
        const char *sn = json_string_value(json_object_get(d, "name"));
        if (sn && hd_snapshot_rm(gs->res, sn, true, &e) == 0)
            json_array_append_new(removed, json_string(sn));
        else if (sn)
            fprintf(stderr, "herdd: range %s: snapshot %s of the cut checkpoint %s kept: %s\n",
                    range, sn, cp, e.msg);
    }
    json_array_foreach(paused, i, d) {
        const char *name = json_string_value(d);
        pthread_mutex_lock(&st->mu);
        struct hd_vm *vm = name ? hd_vm_find(st, name) : NULL;
        bool still = vm && !strcmp(vm->state, "paused");
        pthread_mutex_unlock(&st->mu);
        struct hd_err e = {0};
        json_t *out = NULL;
        if (still && hd_vm_action(gs, name, "resume", NULL, &out, &e) == 0)
            json_array_append_new(resumed, json_string(name));
        else if (still)
            fprintf(stderr, "herdd: range %s: %s stays paused: %s\n", range, name, e.msg);
        json_decref(out);
    }
    fprintf(stderr, "herdd: range %s: checkpoint %s was cut short by a herdd stop: %zu "
            "snapshot(s) removed, %zu guest(s) resumed\n", range, cp, json_array_size(removed),
            json_array_size(resumed));
    hd_event(&st->ev, "range.checkpoint.aborted", range,
             json_pack("{ss ss so so}", "range", range, "checkpoint", cp, "removed", removed,
                       "resumed", resumed));
    json_decref(snaps);
}

void hd_checkpoint_recover(struct hd_guests *gs)
{
    struct hd_store *st = gs->st;
    pthread_mutex_lock(&st->mu);
    json_t *marks = hd_db_meta_prefix(st, "checkpoint:");
    pthread_mutex_unlock(&st->mu);
    const char *key;
    json_t *m;
    json_object_foreach(marks, key, m) {
        recover_one(gs, key, m);
        pthread_mutex_lock(&st->mu);
        hd_db_meta_delete(st, key);
        pthread_mutex_unlock(&st->mu);
    }
    json_decref(marks);
}
