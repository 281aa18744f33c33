#!/bin/bash
# herd-test-needs: kvm
# herdd ranges, in a private network namespace:
#  1. `herdctl range up examples/range.yaml` (2 scenarios, 5 roles, 16 probe
#     guests; 20 API clients at once, 200 in make check-full
#     guests on role and segment bridges): every guest ready, distinct
#     overlays and MACs, taps on the right bridges, the parent's sha256
#     unchanged; range reset brings every guest back on a fresh overlay;
#     `range reset lab1 GUEST...` resets those only, a bad selection (not
#     the range's, twice, not a list) is a 400 that resets none;
#     after a graceful stop `qemu-img check` is clean on every overlay;
#     `range down` leaves no herd-vmm, tap, overlay, socket or segment bridge.
#  2. A 40-guest range (16 in make check): herdd is killed (SIGKILL) in the middle of `range
#     up` and restarted: every guest that was started is running and listed
#     once, the others are listed as not started, no herd-vmm is lost or
#     doubled; `range up` again completes it; 40 distinct overlays and MACs,
#     qemu-img check clean; down leaves nothing.
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"

write_config "capacity: {cpu_overcommit: 64}
ready_timeout: 600"
start_herdd
make_parent
add_probe_template probe >/dev/null || fail "template add"


# check_range NAME COUNT: all ready, distinct overlays/MACs, overlays on the parent
check_range() {
    local name=$1 count=$2
    hc --json range status "$name" > "$tmp/status.json" || { fail "range status $name"; return; }
    python3 - "$tmp/status.json" "$count" "$parent" "$tmp/state/vms" <<'PY' || fail "range $name checks"
import json, sys, os, subprocess
d = json.load(open(sys.argv[1])); count = int(sys.argv[2]); parent = sys.argv[3]; vmdir = sys.argv[4]
vms = d["vms"]
bad = []
if len(vms) != count: bad.append(f"{len(vms)} guests listed, expected {count}")
names = [v["name"] for v in vms]
if len(set(names)) != len(names): bad.append("a guest is listed twice")
notready = [v["name"] for v in vms if not v["ready"] or v["state"] != "running"]
if notready:
    bad.append(f"not ready: {notready}")
    for n in notready[:3]:
        v = [x for x in vms if x["name"] == n][0]
        print(f"  {n}: state {v['state']}, note {v.get('note')}, exit {v.get('exit')}")
        try:
            print("  vmm.log: " + open(os.path.join(vmdir, n, "vmm.log")).read()[-600:])
        except OSError as e:
            print(f"  vmm.log: {e}")
macs = [n["mac"] for v in vms for n in v["nics"]]
if len(set(macs)) != len(macs): bad.append("MACs are not distinct")
taps = [n["tap"] for v in vms for n in v["nics"]]
if len(set(taps)) != len(taps): bad.append("taps are not distinct")
disks = set()
for v in vms:
    p = os.path.join(vmdir, v["name"], "disk.qcow2")
    info = json.loads(subprocess.check_output(["qemu-img", "info", "-U", "--output=json", p]))
    if info.get("backing-filename") != parent or info.get("backing-filename-format") != "raw":
        bad.append(f"{p}: backing {info.get('backing-filename')} / {info.get('backing-filename-format')}")
    disks.add(os.stat(p).st_ino)
if len(disks) != count: bad.append(f"{len(disks)} distinct overlays, expected {count}")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
PY
}

check_taps_on_bridges() { # NAME
    local line vmname
    hc --json range status "$1" | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vms"]:
    for n in v["nics"]: print(n["tap"], n["bridge"])' | while read -r tap br; do
        ip -n "$ns" -d link show "$tap" 2>/dev/null | grep -q "master $br " ||
            { echo "FAIL: $tap is not on $br"; return 1; }
    done || fail "taps on bridges"
}



# 200 concurrent API clients in make check-full; 20 in make check (in the
# nested host 200 clients spawn 2400 curl processes under emulation, which
# takes minutes and says nothing more about herdd).
nclients=20
[ "${HERD_CHECK_FULL:-0}" = 1 ] && nclients=200
echo "== 1. range up examples/range.yaml, $nclients API clients meanwhile, events followed"
hc node plan "$root/examples/range.yaml" || fail "node plan"
hc events --type vm.ready > "$tmp/events.txt" 2>&1 &
events_pid=$!
client() { # N: list, inspect, node, a few times; any non-200 or hang is a failure
    local i code
    for i in 1 2 3; do
        for p in /v1/vms /v1/vms/lab1-red-attacker-1 /v1/node /v1/ranges; do
            code=$(curl -s -m 30 --unix-socket "$sock" -o /dev/null -w '%{http_code}' "http://herd$p")
            case $code in 200|404) ;; *) echo "client $1: $p -> $code"; return 1 ;; esac
        done
    done
}
cpids=()
for c in $(seq "$nclients"); do client "$c" > "$tmp/client-$c.log" 2>&1 & cpids+=($!); done
start=$(date +%s%N)
hc range up "$root/examples/range.yaml" || fail "range up"
echo "range up: $(( ($(date +%s%N) - start) / 1000000 )) ms"
cfail=0
for p in "${cpids[@]}"; do wait "$p" || cfail=$((cfail + 1)); done
[ "$cfail" -eq 0 ] || { fail "$cfail of $nclients API clients failed"; cat "$tmp"/client-*.log | head -5; }
sleep 0.2
kill "$events_pid" 2>/dev/null
[ "$(grep -c 'vm.ready *lab1-' "$tmp/events.txt")" = 16 ] ||
    fail "events: $(grep -c 'vm.ready' "$tmp/events.txt") vm.ready lines for lab1, expected 16"
