#!/bin/bash
# herdd ranges vs the same guests started by hand with QEMU:
#  - range launch rate: `herdctl range up` of N probe guests (default 40; each
#    with a qcow2 overlay over one parent, two taps on bridges, supervised),
#    from the command to every guest's "herd-probe: ready" on its console,
#    against N qemu microvm processes started one after another by a shell, each on
#    its own qcow2 overlay (qemu-img create) with no NICs, until every
#    console says ready;
#  - VMM resident memory per guest with all N guests up and idle, guest RAM
#    excluded (as in vmm.sh), averaged over the N processes;
#  - `herdctl range checkpoint` of the N guests, then `range reset --to` it
#    (each guest restored from its snapshot) against a plain `range reset`
#    (fresh overlays, cold boots), each from the command to all N ready.
# Rows: metric|herd|peer|peer name|unit. Needs root (network namespace).
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
n=${BENCH_RANGE_GUESTS:-40}
probe=$build/firmware/herd-probe.elf
if [ "$(id -u)" -ne 0 ] || [ ! -w /dev/kvm ] || ! command -v qemu-system-x86_64 >/dev/null; then
    echo "herdd bench: needs root, /dev/kvm and qemu-system-x86_64" >&2
    exit 1
fi
tmp=$(mktemp -d /tmp/herd-bench.XXXXXX)
chmod 755 "$tmp" # guest uids traverse it to their run directories (docs/security.md)
ns=herd-bench-$$
herdd_pid=
cleanup() {
    [ -n "$herdd_pid" ] && { kill -KILL "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    for f in "$tmp"/q/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")"; done 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
hc() { "$build/bin/herdctl" --socket "$tmp/herdd.sock" "$@"; }
rss_kb() { # PID EXCLUDE_NAME EXCLUDE_SIZE_KB (vmm.sh's measure)
    awk -v ex="$2" -v exsize="$3" '
        /^[0-9a-f]+-[0-9a-f]+ / { name = $6; skip = (ex != "" && index(name, ex) > 0) }
        /^Size:/ { if (exsize > 0 && $2 == exsize) skip = 1 }
        /^Rss:/ { if (!skip) total += $2 }
        END { print total + 0 }' "/proc/$1/smaps"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

truncate -s 16M "$tmp/parent.raw"
chmod 0444 "$tmp/parent.raw"

# herd
cat > "$tmp/herdd.yaml" <<YAML
state_dir: $tmp/state
image_dirs: [$tmp, $build]
socket: $tmp/herdd.sock
vmm: $build/bin/herd-vmm
network_setup: true
roles: {management: {bridge: hbr-mgmt}, communication: {bridge: hbr-comm}}
capacity: {cpu_overcommit: 64}
YAML
ip netns add "$ns"
ip netns exec "$ns" "$build/bin/herdd" --config "$tmp/herdd.yaml" > "$tmp/herdd.log" 2>&1 &
herdd_pid=$!
for _ in $(seq 100); do hc node profile >/dev/null 2>&1 && break; sleep 0.05; done
hc template add probe --image "$tmp/parent.raw" --format raw --kernel "$probe" \
    --cmdline "probe.tests= probe.idle=1" --mem 64M --nic communication --nic management >/dev/null
printf 'range: bench\nscenarios:\n  - name: s\n    roles:\n      - {name: g, template: probe, count: %d}\n' \
    "$n" > "$tmp/range.yaml"
t0=$(now_ms)
hc range up "$tmp/range.yaml" >/dev/null || echo "herdd bench: range up failed" >&2
h_ms=$(( $(now_ms) - t0 ))
h_rss=0
for p in $(ip netns pids "$ns"); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = herd-vmm ] && h_rss=$((h_rss + $(rss_kb "$p" herd-guest-ram 0)))
done
# checkpoint and the two resets: back to the checkpoint (restores) vs to
# fresh overlays (cold boots), each timed from the command to all ready
all_ready() {
    local r
    for _ in $(seq 6000); do
        r=$(hc --json range status bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["ready"])')
        [ "$r" -ge "$n" ] && return 0
        sleep 0.01
    done
    return 1
}
t0=$(now_ms)
hc range checkpoint bench cp >/dev/null || echo "herdd bench: range checkpoint failed" >&2
cp_ms=$(( $(now_ms) - t0 ))
t0=$(now_ms)
hc range reset bench --to cp >/dev/null && all_ready || echo "herdd bench: reset --to failed" >&2
to_ms=$(( $(now_ms) - t0 ))
t0=$(now_ms)
hc range reset bench >/dev/null && all_ready || echo "herdd bench: reset failed" >&2
cold_ms=$(( $(now_ms) - t0 ))
hc range down bench >/dev/null
{ kill -TERM "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
herdd_pid=

# QEMU by hand
mkdir -p "$tmp/q"
start_one() {
    local i=$1
    qemu-img create -q -f qcow2 -b "$tmp/parent.raw" -F raw "$tmp/q/$i.qcow2"
    qemu-system-x86_64 -M microvm -enable-kvm -nodefaults -no-user-config -nographic \
        -name "herd-bench-$$" -m 64M -kernel "$probe" -append "probe.tests= probe.idle=1" \
        -drive "file=$tmp/q/$i.qcow2,format=qcow2,if=none,id=d0" -device virtio-blk-device,drive=d0 \
        -serial "file:$tmp/q/$i.log" -display none </dev/null >/dev/null 2>&1 &
    echo $! > "$tmp/q/$i.pid"
}
t0=$(now_ms)
for i in $(seq "$n"); do
    start_one "$i"
done
for _ in $(seq 6000); do
    ready=$(grep -l "herd-probe: ready" "$tmp"/q/*.log 2>/dev/null | wc -l)
    [ "$ready" -ge "$n" ] && break
    sleep 0.01
done
q_ms=$(( $(now_ms) - t0 ))
q_rss=0
for f in "$tmp"/q/*.pid; do q_rss=$((q_rss + $(rss_kb "$(cat "$f")" "" 65536))); done
{
    for f in "$tmp"/q/*.pid; do kill -KILL "$(cat "$f")"; done
    wait
} 2>/dev/null
rm -f "$tmp"/q/*.pid

rate() { awk -v n="$n" -v ms="$1" 'BEGIN { if (ms > 0) printf "%.1f", n * 1000 / ms; else print "-" }'; }
echo "range up, $n guests to all ready|$(rate "$h_ms")|$(rate "$q_ms")|qemu microvm by hand|guests/s"
echo "VMM RSS per guest, $n idle guests, guest RAM excl|$((h_rss / n))|$((q_rss / n))|qemu microvm|KiB"
echo "range checkpoint, $n guests (paused, snapshotted, resumed)|$cp_ms|n/a|no peer run|ms"
echo "range reset, $n guests to all ready: --to a checkpoint vs fresh overlays|$to_ms|$cold_ms|herdd range reset (cold boots)|ms"
