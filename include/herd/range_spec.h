/*
 * range_spec: the range YAML spec (scenarios x roles x counts over templates)
 * parsed into plain structs, validated, and expanded into one entry per guest.
 * Pure: no I/O except range_spec_load() reading the file. See docs/ranges.md.
 *
 *   range: lab1                     # [a-z0-9-], 1..24 chars
 *   scenarios:                      # 1..64
 *     - name: red                   # [a-z0-9-], 1..16
 *       resources: /srv/lab1/red    # optional: this scenario's resource disk
 *       roles:                      # 1..64 per scenario
 *         - name: attacker          # [a-z0-9-], 1..16
 *           template: probe         # [A-Za-z0-9._-], 1..63 (existence: herdd's job)
 *           count: 4                # 1..1000
 *           cpus: 1                 # optional, 1..32: overrides the template
 *           mem: 64M                # optional, 4M..1T, multiple of 4K; K/M/G/T suffix
 *           nics:                   # optional (absent: the template's NICs), 0..8
 *             - {network: communication, segment: red-net}
 *             - {network: management, addresses: [10.10.0.20, 10.10.0.21, ...]}
 *           overrides:              # optional: one guest's address on one NIC
 *             - {guest: 2, nic: 0, address: 10.20.1.99}
 *           runcmd:                 # optional, 0..64 shell commands, 1..4096 bytes
 *             - systemctl restart nginx
 *           node: n2                # optional, on a cluster: every guest on this node
 *           spread: true            # optional, on a cluster: over as many nodes as
 *                                   # fit (docs/cluster.md "Placement")
 *   resources: /srv/lab1/common     # optional: the range's resource disk
 *   on_node_loss: replace           # optional, on a cluster: keep (default) or
 *                                   # replace the guests of a node that is lost
 *   ssh_authorized_keys:            # optional, 0..32 OpenSSH public key lines
 *     - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... alice@laptop
 *   networks:                       # optional: addressing (docs/ranges.md "Addressing")
 *     management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1, ipv6: "fd00:10::/64"}
 *     communication:
 *       segments:
 *         red-net: {subnet: 10.20.1.0/24, gateway: 10.20.1.1, dhcp: true}
 *
 * A NIC whose network (or segment) has a subnet gets an address: the next
 * of its explicit `addresses` (one per guest of the role), an override, or
 * else one allocated by range_addr_plan() (herd/range_addr.h). Here only the
 * syntax of subnets and addresses is checked; whether they fit, overlap or
 * collide is range_addr's.
 *
 * ssh_authorized_keys and runcmd go into each guest's cloud-init NoCloud
 * user-data (herdd builds the seed): the keys for the image's default user,
 * the commands run once per instance. Both are kept byte-exact.
 *
 * resources (range-wide, or a scenario's own, which replaces the range's
 * for that scenario's guests) names a directory or a raw disk image on the
 * host: an absolute path of at most RANGE_RESOURCES_BYTES_MAX bytes, one
 * line, no NUL. Only its syntax is checked here; herdd checks what it
 * names and builds the read-only disk (docs/ranges.md "Resource disk").
 *
 * Names ([a-z0-9-]) start and end with a letter or digit. Guest names are
 * "<range>-<scenario>-<role>-<n>", n from 1: at most 24+1+16+1+16+1+4 = 63
 * characters, a valid netdev identity (NETDEV_IDENT_MAX). Validation also
 * refuses two (scenario, role) pairs whose guest names would collide (e.g.
 * scenario "a-b" role "c" vs scenario "a" role "b-c").
 *
 * Errors: functions return 0 or a negative errno (-EINVAL for a bad spec,
 * -ENOMEM, -EFBIG for an input over RANGE_SPEC_BYTES_MAX, -errno from open/
 * read). struct range_err gets the field path ("scenarios[1].roles[0].count"),
 * a one-line message that starts with that path ("scenarios[1].roles[0].count:
 * 0 is not in 1..1000") and the 1-based line/column (0 when unknown) — fit for
 * herdd's {"error": msg, "field": field} 4xx replies. A failed parse leaves
 * *out NULL and allocates nothing.
 *
 * YAML anchors and aliases, tags other than the core ones, multiple documents
 * and flow/block nesting deeper than the format are refused; input is bounded
 * at RANGE_SPEC_BYTES_MAX, so no input can blow up memory.
 */
