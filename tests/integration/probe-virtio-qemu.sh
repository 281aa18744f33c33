#!/bin/bash
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
#   6. pci/blk through the legacy ports under -M pc.
#   7. net (root only): two probes on taps on one bridge exchange 10000
#      frames each way, none lost; a tx/rx pair; a third probe on another
#      bridge hears nothing. Everything in a network namespace of its own.
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

tmp=$(mktemp -d /tmp/probe-virtio.XXXXXX)
ns=hpv-$$
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
out=
status=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
expect_status() { [ "$status" -eq "$1" ] || fail "exit status $status, expected $1 ($2)"; }
expect_line() { grep -qxF -- "$1" <<<"$out" || fail "missing line: $1"; }
expect_match() { grep -qxE -- "$1" <<<"$out" || fail "no line matching: $1"; }

# qemu_probe MACHINE CMDLINE QEMU-ARGS...: boots the probe, sets $out, $status.
qemu_probe() {
    local machine=$1 cmdline=$2
    shift 2
    out=$(timeout 120 "$qemu" -M "$machine" -enable-kvm -nodefaults -no-user-config -nographic \
        -serial stdio -no-reboot -m 64M -smp 1 -kernel "$probe" -append "$cmdline" \
        -device isa-debug-exit,iobase=0x501 "$@" </dev/null 2>&1)
    status=$?
    printf '%s\n' "--- qemu -M $machine -append \"$cmdline\" (exit $status)" "$out"
}

disk() { # disk ID FILE FORMAT [EXTRA]: -drive/-device pair (modern-only virtio-blk-pci)
    printf '%s\n' -drive "if=none,id=$1,file=$2,format=$3${4:+,$4}" \
        -device "virtio-blk-pci,drive=$1,disable-legacy=on,serial=$1"
}

M="microvm,pcie=on"
size=16M

# 1. raw
"$mkpattern" fill "$tmp/raw.img" $size 0 || exit 1
mapfile -t d < <(disk rawdisk "$tmp/raw.img" raw)
cmd="probe.tests=pci,blk probe.blk.seed=3 probe.blk.size=$size probe.blk.serial=rawdisk"
qemu_probe "$M" "$cmd" "${d[@]}"
expect_status 1 "raw blk passed"
expect_match "herd-probe: pci: config access via ecam at 0xe0000000 .*"
expect_match "herd-probe: blk: ecam 00:0[0-9a-f].0 1af4:1042, features .*event-idx, indirect"
expect_line 'herd-probe: blk: id "rawdisk"'
expect_match "herd-probe: blk: wrote the whole disk in 256 requests of 64 KiB, depth 32, .*"
expect_match "herd-probe: blk: read back and verified 16384 KiB in 256 requests, .*"
expect_line "herd-probe: blk: write-zeroes on sectors 5120-7167"
expect_line "herd-probe: blk: discard on sectors 8192-10239, rewritten"
expect_line "herd-probe: blk: whole disk verified again (zeros where written zero)"
expect_line "herd-probe: blk ok"
"$mkpattern" expect "$tmp/raw.expect" $size 3 0 1
cmp -s "$tmp/raw.img" "$tmp/raw.expect" || fail "raw image differs from the expected image"

# 2. qcow2 overlay over a parent with pattern 5
"$mkpattern" fill "$tmp/parent.raw" $size 5
qemu-img convert -f raw -O qcow2 "$tmp/parent.raw" "$tmp/parent.qcow2" || fail "qemu-img convert"
qemu-img create -q -f qcow2 -b "$tmp/parent.qcow2" -F qcow2 "$tmp/overlay.qcow2" || fail "qemu-img create"
cp "$tmp/overlay.qcow2" "$tmp/overlay-wrong.qcow2"
mapfile -t d < <(disk ovl "$tmp/overlay.qcow2" qcow2)
qemu_probe "$M" "probe.tests=blk probe.blk.seed=4 probe.blk.parent=5" "${d[@]}"
expect_status 1 "overlay blk passed"
expect_match "herd-probe: blk: wrote the even MiB in 128 requests of 64 KiB, .*"
expect_match "herd-probe: blk: read back and verified 16384 KiB in 256 requests, .* \(odd MiB: parent pattern\)"
expect_line "herd-probe: blk ok"
qemu-img check -q "$tmp/overlay.qcow2" || fail "qemu-img check on the overlay is not clean"
"$mkpattern" expect "$tmp/ovl.expect" $size 4 5 1
qemu-img compare -q -f qcow2 -F raw "$tmp/overlay.qcow2" "$tmp/ovl.expect" ||
    fail "qemu-img compare: overlay differs from the expected image"
echo "overlay: qemu-img check clean, qemu-img compare identical"

# 3. the wrong parent pattern must be noticed
mapfile -t d < <(disk ovl "$tmp/overlay-wrong.qcow2" qcow2)
qemu_probe "$M" "probe.tests=blk probe.blk.seed=4 probe.blk.parent=6" "${d[@]}"
expect_status 3 "wrong parent pattern detected"
expect_match "herd-probe: blk FAIL sector 2048 byte 0 reads 0x[0-9a-f]{2}, expected 0x[0-9a-f]{2} \(parent pattern; sector holds something else\).*"