hc range status lab1 | head -5
check_range lab1 16
check_taps_on_bridges lab1
red_br=$(vm_field lab1-red-attacker-1 'd["nics"][0]["bridge"]') # lab1's own red-net
[ "$red_br" != hsc-red-net ] || fail "lab1's red-net is the shared bridge hsc-red-net"
ip -n "$ns" link show "$red_br" >/dev/null 2>&1 || fail "segment bridge $red_br missing"
[ "$(vmm_count)" = 16 ] || fail "$(vmm_count) herd-vmm processes, expected 16"
hc range up "$root/examples/range.yaml" >/dev/null || fail "range up again (idempotent)"
[ "$(vmm_count)" = 16 ] || fail "range up again changed the guests: $(vmm_count) herd-vmm"

echo "== range reset"
hc range reset lab1 || fail "range reset"
for v in $(range_vms lab1); do
    wait_ready "$v" 20 || fail "$v not ready after reset"
done
check_range lab1 16

echo "== range reset of named guests: those only; a bad selection resets none"
pids() { for v in $(range_vms lab1); do echo "$v $(vm_field "$v" 'd["pid"]')"; done; }
pids > "$tmp/pids.before"
for body in '{"vms":["lab1-nope"]}' '{"vms":["lab1-red-attacker-1","lab1-red-attacker-1"]}' \
            '{"vms":[]}' '{"vms":"lab1-red-attacker-1"}' '{"vms":[7]}' '{"guests":[]}'; do
    out=$(api POST /v1/ranges/lab1/reset "$body")
    echo "   $body -> $out"
    case $out in 400\ *'"field"'*) ;; *) fail "reset $body: $out (400 with a field expected)" ;; esac
done
pids | cmp -s - "$tmp/pids.before" || fail "a refused reset changed guests"
hc range reset lab1 lab1-red-attacker-1 lab1-blue-web-1 || fail "range reset of two guests"
for v in lab1-red-attacker-1 lab1-blue-web-1; do wait_ready "$v" 20 || fail "$v not ready"; done
pids > "$tmp/pids.after"
changed=$(diff "$tmp/pids.before" "$tmp/pids.after" | sed -n 's/^> \([^ ]*\) .*/\1/p' | sort | tr '\n' ' ')
[ "$changed" = "lab1-blue-web-1 lab1-red-attacker-1 " ] || fail "reset changed: '$changed'"
check_range lab1 16

echo "== stop, qemu-img check, range down"
stop_and_check_overlays lab1
[ "$(sha256sum < "$parent")" = "$parent_sum" ] || fail "the parent changed"
hc range down lab1 || fail "range down"
check_nothing_left
ip -n "$ns" link show hbr-comm >/dev/null 2>&1 || fail "range down removed a role bridge"

# 40 guests in make check-full, 16 in make check (the same kill and restart)
big=16
[ "${HERD_CHECK_FULL:-0}" = 1 ] && big=40
echo "== 2. $big guests, herdd SIGKILLed mid range up"
python3 - "$((big / 4))" > "$tmp/big.yaml" <<'PY'
import sys
n = int(sys.argv[1])
print("range: big\nscenarios:")
for s in ("alpha", "beta"):
    print(f"  - name: {s}\n    roles:")
    for r in ("att", "web"):
        print(f"      - name: {r}\n        template: probe\n        count: {n}\n        nics:\n"
              f"          - {{network: communication, segment: {s}}}\n          - {{network: management}}")
PY
hc range up "$tmp/big.yaml" --detach >/dev/null || fail "range up --detach"
for _ in $(seq 500); do # kill once a few guests are started
    n=$(ls "$tmp/state/run" | wc -l)
    [ "$n" -ge 6 ] && break
    sleep 0.005
done
stop_herdd KILL
sleep 0.2 # let herd-vmm processes spawned just before the kill settle
started_before=$(vmm_count)
echo "herdd killed with $started_before herd-vmm running"
start_herdd
hc --json range status big > "$tmp/st.json"
python3 - "$tmp/st.json" "$started_before" "$big" <<'PY' || fail "state after the herdd restart"
import json, sys
d = json.load(open(sys.argv[1])); before = int(sys.argv[2])
vms = d["vms"]; bad = []
names = [v["name"] for v in vms]
if len(set(names)) != len(names): bad.append("a guest is listed twice")
running = [v for v in vms if v["state"] == "running"]
if len(running) != before: bad.append(f"{len(running)} running, {before} herd-vmm alive")
odd = [v["name"] + ":" + v["state"] for v in vms if v["state"] not in ("running", "created")]
if odd: bad.append(f"unexpected states: {odd}")
total = int(sys.argv[3])
if d["not_started"] + len(running) != total: bad.append(f"not_started {d['not_started']} + running {len(running)} != {total}")
print(f"after restart: {len(running)} running, {d['not_started']} not started, state {d['state']}")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
PY
[ "$(vmm_count)" = "$started_before" ] || fail "herd-vmm count changed across the restart"
start=$(date +%s%N)
hc range up "$tmp/big.yaml" || fail "range up after the restart"
echo "range up (completion): $(( ($(date +%s%N) - start) / 1000000 )) ms"
check_range big "$big"
[ "$(vmm_count)" = "$big" ] || fail "$(vmm_count) herd-vmm, expected $big"
stop_and_check_overlays big
[ "$(sha256sum < "$parent")" = "$parent_sum" ] || fail "the parent changed"
hc range down big || fail "range down big"
check_nothing_left
hc audit verify >/dev/null || fail "audit verify"
finish
