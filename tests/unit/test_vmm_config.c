/*
 * herd-vmm configuration: sizes, command-line options, the --config JSON file
 * (and options overriding it), validation, and serial modes. Every refusal
 * must name the field it is about.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/vmm_config.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

struct ctx {
    struct vmm_config cfg;
    struct herd_err err;
    char path[64];
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    vmm_config_init(&c->cfg);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    vmm_config_free(&c->cfg);
    if (c->path[0])
        unlink(c->path);
    free(c);
    return 0;
}

static void write_json(struct ctx *c, const char *text)
{
    int fd;

    if (!c->path[0]) {
        snprintf(c->path, sizeof(c->path), "/tmp/herd-test-config-XXXXXX");
        fd = mkstemp(c->path);
    } else {
        fd = open(c->path, O_WRONLY | O_TRUNC);
    }
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void assert_err_has(const struct ctx *c, const char *what)
{
    if (!strstr(c->err.msg, what))
        fail_msg("error \"%s\" does not mention \"%s\"", c->err.msg, what);
}

/* err.field names the option or key at fault. */
static void assert_err_field(const struct ctx *c, const char *field)
{
    if (strcmp(c->err.field, field))
        fail_msg("error \"%s\": field \"%s\", expected \"%s\"", c->err.msg, c->err.field, field);
    assert_int_equal(c->err.code, -EINVAL);
}

static int parse(struct ctx *c, int argc, char **argv)
{
    herd_err_clear(&c->err);
    return vmm_config_parse_args(&c->cfg, argc, argv, &c->err);
}

/* ---- sizes ------------------------------------------------------------- */

static void test_parse_size_good(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"64M", 64ULL << 20},       {"1G", 1ULL << 30},          {"4096", 4096},
        {"64MiB", 64ULL << 20},     {"64m", 64ULL << 20},        {"65536K", 64ULL << 20},
        {"2g", 2ULL << 30},         {"1T", 1ULL << 40},          {"512MB", 512ULL << 20},
        {"0", 0},                   {"16777215T", 16777215ULL << 40},
    };

    for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t v = 1;

        if (vmm_parse_size(good[i].s, &v) != 0)
            fail_msg("'%s' refused", good[i].s);
        assert_int_equal(v, good[i].v);
    }
}

static void test_parse_size_bad(void **state)
{
    static const char *const bad[] = {
        "", "junk", "M", "64X", "64 M", "64M ", "64MiBs", "64iB", "64B", "0x40", "1.5G",
        "-1", "-64M", "+64M", "99999999999T", "16777216T", "18446744073709551616",
        "18446744073709551615K", "64MM", " -1", " 64M", "\t64M", " -18446742974197923840",
    };

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 0x1234;

        if (vmm_parse_size(bad[i], &v) == 0)
            fail_msg("'%s' accepted as %llu", bad[i], (unsigned long long)v);
        assert_int_equal(v, 0x1234); /* output untouched on refusal */
    }
    assert_true(vmm_parse_size(NULL, &(uint64_t){0}) < 0);
}

/* ---- options ------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct ctx *c = *state;

    assert_null(c->cfg.kernel);
    assert_int_equal(c->cfg.mem, VMM_DEFAULT_MEM);
    assert_int_equal(c->cfg.cpus, 1);
    assert_int_equal(c->cfg.serial, SERIAL_STDIO);
    assert_int_equal(c->cfg.log_level, LOG_INFO);
}

static void test_all_options(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--kernel", "/k/vmlinux", "--initrd", "/k/initrd.img",
                    "--cmdline", "console=ttyS0 quiet", "--mem", "256M", "--cpus", "4",
                    "--serial", "file:/tmp/console.log", "--log-level", "debug", NULL};

    assert_int_equal(parse(c, ARGC(argv), argv), 0);
    assert_string_equal(c->cfg.kernel, "/k/vmlinux");
    assert_string_equal(c->cfg.initrd, "/k/initrd.img");
    assert_string_equal(c->cfg.cmdline, "console=ttyS0 quiet");
    assert_int_equal(c->cfg.mem, 256ULL << 20);
    assert_int_equal(c->cfg.cpus, 4);
    assert_int_equal(c->cfg.serial, SERIAL_FILE);
    assert_string_equal(c->cfg.serial_path, "/tmp/console.log");
    assert_int_equal(c->cfg.log_level, LOG_DEBUG);
    assert_int_equal(c->cfg.show_help, 0);
    assert_int_equal(c->cfg.show_version, 0);
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), 0);
}

static void test_equals_form_and_repeats(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--kernel=a", "--kernel", "b", "--mem=1G", "--cpus=2",
                    "--cpus", "3", NULL};

    /* The last one wins; the earlier string is freed (LeakSanitizer checks). */
    assert_int_equal(parse(c, ARGC(argv), argv), 0);
    assert_string_equal(c->cfg.kernel, "b");
    assert_int_equal(c->cfg.mem, 1ULL << 30);
    assert_int_equal(c->cfg.cpus, 3);
}

