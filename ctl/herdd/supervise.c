/* Supervision: one thread waits on every guest's pidfd (epoll), records how
 * a guest ended (exit status for guests this herdd spawned, the last lines
 * of its console), applies its restart policy, and watches the consoles of
 * guests that are not ready yet for their ready line. It also checks the
 * state dir's free space. At start, hd_adopt_all() re-attaches guests that
 * outlived a previous herdd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "herdd.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int hd_super_init(struct hd_super *sv, struct hd_guests *gs)
{
    sv->gs = gs;
    sv->running = false;
    sv->epfd = epoll_create1(EPOLL_CLOEXEC);
    return sv->epfd < 0 ? -1 : 0;
}

/* An epoll event's data: the guest's id, with CONSOLE_EVENT set for its
 * console pipe (else its pidfd). */
#define CONSOLE_EVENT (1ULL << 63)
/* Every guest's console is drained and every guest not yet ready looked at
 * this often even without an event (one whose pipe left the epoll set). */
#define SWEEP_MS 1000

int hd_supervise_add(void *arg, struct hd_vm *vm)
{
    struct hd_super *sv = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)vm->id};
    if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, vm->pidfd, &ev) < 0)
        return -1;
    /* its console as it writes (closing the pipe takes it out again); the
     * sweep still drains it when this fails */
    struct epoll_event cev = {.events = EPOLLIN, .data.u64 = (uint64_t)vm->id | CONSOLE_EVENT};
    if (vm->con_open)
        epoll_ctl(sv->epfd, EPOLL_CTL_ADD, vm->con_rfd, &cev);
    return 0;
}

void hd_supervise_del(struct hd_super *sv, struct hd_vm *vm)
{
    if (vm->pidfd >= 0) {
        epoll_ctl(sv->epfd, EPOLL_CTL_DEL, vm->pidfd, NULL);
        close(vm->pidfd);
    }
    vm->pidfd = -1;
}

static struct hd_vm *vm_by_id(struct hd_store *st, int64_t id)
{
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (vm->id == id)
            return vm;
    return NULL;
}

static int vm_start_again(struct hd_guests *gs, const char *name)
{
    json_t *out = NULL;
    struct hd_err err = {0};
    /* hd_vm_action takes the store lock itself: called from the supervisor
     * without it */
    int rc = hd_vm_action(gs, name, "start", NULL, &out, &err);
    json_decref(out);
    if (rc < 0) {
        fprintf(stderr, "herdd: restart of %s failed: %s\n", name, err.msg);
        /* no request carries this start: the audit log must still show it
         * (a refused chain means a compromised guest) */
        hd_audit(gs->st, 0, 0, "RESTART", "vm.start", name, err.status ? err.status : 500, err.msg);
    }
    return rc;
}

/* How herd-vmm ended: its exit status or signal when it was our child
 * (unknown otherwise). Before its pidfd is closed. */
static void exit_status_read(struct hd_vm *vm)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    vm->has_exit = true;
    vm->exit_code = -1;
    vm->exit_signal = 0;
    if (vm->child && waitid((idtype_t)P_PIDFD, (id_t)vm->pidfd, &si, WEXITED | WNOHANG) == 0 &&
        si.si_pid) {
        if (si.si_code == CLD_EXITED)
            vm->exit_code = si.si_status;
        else
            vm->exit_signal = si.si_status;
    }
}

/* The state note of an exit: its status, or the escape attempt or the
 * cgroup limit that ended it. */
static void exit_note(const struct hd_vm *vm, bool escape, bool limit, char *note, size_t size)
{
    if (vm->exit_code >= 0)
        snprintf(note, size, "herd-vmm exited with status %d", vm->exit_code);
    else if (vm->exit_signal)
        snprintf(note, size, "herd-vmm killed by signal %d", vm->exit_signal);
    else
        snprintf(note, size, "herd-vmm ended (status unknown: not our child)");
    if (escape)
        snprintf(note, size, "possible escape attempt: herd-vmm killed by its seccomp "
                 "filter; not restarted (see vm.escape_attempt)");
    else if (limit)
        snprintf(note, size, "herd-vmm hit its cgroup's %s (%s); not restarted (see "
                 "vm.limit)", vm->limit, !strcmp(vm->limit, "pids.max") ? "a thread refused"
                 : vm->ev_oom_kill ? "OOM kill" : "allocation refused");
}

