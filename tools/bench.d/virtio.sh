#!/bin/bash
# herd-vmm's virtio devices vs QEMU's (microvm, pcie=on, same probe, same
# image kinds, same run). The probe measures inside the guest:
#  - virtio-blk, 4 KiB requests over a 16 MiB disk, queue depth 1 and 32,
#    on a raw file, on a fresh qcow2 overlay of a raw parent (every write
#    allocates) and on an allocated one (qemu-io wrote it whole first): write
#    IOPS (whole disk) and read IOPS (read back + verify);
#  - virtio-net, probe to probe across a Linux bridge (userspace path both:
#    no vhost-net here): frames per second one way over the data phase (the
#    handshake waits for the peer to boot), 50000 frames each way,
#    with one queue pair and with two (multi_queue taps, probe.net.queues=2).
# Each figure is the median of RUNS runs (default 5): both VMMs poll with
# busy CPUs on a 2-core machine, so single runs are noisy.
# BENCH_VIRTIO_PARTS: "blk net" (default) or either one alone;
# BENCH_VIRTIO_NET_QUEUES: the queue-pair counts to run (default "1 2").
# Rows: metric|herd|peer|peer name|unit.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=$build/bin/herd-vmm
probe=$build/firmware/herd-probe.elf
runs=${BENCH_RUNS_VIRTIO:-5}
tmp=$(mktemp -d)
ns=hvb$$
trap 'ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del "$ns" 2>/dev/null; rm -rf "$tmp"' EXIT

qemu_base=(qemu-system-x86_64 -M microvm,pcie=on -enable-kvm -nodefaults -no-user-config
           -nographic -serial stdio -kernel "$probe" -device isa-debug-exit,iobase=0x501)

# iops LOG: "write read" IOPS from the probe's blk lines.
iops() {
    awk '/blk: wrote the whole disk in/ { for (i = 1; i <= NF; i++) if ($i == "in") n = $(i+1); w = $(NF-1) }
         /blk: read back and verified/ { for (i = 1; i <= NF; i++) if ($i == "in") rn = $(i+1); r = $(NF-1) }
         END { if (w > 0 && r > 0) printf "%d %d\n", n * 1000 / w, rn * 1000 / r; else print "0 0" }' "$1"
}

make_disk() { # KIND PATH; KIND is raw, qcow2 (fresh overlay) or qcow2-allocated
    rm -f "$2" "$2.parent"
    if [ "$1" = raw ]; then
        truncate -s 16M "$2"
    else
        truncate -s 16M "$2.parent"
        qemu-img create -q -f qcow2 -b "$2.parent" -F raw "$2" 16M
    fi
    if [ "$1" = qcow2-allocated ]; then
        # Written whole, then out of the page cache, like an overlay from an
        # earlier boot: left cached, the one 16M write leaves large folios
        # whose every 4K rewrite walks all their buffer heads in ext4
        # (block_commit_write), a cost of how qemu-io filled it, not of the VMM.
        qemu-io -f qcow2 -c "write -P 0x5a 0 16M" "$2" > /dev/null
        dd of="$2" oflag=nocache conv=notrunc,fdatasync count=0 status=none
    fi
}

median() { sort -n | awk '{a[NR] = $1} END {print NR ? a[int((NR + 1) / 2)] : 0}'; }

blk_run() { # VMM KIND DEPTH -> "write read" IOPS
    local who=$1 kind=$2 depth=$3 cmd fmt=${2%-allocated}
    cmd="probe.tests=blk probe.blk.chunk=4K probe.blk.depth=$depth"
    make_disk "$kind" "$tmp/d.img"
    if [ "$who" = herd ]; then
        "$vmm" --kernel "$probe" --mem 128M --disk "path=$tmp/d.img,format=$fmt" \
            --cmdline "$cmd" </dev/null > "$tmp/blk.log" 2>&1
    else
        "${qemu_base[@]}" -m 128M -append "$cmd" \
            -drive "file=$tmp/d.img,format=$fmt,if=none,id=d0" -device virtio-blk-pci,drive=d0 \
            </dev/null > "$tmp/blk.log" 2>&1
    fi
    iops "$tmp/blk.log"
}

