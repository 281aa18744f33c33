/* A guest's cloud-init NoCloud seed (layer 2, docs/herdd.md "Seeds"): a
 * read-only ISO 9660 disk labelled "cidata" with meta-data (instance-id,
 * local-hostname), network-config (version 2: each NIC with addresses,
 * matched by its MAC) and user-data (#cloud-config: ssh_authorized_keys,
 * runcmd, and for a range guest with a resource disk the mounts entry that
 * mounts it), written with libisofs in herdd's own process.
 *
 * The three files are JSON: YAML is a superset of JSON for everything
 * cloud-init reads here, and jansson does the quoting, so no text a user
 * hands us can break out of its string. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/range_spec.h"
#include "herdd.h"
#include "iso.h"

int hd_seed_init(void)
{
    if (iso_init() < 0)
        return -1;
    /* libisofs prints nothing itself: herdd reports what fails */
    iso_set_msgs_severities("NEVER", "NEVER", "herdd");
    return 0;
}

void hd_seed_finish(void)
{
    iso_finish();
}

/* A list of at most max strings of 1..bytes bytes without NUL, each also
 * checked by ok (may be NULL). The range spec's limits (herd/range_spec.h),
 * so a range's seed is never refused here. */
static int check_strings(json_t *a, const char *field, size_t max, size_t bytes,
                         int (*ok)(const char *s, char *why, size_t len), struct hd_err *err)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a) || json_array_size(a) > max)
        return hd_fail(err, 400, field, "%s must be a list of at most %zu strings", field, max);
    json_array_foreach(a, i, v) {
        char f[64], why[160] = "";
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        const char *s = json_string_value(v);
        size_t len = s ? json_string_length(v) : 0;
        if (!s || len == 0 || len > bytes || strlen(s) != len)
            return hd_fail(err, 400, f, "%s must be a string of 1 to %zu bytes without NUL", f,
                           bytes);
        if (ok && ok(s, why, sizeof(why)) < 0)
            return hd_fail(err, 400, f, "%s: %s", f, why);
    }
    return 0;
}

int hd_seed_check(json_t *ci, struct hd_err *err)
{
    static const char *const known[] = {"hostname", "ssh_authorized_keys", "runcmd", NULL};
    if (!json_is_object(ci))
        return hd_fail(err, 400, "cloud_init", "cloud_init must be an object {hostname, "
                       "ssh_authorized_keys, runcmd}");
    const char *k;
    json_t *v;
    json_object_foreach(ci, k, v) {
        size_t i;
        for (i = 0; known[i] && strcmp(known[i], k); i++)
            ;
        if (!known[i])
            return hd_fail(err, 400, "cloud_init", "cloud_init.%s: unknown field (hostname, "
                           "ssh_authorized_keys, runcmd)", k);
    }
    v = json_object_get(ci, "hostname");
    /* a DNS label: the spec's name rule ([a-z0-9-], letter or digit at both ends) */
    if (v && (!json_is_string(v) || range_name_check(json_string_value(v), 63) != 0))
        return hd_fail(err, 400, "cloud_init.hostname", "cloud_init.hostname must be a host "
                       "name: [a-z0-9-], 1 to 63 characters, not starting or ending with '-'");
    v = json_object_get(ci, "ssh_authorized_keys");
    if (v && check_strings(v, "cloud_init.ssh_authorized_keys", RANGE_SSH_KEYS_MAX,
                           RANGE_SSH_KEY_BYTES_MAX, range_ssh_key_check, err) < 0)
        return -1;
    v = json_object_get(ci, "runcmd");
    if (v && check_strings(v, "cloud_init.runcmd", RANGE_RUNCMD_MAX, RANGE_RUNCMD_BYTES_MAX, NULL,
                           err) < 0)
        return -1;
    return 0;
}

void hd_seed_path(const struct hd_vm *vm, char *out, size_t size)
{
    hd_vm_path(vm, "seed.iso", out, size);
}

/* network-config: every NIC with an address, by MAC; the first gateway is
 * the default route. */
static json_t *network_config(const struct hd_vm *vm)
{
    json_t *eths = json_object();
    bool have_default = false;
    for (unsigned i = 0; i < vm->n_nics; i++) {
        const struct hd_nic *n = &vm->nics[i];
        if (!n->ipv4[0] && !n->ipv6[0])
            continue;
        json_t *addrs = json_array();
        if (n->ipv4[0])
            json_array_append_new(addrs, json_string(n->ipv4));
        if (n->ipv6[0])
            json_array_append_new(addrs, json_string(n->ipv6));
        json_t *e = json_pack("{s{ss} so}", "match", "macaddress", n->mac, "addresses", addrs);
        if (n->gateway[0] && !have_default) {
            json_object_set_new(e, "routes", json_pack("[{ss ss}]", "to", "0.0.0.0/0", "via",
                                                       n->gateway));
            have_default = true;
        }
        char id[16];
        snprintf(id, sizeof(id), "nic%u", i);
        json_object_set_new(eths, id, e);
    }
    return json_pack("{si so}", "version", 2, "ethernets", eths);
}

