/*
 * Option and JSON parsing for herd-vmm. The JSON file uses the long option
 * names as keys ({"kernel": ..., "mem": "64M", "cpus": 2, ...}); unknown keys
 * and wrong types are errors that name the field, never silently ignored.
 */
#include "herd/vmm_config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vmm_config_init(struct vmm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mem = VMM_DEFAULT_MEM;
    cfg->cpus = 1;
    cfg->serial = SERIAL_STDIO;
    cfg->log_level = LOG_INFO;
    cfg->uid = cfg->gid = -1;
    cfg->seccomp = 1;
}

void vmm_config_free(struct vmm_config *cfg)
{
    free(cfg->kernel);
    free(cfg->restore);
    free(cfg->initrd);
    free(cfg->cmdline);
    free(cfg->serial_path);
    free(cfg->control);
    free(cfg->cgroup);
    for (unsigned i = 0; i < cfg->nr_disks; i++)
        disk_config_free(&cfg->disks[i]);
    for (unsigned i = 0; i < cfg->nr_nics; i++)
        nic_config_free(&cfg->nics[i]);
    memset(cfg, 0, sizeof(*cfg));
}

static int add_disk(struct vmm_config *cfg, const char *spec, struct herd_err *err)
{
    if (cfg->nr_disks == VMM_MAX_DISKS)
        return herd_err_set(err, -E2BIG, "--disk", "disk: at most %d disks", VMM_MAX_DISKS);
    if (disk_config_parse(spec, &cfg->disks[cfg->nr_disks], err))
        return -EINVAL;
    cfg->nr_disks++;
    return 0;
}

static int add_nic(struct vmm_config *cfg, const char *spec, struct herd_err *err)
{
    if (cfg->nr_nics == VMM_MAX_NICS)
        return herd_err_set(err, -E2BIG, "--net", "net: at most %d NICs", VMM_MAX_NICS);
    if (nic_config_parse(spec, &cfg->nics[cfg->nr_nics], err))
        return -EINVAL;
    cfg->nr_nics++;
    return 0;
}

static int set_string(char **field, const char *value)
{
    char *copy = strdup(value);

    if (!copy)
        return -ENOMEM;
    free(*field);
    *field = copy;
    return 0;
}

int vmm_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    unsigned shift = 0;
    char *end;

    /* strtoull would skip blanks and accept a sign: insist on a digit. */
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end == 'i' && shift) /* accept "64MiB" */
        end++;
    if ((*end == 'B' || *end == 'b') && shift)
        end++;
    if (*end)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}

int vmm_parse_serial(struct vmm_config *cfg, const char *s, struct herd_err *err)
{
    if (strcmp(s, "stdio") == 0) {
        cfg->serial = SERIAL_STDIO;
        return 0;
    }
    if (strcmp(s, "none") == 0) {
        cfg->serial = SERIAL_NONE;
        return 0;
    }
    if (strncmp(s, "file:", 5) == 0 && s[5]) {
        cfg->serial = SERIAL_FILE;
        return set_string(&cfg->serial_path, s + 5);
    }
    return herd_err_set(err, -EINVAL, "--serial",
                        "serial: '%s' is not one of stdio, none, file:PATH", s);
}

static int parse_cpus(const char *s, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v == 0 || v > VMM_MAX_CPUS)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* A uid or gid: 0 to 2^32-2 ((uid_t)-1 means "unchanged" to the kernel). */
static int parse_id(const char *s, long *out)
{
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v >= 0xffffffffULL)
        return -EINVAL;
    *out = (long)v;
    return 0;
}

/* One setting by its option/JSON name. The value is always text here. */
static int apply_setting(struct vmm_config *cfg, const char *name, const char *value,
                         struct herd_err *err)
{
    enum log_level level;
    char opt[32];

    snprintf(opt, sizeof(opt), "--%s", name);

