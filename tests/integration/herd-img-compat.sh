#!/bin/bash
# herd-img against qemu-img/qemu-io on the semantics QEMU's iotests found
# wrong (issue 13): safe rebase keeps sharing per cluster (024, 252), bad
# qemu-io pattern bytes are refused (021), commit of zero clusters frees the
# parent's clusters (313), a backing chain loop is named (043), a size given
# twice is refused (049); and qemu-io's number formatting and its EIO for
# requests past the end; the rest of qemu-io's commands (vectored, aio,
# alloc, map, open/close, write -c, truncate), protocol drivers in open -o
# (226) and info --image-opts (279); bench's --pattern and report. Each case
# runs the real tool on the same input and compares.
set -u
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require
cd "$T"

# Same stdout+stderr and exit status from `herd-img io` and qemu-io, the
# timing part of the report lines masked as QEMU's _filter_qemu_io does.
io_filter() {
    sed -e 's/^herd-img:/qemu-io:/' \
        -e 's/^\([0-9]*,[0-9]*\),[0-9]*:[0-9:.]*,[0-9.inf]*,[0-9.inf]*$/\1,TIME/' \
        -e 's/[0-9]* ops; [0-9/:. sec]* ([0-9/.inf]* [EPTGMKiBbytes]*\/sec and [0-9/.inf]* ops\/sec)/X ops; XX:XX:XX.X (XXX YYY\/sec and XXX ops\/sec)/'
}
same_io() {
    local what=$1 himg=$2 qimg=$3; shift 3
    "$H" io "$@" "$himg" > h.io 2>&1; local hr=$?
    qemu-io "$@" "$qimg" > q.io 2>&1; local qr=$?
    io_filter < h.io > h.iof; io_filter < q.io > q.iof
    [ "$hr" = "$qr" ] || fail "$what: exit herd=$hr qemu-io=$qr"
    diff -u q.iof h.iof || fail "$what: output differs"
}
# Allocation map of the top layer only (depth 0), as qemu-img sees it.
top_map() { qemu-img map --output=json -f qcow2 "$1" | grep '"depth": 0' | sed 's/, "offset": [0-9]*//'; }

# 1. Safe rebase compares and copies cluster by cluster (024, 252).
# Old and new backing agree everywhere but 64k+512 bytes, 1000k..1100k and
# past the new one's end (3M): only the clusters holding those differences
# may become allocated in the overlay.
qemu-img create -q -f qcow2 old.qcow2 4M
qemu-img create -q -f qcow2 new.qcow2 3M
qemu-io -c 'write -P 0xa 0 4M' old.qcow2 >/dev/null
qemu-io -c 'write -P 0xa 0 3M' -c 'write -P 0xb 64k 512' -c 'write -P 0xc 1000k 100k' \
    new.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b old.qcow2 -F qcow2 h.qcow2
qemu-io -c 'write -P 0xd 2M 64k' h.qcow2 >/dev/null
cp h.qcow2 q.qcow2
"$H" rebase -b new.qcow2 -F qcow2 h.qcow2 || fail "rebase"
qemu-img rebase -b new.qcow2 -F qcow2 q.qcow2
qemu-img check -q h.qcow2 || fail "rebase: qemu-img check"
qemu-img compare -q h.qcow2 q.qcow2 || fail "rebase: content differs from qemu-img rebase"
top_map h.qcow2 > h.map; top_map q.qcow2 > q.map
diff -u q.map h.map || fail "rebase: allocation differs from qemu-img rebase"
# The cluster at 0 agrees in both backing files: still shared, not copied.
qemu-img map --output=json h.qcow2 | head -1 | grep -q '"start": 0, "length": 65536, "depth": 1' ||
    fail "rebase: cluster 0 (equal in both backing files) was copied into the overlay"
# Nothing allocated where the backing files agree (4M image: 64k + 192k + 64k + 1M).
[ "$(wc -l < h.map)" = 4 ] || fail "rebase: unexpected allocation: $(cat h.map)"
echo "rebase: per-cluster, as qemu-img"

# 2. Pattern bytes qemu-io refuses (021): message, exit status, image unchanged.
qemu-img create -q -f qcow2 h.qcow2 1M
qemu-img create -q -f qcow2 q.qcow2 1M
for p in 300 -1 256 12m route66 0x100; do
    sum=$(sha256sum < h.qcow2)
    same_io "write -P $p" h.qcow2 q.qcow2 -c "write -P $p 0 512"
    grep -qx -- "$p is not a valid pattern byte" h.io || fail "write -P $p: $(cat h.io)"
    [ "$(sha256sum < h.qcow2)" = "$sum" ] || fail "write -P $p changed the image"
    same_io "read -P $p" h.qcow2 q.qcow2 -c "read -P $p 0 512"
done
# A refused command does not stop the next one; the exit status stays 1.
same_io "bad then good" h.qcow2 q.qcow2 -c 'write -P 300 0 512' -c 'write -P 0x20 0 512' \
    -c 'write -P 010 512 512'
qemu-io -c 'read -P 0x20 0 512' -c 'read -P 8 512 512' h.qcow2 > qio.out ||
    { cat qio.out; fail "pattern bytes 0x20 / 010 not written as qemu-io writes them"; }
echo "io -P: patterns as qemu-io"

