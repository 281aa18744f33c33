/*
 * Split virtqueue, device side: rings built by hand in buffer-backed guest
 * RAM, as a hostile guest would. Ring validation at start, chains (direct and
 * indirect) landing in the right iovecs, every malformed chain refused with a
 * reason (never a hang, never an access outside RAM: ASan watches), used
 * ring updates, and the notification suppression rules (EVENT_IDX and the
 * NO_INTERRUPT / NO_NOTIFY flags).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "herd/guest_mem.h"
#include "herd/layout.h"
#include "herd/virtq.h"

#define RAM     (2 * MiB)
#define QSIZE   16
#define DESC    0x1000ULL
#define AVAIL   0x2000ULL
#define USED    0x3000ULL
#define TABLE   0x8000ULL  /* indirect tables */
#define BUF     0x10000ULL /* data buffers */

struct ctx {
    uint8_t *ram;
    uint64_t ram_size;
    int mapped; /* ram came from mmap (the large layout with the MMIO hole) */
    struct guest_mem gm;
    struct virtq vq;
    struct virtq_chain chain;
    struct herd_err err;
};

static int setup_ram(void **state, uint64_t size, int mapped)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    c->ram_size = size;
    c->mapped = mapped;
    if (mapped) {
        c->ram = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (c->ram == MAP_FAILED)
            return -1;
    } else {
        c->ram = calloc(1, size);
        if (!c->ram)
            return -1;
    }
    if (guest_mem_init_buffer(&c->gm, c->ram, size))
        return -1;
    virtq_init(&c->vq, &c->gm);
    c->vq.size = QSIZE;
    c->vq.desc_gpa = DESC;
    c->vq.avail_gpa = AVAIL;
    c->vq.used_gpa = USED;
    *state = c;
    return 0;
}

static int setup(void **state)
{
    return setup_ram(state, RAM, 0);
}

/* 3 GiB below the hole plus 2 MiB above 4 GiB; only touched pages cost. */
static int setup_hole(void **state)
{
    return setup_ram(state, LAYOUT_MMIO_HOLE_START + 2 * MiB, 1);
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    if (c->mapped)
        munmap(c->ram, c->ram_size);
    else
        free(c->ram);
    free(c);
    return 0;
}

/* ---- ring access as the guest sees it ------------------------------------ */

static void *gpa(struct ctx *c, uint64_t addr)
{
    return c->ram + addr;
}

static struct virtq_desc *desc_at(struct ctx *c, uint64_t table, unsigned i)
{
    return (struct virtq_desc *)gpa(c, table + 16 * i);
}