    if (strcmp(name, "kernel") == 0)
        return set_string(&cfg->kernel, value);
    if (strcmp(name, "initrd") == 0)
        return set_string(&cfg->initrd, value);
    if (strcmp(name, "restore") == 0) {
        if (value[0])
            return set_string(&cfg->restore, value);
        return herd_err_set(err, -EINVAL, opt, "restore: the snapshot path is empty");
    }
    if (strcmp(name, "restore-mem") == 0) {
        if (strcmp(value, "map") == 0 || strcmp(value, "copy") == 0) {
            cfg->restore_copy = value[0] == 'c';
            return 0;
        }
        return herd_err_set(err, -EINVAL, opt, "restore-mem: '%s' is not one of map, copy", value);
    }
    if (strcmp(name, "cmdline") == 0)
        return set_string(&cfg->cmdline, value);
    if (strcmp(name, "control") == 0) {
        if (value[0])
            return set_string(&cfg->control, value);
        return herd_err_set(err, -EINVAL, opt, "control: the socket path is empty");
    }
    if (strcmp(name, "cgroup") == 0) {
        if (value[0])
            return set_string(&cfg->cgroup, value);
        return herd_err_set(err, -EINVAL, opt, "cgroup: the path is empty");
    }
    if (strcmp(name, "file-size-max") == 0) {
        if (vmm_parse_size(value, &cfg->file_size_max) == 0 && cfg->file_size_max)
            return 0;
        return herd_err_set(err, -EINVAL, opt,
                            "file-size-max: '%s' is not a size above 0 (e.g. 8G)", value);
    }
    if (strcmp(name, "uid") == 0 || strcmp(name, "gid") == 0) {
        if (parse_id(value, name[0] == 'u' ? &cfg->uid : &cfg->gid) == 0)
            return 0;
        return herd_err_set(err, -EINVAL, opt, "%s: '%s' is not a number from 0 to 4294967294",
                            name, value);
    }
    if (strcmp(name, "seccomp") == 0) {
        if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0) {
            cfg->seccomp = value[1] == 'n';
            return 0;
        }
        return herd_err_set(err, -EINVAL, opt, "seccomp: '%s' is not one of on, off", value);
    }
    if (strcmp(name, "mem") == 0) {
        if (vmm_parse_size(value, &cfg->mem) == 0)
            return 0;
        return herd_err_set(err, -EINVAL, opt, "mem: '%s' is not a size (e.g. 64M, 1G)", value);
    }
    if (strcmp(name, "cpus") == 0) {
        if (parse_cpus(value, &cfg->cpus) == 0)
            return 0;
        return herd_err_set(err, -EINVAL, opt, "cpus: '%s' is not a number from 1 to %d", value,
                            VMM_MAX_CPUS);
    }
    if (strcmp(name, "serial") == 0)
        return vmm_parse_serial(cfg, value, err);
    if (strcmp(name, "disk") == 0)
        return add_disk(cfg, value, err);
    if (strcmp(name, "net") == 0)
        return add_nic(cfg, value, err);
    if (strcmp(name, "log-level") == 0) {
        if (log_parse_level(value, &level) == 0) {
            cfg->log_level = level;
            return 0;
        }
        return herd_err_set(err, -EINVAL, opt,
                            "log-level: '%s' is not one of error, warn, info, debug", value);
    }
    return herd_err_set(err, -EINVAL, name, "unknown setting '%s'", name);
}

/* Settings a JSON file may carry; `numeric` ones also take a JSON number. */
static const struct {
    const char *name;
    int numeric;
} json_settings[] = {
    {"kernel", 0}, {"initrd", 0}, {"cmdline", 0}, {"mem", 1},
    {"cpus", 1},   {"serial", 0}, {"log-level", 0}, {"disks", 0}, {"nets", 0},
    {"control", 0}, {"cgroup", 0}, {"uid", 1}, {"gid", 1}, {"seccomp", 0},
    {"file-size-max", 0}, {"restore", 0}, {"restore-mem", 0},
};

static int json_setting_index(const char *key)
{
    for (unsigned i = 0; i < sizeof(json_settings) / sizeof(json_settings[0]); i++)
        if (strcmp(key, json_settings[i].name) == 0)
            return (int)i;
    return -1;
}

static int json_value_text(json_t *v, const char *key, char *buf, size_t buflen,
                           const char **text, struct herd_err *err)
{
    int idx = json_setting_index(key);

    if (idx < 0)
        return herd_err_set(err, -EINVAL, key, "unknown setting '%s'", key);
    if (json_is_string(v)) {
        *text = json_string_value(v);
        return 0;
    }
    if (json_settings[idx].numeric && json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(buf, buflen, "%lld", (long long)json_integer_value(v));
        *text = buf;
        return 0;
    }
    return herd_err_set(err, -EINVAL, key, "%s: wrong type (expected %s)", key,
                        json_settings[idx].numeric ? "a number or a string" : "a string");
}

