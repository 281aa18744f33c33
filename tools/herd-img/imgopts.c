/*
 * herd-img image options: the "key=value,..." strings of qemu's
 * --image-opts and qemu-io's open -o, read into what blockdev_open needs,
 * and the checks qemu's file-like protocol drivers make on the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img.h"

static bool on_off(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "off")) {
        *out = !strcmp(v, "on");
        return true;
    }
    return false;
}

static bool is_protocol(const char *d)
{
    return !strcmp(d, "file") || !strcmp(d, "host_device") || !strcmp(d, "host_cdrom");
}

bool img_opts_take(struct img_opts *o, const char *k, const char *v)
{
    bool b;
    if (o->filter) { /* the filter's own driver=, then its child's options */
        if (!strcmp(k, "driver"))
            return !strcmp(v, o->filter);
        if (strncmp(k, "file.", 5))
            return false;
        k += 5;
    }
    if (!strcmp(k, "driver")) {
        o->fmt = v;
    } else if (!strcmp(k, "file.filename") || !strcmp(k, "filename")) {
        o->path = v;
    } else if (!strcmp(k, "read-only") && on_off(v, &b)) {
        o->ro = b;
    } else if (!strcmp(k, "backing.driver")) {
        o->backing_driver = v;
    } else if (!strcmp(k, "file.driver") && is_protocol(v)) {
        o->protocol = v;
    } else if ((!strcmp(k, "locking") || !strcmp(k, "file.locking")) && on_off(v, &b)) {
        o->no_lock = !b;
    } else if (!strcmp(k, "size") && img_parse_size(v, &o->size) == 0) {
        o->has_size = true; /* null-co's */
    } else if (!strcmp(k, "read-zeroes") && on_off(v, &b)) {
        o->read_zeroes = b; /* null-co's */
    } else {
        return false;
    }
    return true;
}

/* True when s (key=value,...) names driver=NAME among its entries. */
static bool names_driver(const char *s, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = s; p; p = strchr(p, ',')) {
        p += *p == ',';
        if (!strncmp(p, "driver=", 7) && !strncmp(p + 7, name, n) &&
            (p[7 + n] == ',' || !p[7 + n]))
            return true;
    }
    return false;
}

int img_opts_parse(char *s, struct img_opts *o)
{
    if (names_driver(s, "compress"))
        o->filter = "compress";
    for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v) {
            img_error("Invalid parameter '%s'", kv);
            return -EINVAL;
        }
        *v++ = 0;
        if (!img_opts_take(o, kv, v) && !o->bad_opt)
            o->bad_opt = kv;
    }
    img_opts_finish(o);
    return 0;
}

void img_opts_finish(struct img_opts *o)
{
    /* driver=file (or a device driver) alone: no format layer, the bytes
     * of the file as they are, which blockdev's raw format gives */
    if (o->fmt && is_protocol(o->fmt)) {
        o->protocol = o->fmt;
        o->fmt = "raw";
        o->bare = true;
    }
}

int img_protocol_check(const char *protocol, const char *path, bool ro, char *msg, size_t n)
{
    if (!protocol)
        return 0;
    int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        snprintf(msg, n, "Could not open '%s': %s", path, strerror(err));
        return -err;
    }
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    close(fd);
    if (r < 0) {
        snprintf(msg, n, "Could not stat '%s': %s", path, strerror(-r));
        return r;
    }
    if (!strcmp(protocol, "file") && !S_ISREG(st.st_mode)) {
        snprintf(msg, n, "'file' driver requires '%s' to be a regular file", path);
        return -EINVAL;
    }
    if (strcmp(protocol, "file") && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
        snprintf(msg, n, "'%s' driver requires '%s' to be either a character or block device",
                 protocol, path);
        return -EINVAL;
    }
    return 0;
}

int img_opts_image(const char *spec, char **copy, struct img_opts *o)
{
    *copy = strdup(spec);
    if (!*copy) {
        img_error("Out of memory");
        return -ENOMEM;
    }
    int r = img_opts_parse(*copy, o);
    if (r < 0)
        return r;
    const char *why = NULL;
    char msg[128];
    if (!o->path && o->protocol) {
        snprintf(msg, sizeof(msg), "The '%s' block driver requires a file name", o->protocol);
        why = msg;
    } else if (!o->path) {
        why = "A block device must be specified for \"file\"";
    } else if (o->filter) {
        snprintf(msg, sizeof(msg), "herd-img %s takes no filter driver ('%s')", "info",
                 o->filter);
        why = msg;
    } else if (!o->fmt || o->bare) {
        why = "the image's format must be given as driver= (formats are never probed)";
    } else if (o->bad_opt) {
        snprintf(msg, sizeof(msg), "Block format '%s' does not support the option '%.40s'",
                 o->fmt, o->bad_opt);
        why = msg;
    }
    if (why) {
        img_error("Could not open '%s': %s", spec, why);
        return -EINVAL;
    }
    return 0;
}
