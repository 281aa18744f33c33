#!/bin/bash
# herd-test-needs: kvm
# The tap's kernel filter against a real guest (herd-probe), on both data
# paths: vhost-net (when /dev/vhost-net exists) and herd-vmm's userspace
# virtio-net. Guest A runs with a MAC the filter does not allow (as a guest
# that changed its MAC, or a compromised herd-vmm would): its frames must be
# dropped in the host kernel and counted (src_mac), while guest B on the
# same bridge hears nothing. Then the filter is made for A's real MAC and
# 1000 frames each way must arrive, none lost, counted as accepted.
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
probe=$build/firmware/herd-probe.elf
vmm=${HERD_VMM:-$build/bin/herd-vmm}
CTL=$build/tests/bin/netdev-ctl
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: /dev/kvm is missing"; exit 77; }
command -v nft >/dev/null || { echo "skip: nft (nftables) is not installed"; exit 77; }
for f in "$vmm" "$probe" "$CTL"; do
    [ -e "$f" ] || { echo "FAIL: $f not built"; exit 1; }
done
tmp=$(mktemp -d /tmp/escape-net-guest.XXXXXX)
ns=heng-$$
pids=()
failures=0
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ip netns add "$ns" || { echo "skip: cannot create a network namespace"; exit 77; }
ctl() { ip netns exec "$ns" "$CTL" "$@"; }
ip -n "$ns" link set lo up
echo '{"roles": {"communication": {"bridge": "hbr-comm"}}}' > "$tmp/c.json"
ctl setup "$tmp/c.json" >/dev/null || { echo "FAIL: bridge setup"; exit 1; }
ta=$(ctl tap-persist a hbr-comm) && tb=$(ctl tap-persist b hbr-comm) || { echo "FAIL: taps"; exit 1; }
if [ ! -e /dev/vhost-net ]; then
    # vhost_net loads on demand when its misc device (10:238) is opened,
    # also where no modprobe is at hand (the nested host)
    modprobe vhost_net 2>/dev/null ||
        { mknod "$tmp/vhost-net" c 10 238 && : 3<>"$tmp/vhost-net"; } 2>/dev/null
fi
paths=off
[ -e /dev/vhost-net ] && paths="on off"
MAC_A=52:54:00:48:50:0a
MAC_B=52:54:00:48:50:0b
ALLOWED=52:54:00:48:50:aa # what the filter lets A use in the first round

guest() { # guest NAME TAP MAC VHOST PROBE-ARGS: in the background, log in $tmp/NAME.log
    ip netns exec "$ns" timeout 120 "$vmm" --kernel "$probe" --mem 64M \
        --cmdline "probe.tests=net $5" --net "tap=$2,mac=$3,vhost=$4" \
        </dev/null >"$tmp/$1.log" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}
finish_guest() { # finish_guest NAME: sets $out and $status
    local p
    eval "p=\$pid_$1"
    wait_bounded "$p" 180
    status=$?
    out=$(cat "$tmp/$1.log")
    printf '%s\n' "--- $1 (exit $status)" "$out" | sed 's/^/   /'
}
counter() { # counter NAME: packets of that counter on A's filter
    ctl filter-stats "$ta" | python3 -c 'import json,sys; d=json.load(sys.stdin); n=sys.argv[1];
print(d["accepted"]["packets"] if n == "accepted" else d["drops"][n]["packets"])' "$1"
}

for vhost in $paths; do
    echo "== vhost=$vhost: guest A with a MAC its filter does not allow"
    ctl filter-install "$ta" "$ALLOWED" '"communication"' || fail "filter-install"
    guest a "$ta" "$MAC_A" "$vhost" "probe.net.role=both probe.net.wait=4 probe.net.peer=$MAC_B"
    guest b "$tb" "$MAC_B" "$vhost" "probe.net.role=listen probe.net.wait=6"
    finish_guest b
    [ "$status" = 1 ] || fail "vhost=$vhost: B heard A's frames through the filter"
    grep -qE 'herd-probe: net: sent 0 received 0 lost 0 \(listened' <<<"$out" || fail "B's listen line"
    finish_guest a
    [ "$status" = 1 ] && fail "vhost=$vhost: A found a peer through the filter"
    grep -q 'vhost-net start failed' "$tmp/a.log" && fail "vhost=$vhost: vhost-net did not start"
    dropped=$(counter src_mac)
    echo "   A's frames dropped in the kernel (src_mac): $dropped"
    [ "${dropped:-0}" -gt 0 ] || fail "vhost=$vhost: no src_mac drops counted"
    [ "$(counter accepted)" = 0 ] || fail "vhost=$vhost: the filter accepted frames of A"

    echo "== vhost=$vhost: the same guest with its own MAC"
    ctl filter-install "$ta" "$MAC_A" '"communication"' || fail "filter-install"
    guest a "$ta" "$MAC_A" "$vhost" "probe.net.role=both probe.net.count=1000 probe.net.peer=$MAC_B"
    guest b "$tb" "$MAC_B" "$vhost" "probe.net.role=both probe.net.count=1000"
    for g in a b; do
        finish_guest $g
        [ "$status" = 1 ] || fail "vhost=$vhost: net probe $g failed"
        grep -qx "herd-probe: net: sent 1000 received 1000 lost 0" <<<"$out" ||
            fail "vhost=$vhost: $g did not get all 1000 frames"
    done
    accepted=$(counter accepted)
    echo "   A's frames accepted by the kernel filter: $accepted"
    [ "${accepted:-0}" -ge 1000 ] || fail "vhost=$vhost: accepted $accepted < 1000"
done
ctl filter-remove "$ta"
[ -z "$(ip netns exec "$ns" nft list ruleset)" ] || fail "rules left"
[ "$failures" = 0 ] || { echo "escape-net-guest: $failures check(s) failed"; exit 1; }
echo "escape-net-guest: all checks passed (vhost: $paths)"
