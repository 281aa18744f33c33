/*
 * Generic block device layer: opening a chain, dispatch to the format
 * drivers, chain-aware allocation status.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const struct bd_driver *driver_find(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "raw") == 0)
        return &bd_raw_driver;
    if (strcmp(name, "qcow2") == 0)
        return &bd_qcow2_driver;
    if (strcmp(name, "nbd") == 0)
        return &bd_nbd_driver;
    if (strcmp(name, "null-co") == 0)
        return &bd_null_driver;
    return NULL;
}

/* Backing names resolve relative to the directory of the image naming them. */
static char *backing_path(const char *image, const char *name)
{
    if (name[0] == '/' || strstr(name, "://"))
        return strdup(name);
    const char *slash = strrchr(image, '/');
    if (!slash)
        return strdup(name);
    size_t dirlen = (size_t)(slash - image) + 1;
    char *p = malloc(dirlen + strlen(name) + 1);
    if (!p)
        return NULL;
    memcpy(p, image, dirlen);
    strcpy(p + dirlen, name);
    return p;
}

static void bd_free(struct blockdev *bd)
{
    if (!bd)
        return;
    bd_worker_stop(bd->worker); /* it may be reading the backing chain */
    if (bd->backing)
        blockdev_close(bd->backing);
    if (bd->drv && bd->priv && bd->drv->close)
        bd->drv->close(bd);
    if (bd->eng)
        bd_engine_free(bd->eng);
    if (bd->locked)
        bd_unlock_image(bd->fd);
    if (bd->dfd >= 0)
        close(bd->dfd);
    if (bd->fd >= 0)
        close(bd->fd);
    if (bd->efd >= 0)
        close(bd->efd);
    pthread_mutex_destroy(&bd->meta_lock);
    pthread_mutex_destroy(&bd->done_lock);
    free(bd->backing_name);
    free(bd->backing_fmt);
    free(bd->filename);
    free(bd);
}

