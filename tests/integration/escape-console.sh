#!/bin/bash
# herd-test-needs: kvm
# A guest cannot fill the host's state filesystem through its console or
# herd-vmm's log (issue 11 item 5). herd-probe's flood test writes its
# console as fast as it can for ESCAPE_CONSOLE_SECS seconds (default 60, the
# issue's minute) and tries to move a PCI BAR before every line (a
# guest-triggerable warning in herd-vmm), against a herdd with the smallest
# console_log_max (64K) so the cap is reached quickly even in the nested
# host. While it floods and after:
#  - console.log never passes the cap, console.log.1 is exactly the cap
#    (rotated at least once), the guest's directory stays under
#    overlay + 2 x cap + 64 KiB;
#  - vmm.log holds at most 10 + SECS/10 + 1 BAR-move warnings, one saying how
#    many more were suppressed;
#  - herd-vmm stays alive, the guest reaches its ready line (printed after
#    the flood), `herdctl vm console` and GET .../console still work (an
#    offset older than console.log.1 jumps to its first byte; the console
#    offsets go on across the rotation), and the guest stops cleanly.
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"
secs=${ESCAPE_CONSOLE_SECS:-60}
cap=65536

write_config "console_log_max: 64K"
start_herdd
make_parent
hc template add flood --image "$parent" --format raw --kernel "$probe" \
    --cmdline "probe.tests=flood probe.flood.secs=$secs probe.flood.bar=1 probe.idle=1" \
    --mem 64M > /dev/null || fail "template add"
hc vm create f1 --template flood --start > /dev/null || fail "vm create"
dir=$tmp/state/vms/f1
pid=$(vm_field f1 'd["pid"]')
size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Sample the guest's files until the ready line (printed after the flood).
max_log=0 max_dir=0 bound_fail=
deadline=$((EPOCHSECONDS + secs + 240))
while :; do
    l=$(size "$dir/console.log")
    [ "$l" -gt "$max_log" ] && max_log=$l
    # apparent bytes of everything but the overlay, and the overlay apart
    d=0
    for f in "$dir"/*; do
        case $f in */disk.qcow2) ;; *) d=$((d + $(size "$f"))) ;; esac
    done
    [ "$d" -gt "$max_dir" ] && max_dir=$d
    [ "$(vm_field f1 'd["ready"]' 2>/dev/null)" = True ] && break
    alive "$pid" || { fail "herd-vmm died during the flood"; break; }
    [ "$EPOCHSECONDS" -lt "$deadline" ] || { fail "not ready $((secs + 240)) s after the start"; break; }
    sleep 1
done
ls -l "$dir"
base=$(cat "$dir/console.base" 2>/dev/null || echo 0)
total=$((base + $(size "$dir/console.log")))
echo "console: $total bytes written in ${secs} s; console.log at most $max_log bytes" \
     "(cap $cap); the guest's files but the overlay at most $max_dir bytes"
[ "$max_log" -le "$cap" ] || fail "console.log reached $max_log bytes (cap $cap)"
[ "$(size "$dir/console.log.1")" -eq "$cap" ] ||
    fail "console.log.1 is $(size "$dir/console.log.1") bytes, not the cap $cap (no rotation?)"
[ "$total" -gt $((2 * cap)) ] || fail "the flood wrote only $total bytes"
[ "$max_dir" -le $((2 * cap + 65536 + 4096)) ] ||
    fail "the guest's directory (overlay aside) reached $max_dir bytes"
[ "$(size "$dir/disk.qcow2")" -le $((16 << 20)) ] || fail "the overlay grew: $(size "$dir/disk.qcow2")"

echo "== vmm.log"
moves=$(grep -c 'guest tried to move BAR' "$dir/vmm.log")
echo "vmm.log: $(size "$dir/vmm.log") bytes, $moves BAR-move warnings"
[ "$moves" -ge 1 ] || fail "no BAR-move warning at all (did the probe move a BAR?)"
[ "$moves" -le $((10 + secs / 10 + 1)) ] || fail "$moves BAR-move warnings in vmm.log"
if [ "$secs" -ge 10 ]; then
    grep -q 'more like this suppressed' "$dir/vmm.log" || fail "no 'suppressed' note in vmm.log"
fi
[ "$(size "$dir/vmm.log")" -le 65536 ] || fail "vmm.log is $(size "$dir/vmm.log") bytes"

echo "== the console still works"
alive "$pid" || fail "herd-vmm is gone"
out=$(api GET "/v1/vms/f1/console?offset=0")
first=$(jget "${out#* }" 'd["offset"]')
[ "$first" -eq $((base - cap)) ] || fail "offset 0 did not jump to console.log.1's first byte: $first"
out=$(api GET "/v1/vms/f1/console?offset=$((base - 10))")
[ "$(jget "${out#* }" 'd["next"]')" -eq "$base" ] || fail "reading across the rotation: $out"
timeout 10 "$herdctl_bin" --socket "$sock" vm console f1 < /dev/null > "$tmp/follow.out" 2>&1
grep -q "herd-probe: ready" "$tmp/follow.out" || fail "herdctl vm console: $(tail -c 300 "$tmp/follow.out")"
grep -q "herd-probe: flood ok" "$tmp/follow.out" ||
    fail "the flood test did not pass: $(grep -a 'herd-probe: flood' "$tmp/follow.out" | grep -v 'flood [0-9]' | head -3)"
hc vm stop f1 > /dev/null || fail "vm stop"
[ "$(vm_field f1 'd["state"]')" = stopped ] || fail "not stopped: $(vm_field f1 'd["state"]')"
hc vm rm f1 > /dev/null || fail "vm rm"
[ ! -e "$dir" ] || fail "$dir left after rm"
finish
