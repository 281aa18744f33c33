/* Unit tests: herd/image_copy.h (the published entry of a template's
 * parent image read as hostile input, HTTP ranges, SHA-256 of files). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "herd/image_copy.h"

#define HEX_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HEX_B "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *good =
    "{\"name\":\"probe\",\"node\":\"n1\",\"format\":\"raw\",\"address\":\"127.0.0.1\","
    "\"port\":7787,\"cmdline\":\"probe.tests=boot\",\"ready_line\":\"HERD-PROBE READY\","
    "\"cpus\":1,\"mem\":67108864,\"nics\":[\"management\"],"
    "\"files\":{\"image\":{\"sha256\":\"" HEX_A "\",\"size\":16777216},"
    "\"kernel\":{\"sha256\":\"" HEX_B "\",\"size\":123456}}}";

static void test_parse_good(void **state)
{
    (void)state;
    struct image_def d;
    struct herd_err err = {0};

    assert_int_equal(image_def_parse(good, strlen(good), "probe", "n1", &d, &err), 0);
    assert_string_equal(d.name, "probe");
    assert_string_equal(d.format, "raw");
    assert_string_equal(d.address, "127.0.0.1");
    assert_int_equal(d.port, 7787);
    assert_int_equal(d.cpus, 1);
    assert_int_equal(d.mem, 64 << 20);
    assert_string_equal(d.cmdline, "probe.tests=boot");
    assert_true(d.file[IMAGE_FILE_IMAGE].present);
    assert_string_equal(d.file[IMAGE_FILE_IMAGE].sha256, HEX_A);
    assert_int_equal(d.file[IMAGE_FILE_IMAGE].size, 16777216);
    assert_true(d.file[IMAGE_FILE_KERNEL].present);
    assert_false(d.file[IMAGE_FILE_INITRD].present);

    /* its own text parses back to the same entry */
    char *text = image_def_text(&d);
    assert_non_null(text);
    struct image_def e;
    assert_int_equal(image_def_parse(text, strlen(text), "probe", "n1", &e, &err), 0);
    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        assert_true(image_def_same_file(&d, &e, i));
    char *again = image_def_text(&e);
    assert_string_equal(text, again);
    free(text);
    free(again);
    image_def_free(&e);
    image_def_free(&d);
}

/* good with the first occurrence of from replaced by to */
static char *edit(const char *from, const char *to)
{
    const char *at = strstr(good, from);
    assert_non_null(at);
    char *s = malloc(strlen(good) + strlen(to) + 1);
    size_t pre = (size_t)(at - good);
    memcpy(s, good, pre);
    strcpy(s + pre, to);
    strcat(s, at + strlen(from));
    return s;
}

static void refused(const char *from, const char *to, const char *field)
{
    char *text = edit(from, to);
    struct image_def d;
    struct herd_err err = {0};

    int rc = image_def_parse(text, strlen(text), "probe", "n1", &d, &err);
    if (rc != -EPROTO || strcmp(err.field, field))
        fail_msg("'%s' -> '%s': rc %d field '%s' (%s), expected field '%s'", from, to, rc,
                 err.field, err.msg, field);
    assert_null(d.cmdline); /* nothing kept */
    assert_null(d.nics);
    free(text);
}

