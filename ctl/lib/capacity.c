/*
 * capacity: node profile, admission control and planning. Pure functions
 * except capacity_read_node(). All sums and products saturate at UINT64_MAX,
 * and a saturated total is always refused (even against an "unlimited"
 * limit of UINT64_MAX), so a huge request never wraps into a small one. See herd/capacity.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "herd/capacity.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* floor(a * f) for f >= 0, clamped to 0..UINT64_MAX. */
static uint64_t scale(uint64_t a, double f)
{
    if (!(f > 0))
        return 0;
    long double v = floorl((long double)a * (long double)f);
    if (v >= 18446744073709551615.0L)
        return UINT64_MAX;
    return (uint64_t)v;
}

void cap_policy_default(struct cap_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->vcpu_overcommit = 4.0;
    p->mem_threshold = 0.9;
    p->mem_overcommit = 1.0;
    p->vmm_overhead = 16ULL << 20;
    p->overlay_initial = 1ULL << 20;
    p->disk_floor = 0;
}

int cap_policy_check(const struct cap_policy *p, char *msg, size_t msglen)
{
    if (!p || !isfinite(p->vcpu_overcommit) || p->vcpu_overcommit <= 0 ||
        p->vcpu_overcommit > 1000) {
        if (msg && msglen)
            snprintf(msg, msglen, "vcpu_overcommit must be a ratio in (0, 1000]");
        return -EINVAL;
    }
    if (!isfinite(p->mem_threshold) || p->mem_threshold <= 0 || p->mem_threshold > 1) {
        if (msg && msglen)
            snprintf(msg, msglen,
                     "mem_threshold must be a fraction in (0, 1] (mem_overcommit overcommits)");
        return -EINVAL;
    }
    if (!isfinite(p->mem_overcommit) || p->mem_overcommit <= 0 || p->mem_overcommit > 100) {
        if (msg && msglen)
            snprintf(msg, msglen, "mem_overcommit must be a ratio in (0, 100]");
        return -EINVAL;
    }
    return 0;
}

uint64_t cap_vcpu_limit(const struct cap_node *node, const struct cap_policy *p)
{
    return scale(node->cpus, p->vcpu_overcommit);
}

uint64_t cap_mem_limit(const struct cap_node *node, const struct cap_policy *p)
{
    double t = p->mem_threshold > 1 ? 1 : p->mem_threshold;
    return scale(node->mem_total, t);
}

uint64_t cap_commit_limit(const struct cap_node *node, const struct cap_policy *p)
{
    uint64_t m = cap_mem_limit(node, p);
    return m == UINT64_MAX ? m : scale(m, p->mem_overcommit);
}

uint64_t cap_guest_mem(const struct cap_policy *p, uint64_t mem, uint64_t count)
{
    return sat_mul(sat_add(mem, p->vmm_overhead), count);
}

/* ceil(commitment / mem_overcommit): a saturated commitment stays saturated */
uint64_t cap_guest_resident(const struct cap_policy *p, uint64_t mem, uint64_t count)
{
    uint64_t c = cap_guest_mem(p, mem, count);
    if (c == UINT64_MAX || !(p->mem_overcommit > 1))
        return c;
    long double v = ceill((long double)c / (long double)p->mem_overcommit);
    return (uint64_t)v;
}

const char *cap_limit_name(enum cap_limit l)
{
    switch (l) {
    case CAP_LIMIT_NONE: return "none";
    case CAP_LIMIT_VCPU: return "vcpu";
    case CAP_LIMIT_MEM:  return "memory";
    case CAP_LIMIT_DISK: return "disk";
    case CAP_LIMIT_RESIDENT: return "resident";
    }
    return "?";
}

const char *cap_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    long double v = (long double)bytes / 1024;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1Lf %s", v, units[u]);
    return buf;
}

/* "4.0", "2.5", "1.25", "0.9": at most two decimals, at least one. */
static const char *fmt_ratio(char *buf, size_t len, double r)
{
    snprintf(buf, len, "%.2f", r);
    size_t l = strlen(buf);
    if (l >= 4 && buf[l - 1] == '0' && buf[l - 3] == '.')
        buf[l - 1] = '\0';
    return buf;
}

