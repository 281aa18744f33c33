/*
 * herdd internals: one process per node. State lives in memory (authoritative
 * while herdd runs) and is written through to SQLite in the state directory
 * (authoritative across restarts). One mutex (struct hd_store's mu, "the
 * store lock" below) guards both; slow work (waiting for a guest to stop,
 * checksumming a parent) runs without it, with the object marked busy.
 *
 * There is no process-wide state: main.c owns one struct herdd and hands
 * each layer its own context (docs/herdd.md "Layers"), which points only at
 * the contexts of the layers below it:
 *   0 const struct hd_config   configuration, read-only once loaded
 *   1 struct hd_store          records, their lock, SQLite, events, audit
 *   2 struct hd_res            host resources: cgroups, storage, herd-vmm's options
 *   3 struct hd_guests         guest lifecycle
 *   4 struct hd_super, hd_ranges, hd_cluster   supervision; ranges; the cluster
 *   5 struct hd_api            the HTTP API
 * A function takes the lowest context that has what it needs.
 */
#ifndef HERDD_H
#define HERDD_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "herd/error.h"
#include "herd/ipam.h"
#include "herd/netdev.h"
#include "herd/netdev_kfilter.h"
#include "herd/range_addr.h"

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
    double mem_overcommit;       /* committed guest memory per byte they may hold */
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
    /* cluster: (docs/cluster.md); n_etcd == 0: not in a cluster */
    char **etcd;                 /* etcd endpoints, "http://host:port" */
    size_t n_etcd;
    char *etcd_ca, *etcd_cert, *etcd_key; /* TLS files, NULL when not given */
    char *cluster_address;       /* the node's underlay address (IPv4 or IPv6) */
    unsigned lease_ttl;          /* seconds */
    unsigned image_port;         /* cluster.image_port: template files served (0: none) */
    uint64_t fetch_rate;         /* cluster.fetch_rate: bytes/s a copy is fetched at (0: any) */
};
#define HD_IMAGE_PORT_DEF 7781

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
/* The bridge of segment seg of role r ("" or NULL: the role's own bridge):
 * one herdd's configuration declares (shared by every guest that names
 * it), else, for a guest of a range, that range's own
 * (netdev_range_segment_bridge_name: ranges never share a segment they did
 * not declare in the configuration), else netdev_segment_bridge_name.
 * -ENOENT: the role has no bridge; -EINVAL, -ENAMETOOLONG: a bad name. */
int hd_segment_bridge(const struct hd_config *cfg, const char *range, enum netdev_role r,
                      const char *seg, char out[IFNAMSIZ]);
const char *hd_bridge_of(const struct hd_config *cfg, const char *role);

/* ---- templates, guests --------------------------------------------------- */
struct hd_template {
    char name[HD_NAME_MAX + 1];
    char parent[HD_NAME_MAX + 1]; /* derived templates: the template under the delta */
    char snapshot[HD_NAME_MAX + 1]; /* warm templates: guests are restored clones of this
                                     * snapshot (its template's image, kernel and shape) */
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
    char segment[24];           /* "" on the role's own bridge */
    char bridge[IFNAMSIZ];
    char tap[IFNAMSIZ];
    char mac[18];
    /* the guest's addresses on this NIC (addr.c), "" when none */
    char ipv4[IPAM_NET_STR];    /* "10.20.1.5/24" */
    char gateway[IPAM_ADDR_STR];
    char ipv6[IPAM_NET_STR];    /* "fd00:20:1::5/64" */
    struct netdev_kfilter_cfg kf; /* the tap's kernel filter (at create; not stored) */
};

struct hd_vm {
    int64_t id;
    char name[HD_NAME_MAX + 1];
    char tmpl[HD_NAME_MAX + 1];
    char range[HD_NAME_MAX + 1];
    char snapshot[HD_NAME_MAX + 1]; /* its disk stands on this snapshot's copy and it is
                                     * (or was) restored from it (snapshot.c); "" if not */
    char origin[HD_NAME_MAX + 1];   /* the snapshot it was created from (vm create
                                     * --snapshot, a warm template): what a reset goes
                                     * back to; "" for a guest booted from a template */
    bool restore_pending; /* its next start restores vm.snap of snapshot (set when
                           * its overlay is made over the snapshot's disk copy,
                           * cleared once herd-vmm is spawned with --restore);
                           * false: a start boots the template's kernel from
                           * its disk, as any power-on does */
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
    const char *state_dir; /* the configuration's state_dir, set when the record
                            * is made (its paths: hd_vm_path) */
    json_t *cloud_init;  /* {hostname, ssh_authorized_keys, runcmd}: its NoCloud
                          * seed (seed.c); NULL: no seed disk */
    char *resources;     /* its range's resource disk (resdisk.c), attached
                          * read-only after the seed; NULL: none */
    unsigned seed_gen;   /* bumped by each reset: a new instance-id */
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
    uint64_t resident;  /* herd-vmm's Pss in bytes (node.c), measured at resident_at */
    int64_t resident_at; /* hd_mono_ns(); 0: not measured in this run */
    int64_t spawn_ns;
    off_t console_off;
    char console_carry[128];
    bool snap_ready;    /* restored from a snapshot of a ready guest: ready once
                         * herd-vmm logs "restored from" past vmmlog_off */
    off_t vmmlog_off;   /* vmm.log's size when this herd-vmm was spawned */
    /* the console pipe (console.c): herd-vmm writes STATE/vms/NAME/console.pipe,
     * herdd appends what it reads to console.log, capped and rotated */
    bool con_open;
    int con_rfd, con_wfd;
    uint64_t con_size;  /* bytes in console.log */
    uint64_t con_base;  /* console offset of console.log's first byte */
    struct hd_vm *next;
};

/* ---- layer 0: clocks (state.c) and checks (config.c) --------------------- */
int64_t hd_now_ms(void);
int64_t hd_mono_ns(void);
/* fd moved to HD_FD_FLOOR or above (close-on-exec), the old one closed; fd
 * itself when it is negative, already there, or RLIMIT_NOFILE stops it
 * (state.c). For descriptors a guest keeps while it runs. */
