#!/bin/bash
# herd-test-needs: kvm
# Parent images across nodes (docs/cluster.md "Parent images"): one etcd of
# its own and three herdd (n1, n2, n3; lease_ttl 3), each serving its
# templates' files on its own address and port; n3 fetches at most 2 MiB/s
# (cluster.fetch_rate). Only n1 has the probe template (a 16 MiB raw parent
# and the probe kernel). Checks:
#  - n1 publishes it (/herd/images/probe/n1: digests and sizes as template
#    ls says), the placer places a spread: range on all three nodes
#    (n2 and n3 lack the template);
#  - n3's copy is slow: its guests' status shows the progress ("fetching
#    the image from n1, X of 16.0 MiB") and cluster status the bytes; n3's
#    herdd is killed (-9) mid-copy, a partial copy is left, and started
#    again it resumes from there (a ranged request on n1, image.fetched
#    resumed_from > 0): every guest ready;
#  - n2 and n3 each fetched the image and the kernel exactly once (their
#    image.fetched events and logs; n1's image.served to each), though
#    each has two guests of it; the copies are read-only, named by their
#    SHA-256, which matches n1's, and registered as the nodes' template
#    probe; no partial copy is left; they are sparse like the parent; n2
#    and n3 publish their copies too;
#  - a byte of n2's copy flipped: n2 serves it no more (503); the next
#    guest of probe on n2 finds it
#    changed, refuses it (image.corrupt), fetches it again (a second
#    image.fetched) and runs on the good copy;
#  - a peer serving wrong bytes (template bad on n1, whose parent is changed
#    after template add): n2 refuses the copy (image.refused: the digest
#    it got and the one published), the guest is not created and its
#    status is error with that reason; nothing of it is kept on n2; the
#    same for a peer whose file is shorter than it publishes (template
#    short: a complete reply, 1 MiB short);
#  - a holder gone mid-copy (n1 killed while n3 copies template big from
#    it): n3 goes on from n2's copy, from where it was (image.fetch_failed
#    from n1, then image.fetched from n2 resumed past 3 MiB);
#  - hostile entries under /herd/images/ (not JSON, a path for a digest, a
#    wrong name) are refused: placement does not count them, no herdd harmed;
#  - range down leaves no guest; nothing of the test is left.
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

tmp=$(mktemp -d /tmp/herd-cimg.XXXXXX)
chmod 755 "$tmp"
declare -A pid=() port=()
etcd_pid=
failures=0
t0=$EPOCHREALTIME

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

