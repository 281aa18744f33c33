/* Parent images across a cluster's nodes (docs/cluster.md "Parent
 * images"). A node that holds a template publishes it in etcd, on its
 * lease: /herd/images/NAME/NODE -> its definition, each file (image,
 * kernel, initrd) by SHA-256 and size, and where the node serves them
 * (cluster.address, cluster.image_port). It serves those files, and
 * nothing else, read-only by digest over HTTP (GET
 * /v1/images/sha256/HEX, single byte ranges).
 *
 * A node asked to create a guest of a template it does not hold fetches
 * the files once (one worker thread: one copy at a time, every guest of
 * the template waits for it) into STATE/templates/copies/HEX, resuming a
 * partial copy with a byte range, hashing while it writes; a copy whose
 * bytes do not hash to the published digest is deleted and refused. The
 * verified files are then registered as the node's own template (template
 * add: its checks), which the node publishes in turn. A copy is checked
 * again before each guest is made of it when its inode, size, mtime or
 * ctime changed since it was verified (and once after herdd starts); one
 * that fails is deleted and fetched again.
 *
 * Everything from etcd or a peer is hostile (herd/image_copy.h): sizes are
 * bounded, digests checked, and no path is taken from the network. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "herd/etcd.h"
#include "herd/image_copy.h"
#include "herdd.h"

#define TICK_MS 1000          /* publishing, at most this often */
#define RETRY_MS 10000        /* a failed copy is not tried again sooner */
#define LISTEN_RETRY_MS 5000  /* the image port, when it could not be bound */
#define PROGRESS_MS 2000      /* image.progress events, at most this often */
#define SERVE_CONNS 32        /* connections the image port takes at once */
#define SERVE_CONNS_PER_IP 8
#define SERVE_TIMEOUT_S 60    /* an idle connection is closed after this */
#define STALL_S 30            /* a transfer that moves no byte this long ends */
#define DISK_SPARE (256ULL << 20) /* a copy leaves this much of the disk free */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };
static const char *const job_states[] = {"queued", "fetching", "done", "failed"};

/* One template this node makes sure of: fetched, or its copy checked. */
struct job {
    char name[HD_NAME_MAX + 1];
    enum job_state state;
    const char *file;          /* the file in progress ("image"), or NULL */
    char from[HD_NAME_MAX + 1];
    uint64_t done, total;      /* bytes of the file in progress */
    int64_t ended_ms;
    bool refused;              /* failed for good (wrong bytes, a copy template add
                                * refuses): its guests are in error; else they wait */
    char error[512];
    struct job *next;
};

struct hd_images {
    struct hd_cluster *cl;
    struct hd_store *st;
    struct etcd *etcd;             /* the worker's and the publisher's */
    struct MHD_Daemon *mhd;
    char copies[4200];             /* STATE/templates/copies */
    pthread_t pub_thread, fetch_thread;
    bool pub_running, fetch_running;
    pthread_mutex_t mu;            /* what follows */
    pthread_cond_t cond;
    bool stop;
    struct job *jobs;
    json_t *served;                /* hex -> path: what the image port may send */
    json_t *known;                 /* path -> {id: {dev, ino, size, mtime, ctime}, sha256}:
                                    * the file hashed (or verified) with that identity */
    json_t *published;             /* template -> the entry text written */
    json_t *chains;                /* image path -> {id, one}: a qcow2 without backing file */
    int64_t pub_lease;             /* the lease those entries are on */
    int64_t listen_tried_ms;
    char serve_error[256];
    uint64_t requests, served_bytes, fetched, fetched_bytes;
};

static int64_t now_ms(void)
{
    return hd_mono_ns() / 1000000;
}

static bool stopping(struct hd_images *img)
{
    pthread_mutex_lock(&img->mu);
    bool s = img->stop;
    pthread_mutex_unlock(&img->mu);
    return s || img->st->stopping;
}

/* ---- file identities: bytes known to hash to a digest -------------------- */

static json_t *identity(const struct stat *s)
{
    return json_pack("{sI sI sI sI sI}", "dev", (json_int_t)s->st_dev, "ino",
                     (json_int_t)s->st_ino, "size", (json_int_t)s->st_size, "mtime",
                     (json_int_t)(s->st_mtim.tv_sec * 1000000000LL + s->st_mtim.tv_nsec),
                     "ctime",
                     (json_int_t)(s->st_ctim.tv_sec * 1000000000LL + s->st_ctim.tv_nsec));
}

/* img->mu held: the digest known for path's bytes as they are now (its
 * stat s), or NULL. */
static const char *known_digest(struct hd_images *img, const char *path, const struct stat *s)
{
    json_t *k = json_object_get(img->known, path), *id = identity(s);
    bool same = k && json_equal(json_object_get(k, "id"), id);

    json_decref(id);
    return same ? json_string_value(json_object_get(k, "sha256")) : NULL;
}

/* path's bytes, with the identity s had before they were read, hash to hex */
static void know(struct hd_images *img, const char *path, const struct stat *s, const char *hex)
{
    json_t *k = json_pack("{so ss}", "id", identity(s), "sha256", hex);

    pthread_mutex_lock(&img->mu);
    json_object_set_new(img->known, path, k);
    pthread_mutex_unlock(&img->mu);
}

/* SHA-256 of the file at path into hex (65), from what is known when its
 * identity did not change, else by reading it: 0 or -errno. */
static int file_digest(struct hd_images *img, const char *path, char hex[65], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat s;
    int rc;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    *size = (uint64_t)s.st_size;
    pthread_mutex_lock(&img->mu);
    const char *k = known_digest(img, path, &s);
    if (k)
        memcpy(hex, k, 65);
    pthread_mutex_unlock(&img->mu);
    if (k) {
        close(fd);
        return 0;
    }
    rc = image_hash_fd(fd, hex);
    close(fd);
    if (rc == 0)
        know(img, path, &s, hex);
    return rc;
}

/* ---- publishing --------------------------------------------------------------- */

static bool in_copies(const struct hd_images *img, const char *path)
{
    size_t n = strlen(img->copies);
    return path && !strncmp(path, img->copies, n) && path[n] == '/';
}

