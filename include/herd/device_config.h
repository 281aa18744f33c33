/*
 * What the user asks for with --disk and --net (or "disks"/"nets" in the
 * JSON config): parsed and checked here, before any device exists.
 */
#ifndef HERD_DEVICE_CONFIG_H
#define HERD_DEVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/error.h"

#define DEVICE_SPEC_ID_BYTES 20 /* virtio-blk serial */
#define DEVICE_MAX_QUEUES    16

#define DISK_MAX_CHAIN 16

struct disk_config {
    char *path;
    char *format;  /* "raw" or "qcow2": required */
    bool readonly;
    char *serial;  /* up to 20 bytes; default: the file name */
    unsigned queues;
    /* backing=FORMAT:PATH (repeatable, top's backing first) or backing=none:
     * the chain is pinned; see blockdev_open_opts.chain_pinned */
    bool chain_pinned;
    unsigned chain_len;
    char *chain_format[DISK_MAX_CHAIN];
    char *chain_path[DISK_MAX_CHAIN];
};

enum vhost_mode { VHOST_AUTO, VHOST_ON, VHOST_OFF };

struct nic_config {
    char *tap;
    uint8_t mac[6];
    bool mac_set;
    enum vhost_mode vhost;
    unsigned queues;
};

/* "path=FILE,format=qcow2|raw[,readonly=on][,serial=ID][,queues=N]". */
int disk_config_parse(const char *spec, struct disk_config *cfg, struct herd_err *err);
void disk_config_free(struct disk_config *cfg);
int disk_config_copy(struct disk_config *dst, const struct disk_config *src);

/* "tap=NAME[,mac=MAC][,vhost=auto|on|off][,queues=N]". */
int nic_config_parse(const char *spec, struct nic_config *cfg, struct herd_err *err);
void nic_config_free(struct nic_config *cfg);
int nic_config_copy(struct nic_config *dst, const struct nic_config *src);

#endif
