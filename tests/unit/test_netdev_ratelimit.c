/* Token buckets with an injected clock: Firecracker's semantics (size,
 * one-time burst, refill time), exact long-run rate, debt for frames larger
 * than the bucket, runtime updates. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "herd/ratelimit.h"

#define MS 1000000ULL
#define S 1000000000ULL

static void test_starts_full_then_refills(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 1000, .refill_time_ms = 100};

    (void)state;
    assert_int_equal(tbucket_init(&b, &cfg, 0), 0);
    assert_true(tbucket_consume(&b, 1000, 0));
    assert_false(tbucket_consume(&b, 1, 0));
    /* 1000 tokens per 100 ms = 10 per ms. */
    assert_false(tbucket_consume(&b, 11, 1 * MS));
    assert_true(tbucket_consume(&b, 10, 1 * MS));
    assert_int_equal(tbucket_available(&b, 1 * MS), 0);
    assert_int_equal(tbucket_available(&b, 50 * MS), 490);
    /* Never above the size, however long it waits. */
    assert_int_equal(tbucket_available(&b, 100 * S), 1000);
}

static void test_wait_ns_is_exact(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 1000, .refill_time_ms = 100};

    (void)state;
    tbucket_init(&b, &cfg, 0);
    assert_true(tbucket_consume(&b, 1000, 0));
    assert_int_equal(tbucket_wait_ns(&b, 10, 0), 1 * MS);
    assert_int_equal(tbucket_wait_ns(&b, 500, 0), 50 * MS);
    assert_false(tbucket_consume(&b, 500, 50 * MS - 1));
    assert_true(tbucket_consume(&b, 500, 50 * MS));
    assert_int_equal(tbucket_wait_ns(&b, 1, 50 * MS), 100000); /* 0.1 ms per token */
}

static void test_one_time_burst_spent_first_not_refilled(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 100, .one_time_burst = 500, .refill_time_ms = 1000};

    (void)state;
    tbucket_init(&b, &cfg, 0);
    assert_true(tbucket_consume(&b, 550, 0)); /* 500 burst + 50 bucket */
    assert_int_equal(b.burst_left, 0);
    assert_int_equal(tbucket_available(&b, 0), 50);
    assert_false(tbucket_consume(&b, 51, 0));
    assert_int_equal(tbucket_available(&b, 10 * S), 100); /* burst stays spent */
}

static void test_refused_consume_changes_nothing(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 100, .one_time_burst = 30, .refill_time_ms = 1000};

    (void)state;
    tbucket_init(&b, &cfg, 0);
    assert_true(tbucket_consume(&b, 100, 0)); /* 30 burst + 70 */
    assert_false(tbucket_consume(&b, 31, 0));
    assert_int_equal(tbucket_available(&b, 0), 30);
}

static void test_oversized_goes_into_debt(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 1000, .refill_time_ms = 1000};

    (void)state;
    tbucket_init(&b, &cfg, 0);
    assert_true(tbucket_consume(&b, 1, 0));
    assert_false(tbucket_consume(&b, 1500, 0)); /* not full: wait */
    assert_int_equal(tbucket_wait_ns(&b, 1500, 0), 1 * MS);
    assert_true(tbucket_consume(&b, 1500, 1 * MS)); /* full: allowed, debt 500 */
    assert_int_equal(tbucket_available(&b, 1 * MS), -500);
    assert_false(tbucket_consume(&b, 1, 1 * MS));
    assert_int_equal(tbucket_wait_ns(&b, 1, 1 * MS), 501 * MS);
    assert_true(tbucket_consume(&b, 1, 502 * MS));
}

/* Offer far more than the rate for 10 simulated seconds in uneven steps:
 * what passes equals size + rate x time, to the token. */
static void test_long_run_rate_is_exact(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 125000, .refill_time_ms = 250}; /* 500 kB/s */
    uint64_t now = 0, passed = 0, step = 0, last = 0;

    (void)state;
    tbucket_init(&b, &cfg, 0);
    while (now < 10 * S) {
        while (tbucket_consume(&b, 1000, now))
            passed += 1000;
        last = now;
        now += 37 * 1000 + (step++ % 7) * 100003; /* irregular ticks */
    }
    uint64_t expect = 125000 + (uint64_t)((__int128)last * 500000 / S);
    assert_true(passed <= expect);
    assert_true(passed + 1000 > expect);
    assert_int_equal(b.wasted, 0);
}

