/*
 * iovec helpers: copies to and from flat buffers across segment boundaries
 * and at offsets, short copies at the end, and slices that must either be
 * exact or refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "herd/iov.h"

/* Three segments of 3, 5 and 4 bytes (12 in all) over one backing array,
 * with a zero-length segment in the middle, as guests like to send. */
struct sg {
    uint8_t a[3], b[5], c[4];
    struct iovec iov[4];
};

static void sg_init(struct sg *s)
{
    memset(s, 0, sizeof(*s));
    s->iov[0] = (struct iovec){.iov_base = s->a, .iov_len = sizeof(s->a)};
    s->iov[1] = (struct iovec){.iov_base = s->b, .iov_len = 0};
    s->iov[2] = (struct iovec){.iov_base = s->b, .iov_len = sizeof(s->b)};
    s->iov[3] = (struct iovec){.iov_base = s->c, .iov_len = sizeof(s->c)};
}

/* Byte i of the logical 12-byte stream. */
static uint8_t *sg_byte(struct sg *s, unsigned i)
{
    if (i < 3)
        return &s->a[i];
    if (i < 8)
        return &s->b[i - 3];
    return &s->c[i - 8];
}

static void sg_fill(struct sg *s)
{
    for (unsigned i = 0; i < 12; i++)
        *sg_byte(s, i) = (uint8_t)(0x10 + i);
}

static void test_size(void **state)
{
    struct sg s;

    (void)state;
    sg_init(&s);
    assert_int_equal(iov_size(s.iov, 4), 12);
    assert_int_equal(iov_size(s.iov, 1), 3);
    assert_int_equal(iov_size(s.iov, 0), 0);
}

static void test_to_buf_whole_and_offsets(void **state)
{
    struct sg s;
    uint8_t buf[16];

    (void)state;
    sg_init(&s);
    sg_fill(&s);
    for (unsigned off = 0; off <= 12; off++) {
        for (unsigned len = 0; len <= 14; len++) {
            size_t want = off + len <= 12 ? len : 12 - off;

            memset(buf, 0xee, sizeof(buf));
            assert_int_equal(iov_to_buf(s.iov, 4, off, buf, len), want);
            for (unsigned i = 0; i < want; i++)
                assert_int_equal(buf[i], 0x10 + off + i);
            /* nothing past what was copied */
            for (unsigned i = (unsigned)want; i < sizeof(buf); i++)
                assert_int_equal(buf[i], 0xee);
        }
    }
}

