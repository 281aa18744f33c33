/*
 * The AML writer: PkgLength at each encoding boundary (checked against a
 * decoder written from the spec, and through nested objects), integers in
 * their shortest form, name strings, EISA ids, buffers and resource
 * templates (buffer size, End Tag checksum), operation regions and fields
 * (field widths are PkgLengths that do not count themselves), method bodies
 * (locals, arguments, Store, And, LEqual, If, Notify), and its sticky
 * errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "herd/aml.h"

/* ACPI 6.5, 20.2.4: bits 7-6 of the lead byte count the bytes that follow;
 * with none, bits 5-0 are the length, else bits 3-0 are its low nibble. */
static size_t pkglen_decode(const uint8_t *p, unsigned *nbytes)
{
    unsigned follow = p[0] >> 6;
    size_t v;

    *nbytes = follow + 1;
    if (!follow)
        return p[0] & 0x3f;
    v = p[0] & 0x0f;
    for (unsigned i = 0; i < follow; i++)
        v |= (size_t)p[1 + i] << (4 + 8 * i);
    return v;
}

static void expect_pkglen(size_t content, unsigned nbytes, const uint8_t *bytes)
{
    uint8_t out[4];
    unsigned n, dn;

    n = aml_pkglen_encode(content, out);
    assert_int_equal(n, nbytes);
    assert_memory_equal(out, bytes, n);
    assert_int_equal(pkglen_decode(out, &dn), content + n);
    assert_int_equal(dn, n);
}

static void test_pkglen_boundaries(void **state)
{
    expect_pkglen(0, 1, (const uint8_t[]){0x01});
    expect_pkglen(62, 1, (const uint8_t[]){0x3f});              /* 63: last 1-byte */
    expect_pkglen(63, 2, (const uint8_t[]){0x41, 0x04});        /* 65 */
    expect_pkglen(4093, 2, (const uint8_t[]){0x4f, 0xff});      /* 4095: last 2-byte */
    expect_pkglen(4094, 3, (const uint8_t[]){0x81, 0x00, 0x01}); /* 4097 */
    expect_pkglen(0xffffc, 3, (const uint8_t[]){0x8f, 0xff, 0xff}); /* 1M - 1 */
    expect_pkglen(0xffffd, 4, (const uint8_t[]){0xc1, 0x00, 0x00, 0x01});
    expect_pkglen(AML_PKGLEN_MAX - 4, 4, (const uint8_t[]){0xcf, 0xff, 0xff, 0xff});

    uint8_t out[4];

    assert_int_equal(aml_pkglen_encode(AML_PKGLEN_MAX - 3, out), 0);
    assert_int_equal(aml_pkglen_encode(SIZE_MAX, out), 0);
    /* Every length up to past the 3-byte range round-trips. */
    for (size_t c = 0; c < 0x100010; c += (c < 0x2000 ? 1 : 0xfff)) {
        unsigned n = aml_pkglen_encode(c, out), dn;

        assert_true(n >= 1 && n <= 4);
        assert_int_equal(pkglen_decode(out, &dn), c + n);
    }
}

/* A Package whose body is `content` bytes, built through the writer: the
 * inserted PkgLength must cover exactly what follows the opcode. */
static void check_package_of(size_t content)
{
    size_t cap = content + 16;
    uint8_t *buf = malloc(cap), *fill = calloc(1, content);
    struct aml a;
    unsigned n;
    long len;

    assert_non_null(buf);
    aml_init(&a, buf, cap);
    aml_package_begin(&a, 0);
    aml_bytes(&a, fill, content - 1); /* NumElements is the first body byte */
    aml_end(&a);
    len = aml_finish(&a);
    assert_true(len > 0);
    assert_int_equal(buf[0], 0x12);
    assert_int_equal(pkglen_decode(buf + 1, &n), (size_t)len - 1);
    assert_int_equal(n, aml_pkglen_encode(content, (uint8_t[4]){0}));
    free(buf);
    free(fill);
}

