/* ISO 9660 images into files (iso.h): the part the seed and the resource
 * disks share. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "iso.h"

/* The image's bytes into fd. */
static int iso_stream_out(IsoImage *img, int level, bool keep_modes, int fd)
{
    IsoWriteOpts *opts = NULL;
    struct burn_source *src = NULL;
    /* profile 2 (distribution): Rock Ridge, modes 0444 (directories
     * 0555), owner 0; Joliet for readers without Rock Ridge */
    if (iso_write_opts_new(&opts, 2) < 0)
        return -ENOMEM;
    if (keep_modes)
        iso_write_opts_set_replace_mode(opts, 0, 0, 1, 1);
    iso_write_opts_set_iso_level(opts, level);
    iso_write_opts_set_rockridge(opts, 1);
    iso_write_opts_set_joliet(opts, 1);
    int rc = iso_image_create_burn_source(img, opts, &src) < 0 ? -EIO : 0;
    iso_write_opts_free(opts);
    if (rc < 0)
        return rc;
    unsigned char block[2048];
    int n;
    while ((n = src->read_xt(src, block, sizeof(block))) > 0)
        if (rc == 0 && write(fd, block, (size_t)n) != n)
            rc = errno ? -errno : -EIO;
    if (n < 0 && rc == 0)
        rc = -EIO;
    src->free_data(src);
    free(src);
    return rc;
}

int hd_iso_write_tmp(IsoImage *img, int level, bool keep_modes, const char *tmp)
{
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return -errno;
    int rc = iso_stream_out(img, level, keep_modes, fd);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}
