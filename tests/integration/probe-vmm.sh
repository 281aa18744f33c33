#!/bin/bash
# herd-test-needs: kvm
# herd-probe on herd-vmm: both boot paths (PVH ELF and Linux bzImage, 64-bit
# entry), one and two vCPUs, RAM above the 3 GiB hole, the boot marker, and
# the failure paths (wrong expectations -> exit status 3, guest exception ->
# exit status 5). The same probe passes under QEMU (probe-qemu.sh), so a
# failure here points at herd-vmm.
#
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=$build/bin/herd-vmm
fw=$build/firmware

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
for f in "$vmm" "$fw/herd-probe.elf" "$fw/herd-probe.bzImage"; do
    if [ ! -f "$f" ]; then
        echo "FAIL: $f not built (run make first)"
        exit 1
    fi
done

failures=0
out=

# run_vmm KERNEL MEM CPUS CMDLINE: sets $out and $status.
run_vmm() {
    local kernel=$1 mem=$2 cpus=$3 cmdline=$4
    out=$(timeout 120 "$vmm" --kernel "$kernel" --mem "$mem" --cpus "$cpus" \
        --cmdline "$cmdline" </dev/null 2>&1)
    status=$?
    printf '%s\n' "--- herd-vmm --kernel $(basename "$kernel") --mem $mem --cpus $cpus --cmdline \"$cmdline\" (exit $status)" "$out"
}

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

expect_status() {
    [ "$status" -eq "$1" ] || fail "exit status $status, expected $1 ($2)"
}

expect_line() {
    grep -qxF -- "$1" <<<"$out" || fail "missing line: $1"
}

expect_match() {
    grep -qxE -- "$1" <<<"$out" || fail "no line matching: $1"
}

for kind in elf:pvh bzImage:linux; do
    file=${kind%%:*} via=${kind##*:}
    cmd="probe.tests=boot,serial,cpuid,timer probe.mem=64M probe.cpus=1"
    run_vmm "$fw/herd-probe.$file" 64M 1 "$cmd"
    expect_status 1 "all passed, $via"
    expect_line "herd-probe: boot via $via"
    expect_line "herd-probe: cmdline: $cmd"
    expect_line "herd-probe: cpus: 1 (mptable)"
    for t in boot serial cpuid timer; do expect_line "herd-probe: $t ok"; done
    expect_line "herd-probe: 4 passed, 0 failed"
    expect_match "herd-vmm: boot marker after [0-9]+ us.*"
done

# Two vCPUs; RAM split around the 3 GiB hole (no test touches it all).
run_vmm "$fw/herd-probe.bzImage" 2G 2 "probe.tests=boot probe.mem=2G probe.cpus=2"
expect_status 1 "all passed, 2 vCPUs"
expect_line "herd-probe: cpus: 2 (mptable)"
expect_line "herd-probe: 1 passed, 0 failed"
# The same CPUs must be described by the ACPI MADT (what Linux uses).
run_vmm "$fw/herd-probe.elf" 64M 2 "probe.tests=boot probe.mem=64M probe.cpus=2 probe.cpusrc=madt"
expect_status 1 "all passed, 2 vCPUs, MADT"
expect_line "herd-probe: cpus: 2 (madt)"
expect_line "herd-probe: 1 passed, 0 failed"
run_vmm "$fw/herd-probe.elf" 5G 1 "probe.tests=boot probe.mem=5G"
expect_status 1 "all passed, 5G"
expect_line "herd-probe: 1 passed, 0 failed"

# Wrong expectations fail; an exception is a crash.
run_vmm "$fw/herd-probe.elf" 64M 1 "probe.tests=boot probe.cpus=3"
expect_status 3 "a test failed"
expect_match "herd-probe: boot FAIL .*probe.cpus=3.*"
run_vmm "$fw/herd-probe.bzImage" 64M 1 "probe.tests=crash"
expect_status 5 "probe crash"
expect_match "herd-probe: CRASH vector 0xe .*cr2 0x100000000"

if [ "$failures" -ne 0 ]; then
    echo "probe-vmm: $failures check(s) failed"
    exit 1
fi
echo "probe-vmm: all checks passed"
