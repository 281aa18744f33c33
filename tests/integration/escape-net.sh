#!/bin/bash
# Network containment (issue 11, items 4 and 7a), through herdd, with the
# guest's herd-vmm assumed compromised: no guest is started and no
# userspace filter runs; the test itself opens the tap herdd made and
# writes into it what a hostile guest or VMM would (the vhost-net and the
# userspace path put frames into the tap the same way). herdd installed the
# kernel filter (nftables, ingress hook on the tap) when it made the tap:
#  - spoofed source MAC, ARP sender MAC and IP, IPv4 and IPv6 sources, NA
#    target, ND link-layer options, DAD for another address, ND behind a
#    destination-options header and fragmented, other ethertypes: dropped
#    and counted per reason (read with herdctl vm net); legitimate frames
#    delivered to another guest's tap on the bridge;
#  - a flood is held to the NIC's rate_limit (drops counted);
#  - herdctl vm rm leaves no rule of the guest in `nft list ruleset`, nor
#    does the crash recovery of a half-created guest (herdd restarted).
# Needs no KVM. Exit 0 pass, 77 skip, else fail.
set -u
herdd_lib_no_kvm=1
. "$(dirname "$0")/herdd-lib.sh"
command -v nft >/dev/null || skip "nft (package nftables) is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
GUEST=$(dirname "$0")/netdev-kfilter-guest.py
RATE=200000

write_config "users: {0: [sysadmin, secadmin, auditor]}"
start_herdd
make_parent
nic='{"network": "communication", "addresses": ["10.1.0.5", "fd01::5"],
      "rate_limit": {"bandwidth": {"size": '$RATE', "refill_time": 1000}}}'
hc template add probe --image "$parent" --format raw --kernel "$probe" \
    --cmdline "probe.tests=boot" --mem 64M --nic "$nic" || fail "template add with a NIC policy"
out=$(api POST /v1/templates '{"name": "bad", "image": "'"$parent"'", "format": "raw",
      "kernel": "'"$probe"'", "nics": [{"network": "communication", "addresses": ["10.1.0.999"]}]}')
[[ $out == "400 "*'"field":"nics[0].addresses[0]"'* ]] || fail "bad address not refused: $out"
hc vm create g1 --template probe || fail "vm create g1"
hc vm create peer --template probe --nic communication || fail "vm create peer"
tap=$(vm_field g1 'd["nics"][0]["tap"]')
mac=$(vm_field g1 'd["nics"][0]["mac"]')
ptap=$(vm_field peer 'd["nics"][0]["tap"]')
ip netns exec "$ns" nft list table netdev "herd-$tap" | grep -q "hook ingress device \"$tap\"" ||
    fail "no kernel filter on $tap after create (before any start)"
ip netns exec "$ns" nft list table netdev "herd-$tap" | grep -q "ether saddr != $mac" ||
    fail "the filter of $tap does not pin $mac"

echo "== spoofing guest (no userspace filter)"
ip netns exec "$ns" python3 "$GUEST" spoof "$tap" "$ptap" "$mac" > "$tmp/spoof.log"
rc=$?
sed 's/^/   /' "$tmp/spoof.log"
[ $rc = 0 ] || fail "spoofed frames got through or legitimate ones were dropped"
hc vm net g1
hc --json vm net g1 > "$tmp/net.json" || fail "vm net"
python3 - "$tmp/spoof.log" "$tmp/net.json" <<'PY' || fail "herdctl vm net counters do not match"
import collections, json, sys
want = collections.Counter(l.split()[2] for l in open(sys.argv[1]) if l.startswith('missing '))
legit = sum(1 for l in open(sys.argv[1]) if l.startswith('delivered '))
f = json.load(open(sys.argv[2]))['nics'][0]['filter']
bad = [(r, want[r], f['drops'][r]['packets']) for r in set(want) | set(f['drops'])
       if want[r] != f['drops'][r]['packets']]
if bad or f['accepted']['packets'] < legit or f['addresses'] is None:
    print('   mismatch (reason, expected, counted):', bad, f['accepted'])
    sys.exit(1)
PY

echo "== flood over the NIC's rate limit ($RATE B/s)"
ip netns exec "$ns" python3 "$GUEST" flood "$tap" "$ptap" "$mac" 3 > "$tmp/flood.log" || fail "flood"
read -r _ sent _ got _ dt < "$tmp/flood.log"
limited=$(jget "$(hc --json vm net g1)" 'd["nics"][0]["filter"]["drops"]["rate_bytes"]["packets"]')
echo "   $sent frames offered in $dt s, $got bytes delivered, $limited dropped by the limit"
python3 -c 'import sys; g, t, r = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]);
sys.exit(0 if r * t * 0.9 <= g <= (r * (t + 2) + 2000) * 1.1 else 1)' "$got" "$dt" $RATE ||
    fail "$got bytes in $dt s: not held to $RATE B/s"
[ "${limited:-0}" -gt 0 ] || fail "no rate-limited drops counted"

echo "== nothing left: rm, and crash recovery of a half-created guest"
hc vm rm g1 peer || fail "vm rm"
left=$(ip netns exec "$ns" nft list ruleset)
[ -z "$left" ] || { echo "$left"; fail "rules left after vm rm"; }
hc vm create g2 --template probe || fail "vm create g2"
tap2=$(vm_field g2 'd["nics"][0]["tap"]')
ip netns exec "$ns" nft list ruleset | grep -q "herd-$tap2" || fail "no filter on $tap2"
stop_herdd KILL
python3 - "$tmp/state/herdd.db" <<'PY' || fail "marking g2 half-created"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
doc = json.loads(db.execute("SELECT doc FROM vms WHERE name='g2'").fetchone()[0])
doc['state'] = 'creating'
db.execute("UPDATE vms SET state='creating', doc=? WHERE name='g2'", (json.dumps(doc),))
db.commit()
PY
start_herdd
ip -n "$ns" link show "$tap2" >/dev/null 2>&1 && fail "$tap2 left after crash recovery"
left=$(ip netns exec "$ns" nft list ruleset)
[ -z "$left" ] || { echo "$left"; fail "rules left after crash recovery"; }
finish
