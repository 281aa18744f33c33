#!/bin/bash
# 1000 guests on one node through herdd (issue 15): `herdctl range up` of a
# range of BENCH_RANGE_GUESTS (default 1000) probe guests from one template
# (64 MiB, 1 vCPU, one NIC on one role bridge: 1000 bridge ports of the
# 1024 a Linux bridge takes; a qcow2 overlay over one parent, a cgroup and a
# uid each), on a private herdd in its own network namespace:
#  - the time from the command to every guest ready (range up returns then);
#  - herdd's API latency with all of them running: p50 and p99 of
#    BENCH_API_RUNS (default 50) GET /v1/vms (every guest, one JSON list) and
#    GET /v1/node (the profile: it measures each guest's resident memory,
#    docs/herdd.md "Capacity"), one request at a time with curl;
#  - the memory they take: the mean Pss of the herd-vmm processes, host
#    memory taken (MemAvailable before range up and with all ready), herdd's
#    own RSS and open descriptors;
#  - `range down` time, then that nothing is left: no herd-vmm of this
#    herdd, no tap, no guest cgroup, no guest directory or socket, no guest
#    listed. A leftover makes the script fail (exit 1) after its rows.
# herdd runs with capacity.cpu_overcommit 1000 and memory_overcommit 8
# (1000 guests commit 80 GiB; the measured resident memory is what admission
# keeps under memory_fraction of the host: docs/herdd.md "Capacity"), and
# range_parallel BENCH_RANGE_PARALLEL (default 32): the taps' kernel filters
# of guests starting together are installed in one nftables transaction
# (docs/netdev.md), so more at once means fewer transactions.
# BENCH_RANGE_WARM=1: the role's template is a warm template instead (a
# ready probe's snapshot: every guest a clone restored from it, its RAM
# mapped from one file; docs/snapshot.md "Warm templates").
# Skipped (the reason on stderr, no rows) without root, /dev/kvm, or the
# memory: MemAvailable must be at least 4 MiB per guest + 1 GiB.
# Rows: metric|herd|peer|peer name|unit (no peer runs here: Firecracker's
# published figures are anchors in docs/SPECIFICATION.md).
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
n=${BENCH_RANGE_GUESTS:-1000}
api_runs=${BENCH_API_RUNS:-50}
probe=$build/firmware/herd-probe.elf
say() { echo "range1000 bench: $*" >&2; }

if [ "$(id -u)" -ne 0 ] || [ ! -w /dev/kvm ]; then
    say "skipped: needs root (network namespace, taps, cgroups) and /dev/kvm"
    exit 0
fi
for t in ip curl qemu-img python3; do
    command -v "$t" >/dev/null || { say "skipped: $t is not installed"; exit 0; }
done
avail_kb() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
need_kb=$(( n * 4096 + 1048576 ))
if [ "$n" -gt 1000 ]; then
    say "skipped: $n guests: a range role takes at most 1000, and one NIC each on one role bridge may take at most 1023 of its ports"
    exit 0
fi
if [ "$(avail_kb)" -lt "$need_kb" ]; then
    say "skipped: $n guests need $((need_kb / 1024)) MiB available, the host has $(( $(avail_kb) / 1024 )) MiB"
    exit 0
fi