static void set_desc(struct ctx *c, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    *desc_at(c, c->vq.desc_gpa, i) =
        (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static void set_indirect(struct ctx *c, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                         uint16_t flags, uint16_t next)
{
    *desc_at(c, table, i) =
        (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static uint16_t *avail_ring(struct ctx *c)
{
    return gpa(c, c->vq.avail_gpa);
}

static uint16_t *used_ring(struct ctx *c)
{
    return gpa(c, c->vq.used_gpa);
}

static void make_avail(struct ctx *c, uint16_t head)
{
    uint16_t *a = avail_ring(c);

    a[2 + a[1] % c->vq.size] = head;
    a[1]++;
}

static void set_used_event(struct ctx *c, uint16_t v)
{
    avail_ring(c)[2 + c->vq.size] = v;
}

static uint16_t avail_event(struct ctx *c)
{
    return *(uint16_t *)gpa(c, c->vq.used_gpa + 4 + 8 * c->vq.size);
}

static uint32_t used_elem(struct ctx *c, unsigned i, unsigned word)
{
    return ((uint32_t *)gpa(c, c->vq.used_gpa + 4 + 8 * i))[word];
}

static void start(struct ctx *c)
{
    herd_err_clear(&c->err);
    if (virtq_start(&c->vq, &c->err))
        fail_msg("virtq_start: %s", c->err.msg);
}

static int pop(struct ctx *c)
{
    herd_err_clear(&c->err);
    return virtq_pop(&c->vq, &c->chain, &c->err);
}

/* The head just made available must be refused: negative, a reason that
 * mentions `needle` (if given), and the entry not consumed. */
static void pop_refused(struct ctx *c, const char *needle, int line)
{
    uint16_t last = c->vq.last_avail;
    int rc = pop(c);

    if (rc >= 0)
        fail_msg("line %d: pop returned %d, expected an error", line, rc);
    if (!c->err.msg[0])
        fail_msg("line %d: error %d without a reason", line, rc);
    if (needle && !strstr(c->err.msg, needle))
        fail_msg("line %d: reason '%s' does not mention '%s'", line, c->err.msg, needle);
    assert_int_equal(c->vq.last_avail, last);
}
#define POP_REFUSED(c, needle) pop_refused(c, needle, __LINE__)

static void start_refused(struct ctx *c, int line)
{
    int rc;

    herd_err_clear(&c->err);
    rc = virtq_start(&c->vq, &c->err);
    if (rc != -EINVAL)
        fail_msg("line %d: virtq_start returned %d, expected -EINVAL", line, rc);
    if (!c->err.msg[0])
        fail_msg("line %d: no reason", line);
    assert_false(c->vq.ready);
}
#define START_REFUSED(c) start_refused(c, __LINE__)

/* ---- virtq_start ------------------------------------------------------------ */

static void test_start_maps_rings(void **state)
{
    struct ctx *c = *state;

    start(c);
    assert_true(c->vq.ready);
    assert_ptr_equal(c->vq.desc, gpa(c, DESC));
    assert_ptr_equal((void *)c->vq.avail, gpa(c, AVAIL));
    assert_ptr_equal((void *)c->vq.used, gpa(c, USED));
    assert_int_equal(c->vq.last_avail, 0);
    assert_int_equal(c->vq.used_idx, 0);
    assert_int_equal(virtq_pending(&c->vq), 0);
    assert_int_equal(pop(c), 0);
}

static void test_start_size(void **state)
{
    struct ctx *c = *state;
    static const unsigned bad[] = {0, 3, 6, 12, 17, 1000, 1023, 2048, 4096, 32768, 65535};
    static const unsigned good[] = {1, 2, 4, 256, VIRTQ_MAX_SIZE};

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        virtq_init(&c->vq, &c->gm);
        c->vq.size = (uint16_t)bad[i];
        c->vq.desc_gpa = DESC;
        c->vq.avail_gpa = AVAIL;
        c->vq.used_gpa = 0x10000;
        START_REFUSED(c);
    }
    for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        virtq_init(&c->vq, &c->gm);
        c->vq.size = (uint16_t)good[i];
        c->vq.desc_gpa = 0x20000;
        c->vq.avail_gpa = 0x40000;
        c->vq.used_gpa = 0x50000;
        start(c);
    }
}

static void test_start_alignment(void **state)
{
    struct ctx *c = *state;

    c->vq.desc_gpa = DESC + 8;
    START_REFUSED(c);
    c->vq.desc_gpa = DESC;
    c->vq.avail_gpa = AVAIL + 1;
    START_REFUSED(c);
    c->vq.avail_gpa = AVAIL;
    c->vq.used_gpa = USED + 2;
    START_REFUSED(c);
    /* the minimum alignments the spec asks for: 16, 2, 4 */
    c->vq.desc_gpa = DESC + 16;
    c->vq.avail_gpa = AVAIL + 2;
    c->vq.used_gpa = USED + 4;
    start(c);
}

static void test_start_rings_outside_ram(void **state)
{
    struct ctx *c = *state;
    uint64_t desc_len = 16 * QSIZE, avail_len = 6 + 2 * QSIZE, used_len = 6 + 8 * QSIZE;

    /* each ring ending one entry past RAM */
    c->vq.desc_gpa = RAM - desc_len + 16;
    START_REFUSED(c);
    assert_null(c->vq.desc);
    c->vq.desc_gpa = DESC;
    c->vq.avail_gpa = RAM - avail_len + 2; /* used_event is the bytes past RAM */
    START_REFUSED(c);
    c->vq.avail_gpa = AVAIL;
    c->vq.used_gpa = RAM - used_len + 4; /* avail_event past RAM */
    START_REFUSED(c);
    c->vq.used_gpa = RAM;
    START_REFUSED(c);
    /* addresses that wrap */
    c->vq.used_gpa = 0xfffffffffffffff0ULL;
    START_REFUSED(c);
    c->vq.used_gpa = USED;
    c->vq.desc_gpa = 0xffffffffffffff00ULL;
    START_REFUSED(c);
    /* rings that end exactly at the end of RAM are fine */
    c->vq.desc_gpa = RAM - desc_len;
    c->vq.avail_gpa = RAM - desc_len - 0x100;
    c->vq.used_gpa = (RAM - desc_len - 0x200) & ~3ULL;
    start(c);
    c->vq.desc_gpa = DESC;
    c->vq.avail_gpa = (RAM - avail_len) & ~1ULL;
    c->vq.used_gpa = USED;
    start(c);
}

static void test_reset_stops_queue(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 0, BUF, 8, 0, 0);
    make_avail(c, 0);
    virtq_reset(&c->vq);
    assert_false(c->vq.ready);
    assert_ptr_equal(c->vq.mem, &c->gm);
    assert_int_equal(virtq_pending(&c->vq), 0);
    assert_int_equal(pop(c), 0);
}

/* ---- chains ------------------------------------------------------------------ */

static void test_pop_simple_chain(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 5, BUF, 100, VIRTQ_DESC_F_NEXT, 2);
    set_desc(c, 2, BUF + 0x1000, 50, VIRTQ_DESC_F_NEXT, 9);
    set_desc(c, 9, BUF + 0x2000, 200, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    set_desc(c, 0, BUF + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 5);
    assert_int_equal(virtq_pending(&c->vq), 1);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 5);
    assert_int_equal(c->chain.nr_out, 2);
    assert_int_equal(c->chain.nr_in, 2);
    assert_ptr_equal(c->chain.out[0].iov_base, gpa(c, BUF));
    assert_int_equal(c->chain.out[0].iov_len, 100);
    assert_ptr_equal(c->chain.out[1].iov_base, gpa(c, BUF + 0x1000));
    assert_int_equal(c->chain.out[1].iov_len, 50);
    assert_ptr_equal(c->chain.in[0].iov_base, gpa(c, BUF + 0x2000));
    assert_int_equal(c->chain.in[0].iov_len, 200);
    assert_ptr_equal(c->chain.in[1].iov_base, gpa(c, BUF + 0x3000));
    assert_int_equal(c->chain.in[1].iov_len, 1);
    assert_int_equal(c->chain.out_len, 150);
    assert_int_equal(c->chain.in_len, 201);
    assert_int_equal(virtq_pending(&c->vq), 0);
    assert_int_equal(c->vq.last_avail, 1);
    assert_int_equal(pop(c), 0);
}

