/*
 * capacity: node profile, admission control and planning as pure functions
 * (plus capacity_read_node(), which reads the host).
 *
 * Limits (all four are checked; the first one crossed is reported):
 *   vCPU:     committed vCPUs  <= floor(node cpus * vcpu_overcommit)
 *   memory:   committed bytes  <= floor(mem_total * mem_threshold * mem_overcommit);
 *             a guest commits its memory plus vmm_overhead (what its
 *             cgroup's memory.max allows it). mem_overcommit 1: none.
 *   resident: resident bytes   <= floor(mem_total * mem_threshold), where
 *             the running guests count what they hold now (use->resident:
 *             measured, e.g. the Pss of each herd-vmm, which counts pages
 *             shared by guests restored from one snapshot once) and each
 *             new guest counts its commitment / mem_overcommit (what the
 *             operator expects a guest to touch).
 *   disk:     disk_free - new overlays * overlay_initial >= disk_floor
 * With mem_overcommit 1 the resident limit never binds before the memory
 * one. Above 1 the node may run out of memory when guests touch more than
 * 1 / mem_overcommit of their RAM (docs/herdd.md "Capacity").
 * A limit is only checked when the request adds to it (a request for 0
 * guests is always admitted, even on an over-committed node).
 * All arithmetic is overflow-safe (saturating 64-bit / 128-bit products):
 * a huge count is refused, never wrapped into a small number.
 *
 * Messages name the limit, e.g.
 *   "vCPU overcommit 4.0 would be exceeded: 130 of 128 vCPUs (32 CPUs, 120 in use, 10 requested)"
 *   "memory threshold 0.9 would be exceeded: 60.0 GiB of 57.6 GiB (0.9 of 64.0 GiB)"
 *   "memory overcommit 4.0 would be exceeded: 240.0 GiB committed of 230.4 GiB (4.0 x 0.9 of 64.0 GiB)"
 *   "resident memory would pass threshold 0.9: 50.0 GiB held + 10.0 GiB expected of 57.6 GiB (0.9 of 64.0 GiB)"
 *   "disk floor 1.0 GiB would be crossed: 1.2 GiB needed, 1.5 GiB free"
 */
#ifndef HERD_CAPACITY_H
#define HERD_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cap_node {
    unsigned cpus;          /* online CPUs */
    uint64_t mem_total;     /* bytes (MemTotal) */
    uint64_t mem_available; /* bytes (MemAvailable); informational */
    uint64_t disk_total;    /* bytes of the state dir's filesystem */
    uint64_t disk_free;     /* bytes available to unprivileged users (f_bavail) */
};

struct cap_policy {
    double vcpu_overcommit;   /* e.g. 4.0; > 0 */
    double mem_threshold;     /* fraction of mem_total, e.g. 0.9; (0, 1] */
    double mem_overcommit;    /* committed memory per byte of the limit; (0, 100], 1 = none */
    uint64_t vmm_overhead;    /* bytes per guest on top of its memory */
    uint64_t overlay_initial; /* bytes of disk per new overlay */
    uint64_t disk_floor;      /* bytes that must stay free; 0 = none */
};

/* What running/created guests already commit. */
struct cap_use {
    uint64_t vcpus;
    uint64_t mem;           /* guest memory + overhead, bytes */
    uint64_t guests;
    uint64_t resident;      /* bytes the running guests hold now (measured) */
};

/* (template, cpus, mem, count): count guests of cpus vCPUs and mem bytes. */
struct cap_item {
    const char *template_name;
    unsigned cpus;
    uint64_t mem;
    uint64_t count;
    bool has_overlay;       /* already created (a start): needs no new disk */
};

enum cap_limit {
    CAP_LIMIT_NONE,   /* fits / unbounded */
    CAP_LIMIT_VCPU,
    CAP_LIMIT_MEM,
    CAP_LIMIT_DISK,
    CAP_LIMIT_RESIDENT,
};

