#!/bin/bash
# herd-test-needs: kvm-linux
# Real Linux end to end: the Debian 12 guest image from
# tools/build-guest-image (systemd, udev, openssh-server, cloud-init) under
# herd-vmm, each guest on its own qcow2 overlay of the read-only raw parent,
# each on a tap on one bridge (in a private network namespace):
#  1. two guests boot to "login:" on the serial console, and the image's
#     ready line reports systemd's state: "running", or "degraded" only with
#     the failed units named (a degraded system is a failure here);
#  2. their root disk is /dev/vda through herd's virtio-blk and their NIC
#     herd's virtio-net: each pings the other (addresses from herd.ip= on
#     the kernel command line, the peer from herd.ping=), and this host
#     pings both from the bridge; guest b's NIC has two queue pairs (a
#     multi_queue tap, queues=2) and Linux's driver must put both to use
#     (its VQ_PAIRS_SET command, logged by herd-vmm);
#  3. guest a shuts down cleanly when asked (control socket powerdown: the
#     ACPI power button; systemd stops its units, powers off through ACPI
#     S5, herd-vmm exits 0), guest b is stopped by herd-vmm (stop); both
#     sockets removed, no herd-vmm left, `qemu-img check` clean on both
#     overlays, the parent's sha256 unchanged;
#  4. the oracle (make check-full): the same image on the same kind of
#     overlay under qemu-system-x86_64 -enable-kvm (q35, QEMU's own virtio
#     devices) boots to "login:" too. In make check the QEMU oracle is
#     probe-virtio-qemu's (the probe against QEMU's devices): a third
#     Debian boot costs minutes in the nested host (docs/testing.md).
# The image dir is $HERD_GUEST_IMAGE (default build/guest, which make check
# builds). Waits are generous and bounded: in the nested host (QEMU TCG) a
# boot to login takes minutes.
#
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
client=$build/tests/bin/control-client
limit=${HERD_LINUX_TIMEOUT:-600}

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespace, taps)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is missing or not accessible"
require_guest_image
for f in "$vmm" "$client"; do [ -x "$f" ] || skip "$f is not built"; done
for t in ip qemu-img sha256sum; do command -v $t >/dev/null || skip "$t is not installed"; done

tmp=$(mktemp -d /tmp/linux-debian.XXXXXX)
ns=hld$$
pids=()
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    sleep 0.2
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

parent=$img/root.img
echo "image: $img ($(du -h --apparent-size "$parent" | cut -f1) parent, $(cat "$img/cmdline"))"
sum_before=$(sha256sum < "$parent")
cmdline=$(cat "$img/cmdline")

ip netns add "$ns" || skip "cannot create a network namespace"
ip -n "$ns" link add hbr0 type bridge
ip -n "$ns" addr add 10.77.0.254/24 dev hbr0
ip -n "$ns" link set hbr0 up

# --- 1. two guests under herd-vmm --------------------------------------------
declare -A ip_of=([a]=10.77.0.1 [b]=10.77.0.2)
declare -A peer_of=([a]=10.77.0.2 [b]=10.77.0.1)
declare -A pid_of
for g in a b; do
    "$build/bin/herd-img" create -q -f qcow2 -b "$parent" -F raw "$tmp/$g.qcow2" ||
        { fail "herd-img create $g.qcow2"; exit 1; }
    mq=$([ $g = b ] && echo "multi_queue")
    ip -n "$ns" tuntap add "tap$g" mode tap $mq
    ip -n "$ns" link set "tap$g" master hbr0 up
    mac=52:54:00:4c:44:0$([ $g = a ] && echo 1 || echo 2)
    nsenter --net=/run/netns/"$ns" "$vmm" --kernel "$img/vmlinuz" --initrd "$img/initrd.img" \
        --mem 512M --cpus 2 --disk "path=$tmp/$g.qcow2,format=qcow2" \
        --net "tap=tap$g,mac=$mac${mq:+,queues=2}" \
        --cmdline "$cmdline herd.ip=${ip_of[$g]}/24 herd.ping=${peer_of[$g]}" \
        --serial "file:$tmp/$g.console" --control "$tmp/$g.sock" \
        </dev/null > "$tmp/$g.vmm.log" 2>&1 &
    pid_of[$g]=$!
    pids+=($!)
done
start=$(date +%s)
for g in a b; do
    con=$tmp/$g.console
    if wait_console "$con" 'herd-guest: ready ' "$limit" "${pid_of[$g]}" &&
        wait_line "$con" ' login:' 60 "${pid_of[$g]}"; then
        echo "guest $g: login prompt and ready line after $(( $(date +%s) - start ))s"
    else
        fail "guest $g: no ready line and login: within ${limit}s"
        tail -n 40 "$con" | sed "s/^/  $g| /"
        sed "s/^/  $g vmm| /" "$tmp/$g.vmm.log"
        continue
    fi
    ready=$(grep -a 'herd-guest: ready ' "$con" | tail -n 1 | tr -d '\r')
    echo "guest $g: $ready"
    grep -q 'state=running' <<<"$ready" ||
        fail "guest $g: systemd is not running cleanly: $ready"
    grep -qa 'virtio_blk virtio[0-9]*: \[vda\]' "$con" ||
        echo "note: guest $g's console does not show the vda line (quiet kernel?)"
done