/* A template's files as this node holds them: the image's digest is the
 * one recorded when it was added (or its copy verified); a kernel or
 * initrd is hashed (once for each identity of the file), a copy's is its
 * name. */
struct held {
    char name[HD_NAME_MAX + 1];
    char *path[IMAGE_COPY_FILES];
    struct image_def def;
};

static void held_free(struct held *h)
{
    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        free(h->path[i]);
    image_def_free(&h->def);
}

/* Store lock held: the base templates (no delta, not warm) as held. */
static void templates_held(struct hd_images *img, struct held **out, size_t *n)
{
    size_t cap = 0;
    for (struct hd_template *t = img->st->templates; t; t = t->next)
        cap++;
    *out = calloc(cap + 1, sizeof(**out));
    *n = 0;
    for (struct hd_template *t = img->st->templates; t && *out; t = t->next) {
        if (t->parent[0] || t->snapshot[0] || !image_sha256_ok(t->sha256))
            continue;
        struct held *h = &(*out)[(*n)++];
        snprintf(h->name, sizeof(h->name), "%s", t->name);
        h->path[0] = strdup(t->image);
        h->path[1] = strdup(t->kernel);
        h->path[2] = t->initrd ? strdup(t->initrd) : NULL;
        struct image_def *d = &h->def;
        snprintf(d->name, sizeof(d->name), "%s", t->name);
        snprintf(d->format, sizeof(d->format), "%s", t->format);
        d->cmdline = strdup(t->cmdline);
        d->ready_line = strdup(t->ready_line);
        d->cpus = t->cpus;
        d->mem = t->mem;
        d->nics = json_deep_copy(t->nics);
        d->file[0].present = true;
        memcpy(d->file[0].sha256, t->sha256, 65);
        d->file[0].size = t->file_size;
    }
}

/* Each file's digest and size; false when one cannot be read or a copy no
 * longer hashes to its name (hashed again only when its identity changed,
 * and once after herdd starts): that template is not published. */
static bool held_files(struct hd_images *img, struct held *h)
{
    for (int i = 0; i < IMAGE_COPY_FILES; i++) {
        struct image_file *f = &h->def.file[i];
        const char *p = h->path[i];
        char got[65];
        uint64_t size;
        if (!p || (i == IMAGE_FILE_IMAGE && !in_copies(img, p)))
            continue; /* the image's digest and size: template add's */
        if (file_digest(img, p, got, &size) < 0 || !size)
            return false;
        if (in_copies(img, p) && strcmp(got, strrchr(p, '/') + 1))
            return false;
        memcpy(f->sha256, got, 65);
        f->size = size;
        f->present = true;
    }
    return h->def.file[IMAGE_FILE_IMAGE].present && h->def.file[IMAGE_FILE_KERNEL].present;
}

/* A qcow2 image that names a backing file is not published: its chain is
 * this node's paths. Opened again only when the file changed. */
static bool standalone(struct hd_images *img, const struct held *h)
{
    struct stat s;

    if (strcmp(h->def.format, "qcow2"))
        return true;
    if (stat(h->path[0], &s) < 0)
        return false;
    json_t *id = identity(&s);
    pthread_mutex_lock(&img->mu);
    json_t *c = json_object_get(img->chains, h->path[0]);
    bool hit = c && json_equal(json_object_get(c, "id"), id);
    bool one = hit && json_is_true(json_object_get(c, "one"));
    pthread_mutex_unlock(&img->mu);
    if (!hit) {
        struct hd_chain chain;
        struct hd_err err;
        int rc = hd_chain_of(img->cl->cfg, h->path[0], "qcow2", "image", &chain, &err);
        one = rc == 0 && chain.n == 1;
        if (rc == 0)
            hd_chain_free(&chain);
        pthread_mutex_lock(&img->mu);
        json_object_set_new(img->chains, h->path[0], json_pack("{sO sb}", "id", id, "one", one));
        pthread_mutex_unlock(&img->mu);
    }
    json_decref(id);
    return one;
}

static void entry_key(char *out, size_t size, const char *tmpl, const char *node)
{
    snprintf(out, size, "%s%s/%s", HD_CLUSTER_IMAGES, tmpl, node);
}

/* Writes the entries that changed (all of them on a new lease), deletes
 * those of templates gone. */
static void publish_write(struct hd_images *img, json_t *texts, int64_t lease)
{
    const char *k;
    json_t *v;
    void *tmp;
    char key[256];
    struct herd_err err;

    if (lease != img->pub_lease) {
        json_object_clear(img->published);
        img->pub_lease = lease;
    }
    json_object_foreach(texts, k, v) {
        const char *was = json_string_value(json_object_get(img->published, k));
        const char *text = json_string_value(v);
        if (was && !strcmp(was, text))
            continue;
        entry_key(key, sizeof(key), k, img->cl->cfg->node_name);
        if (etcd_put(img->etcd, key, text, strlen(text), lease, NULL, &err) == 0)
            json_object_set(img->published, k, v);
    }
    json_object_foreach_safe(img->published, tmp, k, v) {
        if (json_object_get(texts, k))
            continue;
        entry_key(key, sizeof(key), k, img->cl->cfg->node_name);
        if (etcd_delete(img->etcd, key, false, NULL, &err) == 0)
            json_object_del(img->published, k);
    }
}

static void publish(struct hd_images *img)
{
    const struct hd_config *cfg = img->cl->cfg;
    struct held *hs = NULL;
    size_t n = 0;
    json_t *texts = json_object(), *served = json_object();

    pthread_mutex_lock(&img->cl->mu);
    bool registered = img->cl->registered;
    int64_t lease = img->cl->lease;
    pthread_mutex_unlock(&img->cl->mu);
    pthread_mutex_lock(&img->st->mu);
    templates_held(img, &hs, &n);
    pthread_mutex_unlock(&img->st->mu);
    for (size_t i = 0; i < n; i++) {
        struct held *h = &hs[i];
        snprintf(h->def.node, sizeof(h->def.node), "%s", cfg->node_name);
        snprintf(h->def.address, sizeof(h->def.address), "%s", cfg->cluster_address);
        h->def.port = cfg->image_port;
        if (!held_files(img, h) || !standalone(img, h))
            continue;
        char *text = image_def_text(&h->def);
        if (text)
            json_object_set_new(texts, h->name, json_string(text));
        free(text);
        for (int f = 0; f < IMAGE_COPY_FILES; f++)
            if (h->path[f] && h->def.file[f].present)
                json_object_set_new(served, h->def.file[f].sha256, json_string(h->path[f]));
    }
    for (size_t i = 0; i < n; i++)
        held_free(&hs[i]);
    free(hs);
    pthread_mutex_lock(&img->mu);
    json_decref(img->served);
    img->served = served;
    bool serving = img->mhd != NULL;
    pthread_mutex_unlock(&img->mu);
    if (registered && serving)
        publish_write(img, texts, lease);
    json_decref(texts);
}

