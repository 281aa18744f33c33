/*
 * herd-img: the image tool (qemu-img habits). Shared helpers of its commands.
 */
#ifndef HERD_IMG_H
#define HERD_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "herd/blockdev.h"

/* Commands: argc/argv start at the command name. Return the process exit code. */
int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_check(int argc, char **argv);
int img_io(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_resize(int argc, char **argv);

/* Messages as qemu-img prints them: "NAME: ..." on stderr, NAME the one it
 * was run by (herd-img, or qemu-img where QEMU's iotests run it so). */
void img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sizes with K/M/G/T/P/E suffixes (powers of 1024), as qemu-img accepts them. */
int img_parse_size(const char *s, uint64_t *out);
/* A pattern byte as qemu-io and qemu-img bench take it: a whole C integer
 * literal (decimal, 0x hex, 0 octal) from 0 to 255; -EINVAL otherwise. */
int img_parse_byte(const char *s);

/* Top-level format: the -f argument, or (herd-img only, never the library)
 * "qcow2" when the file starts with the qcow2 magic and "raw" otherwise. */
const char *img_guess_format(const char *path, const char *given);

/* qemu's preallocation mode names (off, metadata, falloc, full) as enum
 * blockdev_prealloc; -1 for another name. */
int img_prealloc_mode(const char *v);

/* A library's message for a failure, or "no error" when it left none. */
const char *img_errmsg(const struct herd_err *e);

/* A backing file name as stored in image, as a path from here: relative
 * names are taken from image's directory (qemu's rule); absolute names and
 * URLs as they are. Malloc'd; NULL when out of memory. */
char *img_backing_path(const char *image, const char *name);

static inline uint64_t img_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t img_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* A file name as qemu's file protocol takes it: a "file:" prefix dropped, and
 * a name then left with a colon before its first slash given "./" (so that
 * it names no protocol: qemu's bdrv_parse_filename_strip_prefix). Returns
 * name itself without the prefix, else buf (name cut to fit, len >= 3). */
#define IMG_PATH_MAX 4104
const char *img_file_path(const char *name, char *buf, size_t len);

/* Opens an image for a command (through img_file_path, or json:{...} options
 * with a format or null-co); prints the error itself. */
struct blockdev *img_open(const char *path, const char *fmt, bool rw, bool force_share,
                          bool no_backing);
/* The same with the caller's options (their format and err are set here). */
struct blockdev *img_open_opts(const char *path, const char *fmt, struct blockdev_open_opts *o);

/* An image named by options ("key=value,...": --image-opts, qemu-io's
 * open -o): driver (a format, or file/host_device/host_cdrom for the bytes
 * of the file as raw), filename or file.filename, file.driver, read-only,
 * locking, backing.driver. */
struct img_opts {
    const char *path, *fmt;
    const char *protocol;       /* file, host_device or host_cdrom; NULL: any file */
    const char *backing_driver; /* the first backing file's format */
    const char *bad_opt;        /* the first key none of ours takes */
    bool ro, no_lock;
    bool bare;          /* driver= named a protocol: no format layer */
    bool no_backing;    /* "backing": null */
    const char *filter; /* "compress": driver=compress over the image in file.* */
    uint64_t size;      /* null-co: size= (has_size), read-zeroes= */
    bool has_size, read_zeroes;
};
/* Parses s (edited in place: o points into it). -EINVAL (said) on a
 * malformed entry; an unknown key only sets bad_opt (the open refuses it). */
int img_opts_parse(char *s, struct img_opts *o);
/* One key=value into o (the filter's child keys under file.); false when no
 * option of ours takes it. */
bool img_opts_take(struct img_opts *o, const char *k, const char *v);
/* After the last key: driver=file and the like become raw over a protocol. */
void img_opts_finish(struct img_opts *o);

/* Strings a parse made, freed together. */
struct img_strs {
    char **v;
    size_t n, cap;
};
void img_strs_free(struct img_strs *st);
/* A "json:{...}" name (imgjson.c) into o, its strings kept in store (the
 * caller frees it, also on failure); -EINVAL with the reason in err when it
 * is no JSON object. Nested objects are dotted keys, as --image-opts
 * spells them. */
int img_opts_json(const char *name, struct img_strs *store, struct img_opts *o, char *err,
                  size_t n);

/* An image as a command's --image-opts names it: spec parsed into a copy
 * (*copy, the caller's to free, also on failure), which must name the file
 * and a format and nothing else. Prints the error itself. */
int img_opts_image(const char *spec, char **copy, struct img_opts *o);
/* The file checks of qemu's protocol drivers: "file" wants a regular file,
 * host_device and host_cdrom a character or block device; path is opened
 * as the image would be (ro) first. 0 when protocol is NULL or the file
 * fits, else -errno with the message in msg. */
int img_protocol_check(const char *protocol, const char *path, bool ro, char *msg, size_t n);

/* qemu-style pretty JSON output, keys in the order they are emitted. */
struct jw {
    FILE *f;
    int depth, base;
    bool first[16];
};
void jw_begin(struct jw *w, FILE *f, int depth);
void jw_obj_open(struct jw *w, const char *key);
void jw_obj_close(struct jw *w);
void jw_int(struct jw *w, const char *key, uint64_t v);
void jw_str(struct jw *w, const char *key, const char *v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_string_escaped(FILE *f, const char *s);

#endif
