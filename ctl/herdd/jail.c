/* herd-vmm confinement, herdd's side (docs/security.md "What herdd does"):
 * a uid/gid per guest from guest_uids, the per-guest run directory its
 * control socket lives in (owned by that uid, so herd-vmm can remove the
 * socket after its privilege drop), the guest's cgroup v2 group with its
 * limits (or one log line saying why there is none), overlay wiping on
 * removal, herd-vmm's environment, and seccomp kills recorded as possible
 * escape attempts. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "herd/capacity.h"
#include "herdd.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* ---- small file helpers ------------------------------------------------------ */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int e = n < 0 ? errno : 0;
    close(fd);
    return n < 0 ? -e : 0;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return n;
}

static bool has_word(const char *list, const char *word)
{
    size_t l = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += l)
        if ((p == list || p[-1] == ' ' || p[-1] == '\n') &&
            (p[l] == 0 || p[l] == ' ' || p[l] == '\n'))
            return true;
    return false;
}

/* ---- start-up --------------------------------------------------------------- */

static void cgroup_detect(struct hd_res *r)
{
    const char *root = r->cfg->cgroup_root;
    char p[700], list[512];
    struct statfs sf;

    r->cgroup_ok = false;
    if (!root || !root[0]) {
        snprintf(r->cgroup_why, sizeof(r->cgroup_why), "cgroup_root: off in the configuration");
        return;
    }
    if (statfs(root, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
        snprintf(r->cgroup_why, sizeof(r->cgroup_why), "%s is not a cgroup v2 mount", root);
        return;
    }
    snprintf(p, sizeof(p), "%s/cgroup.controllers", root);
    if (read_file(p, list, sizeof(list)) < 0)
        list[0] = 0;
    const char *need[] = {"memory", "cpu", "pids"};
    for (int i = 0; i < 3; i++)
        if (!has_word(list, need[i])) {
            size_t l = strlen(list);
            while (l && (list[l - 1] == '\n' || list[l - 1] == ' '))
                list[--l] = 0;
            snprintf(r->cgroup_why, sizeof(r->cgroup_why),
                     "%s has no %s controller (controllers: '%s'; a hybrid v1/v2 host?)", root,
                     need[i], list);
            return;
        }
    /* ROOT/herd/<key of the state dir>: two herdds on one host never share */
    uint32_t h = 2166136261u;
    for (const char *c = r->cfg->state_dir; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    char dirs[2][600];
    snprintf(dirs[0], sizeof(dirs[0]), "%s/herd", root);
    snprintf(dirs[1], sizeof(dirs[1]), "%s/herd/%08x", root, h);
    const char *parents[3] = {root, dirs[0], dirs[1]};
    for (int i = 0; i < 3; i++) {
        if (i && mkdir(parents[i], 0755) < 0 && errno != EEXIST) {
            snprintf(r->cgroup_why, sizeof(r->cgroup_why), "mkdir %s: %s", parents[i],
                     strerror(errno));
            return;
        }
        snprintf(p, sizeof(p), "%s/cgroup.subtree_control", parents[i]);
        int rc = write_file(p, "+memory +cpu +pids");
        if (rc < 0) {
            snprintf(r->cgroup_why, sizeof(r->cgroup_why), "%s: +memory +cpu +pids: %s", p,
                     strerror(-rc));
            return;
        }
    }
    snprintf(r->cgroup_dir, sizeof(r->cgroup_dir), "%s", dirs[1]);
    r->cgroup_ok = true;
}

int hd_jail_init(struct hd_res *r, struct hd_err *err)
{
    const struct hd_config *cfg = r->cfg;
    char p[4200];

    /* nothing herdd creates is for anybody else (the API socket is chmod'ed) */
    umask(077);
    /* guest uids traverse STATE and STATE/run to reach their run directory;
     * everything else in STATE is 0600/0700 */
    if (chmod(cfg->state_dir, 0711) < 0)
        return hd_fail(err, 500, "state_dir", "%s: %s", cfg->state_dir, strerror(errno));
    snprintf(p, sizeof(p), "%s/run", cfg->state_dir);
    if (mkdir(p, 0711) < 0 && errno != EEXIST)
        return hd_fail(err, 500, "state_dir", "%s: %s", p, strerror(errno));
    chmod(p, 0711);
    static const char *const private[] = {"vms", "templates", "herdd.db", "herdd.db-wal",
                                          "herdd.db-shm", "herdd.lock", "audit.log", NULL};
    for (int i = 0; private[i]; i++) {
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", cfg->state_dir, private[i]);
        if (lstat(p, &st) == 0 && !S_ISLNK(st.st_mode))
            chmod(p, S_ISDIR(st.st_mode) ? 0700 : 0600);
    }
    /* every parent of the state dir must be traversable by the guest uids */
    snprintf(p, sizeof(p), "%s", cfg->state_dir);
    for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        *slash = 0;
        const char *dir = p[0] ? p : "/";
        struct stat st;
        if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH))
            return hd_fail(err, 500, "state_dir",
                           "%s (a parent of the state dir) is not searchable by other users "
                           "(mode %o): the guests' uids could not reach their run directories",
                           dir, st.st_mode & 07777);
        if (!p[0])
            break;
    }
    /* herd-vmm's environment */
    r->vmm_envp = calloc(cfg->n_vmm_env + 2, sizeof(char *));
    size_t n = 0;
    r->vmm_envp[n++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for (size_t i = 0; i < cfg->n_vmm_env; i++) {
        const char *v = getenv(cfg->vmm_env[i]);
        if (v && asprintf(&r->vmm_envp[n], "%s=%s", cfg->vmm_env[i], v) > 0)
            n++;
    }
    if (cfg->n_vmm_env)
        fprintf(stderr, "herdd: vmm_env: passing %zu variable(s) to herd-vmm (test hooks, "
                        "sanitizer options; not for production)\n", n - 1);
    cgroup_detect(r);
    if (r->cgroup_ok)
        fprintf(stderr, "herdd: cgroups: guests in %s/vm-NAME (memory.max, cpu.max, "
                        "pids.max)\n", r->cgroup_dir);
    else
        fprintf(stderr, "herdd: cgroups: not used: %s; guests run without memory, cpu and "
                        "pids limits\n", r->cgroup_why);
    return 0;
}

