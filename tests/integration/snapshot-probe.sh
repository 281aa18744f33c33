#!/bin/bash
# herd-test-needs: kvm
# Snapshot and restore with the probe (docs/snapshot.md). A 2-vCPU probe counting
# LAPIC timer ticks and writing its disk round by round (probe.tests=ticks
# probe.ticks.disk=1) is paused and snapshotted through the control socket
# (the file passed as SCM_RIGHTS); its qcow2 overlay, copied while it is
# still paused, is the snapshot's disk (the snapshot flushed it); it then
# runs on and is stopped. Restored, it goes on from
# the next round: no tick doubled, the timer running, the sector it wrote
# just before the snapshot read back intact, and it passes. Two guests
# restored at once from the one snapshot, each on its own qcow2 overlay of
# the snapshot's disk, both pass, the parent untouched; --restore-mem copy
# too. A NIC set up before the snapshot exchanges frames with a new peer
# once restored, under a MAC of its own (told by a configuration change).
# Snapshot refusals: a running guest, no file, a non-empty file, a
# character device; the guest runs on after each. Hostile snapshots, each
# refused with its reason before the guest runs: truncated, bad magic,
# version 2, a flipped state byte, vCPUs, RAM, disks that do not match, and
# (checksums recomputed, so only the content is wrong) a CPUID leaf, a
# virtqueue of size 3, a ring outside guest RAM, an MSR KVM refuses, a
# section that runs past the state.
#
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf
client=$build/tests/bin/control-client

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
for f in "$vmm" "$client"; do
    [ -x "$f" ] || { echo "FAIL: $f not built (make)"; exit 1; }
done
command -v python3 >/dev/null || { echo "FAIL: python3 missing (tools/install-deps)"; exit 1; }

tmp=$(mktemp -d /tmp/herd-snap.XXXXXX)
ns=hsnap$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

ROUNDS=30
ask() { printf '%s\n' "$2" | "$client" "$1" -t 5 "${@:3}"; }

# --- 1. a guest at work, paused and snapshotted ---------------------------------------
truncate -s 16M "$tmp/base.raw"
qemu-img create -q -f qcow2 -b "$tmp/base.raw" -F raw "$tmp/orig.qcow2" 16M
"$vmm" --kernel "$probe" --mem 64M --cpus 2 --disk "path=$tmp/orig.qcow2,format=qcow2" \
    --cmdline "probe.tests=boot,ticks probe.cpus=2 probe.mem=64M probe.ticks.disk=1 probe.ticks.rounds=$ROUNDS" \
    --serial "file:$tmp/orig.log" --control "$tmp/vm.sock" </dev/null >"$tmp/orig.vmm" 2>&1 &
orig=$!
pids+=("$orig")
wait_for_line 0 "$tmp/orig.log" 'ticks: round 3 ' 60 "$orig" || { fail "the probe never reached round 3"; cat "$tmp/orig.vmm" "$tmp/orig.log"; exit 1; }

out=$(ask "$tmp/vm.sock" '{"cmd":"snapshot"}' -F "$tmp/early.snap")
grep -q '"ok":false' <<<"$out" && grep -q 'pause it first' <<<"$out" ||
    fail "snapshot of a running guest: '$out'"
out=$(ask "$tmp/vm.sock" '{"cmd":"pause"}')
[ "$out" = '{"ok":true}' ] || fail "pause: '$out'"
out=$(ask "$tmp/vm.sock" '{"cmd":"snapshot"}')
grep -q 'send the target file' <<<"$out" || fail "snapshot without a file: '$out'"
echo "not empty" > "$tmp/full.snap"
out=$(ask "$tmp/vm.sock" '{"cmd":"snapshot"}' -F "$tmp/full.snap")
grep -q 'not empty' <<<"$out" || fail "snapshot into a non-empty file: '$out'"
out=$(ask "$tmp/vm.sock" '{"cmd":"snapshot"}' -F /dev/null)
grep -q 'regular file' <<<"$out" || fail "snapshot into /dev/null: '$out'"
out=$(ask "$tmp/vm.sock" '{"cmd":"snapshot","id":7}' -F "$tmp/g.snap")
[ "$out" = '{"ok":true,"id":7}' ] || fail "snapshot: '$out'"
last=$(grep -oE 'ticks: round [0-9]+' "$tmp/orig.log" | tail -n1 | awk '{print $3}')
# The overlay copied while the guest is still paused is the snapshot's disk:
# the snapshot flushed it (qcow2 metadata is cached write-back). Then the
# guest runs on and writes more; the copy must not care.
cp --sparse=always "$tmp/orig.qcow2" "$tmp/parent.qcow2"
out=$(ask "$tmp/vm.sock" '{"cmd":"resume"}')
[ "$out" = '{"ok":true}' ] || fail "resume after the snapshot: '$out'"
wait_for_line 0 "$tmp/orig.log" "ticks: round $((last + 3)) " 30 "$orig" ||
    fail "the original did not go on after the snapshot"