#define HD_FD_FLOOR 1024
int hd_fd_high(int fd);
bool hd_name_ok(const char *name);
/* 400 naming the first key of an API object that is not in known (NULL-
 * terminated); 0 when all are known. */
int hd_check_fields(json_t *body, const char *const known[], struct hd_err *err);
/* An API body: a JSON object with only known keys (NULL-terminated) and a
 * valid "name" (hd_name_ok), which *name then points at (inside body).
 * 400 with the field otherwise. */
int hd_body_name(json_t *body, const char *const known[], const char **name,
                 struct hd_err *err);

/* ---- layer 1: records and sinks ------------------------------------------ */
#define HD_EVENTS_KEPT 8192

/* events.c: a ring of the last HD_EVENTS_KEPT events, numbered from 1;
 * readers ask for what came after a number and may wait for it. Its own
 * lock: safe with or without the store lock held. */
struct hd_events {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    json_t *ring[HD_EVENTS_KEPT];
    uint64_t seq;        /* last assigned */
    bool stopping;       /* waiters return at once */
};

/* audit.c: the hash-chained audit log (its anchor is in the database). */
struct audit_log;
struct hd_audit {
    struct audit_log *log;
    pthread_mutex_t mu;
    char path[4096];
};

/* The node's records: templates and guests in memory, written through to
 * SQLite, all under mu; changed is broadcast on any guest state change. */
struct hd_store {
    const struct hd_config *cfg;
    pthread_mutex_t mu;
    pthread_cond_t changed;      /* CLOCK_MONOTONIC */
    struct hd_template *templates;
    struct hd_vm *vms;
    sqlite3 *db;
    struct hd_events ev;
    struct hd_audit audit;
    volatile int stopping;       /* herdd is shutting down */
    int64_t started_at;
};
/* mu, changed and the event ring ready; cfg kept (not owned). */
void hd_store_init(struct hd_store *st, const struct hd_config *cfg);

/* db.c (store lock held; one connection, serialised by it) */
int hd_db_open(struct hd_store *st, struct hd_err *err);
void hd_db_close(struct hd_store *st);
int hd_db_exec(struct hd_store *st, const char *sql);
int hd_db_save_template(struct hd_store *st, const struct hd_template *t);
int hd_db_delete_template(struct hd_store *st, const char *name);
int hd_db_save_vm(struct hd_store *st, struct hd_vm *vm);
int hd_db_delete_vm(struct hd_store *st, const struct hd_vm *vm);
/* Loads templates and guests into st's lists. */
int hd_db_load(struct hd_store *st, struct hd_err *err);
int hd_db_save_range(struct hd_store *st, const char *name, const char *spec, json_t *doc);
int hd_db_delete_range(struct hd_store *st, const char *name);
/* array, or object when name given (NULL if none) */
json_t *hd_db_ranges(struct hd_store *st, const char *name);
/* Snapshots (snapshot.c): the record is the document the API shows. */
int hd_db_save_snapshot(struct hd_store *st, const char *name, const char *tmpl, json_t *doc);
int hd_db_delete_snapshot(struct hd_store *st, const char *name);
/* array, or object when name given (NULL if none) */
json_t *hd_db_snapshots(struct hd_store *st, const char *name);
/* How many snapshots were taken of guests of template tmpl (-1: error). */
int hd_db_snapshots_of_template(struct hd_store *st, const char *tmpl);
/* The meta table's JSON entries (work a crash may cut short): put, delete,
 * and every key that starts with prefix -> its document (null if it does
 * not parse). */
int hd_db_meta_put(struct hd_store *st, const char *key, json_t *doc);
int hd_db_meta_delete(struct hd_store *st, const char *key);
json_t *hd_db_meta_prefix(struct hd_store *st, const char *prefix);

/* events.c */
void hd_events_init(struct hd_events *ev);
/* Wakes every waiter; later waits return at once. */
void hd_events_stop(struct hd_events *ev);
/* Appends an event (steals data; may be NULL). */
uint64_t hd_event(struct hd_events *ev, const char *type, const char *name, json_t *data);
uint64_t hd_event_seq(struct hd_events *ev);
/* Events after seq matching the filter, up to max; waits up to wait_ms for
 * the first one. Returns an array (new reference). */
json_t *hd_events_after(struct hd_events *ev, uint64_t seq, const char *type_prefix,
                        const char *name_prefix, size_t max, int wait_ms, uint64_t *last);

/* audit.c (the audit anchor takes the store lock: call without it) */
int hd_audit_open(struct hd_store *st, struct hd_err *err);
void hd_audit_close(struct hd_store *st);
void hd_audit(struct hd_store *st, uid_t uid, unsigned roles, const char *method,
              const char *path, const char *target, int status, const char *what);
json_t *hd_audit_list(struct hd_store *st, size_t limit, struct hd_err *err);
json_t *hd_audit_verify(struct hd_store *st, struct hd_err *err);

/* guest.c: guest records */
struct hd_vm *hd_vm_find(struct hd_store *st, const char *name); /* store lock held */
/* The record as JSON: what the state database stores and the API shows
 * (full: with the paths of its disk, console and control socket). */
json_t *hd_vm_json(const struct hd_vm *vm, bool full); /* store lock held */
void hd_vm_path(const struct hd_vm *vm, const char *file, char *out, size_t size);
/* Its cloud-init instance-id, NAME.CREATED.GEN: new for each guest and
 * after each reset (seed_gen). */
void hd_vm_instance_id(const struct hd_vm *vm, char *out, size_t size);
void hd_vm_control_path(const struct hd_vm *vm, char *out, size_t size);
/* Last lines of a text file as an array of strings (non-ASCII as '?'). */
json_t *hd_tail_lines(const char *path, long lines);
/* The exit record's "limit" and "cgroup_events" (into EXIT, an object), and
 * back from a saved exit record. */
