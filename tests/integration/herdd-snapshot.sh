#!/bin/bash
# herd-test-needs: kvm
# herdd's snapshots (docs/herdd.md "Snapshots"): a 1-vCPU probe guest counting
# timer ticks and writing its disk round by round (probe.tests=boot,ticks
# probe.ticks.disk=1) is snapshotted
# through herdctl while it runs; it goes on (the same herd-vmm, paused for
# the snapshot and the copy of its overlay, then resumed) and passes. Two guests created from
# the snapshot (`vm create --snapshot`) go on from the round after the
# snapshot, read back the sector written before it, and pass; each has its
# own MAC (herd-vmm reports the change), tap, uid and overlay over the
# snapshot's disk copy, which they do not change; the template's parent is
# untouched; the snapshot's files are root's 0400. A ready idle guest
# snapshotted while paused stays paused, and its clone (with the copy of its
# cloud-init seed disk) is ready. Refusals
# with their status and field, nothing left behind: bad, empty, missing and
# taken names, unknown fields, not JSON, an unknown guest, guests that do
# not run, a clone with a shape of its own, an unknown snapshot, rm of a
# snapshot while clones exist or another snapshot stands on it, rm of a
# template under a snapshot. A restored guest's snapshot stands on its
# parent's disk copy, and its clone gets the whole chain. At the end (guests and snapshots removed): no herd-vmm, no tap,
# nothing of theirs in the state dir; audit entries and events; a
# snapshot directory without a record (herdd killed while taking it) is
# removed when herdd starts.
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"
. "$(dirname "$0")/common.sh"

ROUNDS=80
write_config "users: {0: [sysadmin, secadmin, auditor]}
capacity: {cpu_overcommit: 16}"
start_herdd
make_parent
ticks_template ticks "$ROUNDS" ""

console() { console_log "$1"; }
expect() { expect_reply "$@"; }

echo "== refusals before anything is taken"
expect "bad name" 400 name "$(api POST /v1/vms/src/snapshot '{"name":"../x"}')"
expect "empty name" 400 name "$(api POST /v1/vms/src/snapshot '{"name":""}')"
expect "no name" 400 name "$(api POST /v1/vms/src/snapshot '{}')"
expect "unknown field" 400 mode "$(api POST /v1/vms/src/snapshot '{"name":"s0","mode":1}')"
expect "not JSON" 400 "" "$(api POST /v1/vms/src/snapshot 'name=s0')"
expect "unknown guest" 404 vm "$(api POST /v1/vms/nope/snapshot '{"name":"s0"}')"
hc vm create idle --template ticks >/dev/null || fail "vm create idle"
expect "guest not running" 409 state "$(api POST /v1/vms/idle/snapshot '{"name":"s0"}')"
[ -z "$(snap_files)" ] || fail "a refused snapshot left files: $(snap_files)"
[ "$(hc --json snapshot ls)" = "[]" ] || fail "a refused snapshot is listed"

echo "== a guest at work"
hc vm create src --template ticks --start >/dev/null || fail "vm create src"
wait_line "$(console src)" 'ticks: round 3 ' 60 || { fail "src never reached round 3"; finish; }

echo "== vm snapshot (while it runs)"
rounds() { grep -oE 'ticks: round [0-9]+' "$(console "$1")" | awk '{print $3}'; }
before=$(rounds src | tail -n1)
src_pid=$(vm_field src 'd["pid"]')
t0=$EPOCHREALTIME
if ! hc vm snapshot src s1; then
    fail "vm snapshot src s1"
    tail -n 5 "$(console src)" "$tmp/state/vms/src/vmm.log"
    finish
fi
echo "took $(python3 -c "print(round(($EPOCHREALTIME - $t0) * 1000))") ms through herdctl"
[ "$(vm_field src 'd["state"]')" = running ] || fail "src is not running after the snapshot"
# herd-vmm flushed the overlay while writing the snapshot: src was copied
# paused and resumed, the same process
new_pid=$(vm_field src 'd["pid"]')
[ "$new_pid" = "$src_pid" ] || fail "src's herd-vmm changed ($src_pid -> $new_pid): it should only have paused"
after=$(rounds src | tail -n1)
[ -n "$before" ] && [ "$after" -lt $((ROUNDS - 20)) ] || fail "src was too far ($after) for the test to mean much"
hc snapshot ls
snap=$(hc --json snapshot show s1)
dir=$tmp/state/snapshots/s1
shape=$(jget "$snap" '"%s %s %s %s" % (d["vm"], d["template"], d["cpus"], d["mem"])')
[ "$shape" = "src ticks 1 67108864" ] || fail "snapshot record: $shape"
[ "$(jget "$snap" 'd["disks"][0]["backing"][0]["path"]')" = "$parent" ] || fail "snapshot disk's backing chain"
[ "$(jget "$snap" '[n["network"] for n in d["nics"]]')" = "['communication']" ] || fail "snapshot NICs"
for f in vm.snap disk.qcow2; do
    [ "$(stat -c '%U %a' "$dir/$f")" = "root 400" ] || fail "$f is $(stat -c '%U %a' "$dir/$f"), expected root 400"
