#!/bin/bash
# Taps: a tap goes with the process (guest) that holds it; persistent taps a
# crash leaves behind are found and removed by netdev_tap_cleanup while taps
# in use stay; MACs are deterministic and collision-checked against the host.
. "$(dirname "$0")/netdev-lib.bash"
netdev_preflight
mkns "$NS1"
echo '{"roles": {"management": {"bridge": "hbr-mgmt"}}}' > "$TMP/m.json"
ctl "$NS1" setup "$TMP/m.json" || fail "setup"

# Crash leftovers: persistent taps nobody holds.
t1=$(ctl "$NS1" tap-persist crash1 hbr-mgmt) || fail "tap-persist"
t2=$(ctl "$NS1" tap-persist range7-scenario3-webserver-12 hbr-mgmt) || fail "tap-persist"
t3=$(ctl "$NS1" tap-persist crash3 hbr-mgmt 4) || fail "tap-persist multi-queue"
ip -n "$NS1" -d link show "$t3" | grep -q "multi_queue numqueues 0" || fail "$t3 is not an idle multi-queue tap"
[ "$t1" = ht-crash1-0 ] || fail "tap name $t1"
[ ${#t2} -le 15 ] || fail "tap name $t2 longer than 15"
ip -n "$NS1" -o link show "$t1" | grep -q "master hbr-mgmt" || fail "$t1 not on the bridge"
mac=$(ctl "$NS1" mac crash1 0)
ip -n "$NS1" -o link show "$t1" | grep -q "link/ether fe:${mac#0e:}" || fail "$t1 host-side MAC is not fe:${mac#0e:}"
# A live one: held open by a running process (a single-queue tap in use).
ip netns exec "$NS1" python3 - "$TMP/held" <<'PY' &
import fcntl, os, struct, sys, time
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'ht-live-0', 0x0002 | 0x1000))
open(sys.argv[1], 'w').close()
time.sleep(30)
PY
holder=$!
for _ in $(seq 50); do [ -e "$TMP/held" ] && break; sleep 0.1; done
[ -e "$TMP/held" ] || fail "holder did not start"
removed=$(ctl "$NS1" cleanup-taps) || fail "cleanup-taps"
[ "$removed" = 3 ] || fail "cleanup removed $removed taps, expected 3"
ip -n "$NS1" link show "$t1" >/dev/null 2>&1 && fail "$t1 still there"
ip -n "$NS1" link show ht-live-0 >/dev/null 2>&1 || fail "the tap in use was removed"
kill "$holder"
wait "$holder" 2>/dev/null
ok "stale taps removed ($removed), the tap in use kept"

# Deterministic MAC; a MAC already on the host is skipped.
m1=$(ctl "$NS1" mac web01 0)
[ "$m1" = "$(ctl "$NS1" mac web01 0)" ] || fail "MAC not deterministic"
ip -n "$NS1" link add mcol type veth peer name mcolp
ip -n "$NS1" link set mcol address "$m1"
m2=$(ctl "$NS1" mac web01 0)
[ "$m1" != "$m2" ] || fail "collision with a MAC on the host not avoided"
ok "MAC $m1 deterministic; taken on the host -> $m2"

ctl "$NS1" teardown "$TMP/m.json" || fail "teardown"
ip -n "$NS1" -o link show | grep -q hbr-mgmt && fail "bridge left"
ok "teardown"
