#!/bin/bash
# Differential test: one seeded random sequence of writes, write-zeroes,
# discards and flushes (sub-cluster and cross-cluster) applied by herd-img io
# to one copy of a 3-deep chain and by qemu-io to another; the results must
# compare identical, herd's overlay must check clean, parents must not change.
# Repeated for 512 B, 4 KiB, 64 KiB and 2 MiB clusters.
# HERD_DIFF_OPS (default 2500) and HERD_DIFF_SEED (default 1) tune it.
set -u
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require awk
cd "$T"
ops=${HERD_DIFF_OPS:-2500}
seed=${HERD_DIFF_SEED:-1}

gen_ops() { # seed cluster size
    awk -v seed="$1" -v cs="$2" -v size="$3" -v n="$ops" 'BEGIN {
        srand(seed);
        for (i = 0; i < n; i++) {
            r = rand();
            if (rand() < 0.5) off = int(rand() * (size / 512)) * 512;
            else off = int(rand() * size);
            k = rand();
            if (k < 0.4) len = 1 + int(rand() * 1024);
            else if (k < 0.8) len = 1 + int(rand() * cs * 2);
            else len = cs * (1 + int(rand() * 3));
            if (len > 262144) len = 1 + int(rand() * 262144);
            if (off + len > size) len = size - off;
            if (len < 1) continue;
            if (r < 0.55) printf "write -P %d %d %d\n", 1 + int(rand() * 254), off, len;
            else if (r < 0.70) printf "write -z %d %d\n", off, len;
            else if (r < 0.78) printf "write -z -u %d %d\n", off, len;
            else if (r < 0.92) printf "discard %d %d\n", off, len;
            else print "flush";
        }
    }'
}

run_case() { # cluster size, virtual size
    local cs=$1 size=$2
    rm -rf h q && mkdir h q
    qemu-img create -q -f raw h/base.raw $((size / 2))
    qemu-io -f raw -c "write -P 0x61 0 $((size / 4))" -c "write -P 0x62 $((size / 3)) 65536" \
        h/base.raw >/dev/null
    "$H" create -q -f qcow2 -o cluster_size=$cs -b base.raw -F raw h/mid.qcow2 $((size * 3 / 4))
    gen_ops $((seed + 1000)) "$cs" $((size * 3 / 4)) | head -n 200 | \
        "$H" io -f qcow2 h/mid.qcow2 > mid.log || { grep -v -e ^wrote -e ^discard -e ops mid.log | head; fail "cs=$cs: preparing mid"; }
    "$H" create -q -f qcow2 -o cluster_size=$cs -b mid.qcow2 -F qcow2 h/top.qcow2 $size
    cp h/base.raw h/mid.qcow2 h/top.qcow2 q/
    local sb sm
    sb=$(sha256sum < h/base.raw) sm=$(sha256sum < h/mid.qcow2)
    gen_ops "$seed" "$cs" "$size" > ops
    "$H" io -f qcow2 h/top.qcow2 < ops > h.log || fail "cs=$cs: herd-img io failed"
    qemu-io -f qcow2 q/top.qcow2 < ops > q.log || fail "cs=$cs: qemu-io failed"
    qemu-img compare -q -f qcow2 -F qcow2 h/top.qcow2 q/top.qcow2 ||
        fail "cs=$cs: herd and qemu results differ"
    qemu-img check -q h/top.qcow2 || fail "cs=$cs: qemu-img check on herd's overlay"
    "$H" check -q h/top.qcow2 || fail "cs=$cs: herd-img check on herd's overlay"
    [ "$(sha256sum < h/base.raw)" = "$sb" ] && [ "$(sha256sum < h/mid.qcow2)" = "$sm" ] ||
        fail "cs=$cs: a parent changed"
    # herd reads qemu's result identically.
    "$H" convert -f qcow2 -O raw q/top.qcow2 q.raw 2>/dev/null &&
        qemu-img convert -f qcow2 -O raw q/top.qcow2 q2.raw &&
        { cmp -s q.raw q2.raw || fail "cs=$cs: herd reads qemu's image differently"; }
    echo "cs=$cs: $(wc -l < ops) ops identical, check clean"
}

run_case 512 $((4 << 20))
run_case 4096 $((16 << 20))
run_case 65536 $((64 << 20))
run_case 2097152 $((64 << 20))
echo PASS
