/* Parent image copies across nodes: the published entry read as hostile
 * input, HTTP ranges, SHA-256 of files (include/herd/image_copy.h). */
#include "herd/image_copy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const image_file_names[IMAGE_COPY_FILES] = {"image", "kernel", "initrd"};

static int bad(struct herd_err *err, const char *field, const char *what)
{
    return herd_err_set(err, -EPROTO, field, "%s: %s", field, what);
}

bool image_sha256_ok(const char *hex)
{
    if (!hex || strlen(hex) != 64)
        return false;
    for (const char *c = hex; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > IMAGE_COPY_NAME_MAX || !((s[0] >= 'a' && s[0] <= 'z') ||
                                           (s[0] >= 'A' && s[0] <= 'Z') ||
                                           (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* A string of at most max bytes without NUL inside (empty allowed when
 * empty_ok); its copy into *out. */
static int str_field(json_t *o, const char *key, size_t max, bool empty_ok, char **out,
                     struct herd_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v) ||
        (!empty_ok && !json_string_length(v)))
        return bad(err, key, empty_ok ? "a string is expected" : "a non-empty string is expected");
    *out = strdup(json_string_value(v));
    return *out ? 0 : herd_err_set(err, -ENOMEM, key, "out of memory");
}

static int int_field(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
                     struct herd_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char what[96];
        snprintf(what, sizeof(what), "an integer in %" PRId64 "..%" PRId64 " is expected", min,
                 max);
        return bad(err, key, what);
    }
    *out = json_integer_value(v);
    return 0;
}

/* files.KIND: {sha256, size}; the initrd may be absent. */
static int file_parse(json_t *files, int i, struct image_file *f, struct herd_err *err)
{
    char field[48];
    json_t *o = json_object_get(files, image_file_names[i]);
    uint64_t max = i == IMAGE_FILE_IMAGE ? IMAGE_COPY_IMAGE_MAX : IMAGE_COPY_BOOT_MAX;

    if (!o && i == IMAGE_FILE_INITRD)
        return 0;
    snprintf(field, sizeof(field), "files.%s", image_file_names[i]);
    if (!json_is_object(o) || json_object_size(o) != 2)
        return bad(err, field, "{sha256, size} is expected");
    const char *hex = json_string_value(json_object_get(o, "sha256"));
    json_t *size = json_object_get(o, "size");
    if (!image_sha256_ok(hex)) {
        snprintf(field, sizeof(field), "files.%s.sha256", image_file_names[i]);
        return bad(err, field, "64 lowercase hex digits are expected");
    }
    if (!json_is_integer(size) || json_integer_value(size) < 1 ||
        (uint64_t)json_integer_value(size) > max) {
        snprintf(field, sizeof(field), "files.%s.size", image_file_names[i]);
        char what[80];
        snprintf(what, sizeof(what), "bytes, 1 to %" PRIu64 " are expected", max);
        return bad(err, field, what);
    }
    f->present = true;
    memcpy(f->sha256, hex, 65);
    f->size = (uint64_t)json_integer_value(size);
    return 0;
}

static int files_parse(json_t *doc, struct image_def *d, struct herd_err *err)
{
    json_t *files = json_object_get(doc, "files");
    const char *k;
    json_t *v;

    if (!json_is_object(files))
        return bad(err, "files", "{image, kernel, initrd?} is expected");
    json_object_foreach(files, k, v)
        if (strcmp(k, "image") && strcmp(k, "kernel") && strcmp(k, "initrd"))
            return bad(err, "files", "only image, kernel and initrd are expected");
    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        if (file_parse(files, i, &d->file[i], err) < 0)
            return -EPROTO;
    return 0;
}

static int where_parse(json_t *doc, struct image_def *d, struct herd_err *err)
{
    const char *a = json_string_value(json_object_get(doc, "address"));
    unsigned char buf[16];
    int64_t port;

    if (!a || strlen(a) >= sizeof(d->address) ||
        (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1))
        return bad(err, "address", "an IPv4 or IPv6 address is expected");
    snprintf(d->address, sizeof(d->address), "%s", a);
    if (int_field(doc, "port", 1, 65535, &port, err) < 0)
        return -EPROTO;
    d->port = (unsigned)port;
    return 0;
}

static int shape_parse(json_t *doc, struct image_def *d, struct herd_err *err)
{
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    int64_t cpus, mem;

    if (!fmt || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2")))
        return bad(err, "format", "raw or qcow2 is expected");
    snprintf(d->format, sizeof(d->format), "%s", fmt);
    if (int_field(doc, "cpus", 1, 32, &cpus, err) < 0 ||
        int_field(doc, "mem", 4 << 20, (int64_t)1 << 40, &mem, err) < 0)
        return -EPROTO;
    if (mem % 4096)
        return bad(err, "mem", "a multiple of 4096 is expected");
    d->cpus = (unsigned)cpus;
    d->mem = (uint64_t)mem;
    json_t *nics = json_object_get(doc, "nics");
    if (!json_is_array(nics) || json_array_size(nics) > 16)
        return bad(err, "nics", "a list of at most 16 NICs is expected");
    d->nics = json_incref(nics);
    if (str_field(doc, "cmdline", 2048, true, &d->cmdline, err) < 0 ||
        str_field(doc, "ready_line", 4000, false, &d->ready_line, err) < 0)
        return -EPROTO;
    return 0;
}

static int doc_parse(json_t *doc, const char *name, const char *node, struct image_def *d,
                     struct herd_err *err)
{
    static const char *const known[] = {"name", "node", "format", "address", "port", "cmdline",
                                        "ready_line", "cpus", "mem", "nics", "files", NULL};
    const char *k, *n;
    json_t *v;

    if (!json_is_object(doc))
        return bad(err, "", "not a JSON object");
    json_object_foreach(doc, k, v) {
        size_t i = 0;
        while (known[i] && strcmp(known[i], k))
            i++;
        if (!known[i])
            return herd_err_set(err, -EPROTO, "", "unknown field '%.64s'", k);
    }
    if (!name_ok(name) || !name_ok(node))
        return bad(err, "", "the key does not name a template and a node");
    if (!(n = json_string_value(json_object_get(doc, "name"))) || strcmp(n, name))
        return bad(err, "name", "the template's name in its key is expected");
    if (!(n = json_string_value(json_object_get(doc, "node"))) || strcmp(n, node))
        return bad(err, "node", "the node's name in its key is expected");
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(d->node, sizeof(d->node), "%s", node);
    if (where_parse(doc, d, err) < 0 || shape_parse(doc, d, err) < 0 ||
        files_parse(doc, d, err) < 0)
        return -EPROTO;
    return 0;
}

int image_def_parse(const char *text, size_t len, const char *name, const char *node,
                    struct image_def *d, struct herd_err *err)
{
    memset(d, 0, sizeof(*d));
    if (len > IMAGE_COPY_ENTRY_MAX)
        return bad(err, "", "the entry is longer than 64 KiB");
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = doc_parse(doc, name, node, d, err);
    json_decref(doc);
    if (rc < 0)
        image_def_free(d);
    return rc;
}

void image_def_free(struct image_def *d)
{
    free(d->cmdline);
    free(d->ready_line);
    json_decref(d->nics);
    memset(d, 0, sizeof(*d));
}

char *image_def_text(const struct image_def *d)
{
    json_t *files = json_object();
    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        if (d->file[i].present)
            json_object_set_new(files, image_file_names[i],
                                json_pack("{ss sI}", "sha256", d->file[i].sha256, "size",
                                          (json_int_t)d->file[i].size));
    json_t *o = json_pack("{ss ss ss ss si ss ss si sI sO so}", "name", d->name, "node",
                          d->node, "format", d->format, "address", d->address, "port",
                          (int)d->port, "cmdline", d->cmdline ? d->cmdline : "", "ready_line",
                          d->ready_line ? d->ready_line : "", "cpus", (int)d->cpus, "mem",
                          (json_int_t)d->mem, "nics", d->nics ? d->nics : json_array(),
                          "files", files);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return s;
}

bool image_def_same_file(const struct image_def *a, const struct image_def *b, int i)
{
    const struct image_file *x = &a->file[i], *y = &b->file[i];
    return x->present == y->present &&
           (!x->present || (x->size == y->size && !strcmp(x->sha256, y->sha256)));
}

/* A decimal number of at most 19 digits at *p; *p moved past it. */
static int number(const char **p, uint64_t *out)
{
    uint64_t n = 0;
    int digits = 0;
    while (**p >= '0' && **p <= '9') {
        if (++digits > 19)
            return -EINVAL;
        n = n * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    if (!digits)
        return -EINVAL;
    *out = n;
    return 0;
}

int image_range_parse(const char *hdr, uint64_t size, uint64_t *start, uint64_t *end)
{
    const char *p = hdr;
    uint64_t a, b = UINT64_MAX;

    if (!p || strncmp(p, "bytes=", 6))
        return -EINVAL;
    p += 6;
    if (number(&p, &a) < 0 || *p++ != '-')
        return -EINVAL;
    if (*p && (number(&p, &b) < 0 || *p || b < a))
        return -EINVAL;
    if (a >= size)
        return -ERANGE;
    *start = a;
    *end = b >= size ? size - 1 : b;
    return 0;
}

int image_content_range_parse(const char *hdr, uint64_t *start, uint64_t *end,
                              uint64_t *total)
{
    const char *p = hdr;

    if (!p || strncmp(p, "bytes ", 6))
        return -EINVAL;
    p += 6;
    if (number(&p, start) < 0 || *p++ != '-' || number(&p, end) < 0 || *p++ != '/' ||
        number(&p, total) < 0)
        return -EINVAL;
    while (*p == '\r' || *p == '\n' || *p == ' ')
        p++;
    if (*p || *end < *start || *end >= *total)
        return -EINVAL;
    return 0;
}

int image_hash_prefix(void *ctx, int fd, uint64_t len)
{
    static __thread unsigned char buf[1 << 16];
    uint64_t off = 0;

    while (off < len) {
        size_t want = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        off += (uint64_t)n;
    }
    return 0;
}

void image_hash_hex(void *ctx, char out[65])
{
    unsigned char md[32];
    unsigned len = 0;

    EVP_DigestFinal_ex(ctx, md, &len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

int image_hash_fd(int fd, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    off_t end = lseek(fd, 0, SEEK_END);
    int rc;

    if (!ctx)
        return -ENOMEM;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    rc = end < 0 ? -errno : image_hash_prefix(ctx, fd, (uint64_t)end);
    image_hash_hex(ctx, out);
    EVP_MD_CTX_free(ctx);
    return rc;
}

void image_size_str(uint64_t bytes, char *out, size_t size)
{
    if (bytes < 1024)
        snprintf(out, size, "%" PRIu64 " B", bytes);
    else if (bytes < (1ULL << 20))
        snprintf(out, size, "%.1f KiB", (double)bytes / 1024);
    else if (bytes < (1ULL << 30))
        snprintf(out, size, "%.1f MiB", (double)bytes / (1 << 20));
    else
        snprintf(out, size, "%.1f GiB", (double)bytes / (1 << 30));
}
