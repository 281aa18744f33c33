#!/bin/bash
# herd-test-needs: kvm
# herd-vmm confinement (docs/security.md), as herdd runs it:
#  1. every device path of probe-virtio-vmm.sh (blk on raw and qcow2, read-only,
#     hostile with its device resets, legacy ports, MSI-X, the tap pairs in a
#     netns) still passes with herd-vmm run as --uid 65534 --gid 65534;
#  2. a confined guest (uid 65534, --cgroup in a test-made cgroup v2 group,
#     --control, a root-only 0600 disk, a tap in a netns, probe blk test then
#     idle): /proc/PID/status shows CapEff/CapPrm/CapBnd 0, NoNewPrivs 1,
#     Seccomp 2, Uid 65534, every thread Seccomp 2; the pid is in the cgroup;
#     pause/resume/stop over the control socket work; exit 0, the socket is
#     removed and the cgroup is empty afterwards;
#  3. --jail-check prints the same and exits 0 without running the guest;
#     --seccomp=off warns and reports Seccomp 0;
#  4. the test build (herd-vmm-hooks, HERD_TEST_FORBIDDEN_SYSCALL=<class>)
#     kills the process from each thread class with exit status 6 and the
#     line naming mount and the class; build/bin/herd-vmm has no such hook.
#
# Exit 0 pass, 77 skip (not root, no /dev/kvm), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
hooks=${HERD_VMM_HOOKS:-$build/tests/bin/herd-vmm-hooks}
probe=$build/firmware/herd-probe.elf
mkpattern=$build/firmware/mkpattern
client=$build/tests/bin/control-client
nobody=65534

require_root_kvm "switches uid, creates a cgroup, taps in a netns"
require_built "$vmm" "$hooks" "$client" "$mkpattern" "$probe"

tmp=$(mktemp -d /tmp/herd-jail.XXXXXX)
ns=hjail-$$
cg=
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    [ -n "$cg" ] && rmdir "$cg" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
status_field() { sed -n "s/^$2:[[:space:]]*//p" "$1" | tr -s '\t ' ' '; }

# --- 1. the device paths, confined --------------------------------------------------
cat >"$tmp/confined-vmm" <<EOF
#!/bin/bash
exec "$vmm" --uid $nobody --gid $nobody "\$@"
EOF
chmod 755 "$tmp/confined-vmm"
HERD_VMM=$tmp/confined-vmm bash "$root/tests/integration/probe-virtio-vmm.sh" >"$tmp/virtio.log" 2>&1
rc=$?
if [ "$rc" -eq 77 ]; then
    echo "note: part 1 skipped: $(tail -n1 "$tmp/virtio.log")"
elif [ "$rc" -ne 0 ]; then
    fail "probe-virtio-vmm.sh with --uid $nobody --gid $nobody: exit $rc"
    grep -E 'FAIL|seccomp' "$tmp/virtio.log" | head -n 20
else
    grep -q 'seccomp' "$tmp/virtio.log" && fail "probe-virtio-vmm.sh: a seccomp line" &&
        grep seccomp "$tmp/virtio.log" | head
    echo "ok: probe-virtio-vmm.sh passes confined (uid $nobody, seccomp, no capabilities)"
fi

# --- 2. a running confined guest -----------------------------------------------
# A cgroup v2 group: /sys/fs/cgroup itself or the hybrid "unified" mount.
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
cgroup_args=()
if [ -z "$cg2" ]; then
    echo "note: cgroup part skipped: no cgroup2 file system is mounted"
elif ! mkdir "$cg2/herd-jail-test.$$" 2>/dev/null; then
    echo "note: cgroup part skipped: cannot create a group under $cg2 (read-only or delegated elsewhere)"
else
    cg=$cg2/herd-jail-test.$$
    cgroup_args=(--cgroup "$cg")
    # herdd's part: the limits from the template, where the controllers are on.
    if grep -qw memory "$cg2/cgroup.subtree_control" 2>/dev/null && [ -w "$cg/memory.max" ]; then
        echo 512M >"$cg/memory.max" || fail "memory.max"
    else
        echo "note: memory.max not set: the memory controller is not enabled in $cg2 (hybrid host?)"
    fi
    if [ -w "$cg/pids.max" ]; then echo 64 >"$cg/pids.max" || fail "pids.max"; fi