static int open_files(struct blockdev *bd, const struct blockdev_open_opts *opts)
{
    int flags = (opts->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (opts->chain_pinned)
        flags |= O_NOFOLLOW | O_NONBLOCK; /* a FIFO must not block us */
    bd->fd = open(bd->filename, flags);
    if (bd->fd < 0) {
        int err = errno;
        if (err == ELOOP && opts->chain_pinned)
            return herd_err_set(opts->err, -err, NULL,
                                "'%s' is a symbolic link (refused in a pinned chain)",
                                bd->filename);
        return herd_err_set(opts->err, -err, NULL, "Could not open '%s': %s", bd->filename,
                            strerror(err));
    }
    struct stat st;
    if (fstat(bd->fd, &st) == 0 && S_ISDIR(st.st_mode))
        return herd_err_set(opts->err, -EISDIR, NULL, "'%s' is a directory", bd->filename);
    if (opts->chain_pinned && !S_ISREG(st.st_mode))
        return herd_err_set(opts->err, -EPERM, NULL,
                            "'%s' is not a regular file (refused in a pinned chain)",
                            bd->filename);
    if (opts->chain_pinned && fcntl(bd->fd, F_SETFL, 0) < 0)
        return -errno;
    if (opts->direct && opts->chain_pinned) {
        /* the same inode again, not whatever the name points at by now */
        char self[64];
        snprintf(self, sizeof(self), "/proc/self/fd/%d", bd->fd);
        bd->dfd = open(self, (flags & ~(O_NOFOLLOW | O_NONBLOCK)) | O_DIRECT);
    } else if (opts->direct) {
        bd->dfd = open(bd->filename, flags | O_DIRECT); /* -1: no O_DIRECT here */
    }
    if (opts->no_lock)
        return 0;
    int r = bd_lock_image_wait(bd->fd, !opts->read_only, bd->filename, opts->lock_wait_ms,
                               opts->err);
    if (r < 0)
        return r;
    bd->locked = true;
    return 0;
}

static int open_backing(struct blockdev *bd, const struct blockdev_open_opts *opts,
                        unsigned depth);

static int bd_open_depth(const char *path, const struct blockdev_open_opts *opts,
                         unsigned depth, struct blockdev **out)
{
    *out = NULL;
    const struct bd_driver *drv = driver_find(opts->format);
    if (!drv)
        return herd_err_set(opts->err, -EINVAL, NULL, "Unknown or missing image format '%s'",
                            opts->format ? opts->format : "(none)");
    struct blockdev *bd = calloc(1, sizeof(*bd));
    if (!bd)
        return -ENOMEM;
    bd->fd = bd->dfd = bd->efd = -1;
    pthread_mutex_init(&bd->meta_lock, NULL);
    pthread_mutex_init(&bd->done_lock, NULL);
    bd->drv = drv;
    bd->read_only = opts->read_only;
    bd->filename = strdup(path);
    int r = bd->filename ? 0 : -ENOMEM;
    bool file = drv != &bd_nbd_driver && drv != &bd_null_driver;
    if (r == 0 && drv == &bd_null_driver && depth > 0) /* its size is the caller's */
        r = herd_err_set(opts->err, -EINVAL, NULL, "'%s': null-co cannot be a backing file",
                         path);
    if (r == 0 && !file && opts->chain_pinned && depth == 0)
        r = herd_err_set(opts->err, -EPERM, NULL,
                         "'%s': the top image of a pinned chain must be a file", path);
    if (r == 0 && file)
        r = open_files(bd, opts);
    if (r == 0)
        r = drv->open(bd, opts);
    if (r == 0)
        r = open_backing(bd, opts, depth);
    if (r < 0) {
        bd_free(bd);
        return r;
    }
    *out = bd;
    return 0;
}

/* With a pinned chain: does BD's backing (name resolved, format) match the
 * pin for this depth? Nothing is opened here. */
static int check_pin(const struct blockdev *bd, const struct blockdev_open_opts *opts,
                     unsigned depth)
{
    bool has = bd->backing_name && bd->backing_name[0];
    if (depth >= opts->chain_len) {
        if (!has)
            return 0;
        return herd_err_set(opts->err, -EPERM, NULL,
                            "'%s' names the backing file '%s', but its pinned chain ends "
                            "there: refusing to open it", bd->filename, bd->backing_name);
    }
    const struct blockdev_link *want = &opts->chain[depth];
    if (!has)
        return herd_err_set(opts->err, -EPERM, NULL,
                            "'%s' has no backing file, but its pinned chain says '%s'",
                            bd->filename, want->path);
    char *p = backing_path(bd->filename, bd->backing_name);
    if (!p)
        return -ENOMEM;
    int r = 0;
    if (strcmp(p, want->path))
        r = herd_err_set(opts->err, -EPERM, NULL,
                         "'%s' names the backing file '%s', but its pinned chain says '%s': "
                         "refusing to open it", bd->filename, p, want->path);
    else if (bd->backing_fmt && strcmp(bd->backing_fmt, want->format))
        r = herd_err_set(opts->err, -EPERM, NULL,
                         "'%s' names the backing format '%s' for '%s', but its pinned chain "
                         "says '%s': refusing to open it", bd->filename, bd->backing_fmt, p,
                         want->format);
    free(p);
    return r;
}

static int open_backing(struct blockdev *bd, const struct blockdev_open_opts *opts,
                        unsigned depth)
{
    if (opts->chain_pinned) {
        int r = check_pin(bd, opts, depth);
        if (r < 0)
            return r;
    }
    if (!bd->backing_name || !bd->backing_name[0] || opts->no_backing)
        return 0;
    unsigned max = opts->max_chain ? opts->max_chain : BLOCKDEV_MAX_CHAIN;
    if (depth + 1 >= max)
        return herd_err_set(opts->err, -ELOOP, NULL, "Backing chain of '%s' is deeper than %u",
                            bd->filename, max);
    const char *fmt = bd->backing_fmt;
    if (depth == 0 && opts->backing_driver)
        fmt = opts->backing_driver;
    if (opts->chain_pinned)
        fmt = opts->chain[depth].format;
    if (!fmt && depth == 0)
        fmt = opts->backing_format;
    if (!fmt && opts->backing_raw_fallback)
        fmt = "raw";
    if (!fmt)
        return herd_err_set(opts->err, -EINVAL, NULL,
                            "Backing file '%s' of '%s' has no format (set the backing "
                            "format explicitly; formats are never probed)",
                            bd->backing_name, bd->filename);
    if (!driver_find(fmt))
        return herd_err_set(opts->err, -EINVAL, NULL,
                            "Could not open backing file: Unknown driver '%s'", fmt);
    char *p = backing_path(bd->filename, bd->backing_name);
    if (!p)
        return -ENOMEM;
    struct blockdev_open_opts child = *opts;
    child.format = fmt;
    child.read_only = true;
    child.backing_format = NULL;
    child.backing_driver = NULL;
    int r = bd_open_depth(p, &child, depth + 1, &bd->backing);
    if (r < 0 && opts->err) { /* qemu's wording: the chain's failure, nested */
        char inner[sizeof(opts->err->msg)];
        if (opts->err->msg[0])
            snprintf(inner, sizeof(inner), "%s", opts->err->msg);
        else
            snprintf(inner, sizeof(inner), "Could not open '%s': %s", p, strerror(-r));
        herd_err_set(opts->err, r, opts->err->field, "Could not open backing file: %s", inner);
    }
    free(p);
    if (r == 0 && !bd->backing_fmt)
        bd->backing_fmt = strdup(fmt);
    return r;
}

int blockdev_open(const char *path, const struct blockdev_open_opts *opts,
                  struct blockdev **out)
{
    if (!path || !opts || !out)
        return -EINVAL;
    herd_err_clear(opts->err);
    int r = bd_open_depth(path, opts, 0, out);
    if (r < 0 && opts->err && !opts->err->msg[0])
        herd_err_set(opts->err, r, NULL, "Could not open '%s': %s", path, strerror(-r));
    return r;
}

int blockdev_close(struct blockdev *bd)
{
    if (!bd)
        return 0;
    int r = 0;
    while (bd->inflight)
        if (blockdev_aio_reap(bd, 1) < 0)
            break;
    blockdev_aio_reap(bd, 0);
    bd_worker_stop(bd->worker);
    bd->worker = NULL;
    if (!bd->read_only)
        r = blockdev_flush(bd);
    bd_free(bd);
    return r;
}

uint64_t blockdev_size(const struct blockdev *bd)
{
    return bd->size;
}

const char *blockdev_format(const struct blockdev *bd)
{
    return bd->drv->name;
}

const char *blockdev_filename(const struct blockdev *bd)
{
    return bd->filename;
}

bool blockdev_read_only(const struct blockdev *bd)
{
    return bd->read_only;
}

struct blockdev *blockdev_backing(const struct blockdev *bd)
{
    return bd->backing;
}

const char *blockdev_backing_name(const struct blockdev *bd)
{
    return bd->backing_name ? bd->backing_name : "";
}

char *blockdev_backing_path(const struct blockdev *bd)
{
    if (!bd->backing_name || !bd->backing_name[0])
        return NULL;
    return backing_path(bd->filename, bd->backing_name);
}

const char *blockdev_backing_format(const struct blockdev *bd)
{
    return bd->backing_fmt ? bd->backing_fmt : "";
}

int blockdev_engine(const struct blockdev *bd)
{
    return bd->eng ? BLOCKDEV_ENGINE_IO_URING : BLOCKDEV_ENGINE_SYNC;
}

static int check_range(const struct blockdev *bd, uint64_t off, uint64_t len)
{
    if (off > bd->size || len > bd->size - off)
        return -EINVAL;
    return 0;
}

static int check_write(const struct blockdev *bd, uint64_t off, uint64_t len)
{
    if (bd->read_only)
        return -EROFS;
    return check_range(bd, off, len);
}

int bd_read_backing(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
    struct blockdev *b = bd->backing;
    uint64_t in = 0;
    if (b && off < b->size)
        in = BD_MIN(len, b->size - off);
    if (in) {
        int r = b->drv->read(b, buf, in, off);
        if (r < 0)
            return r;
    }
    memset((uint8_t *)buf + in, 0, len - in);
    return 0;
}

int blockdev_pread(struct blockdev *bd, void *buf, size_t len, uint64_t off)
{
    int r = check_range(bd, off, len);
    if (r < 0 || len == 0)
        return r;
    return bd->drv->read(bd, buf, len, off);
}

int blockdev_pwrite(struct blockdev *bd, const void *buf, size_t len, uint64_t off)
{
    int r = check_write(bd, off, len);
    if (r < 0 || len == 0)
        return r;
    return bd->drv->write(bd, buf, len, off);
}

static uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
    uint64_t t = 0;
    for (int i = 0; i < iovcnt; i++)
        t += iov[i].iov_len;
    return t;
}

