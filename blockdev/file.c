/*
 * Host file helpers: full-length positional I/O, sizes, durability and
 * SEEK_DATA/SEEK_HOLE status for raw files.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int bd_pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) { /* past end of file: zeros, as a sparse tail would read */
            memset(p, 0, len);
            return 0;
        }
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int bd_pwrite_full(int fd, const void *buf, uint64_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int bd_file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0)
            return -errno;
        *size = (uint64_t)end;
        return 0;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int bd_fdatasync(int fd)
{
    if (fdatasync(fd) < 0)
        return -errno;
    return 0;
}

/* Data or hole at off, as file-posix reports it (holes read as zeros). */
int bd_file_status(int fd, uint64_t off, uint64_t maxlen, uint64_t file_size,
                   struct blockdev_status *st)
{
    st->flags = BLOCKDEV_ST_ALLOCATED | BLOCKDEV_ST_OFFSET_VALID;
    st->host_off = off;
    if (off >= file_size) {
        st->flags |= BLOCKDEV_ST_ZERO;
        st->len = maxlen;
        return 0;
    }
    off_t data = lseek(fd, (off_t)off, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
        data = (off_t)file_size;
    if (data < 0) { /* no SEEK_DATA support: everything is data */
        st->flags |= BLOCKDEV_ST_DATA;
        st->len = maxlen;
        return 0;
    }
    if ((uint64_t)data > off) {
        st->flags |= BLOCKDEV_ST_ZERO;
        st->len = BD_MIN(maxlen, (uint64_t)data - off);
        return 0;
    }
    off_t hole = lseek(fd, (off_t)off, SEEK_HOLE);
    if (hole < 0)
        hole = (off_t)file_size;
    st->flags |= BLOCKDEV_ST_DATA;
    st->len = BD_MIN(maxlen, (uint64_t)hole - off);
    if (st->len == 0)
        st->len = maxlen;
    return 0;
}