void hd_cgroup_events_json(const struct hd_vm *vm, json_t *exit);
void hd_cgroup_events_load(struct hd_vm *vm, json_t *exit);

/* control.c: a guest's herd-vmm control socket, client side */
/* One request, one reply. */
json_t *hd_control(const struct hd_vm *vm, const char *cmd, int timeout_ms,
                   char *why, size_t why_size);
/* The same with a whole request line (newline-terminated); cmd names it in
 * messages. */
json_t *hd_control_request(const struct hd_vm *vm, const char *request, const char *cmd,
                           int timeout_ms, char *why, size_t why_size);
/* The same with pass_fd (>= 0) sent along the line as SCM_RIGHTS (the
 * snapshot's target file); -1: no descriptor. The caller keeps pass_fd. */
json_t *hd_control_request_fd(const struct hd_vm *vm, const char *request, const char *cmd,
                              int pass_fd, int timeout_ms, char *why, size_t why_size);

/* ---- layer 2: host resources --------------------------------------------- */
/* What herdd found on the host: written at start (main.c, jail.c) and by the
 * storage check (supervise.c, store lock held). */
struct hd_res {
    struct hd_store *st;
    const struct hd_config *cfg; /* st->cfg */
    /* cgroups: usable, and if not why (node profile); jail.c */
    bool cgroup_ok;
    char cgroup_dir[512];        /* ROOT/herd/<state key>: the guests' groups go below */
    char cgroup_why[256];
    char **vmm_envp;             /* herd-vmm's environment (hd_vmm_env) */
    /* storage (store lock) */
    uint64_t disk_free, disk_total;
    bool storage_alarm;
    /* herd-vmm's options, from its --help (main.c) */
    bool vmm_has_control;
    bool vmm_has_fsize;          /* takes --file-size-max (RLIMIT_FSIZE) */
};

/* chain.c: image files and pinned chains.
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
int hd_image_file_check(const struct hd_config *cfg, const char *path, const char *field,
                        struct hd_err *err);
/* The same, a directory allowed too when dir_ok; *st (may be NULL): its lstat. */
int hd_image_path_check(const struct hd_config *cfg, const char *path, const char *field,
                        bool dir_ok, struct stat *st, struct hd_err *err);
/* IMAGE's chain, each link checked before it is opened. */
int hd_chain_of(const struct hd_config *cfg, const char *image, const char *format,
                const char *field, struct hd_chain *out, struct hd_err *err);
/* OVERLAY (qcow2) must name exactly PIN as its backing chain; 409 if not.
 * Nothing it names is opened. */
int hd_chain_verify(const char *overlay, const struct hd_chain *pin, struct hd_err *err);

/* templates.c (store lock held unless said) */
struct hd_template *hd_template_find(struct hd_store *st, const char *name);
json_t *hd_template_json(struct hd_store *st, const struct hd_template *t);
/* Validates and adds; body is the API object. Not with the store lock held
 * (hashes). */
int hd_template_add(struct hd_res *r, json_t *body, json_t **out, struct hd_err *err);
/* Store lock held: t (new, complete) saved and listed unless its name is
 * taken (409); *out what the API shows. t is the store's on success. */
int hd_template_insert(struct hd_store *st, struct hd_template *t, json_t **out,
                       struct hd_err *err);
int hd_template_rm(struct hd_res *r, const char *name, struct hd_err *err);
/* A new template whose image is a copy of a stopped guest's overlay: a qcow2
 * delta on that guest's template (STATE/templates/NAME.qcow2, read-only).
 * body: {"name", "vm", and optionally cmdline, cpus, mem, nics, ready_line}. */
int hd_template_derive(struct hd_res *r, json_t *body, json_t **out, struct hd_err *err);
void hd_template_free(struct hd_template *t);
/* A NIC item: "role" or {"network": role, "segment": name} -> role and bridge
 * (hd_segment_bridge; range: the guest's range, NULL or "" for none). */
int hd_nic_resolve(const struct hd_config *cfg, json_t *item, const char *range, char role[24],
                   char bridge[IFNAMSIZ], const char *field, struct hd_err *err);
/* Checks cpus/mem/nics fields of an API body; leaves defaults when absent. */
int hd_check_shape(const struct hd_config *cfg, json_t *body, unsigned *cpus, uint64_t *mem,
                   json_t **nics, struct hd_err *err);

/* snapshot.c: snapshots of running guests (docs/snapshot.md "herdd").
 * STATE/snapshots/NAME/ holds vm.snap (herd-vmm's file), disk.qcow2 (a
 * sparse copy of the guest's overlay: a qcow2 delta over its template's
 * chain) and, when the guest had one, seed.iso; all root's, read-only. */
#define HD_SNAP_FILE "vm.snap"
#define HD_SNAP_DISK "disk.qcow2"
#define HD_SNAP_SEED "seed.iso"
#define HD_SNAP_RESOURCES "resources.iso" /* a hard link to the range's resource disk */
void hd_snapshot_path(const struct hd_config *cfg, const char *name, const char *file,
                      char *out, size_t size);
/* Taking one, step by step (vm.c's hd_vm_snapshot runs them in order):
 * begin (store lock held): body {"name"} checked, the guest running or
 * paused and not busy, the template's chain pinned, the directory made, the
 * guest marked busy; write (no lock, guest paused): herd-vmm writes vm.snap
 * into a descriptor opened here (O_CREAT|O_EXCL, 0600, then 0400); copy
 * (no lock, herd-vmm stopped, its overlay flushed): sparse copies of the
 * overlay (checked to name the pinned chain) and seed; commit (store lock
 * held): the record saved, *out its document; abort: everything made
 * removed (after any step). begin fills tk; abort or commit ends it. */
