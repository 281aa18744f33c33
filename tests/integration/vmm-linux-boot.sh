#!/bin/bash
# herd-test-needs: kvm-linux
# Real Linux (the Debian cloud kernel, fetched by tools/fetch-test-kernel)
# booted by herd-vmm.
#
# Everywhere: the ELF vmlinux through PVH, checked on the serial console for
# "Linux version", our exact "Command line:", our e820 map, our ACPI tables
# (RSDP at 0xe0000, MADT with the IOAPIC and N CPUs). On these PVM hosts the
# kernel runs under KVM's instruction emulator (tens of seconds) and later
# stops on an instruction the emulator lacks, so the test ends the guest once
# it has seen what it checks.
#
# The full boot to a shell is vmm-linux-shell.sh (needs vmx/svm).
#
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=$build/bin/herd-vmm
linux=$root/build/linux
limit=${HERD_LINUX_TIMEOUT:-240}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if [ ! -s "$linux/vmlinux" ]; then
    "$root/tools/fetch-test-kernel" || true
fi
if [ ! -s "$linux/vmlinux" ]; then
    echo "skip: no test kernel in $linux (tools/fetch-test-kernel could not fetch linux-image-cloud-amd64)"
    exit 77
fi
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# wait_for FILE REGEX SECONDS: 0 once a line matches, 1 on timeout or exit.
wait_for() {
    local file=$1 re=$2 secs=$3 i
    for ((i = 0; i < secs * 2; i++)); do
        grep -qE -- "$re" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { grep -qE -- "$re" "$file" 2>/dev/null; return; }
        sleep 0.5
    done
    return 1
}

cpus=2
cmdline="console=ttyS0 earlyprintk=ttyS0 herd.test=$$ panic=-1"
console=$tmp/pvh-console.log
start=$(date +%s)
"$vmm" --kernel "$linux/vmlinux" --mem 256M --cpus $cpus --cmdline "$cmdline" \
    --serial "file:$console" </dev/null > "$tmp/pvh-vmm.log" 2>&1 &
pid=$!
if ! wait_for "$console" "smpboot: Allowing [0-9]+ CPUs" "$limit"; then
    fail "no 'smpboot: Allowing N CPUs' within ${limit}s"
fi
echo "PVH boot: reached the SMP line after $(( $(date +%s) - start ))s"
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=

check() { # REGEX WHAT
    grep -qE -- "$1" "$console" || fail "$2: console lacks /$1/"
}
check "Linux version [0-9]+\.[0-9]+" "kernel banner"
grep -qF "Command line: $cmdline" "$console" || fail "command line not passed exactly"
# Our memory map for 256M (Linux's PVH code adds 0xa0000-0xfffff reserved).
check "BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable" "e820 low RAM"
check "BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved" "e820 EBDA/BIOS"
check "BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable" "e820 RAM to 256M"
check "BIOS-e820: \[mem 0x00000000e0000000-0x00000000e00fffff\] reserved" "e820 PCI ECAM"
[ "$(grep -c 'BIOS-e820:' "$console")" -eq 4 ] || fail "e820: expected exactly 4 entries"
check "ACPI: MCFG 0x[0-9A-F]+ [0-9A-F]+ \(v01 HERD" "ACPI MCFG"
check "ACPI: RSDP 0x00000000000E0000 000024 \(v02 HERD" "ACPI RSDP from start_info"
check "ACPI: APIC 0x[0-9A-F]+ [0-9A-F]+ \(v05 HERD" "ACPI MADT"
check "IOAPIC\[0\]: apic_id $cpus, version 17, address 0xfec00000, GSI 0-23" "IOAPIC from MADT"
check "smpboot: Allowing $cpus CPUs" "CPU count from MADT"
check "Hypervisor detected: KVM" "KVM CPUID leaves"
if grep -q "herd-vmm: error" "$tmp/pvh-vmm.log" && ! grep -q "emulation failure" "$tmp/pvh-vmm.log"; then
    fail "herd-vmm reported an error: $(grep 'herd-vmm: error' "$tmp/pvh-vmm.log" | head -n1)"
fi
echo "--- console (first 40 lines)"; head -n 40 "$console"

if [ "$failures" -ne 0 ]; then exit 1; fi
echo "vmm-linux-boot: all checks passed"
