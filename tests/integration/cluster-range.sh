#!/bin/bash
# herd-test-needs: kvm
# Ranges on a cluster (docs/cluster.md "Ranges"): one etcd of its own
# (127.0.0.1, free ports, a temp data dir) and three herdd on their own
# state dirs and sockets (n1, n2, n3; lease_ttl 3) with different vCPU
# limits (cpu_overcommit 4, 6, 8), each with the probe template. Checks:
#  - `herdctl range up` of a 14-guest probe range on n1 (30 in make
#    check-full, on twice the vCPU limits): placed by capacity
#    (exactly as docs/cluster.md's rule, recomputed here from the nodes'
#    profiles), a spread: role on every node, a node: role on its node;
#    each node creates and starts its guests (`range up` follows them
#    until all are ready); `range status` on another
#    node shows all ready, each on its node, each once; `range ls` lists it;
#  - range reset of two guests on two nodes from a third: those reset
#    (new herd-vmm, ready again), the others untouched; a bad selection
#    is a 400 naming vms[1] that marks none;
#  - two range ups at once from two nodes, each fitting alone but not
#    both: one placed, the other refused naming cpus (one placer at a
#    time, each counting the other's assignments);
#  - refusals: a role too big for any node is a 409 naming the field
#    (scenarios[0].roles[0].mem) and each node's memory limit; a node:
#    naming no node a 400 naming scenarios[0].roles[0].node; nothing of
#    either is written to etcd;
#  - kill -9 of n2's herdd: its guests keep running; after the TTL they are
#    `lost` in range status (a range.lost event), the other nodes' guests
#    untouched; n2 started again re-adopts them (same herd-vmm) and lost
#    clears (range.found); a range with on_node_loss: replace has n2's
#    guest placed anew on a live node meanwhile (range.replaced), and n2,
#    back, removes its old copy: each guest once;
#  - n3's herdd killed, a second range brought up (n3 still registered, so
#    it gets guests), etcd killed right after and started again on its
#    data dir, then n3: a range up meanwhile is a 503; a second herdd
#    named n2 started meanwhile is refused its registration and makes
#    none of n2's guests; n1 and n2 list their
#    assignments again; the range completes with every guest on exactly one
#    node, once;
#  - hostile values in etcd (assignments that are not JSON, name another
#    guest, have a bad key or a body vm create refuses, name a guest of the
#    node's own, keys that are not UTF-8; a range that is not
#    JSON; a guest status of wrong types): skipped or refused with a reason
#    in the guest's status, no herdd harmed, no guest made;
#  - a cluster guest removed on its node is created again there;
#  - the second range brought up again with fewer guests: the others go;
#  - etcd losing its data (killed, its data dir removed, started again):
#    no guest removed; both ranges brought up again converge, each guest
#    on one node once, all ready;
#  - `range down` from a third node removes every guest of both ranges on
#    every node and their keys in etcd; nothing of the test is left.
# Exit 0 pass, 77 skip (not root, no /usr/bin/etcd, no /dev/kvm, not
# built), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
herdd_bin=${HERD_HERDD:-$build/bin/herdd}
herdctl_bin=${HERD_HERDCTL:-$build/bin/herdctl}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf
etcd_bin=${HERD_ETCD:-/usr/bin/etcd}
ttl=3

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (herdd)"
[ -x "$etcd_bin" ] || skip "$etcd_bin is missing (apt-get install etcd-server)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is missing or not accessible"
for f in "$herdd_bin" "$herdctl_bin" "$vmm" "$probe"; do
    [ -x "$f" ] || [ -r "$f" ] || skip "$f is not built"
done
for t in curl python3; do
    command -v $t >/dev/null || skip "$t is not installed"
done

tmp=$(mktemp -d /tmp/herd-crange.XXXXXX)
chmod 755 "$tmp"
declare -A pid=()
etcd_pid=
failures=0
t0=$EPOCHREALTIME

