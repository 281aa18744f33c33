# Shared by tests/integration/netdev-*.sh (sourced; not a test itself).
# Everything happens in network namespaces named hnt-<pid>-*, made here and
# deleted on exit whatever happens; the host's own interfaces are never
# touched.
set -u

BUILD=${HERD_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
CTL=$BUILD/tests/bin/netdev-ctl
TAPIO=$BUILD/tests/bin/netdev-tapio
PFX=hnt-$$
NS1=$PFX-n1
NS2=$PFX-n2
TMP=$(mktemp -d /tmp/$PFX.XXXXXX)
NETNS_MADE=()

netdev_cleanup() {
    local ns
    for ns in "${NETNS_MADE[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap netdev_cleanup EXIT

skip() { echo "$*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

netdev_preflight() {
    [ "$(id -u)" = 0 ] || skip "needs root (network namespaces, taps)"
    command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
    [ -x "$CTL" ] && [ -x "$TAPIO" ] || fail "test helpers missing: run make ($CTL, $TAPIO)"
    [ -c /dev/net/tun ] || skip "/dev/net/tun is missing"
    ip netns add "$PFX-probe" 2>/dev/null || skip "cannot create network namespaces"
    ip netns del "$PFX-probe"
}

# mkns NAME: a namespace with lo up, removed on exit.
mkns() {
    ip netns add "$1" || fail "ip netns add $1"
    NETNS_MADE+=("$1")
    ip -n "$1" link set lo up
}

# Two "nodes" joined by a veth pair (und0 on each side) as the underlay:
# node 1 is 10.99.0.1, node 2 10.99.0.2, MTU $1 (default 1500).
make_nodes() {
    local mtu=${1:-1500}
    mkns "$NS1"
    mkns "$NS2"
    ip link add und0 netns "$NS1" mtu "$mtu" type veth peer name und0 netns "$NS2" mtu "$mtu" \
        || fail "creating the underlay veth"
    ip -n "$NS1" addr add 10.99.0.1/24 dev und0
    ip -n "$NS2" addr add 10.99.0.2/24 dev und0
    ip -n "$NS1" link set und0 up
    ip -n "$NS2" link set und0 up
}

# node_config LOCAL REMOTE: the four roles, communication split into the
# segment "red" with a VXLAN uplink to the other node.
node_config() {
    cat <<JSON
{"roles": {
  "management":    {"bridge": "hbr-mgmt"},
  "storage":       {"bridge": "hbr-stor", "mtu": 9000},
  "service":       {"bridge": "hbr-svc"},
  "communication": {"bridge": "hbr-comm", "mtu": 1450,
     "segments": [{"name": "red",
        "vxlan": {"vni": 1001, "local": "$1", "remote": "$2", "dev": "und0"}}]}
}}
JSON
}

# Links of a namespace, one per line: "index name mtu N [master M]"
# (carrier and operstate left out: they move on their own).
links() {
    ip -n "$1" -o link show |
        sed -E 's/^([0-9]+): ([^:]+):.* mtu ([0-9]+)( .*master ([^ ]+))?.*/\1 \2 mtu \3 \5/' |
        sort
}

ctl() { # ctl NS ARGS...
    local ns=$1
    shift
    ip netns exec "$ns" "$CTL" "$@"
}
