/* A range's resource disks (layer 2; docs/ranges.md "Resource disk").
 *
 * A scope (the range, or one scenario) names a directory or a raw disk
 * image file. Both must lie inside image_dirs (like template files: a
 * caller with the sysadmin role cannot make herdd, root, hand a guest
 * /etc or /root), and every directory from it up to / must be root's (or
 * herdd's user's) and not writable by group or others unless sticky, so
 * no one else can swap a file under it while herdd reads it or herd-vmm
 * opens it.
 *
 * A directory becomes one ISO 9660 image (Rock Ridge and Joliet, volume id
 * HERD_RES) at STATE/ranges/RANGE/resources[-SCENARIO].iso, built under a
 * temporary name and renamed into place only when every scope of the
 * range built: a failed `range up` leaves nothing. Inside it symbolic
 * links are refused (never followed), as are devices, FIFOs and sockets;
 * at most RES_BYTES_MAX bytes of files, RES_NODES_MAX entries, RES_DEPTH_MAX
 * levels. An image file is attached as it is, read-only and raw (its
 * format is never probed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herdd.h"
#include "iso.h"

#define RES_BYTES_MAX (4ull << 30)  /* the files' sizes together */
#define RES_NODES_MAX 100000ul      /* files and directories */
#define RES_DEPTH_MAX 32            /* directory levels below the top */

struct walk {
    IsoImage *img;
    const char *field;
    struct hd_err *err;
    char path[PATH_MAX];            /* the entry's host path */
    uint64_t bytes;
    unsigned long nodes;
};

/* 400: the entry at w->path. */
static int walk_fail(struct walk *w, const char *why)
{
    return hd_fail(w->err, 400, w->field, "%s: %s %s", w->field, w->path, why);
}

/* Owned by root or herdd's user, not writable by group or others (unless
 * sticky and so=true: then only its owner may rename what others put in). */
static bool dir_locked(const struct stat *st, bool sticky_ok)
{
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return false;
    return !(st->st_mode & 022) || (sticky_ok && (st->st_mode & S_ISVTX));
}

/* Every directory above canon (a canonical path) to / is locked. */
static int parents_locked(const char *canon, const char *field, struct hd_err *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", canon);
    for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        struct stat st;
        slash[slash == p] = 0; /* "/a/b" -> "/a" -> "/" */
        if (stat(p, &st) < 0)
            return hd_fail(err, 400, field, "%s: %s: %s", field, p, strerror(errno));
        if (!dir_locked(&st, true))
            return hd_fail(err, 400, field, "%s: %s, above it, may be written by others than "
                           "root (chmod go-w)", field, p);
        if (!strcmp(p, "/"))
            break;
    }
    return 0;
}

static int walk_dir(struct walk *w, IsoDir *dir, int fd, int depth);

/* One entry of a directory (w->path names it): a file, or a directory and
 * what it holds. */
static int walk_entry(struct walk *w, IsoDir *parent, int dfd, const char *name, int depth)
{
    struct stat st;
    IsoNode *node = NULL;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return walk_fail(w, strerror(errno));
    if (++w->nodes > RES_NODES_MAX)
        return hd_fail(w->err, 400, w->field, "%s: more than %lu files and directories",
                       w->field, RES_NODES_MAX);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            return walk_fail(w, "has a control character in its name");
    if (S_ISLNK(st.st_mode))
        return walk_fail(w, "is a symbolic link (not followed: only files and directories)");
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return walk_fail(w, "is not a regular file or a directory");
    if (S_ISREG(st.st_mode) && (w->bytes += (uint64_t)st.st_size) > RES_BYTES_MAX)
        return hd_fail(w->err, 400, w->field, "%s: the files are over %llu GiB together",
                       w->field, RES_BYTES_MAX >> 30);
    if (S_ISDIR(st.st_mode) && depth >= RES_DEPTH_MAX)
        return walk_fail(w, "is nested deeper than 32 directories");
    if (S_ISDIR(st.st_mode) && !dir_locked(&st, false))
        return walk_fail(w, "may be written by others than root (chmod go-w)");
    if (iso_tree_add_new_node(w->img, parent, name, w->path, &node) < 0)
        return walk_fail(w, "cannot be added to the image");
    /* read-only for all; the exec bit kept (a script stays runnable) */
    iso_node_set_permissions(node, S_ISDIR(st.st_mode) || (st.st_mode & 0111) ? 0555 : 0444);
    if (!S_ISDIR(st.st_mode))
        return 0;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return walk_fail(w, strerror(errno));
    return walk_dir(w, (IsoDir *)node, fd, depth + 1);
}

