/*
 * Port/MMIO bus: registration (sorted, overlaps refused), lookup bounds, and
 * dispatch to the device callbacks, with PC semantics for unclaimed access.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "herd/bus.h"

struct dev {
    int reads, writes;
    uint64_t offset;
    unsigned len;
    uint8_t written[8];
    uint8_t reply;
};

static void dev_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct dev *d = opaque;

    d->reads++;
    d->offset = offset;
    d->len = len;
    for (unsigned i = 0; i < len; i++)
        data[i] = (uint8_t)(d->reply + i);
}

static void dev_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct dev *d = opaque;

    d->writes++;
    d->offset = offset;
    d->len = len;
    memcpy(d->written, data, len);
}

static struct bus_range range(uint64_t base, uint64_t size, struct dev *d)
{
    return (struct bus_range){.base = base, .size = size, .name = "dev", .read = dev_read,
                              .write = dev_write, .opaque = d};
}

static void test_register_sorted(void **state)
{
    struct bus bus;
    struct dev a = {0}, b = {0}, c = {0};
    struct bus_range r;

    bus_init(&bus, "pio");
    assert_string_equal(bus.name, "pio");
    assert_int_equal(bus.nr, 0);
    r = range(0x3f8, 8, &a);
    assert_int_equal(bus_register(&bus, &r), 0);
    r = range(0x60, 5, &b);
    assert_int_equal(bus_register(&bus, &r), 0);
    r = range(0x501, 4, &c);
    assert_int_equal(bus_register(&bus, &r), 0);
    assert_int_equal(bus.nr, 3);
    /* Sorted by base whatever the registration order. */
    assert_int_equal(bus.ranges[0].base, 0x60);
    assert_int_equal(bus.ranges[1].base, 0x3f8);
    assert_int_equal(bus.ranges[2].base, 0x501);
    assert_ptr_equal(bus.ranges[0].opaque, &b);
    assert_ptr_equal(bus.ranges[1].opaque, &a);
    assert_ptr_equal(bus.ranges[2].opaque, &c);
    for (unsigned i = 1; i < bus.nr; i++)
        assert_true(bus.ranges[i - 1].base + bus.ranges[i - 1].size <= bus.ranges[i].base);
    assert_ptr_equal(bus_find(&bus, 0x3f8, 1)->opaque, &a);
    assert_ptr_equal(bus_find(&bus, 0x60, 1)->opaque, &b);
    assert_ptr_equal(bus_find(&bus, 0x501, 1)->opaque, &c);
}

static void test_overlap_refused(void **state)
{
    struct bus bus;
    struct dev d = {0};
    struct bus_range r = range(0x100, 0x10, &d), before;

    bus_init(&bus, "mmio");
    assert_int_equal(bus_register(&bus, &r), 0);
    before = bus.ranges[0];
    r = range(0x100, 0x10, &d); /* identical */
    assert_int_equal(bus_register(&bus, &r), -EEXIST);
    r = range(0xf8, 0x9, &d); /* last byte overlaps the first */
    assert_int_equal(bus_register(&bus, &r), -EEXIST);
    r = range(0x10f, 1, &d); /* the last byte */
    assert_int_equal(bus_register(&bus, &r), -EEXIST);
    r = range(0x104, 2, &d); /* inside */
    assert_int_equal(bus_register(&bus, &r), -EEXIST);
    r = range(0x0, 0x1000, &d); /* around */
    assert_int_equal(bus_register(&bus, &r), -EEXIST);
    assert_int_equal(bus.nr, 1);
    assert_memory_equal(&bus.ranges[0], &before, sizeof(before));
    /* Touching ranges on either side are fine. */
    r = range(0xf0, 0x10, &d);
    assert_int_equal(bus_register(&bus, &r), 0);
    r = range(0x110, 0x10, &d);
    assert_int_equal(bus_register(&bus, &r), 0);
    assert_int_equal(bus.nr, 3);
}

static void test_register_invalid_and_full(void **state)
{
    struct bus bus;
    struct dev d = {0};
    struct bus_range r;

    bus_init(&bus, "mmio");
    r = range(0x1000, 0, &d);
    assert_int_equal(bus_register(&bus, &r), -EINVAL);
    r = range(UINT64_MAX, 2, &d); /* wraps */
    assert_int_equal(bus_register(&bus, &r), -EINVAL);
    r = range(0x10, UINT64_MAX, &d);
    assert_int_equal(bus_register(&bus, &r), -EINVAL);
    assert_int_equal(bus.nr, 0);
    /* Fill it in descending order (each insert goes to the front). */
    for (unsigned i = BUS_MAX_DEVICES; i > 0; i--) {
        r = range(i * 0x100, 0x10, &d);
        assert_int_equal(bus_register(&bus, &r), 0);
    }
    assert_int_equal(bus.nr, BUS_MAX_DEVICES);
    r = range(0x10000, 0x10, &d);
    assert_int_equal(bus_register(&bus, &r), -ENOSPC);
    assert_int_equal(bus.nr, BUS_MAX_DEVICES);
    for (unsigned i = 0; i < BUS_MAX_DEVICES; i++)
        assert_int_equal(bus.ranges[i].base, (i + 1) * 0x100);
}

