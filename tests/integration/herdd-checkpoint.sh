#!/bin/bash
# herd-test-needs: kvm
# Range checkpoints, vm restore and warm templates (docs/snapshot.md "Range
# checkpoints", "Warm templates"; docs/herdd.md "Snapshots"), with probe
# guests that count timer ticks and write their disk round by round
# (probe.tests=boot,ticks probe.ticks.disk=1) and then idle:
#  - a range of 3 such guests is checkpointed while they work: one snapshot
#    each (RANGE.CP.N, root's 0400), all taken while every guest was paused,
#    and they go on (the same herd-vmm); refusals (taken, bad and unknown
#    names, unknown fields, a checkpoint's snapshot removed on its own);
#  - once they have finished, `range reset --to` restores each from its own
#    snapshot: same herd-vmm command line but --restore, same MAC (no
#    change reported); each goes on from the round of the checkpoint, reads
#    back the sector written before it and passes again;
#  - a restored guest stopped and started again boots its kernel (its disk
#    has moved on from the snapshot: restoring its RAM again would not match
#    it); checkpoint-rm is refused while guests stand on it; a plain reset
#    takes them back to the template, then checkpoint-rm works;
#  - vm restore of one guest to a snapshot of another shape is refused (409
#    snapshot), to one of its own works;
#  - a warm template from a ready guest's snapshot: a range of 3 guests on
#    it comes up ready as clones (--restore, their own MACs), cpus of their
#    own and a role's runcmd are refused; the snapshot cannot be removed under it;
#  - a range with a resource disk: its checkpoint's snapshots keep a hard
#    link to the image the guests had; `range up` builds a new one, and
#    reset --to attaches the kept one (and the guests are ready);
#  - a checkpoint cut by a herdd crash (a snapshot's record missing) is
#    listed incomplete and refused as a reset target (409 to);
#  - a herdd killed while taking a checkpoint (its mark in the database, a
#    snapshot record missing, the guests it paused still paused): the next
#    start removes the snapshots and resumes those guests, not one its user
#    paused, and announces range.checkpoint.aborted;
#  - range down removes the range's checkpoints; at the end nothing is left.
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"
. "$(dirname "$0")/common.sh"

ROUNDS=100
write_config "users: {0: [sysadmin, secadmin, auditor]}
capacity: {cpu_overcommit: 16}"
start_herdd
make_parent
ticks_template ticks "$ROUNDS" probe.idle=1 --ready-line 'ticks: round 3 '

console() { console_log "$1"; }
expect() { expect_reply "$@"; }
rounds() { grep -aoE 'ticks: round [0-9]+' "$(console "$1")" | awk '{print $3}'; }
# idle_snapshot TEMPLATE MEM VM SNAP: an idle probe template of MEM, a guest
# of it, ready, and its snapshot
idle_snapshot() {
    hc template add "$1" --image "$parent" --format raw --kernel "$probe" --mem "$2" \
        --cmdline "probe.tests=boot probe.idle=1" --nic communication >/dev/null || fail "template add $1"
    hc vm create "$3" --template "$1" --start >/dev/null || fail "vm create $3"
    wait_ready "$3" || fail "$3 not ready"
    hc vm snapshot "$3" "$4" >/dev/null || fail "vm snapshot $3 $4"
}
args_of() { tr '\0' ' ' < /proc/"$(vm_field "$1" 'd["pid"]')"/cmdline; }

cat > "$tmp/r1.yaml" <<EOF
range: r1
scenarios:
  - name: s
    roles:
      - name: t
        template: ticks
        count: 3
EOF
hc range up "$tmp/r1.yaml" >/dev/null || fail "range up r1" # ready: at round 3
mapfile -t G < <(range_vms r1 | tr ' ' '\n' | sort)
[ "${#G[@]}" = 3 ] || { fail "r1 has ${#G[@]} guests: ${G[*]}"; finish; }
for g in "${G[@]}"; do
    wait_line "$(console "$g")" 'ticks: round 3 ' 60 || { fail "$g never reached round 3"; finish; }
done

echo "== refusals before a checkpoint exists"
expect "bad name" 400 name "$(api POST /v1/ranges/r1/checkpoints '{"name":"A.b"}')"
expect "no name" 400 name "$(api POST /v1/ranges/r1/checkpoints '{}')"
expect "unknown field" 400 mode "$(api POST /v1/ranges/r1/checkpoints '{"name":"c","mode":1}')"
expect "unknown range" 404 name "$(api POST /v1/ranges/nope/checkpoints '{"name":"c"}')"
expect "reset to an unknown checkpoint" 404 to "$(api POST /v1/ranges/r1/reset '{"to":"nope"}')"
[ -z "$(snap_files)" ] || fail "a refused checkpoint left files: $(snap_files)"

