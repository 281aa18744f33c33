#!/bin/bash
# herd-test-needs: kvm
# Segments across nodes over VXLAN, and a partitioned node (docs/cluster.md
# "Segments across nodes", "A partitioned node"). Three nodes, each in a
# network namespace of its own (cluster-lib.sh netns_up) with its own herdd,
# state dir and bridges; an underlay bridge between them, etcd listening on
# it; each node's cluster address is its underlay address. Checks:
#  - hostile keys in etcd first: /herd/vni/15728640 held by something that
#    is not herd's JSON, /herd/vni/junk: both left alone, the VNIs the range
#    gets are others;
#  - a range with two segments: red (talking probes a on n1, b on n2) and
#    blue (listening probes c on n1, d on n3): red and blue each get a VNI
#    of their own (/herd/vni/N naming range and segment, the range's
#    segments record naming nodes and underlay addresses); n1 has both
#    segment bridges, each with its VXLAN device whose all-zero FDB entries
#    are exactly the other hosting node's underlay address; n2 has red only,
#    n3 blue only;
#  - a and b exchange every frame over VXLAN (`net: sent N received N lost
#    0`, the VXLAN devices counting the packets), and c and d, one of them
#    on a node with a red talker, hear no herd-probe frame;
#  - hostile segments records (an address that is not one, a VNI out of
#    range, not JSON): logged and left out (a peer fewer, the bridge kept),
#    no herdd harmed; range up again writes the record anew and the peers
#    come back; NIC addresses on a cluster are still a 400 naming the field;
#  - placement changes: the range brought up with a red guest on n3 too:
#    n3 gets a red bridge, and red's peers on n1 and n2 gain n3's address;
#    brought back: n3's red bridge, VXLAN device and entries go, the peers
#    are what they were;
#  - the partition: n2's underlay link set down. Its lease expires: after
#    the TTL the others show its guest lost (range.lost), its guest keeps
#    running (the same herd-vmm, ready on n2's own API), its bridges and
#    FDB stay; link up: n2 registers again, the guest is found (lost 0,
#    range.found), nothing doubled (each guest on one node, once, same pid);
#    red reset after it: a and b exchange frames over VXLAN again;
#  - a range with on_node_loss: replace and a segment green on all three
#    nodes: during the partition n2's guest is placed anew, green's record
#    and the other nodes' peers lose n2; back, n2 removes its old copy and
#    its green bridge; each guest once;
#  - range down while n3's herdd is killed: n1 and n2 remove their bridges
#    at once; n3's stay (its guest runs on) until its herdd is back, which
#    then removes the guest and the bridges (STATE/cluster-segments.json);
#  - range down: no guest, no segment bridge, VXLAN device or FDB entry on
#    any node, no /herd/segments/, /herd/vni/ key of the range, assignment
#    or status; the hostile VNI keys are still there.
# Exit 0 pass, 77 skip (not root, no /usr/bin/etcd, no /dev/kvm, not built,
# no network namespaces), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
herdd_bin=${HERD_HERDD:-$build/bin/herdd}
herdctl_bin=${HERD_HERDCTL:-$build/bin/herdctl}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf
etcd_bin=${HERD_ETCD:-/usr/bin/etcd}
ttl=3
frames=400 # DATA frames each red talker sends
listen=15  # seconds the blue listeners listen

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (herdd, network namespaces)"
[ -x "$etcd_bin" ] || skip "$etcd_bin is missing (apt-get install etcd-server)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is missing or not accessible"
for f in "$herdd_bin" "$herdctl_bin" "$vmm" "$probe"; do
    [ -x "$f" ] || [ -r "$f" ] || skip "$f is not built"
done
for t in curl python3 ip bridge; do
    command -v $t >/dev/null || skip "$t is not installed"
done

tmp=$(mktemp -d /tmp/herd-cvx.XXXXXX)
chmod 755 "$tmp"
declare -A pid=()
etcd_pid=
failures=0
t0=$EPOCHREALTIME

. "$root/tests/integration/cluster-lib.sh"

