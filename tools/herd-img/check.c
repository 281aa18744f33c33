/*
 * herd-img check [-r leaks|all]: qcow2 consistency and repair, qemu-img
 * check's output and exit codes (0 clean, 1 check failed, 2 corruptions,
 * 3 leaks only, 63 format without checks). With -r the image is opened
 * read-write and locked, its backing file is never opened, and after a repair
 * the image is checked again ("Double checking"): the exit code and the report
 * are those of that second check, with the fixed counts.
 */
#include <errno.h>
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
    if (r->corruptions_fixed)
        jw_int(&w, "corruptions-fixed", r->corruptions_fixed);
    jw_int(&w, "check-errors", r->check_errors);
    if (r->leaks)
        jw_int(&w, "leaks", r->leaks);
    if (r->leaks_fixed)
        jw_int(&w, "leaks-fixed", r->leaks_fixed);
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

/* Read-only for a check; read-write, locked, for a repair (which a dirty or
 * corrupt-marked image allows). The backing chain is never opened. */
static struct blockdev *open_for_check(const char *path, const char *fmt, unsigned fix,
                                       bool force_share)
{
    struct blockdev_open_opts o = {
        .read_only = !fix,
        .no_lock = force_share,
        .no_backing = true,
        .repair = fix != 0,
    };
    return img_open_opts(path, fmt, &o);
}

int img_check(int argc, char **argv)
{
    const char *fmt = NULL;
    bool json = false, force = false, quiet = false;
    unsigned fix = 0;
    static const struct option lo[] = {
        {"output", required_argument, NULL, 'O'},
        {"force-share", no_argument, NULL, 'U'},
        {"repair", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:Uqr:", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O': json = !strcmp(optarg, "json"); break;
        case 'U': force = true; break;
        case 'q': quiet = true; break;
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                fix = QCOW2_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS;
            } else {
                img_error("Unknown option value for -r (expecting 'leaks' or 'all'): %s",
                          optarg);
                return 1;
            }
            break;
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    if (fix && force) {
        img_error("Could not open '%s': force-share=on can only be used with read-only images",
                  argv[optind]);
        return 1;
    }
    struct blockdev *bd = open_for_check(argv[optind], fmt, fix, force);
    if (!bd)
        return 1;
    if (strcmp(blockdev_format(bd), "qcow2")) {
        img_error("This image format does not support checks");
        blockdev_close(bd);
        return 63;
    }
    struct qcow2_check_result res;
    struct herd_err e = {0};
    int r = qcow2_repair(bd, fix, &res, stderr, &e);
    if (r == 0 && (res.leaks_fixed || res.corruptions_fixed)) {
        uint64_t lf = res.leaks_fixed, cf = res.corruptions_fixed;
        if (!json && !quiet)
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n\n"
                   "Double checking the fixed image now...\n", lf, cf);
        fflush(stdout);
        r = qcow2_check(bd, &res, stderr, &e);
        res.leaks_fixed = lf;
        res.corruptions_fixed = cf;
    }
    if (r < 0) {
        img_error("Check failed: %s", img_errmsg(&e));
        blockdev_close(bd);
        return 1;
    }
    if (json)
        print_json(bd, &res);
    else if (!quiet)
        print_human(&res);
    fflush(stdout);
    r = blockdev_close(bd);
    if (r < 0 && fix) {
        img_error("Could not close the image: %s", strerror(-r));
        return 1;
    }
    if (res.check_errors) {
        img_error("Check failed");
        return 1;
    }
    if (res.corruptions)
        return 2;
    return res.leaks ? 3 : 0;
}
