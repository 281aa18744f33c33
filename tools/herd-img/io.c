/*
 * herd-img io: qemu-io over blockdev, so the same scripts (QEMU's iotests
 * among them) run against qemu-io and herd. Commands come from -c options
 * or, without any, one per line from stdin; this file reads them, checks
 * their argument counts, opens and closes the image (the open and close
 * commands, -f and --image-opts); io_cmds.c has the I/O commands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#define MAX_ARGS 64

struct open_req {
    struct img_opts opts; /* --image-opts or open -o, and -f, -r, -U */
    const char *name;     /* the file as named on the command line (NULL: by options) */
    bool snapshot;        /* -s: writes go to a throwaway overlay */
    struct img_strs strs; /* a json: name's strings */
};

/* qemu-io names the file in an open failure only when it was given as a
 * name, not through options. */
static void open_error(const struct open_req *o, const char *msg)
{
    if (o->name)
        img_error("can't open device %s: %s", o->name, msg);
    else
        img_error("can't open: %s", msg);
}

/* The file named on the command line: a path, or json:{...} options. */
static int named_file(struct open_req *o, const char *arg)
{
    o->name = arg;
    if (strncmp(arg, "json:", 5)) {
        o->opts.path = arg;
        return 0;
    }
    char err[128];
    int r = img_opts_json(arg, &o->strs, &o->opts, err, sizeof(err));
    if (r < 0)
        open_error(o, err);
    if (r == 0 && !o->opts.path) {
        open_error(o, "A block device must be specified for \"file\"");
        r = -EINVAL;
    }
    return r;
}

static int do_open(struct io_ctx *x, const struct open_req *o)
{
    const struct img_opts *io = &o->opts;
    struct herd_err e;
    struct blockdev_open_opts bo = {
        .format = img_guess_format(io->path, io->fmt),
        .read_only = io->ro,
        .no_lock = io->no_lock,
        .backing_driver = io->backing_driver,
        .no_backing = io->no_backing,
        .err = &e,
    };
    char msg[IMG_PATH_MAX + 128];
    if (io->filter && strcmp(bo.format, "qcow2")) {
        snprintf(msg, sizeof(msg), "Compression is not supported for underlying format: %s",
                 bo.format);
        open_error(o, msg);
        return -ENOTSUP;
    }
    if (strcmp(bo.format, "raw") && strcmp(bo.format, "qcow2")) {
        snprintf(msg, sizeof(msg), "Unknown driver '%s'", bo.format);
        open_error(o, msg);
        return -EINVAL;
    }
    if (io->bad_opt) {
        snprintf(msg, sizeof(msg), "Block format '%s' does not support the option '%s'",
                 bo.format, io->bad_opt);
        open_error(o, msg);
        return -EINVAL;
    }
    int r = img_protocol_check(io->protocol, io->path, io->ro, msg, sizeof(msg));
    if (r < 0) {
        open_error(o, msg);
        return r;
    }
    r = o->snapshot ? io_open_snapshot(io->path, &bo, &x->bd)
                    : blockdev_open(io->path, &bo, &x->bd);
    if (r < 0) {
        open_error(o, img_errmsg(&e));
        x->bd = NULL;
    }
    x->compress = r == 0 && io->filter;
    return r;
}

int io_cmd_open(struct io_ctx *x, int argc, char **argv)
{
    struct open_req o = {0};
    char *opts = NULL;
    int c, r = 0;
    if (x->bd) {
        img_error("file open already, try 'help close'");
        return -EBUSY;
    }
    optind = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, "snCro:ki:t:d:U")) != -1) {
        switch (c) {
        case 's': o.snapshot = true; break;
        case 'r': o.opts.ro = true; break;
        case 'U': o.opts.no_lock = true; break;
        case 'o':
            free(opts);
            opts = strdup(optarg);
            if (!opts)
                return -ENOMEM;
            break;
        case 'n': case 'C': case 'k': case 'i': case 't': case 'd':
            break; /* cache, aio and discard modes: not ours to vary */
        default:
            fprintf(stderr, "open: invalid option -- '%c'\n", optopt);
            free(opts);
            return io_usage("open");
        }
    }
    if (opts)
        r = img_opts_parse(opts, &o.opts);
    if (r == 0 && optind == argc - 1) {
        r = named_file(&o, argv[optind]);
    } else if (r == 0 && (optind != argc || !o.opts.path)) {
        r = io_usage("open");
    }
    if (r == 0)
        r = do_open(x, &o);
    free(opts);
    img_strs_free(&o.strs);
    return r;
}

int io_cmd_close(struct io_ctx *x, int argc, char **argv)
{
    (void)argc, (void)argv;
    int r = blockdev_close(x->bd);
    x->bd = NULL;
    x->compress = false;
    if (r < 0)
        img_error("Failed to flush the image: %s", strerror(-r));
    return r;
}

static const struct io_cmd *find_cmd(const char *name)
{
    for (const struct io_cmd *c = io_cmds; c->name; c++)
        if (!strcmp(c->name, name) || (c->altname && !strcmp(c->altname, name)))
            return c;
    return NULL;
}

