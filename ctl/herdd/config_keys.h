/* herdd's configuration keys as tables (config.c): one row a key, read by
 * one loop. The rows are the keys' documentation (docs/herdd.md follows
 * them) and the unit tests walk them (tests/unit/test_herdd_config.c). */
#ifndef HERD_HERDD_CONFIG_KEYS_H
#define HERD_HERDD_CONFIG_KEYS_H

#include "herdd.h"

enum hd_key_type {
    HD_KEY_STRING,  /* a string; any other value: def_s */
    HD_KEY_PATH,    /* HD_KEY_STRING that must be an absolute path */
    HD_KEY_BOOL,    /* true; any other value: false */
    HD_KEY_COUNT,   /* an integer in [min, max] -> unsigned */
    HD_KEY_SIZE,    /* bytes (4096, "64K", "2G", "1GiB") in [min, max] -> uint64_t */
    HD_KEY_SECONDS, /* a number of seconds in [min, max] -> unsigned, in ms */
    HD_KEY_DOUBLE,  /* a number, min < it <= max -> double */
    HD_KEY_SECTION, /* a mapping read through the table section */
    HD_KEY_CUSTOM,  /* read by parse */
};

struct hd_key_ctx {
    const char *path;           /* the file, first word of every message */
    struct hd_config *cfg;
    struct hd_err *err;
};

struct hd_key;

/* A mapping's keys (of a HD_KEY_SECTION row: NAME is the row's). Its errors
 * name the section (err->field) and say
 * "PATH: NAME.KEY: help" (or "PATH: NAME: help" without key_in_msg); a
 * value that is not a mapping: "PATH: NAME must be a mapping" (without
 * key_in_msg: the help). Its keys are read in the file's order. */
struct hd_section {
    const struct hd_key *keys;  /* plain types only; ends with a row without a name */
    const char *help;
    bool key_in_msg;
    bool (*check)(const struct hd_config *cfg); /* after every key, or NULL */
};

struct hd_key {
    const char *name;
    enum hd_key_type type;
    size_t off;                 /* the value's place in struct hd_config */
    double min, max, def;       /* numeric types; SECONDS' def in seconds */
    const char *def_s;          /* STRING, PATH */
    const struct hd_section *section;            /* SECTION */
    int (*parse)(json_t *v, struct hd_key_ctx *c); /* CUSTOM; v NULL when absent */
};

/* The top level: read in the table's order (the order of the checks: the
 * first bad key in it is the one reported); a key not in it is refused
 * ("PATH: unknown key 'KEY'", field KEY) before any is read. */
extern const struct hd_key hd_config_keys[];

#endif
