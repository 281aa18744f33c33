/*
 * libFuzzer target: the entry a node publishes for a template's parent
 * image (/herd/images/NAME/NODE) and the HTTP byte ranges of a copy
 * (ctl/lib/image_copy.c). herdd reads both as hostile input
 * (docs/cluster.md "Parent images").
 *
 * Input: byte 0 picks the reader (0: an entry for template "probe" of
 * node "n1"; 1: a Range header for a file of the size in bytes 1-8,
 * little-endian; 2: a Content-Range header), the rest is the text.
 *
 * Contract checked beyond "no sanitizer report": a refused entry comes with
 * a message and a field-naming error and keeps nothing; an accepted one
 * has a name and node of its key, 64 lowercase hex digits for each file
 * present, sizes within their bounds, an image and a kernel, and reads
 * back the same from its own text; an accepted Range lies inside the
 * file (start <= end < size); an accepted Content-Range has start <= end
 * < total.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/image_copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                      \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_image_copy: contract broken: %s: ", #cond);       \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

static void entry(const char *text, size_t len)
{
    struct image_def d, e;
    struct herd_err err = {0};

    if (image_def_parse(text, len, "probe", "n1", &d, &err) < 0) {
        FUZZ_ASSERT(err.msg[0] && err.code < 0, "refused without a message");
        FUZZ_ASSERT(!d.cmdline && !d.ready_line && !d.nics, "a refusal kept something");
        return;
    }
    FUZZ_ASSERT(!strcmp(d.name, "probe") && !strcmp(d.node, "n1"), "name %s node %s", d.name,
                d.node);
    FUZZ_ASSERT(d.file[IMAGE_FILE_IMAGE].present && d.file[IMAGE_FILE_KERNEL].present,
                "no image or no kernel");
    for (int i = 0; i < IMAGE_COPY_FILES; i++) {
        const struct image_file *f = &d.file[i];
        uint64_t max = i == IMAGE_FILE_IMAGE ? IMAGE_COPY_IMAGE_MAX : IMAGE_COPY_BOOT_MAX;
        FUZZ_ASSERT(!f->present || (image_sha256_ok(f->sha256) && f->size >= 1 && f->size <= max),
                    "file %d: %s %llu", i, f->sha256, (unsigned long long)f->size);
    }
    FUZZ_ASSERT(d.port >= 1 && d.port <= 65535 && d.cpus >= 1 && d.cpus <= 32, "port or cpus");
    char *again = image_def_text(&d);
    FUZZ_ASSERT(again, "no text of an accepted entry");
    FUZZ_ASSERT(image_def_parse(again, strlen(again), "probe", "n1", &e, &err) == 0,
                "its own text refused: %s", err.msg);
    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        FUZZ_ASSERT(image_def_same_file(&d, &e, i), "file %d differs read back", i);
    FUZZ_ASSERT(d.mem == e.mem && !strcmp(d.cmdline, e.cmdline), "settings differ read back");
    free(again);
    image_def_free(&e);
    image_def_free(&d);
}

static void range(const uint8_t *data, size_t size)
{
    uint64_t file = 0, a = 0, b = 0;
    char text[256];

    if (size < 8)
        return;
    for (int i = 7; i >= 0; i--)
        file = file << 8 | data[i];
    size_t n = size - 8 < sizeof(text) - 1 ? size - 8 : sizeof(text) - 1;
    memcpy(text, data + 8, n);
    text[n] = 0;
    int rc = image_range_parse(text, file, &a, &b);
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL || rc == -ERANGE, "rc %d", rc);
    if (rc == 0)
        FUZZ_ASSERT(a <= b && b < file, "range %llu-%llu of %llu", (unsigned long long)a,
                    (unsigned long long)b, (unsigned long long)file);
}

static void content_range(const uint8_t *data, size_t size)
{
    uint64_t a = 0, b = 0, t = 0;
    char text[256];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;

    memcpy(text, data, n);
    text[n] = 0;
    if (image_content_range_parse(text, &a, &b, &t) == 0)
        FUZZ_ASSERT(a <= b && b < t, "content range %llu-%llu/%llu", (unsigned long long)a,
                    (unsigned long long)b, (unsigned long long)t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        entry((const char *)data + 1, size - 1);
        break;
    case 1:
        range(data + 1, size - 1);
        break;
    default:
        content_range(data + 1, size - 1);
        break;
    }
    return 0;
}
