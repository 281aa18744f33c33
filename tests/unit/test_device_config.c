/*
 * --disk and --net specifications: every key, the required ones, values
 * refused with an error that names the key, MAC addresses, and the copy
 * functions (deep copies: the copy outlives the original).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/device_config.h"

/* Parses a disk spec that must be refused; the error must mention `needle`
 * and the config must come back empty (nothing leaked: ASan checks). */
static void disk_refused(const char *spec, const char *needle)
{
    struct disk_config cfg;
    struct herd_err err = {0};

    memset(&cfg, 0x5a, sizeof(cfg));
    if (disk_config_parse(spec, &cfg, &err) != -EINVAL)
        fail_msg("disk spec '%s' was not refused with -EINVAL", spec);
    if (!err.msg[0] || !strstr(err.msg, needle))
        fail_msg("disk spec '%s': error '%s' does not mention '%s'", spec, err.msg, needle);
    assert_null(cfg.path);
    assert_null(cfg.format);
    assert_null(cfg.serial);
}

static void nic_refused(const char *spec, const char *needle)
{
    struct nic_config cfg;
    struct herd_err err = {0};

    memset(&cfg, 0x5a, sizeof(cfg));
    if (nic_config_parse(spec, &cfg, &err) != -EINVAL)
        fail_msg("net spec '%s' was not refused with -EINVAL", spec);
    if (!err.msg[0] || !strstr(err.msg, needle))
        fail_msg("net spec '%s': error '%s' does not mention '%s'", spec, err.msg, needle);
    assert_null(cfg.tap);
}

/* ---- --disk ------------------------------------------------------------ */

static void test_disk_minimal_defaults(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("path=/var/lib/herd/a.img,format=raw", &cfg, &err), 0);
    assert_string_equal(cfg.path, "/var/lib/herd/a.img");
    assert_string_equal(cfg.format, "raw");
    assert_false(cfg.readonly);
    assert_null(cfg.serial);
    assert_int_equal(cfg.queues, 1);
    disk_config_free(&cfg);
    assert_null(cfg.path);
    assert_null(cfg.format);
    /* free twice is harmless: the config is zeroed */
    disk_config_free(&cfg);
}

static void test_disk_all_keys(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("format=qcow2,readonly=on,serial=disk-0001,queues=4,"
                                       "path=/images/root.qcow2",
                                       &cfg, &err), 0);
    assert_string_equal(cfg.path, "/images/root.qcow2");
    assert_string_equal(cfg.format, "qcow2");
    assert_true(cfg.readonly);
    assert_string_equal(cfg.serial, "disk-0001");
    assert_int_equal(cfg.queues, 4);
    disk_config_free(&cfg);
}

static void test_disk_repeated_key_last_wins(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("path=a,format=qcow2,path=b,format=raw,serial=x,serial=y",
                                       &cfg, &err), 0);
    assert_string_equal(cfg.path, "b");
    assert_string_equal(cfg.format, "raw");
    assert_string_equal(cfg.serial, "y");
    disk_config_free(&cfg);
}

static void test_disk_required_keys(void **state)
{
    (void)state;
    disk_refused("format=raw", "path=");
    disk_refused("", "path=");
    disk_refused("path=/a.img", "format=");
    disk_refused("path=/a.img,readonly=on", "format");
    disk_refused("path=/a.img,readonly=on", "never guesses");
}

static void test_disk_format_only_raw_or_qcow2(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};
    static const char *const bad[] = {"vmdk", "qcow", "RAW", "Qcow2", "raw ", "auto", "vdi"};

    (void)state;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char spec[64];

        snprintf(spec, sizeof(spec), "path=/a.img,format=%s", bad[i]);
        disk_refused(spec, bad[i]);
        disk_refused(spec, "format");
    }
    assert_int_equal(disk_config_parse("path=/a.img,format=qcow2", &cfg, &err), 0);
    disk_config_free(&cfg);
}

static void test_disk_readonly_values(void **state)
{
    static const char *const on[] = {"on", "true", "1"}, *const off[] = {"off", "false", "0"};
    struct disk_config cfg;
    struct herd_err err = {0};
    char spec[64];

    (void)state;
    for (unsigned i = 0; i < 3; i++) {
        snprintf(spec, sizeof(spec), "path=p,format=raw,readonly=%s", on[i]);
        assert_int_equal(disk_config_parse(spec, &cfg, &err), 0);
        assert_true(cfg.readonly);
        disk_config_free(&cfg);
        snprintf(spec, sizeof(spec), "path=p,format=raw,readonly=on,readonly=%s", off[i]);
        assert_int_equal(disk_config_parse(spec, &cfg, &err), 0);
        assert_false(cfg.readonly);
        disk_config_free(&cfg);
    }
    disk_refused("path=p,format=raw,readonly=yes", "readonly");
    disk_refused("path=p,format=raw,readonly=ON", "readonly");
    disk_refused("path=p,format=raw,readonly=2", "readonly");
}

