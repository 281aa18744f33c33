#!/bin/bash
# herd-test-needs: kvm
# herd-vmm built with ASan+UBSan (build/san) through the same paths as the
# plain build: the probe's full test list on 1 and 2 vCPUs, both boot
# formats, every error and exit path of vmm-cli.sh, and the virtio devices
# (probe-virtio-vmm.sh: disks, NICs, hostile chains), the control socket
# (vmm-control.sh: pause/resume, bad requests, stop), snapshots
# (snapshot-probe.sh: save, restore, clones, hostile files). Any sanitizer report
# (memory error, leak, undefined behaviour) aborts herd-vmm and fails this.
#
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
san=${HERD_SAN_BUILD:-$root/build/san}
vmm=$san/bin/herd-vmm

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if [ ! -x "$vmm" ]; then
    echo "FAIL: $vmm not built (make SAN=1)"
    exit 1
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for kernel in herd-probe.elf herd-probe.bzImage; do
    for cpus in 1 2; do
        out=$(timeout 120 "$vmm" --kernel "$build/firmware/$kernel" --cpus $cpus \
            --cmdline "probe.tests=boot,serial,cpuid,timer probe.mem=64M probe.cpus=$cpus" \
            </dev/null 2>&1)
        status=$?
        printf '%s\n' "--- $kernel cpus=$cpus (exit $status)" "$out"
        [ "$status" -eq 1 ] || fail "$kernel cpus=$cpus: exit status $status, expected 1"
        grep -qxF "herd-probe: 4 passed, 0 failed" <<<"$out" || fail "$kernel cpus=$cpus: probe verdict"
        grep -qE "Sanitizer|runtime error" <<<"$out" && fail "$kernel cpus=$cpus: sanitizer report"
    done
done

for script in vmm-cli.sh probe-virtio-vmm.sh vmm-console-input.sh vmm-control.sh snapshot-probe.sh; do
    log=$(mktemp)
    if ! HERD_VMM=$vmm "$root/tests/integration/$script" > "$log" 2>&1; then
        tail -n 40 "$log"
        fail "$script under sanitizers"
    fi
    if grep -qE "Sanitizer|runtime error" "$log"; then
        grep -E -A20 "Sanitizer|runtime error" "$log" | head -40
        fail "sanitizer report during $script"
    fi
    rm -f "$log"
done

[ "$failures" -eq 0 ] || { echo "vmm-sanitizers: $failures check(s) failed"; exit 1; }
echo "vmm-sanitizers: all checks passed"