# 3. commit writes zero clusters without a host offset into the parent (313).
for t in h q; do
    qemu-img create -q -f qcow2 -o cluster_size=4096 $t.base 1M
    qemu-io -c 'write -P 1 0 1M' $t.base >/dev/null
    qemu-img create -q -f qcow2 -o cluster_size=4096 -b $t.base -F qcow2 $t.qcow2
    qemu-io -c 'write -z 0 256k' -c 'write -z -u 512k 64k' -c 'write -z 700k 6k' \
        -c 'write -P 2 900k 4k' $t.qcow2 >/dev/null
done
"$H" commit -q h.qcow2 || fail "commit"
qemu-img commit -q q.qcow2
qemu-img check -q h.base || fail "commit: qemu-img check"
qemu-img compare -q h.base q.base || fail "commit: content differs from qemu-img commit"
qemu-img map --output=json h.base > h.map; qemu-img map --output=json q.base > q.map
diff -u q.map h.map || fail "commit: parent's map differs from qemu-img commit's"
grep '"zero": true' h.map | grep -q offset && fail "commit: zero clusters kept host clusters"
grep -q '"start": 0, "length": 262144, .*"zero": true, "data": false}' h.map ||
    fail "commit: no zero clusters at 0..256k"
echo "commit: zero clusters as qemu-img"

# 4. A backing chain loop is named, nothing printed (043).
qemu-img create -q -f qcow2 self.qcow2 1M
qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2
qemu-img create -q -f qcow2 a.qcow2 1M
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2
qemu-img rebase -u -b b.qcow2 -F qcow2 a.qcow2
qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 c.qcow2 1M
for f in self.qcow2 a.qcow2 c.qcow2 "$T/c.qcow2" ./b.qcow2; do
    same_output "info --backing-chain $f" info --backing-chain "$f"
    same_output "info --backing-chain json $f" info --backing-chain --output=json "$f"
    grep -q 'creates an infinite loop' "$T/h.out" || fail "no loop named for $f"
done
echo "info --backing-chain: loops named as qemu-img"

# 5. A size given both in -o and as an argument is refused (049).
for args in "-f qcow2 -o size=10M x.img 20M" "-f raw -o size=1M x.img 1M" \
            "-f qcow2 -o cluster_size=4k,size=1M -o compat=v3 x.img 2M"; do
    rm -f x.img
    # shellcheck disable=SC2086
    "$H" create $args > h.out 2>&1 && fail "create $args: accepted"
    [ -e x.img ] && fail "create $args: made the file"
    # shellcheck disable=SC2086
    qemu-img create $args > q.out 2>&1
    sed -i 's/^herd-img:/qemu-img:/' h.out
    diff -u q.out h.out || fail "create $args: message differs"
done
"$H" create -q -f qcow2 -o size=10M -o size=20M x.img || fail "create -o size twice"
[ "$(qemu-img info --output=json x.img | grep virtual-size)" = '    "virtual-size": 20971520,' ] ||
    fail "create: the last -o size does not win"
echo "create: size given twice refused as qemu-img"

# 6. qemu-io's report lines and its EIO for requests past the end.
qemu-img create -q -f qcow2 h.qcow2 1M
qemu-img create -q -f qcow2 q.qcow2 1M
same_io "report lines" h.qcow2 q.qcow2 -c 'write -P 1 0 1536' -c 'write 0 1024000' \
    -c 'read 1000 1000000' -c 'read 0 1023' -c 'write -z 0 4k' -c 'write 0 0' -c 'read 64k 960k'
same_io "past the end" h.qcow2 q.qcow2 -c 'read 1M 512' -c 'read 1020k 8k' -c 'write 2M 4k' \
    -c 'write -z 1020k 8k' -c 'discard 1020k 8k' -c 'read 1M 0' -c 'read 2M 0' -c 'read 0 512'
# Offsets and lengths as qemu's size parser takes them, and its messages.
same_io "numbers" h.qcow2 q.qcow2 -c 'read 010 1' -c 'read 0x10 1' -c 'read 1.5 1' \
    -c 'read 0.5k 1' -c 'read .5k 1' -c 'read 1kb 1' -c 'read 0x 1' -c 'read 1e3 1' \
    -c 'read 18446744073709551615 1' -c 'read 16383P 1' -c 'read 0.0001k 1' -c 'read 1b 1' \
    -c 'read 0 2G' -c 'write 0 2G' -c 'discard 0 2g'
# The same size syntax in create.
for sz in 1e3 1.5 16E 0x1.5k; do
    same_output "create size $sz" create -q -f raw s.img "$sz"
done
# Usage errors (stderr, before the buffered stdout, as qemu-io writes them).
same_io "usage" h.qcow2 q.qcow2 -c 'read 0' -c 'discard -x 0 1' -c 'write 0 1 2' -c 'flush 1' \
    -c 'read -1 1' -c 'nosuchcmd' -c 'read 0 1'
qemu-img create -q -f raw h.raw 1000
cp h.raw q.raw
same_io "raw past the end" h.raw q.raw -f raw -c 'read 0 1000' -c 'read 512 1000'
echo "io: report lines and EIO as qemu-io"
# 7. The rest of qemu-io's commands: vectored and aio I/O, read -s/-l,
# alloc, map, length, open/close, -C, --image-opts; output, exit status and
# the image content as qemu-io leaves them.
for t in h q; do
    qemu-img create -q -f qcow2 $t.base 1M
    qemu-io -c 'write -P 7 0 1M' $t.base >/dev/null
    qemu-img create -q -f qcow2 -b $t.base -F qcow2 $t.qcow2