static void test_from_buf_across_boundaries(void **state)
{
    struct sg s;
    uint8_t src[12];

    (void)state;
    for (unsigned i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(0xa0 + i);
    for (unsigned off = 0; off <= 12; off++) {
        for (unsigned len = 0; len <= 12; len++) {
            size_t want = off + len <= 12 ? len : 12 - off;

            sg_init(&s);
            assert_int_equal(iov_from_buf(s.iov, 4, off, src, len), want);
            for (unsigned i = 0; i < 12; i++) {
                uint8_t expect = i >= off && i < off + want ? (uint8_t)(0xa0 + i - off) : 0;

                assert_int_equal(*sg_byte(&s, i), expect);
            }
        }
    }
}

static void test_copy_offset_past_end(void **state)
{
    struct sg s;
    uint8_t buf[4] = {1, 2, 3, 4};

    (void)state;
    sg_init(&s);
    assert_int_equal(iov_to_buf(s.iov, 4, 12, buf, 4), 0);
    assert_int_equal(iov_to_buf(s.iov, 4, 1000, buf, 4), 0);
    assert_int_equal(iov_from_buf(s.iov, 4, 13, buf, 4), 0);
    assert_int_equal(iov_to_buf(s.iov, 0, 0, buf, 4), 0);
    assert_int_equal(buf[0], 1);
    for (unsigned i = 0; i < 12; i++)
        assert_int_equal(*sg_byte(&s, i), 0);
}

static void test_slice_exact(void **state)
{
    struct sg s;
    struct iovec d[4];

    (void)state;
    sg_init(&s);
    /* all of it: the zero-length segment is not carried over */
    assert_int_equal(iov_slice(s.iov, 4, 0, 12, d, 4), 3);
    assert_ptr_equal(d[0].iov_base, s.a);
    assert_int_equal(d[0].iov_len, 3);
    assert_ptr_equal(d[1].iov_base, s.b);
    assert_int_equal(d[1].iov_len, 5);
    assert_ptr_equal(d[2].iov_base, s.c);
    assert_int_equal(d[2].iov_len, 4);

    /* inside one segment */
    assert_int_equal(iov_slice(s.iov, 4, 4, 3, d, 4), 1);
    assert_ptr_equal(d[0].iov_base, s.b + 1);
    assert_int_equal(d[0].iov_len, 3);

    /* across a boundary, starting and ending mid-segment */
    assert_int_equal(iov_slice(s.iov, 4, 2, 8, d, 4), 3);
    assert_ptr_equal(d[0].iov_base, s.a + 2);
    assert_int_equal(d[0].iov_len, 1);
    assert_ptr_equal(d[1].iov_base, s.b);
    assert_int_equal(d[1].iov_len, 5);
    assert_ptr_equal(d[2].iov_base, s.c);
    assert_int_equal(d[2].iov_len, 2);
    assert_int_equal(iov_size(d, 3), 8);

    /* the last byte; exactly a segment boundary */
    assert_int_equal(iov_slice(s.iov, 4, 11, 1, d, 4), 1);
    assert_ptr_equal(d[0].iov_base, s.c + 3);
    assert_int_equal(d[0].iov_len, 1);
    assert_int_equal(iov_slice(s.iov, 4, 3, 5, d, 1), 1);
    assert_ptr_equal(d[0].iov_base, s.b);
    assert_int_equal(d[0].iov_len, 5);

    /* empty slice */
    assert_int_equal(iov_slice(s.iov, 4, 5, 0, d, 4), 0);
}

static void test_slice_out_of_range(void **state)
{
    struct sg s;
    struct iovec d[4];

    (void)state;
    sg_init(&s);
    assert_int_equal(iov_slice(s.iov, 4, 0, 13, d, 4), -1);
    assert_int_equal(iov_slice(s.iov, 4, 11, 2, d, 4), -1);
    assert_int_equal(iov_slice(s.iov, 4, 12, 1, d, 4), -1);
    assert_int_equal(iov_slice(s.iov, 4, 100, 1, d, 4), -1);
    assert_int_equal(iov_slice(s.iov, 0, 0, 1, d, 4), -1);
    /* offset so large offset+len wraps around */
    assert_int_equal(iov_slice(s.iov, 4, (size_t)-1, 2, d, 4), -1);
}

static void test_slice_too_many_segments(void **state)
{
    struct sg s;
    struct iovec d[4];

    (void)state;
    sg_init(&s);
    memset(d, 0x5a, sizeof(d));
    assert_int_equal(iov_slice(s.iov, 4, 0, 12, d, 2), -1);
    /* nothing written past dst_max */
    for (unsigned i = 0; i < sizeof(d[2]); i++)
        assert_int_equal(((uint8_t *)&d[2])[i], 0x5a);
    assert_int_equal(iov_slice(s.iov, 4, 2, 2, d, 1), -1);
    assert_int_equal(iov_slice(s.iov, 4, 0, 1, d, 0), -1);
    assert_int_equal(iov_slice(s.iov, 4, 2, 2, d, 2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_to_buf_whole_and_offsets),
        cmocka_unit_test(test_from_buf_across_boundaries),
        cmocka_unit_test(test_copy_offset_past_end),
        cmocka_unit_test(test_slice_exact),
        cmocka_unit_test(test_slice_out_of_range),
        cmocka_unit_test(test_slice_too_many_segments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
