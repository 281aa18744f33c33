/* Templates: a read-only parent image (format explicit, never probed), a
 * kernel, a command line and per-guest defaults. The parent's SHA-256 and
 * sizes are recorded when it is added. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/blockdev.h"
#include "herdd.h"

struct hd_template *hd_template_find(struct hd_store *st, const char *name)
{
    for (struct hd_template *t = st->templates; t; t = t->next)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

void hd_template_free(struct hd_template *t)
{
    if (!t)
        return;
    free(t->image);
    free(t->format);
    free(t->kernel);
    free(t->initrd);
    free(t->cmdline);
    free(t->ready_line);
    free(t->sha256);
    json_decref(t->nics);
    free(t);
}

json_t *hd_template_json(struct hd_store *st, const struct hd_template *t)
{
    unsigned users = 0;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        users += !strcmp(vm->tmpl, t->name);
    json_t *o = json_pack("{ss ss ss ss ss ss sI sI sO ss sI sI sI si}", "name", t->name,
                          "image", t->image, "format", t->format, "kernel", t->kernel,
                          "cmdline", t->cmdline, "ready_line", t->ready_line, "cpus",
                          (json_int_t)t->cpus, "mem", (json_int_t)t->mem, "nics", t->nics,
                          "sha256", t->sha256, "image_size", (json_int_t)t->image_size,
                          "file_size", (json_int_t)t->file_size, "created",
                          (json_int_t)t->created, "guests", users);
    if (t->initrd)
        json_object_set_new(o, "initrd", json_string(t->initrd));
    if (t->parent[0])
        json_object_set_new(o, "parent", json_string(t->parent));
    if (t->snapshot[0])
        json_object_set_new(o, "snapshot", json_string(t->snapshot));
    return o;
}

static int sha256_file(const char *path, char out[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static __thread unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = 0;
    return rc;
}

static const char *req_str(json_t *body, const char *key, bool required, struct hd_err *err)
{
    json_t *v = json_object_get(body, key);
    if (!v) {
        if (required)
            hd_fail(err, 400, key, "%s is required", key);
        return NULL;
    }
    if (!json_is_string(v) || !json_string_length(v) ||
        strlen(json_string_value(v)) != json_string_length(v) || json_string_length(v) > 4000) {
        hd_fail(err, 400, key, "%s must be a non-empty string", key);
        return NULL;
    }
    return json_string_value(v);
}

int hd_nic_resolve(const struct hd_config *cfg, json_t *item, const char *range, char role[24],
                   char bridge[IFNAMSIZ], const char *field, struct hd_err *err)
{
    const char *net = NULL, *seg = NULL;
    enum netdev_role r;

    if (json_is_string(item)) {
        net = json_string_value(item);
    } else if (json_is_object(item)) {
        const char *k;
        json_t *v;
        json_object_foreach(item, k, v) {
            if (strcmp(k, "network") && strcmp(k, "segment") && strcmp(k, "addresses") &&
                strcmp(k, "rate_limit") && strcmp(k, "ipv4") && strcmp(k, "gateway") &&
                strcmp(k, "ipv6"))
                return hd_fail(err, 400, field, "%s.%s: unknown field (network, segment, "
                               "addresses, rate_limit, ipv4, gateway, ipv6)", field, k);
        }
        struct netdev_kfilter_cfg kf;
        int rc = netdev_kfilter_parse_nic(item, field, &kf, err ? &err->lib : NULL);
        if (rc < 0)
            return hd_fail_lib(err, 400, rc, "");
        net = json_string_value(json_object_get(item, "network"));
        seg = json_string_value(json_object_get(item, "segment"));
        if (json_object_get(item, "segment") && (!seg || netdev_ident_check(seg) < 0))
            return hd_fail(err, 400, field, "%s.segment must be a segment name", field);
    }
    if (!net || netdev_role_parse(net, &r) < 0)
        return hd_fail(err, 400, field,
                       "%s must be a network role (management, storage, service, "
                       "communication) or {network, segment}", field);
    const char *b = hd_bridge_of(cfg, net);
    if (!b)
        return hd_fail(err, 400, field, "%s: role '%s' has no bridge in herdd's configuration",
                       field, net);
    snprintf(role, 24, "%s", net);
    if (seg) {
        if (hd_segment_bridge(cfg, range, r, seg, bridge) < 0)
            return hd_fail(err, 400, field, "%s: bad segment name '%s'", field, seg);
    } else {
        snprintf(bridge, IFNAMSIZ, "%s", b);
    }
    return 0;
}

/* Shared by templates and guests: cpus, mem and nics fields. */
int hd_check_shape(const struct hd_config *cfg, json_t *body, unsigned *cpus, uint64_t *mem,
                   json_t **nics, struct hd_err *err)
{
    json_t *v = json_object_get(body, "cpus");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 32)
            return hd_fail(err, 400, "cpus", "cpus must be an integer in 1..32");
        *cpus = (unsigned)json_integer_value(v);
    }
    v = json_object_get(body, "mem");
    if (v) {
        uint64_t m;
        if (hd_parse_size(v, &m) < 0 || m < (4u << 20) || m > (1ull << 40) || m % 4096)
            return hd_fail(err, 400, "mem",
                           "mem must be a size from 4M to 1T in 4K steps (e.g. 64M)");
        *mem = m;
    }
    v = json_object_get(body, "nics");
    if (v) {
        if (!json_is_array(v) || json_array_size(v) > HD_MAX_NICS)
            return hd_fail(err, 400, "nics", "nics must be a list of at most %d network roles",
                           HD_MAX_NICS);
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) {
            char field[32], role[24], bridge[IFNAMSIZ];
            snprintf(field, sizeof(field), "nics[%zu]", i);
            struct hd_nic addr;
            if (hd_nic_resolve(cfg, it, NULL, role, bridge, field, err) < 0 ||
                hd_nic_addr_parse(it, field, &addr, err) < 0)
                return -1;
        }
        *nics = v;
    }
    return 0;
}