# 4. read-only
mapfile -t d < <(disk rodisk "$tmp/parent.raw" raw readonly=on)
qemu_probe "$M" "probe.tests=blk probe.blk.ro=1 probe.blk.parent=5" "${d[@]}"
expect_status 1 "read-only blk passed"
expect_match "herd-probe: blk: capacity 32768 sectors .*, ro, .*"
expect_match "herd-probe: blk: read 16 MiB in [0-9]+ ms, parent pattern verified"
expect_line "herd-probe: blk: write on the read-only disk: status 1"
"$mkpattern" fill "$tmp/parent.check" $size 5
cmp -s "$tmp/parent.raw" "$tmp/parent.check" || fail "read-only disk was modified"

# 5. hostile: victim 0, good 1
"$mkpattern" fill "$tmp/victim.img" 4M 0
"$mkpattern" fill "$tmp/good.img" 4M 0
mapfile -t d < <(disk victim "$tmp/victim.img" raw; disk good "$tmp/good.img" raw)
qemu_probe "$M" "probe.tests=hostile" "${d[@]}"
expect_status 1 "hostile passed"
for c in loop self-loop huge-len zero-len next-oob head-oob avail-jump indirect-oob indirect-len; do
    expect_match "herd-probe: hostile: $c: NEEDS_RESET \(status 0x4f\)"
done
for c in oob-data oob-wdata oob-header straddle indirect-nest; do
    expect_match "herd-probe: hostile: $c: completed: .*"
done
expect_line "herd-probe: hostile: victim works after reset (1 MiB written and verified)"
expect_line "herd-probe: hostile: second device works (1 MiB written and verified)"
expect_line "herd-probe: hostile ok"

# 6. legacy config ports (-M pc: SeaBIOS assigns the BARs; ~4 s)
"$mkpattern" fill "$tmp/pc.img" 4M 0
mapfile -t d < <(disk pcdisk "$tmp/pc.img" raw)
qemu_probe pc "probe.tests=pci,blk probe.pci=ports" "${d[@]}"
expect_status 1 "blk through the legacy config ports passed"
expect_line "herd-probe: pci: config access via ports 0xcf8/0xcfc"
expect_match "herd-probe: blk: ports 00:[0-9a-f]{2}.0 1af4:1042, .*"
expect_line "herd-probe: blk ok"

# 7. net
net_probe() { # net_probe NAME TAP MAC CMDLINE: in the background, log in $tmp/NAME.log
    ip netns exec "$ns" timeout 120 "$qemu" -M "$M" -enable-kvm -nodefaults -no-user-config -nographic \
        -serial stdio -no-reboot -m 64M -smp 1 -kernel "$probe" -append "probe.tests=net $4" \
        -device isa-debug-exit,iobase=0x501 \
        -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" \
        -device "virtio-net-pci,netdev=n0,mac=$3,disable-legacy=on" </dev/null >"$tmp/$1.log" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}
net_wait() { # net_wait NAME: sets $out and $status from that probe
    local p
    eval "p=\$pid_$1"
    wait "$p"
    status=$?
    out=$(cat "$tmp/$1.log")
    printf '%s\n' "--- net probe $1 (exit $status)" "$out"
}
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || [ ! -c /dev/net/tun ] || ! ip netns add "$ns" 2>/dev/null; then
    echo "note: net part skipped (needs root, iproute2, /dev/net/tun, network namespaces)"
else
    ip -n "$ns" link set lo up
    for br in br0 br1; do
        ip -n "$ns" link add "$br" type bridge && ip -n "$ns" link set "$br" up || fail "bridge $br"
    done
    for t in tapa:br0 tapb:br0 tapc:br1 tapd:br0 tape:br0; do
        ip -n "$ns" tuntap add "${t%:*}" mode tap &&
            ip -n "$ns" link set "${t%:*}" master "${t#*:}" &&
            ip -n "$ns" link set "${t%:*}" up || fail "tap $t"
    done
    net_probe a tapa 52:54:00:48:50:0a "probe.net.role=both probe.net.count=10000 probe.net.peer=52:54:00:48:50:0b"
    net_probe b tapb 52:54:00:48:50:0b "probe.net.role=both probe.net.count=10000 probe.net.mac=52:54:00:48:50:0b"
    net_probe c tapc 52:54:00:48:50:0c "probe.net.role=listen probe.net.wait=4"
    for p in a b; do
        net_wait $p
        expect_status 1 "net probe $p passed"
        expect_line "herd-probe: net: sent 10000 received 10000 lost 0"
        expect_line "herd-probe: net ok"
    done
    net_wait c
    expect_status 1 "net probe c on the other bridge heard nothing"
    expect_match "herd-probe: net: sent 0 received 0 lost 0 \(listened 4 s, [0-9]+ other frames\)"
    net_probe d tapd 52:54:00:48:50:0d "probe.net.role=tx probe.net.count=3000"
    net_probe e tape 52:54:00:48:50:0e "probe.net.role=rx"
    net_wait d
    expect_status 1 "net tx passed"
    expect_line "herd-probe: net: sent 3000 received 0 lost 0"
    net_wait e
    expect_status 1 "net rx passed"
    expect_line "herd-probe: net: sent 0 received 3000 lost 0"
fi

if [ "$failures" -ne 0 ]; then
    echo "probe-virtio-qemu: $failures check(s) failed"
    exit 1
fi
echo "probe-virtio-qemu: all checks passed"
