/*
 * herd-img io -s: qemu-io's snapshot mode. The image opens read-only as the
 * backing file of a throwaway qcow2 overlay in $TMPDIR (else /var/tmp),
 * which takes every write; the overlay's name is unlinked as soon as it is
 * open, so nothing is left behind, and the image itself is never written.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/qcow2.h"
#include "io.h"

/* The image's size (opened read-only, its chain too: it must open). */
static int image_size(const char *path, const struct blockdev_open_opts *bo, uint64_t *size)
{
    struct blockdev_open_opts ro = *bo;
    struct blockdev *bd;
    ro.read_only = true;
    int r = blockdev_open(path, &ro, &bd);
    if (r == 0) {
        *size = blockdev_size(bd);
        blockdev_close(bd);
    }
    return r;
}

int io_open_snapshot(const char *path, const struct blockdev_open_opts *bo,
                     struct blockdev **out)
{
    char abs[PATH_MAX], tmp[PATH_MAX];
    uint64_t size = 0;
    *out = NULL;
    int r = image_size(path, bo, &size);
    if (r < 0)
        return r;
    if (!realpath(path, abs))
        return herd_err_set(bo->err, -errno, NULL, "Could not resolve '%s': %s", path,
                            strerror(errno));
    const char *dir = getenv("TMPDIR");
    snprintf(tmp, sizeof(tmp), "%s/herd-img-snapshot.XXXXXX", dir && *dir ? dir : "/var/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return herd_err_set(bo->err, -errno, NULL,
                            "Could not get temporary filename: %s", strerror(errno));
    close(fd);
    struct qcow2_create_opts c = {
        .size = (size + 511) & ~511ull,
        .backing_file = abs,
        .backing_fmt = bo->format,
        .err = bo->err,
    };
    r = qcow2_create(tmp, &c);
    if (r == 0) {
        struct blockdev_open_opts ov = {
            .format = "qcow2",
            .no_lock = bo->no_lock,
            .err = bo->err,
        };
        r = blockdev_open(tmp, &ov, out);
    }
    unlink(tmp);
    return r;
}
