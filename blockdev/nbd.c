/*
 * NBD-backed read-only images through libnbd: a parent served by qemu-nbd or
 * nbdkit on another node, used in place. The path is an NBD URI
 * (nbd://host[:port]/export or nbd+unix:///export?socket=PATH).
 *
 * libnbd is loaded with dlopen on the first NBD open: linked directly it
 * drags GnuTLS, libxml2 and ICU into every herd-vmm (about 6 MiB of
 * resident library pages and milliseconds of start-up per guest) that never
 * uses a remote parent.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

#define LIBNBD_SONAME "libnbd.so.0"

static struct {
    struct nbd_handle *(*create)(void);
    int (*connect_uri)(struct nbd_handle *, const char *);
    int64_t (*get_size)(struct nbd_handle *);
    int (*pread)(struct nbd_handle *, void *, size_t, uint64_t, uint32_t);
    void (*close)(struct nbd_handle *);
    const char *(*get_error)(void);
    int (*get_errno)(void);
} lib;
static const char *lib_error;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void load_libnbd(void)
{
    void *h = dlopen(LIBNBD_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        lib_error = dlerror();
        return;
    }
    *(void **)&lib.create = dlsym(h, "nbd_create");
    *(void **)&lib.connect_uri = dlsym(h, "nbd_connect_uri");
    *(void **)&lib.get_size = dlsym(h, "nbd_get_size");
    *(void **)&lib.pread = dlsym(h, "nbd_pread");
    *(void **)&lib.close = dlsym(h, "nbd_close");
    *(void **)&lib.get_error = dlsym(h, "nbd_get_error");
    *(void **)&lib.get_errno = dlsym(h, "nbd_get_errno");
    if (!lib.create || !lib.connect_uri || !lib.get_size || !lib.pread || !lib.close ||
        !lib.get_error || !lib.get_errno) {
        lib_error = "a libnbd function is missing";
        lib.create = NULL;
    }
}

#define nbd_create() lib.create()
#define nbd_connect_uri(h, u) lib.connect_uri(h, u)
#define nbd_get_size(h) lib.get_size(h)
#define nbd_pread(h, b, n, o, f) lib.pread(h, b, n, o, f)
#define nbd_close(h) lib.close(h)
#define nbd_get_error() lib.get_error()
#define nbd_get_errno() lib.get_errno()

static int nbdev_open(struct blockdev *bd, const struct blockdev_open_opts *opts)
{
    if (!opts->read_only)
        return herd_err_set(opts->err, -EROFS, NULL,
                            "NBD image '%s': only read-only use is supported", bd->filename);
    pthread_once(&lib_once, load_libnbd);
    if (!lib.create)
        return herd_err_set(opts->err, -ENOSYS, NULL,
                            "NBD image '%s': cannot load %s: %s", bd->filename, LIBNBD_SONAME,
                            lib_error ? lib_error : "unknown error");
    struct nbd_handle *h = nbd_create();
    if (!h)
        return -ENOMEM;
    bd->priv = h;
    if (nbd_connect_uri(h, bd->filename) < 0) {
        int err = nbd_get_errno();
        return herd_err_set(opts->err, err ? -err : -EIO, NULL, "NBD image '%s': %s",
                            bd->filename, nbd_get_error());
    }
    int64_t size = nbd_get_size(h);
    if (size < 0)
        return herd_err_set(opts->err, -EIO, NULL,
                            "NBD image '%s': %s", bd->filename, nbd_get_error());
    bd->size = (uint64_t)size;
    return 0;
}

static void nbd_close_dev(struct blockdev *bd)
{
    nbd_close(bd->priv);
    bd->priv = NULL;
}

static int nbdev_read(struct blockdev *bd, void *buf, uint64_t len, uint64_t off)
{
    const uint64_t chunk = 32u << 20; /* servers cap requests at 32 MiB */
    uint8_t *p = buf;
    while (len) {
        uint64_t n = BD_MIN(len, chunk);
        if (nbd_pread(bd->priv, p, n, off, 0) < 0) {
            int err = nbd_get_errno();
            return err ? -err : -EIO;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int nbd_ro_write(struct blockdev *bd, const void *buf, uint64_t len, uint64_t off)
{
    return -EROFS;
}

static int nbd_ro_zero(struct blockdev *bd, uint64_t off, uint64_t len, unsigned flags)
{
    return -EROFS;
}

static int nbd_ro_discard(struct blockdev *bd, uint64_t off, uint64_t len)
{
    return -EROFS;
}

static int nbdev_flush(struct blockdev *bd)
{
    return 0;
}

static int nbdev_block_status(struct blockdev *bd, uint64_t off, uint64_t maxlen,
                            struct blockdev_status *st)
{
    st->len = maxlen;
    st->flags = BLOCKDEV_ST_DATA | BLOCKDEV_ST_ALLOCATED;
    return 0;
}

const struct bd_driver bd_nbd_driver = {
    .name = "nbd",
    .open = nbdev_open,
    .close = nbd_close_dev,
    .read = nbdev_read,
    .write = nbd_ro_write,
    .zero = nbd_ro_zero,
    .discard = nbd_ro_discard,
    .flush = nbdev_flush,
    .block_status = nbdev_block_status,
};
