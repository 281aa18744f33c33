#!/bin/bash
# blockdev rows for `make bench`: herd-img bench vs qemu-img bench on the same
# qcow2 overlay over a 1 GiB raw parent (4 KiB requests, queue depth 32,
# O_DIRECT, a 7 MiB+ 4K-aligned step that spreads requests over the disk), fio on the raw
# parent as the ceiling, and overlay creation time vs qemu-img create.
# The overlay rows again on memory (a tmpfs, O_DIRECT there since Linux 6.6)
# where one with 4 GiB free is at /dev/shm (BENCH_BLOCKDEV_MEMORY=0: not):
# on the dev machine's virtual disk the allocated and read rows are bound by
# the disk (both tools send it the same requests, docs/SPECIFICATION.md), so
# only the memory rows tell the tools' own cost apart. No fio row there: on
# tmpfs every read goes to io-wq for both, which compares submission
# batching, not the file.
# Rows: metric|herd|peer|peer name|unit (lower is better).
set -u
H=${HERD_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}/bin/herd-img
command -v qemu-img >/dev/null && [ -x "$H" ] || exit 0
N=${HERD_BENCH_BLOCKDEV_COUNT:-100000}
opts="-c $N -d 32 -s 4k -S 7348224 -t none"
dir=$(mktemp -d "${HERD_BENCH_DIR:-/var/tmp}/herd-bench-blockdev.XXXXXX")
mem=
trap 'rm -rf "$dir" ${mem:+"$mem"}' EXIT

secs() { sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'; }
# Each figure is the median of RUNS rounds (default 3), herd and qemu-img
# alternating on fresh overlays, so that a slow spell of a shared host hits
# both: single runs here vary by +-30 %.
runs=${BENCH_RUNS_BLOCKDEV:-3}
median() { sort -n | awk '{a[NR] = $1} END {print NR ? a[int((NR + 1) / 2)] : 0}'; }
# Each timed run starts after a sync: the run before it (the other tool's,
# in this order) leaves its image's metadata dirty in the page cache, and
# its writeback would otherwise land in the next run's time.
hb() { sync; "$H" bench "$@" | secs; }
qb() { sync; qemu-img bench "$@" | secs; }

# The 1 GiB parent, filled, in the current directory.
make_parent() {
    qemu-img create -q -f raw parent.raw 1G
    qemu-io -f raw -c 'write -P 0x3c 0 1G' parent.raw >/dev/null
}

# The three overlay rows (read, fresh-overlay write, allocated write) in the
# current directory; $1 is added to each row's name.
overlay_rows() {
    rm -f h.* q.*
    for _ in $(seq "$runs"); do
        for t in h q; do
            rm -f $t.qcow2
            "$H" create -q -f qcow2 -b parent.raw -F raw $t.qcow2
        done
        hb -f qcow2 $opts h.qcow2 >> h.read
        qb -f qcow2 $opts -i io_uring q.qcow2 >> q.read
        hb -f qcow2 $opts -w h.qcow2 >> h.fresh
        qb -f qcow2 $opts -w -i io_uring q.qcow2 >> q.fresh
        hb -f qcow2 $opts -w h.qcow2 >> h.alloc
        qb -f qcow2 $opts -w -i io_uring q.qcow2 >> q.alloc
    done
    rm -f h.qcow2 q.qcow2
    echo "blockdev 4K read qd32 O_DIRECT, overlay$1, $N reqs|$(median < h.read)|$(median < q.read)|qemu-img bench|s"
    echo "blockdev 4K write qd32 O_DIRECT, fresh overlay$1, $N reqs|$(median < h.fresh)|$(median < q.fresh)|qemu-img bench|s"
    echo "blockdev 4K write qd32 O_DIRECT, allocated$1, $N reqs|$(median < h.alloc)|$(median < q.alloc)|qemu-img bench|s"
}

cd "$dir"
make_parent
overlay_rows ""
if command -v fio >/dev/null; then
    for _ in $(seq "$runs"); do
        hb -f raw $opts parent.raw >> h.raw
        sync
        fio --name=ceil --filename=parent.raw --rw=randread --bs=4k --iodepth=32 --direct=1 \
            --ioengine=io_uring --number_ios="$N" --size=1G --output-format=terse 2>/dev/null |
            awk -F';' '$9 > 0 { printf "%.3f\n", $9 / 1000 }' >> f.raw
    done
    [ -s f.raw ] && echo "blockdev 4K read qd32 O_DIRECT, raw parent, $N reqs|$(median < h.raw)|$(median < f.raw)|fio randread (ceiling)|s"
fi
t0=$(date +%s%N)
for i in $(seq 100); do "$H" create -q -f qcow2 -b parent.raw -F raw c$i.qcow2; done
t1=$(date +%s%N)
for i in $(seq 100); do qemu-img create -q -f qcow2 -b parent.raw -F raw d$i.qcow2; done
t2=$(date +%s%N)
echo "blockdev overlay create (mean of 100)|$(( (t1 - t0) / 100000 ))|$(( (t2 - t1) / 100000 ))|qemu-img create|us"

# The overlay rows on memory, when a tmpfs takes O_DIRECT and has the room
# (the parent and two overlays: 3 GiB).
shm_room() {
    [ "${BENCH_BLOCKDEV_MEMORY:-1}" != 0 ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
        [ "$(df -k --output=avail /dev/shm | tail -1)" -gt $((4 << 20)) ] &&
        dd if=/dev/zero of=/dev/shm/herd-bench-odirect bs=4k count=1 oflag=direct 2>/dev/null
    local ok=$?
    rm -f /dev/shm/herd-bench-odirect
    return $ok
}
if shm_room; then
    rm -rf "$dir"
    mem=$(mktemp -d /dev/shm/herd-bench-blockdev.XXXXXX)
    cd "$mem" && make_parent && overlay_rows ", memory"
fi
