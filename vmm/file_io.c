/* Whole reads and writes at an offset (see herd/file_io.h). */
#include "herd/file_io.h"

#include <errno.h>
#include <unistd.h>

#define CHUNK (1U << 30)

int herd_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    for (uint8_t *p = buf; len;) {
        ssize_t k = pread(fd, p, len > CHUNK ? CHUNK : len, (off_t)off);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -ENODATA;
        p += k;
        len -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int herd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    for (const uint8_t *p = buf; len;) {
        ssize_t k = pwrite(fd, p, len > CHUNK ? CHUNK : len, (off_t)off);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p += k;
        len -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}