/* Announces the exit (vm.exited). */
static void exit_event(struct hd_store *st, const struct hd_vm *vm)
{
    json_t *d = json_pack("{sO}", "last_console", vm->last_console);
    if (vm->exit_code >= 0)
        json_object_set_new(d, "code", json_integer(vm->exit_code));
    if (vm->exit_signal)
        json_object_set_new(d, "signal", json_integer(vm->exit_signal));
    hd_cgroup_events_json(vm, d);
    if (vm->range[0])
        json_object_set_new(d, "range", json_string(vm->range));
    hd_event(&st->ev, "vm.exited", vm->name, d);
}

/* Store lock held. Returns true when the guest should be restarted. */
static bool record_exit(struct hd_super *sv, struct hd_vm *vm, bool *escape_out, bool *limit_out)
{
    struct hd_store *st = sv->gs->st;
    char p[4096], note[200];

    exit_status_read(vm);
    hd_supervise_del(sv, vm);
    vm->exited = hd_now_ms();
    hd_console_finish(sv->gs->cfg, vm);
    hd_vm_path(vm, "console.log", p, sizeof(p));
    json_decref(vm->last_console);
    vm->last_console = hd_tail_lines(p, 10);
    vm->pid = 0;
    vm->ready = false;
    hd_run_dir_remove(vm);
    bool limit = hd_cgroup_limits(st, vm); /* before the group goes */
    *limit_out = limit;
    hd_cgroup_release(sv->gs->res, vm);
    bool escape = hd_escape_check(st, vm);
    *escape_out = escape;
    exit_note(vm, escape, limit, note, sizeof(note));
    exit_event(st, vm);
    if (vm->stop_requested) {
        vm->stop_requested = false;
        hd_vm_set_state(st, vm, "stopped", note);
        return false;
    }
    hd_vm_set_state(st, vm, "exited", note);
    if (escape || limit)
        return false;
    bool failed = vm->exit_code != 0;
    if ((!strcmp(vm->restart, "always") || (!strcmp(vm->restart, "on-failure") && failed)) &&
        vm->restarts < 10 && !st->stopping) {
        vm->restarts++;
        return true;
    }
    return false;
}

static void mark_ready(struct hd_store *st, struct hd_vm *vm)
{
    vm->ready = true;
    vm->ready_at = hd_now_ms();
    int64_t boot_us = (hd_mono_ns() - vm->spawn_ns) / 1000;
    json_t *d = json_pack("{sI}", "boot_us", (json_int_t)(vm->spawn_ns ? boot_us : 0));
    if (vm->range[0])
        json_object_set_new(d, "range", json_string(vm->range));
    if (vm->snapshot[0])
        json_object_set_new(d, "snapshot", json_string(vm->snapshot));
    hd_db_save_vm(st, vm);
    hd_event(&st->ev, "vm.ready", vm->name, d);
    pthread_cond_broadcast(&st->changed);
}

/* A guest restored from a snapshot of a ready guest does not print its
 * ready line again: it is ready once herd-vmm says it restored the machine
 * (its "restored from" line in vmm.log, after this start's offset). */
static bool restored(const struct hd_vm *vm)
{
    char path[4096], buf[8192];

    hd_vm_path(vm, "vmm.log", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, vm->vmmlog_off);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = '?';
    return strstr(buf, "restored from ") != NULL;
}

static void check_ready(struct hd_store *st, struct hd_vm *vm)
{
    if (vm->snap_ready && restored(vm)) {
        mark_ready(st, vm);
        return;
    }
    char path[4096];
    char buf[65536 + 128];
    struct hd_template *t = hd_template_find(st, vm->tmpl);
    const char *line = t && t->ready_line ? t->ready_line : HD_READY_LINE;

    (void)path;
    size_t carry = strlen(vm->console_carry);
    memcpy(buf, vm->console_carry, carry);
    uint64_t off = (uint64_t)vm->console_off;
    ssize_t n = hd_console_pread(vm, &off, buf + carry, 65536);
    if (n <= 0)
        return;
    vm->console_off = (off_t)(off + (uint64_t)n);
    size_t len = carry + (size_t)n;
    for (size_t i = 0; i < len; i++)
        if (!buf[i])
            buf[i] = '?';
    buf[len] = 0;
    if (strstr(buf, line)) {
        mark_ready(st, vm);
        vm->console_carry[0] = 0;
        return;
    }
    size_t keep = strlen(line) < sizeof(vm->console_carry) ? strlen(line) : sizeof(vm->console_carry) - 1;
    if (keep > len)
        keep = len;
    memcpy(vm->console_carry, buf + len - keep, keep);
    vm->console_carry[keep] = 0;
}