done
same_io "vectored" h.qcow2 q.qcow2 -c 'writev -P 3 0 512 1k' -c 'readv -P 3 0 512 1k' \
    -c 'readv -P 4 0 512' -c 'readv 0 511 1' -c 'readv 0 1x' -c 'readv 1M 512' -c 'writev 0' \
    -c 'readv -v 0 16 16' -c 'writev -q 64k 4k 0 4k' -c 'readv 0 2G' -c 'readv 0 1G 1G' \
    -c 'readv 0 -1' -c 'writev -z 0 512' -c 'writev 2M 512' -c 'writev -C 0 512'
# Each aio request completes before the next command (qemu-io's own
# completion order is otherwise its event loop's).
aio=()
for c in 'aio_write -P 5 128k 4k' 'aio_read -P 5 128k 2k 2k' 'aio_read -P 6 128k 512' \
    'aio_read 1M 512' 'aio_write -z -u 192k 64k' 'aio_write -z 0 512 512' 'aio_write -u 0 512' \
    'aio_write -z -P 1 0 512' 'aio_write 2M 512' 'aio_write -i 0 512' 'aio_read -i 0 512' \
    'aio_flush 1' 'aio_write -P 300 0 512' 'aio_write -C -P 8 256k 512 512'; do
    aio+=(-c "$c" -c aio_flush)
done
same_io "aio" h.qcow2 q.qcow2 "${aio[@]}"
same_io "read -s/-l" h.qcow2 q.qcow2 -c 'read -P 5 -s 512 -l 1k 128k 4k' \
    -c 'read -P 5 -s 3k -l 2k 128k 4k' -c 'read -s 1 128k 4k' -c 'read -P 7 -s 4k 60k 8k' \
    -c 'read -P 7 -s 4k -l 0 60k 8k' -c 'read -P 7 -l 1x 0 1' -c 'read -P 0 -s 8k 0 4k' \
    -c 'read -v -P 5 -s 16 -l 16 128k 40' -c 'write -n 0 512' -c 'write -z -P 1 0 1' \
    -c 'write -u 0 1' -c 'write -f -P 9 300k 1' -c 'read -C 0 512'
same_io "alloc/map/length" h.qcow2 q.qcow2 -c 'alloc 0' -c 'alloc 0 256k' -c 'alloc 1 512' \
    -c 'alloc 0 1000' -c 'alloc 2M' -c 'alloc 0 2T' -c 'alloc 0 1x' -c 'alloc -1' -c 'alloc' \
    -c 'alloc 1 2 3' -c 'map' -c 'map 1' -c length -c 'length 1' -c 'a 64k' -c 'l'
qemu-img compare -q h.qcow2 q.qcow2 || fail "io: content differs from qemu-io's"
qemu-img check -q h.qcow2 || fail "io: qemu-img check"
# Allocation (not host placement) as qemu-io's own map sees it.
qemu-io -r -c map h.qcow2 > h.map; qemu-io -r -c map q.qcow2 > q.map
diff -u q.map h.map || fail "io: allocation differs from qemu-io's"
same_io "open/close" h.qcow2 q.qcow2 -c close -c 'read 0 1' -c 'map' -c 'open -r h.qcow2' \
    -c 'read -P 3 0 512' -c 'write 0 1' -c 'writev 0 512' -c 'open h.qcow2' -c close -c open \
    -c 'close 1' -c 'open -x h.qcow2' -c 'open a b' -c 'open -o driver=raw h.qcow2' -c length \
    -c close -c 'open nofile' -c 'open -o bogus=1 h.qcow2' -c 'alloc 0'
sed -i 's/q\.qcow2/h.qcow2/' q.io q.iof 2>/dev/null # both opened h.qcow2 by name above
same_io "no image" h.qcow2 q.qcow2 -c 'open -U -o driver=qcow2 h.qcow2' -c 'alloc 0 1M' -c map
"$H" io -c 'read 0 1' > h.io 2>&1; hr=$?; qemu-io -c 'read 0 1' > q.io 2>&1; qr=$?
[ "$hr/$(cat h.io)" = "$qr/$(cat q.io)" ] || fail "io without an image: $(cat h.io)"
same_io "-r" h.qcow2 q.qcow2 -r -c 'write 0 1' -c 'read -P 3 0 1'
same_io "image-opts" "driver=qcow2,file.filename=h.qcow2" "driver=qcow2,file.filename=q.qcow2" \
    --image-opts -c 'read -P 3 0 512' -c 'alloc 0 128k'
same_io "missing" nofile nofile -c 'read 0 1'
echo "io: vectored, aio, alloc, map, length, open/close as qemu-io"
# 8. Unknown incompatible features named from the image's feature table,
# the nameless rest as a hex mask (qemu's wording).
qemu-img create -q -f qcow2 feat.qcow2 1M
# Table entry 9 ("raw external data", autoclear bit 1) becomes incompatible bit 9.
printf '\x00\x09' | dd of=feat.qcow2 bs=1 seek=$((0x1c8)) conv=notrunc status=none
printf '\x80\x00\x00\x00\x00\x00\x03\x00' | dd of=feat.qcow2 bs=1 seek=72 conv=notrunc status=none
same_output "unknown features" info feat.qcow2
grep -q "raw external data, Unknown incompatible feature: 8000000000000100" "$T/h.out" ||
    fail "feature names: $(cat "$T/h.out")"
