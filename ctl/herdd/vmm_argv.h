/*
 * herd-vmm's command line for one start of one guest. Building it is a pure
 * function of what herdd decided for that start (no I/O, no global state):
 * spawning (vm.c) is separate, and tests/unit/test_herdd_vmm_argv.c parses
 * what it builds with herd-vmm's own parser.
 */
#ifndef HERDD_VMM_ARGV_H
#define HERDD_VMM_ARGV_H

#include <stdbool.h>
#include <stdint.h>

#include "herdd.h"

#define HD_VMM_ARGV_MAX 64

struct hd_vmm_nic {
    const char *tap;
    const char *mac;            /* "52:54:..." */
};

/* One start, resolved: every path absolute, every choice made. */
struct hd_vmm_launch {
    const char *vmm;            /* herd-vmm's path (argv[0]) */
    const char *kernel;         /* not passed when restore is set */
    const char *initrd;         /* NULL: none */
    const char *cmdline;
    const char *restore;        /* NULL, or a snapshot file: --restore FILE
                                 * --restore-mem map instead of kernel,
                                 * initrd and cmdline (docs/snapshot.md) */
    uint64_t mem;               /* bytes, a multiple of 1 KiB */
    unsigned cpus;
    const char *console;        /* what herd-vmm writes its serial port to */
    const char *disk;           /* the guest's qcow2 overlay */
    const struct hd_chain *chain; /* the overlay's pinned backing chain */
    const char *seed;           /* NULL, or its NoCloud seed (raw, read-only) */
    const char *resources;      /* NULL, or its range's resource disk (raw,
                                 * read-only), after the seed; needs a seed */
    const struct hd_vmm_nic *nics;
    unsigned n_nics;
    const char *control;        /* NULL: this herd-vmm has no control socket */
    uint64_t file_size_max;     /* RLIMIT_FSIZE; 0: not passed (older herd-vmm) */
    unsigned uid;               /* herd-vmm runs as uid:uid after setup; not 0 */
    const char *cgroup;         /* NULL or "": no cgroup */
};

struct hd_vmm_argv {
    int argc;
    char *argv[HD_VMM_ARGV_MAX + 1]; /* NULL-terminated, each malloc'd */
};

/* Builds out from l. -1 with err filled (500, naming the field) when l
 * cannot be said on a command line: a value that would split herd-vmm's
 * comma-separated --disk/--net specs, uid 0, too many NICs, no memory. */
int hd_vmm_argv_build(const struct hd_vmm_launch *l, struct hd_vmm_argv *out,
                      struct hd_err *err);
void hd_vmm_argv_free(struct hd_vmm_argv *a);

/* RLIMIT_FSIZE for a guest whose template image has this virtual size: the
 * size plus an eighth for qcow2 metadata plus 256 MiB (docs/security.md). */
uint64_t hd_vmm_file_size_max(uint64_t image_size);

#endif
