# Shared by tests/integration/probe-virtio-qemu.sh and probe-virtio-vmm.sh
# (sourced, not a test itself): the same probe runs and the same expected
# lines on QEMU's virtio-pci devices and on herd-vmm's. The sourcing script
# sets $probe, $mkpattern and $vmm (qemu or herd-vmm) and defines
#   vm_boot CMDLINE DISK... : boots the probe in the foreground, sets $out
#                             and $status; DISK is ID:FILE:FORMAT[:ro]
#   vm_boot_ports CMDLINE DISK... : the same, PCI through the legacy ports
#   vm_net_cmd NAME TAP MAC CMDLINE [QUEUES] : prints the command (one word
#                             a line) that boots a probe with a NIC on TAP
#                             (QUEUES pairs on a multi_queue tap)
# and $hostile_keys (extra probe.hostile.* keys), $hostile_reset and
# $hostile_completed (cases expected to end in NEEDS_RESET / a completion),
# optionally a function hostile_extra (more checks on that run's $out).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
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

size=16M

# 1. raw
"$mkpattern" fill "$tmp/raw.img" $size 0 || exit 1
vm_boot "probe.tests=pci,blk probe.blk.seed=3 probe.blk.size=$size probe.blk.serial=rawdisk" \
    "rawdisk:$tmp/raw.img:raw"
expect_status 1 "raw blk passed"
expect_match "herd-probe: pci: config access via ecam at 0xe0000000 \(from (MCFG|DSDT _CBA)\)"
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
vm_boot "probe.tests=blk probe.blk.seed=4 probe.blk.parent=5" "ovl:$tmp/overlay.qcow2:qcow2"
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
vm_boot "probe.tests=blk probe.blk.seed=4 probe.blk.parent=6" "ovl:$tmp/overlay-wrong.qcow2:qcow2"
expect_status 3 "wrong parent pattern detected"
expect_match "herd-probe: blk FAIL sector 2048 byte 0 reads 0x[0-9a-f]{2}, expected 0x[0-9a-f]{2} \(parent pattern; sector holds something else\).*"

# 4. read-only
vm_boot "probe.tests=blk probe.blk.ro=1 probe.blk.parent=5" "rodisk:$tmp/parent.raw:raw:ro"
expect_status 1 "read-only blk passed"
expect_match "herd-probe: blk: capacity 32768 sectors .*, ro, .*"
expect_match "herd-probe: blk: read 16 MiB in [0-9]+ ms, parent pattern verified"
expect_line "herd-probe: blk: write on the read-only disk: status 1"
"$mkpattern" fill "$tmp/parent.check" $size 5
cmp -s "$tmp/parent.raw" "$tmp/parent.check" || fail "read-only disk was modified"

# 5. hostile: victim 0, good 1
"$mkpattern" fill "$tmp/victim.img" 4M 0
"$mkpattern" fill "$tmp/good.img" 4M 0
vm_boot "probe.tests=hostile $hostile_keys" "victim:$tmp/victim.img:raw" "good:$tmp/good.img:raw"
expect_status 1 "hostile passed"
for c in $hostile_reset; do
    expect_match "herd-probe: hostile: $c: NEEDS_RESET \(status 0x4f\)"
done
for c in $hostile_completed; do
    expect_match "herd-probe: hostile: $c: completed: .*"
done
expect_line "herd-probe: hostile: victim works after reset (1 MiB written and verified)"
expect_line "herd-probe: hostile: second device works (1 MiB written and verified)"
expect_line "herd-probe: hostile ok"
if declare -F hostile_extra >/dev/null; then hostile_extra; fi

# 6. legacy config ports (MSI-X control through them too)
"$mkpattern" fill "$tmp/pc.img" 4M 0
vm_boot_ports "probe.tests=pci,blk,msix probe.pci=ports" "pcdisk:$tmp/pc.img:raw"
expect_status 1 "blk and msix through the legacy config ports passed"
expect_line "herd-probe: pci: config access via ports 0xcf8/0xcfc"
expect_match "herd-probe: blk: ports 00:[0-9a-f]{2}.0 1af4:1042, .*"
expect_line "herd-probe: blk ok"
expect_line "herd-probe: msix ok"