echo "== range checkpoint r1 cp1 (while the guests work)"
declare -A before after pid mac
for g in "${G[@]}"; do before[$g]=$(rounds "$g" | tail -n1); pid[$g]=$(vm_field "$g" 'd["pid"]'); done
out=$(hc --json range checkpoint r1 cp1) || { fail "range checkpoint r1 cp1: $out"; finish; }
for g in "${G[@]}"; do after[$g]=$(rounds "$g" | tail -n1); mac[$g]=$(vm_field "$g" 'd["nics"][0]["mac"]'); done
echo "checkpoint: $(jget "$out" '"%d guests, paused %d ms, %d KiB" % (d["guests"], d["paused_us"] // 1000, d["allocated"] // 1024)')"
[ "$(jget "$out" 'd["guests"]')" = 3 ] || fail "checkpoint: $out"
for g in "${G[@]}"; do
    [ "$(vm_field "$g" 'd["state"]')" = running ] || fail "$g does not run after the checkpoint"
    [ "$(vm_field "$g" 'd["pid"]')" = "${pid[$g]}" ] || fail "$g's herd-vmm changed: it should only have paused"
    [ "${after[$g]}" -lt $((ROUNDS - 20)) ] || fail "$g was too far (${after[$g]}) for the test to mean much"
done
# every guest was paused before the first was saved: the pause events of
# all three come before the first snapshot.created
python3 - "$(api GET '/v1/events?since=0')" "${G[@]}" <<'PY' || fail "the guests were not all paused before the first snapshot"
import json, sys
evs = json.loads(sys.argv[1].split(" ", 1)[1])
evs = evs["events"]
first = min(i for i, e in enumerate(evs) if e["type"] == "snapshot.created")
paused = {e["name"] for e in evs[:first] if e["type"] == "vm.state" and e.get("state") == "paused"}
missing = [g for g in sys.argv[2:] if g not in paused]
sys.exit(1 if missing else 0)
PY
cps=$(hc --json range checkpoints r1)
[ "$(jget "$cps" 'len(d)')" = 1 ] && [ "$(jget "$cps" 'd[0]["guests"]')" = 3 ] || fail "range checkpoints: $cps"
hc range checkpoints r1
for i in 1 2 3; do
    [ "$(stat -c '%U %a' "$tmp/state/snapshots/r1.cp1.$i/vm.snap")" = "root 400" ] || fail "r1.cp1.$i/vm.snap is not root's 0400"
done
expect "checkpoint taken" 409 name "$(api POST /v1/ranges/r1/checkpoints '{"name":"cp1"}')"
expect "a checkpoint's snapshot alone" 409 name "$(api DELETE /v1/snapshots/r1.cp1.1)"
[ -f "$tmp/state/snapshots/r1.cp1.1/vm.snap" ] || fail "a refused rm removed the file"

echo "== range reset r1 --to cp1 (after the guests finished)"
for g in "${G[@]}"; do
    wait_line "$(console "$g")" 'herd-probe: ready' 60 || fail "$g did not finish"
done
out=$(hc --json range reset r1 --to cp1) || fail "range reset --to cp1: $out"
echo "reset --to: $(jget "$out" '"%d guests in %d ms" % (d["reset"], d["reset_us"] // 1000)')"
for i in 1 2 3; do
    g=${G[$((i - 1))]}
    snapfile=$(jget "$(hc --json snapshot show "r1.cp1.$i")" 'd["file"]["path"]')
    [ "$(jget "$(hc --json snapshot show "r1.cp1.$i")" 'd["vm"]')" = "$g" ] || fail "r1.cp1.$i is not $g's"
    grep -q -- "--restore $snapfile --restore-mem map" <<<"$(args_of "$g")" || fail "$g: not restored from $snapfile: $(args_of "$g")"
    [ "$(vm_field "$g" 'd["nics"][0]["mac"]')" = "${mac[$g]}" ] || fail "$g's MAC changed"
    [ "$(vm_field "$g" 'd["snapshot"]')" = "r1.cp1.$i" ] || fail "$g's record does not name r1.cp1.$i"
