/*
 * Scatter-gather helpers for device models: copying between iovecs and flat
 * buffers at an offset, and carving a byte range out of an iovec array
 * (virtio requests put headers and status bytes inside the same buffers as
 * the data, split wherever the guest pleased).
 */
#ifndef HERD_IOV_H
#define HERD_IOV_H

#include <stddef.h>
#include <sys/uio.h>

size_t iov_size(const struct iovec *iov, unsigned n);

/* Copies up to len bytes starting `off` bytes into iov; returns bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf,
                    size_t len);

/* Points dst at bytes [off, off+len) of src (no copy); returns dst's count,
 * or -1 if the range is not inside src or dst has no room. */
int iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len, struct iovec *dst,
              unsigned dst_max);

#endif