struct hd_snap_take {
    char name[HD_NAME_MAX + 1];
    struct hd_vm *vm;
    bool seed, ready;
    struct hd_chain pin;        /* the template's chain under the overlay */
    char disk[4096];            /* the guest's overlay */
    char dir[4096], file[4200], copy[4200], seed_copy[4200];
    char seed_src[4200];        /* its seed disk (its own, or its snapshot's copy) */
    bool res;                   /* it has a range resource disk: kept with the snapshot */
    char res_src[4200], res_copy[4200];
    char checkpoint[HD_NAME_MAX + 1]; /* part of this checkpoint of the guest's range
                                       * (checkpoint.c); "" for a snapshot of its own */
    unsigned checkpoint_of;     /* the checkpoint's guests */
    bool dir_made;
};
int hd_snapshot_begin(struct hd_res *r, const char *vm, json_t *body, struct hd_snap_take *tk,
                      struct hd_err *err);
int hd_snapshot_write(struct hd_snap_take *tk, struct hd_err *err);
int hd_snapshot_copy_disks(struct hd_snap_take *tk, struct hd_err *err);
int hd_snapshot_commit(struct hd_store *st, struct hd_snap_take *tk, json_t **out,
                       struct hd_err *err);
void hd_snapshot_abort(const struct hd_config *cfg, struct hd_snap_take *tk);
json_t *hd_snapshot_list(struct hd_store *st);
json_t *hd_snapshot_get(struct hd_store *st, const char *name, struct hd_err *err);
/* 409 while a guest stands on it or was created from it, a snapshot's
 * disk copy stands on it, or a warm template names it; and, unless
 * in_checkpoint (checkpoint.c removing its own), while it is part of a
 * range checkpoint. Store lock not held. */
int hd_snapshot_rm(struct hd_res *r, const char *name, bool in_checkpoint, struct hd_err *err);
/* At start: removes every STATE/snapshots/X that has no record (a snapshot
 * herdd was taking when it died), one log line each. */
void hd_snapshot_sweep(struct hd_res *r);
/* Puts snapshot name's disk copy, and those of the snapshots it stands on
 * (a snapshot of a restored guest has a "parent"), in front of pin (the
 * template's chain). Store lock held. */
int hd_snapshot_chain(struct hd_store *st, const char *name, struct hd_chain *pin,
                      struct hd_err *err);
/* POST /v1/templates {"name", "snapshot"} (the API sends bodies with
 * "snapshot" here): a warm template, whose guests are clones of that
 * snapshot: its template's files and boot settings, the snapshot's shape. */
int hd_snapshot_template_add(struct hd_res *r, json_t *body, json_t **out, struct hd_err *err);
/* What a guest restored from a snapshot is made of (store lock held). */
struct hd_snap_info {
    char tmpl[HD_NAME_MAX + 1];
    unsigned cpus;
    uint64_t mem;
    json_t *nics;               /* create-body NIC items (new reference) */
    bool seed;                  /* the source had a seed disk: clones attach its copy */
    bool resources;             /* and a resource disk (after the seed): its link too */
    bool ready;                 /* the source was ready when it was taken */
};
/* 404 naming field when there is none. */
int hd_snapshot_info(struct hd_store *st, const char *name, const char *field,
                     struct hd_snap_info *out, struct hd_err *err);

/* addr.c: guests' NIC addresses */
/* The NIC item's "ipv4" ("10.1.0.5/24", a host of its subnet), "gateway"
 * (another host of that subnet) and "ipv6" ("fd00:1::5/64") into nic, in
 * canonical form; all "" when absent. 400 naming FIELD.ipv4 etc. */
int hd_nic_addr_parse(json_t *item, const char *field, struct hd_nic *nic, struct hd_err *err);
/* Store lock held: 409 when a NIC of another guest than SELF on nic's
 * bridge has nic's IPv4 or IPv6 address. */
int hd_nic_addr_conflict(struct hd_store *st, const struct hd_nic *nic, const char *self,
                         const char *field, struct hd_err *err);
/* Store lock held: the IPv4 addresses guests hold, for range_addr_plan (its
 * strings point into the records: use it before unlocking; free() it).
 * NULL when out of memory. */
struct range_held *hd_addr_held(struct hd_store *st, const char *range, size_t *n);

/* seed.c: a guest's cloud-init NoCloud seed disk (STATE/vms/NAME/seed.iso) */
int hd_seed_init(void);          /* libisofs, once at start (main.c) */
void hd_seed_finish(void);
/* An API body's "cloud_init" object: 400 naming the field when it is not
 * {hostname, ssh_authorized_keys (OpenSSH public keys), runcmd}. */
int hd_seed_check(json_t *ci, struct hd_err *err);
void hd_seed_path(const struct hd_vm *vm, char *out, size_t size);
/* {"meta-data", "user-data", "network-config"}: the seed's files (text). */
json_t *hd_seed_docs(const struct hd_vm *vm);
/* Writes vm's seed.iso (0400 under herdd's umask) from its record: cloud_init, NICs, addresses. */
int hd_seed_write(const struct hd_vm *vm, struct hd_err *err);
void hd_seed_remove(const struct hd_vm *vm);

/* dhcp.c: DHCPv4 servers of range scopes with `dhcp: true`: one dnsmasq
 * each, in its own network namespace, on the scope's bridge by a veth pair
 * (docs/ranges.md "DHCP"). */
#define HD_DNSMASQ "/usr/sbin/dnsmasq"
#define HD_DHCP_IFNAME "eth0"   /* the veth's end in the server's namespace */
struct hd_dhcp_scope {
    const char *range;
    const char *bridge;
    struct ipam_net net;         /* the scope's IPv4 subnet */
    struct ipam_addr server;     /* range_subnet.dhcp_server */
    bool has_gateway;
    struct ipam_addr gateway;
    const char *hosts;           /* "dhcp-host=MAC,IPV4,NAME,infinite\n" lines */
};
int hd_dhcp_available(void);     /* 0, or -errno: HD_DNSMASQ is not executable */
/* Starts the scope's server; *rec: {bridge, veth, pid, conf, log}, what
 * hd_dhcp_stop needs (kept in the range's record). 0, or -1 with err. */