/* ---- the image port ------------------------------------------------------------ */

static enum MHD_Result reply_text(struct MHD_Connection *mc, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void peer_of(struct MHD_Connection *mc, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, size, "?");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

/* The file sent from start to end (inclusive); ranged: 206. */
static enum MHD_Result send_file(struct hd_images *img, struct MHD_Connection *mc, int fd,
                                 uint64_t size, uint64_t start, uint64_t end, bool ranged,
                                 const char *hex)
{
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(end - start + 1, fd,
                                                                     start);
    char cr[96], peer[INET6_ADDRSTRLEN + 1];

    if (!r) {
        close(fd);
        return reply_text(mc, 500, "out of memory\n");
    }
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    if (ranged) {
        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, size);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    enum MHD_Result ret = MHD_queue_response(mc, ranged ? 206 : 200, r);
    MHD_destroy_response(r);
    peer_of(mc, peer, sizeof(peer));
    pthread_mutex_lock(&img->mu);
    img->requests++;
    img->served_bytes += end - start + 1;
    pthread_mutex_unlock(&img->mu);
    hd_event(&img->st->ev, "image.served", hex,
             json_pack("{ss ss sI sI sI}", "sha256", hex, "to", peer, "start", (json_int_t)start,
                       "end", (json_int_t)end, "size", (json_int_t)size));
    return ret;
}

/* A copy of another node's file is sent only while it is as it was when it
 * was verified (a node's own template files are sent as they are: the
 * fetching node verifies every byte). */
static bool copy_unchanged(struct hd_images *img, const char *path, const struct stat *s,
                           const char *hex)
{
    if (!in_copies(img, path))
        return true;
    pthread_mutex_lock(&img->mu);
    const char *k = known_digest(img, path, s);
    bool same = k && !strcmp(k, hex);
    pthread_mutex_unlock(&img->mu);
    return same;
}

static enum MHD_Result on_image_request(void *cls, struct MHD_Connection *mc, const char *url,
                                        const char *method, const char *version,
                                        const char *upload, size_t *upload_size, void **con)
{
    struct hd_images *img = cls;
    static const char prefix[] = "/v1/images/sha256/";
    const char *hex = url + sizeof(prefix) - 1;
    char path[4200] = "";
    struct stat s;
    uint64_t start = 0, end;

    if (strcmp(method, "GET"))
        return reply_text(mc, 405, "only GET\n");
    if (*upload_size)
        return reply_text(mc, 400, "no body is taken\n");
    if (strncmp(url, prefix, sizeof(prefix) - 1) || !image_sha256_ok(hex))
        return reply_text(mc, 404, "only /v1/images/sha256/HEX\n");
    pthread_mutex_lock(&img->mu);
    const char *p = json_string_value(json_object_get(img->served, hex));
    if (p)
        snprintf(path, sizeof(path), "%s", p);
    pthread_mutex_unlock(&img->mu);
    if (!path[0])
        return reply_text(mc, 404, "no file of that digest here\n");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) || !s.st_size) {
        if (fd >= 0)
            close(fd);
        return reply_text(mc, 404, "no file of that digest here\n");
    }
    if (!copy_unchanged(img, path, &s, hex)) {
        close(fd);
        return reply_text(mc, 503, "this copy changed since it was verified\n");
    }
    end = (uint64_t)s.st_size - 1;
    const char *range = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Range");
    int rc = range ? image_range_parse(range, (uint64_t)s.st_size, &start, &end) : 0;
    if (rc < 0) {
        close(fd);
        return reply_text(mc, rc == -ERANGE ? 416 : 400,
                          rc == -ERANGE ? "range not satisfiable\n"
                                        : "Range: bytes=START- or bytes=START-END\n");
    }
    return send_file(img, mc, fd, (uint64_t)s.st_size, start, end, range != NULL, hex);
}

/* The image port on cluster.address; an error in status (and the log,
 * once) when it cannot be bound, tried again later. */
static void listen_images(struct hd_images *img)
{
    const struct hd_config *cfg = img->cl->cfg;
    struct sockaddr_in6 a6 = {0};
    struct sockaddr_in a4 = {0};
    const struct sockaddr *sa = (const struct sockaddr *)&a4;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL;

    if (!cfg->image_port || img->mhd)
        return;
    img->listen_tried_ms = now_ms();
    if (inet_pton(AF_INET, cfg->cluster_address, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->image_port);
    } else {
        inet_pton(AF_INET6, cfg->cluster_address, &a6.sin6_addr);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->image_port);
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->image_port, NULL, NULL, on_image_request, img,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_CONNS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)SERVE_CONNS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
    pthread_mutex_lock(&img->mu);
    img->mhd = d;
    bool first = !img->serve_error[0];
    if (!d)
        snprintf(img->serve_error, sizeof(img->serve_error), "cannot listen on %s port %u "
                 "(taken?): this node serves no template files; trying again every %d s",
                 cfg->cluster_address, cfg->image_port, LISTEN_RETRY_MS / 1000);
    else
        img->serve_error[0] = 0;
    pthread_mutex_unlock(&img->mu);
    if (!d && first)
        fprintf(stderr, "herdd: cluster: images: %s\n", img->serve_error);
}