static void test_disk_serial_limit(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("path=p,format=raw,serial=12345678901234567890", &cfg,
                                       &err), 0);
    assert_int_equal(strlen(cfg.serial), DEVICE_SPEC_ID_BYTES);
    assert_string_equal(cfg.serial, "12345678901234567890");
    disk_config_free(&cfg);
    assert_int_equal(disk_config_parse("path=p,format=raw,serial=s", &cfg, &err), 0);
    assert_string_equal(cfg.serial, "s");
    disk_config_free(&cfg);
    disk_refused("path=p,format=raw,serial=123456789012345678901", "serial");
    disk_refused("path=p,format=raw,serial=123456789012345678901", "20");
}

static void test_disk_queues_range(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};
    static const char *const bad[] = {"0", "17", "01", "-1", "+2", "2x", "x", " 2", "1.5",
                                      "99999999999999999999999"};

    (void)state;
    assert_int_equal(disk_config_parse("path=p,format=raw,queues=1", &cfg, &err), 0);
    assert_int_equal(cfg.queues, 1);
    disk_config_free(&cfg);
    assert_int_equal(disk_config_parse("path=p,format=raw,queues=16", &cfg, &err),
                     0);
    assert_int_equal(cfg.queues, DEVICE_MAX_QUEUES);
    disk_config_free(&cfg);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char spec[80];

        snprintf(spec, sizeof(spec), "path=p,format=raw,queues=%s", bad[i]);
        disk_refused(spec, "queues");
    }
}

static void test_disk_unknown_and_malformed(void **state)
{
    (void)state;
    disk_refused("path=p,format=raw,cache=none", "'cache'");
    disk_refused("path=p,format=raw,Path=q", "'Path'");
    /* a key without '=' is named */
    disk_refused("path=p,format=raw,readonly", "'readonly'");
    disk_refused("path=p,format=raw,readonly", "key=value");
    disk_refused("/images/a.img", "key=value");
    /* empty values and empty keys */
    disk_refused("path=,format=raw", "'path='");
    disk_refused("path=p,format=", "format=");
    disk_refused("path=p,format=raw,=x", "'=x'");
    disk_refused("path=p,format=raw,serial=", "serial");
    /* the first bad key stops parsing, the error names it */
    disk_refused("path=p,bogus=1,alsobogus=2,format=raw", "'bogus'");
}

static void test_disk_value_may_contain_equals(void **state)
{
    struct disk_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("path=/tmp/a=b.img,format=raw", &cfg, &err),
                     0);
    assert_string_equal(cfg.path, "/tmp/a=b.img");
    disk_config_free(&cfg);
}

static void test_disk_copy_is_deep(void **state)
{
    struct disk_config src, dst;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("path=/a.img,format=qcow2,serial=abc,readonly=on,"
                                       "queues=3", &src, &err), 0);
    assert_int_equal(disk_config_copy(&dst, &src), 0);
    assert_ptr_not_equal(dst.path, src.path);
    assert_ptr_not_equal(dst.format, src.format);
    assert_ptr_not_equal(dst.serial, src.serial);
    disk_config_free(&src);
    /* the copy is intact after the original is gone (ASan would see a UAF) */
    assert_string_equal(dst.path, "/a.img");
    assert_string_equal(dst.format, "qcow2");
    assert_string_equal(dst.serial, "abc");
    assert_true(dst.readonly);
    assert_int_equal(dst.queues, 3);
    disk_config_free(&dst);

    /* NULL fields stay NULL */
    assert_int_equal(disk_config_parse("path=/b.img,format=raw", &src, &err), 0);
    assert_int_equal(disk_config_copy(&dst, &src), 0);
    assert_null(dst.serial);
    assert_string_equal(dst.path, "/b.img");
    disk_config_free(&src);
    disk_config_free(&dst);
}