done
# each start begins a new console.log: what is there now is the restored run's
for g in "${G[@]}"; do
    wait_line "$(console "$g")" 'herd-probe: ready' 60 >/dev/null || fail "$g: no ready line after the reset"
    new=$(cat "$(console "$g")")
    first=$(grep -aoE 'ticks: round [0-9]+' <<<"$new" | head -n1 | awk '{print $3}')
    [ -n "$first" ] && [ "$first" -gt "${before[$g]}" ] && [ "$first" -le $((after[$g] + 1)) ] || {
        fail "$g: first round after the reset is '$first'; the checkpoint was between rounds ${before[$g]} and ${after[$g]}"
        tail -n 3 "$(console "$g")" "$tmp/state/vms/$g/vmm.log"
    }
    grep -aq "ticks: round $first .* disk ok" <<<"$new" || fail "$g: the sector written before the checkpoint did not read back"
    grep -aqxF "herd-probe: 2 passed, 0 failed" <<<"$new" || { fail "$g did not pass again"; tail -n 4 <<<"$new"; }
    grep -aq "is now" <<<"$(tail -n 20 "$tmp/state/vms/$g/vmm.log")" && fail "$g: herd-vmm reported a MAC change on its own MAC"
done

echo "== a restored guest stopped and started boots its kernel"
g=${G[0]}
hc vm stop "$g" >/dev/null || fail "vm stop $g"
hc vm start "$g" >/dev/null || fail "vm start $g"
a=$(args_of "$g")
grep -q -- "--kernel" <<<"$a" && ! grep -q -- "--restore" <<<"$a" || fail "$g started after a stop: $a"
[ "$(vm_field "$g" 'd["restore_pending"]')" = False ] || fail "$g: restore_pending after its start"
expect "checkpoint rm while guests stand on it" 409 name "$(api DELETE /v1/ranges/r1/checkpoints/cp1)"

echo "== vm restore"
idle_snapshot big 96M b1 sb
expect "restore to another shape" 409 snapshot "$(api POST "/v1/vms/${G[1]}/restore" '{"snapshot":"sb"}')"
expect "restore to an unknown snapshot" 404 snapshot "$(api POST "/v1/vms/${G[1]}/restore" '{"snapshot":"nope"}')"
expect "restore with a bad field" 400 x "$(api POST "/v1/vms/${G[1]}/restore" '{"snapshot":"sb","x":1}')"
expect "restore of an unknown guest" 404 name "$(api POST /v1/vms/nope/restore '{"snapshot":"sb"}')"
hc vm restore "${G[1]}" r1.cp1.1 >/dev/null || fail "vm restore ${G[1]} r1.cp1.1 (another guest's, same shape)"
grep -q -- "--restore $tmp/state/snapshots/r1.cp1.1/vm.snap" <<<"$(args_of "${G[1]}")" || fail "${G[1]} not restored from r1.cp1.1"

echo "== plain reset: back to the template; then checkpoint-rm"
hc range reset r1 >/dev/null || fail "range reset r1"
for g in "${G[@]}"; do
    [ -z "$(vm_field "$g" 'd.get("snapshot") or ""')" ] || fail "$g still stands on a snapshot after a plain reset"
    grep -q -- "--kernel" <<<"$(args_of "$g")" || fail "$g: a plain reset did not boot the template"
done
hc range checkpoint-rm r1 cp1 >/dev/null || fail "range checkpoint-rm r1 cp1"
[ -z "$(snap_files | grep r1.cp1)" ] || fail "checkpoint-rm left: $(snap_files | grep r1.cp1)"
expect "checkpoint-rm again" 404 checkpoint "$(api DELETE /v1/ranges/r1/checkpoints/cp1)"

echo "== warm template"
idle_snapshot idle 64M w0 sw
hc template add warm --snapshot sw || fail "template add warm --snapshot sw"
[ "$(jget "$(hc --json template inspect warm)" 'd["snapshot"]')" = sw ] || fail "warm does not name sw"
expect "warm template with an image" 400 image "$(api POST /v1/templates '{"name":"w2","snapshot":"sw","image":"/x"}')"
expect "warm template of an unknown snapshot" 404 snapshot "$(api POST /v1/templates '{"name":"w2","snapshot":"nope"}')"
expect "guest of warm with cpus" 400 cpus "$(api POST /v1/vms '{"name":"x1","template":"warm","cpus":2}')"
expect "guest of warm with a seed" 400 cloud_init "$(api POST /v1/vms '{"name":"x1","template":"warm","cloud_init":{"hostname":"x"}}')"
expect "snapshot rm under a warm template" 409 name "$(api DELETE /v1/snapshots/sw)"
cat > "$tmp/r2.yaml" <<EOF
range: r2
scenarios:
  - name: s
    roles:
      - name: w
        template: warm
        count: 3
