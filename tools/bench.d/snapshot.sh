#!/bin/bash
# Snapshots (docs/snapshot.md), herd against itself and an anchor:
#  - process start to the guest's first console bytes ("herd-probe:", the
#    start of its next line; tools/boot-timer -p, medians of RUNS, default
#    20): a restore from a snapshot vs a cold boot of the same probe. The
#    restored probe is in its `ticks` test with 5 ms rounds: it prints within
#    5 ms of running again (at once on PVM, where its TSC jumped). Firecracker's published
#    restore figure (about 30 ms on x86, docs/SPECIFICATION.md) is an anchor
#    there, not measured here.
#  - memory per guest: N idle probes (BENCH_CLONES, default 100) restored
#    from one snapshot with RAM mapped from it, against N cold-booted ones;
#    the mean of each herd-vmm's proportional set size (Pss in
#    /proc/PID/smaps_rollup: shared pages count divided among the sharers).
#    Skipped, saying why, when the machine lacks the memory for 2N guests.
#  - density: BENCH_DENSITY (default 1000) idle probes restored from one
#    snapshot at once, herd-vmm processes started back to back: the time
#    until every one has its vCPU thread running, their mean Pss and the
#    host memory they take together (MemAvailable before and after). herd-vmm
#    alone, not through herdd (herdctl range up of 1000 guests is issue 15's
#    next step). Skipped when the memory is short.
# Rows: metric|herd|peer|peer name|unit.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
runs=${BENCH_RUNS:-20}
clones=${BENCH_CLONES:-100}
vmm=$build/bin/herd-vmm
probe=$build/firmware/herd-probe.elf
timer=$build/tools/boot-timer
client=$build/tests/bin/control-client
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

if [ ! -w /dev/kvm ]; then
    echo "snapshot bench: needs /dev/kvm" >&2
    exit 1
fi

# snapshot CMDLINE MARKER FILE: runs a probe until MARKER is on its console,
# pauses it, snapshots it into FILE, stops it.
snapshot() {
    local sock=$tmp/s.sock log=$tmp/s.log pid
    rm -f "$sock" "$log" "$3"
    "$vmm" --kernel "$probe" --mem 64M --cmdline "$1" --serial "file:$log" --control "$sock" \
        </dev/null >"$tmp/s.vmm" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        grep -q "$2" "$log" 2>/dev/null && break
        sleep 0.02
    done
    printf '%s\n' '{"cmd":"pause"}' | "$client" "$sock" -t 5 >/dev/null
    printf '%s\n' '{"cmd":"snapshot"}' | "$client" "$sock" -t 30 -F "$3" >/dev/null
    printf '%s\n' '{"cmd":"stop"}' | "$client" "$sock" -t 5 >/dev/null
    wait "$pid"
}

# stop PIDS...: SIGKILL and wait until they are gone (they were disowned:
# no "Killed" line per guest from the shell).
stop() {
    kill -KILL "$@" 2>/dev/null
    for _ in $(seq 300); do
        local alive=0 p
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
        [ "$alive" = 0 ] && return
        sleep 0.1
    done
}

ms() { echo "$(($1 / 1000)).$(( ($1 % 1000) / 100 ))"; }
median_marker() { awk '/^median/ {print $2}'; }

# --- restore vs cold boot, to the first console line -----------------------------
ticks="probe.tests=ticks probe.ticks.report=5 probe.ticks.rounds=40"
snapshot "$ticks" "ticks: round 5 " "$tmp/ticks.snap"
restore_us=$("$timer" -p "$runs" "herd-probe:" -- "$vmm" --restore "$tmp/ticks.snap" --mem 64M \
             --serial stdio | median_marker)
cold_us=$("$timer" -p "$runs" "herd-probe:" -- "$vmm" --kernel "$probe" --mem 64M \
          --cmdline "probe.tests=" | median_marker)
echo "start to the guest's first console bytes, restored vs cold|$(ms "$restore_us")|$(ms "$cold_us")|herd-vmm cold boot (probe)|ms"
echo "start to the guest's first console bytes, restored vs anchor|$(ms "$restore_us")|30.0|Firecracker restore, published (not run)|ms"