#ifndef HERD_RANGE_SPEC_H
#define HERD_RANGE_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/ipam.h"

#define RANGE_NAME_MAX       24       /* range name */
#define RANGE_PART_MAX       16       /* scenario, role and segment names */
#define RANGE_TEMPLATE_MAX   63       /* template names */
#define RANGE_GUEST_NAME_MAX 63       /* "<range>-<scenario>-<role>-<n>" */
#define RANGE_SCENARIOS_MAX  64
#define RANGE_ROLES_MAX      64       /* per scenario */
#define RANGE_NICS_MAX       8        /* per role (VMM_MAX_NICS) */
#define RANGE_COUNT_MAX      1000     /* guests per role */
#define RANGE_GUESTS_MAX     10000    /* guests per range, all roles */
#define RANGE_CPUS_MAX       32       /* VMM_MAX_CPUS */
#define RANGE_MEM_MIN        (4ULL << 20)
#define RANGE_MEM_MAX        (1ULL << 40)
#define RANGE_SPEC_BYTES_MAX (1u << 20)
#define RANGE_SUBNETS_MAX    64       /* networks and segments with addressing */
#define RANGE_OVERRIDES_MAX  1000     /* per role */
#define RANGE_SSH_KEYS_MAX   32       /* ssh_authorized_keys entries */
#define RANGE_SSH_KEY_BYTES_MAX 8192  /* one public key line */
#define RANGE_RUNCMD_MAX     64       /* runcmd entries per role */
#define RANGE_RUNCMD_BYTES_MAX 4096   /* one command */
#define RANGE_RESOURCES_BYTES_MAX (PATH_MAX - 1) /* a resources path */
#define RANGE_NODE_MAX       63       /* a cluster node's name (herdd's node:) */

/* Same order and names as enum netdev_role (herd/netdev.h), so a cast or
 * netdev_role_parse(range_network_name(n)) both work. */
enum range_network {
    RANGE_NET_MANAGEMENT,
    RANGE_NET_STORAGE,
    RANGE_NET_SERVICE,
    RANGE_NET_COMMUNICATION,
    RANGE_NET_COUNT
};

struct range_err {
    char field[128];   /* "scenarios[1].roles[0].nics[0].network"; "" for the document */
    char msg[320];     /* starts with the field path when there is one */
    int line, column;  /* 1-based; 0 when unknown */
};

struct range_nic {
    enum range_network network;
    char segment[RANGE_PART_MAX + 1]; /* "" = the role's own bridge */
    /* explicit addresses, one per guest of the role (n = the role's count),
     * IPv4; NULL when absent (allocated); addr_line[i]: where item i is */
    struct ipam_addr *addresses;
    int *addr_line;
};

/* overrides[i]: guest `guest` (1..count) gets `address` on nics[nic]. */
struct range_override {
    unsigned guest;
    unsigned nic;
    struct ipam_addr address;
    int line;
};

/* Addressing of one network (segment "") or one segment of a network. */
struct range_subnet {
    enum range_network network;
    char segment[RANGE_PART_MAX + 1];
    struct ipam_net v4;              /* the subnet (always given) */
    bool has_gateway;
    struct ipam_addr gateway;        /* inside v4, not its network/broadcast */
    bool has_v6;
    struct ipam_net v6;              /* optional IPv6 prefix */
    bool dhcp;                       /* herdd serves DHCPv4 on the scope's bridge */
    struct ipam_addr dhcp_server;    /* its address: the highest host that is
                                      * not the gateway (set when dhcp) */
    int line;
};

struct range_role {
    char name[RANGE_PART_MAX + 1];
    char template_name[RANGE_TEMPLATE_MAX + 1];
    unsigned count;                 /* 1..RANGE_COUNT_MAX */
    unsigned cpus;                  /* 0 = the template's default */
    uint64_t mem;                   /* bytes; 0 = the template's default */
    bool nics_set;                  /* false: use the template's NICs */
    size_t n_nics;
    struct range_nic nics[RANGE_NICS_MAX];
    size_t n_overrides;
    struct range_override *overrides;
    size_t n_runcmd;                /* runcmd: shell commands, byte-exact, */
    char **runcmd;                  /* malloc'd; NULL when absent or [] */
    char node[RANGE_NODE_MAX + 1];  /* node: "" when absent (any node) */
    bool spread;                    /* spread: guests over the nodes */
    int line;                       /* where the role starts in the YAML */
};