# --- 2. the network: guest to guest, host to guests ---------------------------
for g in a b; do
    con=$tmp/$g.console
    if wait_line "$con" "herd-guest: ping ${peer_of[$g]} (ok|failed)" 180 "${pid_of[$g]}"; then
        line=$(grep -aE "herd-guest: ping ${peer_of[$g]} " "$con" | tail -n 1 | tr -d '\r')
        echo "guest $g: $line"
        grep -q " ok" <<<"$line" || fail "guest $g could not ping ${peer_of[$g]}"
    else
        fail "guest $g: no ping result on its console"
    fi
    ip netns exec "$ns" ping -c 2 -W 5 "${ip_of[$g]}" > "$tmp/ping-$g.log" 2>&1 ||
        { fail "host cannot ping guest $g (${ip_of[$g]})"; cat "$tmp/ping-$g.log"; }
done
if grep -q 'the driver uses 2 of 2 queue pairs' "$tmp/b.vmm.log"; then
    echo "guest b: Linux put both queue pairs of its NIC to use"
else
    fail "guest b: Linux's virtio-net did not set 2 queue pairs (queues=2)"
fi

# --- 3. guest a shuts itself down (powerdown: the ACPI power button), guest b
# is stopped by herd-vmm; check the images, nothing left ---------------------
out=$(printf '%s\n' '{"cmd":"powerdown","id":1}' | "$client" "$tmp/a.sock" -t 10 2>&1)
[ "$out" = '{"ok":true,"id":1}' ] || fail "guest a: powerdown: $out"
t0=$(date +%s)
wait_bounded "${pid_of[a]}" 300
rc=$?
echo "guest a: powerdown: herd-vmm exit $rc after $(( $(date +%s) - t0 ))s ($(tail -n 1 "$tmp/a.vmm.log"))"
[ "$rc" -eq 0 ] || fail "guest a: herd-vmm exit $rc after powerdown, expected 0"
grep -q 'guest powered off (ACPI S5)' "$tmp/a.vmm.log" ||
    fail "guest a did not power off through ACPI S5"
grep -qa 'Power Button \[PWRF\]' "$tmp/a.console" &&
    fail "guest a: the kernel made a fixed-feature power button (FADT flag ignored?)"
tr -d '\r' < "$tmp/a.console" | grep -aqE 'Stopped target|Stopping ' ||
    fail "guest a: no units stopped on its console: not an orderly systemd shutdown"
tr -d '\r' < "$tmp/a.console" | grep -aqE 'reboot: Power down|Powering off' ||
    fail "guest a: its console shows no power-off"
out=$(printf '%s\n' '{"cmd":"stop"}' | "$client" "$tmp/b.sock" -t 10 2>&1)
[ "$out" = '{"ok":true}' ] || fail "guest b: stop: $out"
wait_bounded "${pid_of[b]}" 60
rc=$?
[ "$rc" -eq 0 ] || fail "guest b: herd-vmm exit $rc after stop, expected 0"
for g in a b; do
    [ -e "$tmp/$g.sock" ] && fail "guest $g: control socket left behind"
    out=$(qemu-img check -f qcow2 "$tmp/$g.qcow2" 2>&1) || fail "qemu-img check $g.qcow2: $out"
    echo "guest $g: qemu-img check: $(tail -n 1 <<<"$out")"
done
pids=()
left=$(pgrep -f "herd-vmm.*$tmp" || true)
[ -z "$left" ] && echo "no herd-vmm left" || fail "herd-vmm processes left: $left"
[ "$(sha256sum < "$parent")" = "$sum_before" ] && echo "parent sha256 unchanged" ||
    fail "the parent image changed"

# --- 4. the oracle: QEMU on the same image and overlay kind -------------------
if [ "${HERD_CHECK_FULL:-0}" != 1 ]; then
    echo "qemu oracle: in make check-full only (HERD_CHECK_FULL=1)"
elif command -v qemu-system-x86_64 >/dev/null; then
    "$build/bin/herd-img" create -q -f qcow2 -b "$parent" -F raw "$tmp/q.qcow2"
    qstart=$(date +%s)
    qemu-system-x86_64 -enable-kvm -cpu host -M q35 -smp 2 -m 512M -display none \
        -monitor none -no-reboot -serial "file:$tmp/q.console" \
        -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$cmdline" \
        -drive "file=$tmp/q.qcow2,if=virtio,format=qcow2" </dev/null > "$tmp/q.log" 2>&1 &
    qpid=$!
    pids+=($qpid)
    if wait_line "$tmp/q.console" ' login:' "$limit" $qpid; then
        echo "qemu: login prompt after $(( $(date +%s) - qstart ))s: $(grep -a 'herd-guest: ready ' "$tmp/q.console" | tail -n 1 | tr -d '\r')"
    else
        fail "qemu: the same image did not reach login: within ${limit}s"
        tail -n 30 "$tmp/q.console" | sed 's/^/  q| /'
    fi
    kill -TERM $qpid 2>/dev/null
    wait_bounded $qpid 30 > /dev/null 2>&1
    out=$(qemu-img check -f qcow2 "$tmp/q.qcow2" 2>&1) || fail "qemu-img check q.qcow2: $out"
else
    fail "qemu-system-x86_64 is missing: no oracle"
fi
[ "$(sha256sum < "$parent")" = "$sum_before" ] || fail "the parent image changed under qemu"

[ "$failures" -eq 0 ] || { echo "linux-debian: $failures failures"; exit 1; }
echo "linux-debian: all checks passed"
