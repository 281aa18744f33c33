/*
 * herd-img resize: qemu-img resize. raw and qcow2 grow, and shrink with
 * --shrink.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

static void size_error(void)
{
    img_error("Parameter 'size' expects a non-negative number below 2^64");
    fprintf(stderr, "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
                    "peta-\nand exabytes, respectively.\n");
}

static int grow_or_shrink(struct blockdev *bd, uint64_t size, int prealloc)
{
    if (size < blockdev_size(bd))
        return blockdev_resize(bd, size);
    return blockdev_grow_prealloc(bd, size, prealloc);
}

int img_resize(int argc, char **argv)
{
    const char *fmt = NULL;
    bool quiet = false, shrink = false;
    int prealloc = BLOCKDEV_PREALLOC_OFF;
    if (argc < 3) {
        img_error("Not enough arguments");
        fprintf(stderr, "Try 'herd-img --help' for more information\n");
        return 1;
    }
    /* As qemu-img: the size is the last argument, taken before getopt so
     * that "-1G" is not an option. */
    const char *size_arg = argv[--argc];
    argv[argc] = NULL;
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"shrink", no_argument, NULL, 's'},
        {"preallocation", required_argument, NULL, 'P'},
        {"object", required_argument, NULL, 'b'},
        {"image-opts", no_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hf:qU", lopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case 's': shrink = true; break;
        case 'U': break;
        case 'P':
            if ((prealloc = img_prealloc_mode(optarg)) < 0) {
                img_error("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            break;
        case 'h': printf("usage: herd-img resize [-f FMT] [-q] [--shrink] "
                          "[--preallocation=off|metadata|falloc|full] FILE [+|-]SIZE\n"); return 0;
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting image file name and size");
        return 1;
    }
    const char *file = argv[optind];
    int rel = size_arg[0] == '+' ? 1 : size_arg[0] == '-' ? -1 : 0;
    uint64_t n;
    if (img_parse_size(size_arg + (rel != 0), &n) < 0) {
        size_error();
        return 1;
    }
    /* with its backing chain: an area grown over it is zeroed */
    struct blockdev *bd = img_open(file, fmt, true, false, false);
    if (!bd)
        return 1;
    uint64_t cur = blockdev_size(bd);
    int64_t want = rel > 0 ? (int64_t)(cur + n) : rel < 0 ? (int64_t)cur - (int64_t)n : (int64_t)n;
    int r = 0;
    if (want <= 0) {
        img_error("New image size must be positive");
        r = -1;
    } else if ((uint64_t)want < cur && prealloc != BLOCKDEV_PREALLOC_OFF) {
        img_error("Preallocation can only be used for growing images");
        r = -1;
    } else if ((uint64_t)want < cur && !shrink) {
        img_error("Use the --shrink option to perform a shrink operation.");
        img_error("warning: Shrinking an image will delete all data beyond the shrunken "
                  "image's end. Before performing such an operation, make sure there is no "
                  "important data there.");
        r = -1;
    } else if (!strcmp(blockdev_format(bd), "qcow2")) {
        if ((uint64_t)want % 512) {
            img_error("The new size must be a multiple of 512");
            r = -1;
        } else if ((r = grow_or_shrink(bd, (uint64_t)want, prealloc)) < 0) {
            img_error("Error resizing image: %s",
                      r == -EFBIG ? "File too large"
                      : r == -ENOTSUP && (uint64_t)want < cur
                          ? "Can't resize an image which has snapshots"
                          : strerror(-r));
        }
    } else if (!strcmp(blockdev_format(bd), "raw")) {
        if (prealloc == BLOCKDEV_PREALLOC_METADATA) {
            img_error("Unsupported preallocation mode: metadata");
            r = -1;
        } else if ((r = grow_or_shrink(bd, (uint64_t)want, prealloc)) < 0) {
            img_error("Error resizing image: %s", strerror(-r));
        }
    } else {
        img_error("Image format driver does not support resize");
        r = -1;
    }
    if (blockdev_close(bd) < 0 && r == 0) {
        img_error("Error resizing image: %s", strerror(EIO));
        r = -1;
    }
    if (r < 0)
        return 1;
    if (!quiet)
        printf("Image resized.\n");
    return 0;
}
