/* Shared by cluster_range.c and cluster_view.c (herdd's ranges on a
 * cluster); not part of herdd.h. */
#ifndef HERDD_CLUSTER_RANGE_H
#define HERDD_CLUSTER_RANGE_H

#include <jansson.h>

struct etcd_kvs;
struct hd_cluster;
struct hd_err;

/* Every key under prefix, by the API's etcd connection; 503 naming
 * "cluster" when etcd cannot be read. */
int hd_cluster_list(struct hd_cluster *cl, const char *prefix, struct etcd_kvs *kvs,
                    struct hd_err *err);
/* The assignments of range name among kvs (a list of /herd/assign/):
 * {guest: node}. */
json_t *hd_cluster_range_assigned(const struct etcd_kvs *kvs, const char *name);

#endif
