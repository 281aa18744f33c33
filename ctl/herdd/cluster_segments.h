/* Segments of ranges on a cluster (docs/cluster.md "Segments across
 * nodes"): shared by cluster_range.c (the placer: VNIs and the segments
 * record), cluster_reconcile.c (each node: its segment bridges and their
 * VXLAN uplinks) and cluster_segments.c; not part of herdd.h. */
#ifndef HERDD_CLUSTER_SEGMENTS_H
#define HERDD_CLUSTER_SEGMENTS_H

#include <jansson.h>
#include <stdbool.h>

struct hd_cluster;
struct hd_err;

#define HD_CLUSTER_SEGMENTS "/herd/segments/" /* + RANGE: its segments record */
#define HD_CLUSTER_VNI "/herd/vni/"           /* + VNI (decimal): {range, segment} */
#define HD_CLUSTER_VNI_FIRST 15728640u        /* 0xf00000: VNIs the cluster allocates */
#define HD_CLUSTER_VNI_LAST 16777215u         /* 0xffffff */

/* ---- the placer (under the placer's key; the API's etcd connection) ---- */

/* The segments record of range: {"ROLE/SEGMENT": {"vni": N, "nodes": {NODE:
 * ADDRESS}}} for each segment of seg_nodes ("ROLE/SEGMENT" -> {NODE: true},
 * where its guests are), ADDRESS each node's underlay address (its profile
 * in profiles, else the range's previous record). A segment on two nodes
 * or more gets a VNI (kept from the previous record, else the lowest free
 * one, /herd/vni/N created only if absent); one on a single node keeps
 * the VNI it had, or has none (0). The JSON text to write at
 * /herd/segments/RANGE, or NULL with err (503: etcd). */
char *hd_segments_record(struct hd_cluster *cl, const char *range, json_t *seg_nodes,
                         json_t *profiles, struct hd_err *err);
/* The keys range down deletes besides the range's own: its segments record
 * and every /herd/vni/N whose value names the range. NULL with err (503). */
json_t *hd_segments_down_keys(struct hd_cluster *cl, const char *range, struct hd_err *err);

/* range status: {"ROLE/SEGMENT": {vni (0: none), nodes: [NODE]}} from the
 * range's record (values checked; {} when there is none or etcd cannot be
 * read). */
json_t *hd_segments_view(struct hd_cluster *cl, const char *range);

/* ---- each node (the reconcile thread only) ------------------------------ */

struct hd_segs;
/* The node's segment bridges of cluster ranges, as it last made them
 * (STATE/cluster-segments.json: those of a herdd that ran before are
 * removed once no assignment wants them). */
struct hd_segs *hd_segs_open(struct hd_cluster *cl);
void hd_segs_close(struct hd_segs *s);
/* Before a guest (its assignment doc) is created or started: the bridges
 * of its NICs' segments exist, each with its VXLAN uplink and peers when
 * the range's record gives the segment a VNI. -1 with err (409). */
int hd_segs_guest(struct hd_segs *s, json_t *doc, struct hd_err *err);
/* Every second: the bridges match desired (guest -> assignment doc): made
 * or brought to the record's VNI and peers; those no guest wants any more
 * removed (only when may_remove: a complete, trusted list). */
void hd_segs_sync(struct hd_segs *s, json_t *desired, bool may_remove);

#endif