static int dup_field(char **dst, const char *src)
{
    *dst = NULL;
    return src && !(*dst = strdup(src)) ? -ENOMEM : 0;
}

/* Deep copy, so a JSON file can be applied to a scratch copy first. */
static int config_copy(struct vmm_config *dst, const struct vmm_config *src)
{
    *dst = *src;
    dst->nr_disks = dst->nr_nics = 0;
    if (dup_field(&dst->kernel, src->kernel) || dup_field(&dst->initrd, src->initrd) ||
        dup_field(&dst->cmdline, src->cmdline) ||
        dup_field(&dst->serial_path, src->serial_path) ||
        dup_field(&dst->control, src->control) || dup_field(&dst->cgroup, src->cgroup))
        goto fail;
    for (; dst->nr_disks < src->nr_disks; dst->nr_disks++)
        if (disk_config_copy(&dst->disks[dst->nr_disks], &src->disks[dst->nr_disks]))
            goto fail;
    for (; dst->nr_nics < src->nr_nics; dst->nr_nics++)
        if (nic_config_copy(&dst->nics[dst->nr_nics], &src->nics[dst->nr_nics]))
            goto fail;
    return 0;
fail:
    vmm_config_free(dst);
    return -ENOMEM;
}

/* "disks"/"nets": arrays of the same specs --disk/--net take. */
static int apply_list(struct vmm_config *cfg, const char *key, json_t *list, struct herd_err *err)
{
    const char *one = strcmp(key, "disks") == 0 ? "disk" : "net";
    size_t i;
    json_t *item;

    if (!json_is_array(list))
        return herd_err_set(err, -EINVAL, key, "%s: wrong type (expected an array of \"%s\" specs)",
                            key, strcmp(one, "disk") == 0 ? "path=...,format=..." : "tap=...");
    json_array_foreach(list, i, item) {
        int rc;

        if (!json_is_string(item))
            return herd_err_set(err, -EINVAL, key, "%s[%zu]: wrong type (expected a string)", key,
                                i);
        rc = apply_setting(cfg, one, json_string_value(item), err);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_object(struct vmm_config *cfg, json_t *root, const char *origin,
                        struct herd_err *err)
{
    const char *key;
    json_t *value;

    json_object_foreach(root, key, value) {
        if (!strcmp(key, "disks") || !strcmp(key, "nets")) {
            struct herd_err inner = {0};
            int rc = apply_list(cfg, key, value, &inner);

            if (rc)
                return herd_err_set(err, rc, inner.field, "%s: %s", origin, inner.msg);
            continue;
        }
        struct herd_err inner = {0};
        char num[32];
        const char *v = NULL;
        int rc;

        rc = json_value_text(value, key, num, sizeof(num), &v, &inner);
        if (!rc)
            rc = apply_setting(cfg, key, v, &inner);
        if (rc)
            return herd_err_set(err, rc, inner.field, "%s: %s", origin,
                                inner.msg[0] ? inner.msg : strerror(-rc));
    }
    return 0;
}

int vmm_config_apply_json(struct vmm_config *cfg, const char *text, const char *origin,
                          struct herd_err *err)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    struct vmm_config scratch;
    int rc;

    if (!root)
        return herd_err_set(err, -EINVAL, "", "%s:%d:%d: %s", origin, jerr.line, jerr.column,
                            jerr.text);
    if (!json_is_object(root)) {
        herd_err_set(err, -EINVAL, "", "%s: the top level must be a JSON object", origin);
        json_decref(root);
        return -EINVAL;
    }
    /* All or nothing: a bad key anywhere leaves cfg exactly as it was. */
    rc = config_copy(&scratch, cfg);
    if (!rc)
        rc = apply_object(&scratch, root, origin, err);
    json_decref(root);
    if (rc) {
        vmm_config_free(&scratch); /* also safe after a failed copy: it is zeroed */
        return rc;
    }
    vmm_config_free(cfg);
    *cfg = scratch;
    return 0;
}

static int load_json_file(struct vmm_config *cfg, const char *path, struct herd_err *err)
{
    FILE *f = fopen(path, "re");
    char *text = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc;

    if (!f) {
        rc = -errno;
        return herd_err_set(err, rc, "--config", "--config %s: %s", path, strerror(-rc));
    }
    n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(text);
        return herd_err_set(err, -EINVAL, "--config", "--config %s: empty or unreadable", path);
    }
    rc = vmm_config_apply_json(cfg, text, path, err);
    free(text);
    return rc;
}

