#!/bin/bash
# herd-test-needs: kvm
# herd-probe's virtio drivers on herd-vmm's virtio-pci devices: the same
# runs and expected lines as probe-virtio-qemu.sh (probe-virtio-lib.sh has
# them), with herd-vmm's stricter hostile answers: every malformed chain,
# including DMA onto the device's own registers (level 2), must end in
# NEEDS_RESET with a log line, and the VM goes on.
#   blk on raw, blk on a qcow2 overlay over a pattern parent (then
#   qemu-img check clean and qemu-img compare identical to the expected
#   image), wrong parent detected, read-only disk, hostile, PCI through the
#   legacy ports (bzImage boot path), MSI-X (interrupt-driven completions
#   through the KVM MSI routes and irqfds, masks, pending bits), and with
#   root: two guests on taps on
#   one bridge exchange 10000 frames each way, none lost, a third on
#   another bridge hears nothing, a tx/rx pair.
#
# Exit 0 pass, 77 skip (no /dev/kvm, no qemu-img, or a herd-vmm without
# --disk), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
probe=$build/firmware/herd-probe.elf
mkpattern=$build/firmware/mkpattern
vmm=${HERD_VMM:-$build/bin/herd-vmm}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if ! command -v qemu-img >/dev/null 2>&1; then
    echo "skip: qemu-img is not installed"
    exit 77
fi
if [ ! -x "$vmm" ] || [ ! -f "$probe" ] || [ ! -x "$mkpattern" ]; then
    echo "FAIL: $vmm, $probe or $mkpattern not built (run make first)"
    exit 1
fi
if ! "$vmm" --help 2>&1 | grep -q -- '--disk'; then
    echo "skip: this herd-vmm has no --disk"
    exit 77
fi

vmm_run() { # vmm_run KERNEL CMDLINE DISK...
    local kernel=$1 cmdline=$2 spec id file fmt ro args=()
    shift 2
    for spec in "$@"; do
        IFS=: read -r id file fmt ro <<<"$spec"
        args+=(--disk "path=$file,format=$fmt,serial=$id${ro:+,readonly=on}")
    done
    out=$(timeout 120 "$vmm" --kernel "$kernel" --mem 64M --cmdline "$cmdline" "${args[@]}" </dev/null 2>&1)
    status=$?
    printf '%s\n' "--- herd-vmm --cmdline \"$cmdline\" (exit $status)" "$out"
}
vm_boot() { vmm_run "$probe" "$@"; }
vm_boot_ports() { vmm_run "$build/firmware/herd-probe.bzImage" "$@"; }
vm_net_cmd() {
    printf '%s\n' "$vmm" --kernel "$probe" --mem 64M --cmdline "$4" --net "tap=$2,mac=$3${5:+,queues=$5}"
}
hostile_keys="probe.hostile.strict=1 probe.hostile.level=2"
hostile_reset="oob-data oob-wdata oob-header straddle loop self-loop huge-len zero-len next-oob head-oob
    avail-jump indirect-oob indirect-len indirect-nest mmio-data"
hostile_completed=
hostile_extra() {
    local n
    n=$(grep -c 'device needs reset' <<<"$out")
    # one line per case, but a guest's protocol violations are rate-limited
    # per call site (include/herd/log.h: a burst of 10, then one per 10 s)
    [ "$n" -ge 10 ] && [ "$n" -le 15 ] ||
        fail "herd-vmm logged $n bad chains, expected 10 (the rate limit's burst) to 15 (one per case)"
    expect_line "herd-probe: hostile: 15 cases, 15 answered acceptably"
}

. "$(dirname "$0")/probe-virtio-lib.sh"
