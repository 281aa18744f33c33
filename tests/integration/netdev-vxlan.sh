#!/bin/bash
# Two nodes (network namespaces joined by a veth underlay) get the same role
# bridges and a VXLAN uplink on the communication segment "red":
#  - setup creates them; a second setup is a no-op (no netlink event at all);
#  - a tap on node 1's segment exchanges frames with a tap on node 2's, over
#    VXLAN; a tap on node 1's management bridge sees none of it;
#  - teardown leaves exactly the links that were there before.
. "$(dirname "$0")/netdev-lib.bash"
netdev_preflight
make_nodes 1500

node_config 10.99.0.1 10.99.0.2 > "$TMP/n1.json"
node_config 10.99.0.2 10.99.0.1 > "$TMP/n2.json"
links "$NS1" > "$TMP/n1.before"
links "$NS2" > "$TMP/n2.before"

ctl "$NS1" check "$TMP/n1.json" 2> "$TMP/check.err" && fail "check passed before setup"
grep -q "does not exist" "$TMP/check.err" || fail "check: $(cat "$TMP/check.err")"
ctl "$NS1" setup "$TMP/n1.json" || fail "setup node 1"
ctl "$NS2" setup "$TMP/n2.json" || fail "setup node 2"
ctl "$NS1" check "$TMP/n1.json" || fail "check after setup"
ok "setup on both nodes"

for br in hbr-mgmt hbr-stor hbr-svc hbr-comm hsc-red; do
    ip -n "$NS1" -d link show "$br" | grep -q "bridge " || fail "$br is not a bridge"
done
ip -n "$NS1" link show hbr-stor | grep -q "mtu 9000" || fail "hbr-stor MTU"
ip -n "$NS1" -d link show hx-1001 > "$TMP/vx"
grep -q "vxlan id 1001 remote 10.99.0.2 local 10.99.0.1" "$TMP/vx" || fail "vxlan: $(cat "$TMP/vx")"
grep -q "master hsc-red" "$TMP/vx" || fail "hx-1001 not on hsc-red"
grep -q "mtu 1450" "$TMP/vx" || fail "hx-1001 MTU"
ok "bridges and VXLAN device as configured"

# Second run: no change at all. ip monitor would print any link event.
links "$NS1" > "$TMP/n1.after1"
ip -n "$NS1" monitor link > "$TMP/monitor" 2>&1 &
mon=$!
sleep 0.5
ctl "$NS1" setup "$TMP/n1.json" || fail "second setup"
sleep 0.5
kill "$mon"
wait "$mon" 2>/dev/null
[ -s "$TMP/monitor" ] && fail "second setup changed links: $(cat "$TMP/monitor")"
links "$NS1" > "$TMP/n1.after2"
diff "$TMP/n1.after1" "$TMP/n1.after2" || fail "second setup changed the link list"
ok "second setup is a no-op (no netlink link event, same ifindexes)"

"$TAPIO" exchange "$NS1" hsc-red "$NS2" hsc-red "$NS1" hbr-mgmt 100 || fail "exchange"
ok "frames cross nodes on the segment, management bridge isolated"

# Taps vanished with the process that held them.
ip -n "$NS1" -o link show | grep -q " ht-" && fail "taps left behind"
ctl "$NS1" teardown "$TMP/n1.json" || fail "teardown node 1"
ctl "$NS2" teardown "$TMP/n2.json" || fail "teardown node 2"
links "$NS1" > "$TMP/n1.end"
links "$NS2" > "$TMP/n2.end"
diff "$TMP/n1.before" "$TMP/n1.end" || fail "node 1: teardown left links"
diff "$TMP/n2.before" "$TMP/n2.end" || fail "node 2: teardown left links"
ctl "$NS1" teardown "$TMP/n1.json" || fail "second teardown"
ok "teardown leaves exactly the links from before"