static const struct option long_options[] = {
    {"kernel", required_argument, NULL, 'k'},
    {"initrd", required_argument, NULL, 'i'},
    {"cmdline", required_argument, NULL, 'c'},
    {"mem", required_argument, NULL, 'm'},
    {"cpus", required_argument, NULL, 'p'},
    {"serial", required_argument, NULL, 's'},
    {"config", required_argument, NULL, 'f'},
    {"log-level", required_argument, NULL, 'l'},
    {"disk", required_argument, NULL, 'd'},
    {"net", required_argument, NULL, 'n'},
    {"control", required_argument, NULL, 'C'},
    {"cgroup", required_argument, NULL, 'G'},
    {"file-size-max", required_argument, NULL, 'F'},
    {"uid", required_argument, NULL, 'u'},
    {"gid", required_argument, NULL, 'g'},
    {"seccomp", required_argument, NULL, 'S'},
    {"jail-check", no_argument, NULL, 'J'},
    {"restore", required_argument, NULL, 'R'},
    {"restore-mem", required_argument, NULL, 'M'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

int vmm_config_parse_args(struct vmm_config *cfg, int argc, char **argv, struct herd_err *err)
{
    int opt, idx, rc;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_options, &idx)) != -1) {
        switch (opt) {
        case 'h':
            cfg->show_help = 1;
            break;
        case 'V':
            cfg->show_version = 1;
            break;
        case 'J':
            cfg->jail_check = 1;
            break;
        case 'f':
            rc = load_json_file(cfg, optarg, err);
            if (rc)
                return rc;
            break;
        case ':':
            return herd_err_set(err, -EINVAL, argv[optind - 1], "%s needs a value",
                                argv[optind - 1]);
        case '?':
            return herd_err_set(err, -EINVAL, argv[optind - 1], "unknown option '%s' (see --help)",
                                argv[optind - 1]);
        default:
            rc = apply_setting(cfg, long_options[idx].name, optarg, err);
            if (rc)
                return rc;
            break;
        }
    }
    if (optind < argc)
        return herd_err_set(err, -EINVAL, "", "unexpected argument '%s' (see --help)",
                            argv[optind]);
    return 0;
}

int vmm_config_validate(const struct vmm_config *cfg, struct herd_err *err)
{
    if (cfg->restore && (cfg->kernel || cfg->initrd || cfg->cmdline))
        return herd_err_set(err, -EINVAL, "--restore",
                            "--restore starts the snapshot's guest: no --kernel, --initrd or "
                            "--cmdline with it");
    if (!cfg->kernel && !cfg->restore)
        return herd_err_set(err, -EINVAL, "--kernel",
                            "no kernel: give --kernel PATH (or \"kernel\" in --config), or "
                            "--restore FILE");
    if (cfg->mem < 4 * (1ULL << 20) || cfg->mem % 4096)
        return herd_err_set(err, -EINVAL, "--mem",
                            "mem: %llu bytes is not a multiple of 4 KiB of at least 4 MiB",
                            (unsigned long long)cfg->mem);
    if ((cfg->uid < 0) != (cfg->gid < 0))
        return herd_err_set(err, -EINVAL, "--uid",
                            "uid and gid go together: give both --uid and --gid");
    if (cfg->mem > (1ULL << 40))
        return herd_err_set(err, -EINVAL, "--mem", "mem: more than 1 TiB is not supported");
    return 0;
}