int hd_dhcp_start(const struct hd_config *cfg, const struct hd_dhcp_scope *sc, json_t **rec,
                  struct hd_err *err);
/* Stops it (only the dnsmasq its conf names: a reused pid is left alone),
 * deletes its veth pair and files. Safe on a record of a dead server. */
void hd_dhcp_stop(json_t *rec);
bool hd_dhcp_running(json_t *rec);

/* resdisk.c: a range's resource disks (docs/ranges.md "Resource disk"):
 * STATE/ranges/RANGE/resources.iso (range-wide) and resources-SCENARIO.iso,
 * ISO 9660 images labelled HERD_RES built from a directory, or a raw image
 * file attached as it is. Both must lie in image_dirs. */
#define HD_RESDISK_LABEL "HERD_RES"            /* its ISO 9660 volume id */
#define HD_RESDISK_MOUNT "/mnt/herd-resources" /* where the seed mounts it */
struct hd_resdisk {
    char field[48];           /* "resources", "scenarios[3].resources" */
    char path[4096];          /* what its guests attach */
    char tmp[4112];           /* a built image not yet in place; "" when none */
};
/* Checks src for the scope (scenario NULL: range-wide) and, for a
 * directory, builds its image under a temporary name. 400 naming field
 * when src is not fit; on failure nothing is left. No lock held (slow). */
int hd_resdisk_prepare(const struct hd_config *cfg, const char *range, const char *scenario,
                       const char *src, const char *field, struct hd_resdisk *d,
                       struct hd_err *err);
/* The built image to its place (replacing an earlier one), or discarded. */
int hd_resdisk_commit(struct hd_resdisk *d, struct hd_err *err);
void hd_resdisk_discard(struct hd_resdisk *d);
/* STATE/ranges/RANGE into out, made (0700) with STATE/ranges when missing:
 * where a range's images and DHCP files live. 0, or 500 naming field. */
int hd_range_state_dir(const struct hd_config *cfg, const char *range, char *out, size_t size,
                       const char *field, struct hd_err *err);
/* range down: the range's images and then its directory. */
void hd_resdisk_remove(const struct hd_config *cfg, const char *range);

/* console.c: console output from a byte offset, and input to the guest. */
json_t *hd_vm_console_read(struct hd_store *st, const char *name, long long offset,
                           struct hd_err *err);
int hd_vm_console_input(struct hd_store *st, const char *name, json_t *body, json_t **out,
                        struct hd_err *err);
/* The console pipe. start: a fresh log and FIFO before a spawn (fifo = the
 * path for --serial file:); adopt: the FIFO of a running guest started by a
 * herdd with console pipes (false if it has none); drain: what herd-vmm
 * wrote, into console.log, capped at cfg's console_log_max (called every
 * 20 ms, store lock held); finish: the last bytes, then the fds closed. */
int hd_console_start(const struct hd_config *cfg, struct hd_vm *vm, char *fifo,
                     size_t fifo_len, struct hd_err *err);
bool hd_console_adopt(struct hd_vm *vm);
/* Bytes moved from the pipe to console.log (at most CONSOLE_DRAIN_MAX), -1
 * when the pipe is at its end (no writer) with nothing read, 0 when it has
 * nothing now or is not open. */
ssize_t hd_console_drain(const struct hd_config *cfg, struct hd_vm *vm);
void hd_console_finish(const struct hd_config *cfg, struct hd_vm *vm);
/* Up to len console bytes from console offset *off (console.log.1 and
 * console.log together; *off is moved to the oldest byte kept when older,
 * to 0 when past the end: a restarted guest's new log). Store lock held. */
ssize_t hd_console_pread(const struct hd_vm *vm, uint64_t *off, char *buf, size_t len);

/* node.c */
json_t *hd_node_json(struct hd_res *r);
/* What the cluster's node profile holds (docs/cluster.md): CPUs, memory,
 * disk, the limits and their use, and per template how many more guests of
 * its shape fit now ("fits", null when unbounded) and which limit binds.
 * Takes the store lock. */
json_t *hd_node_capacity(struct hd_res *r);
int hd_node_plan(struct hd_res *r, const char *yaml, size_t len, json_t **out,
                 struct hd_err *err);
/* Admission: may a guest with cpus/mem start now? (store lock held) */
int hd_admit(struct hd_res *r, unsigned cpus, uint64_t mem, unsigned count,
             struct hd_err *err);
struct cap_item;
int hd_admit_many(struct hd_res *r, const struct cap_item *items, size_t n,
                  struct hd_err *err); /* store lock held */

/* jail.c: herd-vmm confinement (docs/security.md) */
/* State dir modes, umask, cgroup detection (one log line when degraded),
 * herd-vmm's environment. */
int hd_jail_init(struct hd_res *r, struct hd_err *err);
/* Store lock held: a free uid of guest_uids for vm (lowest not held by a guest). */
int hd_uid_alloc(struct hd_res *r, struct hd_vm *vm, struct hd_err *err);
/* STATE/run/ID: owned by the guest's uid, mode 0700 (its control socket). */
int hd_run_dir_prepare(const struct hd_vm *vm, struct hd_err *err);
void hd_run_dir_remove(const struct hd_vm *vm);
/* The guest's cgroup with its limits; leaves vm->cgroup "" when cgroups are
 * not usable. Never fails a start because of the host. */
void hd_cgroup_prepare(struct hd_res *r, struct hd_vm *vm);
/* A re-adopted guest: its group, if it has one. */
void hd_cgroup_adopt(struct hd_res *r, struct hd_vm *vm);
/* After herd-vmm has exited: kill what is left, rmdir. */
void hd_cgroup_release(struct hd_res *r, struct hd_vm *vm);
/* Store lock held, after herd-vmm has ended and before hd_cgroup_release:
 * reads its group's memory.events and pids.events into vm (limit: an OOM
 * kill in memory.max, or a fork refused by pids.max), logs a limit that was
 * hit and announces it (vm.limit). Returns true when a limit was hit. */
