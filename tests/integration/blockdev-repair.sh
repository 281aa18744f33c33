#!/bin/bash
# herd-img check -r leaks|all against qemu-img check -r on the same damage:
#  1. crafted damage (a leak, a refcount too low, a referenced cluster with
#     refcount 0, the dirty and corrupt bits, a refblock shared with data):
#     same exit codes, same report (human and JSON), same messages (but for the
#     old structure's clusters qemu-img frees after a rebuild, which herd-img
#     never counts), both repaired images clean and with the same data;
#  2. kill -9 of writers on fresh overlays (HERD_REPAIR_ROUNDS, default 12),
#     `herd-img bench -w` and `herd-img io` with flushes and discards (the
#     latter is what leaks: a kill inside a flush): after `check -r leaks` qemu-img check exits 0, the pattern
#     written and flushed before the bench is intact, the guest-visible data is
#     that of the unrepaired image and of qemu-img's repair, and the backing
#     file is untouched;
#  3. the repair itself killed at random points (the leakiest image of 2.,
#     10 times): never worse than leaks (qemu-img check 0 or 3), and a second
#     repair then leaves it clean with the same data;
#  4. a repair waits for nobody: an image held by a writer is refused.
set -u
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require md5sum
cd "$T"

# put64 FILE OFFSET HEX16: one big-endian 64-bit value.
put64() {
    local v=$3 s="" i
    for ((i = 0; i < 16; i += 2)); do s+="\\x${v:i:2}"; done
    printf "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
put16() {
    printf "\\x${3:0:2}\\x${3:2:2}" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# 1 MiB, 64 KiB clusters: header 0, reftable 0x10000, refblock 0x20000,
# L1 0x30000, L2 0x40000, data of guest clusters 0 and 2 at 0x50000, 0x60000.
craft() {
    rm -f "$1"
    qemu-img create -q -f qcow2 "$1" 1M
    qemu-io -c 'write -P 0x11 0 64k' -c 'write -P 0x22 128k 64k' "$1" >/dev/null
    case $2 in
    leak) put64 "$1" $((0x40010)) 0000000000000000 ;;
    low) put64 "$1" $((0x40010)) 8000000000050000 ;;
    zero) put16 "$1" $((0x2000a)) 0000 ;;
    dirty) put64 "$1" $((0x40010)) 0000000000000000
           put64 "$1" 72 0000000000000001 ;;
    corrupt) put64 "$1" $((0x40010)) 0000000000000000
             put64 "$1" 72 0000000000000002 ;;
    rbshared) put64 "$1" $((0x40018)) 8000000000020000 ;;
    esac
}

cases=0
for kind in leak low zero dirty corrupt rbshared; do
    for mode in leaks all; do
        for out in human json; do
            craft h.qcow2 $kind
            cp h.qcow2 q.qcow2
            "$H" check --output=$out -r $mode h.qcow2 > h.out 2> h.err; hr=$?
            qemu-img check --output=$out -r $mode q.qcow2 > q.out 2> q.err; qr=$?
            what="$kind -r $mode --output=$out"
            [ "$hr" = "$qr" ] || fail "$what: exit herd=$hr qemu=$qr"
            sed -i 's/^herd-img:/qemu-img:/; s/h\.qcow2/q.qcow2/' h.out h.err
            diff -u q.out h.out || fail "$what: report differs"
            # After "Rebuilding", qemu-img frees the old structure it counted.
            awk '/^Rebuilding refcount structure/ { r = 1; print; next }
                 r && /^Repairing cluster [0-9]* refcount=[0-9]* reference=[0-9]*$/ { next }
                 { r = 0; print }' q.err > q.err2
            diff -u q.err2 h.err || fail "$what: messages differ"
            qemu-img check h.qcow2 > /dev/null 2>&1; hc=$?
            qemu-img check q.qcow2 > /dev/null 2>&1; qc=$?
            [ "$hc" = "$qc" ] || fail "$what: qemu-img check after: herd's $hc, qemu's $qc"
            qemu-img compare -q h.qcow2 q.qcow2 || fail "$what: repaired data differs"
            cases=$((cases + 1))
        done
    done
    echo "crafted $kind: same exits, reports and data as qemu-img (-r leaks, -r all)"
done
# Dirty and corrupt bits cleared: the repaired images open for writing.
for kind in dirty corrupt; do
    craft h.qcow2 $kind
    "$H" check -q -r leaks h.qcow2 2>/dev/null || fail "$kind: repair exit $?"
    "$H" io -c 'write -P 0x33 0 4k' h.qcow2 > /dev/null || fail "$kind: still not writable"
done
qemu-img create -q -f raw r.raw 1M
"$H" check -r leaks r.raw 2>/dev/null; rc=$?
[ $rc = 63 ] || fail "raw -r leaks: exit $rc, not 63"

# 2. kill -9 of allocating writers.
rounds=${HERD_REPAIR_ROUNDS:-12}
# io: allocating writes from 2M on, a flush every 4, a discard of an older
# slot every 7 (its refcount drops only after the next flush).
for ((i = 0; i < 3000; i++)); do
    echo "write -P $((i % 200 + 1)) $((2097152 + i * 65536)) 65536"
    (( (i + 1) % 4 == 0 )) && echo flush
    (( i % 7 == 6 )) && echo "discard $((2097152 + (i - 5) * 65536)) 65536"
