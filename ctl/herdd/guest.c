/* Guest records (layer 1, docs/herdd.md "Layers"): the store that holds
 * them (hd_store_init), finding a guest, the paths of its files, the record
 * as JSON (what the state database stores and the API shows: one document,
 * so the two cannot drift apart), its exit record's cgroup counters, and
 * the tail of a text file. Nothing here
 * calls a layer above: resources, guests and the API build on it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "herdd.h"

void hd_store_init(struct hd_store *st, const struct hd_config *cfg)
{
    memset(st, 0, sizeof(*st));
    st->cfg = cfg;
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->changed, &ca);
    pthread_condattr_destroy(&ca);
    hd_events_init(&st->ev);
    pthread_mutex_init(&st->audit.mu, NULL);
}

struct hd_vm *hd_vm_find(struct hd_store *st, const char *name)
{
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (!strcmp(vm->name, name))
            return vm;
    return NULL;
}

void hd_vm_instance_id(const struct hd_vm *vm, char *out, size_t size)
{
    snprintf(out, size, "%s.%lld.%u", vm->name, (long long)vm->created, vm->seed_gen);
}

void hd_vm_path(const struct hd_vm *vm, const char *file, char *out, size_t size)
{
    snprintf(out, size, "%s/vms/%s%s%s", vm->state_dir, vm->name, file ? "/" : "",
             file ? file : "");
}

void hd_vm_control_path(const struct hd_vm *vm, char *out, size_t size)
{
    snprintf(out, size, "%s/run/%lld/ctl.sock", vm->state_dir, (long long)vm->id);
}

json_t *hd_vm_json(const struct hd_vm *vm, bool full)
{
    json_t *o = json_pack("{ss ss ss si sI ss sb sI sI}", "name", vm->name, "template",
                          vm->tmpl, "state", vm->state, "cpus", (int)vm->cpus, "mem",
                          (json_int_t)vm->mem, "restart", vm->restart[0] ? vm->restart : "no",
                          "ready", vm->ready, "pid", (json_int_t)vm->pid, "created",
                          (json_int_t)vm->created);
    json_object_set_new(o, "range", vm->range[0] ? json_string(vm->range) : json_null());
    if (vm->snapshot[0]) {
        json_object_set_new(o, "snapshot", json_string(vm->snapshot));
        json_object_set_new(o, "restore_pending", json_boolean(vm->restore_pending));
    }
    json_object_set_new(o, "origin", vm->origin[0] ? json_string(vm->origin) : json_null());
    json_t *nics = json_array();
    for (unsigned i = 0; i < vm->n_nics; i++) {
        const struct hd_nic *n = &vm->nics[i];
        json_t *item = json_pack("{ss ss ss ss}", "role", n->role, "bridge", n->bridge, "tap",
                                 n->tap, "mac", n->mac);
        /* the addressing fields only where set: records without stay as they were */
        const char *opt[][2] = {{"segment", n->segment}, {"ipv4", n->ipv4},
                                {"gateway", n->gateway}, {"ipv6", n->ipv6}};
        for (size_t k = 0; k < sizeof(opt) / sizeof(opt[0]); k++)
            if (opt[k][1][0])
                json_object_set_new(item, opt[k][0], json_string(opt[k][1]));
        json_array_append_new(nics, item);
    }
    if (vm->cloud_init) {
        char iid[HD_NAME_MAX + 48];
        hd_vm_instance_id(vm, iid, sizeof(iid));
        json_object_set(o, "cloud_init", vm->cloud_init);
        json_object_set_new(o, "seed", json_pack("{ss si}", "instance_id", iid, "generation",
                                                 (int)vm->seed_gen));
    }
    if (vm->resources)
        json_object_set_new(o, "resources", json_string(vm->resources));
    json_object_set_new(o, "nics", nics);
    json_object_set_new(o, "started", vm->started ? json_integer(vm->started) : json_null());
    json_object_set_new(o, "ready_at", vm->ready_at ? json_integer(vm->ready_at) : json_null());
    if (vm->started && vm->ready_at)
        json_object_set_new(o, "boot_ms", json_integer(vm->ready_at - vm->started));
    json_object_set_new(o, "restarts", json_integer(vm->restarts));
    json_object_set_new(o, "uid", vm->uid ? json_integer(vm->uid) : json_null());
    if (vm->escape[0])
        json_object_set_new(o, "escape_attempt", json_pack("{ss sI}", "line", vm->escape,
                                                           "time", (json_int_t)vm->escape_at));
    if (vm->cgroup[0])
        json_object_set_new(o, "cgroup", json_string(vm->cgroup));
    if (vm->note[0])
        json_object_set_new(o, "note", json_string(vm->note));
    if (vm->has_exit) {
        json_t *ex = json_object();
        json_object_set_new(ex, "code", vm->exit_code >= 0 ? json_integer(vm->exit_code)
                                                           : json_null());
        if (vm->exit_signal)
            json_object_set_new(ex, "signal", json_integer(vm->exit_signal));
        json_object_set_new(ex, "time", json_integer(vm->exited));
        hd_cgroup_events_json(vm, ex); /* limit, cgroup_events */
        if (vm->last_console)
            json_object_set(ex, "last_console", vm->last_console);
        json_object_set_new(o, "exit", ex);
    }
    if (full) {
        char p[4096];
        hd_vm_path(vm, "disk.qcow2", p, sizeof(p));
        json_object_set_new(o, "disk", json_string(p));
        hd_vm_path(vm, "console.log", p, sizeof(p));
        json_object_set_new(o, "console", json_string(p));
        hd_vm_control_path(vm, p, sizeof(p));
        json_object_set_new(o, "control", json_string(p));
    }
    return o;
}