fi

"$mkpattern" fill "$tmp/disk.img" 16M 0 || exit 1
chmod 600 "$tmp/disk.img" # root's: only opened before the uid switch
chmod 711 "$tmp" # the guest uid must reach its run directory
mkdir "$tmp/run" && chown "$nobody:$nobody" "$tmp/run" && chmod 700 "$tmp/run"
sock=$tmp/run/vm.sock # herdd's per-guest run directory, the guest uid's own
: >"$tmp/console.log"
net_args=()
if command -v ip >/dev/null && command -v nsenter >/dev/null && [ -c /dev/net/tun ] && ip netns add "$ns" 2>/dev/null &&
    ip -n "$ns" tuntap add tapj mode tap && ip -n "$ns" link set tapj up; then
    net_args=(--net tap=tapj,mac=52:54:00:48:50:1a)
    # nsenter, not ip netns exec: that one remounts /sys, hiding the cgroup
    run=(nsenter --net=/run/netns/"$ns")
else
    echo "note: no tap in part 2 (no iproute2, /dev/net/tun or network namespaces)"
    run=()
fi
ask() { printf '%s\n' "$1" | "$client" "$sock" -t 5; }

"${run[@]}" "$vmm" --kernel "$probe" --cpus 2 --mem 64M \
    --cmdline "probe.tests=pci,blk probe.blk.seed=3 probe.blk.size=16M probe.blk.serial=d0 probe.idle=1" \
    --disk "path=$tmp/disk.img,format=raw,serial=d0" "${net_args[@]}" \
    --serial "file:$tmp/console.log" --control "$sock" --uid $nobody --gid $nobody \
    "${cgroup_args[@]}" </dev/null >"$tmp/vmm.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
    grep -qxF "herd-probe: ready" "$tmp/console.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -qxF "herd-probe: ready" "$tmp/console.log"; then
    fail "confined guest: no 'herd-probe: ready' within 120s"
    cat "$tmp/console.log" "$tmp/vmm.log" | tail -n 30
    kill -TERM "$pid" 2>/dev/null
