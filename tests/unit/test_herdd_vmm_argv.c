/*
 * herdd's herd-vmm command line (ctl/herdd/vmm_argv.c), checked the way
 * herd-vmm reads it: every argv built here goes through herd-vmm's own
 * parser (vmm_config_parse_args + vmm_config_validate), and what that
 * parser understood must be what herdd meant: kernel, initrd, command
 * line, memory, vCPUs, console, the overlay with its pinned chain, NICs,
 * control socket, RLIMIT_FSIZE, uid/gid, cgroup; a restore instead of a boot. Values that would smuggle
 * extra keys into a comma-separated spec are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../ctl/herdd/vmm_argv.h"
#include "herd/vmm_config.h"

static char *chain_paths[] = {"/var/lib/herd/images/mid.qcow2", "/var/lib/herd/images/base.raw"};
static char *chain_formats[] = {"qcow2", "raw"};

/* One start: what herdd decided, and the chain and NICs it points at. */
struct start {
    struct hd_vmm_launch l;
    struct hd_chain chain;
    struct hd_vmm_nic nics[2];
};

/* A guest as herdd starts it: probe-like template, two NICs, confined. */
static void full_launch(struct start *st)
{
    struct hd_vmm_launch *l = &st->l;
    struct hd_chain *chain = &st->chain;
    struct hd_vmm_nic *nics = st->nics;

    *chain = (struct hd_chain){.n = 2};
    for (unsigned i = 0; i < 2; i++) {
        chain->path[i] = chain_paths[i];
        chain->format[i] = chain_formats[i];
    }
    nics[0] = (struct hd_vmm_nic){"hd3-0", "52:54:00:12:34:56"};
    nics[1] = (struct hd_vmm_nic){"hd3-1", "52:54:00:12:34:57"};
    *l = (struct hd_vmm_launch){
        .vmm = "/usr/lib/herd/herd-vmm",
        .kernel = "/var/lib/herd/images/vmlinuz",
        .initrd = "/var/lib/herd/images/initrd.img",
        .cmdline = "console=ttyS0 root=/dev/vda rw quiet herd.ip=10.0.0.2/24,gw",
        .mem = 384ull << 20,
        .cpus = 2,
        .console = "/var/lib/herd/vms/g1/console.pipe",
        .disk = "/var/lib/herd/vms/g1/disk.qcow2",
        .chain = chain,
        .nics = nics,
        .n_nics = 2,
        .control = "/var/lib/herd/run/3/control.sock",
        .file_size_max = hd_vmm_file_size_max(1ull << 30),
        .uid = 800003,
        .cgroup = "/sys/fs/cgroup/herd/abc/g1",
    };
}

/* Builds l's argv and parses it with herd-vmm's parser into cfg. */
static void build_and_parse(const struct hd_vmm_launch *l, struct vmm_config *cfg)
{
    struct hd_vmm_argv a;
    struct hd_err err = {0};
    struct herd_err why = {0};

    assert_int_equal(hd_vmm_argv_build(l, &a, &err), 0);
    assert_string_equal(a.argv[0], l->vmm);
    assert_null(a.argv[a.argc]);
    vmm_config_init(cfg);
    int rc = vmm_config_parse_args(cfg, a.argc, a.argv, &why);
    if (rc == 0)
        rc = vmm_config_validate(cfg, &why);
    if (rc != 0)
        fail_msg("herd-vmm refuses herdd's command line: %s", why.msg);
    hd_vmm_argv_free(&a);
    assert_int_equal(a.argc, 0);
}

static void test_full_guest(void **state)
{
    (void)state;
    struct start st;
    struct vmm_config cfg;

    full_launch(&st);
    build_and_parse(&st.l, &cfg);
    assert_string_equal(cfg.kernel, st.l.kernel);
    assert_string_equal(cfg.initrd, st.l.initrd);
    assert_string_equal(cfg.cmdline, st.l.cmdline);
    assert_int_equal(cfg.mem, st.l.mem);
    assert_int_equal(cfg.cpus, 2);
    assert_int_equal(cfg.serial, SERIAL_FILE);
    assert_string_equal(cfg.serial_path, st.l.console);
    assert_int_equal(cfg.nr_disks, 1);
    const struct disk_config *d = &cfg.disks[0];
    assert_string_equal(d->path, st.l.disk);
    assert_string_equal(d->format, "qcow2");
    assert_false(d->readonly);
    assert_true(d->chain_pinned);
    assert_int_equal(d->chain_len, 2);
    for (unsigned i = 0; i < 2; i++) {
        assert_string_equal(d->chain_path[i], chain_paths[i]);
        assert_string_equal(d->chain_format[i], chain_formats[i]);
    }
    assert_int_equal(cfg.nr_nics, 2);
    for (unsigned i = 0; i < 2; i++) {
        char mac[18];
        const uint8_t *m = cfg.nics[i].mac;
        snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                 m[5]);
        assert_string_equal(cfg.nics[i].tap, st.nics[i].tap);
        assert_true(cfg.nics[i].mac_set);
        assert_string_equal(mac, st.nics[i].mac);
    }
    assert_string_equal(cfg.control, st.l.control);
    assert_int_equal(cfg.file_size_max, (1ull << 30) + (1ull << 27) + (256ull << 20));
    assert_int_equal(cfg.uid, 800003);
    assert_int_equal(cfg.gid, 800003);
    assert_string_equal(cfg.cgroup, st.l.cgroup);
    assert_int_equal(cfg.seccomp, 1);
    vmm_config_free(&cfg);
}

