/*
 * image_copy: the pure pieces of parent image copies across a cluster's
 * nodes (docs/cluster.md "Parent images"): the entry a node publishes in
 * etcd for a template it holds (/herd/images/NAME/NODE), read as hostile
 * input; the HTTP ranges of the transfer; SHA-256 of a file's bytes.
 *
 * Everything here comes from etcd or a peer: sizes are bounded, digests
 * are 64 lowercase hex digits, addresses are IP literals, and no path is
 * ever taken from it (a copy is named by its digest on the fetching side).
 */
#ifndef HERD_IMAGE_COPY_H
#define HERD_IMAGE_COPY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "herd/error.h"

#define IMAGE_COPY_FILES 3                  /* image, kernel, initrd */
#define IMAGE_COPY_IMAGE_MAX (1ULL << 40)   /* a parent image: at most 1 TiB */
#define IMAGE_COPY_BOOT_MAX (1ULL << 30)    /* a kernel or an initrd: 1 GiB */
#define IMAGE_COPY_ENTRY_MAX 65536          /* an entry's JSON text */
#define IMAGE_COPY_NAME_MAX 63

enum image_file_kind { IMAGE_FILE_IMAGE, IMAGE_FILE_KERNEL, IMAGE_FILE_INITRD };
extern const char *const image_file_names[IMAGE_COPY_FILES]; /* "image", "kernel", "initrd" */

struct image_file {
    bool present;        /* initrd: optional */
    char sha256[65];     /* lowercase hex */
    uint64_t size;       /* bytes */
};

/* One holder's entry: the template's definition (what `template add` takes,
 * less the paths), its files by digest and size, and where it serves them. */
struct image_def {
    char name[IMAGE_COPY_NAME_MAX + 1];
    char node[IMAGE_COPY_NAME_MAX + 1];
    char format[8];                  /* raw | qcow2 */
    char address[46];                /* IPv4 or IPv6 literal */
    unsigned port;                   /* 1-65535 */
    char *cmdline, *ready_line;      /* owned; cmdline may be "" */
    unsigned cpus;                   /* 1-32 */
    uint64_t mem;                    /* 4 MiB - 1 TiB, 4 KiB steps */
    json_t *nics;                    /* owned: a list (checked by template add) */
    struct image_file file[IMAGE_COPY_FILES];
};

/* Parses one entry (text, len) published under /herd/images/NAME/NODE:
 * the entry's name and node must be those of its key. 0, or -EPROTO with
 * err naming the field ("files.image.sha256"); d is then empty. */
int image_def_parse(const char *text, size_t len, const char *name, const char *node,
                    struct image_def *d, struct herd_err *err);
void image_def_free(struct image_def *d);
/* The entry's JSON text (compact, keys sorted), malloc'd; NULL: no memory. */
char *image_def_text(const struct image_def *d);
/* Do two holders' entries name the same bytes for file i? */
bool image_def_same_file(const struct image_def *a, const struct image_def *b, int i);

bool image_sha256_ok(const char *hex);

/* A request's Range header (a single "bytes=START-" or "bytes=START-END")
 * for a file of size bytes: 0 with [*start, *end] (inclusive); -ERANGE
 * when START is past the end (416); -EINVAL when it is not that form. */
int image_range_parse(const char *hdr, uint64_t size, uint64_t *start, uint64_t *end);
/* A reply's Content-Range ("bytes START-END/TOTAL"): 0 or -EINVAL. */
int image_content_range_parse(const char *hdr, uint64_t *start, uint64_t *end,
                              uint64_t *total);

/* SHA-256 of the first len bytes of fd (pread, from offset 0) added to ctx
 * (an EVP_MD_CTX * started with EVP_sha256): 0, -errno, or -EIO when the
 * file is shorter. */
int image_hash_prefix(void *ctx, int fd, uint64_t len);
/* ctx's digest as lowercase hex into out (65 bytes); ctx is finished. */
void image_hash_hex(void *ctx, char out[65]);
/* SHA-256 of the whole file at fd into out: 0 or -errno. */
int image_hash_fd(int fd, char out[65]);

/* "12.5 MiB": bytes as a person reads them, into out. */
void image_size_str(uint64_t bytes, char *out, size_t size);

#endif
