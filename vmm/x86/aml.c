/*
 * AML byte-code writer (ACPI 6.5, chapter 20 "ACPI Machine Language" and
 * 6.4 "Resource Data Types"). Nested objects record where their body
 * starts; closing one inserts the PkgLength (and, for buffers, the buffer
 * size) in front of the body.
 */
#include "herd/aml.h"

#include <errno.h>
#include <string.h>

#define OP_ZERO        0x00
#define OP_ONE         0x01
#define OP_NAME        0x08
#define OP_BYTE        0x0a
#define OP_WORD        0x0b
#define OP_DWORD       0x0c
#define OP_STRING      0x0d
#define OP_QWORD       0x0e
#define OP_SCOPE       0x10
#define OP_BUFFER      0x11
#define OP_PACKAGE     0x12
#define OP_METHOD      0x14
#define OP_LOCAL0      0x60
#define OP_ARG0        0x68
#define OP_STORE       0x70
#define OP_AND         0x7b
#define OP_NOTIFY      0x86
#define OP_LEQUAL      0x93
#define OP_IF          0xa0
#define OP_DUAL_NAME   0x2e
#define OP_MULTI_NAME  0x2f
#define OP_EXT         0x5b
#define OP_EXT_REGION  0x80
#define OP_EXT_FIELD   0x81
#define OP_EXT_DEVICE  0x82
#define OP_ROOT        0x5c
#define OP_PARENT      0x5e
#define OP_RETURN      0xa4

/* Resource descriptor tags. */
#define RES_IRQ_NOFLAGS 0x22 /* small, 2 bytes of body */
#define RES_IO          0x47 /* small, 7 bytes */
#define RES_END_TAG     0x79 /* small, 1 byte: checksum */
#define RES_MEMORY32_FIXED 0x86
#define RES_DWORD_ADDRESS  0x87
#define RES_WORD_ADDRESS   0x88
#define RES_EXT_INTERRUPT  0x89

#define ADDR_TYPE_MEMORY 0
#define ADDR_TYPE_IO     1
#define ADDR_TYPE_BUS    2
/* general flags: producer, positive decode, min fixed, max fixed */
#define ADDR_PRODUCER_FIXED 0x0c
#define IO_ENTIRE_RANGE     0x03
#define MEM_READ_WRITE      0x01

enum kind { KIND_PLAIN = 1, KIND_BUFFER, KIND_RESTEMPLATE };

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
    memset(a, 0, sizeof(*a));
    a->buf = buf;
    a->cap = cap;
}

long aml_finish(const struct aml *a)
{
    if (a->err)
        return a->err;
    if (a->depth)
        return -EINVAL;
    return (long)a->len;
}

