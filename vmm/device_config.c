/*
 * Parsing of the --disk and --net specifications: comma-separated
 * key=value lists, as QEMU users type them. Unknown keys, missing required
 * keys and bad values are errors that name the key.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/device_config.h"
#include "herd/virtio_net.h"

typedef int (*kv_fn)(void *cfg, const char *key, const char *value, struct herd_err *err);

/* Splits spec at commas and '=' and calls fn for each pair. */
static int kv_parse(const char *spec, void *cfg, kv_fn fn, const char *what, struct herd_err *err)
{
    char *copy = strdup(spec), *save = NULL, *tok;
    int rc = 0;
    char opt[16];

    snprintf(opt, sizeof(opt), "--%s", what);

    if (!copy)
        return -ENOMEM;
    if ((*spec && (spec[0] == ',' || spec[strlen(spec) - 1] == ',')) || strstr(spec, ",,")) {
        herd_err_set(err, -EINVAL, opt, "%s: empty item in '%s'", what, spec);
        free(copy);
        return -EINVAL;
    }
    for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');

        if (!eq || eq == tok || !eq[1]) {
            rc = herd_err_set(err, -EINVAL, opt, "%s: '%s' is not key=value", what, tok);
            break;
        }
        *eq = 0;
        rc = fn(cfg, tok, eq + 1, err);
    }
    free(copy);
    return rc;
}

static int parse_onoff(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

static int parse_queues(const char *v, unsigned *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);

    if (*v < '1' || *v > '9' || *end || n > DEVICE_MAX_QUEUES)
        return -EINVAL;
    *out = (unsigned)n;
    return 0;
}

static int replace(char **field, const char *v)
{
    char *c = strdup(v);

    if (!c)
        return -ENOMEM;
    free(*field);
    *field = c;
    return 0;
}

/* backing=none, or backing=FORMAT:PATH once per image below the top one. */
static int add_backing(struct disk_config *cfg, const char *v, struct herd_err *err)
{
    const char *colon = strchr(v, ':');

    if (!strcmp(v, "none")) {
        if (cfg->chain_pinned)
            return herd_err_set(err, -EINVAL, "backing",
                                "disk: backing=none cannot follow another backing=");
        cfg->chain_pinned = true;
        cfg->chain_len = 0;
        cfg->chain_format[0] = NULL;
        return 0;
    }
    if (cfg->chain_pinned && cfg->chain_len == 0)
        return herd_err_set(err, -EINVAL, "backing",
                            "disk: backing=none cannot be followed by another backing=");
    if (cfg->chain_len == DISK_MAX_CHAIN)
        return herd_err_set(err, -EINVAL, "backing", "disk: at most %d backing= images",
                            DISK_MAX_CHAIN);
    if (!colon || colon[1] != '/')
        return herd_err_set(err, -EINVAL, "backing",
                            "disk: backing '%s' is not FORMAT:/ABSOLUTE/PATH or none", v);
    size_t flen = (size_t)(colon - v);
    if ((flen != 3 || strncmp(v, "raw", 3)) && (flen != 5 || strncmp(v, "qcow2", 5)))
        return herd_err_set(err, -EINVAL, "backing",
                            "disk: backing format in '%s' is not raw or qcow2", v);
    char *f = strndup(v, flen), *p = strdup(colon + 1);
    if (!f || !p) {
        free(f);
        free(p);
        return -ENOMEM;
    }
    cfg->chain_format[cfg->chain_len] = f;
    cfg->chain_path[cfg->chain_len] = p;
    cfg->chain_len++;
    cfg->chain_pinned = true;
    return 0;
}

static int disk_kv(void *p, const char *k, const char *v, struct herd_err *err)
{
    struct disk_config *cfg = p;

    if (!strcmp(k, "path"))
        return replace(&cfg->path, v);
    if (!strcmp(k, "format")) {
        if (strcmp(v, "raw") && strcmp(v, "qcow2"))
            return herd_err_set(err, -EINVAL, k, "disk: format '%s' is not raw or qcow2", v);
        return replace(&cfg->format, v);
    }
    if (!strcmp(k, "readonly")) {
        if (!parse_onoff(v, &cfg->readonly))
            return 0;
        return herd_err_set(err, -EINVAL, k, "disk: readonly='%s' is not on or off", v);
    }
    if (!strcmp(k, "serial")) {
        if (strlen(v) <= DEVICE_SPEC_ID_BYTES)
            return replace(&cfg->serial, v);
        return herd_err_set(err, -EINVAL, k, "disk: serial '%s' is longer than %d bytes", v,
                            DEVICE_SPEC_ID_BYTES);
    }
    if (!strcmp(k, "queues")) {
        if (!parse_queues(v, &cfg->queues))
            return 0;
        return herd_err_set(err, -EINVAL, k, "disk: queues='%s' is not 1-%d", v, DEVICE_MAX_QUEUES);
    }
    if (!strcmp(k, "backing"))
        return add_backing(cfg, v, err);
    return herd_err_set(err, -EINVAL, k,
                        "disk: unknown key '%s' (path, format, readonly, serial, queues, backing)",
                        k);
}

