#!/bin/bash
# herd-img convert -c/-n/-S/-B, commit -b, compare, resize and measure
# against qemu-img (issue 13): each case runs the real qemu-img on copies of
# the same input and compares output, exit status and the resulting images
# (qemu-img check, compare, map).
set -u
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require
cd "$T"

# Same stdout+stderr and status; "$@" holds {} for the per-tool file prefix.
both() {
    local what=$1; shift
    "$H" "${@//\{\}/HH}" > HH.out 2>&1; local hr=$?
    qemu-img "${@//\{\}/QQ}" > QQ.out 2>&1; local qr=$?
    sed -i -e 's/herd-img/qemu-img/g' -e 's/HH/X/g' HH.out
    sed -i -e 's/QQ/X/g' QQ.out
    [ "$hr" = "$qr" ] || fail "$what: exit herd=$hr qemu=$qr ($(cat HH.out))"
    diff -u QQ.out HH.out || fail "$what: output differs"
}
clean() { qemu-img check -q "$1" || fail "$2: qemu-img check not clean"; }
same_content() { qemu-img compare -q "$1" "$2" || fail "$3: content differs"; }

qemu-img create -q -f qcow2 src.qcow2 5M
qemu-io -c 'write -P 7 0 300k' -c 'write -P 0 1M 64k' -c 'write 2M 100k' \
    -c 'write -P 9 5000000 4000' src.qcow2 >/dev/null
head -c 131072 /dev/urandom > rnd
qemu-io -f qcow2 -c 'write -P 1 3M 64k' src.qcow2 >/dev/null

# convert -c: compressed clusters (zlib, zstd), clean, same content, same map.
for ct in zlib zstd; do
    rm -f HH.c QQ.c
    both "convert -c $ct" convert -c -O qcow2 -o compression_type=$ct src.qcow2 {}.c
    clean HH.c "convert -c $ct"; same_content src.qcow2 HH.c "convert -c $ct"
    qemu-img check HH.c | grep -q '100.00% compressed' || fail "convert -c $ct: not compressed"
    [ "$(qemu-img map --output=json HH.c)" = "$(qemu-img map --output=json QQ.c)" ] ||
        fail "convert -c $ct: map differs"
    qemu-img info HH.c | grep -q "compression type: $ct" || fail "convert -c: type"
done
both "convert -c raw" convert -c -O raw src.qcow2 {}.x
both "convert -c into allocated" convert -n -c -O qcow2 src.qcow2 {}.c
# convert -S: the raw output's allocation as qemu-img's.
for S in 0 4k 64k; do
    rm -f HH.r QQ.r
    both "convert -S $S" convert -S $S -O raw src.qcow2 {}.r
    cmp -s HH.r QQ.r || fail "convert -S $S: content"
    [ "$(du -k HH.r | cut -f1)" = "$(du -k QQ.r | cut -f1)" ] || fail "convert -S $S: allocation"
done
both "convert -S bad" convert -S 100 -O raw src.qcow2 {}.r
both "convert -S junk" convert -S foo -O raw src.qcow2 {}.r
# convert -n: into an existing image of the same size.
qemu-img create -q -f qcow2 HH.n 5M; qemu-io -c 'write -P 5 0 5M' HH.n >/dev/null; cp HH.n QQ.n
both "convert -n" convert -n -O qcow2 src.qcow2 {}.n
same_content src.qcow2 HH.n "convert -n"; clean HH.n "convert -n"
both "convert -n missing" convert -n -O qcow2 src.qcow2 {}.missing
# convert -B/-F: only what differs from the backing file is written.
qemu-img create -q -f qcow2 base.qcow2 5M
qemu-io -c 'write -P 7 0 300k' base.qcow2 >/dev/null
"$H" convert -O qcow2 -B base.qcow2 -F qcow2 src.qcow2 HH.b || fail "convert -B"
clean HH.b "convert -B"; same_content src.qcow2 HH.b "convert -B"
qemu-img map --output=json HH.b | grep -q '"start": 0, "length": 327680, "depth": 1' ||
    fail "convert -B: clusters equal to the backing file were written"