/* A template's NICs have no addresses: every guest would get the same. */
static int no_addresses(json_t *nics, struct hd_err *err)
{
    static const char *const keys[] = {"ipv4", "gateway", "ipv6"};
    size_t i;
    json_t *it;
    json_array_foreach(nics, i, it) {
        for (size_t k = 0; k < 3; k++)
            if (json_is_object(it) && json_object_get(it, keys[k])) {
                char field[32];
                snprintf(field, sizeof(field), "nics[%zu].%s", i, keys[k]);
                return hd_fail(err, 400, field, "%s: a template's NICs have no addresses (a "
                               "guest's have: vm create, or a range's networks)", field);
            }
    }
    return 0;
}

/* "name": required, and a valid name. */
static const char *req_name(json_t *body, struct hd_err *err)
{
    const char *name = req_str(body, "name", true, err);
    if (name && !hd_name_ok(name)) {
        hd_fail(err, 400, "name",
                "name must be 1-%d characters from [A-Za-z0-9_.-], starting with a "
                "letter or digit", HD_NAME_MAX);
        return NULL;
    }
    return name;
}

/* "cmdline", when present: a string of at most 2048 bytes. */
static int cmdline_check(json_t *body, struct hd_err *err)
{
    json_t *v = json_object_get(body, "cmdline");
    if (v && (!json_is_string(v) || json_string_length(v) > 2048))
        return hd_fail(err, 400, "cmdline", "cmdline must be a string of at most 2048 bytes");
    return 0;
}

/* What a template add asks for (the strings point into the request body). */
struct add_req {
    const char *name, *image, *format, *kernel, *initrd, *cmdline, *ready;
    unsigned cpus;
    uint64_t mem;
    json_t *nics;               /* NULL: none given */
};

