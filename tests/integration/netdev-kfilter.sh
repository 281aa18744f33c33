#!/bin/bash
# The per-tap kernel filter (nftables, ingress hook on the tap), with no
# guest and no userspace filter at all: a python "guest"
# (netdev-kfilter-guest.py) opens the tap's queue as a compromised herd-vmm
# would and writes spoofed frames (source MAC, ARP sender MAC and IP, IPv4
# and IPv6 sources, ND targets and link-layer options, ND behind a
# destination-options header and fragmented, other ethertypes) among
# legitimate ones; a second tap on the bridge must receive exactly the
# legitimate ones, and the per-reason counters must match. Then a flood
# must be held to the NIC's byte bucket (rate-limited drops counted), and
# nothing of the filter may be left after removal, after the tap vanished
# (filter-cleanup) or after the crash cleanup of stale taps.
. "$(dirname "$0")/netdev-lib.bash"
netdev_preflight
command -v nft >/dev/null || skip "nft (package nftables) is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
GUEST=$(dirname "$0")/netdev-kfilter-guest.py
RATE=200000 # bytes/s, burst the same (refill_time 1000 ms)
mkns "$NS1"
ip netns exec "$NS1" nft list tables >/dev/null 2>&1 || skip "nf_tables is not available"
echo '{"roles": {"communication": {"bridge": "hbr-comm"}}}' > "$TMP/c.json"
ctl "$NS1" setup "$TMP/c.json" || fail "setup"
g=$(ctl "$NS1" tap-persist kfg hbr-comm) || fail "tap-persist"
p=$(ctl "$NS1" tap-persist kfp hbr-comm) || fail "tap-persist"
mac=0e:$(ip -n "$NS1" -o link show "$g" | sed -E 's/.*link\/ether fe:([0-9a-f:]+) .*/\1/')
nic='{"addresses": ["10.1.0.5", "fd01::5"],
      "rate_limit": {"bandwidth": {"size": '$RATE', "refill_time": 1000}}}'
ctl "$NS1" filter-install "$g" "$mac" "$nic" || fail "filter-install"
ip netns exec "$NS1" nft list table netdev "herd-$g" | grep -q "hook ingress device \"$g\"" ||
    fail "no ingress chain on $g"

# Spoofed frames: dropped in the kernel and counted by reason.
ip netns exec "$NS1" python3 "$GUEST" spoof "$g" "$p" "$mac" > "$TMP/spoof.log"
rc=$?
sed 's/^/   /' "$TMP/spoof.log"
[ $rc = 0 ] || fail "spoofed frames got through or legitimate ones were dropped"
ctl "$NS1" filter-stats "$g" > "$TMP/stats.json" || fail "filter-stats"
python3 - "$TMP/spoof.log" "$TMP/stats.json" <<'PY' || fail "counters do not match the frames"
import collections, json, sys
want = collections.Counter(l.split()[2] for l in open(sys.argv[1]) if l.startswith('missing '))
legit = sum(1 for l in open(sys.argv[1]) if l.startswith('delivered '))
st = json.load(open(sys.argv[2]))
bad = [(r, want[r], st['drops'][r]['packets']) for r in set(want) | set(st['drops'])
       if want[r] != st['drops'][r]['packets']]
print('   drops by reason:', dict(want), 'accepted:', st['accepted']['packets'])
if bad or st['accepted']['packets'] < legit:
    print('   mismatch (reason, expected, counted):', bad)
    sys.exit(1)
PY
ok "spoofed frames dropped by the kernel filter and counted per reason; legitimate ones delivered"

# Flood: held to the byte bucket. The kernel's bucket holds one second at
# the rate plus the burst, so at most RATE * (SECONDS + 1) + burst arrive.
secs=3
ip netns exec "$NS1" python3 "$GUEST" flood "$g" "$p" "$mac" $secs > "$TMP/flood.log" ||
    fail "flood"
read -r _ sent _ got _ dt < "$TMP/flood.log"
ctl "$NS1" filter-stats "$g" > "$TMP/stats.json" || fail "filter-stats"
limited=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["drops"]["rate_bytes"]["packets"])' "$TMP/stats.json")
echo "   flood: $sent frames offered in $dt s, $got bytes delivered, $limited dropped by the limit"
python3 - "$got" "$dt" $RATE <<'PY' || fail "delivered $got bytes in $dt s: not held to $RATE B/s"
import sys
got, dt, rate = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
hi = rate * (dt + 1) + rate + 2000
lo = rate * dt * 0.9
sys.exit(0 if lo <= got <= hi * 1.1 else 1)
PY
[ "$limited" -gt 0 ] || fail "no rate-limited drops counted"
ok "flood held to $RATE B/s by the kernel limiter ($limited frames dropped, counted)"

# Nothing left behind: removal, a tap that vanished, the crash cleanup.
ctl "$NS1" filter-remove "$g" || fail "filter-remove"
ip netns exec "$NS1" nft list ruleset | grep -q "$g" && fail "rules of $g left after removal"
ctl "$NS1" filter-remove "$g" || fail "filter-remove of a removed filter"
ctl "$NS1" filter-install "$g" "$mac" "$nic" || fail "filter-install again"
ctl "$NS1" filter-install "$p" "0e:00:00:00:00:01" '"communication"' || fail "filter-install open"
ip -n "$NS1" link del "$g"
n=$(ctl "$NS1" filter-cleanup) || fail "filter-cleanup"
[ "$n" = 1 ] || fail "filter-cleanup removed $n tables, expected 1"
ip netns exec "$NS1" nft list ruleset | grep -q "$g" && fail "rules of the vanished $g left"
ip netns exec "$NS1" nft list ruleset | grep -q "herd-$p" || fail "filter of the live $p removed"
removed=$(ctl "$NS1" cleanup-taps) || fail "cleanup-taps"
[ "$removed" = 1 ] || fail "cleanup-taps removed $removed taps, expected 1"
left=$(ip netns exec "$NS1" nft list ruleset)
[ -z "$left" ] || { echo "$left"; fail "rules left after the crash cleanup"; }
ok "no rules left after removal, a vanished tap, or cleanup of stale taps"