/* A guest with a NoCloud seed: a second disk, raw and read-only, after the
 * overlay (the guest's /dev/vdb); a seed path that would split the spec is
 * refused. */
static void test_seed_disk(void **state)
{
    (void)state;
    struct start st;
    struct vmm_config cfg;

    full_launch(&st);
    st.l.seed = "/var/lib/herd/vms/g1/seed.iso";
    build_and_parse(&st.l, &cfg);
    assert_int_equal(cfg.nr_disks, 2);
    assert_string_equal(cfg.disks[0].path, st.l.disk);
    assert_false(cfg.disks[0].readonly);
    assert_string_equal(cfg.disks[1].path, st.l.seed);
    assert_string_equal(cfg.disks[1].format, "raw");
    assert_true(cfg.disks[1].readonly);
    assert_false(cfg.disks[1].chain_pinned);
    vmm_config_free(&cfg);

    struct hd_vmm_argv a;
    struct hd_err err = {0};
    st.l.seed = "/var/lib/herd/vms/g1,readonly=off/seed.iso";
    assert_int_equal(hd_vmm_argv_build(&st.l, &a, &err), -1);
    assert_string_equal(err.field, "seed");
}

/* A range guest's resource disk: a third disk, raw and read-only, after the
 * seed (the guest's /dev/vdc); never without a seed; a path that would split
 * the spec is refused. */
static void test_resources_disk(void **state)
{
    (void)state;
    struct start st;
    struct vmm_config cfg;

    full_launch(&st);
    st.l.seed = "/var/lib/herd/vms/g1/seed.iso";
    st.l.resources = "/var/lib/herd/ranges/lab/resources-red.iso";
    build_and_parse(&st.l, &cfg);
    assert_int_equal(cfg.nr_disks, 3);
    assert_string_equal(cfg.disks[0].path, st.l.disk);
    assert_string_equal(cfg.disks[1].path, st.l.seed);
    assert_string_equal(cfg.disks[2].path, st.l.resources);
    assert_string_equal(cfg.disks[2].format, "raw");
    assert_true(cfg.disks[2].readonly);
    assert_false(cfg.disks[2].chain_pinned);
    vmm_config_free(&cfg);

    struct hd_vmm_argv a;
    struct hd_err err = {0};
    st.l.resources = "/var/lib/herd/ranges/lab/x,readonly=off";
    assert_int_equal(hd_vmm_argv_build(&st.l, &a, &err), -1);
    assert_string_equal(err.field, "resources");
    memset(&err, 0, sizeof(err));
    st.l.resources = "/srv/res.img";
    st.l.seed = NULL;
    assert_int_equal(hd_vmm_argv_build(&st.l, &a, &err), -1);
    assert_string_equal(err.field, "resources");
}

/* No initrd, no NICs, no backing file (backing=none), no cgroup, and an
 * older herd-vmm without control sockets or --file-size-max. */
static void test_minimal_guest(void **state)
{
    (void)state;
    struct start st;
    struct vmm_config cfg;

    full_launch(&st);
    st.chain.n = 0;
    st.l.initrd = NULL;
    st.l.n_nics = 0;
    st.l.control = NULL;
    st.l.file_size_max = 0;
    st.l.cgroup = "";
    build_and_parse(&st.l, &cfg);
    assert_null(cfg.initrd);
    assert_int_equal(cfg.nr_nics, 0);
    assert_null(cfg.control);
    assert_int_equal(cfg.file_size_max, 0);
    assert_null(cfg.cgroup);
    assert_int_equal(cfg.nr_disks, 1);
    assert_true(cfg.disks[0].chain_pinned);
    assert_int_equal(cfg.disks[0].chain_len, 0);
    vmm_config_free(&cfg);
}