tmp=$(mktemp -d /tmp/herd-bench.XXXXXX)
chmod 755 "$tmp" # guest uids traverse it to their run directories (docs/security.md)
ns=herd-b1k-$$
herdd_pid=
cgmnt=
cleanup() {
    [ -n "$herdd_pid" ] && { kill -KILL "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    sleep 0.5
    ip netns del "$ns" 2>/dev/null
    if [ -n "$cgmnt" ]; then
        for d in "$cgmnt"/herd/*/vm-*; do
            [ -d "$d" ] && { echo 1 > "$d/cgroup.kill"; rmdir "$d"; }
        done 2>/dev/null
        rmdir "$cgmnt"/herd/* "$cgmnt/herd" 2>/dev/null
        umount "$cgmnt" 2>/dev/null || umount -l "$cgmnt"
        rmdir "$cgmnt"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
hc() { "$build/bin/herdctl" --socket "$tmp/herdd.sock" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
vmm_pids() { # herd-vmm processes in the namespace (not zombies)
    local p
    for p in $(ip netns pids "$ns"); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = herd-vmm ] &&
            ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && echo "$p"
    done
}

# the host's cgroup2 hierarchy at a path of our own (`ip netns exec`
# remounts /sys), as tests/integration/herdd-lib.sh does
cg_yaml=
cgmnt=$(mktemp -d /tmp/herd-cg.XXXXXX)
if mount -t cgroup2 none "$cgmnt" 2>/dev/null &&
    grep -qw memory "$cgmnt/cgroup.controllers"; then
    cg_yaml="cgroup_root: $cgmnt"
else
    say "no cgroup2 memory controller: guests run without cgroups"
    umount "$cgmnt" 2>/dev/null
    rmdir "$cgmnt"
    cgmnt=
fi

truncate -s 16M "$tmp/parent.raw"
chmod 0444 "$tmp/parent.raw"
cat > "$tmp/herdd.yaml" <<YAML
state_dir: $tmp/state
image_dirs: [$tmp, $build]
socket: $tmp/herdd.sock
vmm: $build/bin/herd-vmm
network_setup: true
roles: {communication: {bridge: hbr-comm}}
capacity: {cpu_overcommit: 1000, memory_overcommit: 8}
ready_timeout: 1800
range_parallel: ${BENCH_RANGE_PARALLEL:-32}
$cg_yaml
YAML
ip netns add "$ns" || { say "cannot create a network namespace"; exit 1; }
ip netns exec "$ns" "$build/bin/herdd" --config "$tmp/herdd.yaml" > "$tmp/herdd.log" 2>&1 &
herdd_pid=$!
for _ in $(seq 100); do hc node profile >/dev/null 2>&1 && break; sleep 0.05; done
hc template add probe --image "$tmp/parent.raw" --format raw --kernel "$probe" \
    --cmdline "probe.tests= probe.idle=1" --mem 64M --nic communication >/dev/null ||
    { say "template add failed"; cat "$tmp/herdd.log" >&2; exit 1; }
tmpl=probe kind=probe
if [ "${BENCH_RANGE_WARM:-0}" = 1 ]; then
    # a warm template: every guest a clone of one ready probe's snapshot
    hc vm create seed --template probe --start >/dev/null || { say "vm create seed failed"; exit 1; }
    for _ in $(seq 200); do
        [ "$(hc --json vm inspect seed | python3 -c 'import json,sys; print(json.load(sys.stdin)["ready"])')" = True ] && break
        sleep 0.05
    done
    hc vm snapshot seed warm >/dev/null && hc vm rm --force seed >/dev/null &&
        hc template add warm --snapshot warm >/dev/null || { say "warm template failed"; exit 1; }
    tmpl=warm kind="warm-template (one snapshot's clones)"
fi
printf 'range: b1k\nscenarios:\n  - name: s\n    roles:\n      - {name: g, template: %s, count: %d}\n' \
    "$tmpl" "$n" > "$tmp/range.yaml"

avail0=$(avail_kb)
t0=$(now_ms)
if ! hc range up "$tmp/range.yaml" > "$tmp/up.out" 2>&1; then
    say "range up failed: $(tail -3 "$tmp/up.out")"
    tail -20 "$tmp/herdd.log" >&2
    exit 1
fi
up_ms=$(( $(now_ms) - t0 ))
avail1=$(avail_kb)

ready=$(hc --json range status b1k | python3 -c '
import json, sys
print(sum(1 for v in json.load(sys.stdin)["vms"] if v["ready"] and v["state"] == "running"))')
listed=$(hc vm ls | grep -c ' running ')
pss=0
nvmm=0
for p in $(vmm_pids); do
    pss=$(( pss + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) ))
    nvmm=$((nvmm + 1))
done
herdd_rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$herdd_pid/status")
herdd_fds=$(ls "/proc/$herdd_pid/fd" | wc -l)

# latency MS_LIST: "p50 p99" of curl's time_total, in ms
latency() { # PATH
    local i
    for i in $(seq "$api_runs"); do
        curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$tmp/herdd.sock" "http://herd$1"
    done | sort -n | awk '{ v[NR] = $1 * 1000 } END {
        i50 = int(NR * 0.50 + 0.5); i99 = int(NR * 0.99 + 0.5)
        if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i99 > NR) i99 = NR
        printf "%.1f %.1f\n", v[i50], v[i99] }'
}
read -r vms50 vms99 < <(latency /v1/vms)
read -r node50 node99 < <(latency /v1/node)
hc --json node profile > "$tmp/node.json"
node_line=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); u = d["use"]; l = d["limits"]
print("committed %.1f GiB of %.1f GiB, resident %.1f GiB of %.1f GiB" % (
    u["mem"] / 2**30, l["mem_commit"] / 2**30, u["resident"] / 2**30, l["mem"] / 2**30))' \
    "$tmp/node.json" 2>/dev/null)

t0=$(now_ms)
hc range down b1k > "$tmp/down.out" 2>&1 || say "range down failed: $(tail -5 "$tmp/down.out")"
down_ms=$(( $(now_ms) - t0 ))

# nothing left
left=()
[ -z "$(vmm_pids)" ] || left+=("$(vmm_pids | wc -l) herd-vmm")
ntaps=$(ip -n "$ns" -o link show | grep -cE ': (ht-|hs[msvc]-)')
[ "$ntaps" = 0 ] || left+=("$ntaps taps")
if [ -n "$cgmnt" ]; then
    ncg=$(find "$cgmnt/herd" -mindepth 2 -maxdepth 2 -name 'vm-*' -type d 2>/dev/null | wc -l)
    [ "$ncg" = 0 ] || left+=("$ncg cgroups")
fi
ndirs=$(find "$tmp/state/vms" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
[ "$ndirs" = 0 ] || left+=("$ndirs guest directories")
nrun=$(find "$tmp/state/run" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
[ "$nrun" = 0 ] || left+=("$nrun run entries")
[ "$(hc --json vm ls)" = "[]" ] || left+=("guests still listed")

{ kill -TERM "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
herdd_pid=

say "$n guests: $ready ready, $listed listed running; ${node_line:-no node figures}"
echo "range up, $n $kind guests to all ready|$(awk -v ms="$up_ms" 'BEGIN { printf "%.1f", ms / 1000 }')|||s"
echo "range up, $n $kind guests: rate|$(awk -v n="$n" -v ms="$up_ms" 'BEGIN { printf "%.1f", n * 1000 / ms }')|||guests/s"
echo "GET /v1/vms with $n running: p50 / p99|$vms50 / $vms99|||ms"
echo "GET /v1/node with $n running: p50 / p99|$node50 / $node99|||ms"
echo "$n guests: herd-vmm Pss per guest|$(( nvmm ? pss / nvmm : 0 ))|||KiB"
echo "$n guests: host memory taken (MemAvailable)|$(( (avail0 - avail1) / 1024 ))|||MiB"
echo "$n guests: herdd RSS / open fds|$((herdd_rss / 1024)) / $herdd_fds|||MiB / fds"
echo "range down, $n guests|$(awk -v ms="$down_ms" 'BEGIN { printf "%.1f", ms / 1000 }')|||s"
if [ "$ready" != "$n" ] || [ "$listed" != "$n" ]; then
    say "FAILED: $ready of $n ready, $listed listed"
    exit 1
fi
if [ ${#left[@]} -gt 0 ]; then
    say "FAILED: left after range down: ${left[*]}"
    exit 1
fi
say "range down left nothing (no herd-vmm, tap, cgroup, guest directory or socket; none listed)"
