/* herd-vmm's command line for one start (vmm_argv.h): pure, no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_argv.h"

uint64_t hd_vmm_file_size_max(uint64_t image_size)
{
    return image_size + image_size / 8 + (256ull << 20);
}

/* Appends a formatted argument; false when out of room or memory. */
static bool push(struct hd_vmm_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool push(struct hd_vmm_argv *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (a->argc >= HD_VMM_ARGV_MAX)
        return false;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    a->argv[a->argc++] = s;
    a->argv[a->argc] = NULL;
    return true;
}

static bool push_opt(struct hd_vmm_argv *a, const char *opt, const char *value)
{
    return push(a, "%s", opt) && push(a, "%s", value);
}

/* A value inside a comma-separated KEY=VALUE spec: no comma, no newline,
 * not empty (a comma would add a key of the value's choosing). */
static int spec_value_ok(const char *v, const char *field, struct hd_err *err)
{
    if (!v || !*v || strpbrk(v, ",\n"))
        return hd_fail(err, 500, field, "'%s' cannot be passed to herd-vmm in a --disk or --net "
                       "spec (empty, or a comma or newline in it)", v ? v : "");
    return 0;
}

/* "path=OVERLAY,format=qcow2" then the pinned chain: ",backing=FMT:PATH"
 * for each link, top's backing first, or ",backing=none". */
static char *disk_spec(const char *overlay, const struct hd_chain *chain, struct hd_err *err)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f;

    if (spec_value_ok(overlay, "disk", err) < 0)
        return NULL;
    for (unsigned i = 0; chain && i < chain->n; i++)
        if (spec_value_ok(chain->path[i], "disk", err) < 0 ||
            spec_value_ok(chain->format[i], "disk", err) < 0)
            return NULL;
    if (!(f = open_memstream(&s, &len))) {
        hd_fail(err, 500, "disk", "out of memory");
        return NULL;
    }
    fprintf(f, "path=%s,format=qcow2", overlay);
    if (!chain || !chain->n)
        fputs(",backing=none", f);
    for (unsigned i = 0; chain && i < chain->n; i++)
        fprintf(f, ",backing=%s:%s", chain->format[i], chain->path[i]);
    if (fclose(f) != 0) {
        free(s);
        hd_fail(err, 500, "disk", "out of memory");
        return NULL;
    }
    return s;
}

/* "path=PATH,format=raw,readonly=on" into *out for a read-only raw disk
 * (the seed, the resource disk); *out stays NULL without one. */
static int readonly_spec(const char *path, const char *field, char **out, struct hd_err *err)
{
    *out = NULL;
    if (!path)
        return 0;
    if (spec_value_ok(path, field, err) < 0)
        return -1;
    if (asprintf(out, "path=%s,format=raw,readonly=on", path) < 0) {
        *out = NULL;
        return hd_fail(err, 500, field, "out of memory");
    }
    return 0;
}

static bool push_nics(struct hd_vmm_argv *a, const struct hd_vmm_launch *l, struct hd_err *err)
{
    for (unsigned i = 0; i < l->n_nics; i++) {
        if (spec_value_ok(l->nics[i].tap, "nics", err) < 0 ||
            spec_value_ok(l->nics[i].mac, "nics", err) < 0)
            return false;
        if (!push(a, "--net") || !push(a, "tap=%s,mac=%s", l->nics[i].tap, l->nics[i].mac))
            return false;
    }
    return true;
}

static bool push_confinement(struct hd_vmm_argv *a, const struct hd_vmm_launch *l)
{
    if (l->control && !push_opt(a, "--control", l->control))
        return false;
    if (l->file_size_max &&
        !(push(a, "--file-size-max") && push(a, "%llu", (unsigned long long)l->file_size_max)))
        return false;
    if (!(push(a, "--uid") && push(a, "%u", l->uid) && push(a, "--gid") && push(a, "%u", l->uid)))
        return false;
    return !(l->cgroup && *l->cgroup) || push_opt(a, "--cgroup", l->cgroup);
}

/* How the guest comes up: booted (kernel, initrd, command line) or
 * restored from a snapshot, its RAM mapped copy-on-write from the file
 * (clones share its pages). */
static bool push_boot(struct hd_vmm_argv *a, const struct hd_vmm_launch *l)
{
    if (l->restore)
        return push_opt(a, "--restore", l->restore) && push_opt(a, "--restore-mem", "map");
    return push_opt(a, "--kernel", l->kernel) &&
           (!l->initrd || push_opt(a, "--initrd", l->initrd)) &&
           push_opt(a, "--cmdline", l->cmdline);
}

int hd_vmm_argv_build(const struct hd_vmm_launch *l, struct hd_vmm_argv *out,
                      struct hd_err *err)
{
    memset(out, 0, sizeof(*out));
    if (l->uid == 0)
        return hd_fail(err, 500, "uid", "herd-vmm never runs as root: no guest uid");
    if (l->n_nics > HD_MAX_NICS)
        return hd_fail(err, 500, "nics", "%u NICs: at most %d", l->n_nics, HD_MAX_NICS);
    if (l->resources && !l->seed)
        return hd_fail(err, 500, "resources", "a resource disk comes after a seed: no seed");
    char *disk = disk_spec(l->disk, l->chain, err);
    if (!disk)
        return -1;
    char *seed = NULL, *res = NULL;
    if (readonly_spec(l->seed, "seed", &seed, err) < 0 ||
        readonly_spec(l->resources, "resources", &res, err) < 0) {
        free(disk);
        free(seed);
        return -1;
    }
    err->msg[0] = 0;
    bool ok = push(out, "%s", l->vmm) && push_boot(out, l) && push(out, "--mem") &&
              push(out, "%lluK", (unsigned long long)(l->mem >> 10)) && push(out, "--cpus") &&
              push(out, "%u", l->cpus) && push(out, "--serial") &&
              push(out, "file:%s", l->console) && push_opt(out, "--disk", disk) &&
              (!seed || push_opt(out, "--disk", seed)) &&
              (!res || push_opt(out, "--disk", res)) && push_nics(out, l, err) &&
              push_confinement(out, l);
    free(disk);
    free(seed);
    free(res);
    if (ok)
        return 0;
    hd_vmm_argv_free(out);
    if (err->msg[0])
        return -1;
    return hd_fail(err, 500, "", "herd-vmm's command line: out of memory or over %d arguments",
                   HD_VMM_ARGV_MAX);
}

void hd_vmm_argv_free(struct hd_vmm_argv *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    memset(a, 0, sizeof(*a));
}