done
[ "$(stat -c %a "$dir")" = 700 ] || fail "the snapshot's directory is not 0700"
qemu-img check -q "$dir/disk.qcow2" || fail "qemu-img check of the snapshot's disk copy"
[ "$(qemu-img info -U --output=json "$dir/disk.qcow2" | jget "$(cat)" 'd["backing-filename"]')" = "$parent" ] ||
    fail "the disk copy does not stand on the template's parent"
copy_sum=$(sha256sum < "$dir/disk.qcow2")

echo "== refusals with a snapshot there"
expect "taken name" 409 name "$(api POST /v1/vms/src/snapshot '{"name":"s1"}')"
expect "clone with cpus" 400 cpus "$(api POST /v1/vms '{"name":"c9","snapshot":"s1","cpus":1}')"
expect "clone with template" 400 template "$(api POST /v1/vms '{"name":"c9","snapshot":"s1","template":"ticks"}')"
expect "unknown snapshot" 404 snapshot "$(api POST /v1/vms '{"name":"c9","snapshot":"nope"}')"
expect "bad snapshot name" 400 snapshot "$(api POST /v1/vms '{"name":"c9","snapshot":"a/b"}')"
expect "template under a snapshot" 409 name "$(api DELETE /v1/templates/ticks)"
expect "unknown snapshot rm" 404 name "$(api DELETE /v1/snapshots/nope)"
[ -d "$tmp/state/vms/c9" ] && fail "a refused clone left its directory"

echo "== two guests restored from s1"
for c in c1 c2; do
    hc vm create "$c" --snapshot s1 --start || fail "vm create $c --snapshot s1"
done
expect "rm while clones run" 409 name "$(api DELETE /v1/snapshots/s1)"
[ "$(vm_field c1 'd["ready"]')" = False ] || fail "c1 is ready, but src was not when the snapshot was taken"
[ -f "$dir/vm.snap" ] || fail "a refused rm removed the snapshot's file"
for c in c1 c2; do
    args=$(tr '\0' ' ' < /proc/"$(vm_field "$c" 'd["pid"]')"/cmdline)
    grep -q -- "--restore $dir/vm.snap --restore-mem map" <<<"$args" || fail "$c: herd-vmm's args: $args"
    grep -q -- "--kernel" <<<"$args" && fail "$c: a restored guest got --kernel"
done
macs="$(vm_field src 'd["nics"][0]["mac"]') $(vm_field c1 'd["nics"][0]["mac"]') $(vm_field c2 'd["nics"][0]["mac"]')"
[ "$(tr ' ' '\n' <<<"$macs" | sort -u | wc -l)" = 3 ] || fail "MACs not distinct: $macs"
[ "$(vm_field c1 'd["uid"]')" != "$(vm_field c2 'd["uid"]')" ] || fail "the clones share a uid"
[ "$(vm_field c1 'd["snapshot"]')" = s1 ] || fail "c1's record does not name its snapshot"
for c in c1 c2; do
    [ "$(qemu-img info -U --output=json "$tmp/state/vms/$c/disk.qcow2" | jget "$(cat)" 'd["backing-filename"]')" = "$dir/disk.qcow2" ] ||
        fail "$c's overlay does not stand on the snapshot's disk copy"
done
for v in src c1 c2; do
    wait_line "$(console "$v")" 'herd-probe: [0-9]+ passed' 90 || fail "$v did not finish"
done
for c in c1 c2; do
    first=$(rounds "$c" | head -n1)
    [ -n "$first" ] && [ "$first" -gt "$before" ] && [ "$first" -le $((after + 1)) ] ||
        fail "$c: first round after the restore is '$first', the snapshot was between rounds $before and $after"
    grep -q "ticks: round $first .* disk ok" "$(console "$c")" ||
        fail "$c: the sector written before the snapshot did not read back"
    grep -q "ticks: round $((ROUNDS - 1)) .* disk ok" "$(console "$c")" || fail "$c: did not reach the last round"
    grep -q "MAC .* is now $(vm_field "$c" 'd["nics"][0]["mac"]')" "$tmp/state/vms/$c/vmm.log" ||
        fail "$c: herd-vmm did not report the new MAC"
done
for v in src c1 c2; do
    grep -qxF "herd-probe: 2 passed, 0 failed" "$(console "$v")" || { fail "$v did not pass"; tail -n 5 "$(console "$v")"; }
done
[ "$(sha256sum < "$dir/disk.qcow2")" = "$copy_sum" ] || fail "the clones changed the snapshot's disk copy"
[ "$(sha256sum < "$parent")" = "$parent_sum" ] || fail "the template's parent changed"
for v in src c1 c2; do
    wait_for_state() { [ "$(vm_field "$1" 'd["state"]')" = exited ]; }
    for _ in $(seq 50); do wait_for_state "$v" && break; sleep 0.1; done
    qemu-img check -q "$tmp/state/vms/$v/disk.qcow2" || fail "qemu-img check $v"