# 6b. MSI-X: completions by interrupt (KVM MSI route + irqfd on herd-vmm),
# suppression, vector and function mask with pending bits; with and
# without VIRTIO_F_EVENT_IDX
"$mkpattern" fill "$tmp/msix.img" 4M 0
for ei in 1 0; do
    vm_boot "probe.tests=msix probe.msix.eventidx=$ei" "msixdisk:$tmp/msix.img:raw"
    expect_status 1 "msix (eventidx=$ei) passed"
    expect_match "herd-probe: msix: 00:0[0-9a-f].0 capability at 0x[0-9a-f]+, control 0x0001, 2 vectors, .*"
    expect_line "herd-probe: msix: config_msix_vector 0 reads 0, queue 0 msix_vector 1 reads 1"
    expect_match "herd-probe: msix: 16 single requests, each completed by an interrupt on vector 0x41 \(16 interrupts, .*"
    expect_match "herd-probe: msix: batch write of 2048 KiB: 32 requests of 64 KiB, depth 32, [1-9][0-9]* interrupts, .*"
    expect_match "herd-probe: msix: batch read\+verify of 2048 KiB: 32 requests of 64 KiB, depth 32, [1-9][0-9]* interrupts, .*"
    expect_match "herd-probe: msix: interrupts off \(.*\): request completed, 0 interrupts in 20 ms"
    expect_match "herd-probe: msix: vector mask: request completed while masked, 0 interrupts in 20 ms, PBA bit 1; unmasked \(data changed to 0x42 first\): 1 interrupt\(s\) on 0x42 after [0-9]+ us, PBA bit 0"
    expect_match "herd-probe: msix: function mask: request completed while masked, 0 interrupts in 20 ms, PBA bit 1; unmasked: 1 interrupt\(s\) on 0x41 after [0-9]+ us, PBA bit 0"
    expect_line "herd-probe: msix ok"
done

# 7. net
net_probe() { # net_probe NAME TAP MAC CMDLINE [QUEUES]: in the background, log in $tmp/NAME.log
    local cmd
    mapfile -t cmd < <(vm_net_cmd "$1" "$2" "$3" "probe.tests=net $4" "${5:-}")
    ip netns exec "$ns" timeout 120 "${cmd[@]}" </dev/null >"$tmp/$1.log" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}
net_wait() { # net_wait NAME: sets $out and $status from that probe
    local p
    eval "p=\$pid_$1"
    wait_bounded "$p" 180
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
    # Two queue pairs each (multi_queue taps): frames go out on both TX
    # queues in turn and come in on both RX queues; hostile control
    # commands first.
    ip -n "$ns" link add br2 type bridge && ip -n "$ns" link set br2 up || fail "bridge br2"
    for t in tapf tapg; do
        ip -n "$ns" tuntap add "$t" mode tap multi_queue &&
            ip -n "$ns" link set "$t" master br2 && ip -n "$ns" link set "$t" up || fail "tap $t"
    done
    net_probe f tapf 52:54:00:48:50:0f "probe.net.role=both probe.net.count=10000 probe.net.queues=2" 2
    net_probe g tapg 52:54:00:48:50:10 "probe.net.role=both probe.net.count=10000 probe.net.queues=2" 2
    for p in f g; do
        net_wait $p
        expect_status 1 "net probe $p with 2 queue pairs passed"
        expect_match "herd-probe: net: 2 queue pairs in use; [0-9]+ hostile control commands refused"
        expect_line "herd-probe: net: sent 10000 received 10000 lost 0"
    done
fi

if [ "$failures" -ne 0 ]; then
    echo "$(basename "$0" .sh): $failures check(s) failed"
    exit 1
fi
echo "$(basename "$0" .sh): all checks passed"