int blockdev_preadv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    int r = check_range(bd, off, iov_total(iov, iovcnt));
    for (int i = 0; r == 0 && i < iovcnt; off += iov[i].iov_len, i++)
        if (iov[i].iov_len)
            r = bd->drv->read(bd, iov[i].iov_base, iov[i].iov_len, off);
    return r;
}

int blockdev_pwritev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t off)
{
    int r = check_write(bd, off, iov_total(iov, iovcnt));
    for (int i = 0; r == 0 && i < iovcnt; off += iov[i].iov_len, i++)
        if (iov[i].iov_len)
            r = bd->drv->write(bd, iov[i].iov_base, iov[i].iov_len, off);
    return r;
}

int blockdev_write_zeroes(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
    int r = check_write(bd, off, len);
    if (r < 0 || len == 0)
        return r;
    return bd->drv->zero(bd, off, len, flags);
}

int blockdev_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
    int r = check_write(bd, off, len);
    if (r < 0 || len == 0)
        return r;
    return bd->drv->discard(bd, off, len);
}

int blockdev_flush(struct blockdev *bd)
{
    if (bd->read_only)
        return 0;
    return bd->drv->flush(bd);
}

int blockdev_resize(struct blockdev *bd, uint64_t size)
{
    if (bd->read_only)
        return -EROFS;
    if (!bd->drv->resize)
        return -ENOTSUP;
    if (bd->inflight)
        return -EBUSY;
    return bd->drv->resize(bd, size);
}

