/*
 * herdd internals: one process per node. State lives in memory (authoritative
 * while herdd runs) and is written through to SQLite in the state directory
 * (authoritative across restarts). One global mutex (g.mu) guards both; slow
 * work (waiting for a guest to stop, checksumming a parent) runs without it,
 * with the object marked busy.
 */
#ifndef HERDD_H
#define HERDD_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "herd/error.h"
#include "herd/netdev.h"
#include "herd/netdev_kfilter.h"

#define HD_VERSION "0.1"
#define HD_NAME_MAX 63
#define HD_MAX_NICS 8
#define HD_BODY_MAX (1u << 20)
#define HD_API_CONNECTIONS 2000        /* libmicrohttpd's connection limit */
#define HD_CONSOLE_LOG_MIN (64ull << 10) /* console_log_max bounds */
#define HD_CONSOLE_LOG_MAX (1ull << 30)
#define HD_READY_LINE "herd-probe: ready"
#define HD_IMAGE_DIR "/var/lib/herd/images" /* image_dirs default */
#define HD_CHAIN_MAX 16                     /* backing chain links herdd pins */

/* ---- errors: an HTTP status and the libraries' record (herd/error.h) ------
 * &err->lib goes to blockdev and netdev, which fill it; herdd then adds the
 * status. err->msg and err->field name the same storage as err->lib's. */