static void test_pop_resets_chain_between_calls(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 0, BUF, 10, VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, BUF + 0x100, 20, VIRTQ_DESC_F_WRITE, 0);
    set_desc(c, 2, BUF + 0x200, 30, VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 0);
    make_avail(c, 2);
    assert_int_equal(pop(c), 1);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 2);
    assert_int_equal(c->chain.nr_out, 0);
    assert_int_equal(c->chain.nr_in, 1);
    assert_int_equal(c->chain.out_len, 0);
    assert_int_equal(c->chain.in_len, 30);
}

static void test_pop_full_length_chain(void **state)
{
    struct ctx *c = *state;

    /* every descriptor in one chain: long, but no loop */
    start(c);
    for (unsigned i = 0; i < QSIZE; i++)
        set_desc(c, i, BUF + 0x100 * i, 8, (uint16_t)(i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0),
                 (uint16_t)(i + 1));
    make_avail(c, 0);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.nr_out, QSIZE);
    assert_int_equal(c->chain.out_len, 8 * QSIZE);
    assert_ptr_equal(c->chain.out[QSIZE - 1].iov_base, gpa(c, BUF + 0x100 * (QSIZE - 1)));
}

static void test_pop_loops_refused(void **state)
{
    struct ctx *c = *state;

    start(c);
    /* a -> b -> a */
    set_desc(c, 3, BUF, 8, VIRTQ_DESC_F_NEXT, 7);
    set_desc(c, 7, BUF + 0x100, 8, VIRTQ_DESC_F_NEXT, 3);
    make_avail(c, 3);
    POP_REFUSED(c, "loop");
    /* self loop, and a loop entered after a tail */
    virtq_reset(&c->vq);
    c->vq.size = QSIZE;
    c->vq.desc_gpa = DESC;
    c->vq.avail_gpa = AVAIL;
    c->vq.used_gpa = USED;
    memset(gpa(c, AVAIL), 0, 0x100);
    start(c);
    set_desc(c, 4, BUF, 8, VIRTQ_DESC_F_NEXT, 4);
    make_avail(c, 4);
    POP_REFUSED(c, "loop");
}

static void test_pop_tail_loop_refused(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
    set_desc(c, 2, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    make_avail(c, 0);
    POP_REFUSED(c, "loop");
}

static void test_pop_next_out_of_range(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 0, BUF, 8, VIRTQ_DESC_F_NEXT, QSIZE);
    make_avail(c, 0);
    POP_REFUSED(c, "next");
    set_desc(c, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 0xffff);
    POP_REFUSED(c, NULL);
}

