/*
 * iovec helpers. All bounds are checked: a slice that does not fit is an
 * error, never a short or out-of-range view.
 */
#include "herd/iov.h"

#include <string.h>

size_t iov_size(const struct iovec *iov, unsigned n)
{
    size_t total = 0;

    for (unsigned i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

static size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len,
                       int to_buf)
{
    size_t done = 0;

    for (unsigned i = 0; i < n && done < len; i++) {
        size_t seg = iov[i].iov_len, chunk;

        if (off >= seg) {
            off -= seg;
            continue;
        }
        chunk = seg - off < len - done ? seg - off : len - done;
        if (to_buf)
            memcpy((char *)buf + done, (char *)iov[i].iov_base + off, chunk);
        else
            memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, chunk);
        done += chunk;
        off = 0;
    }
    return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
    return iov_copy(iov, n, off, buf, len, 1);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf,
                    size_t len)
{
    return iov_copy(iov, n, off, (void *)buf, len, 0);
}

int iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len, struct iovec *dst,
              unsigned dst_max)
{
    unsigned count = 0;

    for (unsigned i = 0; i < n && len; i++) {
        size_t seg = src[i].iov_len, chunk;

        if (off >= seg) {
            off -= seg;
            continue;
        }
        if (count == dst_max)
            return -1;
        chunk = seg - off < len ? seg - off : len;
        dst[count++] = (struct iovec){.iov_base = (char *)src[i].iov_base + off,
                                      .iov_len = chunk};
        len -= chunk;
        off = 0;
    }
    return len ? -1 : (int)count;
}