out=$(ask "$tmp/vm.sock" '{"cmd":"stop"}')
wait_bounded "$orig" 30 >/dev/null
echo "snapshot at round $last: $(stat -c %s "$tmp/g.snap") bytes, $(du -k "$tmp/g.snap" | cut -f1) KiB on disk"
[ -n "$last" ] && [ "$last" -lt "$((ROUNDS - 1))" ] || { fail "the guest finished before the snapshot (round '$last')"; exit 1; }

# restore NAME DISK-SPEC [ARGS]: runs a restored guest in the background ($!).
restore() {
    "$vmm" --restore "$tmp/g.snap" --mem 64M --cpus 2 --disk "$2" --serial "file:$tmp/$1.log" "${@:3}" \
        </dev/null >"$tmp/$1.vmm" 2>&1 &
    pids+=("$!")
}

# check_restored NAME PID: went on from round last+1 and passed.
check_restored() {
    local status first
    wait_bounded "$2" 120 >/dev/null
    status=$?
    first=$(grep -oE 'ticks: round [0-9]+' "$tmp/$1.log" | head -n1 | awk '{print $3}')
    [ "$first" = "$((last + 1))" ] || fail "$1: first round after the restore is '$first', expected $((last + 1))"
    grep -q "ticks: round $((last + 1)) .* disk ok" "$tmp/$1.log" ||
        fail "$1: the sector written before the snapshot did not read back"
    grep -q "ticks: round $((ROUNDS - 1)) " "$tmp/$1.log" || fail "$1: did not reach the last round"
    grep -qxF "herd-probe: 2 passed, 0 failed" "$tmp/$1.log" || fail "$1: the probe did not pass"
    [ "$status" = 1 ] || fail "$1: exit status $status, expected 1 (the probe's pass)"
    if [ "$failures" -gt 0 ]; then cat "$tmp/$1.vmm"; tail -n 5 "$tmp/$1.log"; fi
}

# --- 2. one restore goes on where it stopped ---------------------------------------
cp --sparse=always "$tmp/parent.qcow2" "$tmp/one.qcow2"
restore one "path=$tmp/one.qcow2,format=qcow2"
check_restored one "$!"
grep -q "restored from .*RAM mapped copy-on-write" "$tmp/one.vmm" || fail "one: no 'restored' line"

# --- 3. two clones of one snapshot at once, each on its own overlay -----------------
sum=$(sha256sum < "$tmp/parent.qcow2")
chmod a-w "$tmp/parent.qcow2"
for c in c1 c2; do
    qemu-img create -q -f qcow2 -b "$tmp/parent.qcow2" -F qcow2 "$tmp/$c.qcow2" 16M
done
restore c1 "path=$tmp/c1.qcow2,format=qcow2"
p1=$!
restore c2 "path=$tmp/c2.qcow2,format=qcow2" --restore-mem copy
p2=$!
check_restored c1 "$p1"
check_restored c2 "$p2"
grep -q "RAM copied" "$tmp/c2.vmm" || fail "c2: --restore-mem copy not reported"
[ "$(sha256sum < "$tmp/parent.qcow2")" = "$sum" ] || fail "the clones' parent image changed"
qemu-img check -q "$tmp/parent.qcow2" || fail "qemu-img check of the snapshot-time overlay copy"
for c in c1 c2; do
    qemu-img check -q "$tmp/$c.qcow2" || fail "$c: qemu-img check of its overlay"
done

# --- 4. a NIC in use comes back: the restored guest talks to a new peer --------------
# The probe sets its NIC up (features, queues, RX buffers posted) and waits
# (probe.net.delay) or says HELLO to nobody: either way the snapshot holds a
# NIC in use. Restored on the same tap, it finds a peer started meanwhile.
ip netns add "$ns" || { fail "ip netns add"; exit 1; }
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" link set br0 up
for t in ta tb; do
    ip -n "$ns" tuntap add dev "$t" mode tap vnet_hdr
    ip -n "$ns" link set "$t" master br0 up