/* Defaults: 4.0, 0.9, 1.0, 16 MiB, 1 MiB, 0. */
void cap_policy_default(struct cap_policy *p);
/* -EINVAL (msg says which) for a ratio <= 0 or NaN (vcpu_overcommit above
 * 1000, mem_overcommit above 100), a threshold outside (0,1]. */
int cap_policy_check(const struct cap_policy *p, char *msg, size_t msglen);

/* The limits themselves. */
uint64_t cap_vcpu_limit(const struct cap_node *node, const struct cap_policy *p);
/* mem_total * mem_threshold: what the guests may hold resident */
uint64_t cap_mem_limit(const struct cap_node *node, const struct cap_policy *p);
/* cap_mem_limit * mem_overcommit: what the guests may commit */
uint64_t cap_commit_limit(const struct cap_node *node, const struct cap_policy *p);
/* What a new guest is expected to hold: cap_guest_mem(mem, count) / mem_overcommit. */
uint64_t cap_guest_resident(const struct cap_policy *p, uint64_t mem, uint64_t count);
/* Guests' memory commitment: count * (mem + vmm_overhead), saturating. */
uint64_t cap_guest_mem(const struct cap_policy *p, uint64_t mem, uint64_t count);

/* Admission of starting/creating every item of req on top of use.
 * 0: admitted (*limit = CAP_LIMIT_NONE). -ENOSPC: refused, *limit (may be
 * NULL) says which, msg (may be NULL) says why in one line.
 * -EINVAL: bad policy or an item with cpus == 0 / mem == 0 (msg says). */
int cap_admit(const struct cap_node *node, const struct cap_policy *p,
              const struct cap_use *use, const struct cap_item *req, size_t n,
              enum cap_limit *limit, char *msg, size_t msglen);

/* Plan: for each item, alone on top of use, how many more guests of that
 * shape fit and which limit binds (the one that allows the fewest); and
 * whether the whole request (every item's count together) fits. */
struct cap_plan_row {
    uint64_t fits;          /* more guests of this shape that fit; UINT64_MAX if unbounded */
    enum cap_limit binds;   /* limit that stops the next one */
    uint64_t by_vcpu, by_mem, by_disk; /* per limit; UINT64_MAX if unbounded */
    uint64_t by_resident;
};
struct cap_plan {
    size_t n;
    struct cap_plan_row *rows;    /* n rows, parallel to req; malloc'd */
    int admit_rc;                 /* cap_admit() of the whole request */
    enum cap_limit admit_limit;
    char admit_msg[256];
    uint64_t vcpu_limit, mem_limit;   /* cap_vcpu_limit / cap_mem_limit */
    uint64_t commit_limit;            /* cap_commit_limit */
    uint64_t req_vcpus, req_mem, req_disk; /* the whole request, saturating */
    uint64_t req_resident;            /* the whole request's expected resident bytes */
};
int cap_plan(const struct cap_node *node, const struct cap_policy *p,
             const struct cap_use *use, const struct cap_item *req, size_t n,
             struct cap_plan *out);
void cap_plan_free(struct cap_plan *plan);

/* "none", "vcpu", "memory", "disk", "resident" */
const char *cap_limit_name(enum cap_limit l);

/* Reads <proc_root>/meminfo (MemTotal, MemAvailable), the online CPU count
 * (sysconf; with a proc_root other than NULL/"/proc", the "processor" lines
 * of <proc_root>/cpuinfo) and statvfs(dir) (skipped when dir is NULL).
 * proc_root NULL means "/proc". 0 or a negative errno (-EPROTO for a
 * meminfo without MemTotal). */
int capacity_read_node(const char *proc_root, const char *dir,
                       struct cap_node *out);

/* "1.5 GiB", "64.0 MiB", "512 B" into buf. */
const char *cap_fmt_bytes(char *buf, size_t len, uint64_t bytes);

#endif
