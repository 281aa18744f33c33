#!/bin/bash
# herd-test-needs: kvm
# Crash test through herd-vmm's asynchronous disk path (blockdev's worker
# thread runs the allocating writes with their copy-on-write, the flushes,
# write-zeroes and discards; mapped writes run on the I/O thread): the
# probe writes its pattern over a fresh qcow2 overlay with 32 requests of
# 4 KiB in flight (every first write to a 64 KiB cluster allocates), flushes,
# reads back, writes zeroes, discards and rewrites; herd-vmm is killed with
# SIGKILL at a different moment each round. Then:
#  - qemu-img check exits 0 or 3 (leaked clusters only), never 2;
#  - when the console shows that the write pass and its flush completed,
#    every byte the later steps do not touch holds the pattern (cmp against
#    mkpattern's image; the write-zeroes and discard ranges may hold either);
#  - herd-img check -r leaks leaves qemu-img check clean (exit 0);
#  - a herd-vmm started on the image at once after a kill (as herdd's
#    supervisor restarts a guest) opens it and runs: the dead one's io_uring
#    keeps the file, and so its lock, for a moment (blockdev's lock_wait_ms).
# HERD_CRASH_ROUNDS (default 12) sets the number of kills.
#
# Exit 0 pass, 77 skip, else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
probe=$build/firmware/herd-probe.elf
mkpattern=$build/firmware/mkpattern
vmm=${HERD_VMM:-$build/bin/herd-vmm}
img=$build/bin/herd-img
rounds=${HERD_CRASH_ROUNDS:-12}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if ! command -v qemu-img >/dev/null 2>&1; then
    echo "skip: qemu-img is not installed"
    exit 77
fi
for f in "$vmm" "$img" "$mkpattern" "$probe"; do
    [ -e "$f" ] || { echo "FAIL: $f not built (run make first)"; exit 1; }
done

tmp=$(mktemp -d /tmp/vmm-disk-crash.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

MiB=1048576
truncate -s 16M "$tmp/parent.raw"
"$mkpattern" fill "$tmp/want.raw" 16M 7 || exit 1
# [start, end) ranges the probe's write pass owns alone: outside the
# write-zeroes range [2.5, 3.5) MiB and the discard range [4, 5) MiB.
kept="0:$((MiB * 5 / 2)) $((MiB * 7 / 2)):$((MiB * 4)) $((MiB * 5)):$((MiB * 16))"

flushed=0 leaky=0
for r in $(seq 1 "$rounds"); do
    rm -f "$tmp/o.qcow2" "$tmp/o.raw"
    "$img" create -q -f qcow2 -b "$tmp/parent.raw" -F raw "$tmp/o.qcow2" || exit 1
    "$vmm" --kernel "$probe" --mem 64M --disk "path=$tmp/o.qcow2,format=qcow2" \
        --cmdline "probe.tests=blk probe.blk.seed=7 probe.blk.chunk=4K probe.blk.depth=32" \
        </dev/null > "$tmp/con" 2>&1 &
    pid=$!
    # from before the guest's first write (~20 ms) to after its last step
    # (~150 ms on the 2-core dev machine)
    sleep "$(printf '0.%03d' $(( 20 + (r * 53) % 150 )))"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # The image stays locked a moment after the process is gone: the
    # kernel tears the io_uring ring down, and so closes its registered
    # files, from a worker after the exit.
    for _ in $(seq 100); do
        qemu-img check -q "$tmp/o.qcow2" > "$tmp/check" 2>&1
        rc=$?
        grep -q 'lock' "$tmp/check" || break
        sleep 0.02
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        fail "round $r: qemu-img check exit $rc after the kill"
        head -5 "$tmp/check"
        continue
    fi
    [ "$rc" -eq 3 ] && leaky=$((leaky + 1))
    if grep -q 'blk: wrote the whole disk' "$tmp/con"; then
        flushed=$((flushed + 1))
        qemu-img convert -f qcow2 -O raw "$tmp/o.qcow2" "$tmp/o.raw" || exit 1
        for range in $kept; do
            s=${range%:*} e=${range#*:}
            cmp -s -i "$s" -n "$((e - s))" "$tmp/o.raw" "$tmp/want.raw" ||
                fail "round $r: flushed data lost in [$s, $e) (the flush had completed)"
        done
    fi
    "$img" check -q -r leaks "$tmp/o.qcow2" > /dev/null 2>&1
    qemu-img check -q "$tmp/o.qcow2" > /dev/null 2>&1 ||
        fail "round $r: still not clean after herd-img check -r leaks"
done
echo "$rounds kills: $flushed after the flushed write pass, $leaky left leaked clusters (all repaired)"

# Restart at once after a kill, five times.
for r in 1 2 3 4 5; do
    "$vmm" --kernel "$probe" --mem 64M --disk "path=$tmp/o.qcow2,format=qcow2" \
        --cmdline "probe.tests=blk probe.blk.seed=9 probe.blk.chunk=4K probe.blk.depth=32" \
        </dev/null > "$tmp/con" 2>&1 &
    pid=$!
    sleep 0.06
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    "$vmm" --kernel "$probe" --mem 64M --disk "path=$tmp/o.qcow2,format=qcow2" \
        --cmdline "probe.tests=blk probe.blk.seed=9" </dev/null > "$tmp/con2" 2>&1
    rc=$?
    [ "$rc" -eq 1 ] || { fail "restart $r at once after a kill: exit $rc"; tail -3 "$tmp/con2"; }
done
[ "$flushed" -gt 0 ] || fail "no round got past the flushed write pass: the kill times say nothing"
[ "$flushed" -lt "$rounds" ] || fail "every round got past the write pass: no kill hit the writes"
if [ "$failures" -ne 0 ]; then
    echo "vmm-disk-crash: $failures check(s) failed"
    exit 1
fi
echo "vmm-disk-crash: all checks passed"