static void test_help_and_version(void **state)
{
    struct ctx *c = *state;
    char *argv1[] = {"herd-vmm", "--help", NULL};
    char *argv2[] = {"herd-vmm", "-h", "--version", NULL};

    assert_int_equal(parse(c, ARGC(argv1), argv1), 0);
    assert_int_equal(c->cfg.show_help, 1);
    vmm_config_free(&c->cfg);
    vmm_config_init(&c->cfg);
    assert_int_equal(parse(c, ARGC(argv2), argv2), 0);
    assert_int_equal(c->cfg.show_help, 1);
    assert_int_equal(c->cfg.show_version, 1);
}

static void test_bad_options(void **state)
{
    struct ctx *c = *state;
    char *unknown[] = {"herd-vmm", "--kernel", "k", "--frobnicate", NULL};
    char *missing[] = {"herd-vmm", "--kernel", "k", "--mem", NULL};
    char *extra[] = {"herd-vmm", "--kernel", "k", "stray", NULL};
    char *mem[] = {"herd-vmm", "--mem", "lots", NULL};
    char *cpus0[] = {"herd-vmm", "--cpus", "0", NULL};
    char *cpus33[] = {"herd-vmm", "--cpus", "33", NULL};
    char *cpusneg[] = {"herd-vmm", "--cpus", "-1", NULL};
    char *cpusjunk[] = {"herd-vmm", "--cpus", "4x", NULL};
    char *serial[] = {"herd-vmm", "--serial", "tty", NULL};
    char *level[] = {"herd-vmm", "--log-level", "loud", NULL};

    assert_int_equal(parse(c, ARGC(unknown), unknown), -EINVAL);
    assert_err_has(c, "--frobnicate");
    assert_err_field(c, "--frobnicate");
    assert_int_equal(parse(c, ARGC(missing), missing), -EINVAL);
    assert_err_has(c, "--mem");
    assert_err_has(c, "needs a value");
    assert_err_field(c, "--mem");
    assert_int_equal(parse(c, ARGC(extra), extra), -EINVAL);
    assert_err_has(c, "stray");
    assert_int_equal(parse(c, ARGC(mem), mem), -EINVAL);
    assert_err_has(c, "mem");
    assert_err_has(c, "lots");
    assert_err_field(c, "--mem");
    assert_int_equal(parse(c, ARGC(cpus0), cpus0), -EINVAL);
    assert_err_has(c, "cpus");
    assert_int_equal(parse(c, ARGC(cpus33), cpus33), -EINVAL);
    assert_err_has(c, "cpus");
    assert_int_equal(parse(c, ARGC(cpusneg), cpusneg), -EINVAL);
    assert_err_has(c, "cpus");
    assert_int_equal(parse(c, ARGC(cpusjunk), cpusjunk), -EINVAL);
    assert_err_has(c, "'4x'");
    assert_err_field(c, "--cpus");
    assert_int_equal(parse(c, ARGC(serial), serial), -EINVAL);
    assert_err_has(c, "serial");
    assert_err_has(c, "tty");
    assert_err_field(c, "--serial");
    assert_int_equal(parse(c, ARGC(level), level), -EINVAL);
    assert_err_has(c, "log-level");
    assert_err_field(c, "--log-level");
    /* Refused values did not replace the defaults. */
    assert_int_equal(c->cfg.mem, VMM_DEFAULT_MEM);
    assert_int_equal(c->cfg.cpus, 1);
    assert_int_equal(c->cfg.serial, SERIAL_STDIO);
    assert_int_equal(c->cfg.log_level, LOG_INFO);
}