same_io "unknown features" feat.qcow2 feat.qcow2 -c 'read 0 512'
# A feature table cut short inside its only entry (036): the entry counts,
# its name zero-padded. Extension at 0x70: length 14, entry 0 made bit 63.
qemu-img create -q -f qcow2 feat.qcow2 1M
printf '\x00\x00\x00\x0e\x00\x3f' | dd of=feat.qcow2 bs=1 seek=$((0x74)) conv=notrunc status=none
dd if=/dev/zero of=feat.qcow2 bs=1 seek=$((0x88)) count=8 conv=notrunc status=none
printf '\x80' | dd of=feat.qcow2 bs=1 seek=72 conv=notrunc status=none
same_output "short feature table" info feat.qcow2
grep -q "Unsupported qcow2 feature(s): dirty bit$" "$T/h.out" ||
    fail "short feature table: $(cat "$T/h.out")"
echo "unknown incompatible features named as qemu"

# 9. write -c (compressed clusters: whole ones from a cluster boundary, a
# short last one only where it ends the image; an allocated cluster is EIO;
# raw has none) and truncate (grow; qcow2 to a multiple of 512; raw both
# ways): output, exit status, content, and for write -c the map (every
# written cluster compressed) and a clean check.
pair() { # FMT SIZE [OPTS]: fresh h.img and q.img
    rm -f h.img q.img
    qemu-img create -q -f "$1" ${3:+-o "$3"} h.img "$2"
    cp h.img q.img
}
pair qcow2 1049088
same_io "write -c" h.img q.img -c 'write -c -P 5 0 128k' -c 'write -c 0 4k' -c 'write -c 512 64k' \
    -c 'write -c 0 1000' -c 'write -c -f 0 64k' -c 'write -c 1M 512' -c 'write -c 960k 128k' \
    -c 'write -P 1 192k 64k' -c 'write -c 192k 64k' -c 'write -c 0 0' -c 'read -P 5 0 128k'
qemu-img compare -q h.img q.img || fail "write -c: content differs from qemu-io's"
qemu-img check -q h.img || fail "write -c: qemu-img check"
# qemu-img 7.2's map shows a compressed extent as data with no offset
qemu-img map --output=json h.img | python3 -c '
import json, sys
m = json.load(sys.stdin)
sys.exit(0 if m[0]["start"] == 0 and m[0]["length"] == 131072 and m[0]["data"] and "offset" not in m[0] else 1)' ||
    fail "write -c: 0-128k is not compressed: $(qemu-img map --output=json h.img)"
# qemu's layout: the L2 table is placed before the compressed data (214
# pokes L2 entries at the offsets qemu gives them), so the files are equal
pair qcow2 8M cluster_size=2097152
same_io "write -c layout" h.img q.img -c 'write -c -P 0x11 0 2M' -c 'write -c -P 0x11 2M 2M'
cmp h.img q.img || fail "write -c: not qemu-io's bytes (layout)"
# The same for plain allocating writes (138 pokes an L2 entry at 2048)
for cs in 512 65536; do
    pair qcow2 1M cluster_size=$cs
    same_io "layout $cs" h.img q.img -c 'write 0 512' -c 'write -P 3 128k 8k'
    cmp h.img q.img || fail "allocating writes ($cs): not qemu-io's bytes (layout)"
done
pair qcow2 10240 cluster_size=4096
same_io "write -c short last" h.img q.img -c 'write -c -P 2 8192 2048' -c 'write -c 4096 1808' \
    -c 'read -P 2 8192 2048'
qemu-img compare -q h.img q.img || fail "write -c short last: content differs"
pair raw 1M
same_io "write -c raw" h.img q.img -f raw -c 'write -c 0 64k'
pair qcow2 1M
same_io "truncate qcow2" h.img q.img -c 'write -P 9 0 64k' -c 'truncate 100M' -c 'write -P 4 99M 64k' \
    -c 'read -P 9 0 64k' -c length -c 'truncate 1000' -c 'truncate -m bogus 2M' -c 'truncate' \
    -c 'truncate x' -c length
qemu-img compare -q h.img q.img || fail "truncate qcow2: content differs"
qemu-img check -q h.img || fail "truncate qcow2: qemu-img check"
pair raw 1M
same_io "truncate raw" h.img q.img -f raw -c 'truncate 512k' -c length -c 'truncate 4M' \
    -c 'write -P 3 3M 4k' -c length
cmp h.img q.img || fail "truncate raw: files differ"
echo "io: write -c and truncate as qemu-io"

# 10. A chain member that cannot be opened is named per layer, as qemu-io
# does (069); rebase without a backing format is refused in qemu-img's
# words (114); neither probes a format.
qemu-img create -q -f qcow2 gone.qcow2 1M
qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 mid.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
rm gone.qcow2
same_io "missing backing" top.qcow2 top.qcow2 -c 'read 0 1'
grep -q "Could not open backing file: Could not open backing file: Could not open 'gone.qcow2'" h.io ||
    fail "missing backing: $(cat h.io)"
same_output "rebase without -F" rebase -u -b mid.qcow2 top.qcow2
# qemu-io's snapshot mode (-s, open -s; 052): writes go to a throwaway
# overlay, reads see them, the image is never written and no overlay file
# is left in $TMPDIR.
qemu-img create -q -f qcow2 snap.qcow2 1M
qemu-io -c 'write -P 3 0 1M' snap.qcow2 >/dev/null
before=$(md5sum < snap.qcow2)
mkdir -p snaptmp
TMPDIR=$T/snaptmp same_io "io -s" snap.qcow2 snap.qcow2 -s -c 'read -P 3 0 1M' \
    -c 'write -P 0xa 0 64k' -c 'read -P 0xa 0 64k' -c 'read -P 3 64k 960k'
TMPDIR=$T/snaptmp same_io "open -s" snap.qcow2 snap.qcow2 -c close -c 'open -s snap.qcow2' \
    -c 'write -z 0 512' -c 'read -P 0 0 512'