char *const *hd_vmm_env(struct hd_res *r)
{
    static char *const empty[] = {NULL};
    return r->vmm_envp ? r->vmm_envp : empty;
}

/* ---- uids -------------------------------------------------------------------- */

int hd_uid_alloc(struct hd_res *r, struct hd_vm *vm, struct hd_err *err)
{
    uint32_t first = r->cfg->uid_first, count = r->cfg->uid_count;
    uint8_t *used = calloc(count / 8 + 1, 1);
    bool mine_ok = vm->uid >= first && vm->uid - first < count;

    if (!used)
        return hd_fail(err, 500, "", "out of memory");
    for (struct hd_vm *o = r->st->vms; o; o = o->next)
        if (o != vm && o->uid >= first && o->uid - first < count) {
            uint32_t k = o->uid - first;
            used[k / 8] |= (uint8_t)(1u << (k % 8));
            if (o->uid == vm->uid)
                mine_ok = false;
        }
    if (mine_ok) {
        free(used);
        return 0;
    }
    for (uint32_t k = 0; k < count; k++)
        if (!(used[k / 8] & (1u << (k % 8)))) {
            vm->uid = first + k;
            free(used);
            return 0;
        }
    free(used);
    return hd_fail(err, 409, "guest_uids", "all %u guest uids (guest_uids %u-%u) are in use",
                   count, first, first + count - 1);
}

/* ---- run directory ------------------------------------------------------------ */

static void run_dir_path(const struct hd_vm *vm, char *out, size_t size)
{
    snprintf(out, size, "%s/run/%lld", vm->state_dir, (long long)vm->id);
}

