#!/bin/bash
# Node registration in etcd (docs/cluster.md), no guests, no KVM: one etcd
# of its own (127.0.0.1, free ports, a temp data dir) and three herdd on
# their own state dirs and sockets (n1, n2, n3; lease_ttl 3). Checks:
#  - `herdctl cluster nodes` lists all three with their profile from any of
#    them; a template added on n1 shows up in n1's capacity prediction; a
#    value under /herd/nodes/ that is not JSON is listed with an error;
#  - `herdctl cluster status`: registered, the lease, its TTL, the endpoint;
#  - a fourth herdd named n2 is refused (exit 1, naming /herd/nodes/n2) and
#    n2 keeps its lease;
#  - SIGTERM of n3: gone from the list at once (lease revoked);
#  - kill -9 of n2: still listed a second later, gone within the TTL
#    (+ etcd's expiry granularity); started again: listed; killed -9 and
#    started at once: it takes its own key over (STATE/cluster.lease);
#  - etcd killed for longer than a TTL and restarted on the same data dir:
#    n1 and n2 report the registration lost, then register again; n4,
#    started while etcd is away, starts unregistered and registers then;
#  - a herdd without cluster: answers 409 "not in a cluster";
#  - at the end no herdd, etcd or temp file of the test is left.
# Exit 0 pass, 77 skip (not root, no /usr/bin/etcd, not built), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
herdd_bin=${HERD_HERDD:-$build/bin/herdd}
herdctl_bin=${HERD_HERDCTL:-$build/bin/herdctl}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
etcd_bin=${HERD_ETCD:-/usr/bin/etcd}
ttl=3

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (herdd)"
[ -x "$etcd_bin" ] || skip "$etcd_bin is missing (apt-get install etcd-server)"
for f in "$herdd_bin" "$herdctl_bin" "$vmm"; do
    [ -x "$f" ] || skip "$f is not built"
done
for t in curl python3; do
    command -v $t >/dev/null || skip "$t is not installed"
done

tmp=$(mktemp -d /tmp/herd-cluster.XXXXXX)
chmod 755 "$tmp"
declare -A pid=()
etcd_pid=
failures=0
t0=$EPOCHREALTIME