# --- memory per guest: clones of one snapshot vs cold boots ----------------------
need_kib=$((clones * 2 * 16 * 1024)) # 16 MiB each, generously, both sets at once
avail_kib=$(awk '/^MemAvailable/ {print $2}' /proc/meminfo)
if [ "$avail_kib" -lt "$need_kib" ]; then
    echo "snapshot bench: memory per clone skipped: $clones clones and $clones cold guests want about $((need_kib / 1024)) MiB, $((avail_kib / 1024)) MiB available" >&2
    exit 0
fi
idle="probe.tests=boot,serial,timer probe.idle=1"
snapshot "$idle" "herd-probe: ready" "$tmp/idle.snap"

# pss_mean PIDS...: mean Pss of the processes, in KiB
pss_mean() {
    local total=0 n=0 p v
    for p in "$@"; do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
        [ -n "$v" ] || continue
        total=$((total + v))
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] && echo $((total / n)) || echo 0
}

# start_set KIND COUNT: KIND restore or cold; waits until every guest is ready
start_set() {
    local kind=$1 i set=()
    for i in $(seq "$2"); do
        if [ "$kind" = restore ]; then
            "$vmm" --restore "$tmp/idle.snap" --mem 64M --serial none </dev/null >/dev/null 2>&1 &
        else
            "$vmm" --kernel "$probe" --mem 64M --cmdline "$idle" --serial "file:$tmp/c$i.log" \
                </dev/null >/dev/null 2>&1 &
        fi
        set+=("$!")
        pids+=("$!")
        disown "$!"
    done
    if [ "$kind" = cold ]; then
        for _ in $(seq 600); do
            [ "$(grep -l 'herd-probe: ready' "$tmp"/c*.log 2>/dev/null | wc -l)" -ge "$2" ] && break
            sleep 0.1
        done
    else
        sleep 3 # a restored idle probe only halts; give every process time to map and run
    fi
    echo "${set[@]}"
}

read -r -a restored < <(start_set restore "$clones")
pss_r=$(pss_mean "${restored[@]}")
stop "${restored[@]}"
read -r -a cold < <(start_set cold "$clones")
pss_c=$(pss_mean "${cold[@]}")
stop "${cold[@]}"
echo "memory per guest (Pss), $clones restored from one snapshot vs $clones cold|$pss_r|$pss_c|herd-vmm cold boots (probe)|KiB"

# --- density: many restored guests at once ------------------------------------------
density=${BENCH_DENSITY:-1000}
avail_kib=$(awk '/^MemAvailable/ {print $2}' /proc/meminfo)
if [ "$avail_kib" -lt $((density * 4 * 1024)) ]; then
    echo "snapshot bench: density skipped: $density guests want about $((density * 4)) MiB, $((avail_kib / 1024)) MiB available" >&2
    exit 0
fi
before_kib=$avail_kib
t0=$(date +%s%N)
dense=()
for _ in $(seq "$density"); do
    "$vmm" --restore "$tmp/idle.snap" --mem 64M --serial none </dev/null >/dev/null 2>&1 &
    dense+=("$!")
    pids+=("$!")
    disown "$!"
done
# every process running its vCPU thread (the guest runs, or halts in it)
for _ in $(seq 600); do
    up=0
    for p in "${dense[@]}"; do
        grep -qx herd-vcpu /proc/"$p"/task/*/comm 2>/dev/null && up=$((up + 1))
    done
    [ "$up" -ge "$density" ] && break
    sleep 0.1
done
t1=$(date +%s%N)
sleep 2
pss_d=$(pss_mean "${dense[@]}")
used_mib=$(( (before_kib - $(awk '/^MemAvailable/ {print $2}' /proc/meminfo)) / 1024 ))
stop "${dense[@]}"
echo "$density guests restored from one snapshot: all running ($up up)|$(( (t1 - t0) / 1000000 ))|n/a|no peer run|ms"
echo "$density guests restored from one snapshot: memory per guest (Pss)|$pss_d|n/a|no peer run|KiB"
echo "$density guests restored from one snapshot: host memory taken|$used_mib|n/a|no peer run|MiB"