static void test_pop_buffer_outside_ram(void **state)
{
    struct ctx *c = *state;
    static const struct {
        uint64_t addr;
        uint32_t len;
    } bad[] = {
        {RAM, 1},                       /* just past the end */
        {RAM - 8, 16},                  /* straddling the end */
        {RAM - 1, 0xffffffffu},         /* long enough to wrap a 32-bit sum */
        {0xfffffffffffffff0ULL, 0x20},  /* wraps the 64-bit address space */
        {0xffffffffffffffffULL, 1},
        {LAYOUT_MMIO_HOLE_START, 4},    /* no RAM there at all */
        {0, 0xffffffffu},               /* longer than RAM */
    };

    start(c);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* alone, writable, and behind a good descriptor */
        set_desc(c, 0, bad[i].addr, bad[i].len, 0, 0);
        make_avail(c, 0);
        POP_REFUSED(c, "not guest RAM");
        set_desc(c, 0, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
        POP_REFUSED(c, "not guest RAM");
        set_desc(c, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
        avail_ring(c)[2 + c->vq.last_avail % QSIZE] = 1;
        POP_REFUSED(c, "not guest RAM");
        /* drop the bad entry so the next round starts clean */
        virtq_reset(&c->vq);
        c->vq.size = QSIZE;
        c->vq.desc_gpa = DESC;
        c->vq.avail_gpa = AVAIL;
        c->vq.used_gpa = USED;
        memset(gpa(c, AVAIL), 0, 0x100);
        start(c);
    }
    /* the last byte of RAM is fine */
    set_desc(c, 0, RAM - 1, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 0);
    assert_int_equal(pop(c), 1);
    assert_ptr_equal(c->chain.in[0].iov_base, gpa(c, RAM - 1));
}

static void test_pop_zero_length_buffers(void **state)
{
    struct ctx *c = *state;

    /* Zero-length buffers map nothing (even at an address that is not RAM)
     * and do not show up in the iovecs. */
    start(c);
    set_desc(c, 0, BUF, 0, VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, BUF + 0x100, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(c, 2, 0xfffffffffffff000ULL, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
    set_desc(c, 3, BUF + 0x200, 4, VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 0);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.nr_out, 1);
    assert_int_equal(c->chain.nr_in, 1);
    assert_ptr_equal(c->chain.out[0].iov_base, gpa(c, BUF + 0x100));
    assert_ptr_equal(c->chain.in[0].iov_base, gpa(c, BUF + 0x200));
    assert_int_equal(c->chain.out_len, 16);
    assert_int_equal(c->chain.in_len, 4);

    /* a chain of nothing but an empty buffer is an empty request */
    set_desc(c, 5, BUF, 0, 0, 0);
    make_avail(c, 5);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 5);
    assert_int_equal(c->chain.nr_out + c->chain.nr_in, 0);
}

static void test_pop_readable_after_writable(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, BUF + 0x100, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    set_desc(c, 2, BUF + 0x200, 8, 0, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "after");
}

static void test_pop_avail_idx_jump(void **state)
{
    struct ctx *c = *state;
    uint16_t *a = avail_ring(c);

    start(c);
    for (unsigned i = 0; i < QSIZE; i++)
        set_desc(c, i, BUF + 0x10 * i, 8, 0, 0);
    a[1] = QSIZE + 1;
    assert_int_equal(virtq_pending(&c->vq), QSIZE + 1);
    POP_REFUSED(c, "avail index");
    a[1] = 0xffff; /* "negative": behind last_avail */
    POP_REFUSED(c, NULL);
    /* exactly a full ring is fine */
    for (unsigned i = 0; i < QSIZE; i++)
        a[2 + i] = (uint16_t)(QSIZE - 1 - i);
    a[1] = QSIZE;
    for (unsigned i = 0; i < QSIZE; i++) {
        assert_int_equal(pop(c), 1);
        assert_int_equal(c->chain.head, QSIZE - 1 - i);
    }
    assert_int_equal(pop(c), 0);
}

static void test_pop_avail_names_bad_head(void **state)
{
    struct ctx *c = *state;

    start(c);
    make_avail(c, QSIZE);
    POP_REFUSED(c, "descriptor");
    assert_int_equal(virtq_pending(&c->vq), 1);
    avail_ring(c)[2] = 0xffff;
    POP_REFUSED(c, NULL);
}

static void test_pop_wraps_avail_ring(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 1, BUF, 8, 0, 0);
    set_desc(c, 2, BUF + 8, 8, VIRTQ_DESC_F_WRITE, 0);
    /* more entries than the ring holds, one at a time: the index wraps
     * around the ring, and the 16-bit counters around 65536 */
    for (unsigned i = 0; i < 70000; i++) {
        uint16_t head = (uint16_t)(1 + (i & 1));

        make_avail(c, head);
        assert_int_equal(pop(c), 1);
        assert_int_equal(c->chain.head, head);
        virtq_push(&c->vq, head, i & 1 ? 8 : 0);
    }
    assert_int_equal(c->vq.last_avail, (uint16_t)70000);
    assert_int_equal(used_ring(c)[1], (uint16_t)70000);
}

