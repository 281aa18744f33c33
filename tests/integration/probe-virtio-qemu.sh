#!/bin/bash
# herd-test-needs: kvm
# herd-probe's virtio drivers against QEMU's own virtio-pci devices (the
# probe's checks must pass on a VMM that is not ours before they mean
# anything on herd-vmm). QEMU microvm with pcie=on (ECAM, found through the
# DSDT's _CBA: QEMU 7.2 microvm has no MCFG) and once -M pc (legacy config
# ports 0xcf8/0xcfc, BARs placed by SeaBIOS):
#   1. blk on a raw file: whole disk written/verified, get-id, write-zeroes,
#      discard; the file equals the image mkpattern says the run leaves.
#   2. blk on a qcow2 overlay over a parent holding pattern 5: the parent
#      shows through the odd MiB; qemu-img check clean, qemu-img compare
#      identical to the expected image.
#   3. the same overlay told the wrong parent pattern: blk must FAIL.
#   4. blk read-only (readonly=on): VIRTIO_BLK_F_RO, writes get IOERR.
#   5. hostile: malformed chains on one disk, the other disk still works.
#   6. pci/blk/msix through the legacy ports under -M pc.
#   6b. msix: virtio-blk completions by MSI-X interrupt, suppression, vector
#      and function mask with PBA pending bits (with and without EVENT_IDX).
#   7. net (root only): two probes on taps on one bridge exchange 10000
#      frames each way, none lost; a tx/rx pair; a third probe on another
#      bridge hears nothing. Everything in a network namespace of its own.
#
# The runs and expected lines are shared with probe-virtio-vmm.sh
# (probe-virtio-lib.sh). QEMU differences: its hostile reactions (see
# docs/herd-probe.md: out-of-RAM addresses are completed as unassigned
# memory, a nested indirect flag is ignored; DMA onto its own registers,
# level 2, deadlocks QEMU 7.2, so it is not run here).
#
# Exit 0 pass, 77 skip (no /dev/kvm or no QEMU tools), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
probe=$build/firmware/herd-probe.elf
mkpattern=$build/firmware/mkpattern
qemu=${QEMU:-qemu-system-x86_64}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
for tool in "$qemu" qemu-img; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool is not installed"
        exit 77
    fi
done
if [ ! -f "$probe" ] || [ ! -x "$mkpattern" ]; then
    echo "FAIL: $probe or $mkpattern not built (run make first)"
    exit 1
fi


qemu_run() { # qemu_run MACHINE CMDLINE DISK...
    local machine=$1 cmdline=$2 spec id file fmt ro args=()
    shift 2
    for spec in "$@"; do
        IFS=: read -r id file fmt ro <<<"$spec"
        args+=(-drive "if=none,id=$id,file=$file,format=$fmt${ro:+,readonly=on}"
            -device "virtio-blk-pci,drive=$id,disable-legacy=on,serial=$id")
    done
    out=$(timeout 120 "$qemu" -M "$machine" -enable-kvm -nodefaults -no-user-config -nographic \
        -serial stdio -no-reboot -m 64M -smp 1 -kernel "$probe" -append "$cmdline" \
        -device isa-debug-exit,iobase=0x501 "${args[@]}" </dev/null 2>&1)
    status=$?
    printf '%s\n' "--- qemu -M $machine -append \"$cmdline\" (exit $status)" "$out"
}
vm_boot() { qemu_run microvm,pcie=on "$@"; }
# -M pc: SeaBIOS places the BARs; ~4 s in the BIOS.
vm_boot_ports() { qemu_run pc "$@"; }
vm_net_cmd() {
    printf '%s\n' "$qemu" -M microvm,pcie=on -enable-kvm -nodefaults -no-user-config -nographic \
        -serial stdio -no-reboot -m 64M -smp 1 -kernel "$probe" -append "$4" \
        -device isa-debug-exit,iobase=0x501 \
        -netdev "tap,id=n0,ifname=$2,script=no,downscript=no${5:+,queues=$5}" \
        -device "virtio-net-pci,netdev=n0,mac=$3,disable-legacy=on${5:+,mq=on,vectors=$((2 * $5 + 2))}"
}
hostile_keys=
hostile_reset="loop self-loop huge-len zero-len next-oob head-oob avail-jump indirect-oob indirect-len"
hostile_completed="oob-data oob-wdata oob-header straddle indirect-nest"

. "$(dirname "$0")/probe-virtio-lib.sh"