/* backing=: the pinned chain herdd hands herd-vmm, in order, deep-copied */
static void test_disk_pinned_chain(void **state)
{
    struct disk_config cfg, dst;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(disk_config_parse("path=/o.qcow2,format=qcow2,backing=qcow2:/i/a:b.qcow2,"
                                       "backing=raw:/i/base.raw", &cfg, &err), 0);
    assert_true(cfg.chain_pinned);
    assert_int_equal(cfg.chain_len, 2);
    assert_string_equal(cfg.chain_format[0], "qcow2");
    assert_string_equal(cfg.chain_path[0], "/i/a:b.qcow2");
    assert_string_equal(cfg.chain_format[1], "raw");
    assert_string_equal(cfg.chain_path[1], "/i/base.raw");
    assert_int_equal(disk_config_copy(&dst, &cfg), 0);
    disk_config_free(&cfg);
    assert_string_equal(dst.chain_path[1], "/i/base.raw");
    disk_config_free(&dst);

    assert_int_equal(disk_config_parse("path=/o.raw,format=raw,backing=none", &cfg, &err), 0);
    assert_true(cfg.chain_pinned);
    assert_int_equal(cfg.chain_len, 0);
    disk_config_free(&cfg);
    assert_int_equal(disk_config_parse("path=/o.raw,format=raw", &cfg, &err), 0);
    assert_false(cfg.chain_pinned);
    disk_config_free(&cfg);

    disk_refused("path=/o,format=qcow2,backing=/i/base.raw", "not FORMAT:/ABSOLUTE/PATH");
    disk_refused("path=/o,format=qcow2,backing=raw:base.raw", "not FORMAT:/ABSOLUTE/PATH");
    disk_refused("path=/o,format=qcow2,backing=vmdk:/i/b", "not raw or qcow2");
    disk_refused("path=/o,format=qcow2,backing=rawx:/i/b", "not raw or qcow2");
    disk_refused("path=/o,format=qcow2,backing=raw:/a,backing=none", "cannot follow");
    disk_refused("path=/o,format=qcow2,backing=none,backing=raw:/a", "cannot be followed");
    char spec[2048] = "path=/o,format=qcow2";
    for (int i = 0; i <= DISK_MAX_CHAIN; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), ",backing=raw:/i/%d", i);
    disk_refused(spec, "at most");
}

/* ---- --net --------------------------------------------------------------- */

static void test_nic_minimal_defaults(void **state)
{
    struct nic_config cfg;
    struct herd_err err = {0};
    static const uint8_t zero[6];

    (void)state;
    assert_int_equal(nic_config_parse("tap=herd0", &cfg, &err), 0);
    assert_string_equal(cfg.tap, "herd0");
    assert_false(cfg.mac_set);
    assert_memory_equal(cfg.mac, zero, 6);
    assert_int_equal(cfg.vhost, VHOST_AUTO);
    assert_int_equal(cfg.queues, 1);
    nic_config_free(&cfg);
    assert_null(cfg.tap);
}

static void test_nic_all_keys(void **state)
{
    struct nic_config cfg;
    struct herd_err err = {0};
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

    (void)state;
    assert_int_equal(nic_config_parse("mac=52:54:00:AB:cd:Ef,vhost=off,queues=1,tap=vm7-eth0",
                                      &cfg, &err), 0);
    assert_string_equal(cfg.tap, "vm7-eth0");
    assert_true(cfg.mac_set);
    assert_memory_equal(cfg.mac, mac, 6);
    assert_int_equal(cfg.vhost, VHOST_OFF);
    assert_int_equal(cfg.queues, 1);
    nic_config_free(&cfg);
}

static void test_nic_required_and_unknown(void **state)
{
    (void)state;
    nic_refused("mac=52:54:00:12:34:56", "tap=");
    nic_refused("", "tap=");
    nic_refused("tap=t0,model=e1000", "'model'");
    nic_refused("tap=t0,vhost", "'vhost'");
    nic_refused("tap=t0,vhost", "key=value");
    nic_refused("tap=", "'tap='");
    nic_refused("tap=t0,mac=", "'mac='");
    nic_refused("tap=t0,=on", "'=on'");
}

static void test_nic_tap_name_length(void **state)
{
    struct nic_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(nic_config_parse("tap=123456789012345", &cfg, &err), 0);
    assert_int_equal(strlen(cfg.tap), 15);
    nic_config_free(&cfg);
    nic_refused("tap=1234567890123456", "tap");
    nic_refused("tap=1234567890123456", "15");
}

