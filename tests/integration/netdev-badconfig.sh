#!/bin/bash
# Bad configuration gets a precise error (message and field) and leaves the
# host as it was: nothing created, nothing changed, even when the kernel
# refuses a step half way (the undo log removes what was made).
. "$(dirname "$0")/netdev-lib.bash"
netdev_preflight
make_nodes 1500
ip link add eth9 netns "$NS1" mtu 1400 type veth peer name eth9p netns "$NS1"
ip -n "$NS1" link add br-other type bridge
ip -n "$NS1" link add eth8 type veth peer name eth8p
ip -n "$NS1" link set eth8 master br-other
ip -n "$NS1" link add hbr-mgmt mtu 1400 type bridge
ip -n "$NS1" link add hbr-svc type veth peer name hbr-svcp

n=0
# expect JSON FIELD MESSAGE-PART
expect() {
    local json=$1 field=$2 part=$3 before after
    n=$((n + 1))
    printf '%s\n' "$json" > "$TMP/bad$n.json"
    before=$(links "$NS1")
    ctl "$NS1" setup "$TMP/bad$n.json" > "$TMP/out" 2> "$TMP/err" &&
        fail "case $n accepted: $json"
    after=$(links "$NS1")
    grep -qF -- "$part" "$TMP/err" || fail "case $n: wrong message: $(cat "$TMP/err")"
    grep -qxF "field: $field" "$TMP/err" || fail "case $n: wrong field: $(cat "$TMP/err")"
    [ "$before" = "$after" ] || fail "case $n changed the host: $(diff <(echo "$before") <(echo "$after"))"
    echo "case $n: $(head -1 "$TMP/err")"
}

VX='"vxlan": {"vni": 1001, "local": "10.99.0.1", "remote": "10.99.0.2"}'
# Static errors.
expect '{"roles": {"management": {"bridge": "hbr-management-01"}}}' roles.management.bridge "at most 15 allowed"
expect '{"roles": {"mgmt": {"bridge": "hbr-m"}}}' roles "unknown role 'mgmt'"
expect '{"roles": {"storage": {"bridge": "hbr-s", "mtu": 70000}}}' roles.storage.mtu "70000 out of range (68..65535)"
expect '{"roles": {"storage": {"bridge": "hbr-s", "mtu": 10}}}' roles.storage.mtu "10 out of range"
expect '{"roles": {"communication": {"bridge": "hbr-c", "segments": [{"name": "no/slash"}]}}}' \
    "roles.communication.segments[0].name" "segment name 'no/slash'"
expect '{"roles": {"communication": {"bridge": "hbr-c", "vxlan": {"vni": 0, "local": "10.99.0.1", "remote": "10.99.0.2"}}}}' \
    roles.communication.vxlan.vni "0 out of range (1..16777215)"
# Host-dependent errors (found before anything is changed).
expect '{"roles": {"management": {"bridge": "hbr-mgmt"}}}' roles.management \
    "bridge 'hbr-mgmt' exists with MTU 1400; the configuration says 1500"
expect '{"roles": {"service": {"bridge": "hbr-svc"}}}' roles.service "exists but is a veth, not a bridge"
expect '{"roles": {"storage": {"bridge": "hbr-s", "uplink": "eth7"}}}' roles.storage "uplink 'eth7' does not exist"
expect '{"roles": {"storage": {"bridge": "hbr-s", "uplink": "eth9"}}}' roles.storage \
    "uplink 'eth9' has MTU 1400, below the bridge MTU 1500"
expect '{"roles": {"storage": {"bridge": "hbr-s", "uplink": "eth8"}}}' roles.storage \
    "uplink 'eth8' is already a port of 'br-other'"
expect "{\"roles\": {\"communication\": {\"bridge\": \"hbr-c\", $VX}}}" roles.communication.vxlan \
    "underlay 'und0' has MTU 1500, which cannot carry the bridge MTU 1500 plus 50 bytes"
expect '{"roles": {"communication": {"bridge": "hbr-c", "mtu": 1400, "vxlan": {"vni": 7, "local": "10.77.0.1", "remote": "10.99.0.2"}}}}' \
    roles.communication.vxlan "local address 10.77.0.1 is not configured on this node"
# A later entry is wrong: the earlier, valid ones must not be created either.
expect "{\"roles\": {\"storage\": {\"bridge\": \"hbr-s\"}, \"communication\": {\"bridge\": \"hbr-c\", $VX}}}" \
    roles.communication.vxlan "cannot carry"
# The kernel refuses half way (lo cannot be a bridge port): rolled back.
expect '{"roles": {"storage": {"bridge": "hbr-s"}, "service": {"bridge": "hbr-v", "uplink": "lo"}}}' \
    roles.service "attaching uplink 'lo' to 'hbr-v'"
ok "$n bad configurations refused with precise errors, host unchanged"
