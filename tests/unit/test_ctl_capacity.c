/* Unit tests: herd/capacity.h (admission control, planning, node profile). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "herd/capacity.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static const struct cap_node node32 = {
    .cpus = 32, .mem_total = 64 * GiB, .mem_available = 60 * GiB,
    .disk_total = 1000 * GiB, .disk_free = 500 * GiB,
};

static struct cap_policy pol(void)
{
    struct cap_policy p;
    cap_policy_default(&p);
    return p;
}

static void test_policy(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    char msg[256];
    assert_true(p.vcpu_overcommit == 4.0);
    assert_true(p.mem_threshold == 0.9);
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), 0);
    p.vcpu_overcommit = 0;
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "vcpu_overcommit"));
    p.vcpu_overcommit = NAN;
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), -EINVAL);
    p.vcpu_overcommit = -1;
    assert_int_equal(cap_policy_check(&p, NULL, 0), -EINVAL);
    p = pol();
    p.mem_threshold = 1.5; /* memory overcommit: refused */
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "mem_threshold"));
    p.mem_threshold = 0;
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), -EINVAL);
    p.mem_threshold = 1.0;
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), 0);
    /* admission refuses to run with a bad policy */
    p.mem_threshold = INFINITY;
    struct cap_item it = {"probe", 1, 64 * MiB, 1, false};
    assert_int_equal(cap_admit(&node32, &p, NULL, &it, 1, NULL, msg, sizeof(msg)), -EINVAL);
}

static void test_limits(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    assert_int_equal(cap_vcpu_limit(&node32, &p), 128);
    p.vcpu_overcommit = 1.5;
    struct cap_node n3 = {.cpus = 3};
    assert_int_equal(cap_vcpu_limit(&n3, &p), 4); /* floor(4.5) */
    assert_int_equal(cap_mem_limit(&node32, &p), (uint64_t)(64 * GiB * 9 / 10));
    struct cap_node huge = {.cpus = UINT32_MAX, .mem_total = UINT64_MAX};
    p.vcpu_overcommit = 1000;
    assert_int_equal(cap_vcpu_limit(&huge, &p), (uint64_t)UINT32_MAX * 1000);
    p.mem_threshold = 1.0;
    assert_true(cap_mem_limit(&huge, &p) == UINT64_MAX);
    p = pol();
    assert_int_equal(cap_guest_mem(&p, 64 * MiB, 10), 10 * 80 * MiB);
    assert_true(cap_guest_mem(&p, UINT64_MAX, 1) == UINT64_MAX);
    assert_true(cap_guest_mem(&p, 64 * MiB, UINT64_MAX) == UINT64_MAX);
    assert_int_equal(cap_guest_mem(&p, 64 * MiB, 0), 0);
}

static void test_admit_vcpu(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    p.vmm_overhead = 0;
    char msg[256];
    enum cap_limit l;
    struct cap_use use = {.vcpus = 120, .mem = 0};
    /* exactly at the limit: 120 + 8 = 128 */
    struct cap_item it = {"probe", 2, 64 * MiB, 4, false};
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), 0);
    assert_int_equal(l, CAP_LIMIT_NONE);
    assert_string_equal(msg, "");
    /* one over: 130 */
    it.count = 5;
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_VCPU);
    assert_non_null(strstr(msg, "vCPU overcommit 4.0 would be exceeded: 130 of 128 vCPUs"));
    /* several items add up */
    struct cap_item two[] = {{"a", 1, 64 * MiB, 4, false}, {"b", 4, 64 * MiB, 1, false}};
    assert_int_equal(cap_admit(&node32, &p, &use, two, 2, &l, msg, sizeof(msg)), 0);
    two[0].count = 5;
    assert_int_equal(cap_admit(&node32, &p, &use, two, 2, &l, msg, sizeof(msg)), -ENOSPC);
    assert_non_null(strstr(msg, "129 of 128"));
    /* a ratio with decimals */
    p.vcpu_overcommit = 1.25;
    use.vcpus = 40;
    it.count = 1;
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_non_null(strstr(msg, "vCPU overcommit 1.25 would be exceeded: 42 of 40 vCPUs"));
    /* msg and limit may be NULL */
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, NULL, NULL, 0), -ENOSPC);
}

