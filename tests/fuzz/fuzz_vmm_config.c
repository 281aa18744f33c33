/*
 * libFuzzer target: herd-vmm's JSON configuration (vmm_config_apply_json)
 * and the value parsers it uses (vmm_parse_size, vmm_parse_serial), with
 * arbitrary text.
 *
 * Contract checked beyond "no sanitizer report": a refused JSON text comes
 * with a message and leaves the configuration exactly as it was (the JSON is
 * applied over a configuration that already holds values); an accepted one
 * goes through vmm_config_validate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/vmm_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_vmm_config: contract broken: %s: ", #cond);       \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static const char base_json[] =
    "{\"kernel\": \"/k\", \"initrd\": \"/i\", \"cmdline\": \"console=ttyS0\", "
    "\"mem\": \"128M\", \"cpus\": 2, \"serial\": \"file:/s\", \"log-level\": \"debug\"}";

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_config(const struct vmm_config *a, const struct vmm_config *b)
{
    return same_str(a->kernel, b->kernel) && same_str(a->initrd, b->initrd) &&
           same_str(a->cmdline, b->cmdline) && same_str(a->serial_path, b->serial_path) &&
           a->mem == b->mem && a->cpus == b->cpus && a->serial == b->serial &&
           a->log_level == b->log_level && a->show_help == b->show_help &&
           a->show_version == b->show_version;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vmm_config cfg, before;
    struct herd_err err;
    char *text = malloc(size + 1);
    uint64_t bytes;
    int rc;

    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = 0;

    vmm_config_init(&cfg);
    vmm_config_init(&before);
    /* Inputs of odd length start from a configuration that holds values,
     * the others from the defaults. */
    if (size & 1) {
        if (vmm_config_apply_json(&cfg, base_json, "base", &err) ||
            vmm_config_apply_json(&before, base_json, "base", &err))
            abort();
    }

    herd_err_clear(&err);
    rc = vmm_config_apply_json(&cfg, text, "fuzz.json", &err);
    if (rc) {
        FUZZ_ASSERT(rc < 0 && err.msg[0], "refused (%d) without a message", rc);
        FUZZ_ASSERT(same_config(&cfg, &before), "refused JSON changed the configuration: %s",
                    err.msg);
    } else {
        herd_err_clear(&err);
        rc = vmm_config_validate(&cfg, &err);
        FUZZ_ASSERT(rc == 0 || err.msg[0], "validate refused (%d) without a message", rc);
    }
    vmm_config_free(&cfg);
    vmm_config_free(&before);

    /* The same text as a size and as a serial setting. */
    if (vmm_parse_size(text, &bytes) == 0)
        FUZZ_ASSERT(text[0] >= '0' && text[0] <= '9', "size '%s' accepted", text);
    vmm_config_init(&cfg);
    herd_err_clear(&err);
    rc = vmm_parse_serial(&cfg, text, &err);
    FUZZ_ASSERT(rc == 0 || err.msg[0], "serial refused (%d) without a message", rc);
    vmm_config_free(&cfg);

    free(text);
    return 0;
}