cleanup() {
    local n
    for n in "${!pid[@]}"; do
        [ -n "${pid[$n]}" ] && { kill -KILL "${pid[$n]}"; wait "${pid[$n]}"; } 2>/dev/null
    done
    [ -n "$etcd_pid" ] && { kill -KILL "$etcd_pid"; wait "$etcd_pid"; } 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP # through cleanup too (run-all's timeout sends TERM)

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

. "$root/tests/integration/cluster-lib.sh"

write_config() { # NAME [cluster|none]
    local n=$1
    mkdir -p "$tmp/$n"
    cat > "$tmp/$n.yaml" <<YAML
node: $n
state_dir: $tmp/$n/state
socket: $tmp/$n.sock
vmm: $vmm
image_dirs: [$tmp/images, $build]
cgroup_root: "off"
YAML
    [ "${2:-cluster}" = none ] && return
    cat >> "$tmp/$n.yaml" <<YAML
cluster:
  endpoints: [http://127.0.0.1:1, $endpoint]
  address: 127.0.0.${n#n}
  lease_ttl: $ttl
YAML
}

start_herdd() { # NAME [cluster|none]
    local n=$1
    write_config "$n" "${2:-cluster}"
    "$herdd_bin" --config "$tmp/$n.yaml" >> "$tmp/$n.log" 2>&1 &
    pid[$n]=$!
    herdd_up "$n"
}


# the names `cluster nodes` lists, asked of node N, space-separated
names() { hc "$1" --json cluster nodes | python3 -c '
import json, sys
print(" ".join(n["name"] for n in json.load(sys.stdin)["nodes"]))'; }
status_field() { # NODE PYTHON-EXPR (d: the status)
    hc "$1" --json cluster status | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
# wait_names NODE WANT SECONDS: until `cluster nodes` on NODE lists WANT
wait_names() {
    local deadline=$((EPOCHSECONDS + $3)) got
    while :; do
        got=$(names "$1" 2>/dev/null)
        [ "$got" = "$2" ] && return 0
        [ "$EPOCHSECONDS" -lt "$deadline" ] || { echo "  listed: '$got'"; return 1; }
        sleep 0.1
    done
}

mkdir -p "$tmp/images"
for _ in 1 2 3; do # two free ports on 127.0.0.1; again if one was taken meanwhile
    read -r cport pport < <(free_ports 2)
    endpoint=http://127.0.0.1:$cport
    : > "$tmp/etcd.log"
    start_etcd && break
    rm -rf "$tmp/etcd"
done
[ -n "$etcd_pid" ] || { echo "etcd: no free ports"; tail -n 5 "$tmp/etcd.log"; exit 1; }
start_herdd n1
start_herdd n2
start_herdd n3

# --- all three, with their profiles, from any node ---
for n in n1 n2 n3; do
    [ "$(names $n)" = "n1 n2 n3" ] || fail "cluster nodes on $n: '$(names $n)', not 'n1 n2 n3'"
done
hc n2 --json cluster nodes > "$tmp/nodes.json"
python3 - "$tmp/nodes.json" "$ttl" <<'PY' || fail "node profiles"
import json, sys
d = json.load(open(sys.argv[1]))
for i, n in enumerate(d["nodes"]):
    name = "n%d" % (i + 1)
    assert n["name"] == name and n["key"] == "/herd/nodes/" + name, n
    assert n["address"] == "127.0.0.%d" % (i + 1), n
    assert n["cpus"] >= 1 and n["mem_total"] > 0 and n["disk_total"] > 0, n
    assert n["limits"]["vcpus"] >= n["cpus"] and n["limits"]["mem"] > 0, n
    assert n["herdd_version"] and n["templates"] == {}, n
    assert int(n["lease"], 16) > 0, n
PY
hc n1 cluster nodes | grep -q '^n3 .*127\.0\.0\.3' || fail "cluster nodes table: $(hc n1 cluster nodes)"

# a template on n1: its capacity prediction in n1's profile (refreshed within ~2 s)
head -c 1M /dev/zero > "$tmp/images/parent.raw"
hc n1 template add probe --image "$tmp/images/parent.raw" --format raw \
    --kernel "$build/firmware/herd-probe.elf" --mem 64M >/dev/null 2>&1 ||
    [ ! -r "$build/firmware/herd-probe.elf" ] || fail "template add on n1"
if [ -r "$build/firmware/herd-probe.elf" ]; then
    ok=
    for _ in $(seq 60); do
        hc n3 --json cluster nodes | python3 -c '
import json, sys
t = json.load(sys.stdin)["nodes"][0]["templates"]
sys.exit(0 if t.get("probe", {}).get("fits", 0) and t["probe"]["mem"] == 64 << 20 else 1)' && { ok=1; break; }
        sleep 0.1
    done
    [ -n "$ok" ] || fail "n1's profile does not predict the probe template's capacity"
fi

# --- a profile that is not JSON (no herdd writes one): listed with an error ---
b64() { printf %s "$1" | base64 -w0; }
curl -sf "$endpoint/v3/kv/put" -d "{\"key\": \"$(b64 /herd/nodes/zz-bad)\", \"value\": \"$(b64 '{not json')\"}" \
    >/dev/null || fail "put of a bad profile"
hc n1 cluster nodes | grep -q '^zz-bad .*the profile is not a JSON object' ||
    fail "bad profile: $(hc n1 cluster nodes)"
[ "$(names n1)" = "n1 n2 n3 zz-bad" ] || fail "with a bad profile: $(names n1)"
curl -sf "$endpoint/v3/kv/deleterange" -d "{\"key\": \"$(b64 /herd/nodes/zz-bad)\"}" >/dev/null

# --- status ---
[ "$(status_field n2 'd["registered"], d["ttl"], d["endpoint"], d["key"]')" = \
  "True $ttl $endpoint /herd/nodes/n2" ] || fail "status n2: $(hc n2 --json cluster status)"
left=$(status_field n2 'd["ttl_left"]')
[ "$left" -ge 1 ] 2>/dev/null && [ "$left" -le "$ttl" ] || fail "ttl_left $left"
hc n2 cluster status | grep -q '^registered  yes' || fail "status text: $(hc n2 cluster status)"
lease_n2=$(status_field n2 'd["lease"]')

# --- a second n2 is refused, naming the key ---
mkdir -p "$tmp/dup"
sed "s#$tmp/n2/state#$tmp/dup/state#; s#$tmp/n2.sock#$tmp/dup.sock#" "$tmp/n2.yaml" > "$tmp/dup.yaml"
if timeout 20 "$herdd_bin" --config "$tmp/dup.yaml" > "$tmp/dup.log" 2>&1; then
    fail "a second herdd named n2 started"
fi
grep -q "node name 'n2' is taken: etcd key /herd/nodes/n2 is held by lease" "$tmp/dup.log" ||
    fail "duplicate refusal: $(cat "$tmp/dup.log")"
[ "$(status_field n2 'd["lease"]')" = "$lease_n2" ] || fail "n2 lost its lease to the duplicate"
[ "$(names n1)" = "n1 n2 n3" ] || fail "after the duplicate: $(names n1)"

# --- SIGTERM: gone at once ---
stop_herdd n3 TERM
[ "$(names n1)" = "n1 n2" ] || fail "n3 still listed right after SIGTERM: $(names n1)"
[ ! -e "$tmp/n3/state/cluster.lease" ] || fail "n3 left its cluster.lease"

# --- kill -9: listed until the lease expires ---
stop_herdd n2 KILL
killed=$EPOCHREALTIME
sleep 1
[ "$(names n1)" = "n1 n2" ] || fail "n2 gone 1 s after kill -9 (TTL $ttl s): $(names n1)"
wait_names n1 "n1" $((ttl + 4)) || fail "n2 still listed $((ttl + 4)) s after kill -9"
echo "n2 gone $(elapsed "$killed") s after kill -9 (TTL $ttl s)"
start_herdd n2
[ "$(names n1)" = "n1 n2" ] || fail "n2 not listed after its restart"
# killed and started at once: its own key, still on the old lease, is taken over
old=$(status_field n2 'd["lease"]')
stop_herdd n2 KILL
start_herdd n2
new=$(status_field n2 'd["lease"]')
[ "$new" != "$old" ] && [ "$(names n1)" = "n1 n2" ] || fail "n2 restarted at once: lease $old -> $new"

# --- etcd down for longer than a TTL, then back on the same data dir ---
kill -KILL "$etcd_pid"
wait "$etcd_pid" 2>/dev/null
etcd_pid=
sleep "$ttl"
for n in n1 n2; do # lost when no renewal got through for a TTL
    ok=
    for _ in $(seq $((ttl * 20))); do
        [ "$(status_field $n 'd["registered"]')" = False ] && { ok=1; break; }
        sleep 0.1
    done
    [ -n "$ok" ] || fail "$n still registered $((ttl * 3)) s after etcd went away"
done
hc n1 cluster nodes > "$tmp/down.out" 2>&1 && fail "cluster nodes answered with etcd down"
grep -q "HTTP 503" "$tmp/down.out" || fail "cluster nodes with etcd down: $(cat "$tmp/down.out")"
# a herdd started while etcd is away starts all the same, unregistered
start_herdd n4
[ "$(status_field n4 'd["registered"], d["registrations"], bool(d["last_error"])')" = \
  "False 0 True" ] || fail "n4 with etcd down: $(hc n4 --json cluster status)"
start_etcd || { echo "etcd's ports were taken while it was down"; exit 1; }
back=$EPOCHREALTIME
for n in n1 n2 n4; do
    ok= want=2 # n4: its first
    [ $n = n4 ] && want=1
    for _ in $(seq $((ttl * 30))); do
        [ "$(status_field $n "d['registered'], d['registrations'] == $want" 2>/dev/null)" = \
          "True True" ] && { ok=1; break; }
        sleep 0.1
    done
    [ -n "$ok" ] || fail "$n did not register again: $(hc $n --json cluster status)"
done
wait_names n2 "n1 n2 n4" $((ttl * 3)) || fail "after etcd's restart"
echo "n1, n2 registered again and n4 registered $(elapsed "$back") s after etcd came back"

# --- a herdd without cluster: ---
start_herdd solo none
out=$(curl -s --unix-socket "$tmp/solo.sock" -w ' %{http_code}' http://herd/v1/cluster/nodes)
[[ $out == *'"field": "cluster"'*' 409' || $out == *'"field":"cluster"'*' 409' ]] ||
    fail "solo: /v1/cluster/nodes: $out"
hc solo cluster status > "$tmp/solo.out" 2>&1 && fail "solo: cluster status succeeded"
grep -q "this node is not in a cluster" "$tmp/solo.out" || fail "solo: $(cat "$tmp/solo.out")"
stop_herdd solo TERM

# --- everything stops; nothing is left ---
stop_herdd n1 TERM
stop_herdd n2 TERM
stop_herdd n4 TERM
left=$(curl -s "$endpoint/v3/kv/range" -d '{"key": "L2hlcmQvbm9kZXMv", "range_end": "L2hlcmQvbm9kZXMw"}')
[[ $left != *'"kvs"'* ]] || fail "keys left under /herd/nodes/: $left"
for n in "${!pid[@]}"; do
    [ -z "${pid[$n]}" ] || fail "herdd $n still has a pid"
done
for f in "$tmp"/*.log; do
    if grep -qE 'ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer' "$f"; then
        fail "sanitizer report in $f"
        grep -A20 -E 'ERROR: AddressSanitizer|runtime error' "$f" | head -40
    fi
done
kill -TERM "$etcd_pid"
wait "$etcd_pid" 2>/dev/null
etcd_pid=
pgrep -f "$tmp" >/dev/null && fail "processes of this test left: $(pgrep -af "$tmp")"

echo "cluster-nodes: $(elapsed "$t0") s"
if [ "$failures" -ne 0 ]; then
    for n in n1 n2 n3; do
        echo "--- $n log"
        tail -n 15 "$tmp/$n.log"
    done
    echo "cluster-nodes: $failures check(s) failed"
    exit 1
fi
echo "cluster-nodes: all checks passed"
exit 0