/* Totals of a request. */
struct req_sum {
    uint64_t vcpus, mem, guests, disk, resident;
};

static int sum_request(const struct cap_policy *p, const struct cap_item *req, size_t n,
                       struct req_sum *s, char *msg, size_t msglen)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        const struct cap_item *it = &req[i];
        if (it->cpus == 0 || it->mem == 0) {
            if (msg && msglen)
                snprintf(msg, msglen, "template %s: %s is 0",
                         it->template_name ? it->template_name : "?",
                         it->cpus == 0 ? "cpus" : "mem");
            return -EINVAL;
        }
        s->vcpus = sat_add(s->vcpus, sat_mul(it->cpus, it->count));
        s->mem = sat_add(s->mem, cap_guest_mem(p, it->mem, it->count));
        s->resident = sat_add(s->resident, cap_guest_resident(p, it->mem, it->count));
        s->guests = sat_add(s->guests, it->count);
        if (!it->has_overlay)
            s->disk = sat_add(s->disk, sat_mul(p->overlay_initial, it->count));
    }
    return 0;
}

static bool crosses(uint64_t total, uint64_t limit)
{
    return total > limit || total == UINT64_MAX;
}

static enum cap_limit check_vcpu(const struct cap_node *node, const struct cap_policy *p,
                                 const struct cap_use *use, const struct req_sum *s, char *msg,
                                 size_t msglen)
{
    char r[16];
    uint64_t vlim = cap_vcpu_limit(node, p), vtot = sat_add(use->vcpus, s->vcpus);
    if (!s->vcpus || !crosses(vtot, vlim))
        return CAP_LIMIT_NONE;
    snprintf(msg, msglen,
             "vCPU overcommit %s would be exceeded: %llu of %llu vCPUs (%u CPUs, %llu in use, %llu requested)",
             fmt_ratio(r, sizeof(r), p->vcpu_overcommit), (unsigned long long)vtot,
             (unsigned long long)vlim, node->cpus, (unsigned long long)use->vcpus,
             (unsigned long long)s->vcpus);
    return CAP_LIMIT_VCPU;
}

/* committed memory against cap_commit_limit */
static enum cap_limit check_commit(const struct cap_node *node, const struct cap_policy *p,
                                   const struct cap_use *use, const struct req_sum *s,
                                   char *msg, size_t msglen)
{
    char r[16], o[16], a[32], b[32], c[32];
    uint64_t mlim = cap_commit_limit(node, p), mtot = sat_add(use->mem, s->mem);
    if (!s->mem || !crosses(mtot, mlim))
        return CAP_LIMIT_NONE;
    if (p->mem_overcommit == 1.0)
        snprintf(msg, msglen, "memory threshold %s would be exceeded: %s of %s (%s of %s)",
                 fmt_ratio(r, sizeof(r), p->mem_threshold), cap_fmt_bytes(a, sizeof(a), mtot),
                 cap_fmt_bytes(b, sizeof(b), mlim), r, cap_fmt_bytes(c, sizeof(c), node->mem_total));
    else
        snprintf(msg, msglen,
                 "memory overcommit %s would be exceeded: %s committed of %s (%s x %s of %s)",
                 fmt_ratio(o, sizeof(o), p->mem_overcommit), cap_fmt_bytes(a, sizeof(a), mtot),
                 cap_fmt_bytes(b, sizeof(b), mlim), o, fmt_ratio(r, sizeof(r), p->mem_threshold),
                 cap_fmt_bytes(c, sizeof(c), node->mem_total));
    return CAP_LIMIT_MEM;
}

