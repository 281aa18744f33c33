/*
 * herd-img io: the qemu-io command subset (read, write, discard, flush) so the
 * same scripts run against qemu-io and herd. Commands come from -c options or,
 * without any, one per line from stdin.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img.h"

#define MAX_ARGS 32

struct io_ctx {
    struct blockdev *bd;
    bool failed, interactive;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* qemu-io's numbers: three decimals in the largest binary unit the value
 * reaches ("1.500 KiB", "1000 KiB", "7.961 MiB"), six for plain bytes
 * ("375.500000 bytes"), and a ".000" dropped ("4 KiB", "512 bytes"). */
static void human(double v, char *out, size_t n)
{
    static const char *const sfx[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int i = 6;
    while (i > 0 && v < (double)(1ull << (10 * i)))
        i--;
    char num[64];
    snprintf(num, sizeof(num), i ? "%.3f" : "%f", v / (double)(1ull << (10 * i)));
    char *dot = strstr(num, ".000");
    if (dot)
        *dot = 0;
    snprintf(out, n, "%s %s", num, sfx[i]);
}

static void report(const char *verb, uint64_t len, uint64_t off, double t0, bool quiet)
{
    if (quiet)
        return;
    double t = now_s() - t0;
    char sz[80], rate[80];
    human((double)len, sz, sizeof(sz));
    human(t > 0 ? (double)len / t : 0, rate, sizeof(rate));
    printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", verb, len, len, off);
    printf("%s, 1 ops; %05.2f sec (%s/sec and %.4f ops/sec)\n", sz, t, rate,
           t > 0 ? 1 / t : 0.0);
}

struct cmd_opts {
    bool quiet, zero, unmap, has_pattern;
    int pattern;
    uint64_t off, len;
};

/* A pattern byte as qemu-io takes it: a whole C integer literal (decimal,
 * 0x hex or 0 octal) from 0 to 255, nothing after it. */
static int parse_pattern(const char *arg)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 0);
    if (errno || v < 0 || v > 255 || *end) {
        printf("%s is not a valid pattern byte\n", arg);
        return -EINVAL;
    }
    return (int)v;
}