static void *publish_main(void *arg)
{
    struct hd_images *img = arg;

    while (!stopping(img)) {
        if (!img->mhd && now_ms() - img->listen_tried_ms >= LISTEN_RETRY_MS)
            listen_images(img);
        publish(img);
        for (int t = 0; t < TICK_MS && !stopping(img); t += 100)
            nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    return NULL;
}

/* ---- holders ------------------------------------------------------------------- */

/* The entries other nodes publish for template name (valid ones, by node
 * name), at most max of them. */
static size_t holders(struct hd_images *img, const char *name, struct image_def *out,
                      size_t max, char *why, size_t why_size)
{
    char prefix[256];
    struct etcd_kvs kvs;
    struct herd_err err;
    size_t n = 0;

    snprintf(prefix, sizeof(prefix), "%s%s/", HD_CLUSTER_IMAGES, name);
    if (etcd_range_prefix(img->etcd, prefix, &kvs, &err) < 0) {
        snprintf(why, why_size, "etcd: %s", err.msg);
        return 0;
    }
    snprintf(why, why_size, "no node publishes template '%s' (%s)", name, prefix);
    for (size_t i = 0; i < kvs.n && n < max; i++) {
        const char *node = kvs.kv[i].key + strlen(prefix);
        if (!strcmp(node, img->cl->cfg->node_name))
            continue;
        if (image_def_parse(kvs.kv[i].value, kvs.kv[i].value_len, name, node, &out[n],
                            &err) < 0) {
            snprintf(why, why_size, "the entry of node '%.63s' for template '%s' is refused: "
                     "%s", node, name, err.msg);
            fprintf(stderr, "herdd: cluster: images: %s\n", why);
            continue;
        }
        n++;
    }
    etcd_kvs_free(&kvs);
    return n;
}

/* ---- fetching one file ------------------------------------------------------------ */

struct xfer {
    struct hd_images *img;
    struct job *job;
    CURL *curl;
    const struct image_def *from;
    const struct image_file *f;
    int fd;
    EVP_MD_CTX *ctx;
    uint64_t off;             /* bytes in the partial copy (and hashed) */
    uint64_t resumed;         /* where this transfer began */
    bool checked;             /* the reply's status and range were checked */
    bool bad_peer;            /* the peer's file is not the one it publishes (its size) */
    char range_hdr[128];
    char error[256];
    int64_t progress_ms;
};

static void job_progress(struct xfer *x)
{
    pthread_mutex_lock(&x->img->mu);
    x->job->done = x->off;
    pthread_mutex_unlock(&x->img->mu);
    int64_t t = now_ms();
    if (t - x->progress_ms < PROGRESS_MS)
        return;
    x->progress_ms = t;
    hd_event(&x->img->st->ev, "image.progress", x->job->name,
             json_pack("{ss ss ss sI sI}", "template", x->job->name, "file", x->job->file,
                       "from", x->from->node, "done", (json_int_t)x->off, "total",
                       (json_int_t)x->f->size));
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;

    if (len > 14 && !strncasecmp(buf, "Content-Range:", 14)) {
        size_t k = len - 14 < sizeof(x->range_hdr) - 1 ? len - 14 : sizeof(x->range_hdr) - 1;
        memcpy(x->range_hdr, buf + 14, k);
        x->range_hdr[k] = 0;
        char *s = x->range_hdr;
        while (*s == ' ')
            memmove(s, s + 1, strlen(s));
    }
    return len;
}

/* The reply fits the request: 206 from x->off, or 200 (from 0: the
 * partial copy is started again). */
static bool reply_ok(struct xfer *x, CURL *c)
{
    long code = 0;
    uint64_t a, b, total;

    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
        if (x->off && ftruncate(x->fd, 0) < 0)
            return false;
        if (x->off) {
            EVP_DigestInit_ex(x->ctx, EVP_sha256(), NULL);
            x->off = x->resumed = 0;
        }
        return true;
    }
    if (code == 206 && image_content_range_parse(x->range_hdr, &a, &b, &total) == 0 &&
        a == x->off && total == x->f->size)
        return true;
    x->bad_peer = code == 416; /* its file is shorter than it publishes */
    if (code == 206)
        snprintf(x->error, sizeof(x->error), "the reply's range (%s) is not the one asked for "
                 "(from byte %" PRIu64 " of %" PRIu64 ")", x->range_hdr, x->off, x->f->size);
    else
        snprintf(x->error, sizeof(x->error), "HTTP status %ld", code);
    return false;
}

static bool all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The reply's bytes into the partial copy; zeros are not written (the copy
 * stays as sparse as the parent: partial_finish sets its size). */
static size_t on_data(char *buf, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;

    if (!x->checked) {
        x->checked = true;
        if (!reply_ok(x, x->curl))
            return 0;
    }
    if (x->off + len > x->f->size) {
        snprintf(x->error, sizeof(x->error), "the peer sends more than the %" PRIu64
                 " bytes published", x->f->size);
        x->bad_peer = true;
        return 0;
    }
    for (size_t done = all_zero(buf, len) ? len : 0; done < len;) {
        ssize_t w = pwrite(x->fd, buf + done, len - done, (off_t)(x->off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(x->error, sizeof(x->error), "writing the copy: %s",
                     strerror(w < 0 ? errno : EIO));
            return 0;
        }
        done += (size_t)w;
    }
    EVP_DigestUpdate(x->ctx, buf, len);
    x->off += len;
    job_progress(x);
    return len;
}

/* herdd stopping ends a transfer (the partial copy stays: resumed later) */
static int on_xfer(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = arg;

    if (!stopping(x->img))
        return 0;
    snprintf(x->error, sizeof(x->error), "herdd is stopping");
    return 1;
}

static void url_of(const struct image_def *d, const char *hex, char *out, size_t size)
{
    bool v6 = strchr(d->address, ':') != NULL;
    snprintf(out, size, "http://%s%s%s:%u/v1/images/sha256/%s", v6 ? "[" : "", d->address,
             v6 ? "]" : "", d->port, hex);
}

/* The transfer of what the partial copy lacks; x->error says why not. */
static int transfer(struct xfer *x)
{
    char url[256], range[48], iface[64];
    CURL *c = curl_easy_init();

    if (!c) {
        snprintf(x->error, sizeof(x->error), "out of memory (curl)");
        return -ENOMEM;
    }
    url_of(x->from, x->f->sha256, url, sizeof(url));
    /* from this node's underlay address, as the peer sees nodes */
    snprintf(iface, sizeof(iface), "host!%s", x->img->cl->cfg->cluster_address);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)STALL_S);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    if (x->img->cl->cfg->fetch_rate)
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE,
                         (curl_off_t)x->img->cl->cfg->fetch_rate);
    if (x->off) {
        snprintf(range, sizeof(range), "%" PRIu64 "-", x->off);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    x->checked = false; /* the reply is checked at its first bytes (reply_ok) */
    x->range_hdr[0] = 0;
    x->curl = c;
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !x->error[0])
        snprintf(x->error, sizeof(x->error), "%s", curl_easy_strerror(rc));
    if (rc == CURLE_OK && !x->checked && x->f->size > x->off && reply_ok(x, c)) {
        x->bad_peer = true; /* a whole reply, and empty */
        snprintf(x->error, sizeof(x->error), "the reply has no bytes");
    }
    curl_easy_cleanup(c);
    return x->error[0] ? -EIO : 0;
}