static void test_parse_hostile(void **state)
{
    (void)state;
    refused("\"name\":\"probe\"", "\"name\":\"other\"", "name");
    refused("\"node\":\"n1\"", "\"node\":\"n2\"", "node");
    refused("\"format\":\"raw\"", "\"format\":\"vmdk\"", "format");
    refused("127.0.0.1", "localhost", "address");
    refused("127.0.0.1", "/etc/passwd", "address");
    refused("7787", "0", "port");
    refused("7787", "65536", "port");
    refused("7787", "\"7787\"", "port");
    refused("\"cpus\":1", "\"cpus\":33", "cpus");
    refused("67108864", "67108865", "mem");
    refused("67108864", "1099511627777", "mem");
    refused("[\"management\"]", "{}", "nics");
    refused("\"ready_line\":\"HERD-PROBE READY\"", "\"ready_line\":\"\"", "ready_line");
    refused("\"cmdline\":\"probe.tests=boot\"", "\"cmdline\":7", "cmdline");
    refused(HEX_A, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "files.image.sha256");
    refused(HEX_A, "ba78", "files.image.sha256");
    refused(HEX_A, "../../../../etc/shadow", "files.image.sha256");
    refused("16777216", "0", "files.image.size");
    refused("16777216", "-1", "files.image.size");
    refused("16777216", "1099511627777", "files.image.size");
    refused("123456", "1073741825", "files.kernel.size");
    refused("\"kernel\":", "\"vmlinuz\":", "files");
    refused(",\"size\":123456}", ",\"size\":123456,\"path\":\"/boot/x\"}", "files.kernel");
    refused("\"files\":{", "\"files\":{\"initrd\":{\"sha256\":\"x\",\"size\":1},", "files.initrd.sha256");
    refused("\"cpus\":1,", "\"cpus\":1,\"image\":\"/etc/shadow\",", "");
    refused("{\"name\"", "[{\"name\"", "");

    /* a key's names must be names */
    struct image_def d;
    struct herd_err err = {0};
    assert_int_equal(image_def_parse(good, strlen(good), "probe", "../n1", &d, &err), -EPROTO);
    /* not JSON, duplicate keys, over the size bound */
    assert_int_equal(image_def_parse("{", 1, "probe", "n1", &d, &err), -EPROTO);
    const char *dup = "{\"name\":\"probe\",\"name\":\"probe\"}";
    assert_int_equal(image_def_parse(dup, strlen(dup), "probe", "n1", &d, &err), -EPROTO);
    assert_int_equal(image_def_parse(good, IMAGE_COPY_ENTRY_MAX + 1, "probe", "n1", &d, &err),
                     -EPROTO);
    /* every prefix of a good entry is refused, none crashes */
    for (size_t n = 0; n < strlen(good); n++)
        assert_int_equal(image_def_parse(good, n, "probe", "n1", &d, &err), -EPROTO);
}

static void test_ranges(void **state)
{
    (void)state;
    uint64_t a, b, t;

    assert_int_equal(image_range_parse("bytes=0-", 100, &a, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_int_equal(image_range_parse("bytes=40-", 100, &a, &b), 0);
    assert_int_equal(a, 40);
    assert_int_equal(b, 99);
    assert_int_equal(image_range_parse("bytes=40-49", 100, &a, &b), 0);
    assert_int_equal(b, 49);
    assert_int_equal(image_range_parse("bytes=40-1000", 100, &a, &b), 0);
    assert_int_equal(b, 99);
    assert_int_equal(image_range_parse("bytes=100-", 100, &a, &b), -ERANGE);
    assert_int_equal(image_range_parse("bytes=-10", 100, &a, &b), -EINVAL);
    assert_int_equal(image_range_parse("bytes=5-4", 100, &a, &b), -EINVAL);
    assert_int_equal(image_range_parse("bytes=0-1,5-6", 100, &a, &b), -EINVAL);
    assert_int_equal(image_range_parse("bytes=99999999999999999999-", 100, &a, &b), -EINVAL);
    assert_int_equal(image_range_parse("items=0-", 100, &a, &b), -EINVAL);
    assert_int_equal(image_range_parse(NULL, 100, &a, &b), -EINVAL);

    assert_int_equal(image_content_range_parse("bytes 40-99/100", &a, &b, &t), 0);
    assert_int_equal(a, 40);
    assert_int_equal(b, 99);
    assert_int_equal(t, 100);
    assert_int_equal(image_content_range_parse("bytes 40-99/100\r\n", &a, &b, &t), 0);
    assert_int_equal(image_content_range_parse("bytes 40-100/100", &a, &b, &t), -EINVAL);
    assert_int_equal(image_content_range_parse("bytes 50-40/100", &a, &b, &t), -EINVAL);
    assert_int_equal(image_content_range_parse("bytes */100", &a, &b, &t), -EINVAL);
    assert_int_equal(image_content_range_parse("bytes 0-1/2 junk", &a, &b, &t), -EINVAL);
}

static void test_hash(void **state)
{
    (void)state;
    char path[] = "/tmp/herd-test-image-copy.XXXXXX", hex[65];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);

    assert_int_equal(image_hash_fd(fd, hex), 0);
    assert_string_equal(hex, HEX_B); /* SHA-256 of nothing */
    assert_int_equal(write(fd, "abc", 3), 3);
    assert_int_equal(image_hash_fd(fd, hex), 0);
    assert_string_equal(hex, HEX_A); /* SHA-256 of "abc" */
    assert_true(image_sha256_ok(hex));
    assert_false(image_sha256_ok("abc"));
    close(fd);
}

static void test_size_str(void **state)
{
    (void)state;
    char s[32];
    image_size_str(512, s, sizeof(s));
    assert_string_equal(s, "512 B");
    image_size_str(16 << 20, s, sizeof(s));
    assert_string_equal(s, "16.0 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_size_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