both "convert -B no -F" convert -B base.qcow2 -O qcow2 src.qcow2 {}.b2
both "convert -B raw" convert -B base.qcow2 -F qcow2 -O raw src.qcow2 {}.b3
both "convert missing" convert -O qcow2 nope {}.x
# json:{...} sources (150): null-co (read-zeroes) converts as qemu-img
# converts it, sparse or not; a qcow2 image named by JSON options.
nul="json:{ 'driver': 'null-co', 'size': 1048576, 'read-zeroes': true }"
for S in 512 0; do
    rm -f HH.nul QQ.nul
    both "convert null-co -S $S" convert -O qcow2 -S $S "$nul" {}.nul
    cmp -s HH.nul QQ.nul || fail "convert null-co -S $S: bytes differ from qemu-img's"
done
both "convert json: qcow2" convert -O raw "json:{'driver':'qcow2','file':{'driver':'file','filename':'src.qcow2'}}" {}.jr
cmp -s HH.jr QQ.jr || fail "convert json: qcow2: content"
"$H" convert -O raw "json:{'driver':'null-co','size':512}" HH.nz > nz.out 2>&1 &&
    fail "null-co without read-zeroes taken"
grep -q "read-zeroes" nz.out || fail "null-co without read-zeroes: $(cat nz.out)"
"$H" convert -O raw "json:{'driver':'qcow2','file':{'driver':'blkdebug','image':'x'}}" HH.nz \
    > nz.out 2>&1 && fail "json: blkdebug taken"
grep -q "does not support the option 'file.driver'" nz.out || fail "json: blkdebug: $(cat nz.out)"
both "info json:" info "json:{'driver':'qcow2','file':{'driver':'file','filename':'src.qcow2'}}"
echo "convert: -c, -S, -n, -B, json: sources as qemu-img"

# commit -b into the bottom of a 3-image chain.
for t in HH QQ; do
    qemu-img create -q -f qcow2 $t.c1 4M
    qemu-io -c 'write -P 1 0 1M' $t.c1 >/dev/null
    qemu-img create -q -f qcow2 -b $t.c1 -F qcow2 $t.c2
    qemu-io -c 'write -P 2 512k 1M' -c 'write -z 3M 64k' $t.c2 >/dev/null
    qemu-img create -q -f qcow2 -b $t.c2 -F qcow2 $t.c3
    qemu-io -c 'write -P 3 1M 512k' $t.c3 >/dev/null
done
cp HH.c3 ref.c3
both "commit -b" commit -b {}.c1 {}.c3
clean HH.c1 "commit -b"; same_content ref.c3 HH.c3 "commit -b top"
qemu-img compare -q -f qcow2 -F qcow2 HH.c1 ref.c3 || fail "commit -b: base content"
[ "$(qemu-img map --output=json HH.c1)" = "$(qemu-img map --output=json QQ.c1 | sed 's/QQ/HH/g')" ] ||
    fail "commit -b: base map differs"
