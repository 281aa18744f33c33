/*
 * herd-img helpers: errors, sizes, opening images, qemu-style JSON.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/qcow2.h"
#include "img.h"

void img_error(const char *fmt, ...)
{
    va_list ap;
    /* the name it was run by, as qemu-img's error_report (QEMU's iotests
     * run it as qemu-img and qemu-io and filter on that name) */
    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int img_parse_byte(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < 0 || v > 255)
        return -EINVAL;
    return (int)v;
}

int img_parse_size(const char *s, uint64_t *out)
{
    /* qemu's size syntax: decimal (or 0x hex) digits, an optional decimal
     * fraction (not with hex), an optional B/K/M/G/T/P/E suffix (required
     * with a fraction), nothing else; at most INT64_MAX. No signs, spaces or
     * exponents. */
    if (!isdigit((unsigned char)s[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    bool hex = false;
    if (v == 0 && end == s + 1 && (*end == 'x' || *end == 'X')) {
        if (!isxdigit((unsigned char)end[1]))
            return -EINVAL;
        v = strtoull(s, &end, 16);
        hex = true;
    }
    if (errno == ERANGE)
        return -ERANGE;
    double frac = 0;
    bool has_frac = *end == '.';
    if (has_frac) {
        size_t nd = strspn(end + 1, "0123456789");
        char buf[40] = "0.";
        if (hex)
            return -EINVAL;
        memcpy(buf + 2, end + 1, nd < sizeof(buf) - 3 ? nd : sizeof(buf) - 3);
        frac = strtod(buf, NULL);
        end += 1 + nd;
    }
    uint64_t mul = 1;
    const char *sfx = *end ? strchr("BKMGTPE", toupper((unsigned char)*end)) : NULL;
    if (sfx) {
        mul = 1ull << (10 * (sfx - "BKMGTPE"));
        end++;
    }
    if (*end || (has_frac && mul == 1))
        return -EINVAL;
    if (v > (uint64_t)INT64_MAX / mul)
        return -ERANGE;
    uint64_t r = v * mul + (uint64_t)(frac * (double)mul);
    if (r > (uint64_t)INT64_MAX)
        return -ERANGE;
    *out = r;
    return 0;
}

const char *img_guess_format(const char *path, const char *given)
{
    if (given)
        return given;
    if (strstr(path, "://"))
        return "nbd";
    unsigned char m[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "raw";
    ssize_t n = read(fd, m, sizeof(m));
    close(fd);
    if (n == 4 && m[0] == 'Q' && m[1] == 'F' && m[2] == 'I' && m[3] == 0xfb)
        return "qcow2";
    return "raw";
}

const char *img_errmsg(const struct herd_err *e)
{
    return e->msg[0] ? e->msg : "no error";
}

char *img_backing_path(const char *image, const char *name)
{
    const char *slash = strrchr(image, '/');
    if (name[0] == '/' || strstr(name, "://") || !slash)
        return strdup(name);
    size_t dl = (size_t)(slash - image) + 1;
    char *p = malloc(dl + strlen(name) + 1);
    if (p) {
        memcpy(p, image, dl);
        strcpy(p + dl, name);
    }
    return p;
}

const char *img_file_path(const char *name, char *buf, size_t len)
{
    if (strncmp(name, "file:", 5))
        return name;
    const char *p = name + 5;
    bool proto = p[strcspn(p, ":/")] == ':';
    snprintf(buf, len, "%s%s", proto ? "./" : "", p);
    return buf;
}

/* A json:{...} name: why it cannot be opened (NULL: it can), and the file
 * and format in *file and o. null-co needs no file: the name stands for it. */
static const char *json_target(const char *path, const char *fmt, const struct img_opts *io,
                               const char **file, struct blockdev_open_opts *o, char *msg,
                               size_t n)
{
    const char *drv = io->fmt ? io->fmt : fmt;
    *file = io->path;
    if (io->filter || io->bare)
        return "herd-img opens a format here (driver=raw, qcow2 or null-co)";
    if (!drv)
        return "the image's format must be given as driver= (formats are never probed)";
    if (io->bad_opt || (io->has_size && strcmp(drv, "null-co"))) {
        snprintf(msg, n, "Block format '%s' does not support the option '%s'", drv,
                 io->bad_opt ? io->bad_opt : "size");
        return msg;
    }
    if (!strcmp(drv, "null-co")) {
        if (!io->read_zeroes)
            return "herd-img takes null-co only with read-zeroes=true (else what it reads "
                   "is undefined)";
        *file = path;
        o->null_size = io->has_size ? io->size : 1ull << 30; /* qemu's default */
    } else if (!io->path) {
        return "A block device must be specified for \"file\"";
    }
    static const char *const known[] = {"raw", "qcow2", "null-co"};
    o->format = NULL; /* a literal: drv lives only as long as the parse */
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(drv, known[i]))
            o->format = known[i];
    if (!o->format) {
        snprintf(msg, n, "Unknown driver '%.64s'", drv);
        return msg;
    }
    o->no_backing |= io->no_backing;
    o->no_lock |= io->no_lock;
    if (img_protocol_check(io->protocol, io->path, o->read_only, msg, n) < 0)
        return msg;
    return NULL;
}

struct blockdev *img_open_opts(const char *path, const char *fmt, struct blockdev_open_opts *o)
{
    struct herd_err e = {0};
    struct blockdev *bd = NULL;
    char pbuf[IMG_PATH_MAX], msg[IMG_PATH_MAX + 128];
    struct img_strs strs = {0};
    struct img_opts io = {0};
    const char *file = img_file_path(path, pbuf, sizeof(pbuf)), *why = NULL;
    if (!strncmp(path, "json:", 5)) {
        why = img_opts_json(path, &strs, &io, msg, sizeof(msg)) < 0
                  ? msg : json_target(path, fmt, &io, &file, o, msg, sizeof(msg));
    } else {
        o->format = img_guess_format(file, fmt);
    }
    o->err = &e;
    int r = why ? -EINVAL : blockdev_open(file, o, &bd);
    o->err = NULL;
    if (r < 0)
        img_error("Could not open '%s': %s", path, why ? why : img_errmsg(&e));
    img_strs_free(&strs);
    return r < 0 ? NULL : bd;
}

struct blockdev *img_open(const char *path, const char *fmt, bool rw, bool force_share,
                          bool no_backing)
{
    struct blockdev_open_opts o = {
        .read_only = !rw,
        .no_lock = force_share,
        .no_backing = no_backing,
    };
    return img_open_opts(path, fmt, &o);
}

void jw_string_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void indent(struct jw *w)
{
    for (int i = 0; i < w->depth; i++)
        fputs("    ", w->f);
}

static void key(struct jw *w, const char *k)
{
    if (!w->first[w->depth])
        fputs(",\n", w->f);
    else
        fputc('\n', w->f);
    w->first[w->depth] = false;
    indent(w);
    if (k) {
        jw_string_escaped(w->f, k);
        fputs(": ", w->f);
    }
}

void jw_begin(struct jw *w, FILE *f, int depth)
{
    memset(w, 0, sizeof(*w));
    w->f = f;
    w->depth = w->base = depth;
    w->first[depth] = true;
}

void jw_obj_open(struct jw *w, const char *k)
{
    if (w->depth > w->base || k)
        key(w, k);
    else
        indent(w);
    fputc('{', w->f);
    w->depth++;
    w->first[w->depth] = true;
}

void jw_obj_close(struct jw *w)
{
    w->depth--;
    fputc('\n', w->f);
    indent(w);
    fputc('}', w->f);
}

void jw_int(struct jw *w, const char *k, uint64_t v)
{
    key(w, k);
    fprintf(w->f, "%llu", (unsigned long long)v);
}

void jw_str(struct jw *w, const char *k, const char *v)
{
    key(w, k);
    jw_string_escaped(w->f, v);
}

void jw_bool(struct jw *w, const char *k, bool v)
{
    key(w, k);
    fputs(v ? "true" : "false", w->f);
}

int img_prealloc_mode(const char *v)
{
    static const char *const names[] = {"off", "metadata", "falloc", "full"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, names[i]))
            return i; /* enum blockdev_prealloc's order */
    return -1;
}