static void fail(struct aml *a, int err)
{
    if (!a->err)
        a->err = err;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (a->err)
        return;
    if (n > a->cap - a->len) {
        fail(a, -ENOSPC);
        return;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

static void put8(struct aml *a, uint8_t v)
{
    aml_bytes(a, &v, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned n)
{
    uint8_t b[8];

    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    aml_bytes(a, b, n);
}

/* Inserts n bytes at offset `at` (inside what is written already). */
static void insert(struct aml *a, size_t at, const uint8_t *p, size_t n)
{
    if (a->err)
        return;
    if (n > a->cap - a->len) {
        fail(a, -ENOSPC);
        return;
    }
    memmove(a->buf + at + n, a->buf + at, a->len - at);
    memcpy(a->buf + at, p, n);
    a->len += n;
}

/* Writes `total` as a PkgLength of exactly n bytes (1-4): one byte holds 6
 * bits, more bytes hold 4 bits in the lead byte plus 8 per following byte. */
static void pkglen_put(size_t total, unsigned n, uint8_t out[4])
{
    if (n == 1) {
        out[0] = (uint8_t)total;
        return;
    }
    out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
    for (unsigned i = 1; i < n; i++)
        out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

static const size_t pkglen_limit[4] = {0x3f, 0xfff, 0xfffff, AML_PKGLEN_MAX};

unsigned aml_pkglen_encode(size_t content, uint8_t out[4])
{
    /* The length of a package counts its own bytes. */
    for (unsigned n = 1; n <= 4; n++) {
        size_t total = content + n;

        if (content > AML_PKGLEN_MAX || total > pkglen_limit[n - 1])
            continue;
        pkglen_put(total, n, out);
        return n;
    }
    return 0;
}

/* A PkgLength that is a plain number (a field's width in bits): it does not
 * count its own bytes. */
static unsigned pkglen_encode_value(size_t value, uint8_t out[4])
{
    for (unsigned n = 1; n <= 4; n++) {
        if (value <= pkglen_limit[n - 1]) {
            pkglen_put(value, n, out);
            return n;
        }
    }
    return 0;
}

static unsigned encode_integer(uint64_t v, uint8_t out[9])
{
    unsigned n;

    if (v == 0 || v == 1) {
        out[0] = v ? OP_ONE : OP_ZERO;
        return 1;
    }
    if (v <= 0xff) {
        out[0] = OP_BYTE;
        n = 1;
    } else if (v <= 0xffff) {
        out[0] = OP_WORD;
        n = 2;
    } else if (v <= 0xffffffffu) {
        out[0] = OP_DWORD;
        n = 4;
    } else {
        out[0] = OP_QWORD;
        n = 8;
    }
    for (unsigned i = 0; i < n; i++)
        out[1 + i] = (uint8_t)(v >> (8 * i));
    return 1 + n;
}

void aml_integer(struct aml *a, uint64_t v)
{
    uint8_t b[9];

    aml_bytes(a, b, encode_integer(v, b));
}

void aml_string(struct aml *a, const char *s)
{
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x01 || (unsigned char)*c > 0x7f) {
            fail(a, -EINVAL);
            return;
        }
    }
    put8(a, OP_STRING);
    aml_bytes(a, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint32_t aml_eisaid_value(const char *id)
{
    uint32_t v = 0;

    if (strlen(id) != 7)
        return 0;
    for (unsigned i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z')
            return 0;
        v = (v << 5) | (uint32_t)(id[i] - '@');
    }
    for (unsigned i = 3; i < 7; i++) {
        int d = hex_digit(id[i]);

        if (d < 0)
            return 0;
        v = (v << 4) | (uint32_t)d;
    }
    /* The 31 bits are stored big-endian; AML reads the dword little-endian. */
    return ((v >> 24) & 0xff) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

void aml_eisaid(struct aml *a, const char *id)
{
    uint32_t v = aml_eisaid_value(id);

    if (!v) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, OP_DWORD);
    put_le(a, v, 4);
}

static int name_char_ok(char c, int lead)
{
    if ((c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    return !lead && c >= '0' && c <= '9';
}

/* Parses one segment of 1-4 characters at *p into seg (padded with '_'). */
static int parse_segment(const char **p, char seg[4])
{
    unsigned n = 0;

    while (**p && **p != '.') {
        if (n == 4 || !name_char_ok(**p, n == 0))
            return -EINVAL;
        seg[n++] = *(*p)++;
    }
    if (n == 0)
        return -EINVAL;
    while (n < 4)
        seg[n++] = '_';
    if (**p == '.')
        (*p)++;
    return **p || (*p)[-1] != '.' ? 0 : -EINVAL; /* no trailing dot */
}

#define MAX_SEGMENTS 16

void aml_name_string(struct aml *a, const char *path)
{
    char segs[MAX_SEGMENTS][4];
    unsigned n = 0;
    const char *p = path;

    if (*p == '\\') {
        put8(a, OP_ROOT);
        p++;
    }
    while (*p == '^') {
        put8(a, OP_PARENT);
        p++;
    }
    while (*p) {
        if (n == MAX_SEGMENTS || parse_segment(&p, segs[n]) < 0) {
            fail(a, -EINVAL);
            return;
        }
        n++;
    }
    if (n == 0 && path[0] != '\\') {
        fail(a, -EINVAL);
        return;
    }
    if (n == 0) {
        put8(a, OP_ZERO); /* NullName: the root itself */
        return;
    }
    if (n == 2)
        put8(a, OP_DUAL_NAME);
    else if (n > 2) {
        put8(a, OP_MULTI_NAME);
        put8(a, (uint8_t)n);
    }
    aml_bytes(a, segs, 4 * (size_t)n);
}

void aml_name(struct aml *a, const char *name)
{
    put8(a, OP_NAME);
    aml_name_string(a, name);
}

void aml_name_integer(struct aml *a, const char *name, uint64_t v)
{
    aml_name(a, name);
    aml_integer(a, v);
}

void aml_name_string_value(struct aml *a, const char *name, const char *s)
{
    aml_name(a, name);
    aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
    aml_name(a, name);
    aml_eisaid(a, id);
}

static void open_body(struct aml *a, enum kind kind)
{
    if (a->err)
        return;
    if (a->depth == AML_MAX_DEPTH) {
        fail(a, -E2BIG);
        return;
    }
    a->open[a->depth].start = a->len;
    a->open[a->depth].kind = (uint8_t)kind;
    a->depth++;
}

void aml_scope_begin(struct aml *a, const char *path)
{
    put8(a, OP_SCOPE);
    open_body(a, KIND_PLAIN);
    aml_name_string(a, path);
}

void aml_device_begin(struct aml *a, const char *name)
{
    const uint8_t op[2] = {OP_EXT, OP_EXT_DEVICE};

    aml_bytes(a, op, 2);
    open_body(a, KIND_PLAIN);
    aml_name_string(a, name);
}

void aml_method_begin(struct aml *a, const char *name, unsigned nargs, int serialized)
{
    if (nargs > 7) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, OP_METHOD);
    open_body(a, KIND_PLAIN);
    aml_name_string(a, name);
    put8(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

void aml_package_begin(struct aml *a, unsigned nelems)
{
    if (nelems > 0xff) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, OP_PACKAGE);
    open_body(a, KIND_PLAIN);
    put8(a, (uint8_t)nelems);
}

void aml_buffer_begin(struct aml *a)
{
    put8(a, OP_BUFFER);
    open_body(a, KIND_BUFFER);
}

void aml_return(struct aml *a)
{
    put8(a, OP_RETURN);
}

/* Closes the innermost object, which must be of `kind`. */
static void close_body(struct aml *a, enum kind kind)
{
    uint8_t head[4 + 9];
    size_t start, content;
    unsigned n = 0, plen;

    if (a->err)
        return;
    if (a->depth == 0 || a->open[a->depth - 1].kind != kind) {
        fail(a, -EINVAL);
        return;
    }
    start = a->open[--a->depth].start;
    content = a->len - start;
    if (kind != KIND_PLAIN) /* BufferSize comes first, inside the PkgLength */
        n = encode_integer(content, head + 4);
    plen = aml_pkglen_encode(content + n, head);
    if (!plen) {
        fail(a, -E2BIG);
        return;
    }
    memmove(head + plen, head + 4, n);
    insert(a, start, head, plen + n);
}

void aml_end(struct aml *a)
{
    if (!a->err && a->depth && a->open[a->depth - 1].kind == KIND_BUFFER) {
        close_body(a, KIND_BUFFER);
        return;
    }
    close_body(a, KIND_PLAIN);
}

void aml_restemplate_begin(struct aml *a)
{
    put8(a, OP_BUFFER);
    open_body(a, KIND_RESTEMPLATE);
}

void aml_restemplate_end(struct aml *a)
{
    uint8_t sum = RES_END_TAG;
    size_t start;

    if (a->err)
        return;
    if (a->depth == 0 || a->open[a->depth - 1].kind != KIND_RESTEMPLATE) {
        fail(a, -EINVAL);
        return;
    }
    start = a->open[a->depth - 1].start;
    for (size_t i = start; i < a->len; i++)
        sum = (uint8_t)(sum + a->buf[i]);
    put8(a, RES_END_TAG);
    put8(a, (uint8_t)-sum);
    close_body(a, KIND_RESTEMPLATE);
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
    put8(a, RES_IO);
    put8(a, 0x01); /* 16-bit decode */
    put_le(a, min, 2);
    put_le(a, max, 2);
    put8(a, align);
    put8(a, len);
}

void aml_res_irq_noflags(struct aml *a, uint8_t irq)
{
    if (irq > 15) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, RES_IRQ_NOFLAGS);
    put_le(a, 1u << irq, 2);
}

void aml_res_interrupt(struct aml *a, int level, int active_low, uint32_t gsi)
{
    uint8_t flags = 0x01; /* consumer, exclusive, not wake capable */

    if (!level)
        flags |= 0x02;
    if (active_low)
        flags |= 0x04;
    put8(a, RES_EXT_INTERRUPT);
    put_le(a, 6, 2);
    put8(a, flags);
    put8(a, 1);
    put_le(a, gsi, 4);
}

void aml_res_memory32_fixed(struct aml *a, int writable, uint32_t base, uint32_t len)
{
    put8(a, RES_MEMORY32_FIXED);
    put_le(a, 9, 2);
    put8(a, writable ? MEM_READ_WRITE : 0);
    put_le(a, base, 4);
    put_le(a, len, 4);
}

/* Word and DWord address space descriptors share a layout: granularity,
 * min, max, translation offset, length, each `width` bytes. */
static void address_space(struct aml *a, uint8_t tag, unsigned width, uint8_t type,
                          uint8_t type_flags, uint64_t min, uint64_t max)
{
    uint64_t limit = width == 2 ? 0xffff : 0xffffffffu;

    /* The length field must hold max - min + 1. */
    if (max < min || max - min >= limit) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, tag);
    put_le(a, 3 + 5 * width, 2);
    put8(a, type);
    put8(a, ADDR_PRODUCER_FIXED);
    put8(a, type_flags);
    put_le(a, 0, width);
    put_le(a, min, width);
    put_le(a, max, width);
    put_le(a, 0, width);
    put_le(a, max - min + 1, width);
}

void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max)
{
    address_space(a, RES_DWORD_ADDRESS, 4, ADDR_TYPE_MEMORY, MEM_READ_WRITE, min, max);
}

void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
    address_space(a, RES_WORD_ADDRESS, 2, ADDR_TYPE_IO, IO_ENTIRE_RANGE, min, max);
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
    address_space(a, RES_WORD_ADDRESS, 2, ADDR_TYPE_BUS, 0, min, max);
}

/* Expressions and statements for method bodies. */

void aml_local(struct aml *a, unsigned n)
{
    if (n > 7) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, (uint8_t)(OP_LOCAL0 + n));
}

void aml_arg(struct aml *a, unsigned n)
{
    if (n > 6) {
        fail(a, -EINVAL);
        return;
    }
    put8(a, (uint8_t)(OP_ARG0 + n));
}

void aml_no_target(struct aml *a)
{
    put8(a, OP_ZERO); /* NullName */
}

void aml_store(struct aml *a)
{
    put8(a, OP_STORE);
}

void aml_and(struct aml *a)
{
    put8(a, OP_AND);
}

void aml_lequal(struct aml *a)
{
    put8(a, OP_LEQUAL);
}

void aml_notify(struct aml *a, const char *object, uint64_t value)
{
    put8(a, OP_NOTIFY);
    aml_name_string(a, object);
    aml_integer(a, value);
}

void aml_if_begin(struct aml *a)
{
    put8(a, OP_IF);
    open_body(a, KIND_PLAIN);
}

/* Operation regions and their fields. */

void aml_operation_region(struct aml *a, const char *name, uint8_t space, uint64_t offset,
                          uint64_t len)
{
    const uint8_t op[2] = {OP_EXT, OP_EXT_REGION};

    aml_bytes(a, op, 2);
    aml_name_string(a, name);
    put8(a, space);
    aml_integer(a, offset);
    aml_integer(a, len);
}

void aml_field_begin(struct aml *a, const char *region, uint8_t flags)
{
    const uint8_t op[2] = {OP_EXT, OP_EXT_FIELD};

    if (flags & 0x80) { /* bit 7 is reserved */
        fail(a, -EINVAL);
        return;
    }
    aml_bytes(a, op, 2);
    open_body(a, KIND_PLAIN);
    aml_name_string(a, region);
    put8(a, flags);
}

void aml_field_unit(struct aml *a, const char *name, uint32_t bits)
{
    const char *p = name;
    char seg[4];
    uint8_t len[4];
    unsigned n;

    /* A NamedField is one NameSeg (no path, no prefix) and a width. */
    if (strchr(name, '.') || parse_segment(&p, seg) < 0 || bits == 0) {
        fail(a, -EINVAL);
        return;
    }
    n = pkglen_encode_value(bits, len);
    if (!n) {
        fail(a, -EINVAL);
        return;
    }
    aml_bytes(a, seg, 4);
    aml_bytes(a, len, n);
}
