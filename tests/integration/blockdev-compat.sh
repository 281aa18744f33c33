#!/bin/bash
# herd-img against qemu-img as the oracle: identical bytes from create,
# identical info/map/check JSON, herd's writes pass qemu-img check and read
# back in qemu-io, qemu's writes read back in herd.
set -u
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require
cd "$T"

# create: byte-identical files.
for cs in 512 4096 65536 2M; do
    for size in 0 1M 100M 8G; do
        for b in "" "-b base.raw -F raw"; do
            [ -f base.raw ] || qemu-img create -q -f raw base.raw 4M
            "$H" create -q -f qcow2 -o cluster_size=$cs $b h.qcow2 $size || fail "create $cs $size"
            qemu-img create -q -f qcow2 -o cluster_size=$cs $b q.qcow2 $size
            cmp -s h.qcow2 q.qcow2 || fail "create cs=$cs size=$size '$b': bytes differ"
        done
    done
done
"$H" create -q -f qcow2 -o compression_type=zstd h.qcow2 1G
qemu-img create -q -f qcow2 -o compression_type=zstd q.qcow2 1G
cmp -s h.qcow2 q.qcow2 || fail "create zstd: bytes differ"
echo "create: byte-identical"

# A 3-deep chain written by herd: raw base, 64K mid, 4K top (larger than base).
qemu-io -f raw -c 'write -P 0xaa 0 64k' -c 'write -P 0xbb 1M 4k' base.raw >/dev/null
sha_base=$(sha256sum < base.raw)
"$H" create -q -f qcow2 -b base.raw -F raw mid.qcow2
"$H" create -q -f qcow2 -o cluster_size=4096 -b mid.qcow2 -F qcow2 top.qcow2 8M
"$H" io -f qcow2 -c 'write -P 0x11 8k 4k' -c 'write -z 64k 64k' -c 'write -P 0x22 3M 100' \
    mid.qcow2 >/dev/null || fail "io mid"
sha_mid=$(sha256sum < mid.qcow2)
"$H" io -f qcow2 -c 'write -P 0x33 6M 4k' -c 'discard 1M 4k' -c 'write -P 0x44 4190208 8k' \
    -c 'write -z -u 7M 1M' top.qcow2 >/dev/null || fail "io top"
[ "$(sha256sum < base.raw)" = "$sha_base" ] || fail "parent base.raw changed"
[ "$(sha256sum < mid.qcow2)" = "$sha_mid" ] || fail "parent mid.qcow2 changed"

for f in mid.qcow2 top.qcow2; do
    qemu-img check -q "$f" || fail "qemu-img check $f"
    same_output "info $f" info --output=json "$f"
    same_output "info human $f" info "$f"
    same_output "check $f" check --output=json "$f"
    same_output "check human $f" check "$f"
    same_output "map $f" map --output=json "$f"
done
same_output "info chain" info --output=json --backing-chain top.qcow2
same_output "info chain human" info --backing-chain top.qcow2
same_output "map raw" map --output=json -f raw base.raw
echo "info/map/check: identical"

qemu-io -f qcow2 -c 'read -P 0xaa 0 8k' -c 'read -P 0x11 8k 4k' -c 'read -P 0 64k 64k' \
    -c 'read -P 0x22 3M 100' -c 'read -P 0 1M 4k' -c 'read -P 0x44 4190208 8k' \
    -c 'read -P 0 4198400 2093056' -c 'read -P 0x33 6M 4k' -c 'read -P 0 7M 1M' \
    top.qcow2 > qio.out || { cat qio.out; fail "qemu-io does not read herd's writes back"; }
grep -q 'verification failed' qio.out && fail "pattern mismatch in qemu-io read-back"

# qemu's writes read back in herd.
qemu-img create -q -f qcow2 -o cluster_size=16k -b base.raw -F raw q.qcow2
qemu-io -f qcow2 -c 'write -P 0x55 100k 40k' -c 'write -z 0 16k' -c 'write -P 0x66 3M 1k' \
    q.qcow2 >/dev/null
"$H" io -f qcow2 -c 'read -P 0 0 16k' -c 'read -P 0xaa 16k 48k' -c 'read -P 0x55 100k 40k' \
    -c 'read -P 0xbb 1M 4k' -c 'read -P 0x66 3M 1k' q.qcow2 > hio.out ||
    { cat hio.out; fail "herd does not read qemu's writes back"; }
same_output "map qemu image" map --output=json q.qcow2

# Backing format is never probed: hide the format extension (unknown type).
"$H" create -q -f qcow2 -b base.raw -F raw noformat.qcow2
printf '\x12\x34\x56\x78' | dd of=noformat.qcow2 bs=1 seek=112 conv=notrunc status=none
"$H" io -f qcow2 -c 'read 0 4k' noformat.qcow2 >/dev/null 2>&1 &&
    fail "opened a backing file without a format"
"$H" info --output=json noformat.qcow2 | grep -q backing-filename-format &&
    fail "info invented a backing format"
qemu-img check -q noformat.qcow2 || fail "unknown extension broke the image"

# Locks: qemu-img refuses to write what herd holds open for writing.
mkfifo cmds
"$H" io -f qcow2 top.qcow2 < cmds > /dev/null &
hpid=$!
exec 3> cmds
sleep 0.3
qemu-io -f qcow2 -c 'write 0 512' top.qcow2 >/dev/null 2>&1 && fail "qemu-io wrote an image herd holds"
qemu-img info -U top.qcow2 >/dev/null || fail "qemu-img info -U refused"
"$H" io -f qcow2 -r -c 'read 0 512' mid.qcow2 >/dev/null || fail "second reader of a parent refused"
echo quit >&3
exec 3>&-
wait_bounded $hpid 30
echo "locks: qemu-io refused while herd writes; parents shared"
echo "PASS"