/* qemu-io's command(): file open, argument count, write permission. */
static int run_cmd(struct io_ctx *x, const struct io_cmd *c, int argc, char **argv)
{
    int n = argc - 1;
    if (!c->nofile_ok && !x->bd) {
        fprintf(stderr, "no file open, try 'help open'\n");
        return -EINVAL;
    }
    if (n < c->argmin || (c->argmax != -1 && n > c->argmax)) {
        if (c->argmax == -1)
            fprintf(stderr, "bad argument count %d to %s, expected at least %d arguments\n", n,
                    argv[0], c->argmin);
        else if (c->argmin == c->argmax)
            fprintf(stderr, "bad argument count %d to %s, expected %d arguments\n", n, argv[0],
                    c->argmin);
        else
            fprintf(stderr, "bad argument count %d to %s, expected between %d and %d arguments\n",
                    n, argv[0], c->argmin, c->argmax);
        return -EINVAL;
    }
    if (c->writes && blockdev_read_only(x->bd)) {
        img_error("Block node is read-only");
        return -EPERM;
    }
    return c->fn(x, argc, argv);
}

/* Returns 1 to stop (quit), 0 to go on; *failed set when the command failed. */
static int run_line(struct io_ctx *x, char *line, bool *failed)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t && argc < MAX_ARGS;
         t = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    if (argc == 0 || argv[0][0] == '#')
        return 0;
    if (!strcmp(argv[0], "quit") || !strcmp(argv[0], "q"))
        return 1;
    const struct io_cmd *c = find_cmd(argv[0]);
    int r;
    if (!c) {
        fprintf(stderr, "command \"%s\" not found\n", argv[0]);
        r = -EINVAL;
    } else {
        /* Names as qemu-io prints them in its messages: the full one. */
        argv[0] = (char *)c->name;
        r = run_cmd(x, c, argc, argv);
    }
    if (r < 0)
        *failed = true;
    /* Like qemu-io, stdout stays buffered with -c (usage errors on stderr
     * come first in a file holding both); commands read from stdin see
     * their output at once. */
    if (x->interactive)
        fflush(stdout);
    return 0;
}

int img_io(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"image-opts", no_argument, NULL, 'I'},
        {"format", required_argument, NULL, 'f'},
        {"cmd", required_argument, NULL, 'c'},
        {"read-only", no_argument, NULL, 'r'},
        {"snapshot", no_argument, NULL, 's'},
        {"force-share", no_argument, NULL, 'U'},
        {"nocache", no_argument, NULL, 'n'},
        {"cache", required_argument, NULL, 't'},
        {"discard", required_argument, NULL, 'd'},
        {"misalign", no_argument, NULL, 'm'},
        {"native-aio", no_argument, NULL, 'k'},
        {"aio", required_argument, NULL, 'i'},
        {"copy-on-read", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    struct open_req o = {0};
    char **cmds = calloc((size_t)argc, sizeof(*cmds));
    int ncmds = 0, c;
    bool image_opts = false;
    if (!cmds)
        return 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:c:snrUt:d:mki:C", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': o.opts.fmt = optarg; break;
        case 'c': cmds[ncmds++] = optarg; break;
        case 'r': o.opts.ro = true; break;
        case 'U': o.opts.no_lock = true; break;
        case 'I': image_opts = true; break;
        case 's': o.snapshot = true; break;
        case 'n': case 't': case 'd': case 'm': case 'k': case 'i': case 'C':
            break; /* cache/aio modes and the like: writeback semantics always */
        default: free(cmds); return 1;
        }
    }
    if (optind < argc - 1) {
        img_error("Expecting one image file name");
        free(cmds);
        return 1;
    }
    if (image_opts && o.opts.fmt) {
        img_error("--image-opts and -f are mutually exclusive");
        free(cmds);
        return 1;
    }
    struct io_ctx x = {0};
    char *spec = NULL;
    int r = 0;
    if (optind == argc - 1 && image_opts) {
        spec = strdup(argv[optind]);
        r = spec ? img_opts_parse(spec, &o.opts) : -ENOMEM;
        if (r == 0 && !o.opts.path) {
            img_error("can't open: A block device must be specified");
            r = -EINVAL;
        }
    } else if (optind == argc - 1) {
        r = named_file(&o, argv[optind]);
    }
    if (r == 0 && o.opts.path)
        r = do_open(&x, &o);
    img_strs_free(&o.strs); /* o.opts is not used past the open */
    if (r < 0) {
        free(spec);
        free(cmds);
        return 1;
    }
    x.interactive = ncmds == 0;
    bool failed = false;
    int stop = 0;
    for (int i = 0; i < ncmds && !stop; i++) {
        char *copy = strdup(cmds[i]);
        stop = copy ? run_line(&x, copy, &failed) : 1;
        free(copy);
    }
    char *line = NULL;
    size_t cap = 0;
    while (ncmds == 0 && !stop && getline(&line, &cap, stdin) > 0)
        stop = run_line(&x, line, &failed);
    free(line);
    free(cmds);
    r = x.bd ? blockdev_close(x.bd) : 0;
    free(spec);
    if (r < 0) {
        img_error("Failed to flush the image: %s", strerror(-r));
        return 1;
    }
    return failed ? 1 : 0;
}
