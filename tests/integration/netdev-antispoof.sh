#!/bin/bash
# Anti-spoofing on the userspace packet path, across two nodes: node 1's
# "guest" sends legitimate frames and frames with a spoofed source MAC,
# source IPv4, ARP sender IP and source IPv6 through its netpath filter
# (allowed: 10.1.0.5, fd01::5); node 2's tap must receive exactly the
# legitimate ones, the sender's drop counters must match, and node 2's
# receive filter (promiscuous off) drops the flooded unicast for other MACs.
. "$(dirname "$0")/netdev-lib.bash"
netdev_preflight
make_nodes 1500
node_config 10.99.0.1 10.99.0.2 > "$TMP/n1.json"
node_config 10.99.0.2 10.99.0.1 > "$TMP/n2.json"
ctl "$NS1" setup "$TMP/n1.json" || fail "setup node 1"
ctl "$NS2" setup "$TMP/n2.json" || fail "setup node 2"
"$TAPIO" spoof "$NS1" hsc-red "$NS2" hsc-red 50 || fail "spoofed frames got through or counters are off"
ok "spoofed frames dropped and counted, legitimate ones delivered"