else
    grep -qxF "herd-probe: blk ok" "$tmp/console.log" || fail "confined guest: blk test"
    vpid=$pid # nsenter execs herd-vmm
    st=/proc/$vpid/status
    cp "$st" "$tmp/status"
    for kv in "CapEff 0000000000000000" "CapPrm 0000000000000000" "CapInh 0000000000000000" \
        "CapBnd 0000000000000000" "CapAmb 0000000000000000" "NoNewPrivs 1" "Seccomp 2" \
        "Uid $nobody $nobody $nobody $nobody" "Gid $nobody $nobody $nobody $nobody"; do
        got=$(status_field "$tmp/status" "${kv%% *}")
        [ "$got" = "${kv#* }" ] || fail "/proc/$vpid/status ${kv%% *}: '$got', expected '${kv#* }'"
    done
    [ -z "$(status_field "$tmp/status" Groups)" ] || fail "supplementary groups left"
    n=0
    for t in /proc/"$vpid"/task/*; do
        n=$((n + 1))
        s=$(status_field "$t/status" Seccomp)
        [ "$s" = 2 ] || [ "$(cat "$t/comm")" = kvm-nx-lpage-re ] ||
            fail "thread $(basename "$t") ($(cat "$t/comm")): Seccomp '$s'"
    done
    echo "ok: confined guest pid $vpid: $n threads, $(status_field "$tmp/status" CapEff) CapEff, Seccomp 2"
    if [ -n "$cg" ]; then
        grep -qx "$vpid" "$cg/cgroup.procs" || fail "pid $vpid not in $cg/cgroup.procs"
    fi
    out=$(ask '{"cmd":"pause"}')
    [ "$out" = '{"ok":true}' ] || fail "pause: $out"
    out=$(ask '{"cmd":"status"}')
    grep -q '"state":"paused"' <<<"$out" || fail "status after pause: $out"
    out=$(ask '{"cmd":"resume"}')
    [ "$out" = '{"ok":true}' ] || fail "resume: $out"
    out=$(ask '{"cmd":"stop"}')
    [ "$out" = '{"ok":true}' ] || fail "stop: $out"
fi
wait_bounded "$pid" 60
rc=$?
pid=
[ "$rc" -eq 0 ] || { fail "confined guest: exit $rc, expected 0"; tail -n 20 "$tmp/vmm.log"; }
grep -q seccomp "$tmp/vmm.log" && fail "confined guest: $(grep seccomp "$tmp/vmm.log")"
[ -e "$sock" ] && fail "the control socket is still there"
if [ -n "$cg" ]; then
    [ -z "$(cat "$cg/cgroup.procs")" ] || fail "cgroup not empty after exit: $(cat "$cg/cgroup.procs")"
    rmdir "$cg" || fail "herdd's rmdir of the cgroup failed"
    cg=
fi

# --- 3. --jail-check ---------------------------------------------------------------
out=$("$vmm" --kernel "$probe" --cpus 2 --cmdline "probe.tests=boot" --uid $nobody --gid $nobody \
    --disk "path=$tmp/disk.img,format=raw" --serial none --jail-check </dev/null 2>&1)
rc=$?
printf '%s\n' "--- --jail-check (exit $rc)" "$out"
[ "$rc" -eq 0 ] || fail "--jail-check: exit $rc"
for l in "uid: $nobody $nobody $nobody $nobody" "CapEff: 0000000000000000" \
    "CapBnd: 0000000000000000" "NoNewPrivs: 1" "seccomp: on (one filter per thread class)"; do
    grep -qxF "$l" <<<"$out" || fail "--jail-check: missing line '$l'"
done
# the disk has two io-class threads: its virtio I/O thread and blockdev's worker
[ "$(grep -cE '^thread [0-9]+ herd-(vmm|vcpu|io): Seccomp 2 ' <<<"$out")" -eq 5 ] ||
    fail "--jail-check: expected main, 2 vcpu and 2 io threads (disk I/O + its worker) with Seccomp 2"
grep -q 'herd-probe' <<<"$out" && fail "--jail-check ran the guest"
out=$("$vmm" --kernel "$probe" --cmdline "probe.tests=boot" --serial none --seccomp=off \
    --jail-check </dev/null 2>&1)
grep -qF "warning: seccomp: off (--seccomp=off)" <<<"$out" || fail "--seccomp=off: no warning"
grep -qE '^thread [0-9]+ herd-vmm: Seccomp 0 ' <<<"$out" || fail "--seccomp=off: Seccomp not 0"

# --- 4. the forbidden system call --------------------------------------------------
if strings "$vmm" | grep -q HERD_TEST_FORBIDDEN_SYSCALL; then
    fail "$vmm contains the test hook"
fi
strings "$hooks" | grep -q HERD_TEST_FORBIDDEN_SYSCALL || fail "$hooks lacks the test hook"
for class in main vcpu io control serial-input; do
    rm -f "$tmp/hook.sock"
    out=$( (sleep 5 | HERD_TEST_FORBIDDEN_SYSCALL=$class timeout 20 "$hooks" --kernel "$probe" \
        --cmdline "probe.tests=boot probe.idle=1" --disk "path=$tmp/disk.img,format=raw" \
        --control "$tmp/hook.sock" --uid $nobody --gid $nobody) 2>&1 >/dev/null)
    rc=$?
    line="herd-vmm: seccomp: $class thread made forbidden system call mount (165); terminating"
    [ "$rc" -eq 6 ] || fail "forbidden call in the $class thread: exit $rc, expected 6"
    grep -qxF "$line" <<<"$out" || { fail "no line '$line'"; tail -n 5 <<<"$out"; }
    [ "$(grep -c 'seccomp:' <<<"$out")" -eq 1 ] || fail "$class: not exactly one seccomp line"
done
echo "ok: a forbidden call in each thread class ends herd-vmm with status 6 and one line"

if [ "$failures" -ne 0 ]; then
    echo "vmm-jail: $failures check(s) failed"
    exit 1
fi
echo "vmm-jail: all checks passed"