/* ---- --config ------------------------------------------------------------ */

static void test_config_file(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--config", c->path, NULL};

    write_json(c, "{\"kernel\": \"vmlinux\", \"initrd\": \"rd\", \"cmdline\": \"a b\",\n"
                  " \"mem\": \"256M\", \"cpus\": 2, \"serial\": \"none\",\n"
                  " \"log-level\": \"warn\"}\n");
    assert_int_equal(parse(c, ARGC(argv), argv), 0);
    assert_string_equal(c->cfg.kernel, "vmlinux");
    assert_string_equal(c->cfg.initrd, "rd");
    assert_string_equal(c->cfg.cmdline, "a b");
    assert_int_equal(c->cfg.mem, 256ULL << 20);
    assert_int_equal(c->cfg.cpus, 2);
    assert_int_equal(c->cfg.serial, SERIAL_NONE);
    assert_int_equal(c->cfg.log_level, LOG_WARN);
}

static void test_config_integers(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--config", c->path, NULL};

    write_json(c, "{\"kernel\": \"k\", \"mem\": 134217728, \"cpus\": \"3\"}");
    assert_int_equal(parse(c, ARGC(argv), argv), 0);
    assert_int_equal(c->cfg.mem, 128ULL << 20);
    assert_int_equal(c->cfg.cpus, 3);
}

static void test_config_then_options_override(void **state)
{
    struct ctx *c = *state;
    char *after[] = {"herd-vmm", "--config", c->path, "--mem", "512M", "--kernel", "other",
                     NULL};
    char *before[] = {"herd-vmm", "--mem", "512M", "--config", c->path, NULL};

    write_json(c, "{\"kernel\": \"vmlinux\", \"mem\": \"256M\", \"cpus\": 2}");
    assert_int_equal(parse(c, ARGC(after), after), 0);
    assert_int_equal(c->cfg.mem, 512ULL << 20);
    assert_string_equal(c->cfg.kernel, "other");
    assert_int_equal(c->cfg.cpus, 2);
    vmm_config_free(&c->cfg);
    vmm_config_init(&c->cfg);
    /* An option before --config is overridden by the file. */
    assert_int_equal(parse(c, ARGC(before), before), 0);
    assert_int_equal(c->cfg.mem, 256ULL << 20);
}

static void expect_json_refused(struct ctx *c, const char *text, const char *what)
{
    char *argv[] = {"herd-vmm", "--config", c->path, NULL};

    write_json(c, text);
    assert_int_equal(parse(c, ARGC(argv), argv), -EINVAL);
    assert_err_has(c, c->path); /* says which file */
    assert_err_has(c, what);
}

/* A refused file changes nothing, even keys that came before the bad one. */
static void test_config_refusal_changes_nothing(void **state)
{
    struct ctx *c = *state;
    struct herd_err err = {0};

    c->cfg.cpus = 1;
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"cpus\": 4, \"kernel\": \"k\", "
                                           "\"cmdline\": \"x\", \"bogus\": 1}",
                                           "t.json", &err), -EINVAL);
    assert_int_equal(c->cfg.cpus, 1);
    assert_null(c->cfg.kernel);
    assert_null(c->cfg.cmdline);
    /* The unknown key is named as unknown, whatever its value's type. */
    assert_non_null(strstr(err.msg, "unknown setting 'bogus'"));
}

static void test_config_refusals(void **state)
{
    struct ctx *c = *state;

    expect_json_refused(c, "{\"kernel\": \"k\", \"memory\": \"64M\"}", "memory");
    expect_json_refused(c, "{\"kernel\": 5}", "kernel: wrong type");
    expect_json_refused(c, "{\"mem\": true}", "mem: wrong type");
    expect_json_refused(c, "{\"mem\": -4096}", "mem: wrong type");
    expect_json_refused(c, "{\"mem\": 1.5}", "mem: wrong type");
    expect_json_refused(c, "{\"cpus\": null}", "cpus: wrong type");
    expect_json_refused(c, "{\"cpus\": [2]}", "cpus: wrong type");
    expect_json_refused(c, "{\"cmdline\": 7}", "cmdline: wrong type");
    expect_json_refused(c, "{\"cpus\": 64}", "cpus");
    expect_json_refused(c, "{\"mem\": \"big\"}", "mem");
    expect_json_refused(c, "{\"serial\": \"pty\"}", "serial");
    expect_json_refused(c, "{\"cpus\": 2, \"cpus\": 3}", "cpus");   /* duplicate key */
    expect_json_refused(c, "[{\"kernel\": \"k\"}]", "JSON object");
    expect_json_refused(c, "\"kernel\"", "'{' expected");
    expect_json_refused(c, "{\"kernel\": \"k\",}", ":1:");          /* syntax: line number */
    expect_json_refused(c, "{\"config\": \"other.json\"}", "config"); /* no nesting */
    expect_json_refused(c, "{\"help\": \"yes\"}", "help");
    expect_json_refused(c, "", "empty");
}