/* qemu-io's one-line help, printed (on stdout) after a usage error. */
static void usage_line(const char *cmd)
{
    static const char *const lines[][2] = {
        {"read", "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of "
                 "bytes at a specified offset"},
        {"write", "write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number "
                  "of bytes at a specified offset"},
        {"discard", "discard [-Cq] off len -- discards a number of bytes at a specified offset"},
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (!strcmp(cmd, lines[i][0]))
            printf("%s\n", lines[i][1]);
}

/* An offset or length as qemu-io parses it, and its message when it cannot. */
static int parse_num(const char *arg, uint64_t *v)
{
    int r = img_parse_size(arg, v);
    if (r == -ERANGE)
        printf("Parsing error: argument too large -- %s\n", arg);
    else if (r < 0)
        printf("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s\n",
               arg);
    return r;
}

static int parse_cmd(int argc, char **argv, const char *flags, struct cmd_opts *o)
{
    memset(o, 0, sizeof(*o));
    if (argc - 1 < 2) {
        fprintf(stderr, "bad argument count %d to %s, expected at least 2 arguments\n", argc - 1,
                argv[0]);
        return -EINVAL;
    }
    int c;
    optind = 0; /* full getopt reset between commands (glibc) */
    opterr = 0;
    while ((c = getopt(argc, argv, flags)) != -1) {
        switch (c) {
        case 'q': o->quiet = true; break;
        case 'z': o->zero = true; break;
        case 'u': o->unmap = true; break;
        case 'P':
            o->has_pattern = true;
            o->pattern = parse_pattern(optarg);
            if (o->pattern < 0)
                return -EINVAL;
            break;
        default:
            fprintf(stderr, "%s: invalid option -- '%c'\n", argv[0], optopt);
            usage_line(argv[0]);
            return -EINVAL;
        }
    }
    if (argc - optind != 2) {
        usage_line(argv[0]);
        return -EINVAL;
    }
    if (parse_num(argv[optind], &o->off) < 0 || parse_num(argv[optind + 1], &o->len) < 0)
        return -EINVAL;
    /* qemu's largest request: INT_MAX rounded down to 512 bytes. */
    if (o->len > 2147483136u) {
        printf("length cannot exceed 2147483136%s, given %s\n",
               strcmp(argv[0], "write") ? "" : " without -n", argv[optind + 1]);
        return -EINVAL;
    }
    return 0;
}

/* Requests past the end fail as qemu-io's do (its block layer's EIO), before
 * reaching the image. */
static int check_range(struct io_ctx *x, const struct cmd_opts *o)
{
    uint64_t size = blockdev_size(x->bd);
    return o->off > size || o->len > size - o->off ? -EIO : 0;
}

static int cmd_read(struct io_ctx *x, int argc, char **argv)
{
    struct cmd_opts o;
    if (parse_cmd(argc, argv, "qvP:", &o) < 0)
        return -EINVAL;
    double t0 = now_s();
    int r = check_range(x, &o);
    uint8_t *buf = r == 0 ? malloc(o.len ? o.len : 1) : NULL;
    if (r == 0 && !buf)
        r = -ENOMEM;
    if (r == 0)
        r = blockdev_pread(x->bd, buf, o.len, o.off);
    if (r < 0) {
        printf("read failed: %s\n", strerror(-r));
        free(buf);
        return r;
    }
    if (o.has_pattern) {
        for (uint64_t i = 0; i < o.len; i++)
            if (buf[i] != (uint8_t)o.pattern) {
                printf("Pattern verification failed at offset %" PRIu64 ", %" PRIu64 " bytes\n",
                       o.off + i, o.len);
                r = -EILSEQ;
                break;
            }
    }
    free(buf);
    report("read", o.len, o.off, t0, o.quiet);
    return r;
}

static int cmd_write(struct io_ctx *x, int argc, char **argv)
{
    struct cmd_opts o;
    if (parse_cmd(argc, argv, "qzuP:", &o) < 0)
        return -EINVAL;
    double t0 = now_s();
    int r = check_range(x, &o);
    if (r == 0 && o.zero) {
        r = blockdev_write_zeroes(x->bd, o.off, o.len, o.unmap ? BLOCKDEV_ZERO_MAY_UNMAP : 0);
    } else if (r == 0) {
        uint8_t *buf = malloc(o.len ? o.len : 1);
        if (!buf)
            return -ENOMEM;
        memset(buf, o.has_pattern ? o.pattern : 0xcd, o.len);
        r = blockdev_pwrite(x->bd, buf, o.len, o.off);
        free(buf);
    }
    if (r < 0) {
        printf("write failed: %s\n", strerror(-r));
        return r;
    }
    report("wrote", o.len, o.off, t0, o.quiet);
    return 0;
}

static int cmd_discard(struct io_ctx *x, int argc, char **argv)
{
    struct cmd_opts o;
    if (parse_cmd(argc, argv, "q", &o) < 0)
        return -EINVAL;
    double t0 = now_s();
    int r = check_range(x, &o);
    if (r == 0)
        r = blockdev_discard(x->bd, o.off, o.len);
    if (r < 0) {
        printf("discard failed: %s\n", strerror(-r));
        return r;
    }
    report("discard", o.len, o.off, t0, o.quiet);
    return 0;
}

/* Returns 1 to stop (quit), 0 to go on. */
static int run_line(struct io_ctx *x, char *line)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t && argc < MAX_ARGS;
         t = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    if (argc == 0 || argv[0][0] == '#')
        return 0;
    int r = 0;
    if (!strcmp(argv[0], "read"))
        r = cmd_read(x, argc, argv);
    else if (!strcmp(argv[0], "write"))
        r = cmd_write(x, argc, argv);
    else if (!strcmp(argv[0], "discard"))
        r = cmd_discard(x, argc, argv);
    else if ((!strcmp(argv[0], "flush") || !strcmp(argv[0], "aio_flush")) && argc > 1) {
        fprintf(stderr, "bad argument count %d to %s, expected 0 arguments\n", argc - 1, argv[0]);
        r = -EINVAL;
    } else if (!strcmp(argv[0], "flush") || !strcmp(argv[0], "aio_flush")) {
        r = blockdev_flush(x->bd);
        if (r < 0)
            printf("flush failed: %s\n", strerror(-r));
    } else if (!strcmp(argv[0], "quit") || !strcmp(argv[0], "q"))
        return 1;
    else {
        fprintf(stderr, "command \"%s\" not found\n", argv[0]);
        r = -EINVAL;
    }
    if (r < 0)
        x->failed = true;
    /* Like qemu-io, stdout stays buffered with -c (usage errors on stderr
     * come first in a file holding both); commands read from stdin see
     * their output at once. */
    if (x->interactive)
        fflush(stdout);
    return 0;
}

int img_io(int argc, char **argv)
{
    const char *fmt = NULL;
    char **cmds = calloc((size_t)argc, sizeof(*cmds));
    int ncmds = 0, c;
    bool ro = false, force = false;
    if (!cmds)
        return 1;
    optind = 1;
    while ((c = getopt(argc, argv, "f:c:nrUt:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'c': cmds[ncmds++] = optarg; break;
        case 'r': ro = true; break;
        case 'U': force = true; break;
        case 'n': case 't': break; /* cache modes: writeback semantics always */
        default: free(cmds); return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        free(cmds);
        return 1;
    }
    struct io_ctx x = {0};
    x.bd = img_open(argv[optind], fmt, !ro, force, false);
    if (!x.bd) {
        free(cmds);
        return 1;
    }
    x.interactive = ncmds == 0;
    int stop = 0;
    for (int i = 0; i < ncmds && !stop; i++) {
        char *copy = strdup(cmds[i]);
        stop = copy ? run_line(&x, copy) : 1;
        free(copy);
    }
    char *line = NULL;
    size_t cap = 0;
    while (ncmds == 0 && !stop && getline(&line, &cap, stdin) > 0)
        stop = run_line(&x, line);
    free(line);
    free(cmds);
    int r = blockdev_close(x.bd);
    if (r < 0) {
        img_error("Failed to flush the image: %s", strerror(-r));
        return 1;
    }
    return x.failed ? 1 : 0;
}