static void test_find_bounds(void **state)
{
    struct bus bus;
    struct dev d = {0};
    struct bus_range r = range(0x1000, 0x10, &d);

    bus_init(&bus, "mmio");
    assert_null(bus_find(&bus, 0x1000, 1)); /* empty bus */
    assert_int_equal(bus_register(&bus, &r), 0);
    assert_non_null(bus_find(&bus, 0x1000, 1));
    assert_non_null(bus_find(&bus, 0x1000, 8));
    assert_non_null(bus_find(&bus, 0x100f, 1));
    assert_non_null(bus_find(&bus, 0x100e, 2));
    assert_non_null(bus_find(&bus, 0x1008, 8));
    /* Straddling the end, or starting outside. */
    assert_null(bus_find(&bus, 0x100f, 2));
    assert_null(bus_find(&bus, 0x100c, 8));
    assert_null(bus_find(&bus, 0x1010, 1));
    assert_null(bus_find(&bus, 0x0fff, 2)); /* starts just below */
    assert_null(bus_find(&bus, 0x0fff, 1));
    assert_null(bus_find(&bus, UINT64_MAX, 8));
    assert_null(bus_find(&bus, 0, 1));
}

static void test_find_many(void **state)
{
    struct bus bus;
    struct dev devs[BUS_MAX_DEVICES];
    /* A fixed shuffle of 0..31. */
    static const unsigned order[BUS_MAX_DEVICES] = {
        17, 3, 29, 0, 11, 24, 6, 31, 14, 9, 21, 1, 27, 4, 19, 12,
        8, 30, 2, 25, 15, 7, 22, 10, 28, 5, 18, 13, 26, 16, 23, 20,
    };

    bus_init(&bus, "pio");
    for (unsigned i = 0; i < BUS_MAX_DEVICES; i++) {
        struct bus_range r = range(order[i] * 0x20 + 4, 8 + order[i] % 3, &devs[order[i]]);

        assert_int_equal(bus_register(&bus, &r), 0);
    }
    for (unsigned i = 0; i < BUS_MAX_DEVICES; i++) {
        uint64_t base = i * 0x20 + 4, size = 8 + i % 3;

        assert_int_equal(bus.ranges[i].base, base);
        assert_ptr_equal(bus_find(&bus, base, 1)->opaque, &devs[i]);
        assert_ptr_equal(bus_find(&bus, base + size - 1, 1)->opaque, &devs[i]);
        assert_null(bus_find(&bus, base - 1, 1));
        assert_null(bus_find(&bus, base + size, 1));
    }
}

static void test_dispatch(void **state)
{
    struct bus bus;
    struct dev d = {.reply = 0x40};
    struct bus_range r = range(0xc0000000, 0x100, &d);
    uint8_t data[8];

    bus_init(&bus, "mmio");
    assert_int_equal(bus_register(&bus, &r), 0);

    /* Read: callback sees the offset from the base and the length. */
    memset(data, 0, sizeof(data));
    assert_true(bus_dispatch(&bus, 0xc0000010, data, 4, false));
    assert_int_equal(d.reads, 1);
    assert_int_equal(d.writes, 0);
    assert_int_equal(d.offset, 0x10);
    assert_int_equal(d.len, 4);
    assert_int_equal(data[0], 0x40);
    assert_int_equal(data[3], 0x43);
    assert_int_equal(data[4], 0); /* nothing past len */

    /* Write: callback gets the bytes. */
    memcpy(data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_true(bus_dispatch(&bus, 0xc00000f8, data, 8, true));
    assert_int_equal(d.writes, 1);
    assert_int_equal(d.reads, 1);
    assert_int_equal(d.offset, 0xf8);
    assert_int_equal(d.len, 8);
    assert_memory_equal(d.written, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
}

static void test_dispatch_unclaimed(void **state)
{
    struct bus bus;
    struct dev d = {.reply = 0x40};
    struct bus_range r = range(0x3f8, 8, &d);
    uint8_t data[8];

    bus_init(&bus, "pio");
    assert_int_equal(bus_register(&bus, &r), 0);
    memset(data, 0, sizeof(data));
    assert_false(bus_dispatch(&bus, 0x2f8, data, 4, false));
    for (int i = 0; i < 4; i++)
        assert_int_equal(data[i], 0xff);
    assert_int_equal(data[4], 0); /* only len bytes */

    /* A straddling access is nobody's: no callback, reads as ones. */
    memset(data, 0, sizeof(data));
    assert_false(bus_dispatch(&bus, 0x3fe, data, 4, false));
    assert_int_equal(data[0], 0xff);
    assert_int_equal(data[3], 0xff);
    memcpy(data, "abcd", 4);
    assert_false(bus_dispatch(&bus, 0x3ff, data, 2, true));
    assert_int_equal(d.reads, 0);
    assert_int_equal(d.writes, 0);
    /* Unclaimed writes are dropped, the caller's buffer left alone. */
    assert_false(bus_dispatch(&bus, 0x80, data, 1, true));
    assert_memory_equal(data, "abcd", 4);
}

static void test_dispatch_null_callbacks(void **state)
{
    struct bus bus;
    struct bus_range r = {.base = 0x80, .size = 1, .name = "port80"};
    uint8_t data[2] = {0x12, 0x34};

    bus_init(&bus, "pio");
    assert_int_equal(bus_register(&bus, &r), 0);
    /* Claimed (true) even without callbacks: read as ones, write dropped. */
    assert_true(bus_dispatch(&bus, 0x80, data, 1, true));
    assert_int_equal(data[0], 0x12);
    assert_true(bus_dispatch(&bus, 0x80, data, 1, false));
    assert_int_equal(data[0], 0xff);
    assert_int_equal(data[1], 0x34);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_sorted),
        cmocka_unit_test(test_overlap_refused),
        cmocka_unit_test(test_register_invalid_and_full),
        cmocka_unit_test(test_find_bounds),
        cmocka_unit_test(test_find_many),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_dispatch_unclaimed),
        cmocka_unit_test(test_dispatch_null_callbacks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