done
net_cmd="probe.tests=net probe.net.count=2000"
ip netns exec "$ns" "$vmm" --kernel "$probe" --mem 64M --net "tap=ta,mac=0e:00:00:00:05:0a,vhost=off" \
    --cmdline "$net_cmd probe.net.delay=2000" --serial "file:$tmp/na.log" --control "$tmp/na.sock" \
    </dev/null >"$tmp/na.vmm" 2>&1 &
na=$!
pids+=("$na")
if wait_for_line 0 "$tmp/na.log" 'net: device ready' 60 "$na"; then
    ask "$tmp/na.sock" '{"cmd":"pause"}' >/dev/null
    out=$(ask "$tmp/na.sock" '{"cmd":"snapshot"}' -F "$tmp/n.snap")
    [ "$out" = '{"ok":true}' ] || fail "snapshot of the NIC guest: '$out'"
    ask "$tmp/na.sock" '{"cmd":"stop"}' >/dev/null
    wait_bounded "$na" 30 >/dev/null
    ip netns exec "$ns" "$vmm" --kernel "$probe" --mem 64M --net "tap=tb,mac=0e:00:00:00:05:0b" \
        --cmdline "$net_cmd" --serial "file:$tmp/nb.log" </dev/null >"$tmp/nb.vmm" 2>&1 &
    nb=$!
    pids+=("$nb")
    ip netns exec "$ns" "$vmm" --restore "$tmp/n.snap" --mem 64M \
        --net "tap=ta,mac=0e:00:00:00:05:0c,vhost=off" --serial "file:$tmp/nr.log" \
        </dev/null >"$tmp/nr.vmm" 2>&1 &
    nr=$!
    pids+=("$nr")
    wait_bounded "$nr" 120 >/dev/null
    st_r=$?
    wait_bounded "$nb" 120 >/dev/null
    st_b=$?
    for g in nr:$st_r nb:$st_b; do
        if [ "${g#*:}" != 1 ] || ! grep -qxF "herd-probe: 1 passed, 0 failed" "$tmp/${g%%:*}.log"; then
            fail "${g%%:*}: exit ${g#*:}, the net exchange after the restore failed"
            tail -n 5 "$tmp/${g%%:*}.vmm" "$tmp/${g%%:*}.log"
        fi
    done
    grep -q "net: sent 2000 received 2000 lost 0" "$tmp/nr.log" ||
        fail "restored NIC: $(grep 'net: sent' "$tmp/nr.log")"
    grep -q "net: device ready" "$tmp/nr.log" &&
        fail "the restored guest set its NIC up again (it should have kept it)"
    # the clone's own MAC: told by a config change, used by the guest, seen
    # by the peer
    grep -q "the snapshot's MAC 0e:00:00:00:05:0a is now 0e:00:00:00:05:0c" "$tmp/nr.vmm" ||
        fail "herd-vmm did not report the clone's new MAC"
    grep -q "net: the device's MAC changed to 0e:00:00:00:05:0c" "$tmp/nr.log" ||
        fail "the restored guest did not learn its new MAC"
    grep -q "net: peer 0e:00:00:00:05:0c" "$tmp/nb.log" ||
        fail "the peer did not hear the clone's new MAC: $(grep 'net: peer' "$tmp/nb.log")"
else
    fail "the NIC guest never set its device up"
    cat "$tmp/na.vmm" "$tmp/na.log"
fi

# --- 5. hostile snapshots: refused with the reason, the guest never runs -------------
# patch SRC DST PYTHON: a copy of the snapshot changed by PYTHON (bytes `b`,
# helpers below), header and state checksums recomputed (unless `raw`).
patch() {
    python3 - "$1" "$2" "$3" <<'EOF'
import struct, sys, zlib
src, dst, code = sys.argv[1:4]
b = bytearray(open(src, 'rb').read())
state_off, state_len = struct.unpack_from('<QQ', b, 16)
nsec = struct.unpack_from('<I', b, 36)[0]
def sections():
    off = state_off
    for _ in range(nsec):
        t, i, l = struct.unpack_from('<IIQ', b, off)
        yield t, i, l, off
        off += 16 + ((l + 7) & ~7)
def section(t, i=0):
    for st, si, l, off in sections():
        if st == t and si == i:
            return off + 16, l
    raise SystemExit('no section %d %d' % (t, i))
raw = False
exec(code)
if not raw:
    struct.pack_into('<I', b, 32, zlib.crc32(bytes(b[state_off:state_off + state_len])))
    struct.pack_into('<I', b, 140, 0)
    struct.pack_into('<I', b, 140, zlib.crc32(bytes(b[:144])))
open(dst, 'wb').write(b)
EOF
}

