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

static pthread_t sup_thread;
static bool sup_running;

int hd_supervise_add(struct hd_vm *vm)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)vm->id};
    return epoll_ctl(g.epfd, EPOLL_CTL_ADD, vm->pidfd, &ev);
}

void hd_supervise_del(struct hd_vm *vm)
{
    if (vm->pidfd >= 0) {
        epoll_ctl(g.epfd, EPOLL_CTL_DEL, vm->pidfd, NULL);
        close(vm->pidfd);
    }
    vm->pidfd = -1;
}

static struct hd_vm *vm_by_id(int64_t id)
{
    for (struct hd_vm *vm = g.vms; vm; vm = vm->next)
        if (vm->id == id)
            return vm;
    return NULL;
}

static int vm_start_again(const char *name)
{
    json_t *out = NULL;
    struct hd_err err = {0};
    /* hd_vm_action takes g.mu itself: called from the supervisor without it */
    int rc = hd_vm_action(name, "start", NULL, &out, &err);
    json_decref(out);
    if (rc < 0) {
        fprintf(stderr, "herdd: restart of %s failed: %s\n", name, err.msg);
        /* no request carries this start: the audit log must still show it
         * (a refused chain means a compromised guest) */
        hd_audit(0, 0, "RESTART", "vm.start", name, err.status ? err.status : 500, err.msg);
    }
    return rc;
}

/* g.mu held. Returns true when the guest should be restarted. */
static bool record_exit(struct hd_vm *vm, bool *escape_out, bool *limit_out)
{
    siginfo_t si;
    char p[4096];

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
    hd_supervise_del(vm);
    vm->exited = hd_now_ms();
    hd_console_finish(vm);
    hd_vm_path(vm, "console.log", p, sizeof(p));
    json_decref(vm->last_console);
    vm->last_console = hd_tail_lines(p, 10);
    vm->pid = 0;
    vm->ready = false;
    hd_run_dir_remove(vm);
    bool limit = hd_cgroup_limits(vm); /* before the group goes */
    *limit_out = limit;
    hd_cgroup_release(vm);
    bool escape = hd_escape_check(vm);
    *escape_out = escape;

    char note[200];
    if (vm->exit_code >= 0)
        snprintf(note, sizeof(note), "herd-vmm exited with status %d", vm->exit_code);
    else if (vm->exit_signal)
        snprintf(note, sizeof(note), "herd-vmm killed by signal %d", vm->exit_signal);
    else
        snprintf(note, sizeof(note), "herd-vmm ended (status unknown: not our child)");
    if (escape)
        snprintf(note, sizeof(note), "possible escape attempt: herd-vmm killed by its seccomp "
                 "filter; not restarted (see vm.escape_attempt)");
    else if (limit)
        snprintf(note, sizeof(note), "herd-vmm hit its cgroup's %s (%s); not restarted (see "
                 "vm.limit)", vm->limit, !strcmp(vm->limit, "pids.max") ? "a thread refused"
                 : vm->ev_oom_kill ? "OOM kill" : "allocation refused");
    json_t *d = json_pack("{sO}", "last_console", vm->last_console);
    if (vm->exit_code >= 0)
        json_object_set_new(d, "code", json_integer(vm->exit_code));
    if (vm->exit_signal)
        json_object_set_new(d, "signal", json_integer(vm->exit_signal));
    hd_cgroup_events_json(vm, d);
    if (vm->range[0])
        json_object_set_new(d, "range", json_string(vm->range));
    hd_event("vm.exited", vm->name, d);
    if (vm->stop_requested) {
        vm->stop_requested = false;
        hd_vm_set_state(vm, "stopped", note);
        return false;
    }
    hd_vm_set_state(vm, "exited", note);
    if (escape || limit)
        return false;
    bool failed = vm->exit_code != 0;
    if ((!strcmp(vm->restart, "always") || (!strcmp(vm->restart, "on-failure") && failed)) &&
        vm->restarts < 10 && !g.stopping) {
        vm->restarts++;
        return true;
    }
    return false;
}