json_t *hd_tail_lines(const char *path, long lines)
{
    json_t *a = json_array();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return a;
    struct stat st;
    fstat(fd, &st);
    size_t want = (size_t)(lines > 0 ? lines : 1) * 256;
    if (want > (1u << 20))
        want = 1u << 20;
    off_t off = st.st_size > (off_t)want ? st.st_size - (off_t)want : 0;
    size_t len = (size_t)(st.st_size - off);
    char *buf = malloc(len + 1);
    ssize_t n = pread(fd, buf, len, off);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = 0;
    /* console bytes may be anything: keep printable ASCII for JSON */
    for (ssize_t k = 0; k < n; k++) {
        unsigned char ch = (unsigned char)buf[k];
        if (ch == 0 || ch >= 0x80 || (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r'))
            buf[k] = '?';
    }
    /* split, skipping a cut first line */
    char *p = buf;
    if (off > 0) {
        char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : buf + n;
    }
    json_t *all = json_array();
    while (*p) {
        char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l && p[l - 1] == '\r')
            l--;
        json_array_append_new(all, json_stringn(p, l));
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(buf);
    size_t total = json_array_size(all);
    size_t from = lines > 0 && total > (size_t)lines ? total - (size_t)lines : 0;
    for (size_t i = from; i < total; i++)
        json_array_append(a, json_array_get(all, i));
    json_decref(all);
    return a;
}

void hd_cgroup_events_json(const struct hd_vm *vm, json_t *exit)
{
    if (vm->limit[0])
        json_object_set_new(exit, "limit", json_string(vm->limit));
    if (vm->has_cg_events)
        json_object_set_new(
            exit, "cgroup_events",
            json_pack("{s{sI sI sI} s{sI}}", "memory.events", "max", (json_int_t)vm->ev_mem_max,
                      "oom", (json_int_t)vm->ev_oom, "oom_kill", (json_int_t)vm->ev_oom_kill,
                      "pids.events", "max", (json_int_t)vm->ev_pids_max));
}

static uint64_t events_get(json_t *ev, const char *file, const char *key)
{
    json_t *v = json_object_get(json_object_get(ev, file), key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

void hd_cgroup_events_load(struct hd_vm *vm, json_t *exit)
{
    const char *l = json_string_value(json_object_get(exit, "limit"));
    json_t *ev = json_object_get(exit, "cgroup_events");

    snprintf(vm->limit, sizeof(vm->limit), "%s",
             l && (!strcmp(l, "memory.max") || !strcmp(l, "pids.max")) ? l : "");
    vm->has_cg_events = json_is_object(ev);
    vm->ev_mem_max = events_get(ev, "memory.events", "max");
    vm->ev_oom = events_get(ev, "memory.events", "oom");
    vm->ev_oom_kill = events_get(ev, "memory.events", "oom_kill");
    vm->ev_pids_max = events_get(ev, "pids.events", "max");
}