struct hd_err {
    int status;
    union {
        struct herd_err lib;
        struct {
            HERD_ERR_FIELDS;
        };
    };
};
/* Fills err (code 0: herdd's own check, no errno) and returns -1. */
int hd_fail(struct hd_err *err, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A library call given &err->lib failed with rc: adds the status, and the
 * field and message (strerror) where the library left none. Returns -1. */
int hd_fail_lib(struct hd_err *err, int status, int rc, const char *field);

/* ---- configuration ------------------------------------------------------ */
enum { HD_ROLE_SYSADMIN = 1, HD_ROLE_SECADMIN = 2, HD_ROLE_AUDITOR = 4 };

struct hd_user {
    uid_t uid;
    unsigned roles;
};

struct hd_config {
    char *path;
    char *node_name;
    char *state_dir;
    char *socket_path;
    char *vmm_path;
    json_t *roles_json;          /* {"management": {"bridge": ...}, ...} */
    struct netdev_config net;
    bool net_setup;              /* create missing role bridges at start */
    struct hd_user *users;
    size_t n_users;
    bool root_listed;            /* uid 0 appears in users */
    double cpu_overcommit;       /* vCPUs per host CPU */
    double mem_fraction;         /* share of host RAM guests may take */
    uint64_t storage_alarm;      /* bytes free in the state dir */
    uint64_t storage_floor;      /* below this no new overlays */
    unsigned stop_timeout_ms;
    unsigned shutdown_timeout_ms; /* how long a guest may take to power off */
    unsigned ready_timeout_ms;   /* range up waits this long for guests to be ready */
    unsigned range_parallel;
    /* confinement (docs/security.md) */
    uint32_t uid_first, uid_count;  /* guest_uids: one uid (= gid) per guest */
    char *cgroup_root;           /* cgroup v2 mount; "" = do not use cgroups */
    bool wipe_zero;              /* wipe_overlays: zero (else discard) */
    unsigned pids_max;           /* cgroup_pids_max: pids.max per guest */
    uint64_t console_log_max;    /* console.log cap in bytes (console.log.1 the same) */
    unsigned api_conns_per_uid;  /* open API connections per caller uid */
    char **vmm_env;              /* names passed from herdd's environment (test hooks) */
    size_t n_vmm_env;
    char **image_dirs;           /* where template files may come from (canonical) */
    size_t n_image_dirs;
};

/* YAML text -> JSON value (mappings, sequences, plain scalars typed like
 * YAML 1.2 core: null, true/false, integers, floats; quoted = strings).
 * Duplicate keys, several documents, aliases to huge expansions are errors.
 * Returns NULL and fills err (400, "line L column C: ..."). */
json_t *hd_yaml_to_json(const char *text, size_t len, struct hd_err *err);
int hd_config_load(const char *path, struct hd_config *cfg, struct hd_err *err);
void hd_config_free(struct hd_config *cfg);
/* Parses "64M", "1G", 1048576 into bytes. -1 on error. */
int hd_parse_size(json_t *v, uint64_t *out);
unsigned hd_roles_of(const struct hd_config *cfg, uid_t uid);
const char *hd_bridge_of(const struct hd_config *cfg, const char *role);

/* ---- templates, guests --------------------------------------------------- */
struct hd_template {
    char name[HD_NAME_MAX + 1];
    char parent[HD_NAME_MAX + 1]; /* derived templates: the template under the delta */
    char *image, *format, *kernel, *initrd, *cmdline, *ready_line, *sha256;
    uint64_t image_size;        /* virtual size */
    uint64_t file_size;         /* bytes on disk */
    unsigned cpus;
    uint64_t mem;
    json_t *nics;               /* ["management", "communication"] */
    int64_t created;
    struct hd_template *next;
};

struct hd_nic {
    char role[24];
    char bridge[IFNAMSIZ];
    char tap[IFNAMSIZ];
    char mac[18];
    struct netdev_kfilter_cfg kf; /* the tap's kernel filter (at create; not stored) */
};

struct hd_vm {
    int64_t id;
    char name[HD_NAME_MAX + 1];
    char tmpl[HD_NAME_MAX + 1];
    char range[HD_NAME_MAX + 1];
    unsigned cpus;
    uint64_t mem;
    struct hd_nic nics[HD_MAX_NICS];
    unsigned n_nics;
    char state[16];     /* created starting running paused stopping stopped exited error */
    char restart[16];   /* no, on-failure, always */
    unsigned restarts;
    bool ready;
    pid_t pid;
    int pidfd;          /* -1 when not supervised */
    bool child;         /* spawned by this herdd (exit status is known) */
    bool has_exit;
    int exit_code;      /* -1 unknown */
    int exit_signal;
    json_t *last_console;   /* array of strings */
    char note[256];     /* why the last state came about */
    int64_t created, started, ready_at, exited;
    uid_t uid;          /* herd-vmm's uid and gid; 0 = none allocated yet */
    char escape[512];   /* the seccomp line of a possible escape attempt, "" if none */
    int64_t escape_at;
    /* its cgroup's counters when herd-vmm last ended (docs/herdd.md "exit") */
    char limit[16];     /* the limit it hit: "memory.max", "pids.max" or "" */
    bool has_cg_events;
    uint64_t ev_mem_max, ev_oom, ev_oom_kill, ev_pids_max;
    /* runtime only */
    char cgroup[600];   /* the guest's cgroup while it runs, "" without one */
    bool busy;
    bool stop_requested;
    int64_t spawn_ns;
    off_t console_off;
    char console_carry[128];
    /* the console pipe (console.c): herd-vmm writes STATE/vms/NAME/console.pipe,
     * herdd appends what it reads to console.log, capped and rotated */
    bool con_open;
    int con_rfd, con_wfd;
    uint64_t con_size;  /* bytes in console.log */
    uint64_t con_base;  /* console offset of console.log's first byte */
    struct hd_vm *next;
};

/* ---- global state -------------------------------------------------------- */
struct hd_state {
    struct hd_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t changed;      /* broadcast on any guest state change */
    sqlite3 *db;
    struct hd_template *templates;
    struct hd_vm *vms;
    bool vmm_has_control;
    bool vmm_has_fsize;          /* herd-vmm takes --file-size-max (RLIMIT_FSIZE) */
    volatile int stopping;
    int epfd;                    /* pidfds of supervised guests */
    int64_t started_at;
    /* storage */
    uint64_t disk_free, disk_total;
    bool storage_alarm;
    /* cgroups: usable, and if not why (node profile) */
    bool cgroup_ok;
    char cgroup_dir[512];        /* ROOT/herd/<state key>: the guests' groups go below */
    char cgroup_why[256];
};
extern struct hd_state g;

/* state.c (layer 0): g above and the clocks */
int64_t hd_now_ms(void);
int64_t hd_mono_ns(void);
bool hd_name_ok(const char *name);
/* 400 naming the first key of an API object that is not in known (NULL-
 * terminated); 0 when all are known. */
int hd_check_fields(json_t *body, const char *const known[], struct hd_err *err);

/* db.c */
int hd_db_open(struct hd_err *err);
void hd_db_close(void);
int hd_db_exec(const char *sql);
int hd_db_save_template(const struct hd_template *t);
int hd_db_delete_template(const char *name);
int hd_db_save_vm(struct hd_vm *vm);
int hd_db_delete_vm(const struct hd_vm *vm);
int hd_db_load(struct hd_err *err);
int hd_db_save_range(const char *name, const char *spec, json_t *doc);
int hd_db_delete_range(const char *name);
json_t *hd_db_ranges(const char *name); /* array, or object when name given (NULL if none) */

/* events.c */
void hd_events_init(void);
/* Appends an event (steals data; may be NULL). Safe with or without g.mu held. */
uint64_t hd_event(const char *type, const char *name, json_t *data);
uint64_t hd_event_seq(void);
/* Events after seq matching the filter, up to max; waits up to wait_ms for
 * the first one. Returns an array (new reference). */
json_t *hd_events_after(uint64_t seq, const char *type_prefix, const char *name_prefix,
                        size_t max, int wait_ms, uint64_t *last);

/* audit.c */
int hd_audit_open(struct hd_err *err);
void hd_audit_close(void);
void hd_audit(uid_t uid, unsigned roles, const char *method, const char *path,
              const char *target, int status, const char *what);
json_t *hd_audit_list(size_t limit, struct hd_err *err);
json_t *hd_audit_verify(struct hd_err *err);

/* templates.c (g.mu held) */
/* ---- image files and pinned chains (chain.c) ------------------------------
 * Template files (image, kernel, initrd, every backing file) come from
 * image_dirs only (or herdd's own state/templates); a guest's overlay may
 * name only its template's chain, which herdd pins for herd-vmm. */
struct hd_chain {
    unsigned n;                    /* path[0] is the template image */
    char *path[HD_CHAIN_MAX];
    char *format[HD_CHAIN_MAX];
};
void hd_chain_free(struct hd_chain *c);
/* At start: creates the default directory, refuses ones others may write,
 * keeps their canonical paths. */
int hd_image_dirs_prepare(struct hd_config *cfg, struct hd_err *err);
/* PATH: absolute, a regular file itself (not a link), inside image_dirs. */
int hd_image_file_check(const char *path, const char *field, struct hd_err *err);
/* IMAGE's chain, each link checked before it is opened. */
int hd_chain_of(const char *image, const char *format, const char *field, struct hd_chain *out,
                struct hd_err *err);
/* OVERLAY (qcow2) must name exactly PIN as its backing chain; 409 if not.
 * Nothing it names is opened. */
int hd_chain_verify(const char *overlay, const struct hd_chain *pin, struct hd_err *err);

struct hd_template *hd_template_find(const char *name);
json_t *hd_template_json(const struct hd_template *t);
/* Validates and adds; body is the API object. Not with g.mu held (hashes). */
int hd_template_add(json_t *body, json_t **out, struct hd_err *err);
int hd_template_rm(const char *name, struct hd_err *err);
/* A new template whose image is a copy of a stopped guest's overlay: a qcow2
 * delta on that guest's template (STATE/templates/NAME.qcow2, read-only).
 * body: {"name", "vm", and optionally cmdline, cpus, mem, nics, ready_line}. */
int hd_template_derive(json_t *body, json_t **out, struct hd_err *err);
void hd_template_free(struct hd_template *t);
/* A NIC item: "role" or {"network": role, "segment": name} -> role and bridge
 * (the role's bridge, or the segment's: configured or netdev's derived name). */
int hd_nic_resolve(json_t *item, char role[24], char bridge[IFNAMSIZ], const char *field,
                   struct hd_err *err);
/* Checks cpus/mem/nics fields of an API body; leaves defaults when absent. */
int hd_check_shape(json_t *body, unsigned *cpus, uint64_t *mem, json_t **nics,
                   struct hd_err *err);

/* guest.c (layer 1): guest records */
struct hd_vm *hd_vm_find(const char *name);          /* g.mu held */
/* The record as JSON: what the state database stores and the API shows
 * (full: with the paths of its disk, console and control socket). */
json_t *hd_vm_json(const struct hd_vm *vm, bool full); /* g.mu held */
void hd_vm_path(const struct hd_vm *vm, const char *file, char *out, size_t size);
void hd_vm_control_path(const struct hd_vm *vm, char *out, size_t size);
/* Last lines of a text file as an array of strings (non-ASCII as '?'). */
json_t *hd_tail_lines(const char *path, long lines);
/* The exit record's "limit" and "cgroup_events" (into EXIT, an object), and
 * back from a saved exit record. */
void hd_cgroup_events_json(const struct hd_vm *vm, json_t *exit);
void hd_cgroup_events_load(struct hd_vm *vm, json_t *exit);

/* control.c (layer 1): a guest's herd-vmm control socket, client side */
/* One request, one reply. */
json_t *hd_control(const struct hd_vm *vm, const char *cmd, int timeout_ms,
                   char *why, size_t why_size);
/* The same with a whole request line (newline-terminated); cmd names it in
 * messages. */
json_t *hd_control_request(const struct hd_vm *vm, const char *request, const char *cmd,
                           int timeout_ms, char *why, size_t why_size);

/* vm.c (layer 3) */
/* body: {"name", "template", "cpus"?, "mem"?, "nics"?, "restart"?, "start"?};
 * range may be NULL. */
int hd_vm_create(json_t *body, const char *range, json_t **out, struct hd_err *err);
int hd_vm_action(const char *name, const char *action, json_t *opts, json_t **out,
                 struct hd_err *err);
int hd_vm_rm(const char *name, bool force, struct hd_err *err);
int hd_vm_reset(const char *name, struct hd_err *err);
json_t *hd_vm_logs(const char *name, const char *which, long lines, struct hd_err *err);
/* GET /v1/vms/NAME/net: per NIC, the kernel filter's counters and policy
 * (netdev_kfilter_stats), read from the host kernel. */
json_t *hd_vm_net(const char *name, struct hd_err *err);
void hd_vm_set_state(struct hd_vm *vm, const char *state, const char *note); /* g.mu held */
/* Supervision registers here (main.c wires it): vm.c calls the hook for
 * each herd-vmm it spawns (g.mu held; -1 fails the start). */
void hd_vm_set_spawn_hook(int (*hook)(struct hd_vm *vm));

/* console.c: console output from a byte offset, and input to the guest. */
json_t *hd_vm_console_read(const char *name, long long offset, struct hd_err *err);
/* The console pipe (console.c). start: a fresh log and FIFO before a spawn
 * (fifo = the path for --serial file:); adopt: the FIFO of a running guest
 * started by a herdd with console pipes (false if it has none); drain:
 * what herd-vmm wrote, into console.log (called every 20 ms, g.mu held);
 * finish: the last bytes, then the fds closed. */
int hd_console_start(struct hd_vm *vm, char *fifo, size_t fifo_len, struct hd_err *err);
bool hd_console_adopt(struct hd_vm *vm);
void hd_console_drain(struct hd_vm *vm);
void hd_console_finish(struct hd_vm *vm);
/* Up to len console bytes from console offset *off (console.log.1 and
 * console.log together; *off is moved to the oldest byte kept when older,
 * to 0 when past the end: a restarted guest's new log). g.mu held. */
ssize_t hd_console_pread(const struct hd_vm *vm, uint64_t *off, char *buf, size_t len);
int hd_vm_console_input(const char *name, json_t *body, json_t **out, struct hd_err *err);
void hd_vm_free(struct hd_vm *vm);
/* Removes what a "creating" record left behind (herdd died mid-create). */
void hd_vm_discard_partial(struct hd_vm *vm);

/* supervise.c */
int hd_supervise_start(void);
void hd_supervise_stop(void);
int hd_supervise_add(struct hd_vm *vm);   /* g.mu held; registers vm->pidfd */
void hd_supervise_del(struct hd_vm *vm);  /* g.mu held */
void hd_adopt_all(void);                  /* at start, before the API opens */
void hd_storage_check(void);

/* ranges.c */
int hd_range_up(const char *yaml, size_t len, json_t **out, struct hd_err *err);
int hd_range_down(const char *name, json_t **out, struct hd_err *err);
int hd_range_reset(const char *name, json_t **out, struct hd_err *err);
json_t *hd_range_status(const char *name, struct hd_err *err);
json_t *hd_range_list(void);
void hd_ranges_resume(void);

/* node.c */
json_t *hd_node_json(void);
int hd_node_plan(const char *yaml, size_t len, json_t **out, struct hd_err *err);
/* Admission: may a guest with cpus/mem start now? (g.mu held) */
int hd_admit(unsigned cpus, uint64_t mem, unsigned count, struct hd_err *err);
struct cap_item;
int hd_admit_many(const struct cap_item *items, size_t n, struct hd_err *err); /* g.mu held */

/* jail.c: herd-vmm confinement (docs/security.md) */
/* State dir modes, umask, cgroup detection (one log line when degraded). */
int hd_jail_init(struct hd_err *err);
/* g.mu held: a free uid of guest_uids for vm (lowest not held by a guest). */
int hd_uid_alloc(struct hd_vm *vm, struct hd_err *err);
/* STATE/run/ID: owned by the guest's uid, mode 0700 (its control socket). */
int hd_run_dir_prepare(const struct hd_vm *vm, struct hd_err *err);
void hd_run_dir_remove(const struct hd_vm *vm);
/* The guest's cgroup with its limits; leaves vm->cgroup "" when cgroups are
 * not usable. Never fails a start because of the host. */
void hd_cgroup_prepare(struct hd_vm *vm);
/* A re-adopted guest: its group, if it has one. */
void hd_cgroup_adopt(struct hd_vm *vm);
/* After herd-vmm has exited: kill what is left, rmdir. */
void hd_cgroup_release(struct hd_vm *vm);
/* g.mu held, after herd-vmm has ended and before hd_cgroup_release: reads
 * its group's memory.events and pids.events into vm (limit: an OOM kill in
 * memory.max, or a fork refused by pids.max), logs a limit that was hit and
 * announces it (vm.limit). Returns true when a limit was hit. */
bool hd_cgroup_limits(struct hd_vm *vm);
/* Its audit entry; without g.mu (the audit anchor takes it). */
void hd_limit_audit(uid_t uid, const char *name, const char *limit);
/* Discards (and with wipe_overlays: zero, overwrites) a file's data, then
 * unlinks it. */
void hd_overlay_wipe_unlink(const char *path);
/* herd-vmm's environment: PATH plus the vmm_env names herdd itself has. */
char **hd_vmm_env(void);
/* g.mu held, after an exit was recorded: a seccomp kill (status 6 and the
 * line in vmm.log) is recorded as a possible escape attempt. Returns true
 * when it was one. */
bool hd_escape_check(struct hd_vm *vm);
/* Its audit entry; without g.mu (the audit anchor takes it). */
void hd_escape_audit(uid_t uid, const char *name, const char *line);

/* api.c */
int hd_api_start(struct hd_err *err);
void hd_api_stop(void);

#endif
