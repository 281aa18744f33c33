/*
 * Which image files herdd lets a template and a guest use.
 *
 * A template's files (parent image, kernel, initrd, and every backing file
 * under the parent) must lie in one of the configured image_dirs, which
 * only root may write, or in herdd's own state/templates (derived
 * templates). They are checked before anything opens them, so a caller
 * with the sysadmin role cannot point herdd (root) at /etc/shadow or a
 * block device.
 *
 * A guest's overlay is a file its own herd-vmm can write: its backing chain
 * is decided here, not by its header. herdd computes the template's chain,
 * refuses to start a guest whose overlay names anything else, and hands the
 * same chain to herd-vmm (--disk ...,backing=FORMAT:PATH), which refuses
 * any difference again before opening it (blockdev_open_opts.chain_pinned).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/blockdev.h"
#include "herdd.h"

void hd_chain_free(struct hd_chain *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        free(c->path[i]);
        free(c->format[i]);
    }
    c->n = 0;
}

static int mkdir_p(const char *dir, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    return mkdir(p, mode) < 0 && errno != EEXIST ? -errno : 0;
}

int hd_image_dirs_prepare(struct hd_config *cfg, struct hd_err *err)
{
    for (size_t i = 0; i < cfg->n_image_dirs; i++) {
        const char *d = cfg->image_dirs[i];
        struct stat st;
        if (!strcmp(d, HD_IMAGE_DIR) && mkdir_p(d, 0755) < 0)
            return hd_fail(err, 500, "image_dirs", "image_dirs: cannot create %s: %s", d,
                           strerror(errno));
        if (stat(d, &st) < 0)
            return hd_fail(err, 400, "image_dirs", "image_dirs: %s: %s", d, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return hd_fail(err, 400, "image_dirs", "image_dirs: %s is not a directory", d);
        if (st.st_uid != 0 && st.st_uid != geteuid())
            return hd_fail(err, 400, "image_dirs", "image_dirs: %s is owned by uid %u, not by "
                           "root", d, (unsigned)st.st_uid);
        if (st.st_mode & 022)
            return hd_fail(err, 400, "image_dirs", "image_dirs: %s may be written by group or "
                           "others (chmod go-w)", d);
        char *canon = realpath(d, NULL);
        if (!canon)
            return hd_fail(err, 400, "image_dirs", "image_dirs: %s: %s", d, strerror(errno));
        free(cfg->image_dirs[i]);
        cfg->image_dirs[i] = canon;
    }
    return 0;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return true;
    return !strncmp(path, dir, n) && path[n] == '/';
}

/* Is the canonical path one herdd may hand out as a template file? */
static bool allowed_place(const struct hd_config *cfg, const char *canon)
{
    char *state = realpath(cfg->state_dir, NULL);
    bool in_state = false, in_own = false;
    if (state) {
        char own[PATH_MAX + 16];
        snprintf(own, sizeof(own), "%s/templates", state);
        in_state = under(canon, state);
        in_own = under(canon, own);
        free(state);
    }
    if (in_own)
        return true;
    if (in_state)
        return false; /* guests' overlays, the database, the audit log */
    for (size_t i = 0; i < cfg->n_image_dirs; i++)
        if (under(canon, cfg->image_dirs[i]))
            return true;
    return false;
}

int hd_image_path_check(const struct hd_config *cfg, const char *path, const char *field,
                        bool dir_ok, struct stat *stp, struct hd_err *err)
{
    struct stat st;
    if (path[0] != '/')
        return hd_fail(err, 400, field, "%s: '%s' is not an absolute path", field, path);
    for (const char *c = path; *c; c++)
        if (*c == ',' || (unsigned char)*c < ' ' || *c == 0x7f)
            return hd_fail(err, 400, field, "%s: '%s' has a comma or a control character",
                           field, path);
    if (lstat(path, &st) < 0)
        return hd_fail(err, 400, field, "%s: %s: %s", field, path, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return hd_fail(err, 400, field, "%s: %s is a symbolic link (name the file itself)",
                       field, path);
    if (!S_ISREG(st.st_mode) && !(dir_ok && S_ISDIR(st.st_mode)))
        return hd_fail(err, 400, field, "%s: %s is not a regular file%s", field, path,
                       dir_ok ? " or a directory" : "");
    if (stp)
        *stp = st;
    char *canon = realpath(path, NULL);
    if (!canon)
        return hd_fail(err, 400, field, "%s: %s: %s", field, path, strerror(errno));
    bool ok = allowed_place(cfg, canon);
    free(canon);
    if (!ok)
        return hd_fail(err, 400, field, "%s: %s is outside image_dirs (herdd's configuration "
                       "names the directories template files may come from)", field, path);
    return 0;
}

int hd_image_file_check(const struct hd_config *cfg, const char *path, const char *field,
                        struct hd_err *err)
{
    return hd_image_path_check(cfg, path, field, false, NULL, err);
}

int hd_chain_of(const struct hd_config *cfg, const char *image, const char *format,
                const char *field, struct hd_chain *out, struct hd_err *err)
{
    char *cur = strdup(image), *fmt = strdup(format);
    int rc = 0;

    out->n = 0;
    while (cur && fmt) {
        if (out->n == HD_CHAIN_MAX) {
            rc = hd_fail(err, 400, field, "%s: the backing chain of %s is longer than %d", field,
                         image, HD_CHAIN_MAX);
            break;
        }
        if ((rc = hd_image_file_check(cfg, cur, field, err)) < 0)
            break;
        out->path[out->n] = cur;
        out->format[out->n] = fmt;
        out->n++;
        struct herd_err berr;
        struct blockdev_open_opts o = {.format = fmt, .read_only = true, .no_lock = true,
                                       .no_backing = true, .err = &berr};
        struct blockdev *bd = NULL;
        if (blockdev_open(cur, &o, &bd) < 0) {
            rc = hd_fail(err, 400, field, "%s: %s does not open as %s: %s", field, cur, fmt,
                         berr.msg);
            cur = fmt = NULL;
            break;
        }
        cur = blockdev_backing_path(bd);
        fmt = strdup(blockdev_backing_format(bd));
        blockdev_close(bd);
        if (!cur)
            break;
        if (fmt && !fmt[0]) {
            rc = hd_fail(err, 400, field, "%s: the backing file %s of %s has no recorded format "
                         "(herd never guesses formats)", field, cur, out->path[out->n - 1]);
            break;
        }
    }
    if (rc == 0 && (cur || !fmt)) /* an allocation failed */
        rc = hd_fail(err, 500, field, "out of memory");
    free(cur);
    free(fmt);
    if (rc < 0)
        hd_chain_free(out);
    return rc;
}

static void links_of(const struct hd_chain *pin, struct blockdev_link *links)
{
    for (unsigned i = 0; i < pin->n; i++)
        links[i] = (struct blockdev_link){.path = pin->path[i], .format = pin->format[i]};
}

int hd_chain_verify(const char *overlay, const struct hd_chain *pin, struct hd_err *err)
{
    struct blockdev_link links[HD_CHAIN_MAX];
    links_of(pin, links);
    struct blockdev_open_opts o = {.format = "qcow2", .read_only = true, .no_lock = true,
                                   .no_backing = true, .chain_pinned = true, .chain = links,
                                   .chain_len = pin->n, .err = err ? &err->lib : NULL};
    struct blockdev *bd = NULL;
    int rc = blockdev_open(overlay, &o, &bd);
    if (rc < 0)
        return hd_fail_lib(err, 409, rc, "disk");
    blockdev_close(bd);
    return 0;
}
