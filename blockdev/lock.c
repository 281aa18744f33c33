/*
 * Image locks that QEMU understands. QEMU's file-posix driver takes shared
 * OFD byte locks: byte 100+n means "I use permission n", byte 200+n means
 * "I do not let others use permission n". Permissions: 0 consistent read,
 * 1 write, 2 write-unchanged, 3 resize, 4 graph-mod. A conflict is a lock held
 * by another open file description on a byte we would contradict.
 *
 * herd as a writer: uses read, write, write-unchanged; unshares write and
 * resize (so qemu-img/qemu cannot write or resize, and readers that unshare
 * write cannot open). herd as a reader (parents): uses read; unshares write
 * and resize (so any number of readers share a parent, and nobody writes it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define PERM_BASE   100
#define SHARED_BASE 200

enum { PERM_READ, PERM_WRITE, PERM_WRITE_UNCHANGED, PERM_RESIZE, PERM_GRAPH_MOD, PERM_COUNT };

static const char *const perm_names[PERM_COUNT] = {
    "consistent read", "write", "write unchanged", "resize", "change children",
};

static int lock_byte(int fd, off_t at, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
        return -errno;
    return 0;
}

/* 1 if another open file description holds a lock on byte `at`. */
static int byte_taken(int fd, off_t at)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

static int conflict(int n, bool shared_byte, const char *path, struct herd_err *err)
{
    return herd_err_set(err, -EAGAIN, NULL,
                        "Failed to get %s\"%s\" lock. Is another process using the image [%s]?",
                        shared_byte ? "shared " : "", perm_names[n], path);
}

int bd_lock_image(int fd, bool write, const char *path, struct herd_err *err)
{
    unsigned use = 1u << PERM_READ, unshare = (1u << PERM_WRITE) | (1u << PERM_RESIZE);
    if (write)
        use |= (1u << PERM_WRITE) | (1u << PERM_WRITE_UNCHANGED);
    for (int n = 0; n < PERM_COUNT; n++) {
        int r = 0;
        if ((use >> n) & 1)
            r = lock_byte(fd, PERM_BASE + n, F_RDLCK);
        if (r == 0 && ((unshare >> n) & 1))
            r = lock_byte(fd, SHARED_BASE + n, F_RDLCK);
        if (r == -EINVAL || r == -ENOTSUP || r == -ENOLCK)
            return 0; /* file system without OFD locks: run unlocked, as QEMU does */
        if (r < 0) {
            bd_unlock_image(fd);
            return conflict(n, false, path, err);
        }
    }
    for (int n = 0; n < PERM_COUNT; n++) {
        int r = 0;
        if ((use >> n) & 1 && (r = byte_taken(fd, SHARED_BASE + n)) > 0) {
            bd_unlock_image(fd);
            return conflict(n, false, path, err);
        }
        if ((unshare >> n) & 1 && (r = byte_taken(fd, PERM_BASE + n)) > 0) {
            bd_unlock_image(fd);
            return conflict(n, true, path, err);
        }
    }
    return 0;
}

int bd_lock_image_wait(int fd, bool write, const char *path, unsigned wait_ms,
                       struct herd_err *err)
{
    const struct timespec step = {.tv_nsec = 10 * 1000 * 1000};
    int r;

    for (unsigned waited = 0;; waited += 10) {
        r = bd_lock_image(fd, write, path, err);
        if (r != -EAGAIN || waited >= wait_ms)
            return r;
        nanosleep(&step, NULL);
    }
}

void bd_unlock_image(int fd)
{
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = PERM_BASE,
                       .l_len = SHARED_BASE + PERM_COUNT - PERM_BASE};
    fcntl(fd, F_OFD_SETLK, &fl);
}