bool hd_cgroup_limits(struct hd_store *st, struct hd_vm *vm);
/* Its audit entry; without the store lock (the audit anchor takes it). */
void hd_limit_audit(struct hd_store *st, uid_t uid, const char *name, const char *limit);
/* Discards (and with wipe_overlays: zero, overwrites) a file's data, then
 * unlinks it. */
void hd_overlay_wipe_unlink(const struct hd_config *cfg, const char *path);
/* herd-vmm's environment: PATH plus the vmm_env names herdd itself has. */
char *const *hd_vmm_env(struct hd_res *r);
/* Store lock held, after an exit was recorded: a seccomp kill (status 6 and
 * the line in vmm.log) is recorded as a possible escape attempt. Returns
 * true when it was one. */
bool hd_escape_check(struct hd_store *st, struct hd_vm *vm);
/* Its audit entry; without the store lock (the audit anchor takes it). */
void hd_escape_audit(struct hd_store *st, uid_t uid, const char *name, const char *line);

/* ---- layer 3: guests (vm.c) ---------------------------------------------- */
/* Supervision registers its hook here (main.c wires it): vm.c calls it for
 * each herd-vmm it spawns (store lock held; -1 fails the start). */
typedef int (*hd_spawn_hook)(void *arg, struct hd_vm *vm);
struct hd_guests {
    struct hd_res *res;
    struct hd_store *st;         /* res->st */
    const struct hd_config *cfg; /* res->cfg */
    pthread_mutex_t fd_mu;       /* descriptor creation around posix_spawn */
    hd_spawn_hook spawn_hook;
    void *spawn_arg;
};
void hd_guests_init(struct hd_guests *gs, struct hd_res *r);
void hd_vm_set_spawn_hook(struct hd_guests *gs, hd_spawn_hook hook, void *arg);
/* body: {"name", "template", "cpus"?, "mem"?, "nics"?, "restart"?, "start"?,
 * "cloud_init"?}. range and resources are NULL for the API's guests: a
 * range's guests get their range's name and its resource disk (a path
 * resdisk.c made or checked; never one from an API body). A guest with a
 * resource disk always gets a seed (it mounts the disk). */
int hd_vm_create(struct hd_guests *gs, json_t *body, const char *range, const char *resources,
                 json_t **out, struct hd_err *err);
int hd_vm_action(struct hd_guests *gs, const char *name, const char *action, json_t *opts,
                 json_t **out, struct hd_err *err);
int hd_vm_rm(struct hd_guests *gs, const char *name, bool force, struct hd_err *err);
int hd_vm_reset(struct hd_guests *gs, const char *name, struct hd_err *err);
/* POST /v1/vms/NAME/restore {"snapshot"}: the guest back to snapshot snap
 * (its RAM, devices and disk: a fresh overlay over the snapshot's copy),
 * keeping its own NICs, MACs, uid and seed; started again if it ran. The
 * snapshot must be of its template, shape, NIC count and seed disk (409
 * "snapshot" naming what differs); a reset later goes back to its origin. */
int hd_vm_restore(struct hd_guests *gs, const char *name, const char *snap, struct hd_err *err);
/* POST /v1/vms/NAME/snapshot (docs/snapshot.md "herdd"): pause, snapshot,
 * stop (herd-vmm flushes the overlay), copy the disk, and the guest goes on
 * from the snapshot (--restore-mem copy) on its own overlay, taps and MAC;
 * paused again if it was. On failure nothing of the snapshot is left. */
/* A range checkpoint's snapshot (checkpoint.c): its name and how many
 * guests the checkpoint has (a checkpoint with fewer snapshots was cut). */
struct hd_cp_tag {
    const char *name;
    unsigned of;
};
int hd_vm_snapshot(struct hd_guests *gs, const char *name, json_t *body,
                   const struct hd_cp_tag *cp, json_t **out, struct hd_err *err);
json_t *hd_vm_logs(struct hd_guests *gs, const char *name, const char *which, long lines,
                   struct hd_err *err);
/* GET /v1/vms/NAME/net: per NIC, the kernel filter's counters and policy
 * (netdev_kfilter_stats), read from the host kernel. */
json_t *hd_vm_net(struct hd_guests *gs, const char *name, struct hd_err *err);
/* Store lock held: the new state, written through, announced, changed
 * broadcast. */
void hd_vm_set_state(struct hd_store *st, struct hd_vm *vm, const char *state,
                     const char *note);
void hd_vm_free(const struct hd_config *cfg, struct hd_vm *vm);
/* Removes what a "creating" record left behind (herdd died mid-create). */
void hd_vm_discard_partial(struct hd_guests *gs, struct hd_vm *vm);

/* ---- layer 4: supervision (supervise.c) and ranges (ranges.c) ------------ */
struct hd_super {
    struct hd_guests *gs;
    int epfd;                    /* pidfds of supervised guests */
    pthread_t thread;
    bool running;
};
/* epfd made; 0, or -1 with errno. */
int hd_super_init(struct hd_super *sv, struct hd_guests *gs);
int hd_supervise_start(struct hd_super *sv);
void hd_supervise_stop(struct hd_super *sv);
/* The spawn hook (arg: the struct hd_super): registers vm->pidfd. Store
 * lock held. */
int hd_supervise_add(void *sv, struct hd_vm *vm);
void hd_supervise_del(struct hd_super *sv, struct hd_vm *vm); /* store lock held */
void hd_adopt_all(struct hd_super *sv);      /* at start, before the API opens */
/* The state dir's free space against storage_alarm (store lock not held). */
void hd_storage_check(struct hd_res *r);
/* Measures the resident memory (Pss) of the running guests whose measure is
 * older than 5 s, reading /proc without the store lock (node.c); the
 * supervisor calls it every second. */