void hd_storage_check(struct hd_res *r)
{
    const struct hd_config *cfg = r->cfg;
    struct statvfs sv;
    if (statvfs(cfg->state_dir, &sv) < 0)
        return;
    uint64_t freeb = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
    bool alarm = freeb < cfg->storage_alarm;
    pthread_mutex_lock(&r->st->mu);
    bool was = r->storage_alarm;
    r->disk_free = freeb;
    r->disk_total = total;
    r->storage_alarm = alarm;
    pthread_mutex_unlock(&r->st->mu);
    if (alarm != was)
        hd_event(&r->st->ev, alarm ? "alarm.storage" : "alarm.storage.cleared", NULL,
                 json_pack("{sI sI sI}", "free", (json_int_t)freeb, "threshold",
                           (json_int_t)cfg->storage_alarm, "floor",
                           (json_int_t)cfg->storage_floor));
}

/* What one round of the supervisor found, by guest id. */
struct sv_round {
    int64_t restart[64], escape[64], limit[64];
    int nrestart, nescape, nlimit;
};

/* A guest's console pipe became readable: drained, and its ready line
 * looked for. A pipe whose writer is gone (end of file, nothing read)
 * leaves the epoll set, so that it does not wake every round; the sweep
 * goes on draining it. */
static void console_event(struct hd_super *sv, struct hd_vm *vm)
{
    if (!vm->con_open)
        return;
    if (hd_console_drain(sv->gs->cfg, vm) < 0)
        epoll_ctl(sv->epfd, EPOLL_CTL_DEL, vm->con_rfd, NULL);
    if (vm->pidfd >= 0 && !vm->ready)
        check_ready(sv->gs->st, vm);
}

/* Store lock held: records the exits epoll reported (evs), drains the
 * consoles that have something to read (every console when sweep, each
 * SWEEP_MS) and looks for ready lines: of the guests whose console had
 * something, of every guest not ready when sweep, and each round of those
 * restored from a snapshot of a ready guest (vmm.log says when). */
static void round_locked(struct hd_super *sv, const struct epoll_event *evs, int n,
                         bool sweep, struct sv_round *rd)
{
    struct hd_store *st = sv->gs->st;
    for (int i = 0; i < n; i++) {
        struct hd_vm *vm = vm_by_id(st, (int64_t)(evs[i].data.u64 & ~CONSOLE_EVENT));
        bool escape = false, limit = false;
        if (evs[i].data.u64 & CONSOLE_EVENT) {
            if (vm)
                console_event(sv, vm);
            continue;
        }
        if (vm && vm->pidfd >= 0 && record_exit(sv, vm, &escape, &limit))
            rd->restart[rd->nrestart++] = vm->id;
        if (escape)
            rd->escape[rd->nescape++] = vm->id;
        if (limit)
            rd->limit[rd->nlimit++] = vm->id;
    }
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next) {
        if (sweep)
            hd_console_drain(sv->gs->cfg, vm);
        if (vm->pidfd >= 0 && !vm->ready && (sweep || vm->snap_ready))
            check_ready(st, vm);
    }
}

/* The round's escape attempts and limits hit, into the audit log (which
 * takes the store lock: called without it). */
static void round_audit(struct hd_store *st, const struct sv_round *rd)
{
    for (int i = 0; i < rd->nescape; i++) {
        char name[HD_NAME_MAX + 1] = "", line[sizeof(((struct hd_vm *)0)->escape)] = "";
        uid_t uid = 0;
        pthread_mutex_lock(&st->mu);
        struct hd_vm *vm = vm_by_id(st, rd->escape[i]);
        if (vm) {
            snprintf(name, sizeof(name), "%s", vm->name);
            snprintf(line, sizeof(line), "%s", vm->escape);
            uid = vm->uid;
        }
        pthread_mutex_unlock(&st->mu);
        if (name[0])
            hd_escape_audit(st, uid, name, line);
    }
    for (int i = 0; i < rd->nlimit; i++) {
        char name[HD_NAME_MAX + 1] = "", limit[sizeof(((struct hd_vm *)0)->limit)] = "";
        uid_t uid = 0;
        pthread_mutex_lock(&st->mu);
        struct hd_vm *vm = vm_by_id(st, rd->limit[i]);
        if (vm) {
            snprintf(name, sizeof(name), "%s", vm->name);
            snprintf(limit, sizeof(limit), "%s", vm->limit);
            uid = vm->uid;
        }
        pthread_mutex_unlock(&st->mu);
        if (name[0] && limit[0])
            hd_limit_audit(st, uid, name, limit);
    }
}

