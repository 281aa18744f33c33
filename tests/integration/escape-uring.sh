#!/bin/bash
# herd-test-needs: kvm
# A compromised herd-vmm against its disk's io_uring (docs/security.md):
# io_uring operations are not seen by seccomp, so the ring itself must refuse
# everything but the disk's own reads and writes.
#  1. the test build (herd-vmm-hooks) with HERD_TEST_FORBIDDEN_URING=all runs
#     the probe's blk test on a raw disk, confined (--uid 65534, seccomp);
#     at the guest's first disk request the thread serving it submits on the
#     disk's real ring: OPENAT of /proc/self/mem and of a readable file,
#     SOCKET, CONNECT (to a listening unix socket any uid may connect to,
#     a stand-in for herdd's API socket), SYMLINKAT,
#     RENAMEAT and UNLINKAT in a directory the guest uid may write, READV
#     and WRITEV on the image's plain (not registered) fd. Every one must
#     log "refused (-EACCES)", nothing in the directory may change, and the
#     probe's blk test must still pass (its I/O goes through the same ring);
#  2. HERD_TEST_FORBIDDEN_URING=REGISTER-FILES (io_uring_register, a new
#     file for the ring) ends herd-vmm with status 6 and the seccomp line
#     naming io_uring_register (the ring would refuse it with EACCES too:
#     tests/unit/test_uring_restrict.c);
#  3. build/bin/herd-vmm contains no such hook.
# Without the restrictions (the ring as it was before), part 1 logs
# "ALLOWED" for all but /proc/self/mem (the uid switch made herd-vmm
# non-dumpable: DAC refuses that one), and the directory changes.
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
ops="OPENAT-PROC-SELF-MEM OPENAT SOCKET CONNECT SYMLINKAT RENAMEAT UNLINKAT
     READV-UNREGISTERED-FD WRITEV-UNREGISTERED-FD"

require_root_kvm "switches uid like herdd does"
require_built "$vmm" "$hooks" "$client" "$mkpattern" "$probe"

tmp=$(mktemp -d /tmp/herd-escape-uring.XXXXXX)
pid=
listener=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$listener" ] && kill -KILL "$listener" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$mkpattern" fill "$tmp/disk.img" 16M 0 || exit 1
chmod 600 "$tmp/disk.img" # root's: only opened before the uid switch
chmod 711 "$tmp"
mkdir "$tmp/run" && chown "$nobody:$nobody" "$tmp/run" && chmod 700 "$tmp/run"
sock=$tmp/run/vm.sock
# What the attacker aims at: all of it within the guest uid's reach, so only
# the ring's restrictions stand in the way.
mkdir "$tmp/attack" && chown "$nobody:$nobody" "$tmp/attack" && chmod 700 "$tmp/attack"
for f in victim rename-me; do
    : >"$tmp/attack/$f" && chown "$nobody:$nobody" "$tmp/attack/$f"
done
echo "not for the guest" >"$tmp/secret" && chmod 644 "$tmp/secret"
# CONNECT's target: a listening socket open to every uid (herdd's API socket
# stands for what lies outside the guest); the control socket would not do,
# it is root's and 0600, so DAC alone refuses it.
target=$tmp/listen/api.sock
mkdir -m 755 "$tmp/listen"
if command -v python3 >/dev/null; then
    python3 -c 'import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(16); time.sleep(900)' "$target" &
    listener=$!
    for _ in $(seq 1 100); do [ -S "$target" ] && break; sleep 0.1; done
fi
if [ ! -S "$target" ]; then
    echo "note: no listening socket for CONNECT (no python3); it aims at the control socket"
    target=$sock
fi
uring_env=(HERD_TEST_URING_FILE="$tmp/secret" HERD_TEST_URING_DIR="$tmp/attack"
    HERD_TEST_URING_SOCKET="$target")

# --- 1. every operation, while the guest's own disk I/O keeps working -------------
: >"$tmp/console.log"
env HERD_TEST_FORBIDDEN_URING=all "${uring_env[@]}" "$hooks" --kernel "$probe" --cpus 1 --mem 64M \
    --cmdline "probe.tests=pci,blk probe.blk.seed=3 probe.blk.size=16M probe.blk.serial=d0 probe.idle=1" \
    --disk "path=$tmp/disk.img,format=raw,serial=d0" --serial "file:$tmp/console.log" \
    --control "$sock" --uid $nobody --gid $nobody </dev/null >"$tmp/vmm.log" 2>&1 &