/* what the guests hold now plus what the new ones are expected to */
static enum cap_limit check_resident(const struct cap_node *node, const struct cap_policy *p,
                                     const struct cap_use *use, const struct req_sum *s,
                                     char *msg, size_t msglen)
{
    char r[16], a[32], b[32], c[32], d[32];
    uint64_t lim = cap_mem_limit(node, p), tot = sat_add(use->resident, s->resident);
    if (!s->resident || !crosses(tot, lim))
        return CAP_LIMIT_NONE;
    snprintf(msg, msglen,
             "resident memory would pass threshold %s: %s held + %s expected of %s (%s of %s)",
             fmt_ratio(r, sizeof(r), p->mem_threshold), cap_fmt_bytes(a, sizeof(a), use->resident),
             cap_fmt_bytes(b, sizeof(b), s->resident), cap_fmt_bytes(c, sizeof(c), lim), r,
             cap_fmt_bytes(d, sizeof(d), node->mem_total));
    return CAP_LIMIT_RESIDENT;
}

static enum cap_limit check_disk(const struct cap_node *node, const struct cap_policy *p,
                                 const struct req_sum *s, char *msg, size_t msglen)
{
    char a[32], b[32], c[32];
    uint64_t room = node->disk_free > p->disk_floor ? node->disk_free - p->disk_floor : 0;
    if (!s->disk || !(s->disk > room || s->disk == UINT64_MAX))
        return CAP_LIMIT_NONE;
    snprintf(msg, msglen, "disk floor %s would be crossed: %s needed, %s free",
             cap_fmt_bytes(a, sizeof(a), p->disk_floor), cap_fmt_bytes(b, sizeof(b), s->disk),
             cap_fmt_bytes(c, sizeof(c), node->disk_free));
    return CAP_LIMIT_DISK;
}

/* 0 or -ENOSPC with *limit and msg: the first limit crossed, in the order
 * vCPU, memory, resident, disk. */
static int check_limits(const struct cap_node *node, const struct cap_policy *p,
                        const struct cap_use *use, const struct req_sum *s,
                        enum cap_limit *limit, char *msg, size_t msglen)
{
    char text[256];
    enum cap_limit l = check_vcpu(node, p, use, s, text, sizeof(text));
    if (l == CAP_LIMIT_NONE)
        l = check_commit(node, p, use, s, text, sizeof(text));
    if (l == CAP_LIMIT_NONE)
        l = check_resident(node, p, use, s, text, sizeof(text));
    if (l == CAP_LIMIT_NONE)
        l = check_disk(node, p, s, text, sizeof(text));
    if (limit)
        *limit = l;
    if (msg && msglen)
        snprintf(msg, msglen, "%s", l == CAP_LIMIT_NONE ? "" : text);
    return l == CAP_LIMIT_NONE ? 0 : -ENOSPC;
}

int cap_admit(const struct cap_node *node, const struct cap_policy *p,
              const struct cap_use *use, const struct cap_item *req, size_t n,
              enum cap_limit *limit, char *msg, size_t msglen)
{
    struct req_sum s;
    struct cap_use none = {0};
    if (limit)
        *limit = CAP_LIMIT_NONE;
    int rc = cap_policy_check(p, msg, msglen);
    if (rc)
        return rc;
    if ((rc = sum_request(p, req, n, &s, msg, msglen)))
        return rc;
    return check_limits(node, p, use ? use : &none, &s, limit, msg, msglen);
}

static uint64_t room_div(uint64_t limit, uint64_t used, uint64_t per)
{
    if (per == 0)
        return UINT64_MAX;
    return limit > used ? (limit - used) / per : 0;
}