/* The round's guests due for a restart, started again (without the store lock). */
static void round_restart(struct hd_guests *gs, const struct sv_round *rd)
{
    struct hd_store *st = gs->st;
    for (int i = 0; i < rd->nrestart; i++) {
        pthread_mutex_lock(&st->mu);
        struct hd_vm *vm = vm_by_id(st, rd->restart[i]);
        char name[HD_NAME_MAX + 1] = "";
        if (vm)
            snprintf(name, sizeof(name), "%s", vm->name);
        pthread_mutex_unlock(&st->mu);
        if (name[0]) {
            hd_event(&st->ev, "vm.restarting", name, NULL);
            vm_start_again(gs, name);
        }
    }
}

static void *supervise_main(void *arg)
{
    struct hd_super *sv = arg;
    struct hd_store *st = sv->gs->st;
    struct epoll_event evs[64];
    int64_t last_storage = 0, last_sweep = 0;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!st->stopping) {
        int n = epoll_wait(sv->epfd, evs, 64, 20);
        struct sv_round rd;
        rd.nrestart = rd.nescape = rd.nlimit = 0;
        int64_t now = hd_now_ms();
        bool sweep = now - last_sweep >= SWEEP_MS || now < last_sweep;
        if (sweep)
            last_sweep = now;
        pthread_mutex_lock(&st->mu);
        round_locked(sv, evs, n, sweep, &rd);
        pthread_mutex_unlock(&st->mu);
        round_audit(st, &rd);
        round_restart(sv->gs, &rd);
        if (hd_now_ms() - last_storage > 5000) {
            last_storage = hd_now_ms();
            hd_storage_check(sv->gs->res);
        }
        if (sweep)
            hd_resident_refresh(sv->gs->res);
    }
    return NULL;
}

int hd_supervise_start(struct hd_super *sv)
{
    if (pthread_create(&sv->thread, NULL, supervise_main, sv) != 0)
        return -1;
    sv->running = true;
    return 0;
}

void hd_supervise_stop(struct hd_super *sv)
{
    if (sv->running)
        pthread_join(sv->thread, NULL);
    sv->running = false;
}

/* ---- re-adoption ------------------------------------------------------------------ */

static bool cmdline_has(pid_t pid, const char *needle)
{
    char path[64], buf[16384];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* A herd-vmm whose command line names this guest's console pipe (or its
 * console file: started by a herdd before console pipes). */
static pid_t find_vmm(const struct hd_vm *vm)
{
    char console[4200], needle[4300], pipe_[4200], needle2[4300];
    hd_vm_path(vm, "console.log", console, sizeof(console));
    snprintf(needle, sizeof(needle), "file:%s", console);
    hd_vm_path(vm, "console.pipe", pipe_, sizeof(pipe_));
    snprintf(needle2, sizeof(needle2), "file:%s", pipe_);
    if (vm->pid > 0 && (cmdline_has(vm->pid, needle2) || cmdline_has(vm->pid, needle)))
        return vm->pid;
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (d && (e = readdir(d)) && !found) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        if (*end || p <= 0)
            continue;
        if (cmdline_has((pid_t)p, needle2) || cmdline_has((pid_t)p, needle))
            found = (pid_t)p;
    }
    if (d)
        closedir(d);
    return found;
}

/* A guest herdd was creating when it stopped: what the create left, its
 * record and its row go. */
static void discard_creating(struct hd_guests *gs, struct hd_vm *vm)
{
    struct hd_store *st = gs->st;
    fprintf(stderr, "herdd: %s was being created when herdd stopped: removed\n", vm->name);
    hd_vm_discard_partial(gs, vm);
    hd_db_delete_vm(st, vm);
    struct hd_vm **pp = &st->vms;
    while (*pp != vm)
        pp = &(*pp)->next;
    *pp = vm->next;
    hd_event(&st->ev, "vm.removed", vm->name,
             json_pack("{ss}", "note", "half-created when herdd stopped"));
    hd_vm_free(gs->cfg, vm);
}

/* Asks the guest's herd-vmm over its control socket (when herd-vmm has one
 * and the socket exists): its pid (0: no answer), and *state "paused" when
 * it says so. */
