/*
 * herd-img check: qcow2 consistency, qemu-img check's output and exit codes
 * (0 clean, 1 check failed, 2 corruptions, 3 leaks only, 63 format without checks).
 */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "herd/qcow2.h"
#include "img.h"

static void print_json(struct blockdev *bd, const struct qcow2_check_result *r)
{
    struct jw w;
    jw_begin(&w, stdout, 0);
    jw_obj_open(&w, NULL);
    if (r->image_end_offset)
        jw_int(&w, "image-end-offset", r->image_end_offset);
    if (r->compressed_clusters)
        jw_int(&w, "compressed-clusters", r->compressed_clusters);
    if (r->total_clusters)
        jw_int(&w, "total-clusters", r->total_clusters);
    if (r->corruptions)
        jw_int(&w, "corruptions", r->corruptions);
    jw_int(&w, "check-errors", r->check_errors);
    if (r->leaks)
        jw_int(&w, "leaks", r->leaks);
    if (r->allocated_clusters)
        jw_int(&w, "allocated-clusters", r->allocated_clusters);
    jw_str(&w, "filename", blockdev_filename(bd));
    jw_str(&w, "format", blockdev_format(bd));
    if (r->fragmented_clusters)
        jw_int(&w, "fragmented-clusters", r->fragmented_clusters);
    jw_obj_close(&w);
    printf("\n");
}

static void print_human(const struct qcow2_check_result *r)
{
    if (!r->corruptions && !r->leaks && !r->check_errors)
        printf("No errors were found on the image.\n");
    if (r->corruptions)
        printf("\n%" PRIu64 " errors were found on the image.\nData may be corrupted, or "
               "further writes to the image may corrupt it.\n", r->corruptions);
    if (r->leaks)
        printf("\n%" PRIu64 " leaked clusters were found on the image.\nThis means waste of "
               "disk space, but no harm to data.\n", r->leaks);
    if (r->check_errors)
        printf("\n%" PRIu64 " internal errors have occurred during the check.\n",
               r->check_errors);
    if (r->total_clusters && r->allocated_clusters)
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% "
               "compressed clusters\n", r->allocated_clusters, r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

int img_check(int argc, char **argv)
{
    const char *fmt = NULL;
    bool json = false, force = false, quiet = false;
    static const struct option lo[] = {
        {"output", required_argument, NULL, 'O'},
        {"force-share", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:Uq", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O': json = !strcmp(optarg, "json"); break;
        case 'U': force = true; break;
        case 'q': quiet = true; break;
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    struct blockdev *bd = img_open(argv[optind], fmt, false, force, true);
    if (!bd)
        return 1;
    if (strcmp(blockdev_format(bd), "qcow2")) {
        img_error("This image format does not support checks");
        blockdev_close(bd);
        return 63;
    }
    struct qcow2_check_result res;
    struct herd_err e = {0};
    int r = qcow2_check(bd, &res, stderr, &e);
    if (r < 0) {
        img_error("Check failed: %s", img_errmsg(&e));
        blockdev_close(bd);
        return 1;
    }
    if (json)
        print_json(bd, &res);
    else if (!quiet)
        print_human(&res);
    blockdev_close(bd);
    if (res.check_errors)
        return 1;
    if (res.corruptions)
        return 2;
    return res.leaks ? 3 : 0;
}