/* The partial copy opened and its bytes hashed: where the transfer
 * resumes (0 when it is longer than the file or cannot be read). */
static int partial_open(struct xfer *x, const char *part)
{
    struct stat s;

    x->fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (x->fd < 0)
        return -errno;
    if (fstat(x->fd, &s) < 0 || !S_ISREG(s.st_mode))
        return -EINVAL;
    uint64_t have = (uint64_t)s.st_size;
    EVP_DigestInit_ex(x->ctx, EVP_sha256(), NULL);
    if (have > x->f->size || image_hash_prefix(x->ctx, x->fd, have) < 0) {
        if (ftruncate(x->fd, 0) < 0)
            return -errno;
        EVP_DigestInit_ex(x->ctx, EVP_sha256(), NULL);
        have = 0;
    }
    x->off = x->resumed = have;
    return 0;
}

static bool disk_has_room(const char *dir, uint64_t bytes)
{
    struct statvfs v;
    return statvfs(dir, &v) < 0 || (uint64_t)v.f_bavail * v.f_frsize >= bytes + DISK_SPARE;
}

/* The partial copy, complete and verified, made the copy (read-only). */
static int partial_finish(struct xfer *x, const char *part, const char *dest, char *why,
                          size_t why_size)
{
    char got[65];
    struct stat s;

    image_hash_hex(x->ctx, got);
    if (strcmp(got, x->f->sha256)) {
        unlink(part);
        snprintf(why, why_size, "its bytes hash to sha256 %s, not the published %s: refused "
                 "(the copy is deleted)", got, x->f->sha256);
        return -EBADMSG;
    }
    if (ftruncate(x->fd, (off_t)x->f->size) < 0 || fsync(x->fd) < 0 ||
        fchmod(x->fd, 0444) < 0 || rename(part, dest) < 0) {
        snprintf(why, why_size, "%s: %s", dest, strerror(errno));
        return -EIO;
    }
    if (stat(dest, &s) == 0)
        know(x->img, dest, &s, x->f->sha256);
    return 0;
}

/* The peer's file is not the size it publishes: the partial copy is
 * deleted (resuming it could never end) and the copy refused. */
static int bad_peer(struct xfer *x, const char *part, char *why, size_t why_size)
{
    unlink(part);
    if (x->error[0])
        snprintf(why, why_size, "%s: refused (the copy is deleted)", x->error);
    else
        snprintf(why, why_size, "its reply ends at byte %" PRIu64 " of the %" PRIu64
                 " published: refused (the copy is deleted)", x->off, x->f->size);
    return -EBADMSG;
}

static void job_file(struct hd_images *img, struct job *job, const char *file,
                     const char *from, uint64_t done, uint64_t total)
{
    pthread_mutex_lock(&img->mu);
    job->file = file;
    snprintf(job->from, sizeof(job->from), "%s", from);
    job->done = done;
    job->total = total;
    pthread_mutex_unlock(&img->mu);
}

/* File i of template job->name fetched from holder d into dest; why says
 * why not (the partial copy stays, but for wrong bytes). */
static int fetch_file(struct hd_images *img, struct job *job, const struct image_def *d, int i,
                      const char *dest, char *why, size_t why_size)
{
    const struct image_file *f = &d->file[i];
    struct xfer x = {.img = img, .job = job, .from = d, .f = f, .fd = -1};
    char part[4300], msg[400] = "", size_s[32];
    int64_t t0 = now_ms();
    int rc;

    snprintf(part, sizeof(part), "%s.part", dest);
    image_size_str(f->size, size_s, sizeof(size_s));
    if (!(x.ctx = EVP_MD_CTX_new()))
        return -ENOMEM;
    rc = partial_open(&x, part);
    if (rc < 0)
        snprintf(msg, sizeof(msg), "%s: %s", part, strerror(-rc));
    else if (!disk_has_room(img->copies, f->size - x.off))
        snprintf(msg, sizeof(msg), "%s has not %s free (and 256 MiB to spare)", img->copies,
                 size_s), rc = -ENOSPC;
    if (rc == 0) {
        job_file(img, job, image_file_names[i], d->node, x.off, f->size);
        hd_event(&img->st->ev, "image.fetching", job->name,
                 json_pack("{ss ss ss sI ss ss sI}", "template", job->name, "file",
                           image_file_names[i], "sha256", f->sha256, "size", (json_int_t)f->size,
                           "from", d->node, "address", d->address, "offset",
                           (json_int_t)x.off));
        if (x.off < f->size && transfer(&x) < 0 && !x.bad_peer)
            snprintf(msg, sizeof(msg), "%s (%" PRIu64 " of %" PRIu64 " bytes copied: resumed "
                     "from there later)", x.error, x.off, f->size), rc = -EIO;
        else if (x.bad_peer || x.off != f->size) /* a whole reply, but not the size published */
            rc = bad_peer(&x, part, msg, sizeof(msg));
        else
            rc = partial_finish(&x, part, dest, msg, sizeof(msg));
    }
    if (x.fd >= 0)
        close(x.fd);
    EVP_MD_CTX_free(x.ctx);
    if (rc < 0) {
        snprintf(why, why_size, "template %s: %s (sha256 %.12s, %s) from node %s (%s port %u): "
                 "%s", job->name, image_file_names[i], f->sha256, size_s, d->node, d->address,
                 d->port, msg);
        hd_event(&img->st->ev, rc == -EBADMSG ? "image.refused" : "image.fetch_failed",
                 job->name, json_pack("{ss ss ss ss ss}", "template", job->name, "file",
                                      image_file_names[i], "sha256", f->sha256, "from", d->node,
                                      "error", msg));
        fprintf(stderr, "herdd: cluster: images: %s\n", why);
        return rc;
    }
    fprintf(stderr, "herdd: cluster: images: template %s: %s (sha256 %.12s, %s) fetched from "
            "node %s and verified (resumed at byte %" PRIu64 ")\n", job->name,
            image_file_names[i], f->sha256, size_s, d->node, x.resumed);
    pthread_mutex_lock(&img->mu);
    img->fetched++;
    img->fetched_bytes += f->size - x.resumed;
    pthread_mutex_unlock(&img->mu);
    hd_event(&img->st->ev, "image.fetched", job->name,
             json_pack("{ss ss ss sI ss sI sI sI}", "template", job->name, "file",
                       image_file_names[i], "sha256", f->sha256, "size", (json_int_t)f->size,
                       "from", d->node, "resumed_from", (json_int_t)x.resumed, "bytes",
                       (json_int_t)(f->size - x.resumed), "ms", (json_int_t)(now_ms() - t0)));
    return 0;
}