same_io "io -s raw" snap.qcow2 snap.qcow2 -s -f raw -c 'write 0 512' -c 'read -P 0xcd 0 512'
[ "$(md5sum < snap.qcow2)" = "$before" ] || fail "io -s / open -s wrote the image"
[ -z "$(ls snaptmp)" ] || fail "io -s left $(ls snaptmp)"
same_io "io -s missing" nope.qcow2 nope.qcow2 -s -c 'read 0 1'
echo "chain failures and rebase without -F worded as qemu; -s as qemu-io"

# 11. qcow2 sizes as qemu takes them: rounded up to whole sectors (104),
# too large for the L1 table refused with the Formatting line first (054).
"$H" create -q -f qcow2 h1234.qcow2 1234 && qemu-img create -q -f qcow2 q1234.qcow2 1234
cmp h1234.qcow2 q1234.qcow2 || fail "create 1234: not qemu-img's bytes"
same_output "create 1E" create -f qcow2 big.qcow2 1E
echo "qcow2 create sizes as qemu-img"

# 12. preallocation (079, 115, 121): -o preallocation=metadata lays out
# qemu-img's bytes (per L2 table: the table, then its data clusters; a
# refblock the run lacks right after it); with many small refblocks (512-byte
# clusters, 64-bit refcounts: 64 clusters each) every cluster is referenced
# and counted; the Formatting line names preallocation and compat as given;
# raw falloc/full are zeros of the full size; modes qemu refuses, refused.
for o in cluster_size=64k,size=100M cluster_size=16k,size=20M cluster_size=1M,size=100M \
         cluster_size=512,refcount_bits=1,size=8M; do
    rm -f hp.qcow2 qp.qcow2
    "$H" create -q -f qcow2 -o "preallocation=metadata,$o" hp.qcow2 || fail "prealloc $o"
    qemu-img create -q -f qcow2 -o "preallocation=metadata,$o" qp.qcow2
    cmp hp.qcow2 qp.qcow2 || fail "prealloc $o: not qemu-img's bytes"
done
"$H" create -q -f qcow2 -o preallocation=metadata,cluster_size=512,refcount_bits=64 hp.qcow2 4M ||
    fail "prealloc 512/64"
qemu-img check hp.qcow2 > c.out 2>&1 || fail "prealloc 512/64: $(cat c.out)"
grep -q '^8192/8192 = 100.00% allocated' c.out || fail "prealloc 512/64: $(cat c.out)"
qemu-io -c 'read -P 0 0 4M' hp.qcow2 > /dev/null || fail "prealloc: data not zero"
for o in preallocation=off,compat=1.1 preallocation=metadata preallocation=bogus \
         preallocation=falloc,cluster_size=4k; do
    rm -f p.qcow2; same_output "create -o $o" create -f raw -o "${o%%,*}" p.raw 1M
    [ "$o" = preallocation=falloc,cluster_size=4k ] && continue
    rm -f p.qcow2; same_output "create -o $o" create -f qcow2 -o "$o" p.qcow2 1M
done
same_output "prealloc with backing" create -f qcow2 -o preallocation=metadata -b hp.qcow2 \
    -F qcow2 p.qcow2 1M
"$H" create -q -f raw -o preallocation=full p.raw 3M && cmp p.raw <(head -c 3M /dev/zero) ||
    fail "raw full"
[ "$(stat -c %b p.raw)" -ge 6144 ] || fail "raw full: not allocated"
echo "preallocation=metadata as qemu-img"

# 13. Rebase past the old backing file's end (or without one) writes zeros
# as zero clusters, as qemu-img rebase (252); commit -b names the target and
# keeps the top image's content even for the immediate backing file (097).
for t in h q; do
    rm -f $t.qcow2 $t.new
    qemu-img create -q -f qcow2 $t.qcow2 384k; qemu-img create -q -f qcow2 $t.new 384k
    qemu-io -c 'write -P 0x22 0 128k' $t.qcow2 > /dev/null
    qemu-io -c 'write -P 0x11 0 64k' -c 'write -P 0x11 256k 64k' $t.new > /dev/null
done
"$H" rebase -b h.new -F qcow2 h.qcow2 || fail "rebase onto new"
qemu-img rebase -b q.new -F qcow2 q.qcow2
qemu-img map --output=json h.qcow2 | sed 's/, "offset": [0-9]*//' > h.map
qemu-img map --output=json q.qcow2 | sed 's/, "offset": [0-9]*//' > q.map
diff -u q.map h.map || fail "rebase without old backing: map differs from qemu-img rebase"
qemu-img compare -q h.qcow2 q.qcow2 || fail "rebase without old backing: content"
for t in h q; do
    rm -f $t.b $t.t
    qemu-img create -q -f qcow2 $t.b 1M
    qemu-img create -q -f qcow2 -b $t.b -F qcow2 $t.t
    qemu-io -c 'write -P 3 0 64k' $t.t > /dev/null
done
"$H" commit -q -b h.b h.t || fail "commit -b"
qemu-img commit -q -b q.b q.t
top_map h.t > h.map; top_map q.t > q.map
diff -u q.map h.map || fail "commit -b emptied the top image"
qemu-img compare -q h.b q.b || fail "commit -b: base content"
echo "rebase zeros and commit -b as qemu-img"

