/*
 * herd-img map: allocation of the whole chain, qemu-img map's output.
 */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "img.h"

static bool mergeable(const struct blockdev_extent *a, const struct blockdev_extent *b)
{
    return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
           a->data == b->data && a->offset_valid == b->offset_valid &&
           (!a->offset_valid || a->offset + a->length == b->offset);
}

static void print_json(const struct blockdev_extent *e, bool first)
{
    printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %u, "
           "\"present\": %s, \"zero\": %s, \"data\": %s",
           first ? "[" : ",\n", e->start, e->length, e->depth, e->present ? "true" : "false",
           e->zero ? "true" : "false", e->data ? "true" : "false");
    if (e->offset_valid)
        printf(", \"offset\": %" PRIu64, e->offset);
    printf("}");
}

static void print_human(struct blockdev *bd, const struct blockdev_extent *e)
{
    if (!e->data || e->zero || !e->offset_valid) /* qemu: data that does not read as zeros */
        return;
    struct blockdev *layer = bd;
    for (unsigned i = 0; i < e->depth && layer; i++)
        layer = blockdev_backing(layer);
    printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start, e->length, e->offset,
           layer ? blockdev_filename(layer) : "?");
}

int img_map(int argc, char **argv)
{
    const char *fmt = NULL;
    bool json = false, force = false;
    static const struct option lo[] = {
        {"output", required_argument, NULL, 'O'},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O': json = !strcmp(optarg, "json"); break;
        case 'U': force = true; break;
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    struct blockdev *bd = img_open(argv[optind], fmt, false, force, false);
    if (!bd)
        return 1;
    uint64_t size = blockdev_size(bd), off = 0;
    struct blockdev_extent cur = {0}, next;
    bool have = false, first = true;
    if (!json)
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    int ret = 0;
    while (off < size) {
        int r = blockdev_map_extent(bd, off, size - off, &next);
        if (r < 0) {
            img_error("Could not read file metadata: %s", strerror(-r));
            ret = 1;
            break;
        }
        off += next.length;
        if (have && mergeable(&cur, &next)) {
            cur.length += next.length;
            continue;
        }
        if (have) {
            json ? print_json(&cur, first) : print_human(bd, &cur);
            first = false;
        }
        cur = next;
        have = true;
    }
    if (have)
        json ? print_json(&cur, first) : print_human(bd, &cur);
    if (json)
        printf(have ? "]\n" : "[]\n");
    blockdev_close(bd);
    return ret;
}