/* ---- making sure of a template -------------------------------------------------- */

/* The copy at dest holds the bytes of digest hex: 0; 1 when it is absent
 * or was not (then deleted, with an image.corrupt event). */
static int copy_check(struct hd_images *img, struct job *job, const char *file,
                      const char *dest, const char *hex)
{
    char got[65];
    uint64_t size;
    struct stat s;

    if (lstat(dest, &s) < 0)
        return 1;
    job_file(img, job, file, "", 0, (uint64_t)s.st_size);
    int rc = file_digest(img, dest, got, &size);
    if (rc == 0 && !strcmp(got, hex))
        return 0;
    unlink(dest);
    pthread_mutex_lock(&img->mu);
    json_object_del(img->known, dest);
    pthread_mutex_unlock(&img->mu);
    fprintf(stderr, "herdd: cluster: images: the copy %s (%s of template %s) %s: deleted, "
            "fetched again\n", dest, file, job->name,
            rc < 0 ? strerror(-rc) : "does not hash to its name");
    hd_event(&img->st->ev, "image.corrupt", job->name,
             json_pack("{ss ss ss ss ss}", "template", job->name, "file", file, "path", dest,
                       "sha256", hex, "found", rc < 0 ? strerror(-rc) : got));
    return 1;
}

/* What a template is made of, as this node needs it: each file's digest
 * (and size, from the entry it is fetched by). */
struct want {
    char hex[IMAGE_COPY_FILES][65];   /* "" when the template has no such file */
    bool own;                         /* the node's own template: nothing to do */
    bool registered;                  /* a copy registered already */
};

static void want_of(struct hd_images *img, const char *name, const struct image_def *ref,
                    struct want *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_lock(&img->st->mu);
    struct hd_template *t = hd_template_find(img->st, name);
    if (t && !in_copies(img, t->image))
        w->own = true;
    else if (t) {
        const char *p[IMAGE_COPY_FILES] = {t->image, t->kernel, t->initrd};
        for (int i = 0; i < IMAGE_COPY_FILES; i++)
            if (in_copies(img, p[i]))
                snprintf(w->hex[i], 65, "%s", strrchr(p[i], '/') + 1);
        w->registered = true;
    }
    pthread_mutex_unlock(&img->st->mu);
    if (t || !ref)
        return;
    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        if (ref->file[i].present)
            memcpy(w->hex[i], ref->file[i].sha256, 65);
}

static void copy_path(const struct hd_images *img, const char *hex, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", img->copies, hex);
}

/* File i (digest hex) from the first holder that has it. */
static int fetch_any(struct hd_images *img, struct job *job, const struct image_def *defs,
                     size_t n, int i, const char *hex, char *why, size_t why_size)
{
    char dest[4300];
    int rc = -ENOENT;

    copy_path(img, hex, dest, sizeof(dest));
    snprintf(why, why_size, "template %s: no node publishes its %s (sha256 %s)", job->name,
             image_file_names[i], hex);
    for (size_t k = 0; k < n && rc < 0 && !stopping(img); k++)
        if (defs[k].file[i].present && !strcmp(defs[k].file[i].sha256, hex))
            rc = fetch_file(img, job, &defs[k], i, dest, why, why_size);
    return rc;
}

/* The copies registered as this node's template (template add checks
 * them as it checks any); a qcow2 image naming a backing file is refused. */
static int register_copy(struct hd_images *img, const struct image_def *ref,
                         const struct want *w, char *why, size_t why_size)
{
    char path[IMAGE_COPY_FILES][4300];
    struct hd_err err = {0};
    json_t *out = NULL;

    for (int i = 0; i < IMAGE_COPY_FILES; i++)
        copy_path(img, w->hex[i], path[i], sizeof(path[i]));
    if (!strcmp(ref->format, "qcow2")) {
        struct hd_chain chain;
        if (hd_chain_of(img->cl->cfg, path[0], "qcow2", "image", &chain, &err) < 0) {
            snprintf(why, why_size, "template %s: its image: %s", ref->name, err.msg);
            return -EINVAL;
        }
        bool one = chain.n == 1;
        hd_chain_free(&chain);
        if (!one) {
            snprintf(why, why_size, "template %s: its qcow2 image names a backing file: "
                     "refused", ref->name);
            return -EINVAL;
        }
    }
    json_t *body = json_pack("{ss ss ss ss ss ss si sI sO}", "name", ref->name, "image", path[0],
                             "format", ref->format, "kernel", path[1], "cmdline", ref->cmdline,
                             "ready_line", ref->ready_line, "cpus", (int)ref->cpus, "mem",
                             (json_int_t)ref->mem, "nics", ref->nics);
    if (w->hex[2][0])
        json_object_set_new(body, "initrd", json_string(path[2]));
    int rc = hd_template_add(img->cl->res, body, &out, &err);
    json_decref(body);
    json_decref(out);
    if (rc < 0 && err.status != 409) {
        snprintf(why, why_size, "template %s: its copy is refused by template add: %s%s%s",
                 ref->name, err.msg, err.lib.field[0] ? " (field " : "",
                 err.lib.field[0] ? err.lib.field : "");
        if (err.lib.field[0])
            strncat(why, ")", why_size - strlen(why) - 1);
        return -EINVAL;
    }
    return 0;
}