static void test_nested_lengths(void **state)
{
    const size_t sizes[] = {1, 62, 63, 64, 4093, 4094, 0xffffc, 0xffffd};

    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_package_of(sizes[i]);
}

static void test_device_in_scope(void **state)
{
    uint8_t buf[64];
    const uint8_t expect[] = {
        0x10, 0x14, 0x5c, '_', 'S', 'B', '_',              /* Scope (\_SB) */
        0x5b, 0x82, 0x0c, 'D', 'E', 'V', '0',              /* Device (DEV0) */
        0x08, '_', 'U', 'I', 'D', 0x0a, 0x07,              /* Name (_UID, 7) */
    };
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_scope_begin(&a, "\\_SB");
    aml_device_begin(&a, "DEV0");
    aml_name_integer(&a, "_UID", 7);
    aml_end(&a);
    aml_end(&a);
    assert_int_equal(aml_finish(&a), sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
}

static void test_method_return(void **state)
{
    uint8_t buf[32];
    const uint8_t expect[] = {0x14, 0x09, '_', 'S', 'T', 'A', 0x08, 0xa4, 0x0a, 0x0f};
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_method_begin(&a, "_STA", 0, 1);
    aml_return(&a);
    aml_integer(&a, 0x0f);
    aml_end(&a);
    assert_int_equal(aml_finish(&a), sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
}

static void expect_integer(uint64_t v, const uint8_t *bytes, size_t n)
{
    uint8_t buf[16];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_integer(&a, v);
    assert_int_equal(aml_finish(&a), n);
    assert_memory_equal(buf, bytes, n);
}

static void test_integers(void **state)
{
    expect_integer(0, (const uint8_t[]){0x00}, 1);
    expect_integer(1, (const uint8_t[]){0x01}, 1);
    expect_integer(2, (const uint8_t[]){0x0a, 0x02}, 2);
    expect_integer(0xff, (const uint8_t[]){0x0a, 0xff}, 2);
    expect_integer(0x100, (const uint8_t[]){0x0b, 0x00, 0x01}, 3);
    expect_integer(0xd0000000, (const uint8_t[]){0x0c, 0x00, 0x00, 0x00, 0xd0}, 5);
    expect_integer(0x100000000ULL,
                   (const uint8_t[]){0x0e, 0, 0, 0, 0, 1, 0, 0, 0}, 9);
}

static void test_strings(void **state)
{
    uint8_t buf[16];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_string(&a, "ab");
    assert_int_equal(aml_finish(&a), 4);
    assert_memory_equal(buf, ((const uint8_t[]){0x0d, 'a', 'b', 0}), 4);
    aml_init(&a, buf, sizeof(buf));
    aml_string(&a, "\xc3\xa9"); /* AML strings are ASCII */
    assert_int_equal(aml_finish(&a), -EINVAL);
}

static void expect_name(const char *path, const uint8_t *bytes, size_t n)
{
    uint8_t buf[64];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_name_string(&a, path);
    assert_int_equal(aml_finish(&a), n);
    assert_memory_equal(buf, bytes, n);
}

static void expect_bad_name(const char *path)
{
    uint8_t buf[64];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_name_string(&a, path);
    aml_integer(&a, 5); /* errors are sticky */
    assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_names(void **state)
{
    expect_name("_HID", (const uint8_t *)"_HID", 4);
    expect_name("S5", (const uint8_t *)"S5__", 4);
    expect_name("\\_S5", (const uint8_t *)"\\_S5_", 5);
    expect_name("\\", (const uint8_t[]){0x5c, 0x00}, 2);
    expect_name("\\_SB.PCI0", (const uint8_t *)"\\\x2e_SB_PCI0", 10);
    expect_name("\\_SB.PCI0.S08", (const uint8_t *)"\\\x2f\x03_SB_PCI0S08_", 15);
    expect_name("^^COM1", (const uint8_t *)"^^COM1", 6);
    expect_bad_name("");
    expect_bad_name("pci0");
    expect_bad_name("1ABC");
    expect_bad_name("ABCDE");
    expect_bad_name("A..B");
    expect_bad_name("A.");
    expect_bad_name(".A");
}

static void test_eisaid(void **state)
{
    uint8_t buf[8];
    struct aml a;

    assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);
    assert_int_equal(aml_eisaid_value("PNP0A08"), 0x080ad041);
    assert_int_equal(aml_eisaid_value("PNP0C02"), 0x020cd041);
    assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105d041);
    assert_int_equal(aml_eisaid_value("PNP0303"), 0x0303d041);
    assert_int_equal(aml_eisaid_value("pnp0a03"), 0);
    assert_int_equal(aml_eisaid_value("PNP0A0"), 0);
    assert_int_equal(aml_eisaid_value("PNP0A033"), 0);
    assert_int_equal(aml_eisaid_value("PNP0A0G"), 0);
    assert_int_equal(aml_eisaid_value("PNP0a03"), 0);

    aml_init(&a, buf, sizeof(buf));
    aml_eisaid(&a, "PNP0A03");
    assert_int_equal(aml_finish(&a), 5);
    assert_memory_equal(buf, ((const uint8_t[]){0x0c, 0x41, 0xd0, 0x0a, 0x03}), 5);
    aml_init(&a, buf, sizeof(buf));
    aml_eisaid(&a, "XYZ");
    assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_buffer_size(void **state)
{
    uint8_t buf[256], data[100];
    struct aml a;
    unsigned n;

    memset(data, 0xab, sizeof(data));
    aml_init(&a, buf, sizeof(buf));
    aml_buffer_begin(&a);
    aml_bytes(&a, data, 3);
    aml_end(&a);
    assert_int_equal(aml_finish(&a), 7);
    assert_memory_equal(buf, ((const uint8_t[]){0x11, 0x06, 0x0a, 0x03, 0xab, 0xab, 0xab}), 7);

    /* Body past 63 bytes: a 2-byte PkgLength covering the size too. */
    aml_init(&a, buf, sizeof(buf));
    aml_buffer_begin(&a);
    aml_bytes(&a, data, sizeof(data));
    aml_end(&a);
    assert_int_equal(aml_finish(&a), 1 + 2 + 2 + 100);
    assert_int_equal(pkglen_decode(buf + 1, &n), 2 + 2 + 100);
    assert_int_equal(n, 2);
    assert_memory_equal(buf + 3, ((const uint8_t[]){0x0a, 100}), 2);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;

    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

static void test_resource_template(void **state)
{
    uint8_t buf[128];
    const uint8_t io[] = {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08};
    const uint8_t irq[] = {0x22, 0x10, 0x00};
    struct aml a;
    long len;

    aml_init(&a, buf, sizeof(buf));
    aml_restemplate_begin(&a);
    aml_res_io(&a, 0x3f8, 0x3f8, 1, 8);
    aml_res_irq_noflags(&a, 4);
    aml_restemplate_end(&a);
    len = aml_finish(&a);
    /* BufferOp, PkgLength, BufferSize (byte), 8 + 3 + 2 descriptor bytes */
    assert_int_equal(len, 1 + 1 + 2 + 13);
    assert_int_equal(buf[0], 0x11);
    assert_int_equal(buf[1], 1 + 2 + 13); /* PkgLength counts itself */
    assert_memory_equal(buf + 2, ((const uint8_t[]){0x0a, 13}), 2);
    assert_memory_equal(buf + 4, io, sizeof(io));
    assert_memory_equal(buf + 12, irq, sizeof(irq));
    assert_int_equal(buf[15], 0x79);
    assert_int_equal(sum(buf + 4, 13), 0); /* End Tag checksum */

    /* Large descriptors: lengths and fields where the spec puts them. */
    aml_init(&a, buf, sizeof(buf));
    aml_restemplate_begin(&a);
    aml_res_memory32_fixed(&a, 1, 0xe0000000, 0x100000);
    aml_res_dword_memory(&a, 0xd0000000, 0xdfffffff);
    aml_res_word_io(&a, 0x0d00, 0xffff);
    aml_res_word_bus(&a, 0, 0xff);
    aml_res_interrupt(&a, 1, 1, 33);
    aml_restemplate_end(&a);
    len = aml_finish(&a);
    assert_true(len > 64); /* a 2-byte PkgLength */
    assert_int_equal(buf[1] >> 6, 1);
    assert_int_equal(buf[3], 0x0a); /* BufferSize, a byte */
    {
        const uint8_t *d = buf + 5;
        const uint8_t mem32[] = {0x86, 9, 0, 1, 0, 0, 0, 0xe0, 0, 0, 0x10, 0};
        const uint8_t dword_tail[] = {0, 0, 0, 0xd0, 0xff, 0xff, 0xff, 0xdf,
                                      0, 0, 0, 0, 0, 0, 0, 0x10};
        const uint8_t word_io[] = {0x88, 13, 0, 1, 0x0c, 3, 0, 0, 0x00, 0x0d, 0xff, 0xff,
                                   0, 0, 0x00, 0xf3};
        const uint8_t word_bus[] = {0x88, 13, 0, 2, 0x0c, 0, 0, 0, 0, 0, 0xff, 0, 0, 0,
                                    0x00, 0x01};
        const uint8_t intr[] = {0x89, 6, 0, 0x05, 1, 33, 0, 0, 0};

        assert_memory_equal(d, mem32, sizeof(mem32));
        d += sizeof(mem32);
        assert_memory_equal(d, ((const uint8_t[]){0x87, 23, 0, 0, 0x0c, 1}), 6);
        assert_memory_equal(d + 10, dword_tail, sizeof(dword_tail));
        d += 26;
        assert_memory_equal(d, word_io, sizeof(word_io));
        d += sizeof(word_io);
        assert_memory_equal(d, word_bus, sizeof(word_bus));
        d += sizeof(word_bus);
        assert_memory_equal(d, intr, sizeof(intr));
        d += sizeof(intr);
        assert_int_equal(d[0], 0x79);
        assert_int_equal(buf[4], d + 2 - (buf + 5));
        assert_int_equal(sum(buf + 5, buf[4]), 0);
        assert_int_equal(d + 2 - buf, len);
    }
}

static void expect_error(void (*build)(struct aml *), size_t cap, long err)
{
    uint8_t buf[64];
    struct aml a;

    aml_init(&a, buf, cap);
    build(&a);
    assert_int_equal(aml_finish(&a), err);
}

static void build_overflow(struct aml *a)
{
    for (int i = 0; i < 20; i++)
        aml_name_integer(a, "_UID", 0x12345678);
}

static void build_unbalanced(struct aml *a)
{
    aml_end(a);
}

static void build_unclosed(struct aml *a)
{
    aml_device_begin(a, "DEV0");
}

static void build_too_deep(struct aml *a)
{
    for (int i = 0; i <= AML_MAX_DEPTH; i++)
        aml_package_begin(a, 1);
}

static void build_wrong_close(struct aml *a)
{
    aml_restemplate_begin(a);
    aml_end(a); /* needs aml_restemplate_end, which adds the End Tag */
}

static void build_bad_resources(struct aml *a)
{
    aml_restemplate_begin(a);
    aml_res_irq_noflags(a, 16);
    aml_restemplate_end(a);
}

static void build_bad_range(struct aml *a)
{
    aml_restemplate_begin(a);
    aml_res_word_io(a, 0, 0xffff); /* the length would be 0x10000 */
    aml_restemplate_end(a);
}

static void test_errors(void **state)
{
    expect_error(build_overflow, 64, -ENOSPC);
    expect_error(build_overflow, 0, -ENOSPC);
    expect_error(build_unbalanced, 64, -EINVAL);
    expect_error(build_unclosed, 64, -EINVAL);
    expect_error(build_too_deep, 64, -E2BIG);
    expect_error(build_wrong_close, 64, -EINVAL);
    expect_error(build_bad_resources, 64, -EINVAL);
    expect_error(build_bad_range, 64, -EINVAL);
}

/* Insertion near the end of a full buffer fails cleanly, without writing
 * past it (ASan watches the heap copy). */
static void test_full_on_close(void **state)
{
    for (size_t cap = 0; cap <= 14; cap++) { /* the device takes 13 bytes */
        uint8_t *buf = malloc(cap ? cap : 1);
        struct aml a;
        long r;

        aml_init(&a, buf, cap);
        aml_device_begin(&a, "DEV0");
        aml_name_integer(&a, "_UID", 0);
        aml_end(&a);
        r = aml_finish(&a);
        assert_true(cap < 13 ? r == -ENOSPC : r == 13);
        free(buf);
    }
}

/* The GED's _EVT, byte by byte (ACPI 6.5, 20.2.5). */
static void test_method_statements(void **state)
{
    uint8_t buf[64];
    const uint8_t expect[] = {
        0x14, 0x21, '_', 'E', 'V', 'T', 0x09,       /* Method (_EVT, 1, Serialized) */
        0x70, 'G', 'D', 'A', 'T', 0x60,             /* Store (GDAT, Local0) */
        0xa0, 0x14,                                 /* If ( */
        0x93, 0x7b, 0x60, 0x01, 0x00, 0x01,         /* LEqual (And (Local0, One, ), One)) */
        0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'W', 'R', 'B', 0x0a, 0x80,
                                                    /* Notify (\_SB.PWRB, 0x80) */
    };
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_method_begin(&a, "_EVT", 1, 1);
    aml_store(&a);
    aml_name_string(&a, "GDAT");
    aml_local(&a, 0);
    aml_if_begin(&a);
    aml_lequal(&a);
    aml_and(&a);
    aml_local(&a, 0);
    aml_integer(&a, 1);
    aml_no_target(&a);
    aml_integer(&a, 1);
    aml_notify(&a, "\\_SB.PWRB", 0x80);
    aml_end(&a);
    aml_end(&a);
    assert_int_equal(aml_finish(&a), sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
}

static void test_locals_and_args(void **state)
{
    uint8_t buf[16];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    for (unsigned i = 0; i < 8; i++)
        aml_local(&a, i);
    for (unsigned i = 0; i < 7; i++)
        aml_arg(&a, i);
    assert_int_equal(aml_finish(&a), 15);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(buf[i], 0x60 + i);
    for (unsigned i = 0; i < 7; i++)
        assert_int_equal(buf[8 + i], 0x68 + i);
    aml_init(&a, buf, sizeof(buf));
    aml_local(&a, 8); /* Local0-Local7 only */
    assert_int_equal(aml_finish(&a), -EINVAL);
    aml_init(&a, buf, sizeof(buf));
    aml_arg(&a, 7); /* Arg0-Arg6 only */
    assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_region_and_field(void **state)
{
    uint8_t buf[64];
    const uint8_t expect[] = {
        0x5b, 0x80, 'G', 'D', 'S', 'T', 0x01, 0x0b, 0x04, 0x06, 0x01,
                                      /* OperationRegion (GDST, SystemIO, 0x604, One) */
        0x5b, 0x81, 0x0b, 'G', 'D', 'S', 'T', 0x01, /* Field (GDST, ByteAcc, NoLock, Preserve) */
        'G', 'D', 'A', 'T', 0x08,                   /* GDAT, 8 */
        0x5b, 0x80, 'M', 'E', 'M', '_', 0x00, 0x0c, 0x00, 0x00, 0x00, 0xd0, 0x0a, 0x10,
                                      /* OperationRegion (MEM, SystemMemory, 0xd0000000, 16) */
    };
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_operation_region(&a, "GDST", AML_SPACE_SYSTEM_IO, 0x604, 1);
    aml_field_begin(&a, "GDST", AML_FIELD_BYTE_ACC | AML_FIELD_NO_LOCK | AML_FIELD_PRESERVE);
    aml_field_unit(&a, "GDAT", 8);
    aml_end(&a);
    aml_operation_region(&a, "MEM", AML_SPACE_SYSTEM_MEMORY, 0xd0000000, 16);
    assert_int_equal(aml_finish(&a), sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
}

/* A field unit's width is a PkgLength holding the bit count itself: unlike
 * a package's, it does not count its own bytes. */
static void expect_field_width(uint32_t bits, unsigned nbytes)
{
    uint8_t buf[32];
    unsigned n;
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_field_unit(&a, "F", bits);
    assert_int_equal(aml_finish(&a), 4 + nbytes);
    assert_memory_equal(buf, "F___", 4);
    assert_int_equal(pkglen_decode(buf + 4, &n), bits);
    assert_int_equal(n, nbytes);
}

static void test_field_widths(void **state)
{
    expect_field_width(1, 1);
    expect_field_width(63, 1);
    expect_field_width(64, 2);
    expect_field_width(4095, 2);
    expect_field_width(4096, 3);
    expect_field_width(0xfffff, 3);
    expect_field_width(0x100000, 4);
    expect_field_width(AML_PKGLEN_MAX, 4);
}

static void expect_field_error(const char *name, uint32_t bits, uint8_t flags)
{
    uint8_t buf[32];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_field_begin(&a, "REG0", flags);
    aml_field_unit(&a, name, bits);
    aml_end(&a);
    assert_int_equal(aml_finish(&a), -EINVAL);
}

static void test_field_errors(void **state)
{
    expect_field_error("GDAT", 8, 0x80);      /* reserved flag bit */
    expect_field_error("", 8, 0);             /* a unit needs a name */
    expect_field_error("GDATA", 8, 0);        /* one NameSeg: 4 characters at most */
    expect_field_error("A.B", 8, 0);          /* no paths */
    expect_field_error("\\GDAT", 8, 0);     /* no prefixes */
    expect_field_error("1ABC", 8, 0);         /* no leading digit */
    expect_field_error("GDAT", 0, 0);         /* no empty units */
    expect_field_error("GDAT", AML_PKGLEN_MAX + 1, 0); /* past 28 bits */

    /* ...while the same field with a good name, width and flags is fine. */
    uint8_t buf[32];
    struct aml a;

    aml_init(&a, buf, sizeof(buf));
    aml_field_begin(&a, "REG0", AML_FIELD_DWORD_ACC | AML_FIELD_LOCK | AML_FIELD_WRITE_AS_ZEROS);
    aml_field_unit(&a, "GD", 32);
    aml_end(&a);
    assert_int_equal(aml_finish(&a), 13);
    assert_int_equal(buf[7], 0x53); /* DWordAcc, Lock, WriteAsZeros */
    assert_memory_equal(buf + 8, "GD__", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkglen_boundaries),
        cmocka_unit_test(test_nested_lengths),
        cmocka_unit_test(test_device_in_scope),
        cmocka_unit_test(test_method_return),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_eisaid),
        cmocka_unit_test(test_buffer_size),
        cmocka_unit_test(test_resource_template),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_full_on_close),
        cmocka_unit_test(test_method_statements),
        cmocka_unit_test(test_locals_and_args),
        cmocka_unit_test(test_region_and_field),
        cmocka_unit_test(test_field_widths),
        cmocka_unit_test(test_field_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