int hd_run_dir_prepare(const struct hd_vm *vm, struct hd_err *err)
{
    char d[4200];
    run_dir_path(vm, d, sizeof(d));
    if (mkdir(d, 0700) < 0 && errno != EEXIST)
        return hd_fail(err, 500, "", "%s: %s", d, strerror(errno));
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return hd_fail(err, 500, "", "%s: %s", d, strerror(errno));
    int rc = fchown(fd, vm->uid, vm->uid);
    if (rc == 0)
        rc = fchmod(fd, 0700);
    int e = errno;
    close(fd);
    if (rc < 0)
        return hd_fail(err, 500, "", "%s: chown to %u: %s", d, (unsigned)vm->uid, strerror(e));
    return 0;
}

void hd_run_dir_remove(const struct hd_vm *vm)
{
    char p[4200];
    hd_vm_control_path(vm, p, sizeof(p));
    unlink(p);
    run_dir_path(vm, p, sizeof(p));
    rmdir(p);
    /* herdd before per-guest run directories: STATE/run/ID.sock */
    snprintf(p, sizeof(p), "%s/run/%lld.sock", vm->state_dir, (long long)vm->id);
    unlink(p);
}

/* ---- cgroups -------------------------------------------------------------------- */

static void cgroup_path(struct hd_res *r, const struct hd_vm *vm, char *out, size_t size)
{
    snprintf(out, size, "%s/vm-%s", r->cgroup_dir, vm->name);
}

static void cgroup_remove(const char *dir, const char *name)
{
    char p[700], buf[4096];
    struct stat st;

    if (stat(dir, &st) < 0)
        return;
    snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
    if (read_file(p, buf, sizeof(buf)) > 0 && buf[0]) {
        fprintf(stderr, "herdd: %s: cgroup %s still has processes after herd-vmm ended: "
                        "killing them\n", name, dir);
        snprintf(p, sizeof(p), "%s/cgroup.kill", dir);
        write_file(p, "1");
        snprintf(p, sizeof(p), "%s/cgroup.events", dir);
        for (int i = 0; i < 200; i++) {
            if (read_file(p, buf, sizeof(buf)) > 0 && strstr(buf, "populated 0"))
                break;
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (rmdir(dir) < 0 && errno != ENOENT)
        fprintf(stderr, "herdd: %s: rmdir %s: %s\n", name, dir, strerror(errno));
}

void hd_cgroup_prepare(struct hd_res *r, struct hd_vm *vm)
{
    char dir[600], p[700], v[64];
    struct cap_policy pol;

    vm->cgroup[0] = 0;
    vm->limit[0] = 0; /* the last run's counters go with its exit record */
    vm->has_cg_events = false;
    vm->ev_mem_max = vm->ev_oom = vm->ev_oom_kill = vm->ev_pids_max = 0;
    if (!r->cgroup_ok)
        return;
    cgroup_path(r, vm, dir, sizeof(dir));
    cgroup_remove(dir, vm->name); /* a leftover of a crash */
    if (mkdir(dir, 0755) < 0) {
        fprintf(stderr, "herdd: %s: mkdir %s: %s: started without a cgroup\n", vm->name, dir,
                strerror(errno));
        return;
    }
    cap_policy_default(&pol);
    struct {
        const char *file;
        int must;
    } lim[] = {{"memory.max", 1}, {"cpu.max", 1}, {"pids.max", 1}, {"memory.swap.max", 0}};
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        if (i == 0)
            snprintf(v, sizeof(v), "%llu",
                     (unsigned long long)cap_guest_mem(&pol, vm->mem, 1));
        else if (i == 1)
            snprintf(v, sizeof(v), "%u 100000", vm->cpus * 100000u);
        else if (i == 2)
            snprintf(v, sizeof(v), "%u", r->cfg->pids_max);
        else
            snprintf(v, sizeof(v), "0");
        snprintf(p, sizeof(p), "%s/%s", dir, lim[i].file);
        int rc = write_file(p, v);
        if (rc < 0 && lim[i].must) {
            fprintf(stderr, "herdd: %s: %s = %s: %s: started without a cgroup\n", vm->name, p,
                    v, strerror(-rc));
            rmdir(dir);
            return;
        }
    }
    snprintf(vm->cgroup, sizeof(vm->cgroup), "%s", dir);
}

void hd_cgroup_adopt(struct hd_res *r, struct hd_vm *vm)
{
    char dir[600];
    struct stat st;
    vm->cgroup[0] = 0;
    if (!r->cgroup_ok)
        return;
    cgroup_path(r, vm, dir, sizeof(dir));
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(vm->cgroup, sizeof(vm->cgroup), "%s", dir);
}

void hd_cgroup_release(struct hd_res *r, struct hd_vm *vm)
{
    char dir[600];
    if (r->cgroup_ok)
        cgroup_path(r, vm, dir, sizeof(dir));
    else
        snprintf(dir, sizeof(dir), "%s", vm->cgroup);
    if (dir[0])
        cgroup_remove(dir, vm->name);
    vm->cgroup[0] = 0;
}

/* ---- limits hit -------------------------------------------------------------------- */

/* "KEY N" in a cgroup events file (memory.events, pids.events); 0 if absent */
static uint64_t event_count(const char *text, const char *key)
{
    size_t l = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, l) && p[l] == ' ')
            return strtoull(p + l + 1, NULL, 10);
    return 0;
}

