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
    bool failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human(uint64_t v, char *out, size_t n)
{
    static const char *const sfx[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double d = (double)v;
    int i = 0;
    while (d >= 1024 && i < 4) {
        d /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, n, "%llu bytes", (unsigned long long)v);
    else
        snprintf(out, n, "%.3g %s", d, sfx[i]);
}

static void report(const char *verb, uint64_t len, uint64_t off, double t0, bool quiet)
{
    if (quiet)
        return;
    double t = now_s() - t0;
    char sz[32], rate[32];
    human(len, sz, sizeof(sz));
    human(t > 0 ? (uint64_t)(len / t) : 0, rate, sizeof(rate));
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

static int parse_cmd(int argc, char **argv, const char *flags, struct cmd_opts *o)
{
    memset(o, 0, sizeof(*o));
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
            printf("%s: invalid option -- '%c'\n", argv[0], optopt);
            return -EINVAL;
        }
    }
    if (argc - optind != 2 || img_parse_size(argv[optind], &o->off) < 0 ||
        img_parse_size(argv[optind + 1], &o->len) < 0) {
        printf("%s: invalid arguments\n", argv[0]);
        return -EINVAL;
    }
    return 0;
}

static int cmd_read(struct io_ctx *x, int argc, char **argv)
{
    struct cmd_opts o;
    if (parse_cmd(argc, argv, "qvP:", &o) < 0)
        return -EINVAL;
    uint8_t *buf = malloc(o.len ? o.len : 1);
    if (!buf)
        return -ENOMEM;
    double t0 = now_s();
    int r = blockdev_pread(x->bd, buf, o.len, o.off);
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
    int r;
    if (o.zero) {
        r = blockdev_write_zeroes(x->bd, o.off, o.len, o.unmap ? BLOCKDEV_ZERO_MAY_UNMAP : 0);
    } else {
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
    int r = blockdev_discard(x->bd, o.off, o.len);
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
    else if (!strcmp(argv[0], "flush") || !strcmp(argv[0], "aio_flush")) {
        r = blockdev_flush(x->bd);
        if (r < 0)
            printf("flush failed: %s\n", strerror(-r));
    } else if (!strcmp(argv[0], "quit") || !strcmp(argv[0], "q"))
        return 1;
    else {
        printf("command \"%s\" not found\n", argv[0]);
        r = -EINVAL;
    }
    if (r < 0)
        x->failed = true;
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