int blockdev_grow_prealloc(struct blockdev *bd, uint64_t size, int mode)
{
    if (mode == BLOCKDEV_PREALLOC_OFF)
        return blockdev_resize(bd, size);
    if (bd->read_only)
        return -EROFS;
    if (size < bd->size || mode < BLOCKDEV_PREALLOC_OFF || mode > BLOCKDEV_PREALLOC_FULL)
        return -EINVAL;
    if (!bd->drv->grow_prealloc)
        return -ENOTSUP;
    if (bd->inflight)
        return -EBUSY;
    return bd->drv->grow_prealloc(bd, size, mode);
}

int blockdev_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                          struct blockdev_status *st)
{
    if (off >= bd->size || maxlen == 0)
        return -EINVAL;
    maxlen = BD_MIN(maxlen, bd->size - off);
    memset(st, 0, sizeof(*st));
    int r = bd->drv->block_status(bd, off, maxlen, st);
    if (r < 0)
        return r;
    if (st->len == 0 || st->len > maxlen)
        return -EIO;
    return 0;
}

int blockdev_map_extent(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                        struct blockdev_extent *ext)
{
    struct blockdev *cur = bd;
    memset(ext, 0, sizeof(*ext));
    ext->start = off;
    for (unsigned depth = 0;; depth++) {
        struct blockdev_status st;
        int r = blockdev_block_status(cur, off, maxlen, &st);
        if (r < 0)
            return r;
        maxlen = st.len;
        ext->length = st.len;
        ext->depth = depth;
        if (st.flags & BLOCKDEV_ST_ALLOCATED) {
            ext->present = true;
            ext->zero = st.flags & BLOCKDEV_ST_ZERO;
            ext->data = st.flags & BLOCKDEV_ST_DATA;
            ext->offset_valid = st.flags & BLOCKDEV_ST_OFFSET_VALID;
            ext->offset = st.host_off;
            return 0;
        }
        if (!cur->backing || off >= cur->backing->size) {
            ext->zero = true;
            return 0;
        }
        maxlen = BD_MIN(maxlen, cur->backing->size - off);
        cur = cur->backing;
    }
}

int blockdev_actual_size(const struct blockdev *bd, uint64_t *bytes)
{
    struct stat st;
    if (bd->fd < 0) {
        *bytes = 0;
        return 0;
    }
    if (fstat(bd->fd, &st) < 0)
        return -errno;
    *bytes = (uint64_t)st.st_blocks * 512;
    return 0;
}
