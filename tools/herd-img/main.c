/*
 * herd-img: create, inspect, check, modify and exercise disk images with
 * qemu-img's command line habits and JSON field names.
 */
#include <stdio.h>
#include <string.h>

#include "img.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"create", img_create, "create [-q] -f FMT [-b BACKING -F BACKING_FMT] [-o OPTS] FILE [SIZE]"},
    {"info", img_info, "info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILE"},
    {"map", img_map, "map [-f FMT] [--output=human|json] [-U] FILE"},
    {"check", img_check, "check [-q] [-f FMT] [--output=human|json] [-r leaks|all] [-U] FILE"},
    {"io", img_io, "io [-f FMT] [-n] [-r] [-U] [-c CMD]... FILE  (commands from stdin without -c)"},
    {"bench", img_bench, "bench [-c COUNT] [-d DEPTH] [-f FMT] [-n] [-o OFFSET] [-s SIZE] "
                         "[-S STEP] [-t CACHE] [-w] [-U] FILE"},
    {"rebase", img_rebase, "rebase [-q] [-f FMT] [-u] -b NEW -F NEW_FMT FILE"},
    {"commit", img_commit, "commit [-q] [-f FMT] [-d] [-b BASE] FILE"},
    {"convert", img_convert, "convert [-q] [-c] [-n] [-S SIZE] [-f FMT] -O raw|qcow2 [-o OPTS] "
                             "[-B BACKING -F BACKING_FMT] SRC... DST"},
    {"compare", img_compare, "compare [-f FMT] [-F FMT] [-q] [-s] [-U] FILE1 FILE2"},
    {"resize", img_resize, "resize [-q] [-f FMT] [--shrink] FILE [+|-]SIZE"},
    {"measure", img_measure, "measure [--output=human|json] [-O FMT] [-o OPTS] "
                             "[--size N | [-f FMT] FILE]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: herd-img COMMAND [options]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    img_error("Command not found: %s", argv[1]);
    return 1;
}