static int add_req_parse(const struct hd_config *cfg, json_t *body, struct add_req *q,
                         struct hd_err *err)
{
    static const char *const known[] = {"name", "image", "format", "kernel", "initrd",
                                        "cmdline", "cpus", "mem", "nics", "ready_line", NULL};

    if (!json_is_object(body))
        return hd_fail(err, 400, "", "a JSON object is expected");
    if (hd_check_fields(body, known, err) < 0)
        return -1;
    if (!(q->name = req_name(body, err)) || !(q->image = req_str(body, "image", true, err)) ||
        !(q->format = req_str(body, "format", true, err)))
        return -1;
    if (strcmp(q->format, "raw") && strcmp(q->format, "qcow2"))
        return hd_fail(err, 400, "format", "format must be raw or qcow2 (never guessed)");
    if (!(q->kernel = req_str(body, "kernel", true, err)))
        return -1;
    q->initrd = req_str(body, "initrd", false, err);
    if (!q->initrd && json_object_get(body, "initrd"))
        return -1;
    if (cmdline_check(body, err) < 0)
        return -1;
    json_t *v = json_object_get(body, "cmdline");
    q->cmdline = v ? json_string_value(v) : "";
    q->ready = HD_READY_LINE;
    if (json_object_get(body, "ready_line") &&
        !(q->ready = req_str(body, "ready_line", false, err)))
        return -1;
    q->cpus = 1;
    q->mem = 64u << 20;
    q->nics = NULL;
    if (hd_check_shape(cfg, body, &q->cpus, &q->mem, &q->nics, err) < 0 ||
        no_addresses(q->nics, err) < 0)
        return -1;
    return 0;
}

/* Takes the store lock. */
static bool template_exists(struct hd_store *st, const char *name)
{
    pthread_mutex_lock(&st->mu);
    bool exists = hd_template_find(st, name) != NULL;
    pthread_mutex_unlock(&st->mu);
    return exists;
}

/* Every file is checked before it is opened: herdd opens them as root. */
static int add_files_check(const struct hd_config *cfg, const struct add_req *q,
                           struct hd_err *err)
{
    if (hd_image_file_check(cfg, q->image, "image", err) < 0 ||
        hd_image_file_check(cfg, q->kernel, "kernel", err) < 0 ||
        (q->initrd && hd_image_file_check(cfg, q->initrd, "initrd", err) < 0))
        return -1;
    return 0;
}

/* What a template records of its parent image. */
struct image_facts {
    uint64_t vsize, file_size;
    char sum[65];
};

/* The parent must open read-only in the named format, with exactly the
 * chain checked first; then its sizes and SHA-256. */
static int image_inspect(const struct hd_config *cfg, const struct add_req *q,
                         struct image_facts *f, struct hd_err *err)
{
    struct hd_chain chain;
    if (hd_chain_of(cfg, q->image, q->format, "image", &chain, err) < 0)
        return -1;
    struct blockdev_link links[HD_CHAIN_MAX];
    for (unsigned i = 1; i < chain.n; i++)
        links[i - 1] = (struct blockdev_link){.path = chain.path[i], .format = chain.format[i]};
    struct herd_err berr;
    struct blockdev_open_opts o = {.format = q->format, .read_only = true, .chain_pinned = true,
                                   .chain = links, .chain_len = chain.n - 1, .err = &berr};
    struct blockdev *bd = NULL;
    int rc = blockdev_open(q->image, &o, &bd);
    hd_chain_free(&chain);
    if (rc < 0)
        return hd_fail(err, 400, "image", "%s does not open as %s: %s", q->image, q->format,
                       berr.msg);
    f->vsize = blockdev_size(bd);
    blockdev_close(bd);
    struct stat st;
    stat(q->image, &st);
    f->file_size = (uint64_t)st.st_size;
    if ((rc = sha256_file(q->image, f->sum)) < 0)
        return hd_fail(err, 400, "image", "%s: %s", q->image, strerror(-rc));
    return 0;
}