EOF
printf 'range: r3\nscenarios:\n  - name: s\n    roles:\n      - name: w\n        template: warm\n        count: 1\n        runcmd: ["true"]\n' > "$tmp/r3.yaml"
out=$(curl -s --unix-socket "$sock" -w ' %{http_code}' -X POST -H 'Content-Type: application/yaml' \
    --data-binary @"$tmp/r3.yaml" http://h/v1/ranges)
grep -q '"field": *"scenarios\[0\].roles\[0\].template"' <<<"$out" && grep -q ' 400$' <<<"$out" ||
    fail "a warm role with runcmd: $out"
t0=$EPOCHREALTIME
hc range up "$tmp/r2.yaml" >/dev/null || fail "range up r2 (warm)"
echo "r2 (3 clones of sw) up in $(python3 -c "print(round(($EPOCHREALTIME - $t0) * 1000))") ms through herdctl"
mapfile -t W < <(range_vms r2 | tr ' ' '\n' | sort)
[ "${#W[@]}" = 3 ] || fail "r2 has ${#W[@]} guests"
for g in "${W[@]}"; do
    [ "$(vm_field "$g" 'd["ready"]')" = True ] || fail "$g (a clone of a ready guest) is not ready"
    grep -q -- "--restore $tmp/state/snapshots/sw/vm.snap" <<<"$(args_of "$g")" || fail "$g is not a clone of sw"
    [ "$(vm_field "$g" 'd["template"]')" = warm ] || fail "$g's template is not warm"
done
macs=$(for g in w0 "${W[@]}"; do vm_field "$g" 'd["nics"][0]["mac"]'; done | sort -u | wc -l)
[ "$macs" = 4 ] || fail "the clones' MACs are not distinct ($macs distinct of 4)"
expect "template rm warm while guests use it" 409 name "$(api DELETE /v1/templates/warm)"

echo "== a range with a resource disk: its checkpoint keeps the image its guests had"
res=$tmp/res
mkdir -p "$res" && echo one > "$res/a.txt" && chmod 644 "$res/a.txt"
printf 'range: r4\nresources: %s\nscenarios:\n  - name: s\n    roles:\n      - {name: g, template: idle, count: 2}\n' \
    "$res" > "$tmp/r4.yaml"
hc range up "$tmp/r4.yaml" >/dev/null || fail "range up r4 (resources)"
iso=$tmp/state/ranges/r4/resources.iso
hc range checkpoint r4 c4 >/dev/null || fail "range checkpoint r4 c4 (a resource disk)"
for i in 1 2; do
    [ "$(stat -c %i "$tmp/state/snapshots/r4.c4.$i/resources.iso" 2>/dev/null)" = "$(stat -c %i "$iso")" ] ||
        fail "r4.c4.$i does not keep the range's resource disk"
done
old_inode=$(stat -c %i "$iso")
echo two > "$res/a.txt"
hc range up "$tmp/r4.yaml" >/dev/null || fail "range up r4 again"
[ "$(stat -c %i "$iso")" != "$old_inode" ] || fail "range up did not build the resource disk again (the test means nothing)"
hc range reset r4 --to c4 >/dev/null || fail "range reset r4 --to c4"
mapfile -t R4 < <(range_vms r4 | tr ' ' '\n' | sort)
for i in 1 2; do
    g=${R4[$((i - 1))]}
    grep -q -- "--disk path=$tmp/state/snapshots/r4.c4.$i/resources.iso" <<<"$(args_of "$g")" ||
        fail "$g does not attach its checkpoint's resource disk: $(args_of "$g")"
    wait_ready "$g" 20 || fail "$g (restored with its resource disk) is not ready"
done
expect "restore of a guest with a resource disk to a snapshot without" 409 snapshot \
    "$(api POST "/v1/vms/${R4[0]}/restore" '{"snapshot":"sw"}')"
hc range down r4 >/dev/null || fail "range down r4"
[ -z "$(snap_files | grep r4.c4)" ] || fail "range down left r4's checkpoint"

echo "== range down removes checkpoints; nothing left"
hc range checkpoint r2 cp2 >/dev/null || fail "range checkpoint r2 cp2 (clones)"
[ "$(snap_files | grep -c '/r2.cp2.[0-9]*$')" = 3 ] || fail "r2's checkpoint: $(snap_files)"
marks() { python3 -c 'import sqlite3, sys; print(" ".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT key FROM meta WHERE key LIKE ?", ("checkpoint:%",))))' "$tmp/state/herdd.db"; }
[ -z "$(marks)" ] || fail "a finished checkpoint left its mark: $(marks)"
events=$(api GET '/v1/events?type=range.checkpoint.')
grep -q range.checkpoint.created <<<"$events" && grep -q range.checkpoint.removed <<<"$events" ||
    fail "checkpoint events missing: $events"

echo "== a checkpoint cut by a herdd crash is incomplete: not a reset target"
stop_herdd KILL
# herdd died after two of the three snapshots were recorded: the third has
# no record and its directory is swept at the next start
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM snapshots WHERE name = ?", ("r2.cp2.3",)); c.commit()' \
    "$tmp/state/herdd.db" || fail "editing the database"
start_herdd
[ -d "$tmp/state/snapshots/r2.cp2.3" ] && fail "the cut snapshot's directory was not swept"
cps=$(hc --json range checkpoints r2)
[ "$(jget "$cps" '(d[0]["guests"], d[0]["complete"])')" = "(2, False)" ] || fail "the cut checkpoint: $cps"
expect "reset to an incomplete checkpoint" 409 to "$(api POST /v1/ranges/r2/reset '{"to":"cp2"}')"

echo "== herdd killed while taking a checkpoint: the next start undoes it"
hc range checkpoint r2 cp3 >/dev/null || fail "range checkpoint r2 cp3"
# The state such a death leaves: the checkpoint's mark, two snapshots of
# three recorded, and the guests it had paused still paused. ${W[2]} was
# paused by its user, not by the checkpoint: it must stay paused.
for v in "${W[@]}"; do hc vm pause "$v" >/dev/null || fail "vm pause $v"; done
stop_herdd KILL
python3 - "$tmp/state/herdd.db" "${W[0]}" "${W[1]}" <<'PY' || fail "editing the database"
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("DELETE FROM snapshots WHERE name = 'r2.cp3.3'")
c.execute("INSERT INTO meta VALUES ('checkpoint:r2', ?)",
          (json.dumps({"range": "r2", "checkpoint": "cp3", "paused": sys.argv[2:4]}),))
c.execute("INSERT INTO meta VALUES ('checkpoint:junk', '{\"range\": 7}')")
c.commit()
PY
start_herdd
for v in "${W[0]}" "${W[1]}"; do
    [ "$(vm_field "$v" 'd["state"]')" = running ] || fail "$v was not resumed"
done
[ "$(vm_field "${W[2]}" 'd["state"]')" = paused ] ||
    fail "${W[2]}, paused by its user, was resumed"
[ -z "$(snap_files | grep r2.cp3)" ] || fail "the cut checkpoint's snapshots stayed: $(snap_files | grep r2.cp3)"
jget "$(hc --json range checkpoints r2)" '[c["name"] for c in d]' | grep -q cp3 && fail "cp3 still listed"
[ -z "$(marks)" ] || fail "marks left after the recovery: $(marks)"
ev=$(api GET '/v1/events?type=range.checkpoint.aborted')
jget "${ev#* }" '[(e["checkpoint"], len(e["removed"]), sorted(e["resumed"])) for e in d["events"]]' |
    grep -q "('cp3', 2, \['${W[0]}', '${W[1]}'\])" || fail "no range.checkpoint.aborted event as expected: $ev"
hc vm resume "${W[2]}" >/dev/null || fail "vm resume ${W[2]}"
hc range down r2 >/dev/null || fail "range down r2"
[ -z "$(snap_files | grep r2.cp2)" ] || fail "range down left r2's checkpoint: $(snap_files | grep r2.cp2)"
hc range down r1 >/dev/null || fail "range down r1"
for v in w0 b1; do hc vm rm --force "$v" >/dev/null || fail "vm rm $v"; done
hc template rm warm >/dev/null || fail "template rm warm"
for s in sw sb; do hc snapshot rm "$s" >/dev/null || fail "snapshot rm $s"; done
[ -z "$(snap_files)" ] || fail "snapshot files left: $(snap_files)"
for t in ticks big idle; do hc template rm "$t" >/dev/null || fail "template rm $t"; done
check_nothing_left
hc --json audit ls 300 | grep -q 'POST /v1/ranges/r1/checkpoints' || fail "the checkpoint is not in the audit log"
finish