int cap_plan(const struct cap_node *node, const struct cap_policy *p,
             const struct cap_use *use, const struct cap_item *req, size_t n,
             struct cap_plan *out)
{
    struct cap_use none = {0};
    memset(out, 0, sizeof(*out));
    if (!use)
        use = &none;
    int rc = cap_policy_check(p, out->admit_msg, sizeof(out->admit_msg));
    if (rc)
        return rc;
    struct req_sum s;
    if ((rc = sum_request(p, req, n, &s, out->admit_msg, sizeof(out->admit_msg))))
        return rc;
    out->rows = calloc(n ? n : 1, sizeof(*out->rows));
    if (!out->rows)
        return -ENOMEM;
    out->n = n;
    out->vcpu_limit = cap_vcpu_limit(node, p);
    out->mem_limit = cap_mem_limit(node, p);
    out->commit_limit = cap_commit_limit(node, p);
    out->req_vcpus = s.vcpus;
    out->req_mem = s.mem;
    out->req_disk = s.disk;
    out->req_resident = s.resident;
    uint64_t droom = node->disk_free > p->disk_floor ? node->disk_free - p->disk_floor : 0;
    for (size_t i = 0; i < n; i++) {
        struct cap_plan_row *row = &out->rows[i];
        row->by_vcpu = room_div(out->vcpu_limit, use->vcpus, req[i].cpus);
        row->by_mem = room_div(out->commit_limit, use->mem, cap_guest_mem(p, req[i].mem, 1));
        row->by_resident = room_div(out->mem_limit, use->resident,
                                    cap_guest_resident(p, req[i].mem, 1));
        row->by_disk = req[i].has_overlay ? UINT64_MAX : room_div(droom, 0, p->overlay_initial);
        row->fits = row->by_vcpu;
        row->binds = CAP_LIMIT_VCPU;
        if (row->by_mem < row->fits) {
            row->fits = row->by_mem;
            row->binds = CAP_LIMIT_MEM;
        }
        if (row->by_resident < row->fits) {
            row->fits = row->by_resident;
            row->binds = CAP_LIMIT_RESIDENT;
        }
        if (row->by_disk < row->fits) {
            row->fits = row->by_disk;
            row->binds = CAP_LIMIT_DISK;
        }
        if (row->fits == UINT64_MAX)
            row->binds = CAP_LIMIT_NONE;
    }
    out->admit_rc = check_limits(node, p, use, &s, &out->admit_limit, out->admit_msg,
                                 sizeof(out->admit_msg));
    return 0;
}

void cap_plan_free(struct cap_plan *plan)
{
    if (!plan)
        return;
    free(plan->rows);
    plan->rows = NULL;
    plan->n = 0;
}

/* ---- reading the node ---------------------------------------------------- */

static int read_meminfo(const char *path, struct cap_node *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[256];
    bool have_total = false, have_avail = false;
    uint64_t free_kb = 0;
    bool have_free = false;
    while (fgets(line, sizeof(line), f)) {
        char key[64];
        unsigned long long kb;
        if (sscanf(line, "%63[^:]: %llu", key, &kb) != 2)
            continue;
        uint64_t bytes = sat_mul(kb, 1024);
        if (strcmp(key, "MemTotal") == 0) {
            out->mem_total = bytes;
            have_total = true;
        } else if (strcmp(key, "MemAvailable") == 0) {
            out->mem_available = bytes;
            have_avail = true;
        } else if (strcmp(key, "MemFree") == 0) {
            free_kb = bytes;
            have_free = true;
        }
    }
    fclose(f);
    if (!have_total)
        return -EPROTO;
    if (!have_avail && have_free)
        out->mem_available = free_kb;
    return 0;
}

static unsigned count_cpuinfo(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[512];
    unsigned n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "processor", 9) == 0 && (line[9] == ' ' || line[9] == '\t' ||
                                                   line[9] == ':'))
            n++;
    }
    fclose(f);
    return n;
}

int capacity_read_node(const char *proc_root, const char *dir, struct cap_node *out)
{
    memset(out, 0, sizeof(*out));
    bool real = !proc_root || strcmp(proc_root, "/proc") == 0;
    const char *root = proc_root ? proc_root : "/proc";
    char path[4096];
    snprintf(path, sizeof(path), "%s/meminfo", root);
    int rc = read_meminfo(path, out);
    if (rc)
        return rc;
    unsigned cpus = 0;
    if (!real) {
        snprintf(path, sizeof(path), "%s/cpuinfo", root);
        cpus = count_cpuinfo(path);
    }
    if (cpus == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = n > 0 ? (unsigned)n : 1;
    }
    out->cpus = cpus;
    if (dir) {
        struct statvfs st;
        if (statvfs(dir, &st) < 0)
            return -errno;
        uint64_t frsize = st.f_frsize ? st.f_frsize : st.f_bsize;
        out->disk_total = sat_mul(st.f_blocks, frsize);
        out->disk_free = sat_mul(st.f_bavail, frsize);
    }
    return 0;
}