pid=$!
if ! wait_line "$tmp/console.log" '^herd-probe: ready$' 180 "$pid"; then
    fail "part 1: no 'herd-probe: ready' within 180 s"
    tail -n 30 "$tmp/console.log" "$tmp/vmm.log"
else
    grep -qxF "herd-probe: blk ok" "$tmp/console.log" ||
        { fail "part 1: the probe's blk test failed"; grep -a 'blk' "$tmp/console.log" | tail -n 10; }
    out=$(printf '%s\n' '{"cmd":"stop"}' | "$client" "$sock" -t 5)
    [ "$out" = '{"ok":true}' ] || fail "stop: $out"
fi
wait_bounded "$pid" 60
rc=$?
pid=
echo "--- the hook's lines"
grep -a 'uring-attack\|test hook' "$tmp/vmm.log"
[ "$rc" -eq 0 ] || { fail "part 1: herd-vmm exit $rc, expected 0"; tail -n 20 "$tmp/vmm.log"; }
grep -q 'uring-attack done' "$tmp/vmm.log" || fail "part 1: the hook never ran (no disk request on the ring?)"
for op in $ops; do
    line=$(grep -a "uring-attack $op: " "$tmp/vmm.log")
    [ -n "$line" ] || { fail "$op: no line"; continue; }
    grep -qF "uring-attack $op: refused (-EACCES)" <<<"$line" || fail "$op: $line"
done
grep -q ALLOWED "$tmp/vmm.log" && fail "an operation was allowed"
grep -q 'seccomp:' "$tmp/vmm.log" && fail "part 1: $(grep 'seccomp:' "$tmp/vmm.log")"
[ -e "$tmp/attack/victim" ] || fail "UNLINKAT removed victim"
[ -e "$tmp/attack/rename-me" ] && [ ! -e "$tmp/attack/renamed" ] || fail "RENAMEAT renamed rename-me"
[ -L "$tmp/attack/symlink" ] && fail "SYMLINKAT made a symlink"
[ "$(ls -A "$tmp/attack" | wc -l)" -eq 2 ] || fail "the attack directory changed: $(ls -A "$tmp/attack")"
[ "$failures" -eq 0 ] && echo "ok: every io_uring operation refused (EACCES), the probe's disk I/O works"

# --- 2. io_uring_register: seccomp ends the process --------------------------------
rm -f "$sock"
: >"$tmp/console2.log"
env HERD_TEST_FORBIDDEN_URING=REGISTER-FILES "${uring_env[@]}" "$hooks" --kernel "$probe" --cpus 1 \
    --mem 64M --cmdline "probe.tests=pci,blk probe.blk.seed=3 probe.blk.size=16M probe.idle=1" \
    --disk "path=$tmp/disk.img,format=raw" --serial "file:$tmp/console2.log" \
    --control "$sock" --uid $nobody --gid $nobody </dev/null >"$tmp/vmm2.log" 2>&1 &
pid=$!
wait_bounded "$pid" 180
rc=$?
pid=
re='^herd-vmm: seccomp: (io|vcpu) thread made forbidden system call io_uring_register \([0-9]+\); terminating$'
[ "$rc" -eq 6 ] || fail "part 2: exit $rc, expected 6"
grep -qE "$re" "$tmp/vmm2.log" || { fail "part 2: no seccomp line for io_uring_register"; tail -n 10 "$tmp/vmm2.log"; }
grep -q 'uring-attack REGISTER-FILES' "$tmp/vmm2.log" && fail "part 2: io_uring_register returned"
[ "$rc" -eq 6 ] && echo "ok: io_uring_register ends herd-vmm (status 6): $(grep -E "$re" "$tmp/vmm2.log")"

# --- 3. no hook in the real binary -------------------------------------------------
strings "$vmm" | grep -q HERD_TEST_FORBIDDEN_URING && fail "$vmm contains the io_uring hook"
strings "$hooks" | grep -q HERD_TEST_FORBIDDEN_URING || fail "$hooks lacks the io_uring hook"

if [ "$failures" -ne 0 ]; then
    echo "escape-uring: $failures check(s) failed"
    exit 1
fi
echo "escape-uring: all checks passed"
