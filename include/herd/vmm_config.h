/*
 * herd-vmm's configuration: command-line options and the equivalent JSON
 * file (--config vm.json). Both fill the same struct and go through the same
 * validation, so a field means the same thing wherever it was given.
 */
#ifndef HERD_VMM_CONFIG_H
#define HERD_VMM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "herd/device_config.h"
#include "herd/error.h"
#include "herd/log.h"

#define HERD_VERSION       "0.1.0"
#define VMM_DEFAULT_MEM    (64ULL << 20)
#define VMM_MAX_CPUS       32
#define VMM_MAX_DISKS      8
#define VMM_MAX_NICS       8

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

struct vmm_config {
    char *kernel;
    char *initrd;
    char *cmdline;
    uint64_t mem;      /* bytes */
    unsigned cpus;
    enum serial_mode serial;
    char *serial_path; /* SERIAL_FILE */
    enum log_level log_level;
    struct disk_config disks[VMM_MAX_DISKS];
    unsigned nr_disks;
    struct nic_config nics[VMM_MAX_NICS];
    unsigned nr_nics;
    char *control;     /* --control PATH: the control socket, or NULL */
    char *cgroup;      /* --cgroup DIR: join this cgroup v2 group, or NULL */
    uint64_t file_size_max; /* --file-size-max SIZE: RLIMIT_FSIZE, 0 = unchanged */
    long uid, gid;     /* --uid/--gid: run as these after setup; -1 keeps */
    int seccomp;       /* --seccomp on|off (default on) */
    int jail_check;    /* --jail-check: build, confine, report, exit */
    char *restore;     /* --restore FILE: start from this snapshot instead of a kernel */
    int restore_copy;  /* --restore-mem copy: RAM read into herd-vmm's own memory */
    int show_help;
    int show_version;
};

void vmm_config_init(struct vmm_config *cfg);
void vmm_config_free(struct vmm_config *cfg);

/* Parses argv (a --config file is read where it appears; later options
 * override it). 0, or -EINVAL with a message in err. */
int vmm_config_parse_args(struct vmm_config *cfg, int argc, char **argv, struct herd_err *err);

/* Applies a JSON object given as text (`origin` names it in messages). */
int vmm_config_apply_json(struct vmm_config *cfg, const char *text, const char *origin,
                          struct herd_err *err);

/* Checks the whole configuration once everything is applied. */
int vmm_config_validate(const struct vmm_config *cfg, struct herd_err *err);

/* "64M", "1G", "65536K", "4194304" -> bytes. -EINVAL on junk or overflow. */
int vmm_parse_size(const char *s, uint64_t *out);

/* "stdio", "none", "file:PATH". */
int vmm_parse_serial(struct vmm_config *cfg, const char *s, struct herd_err *err);

void vmm_config_usage(FILE *out);

#endif