# 14. write -z of part of a cluster (154): the whole cluster becomes a zero
# cluster where its other bytes read as zeros through the chain; else zeros
# are written and the cluster copied, even where the request itself reads
# zeros (past the backing file's end).
for t in h q; do
    rm -f $t.b $t.t
    qemu-img create -q -f qcow2 -o cluster_size=512 $t.b $((1024 * 1024 + 1024))
    qemu-io -c 'write -P 1 1M 512' -c 'write -P 2 8k 512' $t.b > /dev/null
    qemu-img create -q -f qcow2 -o cluster_size=4k -b $t.b -F qcow2 $t.t $((1024 * 1024 + 2048))
done
ops=(-c 'write -z 0 2k' -c 'write -z 8704 512' -c 'write -z 16k 5k' -c 'write -z 1049600 512')
"$H" io "${ops[@]}" h.t > /dev/null || fail "write -z partial"
qemu-io "${ops[@]}" q.t > /dev/null
qemu-img map --output=json h.t | sed 's/, "offset": [0-9]*//' > h.map
qemu-img map --output=json q.t | sed 's/, "offset": [0-9]*//' > q.map
diff -u q.map h.map || fail "write -z partial: allocation differs from qemu-io"
qemu-img compare -q h.t q.t || fail "write -z partial: content"
qemu-img check -q h.t || fail "write -z partial: check"
echo "partial write -z as qemu-io"

# 15. open -o backing.driver=FMT (114): the first backing file's format given
# over the header's (here a format nobody has), as qemu-io.
qemu-img create -q -f qcow2 bd.base 1M
qemu-io -c 'write -P 7 0 4k' bd.base > /dev/null
qemu-img create -q -f qcow2 -b bd.base -F qcow2 bd.top
# The backing format extension at 0x70 ("qcow2") becomes "foo".
printf '\x00\x00\x00\x03foo\x00\x00' | dd of=bd.top bs=1 seek=$((0x74)) conv=notrunc status=none
qemu-img info bd.top | grep -q '^backing file format: foo$' || fail "backing.driver: no format foo"
for o in "" "backing.driver=qcow2," "backing.driver=bogus,"; do
    same_io "open -o ${o}driver=qcow2" bd.top bd.top -c close \
        -c "open -o ${o}driver=qcow2 bd.top" -c 'read -P 7 0 4k'
done
echo "open -o backing.driver as qemu-io"

# 16. "file:" names (126): the prefix is qemu's file protocol; a name left
# with a colon before its first slash is shown as ./NAME, and its backing
# file's actual path follows from that.
mkdir -p fp && cd fp
"$H" create -q -f qcow2 "file:$T/fp/a:b.qcow2" 1M && [ -f "$T/fp/a:b.qcow2" ] ||
    fail "create file:/abs/a:b"
qemu-img create -q -f qcow2 base.qcow2 1M
"$H" create -q -f qcow2 -b base.qcow2 -F qcow2 file:image:top.qcow2 && [ -f image:top.qcow2 ] ||
    fail "create file:image:top"
same_output "info file:image:top" info file:image:top.qcow2
grep -q '^image: ./image:top.qcow2$' "$T/h.out" || fail "file: name shown: $(cat "$T/h.out")"
cd "$T"
echo "file: names as qemu-img"

# 17. Protocol drivers in open -o (226): driver=file wants a regular file,
# host_device and host_cdrom a character or block device; a read-write
# open of a directory fails first; an image named by options is "can't
# open:" without a name; /dev/null opens (and closes: its flush is not an
# error).
mkdir -p pdir
for d in file host_device host_cdrom; do
    for f in pdir /dev/null; do
        for r in -r ""; do
            same_io "open $r -o driver=$d,filename=$f" bd.top bd.top -c close \
                -c "open $r -o driver=$d,filename=$f,locking=off" -c 'read 0 0'
        done
    done
done
same_io "open -o driver=file (no name)" bd.top bd.top -c close -c "open -o driver=file"
same_io "--image-opts missing file" "driver=qcow2,file.filename=nope" \
    "driver=qcow2,file.filename=nope" --image-opts -c 'read 0 512'
echo "open -o driver=file|host_device|host_cdrom as qemu-io"

# 18. info --image-opts (279): the chain from driver=,file.filename=, and
# the refusals (unknown option, no file name).
qemu-img create -q -f qcow2 io.base 1M
qemu-img create -q -f qcow2 -b io.base -F qcow2 io.mid
qemu-img create -q -f qcow2 -b io.mid -F qcow2 io.top
for spec in driver=qcow2,file.driver=file,file.filename=io.top \
    driver=qcow2,file.filename=io.top,bogus=1 driver=qcow2,file.driver=file; do
    same_output "info --image-opts $spec" info --backing-chain --image-opts "$spec"
done
same_output "info --image-opts -f" info -f qcow2 --image-opts driver=qcow2,file.filename=io.top
echo "info --image-opts as qemu-img"