int disk_config_parse(const char *spec, struct disk_config *cfg, struct herd_err *err)
{
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->queues = 1;
    rc = kv_parse(spec, cfg, disk_kv, "disk", err);
    if (!rc && !cfg->path) {
        rc = herd_err_set(err, -EINVAL, "path", "disk: 'path=' is required");
    }
    if (!rc && !cfg->format) {
        /* Formats are never probed: a raw file taken for qcow2 (or the
         * reverse) is how guests read host files. */
        rc = herd_err_set(err, -EINVAL, "format",
                          "disk %s: 'format=raw|qcow2' is required (herd never guesses "
                          "image formats)", cfg->path);
    }
    if (rc)
        disk_config_free(cfg);
    return rc;
}

void disk_config_free(struct disk_config *cfg)
{
    free(cfg->path);
    free(cfg->format);
    free(cfg->serial);
    for (unsigned i = 0; i < cfg->chain_len; i++) {
        free(cfg->chain_format[i]);
        free(cfg->chain_path[i]);
    }
    memset(cfg, 0, sizeof(*cfg));
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Exactly "xx:xx:xx:xx:xx:xx", hex digits and colons only, unicast. */
static int parse_mac(const char *v, uint8_t mac[6])
{
    if (strlen(v) != 17)
        return -EINVAL;
    for (unsigned i = 0; i < 17; i++) {
        if (i % 3 == 2 ? v[i] != ':' : hexval(v[i]) < 0)
            return -EINVAL;
    }
    for (unsigned i = 0; i < 6; i++)
        mac[i] = (uint8_t)(hexval(v[3 * i]) << 4 | hexval(v[3 * i + 1]));
    if (mac[0] & 1)
        return -EINVAL; /* multicast: not a NIC address */
    return 0;
}

/* Interface names: what the kernel accepts, minus what would confuse a
 * shell or a path. */
static bool valid_ifname(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > 15 || !strcmp(v, ".") || !strcmp(v, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] == '/' || v[i] == ':' || v[i] <= ' ' || v[i] == 0x7f)
            return false;
    return true;
}

static int nic_kv(void *p, const char *k, const char *v, struct herd_err *err)
{
    struct nic_config *cfg = p;

    if (!strcmp(k, "tap")) {
        if (valid_ifname(v))
            return replace(&cfg->tap, v);
        return herd_err_set(err, -EINVAL, k,
                            "net: tap name '%s' is not an interface name (1-15 characters, "
                            "no '/', ':' or blanks)", v);
    }
    if (!strcmp(k, "mac")) {
        if (!parse_mac(v, cfg->mac)) {
            cfg->mac_set = true;
            return 0;
        }
        return herd_err_set(err, -EINVAL, k,
                            "net: mac '%s' is not a unicast xx:xx:xx:xx:xx:xx address", v);
    }
    if (!strcmp(k, "vhost")) {
        if (!strcmp(v, "auto"))
            cfg->vhost = VHOST_AUTO;
        else if (!strcmp(v, "on"))
            cfg->vhost = VHOST_ON;
        else if (!strcmp(v, "off"))
            cfg->vhost = VHOST_OFF;
        else {
            return herd_err_set(err, -EINVAL, k, "net: vhost='%s' is not auto, on or off", v);
        }
        return 0;
    }
    if (!strcmp(k, "queues")) {
        if (!parse_queues(v, &cfg->queues) && cfg->queues <= VIRTIO_NET_MAX_PAIRS)
            return 0;
        return herd_err_set(err, -EINVAL, k, "net: queues='%s' is not 1-%d (queue pairs)", v,
                            VIRTIO_NET_MAX_PAIRS);
    }
    return herd_err_set(err, -EINVAL, k, "net: unknown key '%s' (tap, mac, vhost, queues)", k);
}

int nic_config_parse(const char *spec, struct nic_config *cfg, struct herd_err *err)
{
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->queues = 1;
    cfg->vhost = VHOST_AUTO;
    rc = kv_parse(spec, cfg, nic_kv, "net", err);
    if (!rc && !cfg->tap) {
        rc = herd_err_set(err, -EINVAL, "tap", "net: 'tap=' is required");
    }
    if (rc)
        nic_config_free(cfg);
    return rc;
}

void nic_config_free(struct nic_config *cfg)
{
    free(cfg->tap);
    memset(cfg, 0, sizeof(*cfg));
}

static int dup_or_null(char **dst, const char *src)
{
    *dst = NULL;
    return src && !(*dst = strdup(src)) ? -ENOMEM : 0;
}

int disk_config_copy(struct disk_config *dst, const struct disk_config *src)
{
    *dst = *src;
    dst->path = dst->format = dst->serial = NULL; /* never free the source's */
    for (unsigned i = 0; i < src->chain_len; i++)
        dst->chain_format[i] = dst->chain_path[i] = NULL;
    if (dup_or_null(&dst->path, src->path) || dup_or_null(&dst->format, src->format) ||
        dup_or_null(&dst->serial, src->serial)) {
        disk_config_free(dst);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < src->chain_len; i++)
        if (dup_or_null(&dst->chain_format[i], src->chain_format[i]) ||
            dup_or_null(&dst->chain_path[i], src->chain_path[i])) {
            disk_config_free(dst);
            return -ENOMEM;
        }
    return 0;
}

int nic_config_copy(struct nic_config *dst, const struct nic_config *src)
{
    *dst = *src;
    dst->tap = NULL;
    if (dup_or_null(&dst->tap, src->tap)) {
        nic_config_free(dst);
        return -ENOMEM;
    }
    return 0;
}