static void test_wasted_counts_idle_overflow(void **state)
{
    struct tbucket b;
    struct tbucket_cfg cfg = {.size = 1000, .refill_time_ms = 1000};

    (void)state;
    tbucket_init(&b, &cfg, 0);
    assert_true(tbucket_consume(&b, 1000, 0));
    assert_int_equal(tbucket_available(&b, 3 * S), 1000);
    assert_int_equal(b.wasted, 2000);
}

static void test_unlimited_and_cfg_check(void **state)
{
    struct tbucket b;
    struct tbucket_cfg none = {0}, bad = {.size = 10, .refill_time_ms = 0};

    (void)state;
    assert_int_equal(tbucket_init(&b, &none, 0), 0);
    assert_true(tbucket_consume(&b, UINT64_MAX, 0));
    assert_int_equal(tbucket_wait_ns(&b, UINT64_MAX, 0), 0);
    assert_int_equal(tbucket_init(&b, &bad, 0), -EINVAL);
    struct tbucket_cfg huge = {.size = UINT64_MAX, .refill_time_ms = UINT32_MAX};
    assert_int_equal(tbucket_init(&b, &huge, 0), 0);
    assert_true(tbucket_consume(&b, UINT64_MAX, UINT64_MAX));
}

static void test_ratelimit_both_or_neither(void **state)
{
    struct ratelimit rl;
    struct tbucket_cfg bytes = {.size = 10000, .refill_time_ms = 1000};
    struct tbucket_cfg ops = {.size = 3, .refill_time_ms = 1000};

    (void)state;
    assert_int_equal(ratelimit_init(&rl, &bytes, &ops, 0), 0);
    assert_true(ratelimit_is_limited(&rl));
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_consume(&rl, 100, 0));
    assert_false(ratelimit_consume(&rl, 100, 0)); /* ops empty */
    assert_int_equal(tbucket_available(&rl.bytes, 0), 9700); /* bytes untouched */
    assert_int_equal(rl.throttled, 1);
    assert_int_equal(ratelimit_wait_ns(&rl, 100, 0), 333333334);
    assert_true(ratelimit_consume(&rl, 100, 333333334));
}

static void test_ratelimit_update(void **state)
{
    struct ratelimit rl;
    struct tbucket_cfg slow = {.size = 1000, .refill_time_ms = 1000};
    struct tbucket_cfg fast = {.size = 100000, .refill_time_ms = 1000};
    struct tbucket_cfg bad = {.size = 1, .refill_time_ms = 0};

    (void)state;
    ratelimit_init(&rl, &slow, NULL, 0);
    assert_false(ratelimit_is_limited(&(struct ratelimit){0}));
    assert_true(ratelimit_consume(&rl, 1000, 0));
    assert_false(ratelimit_consume(&rl, 1000, 0));
    assert_int_equal(ratelimit_update(&rl, &slow, NULL, 0), 0); /* same: kept */
    assert_false(ratelimit_consume(&rl, 1000, 0));
    assert_int_equal(ratelimit_update(&rl, &fast, NULL, 0), 0); /* new: full */
    assert_true(ratelimit_consume(&rl, 50000, 0));
    assert_int_equal(ratelimit_update(&rl, &bad, NULL, 0), -EINVAL);
    assert_int_equal(rl.bytes.cfg.size, 100000);
    struct tbucket_cfg off = {0};
    assert_int_equal(ratelimit_update(&rl, &off, NULL, 0), 0);
    assert_false(ratelimit_is_limited(&rl));
    assert_true(ratelimit_now_ns() > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_full_then_refills),
        cmocka_unit_test(test_wait_ns_is_exact),
        cmocka_unit_test(test_one_time_burst_spent_first_not_refilled),
        cmocka_unit_test(test_refused_consume_changes_nothing),
        cmocka_unit_test(test_oversized_goes_into_debt),
        cmocka_unit_test(test_long_run_rate_is_exact),
        cmocka_unit_test(test_wasted_counts_idle_overflow),
        cmocka_unit_test(test_unlimited_and_cfg_check),
        cmocka_unit_test(test_ratelimit_both_or_neither),
        cmocka_unit_test(test_ratelimit_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
