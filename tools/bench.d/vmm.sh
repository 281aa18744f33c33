#!/bin/bash
# herd-vmm vs QEMU microvm (-enable-kvm, PVH boot) on the same herd-probe:
#  - process start to the probe's first console line (it writes the boot
#    marker just before), timed from outside by tools/boot-timer;
#  - process start to exit (probe with no tests exits via debug-exit);
#  - herd-vmm's own "boot marker after N us" (QEMU has no such log: n/a);
#  - resident memory of the VMM process itself, guest RAM mapping excluded,
#    with an idle probe (probe.idle=1).
# Medians of RUNS runs (default 20). Rows: metric|herd|peer|peer name|unit.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
runs=${BENCH_RUNS:-20}
probe=$build/firmware/herd-probe.elf
timer=$build/tools/boot-timer
herd=("$build/bin/herd-vmm" --kernel "$probe" --mem 64M --cmdline)
qemu=(qemu-system-x86_64 -M microvm -enable-kvm -nodefaults -no-user-config -nographic
      -serial stdio -m 64M -kernel "$probe" -device isa-debug-exit,iobase=0x501 -append)
marker="herd-probe: boot via"

if [ ! -w /dev/kvm ] || ! command -v qemu-system-x86_64 >/dev/null; then
    echo "vmm bench: needs /dev/kvm and qemu-system-x86_64" >&2
    exit 1
fi

median_of() { # boot-timer output -> "marker exit"
    awk '/^median/ {print $2, $3}'
}

read -r h_mark h_exit < <("$timer" "$runs" "$marker" -- "${herd[@]}" "probe.tests=" | median_of)
read -r q_mark q_exit < <("$timer" "$runs" "$marker" -- "${qemu[@]}" "probe.tests=" | median_of)
echo "start to first guest console line|$((h_mark / 1000)).$(( (h_mark % 1000) / 100 ))|$((q_mark / 1000)).$(( (q_mark % 1000) / 100 ))|qemu microvm|ms"
echo "start to exit, probe with no tests|$((h_exit / 1000)).$(( (h_exit % 1000) / 100 ))|$((q_exit / 1000)).$(( (q_exit % 1000) / 100 ))|qemu microvm|ms"

# herd-vmm's own boot marker figure (median).
own=$(for _ in $(seq "$runs"); do
          "${herd[@]}" "probe.tests=" 2>&1 >/dev/null | sed -n 's/.*boot marker after \([0-9]*\) us (mmio.*/\1/p'
      done | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}')
echo "boot marker (herd-vmm's own clock)|$((own / 1000)).$(( (own % 1000) / 100 ))|n/a|qemu has no marker log|ms"

# rss_kb PID EXCLUDE_NAME EXCLUDE_SIZE_KB: RSS of all mappings except guest RAM.
rss_kb() {
    awk -v ex="$2" -v exsize="$3" '
        /^[0-9a-f]+-[0-9a-f]+ / { name = $6; skip = (ex != "" && index(name, ex) > 0) }
        /^Size:/ { if (exsize > 0 && $2 == exsize) skip = 1 }
        /^Rss:/ { if (!skip) total += $2 }
        END { print total + 0 }' "/proc/$1/smaps"
}

idle_rss() { # LOG EXCLUDE_NAME EXCLUDE_SIZE CMD...
    local log=$1 exname=$2 exsize=$3 pid i rss
    shift 3
    "$@" "probe.tests= probe.idle=1" > "$log" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        grep -q "0 passed, 0 failed" "$log" && break
        sleep 0.1
    done
    sleep 0.5
    rss=$(rss_kb "$pid" "$exname" "$exsize")
    kill "$pid"; wait "$pid" 2>/dev/null
    echo "$rss"
}
tmp=$(mktemp -d)
h_rss=$(idle_rss "$tmp/h.log" herd-guest-ram 0 "${herd[@]}")
q_rss=$(idle_rss "$tmp/q.log" "" 65536 "${qemu[@]}")
rm -rf "$tmp"
echo "VMM RSS excluding guest RAM, idle guest|$h_rss|$q_rss|qemu microvm|KiB"