# 19. An unaligned refblock offset (305) is found where it is used: the
# image opens, the allocation that needs that refblock marks it corrupt
# (qemu's words) and fails with EIO; check names the entry, -r all rebuilds.
qemu-img create -q -f qcow2 -o refcount_bits=64,cluster_size=1k ua.qcow2 1M
qemu-io -c 'write 0 124k' -c 'discard 121k 1k' -c 'discard 123k 1k' ua.qcow2 >/dev/null
rt=$((16#$(od -An -tx1 -j48 -N8 ua.qcow2 | tr -d ' ')))
printf '\x06' | dd of=ua.qcow2 bs=1 seek=$((rt + 14)) conv=notrunc status=none
cp ua.qcow2 ub.qcow2; cp ua.qcow2 uc.qcow2
same_io "unaligned refblock" ua.qcow2 ub.qcow2 -c 'write 121k 3k'
grep -q "Marking image as corrupt: Refblock offset 0x20600 unaligned" h.io || fail "305: $(cat h.io)"
"$H" check uc.qcow2 > uc.out 2>&1
grep -q "ERROR refcount block 1 is not cluster aligned" uc.out || fail "305 check: $(cat uc.out)"
"$H" check -q -r all uc.qcow2 >/dev/null 2>&1; qemu-img check -q uc.qcow2 || fail "305: -r all"
echo "unaligned refblock offset as qemu-io"

# 20. An allocating write over many clusters (313) takes one contiguous run
# of host clusters per L2 table, the refblocks it lacks right after it, as
# qemu places them: the same bytes as qemu-io's, over empty and partly
# written clusters. (Over compressed ones qemu frees the old clusters at
# once and may reuse them within the write; blockdev frees at the flush.)
for opts in cluster_size=4096,refcount_bits=64 cluster_size=4096 \
    cluster_size=2k cluster_size=64k cluster_size=512,refcount_bits=1; do
    for t in hr qr; do
        rm -f $t.run; qemu-img create -q -f qcow2 -o $opts $t.run 9M
        qemu-io -c 'write -P 5 100k 3k' -c 'write -P 6 8300k 1k' $t.run >/dev/null
    done
    same_io "run write $opts" hr.run qr.run -c 'write -P 1 1000 8M'
    cmp -s hr.run qr.run || fail "run write $opts: image bytes differ from qemu-io's"
    qemu-img check -q hr.run || fail "run write $opts: check"
done
echo "allocating writes placed as qemu-io's"

# 21. compat=0.10 (290): v2 images as qemu-img creates them (72-byte
# header, no feature table), written as qemu-io writes them; discard frees
# clusters without a backing file and is a no-op over one (no zero flag).
qemu-img create -q -f qcow2 v2b.base 128k; qemu-io -c 'write -P 0xff 0 128k' v2b.base >/dev/null
for o in compat=0.10 compat=0.10,cluster_size=4k compat=v2,cluster_size=512; do
    for b in "" "-b v2b.base -F qcow2"; do
        rm -f h2.v q2.v
        "$H" create -q -f qcow2 -o $o $b h2.v 128k || fail "create $o $b"
        qemu-img create -q -f qcow2 -o $o $b q2.v 128k
        cmp -s h2.v q2.v || fail "create $o $b: bytes differ from qemu-img's"
        same_io "v2 write $o $b" h2.v q2.v -c 'write -P 1 0 100k'
        cmp -s h2.v q2.v || fail "v2 write $o $b: bytes differ from qemu-io's"
        # (qemu also punches the freed clusters out of the file: not compared)
        same_io "v2 discard $o $b" h2.v q2.v -c 'discard 0 128k' -c 'read -P 0 0 64k'
        qemu-img check -q h2.v || fail "v2 $o $b: check"
        [ "$(qemu-img map --output=json h2.v)" = "$(qemu-img map --output=json q2.v)" ] ||
            fail "v2 discard $o $b: map differs from qemu-io's"
    done
done
for o in compat=0.10,refcount_bits=8 compat=0.10,compression_type=zstd; do
    same_output "create $o" create -f qcow2 -o $o v2x.q 1M
done
echo "compat=0.10 images as qemu-img and qemu-io"

# 22. json:{...} names and qemu's compress filter (214): driver=compress
# over a qcow2 image, by --image-opts or json:, writes data compressed
# (partial clusters read and written whole), zeroes and discards pass
# through; the same output, content, map and compressed count as qemu-io
# (not the bytes: qemu compresses clusters in parallel, in any order).
for t in hc qc; do rm -f $t.cz; qemu-img create -q -f qcow2 $t.cz 1M; done
cz=(-c 'write -P 1 1000 100k' -c 'write -z 200k 64k' -c 'discard 0 64k' -c 'write -P 2 1000 10'
    -c 'writev -P 2 300k 4k 4k' -c 'write -P 3 983040 65536' -c 'read -P 2 1000 10'
    -c 'write -z 400k 8k')
same_io "compress filter --image-opts" driver=compress,file.driver=qcow2,file.file.filename=hc.cz \
    driver=compress,file.driver=qcow2,file.file.filename=qc.cz --image-opts "${cz[@]}"
jz() { echo "json:{'driver': 'compress', 'file': {'driver': 'qcow2',
    'file': {'driver': 'file', 'filename': '$1'}}}"; }
same_io "compress filter json:" "$(jz hc.cz)" "$(jz qc.cz)" -c 'write -P 5 500k 100k'
qemu-img compare -q hc.cz qc.cz || fail "compress filter: content"
[ "$(qemu-img map --output=json hc.cz)" = "$(qemu-img map --output=json qc.cz)" ] ||
    fail "compress filter: map"
[ "$(qemu-img check --output=json hc.cz | grep compressed-clusters)" = \
    "$(qemu-img check --output=json qc.cz | grep compressed-clusters)" ] ||
    fail "compress filter: compressed clusters"
qemu-img create -q -f raw cz.raw 1M
same_io "compress over raw" driver=compress,file.driver=raw,file.file.filename=cz.raw \
    driver=compress,file.driver=raw,file.file.filename=cz.raw --image-opts -c 'write 0 64k'
# json: names: nesting, single quotes, escapes, "backing": null, refusals.
qemu-img create -q -f qcow2 jb.base 1M; qemu-io -c 'write -P 7 0 1M' jb.base >/dev/null
qemu-img create -q -f qcow2 -b jb.base -F qcow2 jb.top
same_io "json: backing null" 'json:{"driver": "qcow2", "file": {"filename": "jb.top"}, "backing": null}' \
    'json:{"driver": "qcow2", "file": {"filename": "jb.top"}, "backing": null}' -c 'read -P 0 0 4k'
same_io "json: dotted keys" "json:{'driver':'qcow2','file.filename':'jb.top'}" \
    "json:{'driver':'qcow2','file.filename':'jb.top'}" -c 'read -P 7 0 4k'
same_io "json: no file" 'json:{"driver":"qcow2"}' 'json:{"driver":"qcow2"}' -c 'read 0 1'
J="json:{'driver': 'qcow2', 'file': {'driver': 'file', 'filename': 'jb.top', 'x': [1, {'y': null}]}}"
for i in $(seq 5 ${#J}); do
    "$H" io -c 'read 0 1' "${J:0:$i}" >/dev/null 2>&1
    [ $? -lt 128 ] || fail "json: cut at $i: crashed"
done
"$H" io -c 'read 0 1' "$J" 2>&1 | grep -q "does not support the option 'file.x" ||
    fail "json: unknown key not refused"
echo "json: names and the compress filter as qemu-io"

# 23. The VM state area (022): read -b / write -b past the disk, from the
# first L1 entry it does not use; the L1 table grows as qemu grows it;
# qemu-io's refusals (-b with -z or -f, unaligned) and zeros past the table.
for t in hv qv; do rm -f $t.vm; qemu-img create -q -f qcow2 $t.vm 6G; done
same_io "vmstate" hv.vm qv.vm -c 'write -b -P 5 10M 4k' -c 'read -b -P 5 10M 4k' \
    -c 'write -b -z 0 4k' -c 'write -b -f 0 4k' -c 'read -b -v 0 16' -c 'write -b -P 1 0 100' \
    -c 'read -b -P 0 4G 1k' -c 'read -b -P 0 100G 512' -c 'write -b -P 7 4G 64k' \
    -c 'read -b -P 7 4G 64k' -c 'read -P 0 0 64k'
qemu-img check -q hv.vm || fail "vmstate: check"
[ "$(qemu-img info hv.vm | grep virtual)" = "$(qemu-img info qv.vm | grep virtual)" ] ||
    fail "vmstate: virtual size"
[ "$(od -An -tx1 -j 36 -N 4 hv.vm)" = "$(od -An -tx1 -j 36 -N 4 qv.vm)" ] ||
    fail "vmstate: L1 size differs from qemu's"
qemu-img create -q -f raw vm.raw 1M
same_io "vmstate raw" vm.raw vm.raw -f raw -c 'read -b 0 512'
echo "VM state area as qemu-io"

# 24. 250's pieces: a discard's clusters are reused by the next writes of
# the same qemu-io run (qemu frees them at once), and a metadata-
# preallocated image's unwritten data clusters (holes in the file) map as
# zeros, as qemu asks the file about them; map's human form lists data
# that does not read as zeros only.
for t in hp qp; do
    rm -f $t.pm; qemu-img create -q -f qcow2 -o cluster_size=1M,preallocation=metadata $t.pm 300M
done
same_io "discard then write" hp.pm qp.pm -c 'discard 0 10M' -c 'discard 290M 10M' \
    -c 'write 290M 10M' -c 'write 0 10M'
for o in human json; do
    same_output "map prealloc $o" map --output=$o hp.pm
    sed 's/hp\.pm/X/' "$T/h.out" > "$T/h.map"
    qemu-img map --output=$o qp.pm | sed 's/qp\.pm/X/' > "$T/q.map"
    diff -u "$T/q.map" "$T/h.map" || fail "map prealloc $o: differs from the qemu-io-written image's"
done
for t in hd qd; do rm -f $t.dd; qemu-img create -q -f qcow2 $t.dd 4M; done
same_io "discard reuse" hd.dd qd.dd -c 'write -P 1 0 1M' -c 'discard 0 512k' -c 'write -P 2 2M 512k'
cmp -s hd.dd qd.dd || fail "discard reuse: bytes differ from qemu-io's"
echo "discarded clusters reused and preallocated holes mapped as qemu"

# 25. bench: qemu-img bench's --pattern (a C number; anything else, or past
# a byte, refused with its message) and its default of zeros, and its two
# report lines even with -q; the written bytes as qemu-img's.
bench_filter() { sed -e 's/^herd-img:/qemu-img:/' -e 's/in [0-9.]* seconds/in X seconds/'; }
for p in 0x3c 060 60 300 -1 abc 1k ''; do
    for t in hb qb; do rm -f $t.qcow2; qemu-img create -q -f qcow2 $t.qcow2 1M; done
    "$H" bench -q -w -c 64 -d 4 -S 12k ${p:+--pattern=$p} hb.qcow2 2>&1 | bench_filter > h.b; hr=${PIPESTATUS[0]}
    qemu-img bench -q -w -c 64 -d 4 -S 12k ${p:+--pattern=$p} qb.qcow2 2>&1 | bench_filter > q.b; qr=${PIPESTATUS[0]}
    [ "$hr" = "$qr" ] || fail "bench --pattern=$p: exit herd=$hr qemu-img=$qr"
    diff -u q.b h.b || fail "bench --pattern=$p: output differs"
    qemu-img compare -q hb.qcow2 qb.qcow2 || fail "bench --pattern=$p: written bytes differ"
done
echo "bench's pattern, default and report as qemu-img's"
exit 0
