#!/bin/bash
# Real Linux, herd-vmm vs QEMU (-enable-kvm -M q35, its own virtio devices):
# the Debian 12 guest image from tools/build-guest-image, each VMM on a
# fresh qcow2 overlay of the same raw parent, 512M, 2 vCPUs, the image's
# own command line; time from process start to "login:" on the serial
# console and to the image's ready line (systemd at multi-user). One boot
# each per run, alternating, BENCH_LINUX_RUNS runs (default 1), medians.
# Then the first herd guest, snapshotted once ready, is restored from that
# snapshot: from herd-vmm's start to getty answering a newline on the
# console with "login:", against herd's cold boot to "login:".
# Where this machine cannot boot kernels (no /dev/kvm, or PVM), it runs
# itself in the nested host (tools/nested-host) and says so in each metric:
# then both figures come from the same emulated host and only the ratio
# means anything. Rows: metric|herd|peer|peer name|unit.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
img=${HERD_GUEST_IMAGE:-$root/build/guest}
runs=${BENCH_LINUX_RUNS:-1}

native() {
    [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo
}

if [ "${HERD_NESTED:-0}" != 1 ]; then
    "$root/tools/build-guest-image" "$img" >&2 || { echo "linux bench: no guest image" >&2; exit 1; }
    if ! native; then
        out=$build/nested/bench
        echo "linux bench: no vmx/svm here: measuring both VMMs in the nested host" >&2
        "$root/tools/nested-host" -q -o "$out" -e HERD_GUEST_IMAGE -e BENCH_LINUX_RUNS -e HERD_LINUX_TIMEOUT \
            -- "$0" >&2 || { echo "linux bench: the nested run failed ($out)" >&2; exit 1; }
        sed -n 's/^ROW \([^|]*\)|/\1, nested host|/p' "$out/job.log"
        exit 0
    fi
fi

tmp=$(mktemp -d /tmp/bench-linux.XXXXXX)
trap 'pkill -KILL -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cmdline=$(cat "$img/cmdline")
client=$build/tests/bin/control-client
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $(( t / 1000 )); }

# boot WHO RUN: prints "LOGIN_MS READY_MS" (0 where not reached within
# HERD_LINUX_TIMEOUT seconds, default 600; the table then shows no ratio)
boot() {
    local who=$1 n=$2 con=$tmp/$1-$2.console ov=$tmp/$1-$2.qcow2 t0 pid login=0 ready=0 deadline
    "$build/bin/herd-img" create -q -f qcow2 -b "$img/root.img" -F raw "$ov" || return 1
    t0=$(now_ms)
    if [ "$who" = herd ]; then
        "$build/bin/herd-vmm" --kernel "$img/vmlinuz" --initrd "$img/initrd.img" --mem 512M \
            --cpus 2 --disk "path=$ov,format=qcow2" --cmdline "$cmdline" \
            --serial "file:$con" --control "$tmp/$who-$n.sock" </dev/null >/dev/null 2>&1 &
    else
        qemu-system-x86_64 -enable-kvm -cpu host -M q35 -smp 2 -m 512M -display none \
            -monitor none -no-reboot -serial "file:$con" -kernel "$img/vmlinuz" \
            -initrd "$img/initrd.img" -append "$cmdline" \
            -drive "file=$ov,if=virtio,format=qcow2" </dev/null >/dev/null 2>&1 &
    fi
    pid=$!
    # bounded by time, not by rounds: in the nested host a round (two greps
    # and a sleep) costs about a second
    deadline=$(( EPOCHSECONDS + ${HERD_LINUX_TIMEOUT:-600} ))
    while [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        [ "$login" = 0 ] && grep -qa ' login:' "$con" 2>/dev/null && login=$(( $(now_ms) - t0 ))
        [ "$ready" = 0 ] && grep -qa 'herd-guest: ready ' "$con" 2>/dev/null && ready=$(( $(now_ms) - t0 ))
        [ "$login" != 0 ] && [ "$ready" != 0 ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    [ "$who" = herd ] && [ "$n" = 1 ] && [ "$ready" != 0 ] && snapshot_ready "$tmp/$who-$n.sock"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    echo "$login $ready"
}

# snapshot_ready SOCK: the first herd guest, ready, paused and snapshotted
# into $tmp/ready.snap (its overlay herd-1.qcow2 is the snapshot's disk)
ask() { printf '%s\n' "$2" | "$client" "$1" -t 120 "${@:3}" >/dev/null 2>&1; }
snapshot_ready() {
    ask "$1" '{"cmd":"pause"}' && ask "$1" '{"cmd":"snapshot"}' -F "$tmp/ready.snap" ||
        rm -f "$tmp/ready.snap"
    ask "$1" '{"cmd":"stop"}'
}

# restore_to_answer: herd-vmm restored from ready.snap on the same overlay;
# ms from its start to getty answering a newline with a new "login:" (the
# console and the guest's userland run again), 0 if not within the timeout
restore_to_answer() {
    local con=$tmp/restore.console sock=$tmp/restore.sock t0 pid ms=0 deadline
    [ -s "$tmp/ready.snap" ] || { echo 0; return; }
    t0=$(now_ms)
    "$build/bin/herd-vmm" --restore "$tmp/ready.snap" --mem 512M --cpus 2 \
        --disk "path=$tmp/herd-1.qcow2,format=qcow2" --serial "file:$con" --control "$sock" \
        </dev/null >/dev/null 2>&1 &
    pid=$!
    deadline=$(( EPOCHSECONDS + ${HERD_LINUX_TIMEOUT:-600} ))
    while [ ! -S "$sock" ] && [ "$EPOCHSECONDS" -lt "$deadline" ]; do sleep 0.005; done
    ask "$sock" '{"cmd":"input","data":"\n"}'
    while [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        grep -qa ' login:' "$con" 2>/dev/null && { ms=$(( $(now_ms) - t0 )); break; }
        kill -0 $pid 2>/dev/null || break
        sleep 0.01
    done
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    echo "$ms"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
: > "$tmp/herd" && : > "$tmp/qemu"
for r in $(seq "$runs"); do
    boot herd "$r" >> "$tmp/herd"
    boot qemu "$r" >> "$tmp/qemu"
done
rs=$(restore_to_answer)
hl=$(cut -d' ' -f1 "$tmp/herd" | median) hr=$(cut -d' ' -f2 "$tmp/herd" | median)
ql=$(cut -d' ' -f1 "$tmp/qemu" | median) qr=$(cut -d' ' -f2 "$tmp/qemu" | median)
sec() { awk -v m="$1" 'BEGIN {printf "%.1f", m / 1000}'; }
prefix=
[ "${HERD_NESTED:-0}" = 1 ] && prefix="ROW "
echo "${prefix}Debian 12 start to login: (512M, 2 vCPU)|$(sec "$hl")|$(sec "$ql")|qemu q35 (SeaBIOS)|s"
echo "${prefix}Debian 12 start to systemd ready|$(sec "$hr")|$(sec "$qr")|qemu q35 (SeaBIOS)|s"
echo "${prefix}Debian 12 restore from a snapshot of it ready, start to a console answer|$(sec "$rs")|$(sec "$hl")|herd-vmm cold boot to login:|s"