test_pids() { pgrep -f "$tmp/" | grep -vx "$$"; }
cleanup() {
    local n p
    for n in "${!pid[@]}"; do
        [ -n "${pid[$n]}" ] && { kill -KILL "${pid[$n]}"; wait "${pid[$n]}"; } 2>/dev/null
    done
    [ -n "$etcd_pid" ] && { kill -KILL "$etcd_pid"; wait "$etcd_pid"; } 2>/dev/null
    for p in $(test_pids); do kill -KILL "$p" 2>/dev/null; done
    netns_down
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

netns_up n1 n2 n3 > "$tmp/netns.err" 2>&1 || skip "cannot make the namespaces: $(cat "$tmp/netns.err")"

start_herdd() { # NAME
    local n=$1
    mkdir -p "$tmp/$n"
    cat > "$tmp/$n.yaml" <<YAML
node: $n
state_dir: $tmp/$n/state
socket: $tmp/$n.sock
vmm: $vmm
image_dirs: [$tmp/images, $build]
cgroup_root: "off"
network_setup: true
stop_timeout: 5
capacity: {cpu_overcommit: 8}
guest_uids: {first: $((400000 + ${n#n} * 1000)), count: 1000}
roles:
  management: {bridge: hbr-mgmt}
  communication: {bridge: hbr-comm}
cluster:
  endpoints: [$endpoint]
  address: ${addr[$n]}
  lease_ttl: $ttl
YAML
    ip netns exec "${ns[$n]}" "$herdd_bin" --config "$tmp/$n.yaml" >> "$tmp/$n.log" 2>&1 &
    pid[$n]=$!
    herdd_up "$n"
}

# keys PREFIX: the keys under PREFIX with their values, one "KEY VALUE" a line
keys() {
    local end
    end=$(python3 -c "import sys; p=sys.argv[1]; print(p[:-1] + chr(ord(p[-1]) + 1))" "$1")
    curl -s "$endpoint/v3/kv/range" -d "{\"key\": \"$(b64 "$1")\", \"range_end\": \"$(b64 "$end")\"}" |
        python3 -c '
import base64, json, sys
for kv in json.load(sys.stdin).get("kvs", []):
    print(base64.b64decode(kv["key"]).decode(), base64.b64decode(kv["value"]).decode(errors="replace"))'
}
summary() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("state %s, %s ready, %s lost of %s" % (d.get("state"), d.get("ready"), d.get("lost"), d.get("guests")))
for v in d.get("vms", []):
    print("  %s on %s: %s ready %s pid %s %s" % (v["name"], v["node"], v["state"], v.get("ready"), v.get("pid"), v.get("note")))' "$tmp/status.json"; }
# until COMMAND succeeds, at most SECONDS: until SECONDS COMMAND...
until_ok() {
    local deadline=$((EPOCHSECONDS + $1))
    shift
    until "$@"; do
        [ "$EPOCHSECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
console() { cat "$tmp/$1/state/vms/$2/console.log" 2>/dev/null; } # NODE GUEST
# seg_bridge NODE SEGMENT: the bridge of range vx's communication segment on NODE
seg_bridge() { hc "$1" --json vm inspect "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin)["nics"][0]["bridge"])'; }
# vni SEGMENT: the segments record's VNI for communication/SEGMENT
vni() { keys /herd/segments/vx | python3 -c '
import json, sys
line = sys.stdin.read().split(" ", 1)
print(json.loads(line[1])["communication/" + sys.argv[1]]["vni"] if len(line) == 2 else "")' "$1"; }
# peers NODE VXLAN: the all-zero FDB entries' destinations, sorted, space-separated
peers() { node_run "$1" bridge fdb show dev "$2" 2>/dev/null | awk '$1 == "00:00:00:00:00:00" { for (i = 1; i < NF; i++) if ($i == "dst") print $(i + 1) }' | sort | tr '\n' ' ' | sed 's/ $//'; }
# hs_links NODE: the segment bridges and VXLAN devices on NODE
hs_links() { node_run "$1" ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -E '^(hs|hx-)' | sort | tr '\n' ' '; }
peers_are() { [ "$(peers "$1" "$2")" = "$3" ]; } # NODE VXLAN EXPECTED (re-read each call)
links_are() { [ "$(hs_links "$1")" = "$2" ]; }   # NODE EXPECTED
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
# on_node_all RANGE: the range's guests on every node, sorted (each once when
# nothing is doubled)
on_node_all() { for n in n1 n2 n3; do hc $n --json vm ls --range "$1"; done | python3 -c '
import json, sys
names = []
dec = json.JSONDecoder(); text = sys.stdin.read(); i = 0
while i < len(text):
    if text[i].isspace(): i += 1; continue
    doc, i = dec.raw_decode(text, i); names += [v["name"] for v in doc]
print(" ".join(sorted(names)))'; }
vx_rx() { node_run "$1" cat "/sys/class/net/$2/statistics/rx_packets" 2>/dev/null || echo 0; } # NODE DEV
vmm_pid() { hc "$1" --json vm inspect "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("pid", 0))'; }

# etcd on the underlay (the nodes reach it over their ul0)
mkdir -p "$tmp/images"
for _ in 1 2 3; do
    read -r cport pport < <(free_ports 2)
    endpoint=http://$ul_host:$cport
    : > "$tmp/etcd.log"
    start_etcd && break
    rm -rf "$tmp/etcd"
done
[ -n "$etcd_pid" ] || { echo "etcd: no free ports"; tail -n 5 "$tmp/etcd.log"; exit 1; }
head -c 1M /dev/urandom > "$tmp/images/parent.raw"
truncate -s 16M "$tmp/images/parent.raw"
for n in n1 n2 n3; do
    start_herdd $n
    hc $n template add talk --image "$tmp/images/parent.raw" --format raw --kernel "$probe" \
        --cmdline "probe.tests=net probe.net.count=$frames probe.net.wait=60 probe.idle=1" \
        --mem 64M >/dev/null || fail "template talk on $n"
    hc $n template add idle --image "$tmp/images/parent.raw" --format raw --kernel "$probe" \
        --cmdline "probe.tests=boot probe.idle=1" --mem 64M >/dev/null || fail "template idle on $n"
    hc $n template add listen --image "$tmp/images/parent.raw" --format raw --kernel "$probe" \
        --cmdline "probe.tests=net probe.net.role=listen probe.net.wait=$listen probe.idle=1" \
        --mem 64M >/dev/null || fail "template listen on $n"
done
until_ok 20 bash -c '"$0" --socket "$1" --json cluster nodes | python3 -c "
import json, sys
ns = json.load(sys.stdin)[\"nodes\"]
sys.exit(0 if len(ns) == 3 and all(\"listen\" in n.get(\"templates\", {}) for n in ns) else 1)"' \
    "$herdctl_bin" "$tmp/n1.sock" || fail "the templates are not in every node's profile"

# hostile VNI keys: one VNI taken by a value that is not herd's, a bad key
put /herd/vni/15728640 'not json'
put /herd/vni/junk '{"range": "vx", "segment": "communication/red"}'

spec() { # [EXTRA ROLE LINE]
    cat <<YAML
range: vx
scenarios:
  - name: s
    roles:
      - {name: a, template: talk, count: 1, node: n1, nics: [{network: communication, segment: red}]}
      - {name: b, template: talk, count: 1, node: n2, nics: [{network: communication, segment: red}]}
      - {name: c, template: listen, count: 1, node: n1, nics: [{network: communication, segment: blue}]}
      - {name: d, template: listen, count: 1, node: n3, nics: [{network: communication, segment: blue}]}
${1:-}
YAML
}
spec > "$tmp/vx.yaml"

echo "== range up: red on n1 and n2, blue on n1 and n3"
hc n2 range up "$tmp/vx.yaml" > "$tmp/up.out" 2>&1 || { fail "range up vx: $(tail -n 3 "$tmp/up.out")"; }
wait_range n3 vx 'd["ready"] == 4 and d["state"] == "up"' 90 || { fail "vx not up"; summary; }
A=vx-s-a-1 B=vx-s-b-1 C=vx-s-c-1 D=vx-s-d-1
red=$(vni red) blue=$(vni blue)
echo "VNIs: red $red, blue $blue"
[[ $red =~ ^[0-9]+$ && $blue =~ ^[0-9]+$ && $red != "$blue" ]] || fail "VNIs red '$red' blue '$blue'"
[[ $red != 15728640 && $blue != 15728640 ]] || fail "a VNI held by a hostile key was given out"
for s in red blue; do
    v=$(vni $s)
    [ "$(keys /herd/vni/$v)" = "/herd/vni/$v {\"range\":\"vx\",\"segment\":\"communication/$s\"}" ] ||
        fail "/herd/vni/$v: '$(keys /herd/vni/$v)'"
done
python3 - "$tmp/status.json" "$red" "$blue" <<'PY' || fail "range status segments"
import json, sys
d = json.load(open(sys.argv[1]))
want = {"communication/red": {"vni": int(sys.argv[2]), "nodes": ["n1", "n2"]},
        "communication/blue": {"vni": int(sys.argv[3]), "nodes": ["n1", "n3"]}}
assert d["segments"] == want, d["segments"]
PY
rb1=$(seg_bridge n1 $A) bb1=$(seg_bridge n1 $C)
[ "$rb1" != "$bb1" ] || fail "red and blue share bridge $rb1 on n1"
[ "$(seg_bridge n2 $B)" = "$rb1" ] && [ "$(seg_bridge n3 $D)" = "$bb1" ] ||
    fail "one segment's bridge is named differently on two nodes"
check_links() { # NODE EXPECTED (sorted, space-terminated)
    [ "$(hs_links "$1")" = "$2" ] || fail "$1 has '$(hs_links "$1")', expected '$2'"
}
check_links n1 "$(printf '%s\n' "$rb1" "$bb1" "hx-$red" "hx-$blue" | sort | tr '\n' ' ')"
check_links n2 "$(printf '%s\n' "$rb1" "hx-$red" | sort | tr '\n' ' ')"
check_links n3 "$(printf '%s\n' "$bb1" "hx-$blue" | sort | tr '\n' ' ')"
node_run n1 ip -d link show "hx-$red" | grep -q "master $rb1 " || fail "hx-$red is not on $rb1 on n1"
node_run n1 ip -d link show "hx-$red" | grep -q "vxlan id $red .*local ${addr[n1]}" ||
    fail "hx-$red on n1: $(node_run n1 ip -d link show "hx-$red" | tail -n 2)"
check_peers() { # NODE VXLAN EXPECTED
    [ "$(peers "$1" "$2")" = "$3" ] || fail "$1 $2 peers '$(peers "$1" "$2")', expected '$3'"
}
check_peers n1 "hx-$red" "${addr[n2]}"
check_peers n2 "hx-$red" "${addr[n1]}"
check_peers n1 "hx-$blue" "${addr[n3]}"
check_peers n3 "hx-$blue" "${addr[n1]}"

echo "== frames: a (n1) and b (n2) over VXLAN; c and d (blue) hear none"
ok=1
for g in "n1 $A" "n2 $B"; do
    set -- $g
    console "$1" "$2" | grep -q "net: sent $frames received $frames lost 0" && console "$1" "$2" | grep -q "net ok" ||
        { ok=; fail "$2 on $1: $(console "$1" "$2" | grep 'net' | tail -n 3)"; }
done
for g in "n1 $C" "n3 $D"; do
    set -- $g
    console "$1" "$2" | grep -q "net: sent 0 received 0 lost 0 (listened $listen s" && console "$1" "$2" | grep -q "net ok" ||
        fail "$2 on $1 (blue) heard something: $(console "$1" "$2" | grep 'net' | tail -n 3)"
done
[ -n "$ok" ] && echo "   $(console n1 $A | grep 'net: sent')"
for n in n1 n2; do
    [ "$(vx_rx $n "hx-$red")" -ge "$frames" ] || fail "hx-$red on $n received $(vx_rx $n "hx-$red") packets"
done

echo "== placement changes: a red guest on n3 too, then gone again"
spec "      - {name: e, template: listen, count: 1, node: n3, nics: [{network: communication, segment: red}]}" > "$tmp/vx2.yaml"
hc n1 range up "$tmp/vx2.yaml" --detach > /dev/null || fail "range up vx with e on n3"
until_ok 20 peers_are n1 "hx-$red" "$(sorted "${addr[n2]}" "${addr[n3]}")" ||
    fail "n1's red peers did not gain n3: '$(peers n1 "hx-$red")'"
until_ok 20 peers_are n2 "hx-$red" "$(sorted "${addr[n1]}" "${addr[n3]}")" ||
    fail "n2's red peers did not gain n3: '$(peers n2 "hx-$red")'"
until_ok 20 peers_are n3 "hx-$red" "$(sorted "${addr[n1]}" "${addr[n2]}")" ||
    fail "n3's red peers: '$(peers n3 "hx-$red")'"
wait_range n1 vx 'd["guests"] == 5 and d["ready"] >= 4' 60 || { fail "vx with e"; summary; }
hc n1 range up "$tmp/vx.yaml" --detach > /dev/null || fail "range up vx without e"
until_ok 20 links_are n3 "$(printf '%s\n' "$bb1" "hx-$blue" | sort | tr '\n' ' ')" ||
    fail "n3 keeps its red bridge: '$(hs_links n3)'"
until_ok 20 peers_are n1 "hx-$red" "${addr[n2]}" || fail "n1's red peers: '$(peers n1 "hx-$red")'"
until_ok 20 peers_are n2 "hx-$red" "${addr[n1]}" || fail "n2's red peers: '$(peers n2 "hx-$red")'"
wait_range n1 vx 'd["guests"] == 4 and d["ready"] == 4' 30 || { fail "vx back to 4"; summary; }

echo "== hostile segments records: logged, left out; the next placement repairs them"
rec=$(keys /herd/segments/vx | cut -d' ' -f2-)
put /herd/segments/vx "{\"communication/red\": {\"vni\": $red, \"nodes\": {\"n1\": \"${addr[n1]}\", \"n2\": \"not-an-address\"}}, \"communication/blue\": {\"vni\": 5, \"nodes\": []}}"
until_ok 10 peers_are n1 "hx-$red" "" || fail "n1 kept a peer the record no longer gives: '$(peers n1 "hx-$red")'"
until_ok 10 grep -q "segment bridge $bb1: .*VNI changed" "$tmp/n1.log" || fail "n1 did not log blue's bad VNI"
grep -q "segment bridge $rb1: .*not an address of this node's family" "$tmp/n1.log" || fail "n1 did not log n2's bad address"
check_peers n1 "hx-$blue" "${addr[n3]}"
put /herd/segments/vx '[not json'
sleep 1.5
check_peers n1 "hx-$blue" "${addr[n3]}"
for n in n1 n2 n3; do kill -0 "${pid[$n]}" || fail "herdd $n died of the hostile records"; done
hc n2 range up "$tmp/vx.yaml" --detach > /dev/null || fail "range up vx again (the record written anew)"
[ "$(keys /herd/segments/vx | cut -d' ' -f2-)" = "$rec" ] || fail "the record written anew differs: $(keys /herd/segments/vx)"
until_ok 10 peers_are n1 "hx-$red" "${addr[n2]}" || fail "n1's red peers not repaired: '$(peers n1 "hx-$red")'"
out=$(api n1 POST /v1/ranges "$(printf 'range: ad\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: talk, count: 1, nics: [{network: communication, segment: red, addresses: [10.1.0.5]}]}\n')")
[[ $out == "400 "* && $out == *'"field":"scenarios[0].roles[0].nics[0].addresses"'* ]] ||
    fail "addresses on a cluster: $out"
[ -z "$(keys /herd/ranges/ad)" ] || fail "the refused range ad is in etcd"

echo "== range rv (on_node_loss: replace): segment green on every node"
printf 'range: rv\non_node_loss: replace\nscenarios:\n- name: s\n  roles:\n  - {name: g, template: idle, count: 3, spread: true, nics: [{network: communication, segment: green}]}\n' > "$tmp/rv.yaml"
hc n3 range up "$tmp/rv.yaml" > "$tmp/rv.out" 2>&1 || fail "range up rv: $(tail -n 2 "$tmp/rv.out")"
wait_range n1 rv 'd["ready"] == 3 and sorted(v["node"] for v in d["vms"]) == ["n1", "n2", "n3"]' 60 ||
    { fail "rv not up, one guest a node"; summary; }
green=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["segments"]["communication/green"]["vni"])' "$tmp/status.json")
rv_n2=$(python3 -c 'import json, sys; print([v["name"] for v in json.load(open(sys.argv[1]))["vms"] if v["node"] == "n2"][0])' "$tmp/status.json")
gb=$(seg_bridge n2 "$rv_n2")
check_peers n1 "hx-$green" "$(sorted "${addr[n2]}" "${addr[n3]}")"
check_peers n3 "hx-$green" "$(sorted "${addr[n1]}" "${addr[n2]}")"

echo "== partition: n2's underlay link down"
b_pid=$(vmm_pid n2 $B) rv_pid=$(vmm_pid n2 "$rv_n2")
since=$(api n1 GET /v1/events?type=none | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().split(" ",1)[1])["last"])')
node_link n2 down
cut_at=$EPOCHREALTIME
wait_range n1 vx 'd["lost"] == 1 and [v["name"] for v in d["vms"] if v["lost"]] == ["'$B'"] and d["state"] == "degraded"' $((ttl + 15)) ||
    { fail "n2's guest not lost $((ttl + 15)) s after the partition"; summary; }
echo "   $B lost on n1's view $(elapsed "$cut_at") s after the link went down (TTL $ttl s)"
python3 - "$tmp/status.json" <<'PY' || fail "status during the partition"
import json, sys
d = json.load(open(sys.argv[1]))
for v in d["vms"]:
    if v["node"] == "n2":
        assert v["state"] == "lost" and v["node_state"] == "running" and not v["ready"], v
    else:
        assert not v["lost"] and v["ready"], v
assert d["nodes"]["n2"]["registered"] is False, d["nodes"]
PY
# The status view marks n2's guests lost as soon as its key is gone; n1's
# reconcile announces it at its next tick, one event per range (rv's may
# come first and end a wait=): poll for vx's.
lost_event() { api n1 GET "/v1/events?since=$since&type=range.lost" | grep -q '"range":"vx","node":"n2","guests":1'; }
for _ in $(seq 50); do lost_event && break; sleep 0.2; done
lost_event || fail "no range.lost event for n2 on n1"
kill -0 "$b_pid" 2>/dev/null || fail "$B's herd-vmm died in the partition"
[ "$(vmm_pid n2 $B)" = "$b_pid" ] && hc n2 --json vm inspect $B | grep -q '"ready": *true' ||
    fail "$B on n2's own API during the partition: $(hc n2 --json vm inspect $B | head -c 300)"
until_ok 10 bash -c '"$0" --socket "$1" --json cluster status | grep -q "\"registered\": *false"' "$herdctl_bin" "$tmp/n2.sock" ||
    fail "n2 does not say it is unregistered"
check_links n2 "$(printf '%s\n' "$rb1" "hx-$red" "$gb" "hx-$green" | sort | tr '\n' ' ')"
check_peers n2 "hx-$red" "${addr[n1]}"
# rv: n2's guest placed anew on a live node; green's peers there lose n2
wait_range n1 rv "d['ready'] == 3 and d['lost'] == 0 and 'n2' not in [v['node'] for v in d['vms']] and '$rv_n2' in [v['name'] for v in d['vms']]" 30 ||
    { fail "rv: n2's guest not placed anew"; summary; }
python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["segments"]["communication/green"]; sys.exit(0 if s["nodes"] == ["n1", "n3"] and s["vni"] == int(sys.argv[2]) else 1)' "$tmp/status.json" "$green" ||
    fail "green's record after the replacement: $(keys /herd/segments/rv)"
until_ok 10 peers_are n1 "hx-$green" "${addr[n3]}" || fail "n1's green peers keep n2: '$(peers n1 "hx-$green")'"
until_ok 10 peers_are n3 "hx-$green" "${addr[n1]}" || fail "n3's green peers keep n2: '$(peers n3 "hx-$green")'"
kill -0 "$rv_pid" 2>/dev/null || fail "n2's copy of $rv_n2 stopped while n2 was cut off"
node_link n2 up
healed=$EPOCHREALTIME
wait_range n1 vx 'd["lost"] == 0 and d["ready"] == 4 and d["state"] == "up"' 30 ||
    { fail "n2's guest not found after the link came back"; summary; }
echo "   found $(elapsed "$healed") s after the link came back"
found_event() { api n1 GET "/v1/events?since=$since&type=range.found" | grep -q '"range":"vx","node":"n2"'; }
for _ in $(seq 50); do found_event && break; sleep 0.2; done
found_event || fail "no range.found event for n2 on n1"
[ "$(vmm_pid n2 $B)" = "$b_pid" ] || fail "$B was made anew after the partition"
for n in n1 n2 n3; do hc $n --json vm ls > "$tmp/ls-$n.json"; done
python3 - "$tmp"/ls-n1.json "$tmp"/ls-n2.json "$tmp"/ls-n3.json <<'PY' || fail "guests doubled or missing after the partition"
import json, sys
names = [v["name"] for f in sys.argv[1:] for v in json.load(open(f)) if v["name"].startswith("vx-")]
assert sorted(names) == ["vx-s-a-1", "vx-s-b-1", "vx-s-c-1", "vx-s-d-1"], names
PY
# rv: n2, back, removes its old copy of the replaced guest and its green bridge
until_ok 20 bash -c '! kill -0 "$0" 2>/dev/null' "$rv_pid" || fail "n2, back, keeps its old copy of $rv_n2"
until_ok 20 links_are n2 "$(printf '%s\n' "$rb1" "hx-$red" | sort | tr '\n' ' ')" ||
    fail "n2, back, keeps its green bridge: '$(hs_links n2)'"
[ "$(on_node_all rv)" = "$(sorted rv-s-g-1 rv-s-g-2 rv-s-g-3)" ] || fail "rv's guests: '$(on_node_all rv)'"
hc n2 range down rv > /dev/null || fail "range down rv"
until_ok 20 links_are n1 "$(printf '%s\n' "$rb1" "$bb1" "hx-$red" "hx-$blue" | sort | tr '\n' ' ')" ||
    fail "n1 keeps rv's bridge: '$(hs_links n1)'"
until_ok 20 links_are n3 "$(printf '%s\n' "$bb1" "hx-$blue" | sort | tr '\n' ' ')" ||
    fail "n3 keeps rv's bridge: '$(hs_links n3)'"
[ -z "$(keys /herd/segments/rv)" ] && ! keys /herd/vni/ | grep -q '"range":"rv"' || fail "rv's keys left: $(keys /herd/segments/rv) $(keys /herd/vni/)"

hc n1 range reset vx $A $B > /dev/null || fail "range reset vx a b"
wait_range n1 vx "d['ready'] == 4 and all(v.get('reset') == 1 for v in d['vms'] if v['name'] in ('$A', '$B'))" 60 ||
    { fail "a and b not ready after the reset"; summary; }
for g in "n1 $A" "n2 $B"; do
    set -- $g
    [ "$(console "$1" "$2" | grep 'net: sent' | tail -n 1 | cut -d' ' -f2-8)" = "net: sent $frames received $frames lost 0" ] ||
        fail "$2 after the partition: $(console "$1" "$2" | grep 'net: sent' | tail -n 1)"
done

echo "== range down while n3's herdd is down: n3 removes its bridges when it is back"
d_pid=$(vmm_pid n3 $D)
stop_herdd n3 KILL
hc n1 range down vx > /dev/null || fail "range down vx"
for n in n1 n2; do until_ok 20 links_are $n "" || fail "$n keeps '$(hs_links $n)'"; done
check_links n3 "$(printf '%s\n' "$bb1" "hx-$blue" | sort | tr '\n' ' ')"
kill -0 "$d_pid" 2>/dev/null || fail "$D's herd-vmm died with n3's herdd"
start_herdd n3
until_ok 20 links_are n3 "" || fail "n3, back, keeps '$(hs_links n3)'"
until_ok 20 bash -c '! kill -0 "$0" 2>/dev/null' "$d_pid" || fail "n3, back, keeps $D running"

echo "== range down: nothing left"
for n in n1 n2 n3; do
    until_ok 20 links_are $n "" || fail "$n keeps '$(hs_links $n)'"
    [ -z "$(hc $n --json vm ls | python3 -c 'import json,sys; print(" ".join(v["name"] for v in json.load(sys.stdin)))')" ] ||
        fail "$n keeps guests"
    [ "$(node_run $n bridge fdb show | grep -c 'dst ')" = 0 ] || fail "$n keeps FDB entries with a dst"
    [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/$n/state/cluster-segments.json" 2>/dev/null)" = 0 ] ||
        fail "$n's cluster-segments.json: $(cat "$tmp/$n/state/cluster-segments.json" 2>&1)"
done
for p in /herd/segments/ /herd/assign/ /herd/status/ /herd/ranges/; do
    [ -z "$(keys $p)" ] || fail "left in etcd: $(keys $p)"
done
[ "$(keys /herd/vni/ | cut -d' ' -f1 | tr '\n' ' ')" = "/herd/vni/15728640 /herd/vni/junk " ] ||
    fail "/herd/vni/ after down: $(keys /herd/vni/)"

for n in n1 n2 n3; do # a clean exit: the lease revoked, nothing left running
    p=${pid[$n]}
    stop_herdd $n TERM
    kill -0 "$p" 2>/dev/null && fail "herdd $n did not exit on SIGTERM"
done
[ -z "$(keys /herd/nodes/)" ] || fail "node keys left after SIGTERM: $(keys /herd/nodes/)"
if [ "$failures" -gt 0 ]; then
    for n in n1 n2 n3; do echo "--- $n.log (the last lines)"; tail -n 15 "$tmp/$n.log"; done
fi
echo "cluster-vxlan: $(elapsed "$t0") s, $failures failure(s)"
[ "$failures" -eq 0 ]