static void test_config_missing_file(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--config", "/nonexistent/herd/vm.json", NULL};

    assert_true(parse(c, ARGC(argv), argv) < 0);
    assert_err_has(c, "/nonexistent/herd/vm.json");
    assert_err_has(c, "No such file");
}

static void test_apply_json_direct(void **state)
{
    struct ctx *c = *state;

    herd_err_clear(&c->err);
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"cpus\": 8}", "inline", &c->err), 0);
    assert_int_equal(c->cfg.cpus, 8);
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"cpus\": \"x\"}", "inline", &c->err),
                     -EINVAL);
    assert_err_has(c, "inline: cpus");
    assert_err_field(c, "--cpus");
    assert_int_equal(c->cfg.cpus, 8);
}

static void test_control_option(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--kernel", "/k", "--control", "/run/herd/a.sock", NULL};
    char *empty[] = {"herd-vmm", "--control", "", NULL};
    struct vmm_config none;

    vmm_config_init(&none);
    assert_null(none.control);
    assert_int_equal(parse(c, ARGC(argv), argv), 0);
    assert_string_equal(c->cfg.control, "/run/herd/a.sock");
    /* JSON: same key; copied with the rest, replaced by a later value. */
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"control\": \"/run/b.sock\"}", "inline",
                                           &c->err), 0);
    assert_string_equal(c->cfg.control, "/run/b.sock");
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"control\": 3}", "inline", &c->err),
                     -EINVAL);
    assert_err_has(c, "control: wrong type");
    assert_string_equal(c->cfg.control, "/run/b.sock");
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"control\": \"\"}", "inline", &c->err),
                     -EINVAL);
    assert_err_has(c, "control: the socket path is empty");
    assert_int_equal(parse(c, ARGC(empty), empty), -EINVAL);
    assert_err_has(c, "control: the socket path is empty");
}

static void test_jail_options(void **state)
{
    struct ctx *c = *state;
    char *argv[] = {"herd-vmm", "--kernel", "/k", "--uid", "65534", "--gid", "65534",
                    "--cgroup", "/sys/fs/cgroup/herd/g1", "--seccomp=off", "--jail-check", NULL};
    char *bad_uid[] = {"herd-vmm", "--uid", "-1", NULL};
    char *big_gid[] = {"herd-vmm", "--gid", "4294967295", NULL};
    char *bad_sc[] = {"herd-vmm", "--seccomp", "maybe", NULL};
    char *lone[] = {"herd-vmm", "--kernel", "/k", "--uid", "1000", NULL};
    struct vmm_config none;

    vmm_config_init(&none);
    assert_int_equal(none.uid, -1);
    assert_int_equal(none.gid, -1);
    assert_int_equal(none.seccomp, 1); /* on by default */
    assert_null(none.cgroup);
    assert_int_equal(none.jail_check, 0);
    assert_int_equal(parse(c, ARGC(argv), argv), 0);
    assert_int_equal(c->cfg.uid, 65534);
    assert_int_equal(c->cfg.gid, 65534);
    assert_string_equal(c->cfg.cgroup, "/sys/fs/cgroup/herd/g1");
    assert_int_equal(c->cfg.seccomp, 0);
    assert_int_equal(c->cfg.jail_check, 1);
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), 0);
    assert_int_equal(vmm_config_apply_json(&c->cfg, "{\"uid\": 200001, \"gid\": \"200002\", "
                                           "\"seccomp\": \"on\", \"cgroup\": \"/cg\"}",
                                           "inline", &c->err), 0);
    assert_int_equal(c->cfg.uid, 200001);
    assert_int_equal(c->cfg.gid, 200002);
    assert_int_equal(c->cfg.seccomp, 1);
    assert_string_equal(c->cfg.cgroup, "/cg");
    assert_int_equal(parse(c, ARGC(bad_uid), bad_uid), -EINVAL);
    assert_err_has(c, "uid: '-1'");
    assert_int_equal(parse(c, ARGC(big_gid), big_gid), -EINVAL);
    assert_err_has(c, "gid: '4294967295'");
    assert_int_equal(parse(c, ARGC(bad_sc), bad_sc), -EINVAL);
    assert_err_has(c, "seccomp: 'maybe'");
    vmm_config_free(&c->cfg);
    vmm_config_init(&c->cfg);
    assert_int_equal(parse(c, ARGC(lone), lone), 0);
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), -EINVAL);
    assert_err_has(c, "uid and gid go together");
}