/* iso9660 for an image herdd built (STATE/ranges/RANGE/...), "auto" for an
 * image file the spec named (its filesystem must carry the label). */
static const char *resources_fstype(const struct hd_vm *vm)
{
    char built[4200];
    int n = snprintf(built, sizeof(built), "%s/ranges/%s/", vm->state_dir, vm->range);
    return n > 0 && !strncmp(vm->resources, built, (size_t)n) ? "iso9660" : "auto";
}

json_t *hd_seed_docs(const struct hd_vm *vm)
{
    char iid[HD_NAME_MAX + 48];
    hd_vm_instance_id(vm, iid, sizeof(iid));
    json_t *ci = vm->cloud_init;
    const char *host = json_string_value(json_object_get(ci, "hostname"));
    json_t *meta = json_pack("{ss ss}", "instance-id", iid, "local-hostname",
                             host ? host : vm->name);
    json_t *user = json_object();
    json_t *v;
    if ((v = json_object_get(ci, "ssh_authorized_keys")))
        json_object_set(user, "ssh_authorized_keys", v);
    if ((v = json_object_get(ci, "runcmd")))
        json_object_set(user, "runcmd", v);
    if (vm->resources) /* cloud-init's mounts run before runcmd */
        json_object_set_new(user, "mounts",
                            json_pack("[[s s s s s s]]", "LABEL=" HD_RESDISK_LABEL,
                                      HD_RESDISK_MOUNT, resources_fstype(vm), "ro,nofail",
                                      "0", "0"));
    json_t *net = network_config(vm);
    char *m = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
    char *u = json_dumps(user, JSON_INDENT(2) | JSON_SORT_KEYS);
    char *n = json_dumps(net, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_t *docs = NULL;
    if (m && u && n) {
        char *ud = NULL;
        if (asprintf(&ud, "#cloud-config\n%s\n", u) >= 0) {
            docs = json_pack("{s:s+, s:s, s:s+}", "meta-data", m, "\n", "user-data", ud,
                             "network-config", n, "\n");
            free(ud);
        }
    }
    free(m);
    free(u);
    free(n);
    json_decref(meta);
    json_decref(user);
    json_decref(net);
    return docs;
}

/* NAME with TEXT in the image's root directory. */
static int iso_add_text(IsoImage *img, const char *name, const char *text)
{
    size_t len = strlen(text);
    unsigned char *buf = malloc(len ? len : 1);
    IsoStream *stream = NULL;
    if (!buf)
        return -ENOMEM;
    memcpy(buf, text, len);
    if (iso_memory_stream_new(buf, len, &stream) < 0) {
        free(buf);
        return -ENOMEM;
    }
    /* the new file node takes the stream's reference (and buf with it) */
    int rc = iso_image_add_new_file(img, iso_image_get_root(img), name, stream, NULL);
    if (rc < 0) {
        iso_stream_unref(stream);
        return -EIO;
    }
    return 0;
}

/* The image of docs into tmp. */
static int iso_write(json_t *docs, const char *tmp)
{
    static const char *const files[] = {"meta-data", "user-data", "network-config"};
    IsoImage *img = NULL;
    int rc = 0;

    if (iso_image_new("cidata", &img) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < 3 && rc == 0; i++)
        rc = iso_add_text(img, files[i], json_string_value(json_object_get(docs, files[i])));
    if (rc == 0)
        rc = hd_iso_write_tmp(img, 2, false, tmp);
    iso_image_unref(img);
    return rc;
}

int hd_seed_write(const struct hd_vm *vm, struct hd_err *err)
{
    char path[4200], tmp[4300];
    hd_seed_path(vm, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    json_t *docs = hd_seed_docs(vm);
    if (!docs)
        return hd_fail(err, 500, "cloud_init", "seed: out of memory");
    int rc = iso_write(docs, tmp);
    json_decref(docs);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return hd_fail(err, 500, "cloud_init", "seed %s: %s", path, strerror(-rc));
    }
    return 0;
}

void hd_seed_remove(const struct hd_vm *vm)
{
    char path[4200];
    hd_seed_path(vm, path, sizeof(path));
    unlink(path);
}