both "commit -b missing" commit -b {}.nope {}.c3
# commit -b with a relative name (020): taken from the directory of the
# image that names the backing file, as qemu-img takes it, not from here.
for t in HH QQ; do
    mkdir -p $t.sub; rm -f $t.sub/*
    qemu-img create -q -f qcow2 $t.sub/t.base 1M
    qemu-img create -q -f qcow2 -b t.base -F qcow2 $t.sub/t.mid
    qemu-img create -q -f qcow2 -b t.mid -F qcow2 $t.sub/t.top
done
both "commit -b relative" commit -b t.mid {}.sub/t.top
both "commit -b from here" commit -b {}.sub/t.mid {}.sub/t.top
both "commit -b deeper relative" commit -b t.base {}.sub/t.top
echo "commit -b: as qemu-img"

# compare: identical, content mismatch, size mismatch, strict, errors.
qemu-img create -q -f qcow2 a.qcow2 10M
qemu-img create -q -f qcow2 b.qcow2 10M
qemu-img create -q -f qcow2 c.qcow2 12M
qemu-io -c 'write -P 1 70000 1000' b.qcow2 >/dev/null
qemu-io -c 'write -P 1 11M 1000' -c 'write -P 0 0 64k' c.qcow2 >/dev/null
qemu-img create -q -f raw r.raw 10M
for args in "a.qcow2 a.qcow2" "a.qcow2 b.qcow2" "-q a.qcow2 b.qcow2" "b.qcow2 a.qcow2" \
    "a.qcow2 c.qcow2" "-s a.qcow2 c.qcow2" "b.qcow2 c.qcow2" "-s a.qcow2 b.qcow2" \
    "-f qcow2 -F raw a.qcow2 r.raw" "-f raw -F raw a.qcow2 r.raw" "a.qcow2 nope" "a.qcow2"; do
    # shellcheck disable=SC2086
    both "compare $args" compare $args
done
echo "compare: messages and exit codes as qemu-img"

# resize: qcow2 grow (past the L1 table), shrink without --shrink refused,
# raw grow/shrink.
for t in HH QQ; do cp a.qcow2 $t.g; qemu-io -c 'write -P 4 0 64k' $t.g >/dev/null; done
both "resize grow" resize {}.g +3G
clean HH.g "resize grow"
[ "$(qemu-img info HH.g | grep 'virtual size')" = "$(qemu-img info QQ.g | grep 'virtual size')" ] ||
    fail "resize: virtual size"
same_content HH.g QQ.g "resize grow"
both "resize shrink" resize {}.g 1M
both "resize negative" resize {}.g -- -20G
both "resize bad size" resize {}.g 12x
both "resize missing" resize {}.nope 1G
both "resize no args" resize {}.g
for t in HH QQ; do qemu-img create -q -f raw $t.raw 10M; done
both "resize raw grow" resize -f raw {}.raw +1M
both "resize raw shrink" resize -f raw {}.raw 1000
both "resize raw --shrink" resize -f raw --shrink {}.raw 1000
cmp -s HH.raw QQ.raw || fail "resize raw"
# qcow2 shrink (292): clusters past the end freed and punched, L2 tables
# and refblocks no longer needed dropped, the file cut after its last
# cluster in use: the very bytes qemu-img leaves, for several layouts.
for opts in cluster_size=512,refcount_bits=64 cluster_size=512 cluster_size=64k \
    cluster_size=1k,refcount_bits=8; do
    for sz in 300k 1536; do
        for t in HH QQ; do
            rm -f $t.s; qemu-img create -q -f qcow2 -o $opts $t.s 4M
            qemu-io -c 'write -P 3 0 4M' -c 'write -c 1M 64k' -c 'discard 512k 64k' $t.s >/dev/null
        done
        both "resize --shrink $opts $sz" resize --shrink {}.s $sz
        clean HH.s "shrink $opts $sz"
        cmp -s HH.s QQ.s || fail "shrink $opts $sz: image bytes differ from qemu-img's"
    done
done
# Over a backing file: a shrink, then a grow reads zeros past the old end,
# not the backing file's data (the grown area is zeroed, as qemu).
qemu-img create -q -f qcow2 sb.base 1M; qemu-io -c 'write -P 0x11 0 1M' sb.base >/dev/null
for t in HH QQ; do
    rm -f $t.sb; qemu-img create -q -f qcow2 -b sb.base -F qcow2 $t.sb
    qemu-io -c 'write -P 0x22 0 1M' $t.sb >/dev/null
done
both "resize --shrink over backing" resize --shrink {}.sb 520k
both "resize grow over backing" resize {}.sb 567k
qemu-io -c 'read -P 0x22 0 520k' -c 'read -P 0 520k 47k' HH.sb | grep -q 'Pattern verification' &&
    fail "grow over backing: not zeros"
cmp -s HH.sb QQ.sb || fail "shrink/grow over backing: image bytes differ from qemu-img's"
# resize --preallocation (125): over a raw backing file, the grown area
# reads as zeros, the head cluster keeps the backing data below the old
# end; metadata leaves qemu-img's map and file length, falloc and full its
# file length with the new data clusters taking disk space.
qemu-img create -q -f raw pb.raw 128k; qemu-io -f raw -c 'write -q -P 1 0 128k' pb.raw
for o in 31k 33k; do
    for m in metadata falloc full; do
        for t in HH QQ; do
            rm -f $t.p; qemu-img create -q -f qcow2 -F raw -b pb.raw -o cluster_size=64k $t.p $o
        done
        both "resize --preallocation=$m $o" resize -f qcow2 --preallocation=$m {}.p 96k
        clean HH.p "prealloc $m $o"
        [ -z "$(qemu-io -c "read -q -P 1 0 $o" -c "read -q -P 0 $o 63k" HH.p)" ] ||
            fail "resize --preallocation=$m $o: content"
        [ "$(stat -c %s HH.p)" = "$(stat -c %s QQ.p)" ] || fail "prealloc $m $o: file length"
        [ $m != metadata ] || [ "$(qemu-img map --output=json HH.p)" = \
            "$(qemu-img map --output=json QQ.p)" ] || fail "prealloc $m $o: map"
    done
done
for m in falloc full; do
    for t in HH QQ; do rm -f $t.pa; qemu-img create -q -f qcow2 $t.pa 1M; done
    both "resize --preallocation=$m" resize --preallocation=$m {}.pa 9M
    [ "$(du -k HH.pa | cut -f1)" -ge 8192 ] || fail "resize --preallocation=$m: not allocated"
    rm -f HH.pc QQ.pc
    both "create preallocation=$m" create -q -f qcow2 -o preallocation=$m {}.pc 8M
    [ "$(stat -c %s HH.pc)" = "$(stat -c %s QQ.pc)" ] || fail "create $m: file length"
    [ "$(du -k HH.pc | cut -f1)" -ge 8192 ] || fail "create $m: not allocated"
    clean HH.pc "create $m"
done
both "resize --preallocation shrink" resize --shrink --preallocation=full {}.pa 1M
both "resize --preallocation bogus" resize --preallocation=bogus {}.pa 10M
for t in HH QQ; do qemu-img create -q -f raw $t.pr 1M; done
both "resize raw --preallocation=metadata" resize -f raw --preallocation=metadata {}.pr 2M
both "resize raw --preallocation=falloc" resize -f raw --preallocation=falloc {}.pr 2M
both "resize raw --preallocation=full" resize -f raw --preallocation=full {}.pr 3M
[ "$(du -k HH.pr | cut -f1)" = "$(du -k QQ.pr | cut -f1)" ] || fail "resize raw prealloc: du"
echo "resize: as qemu-img"

# measure: --size for several sizes/cluster sizes, files, json, errors.
for s in 0 1 123456789 7G 1T; do
    for o in cluster_size=4k cluster_size=512,refcount_bits=1 cluster_size=2M,refcount_bits=64 \
        preallocation=full cluster_size=64k; do
        both "measure $s $o" measure -O qcow2 -o $o --size $s
    done
    both "measure raw $s" measure -O raw --size $s
done
for f in src.qcow2 HH.c HH.b r.raw; do
    both "measure $f" measure -O qcow2 $f
    both "measure json $f" measure -O qcow2 --output=json $f
    both "measure raw $f" measure -O raw $f
done
both "measure nothing" measure -O qcow2
both "measure both" measure --size 1M src.qcow2
both "measure bad size" measure --size foo
both "measure vmdk" measure -O vmdk --size 1M
both "measure missing" measure nope
echo "measure: numbers and messages as qemu-img"
exit 0