/* ---- validation and serial ------------------------------------------------- */

static void test_validate(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), -EINVAL);
    assert_err_has(c, "kernel");
    assert_err_field(c, "--kernel");
    c->cfg.kernel = strdup("vmlinux");
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), 0);
    c->cfg.mem = 2ULL << 20;
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), -EINVAL);
    assert_err_has(c, "mem");
    c->cfg.mem = 0;
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), -EINVAL);
    c->cfg.mem = (64ULL << 20) + 512;
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), -EINVAL);
    assert_err_has(c, "4 KiB");
    assert_err_field(c, "--mem");
    c->cfg.mem = 4ULL << 20; /* the smallest accepted */
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), 0);
    c->cfg.mem = (1ULL << 40) + 4096;
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), -EINVAL);
    assert_err_has(c, "mem");
    c->cfg.mem = 1ULL << 40;
    assert_int_equal(vmm_config_validate(&c->cfg, &c->err), 0);
}

static void test_serial_modes(void **state)
{
    struct ctx *c = *state;

    assert_int_equal(vmm_parse_serial(&c->cfg, "none", &c->err), 0);
    assert_int_equal(c->cfg.serial, SERIAL_NONE);
    assert_int_equal(vmm_parse_serial(&c->cfg, "file:/var/log/vm0.log", &c->err), 0);
    assert_int_equal(c->cfg.serial, SERIAL_FILE);
    assert_string_equal(c->cfg.serial_path, "/var/log/vm0.log");
    assert_int_equal(vmm_parse_serial(&c->cfg, "file:a:b", &c->err), 0);
    assert_string_equal(c->cfg.serial_path, "a:b");
    assert_int_equal(vmm_parse_serial(&c->cfg, "stdio", &c->err), 0);
    assert_int_equal(c->cfg.serial, SERIAL_STDIO);

    static const char *const bad[] = {"file:", "file", "FILE:x", "Stdio", "", "none ", "tcp:1"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        herd_err_clear(&c->err);
        assert_int_equal(vmm_parse_serial(&c->cfg, bad[i], &c->err), -EINVAL);
        assert_err_has(c, "serial");
        assert_err_field(c, "--serial");
        assert_int_equal(c->cfg.serial, SERIAL_STDIO); /* unchanged */
    }
}

static void test_usage_mentions_every_option(void **state)
{
    static const char *const opts[] = {"--kernel", "--initrd", "--cmdline", "--mem", "--cpus",
                                       "--serial", "--config", "--log-level", "--help",
                                       "--version", "--control", "--cgroup", "--uid", "--gid",
                                       "--seccomp", "--jail-check"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    vmm_config_usage(f);
    fclose(f);
    for (unsigned i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        assert_non_null(strstr(text, opts[i]));
    free(text);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size_good),
        cmocka_unit_test(test_parse_size_bad),
        T(test_defaults),
        T(test_all_options),
        T(test_equals_form_and_repeats),
        T(test_help_and_version),
        T(test_bad_options),
        T(test_config_file),
        T(test_config_integers),
        T(test_config_then_options_override),
        T(test_config_refusals),
        T(test_config_refusal_changes_nothing),
        T(test_config_missing_file),
        T(test_apply_json_direct),
        T(test_control_option),
        T(test_jail_options),
        T(test_validate),
        T(test_serial_modes),
        cmocka_unit_test(test_usage_mentions_every_option),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