#define HOLDERS_MAX 16

static int ensure(struct hd_images *img, struct job *job, char *why, size_t why_size)
{
    struct image_def defs[HOLDERS_MAX];
    size_t n = holders(img, job->name, defs, HOLDERS_MAX, why, why_size);
    struct want w;
    int rc = 0;

    want_of(img, job->name, n ? &defs[0] : NULL, &w);
    if (!w.own && !w.registered && !n)
        rc = -ENOENT; /* why: no holder, or etcd's error */
    for (int i = 0; !w.own && rc == 0 && i < IMAGE_COPY_FILES; i++) {
        char dest[4300];
        if (!w.hex[i][0])
            continue;
        copy_path(img, w.hex[i], dest, sizeof(dest));
        if (copy_check(img, job, image_file_names[i], dest, w.hex[i]) > 0)
            rc = fetch_any(img, job, defs, n, i, w.hex[i], why, why_size);
    }
    if (rc == 0 && !w.own && !w.registered)
        rc = register_copy(img, &defs[0], &w, why, why_size);
    for (size_t k = 0; k < n; k++)
        image_def_free(&defs[k]);
    return rc;
}

static struct job *job_find(struct hd_images *img, const char *name)
{
    for (struct job *j = img->jobs; j; j = j->next)
        if (!strcmp(j->name, name))
            return j;
    return NULL;
}

static struct job *job_next(struct hd_images *img)
{
    for (struct job *j = img->jobs; j; j = j->next)
        if (j->state == JOB_QUEUED)
            return j;
    return NULL;
}

/* The worker: one template at a time (jobs are never freed before stop:
 * one per template name this node was asked for). */
static void *fetch_main(void *arg)
{
    struct hd_images *img = arg;
    char why[1024];

    while (!stopping(img)) {
        pthread_mutex_lock(&img->mu);
        struct job *j = job_next(img);
        if (!j) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&img->cond, &img->mu, &ts);
            pthread_mutex_unlock(&img->mu);
            continue;
        }
        j->state = JOB_RUNNING;
        j->error[0] = 0;
        pthread_mutex_unlock(&img->mu);
        why[0] = 0;
        int rc = ensure(img, j, why, sizeof(why));
        pthread_mutex_lock(&img->mu);
        j->state = rc < 0 ? JOB_FAILED : JOB_DONE;
        j->refused = rc == -EBADMSG || rc == -EINVAL;
        j->ended_ms = now_ms();
        j->file = NULL;
        snprintf(j->error, sizeof(j->error), "%s", rc < 0 ? why : "");
        pthread_mutex_unlock(&img->mu);
        if (rc < 0)
            hd_event(&img->st->ev, "image.failed", j->name,
                     json_pack("{ss ss}", "template", j->name, "error", why));
    }
    return NULL;
}

/* ---- what the reconciler asks --------------------------------------------------- */

/* img->mu held: every file of a copy still has the identity it was
 * verified with. */
static bool copy_verified(struct hd_images *img, char paths[][4300], int n)
{
    for (int i = 0; i < n; i++) {
        struct stat s;
        const char *k;
        if (!paths[i][0])
            continue;
        if (stat(paths[i], &s) < 0 || !(k = known_digest(img, paths[i], &s)) ||
            strcmp(k, strrchr(paths[i], '/') + 1))
            return false;
    }
    return true;
}

static void job_note(const struct job *j, char *note, size_t size)
{
    char done[32], total[32];

    image_size_str(j->done, done, sizeof(done));
    image_size_str(j->total, total, sizeof(total));
    if (j->state == JOB_QUEUED)
        snprintf(note, size, "waiting for template %s: its copy is queued", j->name);
    else if (!j->file)
        snprintf(note, size, "waiting for template %s: looking for a node that has it",
                 j->name);
    else if (!j->from[0])
        snprintf(note, size, "waiting for template %s: checking its copy of the %s (%s)",
                 j->name, j->file, total);
    else
        snprintf(note, size, "waiting for template %s: fetching the %s from %s, %s of %s",
                 j->name, j->file, j->from, done, total);
}

int hd_images_ready(struct hd_cluster *cl, const char *tmpl, char *note, size_t note_size,
                    struct hd_err *err)
{
    struct hd_images *img = cl->img;
    char paths[IMAGE_COPY_FILES][4300] = {"", "", ""};
    bool found = false, own = false;

    if (!img || !hd_name_ok(tmpl)) /* (an assignment's: vm create refuses a bad name) */
        return 0;
    pthread_mutex_lock(&img->st->mu);
    struct hd_template *t = hd_template_find(img->st, tmpl);
    if (t) {
        const char *p[IMAGE_COPY_FILES] = {t->image, t->kernel, t->initrd};
        found = true;
        own = !in_copies(img, t->image);
        for (int i = 0; i < IMAGE_COPY_FILES; i++)
            if (in_copies(img, p[i]))
                snprintf(paths[i], sizeof(paths[i]), "%s", p[i]);
    }
    pthread_mutex_unlock(&img->st->mu);
    if (own)
        return 0;
    pthread_mutex_lock(&img->mu);
    struct job *j = job_find(img, tmpl);
    int rc = 1;
    if (j && (j->state == JOB_QUEUED || j->state == JOB_RUNNING)) {
        job_note(j, note, note_size);
    } else if (j && j->state == JOB_FAILED && now_ms() - j->ended_ms < RETRY_MS) {
        if (j->refused)
            rc = hd_fail(err, 502, "template", "%s", j->error);
        else
            snprintf(note, note_size, "waiting for template %s: %s; trying again within %d s",
                     tmpl, j->error, RETRY_MS / 1000);
    } else if (found && copy_verified(img, paths, IMAGE_COPY_FILES)) {
        rc = 0;
    } else if (j || (j = calloc(1, sizeof(*j)))) {
        if (!j->name[0]) {
            snprintf(j->name, sizeof(j->name), "%s", tmpl);
            j->next = img->jobs;
            img->jobs = j;
        }
        j->state = JOB_QUEUED;
        pthread_cond_broadcast(&img->cond);
        job_note(j, note, note_size);
    } else {
        rc = hd_fail(err, 500, "", "out of memory");
    }
    pthread_mutex_unlock(&img->mu);
    return rc;
}

