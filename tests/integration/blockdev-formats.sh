#!/bin/bash
# Compressed clusters (zlib, zstd) written by qemu-img read identically in
# herd; header feature bits; commit, rebase and convert against qemu-img.
set -u
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require
cd "$T"

qemu-img create -q -f raw base.raw 8M
qemu-io -f raw -c 'write -P 1 0 3M' -c 'write -P 7 5M 100k' base.raw >/dev/null
"$H" create -q -f qcow2 -b base.raw -F raw mid.qcow2
"$H" create -q -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 top.qcow2
"$H" io -c 'write -P 2 1M 100k' -c 'write -z 3M 64k' mid.qcow2 >/dev/null
"$H" io -c 'write -P 3 1050000 5000' -c 'discard 2M 1M' -c 'write -P 4 7M 8k' top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 ref.raw

# Compressed images from qemu-img read back identically.
for ct in zlib zstd; do
    for cs in 4k 64k 2M; do
        qemu-img convert -c -O qcow2 -o compression_type=$ct,cluster_size=$cs top.qcow2 c.qcow2
        "$H" convert -O raw c.qcow2 c.raw || fail "convert compressed $ct $cs"
        cmp -s c.raw ref.raw || fail "compressed $ct/$cs reads differently"
        same_output "map compressed $ct" map --output=json c.qcow2
        same_output "check compressed $ct" check --output=json c.qcow2
        "$H" io -c 'write -P 9 1M 512' c.qcow2 >/dev/null || fail "write over compressed"
        qemu-img check -q c.qcow2 || fail "check after overwriting compressed $ct/$cs"
    done
done
echo "compressed: zlib and zstd read identically"

# convert / rebase / commit against qemu-img's view.
"$H" convert -O raw top.qcow2 h.raw && cmp -s h.raw ref.raw || fail "convert -O raw"
"$H" convert -O qcow2 top.qcow2 h.qcow2 && qemu-img compare -q h.qcow2 ref.raw &&
    qemu-img check -q h.qcow2 || fail "convert -O qcow2"
cp top.qcow2 r.qcow2
"$H" rebase -b base.raw -F raw r.qcow2 && qemu-img compare -q r.qcow2 ref.raw &&
    qemu-img check -q r.qcow2 || fail "rebase"
[ "$(qemu-img info --output=json r.qcow2 | grep -c '"backing-filename": "base.raw"')" = 1 ] ||
    fail "rebase did not record the new backing file"
"$H" rebase -b '' r.qcow2 && qemu-img compare -q r.qcow2 ref.raw || fail "rebase -b ''"
sha_base=$(sha256sum < base.raw)
"$H" commit -q top.qcow2 || fail "commit"
qemu-img compare -q mid.qcow2 ref.raw && qemu-img compare -q top.qcow2 ref.raw &&
    qemu-img check -q mid.qcow2 && qemu-img check -q top.qcow2 || fail "commit result"
[ "$(sha256sum < base.raw)" = "$sha_base" ] || fail "commit touched the grandparent"
echo "convert/rebase/commit: identical to qemu-img's view"

# Feature bits.
setbits() { # file offset 8-byte-hex
    printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
"$H" create -q -f qcow2 f.qcow2 1M
cp f.qcow2 corrupt.qcow2; setbits corrupt.qcow2 72 0000000000000002
"$H" io -c 'write 0 512' corrupt.qcow2 >/dev/null 2>&1 && fail "wrote an image marked corrupt"
"$H" io -r -c 'read 0 512' corrupt.qcow2 >/dev/null || fail "corrupt image must open read-only"
"$H" info --output=json corrupt.qcow2 | grep -q '"corrupt": true' || fail "corrupt flag not shown"
cp f.qcow2 unknown.qcow2; setbits unknown.qcow2 72 0000000000000100
out=$("$H" io -r -c 'read 0 512' unknown.qcow2 2>&1) && fail "opened unknown incompatible bit"
[ "$out" = "herd-img: can't open device unknown.qcow2: Unsupported qcow2 feature(s): Unknown incompatible feature: 100" ] ||
    fail "no precise message for unknown bit: $out"
out=$("$H" info unknown.qcow2 2>&1) && fail "info opened unknown incompatible bit"
[ "$out" = "herd-img: Could not open 'unknown.qcow2': Unsupported qcow2 feature(s): Unknown incompatible feature: 100" ] ||
    fail "no precise message for unknown bit: $out"
cp f.qcow2 ac.qcow2; setbits ac.qcow2 88 8000000000000001; setbits ac.qcow2 80 8000000000000000
"$H" io -c 'write -P 5 0 512' ac.qcow2 >/dev/null || fail "unknown autoclear/compat bits refused"
[ "$(xxd -s 88 -l 8 -p ac.qcow2)" = 0000000000000000 ] || fail "autoclear bits not cleared"
[ "$(xxd -s 80 -l 8 -p ac.qcow2)" = 8000000000000000 ] || fail "compatible bits changed"
qemu-img check -q ac.qcow2 || fail "check after autoclear"
echo "feature bits: corrupt read-only, unknown incompatible refused, autoclear cleared"
echo PASS