void hd_resident_refresh(struct hd_res *r);

struct hd_range_job;
struct hd_ranges {
    struct hd_guests *gs;
    struct hd_range_job *jobs;   /* running up jobs, store lock */
};
void hd_ranges_init(struct hd_ranges *rg, struct hd_guests *gs);

/* ranges_dhcp.c: a range's DHCP servers (dhcp.c), from its address plan. */
struct hd_range_plan {
    const char *name;
    const struct range_spec *spec;
    const struct range_guest *guests;
    size_t n;
    const struct range_nic_addr *addrs; /* guest g's NIC k at g * RANGE_NICS_MAX + k */
};
/* Before anything is created (store lock held): dnsmasq is there, each
 * dhcp scope has a bridge here that no other range serves. 0, or -1. */
int hd_range_dhcp_check(struct hd_store *st, const char *range, const struct range_spec *spec,
                        struct hd_err *err);
/* Stops the servers of old (an earlier `up`'s records, may be NULL) and
 * starts one per dhcp scope: their records (JSON array), or NULL with err
 * and none left running. Store lock not held. */
json_t *hd_range_dhcp_start(struct hd_store *st, const struct hd_range_plan *p, json_t *old,
                            struct hd_err *err);
/* After the guests are created: restarts a server whose leases changed
 * (a NIC's MAC is not the predicted one) or that died; the new records. */
json_t *hd_range_dhcp_refresh(struct hd_store *st, const struct hd_range_plan *p, json_t *recs);
void hd_range_dhcp_stop(json_t *recs);
int hd_range_up(struct hd_ranges *rg, const char *yaml, size_t len, json_t **out,
                struct hd_err *err);
int hd_range_down(struct hd_ranges *rg, const char *name, json_t **out, struct hd_err *err);
/* Resets the range's guests (fresh overlays, a new seed instance-id, started
 * again): all, or those sel's "vms" names (each one of the range's; sel may
 * be NULL). 400 with the field for a bad selection, nothing reset. */
int hd_range_reset(struct hd_ranges *rg, const char *name, json_t *sel, json_t **out,
                   struct hd_err *err);
/* checkpoint.c: range checkpoints (docs/snapshot.md "Range checkpoints").
 * take: POST /v1/ranges/NAME/checkpoints {"name"}: every guest of the range
 * paused, snapshotted (RANGE.CP.N, tagged with the checkpoint), resumed;
 * all or none. 409 unless every guest runs or is paused; 409 "name" when
 * taken. The callers check that no `up` of the range runs (ranges.c). */
int hd_checkpoint_take(struct hd_guests *gs, const char *range, json_t *body, json_t **out,
                       struct hd_err *err);
json_t *hd_checkpoint_list(struct hd_guests *gs, const char *range, struct hd_err *err);
/* Removes checkpoint cp's snapshots: 409 while a guest stands on one. */
int hd_checkpoint_rm(struct hd_guests *gs, const char *range, const char *cp, struct hd_err *err);
/* range down: every checkpoint of the range removed (its guests gone). */
void hd_checkpoint_drop_all(struct hd_guests *gs, const char *range);
/* At start, after re-adoption: a checkpoint herdd was taking when it died is
 * undone (its snapshots removed, the guests it paused resumed). */
void hd_checkpoint_recover(struct hd_guests *gs);
/* Store lock held: {guest: snapshot} of checkpoint cp; 404 "to" if none. */
json_t *hd_checkpoint_map(struct hd_store *st, const char *range, const char *cp,
                          struct hd_err *err);
/* ranges.c: hd_checkpoint_take and _rm, refused (409) while an `up` of the
 * range runs. */
int hd_range_checkpoint(struct hd_ranges *rg, const char *range, json_t *body, json_t **out,
                        struct hd_err *err);
int hd_range_checkpoint_rm(struct hd_ranges *rg, const char *range, const char *cp,
                           struct hd_err *err);
json_t *hd_range_status(struct hd_ranges *rg, const char *name, struct hd_err *err);
json_t *hd_range_list(struct hd_ranges *rg);
void hd_ranges_resume(struct hd_ranges *rg);

/* cluster.c: the node's profile in etcd under a lease kept alive by a thread
 * of its own (docs/cluster.md). Not in a cluster (no cluster: section):
 * etcd is NULL and nothing runs. */
#define HD_CLUSTER_NODES "/herd/nodes/"  /* + node name: its profile (JSON) */
#define HD_CLUSTER_IMAGES "/herd/images/" /* + template/node: a copy's entry (cluster_images.c) */
#define HD_CLUSTER_RANGES "/herd/ranges/" /* + range: the range (cluster_range.c) */
#define HD_CLUSTER_ASSIGN "/herd/assign/" /* + NODE/RANGE/GUEST: a guest's placement */
#define HD_CLUSTER_STATUS "/herd/status/" /* + RANGE/GUEST: its node's report */
#define HD_CLUSTER_PLACER "/herd/placer"  /* the placer's election key */
struct etcd;
struct hd_images;
struct hd_cluster {
    struct hd_res *res;
    struct hd_guests *gs;          /* the reconciler's (cluster_reconcile.c) */
    const struct hd_config *cfg;   /* res->cfg */
    struct etcd *etcd;             /* the keepalive thread's; NULL: not in a cluster */
    struct etcd *etcd_api;         /* the API's reads (a connection of their own) */
    struct etcd *etcd_rec;         /* the reconcile thread's: its watch and writes */
    pthread_t rec_thread;
    bool rec_running;
    char key[sizeof(HD_CLUSTER_NODES) + HD_NAME_MAX];
    char lease_file[4200];         /* STATE/cluster.lease: the lease last held */
    pthread_t thread;              /* keepalive_main, cl as its argument */
    bool running;
    pthread_mutex_t mu;            /* what follows */
    pthread_cond_t cond;           /* CLOCK_MONOTONIC; stop */
    bool stop;
    bool registered;
    int64_t lease;                 /* the lease held (or last held: lost) */
    int64_t granted_ttl;
    int64_t renewed_ms;            /* monotonic ms of the last renewal */
    unsigned registrations;
    char last_error[512];
    int64_t error_logged_ms;       /* when an error was last logged; 0: none since a success */
    int error_logged_code;         /* that error's errno (another one is logged at once) */
    char *written;                 /* the profile as last written */
    int64_t written_ms;
    json_t *assigned;              /* this node's assigned guests {name: true}; replaced
                                    * whole by the reconciler, never changed in place */
    int64_t rec_revision;          /* the revision the assignments are known at */
    unsigned rec_lists;            /* full lists of the assignments so far */
    char rec_error[512];           /* the reconciler's last trouble, "" after a list */
    unsigned placements;           /* placer keys taken by this herdd (each's value is
                                    * "NODE #N": this call's, not another's) */
    struct hd_images *img;         /* parent images across nodes (cluster_images.c) */
};
/* Registers the node (a lease and the profile on it; 409 when another live
 * node holds the name) and starts the keepalive thread. When etcd cannot
 * be reached herdd starts unregistered and the thread keeps trying.
 * Without a cluster: section, 0 and nothing done. */