/* ---- indirect tables ------------------------------------------------------- */

static void indirect_chain(struct ctx *c)
{
    set_indirect(c, TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    set_indirect(c, TABLE, 2, BUF + 0x100, 32, VIRTQ_DESC_F_NEXT, 1);
    set_indirect(c, TABLE, 1, BUF + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
}

static void test_indirect_pop(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    indirect_chain(c);
    /* the WRITE flag on the indirect descriptor itself means nothing */
    set_desc(c, 6, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 6);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 6);
    assert_int_equal(c->chain.nr_out, 2);
    assert_int_equal(c->chain.nr_in, 1);
    assert_ptr_equal(c->chain.out[0].iov_base, gpa(c, BUF));
    assert_int_equal(c->chain.out[0].iov_len, 16);
    assert_ptr_equal(c->chain.out[1].iov_base, gpa(c, BUF + 0x100));
    assert_int_equal(c->chain.out[1].iov_len, 32);
    assert_ptr_equal(c->chain.in[0].iov_base, gpa(c, BUF + 0x200));
    assert_int_equal(c->chain.in[0].iov_len, 64);
    assert_int_equal(c->chain.out_len, 48);
    assert_int_equal(c->chain.in_len, 64);
}

static void test_indirect_full_table(void **state)
{
    struct ctx *c = *state;

    /* A table may be longer than the queue: up to VIRTQ_MAX_SIZE entries. */
    c->vq.indirect = true;
    start(c);
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
        set_indirect(c, TABLE, i, BUF + 4 * i, 4,
                     (uint16_t)(i + 1 < VIRTQ_MAX_SIZE ? VIRTQ_DESC_F_NEXT : 0),
                     (uint16_t)(i + 1));
    set_desc(c, 0, TABLE, 16 * VIRTQ_MAX_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.nr_out, VIRTQ_MAX_SIZE);
    assert_int_equal(c->chain.out_len, 4 * VIRTQ_MAX_SIZE);
    /* one entry more is refused */
    set_desc(c, 1, TABLE, 16 * (VIRTQ_MAX_SIZE + 1), VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 1);
    POP_REFUSED(c, "indirect");
}

static void test_indirect_without_feature(void **state)
{
    struct ctx *c = *state;

    start(c);
    indirect_chain(c);
    set_desc(c, 0, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "INDIRECT");
}

static void test_indirect_nested(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    set_indirect(c, TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_indirect(c, TABLE, 1, TABLE + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
    set_indirect(c, TABLE + 0x100, 0, BUF, 16, 0, 0);
    set_desc(c, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "nested");
    /* a table pointing at itself */
    set_indirect(c, TABLE, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
    set_desc(c, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
    POP_REFUSED(c, "nested");
}

static void test_indirect_with_next(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    indirect_chain(c);
    set_desc(c, 0, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "NEXT");
}

static void test_indirect_inside_chain(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    indirect_chain(c);
    set_desc(c, 0, BUF + 0x400, 8, VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "indirect");
}

static void test_indirect_bad_length(void **state)
{
    struct ctx *c = *state;
    static const uint32_t bad[] = {0, 1, 8, 15, 17, 40, 3 * 16 + 1};

    c->vq.indirect = true;
    start(c);
    indirect_chain(c);
    make_avail(c, 0);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_desc(c, 0, TABLE, bad[i], VIRTQ_DESC_F_INDIRECT, 0);
        POP_REFUSED(c, "indirect table");
    }
}

static void test_indirect_table_outside_ram(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    make_avail(c, 0);
    set_desc(c, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
    POP_REFUSED(c, "indirect table");
    set_desc(c, 0, RAM, 16, VIRTQ_DESC_F_INDIRECT, 0);
    POP_REFUSED(c, "indirect table");
    set_desc(c, 0, 0xfffffffffffffff0ULL, 32, VIRTQ_DESC_F_INDIRECT, 0);
    POP_REFUSED(c, "indirect table");
    /* the last 16 bytes of RAM hold a valid one-entry table */
    set_indirect(c, RAM - 16, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    set_desc(c, 0, RAM - 16, 16, VIRTQ_DESC_F_INDIRECT, 0);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.nr_in, 1);
}

static void test_indirect_loop(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    set_indirect(c, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_indirect(c, TABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
    set_indirect(c, TABLE, 2, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
    set_desc(c, 0, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "loop");
    /* a one-entry table naming itself */
    set_desc(c, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
    set_indirect(c, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
    POP_REFUSED(c, "loop");
}

static void test_indirect_next_out_of_range(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    set_indirect(c, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_indirect(c, TABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 3); /* table has 3 entries */
    set_indirect(c, TABLE, 2, BUF, 8, 0, 0);
    set_indirect(c, TABLE, 3, BUF, 8, 0, 0); /* there, but not part of the table */
    set_desc(c, 0, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    POP_REFUSED(c, "range");
}

static void test_indirect_buffer_checks(void **state)
{
    struct ctx *c = *state;

    c->vq.indirect = true;
    start(c);
    set_desc(c, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(c, 0);
    set_indirect(c, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
    set_indirect(c, TABLE, 1, RAM - 4, 8, VIRTQ_DESC_F_WRITE, 0);
    POP_REFUSED(c, "not guest RAM");
    set_indirect(c, TABLE, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    set_indirect(c, TABLE, 1, BUF, 8, 0, 0);
    POP_REFUSED(c, "after");
}

/* ---- the MMIO hole ----------------------------------------------------------- */

static void test_hole_buffers(void **state)
{
    struct ctx *c = *state;
    const uint64_t low_end = LAYOUT_MMIO_HOLE_START, high_end = LAYOUT_HIGH_RAM_START + 2 * MiB;

    c->vq.indirect = true;
    start(c);
    make_avail(c, 0);
    /* straddling the end of low RAM into the hole */
    set_desc(c, 0, low_end - 0x800, 0x1000, 0, 0);
    POP_REFUSED(c, "not guest RAM");
    /* inside the hole */
    set_desc(c, 0, low_end, 0x10, VIRTQ_DESC_F_WRITE, 0);
    POP_REFUSED(c, "not guest RAM");
    set_desc(c, 0, LAYOUT_HIGH_RAM_START - 0x10, 0x10, VIRTQ_DESC_F_WRITE, 0);
    POP_REFUSED(c, "not guest RAM");
    /* straddling from the hole into high RAM */
    set_desc(c, 0, LAYOUT_HIGH_RAM_START - 8, 0x10, VIRTQ_DESC_F_WRITE, 0);
    POP_REFUSED(c, "not guest RAM");
    /* from low RAM across the whole hole into high RAM */
    set_desc(c, 0, low_end - 8, (uint32_t)(LAYOUT_HIGH_RAM_START - low_end + 16), 0, 0);
    POP_REFUSED(c, "not guest RAM");
    /* straddling the end of high RAM */
    set_desc(c, 0, high_end - 8, 0x10, VIRTQ_DESC_F_WRITE, 0);
    POP_REFUSED(c, "not guest RAM");
    /* an indirect table in the hole */
    set_desc(c, 0, low_end + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
    POP_REFUSED(c, "indirect table");

    /* both sides of the hole are RAM */
    set_desc(c, 0, low_end - 0x10, 0x10, VIRTQ_DESC_F_NEXT, 1);
    set_desc(c, 1, LAYOUT_HIGH_RAM_START, 0x1000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    set_desc(c, 2, high_end - 0x10, 0x10, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(pop(c), 1);
    assert_ptr_equal(c->chain.out[0].iov_base, c->ram + low_end - 0x10);
    assert_ptr_equal(c->chain.in[0].iov_base, c->ram + low_end);
    assert_ptr_equal(c->chain.in[1].iov_base, c->ram + c->ram_size - 0x10);
}

static void test_hole_rings(void **state)
{
    struct ctx *c = *state;

    c->vq.used_gpa = LAYOUT_MMIO_HOLE_START - 0x40; /* 6 + 8 * 16 bytes do not fit */
    START_REFUSED(c);
    c->vq.used_gpa = LAYOUT_HIGH_RAM_START;
    start(c);
    assert_ptr_equal((void *)c->vq.used, c->ram + LAYOUT_MMIO_HOLE_START);
}

/* ---- used ring ---------------------------------------------------------------- */

static void test_push_writes_used(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 3, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    set_desc(c, 4, BUF + 8, 8, VIRTQ_DESC_F_WRITE, 0);
    make_avail(c, 3);
    make_avail(c, 4);
    assert_int_equal(pop(c), 1);
    assert_int_equal(pop(c), 1);
    /* completions may come back out of order */
    virtq_push(&c->vq, 4, 8);
    assert_int_equal(used_ring(c)[1], 1);
    assert_int_equal(used_elem(c, 0, 0), 4);
    assert_int_equal(used_elem(c, 0, 1), 8);
    virtq_push(&c->vq, 3, 0x12345678);
    assert_int_equal(used_ring(c)[1], 2);
    assert_int_equal(used_elem(c, 1, 0), 3);
    assert_int_equal(used_elem(c, 1, 1), 0x12345678);
    assert_int_equal(used_ring(c)[0], 0); /* flags untouched */
    /* the used ring wraps at the queue size */
    for (unsigned i = 2; i < QSIZE + 3; i++)
        virtq_push(&c->vq, (uint16_t)(i % QSIZE), i);
    assert_int_equal(used_ring(c)[1], QSIZE + 3);
    assert_int_equal(used_elem(c, 2, 0), (QSIZE + 2) % QSIZE);
    assert_int_equal(used_elem(c, 2, 1), QSIZE + 2);
    assert_int_equal(used_elem(c, 3, 1), 3);
    /* nothing written past the used ring's avail_event slot */
    assert_int_equal(*(uint8_t *)gpa(c, USED + 6 + 8 * QSIZE), 0);
}

static void test_unpop(void **state)
{
    struct ctx *c = *state;

    start(c);
    set_desc(c, 7, BUF, 8, 0, 0);
    set_desc(c, 8, BUF, 8, 0, 0);
    make_avail(c, 7);
    make_avail(c, 8);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 7);
    virtq_unpop(&c->vq);
    assert_int_equal(virtq_pending(&c->vq), 2);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 7);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 8);
    virtq_unpop(&c->vq);
    assert_int_equal(pop(c), 1);
    assert_int_equal(c->chain.head, 8);
    assert_int_equal(pop(c), 0);
}

/* ---- notification suppression ------------------------------------------------ */

static void test_should_signal_no_interrupt_flag(void **state)
{
    struct ctx *c = *state;

    start(c);
    virtq_push(&c->vq, 0, 0);
    assert_true(virtq_should_signal(&c->vq));
    assert_true(virtq_should_signal(&c->vq));
    avail_ring(c)[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
    virtq_push(&c->vq, 0, 0);
    assert_false(virtq_should_signal(&c->vq));
    avail_ring(c)[0] = 0;
    assert_true(virtq_should_signal(&c->vq));
    /* used_event means nothing without EVENT_IDX */
    set_used_event(c, 100);
    assert_true(virtq_should_signal(&c->vq));
}

static void test_should_signal_event_idx(void **state)
{
    struct ctx *c = *state;

    c->vq.event_idx = true;
    start(c);
    set_used_event(c, 0xffff);
    /* the first call signals whatever used_event says */
    virtq_push(&c->vq, 0, 0);
    assert_true(virtq_should_signal(&c->vq));
    /* the NO_INTERRUPT flag is ignored with EVENT_IDX */
    avail_ring(c)[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
    /* used is 1; the guest wants an interrupt once entry 5 is used (idx 6) */
    set_used_event(c, 5);
    for (unsigned used = 2; used <= 8; used++) {
        virtq_push(&c->vq, 0, 0);
        if (virtq_should_signal(&c->vq) != (used == 6))
            fail_msg("used idx %u: signal %s", used, used == 6 ? "missing" : "unexpected");
    }
    /* several entries at once that pass used_event: one signal */
    set_used_event(c, 10);
    virtq_push(&c->vq, 0, 0); /* 9 */
    virtq_push(&c->vq, 0, 0); /* 10 */
    virtq_push(&c->vq, 0, 0); /* 11 */
    assert_true(virtq_should_signal(&c->vq));
    assert_false(virtq_should_signal(&c->vq)); /* nothing new */
    /* used_event behind: no signal until it is moved */
    virtq_push(&c->vq, 0, 0); /* 12 */
    assert_false(virtq_should_signal(&c->vq));
    set_used_event(c, 12);
    virtq_push(&c->vq, 0, 0); /* 13 */
    assert_true(virtq_should_signal(&c->vq));
}

static void test_should_signal_event_idx_wraps(void **state)
{
    struct ctx *c = *state;

    c->vq.event_idx = true;
    start(c);
    set_used_event(c, 0);
    virtq_push(&c->vq, 0, 0);
    assert_true(virtq_should_signal(&c->vq));
    while (c->vq.used_idx != 0xfffd)
        virtq_push(&c->vq, 0, 0);
    set_used_event(c, 0xfffc);
    assert_true(virtq_should_signal(&c->vq)); /* catch up: old 1, event passed */
    /* the guest wants entry 1 after the 16-bit wrap */
    set_used_event(c, 1);
    for (unsigned step = 0; step < 6; step++) {
        virtq_push(&c->vq, 0, 0); /* 0xfffe, 0xffff, 0, 1, 2, 3 */
        if (virtq_should_signal(&c->vq) != (c->vq.used_idx == 2))
            fail_msg("used idx %u: wrong decision", c->vq.used_idx);
    }
}

static void test_enable_notify_event_idx(void **state)
{
    struct ctx *c = *state;

    c->vq.event_idx = true;
    start(c);
    set_desc(c, 0, BUF, 8, 0, 0);
    make_avail(c, 0);
    make_avail(c, 0);
    assert_int_equal(pop(c), 1);
    /* one entry still there: enable says so, and asks for the next kick at 1 */
    assert_true(virtq_enable_notify(&c->vq));
    assert_int_equal(avail_event(c), 1);
    assert_int_equal(pop(c), 1);
    assert_false(virtq_enable_notify(&c->vq));
    assert_int_equal(avail_event(c), 2);
    /* disable with EVENT_IDX leaves the used flags alone */
    virtq_disable_notify(&c->vq);
    assert_int_equal(used_ring(c)[0], 0);
    /* an entry arriving before the recheck */
    make_avail(c, 0);
    assert_true(virtq_enable_notify(&c->vq));
    assert_int_equal(avail_event(c), 2);
    assert_int_equal(used_ring(c)[0], 0);
}

static void test_enable_notify_flags(void **state)
{
    struct ctx *c = *state;

    start(c);
    virtq_disable_notify(&c->vq);
    assert_int_equal(used_ring(c)[0], VIRTQ_USED_F_NO_NOTIFY);
    assert_false(virtq_enable_notify(&c->vq));
    assert_int_equal(used_ring(c)[0], 0);
    assert_int_equal(avail_event(c), 0); /* not written without EVENT_IDX */
    virtq_disable_notify(&c->vq);
    set_desc(c, 0, BUF, 8, 0, 0);
    make_avail(c, 0);
    assert_true(virtq_enable_notify(&c->vq));
    assert_int_equal(used_ring(c)[0], 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TH(f) cmocka_unit_test_setup_teardown(f, setup_hole, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_start_maps_rings),
        T(test_start_size),
        T(test_start_alignment),
        T(test_start_rings_outside_ram),
        T(test_reset_stops_queue),
        T(test_pop_simple_chain),
        T(test_pop_resets_chain_between_calls),
        T(test_pop_full_length_chain),
        T(test_pop_loops_refused),
        T(test_pop_tail_loop_refused),
        T(test_pop_next_out_of_range),
        T(test_pop_buffer_outside_ram),
        T(test_pop_zero_length_buffers),
        T(test_pop_readable_after_writable),
        T(test_pop_avail_idx_jump),
        T(test_pop_avail_names_bad_head),
        T(test_pop_wraps_avail_ring),
        T(test_indirect_pop),
        T(test_indirect_full_table),
        T(test_indirect_without_feature),
        T(test_indirect_nested),
        T(test_indirect_with_next),
        T(test_indirect_inside_chain),
        T(test_indirect_bad_length),
        T(test_indirect_table_outside_ram),
        T(test_indirect_loop),
        T(test_indirect_next_out_of_range),
        T(test_indirect_buffer_checks),
        TH(test_hole_buffers),
        TH(test_hole_rings),
        T(test_push_writes_used),
        T(test_unpop),
        T(test_should_signal_no_interrupt_flag),
        T(test_should_signal_event_idx),
        T(test_should_signal_event_idx_wraps),
        T(test_enable_notify_event_idx),
        T(test_enable_notify_flags),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