void vmm_config_usage(FILE *out)
{
    fprintf(out,
"usage: herd-vmm --kernel PATH [options]\n"
"       herd-vmm --restore SNAPSHOT [options]\n"
"       herd-vmm --config vm.json [options]\n"
"\n"
"Runs one KVM guest. Boots a Linux bzImage (x86 boot protocol, 64-bit entry)\n"
"or an ELF kernel with a PVH entry note (e.g. vmlinux, herd-probe.elf).\n"
"\n"
"  --kernel PATH      kernel to boot (bzImage or PVH ELF)\n"
"  --initrd PATH      initial ramdisk\n"
"  --cmdline STR      kernel command line\n"
"  --mem SIZE         guest RAM, e.g. 64M, 2G (default 64M)\n"
"  --cpus N           vCPUs, 1-%d (default 1; also capped by KVM)\n"
"  --serial MODE      COM1 (0x3f8, IRQ 4): stdio (default), file:PATH, none\n"
"  --disk SPEC        virtio-blk disk (repeatable): path=FILE,format=raw|qcow2\n"
"                     [,readonly=on][,serial=ID][,queues=N]; the format is\n"
"                     never guessed\n"
"  --net SPEC         virtio-net NIC on a tap (repeatable): tap=NAME[,mac=MAC]\n"
"                     [,vhost=auto|on|off]\n"
"  --config FILE      JSON object with the same keys as the long options,\n"
"                     e.g. {\"kernel\": \"vmlinux\", \"mem\": \"256M\", \"cpus\": 2};\n"
"                     plus \"disks\"/\"nets\": arrays of --disk/--net specs;\n"
"                     options after --config override it\n"
"  --control PATH     serve the control socket at PATH (unix stream, mode\n"
"                     0600; one JSON object per line each way): ping, status,\n"
"                     pause, resume, stop (docs/control-socket.md). Refuses a\n"
"                     path where a live socket answers, replaces a stale one,\n"
"                     removes it on exit. With it SIGHUP is ignored; start a\n"
"                     supervised herd-vmm with setsid so it outlives its parent\n"
"  --restore FILE     start from a snapshot (control socket \"snapshot\",\n"
"                     docs/snapshot.md) instead of booting a kernel; --cpus,\n"
"                     --mem, the disks and NICs must match the snapshot's\n"
"  --restore-mem map|copy  map: RAM is the file mapped copy-on-write, shared\n"
"                     by every guest restored from it (default); copy: read\n"
"                     into memory of herd-vmm's own\n"
"  --log-level LEVEL  error, warn, info (default), debug\n"
"\n"
"Confinement (docs/security.md), applied once the VM is built:\n"
"  --file-size-max SIZE  RLIMIT_FSIZE (soft and hard), set first thing: no\n"
"                     file herd-vmm writes (disks, serial file, a log on\n"
"                     stderr) grows past SIZE; a write past it fails (EFBIG,\n"
"                     SIGXFSZ is ignored)\n"
"  --cgroup DIR       join the cgroup v2 group DIR (write our pid to\n"
"                     DIR/cgroup.procs) before anything is allocated;\n"
"                     herdd creates it with its limits and removes it\n"
"  --uid N --gid N    run as this uid/gid (no supplementary groups)\n"
"  --seccomp on|off   system call filters per thread class (default on;\n"
"                     off is for debugging and warns)\n"
"  --jail-check       build the VM, apply the confinement, print what is\n"
"                     in effect (capabilities, no_new_privs, seccomp per\n"
"                     thread, uid/gid, cgroup) and exit 0 without running\n"
"                     the guest\n"
"Every capability (bounding set included) is dropped and no_new_privs set\n"
"in any case.\n"
"\n"
"  --help, --version\n"
"\n"
"Guest-visible devices: 16550A UART on 0x3f8, i8042 (reset via 0xfe), PIT,\n"
"PIC/IOAPIC/LAPIC (in-kernel), MP table and ACPI, PCI (ports 0xcf8/0xcfc and\n"
"ECAM at 0xe0000000) with virtio-pci disks and NICs, debug-exit on port 0x501\n"
"(QEMU isa-debug-exit: status = (value << 1) | 1), boot marker (write 123 to\n"
"MMIO 0xc0000000 or port 0x3f0).\n"
"\n"
"Exit status: 0 guest shut down or reset, or stopped through --control;\n"
"odd values come from debug-exit;\n"
"2 herd-vmm error (bad option, unusable kernel, missing KVM capability);\n"
"4 guest crashed (triple fault, KVM internal/emulation error, failed entry);\n"
"6 a thread made a system call its seccomp filter forbids (logged with the\n"
"  call and the thread class): a possible escape attempt;\n"
"128+N killed by signal N.\n",
            VMM_MAX_CPUS);
}