static void test_admit_mem(void **state)
{
    (void)state;
    struct cap_policy p = pol(); /* 16 MiB overhead */
    char msg[256];
    enum cap_limit l;
    uint64_t lim = cap_mem_limit(&node32, &p);
    /* fill exactly to the limit with guests of (mem + overhead) */
    uint64_t per = 240 * MiB + 16 * MiB;
    struct cap_use use = {.mem = lim - 4 * per};
    struct cap_item it = {"probe", 1, 240 * MiB, 4, false};
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), 0);
    it.count = 5;
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_MEM);
    assert_non_null(strstr(msg, "memory threshold 0.9 would be exceeded: "));
    assert_non_null(strstr(msg, "of 57.6 GiB (0.9 of 64.0 GiB)"));
    /* overhead counts: 4 guests of 256 MiB fit without it, not with it */
    p.vmm_overhead = 0;
    it.mem = 256 * MiB;
    it.count = 4;
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), 0);
    p.vmm_overhead = 16 * MiB;
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_MEM);
    it.count = 5;
    /* vCPU is reported before memory when both are crossed */
    use.vcpus = 128;
    p = pol();
    assert_int_equal(cap_admit(&node32, &p, &use, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_VCPU);
}

static void test_admit_disk(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    p.overlay_initial = 1 * GiB;
    p.disk_floor = 10 * GiB;
    struct cap_node n = node32;
    n.disk_free = 14 * GiB;
    char msg[256];
    enum cap_limit l;
    struct cap_item it = {"probe", 1, 64 * MiB, 4, false};
    assert_int_equal(cap_admit(&n, &p, NULL, &it, 1, &l, msg, sizeof(msg)), 0); /* 14-4 == 10 */
    it.count = 5;
    assert_int_equal(cap_admit(&n, &p, NULL, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_DISK);
    assert_string_equal(msg, "disk floor 10.0 GiB would be crossed: 5.0 GiB needed, 14.0 GiB free");
    /* starting guests that already have overlays needs no disk */
    it.has_overlay = true;
    assert_int_equal(cap_admit(&n, &p, NULL, &it, 1, &l, msg, sizeof(msg)), 0);
    /* already below the floor */
    n.disk_free = 1 * GiB;
    it.has_overlay = false;
    it.count = 1;
    assert_int_equal(cap_admit(&n, &p, NULL, &it, 1, &l, msg, sizeof(msg)), -ENOSPC);
}

static void test_admit_edges(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    char msg[256];
    enum cap_limit l;
    /* empty request, zero counts: admitted even when over-committed */
    struct cap_use over = {.vcpus = 1000, .mem = UINT64_MAX};
    assert_int_equal(cap_admit(&node32, &p, &over, NULL, 0, &l, msg, sizeof(msg)), 0);
    struct cap_item z = {"probe", 1, 64 * MiB, 0, false};
    assert_int_equal(cap_admit(&node32, &p, &over, &z, 1, &l, msg, sizeof(msg)), 0);
    /* a node with nothing */
    struct cap_node zero = {0};
    z.count = 1;
    assert_int_equal(cap_admit(&zero, &p, NULL, &z, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_VCPU);
    assert_non_null(strstr(msg, "1 of 0 vCPUs"));
    /* invalid items */
    struct cap_item bad = {"probe", 0, 64 * MiB, 1, false};
    assert_int_equal(cap_admit(&node32, &p, NULL, &bad, 1, &l, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "cpus"));
    bad.cpus = 1;
    bad.mem = 0;
    assert_int_equal(cap_admit(&node32, &p, NULL, &bad, 1, &l, msg, sizeof(msg)), -EINVAL);
    /* huge counts and sizes saturate instead of wrapping */
    struct cap_item h = {"probe", UINT32_MAX, UINT64_MAX, UINT64_MAX, false};
    assert_int_equal(cap_admit(&node32, &p, NULL, &h, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_VCPU);
    /* a count that would wrap count * cpus to a small number */
    struct cap_item w = {"probe", 2, 64 * MiB, (UINT64_MAX / 2) + 2, false};
    assert_int_equal(cap_admit(&node32, &p, NULL, &w, 1, &l, msg, sizeof(msg)), -ENOSPC);
    /* a huge node with ratio 1000 still admits precisely */
    struct cap_node big = {.cpus = 1024, .mem_total = UINT64_MAX, .disk_free = UINT64_MAX};
    p.vcpu_overcommit = 1000;
    p.mem_threshold = 1.0;
    struct cap_item ok = {"probe", 1, 1 * GiB, 1024000, false};
    assert_int_equal(cap_admit(&big, &p, NULL, &ok, 1, &l, msg, sizeof(msg)), 0);
    ok.count++;
    assert_int_equal(cap_admit(&big, &p, NULL, &ok, 1, &l, msg, sizeof(msg)), -ENOSPC);
    /* two items whose sum overflows */
    struct cap_item two[] = {{"a", 1, UINT64_MAX / 2, 1, false}, {"b", 1, UINT64_MAX / 2, 1, false}};
    big.cpus = 8;
    assert_int_equal(cap_admit(&big, &p, NULL, two, 2, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_MEM);
}

static void test_plan(void **state)
{
    (void)state;
    struct cap_policy p = pol(); /* 4.0, 0.9, 16 MiB, 1 MiB */
    struct cap_use use = {.vcpus = 28, .mem = 0};
    struct cap_item req[] = {
        {"probe", 1, 48 * MiB, 10, false},   /* 64 MiB each: memory allows 921, vCPU 100 */
        {"big", 8, 8 * GiB - 16 * MiB, 2, false}, /* 8 GiB each: memory allows 7, vCPU 12 */
        {"tiny", 1, 4 * MiB, 0, false},
    };
    struct cap_plan plan;
    assert_int_equal(cap_plan(&node32, &p, &use, req, 3, &plan), 0);
    assert_int_equal(plan.n, 3);
    assert_int_equal(plan.vcpu_limit, 128);
    assert_int_equal(plan.rows[0].by_vcpu, 100);
    assert_int_equal(plan.rows[0].by_mem, (64 * GiB * 9 / 10) / (64 * MiB));
    assert_int_equal(plan.rows[0].fits, 100);
    assert_int_equal(plan.rows[0].binds, CAP_LIMIT_VCPU);
    assert_int_equal(plan.rows[1].by_vcpu, 12);
    assert_int_equal(plan.rows[1].by_mem, 7);
    assert_int_equal(plan.rows[1].fits, 7);
    assert_int_equal(plan.rows[1].binds, CAP_LIMIT_MEM);
    assert_int_equal(plan.rows[0].by_disk, 500 * 1024);
    assert_int_equal(plan.req_vcpus, 26);
    assert_int_equal(plan.req_mem, 10 * 64 * MiB + 2 * 8 * GiB);
    assert_int_equal(plan.req_disk, 12 * MiB);
    assert_int_equal(plan.admit_rc, 0);
    assert_int_equal(plan.admit_limit, CAP_LIMIT_NONE);
    cap_plan_free(&plan);

    /* the whole request does not fit: the plan still says how many do */
    req[1].count = 8;
    assert_int_equal(cap_plan(&node32, &p, &use, req, 3, &plan), 0);
    assert_int_equal(plan.admit_rc, -ENOSPC);
    assert_int_equal(plan.admit_limit, CAP_LIMIT_MEM);
    assert_non_null(strstr(plan.admit_msg, "memory threshold"));
    cap_plan_free(&plan);

    /* disk binds */
    p.overlay_initial = 100 * GiB;
    assert_int_equal(cap_plan(&node32, &p, &use, req, 1, &plan), 0);
    assert_int_equal(plan.rows[0].fits, 5);
    assert_int_equal(plan.rows[0].binds, CAP_LIMIT_DISK);
    cap_plan_free(&plan);

    /* nothing left; unbounded disk when overlays cost nothing */
    p = pol();
    p.overlay_initial = 0;
    struct cap_use full = {.vcpus = 200, .mem = 0};
    assert_int_equal(cap_plan(&node32, &p, &full, req, 1, &plan), 0);
    assert_int_equal(plan.rows[0].fits, 0);
    assert_int_equal(plan.rows[0].binds, CAP_LIMIT_VCPU);
    assert_true(plan.rows[0].by_disk == UINT64_MAX);
    cap_plan_free(&plan);

    /* bad item */
    struct cap_item bad = {"x", 0, 1, 1, false};
    assert_int_equal(cap_plan(&node32, &p, NULL, &bad, 1, &plan), -EINVAL);
    assert_null(plan.rows);
    cap_plan_free(&plan);
    /* empty request */
    assert_int_equal(cap_plan(&node32, &p, NULL, NULL, 0, &plan), 0);
    assert_int_equal(plan.n, 0);
    assert_int_equal(plan.admit_rc, 0);
    cap_plan_free(&plan);
}

/* Memory overcommit: what the guests commit may pass the limit by
 * mem_overcommit, what they hold (measured) plus what new ones are expected
 * to hold (commitment / mem_overcommit) may not pass it. */
static void test_admit_overcommit(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    char msg[256];
    enum cap_limit l;
    /* a 24 GiB, 2-CPU node (the dev machine): 21.6 GiB limit */
    const struct cap_node small = {.cpus = 2, .mem_total = 24 * GiB, .disk_free = 500 * GiB};
    struct cap_item probes = {"probe", 1, 64 * MiB, 1000, false}; /* 80 MiB each: 78.1 GiB */
    p.vcpu_overcommit = 1000;
    assert_int_equal(cap_commit_limit(&small, &p), cap_mem_limit(&small, &p));
    /* no overcommit (1): the old model refuses 1000 probes, naming memory */
    assert_int_equal(cap_admit(&small, &p, NULL, &probes, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_MEM);
    assert_non_null(strstr(msg, "memory threshold 0.9 would be exceeded: 78.1 GiB of 21.6 GiB"));
    /* 4: 86.4 GiB may be committed, 1000 probes are expected to hold 19.5 GiB */
    p.mem_overcommit = 4;
    assert_int_equal(cap_commit_limit(&small, &p), cap_mem_limit(&small, &p) * 4);
    assert_int_equal(cap_guest_resident(&p, 64 * MiB, 1000), 1000 * 20 * MiB);
    assert_int_equal(cap_admit(&small, &p, NULL, &probes, 1, &l, msg, sizeof(msg)), 0);
    assert_int_equal(l, CAP_LIMIT_NONE);
    assert_string_equal(msg, "");
    /* ... but not 1200 (93.8 GiB committed) */
    probes.count = 1200;
    assert_int_equal(cap_admit(&small, &p, NULL, &probes, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_MEM);
    assert_non_null(strstr(msg, "memory overcommit 4.0 would be exceeded: 93.8 GiB committed "
                                "of 86.4 GiB (4.0 x 0.9 of 24.0 GiB)"));
    /* resident: guests that touched more than a quarter of their memory
     * leave less room than the commitment says */
    probes.count = 100; /* 7.8 GiB committed, 2.0 GiB expected */
    struct cap_use use = {.vcpus = 100, .mem = 100 * 80 * MiB, .guests = 100,
                          .resident = 20 * GiB};
    assert_int_equal(cap_admit(&small, &p, &use, &probes, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_RESIDENT);
    assert_non_null(strstr(msg, "resident memory would pass threshold 0.9: 20.0 GiB held + "
                                "2.0 GiB expected of 21.6 GiB (0.9 of 24.0 GiB)"));
    /* the same guests holding what was expected of them: admitted */
    use.resident = 100 * 20 * MiB;
    assert_int_equal(cap_admit(&small, &p, &use, &probes, 1, &l, msg, sizeof(msg)), 0);
    /* one guest restored from a snapshot among 1000 siblings measures its
     * share of their pages (Pss): 351 KiB each, 343 MiB for 1000 */
    use.resident = 1000 * 351 * 1024ULL;
    use.mem = 1000 * 80 * MiB;
    probes.count = 80; /* 1080 * 80 MiB = 84.4 GiB committed: fits 86.4 */
    assert_int_equal(cap_admit(&small, &p, &use, &probes, 1, &l, msg, sizeof(msg)), 0);
    probes.count = 106; /* 1106 * 80 MiB = 86.4+ GiB */
    assert_int_equal(cap_admit(&small, &p, &use, &probes, 1, &l, msg, sizeof(msg)), -ENOSPC);
    assert_int_equal(l, CAP_LIMIT_MEM);
    /* with no overcommit the resident check never binds first: held can not
     * pass committed (a cgroup's memory.max), expected == committed */
    p.mem_overcommit = 1;
    assert_int_equal(cap_guest_resident(&p, 64 * MiB, 3), cap_guest_mem(&p, 64 * MiB, 3));
    /* saturation: a huge count is refused, never wrapped */
    p.mem_overcommit = 100;
    probes.count = UINT64_MAX / 2;
    assert_true(cap_guest_resident(&p, 64 * MiB, probes.count) == UINT64_MAX);
    assert_int_equal(cap_admit(&small, &p, NULL, &probes, 1, &l, msg, sizeof(msg)), -ENOSPC);
    /* bad ratios */
    p.mem_overcommit = 0;
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "mem_overcommit"));
    p.mem_overcommit = 100.5;
    assert_int_equal(cap_policy_check(&p, msg, sizeof(msg)), -EINVAL);
    p.mem_overcommit = NAN;
    assert_int_equal(cap_admit(&small, &p, NULL, &probes, 1, &l, msg, sizeof(msg)), -EINVAL);
}

static void test_plan_overcommit(void **state)
{
    (void)state;
    struct cap_policy p = pol();
    /* 4 CPUs: vCPUs allow 3000 more, not the limit that binds */
    const struct cap_node small = {.cpus = 4, .mem_total = 24 * GiB, .disk_free = 500 * GiB};
    struct cap_item probes = {"probe", 1, 64 * MiB, 1000, false};
    struct cap_plan plan;
    uint64_t lim = cap_mem_limit(&small, &p);
    p.vcpu_overcommit = 1000;
    p.mem_overcommit = 8;
    /* 1000 running, holding 838 KiB each (cold probes, measured) */
    struct cap_use use = {.vcpus = 1000, .mem = 1000 * 80 * MiB, .guests = 1000,
                          .resident = 1000 * 838 * 1024ULL};
    assert_int_equal(cap_plan(&small, &p, &use, &probes, 1, &plan), 0);
    assert_int_equal(plan.mem_limit, lim);
    assert_int_equal(plan.commit_limit, lim * 8);
    assert_int_equal(plan.req_mem, 1000 * 80 * MiB);
    assert_int_equal(plan.req_resident, 1000 * 10 * MiB);
    assert_int_equal(plan.rows[0].by_vcpu, 3000);
    assert_int_equal(plan.rows[0].by_mem, (lim * 8 - 1000 * 80 * MiB) / (80 * MiB));
    assert_int_equal(plan.rows[0].by_resident, (lim - 1000 * 838 * 1024ULL) / (10 * MiB));
    /* they hold less than 1/8 of their commitment: memory binds */
    assert_int_equal(plan.rows[0].by_mem, 1211);
    assert_int_equal(plan.rows[0].by_resident, 2130);
    assert_int_equal(plan.rows[0].fits, 1211);
    assert_int_equal(plan.rows[0].binds, CAP_LIMIT_MEM);
    assert_int_equal(plan.admit_rc, 0);
    cap_plan_free(&plan);
    /* they touched 15 GiB: what is held binds (6.6 GiB left, 10 MiB each) */
    use.resident = 15 * GiB;
    assert_int_equal(cap_plan(&small, &p, &use, &probes, 1, &plan), 0);
    assert_int_equal(plan.rows[0].by_resident, (lim - 15 * GiB) / (10 * MiB));
    assert_int_equal(plan.rows[0].fits, plan.rows[0].by_resident);
    assert_int_equal(plan.rows[0].binds, CAP_LIMIT_RESIDENT);
    assert_int_equal(plan.admit_rc, -ENOSPC);
    assert_int_equal(plan.admit_limit, CAP_LIMIT_RESIDENT);
    assert_non_null(strstr(plan.admit_msg, "resident memory would pass threshold 0.9"));
    cap_plan_free(&plan);
    assert_string_equal(cap_limit_name(CAP_LIMIT_RESIDENT), "resident");
}

static void test_fmt(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(cap_fmt_bytes(b, sizeof(b), 0), "0 B");
    assert_string_equal(cap_fmt_bytes(b, sizeof(b), 1023), "1023 B");
    assert_string_equal(cap_fmt_bytes(b, sizeof(b), 1024), "1.0 KiB");
    assert_string_equal(cap_fmt_bytes(b, sizeof(b), 64 * MiB), "64.0 MiB");
    assert_string_equal(cap_fmt_bytes(b, sizeof(b), 3 * GiB / 2), "1.5 GiB");
    assert_string_equal(cap_fmt_bytes(b, sizeof(b), UINT64_MAX), "16.0 EiB");
    assert_string_equal(cap_limit_name(CAP_LIMIT_VCPU), "vcpu");
    assert_string_equal(cap_limit_name(CAP_LIMIT_MEM), "memory");
    assert_string_equal(cap_limit_name(CAP_LIMIT_DISK), "disk");
    assert_string_equal(cap_limit_name(CAP_LIMIT_NONE), "none");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_read_node(void **state)
{
    (void)state;
    char dir[] = "/tmp/herd-cap-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/meminfo", dir);
    write_file(path, "MemTotal:       16318712 kB\nMemFree:         1000000 kB\n"
                     "MemAvailable:   12000000 kB\nBuffers:          200000 kB\n");
    snprintf(path, sizeof(path), "%s/cpuinfo", dir);
    write_file(path, "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\n\nprocessor\t: 2\n");
    struct cap_node n;
    assert_int_equal(capacity_read_node(dir, dir, &n), 0);
    assert_int_equal(n.mem_total, 16318712ULL * 1024);
    assert_int_equal(n.mem_available, 12000000ULL * 1024);
    assert_int_equal(n.cpus, 3);
    assert_true(n.disk_total > 0);
    assert_true(n.disk_free <= n.disk_total);

    /* no MemAvailable: MemFree; no cpuinfo: sysconf; no dir: no disk */
    snprintf(path, sizeof(path), "%s/meminfo", dir);
    write_file(path, "MemTotal: 1024 kB\nMemFree: 512 kB\n");
    snprintf(path, sizeof(path), "%s/cpuinfo", dir);
    unlink(path);
    assert_int_equal(capacity_read_node(dir, NULL, &n), 0);
    assert_int_equal(n.mem_total, 1024 * 1024);
    assert_int_equal(n.mem_available, 512 * 1024);
    assert_true(n.cpus >= 1);
    assert_int_equal(n.disk_total, 0);

    /* garbage meminfo */
    snprintf(path, sizeof(path), "%s/meminfo", dir);
    write_file(path, "hello\nMemTotal: lots\n");
    assert_int_equal(capacity_read_node(dir, NULL, &n), -EPROTO);
    /* huge value saturates */
    write_file(path, "MemTotal: 99999999999999999999 kB\n");
    int rc = capacity_read_node(dir, NULL, &n);
    assert_true(rc == 0 || rc == -EPROTO);
    unlink(path);
    assert_int_equal(capacity_read_node(dir, NULL, &n), -ENOENT);
    rmdir(dir);
    assert_int_equal(capacity_read_node(NULL, "/nonexistent/dir", &n), -ENOENT);

    /* the real host */
    assert_int_equal(capacity_read_node(NULL, "/", &n), 0);
    assert_true(n.cpus >= 1);
    assert_true(n.mem_total > 0);
    assert_true(n.disk_total > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_admit_vcpu),
        cmocka_unit_test(test_admit_mem),
        cmocka_unit_test(test_admit_disk),
        cmocka_unit_test(test_admit_edges),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_admit_overcommit),
        cmocka_unit_test(test_plan_overcommit),
        cmocka_unit_test(test_fmt),
        cmocka_unit_test(test_read_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