bool hd_cgroup_limits(struct hd_store *st, struct hd_vm *vm)
{
    char p[700], mem[1024], pids[256];

    vm->limit[0] = 0;
    vm->has_cg_events = false;
    vm->ev_mem_max = vm->ev_oom = vm->ev_oom_kill = vm->ev_pids_max = 0;
    if (!vm->cgroup[0])
        return false;
    /* read before anything is killed or removed: rmdir takes the counters */
    snprintf(p, sizeof(p), "%s/memory.events", vm->cgroup);
    ssize_t a = read_file(p, mem, sizeof(mem));
    snprintf(p, sizeof(p), "%s/pids.events", vm->cgroup);
    ssize_t b = read_file(p, pids, sizeof(pids));
    if (a < 0 && b < 0)
        return false;
    vm->has_cg_events = true;
    if (a >= 0) {
        vm->ev_mem_max = event_count(mem, "max");
        vm->ev_oom = event_count(mem, "oom");
        vm->ev_oom_kill = event_count(mem, "oom_kill");
    }
    if (b >= 0)
        vm->ev_pids_max = event_count(pids, "max");
    /* memory "max" alone is reclaim at the limit, not a stop: only an OOM
     * (an allocation memory.max refused) or an OOM kill counts */
    if (vm->ev_oom_kill || vm->ev_oom)
        snprintf(vm->limit, sizeof(vm->limit), "memory.max");
    else if (vm->ev_pids_max)
        snprintf(vm->limit, sizeof(vm->limit), "pids.max");
    else
        return false;

    char how[64];
    if (vm->exit_code >= 0)
        snprintf(how, sizeof(how), "exited with status %d", vm->exit_code);
    else if (vm->exit_signal)
        snprintf(how, sizeof(how), "killed by signal %d", vm->exit_signal);
    else
        snprintf(how, sizeof(how), "ended (status unknown)");
    fprintf(stderr, "herdd: LIMIT: guest %s (uid %u) hit its cgroup's %s (memory.events: "
                    "oom_kill %llu, oom %llu, max %llu; pids.events: max %llu); herd-vmm %s\n",
            vm->name, (unsigned)vm->uid, vm->limit, (unsigned long long)vm->ev_oom_kill,
            (unsigned long long)vm->ev_oom, (unsigned long long)vm->ev_mem_max,
            (unsigned long long)vm->ev_pids_max, how);
    json_t *d = json_pack("{sI}", "uid", (json_int_t)vm->uid);
    hd_cgroup_events_json(vm, d); /* limit, cgroup_events */
    if (vm->exit_code >= 0)
        json_object_set_new(d, "code", json_integer(vm->exit_code));
    if (vm->exit_signal)
        json_object_set_new(d, "signal", json_integer(vm->exit_signal));
    if (vm->range[0])
        json_object_set_new(d, "range", json_string(vm->range));
    hd_event(&st->ev, "vm.limit", vm->name, d);
    return true;
}