/* Every entry of the directory open at fd (taken) into dir. */
static int walk_dir(struct walk *w, IsoDir *dir, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return walk_fail(w, strerror(errno));
    }
    size_t base = strlen(w->path);
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                rc = walk_fail(w, strerror(errno));
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(w->path + base, sizeof(w->path) - base, "/%s", e->d_name) >=
            (int)(sizeof(w->path) - base)) {
            w->path[base] = 0;
            rc = walk_fail(w, "holds a path longer than PATH_MAX");
            break;
        }
        rc = walk_entry(w, dir, dirfd(d), e->d_name, depth);
        w->path[base] = 0;
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

/* The image of the directory canon into d->tmp. */
static int build_iso(const char *canon, struct hd_resdisk *d, struct hd_err *err)
{
    struct walk *w = calloc(1, sizeof(*w));
    if (!w)
        return hd_fail(err, 500, d->field, "out of memory");
    w->field = d->field;
    w->err = err;
    snprintf(w->path, sizeof(w->path), "%s", canon);
    int rc = -1;
    if (iso_image_new(HD_RESDISK_LABEL, &w->img) < 0) {
        hd_fail(err, 500, d->field, "out of memory");
        goto out;
    }
    int fd = open(canon, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        walk_fail(w, strerror(errno));
        goto out;
    }
    if (walk_dir(w, iso_image_get_root(w->img), fd, 0) < 0)
        goto out;
    rc = hd_iso_write_tmp(w->img, 3, true, d->tmp);
    if (rc < 0)
        hd_fail(err, 500, d->field, "%s: writing %s: %s", d->field, d->tmp, strerror(-rc));
out:
    if (w->img)
        iso_image_unref(w->img);
    free(w);
    return rc < 0 ? -1 : 0;
}

/* STATE/ranges/RANGE, made when missing (0700: herd-vmm opens its disks
 * before it drops to the guest's uid). */
int hd_range_state_dir(const struct hd_config *cfg, const char *range, char *out, size_t size,
                       const char *field, struct hd_err *err)
{
    snprintf(out, size, "%s/ranges", cfg->state_dir);
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return hd_fail(err, 500, field, "%s: %s", out, strerror(errno));
    snprintf(out, size, "%s/ranges/%s", cfg->state_dir, range);
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return hd_fail(err, 500, field, "%s: %s", out, strerror(errno));
    return 0;
}

int hd_resdisk_prepare(const struct hd_config *cfg, const char *range, const char *scenario,
                       const char *src, const char *field, struct hd_resdisk *d,
                       struct hd_err *err)
{
    struct stat st;
    memset(d, 0, sizeof(*d));
    snprintf(d->field, sizeof(d->field), "%s", field);
    if (hd_image_path_check(cfg, src, field, true, &st, err) < 0)
        return -1;
    char *canon = realpath(src, NULL);
    if (!canon)
        return hd_fail(err, 400, field, "%s: %s: %s", field, src, strerror(errno));
    int rc = parents_locked(canon, field, err);
    if (rc == 0 && S_ISREG(st.st_mode)) {
        snprintf(d->path, sizeof(d->path), "%s", canon); /* attached as it is */
    } else if (rc == 0 && !dir_locked(&st, false)) {
        rc = hd_fail(err, 400, field, "%s: %s may be written by others than root (chmod go-w)",
                     field, src);
    } else if (rc == 0 && (rc = hd_range_state_dir(cfg, range, d->path, sizeof(d->path), field, err)) == 0) {
        size_t n = strlen(d->path);
        snprintf(d->path + n, sizeof(d->path) - n, "/resources%s%s.iso", scenario ? "-" : "",
                 scenario ? scenario : "");
        snprintf(d->tmp, sizeof(d->tmp), "%s.tmp", d->path);
        rc = build_iso(canon, d, err);
        if (rc < 0)
            d->tmp[0] = 0; /* removed by hd_iso_write_tmp, or never made */
    }
    free(canon);
    return rc;
}

int hd_resdisk_commit(struct hd_resdisk *d, struct hd_err *err)
{
    if (!d->tmp[0])
        return 0;
    if (rename(d->tmp, d->path) < 0) {
        int e = errno;
        hd_resdisk_discard(d);
        return hd_fail(err, 500, d->field, "%s: %s: %s", d->field, d->path, strerror(e));
    }
    d->tmp[0] = 0;
    return 0;
}

void hd_resdisk_discard(struct hd_resdisk *d)
{
    if (!d->tmp[0])
        return;
    unlink(d->tmp);
    char *slash = strrchr(d->tmp, '/');
    if (slash) {
        *slash = 0;
        rmdir(d->tmp); /* STATE/ranges/RANGE, when this up made it */
    }
    d->tmp[0] = 0;
}

void hd_resdisk_remove(const struct hd_config *cfg, const char *range)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/ranges/%s", cfg->state_dir, range);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (!strncmp(e->d_name, "resources", 9) &&
            ((n > 4 && !strcmp(e->d_name + n - 4, ".iso")) ||
             (n > 8 && !strcmp(e->d_name + n - 8, ".iso.tmp"))))
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    rmdir(dir); /* only when empty */
}