# refused NAME SNAPSHOT EXPECTED-TEXT [ARGS]: restoring SNAPSHOT (a name in
# $tmp, without .snap) fails with exit 2 and that text, the guest silent.
refused() {
    local name=$1 snap=$2 want=$3 status
    rm -f "$tmp/h.raw"
    truncate -s 16M "$tmp/h.raw"
    chmod u+w "$tmp/h.raw"
    timeout 30 "$vmm" --restore "$tmp/$snap.snap" --mem 64M --cpus 2 --disk "path=$tmp/h.raw,format=raw" \
        --serial "file:$tmp/$name.log" "${@:4}" </dev/null >"$tmp/$name.vmm" 2>&1
    status=$?
    if [ "$status" != 2 ] || ! grep -qF "$want" "$tmp/$name.vmm"; then
        fail "$name: exit $status, expected 2 with '$want': $(head -c 300 "$tmp/$name.vmm")"
    elif [ -s "$tmp/$name.log" ]; then
        fail "$name: the guest ran: $(head -c 200 "$tmp/$name.log")"
    else
        echo "refused $name: $(grep -m1 error "$tmp/$name.vmm")"
    fi
}

head -c 100000 "$tmp/g.snap" > "$tmp/trunc.snap"
refused trunc trunc "truncated"
patch "$tmp/g.snap" "$tmp/magic.snap" "b[0:8] = b'NOTHERD!'; raw = True"
refused magic magic "not a herd snapshot"
patch "$tmp/g.snap" "$tmp/version.snap" "struct.pack_into('<I', b, 8, 2)"
refused version version "snapshot format version 2; this herd-vmm reads version 1"
patch "$tmp/g.snap" "$tmp/flip.snap" "b[state_off + 200] ^= 0x40; raw = True"
refused flip flip "state checksum mismatch"
refused cpus g "give --cpus 2 --mem 64M" --cpus 1
refused mem g "give --cpus 2 --mem 64M" --mem 128M
refused disks g "disks and" --disk "path=$tmp/base.raw,format=raw,readonly=on"
# Section numbers: enum snap_section_type in include/herd/snapshot.h.
# SNAP_S_VCPU_CPUID = 11: entries of 40 bytes (function, index, flags, eax,
# ebx, ecx, edx, padding); the second entry's EDX changes one bit.
patch "$tmp/g.snap" "$tmp/cpuid.snap" "o, l = section(11); struct.pack_into('<I', b, o + 40 + 24, struct.unpack_from('<I', b, o + 40 + 24)[0] ^ 0x8)"
refused cpuid cpuid "CPUID mismatch on vCPU 0"
# SNAP_S_VIRTIO = 19: struct virtio_dev_state, queues[] at byte 456 (its
# layout is pinned by static assertions in vmm/vm_snapshot.c); size at +24.
patch "$tmp/g.snap" "$tmp/qsize.snap" "o, l = section(19); q = o + 456; struct.pack_into('<H', b, q + 24, 3)"
refused qsize qsize "queue 0 of the snapshot is malformed"
patch "$tmp/g.snap" "$tmp/ring.snap" "o, l = section(19); q = o + 456; struct.pack_into('<Q', b, q, 0x7ff00000000)"
refused ring ring "queue 0 of the snapshot"
# SNAP_S_VCPU_MSRS = 6: the first entry's index becomes one no CPU has.
patch "$tmp/g.snap" "$tmp/msr.snap" "o, l = section(6); struct.pack_into('<I', b, o, 0x4fff1234)"
refused msr msr "KVM refused MSR 0x4fff1234"
# SNAP_S_CONFIG = 1: its length field says 1 TiB.
patch "$tmp/g.snap" "$tmp/past.snap" "o, l = section(1); struct.pack_into('<Q', b, o - 8, 1 << 40)"
refused past past "runs past the state"

if [ "$failures" -gt 0 ]; then
    echo "FAIL: $failures check(s) failed"
    exit 1
fi
echo "PASS: snapshot at round $last; one restore, two clones (mapped and copied) went on and passed; a NIC in use came back under a new MAC and exchanged 2000 frames each way; 4 refused snapshots; 12 hostile snapshots refused"
exit 0