void hd_limit_audit(struct hd_store *st, uid_t uid, const char *name, const char *limit)
{
    char what[200];
    snprintf(what, sizeof(what), "herd-vmm hit its cgroup's %s", limit);
    hd_audit(st, uid, 0, "LIMIT", "vm.limit", name, 403, what);
}

/* ---- overlays ------------------------------------------------------------------------ */

void hd_overlay_wipe_unlink(const struct hd_config *cfg, const char *path)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;

    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (cfg->wipe_zero && st.st_size > 0) {
            static const char zero[1 << 16];
            for (off_t off = 0; off < st.st_size;) {
                size_t n = st.st_size - off < (off_t)sizeof(zero) ? (size_t)(st.st_size - off)
                                                                  : sizeof(zero);
                ssize_t w = pwrite(fd, zero, n, off);
                if (w <= 0)
                    break;
                off += w;
            }
            fdatasync(fd);
        }
        if (st.st_size > 0 &&
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size) < 0 &&
            ftruncate(fd, 0) < 0)
            fprintf(stderr, "herdd: %s: cannot discard its data: %s\n", path, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
}

/* ---- seccomp kills ------------------------------------------------------------------- */

bool hd_escape_check(struct hd_store *st, struct hd_vm *vm)
{
    char p[4200];
    const char *line = NULL;

    /* status 6 is herd-vmm's seccomp exit; a re-adopted guest's status is
     * unknown, its vmm.log still tells */
    if (vm->exit_code != 6 && !(vm->exit_code < 0 && !vm->exit_signal))
        return false;
    hd_vm_path(vm, "vmm.log", p, sizeof(p));
    json_t *tail = hd_tail_lines(p, 20);
    size_t i;
    json_t *l;
    json_array_foreach(tail, i, l) {
        const char *s = json_string_value(l);
        /* status unknown: only herd-vmm's very last line counts (the log
         * is appended to across starts) */
        if (vm->exit_code < 0 && i + 1 < json_array_size(tail))
            continue;
        if (s && strstr(s, "herd-vmm: seccomp:") && strstr(s, "forbidden system call"))
            line = s;
    }
    if (!line && vm->exit_code != 6) {
        json_decref(tail);
        return false;
    }
    snprintf(vm->escape, sizeof(vm->escape), "%s",
             line ? line : "herd-vmm exited with status 6 (seccomp) without its line in vmm.log");
    vm->escape_at = hd_now_ms();
    json_decref(tail);
    fprintf(stderr, "herdd: SECURITY: guest %s (uid %u): possible escape attempt: %s\n",
            vm->name, (unsigned)vm->uid, vm->escape);
    json_t *d = json_pack("{ss sI}", "line", vm->escape, "uid", (json_int_t)vm->uid);
    if (vm->exit_code >= 0)
        json_object_set_new(d, "code", json_integer(vm->exit_code));
    if (vm->range[0])
        json_object_set_new(d, "range", json_string(vm->range));
    hd_event(&st->ev, "vm.escape_attempt", vm->name, d);
    return true;
}

void hd_escape_audit(struct hd_store *st, uid_t uid, const char *name, const char *line)
{
    char what[600];
    snprintf(what, sizeof(what), "possible escape attempt: %s", line);
    hd_audit(st, uid, 0, "SECCOMP", "vm.escape_attempt", name, 403, what);
}
