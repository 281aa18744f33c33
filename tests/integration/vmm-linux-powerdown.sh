#!/bin/bash
# herd-test-needs: kvm-linux
# A clean shutdown requested from the host: the Debian 12 guest image
# (tools/build-guest-image: systemd, udev, logind) boots under herd-vmm on a
# qcow2 overlay of its raw parent until its ready line; then the control
# socket's {"cmd":"powerdown"} presses the ACPI power button (the Generic
# Event Device on port 0x604 / GSI 23 notifies \_SB.PWRB). The guest must
# decide to shut down by itself: systemd-logind takes the power key,
# systemd stops the system ("Powering off" / "reboot: Power down" on the
# console) and the kernel powers off through ACPI S5, so herd-vmm exits 0
# with "guest powered off (ACPI S5)" in its log, removes its control
# socket, and the overlay passes `qemu-img check`. Prints the seconds from
# the powerdown request to herd-vmm's exit.
#
# The image dir is $HERD_GUEST_IMAGE (default build/guest). In the nested
# host (QEMU TCG) a boot to ready takes minutes: waits are generous and
# bounded ($HERD_LINUX_TIMEOUT for the boot, 300 s for the shutdown).
#
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
client=$build/tests/bin/control-client
boot_limit=${HERD_LINUX_TIMEOUT:-600}
down_limit=300

skip() { echo "skip: $*"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is missing or not accessible"
grep -qE '\b(vmx|svm)\b' /proc/cpuinfo ||
    skip "host CPU has no vmx/svm (KVM here cannot boot a stock kernel to userspace)"
require_guest_image
for f in "$vmm" "$client" "$build/bin/herd-img"; do [ -x "$f" ] || skip "$f is not built"; done
command -v qemu-img >/dev/null || skip "qemu-img is not installed"

tmp=$(mktemp -d /tmp/vmm-linux-powerdown.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
con=$tmp/console
log=$tmp/vmm.log
sock=$tmp/ctl.sock

dump() {
    echo "-- console (last 60 lines):"
    tail -n 60 "$con" 2>/dev/null | tr -d '\r' | sed 's/^/  | /'
    echo "-- herd-vmm log:"
    sed 's/^/  vmm| /' "$log" 2>/dev/null
}

# finish: the verdict (also on the early exits below).
finish() {
    if [ "$failures" -gt 0 ]; then
        dump
        echo "vmm-linux-powerdown: $failures failures"
        exit 1
    fi
    echo "vmm-linux-powerdown: all checks passed"
    exit 0
}

"$build/bin/herd-img" create -q -f qcow2 -b "$img/root.img" -F raw "$tmp/ov.qcow2" ||
    { fail "herd-img create the overlay"; finish; }
"$vmm" --kernel "$img/vmlinuz" --initrd "$img/initrd.img" --mem 512M --cpus 2 \
    --disk "path=$tmp/ov.qcow2,format=qcow2" --cmdline "$(cat "$img/cmdline")" \
    --serial "file:$con" --control "$sock" </dev/null > "$log" 2>&1 &
pid=$!
start=$(date +%s)

# --- boot to the ready line ---------------------------------------------------
if ! wait_line "$con" 'herd-guest: ready ' "$boot_limit" "$pid"; then
    fail "no ready line within ${boot_limit}s (herd-vmm $(kill -0 $pid 2>/dev/null && echo running || echo ended))"
    finish
fi
echo "boot: $(grep -a 'herd-guest: ready ' "$con" | tail -n 1 | tr -d '\r') after $(( $(date +%s) - start ))s"
# The button the guest will be pressing: the ACPI button driver bound to the
# DSDT's PNP0C0C (informational: the kernel may log it below the console level).
btn=$(grep -a 'Power Button \[' "$con" | tr -d '\r' | head -n 2)
echo "button: ${btn:-(no 'Power Button [...]' line on the console)}"
grep -qa 'Power Button \[PWRF\]' "$con" &&
    fail "the kernel made a fixed-feature power button (FADT PWR_BUTTON flag ignored?)"

# --- the press ----------------------------------------------------------------
t0=$(date +%s.%N)
out=$(printf '%s\n' '{"cmd":"powerdown","id":1}' | "$client" "$sock" -t 5 2>&1)
[ "$out" = '{"ok":true,"id":1}' ] || fail "powerdown: reply '$out', expected {\"ok\":true,\"id\":1}"
wait_bounded "$pid" "$down_limit"
rc=$?
t1=$(date +%s.%N)
pid=
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "powerdown: herd-vmm exit $rc, ${secs}s after the request ($(tail -n 1 "$log"))"

# --- how it ended ---------------------------------------------------------------
[ "$rc" -eq 0 ] || fail "herd-vmm exit $rc after powerdown, expected 0 (guest powered off)"
grep -q 'guest powered off (ACPI S5)' "$log" ||
    fail "herd-vmm's log has no 'guest powered off (ACPI S5)': the guest did not shut down through S5"
grep -q 'stopped by' "$log" && fail "herd-vmm was stopped, not powered off by the guest"
shutdown_lines=$(tr -d '\r' < "$con" | grep -aE 'reboot: Power down|Powering off|System is powering down' | head -n 3)
if [ -n "$shutdown_lines" ]; then
    echo "console: $(paste -sd'|' <<<"$shutdown_lines")"
else
    fail "the console shows no systemd shutdown ('Powering off' / 'reboot: Power down')"
fi
tr -d '\r' < "$con" | grep -aqE 'Stopped target|Stopping ' ||
    fail "the console shows no units being stopped: not an orderly systemd shutdown"
[ -e "$sock" ] && fail "control socket left behind"
out=$(qemu-img check -f qcow2 "$tmp/ov.qcow2" 2>&1) || fail "qemu-img check ov.qcow2: $out"
echo "qemu-img check: $(head -n 1 <<<"$out")"
finish
