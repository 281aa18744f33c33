/*
 * The probe's command-line keys (probe.tests, probe.mem, probe.cpus,
 * probe.idle, probe.verbose, probe.cpusrc). Other words (console=..., anything) are ignored.
 */
#ifndef HERD_PROBE_CMDLINE_H
#define HERD_PROBE_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_TESTS 32
#define TEST_NAME_MAX 32

struct probe_args {
    bool has_tests;
    uint32_t ntests;
    char tests[MAX_TESTS][TEST_NAME_MAX]; /* names, truncated to fit */
    bool tests_overflow;

    bool has_mem;
    uint64_t mem; /* bytes */
    bool has_cpus;
    uint64_t cpus;
    bool idle;
    bool verbose;       /* probe.verbose=1: print the memory map etc. */
    const char *cpusrc; /* probe.cpusrc=mptable|madt: use only that table */

    /* First malformed probe.* value ("" if none); the boot test fails on it. */
    char err[96];
};

void cmdline_parse(const char *cmdline, struct probe_args *a);

/* Per-test keys (probe.blk.*, probe.net.*, ...) are looked up by the tests
 * themselves. cmdline_value: the value of the last `key=` word in cmdline
 * (pointer into cmdline, length in *vlen); NULL if absent. */
const char *cmdline_value(const char *cmdline, const char *key, uint32_t *vlen);

/* Integer/size/flag lookups: absent -> *out = dflt and true; malformed ->
 * false (the caller reports it). */
bool cmdline_u64(const char *cmdline, const char *key, uint64_t dflt, uint64_t *out);
bool cmdline_size(const char *cmdline, const char *key, uint64_t dflt, uint64_t *out);
bool cmdline_flag(const char *cmdline, const char *key, bool dflt, bool *out);

/* Parse "64M"-style sizes: decimal or 0x hex, optional K/M/G suffix. */
bool parse_size(const char *s, uint32_t len, uint64_t *out);

#endif