static void test_nic_mac_valid(void **state)
{
    static const struct {
        const char *text;
        uint8_t mac[6];
    } ok[] = {
        {"52:54:00:12:34:56", {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}},
        {"02:00:00:00:00:00", {0x02, 0, 0, 0, 0, 0}},
        {"fe:ff:ff:ff:ff:ff", {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}},
        {"00:00:00:00:00:01", {0, 0, 0, 0, 0, 1}},
    };

    (void)state;
    for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct nic_config cfg;
        struct herd_err err = {0};
        char spec[64];

        snprintf(spec, sizeof(spec), "tap=t0,mac=%s", ok[i].text);
        if (nic_config_parse(spec, &cfg, &err))
            fail_msg("'%s' refused: %s", spec, err.msg);
        assert_true(cfg.mac_set);
        assert_memory_equal(cfg.mac, ok[i].mac, 6);
        nic_config_free(&cfg);
    }
}

static void test_nic_mac_refused(void **state)
{
    static const char *const bad[] = {
        "01:00:5e:00:00:01",    /* IPv4 multicast */
        "ff:ff:ff:ff:ff:ff",    /* broadcast */
        "33:33:00:00:00:01",    /* IPv6 multicast */
        "52:54:00:12:34",       /* too short */
        "52:54:00:12:34:56:78", /* too long */
        "52:54:00:12:34:5",     /* last byte one digit */
        "5:54:00:12:34:56",     /* first byte one digit */
        "52:54:00:12:34:567",   /* three digits */
        "52-54-00-12-34-56",    /* wrong separator */
        "525400123456",         /* no separators */
        "zz:54:00:12:34:56",    /* not hex */
        "52:54:00:12:34:5g",
        "52:54:00:12:34:56x",
        "52::54:00:12:34:56",
    };

    (void)state;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char spec[64];

        snprintf(spec, sizeof(spec), "tap=t0,mac=%s", bad[i]);
        nic_refused(spec, "mac");
        nic_refused(spec, bad[i]);
    }
}

static void test_nic_vhost_values(void **state)
{
    static const struct {
        const char *v;
        enum vhost_mode m;
    } ok[] = {{"auto", VHOST_AUTO}, {"on", VHOST_ON}, {"off", VHOST_OFF}};

    (void)state;
    for (unsigned i = 0; i < 3; i++) {
        struct nic_config cfg;
        struct herd_err err = {0};
        char spec[64];

        snprintf(spec, sizeof(spec), "tap=t0,vhost=%s", ok[i].v);
        assert_int_equal(nic_config_parse(spec, &cfg, &err), 0);
        assert_int_equal(cfg.vhost, ok[i].m);
        nic_config_free(&cfg);
    }
    nic_refused("tap=t0,vhost=yes", "vhost");
    nic_refused("tap=t0,vhost=ON", "'ON'");
    nic_refused("tap=t0,vhost=1", "vhost");
}

static void test_nic_queues(void **state)
{
    struct nic_config cfg;
    struct herd_err err = {0};

    (void)state;
    assert_int_equal(nic_config_parse("tap=t0,queues=1", &cfg, &err), 0);
    assert_int_equal(cfg.queues, 1);
    nic_config_free(&cfg);
    assert_int_equal(nic_config_parse("tap=t0,queues=4", &cfg, &err), 0);
    assert_int_equal(cfg.queues, 4); /* VIRTIO_NET_MAX_PAIRS */
    nic_config_free(&cfg);
    nic_refused("tap=t0,queues=5", "queues");
    nic_refused("tap=t0,queues=0", "queues");
    nic_refused("tap=t0,queues=17", "queues");
    nic_refused("tap=t0,queues=x", "queues");
}

static void test_nic_copy_is_deep(void **state)
{
    struct nic_config src, dst;
    struct herd_err err = {0};
    static const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

    (void)state;
    assert_int_equal(nic_config_parse("tap=tap-copy,mac=02:11:22:33:44:55,vhost=on", &src, &err),
                     0);
    assert_int_equal(nic_config_copy(&dst, &src), 0);
    assert_ptr_not_equal(dst.tap, src.tap);
    nic_config_free(&src);
    assert_string_equal(dst.tap, "tap-copy");
    assert_true(dst.mac_set);
    assert_memory_equal(dst.mac, mac, 6);
    assert_int_equal(dst.vhost, VHOST_ON);
    assert_int_equal(dst.queues, 1);
    nic_config_free(&dst);
}

static void test_nic_mac_junk_refused(void **state)
{
    static const char *const bad[] = {" 2:00:00:00:00:01", "+2:00:00:00:00:01",
                                      "-2:00:00:00:00:01", "0x:00:00:00:00:01",
                                      "02:00:00:00:00: 1", "02-00-00-00-00-01"};

    (void)state;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char spec[64];

        snprintf(spec, sizeof(spec), "tap=t0,mac=%s", bad[i]);
        nic_refused(spec, "mac");
    }
}