static struct hd_template *template_new(const struct add_req *q, const struct image_facts *f)
{
    struct hd_template *t = calloc(1, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", q->name);
    t->image = strdup(q->image);
    t->format = strdup(q->format);
    t->kernel = strdup(q->kernel);
    t->initrd = q->initrd ? strdup(q->initrd) : NULL;
    t->cmdline = strdup(q->cmdline);
    t->ready_line = strdup(q->ready);
    t->sha256 = strdup(f->sum);
    t->image_size = f->vsize;
    t->file_size = f->file_size;
    t->cpus = q->cpus;
    t->mem = q->mem;
    t->nics = q->nics ? json_deep_copy(q->nics) : json_array();
    t->created = hd_now_ms();
    return t;
}

/* Store lock held: t written through, unless its name was taken meanwhile. */
static int template_save_new(struct hd_store *st, const struct hd_template *t,
                             struct hd_err *err)
{
    if (hd_template_find(st, t->name))
        return hd_fail(err, 409, "name", "template '%s' exists already", t->name);
    if (hd_db_save_template(st, t) < 0)
        return hd_fail(err, 500, "", "database write failed");
    return 0;
}

/* Store lock held: t (saved) joins the list; *out is what the API shows. */
static void template_link(struct hd_store *st, struct hd_template *t, json_t **out)
{
    t->next = st->templates;
    st->templates = t;
    *out = hd_template_json(st, t);
}

int hd_template_insert(struct hd_store *st, struct hd_template *t, json_t **out,
                       struct hd_err *err)
{
    if (template_save_new(st, t, err) < 0)
        return -1;
    template_link(st, t, out);
    return 0;
}

int hd_template_add(struct hd_res *r, json_t *body, json_t **out, struct hd_err *err)
{
    struct hd_store *st = r->st;
    struct add_req q;
    struct image_facts f;

    if (add_req_parse(r->cfg, body, &q, err) < 0)
        return -1;
    if (template_exists(st, q.name))
        return hd_fail(err, 409, "name", "template '%s' exists already", q.name);
    if (add_files_check(r->cfg, &q, err) < 0 || image_inspect(r->cfg, &q, &f, err) < 0)
        return -1;
    struct hd_template *t = template_new(&q, &f);

    pthread_mutex_lock(&st->mu);
    if (template_save_new(st, t, err) < 0) {
        pthread_mutex_unlock(&st->mu);
        hd_template_free(t);
        return -1;
    }
    template_link(st, t, out);
    pthread_mutex_unlock(&st->mu);
    hd_event(&st->ev, "template.added", q.name, NULL);
    return 0;
}

int hd_template_rm(struct hd_res *r, const char *name, struct hd_err *err)
{
    struct hd_store *st = r->st;

    pthread_mutex_lock(&st->mu);
    struct hd_template **pp = &st->templates;
    while (*pp && strcmp((*pp)->name, name))
        pp = &(*pp)->next;
    if (!*pp) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 404, "name", "no template '%s'", name);
    }
    unsigned users = 0;
    const char *one = NULL;
    for (struct hd_vm *vm = st->vms; vm; vm = vm->next)
        if (!strcmp(vm->tmpl, name)) {
            users++;
            one = one ? one : vm->name;
        }
    for (struct hd_template *d = st->templates; d; d = d->next)
        if (!strcmp(d->parent, name)) {
            hd_fail(err, 409, "name", "template '%s' is the parent of template '%s'", name,
                    d->name);
            pthread_mutex_unlock(&st->mu);
            return -1;
        }
    if (users) {
        hd_fail(err, 409, "name", "template '%s' is used by %u guest(s) (e.g. %s)", name, users,
                one);
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    int snaps = hd_db_snapshots_of_template(st, name);
    if (snaps != 0) {
        hd_fail(err, 409, "name", "template '%s' is under %d snapshot(s): remove them first",
                name, snaps);
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    struct hd_template *t = *pp;
    if (hd_db_delete_template(st, name) < 0) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 500, "", "database write failed");
    }
    *pp = t->next;
    pthread_mutex_unlock(&st->mu);
    if (t->parent[0])
        unlink(t->image); /* a derived template's delta is herdd's own file */
    hd_template_free(t);
    hd_event(&st->ev, "template.removed", name, NULL);
    return 0;
}