start_herdd() { # NAME
    local n=$1 rate=0
    [ "$n" = n3 ] && rate=2M
    mkdir -p "$tmp/$n"
    cat > "$tmp/$n.yaml" <<YAML
node: $n
state_dir: $tmp/$n/state
socket: $tmp/$n.sock
vmm: $vmm
image_dirs: [$tmp/images, $build]
cgroup_root: "off"
stop_timeout: 5
capacity: {cpu_overcommit: 8}
guest_uids: {first: $((400000 + ${n#n} * 1000)), count: 1000}
cluster:
  endpoints: [$endpoint]
  address: 127.0.0.${n#n}
  lease_ttl: $ttl
  image_port: ${port[$n]}
  fetch_rate: $rate
YAML
    "$herdd_bin" --config "$tmp/$n.yaml" >> "$tmp/$n.log" 2>&1 &
    pid[$n]=$!
    herdd_up "$n"
}

# events NODE TYPE: that node's events of TYPE (a prefix), one JSON a line
events() {
    api "$1" GET "/v1/events?since=0&type=$2" | cut -d' ' -f2- | python3 -c '
import json, sys
for e in json.load(sys.stdin)["events"]: print(json.dumps(e, sort_keys=True))'
}
# count NODE TYPE PYEXPR: how many of NODE's TYPE events e satisfy PYEXPR
count() {
    events "$1" "$2" | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin if (lambda e: eval(sys.argv[1]))(json.loads(l))))' "$3"
}
summary() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("state %s, %s ready of %s" % (d.get("state"), d.get("ready"), d.get("guests")))
for v in d.get("vms", []):
    if not v.get("ready"): print("  %s on %s: %s %s" % (v["name"], v["node"], v["state"], v.get("note")))' "$tmp/status.json"; }
on_node() { hc "$1" --json vm ls --range "$2" | python3 -c '
import json, sys
print(" ".join(sorted(v["name"] for v in json.load(sys.stdin))))'; }
flip() { # FILE OFFSET: one byte inverted in place (its size kept)
    python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"
}
tmpl_field() { # NODE TEMPLATE FIELD
    hc "$1" --json template ls | python3 -c '
import json, sys
t = [t for t in json.load(sys.stdin) if t["name"] == sys.argv[1]]
print(t[0].get(sys.argv[2], "") if t else "")' "$2" "$3"
}

mkdir -p "$tmp/images"
for _ in 1 2 3; do
    read -r cport pport p1 p2 p3 < <(free_ports 5)
    endpoint=http://127.0.0.1:$cport
    port=([n1]=$p1 [n2]=$p2 [n3]=$p3)
    : > "$tmp/etcd.log"
    start_etcd && break
    rm -rf "$tmp/etcd"
done
[ -n "$etcd_pid" ] || { echo "etcd: no free ports"; tail -n 5 "$tmp/etcd.log"; exit 1; }
head -c 4M /dev/urandom > "$tmp/images/parent.raw"
truncate -s 16M "$tmp/images/parent.raw"
for n in n1 n2 n3; do start_herdd $n; done
hc n1 template add probe --image "$tmp/images/parent.raw" --format raw --kernel "$probe" \
    --cmdline "probe.tests=boot probe.idle=1" --mem 64M >/dev/null || fail "template add on n1"
img_sha=$(tmpl_field n1 probe sha256)
kern_sha=$(sha256sum "$probe" | cut -d' ' -f1)

# --- 1. published by n1 ---
ok=
for _ in $(seq 50); do
    [ -n "$(get /herd/images/probe/n1)" ] && { ok=1; break; }
    sleep 0.1
done
[ -n "$ok" ] || fail "n1 did not publish probe"
python3 - "$(get /herd/images/probe/n1)" "$img_sha" "$kern_sha" "${port[n1]}" <<'PY' || fail "n1's entry for probe"
import json, sys
e = json.loads(sys.argv[1])
assert e["name"] == "probe" and e["node"] == "n1" and e["address"] == "127.0.0.1", e
assert e["port"] == int(sys.argv[4]) and e["format"] == "raw" and e["mem"] == 64 << 20, e
assert e["files"]["image"] == {"sha256": sys.argv[2], "size": 16 << 20}, e["files"]
assert e["files"]["kernel"]["sha256"] == sys.argv[3], e["files"]
assert "initrd" not in e["files"], e
PY
# the image port serves registered files by digest only
out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[n1]}/v1/images/sha256/$(printf %064d 0)")
[ "$out" = 404 ] || fail "an unknown digest: $out"
out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[n1]}/v1/images/sha256/../../../etc/passwd")
[ "$out" = 404 ] || fail "a path: $out"
out=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:${port[n1]}/v1/images/sha256/$img_sha")
[ "$out" = 405 ] || fail "PUT: $out"
out=$(curl -s -o /dev/null -w '%{http_code}' -r 99999999- "http://127.0.0.1:${port[n1]}/v1/images/sha256/$img_sha")
[ "$out" = 416 ] || fail "a range past the end: $out"
[ "$(curl -s -r 0-3 "http://127.0.0.1:${port[n1]}/v1/images/sha256/$img_sha" | od -An -tx1 | tr -d ' ')" = \
  "$(head -c 4 "$tmp/images/parent.raw" | od -An -tx1 | tr -d ' ')" ] || fail "a range of the parent"

# --- 2. a spread range on all three: n2 and n3 fetch the parent once ---
cat > "$tmp/ci.yaml" <<YAML
range: ci
scenarios:
  - name: s
    roles:
      - {name: web, template: probe, count: 6, spread: true}
YAML
hc n1 --json range up "$tmp/ci.yaml" --detach > "$tmp/up.json" || { fail "range up ci"; cat "$tmp/up.json"; }
python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["placement"]
sys.exit(0 if p == {"n1": 2, "n2": 2, "n3": 2} else 1)' "$tmp/up.json" ||
    fail "ci not spread on the three nodes: $(cat "$tmp/up.json")"
# n3 copies at 2 MiB/s: its guests' status and cluster status show the
# progress; then its herdd is killed while a partial copy exists
seen=
for _ in $(seq 100); do
    hc n3 --json range status ci > "$tmp/st3.json" 2>/dev/null
    hc n3 cluster status > "$tmp/cs3.txt" 2>/dev/null
    grep -q "waiting for template probe: fetching the image from n1, [0-9.]* MiB of 16.0 MiB" "$tmp/st3.json" &&
        grep -qE "copy +probe +fetching: image from n1, [0-9.]+M of 16M" "$tmp/cs3.txt" && { seen=1; break; }
    sleep 0.1
done
[ -n "$seen" ] || fail "n3 does not show the copy's progress: $(grep -A4 '"node": "n3"' "$tmp/st3.json" | head -12) $(cat "$tmp/cs3.txt")"
stop_herdd n3 KILL
have=$(stat -c %s "$tmp/n3/state/templates/copies/$img_sha.part" 2>/dev/null || echo 0)
[ "$have" -gt 0 ] && [ "$have" -lt $((16 << 20)) ] || fail "n3's partial copy after kill: $have bytes"
start_herdd n3
if ! wait_range n1 ci "d['ready'] == 6" 90; then
    fail "ci not ready on the cluster"
    summary
fi
# n3 resumed: one image.fetched from where the partial copy ended
resumed=$(events n3 image.fetched | python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin]
r = [e for e in r if e["file"] == "image"]
print(r[0]["resumed_from"] if len(r) == 1 else "count %d" % len(r))')
[ "$resumed" -gt 0 ] 2>/dev/null && [ "$resumed" -ge "$have" ] || fail "n3 did not resume its copy (had $have bytes): $resumed"
[ "$(grep -c "template probe: image .* fetched from node n1 and verified" "$tmp/n3.log")" = 1 ] ||
    fail "n3 fetched the image more than once: $(grep -c "image .* fetched" "$tmp/n3.log")"
[ "$(count n1 image.served "e['to'] == '127.0.0.3' and e['sha256'] == '$img_sha' and e['start'] == $resumed")" = 1 ] ||
    fail "n1 served no ranged request from $resumed to n3: $(events n1 image.served)"
for n in n2 n3; do
    for f in image kernel; do
        c=$(count $n image.fetched "e['file'] == '$f' and e['template'] == 'probe'")
        [ "$c" = 1 ] || fail "$n fetched the $f $c times"
    done
    [ "$(on_node $n ci | wc -w)" = 2 ] || fail "$n has not its two guests: $(on_node $n ci)"
    [ "$(tmpl_field $n probe sha256)" = "$img_sha" ] || fail "$n's probe: $(tmpl_field $n probe sha256)"
    [ "$(tmpl_field $n probe image)" = "$tmp/$n/state/templates/copies/$img_sha" ] ||
        fail "$n's probe image: $(tmpl_field $n probe image)"
    [ "$(tmpl_field $n probe kernel)" = "$tmp/$n/state/templates/copies/$kern_sha" ] ||
        fail "$n's probe kernel: $(tmpl_field $n probe kernel)"
    [ "$(stat -c %a "$tmp/$n/state/templates/copies/$img_sha")" = 444 ] || fail "$n's copy is not read-only"
    # the parent's 12 MiB of zeros are not written: the copy is sparse
    [ "$(stat -c %b "$tmp/$n/state/templates/copies/$img_sha")" -le $((6 << 11)) ] ||
        fail "$n's copy is not sparse: $(stat -c %b "$tmp/$n/state/templates/copies/$img_sha") blocks"
    [ "$(sha256sum < "$tmp/$n/state/templates/copies/$img_sha" | cut -d' ' -f1)" = "$img_sha" ] ||
        fail "$n's copy is not n1's parent"
    ls "$tmp/$n/state/templates/copies/" | grep -q part && fail "$n left a partial copy"
done
[ "$(count n1 image.served "e['to'] == '127.0.0.2' and e['sha256'] == '$img_sha'")" = 1 ] ||
    fail "n1 served the image to n2 other than once: $(events n1 image.served)"
# the nodes with a copy publish it too
for _ in $(seq 30); do
    [ -n "$(get /herd/images/probe/n2)" ] && [ -n "$(get /herd/images/probe/n3)" ] && break
    sleep 0.1
done
[[ $(get /herd/images/probe/n2) == *"\"sha256\":\"$img_sha\""* ]] || fail "n2 does not publish its copy"

# --- 3. a corrupted copy on n2 is refused and fetched again ---
flip "$tmp/n2/state/templates/copies/$img_sha" $((1 << 20))
# n2 no longer serves it (nor publishes it, once its publisher has hashed it)
out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.2:${port[n2]}/v1/images/sha256/$img_sha")
[ "$out" = 503 ] || fail "n2 serves its changed copy: $out"
cat > "$tmp/ci2.yaml" <<YAML
range: ci
scenarios:
  - name: s
    roles:
      - {name: web, template: probe, count: 6, spread: true}
      - {name: pin, template: probe, count: 1, node: n2}
YAML
hc n1 --json range up "$tmp/ci2.yaml" --detach > "$tmp/up2.json" || fail "range up ci with pin"
wait_range n1 ci "d['ready'] == 7" 60 || { fail "ci-pin not ready on n2"; summary; }
[ "$(count n2 image.corrupt "e['file'] == 'image' and e['sha256'] == '$img_sha'")" = 1 ] ||
    fail "n2 did not refuse its corrupted copy: $(events n2 image.)"
[ "$(count n2 image.fetched "e['file'] == 'image'")" = 2 ] || fail "n2 did not fetch the image again"
[ "$(count n2 image.fetched "e['file'] == 'kernel'")" = 1 ] || fail "n2 fetched the kernel again"
[ "$(sha256sum < "$tmp/n2/state/templates/copies/$img_sha" | cut -d' ' -f1)" = "$img_sha" ] ||
    fail "n2's copy is still corrupted"
grep -q "the copy .*$img_sha (image of template probe) does not hash to its name: deleted" "$tmp/n2.log" ||
    fail "n2's log does not say why it fetched again"

# --- 4. a peer serving wrong bytes is refused ---
cp "$tmp/images/parent.raw" "$tmp/images/bad.raw"
printf 'bad' | dd of="$tmp/images/bad.raw" bs=1 seek=$((5 << 20)) conv=notrunc status=none
hc n1 template add bad --image "$tmp/images/bad.raw" --format raw --kernel "$probe" \
    --mem 64M >/dev/null || fail "template add bad on n1"
bad_sha=$(tmpl_field n1 bad sha256)
flip "$tmp/images/bad.raw" 100 # n1 now serves other bytes than it published
cp "$tmp/images/bad.raw" "$tmp/images/short.raw"
hc n1 template add short --image "$tmp/images/short.raw" --format raw --kernel "$probe" \
    --mem 64M >/dev/null || fail "template add short on n1"
truncate -s 15M "$tmp/images/short.raw" # and a shorter file than it published
for _ in $(seq 30); do [ -n "$(get /herd/images/bad/n1)" ] && [ -n "$(get /herd/images/short/n1)" ] && break; sleep 0.1; done
cat > "$tmp/cb.yaml" <<YAML
range: cb
scenarios:
  - name: s
    roles:
      - {name: x, template: bad, count: 1, node: n2}
      - {name: y, template: short, count: 1, node: n2}
YAML
hc n1 --json range up "$tmp/cb.yaml" --detach > "$tmp/upb.json" || fail "range up cb: $(cat "$tmp/upb.json")"
wait_range n1 cb "all(v['state'] == 'error' for v in d['vms'])" 30 || { fail "cb's guests are not in error"; summary; }
python3 - "$tmp/status.json" "$bad_sha" <<'PY' || fail "cb's guests' status"
import json, sys
vms = {v["name"]: v for v in json.load(open(sys.argv[1]))["vms"]}
v = vms["cb-s-x-1"]
note = v.get("note") or ""
print("cb-s-x-1:", note)
assert v["node"] == "n2" and not v["ready"], v
assert "template bad: image" in note and "from node n1" in note, note
assert "hash to sha256" in note and "not the published " + sys.argv[2] in note and "refused" in note, note
note = vms["cb-s-y-1"].get("note") or ""
print("cb-s-y-1:", note)
assert "template short: image" in note, note
assert "its reply ends at byte 15728640 of the 16777216 published: refused" in note, note
PY
[ -z "$(on_node n2 cb)" ] || fail "n2 made cb's guest"
[ -z "$(tmpl_field n2 bad name)$(tmpl_field n2 short name)" ] || fail "n2 registered a bad copy"
ls "$tmp/n2/state/templates/copies/" | grep -q "$bad_sha\|$(tmpl_field n1 short sha256)" && fail "n2 kept bytes of a bad copy"
[ "$(count n2 image.refused "e['template'] == 'bad' and e['file'] == 'image'")" -ge 1 ] ||
    fail "no image.refused on n2: $(events n2 image.)"

# --- 5. a holder gone mid-copy: the copy goes on from another holder ---
head -c 4M /dev/urandom > "$tmp/images/big.raw"
truncate -s 16M "$tmp/images/big.raw"
hc n1 template add big --image "$tmp/images/big.raw" --format raw --kernel "$probe" \
    --cmdline "probe.tests=boot probe.idle=1" --mem 64M >/dev/null || fail "template add big on n1"
big_sha=$(tmpl_field n1 big sha256)
for _ in $(seq 30); do [ -n "$(get /herd/images/big/n1)" ] && break; sleep 0.1; done
cat > "$tmp/cf.yaml" <<YAML
range: cf
scenarios:
  - name: s
    roles:
      - {name: a, template: big, count: 1, node: n2}
YAML
hc n1 --json range up "$tmp/cf.yaml" --detach > /dev/null || fail "range up cf"
wait_range n1 cf "d['ready'] == 1" 60 || { fail "cf not ready on n2"; summary; }
for _ in $(seq 30); do [ -n "$(get /herd/images/big/n2)" ] && break; sleep 0.1; done
printf '      - {name: b, template: big, count: 1, node: n3}\n' >> "$tmp/cf.yaml"
hc n1 --json range up "$tmp/cf.yaml" --detach > /dev/null || fail "range up cf with b"
for _ in $(seq 100); do
    [ "$(stat -c %s "$tmp/n3/state/templates/copies/$big_sha.part" 2>/dev/null || echo 0)" -ge $((3 << 20)) ] && break
    sleep 0.1
done
stop_herdd n1 KILL # n3 was copying from n1 (first by name); n2 has it too
wait_range n2 cf "d['ready'] == 2" 60 || { fail "cf's guest on n3 not ready after n1 went"; summary; }
python3 - "$(events n3 image.fetched)" <<'PY' || fail "n3 did not go on from n2: $(events n3 image.)"
import json, sys
r = [json.loads(l) for l in sys.argv[1].splitlines() if '"big"' in l and '"image"' in l]
assert len(r) == 1 and r[0]["from"] == "n2" and r[0]["resumed_from"] >= 3 << 20, r
PY
[ "$(count n3 image.fetch_failed "e['template'] == 'big' and e['from'] == 'n1'")" = 1 ] ||
    fail "no image.fetch_failed from n1 on n3: $(events n3 image.)"
start_herdd n1 # it adopts its guests again

# --- 6. hostile entries in etcd ---
put /herd/images/evil/n1 'not json'
put /herd/images/evil2/n1 "{\"name\":\"evil2\",\"node\":\"n1\",\"format\":\"raw\",\"address\":\"127.0.0.1\",\"port\":1,\"cmdline\":\"\",\"ready_line\":\"x\",\"cpus\":1,\"mem\":67108864,\"nics\":[],\"files\":{\"image\":{\"sha256\":\"../../../etc/shadow\",\"size\":1},\"kernel\":{\"sha256\":\"$kern_sha\",\"size\":1}}}"
put /herd/images/evil3/n9 "$(get /herd/images/probe/n1)"
for e in evil evil2 evil3; do
    printf 'range: ce\nscenarios:\n  - name: s\n    roles:\n      - {name: x, template: %s, count: 1}\n' $e > "$tmp/ce.yaml"
    out=$(api n2 POST /v1/ranges "$(cat "$tmp/ce.yaml")")
    [[ $out == "400 "* && $out == *"no node has template '$e'"* ]] || fail "a range on hostile entry $e: $out"
done
del /herd/images/evil/n1; del /herd/images/evil2/n1; del /herd/images/evil3/n9
for n in n1 n2 n3; do kill -0 "${pid[$n]}" 2>/dev/null || fail "herdd $n died"; done

# --- 7. down: nothing left ---
hc n3 range down ci >/dev/null || fail "range down ci"
hc n3 range down cb >/dev/null || fail "range down cb"
hc n3 range down cf >/dev/null || fail "range down cf"
ok=
for _ in $(seq 150); do
    [ -z "$(on_node n1 ci)$(on_node n2 ci)$(on_node n3 ci)$(on_node n2 cb)$(on_node n2 cf)$(on_node n3 cf)" ] &&
        { ok=1; break; }
    sleep 0.2
done
[ -n "$ok" ] || fail "guests left after range down"

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

echo "cluster-images: $(elapsed "$t0") s"
if [ "$failures" -ne 0 ]; then
    for n in n1 n2 n3; do
        echo "--- $n log"
        tail -n 20 "$tmp/$n.log"
    done
    echo "cluster-images: $failures check(s) failed"
    exit 1
fi
echo "cluster-images: all checks passed"
exit 0