done
expect "snapshot of an exited guest" 409 state "$(api POST /v1/vms/src/snapshot '{"name":"s3"}')"
[ "$(snap_files | grep -c /s3)" = 0 ] || fail "a refused snapshot left files"

echo "== a ready guest's snapshot, taken while paused: it stays paused, its clone is ready"
hc template add idle --image "$parent" --format raw --kernel "$probe" --mem 64M \
    --cmdline "probe.tests=boot probe.idle=1" --nic communication >/dev/null || fail "template add idle"
out=$(api POST /v1/vms '{"name":"w1","template":"idle","start":true,"cloud_init":{"hostname":"w1"}}')
[ "${out%% *}" = 201 ] || fail "create w1 (with a seed disk): $out"
wait_ready w1 || fail "w1 never became ready"
hc vm pause w1 >/dev/null || fail "pause w1"
hc vm snapshot w1 s2 >/dev/null || fail "vm snapshot w1 s2 (paused)"
[ "$(vm_field w1 'd["state"]')" = paused ] || fail "w1 is not paused again after its snapshot"
[ "$(jget "$(hc --json snapshot show s2)" 'd["ready"]')" = True ] || fail "s2 does not record w1 as ready"
hc vm create w2 --snapshot s2 --start >/dev/null || fail "vm create w2 --snapshot s2"
wait_ready w2 20 || fail "w2 is not ready (restored from a snapshot of a ready guest)"
[ "$(stat -c '%U %a' "$tmp/state/snapshots/s2/seed.iso")" = "root 400" ] || fail "s2 has no seed copy"
grep -q -- "--disk path=$tmp/state/snapshots/s2/seed.iso,format=raw,readonly=on" \
    <<<"$(tr '\0' ' ' < /proc/"$(vm_field w2 'd["pid"]')"/cmdline)" || fail "w2 does not attach s2's seed copy"

echo "== a restored guest's snapshot: its disk copy stands on its parent's"
hc vm snapshot w2 s3 >/dev/null || fail "vm snapshot w2 s3 (a restored guest)"
[ "$(vm_field w2 'd["state"]')" = running ] || fail "w2 does not run after its snapshot"
[ "$(jget "$(hc --json snapshot show s3)" 'd["parent"]')" = s2 ] || fail "s3 does not name s2 as its parent"
hc vm create w3 --snapshot s3 --start >/dev/null || fail "vm create w3 --snapshot s3"
wait_ready w3 20 || fail "w3 (from s3) is not ready"
sd=$tmp/state/snapshots
grep -q -- "backing=qcow2:$sd/s3/disk.qcow2,backing=qcow2:$sd/s2/disk.qcow2,backing=raw:$parent" \
    <<<"$(tr '\0' ' ' < /proc/"$(vm_field w3 'd["pid"]')"/cmdline)" || fail "w3's pinned chain"
qemu-img check -q "$sd/s3/disk.qcow2" || fail "qemu-img check of s3's disk copy"
hc vm rm --force w3 >/dev/null || fail "vm rm w3"
expect "rm of a parent snapshot" 409 name "$(api DELETE /v1/snapshots/s2)"
hc vm resume w1 >/dev/null || fail "resume w1"
[ "$(vm_field w1 'd["state"]')" = running ] || fail "w1 does not run after resume"

echo "== remove everything"
expect "rm while clones exist" 409 name "$(api DELETE /v1/snapshots/s1)"
for v in c1 c2 src idle w1 w2; do hc vm rm --force "$v" >/dev/null || fail "vm rm $v"; done
hc snapshot rm s1 || fail "snapshot rm s1"
hc snapshot rm s3 >/dev/null || fail "snapshot rm s3"
hc snapshot rm s2 >/dev/null || fail "snapshot rm s2"
expect "snapshot gone" 404 name "$(api GET /v1/snapshots/s1)"
[ -z "$(snap_files)" ] || fail "snapshot files left: $(snap_files)"
hc template rm ticks >/dev/null || fail "template rm after the snapshot went"
hc template rm idle >/dev/null || fail "template rm idle"
check_nothing_left

hc --json audit ls 200 | grep -q 'POST /v1/vms/src/snapshot' || fail "the snapshot is not in the audit log"
events=$(api GET '/v1/events?type=snapshot.')
grep -q snapshot.created <<<"$events" && grep -q snapshot.removed <<<"$events" ||
    fail "snapshot events missing: $events"

echo "== a snapshot cut short by a crash is swept at start"
stop_herdd KILL
mkdir -p "$tmp/state/snapshots/cut" && echo partial > "$tmp/state/snapshots/cut/vm.snap"
start_herdd
[ -z "$(snap_files)" ] || fail "the leftover of a cut snapshot is still there: $(snap_files)"
grep -q "removed .*/snapshots/cut: a snapshot cut short" "$tmp/herdd.log" || fail "no log line for the sweep"
finish