# every process of this test: its herdd, etcd, and the herd-vmm they
# started (they outlive a killed herdd); found by the test's own temp dir
test_pids() { pgrep -f "$tmp/" | grep -vx "$$"; }
cleanup() {
    local n p
    for n in "${!pid[@]}"; do
        [ -n "${pid[$n]}" ] && { kill -KILL "${pid[$n]}"; wait "${pid[$n]}"; } 2>/dev/null
    done
    [ -n "$etcd_pid" ] && { kill -KILL "$etcd_pid"; wait "$etcd_pid"; } 2>/dev/null
    for p in $(test_pids); do kill -KILL "$p" 2>/dev/null; done
    sleep 0.2
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

. "$root/tests/integration/cluster-lib.sh"

declare -A overcommit=([n1]=4 [n2]=6 [n3]=8)
web=9 # the plain role of range cr: 14 guests in all (30 in make check-full)
if [ "${HERD_CHECK_FULL:-0}" = 1 ]; then
    web=25
    overcommit=([n1]=8 [n2]=12 [n3]=16)
fi
crn=$((web + 5)) total=$((web + 11))
start_herdd() { # NAME [NODE-NAME: another herdd (its own state) named so]
    local n=$1 as=${2:-$1}
    mkdir -p "$tmp/$n"
    cat > "$tmp/$n.yaml" <<YAML
node: $as
state_dir: $tmp/$n/state
socket: $tmp/$n.sock
vmm: $vmm
image_dirs: [$tmp/images, $build]
cgroup_root: "off"
stop_timeout: 5
capacity: {cpu_overcommit: ${overcommit[$as]}}
guest_uids: {first: $((300000 + ${#n} * 7000 + ${as#n} * 1000)), count: 1000}
cluster:
  endpoints: [$endpoint]
  address: 127.0.0.${as#n}
  lease_ttl: $ttl
YAML
    "$herdd_bin" --config "$tmp/$n.yaml" >> "$tmp/$n.log" 2>&1 &
    pid[$n]=$!
    herdd_up "$n"
}

etcd_keys() { # PREFIX: how many keys etcd has under it
    local end
    end=$(python3 -c "import sys; p=sys.argv[1]; print(p[:-1] + chr(ord(p[-1]) + 1))" "$1")
    curl -s "$endpoint/v3/kv/range" -d "{\"key\": \"$(b64 "$1")\", \"range_end\": \"$(b64 "$end")\", \"count_only\": true}" |
        python3 -c 'import json, sys; print(int(json.load(sys.stdin).get("count", 0)))'
}
vmm_count() { # herd-vmm processes of this test (not zombies)
    local n=0 p st
    for p in $(test_pids); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = herd-vmm ] || continue
        st=$(ps -o stat= -p "$p" 2>/dev/null) && [[ $st != Z* ]] && n=$((n + 1))
    done
    echo $n
}
summary() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("state %s, %s ready, %s lost of %s" % (d.get("state"), d.get("ready"), d.get("lost"), d.get("guests")))
for v in d.get("vms", [])[:40]:
    if not v.get("ready"): print("  %s on %s: %s %s" % (v["name"], v["node"], v["state"], v.get("note")))' "$tmp/status.json"; }
# on_node NODE RANGE: the range's guests NODE has, sorted, space-separated
on_node() { hc "$1" --json vm ls --range "$2" | python3 -c '
import json, sys
print(" ".join(sorted(v["name"] for v in json.load(sys.stdin))))'; }

mkdir -p "$tmp/images"
for _ in 1 2 3; do
    read -r cport pport < <(free_ports 2)
    endpoint=http://127.0.0.1:$cport
    : > "$tmp/etcd.log"
    start_etcd && break
    rm -rf "$tmp/etcd"
done
[ -n "$etcd_pid" ] || { echo "etcd: no free ports"; tail -n 5 "$tmp/etcd.log"; exit 1; }
head -c 4M /dev/urandom > "$tmp/images/parent.raw"
truncate -s 16M "$tmp/images/parent.raw"
for n in n1 n2 n3; do
    start_herdd $n
    hc $n template add probe --image "$tmp/images/parent.raw" --format raw --kernel "$probe" \
        --cmdline "probe.tests=boot probe.idle=1" --mem 64M >/dev/null || fail "template add on $n"
done
# the template in every profile (a profile is refreshed within a few seconds)
ok=
for _ in $(seq 100); do
    hc n1 --json cluster nodes > "$tmp/nodes.json" 2>/dev/null && python3 -c '
import json, sys
ns = json.load(open(sys.argv[1]))["nodes"]
sys.exit(0 if len(ns) == 3 and all("probe" in n.get("templates", {}) for n in ns) else 1)' "$tmp/nodes.json" &&
        { ok=1; break; }
    sleep 0.1
done
[ -n "$ok" ] || { fail "the probe template is not in every node's profile"; cat "$tmp/nodes.json"; }

# --- 1. range up on n1: placed by capacity, created by each node ---
cat > "$tmp/cr.yaml" <<YAML
range: cr
scenarios:
  - name: s
    roles:
      - {name: web, template: probe, count: $web}
      - {name: db, template: probe, count: 3, spread: true}
      - {name: pin, template: probe, count: 2, node: n1}
YAML
hc n1 --json range up "$tmp/cr.yaml" > "$tmp/up.json" || { fail "range up cr"; cat "$tmp/up.json"; }
hc n1 range up "$tmp/cr.yaml" > "$tmp/up2.txt" || fail "range up cr again"
grep -q "placed 0, kept $crn" "$tmp/up2.txt" || fail "range up again placed anew: $(cat "$tmp/up2.txt")"
# (the second range up follows the range until every guest is ready)
grep -q "^range cr: $crn/$crn ready, 0 failed, 0 lost" "$tmp/up2.txt" ||
    fail "range up does not follow the range: $(cat "$tmp/up2.txt")"
# The rule (docs/cluster.md "Placement"), recomputed from the profiles:
# place.py NODES_JSON ASSIGNED ROLE... (ASSIGNED: {node: guests} of 1-vCPU
# 64M probes already placed; ROLE: name:count[:node][:spread]) prints the
# placement as JSON
cat > "$tmp/place.py" <<'PY'
import json, sys
nodes = {n["name"]: n for n in json.load(open(sys.argv[1]))["nodes"]}
assigned = json.loads(sys.argv[2])
over = 16 << 20  # herd-vmm's per-guest overhead (capacity's default)
cost = (64 << 20) + over
def use(n, k):  # what runs that is not on assignment
    return max(0, n["use"][k] - n.get("cluster", {}).get(k, 0))
free = {k: [n["limits"]["vcpus"] - use(n, "vcpus") - assigned.get(k, 0),
            n["limits"]["mem"] - use(n, "mem") - assigned.get(k, 0) * cost]
        for k, n in nodes.items()}
count = {k: 0 for k in nodes}
for arg in sys.argv[3:]:
    f = arg.split(":")
    n, only, spread = int(f[1]), (f[2] or None) if len(f) > 2 else None, "spread" in f
    on = {k: 0 for k in nodes}
    for _ in range(n):
        cand = [k for k in sorted(nodes) if (only is None or k == only)
                and free[k][0] >= 1 and free[k][1] >= cost]
        room = lambda k: min(free[k][0], free[k][1] // cost)
        best = min(cand, key=lambda k: ((on[k] if spread else 0), -room(k), k))
        free[best][0] -= 1; free[best][1] -= cost
        on[best] += 1; count[best] += 1
print(json.dumps({k: v for k, v in count.items() if v}, sort_keys=True))
PY
want=$(python3 "$tmp/place.py" "$tmp/nodes.json" '{}' "web:$web" db:3::spread pin:2:n1)
python3 - "$tmp/up.json" "$want" "$crn" <<'PY' || fail "placement is not the documented one"
import json, sys
got = json.load(open(sys.argv[1])); want = json.loads(sys.argv[2]); n = int(sys.argv[3])
print("placement:", got["placement"], "expected:", want)
assert got["placement"] == want, (got["placement"], want)
assert got["guests"] == n and got["placed"] == n and got["kept"] == 0, got
assert len(set(want.values())) > 1, "equal counts: capacity did not matter"
PY
if ! wait_range n2 cr "d['ready'] == $crn and d['state'] == 'up'" 300; then
    fail "cr not up on the cluster"
    summary
fi
python3 - "$tmp/status.json" "$tmp/up.json" "$crn" <<'PY' || fail "range status of cr"
import json, sys
d = json.load(open(sys.argv[1])); up = json.load(open(sys.argv[2])); n = int(sys.argv[3])
vms = d["vms"]
assert d["cluster"] is True and d["guests"] == n and d["lost"] == 0, d
names = [v["name"] for v in vms]
assert len(names) == n and len(set(names)) == n, names
per = {}
for v in vms:
    per[v["node"]] = per.get(v["node"], 0) + 1
    assert v["state"] == "running" and v["ready"] and v["pid"] > 0 and not v["lost"], v
assert per == up["placement"], (per, up["placement"])
db = sorted(v["node"] for v in vms if "-db-" in v["name"])
assert db == ["n1", "n2", "n3"], db
assert all(v["node"] == "n1" for v in vms if "-pin-" in v["name"]), "pin not on n1"
PY
for n in n1 n2 n3; do # each node has exactly its guests
    want=$(python3 -c '
import json, sys
print(" ".join(sorted(v["name"] for v in json.load(open(sys.argv[1]))["vms"] if v["node"] == sys.argv[2])))' \
        "$tmp/status.json" "$n")
    [ "$(on_node $n cr)" = "$want" ] || fail "$n has '$(on_node $n cr)', assigned '$want'"
done
[ "$(vmm_count)" = $crn ] || fail "$(vmm_count) herd-vmm, expected $crn"
hc n3 range status cr | grep -q "^range cr: up, $crn guests" || fail "status text: $(hc n3 range status cr | head -3)"
hc n2 --json range ls | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["name"] == "cr"]
sys.exit(0 if len(rows) == 1 and rows[0]["cluster"] is True and rows[0]["ready"] == int(sys.argv[1])
         and rows[0]["state"] == "up" and "vms" not in rows[0] else 1)' "$crn" ||
    fail "range ls on n2: $(hc n2 range ls)"

# --- range reset on the cluster: the guests named, on their nodes ---
read -r ga gb < <(python3 -c '
import json, sys
vms = json.load(open(sys.argv[1]))["vms"]
a = [v["name"] for v in vms if v["node"] == "n1"][0]; b = [v["name"] for v in vms if v["node"] == "n3"][0]
print(a, b)' "$tmp/status.json")
pids_before=$(python3 -c '
import json, sys
print(json.dumps({v["name"]: v["pid"] for v in json.load(open(sys.argv[1]))["vms"]}))' "$tmp/status.json")
out=$(api n2 POST /v1/ranges/cr/reset "{\"vms\": [\"$ga\", \"nope\"]}")
[[ $out == "400 "* && $out == *'"field":"vms[1]"'* && $out == *"'nope' is not a guest of range 'cr'"* ]] ||
    fail "reset naming a guest not of cr: $out"
[[ $(get /herd/assign/n1/cr/$ga) != *'"reset"'* ]] || fail "a refused reset marked $ga"
hc n2 range reset cr "$ga" "$gb" > "$tmp/reset.out" || fail "range reset cr $ga $gb: $(cat "$tmp/reset.out")"
grep -q "range cr reset: 2 guests" "$tmp/reset.out" || fail "reset: $(cat "$tmp/reset.out")"
wait_range n2 cr "d['ready'] == $crn and all(v['reset'] == 1 for v in d['vms'] if v['name'] in ('$ga', '$gb'))" 60 ||
    { fail "$ga and $gb were not reset"; summary; }
python3 - "$tmp/status.json" "$pids_before" "$ga" "$gb" <<'PY' || fail "reset changed the wrong guests"
import json, sys
d = json.load(open(sys.argv[1])); before = json.loads(sys.argv[2]); picked = sys.argv[3:]
for v in d["vms"]:
    if v["name"] in picked:
        assert v["pid"] != before[v["name"]] and v["ready"], v
    else:
        assert v["pid"] == before[v["name"]] and v.get("reset", 0) == 0, v
PY

# --- two placements at once, from two nodes: one placer at a time ---
# Each asks for K guests of 4 vCPUs, K such that what is left of the
# nodes' vCPUs takes one such range, not two: exactly one is placed, the
# other refused (both placed would mean both placers saw the same free
# capacity)
k=$(python3 - "$tmp/nodes.json" "$tmp/up.json" <<'PY'
import json, sys
nodes = {n["name"]: n["limits"]["vcpus"] for n in json.load(open(sys.argv[1]))["nodes"]}
placed = json.load(open(sys.argv[2]))["placement"]
fits = sum((nodes[k] - placed.get(k, 0)) // 4 for k in nodes)
print(fits // 2 + 1 if fits >= 1 else 0)
PY
)
[ "${k:-0}" -ge 1 ] || fail "the two-placers check does not fit these nodes"
for x in pa pb; do
    printf 'range: %s\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: %s, cpus: 4}\n' $x "$k" > "$tmp/$x.yaml"
done
api n1 POST /v1/ranges "$(cat "$tmp/pa.yaml")" > "$tmp/pa.out" &
pa_pid=$!
api n3 POST /v1/ranges "$(cat "$tmp/pb.yaml")" > "$tmp/pb.out"
wait $pa_pid
codes=$(cut -c1-3 "$tmp/pa.out" "$tmp/pb.out" | sort | tr '\n' ' ')
[ "$codes" = "202 409 " ] || fail "two placements at once: $(cat "$tmp/pa.out" "$tmp/pb.out")"
grep -q 'cpus' "$tmp/pa.out" "$tmp/pb.out" || fail "the refused one does not name cpus"
won=pa
grep -q '^202' "$tmp/pb.out" && won=pb
wait_range n2 $won "d['ready'] == $k" 60 || { fail "$won not up"; summary; }
hc n2 range down $won >/dev/null || fail "range down $won"
ok=
for _ in $(seq 100); do
    [ "$(vmm_count)" = $crn ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "$won not gone: $(vmm_count) herd-vmm, expected $crn"
hc n2 --json range status cr > "$tmp/status.json" || fail "status cr"

# --- 2. refusals: 4xx naming the field and the limit; nothing written ---
out=$(api n2 POST /v1/ranges "$(printf 'range: big\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 1, mem: 1T}\n')")
[[ $out == "409 "* && $out == *'scenarios[0].roles[0].mem'* && $out == *'n1: memory limit'* &&
   $out == *'n3: memory limit'* ]] || fail "too big: $out"
out=$(api n2 POST /v1/ranges "$(printf 'range: far\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 1, node: n9}\n')")
[[ $out == "400 "* && $out == *'"field":"scenarios[0].roles[0].node"'* && $out == *"no node 'n9'"* ]] ||
    fail "unknown node: $out"
out=$(api n2 POST /v1/ranges "$(printf 'range: many\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 1000, cpus: 8}\n')")
[[ $out == "409 "* && $out == *'scenarios[0].roles[0].cpus'* && $out == *'vcpu limit'* ]] ||
    fail "too many: $out"
out=$(api n2 POST /v1/ranges "$(printf 'range: res\nresources: /srv/x\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 1}\n')")
[[ $out == "400 "* && $out == *'"field":"resources"'* ]] || fail "resources on a cluster: $out"
for r in big far many res; do
    [ "$(etcd_keys /herd/ranges/$r)" = 0 ] || fail "refused range $r is in etcd"
done
[ "$(etcd_keys /herd/placer)" = 0 ] || fail "the placer key is left after refusals"

# --- 3. kill -9 of n2: its guests lost after the TTL, back when it is ---
# (cr keeps them: on_node_loss: keep; rp has them placed anew: replace)
printf 'range: rp\non_node_loss: replace\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 3, spread: true}\n' > "$tmp/rp.yaml"
hc n3 range up "$tmp/rp.yaml" > "$tmp/rp.out" || fail "range up rp: $(cat "$tmp/rp.out")"
wait_range n3 rp 'd["ready"] == 3 and sorted(v["node"] for v in d["vms"]) == ["n1", "n2", "n3"]' 60 ||
    { fail "rp not up, one guest a node"; summary; }
rp_n2=$(python3 -c '
import json, sys
print([v["name"] for v in json.load(open(sys.argv[1]))["vms"] if v["node"] == "n2"][0])' "$tmp/status.json")
hc n2 --json range status cr > "$tmp/status.json" || fail "status cr"
n2_pids=$(python3 -c '
import json, sys
print(" ".join(str(v["pid"]) for v in json.load(open(sys.argv[1]))["vms"] if v["node"] == "n2"))' "$tmp/status.json")
n2_count=$(wc -w <<< "$n2_pids")
other_pids=$(python3 -c '
import json, sys
print(" ".join(sorted(str(v["pid"]) for v in json.load(open(sys.argv[1]))["vms"] if v["node"] != "n2")))' "$tmp/status.json")
since=$(api n1 GET /v1/events?type=none | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().split(" ",1)[1])["last"])')
stop_herdd n2 KILL
killed=$EPOCHREALTIME
wait_range n1 cr "d[\"lost\"] == $n2_count and d[\"ready\"] == $crn - $n2_count" $((ttl + 10)) ||
    { fail "n2's guests not lost $((ttl + 10)) s after kill -9"; summary; }
echo "n2's $n2_count guests lost $(elapsed "$killed") s after kill -9 (TTL $ttl s)"
python3 - "$tmp/status.json" "$other_pids" <<'PY' || fail "status with n2 lost"
import json, sys
d = json.load(open(sys.argv[1])); other = sys.argv[2].split()
for v in d["vms"]:
    if v["node"] == "n2":
        assert v["lost"] and v["state"] == "lost" and v["node_state"] == "running", v
    else:
        assert not v["lost"] and v["ready"] and v["state"] == "running", v
assert sorted(str(v["pid"]) for v in d["vms"] if v["node"] != "n2") == other, "others changed"
assert d["state"] == "degraded" and d["nodes"]["n2"]["registered"] is False, d["nodes"]
PY
for p in $n2_pids; do kill -0 "$p" 2>/dev/null || fail "n2's guest herd-vmm $p died with its herdd"; done
# rp: n2's guest placed anew on a live node, ready there; the range not lost
wait_range n1 rp "d['ready'] == 3 and d['lost'] == 0 and 'n2' not in [v['node'] for v in d['vms']] and '$rp_n2' in [v['name'] for v in d['vms']]" 60 ||
    { fail "rp: n2's guest not placed anew"; summary; }
api n1 GET "/v1/events?since=$since&type=range.replaced&wait=10" | grep -q '"range":"rp","guests":1' ||
    fail "no range.replaced event: $(api n1 GET "/v1/events?since=$since&type=range.")"
api n1 GET "/v1/events?since=$since&type=range.lost&wait=10" | grep -q '"range":"cr","node":"n2","guests":'"$n2_count" ||
    fail "no range.lost event for n2 on n1: $(api n1 GET "/v1/events?since=$since&type=range.")"
start_herdd n2
wait_range n3 cr "d['lost'] == 0 and d['ready'] == $crn and d['state'] == 'up'" 30 ||
    { fail "lost not cleared after n2's restart"; summary; }
now=$(python3 -c '
import json, sys
print(" ".join(str(v["pid"]) for v in json.load(open(sys.argv[1]))["vms"] if v["node"] == "n2"))' "$tmp/status.json")
[ "$now" = "$n2_pids" ] || fail "n2's guests were not re-adopted: pids '$n2_pids' -> '$now'"
# n2, back, removes its old rp guest (now another node's): each guest once
ok=
for _ in $(seq 100); do
    [ -z "$(on_node n2 rp)" ] && [ "$(vmm_count)" = $((crn + 3)) ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "after n2's restart: rp on n2 '$(on_node n2 rp)', $(vmm_count) herd-vmm, expected $((crn + 3))"
wait_range n2 rp 'd["ready"] == 3 and d["lost"] == 0 and len(d["vms"]) == 3' 10 || { fail "rp after n2's restart"; summary; }
hc n2 range down rp >/dev/null || fail "range down rp"
ok=
for _ in $(seq 100); do
    [ "$(vmm_count)" = $crn ] && [ -z "$(on_node n1 rp)$(on_node n2 rp)$(on_node n3 rp)" ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "rp not gone: $(vmm_count) herd-vmm, expected $crn"
api n1 GET "/v1/events?since=$since&type=range.found&wait=10" | grep -q '"range":"cr","node":"n2"' ||
    fail "no range.found event: $(api n1 GET "/v1/events?since=$since&type=range.")"

# --- 4. a node dead and etcd killed while a range comes up ---
# n3 killed (its key stays for the TTL, so it gets guests of ce), etcd
# killed right after the placement and started again: n3, started again,
# lists its assignments; n1 and n2 list theirs again after the lost watch
lists_before=$(for n in n1 n2; do hc $n --json cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["reconcile"]["lists"])'; done)
# the profiles settled: every running guest is an assigned one (a restarted
# n2 writes its profile before it has listed its assignments)
ok=
for _ in $(seq 100); do
    hc n1 --json cluster nodes > "$tmp/nodes2.json" && python3 -c '
import json, sys
ns = json.load(open(sys.argv[1]))["nodes"]
sys.exit(0 if len(ns) == 3 and all(n["use"]["vcpus"] == n["cluster"]["vcpus"] and
                                   n["use"]["mem"] == n["cluster"]["mem"] for n in ns) else 1)' \
        "$tmp/nodes2.json" && { ok=1; break; }
    sleep 0.1
done
[ -n "$ok" ] || fail "profiles do not count the assigned guests: $(cat "$tmp/nodes2.json")"
want_ce=$(python3 "$tmp/place.py" "$tmp/nodes2.json" "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["placement"]))' "$tmp/up.json")" r:6)
stop_herdd n3 KILL
printf 'range: ce\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 6}\n' > "$tmp/ce.yaml"
hc n2 --json range up "$tmp/ce.yaml" > "$tmp/ce.json" || { fail "range up ce"; cat "$tmp/ce.json"; }
kill -KILL "$etcd_pid"
wait "$etcd_pid" 2>/dev/null
etcd_pid=
python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["placement"]
sys.exit(0 if p == json.loads(sys.argv[2]) and p.get("n3", 0) >= 1 else 1)' "$tmp/ce.json" "$want_ce" ||
    fail "ce: placement $(cat "$tmp/ce.json"), expected $want_ce counting cr's guests (n3 killed, still registered)"
out=$(api n1 POST /v1/ranges "$(cat "$tmp/cr.yaml")")
[[ $out == "503 "* ]] || fail "range up with etcd down: $out"
start_herdd dup n2 # a second n2, started while etcd is away: unregistered

sleep 1.5
start_etcd || { echo "etcd's ports were taken while it was down"; exit 1; }
start_herdd n3
wait_range n1 ce 'd["ready"] == 6 and d["state"] == "up"' 120 || { fail "ce did not complete"; summary; }
# the second n2 was refused its registration and made none of n2's guests
hc dup --json cluster status > "$tmp/dup.json"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d["registered"] is False and "is taken" in d["last_error"] else 1)' "$tmp/dup.json" ||
    fail "a second n2: $(cat "$tmp/dup.json")"
grep -q "node name 'n2' is taken" "$tmp/dup.log" || fail "the second n2 does not log its name is taken"
[ "$(hc dup --json vm ls)" = "[]" ] || fail "the second n2 made guests: $(hc dup vm ls)"
stop_herdd dup TERM

all=""
for n in n1 n2 n3; do all="$all $(on_node $n ce)"; done
[ "$(tr ' ' '\n' <<< "$all" | grep -c .)" = 6 ] && [ "$(tr ' ' '\n' <<< "$all" | grep . | sort -u | wc -l)" = 6 ] ||
    fail "ce's guests are not each on one node once: $all"
[ "$(vmm_count)" = $total ] || fail "after etcd's restart: $(vmm_count) herd-vmm, expected $total"
wait_range n2 cr "d['ready'] == $crn and d['lost'] == 0" 30 || fail "cr changed by etcd's restart"
lists_after=$(for n in n1 n2; do hc $n --json cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["reconcile"]["lists"])'; done)
python3 -c '
import sys
b, a = [int(x) for x in sys.argv[1].split()], [int(x) for x in sys.argv[2].split()]
sys.exit(0 if all(y > x for x, y in zip(b, a)) else 1)' "$lists_before" "$lists_after" ||
    fail "n1, n2 did not list their assignments again after etcd's restart: $lists_before -> $lists_after"

# --- hostile values in etcd: skipped or refused with a reason, no crash ---
put /herd/assign/n1/cr/cr-s-zz-1 '{not json'
put /herd/assign/n1/cr/cr-s-zz-2 '{"range": "cr", "body": {"name": "someone-else", "template": "probe"}}'
put /herd/assign/n1/cr/x/y '{}'
put /herd/assign/n1/hx/hx-s-r-1 '{"range": "hx", "guest": "hx-s-r-1", "body": {"name": "hx-s-r-1", "template": "probe", "cpus": "many"}}'
out=$(api n1 POST /v1/vms '{"name": "hy-s-r-1", "template": "probe", "start": false}')
[[ $out == 20* ]] || fail "a guest of n1's own: $out"
put /herd/assign/n1/hy/hy-s-r-1 '{"range": "hy", "guest": "hy-s-r-1", "body": {"name": "hy-s-r-1", "template": "probe"}}'
put $'/herd/assign/n1\xff/cr/cr-s-zz-3' '{"range": "cr", "cpus": 1, "mem": 1}'
put $'/herd/assign/n1/cr/cr-s-zz-\xfe' '{}'
put $'/herd/status/cr/cr-s-web-2\xff' '{"node": "n1", "state": "running"}'
put $'/herd/nodes/zz\xff' '{"limits": {"vcpus": 8, "mem": 1}, "use": {"vcpus": 0, "mem": 0}, "templates": {}}'
put /herd/ranges/junk 'nope'
web1_node=$(python3 -c '
import json, sys
print([v["node"] for v in json.load(open(sys.argv[1]))["vms"] if v["name"] == "cr-s-web-1"][0])' "$tmp/status.json")
put /herd/status/cr/cr-s-web-1 "{\"node\": \"$web1_node\", \"state\": 5, \"ready\": \"yes\", \"nics\": 3}"
ok=
for _ in $(seq 50); do
    st=$(get /herd/status/hx/hx-s-r-1)
    [[ $st == *'"state":"error"'* && $st == *cpus* ]] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "a bad assignment body: status '$(get /herd/status/hx/hx-s-r-1)'"
ok=
for _ in $(seq 50); do
    st=$(get /herd/status/hy/hy-s-r-1)
    [[ $st == *'"state":"error"'* && $st == *"is taken on this node"* ]] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "an assignment naming a guest of the node's own: status '$(get /herd/status/hy/hy-s-r-1)'"
[ "$(hc n1 --json vm inspect hy-s-r-1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["range"])')" = "created None" ] ||
    fail "n1's own guest was changed by an assignment of its name"
[ -z "$(on_node n1 hx)" ] || fail "a guest was made of a bad assignment"
out=$(api n2 GET /v1/ranges/junk)
[[ $out == "404 "* ]] || fail "a range value that is not JSON: $out"
out=$(api n2 GET /v1/ranges/cr)
[[ $out == "200 "* ]] || fail "status with a hostile guest status: $out"
out=$(api n2 GET /v1/ranges)
[[ $out == "200 "* && $out == *'"name":"cr"'* && $out != *junk* ]] || fail "range ls with a hostile range: $out"
out=$(api n3 POST /v1/ranges "$(printf 'range: hz\nscenarios:\n- name: s\n  roles:\n  - {name: r, template: probe, count: 1, node: n9}\n')")
[[ $out == "400 "* ]] || fail "placement among hostile keys: $out"
for n in n1 n2 n3; do
    kill -0 "${pid[$n]}" 2>/dev/null && hc $n node profile >/dev/null || fail "herdd $n did not survive hostile values"
done
for k in /herd/assign/n1/cr/cr-s-zz-1 /herd/assign/n1/cr/cr-s-zz-2 /herd/assign/n1/cr/x/y \
         /herd/assign/n1/hx/hx-s-r-1 /herd/ranges/junk /herd/status/hx/hx-s-r-1 \
         /herd/assign/n1/hy/hy-s-r-1 /herd/status/hy/hy-s-r-1 $'/herd/assign/n1\xff/cr/cr-s-zz-3' \
         $'/herd/assign/n1/cr/cr-s-zz-\xfe' $'/herd/status/cr/cr-s-web-2\xff' $'/herd/nodes/zz\xff'; do
    del "$k"
done
sleep 0.5 # (the reconciler sees the assignment go; n1's own guest must stay)
[ "$(hc n1 --json vm inspect hy-s-r-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = created ] ||
    fail "n1's own guest was removed with an assignment of its name"
hc n1 vm rm hy-s-r-1 >/dev/null || fail "rm n1's own guest"
[ "$(vmm_count)" = $total ] || fail "hostile values changed the guests: $(vmm_count) herd-vmm"

# --- a cluster guest removed on its node comes back (its assignment stands) ---
victim=$(on_node n3 ce | cut -d' ' -f1)
hc n3 vm rm "$victim" --force >/dev/null ||
    fail "vm rm $victim on n3"
wait_range n1 ce "d['ready'] == 6 and [v['node'] for v in d['vms'] if v['name'] == '$victim'] == ['n3']" 60 ||
    { fail "$victim did not come back on n3"; summary; }
ok=
for _ in $(seq 50); do # (the removed herd-vmm may still be ending)
    [ "$(vmm_count)" = $total ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "after $victim came back: $(vmm_count) herd-vmm, expected $total"

# --- a smaller spec: the guests it no longer has go, the others stay ---
sed 's/count: 6/count: 4/' "$tmp/ce.yaml" > "$tmp/ce4.yaml"
hc n1 range up "$tmp/ce4.yaml" > "$tmp/ce4.out" || fail "range up ce (4)"
grep -q "placed 0, kept 4" "$tmp/ce4.out" || fail "ce (4): $(cat "$tmp/ce4.out")"
ok=
for _ in $(seq 100); do
    all=""
    for n in n1 n2 n3; do all="$all $(on_node $n ce)"; done
    [ "$(echo $all)" != "" ] && [ "$(tr ' ' '\n' <<< "$all" | grep . | sort | tr '\n' ' ')" = "ce-s-r-1 ce-s-r-2 ce-s-r-3 ce-s-r-4 " ] &&
        [ "$(vmm_count)" = $((total - 2)) ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "ce (4): guests '$all', $(vmm_count) herd-vmm"
wait_range n3 ce 'd["guests"] == 4 and d["ready"] == 4 and len(d["vms"]) == 4' 10 ||
    { fail "ce (4) status"; summary; }

# --- etcd loses its data: no guest removed; the ranges brought up again
# converge, each guest on one node once ---
lists() { for n in n1 n2 n3; do hc $n --json cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["reconcile"]["lists"])'; done | tr '\n' ' '; }
lists_before=$(lists)
kill -KILL "$etcd_pid"
wait "$etcd_pid" 2>/dev/null
etcd_pid=
rm -rf "$tmp/etcd"
start_etcd || { echo "etcd's ports were taken while it was down"; exit 1; }
ok=
for _ in $(seq 150); do
    python3 -c '
import sys
b, a = [int(x) for x in sys.argv[1].split()], [int(x) for x in sys.argv[2].split()]
sys.exit(0 if all(y > x for x, y in zip(b, a)) else 1)' "$lists_before" "$(lists)" 2>/dev/null && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "the nodes did not list again after etcd lost its data: $lists_before -> $(lists)"
ok=
for _ in $(seq 150); do # every node registered again in the new store
    reg=$(for n in n1 n2 n3; do hc $n --json cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["registered"])'; done | tr '\n' ' ')
    [ "$reg" = "True True True " ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "the nodes did not register again after etcd lost its data: $reg"
[ "$(vmm_count)" = $((crn + 4)) ] || fail "etcd's data lost: $(vmm_count) herd-vmm, expected $((crn + 4)) (a guest removed?)"
out=$(api n2 GET /v1/ranges/cr)
[[ $out == "404 "* ]] || fail "cr after etcd lost its data: $out"
hc n1 range up "$tmp/cr.yaml" > "$tmp/up3.out" || fail "cr up again: $(cat "$tmp/up3.out")"
hc n1 range up "$tmp/ce4.yaml" > "$tmp/up4.out" || fail "ce up again: $(cat "$tmp/up4.out")"
ok=
for _ in $(seq 300); do
    all=""
    for n in n1 n2 n3; do all="$all $(on_node $n cr) $(on_node $n ce)"; done
    [ "$(tr ' ' '\n' <<< "$all" | grep -c .)" = $((crn + 4)) ] &&
        [ "$(tr ' ' '\n' <<< "$all" | grep . | sort -u | wc -l)" = $((crn + 4)) ] &&
        [ "$(vmm_count)" = $((crn + 4)) ] && { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "after etcd lost its data and the ranges came up again: guests '$all', $(vmm_count) herd-vmm"
wait_range n3 cr "d['ready'] == $crn and d['lost'] == 0" 120 || { fail "cr not up again"; summary; }
wait_range n3 ce "d['ready'] == 4" 60 || { fail "ce not up again"; summary; }

# --- 5. range down from n3: every node removes its guests ---
hc n3 range down cr > "$tmp/down.out" || fail "range down cr: $(cat "$tmp/down.out")"
grep -q "$crn guests removed" "$tmp/down.out" || fail "down cr: $(cat "$tmp/down.out")"
hc n3 range down ce >/dev/null || fail "range down ce"
ok=
for _ in $(seq 150); do
    [ "$(vmm_count)" = 0 ] && [ -z "$(on_node n1 cr)$(on_node n2 cr)$(on_node n3 cr)$(on_node n1 ce)$(on_node n2 ce)$(on_node n3 ce)" ] &&
        { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "guests left after range down: $(vmm_count) herd-vmm"
hc n1 range status cr > "$tmp/st.out" 2>&1 && fail "cr still has a status after down"
for k in /herd/ranges/ /herd/assign/ /herd/status/ /herd/placer; do
    [ "$(etcd_keys $k)" = 0 ] || fail "keys left under $k: $(etcd_keys $k)"
done

for n in n1 n2 n3; do stop_herdd $n TERM; done
for f in "$tmp"/*.log; do
    if grep -qE 'ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer' "$f"; then
        fail "sanitizer report in $f"
        grep -A20 -E 'ERROR: AddressSanitizer|runtime error' "$f" | head -40
    fi
done
kill -TERM "$etcd_pid"
wait "$etcd_pid" 2>/dev/null
etcd_pid=
[ -z "$(test_pids)" ] || fail "processes of this test left: $(test_pids | tr '\n' ' ')"

echo "cluster-range: $(elapsed "$t0") s"
if [ "$failures" -ne 0 ]; then
    for n in n1 n2 n3; do
        echo "--- $n log"
        tail -n 20 "$tmp/$n.log"
    done
    echo "cluster-range: $failures check(s) failed"
    exit 1
fi
echo "cluster-range: all checks passed"
exit 0