/* A guest restored from a snapshot: --restore FILE with --restore-mem map
 * (clones share the file's pages), and neither kernel, initrd nor command
 * line (herd-vmm refuses them with --restore); disks, NICs and confinement
 * as for any guest. */
static void test_restored_guest(void **state)
{
    (void)state;
    struct start st;
    struct vmm_config cfg;

    full_launch(&st);
    st.l.restore = "/var/lib/herd/snapshots/s1/vm.snap";
    build_and_parse(&st.l, &cfg);
    assert_string_equal(cfg.restore, st.l.restore);
    assert_int_equal(cfg.restore_copy, 0);
    assert_null(cfg.kernel);
    assert_null(cfg.initrd);
    assert_null(cfg.cmdline);
    assert_int_equal(cfg.cpus, 2);
    assert_int_equal(cfg.mem, st.l.mem);
    assert_int_equal(cfg.nr_disks, 1);
    assert_true(cfg.disks[0].chain_pinned);
    assert_int_equal(cfg.nr_nics, 2);
    assert_int_equal(cfg.uid, 800003);
    vmm_config_free(&cfg);
}

/* Values herdd got from a template, a state directory or a NIC that would
 * add keys to herd-vmm's --disk or --net spec are refused, naming the
 * field, and nothing is left allocated (ASan's leak check). */
static void test_spec_injection_refused(void **state)
{
    (void)state;
    static char evil_path[] = "/var/lib/herd/images/a.raw,readonly=off";
    static char evil_format[] = "raw,serial=x";
    static const struct {
        const char *what, *field;
    } cases[] = {
        {"disk", "disk"}, {"chain path", "disk"}, {"chain format", "disk"},
        {"tap", "nics"},  {"mac", "nics"},        {"empty tap", "nics"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct start st;
        struct hd_vmm_argv a;
        struct hd_err err = {0};

        full_launch(&st);
        switch (i) {
        case 0: st.l.disk = "/state/vms/g1/disk.qcow2,backing=none"; break;
        case 1: st.chain.path[1] = evil_path; break;
        case 2: st.chain.format[0] = evil_format; break;
        case 3: st.nics[1].tap = "hd3-1,vhost=off"; break;
        case 4: st.nics[0].mac = "52:54:00:12:34:56\n"; break;
        case 5: st.nics[0].tap = ""; break;
        }
        assert_int_equal(hd_vmm_argv_build(&st.l, &a, &err), -1);
        assert_string_equal(err.field, cases[i].field);
        assert_int_equal(err.status, 500);
        assert_int_equal(a.argc, 0);
        print_message("%s refused: %s\n", cases[i].what, err.msg);
    }
}

static void test_bad_launch_refused(void **state)
{
    (void)state;
    struct start st;
    struct hd_vmm_argv a;
    struct hd_err err = {0};

    full_launch(&st);
    st.l.uid = 0;
    assert_int_equal(hd_vmm_argv_build(&st.l, &a, &err), -1);
    assert_string_equal(err.field, "uid");
    full_launch(&st);
    st.l.n_nics = HD_MAX_NICS + 1;
    assert_int_equal(hd_vmm_argv_build(&st.l, &a, &err), -1);
    assert_string_equal(err.field, "nics");
}

/* A kernel command line is one argument whatever it holds: herd-vmm gets
 * it byte for byte, commas, quotes and "--disk" included. */
static void test_cmdline_is_one_argument(void **state)
{
    (void)state;
    struct start st;
    struct vmm_config cfg;

    full_launch(&st);
    static const char *const lines[] = {
        "a=1,2 --disk path=/etc/shadow,format=raw \"quoted\" x",
        "--disk",
        "--disk=path=/etc/shadow,format=raw",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        st.l.cmdline = lines[i];
        build_and_parse(&st.l, &cfg);
        assert_string_equal(cfg.cmdline, st.l.cmdline);
        assert_int_equal(cfg.nr_disks, 1);
        assert_string_equal(cfg.disks[0].path, st.l.disk);
        vmm_config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_guest),
        cmocka_unit_test(test_seed_disk),
        cmocka_unit_test(test_resources_disk),
        cmocka_unit_test(test_minimal_guest),
        cmocka_unit_test(test_restored_guest),
        cmocka_unit_test(test_spec_injection_refused),
        cmocka_unit_test(test_bad_launch_refused),
        cmocka_unit_test(test_cmdline_is_one_argument),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
