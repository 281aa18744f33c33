/*
 * herd-img io internals: the state qemu-io's commands share, and the
 * commands themselves (io_cmds.c), driven by io.c.
 */
#ifndef HERD_IMG_IO_H
#define HERD_IMG_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "img.h"

struct io_ctx {
    struct blockdev *bd; /* NULL once closed */
    bool interactive;
    bool compress; /* opened through qemu's compress filter: data writes compressed */
};

/* A command: argv[0] is its name. Returns 0, or a negative errno that
 * makes the process exit 1 (qemu-io's rule). */
typedef int (*io_cmd_fn)(struct io_ctx *x, int argc, char **argv);

struct io_cmd {
    const char *name, *altname;
    int argmin, argmax; /* argmax -1: no bound */
    bool nofile_ok, writes;
    io_cmd_fn fn;
    const char *args, *oneline;
};

extern const struct io_cmd io_cmds[];

/* qemu-io's one-line usage of a command, on stdout; returns -EINVAL. */
int io_usage(const char *name);
/* An offset or length as qemu-io's cvtnum parses it; prints its error. */
int io_parse_num(const char *arg, uint64_t *v);
/* qemu-io's cvtstr: "1.500 KiB", "4 KiB", "512 bytes". */
void io_human(double v, char *out, size_t n);

/* A data write as the open image takes it: plain, or through the compress
 * filter (whole clusters read, the bytes put over them, written compressed). */
int io_pwrite(struct io_ctx *x, const void *buf, uint64_t len, uint64_t off);
/* Write-zeroes the same way: through the filter, partial clusters at the
 * ends are data writes (compressed), whole clusters between are zeroes. */
int io_write_zeroes(struct io_ctx *x, uint64_t off, uint64_t len, unsigned flags);

/* io_snapshot.c: -s, qemu-io's snapshot mode: path (opened as bo says,
 * read-only) under a throwaway qcow2 overlay that takes the writes. */
int io_open_snapshot(const char *path, const struct blockdev_open_opts *bo,
                     struct blockdev **out);

/* io.c: open and close as commands. */
int io_cmd_open(struct io_ctx *x, int argc, char **argv);
int io_cmd_close(struct io_ctx *x, int argc, char **argv);

#endif