static int copy_file(const char *src, const char *dst)
{
    /* src is a guest's overlay, in a directory its uid owns: a link there
     * must not make herdd (root) copy what it points at */
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (in < 0)
        return -errno;
    struct stat st;
    if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(in);
        return -EPERM;
    }
    int outfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (outfd < 0) {
        int e = -errno;
        close(in);
        return e;
    }
    int rc = 0;
    /* sparse copy: data extents only */
    off_t off = 0;
    while (off < st.st_size) {
        off_t data = lseek(in, off, SEEK_DATA);
        if (data < 0)
            break;
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        off_t a = data, b = data;
        while (a < hole) {
            ssize_t n = copy_file_range(in, &a, outfd, &b, (size_t)(hole - a), 0);
            if (n <= 0) {
                rc = n < 0 ? -errno : -EIO;
                break;
            }
        }
        if (rc < 0)
            break;
        off = hole;
    }
    if (rc == 0 && ftruncate(outfd, st.st_size) < 0)
        rc = -errno;
    if (rc == 0 && fsync(outfd) < 0)
        rc = -errno;
    close(in);
    close(outfd);
    if (rc < 0)
        unlink(dst);
    return rc;
}

static int derive_req_parse(json_t *body, const char **name, const char **vmname,
                            struct hd_err *err)
{
    static const char *const known[] = {"name", "vm", "cmdline", "cpus", "mem", "nics",
                                        "ready_line", NULL};

    if (hd_check_fields(body, known, err) < 0)
        return -1;
    if (!(*name = req_name(body, err)) || !(*vmname = req_str(body, "vm", true, err)))
        return -1;
    if (cmdline_check(body, err) < 0)
        return -1;
    if (json_object_get(body, "ready_line") && !req_str(body, "ready_line", false, err))
        return -1;
    return 0;
}

/* Store lock held: the guest to derive from (known, not running, not busy)
 * and its template, into *vmp and *basep. */
static int derive_source(struct hd_store *st, const char *name, const char *vmname,
                         struct hd_vm **vmp, struct hd_template **basep, struct hd_err *err)
{
    struct hd_vm *vm = *vmp = hd_vm_find(st, vmname);
    struct hd_template *base = *basep = vm ? hd_template_find(st, vm->tmpl) : NULL;
    if (hd_template_find(st, name))
        return hd_fail(err, 409, "name", "template '%s' exists already", name);
    if (!vm || !strcmp(vm->state, "creating"))
        return hd_fail(err, 404, "vm", "no guest '%s'", vmname);
    if (vm->busy || vm->pidfd >= 0)
        return hd_fail(err, 409, "vm", "guest '%s' is %s: stop it first", vmname, vm->state);
    if (!base)
        return hd_fail(err, 409, "vm", "guest '%s' has no template", vmname);
    return 0;
}

/* Store lock held: the derived template's record, base's with body's
 * fields over it; its image (the delta) comes later. NULL when body's
 * cpus/mem/nics are refused. */
static struct hd_template *derived_new(const struct hd_config *cfg, json_t *body,
                                       const char *name, const struct hd_template *base,
                                       struct hd_err *err)
{
    unsigned cpus = base->cpus;
    uint64_t mem = base->mem;
    json_t *nics = base->nics;
    if (hd_check_shape(cfg, body, &cpus, &mem, &nics, err) < 0 || no_addresses(nics, err) < 0)
        return NULL;
    struct hd_template *t = calloc(1, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->parent, sizeof(t->parent), "%s", base->name);
    t->format = strdup("qcow2");
    t->kernel = strdup(base->kernel);
    t->initrd = base->initrd ? strdup(base->initrd) : NULL;
    json_t *v = json_object_get(body, "cmdline");
    t->cmdline = strdup(v ? json_string_value(v) : base->cmdline);
    v = json_object_get(body, "ready_line");
    t->ready_line = strdup(v ? json_string_value(v) : base->ready_line);
    t->cpus = cpus;
    t->mem = mem;
    t->nics = json_deep_copy(nics);
    t->image_size = base->image_size;
    return t;
}