static void test_empty_items_and_bad_tap_names(void **state)
{
    (void)state;
    nic_refused("tap=t0,,mac=02:00:00:00:00:01", "empty item");
    nic_refused("tap=t0,", "empty item");
    nic_refused("tap=a/b", "tap name");
    nic_refused("tap=a b", "tap name");
    nic_refused("tap=a:b", "tap name");
}

static int strdup_fail_at;

/* A strdup that fails on request, to drive the copy functions' ENOMEM path. */
char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p;

    if (strdup_fail_at && --strdup_fail_at == 0)
        return NULL;
    p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void test_disk_copy_enomem_leaves_source_alone(void **state)
{
    (void)state;
    for (int k = 1; k <= 3; k++) {
        struct disk_config src, dst;
        struct herd_err err = {0};

        assert_int_equal(disk_config_parse("path=/a.img,format=raw,serial=s1", &src, &err), 0);
        strdup_fail_at = k;
        assert_int_equal(disk_config_copy(&dst, &src), -ENOMEM);
        strdup_fail_at = 0;
        assert_null(dst.path);
        assert_string_equal(src.path, "/a.img");
        assert_string_equal(src.format, "raw");
        assert_string_equal(src.serial, "s1");
        disk_config_free(&src);
    }
}

/* err.field names the spec key at fault, or the option for a malformed spec. */
static void test_error_fields(void **state)
{
    static const struct {
        int nic;
        const char *spec, *field;
    } cases[] = {
        {0, "format=raw", "path"},
        {0, "path=/a.img", "format"},
        {0, "path=p,format=vmdk", "format"},
        {0, "path=p,format=raw,readonly=yes", "readonly"},
        {0, "path=p,format=raw,serial=123456789012345678901", "serial"},
        {0, "path=p,format=raw,queues=0", "queues"},
        {0, "path=p,format=raw,cache=none", "cache"},
        {0, "path=p,format=raw,readonly", "--disk"},
        {0, "path=p,,format=raw", "--disk"},
        {0, "path=/o,format=qcow2,backing=vmdk:/i/b", "backing"},
        {1, "mac=52:54:00:12:34:56", "tap"},
        {1, "tap=a/b", "tap"},
        {1, "tap=t0,mac=01:00:00:00:00:01", "mac"},
        {1, "tap=t0,vhost=yes", "vhost"},
        {1, "tap=t0,queues=5", "queues"},
        {1, "tap=t0,model=e1000", "model"},
        {1, "tap=t0,", "--net"},
        {1, "tap=t0,vhost", "--net"},
    };
    (void)state;

    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct herd_err err = {0};
        int rc;

        if (cases[i].nic) {
            struct nic_config cfg;

            rc = nic_config_parse(cases[i].spec, &cfg, &err);
        } else {
            struct disk_config cfg;

            rc = disk_config_parse(cases[i].spec, &cfg, &err);
        }
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(err.code, -EINVAL);
        if (strcmp(err.field, cases[i].field))
            fail_msg("'%s': field '%s', expected '%s' (%s)", cases[i].spec, err.field,
                     cases[i].field, err.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_minimal_defaults),
        cmocka_unit_test(test_disk_pinned_chain),
        cmocka_unit_test(test_disk_all_keys),
        cmocka_unit_test(test_disk_repeated_key_last_wins),
        cmocka_unit_test(test_disk_required_keys),
        cmocka_unit_test(test_disk_format_only_raw_or_qcow2),
        cmocka_unit_test(test_disk_readonly_values),
        cmocka_unit_test(test_disk_serial_limit),
        cmocka_unit_test(test_disk_queues_range),
        cmocka_unit_test(test_disk_unknown_and_malformed),
        cmocka_unit_test(test_disk_value_may_contain_equals),
        cmocka_unit_test(test_disk_copy_is_deep),
        cmocka_unit_test(test_nic_minimal_defaults),
        cmocka_unit_test(test_nic_all_keys),
        cmocka_unit_test(test_nic_required_and_unknown),
        cmocka_unit_test(test_nic_tap_name_length),
        cmocka_unit_test(test_nic_mac_valid),
        cmocka_unit_test(test_nic_mac_refused),
        cmocka_unit_test(test_nic_vhost_values),
        cmocka_unit_test(test_nic_queues),
        cmocka_unit_test(test_nic_copy_is_deep),
        cmocka_unit_test(test_nic_mac_junk_refused),
        cmocka_unit_test(test_empty_items_and_bad_tap_names),
        cmocka_unit_test(test_disk_copy_enomem_leaves_source_alone),
        cmocka_unit_test(test_error_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
