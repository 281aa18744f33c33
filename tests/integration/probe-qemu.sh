#!/bin/bash
# herd-test-needs: kvm
# herd-probe under QEMU (microvm, KVM, PVH boot): the test guest itself is
# checked against a VMM that is not ours. Passes when the probe reports all
# tests passed with -smp 1 and -smp 2 (MP table and ACPI MADT CPU counts),
# and fails the way it should when the expectations are wrong (probe.cpus=3
# on one CPU -> "boot FAIL", exit status 3) or when it crashes on purpose
# (the "crash" test -> CRASH line, exit status 5).
#
# Exit 0 pass, 77 skip (no /dev/kvm or no qemu-system-x86_64), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
probe=${HERD_BUILD:-$root/build}/firmware/herd-probe.elf
qemu=${QEMU:-qemu-system-x86_64}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "skip: $qemu is not installed"
    exit 77
fi
if [ ! -f "$probe" ]; then
    echo "FAIL: $probe not built (run make first)"
    exit 1
fi

failures=0
out=

# run_probe SMP CMDLINE: boots the probe, sets $out and $status.
run_probe() {
    local smp=$1 cmdline=$2
    out=$(timeout 120 "$qemu" -M microvm -enable-kvm -nodefaults -no-user-config \
        -nographic -serial stdio -no-reboot -m 64M -smp "$smp" \
        -kernel "$probe" -append "$cmdline" \
        -device isa-debug-exit,iobase=0x501 </dev/null 2>&1)
    status=$?
    printf '%s\n' "--- qemu -smp $smp -append \"$cmdline\" (exit $status)" "$out"
}

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

expect_status() {
    [ "$status" -eq "$1" ] || fail "exit status $status, expected $1 ($2)"
}

expect_line() {   # exact line
    grep -qxF -- "$1" <<<"$out" || fail "missing line: $1"
}

expect_match() {  # extended regex, whole line
    grep -qxE -- "$1" <<<"$out" || fail "no line matching: $1"
}

# 1. One CPU, every test, MP table count.
cmd="probe.tests=boot,serial,cpuid,timer probe.mem=64M probe.cpus=1"
run_probe 1 "$cmd"
expect_status 1 "all passed"
expect_line "herd-probe: boot via pvh"
expect_line "herd-probe: cmdline: $cmd"
expect_match "herd-probe: memmap: [0-9]+ entries, RAM [0-9]+ KiB"
expect_line "herd-probe: cpus: 1 (mptable)"
for t in boot serial cpuid timer; do expect_line "herd-probe: $t ok"; done
expect_match "herd-probe: cpuid: vendor .*, hypervisor KVMKVMKVM"
expect_match "herd-probe: timer: [0-9]+ interrupts in [0-9]+ TSC cycles"
expect_line "herd-probe: 4 passed, 0 failed"

# 2. Two CPUs, counted from the MP table and from the ACPI MADT.
for src in mptable madt; do
    cmd="probe.tests=boot,timer probe.mem=64M probe.cpus=2 probe.cpusrc=$src console=ttyS0"
    run_probe 2 "$cmd"
    expect_status 1 "all passed, -smp 2, $src"
    expect_line "herd-probe: cpus: 2 ($src)"
    expect_line "herd-probe: boot ok"
    expect_line "herd-probe: 2 passed, 0 failed"
done

# 3. Wrong expectations must fail: 3 CPUs expected on 1, a wrong RAM size,
#    an unknown test name.
run_probe 1 "probe.tests=boot,nosuchtest probe.cpus=3 probe.mem=128M"
expect_status 3 "a test failed"
expect_match "herd-probe: boot FAIL .*1 enabled CPUs in the mptable, probe.cpus=3.*"
expect_match "herd-probe: boot FAIL .*expected 0x8000000 for probe.mem.*"
expect_line "herd-probe: nosuchtest FAIL unknown test"
expect_line "herd-probe: 0 passed, 2 failed"

# 4. A guest exception is reported and exits as a crash.
run_probe 1 "probe.tests=crash"
expect_status 5 "probe crash"
expect_match "herd-probe: CRASH vector 0xe error 0x4 rip 0x[0-9a-f]+ cs 0x23 .*cr2 0x100000000"

if [ "$failures" -ne 0 ]; then
    echo "probe-qemu: $failures check(s) failed"
    exit 1
fi
echo "probe-qemu: all checks passed"
