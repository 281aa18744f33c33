#!/bin/bash
# herd-vmm's virtio devices driven by herd-probe's own drivers (the same
# probe passes against QEMU's devices in probe-virtio-qemu.sh):
#  1. virtio-blk on a raw file: whole disk written and verified, serial,
#     write-zeroes and discard; the file equals what the probe had to write.
#  2. virtio-blk on a qcow2 overlay over a read-only parent holding a known
#     pattern: the parent shows through unwritten areas; afterwards
#     `qemu-img check` is clean, `qemu-img compare` against the expected
#     image says identical, and the parent's sha256 is unchanged.
#  3. readonly=on: the device offers RO and refuses writes with IOERR.
#  4. Two guests on taps on one bridge exchange 10000 frames each way with
#     none lost; a third guest on another bridge receives none of them.
#  5. probe "hostile": malformed chains on one disk; herd-vmm survives, logs
#     the bad chain, and the other disk still works.
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf
mkpattern=$build/firmware/mkpattern

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
for tool in qemu-img ip; do
    command -v $tool >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done
tmp=$(mktemp -d)
ns=hvv$$
cleanup() {
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run NAME ARGS...: boots the probe, output in $tmp/NAME.log, status in $status.
run() {
    local name=$1
    shift
    timeout 120 "$vmm" --kernel "$probe" --mem 128M "$@" </dev/null > "$tmp/$name.log" 2>&1
    status=$?
    echo "--- $name (exit $status)"
    cat "$tmp/$name.log"
}
expect_pass() { # NAME VERDICT
    [ "$status" -eq 1 ] || fail "$1: exit status $status, expected 1 (all passed)"
    grep -qxF "herd-probe: $2" "$tmp/$1.log" || fail "$1: no '$2'"
}

# 1. raw disk
truncate -s 16M "$tmp/raw.img"
run raw --disk "path=$tmp/raw.img,format=raw,serial=herd-raw-0" \
    --cmdline "probe.tests=blk probe.blk.seed=7 probe.blk.size=16M probe.blk.serial=herd-raw-0"
expect_pass raw "1 passed, 0 failed"
"$mkpattern" expect "$tmp/raw.expect" 16M 7 0 1
cmp -s "$tmp/raw.img" "$tmp/raw.expect" || fail "raw: disk content differs from what the probe wrote"

# 2. qcow2 overlay over a patterned read-only parent
"$mkpattern" fill "$tmp/parent.raw" 32M 3
chmod 0444 "$tmp/parent.raw"
sum_before=$(sha256sum < "$tmp/parent.raw")
qemu-img create -q -f qcow2 -b "$tmp/parent.raw" -F raw "$tmp/overlay.qcow2" 32M
run overlay --disk "path=$tmp/overlay.qcow2,format=qcow2" \
    --cmdline "probe.tests=blk probe.blk.seed=9 probe.blk.parent=3 probe.blk.size=32M"
expect_pass overlay "1 passed, 0 failed"
qemu-img check -q "$tmp/overlay.qcow2" || fail "overlay: qemu-img check is not clean (exit $?)"
"$mkpattern" expect "$tmp/overlay.expect" 32M 9 3 1
qemu-img compare -q -f qcow2 -F raw "$tmp/overlay.qcow2" "$tmp/overlay.expect" ||
    fail "overlay: qemu-img compare says the overlay is not what the probe should have produced"
[ "$(sha256sum < "$tmp/parent.raw")" = "$sum_before" ] || fail "overlay: the parent changed"

# 3. read-only disk
run ro --disk "path=$tmp/parent.raw,format=raw,readonly=on" \
    --cmdline "probe.tests=blk probe.blk.ro=1 probe.blk.parent=3 probe.blk.size=32M"
expect_pass ro "1 passed, 0 failed"
[ "$(sha256sum < "$tmp/parent.raw")" = "$sum_before" ] || fail "ro: the read-only disk changed"

# 4. network: two guests on br0, a listener on br1
ip netns add "$ns"
for br in br0 br1; do
    ip -n "$ns" link add "$br" type bridge
    ip -n "$ns" link set "$br" up
done
for t in tapa:br0 tapb:br0 tapc:br1; do
    ip -n "$ns" tuntap add dev "${t%%:*}" mode tap vnet_hdr
    ip -n "$ns" link set "${t%%:*}" master "${t##*:}" up
done
nsrun() { ip netns exec "$ns" "$@"; }
count=10000
for g in a:0a b:0b; do
    name=${g%%:*} mac=0e:00:00:00:00:${g##*:}
    nsrun timeout 120 "$vmm" --kernel "$probe" --mem 64M --net "tap=tap$name,mac=$mac" \
        --cmdline "probe.tests=net probe.net.count=$count probe.net.mac=$mac" \
        </dev/null > "$tmp/net-$name.log" 2>&1 &
    eval "pid_$name=\$!"
done
nsrun timeout 120 "$vmm" --kernel "$probe" --mem 64M --net "tap=tapc,mac=0e:00:00:00:00:0c" \
    --cmdline "probe.tests=net probe.net.role=listen probe.net.wait=3" \
    </dev/null > "$tmp/net-c.log" 2>&1 &
pid_c=$!
for name in a b c; do
    eval "wait \$pid_$name"
    st=$?
    echo "--- net-$name (exit $st)"
    cat "$tmp/net-$name.log"
    [ "$st" -eq 1 ] || fail "net-$name: exit status $st, expected 1"
done
for name in a b; do
    grep -qxF "herd-probe: net: sent $count received $count lost 0" "$tmp/net-$name.log" ||
        fail "net-$name: frames lost or missing"
done
grep -qxF "herd-probe: net ok" "$tmp/net-c.log" || fail "net-c: the listener on br1 saw range traffic"

# 5. hostile chains on disk 0; disk 1 must still work
truncate -s 8M "$tmp/h0.img" "$tmp/h1.img"
run hostile --disk "path=$tmp/h0.img,format=raw" --disk "path=$tmp/h1.img,format=raw" \
    --cmdline "probe.tests=hostile"
expect_pass hostile "1 passed, 0 failed"
grep -q "virtio-blk (pci 01.0) queue 0: .*device needs reset" "$tmp/hostile.log" ||
    fail "hostile: herd-vmm did not log the bad chain"

[ "$failures" -eq 0 ] || { echo "vmm-virtio: $failures check(s) failed"; exit 1; }
echo "vmm-virtio: all checks passed"