struct range_scenario {
    char name[RANGE_PART_MAX + 1];
    size_t n_roles;
    struct range_role *roles;
    char *resources;                /* its own resource disk (replaces the
                                     * range's); malloc'd, NULL when absent */
    int line;
};

struct range_spec {
    char name[RANGE_NAME_MAX + 1];
    size_t n_scenarios;
    struct range_scenario *scenarios;
    size_t n_guests;                /* sum of the counts, <= RANGE_GUESTS_MAX */
    size_t n_subnets;               /* networks: in file order, networks' own */
    struct range_subnet *subnets;   /* subnet before their segments' */
    size_t n_ssh_keys;              /* ssh_authorized_keys, each passed */
    char **ssh_keys;                /* range_ssh_key_check(); malloc'd */
    char *resources;                /* the range-wide resource disk: an
                                     * absolute path; malloc'd, NULL when absent */
    bool replace_lost;              /* on_node_loss: replace (false: keep) */
};

/* One guest of the expanded range. The pointers point into the spec, which
 * must outlive the array. */
struct range_guest {
    char name[RANGE_GUEST_NAME_MAX + 1];   /* "lab1-red-attacker-3" */
    const struct range_scenario *scenario;
    const struct range_role *role;         /* template, cpus, mem, nics */
    unsigned index;                        /* n, 1..role->count */
};

/* Parses and validates len bytes of YAML (need not be NUL-terminated). */
int range_spec_parse(const char *buf, size_t len, struct range_spec **out,
                     struct range_err *err);
/* Reads path (at most RANGE_SPEC_BYTES_MAX) and parses it; err->field is ""
 * and err->msg names the file on an I/O error. */
int range_spec_load(const char *path, struct range_spec **out,
                    struct range_err *err);
void range_spec_free(struct range_spec *spec);

/* Every guest, in order: scenarios, then roles, then n = 1..count.
 * *out is malloc'd (free() it); *n = spec->n_guests. */
int range_spec_expand(const struct range_spec *spec, struct range_guest **out,
                      size_t *n);

/* "<range>-<scenario>-<role>-<n>" into out; -EINVAL if index is 0 or over
 * the role's count, -ENAMETOOLONG if it would not fit (cannot happen for a
 * validated spec). */
int range_guest_name(char out[RANGE_GUEST_NAME_MAX + 1],
                     const struct range_spec *spec,
                     const struct range_scenario *sc,
                     const struct range_role *role, unsigned index);

/* "management", "storage", "service", "communication"; NULL if out of range. */
const char *range_network_name(enum range_network net);
/* -EINVAL for anything else (exact, lower case). */
int range_network_parse(const char *name, enum range_network *out);
/* 0 if s is a valid name of at most max chars from [a-z0-9-] starting and
 * ending with a letter or digit; -EINVAL / -ENAMETOOLONG otherwise. */
int range_name_check(const char *s, size_t max);
/* "64M", "1G", "4096", "2T" (binary multiples, optional trailing 'B' or
 * "iB": "64MiB") into bytes; -EINVAL for anything else, -ERANGE on overflow. */
int range_parse_size(const char *s, uint64_t *out);

/* One OpenSSH public key line, "TYPE BASE64 [COMMENT]" (as in a .pub file or
 * authorized_keys, without options): at most RANGE_SSH_KEY_BYTES_MAX bytes,
 * one line; TYPE one of ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521,
 * sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com; BASE64
 * strict (standard alphabet, correct padding) and decoding to a blob that
 * starts with the string TYPE (uint32 big-endian length, then the bytes),
 * 51 bytes in all for ssh-ed25519; COMMENT printable ASCII. Fields are
 * separated by spaces; no leading space. 0, or -EINVAL with a one-line
 * reason in why (when why_size > 0), e.g. "unknown key type 'ssh-dss'". */
int range_ssh_key_check(const char *line, char *why, size_t why_size);

#endif