/* ---- placement: what the published templates cost ---------------------------- */

json_t *hd_images_catalog(struct etcd *e)
{
    struct etcd_kvs kvs;
    struct herd_err err;
    json_t *cat = json_object();
    size_t pl = strlen(HD_CLUSTER_IMAGES);

    if (etcd_range_prefix(e, HD_CLUSTER_IMAGES, &kvs, &err) < 0)
        return cat;
    for (size_t i = 0; i < kvs.n; i++) {
        const char *rest = kvs.kv[i].key + pl, *slash = strchr(rest, '/');
        char name[HD_NAME_MAX + 1];
        struct image_def d;
        if (!slash || slash == rest || (size_t)(slash - rest) > HD_NAME_MAX)
            continue;
        memcpy(name, rest, (size_t)(slash - rest));
        name[slash - rest] = 0;
        if (json_object_get(cat, name) ||
            image_def_parse(kvs.kv[i].value, kvs.kv[i].value_len, name, slash + 1, &d, &err) < 0)
            continue;
        json_object_set_new(cat, name, json_pack("{si sI ss}", "cpus", (int)d.cpus, "mem",
                                                 (json_int_t)d.mem, "from", d.node));
        image_def_free(&d);
    }
    etcd_kvs_free(&kvs);
    return cat;
}

/* ---- status, start, stop ------------------------------------------------------------ */

json_t *hd_images_status(struct hd_cluster *cl)
{
    struct hd_images *img = cl->img;
    json_t *copies = json_array();

    if (!img) {
        json_decref(copies);
        return json_null();
    }
    pthread_mutex_lock(&img->mu);
    for (struct job *j = img->jobs; j; j = j->next) {
        json_t *o = json_pack("{ss ss}", "template", j->name, "state", job_states[j->state]);
        if (j->state == JOB_RUNNING && j->file)
            json_object_update_new(o, json_pack("{ss ss sI sI}", "file", j->file, "from",
                                                j->from, "done", (json_int_t)j->done, "total",
                                                (json_int_t)j->total));
        if (j->state == JOB_FAILED)
            json_object_set_new(o, "error", json_string(j->error));
        json_array_append_new(copies, o);
    }
    json_t *o = json_pack("{si sb ss sI sI sI sI so}", "port", (int)cl->cfg->image_port,
                          "serving", img->mhd != NULL, "serve_error", img->serve_error,
                          "served", (json_int_t)img->requests, "served_bytes",
                          (json_int_t)img->served_bytes, "fetched", (json_int_t)img->fetched,
                          "fetched_bytes", (json_int_t)img->fetched_bytes, "copies", copies);
    pthread_mutex_unlock(&img->mu);
    return o;
}

static int images_etcd(struct hd_images *img)
{
    const struct hd_config *cfg = img->cl->cfg;
    struct herd_err err;
    struct etcd_opts o = {
        .endpoints = (const char *const *)cfg->etcd,
        .n_endpoints = cfg->n_etcd,
        .ca = cfg->etcd_ca,
        .cert = cfg->etcd_cert,
        .key = cfg->etcd_key,
        .timeout_ms = 5000,
        .connect_timeout_ms = 1000,
    };
    return etcd_open(&img->etcd, &o, &err);
}

static void images_free(struct hd_images *img)
{
    while (img->jobs) {
        struct job *j = img->jobs;
        img->jobs = j->next;
        free(j);
    }
    if (img->mhd)
        MHD_stop_daemon(img->mhd);
    etcd_close(img->etcd);
    json_decref(img->served);
    json_decref(img->known);
    json_decref(img->published);
    json_decref(img->chains);
    pthread_mutex_destroy(&img->mu);
    pthread_cond_destroy(&img->cond);
    free(img);
}

int hd_images_start(struct hd_cluster *cl)
{
    struct hd_images *img = calloc(1, sizeof(*img));
    char dir[4200];

    if (!img)
        return -ENOMEM;
    img->cl = cl;
    img->st = cl->res->st;
    pthread_mutex_init(&img->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&img->cond, &ca);
    pthread_condattr_destroy(&ca);
    img->served = json_object();
    img->known = json_object();
    img->published = json_object();
    img->chains = json_object();
    snprintf(dir, sizeof(dir), "%s/templates", cl->cfg->state_dir);
    mkdir(dir, 0755);
    snprintf(img->copies, sizeof(img->copies), "%s/copies", dir);
    mkdir(img->copies, 0755);
    if (images_etcd(img) < 0) {
        images_free(img);
        return -EINVAL;
    }
    listen_images(img);
    cl->img = img;
    img->pub_running = pthread_create(&img->pub_thread, NULL, publish_main, img) == 0;
    img->fetch_running = pthread_create(&img->fetch_thread, NULL, fetch_main, img) == 0;
    return img->pub_running && img->fetch_running ? 0 : -EAGAIN;
}

void hd_images_stop(struct hd_cluster *cl)
{
    struct hd_images *img = cl->img;

    if (!img)
        return;
    pthread_mutex_lock(&img->mu);
    img->stop = true;
    pthread_cond_broadcast(&img->cond);
    pthread_mutex_unlock(&img->mu);
    if (img->pub_running)
        pthread_join(img->pub_thread, NULL);
    if (img->fetch_running)
        pthread_join(img->fetch_thread, NULL);
    cl->img = NULL;
    images_free(img);
}