static void check_ready(struct hd_vm *vm)
{
    char path[4096];
    char buf[65536 + 128];
    struct hd_template *t = hd_template_find(vm->tmpl);
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
        vm->ready = true;
        vm->ready_at = hd_now_ms();
        int64_t boot_us = (hd_mono_ns() - vm->spawn_ns) / 1000;
        json_t *d = json_pack("{sI}", "boot_us", (json_int_t)(vm->spawn_ns ? boot_us : 0));
        if (vm->range[0])
            json_object_set_new(d, "range", json_string(vm->range));
        hd_db_save_vm(vm);
        hd_event("vm.ready", vm->name, d);
        pthread_cond_broadcast(&g.changed);
        vm->console_carry[0] = 0;
        return;
    }
    size_t keep = strlen(line) < sizeof(vm->console_carry) ? strlen(line) : sizeof(vm->console_carry) - 1;
    if (keep > len)
        keep = len;
    memcpy(vm->console_carry, buf + len - keep, keep);
    vm->console_carry[keep] = 0;
}

void hd_storage_check(void)
{
    struct statvfs sv;
    if (statvfs(g.cfg.state_dir, &sv) < 0)
        return;
    uint64_t freeb = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
    bool alarm = freeb < g.cfg.storage_alarm;
    pthread_mutex_lock(&g.mu);
    bool was = g.storage_alarm;
    g.disk_free = freeb;
    g.disk_total = total;
    g.storage_alarm = alarm;
    pthread_mutex_unlock(&g.mu);
    if (alarm != was)
        hd_event(alarm ? "alarm.storage" : "alarm.storage.cleared", NULL,
                 json_pack("{sI sI sI}", "free", (json_int_t)freeb, "threshold",
                           (json_int_t)g.cfg.storage_alarm, "floor",
                           (json_int_t)g.cfg.storage_floor));
}

static void *supervise_main(void *arg)
{
    struct epoll_event evs[64];
    int64_t last_storage = 0;
    sigset_t all;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!g.stopping) {
        int n = epoll_wait(g.epfd, evs, 64, 20);
        int64_t restart_ids[64], escape_ids[64], limit_ids[64];
        int nrestart = 0, nescape = 0, nlimit = 0;
        pthread_mutex_lock(&g.mu);
        for (int i = 0; i < n; i++) {
            struct hd_vm *vm = vm_by_id((int64_t)evs[i].data.u64);
            bool escape = false, limit = false;
            if (vm && vm->pidfd >= 0 && record_exit(vm, &escape, &limit))
                restart_ids[nrestart++] = vm->id;
            if (escape)
                escape_ids[nescape++] = vm->id;
            if (limit)
                limit_ids[nlimit++] = vm->id;
        }
        for (struct hd_vm *vm = g.vms; vm; vm = vm->next) {
            hd_console_drain(vm);
            if (vm->pidfd >= 0 && !vm->ready)
                check_ready(vm);
        }
        pthread_mutex_unlock(&g.mu);
        for (int i = 0; i < nescape; i++) {
            char name[HD_NAME_MAX + 1] = "", line[sizeof(((struct hd_vm *)0)->escape)] = "";
            uid_t uid = 0;
            pthread_mutex_lock(&g.mu);
            struct hd_vm *vm = vm_by_id(escape_ids[i]);
            if (vm) {
                snprintf(name, sizeof(name), "%s", vm->name);
                snprintf(line, sizeof(line), "%s", vm->escape);
                uid = vm->uid;
            }
            pthread_mutex_unlock(&g.mu);
            if (name[0])
                hd_escape_audit(uid, name, line);
        }
        for (int i = 0; i < nlimit; i++) {
            char name[HD_NAME_MAX + 1] = "", limit[sizeof(((struct hd_vm *)0)->limit)] = "";
            uid_t uid = 0;
            pthread_mutex_lock(&g.mu);
            struct hd_vm *vm = vm_by_id(limit_ids[i]);
            if (vm) {
                snprintf(name, sizeof(name), "%s", vm->name);
                snprintf(limit, sizeof(limit), "%s", vm->limit);
                uid = vm->uid;
            }
            pthread_mutex_unlock(&g.mu);
            if (name[0] && limit[0])
                hd_limit_audit(uid, name, limit);
        }
        for (int i = 0; i < nrestart; i++) {
            pthread_mutex_lock(&g.mu);
            struct hd_vm *vm = vm_by_id(restart_ids[i]);
            char name[HD_NAME_MAX + 1] = "";
            if (vm)
                snprintf(name, sizeof(name), "%s", vm->name);
            pthread_mutex_unlock(&g.mu);
            if (name[0]) {
                hd_event("vm.restarting", name, NULL);
                vm_start_again(name);
            }
        }
        if (hd_now_ms() - last_storage > 5000) {
            last_storage = hd_now_ms();
            hd_storage_check();
        }
    }
    return NULL;
}