/* The guest's overlay src copied to dst, STATE/templates/NAME.qcow2. */
static int delta_copy(const struct hd_config *cfg, const char *name, const char *src,
                      char *dst, size_t dst_size, struct hd_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/templates", cfg->state_dir);
    mkdir(dir, 0755);
    snprintf(dst, dst_size, "%s/%s.qcow2", dir, name);
    int rc = copy_file(src, dst);
    if (rc < 0)
        hd_fail(err, rc == -EEXIST ? 409 : 500, "name", "%s: %s", dst, strerror(-rc));
    return rc;
}

/* The delta dst names only its base's chain (base_image, base_format); then
 * its SHA-256 (sum) and size, and it is made read-only. */
static int delta_check(const struct hd_config *cfg, const char *dst, const char *base_image,
                       const char *base_format, char sum[65], uint64_t *file_size,
                       struct hd_err *err)
{
    /* The overlay was written by the guest's herd-vmm: it may name only
     * its template's chain, which the delta then keeps for good. */
    struct hd_chain pin;
    int rc = hd_chain_of(cfg, base_image, base_format, "vm", &pin, err);
    if (rc == 0) {
        rc = hd_chain_verify(dst, &pin, err);
        hd_chain_free(&pin);
    }
    if (rc == 0 && (rc = sha256_file(dst, sum)) < 0)
        hd_fail(err, 500, "", "%s: %s", dst, strerror(-rc));
    if (rc == 0) {
        struct stat st;
        chmod(dst, 0444);
        stat(dst, &st);
        *file_size = (uint64_t)st.st_size;
    }
    return rc;
}

int hd_template_derive(struct hd_res *r, json_t *body, json_t **out, struct hd_err *err)
{
    struct hd_store *st = r->st;
    const char *name, *vmname;
    struct hd_vm *vm;
    struct hd_template *base, *t = NULL;
    char src[4096], dst[4200], sum[65] = "";

    if (derive_req_parse(body, &name, &vmname, err) < 0)
        return -1;
    pthread_mutex_lock(&st->mu);
    if (derive_source(st, name, vmname, &vm, &base, err) == 0)
        t = derived_new(r->cfg, body, name, base, err);
    if (!t) {
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    vm->busy = true;
    hd_vm_path(vm, "disk.qcow2", src, sizeof(src));
    char *base_image = strdup(base->image), *base_format = strdup(base->format);
    pthread_mutex_unlock(&st->mu);

    int rc = delta_copy(r->cfg, name, src, dst, sizeof(dst), err);
    bool made = rc == 0;
    if (rc == 0)
        rc = delta_check(r->cfg, dst, base_image, base_format, sum, &t->file_size, err);
    free(base_image);
    free(base_format);
    t->image = strdup(dst);
    t->sha256 = strdup(sum);
    t->created = hd_now_ms();

    pthread_mutex_lock(&st->mu);
    vm = hd_vm_find(st, vmname);
    if (vm)
        vm->busy = false;
    if (rc == 0)
        rc = template_save_new(st, t, err);
    if (rc < 0) {
        pthread_mutex_unlock(&st->mu);
        if (made)
            unlink(dst);
        hd_template_free(t);
        return -1;
    }
    template_link(st, t, out);
    pthread_mutex_unlock(&st->mu);
    hd_event(&st->ev, "template.added", name,
             json_pack("{ss ss}", "parent", t->parent, "from_vm", vmname));
    return 0;
}