static pid_t vmm_status(struct hd_res *r, const struct hd_vm *vm, bool *has_sock,
                        const char **state)
{
    char why[256] = "", ctl[108];
    struct stat sst;
    hd_vm_control_path(vm, ctl, sizeof(ctl));
    *has_sock = stat(ctl, &sst) == 0;
    pid_t pid = 0;
    json_t *reply = r->vmm_has_control && *has_sock
                        ? hd_control(vm, "status", 1000, why, sizeof(why))
                        : NULL;
    if (reply) {
        json_t *p = json_object_get(reply, "pid");
        if (json_is_integer(p))
            pid = (pid_t)json_integer_value(p);
        const char *s = json_string_value(json_object_get(reply, "state"));
        if (s && !strcmp(s, "paused"))
            *state = "paused";
        json_decref(reply);
    }
    return pid;
}

/* Its herd-vmm (pid, pidfd fd) still runs: supervised again, in state. */
static void adopt_running(struct hd_super *sv, struct hd_vm *vm, pid_t pid, int fd,
                          const char *state)
{
    struct hd_res *r = sv->gs->res;
    struct hd_store *st = r->st;
    vm->pid = pid;
    vm->pidfd = fd;
    vm->child = false;
    vm->console_off = 0;
    vm->console_carry[0] = 0;
    vm->spawn_ns = 0;
    hd_console_adopt(vm);
    hd_cgroup_adopt(r, vm);
    hd_supervise_add(sv, vm);
    hd_vm_set_state(st, vm, state, "re-adopted after a herdd restart");
    hd_event(&st->ev, "vm.adopted", vm->name,
             vm->range[0] ? json_pack("{ss}", "range", vm->range) : NULL);
    fprintf(stderr, "herdd: re-adopted %s (pid %d)\n", vm->name, pid);
}

/* Its herd-vmm is gone: recorded as exited (status unknown), its cgroup's
 * counters read and the group released. */
static void record_gone(struct hd_res *r, struct hd_vm *vm)
{
    struct hd_store *st = r->st;
    char p[4096];
    vm->has_exit = true;
    vm->exit_code = -1;
    vm->exit_signal = 0;
    vm->exited = hd_now_ms();
    hd_vm_path(vm, "console.log", p, sizeof(p));
    json_decref(vm->last_console);
    vm->last_console = hd_tail_lines(p, 10);
    vm->pid = 0;
    vm->ready = false;
    /* its group outlived it: what the counters say, then it goes */
    hd_cgroup_adopt(r, vm);
    if (hd_cgroup_limits(st, vm))
        hd_limit_audit(st, vm->uid, vm->name, vm->limit);
    hd_cgroup_release(r, vm);
    hd_vm_set_state(st, vm, "exited", "herd-vmm was gone when herdd started");
    fprintf(stderr, "herdd: %s: herd-vmm was gone when herdd started\n", vm->name);
}

/* One guest record at start: its herd-vmm re-adopted, or its end recorded
 * (nothing to do for a guest that was not up and has no herd-vmm). */
static void adopt_one(struct hd_super *sv, struct hd_vm *vm)
{
    struct hd_res *r = sv->gs->res;
    bool was_up = !strcmp(vm->state, "running") || !strcmp(vm->state, "paused") ||
                  !strcmp(vm->state, "stopping") || !strcmp(vm->state, "starting");
    bool has_sock;
    const char *state = "running";
    pid_t pid = vmm_status(r, vm, &has_sock, &state);
    /* no answer (yet): a herd-vmm spawned for this guest, found by its command line */
    if (!pid && (was_up || has_sock))
        pid = find_vmm(vm);
    if (!pid && !was_up)
        return;
    if (!pid && !strcmp(vm->state, "starting")) {
        /* herdd stopped between recording the start and spawning */
        vm->pid = 0;
        hd_vm_set_state(r->st, vm, "created", "not started: herdd stopped while starting it");
        return;
    }
    int fd = pid > 0 ? hd_fd_high((int)syscall(SYS_pidfd_open, pid, 0)) : -1;
    if (fd >= 0)
        adopt_running(sv, vm, pid, fd, state);
    else
        record_gone(r, vm);
}

/* Called before the API and the supervisor run (no store lock contention). */
void hd_adopt_all(struct hd_super *sv)
{
    struct hd_vm *next;
    for (struct hd_vm *vm = sv->gs->st->vms; vm; vm = next) {
        next = vm->next;
        vm->pidfd = -1;
        if (!strcmp(vm->state, "creating"))
            discard_creating(sv->gs, vm);
        else
            adopt_one(sv, vm);
    }
}