parts=${BENCH_VIRTIO_PARTS:-blk net}
kinds="raw qcow2 qcow2-allocated"
[[ " $parts " == *" blk "* ]] || kinds=
for kind in $kinds; do
    for depth in 1 32; do
        for who in herd qemu; do
            : > "$tmp/$who.w"
            : > "$tmp/$who.r"
            for _ in $(seq "$runs"); do
                read -r w r < <(blk_run $who $kind $depth)
                echo "$w" >> "$tmp/$who.w"
                echo "$r" >> "$tmp/$who.r"
            done
        done
        echo "virtio-blk 4K write, depth $depth, $kind|$(median < "$tmp/herd.w")|$(median < "$tmp/qemu.w")|qemu virtio-blk-pci|IOPS"
        echo "virtio-blk 4K read, depth $depth, $kind|$(median < "$tmp/herd.r")|$(median < "$tmp/qemu.r")|qemu virtio-blk-pci|IOPS"
    done
done

# Network: two guests per VMM on their own bridge.
[[ " $parts " == *" net "* ]] || exit 0
ip netns add "$ns"
ip -n "$ns" link set lo up
for t in ha hb qa qb; do
    ip -n "$ns" tuntap add dev "tap$t" mode tap vnet_hdr
    ip -n "$ns" tuntap add dev "tm$t" mode tap vnet_hdr multi_queue
done
for br in brh:ha:hb brq:qa:qb bmh:ha:hb bmq:qa:qb; do
    IFS=: read -r b x y <<<"$br"
    ip -n "$ns" link add "$b" type bridge
    ip -n "$ns" link set "$b" up
    pre=tap
    [ "${b#bm}" != "$b" ] && pre=tm
    ip -n "$ns" link set "$pre$x" master "$b" up
    ip -n "$ns" link set "$pre$y" master "$b" up
done
count=${BENCH_NET_COUNT:-50000}
net_cmd="probe.tests=net probe.net.count=$count"
fps() { # LOG: frames/s one way from "net: data phase N ms" and "sent N received M"
    awk '/net: sent/ { recv = $6 } /net: data phase [0-9]+ ms/ { ms = $5 }
         END { if (ms > 0) printf "%d\n", recv * 1000 / ms; else print 0 }' "$1"
}

net_guest() { # herd|qemu a|b QUEUES: one probe in the background, log in $tmp/nX.log
    local who=$1 g=$2 q=$3 tap mac n=$([ "$2" = a ] && echo 0a || echo 0b)
    if [ "$who" = herd ]; then
        tap=$([ "$q" = 1 ] && echo "tapha" || echo "tmha")
        [ "$g" = b ] && tap=${tap%a}b
        ip netns exec "$ns" "$vmm" --kernel "$probe" --mem 64M \
            --net "tap=$tap,mac=0e:00:00:00:01:$n,queues=$q" \
            --cmdline "$net_cmd probe.net.queues=$q" </dev/null > "$tmp/n$g.log" 2>&1 &
    else
        tap=$([ "$q" = 1 ] && echo "tapqa" || echo "tmqa")
        [ "$g" = b ] && tap=${tap%a}b
        local mq=
        [ "$q" != 1 ] && mq=",mq=on,vectors=$((2 * q + 2))"
        ip netns exec "$ns" "${qemu_base[@]}" -m 64M -append "$net_cmd probe.net.queues=$q" \
            -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,queues=$q" \
            -device "virtio-net-pci,netdev=n0,mac=0e:00:00:00:02:$n$mq" </dev/null > "$tmp/n$g.log" 2>&1 &
    fi
}

net_pair() { # herd|qemu QUEUES: runs two guests at once, prints frames/s of the first
    net_guest "$1" a "$2"
    local p1=$!
    net_guest "$1" b "$2"
    local p2=$!
    wait $p1 $p2
    fps "$tmp/na.log"
    [ -n "${BENCH_NET_LOGS:-}" ] && cp "$tmp/na.log" "$BENCH_NET_LOGS.$1.$(date +%s%N)"
}

for q in ${BENCH_VIRTIO_NET_QUEUES:-1 2}; do
    for who in herd qemu; do
        : > "$tmp/$who.fps"
    done
    for _ in $(seq "$runs"); do
        for who in herd qemu; do # alternating: a slow spell hits both
            net_pair $who $q >> "$tmp/$who.fps"
        done
    done
    label=$([ "$q" = 1 ] && echo "" || echo ", 2 queue pairs")
    echo "virtio-net frames/s one way, probe to probe$label|$(median < "$tmp/herd.fps")|$(median < "$tmp/qemu.fps")|qemu virtio-net-pci (tap)|frames/s"
done