int hd_cluster_start(struct hd_cluster *cl, struct hd_guests *gs, struct hd_err *err);
/* Stops the thread and revokes the lease: the node's key is gone at once. */
void hd_cluster_stop(struct hd_cluster *cl);
/* GET /v1/cluster/nodes and /v1/cluster/status; NULL with err (409: not
 * in a cluster, 503: etcd unreachable). */
json_t *hd_cluster_nodes(struct hd_cluster *cl, struct hd_err *err);
json_t *hd_cluster_status(struct hd_cluster *cl, struct hd_err *err);
/* cluster_reconcile.c: the thread that makes this node's guests match its
 * assignments and writes their status back (started by hd_cluster_start,
 * stopped by hd_cluster_stop); the running assigned guests' use for the
 * profile ({guests, vcpus, mem}). */
int hd_cluster_reconcile_start(struct hd_cluster *cl);
/* cluster_images.c: parent images across nodes (docs/cluster.md "Parent
 * images"): this node's templates published and served, copies of the
 * others' fetched and verified. start: 0 or -errno; stop: threads joined.
 * ready: may a guest of template tmpl be made now? 0 yes (the node's own
 * template, or a verified copy); 1 not yet (a copy is being fetched or
 * checked: note says so, for the guest's status); -1 never as things are
 * (err: the copy was refused). catalog: {template: {cpus, mem, from}} of
 * the published templates, for the placer; status: cluster status's
 * `images`. */
int hd_images_start(struct hd_cluster *cl);
void hd_images_stop(struct hd_cluster *cl);
int hd_images_ready(struct hd_cluster *cl, const char *tmpl, char *note, size_t note_size,
                    struct hd_err *err);
json_t *hd_images_catalog(struct etcd *e);
json_t *hd_images_status(struct hd_cluster *cl);
json_t *hd_cluster_assigned_use(struct hd_cluster *cl);
/* cluster_range.c (up, reset, down) and cluster_view.c (status, ls): ranges
 * on the cluster (docs/cluster.md "Ranges").
 * up: 1 when this node is not in a cluster (the node's own ranges.c
 * answers), else 0 (out: the placement) or -1 (err: 400/409 naming the
 * field and limit, 503 etcd). status: NULL with err untouched when the
 * range is not on the cluster (or the node is not in one). down: 1 when
 * not on the cluster, 0 (out) or -1. */
int hd_cluster_range_up(struct hd_cluster *cl, const char *yaml, size_t len, json_t **out,
                        struct hd_err *err);
json_t *hd_cluster_range_status(struct hd_cluster *cl, const char *name, struct hd_err *err);
int hd_cluster_range_down(struct hd_cluster *cl, const char *name, json_t **out,
                          struct hd_err *err);
/* A range with on_node_loss: replace: its guests on nodes that are gone
 * placed anew (the placer's key held). 0 when done or nothing to do (keep,
 * no such range, refused for room: a range.replace_failed event); -1 with
 * err (503) when etcd failed: try again. */
int hd_cluster_replace_lost(struct hd_cluster *cl, const char *range, struct hd_err *err);
/* range reset of a range on the cluster: each guest's assignment marked
 * (its node resets it); sel as hd_range_reset's. 1 when not on the
 * cluster, 0 (out) or -1 (400 naming the field, 503). */
int hd_cluster_range_reset(struct hd_cluster *cl, const char *name, json_t *sel, json_t **out,
                           struct hd_err *err);
/* `range ls`: the cluster's ranges appended to list (counts, no guests);
 * nothing when not in a cluster or etcd cannot be read. */
void hd_cluster_range_list(struct hd_cluster *cl, json_t *list);

/* ---- layer 5: the API (api.c) -------------------------------------------- */
struct MHD_Daemon;
struct hd_uid_count;
struct hd_api {
    struct hd_guests *gs;
    struct hd_ranges *rg;
    struct hd_cluster *cluster;
    struct hd_res *res;          /* gs->res */
    struct hd_store *st;         /* gs->st */
    const struct hd_config *cfg; /* gs->cfg */
    struct MHD_Daemon *daemon;
    int listen_fd;
    pthread_mutex_t uid_counts_mu;
    struct hd_uid_count *uid_counts; /* open connections per caller uid */
};
int hd_api_start(struct hd_api *api, struct hd_ranges *rg, struct hd_guests *gs,
                 struct hd_cluster *cl, struct hd_err *err);
void hd_api_stop(struct hd_api *api);

/* ---- layer 6: main.c owns it all ----------------------------------------- */
struct herdd {
    struct hd_config cfg;
    struct hd_store st;
    struct hd_res res;
    struct hd_guests gs;
    struct hd_super sv;
    struct hd_ranges rg;
    struct hd_cluster cl;
    struct hd_api api;
};

#endif