done > ops
qemu-img create -q -f raw base.raw 256M
qemu-io -f raw -c 'write -P 0xee 0 8M' base.raw > /dev/null
base_sum=$(md5sum < base.raw)
leaky=0 leaked=0 worst=0
for r in $(seq 1 "$rounds"); do
    cs=$(( r % 2 ? 65536 : 4096 ))
    rm -f top.qcow2
    "$H" create -q -f qcow2 -o cluster_size=$cs -b base.raw -F raw top.qcow2
    # Acknowledged and flushed (io flushes when it closes the image).
    "$H" io -c 'write -P 0x5c 0 1M' top.qcow2 > /dev/null || fail "round $r: io write"
    if [ $((r % 3)) = 0 ]; then
        # O_DIRECT: copy-on-writes in batches, the file grown ahead of them
        # (a kill leaves that tail, which must count as free, not leaked).
        writer=bench
        "$H" bench -q -w -t none -c 4000 -d 16 -o 2M -s 4096 -S 64k top.qcow2 &
    else
        writer=io
        "$H" io -f qcow2 top.qcow2 < ops > /dev/null 2>&1 &
    fi
    pid=$!
    sleep "0.$(( (RANDOM % 30) + 2 ))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    # The io_uring ring keeps the file (and its OFD locks) a moment after death.
    for i in $(seq 1 100); do
        qemu-img info top.qcow2 > /dev/null 2>&1 && break
        sleep 0.1
    done
    qemu-img check -q top.qcow2 > /dev/null 2>&1; rc=$?
    [ $rc = 0 ] || [ $rc = 3 ] || fail "round $r: qemu-img check exit $rc after kill -9"
    n=0
    if [ $rc = 3 ]; then
        leaky=$((leaky + 1))
        n=$(qemu-img check --output=json top.qcow2 2>/dev/null |
            sed -n 's/.*"leaks": \([0-9]*\).*/\1/p')
        leaked=$((leaked + n))
        [ "$n" -gt $worst ] && { worst=$n; cp top.qcow2 worst.qcow2; }
    fi
    cp top.qcow2 herd.qcow2
    cp top.qcow2 qemu.qcow2
    "$H" check -r leaks herd.qcow2 > repair.log 2>&1 ||
        { cat repair.log; fail "round $r: herd-img check -r leaks exit $?"; }
    qemu-img check herd.qcow2 > after.log 2>&1 ||
        { cat after.log; fail "round $r: qemu-img check after herd-img's repair"; }
    qemu-io -f qcow2 -c 'read -P 0x5c 0 1M' herd.qcow2 > rb.log 2>&1
    grep -q 'verification failed' rb.log && fail "round $r: flushed data lost"
    grep -q '^read 1048576/1048576' rb.log || { cat rb.log; fail "round $r: read back"; }
    qemu-img compare -q top.qcow2 herd.qcow2 || fail "round $r: repair changed the data"
    qemu-img check -q -r leaks qemu.qcow2 > /dev/null 2>&1 || fail "round $r: qemu-img -r"
    qemu-img compare -q qemu.qcow2 herd.qcow2 || fail "round $r: repairs differ"
    [ "$(md5sum < base.raw)" = "$base_sum" ] || fail "round $r: the backing file changed"
    echo "round $r (cs=$cs, $writer): qemu-img check exit $rc ($n leaked clusters) before," \
         "0 after herd-img check -r leaks; flushed 1M intact"
done
echo "$rounds writers killed, $leaky leaked ($leaked clusters), every one clean after repair"

# 3. kill -9 of the repair.
wait_free() {
    for i in $(seq 1 100); do
        qemu-img info "$1" > /dev/null 2>&1 && return
        sleep 0.1
    done
}
if [ $worst -gt 0 ]; then
    outcomes=""
    for k in $(seq 1 10); do
        mode=$([ $((k % 2)) = 0 ] && echo all || echo leaks)
        cp worst.qcow2 w.qcow2
        "$H" check -q -r $mode w.qcow2 > /dev/null 2>&1 &
        pid=$!
        sleep "0.00$((RANDOM % 10))"
        kill -9 $pid 2>/dev/null
        wait $pid 2>/dev/null
        wait_free w.qcow2
        qemu-img check -q w.qcow2 > /dev/null 2>&1; rc=$?
        [ $rc = 0 ] || [ $rc = 3 ] || fail "repair killed ($k): qemu-img check exit $rc"
        outcomes+=" $rc"
        "$H" check -q -r $mode w.qcow2 2>/dev/null || fail "repair after a killed one: exit $?"
        qemu-img check -q w.qcow2 || fail "repair after a killed one: not clean"
        qemu-img compare -q worst.qcow2 w.qcow2 || fail "killed repair changed the data"
    done
    echo "repair of $worst leaked clusters killed 10 times: check exits$outcomes, then clean"
else
    echo "no leaky image to kill a repair on"
fi

# 4. Locked: a running writer keeps the repair out.
craft h.qcow2 leak
mkfifo hold
"$H" io h.qcow2 < hold > /dev/null 2>&1 &
pid=$!
exec 9> hold
sleep 0.5
"$H" check -r leaks h.qcow2 > lock.out 2>&1; rc=$?
exec 9>&-
wait $pid
[ $rc = 1 ] || fail "repair of an image in use: exit $rc"
grep -q 'lock' lock.out || { cat lock.out; fail "repair of an image in use: no lock error"; }
"$H" check -q -r leaks h.qcow2 2>/dev/null || fail "repair after the writer left: exit $?"
echo "$cases crafted comparisons; repair refused while a writer holds the image"
echo PASS
