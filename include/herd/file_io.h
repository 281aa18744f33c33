/*
 * Whole reads and writes at an offset: pread/pwrite until every byte is
 * through (EINTR retried, at most 1 GiB a call). 0, or a negative errno
 * (-ENODATA for a read that hits the end of the file, -EIO for a write
 * that makes no progress).
 */
#ifndef HERD_FILE_IO_H
#define HERD_FILE_IO_H

#include <stddef.h>
#include <stdint.h>

int herd_pread_all(int fd, void *buf, size_t len, uint64_t off);
int herd_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

#endif