int hd_supervise_start(void)
{
    if (pthread_create(&sup_thread, NULL, supervise_main, NULL) != 0)
        return -1;
    sup_running = true;
    return 0;
}

void hd_supervise_stop(void)
{
    if (sup_running)
        pthread_join(sup_thread, NULL);
    sup_running = false;
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

/* Called before the API and the supervisor run (no g.mu contention). */
void hd_adopt_all(void)
{
    struct hd_vm *next;
    for (struct hd_vm *vm = g.vms; vm; vm = next) {
        next = vm->next;
        vm->pidfd = -1;
        if (!strcmp(vm->state, "creating")) {
            fprintf(stderr, "herdd: %s was being created when herdd stopped: removed\n",
                    vm->name);
            hd_vm_discard_partial(vm);
            hd_db_delete_vm(vm);
            struct hd_vm **pp = &g.vms;
            while (*pp != vm)
                pp = &(*pp)->next;
            *pp = vm->next;
            hd_event("vm.removed", vm->name,
                     json_pack("{ss}", "note", "half-created when herdd stopped"));
            hd_vm_free(vm);
            continue;
        }
        bool was_up = !strcmp(vm->state, "running") || !strcmp(vm->state, "paused") ||
                      !strcmp(vm->state, "stopping") || !strcmp(vm->state, "starting");
        char why[256] = "", ctl[108];
        struct stat sst;
        hd_vm_control_path(vm, ctl, sizeof(ctl));
        bool has_sock = stat(ctl, &sst) == 0;
        pid_t pid = 0;
        const char *state = "running";
        json_t *st = g.vmm_has_control && has_sock ? hd_control(vm, "status", 1000, why, sizeof(why))
                                                   : NULL;
        if (st) {
            json_t *p = json_object_get(st, "pid");
            if (json_is_integer(p))
                pid = (pid_t)json_integer_value(p);
            const char *s = json_string_value(json_object_get(st, "state"));
            if (s && !strcmp(s, "paused"))
                state = "paused";
            json_decref(st);
        }
        /* no answer (yet): a herd-vmm spawned for this guest, found by its command line */
        if (!pid && (was_up || has_sock))
            pid = find_vmm(vm);
        if (!pid && !was_up)
            continue;
        if (!pid && !strcmp(vm->state, "starting")) {
            /* herdd stopped between recording the start and spawning */
            vm->pid = 0;
            hd_vm_set_state(vm, "created", "not started: herdd stopped while starting it");
            continue;
        }
        int fd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
        if (fd >= 0) {
            vm->pid = pid;
            vm->pidfd = fd;
            vm->child = false;
            vm->console_off = 0;
            vm->console_carry[0] = 0;
            vm->spawn_ns = 0;
            hd_console_adopt(vm);
            hd_cgroup_adopt(vm);
            hd_supervise_add(vm);
            hd_vm_set_state(vm, state, "re-adopted after a herdd restart");
            hd_event("vm.adopted", vm->name,
                     vm->range[0] ? json_pack("{ss}", "range", vm->range) : NULL);
            fprintf(stderr, "herdd: re-adopted %s (pid %d)\n", vm->name, pid);
        } else {
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
            hd_cgroup_adopt(vm);
            if (hd_cgroup_limits(vm))
                hd_limit_audit(vm->uid, vm->name, vm->limit);
            hd_cgroup_release(vm);
            hd_vm_set_state(vm, "exited", "herd-vmm was gone when herdd started");
            fprintf(stderr, "herdd: %s: herd-vmm was gone when herdd started\n", vm->name);
        }
    }
}
